//! Tenant files in an S3-compatible store (`JTCRM_S3_*`): the app signs every request with
//! SigV4 and the mock verifies it with its keys, like S3. The tenant logo is the file used here;
//! the object store is the same for PDFs and evidence (`domains::files`).

use std::path::PathBuf;

use base64::Engine;
use jtcrm_integrations::s3::mock::{self, MockS3Handle, MockS3Options};
use jtcrm_kernel::config::Secret;
use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, spawn_app_with};

/// A 1×1 PNG.
fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
        .unwrap()
}

async fn s3_mock() -> MockS3Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    mock::serve(listener, MockS3Options::default())
        .await
        .unwrap()
}

/// An app whose files go to `s3` (signed with `secret`), with a data dir of its own so that a
/// file written locally by mistake would show.
async fn app_on_s3(s3: &MockS3Handle, secret: &str) -> (TestApp, PathBuf) {
    let dir = std::env::temp_dir().join(format!("jtcrm-s3-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = s3.options().clone();
    let (endpoint, data_dir, secret) = (s3.base_url().to_string(), dir.clone(), secret.to_string());
    let app = spawn_app_with(move |s| {
        s.data_dir = data_dir;
        s.s3_endpoint = Some(endpoint);
        s.s3_bucket = Some(o.bucket);
        s.s3_region = o.region;
        s.s3_access_key_id = Some(o.access_key_id);
        s.s3_secret_access_key = Some(Secret::new(secret));
    })
    .await;
    (app, dir)
}

async fn put_logo(app: &TestApp, token: &str, body: Vec<u8>) -> jtcrm_testkit::Resp {
    TestApp::finish(
        app.raw(Method::PUT, "/api/tenant/logo")
            .bearer_auth(token)
            .header("content-type", "image/png")
            .body(body),
    )
    .await
}

async fn get_logo(app: &TestApp, token: &str) -> (u16, Vec<u8>) {
    let r = app
        .raw(Method::GET, "/api/tenant/logo")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_tenant_logo_lives_in_the_s3_store_when_one_is_configured() {
    let s3 = s3_mock().await;
    let (app, dir) = app_on_s3(&s3, &s3.options().secret_access_key.clone()).await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;

    let r = put_logo(&app, tok, png()).await;
    r.assert(200);
    let file_id = r.body["id"].as_str().unwrap().replace('-', "");
    let tenant = t.id.replace('-', "");
    // The object is in the bucket under the tenant's prefix, byte for byte…
    let key = format!("{tenant}/tenant_logo/{file_id}");
    assert_eq!(s3.keys(), vec![key.clone()]);
    assert_eq!(s3.object(&key).unwrap(), png());
    // …and nothing was written on local disk.
    assert!(
        !dir.join("files").exists(),
        "local files dir created under {}",
        dir.display()
    );
    // Reading it back goes through the store.
    let before = s3.requests().len();
    let (st, bytes) = get_logo(&app, tok).await;
    assert_eq!((st, bytes), (200, png()));
    assert!(
        s3.requests()[before..]
            .iter()
            .any(|(m, p, outcome)| m == "GET" && p.ends_with(&key) && outcome == "OK"),
        "{:?}",
        s3.requests()
    );
    // A replacement deletes the old object; removing the logo deletes the last one.
    let r = put_logo(&app, tok, png()).await;
    r.assert(200);
    let key2 = format!(
        "{tenant}/tenant_logo/{}",
        r.body["id"].as_str().unwrap().replace('-', "")
    );
    assert_eq!(s3.keys(), vec![key2]);
    app.delete("/api/tenant/logo", tok).await.assert(204);
    assert!(s3.keys().is_empty());
    assert_eq!(get_logo(&app, tok).await.0, 404);
    // `/health` reports the store as an external API.
    let h = app.send(Method::GET, "/health", None, None).await;
    h.assert(200);
    assert_eq!(h.body["checks"]["external_apis"]["s3"], true);
    // Every request the app made carried a valid signature (the health probe's key is absent).
    assert!(
        s3.requests()
            .iter()
            .all(|(_, path, outcome)| outcome == "OK"
                || (outcome == "NoSuchKey" && path.ends_with("/_health/probe"))),
        "{:?}",
        s3.requests()
    );
    assert!(!dir.join("files").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_wrong_s3_secret_fails_the_upload_with_503_and_stores_nothing() {
    let s3 = s3_mock().await;
    let (app, dir) = app_on_s3(&s3, "not-the-secret-key").await;
    let t = app.create_tenant().await;
    let tok = &t.admin_token;

    let r = put_logo(&app, tok, png()).await;
    r.assert_problem(503, "service_unavailable");
    // The cause stays in the logs, not in the body.
    assert!(!r.text.contains("SignatureDoesNotMatch"), "{}", r.text);
    assert!(s3.keys().is_empty());
    assert!(
        s3.requests()
            .iter()
            .any(|(m, _, outcome)| m == "PUT" && outcome == "SignatureDoesNotMatch"),
        "{:?}",
        s3.requests()
    );
    // No metadata row was committed, nothing went to local disk, and the server still answers.
    assert_eq!(get_logo(&app, tok).await.0, 404);
    assert!(!dir.join("files").exists());
    let r = put_logo(&app, tok, png()).await;
    r.assert_problem(503, "service_unavailable");
    // `/health` tells the operator why.
    let h = app.send(Method::GET, "/health", None, None).await;
    h.assert(503);
    assert_eq!(h.body["checks"]["external_apis"]["s3"], false);
    assert_eq!(h.body["checks"]["database"], true);
    let _ = std::fs::remove_dir_all(dir);
}
