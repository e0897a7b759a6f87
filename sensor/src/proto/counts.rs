//! Building blocks of the per-protocol counts of the run summary (each
//! protocol's `counts.rs`). Keys follow tshark's fields (see
//! `../shared/pcaps/README.md`), so the tests can compare them with tshark
//! directly.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Distinct names kept in the user-name and path lists of the summary.
pub const MAX_LISTED_NAMES: usize = 64;

/// A bounded, sorted set of names.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct NameSet(BTreeSet<String>);

impl NameSet {
    pub fn add(&mut self, name: &str) {
        if self.0.len() < MAX_LISTED_NAMES && !self.0.contains(name) {
            self.0.insert(name.to_string());
        }
    }
}

/// Counts one more `name`; the key is allocated only the first time.
pub fn bump_name(map: &mut BTreeMap<String, u64>, name: &str) {
    match map.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            map.insert(name.to_owned(), 1);
        }
    }
}

/// Counts indexed by a small number (a code or type), without allocation on
/// the hot path; serialised as a map from the number (as text) to its count,
/// leaving out zeros, as tshark's counts are keyed.
#[derive(Clone, Debug)]
pub struct CodeCounts<const N: usize>([u64; N]);

impl<const N: usize> Default for CodeCounts<N> {
    fn default() -> Self {
        CodeCounts([0; N])
    }
}

impl<const N: usize> CodeCounts<N> {
    pub fn bump(&mut self, code: usize) {
        if let Some(c) = self.0.get_mut(code) {
            *c += 1;
        }
    }

    /// The codes counted at least once and their counts, by code.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k, *n))
    }
}

impl<const N: usize> Serialize for CodeCounts<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        // Keys in text order, as a BTreeMap<String, _> would give them.
        let mut keys: Vec<(String, u64)> =
            self.nonzero().map(|(k, n)| (k.to_string(), n)).collect();
        keys.sort();
        for (k, n) in keys {
            map.serialize_entry(&k, &n)?;
        }
        map.end()
    }
}

/// Counts by name for a few distinct names (HTTP methods): found by comparing
/// text, allocated only for a new name, bounded in number.
#[derive(Clone, Debug, Default)]
pub struct NameCounts(Vec<(String, u64)>);

impl NameCounts {
    pub fn bump(&mut self, name: &str) {
        if let Some((_, c)) = self.0.iter_mut().find(|(n, _)| n == name) {
            *c += 1;
        } else if self.0.len() < MAX_LISTED_NAMES {
            self.0.push((name.to_string(), 1));
        }
    }
}

impl Serialize for NameCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<&str, u64> = self.0.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        sorted.serialize(s)
    }
}

/// "; anomalies: a 1, b 2" for the text summary, empty without anomalies.
pub fn anomalies_suffix(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return String::new();
    }
    let items: Vec<String> = map.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("; anomalies: {}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_sets_are_bounded() {
        let mut s = NameSet::default();
        for i in 0..(MAX_LISTED_NAMES + 10) {
            s.add(&format!("user{i}"));
        }
        assert_eq!(s.0.len(), MAX_LISTED_NAMES);
    }
}
