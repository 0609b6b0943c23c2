//! The real D4Sign REST API v1 client.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder, StatusCode, multipart};
use serde_json::{Value, json};

use super::signature::{
    BoxFuture, DocumentState, DocumentStatus, SignError, SignatureProvider, Signer, SignerAct,
    SignerKey, SignerStatus,
};
use super::wire::{error_message, first_of, flag, non_empty, single_object, str_field};

/// Production API root.
pub const PRODUCTION_BASE_URL: &str = "https://secure.d4sign.com.br/api/v1";
/// Sandbox API root (documents have no legal validity).
pub const SANDBOX_BASE_URL: &str = "https://sandbox.d4sign.com.br/api/v1";

/// Where and how to reach one D4Sign account.
#[derive(Clone)]
pub struct ClientConfig {
    /// API root without a trailing slash, e.g. [`PRODUCTION_BASE_URL`] or a mock's URL.
    pub base_url: String,
    /// `tokenAPI`.
    pub token_api: String,
    /// `cryptKey`.
    pub crypt_key: String,
    /// Timeout of an upload and of the signed-file download (default 30 s).
    pub upload_timeout: Duration,
    /// Timeout of every other call (default 10 s).
    pub timeout: Duration,
}

impl ClientConfig {
    /// A configuration for `base_url` with the default timeouts.
    pub fn new(
        base_url: impl Into<String>,
        token_api: impl Into<String>,
        crypt_key: impl Into<String>,
    ) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            token_api: token_api.into(),
            crypt_key: crypt_key.into(),
            upload_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }

    /// Production (`secure.d4sign.com.br`).
    pub fn production(token_api: impl Into<String>, crypt_key: impl Into<String>) -> Self {
        Self::new(PRODUCTION_BASE_URL, token_api, crypt_key)
    }

    /// Sandbox (`sandbox.d4sign.com.br`).
    pub fn sandbox(token_api: impl Into<String>, crypt_key: impl Into<String>) -> Self {
        Self::new(SANDBOX_BASE_URL, token_api, crypt_key)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token_api", &"<redacted>")
            .field("crypt_key", &"<redacted>")
            .field("upload_timeout", &self.upload_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A safe ("cofre") of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safe {
    pub id: String,
    pub name: String,
}

/// D4Sign REST API v1 client. Cheap to clone (shares the connection pool).
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    http: reqwest::Client,
}

impl Client {
    /// Builds a client. Fails only if the TLS backend cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Client, SignError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SignError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(Client { config, http })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A request to `{base_url}{path}` carrying the credentials (query and `tokenAPI` header).
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.config.base_url, path))
            .query(&[
                ("tokenAPI", self.config.token_api.as_str()),
                ("cryptKey", self.config.crypt_key.as_str()),
            ])
            .header("tokenAPI", &self.config.token_api)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeout)
    }

    /// Sends, maps the status to [`SignError`] and parses the JSON body of a success.
    async fn call(&self, req: RequestBuilder) -> Result<Value, SignError> {
        let (status, body) = send(req).await?;
        check_status(status, &body)?;
        serde_json::from_slice(&body).map_err(|e| {
            SignError::InvalidResponse(format!("body is not JSON ({e}): {}", error_message(&body)))
        })
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Value, SignError> {
        self.call(self.request(Method::POST, path).json(body)).await
    }

    /// `GET /safes`: the account's safes (`uuid_safe` or `uuid-safe`, `name-safe`).
    pub async fn list_safes(&self) -> Result<Vec<Safe>, SignError> {
        let v = self.call(self.request(Method::GET, "/safes")).await?;
        let items = v
            .as_array()
            .ok_or_else(|| SignError::InvalidResponse(format!("/safes is not an array: {v}")))?;
        items
            .iter()
            .map(|s| {
                let id = first_of(s, &["uuid_safe", "uuid-safe", "uuidSafe"]).ok_or_else(|| {
                    SignError::InvalidResponse(format!("safe without uuid_safe: {s}"))
                })?;
                let name = first_of(s, &["name-safe", "name_safe", "nameSafe", "name"])
                    .unwrap_or_default();
                Ok(Safe { id, name })
            })
            .collect()
    }

    /// `POST /documents/{uuid}/upload` (multipart, part `file`).
    pub async fn upload(
        &self,
        safe_id: &str,
        file_name: &str,
        bytes: Bytes,
    ) -> Result<String, SignError> {
        let part = multipart::Part::bytes(bytes.to_vec())
            .file_name(file_name.to_string())
            .mime_str(mime_of(file_name))
            .map_err(|e| SignError::Rejected(format!("mime type: {e}")))?;
        let form = multipart::Form::new().part("file", part);
        let req = self
            .request(
                Method::POST,
                &format!("/documents/{}/upload", path_segment(safe_id)?),
            )
            .timeout(self.config.upload_timeout)
            .multipart(form);
        let v = self.call(req).await?;
        non_empty(&v, "uuid")
            .ok_or_else(|| SignError::InvalidResponse(format!("upload answer without uuid: {v}")))
    }

    /// `GET /documents/{uuid}/list`: the document fields plus its signers.
    pub async fn document_status(&self, document_id: &str) -> Result<DocumentStatus, SignError> {
        let path = format!("/documents/{}/list", path_segment(document_id)?);
        let v = self.call(self.request(Method::GET, &path)).await?;
        parse_document_status(document_id, &v)
    }

    /// `POST /documents/{uuid}/createlist` for the signers not yet listed (matched by e-mail,
    /// case-insensitively), then `POST /documents/{uuid}/addinfo` with the name and CPF of
    /// every signer the provider still shows without a name (so a retry after a failed
    /// `addinfo` completes it). Returns one key per requested signer, in order.
    pub async fn create_signer_list(
        &self,
        document_id: &str,
        signers: &[Signer],
    ) -> Result<Vec<SignerKey>, SignError> {
        let doc = path_segment(document_id)?;
        // (email, key, needs addinfo) of the signers already on the document.
        let mut known: Vec<(String, String, bool)> = self
            .document_status(document_id)
            .await?
            .signers
            .into_iter()
            .map(|s| (s.email, s.key, s.name.trim().is_empty()))
            .collect();
        let key_of = |known: &[(String, String, bool)], email: &str| {
            known
                .iter()
                .find(|(e, _, _)| e.eq_ignore_ascii_case(email))
                .map(|(_, k, needs)| (k.clone(), *needs))
        };

        let missing: Vec<&Signer> = signers
            .iter()
            .filter(|s| key_of(&known, &s.email).is_none())
            .collect();
        if !missing.is_empty() {
            let list: Vec<Value> = missing.iter().map(|s| signer_json(s)).collect();
            let v = self
                .post_json(
                    &format!("/documents/{doc}/createlist"),
                    &json!({ "signers": list }),
                )
                .await?;
            let items = v.get("message").and_then(Value::as_array).ok_or_else(|| {
                SignError::InvalidResponse(format!("createlist answer without a list: {v}"))
            })?;
            for item in items {
                if let (Some(email), Some(key)) =
                    (non_empty(item, "email"), non_empty(item, "key_signer"))
                {
                    known.push((email, key, true));
                }
            }
        }

        let mut keys = Vec::with_capacity(signers.len());
        for s in signers {
            let (key, needs_info) = key_of(&known, &s.email).ok_or_else(|| {
                SignError::InvalidResponse(format!(
                    "createlist returned no key_signer for {}",
                    s.email
                ))
            })?;
            let name = s.name.trim();
            if needs_info && (!name.is_empty() || s.cpf.is_some()) {
                let mut info = json!({ "key_signer": key, "email": s.email.trim() });
                if !name.is_empty() {
                    info["display_name"] = json!(name);
                }
                if let Some(cpf) = &s.cpf {
                    info["documentation"] = json!(cpf.masked());
                }
                self.post_json(&format!("/documents/{doc}/addinfo"), &info)
                    .await?;
            }
            keys.push(SignerKey {
                email: s.email.clone(),
                key,
            });
        }
        Ok(keys)
    }

    /// `POST /documents/{uuid}/sendtosigner` with `skip_email:"0"`, `workflow:"0"`.
    pub async fn send_to_signer(&self, document_id: &str, message: &str) -> Result<(), SignError> {
        let path = format!("/documents/{}/sendtosigner", path_segment(document_id)?);
        let body = json!({ "message": message, "skip_email": "0", "workflow": "0" });
        self.post_json(&path, &body).await.map(drop)
    }

    /// `POST /documents/{uuid}/cancel` with `{comment}`.
    pub async fn cancel_document(&self, document_id: &str, comment: &str) -> Result<(), SignError> {
        let path = format!("/documents/{}/cancel", path_segment(document_id)?);
        self.post_json(&path, &json!({ "comment": comment }))
            .await
            .map(drop)
    }

    /// `POST /documents/{uuid}/download` → `{url, name}`, then an unauthenticated `GET url`
    /// of the binary (the credentials never go to that second host).
    pub async fn download(&self, document_id: &str) -> Result<Bytes, SignError> {
        let path = format!("/documents/{}/download", path_segment(document_id)?);
        let body = json!({ "type": "pdf", "language": "pt", "document": "false" });
        let v = self.post_json(&path, &body).await?;
        let url = non_empty(&v, "url").ok_or_else(|| {
            SignError::InvalidResponse(format!("download answer without url: {v}"))
        })?;
        let req = self
            .http
            .get(&url)
            .timeout(self.config.upload_timeout)
            .header(reqwest::header::ACCEPT, "application/pdf, */*");
        let (status, bytes) = send(req).await?;
        check_status(status, &bytes)?;
        if !bytes.starts_with(b"%PDF") {
            return Err(SignError::InvalidResponse(format!(
                "downloaded file is not a PDF ({} bytes)",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// `POST /documents/{uuid}/webhooks` with `{url}`.
    pub async fn add_webhook(&self, document_id: &str, url: &str) -> Result<(), SignError> {
        let path = format!("/documents/{}/webhooks", path_segment(document_id)?);
        self.post_json(&path, &json!({ "url": url }))
            .await
            .map(drop)
    }
}

impl SignatureProvider for Client {
    fn upload_document<'a>(
        &'a self,
        safe_id: &'a str,
        file_name: &'a str,
        pdf: Bytes,
    ) -> BoxFuture<'a, Result<String, SignError>> {
        Box::pin(self.upload(safe_id, file_name, pdf))
    }

    fn add_signers<'a>(
        &'a self,
        document_id: &'a str,
        signers: &'a [Signer],
    ) -> BoxFuture<'a, Result<Vec<SignerKey>, SignError>> {
        Box::pin(self.create_signer_list(document_id, signers))
    }

    fn send_to_signers<'a>(
        &'a self,
        document_id: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, Result<(), SignError>> {
        Box::pin(self.send_to_signer(document_id, message))
    }

    fn status<'a>(
        &'a self,
        document_id: &'a str,
    ) -> BoxFuture<'a, Result<DocumentStatus, SignError>> {
        Box::pin(self.document_status(document_id))
    }

    fn cancel<'a>(
        &'a self,
        document_id: &'a str,
        comment: &'a str,
    ) -> BoxFuture<'a, Result<(), SignError>> {
        Box::pin(self.cancel_document(document_id, comment))
    }

    fn download_pdf<'a>(&'a self, document_id: &'a str) -> BoxFuture<'a, Result<Bytes, SignError>> {
        Box::pin(self.download(document_id))
    }

    fn register_webhook<'a>(
        &'a self,
        document_id: &'a str,
        url: &'a str,
    ) -> BoxFuture<'a, Result<(), SignError>> {
        Box::pin(self.add_webhook(document_id, url))
    }
}

