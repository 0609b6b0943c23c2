//! Short-lived shared state: rate-limit windows, the access-token denylist and session invalidation.
//! One trait with a Redis implementation (multi-node) and an in-process one (single node, tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use redis::aio::ConnectionManager;

pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

pub trait KvStore: Send + Sync {
    /// Increments a fixed-window counter; returns the new count and the seconds until it resets.
    fn hit<'a>(&'a self, key: &'a str, window_secs: u64) -> KvFuture<'a, (u64, u64)>;
    /// Current value of a counter (0 when absent or expired).
    fn count<'a>(&'a self, key: &'a str) -> KvFuture<'a, u64>;
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    /// Stores an integer that disappears after `ttl_secs`.
    fn set<'a>(&'a self, key: &'a str, value: i64, ttl_secs: u64) -> KvFuture<'a, ()>;
    /// Reads several keys in one round trip.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<i64>>>;
    /// `Some(ok)` for a networked store, `None` for the in-process one (reported as `null` by /health).
    fn ping(&self) -> KvFuture<'_, Option<bool>>;
}

pub type SharedKv = Arc<dyn KvStore>;

#[derive(Default)]
pub struct MemoryKv {
    map: DashMap<String, (i64, Instant)>,
    writes: AtomicU64,
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::default()
    }

    fn live(&self, key: &str) -> Option<i64> {
        let now = Instant::now();
        self.map.get(key).filter(|e| e.1 > now).map(|e| e.0)
    }

    fn maybe_sweep(&self) {
        // Amortised cleanup keeps memory bounded without a background task.
        if self.writes.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            let now = Instant::now();
            self.map.retain(|_, v| v.1 > now);
        }
    }
}

impl KvStore for MemoryKv {
    fn hit<'a>(&'a self, key: &'a str, window_secs: u64) -> KvFuture<'a, (u64, u64)> {
        Box::pin(async move {
            let now = Instant::now();
            let mut e = self.map.entry(key.to_string()).or_insert((0, now));
            if e.1 <= now {
                *e = (0, now + Duration::from_secs(window_secs));
            }
            e.0 += 1;
            let left = e.1.saturating_duration_since(now).as_secs().max(1);
            let count = e.0.max(0) as u64;
            drop(e);
            self.maybe_sweep();
            Ok((count, left))
        })
    }

    fn count<'a>(&'a self, key: &'a str) -> KvFuture<'a, u64> {
        Box::pin(async move { Ok(self.live(key).unwrap_or(0).max(0) as u64) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move {
            self.map.remove(key);
            Ok(())
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: i64, ttl_secs: u64) -> KvFuture<'a, ()> {
        Box::pin(async move {
            self.map.insert(
                key.to_string(),
                (value, Instant::now() + Duration::from_secs(ttl_secs.max(1))),
            );
            self.maybe_sweep();
            Ok(())
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<i64>>> {
        Box::pin(async move { Ok(keys.iter().map(|k| self.live(k)).collect()) })
    }

    fn ping(&self) -> KvFuture<'_, Option<bool>> {
        Box::pin(async { Ok(None) })
    }
}

pub struct RedisKv {
    conn: ConnectionManager,
    prefix: String,
    hit_script: redis::Script,
}

impl RedisKv {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
            .await
            .map_err(|_| anyhow::anyhow!("timeout connecting to Redis"))??;
        // INCR and EXPIRE must be atomic, or a crash between them leaves a counter that never resets.
        let hit_script = redis::Script::new(
            "local c = redis.call('INCR', KEYS[1]) \
             if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end \
             local t = redis.call('TTL', KEYS[1]) \
             if t < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end \
             return {c, t}",
        );
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            hit_script,
        })
    }

    fn k(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

impl KvStore for RedisKv {
    fn hit<'a>(&'a self, key: &'a str, window_secs: u64) -> KvFuture<'a, (u64, u64)> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (c, t): (i64, i64) = self
                .hit_script
                .key(self.k(key))
                .arg(window_secs.max(1))
                .invoke_async(&mut conn)
                .await?;
            Ok((c.max(0) as u64, t.max(1) as u64))
        })
    }

    fn count<'a>(&'a self, key: &'a str) -> KvFuture<'a, u64> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let v: Option<i64> = redis::cmd("GET")
                .arg(self.k(key))
                .query_async(&mut conn)
                .await?;
            Ok(v.unwrap_or(0).max(0) as u64)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: i64 = redis::cmd("DEL")
                .arg(self.k(key))
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: i64, ttl_secs: u64) -> KvFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: () = redis::cmd("SET")
                .arg(self.k(key))
                .arg(value)
                .arg("EX")
                .arg(ttl_secs.max(1))
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> KvFuture<'a, Vec<Option<i64>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(vec![]);
            }
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("MGET");
            for k in keys {
                cmd.arg(self.k(k));
            }
            let v: Vec<Option<i64>> = cmd.query_async(&mut conn).await?;
            Ok(v)
        })
    }

    fn ping(&self) -> KvFuture<'_, Option<bool>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let r: redis::RedisResult<String> = tokio::time::timeout(
                Duration::from_secs(2),
                redis::cmd("PING").query_async(&mut conn),
            )
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::IoError,
                    "timeout",
                )))
            });
            Ok(Some(r.is_ok()))
        })
    }
}

/// Builds the store the settings ask for.
pub async fn build(redis_url: Option<&str>, prefix: &str) -> anyhow::Result<SharedKv> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisKv::connect(url, prefix).await?),
        None => Arc::new(MemoryKv::new()),
    })
}
