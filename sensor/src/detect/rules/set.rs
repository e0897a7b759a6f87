//! A loaded, validated rule set and the credential dictionary its rules
//! consult.

use std::path::Path;
use std::sync::Arc;

use super::error::RuleError;
use super::limits::MAX_RULES;
use super::model::Rule;
use super::parse;
use crate::detect::credentials::{self, Dictionary};

/// Loaded, validated rules and the credential dictionary they consult.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub(super) rules: Vec<Arc<Rule>>,
    pub(super) dictionary: Arc<Dictionary>,
    /// The version of the rule files: see [`RuleSet::version`].
    version: String,
}

/// Hex digits of a ruleset's version.
pub const RULES_VERSION_HEX_DIGITS: usize = 16;

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
        let mut digest = blake3::Hasher::new();
        for (name, text) in sources {
            for part in [name, text] {
                digest.update(&(part.len() as u64).to_le_bytes());
                digest.update(part.as_bytes());
            }
            rules.extend(parse::parse_file(name, text, &mut errors));
        }
        if rules.len() > MAX_RULES {
            return Err(RuleError::TooManyRules { max: MAX_RULES });
        }
        parse::link(&rules, &mut errors);
        if !errors.is_empty() {
            return Err(RuleError::from_list(errors));
        }
        let mut version = digest.finalize().to_hex().to_string();
        version.truncate(RULES_VERSION_HEX_DIGITS);
        Ok(RuleSet {
            rules: rules.into_iter().map(Arc::new).collect(),
            dictionary: Arc::new(Dictionary::empty()),
            version,
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

    /// What identifies the rule files the set was read from: the first
    /// [`RULES_VERSION_HEX_DIGITS`] hex digits of the BLAKE3 hash of their
    /// names and texts, in order. The same files give the same version; any
    /// edit gives another.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules `ids` and every rule they depend on through `sequence`,
    /// sharing this set's dictionary.
    pub(super) fn subset(&self, ids: &[u32]) -> RuleSet {
        RuleSet {
            rules: self
                .rules
                .iter()
                .filter(|r| ids.contains(&r.id))
                .cloned()
                .collect(),
            dictionary: Arc::clone(&self.dictionary),
            version: self.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"
[[rule]]
id = 1
name = "rule 1"
severity = 2
category = "test"
event = "telnet.login"
[[rule.test]]
events = [ { kind = "telnet.login", src = "10.0.0.1:1", dst = "10.0.0.2:2" } ]
expect = 1
[[rule.test]]
events = [ { kind = "telnet.login", src = "10.0.0.1:1", dst = "10.0.0.2:2" } ]
expect = 0
"#;

    #[test]
    fn the_version_names_the_rule_files_and_changes_with_any_edit() {
        let version = |name: &str, text: &str| {
            RuleSet::from_str(name, text)
                .expect("rules load")
                .version()
                .to_string()
        };
        let v = version("a.rules.toml", RULE);
        assert_eq!(v.len(), RULES_VERSION_HEX_DIGITS);
        assert!(v.chars().all(|c| c.is_ascii_hexdigit()), "{v}");
        assert_eq!(v, version("a.rules.toml", RULE));
        assert_ne!(v, version("b.rules.toml", RULE), "a renamed file");
        let edited = RULE.replace("rule 1", "rule one");
        assert_ne!(v, version("a.rules.toml", &edited), "an edited file");
        // Name and text are length-prefixed: moving bytes between them is
        // another version.
        let moved = RuleSet::from_sources([("a.rules.toml\n", &RULE[1..])]).expect("rules load");
        assert_ne!(v, moved.version());
    }
}
