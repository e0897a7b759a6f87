//! MQTT 5.0 properties (OASIS MQTT 5.0 §2.2.2).
//!
//! A property block is a Variable Byte Integer length followed by properties,
//! each an identifier (a Variable Byte Integer, one byte for every identifier
//! 5.0 defines) and a value whose type the identifier fixes (§2.2.2.2).
//! [`Properties`] is a checked view: it is built once by walking the block and
//! recording every rule broken, and covers only the properties that decoded,
//! so iterating it afterwards cannot fail. An unknown identifier ends the walk
//! because the length of its value is unknown; the block's own length still
//! lets the rest of the packet be parsed.

use super::anomaly::{AnomalyKind, Violation, violation};
use super::topic::check_topic_name;
use super::wire::{MqttStr, ReadFail, ReadResult, Reader};

/// Most properties decoded from one block; a block with more is cut there
/// (each property takes at least two bytes, so a 1 MiB packet could hold
/// half a million).
pub const MAX_PROPERTIES_PER_BLOCK: u16 = 4096;

/// Where a property block sits; each property is allowed in some of these
/// (MQTT 5.0 §2.2.2.2 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyContext {
    Connect,
    /// The Will Properties inside a CONNECT payload (§3.1.3.2).
    Will,
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
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

const fn mask(ctxs: &[PropertyContext]) -> u16 {
    let mut m = 0;
    let mut i = 0;
    while i < ctxs.len() {
        m |= ctxs[i].bit();
        i += 1;
    }
    m
}

/// Value type of a property (MQTT 5.0 §1.5, §2.2.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyType {
    Byte,
    TwoByteInteger,
    FourByteInteger,
    VariableByteInteger,
    Utf8String,
    BinaryData,
    Utf8StringPair,
}

/// Property identifier (MQTT 5.0 §2.2.2.2). Identifiers 5.0 does not define
/// are carried as `Unknown(n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropertyId {
    PayloadFormatIndicator,
    MessageExpiryInterval,
    ContentType,
    ResponseTopic,
    CorrelationData,
    SubscriptionIdentifier,
    SessionExpiryInterval,
    AssignedClientIdentifier,
    ServerKeepAlive,
    AuthenticationMethod,
    AuthenticationData,
    RequestProblemInformation,
    WillDelayInterval,
    RequestResponseInformation,
    ResponseInformation,
    ServerReference,
    ReasonString,
    ReceiveMaximum,
    TopicAliasMaximum,
    TopicAlias,
    MaximumQos,
    RetainAvailable,
    UserProperty,
    MaximumPacketSize,
    WildcardSubscriptionAvailable,
    SubscriptionIdentifierAvailable,
    SharedSubscriptionAvailable,
    Unknown(u32),
}

impl PropertyId {
    pub fn from_code(code: u32) -> Self {
        use PropertyId::*;
        match code {
            0x01 => PayloadFormatIndicator,
            0x02 => MessageExpiryInterval,
            0x03 => ContentType,
            0x08 => ResponseTopic,
            0x09 => CorrelationData,
            0x0B => SubscriptionIdentifier,
            0x11 => SessionExpiryInterval,
            0x12 => AssignedClientIdentifier,
            0x13 => ServerKeepAlive,
            0x15 => AuthenticationMethod,
            0x16 => AuthenticationData,
            0x17 => RequestProblemInformation,
            0x18 => WillDelayInterval,
            0x19 => RequestResponseInformation,
            0x1A => ResponseInformation,
            0x1C => ServerReference,
            0x1F => ReasonString,
            0x21 => ReceiveMaximum,
            0x22 => TopicAliasMaximum,
            0x23 => TopicAlias,
            0x24 => MaximumQos,
            0x25 => RetainAvailable,
            0x26 => UserProperty,
            0x27 => MaximumPacketSize,
            0x28 => WildcardSubscriptionAvailable,
            0x29 => SubscriptionIdentifierAvailable,
            0x2A => SharedSubscriptionAvailable,
            other => Unknown(other),
        }
    }

