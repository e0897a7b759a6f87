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

use foldhash::fast::RandomState;
use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo};

use super::credential::CredentialDigest;
use super::inline::InlineStr;

/// Fields of the largest events (an HTTP request with Basic credentials).
const EVENT_FIELDS: usize = 9;

/// Flows whose notes are kept at once.
pub const MAX_FLOW_NOTES: usize = 65_536;

/// Notes kept per flow.
pub const MAX_NOTES_PER_FLOW: usize = 4;

/// Bytes of a note held in place (a longer one goes to the heap): an MQTT
/// client id (brokers must take 23 bytes) or a short request URI.
const NOTE_INLINE_BYTES: usize = 38;

/// Field vectors kept for reuse by [`FieldPool`].
const POOLED_FIELDS: usize = 64;

/// A field value. Strings are borrowed where they can be: from the parser
/// event an event is made of (a topic, a URI, a user name) or known at
/// compile time (`"client"`, `"basic"`...), so that building an event
/// allocates nothing in the common case.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    List(Vec<Cow<'a, str>>),
}

impl Value<'_> {
    /// The same value, owning its string.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Int(n) => Value::Int(n),
            Value::Bool(b) => Value::Bool(b),
            Value::List(v) => {
                Value::List(v.into_iter().map(|s| Cow::Owned(s.into_owned())).collect())
            }
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<u64> for Value<'_> {
    fn from(n: u64) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The named fields of an event.
pub type Fields<'a> = Vec<(&'static str, Value<'a>)>;

/// An empty vector's allocation, for elements of another lifetime. Nothing
/// is converted (the vector is emptied first); collecting a vector's own
/// iterator into a vector of the same layout reuses its buffer, so the
/// capacity is kept.
pub fn relabel<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Field vectors of past events, emptied, so that a new event takes one
/// instead of allocating. Bounded by [`POOLED_FIELDS`].
#[derive(Debug, Default)]
pub struct FieldPool(Vec<Fields<'static>>);

impl FieldPool {
    /// An empty field vector with room for the largest events.
    fn take<'a>(&mut self) -> Fields<'a> {
        match self.0.pop() {
            Some(v) => relabel(v),
            None => Vec::with_capacity(EVENT_FIELDS),
        }
    }

    /// Keeps the allocation of an event's fields.
    pub fn give(&mut self, fields: Fields<'_>) {
        if self.0.len() < POOLED_FIELDS && fields.capacity() >= EVENT_FIELDS {
            self.0.push(relabel(fields));
        }
    }
}

/// One observation, whatever parser or stage produced it. Its strings may
/// borrow from the parser event it was made of (`'a`); [`Event::into_owned`]
/// keeps one beyond that.
#[derive(Clone, Debug)]
pub struct Event<'a> {
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
    pub fields: Fields<'a>,
    /// Digest of the (user, password) pair of a login, when a password was sent.
    pub credential: Option<CredentialDigest>,
}

impl<'a> Event<'a> {
    /// An event about `flow`, oriented client → server, with `fields`.
    pub fn new(
        flow: &FlowInfo,
        ts: Timestamp,
        kind: &'static str,
        proto: &'static str,
        fields: Fields<'a>,
    ) -> Event<'a> {
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
            fields,
            credential: None,
        }
    }

    pub fn field(&self, name: &str) -> Option<&Value<'a>> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Builder-style: add a field.
    pub fn with(mut self, name: &'static str, value: impl Into<Value<'a>>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// The same event, owning its strings (to keep it, e.g. in an alert).
    pub fn into_owned(self) -> Event<'static> {
        Event {
            ts: self.ts,
            kind: self.kind,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            transport: self.transport,
            flow_id: self.flow_id,
            fields: self
                .fields
                .into_iter()
                .map(|(n, v)| (n, v.into_owned()))
                .collect(),
            credential: self.credential,
        }
    }
}

