//! The timeline: one chronological feed per lead and per opportunity. Every domain writes entries
//! with [`record`] in the transaction of its own change (a note, a task completed, a stage change, a
//! call…), like the audit log and the events outbox; the feed is then a single indexed query, and a
//! new module adds entry kinds without touching this one. The `timeline` domain of `jtcrm` serves
//! the feed over HTTP (after checking the subject is visible) and owns notes.

use chrono::{DateTime, Utc};
use jtcrm_types::FieldError;
use jtcrm_types::dto::Page;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

use crate::http::pagination::{self, Keyset};

pub mod model {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "timeline_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub lead_id: Option<Uuid>,
        pub opportunity_id: Option<Uuid>,
        pub kind: String,
        pub occurred_at: DateTimeUtc,
        pub actor_id: Option<Uuid>,
        pub summary: String,
        pub data: Json,
        pub ref_type: Option<String>,
        pub ref_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Entry kinds written by this codebase today; other modules may add their own strings.
pub mod kinds {
    pub const LEAD_CREATED: &str = "lead_created";
    pub const LEAD_STATUS_CHANGED: &str = "lead_status_changed";
    pub const LEAD_CONVERTED: &str = "lead_converted";
    pub const NOTE: &str = "note";
    pub const TASK_CREATED: &str = "task_created";
    pub const TASK_COMPLETED: &str = "task_completed";
    pub const TASK_RESCHEDULED: &str = "task_rescheduled";
    pub const OPPORTUNITY_STAGE_CHANGED: &str = "opportunity_stage_changed";
    pub const OPPORTUNITY_WON: &str = "opportunity_won";
    pub const OPPORTUNITY_LOST: &str = "opportunity_lost";
}

/// A new entry. An entry about an opportunity should also carry its `lead_id`, so the lead's
/// timeline shows it.
pub struct NewEntry<'a> {
    pub tenant_id: Uuid,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    pub kind: &'a str,
    pub actor_id: Option<Uuid>,
    /// Short pt-BR text, e.g. "Tarefa concluída: Ligar para o cliente".
    pub summary: String,
    pub data: Value,
    pub reference: Option<(&'a str, Uuid)>,
}

fn row(e: NewEntry<'_>) -> model::ActiveModel {
    model::ActiveModel {
        tenant_id: Set(e.tenant_id),
        id: Set(Uuid::now_v7()),
        lead_id: Set(e.lead_id),
        opportunity_id: Set(e.opportunity_id),
        kind: Set(e.kind.to_string()),
        occurred_at: Set(Utc::now()),
        actor_id: Set(e.actor_id),
        summary: Set(e.summary.chars().take(300).collect()),
        data: Set(e.data),
        ref_type: Set(e.reference.map(|r| r.0.to_string())),
        ref_id: Set(e.reference.map(|r| r.1)),
    }
}

pub async fn record<C: ConnectionTrait>(conn: &C, e: NewEntry<'_>) -> AppResult<Uuid> {
    let am = row(e);
    let id = am.id.clone().unwrap();
    model::Entity::insert(am)
        .exec_without_returning(conn)
        .await?;
    Ok(id)
}

/// Many entries in multi-row INSERTs (bulk paths such as the CSV import).
pub async fn record_many<C: ConnectionTrait>(conn: &C, es: Vec<NewEntry<'_>>) -> AppResult<()> {
    crate::db::insert_all(conn, es.into_iter().map(row).collect()).await?;
    Ok(())
}

/// Rewrites the summary and data of the entries of a referenced record (e.g. an edited note).
pub async fn update_ref<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ref_type: &str,
    ref_id: Uuid,
    summary: String,
    data: Value,
) -> AppResult<()> {
    model::Entity::update_many()
        .col_expr(
            model::Column::Summary,
            Expr::value(summary.chars().take(300).collect::<String>()),
        )
        .col_expr(model::Column::Data, Expr::value(data))
        .filter(model::Column::TenantId.eq(tenant_id))
        .filter(model::Column::RefType.eq(ref_type))
        .filter(model::Column::RefId.eq(ref_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn delete_ref<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    ref_type: &str,
    ref_id: Uuid,
) -> AppResult<()> {
    model::Entity::delete_many()
        .filter(model::Column::TenantId.eq(tenant_id))
        .filter(model::Column::RefType.eq(ref_type))
        .filter(model::Column::RefId.eq(ref_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Moves the entries of an opportunity under a lead (conversions, merges).
pub async fn relink_lead<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    from: Uuid,
    to: Uuid,
) -> AppResult<()> {
    model::Entity::update_many()
        .col_expr(model::Column::LeadId, Expr::value(to))
        .filter(model::Column::TenantId.eq(tenant_id))
        .filter(model::Column::LeadId.eq(from))
        .exec(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub id: Uuid,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// The user who acted (`null` for the system or an automation).
    pub actor: Option<Uuid>,
    pub summary: String,
    pub lead_id: Option<Uuid>,
    pub opportunity_id: Option<Uuid>,
    pub data: Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Only these kinds, separated by commas (e.g. `note,task_completed`).
    pub kind: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub enum Subject {
    Lead(Uuid),
    Opportunity(Uuid),
}

/// The feed of a subject, newest first, keyset-paginated on `(occurred_at, id)`.
pub async fn feed<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    subject: Subject,
    q: &TimelineQuery,
) -> AppResult<Page<TimelineEntry>> {
    let limit = pagination::limit(q.limit)?;
    let mut sel = model::Entity::find().filter(model::Column::TenantId.eq(tenant_id));
    sel = match subject {
        Subject::Lead(id) => sel.filter(model::Column::LeadId.eq(id)),
        Subject::Opportunity(id) => sel.filter(model::Column::OpportunityId.eq(id)),
    };
    if let Some(k) = q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        let kinds: Vec<String> = k
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if kinds.iter().any(|k| k.len() > 40) {
            return Err(AppError::validation(vec![FieldError::new(
                "kind",
                "invalid_value",
                "Tipo inválido",
            )]));
        }
        sel = sel.filter(model::Column::Kind.is_in(kinds));
    }
    let page = Keyset::desc([model::Column::OccurredAt, model::Column::Id])
        .paginate(conn, sel, q.cursor.as_deref(), limit, false)
        .await?;
    Ok(page.map(|r| TimelineEntry {
        id: r.id,
        kind: r.kind,
        occurred_at: r.occurred_at,
        actor: r.actor_id,
        summary: r.summary,
        lead_id: r.lead_id,
        opportunity_id: r.opportunity_id,
        data: r.data,
    }))
}
