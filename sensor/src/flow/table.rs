//! The bidirectional flow table.
//!
//! Flows are keyed by the canonical 5-tuple plus VLAN ids, oriented client →
//! server (the SYN's sender, else a port heuristic), and expire on packet time:
//! a replay never reads the wall clock. The table holds at most `max_flows`
//! flows (derived from a memory cap); beyond that the least recently active
//! flow is evicted and counted.

use std::hash::BuildHasher;
use std::net::IpAddr;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::Direction;
use super::deadlines::{Deadline, Deadlines};
use super::reassembly::{ReassemblyBudget, ReassemblyLimits, ReassemblyStats, Stream, StreamEvent};
use crate::capture::Timestamp;
use crate::decode::{Packet, TcpSegment, Transport};

/// Flow table settings (config section `[flows]`). Units are in the names;
/// defaults are in `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Memory for flow records; `max_flows` is derived from it.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub memcap_bytes: usize,
    /// Memory for out-of-order TCP data across all streams.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub reassembly_memcap_bytes: usize,
    pub reassembly: ReassemblyLimits,
    /// A TCP flow that has not completed its handshake.
    pub tcp_new_timeout_secs: u64,
    pub tcp_established_timeout_secs: u64,
    /// After FIN in both directions or RST: time left for stragglers.
    pub tcp_closed_timeout_secs: u64,
    pub udp_timeout_secs: u64,
    pub other_timeout_secs: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            memcap_bytes: 128 << 20,
            reassembly_memcap_bytes: 64 << 20,
            reassembly: ReassemblyLimits::default(),
            tcp_new_timeout_secs: 30,
            tcp_established_timeout_secs: 300,
            tcp_closed_timeout_secs: 10,
            udp_timeout_secs: 60,
            other_timeout_secs: 60,
        }
    }
}

/// Transport class of a flow, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowTransport {
    Tcp,
    Udp,
    Icmp,
    Other,
}

impl FlowTransport {
    pub const ALL: [FlowTransport; 4] = [
        FlowTransport::Tcp,
        FlowTransport::Udp,
        FlowTransport::Icmp,
        FlowTransport::Other,
    ];

    pub fn of(protocol: u8) -> Self {
        match protocol {
            6 => FlowTransport::Tcp,
            17 => FlowTransport::Udp,
            1 | 58 => FlowTransport::Icmp,
            _ => FlowTransport::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FlowTransport::Tcp => "tcp",
            FlowTransport::Udp => "udp",
            FlowTransport::Icmp => "icmp",
            FlowTransport::Other => "other",
        }
    }
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// FIN in both directions, or RST, then the closed timeout passed.
    Closed,
    /// No packet within the idle timeout.
    Timeout,
    /// A new connection (SYN) reused the 5-tuple of a closed one.
    Reused,
    /// Evicted to make room (table full).
    Evicted,
    /// End of input or shutdown.
    Shutdown,
}

/// TCP connection state, as far as a passive observer can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// SYN seen, handshake not complete.
    New,
    Established,
    /// FIN seen in one direction.
    HalfClosed,
    /// FIN seen both ways, or RST.
    Closed,
}

/// Canonical key: the lower endpoint first, so both directions find the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
    pub protocol: u8,
    pub vlan: [u16; 2],
}

impl FlowKey {
    pub fn new(a: (IpAddr, u16), b: (IpAddr, u16), protocol: u8, vlan: [u16; 2]) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            lo,
            hi,
            protocol,
            vlan,
        }
    }
}

/// What the table knows about a flow, handed to handlers.
#[derive(Clone, Debug)]
pub struct FlowInfo {
    /// Sequential id, unique within a run.
    pub id: u64,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub protocol: u8,
    pub vlan: [u16; 2],
    pub client_mac: Option<[u8; 6]>,
    pub server_mac: Option<[u8; 6]>,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Packets and bytes (frame length on the wire), indexed by [`Direction::index`].
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub tcp_state: Option<TcpState>,
    /// The TCP handshake completed (or data flowed) at some point.
    pub established: bool,
}

impl FlowInfo {
    pub fn key(&self) -> FlowKey {
        FlowKey::new(self.client, self.server, self.protocol, self.vlan)
    }

    pub fn transport(&self) -> FlowTransport {
        FlowTransport::of(self.protocol)
    }

    /// A flow record for unit tests: one packet from 10.0.0.2:40000 to
    /// 10.0.0.1 on `server_port`, at time zero.
    #[cfg(test)]
    pub fn for_test(id: u64, protocol: u8, server_port: u16) -> FlowInfo {
        use std::net::Ipv4Addr;
        FlowInfo {
            id,
            client: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000),
            server: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), server_port),
            protocol,
            vlan: [0, 0],
            client_mac: None,
            server_mac: None,
            first_ts: Timestamp::default(),
            last_ts: Timestamp::default(),
            packets: [1, 0],
            bytes: [60, 0],
            tcp_state: None,
            established: false,
        }
    }
}

/// Receives what the table makes of packets: in-order stream bytes and gaps for
/// TCP, datagrams for UDP, and the end of each flow. `T` is the per-flow state
/// the handler keeps (protocol sessions), stored in the flow.
pub trait FlowHandler<T> {
    /// Every packet of a flow, after the flow's state was updated with it;
    /// `established_before` tells whether the TCP connection was established
    /// before this packet (a RST then is not a refused connection attempt).
    fn on_packet(
        &mut self,
        _info: &FlowInfo,
        _app: &mut T,
        _dir: Direction,
        _pkt: &Packet<'_>,
        _established_before: bool,
    ) {
    }

    fn on_stream(&mut self, info: &FlowInfo, app: &mut T, dir: Direction, ev: StreamEvent<'_>);
    fn on_datagram(&mut self, info: &FlowInfo, app: &mut T, dir: Direction, payload: &[u8]);
    fn on_close(&mut self, info: &FlowInfo, app: &mut T, reason: CloseReason);
}

/// Flow table counters, all monotonic except `active`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FlowStats {
    pub created: [u64; 4],
    pub active: u64,
    pub peak_active: u64,
    pub closed: u64,
    pub timed_out: u64,
    pub reused: u64,
    pub evicted: u64,
    pub max_flows: u64,
    /// Packets whose timestamp leapt more than an hour from the previous one.
    pub clock_jumps: u64,
    pub reassembly: ReassemblyStats,
}

impl FlowStats {
    pub fn created_by(&self, t: FlowTransport) -> u64 {
        self.created[t as usize]
    }

    pub fn created_total(&self) -> u64 {
        self.created.iter().sum()
    }
}

struct TcpStreams {
    streams: [Stream; 2],
    fin: [bool; 2],
    syn_ack_seen: bool,
    /// Sequence number of the client's SYN, to tell a retransmitted SYN from a new connection.
    client_isn: Option<u32>,
}

