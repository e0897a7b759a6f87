//! Events the MQTT session emits: one per control packet, plus anomalies.
//!
//! Events own their data (strings capped by [`super::MqttLimits`]) so they can
//! outlive the bytes they came from; short strings and the payload head are
//! held in place ([`Text`], [`PayloadHead`]) rather than each in its own heap
//! allocation. Passwords never appear: a CONNECT event
//! carries only whether a password was present, its length and the keyed
//! credential digest of (user name, password).

use crate::proto::credential::CredentialDigest;

use super::anomaly::AnomalyKind;
use super::parser::{ConnectReturnCode, PacketType, ProtocolVersion, Qos, ReasonCode};
use super::properties::{Properties, PropertyValue};
use super::wire::MqttStr;
use crate::proto::inline::{InlineBytes, InlineStr};

/// Bytes of a [`Text`] held in place (the type is then 32 bytes); longer
/// strings go to the heap.
pub const TEXT_INLINE_BYTES: usize = 30;

/// Bytes of a [`PayloadHead`] held in place (the type is then 64 bytes);
/// longer heads go to the heap.
pub const PAYLOAD_HEAD_INLINE_BYTES: usize = 62;

/// Largest [`MqttEvent`]: events are moved into the caller's buffer one by
/// one, and up to this size the move is a few register copies rather than a
/// call to `memcpy`. The inline sizes above are chosen to fit.
pub const MAX_EVENT_BYTES: usize = 128;

/// A capped string in an event: topic, client id, user name, filter.
pub type Text = InlineStr<TEXT_INLINE_BYTES>;

/// The first payload bytes of a PUBLISH.
pub type PayloadHead = InlineBytes<PAYLOAD_HEAD_INLINE_BYTES>;

const _: () = assert!(std::mem::size_of::<MqttEvent>() <= MAX_EVENT_BYTES);

/// Everything the session reports.
///
/// Every framed control packet yields exactly one packet event (a typed one, or
/// [`MqttEvent::Unparsed`] when its body could not be decoded), so counting
/// events by [`MqttEvent::msg_type`] gives the same numbers as tshark's
/// `mqtt.msgtype`. Anomalies about a packet follow its packet event.
#[derive(Clone, Debug, PartialEq)]
pub enum MqttEvent {
    Connect(Box<ConnectEvent>),
    Connack(ConnackEvent),
    Publish(PublishEvent),
    Puback(AckEvent),
    Pubrec(AckEvent),
    Pubrel(AckEvent),
    Pubcomp(AckEvent),
    Subscribe(SubscribeEvent),
    Suback(SubackEvent),
    Unsubscribe(UnsubscribeEvent),
    Unsuback(UnsubackEvent),
    Pingreq,
    Pingresp,
    Disconnect(DisconnectEvent),
    Auth(AuthEvent),
    /// A framed packet whose body was not decoded: reserved type, malformed
    /// structure or larger than the configured limit. An anomaly says why.
    Unparsed {
        msg_type: u8,
        remaining_len: u32,
    },
    Anomaly(MqttAnomaly),
}

impl MqttEvent {
    /// The control packet type (MQTT 5.0 §2.1.2: 1 CONNECT .. 15 AUTH, 0
    /// reserved) of a packet event; `None` for anomalies. Matches tshark's
    /// `mqtt.msgtype`.
    pub fn msg_type(&self) -> Option<u8> {
        let t = match self {
            MqttEvent::Connect(_) => PacketType::Connect,
            MqttEvent::Connack(_) => PacketType::Connack,
            MqttEvent::Publish(_) => PacketType::Publish,
            MqttEvent::Puback(_) => PacketType::Puback,
            MqttEvent::Pubrec(_) => PacketType::Pubrec,
            MqttEvent::Pubrel(_) => PacketType::Pubrel,
            MqttEvent::Pubcomp(_) => PacketType::Pubcomp,
            MqttEvent::Subscribe(_) => PacketType::Subscribe,
            MqttEvent::Suback(_) => PacketType::Suback,
            MqttEvent::Unsubscribe(_) => PacketType::Unsubscribe,
            MqttEvent::Unsuback(_) => PacketType::Unsuback,
            MqttEvent::Pingreq => PacketType::Pingreq,
            MqttEvent::Pingresp => PacketType::Pingresp,
            MqttEvent::Disconnect(_) => PacketType::Disconnect,
            MqttEvent::Auth(_) => PacketType::Auth,
            MqttEvent::Unparsed { msg_type, .. } => return Some(*msg_type),
            MqttEvent::Anomaly(_) => return None,
        };
        Some(t.code())
    }

    /// The anomaly, if this event is one.
    pub fn anomaly(&self) -> Option<&MqttAnomaly> {
        match self {
            MqttEvent::Anomaly(a) => Some(a),
            _ => None,
        }
    }
}

