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

string_enum!(
    /// Where the lead came from.
    LeadSource {
        Website => "website", Referral => "referral", ColdCall => "cold_call", InboundCall => "inbound_call",
        Chatbot => "chatbot", Whatsapp => "whatsapp", Event => "event", Import => "import", Partner => "partner",
        Other => "other",
    }
);

string_enum!(
    LeadStatus {
        New => "new", Contacted => "contacted", Qualified => "qualified", Unqualified => "unqualified",
        Converted => "converted", Lost => "lost",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000010", "tenant_id": "0193a1b2-0000-7000-8000-000000000002",
    "name": "João da Silva", "email": "joao@fibranet.com.br", "phone": "+5511987654321",
    "company": "FibraNet Telecom", "cnpj": "11.222.333/0001-81", "position": "Diretor de TI",
    "source": "inbound_call", "status": "new", "owner_id": null, "tags": ["link-dedicado"],
    "custom_fields": {"segmento": "provedor"}, "cep": "01310-100", "city": "São Paulo", "state": "SP",
    "notes": null, "score": 65, "last_contacted_at": null,
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z", "version": 1
}))]
pub struct Lead {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub company: Option<String>,
    /// Masked (`11.222.333/0001-81` or alphanumeric `12.ABC.345/01DE-35`).
    pub cnpj: Option<String>,
    pub position: Option<String>,
    pub source: LeadSource,
    pub status: LeadStatus,
    pub owner_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    /// Masked `00000-000`.
    pub cep: Option<String>,
    pub city: Option<String>,
    /// UF.
    pub state: Option<String>,
    pub notes: Option<String>,
    /// 0–100, recomputed on every write from the tenant's scoring rules.
    pub score: i32,
    pub last_contacted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while the lead is in the trash (soft-deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: i32,
}

/// Body of `POST /api/leads`, `PUT` and `PATCH /api/leads/{id}`. On `PATCH`, absent keys are kept
/// and `null` clears a field; on `PUT`, absent optional keys are cleared.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "João da Silva", "email": "Joao@FibraNet.com.br", "phone": "(11) 98765-4321",
    "company": "FibraNet Telecom", "cnpj": "11222333000181", "position": "Diretor de TI",
    "source": "inbound_call", "tags": ["link-dedicado"], "custom_fields": {"segmento": "provedor"},
    "cep": "01310100", "city": "São Paulo", "state": "sp"
}))]
pub struct LeadInput {
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(format = "br-phone")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(format = "cnpj")]
    pub cnpj: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub position: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(value_type = Option<LeadSource>)]
    pub source: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(value_type = Option<LeadStatus>)]
    pub status: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub owner_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub custom_fields: Option<Option<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    #[schema(format = "cep")]
    pub cep: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub city: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    /// A state abbreviation, any case (`sp`, `SP`).
    pub state: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::plans::double_option")]
    pub last_contacted_at: Option<Option<DateTime<Utc>>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AssignRequest {
    pub owner_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScoreItem {
    /// `null` for behavioural signals.
    pub rule_id: Option<Uuid>,
    pub description: String,
    pub points: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"score": 65, "breakdown": [
    {"rule_id": "0193a1b2-0000-7000-8000-000000000020", "description": "Possui CNPJ", "points": 15},
    {"rule_id": "0193a1b2-0000-7000-8000-000000000021", "description": "E-mail corporativo", "points": 15}
]}))]
pub struct ScoreBreakdown {
    pub score: i32,
    /// The sum before clamping to 0–100.
    pub raw_points: i32,
    pub breakdown: Vec<ScoreItem>,
}

string_enum!(
    ScoringOperator {
        Eq => "eq", Neq => "neq", Contains => "contains", In => "in", Gt => "gt", Lt => "lt", Exists => "exists",
        EmailDomainIsCorporate => "email_domain_is_corporate",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScoringRule {
    pub id: Uuid,
    /// A lead field (`cnpj`, `email`, `source`, `position`, `state`, `city`, `company`, `status`, `tags`,
    /// `phone`, `cep`, `name`) or `cf.<key>` for a custom field.
    pub field: String,
    pub operator: ScoringOperator,
    /// Compared value: a string, number, or list (for `in`); ignored by `exists` and `email_domain_is_corporate`.
    pub value: serde_json::Value,
    /// May be negative.
    pub points: i32,
    pub description: String,
    pub active: bool,
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"field": "position", "operator": "contains", "value": "diretor", "points": 20, "description": "Cargo de decisão"}))]
pub struct ScoringRuleInput {
    /// A lead field (`name`, `email`, …, `tags`, `notes`) or `cf.<key>` for a custom field.
    pub field: Option<String>,
    #[schema(value_type = Option<ScoringOperator>)]
    pub operator: Option<String>,
    /// A string or number for `eq`, `neq`, `contains`; a number for `gt`, `lt`; a list for `in`
    /// (or `@coverage_states`); ignored by `exists` and `email_domain_is_corporate`.
    pub value: Option<serde_json::Value>,
    #[schema(minimum = -100, maximum = 100)]
    pub points: Option<i32>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub position: Option<i32>,
}