impl TcpStreams {
    /// The streams as a client's SYN with initial sequence number `isn`,
    /// the first packet of its flow, leaves them (see `track_tcp`): the
    /// client's stream starts after the SYN, the server's SYN-ACK is due.
    fn after_syn(isn: u32) -> Box<TcpStreams> {
        let mut streams = [Stream::default(), Stream::default()];
        streams[Direction::ToServer.index()].on_syn(isn);
        streams[Direction::ToClient.index()].expect_syn();
        Box::new(TcpStreams {
            streams,
            fin: [false, false],
            syn_ack_seen: false,
            client_isn: Some(isn),
        })
    }
}

/// Whether `seg` is a bare client SYN (no ACK, FIN, RST or data): all a
/// half-open flow of a SYN flood or a scan ever sees.
fn is_bare_syn(seg: &TcpSegment<'_>) -> bool {
    seg.flags.syn()
        && !seg.flags.ack()
        && !seg.flags.fin()
        && !seg.flags.rst()
        && seg.payload.is_empty()
        && seg.payload_wire_len == 0
}

struct Flow<T> {
    info: FlowInfo,
    /// The TCP streams of a TCP flow (`info.tcp_state` is set). A flow
    /// whose only packet so far is a bare client SYN has none yet: its
    /// initial sequence number is in `syn_isn`, and the streams are made
    /// from it ([`TcpStreams::after_syn`]) when a second packet comes, so
    /// that a half-open flow costs no allocation.
    tcp: Option<Box<TcpStreams>>,
    app: T,
    syn_isn: u32,
}

impl<T> Flow<T> {
    /// A TCP flow that has seen only its client's bare SYN.
    fn syn_only(&self) -> bool {
        self.tcp.is_none() && self.info.tcp_state.is_some()
    }

    /// The client's initial sequence number, once its SYN was seen.
    fn client_isn(&self) -> Option<u32> {
        match &self.tcp {
            Some(tcp) => tcp.client_isn,
            None => self.syn_only().then_some(self.syn_isn),
        }
    }
}

/// The flow table. `T` is the per-flow state of the [`FlowHandler`].
pub struct FlowTable<T> {
    cfg: FlowConfig,
    max_flows: usize,
    /// The flows' slots, by the hash of their key: four bytes an entry, so
    /// that the index of a million flows stays in cache; a key is compared
    /// with its flow's record only when the hash's tag matches.
    index: HashTable<u32>,
    hasher: RandomState,
    slots: Vec<Option<Flow<T>>>,
    /// The hash of each slot's key (the index grows and drops entries
    /// without reading the flows' records).
    hashes: Vec<u64>,
    free: Vec<u32>,
    /// Bumped when a slot is reused, so stale expiry entries are recognised.
    generations: Vec<u32>,
    expiry: Deadlines,
    budget: ReassemblyBudget,
    next_id: u64,
    /// Timestamp of the previous packet.
    clock: Timestamp,
    pub stats: FlowStats,
}

/// Worst case of the index's memory over its entries' size (see `bytes_per_flow`).
const INDEX_GROWTH_FACTOR: usize = 3;

/// What the allocator adds to each heap allocation, for memory accounting.
const ALLOCATION_OVERHEAD_BYTES: usize = 16;

/// A step in packet time larger than this (either way) is a clock jump.
pub const MAX_CLOCK_STEP_NANOS: u64 = 3600 * 1_000_000_000;

impl<T: Default> FlowTable<T> {
    /// Bytes one flow costs: the record, its TCP state (counted for every flow,
    /// with the allocator's header, though a flow that saw only a bare SYN
    /// has none yet: any of them may get it), its index entry, its key's
    /// hash, its expiry entry, its generation and its free-list slot. The
    /// index grows by doubling, so its entry (a slot number and a control
    /// byte) is counted three times over its size with the load factor:
    /// rounding up to a power of two, plus the old table while it is copied
    /// into the new one. The expiry queues grow by doubling too: their entry
    /// is counted twice.
    pub fn bytes_per_flow() -> usize {
        std::mem::size_of::<Option<Flow<T>>>()
            + std::mem::size_of::<TcpStreams>()
            + ALLOCATION_OVERHEAD_BYTES
            + INDEX_GROWTH_FACTOR * (std::mem::size_of::<u32>() + 1) * 8 / 7
            + std::mem::size_of::<u64>()
            + 2 * std::mem::size_of::<Deadline>()
            + 2 * std::mem::size_of::<u32>()
    }

    pub fn new(cfg: FlowConfig) -> Self {
        Self::with_consumer_bytes(cfg, 0)
    }

    /// Like [`FlowTable::new`], for a handler that keeps `consumer_bytes`
    /// of its own per flow, counted against the same memory cap.
    pub fn with_consumer_bytes(cfg: FlowConfig, consumer_bytes: usize) -> Self {
        let max_flows = (cfg.memcap_bytes / (Self::bytes_per_flow() + consumer_bytes)).max(1);
        // The records are reserved up front (dense, and untouched pages cost
        // no resident memory); the index and the expiry queues grow with the
        // flows, so that a small working set stays in cache.
        FlowTable {
            cfg,
            max_flows,
            index: HashTable::new(),
            hasher: RandomState::default(),
            slots: Vec::with_capacity(max_flows),
            hashes: Vec::with_capacity(max_flows),
            free: Vec::new(),
            generations: Vec::with_capacity(max_flows),
            expiry: Deadlines::default(),
            budget: ReassemblyBudget::new(cfg.reassembly_memcap_bytes),
            next_id: 0,
            clock: Timestamp::default(),
            stats: FlowStats {
                max_flows: max_flows as u64,
                ..FlowStats::default()
            },
        }
    }

    pub fn max_flows(&self) -> usize {
        self.max_flows
    }

    pub fn active(&self) -> usize {
        self.index.len()
    }

    /// A flow's deadline (nanoseconds of packet time) and its lane.
    fn deadline(&self, info: &FlowInfo) -> (usize, i64) {
        let (lane, secs) = timeout(&self.cfg, info.protocol, info.tcp_state);
        (lane, info.last_ts.saturating_add_secs(secs).as_nanos())
    }

    /// Expire every flow whose deadline is before `now` (packet time).
    pub fn expire(&mut self, now: Timestamp, handler: &mut dyn FlowHandler<T>) {
        self.expire_part(now, usize::MAX, handler);
    }

