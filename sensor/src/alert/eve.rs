//! The alert record: Suricata's EVE JSON `alert` event plus a `spanwatch`
//! object with what explains the alert.
//!
//! Field names, value types and formats follow what Suricata writes
//! (Suricata user guide, "Eve JSON Format", alert event type; `output-json.c`
//! and `output-json-alert.c`): `timestamp` as `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000`,
//! `flow_id` an integer reduced to 51 bits, `proto` the upper-case IANA name
//! (`"TCP"`, `"UDP"`, `"ICMP"`, `"IPv6-ICMP"`) or the decimal number,
//! ports only for TCP, UDP and SCTP, and in `alert` the integers `gid`,
//! `signature_id`, `rev`, `severity`. The schema in
//! `rules/eve-alert.schema.json` describes exactly these lines.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{AlertInput, AlertSource};
use crate::capture::Timestamp;

/// Suricata keeps `flow_id` within 51 bits "as JavaScript and even JSON often
/// seem to max out there" (`FlowGetId` in Suricata's `flow.h`).
pub const FLOW_ID_MASK: u64 = (1 << 51) - 1;

/// Suricata's `alert.gid` for rules without a `gid` keyword.
pub const GENERATOR_ID: u32 = 1;

/// `alert.rev`: spanwatch rules carry no revision yet.
pub const RULE_REVISION: u32 = 1;

/// Suricata's default priority (`severity`) for a signature without one;
/// used when an input carries the out-of-range severity 0.
pub const DEFAULT_SEVERITY: u8 = 3;

/// At most this many keys per evidence object; the rest are dropped and counted.
pub const MAX_EVIDENCE_KEYS: usize = 64;
/// At most this many items per evidence array.
pub const MAX_EVIDENCE_ARRAY_ITEMS: usize = 32;
/// Evidence strings (user names, URIs: attacker-chosen) are cut to this many bytes.
pub const MAX_EVIDENCE_STRING_BYTES: usize = 512;
/// Evidence values nested deeper than this are dropped.
pub const MAX_EVIDENCE_DEPTH: usize = 4;

/// Any evidence key containing this (ASCII case-insensitive) is removed:
/// a password must never reach an alert, whatever a rule or model put there.
pub const FORBIDDEN_KEY_PART: &str = "pass";

/// One EVE `alert` line, in the order Suricata writes the fields.
#[derive(Clone, Debug, Serialize)]
pub struct EveRecord {
    pub timestamp: String,
    pub flow_id: u64,
    pub event_type: &'static str,
    pub src_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    pub dest_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    pub proto: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    pub alert: EveAlertInfo,
    pub spanwatch: SpanwatchInfo,
}

/// EVE's `alert` object.
#[derive(Clone, Debug, Serialize)]
pub struct EveAlertInfo {
    /// `"allowed"`: spanwatch is passive and never blocks.
    pub action: &'static str,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    /// 1 high, 2 medium, 3 low (Suricata's priority).
    pub severity: u8,
}

/// The `spanwatch` object: why the alert was raised.
#[derive(Clone, Debug, Serialize)]
pub struct SpanwatchInfo {
    pub source: AlertSource,
    pub device: DeviceInfo,
    pub references: Vec<String>,
    /// Counts, window, user name; never a password (see [`sanitize_evidence`]).
    pub evidence: Map<String, Value>,
    /// Names the finding: `spanwatch learn KEY` accepts its behaviour as
    /// normal, `spanwatch unlearn KEY` takes that back.
    pub key: String,
    /// Alerts with the same dedupe key not emitted since the previous one.
    pub suppressed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Present for model alerts (possibly empty) and for rule alerts that carry some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_features: Option<Vec<Value>>,
}

/// The device an alert is about: the alert's source endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceInfo {
    /// Lower-case, colon-separated, as Suricata's `ether` object writes MACs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    pub ip: IpAddr,
}

/// What [`sanitize_evidence`] removed or cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SanitizeCounts {
    /// Keys removed because they contain [`FORBIDDEN_KEY_PART`].
    pub stripped_keys: u64,
    /// Strings cut, keys/items/nested values dropped by the bounds.
    pub truncated: u64,
}

