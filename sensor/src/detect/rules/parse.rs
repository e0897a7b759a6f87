//! Rule files: TOML → validated [`Rule`]s.
//!
//! Each table is read with serde (`deny_unknown_fields`, so a misspelt key is
//! an error listing the valid ones) and then checked against the event
//! [`catalogue`]: kinds, field names and literal types. Errors are collected
//! per rule, so one run reports every broken rule of every file.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::case::parse_case;
use super::catalogue::{self, EventKind, FieldType};
use super::condition;
use super::error::RuleError;
use super::field::{FieldError, typed};
use super::limits::{
    MAX_GROUP_BY, MAX_RULE_FILE_BYTES, MAX_RULE_FILES, MAX_TEST_CASES, MAX_WINDOW_COUNT,
    MAX_WINDOW_SECS, RULE_FILE_SUFFIX,
};
use super::model::{AlertPer, Reference, Rule, RuleRef, Severity, Suppress, TestCase, Window};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    #[serde(default)]
    rule: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    id: u32,
    name: String,
    severity: Severity,
    category: String,
    #[serde(default)]
    references: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    event: String,
    #[serde(default, rename = "where")]
    condition: toml::Table,
    #[serde(default)]
    threshold: Option<ThresholdRaw>,
    #[serde(default)]
    distinct: Option<DistinctRaw>,
    #[serde(default)]
    sequence: Option<SequenceRaw>,
    #[serde(default)]
    concurrent: Option<ConcurrentRaw>,
    #[serde(default)]
    suppress: Option<SuppressRaw>,
    #[serde(default)]
    alert_per: AlertPer,
    #[serde(default)]
    test: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdRaw {
    count: u32,
    within_secs: u64,
    #[serde(default)]
    group_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistinctRaw {
    field: String,
    count: u32,
    within_secs: u64,
    #[serde(default)]
    group_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SequenceRaw {
    after_rule: u32,
    within_secs: u64,
    #[serde(default)]
    group_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConcurrentRaw {
    key: String,
    closed_by: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressRaw {
    #[serde(default)]
    per: Vec<String>,
    secs: SuppressSecs,
}

/// `secs = N` or `secs = "forever"`.
struct SuppressSecs(Option<u64>);

impl<'de> Deserialize<'de> for SuppressSecs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SuppressSecs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds or \"forever\"")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<SuppressSecs, E> {
                u64::try_from(n)
                    .map(|n| SuppressSecs(Some(n)))
                    .map_err(|_| E::custom("expected a number of seconds or \"forever\""))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<SuppressSecs, E> {
                Ok(SuppressSecs(Some(n)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SuppressSecs, E> {
                match s {
                    "forever" => Ok(SuppressSecs(None)),
                    _ => Err(E::custom(format!(
                        "expected a number of seconds or \"forever\", found \"{s}\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "1, 2, 3, \"high\", \"medium\" or \"low\"";
        impl Visitor<'_> for V {
            type Value = Severity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Severity, E> {
                match n {
                    1 => Ok(Severity::High),
                    2 => Ok(Severity::Medium),
                    3 => Ok(Severity::Low),
                    _ => Err(E::custom(format!("expected {EXPECTED}, found {n}"))),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Severity, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Severity, E> {
                match s {
                    "high" => Ok(Severity::High),
                    "medium" => Ok(Severity::Medium),
                    "low" => Ok(Severity::Low),
                    _ => Err(E::custom(format!("expected {EXPECTED}, found \"{s}\""))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads every rule file of `dir`, in name order, as `(path, text)`.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, RuleError> {
    let read_err = |path: &Path, source| RuleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let path = entry.map_err(|e| read_err(dir, e))?.path();
        let is_rules = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(RULE_FILE_SUFFIX));
        if is_rules && path.is_file() {
            if paths.len() >= MAX_RULE_FILES {
                return Err(RuleError::TooManyFiles {
                    dir: dir.to_path_buf(),
                    max: MAX_RULE_FILES,
                });
            }
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(RuleError::NoRuleFiles {
            dir: dir.to_path_buf(),
        });
    }
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let file = std::fs::File::open(&path).map_err(|e| read_err(&path, e))?;
        let mut text = String::new();
        file.take(MAX_RULE_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| read_err(&path, e))?;
        if text.len() as u64 > MAX_RULE_FILE_BYTES {
            return Err(RuleError::TooLarge {
                path,
                max: MAX_RULE_FILE_BYTES,
            });
        }
        out.push((path.display().to_string(), text));
    }
    Ok(out)
}

/// The valid rules of one file; errors go to `errors`.
pub(crate) fn parse_file(file: &str, text: &str, errors: &mut Vec<RuleError>) -> Vec<Rule> {
    let raw: FileRaw = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            errors.push(RuleError::Syntax {
                file: file.to_string(),
                message: e.to_string().trim_end().to_string(),
            });
            return Vec::new();
        }
    };
    let mut rules = Vec::with_capacity(raw.rule.len());
    for (i, table) in raw.rule.into_iter().enumerate() {
        let at = RuleRef {
            index: i + 1,
            id: table
                .get("id")
                .and_then(toml::Value::as_integer)
                .and_then(|n| u32::try_from(n).ok()),
        };
        match parse_rule(file, i + 1, table) {
            Ok(rule) => rules.push(rule),
            Err(e) => errors.push(RuleError::Invalid {
                file: file.to_string(),
                rule: at,
                field: e.field,
                message: e.message,
            }),
        }
    }
    rules
}

/// Static names of `names` on `kind`: header or event fields, not lists.
fn field_list(
    names: &[String],
    kind: &EventKind,
    path: &str,
) -> Result<Box<[&'static str]>, FieldError> {
    if names.len() > MAX_GROUP_BY {
        return Err(FieldError::new(
            path,
            format!("more than {MAX_GROUP_BY} fields (MAX_GROUP_BY)"),
        ));
    }
    let mut out: Vec<&'static str> = Vec::with_capacity(names.len());
    for name in names {
        let static_name = key_field(name, kind, path)?;
        if out.contains(&static_name) {
            return Err(FieldError::new(path, format!("`{name}` is listed twice")));
        }
        out.push(static_name);
    }
    Ok(out.into_boxed_slice())
}

/// The static name of `name` on `kind`, if it can key a group (not a list).
fn key_field(name: &str, kind: &EventKind, path: &str) -> Result<&'static str, FieldError> {
    match kind.field(name) {
        Some((_, FieldType::List)) => Err(FieldError::new(
            path,
            format!("`{name}` is a list and cannot key a group"),
        )),
        Some((n, _)) => Ok(n),
        None => Err(FieldError::new(
            path,
            format!(
                "unknown field `{name}` for event `{}`; valid fields: {}",
                kind.kind,
                kind.field_names().join(", ")
            ),
        )),
    }
}

fn check_window(count: Option<u32>, within_secs: u64, path: &str) -> Result<(), FieldError> {
    if let Some(count) = count
        && !(1..=MAX_WINDOW_COUNT).contains(&count)
    {
        return Err(FieldError::new(
            format!("{path}.count"),
            format!("must be 1 to {MAX_WINDOW_COUNT} (MAX_WINDOW_COUNT)"),
        ));
    }
    if !(1..=MAX_WINDOW_SECS).contains(&within_secs) {
        return Err(FieldError::new(
            format!("{path}.within_secs"),
            format!("must be 1 to {MAX_WINDOW_SECS} seconds (MAX_WINDOW_SECS)"),
        ));
    }
    Ok(())
}

fn kind_of(name: &str, path: &str) -> Result<&'static EventKind, FieldError> {
    catalogue::kind(name).ok_or_else(|| {
        FieldError::new(
            path,
            format!(
                "unknown event kind `{name}`; valid kinds: {}",
                catalogue::kind_names()
            ),
        )
    })
}

/// Parses `SCHEME:ID`; the two schemes of the issue are checked closely.
fn reference(s: &str, path: &str) -> Result<Reference, FieldError> {
    let bad = |why: &str| FieldError::new(path, format!("`{s}`: {why}"));
    let (scheme, id) = s
        .split_once(':')
        .ok_or_else(|| bad("expected SCHEME:ID, e.g. OWASP-IoT-2018:I1"))?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(bad("the scheme must be letters, digits, '-', '_' or '.'"));
    }
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("the id must be non-empty, without spaces"));
    }
    match scheme {
        "OWASP-IoT-2018" => {
            let ok = id
                .strip_prefix('I')
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| (1..=10).contains(&n) && id.len() <= 3);
            if !ok {
                return Err(bad("OWASP IoT Top 10 2018 items are I1 to I10"));
            }
        }
        "ETSI-EN-303-645" => {
            let ok = id
                .split(['.', '-'])
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                && id.contains('.');
            if !ok {
                return Err(bad("ETSI EN 303 645 provisions look like 5.1-1"));
            }
        }
        _ => {}
    }
    Ok(Reference {
        scheme: scheme.to_string(),
        id: id.to_string(),
    })
}

fn parse_rule(file: &str, position: usize, table: toml::Table) -> Result<Rule, FieldError> {
    let raw: RuleRaw = typed(toml::Value::Table(table), "")?;
    for (field, value) in [("name", &raw.name), ("category", &raw.category)] {
        if value.trim().is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
    }
    let kind = kind_of(&raw.event, "event")?;
    let references = raw
        .references
        .iter()
        .enumerate()
        .map(|(i, r)| reference(r, &format!("references[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let condition = condition::compile(&raw.condition, kind, "where")?;

    let given: Vec<&str> = [
        ("threshold", raw.threshold.is_some()),
        ("distinct", raw.distinct.is_some()),
        ("sequence", raw.sequence.is_some()),
        ("concurrent", raw.concurrent.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    if given.len() > 1 {
        return Err(FieldError::new(
            given.get(1).copied().unwrap_or_default(),
            format!(
                "a rule has at most one of threshold, distinct, sequence, concurrent; this one has {}",
                given.join(" and ")
            ),
        ));
    }
    let window = if let Some(t) = raw.threshold {
        check_window(Some(t.count), t.within_secs, "threshold")?;
        Window::Threshold {
            count: t.count,
            within_secs: t.within_secs,
            group_by: field_list(&t.group_by, kind, "threshold.group_by")?,
        }
    } else if let Some(d) = raw.distinct {
        check_window(Some(d.count), d.within_secs, "distinct")?;
        if d.count < 2 {
            return Err(FieldError::new(
                "distinct.count",
                "must be at least 2 (one distinct value is a plain condition)",
            ));
        }
        Window::Distinct {
            field: key_field(&d.field, kind, "distinct.field")?,
            count: d.count,
            within_secs: d.within_secs,
            group_by: field_list(&d.group_by, kind, "distinct.group_by")?,
        }
    } else if let Some(s) = raw.sequence {
        check_window(None, s.within_secs, "sequence")?;
        if s.after_rule == raw.id {
            return Err(FieldError::new(
                "sequence.after_rule",
                "a rule cannot follow itself",
            ));
        }
        Window::Sequence {
            after_rule: s.after_rule,
            within_secs: s.within_secs,
            group_by: field_list(&s.group_by, kind, "sequence.group_by")?,
        }
    } else if let Some(c) = raw.concurrent {
        let closer = kind_of(&c.closed_by, "concurrent.closed_by")?;
        if closer.kind == kind.kind {
            return Err(FieldError::new(
                "concurrent.closed_by",
                "must be another event kind than the rule's own",
            ));
        }
        let key = key_field(&c.key, kind, "concurrent.key")?;
        key_field(&c.key, closer, "concurrent.key")?;
        Window::Concurrent {
            key,
            closed_by: closer.kind,
        }
    } else {
        Window::Event
    };

    let suppress = match raw.suppress {
        None => None,
        Some(s) => {
            if let Some(secs) = s.secs.0
                && !(1..=MAX_WINDOW_SECS).contains(&secs)
            {
                return Err(FieldError::new(
                    "suppress.secs",
                    format!(
                        "must be 1 to {MAX_WINDOW_SECS} seconds (MAX_WINDOW_SECS) or \"forever\""
                    ),
                ));
            }
            Some(Suppress {
                per: field_list(&s.per, kind, "suppress.per")?,
                secs: s.secs.0,
            })
        }
    };

    if raw.test.len() > MAX_TEST_CASES {
        return Err(FieldError::new(
            "test",
            format!("more than {MAX_TEST_CASES} test cases (MAX_TEST_CASES)"),
        ));
    }
    let tests = raw
        .test
        .into_iter()
        .enumerate()
        .map(|(i, t)| parse_case(t, &format!("test[{i}]")))
        .collect::<Result<Vec<TestCase>, _>>()?;
    if !tests.iter().any(|t| t.expect > 0) || !tests.iter().any(|t| t.expect == 0) {
        return Err(FieldError::new(
            "test",
            "a rule needs at least one positive (expect > 0) and one negative (expect = 0) [[rule.test]] case",
        ));
    }

    let mut detail = Vec::new();
    condition.fields(&mut detail);
    let keyed: Vec<&'static str> = match &window {
        Window::Threshold { group_by, .. } | Window::Sequence { group_by, .. } => group_by.to_vec(),
        Window::Distinct {
            field, group_by, ..
        } => group_by.iter().copied().chain([*field]).collect(),
        Window::Concurrent { key, .. } => vec![*key],
        Window::Event => Vec::new(),
    };
    for name in keyed {
        if !detail.contains(&name) {
            detail.push(name);
        }
    }

    Ok(Rule {
        id: raw.id,
        name: raw.name,
        severity: raw.severity,
        category: raw.category,
        references,
        description: raw.description,
        event: kind.kind,
        file: file.to_string(),
        position,
        condition,
        window,
        suppress,
        alert_per: raw.alert_per,
        tests,
        detail_fields: detail.into_boxed_slice(),
    })
}

/// Checks what spans rules: unique ids, and `sequence` rules that follow an
/// existing rule, on fields both events have, without a cycle.
pub(crate) fn link(rules: &[Rule], errors: &mut Vec<RuleError>) {
    let mut seen: HashMap<u32, &str> = HashMap::with_capacity(rules.len());
    for r in rules {
        if let Some(first) = seen.insert(r.id, &r.file) {
            errors.push(RuleError::DuplicateId {
                id: r.id,
                first: first.to_string(),
                second: r.file.clone(),
            });
            seen.insert(r.id, first);
        }
    }
    let by_id: HashMap<u32, &Rule> = rules.iter().map(|r| (r.id, r)).collect();
    for r in rules {
        let Window::Sequence {
            after_rule,
            group_by,
            ..
        } = &r.window
        else {
            continue;
        };
        let invalid = |field: &str, message: String| RuleError::Invalid {
            file: r.file.clone(),
            rule: RuleRef {
                index: r.position,
                id: Some(r.id),
            },
            field: field.to_string(),
            message,
        };
        let Some(after) = by_id.get(after_rule) else {
            errors.push(invalid(
                "sequence.after_rule",
                format!("no rule has id {after_rule}"),
            ));
            continue;
        };
        if let Some(after_kind) = catalogue::kind(after.event) {
            for name in group_by.iter() {
                if after_kind.field(name).is_none() {
                    errors.push(invalid(
                        "sequence.group_by",
                        format!(
                            "`{name}` is not a field of `{}`, the event of rule {after_rule}",
                            after.event
                        ),
                    ));
                }
            }
        }
        // Follow the chain of `after_rule`s: it must end, not come back.
        let mut at = *after;
        let mut steps = 0;
        while let Window::Sequence { after_rule, .. } = &at.window {
            steps += 1;
            if *after_rule == r.id || steps > rules.len() {
                errors.push(invalid(
                    "sequence.after_rule",
                    format!("rule {} is part of a cycle of sequences", r.id),
                ));
                break;
            }
            match by_id.get(after_rule) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
}

/// The ids of `rule` and every rule it follows through `sequence`.
pub(crate) fn closure(rules: &[std::sync::Arc<Rule>], rule: &Rule) -> Vec<u32> {
    let mut ids = vec![rule.id];
    let mut at = rule;
    while let Window::Sequence { after_rule, .. } = &at.window {
        if ids.contains(after_rule) {
            break;
        }
        ids.push(*after_rule);
        match rules.iter().find(|r| r.id == *after_rule) {
            Some(next) => at = next,
            None => break,
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::RuleSet;

    /// A valid rule with `extra` lines appended to its table, and test cases.
    fn rule_text(id: u32, extra: &str) -> String {
        format!(
            r#"
[[rule]]
id = {id}
name = "Telnet login failure"
severity = "low"
category = "Brute force"
references = ["OWASP-IoT-2018:I1", "ETSI-EN-303-645:5.1-1"]
event = "telnet.login"
where = {{ outcome = "failure" }}
{extra}
[[rule.test]]
events = [ {{ kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = {{ outcome = "failure" }} }} ]
expect = 1
[[rule.test]]
events = [ {{ kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = {{ outcome = "success" }} }} ]
expect = 0
"#
        )
    }

    fn invalid(text: &str) -> (RuleRef, String, String) {
        match RuleSet::from_str("t.rules.toml", text) {
            Err(RuleError::Invalid {
                file,
                rule,
                field,
                message,
            }) => {
                assert_eq!(file, "t.rules.toml");
                (rule, field, message)
            }
            other => panic!("expected one Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn valid_rule_loads_with_its_metadata() {
        let set = RuleSet::from_str("t.rules.toml", &rule_text(1001, "")).expect("valid");
        let r = set.get(1001).expect("rule 1001");
        assert_eq!(r.severity, Severity::Low);
        assert_eq!(r.severity.as_u8(), 3);
        assert_eq!(r.event, "telnet.login");
        assert_eq!(r.references[0].to_string(), "OWASP-IoT-2018:I1");
        assert_eq!(r.references[1].scheme, "ETSI-EN-303-645");
        assert_eq!(r.references[1].id, "5.1-1");
        assert_eq!(r.tests.len(), 2);
    }

    #[test]
    fn unknown_rule_key_names_rule_field_and_valid_keys() {
        let (rule, field, message) = invalid(&rule_text(7, "sevrity = 2"));
        assert_eq!(rule.id, Some(7));
        assert_eq!(field, "sevrity");
        for key in [
            "id",
            "name",
            "severity",
            "event",
            "where",
            "threshold",
            "test",
        ] {
            assert!(message.contains(&format!("`{key}`")), "{message}");
        }
    }

    #[test]
    fn unknown_key_in_a_sub_table_is_named_with_its_path() {
        let (_, field, message) = invalid(&rule_text(
            7,
            "threshold = { count = 5, within_secs = 60, per = [] }",
        ));
        assert_eq!(field, "threshold.per");
        assert!(message.contains("`group_by`"), "{message}");
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let (_, field, message) = invalid(&rule_text(
            7,
            r#"threshold = { count = "five", within_secs = 60 }"#,
        ));
        assert_eq!(field, "threshold.count");
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn severity_accepts_numbers_and_names_only() {
        for (s, want) in [
            ("1", Severity::High),
            ("2", Severity::Medium),
            (r#""low""#, Severity::Low),
        ] {
            let text = rule_text(1, "").replace(r#"severity = "low""#, &format!("severity = {s}"));
            let set = RuleSet::from_str("t.rules.toml", &text).expect("valid severity");
            assert_eq!(set.rules()[0].severity, want);
        }
        for s in ["4", "0", r#""critical""#, "true"] {
            let text = rule_text(1, "").replace(r#"severity = "low""#, &format!("severity = {s}"));
            let (_, field, _) = invalid(&text);
            assert_eq!(field, "severity", "{s}");
        }
    }

    #[test]
    fn unknown_event_kind_lists_the_catalogue() {
        let text =
            rule_text(3, "").replace(r#"event = "telnet.login""#, r#"event = "telnet.logon""#);
        let (rule, field, message) = invalid(&text);
        assert_eq!(rule.id, Some(3));
        assert_eq!(field, "event");
        assert!(message.contains("telnet.login"), "{message}");
        assert!(message.contains("mqtt.connect"), "{message}");
    }

    #[test]
    fn bad_regex_is_an_error_of_its_field() {
        let text = rule_text(3, "").replace(
            r#"where = { outcome = "failure" }"#,
            r#"where = { user = { regex = "[a-" } }"#,
        );
        let (_, field, message) = invalid(&text);
        assert_eq!(field, "where.user.regex");
        assert!(message.contains("bad regex"), "{message}");
    }

    #[test]
    fn duplicate_id_names_both_files() {
        let a = rule_text(42, "");
        let b = rule_text(42, "");
        let err =
            RuleSet::from_sources([("a.rules.toml", a.as_str()), ("b.rules.toml", b.as_str())])
                .expect_err("duplicate");
        match err {
            RuleError::DuplicateId { id, first, second } => {
                assert_eq!(
                    (id, first.as_str(), second.as_str()),
                    (42, "a.rules.toml", "b.rules.toml")
                );
            }
            other => panic!("expected DuplicateId, got {other:?}"),
        }
        let msg =
            RuleSet::from_sources([("a.rules.toml", a.as_str()), ("b.rules.toml", b.as_str())])
                .expect_err("duplicate")
                .to_string();
        assert!(
            msg.contains("a.rules.toml") && msg.contains("b.rules.toml"),
            "{msg}"
        );
    }

    #[test]
    fn sequence_must_follow_an_existing_rule() {
        let text = rule_text(
            5,
            "sequence = { after_rule = 99, within_secs = 60, group_by = [\"src_ip\"] }",
        );
        let (rule, field, message) = invalid(&text);
        assert_eq!(rule.id, Some(5));
        assert_eq!(field, "sequence.after_rule");
        assert!(message.contains("99"), "{message}");
        let (_, field, _) = invalid(&rule_text(
            5,
            "sequence = { after_rule = 5, within_secs = 60 }",
        ));
        assert_eq!(field, "sequence.after_rule");
    }

    #[test]
    fn sequence_cycles_are_rejected() {
        let a = rule_text(1, "sequence = { after_rule = 2, within_secs = 60 }");
        let b = rule_text(2, "sequence = { after_rule = 1, within_secs = 60 }");
        let err = RuleSet::from_str("t.rules.toml", &(a + &b)).expect_err("cycle");
        let msg = err.to_string();
        assert!(msg.contains("cycle"), "{msg}");
    }

    #[test]
    fn sequence_group_by_must_exist_on_the_earlier_event() {
        let first = rule_text(1, "");
        let second = rule_text(
            2,
            "sequence = { after_rule = 1, within_secs = 60, group_by = [\"src_ip\"] }",
        )
        .replace(r#"event = "telnet.login""#, r#"event = "telnet.command""#)
        .replace(r#"where = { outcome = "failure" }"#, "")
        .replace("telnet.login", "telnet.command")
        .replace(r#"fields = { outcome = "failure" }"#, "fields = {}")
        .replace(r#"fields = { outcome = "success" }"#, "fields = {}");
        // src_ip exists everywhere: valid (the test cases are not run here).
        RuleSet::from_str("t.rules.toml", &(first.clone() + &second))
            .expect("src_ip is a header field");
        let bad = second.replace(r#"group_by = ["src_ip"]"#, r#"group_by = ["line"]"#);
        let err =
            RuleSet::from_str("t.rules.toml", &(first + &bad)).expect_err("line not on login");
        assert!(err.to_string().contains("`line`"), "{err}");
    }

    #[test]
    fn one_window_per_rule_and_bounds_checked() {
        let (_, field, _) = invalid(&rule_text(
            1,
            "threshold = { count = 5, within_secs = 60 }\ndistinct = { field = \"dst_port\", count = 5, within_secs = 60 }",
        ));
        assert_eq!(field, "distinct");
        let (_, field, _) = invalid(&rule_text(1, "threshold = { count = 0, within_secs = 60 }"));
        assert_eq!(field, "threshold.count");
        let (_, field, _) = invalid(&rule_text(1, "threshold = { count = 5, within_secs = 0 }"));
        assert_eq!(field, "threshold.within_secs");
        let (_, field, _) = invalid(&rule_text(
            1,
            "threshold = { count = 5000, within_secs = 1 }",
        ));
        assert_eq!(field, "threshold.count");
        let (_, field, _) = invalid(&rule_text(
            1,
            "threshold = { count = 2, within_secs = 1, group_by = [\"usr\"] }",
        ));
        assert_eq!(field, "threshold.group_by");
        let (_, field, _) = invalid(&rule_text(
            1,
            "suppress = { per = [\"src_ip\"], secs = \"always\" }",
        ));
        assert_eq!(field, "suppress.secs");
    }

    #[test]
    fn concurrent_key_must_be_on_both_kinds() {
        let text = rule_text(
            1,
            "concurrent = { key = \"user\", closed_by = \"mqtt.close\" }",
        );
        let (_, field, message) = invalid(&text);
        assert_eq!(field, "concurrent.key");
        assert!(message.contains("mqtt.close"), "{message}");
    }

    #[test]
    fn references_are_checked() {
        for bad in [
            "OWASP-IoT-2018:I11",
            "OWASP-IoT-2018",
            "ETSI-EN-303-645:five",
            ":x",
        ] {
            let text = rule_text(1, "").replace("OWASP-IoT-2018:I1\"", &format!("{bad}\""));
            let (_, field, _) = invalid(&text);
            assert_eq!(field, "references[0]", "{bad}");
        }
        let text = rule_text(1, "").replace("OWASP-IoT-2018:I1\"", "CWE:798\"");
        RuleSet::from_str("t.rules.toml", &text).expect("other schemes are accepted");
    }

    #[test]
    fn a_rule_needs_a_positive_and_a_negative_case() {
        let text = rule_text(1, "").replace("expect = 0", "expect = 2");
        let (_, field, message) = invalid(&text);
        assert_eq!(field, "test");
        assert!(message.contains("negative"), "{message}");
        let text = rule_text(1, "").replace("expect = 1", "expect = 0");
        let (_, field, _) = invalid(&text);
        assert_eq!(field, "test");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = RuleSet::from_str("broken.rules.toml", "[[rule]]\nid = \n").expect_err("syntax");
        let msg = err.to_string();
        assert!(msg.starts_with("broken.rules.toml: "), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let err = RuleSet::from_str("x.rules.toml", "[[rules]]\nid = 1\n").expect_err("top key");
        assert!(err.to_string().contains("`rule`"), "{err}");
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let text = rule_text(1, "bogus = 1") + &rule_text(2, "other = 2");
        let err = RuleSet::from_str("t.rules.toml", &text).expect_err("two errors");
        let ids: Vec<Option<u32>> = err
            .errors()
            .iter()
            .map(|e| match e {
                RuleError::Invalid { rule, .. } => rule.id,
                _ => None,
            })
            .collect();
        assert_eq!(ids, [Some(1), Some(2)]);
    }

    #[test]
    fn rule_without_a_valid_id_is_named_by_position() {
        let text = rule_text(1, "").replace("id = 1\n", "id = -4\n");
        let (rule, field, _) = invalid(&text);
        assert_eq!(rule, RuleRef { index: 1, id: None });
        assert_eq!(field, "id");
        assert_eq!(rule.to_string(), "rule #1 (no valid id)");
    }
}