    /// Part of [`FlowTable::expire`]: at most `limit` flows. True when it
    /// stopped at the limit (more may be due).
    pub fn expire_part(
        &mut self,
        now: Timestamp,
        limit: usize,
        handler: &mut dyn FlowHandler<T>,
    ) -> bool {
        let mut closed = 0;
        // Strictly past the deadline: timestamps saturated at the end of the
        // representable range must not expire flows on every packet.
        while closed < limit
            && let Some((_, slot, generation)) = self.expiry.pop_before(now.as_nanos())
        {
            let Some(Some(flow)) = self.slots.get(slot as usize) else {
                continue;
            };
            if self.generations[slot as usize] != generation {
                continue;
            }
            let (lane, actual) = self.deadline(&flow.info);
            if actual >= now.as_nanos() {
                self.expiry.push(lane, (actual, slot, generation));
                continue;
            }
            let reason = if flow.info.tcp_state == Some(TcpState::Closed) {
                self.stats.closed += 1;
                CloseReason::Closed
            } else {
                self.stats.timed_out += 1;
                CloseReason::Timeout
            };
            self.remove(slot, reason, handler);
            closed += 1;
        }
        closed == limit
    }

    /// Close every flow (end of input or shutdown).
    pub fn flush(&mut self, handler: &mut dyn FlowHandler<T>) {
        self.flush_part(0, usize::MAX, handler);
    }

    /// Part of [`FlowTable::flush`]: closes at most `limit` flows, from
    /// slot `from` on. Returns the slot to go on from, or `None` when every
    /// flow is closed.
    pub fn flush_part(
        &mut self,
        from: u32,
        limit: usize,
        handler: &mut dyn FlowHandler<T>,
    ) -> Option<u32> {
        let mut closed = 0;
        for slot in from..self.slots.len() as u32 {
            if self.slots[slot as usize].is_some() {
                if closed == limit {
                    return Some(slot);
                }
                self.remove(slot, CloseReason::Shutdown, handler);
                closed += 1;
            }
        }
        self.expiry.clear();
        None
    }

    /// Drop the least recently active flow (the earliest real deadline).
    fn evict_one(&mut self, handler: &mut dyn FlowHandler<T>) {
        while let Some((deadline, slot, generation)) = self.expiry.pop() {
            let Some(Some(flow)) = self.slots.get(slot as usize) else {
                continue;
            };
            if self.generations[slot as usize] != generation {
                continue;
            }
            let (lane, actual) = self.deadline(&flow.info);
            if actual > deadline {
                self.expiry.push(lane, (actual, slot, generation));
                continue;
            }
            self.stats.evicted += 1;
            self.remove(slot, CloseReason::Evicted, handler);
            return;
        }
    }

    fn remove(&mut self, slot: u32, reason: CloseReason, handler: &mut dyn FlowHandler<T>) {
        let Some(mut flow) = self.slots[slot as usize].take() else {
            return;
        };
        let hash = self.hashes[slot as usize];
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        if let Some(tcp) = flow.tcp.as_mut() {
            for dir in [Direction::ToServer, Direction::ToClient] {
                let info = &flow.info;
                let app = &mut flow.app;
                tcp.streams[dir.index()].close(
                    &mut self.budget,
                    &mut self.stats.reassembly,
                    &mut |ev| handler.on_stream(info, app, dir, ev),
                );
                tcp.streams[dir.index()].release(&mut self.budget);
            }
        }
        handler.on_close(&flow.info, &mut flow.app, reason);
        self.free.push(slot);
        self.stats.active = self.index.len() as u64;
    }

