//! The tolerant parser of call-end events pushed by the PABX.
//!
//! The suite has no documented webhook. Deployments configure a template-driven POST with
//! `callid, origem, destino, direcao ("entrada"/"saida"), data ("dd/mm/aaaa HH:MM:SS"),
//! timestamp, duracao, gravacao`; it arrives as JSON or as a form, with numbers as strings or
//! ints, and sometimes as invalid JSON (trailing commas `{"a":1,}` / `[1,2,]`, raw control
//! characters) because the template is filled by plain text substitution. So:
//!
//! - the body is sniffed (JSON when it starts with `{`, `[` or `"`, a form otherwise); `Content-Type`
//!   is only used for its charset (UTF-8, with a Latin-1 fallback for invalid UTF-8);
//! - invalid JSON gets one repair pass ([`repair_json`]) before giving up;
//! - only `callid` is required; unreadable optional fields become `None`, unknown ones are
//!   ignored;
//! - any input gives a [`CallEvent`] or a [`ParseError`], never a panic (bodies above
//!   [`MAX_EVENT_BYTES`] are refused, nesting is bounded by `serde_json`'s recursion limit).

use std::fmt::Write as _;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use chrono::FixedOffset;
use serde_json::{Map, Value};

use super::dial::{extension_of, normalise_number};
use super::wire::{self, field, flex_seconds, flex_string, recording_urls};
use super::{CallEvent, Direction, PartyNumber};

/// Largest event body accepted (a call-end event is a few hundred bytes).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Longest call id accepted.
const MAX_CALL_ID_LEN: usize = 128;

/// Why an event body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty event body")]
    Empty,
    #[error("event body too large: {len} bytes (max {max})")]
    TooLarge { len: usize, max: usize },
    /// Neither (repairable) JSON nor a form.
    #[error("unreadable event body: {0}")]
    Syntax(String),
    /// Valid JSON that is not an object (nor an array holding one).
    #[error("event body is not a JSON object")]
    NotAnObject,
    #[error("event has no call id (callid)")]
    MissingCallId,
    #[error("event field {field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

/// What the parser needs to know about the tenant's PABX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventContext {
    /// The PABX's local time offset for `data` (default UTC−03:00).
    pub utc_offset: FixedOffset,
    /// The DDD used to normalise numbers written without one.
    pub area_code: Option<u8>,
}

impl Default for EventContext {
    fn default() -> Self {
        EventContext {
            utc_offset: wire::sao_paulo_offset(),
            area_code: None,
        }
    }
}

const CALLID_KEYS: &[&str] = &["callid", "call_id", "chamada_id", "uniqueid", "id"];
const FROM_KEYS: &[&str] = &["origem", "numero_origem", "from", "src", "caller"];
const TO_KEYS: &[&str] = &["destino", "numero_destino", "to", "dst", "called"];
const DIRECTION_KEYS: &[&str] = &["direcao", "direção", "direction", "sentido", "tipo"];
const DATE_KEYS: &[&str] = &["data", "data_hora", "datetime", "date"];
const TIMESTAMP_KEYS: &[&str] = &["timestamp", "ts", "epoch"];
const DURATION_KEYS: &[&str] = &["duracao", "duração", "duration", "billsec"];
const RECORDING_KEYS: &[&str] = &[
    "gravacao",
    "gravação",
    "link_gravacao",
    "recording",
    "recording_url",
];
const EXTENSION_KEYS: &[&str] = &["ramal", "extension", "numero_ramal"];
const WRAPPER_KEYS: &[&str] = &["dados", "evento", "event", "payload", "body"];

/// Parses a call-end event. See the module documentation for what is tolerated.
pub fn parse_call_event(
    headers: &HeaderMap,
    body: &[u8],
    ctx: &EventContext,
) -> Result<CallEvent, ParseError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(ParseError::TooLarge {
            len: body.len(),
            max: MAX_EVENT_BYTES,
        });
    }
    let latin1 = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let ct = ct.to_ascii_lowercase();
            ["iso-8859-1", "latin1", "latin-1", "windows-1252", "cp1252"]
                .iter()
                .any(|cs| ct.contains(cs))
        })
        .unwrap_or(false);
    let text = decode(body, latin1);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let obj = if text.starts_with(['{', '[', '"']) {
        parse_json_object(text)?
    } else if text.contains('=') {
        parse_form(text)?
    } else {
        return Err(ParseError::Syntax("neither JSON nor a form".into()));
    };
    event_from_object(&obj, ctx)
}

