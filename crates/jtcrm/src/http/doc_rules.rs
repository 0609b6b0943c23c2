//! Query parameters whose parsers are hand-written (`RawQuery` + `query_pairs`) or hold strings
//! with a closed set of values: their exact schemas, applied to the OpenAPI document by
//! [`super::openapi::exact`]. The values come from the enums of `jtcrm-types`, so the document
//! cannot drift from the parsers.

use jtcrm_types::dto::email::EmailStatus;
use jtcrm_types::dto::leads::{LeadSource, LeadStatus};
use jtcrm_types::dto::pipelines::OpportunityStatus;
use jtcrm_types::dto::products::{Billing, ProductCategory};
use serde_json::{Value, json};

fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// A comma-separated list (`status=new,contacted`): an array serialized `form`, not exploded.
fn list_of(values: &[&str]) -> Value {
    json!({"type": "array", "items": {"type": "string", "enum": values}, "uniqueItems": true})
}

/// `sort`: a key, optionally prefixed by `-` for descending order.
fn sort_of(keys: &[&str]) -> Value {
    let mut all: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    all.extend(keys.iter().map(|k| format!("-{k}")));
    json!({"type": "string", "enum": all})
}

/// An owner filter: a user id, `me` (the caller) and, where supported, `none` (unassigned).
fn owner(words: &[&str]) -> Value {
    json!({"anyOf": [{"type": "string", "format": "uuid"}, {"type": "string", "enum": words}]})
}

fn strs<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().copied().map(f).collect()
}

/// The schema of query parameter `name` of `GET path`, when the generic one is not exact.
/// Returns the schema and whether it is a comma-separated list.
pub fn query_schema(path: &str, name: &str) -> Option<(Value, bool)> {
    let lead_status = strs(LeadStatus::ALL, LeadStatus::as_str);
    let lead_source = strs(LeadSource::ALL, LeadSource::as_str);
    match (path, name) {
        ("/api/leads" | "/api/leads/export", "status") => Some((list_of(&lead_status), true)),
        ("/api/leads" | "/api/leads/export", "source") => Some((list_of(&lead_source), true)),
        ("/api/leads" | "/api/leads/export", "owner_id") => Some((owner(&["me", "none"]), false)),
        ("/api/leads" | "/api/leads/export", "sort") => Some((
            sort_of(&["created_at", "updated_at", "score", "name"]),
            false,
        )),
        ("/api/pipelines/opportunities", "status") => Some((
            list_of(&strs(OpportunityStatus::ALL, OpportunityStatus::as_str)),
            true,
        )),
        ("/api/pipelines/opportunities", "owner_id") => Some((owner(&["me", "none"]), false)),
        ("/api/pipelines/opportunities", "sort") => Some((
            sort_of(&[
                "created_at",
                "updated_at",
                "title",
                "value_cents",
                "mrr_cents",
                "tcv_cents",
                "position",
            ]),
            false,
        )),
        ("/api/pipelines/{id}/board", "owner_id") => Some((owner(&["me"]), false)),
        ("/api/emails", "status") => {
            Some((one_of(&strs(EmailStatus::ALL, EmailStatus::as_str)), false))
        }
        ("/api/products", "category") => Some((
            one_of(&strs(ProductCategory::ALL, ProductCategory::as_str)),
            false,
        )),
        ("/api/products", "billing") => Some((one_of(&strs(Billing::ALL, Billing::as_str)), false)),
        _ => None,
    }
}

/// The IANA timezone names the server knows (chrono-tz's database).
fn timezones() -> Vec<Value> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| json!(z.name()))
        .collect()
}

