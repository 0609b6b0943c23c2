//! The JT Telecom cloud PABX client: the "suite" API (`<host>/suite/api/<endpoint>`) that
//! meupabxip, iFalei, Baldussi and TotalPhone deployments share.
//!
//! What it relies on (see `docs/integrations/pabx.md` for sources and unknowns):
//! - authentication by the `usuario` and `token` HTTP headers;
//! - every answer is an envelope `{http_response_code, mensagem, qtd_total_resultados,
//!   qtd_resultados_retornados, dados}` whose `http_response_code` (a number or a string) is the
//!   real status: an HTTP 200 with `http_response_code` 401 is a credentials error;
//! - numbers arrive as strings or ints, dates as `dd/mm/aaaa HH:MM:SS` in the PABX's local time,
//!   durations as `HH:MM:SS`, booleans as `"0"/"1"`, `link_gravacao` as a string or an array.
//!
//! Error mapping ([`PabxError`]): connection errors, timeouts and HTTP 5xx/408/429 →
//! `Transport` (retryable); HTTP 401/403 or envelope 401/403 → `Unauthorized`; any other envelope
//! code ≠ 200 → `Rejected(mensagem)`; a body without a readable envelope → `InvalidResponse`.
//! On the two list endpoints an envelope 404 ("no records") is read as an empty page.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::dial::DialPlan;
use super::event::{EventContext, classify, direction_from_text, parse_call_event};
use super::wire::{
    self, field, flex_bool, flex_seconds, flex_string, flex_text, flex_u16, flex_u64,
    recording_urls,
};
use super::{
    BoxFuture, CallEvent, CallFilter, CallRecord, CallRef, Extension, ExtensionSpec, Outcome, Pabx,
    PabxError, Page, PageRequest, ParseError, PartyNumber,
};

/// Default timeout of every request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest page the history endpoint serves (`quantidade` ≤ 1000).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How to reach and read one tenant's suite account.
#[derive(Clone)]
pub struct SuiteConfig {
    /// E.g. `https://emnuvem.meupabxip.com.br/suite/api` (a trailing `/` is ignored).
    pub base_url: String,
    pub usuario: String,
    pub token: String,
    /// Timeout of each request, connection included (default 10 s).
    pub timeout: Duration,
    /// The PABX's local time, used to read and write its dates (default UTC−03:00, Brasília;
    /// a fixed offset is exact since Brazil dropped daylight saving time in 2019).
    pub utc_offset: FixedOffset,
    /// The tenant's DDD: the default own area code for dialling, and the DDD assumed for
    /// numbers the PABX writes without one.
    pub area_code: u8,
    /// Carrier selection code for long distance and international calls (e.g. 15, 21, 41).
    pub csp: Option<u8>,
    /// Before a click-to-call, read the extension's own `codigo_area` from `listar_ramais` (one
    /// extra request) and dial relative to it; falls back to `area_code`. Default true.
    pub use_extension_area_code: bool,
}

impl SuiteConfig {
    pub fn new(
        base_url: impl Into<String>,
        usuario: impl Into<String>,
        token: impl Into<String>,
        area_code: u8,
    ) -> Self {
        SuiteConfig {
            base_url: base_url.into(),
            usuario: usuario.into(),
            token: token.into(),
            timeout: DEFAULT_TIMEOUT,
            utc_offset: wire::sao_paulo_offset(),
            area_code,
            csp: None,
            use_extension_area_code: true,
        }
    }

    fn dial_plan(&self, area_code: u8) -> Result<DialPlan, PabxError> {
        let plan = DialPlan::new(area_code).map_err(|e| PabxError::InvalidInput(e.to_string()))?;
        match self.csp {
            Some(csp) => plan
                .with_csp(csp)
                .map_err(|e| PabxError::InvalidInput(e.to_string())),
            None => Ok(plan),
        }
    }
}

impl fmt::Debug for SuiteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuiteConfig")
            .field("base_url", &self.base_url)
            .field("usuario", &self.usuario)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("utc_offset", &self.utc_offset)
            .field("area_code", &self.area_code)
            .field("csp", &self.csp)
            .field("use_extension_area_code", &self.use_extension_area_code)
            .finish()
    }
}

/// The suite API client. Cheap to clone (the HTTP connection pool is shared).
#[derive(Debug, Clone)]
pub struct SuiteClient {
    http: reqwest::Client,
    config: SuiteConfig,
    base: String,
}

/// A successful envelope (`http_response_code` 200).
#[derive(Debug, Clone)]
struct Envelope {
    total: Option<u64>,
    dados: Value,
    raw: Map<String, Value>,
}

