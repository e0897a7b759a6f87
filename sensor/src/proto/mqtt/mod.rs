//! MQTT 3.1, 3.1.1 and 5.0 (OASIS).
//!
//! Streaming parser and per-flow session for MQTT over TCP:
//! - OASIS MQTT Version 3.1.1 (29 October 2014),
//! - OASIS MQTT Version 5.0 (7 March 2019),
//! - IBM MQTT V3.1 (protocol name "MQIsdp", level 3), whose packet layout
//!   3.1.1 kept.
//!
//! Layout: [`wire`] (data representation, §1.5), [`properties`] (5.0
//! §2.2.2), [`parser`] (control packets, no flow knowledge), [`probe`]
//! (content-based detection), [`session`] (per-flow state and events),
//! [`events`] (what the session reports), [`text`] (the inline strings
//! events carry), [`counts`], [`log`] and [`normalize`] (what the rest of
//! spanwatch makes of the events).

pub mod anomaly;
pub mod counts;
pub mod events;
pub mod log;
pub mod normalize;
pub mod parser;
pub mod probe;
pub mod properties;
pub mod session;
pub mod topic;
pub mod wire;

#[cfg(test)]
mod replay_tests;

pub use anomaly::AnomalyKind;
pub use counts::MqttCounts;
pub use events::{
    AckEvent, AuthEvent, ConnackCode, ConnackEvent, ConnectEvent, DisconnectEvent, MAX_EVENT_BYTES,
    MqttAnomaly, MqttEvent, PAYLOAD_HEAD_INLINE_BYTES, PayloadHead, PropertySummary, PublishEvent,
    SubackEvent, SubscribeEvent, SubscriptionFilter, TEXT_INLINE_BYTES, Text, UnsubackEvent,
    UnsubscribeEvent, WillEvent,
};
pub use parser::{ConnectReturnCode, PacketType, ProtocolVersion, Qos, ReasonCode};
pub use probe::probe;
pub use session::{MqttLimits, MqttSession, MqttStats};

use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;
use crate::proto::contract::{CountsView, Protocol};
use crate::proto::norm::{Event, NormContext};

/// MQTT over TCP.
pub struct Mqtt;

impl Protocol for Mqtt {
    const NAME: &'static str = "mqtt";
    const FLOW_KIND: &'static str = "mqtt.flow";
    /// 1883 (IANA), 1884 (a common second listener).
    const TCP_PORTS: &'static [u16] = &[1883, 1884];

    type Limits = MqttLimits;
    type Session = MqttSession;
    type Event = MqttEvent;
    type Counts = MqttCounts;
    type Record<'a> = log::MqttRecord<'a>;

    fn probe_stream(first: &[u8], dir: Direction) -> Probe {
        probe(first, dir)
    }

    fn session(limits: &MqttLimits) -> MqttSession {
        MqttSession::new(limits.clone())
    }

    fn on_data(
        s: &mut MqttSession,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut Vec<MqttEvent>,
    ) {
        s.on_data(ts, dir, data, out);
    }

    fn on_gap(
        s: &mut MqttSession,
        ts: Timestamp,
        dir: Direction,
        len: u64,
        out: &mut Vec<MqttEvent>,
    ) {
        s.on_gap(ts, dir, len, out);
    }

    fn on_close(s: &mut MqttSession, ts: Timestamp, out: &mut Vec<MqttEvent>) {
        s.on_close(ts, out);
    }

    fn count_flow(c: &mut MqttCounts) {
        c.flows += 1;
    }

    fn count(c: &mut MqttCounts, ev: &MqttEvent) {
        c.count(ev);
    }

    fn view(c: &MqttCounts) -> CountsView<'_> {
        CountsView {
            flows: c.flows,
            messages: vec![("message", c.messages)],
            anomalies: &c.anomalies,
        }
    }

    fn log_record(ev: &MqttEvent) -> Option<(Option<Direction>, log::MqttRecord<'_>)> {
        Some((None, log::record(ev)))
    }

    fn normalize<'e>(ev: &'e MqttEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
        normalize::normalize(ev, cx, out);
    }

    fn normalize_close(cx: &mut NormContext<'_>, out: &mut Vec<Event<'_>>) {
        normalize::normalize_close(cx, out);
    }
}
