//! Periodic jobs that reschedule themselves: one helper for every chain (the daily cleanup, the
//! overdue scan, e-mail reminders and digests, the automation dispatcher, …).
//!
//! A chain is a sequence of job rows, one per time *slot*, each keyed `{kind}:{slot}` (daily
//! chains use the slot's UTC date, e.g. `system.cleanup:2026-12-07`). When a link succeeds, the
//! wrapper that [`Registry::periodic`](super::Registry::periodic) installs enqueues the next slot's
//! link; a failing link is retried like any job, and the worker calls [`Periodic::ensure_scheduled`]
//! for every registered chain on start and hourly, so a chain whose link died heals itself. The
//! idempotency key makes every slot run once however many workers or nodes there are.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{JobCtx, JobError, NewJob, enqueue};
use crate::error::AppResult;
use crate::state::AppState;

/// When a periodic job runs: once per `period_secs`-long slot, slots starting `offset_secs` after
/// multiples of the period since the Unix epoch (e.g. daily at 06:00 UTC = period 86 400,
/// offset 21 600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    pub kind: &'static str,
    pub period_secs: i64,
    pub offset_secs: i64,
}

/// What a periodic handler asks for after a successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next slot, at its start (the normal case).
    NextSlot,
    /// Work is left over: run again at once (the next slot's key, due now).
    Now,
}

impl Periodic {
    /// Every `period_secs` seconds, on multiples of the period.
    pub const fn every(kind: &'static str, period_secs: i64) -> Self {
        Self {
            kind,
            period_secs,
            offset_secs: 0,
        }
    }

    /// Once a day at `hour:minute` UTC.
    pub const fn daily_at(kind: &'static str, hour: i64, minute: i64) -> Self {
        Self {
            kind,
            period_secs: 86_400,
            offset_secs: hour * 3600 + minute * 60,
        }
    }

    fn period(&self) -> i64 {
        self.period_secs.max(1)
    }

    /// The slot `at` falls in.
    pub fn slot_of(&self, at: DateTime<Utc>) -> i64 {
        (at.timestamp() - self.offset_secs).div_euclid(self.period())
    }

    /// When `slot` starts.
    pub fn start_of(&self, slot: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(slot * self.period() + self.offset_secs, 0)
            .unwrap_or_else(Utc::now)
    }

    /// The idempotency key of `slot`'s link.
    pub fn key(&self, slot: i64) -> String {
        if self.period_secs == 86_400 {
            format!("{}:{}", self.kind, self.start_of(slot).date_naive())
        } else {
            format!("{}:{slot}", self.kind)
        }
    }

    fn job(&self, slot: i64) -> NewJob {
        NewJob::new(self.kind, json!({ "slot": slot })).idempotency_key(self.key(slot))
    }

    /// Makes sure the current slot's link exists, due now, in the caller's transaction.
    pub async fn ensure_scheduled_in<C: ConnectionTrait>(&self, conn: &C) -> AppResult<()> {
        enqueue(conn, self.job(self.slot_of(Utc::now()))).await?;
        Ok(())
    }

    /// Makes sure the current slot's link exists, due now.
    pub async fn ensure_scheduled(&self, state: &AppState) -> AppResult<()> {
        let tx = state.begin().await?;
        self.ensure_scheduled_in(&*tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enqueues the link after the one that ran (`ctx`), as `next` asks.
    async fn schedule_after(&self, state: &AppState, ctx: &JobCtx, next: Next) -> AppResult<()> {
        let now = Utc::now();
        let current = self.slot_of(now);
        let own = ctx
            .payload
            .get("slot")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(current);
        let (slot, at) = match next {
            Next::NextSlot => {
                let slot = Ord::max(own + 1, current + 1);
                (slot, self.start_of(slot))
            }
            Next::Now => (Ord::max(own + 1, current), now),
        };
        let tx = state.begin().await?;
        enqueue(&*tx, self.job(slot).run_at(at)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs `handler`, then enqueues the next link when it succeeded.
    pub(super) async fn run_link<Fut>(
        self,
        state: AppState,
        ctx: JobCtx,
        handler: impl FnOnce(AppState, JobCtx) -> Fut,
    ) -> Result<(), JobError>
    where
        Fut: Future<Output = Result<Next, JobError>>,
    {
        let next = handler(state.clone(), ctx.clone()).await?;
        self.schedule_after(&state, &ctx, next).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_keys() {
        let p = Periodic::every("t.minute", 60);
        let at = DateTime::from_timestamp(120 * 60 + 59, 0).unwrap_or_default();
        assert_eq!(p.slot_of(at), 120);
        assert_eq!(p.start_of(121).timestamp(), 121 * 60);
        assert_eq!(p.key(121), "t.minute:121");

        let d = Periodic::daily_at("t.daily", 6, 0);
        // 2026-12-07 05:59:59 UTC still belongs to the slot that started 2026-12-06 06:00.
        let before = DateTime::parse_from_rfc3339("2026-12-07T05:59:59Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let slot = d.slot_of(before);
        assert_eq!(d.key(slot), "t.daily:2026-12-06");
        assert_eq!(
            d.start_of(slot + 1).to_rfc3339(),
            "2026-12-07T06:00:00+00:00"
        );
    }
}
