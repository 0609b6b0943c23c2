//! Contracts: created from an accepted proposal or an opportunity, numbered per tenant and year
//! without gaps, edited in revisions (a change after sending opens the next revision and voids the
//! earlier signatures), listed with filters and keyset pagination.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use jtcrm_types::br::Cpf;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::contracts::{
    Contract, ContractCreate, ContractStatus, ContractUpdate, ContractVersion,
    EarlyTerminationRule, Equipment, EquipmentInput, SignatureEvidence, SignatureMethod,
    SignatureProvider, Signer, SignerInput, SignerStatus, TerminationFee,
};
use jtcrm_types::dto::proposals::{ProposalItem, ProposalStatus, TemplateKind};
use jtcrm_types::{ErrorCode, FieldError, money};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use utoipa::IntoParams;
use uuid::Uuid;

use super::fee;
use super::model::{contract, signer, version};
use crate::domains::proposals::{self, render, templates};
use crate::domains::{leads, pipelines};
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

pub const MAX_SIGNERS: usize = 10;
pub const MAX_EQUIPMENT: usize = 100;

pub mod kinds {
    pub const CREATED: &str = "contract_created";
    pub const SENT: &str = "contract_sent";
    pub const SIGNATURE: &str = "contract_signature";
    pub const SIGNED: &str = "contract_signed";
    pub const ACTIVATED: &str = "contract_activated";
    pub const CANCELLED: &str = "contract_cancelled";
}

pub fn today(now: DateTime<Utc>) -> NaiveDate {
    proposals::service::today(now)
}

/// The status a reader sees: unsigned past the signing deadline, or active past the end of the
/// term, reads `expired` (checked on read, as proposals do).
pub fn effective_status(m: &contract::Model, now: DateTime<Utc>) -> ContractStatus {
    let s = ContractStatus::parse(&m.status).unwrap_or(ContractStatus::Draft);
    let t = today(now);
    match s {
        ContractStatus::Sent | ContractStatus::PartiallySigned
            if m.signature_deadline.is_some_and(|d| d < t) =>
        {
            ContractStatus::Expired
        }
        ContractStatus::Active
            if m.start_date
                .is_some_and(|sd| fee::end_date(sd, m.term_months) < t) =>
        {
            ContractStatus::Expired
        }
        s => s,
    }
}

pub fn items_of(m: &contract::Model) -> Vec<ProposalItem> {
    serde_json::from_value(m.items.clone()).unwrap_or_default()
}

pub fn equipment_of(m: &contract::Model) -> Vec<Equipment> {
    serde_json::from_value(m.equipment.clone()).unwrap_or_default()
}

pub fn signer_dto(s: &signer::Model) -> Signer {
    Signer {
        id: s.id,
        name: s.name.clone(),
        email: s.email.clone(),
        cpf: s.cpf.clone(),
        position: s.position,
        status: SignerStatus::parse(&s.status).unwrap_or(SignerStatus::Pending),
        signature: s.signed_at.map(|at| SignatureEvidence {
            method: s
                .method
                .as_deref()
                .and_then(SignatureMethod::parse)
                .unwrap_or(SignatureMethod::EmailLink),
            name: s.signed_name.clone().unwrap_or_default(),
            cpf: s.signed_cpf.clone(),
            ip: s.signed_ip.clone(),
            user_agent: s.signed_user_agent.clone(),
            at,
            document_sha256: s.signed_sha256.clone().unwrap_or_default(),
            evidence_file_id: s.evidence_file_id,
            recorded_by: s.recorded_by,
        }),
    }
}

