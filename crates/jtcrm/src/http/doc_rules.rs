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
    // (Repeated values are accepted: a list is a set of choices.)
    json!({"type": "array", "items": {"type": "string", "enum": values}})
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
        ("/api/tasks", "assignee_id") => Some((owner(&["me"]), false)),
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
    // The query parameters of `GET /api/leads`: the names an automation's manual filter may use.
    let lead_params: Vec<Value> = doc["paths"]["/api/leads"]["get"]["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .map(|n| json!(n))
                .collect()
        })
        .unwrap_or_default();
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
    // (`run_log::filter_to_query`: list items are texts or numbers.)
    patch("ExecuteRequest", &|s| {
        let scalar = json!({"type": ["string", "number", "boolean", "null"]});
        s["properties"]["filter"]["additionalProperties"] = json!({"anyOf": [
            scalar, {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1}
        ]});
        // Unknown names are ignored, like unknown query parameters of the list.
        let _ = &lead_params;
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
        // `automations::validation`: a known event is required.
        let events: Vec<&str> = crate::domains::automations::TRIGGER_EVENTS
            .iter()
            .map(|(e, _)| *e)
            .collect();
        s["properties"]["event"] = json!({"type": "string", "enum": events});
        s["required"] = json!(["event"]);
    });
    // `leads::fields::parse`: a key is a lowercase identifier.
    patch("CustomFieldInput", &|s| {
        s["properties"]["key"] = json!({"type": ["string", "null"], "pattern": "^[a-z][a-z0-9_]{0,39}$", "maxLength": 40});
        s["properties"]["label"] =
            json!({"type": ["string", "null"], "pattern": "\\S", "maxLength": 120});
    });
    // `leads::dedupe::merge`: at least one duplicate.
    patch("MergeRequest", &|s| {
        s["required"] = json!(["duplicate_ids"]);
        s["properties"]["duplicate_ids"] = json!({"type": "array", "minItems": 1, "maxItems": 10,
            "items": {"type": "string", "format": "uuid"}});
    });
    // `pipelines::opportunities`: a line names its product, or the stored line it changes.
    patch("OpportunityItemInput", &|s| {
        let id = json!({"type": "string", "format": "uuid"});
        s["anyOf"] = json!([
            {"required": ["product_id"], "properties": {"product_id": id}},
            {"required": ["id"], "properties": {"id": id}}
        ]);
        s["properties"]["quantity"] =
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 100_000});
        s["properties"]["discount_percent"] =
            json!({"type": ["number", "null"], "minimum": 0, "maximum": 100, "multipleOf": 0.01});
    });
    // `automations::conditions::validate`: exactly one of a group (`all`, `any`) and a leaf.
    patch("Condition", &|s| {
        let none = json!({"type": "null"});
        let list = json!({"type": "array", "minItems": 1,
            "items": {"$ref": "#/components/schemas/Condition"}});
        s["oneOf"] = json!([
            {"required": ["all"], "properties": {"all": list, "any": none, "field": none, "op": none}},
            {"required": ["any"], "properties": {"any": list, "all": none, "field": none, "op": none}},
            {"required": ["field", "op"], "properties": {
                "field": {"type": "string", "pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$", "maxLength": 100},
                "op": {"$ref": "#/components/schemas/ConditionOp"}, "all": none, "any": none},
             "allOf": [
                {"if": {"properties": {"op": {"enum": ["is_empty", "is_not_empty", "changed"]}}},
                 "then": {"properties": {"value": none}},
                 "else": {"required": ["value"], "properties": {"value": {"not": none}}}},
                {"if": {"properties": {"op": {"enum": ["in", "not_in"]}}},
                 "then": {"properties": {"value": {"type": "array"}}}},
                {"if": {"properties": {"op": {"enum": ["gt", "gte", "lt", "lte"]}}},
                 "then": {"properties": {"value": {"type": ["number", "string"]}}}},
                {"if": {"properties": {"op": {"not": {"const": "changed"}}}},
                 "then": {"properties": {"from": none, "to": none}}}
             ]}
        ]);
    });
    patch("ProposalCreate", &|s| {
        s["required"] = json!(["opportunity_id"]);
        s["properties"]["opportunity_id"] = json!({"type": "string", "format": "uuid"});
    });
    // `automations::validation`: a name, a trigger and at least one action, on create and replace.
    patch("AutomationInput", &|s| {
        s["required"] = json!(["name", "trigger", "actions"]);
        s["properties"]["trigger"] = json!({"$ref": "#/components/schemas/Trigger"});
        s["properties"]["actions"]["type"] = json!("array");
        s["properties"]["name"] = text(200);
    });
    documents_rules(schemas);
    automation_rules(schemas);
}

