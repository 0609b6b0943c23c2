//! The one application error type and its mapping to problem+json responses.
//! Infrastructure failures are logged with the request id and answered as an opaque 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jtcrm_types::error::ERROR_DOC_BASE;
use jtcrm_types::{ErrorCode, FieldError, Problem};
use serde_json::json;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug)]
pub struct AppError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub context: Option<serde_json::Value>,
    pub retry_after: Option<u64>,
    /// Internal cause, logged and never sent to the client.
    pub source: Option<anyhow::Error>,
}

impl AppError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: vec![],
            context: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "Recurso não encontrado.")
    }

    pub fn forbidden() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "Seu perfil não tem permissão para esta operação.",
        )
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    pub fn invalid_token() -> Self {
        Self::new(
            ErrorCode::InvalidToken,
            "Token inválido, expirado ou revogado.",
        )
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(code, detail)
    }

    /// 422 naming the fields; when every error is a reference to a record that does not exist
    /// (or belongs to another company), 404 with the same field list instead (docs/api.md,
    /// "Errors"): an id given in a body is treated like an id in the path, and the answer does
    /// not tell another tenant's record from a missing one.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let references = !errors.is_empty()
            && errors
                .iter()
                .all(|e| REFERENCE_CODES.contains(&e.code.as_str()));
        let mut e = if references {
            Self::new(ErrorCode::NotFound, "Registro referenciado não encontrado.")
        } else {
            Self::new(
                ErrorCode::ValidationFailed,
                "Um ou mais campos são inválidos.",
            )
        };
        e.errors = errors;
        e
    }

    pub fn field(field: &str, code: &str, message: &str) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, detail)
    }

    pub fn stale_version() -> Self {
        Self::new(
            ErrorCode::PreconditionFailed,
            "O registro foi alterado por outra pessoa; recarregue e tente novamente.",
        )
    }

    pub fn plan_limit(limit: &str, max: i64) -> Self {
        let mut e = Self::new(
            ErrorCode::PlanLimitExceeded,
            format!(
                "O plano atual permite no máximo {max} ({limit}). Faça upgrade para continuar."
            ),
        );
        e.context = Some(json!({"limit": limit, "max": max}));
        e
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            ErrorCode::RateLimited,
            "Muitas requisições; tente novamente em instantes.",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            ErrorCode::Internal,
            "Erro interno. Informe o request_id ao suporte.",
        );
        e.source = Some(err.into());
        e
    }

    pub fn unavailable(err: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            ErrorCode::ServiceUnavailable,
            "Serviço temporariamente indisponível.",
        );
        e.source = Some(err.into());
        e
    }

    /// The database error behind an internal error, e.g. to tell which unique index a write that
    /// went through a shared helper violated.
    pub fn db_error(&self) -> Option<&sea_orm::DbErr> {
        self.source.as_ref()?.downcast_ref::<sea_orm::DbErr>()
    }

    pub fn with_context(mut self, ctx: serde_json::Value) -> Self {
        self.context = Some(ctx);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn to_problem(&self, request_id: Option<String>) -> Problem {
        Problem {
            type_url: format!("{ERROR_DOC_BASE}{}", self.code.as_str()),
            title: self.code.title().to_string(),
            status: self.code.status(),
            code: self.code.as_str().to_string(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            request_id,
            context: self.context.clone(),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        if is_connection_error(&e) {
            return AppError::unavailable(e);
        }
        AppError::internal(e)
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(e: sea_orm::TransactionError<AppError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

fn is_connection_error(e: &sea_orm::DbErr) -> bool {
    matches!(
        e,
        sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)
    )
}

/// True when the error is a unique-constraint violation (both backends).
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A unique index (or primary key) of the schema, declared next to the migration that creates it.
/// The declaration is what lets [`unique_violation`] name the index on SQLite, whose errors only
/// list the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueIndex {
    /// The index name on both backends; for a primary key, PostgreSQL's default `<table>_pkey`.
    pub name: &'static str,
    pub table: &'static str,
    /// The indexed columns, in index order.
    pub columns: &'static [&'static str],
}

/// The unique index or constraint a write violated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueViolation {
    /// The index or constraint name when the backend or the declared indexes tell it (see
    /// [`unique_violation`]); otherwise the database's own description, which names no index.
    pub constraint: String,
}

impl UniqueViolation {
    /// True when the violated constraint is `index`.
    pub fn is(&self, index: &UniqueIndex) -> bool {
        self.constraint == index.name
    }
}

/// The unique index a failed write violated, or `None` when `e` is no unique violation.
///
/// - PostgreSQL reports the constraint (index) name itself (`PgDatabaseError::constraint`).
/// - SQLite reports `UNIQUE constraint failed: table.col1, table.col2` (or `index 'name'` for
///   expression indexes): the table and column set are looked up in `declared`, the schema's unique
///   indexes as the migrations declare them. Columns no declared index has resolve to
///   `table(col1, col2)`, which matches no index name.
///
/// Callers match the result against the [`UniqueIndex`] of the index they expect, never on the
/// error text.
pub fn unique_violation(e: &sea_orm::DbErr, declared: &[UniqueIndex]) -> Option<UniqueViolation> {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    if !is_unique_violation(e) {
        return None;
    }
    let db_err = match e {
        DbErr::Exec(RuntimeErr::SqlxError(x)) | DbErr::Query(RuntimeErr::SqlxError(x)) => {
            match x.as_ref() {
                sqlx::Error::Database(d) => Some(d),
                _ => None,
            }
        }
        _ => None,
    };
    let constraint = match db_err {
        Some(d) => match d.constraint() {
            Some(name) => name.to_string(),
            None => sqlite_unique_index(d.message(), declared),
        },
        None => e.to_string(),
    };
    Some(UniqueViolation { constraint })
}

/// The index named by SQLite's `UNIQUE constraint failed: …` message.
fn sqlite_unique_index(message: &str, declared: &[UniqueIndex]) -> String {
    let Some(rest) = message.strip_prefix("UNIQUE constraint failed: ") else {
        return message.to_string();
    };
    if let Some(name) = rest
        .strip_prefix("index '")
        .and_then(|n| n.strip_suffix('\''))
    {
        return name.to_string();
    }
    let mut table = "";
    let mut columns: Vec<&str> = vec![];
    for qualified in rest.split(", ") {
        let (t, c) = qualified.split_once('.').unwrap_or(("", qualified));
        table = t;
        columns.push(c);
    }
    let same_columns = |i: &UniqueIndex| {
        i.columns.len() == columns.len() && i.columns.iter().all(|c| columns.contains(c))
    };
    match declared
        .iter()
        .find(|i| i.table == table && same_columns(i))
    {
        Some(i) => i.name.to_string(),
        None => format!("{table}({})", columns.join(", ")),
    }
}

// The request id of the current request, set by the request-id middleware in a task-local.
tokio::task_local! {
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|r| r.clone()).ok()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        let status = self.status();
        if status.is_server_error() {
            match &self.source {
                Some(src) => {
                    tracing::error!(request_id = ?request_id, code = self.code.as_str(), error = ?src, "request failed")
                }
                None => {
                    tracing::error!(request_id = ?request_id, code = self.code.as_str(), "request failed")
                }
            }
        }
        let problem = self.to_problem(request_id);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// Collects field errors while validating a request body.
#[derive(Default, Debug)]
pub struct Validator {
    pub errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, code: &str, message: &str) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// A required, trimmed, non-empty string of at most `max` characters.
    pub fn required_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        match value.map(str::trim) {
            None | Some("") => {
                self.add(field, "required", "Campo obrigatório");
                None
            }
            Some(v) => self.text(field, v, max),
        }
    }

    /// An optional text: `None`/blank become `None`.
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        match value.map(str::trim) {
            None | Some("") => None,
            Some(v) => self.text(field, v, max),
        }
    }

    fn text(&mut self, field: &str, v: &str, max: usize) -> Option<String> {
        if v.chars().count() > max {
            self.add(field, "too_long", &format!("Máximo de {max} caracteres"));
            return None;
        }
        Some(v.to_string())
    }

    pub fn finish(self) -> AppResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::validation(self.errors))
        }
    }
}

