//! Why a rule set could not be loaded.

use std::path::PathBuf;

use thiserror::Error;

use super::limits::RULE_FILE_SUFFIX;
use super::model::RuleRef;
use crate::detect::credentials::CredentialsError;

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
    pub(super) fn from_list(mut errors: Vec<RuleError>) -> RuleError {
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