    /// Account one decoded packet to its flow, creating the flow if needed,
    /// and pass its payload on (reassembled for TCP).
    pub fn process(&mut self, pkt: &Packet<'_>, handler: &mut dyn FlowHandler<T>) {
        // Packet time drives expiry, but a timestamp that leaps far from the
        // previous one (a damaged or spliced capture) must not expire every
        // flow at once: expiry waits for a second packet that agrees with it.
        let step = pkt.ts.as_nanos().abs_diff(self.clock.as_nanos());
        if self.stats.created_total() == 0 || step <= MAX_CLOCK_STEP_NANOS {
            self.expire(pkt.ts, handler);
        } else {
            self.stats.clock_jumps += 1;
        }
        self.clock = pkt.ts;
        let (sport, dport) = pkt.transport.ports();
        let protocol = pkt.transport.protocol();
        let key = FlowKey::new((pkt.src, sport), (pkt.dst, dport), protocol, pkt.vlan);
        let hash = self.hasher.hash_one(key);
        let mut slot = self.find(hash, &key);

        if let (Some(s), Transport::Tcp(seg)) = (slot, &pkt.transport) {
            // A fresh SYN on a finished or half-open connection starts a new
            // one (port reuse); the same SYN again (same initial sequence
            // number) is a retransmission.
            let reused = seg.flags.syn()
                && !seg.flags.ack()
                && self.slots[s as usize]
                    .as_ref()
                    .is_some_and(|f| is_new_connection(f, seg.seq));
            if reused {
                self.stats.reused += 1;
                self.remove(s, CloseReason::Reused, handler);
                slot = None;
            }
        }
        let created = slot.is_none();
        let slot = match slot {
            Some(s) => s,
            None => self.create(key, hash, pkt, handler),
        };
        {
            let Some(flow) = self.slots[slot as usize].as_mut() else {
                return;
            };
            let syn_only = flow.syn_only();
            if syn_only && !created {
                flow.tcp = Some(TcpStreams::after_syn(flow.syn_isn));
            }
            let dir = if (pkt.src, sport) == flow.info.client {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let info = &mut flow.info;
            info.last_ts = info.last_ts.max(pkt.ts);
            info.packets[dir.index()] += 1;
            info.bytes[dir.index()] += u64::from(pkt.wire_len);
            let established_before = info.established;
            if syn_only && created {
                // The bare SYN that created the flow: the state it leaves
                // is all in `syn_isn` (and `tcp_state`, New).
                handler.on_packet(&flow.info, &mut flow.app, dir, pkt, established_before);
                return;
            }
            match (&pkt.transport, flow.tcp.as_mut()) {
                (Transport::Tcp(seg), Some(tcp))
                    if (seg.flags.fin() || seg.flags.rst())
                        && !tcp.streams[dir.index()].in_window(seg.seq) =>
                {
                    // Not acceptable to the receiver (RFC 5961 §3.2): it
                    // neither ends the stream nor changes the state.
                    self.stats.reassembly.out_of_window += 1;
                    handler.on_packet(&flow.info, &mut flow.app, dir, pkt, established_before);
                }
                (Transport::Tcp(seg), Some(tcp)) => {
                    let was_closed = info.tcp_state == Some(TcpState::Closed);
                    track_tcp(info, tcp, dir, seg);
                    info.established |= info.tcp_state == Some(TcpState::Established);
                    if !was_closed && info.tcp_state == Some(TcpState::Closed) {
                        // The deadline just got shorter: queue it, the old entry
                        // is skipped when it comes up.
                        let (lane, secs) = timeout(&self.cfg, info.protocol, info.tcp_state);
                        let deadline = info.last_ts.saturating_add_secs(secs).as_nanos();
                        let generation = self.generations[slot as usize];
                        self.expiry.push(lane, (deadline, slot, generation));
                    }
                    let stream_cfg = self.cfg.reassembly;
                    let app = &mut flow.app;
                    let info = &flow.info;
                    handler.on_packet(info, app, dir, pkt, established_before);
                    let budget = &mut self.budget;
                    let stats = &mut self.stats.reassembly;
                    // Data kept for a SYN that has now come (this packet's).
                    for d in [dir.reverse(), dir] {
                        let (s, peer) = split_streams(&mut tcp.streams, d);
                        if s.early_ready() {
                            let mut sink =
                                |ev: StreamEvent<'_>| handler.on_stream(info, app, d, ev);
                            for e in s.take_early(budget) {
                                if let Some(p) = e.ack.and_then(|a| peer.unseen_ack(a)) {
                                    s.hold_for_peer(e.seq, p);
                                }
                                let len = e.bytes.len() as u32;
                                s.segment(
                                    e.seq,
                                    &e.bytes,
                                    len,
                                    e.ends_stream,
                                    &stream_cfg,
                                    budget,
                                    stats,
                                    &mut sink,
                                );
                            }
                        }
                    }
                    let (this, other) = split_streams(&mut tcp.streams, dir);
                    this.note_packet(pkt.ts.as_nanos());
                    other.note_packet(pkt.ts.as_nanos());
                    let ack = seg.flags.ack().then_some(seg.ack);
                    let ends_stream = seg.flags.fin() || seg.flags.rst();
                    if this.keep_early(seg.seq, ack, seg.payload, ends_stream, budget, stats) {
                        if let Some(a) = ack {
                            other.acked(a, stats);
                        }
                        return;
                    }
                    // Data that acknowledges peer bytes not delivered yet
                    // waits for them (an answer the tap delivered before
                    // its request).
                    if let Some(a) = ack.filter(|_| !seg.payload.is_empty()) {
                        if let Some(peer_offset) = other.unseen_ack(a) {
                            this.hold_for_peer(seg.seq, peer_offset);
                        }
                    }
                    let mut sink = |ev: StreamEvent<'_>| handler.on_stream(info, app, dir, ev);
                    this.segment(
                        seg.seq,
                        seg.payload,
                        seg.payload_wire_len,
                        seg.flags.fin() || seg.flags.rst(),
                        &stream_cfg,
                        budget,
                        stats,
                        &mut sink,
                    );
                    if seg.flags.ack() {
                        other.acked(seg.ack, stats);
                    }
                    // Each release may let the other direction's hold go;
                    // every round ends at least one hold.
                    while other.is_holding() || this.is_holding() {
                        let mut sink =
                            |ev: StreamEvent<'_>| handler.on_stream(info, app, dir.reverse(), ev);
                        let mut released = other.release_hold(this, budget, stats, &mut sink);
                        let mut sink = |ev: StreamEvent<'_>| handler.on_stream(info, app, dir, ev);
                        released |= this.release_hold(other, budget, stats, &mut sink);
                        if !released {
                            break;
                        }
                    }
                }
                (Transport::Udp { payload, .. }, _) => {
                    handler.on_packet(&flow.info, &mut flow.app, dir, pkt, established_before);
                    handler.on_datagram(&flow.info, &mut flow.app, dir, payload);
                }
                _ => handler.on_packet(&flow.info, &mut flow.app, dir, pkt, established_before),
            }
        }
    }

    /// The slot of the flow of `key` (whose hash is `hash`).
    fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&s| {
                slots[s as usize]
                    .as_ref()
                    .is_some_and(|f| f.info.key() == *key)
            })
            .copied()
    }

    fn create(
        &mut self,
        key: FlowKey,
        hash: u64,
        pkt: &Packet<'_>,
        handler: &mut dyn FlowHandler<T>,
    ) -> u32 {
        if self.index.len() >= self.max_flows {
            self.evict_one(handler);
        }
        let (client_is_src, tcp) = match &pkt.transport {
            Transport::Tcp(seg) => (tcp_client_is_src(seg), true),
            Transport::Udp {
                src_port, dst_port, ..
            } => (port_client_is_src(*src_port, *dst_port), false),
            _ => (true, false),
        };
        let (sport, dport) = pkt.transport.ports();
        let src = (pkt.src, sport);
        let dst = (pkt.dst, dport);
        let (client, server, client_mac, server_mac) = if client_is_src {
            (src, dst, pkt.src_mac, pkt.dst_mac)
        } else {
            (dst, src, pkt.dst_mac, pkt.src_mac)
        };
        let transport = FlowTransport::of(key.protocol);
        self.stats.created[transport as usize] += 1;
        let info = FlowInfo {
            id: self.next_id,
            client,
            server,
            protocol: key.protocol,
            vlan: key.vlan,
            client_mac,
            server_mac,
            first_ts: pkt.ts,
            last_ts: pkt.ts,
            packets: [0, 0],
            bytes: [0, 0],
            tcp_state: tcp.then_some(TcpState::New),
            established: false,
        };
        self.next_id += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.hashes.push(0);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.generations[slot as usize].wrapping_add(1);
        self.generations[slot as usize] = generation;
        let (lane, deadline) = self.deadline(&info);
        let bare_syn = match &pkt.transport {
            Transport::Tcp(seg) if is_bare_syn(seg) => Some(seg.seq),
            _ => None,
        };
        self.slots[slot as usize] = Some(Flow {
            info,
            tcp: (tcp && bare_syn.is_none()).then(|| {
                let mut streams = [Stream::default(), Stream::default()];
                // Seen first without its SYN: the capture started mid-way,
                // or a reordering tap delivered the SYN late. Data is kept
                // for a SYN for the hole wait before the streams start
                // mid-way.
                if !matches!(&pkt.transport, Transport::Tcp(seg) if seg.flags.syn()) {
                    streams.iter_mut().for_each(Stream::expect_syn);
                }
                Box::new(TcpStreams {
                    streams,
                    fin: [false, false],
                    syn_ack_seen: false,
                    client_isn: None,
                })
            }),
            app: T::default(),
            syn_isn: bare_syn.unwrap_or_default(),
        });
        self.hashes[slot as usize] = hash;
        let hashes = &self.hashes;
        self.index
            .insert_unique(hash, slot, |&s| hashes[s as usize]);
        self.expiry.push(lane, (deadline, slot, generation));
        self.stats.active = self.index.len() as u64;
        self.stats.peak_active = self.stats.peak_active.max(self.stats.active);
        slot
    }
}

/// The timeout of a flow of `protocol` in `state`: its lane in the expiry
/// queues (one per timeout, below [`super::deadlines::LANES`]) and its
/// seconds.
fn timeout(cfg: &FlowConfig, protocol: u8, state: Option<TcpState>) -> (usize, u64) {
    match (FlowTransport::of(protocol), state) {
        (FlowTransport::Tcp, Some(TcpState::New)) => (0, cfg.tcp_new_timeout_secs),
        (FlowTransport::Tcp, Some(TcpState::Closed)) => (1, cfg.tcp_closed_timeout_secs),
        (FlowTransport::Tcp, _) => (2, cfg.tcp_established_timeout_secs),
        (FlowTransport::Udp, _) => (3, cfg.udp_timeout_secs),
        _ => (4, cfg.other_timeout_secs),
    }
}

