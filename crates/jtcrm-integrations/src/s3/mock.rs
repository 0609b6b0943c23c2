//! A local S3-compatible object store for tests, `jtcrm mock s3` and local trials. Start it with
//! [`serve`] and point a [`super::Client`] (or `JTCRM_S3_ENDPOINT`) at
//! [`MockS3Handle::base_url`].
//!
//! What it does like S3 (path-style requests, `/{bucket}/{key}`):
//! - verifies the AWS Signature Version 4 of every request with the configured keys: a missing
//!   or malformed `Authorization` is `403 AccessDenied`, an unknown access key
//!   `403 InvalidAccessKeyId`, a clock more than 15 minutes off `403 RequestTimeTooSkewed`, a wrong
//!   region `400 AuthorizationHeaderMalformed`, any other difference
//!   `403 SignatureDoesNotMatch` (with the `StringToSign` and `CanonicalRequest` it expected, as
//!   S3 does);
//! - checks `x-amz-content-sha256` against the body (`400 XAmzContentSHA256Mismatch`);
//! - `PUT` stores (replacing), `GET`/`HEAD` read (`404 NoSuchKey`), `DELETE` answers `204` whether
//!   the object existed or not; another bucket is `404 NoSuchBucket`;
//! - errors are `application/xml` `<Error><Code>…</Code><Message>…</Message>…</Error>`.
//!
//! Stricter than S3: `UNSIGNED-PAYLOAD` is refused (`400 InvalidRequest`) unless
//! [`MockS3Options::allow_unsigned_payload`], so tests prove the client signs the payload.
//! Objects live in memory only.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, Utc};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{sigv4, xml_escape};

/// The keys and bucket the mock accepts.
#[derive(Debug, Clone)]
pub struct MockS3Options {
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` (S3 does; off by default).
    pub allow_unsigned_payload: bool,
    /// Largest object accepted (`413 EntityTooLarge` above).
    pub max_object_bytes: usize,
}

impl Default for MockS3Options {
    fn default() -> Self {
        MockS3Options {
            bucket: "jtcrm-files".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIAJTCRMMOCKEXAMPLE".into(),
            secret_access_key: "jtcrm/mock/s3/secret/key/EXAMPLEKEY000000".into(),
            allow_unsigned_payload: false,
            max_object_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
struct Object {
    bytes: Vec<u8>,
    content_type: String,
}

struct Inner {
    opts: MockS3Options,
    objects: Mutex<BTreeMap<String, Object>>,
    /// (method, key, S3 error code or "OK") of every request, in order.
    log: Mutex<Vec<(String, String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running mock; dropping it stops the server.
pub struct MockS3Handle {
    base_url: String,
    inner: Arc<Inner>,
    server: JoinHandle<()>,
}

impl Drop for MockS3Handle {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockS3Handle {
    /// `http://127.0.0.1:<port>` (the endpoint; objects are at `/{bucket}/{key}`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn options(&self) -> &MockS3Options {
        &self.inner.opts
    }

    /// The stored bytes of `key`.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.inner.objects).get(key).map(|o| o.bytes.clone())
    }

    /// Keys stored, sorted.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.inner.objects).keys().cloned().collect()
    }

    /// `(method, key, outcome)` of every request so far; outcome is `OK` or the S3 error code.
    pub fn requests(&self) -> Vec<(String, String, String)> {
        lock(&self.inner.log).clone()
    }
}

