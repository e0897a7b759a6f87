//! CoAP events as normalised events: `coap.request`, `coap.response` and
//! `anomaly` (catalogue in `rules/README.md`).

use super::CoapEvent;
use crate::proto::norm::{Event, NormContext, sender};

pub(super) fn normalize(e: &CoapEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event>) {
    match e {
        CoapEvent::Message(m) => {
            let code = m.code.to_string();
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
                    ev = ev.with("uri_path", p.to_string());
                }
                if let Some(q) = &m.uri_query {
                    ev = ev.with("uri_query", q.to_string());
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
        CoapEvent::Anomaly(a) => out.push(cx.anomaly("coap", a.kind.as_str(), &a.detail)),
        _ => {}
    }
}
