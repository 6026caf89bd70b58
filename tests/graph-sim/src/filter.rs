//! `$filter` on `managedDevices`, with Intune's surprising semantics.
//!
//! The v1.0 schema only promises `$filter` for a handful of properties, and
//! only combined with `and`. What the service does with anything else is the
//! trap this module reproduces on purpose:
//!
//! * an expression that is well-formed OData but uses an unsupported
//!   property (`deviceEnrollmentType`, `userId`, ...), operator (`ne`, `in`,
//!   `not`) or function (`startswith`, `contains`, ...) is **silently
//!   ignored**: the whole filter is dropped and every device comes back,
//!   paged. Reported against Graph for `deviceEnrollmentType`, `userId`,
//!   `skuFamily` and `ne`; clients must therefore re-check every match.
//! * `or` is honoured only between `eq` conditions on one property whose
//!   schema description documents `'eq' and 'or'` (`serialNumber`, `imei`,
//!   `operatingSystem`, `managementState`), e.g.
//!   `imei eq '354455066521325' or imei eq '35 445506 652132 5'`. The
//!   entity's description says combinations of different properties must
//!   use `and`, not `or`, so `or` across properties, or on a property
//!   documented with `eq` only, is ignored like any other unsupported form.
//! * an expression that does not parse (unbalanced quote, dangling `and`,
//!   stray characters) is rejected with 400 `BadRequest`.
//! * the supported form, `prop eq 'literal'` joined by `and`, compares
//!   strings case-insensitively but otherwise exactly (no trimming, no
//!   substring match).

use serde_json::{Map, Value};

/// Properties whose `eq` filter Intune honours (the filterable string
/// properties of `../shared/reference/graph-managed-device-schema.json`
/// that the simulated tenant carries).
const SUPPORTED: &[&str] = &[
    "serialNumber",
    "imei",
    "azureADDeviceId",
    "userPrincipalName",
    "deviceName",
    "operatingSystem",
    "managementState",
];

/// Of those, the ones whose description documents `'eq' and 'or'`.
const OR_ALLOWED: &[&str] = &["serialNumber", "imei", "operatingSystem", "managementState"];

/// One honoured condition: `property eq 'value'`, or several such values of
/// one property joined by `or`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    /// Canonical property name.
    pub property: &'static str,
    /// The literals (any one matches), with `''` already unescaped.
    pub values: Vec<String>,
}

impl Condition {
    fn matches(&self, device: &Map<String, Value>) -> bool {
        match device.get(self.property).and_then(Value::as_str) {
            Some(actual) => {
                let actual = actual.to_lowercase();
                self.values.iter().any(|v| v.to_lowercase() == actual)
            }
            None => false,
        }
    }
}

/// What the service will do with a `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    /// Keep devices matching every condition.
    Apply(Vec<Condition>),
    /// Well-formed but unsupported: return everything.
    Ignored,
}

impl Filter {
    /// Does `device` pass this filter?
    pub(crate) fn matches(&self, device: &Map<String, Value>) -> bool {
        match self {
            Filter::Apply(conditions) => conditions.iter().all(|c| c.matches(device)),
            Filter::Ignored => true,
        }
    }
}

/// Parse `$filter`. The error text goes after "Invalid filter clause: ".
pub(crate) fn parse(text: &str) -> Result<Filter, String> {
    let tokens = lex(text)?;
    if tokens.is_empty() {
        return Err("the expression is empty".to_string());
    }
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.expr()?;
    if let Some(tok) = parser.peek() {
        return Err(format!("syntax error at '{}'", tok.describe()));
    }
    Ok(plan(&expr))
}

/// Turn a parsed expression into what the service does with it.
fn plan(expr: &Expr) -> Filter {
    let mut conditions = Vec::new();
    if collect_supported(expr, &mut conditions) {
        Filter::Apply(conditions)
    } else {
        Filter::Ignored
    }
}

