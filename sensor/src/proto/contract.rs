//! The contract every application protocol fulfils.
//!
//! A protocol lives in one folder of `proto/` and implements [`Protocol`] on a
//! unit struct: how to recognise it by content, its per-flow session (the
//! streaming parser's state), the events that session emits, how those events
//! are counted for the summary, written to the protocol log and normalised
//! into the one event shape the later stages read ([`super::norm::Event`]).
//! `proto/registry.rs` lists the protocols; adding one is a new folder plus
//! one line there.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Probe;
use super::norm::{Event, NormContext};
use crate::capture::Timestamp;
use crate::flow::Direction;

/// An application protocol: parser, session, counts, log record, normaliser.
///
/// The session functions take the bytes of one direction in order (TCP) or
/// one datagram (UDP) and push zero or more events; they never fail: what is
/// wrong with the traffic becomes an anomaly event of the protocol.
pub trait Protocol {
    /// Lower-case name: the summary key, the log file stem (`NAME.jsonl`),
    /// EVE's `app_proto`, the prefix of the normalised event kinds.
    const NAME: &'static str;
    /// Kind of the normalised event raised when a flow is recognised as
    /// this protocol (`"<NAME>.flow"`).
    const FLOW_KIND: &'static str;
    /// Well-known TCP ports. Only hints: content decides, a port breaks ties
    /// and names the parser of a flow whose content decides nothing.
    const TCP_PORTS: &'static [u16] = &[];
    /// Well-known UDP ports (hints, as [`Self::TCP_PORTS`]).
    const UDP_PORTS: &'static [u16] = &[];

    /// The parser's bounds (a table of the config file).
    type Limits: Clone + std::fmt::Debug + Default + PartialEq + Serialize + DeserializeOwned;
    /// Per-flow parser state.
    type Session: std::fmt::Debug + Send;
    /// What the session reports.
    type Event: std::fmt::Debug + Send;
    /// Per-run counts: the summary's JSON object and, through `Display`, its
    /// line in the text summary.
    type Counts: Clone + std::fmt::Debug + std::fmt::Display + Default + Serialize + Send;
    /// One line of the protocol log, borrowing from its event.
    type Record<'a>: Serialize
    where
        Self: 'a;

    /// Whether the first bytes one side of a TCP flow sent are this protocol.
    fn probe_stream(_first: &[u8], _dir: Direction) -> Probe {
        Probe::NoMatch
    }

    /// Whether a UDP datagram is this protocol.
    fn probe_datagram(_payload: &[u8], _dir: Direction) -> Probe {
        Probe::NoMatch
    }

    fn session(limits: &Self::Limits) -> Self::Session;

    /// In-order stream bytes of one direction.
    fn on_data(
        _session: &mut Self::Session,
        _ts: Timestamp,
        _dir: Direction,
        _data: &[u8],
        _out: &mut Vec<Self::Event>,
    ) {
    }

    /// `len` bytes of one direction were lost (a capture gap).
    fn on_gap(
        _session: &mut Self::Session,
        _ts: Timestamp,
        _dir: Direction,
        _len: u64,
        _out: &mut Vec<Self::Event>,
    ) {
    }

    /// One UDP datagram.
    fn on_datagram(
        _session: &mut Self::Session,
        _ts: Timestamp,
        _dir: Direction,
        _payload: &[u8],
        _out: &mut Vec<Self::Event>,
    ) {
    }

    /// The flow ended: report what is still open.
    fn on_close(session: &mut Self::Session, ts: Timestamp, out: &mut Vec<Self::Event>);

    /// A flow was recognised as this protocol.
    fn count_flow(counts: &mut Self::Counts);

    /// Adds one event to the counts.
    fn count(counts: &mut Self::Counts, event: &Self::Event);

    /// The counts every protocol has (for /metrics): flows, messages by
    /// kind, anomalies by name.
    fn view(counts: &Self::Counts) -> CountsView<'_>;

    /// Anomalies counted so far.
    fn anomalies(counts: &Self::Counts) -> u64 {
        Self::view(counts).anomalies.values().sum()
    }

    /// The log line of an event, with the direction its bytes travelled when
    /// the event knows it (see `proto/log.rs`); `None` for events not logged.
    fn log_record(event: &Self::Event) -> Option<(Option<Direction>, Self::Record<'_>)>;

    /// The normalised events of one parser event.
    /// Their strings may borrow from `event`.
    fn normalize<'e>(event: &'e Self::Event, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>);

    /// The normalised events of the end of a flow of this protocol.
    fn normalize_close(_cx: &mut NormContext<'_>, _out: &mut Vec<Event<'_>>) {}
}

/// The part of a protocol's counts that every protocol has, in the same
/// shape: what /metrics exports per protocol. Message kinds are a fixed
/// list per protocol and anomaly names come from its `AnomalyKind::as_str`,
/// so the label sets are bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountsView<'a> {
    /// Flows recognised as the protocol.
    pub flows: u64,
    /// Messages by kind (`request`, `response`, `message`, ...).
    pub messages: Vec<(&'static str, u64)>,
    pub anomalies: &'a BTreeMap<String, u64>,
}
