//! MQTT control packet parser: bytes to typed packets, no flow knowledge.
//!
//! Follows OASIS MQTT Version 3.1.1 (2014) and MQTT Version 5.0 (2019), and
//! the IBM MQTT V3.1 protocol specification (protocol name "MQIsdp", level 3),
//! whose packet layout 3.1.1 kept.
//!
//! Three outcomes everywhere: a packet, [`Status::Incomplete`] (give me more
//! bytes), or a typed error. Decoding is lenient: whatever can be decoded is
//! returned, and each rule the packet breaks is pushed as a [`Violation`] so
//! the session can report it. A packet is an error only when its structure
//! cannot be followed (a length runs past the packet).
//!
//! [`parse_fixed_header`] frames the stream (§2.1.1 / 3.1.1 §2.2);
//! [`parse_packet`] decodes a complete body; [`parse_publish`] decodes a
//! PUBLISH from the first bytes of its body so the payload need not be
//! buffered.

use std::fmt;

use crate::proto::credential::{self, CredentialDigest};

use super::anomaly::{AnomalyKind, Violation, violation};
use super::properties::{Properties, PropertyContext, parse_properties};
use super::topic::{check_topic_name, has_wildcard};
use super::wire::{MqttStr, ReadFail, ReadResult, Reader, Status, VbiTooLong, decode_vbi};

/// A fixed header is one type/flags byte and 1 to 4 Remaining Length bytes.
pub const MAX_FIXED_HEADER_LEN: usize = 5;

/// MQTT 3.1 limits the Client Identifier to 23 characters (V3.1 §3.1).
pub const MQTT31_MAX_CLIENT_ID_LEN: usize = 23;

/// Protocol version, fixed by the CONNECT's Protocol Level (5.0 §3.1.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1: Protocol Name "MQIsdp", level 3.
    V3_1,
    /// MQTT 3.1.1: "MQTT", level 4.
    V3_1_1,
    /// MQTT 5.0: "MQTT", level 5.
    V5,
}

impl ProtocolVersion {
    /// Protocol Level byte (tshark `mqtt.ver`).
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// Version for a CONNECT Protocol Level. Mosquitto bridges set bit 7 of
    /// the level ("try_private", 0x83 / 0x84); that bit is ignored here.
    pub fn from_connect_level(level: u8) -> Option<Self> {
        match level {
            3 | 0x83 => Some(ProtocolVersion::V3_1),
            4 | 0x84 => Some(ProtocolVersion::V3_1_1),
            5 | 0x85 => Some(ProtocolVersion::V5),
            _ => None,
        }
    }

    /// The Protocol Name this version uses (3.1.1 §3.1.2.1, 5.0 §3.1.2.1).
    pub fn protocol_name(self) -> &'static str {
        match self {
            ProtocolVersion::V3_1 => "MQIsdp",
            ProtocolVersion::V3_1_1 | ProtocolVersion::V5 => "MQTT",
        }
    }

    fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolVersion::V3_1 => "3.1",
            ProtocolVersion::V3_1_1 => "3.1.1",
            ProtocolVersion::V5 => "5.0",
        })
    }
}

/// MQTT Control Packet type (5.0 §2.1.2 Table 2-1, 3.1.1 §2.2.1 Table 2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Type 0, reserved in every version.
    Reserved,
    Connect,
    Connack,
    Publish,
    Puback,
    Pubrec,
    Pubrel,
    Pubcomp,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Pingreq,
    Pingresp,
    Disconnect,
    /// Type 15: AUTH in 5.0, reserved in 3.x.
    Auth,
}

impl PacketType {
    /// From the high nibble of the first fixed-header byte.
    pub fn from_nibble(n: u8) -> Self {
        use PacketType::*;
        match n & 0x0F {
            1 => Connect,
            2 => Connack,
            3 => Publish,
            4 => Puback,
            5 => Pubrec,
            6 => Pubrel,
            7 => Pubcomp,
            8 => Subscribe,
            9 => Suback,
            10 => Unsubscribe,
            11 => Unsuback,
            12 => Pingreq,
            13 => Pingresp,
            14 => Disconnect,
            15 => Auth,
            _ => Reserved,
        }
    }

    /// The numeric type, 0..=15 (tshark `mqtt.msgtype`).
    pub fn code(self) -> u8 {
        use PacketType::*;
        match self {
            Reserved => 0,
            Connect => 1,
            Connack => 2,
            Publish => 3,
            Puback => 4,
            Pubrec => 5,
            Pubrel => 6,
            Pubcomp => 7,
            Subscribe => 8,
            Suback => 9,
            Unsubscribe => 10,
            Unsuback => 11,
            Pingreq => 12,
            Pingresp => 13,
            Disconnect => 14,
            Auth => 15,
        }
    }

    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Reserved => "RESERVED",
            Connect => "CONNECT",
            Connack => "CONNACK",
            Publish => "PUBLISH",
            Puback => "PUBACK",
            Pubrec => "PUBREC",
            Pubrel => "PUBREL",
            Pubcomp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            Suback => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            Unsuback => "UNSUBACK",
            Pingreq => "PINGREQ",
            Pingresp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }

    /// Whether a client may send it (5.0 §2.1.2 "Direction of flow"; in 3.x
    /// DISCONNECT is client to server only).
    pub fn client_may_send(self) -> bool {
        !matches!(
            self,
            PacketType::Connack | PacketType::Suback | PacketType::Unsuback | PacketType::Pingresp
        )
    }

    /// Whether a server may send it (5.0 §2.1.2).
    pub fn server_may_send(self, version: Option<ProtocolVersion>) -> bool {
        match self {
            PacketType::Connect
            | PacketType::Subscribe
            | PacketType::Unsubscribe
            | PacketType::Pingreq => false,
            PacketType::Disconnect => version.is_none_or(ProtocolVersion::is_v5),
            _ => true,
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quality of Service level (5.0 §4.3). Value 3 is carried as `Reserved`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
    /// QoS 3: malformed wherever it appears [MQTT-3.3.1-4].
    Reserved,
}

impl Qos {
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Qos::AtMostOnce,
            1 => Qos::AtLeastOnce,
            2 => Qos::ExactlyOnce,
            _ => Qos::Reserved,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
            Qos::Reserved => 3,
        }
    }
}

/// An MQTT 5.0 Reason Code (§2.4), also used for 3.1.1 SUBACK return codes
/// (0x00-0x02, 0x80), which 5.0 kept with the same meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(pub u8);

impl ReasonCode {
    pub const SUCCESS: ReasonCode = ReasonCode(0x00);
    pub const NO_MATCHING_SUBSCRIBERS: ReasonCode = ReasonCode(0x10);
    pub const NO_SUBSCRIPTION_EXISTED: ReasonCode = ReasonCode(0x11);
    pub const CONTINUE_AUTHENTICATION: ReasonCode = ReasonCode(0x18);
    pub const UNSPECIFIED_ERROR: ReasonCode = ReasonCode(0x80);
    pub const BAD_USER_NAME_OR_PASSWORD: ReasonCode = ReasonCode(0x86);
    pub const NOT_AUTHORIZED: ReasonCode = ReasonCode(0x87);
    pub const BAD_AUTHENTICATION_METHOD: ReasonCode = ReasonCode(0x8C);
    pub const PACKET_IDENTIFIER_NOT_FOUND: ReasonCode = ReasonCode(0x92);

    /// "Reason Code values of 0x80 or greater indicate failure" (§2.4).
    pub fn is_failure(self) -> bool {
        self.0 >= 0x80
    }
}

/// CONNACK Connect Return Code of MQTT 3.1 / 3.1.1 (3.1.1 §3.2.2.3 Table 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    Accepted,
    UnacceptableProtocolVersion,
    IdentifierRejected,
    ServerUnavailable,
    BadUsernameOrPassword,
    NotAuthorized,
    /// 6-255: reserved.
    Unknown(u8),
}

impl ConnectReturnCode {
    pub fn from_code(code: u8) -> Self {
        use ConnectReturnCode::*;
        match code {
            0 => Accepted,
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUsernameOrPassword,
            5 => NotAuthorized,
            n => Unknown(n),
        }
    }

    pub fn code(self) -> u8 {
        use ConnectReturnCode::*;
        match self {
            Accepted => 0,
            UnacceptableProtocolVersion => 1,
            IdentifierRejected => 2,
            ServerUnavailable => 3,
            BadUsernameOrPassword => 4,
            NotAuthorized => 5,
            Unknown(n) => n,
        }
    }
}

/// The stream cannot be framed any further.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// 5.0 §1.5.5 / 3.1.1 §2.2.3: at most four Remaining Length bytes.
    #[error("remaining length continues past its fourth byte")]
    RemainingLengthTooLong,
}

/// A packet body that cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("malformed {packet}: {what} (body offset {offset})")]
    Malformed {
        packet: PacketType,
        what: &'static str,
        offset: usize,
    },
    /// Type 0, or 15 before MQTT 5.0 (5.0 §2.1.2, 3.1.1 §2.2.1).
    #[error("reserved control packet type {0}")]
    ReservedType(u8),
}

/// Fixed header (5.0 §2.1.1, 3.1.1 §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet_type: PacketType,
    /// Low nibble of the first byte.
    pub flags: u8,
    pub remaining_len: u32,
    /// Bytes the fixed header took (2..=5).
    pub header_len: usize,
    /// Whether the Remaining Length used its shortest encoding [MQTT-1.5.5-1].
    pub minimal_length: bool,
}

impl FixedHeader {
    /// Whole packet length: fixed header plus Remaining Length.
    pub fn total_len(&self) -> u64 {
        self.header_len as u64 + u64::from(self.remaining_len)
    }

    /// PUBLISH QoS from the flags (3.1.1 §3.3.1.2).
    pub fn publish_qos(&self) -> Qos {
        Qos::from_bits(self.flags >> 1)
    }

    /// Whether the flags are the ones 5.0 §2.1.3 Table 2-2 / 3.1.1 §2.2.2
    /// Table 2.2 require. PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010; MQTT
    /// 3.1 also let them set DUP on a retransmission (0b1010). PUBLISH
    /// carries DUP/QoS/RETAIN, checked by [`parse_publish`].
    pub fn flags_valid(&self, version: Option<ProtocolVersion>) -> bool {
        match self.packet_type {
            PacketType::Publish => true,
            PacketType::Pubrel | PacketType::Subscribe | PacketType::Unsubscribe => {
                self.flags == 0b0010
                    || (self.flags == 0b1010 && version == Some(ProtocolVersion::V3_1))
            }
            _ => self.flags == 0,
        }
    }
}

