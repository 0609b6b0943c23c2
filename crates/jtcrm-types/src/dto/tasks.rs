use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
    };
}

string_enum!(TaskType {
    Call => "call", Email => "email", Meeting => "meeting", Whatsapp => "whatsapp", Visit => "visit",
    FollowUp => "follow_up", Other => "other",
});

impl TaskType {
    /// Completing one of these counts as contacting the lead.
    pub fn is_contact(self) -> bool {
        matches!(
            self,
            TaskType::Call | TaskType::Email | TaskType::Whatsapp | TaskType::Visit
        )
    }
}

string_enum!(TaskPriority { Urgent => "urgent", High => "high", Normal => "normal", Low => "low" });

impl TaskPriority {
    /// 0 = most urgent; stored to sort with an ascending index.
    pub fn rank(self) -> i32 {
        match self {
            TaskPriority::Urgent => 0,
            TaskPriority::High => 1,
            TaskPriority::Normal => 2,
            TaskPriority::Low => 3,
        }
    }
}

string_enum!(TaskStatus { Pending => "pending", Completed => "completed", Cancelled => "cancelled" });

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reschedule {
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    pub reason: Option<String>,
    pub by: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000030", "title": "Ligar para o João", "description": null,
    "type": "call", "priority": "high", "due_at": "2026-11-30T13:00:00Z", "remind_at": null,
    "assignee_id": "0193a1b2-0000-7000-8000-000000000003", "lead_id": "0193a1b2-0000-7000-8000-000000000010",
    "opportunity_id": null, "status": "pending", "completed_at": null, "completed_by": null, "outcome": null,
    "reschedule_count": 0, "overdue": false, "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct Task {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    pub priority: TaskPriority,
    pub due_at: Option<DateTime<Utc>>,
    pub remind_at: Option<DateTime<Utc>>,
    pub assignee_id: Uuid,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    pub status: TaskStatus,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<Uuid>,
    pub outcome: Option<String>,
    pub reschedule_count: i32,
    /// Pending and past its due time.
    pub overdue: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
    /// Only in `GET /api/tasks/{id}`: every reschedule, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reschedules: Option<Vec<Reschedule>>,
}

/// Body of `POST /api/tasks`, `PUT` (absent optional fields cleared) and `PATCH` (absent kept).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"title": "Ligar para o João", "type": "call", "priority": "high", "due_at": "2026-11-30T13:00:00Z", "lead_id": "0193a1b2-0000-7000-8000-000000000010"}))]
pub struct TaskInput {
    /// Not blank, at most 200 characters (required on create and `PUT`).
    #[schema(pattern = r"\S", max_length = 200)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub description: Option<Option<String>>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<TaskType>)]
    pub task_type: Option<String>,
    #[schema(value_type = Option<TaskPriority>)]
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub due_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub remind_at: Option<Option<DateTime<Utc>>>,
    pub assignee_id: Option<Uuid>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub lead_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub opportunity_id: Option<Option<Uuid>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CompleteTaskRequest {
    /// What happened (e.g. "Cliente pediu proposta").
    pub outcome: Option<String>,
    /// Added to the lead's timeline as a note.
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"due_at": "2026-12-01T14:00:00Z", "reason": "Cliente pediu para ligar amanhã"}))]
pub struct RescheduleRequest {
    #[schema(required = true, nullable = false)]
    pub due_at: Option<DateTime<Utc>>,
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"overdue": 2, "today": 5, "this_week": 12, "completed_today": 3}))]
pub struct TaskSummary {
    pub overdue: u64,
    pub today: u64,
    pub this_week: u64,
    pub completed_today: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub id: Uuid,
    /// `lead` or `opportunity`.
    pub subject_type: String,
    pub subject_id: Uuid,
    /// Markdown.
    pub body: String,
    pub author_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"body": "Cliente quer **link de 500 Mbps** com IP fixo."}))]
pub struct NoteInput {
    /// Markdown, not blank, at most 20,000 characters.
    #[schema(required = true, value_type = String, pattern = r"\S", max_length = 20000)]
    pub body: Option<String>,
}
