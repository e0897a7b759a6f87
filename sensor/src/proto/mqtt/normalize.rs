//! MQTT events as normalised events: `mqtt.connect`, `mqtt.connack`,
//! `mqtt.publish`, `mqtt.subscribe`, `mqtt.close` and `anomaly` (catalogue in
//! `rules/README.md`).

use std::borrow::Cow;

use super::{MqttEvent, Qos};
use crate::proto::norm::{Event, NormContext, Value, sender};

/// The note under which a flow's client id is kept, for its close.
const CLIENT_ID: &str = "client_id";

fn qos(q: Qos) -> i64 {
    match q {
        Qos::AtMostOnce => 0,
        Qos::AtLeastOnce => 1,
        Qos::ExactlyOnce => 2,
        Qos::Reserved => 3,
    }
}

pub(super) fn normalize<'e>(e: &'e MqttEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
    let from = sender(cx.dir);
    match e {
        MqttEvent::Connect(c) => {
            let mut ev = cx
                .event("mqtt.connect", "mqtt")
                .with("from", from)
                .with("version", i64::from(c.protocol_level))
                .with("client_id", c.client_id.as_str())
                .with("has_password", c.has_password)
                .with("keep_alive", i64::from(c.keep_alive_secs));
            if let Some(u) = &c.username {
                ev = ev.with("user", u.as_str());
            }
            if let Some(w) = &c.will {
                ev = ev.with("will_topic", w.topic.as_str());
            }
            ev.credential = c.credential;
            cx.remember(CLIENT_ID, &c.client_id);
            out.push(ev);
        }
        MqttEvent::Connack(a) => out.push(
            cx.event("mqtt.connack", "mqtt")
                .with("from", from)
                .with("code", i64::from(a.code.raw()))
                .with("accepted", a.code.is_accepted()),
        ),
        MqttEvent::Publish(p) => out.push(
            cx.event("mqtt.publish", "mqtt")
                .with("from", from)
                .with("topic", p.topic.as_str())
                .with("qos", qos(p.qos))
                .with("retain", p.retain)
                .with("payload_len", i64::from(p.payload_len)),
        ),
        MqttEvent::Subscribe(s) => out.push(
            cx.event("mqtt.subscribe", "mqtt").with("from", from).with(
                "filters",
                Value::List(
                    s.filters
                        .iter()
                        .map(|f| Cow::Borrowed(f.filter.as_str()))
                        .collect(),
                ),
            ),
        ),
        MqttEvent::Anomaly(a) => out.push(cx.anomaly("mqtt", a.kind.as_str(), &a.detail)),
        _ => {}
    }
}

/// The end of an MQTT flow, with the client id its CONNECT gave.
pub(super) fn normalize_close(cx: &mut NormContext<'_>, out: &mut Vec<Event<'_>>) {
    // The close's context is at the flow's last packet.
    let mut ev = cx.event("mqtt.close", "mqtt");
    if let Some(id) = cx.recall(CLIENT_ID) {
        ev = ev.with("client_id", id.to_string());
    }
    out.push(ev);
}