string_enum!(
    CustomFieldType { Text => "text", Number => "number", Date => "date", Boolean => "boolean", Select => "select" }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldDef {
    pub id: Uuid,
    /// Used in `custom_fields` and in filters as `cf.<key>`.
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: CustomFieldType,
    pub required: bool,
    /// Allowed values for `select`.
    pub options: Vec<String>,
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"key": "segmento", "label": "Segmento", "type": "select", "required": false, "options": ["provedor", "varejo", "industria"]}))]
pub struct CustomFieldInput {
    pub key: Option<String>,
    pub label: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<CustomFieldType>)]
    pub field_type: Option<String>,
    pub required: Option<bool>,
    /// The choices of a `select` field (required for it), each not blank.
    pub options: Option<Vec<String>>,
    #[schema(minimum = 0, maximum = 10000)]
    pub position: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DuplicateGroup {
    /// `email`, `cnpj` or `phone`.
    pub matched_on: String,
    pub value: String,
    pub leads: Vec<Lead>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"duplicate_ids": ["0193a1b2-0000-7000-8000-000000000011"], "fields": {"phone": "0193a1b2-0000-7000-8000-000000000011"}}))]
pub struct MergeRequest {
    pub duplicate_ids: Option<Vec<Uuid>>,
    /// Optional per-field choice: field name → id of the lead (survivor or duplicate) whose value wins.
    pub fields: Option<std::collections::BTreeMap<String, Uuid>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusChange {
    pub from: Option<LeadStatus>,
    pub to: LeadStatus,
    pub actor_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

// ---------- CSV import and export ----------

string_enum!(
    /// Lifecycle of a CSV import: `queued` → `running` → `completed` or `failed`.
    ImportStatus { Queued => "queued", Running => "running", Completed => "completed", Failed => "failed" }
);

string_enum!(
    /// What an import does with a row matching an existing lead (same email, CNPJ or phone).
    DedupePolicy { Skip => "skip", Update => "update", Create => "create" }
);

/// One problem in one row of an imported file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"row": 7, "field": "email", "message": "E-mail inválido"}))]
pub struct ImportRowError {
    /// Line number in the file (the header is line 1; quoted multi-line fields count every line).
    pub row: u64,
    /// A lead field (`email`, `custom_fields.segmento`, …), `owner`, or `limit` for the plan limit.
    pub field: String,
    pub message: String,
}

/// How one column of the file was mapped.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportColumn {
    pub header: String,
    /// The lead field (`name`, `email`, `cf.segmento`, …); `null` = ignored.
    pub field: Option<String>,
}

/// A CSV import of leads and its progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-0000-7000-8000-000000000030", "status": "running", "filename": "leads.csv",
    "dry_run": false, "dedupe": "skip", "encoding": "windows-1252", "delimiter": ";",
    "rows_total": 1200, "rows_done": 500, "created": 480, "updated": 0, "skipped": 15, "error_count": 5,
    "errors": [{"row": 7, "field": "email", "message": "E-mail inválido"}], "failure": null,
    "created_by": "0193a1b2-0000-7000-8000-000000000003",
    "created_at": "2026-11-29T12:00:00Z", "finished_at": null
}))]
pub struct LeadImport {
    pub id: Uuid,
    pub status: ImportStatus,
    pub filename: String,
    pub dry_run: bool,
    pub dedupe: DedupePolicy,
    /// `utf-8` or `windows-1252`; `null` until the file was analysed.
    pub encoding: Option<String>,
    /// `;`, `,` or `\t`; `null` until the file was analysed.
    pub delimiter: Option<String>,
    /// Header → field mapping applied; empty until the file was analysed.
    pub columns: Vec<ImportColumn>,
    /// Data rows in the file (blank rows excluded); 0 until the file was analysed.
    pub rows_total: i64,
    /// Rows processed so far (created, updated, skipped or rejected).
    pub rows_done: i64,
    /// Leads created (on a dry run: that would be created).
    pub created: i64,
    pub updated: i64,
    /// Rows matching an existing lead with `dedupe=skip`.
    pub skipped: i64,
    /// All row errors found, even past the first 1000 kept in `errors`.
    pub error_count: i64,
    /// The first 1000 row errors, in file order. Omitted in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ImportRowError>>,
    /// Why the import stopped (`failed`).
    pub failure: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
