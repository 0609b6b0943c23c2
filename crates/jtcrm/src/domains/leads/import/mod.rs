//! CSV import of leads: the upload is streamed to disk and queued as a `leads.import` job, which
//! detects encoding and separator, maps headers, validates rows like the API and writes batches.
//!
//! Memory is bounded by the batch size: a blocking reader thread parses the file and hands batches
//! of [`BATCH_SIZE`] rows through a channel of one batch to the job, which writes each batch in one
//! transaction together with the import's progress. `rows_done` is the checkpoint: a retried job
//! skips the rows already committed, so a crash never imports a row twice.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use jtcrm_types::br::fold_for_search;
use jtcrm_types::dto::leads::{
    CustomFieldDef, DedupePolicy, ImportColumn, ImportRowError, ImportStatus, LeadImport, LeadInput,
};
use jtcrm_types::dto::{Page, Role};
use jtcrm_types::{ErrorCode, FieldError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, Iterable,
    QueryFilter, QuerySelect, TransactionSession, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::model::{import, lead};
use super::scoring::Scorer;
use super::{LeadDraft, export, fields, service, to_dto as lead_dto};
use crate::domains::users;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx};
use jtcrm_kernel::http::guard::{Authorized, RoleSet, Sellers};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::jobs::{self, JobCtx, JobError, NewJob};
use jtcrm_kernel::quota::{self, Resource};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;
use jtcrm_kernel::visibility;

mod columns;
mod job;
mod reader;
mod rows;

pub use columns::*;
pub use job::run;
#[allow(unused_imports)]
use job::*;
#[allow(unused_imports)]
use reader::*;
#[allow(unused_imports)]
use rows::*;

/// Job kind of the import worker.
pub const KIND: &str = "leads.import";
/// Largest accepted upload (the body limit of `POST /api/leads/import`).
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;
/// Rows written per transaction (and held in memory at most about three times).
pub const BATCH_SIZE: usize = 500;
/// Row errors kept in the import; `error_count` goes on counting past it.
pub const MAX_STORED_ERRORS: usize = 1000;

/// The start of the file looked at on upload (header check) and for the separator.
const SNIFF_BYTES: usize = 64 * 1024;
const MAX_TEXT_PART: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

// ---------- stored options and DTO ----------

fn default_dedupe() -> DedupePolicy {
    DedupePolicy::Skip
}

/// What the file turned out to be (written by the job).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Detected {
    encoding: String,
    delimiter: String,
    columns: Vec<ImportColumn>,
}

/// `lead_imports.options`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredOptions {
    #[serde(default)]
    mapping: BTreeMap<String, Option<String>>,
    #[serde(default = "default_dedupe")]
    dedupe: DedupePolicy,
    #[serde(default)]
    dry_run: bool,
    /// Forced by the uploader; detected otherwise.
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    detected: Option<Detected>,
}

impl Default for StoredOptions {
    fn default() -> Self {
        Self {
            mapping: BTreeMap::new(),
            dedupe: DedupePolicy::Skip,
            dry_run: false,
            encoding: None,
            delimiter: None,
            detected: None,
        }
    }
}

fn to_dto(m: import::Model, with_errors: bool) -> LeadImport {
    let opts: StoredOptions = serde_json::from_value(m.options).unwrap_or_default();
    let (encoding, delimiter, columns) = match opts.detected {
        Some(d) => (Some(d.encoding), Some(d.delimiter), d.columns),
        None => (opts.encoding, opts.delimiter, vec![]),
    };
    LeadImport {
        id: m.id,
        status: ImportStatus::parse(&m.status).unwrap_or(ImportStatus::Failed),
        filename: m.filename,
        dry_run: opts.dry_run,
        dedupe: opts.dedupe,
        encoding,
        delimiter,
        columns,
        rows_total: m.rows_total,
        rows_done: m.rows_done,
        created: m.created,
        updated: m.updated,
        skipped: m.skipped,
        error_count: m.error_count,
        errors: with_errors.then(|| serde_json::from_value(m.errors).unwrap_or_default()),
        failure: m.failure,
        created_by: m.created_by,
        created_at: m.created_at,
        finished_at: m.finished_at,
    }
}