pub fn to_dto(m: contract::Model, signers: &[signer::Model]) -> Contract {
    let status = effective_status(&m, Utc::now());
    Contract {
        id: m.id,
        items: items_of(&m),
        equipment: equipment_of(&m),
        signers: signers.iter().map(signer_dto).collect(),
        number: m.number,
        title: m.title,
        proposal_id: m.proposal_id,
        opportunity_id: m.opportunity_id,
        lead_id: m.lead_id,
        owner_id: m.owner_id,
        template_id: m.template_id,
        status,
        mrr_cents: m.mrr_cents,
        setup_cents: m.setup_cents,
        tcv_cents: m.tcv_cents,
        term_months: m.term_months,
        start_date: m.start_date,
        end_date: m.start_date.map(|d| fee::end_date(d, m.term_months)),
        early_termination: EarlyTerminationRule {
            percent_of_remaining: m.early_termination_percent,
        },
        sla: m.sla,
        provider: SignatureProvider::parse(&m.provider).unwrap_or(SignatureProvider::EmailLink),
        revision: m.revision,
        generated_content: m.generated_content,
        document_sha256: m.document_sha256,
        signature_deadline: m.signature_deadline,
        sent_at: m.sent_at,
        signed_at: m.signed_at,
        activated_at: m.activated_at,
        cancelled_at: m.cancelled_at,
        cancel_reason: m.cancel_reason,
        termination_fee_cents: m.termination_fee_cents,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// The signers of a contract, in order.
pub async fn signers_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    contract_id: Uuid,
) -> AppResult<Vec<signer::Model>> {
    Ok(signer::Entity::find()
        .filter(signer::Column::TenantId.eq(tenant_id))
        .filter(signer::Column::ContractId.eq(contract_id))
        .order_by_asc(signer::Column::Position)
        .all(conn)
        .await?)
}

pub async fn dto_of<C: ConnectionTrait>(conn: &C, m: contract::Model) -> AppResult<Contract> {
    let s = signers_of(conn, m.tenant_id, m.id).await?;
    Ok(to_dto(m, &s))
}

/// A live contract of the tenant that the caller may see; otherwise `404`.
pub async fn find_visible<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<contract::Model> {
    contract::Entity::find_by_id((ctx.tenant_id, id))
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

pub(super) fn invalid_state(status: ContractStatus, what: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidStateTransition,
        format!(
            "Não é possível {what}: o contrato está com status '{}'.",
            status.as_str()
        ),
    )
    .with_context(json!({"status": status.as_str()}))
}

fn validate_equipment(v: &mut Validator, list: &[EquipmentInput]) -> Vec<Equipment> {
    if list.len() > MAX_EQUIPMENT {
        v.add("equipment", "too_many", "No máximo 100 equipamentos");
        return vec![];
    }
    let mut out = vec![];
    for (i, e) in list.iter().enumerate() {
        let name = v.required_text(&format!("equipment[{i}].name"), e.name.as_deref(), 200);
        let quantity = e.quantity.unwrap_or(1);
        if !(1..=10_000).contains(&quantity) {
            v.add(
                &format!("equipment[{i}].quantity"),
                "out_of_range",
                "Quantidade entre 1 e 10000",
            );
        }
        let serial = v.optional_text(&format!("equipment[{i}].serial"), e.serial.as_deref(), 100);
        if let Some(name) = name {
            out.push(Equipment {
                name,
                quantity: quantity.clamp(1, 10_000),
                serial,
            });
        }
    }
    out
}

/// A validated signer: name, e-mail, masked CPF.
pub struct SignerDraft {
    pub name: String,
    pub email: Option<String>,
    pub cpf: Option<String>,
}

fn validate_signers(v: &mut Validator, list: &[SignerInput]) -> Vec<SignerDraft> {
    if list.len() > MAX_SIGNERS {
        v.add("signers", "too_many", "No máximo 10 signatários");
        return vec![];
    }
    let mut out = vec![];
    for (i, s) in list.iter().enumerate() {
        let name = v.required_text(&format!("signers[{i}].name"), s.name.as_deref(), 200);
        let email = s
            .email
            .as_deref()
            .and_then(|e| proposals::service::check_email(v, &format!("signers[{i}].email"), e));
        let cpf = match s.cpf.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match Cpf::parse(c) {
                Ok(c) => Some(c.masked()),
                Err(e) => {
                    v.add(&format!("signers[{i}].cpf"), e.code(), e.message_pt());
                    None
                }
            },
        };
        if let Some(name) = name {
            out.push(SignerDraft { name, email, cpf });
        }
    }
    out
}

fn check_percent(v: &mut Validator, r: Option<EarlyTerminationRule>, default: i32) -> i32 {
    match r {
        Some(r) if (0..=100).contains(&r.percent_of_remaining) => r.percent_of_remaining,
        Some(_) => {
            v.add(
                "early_termination.percent_of_remaining",
                "out_of_range",
                "Percentual entre 0 e 100",
            );
            default
        }
        None => default,
    }
}

