//! What an MQTT flow can do wrong: the kinds of anomaly (one closed set, for
//! logs, metrics and rules) and the violations the parser finds while
//! decoding a packet.

/// Kinds of MQTT anomaly. Covers Suricata's MQTT app-layer events
/// (`mqtt.missing_connect`, `missing_publish`, `missing_subscribe`,
/// `missing_unsubscribe`, `double_connect`, `unintroduced_message`,
/// `invalid_qos_level`, `missing_msg_id`, `unassigned_msg_type`,
/// `too_many_transactions`, `malformed_traffic`) and adds the spec's
/// conformance rules. The set is closed so it can label metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnomalyKind {
    /// The packet's structure is broken: a field runs past its packet, a
    /// length is inconsistent, bytes trail the last field (5.0 §4.13,
    /// "Malformed Packet").
    MalformedPacket,
    /// Remaining Length above `MqttLimits::max_packet_bytes`; skipped unread.
    TooLarge,
    /// Remaining Length needs a fifth byte (MQTT 5.0 §1.5.5); framing is lost.
    RemainingLengthTooLong,
    /// A Variable Byte Integer not in its shortest form [MQTT-1.5.5-1].
    NonMinimalLength,
    /// Control packet type 0, or 15 (AUTH) before MQTT 5.0 (§2.1.2).
    ReservedPacketType,
    /// Fixed header flags other than the ones §2.1.3 / §2.2.2 require.
    InvalidFixedHeaderFlags,
    /// A reserved bit set: CONNECT flags bit 0 [MQTT-3.1.2-3], CONNACK flags
    /// [MQTT-3.2.2-1], subscription options [MQTT-3.8.3-5].
    ReservedBitsSet,
    /// QoS 3 in PUBLISH [MQTT-3.3.1-4], Will QoS [MQTT-3.1.2-12] or a
    /// subscription [MQTT-3.8.3-2].
    InvalidQos,
    /// QoS > 0 PUBLISH without a Packet Identifier (§3.3.2.2).
    MissingPacketId,
    /// Packet Identifier 0 [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1]).
    ZeroPacketId,
    /// A string that is not well-formed UTF-8 or contains U+0000 [MQTT-1.5.4-1/2].
    InvalidUtf8,
    /// Topic Name empty or with wildcards [MQTT-3.3.2-2], [MQTT-4.7.3-1].
    InvalidTopicName,
    /// Topic Filter breaking §4.7.1 wildcard rules or §4.8.2 share syntax.
    InvalidTopicFilter,
    /// Topic Alias 0, above the announced maximum, or unknown (§3.3.2.3.4).
    InvalidTopicAlias,
    /// Property identifier not defined by MQTT 5.0 §2.2.2.2; the rest of
    /// that property block cannot be decoded.
    UnknownProperty,
    /// Property not allowed in this packet (§2.2.2.2 table).
    PropertyNotAllowed,
    /// Property that may appear once appeared again.
    DuplicateProperty,
    /// Property value out of its range (e.g. Receive Maximum 0).
    InvalidPropertyValue,
    /// CONNECT Protocol Name not "MQTT" / "MQIsdp" or not matching the level.
    InvalidProtocolName,
    /// CONNECT Protocol Level not 3, 4 or 5.
    UnsupportedProtocolVersion,
    /// Will QoS / Will Retain set without the Will Flag [MQTT-3.1.2-11/13/15].
    InvalidConnectFlags,
    /// Client Identifier the version forbids (3.1: 1-23 chars; 3.1.1: empty
    /// with Clean Session 0 [MQTT-3.1.3-7]).
    InvalidClientId,
    /// Password Flag without User Name Flag in 3.x: 3.1.1 [MQTT-3.1.2-22];
    /// MQTT 3.1 §3.1 "It is not valid to supply a password without supplying
    /// a user name". Allowed in 5.0 (§3.1.2.9).
    PasswordWithoutUsername,
    /// Return / reason code not defined for this packet (§2.4, §3.x).
    InvalidReasonCode,
    /// Another protocol rule broken (e.g. SUBSCRIBE with no filters).
    ProtocolViolation,
    /// A second CONNECT on the same connection [MQTT-3.1.0-2].
    DuplicateConnect,
    /// The session was seen without its CONNECT (reported once).
    MissingConnect,
    /// A packet type sent in a direction §2.1.2 does not allow.
    UnexpectedDirection,
    /// A server packet before the CONNACK [MQTT-3.2.0-1], or a packet after
    /// a refusing CONNACK [MQTT-3.2.2-5]. Client packets before the CONNACK
    /// are legal (3.1.1 and 5.0 §3.1.4) and not reported.
    UnintroducedMessage,
    /// Client packet after its DISCONNECT [MQTT-3.14.4-2].
    PacketAfterDisconnect,
    /// PUBACK/PUBREC/PUBREL/PUBCOMP for a Packet Identifier with no PUBLISH.
    MissingPublish,
    /// SUBACK without a matching SUBSCRIBE.
    MissingSubscribe,
    /// UNSUBACK without a matching UNSUBSCRIBE.
    MissingUnsubscribe,
    /// Acknowledgement out of the QoS 1 / QoS 2 sequence (§4.3).
    QosHandshakeViolation,
    /// A new QoS > 0 PUBLISH reusing an in-flight Packet Identifier [MQTT-2.2.1-3].
    PacketIdInUse,
    /// SUBACK / UNSUBACK code count differs from the request's filters
    /// [MQTT-3.8.4-6], [MQTT-3.11.3-1].
    AckCountMismatch,
    /// More in-flight packet identifiers than `MqttLimits::max_inflight`.
    TooManyInflight,
    /// A gap in the TCP stream lost packet boundaries.
    StreamGap,
    /// The flow ended inside a packet.
    TruncatedPacket,
    /// `MqttLimits::max_anomalies` reached: later anomalies are only counted.
    AnomalyLimitReached,
}

