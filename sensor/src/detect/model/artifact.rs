//! The model file: a versioned JSON document holding everything scoring
//! needs (feature names and order, the transform and scaler, the clusters,
//! their per-feature spreads and thresholds) and what it was trained on. Model files are
//! data: a corrupt, truncated or mismatched file is an error that names the
//! file and what is wrong, never a panic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::features::{FEATURE_COUNT, FEATURES};

/// The `format` tag of every model file.
pub const MODEL_FORMAT: &str = "spanwatch-model";
/// The layout version this build reads and writes.
pub const MODEL_VERSION: u32 = 2;
/// Largest model file read, in bytes.
pub const MAX_MODEL_BYTES: u64 = 16 << 20;
/// Most clusters a model may have.
pub const MAX_CLUSTERS: usize = 64;
/// The model file's name inside a model directory.
pub const MODEL_FILE: &str = "model.json";

/// One cluster of normal windows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// The centre, in scaled feature space.
    pub centroid: Vec<f64>,
    /// Per feature, how far the training windows of the cluster lie from
    /// the centre (root mean square, scaled units, at least the fit's
    /// floor): a window's deviation in a feature is counted in units of it.
    pub spread: Vec<f64>,
    /// Scores above this are anomalies.
    pub threshold: f64,
    /// Training windows in the cluster.
    pub size: u64,
}

/// What the model was trained on and how.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Training {
    /// The inputs (captures or datasets), as given.
    pub inputs: Vec<String>,
    /// Windows read, windows left out as belonging to labelled attack
    /// phases, windows fitted on and held back for the thresholds.
    pub windows: u64,
    pub attack_windows_excluded: u64,
    pub fit_windows: u64,
    pub held_out_windows: u64,
    pub devices: u64,
    /// The false-alarm rate per window the thresholds aim at.
    pub target_false_alarm_rate: f64,
    /// The rate measured on the held-out windows with the chosen thresholds.
    pub held_out_false_alarm_rate: f64,
    /// Silhouette of each k tried (k, score); the best was taken.
    pub k_silhouette: Vec<(usize, f64)>,
    pub seed: u64,
    pub algorithm: String,
}

/// A model file's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelArtifact {
    pub format: String,
    pub version: u32,
    /// The spanwatch version that wrote it.
    pub spanwatch_version: String,
    /// An identifier of this model (a hash of its content when trained).
    pub model_id: String,
    /// Feature names in the order of the vectors below.
    pub features: Vec<String>,
    /// `ln(1 + x)` of every count before scaling.
    pub log1p: bool,
    /// Robust scaling: (x - center) / scale, per feature.
    pub center: Vec<f64>,
    pub scale: Vec<f64>,
    pub clusters: Vec<Cluster>,
    pub training: Training,
}

