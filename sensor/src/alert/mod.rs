//! The alert stage: EVE JSON records, deduplication, aggregation and rate
//! limiting, sinks.
//!
//! Every detector (the rules, [`from_rule`]; the model next) hands an
//! [`AlertInput`] to the one [`Alerter`], which deduplicates per (rule,
//! source, target) for targeted attacks, aggregates per (rule, target) or
//! (rule, source) for distributed floods and sweeps (the rule says which, see
//! [`limit`]), caps the global rate on packet time (so replays are
//! deterministic), turns what passes into one Suricata EVE `alert` line
//! ([`eve`], schema in `rules/eve-alert.schema.json`) and writes it to every
//! [`Sink`]: stdout, an append-only file, a webhook, an exec action.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::capture::Timestamp;
use crate::detect::rules::RuleMatch;

pub mod eve;
mod exec;
pub mod from_model;
pub mod from_profile;
pub mod from_rule;
pub mod limit;
mod sink;
mod webhook;

pub use eve::{DeviceInfo, EveAlertInfo, EveRecord, SpanwatchInfo};
pub use exec::{ExecConfig, ExecSink, MAX_EXEC_CONCURRENT};
pub use limit::{DedupeKey, DistinctCount};
pub use sink::{
    EveLine, FILE_BUFFER_LIMIT_BYTES, FileSink, Sink, SinkStats, StdoutSink, WriterSink,
};
pub use webhook::{MAX_WEBHOOK_QUEUE_LEN, MAX_WEBHOOK_RETRIES, WebhookConfig, WebhookSink};

use limit::{Decision, Limiter};

/// Per-signature rows kept for the end-of-run alert table; more signatures
/// than this are counted in [`AlertStats::signatures_untracked`].
pub const MAX_TRACKED_SIGNATURES: usize = 4096;

/// Who raised the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSource {
    Rule,
    Model,
    /// The detections on device profiles.
    Profile,
}

/// What a rule match or a model score hands to the [`Alerter`].
#[derive(Clone, Debug)]
pub struct AlertInput {
    /// Packet time of the event that completed the match.
    pub ts: Timestamp,
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    /// IANA protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub transport: u8,
    /// EVE `app_proto` ("http", "mqtt", "coap", "telnet", "dhcp"), when known.
    pub app_proto: Option<&'static str>,
    pub flow_id: u64,
    pub signature_id: u32,
    pub signature: String,
    pub category: String,
    /// 1 high, 2 medium, 3 low.
    pub severity: u8,
    pub source: AlertSource,
    pub references: Vec<String>,
    /// MAC of the source device, when known.
    pub device_mac: Option<[u8; 6]>,
    /// Counts, window, user name. Keys containing "pass" are removed.
    pub evidence: Map<String, Value>,
    /// Model alerts: anomaly score and the threshold it crossed.
    pub score: Option<f64>,
    pub threshold: Option<f64>,
    /// Model alerts: the most deviating features (baseline vs observed).
    pub top_features: Vec<Value>,
    /// Names the finding for `spanwatch learn` (see [`crate::detect::learned`]).
    pub key: String,
    /// What the alert is deduplicated and aggregated by: usually
    /// [`DedupeKey::pair`] of the signature, source and target.
    pub dedupe_key: DedupeKey,
}

/// What an alert is decided by before it is built in full: whether it is
/// routine (learned or accepted, see the pipeline's detection stage), and
/// deduplication, rate limits and the per-signature counts
/// ([`Alerter::admit`]).
#[derive(Clone, Copy, Debug)]
pub struct AlertHead<'a> {
    /// Its name for `spanwatch learn` ([`AlertInput::key`]).
    pub key: HeadKey<'a>,
    pub dedupe_key: DedupeKey,
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: (IpAddr, u16),
    pub transport: u8,
    pub device_mac: Option<[u8; 6]>,
    pub signature_id: u32,
    pub signature: &'a str,
    pub severity: u8,
    pub source: AlertSource,
}

/// An alert's name for `spanwatch learn`: an alert's own, or a rule
/// match's, made when it is read.
#[derive(Clone, Copy, Debug)]
pub enum HeadKey<'a> {
    Made(&'a str),
    Rule(&'a RuleMatch),
}

impl<'a> AlertHead<'a> {
    pub fn of(a: &'a AlertInput) -> Self {
        AlertHead {
            key: HeadKey::Made(&a.key),
            dedupe_key: a.dedupe_key,
            ts: a.ts,
            src: a.src.0,
            dst: a.dst,
            transport: a.transport,
            device_mac: a.device_mac,
            signature_id: a.signature_id,
            signature: &a.signature,
            severity: a.severity,
            source: a.source,
        }
    }
}

/// An alert [`Alerter::admit`] lets out: the repeats of its key suppressed
/// before it and, for an aggregated key, the distinct addresses among them
/// (and whether they were more than counted).
#[derive(Clone, Copy, Debug)]
pub struct Admitted {
    suppressed: u64,
    others: Option<(u64, bool)>,
}

/// Deduplication and rate limits (`[alerts]` config table).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// Repeats of a dedupe key within this many seconds of packet time after
    /// an emitted alert are suppressed and counted; 0 emits every alert.
    pub dedupe_secs: u64,
    /// Global cap per second of packet time; 0 means no cap.
    pub max_alerts_per_sec: u32,
    /// Dedupe keys remembered; the least recently seen is evicted beyond.
    pub max_keys: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            dedupe_secs: 60,
            max_alerts_per_sec: 100,
            max_keys: 65_536,
        }
    }
}

