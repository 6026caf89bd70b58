//! The template's parameters and their documentation.

use crate::deployed::{translate, workspace_root};

/// infra/README.md is where an operator looks a parameter up.
#[test]
fn every_parameter_is_documented() {
    let template = translate(&[]);
    let readme = std::fs::read_to_string(workspace_root().join("infra/README.md")).unwrap();
    let missing: Vec<&String> = template["Parameters"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "not in infra/README.md: {missing:?}");
}
