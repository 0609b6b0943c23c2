//! Rule-based lead scoring with explanations. Each tenant owns its rules (seeded with a B2B telecom
//! default set); the score is the clamped sum of matching rules plus behavioural signal points.
//!
//! Extension point for behavioural signals: later modules (calls answered, proposals viewed, chatbot
//! conversations) call [`add_signal_points`] in their own transaction; the points are kept in
//! `leads.signal_points`, added to the rule score and shown as one line of the breakdown.

use chrono::Utc;
use jtcrm_types::br::fold_for_search;
use jtcrm_types::dto::leads::{
    ScoreBreakdown, ScoreItem, ScoringOperator, ScoringRule, ScoringRuleInput,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::LeadDraft;
use super::model::{lead, scoring_rule};
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Managers};
use jtcrm_kernel::state::AppState;

/// Free webmail domains: an address there says nothing about a company.
const FREE_EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "hotmail.com.br",
    "outlook.com",
    "outlook.com.br",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.com.br",
    "ymail.com",
    "uol.com.br",
    "bol.com.br",
    "terra.com.br",
    "ig.com.br",
    "icloud.com",
    "me.com",
    "aol.com",
    "protonmail.com",
    "proton.me",
    "globo.com",
    "r7.com",
];

/// Special value of an `in` rule: the tenant's `coverage_states` setting.
pub const COVERAGE_TOKEN: &str = "@coverage_states";

pub const FIELDS: &[&str] = &[
    "name", "email", "phone", "company", "cnpj", "position", "source", "status", "tags", "cep",
    "city", "state", "notes",
];

pub fn to_dto(m: scoring_rule::Model) -> ScoringRule {
    ScoringRule {
        id: m.id,
        field: m.field,
        operator: ScoringOperator::parse(&m.operator).unwrap_or(ScoringOperator::Exists),
        value: m.value,
        points: m.points,
        description: m.description,
        active: m.active,
        position: m.position,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

/// The default rule set of a new tenant (B2B telecom sales).
pub fn default_rules() -> Vec<(&'static str, ScoringOperator, Value, i32, &'static str)> {
    use ScoringOperator::*;
    vec![
        ("cnpj", Exists, Value::Null, 20, "Possui CNPJ (empresa)"),
        (
            "email",
            EmailDomainIsCorporate,
            Value::Null,
            15,
            "E-mail com domínio corporativo",
        ),
        (
            "source",
            In,
            json!(["inbound_call", "referral"]),
            20,
            "Origem: ligação recebida ou indicação",
        ),
        (
            "position",
            Contains,
            json!(["diretor", "gerente", "socio", "ti", "ceo", "cto"]),
            15,
            "Cargo de decisão",
        ),
        (
            "state",
            In,
            json!(COVERAGE_TOKEN),
            10,
            "Estado na área de cobertura",
        ),
        ("phone", Exists, Value::Null, 10, "Possui telefone"),
        ("company", Exists, Value::Null, 5, "Empresa informada"),
        (
            "status",
            Eq,
            json!("unqualified"),
            -40,
            "Lead desqualificado",
        ),
    ]
}

/// Tenant seeder (see `app::seeders`): the default scoring rules.
pub fn seed_tenant<'a>(
    txn: &'a sea_orm::DatabaseTransaction,
    seed: &'a jtcrm_kernel::tenancy::NewTenantSeed,
) -> jtcrm_kernel::tenancy::BoxFuture<'a, AppResult<()>> {
    Box::pin(seed_defaults(txn, seed.tenant_id))
}

pub async fn seed_defaults<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> AppResult<()> {
    let now = Utc::now();
    for (i, (field, op, value, points, description)) in default_rules().into_iter().enumerate() {
        scoring_rule::Entity::insert(scoring_rule::ActiveModel {
            tenant_id: Set(tenant_id),
            id: Set(Uuid::now_v7()),
            field: Set(field.to_string()),
            operator: Set(op.as_str().to_string()),
            value: Set(value),
            points: Set(points),
            description: Set(description.to_string()),
            active: Set(true),
            position: Set(i as i32),
            created_at: Set(now),
            updated_at: Set(now),
            version: Set(1),
        })
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

pub async fn list_rules<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
) -> AppResult<Vec<ScoringRule>> {
    let rows = scoring_rule::Entity::find()
        .filter(scoring_rule::Column::TenantId.eq(tenant_id))
        .order_by_asc(scoring_rule::Column::Position)
        .order_by_asc(scoring_rule::Column::Id)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(to_dto).collect())
}