impl SuiteClient {
    /// A client with its own connection pool.
    pub fn new(config: SuiteConfig) -> Result<Self, PabxError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| PabxError::InvalidInput(format!("cannot build the HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    /// A client over a shared `reqwest::Client` (the per-request timeout still applies).
    pub fn with_http_client(config: SuiteConfig, http: reqwest::Client) -> Result<Self, PabxError> {
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base)
            .map_err(|e| PabxError::InvalidInput(format!("invalid base URL {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PabxError::InvalidInput(format!(
                "base URL must be http(s): {base:?}"
            )));
        }
        if config.usuario.trim().is_empty() || config.token.trim().is_empty() {
            return Err(PabxError::InvalidInput(
                "usuario and token are required".into(),
            ));
        }
        config.dial_plan(config.area_code)?;
        Ok(SuiteClient { http, config, base })
    }

    pub fn config(&self) -> &SuiteConfig {
        &self.config
    }

    fn event_context(&self) -> EventContext {
        EventContext {
            utc_offset: self.config.utc_offset,
            area_code: Some(self.config.area_code),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Transport and envelope
    // -----------------------------------------------------------------------------------------

    async fn request(
        &self,
        method: Method,
        endpoint: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        list: bool,
    ) -> Result<Envelope, PabxError> {
        let url = format!("{}/{endpoint}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .timeout(self.config.timeout)
            .header("usuario", &self.config.usuario)
            .header("token", &self.config.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        tracing::debug!(%method, endpoint, "pabx suite request");
        let resp = req.send().await.map_err(|e| transport(endpoint, &e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(endpoint, &e))?;
        let envelope = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .filter(|m| m.contains_key("http_response_code"));
        read_envelope(endpoint, status, envelope, &bytes, list)
    }

    // -----------------------------------------------------------------------------------------
    // Operations
    // -----------------------------------------------------------------------------------------

    /// `POST /discar_numero`: rings `extension`, then dials `e164_number` with the dialling rule
    /// relative to the extension's own DDD (see [`SuiteConfig::use_extension_area_code`]).
    pub async fn click_to_call(
        &self,
        extension: &str,
        e164_number: &str,
    ) -> Result<CallRef, PabxError> {
        let extension = extension.trim();
        if extension.is_empty()
            || !extension.bytes().all(|b| b.is_ascii_digit())
            || extension.len() > 10
        {
            return Err(PabxError::InvalidInput(format!(
                "extension must be 1 to 10 digits: {extension:?}"
            )));
        }
        let area_code = if self.config.use_extension_area_code {
            self.extension_area_code(extension).await?
        } else {
            None
        }
        .unwrap_or(self.config.area_code);
        let plan = self
            .config
            .dial_plan(area_code)
            .or_else(|_| self.config.dial_plan(self.config.area_code))?;
        let numero_destino = plan
            .dial_string(e164_number)
            .map_err(|e| PabxError::InvalidInput(e.to_string()))?;
        // The documented example sends the extension as a JSON number.
        let ramal = extension
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(extension));
        let body = json!({"dados": {
            "numero_ramal_origem": ramal,
            "numero_destino": numero_destino,
            "variaveis": [],
        }});
        let env = self
            .request(Method::POST, "discar_numero", &[], Some(&body), false)
            .await?;
        let provider_call_id = field(&env.raw, &["chamada_id", "call_id", "callid"])
            .and_then(flex_string)
            .or_else(|| {
                first_record(&env.dados)
                    .and_then(|d| field(d, &["chamada_id", "call_id", "id"]))
                    .and_then(flex_string)
            });
        Ok(CallRef { provider_call_id })
    }

    /// The extension's own `codigo_area`, when `listar_ramais` knows it. Credentials errors are
    /// returned (dialling would fail the same way); other errors fall back to the tenant DDD.
    async fn extension_area_code(&self, number: &str) -> Result<Option<u8>, PabxError> {
        match self.list_extensions().await {
            Ok(exts) => Ok(exts
                .into_iter()
                .find(|e| e.number == number)
                .and_then(|e| e.area_code)),
            Err(e @ PabxError::Unauthorized(_)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "pabx: cannot read the extension's area code; using the tenant's");
                Ok(None)
            }
        }
    }

    /// `GET /listar_historico_chamada`: one page of CDRs.
    ///
    /// The period is sent as `data_inicial/data_final` (`dd/mm/aaaa`) and `hora_inicial/
    /// hora_final` (`HH:MM`) in the PABX's local time. Because the API works in minutes, and it is
    /// unknown whether the hours bound a continuous period or a daily window, a period within one
    /// local day is sent with its own hours (widened to whole minutes) and a longer one with
    /// `00:00`–`23:59`: the PABX may return calls slightly outside the period, never fewer.
    /// Callers dedupe by `provider_call_id`.
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        page: PageRequest,
    ) -> Result<Page<CallRecord>, PabxError> {
        let limit = page.limit.clamp(1, MAX_PAGE_SIZE);
        let mut query: Vec<(&str, String)> = Vec::with_capacity(10);
        query.extend(self.period_params(filter.since, filter.until));
        if let Some(id) = filter
            .call_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            query.push(("chamada_id", id.to_owned()));
        }
        query.push(("quantidade", limit.to_string()));
        query.push(("pos_registro_inicial", page.offset.to_string()));
        query.push(("retorna_transcricao", "sim".into()));
        query.push(("retorna_resumo", "sim".into()));
        let env = self
            .request(Method::GET, "listar_historico_chamada", &query, None, true)
            .await?;
        let ctx = RecordContext {
            utc_offset: self.config.utc_offset,
            area_code: Some(self.config.area_code),
        };
        let items: Vec<CallRecord> = records(&env.dados)
            .filter_map(|r| {
                let rec = record_from_json(r, &ctx);
                if rec.is_none() {
                    tracing::warn!("pabx: skipped a history record without chamada_id");
                }
                rec
            })
            .collect();
        Ok(Page::new(items, page.offset, limit, env.total))
    }

    fn period_params(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Vec<(&'static str, String)> {
        let off = self.config.utc_offset;
        let until = match (since, until) {
            (Some(_), None) => Some(Utc::now()),
            _ => until,
        };
        let mut out = Vec::new();
        let same_day = match (since, until) {
            (Some(s), Some(u)) => wire::format_date(s, off) == wire::format_date(u, off),
            _ => false,
        };
        if let Some(s) = since {
            out.push(("data_inicial", wire::format_date(s, off)));
            out.push((
                "hora_inicial",
                if same_day {
                    wire::format_hm(s, off)
                } else {
                    "00:00".into()
                },
            ));
        }
        if let Some(u) = until {
            // Widen to the end of the minute, without leaving the day.
            let end = u + ChronoDuration::seconds(59);
            let hm = if same_day && wire::format_date(end, off) == wire::format_date(u, off) {
                wire::format_hm(end, off)
            } else {
                "23:59".into()
            };
            out.push(("data_final", wire::format_date(u, off)));
            out.push(("hora_final", hm));
        }
        out
    }

    /// `GET /listar_ramais?ramal_id=0`: every extension.
    pub async fn list_extensions(&self) -> Result<Vec<Extension>, PabxError> {
        let env = self
            .request(
                Method::GET,
                "listar_ramais",
                &[("ramal_id", "0".into())],
                None,
                true,
            )
            .await?;
        Ok(records(&env.dados)
            .filter_map(extension_from_json)
            .collect())
    }

    /// `POST /inserir_ramal {"dados": {...}}`. When the answer does not carry the new
    /// extension, it is looked up by number in `listar_ramais`.
    pub async fn create_extension(&self, spec: &ExtensionSpec) -> Result<Extension, PabxError> {
        validate_spec(spec)?;
        let body = json!({ "dados": spec_to_json(spec, None) });
        let env = self
            .request(Method::POST, "inserir_ramal", &[], Some(&body), false)
            .await?;
        if let Some(ext) = records(&env.dados).find_map(extension_from_json) {
            return Ok(ext);
        }
        if let Some(id) = field(&env.raw, &["ramal_id", "id"]).and_then(flex_string) {
            return Ok(extension_with_id(id, spec));
        }
        self.list_extensions()
            .await?
            .into_iter()
            .find(|e| e.number == spec.number.trim())
            .ok_or_else(|| {
                PabxError::InvalidResponse(
                    "inserir_ramal succeeded but the extension is not listed".into(),
                )
            })
    }

    /// `PUT /alterar_ramal {"dados": {"ramal_id": ..., ...}}`.
    pub async fn update_extension(
        &self,
        provider_id: &str,
        spec: &ExtensionSpec,
    ) -> Result<Extension, PabxError> {
        validate_spec(spec)?;
        let id = validate_id(provider_id)?;
        let body = json!({ "dados": spec_to_json(spec, Some(id)) });
        let env = self
            .request(Method::PUT, "alterar_ramal", &[], Some(&body), false)
            .await?;
        Ok(records(&env.dados)
            .find_map(extension_from_json)
            .unwrap_or_else(|| extension_with_id(id.to_owned(), spec)))
    }

    /// `DELETE /deletar_ramal {"dados": {"ramal_id": ...}}` (the id also goes in the query, in
    /// case a proxy drops the body of a DELETE).
    pub async fn delete_extension(&self, provider_id: &str) -> Result<(), PabxError> {
        let id = validate_id(provider_id)?;
        let body = json!({ "dados": { "ramal_id": id_value(id) } });
        self.request(
            Method::DELETE,
            "deletar_ramal",
            &[("ramal_id", id.to_owned())],
            Some(&body),
            false,
        )
        .await?;
        Ok(())
    }

    /// Parses a call-end event with this account's time offset and DDD.
    pub fn parse_event(&self, headers: &HeaderMap, body: &[u8]) -> Result<CallEvent, ParseError> {
        parse_call_event(headers, body, &self.event_context())
    }
}

impl Pabx for SuiteClient {
    fn provider(&self) -> &'static str {
        "jt_suite"
    }

    fn click_to_call<'a>(
        &'a self,
        extension: &'a str,
        e164_number: &'a str,
    ) -> BoxFuture<'a, Result<CallRef, PabxError>> {
        Box::pin(SuiteClient::click_to_call(self, extension, e164_number))
    }

    fn list_calls<'a>(
        &'a self,
        filter: &'a CallFilter,
        page: PageRequest,
    ) -> BoxFuture<'a, Result<Page<CallRecord>, PabxError>> {
        Box::pin(SuiteClient::list_calls(self, filter, page))
    }

    fn list_extensions(&self) -> BoxFuture<'_, Result<Vec<Extension>, PabxError>> {
        Box::pin(SuiteClient::list_extensions(self))
    }

    fn create_extension<'a>(
        &'a self,
        spec: &'a ExtensionSpec,
    ) -> BoxFuture<'a, Result<Extension, PabxError>> {
        Box::pin(SuiteClient::create_extension(self, spec))
    }

    fn update_extension<'a>(
        &'a self,
        provider_id: &'a str,
        spec: &'a ExtensionSpec,
    ) -> BoxFuture<'a, Result<Extension, PabxError>> {
        Box::pin(SuiteClient::update_extension(self, provider_id, spec))
    }

    fn delete_extension<'a>(
        &'a self,
        provider_id: &'a str,
    ) -> BoxFuture<'a, Result<(), PabxError>> {
        Box::pin(SuiteClient::delete_extension(self, provider_id))
    }

    fn parse_event(&self, headers: &HeaderMap, body: &[u8]) -> Result<CallEvent, ParseError> {
        SuiteClient::parse_event(self, headers, body)
    }
}

