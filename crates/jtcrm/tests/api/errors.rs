use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::{TestApp, spawn_app};

#[tokio::test]
async fn unknown_routes_and_methods_are_problem_json() {
    let app = spawn_app().await;
    let r = app.send(Method::GET, "/api/nope", None, None).await;
    r.assert_problem(404, "not_found");
    let r = app
        .send(Method::DELETE, "/api/auth/login", None, None)
        .await;
    r.assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let r = app.send(Method::GET, "/health", None, None).await;
    assert!(r.header("x-request-id").is_some());
    let r = TestApp::finish(
        app.raw(Method::GET, "/api/nope")
            .header("x-request-id", "abc-123"),
    )
    .await;
    assert_eq!(r.header("x-request-id").unwrap(), "abc-123");
    assert_eq!(r.body["request_id"], "abc-123");
    // Unsafe ids are replaced.
    let r = TestApp::finish(
        app.raw(Method::GET, "/health")
            .header("x-request-id", "bad id\twith spaces"),
    )
    .await;
    assert_ne!(r.header("x-request-id").unwrap(), "bad id\twith spaces");
}
