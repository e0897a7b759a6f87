//! The MQTT log (`mqtt.jsonl`): one line per control packet and per anomaly
//! (see `proto/log.rs` for the common fields).

use serde::Serialize;

use super::{ConnackCode, MqttEvent, PacketType, PropertySummary, ProtocolVersion};
use crate::proto::content::{ContentClass, magic_of};
use crate::proto::record::{is_false, is_zero};

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MqttRecord<'a> {
    Packet(Box<MqttPacket<'a>>),
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_type_code: Option<u8>,
    },
}

/// One control packet. Which fields are present depends on `msg_type`.
#[derive(Default, Serialize)]
pub struct MqttPacket<'a> {
    msg_type: &'static str,
    msg_type_code: u8,
    // CONNECT (MQTT 5.0 §3.1.2, §3.1.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_password: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clean_start: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_qos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_retain: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_payload_len: Option<u16>,
    // CONNACK (§3.2)
    #[serde(skip_serializing_if = "Option::is_none")]
    session_present: Option<bool>,
    /// 3.x Connect Return Code (3.1.1 §3.2.2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    return_code: Option<u8>,
    /// 5.0 Reason Code (§2.4) of CONNACK, PUBACK..PUBCOMP, DISCONNECT, AUTH.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<bool>,
    // PUBLISH (§3.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retain: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_magic: Option<&'static str>,
    // SUBSCRIBE / UNSUBSCRIBE (§3.8, §3.10)
    #[serde(skip_serializing_if = "Option::is_none")]
    filters: Option<Vec<&'a str>>,
    /// Requested QoS of each filter, SUBSCRIBE only.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_qos: Option<Vec<u8>>,
    /// Filters in the packet (`filters` may hold fewer).
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_count: Option<usize>,
    // SUBACK / UNSUBACK (§3.9, §3.11)
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_codes: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code_count: Option<usize>,
    /// A packet whose body was not decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<MqttProperties<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_properties: Option<MqttProperties<'a>>,
}

/// The MQTT 5.0 properties worth a log column (§2.2.2.2). Binary values
/// (Authentication Data, Correlation Data) appear as presence flags; of the
/// User Properties only the count and the first name are written.
#[derive(Serialize)]
pub struct MqttProperties<'a> {
    count: u16,
    #[serde(skip_serializing_if = "is_zero")]
    user_properties: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_user_property_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_format_utf8: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_expiry_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_topic: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    has_correlation_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic_alias: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_expiry_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned_client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_keep_alive_secs: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    has_auth_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_delay_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receive_maximum: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_packet_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_qos: Option<u8>,
}

fn mqtt_properties(p: Option<&PropertySummary>) -> Option<MqttProperties<'_>> {
    let p = p?;
    Some(MqttProperties {
        count: p.count,
        user_properties: p.user_properties,
        first_user_property_name: p.first_user_property.as_ref().map(|(k, _)| k.as_str()),
        content_type: p.content_type.as_deref(),
        payload_format_utf8: p.payload_format_utf8,
        message_expiry_secs: p.message_expiry_secs,
        response_topic: p.response_topic.as_deref(),
        has_correlation_data: p.has_correlation_data,
        topic_alias: p.topic_alias,
        session_expiry_secs: p.session_expiry_secs,
        assigned_client_id: p.assigned_client_id.as_deref(),
        server_keep_alive_secs: p.server_keep_alive_secs,
        auth_method: p.auth_method.as_deref(),
        has_auth_data: p.has_auth_data,
        will_delay_secs: p.will_delay_secs,
        reason_string: p.reason_string.as_deref(),
        server_reference: p.server_reference.as_deref(),
        receive_maximum: p.receive_maximum,
        maximum_packet_size: p.maximum_packet_size,
        maximum_qos: p.maximum_qos,
    })
}

fn mqtt_version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

