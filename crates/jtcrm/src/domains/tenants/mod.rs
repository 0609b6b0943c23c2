//! Tenants (customer companies): creation with their first admin, status (trial, active,
//! suspended, cancelled), plan changes, settings and usage against plan limits.

pub mod directory;
pub mod identity;
#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;

use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::br::{Cnpj, Slug, slugify};
use jtcrm_types::dto::Page;
use jtcrm_types::dto::tenants::{
    CreateTenantRequest, Tenant, TenantSettings, TenantSettingsInput, TenantUsage,
    UpdateTenantRequest, UsageItem,
};
use jtcrm_types::dto::{Role, TenantStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use self::model::tenant;
use crate::domains::plans;
use crate::domains::users::{self, NewUser, NewUserInput};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{RequestMeta, rate_key};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::sql;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::tenancy::NewTenantSeed;
use jtcrm_types::dto::plans::Plan;

pub fn settings_of(t: &tenant::Model) -> TenantSettings {
    serde_json::from_value(t.settings.clone()).unwrap_or_default()
}

pub fn to_dto(t: tenant::Model) -> Tenant {
    Tenant {
        settings: settings_of(&t),
        id: t.id,
        name: t.name,
        slug: t.slug,
        email: t.email,
        cnpj: t
            .cnpj
            .map(|c| Cnpj::parse(&c).map(|c| c.masked()).unwrap_or(c)),
        subscription_plan: t.subscription_plan,
        status: TenantStatus::parse(&t.status).unwrap_or(TenantStatus::Suspended),
        suspended_reason: t.suspended_reason,
        created_at: t.created_at,
        updated_at: t.updated_at,
        version: t.version,
    }
}

fn parse_slug(v: &mut Validator, raw: Option<&str>) -> Option<String> {
    match raw.map(str::trim) {
        None | Some("") => {
            v.add("slug", "required", "Campo obrigatório");
            None
        }
        Some(s) => match Slug::parse(s) {
            Ok(s) => Some(s.as_str().to_string()),
            Err(_) => {
                v.add(
                    "slug",
                    "invalid_slug",
                    "Use de 3 a 63 caracteres: letras minúsculas, dígitos e hífens",
                );
                None
            }
        },
    }
}

fn parse_cnpj(v: &mut Validator, raw: Option<&str>) -> Option<String> {
    let s = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match Cnpj::parse(s) {
        Ok(c) => Some(c.as_str().to_string()),
        Err(e) => {
            v.add("cnpj", e.code(), e.message_pt());
            None
        }
    }
}

fn parse_status(v: &mut Validator, raw: Option<&str>) -> Option<TenantStatus> {
    let s = raw?;
    match TenantStatus::parse(s) {
        Some(st) => Some(st),
        None => {
            v.add(
                "status",
                "invalid_status",
                "Status inválido: use trial, active, suspended ou cancelled",
            );
            None
        }
    }
}

fn validate_timezone(v: &mut Validator, tz: &str) {
    // An IANA name the agenda's timezone database knows (the OpenAPI document lists them).
    if tz.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "settings.timezone",
            "invalid_timezone",
            "Fuso horário inválido (ex.: America/Sao_Paulo)",
        );
    }
}

async fn active_plan<C: ConnectionTrait>(conn: &C, code: &str) -> AppResult<Plan> {
    match plans::find(conn, code).await? {
        Some(p) if p.active => Ok(p),
        _ => Err(AppError::field(
            "subscription_plan",
            "unknown_plan",
            "Plano inexistente ou inativo",
        )),
    }
}

fn is_slug_violation(e: &sea_orm::DbErr) -> bool {
    crate::migration::unique_violation(e).is_some_and(|v| v.is(&crate::migration::UX_TENANTS_SLUG))
}

fn slug_taken() -> AppError {
    AppError::conflict(
        ErrorCode::SlugTaken,
        "Já existe uma empresa com este identificador (slug).",
    )
    .with_context(json!({"field": "slug"}))
}

