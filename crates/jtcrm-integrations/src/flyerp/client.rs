//! The FlyERP API client.

use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Map, Value, json};

use super::erp::{BoxFuture, ContractSync, ErpContractRef, ErpError, ErpProvider};

/// Page size of FlyERP list reads (`inicioRegistros` advances by this).
const PAGE: usize = 500;
/// Bound on pages read when looking a contract up (20 000 contracts of one customer).
const MAX_PAGES: usize = 40;

/// Where and how to reach one FlyERP company.
#[derive(Clone)]
pub struct ClientConfig {
    /// Origin without `/apis`, e.g. `https://minhaempresa.flyerp.com.br` or a mock's URL.
    pub base_url: String,
    /// Bearer token (a UUID issued by FlyERP).
    pub token: String,
    /// Timeout of each call (default 10 s).
    pub timeout: Duration,
    /// Tenant-wide contract fields merged into every `CadastrarContrato` body when the
    /// contract does not set them (e.g. `codigo_forma_pagamento`, `codigo_banco_conta`,
    /// `codigo_plano_contas`, `situacao`, `tipo_faturamento`).
    pub contract_defaults: Map<String, Value>,
}

impl ClientConfig {
    /// A configuration for `base_url` with default timeout and no contract defaults.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            token: token.into(),
            timeout: Duration::from_secs(10),
            contract_defaults: Map::new(),
        }
    }

    /// `https://{empresa}.flyerp.com.br`. The company slug must be a DNS label
    /// (`[a-z0-9-]`), so it cannot redirect requests to another host.
    pub fn for_company(empresa: &str, token: impl Into<String>) -> Result<ClientConfig, ErpError> {
        let slug = empresa.trim().to_ascii_lowercase();
        let ok = !slug.is_empty()
            && slug.len() <= 63
            && !slug.starts_with('-')
            && !slug.ends_with('-')
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(ErpError::InvalidInput(format!(
                "invalid FlyERP company {empresa:?}"
            )));
        }
        Ok(ClientConfig::new(
            format!("https://{slug}.flyerp.com.br"),
            token,
        ))
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("contract_defaults", &self.contract_defaults)
            .finish()
    }
}

/// FlyERP API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    http: reqwest::Client,
}