/// Everything the rules need besides the lead: the active rules and the tenant's coverage.
#[derive(Clone, Debug, Default)]
pub struct Scorer {
    pub rules: Vec<ScoringRule>,
    pub coverage_states: Vec<String>,
}

impl Scorer {
    pub async fn load<C: ConnectionTrait>(
        conn: &C,
        tenant_id: Uuid,
        coverage_states: &[String],
    ) -> AppResult<Self> {
        let rules = list_rules(conn, tenant_id)
            .await?
            .into_iter()
            .filter(|r| r.active)
            .collect();
        Ok(Self {
            rules,
            coverage_states: coverage_states.to_vec(),
        })
    }

    /// Raw rule points and the matching rules.
    pub fn evaluate(&self, lead: &LeadDraft) -> (i32, Vec<ScoreItem>) {
        let mut total = 0;
        let mut items = vec![];
        for r in &self.rules {
            if matches(r, lead, &self.coverage_states) {
                total += r.points;
                items.push(ScoreItem {
                    rule_id: Some(r.id),
                    description: r.description.clone(),
                    points: r.points,
                });
            }
        }
        (total, items)
    }

    pub fn score(&self, lead: &LeadDraft, signal_points: i32) -> i32 {
        clamp(self.evaluate(lead).0 + signal_points)
    }

    pub fn breakdown(&self, lead: &LeadDraft, signal_points: i32) -> ScoreBreakdown {
        let (raw, mut items) = self.evaluate(lead);
        if signal_points != 0 {
            items.push(ScoreItem {
                rule_id: None,
                description: "Sinais de comportamento (ligações, propostas, conversas)".into(),
                points: signal_points,
            });
        }
        let raw_points = raw + signal_points;
        ScoreBreakdown {
            score: clamp(raw_points),
            raw_points,
            breakdown: items,
        }
    }
}

pub fn clamp(points: i32) -> i32 {
    points.clamp(0, 100)
}

