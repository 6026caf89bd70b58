//! The template's functions, each found by the Cargo binary it is built
//! from.

use std::collections::BTreeSet;

use passcode_core::Action;
use passcode_core::action::BULK_FUNCTION;
use serde_yaml_ng::Value;

use crate::yaml::{intrinsic, key_str, load_template, resources};

pub(crate) struct Function<'a> {
    pub(crate) logical_id: String,
    pub(crate) resource: &'a Value,
}

impl Function<'_> {
    pub(crate) fn properties(&self) -> &Value {
        self.resource.get("Properties").unwrap_or(&Value::Null)
    }

    fn events(&self) -> Vec<(String, &Value)> {
        self.properties()
            .get("Events")
            .and_then(Value::as_mapping)
            .map(|events| events.iter().map(|(k, v)| (key_str(k), v)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn events_of_type(&self, kind: &str) -> Vec<(String, &Value)> {
        self.events()
            .into_iter()
            .filter(|(_, event)| event.get("Type").and_then(Value::as_str) == Some(kind))
            .collect()
    }
}

pub(crate) fn functions(template: &Value) -> Vec<Function<'_>> {
    resources(template)
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(k, r)| Function {
            logical_id: key_str(k),
            resource: r,
        })
        .collect()
}

fn binary_of(function: &Function) -> Option<String> {
    function
        .resource
        .get("Metadata")?
        .get("BuildProperties")?
        .get("Binary")?
        .as_str()
        .map(str::to_owned)
}

/// The function resource built from the Cargo binary `binary`.
pub(crate) fn function_built_from<'a>(template: &'a Value, binary: &str) -> Function<'a> {
    let mut matching: Vec<Function> = functions(template)
        .into_iter()
        .filter(|f| binary_of(f).as_deref() == Some(binary))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected exactly one AWS::Serverless::Function with Metadata.BuildProperties.Binary == {binary:?}, found {}",
        matching.len()
    );
    matching.remove(0)
}

/// The function resource for `action`, found by its Cargo binary.
pub(crate) fn function_for<'a>(template: &'a Value, action: Action) -> Function<'a> {
    function_built_from(template, action.function_name())
}

/// The bulk function resource, found by its Cargo binary.
pub(crate) fn bulk_function(template: &Value) -> Function<'_> {
    function_built_from(template, BULK_FUNCTION)
}

#[test]
fn every_action_has_exactly_one_function_built_from_its_binary() {
    let template = load_template();
    let binaries = Action::ALL
        .iter()
        .map(|a| a.function_name())
        .chain([BULK_FUNCTION]);
    for binary in binaries {
        let function = function_built_from(&template, binary);
        let metadata = function.resource.get("Metadata").unwrap();
        assert_eq!(
            metadata.get("BuildMethod").and_then(Value::as_str),
            Some("rust-cargolambda"),
            "{}: Metadata.BuildMethod",
            function.logical_id
        );
        // The deployed name ends with the action's function name (an optional
        // prefix may come first), so logs and ARNs read like the code.
        if let Some(name) = function.properties().get("FunctionName") {
            let literal = match intrinsic(name) {
                Some((tag, inner)) if tag == "Sub" => inner.as_str(),
                _ => name.as_str(),
            };
            let literal = literal.unwrap_or_else(|| {
                panic!(
                    "{}: FunctionName must be a string or a !Sub string",
                    function.logical_id
                )
            });
            assert!(
                literal.ends_with(binary),
                "{}: FunctionName {literal:?} does not end with {binary:?}",
                function.logical_id,
            );
        }
    }
    let binaries: Vec<String> = functions(&template).iter().filter_map(binary_of).collect();
    let mut known: BTreeSet<&str> = Action::ALL.iter().map(|a| a.function_name()).collect();
    known.insert(passcode_core::action::TRACKER_FUNCTION);
    known.insert(BULK_FUNCTION);
    for binary in &binaries {
        assert!(
            known.contains(binary.as_str()),
            "function built from unknown binary {binary:?}"
        );
    }
}