fn decode(body: &[u8], latin1: bool) -> String {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if !latin1 && let Ok(s) = std::str::from_utf8(body) {
        return s.to_owned();
    }
    // Latin-1: every byte is the code point of the same value.
    body.iter().map(|&b| char::from(b)).collect()
}

/// Repairs the JSON that text-template webhooks produce, in one linear pass that tracks whether
/// it is inside a string (honouring `\"` escapes):
///
/// - a comma followed (after whitespace) by `}` or `]` is removed: `{"a":1,}` → `{"a":1}`,
///   `[1,2,]` → `[1,2]`;
/// - outside strings, control characters other than whitespace (NUL, ...) are removed;
/// - inside strings, raw control characters (a newline in a transcription, ...) are escaped as
///   `\u00XX`.
///
/// Commas and control characters inside strings are kept; valid JSON comes out unchanged. This is
/// not a JSON parser: anything else wrong stays wrong and `serde_json` reports it.
pub fn repair_json(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
            } else if c == '\\' {
                escaped = true;
                out.push(c);
            } else if c == '"' {
                in_string = false;
                out.push(c);
            } else if u32::from(c) < 0x20 {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            } else {
                out.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            ',' => {
                // `,` is one byte, so `i + 1` is a char boundary.
                let next = input[i + 1..]
                    .chars()
                    .find(|c| !(c.is_whitespace() || c.is_control()));
                if !matches!(next, Some('}' | ']')) {
                    out.push(c);
                }
            }
            c if c.is_control() && !c.is_whitespace() => {}
            _ => out.push(c),
        }
    }
    out
}

fn parse_json_object(text: &str) -> Result<Map<String, Value>, ParseError> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(first) => serde_json::from_str(&repair_json(text))
            .map_err(|_| ParseError::Syntax(format!("invalid JSON: {first}")))?,
    };
    let mut obj = match value {
        Value::Object(m) => m,
        Value::Array(items) => items
            .into_iter()
            .find_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .ok_or(ParseError::NotAnObject)?,
        _ => return Err(ParseError::NotAnObject),
    };
    // One level of wrapping ({"dados": {...}}) is unwrapped when the outside has no call id.
    if field(&obj, CALLID_KEYS).is_none() {
        let inner = WRAPPER_KEYS.iter().find_map(|k| match obj.get(*k) {
            Some(Value::Object(m)) if field(m, CALLID_KEYS).is_some() => Some(m.clone()),
            _ => None,
        });
        if let Some(inner) = inner {
            obj = inner;
        }
    }
    Ok(obj)
}

fn parse_form(text: &str) -> Result<Map<String, Value>, ParseError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
        .map_err(|e| ParseError::Syntax(format!("invalid form: {e}")))?;
    let mut obj = Map::new();
    for (k, v) in pairs {
        obj.entry(k.trim().to_owned()).or_insert(Value::String(v));
    }
    // A form field carrying the JSON payload (payload={...}).
    if field(&obj, CALLID_KEYS).is_none()
        && let Some(json) = obj.values().find_map(|v| match v {
            Value::String(s) if s.trim_start().starts_with('{') => Some(s.clone()),
            _ => None,
        })
    {
        return parse_json_object(json.trim());
    }
    Ok(obj)
}

