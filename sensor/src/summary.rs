//! The run summary: what was read, what decoded, which flows, who talked most.
//! Printed as a table for people and as JSON (`--json`) for programs.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::alert::AlertStats;
use crate::capture::Timestamp;
use crate::decode::DecodeStats;
use crate::decode::defrag::DefragStats;
use crate::detect::model::ModelStats;
use crate::detect::profile::ProfileStats;
use crate::detect::rules::EngineStats;
use crate::device::inventory::{Inventory, MacText, Role};
use crate::flow::{FlowInfo, FlowStats, FlowTransport, ReassemblyStats};
use crate::proto::ProtoCounts;
use crate::proto::dispatch::SessionBudget;

/// What detection did: the rules evaluated, the windows the model scored,
/// and the alerts raised.
#[derive(Clone, Debug, Serialize)]
pub struct DetectionSummary {
    pub rules: usize,
    /// The version of the rule files in use (see `RuleSet::version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<String>,
    pub engine: EngineStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileStats>,
    /// Medium and low rule findings learned as routine while learning, and
    /// findings not raised because they were routine.
    pub learned_findings: u64,
    pub routine_suppressed: u64,
    pub alerts: AlertStats,
}

/// The model in use and what it did.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    pub id: String,
    #[serde(flatten)]
    pub stats: ModelStats,
}

/// Distinct addresses tracked for the top-talkers table; traffic of addresses
/// beyond this is counted in `untracked_bytes` instead.
pub const MAX_TALKERS: usize = 65_536;

/// Per-address traffic, fed when flows end.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Talker {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub flows: u64,
}

/// Bounded per-address counters.
#[derive(Debug, Default)]
pub struct Talkers {
    /// Keyed by addresses the traffic chooses: a spoofed flood adds one per
    /// flow, so the hash is a fast one (foldhash, randomly seeded).
    by_ip: HashMap<IpAddr, Talker, foldhash::fast::RandomState>,
    untracked_bytes: u64,
}

impl Talkers {
    /// The counters of `ip`, new ones while there is room: one lookup for an
    /// address already tracked or refused, one more to add it.
    fn entry(&mut self, ip: IpAddr) -> Option<&mut Talker> {
        let room = self.by_ip.len() < MAX_TALKERS;
        match self.by_ip.entry(ip) {
            Entry::Occupied(e) => Some(e.into_mut()),
            Entry::Vacant(e) if room => Some(e.insert(Talker::default())),
            Entry::Vacant(_) => None,
        }
    }

    /// Account a finished flow to both of its endpoints.
    pub fn add_flow(&mut self, info: &FlowInfo) {
        let up = info.bytes[0];
        let down = info.bytes[1];
        for (ip, sent, received, packets) in [
            (info.client.0, up, down, info.packets[0]),
            (info.server.0, down, up, info.packets[1]),
        ] {
            match self.entry(ip) {
                Some(t) => {
                    t.bytes_sent += sent;
                    t.bytes_received += received;
                    t.packets_sent += packets;
                    t.flows += 1;
                }
                None => self.untracked_bytes += sent,
            }
        }
    }

    /// The `n` addresses that sent and received the most bytes.
    /// Called at every publication of the summary: only the first `n` of
    /// up to [`MAX_TALKERS`] addresses are sorted (the order is total, so
    /// the table is the one a full sort gives).
    pub fn top(&self, n: usize) -> Vec<TopTalker> {
        let order = |a: &(&IpAddr, &Talker), b: &(&IpAddr, &Talker)| {
            let ta = a.1.bytes_sent + a.1.bytes_received;
            let tb = b.1.bytes_sent + b.1.bytes_received;
            tb.cmp(&ta).then(a.0.cmp(b.0))
        };
        let mut all: Vec<_> = self.by_ip.iter().collect();
        if n < all.len() {
            all.select_nth_unstable_by(n, order);
            all.truncate(n);
        }
        all.sort_unstable_by(order);
        all.into_iter()
            .take(n)
            .map(|(ip, t)| TopTalker {
                ip: ip.to_string(),
                traffic: *t,
            })
            .collect()
    }

