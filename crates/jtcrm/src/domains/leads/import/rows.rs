//! One batch of rows: validation, owner resolution, the dedupe policy (skip, update, create) and
//! the writes, with per-row errors.

use super::*;

pub(super) const NUL_IN_CELL: &str = "A célula contém o caractere nulo (U+0000), que não é aceito";

/// A row after parsing and validation, before any write.
pub(super) enum Prepared {
    Invalid(Vec<(String, String)>),
    Ready {
        /// The row as a patch (dedupe `update`).
        input: Box<LeadInput>,
        /// The row as a new lead.
        draft: Box<LeadDraft>,
    },
}

pub(super) async fn resolve_owner<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    cache: &mut HashMap<String, Option<Uuid>>,
    raw: &str,
) -> AppResult<Option<Uuid>> {
    let key = raw.trim().to_lowercase();
    if let Some(v) = cache.get(&key) {
        return Ok(*v);
    }
    let found = users::service::find_active_by_id_or_email(conn, tenant_id, &key)
        .await?
        .map(|u| u.id);
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(key, found);
    Ok(found)
}

pub(super) fn dedupe_keys(d: &LeadDraft) -> impl Iterator<Item = (&'static str, &String)> {
    [("email", &d.email), ("cnpj", &d.cnpj), ("phone", &d.phone)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
}

pub(super) fn key_column(key: &str) -> lead::Column {
    match key {
        "email" => lead::Column::Email,
        "cnpj" => lead::Column::Cnpj,
        _ => lead::Column::Phone,
    }
}

/// Loads the live leads matching any dedupe key of the batch: one indexed `IN` query per key kind
/// instead of up to three lookups per row. Several leads on one key: the oldest wins, like
/// [`service::find_duplicate`].
pub(super) async fn prefetch_keys<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    prepared: &[Prepared],
    keys: &mut HashMap<(&'static str, String), Option<Uuid>>,
) -> AppResult<()> {
    for kind in ["email", "cnpj", "phone"] {
        let mut values: Vec<&String> = prepared
            .iter()
            .filter_map(|p| match p {
                Prepared::Ready { draft, .. } => {
                    dedupe_keys(draft).find(|(k, _)| *k == kind).map(|(_, v)| v)
                }
                Prepared::Invalid(_) => None,
            })
            .collect();
        values.sort_unstable();
        values.dedup();
        for chunk in values.chunks(500) {
            let col = key_column(kind);
            let found: Vec<(Uuid, Option<String>)> = lead::Entity::find()
                .select_only()
                .column(lead::Column::Id)
                .column(col)
                .filter(lead::Column::TenantId.eq(tenant_id))
                .filter(col.is_in(chunk.iter().map(|v| v.as_str())))
                .filter(lead::Column::DeletedAt.is_null())
                .into_tuple()
                .all(conn)
                .await?;
            for (id, value) in found {
                let Some(value) = value else { continue };
                let slot = keys.entry((kind, value)).or_insert(Some(id));
                if slot.is_some_and(|old| id < old) {
                    *slot = Some(id);
                }
            }
        }
    }
    Ok(())
}

/// The first dedupe key of `d` already taken (e-mail, then CNPJ, then phone): its kind and the
/// lead holding it (`None` = a create pending in this batch).
pub(super) fn known_duplicate(
    keys: &HashMap<(&'static str, String), Option<Uuid>>,
    d: &LeadDraft,
) -> Option<(&'static str, Option<Uuid>)> {
    dedupe_keys(d).find_map(|(k, v)| keys.get(&(k, v.clone())).map(|id| (k, *id)))
}

pub(super) fn remember_keys(
    keys: &mut HashMap<(&'static str, String), Option<Uuid>>,
    d: &LeadDraft,
    id: Option<Uuid>,
) {
    for (k, v) in dedupe_keys(d) {
        let slot = keys.entry((k, v.clone())).or_insert(id);
        if slot.is_none() {
            *slot = id;
        }
    }
}

pub(super) fn audit_lead<'a>(
    ctx: &'a TenantCtx,
    action: &'a str,
    id: Uuid,
    changes: Value,
) -> audit::Entry<'a> {
    audit::Entry::tenant(ctx, action, "lead", id, changes)
}

/// Parses, resolves the owner and validates one row: no writes.
pub(super) async fn prepare<C: ConnectionTrait>(
    conn: &C,
    env: &Env<'_>,
    st: &mut RowState,
    row: &Row,
) -> AppResult<Prepared> {
    let ctx = env.ctx;
    let invalid =
        |field: &str, message: &str| Ok(Prepared::Invalid(vec![(field.into(), message.into())]));
    // A cell with U+0000 cannot be stored on PostgreSQL: the row is refused (decision, see
    // docs/leads-import-export.md), on every backend. Unmapped columns are never read.
    let nul: Vec<(String, String)> = env
        .cols
        .iter()
        .zip(&row.cells)
        .filter_map(|(t, cell)| t.as_ref().filter(|_| cell.contains('\0')))
        .map(|t| (t.name(), NUL_IN_CELL.to_string()))
        .collect();
    if !nul.is_empty() {
        return Ok(Prepared::Invalid(nul));
    }
    let (mut input, owner_raw) = row_input(env.cols, &row.cells);
    if let Some(raw) = &owner_raw {
        match resolve_owner(conn, ctx.tenant_id, &mut st.owners, raw).await? {
            Some(o) if o != ctx.user_id && !service::can_reassign(ctx) => {
                return invalid("owner", "Apenas gestores atribuem leads a outros usuários");
            }
            Some(o) => input.owner_id = Some(Some(o)),
            None => return invalid("owner", "Usuário responsável inexistente ou inativo"),
        }
    }
    let mut create_input = input.clone();
    if create_input.source.is_none() {
        create_input.source = Some(Some("import".to_string()));
    }
    let mut v = Validator::new();
    let draft = super::super::validate(&mut v, &create_input, None, WriteMode::Create, env.defs);
    if !v.errors.is_empty() {
        return Ok(Prepared::Invalid(
            v.errors.into_iter().map(|e| (e.field, e.message)).collect(),
        ));
    }
    let Some(draft) = draft else {
        return invalid("name", "Campo obrigatório");
    };
    Ok(Prepared::Ready {
        input: Box::new(input),
        draft: Box::new(draft),
    })
}

/// A row to create: counted (dry run), queued for the batch's bulk write, or written now
/// (row-by-row mode, which stops at the row that hits the plan's limit).
pub(super) async fn create_row<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    env: &Env<'_>,
    st: &mut RowState,
    p: &mut Progress,
    line: u64,
    draft: LeadDraft,
    bulk: bool,
) -> AppResult<Option<String>> {
    if env.dry_run {
        match &mut st.quota {
            Some(0) => {
                if !st.quota_reported {
                    st.quota_reported = true;
                    p.error(line, "limit", "O limite de leads do plano seria atingido nesta linha; as linhas seguintes não seriam criadas.");
                }
            }
            Some(n) => {
                *n -= 1;
                p.created += 1;
            }
            None => p.created += 1,
        }
        return Ok(None);
    }
    if bulk {
        remember_keys(&mut st.keys, &draft, None);
        st.pending.push((line, draft));
        return Ok(None);
    }
    let keys_of = draft.clone();
    // A savepoint: a lead refused by the plan's limit leaves none of its rows behind.
    let sp = conn.begin().await?;
    let res = service::insert_lead(&sp, env.ctx, draft, env.scorer).await;
    if res.is_ok() {
        sp.commit().await?;
    } else {
        sp.rollback().await?;
    }
    match res {
        Ok(m) => {
            let id = m.id;
            remember_keys(&mut st.keys, &keys_of, Some(id));
            let body = serde_json::to_value(lead_dto(m)).map_err(AppError::internal)?;
            audit::record(
                conn,
                audit_lead(env.ctx, "create", id, audit::diff(&json!({}), &body)),
            )
            .await?;
            p.created += 1;
            Ok(None)
        }
        Err(e) if e.code == ErrorCode::PlanLimitExceeded => Ok(Some(e.detail)),
        Err(e) => Err(e),
    }
}

