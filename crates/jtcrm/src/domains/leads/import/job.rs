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

/// One data row: its line number in the file and its decoded cells.
pub(super) struct Row {
    pub(super) line: u64,
    pub(super) cells: Vec<String>,
}

pub(super) struct Analysis {
    pub(super) encoding: Encoding,
    pub(super) delimiter: u8,
    pub(super) headers: Vec<String>,
    pub(super) rows_total: u64,
}

pub(super) fn io_failure(e: impl std::fmt::Display) -> String {
    tracing::warn!(error = %e, "lead import: file read failed");
    "Não foi possível ler o arquivo enviado.".to_string()
}

/// A CSV reader over the file, past a UTF-8 BOM. Line numbers still count from the file's start.
pub(super) fn open_reader(
    path: &Path,
    delimiter: u8,
) -> std::io::Result<csv::Reader<BufReader<File>>> {
    let mut f = File::open(path)?;
    let mut start = [0u8; 3];
    let mut n = 0;
    while n < 3 {
        let k = f.read(&mut start[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    if !(n == 3 && start == *BOM) {
        f.seek(SeekFrom::Start(0))?;
    }
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(BufReader::with_capacity(64 * 1024, f)))
}

/// The streaming pass before the import: separator (from the header line), encoding (UTF-8 if every
/// byte is, else Windows-1252), the header, and the number of data rows.
pub(super) fn analyse(
    path: &Path,
    encoding: Option<Encoding>,
    delimiter: Option<u8>,
) -> Result<Analysis, String> {
    let delimiter = match delimiter {
        Some(d) => d,
        None => {
            let mut head = Vec::with_capacity(SNIFF_BYTES);
            File::open(path)
                .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
                .map_err(io_failure)?;
            detect_delimiter(first_content_line(strip_bom(&head)))
        }
    };
    let mut rdr = open_reader(path, delimiter).map_err(io_failure)?;
    let mut rec = csv::ByteRecord::new();
    let mut header: Option<csv::ByteRecord> = None;
    let (mut utf8, mut rows) = (true, 0u64);
    while rdr.read_byte_record(&mut rec).map_err(io_failure)? {
        if utf8 && encoding.is_none() && std::str::from_utf8(rec.as_slice()).is_err() {
            utf8 = false;
        }
        if is_blank(&rec) {
            continue;
        }
        if header.is_none() {
            header = Some(rec.clone());
        } else {
            rows += 1;
        }
    }
    let Some(header) = header else {
        return Err("O arquivo não tem linha de cabeçalho.".into());
    };
    let encoding = encoding.unwrap_or(if utf8 {
        Encoding::Utf8
    } else {
        Encoding::Windows1252
    });
    let headers = header
        .iter()
        .map(|f| encoding.decode(f).trim().to_string())
        .collect();
    Ok(Analysis {
        encoding,
        delimiter,
        headers,
        rows_total: rows,
    })
}

/// Reads data rows after the first `skip` ones and sends them in batches; stops when the receiver
/// is gone. Runs on a blocking thread.
pub(super) fn read_rows(
    path: PathBuf,
    encoding: Encoding,
    delimiter: u8,
    skip: u64,
    tx: mpsc::Sender<Result<Vec<Row>, String>>,
) {
    let mut rdr = match open_reader(&path, delimiter) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(io_failure(e)));
            return;
        }
    };
    let mut rec = csv::ByteRecord::new();
    let (mut header_seen, mut index) = (false, 0u64);
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = tx.blocking_send(Err(io_failure(e)));
                return;
            }
        }
        if is_blank(&rec) {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        index += 1;
        if index <= skip {
            continue;
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        batch.push(Row {
            line,
            cells: rec.iter().map(|f| encoding.decode(f)).collect(),
        });
        if batch.len() == BATCH_SIZE
            && tx
                .blocking_send(Ok(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(BATCH_SIZE),
                )))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
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
    let mut q = user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(user::Column::Active.eq(true))
        .filter(user::Column::DeletedAt.is_null());
    q = match Uuid::parse_str(&key) {
        Ok(id) => q.filter(user::Column::Id.eq(id)),
        Err(_) => q.filter(user::Column::Email.eq(key.as_str())),
    };
    let found = q.one(conn).await?.map(|u| u.id);
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
    let u = user::Entity::find_by_id((m.tenant_id, user_id))
        .one(&state.db)
        .await?
        .filter(|u| u.active && u.deleted_at.is_none())
        .ok_or_else(inactive)?;
    let role = Role::parse(&u.role)
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
    let used = counter::Entity::find_by_id((ctx.tenant_id, Resource::Leads.key().to_string()))
        .one(&state.db)
        .await?
        .map(|c| c.count)
        .unwrap_or(0);
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
