//! Request extractors: JSON/path/query with problem+json rejections, and the authentication,
//! tenant-context and role guards that run before any handler body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use bytes::Bytes;
use chrono::Utc;
use jtcrm_types::dto::Role;
use jtcrm_types::{ErrorCode, FieldError};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::guard::{Admins, Authorized};
use crate::error::{AppError, current_request_id};
use crate::security::Claims;
use crate::state::AppState;
use crate::tenancy::TenantSnapshot;

// ---------- body, path and query ----------

/// JSON body. Malformed JSON → 400; missing fields, wrong types, bad values → 422 naming the field;
/// a non-JSON content type → 415; over the body limit → 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw bytes of a JSON body (content type and size checked), for handlers that also need the
/// exact bytes (idempotency fingerprints).
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "Envie o corpo como JSON com Content-Type: application/json.",
            ));
        }
        Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|rej| {
                if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::new(
                        ErrorCode::PayloadTooLarge,
                        "O corpo da requisição excede o limite permitido.",
                    )
                } else {
                    AppError::bad_request("Não foi possível ler o corpo da requisição.")
                }
            })
    }
}

/// Parses a request body: malformed JSON → 400; a body that is not a JSON object (serde would
/// otherwise fill a struct from an array, by position) → 422 `body` `invalid_type`; U+0000 in any
/// text (value or key) is removed ([`strip_nul`]); a number with a zero fraction (`410.0`) is the
/// integer it denotes, as JSON Schema says; then the fields of `T` (422 naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Syntax first, so a truncated document is reported as malformed rather than by its first bad field.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(AppError::new(
            ErrorCode::MalformedJson,
            format!(
                "JSON malformado (linha {}, coluna {}).",
                e.line(),
                e.column()
            ),
        ));
    }
    // Every documented body is an object; no endpoint takes a top-level array.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(AppError::field(
            "body",
            "invalid_type",
            "O corpo da requisição deve ser um objeto JSON.",
        ));
    }
    if has_nul_escape(bytes) {
        let cleaned = rewrite(bytes, strip_nul);
        return match parse_fields(&cleaned) {
            Err(e)
                if e.errors
                    .iter()
                    .any(|f| f.message.contains("floating point")) =>
            {
                parse_fields(&rewrite(&cleaned, integral_floats))
            }
            other => other,
        };
    }
    match parse_fields(bytes) {
        Err(e)
            if e.errors
                .iter()
                .any(|f| f.message.contains("floating point")) =>
        {
            parse_fields(&rewrite(bytes, integral_floats))
        }
        other => other,
    }
}

/// Re-encodes a syntactically valid JSON document after `edit` (only on the rare paths that need it).
fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut v) => {
            edit(&mut v);
            serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    }
}

/// The fields of `T` from a JSON object: 422 naming the field on a bad value.
fn parse_fields<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    AppError::validation(vec![data_error(&path, &inner)])
                }
                _ => AppError::new(
                    ErrorCode::MalformedJson,
                    format!(
                        "JSON malformado (linha {}, coluna {}).",
                        inner.line(),
                        inner.column()
                    ),
                ),
            });
        }
    };
    de.end()
        .map_err(|_| AppError::new(ErrorCode::MalformedJson, "Conteúdo extra após o JSON."))?;
    Ok(value)
}

/// Removes U+0000 from every string and key of a JSON value (decision, docs/api.md "Text"):
/// PostgreSQL cannot store it in `text` nor `jsonb`, no user types it, and removing it in this one
/// place makes both backends answer the same, for bodies and query strings alike.
pub fn strip_nul(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => s.retain(|c| c != '\0'),
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nul),
        serde_json::Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                for (mut k, v) in old {
                    k.retain(|c| c != '\0');
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(strip_nul);
        }
        _ => {}
    }
}

/// Numbers with a zero fraction (`410.0`, `1e3`) become integers: JSON Schema's `integer` admits
/// them, so the integer fields of the API do too.
fn integral_floats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *v = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats),
        _ => {}
    }
}

/// Whether a syntactically valid JSON text holds the escape `\u0000` (the only way a JSON document
/// can carry U+0000: raw control characters are invalid). An escaped backslash (`\\u0000`) is
/// literal text, so each escape sequence is skipped whole.
fn has_nul_escape(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\\'))
    {
        let at = i + off;
        if bytes.get(at + 1..at + 6) == Some(b"u0000".as_slice()) {
            return true;
        }
        // Skip the backslash and the character it escapes.
        i = at + 2;
    }
    false
}

