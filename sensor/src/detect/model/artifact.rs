//! The model file: a versioned JSON document holding everything scoring
//! needs (feature names and order, the transform and scaler, the clusters,
//! their spreads and thresholds) and what it was trained on. Model files are
//! data: a corrupt, truncated or mismatched file is an error that names the
//! file and what is wrong, never a panic.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::features::{FEATURE_COUNT, FEATURES};

/// The `format` tag of every model file.
pub const MODEL_FORMAT: &str = "spanwatch-model";
/// The layout version this build reads and writes.
pub const MODEL_VERSION: u32 = 1;
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
    /// Typical distance of the training windows to the centre (their
    /// median): scores are distances in units of this.
    pub spread: f64,
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
            if !(c.spread.is_finite() && c.spread > 0.0) {
                return Err(format!("cluster {i}'s spread is not a positive number"));
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
