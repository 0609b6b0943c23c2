//! Placeholder rendering for automation and cadence texts: `{{lead.name}}` is a dotted lookup in a
//! JSON context and nothing else. No expressions, filters, loops or includes, and substituted values
//! are never scanned again, so a lead named `{{owner.email}}` renders literally (no injection).
//! A missing value renders empty.

use serde_json::Value;

/// Roots a template may name; anything else is refused when the automation is saved.
pub const ROOTS: &[&str] = &[
    "lead",
    "owner",
    "task",
    "opportunity",
    "automation",
    "company",
];

/// Longest placeholder body considered; longer `{{…}}` runs are copied literally.
const MAX_PATH: usize = 100;

/// A dotted path of names or indexes (`lead.custom_fields.segmento`, `after.status`).
pub fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_PATH
        && s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Replaces each `{{ path }}` with the value at `path` in `ctx`.
pub fn render(template: &str, ctx: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let path = after[..end].trim();
        if is_path(path) {
            out.push_str(&text_of(lookup(ctx, path)));
        } else {
            // Not a placeholder: keep it as written.
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The placeholder paths of a template, in order.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut found = vec![];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let path = after[..end].trim();
        if is_path(path) {
            found.push(path.to_string());
        }
        rest = &after[end + 2..];
    }
    found
}

/// Placeholders whose root is not one of [`ROOTS`].
pub fn unknown_roots(template: &str) -> Vec<String> {
    placeholders(template)
        .into_iter()
        .filter(|p| {
            let root = p.split('.').next().unwrap_or("");
            !ROOTS.contains(&root)
        })
        .collect()
}

/// Whether any of `texts` names the lead's owner or the company (which cost a query each).
pub fn mentions_people(texts: &[Option<&str>]) -> bool {
    texts.iter().flatten().any(|t| {
        placeholders(t).iter().any(|p| {
            let root = p.split('.').next().unwrap_or("");
            root == "owner" || root == "company"
        })
    })
}

/// The value at a dotted path (object keys, or list indexes).
pub fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = ctx;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(true)) => "sim".into(),
        Some(Value::Bool(false)) => "não".into(),
        Some(Value::Array(items)) => items
            .iter()
            .filter(|i| !matches!(i, Value::Array(_) | Value::Object(_) | Value::Null))
            .map(|i| text_of(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null | Value::Object(_)) | None => String::new(),
    }
}

/// Cuts `s` to at most `max` characters.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "lead": {"name": "João da Silva", "score": 42, "tags": ["vip", "fibra"], "custom_fields": {"plano": "500M"},
                     "company": null, "active": true},
            "owner": {"name": "Ana"}
        })
    }

    #[test]
    fn renders_dotted_lookups() {
        assert_eq!(
            render("Ligar para {{lead.name}} ({{ lead.score }} pts)", &ctx()),
            "Ligar para João da Silva (42 pts)"
        );
        assert_eq!(
            render("{{lead.custom_fields.plano}} / {{lead.tags}}", &ctx()),
            "500M / vip, fibra"
        );
        assert_eq!(render("{{lead.tags.1}}", &ctx()), "fibra");
        assert_eq!(render("{{lead.active}}", &ctx()), "sim");
    }

    #[test]
    fn missing_values_render_empty() {
        assert_eq!(
            render("[{{lead.company}}][{{lead.nada}}][{{x.y.z}}]", &ctx()),
            "[][][]"
        );
        assert_eq!(render("{{lead}}", &ctx()), "");
    }

    #[test]
    fn no_injection_or_evaluation() {
        let c = json!({"lead": {"name": "{{owner.name}}"}, "owner": {"name": "Ana"}});
        assert_eq!(render("Oi {{lead.name}}", &c), "Oi {{owner.name}}");
        // Expressions and template-engine syntax are copied as written.
        assert_eq!(
            render("{{ 7*7 }} {% if x %} {{lead.name | upper}}", &c),
            "{{ 7*7 }} {% if x %} {{lead.name | upper}}"
        );
        assert_eq!(render("aberto {{lead.name", &c), "aberto {{lead.name");
        assert_eq!(render("}}{{}}{{ }}", &c), "}}{{}}{{ }}");
    }

    #[test]
    fn placeholders_and_roots() {
        assert_eq!(
            placeholders("{{lead.name}} e {{ owner.email }} e {{ 1+1 }}"),
            vec!["lead.name", "owner.email"]
        );
        assert_eq!(
            unknown_roots("{{lead.name}} {{tenant.secret}}"),
            vec!["tenant.secret"]
        );
        assert_eq!(clip("abcdef", 3), "abc");
        assert!(mentions_people(&[None, Some("Oi {{ owner.name }}")]));
        assert!(mentions_people(&[Some("{{company.name}}")]));
        assert!(!mentions_people(&[
            Some("{{lead.name}} {{automation.name}}"),
            None
        ]));
    }
}