/// Rules of request bodies that span fields or items, which the DTO attributes cannot state:
/// merged into `components/schemas` by [`super::openapi::exact`].
pub fn body_rules(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    let Some(schemas) = schemas.as_object_mut() else {
        return;
    };
    let mut patch = |name: &str, f: &dyn Fn(&mut Value)| {
        if let Some(s) = schemas.get_mut(name) {
            f(s);
        }
    };
    // `automations::engine::manual`: exactly one of `entity_id` and `filter`.
    patch("ExecuteRequest", &|s| {
        // (`null` is an absent key.)
        s["oneOf"] = json!([
            {"required": ["entity_id"], "properties": {"entity_id": {"type": "string", "format": "uuid"}}},
            {"required": ["filter"], "properties": {"filter": {"type": "object"}}}
        ]);
    });
    // `products::validate`: a one-off product has its price in `setup_price_cents`.
    patch("ProductInput", &|s| {
        s["if"] =
            json!({"properties": {"billing": {"const": "one_time"}}, "required": ["billing"]});
        s["then"] = json!({"properties": {"monthly_price_cents": {"enum": [0, null]}}});
    });
    // `leads::fields`: each option not blank, at most 100 characters; at most 200 options.
    patch("CustomFieldInput", &|s| {
        s["properties"]["options"]["items"] =
            json!({"type": "string", "pattern": "\\S", "maxLength": 100});
        s["properties"]["options"]["maxItems"] = json!(200);
    });
    // `leads::dedupe::MERGE_FIELDS`: the fields a merge may take from a duplicate.
    patch("MergeRequest", &|s| {
        s["properties"]["fields"]["propertyNames"] = json!({"enum": [
            "name", "email", "phone", "company", "cnpj", "position", "source", "status",
            "owner_id", "cep", "city", "state"
        ]});
    });
    // `automations::business_hours::put`: weekdays 1–7; an IANA timezone (chrono-tz's list) or
    // `""` for the company's.
    patch("BusinessHoursInput", &|s| {
        s["properties"]["weekdays"]["items"] =
            json!({"type": "integer", "minimum": 1, "maximum": 7});
        let mut zones = timezones();
        zones.extend([json!(""), Value::Null]);
        s["properties"]["timezone"]["enum"] = json!(zones);
    });
    // `tenants::validate_timezone`: an IANA name.
    patch("TenantSettingsInput", &|s| {
        let mut zones = timezones();
        zones.push(Value::Null);
        s["properties"]["timezone"]["enum"] = json!(zones);
    });
    // `automations::engine::manual`: the filter is the query of `GET /api/leads`: named
    // parameters, each a value or a list of values.
    patch("ExecuteRequest", &|s| {
        let scalar = json!({"type": ["string", "number", "boolean", "null"]});
        s["properties"]["filter"]["additionalProperties"] = json!({"anyOf": [
            scalar, {"type": "array", "items": scalar, "minItems": 1}
        ]});
    });
    // `pipelines::service::validate_stage`: the stages of a new pipeline are stage creations.
    patch("PipelineInput", &|s| {
        s["properties"]["stages"]["items"] = json!({"$ref": "#/components/schemas/StageCreate"});
        s["properties"]["stages"]["minItems"] = json!(1);
        s["properties"]["stages"]["maxItems"] = json!(30);
    });
    // `leads::scoring::validate`: the lead fields a rule reads, and the value each operator takes.
    patch("ScoringRuleInput", &|s| {
        s["properties"]["field"]["anyOf"] = json!([
            {"enum": ["name", "email", "phone", "company", "cnpj", "position", "source", "status",
                      "tags", "cep", "city", "state", "notes"]},
            {"type": "null"}
        ]);
        let when = |ops: &[&str], then: Value| {
            json!({"if": {"properties": {"operator": {"enum": ops}}, "required": ["operator"]},
                   "then": {"properties": {"value": then}, "required": ["value"]}})
        };
        s["allOf"] = json!([
            when(
                &["gt", "lt"],
                json!({"anyOf": [
                    {"type": "number"},
                    {"type": "string", "pattern": "^\\s*-?[0-9]+([.,][0-9]+)?\\s*$"}
                ]})
            ),
            when(
                &["in"],
                json!({"anyOf": [{"type": "array"}, {"const": "@coverage_states"}]})
            ),
            when(
                &["eq", "neq", "contains"],
                json!({"type": ["string", "number", "boolean", "array"]})
            ),
        ]);
    });
    // `pipelines::opportunities::create::check_lost_reason`: a lost reason only on a lost deal.
    patch("OpportunityInput", &|s| {
        s["if"] =
            json!({"not": {"properties": {"status": {"const": "lost"}}, "required": ["status"]}});
        s["then"] = json!({"properties": {"lost_reason": {"type": "null"}}});
    });
    // `br::Uf::parse`: a state abbreviation in any case.
    patch("LeadInput", &|s| {
        let states: Vec<String> = jtcrm_types::br::Uf::ALL
            .iter()
            .map(|uf| {
                uf.as_str()
                    .chars()
                    .map(|c| format!("[{}{}]", c, c.to_ascii_lowercase()))
                    .collect::<String>()
            })
            .collect();
        s["properties"]["state"]["pattern"] = json!(format!("^\\s*({})?\\s*$", states.join("|")));
    });
    // `automations::templates::is_path`: dotted names (`after.status`); at most 20 filters, each a
    // scalar or a non-empty list of scalars.
    patch("Trigger", &|s| {
        let scalar = json!({"type": ["string", "number", "boolean", "null"]});
        s["properties"]["filters"]["propertyNames"] =
            json!({"pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", "maxLength": 100});
        s["properties"]["filters"]["maxProperties"] = json!(20);
        s["properties"]["filters"]["additionalProperties"] = json!({"anyOf": [
            scalar, {"type": "array", "items": scalar, "minItems": 1}
        ]});
    });
}

