//! The company's e-mail sender identity, part of the tenant settings: validated here, read by the
//! `email` domain when it sends.

use jtcrm_kernel::error::Validator;
use jtcrm_types::dto::tenants::{TenantSettings, TenantSettingsInput};

use crate::domains::users;

/// Longest `email_sender_name`.
pub const MAX_SENDER_NAME_CHARS: usize = 100;

// ---------- the company's sender identity (tenant settings) ----------

/// A validated change of the company's `email_sender_name` / `email_reply_to`
/// (`None` = unchanged, `Some(None)` = cleared).
#[derive(Debug, Clone, Default)]
pub struct IdentityUpdate {
    pub sender_name: Option<Option<String>>,
    pub reply_to: Option<Option<String>>,
}

impl IdentityUpdate {
    pub fn apply(&self, s: &mut TenantSettings) {
        if let Some(n) = &self.sender_name {
            s.email_sender_name = n.clone();
        }
        if let Some(r) = &self.reply_to {
            s.email_reply_to = r.clone();
        }
    }
}

/// Validates the e-mail identity fields of a settings update (the sender the `email` domain uses).
pub fn parse_identity(v: &mut Validator, si: &TenantSettingsInput) -> IdentityUpdate {
    let sender_name = si.email_sender_name.as_ref().map(|n| {
        match n.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) if s.chars().count() > MAX_SENDER_NAME_CHARS => {
                v.add(
                    "settings.email_sender_name",
                    "too_long",
                    &format!("Máximo de {MAX_SENDER_NAME_CHARS} caracteres"),
                );
                None
            }
            Some(s) if s.chars().any(char::is_control) => {
                v.add(
                    "settings.email_sender_name",
                    "invalid_value",
                    "O nome do remetente não pode conter quebras de linha",
                );
                None
            }
            Some(s) => Some(s.to_string()),
        }
    });
    let reply_to = si.email_reply_to.as_ref().map(|r| {
        match r.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => {
                let parsed = users::parse_email(v, "settings.email_reply_to", Some(s));
                if parsed
                    .as_deref()
                    .is_some_and(|p| p.parse::<lettre::Address>().is_err())
                {
                    v.add(
                        "settings.email_reply_to",
                        "invalid_email",
                        "E-mail de resposta inválido",
                    );
                    return None;
                }
                parsed
            }
        }
    });
    IdentityUpdate {
        sender_name,
        reply_to,
    }
}
