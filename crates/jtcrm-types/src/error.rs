//! The problem+json (RFC 9457) error body and the table of stable public error codes.
//! Codes are part of the API contract: clients switch on `code`, never on `detail`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable machine codes. Each maps to exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    MalformedJson,
    InvalidId,
    UnsupportedMediaType,
    Unauthenticated,
    InvalidCredentials,
    InvalidToken,
    Forbidden,
    TenantSuspended,
    TenantMismatch,
    SignupDisabled,
    NotFound,
    MethodNotAllowed,
    SlugTaken,
    EmailTaken,
    DuplicateLead,
    ExtensionTaken,
    SkuTaken,
    PlanCodeTaken,
    FieldKeyTaken,
    AlreadyCompleted,
    AlreadyConverted,
    AlreadyEnrolled,
    InvalidStateTransition,
    ConcurrentUpdate,
    PipelineNotEmpty,
    StageNotEmpty,
    LastAdmin,
    CannotDeleteSelf,
    LeadMerged,
    CadenceInactive,
    NoActiveAdmin,
    IdempotencyKeyReused,
    IdempotencyKeyInUse,
    PreconditionFailed,
    PayloadTooLarge,
    ValidationFailed,
    PlanLimitExceeded,
    FeatureNotInPlan,
    RateLimited,
    Internal,
    ServiceUnavailable,
    IntegrationNotConfigured,
    PabxRejected,
    PabxUnavailable,
}

impl ErrorCode {
    pub const fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest | MalformedJson | InvalidId => 400,
            Unauthenticated | InvalidCredentials | InvalidToken => 401,
            PlanLimitExceeded => 402,
            Forbidden | TenantSuspended | TenantMismatch | SignupDisabled | FeatureNotInPlan => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            SlugTaken
            | EmailTaken
            | DuplicateLead
            | ExtensionTaken
            | SkuTaken
            | PlanCodeTaken
            | FieldKeyTaken
            | AlreadyCompleted
            | AlreadyConverted
            | AlreadyEnrolled
            | InvalidStateTransition
            | ConcurrentUpdate
            | PipelineNotEmpty
            | StageNotEmpty
            | LastAdmin
            | CannotDeleteSelf
            | LeadMerged
            | CadenceInactive
            | NoActiveAdmin
            | IdempotencyKeyReused
            | IdempotencyKeyInUse
            | IntegrationNotConfigured => 409,
            PreconditionFailed => 412,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            ValidationFailed | PabxRejected => 422,
            RateLimited => 429,
            Internal => 500,
            ServiceUnavailable | PabxUnavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "bad_request",
            MalformedJson => "malformed_json",
            InvalidId => "invalid_id",
            UnsupportedMediaType => "unsupported_media_type",
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            InvalidToken => "invalid_token",
            Forbidden => "forbidden",
            TenantSuspended => "tenant_suspended",
            TenantMismatch => "tenant_mismatch",
            SignupDisabled => "signup_disabled",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            SlugTaken => "slug_taken",
            EmailTaken => "email_taken",
            DuplicateLead => "duplicate_lead",
            ExtensionTaken => "extension_taken",
            SkuTaken => "sku_taken",
            PlanCodeTaken => "plan_code_taken",
            FieldKeyTaken => "field_key_taken",
            AlreadyCompleted => "already_completed",
            AlreadyConverted => "already_converted",
            AlreadyEnrolled => "already_enrolled",
            InvalidStateTransition => "invalid_state_transition",
            ConcurrentUpdate => "concurrent_update",
            PipelineNotEmpty => "pipeline_not_empty",
            StageNotEmpty => "stage_not_empty",
            LastAdmin => "last_admin",
            CannotDeleteSelf => "cannot_delete_self",
            LeadMerged => "lead_merged",
            CadenceInactive => "cadence_inactive",
            NoActiveAdmin => "no_active_admin",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyKeyInUse => "idempotency_key_in_use",
            PreconditionFailed => "precondition_failed",
            PayloadTooLarge => "payload_too_large",
            ValidationFailed => "validation_failed",
            PlanLimitExceeded => "plan_limit_exceeded",
            FeatureNotInPlan => "feature_not_in_plan",
            RateLimited => "rate_limited",
            Internal => "internal_error",
            ServiceUnavailable => "service_unavailable",
            IntegrationNotConfigured => "integration_not_configured",
            PabxRejected => "pabx_rejected",
            PabxUnavailable => "pabx_unavailable",
        }
    }

    /// Short pt-BR title shown to users.
    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "Requisição inválida",
            MalformedJson => "JSON malformado",
            InvalidId => "Identificador inválido",
            UnsupportedMediaType => "Tipo de conteúdo não suportado",
            Unauthenticated => "Não autenticado",
            InvalidCredentials => "Credenciais inválidas",
            InvalidToken => "Token inválido",
            Forbidden => "Acesso negado",
            TenantSuspended => "Empresa suspensa",
            TenantMismatch => "Empresa divergente",
            SignupDisabled => "Cadastro público desabilitado",
            NotFound => "Não encontrado",
            MethodNotAllowed => "Método não permitido",
            SlugTaken => "Identificador já em uso",
            EmailTaken => "E-mail já cadastrado",
            DuplicateLead => "Lead duplicado",
            ExtensionTaken => "Ramal já atribuído",
            SkuTaken => "SKU já cadastrado",
            PlanCodeTaken => "Código de plano já em uso",
            FieldKeyTaken => "Chave de campo já em uso",
            AlreadyCompleted => "Tarefa já concluída",
            AlreadyConverted => "Lead já convertido",
            AlreadyEnrolled => "Lead já inscrito",
            InvalidStateTransition => "Operação inválida no status atual",
            ConcurrentUpdate => "Alteração simultânea",
            PipelineNotEmpty => "Pipeline com oportunidades",
            StageNotEmpty => "Etapa com oportunidades",
            LastAdmin => "Último administrador",
            CannotDeleteSelf => "Não é possível excluir o próprio usuário",
            LeadMerged => "Lead mesclado",
            CadenceInactive => "Cadência inativa",
            NoActiveAdmin => "Nenhum administrador ativo",
            IdempotencyKeyReused => "Idempotency-Key reutilizada",
            IdempotencyKeyInUse => "Requisição em andamento",
            PreconditionFailed => "Versão desatualizada",
            PayloadTooLarge => "Corpo da requisição muito grande",
            ValidationFailed => "Dados inválidos",
            PlanLimitExceeded => "Limite do plano atingido",
            FeatureNotInPlan => "Recurso não incluído no plano",
            RateLimited => "Muitas requisições",
            Internal => "Erro interno",
            ServiceUnavailable => "Serviço indisponível",
            IntegrationNotConfigured => "Integração não configurada",
            PabxRejected => "PABX recusou a operação",
            PabxUnavailable => "PABX indisponível",
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `admin.email`.
    #[schema(example = "email")]
    pub field: String,
    /// Stable machine code, e.g. `required`, `invalid_cnpj`, `too_short`.
    #[schema(example = "invalid_email")]
    pub code: String,
    /// Human message (pt-BR).
    #[schema(example = "E-mail inválido")]
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem details, the body of every error response (`application/problem+json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://docs.jtcrm.com.br/errors/validation_failed",
    "title": "Dados inválidos",
    "status": 422,
    "code": "validation_failed",
    "detail": "Um ou mais campos são inválidos.",
    "errors": [{"field": "email", "code": "invalid_email", "message": "E-mail inválido"}],
    "request_id": "0193a1b2-0000-7000-8000-000000000000"
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_url: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extra machine-readable context (e.g. `limit` for `plan_limit_exceeded`, `existing_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
}

