//! Conditions over one event: the `where` table of a rule, compiled once at
//! load time and evaluated per event without allocating.
//!
//! ```toml
//! [rule.where]
//! outcome = "failure"                        # equals
//! user = { in = ["root", "admin"] }          # in a list
//! method = { not = { in = ["GET", "HEAD"] } } # negation of any condition
//! status = { ge = 400, lt = 500 }            # numeric compare (all must hold)
//! uri = { regex = '\.(bin|img|elf)$' }       # bounded regular expression
//! host = { exists = true }                   # presence
//! has_password = true                        # a password was sent
//! default_credential = true                  # credential in the dictionary
//! any = [ { magic = "elf" }, { uri = { regex = '\.bin$' } } ]  # one of
//! ```

use std::borrow::Cow;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};

use super::catalogue::{EventKind, FieldType};
use crate::detect::credentials::Dictionary;
use crate::device::inventory::parse_mac;
use crate::proto::norm::{Event, Value};

/// Compiled program size limit of one `regex` condition, in bytes
/// ([`RegexBuilder::size_limit`]); a pattern that compiles larger is rejected.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Lazy-DFA cache of one `regex` condition, in bytes.
pub const REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;
/// Longest `regex` pattern, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// Most values in one `in` list.
pub const MAX_IN_VALUES: usize = 1024;
/// Most conditions in one `where` table (or one `any` alternative).
pub const MAX_CONDITIONS: usize = 64;
/// Deepest nesting of `any` and `not`.
pub const MAX_CONDITION_DEPTH: usize = 4;

/// Condition keys that are not field names.
pub const RESERVED_KEYS: &[&str] = &["any", "default_credential", "has_password"];
/// Operators of a field condition table.
pub const OPERATORS: &[&str] = &[
    "equals", "in", "not", "gt", "ge", "lt", "le", "regex", "exists",
];

/// A field value borrowed from an event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FieldVal<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    List(&'a [Cow<'a, str>]),
    Ip(IpAddr),
    Mac([u8; 6]),
}

/// Reads field `name` of `ev`: its event fields first, then the header.
pub(crate) fn lookup<'a>(ev: &'a Event, name: &str) -> Option<FieldVal<'a>> {
    if let Some((_, v)) = ev.fields.iter().find(|(n, _)| *n == name) {
        return Some(match v {
            Value::Str(s) => FieldVal::Str(s),
            Value::Int(n) => FieldVal::Int(*n),
            Value::Bool(b) => FieldVal::Bool(*b),
            Value::List(l) => FieldVal::List(l),
        });
    }
    match name {
        "src_ip" => Some(FieldVal::Ip(ev.src.0)),
        "src_port" => Some(FieldVal::Int(i64::from(ev.src.1))),
        "dst_ip" => Some(FieldVal::Ip(ev.dst.0)),
        "dst_port" => Some(FieldVal::Int(i64::from(ev.dst.1))),
        "src_mac" => ev.src_mac.map(FieldVal::Mac),
        "dst_mac" => ev.dst_mac.map(FieldVal::Mac),
        "proto" => Some(FieldVal::Str(ev.proto)),
        "transport" => Some(FieldVal::Int(i64::from(ev.transport))),
        _ => None,
    }
}

/// A literal of a condition, already of its field's type.
#[derive(Debug)]
enum Lit {
    Str(Box<str>),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Mac([u8; 6]),
}

impl Lit {
    fn eq(&self, v: FieldVal<'_>) -> bool {
        match (self, v) {
            (Lit::Str(a), FieldVal::Str(b)) => **a == *b,
            (Lit::Int(a), FieldVal::Int(b)) => *a == b,
            (Lit::Bool(a), FieldVal::Bool(b)) => *a == b,
            (Lit::Ip(a), FieldVal::Ip(b)) => *a == b,
            (Lit::Mac(a), FieldVal::Mac(b)) => *a == b,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug)]
enum Test {
    Equals(Lit),
    In(Box<[Lit]>),
    Not(Box<Test>),
    Cmp(CmpOp, i64),
    Regex(Box<Regex>),
    Exists(bool),
    All(Box<[Test]>),
}

impl Test {
    fn eval(&self, v: Option<FieldVal<'_>>) -> bool {
        match self {
            Test::Exists(want) => v.is_some() == *want,
            Test::Not(t) => !t.eval(v),
            Test::All(ts) => ts.iter().all(|t| t.eval(v)),
            _ => match v {
                None => false,
                Some(FieldVal::List(items)) => {
                    items.iter().any(|s| self.eval_scalar(FieldVal::Str(s)))
                }
                Some(x) => self.eval_scalar(x),
            },
        }
    }

