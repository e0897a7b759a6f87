//! Per-flow MQTT session: stream framing, version tracking, handshake state
//! and events.
//!
//! The session takes each direction's reassembled TCP bytes in any split,
//! frames packets with [`parse_fixed_header`], buffers at most one packet per
//! direction (and only the head of a PUBLISH: its payload is passed over,
//! never buffered), and turns each packet into an [`MqttEvent`] plus
//! anomalies. It remembers the protocol version from the CONNECT (5.0
//! §3.1.2.2) and, for a flow seen without its CONNECT, infers it from packets
//! whose layout only one version explains.
//!
//! State it keeps, all bounded by [`MqttLimits`]: in-flight QoS 1 / QoS 2
//! Packet Identifiers per direction (5.0 §4.3.2, §4.3.3), pending SUBSCRIBE /
//! UNSUBSCRIBE identifiers, and 5.0 Topic Aliases per direction (§3.3.2.3.4).

use super::anomaly::{AnomalyKind, Violation};
use super::events::{
    AckEvent, AuthEvent, ConnackCode, ConnackEvent, ConnectEvent, DisconnectEvent, MqttAnomaly,
    MqttEvent, PayloadHead, PropertySummary, PublishEvent, SubackEvent, SubscribeEvent,
    SubscriptionFilter, Text, UnsubackEvent, UnsubscribeEvent, WillEvent,
};
use super::parser::{
    Ack, Connect, ConnectReturnCode, FixedHeader, FrameError, Packet, PacketError, PacketType,
    ProtocolVersion, Publish, Qos, ReasonCode, infer_version, parse_fixed_header, parse_packet,
    parse_publish, parse_publish_clean, peek_connect_level,
};
use super::probe::chain_plausible;
use super::properties::{PropertyId, PropertyValue};
use super::wire::{MqttStr, Status};
use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;

/// Default largest packet buffered or decoded: 1 MiB.
pub const DEFAULT_MAX_PACKET_BYTES: u32 = 1 << 20;
/// Default cap on each string copied into an event.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 256;
/// Default number of PUBLISH payload bytes kept in an event.
pub const DEFAULT_PAYLOAD_HEAD_BYTES: usize = 64;
/// Default number of in-flight Packet Identifiers tracked per direction (and
/// of pending SUBSCRIBE / UNSUBSCRIBE).
pub const DEFAULT_MAX_INFLIGHT: usize = 256;
/// Default number of topic filters / return codes copied into one event.
pub const DEFAULT_MAX_FILTERS_PER_EVENT: usize = 32;
/// Default number of Topic Aliases remembered per direction.
pub const DEFAULT_MAX_TOPIC_ALIASES: usize = 64;
/// Default number of anomaly events one session emits before only counting.
pub const DEFAULT_MAX_ANOMALIES: u32 = 1000;

/// A buffer that grew past this is released once its packet is done.
const BUFFER_KEEP_BYTES: usize = 64 * 1024;

/// Bytes held while looking for a packet boundary after losing one.
const RESYNC_WINDOW: usize = 512;

/// Bounds of one MQTT session (config section `[protocols.mqtt]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttLimits {
    /// Packets with a larger Remaining Length are reported (`TooLarge`) and
    /// skipped without being buffered.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_packet_bytes: u32,
    /// Cap on each string (topic, client id, user name...) in an event.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_text_bytes: usize,
    /// PUBLISH payload bytes kept in the event.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub payload_head_bytes: usize,
    /// In-flight Packet Identifiers tracked per direction.
    pub max_inflight: usize,
    /// Filters / codes copied into one SUBSCRIBE, UNSUBSCRIBE, SUBACK or
    /// UNSUBACK event.
    pub max_filters_per_event: usize,
    /// Topic Aliases remembered per direction.
    pub max_topic_aliases: usize,
    /// Anomaly events per session; later ones are counted in
    /// [`MqttStats::anomalies_suppressed`].
    pub max_anomalies: u32,
}

impl Default for MqttLimits {
    fn default() -> Self {
        MqttLimits {
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
            payload_head_bytes: DEFAULT_PAYLOAD_HEAD_BYTES,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_filters_per_event: DEFAULT_MAX_FILTERS_PER_EVENT,
            max_topic_aliases: DEFAULT_MAX_TOPIC_ALIASES,
            max_anomalies: DEFAULT_MAX_ANOMALIES,
        }
    }
}

/// Counters of one session, for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MqttStats {
    /// Bytes given to `on_data`.
    pub bytes: u64,
    /// Control packets framed.
    pub packets: u64,
    /// Payload and oversized-packet bytes passed over without buffering.
    pub bytes_skipped: u64,
    pub too_large: u64,
    pub gaps: u64,
    /// Gap bytes that fell inside a payload being skipped (nothing lost).
    pub gap_bytes_absorbed: u64,
    /// Times a direction lost its packet boundaries (gap or framing error).
    pub desyncs: u64,
    pub resyncs: u64,
    /// Bytes dropped while looking for a packet boundary again.
    pub bytes_discarded: u64,
    pub anomalies: u64,
    pub anomalies_suppressed: u64,
}

/// The packet due next in a QoS 1 / QoS 2 handshake (5.0 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
}

/// A bounded table of Packet Identifiers.
#[derive(Debug)]
struct IdTable<T> {
    entries: Vec<(u16, T)>,
    /// An identifier was not recorded because the table was full: later
    /// "missing" findings for this table are unreliable.
    overflowed: bool,
}

impl<T: Copy> IdTable<T> {
    fn new() -> Self {
        IdTable {
            entries: Vec::new(),
            overflowed: false,
        }
    }

    fn get(&self, id: u16) -> Option<T> {
        self.entries.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)
    }

    fn set(&mut self, id: u16, value: T) {
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| *k == id) {
            e.1 = value;
        }
    }

    fn remove(&mut self, id: u16) -> Option<T> {
        let i = self.entries.iter().position(|(k, _)| *k == id)?;
        Some(self.entries.swap_remove(i).1)
    }

    /// Insert; false when the table is full (the first time, the caller
    /// reports it).
    fn insert(&mut self, id: u16, value: T, max: usize) -> bool {
        if self.entries.len() >= max {
            let first = !self.overflowed;
            self.overflowed = true;
            return !first;
        }
        self.entries.push((id, value));
        true
    }
}

/// Stream state of one direction.
#[derive(Debug)]
struct DirState {
    /// Bytes of the packet being assembled (only ever one packet's worth).
    buf: Vec<u8>,
    /// `buf` must reach this length before the next parse attempt.
    want: usize,
    /// Bytes of the current packet still to pass over.
    skip: u64,
    /// Packet boundaries lost; waiting for data that starts a packet chain.
    desync: bool,
    /// A gap was seen: handshake findings for this direction are unreliable.
    gap_seen: bool,
    packets: u64,
    /// QoS > 0 PUBLISHes this direction sent, awaiting their handshake.
    inflight: IdTable<Due>,
    /// Topic Aliases this direction set, with the topic each stands for.
    aliases: Vec<(u16, Text)>,
    /// Highest Topic Alias this direction may use, as the peer announced
    /// (5.0 §3.1.2.11.5, §3.2.2.3.8); `None` until the peer's CONNECT /
    /// CONNACK was seen.
    alias_maximum: Option<u16>,
}

impl DirState {
    fn new() -> Self {
        DirState {
            buf: Vec::new(),
            want: 0,
            skip: 0,
            desync: false,
            gap_seen: false,
            packets: 0,
            inflight: IdTable::new(),
            aliases: Vec::new(),
            alias_maximum: None,
        }
    }
}

/// Connection handshake as seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    NoConnack,
    Accepted,
    Refused(u8),
}

/// What one parse step over buffered or fresh bytes did.
enum Step {
    /// The bytes must reach this length.
    NeedMore(usize),
    /// A packet was handled: `n` bytes used, `skip` more of it to pass over.
    Consumed { n: usize, skip: u64 },
    /// Framing lost.
    Desync,
}

/// Per-flow MQTT state.
#[derive(Debug)]
pub struct MqttSession {
    limits: MqttLimits,
    dirs: [DirState; 2],
    version: Option<ProtocolVersion>,
    /// The version came from a CONNECT (not inferred).
    version_from_connect: bool,
    connect_seen: bool,
    missing_connect_reported: bool,
    handshake: Handshake,
    session_present: bool,
    client_disconnected: bool,
    pending_subscribe: IdTable<usize>,
    pending_unsubscribe: IdTable<usize>,
    anomalies_emitted: u32,
    limit_reported: bool,
    stats: MqttStats,
    /// Scratch list reused for every packet's violations.
    violations: Vec<Violation>,
}