impl AnomalyKind {
    /// Stable snake_case name (for EVE output and metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::MalformedPacket => "malformed_packet",
            AnomalyKind::TooLarge => "too_large",
            AnomalyKind::RemainingLengthTooLong => "remaining_length_too_long",
            AnomalyKind::NonMinimalLength => "non_minimal_length",
            AnomalyKind::ReservedPacketType => "reserved_packet_type",
            AnomalyKind::InvalidFixedHeaderFlags => "invalid_fixed_header_flags",
            AnomalyKind::ReservedBitsSet => "reserved_bits_set",
            AnomalyKind::InvalidQos => "invalid_qos",
            AnomalyKind::MissingPacketId => "missing_packet_id",
            AnomalyKind::ZeroPacketId => "zero_packet_id",
            AnomalyKind::InvalidUtf8 => "invalid_utf8",
            AnomalyKind::InvalidTopicName => "invalid_topic_name",
            AnomalyKind::InvalidTopicFilter => "invalid_topic_filter",
            AnomalyKind::InvalidTopicAlias => "invalid_topic_alias",
            AnomalyKind::UnknownProperty => "unknown_property",
            AnomalyKind::PropertyNotAllowed => "property_not_allowed",
            AnomalyKind::DuplicateProperty => "duplicate_property",
            AnomalyKind::InvalidPropertyValue => "invalid_property_value",
            AnomalyKind::InvalidProtocolName => "invalid_protocol_name",
            AnomalyKind::UnsupportedProtocolVersion => "unsupported_protocol_version",
            AnomalyKind::InvalidConnectFlags => "invalid_connect_flags",
            AnomalyKind::InvalidClientId => "invalid_client_id",
            AnomalyKind::PasswordWithoutUsername => "password_without_username",
            AnomalyKind::InvalidReasonCode => "invalid_reason_code",
            AnomalyKind::ProtocolViolation => "protocol_violation",
            AnomalyKind::DuplicateConnect => "duplicate_connect",
            AnomalyKind::MissingConnect => "missing_connect",
            AnomalyKind::UnexpectedDirection => "unexpected_direction",
            AnomalyKind::UnintroducedMessage => "unintroduced_message",
            AnomalyKind::PacketAfterDisconnect => "packet_after_disconnect",
            AnomalyKind::MissingPublish => "missing_publish",
            AnomalyKind::MissingSubscribe => "missing_subscribe",
            AnomalyKind::MissingUnsubscribe => "missing_unsubscribe",
            AnomalyKind::QosHandshakeViolation => "qos_handshake_violation",
            AnomalyKind::PacketIdInUse => "packet_id_in_use",
            AnomalyKind::AckCountMismatch => "ack_count_mismatch",
            AnomalyKind::TooManyInflight => "too_many_inflight",
            AnomalyKind::StreamGap => "stream_gap",
            AnomalyKind::TruncatedPacket => "truncated_packet",
            AnomalyKind::AnomalyLimitReached => "anomaly_limit_reached",
        }
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule a packet breaks, found while decoding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: AnomalyKind,
    pub what: &'static str,
    /// The offending value, when one number says it (a flag byte, an id).
    pub value: Option<u32>,
}

impl Violation {
    pub fn new(kind: AnomalyKind, what: &'static str) -> Self {
        Violation {
            kind,
            what,
            value: None,
        }
    }

    pub fn with_value(kind: AnomalyKind, what: &'static str, value: u32) -> Self {
        Violation {
            kind,
            what,
            value: Some(value),
        }
    }
}

/// Record a broken rule. Out of line and cold: well-formed packets, nearly
/// all of them, then run through compact code.
#[cold]
#[inline(never)]
pub(crate) fn violation(violations: &mut Vec<Violation>, v: Violation) {
    violations.push(v);
}
