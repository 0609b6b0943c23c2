//! D4Sign postbacks: HMAC verification and body parsing, as pure functions (no I/O), so the
//! CRM's webhook endpoint stays a thin adapter.
//!
//! D4Sign POSTs a form body `uuid=…&type_post=…&message=…[&email=…]` and a header
//! `Content-Hmac: sha256=<hex>` where `<hex>` is HMAC-SHA256 **of the document UUID** keyed
//! with the account's webhook secret. The signature does not cover the body, so the only thing
//! it proves is the UUID: re-read the document status from the API before acting on anything
//! else the body claims, and treat the postback as "something changed on document X".

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::signature::DocumentState;

/// The header that carries the signature.
pub const HMAC_HEADER: &str = "Content-Hmac";

const PREFIX: &str = "sha256=";

/// `sha256=<lowercase hex>` of HMAC-SHA256(key = `secret`, message = `document_uuid`), the
/// exact header value D4Sign sends (the mock uses this to sign its postbacks).
pub fn compute_hmac(secret: &str, document_uuid: &str) -> String {
    format!(
        "{PREFIX}{}",
        hex::encode(mac(secret, document_uuid).finalize().into_bytes())
    )
}

fn mac(secret: &str, document_uuid: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this never fails; fall back to an empty key rather
    // than panicking if the implementation ever changes.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    m.update(document_uuid.as_bytes());
    m
}

/// Whether `header_value` (the raw `Content-Hmac` header) is the HMAC of `document_uuid` under
/// `secret`. The prefix must be `sha256=` (its letters in any case, surrounding whitespace
/// ignored); the hex digest may be upper or lower case; the digest comparison is constant
/// time. The UUID is used byte for byte, exactly as received in the body. An empty secret
/// never verifies.
pub fn verify_hmac(secret: &str, document_uuid: &str, header_value: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let value = header_value.trim();
    let Some(prefix) = value.get(..PREFIX.len()) else {
        return false;
    };
    if !prefix.eq_ignore_ascii_case(PREFIX) {
        return false;
    }
    let Ok(given) = hex::decode(&value[PREFIX.len()..]) else {
        return false;
    };
    mac(secret, document_uuid).verify_slice(&given).is_ok()
}

/// What a postback reports (`type_post`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostbackKind {
    /// 1: every signer signed ("Finished document").
    Finished,
    /// 2: D4Sign could not e-mail a signer ("E-mail not sent").
    EmailNotSent { email: String },
    /// 3: the document was cancelled ("Cancelled document").
    Cancelled,
    /// 4: one signer signed ("Signed").
    Signed { email: String },
}

impl PostbackKind {
    /// The `type_post` code.
    pub fn code(&self) -> u8 {
        match self {
            PostbackKind::Finished => 1,
            PostbackKind::EmailNotSent { .. } => 2,
            PostbackKind::Cancelled => 3,
            PostbackKind::Signed { .. } => 4,
        }
    }

    /// The document state the postback implies, if any: Finished → Finished, Cancelled →
    /// Cancelled, Signed → WaitingSignatures (at least sent; the last signature is followed by
    /// a separate Finished), EmailNotSent → none. Feed it to
    /// [`DocumentState::may_advance_to`] to ignore stale, duplicate and out-of-order postbacks.
    pub fn implied_state(&self) -> Option<DocumentState> {
        match self {
            PostbackKind::Finished => Some(DocumentState::Finished),
            PostbackKind::Cancelled => Some(DocumentState::Cancelled),
            PostbackKind::Signed { .. } => Some(DocumentState::WaitingSignatures),
            PostbackKind::EmailNotSent { .. } => None,
        }
    }

    /// The default `message` D4Sign sends with this kind.
    pub fn default_message(&self) -> &'static str {
        match self {
            PostbackKind::Finished => "Finished document",
            PostbackKind::EmailNotSent { .. } => "E-mail not sent",
            PostbackKind::Cancelled => "Cancelled document",
            PostbackKind::Signed { .. } => "Signed",
        }
    }
}

/// A parsed D4Sign postback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postback {
    /// The document UUID (the value the HMAC covers).
    pub uuid: String,
    pub kind: PostbackKind,
    /// The free-text `message` (empty when absent).
    pub message: String,
}

impl Postback {
    /// The form fields D4Sign sends for this postback, in its order.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("uuid", self.uuid.clone()),
            ("type_post", self.kind.code().to_string()),
            ("message", self.message.clone()),
        ];
        if let PostbackKind::EmailNotSent { email } | PostbackKind::Signed { email } = &self.kind {
            f.push(("email", email.clone()));
        }
        f
    }

    /// From already-decoded fields (e.g. a multipart body). Unknown fields are ignored; for a
    /// repeated field the first value wins.
    pub fn from_fields<'a, I>(fields: I) -> Result<Postback, PostbackError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut uuid = None;
        let mut type_post = None;
        let mut message = None;
        let mut email = None;
        for (k, v) in fields {
            let slot = match k.trim() {
                "uuid" => &mut uuid,
                "type_post" => &mut type_post,
                "message" => &mut message,
                "email" => &mut email,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.trim().to_string());
            }
        }
        let uuid = uuid
            .filter(|u| !u.is_empty())
            .ok_or(PostbackError::MissingField("uuid"))?;
        if uuid.len() > 100
            || !uuid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(PostbackError::InvalidUuid(uuid));
        }
        let type_post = type_post
            .filter(|t| !t.is_empty())
            .ok_or(PostbackError::MissingField("type_post"))?;
        let email = || {
            email
                .clone()
                .filter(|e| !e.is_empty())
                .ok_or(PostbackError::MissingField("email"))
        };
        let kind = match type_post.as_str() {
            "1" => PostbackKind::Finished,
            "2" => PostbackKind::EmailNotSent { email: email()? },
            "3" => PostbackKind::Cancelled,
            "4" => PostbackKind::Signed { email: email()? },
            _ => return Err(PostbackError::UnknownType(type_post)),
        };
        Ok(Postback {
            uuid,
            kind,
            message: message.unwrap_or_default(),
        })
    }
}

/// Why a postback body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostbackError {
    #[error("postback body is not form-encoded: {0}")]
    Malformed(String),
    #[error("postback lacks the {0} field")]
    MissingField(&'static str),
    #[error("postback uuid {0:?} is not a document id")]
    InvalidUuid(String),
    #[error("unknown postback type_post {0:?}")]
    UnknownType(String),
}

/// Parses a raw `application/x-www-form-urlencoded` postback body. Unknown fields are ignored;
/// bad input gives a [`PostbackError`], never a panic.
pub fn parse_postback(body: &[u8]) -> Result<Postback, PostbackError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| PostbackError::Malformed(e.to_string()))?;
    Postback::from_fields(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}
