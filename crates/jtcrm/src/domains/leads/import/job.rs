//! The `leads.import` job: analyse the stored file, then process it in batches (dedupe policy,
//! validation, per-row errors, progress), resumable after a crash.

use super::*;

// ---------- the job ----------

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Payload {
    pub(super) tenant_id: Uuid,
    pub(super) import_id: Uuid,
}

/// How the job stops early: `Fail` ends the import as `failed` with a message for the user; `Job`
/// hands the error to the queue (retried unless permanent).
pub(super) enum Halt {
    Fail(String),
    Job(JobError),
}

impl From<AppError> for Halt {
    fn from(e: AppError) -> Self {
        Halt::Job(e.into())
    }
}

impl From<sea_orm::DbErr> for Halt {
    fn from(e: sea_orm::DbErr) -> Self {
        Halt::Job(e.into())
    }
}

/// Counters and errors as committed with the last batch.
#[derive(Debug, Clone)]
pub(super) struct Progress {
    pub(super) rows_done: i64,
    pub(super) created: i64,
    pub(super) updated: i64,
    pub(super) skipped: i64,
    pub(super) error_count: i64,
    pub(super) errors: Vec<ImportRowError>,
}

impl Progress {
    pub(super) fn of(m: &import::Model) -> Self {
        Self {
            rows_done: m.rows_done,
            created: m.created,
            updated: m.updated,
            skipped: m.skipped,
            error_count: m.error_count,
            errors: serde_json::from_value(m.errors.clone()).unwrap_or_default(),
        }
    }

    pub(super) fn error(&mut self, row: u64, field: &str, message: &str) {
        self.error_count += 1;
        if self.errors.len() < MAX_STORED_ERRORS {
            self.errors.push(ImportRowError {
                row,
                field: field.to_string(),
                message: message.to_string(),
            });
        }
    }
}

/// What stays the same for every row of one run.
pub(super) struct Env<'a> {
    pub(super) ctx: &'a TenantCtx,
    pub(super) defs: &'a [CustomFieldDef],
    pub(super) cols: &'a [Option<Target>],
    pub(super) scorer: &'a Scorer,
    pub(super) dedupe: DedupePolicy,
    pub(super) dry_run: bool,
}

