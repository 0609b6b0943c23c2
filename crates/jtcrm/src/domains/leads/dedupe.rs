//! Likely duplicates (same email, CNPJ or phone) and merging them into one survivor.

use std::collections::BTreeSet;

use chrono::Utc;
use jtcrm_types::dto::leads::{DuplicateGroup, Lead, MergeRequest};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::lead;
use super::service::{find_visible, load_scorer, save_draft};
use super::{LeadDraft, to_dto};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Sellers};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::visibility;

#[derive(Debug, FromQueryResult)]
struct KeyCount {
    key: Option<String>,
}

/// Groups of live leads sharing an email, CNPJ or phone (up to `limit` groups per key), as the
/// caller can see them.
pub async fn groups(
    state: &AppState,
    ctx: &TenantCtx,
    limit: u64,
) -> AppResult<Vec<DuplicateGroup>> {
    let mut out = vec![];
    for (label, col) in [
        ("email", lead::Column::Email),
        ("cnpj", lead::Column::Cnpj),
        ("phone", lead::Column::Phone),
    ] {
        let mut q = lead::Entity::find()
            .select_only()
            .column_as(col, "key")
            .filter(lead::Column::TenantId.eq(ctx.tenant_id))
            .filter(lead::Column::DeletedAt.is_null())
            .filter(col.is_not_null());
        if !visibility::sees_all(ctx) {
            q = q.filter(lead::Column::OwnerId.eq(ctx.user_id));
        }
        let keys: Vec<KeyCount> = q
            .group_by(col)
            .having(Expr::col(lead::Column::Id).count().gt(1))
            .order_by_asc(col)
            .limit(limit)
            .into_model::<KeyCount>()
            .all(&state.db)
            .await?;
        for k in keys.into_iter().filter_map(|k| k.key) {
            let mut lq = lead::Entity::find()
                .filter(lead::Column::TenantId.eq(ctx.tenant_id))
                .filter(lead::Column::DeletedAt.is_null())
                .filter(col.eq(k.as_str()));
            if !visibility::sees_all(ctx) {
                lq = lq.filter(lead::Column::OwnerId.eq(ctx.user_id));
            }
            let leads: Vec<Lead> = lq
                .order_by_asc(lead::Column::Id)
                .all(&state.db)
                .await?
                .into_iter()
                .map(to_dto)
                .collect();
            let value = leads.first().and_then(|l| match label {
                "email" => l.email.clone(),
                "cnpj" => l.cnpj.clone(),
                _ => l.phone.clone(),
            });
            out.push(DuplicateGroup {
                matched_on: label.into(),
                value: value.unwrap_or(k),
                leads,
            });
        }
    }
    Ok(out)
}

const MERGE_FIELDS: &[&str] = &[
    "name", "email", "phone", "company", "cnpj", "position", "source", "status", "owner_id", "cep",
    "city", "state",
];