fn transport(endpoint: &str, e: &reqwest::Error) -> PabxError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = format!("{endpoint}: {kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    PabxError::Transport(msg)
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn read_envelope(
    endpoint: &str,
    status: StatusCode,
    envelope: Option<Map<String, Value>>,
    bytes: &[u8],
    list: bool,
) -> Result<Envelope, PabxError> {
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        return Err(PabxError::Transport(format!(
            "{endpoint}: HTTP {status}: {}",
            snippet(bytes)
        )));
    }
    let Some(raw) = envelope else {
        return Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                PabxError::Unauthorized(format!("HTTP {status}: {}", snippet(bytes)))
            }
            s if s.is_client_error() => {
                PabxError::Rejected(format!("{endpoint}: HTTP {s}: {}", snippet(bytes)))
            }
            s => PabxError::InvalidResponse(format!(
                "{endpoint}: HTTP {s} without the suite envelope: {}",
                snippet(bytes)
            )),
        });
    };
    let code = raw.get("http_response_code").and_then(flex_u16);
    let message = raw
        .get("mensagem")
        .and_then(flex_text)
        .unwrap_or_else(|| "(sem mensagem)".into());
    match code {
        Some(200) => {}
        Some(401 | 403) => return Err(PabxError::Unauthorized(message)),
        Some(404) if list => {
            return Ok(Envelope {
                total: Some(0),
                dados: Value::Array(Vec::new()),
                raw,
            });
        }
        Some(code) => return Err(PabxError::Rejected(format!("{message} (código {code})"))),
        None => {
            return Err(PabxError::InvalidResponse(format!(
                "{endpoint}: unreadable http_response_code: {}",
                snippet(bytes)
            )));
        }
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(PabxError::Unauthorized(message));
    }
    if !status.is_success() {
        return Err(PabxError::Rejected(format!("{message} (HTTP {status})")));
    }
    let total = raw.get("qtd_total_resultados").and_then(flex_u64);
    let dados = raw.get("dados").cloned().unwrap_or(Value::Null);
    Ok(Envelope { total, dados, raw })
}