/// Errors from building sinks and flushing them.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot open alert file {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("invalid webhook URL {url:?}: {reason}")]
    WebhookUrl { url: String, reason: &'static str },
    #[error("invalid alert setting {key}: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("cannot start the {what}: {source}")]
    Spawn {
        what: &'static str,
        source: io::Error,
    },
    #[error("alert sink {sink}: {source}")]
    Sink {
        sink: &'static str,
        source: io::Error,
    },
}

/// One row of the alert table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignatureStats {
    pub signature_id: u32,
    pub signature: String,
    pub severity: u8,
    pub source: AlertSource,
    pub emitted: u64,
    /// Deduplicated or rate-limited.
    pub suppressed: u64,
}

/// Counters of the alert path.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertStats {
    /// Alerts handed to `raise`.
    pub raised: u64,
    /// Alerts written to the sinks.
    pub emitted: u64,
    /// Repeats inside the dedupe window.
    pub deduped: u64,
    /// Dropped by the global per-second cap.
    pub rate_limited: u64,
    /// Emitted alerts that stand for a target's or a source's repeats
    /// (aggregated keys, see [`limit`]).
    pub aggregated: u64,
    /// Dedupe keys held now.
    pub keys: usize,
    pub key_evictions: u64,
    /// Pending suppressed counts lost with evicted keys.
    pub suppressed_lost: u64,
    /// Evidence keys containing "pass" removed.
    pub evidence_keys_stripped: u64,
    /// Evidence strings cut and values dropped by the bounds.
    pub evidence_truncated: u64,
    /// Failed sink writes and flushes.
    pub sink_errors: u64,
    pub last_sink_error: Option<String>,
    pub sinks: Vec<(&'static str, SinkStats)>,
    /// By signature id.
    pub signatures: Vec<SignatureStats>,
    pub signatures_untracked: u64,
}

/// What an aggregated alert adds to its evidence: which side it is
/// aggregated over, and how many distinct addresses of that side the
/// suppressed repeats since the previous alert came from (an estimate, see
/// [`limit::DistinctCount`]; `_at_least` when it saturated).
fn aggregation_evidence(input: &mut AlertInput, distinct: u64, saturated: bool) {
    let (per, key) = if input.dedupe_key.source.is_none() {
        ("target", "suppressed_sources")
    } else {
        ("source", "suppressed_targets")
    };
    let key = if saturated {
        format!("{key}_at_least")
    } else {
        key.to_string()
    };
    input
        .evidence
        .insert("aggregated_per".into(), Value::from(per));
    input.evidence.insert(key, Value::from(distinct));
}

/// Deduplicates, rate-limits and fans alerts out to the sinks.
pub struct Alerter {
    limiter: Limiter,
    sinks: Vec<Box<dyn Sink>>,
    signatures: BTreeMap<u32, SignatureStats>,
    stats: AlertStats,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sinks.iter().map(|s| s.name()).collect();
        f.debug_struct("Alerter")
            .field("limiter", &self.limiter)
            .field("sinks", &names)
            .finish_non_exhaustive()
    }
}

impl Alerter {
    pub fn new(cfg: AlertConfig) -> Self {
        Alerter {
            limiter: Limiter::new(cfg.dedupe_secs, cfg.max_alerts_per_sec, cfg.max_keys),
            sinks: Vec::new(),
            signatures: BTreeMap::new(),
            stats: AlertStats::default(),
        }
    }

    pub fn add_sink(&mut self, sink: Box<dyn Sink>) {
        self.sinks.push(sink);
    }

    /// New deduplication and rate settings (SIGHUP). The remembered keys
    /// stay, so a repeat is judged by the new window from its last alert.
    pub fn reconfigure(&mut self, cfg: &AlertConfig) {
        self.limiter
            .reconfigure(cfg.dedupe_secs, cfg.max_alerts_per_sec, cfg.max_keys);
    }

    /// Replace the sinks (SIGHUP): the old ones are flushed first, so every
    /// alert raised so far reaches them. Every old sink is flushed; the first
    /// error is returned.
    pub fn replace_sinks(&mut self, sinks: Vec<Box<dyn Sink>>) -> Result<(), AlertError> {
        let flushed = self.flush();
        self.sinks = sinks;
        flushed
    }

    /// Emits `input` to every sink unless deduplicated or rate-limited;
    /// true when emitted. Sink errors are counted, not returned.
    pub fn raise(&mut self, input: AlertInput) -> bool {
        match self.admit(&AlertHead::of(&input)) {
            Some(admitted) => self.emit(input, admitted),
            None => false,
        }
    }