pub const ERROR_DOC_BASE: &str = "https://docs.jtcrm.com.br/errors/";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Every variant of `ErrorCode`, read from its derived schema so a new variant needs no list.
    fn all_codes() -> Vec<ErrorCode> {
        let schema = serde_json::to_value(<ErrorCode as utoipa::PartialSchema>::schema()).unwrap();
        schema["enum"]
            .as_array()
            .expect("ErrorCode schema lists its variants")
            .iter()
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .collect()
    }

    /// `docs/api.md` has one table row per code: `` | `code` | status | when | ``.
    #[test]
    fn every_code_is_documented_with_its_status() {
        const DOC: &str = include_str!("../../../docs/api.md");
        let rows: Vec<Vec<&str>> = DOC
            .lines()
            .skip_while(|l| *l != "| code | status | when |")
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect();
        let codes = all_codes();
        assert!(codes.len() > 20, "{codes:?}");
        for code in &codes {
            let name = format!("`{}`", code.as_str());
            let row = rows
                .iter()
                .find(|r| r[0] == name)
                .unwrap_or_else(|| panic!("{name} is missing from the table in docs/api.md"));
            assert_eq!(
                row.get(1).copied(),
                Some(code.status().to_string().as_str()),
                "status of {name} in docs/api.md"
            );
            assert!(
                row.get(2).is_some_and(|w| !w.is_empty()),
                "{name}: say when it happens"
            );
        }
        for r in &rows {
            assert!(
                codes.iter().any(|c| format!("`{}`", c.as_str()) == r[0]),
                "docs/api.md documents {}, which is no ErrorCode",
                r[0]
            );
        }
    }

    #[test]
    fn codes_are_distinct() {
        let codes = all_codes();
        for (i, a) in codes.iter().enumerate() {
            for b in &codes[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }
}