fn check_term(v: &mut Validator, t: Option<i32>, default: i32) -> i32 {
    match t {
        Some(t) if (1..=money::MAX_TERM_MONTHS).contains(&t) => t,
        Some(_) => {
            v.add("term_months", "out_of_range", "Prazo entre 1 e 600 meses");
            default
        }
        None => default,
    }
}

pub(super) async fn insert_signers<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    contract_id: Uuid,
    list: Vec<SignerDraft>,
) -> AppResult<()> {
    for (i, s) in list.into_iter().enumerate() {
        signer::Entity::insert(signer::ActiveModel {
            tenant_id: Set(tenant_id),
            id: Set(Uuid::now_v7()),
            contract_id: Set(contract_id),
            position: Set(i32::try_from(i).unwrap_or(0) + 1),
            name: Set(s.name),
            email: Set(s.email),
            cpf: Set(s.cpf),
            status: Set(SignerStatus::Pending.as_str().into()),
            link_token_hash: Set(None),
            link_expires_at: Set(None),
            method: Set(None),
            signed_at: Set(None),
            signed_name: Set(None),
            signed_cpf: Set(None),
            signed_ip: Set(None),
            signed_user_agent: Set(None),
            signed_sha256: Set(None),
            evidence_file_id: Set(None),
            recorded_by: Set(None),
        })
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

// ---------- create ----------

pub async fn create(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    input: ContractCreate,
) -> AppResult<Uncommitted<Contract>> {
    let now = Utc::now();
    let mut v = Validator::new();
    match (input.proposal_id, input.opportunity_id) {
        (None, None) => v.add(
            "proposal_id",
            "required",
            "Informe proposal_id (proposta aceita) ou opportunity_id",
        ),
        (Some(_), Some(_)) => v.add(
            "opportunity_id",
            "conflict",
            "Informe apenas um: proposal_id ou opportunity_id",
        ),
        _ => {}
    }
    let title = v.optional_text("title", input.title.as_deref(), 200);
    let sla = v.optional_text("sla", input.sla.as_deref(), 10_000);
    let equipment = validate_equipment(&mut v, input.equipment.as_deref().unwrap_or(&[]));
    let signers = input
        .signers
        .as_deref()
        .map(|s| validate_signers(&mut v, s));
    let percent = check_percent(&mut v, input.early_termination, 30);
    v.finish()?;

    // The source: an accepted proposal (its items, term, customer and acceptance), or a deal.
    let (opp_id, proposal) = match (input.proposal_id, input.opportunity_id) {
        (Some(pid), _) => {
            let p = match proposals::service::get(state, ctx, pid).await {
                Ok(p) => p,
                Err(e) if e.status().as_u16() == 404 => {
                    return Err(not_found_in_body("proposal_id"));
                }
                Err(e) => return Err(e),
            };
            if p.status != ProposalStatus::Accepted {
                return Err(AppError::new(
                    ErrorCode::InvalidStateTransition,
                    format!(
                        "Só uma proposta aceita vira contrato (status '{}').",
                        p.status.as_str()
                    ),
                )
                .with_context(json!({"field": "proposal_id", "status": p.status.as_str()})));
            }
            (p.opportunity_id, Some(p))
        }
        (None, Some(o)) => (o, None),
        (None, None) => return Err(AppError::bad_request("Dados inválidos.")),
    };
    let opp = match pipelines::opportunities::get(state, ctx, opp_id).await {
        Ok(o) => o,
        Err(e) if e.status().as_u16() == 404 => return Err(not_found_in_body("opportunity_id")),
        Err(e) => return Err(e),
    };
    if let Some(t) = input.template_id
        && templates::find(&state.db, ctx.tenant_id, TemplateKind::Contract, t)
            .await
            .is_err()
    {
        return Err(not_found_in_body("template_id"));
    }
    let (items, mrr, setup, base_term) = match &proposal {
        Some(p) => (p.items.clone(), p.mrr_cents, p.setup_cents, p.term_months),
        None => (
            opp.items
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
                .collect(),
            opp.mrr_cents,
            opp.setup_cents,
            opp.term_months,
        ),
    };
    let mut v = Validator::new();
    let term = check_term(&mut v, input.term_months, base_term.max(1));
    v.finish()?;
    let tcv = money::deal_totals(&[(i128::from(mrr), i128::from(setup))], term)
        .map(|t| t.tcv_cents)
        .ok_or_else(|| AppError::field("items", "too_large", "Valor total acima do limite"))?;
    // Default signer: who accepted the proposal (name, CPF), with the lead's e-mail.
    let lead = match opp.lead_id {
        Some(l) => leads::find_live(&state.db, ctx.tenant_id, l).await?,
        None => None,
    };
    let signers = match signers {
        Some(s) => s,
        None => {
            let accepted = proposal.as_ref().and_then(|p| p.decision.clone());
            let name = accepted
                .as_ref()
                .and_then(|d| d.name.clone())
                .or_else(|| lead.as_ref().map(|l| l.name.clone()));
            let email = proposal
                .as_ref()
                .and_then(|p| p.recipient_email.clone())
                .or_else(|| lead.as_ref().and_then(|l| l.email.clone()));
            match name {
                Some(name) => vec![SignerDraft {
                    name,
                    email,
                    cpf: accepted.and_then(|d| d.cpf),
                }],
                None => vec![],
            }
        }
    };

    let txn = state.begin().await?;
    let year = now.with_timezone(&chrono_tz::America::Sao_Paulo).year();
    let seq = quota::advance(&*txn, ctx.tenant_id, &format!("contract_number:{year}"), 1).await?;
    let number = format!("CTR-{year}-{seq:04}");
    let id = Uuid::now_v7();
    let m = contract::Entity::insert(contract::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        number: Set(number),
        title: Set(title.unwrap_or_else(|| opp.title.clone())),
        proposal_id: Set(proposal.as_ref().map(|p| p.id)),
        opportunity_id: Set(opp.id),
        lead_id: Set(opp.lead_id),
        owner_id: Set(Some(opp.owner_id.unwrap_or(ctx.user_id))),
        template_id: Set(input.template_id),
        status: Set(ContractStatus::Draft.as_str().into()),
        items: Set(serde_json::to_value(&items).map_err(AppError::internal)?),
        mrr_cents: Set(mrr),
        setup_cents: Set(setup),
        tcv_cents: Set(tcv),
        term_months: Set(term),
        start_date: Set(input.start_date),
        early_termination_percent: Set(percent),
        sla: Set(sla.unwrap_or_else(|| render::DEFAULT_SLA.to_string())),
        equipment: Set(serde_json::to_value(&equipment).map_err(AppError::internal)?),
        provider: Set(SignatureProvider::EmailLink.as_str().into()),
        revision: Set(1),
        generated_content: Set(None),
        document_sha256: Set(None),
        pdf_file_id: Set(None),
        signature_deadline: Set(None),
        sent_at: Set(None),
        signed_at: Set(None),
        activated_at: Set(None),
        cancelled_at: Set(None),
        cancel_reason: Set(None),
        termination_fee_cents: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    insert_signers(&*txn, ctx.tenant_id, id, signers).await?;
    let dto = dto_of(&*txn, m).await?;
    jtcrm_kernel::timeline::record(
        &*txn,
        jtcrm_kernel::timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id: dto.lead_id,
            opportunity_id: Some(dto.opportunity_id),
            kind: kinds::CREATED,
            actor_id: Some(ctx.user_id),
            summary: format!("Contrato {} criado", dto.number),
            data: json!({"contract_id": id, "number": dto.number, "proposal_id": dto.proposal_id}),
            reference: Some(("contract", id)),
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "contract",
            id,
            json!({"number": dto.number, "opportunity_id": dto.opportunity_id, "proposal_id": dto.proposal_id}),
        ),
    )
    .await?;
    Ok(Uncommitted::new(txn, dto))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<Contract> {
    let m = find_visible(&state.db, ctx, id).await?;
    dto_of(&state.db, m).await
}

// ---------- update ----------

/// Replaces the editable fields. A sent or partially signed contract goes back to `draft` in the
/// next revision: its signatures and links are void (the sent revision stays under `/versions`).
pub async fn update(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    if_match: Option<i32>,
    input: ContractUpdate,
    mode: WriteMode,
) -> AppResult<Contract> {
    let now = Utc::now();
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id).await?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let status = effective_status(&current, now);
    if !matches!(
        status,
        ContractStatus::Draft | ContractStatus::Sent | ContractStatus::PartiallySigned
    ) {
        return Err(invalid_state(status, "alterar o contrato"));
    }
    let replace = mode == WriteMode::Replace;
    let mut v = Validator::new();
    let title = match (&input.title, replace) {
        (None, false) => Some(current.title.clone()),
        (t, _) => v.required_text("title", t.as_deref(), 200),
    };
    let term = check_term(&mut v, input.term_months, current.term_months);
    let items = match &input.items {
        Some(list) => proposals::service::validate_items(&mut v, list),
        None => items_of(&current),
    };
    let t = proposals::service::totals(&mut v, &items, term);
    let sla = match (&input.sla, replace) {
        (None, false) => Some(current.sla.clone()),
        (s, _) => v.required_text("sla", s.as_deref(), 10_000),
    };
    let equipment = match &input.equipment {
        Some(list) => validate_equipment(&mut v, list),
        None if replace => vec![],
        None => equipment_of(&current),
    };
    let signers = input
        .signers
        .as_deref()
        .map(|s| validate_signers(&mut v, s));
    let percent = check_percent(
        &mut v,
        input.early_termination,
        current.early_termination_percent,
    );
    let start_date = match (input.start_date, replace) {
        (None, false) => current.start_date,
        (d, _) => d,
    };
    let template_id = match (input.template_id, replace) {
        (None, false) => current.template_id,
        (t, _) => t,
    };
    v.finish()?;
    if let Some(tid) = template_id
        && Some(tid) != current.template_id
        && templates::find(&*txn, ctx.tenant_id, TemplateKind::Contract, tid)
            .await
            .is_err()
    {
        return Err(not_found_in_body("template_id"));
    }
    let before_signers = signers_of(&*txn, ctx.tenant_id, id).await?;
    let before = serde_json::to_value(to_dto(current.clone(), &before_signers)).unwrap_or_default();
    let was_sent = status != ContractStatus::Draft;
    let ver = current.version;
    let revision = current.revision;
    let mut am = current.into_active_model();
    am.title = Set(title.unwrap_or_default());
    am.term_months = Set(term);
    am.items = Set(serde_json::to_value(&items).map_err(AppError::internal)?);
    am.mrr_cents = Set(t.mrr_cents);
    am.setup_cents = Set(t.setup_cents);
    am.tcv_cents = Set(t.tcv_cents);
    am.sla = Set(sla.unwrap_or_default());
    am.equipment = Set(serde_json::to_value(&equipment).map_err(AppError::internal)?);
    am.early_termination_percent = Set(percent);
    am.start_date = Set(start_date);
    am.template_id = Set(template_id);
    if was_sent {
        // The sent revision stays frozen in contract_versions; this is the next one.
        am.revision = Set(revision + 1);
        am.status = Set(ContractStatus::Draft.as_str().into());
        am.generated_content = Set(None);
        am.document_sha256 = Set(None);
        am.pdf_file_id = Set(None);
        am.signature_deadline = Set(None);
    }
    am.updated_at = Set(now);
    am.version = Set(ver + 1);
    let m =
        store::optimistic_update::<contract::Entity, _>(&*txn, am, contract::Column::Version, ver)
            .await?;
    match signers {
        Some(list) => {
            signer::Entity::delete_many()
                .filter(signer::Column::TenantId.eq(ctx.tenant_id))
                .filter(signer::Column::ContractId.eq(id))
                .exec(&*txn)
                .await?;
            insert_signers(&*txn, ctx.tenant_id, id, list).await?;
        }
        None if was_sent => {
            // Same people, fresh: earlier signatures were of the previous revision.
            let list = before_signers
                .iter()
                .map(|s| SignerDraft {
                    name: s.name.clone(),
                    email: s.email.clone(),
                    cpf: s.cpf.clone(),
                })
                .collect();
            signer::Entity::delete_many()
                .filter(signer::Column::TenantId.eq(ctx.tenant_id))
                .filter(signer::Column::ContractId.eq(id))
                .exec(&*txn)
                .await?;
            insert_signers(&*txn, ctx.tenant_id, id, list).await?;
        }
        None => {}
    }
    let dto = dto_of(&*txn, m).await?;
    let after = serde_json::to_value(&dto).unwrap_or_default();
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "update", "contract", id, audit::diff(&before, &after)),
    )
    .await?;
    txn.commit().await?;
    Ok(dto)
}