pub(super) fn record(ev: &MqttEvent) -> MqttRecord<'_> {
    if let MqttEvent::Anomaly(a) = ev {
        let t = a.msg_type.map(PacketType::from_nibble);
        return MqttRecord::Anomaly {
            kind: a.kind.as_str(),
            detail: &a.detail,
            msg_type: t.map(PacketType::name),
            msg_type_code: a.msg_type,
        };
    }
    // Every other event is a packet and has a type (`msg_type` is `None`
    // only for anomalies).
    let code = ev.msg_type().unwrap_or_default();
    let mut p = MqttPacket {
        msg_type: PacketType::from_nibble(code).name(),
        msg_type_code: code,
        ..MqttPacket::default()
    };
    match ev {
        MqttEvent::Connect(c) => {
            p.version = c.version.map(mqtt_version_name);
            p.protocol_name = Some(&c.protocol_name);
            p.protocol_level = Some(c.protocol_level);
            p.client_id = Some(&c.client_id);
            p.username = c.username.as_deref();
            p.has_password = Some(c.has_password);
            p.keep_alive = Some(c.keep_alive_secs);
            p.clean_start = Some(c.clean_start);
            if let Some(w) = &c.will {
                p.will_topic = Some(&w.topic);
                p.will_qos = Some(w.qos.code());
                p.will_retain = Some(w.retain);
                p.will_payload_len = Some(w.payload_len);
                p.will_properties = mqtt_properties(w.properties.as_deref());
            }
            p.properties = mqtt_properties(c.properties.as_deref());
        }
        MqttEvent::Connack(c) => {
            p.session_present = Some(c.session_present);
            match c.code {
                ConnackCode::V3(_) => p.return_code = Some(c.code.raw()),
                ConnackCode::V5(_) => p.reason_code = Some(c.code.raw()),
            }
            p.accepted = Some(c.code.is_accepted());
            p.properties = mqtt_properties(c.properties.as_deref());
        }
        MqttEvent::Publish(m) => {
            p.topic = Some(&m.topic);
            p.qos = Some(m.qos.code());
            p.retain = Some(m.retain);
            p.dup = Some(m.dup);
            p.packet_id = m.packet_id;
            p.payload_len = Some(m.payload_len);
            p.payload_magic = if m.payload_len == 0 {
                Some(ContentClass::Empty.as_str())
            } else {
                magic_of(&m.payload_head)
            };
            p.properties = mqtt_properties(m.properties.as_deref());
        }
        MqttEvent::Puback(a)
        | MqttEvent::Pubrec(a)
        | MqttEvent::Pubrel(a)
        | MqttEvent::Pubcomp(a) => {
            p.packet_id = Some(a.packet_id);
            p.reason_code = Some(a.reason.0);
            p.properties = mqtt_properties(a.properties.as_deref());
        }
        MqttEvent::Subscribe(s) => {
            p.packet_id = Some(s.packet_id);
            p.filters = Some(s.filters.iter().map(|f| f.filter.as_str()).collect());
            p.filter_qos = Some(s.filters.iter().map(|f| f.qos.code()).collect());
            p.filter_count = Some(s.filter_count);
            p.properties = mqtt_properties(s.properties.as_deref());
        }
        MqttEvent::Suback(s) => {
            p.packet_id = Some(s.packet_id);
            p.reason_codes = Some(s.codes.iter().map(|c| c.0).collect());
            p.reason_code_count = Some(s.code_count);
            p.properties = mqtt_properties(s.properties.as_deref());
        }
        MqttEvent::Unsubscribe(u) => {
            p.packet_id = Some(u.packet_id);
            p.filters = Some(u.filters.iter().map(|f| f.as_str()).collect());
            p.filter_count = Some(u.filter_count);
            p.properties = mqtt_properties(u.properties.as_deref());
        }
        MqttEvent::Unsuback(u) => {
            p.packet_id = Some(u.packet_id);
            p.reason_codes = Some(u.codes.iter().map(|c| c.0).collect());
            p.reason_code_count = Some(u.code_count);
            p.properties = mqtt_properties(u.properties.as_deref());
        }
        MqttEvent::Disconnect(d) => {
            p.reason_code = Some(d.reason.0);
            p.properties = mqtt_properties(d.properties.as_deref());
        }
        MqttEvent::Auth(a) => {
            p.reason_code = Some(a.reason.0);
            p.properties = mqtt_properties(a.properties.as_deref());
        }
        MqttEvent::Unparsed { remaining_len, .. } => p.remaining_len = Some(*remaining_len),
        MqttEvent::Pingreq | MqttEvent::Pingresp | MqttEvent::Anomaly(_) => {}
    }
    MqttRecord::Packet(Box::new(p))
}
