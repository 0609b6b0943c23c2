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
use crate::domains::tenants::limits::Resource;
use crate::domains::tenants::model::counter;
use crate::domains::users::model::user;
use jtcrm_kernel::audit;
use jtcrm_kernel::error::{AppError, AppResult, Validator};
use jtcrm_kernel::http::extract::{RequestMeta, TenantCtx, nul_byte_error};
use jtcrm_kernel::http::guard::{Authorized, RoleSet, Sellers};
use jtcrm_kernel::http::pagination::{self, Keyset};
use jtcrm_kernel::jobs::{self, JobCtx, JobError, NewJob};
use jtcrm_kernel::state::AppState;
use jtcrm_kernel::store::WriteMode;
use jtcrm_kernel::visibility;

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

// ---------- encoding, separator, headers ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// What Excel in Brazil writes when saving "CSV (separado por vírgulas)".
    Windows1252,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" | "ansi" => {
                Some(Encoding::Windows1252)
            }
            _ => None,
        }
    }

    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        }
    }
}

fn delimiter_name(d: u8) -> &'static str {
    match d {
        b';' => ";",
        b'\t' => "\t",
        _ => ",",
    }
}

fn parse_delimiter(s: &str) -> Option<u8> {
    match s {
        ";" => Some(b';'),
        "," => Some(b','),
        "\t" | "tab" | "\\t" | "TAB" => Some(b'\t'),
        _ => None,
    }
}

/// The separator of a header line: the most frequent of `;`, `,` and tab outside quotes (`;` wins
/// ties, as Excel pt-BR writes it); `,` when there is none (a single column).
pub fn detect_delimiter(line: &[u8]) -> u8 {
    let (mut semi, mut comma, mut tab, mut quoted) = (0usize, 0usize, 0usize, false);
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => semi += 1,
            b',' if !quoted => comma += 1,
            b'\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semi == 0 && comma == 0 && tab == 0 {
        b','
    } else if semi >= comma && semi >= tab {
        b';'
    } else if comma >= tab {
        b','
    } else {
        b'\t'
    }
}

/// The first line of `buf` with some content (not only blanks and separators).
fn first_content_line(buf: &[u8]) -> &[u8] {
    buf.split(|&b| b == b'\n')
        .find(|l| {
            l.iter()
                .any(|b| !b.is_ascii_whitespace() && !matches!(b, b';' | b','))
        })
        .unwrap_or(&[])
}

fn strip_bom(buf: &[u8]) -> &[u8] {
    buf.strip_prefix(BOM).unwrap_or(buf)
}

