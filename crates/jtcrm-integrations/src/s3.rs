//! An S3-compatible object store client (AWS S3, MinIO, Ceph RGW, Cloudflare R2, …): `PUT`, `GET`
//! and `DELETE` of objects by key, path-style URLs (`{endpoint}/{bucket}/{key}`), every request
//! signed with AWS Signature Version 4 ([`sigv4`]) including the payload's SHA-256 (never
//! `UNSIGNED-PAYLOAD`). [`mock`] is a local S3 that keeps objects in memory and verifies the
//! signatures. Facts about the API: `docs/files.md`.

pub mod mock;
pub mod sigv4;

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;

/// Where and as whom to store objects.
#[derive(Clone)]
pub struct S3Config {
    /// Base URL, e.g. `https://s3.sa-east-1.amazonaws.com` or `http://127.0.0.1:9000`; a path
    /// prefix is kept (`http://gw/s3` → `http://gw/s3/{bucket}/{key}`).
    pub endpoint: String,
    pub bucket: String,
    /// The signing region (`us-east-1` for most S3-compatible servers).
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Connect + whole-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .finish()
    }
}

/// What went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The configuration cannot work (bad endpoint URL, empty bucket, bad key).
    #[error("configuração S3 inválida: {0}")]
    Config(String),
    /// The server could not be reached or the response could not be read.
    #[error("falha de rede com o armazenamento S3: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered with an error (`code` from its XML body, e.g.
    /// `SignatureDoesNotMatch`, `AccessDenied`, `NoSuchBucket`).
    #[error("armazenamento S3 respondeu {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
}

impl S3Error {
    /// True for `404 NoSuchBucket` (a configuration error, never "no such object").
    pub fn is_no_such_bucket(&self) -> bool {
        matches!(self, S3Error::Status { code, .. } if code == "NoSuchBucket")
    }

    /// True for answers that mean the credentials are wrong or lack the rights.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            S3Error::Status {
                status: 401 | 403,
                ..
            }
        )
    }
}

/// A client of one bucket.
#[derive(Clone, Debug)]
pub struct Client {
    cfg: S3Config,
    base: reqwest::Url,
    /// `host[:port]` as sent in the `Host` header.
    host: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(cfg: S3Config) -> Result<Self, S3Error> {
        let base = reqwest::Url::parse(cfg.endpoint.trim_end_matches('/'))
            .map_err(|e| S3Error::Config(format!("endpoint {:?}: {e}", cfg.endpoint)))?;
        if !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
            return Err(S3Error::Config(format!(
                "endpoint {:?}: use http(s)://host[:porta]",
                cfg.endpoint
            )));
        }
        let Some(h) = base.host_str() else {
            return Err(S3Error::Config(format!(
                "endpoint {:?} sem host",
                cfg.endpoint
            )));
        };
        let host = match base.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        };
        let bucket_ok = (3..=63).contains(&cfg.bucket.len())
            && cfg
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        if !bucket_ok {
            return Err(S3Error::Config(format!(
                "bucket {:?}: 3 a 63 caracteres a-z, 0-9, '-' ou '.'",
                cfg.bucket
            )));
        }
        if cfg.access_key_id.is_empty() || cfg.secret_access_key.is_empty() || cfg.region.is_empty()
        {
            return Err(S3Error::Config(
                "access key id, secret access key e região são obrigatórios".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(S3Error::Transport)?;
        Ok(Client {
            cfg,
            base,
            host,
            http,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.cfg.bucket
    }

    /// The canonical (encoded) path of an object: `{endpoint path}/{bucket}/{key}`.
    fn object_path(&self, key: &str) -> Result<String, S3Error> {
        if key.is_empty() || key.starts_with('/') || key.len() > 1024 {
            return Err(S3Error::Config(format!(
                "chave de objeto inválida: {key:?}"
            )));
        }
        let prefix = self.base.path().trim_end_matches('/');
        Ok(format!(
            "{prefix}/{}/{}",
            sigv4::uri_encode(&self.cfg.bucket, false),
            sigv4::uri_encode(key, true)
        ))
    }

    /// Builds and signs a request; the body's SHA-256 is part of the signature.
    fn signed(
        &self,
        method: reqwest::Method,
        key: &str,
        body: Option<&[u8]>,
    ) -> Result<reqwest::RequestBuilder, S3Error> {
        let path = self.object_path(key)?;
        let mut url = self.base.clone();
        url.set_path(&path);
        let payload_hash = match body {
            Some(b) => sigv4::sha256_hex(b),
            None => sigv4::EMPTY_SHA256.to_string(),
        };
        let amz_date = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        // The payload hash covers the body, so `content-length` need not be signed (hyper omits
        // it on an empty body).
        let headers = [
            ("host".to_string(), self.host.clone()),
            ("x-amz-content-sha256".to_string(), payload_hash.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        let auth = sigv4::authorization(
            &sigv4::Request {
                method: method.as_str(),
                canonical_uri: &path,
                query: &[],
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &self.cfg.access_key_id,
            &self.cfg.secret_access_key,
            &self.cfg.region,
            &amz_date,
        );
        let mut rb = self
            .http
            .request(method, url)
            .header("x-amz-content-sha256", payload_hash)
            .header("x-amz-date", amz_date)
            .header(reqwest::header::AUTHORIZATION, auth);
        if let Some(b) = body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(b.to_vec());
        }
        Ok(rb)
    }

    /// Stores the object (replacing any with the same key).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), S3Error> {
        let resp = self
            .signed(reqwest::Method::PUT, key, Some(bytes))?
            .send()
            .await
            .map_err(S3Error::Transport)?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(error_of(resp).await)
    }

    /// The object's bytes; `None` on `404 NoSuchKey`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        let resp = self
            .signed(reqwest::Method::GET, key, None)?
            .send()
            .await
            .map_err(S3Error::Transport)?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                resp.bytes().await.map_err(S3Error::Transport)?.to_vec(),
            )),
            StatusCode::NOT_FOUND => {
                let e = error_of(resp).await;
                // A missing bucket is a configuration error, not a missing object.
                if e.is_no_such_bucket() {
                    Err(e)
                } else {
                    Ok(None)
                }
            }
            _ => Err(error_of(resp).await),
        }
    }

    /// Removes the object; S3 answers `204` whether it existed or not, and a `404` is taken as
    /// success too.
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let resp = self
            .signed(reqwest::Method::DELETE, key, None)?
            .send()
            .await
            .map_err(S3Error::Transport)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => {
                let e = error_of(resp).await;
                if e.is_no_such_bucket() {
                    Err(e)
                } else {
                    Ok(())
                }
            }
            _ => Err(error_of(resp).await),
        }
    }
}

