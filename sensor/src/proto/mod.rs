//! Application protocol parsers: one folder per protocol, each with a parser
//! (bytes to typed messages), session state (per flow) and events.

pub mod coap;
pub mod counts;
pub mod credential;
pub mod dispatch;
pub mod http;
pub mod log;
pub mod mqtt;
pub mod telnet;

/// Result of looking at the first bytes of a flow to decide its protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The bytes are this protocol.
    Match,
    /// The bytes cannot be this protocol.
    NoMatch,
    /// Not enough bytes yet to decide.
    NeedMore,
}