    pub fn code(self) -> u32 {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator => 0x01,
            MessageExpiryInterval => 0x02,
            ContentType => 0x03,
            ResponseTopic => 0x08,
            CorrelationData => 0x09,
            SubscriptionIdentifier => 0x0B,
            SessionExpiryInterval => 0x11,
            AssignedClientIdentifier => 0x12,
            ServerKeepAlive => 0x13,
            AuthenticationMethod => 0x15,
            AuthenticationData => 0x16,
            RequestProblemInformation => 0x17,
            WillDelayInterval => 0x18,
            RequestResponseInformation => 0x19,
            ResponseInformation => 0x1A,
            ServerReference => 0x1C,
            ReasonString => 0x1F,
            ReceiveMaximum => 0x21,
            TopicAliasMaximum => 0x22,
            TopicAlias => 0x23,
            MaximumQos => 0x24,
            RetainAvailable => 0x25,
            UserProperty => 0x26,
            MaximumPacketSize => 0x27,
            WildcardSubscriptionAvailable => 0x28,
            SubscriptionIdentifierAvailable => 0x29,
            SharedSubscriptionAvailable => 0x2A,
            Unknown(n) => n,
        }
    }

    /// Value type, `None` for an unknown identifier.
    pub fn value_type(self) -> Option<PropertyType> {
        use PropertyId::*;
        use PropertyType as T;
        Some(match self {
            PayloadFormatIndicator
            | RequestProblemInformation
            | RequestResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => T::Byte,
            ServerKeepAlive | ReceiveMaximum | TopicAliasMaximum | TopicAlias => T::TwoByteInteger,
            MessageExpiryInterval
            | SessionExpiryInterval
            | WillDelayInterval
            | MaximumPacketSize => T::FourByteInteger,
            SubscriptionIdentifier => T::VariableByteInteger,
            ContentType
            | ResponseTopic
            | AssignedClientIdentifier
            | AuthenticationMethod
            | ResponseInformation
            | ServerReference
            | ReasonString => T::Utf8String,
            CorrelationData | AuthenticationData => T::BinaryData,
            UserProperty => T::Utf8StringPair,
            Unknown(_) => return None,
        })
    }

    /// Whether the property may appear in a block of this context
    /// (MQTT 5.0 §2.2.2.2, "Packet / Will Properties" column).
    pub fn allowed_in(self, ctx: PropertyContext) -> bool {
        use PropertyContext as C;
        use PropertyId::*;
        const MESSAGE: u16 = mask(&[C::Publish, C::Will]);
        const REASON: u16 = mask(&[
            C::Connack,
            C::Puback,
            C::Pubrec,
            C::Pubrel,
            C::Pubcomp,
            C::Suback,
            C::Unsuback,
            C::Disconnect,
            C::Auth,
        ]);
        const ALL: u16 = mask(&[
            C::Connect,
            C::Will,
            C::Connack,
            C::Publish,
            C::Puback,
            C::Pubrec,
            C::Pubrel,
            C::Pubcomp,
            C::Subscribe,
            C::Suback,
            C::Unsubscribe,
            C::Unsuback,
            C::Disconnect,
            C::Auth,
        ]);
        let allowed = match self {
            PayloadFormatIndicator
            | MessageExpiryInterval
            | ContentType
            | ResponseTopic
            | CorrelationData => MESSAGE,
            SubscriptionIdentifier => mask(&[C::Publish, C::Subscribe]),
            SessionExpiryInterval => mask(&[C::Connect, C::Connack, C::Disconnect]),
            AssignedClientIdentifier
            | ServerKeepAlive
            | ResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => mask(&[C::Connack]),
            AuthenticationMethod | AuthenticationData => mask(&[C::Connect, C::Connack, C::Auth]),
            RequestProblemInformation | RequestResponseInformation => mask(&[C::Connect]),
            WillDelayInterval => mask(&[C::Will]),
            ServerReference => mask(&[C::Connack, C::Disconnect]),
            ReasonString => REASON,
            ReceiveMaximum | TopicAliasMaximum | MaximumPacketSize => {
                mask(&[C::Connect, C::Connack])
            }
            TopicAlias => mask(&[C::Publish]),
            UserProperty => ALL,
            Unknown(_) => 0,
        };
        allowed & ctx.bit() != 0
    }

    /// Whether the property may appear more than once in one block: User
    /// Property always (§3.1.2.11.8 and the like), Subscription Identifier in
    /// a PUBLISH (§3.3.2.3.8). Every other property is a Protocol Error when
    /// repeated.
    pub fn may_repeat(self, ctx: PropertyContext) -> bool {
        match self {
            PropertyId::UserProperty => true,
            PropertyId::SubscriptionIdentifier => ctx == PropertyContext::Publish,
            _ => false,
        }
    }
}

