//! AWS Signature Version 4 for S3 requests (header-based, `AWS4-HMAC-SHA256`), shared by the
//! client (which signs) and the mock (which verifies). Reference: "Authenticating Requests: Using
//! the Authorization Header (AWS Signature Version 4)" in the Amazon S3 API reference.
//!
//! The payload is always signed: `x-amz-content-sha256` carries the hex SHA-256 of the body (the
//! client never sends `UNSIGNED-PAYLOAD`).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name in `Authorization` and in the string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in the credential scope.
pub const SERVICE: &str = "s3";
/// SHA-256 of the empty body (GET, DELETE).
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Hex SHA-256 of `bytes` (the `x-amz-content-sha256` value).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// S3's URI encoding: every byte except `A-Za-z0-9-._~` as `%XX` (upper-case hex); `/` kept
/// as is when `keep_slash` (object key paths).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes a path as received (the mock re-encodes it canonically).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hexpair = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hexpair, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a signature covers.
pub struct Request<'a> {
    pub method: &'a str,
    /// The canonical (already URI-encoded) path, e.g. `/bucket/tenant/kind/id`.
    pub canonical_uri: &'a str,
    /// Decoded query parameters (sorted and encoded here).
    pub query: &'a [(String, String)],
    /// Headers to sign, any case, values as sent (trimmed and space-collapsed here).
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the payload (`x-amz-content-sha256`).
    pub payload_hash: &'a str,
}

/// `name;name;…`: the signed header names, lower-case and sorted.
pub fn signed_headers(headers: &[(String, String)]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

/// The canonical request (step 1 of SigV4).
pub fn canonical_request(r: &Request<'_>) -> String {
    let mut query: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let mut canonical_headers = String::new();
    for (k, v) in &headers {
        canonical_headers.push_str(k);
        canonical_headers.push(':');
        canonical_headers.push_str(v);
        canonical_headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        r.canonical_uri,
        query,
        canonical_headers,
        signed_headers(r.headers),
        r.payload_hash
    )
}

/// `yyyymmdd/region/s3/aws4_request`.
pub fn scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/{SERVICE}/aws4_request")
}

/// The string to sign (step 2): algorithm, `x-amz-date`, scope, hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signing key (step 3): `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), "s3"), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, SERVICE.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of `r` at `amz_date` (`yyyymmddThhmmssZ`).
pub fn signature(r: &Request<'_>, secret: &str, region: &str, amz_date: &str) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let sts = string_to_sign(amz_date, &scope(date, region), &canonical_request(r));
    hex::encode(hmac(&signing_key(secret, date, region), sts.as_bytes()))
}

/// The `Authorization` header value.
pub fn authorization(
    r: &Request<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    amz_date: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    format!(
        "{ALGORITHM} Credential={access_key_id}/{}, SignedHeaders={}, Signature={}",
        scope(date, region),
        signed_headers(r.headers),
        signature(r, secret, region, amz_date)
    )
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key_id: String,
    /// `yyyymmdd` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses an `Authorization` header; `None` when it is not a well-formed SigV4 header.
pub fn parse_authorization(v: &str) -> Option<ParsedAuthorization> {
    let rest = v.strip_prefix(ALGORITHM)?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, val) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(val),
            "SignedHeaders" => signed = Some(val),
            "Signature" => sig = Some(val),
            _ => return None,
        }
    }
    let mut c = cred?.split('/');
    let (access_key_id, date, region, service, terminal) =
        (c.next()?, c.next()?, c.next()?, c.next()?, c.next()?);
    if terminal != "aws4_request" || c.next().is_some() || date.len() != 8 {
        return None;
    }
    Some(ParsedAuthorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: sig?.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The examples of AWS's "Signature Calculations for the Authorization Header: Transferring
    //! Payload in a Single Chunk" (Amazon S3 API reference), with their published canonical
    //! requests and signatures.
    use super::*;

    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20130524T000000Z";

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn get_object_example() {
        let headers = h(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", DATE),
        ]);
        let r = Request {
            method: "GET",
            canonical_uri: "/test.txt",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let cr = canonical_request(&r);
        assert_eq!(
            cr,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(DATE, &scope("20130524", "us-east-1"), &cr),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            authorization(&r, KEY_ID, SECRET, "us-east-1", DATE),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // A different secret or region gives another signature.
        assert_ne!(
            signature(&r, "wrong", "us-east-1", DATE),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn put_object_example_signs_the_payload_and_encodes_the_key() {
        let body = b"Welcome to Amazon S3.";
        let payload = sha256_hex(body);
        assert_eq!(
            payload,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let headers = h(&[
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", &payload),
            ("x-amz-date", DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let uri = format!("/{}", uri_encode("test$file.text", true));
        assert_eq!(uri, "/test%24file.text");
        let r = Request {
            method: "PUT",
            canonical_uri: &uri,
            query: &[],
            headers: &headers,
            payload_hash: &payload,
        };
        let cr = canonical_request(&r);
        assert_eq!(
            cr,
            "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n\
             host:examplebucket.s3.amazonaws.com\n\
             x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n\
             x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n\
             date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n\
             44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        assert_eq!(
            signature(&r, SECRET, "us-east-1", DATE),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn list_objects_example_sorts_and_encodes_the_query() {
        let headers = h(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", DATE),
        ]);
        let query = h(&[("prefix", "J"), ("max-keys", "2")]);
        let r = Request {
            method: "GET",
            canonical_uri: "/",
            query: &query,
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        assert!(canonical_request(&r).starts_with("GET\n/\nmax-keys=2&prefix=J\n"));
        assert_eq!(
            signature(&r, SECRET, "us-east-1", DATE),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn parses_its_own_authorization_header() {
        let headers = h(&[("host", "h"), ("x-amz-date", DATE)]);
        let r = Request {
            method: "GET",
            canonical_uri: "/b/k",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let a = authorization(&r, KEY_ID, SECRET, "sa-east-1", DATE);
        let p = parse_authorization(&a).unwrap();
        assert_eq!(p.access_key_id, KEY_ID);
        assert_eq!(
            (p.date.as_str(), p.region.as_str()),
            ("20130524", "sa-east-1")
        );
        assert_eq!(p.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(p.signature, signature(&r, SECRET, "sa-east-1", DATE));
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c").is_none());
        assert_eq!(percent_decode("/a%24b").as_deref(), Some("/a$b"));
        assert!(percent_decode("/a%2").is_none());
    }
}
