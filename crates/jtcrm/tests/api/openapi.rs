//! The OpenAPI document is exact (issue 11): every operation lists the statuses the shared
//! machinery can answer, with the problem+json body; operation ids are present and unique; creates
//! link to the operations on the created item; parameters are as strict as their parsers. (Its
//! validity as OpenAPI 3.1 is checked by `openapi-spec-validator` in ci/fuzz.sh.)

use std::collections::{BTreeMap, BTreeSet};

use jtcrm_testkit::reqwest::Method;
use jtcrm_testkit::spawn_app;
use serde_json::{Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// A response, its `$ref` resolved.
fn response<'a>(doc: &'a Value, r: &'a Value) -> &'a Value {
    match r["$ref"].as_str() {
        Some(p) => doc.pointer(p.strip_prefix('#').unwrap()).unwrap(),
        None => r,
    }
}

fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_served_document_is_the_exact_one() {
    let app = spawn_app().await;
    let r = app
        .send(Method::GET, "/apidocs/openapi.json", None, None)
        .await;
    r.assert(200);
    assert_eq!(r.body, jtcrm::http::openapi());
    assert_eq!(r.body["openapi"], "3.1.0");
}

#[test]
fn operation_ids_are_present_and_unique() {
    let doc = jtcrm::http::openapi();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (m, path, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{m} {path} has no operationId"));
        assert!(!id.is_empty(), "{m} {path}");
        if let Some(other) = seen.insert(id.to_string(), format!("{m} {path}")) {
            panic!("operationId {id} of {m} {path} is also {other}'s");
        }
    }
    assert!(seen.len() > 100, "{}", seen.len());
}

#[test]
fn every_operation_lists_the_statuses_of_the_shared_machinery() {
    let doc = jtcrm::http::openapi();
    for (m, path, op) in operations(&doc) {
        let got = statuses(&op);
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let mut want = vec!["400", "500", "503"];
        if secured {
            want.extend(["401", "403"]);
        }
        if secured && !path.starts_with("/api/super-admin/") {
            want.push("429");
        }
        if path.contains('{') {
            want.extend(["404", "422"]);
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let has = |loc: &str, name: Option<&str>| {
            params
                .iter()
                .any(|p| p["in"] == loc && name.is_none_or(|n| p["name"] == n))
        };
        if has("query", None) {
            want.push("422");
        }
        if has("header", Some("If-Match")) {
            want.push("412");
        }
        if has("header", Some("Idempotency-Key")) {
            want.extend(["409", "422"]);
        }
        if let Some(body) = op.get("requestBody") {
            want.extend(["413", "422"]);
            if body["required"] == json!(true) {
                want.push("415");
            }
        }
        for s in want {
            assert!(got.contains(s), "{m} {path} lacks {s}: {got:?}");
        }
        // Every error answer can be problem+json with the Problem schema, and is described.
        for (s, r) in op["responses"].as_object().unwrap() {
            let r = response(&doc, r);
            assert!(
                r["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{m} {path} {s}: no description"
            );
            if s.starts_with('4') || s.starts_with('5') {
                assert_eq!(
                    r["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{m} {path} {s}"
                );
            }
        }
    }
    let login = &doc["paths"]["/api/auth/login"]["post"];
    assert!(statuses(login).contains("429"));
    let too_many = response(&doc, &login["responses"]["429"]);
    assert!(too_many["headers"]["Retry-After"].is_object(), "{too_many}");
    // The health check is public: no 401/403/429.
    let health = statuses(&doc["paths"]["/health"]["get"]);
    assert!(
        !health.contains("401") && !health.contains("429"),
        "{health:?}"
    );
    // An operation's own description is kept.
    let r = &doc["paths"]["/api/products"]["post"]["responses"]["409"];
    assert_eq!(r["description"], "SKU in use", "{r}");
}

#[test]
fn creates_link_to_the_operations_on_the_created_item() {
    let doc = jtcrm::http::openapi();
    let ids: BTreeMap<String, (String, Value)> = operations(&doc)
        .into_iter()
        .map(|(_, p, op)| (op["operationId"].as_str().unwrap().to_string(), (p, op)))
        .collect();
    let links = &doc["paths"]["/api/products"]["post"]["responses"]["201"]["links"];
    let targets: BTreeSet<&str> = links
        .as_object()
        .unwrap()
        .values()
        .map(|l| l["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            "get_product",
            "replace_product",
            "patch_product",
            "delete_product"
        ])
    );
    assert_eq!(
        links["GetProduct"]["parameters"],
        json!({"id": "$response.body#/id"})
    );
    // A nested create passes its own path parameter along.
    let stage = &doc["paths"]["/api/pipelines/{id}/stages"]["post"]["responses"]["201"]["links"]["PatchStage"];
    assert_eq!(
        stage["parameters"],
        json!({"id": "$request.path.id", "stage_id": "$response.body#/id"})
    );
    // A plan is named by its code.
    let plan =
        &doc["paths"]["/api/super-admin/plans"]["post"]["responses"]["201"]["links"]["GetPlan"];
    assert_eq!(plan["parameters"], json!({"code": "$response.body#/code"}));

    // Every link names an existing operation and fills exactly its path parameters.
    let mut n = 0;
    for (m, path, op) in operations(&doc) {
        for (s, r) in op["responses"].as_object().unwrap() {
            let Some(links) = r["links"].as_object() else {
                continue;
            };
            for (name, l) in links {
                n += 1;
                let id = l["operationId"].as_str().unwrap();
                let (target_path, _) = ids
                    .get(id)
                    .unwrap_or_else(|| panic!("{m} {path} {s} link {name}: no operation {id}"));
                let want: BTreeSet<&str> = target_path
                    .split('/')
                    .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
                    .collect();
                let got: BTreeSet<&str> = l["parameters"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(got, want, "{m} {path} link {name}");
            }
        }
    }
    assert!(n >= 40, "only {n} links");
}

#[test]
fn parameters_and_bodies_are_as_strict_as_the_server() {
    let doc = jtcrm::http::openapi();
    let mut limits = 0;
    for (m, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().cloned().unwrap_or_default() {
            let schema = &p["schema"];
            assert!(
                !schema.to_string().contains("\"null\""),
                "{m} {path} parameter {} is nullable: {schema}",
                p["name"]
            );
            if p["name"] == "limit" {
                limits += 1;
                assert_eq!(schema["type"], "integer", "{m} {path}");
                assert_eq!(schema["minimum"], 1, "{m} {path}");
                assert_eq!(schema["maximum"], 200, "{m} {path}");
            }
        }
        // An optional body is `required: false`, not `oneOf [null, …]` (a literal `null` is 422).
        if let Some(body) = op.get("requestBody") {
            assert!(body["required"].is_boolean(), "{m} {path}");
            let schema = &body["content"]["application/json"]["schema"];
            if let Some(alts) = schema["oneOf"].as_array() {
                assert!(
                    alts.iter().all(|a| a["type"] != "null"),
                    "{m} {path}: {schema}"
                );
            }
        }
    }
    assert!(limits >= 15, "{limits}");
    let logout = &doc["paths"]["/api/auth/logout"]["post"]["requestBody"];
    assert_eq!(logout["required"], false);
    assert_eq!(
        logout["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LogoutRequest"
    );
}