/// What changes from row to row besides the progress.
pub(super) struct RowState {
    pub(super) owners: HashMap<String, Option<Uuid>>,
    /// Dry runs: lead slots left in the plan (`None` = unlimited) and whether the hit was reported.
    pub(super) quota: Option<i64>,
    pub(super) quota_reported: bool,
    /// Rows validated for creation, written together when the batch ends ([`flush`]).
    pub(super) pending: Vec<(u64, LeadDraft)>,
    /// The batch's dedupe keys (`("email", value)`…): live leads of the tenant (`Some(id)`, fetched
    /// for the whole batch at once, plus the leads this batch created or updated) and pending
    /// creates (`None`).
    pub(super) keys: HashMap<(&'static str, String), Option<Uuid>>,
}

/// How a batch ended.
pub(super) enum BatchEnd {
    Done,
    /// The plan's lead limit stopped the import at this row (row-by-row mode).
    Limit(String),
    /// The batch's creates do not fit in the plan all together (bulk mode): the caller rolls back
    /// and goes again one row at a time to stop exactly at the row that hits the limit.
    Redo,
}

/// The file line of the `done`-th row of the batch (1-based), for the limit error.
pub(super) fn next_line(batch: &[Row], done: i64) -> u64 {
    batch.get((done.max(1) - 1) as usize).map_or(0, |r| r.line)
}

/// Writes the progress of a batch, only if the import is still `running` at the progress this run
/// started the batch from (otherwise another run owns it: `false`).
pub(super) async fn save_progress<C: ConnectionTrait>(
    conn: &C,
    key: (Uuid, Uuid),
    expected_done: i64,
    p: &Progress,
    terminal: Option<(ImportStatus, String)>,
) -> AppResult<bool> {
    use import::Column as C;
    let now = Utc::now();
    let errors = serde_json::to_value(&p.errors).map_err(AppError::internal)?;
    let mut q = import::Entity::update_many()
        .col_expr(C::RowsDone, Expr::value(p.rows_done))
        .col_expr(C::Created, Expr::value(p.created))
        .col_expr(C::Updated, Expr::value(p.updated))
        .col_expr(C::Skipped, Expr::value(p.skipped))
        .col_expr(C::ErrorCount, Expr::value(p.error_count))
        .col_expr(C::Errors, Expr::value(errors))
        .col_expr(C::UpdatedAt, Expr::value(now));
    if let Some((status, failure)) = terminal {
        q = q
            .col_expr(C::Status, Expr::value(status.as_str()))
            .col_expr(C::Failure, Expr::value(failure))
            .col_expr(C::FinishedAt, Expr::value(now));
    }
    let res = q
        .filter(C::TenantId.eq(key.0))
        .filter(C::Id.eq(key.1))
        .filter(C::RowsDone.eq(expected_done))
        .filter(C::Status.eq(ImportStatus::Running.as_str()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Ends the import (`completed` or `failed`) if it is not finished yet, and removes its file.
pub(super) async fn finish(
    state: &AppState,
    m: &import::Model,
    status: ImportStatus,
    failure: Option<String>,
) -> AppResult<()> {
    use import::Column as C;
    let now = Utc::now();
    let txn = state.begin().await?;
    import::Entity::update_many()
        .col_expr(C::Status, Expr::value(status.as_str()))
        .col_expr(C::Failure, Expr::value(failure))
        .col_expr(C::FinishedAt, Expr::value(now))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::TenantId.eq(m.tenant_id))
        .filter(C::Id.eq(m.id))
        .filter(C::Status.is_in([
            ImportStatus::Queued.as_str(),
            ImportStatus::Running.as_str(),
        ]))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    remove_file(state, m).await;
    Ok(())
}

/// The upload holds personal data: it is deleted once the import is over.
pub(super) async fn remove_file(state: &AppState, m: &import::Model) {
    let path = state.settings.data_dir.join(&m.file_path);
    if let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(import_id = %m.id, error = %e, "could not remove import file");
    }
}

/// The context of the user who uploaded the file, as a request of theirs would have it now.
pub(super) async fn creator_ctx(state: &AppState, m: &import::Model) -> Result<TenantCtx, Halt> {
    let tenant = state
        .tenants
        .get(&state.db, m.tenant_id)
        .await?
        .ok_or_else(|| Halt::Fail("Empresa não encontrada.".into()))?;
    if !tenant.status.is_usable() {
        return Err(Halt::Fail(
            "O acesso da empresa está suspenso; a importação foi interrompida.".into(),
        ));
    }
    let inactive = || Halt::Fail("O usuário que iniciou a importação não está mais ativo.".into());
    let user_id = m.created_by.ok_or_else(inactive)?;
    let u = users::service::find_active(&state.db, m.tenant_id, user_id)
        .await?
        .ok_or_else(inactive)?;
    let role = Some(u.role)
        .filter(|r| Sellers::ROLES.contains(r))
        .ok_or_else(|| {
            Halt::Fail(
                "O perfil do usuário que iniciou a importação não permite mais importar leads."
                    .into(),
            )
        })?;
    Ok(TenantCtx {
        tenant,
        tenant_id: m.tenant_id,
        user_id,
        role,
        meta: RequestMeta {
            request_id: Some(format!("import-{}", m.id)),
            ip: None,
        },
    })
}

/// PostgreSQL plans with statistics that autovacuum refreshes only now and then. While an import
/// multiplies the size of a young `leads` table, stale statistics ("the table is tiny") make the
/// duplicate lookups use any index starting with `tenant_id` and filter the whole tenant, turning
/// the import quadratic. Refreshed when this run's creates double (500, 1000, 2000, …), so the cost
/// is a few `ANALYZE`s of a sample per import. SQLite picks the key's index without statistics.
pub(super) async fn refresh_stats(state: &AppState) {
    if !jtcrm_kernel::db::is_postgres(&state.db) {
        return;
    }
    if let Err(e) = state.db.execute_unprepared("ANALYZE leads").await {
        tracing::warn!(error = %e, "lead import: ANALYZE leads failed");
    }
}

/// Lead slots left in the plan, for dry runs (`None` = unlimited).
pub(super) async fn remaining_quota(state: &AppState, ctx: &TenantCtx) -> AppResult<Option<i64>> {
    let Some(max) = ctx.tenant.limits.max_leads else {
        return Ok(None);
    };
    let used = quota::used(&state.db, ctx.tenant_id, Resource::Leads).await?;
    Ok(Some((max - used).max(0)))
}

/// The `leads.import` job handler.
pub async fn run(state: AppState, job: JobCtx) -> Result<(), JobError> {
    let payload: Payload = serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::permanent(format!("payload inválido: {e}")))?;
    let Some(m) = import::Entity::find_by_id((payload.tenant_id, payload.import_id))
        .one(&state.db)
        .await?
    else {
        // The tenant was erased meanwhile: nothing to do.
        return Ok(());
    };
    if !matches!(
        ImportStatus::parse(&m.status),
        Some(ImportStatus::Queued | ImportStatus::Running)
    ) {
        return Ok(());
    }
    match execute(&state, &job, &m).await {
        Ok(()) => Ok(()),
        Err(Halt::Fail(msg)) => {
            finish(&state, &m, ImportStatus::Failed, Some(msg)).await?;
            Ok(())
        }
        Err(Halt::Job(e)) => {
            tracing::warn!(import_id = %m.id, attempt = job.attempt, error = %e, "lead import attempt failed");
            if matches!(e, JobError::Permanent(_)) || job.is_last_attempt() {
                let msg =
                    "Erro interno ao processar a importação; tente novamente ou contate o suporte.";
                finish(&state, &m, ImportStatus::Failed, Some(msg.into())).await?;
            }
            Err(e)
        }
    }
}

pub(super) async fn execute(state: &AppState, job: &JobCtx, m: &import::Model) -> Result<(), Halt> {
    let key = (m.tenant_id, m.id);
    let mut opts: StoredOptions = serde_json::from_value(m.options.clone())
        .map_err(|_| Halt::Fail("Opções da importação inválidas.".into()))?;
    let ctx = creator_ctx(state, m).await?;
    let path = state.settings.data_dir.join(&m.file_path);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(Halt::Fail(
            "O arquivo enviado não está mais disponível; envie-o novamente.".into(),
        ));
    }
    let forced_enc = opts.encoding.as_deref().and_then(Encoding::parse);
    let forced_delim = opts.delimiter.as_deref().and_then(parse_delimiter);
    let p2 = path.clone();
    let analysis = tokio::task::spawn_blocking(move || analyse(&p2, forced_enc, forced_delim))
        .await
        .map_err(|e| {
            Halt::Job(JobError::retry(format!(
                "leitura do arquivo interrompida: {e}"
            )))
        })?
        .map_err(Halt::Fail)?;
    let defs = fields::list_defs(&state.db, ctx.tenant_id).await?;
    let cols = map_columns(&analysis.headers, &opts.mapping, &defs);
    if !cols.contains(&Some(Target::Name)) {
        return Err(Halt::Fail(
            "Nenhuma coluna corresponde ao nome do lead (ex.: Nome, Name). Informe o mapeamento em `mapping`.".into(),
        ));
    }
    opts.detected = Some(Detected {
        encoding: analysis.encoding.as_str().to_string(),
        delimiter: delimiter_name(analysis.delimiter).to_string(),
        columns: columns_dto(&analysis.headers, &cols),
    });
    {
        use import::Column as C;
        let txn = state.begin().await?;
        let res = import::Entity::update_many()
            .col_expr(C::Status, Expr::value(ImportStatus::Running.as_str()))
            .col_expr(C::RowsTotal, Expr::value(analysis.rows_total as i64))
            .col_expr(
                C::Options,
                Expr::value(serde_json::to_value(&opts).map_err(AppError::internal)?),
            )
            .col_expr(C::UpdatedAt, Expr::value(Utc::now()))
            .filter(C::TenantId.eq(key.0))
            .filter(C::Id.eq(key.1))
            .filter(C::Status.is_in([
                ImportStatus::Queued.as_str(),
                ImportStatus::Running.as_str(),
            ]))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        if res.rows_affected != 1 {
            return Ok(());
        }
    }
    // Progress as committed (a retried job resumes after `rows_done`).
    let current = import::Entity::find_by_id(key)
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let mut progress = Progress::of(&current);
    let scorer = service::load_scorer(&state.db, &ctx).await?;
    let quota = if opts.dry_run {
        remaining_quota(state, &ctx).await?
    } else {
        None
    };
    let env = Env {
        ctx: &ctx,
        defs: &defs,
        cols: &cols,
        scorer: &scorer,
        dedupe: opts.dedupe,
        dry_run: opts.dry_run,
    };
    let mut st = RowState {
        owners: HashMap::new(),
        quota,
        quota_reported: false,
        pending: Vec::with_capacity(BATCH_SIZE),
        keys: HashMap::new(),
    };

