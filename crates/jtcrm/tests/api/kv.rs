//! The key-value store contract, run against the in-process store and (when configured) Redis.

use std::sync::Arc;

use jtcrm_kernel::kv::{KvStore, MemoryKv, RedisKv};

async fn stores() -> Vec<(&'static str, Arc<dyn KvStore>)> {
    let mut v: Vec<(&'static str, Arc<dyn KvStore>)> = vec![("memory", Arc::new(MemoryKv::new()))];
    if let Some(url) = jtcrm_testkit::redis_url() {
        let prefix = format!("jtcrm-kvtest:{}:", uuid::Uuid::now_v7().simple());
        v.push((
            "redis",
            Arc::new(RedisKv::connect(&url, &prefix).await.expect("redis")),
        ));
    }
    v
}

#[tokio::test]
async fn fixed_window_counters() {
    for (name, kv) in stores().await {
        let (n, ttl) = kv.hit("w", 60).await.unwrap();
        assert_eq!(n, 1, "{name}");
        assert!((1..=60).contains(&ttl), "{name} ttl {ttl}");
        kv.hit("w", 60).await.unwrap();
        let (n, _) = kv.hit("w", 60).await.unwrap();
        assert_eq!(n, 3, "{name}");
        assert_eq!(kv.count("w").await.unwrap(), 3, "{name}");
        kv.delete("w").await.unwrap();
        assert_eq!(kv.count("w").await.unwrap(), 0, "{name}");
        // Windows expire.
        kv.hit("short", 1).await.unwrap();
        // Expiry is the state under test: poll until the window is gone (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while kv.count("short").await.unwrap() != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: window did not expire"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (n, _) = kv.hit("short", 1).await.unwrap();
        assert_eq!(n, 1, "{name}");
    }
}

#[tokio::test]
async fn values_with_ttl_and_multi_get() {
    for (name, kv) in stores().await {
        kv.set("a", 42, 60).await.unwrap();
        kv.set("b", -7, 1).await.unwrap();
        let got = kv
            .get_many(&["a".into(), "b".into(), "c".into()])
            .await
            .unwrap();
        assert_eq!(got, vec![Some(42), Some(-7), None], "{name}");
        // Expiry is the state under test: poll until "b" is gone (bounded), "a" must remain.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let got = loop {
            let got = kv.get_many(&["a".into(), "b".into()]).await.unwrap();
            if got[1].is_none() || std::time::Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(got, vec![Some(42), None], "{name}");
        assert!(kv.get_many(&[]).await.unwrap().is_empty());
        let ping = kv.ping().await.unwrap();
        assert_eq!(ping.is_some(), name == "redis");
    }
}