/// Writes the batch's pending creates in multi-row INSERTs. `false` when they do not fit in the
/// plan (nothing written).
pub(super) async fn flush<C: ConnectionTrait>(
    conn: &C,
    env: &Env<'_>,
    st: &mut RowState,
    p: &mut Progress,
) -> AppResult<bool> {
    if st.pending.is_empty() {
        return Ok(true);
    }
    let pending = std::mem::take(&mut st.pending);
    let drafts: Vec<LeadDraft> = pending.into_iter().map(|(_, d)| d).collect();
    let models = match service::insert_leads_bulk(conn, env.ctx, drafts, env.scorer).await {
        Ok(m) => m,
        Err(e) if e.code == ErrorCode::PlanLimitExceeded => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut audits = Vec::with_capacity(models.len());
    for m in models {
        let id = m.id;
        for (k, v) in [("email", &m.email), ("cnpj", &m.cnpj), ("phone", &m.phone)] {
            if let Some(v) = v {
                st.keys.insert((k, v.clone()), Some(id));
            }
        }
        let body = serde_json::to_value(lead_dto(m)).map_err(AppError::internal)?;
        audits.push(audit_lead(
            env.ctx,
            "create",
            id,
            audit::diff(&json!({}), &body),
        ));
        p.created += 1;
    }
    audit::record_many(conn, audits).await?;
    Ok(true)
}

/// dedupe=update: PATCHes the existing lead with the columns present in the file.
pub(super) async fn update_row<C: ConnectionTrait>(
    conn: &C,
    env: &Env<'_>,
    st: &mut RowState,
    p: &mut Progress,
    line: u64,
    input: &LeadInput,
    (existing_id, on): (Uuid, &'static str),
) -> AppResult<()> {
    let ctx = env.ctx;
    let existing = lead::Entity::find_by_id((ctx.tenant_id, existing_id))
        .one(conn)
        .await?;
    let Some(existing) = existing.filter(|m| visibility::visible_to(ctx, m.owner_id)) else {
        p.error(
            line,
            on,
            "Já existe um lead com este valor que você não pode editar",
        );
        return Ok(());
    };
    let before = LeadDraft::from_model(&existing);
    let mut v = Validator::new();
    let patched = super::super::validate(&mut v, input, Some(&before), WriteMode::Patch, env.defs);
    let Some(patched) = patched.filter(|_| v.errors.is_empty()) else {
        for e in v.errors {
            p.error(line, &e.field, &e.message);
        }
        return Ok(());
    };
    if patched.owner_id != before.owner_id && !service::can_reassign(ctx) {
        p.error(line, "owner", "Apenas gestores reatribuem leads");
        return Ok(());
    }
    if patched == before {
        // Nothing to change: counted as skipped, so re-running an update import changes nothing.
        p.skipped += 1;
        return Ok(());
    }
    if !env.dry_run {
        let before_dto =
            serde_json::to_value(lead_dto(existing.clone())).map_err(AppError::internal)?;
        let saved = service::save_draft(conn, ctx, existing, &patched, env.scorer).await?;
        let after = serde_json::to_value(lead_dto(saved)).map_err(AppError::internal)?;
        audit::record(
            conn,
            audit_lead(ctx, "update", existing_id, audit::diff(&before_dto, &after)),
        )
        .await?;
        remember_keys(&mut st.keys, &patched, Some(existing_id));
    }
    p.updated += 1;
    Ok(())
}

/// Applies one batch inside the caller's transaction. In bulk mode the creates are written
/// together at the end; otherwise each is written at its row.
pub(super) async fn process_batch<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    env: &Env<'_>,
    st: &mut RowState,
    p: &mut Progress,
    batch: &[Row],
    bulk: bool,
) -> AppResult<BatchEnd> {
    st.pending.clear();
    st.keys.clear();
    let errors_before = p.errors.len();
    let mut prepared = Vec::with_capacity(batch.len());
    for row in batch {
        prepared.push(prepare(conn, env, st, row).await?);
    }
    if env.dedupe != DedupePolicy::Create {
        prefetch_keys(conn, env.ctx.tenant_id, &prepared, &mut st.keys).await?;
    }
    let mut end = BatchEnd::Done;
    for (row, prep) in batch.iter().zip(prepared) {
        p.rows_done += 1;
        let (input, draft) = match prep {
            Prepared::Invalid(errors) => {
                for (field, message) in errors {
                    p.error(row.line, &field, &message);
                }
                continue;
            }
            Prepared::Ready { input, draft } => (input, draft),
        };
        let dup = if env.dedupe == DedupePolicy::Create {
            None
        } else {
            known_duplicate(&st.keys, &draft)
        };
        let found = match dup {
            None => {
                if let Some(msg) = create_row(conn, env, st, p, row.line, *draft, bulk).await? {
                    end = BatchEnd::Limit(format!(
                        "{msg} Importação interrompida na linha {}; as linhas anteriores foram processadas.",
                        row.line
                    ));
                    break;
                }
                continue;
            }
            Some(_) if env.dedupe == DedupePolicy::Skip => {
                p.skipped += 1;
                continue;
            }
            Some((on, Some(id))) => (id, on),
            Some((on, None)) => {
                // dedupe=update on a row created earlier in this batch: write the pending creates
                // first, then patch the one just created.
                if !flush(conn, env, st, p).await? {
                    return Ok(BatchEnd::Redo);
                }
                match known_duplicate(&st.keys, &draft) {
                    Some((_, Some(id))) => (id, on),
                    _ => return Err(AppError::internal_msg("import: pending lead not written")),
                }
            }
        };
        update_row(conn, env, st, p, row.line, &input, found).await?;
    }
    if matches!(end, BatchEnd::Done) && !flush(conn, env, st, p).await? {
        return Ok(BatchEnd::Redo);
    }
    // Errors in file order (the bulk write reports nothing per row, but keep the promise anyway).
    p.errors[errors_before..].sort_by_key(|e| e.row);
    Ok(end)
}
