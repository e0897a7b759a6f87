//! Application protocols: one folder per protocol, each implementing the
//! [`Protocol`] contract (parser, per-flow session, events, counts, log
//! record, normaliser), listed once in [`registry`]; the [`dispatch`]er
//! recognises each flow's protocol and feeds its session.
//!
//! Shared by every protocol: the normalised event shape ([`norm`]), credential
//! digests ([`credential`]), content classes ([`content`]), the counting
//! helpers ([`counts`]) and the log writer ([`log`]).

pub mod coap;
pub mod content;
pub mod contract;
pub mod counts;
pub mod credential;
pub mod dhcp;
pub mod dispatch;
pub mod http;
pub mod inline;
pub mod log;
pub mod mqtt;
pub mod norm;
pub mod record;
pub mod registry;
pub mod telnet;
pub mod text;

pub use contract::{CountsView, Protocol};
pub use registry::{AppEvent, AppLimits, AppProto, ProtoCounts};

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