impl MqttSession {
    pub fn new(limits: MqttLimits) -> Self {
        MqttSession {
            limits,
            dirs: [DirState::new(), DirState::new()],
            version: None,
            version_from_connect: false,
            connect_seen: false,
            missing_connect_reported: false,
            handshake: Handshake::NoConnack,
            session_present: false,
            client_disconnected: false,
            pending_subscribe: IdTable::new(),
            pending_unsubscribe: IdTable::new(),
            anomalies_emitted: 0,
            limit_reported: false,
            stats: MqttStats::default(),
            violations: Vec::new(),
        }
    }

    /// Protocol version: from the CONNECT, or inferred for a flow seen
    /// without one.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Whether [`MqttSession::version`] was inferred rather than read from a
    /// CONNECT.
    pub fn version_inferred(&self) -> bool {
        self.version.is_some() && !self.version_from_connect
    }

    pub fn stats(&self) -> &MqttStats {
        &self.stats
    }

    /// Feed the next bytes of one direction's stream (any split).
    pub fn on_data(
        &mut self,
        _ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut Vec<MqttEvent>,
    ) {
        let i = dir.index();
        self.stats.bytes += data.len() as u64;
        let mut rest = data;
        loop {
            let st = &mut self.dirs[i];
            if st.skip > 0 {
                let k = usize::try_from(st.skip)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                st.skip -= k as u64;
                self.stats.bytes_skipped += k as u64;
                rest = rest.get(k..).unwrap_or_default();
            }
            let st = &mut self.dirs[i];
            // Bytes already held may form a packet (after a resync, or a
            // second packet behind the one just parsed).
            let held_ready = !st.desync && !st.buf.is_empty() && st.buf.len() >= st.want;
            if rest.is_empty() && !held_ready {
                return;
            }
            if st.desync {
                let take = RESYNC_WINDOW.saturating_sub(st.buf.len()).min(rest.len());
                st.buf
                    .extend_from_slice(rest.get(..take).unwrap_or_default());
                rest = rest.get(take..).unwrap_or_default();
                if !self.try_resync(i, dir) {
                    continue;
                }
            }
            let st = &mut self.dirs[i];
            if !st.buf.is_empty() {
                let take = st.want.saturating_sub(st.buf.len()).min(rest.len());
                st.buf
                    .extend_from_slice(rest.get(..take).unwrap_or_default());
                rest = rest.get(take..).unwrap_or_default();
                if st.buf.len() < st.want {
                    return;
                }
                let mut buf = std::mem::take(&mut st.buf);
                let step = self.step(dir, &buf, out);
                let st = &mut self.dirs[i];
                match step {
                    Step::NeedMore(n) => {
                        st.want = n.max(buf.len() + 1);
                        st.buf = buf;
                    }
                    Step::Consumed { n, skip } => {
                        buf.drain(..n.min(buf.len()));
                        if buf.capacity() > BUFFER_KEEP_BYTES && buf.is_empty() {
                            buf = Vec::new();
                        }
                        st.want = buf.len();
                        st.buf = buf;
                        st.skip = skip;
                    }
                    Step::Desync => {
                        // The bytes after the bad header are searched for
                        // the next packet.
                        self.lose_sync(i, 1);
                        buf.drain(..1);
                        self.dirs[i].buf = buf;
                    }
                }
                continue;
            }
            match self.step(dir, rest, out) {
                Step::NeedMore(n) => {
                    let st = &mut self.dirs[i];
                    st.buf.extend_from_slice(rest);
                    st.want = n.max(rest.len() + 1);
                    return;
                }
                Step::Consumed { n, skip } => {
                    rest = rest.get(n..).unwrap_or_default();
                    self.dirs[i].skip = skip;
                }
                Step::Desync => {
                    self.lose_sync(i, 1);
                    rest = rest.get(1..).unwrap_or_default();
                }
            }
        }
    }

    /// `missing` bytes of one direction were not captured.
    pub fn on_gap(
        &mut self,
        _ts: Timestamp,
        dir: Direction,
        missing: u64,
        out: &mut Vec<MqttEvent>,
    ) {
        let i = dir.index();
        self.stats.gaps += 1;
        let st = &mut self.dirs[i];
        if st.desync {
            // Bytes held for resynchronisation cannot chain across the gap.
            self.stats.bytes_discarded += st.buf.len() as u64;
            st.buf.clear();
            return;
        }
        if st.buf.is_empty() && st.skip >= missing {
            // The gap lies inside a payload that is skipped anyway.
            st.skip -= missing;
            self.stats.gap_bytes_absorbed += missing;
            return;
        }
        let dropped = st.buf.len();
        let msg_type = st.buf.first().map(|b| b >> 4);
        st.gap_seen = true;
        self.lose_sync(i, dropped as u64);
        self.anomaly(
            out,
            AnomalyKind::StreamGap,
            msg_type,
            format!(
                "{missing} bytes missing from the {dir:?} stream; {dropped} buffered bytes dropped, looking for the next packet"
            ),
        );
    }

