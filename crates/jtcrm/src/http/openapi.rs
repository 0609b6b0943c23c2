//! The rules that make the OpenAPI document exact for every operation at once (issue 11, "The
//! document is exact"), applied after the routes have added their paths:
//!
//! - every status the shared machinery (extractors, middleware) can answer is listed, with the
//!   `application/problem+json` body ([`statuses`]); a status an operation already documents keeps
//!   its own description;
//! - request bodies documented as `oneOf [null, X]` (an optional body) become an optional body
//!   `X`: the extractors refuse a literal `null` like any other non-object body;
//! - query, header and path parameters as strict as their parsers ([`parameters`]);
//! - OpenAPI links from each create (`201`) to the operations on the created item ([`links`]), for
//!   stateful fuzzers and client generators.
//!
//! Per-field rules (enumerations, bounds, required fields) live on the DTOs in `jtcrm-types`.

use jtcrm_kernel::http::pagination::MAX_LIMIT;
use serde_json::{Map, Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The shared error responses: `components/responses/<name>`, each with its status.
const SHARED: [(&str, &str, &str); 12] = [
    (
        "400",
        "BadRequest",
        "Malformed JSON (`malformed_json`), an invalid id in the path (`invalid_id`) or a bad header \
         such as `If-Match` (`bad_request`).",
    ),
    (
        "401",
        "Unauthorized",
        "No, an invalid, expired or revoked access token (`unauthenticated`, `invalid_token`).",
    ),
    (
        "403",
        "Forbidden",
        "The caller's role may not do this (`forbidden`), the tenant is suspended \
         (`tenant_suspended`) or another tenant is named (`tenant_mismatch`).",
    ),
    (
        "404",
        "NotFound",
        "No such record (also any other tenant's record).",
    ),
    (
        "409",
        "Conflict",
        "The `Idempotency-Key` was already used with another request (`conflict`).",
    ),
    (
        "412",
        "PreconditionFailed",
        "The record changed since the version in `If-Match` (`precondition_failed`).",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is over the size limit (`payload_too_large`).",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `Content-Type: application/json` (`unsupported_media_type`).",
    ),
    (
        "422",
        "ValidationFailed",
        "Invalid fields or parameters (`validation_failed`), each named in `errors`.",
    ),
    (
        "429",
        "TooManyRequests",
        "Over the plan's API rate or the login throttle (`rate_limited`); see `Retry-After`.",
    ),
    (
        "500",
        "InternalError",
        "Unexpected error (`internal_error`); details only in the server log, by request id.",
    ),
    (
        "503",
        "ServiceUnavailable",
        "A dependency is down or the request timed out (`service_unavailable`).",
    ),
];

fn problem_content() -> Value {
    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}})
}

fn shared_response(status: &str, description: &str) -> Value {
    let mut r = json!({"description": description, "content": problem_content()});
    if status == "429" {
        r["headers"] = json!({"Retry-After": {
            "description": "Seconds until a new request may be accepted.",
            "required": true,
            "schema": {"type": "integer", "minimum": 1}
        }});
    }
    r
}

/// Makes the document exact (see the module's doc). Applied by [`super::split`] to the JSON
/// document once every route has added its operation: a `utoipa::Modify` in `ApiDoc`'s
/// `modifiers(...)` would run before the routes are merged, and utoipa's typed `Link` writes
/// `operation_id` where OpenAPI says `operationId`, so the rules edit the JSON.
pub fn exact(doc: &mut Value) {
    for (status, name, description) in SHARED {
        doc["components"]["responses"][name] = shared_response(status, description);
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                optional_bodies(op);
                parameters(path, op);
                statuses(path, op);
            }
        }
    }
    links(doc);
    super::doc_rules::body_rules(doc);
    super::doc_rules::split_create_schemas(doc);
    super::doc_rules::after_splits(doc);
    super::doc_rules::format_patterns(doc);
}

/// `oneOf [{"type": "null"}, X]` request bodies (an `Option<X>` body) become an optional body `X`.
fn optional_bodies(op: &mut Value) {
    let Some(body) = op.get_mut("requestBody") else {
        return;
    };
    let mut optional = false;
    if let Some(content) = body.get_mut("content").and_then(Value::as_object_mut) {
        for media in content.values_mut() {
            let Some(schema) = media.get_mut("schema") else {
                continue;
            };
            let Some(alts) = schema.get("oneOf").and_then(Value::as_array) else {
                continue;
            };
            let rest: Vec<&Value> = alts
                .iter()
                .filter(|a| a.get("type") != Some(&json!("null")))
                .collect();
            if rest.len() == 1 && alts.len() == 2 {
                *schema = rest[0].clone();
                optional = true;
            }
        }
    }
    if optional {
        body["required"] = json!(false);
    } else if body.get("required").is_none() {
        body["required"] = json!(true);
    }
}