fn field_value(lead: &LeadDraft, field: &str) -> Option<Value> {
    let s = |x: &Option<String>| x.clone().map(Value::String);
    match field {
        "name" => Some(Value::String(lead.name.clone())),
        "email" => s(&lead.email),
        "phone" => s(&lead.phone),
        "company" => s(&lead.company),
        "cnpj" => s(&lead.cnpj),
        "position" => s(&lead.position),
        "source" => Some(Value::String(lead.source.as_str().into())),
        "status" => Some(Value::String(lead.status.as_str().into())),
        "tags" => (!lead.tags.is_empty()).then(|| json!(lead.tags)),
        "cep" => s(&lead.cep),
        "city" => s(&lead.city),
        "state" => s(&lead.state),
        "notes" => s(&lead.notes),
        f => f
            .strip_prefix("cf.")
            .and_then(|k| lead.custom_fields.get(k).cloned()),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(fold_for_search(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', ".").parse().ok(),
        _ => None,
    }
}

fn candidates(value: &Value) -> Vec<String> {
    match value {
        Value::Array(a) => a.iter().filter_map(as_text).collect(),
        v => as_text(v).into_iter().collect(),
    }
}

fn matches(rule: &ScoringRule, lead: &LeadDraft, coverage: &[String]) -> bool {
    let actual = field_value(lead, &rule.field).filter(|v| match v {
        Value::String(s) => !s.trim().is_empty(),
        Value::Null => false,
        _ => true,
    });
    use ScoringOperator::*;
    match rule.operator {
        Exists => actual.is_some(),
        EmailDomainIsCorporate => lead
            .email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, d)| !FREE_EMAIL_DOMAINS.contains(&d.to_ascii_lowercase().as_str())),
        Eq | Neq => {
            let equal = match (&actual, as_number(&rule.value)) {
                (Some(a), Some(n)) if as_number(a).is_some() => as_number(a) == Some(n),
                (Some(a), _) => match a {
                    Value::Array(items) => {
                        let want = as_text(&rule.value);
                        items.iter().any(|i| as_text(i) == want)
                    }
                    _ => as_text(a).is_some() && as_text(a) == as_text(&rule.value),
                },
                (None, _) => false,
            };
            if rule.operator == Eq { equal } else { !equal }
        }
        Contains => {
            let Some(a) = actual else { return false };
            let needles = candidates(&rule.value);
            match &a {
                Value::Array(items) => items
                    .iter()
                    .filter_map(as_text)
                    .any(|i| needles.contains(&i)),
                other => as_text(other).is_some_and(|hay| {
                    needles
                        .iter()
                        .any(|n| !n.is_empty() && contains_word(&hay, n))
                }),
            }
        }
        In => {
            let Some(a) = actual else { return false };
            let options: Vec<String> = if rule.value == json!(COVERAGE_TOKEN) {
                coverage.iter().map(|s| fold_for_search(s)).collect()
            } else {
                candidates(&rule.value)
            };
            match &a {
                Value::Array(items) => items
                    .iter()
                    .filter_map(as_text)
                    .any(|i| options.contains(&i)),
                other => as_text(other).is_some_and(|t| options.contains(&t)),
            }
        }
        Gt | Lt => {
            let (Some(a), Some(b)) = (actual.as_ref().and_then(as_number), as_number(&rule.value))
            else {
                return false;
            };
            if rule.operator == Gt { a > b } else { a < b }
        }
    }
}

/// Short needles ("ti") must match a whole word, or "ti" would match "gestão de ativos".
fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.chars().count() > 3 {
        return hay.contains(needle);
    }
    hay.split(|c: char| !c.is_alphanumeric())
        .any(|w| w == needle)
}

fn parse_rule(
    v: &mut Validator,
    input: &ScoringRuleInput,
    current: Option<&ScoringRule>,
    custom_keys: &[String],
) -> Option<(String, ScoringOperator, Value, i32, String, bool, i32)> {
    let field = match (&input.field, current) {
        (None, Some(c)) => Some(c.field.clone()),
        (None, None) => {
            v.add("field", "required", "Campo obrigatório");
            None
        }
        (Some(f), _) => {
            let f = f.trim().to_string();
            let ok = FIELDS.contains(&f.as_str())
                || f.strip_prefix("cf.")
                    .is_some_and(|k| custom_keys.iter().any(|c| c == k));
            if ok {
                Some(f)
            } else {
                v.add(
                    "field",
                    "invalid_field",
                    "Campo inexistente (use um campo do lead ou cf.<chave>)",
                );
                None
            }
        }
    };
    let operator = match (&input.operator, current) {
        (None, Some(c)) => Some(c.operator),
        (None, None) => {
            v.add("operator", "required", "Campo obrigatório");
            None
        }
        (Some(o), _) => ScoringOperator::parse(o).or_else(|| {
            v.add("operator", "invalid_operator", "Operador inválido");
            None
        }),
    };
    let value = input
        .value
        .clone()
        .or(current.map(|c| c.value.clone()))
        .unwrap_or(Value::Null);
    if let Some(op) = operator {
        use ScoringOperator::*;
        let ok = match op {
            Exists | EmailDomainIsCorporate => true,
            Gt | Lt => as_number(&value).is_some(),
            In => value.is_array() || value == json!(COVERAGE_TOKEN),
            Eq | Neq | Contains => !value.is_null() && !value.is_object(),
        };
        if !ok {
            v.add(
                "value",
                "invalid_value",
                "Valor incompatível com o operador",
            );
        }
    }
    let points = match input.points.or(current.map(|c| c.points)) {
        Some(p) if (-100..=100).contains(&p) => Some(p),
        Some(_) => {
            v.add("points", "out_of_range", "Pontos entre -100 e 100");
            None
        }
        None => {
            v.add("points", "required", "Campo obrigatório");
            None
        }
    };
    let description = match (&input.description, current) {
        (None, Some(c)) => Some(c.description.clone()),
        (d, _) => v.required_text("description", d.as_deref(), 200),
    };
    let active = input.active.or(current.map(|c| c.active)).unwrap_or(true);
    let position = input
        .position
        .or(current.map(|c| c.position))
        .unwrap_or(100);
    Some((
        field?,
        operator?,
        value,
        points?,
        description?,
        active,
        position,
    ))
}

