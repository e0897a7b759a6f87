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
//! events carry).

#![forbid(unsafe_code)]

pub mod events;
pub mod parser;
pub mod probe;
pub mod properties;
pub mod session;
pub mod text;
pub mod wire;

#[cfg(test)]
mod replay_tests;

pub use events::{
    AckEvent, AnomalyKind, AuthEvent, ConnackCode, ConnackEvent, ConnectEvent, DisconnectEvent,
    MAX_EVENT_BYTES, MqttAnomaly, MqttEvent, PAYLOAD_HEAD_INLINE_BYTES, PayloadHead,
    PropertySummary, PublishEvent, SubackEvent, SubscribeEvent, SubscriptionFilter,
    TEXT_INLINE_BYTES, Text, UnsubackEvent, UnsubscribeEvent, WillEvent,
};
pub use parser::{ConnectReturnCode, PacketType, ProtocolVersion, Qos, ReasonCode};
pub use probe::probe;
pub use session::{MqttLimits, MqttSession, MqttStats};