fn is_blank(rec: &csv::ByteRecord) -> bool {
    rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

/// Lowercase, no accents, runs of punctuation and spaces as one space: `E-mail` → `e mail`.
fn norm(s: &str) -> String {
    let folded = fold_for_search(s.trim());
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name,
    Email,
    Phone,
    Company,
    Cnpj,
    Position,
    City,
    State,
    Cep,
    Source,
    Status,
    Tags,
    Notes,
    /// A user id or e-mail (explicit mapping only).
    Owner,
    Custom(String),
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Name => "name".into(),
            Target::Email => "email".into(),
            Target::Phone => "phone".into(),
            Target::Company => "company".into(),
            Target::Cnpj => "cnpj".into(),
            Target::Position => "position".into(),
            Target::City => "city".into(),
            Target::State => "state".into(),
            Target::Cep => "cep".into(),
            Target::Source => "source".into(),
            Target::Status => "status".into(),
            Target::Tags => "tags".into(),
            Target::Notes => "notes".into(),
            Target::Owner => "owner".into(),
            Target::Custom(k) => format!("cf.{k}"),
        }
    }

    /// A standard field by its name or a pt-BR / English synonym (normalised with [`norm`]).
    fn synonym(n: &str) -> Option<Target> {
        Some(match n {
            "name" | "nome" | "nome completo" | "contato" | "nome do contato" | "full name"
            | "lead" => Target::Name,
            "email" | "e mail" | "email address" | "e mail address" | "correio eletronico" => {
                Target::Email
            }
            "phone" | "telefone" | "celular" | "fone" | "tel" | "whatsapp" | "mobile"
            | "phone number" | "telefone celular" | "numero de telefone" => Target::Phone,
            "company" | "empresa" | "razao social" | "nome fantasia" | "organizacao"
            | "organization" | "company name" => Target::Company,
            "cnpj" => Target::Cnpj,
            "position" | "cargo" | "job title" | "title" | "funcao" => Target::Position,
            "city" | "cidade" | "municipio" => Target::City,
            "state" | "uf" | "estado" => Target::State,
            "cep" | "zip" | "zip code" | "postal code" | "codigo postal" => Target::Cep,
            "source" | "origem" | "fonte" | "lead source" => Target::Source,
            "status" | "situacao" => Target::Status,
            "tags" | "tag" | "etiquetas" | "marcadores" => Target::Tags,
            "notes" | "note" | "notas" | "nota" | "observacoes" | "observacao" | "obs"
            | "comentarios" => Target::Notes,
            _ => return None,
        })
    }

    fn custom(key: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        defs.iter()
            .find(|d| d.key == key.trim())
            .map(|d| Target::Custom(d.key.clone()))
    }

    fn custom_by_label(n: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        defs.iter()
            .find(|d| norm(&d.label) == n || norm(&d.key) == n)
            .map(|d| Target::Custom(d.key.clone()))
    }

    /// The field named by a `mapping` value: `email`, `owner`, `cf.<key>`, `custom_fields.<key>`, a
    /// synonym, or a custom field's label.
    pub fn from_mapping(v: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        let t = v.trim();
        if let Some(k) = t
            .strip_prefix("cf.")
            .or_else(|| t.strip_prefix("custom_fields."))
        {
            return Target::custom(k, defs);
        }
        let n = norm(t);
        if matches!(
            n.as_str(),
            "owner" | "owner id" | "owner email" | "responsavel"
        ) {
            return Some(Target::Owner);
        }
        Target::synonym(&n).or_else(|| Target::custom_by_label(&n, defs))
    }

    /// The field a header names by itself: `cf.<key>`, a synonym, or a custom field's label or key.
    pub fn from_header(h: &str, defs: &[CustomFieldDef]) -> Option<Target> {
        let t = h.trim();
        // `get`, not `[..3]`: a header may start with a multi-byte letter ("Orçamento").
        if let Some(key) = t
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("cf."))
            .and(t.get(3..))
            .filter(|k| !k.is_empty())
        {
            return Target::custom(key, defs);
        }
        let n = norm(t);
        Target::synonym(&n).or_else(|| Target::custom_by_label(&n, defs))
    }
}

/// The target of each header: the explicit `mapping` first (`null` or `""` ignores the column),
/// then the header itself.
pub fn map_columns(
    headers: &[String],
    mapping: &BTreeMap<String, Option<String>>,
    defs: &[CustomFieldDef],
) -> Vec<Option<Target>> {
    let explicit: HashMap<String, Option<&str>> = mapping
        .iter()
        .map(|(k, v)| (norm(k), v.as_deref()))
        .collect();
    headers
        .iter()
        .map(|h| match explicit.get(&norm(h)) {
            Some(None) => None,
            Some(Some(v)) if v.trim().is_empty() => None,
            Some(Some(v)) => Target::from_mapping(v, defs),
            None => Target::from_header(h, defs),
        })
        .collect()
}

fn columns_dto(headers: &[String], cols: &[Option<Target>]) -> Vec<ImportColumn> {
    headers
        .iter()
        .zip(cols)
        .map(|(h, t)| ImportColumn {
            header: h.clone(),
            field: t.as_ref().map(Target::name),
        })
        .collect()
}

/// A cell as typed: trimmed, and without the `'` that protects formulas in exports.
fn clean(v: &str) -> &str {
    let t = v.trim();
    match t.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => t,
    }
}

