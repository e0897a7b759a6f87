//! `spanwatch rules check`: runs each rule's test cases (`[[rule.test]]`,
//! built in `case`) and reports every rule, pass or fail.
//!
//! Each case runs through a fresh [`Engine`] holding only the rule under
//! test and the rules it follows through `sequence`, so cases are
//! independent of each other and of unrelated rules.

use std::fmt;
use std::path::Path;

use super::engine::{Engine, EngineLimits};
use super::error::RuleError;
use super::parse;
use super::set::RuleSet;

/// The outcome of one test case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    /// Position in the rule's `[[rule.test]]` list, from 0 (as in `test[0]`).
    pub index: usize,
    pub name: Option<String>,
    pub expected: u64,
    pub got: u64,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.expected == self.got
    }
}

/// The outcome of one rule's test cases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCheck {
    pub id: u32,
    pub name: String,
    pub file: String,
    pub cases: Vec<CaseResult>,
}

impl RuleCheck {
    pub fn passed(&self) -> bool {
        self.cases.iter().all(CaseResult::passed)
    }
}

/// What `spanwatch rules check` reports: every rule, pass or fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub rules: Vec<RuleCheck>,
}

impl CheckReport {
    /// Whether every case of every rule passed.
    pub fn passed(&self) -> bool {
        self.rules.iter().all(RuleCheck::passed)
    }

    /// The rules with at least one failing case.
    pub fn failures(&self) -> impl Iterator<Item = &RuleCheck> {
        self.rules.iter().filter(|r| !r.passed())
    }
}

impl fmt::Display for CheckReport {
    /// One line per rule, one more per failing case, then a total.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rules {
            let status = if r.passed() { "ok  " } else { "FAIL" };
            writeln!(
                f,
                "{status} {:>6}  {}  ({} cases, {})",
                r.id,
                r.name,
                r.cases.len(),
                r.file
            )?;
            for c in r.cases.iter().filter(|c| !c.passed()) {
                let name = c
                    .name
                    .as_deref()
                    .map(|n| format!(" \"{n}\""))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "       test[{}]{name}: expected {} matches, got {}",
                    c.index, c.expected, c.got
                )?;
            }
        }
        let failed = self.failures().count();
        write!(
            f,
            "{} rules: {} passed, {failed} failed",
            self.rules.len(),
            self.rules.len() - failed
        )
    }
}

/// Runs every rule's test cases.
fn run(set: &RuleSet) -> CheckReport {
    let rules = set
        .rules()
        .iter()
        .map(|rule| {
            let ids = parse::closure(set.rules(), rule);
            let cases = rule
                .tests
                .iter()
                .enumerate()
                .map(|(index, case)| {
                    let mut engine = Engine::new(set.subset(&ids), EngineLimits::default());
                    let mut out = Vec::new();
                    let mut got = 0u64;
                    for ev in &case.events {
                        engine.on_event(ev, &mut out);
                        got += out.iter().filter(|m| m.rule.id == rule.id).count() as u64;
                        out.clear();
                    }
                    CaseResult {
                        index,
                        name: case.name.clone(),
                        expected: case.expect,
                        got,
                    }
                })
                .collect();
            RuleCheck {
                id: rule.id,
                name: rule.name.clone(),
                file: rule.file.clone(),
                cases,
            }
        })
        .collect();
    CheckReport { rules }
}

