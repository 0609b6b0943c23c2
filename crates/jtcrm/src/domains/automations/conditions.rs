//! Automation conditions: validation of the `all`/`any` tree when an automation is saved, and its
//! evaluation against the entity snapshot and the before/after of the triggering event.

use jtcrm_types::dto::automations::{Condition, ConditionOp};
use serde_json::Value;

use super::templates::lookup;
use jtcrm_kernel::error::Validator;

pub const MAX_DEPTH: usize = 4;
pub const MAX_LEAVES: usize = 50;

fn is_field_path(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Validates `c` (at `path`, e.g. `conditions`), naming each bad node.
pub fn validate(v: &mut Validator, c: &Condition, path: &str) {
    let mut leaves = 0;
    validate_node(v, c, path, 1, &mut leaves);
    if leaves > MAX_LEAVES {
        v.add(
            path,
            "too_many",
            &format!("No máximo {MAX_LEAVES} comparações por automação"),
        );
    }
}

fn validate_node(v: &mut Validator, c: &Condition, path: &str, depth: usize, leaves: &mut usize) {
    if depth > MAX_DEPTH {
        v.add(
            path,
            "too_deep",
            &format!("No máximo {MAX_DEPTH} níveis de grupos"),
        );
        return;
    }
    let is_leaf = c.field.is_some() || c.op.is_some();
    let groups = usize::from(c.all.is_some()) + usize::from(c.any.is_some());
    if groups + usize::from(is_leaf) != 1 {
        v.add(
            path,
            "invalid_condition",
            "Use exatamente um de: all, any ou field + op",
        );
        return;
    }
    for (key, list) in [("all", &c.all), ("any", &c.any)] {
        let Some(list) = list else { continue };
        if list.is_empty() {
            v.add(
                &format!("{path}.{key}"),
                "required",
                "Informe ao menos uma condição",
            );
        }
        for (i, sub) in list.iter().enumerate() {
            validate_node(v, sub, &format!("{path}.{key}[{i}]"), depth + 1, leaves);
        }
    }
    if !is_leaf {
        return;
    }
    *leaves += 1;
    // (The path as given: a path with spaces around it is not a path.)
    match c.field.as_deref() {
        None => v.add(&format!("{path}.field"), "required", "Campo obrigatório"),
        Some(f) if f.trim().is_empty() => {
            v.add(&format!("{path}.field"), "required", "Campo obrigatório")
        }
        Some(f) if !is_field_path(f) => v.add(
            &format!("{path}.field"),
            "invalid_field",
            "Use um caminho como status, score ou custom_fields.segmento",
        ),
        Some(_) => {}
    }
    let Some(op) = c.op else {
        v.add(&format!("{path}.op"), "required", "Campo obrigatório");
        return;
    };
    use ConditionOp::*;
    let needs_value = !matches!(op, IsEmpty | IsNotEmpty | Changed);
    match (&c.value, needs_value) {
        (None, true) => v.add(&format!("{path}.value"), "required", "Campo obrigatório"),
        (Some(_), false) => v.add(
            &format!("{path}.value"),
            "not_allowed",
            "Esta comparação não usa value",
        ),
        _ => {}
    }
    if let Some(val) = &c.value {
        match op {
            In | NotIn if !val.is_array() => v.add(
                &format!("{path}.value"),
                "invalid_value",
                "Use uma lista de valores",
            ),
            Gt | Gte | Lt | Lte if !(val.is_number() || val.is_string()) => v.add(
                &format!("{path}.value"),
                "invalid_value",
                "Use um número ou uma data",
            ),
            _ => {}
        }
    }
    if op != Changed && (c.from.is_some() || c.to.is_some()) {
        v.add(
            &format!("{path}.op"),
            "invalid_value",
            "from e to só valem com op = changed",
        );
    }
}

/// What the triggering event says changed.
pub enum Changes<'a> {
    /// A manual run (`execute`): there is no change, and `changed` conditions are not checked.
    Manual,
    /// The event's `data`: `{"before": {…}, "after": {…}}` and/or `{"changes": {f: {from, to}}}`.
    Event(&'a Value),
}

impl Changes<'_> {
    /// `(before, after)` of `field` if the event changed it.
    fn of(&self, field: &str) -> Option<(Value, Value)> {
        let Changes::Event(data) = self else {
            return None;
        };
        if let Some(c) = lookup(data, "changes").and_then(|c| c.get(field)) {
            let from = c.get("from").cloned().unwrap_or(Value::Null);
            let to = c.get("to").cloned().unwrap_or(Value::Null);
            return (from != to).then_some((from, to));
        }
        let before = data.get("before").and_then(|b| lookup(b, field));
        let after = data.get("after").and_then(|a| lookup(a, field));
        if before.is_none() && after.is_none() {
            return None;
        }
        let (b, a) = (
            before.cloned().unwrap_or(Value::Null),
            after.cloned().unwrap_or(Value::Null),
        );
        (b != a).then_some((b, a))
    }
}