pub struct NewTenant {
    pub name: String,
    pub slug: String,
    pub email: String,
    pub cnpj: Option<String>,
    pub plan: String,
    pub status: TenantStatus,
}

/// Inserts a tenant, its counters and its first admin in one transaction.
pub async fn create_with_admin(
    state: &AppState,
    actor_id: Option<Uuid>,
    meta: &RequestMeta,
    t: NewTenant,
    admin: NewUser,
) -> AppResult<(Tenant, jtcrm_types::dto::users::User)> {
    let hash = state.hasher.hash(admin.password.clone()).await?;
    let txn = state.begin().await?;
    let plan = active_plan(&*txn, &t.plan).await?;
    if plan.limits.max_users.is_some_and(|m| m < 1) {
        return Err(AppError::plan_limit("max_users", 0));
    }
    let now = Utc::now();
    let row = tenant::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(t.name),
        slug: Set(t.slug),
        email: Set(t.email),
        cnpj: Set(t.cnpj),
        subscription_plan: Set(t.plan),
        status: Set(t.status.as_str().to_string()),
        suspended_reason: Set(None),
        settings: Set(serde_json::to_value(TenantSettings::default()).unwrap_or_default()),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    let created = match tenant::Entity::insert(row).exec_with_returning(&*txn).await {
        Ok(t) => t,
        Err(e) if is_slug_violation(&e) => return Err(slug_taken()),
        Err(e) => return Err(e.into()),
    };
    quota::init(&*txn, created.id, &[(Resource::Users, 1)]).await?;
    let seed = NewTenantSeed {
        tenant_id: created.id,
        limits: plan.limits.clone(),
        features: plan.features.clone(),
    };
    state.seeders.run(&txn, &seed).await?;
    let user = users::service::insert_user(&*txn, created.id, &admin, hash).await?;
    let tenant_dto = to_dto(created);
    let user_dto = users::to_dto(user);
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: Some(tenant_dto.id),
            actor_id,
            action: "create",
            entity_type: "tenant",
            entity_id: tenant_dto.id.to_string(),
            changes: audit::diff(
                &json!({}),
                &serde_json::to_value(&tenant_dto).unwrap_or_default(),
            ),
            meta,
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: Some(tenant_dto.id),
            actor_id,
            action: "create",
            entity_type: "user",
            entity_id: user_dto.id.to_string(),
            changes: users::service::audit_created(&user_dto),
            meta,
        },
    )
    .await?;
    txn.commit().await?;
    Ok((tenant_dto, user_dto))
}

pub async fn create(
    state: &AppState,
    actor: Uuid,
    meta: &RequestMeta,
    req: CreateTenantRequest,
) -> AppResult<Tenant> {
    let mut v = Validator::new();
    let name = v.required_text("name", req.name.as_deref(), 200);
    let slug = parse_slug(&mut v, req.slug.as_deref());
    let email = users::parse_email(&mut v, "email", req.email.as_deref());
    let cnpj = parse_cnpj(&mut v, req.cnpj.as_deref());
    let plan = v.required_text("subscription_plan", req.subscription_plan.as_deref(), 40);
    let status = parse_status(&mut v, req.status.as_deref()).unwrap_or(TenantStatus::Active);
    let admin = match &req.admin {
        None => {
            v.add(
                "admin",
                "required",
                "Informe o administrador inicial (name, email, password)",
            );
            None
        }
        Some(a) => users::validate_new_user(
            &mut v,
            "admin.",
            NewUserInput {
                name: a.name.as_deref(),
                email: a.email.as_deref(),
                password: a.password.as_deref(),
                role: None,
                phone: None,
                extension: None,
            },
            Some(Role::Admin),
        ),
    };
    v.finish()?;
    let (Some(name), Some(slug), Some(email), Some(plan), Some(admin)) =
        (name, slug, email, plan, admin)
    else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let (tenant, _) = create_with_admin(
        state,
        Some(actor),
        meta,
        NewTenant {
            name,
            slug,
            email,
            cnpj,
            plan,
            status,
        },
        admin,
    )
    .await?;
    Ok(tenant)
}