/// A text the server trims and refuses when blank.
fn text(max: u64) -> Value {
    json!({"type": "string", "pattern": "\\S", "maxLength": max})
}

/// An e-mail that may also be `""` or `null` (the server reads both as "none").
fn email_or_blank() -> Value {
    json!({"anyOf": [
        {"type": "string", "format": "email", "maxLength": 320},
        {"type": "string", "maxLength": 0},
        {"type": "null"}
    ]})
}

/// Proposals, contracts and their lines (`proposals::service`, `contracts::service`).
fn documents_rules(schemas: &mut serde_json::Map<String, Value>) {
    let mut patch = |name: &str, f: &dyn Fn(&mut Value)| {
        if let Some(s) = schemas.get_mut(name) {
            f(s);
        }
    };
    let cents = json!({"type": ["integer", "null"], "minimum": 0, "maximum": 10_000_000_000_i64});
    patch("ProposalItemInput", &|s| {
        s["required"] = json!(["name"]);
        s["properties"]["name"] = text(200);
        s["properties"]["sku"] = json!({"type": ["string", "null"]});
        s["properties"]["quantity"] =
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 100_000});
        s["properties"]["monthly_price_cents"] = cents.clone();
        s["properties"]["setup_price_cents"] = cents.clone();
        s["properties"]["discount_percent"] =
            json!({"type": ["number", "null"], "minimum": 0, "maximum": 100, "multipleOf": 0.01});
    });
    for name in ["ProposalUpdate", "ContractUpdate", "ContractCreate"] {
        patch(name, &|s| {
            s["properties"]["term_months"] =
                json!({"type": ["integer", "null"], "minimum": 1, "maximum": 600});
            s["properties"]["items"]["maxItems"] = json!(100);
            if s["properties"].get("title").is_some() {
                s["properties"]["title"] = json!({"type": ["string", "null"], "maxLength": 200});
            }
        });
    }
    patch("ProposalUpdate", &|s| {
        s["properties"]["recipient_email"] = email_or_blank();
        s["properties"]["notes"] = json!({"type": ["string", "null"], "maxLength": 10_000});
    });
    patch("ProposalCreate", &|s| {
        s["properties"]["recipient_email"] = email_or_blank();
        s["properties"]["title"] = json!({"type": ["string", "null"], "maxLength": 200});
        s["properties"]["notes"] = json!({"type": ["string", "null"], "maxLength": 10_000});
    });
    patch("SendProposalRequest", &|s| {
        s["properties"]["to"] = email_or_blank();
        s["properties"]["message"] = json!({"type": ["string", "null"], "maxLength": 5_000});
    });
    patch("TemplateInput", &|s| {
        s["properties"]["name"] =
            json!({"type": ["string", "null"], "pattern": "\\S", "maxLength": 200});
        s["properties"]["body"] =
            json!({"type": ["string", "null"], "pattern": "\\S", "maxLength": 100_000});
    });
    for name in ["ContractCreate", "ContractUpdate"] {
        patch(name, &|s| {
            s["properties"]["sla"] = json!({"type": ["string", "null"], "maxLength": 10_000});
            s["properties"]["equipment"]["maxItems"] = json!(100);
            s["properties"]["signers"]["maxItems"] = json!(10);
        });
    }
    // `contracts::service::create`: exactly one source (`null` is an absent key).
    patch("ContractCreate", &|s| {
        let id = json!({"type": "string", "format": "uuid"});
        s["oneOf"] = json!([
            {"required": ["proposal_id"], "properties": {"proposal_id": id, "opportunity_id": {"type": "null"}}},
            {"required": ["opportunity_id"], "properties": {"opportunity_id": id, "proposal_id": {"type": "null"}}}
        ]);
    });
    patch("SignerInput", &|s| {
        s["required"] = json!(["name"]);
        s["properties"]["name"] = text(200);
        s["properties"]["email"] = email_or_blank();
        s["properties"]["cpf"] = json!({"anyOf": [
            {"type": "string", "format": "cpf"}, {"type": "string", "maxLength": 0}, {"type": "null"}
        ]});
    });
    patch("EquipmentInput", &|s| {
        s["required"] = json!(["name"]);
        s["properties"]["name"] = text(200);
        s["properties"]["quantity"] =
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 10_000});
        s["properties"]["serial"] = json!({"type": ["string", "null"], "maxLength": 100});
    });
    patch("EarlyTerminationRule", &|s| {
        s["properties"]["percent_of_remaining"] =
            json!({"type": "integer", "minimum": 0, "maximum": 100});
    });
    patch("SendContractRequest", &|s| {
        s["properties"]["deadline_days"] =
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 90});
        s["properties"]["message"] = json!({"type": ["string", "null"], "maxLength": 5_000});
    });
    patch("CancelContractRequest", &|s| {
        s["required"] = json!(["reason"]);
        s["properties"]["reason"] = text(2_000);
    });
    patch("SignContractRequest", &|s| {
        s["required"] = json!(["name", "cpf"]);
        s["properties"]["name"] = text(200);
        s["properties"]["cpf"] = json!({"type": "string", "format": "cpf"});
    });
    patch("ConvertLeadRequest", &|s| {
        s["properties"]["term_months"] =
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 600});
    });
    // `tenants`: an e-mail identity may be cleared with `""`.
    patch("TenantSettingsInput", &|s| {
        s["properties"]["email_reply_to"] = email_or_blank();
    });
    // `leads::service`: an e-mail or `""`/`null` to clear it.
    patch("LeadInput", &|s| {
        s["properties"]["email"] = email_or_blank();
        // `leads::validate`: the lengths of the texts; tags of up to 60 characters, 30 of them.
        s["properties"]["name"]["maxLength"] = json!(200);
        for (f, max) in [
            ("company", 200),
            ("position", 120),
            ("city", 120),
            ("notes", 20_000),
        ] {
            s["properties"][f]["maxLength"] = json!(max);
        }
        s["properties"]["tags"]["items"]["maxLength"] = json!(60);
        s["properties"]["tags"]["maxItems"] = json!(30);
    });
}

