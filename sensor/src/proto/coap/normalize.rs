//! CoAP events as normalised events: `coap.request`, `coap.response`,
//! `coap.discovery` and `anomaly` (catalogue in `rules/README.md`).

use std::borrow::Cow;

use super::CoapEvent;
use crate::proto::norm::{Event, NormContext, Value, sender};

/// Resource paths listed in one `coap.discovery` event; the session already
/// keeps at most `link_format.max_links` links, this bounds the event
/// whatever that setting is.
pub const MAX_DISCOVERY_RESOURCES: usize = 64;

pub(super) fn normalize<'e>(e: &'e CoapEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
    match e {
        CoapEvent::Message(m) => {
            let code = m.code.as_str();
            if let Some(method) = m.code.method() {
                let mut ev = cx
                    .event("coap.request", "coap")
                    .with("from", sender(m.dir))
                    .with("method", method.name().unwrap_or("UNKNOWN"))
                    .with("code", code)
                    .with("type", m.msg_type.name())
                    .with("observe", m.observe.is_some())
                    .with("unknown_critical", !m.unknown_critical_options.is_empty());
                if let Some(p) = m.uri_path.as_deref() {
                    ev = ev.with("uri_path", p);
                }
                if let Some(q) = &m.uri_query {
                    ev = ev.with("uri_query", q.as_str());
                }
                out.push(ev);
            } else if m.code.class() >= 2 {
                out.push(
                    cx.event("coap.response", "coap")
                        .with("from", sender(m.dir))
                        .with("code", code)
                        .with("class", i64::from(m.code.class())),
                );
            }
        }
        CoapEvent::Discovery(d) => {
            let resources = Value::List(
                d.links
                    .iter()
                    .take(MAX_DISCOVERY_RESOURCES)
                    .map(|l| Cow::Borrowed(l.target.as_str()))
                    .collect(),
            );
            let truncated = d.truncated || d.links.len() > MAX_DISCOVERY_RESOURCES;
            out.push(
                cx.event("coap.discovery", "coap")
                    .with("from", sender(d.dir))
                    .with("resources", resources)
                    .with("truncated", truncated),
            );
        }
        CoapEvent::Anomaly(a) => out.push(cx.anomaly("coap", a.kind.as_str(), &a.detail)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::flow::{Direction, FlowInfo};
    use crate::proto::coap::{DiscoveryEvent, LinkFormatLimits, Token, parse_link_format};
    use crate::proto::norm::{FieldPool, NoteTable, Value};

    /// RFC 6690 §5, the example answer to `GET /.well-known/core`.
    const RFC6690_S5: &[u8] = b"</sensors>;ct=40;title=\"Sensor Index\",\
        </sensors/temp>;rt=\"temperature-c\";if=\"sensor\",\
        </sensors/light>;rt=\"light-lux\";if=\"sensor\",\
        <http://www.example.com/sensors/t123>;anchor=\"/sensors/temp\";rel=\"describedby\",\
        </t>;anchor=\"/sensors/temp\";rel=\"alternate\"";

    fn discovery(payload: &[u8], limits: LinkFormatLimits) -> Vec<Event<'static>> {
        let lf = parse_link_format(payload, limits);
        let ev = CoapEvent::Discovery(Box::new(DiscoveryEvent {
            dir: Direction::ToClient,
            token: Token::default(),
            request_uri_path: Some(".well-known/core".into()),
            links: lf.links,
            truncated: lf.truncated,
            malformed_links: lf.malformed,
        }));
        let flow = FlowInfo::for_test(1, 17, 5683);
        let mut notes = NoteTable::default();
        let mut pool = FieldPool::default();
        let mut cx = NormContext::new(
            &flow,
            Timestamp(0),
            Direction::ToClient,
            &mut notes,
            &mut pool,
        );
        let mut out = Vec::new();
        normalize(&ev, &mut cx, &mut out);
        out.into_iter().map(Event::into_owned).collect()
    }

    fn list(v: &[&str]) -> Value<'static> {
        Value::List(v.iter().map(|s| s.to_string().into()).collect())
    }

    #[test]
    fn discovery_lists_the_link_targets_from_the_server() {
        let out = discovery(RFC6690_S5, LinkFormatLimits::default());
        let [ev] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(ev.kind, "coap.discovery");
        assert_eq!(ev.field("from"), Some(&Value::from("server")));
        // The five targets of RFC 6690 §5, in order.
        assert_eq!(
            ev.field("resources"),
            Some(&list(&[
                "/sensors",
                "/sensors/temp",
                "/sensors/light",
                "http://www.example.com/sensors/t123",
                "/t",
            ]))
        );
        assert_eq!(ev.field("truncated"), Some(&Value::Bool(false)));
    }

    #[test]
    fn discovery_cut_by_the_link_limit_says_so() {
        let limits = LinkFormatLimits {
            max_links: 2,
            ..LinkFormatLimits::default()
        };
        let out = discovery(RFC6690_S5, limits);
        assert_eq!(
            out[0].field("resources"),
            Some(&list(&["/sensors", "/sensors/temp"]))
        );
        assert_eq!(out[0].field("truncated"), Some(&Value::Bool(true)));
    }

    #[test]
    fn discovery_event_is_bounded_whatever_the_link_limit() {
        let payload: Vec<u8> = (0..MAX_DISCOVERY_RESOURCES + 5)
            .map(|i| format!("</r{i}>"))
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes();
        let limits = LinkFormatLimits {
            max_links: 1000,
            ..LinkFormatLimits::default()
        };
        let out = discovery(&payload, limits);
        let Some(Value::List(resources)) = out[0].field("resources") else {
            panic!("{out:?}")
        };
        assert_eq!(resources.len(), MAX_DISCOVERY_RESOURCES);
        assert_eq!(resources[0], "/r0");
        assert_eq!(out[0].field("truncated"), Some(&Value::Bool(true)));
    }
}
