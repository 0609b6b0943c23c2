//! A contract's document: the data its template sees, the rendered text and the PDF.

use chrono::Utc;
use jtcrm_types::dto::proposals::TemplateKind;
use sea_orm::ConnectionTrait;

use super::fee;
use super::model::contract;
use super::service::{equipment_of, items_of};
use crate::domains::proposals::documents::{customer_of, seller_of};
use crate::domains::proposals::render::{self, DocData};
use crate::domains::proposals::templates;
use crate::domains::{files, pipelines};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::state::AppState;

/// The clause text of the early-termination rule.
pub fn rule_text(percent: i32, term: i32) -> String {
    if percent == 0 {
        return format!(
            "O CONTRATANTE pode rescindir o contrato a qualquer tempo, sem multa, apesar do prazo de {term} meses."
        );
    }
    format!(
        "Em caso de rescisão antecipada por iniciativa do CONTRATANTE antes do fim do período de \
         fidelização de {term} meses, será devida multa de {percent}% sobre o valor das \
         mensalidades restantes até o fim desse período, contadas em meses completos a partir da \
         data de ativação."
    )
}

pub async fn doc_data<C: ConnectionTrait>(
    conn: &C,
    company: &str,
    m: &contract::Model,
) -> AppResult<DocData> {
    let now = Utc::now();
    let opp = pipelines::opportunities::find(conn, m.tenant_id, m.opportunity_id).await?;
    let customer = customer_of(conn, m.tenant_id, m.lead_id, &m.title, None).await?;
    let items = items_of(m);
    let equipment = equipment_of(m)
        .into_iter()
        .map(|e| render::Equipment {
            name: match &e.serial {
                Some(s) => format!("{} (nº de série {s})", e.name),
                None => e.name,
            },
            quantity: e.quantity,
        })
        .collect();
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
            created_at: m.created_at.to_rfc3339(),
            revision: m.revision,
            ..Default::default()
        },
        items,
        totals: render::Totals {
            mrr_cents: m.mrr_cents,
            setup_cents: m.setup_cents,
            tcv_cents: m.tcv_cents,
        },
        seller: seller_of(conn, m.tenant_id, m.owner_id).await?,
        contract: render::ContractData {
            number: m.number.clone(),
            start_date: m.start_date.map(render::date_br),
            end_date: m
                .start_date
                .map(|d| render::date_br(fee::end_date(d, m.term_months))),
            early_termination_percent: m.early_termination_percent,
            term_months: m.term_months,
            early_termination_rule: rule_text(m.early_termination_percent, m.term_months),
            sla: m.sla.clone(),
            equipment,
        },
        items_table: render::ITEMS_MARKER,
        today: render::today_br(now),
        ..Default::default()
    })
}

/// The contract rendered with its template (the tenant's default; the built-in one if that fails).
pub async fn render_content<C: ConnectionTrait>(
    conn: &C,
    company: &str,
    m: &contract::Model,
) -> AppResult<String> {
    let data = doc_data(conn, company, m).await?;
    let body =
        templates::body_for(conn, m.tenant_id, TemplateKind::Contract, m.template_id).await?;
    match render::render(&body, &data) {
        Ok(s) => Ok(s),
        Err(e) => {
            tracing::warn!(contract_id = %m.id, error = %e, "modelo do contrato falhou; usando o padrão");
            render::render(templates::builtin(TemplateKind::Contract), &data)
                .map_err(AppError::internal)
        }
    }
}

/// The PDF of `content` for this contract, with the tenant's logo.
pub async fn pdf_of(
    state: &AppState,
    company: &str,
    m: &contract::Model,
    content: String,
) -> AppResult<Vec<u8>> {
    crate::domains::proposals::pdf::render_async(
        company.to_string(),
        files::logo(state, m.tenant_id).await?,
        m.number.clone(),
        content,
        items_of(m),
        render::Totals {
            mrr_cents: m.mrr_cents,
            setup_cents: m.setup_cents,
            tcv_cents: m.tcv_cents,
        },
    )
    .await
}