fn data_error(path: &str, err: &serde_json::Error) -> FieldError {
    let msg = err.to_string();
    // serde reports "missing field `x`" at the parent's path.
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let field = if path == "." || path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        return FieldError::new(field, "required", "Campo obrigatório");
    }
    let field = if path == "." || path.is_empty() {
        "body".to_string()
    } else {
        path.to_string()
    };
    if msg.starts_with("invalid type") {
        FieldError::new(field, "invalid_type", format!("Tipo inválido: {msg}"))
    } else if msg.starts_with("unknown field") {
        FieldError::new(field, "unknown_field", format!("Campo desconhecido: {msg}"))
    } else {
        FieldError::new(field, "invalid_value", format!("Valor inválido: {msg}"))
    }
}

/// Path parameters; an unparseable id answers 400 `invalid_id`; a segment holding U+0000 (`%00`)
/// 404, as no record's key can hold it (docs/api.md, "Text").
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        // A URI cannot carry a raw NUL: only `%00` decodes to one.
        if parts.uri.path().contains("%00") {
            return Err(AppError::not_found());
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|_| {
                let mut e = AppError::new(ErrorCode::InvalidId, "Identificador inválido na URL.");
                e.errors = vec![FieldError::new(
                    "id",
                    "invalid_id",
                    "Identificador inválido",
                )];
                e
            })
    }
}

/// The parameters of a query string as every query parser of the API reads them (decision, see
/// docs/api.md): a parameter with an empty or blank value (`?cursor=`) is the same as an absent
/// one (the document says `allowEmptyValue`), and U+0000 (`%00`) is removed from names and values,
/// as from JSON bodies.
pub fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, AppError> {
    let strip = |s: std::borrow::Cow<'_, str>| -> String {
        if s.contains('\0') {
            s.replace('\0', "")
        } else {
            s.into_owned()
        }
    };
    Ok(form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (strip(k), strip(v)))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect())
}

/// A boolean query parameter: exactly `true` or `false` (422 otherwise, like the typed queries).
pub fn query_bool(field: &str, v: &str) -> Result<bool, AppError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AppError::field(field, "invalid_value", "Use true ou false")),
    }
}

/// Query string; bad values answer 422 naming the parameter. Read through [`query_pairs`].
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let pairs = query_pairs(parts.uri.query().unwrap_or(""))?;
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                let msg = err.into_inner().to_string();
                let field = if path == "." {
                    msg.split('`').nth(1).unwrap_or("query").to_string()
                } else {
                    path
                };
                AppError::validation(vec![FieldError::new(
                    field,
                    "invalid_value",
                    format!("Parâmetro inválido: {msg}"),
                )])
            })
    }
}

// ---------- request metadata ----------

#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

pub fn client_ip(parts: &Parts, trust_proxy: bool) -> Option<String> {
    if trust_proxy
        && let Some(xff) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        && let Some(first) = xff
            .split(',')
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    {
        return Some(first.chars().take(64).collect());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string())
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(RequestMeta {
            request_id: current_request_id(),
            ip: client_ip(parts, state.settings.trust_proxy_headers),
        })
    }
}

// ---------- authentication ----------

