//! Automations (trigger → conditions → actions) with their run log, multi-step cadences with their
//! enrolments, and the company's business hours. Requests use `Option` so validation names fields.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
    };
}

// ---------- definitions ----------

/// What starts an automation: a domain event type plus optional filters on the event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"event": "lead.status_changed", "filters": {"after.status": "qualified"}}))]
pub struct Trigger {
    /// Event type, e.g. `lead.created`, `lead.status_changed`, `task.overdue`, `opportunity.won`.
    pub event: Option<String>,
    /// Dotted path in the event's `data` (`after.status`, `before.status`, `changes.owner_id.to`)
    /// → the value it must have, or a list of accepted values. All filters must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<BTreeMap<String, Value>>,
}

string_enum!(
    /// Comparison of a [`Condition`] leaf.
    ConditionOp {
        Eq => "eq", Ne => "ne", Gt => "gt", Gte => "gte", Lt => "lt", Lte => "lte",
        /// Text contains (case-insensitive) or list contains the value.
        Contains => "contains",
        NotContains => "not_contains",
        /// The field's value is one of `value` (a list).
        In => "in",
        NotIn => "not_in",
        IsEmpty => "is_empty",
        IsNotEmpty => "is_not_empty",
        /// The event changed the field; `from` and/or `to` narrow the change.
        Changed => "changed",
    }
);

/// A condition tree: a group (`all` or `any` of sub-conditions) or a leaf comparing `field` of
/// the entity (`status`, `score`, `tags`, `custom_fields.segmento`, `owner_id`…) with `value`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"all": [
    {"field": "status", "op": "changed", "from": "new", "to": "qualified"},
    {"any": [{"field": "score", "op": "gte", "value": 50}, {"field": "tags", "op": "contains", "value": "vip"}]}
]}))]
pub struct Condition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<ConditionOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Only with `changed`: the value before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// Only with `changed`: the value after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// A delay: exactly one unit. `days` keeps the local time of day; `business_hours` counts only
/// time inside the company's business hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"business_hours": 4}))]
pub struct Delay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<i64>,
}

string_enum!(
    /// Who gets a task or a lead.
    AssigneeMode {
        /// The lead's owner.
        Owner => "owner",
        /// The user named by `user_id`.
        User => "user",
        /// The next active `sales` user in rotation.
        RoundRobin => "round_robin",
    }
);

string_enum!(
    /// Recipient of `send_email`.
    EmailTo {
        Lead => "lead",
        Owner => "owner",
        /// The fixed `address`.
        Address => "address",
    }
);

/// One step of an automation. Texts (`title`, `subject`, `body`, `description`) accept
/// placeholders such as `{{lead.name}}`, `{{lead.company}}`, `{{owner.name}}`, `{{automation.name}}`;
/// a missing value renders empty.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AutomationAction {
    /// Creates a task linked to the lead.
    CreateTask {
        /// `call`, `email`, `meeting`, `whatsapp`, `visit`, `follow_up` or `other`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// `low`, `normal`, `high` or `urgent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<String>,
        /// When the task is due, counted from when the action runs; none = no due date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in: Option<Delay>,
        /// Default `owner` (falls back to the automation's author when the lead has no owner).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<AssigneeMode>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<Uuid>,
    },
    /// Queues an email.
    SendEmail {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<EmailTo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Gives the lead an owner.
    AssignOwner {
        /// `user` or `round_robin`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<AssigneeMode>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<Uuid>,
    },
    /// Changes the lead: status, tags, custom fields.
    UpdateField {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        add_tags: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remove_tags: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom_fields: Option<Map<String, Value>>,
    },
    /// Adds (or with a negative number removes) behavioural points to the lead's score.
    AdjustScore {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        points: Option<i32>,
    },
    /// Moves the opportunity (or the lead's most recent open opportunity) to a stage.
    MoveStage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage_id: Option<Uuid>,
    },
    /// Enrols the lead in a cadence (an already active enrolment is left as it is).
    EnrollInCadence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cadence_id: Option<Uuid>,
    },
    /// POSTs the event, entity and automation as JSON to `url`, signed with
    /// `X-Jtcrm-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
    Webhook {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// Write-only (16 to 200 characters). On `PUT`, omit it to keep the secret of the
        /// existing webhook action with the same URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// Delays the actions after it.
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hours: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        days: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        business_hours: Option<i64>,
    },
}