/// A decoded property value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyValue<'a> {
    Byte(u8),
    TwoByte(u16),
    FourByte(u32),
    VarInt(u32),
    Utf8(MqttStr<'a>),
    Binary(&'a [u8]),
    Pair(MqttStr<'a>, MqttStr<'a>),
}

/// One property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    pub id: PropertyId,
    pub value: PropertyValue<'a>,
}

/// The decoded part of a property block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Properties<'a> {
    /// The leading properties that decoded (a prefix of the block).
    block: &'a [u8],
    count: u16,
    /// Length of the whole block on the wire, as its Property Length said.
    wire_len: u32,
}

impl<'a> Properties<'a> {
    /// No properties (3.x packets, or a 5.0 packet that omits the block).
    pub fn empty() -> Self {
        Properties::default()
    }

    /// Number of properties decoded.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The Property Length field's value.
    pub fn wire_len(&self) -> u32 {
        self.wire_len
    }

    pub fn iter(&self) -> PropertyIter<'a> {
        PropertyIter {
            reader: Reader::new(self.block),
            left: self.count,
        }
    }

    /// First value of a property.
    pub fn get(&self, id: PropertyId) -> Option<PropertyValue<'a>> {
        self.iter().find(|p| p.id == id).map(|p| p.value)
    }

    /// The Topic Alias, if any (§3.3.2.3.4).
    pub fn topic_alias(&self) -> Option<u16> {
        match self.get(PropertyId::TopicAlias) {
            Some(PropertyValue::TwoByte(v)) => Some(v),
            _ => None,
        }
    }
}

/// Iterator over a checked [`Properties`] view.
#[derive(Clone, Debug)]
pub struct PropertyIter<'a> {
    reader: Reader<'a>,
    left: u16,
}

impl<'a> Iterator for PropertyIter<'a> {
    type Item = Property<'a>;

    fn next(&mut self) -> Option<Property<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match read_property(&mut self.reader) {
            Ok(Ok(p)) => Some(p),
            _ => None,
        }
    }
}

/// Decode one property; `Ok(Err(id))` for an identifier 5.0 does not define.
fn read_property<'a>(r: &mut Reader<'a>) -> ReadResult<Result<Property<'a>, u32>> {
    let id_vbi = r.vbi("property identifier")?;
    let id = PropertyId::from_code(id_vbi.value);
    let Some(ty) = id.value_type() else {
        return Ok(Err(id_vbi.value));
    };
    let value = match ty {
        PropertyType::Byte => PropertyValue::Byte(r.u8("property value")?),
        PropertyType::TwoByteInteger => PropertyValue::TwoByte(r.u16("property value")?),
        PropertyType::FourByteInteger => PropertyValue::FourByte(r.u32("property value")?),
        PropertyType::VariableByteInteger => PropertyValue::VarInt(r.vbi("property value")?.value),
        PropertyType::Utf8String => PropertyValue::Utf8(r.string("property value")?),
        PropertyType::BinaryData => PropertyValue::Binary(r.binary("property value")?),
        PropertyType::Utf8StringPair => {
            let k = r.string("user property name")?;
            let v = r.string("user property value")?;
            PropertyValue::Pair(k, v)
        }
    };
    Ok(Ok(Property { id, value }))
}