/// True if `expr` is an `and`-tree of supported conditions.
fn collect_supported(expr: &Expr, out: &mut Vec<Condition>) -> bool {
    match expr {
        Expr::And(left, right) => collect_supported(left, out) && collect_supported(right, out),
        Expr::Or(..) => match or_group(expr) {
            Some(condition) => {
                out.push(condition);
                true
            }
            None => false,
        },
        _ => match supported_eq(expr) {
            Some((property, value)) => {
                out.push(Condition {
                    property,
                    values: vec![value],
                });
                true
            }
            None => false,
        },
    }
}

/// `property eq 'literal'` on a supported property.
fn supported_eq(expr: &Expr) -> Option<(&'static str, String)> {
    let Expr::Compare {
        left: Operand::Member(name),
        op: CompareOp::Eq,
        right: Operand::Str(value),
    } = expr
    else {
        return None;
    };
    let property = SUPPORTED.iter().find(|p| p.eq_ignore_ascii_case(name))?;
    Some((property, value.clone()))
}

/// An `or`-tree of `eq` comparisons, all on one property that documents `or`.
fn or_group(expr: &Expr) -> Option<Condition> {
    fn leaves<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
        match expr {
            Expr::Or(left, right) => {
                leaves(left, out);
                leaves(right, out);
            }
            other => out.push(other),
        }
    }
    let mut branches = Vec::new();
    leaves(expr, &mut branches);
    let mut property = None;
    let mut values = Vec::new();
    for branch in branches {
        let (name, value) = supported_eq(branch)?;
        if property.is_some_and(|p| p != name) || !OR_ALLOWED.contains(&name) {
            return None;
        }
        property = Some(name);
        values.push(value);
    }
    Some(Condition {
        property: property?,
        values,
    })
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    Comma,
    /// Quoted string literal, unescaped.
    Str(String),
    /// Any other run of characters: keyword, member path, number, GUID...
    Word(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::Comma => ",".into(),
            Token::Str(s) => format!("'{}'", s.replace('\'', "''")),
            Token::Word(w) => w.clone(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::LParen);
            }
            ')' => {
                chars.next();
                tokens.push(Token::RParen);
            }
            ',' => {
                chars.next();
                tokens.push(Token::Comma);
            }
            '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        // OData escapes a quote inside a literal by doubling it.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            value.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => value.push(other),
                        None => return Err("unterminated string literal".to_string()),
                    }
                }
                tokens.push(Token::Str(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ',' | '\'') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

// --------------------------------------------------------------- parser

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Has,
}