/// Bodies shared by a create (or full replacement) and a partial update, where the create needs
/// more: the operations listed get a copy of the schema named `to` with `required` fields, and
/// `drop` properties removed (fields the operation refuses).
const SPLITS: &[Split] = &[
    Split {
        from: "ProductInput",
        to: "ProductCreate",
        required: &["name", "sku", "category", "billing"],
        drop: &[],
        ops: &[("/api/products", "post"), ("/api/products/{id}", "put")],
    },
    Split {
        from: "StageInput",
        to: "StageCreate",
        required: &["name"],
        drop: &[],
        ops: &[("/api/pipelines/{id}/stages", "post")],
    },
    Split {
        from: "OpportunityInput",
        to: "OpportunityCreate",
        required: &["title"],
        drop: &["status"],
        ops: &[
            ("/api/pipelines/opportunities", "post"),
            ("/api/pipelines/opportunities/{id}", "put"),
        ],
    },
    Split {
        from: "PipelineInput",
        to: "PipelineUpdate",
        required: &["name"],
        drop: &["stages"],
        ops: &[("/api/pipelines/{id}", "put")],
    },
    Split {
        from: "TaskInput",
        to: "TaskCreate",
        required: &["title"],
        drop: &[],
        ops: &[("/api/tasks", "post"), ("/api/tasks/{id}", "put")],
    },
    Split {
        from: "CustomFieldInput",
        to: "CustomFieldCreate",
        required: &["key", "label", "type"],
        drop: &[],
        ops: &[("/api/leads/fields", "post")],
    },
];

struct Split {
    from: &'static str,
    to: &'static str,
    required: &'static [&'static str],
    drop: &'static [&'static str],
    ops: &'static [(&'static str, &'static str)],
}

pub fn split_create_schemas(doc: &mut Value) {
    for split in SPLITS {
        let Some(mut schema) = doc["components"]["schemas"].get(split.from).cloned() else {
            continue;
        };
        for name in split.drop {
            if let Some(props) = schema["properties"].as_object_mut() {
                props.remove(*name);
            }
            if let Some(example) = schema["example"].as_object_mut() {
                example.remove(*name);
            }
        }
        let mut required: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
        for name in split.required {
            if !required.contains(&json!(name)) {
                required.push(json!(name));
            }
            // A required field is never `null`.
            let prop = &mut schema["properties"][*name];
            if let Some(t) = prop["type"].as_array().cloned() {
                let rest: Vec<Value> = t.into_iter().filter(|x| x != "null").collect();
                prop["type"] = match rest.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(rest),
                };
            }
            if let Some(alts) = prop["oneOf"].as_array().cloned() {
                let rest: Vec<Value> = alts
                    .into_iter()
                    .filter(|a| a.get("type") != Some(&json!("null")))
                    .collect();
                match (rest.as_slice(), prop.as_object_mut()) {
                    ([one], Some(obj)) => {
                        obj.remove("oneOf");
                        if let Some(extra) = one.as_object() {
                            for (k, v) in extra {
                                obj.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    _ => prop["oneOf"] = Value::Array(rest),
                }
            }
        }
        schema["required"] = Value::Array(required);
        doc["components"]["schemas"][split.to] = schema;
        let reference = json!(format!("#/components/schemas/{}", split.to));
        for (path, method) in split.ops {
            let body = &mut doc["paths"][*path][*method]["requestBody"]["content"]["application/json"]
                ["schema"];
            if body.get("$ref").is_some() {
                body["$ref"] = reference.clone();
            }
        }
    }
}