    fn eval_scalar(&self, v: FieldVal<'_>) -> bool {
        match self {
            Test::Equals(l) => l.eq(v),
            Test::In(ls) => ls.iter().any(|l| l.eq(v)),
            Test::Cmp(op, n) => match v {
                FieldVal::Int(x) => match op {
                    CmpOp::Gt => x > *n,
                    CmpOp::Ge => x >= *n,
                    CmpOp::Lt => x < *n,
                    CmpOp::Le => x <= *n,
                },
                _ => false,
            },
            Test::Regex(r) => match v {
                FieldVal::Str(s) => r.is_match(s),
                _ => false,
            },
            Test::Exists(_) | Test::Not(_) | Test::All(_) => self.eval(Some(v)),
        }
    }
}

#[derive(Debug)]
enum Cond {
    Field { name: &'static str, test: Test },
    HasPassword(bool),
    DefaultCredential(bool),
    Any(Box<[Condition]>),
}

/// A compiled `where` table: every condition must hold.
#[derive(Debug, Default)]
pub(crate) struct Condition(Box<[Cond]>);

impl Condition {
    /// Whether `ev` satisfies every condition. Does not allocate.
    pub(crate) fn eval(&self, ev: &Event, dict: &Dictionary) -> bool {
        self.0.iter().all(|c| match c {
            Cond::Field { name, test } => test.eval(lookup(ev, name)),
            Cond::HasPassword(want) => {
                let flag = matches!(ev.field("has_password"), Some(Value::Bool(true)));
                (flag || ev.credential.is_some()) == *want
            }
            Cond::DefaultCredential(want) => {
                ev.credential.is_some_and(|d| dict.contains(&d)) == *want
            }
            Cond::Any(alts) => alts.iter().any(|a| a.eval(ev, dict)),
        })
    }

