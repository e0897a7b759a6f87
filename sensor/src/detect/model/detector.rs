//! The model as a detector: every window is scored; a device whose window
//! crosses its threshold opens an **episode**, which is one finding however
//! many windows it lasts, and ends after [`QUIET_WINDOWS`] normal windows.
//! Within an episode a window raises again only when it shows another
//! behaviour (its most deviating feature is one the episode has not shown)
//! or when it is more severe.
//!
//! Learning: for the first `learn` seconds of packet time (from the first
//! window) nothing is raised; each device's highest score is kept, and after
//! learning a device alerts only above the higher of its cluster's threshold
//! and [`LEARNED_MARGIN`] times its own learned highest score (its own
//! normal, which the fleet model may find unusual).

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;
use std::net::IpAddr;

use serde::Serialize;

use super::score::{Deviation, Model, Score};
use crate::capture::Timestamp;
use crate::device::inventory::parse_mac;
use crate::features::Window;

/// Normal windows that end an episode.
pub const QUIET_WINDOWS: u32 = 3;
/// A device's learned highest score is raised by this factor into its own
/// threshold.
pub const LEARNED_MARGIN: f64 = 1.25;
/// Devices whose learned scores are kept.
pub const MAX_LEARNED_DEVICES: usize = 65_536;

/// Severity of a finding by how far its score is over the threshold.
pub fn severity(excess: f64) -> u8 {
    if excess >= 3.0 {
        1
    } else if excess >= 1.5 {
        2
    } else {
        3
    }
}

/// A device's anomalous behaviour, for the alert stage.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFinding {
    pub device: [u8; 6],
    /// The device's address, when known.
    pub ip: Option<IpAddr>,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub score: Score,
    /// The threshold that applied (the device's own when learned).
    pub threshold: f64,
    pub severity: u8,
    pub deviations: Vec<Deviation>,
    pub model_id: String,
    /// Numbers the findings of one run: the alert stage keeps each apart.
    pub finding_id: u64,
}

/// Behaviours (most deviating features) one episode remembers.
pub const MAX_EPISODE_BEHAVIOURS: usize = 8;

#[derive(Clone, Debug, Default)]
struct Episode {
    /// Consecutive normal windows.
    quiet: u32,
    /// Severity raised so far in this episode.
    severity: u8,
    /// The most deviating feature of each finding raised.
    behaviours: Vec<&'static str>,
}

/// Counters of the model.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ModelStats {
    pub windows_scored: u64,
    pub anomalous_windows: u64,
    pub findings: u64,
    /// Windows scored while learning.
    pub learning_windows: u64,
}

/// Scores windows and turns anomalies into findings, once per episode.
#[derive(Debug)]
pub struct ModelDetector {
    model: Model,
    learn_nanos: i64,
    learn_until: Option<Timestamp>,
    learned: HashMap<[u8; 6], f64, RandomState>,
    episodes: HashMap<[u8; 6], Episode, RandomState>,
    stats: ModelStats,
}

