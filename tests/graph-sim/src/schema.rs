//! Conformance of the requests a client sends to Graph's published schema.
//!
//! `schema/graph-managed-device-schema.json` (see `schema/README.md` for its
//! source and date) lists, per API version, the `managedDevice` properties,
//! the properties whose description says they support `$filter` and with
//! which operators, the properties that may only be selected on a GET of one
//! device, and the bound actions. Every request to `managedDevices` is
//! checked against it; what breaks a rule is recorded as a [`Violation`],
//! whether or not Graph would refuse the request (Graph silently ignores most
//! unsupported filters, so a wrong filter "works" until a tenant grows).
//!
//! This check is deliberately separate from the simulator's own answering
//! logic (`query`, `filter`): it reads the schema file, not the simulator's
//! property list, so a simulator that drifted from the schema cannot hide a
//! client's mistake.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::ApiVersion;

const SCHEMA_JSON: &str = include_str!("../schema/graph-managed-device-schema.json");

/// One request that does not conform to the published schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// `GET` / `POST`.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Decoded query string.
    pub query: String,
    /// Which rule, and what broke it.
    pub rule: String,
}

/// What the schema says about one API version.
struct VersionRules {
    /// Structural properties plus the inherited `id`.
    properties: Vec<String>,
    /// Filterable property -> documented operators.
    filters: BTreeMap<String, Vec<String>>,
    /// Properties only returned on GET of one device with `$select`.
    select_only_by_get: Vec<String>,
    /// Bound actions of `managedDevice`.
    actions: Vec<String>,
}

struct Rules {
    v1: VersionRules,
    beta: VersionRules,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let doc: Value = serde_json::from_str(SCHEMA_JSON).expect("schema file is JSON");
        let version = |name: &str| {
            let v = &doc["versions"][name];
            let keys = |value: &Value| -> Vec<String> {
                value
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            };
            let mut properties = keys(&v["managedDevice"]["properties"]);
            properties.extend(keys(&v["managedDevice"]["inheritedProperties"]));
            let filters = v["query"]["filterByDescription"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(name, entry)| {
                            let ops = entry["operators"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(Value::as_str)
                                        .map(str::to_string)
                                        .collect()
                                })
                                .unwrap_or_default();
                            (name.clone(), ops)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let actions = v["actions"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, a)| a["isBound"] == true)
                        .map(|(n, _)| n.clone())
                        .collect()
                })
                .unwrap_or_default();
            VersionRules {
                properties,
                filters,
                select_only_by_get: keys(&v["query"]["selectOnlyByDescription"]),
                actions,
            }
        };
        Rules {
            v1: version("v1.0"),
            beta: version("beta"),
        }
    })
}

fn version_rules(version: ApiVersion) -> &'static VersionRules {
    match version {
        ApiVersion::V1 => &rules().v1,
        ApiVersion::Beta => &rules().beta,
    }
}

/// What kind of `managedDevices` request is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    List,
    GetOne,
    /// POST of a bound action (name as sent, without namespace).
    Action(&'a str),
}

/// Rule breaches of one request (empty when it conforms).
pub(crate) fn check(
    version: ApiVersion,
    target: Target<'_>,
    select: Option<&str>,
    filter: Option<&str>,
) -> Vec<String> {
    let rules = version_rules(version);
    let v = version.as_str();
    let mut out = Vec::new();
    if let Target::Action(name) = target {
        let name = name.strip_prefix("microsoft.graph.").unwrap_or(name);
        if !rules.actions.iter().any(|a| a == name) {
            out.push(format!(
                "action '{name}' is not a bound action of managedDevice in the {v} schema snapshot"
            ));
        }
    }
    if let Some(select) = select {
        for name in select.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !rules.properties.iter().any(|p| p == name) {
                out.push(
                    match rules
                        .properties
                        .iter()
                        .find(|p| p.eq_ignore_ascii_case(name))
                    {
                        Some(p) => format!("$select '{name}' is spelled '{p}' in the {v} schema"),
                        None => {
                            format!("$select '{name}' is not a property of managedDevice in {v}")
                        }
                    },
                );
            } else if target == Target::List && rules.select_only_by_get.iter().any(|p| p == name) {
                out.push(format!(
                    "$select '{name}' is only returned on a GET of one device ({v} description)"
                ));
            }
        }
    }
    if let Some(filter) = filter {
        if target != Target::List {
            out.push("$filter is only meaningful on the managedDevices list".to_string());
        }
        match parse_filter(filter) {
            Ok(expr) => check_expr(&expr, rules, v, &mut out),
            Err(e) => out.push(format!("$filter does not parse: {e}")),
        }
    }
    out
}

// ------------------------------------------------------------ $filter

