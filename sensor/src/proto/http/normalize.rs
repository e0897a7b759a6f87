//! HTTP events as normalised events: `http.request`, `http.response`,
//! `http.body` and `anomaly` (catalogue in `rules/README.md`).

use super::{Auth, HttpEvent, Method};
use crate::proto::content::ContentClass;
use crate::proto::norm::{Event, NormContext, Value, sender};

/// The note under which a flow's last request target is kept, for its body.
const LAST_URI: &str = "uri";

/// A method name as a field value, borrowed for a standard method.
fn method(m: &Method) -> Value<'_> {
    match m.standard_name() {
        Some(name) => Value::from(name),
        None => Value::from(m.as_str()),
    }
}

pub(super) fn normalize<'e>(e: &'e HttpEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
    match e {
        HttpEvent::Request(r) => {
            let mut ev = cx
                .event("http.request", "http")
                .with("from", "client")
                .with("method", method(&r.method))
                .with("uri", r.uri.as_str());
            if let Some(h) = &r.host {
                ev = ev.with("host", h.as_str());
            }
            if let Some(ua) = &r.user_agent {
                ev = ev.with("user_agent", ua.as_str());
            }
            if let Some(ct) = &r.content_type {
                ev = ev.with("content_type", ct.as_str());
            }
            match &r.auth {
                Auth::None => {}
                Auth::Basic {
                    user,
                    has_password,
                    credential,
                    ..
                } => {
                    ev = ev
                        .with("auth_scheme", "basic")
                        .with("user", user.as_str())
                        .with("has_password", *has_password);
                    ev.credential = *credential;
                }
                Auth::Digest { user } => {
                    ev = ev.with("auth_scheme", "digest");
                    if let Some(u) = user {
                        ev = ev.with("user", u.as_str());
                    }
                }
                Auth::Bearer => ev = ev.with("auth_scheme", "bearer"),
                Auth::Other(_) => ev = ev.with("auth_scheme", "other"),
            }
            cx.remember(LAST_URI, &r.uri);
            out.push(ev);
        }
        HttpEvent::Response(r) => {
            let mut ev = cx
                .event("http.response", "http")
                .with("from", "server")
                .with("status", i64::from(r.status));
            if let Some(m) = &r.request_method {
                ev = ev.with("request_method", method(m));
            }
            if let Some(ct) = &r.content_type {
                ev = ev.with("content_type", ct.as_str());
            }
            if let Some(server) = &r.server {
                ev = ev.with("server", server.as_str());
            }
            out.push(ev);
        }
        HttpEvent::Body(b) => {
            let mut ev = cx
                .event("http.body", "http")
                .with("from", sender(b.dir))
                .with("length", b.total_len)
                .with("magic", ContentClass::of(&b.head).as_str())
                .with("complete", b.complete);
            if let Some(uri) = cx.recall(LAST_URI) {
                ev = ev.with("uri", uri.to_string());
            }
            out.push(ev);
        }
        HttpEvent::Anomaly(a) => out.push(cx.anomaly("http", a.kind.as_str(), &a.detail)),
        HttpEvent::Tunnel(_) => {}
    }
}
