//! List.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Title,
    Value,
    Mrr,
    Tcv,
    Position,
}

impl SortKey {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Title => "title",
            SortKey::Value => "value_cents",
            SortKey::Mrr => "mrr_cents",
            SortKey::Tcv => "tcv_cents",
            SortKey::Position => "position",
        }
    }
    pub(super) fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "title" => SortKey::Title,
            "value_cents" => SortKey::Value,
            "mrr_cents" => SortKey::Mrr,
            "tcv_cents" => SortKey::Tcv,
            "position" => SortKey::Position,
            _ => return None,
        })
    }
    pub(super) fn column(self) -> opportunity::Column {
        match self {
            SortKey::CreatedAt => opportunity::Column::CreatedAt,
            SortKey::UpdatedAt => opportunity::Column::UpdatedAt,
            SortKey::Title => opportunity::Column::TitleSort,
            SortKey::Value => opportunity::Column::ValueCents,
            SortKey::Mrr => opportunity::Column::MrrCents,
            SortKey::Tcv => opportunity::Column::TcvCents,
            SortKey::Position => opportunity::Column::Position,
        }
    }
    /// The list order of this sort, and its cursor: `(sort, value, id)`.
    pub fn keyset(self, descending: bool) -> Keyset<opportunity::Entity> {
        Keyset::new([self.column(), opportunity::Column::Id], descending).tagged(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OwnerFilter {
    Any,
    Unassigned,
    Is(Uuid),
}

#[derive(Debug, Clone)]
pub struct OppQuery {
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    pub owner: OwnerFilter,
    pub status: Vec<OpportunityStatus>,
    pub lead_id: Option<Uuid>,
    pub close_from: Option<NaiveDate>,
    pub close_to: Option<NaiveDate>,
    pub value_min: Option<i64>,
    pub value_max: Option<i64>,
    pub q: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: u64,
    pub cursor: Option<String>,
    pub include_total: bool,
}

/// Query parameters of `GET /api/pipelines/opportunities`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OppQueryDoc {
    pub pipeline_id: Option<Uuid>,
    pub stage_id: Option<Uuid>,
    /// A user id, `me`, or `none` (unassigned).
    pub owner_id: Option<String>,
    /// `open`, `won`, `lost`, or several separated by commas.
    pub status: Option<String>,
    pub lead_id: Option<Uuid>,
    /// Expected close date from (inclusive), `YYYY-MM-DD`.
    pub close_from: Option<NaiveDate>,
    /// Expected close date to (inclusive), `YYYY-MM-DD`.
    pub close_to: Option<NaiveDate>,
    /// Minimum `value_cents`.
    pub value_min: Option<i64>,
    /// Maximum `value_cents`.
    pub value_max: Option<i64>,
    /// Case- and accent-insensitive search in the title.
    pub q: Option<String>,
    /// `created_at`, `updated_at`, `title`, `value_cents`, `mrr_cents`, `tcv_cents` or `position`
    /// (stage order, with `stage_id`); prefix `-` for descending. Default `-created_at`.
    pub sort: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub include_total: Option<bool>,
}

pub(super) fn bad(field: &str, msg: &str) -> AppError {
    AppError::validation(vec![FieldError::new(field, "invalid_value", msg)])
}

pub(super) fn parse_uuid(field: &str, v: &str) -> AppResult<Uuid> {
    Uuid::parse_str(v).map_err(|_| bad(field, "Identificador inválido"))
}

pub(super) fn parse_date(field: &str, v: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad(field, "Use uma data AAAA-MM-DD"))
}