    /// The first half of [`Alerter::raise`]: counts an alert raised, and
    /// tells whether it goes out (not deduplicated, not rate-limited), so
    /// that an alert that does not is never built in full.
    pub fn admit(&mut self, head: &AlertHead<'_>) -> Option<Admitted> {
        self.stats.raised += 1;
        let key = head.dedupe_key;
        let other = if key.source.is_none() {
            head.src
        } else {
            head.dst.0
        };
        let decision = self.limiter.check(key, head.ts, other);
        self.count_signature(head, matches!(decision, Decision::Emit { .. }));
        match decision {
            Decision::Deduped => {
                self.stats.deduped += 1;
                None
            }
            Decision::RateLimited => {
                self.stats.rate_limited += 1;
                None
            }
            Decision::Emit { suppressed, others } => Some(Admitted { suppressed, others }),
        }
    }

    /// The second half of [`Alerter::raise`]: writes an admitted alert,
    /// whose head was `admit`ted; true when written.
    pub fn emit(&mut self, input: AlertInput, admitted: Admitted) -> bool {
        let Admitted { suppressed, others } = admitted;
        let mut input = input;
        if let Some((distinct, saturated)) = others {
            self.stats.aggregated += 1;
            aggregation_evidence(&mut input, distinct, saturated);
        }
        let (record, counts) = EveRecord::from_input(input, suppressed);
        self.stats.evidence_keys_stripped += counts.stripped_keys;
        self.stats.evidence_truncated += counts.truncated;
        let line = match serde_json::to_string(&record) {
            Ok(line) => line,
            Err(e) => {
                self.sink_error("serialiser", &io::Error::other(e));
                return false;
            }
        };
        self.stats.emitted += 1;
        let alert = EveLine { record, line };
        for i in 0..self.sinks.len() {
            let Some(sink) = self.sinks.get_mut(i) else {
                continue;
            };
            if let Err(e) = sink.write(&alert) {
                let name = sink.name();
                self.sink_error(name, &e);
            }
        }
        true
    }

    /// Flushes every sink (file buffers written, webhook queue drained,
    /// exec actions waited for, each bounded). Every sink is flushed; the
    /// first error is returned and all are counted.
    pub fn flush(&mut self) -> Result<(), AlertError> {
        let mut first = None;
        for i in 0..self.sinks.len() {
            let Some(sink) = self.sinks.get_mut(i) else {
                continue;
            };
            if let Err(source) = sink.flush() {
                let name = sink.name();
                self.sink_error(name, &source);
                first.get_or_insert(AlertError::Sink { sink: name, source });
            }
        }
        first.map_or(Ok(()), Err)
    }

    pub fn stats(&self) -> AlertStats {
        AlertStats {
            keys: self.limiter.keys(),
            key_evictions: self.limiter.evictions,
            suppressed_lost: self.limiter.lost_suppressed,
            sinks: self.sinks.iter().map(|s| (s.name(), s.stats())).collect(),
            signatures: self.signatures.values().cloned().collect(),
            ..self.stats.clone()
        }
    }

    fn sink_error(&mut self, sink: &str, e: &io::Error) {
        self.stats.sink_errors += 1;
        self.stats.last_sink_error = Some(format!("{sink}: {e}"));
    }

    /// Counts the alert in its signature's table row, created if there is room.
    fn count_signature(&mut self, head: &AlertHead<'_>, emitted: bool) {
        let full = self.signatures.len() >= MAX_TRACKED_SIGNATURES;
        if full && !self.signatures.contains_key(&head.signature_id) {
            self.stats.signatures_untracked += 1;
            return;
        }
        let row = self
            .signatures
            .entry(head.signature_id)
            .or_insert_with(|| SignatureStats {
                signature_id: head.signature_id,
                signature: head.signature.to_string(),
                severity: head.severity,
                source: head.source,
                emitted: 0,
                suppressed: 0,
            });
        if emitted {
            row.emitted += 1;
        } else {
            row.suppressed += 1;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    /// A fresh, empty directory for one test.
    pub(crate) fn test_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("spanwatch-alert-{}-{name}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear test dir");
        }
        std::fs::create_dir_all(&dir).expect("make test dir");
        dir
    }