impl Client {
    /// Builds a client. Fails only if the TLS backend cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Client, ErpError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ErpError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(Client { config, http })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn request(&self, method: Method, acao: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/apis/{acao}", self.config.base_url))
            .bearer_auth(&self.config.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeout)
    }

    /// Sends; maps HTTP status and the `{"Sucesso":false}` envelope to [`ErpError`]; returns
    /// the JSON body.
    async fn call(&self, req: RequestBuilder) -> Result<Value, ErpError> {
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let msg = json
                .as_ref()
                .and_then(mensagem)
                .unwrap_or_else(|| snippet(&body));
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErpError::Unauthorized,
                StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                    ErpError::Transport(format!("HTTP {status}: {msg}"))
                }
                s if s.is_server_error() => ErpError::Transport(format!("HTTP {status}: {msg}")),
                _ => ErpError::Rejected(msg),
            });
        }
        let json = json.ok_or_else(|| {
            ErpError::InvalidResponse(format!("body is not JSON: {}", snippet(&body)))
        })?;
        if sucesso(&json) == Some(false) {
            return Err(ErpError::Rejected(
                mensagem(&json).unwrap_or_else(|| "Sucesso:false without Mensagem".into()),
            ));
        }
        Ok(json)
    }

    /// `POST /apis/CadastrarContrato` once, no lookup: the contract's `Id`.
    pub async fn create_contract(&self, contract: &ContractSync) -> Result<String, ErpError> {
        let mut body = contract_body(contract);
        if let Value::Object(map) = &mut body {
            for (k, v) in &self.config.contract_defaults {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let v = self
            .call(self.request(Method::POST, "CadastrarContrato").json(&body))
            .await?;
        if sucesso(&v) != Some(true) {
            return Err(ErpError::InvalidResponse(format!(
                "CadastrarContrato answer without Sucesso: {v}"
            )));
        }
        id_of(&v).ok_or_else(|| {
            ErpError::InvalidResponse(format!("CadastrarContrato answer without Id: {v}"))
        })
    }

    /// `GET /apis/GetContrato?cnpj_cpf_cliente=…&inicioRegistros=…`, every page.
    pub async fn contracts_of(&self, cnpj_cpf: &str) -> Result<Vec<Value>, ErpError> {
        let key = normalize_tax_id(cnpj_cpf);
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let start = (page * PAGE).to_string();
            let req = self.request(Method::GET, "GetContrato").query(&[
                ("cnpj_cpf_cliente", key.as_str()),
                ("inicioRegistros", start.as_str()),
            ]);
            let v = self.call(req).await?;
            let items = match &v {
                Value::Array(items) => items.clone(),
                Value::Object(m) => match m.get("contratos").or_else(|| m.get("Contratos")) {
                    Some(Value::Array(items)) => items.clone(),
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => {
                        return Err(ErpError::InvalidResponse(format!(
                            "GetContrato contratos is not a list: {other}"
                        )));
                    }
                },
                other => {
                    return Err(ErpError::InvalidResponse(format!(
                        "GetContrato answer: {other}"
                    )));
                }
            };
            let n = items.len();
            out.extend(items);
            if n < PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// The contract of `cnpj_cpf` whose `referencia` is `reference`.
    pub async fn find_by_reference(
        &self,
        cnpj_cpf: &str,
        reference: &str,
    ) -> Result<Option<ErpContractRef>, ErpError> {
        let wanted = reference.trim();
        for c in self.contracts_of(cnpj_cpf).await? {
            let r = c
                .get("referencia")
                .or_else(|| c.get("Referencia"))
                .and_then(scalar);
            if r.as_deref().map(str::trim) == Some(wanted) {
                let id = id_of(&c).ok_or_else(|| {
                    ErpError::InvalidResponse(format!("GetContrato item without id: {c}"))
                })?;
                return Ok(Some(ErpContractRef { id, created: false }));
            }
        }
        Ok(None)
    }

    /// Look up by reference; create if absent; on a duplicate-reference refusal (a concurrent
    /// or earlier creation whose answer was lost) look up again.
    pub async fn upsert(&self, contract: &ContractSync) -> Result<ErpContractRef, ErpError> {
        contract.validate()?;
        let cnpj = &contract.customer.cnpj_cpf;
        if let Some(found) = self.find_by_reference(cnpj, &contract.reference).await? {
            return Ok(found);
        }
        match self.create_contract(contract).await {
            Ok(id) => Ok(ErpContractRef { id, created: true }),
            Err(ErpError::Rejected(msg)) if is_duplicate_reference(&msg) => {
                match self.find_by_reference(cnpj, &contract.reference).await? {
                    Some(found) => Ok(found),
                    None => Err(ErpError::Rejected(msg)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /apis/GetClienteEFornecedores?codigo=0&enquadramento=1`: any 2xx JSON answer
    /// means the token works.
    pub async fn check_credentials(&self) -> Result<(), ErpError> {
        let req = self
            .request(Method::GET, "GetClienteEFornecedores")
            .query(&[("codigo", "0"), ("enquadramento", "1")]);
        self.call(req).await.map(drop)
    }
}

impl ErpProvider for Client {
    fn upsert_contract<'a>(
        &'a self,
        contract: &'a ContractSync,
    ) -> BoxFuture<'a, Result<ErpContractRef, ErpError>> {
        Box::pin(self.upsert(contract))
    }

    fn find_contract_by_reference<'a>(
        &'a self,
        cnpj_cpf: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ErpContractRef>, ErpError>> {
        Box::pin(self.find_by_reference(cnpj_cpf, reference))
    }

    fn test_credentials(&self) -> BoxFuture<'_, Result<(), ErpError>> {
        Box::pin(self.check_credentials())
    }
}

fn transport(e: reqwest::Error) -> ErpError {
    ErpError::Transport(e.to_string())
}

/// `Sucesso` as a bool (`true`, `"true"`, `"True"` tolerated); `None` when absent.
fn sucesso(v: &Value) -> Option<bool> {
    match v.get("Sucesso").or_else(|| v.get("sucesso"))? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

fn mensagem(v: &Value) -> Option<String> {
    ["Mensagem", "mensagem", "Message", "message"]
        .iter()
        .find_map(|k| v.get(*k).and_then(scalar))
        .filter(|m| !m.trim().is_empty())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id of an envelope (`Id`) or of a listed contract (`id`, `codigo`, ...).
fn id_of(v: &Value) -> Option<String> {
    [
        "Id",
        "id",
        "ID",
        "codigo",
        "Codigo",
        "id_contrato",
        "IdContrato",
    ]
    .iter()
    .find_map(|k| v.get(*k).and_then(scalar))
    .filter(|s| !s.trim().is_empty() && s.trim() != "0")
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

/// Whether a `Mensagem` reports that the `referencia` is already used.
fn is_duplicate_reference(msg: &str) -> bool {
    let m = msg.to_lowercase();
    (m.contains("referencia") || m.contains("referência"))
        && [
            "duplic",
            "já existe",
            "ja existe",
            "já cadastrad",
            "ja cadastrad",
            "em uso",
        ]
        .iter()
        .any(|k| m.contains(k))
}

/// CNPJ/CPF without mask, upper-case (the 2026 alphanumeric CNPJ has letters).
pub fn normalize_tax_id(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// Cents as a JSON number of reais: 12990 → 129.9 (serialised `129.9`), exact for any amount
/// below 2^53 cents.
fn reais(cents: i64) -> Value {
    // i64 → f64 is exact below 2^53; dividing by 100 rounds to the nearest double, which
    // serde_json prints as the shortest decimal that round-trips (two decimals at most).
    json!(cents as f64 / 100.0)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
        map.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// The `CadastrarContrato` JSON body of a contract (field names as FlyERP documents them;
/// dates `dd/mm/aaaa`; money in reais as numbers; absent optional fields omitted).
pub fn contract_body(c: &ContractSync) -> Value {
    let cu = &c.customer;
    let mut cliente = Map::new();
    put(&mut cliente, "cnpj_cpf", Some(&cu.cnpj_cpf));
    put(
        &mut cliente,
        "inscricao_estadual_RG",
        cu.state_registration.as_deref(),
    );
    put(&mut cliente, "razao_social_nome", Some(&cu.razao_social));
    put(
        &mut cliente,
        "nome_fantasia_apelido",
        cu.nome_fantasia.as_deref(),
    );
    put(&mut cliente, "endereco", cu.street.as_deref());
    put(&mut cliente, "numero", cu.number.as_deref());
    put(&mut cliente, "complemento", cu.complement.as_deref());
    put(&mut cliente, "bairro", cu.district.as_deref());
    put(&mut cliente, "cidade", cu.city.as_deref());
    put(&mut cliente, "estado", cu.state.as_deref());
    put(&mut cliente, "cep", cu.cep.as_deref());
    put(
        &mut cliente,
        "telefone1",
        cu.phones.first().map(String::as_str),
    );
    put(
        &mut cliente,
        "telefone2",
        cu.phones.get(1).map(String::as_str),
    );
    put(&mut cliente, "contato_nome", cu.contact_name.as_deref());
    put(
        &mut cliente,
        "contato_telefone",
        cu.contact_phone.as_deref(),
    );
    put(&mut cliente, "email", cu.email.as_deref());
    put(&mut cliente, "observacao", cu.notes.as_deref());
    put(&mut cliente, "codigo_vendedor", c.seller_code.as_deref());

    let servicos: Vec<Value> = c
        .services
        .iter()
        .map(|s| {
            let mut m = Map::new();
            put(&mut m, "referencia", Some(&s.product_code));
            m.insert("quantidade".into(), json!(s.quantity));
            m.insert("valor_unitario".into(), reais(s.unit_price_cents));
            put(&mut m, "complemento", s.description.as_deref());
            m.insert("nao_faturavel".into(), json!(s.non_billable));
            if let Some(d) = s.start_date {
                m.insert("data_inicio_servico".into(), json!(date(d)));
            }
            Value::Object(m)
        })
        .collect();

    let mut m = Map::new();
    put(&mut m, "cnpj_cpf_cliente", Some(&cu.cnpj_cpf));
    put(&mut m, "referencia", Some(&c.reference));
    put(&mut m, "descricao", c.description.as_deref());
    m.insert(
        "data_primeiro_vencimento".into(),
        json!(date(c.first_due_date)),
    );
    m.insert("dia_vencimento".into(), json!(c.due_day));
    put(&mut m, "codigo_vendedor", c.seller_code.as_deref());
    m.insert("data_vigencia_inicial".into(), json!(date(c.start_date)));
    if let Some(end) = c.end_date {
        m.insert("data_vigencia_final".into(), json!(date(end)));
    }
    m.insert("recorrencia".into(), json!(c.recurrence_months));
    put(&mut m, "observacao_nao_fiscal", c.notes.as_deref());
    m.insert("servicos".into(), Value::Array(servicos));
    m.insert("cliente".into(), Value::Object(cliente));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_reference_messages() {
        for m in [
            "Já existe um contrato com a referencia 'X' (referencia duplicada)",
            "Referência já cadastrada",
            "referencia em uso por outro contrato",
            "REFERENCIA DUPLICADA",
        ] {
            assert!(is_duplicate_reference(m), "{m}");
        }
        for m in [
            "CNPJ/CPF do cliente inválido",
            "Já existe um cliente com este e-mail",
            "referencia obrigatória",
        ] {
            assert!(!is_duplicate_reference(m), "{m}");
        }
    }

    #[test]
    fn envelope_readers_are_tolerant() {
        assert_eq!(sucesso(&json!({"Sucesso": true})), Some(true));
        assert_eq!(sucesso(&json!({"Sucesso": "False"})), Some(false));
        assert_eq!(sucesso(&json!({"sucesso": false})), Some(false));
        assert_eq!(sucesso(&json!({})), None);
        assert_eq!(id_of(&json!({"Id": 42})), Some("42".into()));
        assert_eq!(id_of(&json!({"Id": "42"})), Some("42".into()));
        assert_eq!(id_of(&json!({"codigo": 7})), Some("7".into()));
        assert_eq!(id_of(&json!({"Id": 0})), None);
        assert_eq!(mensagem(&json!({"Mensagem": "x"})), Some("x".into()));
        assert_eq!(normalize_tax_id("12.abc.345/01de-35"), "12ABC34501DE35");
        assert_eq!(reais(12990), json!(129.9));
        assert_eq!(reais(5), json!(0.05));
    }
}
