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
        }
    }
}
