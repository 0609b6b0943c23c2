//! Users of a tenant (admin, manager, sales, support, viewer) and the platform super-admins.
//! Emails are unique across the platform; a tenant's seats are limited by its plan.

pub mod accounts;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;
pub mod service;
pub mod stats;

use jtcrm_types::ErrorCode;
use jtcrm_types::br::{Email, Phone};
use jtcrm_types::dto::Role;
use jtcrm_types::dto::users::User;

use jtcrm_kernel::error::{AppError, Validator};
use jtcrm_kernel::security::check_password_policy;

use model::user;
pub use service::{active_users_among, check_active_owner, is_active_user};

pub fn to_dto(u: user::Model) -> User {
    User {
        id: u.id,
        tenant_id: u.tenant_id,
        name: u.name,
        email: u.email,
        role: Role::parse(&u.role).unwrap_or(Role::Viewer),
        phone: u.phone,
        extension: u.extension,
        active: u.active,
        last_login_at: u.last_login_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        version: u.version,
    }
}

/// A validated request to create a user.
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub password: String,
    pub role: Role,
    pub phone: Option<String>,
    pub extension: Option<String>,
}

pub fn parse_email(v: &mut Validator, field: &str, raw: Option<&str>) -> Option<String> {
    match raw.map(str::trim) {
        None | Some("") => {
            v.add(field, "required", "Campo obrigatório");
            None
        }
        Some(s) => match Email::parse(s) {
            Ok(e) => Some(e.as_str().to_string()),
            Err(e) => {
                v.add(field, e.code(), e.message_pt());
                None
            }
        },
    }
}

pub fn parse_tenant_role(
    v: &mut Validator,
    field: &str,
    raw: Option<&str>,
    default: Option<Role>,
) -> Option<Role> {
    match raw.map(str::trim) {
        None | Some("") => {
            if default.is_none() {
                v.add(field, "required", "Campo obrigatório");
            }
            default
        }
        Some(s) => match Role::parse(s).filter(|r| *r != Role::SuperAdmin) {
            Some(r) => Some(r),
            None => {
                v.add(
                    field,
                    "invalid_role",
                    "Perfil inválido: use admin, manager, sales, support ou viewer",
                );
                None
            }
        },
    }
}

pub fn parse_phone(v: &mut Validator, field: &str, raw: Option<&str>) -> Option<String> {
    let s = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match Phone::parse(s) {
        Ok(p) => Some(p.as_str().to_string()),
        Err(e) => {
            v.add(field, e.code(), e.message_pt());
            None
        }
    }
}

pub fn parse_extension(v: &mut Validator, field: &str, raw: Option<&str>) -> Option<String> {
    let s = raw.map(str::trim).filter(|s| !s.is_empty())?;
    if s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        v.add(
            field,
            "invalid_extension",
            "Ramal deve conter de 1 a 10 dígitos",
        );
        return None;
    }
    Some(s.to_string())
}

/// The raw fields of a user to create, as they arrived.
#[derive(Default, Clone, Copy)]
pub struct NewUserInput<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub password: Option<&'a str>,
    pub role: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub extension: Option<&'a str>,
}

/// Validates the fields of a new user; `prefix` is prepended to field names (`admin.`).
pub fn validate_new_user(
    v: &mut Validator,
    prefix: &str,
    input: NewUserInput<'_>,
    default_role: Option<Role>,
) -> Option<NewUser> {
    let NewUserInput {
        name,
        email,
        password,
        role,
        phone,
        extension,
    } = input;
    let f = |n: &str| format!("{prefix}{n}");
    let name = v.required_text(&f("name"), name, 200);
    let email = parse_email(v, &f("email"), email);
    let password = match password {
        None | Some("") => {
            v.add(&f("password"), "required", "Campo obrigatório");
            None
        }
        Some(p) => {
            let before = v.errors.len();
            check_password_policy(&f("password"), p, v);
            (v.errors.len() == before).then(|| p.to_string())
        }
    };
    let role = parse_tenant_role(v, &f("role"), role, default_role);
    let phone_given = phone.is_some_and(|p| !p.trim().is_empty());
    let phone = parse_phone(v, &f("phone"), phone);
    let ext_given = extension.is_some_and(|p| !p.trim().is_empty());
    let extension = parse_extension(v, &f("extension"), extension);
    if (phone_given && phone.is_none()) || (ext_given && extension.is_none()) {
        return None;
    }
    Some(NewUser {
        name: name?,
        email: email?,
        password: password?,
        role: role?,
        phone,
        extension,
    })
}

/// The conflict a unique violation on `users` stands for, by the index that collided; `None` for
/// any other error.
pub fn unique_conflict(e: &sea_orm::DbErr) -> Option<AppError> {
    let v = crate::migration::unique_violation(e)?;
    if v.is(&crate::migration::UX_USERS_EXTENSION) {
        Some(
            AppError::conflict(
                ErrorCode::ExtensionTaken,
                "Este ramal já está atribuído a outro usuário.",
            )
            .with_context(serde_json::json!({"field": "extension"})),
        )
    } else if v.is(&crate::migration::UX_USERS_EMAIL) {
        Some(email_taken())
    } else {
        None
    }
}

pub fn email_taken() -> AppError {
    AppError::conflict(
        ErrorCode::EmailTaken,
        "Já existe um usuário com este e-mail.",
    )
    .with_context(serde_json::json!({"field": "email"}))
}
