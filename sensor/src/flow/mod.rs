//! Bidirectional flow table and TCP stream reassembly.

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
}

pub mod reassembly;
pub mod table;

pub use reassembly::{ReassemblyLimits, ReassemblyStats, StreamEvent};
pub use table::{
    CloseReason, FlowConfig, FlowHandler, FlowInfo, FlowKey, FlowStats, FlowTable, FlowTransport,
    TcpState,
};
