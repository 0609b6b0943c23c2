//! Lead list and search: filters, sorting, keyset pagination, visibility, and the inverted index of
//! search terms (`lead_terms`) that makes `q` an index range scan on both backends.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use jtcrm_types::FieldError;
use jtcrm_types::br::fold_for_search;
use jtcrm_types::dto::Page;
use jtcrm_types::dto::leads::{CustomFieldDef, CustomFieldType, Lead, LeadSource, LeadStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::LeadDraft;
use super::model::{lead, tag, term};
use jtcrm_kernel::error::{AppError, AppResult};
use jtcrm_kernel::http::extract::{TenantCtx, query_bool, query_pairs};
use jtcrm_kernel::http::pagination::{self, Cursor, Keyset};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::visibility;

const MAX_TERM: usize = 64;

fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_TERM).collect())
}

/// National digits of an E.164 Brazilian number (`+5511987654321` → `11987654321`).
pub fn national_digits(phone: &str) -> String {
    let d: String = phone.chars().filter(char::is_ascii_digit).collect();
    d.strip_prefix("55").map(str::to_string).unwrap_or(d)
}

/// The search terms of a lead: folded words of name and company, the email and its parts, the CNPJ,
/// and the phone's national digits and subscriber number.
pub fn terms_for(d: &LeadDraft) -> BTreeSet<String> {
    let mut t = BTreeSet::new();
    for w in words(&fold_for_search(&d.name)) {
        t.insert(w);
    }
    if let Some(c) = &d.company {
        for w in words(&fold_for_search(c)) {
            t.insert(w);
        }
    }
    if let Some(e) = &d.email {
        t.insert(e.chars().take(MAX_TERM).collect());
        if let Some((local, domain)) = e.split_once('@') {
            t.insert(local.chars().take(MAX_TERM).collect());
            t.insert(domain.chars().take(MAX_TERM).collect());
        }
    }
    if let Some(c) = &d.cnpj {
        t.insert(c.to_lowercase());
    }
    if let Some(p) = &d.phone {
        let nat = national_digits(p);
        if nat.len() > 2 {
            t.insert(nat[2..].to_string());
        }
        t.insert(nat);
    }
    t
}

/// Replaces the terms and tags rows of a lead.
pub fn term_row(tenant_id: Uuid, lead_id: Uuid, term: String) -> term::ActiveModel {
    term::ActiveModel {
        tenant_id: Set(tenant_id),
        term: Set(term),
        lead_id: Set(lead_id),
    }
}

pub fn tag_row(tenant_id: Uuid, lead_id: Uuid, tag: String) -> tag::ActiveModel {
    tag::ActiveModel {
        tenant_id: Set(tenant_id),
        tag: Set(tag),
        lead_id: Set(lead_id),
    }
}

