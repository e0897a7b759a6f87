//! Serde helpers the protocols' log records share.

use std::fmt;

use serde::{Serialize, Serializer};

/// Serializes a value through its `Display` form (no intermediate `String`).
pub struct Shown<T>(pub T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// `skip_serializing_if` helpers of the protocol records.
pub fn is_zero(n: &u16) -> bool {
    *n == 0
}

pub fn is_false(b: &bool) -> bool {
    !*b
}