async fn custom_keys(state: &AppState, tenant_id: Uuid) -> AppResult<Vec<String>> {
    Ok(super::fields::list_defs(&state.db, tenant_id)
        .await?
        .into_iter()
        .map(|d| d.key)
        .collect())
}

pub async fn create_rule(
    state: &AppState,
    ctx: &Authorized<Managers>,
    input: ScoringRuleInput,
) -> AppResult<ScoringRule> {
    let keys = custom_keys(state, ctx.tenant_id).await?;
    let mut v = Validator::new();
    let parsed = parse_rule(&mut v, &input, None, &keys);
    v.finish()?;
    let Some((field, op, value, points, description, active, position)) = parsed else {
        return Err(AppError::bad_request(""));
    };
    let now = Utc::now();
    let txn = state.begin().await?;
    let m = scoring_rule::Entity::insert(scoring_rule::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        field: Set(field),
        operator: Set(op.as_str().to_string()),
        value: Set(value),
        points: Set(points),
        description: Set(description),
        active: Set(active),
        position: Set(position),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    })
    .exec_with_returning(&*txn)
    .await?;
    let dto = to_dto(m);
    rules_changed(
        &*txn,
        ctx,
        "create",
        &dto.id,
        json!({}),
        serde_json::to_value(&dto).unwrap_or_default(),
    )
    .await?;
    txn.commit().await?;
    jtcrm_kernel::jobs::wake_workers();
    Ok(dto)
}

pub async fn update_rule(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    if_match: Option<i32>,
    input: ScoringRuleInput,
) -> AppResult<ScoringRule> {
    let keys = custom_keys(state, ctx.tenant_id).await?;
    let txn = state.begin().await?;
    let current = scoring_rule::Entity::find_by_id((ctx.tenant_id, id))
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if if_match.is_some_and(|v| v != current.version) {
        return Err(AppError::stale_version());
    }
    let cur = to_dto(current.clone());
    let mut v = Validator::new();
    let parsed = parse_rule(&mut v, &input, Some(&cur), &keys);
    v.finish()?;
    let Some((field, op, value, points, description, active, position)) = parsed else {
        return Err(AppError::bad_request(""));
    };
    let version = current.version;
    let mut m = current.into_active_model();
    m.field = Set(field);
    m.operator = Set(op.as_str().to_string());
    m.value = Set(value);
    m.points = Set(points);
    m.description = Set(description);
    m.active = Set(active);
    m.position = Set(position);
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<scoring_rule::Entity, _>(
        &*txn,
        m,
        scoring_rule::Column::Version,
        version,
    )
    .await?;
    let dto = to_dto(updated);
    rules_changed(
        &*txn,
        ctx,
        "update",
        &id,
        serde_json::to_value(&cur).unwrap_or_default(),
        serde_json::to_value(&dto).unwrap_or_default(),
    )
    .await?;
    txn.commit().await?;
    jtcrm_kernel::jobs::wake_workers();
    Ok(dto)
}

pub async fn delete_rule(state: &AppState, ctx: &Authorized<Managers>, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let current = scoring_rule::Entity::find_by_id((ctx.tenant_id, id))
        .one(&*txn)
        .await?
        .ok_or_else(AppError::not_found)?;
    scoring_rule::Entity::delete_by_id((ctx.tenant_id, id))
        .exec(&*txn)
        .await?;
    rules_changed(
        &*txn,
        ctx,
        "delete",
        &id,
        serde_json::to_value(to_dto(current)).unwrap_or_default(),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    jtcrm_kernel::jobs::wake_workers();
    Ok(())
}

/// Audits a rule change and schedules the background rescore of the tenant's leads.
async fn rules_changed<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    action: &str,
    id: &Uuid,
    before: Value,
    after: Value,
) -> AppResult<()> {
    audit::record(
        conn,
        audit::Entry::tenant(
            ctx,
            action,
            "lead_scoring_rule",
            id,
            audit::diff(&before, &after),
        ),
    )
    .await?;
    enqueue_rescore(conn, ctx.tenant_id).await
}

