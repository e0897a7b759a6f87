//! What /metrics says: every counter of the published snapshots under a
//! `spanwatch_` name, in base units, `_total` for counters, with label sets
//! bounded by closed lists (transports, decode error reasons, protocols and
//! their message kinds and anomaly names, alert sources and severities) or
//! by a named cap ([`MAX_ALERT_SERIES`]). No series per device or address.

use crate::alert::AlertSource;
use crate::decode::DecodeError;
use crate::decode::NonIpKind;
use crate::pipeline::{AppSnapshot, BATCH_LATENCY_BUCKETS_SECS, BatchLatency};
use crate::summary::{KernelStats, Summary};

use super::families::Families;

/// Alert series (signature, severity, source) exported one by one; the
/// alerts of the signatures beyond (in signature order) are summed in one
/// series whose `signature_id` is `other`.
pub const MAX_ALERT_SERIES: usize = 256;

/// Everything one scrape reads: snapshots and counters published by the
/// stages, and what the command line knows (load times, reloads).
#[derive(Clone, Debug, Default)]
pub struct Reading<'a> {
    /// The capture stage's part of the summary (`None` before the first tick).
    pub capture: Option<&'a Summary>,
    pub app: Option<&'a AppSnapshot>,
    pub kernel: Option<KernelStats>,
    pub batches: Option<BatchLatency>,
    /// Seconds since the capture loop last showed life.
    pub heartbeat_age_secs: Option<f64>,
    pub loads: Loads,
}

/// When the model and the rules in use were loaded (Unix seconds), and the
/// outcomes of reloads (SIGHUP).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Loads {
    pub model_loaded_secs: Option<f64>,
    pub rules_loaded_secs: Option<f64>,
    pub reloads: u64,
    pub reload_failures: u64,
}

/// The severity's name in alert labels (EVE severity 1 is the highest).
pub fn severity_name(severity: u8) -> &'static str {
    match severity {
        1 => "high",
        2 => "medium",
        3 => "low",
        _ => "other",
    }
}

fn source_name(source: AlertSource) -> &'static str {
    match source {
        AlertSource::Rule => "rule",
        AlertSource::Model => "model",
        AlertSource::Profile => "profile",
    }
}

/// The families of `r`, without the process metrics.
pub fn families(r: &Reading<'_>) -> Families {
    let mut f = Families::default();
    f.counters(
        "spanwatch_reloads_total",
        "Reloads asked for with SIGHUP, by outcome (a failed one leaves the running config, rules and model).",
        &["outcome"],
        [
            (vec!["applied"], r.loads.reloads),
            (vec!["failed"], r.loads.reload_failures),
        ],
    );
    if let Some(age) = r.heartbeat_age_secs {
        f.gauge(
            "spanwatch_capture_heartbeat_age_seconds",
            "Seconds since the capture loop last delivered a frame's second or an idle read (/healthz fails when it grows).",
            age,
        );
    }
    if let Some(k) = r.kernel {
        kernel(&mut f, k);
    }
    if let Some(b) = &r.batches {
        f.gauge(
            "spanwatch_stage_queue_batches",
            "Batches handed from the flow stage to the protocol stage and not yet processed.",
            b.queued as f64,
        );
        f.histogram(
            "spanwatch_stage_batch_latency_seconds",
            "Time from the hand-over of a batch to the protocol stage to the end of its processing.",
            &BATCH_LATENCY_BUCKETS_SECS,
            &b.cumulative,
            b.count,
            b.sum_secs,
        );
    }
    if let Some(s) = r.capture {
        capture(&mut f, s);
    }
    if let Some(a) = r.app {
        app(&mut f, a, &r.loads);
    }
    f
}

fn kernel(f: &mut Families, k: KernelStats) {
    f.counter(
        "spanwatch_kernel_received_packets_total",
        "Frames the kernel's capture received (libpcap's ps_recv; 32-bit, wraps).",
        k.received,
    );
    f.counter(
        "spanwatch_kernel_dropped_packets_total",
        "Frames the kernel dropped because the capture buffer was full (libpcap's ps_drop).",
        k.dropped,
    );
    f.counter(
        "spanwatch_interface_dropped_packets_total",
        "Frames the interface or its driver dropped (libpcap's ps_ifdrop).",
        k.if_dropped,
    );
}

