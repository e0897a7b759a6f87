//! Reading one rule's fields: typed deserialization that names the failing
//! field by its dotted path below the rule (`threshold.count`,
//! `test[1].events[0].kind`).

use serde::Deserialize;

use super::condition;

/// An error while reading one rule: the field path and the message.
#[derive(Debug)]
pub(crate) struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<condition::CondError> for FieldError {
    fn from(e: condition::CondError) -> Self {
        FieldError::new(e.field, e.message)
    }
}

/// Deserializes `value` as `T`, naming the failing field below `path`
/// (the TOML deserializer reports the key path after its message).
pub(crate) fn typed<T: for<'de> Deserialize<'de>>(
    value: toml::Value,
    path: &str,
) -> Result<T, FieldError> {
    value.try_into::<T>().map_err(|e| {
        let message = e.message().to_string();
        let shown = e.to_string();
        let mut keys = shown
            .strip_prefix(message.as_str())
            .and_then(|rest| rest.trim().strip_prefix("in `"))
            .and_then(|rest| rest.strip_suffix('`'))
            .unwrap_or("")
            .to_string();
        // An unknown key is named in the message; put it in the path.
        if let Some(name) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            if !keys.is_empty() {
                keys.push('.');
            }
            keys.push_str(name);
        }
        let field = match (path.is_empty(), keys.is_empty()) {
            (true, _) => keys,
            (false, true) => path.to_string(),
            (false, false) => format!("{path}.{keys}"),
        };
        FieldError { field, message }
    })
}
