//! Moves, won, lost, reopen.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone)]
pub enum Transition {
    Move {
        stage_id: Option<Uuid>,
        anchor: Anchor,
        lost_reason: Option<String>,
    },
    Won,
    Lost(String),
    Reopen,
}

impl Transition {
    pub(super) fn action(&self) -> &'static str {
        match self {
            Transition::Move { .. } => "move",
            Transition::Won => "won",
            Transition::Lost(_) => "lost",
            Transition::Reopen => "reopen",
        }
    }
}

pub(super) fn already(status: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidStateTransition,
        format!("A oportunidade já está com status '{status}'."),
    )
    .with_context(json!({"status": status}))
}

/// The stage a transition goes to, from the deal as last read.
pub(super) async fn transition_target<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantCtx,
    opp: &opportunity::Model,
    tr: &Transition,
) -> AppResult<stage::Model> {
    let t = ctx.tenant_id;
    if let Transition::Move { stage_id, .. } = tr {
        return find_stage_ref(conn, t, stage_id.unwrap_or(opp.stage_id), "stage_id").await;
    }
    let stages = stages_of(conn, t, opp.pipeline_id).await?;
    let current = stages.iter().find(|s| s.id == opp.stage_id);
    let pick = match tr {
        Transition::Won => stages.iter().find(|s| stage_kind(s) == StageKind::Won),
        Transition::Lost(_) => stages.iter().find(|s| stage_kind(s) == StageKind::Lost),
        _ => {
            // Back to the open stage the deal was closed from, if it still exists.
            let last_close = history::Entity::find()
                .filter(history::Column::TenantId.eq(t))
                .filter(history::Column::OpportunityId.eq(opp.id))
                .filter(history::Column::FromStatus.eq("open"))
                .filter(history::Column::ToStatus.ne("open"))
                .order_by_desc(history::Column::Id)
                .one(conn)
                .await?;
            let back = last_close
                .and_then(|h| h.from_stage_id)
                .and_then(|sid| stages.iter().find(|s| s.id == sid))
                .filter(|s| stage_kind(s) == StageKind::Open);
            back.or(current.filter(|s| stage_kind(s) == StageKind::Open))
                .or_else(|| first_open(&stages))
        }
    };
    pick.or(current).cloned().ok_or_else(AppError::not_found)
}

/// Moves, wins, loses or reopens a deal under the locks of its old and new stage.
pub async fn transition(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    id: Uuid,
    tr: Transition,
) -> AppResult<Opportunity> {
    if let Transition::Move { anchor, .. } = &tr
        && matches!(anchor, Anchor::Before(x) | Anchor::After(x) if *x == id)
    {
        let field = if matches!(anchor, Anchor::Before(_)) {
            "before_id"
        } else {
            "after_id"
        };
        return Err(AppError::field(
            field,
            "same_card",
            "Use outro cartão como referência",
        ));
    }
    let txn = state.begin().await?;
    let first = find_visible(&*txn, ctx, id, false).await?;
    let target = transition_target(&*txn, ctx, &first, &tr).await?;
    let rows = board::lock_stages(&*txn, ctx.tenant_id, &[first.stage_id, target.id]).await?;
    let target = board::locked(&rows, target.id, "stage_id")?;
    // Fresh, locked: a concurrent change of this deal either finished before or waits for us.
    let current = find_visible(&*txn, ctx, id, true).await?;
    let cur_status = OpportunityStatus::parse(&current.status).unwrap_or(OpportunityStatus::Open);
    if current.stage_id != first.stage_id && !matches!(tr, Transition::Move { .. }) {
        // Moved by someone else between our read and our lock; its target may differ now. Taking
        // more stage locks out of order could deadlock, so the client retries.
        return Err(AppError::new(
            ErrorCode::ConcurrentUpdate,
            "A oportunidade acabou de ser movida por outra pessoa; tente novamente.",
        ));
    }
    let status = match &tr {
        Transition::Won if cur_status == OpportunityStatus::Won => return Err(already("won")),
        Transition::Lost(_) if cur_status == OpportunityStatus::Lost => {
            return Err(already("lost"));
        }
        Transition::Reopen if cur_status == OpportunityStatus::Open => {
            return Err(already("open"));
        }
        Transition::Won => OpportunityStatus::Won,
        Transition::Lost(_) => OpportunityStatus::Lost,
        Transition::Reopen => OpportunityStatus::Open,
        Transition::Move { .. } => status_for(stage_kind(&target)),
    };
    let lost_reason = match (&tr, status) {
        (Transition::Lost(r), _) => Some(r.clone()),
        (
            Transition::Move {
                lost_reason: Some(r),
                ..
            },
            OpportunityStatus::Lost,
        ) => Some(r.clone()),
        (_, OpportunityStatus::Lost) => current.lost_reason.clone(),
        _ => None,
    };
    if status == OpportunityStatus::Lost && lost_reason.is_none() {
        return Err(AppError::field(
            "lost_reason",
            "required",
            "Informe o motivo da perda para mover para uma etapa de perda",
        ));
    }
    let stage_changed = target.id != current.stage_id;
    let position = match &tr {
        Transition::Move { anchor, .. } => board::place(&*txn, ctx, target.id, id, *anchor).await?,
        _ if stage_changed => board::place(&*txn, ctx, target.id, id, Anchor::Top).await?,
        _ => current.position,
    };
    if !stage_changed && status == cur_status && position == current.position {
        let items = items_of(&*txn, ctx.tenant_id, id).await?;
        return Ok(opportunity_dto(current, Some(items)));
    }
    let from_stage =
        super::super::service::find_stage(&*txn, ctx.tenant_id, current.stage_id).await?;
    let now = Utc::now();
    let version = current.version;
    let from_entered = current.stage_entered_at;
    let before = json!({"stage_id": current.stage_id, "status": current.status, "position": current.position});
    let mut am = current.clone().into_active_model();
    am.pipeline_id = Set(target.pipeline_id);
    am.stage_id = Set(target.id);
    am.position = Set(position);
    am.status = Set(status.as_str().to_string());
    am.lost_reason = Set(lost_reason);
    if stage_changed {
        am.stage_entered_at = Set(now);
        if !current.probability_overridden {
            am.probability = Set(target.probability);
        }
    }
    if status != cur_status {
        am.closed_at = Set((status != OpportunityStatus::Open).then_some(now));
    }
    am.updated_at = Set(now);
    am.version = Set(version + 1);
    let updated = crate::domains::optimistic_update::<opportunity::Entity, _>(
        &*txn,
        am,
        opportunity::Column::Version,
        version,
    )
    .await?;
    if stage_changed || status != cur_status {
        record_history(
            &*txn,
            ctx,
            &updated,
            Some((&from_stage, from_entered)),
            Some(cur_status.as_str()),
            &target,
            event_for(cur_status, status),
            now,
        )
        .await?;
    }
    let after = json!({"stage_id": updated.stage_id, "status": updated.status, "position": updated.position});
    audit::record(
        &*txn,
        audit::Entry::tenant(
            ctx,
            tr.action(),
            "opportunity",
            id,
            audit::diff(&before, &after),
        ),
    )
    .await?;
    let items = items_of(&*txn, ctx.tenant_id, id).await?;
    txn.commit().await?;
    Ok(opportunity_dto(updated, Some(items)))
}
