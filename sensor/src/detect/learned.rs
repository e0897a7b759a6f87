//! What a sensor learned of its network's normal, kept in a state file
//! beside its model so that a restart does not learn again: the findings
//! that are routine (rule findings accepted while learning, and any finding
//! accepted by `spanwatch learn`), each device's own highest model score,
//! and the devices known.
//!
//! Findings are named by their alert key (`spanwatch.key` in every alert):
//! `rule:<id>:<source>:<target>`, `model:<mac>:<score>`,
//! `profile:<kind>:<mac>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `format` tag of a state file.
pub const STATE_FORMAT: &str = "spanwatch-learned";
/// Largest state file read, in bytes.
pub const MAX_STATE_BYTES: u64 = 16 << 20;
/// Most entries of each kind kept.
pub const MAX_LEARNED_ENTRIES: usize = 65_536;

/// The learned state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedState {
    pub format: String,
    /// Findings accepted as routine, by alert key.
    pub findings: BTreeSet<String>,
    /// Each device's (MAC's) own highest model score.
    pub device_scores: BTreeMap<String, f64>,
    /// Devices known on the segment (MACs): not reported as new.
    pub devices: BTreeSet<String>,
    /// Targets of routine rule findings, `<rule id>:<target>`: the same
    /// rule against the same target is routine for any device that had
    /// used that service of the target before (firmware downloads from the
    /// update server the device checks with).
    #[serde(default)]
    pub targets: BTreeSet<String>,
}

impl Default for LearnedState {
    fn default() -> Self {
        LearnedState {
            format: STATE_FORMAT.to_string(),
            findings: BTreeSet::new(),
            device_scores: BTreeMap::new(),
            devices: BTreeSet::new(),
            targets: BTreeSet::new(),
        }
    }
}

/// A state file could not be used or written; every variant names it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {} is not a spanwatch state file (line {line}, column {column}): {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("state file {}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    #[error("cannot write state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{key:?} is not an alert key (rule:<id>:<source>:<target>, model:<mac>:<score>, profile:<kind>:<mac>)"
    )]
    Key { key: String },
}

