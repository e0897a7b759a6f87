//! The normalised event: one flat, typed record per protocol event or flow
//! observation, whatever parser or stage produced it. Rules, device profiles
//! and the feature windows read these, never a parser's own events.
//!
//! An event has a `kind` (e.g. `"mqtt.connect"`) and named `fields`. The
//! catalogue of kinds and fields is in `rules/README.md`; `Event::fields`
//! never holds a password, only `credential`, a keyed digest used to
//! recognise known default credentials.
//!
//! Each protocol's normaliser ([`super::Protocol::normalize`]) builds events
//! through a [`NormContext`], which also keeps what a flow said earlier that
//! later events need (a [`NoteTable`], bounded).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo};

use super::credential::CredentialDigest;

/// Fields of the largest events (an HTTP request with Basic credentials).
const EVENT_FIELDS: usize = 9;

/// Flows whose notes are kept at once.
pub const MAX_FLOW_NOTES: usize = 65_536;

/// Notes kept per flow.
pub const MAX_NOTES_PER_FLOW: usize = 4;

/// A field value. Strings known at compile time (`"client"`, `"basic"`...)
/// are borrowed, so that building an event allocates only for what the
/// traffic said.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::List(v)
    }
}

/// One observation, whatever parser or stage produced it.
#[derive(Clone, Debug)]
pub struct Event {
    pub ts: Timestamp,
    /// Event kind, `"<proto>.<what>"`, e.g. `"http.request"`, `"tcp.syn"`.
    pub kind: &'static str,
    /// Application protocol name for EVE's `app_proto` ("http", "mqtt",
    /// "coap", "telnet", "dhcp"), or the transport ("tcp", "udp") for flow events.
    pub proto: &'static str,
    /// The endpoint that sent what the event is about, and its peer.
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Transport protocol number (6 TCP, 17 UDP).
    pub transport: u8,
    pub flow_id: u64,
    /// Named fields; see the catalogue in `rules/README.md`.
    pub fields: Vec<(&'static str, Value)>,
    /// Digest of the (user, password) pair of a login, when a password was sent.
    pub credential: Option<CredentialDigest>,
}

impl Event {
    /// An event about `flow`, oriented client → server, with no fields yet.
    pub fn of_flow(
        flow: &FlowInfo,
        ts: Timestamp,
        kind: &'static str,
        proto: &'static str,
    ) -> Event {
        Event {
            ts,
            kind,
            proto,
            src: flow.client,
            dst: flow.server,
            src_mac: flow.client_mac,
            dst_mac: flow.server_mac,
            transport: flow.protocol,
            flow_id: flow.id,
            // Room for the fields of the largest events: no reallocation as they are added.
            fields: Vec::with_capacity(EVENT_FIELDS),
            credential: None,
        }
    }

    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Builder-style: add a field.
    pub fn with(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
}

/// What one flow said earlier that later events need (the last request URI,
/// the MQTT client id): a few named strings.
#[derive(Debug, Default)]
struct FlowNotes(Vec<(&'static str, String)>);

/// Notes of every flow, bounded by [`MAX_FLOW_NOTES`].
#[derive(Debug, Default)]
pub struct NoteTable {
    flows: HashMap<u64, FlowNotes>,
    /// Notes not kept because the table was full.
    pub dropped: u64,
}

impl NoteTable {
    /// Forgets a flow (it ended).
    pub fn forget(&mut self, flow_id: u64) {
        self.flows.remove(&flow_id);
    }
}

/// Where a parser event happened, and the flow's notes: what a normaliser
/// builds events with.
pub struct NormContext<'a> {
    pub flow: &'a FlowInfo,
    pub ts: Timestamp,
    /// Direction of the bytes that produced the event.
    pub dir: Direction,
    notes: &'a mut NoteTable,
}

impl<'a> NormContext<'a> {
    pub fn new(
        flow: &'a FlowInfo,
        ts: Timestamp,
        dir: Direction,
        notes: &'a mut NoteTable,
    ) -> Self {
        NormContext {
            flow,
            ts,
            dir,
            notes,
        }
    }

    /// An event of `kind` about this flow, oriented client → server, with no
    /// fields yet.
    pub fn event(&self, kind: &'static str, proto: &'static str) -> Event {
        Event::of_flow(self.flow, self.ts, kind, proto)
    }

    /// A protocol anomaly: kind `"anomaly"`, with the protocol, the
    /// anomaly's name and its evidence.
    pub fn anomaly(&self, proto: &'static str, kind: &'static str, detail: &str) -> Event {
        self.event("anomaly", proto)
            .with("protocol", proto)
            .with("kind", kind)
            .with("detail", detail.to_string())
    }

    /// Remembers `value` under `key` for this flow (dropped, and counted,
    /// when the table is full).
    pub fn remember(&mut self, key: &'static str, value: &str) {
        let table = &mut *self.notes;
        let id = self.flow.id;
        if table.flows.len() >= MAX_FLOW_NOTES && !table.flows.contains_key(&id) {
            table.dropped += 1;
            return;
        }
        let notes = &mut table.flows.entry(id).or_default().0;
        if let Some((_, v)) = notes.iter_mut().find(|(k, _)| *k == key) {
            v.clear();
            v.push_str(value);
        } else if notes.len() < MAX_NOTES_PER_FLOW {
            notes.push((key, value.to_string()));
        } else {
            table.dropped += 1;
        }
    }

    /// What this flow said under `key`, if remembered.
    pub fn recall(&self, key: &str) -> Option<&str> {
        let notes = self.notes.flows.get(&self.flow.id)?;
        notes
            .0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// "client" or "server": who sent what an event is about.
pub fn sender(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "client",
        Direction::ToClient => "server",
    }
}
