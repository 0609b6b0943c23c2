//! Proposals: created from an opportunity (its lines copied, then editable), numbered per tenant
//! and year without gaps, edited in revisions (a change after sending opens the next revision and
//! revokes the link), listed with filters and keyset pagination, sent by e-mail with a public link.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use jtcrm_types::dto::Page;
use jtcrm_types::dto::proposals::{
    Proposal, ProposalCreate, ProposalDecision, ProposalItem, ProposalItemInput, ProposalStatus,
    ProposalUpdate, ProposalVersion, ProposalView, TemplateKind,
};
use jtcrm_types::{ErrorCode, FieldError, money};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use uuid::Uuid;

use super::model::{proposal, version};
use super::templates;
use crate::domains::{email, leads, pipelines};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Sellers};
use jtcrm_kernel::http::idempotency::Uncommitted;
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::quota;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::{self, WriteMode};
use jtcrm_kernel::visibility::{sees_all, visible_to};

/// Default validity of a new proposal.
pub const DEFAULT_VALIDITY_DAYS: i64 = 15;
pub const MAX_VALIDITY_DAYS: i64 = 366;

pub mod kinds {
    pub const SENT: &str = "proposal_sent";
    pub const VIEWED: &str = "proposal_viewed";
    pub const ACCEPTED: &str = "proposal_accepted";
    pub const REJECTED: &str = "proposal_rejected";
}

/// Today in São Paulo (the product's business day; validity ends at its midnight).
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&chrono_tz::America::Sao_Paulo)
        .date_naive()
}

/// When a link of a proposal valid until `d` stops working: the end of that day in São Paulo.
pub fn end_of_day(d: NaiveDate) -> DateTime<Utc> {
    let next = d.succ_opt().unwrap_or(d);
    next.and_hms_opt(3, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now)
}

/// The status a reader sees: a sent or viewed proposal past its validity is `expired` (checked on
/// read; see docs/proposals.md).
pub fn effective_status(m: &proposal::Model, now: DateTime<Utc>) -> ProposalStatus {
    let s = ProposalStatus::parse(&m.status).unwrap_or(ProposalStatus::Draft);
    match s {
        ProposalStatus::Sent | ProposalStatus::Viewed if m.valid_until < today(now) => {
            ProposalStatus::Expired
        }
        s => s,
    }
}

pub fn items_of(m: &proposal::Model) -> Vec<ProposalItem> {
    serde_json::from_value(m.items.clone()).unwrap_or_default()
}

pub fn to_dto(m: proposal::Model) -> Proposal {
    let now = Utc::now();
    let status = effective_status(&m, now);
    let items = items_of(&m);
    Proposal {
        id: m.id,
        number: m.number,
        title: m.title,
        opportunity_id: m.opportunity_id,
        lead_id: m.lead_id,
        owner_id: m.owner_id,
        template_id: m.template_id,
        status,
        valid_until: m.valid_until,
        term_months: m.term_months,
        items,
        mrr_cents: m.mrr_cents,
        setup_cents: m.setup_cents,
        tcv_cents: m.tcv_cents,
        notes: m.notes,
        revision: m.revision,
        recipient_email: m.recipient_email,
        sent_at: m.sent_at,
        viewed: m.viewed_at.map(|at| ProposalView {
            ip: m.viewed_ip.clone(),
            user_agent: m.viewed_user_agent.clone(),
            at,
        }),
        decision: m.decided_at.map(|at| ProposalDecision {
            name: m.decision_name.clone(),
            cpf: m.decision_cpf.clone(),
            reason: m.decision_reason.clone(),
            ip: m.decision_ip.clone(),
            user_agent: m.decision_user_agent.clone(),
            at,
            document_sha256: m.decision_sha256.clone(),
        }),
        link_expires_at: m.link_expires_at,
        link_revoked: m.link_revoked_at.is_some(),
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// A live proposal of the tenant that the caller may see; otherwise `404`.
pub async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<proposal::Model> {
    proposal::Entity::find_by_id((ctx.tenant_id, id))
        .one(conn)
        .await?
        .filter(|m| m.deleted_at.is_none() && visible_to(ctx, m.owner_id))
        .ok_or_else(AppError::not_found)
}

fn not_found_in_body(field: &str) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("Registro referenciado em '{field}' não encontrado."),
    )
    .with_context(json!({"field": field}))
}