/// Starts the mock on `listener` (bind `127.0.0.1:0` in tests).
pub async fn serve(listener: TcpListener, opts: MockS3Options) -> std::io::Result<MockS3Handle> {
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let inner = Arc::new(Inner {
        opts,
        objects: Mutex::new(BTreeMap::new()),
        log: Mutex::new(vec![]),
    });
    let app = Router::new().fallback(handle).with_state(inner.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(MockS3Handle {
        base_url: format!("http://{host}"),
        inner,
        server,
    })
}

/// An S3 error response.
fn s3_error(status: StatusCode, code: &str, message: &str, extra: &[(&str, &str)]) -> Response {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>",
        xml_escape(message)
    );
    for (k, v) in extra {
        xml.push_str(&format!("<{k}>{}</{k}>", xml_escape(v)));
    }
    xml.push_str("<RequestId>JTCRMMOCK</RequestId></Error>");
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

/// An error answer and its S3 code (for the request log); boxed, as responses are large.
struct Rejection(Box<Response>, &'static str);

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the request's SigV4 signature against the configured keys.
fn verify(
    opts: &MockS3Options,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Rejection> {
    let deny = |code: &'static str, msg: &str| {
        Rejection(
            Box::new(s3_error(StatusCode::FORBIDDEN, code, msg, &[])),
            code,
        )
    };
    let Some(auth) = header_str(headers, "authorization") else {
        return Err(deny("AccessDenied", "Access Denied"));
    };
    let Some(p) = sigv4::parse_authorization(auth) else {
        return Err(deny(
            "AccessDenied",
            "The authorization header is malformed or uses an unsupported algorithm.",
        ));
    };
    if p.access_key_id != opts.access_key_id {
        return Err(deny(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ));
    }
    if p.region != opts.region || p.service != sigv4::SERVICE {
        let msg = format!(
            "The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
            p.region, opts.region
        );
        return Err(Rejection(
            Box::new(s3_error(
                StatusCode::BAD_REQUEST,
                "AuthorizationHeaderMalformed",
                &msg,
                &[],
            )),
            "AuthorizationHeaderMalformed",
        ));
    }
    let Some(amz_date) = header_str(headers, "x-amz-date") else {
        return Err(deny(
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    let Ok(t) = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ") else {
        return Err(deny(
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        ));
    };
    if (Utc::now().naive_utc() - t).num_seconds().abs() > 15 * 60 {
        return Err(deny(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    let bad_request = |code: &'static str, msg: &str| {
        Rejection(
            Box::new(s3_error(StatusCode::BAD_REQUEST, code, msg, &[])),
            code,
        )
    };
    let Some(payload_hash) = header_str(headers, "x-amz-content-sha256") else {
        return Err(bad_request(
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        ));
    };
    if payload_hash == "UNSIGNED-PAYLOAD" {
        if !opts.allow_unsigned_payload {
            return Err(bad_request(
                "InvalidRequest",
                "This mock requires a signed payload (x-amz-content-sha256 = SHA-256 of the body)",
            ));
        }
    } else if payload_hash != sigv4::sha256_hex(body) {
        return Err(bad_request(
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    if !p.signed_headers.iter().any(|h| h == "host")
        || !p.signed_headers.iter().any(|h| h == "x-amz-date")
    {
        return Err(deny(
            "AccessDenied",
            "Host and x-amz-date must be among the signed headers",
        ));
    }
    let mut signed = Vec::with_capacity(p.signed_headers.len());
    for name in &p.signed_headers {
        // Every signed header must have been sent (multiple values joined by commas).
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return Err(deny(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
        signed.push((name.clone(), values.join(",")));
    }
    let Some(decoded_path) = sigv4::percent_decode(path) else {
        return Err(bad_request(
            "InvalidURI",
            "Couldn't parse the specified URI.",
        ));
    };
    let canonical_uri = sigv4::uri_encode(&decoded_path, true);
    let query: Vec<(String, String)> = query
        .map(|q| {
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (
                        sigv4::percent_decode(k).unwrap_or_default(),
                        sigv4::percent_decode(v).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let req = sigv4::Request {
        method: method.as_str(),
        canonical_uri: &canonical_uri,
        query: &query,
        headers: &signed,
        payload_hash,
    };
    let expected = sigv4::signature(&req, &opts.secret_access_key, &opts.region, amz_date);
    let same_scope_date = amz_date.get(..8) == Some(p.date.as_str());
    if !same_scope_date || !constant_time_eq(expected.as_bytes(), p.signature.as_bytes()) {
        let cr = sigv4::canonical_request(&req);
        let sts = sigv4::string_to_sign(amz_date, &sigv4::scope(&p.date, &opts.region), &cr);
        return Err(Rejection(
            Box::new(s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                &[
                    ("AWSAccessKeyId", &p.access_key_id),
                    ("StringToSign", &sts),
                    ("SignatureProvided", &p.signature),
                    ("CanonicalRequest", &cr),
                ],
            )),
            "SignatureDoesNotMatch",
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let key_for_log = path.clone();
    let log = |outcome: &str| {
        lock(&inner.log).push((method.to_string(), key_for_log.clone(), outcome.to_string()));
    };
    let body = match axum::body::to_bytes(body, inner.opts.max_object_bytes).await {
        Ok(b) => b,
        Err(_) => {
            log("EntityTooLarge");
            return s3_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed object size.",
                &[],
            );
        }
    };
    if let Err(Rejection(resp, code)) = verify(
        &inner.opts,
        &method,
        &path,
        parts.uri.query(),
        &parts.headers,
        &body,
    ) {
        log(code);
        return *resp;
    }
    let decoded = sigv4::percent_decode(&path).unwrap_or_default();
    let rest = decoded.trim_start_matches('/');
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket != inner.opts.bucket {
        log("NoSuchBucket");
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
            &[("BucketName", bucket)],
        );
    }
    if key.is_empty() {
        log("MethodNotAllowed");
        return s3_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Bucket operations are not supported by this mock.",
            &[],
        );
    }
    let key = key.to_string();
    let no_such_key = || {
        s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
            &[("Key", &key)],
        )
    };
    match method {
        Method::PUT => {
            let content_type = header_str(&parts.headers, "content-type")
                .unwrap_or("binary/octet-stream")
                .to_string();
            let etag = format!("\"{}\"", &sigv4::sha256_hex(&body)[..32]);
            lock(&inner.objects).insert(
                key.clone(),
                Object {
                    bytes: body.to_vec(),
                    content_type,
                },
            );
            log("OK");
            (StatusCode::OK, [(header::ETAG, etag)]).into_response()
        }
        Method::GET | Method::HEAD => {
            let obj = lock(&inner.objects).get(&key).cloned();
            match obj {
                Some(o) => {
                    log("OK");
                    let len = o.bytes.len();
                    let body = if method == Method::HEAD {
                        Body::empty()
                    } else {
                        Body::from(o.bytes)
                    };
                    (
                        StatusCode::OK,
                        [
                            (header::CONTENT_TYPE, o.content_type),
                            (header::CONTENT_LENGTH, len.to_string()),
                        ],
                        body,
                    )
                        .into_response()
                }
                None => {
                    log("NoSuchKey");
                    if method == Method::HEAD {
                        StatusCode::NOT_FOUND.into_response()
                    } else {
                        no_such_key()
                    }
                }
            }
        }
        Method::DELETE => {
            lock(&inner.objects).remove(&key);
            log("OK");
            StatusCode::NO_CONTENT.into_response()
        }
        _ => {
            log("MethodNotAllowed");
            s3_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
                &[],
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn s3_mock_refuses_unsigned_tampered_and_foreign_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let opts = MockS3Options::default();
        let h = serve(listener, opts.clone()).await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/{}/k", h.base_url(), opts.bucket);
        // No Authorization at all.
        let r = http.put(&url).body("x").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("<Code>AccessDenied</Code>")
        );
        // Signed correctly, but the body differs from the signed payload hash.
        let host = h.base_url().trim_start_matches("http://").to_string();
        let amz_date = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let sign = |payload_hash: &str, key_id: &str| {
            let headers = vec![
                ("host".to_string(), host.clone()),
                ("x-amz-content-sha256".to_string(), payload_hash.to_string()),
                ("x-amz-date".to_string(), amz_date.clone()),
            ];
            sigv4::authorization(
                &sigv4::Request {
                    method: "PUT",
                    canonical_uri: &format!("/{}/k", opts.bucket),
                    query: &[],
                    headers: &headers,
                    payload_hash,
                },
                key_id,
                &opts.secret_access_key,
                &opts.region,
                &amz_date,
            )
        };
        let hash = sigv4::sha256_hex(b"signed");
        let send = |body: &'static str, hash: String, auth: String| {
            http.put(&url)
                .header("x-amz-date", &amz_date)
                .header("x-amz-content-sha256", hash)
                .header("authorization", auth)
                .body(body)
                .send()
        };
        let r = send("tampered", hash.clone(), sign(&hash, &opts.access_key_id))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("XAmzContentSHA256Mismatch")
        );
        // UNSIGNED-PAYLOAD is refused.
        let r = send(
            "signed",
            "UNSIGNED-PAYLOAD".into(),
            sign("UNSIGNED-PAYLOAD", &opts.access_key_id),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // Unknown access key.
        let r = send("signed", hash.clone(), sign(&hash, "AKIAOTHER"))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.text().await.unwrap().contains("InvalidAccessKeyId"));
        // The signature of another path does not fit this one.
        let r = http
            .put(format!("{}/{}/other", h.base_url(), opts.bucket))
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", &hash)
            .header("authorization", sign(&hash, &opts.access_key_id))
            .body("signed")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("<Code>SignatureDoesNotMatch</Code>"),
            "{text}"
        );
        assert!(
            text.contains("<CanonicalRequest>PUT\n/jtcrm-files/other\n"),
            "{text}"
        );
        // And the right one is stored.
        let r = send("signed", hash.clone(), sign(&hash, &opts.access_key_id))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(h.keys(), vec!["k".to_string()]);
        assert_eq!(h.object("k").unwrap(), b"signed");
    }
}