impl EveRecord {
    /// Builds the record for `input`, with `suppressed` repeats reported.
    /// The evidence is sanitised; `counts` says what that removed.
    pub fn from_input(input: AlertInput, suppressed: u64) -> (EveRecord, SanitizeCounts) {
        let (evidence, counts) = sanitize_evidence(input.evidence);
        let with_ports = has_ports(input.transport);
        let top_features = if input.source == AlertSource::Model || !input.top_features.is_empty() {
            Some(input.top_features)
        } else {
            None
        };
        let record = EveRecord {
            timestamp: format_timestamp(input.ts),
            flow_id: input.flow_id & FLOW_ID_MASK,
            event_type: "alert",
            src_ip: input.src.0,
            src_port: with_ports.then_some(input.src.1),
            dest_ip: input.dst.0,
            dest_port: with_ports.then_some(input.dst.1),
            proto: proto_name(input.transport),
            app_proto: input.app_proto,
            alert: EveAlertInfo {
                action: "allowed",
                gid: GENERATOR_ID,
                signature_id: input.signature_id,
                rev: RULE_REVISION,
                signature: input.signature,
                category: input.category,
                severity: if input.severity == 0 {
                    DEFAULT_SEVERITY
                } else {
                    input.severity
                },
            },
            spanwatch: SpanwatchInfo {
                source: input.source,
                device: DeviceInfo {
                    mac: input.device_mac.map(format_mac),
                    ip: input.src.0,
                },
                references: input.references,
                evidence,
                key: input.key,
                suppressed,
                score: input.score.filter(|s| s.is_finite()),
                threshold: input.threshold.filter(|t| t.is_finite()),
                top_features,
            },
        };
        (record, counts)
    }
}

/// Packet time as Suricata writes it: UTC, microseconds, numeric offset
/// (`%Y-%m-%dT%H:%M:%S.%06u%z` in Suricata's `CreateIsoTimeString`).
pub fn format_timestamp(ts: Timestamp) -> String {
    // `Timestamp`'s Display is RFC 3339 with microseconds and a `Z`.
    let mut s = ts.to_string();
    if s.ends_with('Z') {
        s.pop();
    }
    s.push_str("+0000");
    s
}

/// IANA protocol number → the name Suricata writes (its `known_proto` table),
/// or the decimal number for others.
pub fn proto_name(transport: u8) -> Cow<'static, str> {
    match transport {
        1 => Cow::Borrowed("ICMP"),
        2 => Cow::Borrowed("IGMP"),
        6 => Cow::Borrowed("TCP"),
        17 => Cow::Borrowed("UDP"),
        47 => Cow::Borrowed("GRE"),
        50 => Cow::Borrowed("ESP"),
        51 => Cow::Borrowed("AH"),
        58 => Cow::Borrowed("IPv6-ICMP"),
        132 => Cow::Borrowed("SCTP"),
        n => Cow::Owned(n.to_string()),
    }
}

/// Suricata writes `src_port`/`dest_port` for TCP, UDP and SCTP only.
fn has_ports(transport: u8) -> bool {
    matches!(transport, 6 | 17 | 132)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Removes every key containing [`FORBIDDEN_KEY_PART`] (at any depth) and
/// applies the evidence bounds. Defence in depth: the engine never puts a
/// password in evidence, and this makes sure none gets through if it did.
pub fn sanitize_evidence(evidence: Map<String, Value>) -> (Map<String, Value>, SanitizeCounts) {
    let mut counts = SanitizeCounts::default();
    let map = sanitize_map(evidence, 0, &mut counts);
    (map, counts)
}

fn is_forbidden_key(key: &str) -> bool {
    key.to_ascii_lowercase().contains(FORBIDDEN_KEY_PART)
}

fn sanitize_map(
    map: Map<String, Value>,
    depth: usize,
    counts: &mut SanitizeCounts,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        if is_forbidden_key(&key) {
            counts.stripped_keys += 1;
            continue;
        }
        if out.len() >= MAX_EVIDENCE_KEYS {
            counts.truncated += 1;
            continue;
        }
        if let Some(v) = sanitize_value(value, depth + 1, counts) {
            out.insert(key, v);
        }
    }
    out
}

/// `None` when the value is a container nested too deep (counted).
fn sanitize_value(value: Value, depth: usize, counts: &mut SanitizeCounts) -> Option<Value> {
    match value {
        Value::String(s) => Some(Value::String(truncate_string(s, counts))),
        Value::Array(_) | Value::Object(_) if depth > MAX_EVIDENCE_DEPTH => {
            counts.truncated += 1;
            None
        }
        Value::Array(items) => {
            if items.len() > MAX_EVIDENCE_ARRAY_ITEMS {
                counts.truncated += 1;
            }
            let kept = items
                .into_iter()
                .take(MAX_EVIDENCE_ARRAY_ITEMS)
                .filter_map(|v| sanitize_value(v, depth + 1, counts))
                .collect();
            Some(Value::Array(kept))
        }
        Value::Object(map) => Some(Value::Object(sanitize_map(map, depth, counts))),
        scalar => Some(scalar),
    }
}

/// Cuts `s` to at most [`MAX_EVIDENCE_STRING_BYTES`] on a character boundary.
fn truncate_string(mut s: String, counts: &mut SanitizeCounts) -> String {
    if s.len() > MAX_EVIDENCE_STRING_BYTES {
        let mut end = MAX_EVIDENCE_STRING_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        counts.truncated += 1;
    }
    s
}