/// Whether a SYN (without ACK) with initial sequence number `isn` opens a
/// new connection on `flow`'s 4-tuple: the old one is finished (both FINs or
/// a RST), half-closed, or half-open (its own SYN was never followed by an
/// established connection), and `isn` is not its SYN's. A SYN on an
/// established connection is left to it (RFC 5961 §4: the receiver answers
/// it with a challenge ACK).
fn is_new_connection<T>(flow: &Flow<T>, isn: u32) -> bool {
    let client_isn = flow.client_isn();
    match flow.info.tcp_state {
        Some(TcpState::Closed | TcpState::HalfClosed) => client_isn != Some(isn),
        Some(TcpState::New) => client_isn.is_some_and(|i| i != isn),
        _ => false,
    }
}

fn split_streams(streams: &mut [Stream; 2], dir: Direction) -> (&mut Stream, &mut Stream) {
    let [a, b] = streams;
    match dir {
        Direction::ToServer => (a, b),
        Direction::ToClient => (b, a),
    }
}

/// Update the passive TCP state machine with one segment.
fn track_tcp(info: &mut FlowInfo, tcp: &mut TcpStreams, dir: Direction, seg: &TcpSegment<'_>) {
    let stream = &mut tcp.streams[dir.index()];
    if seg.flags.syn() {
        stream.on_syn(seg.seq);
        if seg.flags.ack() {
            tcp.syn_ack_seen = true;
            // The SYN-ACK acknowledges the client's ISN + 1, even when a
            // reordering tap delivers it before the client's SYN.
            tcp.streams[dir.reverse().index()].on_syn(seg.ack.wrapping_sub(1));
        } else if dir == Direction::ToServer {
            tcp.client_isn.get_or_insert(seg.seq);
            tcp.streams[Direction::ToClient.index()].expect_syn();
        }
    }
    if seg.flags.fin() {
        tcp.fin[dir.index()] = true;
    }
    let state = info.tcp_state.get_or_insert(TcpState::New);
    *state = if seg.flags.rst() || (tcp.fin[0] && tcp.fin[1]) {
        TcpState::Closed
    } else if tcp.fin[0] || tcp.fin[1] {
        TcpState::HalfClosed
    } else if *state == TcpState::New
        && (tcp.syn_ack_seen && seg.flags.ack() && !seg.flags.syn() || !seg.payload.is_empty())
    {
        TcpState::Established
    } else {
        *state
    };
}

/// Ports below this are taken as services when nothing better is known.
const WELL_KNOWN_PORT_LIMIT: u16 = 1024;

/// The sender of a SYN is the client; the sender of a SYN-ACK the server;
/// otherwise (picked up mid-stream) decide by ports.
fn tcp_client_is_src(seg: &TcpSegment<'_>) -> bool {
    match (seg.flags.syn(), seg.flags.ack()) {
        (true, false) => true,
        (true, true) => false,
        _ => port_client_is_src(seg.src_port, seg.dst_port),
    }
}