fn capture(f: &mut Families, s: &Summary) {
    f.counter(
        "spanwatch_packets_total",
        "Frames read from the capture.",
        s.packets,
    );
    f.counter(
        "spanwatch_bytes_total",
        "Bytes of the frames read, as long as they were on the wire.",
        s.bytes,
    );
    f.counter(
        "spanwatch_captured_bytes_total",
        "Bytes of the frames read, as captured (cut at the snap length).",
        s.captured_bytes,
    );
    let d = &s.decode;
    f.counter(
        "spanwatch_snap_truncated_packets_total",
        "Frames cut short by the snap length.",
        d.snap_truncated,
    );
    f.counters(
        "spanwatch_ip_packets_total",
        "IP packets decoded, by IP version.",
        &["version"],
        [(vec!["4"], d.ipv4), (vec!["6"], d.ipv6)],
    );
    // Every kind and reason, zero or not, so that rates exist from the start.
    f.counters(
        "spanwatch_frames_not_ip_total",
        "Valid frames that carry no IP packet, by kind.",
        &["kind"],
        NonIpKind::ALL.iter().map(|k| {
            let name = k.name();
            (vec![name], d.not_ip.get(name).copied().unwrap_or(0))
        }),
    );
    f.counters(
        "spanwatch_decode_errors_total",
        "Frames that could not be decoded, by reason.",
        &["reason"],
        DecodeError::ALL.iter().map(|e| {
            let name = e.name();
            (vec![name], d.errors.get(name).copied().unwrap_or(0))
        }),
    );
    let fr = &d.fragments;
    f.counter(
        "spanwatch_ip_fragments_total",
        "IP fragments seen.",
        fr.fragments,
    );
    f.counters(
        "spanwatch_ip_fragment_datagrams_total",
        "Fragmented datagrams by outcome: reassembled, or given up (timed out, evicted by the bound, too many fragments, too large).",
        &["outcome"],
        [
            (vec!["reassembled"], fr.reassembled),
            (vec!["timed_out"], fr.timed_out),
            (vec!["evicted"], fr.evicted),
            (vec!["too_many_fragments"], fr.too_many_fragments),
            (vec!["too_large"], fr.too_large),
        ],
    );
    f.counter(
        "spanwatch_ip_fragment_overlap_conflicts_total",
        "Overlapping IP fragments whose bytes disagree.",
        fr.overlap_conflicts,
    );
    let fl = &s.flows;
    f.counters(
        "spanwatch_flows_created_total",
        "Flows created, by transport.",
        &["transport"],
        [
            (vec!["tcp"], fl.tcp),
            (vec!["udp"], fl.udp),
            (vec!["icmp"], fl.icmp),
            (vec!["other"], fl.other),
        ],
    );
    f.counters(
        "spanwatch_flows_ended_total",
        "Flows ended, by why: closed (FIN both ways or RST), timed out, its 5-tuple reused by a new connection, or evicted by the flow memory cap.",
        &["reason"],
        [
            (vec!["closed"], fl.closed),
            (vec!["timed_out"], fl.timed_out),
            (vec!["reused"], fl.reused),
            (vec!["evicted"], fl.evicted),
        ],
    );
    f.gauge(
        "spanwatch_flows_active",
        "Flows held now.",
        fl.active as f64,
    );
    f.gauge(
        "spanwatch_flows_active_peak",
        "Most flows held at once.",
        fl.peak_active as f64,
    );
    f.gauge(
        "spanwatch_flows_limit",
        "Most flows the flow memory cap allows.",
        fl.max_flows as f64,
    );
    f.counter(
        "spanwatch_flow_clock_jumps_total",
        "Times packet time went backwards by more than the tolerance.",
        fl.clock_jumps,
    );
    let ra = &s.reassembly;
    for (name, help, value) in [
        (
            "spanwatch_reassembly_delivered_bytes_total",
            "TCP stream bytes delivered in order to the protocol stage.",
            ra.delivered_bytes,
        ),
        (
            "spanwatch_reassembly_out_of_order_segments_total",
            "TCP segments that arrived ahead of a hole.",
            ra.out_of_order_segments,
        ),
        (
            "spanwatch_reassembly_retransmitted_bytes_total",
            "TCP bytes seen again (retransmissions and overlaps).",
            ra.retransmitted_bytes,
        ),
        (
            "spanwatch_reassembly_overlap_conflicts_total",
            "Overlapping TCP data that disagrees with what was received first.",
            ra.overlap_conflicts,
        ),
        (
            "spanwatch_reassembly_gaps_total",
            "Holes in TCP streams given up on and skipped.",
            ra.gaps,
        ),
        (
            "spanwatch_reassembly_gap_bytes_total",
            "TCP bytes lost in the holes skipped.",
            ra.gap_bytes,
        ),
        (
            "spanwatch_reassembly_stream_cap_hits_total",
            "Times a stream's own out-of-order buffer was full.",
            ra.stream_cap_hits,
        ),
        (
            "spanwatch_reassembly_budget_drops_total",
            "Out-of-order TCP data dropped because the global reassembly memory cap was reached.",
            ra.budget_drops,
        ),
        (
            "spanwatch_reassembly_midstream_pickups_total",
            "TCP streams picked up without their handshake.",
            ra.midstream_pickups,
        ),
    ] {
        f.counter(name, help, value);
    }
}

