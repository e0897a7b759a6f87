//! The rule detector: normalised events → rule engine → rule matches, which
//! the alert stage turns into alerts.

use serde::Serialize;

use super::rules::{Engine, EngineLimits, EngineStats, RuleMatch, RuleSet};
use crate::proto::norm::Event;

/// The rules of a run.
pub struct Detector {
    engine: Engine,
    /// [`RuleSet::version`] of the rules in use.
    version: String,
}

/// What the rules did, for the summary.
#[derive(Clone, Debug, Serialize)]
pub struct RulesSummary {
    pub rules: usize,
    /// [`RuleSet::version`] of the rules in use.
    pub version: String,
    pub engine: EngineStats,
}

impl Detector {
    pub fn new(rules: RuleSet, limits: EngineLimits) -> Self {
        Detector {
            version: rules.version().to_string(),
            engine: Engine::new(rules, limits),
        }
    }

    /// Replace the rules (SIGHUP); counters are kept.
    pub fn reload(&mut self, rules: RuleSet) {
        self.version = rules.version().to_string();
        self.engine.reload(rules);
    }

    /// Evaluates the events; matches are appended to `out`.
    pub fn run(&mut self, events: &[Event], out: &mut Vec<RuleMatch>) {
        for ev in events {
            self.engine.on_event(ev, out);
        }
    }

    pub fn summary(&self) -> RulesSummary {
        RulesSummary {
            rules: self.engine.rules().len(),
            version: self.version.clone(),
            engine: self.engine.stats(),
        }
    }
}
