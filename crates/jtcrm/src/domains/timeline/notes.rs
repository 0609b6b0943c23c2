//! Notes (Markdown) on leads and opportunities: written by anyone who can see the record, edited and
//! deleted by their author or an admin; each note is also a timeline entry.

use chrono::Utc;
use jtcrm_types::ErrorCode;
use jtcrm_types::dto::Role;
use jtcrm_types::dto::tasks::{Note, NoteInput};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::domains::leads;
use jtcrm_kernel::timeline::{self, kinds};

/// The `notes` table.
pub mod note {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "notes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub subject_type: String,
        pub subject_id: Uuid,
        pub lead_id: Option<Uuid>,
        pub body: String,
        pub author_id: Uuid,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub version: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::TenantCtx;
use jtcrm_kernel::http::guard::{Authorized, Staff};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store;

pub const MAX_NOTE: usize = 20_000;

fn to_dto(m: note::Model) -> Note {
    Note {
        id: m.id,
        subject_type: m.subject_type,
        subject_id: m.subject_id,
        body: m.body,
        author_id: m.author_id,
        created_at: m.created_at,
        updated_at: m.updated_at,
        version: m.version,
    }
}

fn excerpt(body: &str) -> String {
    let line: String = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(140)
        .collect();
    format!("Nota: {line}")
}

fn body_of(input: &NoteInput) -> AppResult<String> {
    let mut v = Validator::new();
    let b = v.required_text("body", input.body.as_deref(), MAX_NOTE);
    v.finish()?;
    b.ok_or_else(|| AppError::bad_request("body"))
}

/// Inserts a note on a lead or an opportunity (`lead_id` is the lead the timeline rolls up to).
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    lead_id: Option<Uuid>,
    opportunity_id: Option<Uuid>,
    body: &str,
) -> AppResult<note::Model> {
    let (subject_type, subject_id) = match (opportunity_id, lead_id) {
        (Some(o), _) => ("opportunity", o),
        (None, Some(l)) => ("lead", l),
        (None, None) => return Err(AppError::bad_request("nota sem lead ou oportunidade")),
    };
    let now = Utc::now();
    let m = note::Entity::insert(note::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(Uuid::now_v7()),
        subject_type: Set(subject_type.into()),
        subject_id: Set(subject_id),
        lead_id: Set(lead_id),
        body: Set(body.to_string()),
        author_id: Set(ctx.user_id),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        version: Set(1),
    })
    .exec_with_returning(conn)
    .await?;
    timeline::record(
        conn,
        timeline::NewEntry {
            tenant_id: ctx.tenant_id,
            lead_id,
            opportunity_id,
            kind: kinds::NOTE,
            actor_id: Some(ctx.user_id),
            summary: excerpt(body),
            data: json!({"note_id": m.id, "body": body}),
            reference: Some(("note", m.id)),
        },
    )
    .await?;
    Ok(m)
}

pub async fn create_on_lead(
    state: &AppState,
    ctx: &Authorized<Staff>,
    lead_id: Uuid,
    input: NoteInput,
) -> AppResult<Note> {
    let body = body_of(&input)?;
    let txn = state.begin().await?;
    leads::service::find_visible(&*txn, ctx, lead_id, false).await?;
    let m = insert(&*txn, ctx, Some(lead_id), None, &body).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "note",
            m.id,
            json!({"subject": {"from": null, "to": format!("lead:{lead_id}")}}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(m))
}

pub async fn create_on_opportunity(
    state: &AppState,
    ctx: &Authorized<Staff>,
    opportunity_id: Uuid,
    input: NoteInput,
) -> AppResult<Note> {
    let body = body_of(&input)?;
    let txn = state.begin().await?;
    let opp =
        crate::domains::pipelines::opportunities::find_visible(&*txn, ctx, opportunity_id, false)
            .await?;
    let m = insert(&*txn, ctx, opp.lead_id, Some(opportunity_id), &body).await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "create",
            "note",
            m.id,
            json!({"subject": {"from": null, "to": format!("opportunity:{opportunity_id}")}}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(m))
}

/// A note the caller can see (its subject is visible to it).
async fn find<C: ConnectionTrait>(conn: &C, ctx: &TenantCtx, id: Uuid) -> AppResult<note::Model> {
    use sea_orm::ColumnTrait;
    let m = note::Entity::find_by_id((ctx.tenant_id, id))
        .filter(note::Column::DeletedAt.is_null())
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    if let Some(l) = m.lead_id
        && m.subject_type == "lead"
    {
        leads::service::find_visible(conn, ctx, l, true).await?;
    }
    if m.subject_type == "opportunity" {
        crate::domains::pipelines::opportunities::find_visible(conn, ctx, m.subject_id, false)
            .await?;
    }
    Ok(m)
}

fn can_edit(ctx: &TenantCtx, m: &note::Model) -> AppResult<()> {
    if m.author_id == ctx.user_id || ctx.role == Role::Admin {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorCode::Forbidden,
            "Apenas o autor ou um administrador altera esta nota.",
        ))
    }
}

pub async fn update(
    state: &AppState,
    ctx: &TenantCtx,
    id: Uuid,
    if_match: Option<i32>,
    input: NoteInput,
) -> AppResult<Note> {
    let body = body_of(&input)?;
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx, id).await?;
    can_edit(ctx, &cur)?;
    if if_match.is_some_and(|v| v != cur.version) {
        return Err(AppError::stale_version());
    }
    let version = cur.version;
    let old = cur.body.clone();
    let mut m = cur.into_active_model();
    m.body = Set(body.clone());
    m.updated_at = Set(Utc::now());
    m.version = Set(version + 1);
    let saved = crate::domains::optimistic_update::<note::Entity, _>(
        &*txn,
        m,
        note::Column::Version,
        version,
    )
    .await?;
    timeline::update_ref(
        &*txn,
        ctx.tenant_id,
        "note",
        id,
        excerpt(&body),
        json!({"note_id": id, "body": body, "edited": true}),
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            "update",
            "note",
            id,
            json!({"body": {"from": old, "to": body}}),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(to_dto(saved))
}

pub async fn delete(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<()> {
    let txn = state.begin().await?;
    let cur = find(&*txn, ctx, id).await?;
    can_edit(ctx, &cur)?;
    timeline::delete_ref(&*txn, ctx.tenant_id, "note", id).await?;
    store::soft_delete::<note::Entity>(txn, ctx, "note", cur, |_| {}).await
}
