//! Subscription plans: limits and feature flags, seeded with starter/professional/enterprise and
//! editable by the super-admin. Changes take effect on every tenant of the plan.

#[cfg(feature = "internals")]
pub mod model;
#[cfg(not(feature = "internals"))]
mod model;
pub mod routes;

use chrono::Utc;
use jtcrm_types::dto::plans::{
    Plan, PlanFeatures, PlanFeaturesInput, PlanInput, PlanLimits, PlanLimitsInput,
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, QueryOrder};
use serde_json::json;

use jtcrm_kernel::audit;
use jtcrm_kernel::db::Db;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::RequestMeta;
use jtcrm_kernel::state::AppState;
use jtcrm_types::ErrorCode;

pub fn limits_of(p: &model::Model) -> PlanLimits {
    PlanLimits {
        max_users: p.max_users,
        max_leads: p.max_leads,
        max_pipelines: p.max_pipelines,
        max_extensions: p.max_extensions,
        max_automations: p.max_automations,
        api_rate_per_minute: p.api_rate_per_minute,
    }
}

pub fn features_of(p: &model::Model) -> PlanFeatures {
    PlanFeatures {
        telephony: p.feature_telephony,
        chatbot: p.feature_chatbot,
        e_signature: p.feature_e_signature,
        erp_sync: p.feature_erp_sync,
        whatsapp: p.feature_whatsapp,
        api_access: p.feature_api_access,
    }
}

/// The plan `code`, active or not.
pub async fn find<C: sea_orm::ConnectionTrait>(conn: &C, code: &str) -> AppResult<Option<Plan>> {
    use sea_orm::EntityTrait;
    Ok(model::Entity::find_by_id(code.to_string())
        .one(conn)
        .await?
        .map(to_dto))
}

pub fn to_dto(p: model::Model) -> Plan {
    Plan {
        limits: limits_of(&p),
        features: features_of(&p),
        code: p.code,
        name: p.name,
        price_cents: p.price_cents,
        active: p.active,
        created_at: p.created_at,
        updated_at: p.updated_at,
        version: p.version,
    }
}

struct Seed {
    code: &'static str,
    name: &'static str,
    price_cents: i64,
    limits: [Option<i64>; 6],
    features: [bool; 6],
}

/// The three plans every installation starts with (prices in BRL cents per month).
const SEEDS: [Seed; 3] = [
    Seed {
        code: "starter",
        name: "Starter",
        price_cents: 19_900,
        limits: [Some(5), Some(5_000), Some(2), Some(5), Some(5), Some(300)],
        features: [true, false, false, false, false, true],
    },
    Seed {
        code: "professional",
        name: "Professional",
        price_cents: 59_900,
        limits: [
            Some(25),
            Some(100_000),
            Some(10),
            Some(25),
            Some(50),
            Some(1_200),
        ],
        features: [true, true, true, true, false, true],
    },
    Seed {
        code: "enterprise",
        name: "Enterprise",
        price_cents: 149_900,
        limits: [None, None, None, None, None, Some(6_000)],
        features: [true, true, true, true, true, true],
    },
];