/// Parameters as strict as their parsers: query, header and path values are never `null` (an
/// empty query value is an absent parameter); `limit` is 1–[`MAX_LIMIT`] everywhere;
/// `If-Match` and `Idempotency-Key` have the syntax of their extractors.
fn parameters(path: &str, op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for p in params {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let location = p["in"].as_str().unwrap_or_default().to_string();
        if let Some(schema) = p.get_mut("schema") {
            drop_null(schema);
        }
        // `extract::query_pairs`: an empty value is an absent parameter.
        if location == "query" && p.get("required") != Some(&json!(true)) {
            p["allowEmptyValue"] = json!(true);
        }
        if location == "query"
            && let Some((schema, list)) = super::doc_rules::query_schema(path, &name)
        {
            p["schema"] = schema;
            if list {
                p["style"] = json!("form");
                p["explode"] = json!(false);
            }
        }
        match (location.as_str(), name.as_str()) {
            ("query", "limit") => {
                p["schema"] = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_LIMIT});
            }
            ("header", "If-Match") => {
                // `IfMatch`: `*`, or a version with optional `W/` and quotes. Nine digits keep
                // every value a valid i32.
                p["schema"] = json!({"type": "string",
                    "pattern": "^[ \\t]*(\\*|(W/)?\"*[+-]?[0-9]{1,9}\"*)[ \\t]*$"});
            }
            ("header", "Idempotency-Key") => {
                // `idempotency::from_headers`: 1–200 visible ASCII characters (after trimming).
                p["schema"] = json!({"type": "string", "pattern": "^[ \\t]*[!-~]{1,200}[ \\t]*$"});
            }
            _ => {}
        }
    }
}

/// Removes `null` from a parameter schema's type (`["string", "null"]` → `"string"`).
fn drop_null(schema: &mut Value) {
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let rest: Vec<Value> = types
            .iter()
            .filter(|t| *t != &json!("null"))
            .cloned()
            .collect();
        schema["type"] = match rest.as_slice() {
            [one] => one.clone(),
            _ => Value::Array(rest),
        };
    }
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let rest: Vec<Value> = alts
            .iter()
            .filter(|a| a.get("type") != Some(&json!("null")))
            .cloned()
            .collect();
        if let [one] = rest.as_slice() {
            *schema = one.clone();
        }
    }
}

fn has_param(op: &Value, location: &str, name: Option<&str>) -> bool {
    op["parameters"].as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p["in"] == location && name.is_none_or(|n| p["name"] == n))
    })
}

fn is_secured(op: &Value) -> bool {
    op["security"].as_array().is_some_and(|reqs| {
        reqs.iter()
            .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
    })
}

/// The statuses the shared machinery can answer for this operation (docs/api.md, "Errors").
pub fn machinery_statuses(path: &str, op: &Value) -> Vec<&'static str> {
    let secured = is_secured(op);
    let body = op.get("requestBody");
    let required_json_body = body.is_some_and(|b| {
        b["required"] == json!(true) && b["content"].get("application/json").is_some()
    });
    let path_params = has_param(op, "path", None);
    let query_params = has_param(op, "query", None);
    let idempotent = has_param(op, "header", Some("Idempotency-Key"));
    let mut s = vec!["400"];
    if secured {
        // Secured routes: a missing or bad token; a role guard, a suspended tenant or a tenant
        // mismatch.
        s.extend(["401", "403"]);
    }
    if path_params || body.is_some() {
        // A record named in the path, or by an id in the body (`AppError::validation`).
        s.push("404");
    }
    if idempotent {
        s.push("409");
    }
    if has_param(op, "header", Some("If-Match")) {
        s.push("412");
    }
    if body.is_some() {
        s.push("413");
    }
    if required_json_body {
        s.push("415");
    }
    if body.is_some() || query_params || path_params || idempotent {
        // Fields, query values, NUL bytes in path segments, a bad `Idempotency-Key`.
        s.push("422");
    }
    if (secured && !path.starts_with("/api/super-admin/")) || path == "/api/auth/login" {
        // The tenant's plan API rate (tenant callers), the login throttle.
        s.push("429");
    }
    s.extend(["500", "503"]);
    s
}

