//! Fitting a model to normal windows: robust scaling, k-means (linfa) with k
//! chosen by silhouette (or a Gaussian mixture with k chosen by BIC), the
//! clusters' spreads, and thresholds calibrated on held-back windows.

use linfa::prelude::*;
use linfa_clustering::{GaussianMixtureModel, KMeans};
use ndarray::{Array1, Array2, ArrayView1, Axis};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::Serialize;

use crate::detect::model::ModelArtifact;
use crate::detect::model::artifact::{Cluster, MODEL_FORMAT, MODEL_VERSION, Training};
use crate::detect::model::score::deviation;
use crate::features::{FEATURE_COUNT, FEATURES, Window};

/// Smallest scale of a feature (in `ln(1 + x)` units): a feature that
/// barely varies in normal traffic (an IQR of 0) must not turn its first
/// change into an infinite score.
pub const SCALE_FLOOR: f64 = 0.3;
/// Smallest spread of a cluster in a feature, in scaled units, for the same
/// reason: a feature constant within a cluster counts a jump of this much as
/// one unit of deviation.
pub const SPREAD_FLOOR: f64 = 0.3;
/// Windows a k is judged on by silhouette (the score is quadratic).
pub const SILHOUETTE_SAMPLE: usize = 2_000;
/// Windows k-means is fitted on at most (the rest are assigned after).
pub const FIT_SAMPLE: usize = 100_000;
/// Windows a cluster needs among the held-back ones to get a threshold of
/// its own; smaller clusters use the pooled one.
pub const OWN_THRESHOLD_MIN: usize = 200;
/// A threshold is at least this (root mean square deviation in units of
/// spread): a calibration on few windows must not make the model raise at
/// every twitch.
pub const THRESHOLD_FLOOR: f64 = 3.0;

/// How to cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// k-means, k chosen by the silhouette.
    Kmeans,
    /// A Gaussian mixture, k chosen by BIC; its means are the centres.
    Gmm,
}

/// Settings of a fit.
#[derive(Clone, Copy, Debug)]
pub struct FitConfig {
    pub algorithm: Algorithm,
    pub k_min: usize,
    pub k_max: usize,
    pub seed: u64,
    /// Fraction of the windows held back to calibrate the thresholds.
    pub held_out: f64,
    /// False alarms per window the thresholds aim at.
    pub false_alarm_rate: f64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            algorithm: Algorithm::Kmeans,
            k_min: 2,
            k_max: 10,
            seed: 1,
            held_out: 0.2,
            false_alarm_rate: 0.001,
        }
    }
}

/// A window to learn from, and whether a labelled attack phase covers it.
#[derive(Clone, Debug)]
pub struct Labelled {
    pub window: Window,
    pub attack: bool,
}

/// Why a model could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("{normal} normal windows: at least {needed} are needed to fit a model")]
    TooFew { normal: usize, needed: usize },
    #[error("clustering failed: {0}")]
    Clustering(String),
    #[error("k range {min}..={max} is empty or below 1")]
    KRange { min: usize, max: usize },
}

/// What the fit saw, for the model card and the plots.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    /// Score of every held-back window and its cluster.
    pub held_out_scores: Vec<(usize, f64)>,
    /// A 2-D projection (first two principal components) of up to
    /// [`SILHOUETTE_SAMPLE`] fit windows, with their clusters.
    pub projection: Vec<(f64, f64, usize)>,
}