/// Inserts the default plans that are missing; never overwrites a plan the super-admin edited.
pub async fn seed_defaults(db: &Db) -> AppResult<()> {
    for s in SEEDS.iter() {
        if model::Entity::find_by_id(s.code.to_string())
            .one(db)
            .await?
            .is_some()
        {
            continue;
        }
        let now = Utc::now();
        let [
            max_users,
            max_leads,
            max_pipelines,
            max_extensions,
            max_automations,
            api_rate,
        ] = s.limits;
        let [
            telephony,
            chatbot,
            e_signature,
            erp_sync,
            whatsapp,
            api_access,
        ] = s.features;
        let row = model::ActiveModel {
            code: Set(s.code.to_string()),
            name: Set(s.name.to_string()),
            price_cents: Set(s.price_cents),
            active: Set(true),
            max_users: Set(max_users),
            max_leads: Set(max_leads),
            max_pipelines: Set(max_pipelines),
            max_extensions: Set(max_extensions),
            max_automations: Set(max_automations),
            api_rate_per_minute: Set(api_rate),
            feature_telephony: Set(telephony),
            feature_chatbot: Set(chatbot),
            feature_e_signature: Set(e_signature),
            feature_erp_sync: Set(erp_sync),
            feature_whatsapp: Set(whatsapp),
            feature_api_access: Set(api_access),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
        };
        match model::Entity::insert(row).exec_without_returning(db).await {
            Ok(_) => {}
            Err(e) if is_code_violation(&e) => {} // another node seeded it first
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A plan with this code exists already.
fn is_code_violation(e: &sea_orm::DbErr) -> bool {
    crate::migration::unique_violation(e).is_some_and(|v| v.is(&crate::migration::PLANS_PKEY))
}

pub async fn list(db: &Db) -> AppResult<Vec<Plan>> {
    let rows = model::Entity::find()
        .order_by_asc(model::Column::PriceCents)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(to_dto).collect())
}

pub async fn get(db: &Db, code: &str) -> AppResult<Plan> {
    model::Entity::find_by_id(code.to_string())
        .one(db)
        .await?
        .map(to_dto)
        .ok_or_else(AppError::not_found)
}

fn valid_code(code: &str) -> bool {
    (2..=40).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check_limits(v: &mut Validator, l: &PlanLimitsInput) {
    let all = [
        ("limits.max_users", l.max_users),
        ("limits.max_leads", l.max_leads),
        ("limits.max_pipelines", l.max_pipelines),
        ("limits.max_extensions", l.max_extensions),
        ("limits.max_automations", l.max_automations),
        ("limits.api_rate_per_minute", l.api_rate_per_minute),
    ];
    for (field, value) in all {
        if let Some(Some(n)) = value
            && n < 0
        {
            v.add(
                field,
                "out_of_range",
                "O limite não pode ser negativo (use null para ilimitado)",
            );
        }
    }
}

fn apply_limits(m: &mut model::ActiveModel, l: &PlanLimitsInput) {
    if let Some(v) = l.max_users {
        m.max_users = Set(v);
    }
    if let Some(v) = l.max_leads {
        m.max_leads = Set(v);
    }
    if let Some(v) = l.max_pipelines {
        m.max_pipelines = Set(v);
    }
    if let Some(v) = l.max_extensions {
        m.max_extensions = Set(v);
    }
    if let Some(v) = l.max_automations {
        m.max_automations = Set(v);
    }
    if let Some(v) = l.api_rate_per_minute {
        m.api_rate_per_minute = Set(v);
    }
}

fn apply_features(m: &mut model::ActiveModel, f: &PlanFeaturesInput) {
    if let Some(v) = f.telephony {
        m.feature_telephony = Set(v);
    }
    if let Some(v) = f.chatbot {
        m.feature_chatbot = Set(v);
    }
    if let Some(v) = f.e_signature {
        m.feature_e_signature = Set(v);
    }
    if let Some(v) = f.erp_sync {
        m.feature_erp_sync = Set(v);
    }
    if let Some(v) = f.whatsapp {
        m.feature_whatsapp = Set(v);
    }
    if let Some(v) = f.api_access {
        m.feature_api_access = Set(v);
    }
}

pub async fn create(
    state: &AppState,
    actor: uuid::Uuid,
    meta: &RequestMeta,
    input: PlanInput,
) -> AppResult<Plan> {
    let mut v = Validator::new();
    let code = v.required_text("code", input.code.as_deref(), 40);
    if let Some(c) = &code
        && !valid_code(c)
    {
        v.add(
            "code",
            "invalid_code",
            "Use de 2 a 40 caracteres: letras minúsculas, dígitos, - ou _",
        );
    }
    let name = v.required_text("name", input.name.as_deref(), 120);
    if input.price_cents.is_some_and(|p| p < 0) {
        v.add(
            "price_cents",
            "out_of_range",
            "O preço não pode ser negativo",
        );
    }
    let limits = input.limits.clone().unwrap_or_default();
    check_limits(&mut v, &limits);
    v.finish()?;
    let (Some(code), Some(name)) = (code, name) else {
        return Err(AppError::bad_request("code/name"));
    };
    let now = Utc::now();
    let mut m = model::ActiveModel {
        code: Set(code.clone()),
        name: Set(name),
        price_cents: Set(input.price_cents.unwrap_or(0)),
        active: Set(input.active.unwrap_or(true)),
        max_users: Set(None),
        max_leads: Set(None),
        max_pipelines: Set(None),
        max_extensions: Set(None),
        max_automations: Set(None),
        api_rate_per_minute: Set(None),
        feature_telephony: Set(false),
        feature_chatbot: Set(false),
        feature_e_signature: Set(false),
        feature_erp_sync: Set(false),
        feature_whatsapp: Set(false),
        feature_api_access: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    apply_limits(&mut m, &limits);
    apply_features(&mut m, &input.features.unwrap_or_default());
    let txn = state.begin().await?;
    let created = match m.insert(&*txn).await {
        Ok(p) => p,
        Err(e) if is_code_violation(&e) => {
            return Err(AppError::conflict(
                ErrorCode::PlanCodeTaken,
                "Já existe um plano com este código.",
            )
            .with_context(json!({"field": "code"})));
        }
        Err(e) => return Err(e.into()),
    };
    let dto = to_dto(created);
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: None,
            actor_id: Some(actor),
            action: "create",
            entity_type: "plan",
            entity_id: code,
            changes: audit::diff(&json!({}), &serde_json::to_value(&dto).unwrap_or_default()),
            meta,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

pub async fn update(
    state: &AppState,
    actor: uuid::Uuid,
    meta: &RequestMeta,
    code: &str,
    if_match: Option<i32>,
    input: PlanInput,
) -> AppResult<Plan> {
    let mut v = Validator::new();
    let name = v.optional_text("name", input.name.as_deref(), 120);
    if input.name.is_some() && name.is_none() && v.errors.is_empty() {
        v.add("name", "required", "Campo obrigatório");
    }
    if input.code.as_deref().is_some_and(|c| c != code) {
        v.add(
            "code",
            "immutable",
            "O código do plano não pode ser alterado",
        );
    }
    if input.price_cents.is_some_and(|p| p < 0) {
        v.add(
            "price_cents",
            "out_of_range",
            "O preço não pode ser negativo",
        );
    }
    if let Some(l) = &input.limits {
        check_limits(&mut v, l);
    }
    v.finish()?;
    let txn = state.begin().await?;
    let current = model::Entity::find_by_id(code.to_string())
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if if_match.is_some_and(|ver| ver != current.version) {
        return Err(AppError::stale_version());
    }
    let before = serde_json::to_value(to_dto(current.clone())).unwrap_or_default();
    let version = current.version;
    let mut m = current.into_active_model();
    if let Some(n) = name {
        m.name = Set(n);
    }
    if let Some(p) = input.price_cents {
        m.price_cents = Set(p);
    }
    if let Some(a) = input.active {
        m.active = Set(a);
    }
    if let Some(l) = &input.limits {
        apply_limits(&mut m, l);
    }
    if let Some(f) = &input.features {
        apply_features(&mut m, f);
    }
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<model::Entity, _>(
        &*txn,
        m,
        model::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(updated);
    audit::record(
        &*txn,
        audit::Entry {
            tenant_id: None,
            actor_id: Some(actor),
            action: "update",
            entity_type: "plan",
            entity_id: code.to_string(),
            changes: audit::diff(&before, &serde_json::to_value(&dto).unwrap_or_default()),
            meta,
        },
    )
    .await?;
    txn.commit().await?;
    state.tenants.invalidate_all();
    Ok(dto)
}
