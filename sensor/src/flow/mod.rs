//! Bidirectional flow table and TCP stream reassembly.

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

pub mod reassembly;
pub mod table;

pub use reassembly::{ReassemblyLimits, ReassemblyStats, StreamEvent};
pub use table::{
    CloseReason, FlowConfig, FlowHandler, FlowInfo, FlowKey, FlowStats, FlowTable, FlowTransport,
    TcpState,
};