/// A `$filter` expression reduced to what the rules look at.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `property op literal` or `fn(property, literal)`; `op` lower-cased.
    Clause {
        property: String,
        op: String,
    },
    /// Anything else (a literal compared to a literal, nested functions...).
    Other(String),
}

fn check_expr(expr: &Expr, rules: &VersionRules, v: &str, out: &mut Vec<String>) {
    match expr {
        Expr::And(a, b) => {
            check_expr(a, rules, v, out);
            check_expr(b, rules, v, out);
        }
        Expr::Or(..) => {
            let mut clauses = Vec::new();
            or_clauses(expr, &mut clauses);
            let first = clauses.first().and_then(|c| match c {
                Expr::Clause { property, .. } => Some(property.clone()),
                _ => None,
            });
            let same_property = first.as_ref().is_some_and(|p| {
                clauses
                    .iter()
                    .all(|c| matches!(c, Expr::Clause { property, .. } if property == p))
            });
            if !same_property {
                out.push(format!(
                    "$filter joins different properties with 'or'; the {v} schema allows 'or' only between values of one property"
                ));
            } else if let Some(p) = &first
                && !rules
                    .filters
                    .get(p)
                    .is_some_and(|ops| ops.iter().any(|o| o == "or"))
            {
                out.push(format!(
                    "$filter uses 'or' on '{p}', which the {v} schema does not document for it"
                ));
            }
            for c in clauses {
                check_expr(c, rules, v, out);
            }
        }
        Expr::Not(_) => {
            out.push("$filter uses 'not', which no managedDevice property documents".to_string())
        }
        Expr::Clause { property, op } => match rules.filters.get(property) {
            None => match rules
                .filters
                .keys()
                .find(|k| k.eq_ignore_ascii_case(property))
            {
                Some(k) => out.push(format!(
                    "$filter property '{property}' is spelled '{k}' in the {v} schema"
                )),
                None => out.push(format!(
                    "$filter on '{property}', which the {v} schema does not document as filterable"
                )),
            },
            Some(ops) if !ops.iter().any(|o| o == op) => out.push(format!(
                "$filter uses '{op}' on '{property}'; the {v} schema documents only {}",
                ops.join(", ")
            )),
            Some(_) => {}
        },
        Expr::Other(text) => out.push(format!(
            "$filter clause '{text}' is not 'property operator literal'"
        )),
    }
}

