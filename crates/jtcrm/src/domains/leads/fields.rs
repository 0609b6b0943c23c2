//! Custom lead fields: per-tenant definitions (text, number, date, boolean, select) and validation
//! of the values stored in `leads.custom_fields`.

use chrono::{NaiveDate, Utc};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::leads::{CustomFieldDef, CustomFieldInput, CustomFieldType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::model::field_def;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::AdminCtx;
use jtcrm_kernel::state::AppState;

pub fn to_dto(m: field_def::Model) -> CustomFieldDef {
    CustomFieldDef {
        id: m.id,
        key: m.key,
        label: m.label,
        field_type: CustomFieldType::parse(&m.field_type).unwrap_or(CustomFieldType::Text),
        required: m.required,
        options: serde_json::from_value(m.options).unwrap_or_default(),
        position: m.position,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

pub async fn list_defs<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
) -> AppResult<Vec<CustomFieldDef>> {
    let rows = field_def::Entity::find()
        .filter(field_def::Column::TenantId.eq(tenant_id))
        .order_by_asc(field_def::Column::Position)
        .order_by_asc(field_def::Column::Id)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(to_dto).collect())
}

/// Checks `incoming` values against the definitions: unknown keys, wrong types and values outside a
/// select's options are `422` on `custom_fields.<key>`; a `null` removes the key. `stored` values (from
/// the current record) are kept as they are, even if their definition was deleted since. Required
/// fields must be present in the result.
pub fn validate_values(
    v: &mut Validator,
    stored: Map<String, Value>,
    incoming: &Map<String, Value>,
    defs: &[CustomFieldDef],
) -> Map<String, Value> {
    let mut out = stored;
    for (key, val) in incoming {
        let field = format!("custom_fields.{key}");
        if val.is_null() {
            out.remove(key);
            continue;
        }
        let Some(def) = defs.iter().find(|d| d.key == *key) else {
            v.add(&field, "unknown_field", "Campo personalizado não definido");
            continue;
        };
        match normalize_value(def, val) {
            Some(n) => {
                out.insert(key.clone(), n);
            }
            None => v.add(&field, "invalid_value", &invalid_message(def)),
        }
    }
    for d in defs.iter().filter(|d| d.required) {
        if !out.contains_key(&d.key)
            && !v
                .errors
                .iter()
                .any(|e| e.field == format!("custom_fields.{}", d.key))
        {
            v.add(
                &format!("custom_fields.{}", d.key),
                "required",
                "Campo obrigatório",
            );
        }
    }
    out
}

fn invalid_message(def: &CustomFieldDef) -> String {
    match def.field_type {
        CustomFieldType::Text => "Texto de até 1000 caracteres".into(),
        CustomFieldType::Number => "Informe um número".into(),
        CustomFieldType::Date => "Informe uma data AAAA-MM-DD".into(),
        CustomFieldType::Boolean => "Informe true ou false".into(),
        CustomFieldType::Select => format!("Use uma das opções: {}", def.options.join(", ")),
    }
}

/// Accepts the natural JSON type and, for imports, its string form ("12,5", "sim", "31/12/2026").
pub fn normalize_value(def: &CustomFieldDef, val: &Value) -> Option<Value> {
    match def.field_type {
        CustomFieldType::Text => match val {
            Value::String(s) if s.chars().count() <= 1000 => {
                Some(Value::String(s.trim().to_string()))
            }
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        },
        CustomFieldType::Number => match val {
            Value::Number(n) => Some(Value::Number(n.clone())),
            Value::String(s) => {
                let s = s.trim().replace('.', "").replace(',', ".");
                let s = if s.matches('.').count() > 1 {
                    return None;
                } else {
                    s
                };
                s.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            }
            _ => None,
        },
        CustomFieldType::Date => match val {
            Value::String(s) => {
                parse_date(s.trim()).map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            }
            _ => None,
        },
        CustomFieldType::Boolean => match val {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" | "sim" | "s" | "1" | "yes" => Some(Value::Bool(true)),
                "false" | "nao" | "não" | "n" | "0" | "no" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => None,
        },
        CustomFieldType::Select => match val {
            Value::String(s) => {
                let s = s.trim();
                def.options
                    .iter()
                    .find(|o| o.eq_ignore_ascii_case(s))
                    .map(|o| Value::String(o.clone()))
            }
            _ => None,
        },
    }
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .ok()
}

fn valid_key(k: &str) -> bool {
    (1..=40).contains(&k.len())
        && k.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_input(
    v: &mut Validator,
    input: &CustomFieldInput,
    current: Option<&CustomFieldDef>,
) -> Option<(String, String, CustomFieldType, bool, Vec<String>, i32)> {
    let key = match (&input.key, current) {
        (Some(k), Some(c)) if *k != c.key => {
            v.add(
                "key",
                "immutable",
                "A chave não pode ser alterada (os valores dos leads dependem dela)",
            );
            None
        }
        (_, Some(c)) => Some(c.key.clone()),
        (None, None) => {
            v.add("key", "required", "Campo obrigatório");
            None
        }
        (Some(k), None) => {
            if valid_key(k) {
                Some(k.clone())
            } else {
                v.add(
                    "key",
                    "invalid_key",
                    "Use letras minúsculas, dígitos e _ (até 40), começando por letra",
                );
                None
            }
        }
    };
    let label = match (&input.label, current) {
        (None, Some(c)) => Some(c.label.clone()),
        (l, _) => v.required_text("label", l.as_deref(), 120),
    };
    let field_type = match (&input.field_type, current) {
        (None, Some(c)) => Some(c.field_type),
        (None, None) => {
            v.add("type", "required", "Campo obrigatório");
            None
        }
        (Some(t), _) => match CustomFieldType::parse(t) {
            Some(t) => Some(t),
            None => {
                v.add(
                    "type",
                    "invalid_type",
                    "Tipo inválido: text, number, date, boolean ou select",
                );
                None
            }
        },
    };
    let options: Vec<String> = match (&input.options, current) {
        (None, Some(c)) => c.options.clone(),
        (None, None) => vec![],
        (Some(o), _) => {
            let mut out: Vec<String> = vec![];
            for x in o
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
            {
                if x.chars().count() > 100 {
                    v.add(
                        "options",
                        "too_long",
                        "Cada opção pode ter no máximo 100 caracteres",
                    );
                } else if !out.iter().any(|y| y.eq_ignore_ascii_case(&x)) {
                    out.push(x);
                }
            }
            out
        }
    };
    if field_type == Some(CustomFieldType::Select) && options.is_empty() {
        v.add(
            "options",
            "required",
            "Campos do tipo select precisam de opções",
        );
    }
    if options.len() > 200 {
        v.add("options", "too_many", "No máximo 200 opções");
    }
    let required = input
        .required
        .or(current.map(|c| c.required))
        .unwrap_or(false);
    let position = input.position.or(current.map(|c| c.position)).unwrap_or(0);
    if !(0..=10_000).contains(&position) {
        v.add("position", "out_of_range", "Posição entre 0 e 10000");
    }
    Some((key?, label?, field_type?, required, options, position))
}

pub async fn create(
    state: &AppState,
    ctx: &AdminCtx,
    input: CustomFieldInput,
) -> AppResult<CustomFieldDef> {
    let mut v = Validator::new();
    let parsed = parse_input(&mut v, &input, None);
    v.finish()?;
    let Some((key, label, ft, required, options, position)) = parsed else {
        return Err(AppError::bad_request(""));
    };
    let now = Utc::now();
    let txn = state.begin().await?;
    let row = field_def::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        key: Set(key),
        label: Set(label),
        field_type: Set(ft.as_str().to_string()),
        required: Set(required),
        options: Set(json!(options)),
        position: Set(position),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    };
    let created = match field_def::Entity::insert(row)
        .exec_with_returning(&*txn)
        .await
    {
        Ok(m) => m,
        Err(e)
            if crate::migration::unique_violation(&e)
                .is_some_and(|v| v.is(&crate::migration::UX_LEAD_FIELD_DEFS_KEY)) =>
        {
            return Err(AppError::new(
                ErrorCode::FieldKeyTaken,
                "Já existe um campo com esta chave.",
            )
            .with_context(json!({"field": "key"})));
        }
        Err(e) => return Err(e.into()),
    };
    let dto = to_dto(created);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "lead_field",
            dto.id,
            audit::diff(&json!({}), &serde_json::to_value(&dto).unwrap_or_default()),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

pub async fn update(
    state: &AppState,
    ctx: &AdminCtx,
    id: Uuid,
    if_match: Option<i32>,
    input: CustomFieldInput,
) -> AppResult<CustomFieldDef> {
    let txn = state.begin().await?;
    let current = field_def::Entity::find_by_id((ctx.tenant_id, id))
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let cur_dto = to_dto(current.clone());
    let mut v = Validator::new();
    let parsed = parse_input(&mut v, &input, Some(&cur_dto));
    v.finish()?;
    let Some((_, label, ft, required, options, position)) = parsed else {
        return Err(AppError::bad_request(""));
    };
    let version = current.version;
    let mut m = current.into_active_model();
    m.label = Set(label);
    m.field_type = Set(ft.as_str().to_string());
    m.required = Set(required);
    m.options = Set(json!(options));
    m.position = Set(position);
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<field_def::Entity, _>(
        &*txn,
        m,
        field_def::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(updated);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "lead_field",
            id,
            audit::diff(
                &serde_json::to_value(&cur_dto).unwrap_or_default(),
                &serde_json::to_value(&dto).unwrap_or_default(),
            ),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Deleting a definition keeps existing values in leads (they stop being editable and filterable).
pub async fn delete(state: &AppState, ctx: &AdminCtx, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = field_def::Entity::find_by_id((ctx.tenant_id, id))
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    field_def::Entity::delete_by_id((ctx.tenant_id, id))
        .exec(&*txn)
        .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "delete",
            "lead_field",
            id,
            json!({"key": {"from": current.key, "to": null}}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