pub async fn write_index<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    lead_id: Uuid,
    d: &LeadDraft,
    replace: bool,
) -> AppResult<()> {
    if replace {
        term::Entity::delete_many()
            .filter(term::Column::TenantId.eq(tenant_id))
            .filter(term::Column::LeadId.eq(lead_id))
            .exec(conn)
            .await?;
        tag::Entity::delete_many()
            .filter(tag::Column::TenantId.eq(tenant_id))
            .filter(tag::Column::LeadId.eq(lead_id))
            .exec(conn)
            .await?;
    }
    let terms: Vec<term::ActiveModel> = terms_for(d)
        .into_iter()
        .map(|t| term_row(tenant_id, lead_id, t))
        .collect();
    if !terms.is_empty() {
        term::Entity::insert_many(terms)
            .exec_without_returning(conn)
            .await?;
    }
    let tags: Vec<tag::ActiveModel> = d
        .tags
        .iter()
        .map(|t| tag_row(tenant_id, lead_id, t.clone()))
        .collect();
    if !tags.is_empty() {
        tag::Entity::insert_many(tags)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Score,
    Name,
}

impl SortKey {
    fn as_str(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Score => "score",
            SortKey::Name => "name",
        }
    }
    fn column(self) -> lead::Column {
        match self {
            SortKey::CreatedAt => lead::Column::CreatedAt,
            SortKey::UpdatedAt => lead::Column::UpdatedAt,
            SortKey::Score => lead::Column::Score,
            SortKey::Name => lead::Column::NameSort,
        }
    }
    /// The list order of this sort, and its cursor: `(sort, value, id)`.
    pub fn keyset(self, descending: bool) -> Keyset<lead::Entity> {
        Keyset::new([self.column(), lead::Column::Id], descending).tagged(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OwnerFilter {
    Any,
    Unassigned,
    Is(Uuid),
}

/// Parsed list filters. Query parameters are documented by [`LeadQueryDoc`].
#[derive(Debug, Clone)]
pub struct LeadQuery {
    pub status: Vec<LeadStatus>,
    pub owner: OwnerFilter,
    pub source: Vec<LeadSource>,
    pub tag: Option<String>,
    pub score_min: Option<i32>,
    pub score_max: Option<i32>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
    pub q: Option<String>,
    pub custom: Vec<(String, String)>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: u64,
    pub cursor: Option<String>,
    pub include_total: bool,
    pub deleted: bool,
}

/// Query parameters of `GET /api/leads` and `GET /api/leads/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LeadQueryDoc {
    /// One status or several separated by commas.
    pub status: Option<String>,
    /// A user id, `me`, or `none` (unassigned).
    pub owner_id: Option<String>,
    /// One source or several separated by commas.
    pub source: Option<String>,
    pub tag: Option<String>,
    pub score_min: Option<i32>,
    pub score_max: Option<i32>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub updated_since: Option<DateTime<Utc>>,
    /// Search in name, company, email, CNPJ and phone; accent- and case-insensitive, word prefixes.
    /// Digits (masked or not) match phones and CNPJs.
    pub q: Option<String>,
    /// `created_at`, `updated_at`, `score` or `name`; prefix `-` for descending. Default `-created_at`.
    pub sort: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
    /// `true` lists the trash (soft-deleted leads) instead.
    pub deleted: Option<bool>,
    // Custom field filters (`cf.<key>=<value>`, one per defined field) are named by the company's
    // data, so the operation's description states them instead of a parameter.
}

fn bad(field: &str, msg: &str) -> AppError {
    AppError::validation(vec![FieldError::new(field, "invalid_value", msg)])
}

fn parse_time(field: &str, v: &str) -> AppResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| {
            bad(
                field,
                "Use uma data ISO 8601 (2026-11-29 ou 2026-11-29T10:00:00Z)",
            )
        })
}

