//! Manual execution.

#[allow(unused_imports)]
use super::*;

/// `POST /api/automations/{id}/execute`: runs the automation now on one entity or on the leads of a
/// filter (conditions are checked, `changed` ones are not: there is no change). A dry run only
/// describes what each action would do.
pub async fn execute(
    state: &AppState,
    ctx: &Authorized<Managers>,
    id: Uuid,
    req: ExecuteRequest,
) -> AppResult<ExecuteResponse> {
    let p = Parsed::new(super::super::find(&state.db, ctx, id).await?);
    let etype = entity_type_of(&p.model.trigger_event).unwrap_or("lead");
    let dry_run = req.dry_run.unwrap_or(false);
    let ids: Vec<Uuid> = match (req.entity_id, &req.filter) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(AppError::validation(vec![FieldError::new(
                "entity_id",
                "required",
                "Informe entity_id ou filter (apenas um)",
            )]));
        }
        (Some(e), None) => vec![e],
        (None, Some(f)) => {
            if etype != "lead" {
                return Err(AppError::field(
                    "filter",
                    "not_supported",
                    "Filtros valem apenas para automações de leads; use entity_id",
                ));
            }
            let raw = super::super::filter_to_query(f)?;
            let defs = leads::fields::list_defs(&state.db, ctx.tenant_id).await?;
            let q =
                LeadQuery::parse(&raw, ctx, &defs).map_err(super::super::prefix_filter_errors)?;
            let ids =
                leads::search::filtered_ids(&state.db, ctx, &q, MAX_EXECUTE as u64 + 1).await?;
            if ids.len() > MAX_EXECUTE {
                return Err(AppError::field(
                    "filter",
                    "too_many",
                    &format!("O filtro encontra mais de {MAX_EXECUTE} leads; refine-o"),
                ));
            }
            ids
        }
    };
    let keys: Vec<(Uuid, Uuid)> = ids.iter().map(|i| (ctx.tenant_id, *i)).collect();
    let snaps = load_snapshots(&state.db, etype, &keys).await?;
    if let Some(e) = req.entity_id
        && !snaps.contains_key(&(ctx.tenant_id, e))
    {
        return Err(AppError::field(
            "entity_id",
            "unknown_entity",
            "Registro inexistente",
        ));
    }
    let mut met = vec![];
    let mut skipped = 0u64;
    for id in &ids {
        let Some(snap) = snaps.get(&(ctx.tenant_id, *id)) else {
            continue;
        };
        let ok = p
            .conditions
            .as_ref()
            .is_none_or(|c| conditions::evaluate(c, snap, &Changes::Manual));
        if ok {
            met.push(*id);
        } else {
            skipped += 1;
        }
    }
    let tz = ctx.tenant.settings.timezone.clone();
    let hours = business_hours::load(&state.db, ctx.tenant_id, &tz).await?;
    if dry_run {
        let mut previews = vec![];
        for id in ids
            .iter()
            .filter(|i| snaps.contains_key(&(ctx.tenant_id, **i)))
            .take(MAX_PREVIEWS)
        {
            let conditions_met = met.contains(id);
            let actions = if conditions_met {
                actions::preview(state, &p, etype, *id, &hours).await?
            } else {
                vec![]
            };
            previews.push(EntityPreview {
                entity_id: *id,
                conditions_met,
                actions,
            });
        }
        return Ok(ExecuteResponse {
            dry_run,
            matched: met.len() as u64,
            skipped,
            runs: vec![],
            previews: Some(previews),
        });
    }
    let items: Vec<(NewRun<'_>, Hours)> = met
        .iter()
        .map(|id| {
            (
                NewRun {
                    automation: &p,
                    event_id: None,
                    event_type: None,
                    entity_type: etype,
                    entity_id: *id,
                    depth: 1,
                },
                hours.clone(),
            )
        })
        .collect();
    let tx = state.begin().await?;
    let runs: Vec<Uuid> = start_runs(&*tx, &items)
        .await?
        .into_iter()
        .flatten()
        .collect();
    audit::record(
        &*tx,
        audit::Entry::tenant(
            ctx,
            "execute",
            "automation",
            id,
            json!({"runs": runs.len(), "skipped": skipped}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(ExecuteResponse {
        dry_run,
        matched: met.len() as u64,
        skipped,
        runs,
        previews: None,
    })
}