/// Read a Property Length and its block, check every property against the
/// rules of §2.2.2.2 and the property's own section, and return the view.
///
/// Fails (malformed) only when the Property Length itself is broken or runs
/// past the packet; everything wrong inside the block is a [`Violation`].
pub(crate) fn parse_properties<'a>(
    r: &mut Reader<'a>,
    ctx: PropertyContext,
    violations: &mut Vec<Violation>,
) -> ReadResult<Properties<'a>> {
    let start = r.pos();
    let len = r.vbi("property length")?;
    if !len.minimal {
        violation(
            violations,
            Violation::new(
                AnomalyKind::NonMinimalLength,
                "property length not minimally encoded",
            ),
        );
    }
    let n = usize::try_from(len.value).unwrap_or(usize::MAX);
    if n > r.remaining() {
        return Err(ReadFail::Malformed(
            "property length exceeds the packet",
            start,
        ));
    }
    let block = r.take(n, "properties")?;
    let (valid, count) = check_block(block, ctx, violations);
    Ok(Properties {
        block: block.get(..valid).unwrap_or_default(),
        count,
        wire_len: len.value,
    })
}

/// Walk a property block; returns the length of the leading part that decoded
/// and how many properties it holds.
fn check_block(
    block: &[u8],
    ctx: PropertyContext,
    violations: &mut Vec<Violation>,
) -> (usize, u16) {
    let mut br = Reader::new(block);
    let mut seen: u64 = 0;
    let mut count: u16 = 0;
    let mut valid = 0;
    while !br.at_end() {
        if count >= MAX_PROPERTIES_PER_BLOCK {
            violation(
                violations,
                Violation::new(
                    AnomalyKind::MalformedPacket,
                    "too many properties in one block",
                ),
            );
            break;
        }
        let prop = match read_property(&mut br) {
            Ok(Ok(p)) => p,
            Ok(Err(id)) => {
                violation(
                    violations,
                    Violation::with_value(
                        AnomalyKind::UnknownProperty,
                        "unknown property identifier",
                        id,
                    ),
                );
                break;
            }
            Err(_) => {
                violation(
                    violations,
                    Violation::new(
                        AnomalyKind::MalformedPacket,
                        "property runs past its property block",
                    ),
                );
                break;
            }
        };
        count += 1;
        valid = br.pos();
        check_property(&prop, ctx, &mut seen, violations);
    }
    (valid, count)
}

fn check_property(
    prop: &Property<'_>,
    ctx: PropertyContext,
    seen: &mut u64,
    violations: &mut Vec<Violation>,
) {
    use PropertyId::*;
    let code = prop.id.code();
    if !prop.id.allowed_in(ctx) {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::PropertyNotAllowed,
                "property not allowed in this packet",
                code,
            ),
        );
    }
    let bit = 1u64 << (code & 63);
    if *seen & bit != 0 && !prop.id.may_repeat(ctx) {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::DuplicateProperty,
                "property included more than once",
                code,
            ),
        );
    }
    *seen |= bit;
    match (prop.id, prop.value) {
        // Byte properties whose only values are 0 and 1 (§3.3.2.3.2,
        // §3.1.2.11.6-7, §3.2.2.3.4-5, §3.2.2.3.11-13).
        (
            PayloadFormatIndicator
            | RequestProblemInformation
            | RequestResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable,
            PropertyValue::Byte(b),
        ) if b > 1 => violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidPropertyValue,
                "byte property must be 0 or 1",
                code,
            ),
        ),
        // "It is a Protocol Error to include ... value 0" (§3.1.2.11.3,
        // §3.1.2.11.4).
        (ReceiveMaximum, PropertyValue::TwoByte(0))
        | (MaximumPacketSize, PropertyValue::FourByte(0)) => violation(
            violations,
            Violation::with_value(AnomalyKind::InvalidPropertyValue, "property value 0", code),
        ),
        // [MQTT-3.3.2-8]: a Topic Alias of 0 is a Protocol Error.
        (TopicAlias, PropertyValue::TwoByte(0)) => violation(
            violations,
            Violation::new(AnomalyKind::InvalidTopicAlias, "topic alias 0"),
        ),
        // §3.3.2.3.8: Subscription Identifier 1..268,435,455.
        (SubscriptionIdentifier, PropertyValue::VarInt(0)) => violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidPropertyValue,
                "subscription identifier 0",
                code,
            ),
        ),
        (_, PropertyValue::Utf8(s)) => {
            check_utf8(&s, violations, code);
            // [MQTT-3.3.2-14]: the Response Topic must not contain wildcards.
            if prop.id == ResponseTopic && check_topic_name(s.as_bytes()).is_err() {
                violation(
                    violations,
                    Violation::new(AnomalyKind::InvalidTopicName, "wildcard in response topic"),
                );
            }
        }
        (_, PropertyValue::Pair(k, v)) => {
            check_utf8(&k, violations, code);
            check_utf8(&v, violations, code);
        }
        _ => {}
    }
}