/// Why a model file cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model file {} is larger than {MAX_MODEL_BYTES} bytes (MAX_MODEL_BYTES)", path.display())]
    TooLarge { path: PathBuf },
    #[error("model file {} is not a spanwatch model (JSON, line {line}, column {column}): {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("model file {}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    #[error("cannot write model file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ModelArtifact {
    /// Reads and validates a model file, or `model.json` of a directory.
    pub fn load(path: &Path) -> Result<ModelArtifact, ModelError> {
        let file = if path.is_dir() {
            path.join(MODEL_FILE)
        } else {
            path.to_path_buf()
        };
        let read = |source| ModelError::Read {
            path: file.clone(),
            source,
        };
        let meta = std::fs::metadata(&file).map_err(read)?;
        if meta.len() > MAX_MODEL_BYTES {
            return Err(ModelError::TooLarge { path: file });
        }
        let text = std::fs::read_to_string(&file).map_err(read)?;
        Self::parse(&file, &text)
    }

    /// Parses and validates a model held in memory; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<ModelArtifact, ModelError> {
        let artifact: ModelArtifact =
            serde_json::from_str(text).map_err(|e| ModelError::Syntax {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        artifact.validate().map_err(|problem| ModelError::Invalid {
            path: path.to_path_buf(),
            problem,
        })?;
        Ok(artifact)
    }

    /// Checks what serde cannot: the format and version, the features this
    /// build extracts, dimensions, and numbers a score can be made of.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != MODEL_FORMAT {
            return Err(format!("format is {:?}, not {MODEL_FORMAT:?}", self.format));
        }
        if self.version != MODEL_VERSION {
            return Err(format!(
                "layout version {} (written by spanwatch {}); this spanwatch reads version {MODEL_VERSION}: train the model again with this version",
                self.version, self.spanwatch_version
            ));
        }
        let ours: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        if self.features != ours {
            let missing: Vec<&&str> = ours
                .iter()
                .filter(|f| !self.features.iter().any(|g| g == **f))
                .collect();
            let unknown: Vec<&String> = self
                .features
                .iter()
                .filter(|g| !ours.contains(&g.as_str()))
                .collect();
            return Err(format!(
                "its features are not this spanwatch's (missing {missing:?}, unknown {unknown:?}, or in another order): train the model again"
            ));
        }
        let dims = |what: &str, v: &[f64]| {
            if v.len() != FEATURE_COUNT {
                return Err(format!(
                    "{what} has {} values, not {FEATURE_COUNT}",
                    v.len()
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(format!("{what} holds a value that is not a finite number"));
            }
            Ok(())
        };
        dims("center", &self.center)?;
        dims("scale", &self.scale)?;
        if self.scale.iter().any(|s| *s <= 0.0) {
            return Err("scale holds a value that is not positive".into());
        }
        if self.clusters.is_empty() || self.clusters.len() > MAX_CLUSTERS {
            return Err(format!(
                "{} clusters; a model has 1 to {MAX_CLUSTERS}",
                self.clusters.len()
            ));
        }
        for (i, c) in self.clusters.iter().enumerate() {
            dims(&format!("cluster {i}'s centroid"), &c.centroid)?;
            dims(&format!("cluster {i}'s spread"), &c.spread)?;
            if c.spread.iter().any(|s| *s <= 0.0) {
                return Err(format!(
                    "cluster {i}'s spread holds a value that is not positive"
                ));
            }
            if !(c.threshold.is_finite() && c.threshold > 0.0) {
                return Err(format!("cluster {i}'s threshold is not a positive number"));
            }
        }
        Ok(())
    }

    /// Writes the model as `model.json` in `dir` (created).
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ModelError> {
        let path = dir.join(MODEL_FILE);
        let write = |source| ModelError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write)?;
        let text =
            serde_json::to_string_pretty(self).map_err(|e| write(std::io::Error::other(e)))?;
        std::fs::write(&path, text + "\n").map_err(write)?;
        Ok(path)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A two-cluster model: centres at 0 and at 4 in every scaled feature,
    /// spreads of 1 (and 0.5 in the first feature of cluster 0),
    /// thresholds of 3; no transform, no scaling.
    pub(crate) fn two_clusters() -> ModelArtifact {
        let mut tight = vec![1.0; FEATURE_COUNT];
        tight[0] = 0.5;
        ModelArtifact {
            format: MODEL_FORMAT.into(),
            version: MODEL_VERSION,
            spanwatch_version: env!("CARGO_PKG_VERSION").into(),
            model_id: "test-model".into(),
            features: FEATURES.iter().map(|f| f.name.to_string()).collect(),
            log1p: false,
            center: vec![0.0; FEATURE_COUNT],
            scale: vec![1.0; FEATURE_COUNT],
            clusters: vec![
                Cluster {
                    centroid: vec![0.0; FEATURE_COUNT],
                    spread: tight,
                    threshold: 3.0,
                    size: 10,
                },
                Cluster {
                    centroid: vec![4.0; FEATURE_COUNT],
                    spread: vec![1.0; FEATURE_COUNT],
                    threshold: 3.0,
                    size: 10,
                },
            ],
            training: Training::default(),
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spanwatch-model-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn a_model_round_trips_through_its_file() {
        let d = dir("round-trip");
        let a = two_clusters();
        let path = a.save(&d).expect("save");
        assert_eq!(path, d.join(MODEL_FILE));
        assert_eq!(ModelArtifact::load(&d).expect("load dir"), a);
        assert_eq!(ModelArtifact::load(&path).expect("load file"), a);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Writes `text` as a model file and returns the error loading it.
    fn error_of(d: &Path, text: &str) -> String {
        let path = d.join("model.json");
        std::fs::write(&path, text).expect("write");
        let e = ModelArtifact::load(&path).expect_err("refused").to_string();
        assert!(
            e.contains(&path.display().to_string()),
            "names the file: {e}"
        );
        e
    }

    #[test]
    fn corrupt_truncated_or_mismatched_files_are_named_errors() {
        let d = dir("corrupt");
        let good = serde_json::to_string_pretty(&two_clusters()).expect("json");

        let truncated = &good[..good.len() / 2];
        let e = error_of(&d, truncated);
        assert!(
            e.contains("not a spanwatch model") && e.contains("line "),
            "{e}"
        );

        let old = good.replace(&format!("\"version\": {MODEL_VERSION}"), "\"version\": 1");
        let e = error_of(&d, &old);
        assert!(
            e.contains("layout version 1") && e.contains("train the model again"),
            "{e}"
        );

        let renamed = good.replacen("\"packets_out\"", "\"packets_sent\"", 1);
        let e = error_of(&d, &renamed);
        assert!(
            e.contains("unknown [\"packets_sent\"]") && e.contains("missing [\"packets_out\"]"),
            "{e}"
        );

        let mut a = two_clusters();
        a.clusters[1].spread[3] = 0.0;
        let e = error_of(&d, &serde_json::to_string(&a).expect("json"));
        assert!(
            e.contains("cluster 1's spread holds a value that is not positive"),
            "{e}"
        );

        let mut a = two_clusters();
        a.clusters[0].centroid.pop();
        let e = error_of(&d, &serde_json::to_string(&a).expect("json"));
        assert!(
            e.contains(&format!(
                "cluster 0's centroid has {} values",
                FEATURE_COUNT - 1
            )),
            "{e}"
        );

        let mut a = two_clusters();
        a.clusters.clear();
        let e = error_of(&d, &serde_json::to_string(&a).expect("json"));
        assert!(e.contains("0 clusters"), "{e}");

        let e = error_of(&d, &good.replace("\"log1p\"", "\"log2p\""));
        assert!(e.contains("unknown field `log2p`"), "{e}");

        let big = d.join("big.json");
        let f = std::fs::File::create(&big).expect("create");
        f.set_len(MAX_MODEL_BYTES + 1).expect("grow");
        let e = ModelArtifact::load(&big)
            .expect_err("too large")
            .to_string();
        assert!(e.contains("big.json") && e.contains("larger than"), "{e}");

        let empty = dir("corrupt-empty-dir");
        let e = ModelArtifact::load(&empty)
            .expect_err("no model.json")
            .to_string();
        assert!(
            e.contains(&empty.join(MODEL_FILE).display().to_string()),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&empty);
    }
}