    /// A Telnet brute-force rule alert; other tests rely on these values.
    pub(crate) fn rule_input() -> AlertInput {
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
        let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));
        let mut evidence = Map::new();
        evidence.insert("count".into(), Value::from(5));
        evidence.insert("window_secs".into(), Value::from(60));
        evidence.insert("user".into(), Value::from("root"));
        AlertInput {
            // 1700000000 s = 2023-11-14T22:13:20Z (`date -u -d @1700000000`).
            ts: Timestamp::from_secs_nanos(1_700_000_000, 123_456_789),
            src: (src, 40_000),
            dst: (dst, 23),
            transport: 6,
            app_proto: Some("telnet"),
            flow_id: 42,
            signature_id: 2_000_001,
            signature: "SPANWATCH Telnet brute force".into(),
            category: "Attempted Administrator Privilege Gain".into(),
            severity: 1,
            source: AlertSource::Rule,
            references: vec!["OWASP-IoT-2018:I1".into(), "ETSI-EN-303-645:5.1-1".into()],
            device_mac: Some([0x02, 0, 0, 0, 0, 0x0a]),
            evidence,
            score: None,
            threshold: None,
            top_features: Vec::new(),
            dedupe_key: DedupeKey::pair(2_000_001, src, dst),
            key: "rule:2000001:192.0.2.10:192.0.2.20".into(),
        }
    }

    fn model_input() -> AlertInput {
        let base = rule_input();
        let mut features = Map::new();
        features.insert("feature".into(), Value::from("mqtt_connack_refused"));
        features.insert("baseline".into(), Value::from(0.2));
        features.insert("observed".into(), Value::from(14.0));
        AlertInput {
            source: AlertSource::Model,
            signature_id: 3_000_001,
            signature: "SPANWATCH device behaviour anomaly".into(),
            category: "Anomaly".into(),
            severity: 2,
            app_proto: None,
            score: Some(7.25),
            threshold: Some(3.5),
            top_features: vec![Value::Object(features)],
            dedupe_key: DedupeKey::pair(3_000_001, base.src.0, base.dst.0),
            key: "model:02:00:00:00:00:0a:7.250".into(),
            ..base
        }
    }

    fn line_of(input: AlertInput) -> Value {
        let (record, _) = EveRecord::from_input(input, 0);
        let line = serde_json::to_string(&record).expect("serialises");
        assert!(!line.contains('\n'), "one line");
        serde_json::from_str(&line).expect("parses back")
    }

    /// Records emitted lines for inspection.
    #[derive(Clone, Default)]
    struct MemSink {
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl MemSink {
        fn lines(&self) -> Vec<Value> {
            let lines = self.lines.lock().expect("lock");
            lines
                .iter()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect()
        }
    }

    impl Sink for MemSink {
        fn name(&self) -> &'static str {
            "mem"
        }
        fn write(&mut self, alert: &EveLine) -> io::Result<()> {
            self.lines.lock().expect("lock").push(alert.line.clone());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn stats(&self) -> SinkStats {
            SinkStats::default()
        }
    }

    struct BrokenSink;

    impl Sink for BrokenSink {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn write(&mut self, _: &EveLine) -> io::Result<()> {
            Err(io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::other("still on fire"))
        }
        fn stats(&self) -> SinkStats {
            SinkStats::default()
        }
    }

    fn is_integer(v: &Value) -> bool {
        v.is_u64() || v.is_i64()
    }

    // ---- EVE fields -------------------------------------------------------

    #[test]
    fn eve_core_fields_are_present_and_typed_as_suricata_writes_them() {
        let v = line_of(rule_input());
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123456+0000");
        assert!(is_integer(&v["flow_id"]));
        assert_eq!(v["flow_id"], 42);
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["src_ip"], "192.0.2.10");
        assert!(is_integer(&v["src_port"]));
        assert_eq!(v["src_port"], 40_000);
        assert_eq!(v["dest_ip"], "192.0.2.20");
        assert_eq!(v["dest_port"], 23);
        assert_eq!(v["proto"], "TCP");
        assert_eq!(v["app_proto"], "telnet");

        let a = &v["alert"];
        assert_eq!(a["action"], "allowed");
        assert_eq!(a["gid"], 1);
        assert!(is_integer(&a["signature_id"]));
        assert_eq!(a["signature_id"], 2_000_001);
        assert_eq!(a["rev"], 1);
        assert_eq!(a["signature"], "SPANWATCH Telnet brute force");
        assert_eq!(a["category"], "Attempted Administrator Privilege Gain");
        assert!(is_integer(&a["severity"]));
        assert_eq!(a["severity"], 1);

        let s = &v["spanwatch"];
        assert_eq!(s["source"], "rule");
        assert_eq!(s["device"]["mac"], "02:00:00:00:00:0a");
        assert_eq!(s["device"]["ip"], "192.0.2.10");
        assert_eq!(s["references"][0], "OWASP-IoT-2018:I1");
        assert_eq!(s["evidence"]["count"], 5);
        assert_eq!(s["evidence"]["window_secs"], 60);
        assert_eq!(s["evidence"]["user"], "root");
        assert_eq!(s["suppressed"], 0);
        for absent in ["score", "threshold", "top_features"] {
            assert!(s.get(absent).is_none(), "{absent} only for model alerts");
        }
    }

    #[test]
    fn model_alerts_carry_score_threshold_and_top_features() {
        let v = line_of(model_input());
        let s = &v["spanwatch"];
        assert_eq!(s["source"], "model");
        assert_eq!(s["score"], 7.25);
        assert_eq!(s["threshold"], 3.5);
        assert_eq!(s["top_features"][0]["feature"], "mqtt_connack_refused");
        assert!(v.get("app_proto").is_none(), "absent when unknown");
    }

    #[test]
    fn icmp_has_no_ports_and_unknown_protocols_are_numbers() {
        let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().expect("v6"));
        let icmp = line_of(AlertInput {
            transport: 1,
            ..rule_input()
        });
        assert_eq!(icmp["proto"], "ICMP");
        assert!(icmp.get("src_port").is_none() && icmp.get("dest_port").is_none());

        let icmp6 = line_of(AlertInput {
            transport: 58,
            src: (v6("2001:db8::1"), 0),
            dst: (v6("2001:db8::2"), 0),
            ..rule_input()
        });
        assert_eq!(icmp6["proto"], "IPv6-ICMP");
        assert_eq!(icmp6["src_ip"], "2001:db8::1");

        let udp = line_of(AlertInput {
            transport: 17,
            ..rule_input()
        });
        assert_eq!(udp["proto"], "UDP");
        assert_eq!(udp["dest_port"], 23);

        let other = line_of(AlertInput {
            transport: 200,
            ..rule_input()
        });
        assert_eq!(other["proto"], "200");
    }

    #[test]
    fn flow_id_is_reduced_to_51_bits_and_severity_0_becomes_suricatas_default() {
        let v = line_of(AlertInput {
            flow_id: u64::MAX,
            severity: 0,
            ..rule_input()
        });
        assert_eq!(v["flow_id"], 2_251_799_813_685_247_u64); // 2^51 - 1
        assert_eq!(v["alert"]["severity"], 3);
    }

    #[test]
    fn timestamps_format_like_suricata() {
        // Expected values from `date -u -d @SECS`.
        let cases = [
            (951_782_400, 0, "2000-02-29T00:00:00.000000+0000"),
            (
                4_102_444_799,
                999_999_999,
                "2099-12-31T23:59:59.999999+0000",
            ),
            (0, 1_000, "1970-01-01T00:00:00.000001+0000"),
        ];
        for (secs, nanos, want) in cases {
            assert_eq!(
                eve::format_timestamp(Timestamp::from_secs_nanos(secs, nanos)),
                want
            );
        }
    }

    // ---- No passwords ------------------------------------------------------

    #[test]
    fn evidence_keys_containing_pass_are_stripped_and_counted() {
        let mut input = rule_input();
        let mut nested = Map::new();
        nested.insert("pass_hint".into(), Value::from("hunter2-hint"));
        nested.insert("attempts".into(), Value::from(3));
        input
            .evidence
            .insert("password".into(), Value::from("hunter2"));
        input
            .evidence
            .insert("Passwd".into(), Value::from("hunter2"));
        input
            .evidence
            .insert("nested".into(), Value::Object(nested));

        let sink = MemSink::default();
        let mut alerter = Alerter::new(AlertConfig::default());
        alerter.add_sink(Box::new(sink.clone()));
        assert!(alerter.raise(input));

        let raw = sink.lines.lock().expect("lock").concat();
        assert!(!raw.contains("hunter2"), "{raw}");
        assert!(!raw.to_ascii_lowercase().contains("pass"), "{raw}");
        let v = &sink.lines()[0];
        assert_eq!(v["spanwatch"]["evidence"]["user"], "root");
        assert_eq!(v["spanwatch"]["evidence"]["nested"]["attempts"], 3);
        assert_eq!(alerter.stats().evidence_keys_stripped, 3);
    }

    #[test]
    fn evidence_is_bounded() {
        let mut input = rule_input();
        // 2-byte characters: the cut must land on a character boundary.
        input
            .evidence
            .insert("user".into(), Value::from("é".repeat(2_000)));
        input.evidence.insert(
            "ports".into(),
            Value::Array((0..100).map(Value::from).collect()),
        );
        let mut deep = Value::from(1);
        for _ in 0..10 {
            let mut m = Map::new();
            m.insert("d".into(), deep);
            deep = Value::Object(m);
        }
        input.evidence.insert("deep".into(), deep);
        for i in 0..100 {
            // Sorted after the keys checked below (the map is ordered by key).
            input.evidence.insert(format!("z{i:03}"), Value::from(i));
        }
        let (record, counts) = EveRecord::from_input(input, 0);
        let ev = &record.spanwatch.evidence;
        let user = ev["user"].as_str().expect("string");
        assert!(
            user.len() <= eve::MAX_EVIDENCE_STRING_BYTES
                && user.len() >= eve::MAX_EVIDENCE_STRING_BYTES - 1
        );
        assert!(user.chars().all(|c| c == 'é'));
        assert_eq!(
            ev["ports"].as_array().map(Vec::len),
            Some(eve::MAX_EVIDENCE_ARRAY_ITEMS)
        );
        assert_eq!(ev.len(), eve::MAX_EVIDENCE_KEYS);
        let mut depth = 0;
        let mut cur = &ev["deep"];
        while let Some(next) = cur.get("d") {
            depth += 1;
            cur = next;
        }
        assert!(depth < 10, "deep nesting cut, got {depth}");
        assert!(counts.truncated >= 4, "{counts:?}");
    }

    // ---- Alerter -----------------------------------------------------------

    fn at(input: &AlertInput, secs: i64) -> AlertInput {
        AlertInput {
            ts: Timestamp::from_secs_nanos(secs, 0),
            ..input.clone()
        }
    }

    #[test]
    fn repeats_are_deduplicated_on_packet_time_and_reported_on_the_next_alert() {
        let sink = MemSink::default();
        let mut alerter = Alerter::new(AlertConfig {
            dedupe_secs: 30,
            ..AlertConfig::default()
        });
        alerter.add_sink(Box::new(sink.clone()));
        let base = rule_input();
        assert!(alerter.raise(at(&base, 1_000)));
        assert!(!alerter.raise(at(&base, 1_010)));
        assert!(!alerter.raise(at(&base, 1_029)));
        assert!(alerter.raise(at(&base, 1_030)));
        let lines = sink.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["spanwatch"]["suppressed"], 0);
        assert_eq!(lines[1]["spanwatch"]["suppressed"], 2);
        assert_eq!(lines[1]["timestamp"], "1970-01-01T00:17:10.000000+0000");

        let stats = alerter.stats();
        assert_eq!((stats.raised, stats.emitted, stats.deduped), (4, 2, 2));
        assert_eq!(stats.keys, 1);
        assert_eq!(
            stats.signatures,
            vec![SignatureStats {
                signature_id: 2_000_001,
                signature: "SPANWATCH Telnet brute force".into(),
                severity: 1,
                source: AlertSource::Rule,
                emitted: 2,
                suppressed: 2,
            }]
        );
        assert_eq!(stats.sinks, vec![("mem", SinkStats::default())]);
    }

    #[test]
    fn replacing_sinks_flushes_the_old_ones_and_new_settings_apply() {
        let dir = test_dir("replace-sinks");
        let first = dir.join("first.jsonl");
        let mut alerter = Alerter::new(AlertConfig {
            dedupe_secs: 3600,
            ..AlertConfig::default()
        });
        alerter.add_sink(Box::new(FileSink::open(&first).expect("open")));
        let base = rule_input();
        assert!(alerter.raise(at(&base, 1_000)));
        assert!(!alerter.raise(at(&base, 1_010)));

        let second = MemSink::default();
        alerter
            .replace_sinks(vec![Box::new(second.clone())])
            .expect("flush");
        // The file sink was flushed on replacement: its alert is on disk.
        let on_disk = std::fs::read_to_string(&first).expect("read");
        assert_eq!(on_disk.lines().count(), 1, "{on_disk}");

        alerter.reconfigure(&AlertConfig {
            dedupe_secs: 0,
            ..AlertConfig::default()
        });
        assert!(alerter.raise(at(&base, 1_020)));
        assert!(alerter.raise(at(&base, 1_021)));
        let lines = second.lines();
        assert_eq!(lines.len(), 2);
        // The repeat deduplicated before the change rides on the next alert.
        assert_eq!(lines[0]["spanwatch"]["suppressed"], 1);
        assert_eq!(std::fs::read_to_string(&first).expect("read"), on_disk);
        let stats = alerter.stats();
        assert_eq!((stats.raised, stats.emitted, stats.deduped), (4, 3, 1));
    }

    #[test]
    fn the_global_cap_drops_and_counts() {
        let sink = MemSink::default();
        let mut alerter = Alerter::new(AlertConfig {
            max_alerts_per_sec: 3,
            ..AlertConfig::default()
        });
        alerter.add_sink(Box::new(sink.clone()));
        let base = rule_input();
        let emitted = (0..10u8)
            .filter(|i| {
                let src = IpAddr::V4(Ipv4Addr::new(198, 51, 100, *i));
                alerter.raise(AlertInput {
                    src: (src, 1_000),
                    dedupe_key: DedupeKey::pair(base.signature_id, src, base.dst.0),
                    ..at(&base, 50)
                })
            })
            .count();
        assert_eq!(emitted, 3);
        assert_eq!(sink.lines().len(), 3);
        assert_eq!(alerter.stats().rate_limited, 7);
        // The next second has a fresh budget.
        assert!(alerter.raise(at(&base, 51)));
    }

    /// A flood from many sources against one target is one aggregated
    /// alert per dedupe window; the counters tell aggregated alerts apart.
    #[test]
    fn aggregated_alerts_are_counted() {
        let sink = MemSink::default();
        let mut alerter = Alerter::new(AlertConfig {
            dedupe_secs: 60,
            ..AlertConfig::default()
        });
        alerter.add_sink(Box::new(sink.clone()));
        let base = rule_input();
        let from = |i: u8, secs: i64| {
            let src = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
            AlertInput {
                src: (src, 1_000),
                dedupe_key: DedupeKey {
                    source: None,
                    ..DedupeKey::pair(base.signature_id, src, base.dst.0)
                },
                ..at(&base, secs)
            }
        };
        assert!(alerter.raise(from(1, 100)));
        assert!(!alerter.raise(from(2, 110)));
        assert!(!alerter.raise(from(3, 120)));
        assert!(alerter.raise(from(4, 161)));
        // A targeted alert of the same rule is not aggregated.
        assert!(alerter.raise(at(&base, 162)));
        let stats = alerter.stats();
        assert_eq!((stats.emitted, stats.deduped, stats.aggregated), (3, 2, 2));
        let lines = sink.lines();
        assert_eq!(lines[1]["spanwatch"]["evidence"]["suppressed_sources"], 2);
    }

    #[test]
    fn sink_errors_are_counted_and_flush_names_the_sink() {
        let good = MemSink::default();
        let mut alerter = Alerter::new(AlertConfig::default());
        alerter.add_sink(Box::new(BrokenSink));
        alerter.add_sink(Box::new(good.clone()));
        assert!(alerter.raise(rule_input()));
        // A broken sink does not keep the alert from the others.
        assert_eq!(good.lines().len(), 1);
        let err = alerter.flush().expect_err("broken sink");
        assert!(
            err.to_string().contains("broken") && err.to_string().contains("still on fire"),
            "{err}"
        );
        let stats = alerter.stats();
        assert_eq!(stats.sink_errors, 2);
        assert_eq!(
            stats.last_sink_error.as_deref(),
            Some("broken: still on fire")
        );
    }

    #[test]
    fn alerter_writes_an_alerts_file() {
        let dir = test_dir("alerter-file");
        let path = dir.join("eve.json");
        let mut alerter = Alerter::new(AlertConfig::default());
        alerter.add_sink(Box::new(FileSink::open(&path).expect("open")));
        assert!(alerter.raise(rule_input()));
        assert!(alerter.raise(model_input()));
        alerter.flush().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);
        assert_eq!(
            alerter.stats().sinks,
            vec![(
                "file",
                SinkStats {
                    written: 2,
                    ..SinkStats::default()
                }
            )]
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    // ---- JSON schema -------------------------------------------------------

    const SCHEMA: &str = include_str!("../../../rules/eve-alert.schema.json");

    /// Keywords the validator below implements; the schema may use no other.
    const ANNOTATIONS: &[&str] = &["$schema", "title", "description", "$defs"];

    /// A JSON Schema 2020-12 validator for the keywords the alert schema
    /// uses (each per the 2020-12 validation vocabulary); panics on others
    /// so the schema cannot silently outgrow it.
    fn validate(schema: &Value, root: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            panic!("schema at {at} is not an object");
        };
        macro_rules! fail {
            ($($why:tt)*) => {
                errors.push(format!("{at}: {}", format!($($why)*)))
            };
        }
        for (kw, arg) in obj {
            match kw.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$ref" => {
                    let pointer = arg
                        .as_str()
                        .and_then(|r| r.strip_prefix('#'))
                        .expect("local $ref");
                    let target = root.pointer(pointer).expect("$ref resolves");
                    validate(target, root, v, at, errors);
                }
                "type" => {
                    let ok = |t: &str| match t {
                        "object" => v.is_object(),
                        "array" => v.is_array(),
                        "string" => v.is_string(),
                        "integer" => is_integer(v) || v.as_f64().is_some_and(|f| f.fract() == 0.0),
                        "number" => v.is_number(),
                        "boolean" => v.is_boolean(),
                        "null" => v.is_null(),
                        other => panic!("unknown type {other}"),
                    };
                    let matched = match arg {
                        Value::String(t) => ok(t),
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(ok),
                        _ => panic!("bad type keyword"),
                    };
                    if !matched {
                        fail!("{v} is not of type {arg}");
                    }
                }
                "const" => {
                    if v != arg {
                        fail!("{v} is not {arg}");
                    }
                }
                "enum" => {
                    if !arg.as_array().expect("enum array").contains(v) {
                        fail!("{v} not in {arg}");
                    }
                }
                "required" => {
                    if let Some(o) = v.as_object() {
                        for key in arg
                            .as_array()
                            .expect("required array")
                            .iter()
                            .filter_map(Value::as_str)
                        {
                            if !o.contains_key(key) {
                                fail!("missing {key}");
                            }
                        }
                    }
                }
                "properties" => {
                    if let Some(o) = v.as_object() {
                        for (key, sub) in arg.as_object().expect("properties object") {
                            if let Some(value) = o.get(key) {
                                validate(sub, root, value, &format!("{at}/{key}"), errors);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    let known = obj.get("properties").and_then(Value::as_object);
                    if let Some(o) = v.as_object() {
                        for (key, value) in o {
                            if known.is_some_and(|k| k.contains_key(key)) {
                                continue;
                            }
                            match arg {
                                Value::Bool(false) => fail!("unexpected property {key}"),
                                Value::Bool(true) => {}
                                sub => validate(sub, root, value, &format!("{at}/{key}"), errors),
                            }
                        }
                    }
                }
                "propertyNames" => {
                    if let Some(o) = v.as_object() {
                        for key in o.keys() {
                            validate(
                                arg,
                                root,
                                &Value::from(key.as_str()),
                                &format!("{at}/{key} (name)"),
                                errors,
                            );
                        }
                    }
                }
                "items" => {
                    if let Some(items) = v.as_array() {
                        for (i, item) in items.iter().enumerate() {
                            validate(arg, root, item, &format!("{at}/{i}"), errors);
                        }
                    }
                }
                "pattern" => {
                    if let Some(s) = v.as_str() {
                        let re = regex::Regex::new(arg.as_str().expect("pattern string"))
                            .expect("pattern compiles");
                        if !re.is_match(s) {
                            fail!("{s:?} does not match {arg}");
                        }
                    }
                }
                "minLength" | "maxLength" => {
                    if let Some(s) = v.as_str() {
                        let n = s.chars().count() as u64;
                        let bound = arg.as_u64().expect("length bound");
                        if (kw == "minLength" && n < bound) || (kw == "maxLength" && n > bound) {
                            fail!("length {n} violates {kw} {bound}");
                        }
                    }
                }
                "minimum" | "maximum" => {
                    if let (Some(x), Some(bound)) = (v.as_f64(), arg.as_f64()) {
                        if (kw == "minimum" && x < bound) || (kw == "maximum" && x > bound) {
                            fail!("{x} violates {kw} {bound}");
                        }
                    }
                }
                "not" => {
                    let mut inner = Vec::new();
                    validate(arg, root, v, at, &mut inner);
                    if inner.is_empty() {
                        fail!("{v} must not match {arg}");
                    }
                }
                "if" => {
                    let mut inner = Vec::new();
                    validate(arg, root, v, at, &mut inner);
                    if inner.is_empty() {
                        if let Some(then) = obj.get("then") {
                            validate(then, root, v, at, errors);
                        }
                    }
                }
                "then" => {} // applied by "if"
                other => {
                    panic!("schema keyword {other:?} at {at} is not supported by this validator")
                }
            }
        }
    }

    fn schema_errors(instance: &Value) -> Vec<String> {
        let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
        let mut errors = Vec::new();
        validate(&schema, &schema, instance, "", &mut errors);
        errors
    }

    #[test]
    fn the_schema_is_draft_2020_12() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("schema is JSON");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }

    #[test]
    fn emitted_lines_validate_against_the_schema() {
        let v6 = IpAddr::V6(Ipv6Addr::new(
            0xfe80, 0, 0, 0, 0x0202, 0xb3ff, 0xfe1e, 0x8329,
        ));
        let inputs = [
            rule_input(),
            model_input(),
            AlertInput {
                transport: 1,
                device_mac: None,
                ..rule_input()
            },
            AlertInput {
                transport: 17,
                src: (v6, 5683),
                dst: (v6, 5683),
                app_proto: Some("coap"),
                flow_id: u64::MAX,
                ..rule_input()
            },
        ];
        for input in inputs {
            let v = line_of(input);
            let errors = schema_errors(&v);
            assert!(errors.is_empty(), "{v}\n{errors:#?}");
        }
    }

    #[test]
    fn the_schema_rejects_lines_that_break_the_eve_contract() {
        let good = line_of(rule_input());
        let model = line_of(model_input());
        type Mutation = fn(&mut Value);
        let cases: &[(&str, Value, Mutation)] = &[
            ("missing alert.signature_id", good.clone(), |v| {
                v["alert"].as_object_mut().map(|a| a.remove("signature_id"));
            }),
            ("signature_id as a string", good.clone(), |v| {
                v["alert"]["signature_id"] = Value::from("2000001")
            }),
            ("severity as a string", good.clone(), |v| {
                v["alert"]["severity"] = Value::from("high")
            }),
            ("flow_id as a float", good.clone(), |v| {
                v["flow_id"] = Value::from(1.5)
            }),
            ("lower-case proto", good.clone(), |v| {
                v["proto"] = Value::from("tcp")
            }),
            ("RFC 3339 Z timestamp", good.clone(), |v| {
                v["timestamp"] = Value::from("2023-11-14T22:13:20.123456Z")
            }),
            ("wrong event_type", good.clone(), |v| {
                v["event_type"] = Value::from("flow")
            }),
            ("TCP without ports", good.clone(), |v| {
                v.as_object_mut().map(|o| o.remove("src_port"));
            }),
            ("port out of range", good.clone(), |v| {
                v["dest_port"] = Value::from(70_000)
            }),
            ("unknown top-level field", good.clone(), |v| {
                v["extra"] = Value::from(1)
            }),
            ("password in evidence", good.clone(), |v| {
                v["spanwatch"]["evidence"]["password"] = Value::from("x")
            }),
            ("bad source", good.clone(), |v| {
                v["spanwatch"]["source"] = Value::from("human")
            }),
            ("model alert without score", model.clone(), |v| {
                v["spanwatch"].as_object_mut().map(|o| o.remove("score"));
            }),
        ];
        assert!(schema_errors(&good).is_empty());
        assert!(schema_errors(&model).is_empty());
        for (name, base, mutate) in cases {
            let mut v = base.clone();
            mutate(&mut v);
            assert!(!schema_errors(&v).is_empty(), "schema accepted: {name}");
        }
    }

    #[test]
    fn every_line_an_alerter_writes_validates() {
        let dir = test_dir("alerter-schema");
        let path = dir.join("eve.json");
        let mut alerter = Alerter::new(AlertConfig {
            dedupe_secs: 0,
            ..AlertConfig::default()
        });
        alerter.add_sink(Box::new(FileSink::open(&path).expect("open")));
        let mut leaky = rule_input();
        leaky
            .evidence
            .insert("password".into(), Value::from("hunter2"));
        for input in [rule_input(), model_input(), leaky] {
            assert!(alerter.raise(input));
        }
        alerter.flush().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("json line");
            let errors = schema_errors(&v);
            assert!(errors.is_empty(), "{line}\n{errors:#?}");
        }
        assert_eq!(text.lines().count(), 3);
        remove(&dir);
    }

    fn remove(dir: &Path) {
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