impl CompareOp {
    fn from_word(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            "has" => CompareOp::Has,
            _ => return None,
        })
    }
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "has", "in",
];

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Str(String),
    /// Number, GUID, date, `true`/`false`/`null`.
    Literal,
    /// Property path such as `serialNumber` or `hardwareInformation/imei`.
    Member(String),
    /// Function call such as `startswith(deviceName,'K')`.
    Call,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not,
    Compare {
        left: Operand,
        op: CompareOp,
        right: Operand,
    },
    In,
    /// A function call or boolean literal used as a condition.
    Bare,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        tok
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(keyword)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, want: &Token, context: &str) -> Result<(), String> {
        match self.next() {
            Some(ref t) if t == want => Ok(()),
            Some(t) => Err(format!(
                "expected '{}' {context}, found '{}'",
                want.describe(),
                t.describe()
            )),
            None => Err(format!(
                "expected '{}' {context}, found end of expression",
                want.describe()
            )),
        }
    }

    /// expr := and_expr ('or' and_expr)*
    fn expr(&mut self) -> Result<Expr, String> {
        self.chain("or", Self::and_expr, Expr::Or)
    }

    /// and_expr := unary ('and' unary)*
    fn and_expr(&mut self) -> Result<Expr, String> {
        self.chain("and", Self::unary, Expr::And)
    }

    /// operand (keyword operand)*, joined left to right with `join`.
    fn chain(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Expr, String>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut left = operand(self)?;
        while self.eat_keyword(keyword) {
            let right = operand(self)?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// unary := 'not' unary | '(' expr ')' | comparison
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_keyword("not") {
            self.unary()?;
            return Ok(Expr::Not);
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.expr()?;
            self.expect(&Token::RParen, "to close '('")?;
            return Ok(inner);
        }
        self.comparison()
    }

    /// comparison := operand (op operand | 'in' '(' list ')')?
    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        if let Some(Token::Word(w)) = self.peek().cloned() {
            if let Some(op) = CompareOp::from_word(&w) {
                self.pos += 1;
                let right = self.operand()?;
                return Ok(Expr::Compare { left, op, right });
            }
            if w.eq_ignore_ascii_case("in") {
                self.pos += 1;
                self.expect(&Token::LParen, "after 'in'")?;
                self.operand()?;
                while self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                    self.operand()?;
                }
                self.expect(&Token::RParen, "to close the 'in' list")?;
                return Ok(Expr::In);
            }
        }
        match left {
            Operand::Call | Operand::Literal => Ok(Expr::Bare),
            Operand::Member(m) => Err(format!("'{m}' is not a boolean expression")),
            Operand::Str(s) => Err(format!("'{s}' is not a boolean expression")),
        }
    }

    /// operand := string | literal | member | member '(' args ')'
    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Operand::Str(s)),
            Some(Token::Word(w)) => {
                if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&w)) {
                    return Err(format!("unexpected '{w}'"));
                }
                if is_literal(&w) {
                    return Ok(Operand::Literal);
                }
                if !is_member(&w) {
                    return Err(format!("unexpected '{w}'"));
                }
                if self.peek() == Some(&Token::LParen) {
                    self.pos += 1;
                    if self.peek() != Some(&Token::RParen) {
                        self.argument()?;
                        while self.peek() == Some(&Token::Comma) {
                            self.pos += 1;
                            self.argument()?;
                        }
                    }
                    self.expect(&Token::RParen, &format!("to close '{w}('"))?;
                    return Ok(Operand::Call);
                }
                Ok(Operand::Member(w))
            }
            Some(t) => Err(format!("unexpected '{}'", t.describe())),
            None => Err("unexpected end of expression".to_string()),
        }
    }

    /// A function argument: an operand, optionally compared with another.
    fn argument(&mut self) -> Result<(), String> {
        self.operand()?;
        if let Some(Token::Word(w)) = self.peek().cloned()
            && CompareOp::from_word(&w).is_some()
        {
            self.pos += 1;
            self.operand()?;
        }
        Ok(())
    }
}

fn is_literal(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    if matches!(lower.as_str(), "true" | "false" | "null") {
        return true;
    }
    let mut chars = word.chars();
    let first = chars.next().unwrap_or(' ');
    let starts_numeric = first.is_ascii_digit()
        || (first == '-' && word.chars().nth(1).is_some_and(|c| c.is_ascii_digit()));
    starts_numeric
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | ':'))
}

