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
//! [`session`] (per-flow state), [`events`] (what the session emits).

#![forbid(unsafe_code)]

pub mod chunked;
pub mod events;
pub mod fields;
pub mod parser;
pub mod session;

pub use events::{
    AnomalyEffect, AnomalyKind, Auth, BODY_HEAD_BYTES, BodyHead, HttpAnomaly, HttpBody, HttpEvent,
    HttpRequest, HttpResponse, Method, TunnelKind, Version,
};
pub use parser::probe;
pub use session::{HttpLimits, HttpSession, HttpStats};
