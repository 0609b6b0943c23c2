//! `jtcrm bench telephony` (see `bench/README.md`): call-log ingestion and the telephony read
//! paths on a tenant that `jtcrm bench seed` filled with leads.
//!
//! 1. **Ingestion.** `--calls` call records (CDRs, as `SuiteClient::list_calls` returns them after
//!    parsing) are fed to the history poll's ingestion (`telephony::ingest::ingest`) in pages of
//!    500, one transaction per page, exactly as `telephony.history_poll` does after each PABX page:
//!    dedupe by the PABX's call id, extension → user, caller matching against the tenant's lead
//!    phones, the completion's events (`call.ended`, `call.answered`/`call.missed`), timeline
//!    entries, `last_contacted_at` and score signals for matched leads. `--match-ratio` of the
//!    calls are with a lead's phone. Records carry no recording link and the tenant's callback
//!    task is off, so no follow-up jobs are queued (those are jobs, measured elsewhere). The
//!    HTTP round trips to the PABX are not part of this figure (see `--through-mock`).
//! 2. **Reads.** The server is started in-process (no worker) and hit by `--concurrency` tasks
//!    for `--seconds` each: the calls list filtered by a seller and a 7-day period, and the caller
//!    lookup of rotating numbers (lead phones and unknown numbers). Reports req/s, p50, p99.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Duration, Utc};
use jtcrm::domains::integrations::pabx::PabxSettings;
use jtcrm::domains::leads::model::lead;
use jtcrm::domains::telephony::ingest::{self, Observed};
use jtcrm::domains::telephony::model::extension;
use jtcrm::domains::tenants::model::tenant;
use jtcrm::domains::users::model::user;
use jtcrm_integrations::pabx::{CallRecord, Direction, Outcome, PartyNumber};
use jtcrm_types::dto::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use serde_json::Map;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct TelephonyOptions {
    pub tenant_slug: String,
    pub calls: u64,
    pub match_ratio: f64,
    pub days: i64,
    pub seed: u64,
    pub concurrency: usize,
    pub seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub scenario: String,
    pub concurrency: usize,
    pub requests: u64,
    pub non_2xx: u64,
    pub req_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct TelephonyReport {
    pub tenant_id: Uuid,
    pub leads: u64,
    pub calls: u64,
    pub ingest_seconds: f64,
    pub records_per_sec: f64,
    pub inserted: u64,
    pub completed: u64,
    pub matched_share: f64,
    pub seller_id: Uuid,
    pub seller_calls_in_period: u64,
    pub loads: Vec<LoadResult>,
}

const PAGE: usize = 500;

fn mobile(rng: &mut StdRng) -> String {
    const DDDS: [u8; 8] = [11, 21, 31, 41, 51, 61, 71, 81];
    let ddd = DDDS[rng.random_range(0..DDDS.len())];
    format!("+55{ddd}9{:08}", rng.random_range(0..100_000_000u32))
}

fn party(raw: String) -> PartyNumber {
    PartyNumber {
        e164: jtcrm_integrations::pabx::normalise_number(&raw, Some(11)),
        raw,
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    rng: &mut StdRng,
    run: &str,
    i: u64,
    now: DateTime<Utc>,
    days: i64,
    exts: &[String],
    phones: &[String],
    match_ratio: f64,
) -> CallRecord {
    let started_at = now - Duration::seconds(rng.random_range(0..days.max(1) * 86_400));
    let ext = exts[rng.random_range(0..exts.len())].clone();
    let number = if !phones.is_empty() && rng.random_bool(match_ratio.clamp(0.0, 1.0)) {
        phones[rng.random_range(0..phones.len())].clone()
    } else {
        mobile(rng)
    };
    let direction = if rng.random_bool(0.6) {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    let outcome = match rng.random_range(0..100) {
        0..60 => Outcome::Answered,
        60..80 => Outcome::NoAnswer,
        80..90 => Outcome::Busy,
        90..95 => Outcome::Failed,
        _ => Outcome::Canceled,
    };
    let talk_s = if outcome == Outcome::Answered {
        rng.random_range(5..900)
    } else {
        0
    };
    let ring_s = rng.random_range(0..30);
    let national = number.trim_start_matches("+55").to_string();
    let (from, to) = match direction {
        Direction::Outbound => (ext.clone(), format!("0{national}")),
        _ => (national, ext.clone()),
    };
    CallRecord {
        provider_call_id: format!("{run}-{i}"),
        started_at: Some(started_at),
        direction,
        from: party(from),
        to: party(to),
        extension: Some(ext),
        operator: None,
        contact_name: None,
        outcome,
        sip_code: Some(outcome.sip_code()),
        duration_s: ring_s + talk_s,
        talk_s,
        wait_s: 0,
        recording_urls: vec![],
        transcription: None,
        summary: None,
        hangup_reason: None,
    }
}

/// Ingestion then reads; see the module documentation.
pub async fn run(
    mut settings: jtcrm_kernel::config::Settings,
    opts: TelephonyOptions,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    settings.superadmin_email = None;
    settings.run_worker = false;
    let state = jtcrm::app::build_owner_state(settings.clone()).await?;
    let t = tenant::Entity::find()
        .filter(tenant::Column::Slug.eq(opts.tenant_slug.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "tenant {} não encontrado (rode bench seed)",
                opts.tenant_slug
            )
        })?;
    let tid = t.id;
    let sellers: Vec<Uuid> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::TenantId.eq(tid))
        .filter(user::Column::Role.eq(Role::Sales.as_str()))
        .into_tuple()
        .all(&state.db)
        .await?;
    if sellers.is_empty() {
        return Err(anyhow!("o tenant não tem vendedores"));
    }
    // One extension per seller (7001…), as the CRM maps them.
    let now = Utc::now();
    let mut exts = Vec::new();
    for (i, s) in sellers.iter().enumerate() {
        let number = format!("{}", 7001 + i);
        let row = extension::ActiveModel {
            tenant_id: Set(tid),
            id: Set(Uuid::now_v7()),
            provider_id: Set(Some(number.clone())),
            number: Set(number.clone()),
            name: Set(format!("Bench {number}")),
            user_id: Set(Some(*s)),
            group_name: Set(None),
            area_code: Set(Some(11)),
            record_calls: Set(false),
            blocked: Set(false),
            origin: Set("crm".into()),
            synced_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
        };
        extension::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(&state.db)
            .await?;
        exts.push(number);
    }
    let ext_user: HashMap<String, Uuid> =
        exts.iter().cloned().zip(sellers.iter().copied()).collect();
    let phones: Vec<String> = lead::Entity::find()
        .select_only()
        .column(lead::Column::Phone)
        .filter(lead::Column::TenantId.eq(tid))
        .filter(lead::Column::Phone.is_not_null())
        .limit(50_000)
        .into_tuple::<Option<String>>()
        .all(&state.db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let leads = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tid))
        .select_only()
        .column(lead::Column::Id)
        .into_tuple::<Uuid>()
        .all(&state.db)
        .await?
        .len() as u64;
    let mut cfg = Map::new();
    cfg.insert("callback_task".into(), false.into());
    let pabx = PabxSettings::from_config(&cfg);
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let run_id = Uuid::now_v7().simple().to_string()[24..].to_string();
    eprintln!(
        "ingerindo {} chamadas em páginas de {PAGE} (tenant {tid}, {leads} leads, {} telefones de leads)",
        opts.calls,
        phones.len()
    );
    let started = Instant::now();
    let (mut inserted, mut completed) = (0u64, 0u64);
    let mut seller_calls: HashMap<Uuid, u64> = HashMap::new();
    let period_end = now;
    let period_start = now - Duration::days(7);
    let mut i = 0u64;
    while i < opts.calls {
        let n = (opts.calls - i).min(PAGE as u64);
        let batch: Vec<Observed> = (i..i + n)
            .map(|k| {
                let r = record(
                    &mut rng,
                    &run_id,
                    k,
                    now,
                    opts.days,
                    &exts,
                    &phones,
                    opts.match_ratio,
                );
                if let (Some(at), Some(e)) = (r.started_at, r.extension.as_ref())
                    && at >= period_start
                    && let Some(u) = ext_user.get(e)
                {
                    *seller_calls.entry(*u).or_default() += 1;
                }
                Observed::from(r)
            })
            .collect();
        let (s, _) = jtcrm_kernel::db::tenant(tid, ingest::ingest(&state, tid, &pabx, batch))
            .await
            .map_err(|e| anyhow!("ingestão: {} {:?}", e.detail, e.source))?;
        inserted += s.inserted;
        completed += s.completed;
        i += n;
        if i % 50_000 < PAGE as u64 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!("  {i} registros, {:.0}/s", i as f64 / secs.max(1e-9));
        }
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    if jtcrm_kernel::db::is_postgres(&state.db) {
        use sea_orm::ConnectionTrait;
        for tbl in ["calls", "domain_events", "timeline_entries", "leads"] {
            state
                .db
                .execute_unprepared(&format!("VACUUM (ANALYZE) {tbl}"))
                .await?;
        }
    }
    let matched = jtcrm::domains::telephony::model::call::Entity::find()
        .filter(jtcrm::domains::telephony::model::call::Column::TenantId.eq(tid))
        .filter(jtcrm::domains::telephony::model::call::Column::LeadId.is_not_null())
        .select_only()
        .column(jtcrm::domains::telephony::model::call::Column::Id)
        .into_tuple::<Uuid>()
        .all(&state.db)
        .await?
        .len() as f64;
    let (seller_id, seller_period) = seller_calls
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(u, n)| (*u, *n))
        .unwrap_or((sellers[0], 0));
    eprintln!(
        "ingestão: {} registros em {ingest_seconds:.1} s = {:.0} registros/s",
        opts.calls,
        opts.calls as f64 / ingest_seconds.max(1e-9)
    );
    // Reads: the server in-process on a free port, no worker.
    let mut s2 = settings;
    s2.bind = "127.0.0.1:0".parse()?;
    let admin: Uuid = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::TenantId.eq(tid))
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .into_tuple()
        .one(&state.db)
        .await?
        .ok_or_else(|| anyhow!("sem admin"))?;
    let app = jtcrm::app::Application::build(s2).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (token, _) = app
        .state()
        .jwt
        .issue(admin, Some(tid), Role::Admin.as_str(), Uuid::now_v7())
        .map_err(|e| anyhow!("token: {}", e.detail))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    let fmt = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let list_path = format!(
        "/api/telephony/calls?user_id={seller_id}&started_from={}&started_to={}",
        fmt(period_start).replace('+', "%2B"),
        fmt(period_end).replace('+', "%2B"),
    );
    let mut lookups: Vec<String> = phones.iter().take(1000).cloned().collect();
    for _ in 0..1000 {
        lookups.push(mobile(&mut rng));
    }
    let lookup_paths: Vec<String> = lookups
        .iter()
        .map(|p| format!("/api/telephony/lookup?number={}", p.replace('+', "%2B")))
        .collect();
    let mut loads = Vec::new();
    for (name, paths) in [
        ("calls_by_user_and_period", vec![list_path.clone()]),
        ("caller_lookup", lookup_paths),
    ] {
        let r = load(
            &base,
            &token,
            name,
            Arc::new(paths),
            opts.concurrency,
            opts.seconds,
        )
        .await?;
        eprintln!(
            "{name}: c={} {:.0} req/s p50 {:.1} ms p99 {:.1} ms ({} não-2xx)",
            r.concurrency, r.req_per_sec, r.p50_ms, r.p99_ms, r.non_2xx
        );
        loads.push(r);
    }
    let _ = tx.send(());
    let _ = server.await;
    let report = TelephonyReport {
        tenant_id: tid,
        leads,
        calls: opts.calls,
        ingest_seconds,
        records_per_sec: opts.calls as f64 / ingest_seconds.max(1e-9),
        inserted,
        completed,
        matched_share: matched / (inserted.max(1) as f64),
        seller_id,
        seller_calls_in_period: seller_period,
        loads,
    };
    std::fs::write(out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("escrevendo {}", out.display()))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    state.db.clone().close().await.ok();
    Ok(())
}