/// The error of a non-success response, from S3's XML body
/// (`<Error><Code>…</Code><Message>…</Message></Error>`).
async fn error_of(resp: reqwest::Response) -> S3Error {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let code = xml_text(&body, "Code").unwrap_or_else(|| resp_reason(status).to_string());
    let message = xml_text(&body, "Message").unwrap_or_default();
    S3Error::Status {
        status,
        code,
        message,
    }
}

fn resp_reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The text of the first `<tag>…</tag>` (S3 error bodies are flat and unescaped in practice;
/// the five XML entities are decoded).
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Escapes text for an XML element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    async fn mock_and_client(secret: &str) -> (mock::MockS3Handle, Client) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let opts = mock::MockS3Options::default();
        let h = mock::serve(listener, opts.clone()).await.unwrap();
        let c = Client::new(S3Config {
            endpoint: h.base_url().to_string(),
            bucket: opts.bucket.clone(),
            region: opts.region.clone(),
            access_key_id: opts.access_key_id.clone(),
            secret_access_key: secret.to_string(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        (h, c)
    }

    #[tokio::test]
    async fn s3_client_round_trips_against_the_mock() {
        let (h, c) = mock_and_client(&mock::MockS3Options::default().secret_access_key).await;
        c.put("t1/logo/a b$c.png", b"\x89PNG bytes").await.unwrap();
        assert_eq!(
            h.object("t1/logo/a b$c.png").as_deref(),
            Some(&b"\x89PNG bytes"[..])
        );
        assert_eq!(
            c.get("t1/logo/a b$c.png").await.unwrap().as_deref(),
            Some(&b"\x89PNG bytes"[..])
        );
        c.put("t1/logo/a b$c.png", b"again").await.unwrap();
        assert_eq!(c.get("t1/logo/a b$c.png").await.unwrap().unwrap(), b"again");
        assert!(c.get("t1/logo/missing").await.unwrap().is_none());
        c.put("t1/empty", b"").await.unwrap();
        assert_eq!(c.get("t1/empty").await.unwrap().unwrap(), b"");
        c.delete("t1/logo/a b$c.png").await.unwrap();
        c.delete("t1/logo/a b$c.png").await.unwrap();
        assert!(c.get("t1/logo/a b$c.png").await.unwrap().is_none());
        assert_eq!(h.keys(), vec!["t1/empty".to_string()]);
        // Another bucket is an error on every operation, not a missing object.
        let mut other = c.cfg.clone();
        other.bucket = "not-the-bucket".into();
        let other = Client::new(other).unwrap();
        assert!(other.get("t1/empty").await.unwrap_err().is_no_such_bucket());
        assert!(
            other
                .delete("t1/empty")
                .await
                .unwrap_err()
                .is_no_such_bucket()
        );
        assert!(
            other
                .put("t1/x", b"x")
                .await
                .unwrap_err()
                .is_no_such_bucket()
        );
    }

    #[tokio::test]
    async fn s3_client_reports_a_wrong_secret_as_signature_does_not_match() {
        let (h, c) = mock_and_client("not-the-secret").await;
        let e = c.put("t1/x", b"x").await.unwrap_err();
        match &e {
            S3Error::Status { status, code, .. } => {
                assert_eq!((*status, code.as_str()), (403, "SignatureDoesNotMatch"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.is_auth());
        assert!(h.keys().is_empty());
        assert!(c.get("t1/x").await.unwrap_err().is_auth());
        assert!(c.delete("t1/x").await.unwrap_err().is_auth());
    }

    #[tokio::test]
    async fn s3_client_errors_on_unreachable_and_bad_config() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut cfg = S3Config {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "jtcrm".into(),
            region: "us-east-1".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            timeout: Duration::from_secs(2),
        };
        let c = Client::new(cfg.clone()).unwrap();
        assert!(matches!(c.put("a", b"x").await, Err(S3Error::Transport(_))));
        cfg.bucket = "Bad_Bucket".into();
        assert!(matches!(Client::new(cfg.clone()), Err(S3Error::Config(_))));
        cfg.bucket = "jtcrm".into();
        cfg.endpoint = "ftp://x".into();
        assert!(matches!(Client::new(cfg), Err(S3Error::Config(_))));
        let xml = "<Error><Code>NoSuchKey</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(xml_text(xml, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(xml_text(xml, "Message").as_deref(), Some("a & b"));
    }
}
