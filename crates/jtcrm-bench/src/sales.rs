//! Pipeline and agenda benchmark data (`jtcrm bench seed-sales`, see `bench/README.md`), added to a
//! tenant that `jtcrm bench seed` has already filled with leads:
//!
//! - a product catalog (8 telecom products) and, in the tenant's default pipeline, `--open`
//!   open opportunities spread over its open stages plus `--closed` won/lost ones, each with 1–3
//!   items priced from the catalog and totals computed by the same rules as the API
//!   (`jtcrm_types::money`), a stage history row, positions `k·GAP` per stage, owners among the
//!   sellers, leads from the tenant;
//! - `--tasks` tasks over two years, `--agenda-tasks` of them assigned to one seller (the agenda
//!   scenario's user), the rest spread over the other users; past ones mostly completed, a few
//!   left overdue, recent ones pending (so "today" and "overdue" hold what a real agenda holds);
//! - one lead with `--timeline` timeline entries of mixed kinds (the timeline scenario).
//!
//! Rows are written with multi-row INSERTs in transactions of 20,000 rows; the tenant's pipeline
//! and stages are the ones the app created with it.

use std::time::Instant;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Duration, Utc};
use jtcrm_types::br::fold_for_search;
use jtcrm_types::dto::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use jtcrm::domains::leads::model::lead;
use jtcrm::domains::pipelines::board::GAP;
use jtcrm::domains::pipelines::model::{history, item, opportunity, pipeline, stage};
use jtcrm::domains::products::model::product;
use jtcrm::domains::tasks::model::task;
use jtcrm::domains::tenants::model::tenant;
use jtcrm::domains::users::model::user;
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::timeline;
use jtcrm_types::money;

#[derive(Debug, Clone)]
pub struct SalesOptions {
    /// Slug of the tenant to fill (the big tenant of `bench seed` is `<prefix>-grande`).
    pub tenant_slug: String,
    pub open: u64,
    pub closed: u64,
    pub tasks: u64,
    pub agenda_tasks: u64,
    pub timeline: u64,
    pub seed: u64,
    /// Open opportunity ids kept for the card-move scenario.
    pub samples: usize,
}

#[derive(Debug, Serialize)]
pub struct StageReport {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct SalesReport {
    pub tenant_id: Uuid,
    pub pipeline_id: Uuid,
    pub stages: Vec<StageReport>,
    /// The seller with the most open opportunities, and the open stage where they have the most.
    pub filter_owner_id: Uuid,
    pub filter_stage_id: Uuid,
    pub filter_count: u64,
    pub move_sample_ids: Vec<Uuid>,
    pub agenda_user_id: Uuid,
    /// An access token of the agenda user (signed with this deployment's JWT secret).
    pub agenda_user_token: String,
    pub agenda_overdue: u64,
    pub agenda_today: u64,
    pub timeline_lead_id: Uuid,
    pub rows: std::collections::BTreeMap<String, u64>,
    pub seconds: f64,
}

const PRODUCTS: &[(&str, &str, &str, &str, i64, i64, &str)] = &[
    (
        "Link Dedicado 100 Mbps",
        "LD-100",
        "dedicated_internet",
        "monthly",
        120_000,
        150_000,
        "scm",
    ),
    (
        "Link Dedicado 500 Mbps",
        "LD-500",
        "dedicated_internet",
        "monthly",
        390_000,
        250_000,
        "scm",
    ),
    (
        "Banda Larga Empresarial 300 Mbps",
        "BL-300",
        "broadband",
        "monthly",
        24_990,
        0,
        "scm",
    ),
    (
        "PABX em Nuvem (ramal)",
        "PABX-RAMAL",
        "cloud_pabx",
        "monthly",
        3_990,
        0,
        "sva",
    ),
    (
        "Tronco SIP 30 canais",
        "SIP-30",
        "sip_trunk",
        "monthly",
        59_000,
        30_000,
        "scm",
    ),
    (
        "Linha Móvel Corporativa 20 GB",
        "MOV-20",
        "mobile",
        "monthly",
        6_990,
        0,
        "scm",
    ),
    (
        "Roteador Wi-Fi 6",
        "EQ-WIFI6",
        "equipment",
        "one_time",
        0,
        89_000,
        "other",
    ),
    (
        "Instalação e configuração",
        "SRV-INST",
        "service",
        "one_time",
        0,
        45_000,
        "other",
    ),
];

const TASK_TITLES: &[(&str, &str)] = &[
    ("call", "Ligar para apresentar a proposta"),
    ("call", "Retornar ligação do cliente"),
    ("email", "Enviar proposta comercial"),
    ("whatsapp", "Confirmar visita técnica pelo WhatsApp"),
    ("meeting", "Reunião de alinhamento com o diretor de TI"),
    ("visit", "Visita técnica para viabilidade"),
    ("follow_up", "Follow-up da proposta enviada"),
    ("other", "Atualizar cadastro do cliente"),
];

const TIMELINE_KINDS: &[(&str, &str)] = &[
    (timeline::kinds::NOTE, "Nota: cliente pediu nova proposta"),
    (
        timeline::kinds::TASK_CREATED,
        "Tarefa criada: Ligar para o cliente",
    ),
    (
        timeline::kinds::TASK_COMPLETED,
        "Tarefa concluída: Ligar para o cliente",
    ),
    (
        timeline::kinds::TASK_RESCHEDULED,
        "Tarefa reagendada: Visita técnica",
    ),
    (
        timeline::kinds::LEAD_STATUS_CHANGED,
        "Status alterado: contacted → qualified",
    ),
    ("call", "Ligação atendida (3 min 12 s)"),
    ("email_sent", "E-mail enviado: Proposta comercial"),
];

/// Rows per INSERT transaction.
const TX_ROWS: usize = 20_000;

async fn write<A>(state: &AppState, rows: Vec<A>) -> anyhow::Result<()>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let txn = state.begin().await?;
    if state.db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    jtcrm_kernel::db::insert_all(&*txn, rows).await?;
    txn.commit().await?;
    Ok(())
}