/// A valid, non-revoked access token.
#[derive(Debug, Clone)]
pub struct Auth {
    pub claims: Claims,
    pub role: Role,
    pub meta: RequestMeta,
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub fn deny_key(jti: Uuid) -> String {
    format!("deny:{jti}")
}

/// Tokens issued before this instant (ms) for the user are void (deactivation, role or password change).
pub fn user_invalidation_key(user_id: Uuid) -> String {
    format!("uinv:{user_id}")
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(a) = parts.extensions.get::<Auth>() {
            return Ok(a.clone());
        }
        let token = bearer(parts).ok_or_else(|| {
            AppError::unauthenticated("Envie o token de acesso no cabeçalho Authorization: Bearer.")
        })?;
        let claims = state
            .jwt
            .decode(token)
            .ok_or_else(AppError::invalid_token)?;
        let role = Role::parse(&claims.role).ok_or_else(AppError::invalid_token)?;
        if (role == Role::SuperAdmin) != claims.tenant_id.is_none() {
            return Err(AppError::invalid_token());
        }
        let keys = [deny_key(claims.jti), user_invalidation_key(claims.sub)];
        let vals = state
            .kv
            .get_many(&keys)
            .await
            .map_err(AppError::unavailable)?;
        if vals.first().is_some_and(Option::is_some) {
            return Err(AppError::invalid_token());
        }
        if let Some(Some(void_before_ms)) = vals.get(1)
            && claims.iat_ms < *void_before_ms
        {
            return Err(AppError::invalid_token());
        }
        // A tenant named by header or subdomain must be the token's tenant.
        if let Some(slug) = requested_slug(parts, state) {
            let id = state.tenants.id_for_slug(&state.db, &slug).await?;
            if id.is_none() || id != claims.tenant_id {
                return Err(AppError::new(
                    ErrorCode::TenantMismatch,
                    "A empresa indicada na requisição não corresponde à do token.",
                ));
            }
        }
        let meta = RequestMeta {
            request_id: current_request_id(),
            ip: client_ip(parts, state.settings.trust_proxy_headers),
        };
        let auth = Auth { claims, role, meta };
        parts.extensions.insert(auth.clone());
        Ok(auth)
    }
}

/// The tenant slug named by `X-Tenant-Slug` or by the host `{slug}.{BASE_DOMAIN}`.
pub fn requested_slug(parts: &Parts, state: &AppState) -> Option<String> {
    if let Some(s) = parts
        .headers
        .get("x-tenant-slug")
        .and_then(|v| v.to_str().ok())
    {
        let s = s.trim();
        if !s.is_empty() {
            return Some(s.to_ascii_lowercase());
        }
    }
    let base = state.settings.base_domain.as_deref()?;
    let host = parts.headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let host = host.split(':').next()?;
    let sub = host.strip_suffix(base)?.strip_suffix('.')?;
    (!sub.is_empty() && !sub.contains('.') && sub != "www" && sub != "api").then(|| sub.to_string())
}

// ---------- tenant context ----------

/// An authenticated tenant user whose tenant is usable, within its plan's API rate.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant: TenantSnapshot,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub meta: RequestMeta,
}

impl TenantCtx {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

pub fn rate_key(tenant_id: Uuid, minute: i64) -> String {
    format!("rl:{tenant_id}:{minute}")
}

impl FromRequestParts<AppState> for TenantCtx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(c) = parts.extensions.get::<TenantCtx>() {
            crate::db::enter_tenant(c.tenant_id);
            return Ok(c.clone());
        }
        let auth = Auth::from_request_parts(parts, state).await?;
        let Some(tenant_id) = auth.claims.tenant_id else {
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "Esta rota pertence a uma empresa; o super-admin usa /api/super-admin.",
            ));
        };
        let tenant = state
            .tenants
            .get(&state.db, tenant_id)
            .await?
            .ok_or_else(AppError::invalid_token)?;
        if !tenant.status.is_usable() {
            return Err(suspended());
        }
        if let Some(limit) = tenant.limits.api_rate_per_minute {
            let minute = Utc::now().timestamp() / 60;
            let (count, ttl) = state
                .kv
                .hit(&rate_key(tenant_id, minute), 60)
                .await
                .map_err(AppError::unavailable)?;
            if count > limit.max(0) as u64 {
                return Err(AppError::rate_limited(ttl));
            }
        }
        metrics::counter!("jtcrm_tenant_requests_total", "tenant_id" => tenant_id.to_string())
            .increment(1);
        let ctx = TenantCtx {
            tenant,
            tenant_id,
            user_id: auth.claims.sub,
            role: auth.role,
            meta: auth.meta,
        };
        // The tenant path (db.rs): from here on this request's queries see this tenant's rows
        // only (row-level security on PostgreSQL).
        crate::db::enter_tenant(tenant_id);
        parts.extensions.insert(ctx.clone());
        Ok(ctx)
    }
}

pub fn suspended() -> AppError {
    AppError::new(
        ErrorCode::TenantSuspended,
        "O acesso desta empresa está suspenso. Entre em contato com o suporte da JT Telecom.",
    )
}

/// A tenant `admin` (see [`super::guard`] for the other role sets).
pub type AdminCtx = Authorized<Admins>;

