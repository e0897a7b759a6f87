//! Bidirectional flow table and TCP stream reassembly.

use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::decode::{Packet, TcpFlags, Transport};

/// Which way a packet or stream chunk travels within a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the endpoint that opened the flow (client) to the server.
    ToServer,
    /// From the server back to the client.
    ToClient,
}

impl Direction {
    pub fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// What the later stages need of one packet: its time and, for TCP, its
/// flags. Small and owned, so that it can be handed to another thread.
#[derive(Clone, Copy, Debug)]
pub struct PacketNote {
    pub ts: Timestamp,
    pub tcp_flags: Option<TcpFlags>,
}

impl PacketNote {
    pub fn of(pkt: &Packet<'_>) -> Self {
        PacketNote {
            ts: pkt.ts,
            tcp_flags: match &pkt.transport {
                Transport::Tcp(seg) => Some(seg.flags),
                _ => None,
            },
        }
    }

    /// Whether the packet tells of a connection attempt or refusal: a TCP
    /// SYN or RST. Only these are handed on; every other packet reaches the
    /// later stages through its flow's counters and stream data.
    pub fn is_connection_signal(&self) -> bool {
        self.tcp_flags.is_some_and(|f| f.syn() || f.rst())
    }

    /// Whether the packet, travelling `dir`, refuses a TCP connection: a RST
    /// from the server (not a SYN-ACK) before the connection was established.
    pub fn refuses(&self, dir: Direction, established_before: bool) -> bool {
        // Without short-circuits: the direction alternates from packet to
        // packet, and a branch on it would be mispredicted half the time.
        (dir == Direction::ToClient)
            & !established_before
            & self
                .tcp_flags
                .is_some_and(|f| f.rst() & !(f.syn() & f.ack()))
    }
}

/// What one flow did during one second of packet time: its endpoints, the
/// packets and bytes each way (of the frames sent with the MAC addresses of
/// the flow's first packet; others are counted by their own addresses), and
/// the TCP handshake milestones seen. The flow stage collects one per flow
/// and second; device profiles and feature windows are built from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowActivity {
    pub flow_id: u64,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub client_mac: Option<[u8; 6]>,
    pub server_mac: Option<[u8; 6]>,
    /// IANA protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub transport: u8,
    /// The flow's first packet was in this second.
    pub opened: bool,
    /// Packets and bytes on the wire, indexed by [`Direction::index`].
    pub packets: [u32; 2],
    pub bytes: [u64; 2],
    /// TCP: the server answered the handshake (SYN-ACK) in this second.
    pub answered: bool,
    /// TCP: the server answered with a RST before the handshake completed
    /// (the attempt was refused) in this second, for the first time.
    pub refused_by_server: bool,
}

impl FlowActivity {
    /// The record of `info`'s activity, with nothing counted yet.
    pub fn of(info: &FlowInfo, opened: bool) -> Self {
        FlowActivity {
            flow_id: info.id,
            client: info.client,
            server: info.server,
            client_mac: info.client_mac,
            server_mac: info.server_mac,
            transport: info.protocol,
            opened,
            packets: [0; 2],
            bytes: [0; 2],
            answered: false,
            refused_by_server: false,
        }
    }

    /// Counts one frame of the flow.
    pub fn count(&mut self, dir: Direction, wire_len: u32) {
        let i = dir.index();
        self.packets[i] = self.packets[i].saturating_add(1);
        self.bytes[i] = self.bytes[i].saturating_add(u64::from(wire_len));
    }

    /// Notes the handshake milestone of one packet: the server's SYN-ACK,
    /// or the refusal the caller recognised ([`PacketNote::refuses`], once
    /// per connection).
    pub fn handshake(&mut self, dir: Direction, note: &PacketNote, refusal: bool) {
        // Without branches on the direction (see `PacketNote::refuses`).
        self.answered |=
            (dir == Direction::ToClient) & note.tcp_flags.is_some_and(|f| f.syn() & f.ack());
        self.refused_by_server |= refusal;
    }
}

mod deadlines;
pub mod reassembly;
pub mod table;

pub use reassembly::{ReassemblyLimits, ReassemblyStats, StreamEvent};
pub use table::{
    CloseReason, FlowConfig, FlowHandler, FlowInfo, FlowKey, FlowStats, FlowTable, FlowTransport,
    TcpState,
};