/// Frame the next packet: read its fixed header from the start of `input`.
pub fn parse_fixed_header(input: &[u8]) -> Result<Status<FixedHeader>, FrameError> {
    let Some(&first) = input.first() else {
        return Ok(Status::Incomplete(1));
    };
    let vbi = match decode_vbi(input.get(1..).unwrap_or_default()) {
        Ok(Status::Done(v)) => v,
        Ok(Status::Incomplete(n)) => return Ok(Status::Incomplete(n + 1)),
        Err(VbiTooLong) => return Err(FrameError::RemainingLengthTooLong),
    };
    Ok(Status::Done(FixedHeader {
        packet_type: PacketType::from_nibble(first >> 4),
        flags: first & 0x0F,
        remaining_len: vbi.value,
        header_len: 1 + vbi.len,
        minimal_length: vbi.minimal,
    }))
}

/// A decoded control packet, borrowing from the body it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    Connack(Connack<'a>),
    Publish(Publish<'a>),
    Puback(Ack<'a>),
    Pubrec(Ack<'a>),
    Pubrel(Ack<'a>),
    Pubcomp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    Suback(SubAck<'a>),
    Unsubscribe(Unsubscribe<'a>),
    Unsuback(SubAck<'a>),
    Pingreq,
    Pingresp,
    Disconnect(ReasonOnly<'a>),
    Auth(ReasonOnly<'a>),
}

/// CONNECT (5.0 §3.1, 3.1.1 §3.1). The password is never kept: only its
/// length and the credential digest of (user name, password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect<'a> {
    pub protocol_name: MqttStr<'a>,
    pub protocol_level: u8,
    /// `None` when the level is unknown (the body was then read as 3.1.1).
    pub version: Option<ProtocolVersion>,
    /// Connect Flags byte (§3.1.2.3).
    pub flags: u8,
    pub keep_alive: u16,
    pub properties: Properties<'a>,
    pub client_id: MqttStr<'a>,
    pub will: Option<Will<'a>>,
    pub username: Option<MqttStr<'a>>,
    /// Length of the Password field when the Password Flag is set and the
    /// field is present.
    pub password_len: Option<u16>,
    /// [`credential::digest`] of the User Name (empty when absent, which
    /// 5.0 §3.1.2.9 allows) and the Password, when a Password is present.
    pub credential: Option<CredentialDigest>,
}

impl Connect<'_> {
    /// Clean Session (3.x) / Clean Start (5.0), bit 1.
    pub fn clean_start(&self) -> bool {
        self.flags & 0x02 != 0
    }

    pub fn has_password_flag(&self) -> bool {
        self.flags & 0x40 != 0
    }

    pub fn has_username_flag(&self) -> bool {
        self.flags & 0x80 != 0
    }
}

/// Will Message fields of a CONNECT payload (5.0 §3.1.3.2-§3.1.3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will<'a> {
    pub properties: Properties<'a>,
    pub topic: MqttStr<'a>,
    pub payload_len: u16,
    pub qos: Qos,
    pub retain: bool,
}

/// CONNACK (5.0 §3.2, 3.1.1 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connack<'a> {
    pub flags: u8,
    pub session_present: bool,
    /// Return code (3.x) or reason code (5.0).
    pub code: u8,
    pub properties: Properties<'a>,
}

/// PUBLISH (5.0 §3.3, 3.1.1 §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    pub dup: bool,
    pub qos: Qos,
    pub retain: bool,
    pub topic: MqttStr<'a>,
    pub packet_id: Option<u16>,
    pub properties: Properties<'a>,
    /// Payload length (Remaining Length minus the variable header).
    pub payload_len: u32,
    /// The payload bytes that were available, at most as many as asked for.
    pub payload_head: &'a [u8],
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP (5.0 §3.4-§3.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack<'a> {
    pub packet_id: u16,
    /// 0x00 when omitted (§3.4.2.1); always so in 3.x.
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

/// SUBSCRIBE (5.0 §3.8, 3.1.1 §3.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe<'a> {
    pub packet_id: u16,
    pub properties: Properties<'a>,
    pub filters: FilterList<'a>,
}

/// UNSUBSCRIBE (5.0 §3.10, 3.1.1 §3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    pub packet_id: u16,
    pub properties: Properties<'a>,
    pub filters: FilterList<'a>,
}

/// SUBACK / UNSUBACK (5.0 §3.9, §3.11): codes one per filter (UNSUBACK has
/// none before 5.0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck<'a> {
    pub packet_id: u16,
    pub properties: Properties<'a>,
    pub codes: &'a [u8],
}

/// DISCONNECT / AUTH (5.0 §3.14, §3.15): a reason code, 0x00 when omitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonOnly<'a> {
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

/// The Topic Filters of a SUBSCRIBE or UNSUBSCRIBE: a checked view over the
/// entries that decoded, iterated without failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterList<'a> {
    raw: &'a [u8],
    count: usize,
    /// SUBSCRIBE entries carry an options byte after each filter.
    with_options: bool,
}

impl<'a> FilterList<'a> {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// (Topic Filter, Subscription Options byte) pairs; options are `None`
    /// for UNSUBSCRIBE.
    pub fn iter(&self) -> FilterIter<'a> {
        FilterIter {
            reader: Reader::new(self.raw),
            with_options: self.with_options,
        }
    }
}

/// Iterator over a [`FilterList`].
#[derive(Clone, Debug)]
pub struct FilterIter<'a> {
    reader: Reader<'a>,
    with_options: bool,
}

impl<'a> Iterator for FilterIter<'a> {
    type Item = (MqttStr<'a>, Option<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.at_end() {
            return None;
        }
        let filter = self.reader.string("topic filter").ok()?;
        let options = if self.with_options {
            Some(self.reader.u8("subscription options").ok()?)
        } else {
            None
        };
        Some((filter, options))
    }
}

/// Whether a 5.0 Topic Filter names a Shared Subscription (§4.8.2).
pub fn is_shared_filter(filter: &[u8]) -> bool {
    filter.starts_with(b"$share/")
}

/// Topic Filter rules (5.0 §4.7.1, 3.1.1 §4.7.1): `#` alone in the last
/// level [MQTT-4.7.1-2], `+` alone in its level [MQTT-4.7.1-3], at least one
/// character [MQTT-4.7.3-1]. In 5.0 a `$share/{ShareName}/{filter}` filter
/// needs a non-empty ShareName without wildcards and a filter after it
/// [MQTT-4.8.2-1], [MQTT-4.8.2-2].
pub fn check_topic_filter(filter: &[u8], version: ProtocolVersion) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("empty topic filter");
    }
    let mut rest = filter;
    if version.is_v5() && is_shared_filter(filter) {
        let after = filter.get(b"$share/".len()..).unwrap_or_default();
        let Some(slash) = after.iter().position(|&b| b == b'/') else {
            return Err("shared subscription without a topic filter");
        };
        let share = after.get(..slash).unwrap_or_default();
        if share.is_empty() {
            return Err("empty share name");
        }
        if has_wildcard(share) {
            return Err("wildcard in share name");
        }
        rest = after.get(slash + 1..).unwrap_or_default();
        if rest.is_empty() {
            return Err("shared subscription without a topic filter");
        }
    }
    if !has_wildcard(rest) {
        return Ok(());
    }
    let mut levels = rest.split(|&b| b == b'/').peekable();
    while let Some(level) = levels.next() {
        if level.contains(&b'#') {
            if level != b"#" {
                return Err("'#' not alone in its level");
            }
            if levels.peek().is_some() {
                return Err("'#' not the last level");
            }
        }
        if level.contains(&b'+') && level != b"+" {
            return Err("'+' not alone in its level");
        }
    }
    Ok(())
}

// Reason codes each packet may carry (5.0 §3.x.2.1 / §3.x.3 tables).
const CONNACK_REASONS: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_REASONS: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_REASONS: &[u8] = &[0x00, 0x92];
const SUBACK_REASONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_REASONS: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_REASONS: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_REASONS: &[u8] = &[0x00, 0x18, 0x19];
/// 3.1.1 §3.9.3: SUBACK return codes 0x00, 0x01, 0x02 and 0x80.
const SUBACK_V3_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];

/// Whether `code` is a reason code 5.0 defines for this packet type.
pub fn reason_code_allowed(packet: PacketType, code: u8) -> bool {
    let set = match packet {
        PacketType::Connack => CONNACK_REASONS,
        PacketType::Puback | PacketType::Pubrec => PUBACK_REASONS,
        PacketType::Pubrel | PacketType::Pubcomp => PUBREL_REASONS,
        PacketType::Suback => SUBACK_REASONS,
        PacketType::Unsuback => UNSUBACK_REASONS,
        PacketType::Disconnect => DISCONNECT_REASONS,
        PacketType::Auth => AUTH_REASONS,
        _ => return false,
    };
    set.contains(&code)
}

/// Map a read failure to a packet error (complete bodies) or to
/// `Incomplete` (PUBLISH prefixes).
fn malformed(packet: PacketType, fail: ReadFail) -> PacketError {
    match fail {
        ReadFail::Malformed(what, offset) => PacketError::Malformed {
            packet,
            what,
            offset,
        },
        ReadFail::Incomplete(offset) => PacketError::Malformed {
            packet,
            what: "body shorter than its remaining length",
            offset,
        },
    }
}

#[inline]
fn check_str(s: &MqttStr<'_>, what: &'static str, violations: &mut Vec<Violation>) {
    if !s.is_well_formed() {
        violation(violations, Violation::new(AnomalyKind::InvalidUtf8, what));
    }
}

#[inline]
fn expect_end(r: &Reader<'_>, violations: &mut Vec<Violation>) {
    if !r.at_end() {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::MalformedPacket,
                "unexpected bytes after the packet's fields",
                u32::try_from(r.remaining()).unwrap_or(u32::MAX),
            ),
        );
    }
}

#[inline]
fn check_packet_id(id: u16, violations: &mut Vec<Violation>) {
    // 5.0 §2.2.1 / 3.1.1 §2.3.1: Packet Identifiers are non-zero.
    if id == 0 {
        violation(
            violations,
            Violation::new(AnomalyKind::ZeroPacketId, "packet identifier 0"),
        );
    }
}

fn check_reason(packet: PacketType, code: u8, violations: &mut Vec<Violation>) {
    if !reason_code_allowed(packet, code) {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidReasonCode,
                "reason code not defined for this packet",
                u32::from(code),
            ),
        );
    }
}