impl ModelDetector {
    /// `learn_secs` of packet time learn each device's own normal first.
    pub fn new(model: Model, learn_secs: u64) -> Self {
        ModelDetector {
            model,
            learn_nanos: i64::try_from(learn_secs)
                .unwrap_or(i64::MAX / Timestamp::NANOS_PER_SEC)
                .saturating_mul(Timestamp::NANOS_PER_SEC),
            learn_until: None,
            learned: HashMap::default(),
            episodes: HashMap::default(),
            stats: ModelStats::default(),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    /// Goes on counting from `stats` (the counters of the detector this one
    /// replaces), so that counters never go backwards across a reload.
    pub fn continue_counts(&mut self, stats: ModelStats) {
        self.stats = stats;
    }

    /// Continues from a saved learning: MAC (as text) → the device's own
    /// highest score.
    pub fn restore(&mut self, scores: &BTreeMap<String, f64>) {
        for (mac, score) in scores {
            if let Some(m) = parse_mac(mac)
                && score.is_finite()
                && self.learned.len() < MAX_LEARNED_DEVICES
            {
                self.learned.insert(m, *score);
            }
        }
    }

    /// What learning kept, to save: MAC (as text) → highest score.
    pub fn learned(&self) -> BTreeMap<String, f64> {
        self.learned
            .iter()
            .map(|(m, s)| (crate::device::inventory::MacText(*m).to_string(), *s))
            .collect()
    }

    /// Whether `ts` is still in the learning period.
    pub fn learning(&self, ts: Timestamp) -> bool {
        self.learn_until.is_some_and(|until| ts < until)
    }

    /// Scores one window; a finding when it opens (or worsens) an episode.
    pub fn window(&mut self, w: &Window, ip: Option<IpAddr>) -> Option<ModelFinding> {
        self.stats.windows_scored += 1;
        let until = *self
            .learn_until
            .get_or_insert(Timestamp(w.start.0.saturating_add(self.learn_nanos)));
        let score = self.model.score(&w.values);
        if w.end <= until && self.learn_nanos > 0 {
            self.stats.learning_windows += 1;
            if self.learned.len() < MAX_LEARNED_DEVICES || self.learned.contains_key(&w.device) {
                let best = self.learned.entry(w.device).or_insert(0.0);
                *best = best.max(score.score);
            }
            return None;
        }
        let own = self
            .learned
            .get(&w.device)
            .map_or(0.0, |s| s * LEARNED_MARGIN);
        let threshold = score.threshold.max(own);
        let episode = self.episodes.entry(w.device).or_default();
        if score.score <= threshold {
            episode.quiet += 1;
            if episode.quiet >= QUIET_WINDOWS {
                self.episodes.remove(&w.device);
            }
            return None;
        }
        self.stats.anomalous_windows += 1;
        episode.quiet = 0;
        let severity = severity(score.score / threshold);
        let deviations = self.model.explain(&w.values, score.cluster);
        let behaviour = deviations.first().map_or("", |d| d.feature);
        let new_behaviour = !episode.behaviours.contains(&behaviour);
        let worse = episode.severity == 0 || severity < episode.severity;
        if !new_behaviour && !worse {
            return None;
        }
        episode.severity = if new_behaviour {
            severity
        } else {
            episode.severity.min(severity)
        };
        if new_behaviour && episode.behaviours.len() < MAX_EPISODE_BEHAVIOURS {
            episode.behaviours.push(behaviour);
        }
        self.stats.findings += 1;
        Some(ModelFinding {
            device: w.device,
            ip,
            window_start: w.start,
            window_end: w.end,
            score,
            threshold,
            severity,
            deviations,
            model_id: self.model.id().to_string(),
            finding_id: self.stats.findings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::model::artifact::tests::two_clusters;
    use crate::features::{FEATURE_COUNT, Feature, WindowNotes};

    const DEV: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x15];

    /// A window of DEV ending at `end` s with `value` in `feature` (the
    /// test model has no transform: values are scaled values).
    fn window(end: i64, feature: Feature, value: f64) -> Window {
        let mut values = [0.0; FEATURE_COUNT];
        values[feature.index()] = value;
        Window {
            device: DEV,
            start: Timestamp((end - 10) * Timestamp::NANOS_PER_SEC),
            end: Timestamp(end * Timestamp::NANOS_PER_SEC),
            values,
            notes: WindowNotes::default(),
        }
    }

    #[test]
    fn an_episode_is_one_finding_until_it_shows_another_behaviour_or_worsens() {
        let mut d = ModelDetector::new(Model::new(two_clusters()), 0);
        // 20 units in one of 33 features: sqrt(400 / 33) = 3.48, over 3.
        let flows = |end| window(end, Feature::FlowsOut, 20.0);
        let first = d.window(&flows(10), None).expect("opens an episode");
        assert_eq!(first.severity, 3, "excess 1.16 is low");
        assert_eq!(first.deviations[0].feature, "flows_out");
        assert!(d.window(&flows(20), None).is_none(), "same behaviour");
        let worse = d.window(&window(30, Feature::FlowsOut, 40.0), None);
        assert_eq!(worse.expect("worse").severity, 2, "6.96 / 3 = 2.3: medium");
        let other = d.window(&window(40, Feature::MqttConnect, 20.0), None);
        assert_eq!(
            other.expect("another behaviour").deviations[0].feature,
            "mqtt_connect"
        );
        // Three normal windows end the episode; the same behaviour opens a
        // new one.
        for end in [50, 60, 70] {
            assert!(
                d.window(&window(end, Feature::FlowsOut, 0.0), None)
                    .is_none()
            );
        }
        assert!(d.window(&flows(80), None).is_some());
        assert_eq!(d.stats().findings, 4);
        assert_eq!(d.stats().windows_scored, 8);
    }

    #[test]
    fn learning_raises_a_device_threshold_to_its_own_normal() {
        let mut d = ModelDetector::new(Model::new(two_clusters()), 30);
        // Learning (the first 30 s): a score of 3.48 is this device's normal.
        for end in [10, 20, 30] {
            assert!(
                d.window(&window(end, Feature::FlowsOut, 20.0), None)
                    .is_none()
            );
        }
        assert!(d.learning(Timestamp(25 * Timestamp::NANOS_PER_SEC)));
        let learned = d.learned();
        let own = learned["02:77:00:00:00:15"];
        assert!((own - (400.0f64 / 33.0).sqrt()).abs() < 1e-12);
        // After: up to 1.25 × 3.48 = 4.35 is still normal; 30 units
        // (5.22) is not, and the finding carries the device's threshold.
        assert!(
            d.window(&window(40, Feature::FlowsOut, 24.0), None)
                .is_none()
        );
        let f = d
            .window(&window(50, Feature::FlowsOut, 30.0), None)
            .expect("over its own");
        assert!((f.threshold - own * LEARNED_MARGIN).abs() < 1e-12);

        // A restart with the saved learning behaves the same, at once.
        let mut again = ModelDetector::new(Model::new(two_clusters()), 0);
        again.restore(&learned);
        assert!(
            again
                .window(&window(40, Feature::FlowsOut, 24.0), None)
                .is_none()
        );
        assert!(
            again
                .window(&window(50, Feature::FlowsOut, 30.0), None)
                .is_some()
        );
    }
}