pub(super) fn invalid_state(status: ProposalStatus, what: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidStateTransition,
        format!(
            "Não é possível {what}: a proposta está com status '{}'.",
            status.as_str()
        ),
    )
    .with_context(json!({"status": status.as_str()}))
}

fn check_valid_until(v: &mut Validator, d: NaiveDate, now: DateTime<Utc>) {
    let t = today(now);
    if d < t {
        v.add(
            "valid_until",
            "in_the_past",
            "A validade não pode estar no passado",
        );
    } else if d > t + Duration::days(MAX_VALIDITY_DAYS) {
        v.add("valid_until", "too_far", "Validade de no máximo 366 dias");
    }
}

pub fn check_email(v: &mut Validator, field: &str, e: &str) -> Option<String> {
    let e = e.trim();
    if e.is_empty() {
        return None;
    }
    if e.chars().count() > 320 || !email::smtp::is_valid_address(e) {
        v.add(field, "invalid_email", "E-mail inválido");
        return None;
    }
    Some(e.to_string())
}

/// A line with its totals.
fn line(it: ProposalItem) -> Option<ProposalItem> {
    let bp = money::discount_bp(it.discount_percent)?;
    let m = money::line_total(it.quantity, it.monthly_price_cents, bp);
    let s = money::line_total(it.quantity, it.setup_price_cents, bp);
    Some(ProposalItem {
        monthly_total_cents: i64::try_from(m).ok()?,
        setup_total_cents: i64::try_from(s).ok()?,
        ..it
    })
}

pub fn validate_items(v: &mut Validator, inputs: &[ProposalItemInput]) -> Vec<ProposalItem> {
    if inputs.len() > money::MAX_ITEMS {
        v.add("items", "too_many", "No máximo 100 itens");
        return vec![];
    }
    let mut out = vec![];
    for (i, it) in inputs.iter().enumerate() {
        let f = |k: &str| format!("items[{i}].{k}");
        let name = v.required_text(&f("name"), it.name.as_deref(), 200);
        let sku = it
            .sku
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(60).collect::<String>());
        let quantity = it.quantity.unwrap_or(1);
        if !(1..=money::MAX_QUANTITY).contains(&quantity) {
            v.add(
                &f("quantity"),
                "out_of_range",
                "Quantidade entre 1 e 100000",
            );
        }
        let mut price = |k: &str, p: Option<i64>| {
            let p = p.unwrap_or(0);
            if !(0..=money::MAX_UNIT_PRICE_CENTS).contains(&p) {
                v.add(
                    &f(k),
                    "out_of_range",
                    "Valor em centavos entre 0 e 10000000000",
                );
            }
            p
        };
        let monthly = price("monthly_price_cents", it.monthly_price_cents);
        let setup = price("setup_price_cents", it.setup_price_cents);
        let discount = it.discount_percent.unwrap_or(0.0);
        if money::discount_bp(discount).is_none() {
            v.add(
                &f("discount_percent"),
                "out_of_range",
                "Desconto entre 0 e 100, com até duas casas decimais",
            );
        }
        if let Some(name) = name
            && let Some(l) = line(ProposalItem {
                product_id: it.product_id,
                name,
                sku,
                quantity: quantity.clamp(1, money::MAX_QUANTITY),
                monthly_price_cents: monthly.clamp(0, money::MAX_UNIT_PRICE_CENTS),
                setup_price_cents: setup.clamp(0, money::MAX_UNIT_PRICE_CENTS),
                discount_percent: discount,
                monthly_total_cents: 0,
                setup_total_cents: 0,
            })
        {
            out.push(l);
        }
    }
    out
}

pub fn totals(v: &mut Validator, items: &[ProposalItem], term: i32) -> money::Totals {
    let lines: Vec<(i128, i128)> = items
        .iter()
        .map(|i| {
            (
                i128::from(i.monthly_total_cents),
                i128::from(i.setup_total_cents),
            )
        })
        .collect();
    money::deal_totals(&lines, term).unwrap_or_else(|| {
        v.add(
            "items",
            "too_large",
            "Valor total acima do limite (R$ 1 bilhão)",
        );
        money::Totals {
            mrr_cents: 0,
            setup_cents: 0,
            tcv_cents: 0,
        }
    })
}