fn event_from_object(
    obj: &Map<String, Value>,
    ctx: &EventContext,
) -> Result<CallEvent, ParseError> {
    let raw_id = field(obj, CALLID_KEYS).ok_or(ParseError::MissingCallId)?;
    let provider_call_id = match flex_string(raw_id) {
        Some(id) if id.len() > MAX_CALL_ID_LEN => {
            return Err(ParseError::InvalidField {
                field: "callid",
                reason: format!("longer than {MAX_CALL_ID_LEN} characters"),
            });
        }
        Some(id) => id,
        None if matches!(raw_id, Value::String(_)) => return Err(ParseError::MissingCallId),
        None => {
            return Err(ParseError::InvalidField {
                field: "callid",
                reason: "not a string or an exact integer".into(),
            });
        }
    };
    let party = |keys: &[&str]| -> Option<PartyNumber> {
        let raw = field(obj, keys).and_then(flex_string)?;
        Some(PartyNumber {
            e164: normalise_number(&raw, ctx.area_code),
            raw,
        })
    };
    let from = party(FROM_KEYS);
    let to = party(TO_KEYS);
    let stated = field(obj, DIRECTION_KEYS)
        .and_then(flex_string)
        .and_then(|s| direction_from_text(&s));
    let (direction, inferred_ext) = classify(
        from.as_ref().map(|p| p.raw.as_str()),
        to.as_ref().map(|p| p.raw.as_str()),
        stated,
        ctx.area_code,
    );
    let extension = field(obj, EXTENSION_KEYS)
        .and_then(flex_string)
        .or(inferred_ext);
    let occurred_at = field(obj, DATE_KEYS)
        .and_then(|v| v.as_str())
        .and_then(|s| wire::parse_local_datetime(s, ctx.utc_offset))
        .or_else(|| field(obj, TIMESTAMP_KEYS).and_then(wire::from_unix));
    let duration_s = field(obj, DURATION_KEYS).and_then(flex_seconds);
    let recording_urls = recording_urls(field(obj, RECORDING_KEYS));
    Ok(CallEvent {
        provider_call_id,
        direction,
        from,
        to,
        extension,
        occurred_at,
        duration_s,
        recording_urls,
    })
}

/// Reads a direction word: `entrada`/`recebida`/`inbound` → inbound, `saida`/`saída`/
/// `efetuada`/`outbound` → outbound, `interna`/`internal` → internal.
pub(crate) fn direction_from_text(s: &str) -> Option<Direction> {
    let s = s.trim().to_lowercase();
    let s = s.replace('í', "i");
    match s.as_str() {
        "entrada" | "entrante" | "recebida" | "receptiva" | "inbound" | "incoming" | "in" | "e" => {
            Some(Direction::Inbound)
        }
        "saida" | "sainte" | "efetuada" | "ativa" | "outbound" | "outgoing" | "out" | "s" => {
            Some(Direction::Outbound)
        }
        "interna" | "internal" | "ramal" | "i" => Some(Direction::Internal),
        _ => None,
    }
}

