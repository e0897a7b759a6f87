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
//!
//! Files, each depending only on those listed before it: `catalogue` (event
//! kinds and fields), `lru`, `condition` (the `where` tree), `limits`,
//! `field` (typed field reading), `model` ([`Rule`] and its parts), `error`
//! ([`RuleError`]), `case` (test-case events), `parse` (rule files), `set`
//! ([`RuleSet`]), `engine`, `check`.

mod case;
pub mod catalogue;
mod check;
mod condition;
mod engine;
mod error;
mod field;
mod limits;
mod lru;
mod model;
mod parse;
mod set;

pub use check::{CaseResult, CheckReport, RuleCheck, check_dir};
pub use condition::{
    MAX_CONDITION_DEPTH, MAX_CONDITIONS, MAX_IN_VALUES, MAX_REGEX_LEN, REGEX_DFA_SIZE_LIMIT,
    REGEX_SIZE_LIMIT,
};
pub use engine::{
    DEFAULT_MAX_ENTRIES_PER_GROUP, DEFAULT_MAX_GROUPS_PER_RULE, Engine, EngineLimits, EngineStats,
    Evidence, MAX_DETAIL_CHARS, MAX_DETAIL_VALUES, RuleMatch,
};
pub use error::RuleError;
pub use limits::{
    DEFAULT_RULES_MEMCAP_BYTES, MAX_GROUP_BY, MAX_RULE_FILE_BYTES, MAX_RULE_FILES, MAX_RULES,
    MAX_TEST_CASES, MAX_TEST_EVENTS, MAX_WINDOW_COUNT, MAX_WINDOW_SECS, RULE_ENTRY_BYTES,
    RULE_FILE_SUFFIX, RULE_GROUP_BYTES, RULE_KEY_PART_BYTES,
};
pub use model::{AlertPer, Reference, Rule, RuleRef, Severity};
pub use set::RuleSet;