/// `concurrency` tasks GET the `paths` in turn for 2 s of warm-up, then `seconds`.
async fn load(
    base: &str,
    token: &str,
    name: &str,
    paths: Arc<Vec<String>>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<LoadResult> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    // Warm-up.
    let stop = Arc::new(AtomicBool::new(false));
    let run_phase = |measure: bool, secs: u64| {
        let stop = stop.clone();
        stop.store(false, Ordering::SeqCst);
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let (client, base, token, paths, stop) = (
                client.clone(),
                base.to_string(),
                token.to_string(),
                paths.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut bad = 0u64;
                let mut k = w;
                while !stop.load(Ordering::Relaxed) {
                    let p = &paths[k % paths.len()];
                    k += concurrency;
                    let t0 = Instant::now();
                    let ok = match client
                        .get(format!("{base}{p}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let s = r.status().is_success();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => false,
                    };
                    if measure {
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                        if !ok {
                            bad += 1;
                        }
                    }
                }
                (lat, bad)
            }));
        }
        let stop = stop.clone();
        async move {
            tokio::time::sleep(StdDuration::from_secs(secs)).await;
            stop.store(true, Ordering::SeqCst);
            let mut all = Vec::new();
            let mut bad = 0;
            for t in tasks {
                let (l, b) = t.await.unwrap_or_default();
                all.extend(l);
                bad += b;
            }
            (all, bad)
        }
    };
    run_phase(false, 2).await;
    let started = Instant::now();
    let (mut lat, bad) = run_phase(true, seconds).await;
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[idx.min(lat.len() - 1)]
    };
    Ok(LoadResult {
        scenario: name.into(),
        concurrency,
        requests: lat.len() as u64,
        non_2xx: bad,
        req_per_sec: lat.len() as f64 / secs.max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}
