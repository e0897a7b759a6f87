//! HTTP/1.x: drives an `HttpSession` with the scheduled chunks and gaps of
//! the input (see `spanwatch_fuzz`), checks the documented bounds of every
//! event and the session counters, then runs the probe and the stateless
//! head, framing, chunked and Authorization parsers on the payload.

use crate::{Input, assert_chars_capped, replay};
use httparse::EMPTY_HEADER;
use spanwatch::flow::Direction;
use spanwatch::proto::http::chunked::ChunkedDecoder;
use spanwatch::proto::http::events::MAX_METHOD_BYTES;
use spanwatch::proto::http::fields::{MAX_SCHEME_BYTES, parse_authorization, redacted_line};
use spanwatch::proto::http::parser::{
    HeadEnd, MAX_DETAIL_BYTES, MAX_HEADERS_HARD_CAP, MAX_ISSUES_PER_HEAD, find_head_end,
    parse_request_head, parse_response_head, request_framing, response_framing, summarize_fields,
};
use spanwatch::proto::http::{
    Auth, BODY_HEAD_BYTES, HttpEvent, HttpLimits, HttpSession, HttpStats, Method, TunnelKind, probe,
};

/// Longest anomaly detail: a fixed sentence (under 128 bytes) and evidence
/// escaped (`\xNN`, 4 bytes per input byte) from at most `MAX_DETAIL_BYTES`
/// input bytes, plus "...".
const MAX_DETAIL_LEN: usize = 128 + 4 * MAX_DETAIL_BYTES + 3;

fn tiny_limits() -> HttpLimits {
    HttpLimits {
        max_head_bytes: 200,
        max_headers: 4,
        max_pending_requests: 2,
        max_uri_bytes: 16,
        max_field_bytes: 8,
        max_chunk_line_bytes: 16,
        max_trailer_bytes: 32,
    }
}

/// Events of each kind seen, to compare with the session's counters.
#[derive(Default)]
struct Tally {
    requests: u64,
    responses: u64,
    bodies: u64,
    anomalies: u64,
}

fn check_method(m: &Method) {
    if let Method::Unknown(name) = m {
        assert!(name.len() <= MAX_METHOD_BYTES, "method {name:?}");
    }
}

fn check_auth(auth: &Auth, max_user: usize) {
    match auth {
        Auth::Basic {
            user,
            has_password,
            password_len,
            ..
        } => {
            assert_chars_capped(user, max_user, "basic user");
            assert!(*has_password || *password_len == 0);
        }
        Auth::Digest { user: Some(user) } => assert_chars_capped(user, max_user, "digest user"),
        Auth::Other(scheme) => assert_chars_capped(scheme, MAX_SCHEME_BYTES, "auth scheme"),
        Auth::None | Auth::Digest { user: None } | Auth::Bearer => {}
    }
}

fn check_events(events: &[HttpEvent], limits: &HttpLimits, tally: &mut Tally) {
    let field = limits.max_field_bytes;
    for ev in events {
        match ev {
            HttpEvent::Request(r) => {
                tally.requests += 1;
                check_method(&r.method);
                assert_chars_capped(&r.uri, limits.max_uri_bytes, "uri");
                for s in [
                    r.host.as_deref(),
                    r.user_agent.as_deref(),
                    r.content_type.as_deref(),
                ]
                .into_iter()
                .flatten()
                {
                    assert_chars_capped(s, field, "request field");
                }
                check_auth(&r.auth, field);
            }
            HttpEvent::Response(r) => {
                tally.responses += 1;
                assert_chars_capped(&r.reason, field, "reason");
                if let Some(ct) = &r.content_type {
                    assert_chars_capped(ct, field, "content-type");
                }
                if let Some(server) = &r.server {
                    assert_chars_capped(server, field, "server");
                }
                if let Some(m) = &r.request_method {
                    check_method(m);
                }
            }
            HttpEvent::Body(b) => {
                tally.bodies += 1;
                assert!(b.head.len() <= BODY_HEAD_BYTES);
                assert!(b.total_len >= b.head.len() as u64, "{b:?}");
            }
            HttpEvent::Tunnel(TunnelKind::Connect { authority }) => {
                assert_chars_capped(authority, limits.max_uri_bytes, "authority");
            }
            HttpEvent::Tunnel(TunnelKind::Upgrade { protocol }) => {
                assert_chars_capped(protocol, field, "upgrade");
            }
            HttpEvent::Anomaly(a) => {
                tally.anomalies += 1;
                assert!(
                    a.detail.len() <= MAX_DETAIL_LEN,
                    "{} byte detail: {a:?}",
                    a.detail.len()
                );
            }
        }
    }
}

