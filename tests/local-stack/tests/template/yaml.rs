//! Reading `template.yaml` as plain YAML: its resources, intrinsic
//! functions in short and long form, and the values a `!If` can take.

use std::path::PathBuf;

use serde_yaml_ng::Value;

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

pub(crate) fn load_template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

pub(crate) fn resources(template: &Value) -> &serde_yaml_ng::Mapping {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template has a Resources mapping")
}

/// A value as compact YAML, for failure messages.
pub(crate) fn show(value: &Value) -> String {
    serde_yaml_ng::to_string(value)
        .map(|yaml| yaml.trim_end().replace('\n', "\n      "))
        .unwrap_or_else(|_| format!("{value:?}"))
}

pub(crate) fn key_str(key: &Value) -> String {
    key.as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{key:?}"))
}

/// Short name of a tag (`!Ref` -> `Ref`).
pub(crate) fn tag_name(tag: &serde_yaml_ng::value::Tag) -> String {
    tag.to_string().trim_start_matches('!').to_owned()
}

/// A tagged value (`!Name value`) or its long form (`{"Fn::Name": value}` /
/// `{"Ref": value}`), as (Name, value).
pub(crate) fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tag_name(&tagged.tag), &tagged.value)),
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            let key = key.as_str()?;
            if key == "Ref" {
                Some(("Ref".to_owned(), inner))
            } else {
                key.strip_prefix("Fn::")
                    .map(|name| (name.to_owned(), inner))
            }
        }
        _ => None,
    }
}

/// Every value `value` can take: both branches of `!If` (recursively), and
/// nothing for `!Ref AWS::NoValue`.
pub(crate) fn alternatives(value: &Value) -> Vec<&Value> {
    match intrinsic(value) {
        Some((name, inner)) if name == "If" => {
            let branches = inner
                .as_sequence()
                .expect("!If takes [condition, then, else]");
            assert_eq!(
                branches.len(),
                3,
                "!If takes [condition, then, else]: {value:?}"
            );
            branches[1..].iter().flat_map(alternatives).collect()
        }
        Some((name, inner)) if name == "Ref" && inner.as_str() == Some("AWS::NoValue") => vec![],
        _ => vec![value],
    }
}

/// Name of the resource a `!Ref X` / `{"Ref": "X"}` points at.
pub(crate) fn ref_target(value: &Value) -> Option<&str> {
    match intrinsic(value) {
        Some((name, inner)) if name == "Ref" => inner.as_str(),
        _ => None,
    }
}

/// Paths ("Resources.X.Properties....") of every mapping key named `key`.
pub(crate) fn key_paths(value: &Value, key: &str, at: String, found: &mut Vec<String>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let here = format!("{at}.{}", key_str(k));
                if k.as_str() == Some(key) {
                    found.push(here.clone());
                }
                key_paths(v, key, here, found);
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                key_paths(v, key, format!("{at}[{i}]"), found);
            }
        }
        Value::Tagged(tagged) => key_paths(
            &tagged.value,
            key,
            format!("{at}!{}", tag_name(&tagged.tag)),
            found,
        ),
        _ => {}
    }
}