#[inline]
fn check_header(
    h: &FixedHeader,
    version: Option<ProtocolVersion>,
    violations: &mut Vec<Violation>,
) {
    if !h.minimal_length {
        violation(
            violations,
            Violation::new(
                AnomalyKind::NonMinimalLength,
                "remaining length not minimally encoded",
            ),
        );
    }
    if !h.flags_valid(version) {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidFixedHeaderFlags,
                "fixed header flags not as the packet type requires",
                u32::from(h.flags),
            ),
        );
    }
}

/// The Protocol Level of a CONNECT body, read even when the rest of the
/// packet is malformed (so a session still learns the version).
pub fn peek_connect_level(body: &[u8]) -> Option<u8> {
    let mut r = Reader::new(body);
    r.string("protocol name").ok()?;
    r.u8("protocol level").ok()
}

/// Decode a complete packet body (`body.len()` equals the Remaining Length).
///
/// `version` is the session's protocol version; a CONNECT uses its own
/// Protocol Level instead. Rules the packet breaks are appended to
/// `violations`.
pub fn parse_packet<'a>(
    h: &FixedHeader,
    body: &'a [u8],
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> Result<Packet<'a>, PacketError> {
    let pt = h.packet_type;
    let reserved = pt == PacketType::Reserved || (pt == PacketType::Auth && !version.is_v5());
    // PUBLISH checks its own flags; a CONNECT's rules depend on its level.
    if !reserved && pt != PacketType::Publish && pt != PacketType::Connect {
        check_header(h, Some(version), violations);
    }
    let mut r = Reader::new(body);
    let parsed = match pt {
        PacketType::Reserved => return Err(PacketError::ReservedType(0)),
        PacketType::Auth if reserved => return Err(PacketError::ReservedType(15)),
        PacketType::Publish => {
            return match parse_publish(h, body, version, usize::MAX, violations)? {
                Status::Done(p) => Ok(Packet::Publish(p)),
                Status::Incomplete(n) => Err(malformed(pt, ReadFail::Incomplete(n))),
            };
        }
        PacketType::Connect => parse_connect(h, &mut r, violations).map(Packet::Connect),
        PacketType::Connack => parse_connack(&mut r, version, violations).map(Packet::Connack),
        PacketType::Puback => parse_ack(pt, &mut r, version, violations).map(Packet::Puback),
        PacketType::Pubrec => parse_ack(pt, &mut r, version, violations).map(Packet::Pubrec),
        PacketType::Pubrel => parse_ack(pt, &mut r, version, violations).map(Packet::Pubrel),
        PacketType::Pubcomp => parse_ack(pt, &mut r, version, violations).map(Packet::Pubcomp),
        PacketType::Subscribe => {
            parse_subscribe(&mut r, version, violations).map(Packet::Subscribe)
        }
        PacketType::Unsubscribe => {
            parse_unsubscribe(&mut r, version, violations).map(Packet::Unsubscribe)
        }
        PacketType::Suback => parse_suback(pt, &mut r, version, violations).map(Packet::Suback),
        PacketType::Unsuback => parse_suback(pt, &mut r, version, violations).map(Packet::Unsuback),
        PacketType::Pingreq => {
            expect_end(&r, violations);
            Ok(Packet::Pingreq)
        }
        PacketType::Pingresp => {
            expect_end(&r, violations);
            Ok(Packet::Pingresp)
        }
        PacketType::Disconnect => {
            parse_reason_only(pt, &mut r, version, violations).map(Packet::Disconnect)
        }
        PacketType::Auth => parse_reason_only(pt, &mut r, version, violations).map(Packet::Auth),
    };
    parsed.map_err(|f| malformed(pt, f))
}

/// Decode a PUBLISH from the first bytes of its body (5.0 §3.3, 3.1.1 §3.3).
///
/// `prefix` holds the body's first bytes (all of it once it has arrived);
/// the packet is done once the variable header and
/// `min(want_payload, payload length)` payload bytes are present, so a large
/// payload never has to be buffered. `Incomplete(n)` means `n` body bytes are
/// needed.
pub fn parse_publish<'a>(
    h: &FixedHeader,
    prefix: &'a [u8],
    version: ProtocolVersion,
    want_payload: usize,
    violations: &mut Vec<Violation>,
) -> Result<Status<Publish<'a>>, PacketError> {
    let pt = PacketType::Publish;
    let limit = usize::try_from(h.remaining_len).unwrap_or(usize::MAX);
    let prefix = prefix.get(..limit).unwrap_or(prefix);
    let mut r = Reader::with_limit(prefix, limit);
    let stop = |f: ReadFail| match f {
        ReadFail::Incomplete(n) => Ok(Status::Incomplete(n)),
        other => Err(malformed(pt, other)),
    };

    check_header(h, Some(version), violations);
    let qos = h.publish_qos();
    let dup = h.flags & 0x08 != 0;
    if qos == Qos::Reserved {
        violation(
            violations,
            Violation::new(AnomalyKind::InvalidQos, "PUBLISH with QoS 3"),
        );
    }
    if qos == Qos::AtMostOnce && dup {
        // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0 messages.
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidFixedHeaderFlags,
                "DUP set on a QoS 0 PUBLISH",
                u32::from(h.flags),
            ),
        );
    }
    let topic = match r.string("topic name") {
        Ok(t) => t,
        Err(f) => return stop(f),
    };
    check_str(&topic, "topic name", violations);
    if let Err(what) = check_topic_name(topic.as_bytes()) {
        violation(
            violations,
            Violation::new(AnomalyKind::InvalidTopicName, what),
        );
    }
    let packet_id = if qos == Qos::AtMostOnce {
        None
    } else if r.remaining() < 2 {
        violation(
            violations,
            Violation::new(
                AnomalyKind::MissingPacketId,
                "QoS > 0 PUBLISH without a packet identifier",
            ),
        );
        None
    } else {
        match r.u16("packet identifier") {
            Ok(id) => {
                check_packet_id(id, violations);
                Some(id)
            }
            Err(f) => return stop(f),
        }
    };
    let properties = if version.is_v5() {
        match parse_properties(&mut r, PropertyContext::Publish, violations) {
            Ok(p) => p,
            Err(f) => return stop(f),
        }
    } else {
        Properties::empty()
    };
    // [MQTT-4.7.3-1]; 5.0 §3.3.2.3.4 allows an empty name with a Topic Alias.
    if topic.is_empty() && properties.topic_alias().is_none() {
        violation(
            violations,
            Violation::new(AnomalyKind::InvalidTopicName, "empty topic name"),
        );
    }
    let header_end = r.pos();
    let payload_len = limit.saturating_sub(header_end);
    let want = payload_len.min(want_payload);
    let available = prefix.len().saturating_sub(header_end);
    if available < want {
        return Ok(Status::Incomplete(header_end + want));
    }
    let head_len = available.min(want_payload);
    let payload_head = prefix
        .get(header_end..header_end + head_len)
        .unwrap_or_default();
    Ok(Status::Done(Publish {
        dup,
        qos,
        retain: h.flags & 0x01 != 0,
        topic,
        packet_id,
        properties,
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        payload_head,
    }))
}

/// A 3.x PUBLISH that breaks none of the rules [`parse_publish`] checks,
/// decoded without keeping track of them: the ordinary telemetry message.
/// `None` when the packet needs a closer look (a rule may be broken, a
/// field is not ASCII, or bytes are still to come); [`parse_publish`] then
/// says what it is. For a packet it accepts, the result is exactly what
/// [`parse_publish`] returns for it, with no violation.
pub fn parse_publish_clean<'a>(
    h: &FixedHeader,
    prefix: &'a [u8],
    want_payload: usize,
) -> Option<Publish<'a>> {
    let qos = h.publish_qos();
    let dup = h.flags & 0x08 != 0;
    if !h.minimal_length || qos == Qos::Reserved || (qos == Qos::AtMostOnce && dup) {
        return None;
    }
    let limit = usize::try_from(h.remaining_len).unwrap_or(usize::MAX);
    let prefix = prefix.get(..limit).unwrap_or(prefix);
    let (len, rest) = prefix.split_first_chunk::<2>()?;
    let topic = rest.get(..usize::from(u16::from_be_bytes(*len)))?;
    // Non-empty, ASCII without NUL (so well-formed UTF-8), no wildcard.
    let clean = topic.iter().fold(true, |ok, &b| {
        ok & (b.wrapping_sub(1) < 0x7F) & (b != b'+') & (b != b'#')
    });
    if topic.is_empty() || !clean {
        return None;
    }
    let mut header_end = 2 + topic.len();
    let packet_id = if qos == Qos::AtMostOnce {
        None
    } else {
        let id = u16::from_be_bytes(*prefix.get(header_end..)?.first_chunk::<2>()?);
        if id == 0 {
            return None;
        }
        header_end += 2;
        Some(id)
    };
    let payload_len = limit.saturating_sub(header_end);
    let available = prefix.len().saturating_sub(header_end);
    if available < payload_len.min(want_payload) {
        return None;
    }
    let payload_head = prefix.get(header_end..header_end + available.min(want_payload))?;
    Some(Publish {
        dup,
        qos,
        retain: h.flags & 0x01 != 0,
        topic: MqttStr::new(topic),
        packet_id,
        properties: Properties::empty(),
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        payload_head,
    })
}

