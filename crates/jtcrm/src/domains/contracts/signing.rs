//! Sending for signature (freeze the revision: content, PDF bytes in the file store, SHA-256),
//! signatures (through a provider's link, or recorded from outside with an evidence file), the
//! completion (`signed`, the deal won), activation and cancellation with the early-termination fee.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::contracts::{
    ActivateContractRequest, CancelContractRequest, Contract, ContractStatus, SendContractRequest,
    SentContract, SignatureMethod, SignatureProvider, SignerStatus,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

use super::document::{pdf_of, render_content};
use super::model::{contract, signer, version};
use super::provider::{self, Dispatch};
use super::service::{
    dto_of, effective_status, fee_of, find_visible, frozen, invalid_state, kinds, signers_of,
    to_dto, today,
};
use crate::domains::files::{self, NewFile};
use crate::domains::pipelines;
use crate::domains::pipelines::opportunities::Transition;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::events;
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, Managers, Sellers};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;
use jtcrm_kernel::tenancy::TenantSnapshot;
use jtcrm_kernel::timeline;

pub const DEFAULT_DEADLINE_DAYS: i32 = 30;

/// A rendered, not yet stored revision.
pub struct Rendered {
    pub content: String,
    pub pdf: Vec<u8>,
    pub sha256: String,
}

pub async fn render_revision(
    state: &AppState,
    company: &str,
    m: &contract::Model,
) -> AppResult<Rendered> {
    let content = render_content(&state.db, company, m).await?;
    let pdf = pdf_of(state, company, m, content.clone()).await?;
    let sha256 = jtcrm_kernel::security::sha256_hex_bytes(&pdf);
    Ok(Rendered {
        content,
        pdf,
        sha256,
    })
}