/// The API body of a row (no default source) and the raw owner cell. For each field the first
/// non-empty column wins (e.g. `Telefone` then `Celular`); empty cells are absent, never clearing.
pub fn row_input(cols: &[Option<Target>], cells: &[String]) -> (LeadInput, Option<String>) {
    let mut input = LeadInput::default();
    let mut owner = None;
    let mut tags: Vec<String> = vec![];
    let mut custom = Map::new();
    for (target, raw) in cols.iter().zip(cells) {
        let Some(target) = target else { continue };
        let v = clean(raw);
        if v.is_empty() {
            continue;
        }
        let set = |slot: &mut Option<Option<String>>| {
            if slot.is_none() {
                *slot = Some(Some(v.to_string()));
            }
        };
        match target {
            Target::Name => set(&mut input.name),
            Target::Email => set(&mut input.email),
            Target::Phone => set(&mut input.phone),
            Target::Company => set(&mut input.company),
            Target::Cnpj => set(&mut input.cnpj),
            Target::Position => set(&mut input.position),
            Target::City => set(&mut input.city),
            Target::State => set(&mut input.state),
            Target::Cep => set(&mut input.cep),
            Target::Notes => set(&mut input.notes),
            Target::Source => {
                if input.source.is_none() {
                    let code = export::parse_source(v)
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| v.to_string());
                    input.source = Some(Some(code));
                }
            }
            Target::Status => {
                if input.status.is_none() {
                    let code = export::parse_status(v)
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| v.to_string());
                    input.status = Some(Some(code));
                }
            }
            Target::Tags => {
                let sep = if v.contains('|') { '|' } else { ',' };
                tags.extend(
                    v.split(sep)
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
            }
            Target::Owner => {
                if owner.is_none() {
                    owner = Some(v.to_string());
                }
            }
            Target::Custom(k) => {
                if !custom.contains_key(k) {
                    custom.insert(k.clone(), Value::String(v.to_string()));
                }
            }
        }
    }
    if !tags.is_empty() {
        input.tags = Some(Some(tags));
    }
    if !custom.is_empty() {
        input.custom_fields = Some(Some(custom));
    }
    (input, owner)
}

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
    let text = String::from_utf8(buf)
        .map_err(|_| AppError::field(name, "invalid_value", "Texto deve estar em UTF-8"))?;
    if text.contains('\0') {
        return Err(AppError::validation(vec![nul_byte_error(name)]));
    }
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
            .map(|f| enc.decode(f).trim().to_string())
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
        match serde_json::from_str::<Map<String, Value>>(raw) {
            Err(_) => errors.push(FieldError::new(
                "mapping",
                "invalid_value",
                "Use um objeto JSON coluna → campo, ex.: {\"Razão Social\": \"company\"}",
            )),
            Ok(obj) => {
                for (k, v) in obj {
                    if k.contains('\0') || v.as_str().is_some_and(|s| s.contains('\0')) {
                        errors.push(nul_byte_error("mapping"));
                        continue;
                    }
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
    // Headers are stored with the import (`columns`); PostgreSQL cannot store U+0000.
    if headers_row.iter().any(|h| h.contains('\0')) {
        return Err(AppError::validation(vec![nul_byte_error("file")]));
    }
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

// ---------- the job ----------

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    tenant_id: Uuid,
    import_id: Uuid,
}

/// How the job stops early: `Fail` ends the import as `failed` with a message for the user; `Job`
/// hands the error to the queue (retried unless permanent).
enum Halt {
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
struct Row {
    line: u64,
    cells: Vec<String>,
}

struct Analysis {
    encoding: Encoding,
    delimiter: u8,
    headers: Vec<String>,
    rows_total: u64,
}

fn io_failure(e: impl std::fmt::Display) -> String {
    tracing::warn!(error = %e, "lead import: file read failed");
    "Não foi possível ler o arquivo enviado.".to_string()
}

/// A CSV reader over the file, past a UTF-8 BOM. Line numbers still count from the file's start.
fn open_reader(path: &Path, delimiter: u8) -> std::io::Result<csv::Reader<BufReader<File>>> {
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
fn analyse(
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
fn read_rows(
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
struct Progress {
    rows_done: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    error_count: i64,
    errors: Vec<ImportRowError>,
}

impl Progress {
    fn of(m: &import::Model) -> Self {
        Self {
            rows_done: m.rows_done,
            created: m.created,
            updated: m.updated,
            skipped: m.skipped,
            error_count: m.error_count,
            errors: serde_json::from_value(m.errors.clone()).unwrap_or_default(),
        }
    }

    fn error(&mut self, row: u64, field: &str, message: &str) {
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
struct Env<'a> {
    ctx: &'a TenantCtx,
    defs: &'a [CustomFieldDef],
    cols: &'a [Option<Target>],
    scorer: &'a Scorer,
    dedupe: DedupePolicy,
    dry_run: bool,
}

/// What changes from row to row besides the progress.
struct RowState {
    owners: HashMap<String, Option<Uuid>>,
    /// Dry runs: lead slots left in the plan (`None` = unlimited) and whether the hit was reported.
    quota: Option<i64>,
    quota_reported: bool,
    /// Rows validated for creation, written together when the batch ends ([`flush`]).
    pending: Vec<(u64, LeadDraft)>,
    /// The batch's dedupe keys (`("email", value)`…): live leads of the tenant (`Some(id)`, fetched
    /// for the whole batch at once, plus the leads this batch created or updated) and pending
    /// creates (`None`).
    keys: HashMap<(&'static str, String), Option<Uuid>>,
}

/// How a batch ended.
enum BatchEnd {
    Done,
    /// The plan's lead limit stopped the import at this row (row-by-row mode).
    Limit(String),
    /// The batch's creates do not fit in the plan all together (bulk mode): the caller rolls back
    /// and goes again one row at a time to stop exactly at the row that hits the limit.
    Redo,
}

const NUL_IN_CELL: &str = "A célula contém o caractere nulo (U+0000), que não é aceito";

/// A row after parsing and validation, before any write.
enum Prepared {
    Invalid(Vec<(String, String)>),
    Ready {
        /// The row as a patch (dedupe `update`).
        input: Box<LeadInput>,
        /// The row as a new lead.
        draft: Box<LeadDraft>,
    },
}

async fn resolve_owner<C: ConnectionTrait>(
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

fn dedupe_keys(d: &LeadDraft) -> impl Iterator<Item = (&'static str, &String)> {
    [("email", &d.email), ("cnpj", &d.cnpj), ("phone", &d.phone)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
}

fn key_column(key: &str) -> lead::Column {
    match key {
        "email" => lead::Column::Email,
        "cnpj" => lead::Column::Cnpj,
        _ => lead::Column::Phone,
    }
}

/// Loads the live leads matching any dedupe key of the batch: one indexed `IN` query per key kind
/// instead of up to three lookups per row. Several leads on one key: the oldest wins, like
/// [`service::find_duplicate`].
async fn prefetch_keys<C: ConnectionTrait>(
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
fn known_duplicate(
    keys: &HashMap<(&'static str, String), Option<Uuid>>,
    d: &LeadDraft,
) -> Option<(&'static str, Option<Uuid>)> {
    dedupe_keys(d).find_map(|(k, v)| keys.get(&(k, v.clone())).map(|id| (k, *id)))
}

fn remember_keys(
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

fn audit_lead<'a>(
    ctx: &'a TenantCtx,
    action: &'a str,
    id: Uuid,
    changes: Value,
) -> audit::Entry<'a> {
    audit::Entry::tenant(ctx, action, "lead", id, changes)
}

/// Parses, resolves the owner and validates one row: no writes.
async fn prepare<C: ConnectionTrait>(
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
    let draft = super::validate(&mut v, &create_input, None, WriteMode::Create, env.defs);
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
async fn create_row<C: ConnectionTrait + TransactionTrait>(
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
async fn flush<C: ConnectionTrait>(
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
async fn update_row<C: ConnectionTrait>(
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
    let patched = super::validate(&mut v, input, Some(&before), WriteMode::Patch, env.defs);
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
async fn process_batch<C: ConnectionTrait + TransactionTrait>(
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
fn next_line(batch: &[Row], done: i64) -> u64 {
    batch.get((done.max(1) - 1) as usize).map_or(0, |r| r.line)
}

/// Writes the progress of a batch, only if the import is still `running` at the progress this run
/// started the batch from (otherwise another run owns it: `false`).
async fn save_progress<C: ConnectionTrait>(
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
async fn finish(
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
async fn remove_file(state: &AppState, m: &import::Model) {
    let path = state.settings.data_dir.join(&m.file_path);
    if let Err(e) = tokio::fs::remove_file(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(import_id = %m.id, error = %e, "could not remove import file");
    }
}

/// The context of the user who uploaded the file, as a request of theirs would have it now.
async fn creator_ctx(state: &AppState, m: &import::Model) -> Result<TenantCtx, Halt> {
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
async fn refresh_stats(state: &AppState) {
    if !jtcrm_kernel::db::is_postgres(&state.db) {
        return;
    }
    if let Err(e) = state.db.execute_unprepared("ANALYZE leads").await {
        tracing::warn!(error = %e, "lead import: ANALYZE leads failed");
    }
}

/// Lead slots left in the plan, for dry runs (`None` = unlimited).
async fn remaining_quota(state: &AppState, ctx: &TenantCtx) -> AppResult<Option<i64>> {
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

async fn execute(state: &AppState, job: &JobCtx, m: &import::Model) -> Result<(), Halt> {
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