    pub fn untracked_bytes(&self) -> u64 {
        self.untracked_bytes
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TopTalker {
    pub ip: String,
    #[serde(flatten)]
    pub traffic: Talker,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecodeSummary {
    pub ip_packets: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub snap_truncated: u64,
    /// Frames that are valid but not IP, by kind.
    pub not_ip: BTreeMap<&'static str, u64>,
    /// Frames that could not be decoded, by reason.
    pub errors: BTreeMap<&'static str, u64>,
    pub fragments: DefragStats,
}

impl DecodeSummary {
    pub fn new(stats: &DecodeStats, defrag: &DefragStats) -> Self {
        DecodeSummary {
            ip_packets: stats.ip_packets,
            ipv4: stats.ipv4,
            ipv6: stats.ipv6,
            snap_truncated: stats.snap_truncated,
            not_ip: stats
                .non_ip()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.name(), n))
                .collect(),
            errors: stats
                .errors()
                .filter(|(_, n)| *n > 0)
                .map(|(e, n)| (e.name(), n))
                .collect(),
            fragments: *defrag,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowSummary {
    /// Flows created, by transport.
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other: u64,
    pub total: u64,
    pub active: u64,
    pub peak_active: u64,
    pub max_flows: u64,
    pub timed_out: u64,
    pub closed: u64,
    pub reused: u64,
    pub evicted: u64,
    pub clock_jumps: u64,
}

impl FlowSummary {
    pub fn new(stats: &FlowStats) -> Self {
        FlowSummary {
            tcp: stats.created_by(FlowTransport::Tcp),
            udp: stats.created_by(FlowTransport::Udp),
            icmp: stats.created_by(FlowTransport::Icmp),
            other: stats.created_by(FlowTransport::Other),
            total: stats.created_total(),
            active: stats.active,
            peak_active: stats.peak_active,
            max_flows: stats.max_flows,
            timed_out: stats.timed_out,
            closed: stats.closed,
            reused: stats.reused,
            evicted: stats.evicted,
            clock_jumps: stats.clock_jumps,
        }
    }
}

/// Kernel counters of a live capture.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct KernelStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub inputs: Vec<String>,
    pub packets: u64,
    /// Bytes on the wire, and bytes actually captured.
    pub bytes: u64,
    pub captured_bytes: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub duration_secs: f64,
    pub decode: DecodeSummary,
    pub flows: FlowSummary,
    pub reassembly: ReassemblyStats,
    /// Messages and anomalies per application protocol.
    pub protocols: ProtoCounts,
    /// Memory of the protocol sessions, and flows left unparsed for lack of it.
    pub sessions: SessionBudget,
    /// Rules evaluated and alerts raised, when detection ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionSummary>,
    /// The device inventory, when devices are profiled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<DevicesSummary>,
    pub top_talkers: Vec<TopTalker>,
    pub untracked_talker_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelStats>,
    pub warnings: Vec<String>,
    /// Wall-clock processing time and rate (not part of the capture's facts).
    pub elapsed_secs: f64,
    pub packets_per_sec: f64,
}

/// Devices shown in the text summary; `spanwatch devices` lists them all.
pub const MAX_SUMMARY_DEVICES: usize = 40;

/// The inventory in brief.
#[derive(Clone, Debug, Serialize)]
pub struct DevicesSummary {
    pub devices: usize,
    /// Devices forgotten to make room.
    pub evicted: u64,
    pub windows: u64,
    /// Every device, by address (at the end of a run; the first
    /// [`MAX_SUMMARY_DEVICES`] in the summaries published while it runs).
    pub table: Vec<DeviceRow>,
}

/// One device in brief.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceRow {
    pub mac: String,
    pub vendor: Option<&'static str>,
    pub ips: Vec<IpAddr>,
    pub names: Vec<String>,
    pub roles: Vec<&'static str>,
    pub zone: Option<String>,
    pub peers: usize,
    pub protocols: Vec<&'static str>,
    pub first_seen: String,
    pub last_seen: String,
    pub packets: u64,
    pub bytes: u64,
}

impl DevicesSummary {
    pub fn new(inventory: &Inventory, windows: u64) -> Self {
        Self::first(inventory, windows, usize::MAX)
    }

    /// With the first `rows` devices of the table only: what a periodic
    /// publication holds, whose cost must not grow with the segment.
    pub fn first(inventory: &Inventory, windows: u64, rows: usize) -> Self {
        let table = inventory
            .sorted_first(rows)
            .into_iter()
            .map(|d| DeviceRow {
                mac: MacText(d.mac).to_string(),
                vendor: d.vendor,
                ips: d.ips.iter().map(|s| s.ip).collect(),
                names: d.names.iter().map(|(_, n)| n.clone()).collect(),
                roles: d.roles().map(Role::name).collect(),
                zone: d.zone.clone(),
                peers: d.profile.peers.len(),
                protocols: d.protocols.iter().map(|(p, _)| *p).collect(),
                first_seen: d.first_seen.to_string(),
                last_seen: d.last_seen.to_string(),
                packets: d.packets_out + d.packets_in,
                bytes: d.bytes_out + d.bytes_in,
            })
            .collect();
        let stats = inventory.stats();
        DevicesSummary {
            devices: stats.devices,
            evicted: stats.evicted,
            windows,
            table,
        }
    }

    /// The device table for a terminal, at most `max` rows.
    pub fn to_text(&self, max: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  {:<17} {:<15} {:<22} {:<30} {:<24} {:>9}",
            "mac", "ip", "vendor", "roles", "names", "packets"
        );
        let cut = |t: &str, n: usize| -> String {
            if t.chars().count() <= n {
                t.to_string()
            } else {
                let kept: String = t.chars().take(n.saturating_sub(1)).collect();
                format!("{kept}…")
            }
        };
        for d in self.table.iter().take(max) {
            let ip = d.ips.first().map(|i| i.to_string()).unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:<17} {:<15} {:<22} {:<30} {:<24} {:>9}",
                d.mac,
                cut(&ip, 15),
                cut(d.vendor.unwrap_or("-"), 22),
                cut(&d.roles.join(","), 30),
                cut(&d.names.join(","), 24),
                d.packets
            );
        }
        let shown = self.table.len().min(max);
        if self.devices > shown {
            let _ = writeln!(
                s,
                "  ... and {} more (spanwatch devices FILE lists them all)",
                self.devices - shown
            );
        }
        s
    }
}