/// `automations::business_hours::validate_delay`: exactly one unit, each with its maximum.
fn delay_one_of() -> Value {
    let units = [
        ("minutes", 60 * 24 * 365),
        ("hours", 24 * 365),
        ("days", 365),
        ("business_hours", 24 * 365),
    ];
    let alts: Vec<Value> = units
        .iter()
        .map(|(unit, max)| {
            let mut props = serde_json::Map::new();
            for (other, _) in units.iter() {
                props.insert(
                    other.to_string(),
                    if other == unit {
                        json!({"type": "integer", "minimum": 0, "maximum": max})
                    } else {
                        json!({"type": "null"})
                    },
                );
            }
            json!({"required": [unit], "properties": props})
        })
        .collect();
    Value::Array(alts)
}

/// Automation actions and cadence steps (`automations::validation`, `cadences::definitions`):
/// what each action type requires.
fn automation_rules(schemas: &mut serde_json::Map<String, Value>) {
    if let Some(s) = schemas.get_mut("Delay") {
        s["oneOf"] = delay_one_of();
    }
    if let Some(s) = schemas.get_mut("CadenceStep") {
        s["required"] = json!(["channel"]);
        s["properties"]["channel"] = json!({"$ref": "#/components/schemas/CadenceChannel"});
        s["properties"]["title"] = json!({"type": ["string", "null"], "maxLength": 500});
        s["properties"]["subject"] = json!({"type": ["string", "null"], "maxLength": 300});
        s["properties"]["body"] = json!({"type": ["string", "null"], "maxLength": 20_000});
        s["if"] = json!({"properties": {"channel": {"const": "email"}}, "required": ["channel"]});
        s["then"] = json!({"required": ["subject", "body"],
            "properties": {"subject": text(300), "body": text(20_000)}});
    }
    for name in ["AutomationInput", "CadenceInput"] {
        if let Some(s) = schemas.get_mut(name) {
            if s["properties"].get("actions").is_some() {
                s["properties"]["actions"]["minItems"] = json!(1);
                s["properties"]["actions"]["maxItems"] =
                    json!(crate::domains::automations::MAX_ACTIONS);
            }
            if s["properties"].get("steps").is_some() {
                s["properties"]["steps"]["minItems"] = json!(1);
                s["properties"]["steps"]["maxItems"] =
                    json!(crate::domains::automations::cadences::MAX_STEPS);
            }
        }
    }
    let Some(variants) = schemas
        .get_mut("AutomationAction")
        .and_then(|s| s.get_mut("oneOf"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let uuid = json!({"type": "string", "format": "uuid"});
    for v in variants.iter_mut() {
        let kind = v["properties"]["type"]["enum"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut req = vec![json!("type")];
        match kind.as_str() {
            "create_task" => {
                req.push(json!("title"));
                v["properties"]["title"] = text(500);
                v["properties"]["task_type"] = json!({"enum": [
                    "call", "email", "meeting", "whatsapp", "visit", "follow_up", "other", null]});
                v["properties"]["priority"] =
                    json!({"enum": ["low", "normal", "high", "urgent", null]});
                v["if"] = json!({"properties": {"assignee": {"const": "user"}}, "required": ["assignee"]});
                v["then"] = json!({"required": ["user_id"], "properties": {"user_id": uuid}});
            }
            "send_email" => {
                req.extend([json!("to"), json!("subject"), json!("body")]);
                v["properties"]["to"] = json!({"$ref": "#/components/schemas/EmailTo"});
                v["properties"]["subject"] = text(300);
                v["properties"]["body"] = text(20_000);
                v["if"] = json!({"properties": {"to": {"const": "address"}}, "required": ["to"]});
                v["then"] = json!({"required": ["address"],
                    "properties": {"address": {"type": "string", "format": "email", "maxLength": 254}}});
            }
            "assign_owner" => {
                req.push(json!("assignee"));
                v["properties"]["assignee"] = json!({"enum": ["user", "round_robin"]});
                v["if"] = json!({"properties": {"assignee": {"const": "user"}}, "required": ["assignee"]});
                v["then"] = json!({"required": ["user_id"], "properties": {"user_id": uuid}});
            }
            "update_field" => {
                v["properties"]["status"] = json!({"enum": [
                    "new", "contacted", "qualified", "unqualified", "converted", "lost", null]});
                for list in ["add_tags", "remove_tags"] {
                    v["properties"][list] = json!({"type": ["array", "null"], "maxItems": 30,
                        "items": {"type": "string", "maxLength": 60}});
                }
                v["anyOf"] = json!([
                    {"required": ["status"], "properties": {"status": {"type": "string"}}},
                    {"required": ["add_tags"], "properties": {"add_tags": {"type": "array"}}},
                    {"required": ["remove_tags"], "properties": {"remove_tags": {"type": "array"}}},
                    {"required": ["custom_fields"], "properties": {"custom_fields": {"type": "object"}}}
                ]);
            }
            "adjust_score" => {
                req.push(json!("points"));
                v["properties"]["points"] = json!({"type": "integer", "minimum": -100,
                    "maximum": 100, "not": {"const": 0}});
            }
            "move_stage" => {
                req.push(json!("stage_id"));
                v["properties"]["stage_id"] = uuid.clone();
            }
            "enroll_in_cadence" => {
                req.push(json!("cadence_id"));
                v["properties"]["cadence_id"] = uuid.clone();
            }
            "webhook" => {
                // (The secret is write-only: never in an answer, and kept when an update omits it.)
                req.push(json!("url"));
                v["properties"]["url"] = json!({"type": "string", "format": "uri",
                    "pattern": "^https?://[^\\s/@]+", "maxLength": 2000});
                v["properties"]["secret"] =
                    json!({"type": "string", "minLength": 16, "maxLength": 200});
            }
            "wait" => {
                let mut alts = delay_one_of();
                if let Some(list) = alts.as_array_mut() {
                    for a in list.iter_mut() {
                        a["properties"]["type"] = json!({"const": "wait"});
                    }
                }
                v["oneOf"] = alts;
            }
            _ => {}
        }
        v["required"] = Value::Array(req);
    }
}

/// `uuid` and `date` strings carry the syntax their parsers accept as a `pattern` (the fuzzer's
/// validator does not assert these two formats, so `""` would otherwise pass for a valid id).
pub fn format_patterns(doc: &mut Value) {
    const HEX8: &str =
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    let uuid = format!("^({HEX8}|[0-9a-fA-F]{{32}}|\\{{{HEX8}\\}}|urn:uuid:{HEX8})$");
    let date = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$".to_string();
    fn walk(v: &mut Value, uuid: &str, date: &str) {
        match v {
            Value::Object(m) => {
                let is_string = match m.get("type") {
                    Some(Value::String(t)) => t == "string",
                    Some(Value::Array(ts)) => ts.iter().any(|t| t == "string"),
                    _ => false,
                };
                if is_string && !m.contains_key("pattern") {
                    match m.get("format").and_then(Value::as_str) {
                        Some("uuid") => {
                            m.insert("pattern".into(), json!(uuid));
                        }
                        Some("date") => {
                            m.insert("pattern".into(), json!(date));
                        }
                        _ => {}
                    }
                }
                for (k, child) in m.iter_mut() {
                    // Examples are data, not schemas.
                    if k != "example" && k != "examples" {
                        walk(child, uuid, date);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, uuid, date)),
            _ => {}
        }
    }
    walk(&mut doc["components"]["schemas"], &uuid, &date);
    if let Some(paths) = doc.get_mut("paths") {
        walk(paths, &uuid, &date);
    }
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
        from: "LeadInput",
        to: "LeadCreate",
        required: &["name"],
        drop: &[],
        ops: &[("/api/leads", "post"), ("/api/leads/{id}", "put")],
    },
    Split {
        from: "TemplateInput",
        to: "TemplateWrite",
        required: &["name", "body"],
        drop: &[],
        ops: &[
            ("/api/proposals/templates", "post"),
            ("/api/proposals/templates/{id}", "put"),
            ("/api/contracts/templates", "post"),
            ("/api/contracts/templates/{id}", "put"),
        ],
    },
    Split {
        from: "ProposalUpdate",
        to: "ProposalReplace",
        required: &["title", "valid_until", "items"],
        drop: &[],
        ops: &[("/api/proposals/{id}", "put")],
    },
    Split {
        from: "ContractUpdate",
        to: "ContractReplace",
        required: &["title", "sla"],
        drop: &[],
        ops: &[("/api/contracts/{id}", "put")],
    },
    Split {
        from: "ScoringRuleInput",
        to: "ScoringRuleCreate",
        required: &["field", "operator", "points"],
        drop: &[],
        ops: &[("/api/leads/scoring-rules", "post")],
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

/// Rules of the split schemas that differ between the create and the partial update.
pub fn after_splits(doc: &mut Value) {
    // The logo is the image's bytes.
    for ct in ["image/png", "image/jpeg"] {
        let body = &mut doc["paths"]["/api/tenant/logo"]["put"]["requestBody"]["content"][ct];
        if body.is_object() {
            body["schema"] = json!({"type": "string", "format": "binary"});
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    // Generic `Report<T>`: `previous` is `null` without `compare` (utoipa inlines `Option<T>` of a
    // generic as the bare object).
    if let Some(all) = schemas.as_object_mut() {
        for (name, schema) in all.iter_mut() {
            if !name.starts_with("Report_") {
                continue;
            }
            if let Some(prev) = schema["properties"].get_mut("previous")
                && prev.get("type") == Some(&json!("object"))
            {
                *prev = json!({"anyOf": [prev.clone(), {"type": "null"}]});
            }
        }
    }
    // `leads::service`: a lead's name is never cleared (`null` on `PATCH` is refused).
    if schemas["LeadInput"]["properties"].get("name").is_some() {
        schemas["LeadInput"]["properties"]["name"]["type"] = json!("string");
    }
    // A deal's title is never cleared (`null` on `PATCH` is refused).
    if schemas["OpportunityInput"]["properties"]
        .get("title")
        .is_some()
    {
        schemas["OpportunityInput"]["properties"]["title"]["type"] = json!("string");
    }
    // A deal's status changes through its actions, never in the body.
    if schemas.get("OpportunityCreate").is_some() {
        schemas["OpportunityCreate"]["properties"]["status"] = json!({"not": {}});
    }
    // A partial `PUT` keeps the stored value: an operator without a value is fine there.
    if let Some(all) = schemas["ScoringRuleInput"]["allOf"].as_array_mut() {
        for rule in all {
            if let Some(then) = rule["then"].as_object_mut() {
                then.remove("required");
                // (`null` keeps the stored value.)
                if let Some(value) = then.get_mut("properties").and_then(|p| p.get_mut("value")) {
                    *value = json!({"anyOf": [value.clone(), {"type": "null"}]});
                }
            }
        }
    }
    // `leads::fields`: a new `select` field needs options.
    if schemas.get("CustomFieldCreate").is_some() {
        schemas["CustomFieldCreate"]["if"] =
            json!({"properties": {"type": {"const": "select"}}, "required": ["type"]});
        schemas["CustomFieldCreate"]["then"] = json!({"required": ["options"],
            "properties": {"options": {"type": "array", "minItems": 1}}});
    }
    // `leads::scoring`: a new rule needs its description too.
    if let Some(req) = schemas["ScoringRuleCreate"]["required"].as_array_mut() {
        req.push(json!("description"));
        schemas["ScoringRuleCreate"]["properties"]["description"] = text(200);
    }
}

/// A required text field is never blank: the server trims it and answers `required` (on the
/// create and on a partial update alike).
fn not_blank(schema: &mut Value, name: &str) {
    let prop = &mut schema["properties"][name];
    let is_text = match &prop["type"] {
        Value::String(t) => t == "string",
        Value::Array(ts) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    if is_text && prop.get("pattern").is_none() && prop.get("format").is_none() {
        prop["pattern"] = json!("\\S");
    }
}

pub fn split_create_schemas(doc: &mut Value) {
    for split in SPLITS {
        if let Some(base) = doc["components"]["schemas"].get_mut(split.from) {
            for name in split.required {
                not_blank(base, name);
            }
        }
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