/// CONNECT (MQTT 5.0 §3.1, MQTT 3.1.1 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectEvent {
    /// The version the Protocol Level names, `None` for an unknown level.
    pub version: Option<ProtocolVersion>,
    /// Protocol Level byte as sent (tshark `mqtt.ver`), e.g. 3, 4, 5, or 0x84
    /// for a mosquitto bridge.
    pub protocol_level: u8,
    pub protocol_name: Text,
    pub client_id: Text,
    pub username: Option<Text>,
    pub has_password: bool,
    /// Length of the password field; the bytes are never kept.
    pub password_len: u16,
    /// [`crate::proto::credential::digest`] of the User Name (empty when
    /// absent) and the Password, when a Password was present. Its Debug
    /// output is redacted; it is never logged.
    pub credential: Option<CredentialDigest>,
    pub keep_alive_secs: u16,
    /// Clean Session (3.x) / Clean Start (5.0) flag.
    pub clean_start: bool,
    pub will: Option<WillEvent>,
    pub properties: Option<Box<PropertySummary>>,
}

/// The Will Message announced in a CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WillEvent {
    pub topic: Text,
    pub qos: Qos,
    pub retain: bool,
    pub payload_len: u16,
    pub properties: Option<Box<PropertySummary>>,
}

/// CONNACK (MQTT 5.0 §3.2, MQTT 3.1.1 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnackEvent {
    pub code: ConnackCode,
    pub session_present: bool,
    pub properties: Option<Box<PropertySummary>>,
}

/// CONNACK result: a 3.x return code or a 5.0 reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnackCode {
    V3(ConnectReturnCode),
    V5(ReasonCode),
}

impl ConnackCode {
    pub fn is_accepted(self) -> bool {
        self.raw() == 0
    }

    /// The byte on the wire (tshark `mqtt.conack.val` / `mqtt.connack.reason_code`).
    pub fn raw(self) -> u8 {
        match self {
            ConnackCode::V3(c) => c.code(),
            ConnackCode::V5(r) => r.0,
        }
    }
}

/// PUBLISH (MQTT 5.0 §3.3, MQTT 3.1.1 §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishEvent {
    /// Topic Name (capped). For a 5.0 PUBLISH that names its topic only by a
    /// Topic Alias, the topic the alias was bound to earlier on this flow.
    pub topic: Text,
    /// Length of the Topic Name on the wire.
    pub topic_len: usize,
    pub qos: Qos,
    pub retain: bool,
    pub dup: bool,
    pub packet_id: Option<u16>,
    pub payload_len: u32,
    /// The first bytes of the payload (capped), for content rules.
    pub payload_head: PayloadHead,
    pub properties: Option<Box<PropertySummary>>,
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP (MQTT 5.0 §3.4-§3.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckEvent {
    pub packet_id: u16,
    /// 0x00 (Success) when the packet carried none (always so in 3.x).
    pub reason: ReasonCode,
    pub properties: Option<Box<PropertySummary>>,
}

/// One Topic Filter of a SUBSCRIBE with its options (MQTT 5.0 §3.8.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionFilter {
    pub filter: Text,
    /// Requested (maximum) QoS.
    pub qos: Qos,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
}

/// SUBSCRIBE (MQTT 5.0 §3.8, MQTT 3.1.1 §3.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeEvent {
    pub packet_id: u16,
    /// The first filters (capped in number and length).
    pub filters: Vec<SubscriptionFilter>,
    /// How many filters the packet carried.
    pub filter_count: usize,
    pub properties: Option<Box<PropertySummary>>,
}

/// SUBACK (MQTT 5.0 §3.9, MQTT 3.1.1 §3.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubackEvent {
    pub packet_id: u16,
    /// Return / reason codes, one per filter (capped in number).
    pub codes: Vec<ReasonCode>,
    pub code_count: usize,
    pub properties: Option<Box<PropertySummary>>,
}

/// UNSUBSCRIBE (MQTT 5.0 §3.10, MQTT 3.1.1 §3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubscribeEvent {
    pub packet_id: u16,
    pub filters: Vec<Text>,
    pub filter_count: usize,
    pub properties: Option<Box<PropertySummary>>,
}

/// UNSUBACK (MQTT 5.0 §3.11, MQTT 3.1.1 §3.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubackEvent {
    pub packet_id: u16,
    /// Reason codes (5.0 only; empty for 3.x).
    pub codes: Vec<ReasonCode>,
    pub code_count: usize,
    pub properties: Option<Box<PropertySummary>>,
}

/// DISCONNECT (MQTT 5.0 §3.14, MQTT 3.1.1 §3.14).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisconnectEvent {
    /// 0x00 (Normal disconnection) when absent (always so in 3.x).
    pub reason: ReasonCode,
    pub properties: Option<Box<PropertySummary>>,
}

/// AUTH (MQTT 5.0 §3.15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthEvent {
    pub reason: ReasonCode,
    pub properties: Option<Box<PropertySummary>>,
}