impl LearnedState {
    /// Reads a state file; an absent file is an empty state.
    pub fn load(path: &Path) -> Result<LearnedState, StateError> {
        if !path.exists() {
            return Ok(LearnedState::default());
        }
        let read = |source| StateError::Read {
            path: path.to_path_buf(),
            source,
        };
        if std::fs::metadata(path).map_err(read)?.len() > MAX_STATE_BYTES {
            return Err(StateError::Invalid {
                path: path.to_path_buf(),
                problem: format!("larger than {MAX_STATE_BYTES} bytes (MAX_STATE_BYTES)"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        let state: LearnedState = serde_json::from_str(&text).map_err(|e| StateError::Syntax {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if state.format != STATE_FORMAT {
            return Err(StateError::Invalid {
                path: path.to_path_buf(),
                problem: format!("format is {:?}, not {STATE_FORMAT:?}", state.format),
            });
        }
        Ok(state)
    }

    /// Writes the state (to a temporary file renamed into place, so a crash
    /// never leaves half a file).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write = |source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        let text =
            serde_json::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text + "\n").map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)
    }

    /// Accepts the behaviour an alert key names as normal.
    pub fn learn(&mut self, key: &str) -> Result<(), StateError> {
        let bad = || StateError::Key {
            key: key.to_string(),
        };
        let parts: Vec<&str> = key.split(':').collect();
        match parts.first().copied() {
            Some("rule") if parts.len() >= 4 => {
                bounded_insert(&mut self.findings, key.to_string());
            }
            Some("model") if parts.len() == 8 => {
                let mac = parts[1..7].join(":");
                let score: f64 = parts[7].parse().map_err(|_| bad())?;
                if !score.is_finite() {
                    return Err(bad());
                }
                if self.device_scores.len() < MAX_LEARNED_ENTRIES
                    || self.device_scores.contains_key(&mac)
                {
                    let best = self.device_scores.entry(mac).or_insert(0.0);
                    *best = best.max(score);
                }
            }
            Some("profile") if parts.len() == 8 => {
                if parts[1] == "new-device" {
                    bounded_insert(&mut self.devices, parts[2..8].join(":"));
                }
                bounded_insert(&mut self.findings, key.to_string());
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    /// Takes back what [`LearnedState::learn`] accepted for `key`.
    pub fn unlearn(&mut self, key: &str) -> Result<(), StateError> {
        let parts: Vec<&str> = key.split(':').collect();
        match parts.first().copied() {
            Some("rule") if parts.len() >= 4 => {
                self.findings.remove(key);
            }
            Some("model") if parts.len() == 8 => {
                self.device_scores.remove(&parts[1..7].join(":"));
            }
            Some("profile") if parts.len() == 8 => {
                if parts[1] == "new-device" {
                    self.devices.remove(&parts[2..8].join(":"));
                }
                self.findings.remove(key);
            }
            _ => {
                return Err(StateError::Key {
                    key: key.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl LearnedState {
    /// The routine-target entry of a rule finding against `target`.
    pub fn target_key(rule: u32, target: std::net::IpAddr) -> String {
        format!("{rule}:{target}")
    }

    /// Learns a routine rule finding: its key, and its rule and target.
    pub fn learn_finding(&mut self, key: &str, rule: u32, target: std::net::IpAddr) -> bool {
        bounded_insert(&mut self.targets, Self::target_key(rule, target));
        let new = !self.findings.contains(key);
        bounded_insert(&mut self.findings, key.to_string());
        new
    }
}

impl LearnedState {
    /// Adds what `other` holds, within the same bounds; a device's score is
    /// the higher of the two.
    pub fn merge(&mut self, other: &LearnedState) {
        for (set, more) in [
            (&mut self.findings, &other.findings),
            (&mut self.devices, &other.devices),
            (&mut self.targets, &other.targets),
        ] {
            for item in more {
                bounded_insert(set, item.clone());
            }
        }
        for (mac, score) in &other.device_scores {
            if self.device_scores.len() < MAX_LEARNED_ENTRIES
                || self.device_scores.contains_key(mac)
            {
                let best = self.device_scores.entry(mac.clone()).or_insert(*score);
                *best = best.max(*score);
            }
        }
    }
}

fn bounded_insert(set: &mut BTreeSet<String>, item: String) {
    if set.len() < MAX_LEARNED_ENTRIES {
        set.insert(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_learned_unlearned_and_saved() {
        let mut s = LearnedState::default();
        s.learn("rule:9100801:10.0.0.2:10.0.0.24")
            .expect("rule key");
        s.learn("model:02:77:00:00:00:0a:7.250").expect("model key");
        s.learn("model:02:77:00:00:00:0a:5.000").expect("model key");
        s.learn("profile:new-device:02:77:00:00:00:99")
            .expect("profile key");
        assert!(s.findings.contains("rule:9100801:10.0.0.2:10.0.0.24"));
        assert_eq!(s.device_scores.get("02:77:00:00:00:0a"), Some(&7.25));
        assert!(s.devices.contains("02:77:00:00:00:99"));
        for bad in ["", "rule:1", "model:02:77:00:00:00:0a:x", "other:a:b:c"] {
            assert!(s.learn(bad).is_err(), "{bad}");
        }
        let dir = std::env::temp_dir().join(format!("spanwatch-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.json");
        s.save(&path).expect("save");
        assert_eq!(LearnedState::load(&path).expect("load"), s);
        s.unlearn("model:02:77:00:00:00:0a:7.250").expect("unlearn");
        s.unlearn("rule:9100801:10.0.0.2:10.0.0.24")
            .expect("unlearn");
        assert!(
            s.device_scores.is_empty() && !s.findings.contains("rule:9100801:10.0.0.2:10.0.0.24")
        );
        std::fs::write(&path, r#"{"format": "other""#).expect("write");
        assert!(LearnedState::load(&path).is_err());
        assert_eq!(
            LearnedState::load(&dir.join("absent.json")).expect("absent is empty"),
            LearnedState::default()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn merging_keeps_both_sides_and_the_higher_score() {
        let mut file = LearnedState::default();
        file.learn("rule:1:10.0.0.2:10.0.0.3").expect("rule key");
        file.learn("model:02:77:00:00:00:0a:7.000")
            .expect("model key");
        let mut run = LearnedState::default();
        run.learn_finding(
            "rule:2:10.0.0.4:10.0.0.5",
            2,
            "10.0.0.5".parse().expect("ip"),
        );
        run.learn("model:02:77:00:00:00:0a:9.500")
            .expect("model key");
        run.learn("model:02:77:00:00:00:0b:1.000")
            .expect("model key");
        run.learn("profile:new-device:02:77:00:00:00:99")
            .expect("profile key");
        file.merge(&run);
        assert_eq!(
            file.findings.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "profile:new-device:02:77:00:00:00:99",
                "rule:1:10.0.0.2:10.0.0.3",
                "rule:2:10.0.0.4:10.0.0.5"
            ]
        );
        assert_eq!(file.device_scores.get("02:77:00:00:00:0a"), Some(&9.5));
        assert_eq!(file.device_scores.get("02:77:00:00:00:0b"), Some(&1.0));
        assert!(file.devices.contains("02:77:00:00:00:99"));
        assert!(file.targets.contains("2:10.0.0.5"));
    }
}