/// Fits a model. `inputs` are recorded in the model's training summary.
pub fn fit(
    windows: &[Labelled],
    inputs: &[String],
    cfg: &FitConfig,
) -> Result<(ModelArtifact, FitReport), FitError> {
    if cfg.k_min < 1 || cfg.k_max < cfg.k_min {
        return Err(FitError::KRange {
            min: cfg.k_min,
            max: cfg.k_max,
        });
    }
    let normal: Vec<&Window> = windows
        .iter()
        .filter(|l| !l.attack)
        .map(|l| &l.window)
        .collect();
    let needed = (cfg.k_max * 10).max(50);
    if normal.len() < needed {
        return Err(FitError::TooFew {
            normal: normal.len(),
            needed,
        });
    }
    let (fit_set, held): (Vec<&Window>, Vec<&Window>) = normal
        .iter()
        .partition(|w| !held_back(w, cfg.seed, cfg.held_out));
    let raw = matrix(&fit_set);
    let (center, scale) = robust_scale(&raw);
    let scaled = apply_scale(&raw, &center, &scale);

    let sample = every_nth(&scaled, FIT_SAMPLE);
    let judge = every_nth(&scaled, SILHOUETTE_SAMPLE);
    let mut tried = Vec::new();
    let mut best: Option<(f64, Array2<f64>)> = None;
    for k in cfg.k_min
        ..=cfg
            .k_max
            .min(judge.nrows().saturating_sub(1))
            .max(cfg.k_min)
    {
        let centroids = cluster(&sample, k, cfg)?;
        let quality = match cfg.algorithm {
            Algorithm::Kmeans => silhouette(&judge, &centroids),
            Algorithm::Gmm => -bic(&judge, &centroids),
        };
        tried.push((k, (quality * 10_000.0).round() / 10_000.0));
        if best.as_ref().is_none_or(|(q, _)| quality > *q) {
            best = Some((quality, centroids));
        }
    }
    let Some((_, centroids)) = best else {
        return Err(FitError::TooFew {
            normal: normal.len(),
            needed,
        });
    };

    // Spreads: per cluster and feature, the root mean square deviation of
    // the fit windows from the centre.
    let k = centroids.nrows();
    let mut sizes = vec![0u64; k];
    let mut squares = Array2::<f64>::zeros((k, FEATURE_COUNT));
    for row in scaled.rows() {
        let c = nearest(&centroids, row);
        sizes[c] += 1;
        let d = &row - &centroids.row(c);
        let mut acc = squares.row_mut(c);
        acc += &(&d * &d);
    }
    let spreads: Vec<Vec<f64>> = (0..k)
        .map(|c| {
            let n = sizes[c].max(1) as f64;
            squares
                .row(c)
                .iter()
                .map(|s| (s / n).sqrt().max(SPREAD_FLOOR))
                .collect()
        })
        .collect();

    // Thresholds from the held-back windows' scores.
    let held_raw = matrix(&held);
    let held_scaled = apply_scale(&held_raw, &center, &scale);
    let mut per_cluster: Vec<Vec<f64>> = vec![Vec::new(); centroids.nrows()];
    let mut held_out_scores = Vec::with_capacity(held_scaled.nrows());
    for row in held_scaled.rows() {
        let c = nearest(&centroids, row);
        let s = deviation(&row.to_vec(), &centroids.row(c).to_vec(), &spreads[c]);
        per_cluster[c].push(s);
        held_out_scores.push((c, s));
    }
    let mut pooled: Vec<f64> = held_out_scores.iter().map(|(_, s)| *s).collect();
    let q = 1.0 - cfg.false_alarm_rate;
    let pooled_threshold = quantile(&mut pooled, q).max(THRESHOLD_FLOOR);
    let thresholds: Vec<f64> = per_cluster
        .iter_mut()
        .map(|s| {
            if s.len() >= OWN_THRESHOLD_MIN {
                quantile(s, q).max(THRESHOLD_FLOOR)
            } else {
                pooled_threshold
            }
        })
        .collect();
    let over = held_out_scores
        .iter()
        .filter(|(c, s)| *s > thresholds[*c])
        .count();

    let clusters = centroids
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, c)| Cluster {
            centroid: c.to_vec(),
            spread: spreads[i].clone(),
            threshold: thresholds[i],
            size: sizes[i],
        })
        .collect();
    let devices: std::collections::BTreeSet<[u8; 6]> =
        windows.iter().map(|l| l.window.device).collect();
    let mut artifact = ModelArtifact {
        format: MODEL_FORMAT.to_string(),
        version: MODEL_VERSION,
        spanwatch_version: env!("CARGO_PKG_VERSION").to_string(),
        model_id: String::new(),
        features: FEATURES.iter().map(|f| f.name.to_string()).collect(),
        log1p: true,
        center: center.to_vec(),
        scale: scale.to_vec(),
        clusters,
        training: Training {
            inputs: inputs.to_vec(),
            windows: windows.len() as u64,
            attack_windows_excluded: (windows.len() - normal.len()) as u64,
            fit_windows: fit_set.len() as u64,
            held_out_windows: held.len() as u64,
            devices: devices.len() as u64,
            target_false_alarm_rate: cfg.false_alarm_rate,
            held_out_false_alarm_rate: if held.is_empty() {
                0.0
            } else {
                over as f64 / held.len() as f64
            },
            k_silhouette: tried,
            seed: cfg.seed,
            algorithm: match cfg.algorithm {
                Algorithm::Kmeans => "kmeans".into(),
                Algorithm::Gmm => "gmm".into(),
            },
        },
    };
    artifact.model_id = model_id(&artifact);
    let projection = project(&judge, &centroids);
    Ok((
        artifact,
        FitReport {
            held_out_scores,
            projection,
        },
    ))
}