impl OppQuery {
    pub fn parse(raw: &str, ctx: &TenantCtx) -> AppResult<OppQuery> {
        let mut q = OppQuery {
            pipeline_id: None,
            stage_id: None,
            owner: OwnerFilter::Any,
            status: vec![],
            lead_id: None,
            close_from: None,
            close_to: None,
            value_min: None,
            value_max: None,
            q: None,
            sort: SortKey::CreatedAt,
            descending: true,
            limit: pagination::DEFAULT_LIMIT,
            cursor: None,
            include_total: false,
        };
        for (k, v) in query_pairs(raw)? {
            let v = v.trim().to_string();
            match k.as_str() {
                "pipeline_id" => q.pipeline_id = Some(parse_uuid("pipeline_id", &v)?),
                "stage_id" => q.stage_id = Some(parse_uuid("stage_id", &v)?),
                "lead_id" => q.lead_id = Some(parse_uuid("lead_id", &v)?),
                "owner_id" => {
                    q.owner = match v.as_str() {
                        "me" => OwnerFilter::Is(ctx.user_id),
                        "none" => OwnerFilter::Unassigned,
                        s => OwnerFilter::Is(
                            Uuid::parse_str(s)
                                .map_err(|_| bad("owner_id", "Use um id, me ou none"))?,
                        ),
                    }
                }
                "status" => {
                    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        q.status.push(
                            OpportunityStatus::parse(s)
                                .ok_or_else(|| bad("status", "Use open, won ou lost"))?,
                        );
                    }
                }
                "close_from" => q.close_from = Some(parse_date("close_from", &v)?),
                "close_to" => q.close_to = Some(parse_date("close_to", &v)?),
                "value_min" => {
                    q.value_min = Some(
                        v.parse()
                            .map_err(|_| bad("value_min", "Inteiro (centavos)"))?,
                    )
                }
                "value_max" => {
                    q.value_max = Some(
                        v.parse()
                            .map_err(|_| bad("value_max", "Inteiro (centavos)"))?,
                    )
                }
                "q" => {
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
                    q.sort = SortKey::parse(key).ok_or_else(|| {
                        bad(
                            "sort",
                            "Use created_at, updated_at, title, value_cents, mrr_cents, tcv_cents ou position",
                        )
                    })?;
                    q.descending = desc;
                }
                "limit" => {
                    q.limit = pagination::limit(Some(
                        v.parse().map_err(|_| bad("limit", "Número de 1 a 200"))?,
                    ))?
                }
                "cursor" => q.cursor = Some(v),
                "include_total" => q.include_total = query_bool("include_total", &v)?,
                _ => {}
            }
        }
        // An empty range (min > max, from > to) is an empty list, not an error.
        Ok(q)
    }
}

pub(super) fn filtered(ctx: &TenantCtx, q: &OppQuery) -> Select<opportunity::Entity> {
    let mut sel = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(ctx.tenant_id))
        .filter(opportunity::Column::DeletedAt.is_null());
    if !sees_all(ctx) {
        sel = sel.filter(opportunity::Column::OwnerId.eq(ctx.user_id));
    }
    match &q.owner {
        OwnerFilter::Any => {}
        OwnerFilter::Unassigned => sel = sel.filter(opportunity::Column::OwnerId.is_null()),
        OwnerFilter::Is(id) => sel = sel.filter(opportunity::Column::OwnerId.eq(*id)),
    }
    if let Some(p) = q.pipeline_id {
        sel = sel.filter(opportunity::Column::PipelineId.eq(p));
    }
    if let Some(s) = q.stage_id {
        sel = sel.filter(opportunity::Column::StageId.eq(s));
    }
    if let Some(l) = q.lead_id {
        sel = sel.filter(opportunity::Column::LeadId.eq(l));
    }
    if !q.status.is_empty() {
        sel = sel.filter(opportunity::Column::Status.is_in(q.status.iter().map(|s| s.as_str())));
    }
    if let Some(d) = q.close_from {
        sel = sel.filter(opportunity::Column::ExpectedCloseDate.gte(d));
    }
    if let Some(d) = q.close_to {
        sel = sel.filter(opportunity::Column::ExpectedCloseDate.lte(d));
    }
    if let Some(v) = q.value_min {
        sel = sel.filter(opportunity::Column::ValueCents.gte(v));
    }
    if let Some(v) = q.value_max {
        sel = sel.filter(opportunity::Column::ValueCents.lte(v));
    }
    if let Some(text) = &q.q {
        // Every word must appear in the folded title.
        let folded = jtcrm_types::br::fold_for_search(text);
        for word in folded.split_whitespace().take(6) {
            sel = sel.filter(Expr::col(opportunity::Column::TitleSort).like(sql::contains(word)));
        }
    }
    sel
}

pub async fn list(state: &AppState, ctx: &TenantCtx, q: &OppQuery) -> AppResult<Page<Opportunity>> {
    let page = q
        .sort
        .keyset(q.descending)
        .paginate(
            &state.db,
            filtered(ctx, q),
            q.cursor.as_deref(),
            q.limit,
            q.include_total,
        )
        .await?;
    Ok(page.map(|m| opportunity_dto(m, None)))
}
