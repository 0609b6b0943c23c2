//! The documents of a proposal: the data its template sees, the rendered text, the PDF.

use chrono::Utc;
use jtcrm_types::dto::proposals::{ProposalItem, ProposalStatus, TemplateKind};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::model::proposal;
use super::render::{self, DocData};
use super::service::{find_visible, frozen, items_of};
use super::templates;
use crate::domains::{leads, pipelines, users};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::state::AppState;

/// The customer block of a document: the lead's data, else a name and e-mail.
pub async fn customer_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Option<Uuid>,
    fallback_name: &str,
    fallback_email: Option<String>,
) -> AppResult<render::Customer> {
    let lead = match lead_id {
        Some(l) => leads::find_live(conn, tenant_id, l).await?,
        None => None,
    };
    Ok(match lead {
        Some(l) => {
            let mut parts = vec![];
            if let Some(c) = &l.city {
                parts.push(match &l.state {
                    Some(s) => format!("{c}/{s}"),
                    None => c.clone(),
                });
            }
            if let Some(cep) = &l.cep {
                parts.push(format!("CEP {cep}"));
            }
            render::Customer {
                name: l.name,
                company: l.company,
                cnpj: l.cnpj,
                email: l.email,
                phone: l.phone,
                address: (!parts.is_empty()).then(|| parts.join(", ")),
                city: l.city,
                state: l.state,
                cep: l.cep,
            }
        }
        None => render::Customer {
            name: fallback_name.to_string(),
            email: fallback_email,
            ..Default::default()
        },
    })
}

/// The seller block of a document.
pub async fn seller_of<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    owner_id: Option<Uuid>,
) -> AppResult<render::Seller> {
    let seller = match owner_id {
        Some(u) => users::service::find(conn, tenant_id, u).await?,
        None => None,
    };
    Ok(seller
        .map(|u| render::Seller {
            name: u.name,
            email: Some(u.email),
            phone: u.phone,
        })
        .unwrap_or_default())
}

/// Equipment lent with the service: the lines without price (a router, an ONT, a phone).
pub fn equipment_of(items: &[ProposalItem]) -> Vec<render::Equipment> {
    items
        .iter()
        .filter(|i| i.monthly_total_cents == 0 && i.setup_total_cents == 0)
        .map(|i| render::Equipment {
            name: i.name.clone(),
            quantity: i.quantity,
        })
        .collect()
}

/// The data the template renders, from the proposal and what it links to.
pub async fn doc_data<C: ConnectionTrait>(
    conn: &C,
    company: &str,
    m: &proposal::Model,
) -> AppResult<DocData> {
    let now = Utc::now();
    let opp = pipelines::opportunities::find(conn, m.tenant_id, m.opportunity_id).await?;
    let customer = customer_of(
        conn,
        m.tenant_id,
        m.lead_id,
        &m.title,
        m.recipient_email.clone(),
    )
    .await?;
    let items = items_of(m);
    let equipment = equipment_of(&items);
    Ok(DocData {
        company: render::Company {
            name: company.to_string(),
        },
        lead: customer.clone(),
        customer,
        opportunity: render::OpportunityData {
            id: m.opportunity_id.to_string(),
            title: opp.map(|o| o.title).unwrap_or_else(|| m.title.clone()),
            term_months: m.term_months,
        },
        proposal: render::ProposalData {
            number: m.number.clone(),
            title: m.title.clone(),
            valid_until: m.valid_until.to_string(),
            created_at: m.created_at.to_rfc3339(),
            revision: m.revision,
            notes: m.notes.clone(),
        },
        items,
        totals: render::Totals {
            mrr_cents: m.mrr_cents,
            setup_cents: m.setup_cents,
            tcv_cents: m.tcv_cents,
        },
        validity: render::date_br(m.valid_until),
        valid_until: m.valid_until.to_string(),
        seller: seller_of(conn, m.tenant_id, m.owner_id).await?,
        contract: render::ContractData {
            term_months: m.term_months,
            early_termination_rule: render::DEFAULT_EARLY_TERMINATION_RULE.into(),
            sla: render::DEFAULT_SLA.into(),
            equipment,
            early_termination_percent: 30,
            ..Default::default()
        },
        items_table: render::ITEMS_MARKER,
        today: render::today_br(now),
    })
}

/// The proposal rendered with its template (the tenant's default, the built-in one if that fails).
pub async fn render_current<C: ConnectionTrait>(
    conn: &C,
    company: &str,
    m: &proposal::Model,
) -> AppResult<String> {
    let data = doc_data(conn, company, m).await?;
    let body =
        templates::body_for(conn, m.tenant_id, TemplateKind::Proposal, m.template_id).await?;
    match render::render(&body, &data) {
        Ok(s) => Ok(s),
        Err(e) => {
            tracing::warn!(proposal_id = %m.id, error = %e, "modelo da proposta falhou; usando o padrão");
            render::render(templates::builtin(TemplateKind::Proposal), &data)
                .map_err(AppError::internal)
        }
    }
}

/// The PDF of the current revision (the frozen content once sent).
pub async fn pdf(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<(String, Vec<u8>)> {
    let m = find_visible(&state.db, ctx, id).await?;
    let content = match frozen(&state.db, ctx.tenant_id, id, m.revision).await? {
        Some(v) if m.status != ProposalStatus::Draft.as_str() => v.content,
        _ => render_current(&state.db, &ctx.tenant.name, &m).await?,
    };
    let bytes = super::pdf::render_async(
        ctx.tenant.name.clone(),
        crate::domains::files::logo(state, ctx.tenant_id).await?,
        m.number.clone(),
        content,
        items_of(&m),
        render::Totals {
            mrr_cents: m.mrr_cents,
            setup_cents: m.setup_cents,
            tcv_cents: m.tcv_cents,
        },
    )
    .await?;
    Ok((m.number, bytes))
}
