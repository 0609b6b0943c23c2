//! Jobs of the durable queue as the API shows them. Payloads are never exposed (they may carry
//! personal data); see docs/jobs.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Lifecycle of a job: `queued` → `running` → `succeeded`, or `failed` (will retry after a backoff)
/// and finally `dead` (attempts exhausted or a permanent error; retry by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Dead,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|j| j.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-0000000000c1", "tenant_id": "0193a1b2-0000-7000-8000-000000000002",
    "kind": "webhook.deliver", "status": "dead", "attempts": 8, "max_attempts": 8,
    "run_at": "2026-11-29T13:10:00Z", "last_error": "HTTP 500 do destino",
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T13:10:02Z",
    "finished_at": "2026-11-29T13:10:02Z"
}))]
pub struct Job {
    pub id: Uuid,
    /// `null` for platform jobs (e.g. `system.cleanup`), visible to the super-admin only.
    pub tenant_id: Option<Uuid>,
    /// What the job does, e.g. `lead.created`, `system.cleanup`.
    pub kind: String,
    pub status: JobStatus,
    /// Attempts started so far (reset to 0 by a manual retry).
    pub attempts: i32,
    pub max_attempts: i32,
    /// When the job is (or was) due; for `failed` jobs, the time of the next attempt.
    pub run_at: DateTime<Utc>,
    /// The error of the latest failed attempt, kept after a later success for diagnosis.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the job succeeded or went `dead`.
    pub finished_at: Option<DateTime<Utc>>,
}