// ---------- upload ----------

fn too_large() -> AppError {
    AppError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "O arquivo excede o limite de {} MiB. Divida-o em partes menores.",
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ),
    )
}

fn multipart_error(e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        AppError::bad_request(format!("Corpo multipart inválido: {}", e.body_text()))
    }
}

fn file_error(code: &str, message: &str) -> AppError {
    AppError::field("file", code, message)
}

/// Removes a file when dropped unless disarmed (uploads that did not become an import).
struct FileGuard(Option<PathBuf>);

impl FileGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn read_text(field: &mut Field<'_>, name: &str) -> AppResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > MAX_TEXT_PART {
            return Err(AppError::field(
                name,
                "too_long",
                "Valor muito longo (máximo de 64 KiB)",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    let mut text = String::from_utf8(buf)
        .map_err(|_| AppError::field(name, "invalid_value", "Texto deve estar em UTF-8"))?;
    // U+0000 is removed from text, as in JSON bodies (docs/api.md, "Text").
    text.retain(|c| c != '\0');
    Ok(text)
}

fn sanitize_filename(name: Option<&str>) -> String {
    let base = name
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.is_empty() {
        "importacao.csv".to_string()
    } else {
        clean
    }
}

struct Upload {
    filename: String,
    size: usize,
    /// The first [`SNIFF_BYTES`] of the file.
    head: Vec<u8>,
}

/// The header of an uploaded file from its first bytes: `(headers, delimiter, encoding)`.
fn sniff_header(
    head: &[u8],
    complete: bool,
    encoding: Option<Encoding>,
    delimiter: Option<u8>,
) -> AppResult<(Vec<String>, u8)> {
    let body = strip_bom(head);
    if body.iter().all(|b| b.is_ascii_whitespace()) && complete {
        return Err(file_error("empty_file", "O arquivo está vazio."));
    }
    let delim = delimiter.unwrap_or_else(|| detect_delimiter(first_content_line(body)));
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .from_reader(body);
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) if is_blank(&rec) => continue,
            Ok(true) => break,
            Ok(false) | Err(_) => {
                return Err(file_error(
                    "missing_header",
                    "O arquivo não tem linha de cabeçalho.",
                ));
            }
        }
    }
    // The record must end inside what we have, or be the end of the file.
    if !complete && rdr.position().byte() as usize >= body.len() {
        return Err(file_error(
            "missing_header",
            "Cabeçalho não encontrado nos primeiros 64 KiB do arquivo.",
        ));
    }
    let enc = encoding.unwrap_or(if std::str::from_utf8(rec.as_slice()).is_ok() {
        Encoding::Utf8
    } else {
        Encoding::Windows1252
    });
    Ok((
        rec.iter()
            // U+0000 is removed from names, as from all text (docs/api.md, "Text").
            .map(|f| enc.decode(f).replace('\0', "").trim().to_string())
            .collect(),
        delim,
    ))
}

struct Form {
    mapping: BTreeMap<String, Option<String>>,
    dedupe: DedupePolicy,
    dry_run: bool,
    encoding: Option<Encoding>,
    delimiter: Option<u8>,
}