/// Soft delete of a contract nobody has signed yet. Signed, active and cancelled contracts are
/// records and stay (`409`).
pub async fn delete(state: &AppState, ctx: &Authorized<Sellers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = find_visible(&*txn, ctx, id).await?;
    let status = effective_status(&current, Utc::now());
    let signed_any = signers_of(&*txn, ctx.tenant_id, id)
        .await?
        .iter()
        .any(|s| s.signed_at.is_some());
    if signed_any
        || matches!(
            status,
            ContractStatus::Signed | ContractStatus::Active | ContractStatus::Cancelled
        )
    {
        return Err(invalid_state(status, "excluir o contrato"));
    }
    signer::Entity::update_many()
        .col_expr(
            signer::Column::LinkExpiresAt,
            sea_orm::sea_query::Expr::value(Some(Utc::now())),
        )
        .filter(signer::Column::TenantId.eq(ctx.tenant_id))
        .filter(signer::Column::ContractId.eq(id))
        .exec(&*txn)
        .await?;
    store::soft_delete::<contract::Entity>(txn, ctx, "contract", current, |_| {}).await
}

// ---------- list ----------

/// Query parameters of `GET /api/contracts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractQuery {
    /// `draft`, `sent`, `partially_signed`, `signed`, `active`, `cancelled` or `expired`
    /// (effective status).
    pub status: Option<ContractStatus>,
    pub owner_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    pub proposal_id: Option<Uuid>,
    /// Created on or after this day (São Paulo).
    pub created_from: Option<NaiveDate>,
    /// Created on or before this day (São Paulo).
    pub created_to: Option<NaiveDate>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

