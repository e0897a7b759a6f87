//! HTTP/1.x: streaming parser and per-flow session.
//!
//! Specifications followed:
//! - RFC 9112 (HTTP/1.1 message syntax): message format and parsing (§2),
//!   request line and targets (§3), status line (§4), field lines (§5),
//!   body length (§6.3), chunked transfer coding (§7.1), smuggling (§11.2).
//! - RFC 9110 (HTTP semantics): methods (§9), CONNECT (§9.3.6), Upgrade
//!   (§7.8), Expect: 100-continue (§10.1.1), status codes (§15),
//!   Content-Length (§8.6), Authorization (§11.6.2), userinfo (§4.2.4).
//! - RFC 1945 §4.1 (HTTP/0.9 simple requests), RFC 7617 (Basic),
//!   RFC 7616 (Digest), RFC 6750 (Bearer), RFC 4648 §4 (base64).
//!
//! Layout: [`parser`] (heads, framing rules, probe; uses `httparse`),
//! [`chunked`] (chunked decoder), [`fields`] (field value semantics),
//! [`session`] (per-flow state), [`events`] (what the session emits),
//! [`counts`], [`log`] and [`normalize`] (what the rest of spanwatch makes of
//! the events).

pub mod chunked;
pub mod counts;
pub mod events;
pub mod fields;
pub mod log;
pub mod normalize;
pub mod parser;
pub mod session;

pub use counts::HttpCounts;
pub use events::{
    AnomalyEffect, AnomalyKind, Auth, BODY_HEAD_BYTES, BodyHead, HttpAnomaly, HttpBody, HttpEvent,
    HttpRequest, HttpResponse, Method, TunnelKind, Version,
};
pub use parser::probe;
pub use session::{HttpLimits, HttpSession, HttpStats};

use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;
use crate::proto::contract::{CountsView, Protocol};
use crate::proto::norm::{Event, NormContext};

/// SSDP's multicast port (UPnP Device Architecture 2.0 §1.1): HTTP messages
/// over UDP, one per datagram.
pub const SSDP_PORT: u16 = 1900;

/// HTTP/1.x over TCP, and SSDP over UDP.
pub struct Http;

impl Protocol for Http {
    const NAME: &'static str = "http";
    const FLOW_KIND: &'static str = "http.flow";
    const TCP_PORTS: &'static [u16] = &[80, 81, 591, 8000, 8008, 8080, 8081, 8888];
    const UDP_PORTS: &'static [u16] = &[SSDP_PORT];

    type Limits = HttpLimits;
    type Session = HttpSession;
    type Event = HttpEvent;
    type Counts = HttpCounts;
    type Record<'a> = log::HttpRecord<'a>;

    fn probe_stream(first: &[u8], dir: Direction) -> Probe {
        probe(first, dir)
    }

    fn session(limits: &HttpLimits) -> HttpSession {
        HttpSession::new(limits.clone())
    }

    fn on_data(
        s: &mut HttpSession,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut Vec<HttpEvent>,
    ) {
        s.on_data(ts, dir, data, out);
    }

    fn on_gap(
        s: &mut HttpSession,
        ts: Timestamp,
        dir: Direction,
        len: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        s.on_gap(ts, dir, len, out);
    }

    /// Each SSDP datagram is one whole HTTP message: parse it, then close it
    /// off so a lost or malformed one cannot stall the next.
    fn on_datagram(
        s: &mut HttpSession,
        ts: Timestamp,
        dir: Direction,
        payload: &[u8],
        out: &mut Vec<HttpEvent>,
    ) {
        s.on_data(ts, dir, payload, out);
        s.on_gap(ts, dir, 0, out);
    }

    fn on_close(s: &mut HttpSession, ts: Timestamp, out: &mut Vec<HttpEvent>) {
        s.on_close(ts, out);
    }

    fn count_flow(c: &mut HttpCounts) {
        c.flows += 1;
    }

    fn count(c: &mut HttpCounts, ev: &HttpEvent) {
        c.count(ev);
    }

    fn view(c: &HttpCounts) -> CountsView<'_> {
        CountsView {
            flows: c.flows,
            messages: vec![("request", c.requests), ("response", c.responses)],
            anomalies: &c.anomalies,
        }
    }

    fn log_record(ev: &HttpEvent) -> Option<(Option<Direction>, log::HttpRecord<'_>)> {
        Some(log::record(ev))
    }

    fn normalize<'e>(ev: &'e HttpEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
        normalize::normalize(ev, cx, out);
    }
}