/// Evaluates `c` on `entity` (the entity's current snapshot as JSON).
pub fn evaluate(c: &Condition, entity: &Value, changes: &Changes<'_>) -> bool {
    if let Some(all) = &c.all {
        return all.iter().all(|x| evaluate(x, entity, changes));
    }
    if let Some(any) = &c.any {
        return any.iter().any(|x| evaluate(x, entity, changes));
    }
    let (Some(field), Some(op)) = (c.field.as_deref(), c.op) else {
        return false;
    };
    let field = field.trim();
    let actual = lookup(entity, field).unwrap_or(&Value::Null);
    let expected = c.value.as_ref().unwrap_or(&Value::Null);
    use ConditionOp::*;
    match op {
        Eq => loose_eq(actual, expected),
        Ne => !loose_eq(actual, expected),
        Gt => compare(actual, expected).is_some_and(|o| o.is_gt()),
        Gte => compare(actual, expected).is_some_and(|o| o.is_ge()),
        Lt => compare(actual, expected).is_some_and(|o| o.is_lt()),
        Lte => compare(actual, expected).is_some_and(|o| o.is_le()),
        Contains => contains(actual, expected),
        NotContains => !contains(actual, expected),
        In => expected
            .as_array()
            .is_some_and(|l| l.iter().any(|e| loose_eq(actual, e))),
        NotIn => !expected
            .as_array()
            .is_some_and(|l| l.iter().any(|e| loose_eq(actual, e))),
        IsEmpty => is_empty(actual),
        IsNotEmpty => !is_empty(actual),
        Changed => match changes {
            Changes::Manual => true,
            Changes::Event(_) => match changes.of(field) {
                None => false,
                Some((before, after)) => {
                    c.from.as_ref().is_none_or(|f| loose_eq(&before, f))
                        && c.to.as_ref().is_none_or(|t| loose_eq(&after, t))
                }
            },
        },
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Equal as JSON, or as numbers (`"10"` = `10`), or as case-insensitive text.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            matches!((number(a), number(b)), (Some(x), Some(y)) if x == y)
        }
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => {
            s.trim() == x.to_string()
        }
        _ => false,
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y);
    }
    // RFC 3339 timestamps (UTC, as the API writes them) order as text.
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::Array(items) => items.iter().any(|i| loose_eq(i, needle)),
        Value::String(s) => needle
            .as_str()
            .map(|n| s.to_lowercase().contains(&n.to_lowercase()))
            .unwrap_or(false),
        _ => false,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn cond(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    fn lead() -> Value {
        json!({"status": "qualified", "score": 55, "tags": ["vip", "fibra"], "city": "Recife",
               "custom_fields": {"segmento": "provedor", "links": "3"}, "owner_id": null})
    }

    #[test]
    fn all_and_any() {
        let c = cond(json!({"all": [
            {"field": "status", "op": "eq", "value": "qualified"},
            {"any": [{"field": "score", "op": "gte", "value": 80}, {"field": "tags", "op": "contains", "value": "VIP"}]}
        ]}));
        assert!(evaluate(&c, &lead(), &Changes::Manual));
        let c = cond(json!({"all": [
            {"field": "status", "op": "eq", "value": "qualified"},
            {"any": [{"field": "score", "op": "gte", "value": 80}, {"field": "tags", "op": "contains", "value": "corp"}]}
        ]}));
        assert!(!evaluate(&c, &lead(), &Changes::Manual));
        let c = cond(
            json!({"any": [{"field": "score", "op": "lt", "value": 10}, {"field": "city", "op": "contains", "value": "rec"}]}),
        );
        assert!(evaluate(&c, &lead(), &Changes::Manual));
    }

    #[test]
    fn leaf_operators() {
        let l = lead();
        let t = |v: Value| evaluate(&cond(v), &l, &Changes::Manual);
        assert!(t(
            json!({"field": "custom_fields.links", "op": "gt", "value": 2})
        ));
        assert!(t(
            json!({"field": "status", "op": "in", "value": ["new", "qualified"]})
        ));
        assert!(t(
            json!({"field": "status", "op": "not_in", "value": ["lost"]})
        ));
        assert!(t(json!({"field": "owner_id", "op": "is_empty"})));
        assert!(t(json!({"field": "nope", "op": "is_empty"})));
        assert!(t(json!({"field": "tags", "op": "is_not_empty"})));
        assert!(t(json!({"field": "score", "op": "ne", "value": "56"})));
        assert!(!t(json!({"field": "score", "op": "eq", "value": "56"})));
        assert!(t(
            json!({"field": "tags", "op": "not_contains", "value": "corp"})
        ));
    }

    #[test]
    fn changed_from_to() {
        let l = lead();
        let ev = json!({"before": {"status": "new"}, "after": {"status": "qualified"}});
        let ch = Changes::Event(&ev);
        let t = |v: Value| evaluate(&cond(v), &l, &ch);
        assert!(t(json!({"field": "status", "op": "changed"})));
        assert!(t(
            json!({"field": "status", "op": "changed", "to": "qualified"})
        ));
        assert!(t(
            json!({"field": "status", "op": "changed", "from": "new", "to": "qualified"})
        ));
        assert!(!t(
            json!({"field": "status", "op": "changed", "from": "contacted"})
        ));
        assert!(!t(json!({"field": "score", "op": "changed"})));
        // lead.updated carries {"changes": {field: {from, to}}}.
        let upd = json!({"changes": {"city": {"from": "Olinda", "to": "Recife"}}});
        let ch = Changes::Event(&upd);
        assert!(evaluate(
            &cond(json!({"field": "city", "op": "changed", "from": "olinda"})),
            &l,
            &ch
        ));
        assert!(!evaluate(
            &cond(json!({"field": "status", "op": "changed"})),
            &l,
            &ch
        ));
        // A manual run does not check changes.
        assert!(evaluate(
            &cond(json!({"field": "status", "op": "changed", "to": "lost"})),
            &l,
            &Changes::Manual
        ));
    }

    #[test]
    fn validation_names_nodes() {
        let mut v = Validator::new();
        validate(
            &mut v,
            &cond(json!({"all": [
                {"field": "status"},
                {"field": "score", "op": "gt"},
                {"field": "a b", "op": "eq", "value": 1},
                {"any": []},
                {"field": "x", "op": "in", "value": "no-list"},
                {"field": "x", "op": "eq", "value": 1, "to": 2},
                {"all": [{"field": "x", "op": "is_empty", "value": 3}], "field": "y"}
            ]})),
            "conditions",
        );
        let fields: Vec<_> = v.errors.iter().map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            vec![
                "conditions.all[0].op",
                "conditions.all[1].value",
                "conditions.all[2].field",
                "conditions.all[3].any",
                "conditions.all[4].value",
                "conditions.all[5].op",
                "conditions.all[6]",
            ]
        );
        let mut deep = json!({"field": "x", "op": "is_empty"});
        for _ in 0..5 {
            deep = json!({"all": [deep]});
        }
        let mut v = Validator::new();
        validate(&mut v, &cond(deep), "conditions");
        assert_eq!(v.errors[0].code, "too_deep");
    }
}