/// Merges `duplicate_ids` into `survivor_id`: each empty field of the survivor is filled from the
/// duplicates in order (or taken from the lead named in `fields`), tags are united, notes appended,
/// custom fields merged (survivor first); duplicates are soft-deleted with `merged_into`. One
/// transaction; the audit log records what came from where.
pub async fn merge(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    survivor_id: Uuid,
    req: MergeRequest,
) -> AppResult<Lead> {
    let dup_ids: Vec<Uuid> = {
        let mut seen = BTreeSet::new();
        req.duplicate_ids
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| seen.insert(*i))
            .collect()
    };
    if dup_ids.is_empty() {
        return Err(AppError::field(
            "duplicate_ids",
            "required",
            "Informe ao menos um lead duplicado",
        ));
    }
    if dup_ids.len() > 50 {
        return Err(AppError::field(
            "duplicate_ids",
            "too_many",
            "No máximo 50 leads por mesclagem",
        ));
    }
    if dup_ids.contains(&survivor_id) {
        return Err(AppError::field(
            "duplicate_ids",
            "invalid_value",
            "O lead sobrevivente não pode estar na lista",
        ));
    }
    let choices = req.fields.clone().unwrap_or_default();
    for (f, from) in &choices {
        if !MERGE_FIELDS.contains(&f.as_str()) {
            return Err(AppError::field(
                &format!("fields.{f}"),
                "invalid_field",
                "Campo não mesclável",
            ));
        }
        if *from != survivor_id && !dup_ids.contains(from) {
            return Err(AppError::field(
                &format!("fields.{f}"),
                "invalid_value",
                "O lead escolhido não faz parte da mesclagem",
            ));
        }
    }
    let scorer = load_scorer(&state.db, ctx).await?;
    let txn = state.begin().await?;
    let survivor = find_visible(&*txn, ctx, survivor_id, false).await?;
    let mut dups = vec![];
    for id in &dup_ids {
        dups.push(find_visible(&*txn, ctx, *id, false).await?);
    }
    let mut d = LeadDraft::from_model(&survivor);
    let mut provenance = serde_json::Map::new();
    let drafts: Vec<(Uuid, LeadDraft)> = dups
        .iter()
        .map(|m| (m.id, LeadDraft::from_model(m)))
        .collect();
    let pick = |f: &str, src: &LeadDraft, dst: &mut LeadDraft| match f {
        "name" => dst.name = src.name.clone(),
        "email" => dst.email = src.email.clone(),
        "phone" => dst.phone = src.phone.clone(),
        "company" => dst.company = src.company.clone(),
        "cnpj" => dst.cnpj = src.cnpj.clone(),
        "position" => dst.position = src.position.clone(),
        "source" => dst.source = src.source,
        "status" => dst.status = src.status,
        "owner_id" => dst.owner_id = src.owner_id,
        "cep" => dst.cep = src.cep.clone(),
        "city" => dst.city = src.city.clone(),
        "state" => dst.state = src.state.clone(),
        _ => {}
    };
    let is_empty = |f: &str, x: &LeadDraft| match f {
        "email" => x.email.is_none(),
        "phone" => x.phone.is_none(),
        "company" => x.company.is_none(),
        "cnpj" => x.cnpj.is_none(),
        "position" => x.position.is_none(),
        "owner_id" => x.owner_id.is_none(),
        "cep" => x.cep.is_none(),
        "city" => x.city.is_none(),
        "state" => x.state.is_none(),
        _ => false,
    };
    for f in MERGE_FIELDS {
        if let Some(from) = choices.get(*f) {
            if *from != survivor_id
                && let Some((_, src)) = drafts.iter().find(|(id, _)| id == from)
            {
                pick(f, src, &mut d);
                provenance.insert((*f).into(), json!(from));
            }
            continue;
        }
        if is_empty(f, &d)
            && let Some((id, src)) = drafts.iter().find(|(_, x)| !is_empty(f, x))
        {
            pick(f, src, &mut d);
            provenance.insert((*f).into(), json!(id));
        }
    }
    if d.owner_id != survivor.owner_id && !super::service::can_reassign(ctx) {
        d.owner_id = survivor.owner_id;
        provenance.remove("owner_id");
    }
    for (_, x) in &drafts {
        for t in &x.tags {
            if !d.tags.contains(t) {
                d.tags.push(t.clone());
            }
        }
        for (k, v) in &x.custom_fields {
            d.custom_fields
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        if let Some(n) = x.notes.as_ref().filter(|n| !n.trim().is_empty()) {
            d.notes = Some(match d.notes.take() {
                Some(cur) if !cur.trim().is_empty() => format!("{cur}\n\n---\n{n}"),
                _ => n.clone(),
            });
        }
        if x.last_contacted_at > d.last_contacted_at {
            d.last_contacted_at = x.last_contacted_at;
        }
    }
    d.tags.truncate(super::MAX_TAGS);
    let signal: i32 = dups.iter().map(|m| m.signal_points).sum();
    let mut merged = save_draft(&*txn, ctx, survivor, &d, &scorer).await?;
    if signal != 0 {
        let total = merged.signal_points + signal;
        let score = scorer.score(&d, total);
        let version = merged.version;
        let mut am = merged.into_active_model();
        am.signal_points = Set(total);
        am.score = Set(score);
        am.version = Set(version + 1);
        merged = crate::domains::optimistic_update::<lead::Entity, _>(
            &*txn,
            am,
            lead::Column::Version,
            version,
        )
        .await?;
    }
    let now = Utc::now();
    for m in dups {
        let id = m.id;
        let version = m.version;
        let mut am = m.into_active_model();
        am.deleted_at = Set(Some(now));
        am.merged_into = Set(Some(survivor_id));
        am.updated_at = Set(now);
        am.version = Set(version + 1);
        crate::domains::optimistic_update::<lead::Entity, _>(
            &*txn,
            am,
            lead::Column::Version,
            version,
        )
        .await?;
        audit::record(
            &*txn,
            audit::Entry::tenant(
                ctx,
                "merged_into",
                "lead",
                id,
                json!({"merged_into": {"from": null, "to": survivor_id}}),
            ),
        )
        .await?;
    }
    quota::release(&*txn, ctx.tenant_id, Resource::Leads, dup_ids.len() as i64).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "merge",
            "lead",
            survivor_id,
            json!({"merged_ids": dup_ids, "fields_from": Value::Object(provenance)}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(merged))
}
