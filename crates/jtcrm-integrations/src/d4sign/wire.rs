//! Tolerant readers of D4Sign JSON (every value is documented as a string, but numbers and
//! booleans are accepted too) shared by the client and the mock.

use serde_json::Value;

/// A field as a string: strings verbatim, numbers and booleans rendered, anything else `None`.
pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1".into() } else { "0".into() }),
        _ => None,
    }
}

/// Like [`str_field`], with empty strings read as absent.
pub(crate) fn non_empty(v: &Value, key: &str) -> Option<String> {
    str_field(v, key).filter(|s| !s.trim().is_empty())
}

/// First present of several spellings (`uuid_safe` / `uuid-safe`).
pub(crate) fn first_of(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| non_empty(v, k))
}

/// D4Sign flags: `"1"`, `1`, `true`, `"true"` are set; anything else is not.
pub(crate) fn flag(v: &Value, key: &str) -> bool {
    matches!(
        str_field(v, key).as_deref().map(str::trim),
        Some("1") | Some("true")
    )
}

/// Some endpoints answer a one-element array where an object is expected; take the object.
pub(crate) fn single_object(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(_) => Some(v),
        Value::Array(items) => items.iter().find(|i| i.is_object()),
        _ => None,
    }
}

/// The human message of a D4Sign error body: `{"message":"..."}` (a string, or anything else
/// rendered as JSON); the raw text when the body is not JSON.
pub(crate) fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("message").or_else(|| v.get("mensagem")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => truncate(&v.to_string()),
        },
        Err(_) => truncate(&String::from_utf8_lossy(body)),
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