/// Stores the revision's frozen PDF and its `contract_versions` row (once per revision) and
/// writes content, hash and file on the contract. Returns the frozen hash.
async fn freeze(
    state: &AppState,
    txn: &DatabaseTransaction,
    am: &mut contract::ActiveModel,
    m: &contract::Model,
    r: Rendered,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<String> {
    if let Some(v) = frozen(txn, m.tenant_id, m.id, m.revision).await? {
        am.generated_content = Set(Some(v.content));
        am.document_sha256 = Set(Some(v.document_sha256.clone()));
        am.pdf_file_id = Set(Some(v.pdf_file_id));
        return Ok(v.document_sha256);
    }
    let name = format!("{}-v{}.pdf", m.number, m.revision);
    let info = files::save(
        state,
        txn,
        NewFile {
            tenant_id: m.tenant_id,
            kind: files::kinds::CONTRACT_PDF,
            name: &name,
            content_type: "application/pdf",
            bytes: &r.pdf,
            created_by: actor,
        },
    )
    .await?;
    let signers = signers_of(txn, m.tenant_id, m.id).await?;
    version::Entity::insert(version::ActiveModel {
        tenant_id: Set(m.tenant_id),
        contract_id: Set(m.id),
        revision: Set(m.revision),
        snapshot: Set(
            serde_json::to_value(to_dto(m.clone(), &signers)).map_err(AppError::internal)?
        ),
        content: Set(r.content.clone()),
        document_sha256: Set(r.sha256.clone()),
        pdf_file_id: Set(info.id),
        pdf_size_bytes: Set(info.size_bytes),
        sent_at: Set(now),
    })
    .exec_without_returning(txn)
    .await?;
    am.generated_content = Set(Some(r.content));
    am.document_sha256 = Set(Some(r.sha256.clone()));
    am.pdf_file_id = Set(Some(info.id));
    Ok(r.sha256)
}

/// Sends the contract for signature through a provider: freezes the current revision and starts
/// every pending signer's signature. Gated by the plan's `e_signature` feature.
pub async fn send(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    base_url: &str,
    input: SendContractRequest,
) -> AppResult<SentContract> {
    // Another tenant's contract is 404 before anything else.
    find_visible(&state.db, ctx, id).await?;
    if !ctx.tenant.features.e_signature {
        return Err(AppError::new(
            ErrorCode::FeatureNotInPlan,
            "O plano da empresa não inclui assinatura eletrônica.",
        )
        .with_context(json!({"feature": "e_signature"})));
    }
    let now = Utc::now();
    let mut v = Validator::new();
    let days = input.deadline_days.unwrap_or(DEFAULT_DEADLINE_DAYS);
    if !(1..=90).contains(&days) {
        v.add("deadline_days", "out_of_range", "Prazo entre 1 e 90 dias");
    }
    let message = v.optional_text("message", input.message.as_deref(), 5_000);
    v.finish()?;
    let kind = input.provider.unwrap_or(SignatureProvider::EmailLink);
    let p = provider::of(kind);

    let current = find_visible(&state.db, ctx, id).await?;
    let status = effective_status(&current, now);
    if !matches!(
        status,
        ContractStatus::Draft | ContractStatus::Sent | ContractStatus::PartiallySigned
    ) {
        return Err(invalid_state(status, "enviar o contrato"));
    }
    if current.items == serde_json::Value::Array(vec![]) {
        return Err(AppError::field(
            "items",
            "required",
            "O contrato não tem itens",
        ));
    }
    let pending: Vec<signer::Model> = signers_of(&state.db, ctx.tenant_id, id)
        .await?
        .into_iter()
        .filter(|s| s.status == SignerStatus::Pending.as_str())
        .collect();
    p.check(&pending)?;
    // Render outside the transaction (CPU work); the optimistic update below catches a change.
    let rendered = match frozen(&state.db, ctx.tenant_id, id, current.revision).await? {
        Some(_) => None,
        None => Some(render_revision(state, &ctx.tenant.name, &current).await?),
    };

    let txn = state.begin().await?;
    let m = find_visible(&*txn, ctx, id).await?;
    if m.version != current.version {
        return Err(AppError::stale_version());
    }
    let deadline = today(now) + Duration::days(i64::from(days));
    let expires_at = proposals_end_of_day(deadline);
    let mut am = m.clone().into_active_model();
    let sha = match rendered {
        Some(r) => freeze(state, &txn, &mut am, &m, r, Some(ctx.user_id), now).await?,
        None => {
            freeze(
                state,
                &txn,
                &mut am,
                &m,
                Rendered {
                    content: String::new(),
                    pdf: vec![],
                    sha256: String::new(),
                },
                Some(ctx.user_id),
                now,
            )
            .await?
        }
    };
    if status == ContractStatus::Draft {
        am.status = Set(ContractStatus::Sent.as_str().into());
    }
    am.provider = Set(kind.as_str().into());
    am.signature_deadline = Set(Some(deadline));
    am.sent_at = Set(Some(now));
    am.updated_at = Set(now);
    am.version = Set(m.version + 1);
    let updated = store::optimistic_update::<contract::Entity, _>(
        &*txn,
        am,
        contract::Column::Version,
        m.version,
    )
    .await?;
    let links = p
        .dispatch(Dispatch {
            state,
            txn: &txn,
            company: &ctx.tenant.name,
            contract: &updated,
            signers: &pending,
            base_url,
            message: message.as_deref(),
            actor_id: ctx.user_id,
            expires_at,
        })
        .await?;
    let data = json!({
        "contract_id": id, "number": updated.number, "revision": updated.revision,
        "provider": kind.as_str(), "document_sha256": sha,
        "signers": pending.iter().map(|s| json!({"id": s.id, "name": s.name, "email": s.email})).collect::<Vec<_>>(),
    });
    events::emit(
        &*txn,
        events::Event {
            tenant_id: ctx.tenant_id,
            event_type: "contract.sent",
            entity_type: "opportunity",
            entity_id: updated.opportunity_id,
            actor_id: Some(ctx.user_id),
            data: data.clone(),
        },
    )
    .await?;
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id: updated.lead_id,
            opportunity_id: Some(updated.opportunity_id),
            kind: kinds::SENT,
            actor_id: Some(ctx.user_id),
            summary: format!(
                "Contrato {} enviado para assinatura ({} signatário(s))",
                updated.number,
                pending.len()
            ),
            data: data.clone(),
            reference: Some(("contract", id)),
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "send", "contract", id, data),
    )
    .await?;
    let dto = dto_of(&*txn, updated).await?;
    txn.commit().await?;
    Ok(SentContract {
        contract: dto,
        links,
    })
}

fn proposals_end_of_day(d: NaiveDate) -> DateTime<Utc> {
    crate::domains::proposals::service::end_of_day(d)
}

/// Evidence of one signature.
pub struct Evidence {
    pub method: SignatureMethod,
    pub name: String,
    pub cpf: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
    pub evidence_file_id: Option<Uuid>,
    pub recorded_by: Option<Uuid>,
}

/// What a signature changed.
pub struct Signed {
    pub contract: contract::Model,
    /// The last signer signed: the contract is now `signed`.
    pub completed: bool,
}