/// What one flow said earlier that later events need (the last request URI,
/// the MQTT client id): a few named strings, held in place.
#[derive(Debug, Default)]
struct FlowNotes([Option<(&'static str, InlineStr<NOTE_INLINE_BYTES>)>; MAX_NOTES_PER_FLOW]);

/// Notes of every flow, bounded by [`MAX_FLOW_NOTES`].
#[derive(Debug, Default)]
pub struct NoteTable {
    flows: HashMap<u64, FlowNotes, RandomState>,
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
    pool: &'a mut FieldPool,
}

impl<'a> NormContext<'a> {
    pub fn new(
        flow: &'a FlowInfo,
        ts: Timestamp,
        dir: Direction,
        notes: &'a mut NoteTable,
        pool: &'a mut FieldPool,
    ) -> Self {
        NormContext {
            flow,
            ts,
            dir,
            notes,
            pool,
        }
    }

    /// An event of `kind` about this flow, oriented client → server, with no
    /// fields yet.
    pub fn event<'e>(&mut self, kind: &'static str, proto: &'static str) -> Event<'e> {
        Event::new(self.flow, self.ts, kind, proto, self.pool.take())
    }

    /// A protocol anomaly: kind `"anomaly"`, with the protocol, the
    /// anomaly's name and its evidence.
    pub fn anomaly<'e>(
        &mut self,
        proto: &'static str,
        kind: &'static str,
        detail: &'e str,
    ) -> Event<'e> {
        self.event("anomaly", proto)
            .with("protocol", proto)
            .with("kind", kind)
            .with("detail", detail)
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
        if let Some((_, v)) = notes.iter_mut().flatten().find(|(k, _)| *k == key) {
            if v.as_str() != value {
                *v = InlineStr::new(value);
            }
        } else if let Some(free) = notes.iter_mut().find(|n| n.is_none()) {
            *free = Some((key, InlineStr::new(value)));
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
            .flatten()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool exists to save an allocation per event: a vector given back
    /// comes out again empty, with the same buffer.
    #[test]
    fn a_pooled_field_vector_keeps_its_buffer() {
        let mut pool = FieldPool::default();
        let owned = String::from("/sensors/temp");
        let mut fields: Fields<'_> = pool.take();
        fields.push(("uri", Value::from(owned.as_str())));
        fields.push(("user", Value::from(owned.clone())));
        let buffer = fields.as_ptr() as usize;
        pool.give(fields);
        let again: Fields<'static> = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr() as usize, buffer);
        assert!(again.capacity() >= EVENT_FIELDS);
    }

    #[test]
    fn an_owned_event_keeps_every_field() {
        let flow = FlowInfo::for_test(7, 6, 1883);
        let topic = String::from("home/kitchen/temp");
        let (mut notes, mut pool) = (NoteTable::default(), FieldPool::default());
        let mut cx = NormContext::new(
            &flow,
            Timestamp(5),
            Direction::ToServer,
            &mut notes,
            &mut pool,
        );
        let borrowed = cx
            .event("mqtt.publish", "mqtt")
            .with("topic", topic.as_str())
            .with("qos", 1i64)
            .with("retain", false);
        let owned: Event<'static> = borrowed.clone().into_owned();
        drop(topic);
        assert_eq!(owned.fields, borrowed_fields());
        assert_eq!(
            (owned.kind, owned.flow_id, owned.ts),
            ("mqtt.publish", 7, Timestamp(5))
        );
    }

    /// A flow keeps at most `MAX_NOTES_PER_FLOW` notes (one more is
    /// counted, not kept); a note says what it was last told, short or
    /// longer than what is held in place, and other flows' notes are apart.
    #[test]
    fn notes_are_bounded_per_flow_and_recalled_as_last_told() {
        const KEYS: [&str; MAX_NOTES_PER_FLOW + 1] = ["a", "b", "c", "d", "e"];
        let (mut notes, mut pool) = (NoteTable::default(), FieldPool::default());
        let long = "/firmware/".repeat(NOTE_INLINE_BYTES);
        let (one, two) = (FlowInfo::for_test(1, 6, 80), FlowInfo::for_test(2, 6, 80));
        let mut cx = NormContext::new(
            &one,
            Timestamp(1),
            Direction::ToServer,
            &mut notes,
            &mut pool,
        );
        for key in KEYS {
            cx.remember(key, key);
        }
        cx.remember("a", &long);
        assert_eq!(cx.recall("a"), Some(long.as_str()));
        cx.remember("a", "short again");
        assert_eq!(cx.recall("a"), Some("short again"));
        assert_eq!(cx.recall("d"), Some("d"));
        assert_eq!(cx.recall("e"), None);
        let mut cx = NormContext::new(
            &two,
            Timestamp(2),
            Direction::ToServer,
            &mut notes,
            &mut pool,
        );
        assert_eq!(cx.recall("b"), None);
        cx.remember("b", "two");
        assert_eq!(cx.recall("b"), Some("two"));
        assert_eq!(notes.dropped, 1);
        notes.forget(1);
        let cx = NormContext::new(
            &one,
            Timestamp(3),
            Direction::ToServer,
            &mut notes,
            &mut pool,
        );
        assert_eq!(cx.recall("b"), None);
    }

    fn borrowed_fields() -> Fields<'static> {
        vec![
            ("topic", Value::from(String::from("home/kitchen/temp"))),
            ("qos", Value::Int(1)),
            ("retain", Value::Bool(false)),
        ]
    }
}