fn parse_form(texts: &HashMap<String, String>, defs: &[CustomFieldDef]) -> AppResult<Form> {
    let mut errors: Vec<FieldError> = vec![];
    let get = |k: &str| texts.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let dedupe = match get("dedupe") {
        None => DedupePolicy::Skip,
        Some(s) => DedupePolicy::parse(&s.to_ascii_lowercase()).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "dedupe",
                "invalid_value",
                "Use skip, update ou create",
            ));
            DedupePolicy::Skip
        }),
    };
    let dry_run = match get("dry_run").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no" | "nao" | "off") => false,
        Some("true" | "1" | "yes" | "sim" | "on") => true,
        Some(_) => {
            errors.push(FieldError::new(
                "dry_run",
                "invalid_value",
                "Use true ou false",
            ));
            false
        }
    };
    let encoding = get("encoding").and_then(|s| {
        let e = Encoding::parse(s);
        if e.is_none() {
            errors.push(FieldError::new(
                "encoding",
                "invalid_value",
                "Use utf-8 ou windows-1252",
            ));
        }
        e
    });
    let delimiter = texts
        .get("delimiter")
        .filter(|s| !s.is_empty())
        .and_then(|s| {
            let d = parse_delimiter(s.as_str()).or_else(|| parse_delimiter(s.trim()));
            if d.is_none() {
                errors.push(FieldError::new(
                    "delimiter",
                    "invalid_value",
                    "Use ; , ou tab",
                ));
            }
            d
        });
    let mut mapping = BTreeMap::new();
    if let Some(raw) = get("mapping") {
        // U+0000 (`\u0000` escapes) removed from names and targets, as in JSON bodies.
        let parsed = serde_json::from_str::<Value>(raw).map(|mut v| {
            jtcrm_kernel::http::extract::strip_nul(&mut v);
            v
        });
        match parsed.and_then(serde_json::from_value::<Map<String, Value>>) {
            Err(_) => errors.push(FieldError::new(
                "mapping",
                "invalid_value",
                "Use um objeto JSON coluna → campo, ex.: {\"Razão Social\": \"company\"}",
            )),
            Ok(obj) => {
                for (k, v) in obj {
                    match v {
                        Value::Null => {
                            mapping.insert(k, None);
                        }
                        Value::String(s) if s.trim().is_empty() => {
                            mapping.insert(k, None);
                        }
                        Value::String(s) if Target::from_mapping(&s, defs).is_some() => {
                            mapping.insert(k, Some(s));
                        }
                        _ => errors.push(FieldError::new(
                            format!("mapping.{k}"),
                            "unknown_field",
                            "Campo de destino desconhecido (ex.: name, email, phone, company, cnpj, cf.<chave>)",
                        )),
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(Form {
        mapping,
        dedupe,
        dry_run,
        encoding,
        delimiter,
    })
}

/// `POST /api/leads/import`: stores the upload and queues the job. Answers at once.
pub async fn start(
    state: &AppState,
    ctx: &Authorized<Sellers>,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> AppResult<LeadImport> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD_BYTES as u64) {
        return Err(too_large());
    }
    let mut mp = multipart.map_err(|_| {
        AppError::new(
            ErrorCode::UnsupportedMediaType,
            "Envie o arquivo como multipart/form-data, na parte `file`.",
        )
    })?;
    let id = Uuid::now_v7();
    let rel = PathBuf::from("imports")
        .join(ctx.tenant_id.to_string())
        .join(format!("{id}.csv"));
    let path = state.settings.data_dir.join(&rel);
    let tmp = path.with_extension("csv.part");
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(AppError::internal)?;
    }
    let mut guard = FileGuard(Some(tmp.clone()));
    let mut upload: Option<Upload> = None;
    let mut texts: HashMap<String, String> = HashMap::new();
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                if upload.is_some() {
                    return Err(file_error(
                        "too_many_files",
                        "Envie um único arquivo por importação.",
                    ));
                }
                let filename = sanitize_filename(field.file_name());
                let mut f = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(AppError::internal)?;
                let (mut size, mut head) = (0usize, Vec::new());
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    size += chunk.len();
                    if size > MAX_UPLOAD_BYTES {
                        return Err(too_large());
                    }
                    if head.len() < SNIFF_BYTES {
                        let n = chunk.len().min(SNIFF_BYTES - head.len());
                        head.extend_from_slice(&chunk[..n]);
                    }
                    f.write_all(&chunk).await.map_err(AppError::internal)?;
                }
                f.flush().await.map_err(AppError::internal)?;
                // On disk before the job that reads it can exist.
                f.sync_all().await.map_err(AppError::internal)?;
                upload = Some(Upload {
                    filename,
                    size,
                    head,
                });
            }
            "mapping" | "dedupe" | "dry_run" | "encoding" | "delimiter" => {
                let v = read_text(&mut field, &name).await?;
                texts.insert(name, v);
            }
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    let Some(up) = upload else {
        return Err(file_error(
            "required",
            "Envie o arquivo CSV na parte `file`.",
        ));
    };
    if up.size == 0 {
        return Err(file_error("empty_file", "O arquivo está vazio."));
    }
    let defs = fields::list_defs(&state.db, ctx.tenant_id).await?;
    let form = parse_form(&texts, &defs)?;
    let (headers_row, _) = sniff_header(
        &up.head,
        up.size <= SNIFF_BYTES,
        form.encoding,
        form.delimiter,
    )?;
    let cols = map_columns(&headers_row, &form.mapping, &defs);
    let unknown: Vec<FieldError> = form
        .mapping
        .keys()
        .filter(|k| !headers_row.iter().any(|h| norm(h) == norm(k)))
        .map(|k| {
            FieldError::new(
                format!("mapping.{k}"),
                "unknown_column",
                "Coluna não encontrada no cabeçalho do arquivo",
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::validation(unknown));
    }
    if !cols.contains(&Some(Target::Name)) {
        return Err(file_error(
            "missing_name_column",
            "Nenhuma coluna corresponde ao nome do lead (ex.: Nome, Name). Informe o mapeamento em `mapping`.",
        ));
    }
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(AppError::internal)?;
    guard.0 = Some(path.clone());
    let options = StoredOptions {
        mapping: form.mapping,
        dedupe: form.dedupe,
        dry_run: form.dry_run,
        encoding: form.encoding.map(|e| e.as_str().to_string()),
        delimiter: form.delimiter.map(|d| delimiter_name(d).to_string()),
        detected: None,
    };
    let now = Utc::now();
    let row = import::ActiveModel {
        tenant_id: Set(ctx.tenant_id),
        id: Set(id),
        status: Set(ImportStatus::Queued.as_str().to_string()),
        filename: Set(up.filename),
        file_path: Set(rel.to_string_lossy().into_owned()),
        options: Set(serde_json::to_value(&options).map_err(AppError::internal)?),
        rows_total: Set(0),
        rows_done: Set(0),
        created: Set(0),
        updated: Set(0),
        skipped: Set(0),
        error_count: Set(0),
        errors: Set(json!([])),
        failure: Set(None),
        created_by: Set(Some(ctx.user_id)),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    };
    let txn = state.begin().await?;
    let m = import::Entity::insert(row)
        .exec_with_returning(&*txn)
        .await?;
    jobs::enqueue(
        &*txn,
        NewJob::new(KIND, json!({"tenant_id": ctx.tenant_id, "import_id": id}))
            .tenant(ctx.tenant_id)
            .idempotency_key(format!("{KIND}:{}:{id}", ctx.tenant_id)),
    )
    .await?;
    audit::record(
        &*txn,
        audit::Entry::tenant(ctx, "create", "lead_import", id, json!({"filename": {"from": null, "to": m.filename}, "dedupe": {"from": null, "to": options.dedupe},
                            "dry_run": {"from": null, "to": options.dry_run}})),
    )
    .await?;
    txn.commit().await?;
    guard.disarm();
    jobs::wake_workers();
    Ok(to_dto(m, true))
}

// ---------- read ----------

fn sees_all_imports(ctx: &TenantCtx) -> bool {
    matches!(ctx.role, Role::Admin | Role::Manager)
}

/// Admins and managers see every import of the tenant; other users their own.
pub async fn get(state: &AppState, ctx: &TenantCtx, id: Uuid) -> AppResult<LeadImport> {
    let m = import::Entity::find_by_id((ctx.tenant_id, id))
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    if !sees_all_imports(ctx) && m.created_by != Some(ctx.user_id) {
        return Err(AppError::not_found());
    }
    Ok(to_dto(m, true))
}

/// `lead_imports` without the `errors` column, for lists.
#[derive(Debug, FromQueryResult)]
struct ImportSummary {
    tenant_id: Uuid,
    id: Uuid,
    status: String,
    filename: String,
    file_path: String,
    options: Value,
    rows_total: i64,
    rows_done: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    error_count: i64,
    failure: Option<String>,
    created_by: Option<Uuid>,
    created_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
    finished_at: Option<chrono::DateTime<Utc>>,
}

impl From<ImportSummary> for import::Model {
    fn from(s: ImportSummary) -> Self {
        import::Model {
            tenant_id: s.tenant_id,
            id: s.id,
            status: s.status,
            filename: s.filename,
            file_path: s.file_path,
            options: s.options,
            rows_total: s.rows_total,
            rows_done: s.rows_done,
            created: s.created,
            updated: s.updated,
            skipped: s.skipped,
            error_count: s.error_count,
            errors: Value::Null,
            failure: s.failure,
            created_by: s.created_by,
            created_at: s.created_at,
            updated_at: s.updated_at,
            finished_at: s.finished_at,
        }
    }
}

/// The tenant's imports, newest first (keyset by id), without their `errors`.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    limit: Option<u64>,
    cursor: Option<&str>,
) -> AppResult<Page<LeadImport>> {
    let limit = pagination::limit(limit)?;
    let mut q = import::Entity::find()
        .select_only()
        .columns(import::Column::iter().filter(|c| !matches!(c, import::Column::Errors)))
        .filter(import::Column::TenantId.eq(ctx.tenant_id));
    if !sees_all_imports(ctx) {
        q = q.filter(import::Column::CreatedBy.eq(ctx.user_id));
    }
    let page = Keyset::desc([import::Column::Id])
        .paginate_as::<ImportSummary, _>(&state.db, q, cursor, limit, false)
        .await?;
    Ok(page.map(|m| to_dto(m, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"Nome;E-mail;Telefone"), b';');
        assert_eq!(detect_delimiter(b"name,email,phone"), b',');
        assert_eq!(detect_delimiter(b"\"a;b\",c,d"), b',');
        assert_eq!(detect_delimiter(b"nome\temail"), b'\t');
        assert_eq!(detect_delimiter(b"Nome"), b',');
    }

    #[test]
    fn headers_map_with_synonyms() {
        let h: Vec<String> = [
            "Nome",
            "E-MAIL",
            "Celular",
            "Razão Social",
            "UF",
            "Observações",
            "Pontuação",
            "cf.x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cols = map_columns(&h, &BTreeMap::new(), &[]);
        assert_eq!(
            cols,
            vec![
                Some(Target::Name),
                Some(Target::Email),
                Some(Target::Phone),
                Some(Target::Company),
                Some(Target::State),
                Some(Target::Notes),
                None,
                None
            ]
        );
        let mut mapping = BTreeMap::new();
        mapping.insert("razao social".to_string(), Some("notes".to_string()));
        mapping.insert("Nome".to_string(), None);
        let cols = map_columns(&h, &mapping, &[]);
        assert_eq!(cols[0], None);
        assert_eq!(cols[3], Some(Target::Notes));
    }

    #[test]
    fn rows_take_first_non_empty_and_split_tags() {
        let cols = vec![
            Some(Target::Name),
            Some(Target::Phone),
            Some(Target::Phone),
            Some(Target::Tags),
            Some(Target::Status),
        ];
        let cells: Vec<String> = ["'=Ana", "", "11987654321", "a | b,c", "Qualificado"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (input, owner) = row_input(&cols, &cells);
        assert_eq!(input.name, Some(Some("=Ana".into())));
        assert_eq!(input.phone, Some(Some("11987654321".into())));
        assert_eq!(input.tags, Some(Some(vec!["a".into(), "b,c".into()])));
        assert_eq!(input.status, Some(Some("qualified".into())));
        assert!(owner.is_none());
    }

    #[test]
    fn encodings() {
        assert_eq!(Encoding::Windows1252.decode(b"Jo\xe3o"), "João");
        assert_eq!(Encoding::parse("CP1252"), Some(Encoding::Windows1252));
    }
}
