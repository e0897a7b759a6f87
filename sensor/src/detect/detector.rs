//! The detection stage: normalised events → rule engine → alerts.

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::event::RuleEvent;
use super::normalize::{Normalizer, PacketNote};
use super::rules::{Engine, EngineLimits, EngineStats, RuleMatch, RuleSet};
use crate::alert::{AlertError, AlertInput, AlertSource, AlertStats, Alerter};
use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo};
use crate::proto::dispatch::{AppEvent, AppProto};

/// Rules and alerts of a run.
pub struct Detector {
    normalizer: Normalizer,
    engine: Engine,
    alerter: Alerter,
    events: Vec<RuleEvent>,
    matches: Vec<RuleMatch>,
}

/// What detection did, for the summary.
#[derive(Clone, Debug, Serialize)]
pub struct DetectionSummary {
    pub rules: usize,
    pub engine: EngineStats,
    pub alerts: AlertStats,
}

impl Detector {
    pub fn new(rules: RuleSet, limits: EngineLimits, alerter: Alerter) -> Self {
        Detector {
            normalizer: Normalizer::default(),
            engine: Engine::new(rules, limits),
            alerter,
            events: Vec::new(),
            matches: Vec::new(),
        }
    }

    /// Replace the rules (SIGHUP); counters are kept.
    pub fn reload(&mut self, rules: RuleSet) {
        self.engine.reload(rules);
    }

    /// The alert path, to change its settings or sinks (SIGHUP).
    pub fn alerter_mut(&mut self) -> &mut Alerter {
        &mut self.alerter
    }

    pub fn packet(&mut self, flow: &FlowInfo, dir: Direction, pkt: &PacketNote, established: bool) {
        self.normalizer
            .packet(flow, dir, pkt, established, &mut self.events);
        self.run();
    }

    pub fn detect(&mut self, flow: &FlowInfo, proto: AppProto) {
        self.normalizer.detect(flow, proto, &mut self.events);
        self.run();
    }

    pub fn close(&mut self, flow: &FlowInfo, proto: Option<AppProto>) {
        self.normalizer.close(flow, proto, &mut self.events);
        self.run();
    }

    pub fn event(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, event: AppEvent<'_>) {
        self.normalizer
            .event(flow, ts, dir, event, &mut self.events);
        self.run();
    }

    fn run(&mut self) {
        for ev in self.events.drain(..) {
            self.engine.on_event(&ev, &mut self.matches);
        }
        for m in self.matches.drain(..) {
            self.alerter.raise(alert_input(&m));
        }
    }

    /// Flush every alert sink (end of input, shutdown).
    pub fn flush(&mut self) -> Result<(), AlertError> {
        self.alerter.flush()
    }

    pub fn summary(&self) -> DetectionSummary {
        DetectionSummary {
            rules: self.engine.rules().len(),
            engine: self.engine.stats(),
            alerts: self.alerter.stats(),
        }
    }
}

/// A rule match as an alert: the event's endpoints (client → server), the
/// rule's identity and references, and the evidence (never a password).
fn alert_input(m: &RuleMatch) -> AlertInput {
    let ev = &m.event;
    let rule = &m.rule;
    let mut evidence = Map::new();
    if let Some(n) = m.evidence.count {
        evidence.insert("count".into(), Json::from(n));
    }
    if let Some(n) = m.evidence.distinct {
        evidence.insert("distinct".into(), Json::from(n));
    }
    if let Some(n) = m.evidence.window_secs {
        evidence.insert("window_secs".into(), Json::from(n));
    }
    if let Some(u) = &m.evidence.user {
        evidence.insert("user".into(), Json::from(u.as_str()));
    }
    for (k, v) in &m.evidence.detail {
        evidence.insert(k.clone(), Json::from(v.as_str()));
    }
    evidence.insert("event".into(), Json::from(ev.kind));
    let app_proto = match ev.proto {
        "tcp" | "udp" => None,
        other => Some(other),
    };
    AlertInput {
        ts: ev.ts,
        src: ev.src,
        dst: ev.dst,
        transport: ev.transport,
        app_proto,
        flow_id: ev.flow_id,
        signature_id: rule.id,
        signature: rule.name.clone(),
        category: rule.category.clone(),
        severity: rule.severity.as_u8(),
        source: AlertSource::Rule,
        references: rule.references.iter().map(|r| r.to_string()).collect(),
        device_mac: ev.src_mac,
        evidence,
        score: None,
        threshold: None,
        top_features: Vec::new(),
        dedupe_key: (rule.id, ev.src.0, ev.dst.0),
    }
}