fn app(f: &mut Families, a: &AppSnapshot, loads: &Loads) {
    let views = a.protocols.views();
    f.counters(
        "spanwatch_protocol_flows_total",
        "Flows recognised as an application protocol.",
        &["protocol"],
        views.iter().map(|(p, v)| (vec![*p], v.flows)),
    );
    f.counters(
        "spanwatch_protocol_messages_total",
        "Application messages parsed, by protocol and kind.",
        &["protocol", "kind"],
        views.iter().flat_map(|(p, v)| {
            v.messages
                .iter()
                .map(move |(kind, n)| (vec![*p, *kind], *n))
        }),
    );
    f.counters(
        "spanwatch_protocol_anomalies_total",
        "Protocol anomalies (malformed or suspicious messages), by protocol and anomaly.",
        &["protocol", "anomaly"],
        views.iter().flat_map(|(p, v)| {
            v.anomalies
                .iter()
                .map(move |(anomaly, n)| (vec![p.to_string(), anomaly.clone()], *n))
        }),
    );
    f.counter(
        "spanwatch_parser_sessions_refused_total",
        "Flows left unparsed because the parser memory cap (protocols.memcap_bytes) was reached.",
        a.sessions.refused,
    );
    f.gauge(
        "spanwatch_parser_memory_bytes",
        "Memory held by parser sessions now.",
        a.sessions.used_bytes as f64,
    );
    f.gauge(
        "spanwatch_parser_memory_limit_bytes",
        "The parser memory cap.",
        a.sessions.cap_bytes as f64,
    );
    if let Some(d) = &a.devices {
        f.gauge(
            "spanwatch_devices",
            "Devices (MAC addresses) in the inventory.",
            d.devices as f64,
        );
        f.counter(
            "spanwatch_devices_evicted_total",
            "Devices forgotten to keep the inventory within its bound.",
            d.evicted,
        );
        f.counter(
            "spanwatch_feature_windows_total",
            "Feature windows closed (one per device and window length).",
            d.windows,
        );
    }
    if let Some(d) = &a.detection {
        detection(f, d, loads);
    }
}