/// Whether a window is held back for calibration: a stable hash of its
/// device and start, so the same data always splits the same way.
fn held_back(w: &Window, seed: u64, fraction: f64) -> bool {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(&w.device);
    h.update(&w.start.0.to_le_bytes());
    let bytes = h.finalize();
    let x = u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    (x as f64 / u64::MAX as f64) < fraction
}

fn matrix(windows: &[&Window]) -> Array2<f64> {
    let mut m = Array2::zeros((windows.len(), FEATURE_COUNT));
    for (mut row, w) in m.rows_mut().into_iter().zip(windows) {
        for (x, v) in row.iter_mut().zip(w.values) {
            *x = v.max(0.0).ln_1p();
        }
    }
    m
}

/// Per feature: the median, and the interquartile range (at least
/// [`SCALE_FLOOR`]).
fn robust_scale(m: &Array2<f64>) -> (Array1<f64>, Array1<f64>) {
    let mut center = Array1::zeros(m.ncols());
    let mut scale = Array1::zeros(m.ncols());
    for (j, col) in m.axis_iter(Axis(1)).enumerate() {
        let mut v = col.to_vec();
        center[j] = quantile(&mut v, 0.5);
        let iqr = quantile(&mut v, 0.75) - quantile(&mut v, 0.25);
        scale[j] = iqr.max(SCALE_FLOOR);
    }
    (center, scale)
}

fn apply_scale(m: &Array2<f64>, center: &Array1<f64>, scale: &Array1<f64>) -> Array2<f64> {
    (m - center) / scale
}

/// Every n-th row so that at most `max` remain (deterministic).
fn every_nth(m: &Array2<f64>, max: usize) -> Array2<f64> {
    if m.nrows() <= max {
        return m.clone();
    }
    let step = m.nrows().div_ceil(max);
    let rows: Vec<usize> = (0..m.nrows()).step_by(step).collect();
    m.select(Axis(0), &rows)
}

fn cluster(data: &Array2<f64>, k: usize, cfg: &FitConfig) -> Result<Array2<f64>, FitError> {
    let ds = DatasetBase::from(data.clone());
    let rng = Xoshiro256Plus::seed_from_u64(cfg.seed);
    match cfg.algorithm {
        Algorithm::Kmeans => {
            let m = KMeans::params_with_rng(k, rng)
                .max_n_iterations(300)
                .tolerance(1e-6)
                .n_runs(4)
                .fit(&ds)
                .map_err(|e| FitError::Clustering(e.to_string()))?;
            Ok(m.centroids().clone())
        }
        Algorithm::Gmm => {
            let m = GaussianMixtureModel::params_with_rng(k, rng)
                .n_runs(2)
                .max_n_iterations(200)
                .reg_covariance(1e-3)
                .fit(&ds)
                .map_err(|e| FitError::Clustering(e.to_string()))?;
            Ok(m.means().clone())
        }
    }
}

