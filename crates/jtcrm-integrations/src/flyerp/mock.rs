//! A faithful local FlyERP (`/apis/{Acao}`) for tests, `jtcrm system-test` and local trials.
//! Start it with [`serve`] and point a [`super::Client`] at [`MockFlyErpHandle::base_url`].
//!
//! What it does like the real service (see `docs/integrations/flyerp.md`):
//! - routes `/apis/{Acao}` and requires `Authorization: Bearer <token>` (401 otherwise);
//! - answers business errors as HTTP 200 `{"Sucesso":false,"Mensagem":…}`: duplicate
//!   `referencia`, unknown `cnpj_cpf_cliente` without a `cliente` block, a CNPJ/CPF whose
//!   check digits are wrong, malformed dates (`dd/mm/aaaa` only), non-numeric money;
//! - upserts the customer from `cliente`, keyed by `cnpj_cpf` masked or unmasked, and answers
//!   `{"Sucesso":true,"Mensagem":…,"Id":<number>}`;
//! - `GetContrato?cnpj_cpf_cliente=` → `{"contratos":[…]}`, `GetClienteEFornecedores` and
//!   `GetContasAReceber` → arrays, all paginated by 500 with `inicioRegistros`.
//!
//! The handle counts the contracts received, injects transient 500s (before processing, or
//! after storing: a "lost response") and exposes what was stored.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::NaiveDate;
use jtcrm_types::br::{Cnpj, Cpf};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::client::{ClientConfig, normalize_tax_id};

/// Behaviour knobs of the mock.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Expected bearer token.
    pub token: String,
    /// Id of the first contract (later ones count up).
    pub first_contract_id: i64,
    /// Code of the first customer created.
    pub first_customer_code: i64,
    /// When set, `servicos[].referencia` must be one of these product references.
    pub products: Option<Vec<String>>,
    /// List page size (FlyERP: 500).
    pub page_size: usize,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            token: "00000000-0000-4000-8000-00000000f1e7".into(),
            first_contract_id: 1001,
            first_customer_code: 501,
            products: None,
            page_size: 500,
        }
    }
}

/// A customer as stored (the `cliente` fields, plus `codigo`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCustomer {
    pub codigo: i64,
    /// Unmasked, upper-case CNPJ/CPF.
    pub key: String,
    pub fields: Map<String, Value>,
}

/// A contract as stored: the body received (minus `cliente`) and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredContract {
    pub id: i64,
    pub referencia: String,
    /// Unmasked, upper-case CNPJ/CPF of the customer.
    pub customer_key: String,
    pub customer_code: i64,
    pub body: Map<String, Value>,
}

#[derive(Default)]
struct MockState {
    customers: Vec<StoredCustomer>,
    contracts: Vec<StoredContract>,
    next_contract: i64,
    next_customer: i64,
    fail_next: u32,
    lose_next: u32,
    stale_reads: u32,
    contract_posts: usize,
    requests: usize,
    by_action: HashMap<String, usize>,
}

struct Inner {
    opts: MockOptions,
    state: Mutex<MockState>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running mock. Dropping it stops the server.
pub struct MockFlyErpHandle {
    inner: Arc<Inner>,
    base_url: String,
    server: JoinHandle<()>,
}

impl Drop for MockFlyErpHandle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the mock on `listener` (bind `127.0.0.1:0` in tests).
pub async fn serve(listener: TcpListener, opts: MockOptions) -> std::io::Result<MockFlyErpHandle> {
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let state = MockState {
        next_contract: opts.first_contract_id,
        next_customer: opts.first_customer_code,
        ..MockState::default()
    };
    let inner = Arc::new(Inner {
        opts,
        state: Mutex::new(state),
    });
    let app = Router::new()
        .route("/apis/{acao}", any(dispatch))
        .fallback(|| async { envelope_error(StatusCode::NOT_FOUND, "Recurso não encontrado") })
        .with_state(inner.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "flyerp mock server stopped");
        }
    });
    Ok(MockFlyErpHandle {
        inner,
        base_url: format!("http://{host}"),
        server,
    })
}

impl MockFlyErpHandle {
    /// Origin to give the client (`http://127.0.0.1:PORT`; the client appends `/apis/…`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bearer token the mock expects.
    pub fn token(&self) -> &str {
        &self.inner.opts.token
    }