/// Records a pending signer's signature of the frozen revision in `txn` (exactly once, also under
/// concurrent attempts), then moves the contract to `partially_signed` or `signed`, emitting
/// `contract.signed` on completion. The deal is won after the commit ([`win_opportunity`]).
pub async fn record_signature(
    txn: &DatabaseTransaction,
    m: &contract::Model,
    s: &signer::Model,
    e: Evidence,
    meta: &RequestMeta,
) -> AppResult<Signed> {
    let now = Utc::now();
    let sha = m.document_sha256.clone().unwrap_or_default();
    let res = signer::Entity::update_many()
        .col_expr(
            signer::Column::Status,
            Expr::value(SignerStatus::Signed.as_str()),
        )
        .col_expr(signer::Column::Method, Expr::value(e.method.as_str()))
        .col_expr(signer::Column::SignedAt, Expr::value(e.at))
        .col_expr(signer::Column::SignedName, Expr::value(e.name.clone()))
        .col_expr(signer::Column::SignedCpf, Expr::value(e.cpf.clone()))
        .col_expr(signer::Column::SignedIp, Expr::value(e.ip.clone()))
        .col_expr(
            signer::Column::SignedUserAgent,
            Expr::value(e.user_agent.clone()),
        )
        .col_expr(signer::Column::SignedSha256, Expr::value(sha.clone()))
        .col_expr(
            signer::Column::EvidenceFileId,
            Expr::value(e.evidence_file_id),
        )
        .col_expr(signer::Column::RecordedBy, Expr::value(e.recorded_by))
        .col_expr(signer::Column::LinkExpiresAt, Expr::value(Some(now)))
        .filter(signer::Column::TenantId.eq(m.tenant_id))
        .filter(signer::Column::Id.eq(s.id))
        .filter(signer::Column::Status.eq(SignerStatus::Pending.as_str()))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "Este signatário já assinou.",
        ));
    }
    let signers = signers_of(txn, m.tenant_id, m.id).await?;
    let completed = signers
        .iter()
        .all(|x| x.status == SignerStatus::Signed.as_str());
    let new_status = if completed {
        ContractStatus::Signed
    } else {
        ContractStatus::PartiallySigned
    };
    // The contract row moves only from an unsigned state of the same revision.
    let mut upd = contract::Entity::update_many()
        .col_expr(contract::Column::Status, Expr::value(new_status.as_str()))
        .col_expr(contract::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            contract::Column::Version,
            Expr::col(contract::Column::Version).add(1),
        );
    if completed {
        upd = upd.col_expr(contract::Column::SignedAt, Expr::value(Some(now)));
    }
    let res = upd
        .filter(contract::Column::TenantId.eq(m.tenant_id))
        .filter(contract::Column::Id.eq(m.id))
        .filter(contract::Column::Revision.eq(m.revision))
        .filter(contract::Column::Status.is_in([
            ContractStatus::Sent.as_str(),
            ContractStatus::PartiallySigned.as_str(),
        ]))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "O contrato foi alterado ou não aguarda assinaturas.",
        ));
    }
    let data = json!({
        "contract_id": m.id, "number": m.number, "revision": m.revision,
        "signer_id": s.id, "method": e.method.as_str(), "name": e.name, "cpf": e.cpf,
        "ip": e.ip, "user_agent": e.user_agent, "at": e.at, "document_sha256": sha,
        "evidence_file_id": e.evidence_file_id, "recorded_by": e.recorded_by,
        "completed": completed,
    });
    timeline::record(
        txn,
        timeline::NewEntry {
            tenant_id: m.tenant_id,
            lead_id: m.lead_id,
            opportunity_id: Some(m.opportunity_id),
            kind: kinds::SIGNATURE,
            actor_id: e.recorded_by,
            summary: format!("Contrato {} assinado por {}", m.number, e.name),
            data: data.clone(),
            reference: Some(("contract", m.id)),
        },
    )
    .await?;
    audit::record(
        txn,
        audit::Entry {
            tenant_id: Some(m.tenant_id),
            actor_id: e.recorded_by,
            action: if e.method == SignatureMethod::External {
                "record_signature"
            } else {
                "sign"
            },
            entity_type: "contract",
            entity_id: m.id.to_string(),
            changes: data.clone(),
            meta,
        },
    )
    .await?;
    if completed {
        events::emit(
            txn,
            events::Event {
                tenant_id: m.tenant_id,
                event_type: "contract.signed",
                entity_type: "opportunity",
                entity_id: m.opportunity_id,
                actor_id: e.recorded_by,
                data: json!({"contract_id": m.id, "number": m.number, "revision": m.revision,
                    "document_sha256": sha, "mrr_cents": m.mrr_cents, "tcv_cents": m.tcv_cents}),
            },
        )
        .await?;
        timeline::record(
            txn,
            timeline::NewEntry {
                tenant_id: m.tenant_id,
                lead_id: m.lead_id,
                opportunity_id: Some(m.opportunity_id),
                kind: kinds::SIGNED,
                actor_id: None,
                summary: format!("Contrato {} assinado por todos os signatários", m.number),
                data: json!({"contract_id": m.id, "number": m.number, "document_sha256": sha}),
                reference: Some(("contract", m.id)),
            },
        )
        .await?;
    }
    let contract = contract::Entity::find_by_id((m.tenant_id, m.id))
        .one(txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(Signed {
        contract,
        completed,
    })
}