/// The platform super-admin.
pub struct SuperAdminCtx {
    pub user_id: Uuid,
    pub meta: RequestMeta,
}

impl FromRequestParts<AppState> for SuperAdminCtx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        if auth.role != Role::SuperAdmin {
            return Err(AppError::forbidden());
        }
        // The platform path (db.rs): super-admin routes see every tenant's rows.
        crate::db::enter_platform();
        Ok(SuperAdminCtx {
            user_id: auth.claims.sub,
            meta: auth.meta,
        })
    }
}

/// Declares a route platform work before any tenant is known (login, token refresh, sign-up,
/// public lookups by token): its queries see every tenant's rows (the platform path, db.rs), so
/// the handler must filter by what it looks up. Put it first in the handler's arguments.
pub struct PlatformScope;

impl<S: Send + Sync> FromRequestParts<S> for PlatformScope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        crate::db::enter_platform();
        Ok(PlatformScope)
    }
}

// ---------- optimistic concurrency ----------

/// `If-Match: "<version>"` (quotes and `W/` optional). A value that is not a version answers 400.
pub struct IfMatch(pub Option<i32>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let Some(raw) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let s = raw.to_str().unwrap_or("").trim();
        if s == "*" {
            return Ok(IfMatch(None));
        }
        let s = s.strip_prefix("W/").unwrap_or(s).trim_matches('"');
        s.parse::<i32>().map(|v| IfMatch(Some(v))).map_err(|_| {
            AppError::bad_request("If-Match deve conter a versão do registro, por exemplo \"3\".")
        })
    }
}

/// `ETag` header for a versioned resource.
pub fn etag(version: i32) -> [(axum::http::HeaderName, String); 1] {
    [(axum::http::header::ETAG, format!("\"{version}\""))]
}

/// A JSON body that may be absent (empty body): `None`; otherwise the rules of [`ApiJson`].
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    ErrorCode::PayloadTooLarge,
                    "O corpo da requisição excede o limite permitido.",
                )
            } else {
                AppError::bad_request("Não foi possível ler o corpo da requisição.")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Any authenticated caller. Tenant users go through the full [`TenantCtx`] checks (suspension,
/// plan rate limit); the super-admin through [`Auth`] only.
pub struct AnyCaller {
    pub auth: Auth,
    pub tenant: Option<TenantCtx>,
}

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let auth = Auth::from_request_parts(parts, state).await?;
        let tenant = match auth.claims.tenant_id {
            Some(_) => Some(TenantCtx::from_request_parts(parts, state).await?),
            None => {
                // The super-admin (tokens without a tenant are the super-admin's only): platform.
                crate::db::enter_platform();
                None
            }
        };
        Ok(AnyCaller { auth, tenant })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{has_nul_escape, parse_json};

    #[test]
    fn nul_escape_is_found_unless_its_backslash_is_escaped() {
        assert!(has_nul_escape(br#"{"a": "x\u0000"}"#));
        assert!(has_nul_escape(br#"{"a\u0000": 1}"#));
        assert!(has_nul_escape(br#"{"a": "x\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a": "x\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a": "\u0001 \\\\u0000 \""}"#));
        assert!(!has_nul_escape(br#"{"a": "\\"}"#));
    }

    #[test]
    fn nul_is_removed_from_values_and_keys_at_any_depth() {
        let v: Person = parse_json(br#"{"name": "A\u0000na", "tags": ["x\u0000", "y"], "ma\u0000p": {"k\u0000": "v\u0000"}}"#)
            .unwrap();
        assert_eq!(v.name, "Ana");
        assert_eq!(v.tags, ["x", "y"]);
        assert_eq!(v.map.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn integers_accept_a_zero_fraction_only() {
        let v: Count = parse_json(br#"{"n": 410.0}"#).unwrap();
        assert_eq!(v.n, 410);
        let v: Count = parse_json(br#"{"n": 4.1e2}"#).unwrap();
        assert_eq!(v.n, 410);
        let e = parse_json::<Count>(br#"{"n": 410.5}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "n");
        assert_eq!(e.status().as_u16(), 422);
    }

    #[derive(serde::Deserialize)]
    struct Person {
        name: String,
        tags: Vec<String>,
        map: std::collections::BTreeMap<String, String>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Count {
        n: i64,
    }
}
