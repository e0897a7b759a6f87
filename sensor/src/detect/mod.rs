//! Detection: the rule engine over normalised events and the clustering
//! model over feature windows.
//! Detectors produce matches; the alert stage ([`crate::alert`]) decides what
//! becomes an alert.

pub mod credentials;
pub mod detector;
pub mod learned;
pub mod model;
pub mod profile;
pub mod rules;

use std::path::Path;

use credentials::Dictionary;
use rules::{RuleError, RuleSet};

/// The default ruleset and credential dictionary, built into the binary
/// (the files of the repository's `rules/` directory).
pub fn default_ruleset() -> Result<RuleSet, RuleError> {
    let rules = RuleSet::from_sources([(
        "iot-default.rules.toml",
        include_str!("../../../rules/iot-default.rules.toml"),
    )])?;
    let dictionary = Dictionary::parse(
        Path::new(credentials::DEFAULT_FILE_NAME),
        include_str!("../../../rules/default-credentials.toml"),
    )?;
    Ok(rules.with_dictionary(dictionary))
}
