//! The events rules are written against: one flat, typed record per protocol
//! event or flow observation, whatever parser or stage produced it.
//!
//! A rule names an event `kind` (e.g. `"mqtt.connect"`) and conditions on its
//! `fields` by name. The catalogue of kinds and fields is in `rules/README.md`;
//! `RuleEvent::fields` never holds a password, only `credential`, a keyed
//! digest used to recognise known default credentials.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::proto::credential::CredentialDigest;

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

/// One observation a rule can match.
#[derive(Clone, Debug)]
pub struct RuleEvent {
    pub ts: Timestamp,
    /// Event kind, `"<proto>.<what>"`, e.g. `"http.request"`, `"tcp.syn"`.
    pub kind: &'static str,
    /// Application protocol name for EVE's `app_proto` ("http", "mqtt",
    /// "coap", "telnet"), or the transport ("tcp", "udp") for flow events.
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

impl RuleEvent {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Builder-style: add a field.
    pub fn with(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
}