    /// A client configuration for this mock.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.base_url.clone(), self.inner.opts.token.clone())
    }

    /// `CadastrarContrato` calls received (accepted, refused or failed).
    pub fn contracts_received(&self) -> usize {
        self.inner.lock().contract_posts
    }

    /// Calls per action (`"GetContrato"` → 3, ...), authenticated or not.
    pub fn calls(&self, acao: &str) -> usize {
        self.inner.lock().by_action.get(acao).copied().unwrap_or(0)
    }

    /// Every request received.
    pub fn requests(&self) -> usize {
        self.inner.lock().requests
    }

    /// The contracts stored, in creation order.
    pub fn contracts(&self) -> Vec<StoredContract> {
        self.inner.lock().contracts.clone()
    }

    /// The customers stored, in creation order.
    pub fn customers(&self) -> Vec<StoredCustomer> {
        self.inner.lock().customers.clone()
    }

    /// The next `n` authenticated calls answer HTTP 500 without doing anything.
    pub fn fail_next(&self, n: u32) {
        self.inner.lock().fail_next = n;
    }

    /// The next `n` `GetContrato` reads answer an empty list, as a lagging read replica would
    /// (exercises the client's duplicate-reference fallback).
    pub fn stale_next_reads(&self, n: u32) {
        self.inner.lock().stale_reads = n;
    }

    /// The next `n` authenticated `CadastrarContrato` calls are processed (the contract is
    /// stored) but answer HTTP 500, as when the response is lost on the way back.
    pub fn lose_next_responses(&self, n: u32) {
        self.inner.lock().lose_next = n;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

fn envelope_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        axum::Json(json!({ "Sucesso": false, "Mensagem": msg, "Id": 0 })),
    )
        .into_response()
}

/// A business refusal: HTTP 200, `Sucesso:false`.
fn business(msg: &str) -> Response {
    envelope_error(StatusCode::OK, msg)
}

fn bearer_ok(headers: &HeaderMap, token: &str) -> bool {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = v.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let given = parts.next().unwrap_or_default().trim();
    scheme.eq_ignore_ascii_case("bearer") && !given.is_empty() && given == token
}

async fn dispatch(
    State(inner): State<Arc<Inner>>,
    Path(acao): Path<String>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let authorized = bearer_ok(&headers, &inner.opts.token);
    let (fail, lose) = {
        let mut st = inner.lock();
        st.requests += 1;
        *st.by_action.entry(acao.clone()).or_default() += 1;
        if acao == "CadastrarContrato" {
            st.contract_posts += 1;
        }
        if !authorized {
            (false, false)
        } else if st.fail_next > 0 {
            st.fail_next -= 1;
            (true, false)
        } else if acao == "CadastrarContrato" && st.lose_next > 0 {
            st.lose_next -= 1;
            (false, true)
        } else {
            (false, false)
        }
    };
    if !authorized {
        return envelope_error(StatusCode::UNAUTHORIZED, "Token inválido ou não informado");
    }
    if fail {
        return envelope_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Erro interno no servidor",
        );
    }
    let resp = match (acao.as_str(), &method) {
        ("CadastrarContrato", &Method::POST) => cadastrar_contrato(&inner, &headers, &body),
        ("GetContrato", &Method::GET) => get_contrato(&inner, &query),
        ("GetClienteEFornecedores", &Method::GET) => get_clientes(&inner, &query),
        ("GetContasAReceber", &Method::GET) => get_contas(&query),
        (
            "CadastrarContrato" | "GetContrato" | "GetClienteEFornecedores" | "GetContasAReceber",
            _,
        ) => envelope_error(StatusCode::METHOD_NOT_ALLOWED, "Método não permitido"),
        _ => envelope_error(
            StatusCode::NOT_FOUND,
            &format!("Ação '{acao}' não encontrada"),
        ),
    };
    if lose {
        return envelope_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Erro interno no servidor",
        );
    }
    resp
}

/// A valid CPF (11 digits) or CNPJ (14 characters), masked or not: its unmasked key.
fn tax_key(s: &str) -> Option<String> {
    if let Ok(c) = Cnpj::parse(s) {
        return Some(c.as_str().to_string());
    }
    Cpf::parse(s).ok().map(|c| c.as_str().to_string())
}