/// Contracts, newest first, keyset-paginated. Sales users see their own unless team visibility.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    q: ContractQuery,
) -> AppResult<Page<Contract>> {
    let limit = pagination::limit(q.limit)?;
    let t = today(Utc::now());
    let mut sel = contract::Entity::find()
        .filter(contract::Column::TenantId.eq(ctx.tenant_id))
        .filter(contract::Column::DeletedAt.is_null());
    if !sees_all(ctx) {
        sel = sel.filter(contract::Column::OwnerId.eq(ctx.user_id));
    }
    if let Some(s) = q.status {
        let unsigned = [
            ContractStatus::Sent.as_str(),
            ContractStatus::PartiallySigned.as_str(),
        ];
        sel = match s {
            // Unsigned past the deadline; active past the term is filtered after the read.
            ContractStatus::Expired => sel.filter(
                Condition::any()
                    .add(contract::Column::Status.eq(s.as_str()))
                    .add(
                        Condition::all()
                            .add(contract::Column::Status.is_in(unsigned))
                            .add(contract::Column::SignatureDeadline.lt(t)),
                    )
                    .add(contract::Column::Status.eq(ContractStatus::Active.as_str())),
            ),
            ContractStatus::Sent | ContractStatus::PartiallySigned => {
                sel.filter(contract::Column::Status.eq(s.as_str())).filter(
                    Condition::any()
                        .add(contract::Column::SignatureDeadline.is_null())
                        .add(contract::Column::SignatureDeadline.gte(t)),
                )
            }
            _ => sel.filter(contract::Column::Status.eq(s.as_str())),
        };
    }
    if let Some(o) = q.owner_id {
        sel = sel.filter(contract::Column::OwnerId.eq(o));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(contract::Column::LeadId.eq(l));
    }
    if let Some(o) = q.opportunity_id {
        sel = sel.filter(contract::Column::OpportunityId.eq(o));
    }
    if let Some(p) = q.proposal_id {
        sel = sel.filter(contract::Column::ProposalId.eq(p));
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
        let from = proposals::service::end_of_day(f.pred_opt().unwrap_or(f));
        sel = sel.filter(contract::Column::CreatedAt.gte(from));
    }
    if let Some(to) = q.created_to {
        sel = sel.filter(contract::Column::CreatedAt.lt(proposals::service::end_of_day(to)));
    }
    let page = Keyset::desc([contract::Column::CreatedAt, contract::Column::Id])
        .paginate(&state.db, sel, q.cursor.as_deref(), limit, q.include_total)
        .await?;
    // Signers of the page's contracts in one query.
    let ids: Vec<Uuid> = page.items.iter().map(|m| m.id).collect();
    let mut by_contract: HashMap<Uuid, Vec<signer::Model>> = HashMap::new();
    if !ids.is_empty() {
        for s in signer::Entity::find()
            .filter(signer::Column::TenantId.eq(ctx.tenant_id))
            .filter(signer::Column::ContractId.is_in(ids))
            .order_by_asc(signer::Column::Position)
            .all(&state.db)
            .await?
        {
            by_contract.entry(s.contract_id).or_default().push(s);
        }
    }
    let want_expired = q.status == Some(ContractStatus::Expired);
    let mut page = page.map(|m| {
        let s = by_contract.remove(&m.id).unwrap_or_default();
        to_dto(m, &s)
    });
    if want_expired {
        page.items.retain(|c| c.status == ContractStatus::Expired);
    } else if q.status == Some(ContractStatus::Active) {
        page.items.retain(|c| c.status == ContractStatus::Active);
    }
    Ok(page)
}