/// Runs the schedule (see [`replay`]) through a new session; returns its
/// events and final counters.
fn run(
    input: &Input<'_>,
    limits: &HttpLimits,
    piece: Option<usize>,
) -> (Vec<HttpEvent>, HttpStats) {
    let mut s = HttpSession::new(limits.clone());
    let out = replay(&mut s, input, piece);
    (out, s.stats().clone())
}

fn session(input: &Input<'_>, limits: &HttpLimits) {
    let (events, stats) = run(input, limits, None);
    let mut tally = Tally::default();
    check_events(&events, limits, &mut tally);
    let HttpStats {
        requests,
        responses,
        bodies,
        anomalies,
        resyncs,
        stops,
        ..
    } = stats;
    assert_eq!(requests, tally.requests);
    assert_eq!(responses, tally.responses);
    assert_eq!(bodies, tally.bodies);
    assert_eq!(anomalies, tally.anomalies);
    assert!(resyncs + stops <= anomalies);
    let (split, _) = run(input, limits, Some(input.config.piece_len()));
    assert_eq!(events, split, "events depend on how the stream was split");
}

fn stateless(payload: &[u8]) {
    for dir in [Direction::ToServer, Direction::ToClient] {
        let _ = probe(payload, dir);
    }
    let _ = redacted_line(payload, MAX_DETAIL_BYTES);
    if let HeadEnd::Complete(n) = find_head_end(payload, 0) {
        let head = payload.get(..n).expect("head end within the input");
        let mut storage = [EMPTY_HEADER; MAX_HEADERS_HARD_CAP];
        if let Ok(req) = parse_request_head(head, &mut storage) {
            let fields = summarize_fields(head, req.headers);
            let mut issues = req.issues;
            let _ = request_framing(&fields, req.version, &mut issues);
            assert!(issues.len() <= MAX_ISSUES_PER_HEAD);
            if let Some(value) = fields.authorization {
                check_auth(&parse_authorization(value, 16).0, 16);
            }
        }
        let mut storage = [EMPTY_HEADER; MAX_HEADERS_HARD_CAP];
        if let Ok(resp) = parse_response_head(head, &mut storage) {
            let fields = summarize_fields(head, resp.headers);
            for method in [None, Some(Method::Head), Some(Method::Connect)] {
                let mut issues = resp.issues.clone();
                let _ = response_framing(
                    resp.status,
                    method.as_ref(),
                    &fields,
                    resp.version,
                    &mut issues,
                );
                assert!(issues.len() <= MAX_ISSUES_PER_HEAD);
            }
        }
    }
    let mut chunked = ChunkedDecoder::new(16, 64);
    let mut rest = payload;
    while let Ok(step) = chunked.decode(rest) {
        assert!(step.consumed <= rest.len());
        assert!(step.data.len() <= step.consumed);
        if step.done || step.consumed == 0 {
            break;
        }
        rest = rest.get(step.consumed..).unwrap_or_default();
    }
    check_auth(&parse_authorization(payload, 16).0, 16);
}

/// One fuzz input: the body of the `http` fuzz target, also replayed over the
/// committed corpus by `tests/corpus.rs` on stable.
pub fn fuzz_one(data: &[u8]) {
    let input = Input::parse(data);
    let limits = if input.config.tiny_limits() {
        tiny_limits()
    } else {
        HttpLimits::default()
    };
    session(&input, &limits);
    stateless(input.payload);
}