    /// Names of the event fields the conditions read, in order, once each.
    pub(crate) fn fields(&self, out: &mut Vec<&'static str>) {
        for c in self.0.iter() {
            match c {
                Cond::Field { name, .. } => {
                    if !out.contains(name) {
                        out.push(name);
                    }
                }
                Cond::Any(alts) => alts.iter().for_each(|a| a.fields(out)),
                Cond::HasPassword(_) | Cond::DefaultCredential(_) => {}
            }
        }
    }
}

/// A condition that does not compile: where (a dotted path below the rule)
/// and why.
#[derive(Debug, PartialEq)]
pub(crate) struct CondError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> CondError {
    CondError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

/// Compiles the `where` table of a rule on events of `kind`; `path` is the
/// table's name in errors (`"where"`).
pub(crate) fn compile(
    table: &toml::Table,
    kind: &EventKind,
    path: &str,
) -> Result<Condition, CondError> {
    compile_depth(table, kind, path, 0)
}

fn compile_depth(
    table: &toml::Table,
    kind: &EventKind,
    path: &str,
    depth: usize,
) -> Result<Condition, CondError> {
    if table.len() > MAX_CONDITIONS {
        return Err(err(
            path,
            format!("more than {MAX_CONDITIONS} conditions (MAX_CONDITIONS)"),
        ));
    }
    let mut conds = Vec::with_capacity(table.len());
    for (key, value) in table {
        let at = format!("{path}.{key}");
        let cond = match key.as_str() {
            "has_password" => Cond::HasPassword(bool_value(value, &at)?),
            "default_credential" => Cond::DefaultCredential(bool_value(value, &at)?),
            "any" => Cond::Any(compile_any(value, kind, &at, depth)?),
            _ => {
                let Some((name, ty)) = kind.field(key) else {
                    return Err(err(
                        &at,
                        format!(
                            "unknown field `{key}` for event `{}`; valid keys: {}",
                            kind.kind,
                            valid_keys(kind)
                        ),
                    ));
                };
                Cond::Field {
                    name,
                    test: compile_test(value, ty, &at, depth)?,
                }
            }
        };
        conds.push(cond);
    }
    Ok(Condition(conds.into_boxed_slice()))
}

/// Every key a `where` table on `kind` accepts, comma separated.
fn valid_keys(kind: &EventKind) -> String {
    let mut keys = kind.field_names();
    keys.extend_from_slice(RESERVED_KEYS);
    keys.join(", ")
}

fn bool_value(v: &toml::Value, at: &str) -> Result<bool, CondError> {
    v.as_bool().ok_or_else(|| {
        err(
            at,
            format!("expected true or false, found {}", type_name(v)),
        )
    })
}

fn compile_any(
    v: &toml::Value,
    kind: &EventKind,
    at: &str,
    depth: usize,
) -> Result<Box<[Condition]>, CondError> {
    if depth >= MAX_CONDITION_DEPTH {
        return Err(err(
            at,
            format!("nested deeper than {MAX_CONDITION_DEPTH} (MAX_CONDITION_DEPTH)"),
        ));
    }
    let alts = v.as_array().ok_or_else(|| {
        err(
            at,
            format!(
                "expected a list of condition tables, found {}",
                type_name(v)
            ),
        )
    })?;
    if alts.is_empty() || alts.len() > MAX_CONDITIONS {
        return Err(err(
            at,
            format!("expected 1 to {MAX_CONDITIONS} alternatives"),
        ));
    }
    alts.iter()
        .enumerate()
        .map(|(i, alt)| {
            let here = format!("{at}[{i}]");
            let t = alt.as_table().ok_or_else(|| {
                err(
                    &here,
                    format!("expected a condition table, found {}", type_name(alt)),
                )
            })?;
            if t.is_empty() {
                return Err(err(&here, "an empty alternative always holds"));
            }
            compile_depth(t, kind, &here, depth + 1)
        })
        .collect()
}

fn compile_test(v: &toml::Value, ty: FieldType, at: &str, depth: usize) -> Result<Test, CondError> {
    match v {
        toml::Value::Table(ops) => compile_ops(ops, ty, at, depth),
        toml::Value::Array(_) => Err(err(
            at,
            "a list is not a condition; write `{ in = [...] }` to match any of several values",
        )),
        _ => Ok(Test::Equals(literal(v, ty, at)?)),
    }
}

fn compile_ops(
    ops: &toml::Table,
    ty: FieldType,
    at: &str,
    depth: usize,
) -> Result<Test, CondError> {
    if ops.is_empty() {
        return Err(err(
            at,
            format!("empty condition; operators: {}", OPERATORS.join(", ")),
        ));
    }
    let mut tests = Vec::with_capacity(ops.len());
    for (op, v) in ops {
        let here = format!("{at}.{op}");
        let test = match op.as_str() {
            "equals" => Test::Equals(literal(v, ty, &here)?),
            "in" => {
                let list = v.as_array().ok_or_else(|| {
                    err(
                        &here,
                        format!("expected a list of values, found {}", type_name(v)),
                    )
                })?;
                if list.is_empty() || list.len() > MAX_IN_VALUES {
                    return Err(err(
                        &here,
                        format!("expected 1 to {MAX_IN_VALUES} values (MAX_IN_VALUES)"),
                    ));
                }
                Test::In(
                    list.iter()
                        .map(|x| literal(x, ty, &here))
                        .collect::<Result<_, _>>()?,
                )
            }
            "not" => {
                if depth >= MAX_CONDITION_DEPTH {
                    return Err(err(
                        &here,
                        format!("nested deeper than {MAX_CONDITION_DEPTH} (MAX_CONDITION_DEPTH)"),
                    ));
                }
                Test::Not(Box::new(compile_test(v, ty, &here, depth + 1)?))
            }
            "gt" | "ge" | "lt" | "le" => {
                if ty != FieldType::Int {
                    return Err(err(
                        &here,
                        format!("numeric comparison on a {} field", ty.name()),
                    ));
                }
                let n = v.as_integer().ok_or_else(|| {
                    err(
                        &here,
                        format!("expected an integer, found {}", type_name(v)),
                    )
                })?;
                let cmp = match op.as_str() {
                    "gt" => CmpOp::Gt,
                    "ge" => CmpOp::Ge,
                    "lt" => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                Test::Cmp(cmp, n)
            }
            "regex" => {
                if !matches!(ty, FieldType::Str | FieldType::List) {
                    return Err(err(
                        &here,
                        format!("regex on a {} field (only strings)", ty.name()),
                    ));
                }
                let pattern = v.as_str().ok_or_else(|| {
                    err(&here, format!("expected a string, found {}", type_name(v)))
                })?;
                Test::Regex(Box::new(compile_regex(pattern, &here)?))
            }
            "exists" => Test::Exists(bool_value(v, &here)?),
            _ => {
                return Err(err(
                    &here,
                    format!(
                        "unknown operator `{op}`; valid keys: {}",
                        OPERATORS.join(", ")
                    ),
                ));
            }
        };
        tests.push(test);
    }
    Ok(match tests.len() {
        1 => tests.remove(0),
        _ => Test::All(tests.into_boxed_slice()),
    })
}

/// Compiles `pattern` within [`MAX_REGEX_LEN`] and [`REGEX_SIZE_LIMIT`].
pub(crate) fn compile_regex(pattern: &str, at: &str) -> Result<Regex, CondError> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(err(
            at,
            format!("pattern longer than {MAX_REGEX_LEN} bytes (MAX_REGEX_LEN)"),
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| err(at, format!("bad regex: {e}")))
}

/// A literal of type `ty` (a list field's literals are strings).
fn literal(v: &toml::Value, ty: FieldType, at: &str) -> Result<Lit, CondError> {
    let wrong = || {
        err(
            at,
            format!("expected a {} value, found {}", ty.name(), type_name(v)),
        )
    };
    Ok(match ty {
        FieldType::Str | FieldType::List => Lit::Str(v.as_str().ok_or_else(wrong)?.into()),
        FieldType::Int => Lit::Int(v.as_integer().ok_or_else(wrong)?),
        FieldType::Bool => Lit::Bool(v.as_bool().ok_or_else(wrong)?),
        FieldType::Ip => {
            let s = v.as_str().ok_or_else(wrong)?;
            Lit::Ip(
                s.parse()
                    .map_err(|_| err(at, format!("`{s}` is not an IP address")))?,
            )
        }
        FieldType::Mac => {
            let s = v.as_str().ok_or_else(wrong)?;
            Lit::Mac(parse_mac(s).ok_or_else(|| err(at, format!("`{s}` is not a MAC address")))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::detect::rules::catalogue;
    use crate::proto::credential::digest;

    fn event(kind: &'static str) -> Event<'static> {
        Event {
            ts: Timestamp(0),
            kind,
            proto: "http",
            src: ("10.0.0.1".parse().expect("ip"), 40000),
            dst: ("10.0.0.2".parse().expect("ip"), 80),
            src_mac: Some([2, 0, 0, 0, 0, 1]),
            dst_mac: None,
            transport: 6,
            flow_id: 1,
            fields: Vec::new(),
            credential: None,
        }
    }

    fn cond(kind: &str, text: &str) -> Result<Condition, CondError> {
        let table: toml::Table = toml::from_str(text).expect("test TOML parses");
        compile(&table, catalogue::kind(kind).expect("kind"), "where")
    }

    fn holds(kind: &str, text: &str, ev: &Event) -> bool {
        cond(kind, text)
            .expect("condition compiles")
            .eval(ev, &Dictionary::empty())
    }

    #[test]
    fn equals_matches_exact_string_int_bool() {
        let ev = event("http.request")
            .with("method", "GET")
            .with("has_password", false);
        assert!(holds("http.request", r#"method = "GET""#, &ev));
        assert!(!holds("http.request", r#"method = "get""#, &ev));
        assert!(holds("http.request", r#"method = { equals = "GET" }"#, &ev));
        let resp = event("http.response").with("status", 401i64);
        assert!(holds("http.response", "status = 401", &resp));
        assert!(!holds("http.response", "status = 403", &resp));
        let ack = event("mqtt.connack").with("accepted", false);
        assert!(holds("mqtt.connack", "accepted = false", &ack));
        assert!(!holds("mqtt.connack", "accepted = true", &ack));
    }

    #[test]
    fn in_list_and_list_fields_match_any_element() {
        let ev = event("http.request").with("method", "PUT");
        assert!(holds(
            "http.request",
            r#"method = { in = ["PUT", "POST"] }"#,
            &ev
        ));
        assert!(!holds("http.request", r#"method = { in = ["GET"] }"#, &ev));
        let sub = event("mqtt.subscribe").with(
            "filters",
            Value::List(vec!["home/+/temp".into(), "$SYS/#".into()]),
        );
        assert!(holds(
            "mqtt.subscribe",
            r##"filters = { in = ["#", "$SYS/#"] }"##,
            &sub
        ));
        assert!(holds("mqtt.subscribe", r##"filters = "$SYS/#""##, &sub));
        assert!(!holds("mqtt.subscribe", r##"filters = "#""##, &sub));
        assert!(holds(
            "mqtt.subscribe",
            r#"filters = { regex = '^home/' }"#,
            &sub
        ));
    }

    #[test]
    fn not_inverts_and_holds_on_absent_field() {
        let ev = event("http.request").with("method", "GET");
        assert!(!holds("http.request", r#"method = { not = "GET" }"#, &ev));
        assert!(holds("http.request", r#"method = { not = "POST" }"#, &ev));
        assert!(holds(
            "http.request",
            r#"method = { not = { in = ["PUT", "POST"] } }"#,
            &ev
        ));
        // `not` of a test on an absent field: the test is false, so `not` holds.
        assert!(holds("http.request", r#"host = { not = "x" }"#, &ev));
    }

    #[test]
    fn numeric_compare_is_inclusive_or_strict_as_named() {
        let ev = event("http.response").with("status", 401i64);
        for (text, want) in [
            ("status = { gt = 400 }", true),
            ("status = { gt = 401 }", false),
            ("status = { ge = 401 }", true),
            ("status = { lt = 401 }", false),
            ("status = { le = 401 }", true),
            ("status = { ge = 400, lt = 500 }", true),
            ("status = { ge = 500, lt = 600 }", false),
        ] {
            assert_eq!(holds("http.response", text, &ev), want, "{text}");
        }
        // Compare on an absent field is false.
        assert!(!holds(
            "http.response",
            "status = { gt = 0 }",
            &event("http.response")
        ));
    }

    #[test]
    fn regex_matches_strings_only() {
        let ev = event("http.request").with("uri", "/fw/update.BIN");
        assert!(holds(
            "http.request",
            r#"uri = { regex = '(?i)\.bin$' }"#,
            &ev
        ));
        assert!(!holds("http.request", r#"uri = { regex = '\.bin$' }"#, &ev));
        let e = cond("http.response", "status = { regex = '4..' }").expect_err("int field");
        assert_eq!(e.field, "where.status.regex");
    }

    #[test]
    fn bad_and_oversize_regex_are_rejected_with_their_field() {
        let e = cond("http.request", r#"uri = { regex = '(unclosed' }"#).expect_err("bad");
        assert_eq!(e.field, "where.uri.regex");
        assert!(e.message.contains("bad regex"), "{}", e.message);
        // \w is Unicode-aware: 500 repetitions compile far beyond 256 KiB.
        let e = cond("http.request", r#"uri = { regex = '\w{500}' }"#).expect_err("big");
        assert_eq!(e.field, "where.uri.regex");
        let long = format!("uri = {{ regex = '{}' }}", "a".repeat(MAX_REGEX_LEN + 1));
        assert!(cond("http.request", &long).is_err());
    }

    #[test]
    fn exists_and_header_fields() {
        let ev = event("http.request").with("host", "cam.local");
        assert!(holds("http.request", "host = { exists = true }", &ev));
        assert!(holds(
            "http.request",
            "user_agent = { exists = false }",
            &ev
        ));
        assert!(!holds(
            "http.request",
            "user_agent = { exists = true }",
            &ev
        ));
        assert!(holds("http.request", r#"dst_ip = "10.0.0.2""#, &ev));
        assert!(holds("http.request", "dst_port = { in = [80, 8080] }", &ev));
        assert!(holds(
            "http.request",
            r#"src_mac = "02:00:00:00:00:01""#,
            &ev
        ));
        assert!(holds("http.request", "dst_mac = { exists = false }", &ev));
        assert!(holds("http.request", r#"proto = "http""#, &ev));
        assert!(holds("http.request", "transport = 6", &ev));
        assert!(cond("http.request", r#"dst_ip = "10.0.0.300""#).is_err());
    }

    #[test]
    fn has_password_from_flag_or_credential() {
        let flagged = event("http.request").with("has_password", true);
        assert!(holds("http.request", "has_password = true", &flagged));
        let mut digested = event("telnet.command");
        assert!(holds("telnet.command", "has_password = false", &digested));
        digested.credential = Some(digest("root", "xc3511"));
        assert!(holds("telnet.command", "has_password = true", &digested));
        let unflagged = event("http.request").with("has_password", false);
        assert!(!holds("http.request", "has_password = true", &unflagged));
    }

    #[test]
    fn default_credential_asks_the_dictionary() {
        let d = digest("root", "xc3511");
        let hex: String = d.0.iter().map(|b| format!("{b:02x}")).collect();
        let dict = Dictionary::parse(
            std::path::Path::new("test"),
            &format!("[[credential]]\nuser = \"root\"\ndigest = \"{hex}\"\nsource = \"mirai\"\n"),
        )
        .expect("dictionary");
        let c = cond("telnet.login", "default_credential = true").expect("compiles");
        let mut ev = event("telnet.login");
        assert!(!c.eval(&ev, &dict), "no credential");
        ev.credential = Some(digest("root", "other"));
        assert!(!c.eval(&ev, &dict), "not a default");
        ev.credential = Some(d);
        assert!(c.eval(&ev, &dict));
        assert!(!c.eval(&ev, &Dictionary::empty()));
        let negated = cond("telnet.login", "default_credential = false").expect("compiles");
        assert!(!negated.eval(&ev, &dict));
    }

    #[test]
    fn any_holds_when_one_alternative_holds() {
        let text = r#"any = [ { magic = "elf" }, { uri = { regex = '\.bin$' } } ]"#;
        let elf = event("http.body").with("magic", "elf").with("uri", "/x");
        let bin = event("http.body")
            .with("magic", "zip")
            .with("uri", "/fw.bin");
        let neither = event("http.body")
            .with("magic", "text")
            .with("uri", "/index.html");
        assert!(holds("http.body", text, &elf));
        assert!(holds("http.body", text, &bin));
        assert!(!holds("http.body", text, &neither));
        assert!(cond("http.body", "any = []").is_err());
    }

    #[test]
    fn unknown_field_and_operator_list_the_valid_keys() {
        let e = cond("telnet.login", r#"usr = "root""#).expect_err("unknown");
        assert_eq!(e.field, "where.usr");
        assert!(e.message.contains("valid keys:"), "{}", e.message);
        assert!(e.message.contains("outcome"), "{}", e.message);
        assert!(e.message.contains("default_credential"), "{}", e.message);
        let e = cond("telnet.login", r#"user = { like = "r%" }"#).expect_err("operator");
        assert_eq!(e.field, "where.user.like");
        assert!(e.message.contains("equals, in, not"), "{}", e.message);
    }

    #[test]
    fn literal_types_are_checked_against_the_catalogue() {
        let e = cond("http.response", r#"status = "401""#).expect_err("string for int");
        assert_eq!(e.field, "where.status");
        assert!(cond("http.request", "method = { gt = 1 }").is_err());
        assert!(cond("http.request", r#"method = ["GET"]"#).is_err());
        assert!(cond("http.request", "has_password = 1").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = r#"method = { not = { not = { not = { not = { not = "GET" } } } } }"#;
        assert!(cond("http.request", deep).is_err());
    }
}