string_enum!(ActionType {
    CreateTask => "create_task", SendEmail => "send_email", AssignOwner => "assign_owner",
    UpdateField => "update_field", AdjustScore => "adjust_score", MoveStage => "move_stage",
    EnrollInCadence => "enroll_in_cadence", Webhook => "webhook", Wait => "wait",
});

impl AutomationAction {
    pub fn action_type(&self) -> ActionType {
        match self {
            AutomationAction::CreateTask { .. } => ActionType::CreateTask,
            AutomationAction::SendEmail { .. } => ActionType::SendEmail,
            AutomationAction::AssignOwner { .. } => ActionType::AssignOwner,
            AutomationAction::UpdateField { .. } => ActionType::UpdateField,
            AutomationAction::AdjustScore { .. } => ActionType::AdjustScore,
            AutomationAction::MoveStage { .. } => ActionType::MoveStage,
            AutomationAction::EnrollInCadence { .. } => ActionType::EnrollInCadence,
            AutomationAction::Webhook { .. } => ActionType::Webhook,
            AutomationAction::Wait { .. } => ActionType::Wait,
        }
    }
}

/// Body of `POST /api/automations` and `PUT /api/automations/{id}` (absent optional fields take
/// their defaults).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Lead qualificado → ligação",
    "trigger": {"event": "lead.status_changed", "filters": {"after.status": "qualified"}},
    "conditions": {"all": [{"field": "score", "op": "gte", "value": 30}]},
    "actions": [
        {"type": "create_task", "task_type": "call", "title": "Ligar para {{lead.name}}", "due_in": {"business_hours": 4}, "assignee": "owner"},
        {"type": "send_email", "to": "owner", "subject": "Novo lead qualificado: {{lead.name}}", "body": "Olá {{owner.name}}, ligue para {{lead.name}} ({{lead.phone}})."}
    ]
}))]
pub struct AutomationInput {
    /// Required (not blank) on create and on update, at most 200 characters.
    #[schema(required = true, value_type = String, pattern = r"\S", max_length = 200)]
    pub name: Option<String>,
    pub description: Option<String>,
    /// Default `true`.
    pub active: Option<bool>,
    pub trigger: Option<Trigger>,
    pub conditions: Option<Condition>,
    pub actions: Option<Vec<AutomationAction>>,
    /// Default `false`: a failed action is recorded and the following actions still run.
    pub stop_on_error: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Automation {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub trigger: Trigger,
    pub conditions: Option<Condition>,
    pub actions: Vec<AutomationAction>,
    pub stop_on_error: bool,
    /// The user whose name the automation's changes are made in.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

// ---------- runs ----------

string_enum!(RunStatus {
    /// Actions are queued or running.
    Running => "running",
    Succeeded => "succeeded",
    /// At least one action failed; the others ran.
    Failed => "failed",
    /// An action failed with `stop_on_error`: the rest were skipped.
    Stopped => "stopped",
    /// The automation was changed, deactivated or deleted while the run waited: the actions not
    /// done yet (the wait in progress included) were skipped.
    Cancelled => "cancelled",
});

string_enum!(ActionStatus {
    /// Not scheduled yet (waits for the previous action).
    Pending => "pending",
    /// A job is scheduled for `run_at`.
    Queued => "queued",
    Succeeded => "succeeded",
    Failed => "failed",
    Skipped => "skipped",
});

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionResult {
    pub position: i32,
    #[serde(rename = "type")]
    pub action_type: ActionType,
    pub status: ActionStatus,
    /// When the action's job is (or was) due.
    pub run_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    /// What the action did, e.g. `{"task_id": …}` or `{"status": 200}`.
    pub result: Option<Value>,
    pub error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000071", "automation_id": "0193a1b2-0000-7000-8000-000000000070",
    "source": "event", "event_id": "0193a1b2-0000-7000-8000-000000000072", "event_type": "lead.status_changed",
    "entity_type": "lead", "entity_id": "0193a1b2-0000-7000-8000-000000000010", "depth": 1, "status": "succeeded",
    "actions": [{"position": 0, "type": "create_task", "status": "succeeded", "run_at": "2026-11-29T12:00:01Z",
                 "attempts": 1, "result": {"task_id": "0193a1b2-0000-7000-8000-000000000030"}, "error": null,
                 "finished_at": "2026-11-29T12:00:01Z"}],
    "created_at": "2026-11-29T12:00:01Z", "finished_at": "2026-11-29T12:00:01Z"
}))]
pub struct AutomationRun {
    pub id: Uuid,
    pub automation_id: Uuid,
    /// `event` or `manual` (`POST …/execute`).
    pub source: String,
    pub event_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub entity_type: String,
    pub entity_id: Uuid,
    /// 1 for a run caused by a person's change; +1 for each automation in between.
    pub depth: i32,
    pub status: RunStatus,
    pub actions: Vec<ActionResult>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Body of `POST /api/automations/{id}/execute`: one entity, or every lead matching `filter` (the
/// query parameters of `GET /api/leads`, e.g. `{"status": "qualified", "tag": "vip"}`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"filter": {"status": "qualified", "owner_id": "none"}, "dry_run": true}))]
pub struct ExecuteRequest {
    /// One entity (exactly one of `entity_id` and `filter`).
    pub entity_id: Option<Uuid>,
    /// Every lead matching these list filters (exactly one of `entity_id` and `filter`).
    pub filter: Option<Map<String, Value>>,
    /// Show what would happen without doing it.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionPreview {
    pub position: i32,
    #[serde(rename = "type")]
    pub action_type: ActionType,
    /// pt-BR description of what the action would do.
    pub summary: String,
    /// Resolved values (rendered texts, due date, assignee, recipient…).
    pub details: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntityPreview {
    pub entity_id: Uuid,
    pub conditions_met: bool,
    pub actions: Vec<ActionPreview>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecuteResponse {
    pub dry_run: bool,
    /// Entities whose conditions held (runs started, or would start).
    pub matched: u64,
    /// Entities whose conditions did not hold.
    pub skipped: u64,
    /// Ids of the runs started (empty on a dry run).
    pub runs: Vec<Uuid>,
    /// Only on a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previews: Option<Vec<EntityPreview>>,
}

// ---------- cadences ----------

string_enum!(CadenceChannel {
    /// A call task for the lead's owner.
    Call => "call",
    /// A WhatsApp task for the lead's owner.
    Whatsapp => "whatsapp",
    /// An email to the lead.
    Email => "email",
    /// A generic task for the lead's owner.
    Task => "task",
});

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"delay": {"days": 2}, "channel": "call", "title": "Ligar para {{lead.name}}"}))]
pub struct CadenceStep {
    /// After the previous step (or the enrolment): `days` or `business_hours` (also `hours`,
    /// `minutes`). Default: immediately (still inside business hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    pub channel: Option<CadenceChannel>,
    /// Task title (call, whatsapp, task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Task description, or the email body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Email subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Prospecção ativa",
    "steps": [
        {"channel": "email", "subject": "{{lead.name}}, conheça nossos planos", "body": "Olá {{lead.name}}, …"},
        {"delay": {"days": 2}, "channel": "call", "title": "Ligar para {{lead.name}}"},
        {"delay": {"business_hours": 8}, "channel": "whatsapp", "title": "WhatsApp para {{lead.name}}"}
    ]
}))]
pub struct CadenceInput {
    /// Required (not blank) on create and on update, at most 200 characters.
    #[schema(required = true, value_type = String, pattern = r"\S", max_length = 200)]
    pub name: Option<String>,
    pub description: Option<String>,
    /// Default `true`. An inactive cadence accepts no new enrolments and pauses its steps.
    pub active: Option<bool>,
    /// 1 to 30 steps.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 30)]
    pub steps: Option<Vec<CadenceStep>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Cadence {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub active: bool,
    pub steps: Vec<CadenceStep>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"lead_ids": ["0193a1b2-0000-7000-8000-000000000010"]}))]