fn statuses(path: &str, op: &mut Value) {
    let wanted = machinery_statuses(path, op);
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for status in wanted {
        let Some((_, name, description)) = SHARED.iter().find(|(s, _, _)| *s == status) else {
            continue;
        };
        match responses.get_mut(status) {
            None => {
                responses.insert(
                    status.to_string(),
                    json!({"$ref": format!("#/components/responses/{name}")}),
                );
            }
            Some(existing) if existing.get("$ref").is_none() => {
                // Keep the operation's own description; fill an empty one.
                if existing["description"].as_str().is_none_or(str::is_empty) {
                    existing["description"] = json!(description);
                }
                // The machinery answers problem+json whatever else the operation answers
                // (e.g. `/health`'s own 503 body).
                if existing["content"]
                    .get("application/problem+json")
                    .is_none()
                {
                    existing["content"]["application/problem+json"] =
                        problem_content()["application/problem+json"].clone();
                }
                if status == "429" && existing.get("headers").is_none() {
                    existing["headers"] = shared_response("429", "")["headers"].clone();
                }
            }
            Some(_) => {}
        }
    }
    // Other responses with an empty description get their status's generic one, or its reason
    // phrase ("OK", "Created", …).
    for (status, r) in responses.iter_mut() {
        if r.get("$ref").is_some() || !r["description"].as_str().is_none_or(str::is_empty) {
            continue;
        }
        let generic = SHARED
            .iter()
            .find(|(s, _, _)| s == status)
            .map(|(_, _, d)| d.to_string())
            .or_else(|| {
                status
                    .parse::<u16>()
                    .ok()
                    .and_then(|n| axum::http::StatusCode::from_u16(n).ok())
                    .and_then(|c| c.canonical_reason())
                    .map(str::to_string)
            });
        if let Some(d) = generic {
            r["description"] = json!(d);
        }
    }
}

/// The path parameters of a templated path, in order (`/a/{id}/b/{x}` → `["id", "x"]`).
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// Name of a link to `op_id`: `GetProduct` for `get_product`.
fn link_name(op_id: &str) -> String {
    op_id
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// For each create (`POST /…/x` answering `201`), links on the `201` to the operations on the
/// created item: `/…/x/{p}` and its sub-resources `/…/x/{p}/…` whose other path parameters the
/// create's own path has. `{p}` is the created resource's `p` when its schema has that property
/// (a plan's `code`), else its `id`; the other parameters are the create's path parameters.
fn links(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object() else {
        return;
    };
    let schemas = doc["components"]["schemas"].clone();
    let mut found: Vec<(String, Map<String, Value>)> = vec![];
    for (create_path, item) in paths {
        let Some(create) = item.get("post") else {
            continue;
        };
        let Some(created) = create["responses"].get("201") else {
            continue;
        };
        let props = created["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| schemas.get(name))
            .and_then(|s| s["properties"].as_object());
        let own = path_params(create_path);
        let mut links = Map::new();
        for (target_path, target) in paths {
            // A merge, an enrolment or an unenrolment needs other records (leads) besides the new
            // one: not a next step of a create.
            if ["/merge", "/enroll", "/unenroll"]
                .iter()
                .any(|tail| target_path.ends_with(tail))
            {
                continue;
            }
            let Some(rest) = target_path
                .strip_prefix(create_path.as_str())
                .and_then(|r| r.strip_prefix("/{"))
            else {
                continue;
            };
            let Some((param, _tail)) = rest.split_once('}') else {
                continue;
            };
            let mut parameters = Map::new();
            let mut resolvable = true;
            for p in path_params(target_path) {
                if p == param {
                    let field = if props.is_some_and(|ps| ps.contains_key(p)) {
                        p
                    } else {
                        "id"
                    };
                    parameters.insert(p.to_string(), json!(format!("$response.body#/{field}")));
                } else if own.contains(&p) {
                    parameters.insert(p.to_string(), json!(format!("$request.path.{p}")));
                } else {
                    resolvable = false;
                }
            }
            if !resolvable {
                continue;
            }
            for method in METHODS {
                let Some(op_id) = target.get(method).and_then(|op| op["operationId"].as_str())
                else {
                    continue;
                };
                links.insert(
                    link_name(op_id),
                    json!({"operationId": op_id, "parameters": parameters.clone()}),
                );
            }
        }
        if !links.is_empty() {
            found.push((create_path.clone(), links));
        }
    }
    for (path, links) in found {
        doc["paths"][path.as_str()]["post"]["responses"]["201"]["links"] = Value::Object(links);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_and_link_names() {
        assert_eq!(
            path_params("/api/pipelines/{id}/stages/{stage_id}"),
            ["id", "stage_id"]
        );
        assert_eq!(link_name("get_product"), "GetProduct");
    }

    #[test]
    fn nullable_parameter_types_lose_null() {
        let mut s = json!({"type": ["string", "null"], "format": "uuid"});
        drop_null(&mut s);
        assert_eq!(s, json!({"type": "string", "format": "uuid"}));
    }
}