/// The direction and the extension of a call from its two parties. A stated direction wins;
/// otherwise: extension → extension is internal, extension → number outbound, number →
/// extension inbound, number → number (a DID answered by a queue or IVR) inbound.
pub(crate) fn classify(
    from: Option<&str>,
    to: Option<&str>,
    stated: Option<Direction>,
    area_code: Option<u8>,
) -> (Direction, Option<String>) {
    let from_ext = from.and_then(|s| extension_of(s, area_code));
    let to_ext = to.and_then(|s| extension_of(s, area_code));
    let direction = stated.unwrap_or(match (&from_ext, &to_ext) {
        (Some(_), Some(_)) => Direction::Internal,
        (Some(_), None) => Direction::Outbound,
        (None, _) => Direction::Inbound,
    });
    let extension = match direction {
        Direction::Outbound => from_ext,
        Direction::Inbound => to_ext,
        Direction::Internal => from_ext.or(to_ext),
    };
    (direction, extension)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(body: &[u8]) -> Result<CallEvent, ParseError> {
        let ctx = EventContext {
            area_code: Some(11),
            ..EventContext::default()
        };
        parse_call_event(&HeaderMap::new(), body, &ctx)
    }

    #[test]
    fn repair_removes_trailing_commas_outside_strings_only() {
        assert_eq!(repair_json(r#"{"a":1,}"#), r#"{"a":1}"#);
        assert_eq!(repair_json("[1,2,]"), "[1,2]");
        assert_eq!(repair_json("[1,2 ,\n\t]"), "[1,2 \n\t]");
        assert_eq!(
            repair_json(r#"{"a":[1,],"b":{"c":2,},}"#),
            r#"{"a":[1],"b":{"c":2}}"#
        );
        assert_eq!(
            repair_json(r#"{"a":"x,}","b":",]"}"#),
            r#"{"a":"x,}","b":",]"}"#
        );
        assert_eq!(
            repair_json(r#"{"a":"say \",}\"",}"#),
            r#"{"a":"say \",}\""}"#
        );
        assert_eq!(repair_json(r#"{"a":"\\",}"#), r#"{"a":"\\"}"#);
        assert_eq!(repair_json("{\"a\":\"l1\nl2\"}"), "{\"a\":\"l1\\u000al2\"}");
        assert_eq!(repair_json("{\"a\":\u{0}1}"), "{\"a\":1}");
        assert_eq!(repair_json(r#"{"ç":"ã",}"#), r#"{"ç":"ã"}"#);
        let valid = r#"{"a":[1,2,{"b":"c, d"}],"e":null}"#;
        assert_eq!(repair_json(valid), valid);
        assert_eq!(repair_json(""), "");
        assert_eq!(repair_json(","), ",");
    }

    #[test]
    fn json_event_with_trailing_comma_and_string_numbers() {
        let body = br#"{"callid":"1700000001.42","origem":"1001","destino":"011987654321","direcao":"saida","data":"05/03/2025 14:03:07","timestamp":"1741194187","duracao":"47","gravacao":"https://pabx.example/g/1.wav",}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.provider_call_id, "1700000001.42");
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.extension.as_deref(), Some("1001"));
        assert_eq!(
            e.to.as_ref().unwrap().e164.as_deref(),
            Some("+5511987654321")
        );
        assert_eq!(e.from.as_ref().unwrap().e164, None);
        assert_eq!(e.duration_s, Some(47));
        assert_eq!(
            e.occurred_at.unwrap().to_rfc3339(),
            "2025-03-05T17:03:07+00:00"
        );
        assert_eq!(e.recording_urls, vec!["https://pabx.example/g/1.wav"]);
    }

    #[test]
    fn int_numbers_hms_duration_and_array_recording() {
        let body = br#"{"callid":98765,"origem":11987654321,"destino":1002,"direcao":"entrada","timestamp":1741194187,"duracao":"00:01:05","gravacao":["a.wav","b.wav",],"novo_campo":{"x":[1,2,]}}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.provider_call_id, "98765");
        assert_eq!(e.direction, Direction::Inbound);
        assert_eq!(e.extension.as_deref(), Some("1002"));
        assert_eq!(e.from.unwrap().e164.as_deref(), Some("+5511987654321"));
        assert_eq!(e.duration_s, Some(65));
        assert_eq!(e.occurred_at.unwrap().timestamp(), 1_741_194_187);
        assert_eq!(e.recording_urls, vec!["a.wav", "b.wav"]);
    }

    #[test]
    fn form_encoded_event() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let body = b"callid=555&origem=%2B5521987654321&destino=2001&direcao=entrada&data=05%2F03%2F2025+14%3A03%3A07&duracao=12&gravacao=";
        let e = parse_call_event(&h, body, &EventContext::default()).unwrap();
        assert_eq!(e.provider_call_id, "555");
        assert_eq!(e.from.unwrap().e164.as_deref(), Some("+5521987654321"));
        assert_eq!(e.extension.as_deref(), Some("2001"));
        assert_eq!(e.duration_s, Some(12));
        assert!(e.recording_urls.is_empty());
        assert!(e.occurred_at.is_some());
    }

    #[test]
    fn wrapped_arrays_and_payload_fields() {
        let e = parse(br#"[{"callid":"1"}]"#).unwrap();
        assert_eq!(e.provider_call_id, "1");
        let e = parse(br#"{"dados":{"callid":"2","origem":"1001","destino":"1002"}}"#).unwrap();
        assert_eq!(e.provider_call_id, "2");
        assert_eq!(e.direction, Direction::Internal);
        let e = parse(b"payload=%7B%22callid%22%3A%223%22%2C%7D").unwrap();
        assert_eq!(e.provider_call_id, "3");
    }

    #[test]
    fn direction_is_inferred_without_direcao() {
        let e = parse(br#"{"callid":"1","origem":"1001","destino":"21987654321"}"#).unwrap();
        assert_eq!(
            (e.direction, e.extension.as_deref()),
            (Direction::Outbound, Some("1001"))
        );
        let e =
            parse(br#"{"callid":"1","origem":"21987654321","destino":"grupolr-1003"}"#).unwrap();
        assert_eq!(
            (e.direction, e.extension.as_deref()),
            (Direction::Inbound, Some("1003"))
        );
        let e = parse(br#"{"callid":"1","origem":"21987654321","destino":"1130001000"}"#).unwrap();
        assert_eq!((e.direction, e.extension), (Direction::Inbound, None));
        let body = r#"{"callid":"1","direcao":"Saída","origem":"1001","destino":"987654321"}"#;
        let e = parse(body.as_bytes()).unwrap();
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.to.unwrap().e164.as_deref(), Some("+5511987654321"));
    }

    #[test]
    fn odd_inputs_give_typed_errors() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"   \n\t "), Err(ParseError::Empty));
        assert_eq!(parse(b"\0\0\0"), Err(ParseError::Empty));
        assert!(matches!(
            parse(b"\xff\xfe\x00\x01binary\x80\x81"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse(b"{"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse(b"{\"callid\":}"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse(b"hello"), Err(ParseError::Syntax(_))));
        assert_eq!(parse(b"[]"), Err(ParseError::NotAnObject));
        assert_eq!(parse(b"[1,2,]"), Err(ParseError::NotAnObject));
        assert_eq!(parse(b"{}"), Err(ParseError::MissingCallId));
        assert_eq!(parse(b"{\"callid\":\"\"}"), Err(ParseError::MissingCallId));
        assert_eq!(parse(b"{\"callid\":null}"), Err(ParseError::MissingCallId));
        assert!(matches!(
            parse(b"{\"callid\":123456789012345678901234567890}"),
            Err(ParseError::InvalidField {
                field: "callid",
                ..
            })
        ));
        assert!(matches!(
            parse(b"{\"callid\":1.5}"),
            Err(ParseError::InvalidField {
                field: "callid",
                ..
            })
        ));
        assert!(matches!(
            parse(b"{\"callid\":{\"a\":1}}"),
            Err(ParseError::InvalidField {
                field: "callid",
                ..
            })
        ));
        let long = format!("{{\"callid\":\"{}\"}}", "9".repeat(500));
        assert!(matches!(
            parse(long.as_bytes()),
            Err(ParseError::InvalidField { .. })
        ));
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(matches!(parse(&huge), Err(ParseError::TooLarge { .. })));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        assert!(matches!(parse(deep.as_bytes()), Err(ParseError::Syntax(_))));
        let deep = format!(
            "{{\"callid\":\"1\",\"x\":{}{}}}",
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        );
        assert!(matches!(parse(deep.as_bytes()), Err(ParseError::Syntax(_))));
        let unclosed = "[{".repeat(10_000);
        assert!(matches!(
            parse(unclosed.as_bytes()),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn odd_but_readable_inputs() {
        // NUL bytes between tokens, a BOM, raw newline in a string, Latin-1 bytes.
        let e = parse(b"\xEF\xBB\xBF{\"callid\":\"7\",\0\"origem\":\"1001\"}").unwrap();
        assert_eq!(e.provider_call_id, "7");
        let e = parse(b"{\"callid\":\"8\",\"destino\":\"S\xe3o\nPaulo\"}").unwrap();
        assert_eq!(e.to.unwrap().raw, "São\nPaulo");
        // Huge numbers in optional fields are ignored, not fatal.
        let e = parse(b"{\"callid\":9,\"duracao\":1e300,\"timestamp\":99999999999999999999999}")
            .unwrap();
        assert_eq!((e.duration_s, e.occurred_at), (None, None));
        let e = parse(b"{\"callid\":10,\"duracao\":-5,\"data\":\"31/02/2025 10:00:00\"}").unwrap();
        assert_eq!((e.duration_s, e.occurred_at), (None, None));
        // Duplicate keys: serde_json keeps the last one.
        let e = parse(br#"{"callid":"a","callid":"b"}"#).unwrap();
        assert_eq!(e.provider_call_id, "b");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: xorshift bytes, biased towards JSON punctuation.
        let alphabet = b"{}[],:\"\\ 0123456789abcdefgh=&%+-.\n\0\xff\xc3\xa3";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..400 {
            let mut body = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&body);
            body.insert(0, b'{');
            let _ = parse(&body);
            let _ = repair_json(&String::from_utf8_lossy(&body));
        }
    }
}