fn parse_connect<'a>(
    h: &FixedHeader,
    r: &mut Reader<'a>,
    violations: &mut Vec<Violation>,
) -> ReadResult<Connect<'a>> {
    let name = r.string("protocol name")?;
    let level = r.u8("protocol level")?;
    let version = ProtocolVersion::from_connect_level(level);
    check_header(h, version, violations);
    match version {
        None => violation(
            violations,
            Violation::with_value(
                AnomalyKind::UnsupportedProtocolVersion,
                "unknown protocol level",
                u32::from(level),
            ),
        ),
        Some(v) if name.as_bytes() != v.protocol_name().as_bytes() => violation(
            violations,
            Violation::new(
                AnomalyKind::InvalidProtocolName,
                "protocol name does not match the protocol level",
            ),
        ),
        Some(_) => {}
    }
    // Unknown levels are read with the 3.1.1 layout.
    let layout = version.unwrap_or(ProtocolVersion::V3_1_1);
    let flags = r.u8("connect flags")?;
    let will_flag = flags & 0x04 != 0;
    let will_qos = Qos::from_bits(flags >> 3);
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if flags & 0x01 != 0 {
        violation(
            violations,
            Violation::new(
                AnomalyKind::ReservedBitsSet,
                "CONNECT flags reserved bit 0 set",
            ),
        );
    }
    if will_qos == Qos::Reserved {
        violation(
            violations,
            Violation::new(AnomalyKind::InvalidQos, "Will QoS 3"),
        );
    }
    if !will_flag && (will_qos != Qos::AtMostOnce || will_retain) {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidConnectFlags,
                "Will QoS or Will Retain set without the Will Flag",
                u32::from(flags),
            ),
        );
    }
    if password_flag && !username_flag && !layout.is_v5() {
        violation(
            violations,
            Violation::new(
                AnomalyKind::PasswordWithoutUsername,
                "Password Flag set without User Name Flag",
            ),
        );
    }
    let keep_alive = r.u16("keep alive")?;
    let properties = if layout.is_v5() {
        parse_properties(r, PropertyContext::Connect, violations)?
    } else {
        Properties::empty()
    };

    let client_id = r.string("client identifier")?;
    check_str(&client_id, "client identifier", violations);
    match layout {
        ProtocolVersion::V3_1
            if client_id.is_empty() || client_id.len() > MQTT31_MAX_CLIENT_ID_LEN =>
        {
            violation(
                violations,
                Violation::with_value(
                    AnomalyKind::InvalidClientId,
                    "MQTT 3.1 client identifier must be 1 to 23 characters",
                    u32::try_from(client_id.len()).unwrap_or(u32::MAX),
                ),
            );
        }
        ProtocolVersion::V3_1_1 if client_id.is_empty() && flags & 0x02 == 0 => {
            violation(
                violations,
                Violation::new(
                    AnomalyKind::InvalidClientId,
                    "empty client identifier without Clean Session",
                ),
            );
        }
        _ => {}
    }
    let mut connect = Connect {
        protocol_name: name,
        protocol_level: level,
        version,
        flags,
        keep_alive,
        properties,
        client_id,
        will: None,
        username: None,
        password_len: None,
        credential: None,
    };
    // The payload fields after the Client Identifier are read leniently: a
    // truncated one is recorded and the fields before it are kept.
    if let Err(what) = parse_connect_tail(r, &mut connect, layout, violations) {
        violation(
            violations,
            Violation::new(AnomalyKind::MalformedPacket, what),
        );
        return Ok(connect);
    }
    expect_end(r, violations);
    Ok(connect)
}

fn parse_connect_tail<'a>(
    r: &mut Reader<'a>,
    c: &mut Connect<'a>,
    layout: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> Result<(), &'static str> {
    let name = |f: ReadFail| match f {
        ReadFail::Malformed(what, _) => what,
        ReadFail::Incomplete(_) => "truncated CONNECT payload",
    };
    if c.flags & 0x04 != 0 {
        let properties = if layout.is_v5() {
            parse_properties(r, PropertyContext::Will, violations).map_err(name)?
        } else {
            Properties::empty()
        };
        let topic = r.string("will topic").map_err(name)?;
        check_str(&topic, "will topic", violations);
        if topic.is_empty() {
            violation(
                violations,
                Violation::new(AnomalyKind::InvalidTopicName, "empty will topic"),
            );
        } else if let Err(what) = check_topic_name(topic.as_bytes()) {
            violation(
                violations,
                Violation::new(AnomalyKind::InvalidTopicName, what),
            );
        }
        let payload = r.binary("will payload").map_err(name)?;
        c.will = Some(Will {
            properties,
            topic,
            payload_len: u16::try_from(payload.len()).unwrap_or(u16::MAX),
            qos: Qos::from_bits(c.flags >> 3),
            retain: c.flags & 0x20 != 0,
        });
    }
    if c.has_username_flag() {
        let user = r.string("user name").map_err(name)?;
        check_str(&user, "user name", violations);
        c.username = Some(user);
    }
    if c.has_password_flag() {
        // Only the length and the credential digest are kept.
        let password = r.binary("password").map_err(name)?;
        c.password_len = Some(u16::try_from(password.len()).unwrap_or(u16::MAX));
        let user = c.username.as_ref().map_or(&b""[..], |u| u.as_bytes());
        c.credential = Some(credential::digest(user, password));
    }
    Ok(())
}

fn parse_connack<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> ReadResult<Connack<'a>> {
    let flags = r.u8("connect acknowledge flags")?;
    let code = r.u8("connect return code")?;
    // In 3.1 the first byte was unused; from 3.1.1 bit 0 is Session Present
    // and bits 7-1 are reserved [MQTT-3.2.2-1].
    let session_present = version != ProtocolVersion::V3_1 && flags & 0x01 != 0;
    if version != ProtocolVersion::V3_1 && flags & 0xFE != 0 {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::ReservedBitsSet,
                "CONNACK flags reserved bits set",
                u32::from(flags),
            ),
        );
    }
    let properties = if version.is_v5() {
        check_reason(PacketType::Connack, code, violations);
        parse_properties(r, PropertyContext::Connack, violations)?
    } else {
        if code > 5 {
            violation(
                violations,
                Violation::with_value(
                    AnomalyKind::InvalidReasonCode,
                    "reserved CONNACK return code",
                    u32::from(code),
                ),
            );
        }
        Properties::empty()
    };
    // [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5.0).
    if session_present && code != 0 {
        violation(
            violations,
            Violation::new(
                AnomalyKind::ProtocolViolation,
                "Session Present set on a refused connection",
            ),
        );
    }
    expect_end(r, violations);
    Ok(Connack {
        flags,
        session_present,
        code,
        properties,
    })
}

fn ack_context(pt: PacketType) -> PropertyContext {
    match pt {
        PacketType::Puback => PropertyContext::Puback,
        PacketType::Pubrec => PropertyContext::Pubrec,
        PacketType::Pubrel => PropertyContext::Pubrel,
        PacketType::Pubcomp => PropertyContext::Pubcomp,
        PacketType::Suback => PropertyContext::Suback,
        PacketType::Unsuback => PropertyContext::Unsuback,
        PacketType::Auth => PropertyContext::Auth,
        _ => PropertyContext::Disconnect,
    }
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP. In 5.0 the Reason Code may be omitted when
/// it is 0x00 and the Property Length when the Remaining Length is below 4
/// (§3.4.2.1, §3.4.2.2.1).
fn parse_ack<'a>(
    pt: PacketType,
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> ReadResult<Ack<'a>> {
    let packet_id = r.u16("packet identifier")?;
    check_packet_id(packet_id, violations);
    let mut reason = ReasonCode::SUCCESS;
    let mut properties = Properties::empty();
    if version.is_v5() {
        if !r.at_end() {
            reason = ReasonCode(r.u8("reason code")?);
            check_reason(pt, reason.0, violations);
        }
        if !r.at_end() {
            properties = parse_properties(r, ack_context(pt), violations)?;
        }
    }
    expect_end(r, violations);
    Ok(Ack {
        packet_id,
        reason,
        properties,
    })
}

fn parse_subscribe<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> ReadResult<Subscribe<'a>> {
    // An empty list: [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0).
    let (packet_id, properties, filters) = parse_filter_request(
        r,
        version,
        PropertyContext::Subscribe,
        "SUBSCRIBE without topic filters",
        violations,
    )?;
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

fn parse_unsubscribe<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> ReadResult<Unsubscribe<'a>> {
    // An empty list: [MQTT-3.10.3-2].
    let (packet_id, properties, filters) = parse_filter_request(
        r,
        version,
        PropertyContext::Unsubscribe,
        "UNSUBSCRIBE without topic filters",
        violations,
    )?;
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

/// The packet identifier, properties (5.0) and topic filters of a
/// SUBSCRIBE (`context` Subscribe: each filter with its options byte) or an
/// UNSUBSCRIBE; an empty filter list is recorded as `empty`.
fn parse_filter_request<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    context: PropertyContext,
    empty: &'static str,
    violations: &mut Vec<Violation>,
) -> ReadResult<(u16, Properties<'a>, FilterList<'a>)> {
    let packet_id = r.u16("packet identifier")?;
    check_packet_id(packet_id, violations);
    let properties = if version.is_v5() {
        parse_properties(r, context, violations)?
    } else {
        Properties::empty()
    };
    let with_options = context == PropertyContext::Subscribe;
    let filters = parse_filters(r, version, with_options, violations);
    if filters.is_empty() {
        violation(
            violations,
            Violation::new(AnomalyKind::ProtocolViolation, empty),
        );
    }
    Ok((packet_id, properties, filters))
}

/// Walk the filter list to the end of the packet, checking each entry. A
/// truncated last entry is recorded and left out of the view.
fn parse_filters<'a>(
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    with_options: bool,
    violations: &mut Vec<Violation>,
) -> FilterList<'a> {
    let all = r.rest();
    let start = r.pos();
    let mut end = start;
    let mut count = 0;
    while !r.at_end() {
        let Ok(filter) = r.string("topic filter") else {
            violation(
                violations,
                Violation::new(AnomalyKind::MalformedPacket, "truncated topic filter"),
            );
            break;
        };
        let options = if with_options {
            match r.u8("subscription options") {
                Ok(o) => Some(o),
                Err(_) => {
                    violation(
                        violations,
                        Violation::new(
                            AnomalyKind::MalformedPacket,
                            "topic filter without its options byte",
                        ),
                    );
                    break;
                }
            }
        } else {
            None
        };
        check_str(&filter, "topic filter", violations);
        if let Err(what) = check_topic_filter(filter.as_bytes(), version) {
            violation(
                violations,
                Violation::new(AnomalyKind::InvalidTopicFilter, what),
            );
        }
        if let Some(o) = options {
            check_subscription_options(o, filter.as_bytes(), version, violations);
        }
        count += 1;
        end = r.pos();
    }
    FilterList {
        raw: all.get(..end - start).unwrap_or_default(),
        count,
        with_options,
    }
}

/// Subscription Options (5.0 §3.8.3.1): bits 0-1 Maximum QoS, 2 No Local,
/// 3 Retain As Published, 4-5 Retain Handling, 6-7 reserved. In 3.x only the
/// QoS bits exist and bits 2-7 are reserved ([MQTT-3.8.3-4] in 3.1.1).
fn check_subscription_options(
    options: u8,
    filter: &[u8],
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) {
    if Qos::from_bits(options) == Qos::Reserved {
        violation(
            violations,
            Violation::new(AnomalyKind::InvalidQos, "subscription QoS 3"),
        );
    }
    let reserved = if version.is_v5() { 0xC0 } else { 0xFC };
    if options & reserved != 0 {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::ReservedBitsSet,
                "subscription options reserved bits set",
                u32::from(options),
            ),
        );
    }
    if version.is_v5() {
        if (options >> 4) & 0x03 == 3 {
            violation(
                violations,
                Violation::new(AnomalyKind::ProtocolViolation, "Retain Handling 3"),
            );
        }
        // [MQTT-3.8.3-4]: No Local on a Shared Subscription.
        if options & 0x04 != 0 && is_shared_filter(filter) {
            violation(
                violations,
                Violation::new(
                    AnomalyKind::ProtocolViolation,
                    "No Local set on a shared subscription",
                ),
            );
        }
    }
}