/// Public signup: a trial tenant on the starter plan, named after the company, with a unique slug.
pub async fn signup(
    state: &AppState,
    meta: &RequestMeta,
    company_name: String,
    admin: NewUser,
) -> AppResult<(Tenant, jtcrm_types::dto::users::User)> {
    let base = slugify(&company_name);
    let mut last_err = None;
    for attempt in 0..5 {
        let slug = if attempt == 0 {
            base.clone()
        } else {
            let suffix = &Uuid::now_v7().simple().to_string()[26..];
            format!(
                "{}-{suffix}",
                base.chars()
                    .take(56)
                    .collect::<String>()
                    .trim_end_matches('-')
            )
        };
        let t = NewTenant {
            name: company_name.clone(),
            slug,
            email: admin.email.clone(),
            cnpj: None,
            plan: "starter".into(),
            status: TenantStatus::Trial,
        };
        let admin = NewUser {
            name: admin.name.clone(),
            email: admin.email.clone(),
            password: admin.password.clone(),
            role: Role::Admin,
            phone: admin.phone.clone(),
            extension: admin.extension.clone(),
        };
        match create_with_admin(state, None, meta, t, admin).await {
            Err(e) if e.code == ErrorCode::SlugTaken => last_err = Some(e),
            other => return other,
        }
    }
    Err(last_err.unwrap_or_else(slug_taken))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    pub status: Option<TenantStatus>,
    pub subscription_plan: Option<String>,
    /// Case-insensitive search in name, slug and email.
    pub q: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

pub async fn list(state: &AppState, q: TenantQuery) -> AppResult<Page<Tenant>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = tenant::Entity::find();
    if let Some(s) = q.status {
        sel = sel.filter(tenant::Column::Status.eq(s.as_str()));
    }
    if let Some(p) = &q.subscription_plan {
        sel = sel.filter(tenant::Column::SubscriptionPlan.eq(p.as_str()));
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = sql::contains(&text.to_lowercase());
        sel = sel.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(tenant::Column::Name))).like(pattern.clone()))
                .add(Expr::col(tenant::Column::Slug).like(pattern.clone()))
                .add(Expr::col(tenant::Column::Email).like(pattern)),
        );
    }
    let page = Keyset::asc([tenant::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}

pub async fn get(state: &AppState, id: Uuid) -> AppResult<Tenant> {
    tenant::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .map(to_dto)
        .ok_or_else(AppError::not_found)
}

/// Applies a partial update. `restricted` (a tenant admin editing its own company) may not change
/// slug, plan or status.
pub async fn update(
    state: &AppState,
    actor: Uuid,
    meta: &RequestMeta,
    id: Uuid,
    if_match: Option<i32>,
    req: UpdateTenantRequest,
    restricted: bool,
) -> AppResult<Tenant> {
    let mut v = Validator::new();
    let name = v.optional_text("name", req.name.as_deref(), 200);
    if req.name.is_some() && name.is_none() && v.errors.is_empty() {
        v.add("name", "required", "Campo obrigatório");
    }
    let slug = req
        .slug
        .as_deref()
        .and_then(|s| parse_slug(&mut v, Some(s)));
    let email = req
        .email
        .as_deref()
        .and_then(|e| users::parse_email(&mut v, "email", Some(e)));
    let cnpj = req.cnpj.as_ref().map(|c| parse_cnpj(&mut v, c.as_deref()));
    let status = parse_status(&mut v, req.status.as_deref());
    if let Some(TenantSettingsInput {
        timezone: Some(tz), ..
    }) = &req.settings
    {
        validate_timezone(&mut v, tz);
    }
    if let Some(TenantSettingsInput {
        coverage_states: Some(states),
        ..
    }) = &req.settings
    {
        for st in states {
            if jtcrm_types::br::Uf::parse(st).is_err() {
                v.add("settings.coverage_states", "invalid_uf", "UF inválida");
            }
        }
    }
    let email_identity = req
        .settings
        .as_ref()
        .map(|si| identity::parse_identity(&mut v, si));
    if restricted && (req.slug.is_some() || req.subscription_plan.is_some() || req.status.is_some())
    {
        return Err(AppError::new(
            ErrorCode::Forbidden,
            "Slug, plano e status da empresa são alterados apenas pela JT Telecom.",
        ));
    }
    v.finish()?;
    let txn = state.begin().await?;
    let current = tenant::Entity::find_by_id(id)
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if if_match.is_some_and(|ver| ver != current.version) {
        return Err(AppError::stale_version());
    }
    if let Some(p) = &req.subscription_plan
        && *p != current.subscription_plan
    {
        let plan = active_plan(&*txn, p).await?;
        // Downgrades are refused while the tenant uses more than the new plan allows.
        for (resource, used) in quota::counts(&*txn, id).await? {
            let max = match resource.as_str() {
                "users" => plan.limits.max_users,
                "leads" => plan.limits.max_leads,
                "pipelines" => plan.limits.max_pipelines,
                "extensions" => plan.limits.max_extensions,
                "automations" => plan.limits.max_automations,
                _ => None,
            };
            if let Some(max) = max
                && used > max
            {
                return Err(AppError::conflict(
                    ErrorCode::PlanLimitExceeded,
                    format!(
                        "A empresa usa {used} de '{resource}', acima do limite {max} do plano {p}."
                    ),
                )
                .with_context(
                    json!({"limit": format!("max_{resource}"), "max": max, "used": used}),
                ));
            }
        }
    }
    let before_dto = to_dto(current.clone());
    let before = serde_json::to_value(&before_dto).unwrap_or_default();
    let version = current.version;
    let mut settings = before_dto.settings.clone();
    let mut m = current.into_active_model();
    if let Some(n) = name {
        m.name = Set(n);
    }
    if let Some(s) = slug {
        m.slug = Set(s);
    }
    if let Some(e) = email {
        m.email = Set(e);
    }
    if let Some(c) = cnpj {
        m.cnpj = Set(c);
    }
    if let Some(p) = &req.subscription_plan {
        m.subscription_plan = Set(p.clone());
    }
    if let Some(s) = status {
        m.status = Set(s.as_str().to_string());
        if s.is_usable() {
            m.suspended_reason = Set(None);
        }
    }
    if let Some(si) = &req.settings {
        if let Some(tz) = &si.timezone {
            settings.timezone = tz.clone();
        }
        if let Some(tv) = si.team_visibility {
            settings.team_visibility = tv;
        }
        if let Some(stage) = si.proposal_accept_stage_id {
            settings.proposal_accept_stage_id = stage;
        }
        if let Some(w) = si.contract_signed_wins_opportunity {
            settings.contract_signed_wins_opportunity = w;
        }
        if let Some(states) = &si.coverage_states {
            settings.coverage_states = states
                .iter()
                .filter_map(|s| {
                    jtcrm_types::br::Uf::parse(s)
                        .ok()
                        .map(|u| u.as_str().to_string())
                })
                .collect();
            settings.coverage_states.dedup();
        }
        if let Some(a) = &si.lead_assignment {
            if a.mode == jtcrm_types::dto::tenants::AssignmentMode::Fixed {
                let ok = match a.user_id {
                    Some(u) => crate::domains::users::is_active_user(&*txn, id, u).await?,
                    None => false,
                };
                if !ok {
                    return Err(AppError::field(
                        "settings.lead_assignment.user_id",
                        "unknown_user",
                        "Informe um usuário ativo da empresa para a atribuição fixa",
                    ));
                }
            }
            settings.lead_assignment = a.clone();
        }
        if let Some(identity) = &email_identity {
            identity.apply(&mut settings);
        }
        m.settings = Set(serde_json::to_value(&settings).unwrap_or_default());
    }
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = match crate::domains::optimistic_update::<tenant::Entity, _>(
        &*txn,
        m,
        tenant::Column::Version,
        version,
    )
    .await
    {
        Err(e) if e.db_error().is_some_and(is_slug_violation) => return Err(slug_taken()),
        other => other?,
    };
    let dto = to_dto(updated);
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: Some(id),
            actor_id: Some(actor),
            action: "update",
            entity_type: "tenant",
            entity_id: id.to_string(),
            changes: audit::diff(&before, &serde_json::to_value(&dto).unwrap_or_default()),
            meta,
        },
    )
    .await?;
    txn.commit().await?;
    state.tenants.invalidate(id);
    Ok(dto)
}