fn str_of(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A `dd/mm/aaaa` date field: `Ok(None)` when absent, `Err(msg)` when malformed.
fn date_of(m: &Map<String, Value>, key: &str) -> Result<Option<NaiveDate>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            let shape = s.len() == 10
                && s.bytes().enumerate().all(|(i, b)| {
                    if i == 2 || i == 5 {
                        b == b'/'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            match NaiveDate::parse_from_str(s, "%d/%m/%Y") {
                Ok(d) if shape => Ok(Some(d)),
                _ => Err(format!("Data inválida em {key}: '{s}' (use dd/mm/aaaa)")),
            }
        }
        Some(other) => Err(format!("Data inválida em {key}: {other} (use dd/mm/aaaa)")),
    }
}

/// An integer field: `Ok(None)` when absent, `Err` when not an integer in range.
fn int_of(m: &Map<String, Value>, key: &str, min: i64, max: i64) -> Result<Option<i64>, String> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            _ => Err(format!("Valor inválido em {key}: {n}")),
        },
        Some(other) => Err(format!(
            "Valor inválido em {key}: {other} (esperado inteiro)"
        )),
    }
}

fn validate_contract(
    opts: &MockOptions,
    body: &Map<String, Value>,
) -> Result<(String, Option<Map<String, Value>>), String> {
    let raw = str_of(body, "cnpj_cpf_cliente")
        .ok_or_else(|| "O campo cnpj_cpf_cliente é obrigatório".to_string())?;
    let key = tax_key(&raw).ok_or_else(|| format!("CNPJ/CPF do cliente inválido: '{raw}'"))?;
    let cliente = match body.get("cliente") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            let craw = str_of(c, "cnpj_cpf")
                .ok_or_else(|| "O campo cliente.cnpj_cpf é obrigatório".to_string())?;
            let ckey =
                tax_key(&craw).ok_or_else(|| format!("CNPJ/CPF do cliente inválido: '{craw}'"))?;
            if ckey != key {
                return Err("cliente.cnpj_cpf difere de cnpj_cpf_cliente".into());
            }
            Some(c.clone())
        }
        Some(_) => return Err("O campo cliente deve ser um objeto".into()),
    };
    date_of(body, "data_primeiro_vencimento")?
        .ok_or_else(|| "O campo data_primeiro_vencimento é obrigatório".to_string())?;
    int_of(body, "dia_vencimento", 1, 31)?
        .ok_or_else(|| "O campo dia_vencimento é obrigatório".to_string())?;
    for key in [
        "data_vigencia_inicial",
        "data_vigencia_final",
        "data_proximo_reajuste",
    ] {
        date_of(body, key)?;
    }
    int_of(body, "recorrencia", 1, 120)?;
    let servicos = match body.get("servicos") {
        Some(Value::Array(s)) if !s.is_empty() => s,
        _ => return Err("Informe ao menos um serviço em servicos".into()),
    };
    for s in servicos {
        let Some(s) = s.as_object() else {
            return Err("Serviço inválido".into());
        };
        let referencia = str_of(s, "referencia")
            .ok_or_else(|| "O campo servicos.referencia é obrigatório".to_string())?;
        if let Some(products) = &opts.products
            && !products.contains(&referencia)
        {
            return Err(format!(
                "Serviço com referência '{referencia}' não encontrado"
            ));
        }
        match s.get("quantidade") {
            Some(Value::Number(n)) if n.as_f64().is_some_and(|q| q > 0.0) => {}
            _ => return Err("servicos.quantidade deve ser um número positivo".into()),
        }
        match s.get("valor_unitario") {
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v >= 0.0) => {}
            _ => return Err("servicos.valor_unitario deve ser numérico (reais)".into()),
        }
        match s.get("nao_faturavel") {
            None | Some(Value::Bool(_)) | Some(Value::Null) => {}
            _ => return Err("servicos.nao_faturavel deve ser booleano".into()),
        }
        date_of(s, "data_inicio_servico")?;
        date_of(s, "data_reajuste")?;
    }
    Ok((key, cliente))
}