/// SUBACK (codes in every version) and UNSUBACK (codes from 5.0).
fn parse_suback<'a>(
    pt: PacketType,
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> ReadResult<SubAck<'a>> {
    let packet_id = r.u16("packet identifier")?;
    check_packet_id(packet_id, violations);
    if pt == PacketType::Unsuback && !version.is_v5() {
        expect_end(r, violations);
        return Ok(SubAck {
            packet_id,
            properties: Properties::empty(),
            codes: &[],
        });
    }
    let properties = if version.is_v5() {
        parse_properties(r, ack_context(pt), violations)?
    } else {
        Properties::empty()
    };
    let codes = r.take(r.remaining(), "reason codes")?;
    if codes.is_empty() {
        violation(
            violations,
            Violation::new(
                AnomalyKind::ProtocolViolation,
                "acknowledgement without return codes",
            ),
        );
    }
    for &c in codes {
        let ok = if version.is_v5() {
            reason_code_allowed(pt, c)
        } else {
            SUBACK_V3_CODES.contains(&c)
        };
        if !ok {
            violation(
                violations,
                Violation::with_value(
                    AnomalyKind::InvalidReasonCode,
                    "return code not defined for this packet",
                    u32::from(c),
                ),
            );
        }
    }
    Ok(SubAck {
        packet_id,
        properties,
        codes,
    })
}

/// DISCONNECT and AUTH: an optional Reason Code (0x00 when absent), and a
/// Property Length when the Remaining Length is 2 or more (§3.14.2.1,
/// §3.15.2.1). In 3.x DISCONNECT has no variable header.
fn parse_reason_only<'a>(
    pt: PacketType,
    r: &mut Reader<'a>,
    version: ProtocolVersion,
    violations: &mut Vec<Violation>,
) -> ReadResult<ReasonOnly<'a>> {
    let mut reason = ReasonCode::SUCCESS;
    let mut properties = Properties::empty();
    if version.is_v5() {
        if !r.at_end() {
            reason = ReasonCode(r.u8("reason code")?);
            check_reason(pt, reason.0, violations);
        }
        if !r.at_end() {
            properties = parse_properties(r, ack_context(pt), violations)?;
        }
    }
    expect_end(r, violations);
    Ok(ReasonOnly { reason, properties })
}