/// The records in `dados`: an array of objects, a single object, or nothing (`null`, `""`,
/// `[]`, `{}`).
fn records(dados: &Value) -> Box<dyn Iterator<Item = &Map<String, Value>> + '_> {
    match dados {
        Value::Array(items) => Box::new(items.iter().filter_map(Value::as_object)),
        Value::Object(m) if !m.is_empty() => Box::new(std::iter::once(m)),
        _ => Box::new(std::iter::empty()),
    }
}

fn first_record(dados: &Value) -> Option<&Map<String, Value>> {
    records(dados).next()
}

/// How to read one history record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordContext {
    pub utc_offset: FixedOffset,
    pub area_code: Option<u8>,
}

impl Default for RecordContext {
    fn default() -> Self {
        RecordContext {
            utc_offset: wire::sao_paulo_offset(),
            area_code: None,
        }
    }
}

/// Reads one `listar_historico_chamada` record; `None` without a `chamada_id`.
///
/// Outcome: from `sip_code` when it is a final SIP code (200 answered, 486/600/603 busy,
/// 480/408 no answer, 487 canceled, 404 and other failures failed), otherwise from `status`
/// (`filtro_status_chamada` codes 0 não atendido, 1 atendido, 2 falha, 486 ocupado, or the same
/// words), otherwise answered when there was talk time.
pub fn record_from_json(r: &Map<String, Value>, ctx: &RecordContext) -> Option<CallRecord> {
    let provider_call_id =
        field(r, &["chamada_id", "callid", "call_id", "id"]).and_then(flex_string)?;
    let party = |keys: &[&str]| {
        let raw = field(r, keys).and_then(flex_string).unwrap_or_default();
        PartyNumber {
            e164: super::dial::normalise_number(&raw, ctx.area_code),
            raw,
        }
    };
    let from = party(&["origem", "numero_origem", "src"]);
    let to = party(&["destino", "numero_destino", "dst"]);
    let stated = field(r, &["direcao", "sentido", "direction", "tipo_chamada"])
        .and_then(flex_string)
        .and_then(|s| direction_from_text(&s));
    let (direction, inferred_ext) = classify(Some(&from.raw), Some(&to.raw), stated, ctx.area_code);
    let extension = field(r, &["ramal", "numero_ramal"])
        .and_then(flex_string)
        .or(inferred_ext);
    let started_at = started_at(r, ctx.utc_offset);
    let sip_code = field(r, &["sip_code", "codigo_sip"]).and_then(flex_u16);
    let duration_s = field(r, &["duracao"]).and_then(flex_seconds).unwrap_or(0);
    let talk_s = field(r, &["duracao_real", "tempo_conversacao"])
        .and_then(flex_seconds)
        .unwrap_or(0);
    let wait_s = field(r, &["tempo_espera_total_filas", "tempo_espera"])
        .and_then(flex_seconds)
        .unwrap_or(0);
    let outcome = sip_code
        .and_then(Outcome::from_sip_code)
        .or_else(|| field(r, &["status", "status_chamada"]).and_then(outcome_from_status))
        .unwrap_or(if talk_s > 0 {
            Outcome::Answered
        } else {
            Outcome::NoAnswer
        });
    Some(CallRecord {
        provider_call_id,
        started_at,
        direction,
        from,
        to,
        extension,
        operator: field(r, &["operador", "operador_nome"]).and_then(flex_text),
        contact_name: field(r, &["cliente_nome"]).and_then(flex_text),
        outcome,
        sip_code,
        duration_s,
        talk_s,
        wait_s,
        recording_urls: recording_urls(field(r, &["link_gravacao", "gravacao"])),
        transcription: field(r, &["transcricao", "transcrição"]).and_then(flex_text),
        summary: field(r, &["resumo"]).and_then(flex_text),
        hangup_reason: field(r, &["motivo_deligamento", "motivo_desligamento"]).and_then(flex_text),
    })
}

