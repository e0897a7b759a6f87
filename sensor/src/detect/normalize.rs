//! Turns parser events and flow observations into [`RuleEvent`]s, the one
//! shape rules match on (catalogue in `rules/README.md`). Every event is
//! oriented client → server, with `from` naming who sent the message.

use std::collections::HashMap;

use super::event::{RuleEvent, Value};
use crate::capture::Timestamp;
use crate::decode::{Packet, TcpFlags, Transport};
use crate::flow::{Direction, FlowInfo};
use crate::proto::counts::snake;
use crate::proto::dispatch::{AppEvent, AppProto};
use crate::proto::log::ContentClass;
use crate::proto::{coap, http, mqtt, telnet};

/// Fields of the largest rule events (an HTTP request with Basic credentials).
const EVENT_FIELDS: usize = 9;

/// Flows whose notes (last request URI, MQTT client id) are kept at once.
pub const MAX_FLOW_NOTES: usize = 65_536;

/// What a flow said earlier that later events need.
#[derive(Debug, Default)]
struct Notes {
    last_uri: Option<String>,
    client_id: Option<String>,
}

/// What the rules need of one packet: its time and, for TCP, its flags. Small
/// and owned, so that it can be handed to another thread.
#[derive(Clone, Copy, Debug)]
pub struct PacketNote {
    pub ts: Timestamp,
    pub tcp_flags: Option<TcpFlags>,
}

impl PacketNote {
    pub fn of(pkt: &Packet<'_>) -> Self {
        PacketNote {
            ts: pkt.ts,
            tcp_flags: match &pkt.transport {
                Transport::Tcp(seg) => Some(seg.flags),
                _ => None,
            },
        }
    }
}

/// Builds rule events; keeps a little per-flow memory, bounded.
#[derive(Debug, Default)]
pub struct Normalizer {
    notes: HashMap<u64, Notes>,
    /// Notes not kept because the table was full.
    pub notes_dropped: u64,
}