fn detection(f: &mut Families, d: &crate::summary::DetectionSummary, loads: &Loads) {
    f.gauges(
        "spanwatch_detection_info",
        "The model and the rule files in use: the model's id and the rules' version (a hash of the rule files).",
        &["model_id", "rules_version"],
        [(
            vec![
                d.model.as_ref().map_or("", |m| m.id.as_str()),
                d.rules_version.as_deref().unwrap_or(""),
            ],
            1.0,
        )],
    );
    f.gauge("spanwatch_rules", "Rules loaded.", d.rules as f64);
    if let Some(at) = loads.model_loaded_secs {
        f.gauge(
            "spanwatch_model_loaded_timestamp_seconds",
            "When the model in use was loaded (Unix time).",
            at,
        );
    }
    if let Some(at) = loads.rules_loaded_secs {
        f.gauge(
            "spanwatch_rules_loaded_timestamp_seconds",
            "When the rules in use were loaded (Unix time).",
            at,
        );
    }
    let e = &d.engine;
    f.counter(
        "spanwatch_rule_events_total",
        "Normalised events the rule engine evaluated.",
        e.events,
    );
    f.counter(
        "spanwatch_rule_matches_total",
        "Rule matches (before the alert stage).",
        e.matches,
    );
    f.counter(
        "spanwatch_rule_suppressed_total",
        "Rule firings held back by the rule's own suppression.",
        e.suppressed,
    );
    f.counter(
        "spanwatch_rule_state_evictions_total",
        "Rule state (windows, sequences, sessions) forgotten early to stay within the engine's bounds.",
        e.evictions + e.entry_evictions,
    );
    f.counter(
        "spanwatch_rule_memcap_evictions_total",
        "Rule state groups evicted, least recently used first, because the rules memory cap (rules.memcap_bytes) was reached.",
        e.memcap_evictions,
    );
    f.gauge(
        "spanwatch_rule_memory_bytes",
        "Estimated memory held by rule state now.",
        e.memory_bytes as f64,
    );
    f.gauge(
        "spanwatch_rule_memory_limit_bytes",
        "The rules memory cap.",
        e.memcap_bytes as f64,
    );
    if let Some(m) = &d.model {
        f.counter(
            "spanwatch_model_windows_scored_total",
            "Feature windows the model scored.",
            m.stats.windows_scored,
        );
        f.counter(
            "spanwatch_model_anomalous_windows_total",
            "Scored windows above their threshold.",
            m.stats.anomalous_windows,
        );
        f.counter(
            "spanwatch_model_findings_total",
            "Anomaly episodes the model reported (one per device and behaviour).",
            m.stats.findings,
        );
        f.counter(
            "spanwatch_model_learning_windows_total",
            "Windows scored while learning each device's own normal.",
            m.stats.learning_windows,
        );
    }
    if let Some(p) = &d.profile {
        f.counter(
            "spanwatch_profile_findings_total",
            "Findings of the profile detections (new peers and services, silences, zones, new devices).",
            p.findings,
        );
        f.counter(
            "spanwatch_devices_new_total",
            "Devices first seen after learning.",
            p.new_devices,
        );
        f.gauge(
            "spanwatch_devices_silent",
            "Devices silent for longer than their regular behaviour allows.",
            p.silent_devices as f64,
        );
    }
    f.counter(
        "spanwatch_learned_findings_total",
        "Medium and low rule findings learned as routine while learning.",
        d.learned_findings,
    );
    let al = &d.alerts;
    f.counter(
        "spanwatch_alert_findings_total",
        "Findings handed to the alert stage (before deduplication and the rate cap).",
        al.raised,
    );
    f.counters(
        "spanwatch_alerts_suppressed_total",
        "Findings not written as alerts, by why: a repeat within the dedupe window, over the global rate cap, or routine (learned).",
        &["reason"],
        [
            (vec!["deduplicated"], al.deduped),
            (vec!["rate_limited"], al.rate_limited),
            (vec!["routine"], d.routine_suppressed),
        ],
    );
    f.counter(
        "spanwatch_alerts_aggregated_total",
        "Alerts written that stand for a distributed flood's sources or a sweep's targets.",
        al.aggregated,
    );
    let mut rows: Vec<(Vec<String>, u64)> = Vec::new();
    let mut other = 0;
    for (i, s) in al.signatures.iter().enumerate() {
        if i < MAX_ALERT_SERIES - 1 {
            rows.push((
                vec![
                    s.signature_id.to_string(),
                    severity_name(s.severity).to_string(),
                    source_name(s.source).to_string(),
                ],
                s.emitted,
            ));
        } else {
            other += s.emitted;
        }
    }
    if other > 0 {
        rows.push((vec!["other".into(), "other".into(), "other".into()], other));
    }
    f.counters(
        "spanwatch_alerts_total",
        "Alerts written, by signature id, severity and source (rule, model, profile).",
        &["signature_id", "severity", "source"],
        rows,
    );
    f.counter(
        "spanwatch_alert_sink_errors_total",
        "Failed writes and flushes of the alert sinks.",
        al.sink_errors,
    );
    f.counters(
        "spanwatch_alert_sink_deliveries_total",
        "Alerts per sink by outcome: written (delivered), dropped (not attempted: queue full, too many commands) or failed (after retries).",
        &["sink", "outcome"],
        al.sinks.iter().flat_map(|(sink, st)| {
            [
                (vec![*sink, "written"], st.written),
                (vec![*sink, "dropped"], st.dropped),
                (vec![*sink, "failed"], st.failed),
            ]
        }),
    );
    f.counters(
        "spanwatch_alert_sink_retries_total",
        "Extra delivery attempts per sink.",
        &["sink"],
        al.sinks.iter().map(|(sink, st)| (vec![*sink], st.retries)),
    );
    f.counters(
        "spanwatch_alert_sink_timeouts_total",
        "Deliveries abandoned for taking too long, per sink.",
        &["sink"],
        al.sinks.iter().map(|(sink, st)| (vec![*sink], st.timeouts)),
    );
}
