//! The template translated by samtranslator and "deployed" for a set of
//! parameter values, and small helpers to read the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Map, Value, json};

pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The template as samtranslator turns it into plain CloudFormation.
pub(crate) fn translate(parameters: &[(&str, &str)]) -> Value {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let python = if python.is_file() {
        python.into_os_string()
    } else {
        "python3".into()
    };
    let overrides: Map<String, Value> = parameters
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let output = Command::new(&python)
        .arg(root.join("tests/local-stack/scripts/sam_translate.py"))
        .arg(root.join("template.yaml"))
        .arg(Value::Object(overrides).to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python:?}: {e}"));
    assert!(
        output.status.success(),
        "samtranslator failed (run `./dev lint` once to install it into .venv):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("translation is JSON")
}

/// The template's parameter declarations, as samtranslator passes them on.
pub(crate) fn declared_parameters() -> Value {
    translate(&[])["Parameters"].clone()
}

/// A declared parameter's `(Default, MinValue, MaxValue)`, `Null` for what
/// the declaration leaves out.
pub(crate) fn range(parameters: &Value, name: &str) -> (Value, Value, Value) {
    let p = &parameters[name];
    (
        p["Default"].clone(),
        p["MinValue"].clone(),
        p["MaxValue"].clone(),
    )
}

/// The resources CloudFormation would create for these parameters.
pub(crate) struct Deployed {
    pub(crate) resources: BTreeMap<String, Value>,
}

impl Deployed {
    pub(crate) fn with(parameters: &[(&str, &str)]) -> Deployed {
        let template = translate(parameters);
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for (name, declaration) in template["Parameters"].as_object().unwrap() {
            if let Some(default) = declaration.get("Default") {
                values.insert(name.clone(), scalar(default));
            }
        }
        for (name, value) in parameters {
            assert!(
                values.contains_key(*name) || template["Parameters"].get(*name).is_some(),
                "{name} is not a parameter of the template"
            );
            values.insert(name.to_string(), value.to_string());
        }
        let resolver = Resolver {
            template: &template,
            parameters: values,
        };
        let resources = template["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| {
                r.get("Condition")
                    .and_then(Value::as_str)
                    .is_none_or(|c| resolver.condition(c))
            })
            .map(|(id, r)| (id.clone(), resolver.resolve(r).unwrap_or(Value::Null)))
            .collect();
        Deployed { resources }
    }

    pub(crate) fn get(&self, id: &str) -> &Value {
        self.resources
            .get(id)
            .unwrap_or_else(|| panic!("no resource {id}"))
    }

    pub(crate) fn props(&self, id: &str) -> &Value {
        &self.get(id)["Properties"]
    }

    pub(crate) fn of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r["Type"] == kind)
    }

    /// The resources of `kind`, which must be `count` in number (`what`
    /// says which they are).
    pub(crate) fn exactly<'a>(
        &'a self,
        kind: &'a str,
        count: usize,
        what: &str,
    ) -> Vec<(&'a String, &'a Value)> {
        let found: Vec<_> = self.of_type(kind).collect();
        assert_eq!(found.len(), count, "{kind}: {what}");
        found
    }

    /// Alarms keyed by (namespace, metric, dimensions as "Name=value").
    pub(crate) fn alarms(&self) -> BTreeMap<(String, String, BTreeSet<String>), &Value> {
        self.of_type("AWS::CloudWatch::Alarm")
            .map(|(_, alarm)| {
                let p = &alarm["Properties"];
                let dimensions = p["Dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| format!("{}={}", d["Name"].as_str().unwrap(), d["Value"]))
                    .collect();
                (
                    (
                        p["Namespace"].to_string(),
                        p["MetricName"].to_string(),
                        dimensions,
                    ),
                    p,
                )
            })
            .collect()
    }
}

pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Resolver<'a> {
    template: &'a Value,
    parameters: BTreeMap<String, String>,
}

impl Resolver<'_> {
    fn condition(&self, name: &str) -> bool {
        let definition = &self.template["Conditions"][name];
        assert!(!definition.is_null(), "no condition {name}");
        self.truth(definition)
    }

    fn truth(&self, value: &Value) -> bool {
        let (function, args) = single(value).unwrap_or_else(|| panic!("not a condition: {value}"));
        let args = args.as_array();
        match function {
            "Fn::Equals" => {
                let args = args.unwrap();
                let side = |v: &Value| scalar(&self.resolve(v).unwrap_or(Value::Null));
                side(&args[0]) == side(&args[1])
            }
            "Fn::Not" => !self.truth(&args.unwrap()[0]),
            "Fn::And" => args.unwrap().iter().all(|a| self.truth(a)),
            "Fn::Or" => args.unwrap().iter().any(|a| self.truth(a)),
            "Condition" => self.condition(value["Condition"].as_str().unwrap()),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// `None` for `Ref AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Option<Value> {
        if let Some((function, args)) = single(value) {
            match function {
                "Fn::If" => {
                    let args = args.as_array().unwrap();
                    let chosen = if self.condition(args[0].as_str().unwrap()) {
                        &args[1]
                    } else {
                        &args[2]
                    };
                    return self.resolve(chosen);
                }
                "Ref" if args == "AWS::NoValue" => return None,
                "Ref" => {
                    if let Some(v) = args.as_str().and_then(|p| self.parameters.get(p)) {
                        return Some(Value::String(v.clone()));
                    }
                }
                "Fn::FindInMap" => {
                    let keys: Vec<String> = args
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| scalar(&self.resolve(k).unwrap()))
                        .collect();
                    let found = &self.template["Mappings"][&keys[0]][&keys[1]][&keys[2]];
                    assert!(!found.is_null(), "no mapping entry {keys:?}");
                    return Some(found.clone());
                }
                _ => {}
            }
        }
        Some(match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().filter_map(|v| self.resolve(v)).collect())
            }
            other => other.clone(),
        })
    }
}

/// `{"Fn::X": args}` / `{"Ref": x}` / `{"Condition": x}` as (name, args).
fn single(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (k, v) = map.iter().next()?;
    (k.starts_with("Fn::") || k == "Ref" || k == "Condition").then_some((k.as_str(), v))
}

pub(crate) fn get_att(id: &str, attribute: &str) -> Value {
    json!({"Fn::GetAtt": [id, attribute]})
}

pub(crate) fn reference(id: &str) -> Value {
    json!({"Ref": id})
}

/// A value that may be one item or a list, as a list.
pub(crate) fn items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}