/// The deal of a fully signed contract is won, acting as the contract's owner with an admin's
/// rights (as automations do), when the tenant's `contract_signed_wins_opportunity` is on. A deal
/// already won, or a failure, is logged and never undoes the signature.
pub async fn win_opportunity(state: &AppState, tenant: &TenantSnapshot, m: &contract::Model) {
    if !tenant.settings.contract_signed_wins_opportunity {
        return;
    }
    let ctx = TenantCtx {
        tenant: tenant.clone(),
        tenant_id: tenant.id,
        user_id: m.owner_id.unwrap_or(Uuid::nil()),
        role: Role::Admin,
        meta: RequestMeta {
            request_id: jtcrm_kernel::error::current_request_id(),
            ip: None,
        },
    };
    let Ok(granted) = ctx.grant::<Sellers>() else {
        return;
    };
    match pipelines::opportunities::find(&state.db, tenant.id, m.opportunity_id).await {
        Ok(Some(o)) if o.status == jtcrm_types::dto::pipelines::OpportunityStatus::Won => return,
        _ => {}
    }
    if let Err(e) =
        pipelines::opportunities::transition(state, &granted, m.opportunity_id, Transition::Won)
            .await
    {
        tracing::warn!(contract_id = %m.id, error = %e, "não foi possível marcar a oportunidade como ganha após a assinatura");
    }
}

/// `POST /api/contracts/{id}/sign`: a signature made outside the system (in person, on paper),
/// recorded by an admin or manager with an evidence file. A draft is frozen first, so the
/// signature is bound to a document hash.
pub struct ExternalSignature {
    pub signer_id: Option<Uuid>,
    pub name: Option<String>,
    pub cpf: Option<String>,
    pub signed_at: Option<DateTime<Utc>>,
    pub evidence_name: String,
    pub evidence: Vec<u8>,
}