/// A UUID v7 of the instant `at` (random low bits).
fn v7_at(rng: &mut StdRng, at: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut b: [u8; 16] = rng.random();
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    Uuid::from_bytes(b)
}

pub async fn seed_sales(
    state: &AppState,
    opts: &SalesOptions,
    log: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<SalesReport> {
    let started = Instant::now();
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut rows = std::collections::BTreeMap::new();
    let t = tenant::Entity::find()
        .filter(tenant::Column::Slug.eq(opts.tenant_slug.as_str()))
        .one(&state.db)
        .await?
        .with_context(|| format!("empresa {} não encontrada", opts.tenant_slug))?;
    let tid = t.id;
    let users = user::Entity::find()
        .filter(user::Column::TenantId.eq(tid))
        .filter(user::Column::DeletedAt.is_null())
        .order_by_asc(user::Column::Email)
        .all(&state.db)
        .await?;
    let sellers: Vec<Uuid> = users
        .iter()
        .filter(|u| u.role == Role::Sales.as_str())
        .map(|u| u.id)
        .collect();
    if sellers.len() < 2 {
        return Err(anyhow!("a empresa precisa de ao menos 2 vendedores"));
    }
    let pipe = pipeline::Entity::find()
        .filter(pipeline::Column::TenantId.eq(tid))
        .filter(pipeline::Column::IsDefault.eq(true))
        .filter(pipeline::Column::DeletedAt.is_null())
        .one(&state.db)
        .await?
        .ok_or_else(|| anyhow!("a empresa não tem funil padrão"))?;
    let stages = stage::Entity::find()
        .filter(stage::Column::TenantId.eq(tid))
        .filter(stage::Column::PipelineId.eq(pipe.id))
        .order_by_asc(stage::Column::Position)
        .all(&state.db)
        .await?;
    let open: Vec<&stage::Model> = stages.iter().filter(|s| s.kind == "open").collect();
    let won = stages.iter().find(|s| s.kind == "won");
    let lost = stages.iter().find(|s| s.kind == "lost");
    if open.is_empty() {
        return Err(anyhow!("o funil padrão não tem etapas abertas"));
    }
    let lead_ids: Vec<Uuid> = lead::Entity::find()
        .select_only()
        .column(lead::Column::Id)
        .filter(lead::Column::TenantId.eq(tid))
        .filter(lead::Column::DeletedAt.is_null())
        .limit(300_000)
        .into_tuple()
        .all(&state.db)
        .await?;
    if lead_ids.is_empty() {
        return Err(anyhow!(
            "a empresa não tem leads: rode `jtcrm bench seed` antes"
        ));
    }

    // Catalog.
    let products: Vec<product::Model> = PRODUCTS
        .iter()
        .map(|p| product::Model {
            tenant_id: tid,
            id: Uuid::now_v7(),
            name: p.0.into(),
            name_sort: fold_for_search(p.0),
            sku: p.1.into(),
            sku_key: Some(p.1.into()),
            category: p.2.into(),
            billing: p.3.into(),
            monthly_price_cents: p.4,
            setup_price_cents: p.5,
            tax_class: p.6.into(),
            active: true,
            description: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        })
        .collect();
    write(
        state,
        products
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model)
            .collect(),
    )
    .await?;
    rows.insert("products".into(), products.len() as u64);

    // Opportunities.
    log(&format!(
        "oportunidades: {} abertas + {} fechadas em {} ({} etapas)…",
        opts.open,
        opts.closed,
        pipe.name,
        stages.len()
    ));
    let open_weights = [35u32, 30, 20, 15];
    let mut next_pos = vec![0i64; stages.len()];
    let mut counts = vec![0u64; stages.len()];
    let mut by_owner_stage = std::collections::HashMap::<(Uuid, Uuid), u64>::new();
    let mut move_ids = vec![];
    let total = opts.open + opts.closed;
    let (mut opps, mut items, mut hist) = (vec![], vec![], vec![]);
    let (mut n_items, mut n_hist) = (0u64, 0u64);
    for i in 0..total {
        let is_open = i < opts.open;
        let st: &stage::Model = if is_open {
            let w: u32 = rng.random_range(0..100);
            let mut acc = 0;
            let mut k = open.len() - 1;
            for (j, x) in open_weights.iter().enumerate().take(open.len()) {
                acc += x;
                if w < acc {
                    k = j;
                    break;
                }
            }
            open[k]
        } else if rng.random_bool(0.5) {
            won.or(open.last().copied()).unwrap_or(open[0])
        } else {
            lost.or(open.last().copied()).unwrap_or(open[0])
        };
        let si = stages.iter().position(|s| s.id == st.id).unwrap_or(0);
        let created = now - Duration::minutes(rng.random_range(0..60 * 24 * 365));
        let id = v7_at(&mut rng, created);
        let owner = sellers[rng.random_range(0..sellers.len())];
        let lead_id = lead_ids[rng.random_range(0..lead_ids.len())];
        let term = [12, 24, 36][rng.random_range(0..3)];
        let n_lines = rng.random_range(1..=3usize);
        let mut lines = vec![];
        for pos in 0..n_lines {
            let p = &products[rng.random_range(0..products.len())];
            let qty = if p.category == "cloud_pabx" || p.category == "mobile" {
                rng.random_range(5..60)
            } else {
                1
            };
            let discount_bp = [0, 0, 500, 1000][rng.random_range(0..4)];
            let m_total = money::line_total(qty, p.monthly_price_cents, discount_bp);
            let s_total = money::line_total(qty, p.setup_price_cents, discount_bp);
            lines.push((m_total, s_total));
            items.push(item::ActiveModel {
                tenant_id: Set(tid),
                id: Set(Uuid::now_v7()),
                opportunity_id: Set(id),
                position: Set(pos as i32),
                product_id: Set(p.id),
                product_name: Set(p.name.clone()),
                sku: Set(p.sku.clone()),
                billing: Set(p.billing.clone()),
                quantity: Set(qty),
                monthly_price_cents: Set(p.monthly_price_cents),
                setup_price_cents: Set(p.setup_price_cents),
                discount_bp: Set(discount_bp),
                monthly_total_cents: Set(i64::try_from(m_total).unwrap_or(0)),
                setup_total_cents: Set(i64::try_from(s_total).unwrap_or(0)),
            });
            n_items += 1;
        }
        let totals = money::deal_totals(&lines, term).ok_or_else(|| anyhow!("deal too large"))?;
        next_pos[si] += 1;
        counts[si] += 1;
        if is_open {
            *by_owner_stage.entry((owner, st.id)).or_default() += 1;
            if move_ids.len() < opts.samples && rng.random_bool(0.05) {
                move_ids.push(id);
            }
        }
        let status = match st.kind.as_str() {
            "won" => "won",
            "lost" => "lost",
            _ => "open",
        };
        let entered = created + Duration::minutes(rng.random_range(0..60 * 24 * 30));
        let entered = entered.min(now);
        let company = [
            "Conecta",
            "Vértice",
            "Órbita",
            "Aurora",
            "Horizonte",
            "Cerrado",
        ][rng.random_range(0..6)];
        let title = format!("{company} — {} ({term} meses)", products[0].name);
        opps.push(opportunity::ActiveModel {
            tenant_id: Set(tid),
            id: Set(id),
            pipeline_id: Set(pipe.id),
            stage_id: Set(st.id),
            lead_id: Set(Some(lead_id)),
            owner_id: Set(Some(owner)),
            title_sort: Set(fold_for_search(&title)),
            title: Set(title),
            status: Set(status.into()),
            lost_reason: Set((status == "lost").then(|| "Preço acima do concorrente".into())),
            expected_close_date: Set(Some(
                (now + Duration::days(rng.random_range(-30..120))).date_naive(),
            )),
            probability: Set(st.probability),
            probability_overridden: Set(false),
            term_months: Set(term),
            value_cents: Set(totals.tcv_cents),
            mrr_cents: Set(totals.mrr_cents),
            setup_cents: Set(totals.setup_cents),
            tcv_cents: Set(totals.tcv_cents),
            position: Set(next_pos[si] * GAP),
            notes: Set(None),
            stage_entered_at: Set(entered),
            closed_at: Set((status != "open").then_some(entered)),
            created_at: Set(created),
            updated_at: Set(entered),
            deleted_at: Set(None),
            version: Set(1),
        });
        hist.push(history::ActiveModel {
            tenant_id: Set(tid),
            id: Set(v7_at(&mut rng, entered)),
            opportunity_id: Set(id),
            pipeline_id: Set(pipe.id),
            event: Set("created".into()),
            from_stage_id: Set(None),
            from_stage_name: Set(None),
            to_stage_id: Set(st.id),
            to_stage_name: Set(st.name.clone()),
            from_status: Set(None),
            to_status: Set(status.into()),
            lost_reason: Set(None),
            seconds_in_from_stage: Set(None),
            actor_id: Set(Some(owner)),
            created_at: Set(entered),
        });
        n_hist += 1;
        if opps.len() >= TX_ROWS / 4 {
            write(state, std::mem::take(&mut opps)).await?;
            write(state, std::mem::take(&mut items)).await?;
            write(state, std::mem::take(&mut hist)).await?;
        }
    }
    write(state, opps).await?;
    write(state, items).await?;
    write(state, hist).await?;
    rows.insert("opportunities".into(), total);
    rows.insert("opportunity_items".into(), n_items);
    rows.insert("opportunity_stage_history".into(), n_hist);
    let ((filter_owner_id, filter_stage_id), filter_count) = by_owner_stage
        .into_iter()
        .max_by_key(|(k, n)| (*n, *k))
        .unwrap_or(((sellers[0], open[0].id), 0));

    // Tasks.
    let agenda_user = sellers[0];
    let others: Vec<Uuid> = users
        .iter()
        .map(|u| u.id)
        .filter(|u| *u != agenda_user)
        .collect();
    log(&format!(
        "tarefas: {} ({} do vendedor da agenda)…",
        opts.tasks, opts.agenda_tasks
    ));
    let tz = chrono_tz::America::Sao_Paulo;
    let today = now.with_timezone(&tz).date_naive();
    let (mut agenda_overdue, mut agenda_today) = (0u64, 0u64);
    let mut batch = vec![];
    let no_date = jtcrm::domains::tasks::no_date_sort();
    for i in 0..opts.tasks {
        // The agenda user's tasks are spread evenly through the sequence.
        let mine = opts.agenda_tasks > 0
            && (i * opts.agenda_tasks / opts.tasks.max(1))
                != ((i + 1) * opts.agenda_tasks / opts.tasks.max(1));
        let assignee = if mine {
            agenda_user
        } else {
            others[rng.random_range(0..others.len())]
        };
        let created = now - Duration::minutes(rng.random_range(0..60 * 24 * 730));
        let id = v7_at(&mut rng, created);
        let due = (!rng.random_bool(0.03))
            .then(|| created + Duration::minutes(rng.random_range(30..60 * 24 * 14)));
        let (kind, title) = TASK_TITLES[rng.random_range(0..TASK_TITLES.len())];
        let past = due.is_some_and(|d| d < now - Duration::days(2));
        let status = if past {
            let r: u32 = rng.random_range(0..100);
            if r < 90 {
                "completed"
            } else if r < 95 {
                "cancelled"
            } else {
                "pending"
            }
        } else {
            "pending"
        };
        if mine && status == "pending" {
            if due.is_some_and(|d| d < now) {
                agenda_overdue += 1;
            }
            if due.is_some_and(|d| d.with_timezone(&tz).date_naive() == today) {
                agenda_today += 1;
            }
        }
        let priority =
            ["low", "normal", "normal", "normal", "high", "urgent"][rng.random_range(0..6)];
        let rank = match priority {
            "urgent" => 0,
            "high" => 1,
            "normal" => 2,
            _ => 3,
        };
        let completed_at = (status == "completed").then(|| due.unwrap_or(created));
        batch.push(task::ActiveModel {
            tenant_id: Set(tid),
            id: Set(id),
            title: Set(title.into()),
            description: Set(None),
            task_type: Set(kind.into()),
            priority: Set(priority.into()),
            priority_rank: Set(rank),
            due_at: Set(due),
            due_sort: Set(due.unwrap_or(no_date)),
            remind_at: Set(None),
            assignee_id: Set(assignee),
            lead_id: Set(Some(lead_ids[rng.random_range(0..lead_ids.len())])),
            opportunity_id: Set(None),
            status: Set(status.into()),
            completed_at: Set(completed_at),
            completed_by: Set(completed_at.map(|_| assignee)),
            outcome: Set(completed_at.map(|_| "Contato realizado".into())),
            reschedule_count: Set(0),
            overdue_emitted_at: Set(past.then_some(now)),
            reminded_at: Set(None),
            created_by: Set(Some(assignee)),
            created_at: Set(created),
            updated_at: Set(completed_at.unwrap_or(created)),
            deleted_at: Set(None),
            version: Set(1),
        });
        if batch.len() >= TX_ROWS {
            write(state, std::mem::take(&mut batch)).await?;
        }
        if (i + 1) % 200_000 == 0 {
            log(&format!("  {} tarefas", i + 1));
        }
    }
    write(state, batch).await?;
    rows.insert("tasks".into(), opts.tasks);

    // One lead with a long history.
    let timeline_lead_id = lead_ids[lead_ids.len() / 2];
    log(&format!(
        "linha do tempo: {} entradas no lead {timeline_lead_id}…",
        opts.timeline
    ));
    let mut entries = vec![];
    for _ in 0..opts.timeline {
        let at = now - Duration::minutes(rng.random_range(0..60 * 24 * 730));
        let (kind, summary) = TIMELINE_KINDS[rng.random_range(0..TIMELINE_KINDS.len())];
        entries.push(timeline::model::ActiveModel {
            tenant_id: Set(tid),
            id: Set(v7_at(&mut rng, at)),
            lead_id: Set(Some(timeline_lead_id)),
            opportunity_id: Set(None),
            kind: Set(kind.into()),
            occurred_at: Set(at),
            actor_id: Set(Some(sellers[rng.random_range(0..sellers.len())])),
            summary: Set(summary.into()),
            data: Set(json!({"bench": true})),
            ref_type: Set(None),
            ref_id: Set(None),
        });
    }
    write(state, entries).await?;
    rows.insert("timeline_entries".into(), opts.timeline);

    log("ANALYZE…");
    match state.db.get_database_backend() {
        DbBackend::Postgres => {
            for tbl in [
                "pipeline_stage_totals",
                "opportunities",
                "opportunity_items",
                "opportunity_stage_history",
                "products",
                "tasks",
                "timeline_entries",
            ] {
                state
                    .db
                    .execute_unprepared(&format!("VACUUM (ANALYZE) {tbl}"))
                    .await?;
            }
        }
        _ => {
            state.db.execute_unprepared("ANALYZE").await?;
        }
    }
    let (token, _) = state
        .jwt
        .issue(agenda_user, Some(tid), Role::Sales.as_str(), Uuid::now_v7())
        .map_err(|e| anyhow!("token: {}", e.detail))?;
    Ok(SalesReport {
        tenant_id: tid,
        pipeline_id: pipe.id,
        stages: stages
            .iter()
            .zip(counts)
            .map(|(s, count)| StageReport {
                id: s.id,
                name: s.name.clone(),
                kind: s.kind.clone(),
                count,
            })
            .collect(),
        filter_owner_id,
        filter_stage_id,
        filter_count,
        move_sample_ids: move_ids,
        agenda_user_id: agenda_user,
        agenda_user_token: token,
        agenda_overdue,
        agenda_today,
        timeline_lead_id,
        rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub async fn run_seed_sales(
    mut settings: jtcrm_kernel::config::Settings,
    opts: SalesOptions,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    settings.superadmin_email = None;
    let state = jtcrm::app::build_owner_state(settings).await?;
    let log = |m: &str| eprintln!("{m}");
    let report = seed_sales(&state, &opts, &log).await?;
    std::fs::write(out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("escrevendo {}", out.display()))?;
    println!(
        "semeado em {:.1} s: {:?}; agenda: {} atrasadas, {} hoje",
        report.seconds, report.rows, report.agenda_overdue, report.agenda_today
    );
    state.db.clone().close().await.ok();
    Ok(())
}
