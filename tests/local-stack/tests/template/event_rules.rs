//! The EventBridge rule of each function, for its action's detail-type and
//! `detail.action`.

use passcode_core::Action;
use passcode_core::action::{BULK_DETAIL_TYPE, EVENT_DETAIL_TYPE};
use serde_yaml_ng::Value;

use crate::functions::{Function, bulk_function, function_for};
use crate::yaml::load_template;

/// The pattern of a function's one EventBridge rule, as (detail-type,
/// detail.action) lists.
fn rule_pattern<'a>(function: &'a Function<'a>) -> (Vec<&'a str>, Vec<&'a str>) {
    let rules = function.events_of_type("EventBridgeRule");
    assert_eq!(
        rules.len(),
        1,
        "{}: expected exactly one EventBridgeRule event, found {}",
        function.logical_id,
        rules.len()
    );
    let (name, rule) = &rules[0];
    let pattern = rule
        .get("Properties")
        .and_then(|p| p.get("Pattern"))
        .unwrap_or_else(|| panic!("{}.{name}: no Pattern", function.logical_id));
    let strings = |value: Option<&'a Value>| -> Vec<&'a str> {
        value
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    (
        strings(pattern.get("detail-type")),
        strings(pattern.get("detail").and_then(|d| d.get("action"))),
    )
}

#[test]
fn each_function_has_one_eventbridge_rule_for_its_action() {
    let template = load_template();
    for action in Action::ALL {
        let function = function_for(&template, action);
        if !action.reachable_by_events() {
            assert!(
                function.events_of_type("EventBridgeRule").is_empty(),
                "{}: must have no rule",
                function.logical_id
            );
            continue;
        }
        let (detail_type, detail_action) = rule_pattern(&function);
        assert_eq!(
            detail_type,
            [EVENT_DETAIL_TYPE],
            "{}: Pattern.detail-type",
            function.logical_id
        );
        assert_eq!(
            detail_action,
            [action.event_action()],
            "{}: Pattern.detail.action",
            function.logical_id
        );
    }
}

/// The bulk function's rule takes its own detail-type, for the actions that
/// have a bulk queue; the single-request rules never match a bulk event.
#[test]
fn bulk_function_has_one_eventbridge_rule_for_bulk_events() {
    let template = load_template();
    let function = bulk_function(&template);
    let (detail_type, detail_action) = rule_pattern(&function);
    assert_eq!(detail_type, [BULK_DETAIL_TYPE], "{}", function.logical_id);
    let bulk_actions: Vec<&str> = Action::ALL
        .into_iter()
        .filter(|a| a.bulk_capable())
        .map(Action::event_action)
        .collect();
    assert_eq!(detail_action, bulk_actions, "{}", function.logical_id);
    assert_ne!(BULK_DETAIL_TYPE, EVENT_DETAIL_TYPE);
}