fn started_at(r: &Map<String, Value>, offset: FixedOffset) -> Option<DateTime<Utc>> {
    let date = field(r, &["data", "data_hora", "data_inicio"]).and_then(|v| v.as_str())?;
    let time = field(r, &["hora", "hora_inicio"]).and_then(|v| v.as_str());
    match time {
        Some(t) if !date.trim().contains([' ', 'T']) => {
            wire::parse_local_date_and_time(date, t, offset)
        }
        _ => None,
    }
    .or_else(|| wire::parse_local_datetime(date, offset))
}

/// Reads `status`: the `filtro_status_chamada` codes (0, 1, 2, 486) or words.
fn outcome_from_status(v: &Value) -> Option<Outcome> {
    if let Some(code) = flex_u16(v) {
        return match code {
            0 => Some(Outcome::NoAnswer),
            1 => Some(Outcome::Answered),
            2 => Some(Outcome::Failed),
            486 => Some(Outcome::Busy),
            c => Outcome::from_sip_code(c),
        };
    }
    let s = flex_string(v)?.to_lowercase().replace(['ã', 'á'], "a");
    if s.contains("nao atend")
        || s.contains("não atend")
        || s.contains("perdid")
        || s.contains("no answer")
        || s.contains("no-answer")
    {
        Some(Outcome::NoAnswer)
    } else if s.contains("ocupad") || s.contains("busy") {
        Some(Outcome::Busy)
    } else if s.contains("cancel") || s.contains("abandon") || s.contains("desist") {
        Some(Outcome::Canceled)
    } else if s.contains("falh")
        || s.contains("fail")
        || s.contains("erro")
        || s.contains("congest")
    {
        Some(Outcome::Failed)
    } else if s.contains("atend") || s.contains("answer") || s.contains("complet") {
        Some(Outcome::Answered)
    } else {
        None
    }
}

