//! `jtcrm system-test`: the end-to-end scenario run against a live deployment over HTTP.
//! Stops at the first broken step, printing the step, the HTTP status and the response body.

use std::cell::Cell;
use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

mod client;
mod contracts;
mod dashboards;
mod mail;
mod platform;
mod proposals;
mod sales;
mod telephony;

#[allow(unused_imports)]
use client::*;
#[allow(unused_imports)]
use contracts::*;
use dashboards::*;
#[allow(unused_imports)]
use mail::*;
#[allow(unused_imports)]
use platform::*;
#[allow(unused_imports)]
use platform::*;
use proposals::*;
#[allow(unused_imports)]
use sales::*;
#[allow(unused_imports)]
use telephony::*;

/// Every user the scenario creates gets this password; 8+ chars per the password policy.
const PASSWORD: &str = "Senha-forte-2026";
const CNPJ_NUMERIC_BARE: &str = "11222333000181";
const CNPJ_NUMERIC: &str = "11.222.333/0001-81";
const CNPJ_ALPHANUMERIC: &str = "12.ABC.345/01DE-35";
const CNPJ_INVALID: &str = "11.222.333/0001-00";
const STARTER_MAX_USERS: usize = 5;

pub async fn run(url: &str, verbose: bool, smtp_sink: Option<&str>) -> Result<ExitCode> {
    let root_email = env_var("JTCRM_SUPERADMIN_EMAIL")?;
    let root_password = env_var("JTCRM_SUPERADMIN_PASSWORD")?;
    let mut client = Client::new(url, verbose)?;
    client.smtp_sink = smtp_sink
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty());
    let mut ctx = Ctx::new(root_email, root_password);
    println!("system-test against {} (run {})", client.base, ctx.run);
    if let Some(sink) = &client.smtp_sink {
        println!("e-mails checked at the SMTP sink {sink}");
    }

    let outcome = scenario(&client, &mut ctx).await;
    println!(
        "{} passed, {} failed",
        client.passed.get(),
        client.failed.get()
    );
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `step` has already printed the failing step with its response.
        Err(e) if e.is::<StepFailed>() => Ok(ExitCode::FAILURE),
        Err(e) => Err(e),
    }
}

fn env_var(name: &str) -> Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .with_context(|| format!("defina {name} com as credenciais do super-admin da implantação"))
}

/// Sections run in order; each relies on what the previous ones stored in [`Ctx`].
async fn scenario(c: &Client, ctx: &mut Ctx) -> Result<()> {
    health(c).await?;
    api_docs(c).await?;
    super_admin_login(c, ctx).await?;
    plans(c, ctx).await?;
    tenants(c, ctx).await?;
    tenant_admin_login(c, ctx).await?;
    users(c, ctx).await?;
    token_flows(c, ctx).await?;
    isolation(c, ctx).await?;
    suspension(c, ctx).await?;
    plan_limit(c, ctx).await?;
    leads(c, ctx).await?;
    lead_transfer(c, ctx).await?;
    agenda(c, ctx).await?;
    sales_pipeline(c, ctx).await?;
    automations(c, ctx).await?;
    let (proposal, opp) = proposals(c, ctx).await?;
    contracts(c, ctx, &proposal, &opp).await?;
    dashboards(c, ctx).await?;
    telephony(c, ctx).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenario state

/// What the sections share: tokens and ids created along the way.
struct Ctx {
    /// Suffix that keeps names, emails and slugs unique so the scenario can rerun on one server.
    run: String,
    root_email: String,
    root_password: String,
    root: Session,
    a: TenantFx,
    b: TenantFx,
}

impl Ctx {
    fn new(root_email: String, root_password: String) -> Self {
        // The tail of a v7 UUID is random; its head is the clock and would repeat within a run.
        let id = Uuid::now_v7().simple().to_string();
        let run = id[id.len() - 8..].to_string();
        let fixture = |label: &str| TenantFx {
            slug: format!("st-{label}-{run}"),
            admin_email: format!("admin-{label}-{run}@system-test.example.com"),
            ..TenantFx::default()
        };
        Self {
            a: fixture("a"),
            b: fixture("b"),
            run,
            root_email,
            root_password,
            root: Session::default(),
        }
    }

    fn email(&self, who: &str) -> String {
        format!("{who}-{}@system-test.example.com", self.run)
    }
}

#[derive(Default)]
struct TenantFx {
    id: String,
    slug: String,
    admin_email: String,
    admin: Session,
    /// A viewer's login, spent by the token-flow section.
    viewer_session: Session,
    /// Users created by the scenario besides the admin.
    users: Vec<CreatedUser>,
}

#[derive(Default, Clone)]
struct Session {
    access: String,
    refresh: String,
}

struct CreatedUser {
    id: String,
    email: String,
    role: &'static str,
}

// ---------------------------------------------------------------------------------------------
// Sections