pub async fn sign_external(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    input: ExternalSignature,
) -> AppResult<Contract> {
    let now = Utc::now();
    let current = find_visible(&state.db, ctx, id).await?;
    let status = effective_status(&current, now);
    if !matches!(
        status,
        ContractStatus::Draft | ContractStatus::Sent | ContractStatus::PartiallySigned
    ) {
        return Err(invalid_state(status, "registrar assinatura"));
    }
    let signers = signers_of(&state.db, ctx.tenant_id, id).await?;
    let s = match input.signer_id {
        Some(sid) => signers
            .iter()
            .find(|s| s.id == sid)
            .cloned()
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::NotFound,
                    "Signatário não encontrado neste contrato.",
                )
                .with_context(json!({"field": "signer_id"}))
            })?,
        None => signers
            .iter()
            .find(|s| s.status == SignerStatus::Pending.as_str())
            .cloned()
            .ok_or_else(|| {
                AppError::field("signer_id", "required", "Não há signatário pendente")
            })?,
    };
    if s.status != SignerStatus::Pending.as_str() {
        return Err(AppError::new(
            ErrorCode::InvalidStateTransition,
            "Este signatário já assinou.",
        ));
    }
    let mut v = Validator::new();
    let name = match input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) => v.required_text("name", Some(n), 200),
        None => Some(s.name.clone()),
    };
    let cpf = match input
        .cpf
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(c) => match jtcrm_types::br::Cpf::parse(c) {
            Ok(c) => Some(c.masked()),
            Err(e) => {
                v.add("cpf", e.code(), e.message_pt());
                None
            }
        },
        None => s.cpf.clone(),
    };
    let at = input.signed_at.unwrap_or(now);
    if at > now + Duration::minutes(5) {
        v.add(
            "signed_at",
            "in_the_future",
            "A data da assinatura não pode estar no futuro",
        );
    }
    let ct = match files::sniff(&input.evidence) {
        Some(ct) => Some(ct),
        None => {
            v.add(
                "evidence",
                "invalid_file",
                "Envie a evidência como PDF, PNG ou JPEG",
            );
            None
        }
    };
    v.finish()?;
    let (Some(name), Some(ct)) = (name, ct) else {
        return Err(AppError::bad_request("Dados inválidos."));
    };
    let rendered = match frozen(&state.db, ctx.tenant_id, id, current.revision).await? {
        Some(_) => None,
        None => Some(render_revision(state, &ctx.tenant.name, &current).await?),
    };

    let txn = state.begin().await?;
    let m = find_visible(&*txn, ctx, id).await?;
    if m.version != current.version {
        return Err(AppError::stale_version());
    }
    let m = if let Some(r) = rendered {
        let mut am = m.clone().into_active_model();
        freeze(state, &txn, &mut am, &m, r, Some(ctx.user_id), now).await?;
        am.status = Set(ContractStatus::Sent.as_str().into());
        am.sent_at = Set(Some(now));
        am.updated_at = Set(now);
        am.version = Set(m.version + 1);
        store::optimistic_update::<contract::Entity, _>(
            &*txn,
            am,
            contract::Column::Version,
            m.version,
        )
        .await?
    } else {
        m
    };
    let file = files::save(
        state,
        &*txn,
        NewFile {
            tenant_id: ctx.tenant_id,
            kind: files::kinds::SIGNATURE_EVIDENCE,
            name: &input.evidence_name,
            content_type: ct,
            bytes: &input.evidence,
            created_by: Some(ctx.user_id),
        },
    )
    .await?;
    let signed = record_signature(
        &txn,
        &m,
        &s,
        Evidence {
            method: SignatureMethod::External,
            name,
            cpf,
            ip: ctx.meta.ip.clone(),
            user_agent: None,
            at,
            evidence_file_id: Some(file.id),
            recorded_by: Some(ctx.user_id),
        },
        &ctx.meta,
    )
    .await?;
    let dto = dto_of(&*txn, signed.contract.clone()).await?;
    txn.commit().await?;
    if signed.completed {
        win_opportunity(state, &ctx.tenant, &signed.contract).await;
    }
    Ok(dto)
}

/// The evidence file of an external signature.
pub async fn evidence(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    signer_id: Uuid,
) -> AppResult<axum::response::Response> {
    find_visible(&state.db, ctx, id).await?;
    let s = signer::Entity::find_by_id((ctx.tenant_id, signer_id))
        .one(&state.db)
        .await?
        .filter(|s| s.contract_id == id)
        .ok_or_else(AppError::not_found)?;
    let fid = s.evidence_file_id.ok_or_else(AppError::not_found)?;
    let (info, bytes) = files::read(state, ctx.tenant_id, fid).await?;
    Ok(files::download(&info, bytes, false))
}

/// A signed contract becomes `active` (services started) on a start date.
pub async fn activate(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    input: ActivateContractRequest,
) -> AppResult<Contract> {
    let now = Utc::now();
    let txn = state.begin().await?;
    let m = find_visible(&*txn, ctx, id).await?;
    let status = effective_status(&m, now);
    if status != ContractStatus::Signed {
        return Err(invalid_state(status, "ativar o contrato"));
    }
    let start = input
        .start_date
        .or(m.start_date)
        .unwrap_or_else(|| today(now));
    let ver = m.version;
    let (number, lead_id, opp_id) = (m.number.clone(), m.lead_id, m.opportunity_id);
    let mut am = m.into_active_model();
    am.status = Set(ContractStatus::Active.as_str().into());
    am.start_date = Set(Some(start));
    am.activated_at = Set(Some(now));
    am.updated_at = Set(now);
    am.version = Set(ver + 1);
    let m =
        store::optimistic_update::<contract::Entity, _>(&*txn, am, contract::Column::Version, ver)
            .await?;
    let data = json!({"contract_id": id, "number": number, "start_date": start});
    events::emit(
        &*txn,
        events::Event {
            tenant_id: ctx.tenant_id,
            event_type: "contract.activated",
            entity_type: "opportunity",
            entity_id: opp_id,
            actor_id: Some(ctx.user_id),
            data: data.clone(),
        },
    )
    .await?;
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id,
            opportunity_id: Some(opp_id),
            kind: kinds::ACTIVATED,
            actor_id: Some(ctx.user_id),
            summary: format!(
                "Contrato {number} ativado a partir de {}",
                crate::domains::proposals::render::date_br(start)
            ),
            data: data.clone(),
            reference: Some(("contract", id)),
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "activate", "contract", id, data),
    )
    .await?;
    let dto = dto_of(&*txn, m).await?;
    txn.commit().await?;
    Ok(dto)
}