pub const RESCORE_JOB: &str = "leads.rescore";

/// Enqueued in the transaction of the rule change; the job reads the rules as they are when it runs,
/// so a burst of changes costs a few cheap passes that update only rows whose score moved.
pub async fn enqueue_rescore<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> AppResult<()> {
    let job = jtcrm_kernel::jobs::NewJob::new(
        RESCORE_JOB,
        json!({"tenant_id": tenant_id, "requested_at": Utc::now()}),
    )
    .tenant(tenant_id);
    jtcrm_kernel::jobs::enqueue(conn, job).await?;
    Ok(())
}

/// Handler of `leads.rescore`.
pub async fn run_rescore_job(
    state: AppState,
    ctx: jtcrm_kernel::jobs::JobCtx,
) -> Result<(), jtcrm_kernel::jobs::JobError> {
    let tenant_id = ctx
        .tenant_id
        .ok_or_else(|| jtcrm_kernel::jobs::JobError::permanent("leads.rescore sem tenant_id"))?;
    let changed = rescore_tenant(&state, tenant_id).await?;
    tracing::info!(%tenant_id, changed, "leads rescored");
    Ok(())
}

/// Recomputes every lead's score of the tenant in batches; updates only rows whose score changed.
pub async fn rescore_tenant(state: &AppState, tenant_id: Uuid) -> AppResult<u64> {
    let snapshot = state
        .tenants
        .get(&state.db, tenant_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let scorer = Scorer::load(&state.db, tenant_id, &snapshot.settings.coverage_states).await?;
    let mut after: Option<Uuid> = None;
    let mut changed = 0u64;
    loop {
        use sea_orm::QuerySelect;
        let mut q = lead::Entity::find().filter(lead::Column::TenantId.eq(tenant_id));
        if let Some(a) = after {
            q = q.filter(lead::Column::Id.gt(a));
        }
        let batch = q
            .order_by_asc(lead::Column::Id)
            .limit(1000)
            .all(&state.db)
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        let updates: Vec<(Uuid, i32)> = batch
            .iter()
            .filter_map(|m| {
                let s = scorer.score(&LeadDraft::from_model(m), m.signal_points);
                (s != m.score).then_some((m.id, s))
            })
            .collect();
        if updates.is_empty() {
            continue;
        }
        let txn = state.begin().await?;
        for (id, score) in &updates {
            lead::Entity::update_many()
                .col_expr(lead::Column::Score, Expr::value(*score))
                .filter(lead::Column::TenantId.eq(tenant_id))
                .filter(lead::Column::Id.eq(*id))
                .exec(&*txn)
                .await?;
        }
        txn.commit().await?;
        changed += updates.len() as u64;
    }
    Ok(changed)
}

/// Adds behavioural points to a lead (negative to remove) and recomputes its score, in the caller's
/// transaction. For later modules: calls, proposals, chatbot.
pub async fn add_signal_points<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Uuid,
    points: i32,
    scorer: &Scorer,
) -> AppResult<i32> {
    let m = lead::Entity::find_by_id((tenant_id, lead_id))
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    let signal = m.signal_points.saturating_add(points);
    let score = scorer.score(&LeadDraft::from_model(&m), signal);
    lead::Entity::update_many()
        .col_expr(lead::Column::SignalPoints, Expr::value(signal))
        .col_expr(lead::Column::Score, Expr::value(score))
        .filter(lead::Column::TenantId.eq(tenant_id))
        .filter(lead::Column::Id.eq(lead_id))
        .exec(conn)
        .await?;
    Ok(score)
}