fn is_member(word: &str) -> bool {
    let mut chars = word.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
    first_ok
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '$'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(text: &str) -> Vec<(&'static str, String)> {
        match parse(text).unwrap() {
            Filter::Apply(c) => c
                .into_iter()
                .map(|c| (c.property, c.values.join("|")))
                .collect(),
            Filter::Ignored => panic!("{text} was ignored"),
        }
    }

    #[test]
    fn supported_conditions() {
        assert_eq!(
            apply("serialNumber eq 'R58N10AE001'"),
            vec![("serialNumber", "R58N10AE001".to_string())]
        );
        assert_eq!(
            apply("  DEVICENAME   EQ 'x'   AND   operatingSystem eq 'Android' "),
            vec![
                ("deviceName", "x".to_string()),
                ("operatingSystem", "Android".to_string())
            ]
        );
        assert_eq!(
            apply("(imei eq '1') and (userPrincipalName eq 'a@b')"),
            vec![
                ("imei", "1".to_string()),
                ("userPrincipalName", "a@b".to_string())
            ]
        );
        assert_eq!(apply("managementState eq 'managed'").len(), 1);
        assert_eq!(
            apply("azureADDeviceId eq '22222222-0000-4000-8000-000000000001'").len(),
            1
        );
    }

    #[test]
    fn or_on_one_property_that_documents_it() {
        assert_eq!(
            apply("imei eq '354455066521325' or imei eq '35 445506 652132 5'"),
            vec![("imei", "354455066521325|35 445506 652132 5".to_string())]
        );
        assert_eq!(
            apply("serialNumber eq 'a' or SERIALNUMBER eq 'A' or serialNumber eq 'b'"),
            vec![("serialNumber", "a|A|b".to_string())]
        );
        assert_eq!(
            apply(
                "(operatingSystem eq 'iOS' or operatingSystem eq 'iPadOS') and managementState eq 'managed'"
            ),
            vec![
                ("operatingSystem", "iOS|iPadOS".to_string()),
                ("managementState", "managed".to_string())
            ]
        );
        let f = parse("imei eq '1' or imei eq '1 2'").unwrap();
        let device = |imei: &str| json!({"imei": imei}).as_object().unwrap().clone();
        assert!(f.matches(&device("1")));
        assert!(f.matches(&device("1 2")));
        assert!(!f.matches(&device("12")));
    }

    #[test]
    fn doubled_quote_is_an_escaped_quote() {
        assert_eq!(
            apply("deviceName eq 'Kim''s Pixel'"),
            vec![("deviceName", "Kim's Pixel".to_string())]
        );
        assert_eq!(apply("userPrincipalName eq ''''")[0].1, "'");
        assert_eq!(apply("userPrincipalName eq ''")[0].1, "");
    }

    #[test]
    fn well_formed_but_unsupported_is_ignored() {
        for text in [
            "deviceEnrollmentType eq 'androidEnterpriseDedicatedDevice'",
            "userId eq '33333333-0000-4000-8000-000000000001'",
            "serialNumber ne 'x'",
            "serialNumber eq 'a' or imei eq 'b'",
            "deviceName eq 'a' or deviceName eq 'b'",
            "azureADDeviceId eq 'a' or azureADDeviceId eq 'b'",
            "imei eq 'a' or imei eq 'b' and deviceName eq 'c'",
            "imei eq 'a' or imei ne 'b'",
            "startswith(deviceName,'KIOSK')",
            "contains(deviceName, 'KIOSK')",
            "startswith(deviceName,'K') and serialNumber eq 'x'",
            "serialNumber eq 'x' and skuFamily eq 'y'",
            "not (serialNumber eq 'x')",
            "serialNumber in ('a','b')",
            "lastSyncDateTime gt 2024-01-01T00:00:00Z",
            "isSupervised eq true",
            "serialNumber eq 12",
            "'x' eq serialNumber",
            "hardwareInformation/imei eq '1'",
        ] {
            assert_eq!(parse(text), Ok(Filter::Ignored), "{text}");
        }
    }

    #[test]
    fn broken_syntax_is_an_error() {
        for text in [
            "serialNumber eq 'x",
            "serialNumber eq 'x' and",
            "and serialNumber eq 'x'",
            "serialNumber eq",
            "serialNumber",
            "serialNumber = 'x'",
            "serialNumber eq 'x' 'y'",
            "(serialNumber eq 'x'",
            "serialNumber eq 'x')",
            "startswith(deviceName,'K'",
            "",
            "   ",
            "!!!",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be rejected");
        }
        assert!(
            parse("serialNumber eq 'x")
                .unwrap_err()
                .contains("unterminated")
        );
    }

    #[test]
    fn matching_is_case_insensitive_but_exact() {
        let f = parse("deviceName eq 'KIOSK-LOBBY-01'").unwrap();
        let device = |name: &str| json!({"deviceName": name}).as_object().unwrap().clone();
        assert!(f.matches(&device("KIOSK-LOBBY-01")));
        assert!(f.matches(&device("kiosk-lobby-01")));
        assert!(!f.matches(&device("kiosk-lobby-01 ")));
        assert!(!f.matches(&device("KIOSK-LOBBY-010")));
        let ignored = parse("deviceEnrollmentType eq 'x'").unwrap();
        assert!(ignored.matches(&device("anything")));
        let unicode = parse("deviceName eq 'ÉCRAN'").unwrap();
        assert!(unicode.matches(&device("écran")));
    }
}