/// Cancels a contract. A signed or active one owes the early-termination fee of its rule for the
/// months left on the effective date; an unsigned one is simply withdrawn (fee 0). Signer links
/// stop working.
pub async fn cancel(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    input: CancelContractRequest,
) -> AppResult<Contract> {
    let now = Utc::now();
    let mut v = Validator::new();
    let reason = v.required_text("reason", input.reason.as_deref(), 2_000);
    v.finish()?;
    let txn = state.begin().await?;
    let m = find_visible(&*txn, ctx, id).await?;
    let status = effective_status(&m, now);
    if status == ContractStatus::Cancelled {
        return Err(invalid_state(status, "cancelar o contrato"));
    }
    let on = input.effective_date.unwrap_or_else(|| today(now));
    if let Some(start) = m.start_date
        && on < start
        && matches!(status, ContractStatus::Active)
    {
        return Err(AppError::field(
            "effective_date",
            "before_start",
            "A data do cancelamento não pode ser anterior ao início do contrato",
        ));
    }
    let owes = matches!(status, ContractStatus::Signed | ContractStatus::Active)
        || (status == ContractStatus::Expired && m.status == ContractStatus::Active.as_str());
    let fee = owes.then(|| fee_of(&m, on));
    let ver = m.version;
    let (number, lead_id, opp_id) = (m.number.clone(), m.lead_id, m.opportunity_id);
    let mut am = m.into_active_model();
    am.status = Set(ContractStatus::Cancelled.as_str().into());
    am.cancelled_at = Set(Some(now));
    am.cancel_reason = Set(reason.clone());
    am.termination_fee_cents = Set(Some(fee.as_ref().map(|f| f.fee_cents).unwrap_or(0)));
    am.updated_at = Set(now);
    am.version = Set(ver + 1);
    let m =
        store::optimistic_update::<contract::Entity, _>(&*txn, am, contract::Column::Version, ver)
            .await?;
    signer::Entity::update_many()
        .col_expr(signer::Column::LinkExpiresAt, Expr::value(Some(now)))
        .filter(signer::Column::TenantId.eq(ctx.tenant_id))
        .filter(signer::Column::ContractId.eq(id))
        .filter(signer::Column::Status.eq(SignerStatus::Pending.as_str()))
        .exec(&*txn)
        .await?;
    let data = json!({
        "contract_id": id, "number": number, "reason": reason, "previous_status": status.as_str(),
        "effective_date": on, "termination_fee": fee, "mrr_cents": m.mrr_cents,
    });
    events::emit(
        &*txn,
        events::Event {
            tenant_id: ctx.tenant_id,
            event_type: "contract.cancelled",
            entity_type: "opportunity",
            entity_id: opp_id,
            actor_id: Some(ctx.user_id),
            data: data.clone(),
        },
    )
    .await?;
    let fee_text = match &fee {
        Some(f) => format!(
            "; multa de {} ({} meses restantes)",
            crate::domains::proposals::render::money(f.fee_cents),
            f.months_remaining
        ),
        None => String::new(),
    };
    timeline::record(
        &*txn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id,
            opportunity_id: Some(opp_id),
            kind: kinds::CANCELLED,
            actor_id: Some(ctx.user_id),
            summary: format!("Contrato {number} cancelado{fee_text}"),
            data: data.clone(),
            reference: Some(("contract", id)),
        },
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "cancel", "contract", id, data),
    )
    .await?;
    let dto = dto_of(&*txn, m).await?;
    txn.commit().await?;
    Ok(dto)
}

/// The PDF of the current revision: the frozen bytes once sent; the draft rendered now otherwise.
pub async fn pdf(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<(String, Vec<u8>)> {
    let m = find_visible(&state.db, ctx, id).await?;
    if let Some(fid) = m.pdf_file_id {
        let (_, bytes) = files::read(state, ctx.tenant_id, fid).await?;
        return Ok((m.number, bytes));
    }
    let r = render_revision(state, &ctx.tenant.name, &m).await?;
    Ok((m.number, r.pdf))
}
