//! Role guards (`Authorized<R>` / `AdminCtx` in the handler signature): every route that needs a
//! role answers `403 forbidden` to the other tenant roles before it reads the path, query or
//! body, and lets the roles of its set through to the handler.

use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::spawn_app;
use serde_json::json;

const ADMINS: &[&str] = &["admin"];
const MANAGERS: &[&str] = &["admin", "manager"];
const SELLERS: &[&str] = &["admin", "manager", "sales"];
const STAFF: &[&str] = &["admin", "manager", "sales", "support"];
const ROLES: [&str; 5] = ["admin", "manager", "sales", "support", "viewer"];

/// Every guarded route, `{id}` standing for each path id.
const GUARDED: &[(Method, &str, &[&str])] = &[
    // Admins.
    (Method::POST, "/api/users", ADMINS),
    (Method::DELETE, "/api/users/{id}", ADMINS),
    (Method::POST, "/api/auth/register", ADMINS),
    (Method::PUT, "/api/tenant", ADMINS),
    (Method::GET, "/api/tenant/usage", ADMINS),
    (Method::POST, "/api/leads/fields", ADMINS),
    (Method::PUT, "/api/leads/fields/{id}", ADMINS),
    (Method::DELETE, "/api/leads/fields/{id}", ADMINS),
    (Method::GET, "/api/audit-logs", ADMINS),
    (Method::GET, "/api/jobs", ADMINS),
    (Method::GET, "/api/jobs/{id}", ADMINS),
    (Method::POST, "/api/jobs/{id}/retry", ADMINS),
    // Managers.
    (Method::GET, "/api/users", MANAGERS),
    (Method::POST, "/api/leads/scoring-rules", MANAGERS),
    (Method::PUT, "/api/leads/scoring-rules/{id}", MANAGERS),
    (Method::DELETE, "/api/leads/scoring-rules/{id}", MANAGERS),
    (Method::POST, "/api/pipelines", MANAGERS),
    (Method::PUT, "/api/pipelines/{id}", MANAGERS),
    (Method::DELETE, "/api/pipelines/{id}", MANAGERS),
    (Method::POST, "/api/pipelines/{id}/stages", MANAGERS),
    (Method::PUT, "/api/pipelines/{id}/stages", MANAGERS),
    (Method::PUT, "/api/pipelines/{id}/stages/{id}", MANAGERS),
    (Method::PATCH, "/api/pipelines/{id}/stages/{id}", MANAGERS),
    (Method::DELETE, "/api/pipelines/{id}/stages/{id}", MANAGERS),
    (Method::POST, "/api/products", MANAGERS),
    (Method::PUT, "/api/products/{id}", MANAGERS),
    (Method::PATCH, "/api/products/{id}", MANAGERS),
    (Method::DELETE, "/api/products/{id}", MANAGERS),
    (Method::GET, "/api/automations", MANAGERS),
    (Method::POST, "/api/automations", MANAGERS),
    (Method::GET, "/api/automations/{id}", MANAGERS),
    (Method::PUT, "/api/automations/{id}", MANAGERS),
    (Method::DELETE, "/api/automations/{id}", MANAGERS),
    (Method::POST, "/api/automations/{id}/execute", MANAGERS),
    (Method::GET, "/api/automations/{id}/runs", MANAGERS),
    (Method::PUT, "/api/automations/business-hours", MANAGERS),
    (Method::POST, "/api/automations/cadences", MANAGERS),
    (Method::PUT, "/api/automations/cadences/{id}", MANAGERS),
    (Method::DELETE, "/api/automations/cadences/{id}", MANAGERS),
    // Sellers.
    (Method::POST, "/api/leads/{id}/merge", SELLERS),
    (Method::POST, "/api/leads/import", SELLERS),
    (Method::POST, "/api/leads/{id}/convert", SELLERS),
    (Method::POST, "/api/pipelines/opportunities", SELLERS),
    (Method::PUT, "/api/pipelines/opportunities/{id}", SELLERS),
    (Method::PATCH, "/api/pipelines/opportunities/{id}", SELLERS),
    (Method::DELETE, "/api/pipelines/opportunities/{id}", SELLERS),
    (
        Method::POST,
        "/api/pipelines/opportunities/{id}/move",
        SELLERS,
    ),
    (
        Method::POST,
        "/api/pipelines/opportunities/{id}/won",
        SELLERS,
    ),
    (
        Method::POST,
        "/api/pipelines/opportunities/{id}/lost",
        SELLERS,
    ),
    (
        Method::POST,
        "/api/pipelines/opportunities/{id}/reopen",
        SELLERS,
    ),
    // Staff (every tenant role but viewer).
    (Method::POST, "/api/leads", STAFF),
    (Method::PUT, "/api/leads/{id}", STAFF),
    (Method::PATCH, "/api/leads/{id}", STAFF),
    (Method::DELETE, "/api/leads/{id}", STAFF),
    (Method::POST, "/api/leads/{id}/restore", STAFF),
    (Method::POST, "/api/leads/{id}/notes", STAFF),
    (
        Method::POST,
        "/api/pipelines/opportunities/{id}/notes",
        STAFF,
    ),
    (Method::POST, "/api/tasks", STAFF),
    (Method::PUT, "/api/tasks/{id}", STAFF),
    (Method::PATCH, "/api/tasks/{id}", STAFF),
    (Method::DELETE, "/api/tasks/{id}", STAFF),
    (Method::POST, "/api/tasks/{id}/complete", STAFF),
    (Method::POST, "/api/tasks/{id}/reschedule", STAFF),
    (Method::POST, "/api/tasks/{id}/reopen", STAFF),
    (Method::POST, "/api/automations/cadences/{id}/enroll", STAFF),
    (
        Method::POST,
        "/api/automations/cadences/{id}/unenroll",
        STAFF,
    ),
    (
        Method::POST,
        "/api/automations/cadences/{id}/enrollments/{id}/exit",
        STAFF,
    ),
];

#[tokio::test]
async fn guarded_routes_refuse_other_roles_before_reading_the_request() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("enterprise").await;
    let mut tokens = vec![("admin", t.admin_token.clone())];
    for role in &ROLES[1..] {
        tokens.push((role, app.create_user(&t, role).await.token));
    }
    // An id that exists nowhere: the roles of the set reach the handler (404, 422…).
    let absent = "0190a0a0-0000-7000-8000-000000000001";
    for (method, path, allowed) in GUARDED {
        for (role, token) in &tokens {
            if allowed.contains(role) {
                let p = path.replace("{id}", absent);
                let r = app
                    .send(method.clone(), &p, Some(token), Some(json!({})))
                    .await;
                assert_ne!(
                    r.status.as_u16(),
                    403,
                    "{role} refused on {method} {p}: {}",
                    r.text
                );
            } else {
                // Ids that do not parse, a body of the wrong type: the guard answers first.
                let p = path.replace("{id}", "nao-e-um-id");
                let r = app
                    .send(method.clone(), &p, Some(token), Some(json!("{")))
                    .await;
                assert_eq!(
                    (r.status.as_u16(), r.code()),
                    (403, "forbidden"),
                    "{role} on {method} {p}: {}",
                    r.text
                );
            }
        }
    }
}