/// The protocol version a packet proves, for a session seen without its
/// CONNECT. Only packets whose layout differs between 3.x and 5.0 and that
/// fit one of them alone give an answer:
/// - CONNACK: Remaining Length 2 in 3.x (3.1.1 §3.2.1); 5.0 always adds a
///   Property Length (§3.2.2.3), so 3 or more.
/// - PUBACK..PUBCOMP, UNSUBACK, DISCONNECT, AUTH: longer than 3.x allows.
/// - SUBSCRIBE, UNSUBSCRIBE, SUBACK: the body reads cleanly one way only.
///
/// PUBLISH is handled by the session (its payload is opaque, so a 5.0
/// reading is only ever a guess).
pub fn infer_version(h: &FixedHeader, body: &[u8]) -> Option<ProtocolVersion> {
    use PacketType::*;
    let clean = |v: ProtocolVersion| {
        let mut tmp = Vec::new();
        parse_packet(h, body, v, &mut tmp).is_ok() && tmp.is_empty()
    };
    match h.packet_type {
        Connect => peek_connect_level(body).and_then(ProtocolVersion::from_connect_level),
        Connack => Some(if h.remaining_len == 2 {
            ProtocolVersion::V3_1_1
        } else {
            ProtocolVersion::V5
        }),
        Puback | Pubrec | Pubrel | Pubcomp if h.remaining_len > 2 => Some(ProtocolVersion::V5),
        Unsuback if h.remaining_len == 2 => Some(ProtocolVersion::V3_1_1),
        Unsuback if h.remaining_len > 2 => Some(ProtocolVersion::V5),
        Disconnect if h.remaining_len > 0 => Some(ProtocolVersion::V5),
        Auth => Some(ProtocolVersion::V5),
        Subscribe | Unsubscribe | Suback => {
            match (clean(ProtocolVersion::V3_1_1), clean(ProtocolVersion::V5)) {
                (true, false) => Some(ProtocolVersion::V3_1_1),
                (false, true) => Some(ProtocolVersion::V5),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Frame and parse one whole packet. The bytes are leaked so test
    /// vectors can be built inline.
    fn parse(
        bytes: &[u8],
        version: ProtocolVersion,
    ) -> (Result<Packet<'static>, PacketError>, Vec<Violation>) {
        let bytes: &'static [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
        let h = match parse_fixed_header(bytes) {
            Ok(Status::Done(h)) => h,
            other => panic!("no header: {other:?}"),
        };
        assert_eq!(h.total_len(), bytes.len() as u64, "vector length");
        let mut v = Vec::new();
        let p = parse_packet(&h, &bytes[h.header_len..], version, &mut v);
        (p, v)
    }

    fn kinds(v: &[Violation]) -> Vec<AnomalyKind> {
        v.iter().map(|x| x.kind).collect()
    }

    #[test]
    fn fixed_header_lengths() {
        // 3.1.1 §2.2.3 Table 2.4 boundaries, behind a PINGREQ type byte.
        let cases: &[(&[u8], u32, usize)] = &[
            (&[0xC0, 0x00], 0, 2),
            (&[0x30, 0x7F], 127, 2),
            (&[0x30, 0x80, 0x01], 128, 3),
            (&[0x30, 0xFF, 0x7F], 16_383, 3),
            (&[0x30, 0x80, 0x80, 0x01], 16_384, 4),
            (&[0x30, 0xFF, 0xFF, 0x7F], 2_097_151, 4),
            (&[0x30, 0x80, 0x80, 0x80, 0x01], 2_097_152, 5),
            (&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], 268_435_455, 5),
        ];
        for (bytes, len, hl) in cases {
            match parse_fixed_header(bytes) {
                Ok(Status::Done(h)) => {
                    assert_eq!(h.remaining_len, *len);
                    assert_eq!(h.header_len, *hl);
                    assert!(h.minimal_length);
                }
                other => panic!("{bytes:02x?}: {other:?}"),
            }
        }
        assert_eq!(
            parse_fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            Err(FrameError::RemainingLengthTooLong)
        );
        assert_eq!(parse_fixed_header(&[]), Ok(Status::Incomplete(1)));
        assert_eq!(parse_fixed_header(&[0x30]), Ok(Status::Incomplete(2)));
        assert_eq!(
            parse_fixed_header(&[0x30, 0x80, 0x80]),
            Ok(Status::Incomplete(4))
        );
    }

    #[test]
    fn packet_type_codes_round_trip() {
        for n in 0..16u8 {
            assert_eq!(PacketType::from_nibble(n).code(), n);
        }
    }

    // 5.0 §2.1.3 Table 2-2: required flags per type.
    #[test]
    fn fixed_header_flags_table() {
        for n in 1..16u8 {
            for flags in 0..16u8 {
                let h = FixedHeader {
                    packet_type: PacketType::from_nibble(n),
                    flags,
                    remaining_len: 0,
                    header_len: 2,
                    minimal_length: true,
                };
                let expected = match n {
                    3 => true,
                    6 | 8 | 10 => flags == 0b0010,
                    _ => flags == 0,
                };
                assert_eq!(
                    h.flags_valid(Some(ProtocolVersion::V3_1_1)),
                    expected,
                    "type {n} flags {flags:#06b}"
                );
                assert_eq!(h.flags_valid(Some(ProtocolVersion::V5)), expected);
            }
        }
    }

    // mqtt311-connect-userpass-publish-qos0.pcap frame 4. tshark: protocol
    // MQTT, version 4, flags 0xc2 (user, password, clean session), keep alive
    // 60, client id "myvoiceismypassport", user name "user", password of 4.
    #[test]
    fn connect_311_from_capture() {
        let bytes = hex(
            "102b00044d51545404c2003c00136d79766f69636569736d7970617373706f7274000475736572000470617373",
        );
        let (p, v) = parse(&bytes, ProtocolVersion::V3_1_1);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.protocol_name.as_str(), Some("MQTT"));
        assert_eq!(c.protocol_level, 4);
        assert_eq!(c.version, Some(ProtocolVersion::V3_1_1));
        assert_eq!(c.flags, 0xC2);
        assert!(c.clean_start());
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.client_id.as_str(), Some("myvoiceismypassport"));
        assert_eq!(c.username.and_then(|u| u.as_str()), Some("user"));
        assert_eq!(c.password_len, Some(4));
        assert!(c.will.is_none());
    }

    // The same frame: tshark -e mqtt.username -e mqtt.passwd gives "user"
    // and "pass"; the CONNECT carries the digest of exactly that pair.
    #[test]
    fn connect_credential_digest_from_capture() {
        let bytes = hex(
            "102b00044d51545404c2003c00136d79766f69636569736d7970617373706f7274000475736572000470617373",
        );
        let (p, _) = parse(&bytes, ProtocolVersion::V3_1_1);
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.credential, Some(credential::digest("user", "pass")));
        assert_ne!(c.credential, Some(credential::digest("user", "pas")));
        assert_ne!(c.credential, Some(credential::digest("user", "Pass")));
        assert_ne!(c.credential, Some(credential::digest("", "pass")));
        // No Password field (flags 0x02): no digest.
        let (p, _) = parse(
            &hex("100d00044d51545404020000000161"),
            ProtocolVersion::V3_1_1,
        );
        assert!(matches!(
            p,
            Ok(Packet::Connect(Connect {
                credential: None,
                ..
            }))
        ));
    }

    // mqtt31-mqisdp-publish-qos2.pcap frame 4: "MQIsdp", version 3.
    #[test]
    fn connect_31_mqisdp() {
        let bytes = hex(
            "102d00064d514973647003c2003c00136d79766f69636569736d7970617373706f7274000475736572000470617373",
        );
        let (p, v) = parse(&bytes, ProtocolVersion::V3_1_1);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.protocol_name.as_str(), Some("MQIsdp"));
        assert_eq!(c.version, Some(ProtocolVersion::V3_1));
        assert_eq!(c.username.and_then(|u| u.as_str()), Some("user"));
    }

    // mqtt-synthetic-v31-v311-v5-wildcards-oversize-topic.pcap frame 15.
    // tshark: MQIsdp v3, flags 0x16 (will QoS 2, will flag, clean), client
    // id "legacy-device", will topic "status/legacy-device", will message
    // "disconnected" (12 bytes).
    #[test]
    fn connect_31_with_will() {
        let bytes = hex(
            "103f00064d51497364700316003c000d6c65676163792d64657669636500147374617475732f6c65676163792d646576696365000c646973636f6e6e6563746564",
        );
        let (p, v) = parse(&bytes, ProtocolVersion::V3_1_1);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        let will = c.will.expect("will");
        assert_eq!(will.topic.as_str(), Some("status/legacy-device"));
        assert_eq!(will.qos, Qos::ExactlyOnce);
        assert!(!will.retain);
        assert_eq!(will.payload_len, 12);
        assert!(c.username.is_none());
        assert_eq!(c.password_len, None);
    }

    // mqtt5-properties-connect-publish.pcap frame 4 (207 bytes). tshark:
    // version 5, flags 0xc6, keep alive 60, 6 properties (Maximum Packet Size
    // 11111, Receive Maximum 222, Session Expiry 555, Topic Alias Maximum
    // 666, two User Properties), client id "myvoiceismypassport", 7 Will
    // Properties including Payload Format Indicator 144, Will Topic
    // "willtopic", Will Message of 11 bytes, user "user", password of 4.
    // 144 is not a valid Payload Format Indicator (5.0 §3.1.3.2.3: 0 or 1).
    #[test]
    fn connect_5_with_properties_and_will() {
        use super::super::properties::{PropertyId, PropertyValue};
        let bytes = hex(concat!(
            "10cc0100044d51545405c6003c3c2700002b672100de110000022b22029a",
            "2600097573657270726f703100087573657276616c31",
            "2600097573657270726f703200087573657276616c32",
            "00136d79766f69636569736d7970617373706f7274",
            "4b03000a6d7977696c6c74797065090007313233343536370200000085019008000f",
            "726573706f6e73655f746f706963312600097573657270726f703500087573657276616c35",
            "18000000c8000977696c6c746f706963000b77696c6c6d657373616765000475736572000470617373",
        ));
        let (p, v) = parse(&bytes, ProtocolVersion::V5);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidPropertyValue]);
        assert_eq!(v[0].value, Some(0x01));
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.properties.wire_len(), 60);
        assert_eq!(c.properties.len(), 6);
        assert_eq!(
            c.properties.get(PropertyId::MaximumPacketSize),
            Some(PropertyValue::FourByte(11111))
        );
        assert_eq!(
            c.properties.get(PropertyId::ReceiveMaximum),
            Some(PropertyValue::TwoByte(222))
        );
        assert_eq!(
            c.properties.get(PropertyId::SessionExpiryInterval),
            Some(PropertyValue::FourByte(555))
        );
        assert_eq!(
            c.properties.get(PropertyId::TopicAliasMaximum),
            Some(PropertyValue::TwoByte(666))
        );
        assert_eq!(c.client_id.as_str(), Some("myvoiceismypassport"));
        let will = c.will.expect("will");
        assert_eq!(will.properties.wire_len(), 75);
        assert_eq!(will.properties.len(), 7);
        assert_eq!(
            will.properties.get(PropertyId::WillDelayInterval),
            Some(PropertyValue::FourByte(200))
        );
        assert_eq!(will.topic.as_str(), Some("willtopic"));
        assert_eq!(will.payload_len, 11);
        assert_eq!(c.username.and_then(|u| u.as_str()), Some("user"));
        assert_eq!(c.password_len, Some(4));
        // tshark mqtt.passwd: "pass".
        assert_eq!(c.credential, Some(credential::digest("user", "pass")));
    }

    // Frame 8 of the same capture: PUBLISH QoS 1 id 1 with 67 bytes of
    // properties (Content Type "mytype", Correlation Data, Message Expiry
    // 77, Payload Format Indicator 88 (invalid), Response Topic, Topic Alias
    // 5, User Property), payload "baabaablacksheep".
    #[test]
    fn publish_5_with_properties() {
        use super::super::properties::{PropertyId, PropertyValue};
        let bytes = hex(concat!(
            "325e0006746f706963580001430300066d79747970650900053132333435020000004d0158",
            "08000f726573706f6e73655f746f706963312300052600097573657270726f703300087573657276616c33",
            "626161626161626c61636b7368656570",
        ));
        let (p, v) = parse(&bytes, ProtocolVersion::V5);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidPropertyValue]);
        let Ok(Packet::Publish(p)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(p.packet_id, Some(1));
        assert_eq!(p.properties.wire_len(), 67);
        assert_eq!(p.properties.len(), 7);
        assert_eq!(p.properties.topic_alias(), Some(5));
        assert_eq!(
            p.properties.get(PropertyId::MessageExpiryInterval),
            Some(PropertyValue::FourByte(77))
        );
        assert_eq!(p.payload_head, b"baabaablacksheep");
        assert_eq!(p.payload_len, 16);
    }

    // mqtt5-connect-auth-method-refused-connack-140.pcap frame 4: CONNECT
    // with Authentication Method "foo", Authentication Data "1234", Receive
    // Maximum 20, no user name or password (flags 0x02).
    #[test]
    fn connect_5_auth_method() {
        let bytes = hex(
            "103000044d5154540502003c10150003666f6f1600043132333421001400136d79766f69636569736d7970617373706f7274",
        );
        let (p, v) = parse(&bytes, ProtocolVersion::V3_1_1);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(c.version, Some(ProtocolVersion::V5));
        assert_eq!(c.properties.len(), 3);
        assert_eq!(
            c.properties
                .get(super::super::properties::PropertyId::AuthenticationMethod),
            Some(super::super::properties::PropertyValue::Utf8(MqttStr::new(
                b"foo"
            )))
        );
        assert!(c.username.is_none());
        assert_eq!(c.password_len, None);
    }

    // mqtt5-malformed-excessive-property-length.pcap frame 4: tshark marks
    // it malformed at the property block.
    #[test]
    fn connect_5_excessive_property_length_is_malformed() {
        let bytes = hex(
            "102f00044d51545405c2003cff21001400136d79766f69636569736d7970617373706f7274000475736572000470617373",
        );
        let (p, _) = parse(&bytes, ProtocolVersion::V5);
        assert!(
            matches!(
                p,
                Err(PacketError::Malformed {
                    packet: PacketType::Connect,
                    what: "property length exceeds the packet",
                    ..
                })
            ),
            "{p:?}"
        );
        let h = match parse_fixed_header(&bytes) {
            Ok(Status::Done(h)) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(peek_connect_level(&bytes[h.header_len..]), Some(5));
    }

    // 3.1.1 §3.1.2.3-§3.1.2.9 flag rules, on a minimal CONNECT.
    #[test]
    fn connect_flag_rules() {
        let connect = |flags: u8, payload: &[u8]| {
            let mut body = hex("00044d51545404");
            body.push(flags);
            body.extend_from_slice(&[0x00, 0x3C]);
            body.extend_from_slice(payload);
            let mut bytes = vec![0x10, body.len() as u8];
            bytes.extend_from_slice(&body);
            bytes
        };
        let id = hex("000161");
        // Reserved bit 0 [MQTT-3.1.2-3].
        let (_, v) = parse(&connect(0x03, &id), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::ReservedBitsSet]);
        // Will QoS 1 without the Will Flag [MQTT-3.1.2-13].
        let (_, v) = parse(&connect(0x0A, &id), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidConnectFlags]);
        // Will Retain without the Will Flag [MQTT-3.1.2-15].
        let (_, v) = parse(&connect(0x22, &id), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidConnectFlags]);
        // Will QoS 3 [MQTT-3.1.2-14].
        let mut will = id.clone();
        will.extend_from_slice(&hex("000174 0000"));
        let (p, v) = parse(&connect(0x1E, &will), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidQos]);
        assert!(matches!(
            p,
            Ok(Packet::Connect(Connect { will: Some(_), .. }))
        ));
        // Password without user name [MQTT-3.1.2-22].
        let mut pw = id.clone();
        pw.extend_from_slice(&hex("0002 7878"));
        let (p, v) = parse(&connect(0x42, &pw), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::PasswordWithoutUsername]);
        let Ok(Packet::Connect(c)) = p else { panic!() };
        assert_eq!(c.password_len, Some(2));
        // No user name: the digest is over an empty one and "xx".
        assert_eq!(c.credential, Some(credential::digest("", "xx")));
        // Empty client id without Clean Session [MQTT-3.1.3-7].
        let (_, v) = parse(&connect(0x00, &hex("0000")), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidClientId]);
        // Username flag set but the field is missing: kept leniently.
        let (p, v) = parse(&connect(0x82, &id), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
        assert!(matches!(
            p,
            Ok(Packet::Connect(Connect { username: None, .. }))
        ));
    }

    #[test]
    fn connect_protocol_name_and_level() {
        // "MQTT" with level 3 and an unknown level 9.
        let (_, v) = parse(
            &hex("100d00044d51545403020000000161"),
            ProtocolVersion::V3_1_1,
        );
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidProtocolName]);
        let (p, v) = parse(
            &hex("100d00044d51545409020000000161"),
            ProtocolVersion::V3_1_1,
        );
        assert_eq!(kinds(&v), vec![AnomalyKind::UnsupportedProtocolVersion]);
        assert!(matches!(
            p,
            Ok(Packet::Connect(Connect { version: None, .. }))
        ));
        // Mosquitto bridge level 0x84.
        let (p, v) = parse(
            &hex("100d00044d51545484020000000161"),
            ProtocolVersion::V3_1_1,
        );
        assert!(v.is_empty());
        assert!(matches!(
            p,
            Ok(Packet::Connect(Connect {
                version: Some(ProtocolVersion::V3_1_1),
                ..
            }))
        ));
        // MQTT 3.1 client id longer than 23 characters.
        let mut bytes = hex("102600064d514973647003020000 0018");
        bytes.extend_from_slice(b"abcdefghijklmnopqrstuvwx");
        let (_, v) = parse(&bytes, ProtocolVersion::V3_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidClientId]);
    }

    // CONNACK: 3.1.1 §3.2 (tshark on mqtt311-*: 20 02 00 00 = accepted);
    // 5.0 CONNACK from mqtt5-connect-userpass-publish-qos0.pcap frame 6:
    // reason 0, Topic Alias Maximum 10.
    #[test]
    fn connack_variants() {
        let (p, v) = parse(&hex("20020000"), ProtocolVersion::V3_1_1);
        assert!(v.is_empty());
        assert!(matches!(
            p,
            Ok(Packet::Connack(Connack {
                code: 0,
                session_present: false,
                ..
            }))
        ));
        let (p, v) = parse(&hex("200600000322000a"), ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Connack(c)) = p else { panic!() };
        assert_eq!(c.properties.len(), 1);
        // 5.0 reason 0x8C (mqtt5-connect-auth-method-refused-connack-140).
        let (p, v) = parse(&hex("2003008c00"), ProtocolVersion::V5);
        assert!(v.is_empty());
        assert!(matches!(p, Ok(Packet::Connack(Connack { code: 0x8C, .. }))));
        // Reserved flag bits; return code 6 is reserved in 3.1.1.
        let (_, v) = parse(&hex("20020206"), ProtocolVersion::V3_1_1);
        assert_eq!(
            kinds(&v),
            vec![AnomalyKind::ReservedBitsSet, AnomalyKind::InvalidReasonCode]
        );
        // Session present on a refusal.
        let (_, v) = parse(&hex("20020105"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::ProtocolViolation]);
        // 5.0 reason 0x01 is not a CONNACK reason.
        let (_, v) = parse(&hex("2003000100"), ProtocolVersion::V5);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidReasonCode]);
        // 3.1.1 CONNACK with a trailing byte.
        let (_, v) = parse(&hex("2003000000"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
        // Truncated: a 1-byte CONNACK.
        let (p, _) = parse(&hex("200100"), ProtocolVersion::V3_1_1);
        assert!(matches!(
            p,
            Err(PacketError::Malformed {
                packet: PacketType::Connack,
                ..
            })
        ));
    }

    // mqtt311-publish-qos1-puback.pcap: PUBLISH QoS1 "topicX" id 1, payload
    // "baabaablacksheep" (16 bytes).
    #[test]
    fn publish_311_qos1() {
        let bytes = hex("321a0006746f706963580001626161626161626c61636b7368656570");
        let (p, v) = parse(&bytes, ProtocolVersion::V3_1_1);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Publish(p)) = p else { panic!() };
        assert_eq!(p.topic.as_str(), Some("topicX"));
        assert_eq!(p.qos, Qos::AtLeastOnce);
        assert_eq!(p.packet_id, Some(1));
        assert_eq!(p.payload_len, 16);
        assert_eq!(p.payload_head, b"baabaablacksheep");
        assert!(!p.retain && !p.dup);
    }

    // mqtt311-malformed-publish-qos3.pcap frame 8: tshark "QoS Level:
    // Reserved (3)", Message Identifier 1, message of 16 bytes.
    #[test]
    fn publish_qos3_is_flagged_and_kept() {
        let bytes = hex("361a0006746f706963580001626161626161626c61636b7368656570");
        let (p, v) = parse(&bytes, ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidQos]);
        let Ok(Packet::Publish(p)) = p else { panic!() };
        assert_eq!(p.qos, Qos::Reserved);
        assert_eq!(p.packet_id, Some(1));
        assert_eq!(p.payload_len, 16);
    }

    // mqtt5-publish-qos1-puback.pcap frame 8: 5.0 PUBLISH, property length 0.
    #[test]
    fn publish_5_and_topic_rules() {
        let bytes = hex("321b0006746f70696358000100626161626161626c61636b7368656570");
        let (p, v) = parse(&bytes, ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Publish(p)) = p else { panic!() };
        assert_eq!(p.payload_len, 16);
        assert!(p.properties.is_empty());
        // Wildcards in a topic name [MQTT-3.3.2-2].
        let (_, v) = parse(&hex("3005000361 2f23"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidTopicName]);
        // Empty topic in 3.1.1 [MQTT-4.7.3-1].
        let (_, v) = parse(&hex("3003000078"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidTopicName]);
        // Empty topic with a Topic Alias in 5.0 is fine (§3.3.2.3.4).
        let (p, v) = parse(&hex("300700000323000578"), ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        assert!(matches!(
            p,
            Ok(Packet::Publish(Publish { payload_len: 1, .. }))
        ));
        // QoS 1 without a packet identifier.
        let (p, v) = parse(&hex("3204000261 62"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::MissingPacketId]);
        assert!(matches!(
            p,
            Ok(Packet::Publish(Publish {
                packet_id: None,
                ..
            }))
        ));
        // Packet identifier 0 and DUP on QoS 0.
        let (_, v) = parse(&hex("320500016100 00"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::ZeroPacketId]);
        let (_, v) = parse(&hex("3803000161"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidFixedHeaderFlags]);
        // Topic length past the packet.
        let (p, _) = parse(&hex("3003000961 "), ProtocolVersion::V3_1_1);
        assert!(matches!(
            p,
            Err(PacketError::Malformed {
                packet: PacketType::Publish,
                ..
            })
        ));
    }

    #[test]
    fn publish_from_prefix_needs_only_the_head() {
        // 30 b7 97 02: Remaining Length 35767 (mqtt5-midstream frame 6).
        let bytes = hex("30b797020006746f7069635800ffd8ffe000104a464946");
        let h = match parse_fixed_header(&bytes) {
            Ok(Status::Done(h)) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(h.remaining_len, 35_767);
        let body = &bytes[h.header_len..];
        let mut v = Vec::new();
        // Asking for 4 payload bytes: present.
        let got = parse_publish(&h, body, ProtocolVersion::V5, 4, &mut v);
        let Ok(Status::Done(p)) = got else {
            panic!("{got:?}")
        };
        assert_eq!(p.payload_len, 35_767 - 2 - 6 - 1);
        assert_eq!(p.payload_head, &body[9..13]);
        // Asking for 64: needs 9 + 64 body bytes.
        assert_eq!(
            parse_publish(&h, body, ProtocolVersion::V5, 64, &mut v),
            Ok(Status::Incomplete(73))
        );
        // Only part of the topic: needs the topic.
        assert_eq!(
            parse_publish(&h, &body[..4], ProtocolVersion::V5, 64, &mut v),
            Ok(Status::Incomplete(8))
        );
    }

    // Acks: 3.1.1 (mqtt311-publish-qos2: 50 02 00 01, 62 02 00 01, 70 02 00
    // 01) and 5.0 PUBACK 40 03 00 01 10 (reason 0x10 No matching
    // subscribers, mqtt5-publish-qos1-puback frame 9).
    #[test]
    fn acks() {
        for (bytes, want) in [
            ("40020001", 0x00),
            ("50020001", 0x00),
            ("62020001", 0x00),
            ("70020001", 0x00),
        ] {
            let (p, v) = parse(&hex(bytes), ProtocolVersion::V3_1_1);
            assert!(v.is_empty(), "{bytes}: {v:?}");
            let ack = match p {
                Ok(
                    Packet::Puback(a) | Packet::Pubrec(a) | Packet::Pubrel(a) | Packet::Pubcomp(a),
                ) => a,
                other => panic!("{other:?}"),
            };
            assert_eq!(ack.packet_id, 1);
            assert_eq!(ack.reason, ReasonCode(want));
        }
        let (p, v) = parse(&hex("4003000110"), ProtocolVersion::V5);
        assert!(v.is_empty());
        assert!(matches!(
            p,
            Ok(Packet::Puback(Ack {
                reason: ReasonCode(0x10),
                ..
            }))
        ));
        // 5.0 PUBREC with a Reason String property.
        let (p, v) = parse(&hex("5009000180 05 1f00026f6b"), ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Pubrec(a)) = p else { panic!() };
        assert_eq!(a.properties.len(), 1);
        // PUBREL with flags 0 is invalid [MQTT-3.6.1-1]; 0x10 not a PUBREL reason.
        let (_, v) = parse(&hex("6003000110"), ProtocolVersion::V5);
        assert_eq!(
            kinds(&v),
            vec![
                AnomalyKind::InvalidFixedHeaderFlags,
                AnomalyKind::InvalidReasonCode
            ]
        );
        // 3.1.1 PUBACK with extra bytes, and one too short.
        let (_, v) = parse(&hex("4003000100"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
        let (p, _) = parse(&hex("400100"), ProtocolVersion::V3_1_1);
        assert!(p.is_err());
    }

    // mqtt311-subscribe-two-topics-suback.pcap frame 8: SUBSCRIBE id 1,
    // "topicX" QoS 0, "topicY" QoS 0; SUBACK 00 00.
    #[test]
    fn subscribe_and_suback_311() {
        let (p, v) = parse(
            &hex("821400010006746f70696358000006746f7069635900"),
            ProtocolVersion::V3_1_1,
        );
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Subscribe(s)) = p else {
            panic!()
        };
        assert_eq!(s.packet_id, 1);
        let filters: Vec<(Option<&str>, Option<u8>)> =
            s.filters.iter().map(|(f, o)| (f.as_str(), o)).collect();
        assert_eq!(
            filters,
            vec![(Some("topicX"), Some(0)), (Some("topicY"), Some(0))]
        );
        let (p, v) = parse(&hex("900400010000"), ProtocolVersion::V3_1_1);
        assert!(v.is_empty());
        let Ok(Packet::Suback(a)) = p else { panic!() };
        assert_eq!(a.codes, &[0, 0]);
        // SUBACK code 0x03 is not defined in 3.1.1 §3.9.3.
        let (_, v) = parse(&hex("9003000103"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidReasonCode]);
    }

    // mqtt5-subscribe-unsubscribe.pcap: SUBSCRIBE 5.0 "topicX" options 1,
    // UNSUBSCRIBE id 2 "topicX", UNSUBACK id 3 reason 0x11.
    #[test]
    fn subscribe_unsubscribe_5() {
        let (p, v) = parse(&hex("820c0001000006746f7069635801"), ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Subscribe(s)) = p else {
            panic!()
        };
        assert_eq!(s.filters.len(), 1);
        let (p, v) = parse(&hex("a20b0002000006746f70696358"), ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Unsubscribe(u)) = p else {
            panic!()
        };
        assert_eq!(u.packet_id, 2);
        assert_eq!(
            u.filters.iter().next().map(|(f, o)| (f.as_str(), o)),
            Some((Some("topicX"), None))
        );
        let (p, v) = parse(&hex("b00400030011"), ProtocolVersion::V5);
        assert!(v.is_empty());
        let Ok(Packet::Unsuback(a)) = p else { panic!() };
        assert_eq!((a.packet_id, a.codes), (3, &[0x11][..]));
        // 3.1.1 UNSUBACK has no codes (mqtt311-subscribe-unsubscribe b0020002).
        let (p, v) = parse(&hex("b0020002"), ProtocolVersion::V3_1_1);
        assert!(v.is_empty());
        assert!(matches!(
            p,
            Ok(Packet::Unsuback(SubAck {
                packet_id: 2,
                codes: &[],
                ..
            }))
        ));
    }

    #[test]
    fn subscribe_option_and_filter_rules() {
        // 3.1.1: options 0x04 sets a reserved bit; QoS 3.
        let (_, v) = parse(&hex("8206000100016104"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::ReservedBitsSet]);
        let (_, v) = parse(&hex("8206000100016103"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidQos]);
        // 5.0: No Local is fine, Retain Handling 3 and bit 6 are not.
        let (_, v) = parse(&hex("820700010000016104"), ProtocolVersion::V5);
        assert!(v.is_empty());
        let (_, v) = parse(&hex("820700010000016130"), ProtocolVersion::V5);
        assert_eq!(kinds(&v), vec![AnomalyKind::ProtocolViolation]);
        let (_, v) = parse(&hex("820700010000016140"), ProtocolVersion::V5);
        assert_eq!(kinds(&v), vec![AnomalyKind::ReservedBitsSet]);
        // A bad filter, no filters, and a truncated last entry.
        let (_, v) = parse(&hex("820700010002612b00"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidTopicFilter]);
        let (_, v) = parse(&hex("82020001"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::ProtocolViolation]);
        let (p, v) = parse(&hex("820700010001610000"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
        let Ok(Packet::Subscribe(s)) = p else {
            panic!()
        };
        assert_eq!(s.filters.len(), 1);
        // SUBSCRIBE with flags 0 [MQTT-3.8.1-1].
        let (_, v) = parse(&hex("8006000100016100"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidFixedHeaderFlags]);
        // 3.1 retransmission with DUP set is accepted in 3.1 only.
        let (_, v) = parse(&hex("8a06000100016100"), ProtocolVersion::V3_1);
        assert!(v.is_empty());
        let (_, v) = parse(&hex("8a06000100016100"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidFixedHeaderFlags]);
    }

    // The clean-PUBLISH path accepts ordinary packets and, whenever it
    // does, gives what parse_publish gives with no violation; anything else
    // it leaves to parse_publish. Packets are varied over flags, topic
    // bytes, packet identifier, payload length and how much has arrived.
    #[test]
    fn clean_publish_path_agrees_with_parse_publish() {
        let topics: [&[u8]; 9] = [
            b"site/cam-0007/telemetry",
            b"t",
            b"",
            b"a/+/b",
            b"a/#",
            b"a\0b",
            "caf\u{e9}".as_bytes(),
            &[0xC3, 0x28],
            b"\x7f/x",
        ];
        let mut accepted = 0;
        for flags in 0..16u8 {
            for topic in topics {
                for id in [None, Some(0u16), Some(1), Some(0x1234)] {
                    for payload in [0usize, 1, 5, 64, 70] {
                        let mut body = Vec::new();
                        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
                        body.extend_from_slice(topic);
                        if let Some(id) = id {
                            body.extend_from_slice(&id.to_be_bytes());
                        }
                        body.extend(std::iter::repeat_n(0x5a, payload));
                        // One Remaining Length byte.
                        let Some(len) = u8::try_from(body.len()).ok().filter(|&l| l < 0x80) else {
                            continue;
                        };
                        let mut packet = vec![0x30 | flags, len];
                        packet.extend_from_slice(&body);
                        let Ok(Status::Done(h)) = parse_fixed_header(&packet) else {
                            panic!("{packet:02x?}")
                        };
                        for cut in [body.len(), body.len() / 2, 3, 0] {
                            let prefix = &body[..cut.min(body.len())];
                            for want in [0usize, 4, 64] {
                                let Some(fast) = parse_publish_clean(&h, prefix, want) else {
                                    continue;
                                };
                                accepted += 1;
                                for v in [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1] {
                                    let mut violations = Vec::new();
                                    let slow = parse_publish(&h, prefix, v, want, &mut violations);
                                    assert_eq!(
                                        slow,
                                        Ok(Status::Done(fast.clone())),
                                        "{packet:02x?}"
                                    );
                                    assert_eq!(violations, vec![], "{packet:02x?} cut {cut}");
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(accepted > 500, "{accepted}");
        // A non-minimal Remaining Length is left to parse_publish.
        let Ok(Status::Done(mut h)) = parse_fixed_header(&hex("3003000174")) else {
            panic!()
        };
        assert!(parse_publish_clean(&h, &hex("000174"), 64).is_some());
        h.minimal_length = false;
        assert_eq!(parse_publish_clean(&h, &hex("000174"), 64), None);
    }

    // 5.0 §4.7.1 and 3.1.1 §4.7.1 examples.
    #[test]
    fn topic_filter_examples() {
        let v5 = ProtocolVersion::V5;
        let v3 = ProtocolVersion::V3_1_1;
        for ok in [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "+",
            "sport/tennis/+",
            "+/tennis/#",
            "sport/+/player1",
            "/+",
            "+/+",
            "test/#",
        ] {
            assert_eq!(check_topic_filter(ok.as_bytes(), v3), Ok(()), "{ok}");
            assert_eq!(check_topic_filter(ok.as_bytes(), v5), Ok(()), "{ok}");
        }
        for bad in [
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "sport+",
            "",
            "a/#b",
            "##",
        ] {
            assert!(check_topic_filter(bad.as_bytes(), v3).is_err(), "{bad}");
        }
        // §4.8.2 shared subscriptions.
        assert_eq!(
            check_topic_filter(b"$share/consumer1/sport/tennis/+", v5),
            Ok(())
        );
        assert_eq!(check_topic_filter(b"$share/g/#", v5), Ok(()));
        for bad in [
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert!(check_topic_filter(bad.as_bytes(), v5).is_err(), "{bad}");
        }
        // In 3.1.1 "$share/g" is an ordinary filter.
        assert_eq!(check_topic_filter(b"$share/g", v3), Ok(()));
        // The first level that breaks a rule names the rule; '#' is judged
        // before '+' within a level.
        for (bad, why) in [
            ("a/+b/#c", "'+' not alone in its level"),
            ("#/a", "'#' not the last level"),
            ("a/b+#/c", "'#' not alone in its level"),
            ("a/#/+x", "'#' not the last level"),
        ] {
            assert_eq!(check_topic_filter(bad.as_bytes(), v3), Err(why), "{bad}");
        }
    }

    #[test]
    fn ping_disconnect_auth() {
        assert!(matches!(
            parse(&hex("c000"), ProtocolVersion::V3_1_1).0,
            Ok(Packet::Pingreq)
        ));
        assert!(matches!(
            parse(&hex("d000"), ProtocolVersion::V3_1_1).0,
            Ok(Packet::Pingresp)
        ));
        let (_, v) = parse(&hex("c00100"), ProtocolVersion::V3_1_1);
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
        // 5.0 DISCONNECT 0x04 (mqtt5-subscribe-unsubscribe frame 17).
        let (p, v) = parse(&hex("e00104"), ProtocolVersion::V5);
        assert!(v.is_empty());
        assert!(matches!(
            p,
            Ok(Packet::Disconnect(ReasonOnly {
                reason: ReasonCode(4),
                ..
            }))
        ));
        // mqtt5-properties-connect-publish frame 10: DISCONNECT with Session
        // Expiry 122 and a User Property.
        let (p, v) = parse(
            &hex("e01d001b110000007a2600097573657270726f703400087573657276616c34"),
            ProtocolVersion::V5,
        );
        assert!(v.is_empty(), "{v:?}");
        let Ok(Packet::Disconnect(d)) = p else {
            panic!()
        };
        assert_eq!(d.properties.len(), 2);
        // AUTH: 0x18 Continue authentication with a method.
        let (p, v) = parse(&hex("f00818 06 15000378797a"), ProtocolVersion::V5);
        assert!(v.is_empty(), "{v:?}");
        assert!(matches!(
            p,
            Ok(Packet::Auth(ReasonOnly {
                reason: ReasonCode(0x18),
                ..
            }))
        ));
        // AUTH in 3.1.1 and type 0 are reserved.
        assert_eq!(
            parse(&hex("f000"), ProtocolVersion::V3_1_1).0,
            Err(PacketError::ReservedType(15))
        );
        // mqtt311-reserved-msgtype-0.pcap frame 8: type 0, length 24.
        let bytes = hex("00180006746f70696358626161626161626c61636b7368656570");
        assert_eq!(
            parse(&bytes, ProtocolVersion::V3_1_1).0,
            Err(PacketError::ReservedType(0))
        );
    }

    #[test]
    fn non_minimal_remaining_length() {
        let (p, v) = parse(&hex("c08000"), ProtocolVersion::V3_1_1);
        assert!(matches!(p, Ok(Packet::Pingreq)));
        assert_eq!(kinds(&v), vec![AnomalyKind::NonMinimalLength]);
    }

    #[test]
    fn version_inference() {
        let infer = |s: &str| {
            let b = hex(s);
            let h = match parse_fixed_header(&b) {
                Ok(Status::Done(h)) => h,
                other => panic!("{other:?}"),
            };
            infer_version(&h, &b[h.header_len..])
        };
        // CONNACK lengths (mqtt5-midstream frame 2+4 reassembled, and 3.1.1).
        assert_eq!(infer("20020000"), Some(ProtocolVersion::V3_1_1));
        assert_eq!(infer("200600000322000a"), Some(ProtocolVersion::V5));
        assert_eq!(infer("4003000110"), Some(ProtocolVersion::V5));
        assert_eq!(infer("40020001"), None);
        assert_eq!(infer("b0020002"), Some(ProtocolVersion::V3_1_1));
        assert_eq!(infer("e00104"), Some(ProtocolVersion::V5));
        assert_eq!(infer("e000"), None);
        // SUBSCRIBE from the mixed capture (3.1.1) and from the 5.0 capture.
        assert_eq!(
            infer("821600010011686f7573652f62756c62732f62756c623101"),
            Some(ProtocolVersion::V3_1_1)
        );
        assert_eq!(
            infer("820c0001000006746f7069635801"),
            Some(ProtocolVersion::V5)
        );
        assert_eq!(infer("c000"), None);
    }
}