// ---------- create ----------

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    input: ProposalCreate,
) -> AppResult<Uncommitted<Proposal>> {
    let now = Utc::now();
    let mut v = Validator::new();
    let Some(opp_id) = input.opportunity_id else {
        v.add("opportunity_id", "required", "Campo obrigatório");
        v.finish()?;
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let valid_until = input
        .valid_until
        .unwrap_or_else(|| today(now) + Duration::days(DEFAULT_VALIDITY_DAYS));
    check_valid_until(&mut v, valid_until, now);
    let title = v.optional_text("title", input.title.as_deref(), 200);
    let notes = v.optional_text("notes", input.notes.as_deref(), 10_000);
    let recipient = input
        .recipient_email
        .as_deref()
        .and_then(|e| check_email(&mut v, "recipient_email", e));
    v.finish()?;

    // Another tenant's (or an invisible) deal is "not found", naming the field.
    let opp = match pipelines::opportunities::get(state, ctx, opp_id).await {
        Ok(o) => o,
        Err(e) if e.status().as_u16() == 404 => return Err(not_found_in_body("opportunity_id")),
        Err(e) => return Err(e),
    };
    if let Some(t) = input.template_id
        && templates::find(&state.db, ctx.tenant_id, TemplateKind::Proposal, t)
            .await
            .is_err()
    {
        return Err(not_found_in_body("template_id"));
    }
    let items: Vec<ProposalItem> = opp
        .items
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|i| ProposalItem {
            product_id: Some(i.product_id),
            name: i.product_name,
            sku: Some(i.sku),
            quantity: i.quantity,
            monthly_price_cents: i.monthly_price_cents,
            setup_price_cents: i.setup_price_cents,
            discount_percent: i.discount_percent,
            monthly_total_cents: i.monthly_total_cents,
            setup_total_cents: i.setup_total_cents,
        })
        .collect();
    let recipient = match (recipient, opp.lead_id) {
        (Some(r), _) => Some(r),
        (None, Some(l)) => leads::find_live(&state.db, ctx.tenant_id, l)
            .await?
            .and_then(|l| l.email),
        (None, None) => None,
    };

    let txn = state.begin().await?;
    let year = now.with_timezone(&chrono_tz::America::Sao_Paulo).year();
    let seq = quota::advance(&*txn, ctx.tenant_id, &format!("proposal_number:{year}"), 1).await?;
    let number = format!("PROP-{year}-{seq:04}");
    let id = Uuid::now_v7();
    let m = proposal::Entity::insert(proposal::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        number: Set(number),
        title: Set(title.unwrap_or_else(|| opp.title.clone())),
        opportunity_id: Set(opp.id),
        lead_id: Set(opp.lead_id),
        owner_id: Set(Some(opp.owner_id.unwrap_or(ctx.user_id))),
        template_id: Set(input.template_id),
        status: Set(ProposalStatus::Draft.as_str().into()),
        valid_until: Set(valid_until),
        term_months: Set(opp.term_months),
        items: Set(serde_json::to_value(&items).map_err(AppError::internal)?),
        mrr_cents: Set(opp.mrr_cents),
        setup_cents: Set(opp.setup_cents),
        tcv_cents: Set(opp.tcv_cents),
        notes: Set(notes),
        revision: Set(1),
        recipient_email: Set(recipient),
        sent_at: Set(None),
        link_token_hash: Set(None),
        link_expires_at: Set(None),
        link_revoked_at: Set(None),
        viewed_at: Set(None),
        viewed_ip: Set(None),
        viewed_user_agent: Set(None),
        decided_at: Set(None),
        decision_name: Set(None),
        decision_cpf: Set(None),
        decision_reason: Set(None),
        decision_ip: Set(None),
        decision_user_agent: Set(None),
        decision_sha256: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "proposal",
            id,
            json!({"number": dto.number, "opportunity_id": dto.opportunity_id}),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Proposal> {
    Ok(to_dto(find_visible(&state.db, ctx, id).await?))
}

// ---------- update ----------

pub async fn update(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    if_match: Option<i32>,
    input: ProposalUpdate,
    mode: WriteMode,
) -> AppResult<Proposal> {
    let now = Utc::now();
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let status = effective_status(&current, now);
    if let Some(s) = input.status
        && s != status
    {
        return Err(AppError::field(
            "status",
            "read_only",
            "O status muda por envio, visualização e decisão do cliente",
        ));
    }
    if !matches!(
        status,
        ProposalStatus::Draft | ProposalStatus::Sent | ProposalStatus::Viewed
    ) {
        return Err(invalid_state(status, "alterar a proposta"));
    }
    let replace = mode == WriteMode::Replace;
    let mut v = Validator::new();
    let title = match (&input.title, replace) {
        (None, false) => Some(current.title.clone()),
        (t, _) => v.required_text("title", t.as_deref(), 200),
    };
    let valid_until = match input.valid_until {
        Some(d) => {
            if d != current.valid_until {
                check_valid_until(&mut v, d, now);
            }
            d
        }
        None if replace => {
            v.add("valid_until", "required", "Campo obrigatório");
            current.valid_until
        }
        None => current.valid_until,
    };
    let term = match input.term_months {
        Some(t) if (1..=money::MAX_TERM_MONTHS).contains(&t) => t,
        Some(_) => {
            v.add("term_months", "out_of_range", "Prazo entre 1 e 600 meses");
            current.term_months
        }
        None => current.term_months,
    };
    let items = match &input.items {
        Some(list) => validate_items(&mut v, list),
        None if replace => {
            v.add("items", "required", "Campo obrigatório");
            vec![]
        }
        None => items_of(&current),
    };
    let t = totals(&mut v, &items, term);
    let notes = match (&input.notes, replace) {
        (None, false) => current.notes.clone(),
        (n, _) => v.optional_text("notes", n.as_deref(), 10_000),
    };
    let recipient = match (&input.recipient_email, replace) {
        (None, false) => current.recipient_email.clone(),
        (None, true) => None,
        (Some(e), _) => check_email(&mut v, "recipient_email", e),
    };
    let template_id = match (input.template_id, replace) {
        (None, false) => current.template_id,
        (t, _) => t,
    };
    v.finish()?;
    if let Some(t) = template_id
        && Some(t) != current.template_id
        && templates::find(&*txn, ctx.tenant_id, TemplateKind::Proposal, t)
            .await
            .is_err()
    {
        return Err(not_found_in_body("template_id"));
    }
    let before = serde_json::to_value(to_dto(current.clone())).unwrap_or_default();
    let was_sent = status != ProposalStatus::Draft;
    let ver = current.version;
    let revision = current.revision;
    let mut am = current.into_active_model();
    am.title = Set(title.unwrap_or_default());
    am.valid_until = Set(valid_until);
    am.term_months = Set(term);
    am.items = Set(serde_json::to_value(&items).map_err(AppError::internal)?);
    am.mrr_cents = Set(t.mrr_cents);
    am.setup_cents = Set(t.setup_cents);
    am.tcv_cents = Set(t.tcv_cents);
    am.notes = Set(notes);
    am.recipient_email = Set(recipient);
    am.template_id = Set(template_id);
    if was_sent {
        // The sent version stays frozen in proposal_versions; this is the next one, to be sent.
        am.revision = Set(revision + 1);
        am.status = Set(ProposalStatus::Draft.as_str().into());
        am.link_revoked_at = Set(Some(now));
    }
    am.updated_at = Set(now);
    am.version = Set(ver + 1);
    let m =
        store::optimistic_update::<proposal::Entity, _>(&*txn, am, proposal::Column::Version, ver)
            .await?;
    let dto = to_dto(m);
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "proposal", id, audit::diff(&before, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete. An accepted proposal is evidence and stays.
pub async fn delete(state: &AppState, ctx: &Authorized<Sellers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id).await?;
    let status = effective_status(&current, Utc::now());
    if status == ProposalStatus::Accepted {
        return Err(invalid_state(status, "excluir a proposta"));
    }
    store::soft_delete::<proposal::Entity>(txn, ctx, "proposal", current, |am| {
        am.link_revoked_at = Set(Some(Utc::now()));
    })
    .await
}

// ---------- list ----------

/// Query parameters of `GET /api/proposals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProposalQuery {
    /// `draft`, `sent`, `viewed`, `accepted`, `rejected` or `expired` (effective status).
    pub status: Option<ProposalStatus>,
    pub owner_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    /// Created on or after this day (São Paulo).
    pub created_from: Option<NaiveDate>,
    /// Created on or before this day (São Paulo).
    pub created_to: Option<NaiveDate>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// Proposals, newest first, keyset-paginated. Sales users see their own unless team visibility.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    q: ProposalQuery,
) -> AppResult<Page<Proposal>> {
    let limit = pagination::limit(q.limit)?;
    let now = Utc::now();
    let t = today(now);
    let mut sel = proposal::Entity::find()
        .filter(proposal::Column::TenantId.eq(ctx.tenant_id))
        .filter(proposal::Column::DeletedAt.is_null());
    if !sees_all(ctx) {
        sel = sel.filter(proposal::Column::OwnerId.eq(ctx.user_id));
    }
    if let Some(s) = q.status {
        let live = [
            ProposalStatus::Sent.as_str(),
            ProposalStatus::Viewed.as_str(),
        ];
        sel = match s {
            ProposalStatus::Expired => sel.filter(
                Condition::any()
                    .add(proposal::Column::Status.eq(s.as_str()))
                    .add(
                        Condition::all()
                            .add(proposal::Column::Status.is_in(live))
                            .add(proposal::Column::ValidUntil.lt(t)),
                    ),
            ),
            ProposalStatus::Sent | ProposalStatus::Viewed => sel
                .filter(proposal::Column::Status.eq(s.as_str()))
                .filter(proposal::Column::ValidUntil.gte(t)),
            _ => sel.filter(proposal::Column::Status.eq(s.as_str())),
        };
    }
    if let Some(o) = q.owner_id {
        sel = sel.filter(proposal::Column::OwnerId.eq(o));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(proposal::Column::LeadId.eq(l));
    }
    if let Some(o) = q.opportunity_id {
        sel = sel.filter(proposal::Column::OpportunityId.eq(o));
    }
    if let (Some(f), Some(to)) = (q.created_from, q.created_to)
        && f > to
    {
        return Err(AppError::validation(vec![FieldError::new(
            "created_from",
            "invalid_range",
            "created_from deve ser anterior a created_to",
        )]));
    }
    if let Some(f) = q.created_from {
        let from = end_of_day(f.pred_opt().unwrap_or(f));
        sel = sel.filter(proposal::Column::CreatedAt.gte(from));
    }
    if let Some(to) = q.created_to {
        sel = sel.filter(proposal::Column::CreatedAt.lt(end_of_day(to)));
    }
    let page = Keyset::desc([proposal::Column::CreatedAt, proposal::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    Ok(page.map(to_dto))
}

// ---------- versions ----------

fn version_dto(v: version::Model) -> ProposalVersion {
    let snap: Proposal = match serde_json::from_value(v.snapshot.clone()) {
        Ok(p) => p,
        Err(_) => {
            return ProposalVersion {
                revision: v.revision,
                sent_at: v.sent_at,
                valid_until: NaiveDate::default(),
                term_months: 0,
                items: vec![],
                mrr_cents: 0,
                setup_cents: 0,
                tcv_cents: 0,
                content: v.content,
                content_sha256: v.content_sha256,
            };
        }
    };
    ProposalVersion {
        revision: v.revision,
        sent_at: v.sent_at,
        valid_until: snap.valid_until,
        term_months: snap.term_months,
        items: snap.items,
        mrr_cents: snap.mrr_cents,
        setup_cents: snap.setup_cents,
        tcv_cents: snap.tcv_cents,
        content: v.content,
        content_sha256: v.content_sha256,
    }
}

pub async fn versions(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<Vec<ProposalVersion>> {
    find_visible(&state.db, ctx, id).await?;
    Ok(version::Entity::find()
        .filter(version::Column::TenantId.eq(ctx.tenant_id))
        .filter(version::Column::ProposalId.eq(id))
        .order_by_asc(version::Column::Revision)
        .all(&state.db)
        .await?
        .into_iter()
        .map(version_dto)
        .collect())
}

pub async fn version_of(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    n: i32,
) -> AppResult<ProposalVersion> {
    find_visible(&state.db, ctx, id).await?;
    version::Entity::find_by_id((ctx.tenant_id, id, n))
        .one(&state.db)
        .await?
        .map(version_dto)
        .ok_or_else(AppError::not_found)
}

/// The frozen content of a revision, if it was sent.
pub async fn frozen<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
    revision: i32,
) -> AppResult<Option<version::Model>> {
    Ok(version::Entity::find_by_id((tenant_id, id, revision))
        .one(conn)
        .await?)
}