pub struct LeadIdsRequest {
    #[schema(required = true, nullable = false, min_items = 1)]
    pub lead_ids: Option<Vec<Uuid>>,
}

/// Why a lead leaves a cadence by hand (schema of [`ExitRequest::reason`]).
#[derive(Debug, Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CadenceExitReason {
    Replied,
    Manual,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"reason": "replied"}))]
pub struct ExitRequest {
    /// `replied` (the lead answered) or `manual` (default).
    #[schema(value_type = Option<CadenceExitReason>)]
    pub reason: Option<String>,
}

string_enum!(EnrollmentStatus {
    Active => "active",
    /// Every step ran.
    Completed => "completed",
    /// Left early: see `exit_reason`.
    Exited => "exited",
});

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000081", "cadence_id": "0193a1b2-0000-7000-8000-000000000080",
    "lead_id": "0193a1b2-0000-7000-8000-000000000010", "status": "active", "current_step": 1, "steps_total": 3,
    "next_run_at": "2026-12-01T11:00:00Z", "exit_reason": null, "enrolled_by": "0193a1b2-0000-7000-8000-000000000003",
    "enrolled_at": "2026-11-29T12:00:00Z", "finished_at": null, "history": [{"step": 0, "channel": "email", "at": "2026-11-29T12:00:01Z", "result": {"email_id": "0193a1b2-0000-7000-8000-000000000090"}}]
}))]
pub struct Enrollment {
    pub id: Uuid,
    pub cadence_id: Uuid,
    pub lead_id: Uuid,
    pub status: EnrollmentStatus,
    /// Index of the next step to run (0-based); equals `steps_total` when completed.
    pub current_step: i32,
    pub steps_total: i32,
    pub next_run_at: Option<DateTime<Utc>>,
    /// `converted`, `lost`, `won`, `replied`, `manual`, `lead_deleted`, `cadence_deleted`.
    pub exit_reason: Option<String>,
    pub enrolled_by: Option<Uuid>,
    pub enrolled_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Steps run so far with what each did.
    pub history: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub enrolled: Vec<Enrollment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnenrollResponse {
    /// How many active enrolments ended.
    pub unenrolled: u64,
}

// ---------- business hours ----------

/// When cadence steps (and `business_hours` delays) may run, in the company's timezone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"timezone": "America/Sao_Paulo", "weekdays": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00", "holidays": ["2026-12-25"]}))]
pub struct BusinessHours {
    /// IANA timezone (the company's timezone unless set here).
    pub timezone: String,
    /// ISO weekdays: 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// `HH:MM`, local time.
    pub start: String,
    /// `HH:MM` after `start`; `24:00` = midnight.
    pub end: String,
    /// Dates without business hours.
    pub holidays: Vec<NaiveDate>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct BusinessHoursInput {
    /// An IANA timezone; `null` or `""` follows the company's timezone.
    pub timezone: Option<String>,
    /// ISO weekdays, 1 = Monday … 7 = Sunday; at least one.
    #[schema(min_items = 1)]
    pub weekdays: Option<Vec<u8>>,
    /// `HH:MM`, before `end`.
    #[schema(pattern = r"^\s*(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)\s*$")]
    pub start: Option<String>,
    /// `HH:MM` after `start`; `24:00` = midnight.
    #[schema(pattern = r"^\s*(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)\s*$")]
    pub end: Option<String>,
    pub holidays: Option<Vec<NaiveDate>>,
}
