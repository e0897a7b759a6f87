//! Declarative rules: loading, validation, evaluation, and their test cases.
//!
//! Rules are TOML files (`*.rules.toml`, format in `rules/README.md`) of
//! `[[rule]]` tables. Each rule names one event kind of the
//! [`catalogue`], a condition on the event's fields (`where`), optionally a
//! sliding-window aggregate over matching events (`threshold`, `distinct`),
//! an order between rules (`sequence`) or a session conflict (`concurrent`),
//! and a suppression. Time is the events' packet time, so a replay gives the
//! same alerts every time.
//!
//! [`RuleSet`] loads and validates (errors name the file, the rule and the
//! field); [`Engine`] evaluates events with bounded state; [`check_dir`] runs
//! every rule's own test cases (`spanwatch rules check`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::detect::credentials::{self, CredentialsError, Dictionary};

pub mod catalogue;
mod check;
mod condition;
mod engine;
mod lru;
mod parse;

pub use check::{CaseResult, CheckReport, RuleCheck, check_dir};
pub use condition::{
    MAX_CONDITION_DEPTH, MAX_CONDITIONS, MAX_IN_VALUES, MAX_REGEX_LEN, REGEX_DFA_SIZE_LIMIT,
    REGEX_SIZE_LIMIT,
};
pub use engine::{
    DEFAULT_MAX_ENTRIES_PER_GROUP, DEFAULT_MAX_GROUPS_PER_RULE, Engine, EngineLimits, EngineStats,
    Evidence, MAX_DETAIL_CHARS, MAX_DETAIL_VALUES, RuleMatch,
};
pub use parse::{
    MAX_GROUP_BY, MAX_RULE_FILE_BYTES, MAX_RULE_FILES, MAX_RULES, MAX_TEST_CASES, MAX_TEST_EVENTS,
    MAX_WINDOW_COUNT, MAX_WINDOW_SECS, RULE_FILE_SUFFIX,
};

/// Alert severity, numbered as Suricata numbers it (1 is the most severe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    High = 1,
    Medium = 2,
    Low = 3,
}

impl Severity {
    /// Suricata's `alert.severity`: 1 high, 2 medium, 3 low.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule's alerts are deduplicated and aggregated by in the alert
/// stage (`alert_per` in a rule file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertPer {
    /// One episode per (source, target): a targeted attack (the default).
    #[default]
    SourceAndTarget,
    /// One episode per target, counting the sources: a distributed flood.
    Target,
    /// One episode per source, counting the targets: a sweep or scan.
    Source,
}

/// A reference to a published requirement, `SCHEME:ID`, e.g.
/// `OWASP-IoT-2018:I1` (OWASP IoT Top 10 2018, item I1) or
/// `ETSI-EN-303-645:5.1-1` (ETSI EN 303 645 provision 5.1-1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    pub scheme: String,
    pub id: String,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

/// One loaded, validated rule. What it matches is private; what an alert
/// shows is public.
#[derive(Debug)]
pub struct Rule {
    /// Unique across the rule set; the alert's `signature_id`.
    pub id: u32,
    /// The alert's `signature`.
    pub name: String,
    pub severity: Severity,
    pub category: String,
    pub references: Vec<Reference>,
    pub description: Option<String>,
    /// The event kind the rule is evaluated on.
    pub event: &'static str,
    /// The file the rule was loaded from.
    pub file: String,
    /// Position of the rule in its file, from 1.
    pub(crate) position: usize,
    pub(crate) condition: condition::Condition,
    pub(crate) window: parse::Window,
    pub(crate) suppress: Option<parse::Suppress>,
    /// What the rule's alerts are deduplicated and aggregated by.
    pub alert_per: AlertPer,
    pub(crate) tests: Vec<check::TestCase>,
    /// Event fields shown in an alert's evidence: those the rule reads.
    pub(crate) detail_fields: Box<[&'static str]>,
}

/// Where in a file a rule is: its position (1-based) and its id when valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleRef {
    pub index: usize,
    pub id: Option<u32>,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "rule {id}"),
            None => write!(f, "rule #{} (no valid id)", self.index),
        }
    }
}