fn base(flow: &FlowInfo, ts: Timestamp, kind: &'static str, proto: &'static str) -> RuleEvent {
    RuleEvent {
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

/// A method name as a field value, borrowed for a standard method.
fn method(m: &http::Method) -> Value {
    match m.standard_name() {
        Some(name) => Value::from(name),
        None => Value::from(m.as_str().to_string()),
    }
}

fn from(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "client",
        Direction::ToClient => "server",
    }
}

impl Normalizer {
    fn notes(&mut self, flow_id: u64) -> Option<&mut Notes> {
        if self.notes.len() >= MAX_FLOW_NOTES && !self.notes.contains_key(&flow_id) {
            self.notes_dropped += 1;
            return None;
        }
        Some(self.notes.entry(flow_id).or_default())
    }

    /// Whether [`Normalizer::packet`] makes anything of this packet: only TCP
    /// SYN and RST segments tell of connection attempts and refusals.
    pub fn wants_packet(pkt: &PacketNote) -> bool {
        pkt.tcp_flags.is_some_and(|f| f.syn() || f.rst())
    }

    /// Per-packet observations: connection attempts and refusals (for scans
    /// and floods). `established_before` says whether the handshake had
    /// completed before this packet.
    pub fn packet(
        &self,
        flow: &FlowInfo,
        dir: Direction,
        pkt: &PacketNote,
        established_before: bool,
        out: &mut Vec<RuleEvent>,
    ) {
        let Some(flags) = pkt.tcp_flags else {
            return;
        };
        let dst_port = i64::from(flow.server.1);
        if flags.syn() && !flags.ack() && dir == Direction::ToServer {
            out.push(base(flow, pkt.ts, "tcp.syn", "tcp").with("dst_port", dst_port));
        } else if flags.rst() && dir == Direction::ToClient && !established_before {
            out.push(base(flow, pkt.ts, "tcp.refused", "tcp").with("dst_port", dst_port));
        }
    }

    /// A flow was recognised as `proto`.
    pub fn detect(&self, flow: &FlowInfo, proto: AppProto, out: &mut Vec<RuleEvent>) {
        let kind = match proto {
            AppProto::Http => "http.flow",
            AppProto::Mqtt => "mqtt.flow",
            AppProto::Coap => "coap.flow",
            AppProto::Telnet => "telnet.flow",
        };
        out.push(
            base(flow, flow.last_ts, kind, proto.name()).with("dst_port", i64::from(flow.server.1)),
        );
    }

    /// A flow ended.
    pub fn close(&mut self, flow: &FlowInfo, proto: Option<AppProto>, out: &mut Vec<RuleEvent>) {
        let notes = self.notes.remove(&flow.id);
        if proto == Some(AppProto::Mqtt) {
            let mut ev = base(flow, flow.last_ts, "mqtt.close", "mqtt");
            if let Some(id) = notes.and_then(|n| n.client_id) {
                ev = ev.with("client_id", id);
            }
            out.push(ev);
        }
    }

    /// A parser event.
    pub fn event(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        dir: Direction,
        event: AppEvent<'_>,
        out: &mut Vec<RuleEvent>,
    ) {
        match event {
            AppEvent::Http(e) => self.http(flow, ts, e, out),
            AppEvent::Mqtt(e) => self.mqtt(flow, ts, dir, e, out),
            AppEvent::Coap(e) => coap_event(flow, ts, e, out),
            AppEvent::Telnet(e) => telnet_event(flow, ts, e, out),
        }
    }

    fn http(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        e: &http::HttpEvent,
        out: &mut Vec<RuleEvent>,
    ) {
        match e {
            http::HttpEvent::Request(r) => {
                let mut ev = base(flow, ts, "http.request", "http")
                    .with("from", "client")
                    .with("method", method(&r.method))
                    .with("uri", r.uri.to_string());
                if let Some(h) = &r.host {
                    ev = ev.with("host", h.to_string());
                }
                if let Some(ua) = &r.user_agent {
                    ev = ev.with("user_agent", ua.to_string());
                }
                if let Some(ct) = &r.content_type {
                    ev = ev.with("content_type", ct.to_string());
                }
                match &r.auth {
                    http::Auth::None => {}
                    http::Auth::Basic {
                        user,
                        has_password,
                        credential,
                        ..
                    } => {
                        ev = ev
                            .with("auth_scheme", "basic")
                            .with("user", user.to_string())
                            .with("has_password", *has_password);
                        ev.credential = *credential;
                    }
                    http::Auth::Digest { user } => {
                        ev = ev.with("auth_scheme", "digest");
                        if let Some(u) = user {
                            ev = ev.with("user", u.to_string());
                        }
                    }
                    http::Auth::Bearer => ev = ev.with("auth_scheme", "bearer"),
                    http::Auth::Other(_) => ev = ev.with("auth_scheme", "other"),
                }
                if let Some(n) = self.notes(flow.id) {
                    n.last_uri = Some(r.uri.clone());
                }
                out.push(ev);
            }
            http::HttpEvent::Response(r) => {
                let mut ev = base(flow, ts, "http.response", "http")
                    .with("from", "server")
                    .with("status", i64::from(r.status));
                if let Some(m) = &r.request_method {
                    ev = ev.with("request_method", method(m));
                }
                if let Some(ct) = &r.content_type {
                    ev = ev.with("content_type", ct.to_string());
                }
                out.push(ev);
            }
            http::HttpEvent::Body(b) => {
                let mut ev = base(flow, ts, "http.body", "http")
                    .with("from", from(b.dir))
                    .with("length", b.total_len)
                    .with("magic", ContentClass::of(&b.head).as_str())
                    .with("complete", b.complete);
                if let Some(uri) = self.notes.get(&flow.id).and_then(|n| n.last_uri.as_ref()) {
                    ev = ev.with("uri", uri.to_string());
                }
                out.push(ev);
            }
            http::HttpEvent::Anomaly(a) => {
                out.push(anomaly(flow, ts, "http", snake(&a.kind), &a.detail))
            }
            http::HttpEvent::Tunnel(_) => {}
        }
    }

    fn mqtt(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        dir: Direction,
        e: &mqtt::MqttEvent,
        out: &mut Vec<RuleEvent>,
    ) {
        match e {
            mqtt::MqttEvent::Connect(c) => {
                let mut ev = base(flow, ts, "mqtt.connect", "mqtt")
                    .with("from", from(dir))
                    .with("version", i64::from(c.protocol_level))
                    .with("client_id", c.client_id.to_string())
                    .with("has_password", c.has_password)
                    .with("keep_alive", i64::from(c.keep_alive_secs));
                if let Some(u) = &c.username {
                    ev = ev.with("user", u.to_string());
                }
                if let Some(w) = &c.will {
                    ev = ev.with("will_topic", w.topic.to_string());
                }
                ev.credential = c.credential;
                if let Some(n) = self.notes(flow.id) {
                    n.client_id = Some(c.client_id.to_string());
                }
                out.push(ev);
            }
            mqtt::MqttEvent::Connack(a) => out.push(
                base(flow, ts, "mqtt.connack", "mqtt")
                    .with("from", from(dir))
                    .with("code", i64::from(a.code.raw()))
                    .with("accepted", a.code.is_accepted()),
            ),
            mqtt::MqttEvent::Publish(p) => out.push(
                base(flow, ts, "mqtt.publish", "mqtt")
                    .with("from", from(dir))
                    .with("topic", p.topic.to_string())
                    .with("qos", qos(p.qos))
                    .with("retain", p.retain)
                    .with("payload_len", i64::from(p.payload_len)),
            ),
            mqtt::MqttEvent::Subscribe(s) => out.push(
                base(flow, ts, "mqtt.subscribe", "mqtt")
                    .with("from", from(dir))
                    .with(
                        "filters",
                        s.filters
                            .iter()
                            .map(|f| f.filter.to_string())
                            .collect::<Vec<_>>(),
                    ),
            ),
            mqtt::MqttEvent::Anomaly(a) => out.push(anomaly(
                flow,
                ts,
                "mqtt",
                a.kind.as_str().to_string(),
                &a.detail,
            )),
            _ => {}
        }
    }
}

fn qos(q: mqtt::Qos) -> i64 {
    match q {
        mqtt::Qos::AtMostOnce => 0,
        mqtt::Qos::AtLeastOnce => 1,
        mqtt::Qos::ExactlyOnce => 2,
        mqtt::Qos::Reserved => 3,
    }
}

fn anomaly(
    flow: &FlowInfo,
    ts: Timestamp,
    proto: &'static str,
    kind: String,
    detail: &str,
) -> RuleEvent {
    base(flow, ts, "anomaly", proto)
        .with("protocol", proto)
        .with("kind", kind)
        .with("detail", detail.to_string())
}

fn coap_event(flow: &FlowInfo, ts: Timestamp, e: &coap::CoapEvent, out: &mut Vec<RuleEvent>) {
    match e {
        coap::CoapEvent::Message(m) => {
            let code = m.code.to_string();
            if let Some(method) = m.code.method() {
                let mut ev = base(flow, ts, "coap.request", "coap")
                    .with("from", from(m.dir))
                    .with("method", coap_method(method))
                    .with("code", code)
                    .with("type", coap_type(m.msg_type))
                    .with("observe", m.observe.is_some())
                    .with("unknown_critical", !m.unknown_critical_options.is_empty());
                if let Some(p) = m.uri_path.as_deref() {
                    ev = ev.with("uri_path", p.to_string());
                }
                if let Some(q) = &m.uri_query {
                    ev = ev.with("uri_query", q.to_string());
                }
                out.push(ev);
            } else if m.code.class() >= 2 {
                out.push(
                    base(flow, ts, "coap.response", "coap")
                        .with("from", from(m.dir))
                        .with("code", code)
                        .with("class", i64::from(m.code.class())),
                );
            }
        }
        coap::CoapEvent::Anomaly(a) => out.push(anomaly(
            flow,
            ts,
            "coap",
            a.kind.as_str().to_string(),
            &a.detail,
        )),
        _ => {}
    }
}

fn coap_method(m: coap::Method) -> Value {
    let name = match m {
        coap::Method::Get => "GET",
        coap::Method::Post => "POST",
        coap::Method::Put => "PUT",
        coap::Method::Delete => "DELETE",
        coap::Method::Fetch => "FETCH",
        coap::Method::Patch => "PATCH",
        coap::Method::IPatch => "iPATCH",
        coap::Method::Unknown(_) => "UNKNOWN",
    };
    Value::from(name)
}

fn coap_type(t: coap::MessageType) -> &'static str {
    match t {
        coap::MessageType::Confirmable => "CON",
        coap::MessageType::NonConfirmable => "NON",
        coap::MessageType::Acknowledgement => "ACK",
        coap::MessageType::Reset => "RST",
    }
}