/// Time span of the packets seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Span {
    pub fn add(&mut self, ts: Timestamp) {
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
    }

    pub fn duration_secs(&self) -> f64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) => l.nanos_since(f) as f64 / 1e9,
            _ => 0.0,
        }
    }
}

/// ", anomalies: a 2, b 1" for a non-empty count map.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl Summary {
    /// The summary as a table for a terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "inputs        {}", self.inputs.join(", "));
        let _ = writeln!(
            s,
            "packets       {} ({} on the wire, {} captured)",
            self.packets,
            human_bytes(self.bytes),
            human_bytes(self.captured_bytes)
        );
        if let (Some(f), Some(l)) = (&self.first_ts, &self.last_ts) {
            let _ = writeln!(s, "time span     {f} .. {l} ({:.3} s)", self.duration_secs);
        }
        let d = &self.decode;
        let _ = writeln!(
            s,
            "decoded       {} IP packets ({} IPv4, {} IPv6), {} reassembled from {} fragments",
            d.ip_packets, d.ipv4, d.ipv6, d.fragments.reassembled, d.fragments.fragments
        );
        if !d.not_ip.is_empty() {
            let kinds: Vec<String> = d.not_ip.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(s, "not IP        {}", kinds.join(", "));
        }
        if d.errors.is_empty() {
            let _ = writeln!(s, "decode errors none");
        } else {
            let errs: Vec<String> = d.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(s, "decode errors {}", errs.join(", "));
        }
        let f = &self.flows;
        let _ = writeln!(
            s,
            "flows         {} total: tcp {}, udp {}, icmp {}, other {} (peak active {}, evicted {})",
            f.total, f.tcp, f.udp, f.icmp, f.other, f.peak_active, f.evicted
        );
        let r = &self.reassembly;
        let _ = writeln!(
            s,
            "tcp streams   {} reassembled, {} out-of-order segments, {} retransmitted, {} gaps ({}), {} overlap conflicts",
            human_bytes(r.delivered_bytes),
            r.out_of_order_segments,
            human_bytes(r.retransmitted_bytes),
            r.gaps,
            human_bytes(r.gap_bytes),
            r.overlap_conflicts
        );
        for (name, line) in self.protocols.lines() {
            let _ = writeln!(s, "{name:<14}{line}");
        }
        if let Some(d) = &self.detection {
            let a = &d.alerts;
            let _ = writeln!(
                s,
                "alerts        {} emitted from {} rules ({} deduplicated, {} rate-limited)",
                a.emitted, d.rules, a.deduped, a.rate_limited
            );
            let e = &d.engine;
            let _ = writeln!(
                s,
                "rule state    {} now, peak {} of a {} cap ({} groups evicted by the cap)",
                human_bytes(e.memory_bytes as u64),
                human_bytes(e.memory_peak_bytes as u64),
                human_bytes(e.memcap_bytes as u64),
                e.memcap_evictions
            );
            if !a.signatures.is_empty() {
                let _ = writeln!(
                    s,
                    "  {:>4} {:>6} {:>10}  signature",
                    "sev", "count", "suppressed"
                );
                let mut sigs: Vec<_> = a.signatures.iter().collect();
                sigs.sort_by_key(|g| (g.severity, std::cmp::Reverse(g.emitted)));
                for g in sigs {
                    let _ = writeln!(
                        s,
                        "  {:>4} {:>6} {:>10}  {} [{}]",
                        g.severity, g.emitted, g.suppressed, g.signature, g.signature_id
                    );
                }
            }
        }
        if let Some(k) = &self.kernel {
            let _ = writeln!(
                s,
                "kernel        received {}, dropped {}, interface dropped {}",
                k.received, k.dropped, k.if_dropped
            );
        }
        if let Some(d) = &self.devices {
            let _ = writeln!(
                s,
                "devices       {} ({} feature windows{})",
                d.devices,
                d.windows,
                if d.evicted > 0 {
                    format!(", {} evicted", d.evicted)
                } else {
                    String::new()
                }
            );
            s.push_str(&d.to_text(MAX_SUMMARY_DEVICES));
        } else if !self.top_talkers.is_empty() {
            let _ = writeln!(s, "top talkers");
            let _ = writeln!(
                s,
                "  {:<40} {:>12} {:>12} {:>10} {:>7}",
                "address", "sent", "received", "packets", "flows"
            );
            for t in &self.top_talkers {
                let _ = writeln!(
                    s,
                    "  {:<40} {:>12} {:>12} {:>10} {:>7}",
                    t.ip,
                    human_bytes(t.traffic.bytes_sent),
                    human_bytes(t.traffic.bytes_received),
                    t.traffic.packets_sent,
                    t.traffic.flows
                );
            }
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning       {w}");
        }
        let _ = writeln!(
            s,
            "processed in  {:.3} s ({:.0} packets/s)",
            self.elapsed_secs, self.packets_per_sec
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn flow(client: [u8; 4], server: [u8; 4], up: u64, down: u64) -> FlowInfo {
        FlowInfo {
            id: 0,
            client: (IpAddr::V4(Ipv4Addr::from(client)), 40000),
            server: (IpAddr::V4(Ipv4Addr::from(server)), 80),
            protocol: 6,
            vlan: [0, 0],
            client_mac: None,
            server_mac: None,
            first_ts: Timestamp(0),
            last_ts: Timestamp(0),
            packets: [1, 1],
            bytes: [up, down],
            tcp_state: None,
            established: false,
        }
    }

    #[test]
    fn talkers_rank_by_total_bytes() {
        let mut t = Talkers::default();
        t.add_flow(&flow([10, 0, 0, 1], [10, 0, 0, 9], 100, 1000));
        t.add_flow(&flow([10, 0, 0, 2], [10, 0, 0, 9], 10, 10));
        let top = t.top(2);
        assert_eq!(top[0].ip, "10.0.0.9");
        assert_eq!(top[0].traffic.bytes_sent, 1010);
        assert_eq!(top[0].traffic.bytes_received, 110);
        assert_eq!(top[0].traffic.flows, 2);
        assert_eq!(top[1].ip, "10.0.0.1");
    }

    #[test]
    fn span_and_timestamps_format_as_rfc3339() {
        let mut span = Span::default();
        span.add(Timestamp::from_secs_nanos(1_585_066_888, 214_312_000));
        span.add(Timestamp::from_secs_nanos(1_585_066_889, 214_312_000));
        assert_eq!(span.duration_secs(), 1.0);
        assert_eq!(
            span.first.unwrap().to_string(),
            "2020-03-24T16:21:28.214312Z"
        );
    }
}
