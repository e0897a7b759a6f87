//! Scoring a window: its features are transformed and scaled as the model
//! was trained, the nearest cluster is found, and the score is the root mean
//! square of the window's deviations from that cluster's centre, each
//! feature's in units of the cluster's spread in that feature (a diagonal
//! Mahalanobis distance). A feature that stays put in a cluster (a sensor
//! never opens a flow) counts its first jump fully; one that varies a lot
//! counts little. The features that deviate most explain the score.

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
    /// Root mean square deviation from its centre, in units of its spread.
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

    /// The nearest cluster (Euclidean, as k-means assigned) to a scaled
    /// vector.
    pub fn nearest(&self, scaled: &[f64; FEATURE_COUNT]) -> usize {
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
        best.0
    }

    pub fn score(&self, values: &[f64; FEATURE_COUNT]) -> Score {
        let scaled = self.scaled(values);
        let cluster = self.nearest(&scaled);
        let c = &self.artifact.clusters[cluster];
        Score {
            cluster,
            score: deviation(&scaled, &c.centroid, &c.spread),
            threshold: c.threshold,
        }
    }

    /// The features that deviate most from the centre of `cluster`.
    pub fn explain(&self, values: &[f64; FEATURE_COUNT], cluster: usize) -> Vec<Deviation> {
        let a = &self.artifact;
        let scaled = self.scaled(values);
        let c = &a.clusters[cluster];
        let centroid = &c.centroid;
        let parts: Vec<f64> = scaled
            .iter()
            .zip(centroid)
            .zip(&c.spread)
            .map(|((x, m), s)| ((x - m) / s).powi(2))
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

/// Root mean square of `(x - centre) / spread` over the features.
pub fn deviation(scaled: &[f64], centroid: &[f64], spread: &[f64]) -> f64 {
    let sum: f64 = scaled
        .iter()
        .zip(centroid)
        .zip(spread)
        .map(|((x, m), s)| ((x - m) / s).powi(2))
        .sum();
    (sum / scaled.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::model::artifact::tests::two_clusters;

    #[test]
    fn the_score_is_the_rms_deviation_in_units_of_the_clusters_spreads() {
        let m = Model::new(two_clusters());
        // Nearest centre 0; feature 0 is 1.0 off with a spread of 0.5
        // (2 units), feature 1 is 3.0 off with a spread of 1 (3 units):
        // sqrt((2² + 3²) / 33) = sqrt(13 / 33).
        let mut v = [0.0; FEATURE_COUNT];
        v[0] = 1.0;
        v[1] = 3.0;
        let s = m.score(&v);
        assert_eq!(s.cluster, 0);
        assert!((s.score - (13.0f64 / 33.0).sqrt()).abs() < 1e-12, "{s:?}");
        assert!(!s.is_anomaly());
        // Every feature 3.9 off the far centre is near the other one.
        let s = m.score(&[3.9; FEATURE_COUNT]);
        assert_eq!(s.cluster, 1);
        assert!((s.score - 0.1).abs() < 1e-12, "{s:?}");
        // One feature alone far off: 20 units in a cluster of 33 features
        // is sqrt(400 / 33) = 3.48, over the threshold of 3.
        let mut v = [0.0; FEATURE_COUNT];
        v[5] = 20.0;
        let s = m.score(&v);
        assert!(s.is_anomaly() && (s.score - (400.0f64 / 33.0).sqrt()).abs() < 1e-12);
        assert!((s.excess() - s.score / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_explanation_ranks_features_by_their_share() {
        let mut a = two_clusters();
        a.log1p = true;
        let m = Model::new(a);
        // ln(1 + x): features 2 and 7 at e² - 1 and e - 1 are 2 and 1
        // units off the centre 0 (baseline ln(1 + x) = 0, so x = 0).
        let mut v = [0.0; FEATURE_COUNT];
        v[2] = 2f64.exp() - 1.0;
        v[7] = 1f64.exp() - 1.0;
        let e = m.explain(&v, 0);
        assert_eq!(e.len(), 2, "features with no deviation are left out");
        assert_eq!(e[0].feature, FEATURES[2].name);
        assert_eq!(e[1].feature, FEATURES[7].name);
        assert_eq!((e[0].baseline, e[0].observed), (0.0, v[2]));
        assert!((e[0].share - 0.8).abs() < 1e-9 && (e[1].share - 0.2).abs() < 1e-9);
    }
}