/// Reads one `listar_ramais` record; `None` without `ramal_id` or `numero`.
pub fn extension_from_json(r: &Map<String, Value>) -> Option<Extension> {
    let provider_id = field(r, &["ramal_id", "id"]).and_then(flex_string)?;
    let number = field(r, &["numero", "ramal", "numero_ramal"]).and_then(flex_string)?;
    Some(Extension {
        provider_id,
        number,
        name: field(r, &["nome", "descricao"])
            .and_then(flex_string)
            .unwrap_or_default(),
        group: field(r, &["grupo_ramais", "grupo"]).and_then(flex_string),
        area_code: field(r, &["codigo_area", "ddd"])
            .and_then(flex_u64)
            .and_then(|n| u8::try_from(n).ok())
            .filter(|ddd| super::dial::is_valid_area_code(*ddd)),
        external_caller_id: field(r, &["caller_id_externo", "callerid_externo"])
            .and_then(flex_string),
        record_calls: field(r, &["gravar_chamadas"])
            .and_then(flex_bool)
            .unwrap_or(false),
        blocked: field(r, &["bloquear_ramal", "bloqueado"])
            .and_then(flex_bool)
            .unwrap_or(false),
    })
}

fn validate_spec(spec: &ExtensionSpec) -> Result<(), PabxError> {
    let n = spec.number.trim();
    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PabxError::InvalidInput(format!(
            "extension number must be 1 to 10 digits: {n:?}"
        )));
    }
    if let Some(ddd) = spec.area_code
        && !super::dial::is_valid_area_code(ddd)
    {
        return Err(PabxError::InvalidInput(format!(
            "invalid area code (DDD): {ddd}"
        )));
    }
    Ok(())
}

fn validate_id(id: &str) -> Result<&str, PabxError> {
    let id = id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(PabxError::InvalidInput(format!(
            "invalid extension id: {id:?}"
        )));
    }
    Ok(id)
}

fn id_value(id: &str) -> Value {
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(id))
}

fn spec_to_json(spec: &ExtensionSpec, id: Option<&str>) -> Value {
    let flag = |b: bool| if b { "1" } else { "0" };
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("ramal_id".into(), id_value(id));
    }
    m.insert("numero".into(), Value::from(spec.number.trim()));
    m.insert("nome".into(), Value::from(spec.name.trim()));
    m.insert(
        "grupo_ramais".into(),
        Value::from(spec.group.clone().unwrap_or_default()),
    );
    m.insert(
        "codigo_area".into(),
        Value::from(spec.area_code.map(|d| d.to_string()).unwrap_or_default()),
    );
    m.insert(
        "caller_id_externo".into(),
        Value::from(spec.external_caller_id.clone().unwrap_or_default()),
    );
    m.insert(
        "gravar_chamadas".into(),
        Value::from(flag(spec.record_calls)),
    );
    m.insert("bloquear_ramal".into(), Value::from(flag(spec.blocked)));
    Value::Object(m)
}

