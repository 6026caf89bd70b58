//! No policy statement grants on every resource, and every function policy
//! is one this template defines.

use serde_yaml_ng::Value;

use crate::functions::functions;
use crate::yaml::{
    alternatives, intrinsic, key_str, load_template, ref_target, resources, show, tag_name,
};

/// Every IAM-style policy statement in the template, with where it sits.
fn statements<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let here = format!("{at}.{}", key_str(k));
                if k.as_str() == Some("Statement") {
                    let list: Vec<&Value> = match v.as_sequence() {
                        Some(items) => items.iter().collect(),
                        None => vec![v],
                    };
                    for (i, item) in list.into_iter().enumerate() {
                        for statement in alternatives(item) {
                            found.push((format!("{here}[{i}]"), statement));
                        }
                    }
                } else {
                    statements(v, here, found);
                }
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                statements(v, format!("{at}[{i}]"), found);
            }
        }
        Value::Tagged(tagged) => statements(
            &tagged.value,
            format!("{at}!{}", tag_name(&tagged.tag)),
            found,
        ),
        _ => {}
    }
}

/// True if this Resource value (string, list, !Sub, !If, ...) can be `*`.
fn resource_is_wildcard(value: &Value) -> bool {
    alternatives(value).into_iter().any(|v| match v {
        Value::String(s) => s.trim() == "*",
        Value::Sequence(items) => items.iter().any(resource_is_wildcard),
        _ => match intrinsic(v) {
            Some((name, inner)) if name == "Sub" => {
                let text = inner
                    .as_str()
                    .or_else(|| inner.as_sequence().and_then(|s| s.first()?.as_str()));
                text.is_some_and(|t| t.trim() == "*")
            }
            _ => false,
        },
    })
}

#[test]
fn no_policy_statement_grants_on_every_resource() {
    let template = load_template();
    let mut found = Vec::new();
    statements(&template, String::new(), &mut found);
    assert!(
        !found.is_empty(),
        "no policy statements found; the walk is broken"
    );
    let mut offending = Vec::new();
    for (at, statement) in &found {
        let resource = statement.get("Resource");
        // A role's trust policy names who may assume it, not resources: it
        // must name one service principal, never everyone.
        if at.contains(".AssumeRolePolicyDocument.") {
            let service = statement
                .get("Principal")
                .and_then(|p| p.get("Service"))
                .filter(|s| !resource_is_wildcard(s));
            if service.is_none()
                || statement
                    .get("Principal")
                    .and_then(|p| p.get("AWS"))
                    .is_some()
            {
                offending.push(format!(
                    "{at}: a trust policy must name one service principal\n      {}",
                    show(statement)
                ));
            }
            continue;
        }
        if statement.get("NotResource").is_some() {
            offending.push(format!("{at}: uses NotResource\n      {}", show(statement)));
        } else if resource.is_none() {
            offending.push(format!("{at}: has no Resource\n      {}", show(statement)));
        } else if resource.is_some_and(resource_is_wildcard) {
            offending.push(format!(
                "{at}: Resource is \"*\"\n      {}",
                show(statement)
            ));
        }
    }
    // Function policies must be statements we can see: inline documents or
    // references to policies defined in this template. A named AWS managed
    // policy or a SAM policy template would bring in statements that this
    // check cannot read.
    for function in functions(&template) {
        let policies = function.properties().get("Policies");
        let items: Vec<&Value> = match policies {
            None => vec![],
            Some(Value::Sequence(items)) => items.iter().flat_map(alternatives).collect(),
            Some(other) => alternatives(other),
        };
        for item in items {
            let visible = item.get("Statement").is_some()
                || ref_target(item).is_some_and(|id| {
                    id == "AWS::NoValue" || resources(&template).contains_key(id)
                });
            if !visible {
                offending.push(format!(
                    "{}.Properties.Policies: {} is not an inline document or a policy defined in this template",
                    function.logical_id,
                    show(item)
                ));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "policy statements that are too broad:\n  {}",
        offending.join("\n  ")
    );
}