/// Port heuristic: the well-known (or otherwise lower) port is the server's.
fn port_client_is_src(src_port: u16, dst_port: u16) -> bool {
    let src_service = src_port < WELL_KNOWN_PORT_LIMIT;
    let dst_service = dst_port < WELL_KNOWN_PORT_LIMIT;
    match (src_service, dst_service) {
        (false, true) => true,
        (true, false) => false,
        _ => src_port >= dst_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use std::net::Ipv4Addr;

    #[derive(Default)]
    struct Recorder {
        data: [Vec<u8>; 2],
        /// Data events in the order the handler got them: (direction index, bytes).
        order: Vec<(usize, Vec<u8>)>,
        gaps: u64,
        datagrams: usize,
        closed: Vec<(u64, CloseReason)>,
    }

    impl FlowHandler<()> for Recorder {
        fn on_stream(&mut self, _: &FlowInfo, _: &mut (), dir: Direction, ev: StreamEvent<'_>) {
            match ev {
                StreamEvent::Data(d) => {
                    self.data[dir.index()].extend_from_slice(d);
                    self.order.push((dir.index(), d.to_vec()));
                }
                StreamEvent::Gap(n) => self.gaps += n,
            }
        }
        fn on_datagram(&mut self, _: &FlowInfo, _: &mut (), _: Direction, _: &[u8]) {
            self.datagrams += 1;
        }
        fn on_close(&mut self, info: &FlowInfo, _: &mut (), reason: CloseReason) {
            self.closed.push((info.id, reason));
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn tcp<'a>(
        secs: i64,
        from: (u8, u16),
        to: (u8, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &'a [u8],
    ) -> Packet<'a> {
        Packet {
            ts: Timestamp::from_secs_nanos(secs, 0),
            wire_len: 60 + payload.len() as u32,
            src_mac: None,
            dst_mac: None,
            vlan: [0, 0],
            src: ip(from.0),
            dst: ip(to.0),
            transport: Transport::Tcp(TcpSegment {
                src_port: from.1,
                dst_port: to.1,
                seq,
                ack,
                flags: TcpFlags(flags),
                window: 1000,
                payload,
                payload_wire_len: payload.len() as u32,
            }),
            reassembled: false,
        }
    }

    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const FINACK: u8 = TcpFlags::FIN | TcpFlags::ACK;

    #[test]
    fn handshake_data_and_close_in_both_directions() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let c = (1, 50000);
        let s = (2, 80);
        t.process(&tcp(0, c, s, 100, 0, SYN, b""), &mut r);
        t.process(&tcp(0, s, c, 900, 101, SYNACK, b""), &mut r);
        t.process(
            &tcp(0, c, s, 101, 901, ACK, b"GET / HTTP/1.1\r\n\r\n"),
            &mut r,
        );
        t.process(
            &tcp(0, s, c, 901, 119, ACK, b"HTTP/1.1 200 OK\r\n\r\n"),
            &mut r,
        );
        t.process(&tcp(1, c, s, 119, 920, FINACK, b""), &mut r);
        t.process(&tcp(1, s, c, 920, 120, FINACK, b""), &mut r);
        assert_eq!(r.data[0], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(r.data[1], b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(t.stats.created_by(FlowTransport::Tcp), 1);
        // Closed flows linger for stragglers, then leave on packet time.
        t.expire(Timestamp::from_secs_nanos(12, 0), &mut r);
        assert_eq!(r.closed, vec![(0, CloseReason::Closed)]);
        assert_eq!(t.active(), 0);
    }

    /// A table of `n` half-open connections to one server.
    fn half_open(n: u16) -> (FlowTable<()>, Recorder) {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        for port in 0..n {
            t.process(&tcp(0, (1, 40000 + port), (2, 80), 1, 0, SYN, b""), &mut r);
        }
        (t, r)
    }

    /// The flows closed at the end of input, part by part: each once, at
    /// most `limit` per part.
    #[test]
    fn a_flush_in_parts_closes_every_flow_once() {
        let (mut t, mut r) = half_open(10);
        let (mut from, mut parts) = (0, 0);
        while let Some(next) = t.flush_part(from, 3, &mut r) {
            assert_eq!(r.closed.len(), 3 * (parts + 1));
            (from, parts) = (next, parts + 1);
        }
        assert_eq!(parts, 3);
        let mut ids: Vec<u64> = r.closed.iter().map(|(id, _)| *id).collect();
        assert!(
            r.closed
                .iter()
                .all(|(_, why)| *why == CloseReason::Shutdown)
        );
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 10);
        assert_eq!(t.active(), 0);
    }

    /// Flows due together expire part by part, as many as one expiry would
    /// close.
    #[test]
    fn expiry_in_parts_closes_what_one_expiry_closes() {
        let (mut t, mut r) = half_open(7);
        let later = Timestamp::from_secs_nanos(3000, 0);
        let mut parts = 0;
        while t.expire_part(later, 3, &mut r) {
            parts += 1;
            assert_eq!(r.closed.len(), 3 * parts);
        }
        assert_eq!((parts, r.closed.len(), t.active()), (2, 7, 0));
        assert!(r.closed.iter().all(|(_, why)| *why == CloseReason::Timeout));
    }

    #[test]
    fn syn_ack_sender_is_the_server() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        // Capture starts at the SYN-ACK: the client is the receiver.
        t.process(&tcp(0, (2, 8080), (1, 40000), 5, 11, SYNACK, b""), &mut r);
        t.process(&tcp(0, (1, 40000), (2, 8080), 11, 6, ACK, b"hi"), &mut r);
        t.flush(&mut r);
        assert_eq!(r.data[Direction::ToServer.index()], b"hi");
    }

    #[test]
    fn syn_on_closed_flow_starts_a_new_one() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let c = (1, 50000);
        let s = (2, 23);
        t.process(&tcp(0, c, s, 1, 0, SYN, b""), &mut r);
        t.process(
            &tcp(0, s, c, 1, 2, TcpFlags::RST | TcpFlags::ACK, b""),
            &mut r,
        );
        // The same SYN again is a retransmission, not a new connection.
        t.process(&tcp(1, c, s, 1, 0, SYN, b""), &mut r);
        assert_eq!(t.stats.created_by(FlowTransport::Tcp), 1);
        t.process(&tcp(1, c, s, 77, 0, SYN, b""), &mut r);
        assert_eq!(t.stats.created_by(FlowTransport::Tcp), 2);
        assert_eq!(t.stats.reused, 1);
        assert_eq!(r.closed, vec![(0, CloseReason::Reused)]);
    }

    const RST: u8 = TcpFlags::RST;
    /// 395 MiB: the distance of the "gap" the in-order mix reported.
    const FAR: u32 = 395 << 20;

    /// One complete exchange on `c` -> `s` with client ISN `isn`, ended by
    /// `end` (a FIN exchange, or a RST from the client).
    fn exchange(t: &mut FlowTable<()>, r: &mut Recorder, at: i64, isn: u32, rst: bool) {
        let c = (1, 50000);
        let s = (2, 1883);
        t.process(&tcp(at, c, s, isn, 0, SYN, b""), r);
        t.process(&tcp(at, s, c, 7000, isn + 1, SYNACK, b""), r);
        t.process(&tcp(at, c, s, isn + 1, 7001, ACK, b"ping"), r);
        t.process(&tcp(at, s, c, 7001, isn + 5, ACK, b"pong"), r);
        if rst {
            t.process(&tcp(at, c, s, isn + 5, 0, RST, b""), r);
        } else {
            t.process(&tcp(at, c, s, isn + 5, 7005, FINACK, b""), r);
            t.process(&tcp(at, s, c, 7005, isn + 6, FINACK, b""), r);
            t.process(&tcp(at, c, s, isn + 6, 7006, ACK, b""), r);
        }
    }

    // The same 4-tuple used again with a new SYN and ISN after a RST, and
    // after a FIN exchange: two flows each, every byte delivered, no gap.
    #[test]
    fn port_reuse_after_rst_or_fin_is_two_flows_without_gap() {
        for rst in [true, false] {
            let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
            let mut r = Recorder::default();
            exchange(&mut t, &mut r, 0, 1000, rst);
            exchange(&mut t, &mut r, 1, 1000 + FAR, rst);
            t.flush(&mut r);
            assert_eq!(t.stats.created_by(FlowTransport::Tcp), 2, "rst: {rst}");
            assert_eq!(t.stats.reused, 1);
            assert_eq!(r.gaps, 0, "rst: {rst}");
            assert_eq!(t.stats.reassembly.gaps, 0);
            assert_eq!(r.data[0], b"pingping");
            assert_eq!(r.data[1], b"pongpong");
            assert_eq!(r.closed[0], (0, CloseReason::Reused));
        }
    }

    // A scanner's SYN left unanswered, then a SYN with another ISN on the
    // same 4-tuple that gets answered: the first attempt is a half-open flow
    // of its own. Taken as one flow, the second SYN's bytes would lie FAR
    // past the first ISN and be reported as a 395 MiB gap.
    #[test]
    fn new_syn_on_half_open_flow_starts_a_new_one() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let c = (1, 40000);
        let s = (2, 80);
        t.process(&tcp(0, c, s, 1, 0, SYN, b""), &mut r);
        t.process(&tcp(0, c, s, 1 + FAR, 0, SYN, b""), &mut r);
        t.process(&tcp(0, s, c, 50, 2 + FAR, SYNACK, b""), &mut r);
        t.process(&tcp(0, c, s, 2 + FAR, 51, ACK, b"GET"), &mut r);
        t.process(&tcp(0, s, c, 51, 5 + FAR, ACK, b"200"), &mut r);
        t.flush(&mut r);
        assert_eq!(t.stats.created_by(FlowTransport::Tcp), 2);
        assert_eq!(r.gaps, 0);
        assert_eq!(r.data, [b"GET".to_vec(), b"200".to_vec()]);
    }

    // RFC 5961 §3.2: a RST whose sequence number is outside the receive
    // window is not acceptable; §5.2 likewise an ACK of data never sent. The
    // connection goes on: no close, no gap up to the stray numbers.
    #[test]
    fn out_of_window_rst_fin_and_ack_neither_close_nor_gap() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let c = (1, 50000);
        let s = (2, 23);
        t.process(&tcp(0, c, s, 100, 0, SYN, b""), &mut r);
        t.process(&tcp(0, s, c, 900, 101, SYNACK, b""), &mut r);
        t.process(&tcp(0, c, s, 101, 901, ACK, b"user"), &mut r);
        t.process(&tcp(0, s, c, 901 + FAR, 0, RST, b""), &mut r);
        t.process(&tcp(0, c, s, 105 + FAR, 901, FINACK, b""), &mut r);
        t.process(&tcp(0, s, c, 901, 105 + FAR, ACK, b""), &mut r);
        t.process(&tcp(0, s, c, 901, 105, ACK, b"login:"), &mut r);
        // Had the RST closed the flow, it would leave 10 s later.
        t.expire(Timestamp::from_secs_nanos(11, 0), &mut r);
        assert!(r.closed.is_empty());
        t.process(&tcp(12, c, s, 105, 907, FINACK, b""), &mut r);
        t.process(&tcp(12, s, c, 907, 106, FINACK, b""), &mut r);
        t.expire(Timestamp::from_secs_nanos(23, 0), &mut r);
        assert_eq!(r.closed, vec![(0, CloseReason::Closed)]);
        assert_eq!(r.gaps, 0);
        assert_eq!(r.data, [b"user".to_vec(), b"login:".to_vec()]);
        assert_eq!(t.stats.reassembly.out_of_window, 3);
    }

    /// Handshake of `c` (ISN 100) with `s` (ISN 900).
    fn handshake(t: &mut FlowTable<()>, r: &mut Recorder, c: (u8, u16), s: (u8, u16)) {
        t.process(&tcp(0, c, s, 100, 0, SYN, b""), r);
        t.process(&tcp(0, s, c, 900, 101, SYNACK, b""), r);
        t.process(&tcp(0, c, s, 101, 901, ACK, b""), r);
    }

    // Issue 16: the tap delivered the server's answer (acknowledging the
    // request) before the request. The session gets the request first.
    #[test]
    fn answer_delivered_before_its_request_reaches_the_session_after_it() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 1883));
        handshake(&mut t, &mut r, c, s);
        t.process(&tcp(0, s, c, 901, 105, ACK, b"pong"), &mut r);
        assert!(r.order.is_empty());
        t.process(&tcp(0, c, s, 101, 901, ACK, b"ping"), &mut r);
        assert_eq!(r.order, vec![(0, b"ping".to_vec()), (1, b"pong".to_vec())]);
        assert_eq!(t.stats.reassembly.held_for_peer_segments, 1);
        assert_eq!(t.stats.reassembly.holds_released_early, 0);
        assert_eq!(t.stats.reassembly.out_of_order_segments, 0);
    }

    // A telnet server's banner (two segments, the second first) overtook
    // its SYN-ACK on a reordering tap: the banner is kept for the SYN-ACK and delivered whole, not taken as a mid-stream start
    // that would drop its first segment as "retransmitted".
    #[test]
    fn data_before_its_syn_ack_waits_for_it() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 23));
        t.process(&tcp(0, c, s, 100, 0, SYN, b""), &mut r);
        t.process(&tcp(0, s, c, 907, 101, ACK, b"in: "), &mut r);
        t.process(&tcp(0, s, c, 901, 101, ACK, b"login:"), &mut r);
        assert!(r.order.is_empty());
        t.process(&tcp(0, s, c, 900, 101, SYNACK, b""), &mut r);
        t.process(&tcp(0, c, s, 101, 911, ACK, b"root"), &mut r);
        t.flush(&mut r);
        assert_eq!(r.data, [b"root".to_vec(), b"login:in: ".to_vec()]);
        assert_eq!(t.stats.reassembly.midstream_pickups, 0);
        assert_eq!(t.stats.reassembly.retransmitted_bytes, 0);
        assert_eq!(t.stats.reassembly.early_segments, 2);
        assert_eq!(r.gaps, 0);
    }

    // A short answer and the server's FIN both overtook the SYN-ACK: the
    // FIN is kept with the data, so the stream neither starts at the FIN
    // (the answer then dropped as "retransmitted") nor loses the FIN's
    // position (the client's ACK of it then reported as a 1-byte gap).
    #[test]
    fn fin_before_its_syn_ack_is_kept_with_the_data() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 80));
        t.process(&tcp(0, c, s, 100, 0, SYN, b""), &mut r);
        t.process(&tcp(0, s, c, 901, 101, ACK, b"bye"), &mut r);
        t.process(&tcp(0, s, c, 904, 101, FINACK, b""), &mut r);
        t.process(&tcp(0, s, c, 900, 101, SYNACK, b""), &mut r);
        t.process(&tcp(0, c, s, 101, 905, FINACK, b""), &mut r);
        t.process(&tcp(0, s, c, 905, 102, ACK, b""), &mut r);
        t.flush(&mut r);
        assert_eq!(r.data[1], b"bye");
        assert_eq!(r.gaps, 0);
        assert_eq!(t.stats.reassembly.midstream_pickups, 0);
        assert_eq!(t.stats.reassembly.retransmitted_bytes, 0);
    }

    // A conversation (c1, s1 answering c1, c2 answering s1) delivered as
    // s1, c2, c1: both directions hold, each for what its data answers, and
    // the handler gets c1, s1, c2.
    #[test]
    fn interleaved_answers_are_released_in_causal_order() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 23));
        handshake(&mut t, &mut r, c, s);
        t.process(&tcp(0, s, c, 901, 103, ACK, b"s1"), &mut r);
        t.process(&tcp(0, c, s, 103, 903, ACK, b"c2"), &mut r);
        assert!(r.order.is_empty());
        t.process(&tcp(0, c, s, 101, 901, ACK, b"c1"), &mut r);
        assert_eq!(
            r.order,
            vec![
                (0, b"c1".to_vec()),
                (1, b"s1".to_vec()),
                (0, b"c2".to_vec())
            ]
        );
        assert_eq!(t.stats.reassembly.holds_released_early, 0);
    }

    // A telnet exchange (s1, c1, s2, c2, s3, each answering the one before)
    // delivered as c2, s3, s2, c1, s1: each direction holds two pieces
    // waiting for different peer offsets, the later-arriving hold starting
    // earlier in the stream. Nothing waits on what waits on it; the handler
    // gets the original order at once, no hold times out.
    #[test]
    fn holds_arriving_out_of_stream_order_keep_causal_order() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 23));
        handshake(&mut t, &mut r, c, s);
        t.process(&tcp(0, c, s, 104, 904, ACK, b"w"), &mut r);
        t.process(&tcp(0, s, c, 904, 105, ACK, b"dd"), &mut r);
        t.process(&tcp(0, s, c, 903, 104, ACK, b"c"), &mut r);
        t.process(&tcp(0, c, s, 101, 903, ACK, b"xyz"), &mut r);
        assert!(r.order.is_empty());
        t.process(&tcp(0, s, c, 901, 101, ACK, b"ab"), &mut r);
        let want: Vec<(usize, Vec<u8>)> = vec![
            (1, b"ab".to_vec()),
            (0, b"xyz".to_vec()),
            (1, b"c".to_vec()),
            (0, b"w".to_vec()),
            (1, b"dd".to_vec()),
        ];
        assert_eq!(r.order, want);
        assert_eq!(t.stats.reassembly.holds_released_early, 0);
    }

    // The request was lost by the capture: the held answer is delivered
    // once the wait reordering explains is over (HOLE_WAIT_PACKETS packets
    // and HOLE_WAIT_NANOS), not kept until the flow ends.
    #[test]
    fn answer_to_lost_request_is_released_after_the_hole_wait() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 80));
        handshake(&mut t, &mut r, c, s);
        t.process(&tcp(0, s, c, 901, 105, ACK, b"pong"), &mut r);
        for _ in 0..crate::flow::reassembly::HOLE_WAIT_PACKETS {
            t.process(&tcp(0, c, s, 105, 905, ACK, b""), &mut r);
        }
        assert!(r.order.is_empty());
        t.process(&tcp(1, c, s, 105, 905, ACK, b""), &mut r);
        assert_eq!(r.order, vec![(1, b"pong".to_vec())]);
        assert_eq!(t.stats.reassembly.holds_released_early, 1);
    }

    /// Whether the flow of `c` -> `s` holds its TCP streams.
    fn has_streams(t: &FlowTable<()>, c: (u8, u16), s: (u8, u16)) -> bool {
        let key = FlowKey::new((ip(c.0), c.1), (ip(s.0), s.1), 6, [0, 0]);
        let slot = t.find(t.hasher.hash_one(key), &key).unwrap() as usize;
        t.slots[slot].as_ref().is_some_and(|f| f.tcp.is_some())
    }

    // A half-open flow of a SYN flood holds no streams; its second packet
    // gets them in the state the SYN left (the SYN-ACK's data and the
    // client's answer are delivered whole, no gap). A SYN with anything
    // more than the SYN gets them at once.
    #[test]
    fn bare_syn_flow_gets_its_streams_with_its_second_packet() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let (c, s) = ((1, 50000), (2, 23));
        t.process(&tcp(0, c, s, 100, 0, SYN, b""), &mut r);
        assert!(!has_streams(&t, c, s));
        t.process(&tcp(0, s, c, 900, 101, SYNACK, b""), &mut r);
        assert!(has_streams(&t, c, s));
        t.process(&tcp(0, s, c, 901, 101, ACK, b"login:"), &mut r);
        t.process(&tcp(0, c, s, 101, 907, ACK, b"root"), &mut r);
        let fin_syn = (3, 50001);
        t.process(&tcp(0, fin_syn, s, 7, 0, SYN | TcpFlags::FIN, b""), &mut r);
        assert!(has_streams(&t, fin_syn, s));
        t.flush(&mut r);
        assert_eq!(r.data, [b"root".to_vec(), b"login:".to_vec()]);
        assert_eq!(r.gaps, 0);
        assert_eq!(t.stats.reassembly.midstream_pickups, 0);
    }

    /// Every timeout has a lane of its own within the expiry queues': a
    /// lane's deadlines are then in packet-time order as they come.
    #[test]
    fn each_timeout_has_its_own_lane() {
        let cfg = FlowConfig {
            tcp_new_timeout_secs: 1,
            tcp_closed_timeout_secs: 2,
            tcp_established_timeout_secs: 3,
            udp_timeout_secs: 4,
            other_timeout_secs: 5,
            ..FlowConfig::default()
        };
        let states = [
            None,
            Some(TcpState::New),
            Some(TcpState::Established),
            Some(TcpState::HalfClosed),
            Some(TcpState::Closed),
        ];
        let mut secs_of_lane = [None; super::super::deadlines::LANES];
        for protocol in [1, 6, 17, 47, 58] {
            for state in states {
                let (lane, secs) = timeout(&cfg, protocol, state);
                let seen = secs_of_lane[lane].get_or_insert(secs);
                assert_eq!(*seen, secs, "lane {lane} holds two timeouts");
            }
        }
        assert!(secs_of_lane.iter().all(Option::is_some), "{secs_of_lane:?}");
    }

    #[test]
    fn idle_flows_time_out_on_packet_time() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        t.process(&tcp(0, (1, 50000), (2, 80), 1, 0, SYN, b""), &mut r);
        t.process(&tcp(29, (3, 50000), (2, 80), 1, 0, SYN, b""), &mut r);
        assert!(r.closed.is_empty());
        t.process(&tcp(31, (4, 50000), (2, 80), 1, 0, SYN, b""), &mut r);
        assert_eq!(r.closed, vec![(0, CloseReason::Timeout)]);
        assert_eq!(t.stats.timed_out, 1);
    }

    #[test]
    fn full_table_evicts_least_recently_active_flow() {
        let per_flow = FlowTable::<()>::bytes_per_flow();
        let cfg = FlowConfig {
            memcap_bytes: per_flow * 3,
            ..FlowConfig::default()
        };
        let mut t: FlowTable<()> = FlowTable::new(cfg);
        assert_eq!(t.max_flows(), 3);
        let mut r = Recorder::default();
        for (i, host) in [10u8, 11, 12].into_iter().enumerate() {
            t.process(
                &tcp(i as i64, (host, 1000), (2, 80), 1, 0, SYN, b""),
                &mut r,
            );
        }
        // Flow of host 10 becomes the most recent; host 11 is now the oldest.
        t.process(&tcp(3, (10, 1000), (2, 80), 2, 0, ACK, b"x"), &mut r);
        t.process(&tcp(4, (13, 1000), (2, 80), 1, 0, SYN, b""), &mut r);
        assert_eq!(t.active(), 3);
        assert_eq!(t.stats.evicted, 1);
        assert_eq!(r.closed, vec![(1, CloseReason::Evicted)]);
    }

    #[test]
    fn udp_datagrams_reach_the_handler_and_client_is_the_ephemeral_port() {
        let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
        let mut r = Recorder::default();
        let pkt = |src: (u8, u16), dst: (u8, u16)| Packet {
            ts: Timestamp(0),
            wire_len: 50,
            src_mac: None,
            dst_mac: None,
            vlan: [0, 0],
            src: ip(src.0),
            dst: ip(dst.0),
            transport: Transport::Udp {
                src_port: src.1,
                dst_port: dst.1,
                payload: b"\x40\x01\x00\x01",
            },
            reassembled: false,
        };
        // The server answers first (capture started late): 5683 is still the server.
        t.process(&pkt((2, 5683), (1, 40000)), &mut r);
        t.process(&pkt((1, 40000), (2, 5683)), &mut r);
        assert_eq!(r.datagrams, 2);
        assert_eq!(t.stats.created_by(FlowTransport::Udp), 1);
        t.flush(&mut r);
        assert_eq!(r.closed.len(), 1);
    }
}
