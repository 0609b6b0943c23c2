//! Keyset pagination helpers: opaque cursors and the `limit` bounds of docs/design.md ("API conventions").

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jtcrm_types::FieldError;
use uuid::Uuid;

use crate::error::AppError;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

pub fn limit(requested: Option<u64>) -> Result<u64, AppError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::validation(vec![FieldError::new(
            "limit",
            "out_of_range",
            "limit deve estar entre 1 e 200",
        )])),
    }
}

pub fn encode_cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
}

pub fn decode_cursor(cursor: &str) -> Result<Vec<String>, AppError> {
    let bad = || {
        AppError::validation(vec![FieldError::new(
            "cursor",
            "invalid_cursor",
            "Cursor inválido",
        )])
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    Ok(s.split('\u{1f}').map(str::to_string).collect())
}

/// Cursor over a UUIDv7 id (ids sort by creation time).
pub fn decode_id_cursor(cursor: Option<&str>) -> Result<Option<Uuid>, AppError> {
    let Some(c) = cursor else { return Ok(None) };
    let parts = decode_cursor(c)?;
    parts
        .first()
        .and_then(|p| Uuid::parse_str(p).ok())
        .map(Some)
        .ok_or_else(|| {
            AppError::validation(vec![FieldError::new(
                "cursor",
                "invalid_cursor",
                "Cursor inválido",
            )])
        })
}

pub fn id_cursor(id: Uuid) -> String {
    encode_cursor(&[&id.to_string()])
}

/// Takes one extra row to know whether a next page exists.
pub fn finish_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    id_of: impl Fn(&T) -> Uuid,
) -> (Vec<T>, Option<String>) {
    if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        let next = rows.last().map(|r| id_cursor(id_of(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}