fn distance(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn nearest(centroids: &Array2<f64>, row: ArrayView1<f64>) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.rows().into_iter().enumerate() {
        let d = distance(c, row);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// Mean silhouette (Rousseeuw 1987) of `data` clustered by nearest centre;
/// in -1..=1, higher is better separated.
fn silhouette(data: &Array2<f64>, centroids: &Array2<f64>) -> f64 {
    let labels: Vec<usize> = data
        .rows()
        .into_iter()
        .map(|r| nearest(centroids, r))
        .collect();
    let k = centroids.nrows();
    let mut total = 0.0;
    for (i, row) in data.rows().into_iter().enumerate() {
        let mut sum = vec![0.0; k];
        let mut count = vec![0usize; k];
        for (j, other) in data.rows().into_iter().enumerate() {
            if i != j {
                sum[labels[j]] += distance(row, other);
                count[labels[j]] += 1;
            }
        }
        let own = labels[i];
        if count[own] == 0 {
            continue;
        }
        let a = sum[own] / count[own] as f64;
        let b = (0..k)
            .filter(|&c| c != own && count[c] > 0)
            .map(|c| sum[c] / count[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b).max(f64::MIN_POSITIVE);
        }
    }
    total / data.nrows().max(1) as f64
}

/// Bayesian information criterion of a spherical Gaussian mixture with
/// these centres, one shared variance (lower is better).
fn bic(data: &Array2<f64>, centroids: &Array2<f64>) -> f64 {
    let n = data.nrows() as f64;
    let d = data.ncols() as f64;
    let k = centroids.nrows() as f64;
    let sse: f64 = data
        .rows()
        .into_iter()
        .map(|r| {
            let c = nearest(centroids, r);
            distance(centroids.row(c), r).powi(2)
        })
        .sum();
    let variance = (sse / (n * d)).max(1e-9);
    let log_likelihood = -0.5 * n * d * ((2.0 * std::f64::consts::PI * variance).ln() + 1.0);
    let params = k * d + (k - 1.0) + 1.0;
    params * n.ln() - 2.0 * log_likelihood
}

/// The `q` quantile (0..=1) of `v` (sorted in place), nearest rank.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Rows projected on the first two principal components (power iteration),
/// with each row's cluster.
fn project(data: &Array2<f64>, centroids: &Array2<f64>) -> Vec<(f64, f64, usize)> {
    let Some(mean) = data.mean_axis(Axis(0)) else {
        return Vec::new();
    };
    let centred = data - &mean;
    let cov = centred.t().dot(&centred) / (data.nrows().max(2) - 1) as f64;
    let first = principal(&cov, None);
    let second = principal(&cov, Some(&first));
    centred
        .rows()
        .into_iter()
        .zip(data.rows())
        .map(|(c, r)| (c.dot(&first), c.dot(&second), nearest(centroids, r)))
        .collect()
}

/// The leading eigenvector of a covariance matrix, orthogonal to `not`.
fn principal(cov: &Array2<f64>, not: Option<&Array1<f64>>) -> Array1<f64> {
    let n = cov.nrows();
    let mut v = Array1::from_iter((0..n).map(|i| 1.0 + i as f64 / n as f64));
    for _ in 0..200 {
        let mut next = cov.dot(&v);
        if let Some(u) = not {
            let along = next.dot(u);
            next = next - u * along;
        }
        let norm = next.dot(&next).sqrt();
        if norm <= f64::MIN_POSITIVE {
            break;
        }
        v = next / norm;
    }
    v
}

/// A short hash of the model's content: the same data and seed give the
/// same id.
fn model_id(a: &ModelArtifact) -> String {
    let text = serde_json::to_string(a).unwrap_or_default();
    let hash = blake3::hash(text.as_bytes());
    hash.to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::detect::model::Model;
    use crate::features::{Feature, WindowNotes};

    /// Deterministic noise in [0, 1) (a 64-bit LCG, Knuth's MMIX constants).
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `n` windows of two kinds of device: sensors (a few packets, one
    /// publish) and a hub (hundreds of packets, many flows), with noise.
    fn fleet(n: usize) -> Vec<Labelled> {
        let mut noise = Noise(7);
        (0..n)
            .map(|i| {
                let hub = i % 4 == 0;
                let mut values = [0.0; FEATURE_COUNT];
                let mut set = |f: Feature, base: f64| {
                    values[f.index()] = (base * (0.7 + 0.6 * noise.next())).round();
                };
                if hub {
                    set(Feature::PacketsOut, 400.0);
                    set(Feature::PacketsIn, 380.0);
                    set(Feature::FlowsOut, 30.0);
                    set(Feature::HttpRequests, 20.0);
                } else {
                    set(Feature::PacketsOut, 6.0);
                    set(Feature::PacketsIn, 4.0);
                    set(Feature::MqttPublishOut, 2.0);
                }
                let device = [2, 0, 0, 0, (i % 64) as u8, u8::from(hub)];
                let end = (i as i64 / 64 + 1) * 10 * Timestamp::NANOS_PER_SEC;
                Labelled {
                    window: Window {
                        device,
                        start: Timestamp(end - 10 * Timestamp::NANOS_PER_SEC),
                        end: Timestamp(end),
                        values,
                        notes: WindowNotes::default(),
                    },
                    attack: false,
                }
            })
            .collect()
    }

    /// k from 2 to 4 (the default range is slow in a debug build).
    fn small() -> FitConfig {
        FitConfig {
            k_max: 4,
            ..FitConfig::default()
        }
    }

    #[test]
    fn two_kinds_of_device_make_two_clusters_and_an_outlier_scores_over() {
        let mut windows = fleet(1_000);
        let mut flood = windows[1].window.clone();
        flood.values[Feature::FlowsOut.index()] = 800.0;
        windows.push(Labelled {
            window: flood.clone(),
            attack: true,
        });
        let (a, report) = fit(&windows, &["fleet".into()], &small()).expect("fit");
        assert_eq!(a.clusters.len(), 2, "{:?}", a.training.k_silhouette);
        assert_eq!(a.training.attack_windows_excluded, 1);
        assert_eq!(a.training.fit_windows + a.training.held_out_windows, 1_000);
        let held = a.training.held_out_windows as f64;
        assert!(
            (150.0..250.0).contains(&held),
            "about 20 % held back: {held}"
        );
        assert_eq!(
            report.held_out_scores.len() as u64,
            a.training.held_out_windows
        );
        let m = Model::new(a);
        let s = m.score(&flood.values);
        assert!(s.is_anomaly(), "a sensor opening 800 flows: {s:?}");
        let normal = m.score(&windows[1].window.values);
        assert!(!normal.is_anomaly(), "{normal:?}");
    }

    #[test]
    fn the_same_data_and_seed_give_the_same_model_and_a_saved_one_scores_the_same() {
        let windows = fleet(600);
        let cfg = small();
        let (a, _) = fit(&windows, &[], &cfg).expect("fit");
        let (b, _) = fit(&windows, &[], &cfg).expect("fit again");
        assert_eq!(a, b);
        assert!(!a.model_id.is_empty());
        let other = fit(&windows, &[], &FitConfig { seed: 2, ..cfg })
            .expect("seed 2")
            .0;
        assert_ne!(other.model_id, a.model_id, "the seed is part of the model");

        let dir = std::env::temp_dir().join(format!("spanwatch-fit-{}", std::process::id()));
        a.save(&dir).expect("save");
        let loaded = ModelArtifact::load(&dir).expect("load");
        let (before, after) = (Model::new(a), Model::new(loaded));
        for l in &windows {
            assert_eq!(
                before.score(&l.window.values),
                after.score(&l.window.values),
                "bit for bit"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn too_few_windows_or_an_empty_k_range_are_refused() {
        let e = fit(&fleet(40), &[], &FitConfig::default()).expect_err("too few");
        assert!(
            matches!(
                e,
                FitError::TooFew {
                    normal: 40,
                    needed: 100
                }
            ),
            "{e}"
        );
        let cfg = FitConfig {
            k_min: 5,
            k_max: 4,
            ..FitConfig::default()
        };
        assert!(matches!(
            fit(&fleet(500), &[], &cfg),
            Err(FitError::KRange { .. })
        ));
    }
}
