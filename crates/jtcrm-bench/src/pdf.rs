//! `jtcrm bench pdf`: renders proposal PDFs of `items` lines with the default telecom template,
//! the same code path as `GET /api/proposals/{id}/pdf` minus the database (template render →
//! blocks → layout → krilla). Reports PDFs per second, p50/p99 per PDF and the peak RSS.

use std::time::Instant;

use jtcrm::domains::proposals::{defaults, pdf, render};
use jtcrm_types::dto::proposals::ProposalItem;

pub struct PdfBenchOptions {
    pub count: usize,
    pub items: usize,
    /// Threads rendering at once (1 = sequential).
    pub threads: usize,
    /// Where to write one of the PDFs, to look at it.
    pub sample: Option<std::path::PathBuf>,
}

pub struct PdfBenchReport {
    pub count: usize,
    pub items: usize,
    pub threads: usize,
    pub seconds: f64,
    pub pdfs_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub avg_bytes: usize,
    pub peak_rss_kib: Option<u64>,
}

fn data(items: usize) -> render::DocData {
    let mut d = render::sample();
    d.items = (0..items)
        .map(|i| {
            let monthly = 9_990 + (i as i64 % 7) * 10_000;
            ProposalItem {
                product_id: None,
                name: format!(
                    "Link dedicado {} Mbps — unidade {i} (instalação e configuração)",
                    100 + i * 10
                ),
                sku: Some(format!("LD-{i:03}")),
                quantity: 1 + (i as i32 % 3),
                monthly_price_cents: monthly,
                setup_price_cents: 50_000,
                discount_percent: if i % 4 == 0 { 5.0 } else { 0.0 },
                monthly_total_cents: monthly * (1 + (i as i64 % 3)),
                setup_total_cents: 50_000 * (1 + (i as i64 % 3)),
            }
        })
        .collect();
    d.totals.mrr_cents = d.items.iter().map(|i| i.monthly_total_cents).sum();
    d.totals.setup_cents = d.items.iter().map(|i| i.setup_total_cents).sum();
    d.totals.tcv_cents = d.totals.mrr_cents * 24 + d.totals.setup_cents;
    d
}

/// Peak resident set size of this process (`VmHWM`, Linux).
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn build(d: &render::DocData) -> anyhow::Result<Vec<u8>> {
    let text = render::render(defaults::PROPOSAL, d)?;
    pdf::render(
        &d.company.name,
        &d.proposal.number,
        &text,
        &d.items,
        &d.totals,
    )
    .map_err(anyhow::Error::msg)
}

fn one(d: &render::DocData) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let text = render::render(defaults::PROPOSAL, d)?;
    let bytes = pdf::render(
        &d.company.name,
        &d.proposal.number,
        &text,
        &d.items,
        &d.totals,
    )
    .map_err(anyhow::Error::msg)?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, bytes.len()))
}

pub fn run(o: &PdfBenchOptions) -> anyhow::Result<PdfBenchReport> {
    let d = data(o.items);
    // Warm-up (and the sample).
    let first = build(&d)?;
    if let Some(p) = &o.sample {
        std::fs::write(p, &first)?;
    }
    let threads = o.threads.max(1);
    let started = Instant::now();
    let per = o.count.div_ceil(threads);
    let results: Vec<anyhow::Result<Vec<(f64, usize)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let d = &d;
                let n = per.min(o.count.saturating_sub(t * per));
                s.spawn(move || (0..n).map(|_| one(d)).collect::<anyhow::Result<Vec<_>>>())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut times = vec![];
    let mut bytes = 0usize;
    for r in results {
        for (ms, b) in r? {
            times.push(ms);
            bytes += b;
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if times.is_empty() {
            0.0
        } else {
            times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1]
        }
    };
    Ok(PdfBenchReport {
        count: times.len(),
        items: o.items,
        threads,
        seconds,
        pdfs_per_sec: times.len() as f64 / seconds.max(1e-9),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: times.last().copied().unwrap_or(0.0),
        avg_bytes: bytes / times.len().max(1),
        peak_rss_kib: peak_rss_kib(),
    })
}