    /// The flow ended: report a packet left unfinished in either direction.
    pub fn on_close(&mut self, _ts: Timestamp, out: &mut Vec<MqttEvent>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let st = &mut self.dirs[dir.index()];
            let buffered = st.buf.len();
            let skip = st.skip;
            let msg_type = st.buf.first().map(|b| b >> 4);
            st.buf = Vec::new();
            st.want = 0;
            st.skip = 0;
            if buffered > 0 {
                self.anomaly(
                    out,
                    AnomalyKind::TruncatedPacket,
                    msg_type,
                    format!("{dir:?} stream ended {buffered} bytes into a packet"),
                );
            } else if skip > 0 {
                self.anomaly(
                    out,
                    AnomalyKind::TruncatedPacket,
                    None,
                    format!("{dir:?} stream ended {skip} bytes before the end of a packet"),
                );
            }
        }
    }

    /// Look in the bytes held since framing was lost for a position where a
    /// plausible packet chain starts (see [`chain_plausible`]); bytes before
    /// it are dropped. On success the held bytes are left in the buffer to
    /// be parsed as the next packet(s).
    #[cold]
    fn try_resync(&mut self, i: usize, dir: Direction) -> bool {
        let st = &mut self.dirs[i];
        let mut offset = 0;
        let mut found = false;
        while offset < st.buf.len() {
            match chain_plausible(st.buf.get(offset..).unwrap_or_default(), dir) {
                Probe::Match => {
                    found = true;
                    break;
                }
                Probe::NeedMore => break,
                Probe::NoMatch => offset += 1,
            }
        }
        if !found && offset == 0 && st.buf.len() >= RESYNC_WINDOW {
            // The candidate at the start never decides: give it up.
            offset = 1;
        }
        st.buf.drain(..offset);
        self.stats.bytes_discarded += offset as u64;
        if found {
            st.desync = false;
            st.want = st.buf.len();
            self.stats.resyncs += 1;
        }
        found
    }

    #[cold]
    fn lose_sync(&mut self, i: usize, discarded: u64) {
        let st = &mut self.dirs[i];
        st.buf.clear();
        st.want = 0;
        st.skip = 0;
        st.desync = true;
        self.stats.desyncs += 1;
        self.stats.bytes_discarded += discarded;
    }

    /// Try to handle the packet at the start of `avail`.
    fn step(&mut self, dir: Direction, avail: &[u8], out: &mut Vec<MqttEvent>) -> Step {
        let h = match parse_fixed_header(avail) {
            Ok(Status::Done(h)) => h,
            Ok(Status::Incomplete(n)) => return Step::NeedMore(n),
            Err(FrameError::RemainingLengthTooLong) => {
                let msg_type = avail.first().map(|b| b >> 4);
                self.anomaly(
                    out,
                    AnomalyKind::RemainingLengthTooLong,
                    msg_type,
                    "remaining length continues past its fourth byte; packet boundaries lost",
                );
                return Step::Desync;
            }
        };
        let total = h.total_len();
        let have = avail
            .len()
            .min(usize::try_from(total).unwrap_or(usize::MAX));
        let skip = total - have as u64;
        if h.remaining_len > self.limits.max_packet_bytes {
            self.stats.too_large += 1;
            self.unparsed(dir, &h, out);
            self.anomaly(
                out,
                AnomalyKind::TooLarge,
                Some(h.packet_type.code()),
                format!(
                    "remaining length {} above the {}-byte limit; skipped",
                    h.remaining_len, self.limits.max_packet_bytes
                ),
            );
            return Step::Consumed { n: have, skip };
        }
        let body = avail.get(h.header_len..have).unwrap_or_default();
        if h.packet_type == PacketType::Publish {
            return match self.handle_publish(dir, &h, body, out) {
                Some(needed) => Step::NeedMore(h.header_len + needed),
                None => Step::Consumed { n: have, skip },
            };
        }
        if skip > 0 {
            return Step::NeedMore(have + usize::try_from(skip).unwrap_or(usize::MAX));
        }
        self.handle_packet(dir, &h, body, out);
        Step::Consumed { n: have, skip: 0 }
    }

    /// PUBLISH from the first bytes of its body; `Some(n)` when `n` body
    /// bytes are needed.
    fn handle_publish(
        &mut self,
        dir: Direction,
        h: &FixedHeader,
        prefix: &[u8],
        out: &mut Vec<MqttEvent>,
    ) -> Option<usize> {
        let want = self.limits.payload_head_bytes;
        self.violations.clear();
        if let Some(version @ (ProtocolVersion::V3_1 | ProtocolVersion::V3_1_1)) = self.version
            && let Some(p) = parse_publish_clean(h, prefix, want)
        {
            self.on_publish(dir, h, &p, version, out);
            return None;
        }
        let (result, version) = match self.version {
            Some(v) => (parse_publish(h, prefix, v, want, &mut self.violations), v),
            // Without a CONNECT: read it as 5.0 if its properties decode
            // cleanly, else as 3.1.1. This guess is not remembered.
            None => match parse_publish(h, prefix, ProtocolVersion::V5, want, &mut self.violations)
            {
                Ok(Status::Incomplete(n)) => return Some(n),
                Ok(Status::Done(p)) if self.violations.is_empty() => {
                    (Ok(Status::Done(p)), ProtocolVersion::V5)
                }
                _ => {
                    self.violations.clear();
                    let v = ProtocolVersion::V3_1_1;
                    (parse_publish(h, prefix, v, want, &mut self.violations), v)
                }
            },
        };
        match result {
            Ok(Status::Incomplete(n)) => Some(n),
            Ok(Status::Done(p)) => {
                self.on_publish(dir, h, &p, version, out);
                None
            }
            Err(e) => {
                self.unparsed(dir, h, out);
                self.packet_error(e, out);
                None
            }
        }
    }

    fn handle_packet(
        &mut self,
        dir: Direction,
        h: &FixedHeader,
        body: &[u8],
        out: &mut Vec<MqttEvent>,
    ) {
        let pt = h.packet_type;
        let version = match self.version {
            Some(v) => v,
            None => match infer_version(h, body) {
                Some(v) => {
                    if pt != PacketType::Connect {
                        self.version = Some(v);
                    }
                    v
                }
                None => ProtocolVersion::V3_1_1,
            },
        };
        self.violations.clear();
        match parse_packet(h, body, version, &mut self.violations) {
            Ok(packet) => self.on_packet(dir, h, packet, version, out),
            Err(e) => {
                self.unparsed(dir, h, out);
                if pt == PacketType::Connect && dir == Direction::ToServer {
                    let level = peek_connect_level(body);
                    self.on_connect_seen(level.and_then(ProtocolVersion::from_connect_level), out);
                }
                self.packet_error(e, out);
            }
        }
    }

    /// Report a packet whose body was not decoded.
    #[cold]
    fn unparsed(&mut self, dir: Direction, h: &FixedHeader, out: &mut Vec<MqttEvent>) {
        out.push(MqttEvent::Unparsed {
            msg_type: h.packet_type.code(),
            remaining_len: h.remaining_len,
        });
        self.common_checks(dir, h.packet_type, out);
    }

    #[cold]
    fn packet_error(&mut self, e: PacketError, out: &mut Vec<MqttEvent>) {
        let (kind, msg_type) = match e {
            PacketError::Malformed { packet, .. } => (AnomalyKind::MalformedPacket, packet.code()),
            PacketError::ReservedType(t) => (AnomalyKind::ReservedPacketType, t),
        };
        self.anomaly(out, kind, Some(msg_type), e.to_string());
        self.flush_violations(msg_type, out);
    }

    #[inline]
    fn flush_violations(&mut self, msg_type: u8, out: &mut Vec<MqttEvent>) {
        if !self.violations.is_empty() {
            self.report_violations(msg_type, out);
        }
    }

    #[cold]
    fn report_violations(&mut self, msg_type: u8, out: &mut Vec<MqttEvent>) {
        let violations = std::mem::take(&mut self.violations);
        for v in &violations {
            let detail = match v.value {
                Some(x) => format!("{} ({x:#x})", v.what),
                None => v.what.to_owned(),
            };
            self.anomaly(out, v.kind, Some(msg_type), detail);
        }
        self.violations = violations;
        self.violations.clear();
    }

    /// Checks every framed packet gets, in order after its event.
    fn common_checks(&mut self, dir: Direction, pt: PacketType, out: &mut Vec<MqttEvent>) {
        let code = pt.code();
        self.stats.packets += 1;
        self.dirs[dir.index()].packets += 1;
        if !self.connect_seen && pt != PacketType::Connect && !self.missing_connect_reported {
            self.missing_connect_reported = true;
            self.anomaly(
                out,
                AnomalyKind::MissingConnect,
                Some(code),
                format!("{} seen before any CONNECT on this flow", pt.name()),
            );
        }
        if pt == PacketType::Reserved {
            return;
        }
        let allowed = match dir {
            Direction::ToServer => pt.client_may_send(),
            Direction::ToClient => pt.server_may_send(self.version),
        };
        if !allowed {
            let by = match dir {
                Direction::ToServer => "client",
                Direction::ToClient => "server",
            };
            self.anomaly(
                out,
                AnomalyKind::UnexpectedDirection,
                Some(code),
                format!("{} sent by the {by}", pt.name()),
            );
        }
        if dir == Direction::ToServer && self.client_disconnected {
            self.anomaly(
                out,
                AnomalyKind::PacketAfterDisconnect,
                Some(code),
                format!("{} after the client's DISCONNECT", pt.name()),
            );
        }
        let handshake_packet = matches!(
            pt,
            PacketType::Connect | PacketType::Connack | PacketType::Auth | PacketType::Disconnect
        );
        if self.connect_seen && !handshake_packet {
            // A client need not wait for the CONNACK (3.1.1 §3.1.4 non-normative
            // comment; 5.0 §3.1.4): its packets right after the CONNECT are
            // legal, and a server that refuses discards them [MQTT-3.1.4-5]
            // (5.0 [MQTT-3.1.4-6]). The server's first packet MUST be the
            // CONNACK [MQTT-3.2.0-1] (5.0: only AUTH may come before it).
            // After a refusing CONNACK the server MUST close the connection
            // ([MQTT-3.2.2-5], 5.0 [MQTT-3.2.2-7]): any later packet, from
            // either side, is out of place.
            let state = match (self.handshake, dir) {
                (Handshake::Accepted, _) | (Handshake::NoConnack, Direction::ToServer) => None,
                (Handshake::NoConnack, Direction::ToClient) => {
                    Some("before the CONNACK".to_owned())
                }
                (Handshake::Refused(c), _) => {
                    Some(format!("after a CONNACK refusing with {c:#04x}"))
                }
            };
            if let Some(state) = state {
                self.anomaly(
                    out,
                    AnomalyKind::UnintroducedMessage,
                    Some(code),
                    format!("{} {state}", pt.name()),
                );
            }
        }
    }

    /// A string for an event, capped at `max_text_bytes`.
    fn text(&self, s: &MqttStr<'_>) -> Text {
        let max = self.limits.max_text_bytes;
        // An ASCII prefix is cut anywhere and needs no UTF-8 decoding; it is
        // also what the lossy conversion of the whole string starts with.
        let head = s.as_bytes().get(..max).unwrap_or(s.as_bytes());
        Text::from_ascii(head).unwrap_or_else(|| Text::new(&s.capped(max)))
    }

    #[inline]
    fn summary(&self, p: &super::properties::Properties<'_>) -> Option<Box<PropertySummary>> {
        if p.is_empty() {
            return None;
        }
        PropertySummary::from_properties(p, self.limits.max_text_bytes)
    }

    fn on_packet(
        &mut self,
        dir: Direction,
        h: &FixedHeader,
        packet: Packet<'_>,
        version: ProtocolVersion,
        out: &mut Vec<MqttEvent>,
    ) {
        let pt = h.packet_type;
        let code = pt.code();
        let max_items = self.limits.max_filters_per_event;
        match packet {
            Packet::Connect(c) => {
                out.push(MqttEvent::Connect(Box::new(self.connect_event(&c))));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                // A CONNECT from the server was reported above and changes
                // nothing. The client's Topic Alias Maximum bounds the
                // server's aliases (5.0 §3.1.2.11.5).
                if dir == Direction::ToServer
                    && self.on_connect_seen(c.version, out)
                    && c.version == Some(ProtocolVersion::V5)
                {
                    self.dirs[Direction::ToClient.index()].alias_maximum =
                        Some(topic_alias_maximum(&c.properties));
                }
            }
            Packet::Connack(c) => {
                let ev_code = if version == ProtocolVersion::V5 {
                    ConnackCode::V5(ReasonCode(c.code))
                } else {
                    ConnackCode::V3(ConnectReturnCode::from_code(c.code))
                };
                out.push(MqttEvent::Connack(ConnackEvent {
                    code: ev_code,
                    session_present: c.session_present,
                    properties: self.summary(&c.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                // A CONNACK from the client was reported above and changes
                // nothing.
                if dir != Direction::ToClient {
                    return;
                }
                if self.handshake != Handshake::NoConnack {
                    self.anomaly(
                        out,
                        AnomalyKind::ProtocolViolation,
                        Some(code),
                        "second CONNACK on the connection",
                    );
                }
                self.handshake = if c.code == 0 {
                    Handshake::Accepted
                } else {
                    Handshake::Refused(c.code)
                };
                self.session_present = c.session_present;
                if version == ProtocolVersion::V5 {
                    self.dirs[Direction::ToServer.index()].alias_maximum =
                        Some(topic_alias_maximum(&c.properties));
                }
            }
            Packet::Publish(p) => self.on_publish(dir, h, &p, version, out),
            Packet::Puback(a) => self.on_ack(dir, pt, &a, out),
            Packet::Pubrec(a) => self.on_ack(dir, pt, &a, out),
            Packet::Pubrel(a) => self.on_ack(dir, pt, &a, out),
            Packet::Pubcomp(a) => self.on_ack(dir, pt, &a, out),
            Packet::Subscribe(s) => {
                let filters = s
                    .filters
                    .iter()
                    .take(max_items)
                    .map(|(f, o)| {
                        let o = o.unwrap_or_default();
                        let v5 = version == ProtocolVersion::V5;
                        SubscriptionFilter {
                            filter: self.text(&f),
                            qos: Qos::from_bits(o),
                            no_local: v5 && o & 0x04 != 0,
                            retain_as_published: v5 && o & 0x08 != 0,
                            retain_handling: if v5 { (o >> 4) & 0x03 } else { 0 },
                        }
                    })
                    .collect();
                out.push(MqttEvent::Subscribe(SubscribeEvent {
                    packet_id: s.packet_id,
                    filters,
                    filter_count: s.filters.len(),
                    properties: self.summary(&s.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                self.track_request(pt, s.packet_id, s.filters.len(), out);
            }
            Packet::Unsubscribe(u) => {
                let filters = u
                    .filters
                    .iter()
                    .take(max_items)
                    .map(|(f, _)| self.text(&f))
                    .collect();
                out.push(MqttEvent::Unsubscribe(UnsubscribeEvent {
                    packet_id: u.packet_id,
                    filters,
                    filter_count: u.filters.len(),
                    properties: self.summary(&u.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                self.track_request(pt, u.packet_id, u.filters.len(), out);
            }
            Packet::Suback(a) => {
                out.push(MqttEvent::Suback(SubackEvent {
                    packet_id: a.packet_id,
                    codes: a
                        .codes
                        .iter()
                        .take(max_items)
                        .map(|&c| ReasonCode(c))
                        .collect(),
                    code_count: a.codes.len(),
                    properties: self.summary(&a.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                self.track_response(pt, a.packet_id, Some(a.codes.len()), out);
            }
            Packet::Unsuback(a) => {
                out.push(MqttEvent::Unsuback(UnsubackEvent {
                    packet_id: a.packet_id,
                    codes: a
                        .codes
                        .iter()
                        .take(max_items)
                        .map(|&c| ReasonCode(c))
                        .collect(),
                    code_count: a.codes.len(),
                    properties: self.summary(&a.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                let count = (version == ProtocolVersion::V5).then_some(a.codes.len());
                self.track_response(pt, a.packet_id, count, out);
            }
            Packet::Pingreq | Packet::Pingresp => {
                out.push(if pt == PacketType::Pingreq {
                    MqttEvent::Pingreq
                } else {
                    MqttEvent::Pingresp
                });
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
            }
            Packet::Disconnect(d) => {
                out.push(MqttEvent::Disconnect(DisconnectEvent {
                    reason: d.reason,
                    properties: self.summary(&d.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
                if dir == Direction::ToServer {
                    self.client_disconnected = true;
                }
            }
            Packet::Auth(a) => {
                out.push(MqttEvent::Auth(AuthEvent {
                    reason: a.reason,
                    properties: self.summary(&a.properties),
                }));
                self.common_checks(dir, pt, out);
                self.flush_violations(code, out);
            }
        }
    }

    /// Note a CONNECT; false (and an anomaly) when it is not the first
    /// [MQTT-3.1.0-2].
    fn on_connect_seen(
        &mut self,
        version: Option<ProtocolVersion>,
        out: &mut Vec<MqttEvent>,
    ) -> bool {
        if self.connect_seen {
            self.anomaly(
                out,
                AnomalyKind::DuplicateConnect,
                Some(PacketType::Connect.code()),
                "second CONNECT on the connection",
            );
            return false;
        }
        self.connect_seen = true;
        if let Some(v) = version {
            self.version = Some(v);
            self.version_from_connect = true;
        }
        true
    }

    fn connect_event(&self, c: &Connect<'_>) -> ConnectEvent {
        ConnectEvent {
            version: c.version,
            protocol_level: c.protocol_level,
            protocol_name: self.text(&c.protocol_name),
            client_id: self.text(&c.client_id),
            username: c.username.as_ref().map(|u| self.text(u)),
            has_password: c.password_len.is_some(),
            password_len: c.password_len.unwrap_or_default(),
            credential: c.credential,
            keep_alive_secs: c.keep_alive,
            clean_start: c.clean_start(),
            will: c.will.as_ref().map(|w| WillEvent {
                topic: self.text(&w.topic),
                qos: w.qos,
                retain: w.retain,
                payload_len: w.payload_len,
                properties: self.summary(&w.properties),
            }),
            properties: self.summary(&c.properties),
        }
    }

    fn on_publish(
        &mut self,
        dir: Direction,
        h: &FixedHeader,
        p: &Publish<'_>,
        version: ProtocolVersion,
        out: &mut Vec<MqttEvent>,
    ) {
        let code = h.packet_type.code();
        let (topic, alias_problem) = self.resolve_topic(dir, p);
        let head = p
            .payload_head
            .get(..self.limits.payload_head_bytes.min(p.payload_head.len()))
            .unwrap_or_default();
        out.push(MqttEvent::Publish(PublishEvent {
            topic,
            topic_len: p.topic.len(),
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id,
            payload_len: p.payload_len,
            payload_head: PayloadHead::new(head),
            properties: self.summary(&p.properties),
        }));
        self.common_checks(dir, h.packet_type, out);
        self.flush_violations(code, out);
        if let Some(problem) = alias_problem {
            self.anomaly(out, AnomalyKind::InvalidTopicAlias, Some(code), problem);
        }
        // [MQTT-3.3.4-6]: a client's PUBLISH carries no Subscription Identifier.
        if version == ProtocolVersion::V5
            && dir == Direction::ToServer
            && p.properties
                .get(PropertyId::SubscriptionIdentifier)
                .is_some()
        {
            self.anomaly(
                out,
                AnomalyKind::PropertyNotAllowed,
                Some(code),
                "Subscription Identifier in a client's PUBLISH (0xb)",
            );
        }
        let due = match p.qos {
            Qos::AtLeastOnce => Due::Puback,
            Qos::ExactlyOnce => Due::Pubrec,
            Qos::AtMostOnce | Qos::Reserved => return,
        };
        let Some(id) = p.packet_id else { return };
        let max = self.limits.max_inflight;
        let table = &mut self.dirs[dir.index()].inflight;
        if table.get(id).is_some() {
            table.set(id, due);
            if !p.dup {
                self.anomaly(
                    out,
                    AnomalyKind::PacketIdInUse,
                    Some(code),
                    format!("packet identifier {id} reused while in flight"),
                );
            }
        } else if !table.insert(id, due, max) {
            self.anomaly(
                out,
                AnomalyKind::TooManyInflight,
                Some(code),
                format!("more than {max} QoS > 0 PUBLISHes in flight from the {dir:?} side"),
            );
        }
    }

    /// The topic an event should carry, and a Topic Alias problem if any
    /// (5.0 §3.3.2.3.4).
    fn resolve_topic(&mut self, dir: Direction, p: &Publish<'_>) -> (Text, Option<String>) {
        let topic = self.text(&p.topic);
        let Some(alias) = p.properties.topic_alias() else {
            return (topic, None);
        };
        let max_aliases = self.limits.max_topic_aliases;
        let st = &mut self.dirs[dir.index()];
        let mut problem = None;
        if let Some(maximum) = st.alias_maximum
            && alias > maximum
        {
            // [MQTT-3.3.2-9], [MQTT-3.3.2-10].
            problem = Some(format!(
                "topic alias {alias} above the announced maximum {maximum}"
            ));
        }
        if alias == 0 {
            return (topic, problem);
        }
        if p.topic.is_empty() {
            match st.aliases.iter().find(|(a, _)| *a == alias) {
                Some((_, t)) => (t.clone(), problem),
                None => (
                    topic,
                    problem.or_else(|| Some(format!("topic alias {alias} used before being set"))),
                ),
            }
        } else {
            if let Some(e) = st.aliases.iter_mut().find(|(a, _)| *a == alias) {
                e.1.clone_from(&topic);
            } else if st.aliases.len() < max_aliases {
                st.aliases.push((alias, topic.clone()));
            }
            (topic, problem)
        }
    }

    /// Whether a missing PUBLISH / SUBSCRIBE can be told from one merely
    /// not seen: the session started with its CONNECT, did not resume an
    /// earlier one (Session Present, 5.0 §4.4), and the sender's stream had no
    /// gap.
    fn tracking_reliable(&self, sender: Direction) -> bool {
        self.connect_seen && !self.session_present && !self.dirs[sender.index()].gap_seen
    }

    /// PUBACK / PUBREC / PUBREL / PUBCOMP against the in-flight table of the
    /// side that sent the PUBLISH (5.0 §4.3.2, §4.3.3).
    fn on_ack(&mut self, dir: Direction, pt: PacketType, a: &Ack<'_>, out: &mut Vec<MqttEvent>) {
        let code = pt.code();
        let event = AckEvent {
            packet_id: a.packet_id,
            reason: a.reason,
            properties: self.summary(&a.properties),
        };
        out.push(match pt {
            PacketType::Puback => MqttEvent::Puback(event),
            PacketType::Pubrec => MqttEvent::Pubrec(event),
            PacketType::Pubrel => MqttEvent::Pubrel(event),
            _ => MqttEvent::Pubcomp(event),
        });
        self.common_checks(dir, pt, out);
        self.flush_violations(code, out);

        // PUBREL travels with the PUBLISH; the other three against it.
        let publisher = if pt == PacketType::Pubrel {
            dir
        } else {
            dir.reverse()
        };
        let reliable = self.tracking_reliable(publisher);
        let table = &mut self.dirs[publisher.index()].inflight;
        let reliable = reliable && !table.overflowed;
        let id = a.packet_id;
        let Some(due) = table.get(id) else {
            if reliable {
                self.anomaly(
                    out,
                    AnomalyKind::MissingPublish,
                    Some(code),
                    format!(
                        "{} for packet identifier {id} with no PUBLISH in flight",
                        pt.name()
                    ),
                );
            }
            return;
        };
        let ok = match (pt, due) {
            (PacketType::Puback, Due::Puback) => {
                table.remove(id);
                true
            }
            (PacketType::Pubrec, Due::Pubrec) => {
                // A failure reason ends the exchange (5.0 §4.3.3).
                if a.reason.is_failure() {
                    table.remove(id);
                } else {
                    table.set(id, Due::Pubrel);
                }
                true
            }
            (PacketType::Pubrel, Due::Pubrel) => {
                table.set(id, Due::Pubcomp);
                true
            }
            (PacketType::Pubcomp, Due::Pubcomp) => {
                table.remove(id);
                true
            }
            // Retransmissions of the previous step.
            (PacketType::Pubrec, Due::Pubrel) | (PacketType::Pubrel, Due::Pubcomp) => true,
            _ => false,
        };
        if !ok {
            let expected = match due {
                Due::Puback => "PUBACK",
                Due::Pubrec => "PUBREC",
                Due::Pubrel => "PUBREL",
                Due::Pubcomp => "PUBCOMP",
            };
            self.anomaly(
                out,
                AnomalyKind::QosHandshakeViolation,
                Some(code),
                format!(
                    "{} for packet identifier {id} while {expected} was due",
                    pt.name()
                ),
            );
        }
    }

    /// Record a SUBSCRIBE / UNSUBSCRIBE awaiting its acknowledgement.
    fn track_request(&mut self, pt: PacketType, id: u16, filters: usize, out: &mut Vec<MqttEvent>) {
        let max = self.limits.max_inflight;
        let table = if pt == PacketType::Subscribe {
            &mut self.pending_subscribe
        } else {
            &mut self.pending_unsubscribe
        };
        if table.get(id).is_some() {
            table.set(id, filters);
            self.anomaly(
                out,
                AnomalyKind::PacketIdInUse,
                Some(pt.code()),
                format!("packet identifier {id} reused while its acknowledgement is due"),
            );
        } else if !table.insert(id, filters, max) {
            self.anomaly(
                out,
                AnomalyKind::TooManyInflight,
                Some(pt.code()),
                format!("more than {max} {} awaiting acknowledgement", pt.name()),
            );
        }
    }

    /// Match a SUBACK / UNSUBACK to its request; `codes` is the number of
    /// return codes when the packet carries them ([MQTT-3.9.3-1],
    /// [MQTT-3.11.3-1]).
    fn track_response(
        &mut self,
        pt: PacketType,
        id: u16,
        codes: Option<usize>,
        out: &mut Vec<MqttEvent>,
    ) {
        let reliable = self.tracking_reliable(Direction::ToServer);
        let (table, missing) = if pt == PacketType::Suback {
            (&mut self.pending_subscribe, AnomalyKind::MissingSubscribe)
        } else {
            (
                &mut self.pending_unsubscribe,
                AnomalyKind::MissingUnsubscribe,
            )
        };
        let reliable = reliable && !table.overflowed;
        match table.remove(id) {
            Some(filters) => {
                if let Some(n) = codes
                    && n != filters
                {
                    self.anomaly(
                        out,
                        AnomalyKind::AckCountMismatch,
                        Some(pt.code()),
                        format!("{n} codes for {filters} topic filters"),
                    );
                }
            }
            None if reliable => self.anomaly(
                out,
                missing,
                Some(pt.code()),
                format!(
                    "{} for packet identifier {id} with no request pending",
                    pt.name()
                ),
            ),
            None => {}
        }
    }

    /// Emit an anomaly unless the session's budget is spent.
    #[cold]
    fn anomaly(
        &mut self,
        out: &mut Vec<MqttEvent>,
        kind: AnomalyKind,
        msg_type: Option<u8>,
        detail: impl Into<String>,
    ) {
        self.stats.anomalies += 1;
        if self.anomalies_emitted < self.limits.max_anomalies {
            self.anomalies_emitted += 1;
            let mut detail: String = detail.into();
            let cap = self.limits.max_text_bytes;
            if detail.len() > cap {
                let mut end = cap;
                while end > 0 && !detail.is_char_boundary(end) {
                    end -= 1;
                }
                detail.truncate(end);
            }
            out.push(MqttEvent::Anomaly(MqttAnomaly {
                kind,
                msg_type,
                detail,
            }));
        } else {
            self.stats.anomalies_suppressed += 1;
            if !self.limit_reported {
                self.limit_reported = true;
                out.push(MqttEvent::Anomaly(MqttAnomaly {
                    kind: AnomalyKind::AnomalyLimitReached,
                    msg_type: None,
                    detail: format!(
                        "{} anomalies reported; further ones are only counted",
                        self.limits.max_anomalies
                    ),
                }));
            }
        }
    }
}

/// Topic Alias Maximum of a CONNECT / CONNACK; 0 when absent (5.0
/// §3.1.2.11.5: "a value of 0 ... the Client does not accept any Topic
/// Aliases").
fn topic_alias_maximum(p: &super::properties::Properties<'_>) -> u16 {
    match p.get(PropertyId::TopicAliasMaximum) {
        Some(PropertyValue::TwoByte(v)) => v,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::credential::digest;

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;
    const T0: Timestamp = Timestamp(0);

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// A packet: first byte, Remaining Length (encoded per 5.0 §1.5.5), body.
    fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        let mut len = body.len();
        loop {
            let mut b = (len % 128) as u8;
            len /= 128;
            if len > 0 {
                b |= 0x80;
            }
            out.push(b);
            if len == 0 {
                break;
            }
        }
        out.extend_from_slice(body);
        out
    }

    fn s16(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// CONNECT 3.1.1 with user "alice" and password "s3cr3tPW".
    fn connect_311() -> Vec<u8> {
        pkt(
            0x10,
            &cat(&[
                &s16("MQTT"),
                &[4, 0xC2, 0, 60],
                &s16("dev-1"),
                &s16("alice"),
                &s16("s3cr3tPW"),
            ]),
        )
    }

    /// CONNECT 5.0, Topic Alias Maximum 10, no credentials.
    fn connect_5() -> Vec<u8> {
        pkt(
            0x10,
            &cat(&[
                &s16("MQTT"),
                &[5, 0x02, 0, 30, 3, 0x22, 0, 10],
                &s16("dev-5"),
            ]),
        )
    }

    fn run(s: &mut MqttSession, feed: &[(Direction, Vec<u8>)]) -> Vec<MqttEvent> {
        let mut out = Vec::new();
        for (d, b) in feed {
            s.on_data(T0, *d, b, &mut out);
        }
        out
    }

    fn session() -> MqttSession {
        MqttSession::new(MqttLimits::default())
    }

    fn kinds(ev: &[MqttEvent]) -> Vec<AnomalyKind> {
        ev.iter()
            .filter_map(|e| e.anomaly().map(|a| a.kind))
            .collect()
    }

    fn types(ev: &[MqttEvent]) -> Vec<u8> {
        ev.iter().filter_map(MqttEvent::msg_type).collect()
    }

    /// A 3.1.1 session using every packet type 1-14, as (direction, bytes).
    fn session_311() -> Vec<(Direction, Vec<u8>)> {
        vec![
            (C, connect_311()),
            (S, hex("20020000")),
            (
                C,
                pkt(0x82, &cat(&[&[0, 1], &s16("a/+"), &[1], &s16("b/#"), &[2]])),
            ),
            (S, hex("9004000101 02")),
            (C, pkt(0x30, &cat(&[&s16("a/x"), b"hello"]))),
            (C, pkt(0x32, &cat(&[&s16("a/y"), &[0, 7], b"q1"]))),
            (S, hex("40020007")),
            (C, pkt(0x34, &cat(&[&s16("a/z"), &[0, 8], b"q2"]))),
            (S, hex("50020008")),
            (C, hex("62020008")),
            (S, hex("70020008")),
            (C, pkt(0xA2, &cat(&[&[0, 2], &s16("a/+")]))),
            (S, hex("b0020002")),
            (C, hex("c000")),
            (S, hex("d000")),
            (C, hex("e000")),
        ]
    }

    #[test]
    fn all_311_packet_types_in_order() {
        let mut s = session();
        let ev = run(&mut s, &session_311());
        assert_eq!(kinds(&ev), vec![]);
        assert_eq!(
            types(&ev),
            vec![1, 2, 8, 9, 3, 3, 4, 3, 5, 6, 7, 10, 11, 12, 13, 14]
        );
        assert_eq!(s.version(), Some(ProtocolVersion::V3_1_1));
        assert!(!s.version_inferred());
        let MqttEvent::Connect(c) = &ev[0] else {
            panic!()
        };
        assert_eq!(c.client_id, "dev-1");
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert!(c.has_password);
        assert_eq!(c.password_len, 8);
        // connect_311() sends user "alice", password "s3cr3tPW".
        assert_eq!(c.credential, Some(digest("alice", "s3cr3tPW")));
        assert_ne!(c.credential, Some(digest("alice", "s3cr3tPw")));
        let MqttEvent::Subscribe(sub) = &ev[2] else {
            panic!()
        };
        assert_eq!(sub.filters.len(), 2);
        assert_eq!(
            (sub.filters[0].filter.as_str(), sub.filters[0].qos),
            ("a/+", Qos::AtLeastOnce)
        );
        assert_eq!(
            (sub.filters[1].filter.as_str(), sub.filters[1].qos),
            ("b/#", Qos::ExactlyOnce)
        );
        let MqttEvent::Publish(p) = &ev[4] else {
            panic!()
        };
        assert_eq!(
            (p.topic.as_str(), p.payload_len, &p.payload_head[..]),
            ("a/x", 5, &b"hello"[..])
        );
        assert_eq!(s.stats().packets, 16);
    }

    // Passwords are never kept: nothing in the events shows it.
    #[test]
    fn password_never_appears() {
        let mut s = session();
        let ev = run(&mut s, &session_311());
        let text = format!("{ev:?} {s:?}");
        assert!(!text.contains("s3cr3tPW"));
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let feed = session_311();
        let whole = run(&mut session(), &feed);
        // One byte at a time.
        let mut s = session();
        let mut bytewise = Vec::new();
        for (d, b) in &feed {
            for x in b {
                s.on_data(T0, *d, std::slice::from_ref(x), &mut bytewise);
            }
        }
        assert_eq!(whole, bytewise);
        // Each direction's packets glued into one call, and split at every
        // offset into two calls.
        let client: Vec<u8> = feed
            .iter()
            .filter(|(d, _)| *d == C)
            .flat_map(|(_, b)| b.clone())
            .collect();
        for cut in 0..=client.len() {
            let mut s = session();
            let mut out = Vec::new();
            s.on_data(T0, C, &client[..cut], &mut out);
            s.on_data(T0, C, &client[cut..], &mut out);
            let client_types: Vec<u8> = whole
                .iter()
                .filter(|e| matches!(e.msg_type(), Some(1 | 3 | 6 | 8 | 10 | 12 | 14)))
                .filter_map(MqttEvent::msg_type)
                .collect();
            assert_eq!(types(&out), client_types, "cut at {cut}");
        }
    }

    #[test]
    fn v5_session_with_auth_properties_and_aliases() {
        let mut s = session();
        let feed = vec![
            (C, connect_5()),
            // CONNACK: success, Topic Alias Maximum 5.
            (S, hex("2006 00 00 03 22 0005")),
            // AUTH 0x18 with Authentication Method "m".
            (C, pkt(0xF0, &cat(&[&[0x18, 4, 0x15], &s16("m")]))),
            // PUBLISH "t/1" binding alias 3, then one using the alias only.
            (C, pkt(0x30, &cat(&[&s16("t/1"), &[3, 0x23, 0, 3], b"x"]))),
            (C, pkt(0x30, &cat(&[&s16(""), &[3, 0x23, 0, 3], b"y"]))),
            // Alias 9 is above the announced 5; alias 4 was never set.
            (C, pkt(0x30, &cat(&[&s16("t/2"), &[3, 0x23, 0, 9], b"z"]))),
            (C, pkt(0x30, &cat(&[&s16(""), &[3, 0x23, 0, 4], b"w"]))),
            // DISCONNECT 0x04 (with Will).
            (C, hex("e00104")),
        ];
        let ev = run(&mut s, &feed);
        assert_eq!(s.version(), Some(ProtocolVersion::V5));
        assert_eq!(types(&ev), vec![1, 2, 15, 3, 3, 3, 3, 14]);
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::InvalidTopicAlias,
                AnomalyKind::InvalidTopicAlias
            ]
        );
        let topics: Vec<&str> = ev
            .iter()
            .filter_map(|e| match e {
                MqttEvent::Publish(p) => Some(p.topic.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(topics, vec!["t/1", "t/1", "t/2", ""]);
        let MqttEvent::Connack(ca) = &ev[1] else {
            panic!()
        };
        assert_eq!(ca.code, ConnackCode::V5(ReasonCode::SUCCESS));
        assert_eq!(
            ca.properties.as_ref().and_then(|p| p.topic_alias_maximum),
            Some(5)
        );
        let MqttEvent::Auth(a) = &ev[2] else { panic!() };
        assert_eq!(a.reason, ReasonCode::CONTINUE_AUTHENTICATION);
        assert_eq!(
            a.properties
                .as_ref()
                .and_then(|p| p.auth_method.clone())
                .as_deref(),
            Some("m")
        );
        let Some(MqttEvent::Disconnect(d)) = ev.last() else {
            panic!()
        };
        assert_eq!(d.reason, ReasonCode(4));
    }

    #[test]
    fn direction_rules() {
        let mut s = session();
        let ev = run(
            &mut s,
            &[
                (C, connect_311()),
                (S, hex("20020000")),
                (C, hex("20020000")),
                (S, connect_311()),
                (S, hex("c000")),
            ],
        );
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::UnexpectedDirection,
                AnomalyKind::UnexpectedDirection,
                AnomalyKind::UnexpectedDirection,
            ]
        );
        // 3.1.1 DISCONNECT from the server is not allowed; 5.0's is.
        let ev = run(
            &mut session(),
            &[(C, connect_311()), (S, hex("20020000")), (S, hex("e000"))],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnexpectedDirection]);
        let ev = run(
            &mut session(),
            &[(C, connect_5()), (S, hex("2003000000")), (S, hex("e0018b"))],
        );
        assert_eq!(kinds(&ev), vec![]);
    }

    #[test]
    fn missing_connect_once_and_version_inference() {
        let mut s = session();
        // Midstream 3.1.1: a PUBLISH whose payload "hello" cannot be a 5.0
        // property block, then a CONNACK of length 2.
        let ev = run(
            &mut s,
            &[
                (C, pkt(0x30, &cat(&[&s16("a"), b"hello"]))),
                (C, hex("c000")),
                (S, hex("d000")),
            ],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::MissingConnect]);
        let MqttEvent::Publish(p) = &ev[0] else {
            panic!()
        };
        assert_eq!(&p.payload_head[..], b"hello");
        assert_eq!(s.version(), None);
        let ev = run(&mut s, &[(S, hex("20020000"))]);
        assert_eq!(kinds(&ev), vec![]);
        assert_eq!(s.version(), Some(ProtocolVersion::V3_1_1));
        assert!(s.version_inferred());
        // Midstream 5.0: a PUBACK with a reason code settles it.
        let mut s = session();
        let ev = run(
            &mut s,
            &[
                (S, hex("4003000110")),
                (C, pkt(0x30, &cat(&[&s16("a"), &[0], b"hi"]))),
            ],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::MissingConnect]);
        assert_eq!(s.version(), Some(ProtocolVersion::V5));
        let MqttEvent::Publish(p) = &ev[2] else {
            panic!("{ev:?}")
        };
        assert_eq!(&p.payload_head[..], b"hi");
    }

    #[test]
    fn qos_handshakes() {
        let start = || {
            let mut s = session();
            run(&mut s, &[(C, connect_311()), (S, hex("20020000"))]);
            s
        };
        // PUBACK with no PUBLISH; PUBREC for a QoS 1 PUBLISH; identifier
        // reuse without DUP, then with DUP.
        let mut s = start();
        let ev = run(
            &mut s,
            &[
                (S, hex("40020009")),
                (C, pkt(0x32, &cat(&[&s16("a"), &[0, 1]]))),
                (S, hex("50020001")),
                (C, pkt(0x32, &cat(&[&s16("a"), &[0, 1]]))),
                (C, pkt(0x3A, &cat(&[&s16("a"), &[0, 1]]))),
                (S, hex("40020001")),
                (S, hex("40020001")),
            ],
        );
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::MissingPublish,
                AnomalyKind::QosHandshakeViolation,
                AnomalyKind::PacketIdInUse,
                AnomalyKind::MissingPublish,
            ]
        );
        // QoS 2 from the server: PUBREC by the client, PUBREL by the server,
        // PUBCOMP by the client; PUBCOMP before PUBREL is out of order.
        let mut s = start();
        let ev = run(
            &mut s,
            &[
                (S, pkt(0x34, &cat(&[&s16("a"), &[0, 5]]))),
                (C, hex("50020005")),
                (C, hex("70020005")),
                (S, hex("62020005")),
                (C, hex("70020005")),
            ],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::QosHandshakeViolation]);
        // A resumed session (Session Present) may acknowledge older
        // messages: no MissingPublish.
        let mut s = session();
        let ev = run(
            &mut s,
            &[
                (C, connect_311()),
                (S, hex("20020100")),
                (S, hex("40020009")),
            ],
        );
        assert_eq!(kinds(&ev), vec![]);
    }

    #[test]
    fn inflight_table_is_bounded() {
        let mut s = MqttSession::new(MqttLimits {
            max_inflight: 2,
            ..MqttLimits::default()
        });
        run(&mut s, &[(C, connect_311()), (S, hex("20020000"))]);
        let feed: Vec<(Direction, Vec<u8>)> = (1..=4u8)
            .map(|id| (C, pkt(0x32, &cat(&[&s16("a"), &[0, id]]))))
            .collect();
        let ev = run(&mut s, &feed);
        assert_eq!(kinds(&ev), vec![AnomalyKind::TooManyInflight]);
        // After overflow an unknown PUBACK is not reported as missing.
        let ev = run(&mut s, &[(S, hex("40020004")), (S, hex("40020001"))]);
        assert_eq!(kinds(&ev), vec![]);
        assert_eq!(s.dirs[0].inflight.entries.len(), 1);
    }

    #[test]
    fn subscribe_tracking() {
        let mut s = session();
        let ev = run(
            &mut s,
            &[
                (C, connect_311()),
                (S, hex("20020000")),
                (
                    C,
                    pkt(0x82, &cat(&[&[0, 1], &s16("a"), &[0], &s16("b"), &[0]])),
                ),
                (S, hex("9003000100")),
                (S, hex("9003000200")),
                (S, hex("b0020003")),
                (C, pkt(0x82, &cat(&[&[0, 4], &s16("a#"), &[0]]))),
            ],
        );
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::AckCountMismatch,
                AnomalyKind::MissingSubscribe,
                AnomalyKind::MissingUnsubscribe,
                AnomalyKind::InvalidTopicFilter,
            ]
        );
    }

    // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation; the first
    // one's version stays.
    #[test]
    fn duplicate_connect() {
        let mut s = session();
        let ev = run(
            &mut s,
            &[(C, connect_311()), (S, hex("20020000")), (C, connect_5())],
        );
        assert_eq!(types(&ev), vec![1, 2, 1]);
        assert_eq!(kinds(&ev), vec![AnomalyKind::DuplicateConnect]);
        assert_eq!(s.version(), Some(ProtocolVersion::V3_1_1));
    }

    // 3.1.1 §3.1.4, non-normative comment: "Clients are allowed to send
    // further Control Packets immediately after sending a CONNECT Packet;
    // Clients need not wait for a CONNACK Packet to arrive from the Server."
    // 5.0 §3.1.4 says the same. A SUBSCRIBE, a QoS 1 PUBLISH and a PINGREQ
    // sent before the CONNACK, answered after it, are not anomalies.
    #[test]
    fn client_packets_before_connack_are_legal_311() {
        let subscribe = pkt(0x82, &cat(&[&[0, 1], &s16("a/b"), &[1]]));
        let publish = pkt(0x32, &cat(&[&s16("t"), &[0, 2], b"x"]));
        let ev = run(
            &mut session(),
            &[
                (C, connect_311()),
                (C, subscribe),
                (C, publish),
                (C, hex("c000")),
                (S, hex("20020000")),
                (S, hex("9003000101")),
                (S, hex("40020002")),
                (S, hex("d000")),
            ],
        );
        assert_eq!(types(&ev), vec![1, 8, 3, 12, 2, 9, 4, 13]);
        assert_eq!(kinds(&ev), vec![]);
    }

    #[test]
    fn client_packets_before_connack_are_legal_5() {
        // 5.0 SUBSCRIBE and PUBLISH carry a Property Length (0 here).
        let subscribe = pkt(0x82, &cat(&[&[0, 1, 0], &s16("a/b"), &[1]]));
        let publish = pkt(0x32, &cat(&[&s16("t"), &[0, 2, 0], b"x"]));
        let ev = run(
            &mut session(),
            &[
                (C, connect_5()),
                (C, subscribe),
                (C, publish),
                (S, hex("2003000000")),
                (S, hex("900400010001")),
                (S, hex("40020002")),
            ],
        );
        assert_eq!(types(&ev), vec![1, 8, 3, 2, 9, 4]);
        assert_eq!(kinds(&ev), vec![]);
    }

    // [MQTT-3.2.0-1] (3.1.1): "The first packet sent from the Server to the
    // Client MUST be a CONNACK Packet"; 5.0 [MQTT-3.2.0-1]: the Server MUST
    // send a CONNACK with Success "before sending any Packet other than
    // AUTH". A server PUBLISH or PINGRESP ahead of the CONNACK is reported.
    #[test]
    fn server_packets_before_connack_are_anomalies() {
        let publish = pkt(0x30, &cat(&[&s16("t"), b"x"]));
        let ev = run(
            &mut session(),
            &[(C, connect_311()), (S, publish), (S, hex("20020000"))],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnintroducedMessage]);
        let ev = run(
            &mut session(),
            &[
                (C, connect_5()),
                (C, hex("c000")),
                (S, hex("d000")),
                (S, hex("2003000000")),
            ],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnintroducedMessage]);
        let a = ev.iter().find_map(MqttEvent::anomaly).unwrap();
        assert_eq!(a.msg_type, Some(13));
    }

    // 3.1.1 [MQTT-3.2.2-5]: "If a server sends a CONNACK packet containing a
    // non-zero return code it MUST then close the Network Connection", and
    // [MQTT-3.1.4-5] the Server "MUST NOT process any data sent by the
    // Client after the CONNECT Packet"; 5.0 [MQTT-3.2.2-7] (Reason Code 128
    // or greater) and [MQTT-3.1.4-6]. A client packet after the refusal is
    // reported; the one it sent before the CONNACK is not.
    #[test]
    fn client_packets_after_refusing_connack_are_anomalies() {
        let ev = run(
            &mut session(),
            &[
                (C, connect_311()),
                (C, hex("c000")),
                (S, hex("20020005")),
                (C, hex("c000")),
            ],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnintroducedMessage]);
        let pos = ev.iter().position(|e| e.anomaly().is_some()).unwrap();
        assert_eq!(types(&ev[..pos]), vec![1, 12, 2, 12]);
        let publish = pkt(0x30, &cat(&[&s16("t"), &[0], b"x"]));
        let ev = run(
            &mut session(),
            &[(C, connect_5()), (S, hex("2003008700")), (C, publish)],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnintroducedMessage]);
    }

    #[test]
    fn packet_after_disconnect() {
        let ev = run(
            &mut session(),
            &[
                (C, connect_311()),
                (S, hex("20020000")),
                (C, hex("e000")),
                (C, hex("c000")),
            ],
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::PacketAfterDisconnect]);
    }

    #[test]
    fn too_large_is_skipped_without_buffering() {
        let mut s = MqttSession::new(MqttLimits {
            max_packet_bytes: 100,
            ..MqttLimits::default()
        });
        let mut out = Vec::new();
        s.on_data(T0, C, &connect_311(), &mut out);
        // A 10,000-byte SUBSCRIBE announced, sent in 100-byte pieces, then
        // a PINGREQ.
        s.on_data(T0, C, &[0x82, 0x90, 0x4E], &mut out);
        for _ in 0..100 {
            s.on_data(T0, C, &[0x61; 100], &mut out);
            assert!(s.dirs[0].buf.capacity() < 200, "nothing of it is buffered");
        }
        s.on_data(T0, C, &hex("c000"), &mut out);
        assert_eq!(types(&out), vec![1, 8, 12]);
        assert!(out.contains(&MqttEvent::Unparsed {
            msg_type: 8,
            remaining_len: 10_000
        }));
        assert!(kinds(&out).contains(&AnomalyKind::TooLarge));
        assert_eq!(s.stats().too_large, 1);
        assert_eq!(s.stats().bytes_skipped, 10_000);
    }

    #[test]
    fn large_publish_payload_is_not_buffered() {
        let mut s = session();
        let mut out = Vec::new();
        let mut body = s16("big");
        body.extend(std::iter::repeat_n(0x42, 200_000));
        let packet = pkt(0x30, &body);
        for piece in packet.chunks(1000) {
            s.on_data(T0, C, piece, &mut out);
            assert!(s.dirs[0].buf.capacity() <= 2048);
        }
        let MqttEvent::Publish(p) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(p.payload_len, 200_000);
        assert_eq!(p.payload_head, vec![0x42; DEFAULT_PAYLOAD_HEAD_BYTES]);
    }

    #[test]
    fn remaining_length_too_long_then_resync() {
        let mut s = session();
        let mut out = Vec::new();
        s.on_data(T0, C, &connect_311(), &mut out);
        s.on_data(T0, S, &hex("20020000"), &mut out);
        s.on_data(T0, C, &hex("30ffffffff7f0000"), &mut out);
        s.on_data(T0, C, &hex("c000"), &mut out);
        assert_eq!(types(&out), vec![1, 2, 12]);
        assert_eq!(kinds(&out), vec![AnomalyKind::RemainingLengthTooLong]);
        assert_eq!(s.stats().resyncs, 1);
        assert_eq!(s.stats().bytes_discarded, 8);
        // In one call: the PINGREQ behind the bad header is found again.
        let mut s = session();
        let mut out = Vec::new();
        s.on_data(T0, C, &connect_311(), &mut out);
        s.on_data(T0, S, &hex("20020000"), &mut out);
        s.on_data(T0, C, &hex("30ffffffff7f c000"), &mut out);
        assert_eq!(types(&out), vec![1, 2, 12]);
        assert_eq!(s.stats().bytes_discarded, 6);
    }

    #[test]
    fn gaps() {
        // Inside a skipped payload: absorbed, nothing lost.
        let mut s = session();
        let mut out = Vec::new();
        let mut body = s16("t");
        body.extend([0u8; 500]);
        let packet = pkt(0x30, &body);
        s.on_data(T0, C, &packet[..200], &mut out);
        s.on_gap(T0, C, 100, &mut out);
        s.on_data(T0, C, &packet[300..], &mut out);
        s.on_data(T0, C, &hex("c000"), &mut out);
        assert_eq!(types(&out), vec![3, 12]);
        assert_eq!(s.stats().gap_bytes_absorbed, 100);
        // Inside a buffered packet: reported, then the next packet chain
        // restores the framing.
        let mut s = session();
        let mut out = Vec::new();
        let sub = pkt(0x82, &cat(&[&[0, 1], &s16("abc"), &[0]]));
        s.on_data(T0, C, &sub[..4], &mut out);
        s.on_gap(T0, C, 3, &mut out);
        s.on_data(T0, C, &hex("00"), &mut out);
        s.on_data(T0, C, &hex("c000"), &mut out);
        assert_eq!(
            kinds(&out),
            vec![AnomalyKind::StreamGap, AnomalyKind::MissingConnect]
        );
        assert_eq!(types(&out), vec![12]);
        assert_eq!(s.stats().resyncs, 1);
    }

    #[test]
    fn close_reports_truncation() {
        let mut s = session();
        let mut out = Vec::new();
        s.on_data(T0, C, &connect_311()[..10], &mut out);
        s.on_close(T0, &mut out);
        assert_eq!(kinds(&out), vec![AnomalyKind::TruncatedPacket]);
        assert_eq!(out[0].anomaly().and_then(|a| a.msg_type), Some(1));
    }

    #[test]
    fn anomaly_budget() {
        let mut s = MqttSession::new(MqttLimits {
            max_anomalies: 3,
            ..MqttLimits::default()
        });
        let feed: Vec<(Direction, Vec<u8>)> = (0..10).map(|_| (S, hex("c000"))).collect();
        let ev = run(&mut s, &feed);
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::MissingConnect,
                AnomalyKind::UnexpectedDirection,
                AnomalyKind::UnexpectedDirection,
                AnomalyKind::AnomalyLimitReached,
            ]
        );
        assert_eq!(s.stats().anomalies, 11);
        assert_eq!(s.stats().anomalies_suppressed, 8);
    }

    #[test]
    fn strings_in_events_are_capped() {
        let mut s = MqttSession::new(MqttLimits {
            max_text_bytes: 8,
            ..MqttLimits::default()
        });
        let topic = "x".repeat(300);
        let ev = run(&mut s, &[(C, connect_311()), (C, pkt(0x30, &s16(&topic)))]);
        let Some(MqttEvent::Publish(p)) = ev.iter().find(|e| e.msg_type() == Some(3)) else {
            panic!()
        };
        assert_eq!(p.topic, "xxxxxxxx");
        assert_eq!(p.topic_len, 300);
    }

    /// Deterministic mutations of valid streams: no panic, bounded buffers,
    /// and every event count sane.
    #[test]
    fn mutated_streams_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut base: Vec<(Direction, Vec<u8>)> = session_311();
        base.push((C, connect_5()));
        base.push((S, hex("2006 00 00 03 22 0005")));
        base.push((C, pkt(0x30, &cat(&[&s16("t/1"), &[3, 0x23, 0, 3], b"x"]))));
        let limits = MqttLimits {
            max_packet_bytes: 4096,
            ..MqttLimits::default()
        };
        for round in 0..3000 {
            let mut s = MqttSession::new(limits.clone());
            let mut out = Vec::new();
            for (d, bytes) in &base {
                let mut b = bytes.clone();
                match next() % 5 {
                    0 => {
                        let i = (next() as usize) % b.len();
                        b[i] = next() as u8;
                    }
                    1 => {
                        let n = (next() as usize) % (b.len() + 1);
                        b.truncate(n);
                    }
                    2 => {
                        let i = (next() as usize) % (b.len() + 1);
                        b.insert(i, next() as u8);
                    }
                    3 if next() % 4 == 0 => s.on_gap(T0, *d, next() % 50, &mut out),
                    _ => {}
                }
                let cut = (next() as usize) % (b.len() + 1);
                s.on_data(T0, *d, &b[..cut], &mut out);
                s.on_data(T0, *d, &b[cut..], &mut out);
                for st in &s.dirs {
                    assert!(
                        st.buf.len() <= 4096 + MAX_FIXED_HEADER_LEN_FOR_TESTS,
                        "round {round}"
                    );
                }
            }
            s.on_close(T0, &mut out);
            assert!(out.len() < 10_000, "round {round}");
        }
    }

    const MAX_FIXED_HEADER_LEN_FOR_TESTS: usize = super::super::parser::MAX_FIXED_HEADER_LEN;
}