// ---------- versions, fee ----------

fn version_dto(v: version::Model) -> ContractVersion {
    ContractVersion {
        revision: v.revision,
        sent_at: v.sent_at,
        content: v.content,
        document_sha256: v.document_sha256,
        pdf_size_bytes: v.pdf_size_bytes,
    }
}

pub async fn versions(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
) -> AppResult<Vec<ContractVersion>> {
    find_visible(&state.db, ctx, id).await?;
    Ok(version::Entity::find()
        .filter(version::Column::TenantId.eq(ctx.tenant_id))
        .filter(version::Column::ContractId.eq(id))
        .order_by_asc(version::Column::Revision)
        .all(&state.db)
        .await?
        .into_iter()
        .map(version_dto)
        .collect())
}

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

/// The frozen PDF of a sent revision: `(number, bytes)`.
pub async fn version_pdf(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    n: i32,
) -> AppResult<(String, Vec<u8>)> {
    let m = find_visible(&state.db, ctx, id).await?;
    let v = frozen(&state.db, ctx.tenant_id, id, n)
        .await?
        .ok_or_else(AppError::not_found)?;
    let (_, bytes) = crate::domains::files::read(state, ctx.tenant_id, v.pdf_file_id).await?;
    Ok((format!("{}-v{}", m.number, n), bytes))
}

/// The early-termination fee of a contract on `on` (default today).
pub fn fee_of(m: &contract::Model, on: NaiveDate) -> TerminationFee {
    let (elapsed, remaining, fee_cents) = match m.start_date {
        Some(start) => {
            let remaining = fee::months_remaining(start, m.term_months, on);
            (
                fee::months_elapsed(start, on).min(m.term_months),
                remaining,
                fee::termination_fee(m.mrr_cents, remaining, m.early_termination_percent),
            )
        }
        // Not started: the whole term is left.
        None => (
            0,
            m.term_months,
            fee::termination_fee(m.mrr_cents, m.term_months, m.early_termination_percent),
        ),
    };
    TerminationFee {
        effective_date: on,
        term_months: m.term_months,
        months_elapsed: elapsed,
        months_remaining: remaining,
        mrr_cents: m.mrr_cents,
        percent_of_remaining: m.early_termination_percent,
        fee_cents,
    }
}

pub async fn termination_fee(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    on: Option<NaiveDate>,
) -> AppResult<TerminationFee> {
    let m = find_visible(&state.db, ctx, id).await?;
    Ok(fee_of(&m, on.unwrap_or_else(|| today(Utc::now()))))
}