fn cadastrar_contrato(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let body = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) if is_json => m,
        _ => return envelope_error(StatusCode::BAD_REQUEST, "Corpo JSON inválido"),
    };
    let (key, cliente) = match validate_contract(&inner.opts, &body) {
        Ok(v) => v,
        Err(msg) => return business(&msg),
    };
    let referencia = str_of(&body, "referencia").unwrap_or_default();

    let mut st = inner.lock();
    if !referencia.is_empty() && st.contracts.iter().any(|c| c.referencia == referencia) {
        return business(&format!(
            "Já existe um contrato com a referencia '{referencia}' (referencia duplicada)"
        ));
    }
    let customer_code = match (st.customers.iter_mut().find(|c| c.key == key), cliente) {
        (Some(existing), Some(fields)) => {
            let only_create = matches!(fields.get("somente_criacao"), Some(Value::Bool(true)));
            if !only_create {
                for (k, v) in fields {
                    existing.fields.insert(k, v);
                }
            }
            existing.codigo
        }
        (Some(existing), None) => existing.codigo,
        (None, Some(fields)) => {
            if str_of(&fields, "razao_social_nome").is_none() {
                return business("O campo cliente.razao_social_nome é obrigatório");
            }
            let codigo = st.next_customer;
            st.next_customer += 1;
            st.customers.push(StoredCustomer {
                codigo,
                key: key.clone(),
                fields,
            });
            codigo
        }
        (None, None) => {
            return business(&format!(
                "Cliente não encontrado para o CNPJ/CPF '{}' e bloco cliente não informado",
                str_of(&body, "cnpj_cpf_cliente").unwrap_or_default()
            ));
        }
    };
    let id = st.next_contract;
    st.next_contract += 1;
    let mut stored = body;
    stored.remove("cliente");
    st.contracts.push(StoredContract {
        id,
        referencia,
        customer_key: key,
        customer_code,
        body: stored,
    });
    (
        StatusCode::OK,
        axum::Json(json!({
            "Sucesso": true,
            "Mensagem": "Contrato cadastrado com sucesso",
            "Id": id,
        })),
    )
        .into_response()
}

/// `inicioRegistros`, the 0-based offset of the page (absent: 0).
fn offset(query: &HashMap<String, String>) -> Option<usize> {
    match query.get("inicioRegistros").map(|s| s.trim()) {
        None | Some("") => Some(0),
        Some(s) => s.parse().ok(),
    }
}

fn get_contrato(inner: &Inner, query: &HashMap<String, String>) -> Response {
    let Some(start) = offset(query) else {
        return business("inicioRegistros deve ser um número inteiro");
    };
    let wanted = query
        .get("cnpj_cpf_cliente")
        .map(|s| normalize_tax_id(s))
        .filter(|s| !s.is_empty());
    let situacao = query.get("situacao").filter(|s| !s.trim().is_empty());
    let recorrencia = query.get("recorrencia").filter(|s| !s.trim().is_empty());
    let mut st = inner.lock();
    if st.stale_reads > 0 {
        st.stale_reads -= 1;
        return (StatusCode::OK, axum::Json(json!({ "contratos": [] }))).into_response();
    }
    let items: Vec<Value> = st
        .contracts
        .iter()
        .filter(|c| wanted.as_ref().is_none_or(|w| *w == c.customer_key))
        .filter(|c| {
            situacao.is_none_or(|s| {
                str_of(&c.body, "situacao").unwrap_or_else(|| "1".into()) == s.trim()
            })
        })
        .filter(|c| {
            recorrencia.is_none_or(|r| str_of(&c.body, "recorrencia").as_deref() == Some(r.trim()))
        })
        .skip(start)
        .take(inner.opts.page_size)
        .map(|c| {
            let mut v = c.body.clone();
            v.insert("id".into(), json!(c.id));
            v.insert("codigo_cliente".into(), json!(c.customer_code));
            v.entry("situacao").or_insert(json!(1));
            Value::Object(v)
        })
        .collect();
    (StatusCode::OK, axum::Json(json!({ "contratos": items }))).into_response()
}

fn get_clientes(inner: &Inner, query: &HashMap<String, String>) -> Response {
    let Some(start) = offset(query) else {
        return business("inicioRegistros deve ser um número inteiro");
    };
    let codigo = query
        .get("codigo")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let cnpj = query
        .get("cnpj_cpf")
        .map(|s| normalize_tax_id(s))
        .filter(|s| !s.is_empty());
    let st = inner.lock();
    let items: Vec<Value> = st
        .customers
        .iter()
        .filter(|c| codigo.as_ref().is_none_or(|k| *k == c.codigo.to_string()))
        .filter(|c| cnpj.as_ref().is_none_or(|k| *k == c.key))
        .skip(start)
        .take(inner.opts.page_size)
        .map(|c| {
            let mut v = c.fields.clone();
            v.insert("codigo".into(), json!(c.codigo));
            v.insert("enquadramento".into(), json!(1));
            Value::Object(v)
        })
        .collect();
    (StatusCode::OK, axum::Json(Value::Array(items))).into_response()
}

fn get_contas(query: &HashMap<String, String>) -> Response {
    for key in ["dataVencimentoInicial", "dataVencimentoFinal"] {
        if let Some(v) = query.get(key) {
            let m: Map<String, Value> = [(key.to_string(), json!(v))].into_iter().collect();
            if let Err(msg) = date_of(&m, key) {
                return business(&msg);
            }
        }
    }
    (StatusCode::OK, axum::Json(json!([]))).into_response()
}
