//! The rule's data model: one loaded, validated [`Rule`] and the parts it is
//! made of (severity, references, window, suppression, test cases). Loading
//! is in `parse`, evaluation in `engine`.

use std::fmt;

use super::condition;
use crate::proto::norm::Event;

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
    pub(crate) window: Window,
    pub(crate) suppress: Option<Suppress>,
    /// What the rule's alerts are deduplicated and aggregated by.
    pub alert_per: AlertPer,
    pub(crate) tests: Vec<TestCase>,
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

/// The stateful part of a rule: how matching events become a firing.
#[derive(Debug)]
pub(crate) enum Window {
    /// Every matching event fires.
    Event,
    /// `count` matching events within `within_secs`, per group.
    Threshold {
        count: u32,
        within_secs: u64,
        group_by: Box<[&'static str]>,
    },
    /// `count` distinct values of `field` within `within_secs`, per group.
    Distinct {
        field: &'static str,
        count: u32,
        within_secs: u64,
        group_by: Box<[&'static str]>,
    },
    /// A matching event within `within_secs` after rule `after_rule` fired
    /// for the same group.
    Sequence {
        after_rule: u32,
        within_secs: u64,
        group_by: Box<[&'static str]>,
    },
    /// A matching event whose `key` is held open by another source address;
    /// events of kind `closed_by` close it.
    Concurrent {
        key: &'static str,
        closed_by: &'static str,
    },
}

/// After a firing, later firings with the same `per` values are suppressed
/// for `secs` seconds (`None`: for as long as the engine runs).
#[derive(Debug)]
pub(crate) struct Suppress {
    pub per: Box<[&'static str]>,
    pub secs: Option<u64>,
}

/// One `[[rule.test]]` case, with its events built.
#[derive(Debug)]
pub(crate) struct TestCase {
    pub name: Option<String>,
    pub events: Vec<Event<'static>>,
    pub expect: u64,
}