/// The operands of a chain of `or`s, flattened.
fn or_clauses<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Or(a, b) => {
            or_clauses(a, out);
            or_clauses(b, out);
        }
        other => out.push(other),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Str,
    /// Identifier, keyword, number, GUID, date: anything unquoted.
    Word(String),
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".to_string()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                out.push(Tok::Str);
            }
            _ => {
                let start = i;
                while i < chars.len() && !(chars[i].is_whitespace() || "(),'".contains(chars[i])) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

const COMPARISONS: &[&str] = &["eq", "ne", "gt", "ge", "lt", "le", "has", "in"];

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.chain("or", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, String> {
        self.chain("and", Self::unary, Expr::And)
    }

    /// operand (word operand)*, joined left to right with `join`.
    fn chain(
        &mut self,
        word: &str,
        operand: fn(&mut Self) -> Result<Expr, String>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut left = operand(self)?;
        while self.peek_word(word) {
            self.pos += 1;
            left = join(Box::new(left), Box::new(operand(self)?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err("missing ')'".to_string()),
                }
            }
            Some(Tok::Word(name)) if self.toks.get(self.pos) == Some(&Tok::Open) => {
                // fn(property, literal)
                self.pos += 1;
                let property = match self.next() {
                    Some(Tok::Word(p)) => p,
                    _ => return Err(format!("{name}() needs a property first")),
                };
                let mut depth = 1;
                while depth > 0 {
                    match self.next() {
                        Some(Tok::Open) => depth += 1,
                        Some(Tok::Close) => depth -= 1,
                        Some(_) => {}
                        None => return Err(format!("unclosed {name}(")),
                    }
                }
                Ok(Expr::Clause {
                    property,
                    op: name.to_ascii_lowercase(),
                })
            }
            Some(Tok::Word(property)) => {
                let op = match self.next() {
                    Some(Tok::Word(op))
                        if COMPARISONS.iter().any(|c| c.eq_ignore_ascii_case(&op)) =>
                    {
                        op.to_ascii_lowercase()
                    }
                    other => {
                        return Err(format!(
                            "expected an operator after '{property}', got {other:?}"
                        ));
                    }
                };
                // The right-hand side: a literal or a parenthesised list (`in`).
                match self.next() {
                    Some(Tok::Str) | Some(Tok::Word(_)) => {}
                    Some(Tok::Open) => while !matches!(self.next(), Some(Tok::Close) | None) {},
                    other => return Err(format!("expected a value after '{op}', got {other:?}")),
                }
                Ok(Expr::Clause { property, op })
            }
            Some(Tok::Str) => {
                // 'literal' op property: legal OData, never what the docs describe.
                let _ = self.next();
                let _ = self.next();
                Ok(Expr::Other("literal on the left".to_string()))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

fn parse_filter(text: &str) -> Result<Expr, String> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err("empty".to_string());
    }
    let mut p = Parser { toks, pos: 0 };
    let expr = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("trailing {:?}", p.toks[p.pos]));
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(version: ApiVersion, select: Option<&str>, filter: &str) -> Vec<String> {
        check(version, Target::List, select, Some(filter))
    }

    #[test]
    fn the_schema_file_loads_both_versions() {
        for v in [ApiVersion::V1, ApiVersion::Beta] {
            let r = version_rules(v);
            assert!(r.properties.iter().any(|p| p == "id"));
            assert!(r.properties.iter().any(|p| p == "imei"));
            assert_eq!(r.filters["imei"], ["eq", "or"]);
            assert!(r.actions.iter().any(|a| a == "resetPasscode"));
        }
        assert!(
            !version_rules(ApiVersion::V1)
                .properties
                .iter()
                .any(|p| p == "deviceType")
        );
        assert!(
            version_rules(ApiVersion::Beta)
                .properties
                .iter()
                .any(|p| p == "deviceType")
        );
    }

    #[test]
    fn documented_filters_pass() {
        for filter in [
            "serialNumber eq 'R58N10AE001'",
            "imei eq '350000000000010' or imei eq '35 000000 000001 0'",
            "(imei eq '1' or imei eq '2')",
            "userPrincipalName eq 'o''brien@contoso.com' and deviceName eq 'Kim''s Pixel'",
            "azureADDeviceId eq '22222222-0000-4000-8000-000000000001'",
            "contains(deviceName, 'KIOSK')",
            "lastSyncDateTime gt 2026-01-01T00:00:00Z",
        ] {
            assert_eq!(
                list(ApiVersion::Beta, None, filter),
                Vec::<String>::new(),
                "{filter}"
            );
        }
    }

    #[test]
    fn an_undocumented_property_is_flagged() {
        let v = list(
            ApiVersion::Beta,
            None,
            "deviceEnrollmentType eq 'userEnrollment'",
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("deviceEnrollmentType"), "{v:?}");
        let v = list(
            ApiVersion::V1,
            None,
            "userId eq '33333333-0000-4000-8000-000000000001'",
        );
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn an_undocumented_operator_is_flagged() {
        let v = list(ApiVersion::Beta, None, "serialNumber ne 'X'");
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("'ne'"), "{v:?}");
        assert_eq!(
            list(ApiVersion::Beta, None, "startswith(deviceName, 'K')").len(),
            1
        );
        assert_eq!(list(ApiVersion::Beta, None, "not (imei eq '1')").len(), 1);
        assert_eq!(
            list(
                ApiVersion::Beta,
                None,
                "azureADDeviceId eq 'a' or azureADDeviceId eq 'b'"
            )
            .len(),
            1
        );
        assert_eq!(
            list(ApiVersion::Beta, None, "imei eq '1' or serialNumber eq '2'").len(),
            1
        );
        assert_eq!(list(ApiVersion::Beta, None, "imei in ('1', '2')").len(), 1);
    }

    #[test]
    fn select_is_checked_per_version() {
        let ok = check(
            ApiVersion::Beta,
            Target::GetOne,
            Some("id,deviceType,ownerType,joinType,deviceActionResults"),
            None,
        );
        assert_eq!(ok, Vec::<String>::new());
        let v = check(ApiVersion::V1, Target::GetOne, Some("id,deviceType"), None);
        assert_eq!(v.len(), 1, "{v:?}");
        let v = check(ApiVersion::Beta, Target::List, Some("id,udid"), None);
        assert_eq!(v.len(), 1, "{v:?}");
        let v = check(
            ApiVersion::Beta,
            Target::GetOne,
            Some("id,serialnumber"),
            None,
        );
        assert!(v[0].contains("spelled 'serialNumber'"), "{v:?}");
    }

    #[test]
    fn the_action_must_be_bound_in_the_version() {
        assert!(check(ApiVersion::V1, Target::Action("resetPasscode"), None, None).is_empty());
        assert!(
            check(
                ApiVersion::V1,
                Target::Action("microsoft.graph.resetPasscode"),
                None,
                None
            )
            .is_empty()
        );
        assert_eq!(
            check(ApiVersion::V1, Target::Action("resetPin"), None, None).len(),
            1
        );
    }

    #[test]
    fn unparsable_filters_are_violations_too() {
        assert_eq!(list(ApiVersion::Beta, None, "imei eq 'x").len(), 1);
        assert_eq!(list(ApiVersion::Beta, None, "imei eq").len(), 1);
    }
}