fn check_utf8(s: &MqttStr<'_>, violations: &mut Vec<Violation>, code: u32) {
    if !s.is_well_formed() {
        violation(
            violations,
            Violation::with_value(
                AnomalyKind::InvalidUtf8,
                "property string not well-formed UTF-8",
                code,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8], ctx: PropertyContext) -> (ReadResult<Properties<'_>>, Vec<Violation>) {
        let mut v = Vec::new();
        let mut r = Reader::new(bytes);
        let p = parse_properties(&mut r, ctx, &mut v);
        (p, v)
    }

    fn kinds(v: &[Violation]) -> Vec<AnomalyKind> {
        v.iter().map(|x| x.kind).collect()
    }

    // §2.2.2.2 table: identifier, type, and where it may appear. Each row of
    // the spec's table, one assertion each.
    #[test]
    fn table_types_and_contexts() {
        use PropertyContext as C;
        use PropertyId as P;
        use PropertyType as T;
        let rows: &[(u32, T, &[C])] = &[
            (0x01, T::Byte, &[C::Publish, C::Will]),
            (0x02, T::FourByteInteger, &[C::Publish, C::Will]),
            (0x03, T::Utf8String, &[C::Publish, C::Will]),
            (0x08, T::Utf8String, &[C::Publish, C::Will]),
            (0x09, T::BinaryData, &[C::Publish, C::Will]),
            (0x0B, T::VariableByteInteger, &[C::Publish, C::Subscribe]),
            (
                0x11,
                T::FourByteInteger,
                &[C::Connect, C::Connack, C::Disconnect],
            ),
            (0x12, T::Utf8String, &[C::Connack]),
            (0x13, T::TwoByteInteger, &[C::Connack]),
            (0x15, T::Utf8String, &[C::Connect, C::Connack, C::Auth]),
            (0x16, T::BinaryData, &[C::Connect, C::Connack, C::Auth]),
            (0x17, T::Byte, &[C::Connect]),
            (0x18, T::FourByteInteger, &[C::Will]),
            (0x19, T::Byte, &[C::Connect]),
            (0x1A, T::Utf8String, &[C::Connack]),
            (0x1C, T::Utf8String, &[C::Connack, C::Disconnect]),
            (
                0x1F,
                T::Utf8String,
                &[
                    C::Connack,
                    C::Puback,
                    C::Pubrec,
                    C::Pubrel,
                    C::Pubcomp,
                    C::Suback,
                    C::Unsuback,
                    C::Disconnect,
                    C::Auth,
                ],
            ),
            (0x21, T::TwoByteInteger, &[C::Connect, C::Connack]),
            (0x22, T::TwoByteInteger, &[C::Connect, C::Connack]),
            (0x23, T::TwoByteInteger, &[C::Publish]),
            (0x24, T::Byte, &[C::Connack]),
            (0x25, T::Byte, &[C::Connack]),
            (
                0x26,
                T::Utf8StringPair,
                &[
                    C::Connect,
                    C::Connack,
                    C::Publish,
                    C::Will,
                    C::Puback,
                    C::Pubrec,
                    C::Pubrel,
                    C::Pubcomp,
                    C::Subscribe,
                    C::Suback,
                    C::Unsubscribe,
                    C::Unsuback,
                    C::Disconnect,
                    C::Auth,
                ],
            ),
            (0x27, T::FourByteInteger, &[C::Connect, C::Connack]),
            (0x28, T::Byte, &[C::Connack]),
            (0x29, T::Byte, &[C::Connack]),
            (0x2A, T::Byte, &[C::Connack]),
        ];
        let all = [
            C::Connect,
            C::Will,
            C::Connack,
            C::Publish,
            C::Puback,
            C::Pubrec,
            C::Pubrel,
            C::Pubcomp,
            C::Subscribe,
            C::Suback,
            C::Unsubscribe,
            C::Unsuback,
            C::Disconnect,
            C::Auth,
        ];
        for (code, ty, ctxs) in rows {
            let id = P::from_code(*code);
            assert_eq!(id.code(), *code);
            assert_eq!(id.value_type(), Some(*ty), "{code:#x}");
            for c in all {
                assert_eq!(id.allowed_in(c), ctxs.contains(&c), "{code:#x} in {c:?}");
            }
        }
        // Every other one-byte identifier is unknown.
        let known: Vec<u32> = rows.iter().map(|r| r.0).collect();
        for code in 0..=0x7F_u32 {
            if !known.contains(&code) {
                assert_eq!(P::from_code(code), P::Unknown(code));
                assert_eq!(P::from_code(code).value_type(), None);
            }
        }
    }

    // CONNECT properties as mosquitto_pub 1.6 sent them (frame 4 of
    // mqtt5-properties-connect-publish.pcap; tshark: Session Expiry Interval
    // 0, Receive Maximum 20, ...). Here a reduced block: 0x11 Session Expiry
    // 0x0000000a, 0x21 Receive Maximum 0x0014.
    #[test]
    fn decodes_each_type() {
        let bytes = [
            0x1C, // property length 28
            0x11, 0x00, 0x00, 0x00, 0x0A, // session expiry 10
            0x21, 0x00, 0x14, // receive maximum 20
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
            0x15, 0x00, 0x03, b'f', b'o', b'o', // auth method "foo"
            0x16, 0x00, 0x02, 0x01, 0x02, // auth data
            0x17, 0x01, // request problem information 1
        ];
        let (p, v) = parse(&bytes, PropertyContext::Connect);
        let p = p.expect("parses");
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(p.len(), 6);
        assert_eq!(p.wire_len(), 28);
        let ids: Vec<PropertyId> = p.iter().map(|x| x.id).collect();
        assert_eq!(
            ids,
            vec![
                PropertyId::SessionExpiryInterval,
                PropertyId::ReceiveMaximum,
                PropertyId::UserProperty,
                PropertyId::AuthenticationMethod,
                PropertyId::AuthenticationData,
                PropertyId::RequestProblemInformation,
            ]
        );
        assert_eq!(
            p.get(PropertyId::SessionExpiryInterval),
            Some(PropertyValue::FourByte(10))
        );
        assert_eq!(
            p.get(PropertyId::ReceiveMaximum),
            Some(PropertyValue::TwoByte(20))
        );
        assert_eq!(
            p.get(PropertyId::UserProperty),
            Some(PropertyValue::Pair(MqttStr::new(b"k"), MqttStr::new(b"v")))
        );
    }

    #[test]
    fn subscription_identifier_is_a_vbi() {
        // 0x0B with value 16384 (0x80 0x80 0x01).
        let bytes = [0x04, 0x0B, 0x80, 0x80, 0x01];
        let (p, v) = parse(&bytes, PropertyContext::Subscribe);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(
            p.expect("parses").get(PropertyId::SubscriptionIdentifier),
            Some(PropertyValue::VarInt(16384))
        );
    }

    #[test]
    fn unknown_identifier_stops_the_block_but_keeps_the_prefix() {
        let bytes = [0x06, 0x23, 0x00, 0x05, 0x04, 0x01, 0x02];
        let (p, v) = parse(&bytes, PropertyContext::Publish);
        let p = p.expect("block length is fine");
        assert_eq!(kinds(&v), vec![AnomalyKind::UnknownProperty]);
        assert_eq!(v[0].value, Some(0x04));
        assert_eq!(p.len(), 1);
        assert_eq!(p.topic_alias(), Some(5));
    }

    // A two-byte identifier: no 5.0 identifier needs one (§2.2.2.2).
    #[test]
    fn multi_byte_identifier_is_unknown() {
        let bytes = [0x03, 0x81, 0x01, 0x00];
        let (_, v) = parse(&bytes, PropertyContext::Publish);
        assert_eq!(kinds(&v), vec![AnomalyKind::UnknownProperty]);
        assert_eq!(v[0].value, Some(0x81));
    }

    #[test]
    fn not_allowed_duplicate_and_bad_values() {
        let bytes = [
            0x0C, // length 12
            0x12, 0x00, 0x01, b'x', // assigned client id: CONNACK only
            0x21, 0x00, 0x00, // receive maximum 0
            0x21, 0x00, 0x01, // receive maximum again
            0x17, 0x02, // request problem information 2
        ];
        let (p, v) = parse(&bytes, PropertyContext::Connect);
        assert_eq!(p.expect("parses").len(), 4);
        assert_eq!(
            kinds(&v),
            vec![
                AnomalyKind::PropertyNotAllowed,
                AnomalyKind::InvalidPropertyValue,
                AnomalyKind::DuplicateProperty,
                AnomalyKind::InvalidPropertyValue,
            ]
        );
    }

    #[test]
    fn user_property_and_publish_subscription_id_may_repeat() {
        let bytes = [
            0x0C, 0x26, 0x00, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00, 0x00, 0x0B, 0x01,
        ];
        let (_, v) = parse(&bytes, PropertyContext::Publish);
        assert!(v.is_empty(), "{v:?}");
        let bytes = [0x04, 0x0B, 0x01, 0x0B, 0x02];
        let (_, v) = parse(&bytes, PropertyContext::Subscribe);
        assert_eq!(kinds(&v), vec![AnomalyKind::DuplicateProperty]);
    }

    // mqtt5-malformed-excessive-property-length.pcap frame 4: the CONNECT's
    // Property Length bytes are FF 21 while 37 bytes of the packet remain.
    #[test]
    fn length_past_packet_is_malformed() {
        let bytes = [0xFF, 0x21, 0x00, 0x14];
        let (p, _) = parse(&bytes, PropertyContext::Connect);
        assert_eq!(
            p,
            Err(ReadFail::Malformed("property length exceeds the packet", 0))
        );
    }

    #[test]
    fn value_past_block_end_is_recorded() {
        // Block of 2 bytes holding a Session Expiry Interval that needs 5.
        let bytes = [0x02, 0x11, 0x00, 0x00, 0x00, 0x00];
        let (p, v) = parse(&bytes, PropertyContext::Connect);
        assert_eq!(p.expect("block itself fits").len(), 0);
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
    }

    #[test]
    fn non_minimal_length_and_bad_strings() {
        let bytes = [0x85, 0x00, 0x03, 0x00, 0x02, 0xC3, 0x28];
        let (p, v) = parse(&bytes, PropertyContext::Publish);
        assert_eq!(p.expect("parses").len(), 1);
        assert_eq!(
            kinds(&v),
            vec![AnomalyKind::NonMinimalLength, AnomalyKind::InvalidUtf8]
        );
        let bytes = [0x05, 0x08, 0x00, 0x02, b'a', b'#'];
        let (_, v) = parse(&bytes, PropertyContext::Publish);
        assert_eq!(kinds(&v), vec![AnomalyKind::InvalidTopicName]);
    }

    #[test]
    fn too_many_properties_are_cut() {
        let n = usize::from(MAX_PROPERTIES_PER_BLOCK) + 1;
        let mut block = Vec::new();
        for _ in 0..n {
            block.extend_from_slice(&[0x26, 0x00, 0x00, 0x00, 0x00]);
        }
        let mut bytes = Vec::new();
        let mut len = block.len();
        loop {
            let mut b = (len & 0x7F) as u8;
            len >>= 7;
            if len > 0 {
                b |= 0x80;
            }
            bytes.push(b);
            if len == 0 {
                break;
            }
        }
        bytes.extend_from_slice(&block);
        let (p, v) = parse(&bytes, PropertyContext::Publish);
        assert_eq!(
            p.expect("parses").len(),
            usize::from(MAX_PROPERTIES_PER_BLOCK)
        );
        assert_eq!(kinds(&v), vec![AnomalyKind::MalformedPacket]);
    }
}