impl LeadQuery {
    pub fn parse(raw: &str, ctx: &TenantCtx, defs: &[CustomFieldDef]) -> AppResult<LeadQuery> {
        let mut q = LeadQuery {
            status: vec![],
            owner: OwnerFilter::Any,
            source: vec![],
            tag: None,
            score_min: None,
            score_max: None,
            created_from: None,
            created_to: None,
            updated_since: None,
            q: None,
            custom: vec![],
            sort: SortKey::CreatedAt,
            descending: true,
            limit: pagination::DEFAULT_LIMIT,
            cursor: None,
            include_total: false,
            deleted: false,
        };
        for (k, v) in query_pairs(raw)? {
            let v = v.trim().to_string();
            match k.as_str() {
                "status" => {
                    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        q.status.push(
                            LeadStatus::parse(s).ok_or_else(|| bad("status", "Status inválido"))?,
                        );
                    }
                }
                "source" => {
                    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        q.source.push(
                            LeadSource::parse(s).ok_or_else(|| bad("source", "Origem inválida"))?,
                        );
                    }
                }
                "owner_id" => {
                    q.owner = match v.as_str() {
                        "" => OwnerFilter::Any,
                        "me" => OwnerFilter::Is(ctx.user_id),
                        "none" => OwnerFilter::Unassigned,
                        s => OwnerFilter::Is(
                            Uuid::parse_str(s)
                                .map_err(|_| bad("owner_id", "Use um id, me ou none"))?,
                        ),
                    }
                }
                "tag" if !v.is_empty() => q.tag = Some(v.to_lowercase()),
                "score_min" => {
                    q.score_min = Some(v.parse().map_err(|_| bad("score_min", "Número inteiro"))?)
                }
                "score_max" => {
                    q.score_max = Some(v.parse().map_err(|_| bad("score_max", "Número inteiro"))?)
                }
                "created_from" => q.created_from = Some(parse_time("created_from", &v)?),
                "created_to" => q.created_to = Some(parse_time("created_to", &v)?),
                "updated_since" => q.updated_since = Some(parse_time("updated_since", &v)?),
                "q" if !v.is_empty() => {
                    if v.chars().count() > 100 {
                        return Err(bad("q", "Busca com no máximo 100 caracteres"));
                    }
                    q.q = Some(v)
                }
                "sort" => {
                    let (desc, key) = match v.strip_prefix('-') {
                        Some(k) => (true, k),
                        None => (false, v.as_str()),
                    };
                    q.sort = match key {
                        "created_at" => SortKey::CreatedAt,
                        "updated_at" => SortKey::UpdatedAt,
                        "score" => SortKey::Score,
                        "name" => SortKey::Name,
                        _ => {
                            return Err(bad(
                                "sort",
                                "Use created_at, updated_at, score ou name (prefixo - para decrescente)",
                            ));
                        }
                    };
                    q.descending = desc;
                }
                "limit" => {
                    q.limit = pagination::limit(Some(
                        v.parse().map_err(|_| bad("limit", "Número de 1 a 200"))?,
                    ))?
                }
                "cursor" if !v.is_empty() => q.cursor = Some(v),
                "include_total" => q.include_total = query_bool("include_total", &v)?,
                "deleted" => q.deleted = query_bool("deleted", &v)?,
                "allow_duplicate" => {}
                key if key.starts_with("cf.") => {
                    let name = &key[3..];
                    let Some(def) = defs.iter().find(|d| d.key == name) else {
                        return Err(bad(key, "Campo personalizado não definido"));
                    };
                    let normalized =
                        super::fields::normalize_value(def, &serde_json::Value::String(v.clone()))
                            .ok_or_else(|| bad(key, "Valor inválido para o tipo do campo"))?;
                    q.custom
                        .push((name.to_string(), filter_text(def, &normalized)));
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The text form a JSON value takes when extracted for comparison (`->>` / `json_extract`).
fn filter_text(def: &CustomFieldDef, v: &serde_json::Value) -> String {
    match (def.field_type, v) {
        (_, serde_json::Value::String(s)) => s.clone(),
        (CustomFieldType::Boolean, serde_json::Value::Bool(b)) => b.to_string(),
        (_, other) => other.to_string(),
    }
}

/// Tokens of `q`. A value that is digits once masks are removed becomes one digits token (so a
/// masked phone or CNPJ matches); an email stays whole; otherwise folded words.
pub fn query_tokens(q: &str) -> Vec<String> {
    let compact: String = q
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | '/' | '(' | ')' | ' ' | '+'))
        .collect();
    if !compact.is_empty() && compact.chars().all(|c| c.is_ascii_digit()) {
        let mut d = compact;
        if d.len() >= 12 && d.starts_with("55") {
            d = d[2..].to_string();
        }
        if d.len() >= 10 && d.starts_with('0') {
            d = d[1..].to_string();
        }
        return vec![d];
    }
    if compact.len() == 14
        && compact.chars().all(|c| c.is_ascii_alphanumeric())
        && compact.chars().any(|c| c.is_ascii_digit())
    {
        return vec![compact.to_lowercase()];
    }
    let folded = fold_for_search(q.trim());
    // An email or a domain ("conecta.net.br") is searched whole, like the term stored for it.
    if folded.contains('@') || (folded.contains('.') && !folded.contains(char::is_whitespace)) {
        return vec![folded.chars().take(MAX_TERM).collect()];
    }
    words(&folded).take(6).collect()
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_upper_bound(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    String::from('\u{10FFFF}')
}

/// The filtered selection (no order, no keyset): shared by the list, its total and the export.
pub fn filtered(ctx: &TenantCtx, q: &LeadQuery, backend: DbBackend) -> Select<lead::Entity> {
    filtered_but(ctx, q, backend, false)
}

/// The ids of the leads matching `q` that the caller sees, in id order, at most `limit`.
pub async fn filtered_ids<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    q: &LeadQuery,
    limit: u64,
) -> AppResult<Vec<Uuid>> {
    Ok(filtered(ctx, q, conn.get_database_backend())
        .select_only()
        .column(lead::Column::Id)
        .order_by_asc(lead::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?)
}

/// [`filtered`], leaving out the first `q` token when `skip_first_token` (the caller restricts the
/// ids to that token's matches itself).
fn filtered_but(
    ctx: &TenantCtx,
    q: &LeadQuery,
    backend: DbBackend,
    skip_first_token: bool,
) -> Select<lead::Entity> {
    let t = ctx.tenant_id;
    let mut sel = lead::Entity::find().filter(lead::Column::TenantId.eq(t));
    sel = if q.deleted {
        sel.filter(lead::Column::DeletedAt.is_not_null())
    } else {
        sel.filter(lead::Column::DeletedAt.is_null())
    };
    if !visibility::sees_all(ctx) {
        sel = sel.filter(lead::Column::OwnerId.eq(ctx.user_id));
    }
    match &q.owner {
        OwnerFilter::Any => {}
        OwnerFilter::Unassigned => sel = sel.filter(lead::Column::OwnerId.is_null()),
        OwnerFilter::Is(id) => sel = sel.filter(lead::Column::OwnerId.eq(*id)),
    }
    if !q.status.is_empty() {
        sel = sel.filter(lead::Column::Status.is_in(q.status.iter().map(|s| s.as_str())));
    }
    if !q.source.is_empty() {
        sel = sel.filter(lead::Column::Source.is_in(q.source.iter().map(|s| s.as_str())));
    }
    if let Some(v) = q.score_min {
        sel = sel.filter(lead::Column::Score.gte(v));
    }
    if let Some(v) = q.score_max {
        sel = sel.filter(lead::Column::Score.lte(v));
    }
    if let Some(v) = q.created_from {
        sel = sel.filter(lead::Column::CreatedAt.gte(v));
    }
    if let Some(v) = q.created_to {
        sel = sel.filter(lead::Column::CreatedAt.lt(v));
    }
    if let Some(v) = q.updated_since {
        sel = sel.filter(lead::Column::UpdatedAt.gte(v));
    }
    if let Some(tg) = &q.tag {
        let sub = Query::select()
            .column(tag::Column::LeadId)
            .from(tag::Entity)
            .and_where(Expr::col(tag::Column::TenantId).eq(t))
            .and_where(Expr::col(tag::Column::Tag).eq(tg.as_str()))
            .take();
        sel = sel.filter(lead::Column::Id.in_subquery(sub));
    }
    if let Some(text) = &q.q {
        for tok in query_tokens(text)
            .into_iter()
            .skip(usize::from(skip_first_token))
        {
            let sub = Query::select()
                .column(term::Column::LeadId)
                .from(term::Entity)
                .and_where(Expr::col(term::Column::TenantId).eq(t))
                .and_where(Expr::col(term::Column::Term).gte(tok.as_str()))
                .and_where(Expr::col(term::Column::Term).lt(prefix_upper_bound(&tok)))
                .take();
            sel = sel.filter(lead::Column::Id.in_subquery(sub));
        }
    }
    for (key, value) in &q.custom {
        let path = format!("$.{key}");
        let expr = match backend {
            DbBackend::Postgres => Expr::cust_with_values(
                "\"custom_fields\" ->> $1 = $2",
                [key.clone(), value.clone()],
            ),
            _ => Expr::cust_with_values(
                "CAST(json_extract(\"custom_fields\", ?) AS TEXT) = ?",
                [path, sqlite_json_text(value)],
            ),
        };
        sel = sel.filter(expr);
    }
    sel
}

/// SQLite's json_extract returns booleans as 1/0.
fn sqlite_json_text(v: &str) -> String {
    match v {
        "true" => "1".into(),
        "false" => "0".into(),
        other => other.into(),
    }
}

/// The keyset cursor that continues after `m` (for callers paging through a whole selection).
pub fn page_cursor(sort: SortKey, m: &lead::Model) -> String {
    sort.keyset(false).cursor_of(m)
}

/// Applies order and the keyset condition `(sort_col, id) <|> (value, id)`.
pub fn ordered(sel: Select<lead::Entity>, q: &LeadQuery) -> AppResult<Select<lead::Entity>> {
    q.sort.keyset(q.descending).apply(sel, q.cursor.as_deref())
}

/// A text search sorted by creation, answered from a window of the index instead of every match.
///
/// `q=fibra` over a million leads matches thousands of them; ordering them all by `created_at`
/// costs one lead lookup per match (≈ 40 ms for 4,000 matches on PostgreSQL). Lead ids are UUID v7
/// minted at the same instant as `created_at` (`insert_lead`, imports, the bench seeder), so id
/// order is creation order, and the first term's matches can be taken in id order straight from
/// the `(tenant_id, term, lead_id)` index: the `window` nearest ids past the cursor, then the page
/// among those with every other filter applied. When the page fills up, or the window held every
/// match, it is exact; otherwise a wider window is tried, and in the end the general query.
async fn text_candidates_by_id(
    state: &AppState,
    ctx: &TenantCtx,
    q: &LeadQuery,
) -> AppResult<Option<Vec<lead::Model>>> {
    let Some(text) = &q.q else { return Ok(None) };
    let Some(tok) = query_tokens(text).into_iter().next() else {
        return Ok(None);
    };
    if q.sort != SortKey::CreatedAt {
        return Ok(None);
    }
    let after = match &q.cursor {
        None => None,
        Some(c) => {
            let cursor = Cursor::parse(c)?;
            match cursor.parts().get(2).map(|x| Uuid::parse_str(x)) {
                Some(Ok(id)) => Some(id),
                // Malformed: the general path reports it.
                _ => return Ok(None),
            }
        }
    };
    let need = q.limit + 1;
    // The first token's condition is the window itself.
    let base = filtered_but(ctx, q, state.db.get_database_backend(), true);
    for window in [need * 4, need * 32] {
        let mut cand = term::Entity::find()
            .select_only()
            .column(term::Column::LeadId)
            .distinct()
            .filter(term::Column::TenantId.eq(ctx.tenant_id))
            .filter(term::Column::Term.gte(tok.as_str()))
            .filter(term::Column::Term.lt(prefix_upper_bound(&tok)));
        if let Some(id) = after {
            cand = cand.filter(if q.descending {
                term::Column::LeadId.lt(id)
            } else {
                term::Column::LeadId.gt(id)
            });
        }
        cand = if q.descending {
            cand.order_by_desc(term::Column::LeadId)
        } else {
            cand.order_by_asc(term::Column::LeadId)
        };
        let ids: Vec<Uuid> = cand.limit(window).into_tuple().all(&state.db).await?;
        let exhausted = (ids.len() as u64) < window;
        let rows = ordered(base.clone(), q)?
            .filter(lead::Column::Id.is_in(ids))
            .limit(need)
            .all(&state.db)
            .await?;
        if rows.len() as u64 == need || exhausted {
            return Ok(Some(rows));
        }
    }
    Ok(None)
}

pub async fn list(state: &AppState, ctx: &TenantCtx, q: &LeadQuery) -> AppResult<Page<Lead>> {
    let backend = state.db.get_database_backend();
    let base = filtered(ctx, q, backend);
    let keyset = q.sort.keyset(q.descending);
    // The text-search fast path reads its rows from a window of the term index, which `paginate`
    // cannot express; it shares the rest of the tail (total, `limit + 1`, next cursor).
    let Some(rows) = text_candidates_by_id(state, ctx, q).await? else {
        let page = keyset
            .paginate(
                &state.db,
                base,
                q.cursor.as_deref(),
                q.limit,
                q.include_total,
            )
            .await?;
        return Ok(page.map(super::to_dto));
    };
    let total = if q.include_total {
        Some(base.count(&state.db).await?)
    } else {
        None
    };
    let (rows, next_cursor) = keyset.finish(rows, q.limit);
    Ok(Page {
        items: rows.into_iter().map(super::to_dto).collect(),
        next_cursor,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(query_tokens("(11) 98765-4321"), vec!["11987654321"]);
        assert_eq!(query_tokens("+55 11 98765-4321"), vec!["11987654321"]);
        assert_eq!(query_tokens("11.222.333/0001-81"), vec!["11222333000181"]);
        assert_eq!(query_tokens("12.ABC.345/01DE-35"), vec!["12abc34501de35"]);
        assert_eq!(query_tokens("João Silva"), vec!["joao", "silva"]);
        assert_eq!(
            query_tokens("Maria@Fibra.com.br"),
            vec!["maria@fibra.com.br"]
        );
    }

    #[test]
    fn upper_bound() {
        assert_eq!(prefix_upper_bound("joa"), "job");
        assert!(*"joao" < *prefix_upper_bound("joa"));
        assert!("jo" < "joa");
    }
}