fn extension_with_id(provider_id: String, spec: &ExtensionSpec) -> Extension {
    Extension {
        provider_id,
        number: spec.number.trim().to_owned(),
        name: spec.name.trim().to_owned(),
        group: spec.group.clone().filter(|g| !g.trim().is_empty()),
        area_code: spec.area_code,
        external_caller_id: spec
            .external_caller_id
            .clone()
            .filter(|c| !c.trim().is_empty()),
        record_calls: spec.record_calls,
        blocked: spec.blocked,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::pabx::Direction;

    fn rec(v: Value) -> CallRecord {
        let ctx = RecordContext {
            area_code: Some(11),
            ..RecordContext::default()
        };
        record_from_json(v.as_object().unwrap(), &ctx).unwrap()
    }

    #[test]
    fn history_record_with_string_numbers_and_string_recording() {
        let r = rec(json!({
            "chamada_id": "1000001", "data": "05/03/2025 14:03:07", "cliente_nome": "Fulano",
            "origem": "1001", "destino": "021987654321", "operador": "Ana", "status": "Atendido",
            "sip_code": "200", "duracao": "00:00:52", "duracao_real": "00:00:47",
            "tempo_espera_total_filas": "00:00:00", "tempo_operador_total_filas": "00:00:47",
            "motivo_deligamento": "Cliente desligou", "link_gravacao": "http://x/1.wav",
            "transcricao": "Olá", "resumo": "Cliente atendeu", "campo_novo": [1, 2]
        }));
        assert_eq!(r.provider_call_id, "1000001");
        assert_eq!(
            r.started_at.unwrap().to_rfc3339(),
            "2025-03-05T17:03:07+00:00"
        );
        assert_eq!(r.direction, Direction::Outbound);
        assert_eq!(r.extension.as_deref(), Some("1001"));
        assert_eq!(r.to.e164.as_deref(), Some("+5521987654321"));
        assert_eq!(r.to.raw, "021987654321");
        assert_eq!(r.outcome, Outcome::Answered);
        assert_eq!(r.sip_code, Some(200));
        assert_eq!((r.duration_s, r.talk_s, r.wait_s), (52, 47, 0));
        assert_eq!(r.recording_urls, vec!["http://x/1.wav"]);
        assert_eq!(r.transcription.as_deref(), Some("Olá"));
        assert_eq!(r.summary.as_deref(), Some("Cliente atendeu"));
        assert_eq!(r.hangup_reason.as_deref(), Some("Cliente desligou"));
        assert_eq!(r.contact_name.as_deref(), Some("Fulano"));
        assert_eq!(r.operator.as_deref(), Some("Ana"));
    }

    #[test]
    fn history_record_with_int_numbers_and_array_recording() {
        let r = rec(json!({
            "chamada_id": 1000002, "data": "05/03/2025", "hora": "14:03:07",
            "origem": 11987654321u64, "destino": 1002, "status": 0, "sip_code": 487,
            "duracao": 15, "duracao_real": "0", "link_gravacao": ["http://x/2a.wav", "http://x/2b.wav"],
            "transcricao": null, "resumo": ""
        }));
        assert_eq!(r.provider_call_id, "1000002");
        assert_eq!(
            r.started_at.unwrap().to_rfc3339(),
            "2025-03-05T17:03:07+00:00"
        );
        assert_eq!(r.direction, Direction::Inbound);
        assert_eq!(r.extension.as_deref(), Some("1002"));
        assert_eq!(r.from.e164.as_deref(), Some("+5511987654321"));
        assert_eq!(r.outcome, Outcome::Canceled);
        assert_eq!((r.duration_s, r.talk_s), (15, 0));
        assert_eq!(r.recording_urls.len(), 2);
        assert_eq!((r.transcription, r.summary), (None, None));
    }

    #[test]
    fn outcome_falls_back_to_status_then_talk_time() {
        let base = |extra: Value| {
            let mut v = json!({"chamada_id": "1", "origem": "1001", "destino": "987654321"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            rec(v).outcome
        };
        assert_eq!(base(json!({"status": "486"})), Outcome::Busy);
        assert_eq!(base(json!({"status": 2})), Outcome::Failed);
        assert_eq!(base(json!({"status": "1"})), Outcome::Answered);
        assert_eq!(base(json!({"status": "Não atendido"})), Outcome::NoAnswer);
        assert_eq!(base(json!({"status": "NAO ATENDIDA"})), Outcome::NoAnswer);
        assert_eq!(base(json!({"status": "Ocupado"})), Outcome::Busy);
        assert_eq!(base(json!({"status": "Falha"})), Outcome::Failed);
        assert_eq!(base(json!({"status": "ATENDIDA"})), Outcome::Answered);
        assert_eq!(base(json!({"sip_code": 486, "status": "1"})), Outcome::Busy);
        assert_eq!(base(json!({"sip_code": 480})), Outcome::NoAnswer);
        assert_eq!(base(json!({"sip_code": 404})), Outcome::Failed);
        assert_eq!(
            base(json!({"sip_code": "", "duracao_real": "00:00:03"})),
            Outcome::Answered
        );
        assert_eq!(base(json!({})), Outcome::NoAnswer);
    }

    #[test]
    fn records_without_id_are_skipped_and_dados_shapes() {
        assert!(
            record_from_json(
                json!({"origem": "1"}).as_object().unwrap(),
                &RecordContext::default()
            )
            .is_none()
        );
        assert_eq!(records(&json!(null)).count(), 0);
        assert_eq!(records(&json!("")).count(), 0);
        assert_eq!(records(&json!({})).count(), 0);
        assert_eq!(records(&json!({"a": 1})).count(), 1);
        assert_eq!(records(&json!([{"a": 1}, 2, {"b": 2}])).count(), 2);
    }

    #[test]
    fn extensions_from_mixed_types() {
        let e = extension_from_json(
            json!({
                "ramal_id": 7, "numero": 1001, "nome": "Recepção", "grupo_ramais": "Vendas",
                "codigo_area": "11", "caller_id_externo": "1130001000",
                "gravar_chamadas": "1", "bloquear_ramal": "0"
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(e.provider_id, "7");
        assert_eq!(e.number, "1001");
        assert_eq!(e.area_code, Some(11));
        assert!(e.record_calls && !e.blocked);
        let e = extension_from_json(json!({"ramal_id": "8", "numero": "1002", "codigo_area": "20", "gravar_chamadas": 0, "bloquear_ramal": true}).as_object().unwrap()).unwrap();
        assert_eq!(e.area_code, None);
        assert!(!e.record_calls && e.blocked);
        assert!(extension_from_json(json!({"numero": "1"}).as_object().unwrap()).is_none());
    }

    #[test]
    fn envelope_mapping() {
        let ok = |code: Value| {
            let m = json!({"http_response_code": code, "mensagem": "m"})
                .as_object()
                .unwrap()
                .clone();
            read_envelope("x", StatusCode::OK, Some(m), b"", false)
        };
        assert!(ok(json!(200)).is_ok());
        assert!(ok(json!("200")).is_ok());
        assert_eq!(
            ok(json!(401)).unwrap_err(),
            PabxError::Unauthorized("m".into())
        );
        assert_eq!(
            ok(json!("403")).unwrap_err(),
            PabxError::Unauthorized("m".into())
        );
        assert!(matches!(ok(json!(400)), Err(PabxError::Rejected(_))));
        assert!(matches!(ok(json!(404)), Err(PabxError::Rejected(_))));
        assert!(matches!(ok(json!(500)), Err(PabxError::Rejected(_))));
        assert!(matches!(
            ok(json!("abc")),
            Err(PabxError::InvalidResponse(_))
        ));
        let m = json!({"http_response_code": 404, "mensagem": "Nenhum registro"})
            .as_object()
            .unwrap()
            .clone();
        let env = read_envelope("x", StatusCode::OK, Some(m), b"", true).unwrap();
        assert_eq!(env.total, Some(0));
        let e = read_envelope("x", StatusCode::BAD_GATEWAY, None, b"<html>", false).unwrap_err();
        assert!(e.is_retryable());
        let e = read_envelope("x", StatusCode::OK, None, b"<html>", false).unwrap_err();
        assert!(matches!(e, PabxError::InvalidResponse(_)));
        let e = read_envelope("x", StatusCode::UNAUTHORIZED, None, b"", false).unwrap_err();
        assert!(matches!(e, PabxError::Unauthorized(_)));
        let e = read_envelope("x", StatusCode::NOT_FOUND, None, b"", false).unwrap_err();
        assert!(matches!(e, PabxError::Rejected(_)));
        let e = read_envelope("x", StatusCode::TOO_MANY_REQUESTS, None, b"", false).unwrap_err();
        assert!(e.is_retryable());
    }

    #[test]
    fn period_parameters() {
        let client = SuiteClient::new(SuiteConfig::new(
            "http://127.0.0.1:1/suite/api",
            "u",
            "t",
            11,
        ))
        .unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Same local day: its own hours, the end widened to the minute.
        let p = client.period_params(
            Some(at("2025-03-05T13:10:30Z")),
            Some(at("2025-03-05T14:20:15Z")),
        );
        assert_eq!(
            p,
            vec![
                ("data_inicial", "05/03/2025".to_owned()),
                ("hora_inicial", "10:10".to_owned()),
                ("data_final", "05/03/2025".to_owned()),
                ("hora_final", "11:21".to_owned()),
            ]
        );
        // Across local days: whole days.
        let p = client.period_params(
            Some(at("2025-03-05T13:10:30Z")),
            Some(at("2025-03-07T02:59:00Z")),
        );
        assert_eq!(
            p,
            vec![
                ("data_inicial", "05/03/2025".to_owned()),
                ("hora_inicial", "00:00".to_owned()),
                ("data_final", "06/03/2025".to_owned()),
                ("hora_final", "23:59".to_owned()),
            ]
        );
        // 23:59:30 local: widening would leave the day, so 23:59.
        let p = client.period_params(
            Some(at("2025-03-06T00:00:00Z")),
            Some(at("2025-03-06T02:59:30Z")),
        );
        assert_eq!(p[3], ("hora_final", "23:59".to_owned()));
        assert!(client.period_params(None, None).is_empty());
    }

    #[test]
    fn config_is_validated_and_token_redacted() {
        assert!(SuiteClient::new(SuiteConfig::new("ftp://x", "u", "t", 11)).is_err());
        assert!(SuiteClient::new(SuiteConfig::new("not a url", "u", "t", 11)).is_err());
        assert!(SuiteClient::new(SuiteConfig::new("http://x", "", "t", 11)).is_err());
        assert!(SuiteClient::new(SuiteConfig::new("http://x", "u", "t", 20)).is_err());
        let mut c = SuiteConfig::new("http://x", "u", "segredo", 11);
        c.csp = Some(5);
        assert!(SuiteClient::new(c.clone()).is_err());
        assert!(!format!("{c:?}").contains("segredo"));
    }
}