async fn send(req: RequestBuilder) -> Result<(StatusCode, Bytes), SignError> {
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(transport)?;
    Ok((status, body))
}

fn transport(e: reqwest::Error) -> SignError {
    // Strip the URL: it carries tokenAPI and cryptKey in its query.
    SignError::Transport(e.without_url().to_string())
}

/// 2xx passes; 401/403 are credentials; 408, 429 and 5xx are transient; other 4xx are refusals.
fn check_status(status: StatusCode, body: &[u8]) -> Result<(), SignError> {
    if status.is_success() {
        return Ok(());
    }
    let msg = error_message(body);
    Err(match status.as_u16() {
        401 | 403 => SignError::Unauthorized,
        408 | 429 => SignError::Transport(format!("HTTP {status}: {msg}")),
        s if s >= 500 => SignError::Transport(format!("HTTP {status}: {msg}")),
        _ => SignError::Rejected(msg),
    })
}

/// Ids go into the URL path: refuse anything that could change the path or query.
fn path_segment(id: &str) -> Result<&str, SignError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(SignError::Rejected(format!("invalid id {id:?}")))
    }
}

fn mime_of(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "bmp" => "image/bmp",
        _ => "application/pdf",
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// One `createlist` entry; every value a string, as D4Sign documents it.
fn signer_json(s: &Signer) -> Value {
    json!({
        "email": s.email.trim(),
        "act": s.act.code().to_string(),
        "foreign": bool_str(s.foreign),
        "certificadoicpbr": bool_str(s.icp_brasil_certificate),
        "assinatura_presencial": bool_str(s.in_person),
        "docauth": "0",
        "docauthandselfie": "0",
        "embed_methodauth": "email",
        "embed_smsnumber": "",
        "upload_allow": "0",
        "upload_obs": "",
    })
}

/// Parses the `/documents/{uuid}/list` (or `/documents/{uuid}`) answer: an object or a
/// one-element array of document fields, with an optional `list` of signers.
pub(crate) fn parse_document_status(
    document_id: &str,
    v: &Value,
) -> Result<DocumentStatus, SignError> {
    let doc = single_object(v).ok_or_else(|| {
        SignError::InvalidResponse(format!("document answer is not an object: {v}"))
    })?;
    let status_id = str_field(doc, "statusId")
        .ok_or_else(|| SignError::InvalidResponse(format!("document without statusId: {doc}")))?;
    let state = DocumentState::from_status_id(&status_id)
        .ok_or_else(|| SignError::InvalidResponse(format!("unknown statusId {status_id:?}")))?;
    let signers = match doc.get("list") {
        Some(Value::Array(items)) => items.iter().filter_map(parse_signer).collect(),
        Some(Value::Object(map)) => map.values().filter_map(parse_signer).collect(),
        _ => Vec::new(),
    };
    Ok(DocumentStatus {
        document_id: non_empty(doc, "uuidDoc").unwrap_or_else(|| document_id.to_string()),
        name: non_empty(doc, "nameDoc").unwrap_or_default(),
        state,
        comment: non_empty(doc, "statusComment"),
        cancelled_by: non_empty(doc, "whoCanceled"),
        signers,
    })
}

fn parse_signer(s: &Value) -> Option<SignerStatus> {
    let email = non_empty(s, "email")?;
    let info = s.get("sign_info").filter(|i| i.is_object());
    Some(SignerStatus {
        key: non_empty(s, "key_signer").unwrap_or_default(),
        email,
        name: non_empty(s, "user_name").unwrap_or_default(),
        act: non_empty(s, "act")
            .and_then(|a| a.trim().parse::<u8>().ok())
            .map(SignerAct::from_code),
        signed: flag(s, "signed"),
        ip: info.and_then(|i| non_empty(i, "ip")),
        signed_at: info.and_then(|i| non_empty(i, "date_signed")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_status_is_read_tolerantly() -> Result<(), SignError> {
        let v = json!([{
            "uuidDoc": "d1", "nameDoc": "c.pdf", "statusId": 3, "statusComment": "",
            "list": {"0": {"key_signer": "k1", "email": "a@x", "signed": 1,
                           "sign_info": {"ip": "10.0.0.1", "date_signed": "2026-03-05 10:00:00"}},
                     "1": {"key_signer": "k2", "email": "b@x", "signed": "0", "act": "5"}}
        }]);
        let s = parse_document_status("d1", &v)?;
        assert_eq!(s.state, DocumentState::WaitingSignatures);
        assert_eq!(s.comment, None);
        assert_eq!(s.signers.len(), 2);
        let a = s.signers.iter().find(|x| x.email == "a@x");
        assert_eq!(a.map(|x| x.signed), Some(true));
        assert_eq!(a.and_then(|x| x.ip.clone()), Some("10.0.0.1".into()));
        let b = s.signers.iter().find(|x| x.email == "b@x");
        assert_eq!(b.and_then(|x| x.act), Some(SignerAct::Witness));

        let obj = json!({"statusId": "4"});
        assert_eq!(parse_document_status("d2", &obj)?.document_id, "d2");
        assert!(matches!(
            parse_document_status("d", &json!({"statusId": "9"})),
            Err(SignError::InvalidResponse(_))
        ));
        assert!(matches!(
            parse_document_status("d", &json!("oops")),
            Err(SignError::InvalidResponse(_))
        ));
        Ok(())
    }

    #[test]
    fn status_codes_map_to_errors() {
        let body = br#"{"message":"nope"}"#;
        assert_eq!(check_status(StatusCode::OK, body), Ok(()));
        assert_eq!(
            check_status(StatusCode::UNAUTHORIZED, body),
            Err(SignError::Unauthorized)
        );
        assert_eq!(
            check_status(StatusCode::BAD_REQUEST, body),
            Err(SignError::Rejected("nope".into()))
        );
        assert!(check_status(StatusCode::BAD_GATEWAY, b"<html>").is_err_and(|e| e.is_retryable()));
        assert!(check_status(StatusCode::TOO_MANY_REQUESTS, body).is_err_and(|e| e.is_retryable()));
        assert_eq!(
            signer_json(&Signer::new("a@x", "A", SignerAct::Party))["act"],
            "4"
        );
    }
}