    let (tx, mut rx) = mpsc::channel(1);
    let skip = progress.rows_done.max(0) as u64;
    let (enc, delim) = (analysis.encoding, analysis.delimiter);
    let reader = tokio::task::spawn_blocking(move || read_rows(path, enc, delim, skip, tx));
    // Long imports hand over to a fresh job before the worker's timeout would cancel this one.
    let budget = Duration::from_secs(state.settings.job_timeout_secs.max(2) / 2);
    let started = Instant::now();
    // Leads created when the planner statistics were last refreshed (see `refresh_stats`).
    let mut analyzed_at: i64 = 0;
    while let Some(batch) = rx.recv().await {
        let batch = batch.map_err(Halt::Fail)?;
        let full = batch.len() == BATCH_SIZE;
        let expected = progress.rows_done;
        let mut next = progress.clone();
        let mut txn = state.begin().await?;
        let mut end = process_batch(&*txn, &env, &mut st, &mut next, &batch, true).await?;
        if matches!(end, BatchEnd::Redo) {
            // The batch does not fit in the plan: again, one row at a time, to stop at the row
            // that reaches the limit with everything before it created.
            txn.rollback().await?;
            next = progress.clone();
            txn = state.begin().await?;
            end = process_batch(&*txn, &env, &mut st, &mut next, &batch, false).await?;
        }
        let limit = match end {
            BatchEnd::Limit(text) => {
                next.error(next_line(&batch, next.rows_done - expected), "limit", &text);
                Some(text)
            }
            _ => None,
        };
        let handed_over = limit.is_none() && full && started.elapsed() >= budget;
        if handed_over {
            jobs::enqueue(
                &*txn,
                NewJob::new(KIND, json!({"tenant_id": key.0, "import_id": key.1}))
                    .tenant(key.0)
                    .idempotency_key(format!("{KIND}:{}:{}:{}", key.0, key.1, next.rows_done)),
            )
            .await?;
        }
        let terminal = limit.clone().map(|t| (ImportStatus::Failed, t));
        if !save_progress(&*txn, key, expected, &next, terminal).await? {
            tracing::warn!(import_id = %key.1, "lead import progressed elsewhere; this run stops");
            return Ok(());
        }
        txn.commit().await?;
        progress = next;
        if limit.is_some() {
            remove_file(state, m).await;
            return Ok(());
        }
        if handed_over {
            return Ok(());
        }
        if progress.created >= analyzed_at.saturating_mul(2).max(BATCH_SIZE as i64) {
            analyzed_at = progress.created;
            refresh_stats(state).await;
        }
        if job.heartbeat().await.is_err() {
            tracing::warn!(import_id = %key.1, "lead import lost its lease; this run stops");
            return Ok(());
        }
    }
    drop(rx);
    reader.await.map_err(|e| {
        Halt::Job(JobError::retry(format!(
            "leitura do arquivo interrompida: {e}"
        )))
    })?;
    finish(state, m, ImportStatus::Completed, None).await?;
    Ok(())
}
