//! Scoring a window: its features are transformed and scaled as the model
//! was trained, the nearest cluster is found, and the score is the distance
//! to that cluster's centre in units of the cluster's spread. The features
//! that deviate most from the centre explain the score.

use serde::Serialize;

use super::artifact::ModelArtifact;
use crate::features::{FEATURE_COUNT, FEATURES};

/// Features named in an explanation.
pub const EXPLAINED_FEATURES: usize = 3;

/// What the model says of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The nearest cluster.
    pub cluster: usize,
    /// Distance to its centre, in units of its spread.
    pub score: f64,
    pub threshold: f64,
}

impl Score {
    pub fn is_anomaly(&self) -> bool {
        self.score > self.threshold
    }

    /// How far over the threshold, as a ratio (1.0 at the threshold).
    pub fn excess(&self) -> f64 {
        self.score / self.threshold
    }
}

/// One feature that deviates: its value in the cluster's centre (the
/// baseline, back in the feature's unit) and the window's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deviation {
    pub feature: &'static str,
    pub baseline: f64,
    pub observed: f64,
    /// Its share of the squared distance to the centre.
    pub share: f64,
}

/// A loaded, validated model.
#[derive(Clone, Debug)]
pub struct Model {
    artifact: ModelArtifact,
}

impl Model {
    pub fn new(artifact: ModelArtifact) -> Self {
        Model { artifact }
    }

    pub fn artifact(&self) -> &ModelArtifact {
        &self.artifact
    }

    pub fn id(&self) -> &str {
        &self.artifact.model_id
    }

    /// The window's values as the model sees them.
    pub fn scaled(&self, values: &[f64; FEATURE_COUNT]) -> [f64; FEATURE_COUNT] {
        let a = &self.artifact;
        let mut out = [0.0; FEATURE_COUNT];
        for (i, o) in out.iter_mut().enumerate() {
            let x = if a.log1p {
                values[i].max(0.0).ln_1p()
            } else {
                values[i]
            };
            *o = (x - a.center[i]) / a.scale[i];
        }
        out
    }

    /// The nearest cluster to a scaled vector and the squared distance.
    pub fn nearest(&self, scaled: &[f64; FEATURE_COUNT]) -> (usize, f64) {
        let mut best = (0, f64::INFINITY);
        for (i, c) in self.artifact.clusters.iter().enumerate() {
            let d: f64 = c
                .centroid
                .iter()
                .zip(scaled)
                .map(|(m, x)| (x - m) * (x - m))
                .sum();
            if d < best.1 {
                best = (i, d);
            }
        }
        best
    }

    pub fn score(&self, values: &[f64; FEATURE_COUNT]) -> Score {
        let scaled = self.scaled(values);
        let (cluster, d2) = self.nearest(&scaled);
        let c = &self.artifact.clusters[cluster];
        Score {
            cluster,
            score: d2.sqrt() / c.spread,
            threshold: c.threshold,
        }
    }

    /// The features that deviate most from the centre of `cluster`.
    pub fn explain(&self, values: &[f64; FEATURE_COUNT], cluster: usize) -> Vec<Deviation> {
        let a = &self.artifact;
        let scaled = self.scaled(values);
        let centroid = &a.clusters[cluster].centroid;
        let parts: Vec<f64> = scaled
            .iter()
            .zip(centroid)
            .map(|(x, m)| (x - m) * (x - m))
            .collect();
        let total: f64 = parts.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut order: Vec<usize> = (0..FEATURE_COUNT).collect();
        order.sort_by(|&i, &j| parts[j].total_cmp(&parts[i]).then(i.cmp(&j)));
        order
            .into_iter()
            .take(EXPLAINED_FEATURES)
            .filter(|&i| parts[i] > 0.0)
            .map(|i| {
                let raw = centroid[i] * a.scale[i] + a.center[i];
                let baseline = if a.log1p { raw.exp_m1().max(0.0) } else { raw };
                Deviation {
                    feature: FEATURES[i].name,
                    baseline: (baseline * 100.0).round() / 100.0,
                    observed: values[i],
                    share: (parts[i] / total * 1000.0).round() / 1000.0,
                }
            })
            .collect()
    }
}