/// Suspends or re-activates a tenant. Its data is kept; its users get `403 tenant_suspended`.
pub async fn set_status(
    state: &AppState,
    actor: Uuid,
    meta: &RequestMeta,
    id: Uuid,
    status: TenantStatus,
    reason: Option<String>,
) -> AppResult<Tenant> {
    let txn = state.begin().await?;
    let current = tenant::Entity::find_by_id(id)
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    let before = serde_json::to_value(to_dto(current.clone())).unwrap_or_default();
    let version = current.version;
    let mut m = current.into_active_model();
    m.status = Set(status.as_str().to_string());
    m.suspended_reason = Set(if status.is_usable() { None } else { reason });
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<tenant::Entity, _>(
        &*txn,
        m,
        tenant::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(updated);
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: Some(id),
            actor_id: Some(actor),
            action: if status.is_usable() {
                "activate"
            } else {
                "suspend"
            },
            entity_type: "tenant",
            entity_id: id.to_string(),
            changes: audit::diff(&before, &serde_json::to_value(&dto).unwrap_or_default()),
            meta,
        },
    )
    .await?;
    txn.commit().await?;
    state.tenants.invalidate(id);
    Ok(dto)
}

pub async fn usage(state: &AppState, id: Uuid) -> AppResult<TenantUsage> {
    let t = tenant::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let plan = plans::find(&state.db, &t.subscription_plan).await?;
    let lim = plan.map(|p| p.limits).unwrap_or_default();
    let counts = quota::counts(&state.db, id).await?;
    let used = |k: &str| {
        counts
            .iter()
            .find(|(r, _)| r == k)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let minute = Utc::now().timestamp() / 60;
    let api = state
        .kv
        .count(&rate_key(id, minute))
        .await
        .map_err(AppError::unavailable)? as i64;
    let mut usage = std::collections::BTreeMap::new();
    usage.insert(
        "users".into(),
        UsageItem {
            used: used("users"),
            limit: lim.max_users,
        },
    );
    usage.insert(
        "leads".into(),
        UsageItem {
            used: used("leads"),
            limit: lim.max_leads,
        },
    );
    usage.insert(
        "pipelines".into(),
        UsageItem {
            used: used("pipelines"),
            limit: lim.max_pipelines,
        },
    );
    usage.insert(
        "extensions".into(),
        UsageItem {
            used: used("extensions"),
            limit: lim.max_extensions,
        },
    );
    usage.insert(
        "automations".into(),
        UsageItem {
            used: used("automations"),
            limit: lim.max_automations,
        },
    );
    usage.insert(
        "api_requests_this_minute".into(),
        UsageItem {
            used: api,
            limit: lim.api_rate_per_minute,
        },
    );
    Ok(TenantUsage {
        tenant_id: id,
        subscription_plan: t.subscription_plan,
        usage,
    })
}

/// The company's display name.
pub async fn name_of<C: ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<Option<String>> {
    Ok(tenant::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(|t| t.name))
}