fn telnet_event(flow: &FlowInfo, ts: Timestamp, e: &telnet::TelnetEvent, out: &mut Vec<RuleEvent>) {
    match e {
        telnet::TelnetEvent::LoginAttempt(l) => {
            let outcome = match l.outcome {
                telnet::LoginOutcome::Success => "success",
                telnet::LoginOutcome::Failure => "failure",
                telnet::LoginOutcome::Unknown => "unknown",
            };
            let mut ev = base(flow, ts, "telnet.login", "telnet")
                .with("from", "client")
                .with("has_password", l.has_password)
                .with("outcome", outcome);
            if let Some(u) = &l.user {
                ev = ev.with("user", u.to_string());
            }
            ev.credential = l.credential;
            out.push(ev);
        }
        telnet::TelnetEvent::ShellCommand { line, .. } => out.push(
            base(flow, ts, "telnet.command", "telnet")
                .with("from", "client")
                .with("line", line.to_string()),
        ),
        telnet::TelnetEvent::Anomaly(a) => {
            out.push(anomaly(flow, ts, "telnet", snake(&a.kind), ""));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flow stage hands over only the packets `wants_packet` accepts:
    /// no other packet may make an event.
    #[test]
    fn packets_not_wanted_make_no_event() {
        let n = Normalizer::default();
        let flow = FlowInfo::for_test(1, 6, 23);
        let mut wanted = 0;
        for bits in 0..=u8::MAX {
            for tcp_flags in [Some(TcpFlags(bits)), None] {
                let note = PacketNote {
                    ts: Timestamp::default(),
                    tcp_flags,
                };
                for dir in [Direction::ToServer, Direction::ToClient] {
                    for established in [false, true] {
                        let mut out = Vec::new();
                        n.packet(&flow, dir, &note, established, &mut out);
                        if !Normalizer::wants_packet(&note) {
                            assert!(out.is_empty(), "{note:?} {dir:?}: {out:?}");
                        } else {
                            wanted += out.len();
                        }
                    }
                }
            }
        }
        // RFC 9293 §3.1: SYN is 0x02, ACK 0x10, RST 0x04. A SYN without ACK to
        // the server is an attempt: 64 flag bytes, established or not. A RST to
        // the client before the handshake is a refusal: 128 flag bytes.
        assert_eq!(wanted, 64 * 2 + 128);
    }
}