/// `spanwatch rules check DIR`: loads and validates every rule file of `dir`
/// (and its credential dictionary), then runs each rule's test cases. A load
/// or validation error is an `Err`; failing cases are in the report.
pub fn check_dir(dir: &Path) -> Result<CheckReport, RuleError> {
    Ok(run(&RuleSet::load_dir(dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::credentials;
    use crate::proto::credential::digest;
    use std::path::PathBuf;

    const BRUTE_AND_SUCCESS: &str = r#"
[[rule]]
id = 10
name = "Telnet brute force"
severity = "medium"
category = "Brute force"
event = "telnet.login"
where = { outcome = "failure" }
threshold = { count = 3, within_secs = 60, group_by = ["src_ip", "dst_ip"] }
[[rule.test]]
name = "three failures"
events = [ { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = { outcome = "failure" }, repeat = 3, step_secs = 1 } ]
expect = 1
[[rule.test]]
name = "two failures"
events = [ { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = { outcome = "failure" }, repeat = 2 } ]
expect = 0

[[rule]]
id = 11
name = "Telnet login after brute force"
severity = "high"
category = "Brute force"
event = "telnet.login"
where = { outcome = "success" }
sequence = { after_rule = 10, within_secs = 120, group_by = ["src_ip", "dst_ip"] }
[[rule.test]]
events = [
  { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", ts = 0, fields = { outcome = "failure" }, repeat = 3, step_secs = 1 },
  { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", ts = 10, fields = { outcome = "success" } },
]
expect = 1
[[rule.test]]
events = [ { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = { outcome = "success" } } ]
expect = 0
"#;

    #[test]
    fn check_runs_each_case_with_the_rules_it_follows() {
        let set = RuleSet::from_str("t.rules.toml", BRUTE_AND_SUCCESS).expect("valid");
        assert_eq!(parse::closure(set.rules(), &set.rules()[1]), [11, 10]);
        assert_eq!(parse::closure(set.rules(), &set.rules()[0]), [10]);
        let report = run(&set);
        assert!(report.passed(), "{report}");
        assert_eq!(report.rules.len(), 2);
        assert_eq!(
            report.rules[1].cases[0],
            CaseResult {
                index: 0,
                name: None,
                expected: 1,
                got: 1
            }
        );
        assert!(
            report.to_string().ends_with("2 rules: 2 passed, 0 failed"),
            "{report}"
        );
    }

    #[test]
    fn failing_case_reports_expected_and_got() {
        let text = BRUTE_AND_SUCCESS.replacen(
            "repeat = 3, step_secs = 1 } ]\nexpect = 1",
            "repeat = 3, step_secs = 1 } ]\nexpect = 2",
            1,
        );
        assert_ne!(text, BRUTE_AND_SUCCESS);
        let report = run(&RuleSet::from_str("t.rules.toml", &text).expect("valid"));
        assert!(!report.passed());
        let failed: Vec<u32> = report.failures().map(|r| r.id).collect();
        assert_eq!(failed, [10]);
        let c = &report.rules[0].cases[0];
        assert_eq!((c.expected, c.got, c.passed()), (2, 1, false));
        let shown = report.to_string();
        assert!(shown.contains("FAIL     10  Telnet brute force"), "{shown}");
        assert!(
            shown.contains("test[0] \"three failures\": expected 2 matches, got 1"),
            "{shown}"
        );
        assert!(shown.ends_with("2 rules: 1 passed, 1 failed"), "{shown}");
    }

    /// A directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("spanwatch-rules-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).expect("write temp file");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const DEFAULT_CRED: &str = r#"
[[rule]]
id = 20
name = "Telnet login with a default credential"
severity = 1
category = "Default credentials"
references = ["OWASP-IoT-2018:I1", "ETSI-EN-303-645:5.1-1"]
event = "telnet.login"
where = { default_credential = true }
[[rule.test]]
events = [ { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = { user = "root" }, credential = "root:xc3511" } ]
expect = 1
[[rule.test]]
events = [ { kind = "telnet.login", src = "10.0.0.9:5000", dst = "10.0.0.2:23", fields = { user = "root" }, credential = "root:a-long-unique-passphrase" } ]
expect = 0
"#;

    fn dictionary_text(user: &str, password: &str) -> String {
        let hex: String = digest(user, password)
            .0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("[[credential]]\nuser = \"{user}\"\ndigest = \"{hex}\"\nsource = \"mirai\"\n")
    }

    #[test]
    fn check_dir_loads_every_rule_file_and_the_dictionary() {
        let dir = TempDir::new("ok");
        dir.write("a.rules.toml", BRUTE_AND_SUCCESS);
        dir.write("b.rules.toml", DEFAULT_CRED);
        dir.write("notes.toml", "this is not a rule file and is ignored");
        dir.write(
            credentials::DEFAULT_FILE_NAME,
            &dictionary_text("root", "xc3511"),
        );
        let report = check_dir(&dir.0).expect("loads");
        assert!(report.passed(), "{report}");
        let ids: Vec<u32> = report.rules.iter().map(|r| r.id).collect();
        assert_eq!(ids, [10, 11, 20]);
        assert!(report.rules[2].file.ends_with("b.rules.toml"));
    }

    #[test]
    fn check_dir_without_the_dictionary_fails_the_default_credential_case() {
        let dir = TempDir::new("nodict");
        dir.write("b.rules.toml", DEFAULT_CRED);
        let report = check_dir(&dir.0).expect("loads");
        assert!(!report.passed());
        assert_eq!(
            (
                report.rules[0].cases[0].expected,
                report.rules[0].cases[0].got
            ),
            (1, 0)
        );
    }

    #[test]
    fn check_dir_fails_clearly_on_a_broken_file() {
        let dir = TempDir::new("broken");
        dir.write("a.rules.toml", BRUTE_AND_SUCCESS);
        dir.write(
            "b.rules.toml",
            &DEFAULT_CRED.replace("default_credential = true", "default_credentials = true"),
        );
        let err = check_dir(&dir.0).expect_err("broken");
        let msg = err.to_string();
        assert!(
            msg.contains("b.rules.toml: rule 20: field `where.default_credentials`"),
            "{msg}"
        );
        assert!(msg.contains("valid keys:"), "{msg}");

        let empty = TempDir::new("empty");
        assert!(matches!(
            check_dir(&empty.0),
            Err(RuleError::NoRuleFiles { .. })
        ));
        let missing = empty.0.join("missing");
        assert!(matches!(check_dir(&missing), Err(RuleError::Read { .. })));
    }

    #[test]
    fn check_dir_reports_a_broken_dictionary() {
        let dir = TempDir::new("baddict");
        dir.write("b.rules.toml", DEFAULT_CRED);
        dir.write(
            credentials::DEFAULT_FILE_NAME,
            "[[credential]]\nuser = \"root\"\n",
        );
        let err = check_dir(&dir.0).expect_err("bad dictionary");
        assert!(matches!(err, RuleError::Credentials(_)), "{err:?}");
    }

    /// The full example of `rules/README.md` loads and its cases pass.
    #[test]
    fn readme_example_passes_its_own_tests() {
        let readme = include_str!("../../../../rules/README.md");
        let start = readme.find("```toml\n").expect("README has a toml block") + "```toml\n".len();
        let len = readme[start..].find("```").expect("block ends");
        let set =
            RuleSet::from_str("README.md", &readme[start..start + len]).expect("example loads");
        assert!(!set.is_empty());
        let report = run(&set);
        assert!(report.passed(), "{report}");
    }
}