/// Why a rule set could not be loaded. Every variant says which file, and
/// where it can, which rule and which field.
#[derive(Debug, Error)]
pub enum RuleError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is larger than {max} bytes (MAX_RULE_FILE_BYTES)", path.display())]
    TooLarge { path: PathBuf, max: u64 },
    #[error("no *{RULE_FILE_SUFFIX} file in {}", dir.display())]
    NoRuleFiles { dir: PathBuf },
    #[error("more than {max} rule files in {} (MAX_RULE_FILES)", dir.display())]
    TooManyFiles { dir: PathBuf, max: usize },
    #[error("more than {max} rules (MAX_RULES)")]
    TooManyRules { max: usize },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {rule}: {}{message}", field_prefix(field))]
    Invalid {
        file: String,
        rule: RuleRef,
        /// Dotted path below the rule, e.g. `threshold.count`, `where.uri.regex`,
        /// `test[1].events[0].kind`; empty when the rule as a whole is wrong.
        field: String,
        message: String,
    },
    #[error("rule id {id} is defined twice: in {first} and in {second}")]
    DuplicateId {
        id: u32,
        first: String,
        second: String,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("{}", join_errors(.0))]
    Several(Vec<RuleError>),
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

fn join_errors(errors: &[RuleError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    format!("{} errors:\n{}", errors.len(), lines.join("\n"))
}

impl RuleError {
    /// One error as itself, several as [`RuleError::Several`].
    fn from_list(mut errors: Vec<RuleError>) -> RuleError {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            RuleError::Several(errors)
        }
    }

    /// The individual errors (one, or each of [`RuleError::Several`]).
    pub fn errors(&self) -> Vec<&RuleError> {
        match self {
            RuleError::Several(list) => list.iter().collect(),
            e => vec![e],
        }
    }
}

/// Loaded, validated rules and the credential dictionary they consult.
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Arc<Rule>>,
    dictionary: Arc<Dictionary>,
}

impl RuleSet {
    /// Every `*.rules.toml` file of `dir` (in name order), and the dictionary
    /// `default-credentials.toml` of the same directory when present.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleError> {
        let sources = parse::read_dir(dir)?;
        let mut set = Self::from_sources(
            sources
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )?;
        let dict_path = dir.join(credentials::DEFAULT_FILE_NAME);
        if dict_path.is_file() {
            set.dictionary = Arc::new(Dictionary::load(&dict_path)?);
        }
        Ok(set)
    }

    /// One rule file held in memory; `name` names it in errors. The
    /// dictionary is empty (see [`RuleSet::with_dictionary`]).
    pub fn from_str(name: &str, text: &str) -> Result<RuleSet, RuleError> {
        Self::from_sources([(name, text)])
    }

    /// Several rule files held in memory, as `(name, text)`; ids must be
    /// unique across all of them. The dictionary is empty.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RuleSet, RuleError> {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (name, text) in sources {
            rules.extend(parse::parse_file(name, text, &mut errors));
        }
        if rules.len() > MAX_RULES {
            return Err(RuleError::TooManyRules { max: MAX_RULES });
        }
        parse::link(&rules, &mut errors);
        if !errors.is_empty() {
            return Err(RuleError::from_list(errors));
        }
        Ok(RuleSet {
            rules: rules.into_iter().map(Arc::new).collect(),
            dictionary: Arc::new(Dictionary::empty()),
        })
    }

    /// The same rules consulting `dictionary` for `default_credential`.
    pub fn with_dictionary(mut self, dictionary: Dictionary) -> RuleSet {
        self.dictionary = Arc::new(dictionary);
        self
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// The rule with `id`.
    pub fn get(&self, id: u32) -> Option<&Arc<Rule>> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs every rule's test cases; see [`check_dir`].
    pub fn check(&self) -> CheckReport {
        check::run(self)
    }

    /// The rules `ids` and every rule they depend on through `sequence`,
    /// sharing this set's dictionary.
    fn subset(&self, ids: &[u32]) -> RuleSet {
        RuleSet {
            rules: self
                .rules
                .iter()
                .filter(|r| ids.contains(&r.id))
                .cloned()
                .collect(),
            dictionary: Arc::clone(&self.dictionary),
        }
    }
}
