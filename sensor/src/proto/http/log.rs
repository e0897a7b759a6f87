//! The HTTP log (`http.jsonl`): one line per request head, response head,
//! body end, tunnel and anomaly (see `proto/log.rs` for the common fields).

use std::fmt;

use serde::Serialize;

use super::{AnomalyEffect, Auth, HttpEvent, Method, TunnelKind, Version};
use crate::flow::Direction;
use crate::proto::content::magic_of;
use crate::proto::record::Shown;

/// HTTP version as Zeek writes it ("1.1").
pub struct HttpVersion(Version);

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Version::Http09 => f.write_str("0.9"),
            Version::Http10 => f.write_str("1.0"),
            Version::Http11 => f.write_str("1.1"),
            Version::Other { major, minor } => write!(f, "{major}.{minor}"),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HttpRecord<'a> {
    Request {
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<&'a str>,
        uri: &'a str,
        version: Shown<HttpVersion>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_length: Option<u64>,
        chunked: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_scheme: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_user: Option<&'a str>,
        /// Basic only: a password was present (never its length).
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_has_password: Option<bool>,
    },
    Response {
        status: u16,
        reason: &'a str,
        version: Shown<HttpVersion>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_length: Option<u64>,
        chunked: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_method: Option<&'a str>,
    },
    Body {
        body_len: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_magic: Option<&'static str>,
        complete: bool,
    },
    Tunnel {
        tunnel: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        authority: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        upgrade: Option<&'a str>,
    },
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        effect: &'static str,
    },
}

/// The record of an HTTP event and the direction it travelled, when the
/// event fixes it.
pub(super) fn record(ev: &HttpEvent) -> (Option<Direction>, HttpRecord<'_>) {
    match ev {
        HttpEvent::Request(r) => {
            let (auth_scheme, auth_user, auth_has_password) = match &r.auth {
                Auth::None => (None, None, None),
                Auth::Basic {
                    user, has_password, ..
                } => (Some("basic"), Some(user.as_str()), Some(*has_password)),
                Auth::Digest { user } => (Some("digest"), user.as_deref(), None),
                Auth::Bearer => (Some("bearer"), None, None),
                Auth::Other(scheme) => (Some(scheme.as_str()), None, None),
            };
            let record = HttpRecord::Request {
                method: r.method.as_str(),
                host: r.host.as_deref(),
                uri: r.uri.as_str(),
                version: Shown(HttpVersion(r.version)),
                user_agent: r.user_agent.as_deref(),
                content_type: r.content_type.as_deref(),
                content_length: r.content_length,
                chunked: r.chunked,
                auth_scheme,
                auth_user,
                auth_has_password,
            };
            (Some(Direction::ToServer), record)
        }
        HttpEvent::Response(r) => {
            let record = HttpRecord::Response {
                status: r.status,
                reason: &r.reason,
                version: Shown(HttpVersion(r.version)),
                content_type: r.content_type.as_deref(),
                content_length: r.content_length,
                chunked: r.chunked,
                server: r.server.as_deref(),
                request_method: r.request_method.as_ref().map(Method::as_str),
            };
            (Some(Direction::ToClient), record)
        }
        HttpEvent::Body(b) => {
            let record = HttpRecord::Body {
                body_len: b.total_len,
                body_magic: magic_of(&b.head),
                complete: b.complete,
            };
            (Some(b.dir), record)
        }
        // A tunnel starts with the server's answer (2xx to CONNECT, 101).
        HttpEvent::Tunnel(kind) => {
            let record = match kind {
                TunnelKind::Connect { authority } => HttpRecord::Tunnel {
                    tunnel: "connect",
                    authority: Some(authority),
                    upgrade: None,
                },
                TunnelKind::Upgrade { protocol } => HttpRecord::Tunnel {
                    tunnel: "upgrade",
                    authority: None,
                    upgrade: Some(protocol),
                },
            };
            (Some(Direction::ToClient), record)
        }
        HttpEvent::Anomaly(a) => {
            let record = HttpRecord::Anomaly {
                kind: a.kind.as_str(),
                detail: &a.detail,
                effect: match a.effect {
                    AnomalyEffect::Continue => "continue",
                    AnomalyEffect::Resync => "resync",
                    AnomalyEffect::StopDirection => "stop_direction",
                },
            };
            (Some(a.dir), record)
        }
    }
}