/// The MQTT 5.0 properties of a packet that rules and profiles care about
/// (MQTT 5.0 §2.2.2.2). Strings are capped; binary values are reduced to their
/// presence (Authentication Data, Correlation Data).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertySummary {
    /// Properties decoded.
    pub count: u16,
    pub user_properties: u16,
    /// First User Property as (name, value), capped.
    pub first_user_property: Option<(String, String)>,
    pub payload_format_utf8: Option<bool>,
    pub message_expiry_secs: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub has_correlation_data: bool,
    pub subscription_ids: u16,
    pub session_expiry_secs: Option<u32>,
    pub assigned_client_id: Option<String>,
    pub server_keep_alive_secs: Option<u16>,
    pub auth_method: Option<String>,
    pub has_auth_data: bool,
    pub will_delay_secs: Option<u32>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<bool>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<bool>,
    pub subscription_ids_available: Option<bool>,
    pub shared_subscription_available: Option<bool>,
    pub request_problem_information: Option<bool>,
    pub request_response_information: Option<bool>,
}

impl PropertySummary {
    /// Summarise a decoded property block; `None` when it is empty.
    pub fn from_properties(props: &Properties<'_>, max_text: usize) -> Option<Box<Self>> {
        if props.is_empty() {
            return None;
        }
        let text = |s: &MqttStr<'_>| s.to_capped_string(max_text);
        let mut out = PropertySummary::default();
        for p in props.iter() {
            out.count = out.count.saturating_add(1);
            use super::properties::PropertyId as Id;
            match (p.id, p.value) {
                (Id::PayloadFormatIndicator, PropertyValue::Byte(b)) => {
                    out.payload_format_utf8 = Some(b == 1)
                }
                (Id::MessageExpiryInterval, PropertyValue::FourByte(v)) => {
                    out.message_expiry_secs = Some(v)
                }
                (Id::ContentType, PropertyValue::Utf8(s)) => out.content_type = Some(text(&s)),
                (Id::ResponseTopic, PropertyValue::Utf8(s)) => out.response_topic = Some(text(&s)),
                (Id::CorrelationData, _) => out.has_correlation_data = true,
                (Id::SubscriptionIdentifier, _) => {
                    out.subscription_ids = out.subscription_ids.saturating_add(1)
                }
                (Id::SessionExpiryInterval, PropertyValue::FourByte(v)) => {
                    out.session_expiry_secs = Some(v)
                }
                (Id::AssignedClientIdentifier, PropertyValue::Utf8(s)) => {
                    out.assigned_client_id = Some(text(&s))
                }
                (Id::ServerKeepAlive, PropertyValue::TwoByte(v)) => {
                    out.server_keep_alive_secs = Some(v)
                }
                (Id::AuthenticationMethod, PropertyValue::Utf8(s)) => {
                    out.auth_method = Some(text(&s))
                }
                (Id::AuthenticationData, _) => out.has_auth_data = true,
                (Id::RequestProblemInformation, PropertyValue::Byte(b)) => {
                    out.request_problem_information = Some(b == 1)
                }
                (Id::WillDelayInterval, PropertyValue::FourByte(v)) => {
                    out.will_delay_secs = Some(v)
                }
                (Id::RequestResponseInformation, PropertyValue::Byte(b)) => {
                    out.request_response_information = Some(b == 1)
                }
                (Id::ResponseInformation, PropertyValue::Utf8(s)) => {
                    out.response_information = Some(text(&s))
                }
                (Id::ServerReference, PropertyValue::Utf8(s)) => {
                    out.server_reference = Some(text(&s))
                }
                (Id::ReasonString, PropertyValue::Utf8(s)) => out.reason_string = Some(text(&s)),
                (Id::ReceiveMaximum, PropertyValue::TwoByte(v)) => out.receive_maximum = Some(v),
                (Id::TopicAliasMaximum, PropertyValue::TwoByte(v)) => {
                    out.topic_alias_maximum = Some(v)
                }
                (Id::TopicAlias, PropertyValue::TwoByte(v)) => out.topic_alias = Some(v),
                (Id::MaximumQos, PropertyValue::Byte(b)) => out.maximum_qos = Some(b),
                (Id::RetainAvailable, PropertyValue::Byte(b)) => {
                    out.retain_available = Some(b == 1)
                }
                (Id::UserProperty, PropertyValue::Pair(k, v)) => {
                    out.user_properties = out.user_properties.saturating_add(1);
                    if out.first_user_property.is_none() {
                        out.first_user_property = Some((text(&k), text(&v)));
                    }
                }
                (Id::MaximumPacketSize, PropertyValue::FourByte(v)) => {
                    out.maximum_packet_size = Some(v)
                }
                (Id::WildcardSubscriptionAvailable, PropertyValue::Byte(b)) => {
                    out.wildcard_subscription_available = Some(b == 1)
                }
                (Id::SubscriptionIdentifierAvailable, PropertyValue::Byte(b)) => {
                    out.subscription_ids_available = Some(b == 1)
                }
                (Id::SharedSubscriptionAvailable, PropertyValue::Byte(b)) => {
                    out.shared_subscription_available = Some(b == 1)
                }
                _ => {}
            }
        }
        Some(Box::new(out))
    }
}

/// A protocol anomaly: what was wrong, on which packet type, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttAnomaly {
    pub kind: AnomalyKind,
    /// Control packet type the anomaly is about, when it is about one.
    pub msg_type: Option<u8>,
    /// Human-readable detail (capped); never contains a password.
    pub detail: String,
}