/// Field error codes that mean "the record this id names does not exist for this company".
pub const REFERENCE_CODES: [&str; 7] = [
    "unknown_lead",
    "unknown_user",
    "unknown_opportunity",
    "unknown_item",
    "unknown_entity",
    "unknown_cadence",
    "unknown_stage",
];

impl AppError {
    /// `detail` followed by each field error, for command-line output.
    pub fn detail_with_fields(&self) -> String {
        let mut s = self.detail.clone();
        for e in &self.errors {
            s.push_str(&format!("\n  {}: {}", e.field, e.message));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXT: UniqueIndex = UniqueIndex {
        name: "ux_users_extension",
        table: "users",
        columns: &["tenant_id", "extension"],
    };
    const EMAIL: UniqueIndex = UniqueIndex {
        name: "ux_users_email",
        table: "users",
        columns: &["email"],
    };

    #[test]
    fn sqlite_messages_resolve_to_the_declared_index() {
        let declared = [EMAIL, EXT];
        let msg = "UNIQUE constraint failed: users.tenant_id, users.extension";
        assert_eq!(sqlite_unique_index(msg, &declared), "ux_users_extension");
        let msg = "UNIQUE constraint failed: users.email";
        assert_eq!(sqlite_unique_index(msg, &declared), "ux_users_email");
        let msg = "UNIQUE constraint failed: index 'ux_expr'";
        assert_eq!(sqlite_unique_index(msg, &declared), "ux_expr");
        // Undeclared columns name no index.
        let msg = "UNIQUE constraint failed: users.tenant_id, users.id";
        assert_eq!(sqlite_unique_index(msg, &declared), "users(tenant_id, id)");
        let msg = "UNIQUE constraint failed: leads.email";
        assert_eq!(sqlite_unique_index(msg, &declared), "leads(email)");
    }
}
