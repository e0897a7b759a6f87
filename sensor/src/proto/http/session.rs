//! Per-flow HTTP/1.x state: streaming heads and bodies in both directions,
//! request/response pairing, tunnels, gaps and resynchronisation.
//!
//! Each direction is a small state machine (head → body → head ...). Bytes
//! are parsed in place when a whole message arrives in one call; only a
//! partial head (bounded by [`HttpLimits::max_head_bytes`]) or a partial line
//! is ever buffered. Body bytes are counted, never buffered: only the first
//! [`BODY_HEAD_BYTES`](super::BODY_HEAD_BYTES) are kept for content sniffing.
//!
//! Pairing (RFC 9112 §9.3: responses come in the order of the requests): a
//! bounded FIFO of the methods of requests not yet answered, so that a
//! response to HEAD has no body (RFC 9112 §6.3 item 1) and a 2xx to CONNECT
//! opens a tunnel (item 2). Interim 1xx responses (RFC 9110 §15.2, e.g. the
//! 100 Continue answers to `Expect: 100-continue`, §10.1.1) do not consume a
//! request. After a loss of sync the FIFO is cleared: pairing restarts with
//! the next request.
//!
//! Loss of sync (garbage, an oversized head, a capture gap that does not fall
//! inside a body) is reported once, then bytes are skipped line by line until
//! a line that starts a message (`method SP target SP HTTP/1.x`, or `HTTP/`
//! and a digit). Framing errors after which no recipient could continue
//! (invalid Content-Length, chunk size overflow, malformed chunks; RFC 9112
//! §6.3 items 4-5) stop the direction instead: guessing there is exactly what
//! request smuggling exploits.

use std::collections::VecDeque;
use std::mem::MaybeUninit;

use httparse::{EMPTY_HEADER, Header};
use serde::{Deserialize, Serialize};

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::events::{
    AnomalyEffect, AnomalyKind, Auth, BodyHead, HttpAnomaly, HttpBody, HttpEvent, HttpRequest,
    HttpResponse, Method, TunnelKind, Version,
};
use super::fields::{parse_authorization, redact_userinfo, redacted_line};
use super::parser::{
    BodyFraming, FieldSummary, HeadEnd, HeadError, HeadIssue, MAX_DETAIL_BYTES,
    MAX_HEADERS_HARD_CAP, RequestLineShape, RequestStart, classify_request_line,
    fields_after_start_line, find_head_end, is_request_line, is_status_line, leading_empty_lines,
    parse_request_head, parse_response_head, parse_strict_request_head, parse_strict_response_head,
    prefix_ci, request_framing, request_start, response_framing, split_first_line,
    summarize_fields,
};
use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;
use crate::proto::inline::InlineStr;
use crate::proto::text::capped;

/// Header field slots a head the strict parser rejected is parsed with
/// first (the lenient path needs initialised slots). Most heads have far
/// fewer fields, and filling all [`MAX_HEADERS_HARD_CAP`] slots for every
/// head cost more than parsing it; a head with more fields than this is
/// parsed again with `HttpLimits::max_headers` slots.
const SMALL_HEADER_STORAGE: usize = 32;

/// Parses a complete head into the given header storage (see
/// [`HttpSession::head`]); `false` when the fields need more storage.
type HeadParser =
    for<'b> fn(&mut HttpSession, &'b [u8], &mut [Header<'b>], usize, &mut Vec<HttpEvent>) -> bool;

/// Bounds on what one HTTP flow may make the session hold or emit (config
/// section `[protocols.http]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Largest head (start line + fields + empty line) buffered; also the
    /// bound on a partial line kept while resynchronising and on data held
    /// while a CONNECT/Upgrade request awaits its answer.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_head_bytes: usize,
    /// Most header fields in one head (at most [`MAX_HEADERS_HARD_CAP`]).
    pub max_headers: usize,
    /// Most requests awaiting a response (pipelining depth).
    pub max_pending_requests: usize,
    /// Bytes of the request-target kept in [`HttpRequest::uri`].
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_uri_bytes: usize,
    /// Bytes kept of other strings (Host, User-Agent, Content-Type, reason
    /// phrase, user names, Upgrade protocol).
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_field_bytes: usize,
    /// Longest chunk-size line, extensions included.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_chunk_line_bytes: usize,
    /// Largest trailer section of a chunked body.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_trailer_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_pending_requests: 64,
            max_uri_bytes: 2048,
            max_field_bytes: 256,
            max_chunk_line_bytes: 4096,
            max_trailer_bytes: 16 * 1024,
        }
    }
}

/// Counters of one session (events are counted as they are emitted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    pub requests: u64,
    pub responses: u64,
    pub bodies: u64,
    pub anomalies: u64,
    /// Times a direction lost sync and started skipping to the next message.
    pub resyncs: u64,
    /// Times a direction stopped being parsed.
    pub stops: u64,
    /// Bytes skipped while resynchronising or after a stop.
    pub discarded_bytes: u64,
    /// Bytes seen (or missing in gaps) after the flow became a tunnel.
    pub tunnel_bytes: u64,
}

/// A request still waiting for its final response.
#[derive(Clone, Debug)]
struct Pending {
    /// `None` for a head whose request line could not be parsed.
    method: Option<Method>,
    http09: bool,
    expect_continue: bool,
    switch: Switch,
}

/// Whether a request may turn the connection into a tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Switch {
    No,
    /// CONNECT to this authority (RFC 9110 §9.3.6).
    Connect(String),
    /// `Upgrade` with `Connection: upgrade` (RFC 9110 §7.8).
    Upgrade,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// What was seen of a body so far.
#[derive(Debug, Default)]
struct Seen {
    total: u64,
    head: BodyHead,
    gap: bool,
}

impl Seen {
    fn track(&mut self, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        self.head.extend(data);
    }

    fn skip(&mut self, missing: u64) {
        self.total = self.total.saturating_add(missing);
        self.gap = true;
    }
}

#[derive(Debug)]
struct Body {
    framing: Framing,
    seen: Seen,
    /// The body was announced with `Expect: 100-continue` and answered with a
    /// final status before any of it arrived: the client may skip it
    /// (RFC 9110 §10.1.1).
    optional: bool,
    /// Hold further client bytes after this body until the CONNECT/Upgrade
    /// request it belongs to is answered.
    then_await_switch: bool,
}

impl Body {
    fn new(framing: Framing, then_await_switch: bool) -> Self {
        Body {
            framing,
            seen: Seen::default(),
            optional: false,
            then_await_switch,
        }
    }
}

#[derive(Debug, Default)]
enum State {
    /// Expecting a start line.
    #[default]
    Head,
    Body(Body),
    /// Client side: holding bytes until a CONNECT/Upgrade request is answered.
    AwaitSwitch,
    /// Opaque bytes (after 101 or a 2xx to CONNECT).
    Tunnel,
    /// Skipping to the next line that starts a message.
    Resync {
        at_line_start: bool,
    },
    /// No longer parsed.
    Stopped,
    /// The flow closed.
    Closed,
}

/// One direction of the flow.
#[derive(Debug, Default)]
struct Half {
    state: State,
    /// Unconsumed bytes (partial head or line), at most `max_head_bytes`.
    buf: Vec<u8>,
    /// Where to resume looking for the end of the pending head.
    scan_from: usize,
    /// The first line of the pending head passed the request-line check.
    line_checked: bool,
}

/// Outcome of one parsing step.
enum Step {
    /// Bytes used; zero only together with a state change.
    Consumed(usize),
    /// Nothing more can be done until more bytes arrive.
    NeedMore,
}

/// Per-flow HTTP/1.x session (RFC 9110, RFC 9112).
#[derive(Debug)]
pub struct HttpSession {
    limits: HttpLimits,
    /// Client to server (requests).
    client: Half,
    /// Server to client (responses).
    server: Half,
    pending: VecDeque<Pending>,
    stats: HttpStats,
}

impl HttpSession {
    pub fn new(limits: HttpLimits) -> Self {
        HttpSession {
            limits,
            client: Half::default(),
            server: Half::default(),
            pending: VecDeque::new(),
            stats: HttpStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// Bytes of the stream in direction `dir`, in order, any split.
    pub fn on_data(
        &mut self,
        _ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut Vec<HttpEvent>,
    ) {
        let start = out.len();
        self.feed(dir, data, out);
        self.count(start, out);
    }

    /// `missing` bytes of direction `dir` were not captured. Skipped inside a
    /// body (the body is then reported incomplete); anywhere else the
    /// direction resynchronises.
    pub fn on_gap(
        &mut self,
        _ts: Timestamp,
        dir: Direction,
        missing: u64,
        out: &mut Vec<HttpEvent>,
    ) {
        if missing == 0 {
            return;
        }
        let start = out.len();
        self.gap(dir, missing, out);
        self.count(start, out);
    }

    /// The flow ended: close-delimited bodies complete, anything else that
    /// was in progress is reported as cut short.
    pub fn on_close(&mut self, _ts: Timestamp, out: &mut Vec<HttpEvent>) {
        let start = out.len();
        for dir in [Direction::ToServer, Direction::ToClient] {
            self.close(dir, out);
        }
        self.count(start, out);
    }

    fn half(&mut self, dir: Direction) -> &mut Half {
        match dir {
            Direction::ToServer => &mut self.client,
            Direction::ToClient => &mut self.server,
        }
    }

    fn count(&mut self, start: usize, out: &[HttpEvent]) {
        for event in out.get(start..).unwrap_or_default() {
            match event {
                HttpEvent::Request(_) => self.stats.requests += 1,
                HttpEvent::Response(_) => self.stats.responses += 1,
                HttpEvent::Body(_) => self.stats.bodies += 1,
                HttpEvent::Tunnel(_) => {}
                HttpEvent::Anomaly(a) => {
                    self.stats.anomalies += 1;
                    match a.effect {
                        AnomalyEffect::Continue => {}
                        AnomalyEffect::Resync => self.stats.resyncs += 1,
                        AnomalyEffect::StopDirection => self.stats.stops += 1,
                    }
                }
            }
        }
    }

    /// Buffers as little as possible: `data` is parsed in place unless a
    /// partial head or line is pending, in which case pieces of `data` are
    /// appended to it until it is used up.
    fn feed(&mut self, dir: Direction, mut data: &[u8], out: &mut Vec<HttpEvent>) {
        let piece_max = self.limits.max_head_bytes.max(1);
        loop {
            let mut buf = std::mem::take(&mut self.half(dir).buf);
            if buf.is_empty() {
                let used = self.run(dir, data, out);
                buf.extend_from_slice(data.get(used..).unwrap_or_default());
                self.half(dir).buf = buf;
                return;
            }
            let (piece, rest) = data.split_at(data.len().min(piece_max));
            data = rest;
            buf.extend_from_slice(piece);
            let used = self.run(dir, &buf, out);
            buf.drain(..used.min(buf.len()));
            self.half(dir).buf = buf;
            if data.is_empty() {
                return;
            }
        }
    }

    /// Parses as much of `input` as possible; returns the bytes used. What is
    /// left is at most `max_head_bytes` (a partial head, line or held data).
    fn run(&mut self, dir: Direction, input: &[u8], out: &mut Vec<HttpEvent>) -> usize {
        let mut pos = 0;
        // Each step uses bytes or changes state; the bound is a backstop.
        let max_steps = input.len().saturating_mul(4).saturating_add(16);
        for _ in 0..max_steps {
            let rest = input.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            let step = match self.half(dir).state {
                State::Head => self.step_head(dir, rest, out),
                State::Body(_) => self.step_body(dir, rest, out),
                State::AwaitSwitch => self.step_await_switch(dir, rest, out),
                State::Resync { at_line_start } => self.step_resync(dir, rest, at_line_start),
                State::Tunnel => {
                    self.stats.tunnel_bytes += rest.len() as u64;
                    Step::Consumed(rest.len())
                }
                State::Stopped | State::Closed => {
                    self.stats.discarded_bytes += rest.len() as u64;
                    Step::Consumed(rest.len())
                }
            };
            match step {
                Step::Consumed(n) => pos += n,
                Step::NeedMore => break,
            }
        }
        pos
    }

    fn anomaly(
        &mut self,
        dir: Direction,
        kind: AnomalyKind,
        detail: String,
        effect: AnomalyEffect,
        out: &mut Vec<HttpEvent>,
    ) {
        match effect {
            AnomalyEffect::Continue => {}
            AnomalyEffect::Resync => self.enter_resync(dir, false),
            AnomalyEffect::StopDirection => self.half(dir).state = State::Stopped,
        }
        out.push(HttpEvent::Anomaly(HttpAnomaly {
            dir,
            kind,
            detail,
            effect,
        }));
    }

    fn issues(&mut self, dir: Direction, issues: Vec<HeadIssue>, out: &mut Vec<HttpEvent>) {
        for issue in issues {
            self.anomaly(dir, issue.kind, issue.detail, AnomalyEffect::Continue, out);
        }
    }

    /// Starts skipping to the next message.
    fn enter_resync(&mut self, dir: Direction, at_line_start: bool) {
        let half = self.half(dir);
        half.state = State::Resync { at_line_start };
        half.scan_from = 0;
        half.line_checked = false;
    }

    /// A client message was given up on; the server will still answer it
    /// (typically 400), so it keeps its place in the pairing FIFO.
    fn lost_request(&mut self, out: &mut Vec<HttpEvent>) {
        self.push_pending(
            Pending {
                method: None,
                http09: false,
                expect_continue: false,
                switch: Switch::No,
            },
            out,
        );
    }

    // ---- heads ------------------------------------------------------------

    fn step_head(&mut self, dir: Direction, rest: &[u8], out: &mut Vec<HttpEvent>) -> Step {
        if dir == Direction::ToClient {
            if let Some(step) = self.bare_http09_reply(rest) {
                return step;
            }
        }
        let skip = leading_empty_lines(rest);
        if skip > 0 {
            return Step::Consumed(skip);
        }
        if !self.half(dir).line_checked {
            if let Some(step) = self.check_start(dir, rest, out) {
                return step;
            }
        }
        // First look at this head (nothing scanned yet): most heads are
        // well-formed, and when one is also whole the strict parser delimits
        // it too. (About half arrive split over segments; trying those costs
        // one partial parse, less than the scans it saves on the others.)
        if self.half(dir).scan_from == 0 {
            if let Some(end) = self.strict_head(dir, rest, out) {
                return Step::Consumed(end);
            }
        }
        let max_head = self.limits.max_head_bytes;
        let half = self.half(dir);
        match find_head_end(rest, half.scan_from) {
            HeadEnd::Complete(end) if end <= max_head => {
                half.scan_from = 0;
                half.line_checked = false;
                let head = rest.get(..end).unwrap_or_default();
                if self.strict_head(dir, head, out).is_none() {
                    match dir {
                        Direction::ToServer => self.head(head, out, Self::request_head_in),
                        Direction::ToClient => self.head(head, out, Self::response_head_in),
                    }
                }
                Step::Consumed(end)
            }
            HeadEnd::Partial { resume } if rest.len() <= max_head => {
                half.scan_from = resume;
                Step::NeedMore
            }
            _ => {
                self.anomaly(
                    dir,
                    AnomalyKind::HeadTooLarge,
                    format!("head longer than {max_head} bytes"),
                    AnomalyEffect::Resync,
                    out,
                );
                if dir == Direction::ToServer {
                    self.lost_request(out);
                }
                Step::Consumed(0)
            }
        }
    }

    /// Handles the head at the start of `rest` when the strict parser accepts
    /// it whole within `max_head_bytes` (see [`parse_strict_request_head`]):
    /// the same head, parsed the same way, as [`find_head_end`] and
    /// [`Self::head`] would. Used on the bytes at hand when a head is first
    /// seen (no separate scan for its end), and on a delimited head (no
    /// header storage to initialise).
    /// Returns the head's length, or `None` having done nothing: the caller
    /// then takes the general path, which also forgives malformed heads.
    fn strict_head(
        &mut self,
        dir: Direction,
        rest: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> Option<usize> {
        let max_head = self.limits.max_head_bytes;
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS_HARD_CAP];
        let storage = slots
            .get_mut(..self.header_storage_len())
            .unwrap_or_default();
        match dir {
            Direction::ToServer => {
                let (end, h) = parse_strict_request_head(rest, storage)?;
                let head = rest.get(..end).filter(|_| end <= max_head)?;
                self.client.line_checked = false;
                let fields = summarize_fields(head, h.headers);
                self.on_request(
                    Some((h.method, h.target, h.version)),
                    &fields,
                    h.issues,
                    out,
                );
                Some(end)
            }
            Direction::ToClient => {
                let (end, h) = parse_strict_response_head(rest, storage)?;
                let head = rest.get(..end).filter(|_| end <= max_head)?;
                self.server.line_checked = false;
                let fields = summarize_fields(head, h.headers);
                self.on_response(h.version, h.status, h.reason, &fields, h.issues, out);
                Some(end)
            }
        }
    }

    /// The reply to an HTTP/0.9 simple request is the bare body until close
    /// (RFC 1945 §4.1), unless the server answered with a status line anyway.
    fn bare_http09_reply(&mut self, rest: &[u8]) -> Option<Step> {
        if !self.pending.front().is_some_and(|p| p.http09) {
            return None;
        }
        match prefix_ci(rest, b"HTTP/") {
            Probe::Match => None,
            Probe::NeedMore => Some(Step::NeedMore),
            Probe::NoMatch => {
                self.pending.pop_front();
                self.server.state = State::Body(Body::new(Framing::UntilClose, false));
                Some(Step::Consumed(0))
            }
        }
    }

    /// Checks the first line of a head before waiting for all of it, so that
    /// non-HTTP bytes are rejected early and HTTP/0.9 requests (which have no
    /// empty line) are recognised. `None`: go on collecting the head.
    fn check_start(
        &mut self,
        dir: Direction,
        rest: &[u8],
        out: &mut Vec<HttpEvent>,
    ) -> Option<Step> {
        let plausible = match dir {
            Direction::ToServer => request_start(rest) != RequestStart::Mismatch,
            Direction::ToClient => prefix_ci(rest, b"HTTP/") != Probe::NoMatch,
        };
        // Resume the search for the end of the first line where the last
        // call stopped, so that a line arriving byte by byte is scanned once.
        let scan_from = self.half(dir).scan_from;
        let line = match rest.get(scan_from..).and_then(|t| memchr::memchr(b'\n', t)) {
            Some(i) => split_first_line(rest.get(..=scan_from + i).unwrap_or_default()),
            None => {
                self.half(dir).scan_from = rest.len();
                None
            }
        };
        if !plausible {
            // Evidence is the first line, or its first MAX_DETAIL_BYTES: wait
            // for that much so the report does not depend on the split.
            let window = rest.get(..MAX_DETAIL_BYTES).unwrap_or(rest);
            let Some((evidence, _)) = split_first_line(window)
                .or_else(|| (window.len() == MAX_DETAIL_BYTES).then_some((window, window.len())))
            else {
                return Some(Step::NeedMore);
            };
            let detail = redacted_line(evidence, MAX_DETAIL_BYTES);
            match dir {
                Direction::ToServer => {
                    self.anomaly(
                        dir,
                        AnomalyKind::InvalidRequestLine,
                        detail,
                        AnomalyEffect::Resync,
                        out,
                    );
                    self.lost_request(out);
                }
                Direction::ToClient => {
                    self.anomaly(
                        dir,
                        AnomalyKind::InvalidStatusLine,
                        detail,
                        AnomalyEffect::Resync,
                        out,
                    );
                }
            }
            return Some(Step::Consumed(0));
        }
        let (line, line_len) = line?;
        if line_len > self.limits.max_head_bytes {
            // Left to the head size check, as while the line is arriving.
            return None;
        }
        if dir == Direction::ToServer {
            match classify_request_line(line) {
                RequestLineShape::Full => {}
                RequestLineShape::Simple => {
                    self.half(dir).scan_from = 0;
                    self.simple_request(line, out);
                    return Some(Step::Consumed(line_len));
                }
                RequestLineShape::Invalid => {
                    let detail = redacted_line(line, MAX_DETAIL_BYTES);
                    self.anomaly(
                        dir,
                        AnomalyKind::InvalidRequestLine,
                        detail,
                        AnomalyEffect::Resync,
                        out,
                    );
                    self.lost_request(out);
                    return Some(Step::Consumed(0));
                }
            }
        }
        self.half(dir).line_checked = true;
        None
    }

    fn header_storage_len(&self) -> usize {
        self.limits.max_headers.clamp(1, MAX_HEADERS_HARD_CAP)
    }

    /// HTTP/0.9 `GET target` (RFC 1945 §4.1): a request by itself.
    fn simple_request(&mut self, line: &[u8], out: &mut Vec<HttpEvent>) {
        let target = line.get(b"GET ".len()..).unwrap_or_default();
        let (uri, had_userinfo) = redact_userinfo(target);
        out.push(HttpEvent::Request(HttpRequest {
            method: Method::Get,
            uri: InlineStr::capped(&uri, self.limits.max_uri_bytes),
            version: Version::Http09,
            host: None,
            user_agent: None,
            content_type: None,
            content_length: None,
            chunked: false,
            auth: Auth::None,
        }));
        self.anomaly(
            Direction::ToServer,
            AnomalyKind::Http09Request,
            "simple request without an HTTP version".to_owned(),
            AnomalyEffect::Continue,
            out,
        );
        if had_userinfo {
            self.userinfo_anomaly(out);
        }
        self.push_pending(
            Pending {
                method: Some(Method::Get),
                http09: true,
                expect_continue: false,
                switch: Switch::No,
            },
            out,
        );
    }

    fn userinfo_anomaly(&mut self, out: &mut Vec<HttpEvent>) {
        self.anomaly(
            Direction::ToServer,
            AnomalyKind::UserinfoInUri,
            "userinfo in request target (password removed)".to_owned(),
            AnomalyEffect::Continue,
            out,
        );
    }

    fn push_pending(&mut self, pending: Pending, out: &mut Vec<HttpEvent>) {
        if self.pending.len() >= self.limits.max_pending_requests {
            let detail = format!(
                "more than {} requests awaiting a response",
                self.limits.max_pending_requests
            );
            self.anomaly(
                Direction::ToServer,
                AnomalyKind::PipelineLimit,
                detail,
                AnomalyEffect::Continue,
                out,
            );
            return;
        }
        self.pending.push_back(pending);
    }

    /// Parses a complete head with `parse`: into a small stack storage first
    /// and, only when its fields do not fit there, again with the full limit.
    fn head(&mut self, head: &[u8], out: &mut Vec<HttpEvent>, parse: HeadParser) {
        let limit = self.header_storage_len();
        let mut small = [EMPTY_HEADER; SMALL_HEADER_STORAGE];
        let storage = small
            .get_mut(..limit.min(SMALL_HEADER_STORAGE))
            .unwrap_or_default();
        if !parse(self, head, storage, limit, out) {
            self.head_full(head, limit, out, parse);
        }
    }

    /// [`Self::head`] for a head with more fields than the small storage
    /// holds.
    #[cold]
    #[inline(never)]
    fn head_full(
        &mut self,
        head: &[u8],
        limit: usize,
        out: &mut Vec<HttpEvent>,
        parse: HeadParser,
    ) {
        let mut full = [EMPTY_HEADER; MAX_HEADERS_HARD_CAP];
        let storage = full.get_mut(..limit).unwrap_or_default();
        parse(self, head, storage, limit, out);
    }

    /// Parses a request head with `storage` for its fields. Returns `false`,
    /// having emitted nothing, when the fields do not fit in `storage` but
    /// may fit in `limit` slots: the caller then retries with more storage.
    fn request_head_in<'b>(
        &mut self,
        head: &'b [u8],
        storage: &mut [Header<'b>],
        limit: usize,
        out: &mut Vec<HttpEvent>,
    ) -> bool {
        let storage_len = storage.len();
        let parsed = match parse_request_head(head, storage) {
            Ok(h) => Ok((
                Some((h.method, h.target, h.version)),
                summarize_fields(head, h.headers),
                h.issues,
            )),
            Err(HeadError::TooManyHeaders(n)) => Err(n),
            Err(_) => {
                // Unusable request line: keep the fields to stay in step.
                let line = split_first_line(head).map_or(head, |(l, _)| l);
                let mut issues = vec![HeadIssue {
                    kind: AnomalyKind::InvalidRequestLine,
                    detail: redacted_line(line, MAX_DETAIL_BYTES),
                }];
                match fields_after_start_line(head, storage, &mut issues) {
                    Ok(headers) => Ok((None, summarize_fields(head, headers), issues)),
                    Err(HeadError::TooManyHeaders(n)) => Err(n),
                    Err(_) => Err(storage.len()),
                }
            }
        };
        match parsed {
            Ok((line, fields, issues)) => self.on_request(line, &fields, issues, out),
            Err(_) if storage_len < limit => return false,
            Err(n) => {
                self.too_many_headers(Direction::ToServer, n, out);
                self.lost_request(out);
            }
        }
        true
    }

    fn too_many_headers(&mut self, dir: Direction, limit: usize, out: &mut Vec<HttpEvent>) {
        self.anomaly(
            dir,
            AnomalyKind::TooManyHeaders,
            format!("more than {limit} header fields"),
            AnomalyEffect::Resync,
            out,
        );
        // The head itself was complete: the next line is a line start.
        self.enter_resync(dir, true);
    }

    fn on_request(
        &mut self,
        line: Option<(&str, &[u8], Version)>,
        fields: &FieldSummary<'_>,
        mut issues: Vec<HeadIssue>,
        out: &mut Vec<HttpEvent>,
    ) {
        let version = line.map_or(Version::Http11, |(_, _, v)| v);
        let framing = request_framing(fields, version, &mut issues);
        let mut pending = Pending {
            method: None,
            http09: false,
            expect_continue: fields.expect_continue,
            switch: Switch::No,
        };
        if let Some((method, target, version)) = line {
            let method = Method::from_token(method);
            let (uri, had_userinfo) = redact_userinfo(target);
            let uri = InlineStr::capped(&uri, self.limits.max_uri_bytes);
            if had_userinfo {
                issues.push(HeadIssue {
                    kind: AnomalyKind::UserinfoInUri,
                    detail: "userinfo in request target (password removed)".to_owned(),
                });
            }
            // RFC 9112 §3.2: exactly one Host in an HTTP/1.1 request.
            if version == Version::Http11 && fields.host_count != 1 {
                issues.push(HeadIssue {
                    kind: AnomalyKind::InvalidHost,
                    detail: format!("{} Host fields in an HTTP/1.1 request", fields.host_count),
                });
            }
            let max = self.limits.max_field_bytes;
            let auth = match fields.authorization {
                None => Auth::None,
                Some(value) => {
                    let (auth, error) = parse_authorization(value, max);
                    if let Some(e) = error {
                        issues.push(HeadIssue {
                            kind: AnomalyKind::InvalidAuthorization,
                            detail: e.to_string(),
                        });
                    }
                    auth
                }
            };
            pending.switch = if method == Method::Connect {
                Switch::Connect(uri.as_str().to_owned())
            } else if fields.upgrade.is_some() && fields.connection_upgrade {
                Switch::Upgrade
            } else {
                Switch::No
            };
            pending.method = Some(method.clone());
            out.push(HttpEvent::Request(HttpRequest {
                method,
                uri,
                version,
                host: fields.host.map(|v| InlineStr::capped(v, max)),
                user_agent: fields.user_agent.map(|v| InlineStr::capped(v, max)),
                content_type: fields.content_type.map(|v| InlineStr::capped(v, max)),
                content_length: fields.content_length.value(),
                chunked: framing == Ok(BodyFraming::Chunked),
                auth,
            }));
        }
        self.issues(Direction::ToServer, issues, out);
        let await_switch = pending.switch != Switch::No;
        self.push_pending(pending, out);
        self.client.state = match framing {
            Ok(BodyFraming::Length(n)) => State::Body(Body::new(Framing::Length(n), await_switch)),
            Ok(BodyFraming::Chunked) => State::Body(Body::new(self.chunked(), await_switch)),
            Ok(_) if await_switch => State::AwaitSwitch,
            Ok(_) => State::Head,
            Err(issue) => {
                self.anomaly(
                    Direction::ToServer,
                    issue.kind,
                    issue.detail,
                    AnomalyEffect::StopDirection,
                    out,
                );
                return;
            }
        };
    }

    fn chunked(&self) -> Framing {
        Framing::Chunked(ChunkedDecoder::new(
            self.limits.max_chunk_line_bytes,
            self.limits.max_trailer_bytes,
        ))
    }

    /// Parses a response head with `storage` for its fields; `false` as for
    /// [`Self::request_head_in`].
    fn response_head_in<'b>(
        &mut self,
        head: &'b [u8],
        storage: &mut [Header<'b>],
        limit: usize,
        out: &mut Vec<HttpEvent>,
    ) -> bool {
        let storage_len = storage.len();
        let parsed = parse_response_head(head, storage).map(|h| {
            let fields = summarize_fields(head, h.headers);
            (h.version, h.status, h.reason, fields, h.issues)
        });
        match parsed {
            Ok((version, status, reason, fields, issues)) => {
                self.on_response(version, status, reason, &fields, issues, out);
            }
            Err(HeadError::TooManyHeaders(_)) if storage_len < limit => return false,
            Err(HeadError::TooManyHeaders(n)) => {
                self.pending.pop_front();
                self.too_many_headers(Direction::ToClient, n, out);
            }
            Err(_) => {
                let line = split_first_line(head).map_or(head, |(l, _)| l);
                let detail = redacted_line(line, MAX_DETAIL_BYTES);
                self.anomaly(
                    Direction::ToClient,
                    AnomalyKind::InvalidStatusLine,
                    detail,
                    AnomalyEffect::Resync,
                    out,
                );
                self.enter_resync(Direction::ToClient, true);
            }
        }
        true
    }

    fn on_response(
        &mut self,
        version: Version,
        status: u16,
        reason: &[u8],
        fields: &FieldSummary<'_>,
        mut issues: Vec<HeadIssue>,
        out: &mut Vec<HttpEvent>,
    ) {
        // RFC 9110 §15.2: 1xx other than 101 are interim; the request stays queued.
        let interim = (100..200).contains(&status) && status != 101;
        let request = if interim {
            self.pending.front().cloned()
        } else {
            self.pending.pop_front()
        };
        let method = request.as_ref().and_then(|p| p.method.clone());
        let framing = response_framing(status, method.as_ref(), fields, version, &mut issues);
        let max = self.limits.max_field_bytes;
        out.push(HttpEvent::Response(HttpResponse {
            status,
            reason: InlineStr::capped(reason, max),
            version,
            content_type: fields.content_type.map(|v| InlineStr::capped(v, max)),
            content_length: fields.content_length.value(),
            chunked: framing == Ok(BodyFraming::Chunked),
            server: fields.server.map(|v| InlineStr::capped(v, max)),
            request_method: method,
        }));
        self.issues(Direction::ToClient, issues, out);
        self.server.state = match framing {
            Ok(BodyFraming::None) => State::Head,
            Ok(BodyFraming::Length(n)) => State::Body(Body::new(Framing::Length(n), false)),
            Ok(BodyFraming::Chunked) => State::Body(Body::new(self.chunked(), false)),
            Ok(BodyFraming::UntilClose) => State::Body(Body::new(Framing::UntilClose, false)),
            Ok(BodyFraming::Tunnel) => {
                let kind = match (status, request.map(|p| p.switch)) {
                    (101, _) => TunnelKind::Upgrade {
                        protocol: capped(fields.upgrade.unwrap_or_default(), max),
                    },
                    (_, Some(Switch::Connect(authority))) => TunnelKind::Connect { authority },
                    _ => TunnelKind::Connect {
                        authority: String::new(),
                    },
                };
                self.start_tunnel(kind, out);
                return;
            }
            Err(issue) => {
                self.anomaly(
                    Direction::ToClient,
                    issue.kind,
                    issue.detail,
                    AnomalyEffect::StopDirection,
                    out,
                );
                State::Stopped
            }
        };
        if interim {
            return;
        }
        let Some(request) = request else {
            return;
        };
        // A final answer that is not a switch releases the held client
        // bytes: the server reads them as HTTP, and so do we, at once, before
        // any later server bytes (a later 101 answers a later request), so
        // that the events do not depend on how the server's stream is split.
        if request.switch != Switch::No && matches!(self.client.state, State::AwaitSwitch) {
            self.client.state = State::Head;
            self.feed(Direction::ToServer, &[], out);
        }
        if request.expect_continue && self.pending.is_empty() {
            if let State::Body(body) = &mut self.client.state {
                if body.seen.total == 0 && !body.seen.gap {
                    body.optional = true;
                }
            }
        }
    }

    /// Both directions become opaque (RFC 9112 §6.3 item 2; RFC 9110 §15.2.2).
    /// Client bytes held while the request awaited its answer are tunnel
    /// data, as for the server that switched. After an Upgrade request they
    /// are an anomaly: a client cannot use the new protocol before the 101
    /// (RFC 9110 §7.8; a WebSocket client MUST wait for the server's
    /// response, RFC 6455 §4.1). A CONNECT client may send early (e.g. its
    /// TLS ClientHello), RFC 9110 §9.3.6 sets no such rule.
    fn start_tunnel(&mut self, kind: TunnelKind, out: &mut Vec<HttpEvent>) {
        self.server.state = State::Tunnel;
        let held = self.client.buf.len();
        if held > 0
            && matches!(kind, TunnelKind::Upgrade { .. })
            && matches!(self.client.state, State::AwaitSwitch)
        {
            self.anomaly(
                Direction::ToServer,
                AnomalyKind::DataBeforeSwitch,
                format!("{held} client bytes sent before the 101 answer to Upgrade"),
                AnomalyEffect::Continue,
                out,
            );
        }
        if !matches!(self.client.state, State::Closed) {
            self.stats.tunnel_bytes += self.client.buf.len() as u64;
            self.client.buf.clear();
            self.client.state = State::Tunnel;
        }
        self.pending.clear();
        out.push(HttpEvent::Tunnel(kind));
    }

    // ---- bodies -----------------------------------------------------------

    fn step_body(&mut self, dir: Direction, rest: &[u8], out: &mut Vec<HttpEvent>) -> Step {
        let half = self.half(dir);
        let State::Body(body) = &mut half.state else {
            return Step::NeedMore;
        };
        if body.optional {
            match request_start(rest) {
                RequestStart::Undecided => return Step::NeedMore,
                RequestStart::Mismatch => body.optional = false,
                RequestStart::Started => {
                    // The client skipped the body and sent its next request.
                    let next = if body.then_await_switch {
                        State::AwaitSwitch
                    } else {
                        State::Head
                    };
                    half.state = next;
                    return Step::Consumed(0);
                }
            }
        }
        let (used, outcome) = match &mut body.framing {
            Framing::Length(remaining) => {
                let available = rest.len() as u64;
                let take = (*remaining).min(available);
                let data = rest.get(..take as usize).unwrap_or(rest);
                body.seen.track(data);
                *remaining -= take;
                (data.len(), (*remaining == 0).then_some(Ok(())))
            }
            Framing::UntilClose => {
                body.seen.track(rest);
                (rest.len(), None)
            }
            Framing::Chunked(decoder) => match decoder.decode(rest) {
                Ok(step) => {
                    body.seen.track(step.data);
                    (step.consumed, step.done.then_some(Ok(())))
                }
                Err(e) => (0, Some(Err(e))),
            },
        };
        match outcome {
            None => {}
            Some(Ok(())) => self.finish_body(dir, true, out),
            Some(Err(e)) => {
                self.finish_body(dir, false, out);
                let kind = match e {
                    ChunkedError::SizeOverflow => AnomalyKind::ChunkSizeOverflow,
                    ChunkedError::TrailerTooLarge(_) => AnomalyKind::TrailerTooLarge,
                    _ => AnomalyKind::InvalidChunk,
                };
                self.anomaly(dir, kind, e.to_string(), AnomalyEffect::StopDirection, out);
            }
        }
        Step::Consumed(used)
    }

    /// Ends the current body and emits it (when it has bytes, or was cut short).
    fn finish_body(&mut self, dir: Direction, complete: bool, out: &mut Vec<HttpEvent>) {
        let half = self.half(dir);
        let next = match &half.state {
            State::Body(body) if body.then_await_switch => State::AwaitSwitch,
            State::Body(_) => State::Head,
            _ => return,
        };
        let State::Body(body) = std::mem::replace(&mut half.state, next) else {
            return;
        };
        let seen = body.seen;
        let complete = complete && !seen.gap;
        if seen.total > 0 || !complete {
            out.push(HttpEvent::Body(HttpBody {
                dir,
                total_len: seen.total,
                head: seen.head,
                complete,
            }));
        }
    }

    fn step_await_switch(&mut self, dir: Direction, rest: &[u8], out: &mut Vec<HttpEvent>) -> Step {
        let max_head = self.limits.max_head_bytes;
        if rest.len() <= max_head {
            return Step::NeedMore;
        }
        let detail = format!("more than {max_head} bytes before the answer to CONNECT/Upgrade");
        self.anomaly(
            dir,
            AnomalyKind::BufferLimit,
            detail,
            AnomalyEffect::StopDirection,
            out,
        );
        Step::Consumed(0)
    }

    // ---- resynchronisation ------------------------------------------------

    /// Skips whole lines until one starts a message. A partial line is kept
    /// (bounded) when it begins at a line start, so that it can be checked
    /// once complete; `scan_from` remembers how much of it has no LF.
    fn step_resync(&mut self, dir: Direction, rest: &[u8], at_line_start: bool) -> Step {
        let max_head = self.limits.max_head_bytes;
        let mut pos = 0;
        let mut at_start = at_line_start;
        let mut search_from = self.half(dir).scan_from;
        let mut keep_scan = 0;
        let found = loop {
            let tail = rest.get(pos..).unwrap_or_default();
            let lf = tail
                .get(search_from..)
                .and_then(|t| memchr::memchr(b'\n', t))
                .map(|i| search_from + i);
            search_from = 0;
            let Some(lf) = lf else {
                if !at_start || tail.len() > max_head {
                    pos = rest.len();
                    at_start = false;
                } else {
                    keep_scan = tail.len();
                }
                break false;
            };
            if at_start {
                let line = tail.get(..lf).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let starts = match dir {
                    Direction::ToServer => is_request_line(line),
                    Direction::ToClient => is_status_line(line),
                };
                // The bytes before the LF (a CR included) are held to the
                // same bound as a partial line above, so whether the line is
                // taken does not depend on where the stream was split.
                if starts && lf <= max_head {
                    break true;
                }
            }
            pos += lf + 1;
            at_start = true;
        };
        self.stats.discarded_bytes += pos as u64;
        self.half(dir).scan_from = keep_scan;
        self.half(dir).state = if found {
            State::Head
        } else {
            State::Resync {
                at_line_start: at_start,
            }
        };
        if pos == 0 && !found {
            Step::NeedMore
        } else {
            Step::Consumed(pos)
        }
    }

    // ---- gaps and close ---------------------------------------------------

    fn gap(&mut self, dir: Direction, missing: u64, out: &mut Vec<HttpEvent>) {
        let half = self.half(dir);
        let buffered = !half.buf.is_empty();
        match &mut half.state {
            State::Tunnel => {
                self.stats.tunnel_bytes = self.stats.tunnel_bytes.saturating_add(missing);
                return;
            }
            State::Stopped | State::Closed => return,
            State::Resync { .. } => {
                half.buf.clear();
                half.scan_from = 0;
                half.state = State::Resync {
                    at_line_start: true,
                };
                return;
            }
            State::Body(body) if !buffered => {
                let absorbed = match &mut body.framing {
                    Framing::Length(remaining) if missing <= *remaining => {
                        *remaining -= missing;
                        true
                    }
                    Framing::UntilClose => true,
                    Framing::Chunked(decoder) => decoder.skip_data(missing),
                    Framing::Length(_) => false,
                };
                if absorbed {
                    body.seen.skip(missing);
                    if matches!(body.framing, Framing::Length(0)) {
                        self.finish_body(dir, false, out);
                    }
                    return;
                }
            }
            _ => {}
        }
        self.finish_body(dir, false, out);
        let half = self.half(dir);
        half.buf.clear();
        self.anomaly(
            dir,
            AnomalyKind::GapLostSync,
            format!("{missing} bytes missing outside a body"),
            AnomalyEffect::Resync,
            out,
        );
        // Bytes after a gap may start anywhere; the start-line check is strict
        // enough to test the first (partial) line too. Messages may have been
        // lost, so the pairing restarts with the next request.
        self.enter_resync(dir, true);
        self.pending.clear();
    }

    fn close(&mut self, dir: Direction, out: &mut Vec<HttpEvent>) {
        let half = self.half(dir);
        let buffered = std::mem::take(&mut half.buf);
        match &half.state {
            State::Body(body) => {
                let complete = matches!(body.framing, Framing::UntilClose);
                self.finish_body(dir, complete, out);
            }
            State::Head if !buffered.is_empty() => {
                if dir == Direction::ToClient && self.pending.front().is_some_and(|p| p.http09) {
                    // A bare HTTP/0.9 reply shorter than "HTTP/".
                    let mut body = Body::new(Framing::UntilClose, false);
                    body.seen.track(&buffered);
                    self.server.state = State::Body(body);
                    self.finish_body(dir, true, out);
                } else {
                    let detail = format!("{} bytes of an unfinished head", buffered.len());
                    self.anomaly(
                        dir,
                        AnomalyKind::TruncatedHead,
                        detail,
                        AnomalyEffect::Continue,
                        out,
                    );
                }
            }
            _ => {}
        }
        self.half(dir).state = State::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::BODY_HEAD_BYTES;
    use Direction::{ToClient as S2C, ToServer as C2S};

    fn t() -> Timestamp {
        Timestamp(0)
    }

    /// Feeds a transcript (direction, bytes) in order, then closes if asked.
    fn run_with(limits: HttpLimits, parts: &[(Direction, &[u8])], close: bool) -> Vec<HttpEvent> {
        let mut s = HttpSession::new(limits);
        let mut out = Vec::new();
        for (dir, bytes) in parts {
            s.on_data(t(), *dir, bytes, &mut out);
        }
        if close {
            s.on_close(t(), &mut out);
        }
        out
    }

    fn run(parts: &[(Direction, &[u8])]) -> Vec<HttpEvent> {
        run_with(HttpLimits::default(), parts, true)
    }

    fn requests(events: &[HttpEvent]) -> Vec<&HttpRequest> {
        events
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Request(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn responses(events: &[HttpEvent]) -> Vec<&HttpResponse> {
        events
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Response(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn bodies(events: &[HttpEvent]) -> Vec<&HttpBody> {
        events
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Body(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    fn anomalies(events: &[HttpEvent]) -> Vec<(AnomalyKind, AnomalyEffect)> {
        events
            .iter()
            .filter_map(|e| match e {
                HttpEvent::Anomaly(a) => Some((a.kind, a.effect)),
                _ => None,
            })
            .collect()
    }

    fn methods(events: &[HttpEvent]) -> Vec<&str> {
        requests(events).iter().map(|r| r.method.as_str()).collect()
    }

    fn statuses(events: &[HttpEvent]) -> Vec<u16> {
        responses(events).iter().map(|r| r.status).collect()
    }

    const HELLO_REQUEST: &[u8] = b"GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n";
    const HELLO_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Mon, 27 Jul 2009 12:28:53 GMT\r\nServer: Apache\r\nLast-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\nETag: \"34aa387-d-1568eb00\"\r\nAccept-Ranges: bytes\r\nContent-Length: 51\r\nVary: Accept-Encoding\r\nContent-Type: text/plain\r\n\r\nHello World! My content includes a trailing CRLF.\r\n";

    #[test]
    fn rfc9110_3_9_example_exchange() {
        let events = run(&[(C2S, HELLO_REQUEST), (S2C, HELLO_RESPONSE)]);
        assert_eq!(
            events,
            vec![
                HttpEvent::Request(HttpRequest {
                    method: Method::Get,
                    uri: "/hello.txt".into(),
                    version: Version::Http11,
                    host: Some("www.example.com".into()),
                    user_agent: Some("curl/7.64.1".into()),
                    content_type: None,
                    content_length: None,
                    chunked: false,
                    auth: Auth::None,
                }),
                HttpEvent::Response(HttpResponse {
                    status: 200,
                    reason: "OK".into(),
                    version: Version::Http11,
                    content_type: Some("text/plain".into()),
                    content_length: Some(51),
                    chunked: false,
                    server: Some("Apache".into()),
                    request_method: Some(Method::Get),
                }),
                HttpEvent::Body(HttpBody {
                    dir: S2C,
                    total_len: 51,
                    head: BodyHead::new(b"Hello World! My content includes a trailing CRLF.\r\n"),
                    complete: true,
                }),
            ]
        );
    }

    /// A client stream exercising most paths: leading empty line (RFC 9112
    /// §2.2), pipelining, a chunked body with extensions and trailers
    /// (§7.1.1, §7.1.2), a Content-Length body, a lenient request line.
    const CLIENT: &[u8] = b"\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n\
POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n\
HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n\
PUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz\
GET  /d HTTP/1.1\r\nHost: h\r\n\r\n";

    /// Answers: 200 chunked, 100 Continue + 201, 200 to HEAD (no body despite
    /// Content-Length), 204, 304, then a close-delimited 200.
    const SERVER: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok\
HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n\
HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n\
HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n\
HTTP/1.0 200 OK\r\n\r\nuntil close";

    #[test]
    fn pipelined_transcript_events() {
        let events = run(&[(C2S, CLIENT), (S2C, SERVER)]);
        assert_eq!(methods(&events), ["GET", "POST", "HEAD", "PUT", "GET"]);
        assert_eq!(statuses(&events), [200, 100, 201, 200, 204, 304, 200]);
        let paired: Vec<_> = responses(&events)
            .iter()
            .map(|r| r.request_method.as_ref().map(Method::as_str))
            .collect();
        // The 100 is interim (RFC 9110 §15.2): it and the 201 both answer POST;
        // the final 200 answers the fifth request.
        assert_eq!(
            paired,
            [
                Some("GET"),
                Some("POST"),
                Some("POST"),
                Some("HEAD"),
                Some("PUT"),
                Some("GET"),
                None
            ]
        );
        let b: Vec<_> = bodies(&events)
            .iter()
            .map(|b| (b.dir, b.total_len, b.head.to_vec(), b.complete))
            .collect();
        assert_eq!(
            b,
            [
                (C2S, 9, b"Wikipedia".to_vec(), true),
                (C2S, 3, b"xyz".to_vec(), true),
                (S2C, 3, b"abc".to_vec(), true),
                (S2C, 2, b"ok".to_vec(), true),
                (S2C, 11, b"until close".to_vec(), true),
            ]
        );
        let r = requests(&events);
        assert!(r[1].chunked);
        assert_eq!(r[3].content_length, Some(3));
        // "GET  /d": accepted with evidence (RFC 9112 §3 lenient parsing).
        assert_eq!(r[4].uri, "/d");
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::InvalidRequestLine, AnomalyEffect::Continue)]
        );
    }

    fn feed_split(data: &[(Direction, Vec<Vec<u8>>)]) -> Vec<HttpEvent> {
        let mut s = HttpSession::new(HttpLimits::default());
        let mut out = Vec::new();
        for (dir, pieces) in data {
            for piece in pieces {
                s.on_data(t(), *dir, piece, &mut out);
            }
        }
        s.on_close(t(), &mut out);
        out
    }

    #[test]
    fn split_at_every_byte_offset_equals_whole() {
        let whole = run(&[(C2S, CLIENT), (S2C, SERVER)]);
        for k in 0..=CLIENT.len() {
            let (a, b) = CLIENT.split_at(k);
            let events = feed_split(&[
                (C2S, vec![a.to_vec(), b.to_vec()]),
                (S2C, vec![SERVER.to_vec()]),
            ]);
            assert_eq!(events, whole, "client split at {k}");
        }
        for k in 0..=SERVER.len() {
            let (a, b) = SERVER.split_at(k);
            let events = feed_split(&[
                (C2S, vec![CLIENT.to_vec()]),
                (S2C, vec![a.to_vec(), b.to_vec()]),
            ]);
            assert_eq!(events, whole, "server split at {k}");
        }
        let bytes = |d: &[u8]| d.iter().map(|&b| vec![b]).collect::<Vec<_>>();
        let events = feed_split(&[(C2S, bytes(CLIENT)), (S2C, bytes(SERVER))]);
        assert_eq!(events, whole, "byte at a time");
    }

    #[test]
    fn split_invariance_of_anomaly_paths() {
        let client: &[u8] = b"\x16\x03\x01 garbage line\r\nGET /ok HTTP/1.1\r\nHost: h\r\n\r\n\
OPTIONS\nHost: x\n\n\
GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n";
        let server: &[u8] =
            b"SSH-2.0-OpenSSH_8.9p1\r\nHTTP/1.0 2XX OK\r\nContent-Length:4\r\n\r\ntoto\
http/1.1 400 Bad\r\ncontent-length: 0\r\n\r\n";
        let whole = run(&[(C2S, client), (S2C, server)]);
        assert!(!anomalies(&whole).is_empty());
        for k in 0..=client.len() {
            let (a, b) = client.split_at(k);
            let events = feed_split(&[
                (C2S, vec![a.to_vec(), b.to_vec()]),
                (S2C, vec![server.to_vec()]),
            ]);
            assert_eq!(events, whole, "client split at {k}");
        }
        for k in 0..=server.len() {
            let (a, b) = server.split_at(k);
            let events = feed_split(&[
                (C2S, vec![client.to_vec()]),
                (S2C, vec![a.to_vec(), b.to_vec()]),
            ]);
            assert_eq!(events, whole, "server split at {k}");
        }
    }

    #[test]
    fn head_204_304_and_1xx_have_no_body() {
        // RFC 9112 §6.3 item 1: the Content-Length of these is not a body length.
        let events = run(&[
            (C2S, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\nContent-Type: text/html\r\n\r\n\
HTTP/1.1 204 No Content\r\nContent-Length: 20\r\n\r\n\
HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ]);
        assert_eq!(statuses(&events), [200, 204, 304]);
        assert_eq!(responses(&events)[0].content_length, Some(20));
        assert!(bodies(&events).is_empty());
        assert!(anomalies(&events).is_empty());
    }

    #[test]
    fn multiple_100_continue_before_the_final_response() {
        // RFC 9110 §10.1.1 (Expect) and §15.2.1 (100 Continue).
        let events = run(&[
            (C2S, b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
            (S2C, b"HTTP/1.1 100 Continue\r\n\r\n"),
            (S2C, b"HTTP/1.1 100 Continue\r\n\r\n"),
            (C2S, b"hello"),
            (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ]);
        assert_eq!(statuses(&events), [100, 100, 200, 200]);
        let paired: Vec<_> = responses(&events)
            .iter()
            .map(|r| r.request_method.clone())
            .collect();
        assert_eq!(
            paired,
            [
                Some(Method::Post),
                Some(Method::Post),
                Some(Method::Post),
                None
            ]
        );
        assert_eq!(bodies(&events).len(), 1);
        assert_eq!(bodies(&events)[0].total_len, 5);
    }

    #[test]
    fn expect_continue_refused_body_never_sent() {
        // The server answers 401 before the body; the client sends its next
        // request instead of the announced 100 bytes (RFC 9110 §10.1.1).
        let events = run(&[
            (C2S, b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"),
            (S2C, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"),
            (C2S, b"GET /retry HTTP/1.1\r\nHost: h\r\n\r\n"),
        ]);
        assert_eq!(methods(&events), ["PUT", "GET"]);
        assert!(bodies(&events).is_empty());
        // Without Expect, the same 32 bytes are the body.
        let events = run(&[
            (
                C2S,
                b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 32\r\n\r\n",
            ),
            (
                S2C,
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
            ),
            (C2S, b"GET /retry HTTP/1.1\r\nHost: h\r\n\r\n"),
        ]);
        assert_eq!(methods(&events), ["PUT"]);
        assert_eq!(
            (bodies(&events)[0].total_len, bodies(&events)[0].complete),
            (32, true)
        );
    }

    #[test]
    fn connect_tunnel_rfc9110_9_3_6() {
        let events = run(&[
            (
                C2S,
                b"CONNECT server.example.com:80 HTTP/1.1\r\nHost: server.example.com\r\n\r\n",
            ),
            (C2S, b"\x16\x03\x01early"),
            (
                S2C,
                b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n\x16\x03\x03server",
            ),
            (C2S, b"GET /inside HTTP/1.1\r\nHost: x\r\n\r\n"),
            (S2C, b"HTTP/1.1 200 OK\r\n\r\n"),
        ]);
        assert_eq!(methods(&events), ["CONNECT"]);
        assert_eq!(statuses(&events), [200]);
        assert!(events.contains(&HttpEvent::Tunnel(TunnelKind::Connect {
            authority: "server.example.com:80".into()
        })));
        assert!(bodies(&events).is_empty());
        assert!(anomalies(&events).is_empty());
    }

    #[test]
    fn connect_refused_resumes_request_parsing() {
        let events = run(&[
            (C2S, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n"),
            (S2C, b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
        ]);
        assert_eq!(methods(&events), ["CONNECT", "GET"]);
        assert!(!events.iter().any(|e| matches!(e, HttpEvent::Tunnel(_))));
    }

    #[test]
    fn upgrade_101_rfc9110_7_8() {
        let events = run(&[
            (C2S, b"GET /hello HTTP/1.1\r\nHost: www.example.com\r\nConnection: upgrade\r\nUpgrade: websocket, IRC/6.9, RTA/x11\r\n\r\n"),
            (S2C, b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
            (C2S, b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
        ]);
        assert_eq!(methods(&events), ["GET"]);
        assert_eq!(statuses(&events), [101]);
        assert!(events.contains(&HttpEvent::Tunnel(TunnelKind::Upgrade {
            protocol: "websocket".into()
        })));
        assert!(bodies(&events).is_empty() && anomalies(&events).is_empty());
    }

    /// RFC 6455 §1.2 opening handshake, then the masked "Hello" frame of
    /// §5.7 sent before the server's answer.
    const WS_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const WS_EARLY_FRAME: &[u8] = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    const WS_SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05Hello";

    /// The events of `parts`, with one part given in two calls split at
    /// `split` = (part, offset).
    fn run_split(parts: &[(Direction, &[u8])], split: Option<(usize, usize)>) -> Vec<HttpEvent> {
        let mut s = HttpSession::new(HttpLimits::default());
        let mut out = Vec::new();
        for (i, (dir, bytes)) in parts.iter().enumerate() {
            match split {
                Some((part, at)) if part == i => {
                    let (a, b) = bytes.split_at(at);
                    s.on_data(t(), *dir, a, &mut out);
                    s.on_data(t(), *dir, b, &mut out);
                }
                _ => s.on_data(t(), *dir, bytes, &mut out),
            }
        }
        s.on_close(t(), &mut out);
        out
    }

    /// Splitting any part at any offset gives the events of the whole parts.
    fn assert_split_independent(parts: &[(Direction, &[u8])]) -> Vec<HttpEvent> {
        let whole = run_split(parts, None);
        for (i, (_, bytes)) in parts.iter().enumerate() {
            for at in 1..bytes.len() {
                assert_eq!(
                    run_split(parts, Some((i, at))),
                    whole,
                    "part {i} split at byte {at}"
                );
            }
        }
        whole
    }

    #[test]
    fn upgrade_with_data_before_the_101_is_split_independent() {
        let client = [WS_REQUEST, WS_EARLY_FRAME].concat();
        let events = assert_split_independent(&[(C2S, &client), (S2C, WS_SWITCH)]);
        // The early frame is what the switching server reads as WebSocket:
        // tunnel data, and a client that did not wait (RFC 6455 §4.1).
        assert_eq!(methods(&events), ["GET"]);
        assert_eq!(statuses(&events), [101]);
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::DataBeforeSwitch, AnomalyEffect::Continue)]
        );
        assert!(events.contains(&HttpEvent::Tunnel(TunnelKind::Upgrade {
            protocol: "websocket".into()
        })));
    }

    #[test]
    fn upgrade_declined_then_a_101_is_split_independent() {
        // The fuzz finding: the Upgrade request is answered 400, so the
        // bytes after it are HTTP to the server (a frame is no request
        // line); the 101 after the 400 answers no request and still
        // switches. Whole or split, the frame is parsed before the 101.
        let client = [WS_REQUEST, WS_EARLY_FRAME, b"\r\n"].concat();
        let server = [
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".as_slice(),
            WS_SWITCH,
        ]
        .concat();
        let events = assert_split_independent(&[(C2S, &client), (S2C, &server)]);
        assert_eq!(methods(&events), ["GET"]);
        assert_eq!(statuses(&events), [400, 101]);
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::InvalidRequestLine, AnomalyEffect::Resync)]
        );
        assert!(matches!(events.last(), Some(HttpEvent::Tunnel(_))));
    }

    #[test]
    fn upgrade_declined_releases_a_pipelined_request() {
        let client = [
            WS_REQUEST,
            b"GET /next HTTP/1.1\r\nHost: server.example.com\r\n\r\n",
        ]
        .concat();
        let server = b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let events = assert_split_independent(&[(C2S, &client), (S2C, server)]);
        assert_eq!(methods(&events), ["GET", "GET"]);
        assert_eq!(requests(&events)[1].uri, "/next");
        assert_eq!(statuses(&events), [426, 200]);
        assert_eq!(
            responses(&events)[1].request_method.as_ref(),
            Some(&Method::Get)
        );
        assert!(anomalies(&events).is_empty());
        assert!(!events.iter().any(|e| matches!(e, HttpEvent::Tunnel(_))));
    }

    #[test]
    fn held_bytes_before_switch_are_bounded() {
        let limits = HttpLimits {
            max_head_bytes: 64,
            ..HttpLimits::default()
        };
        let events = run_with(
            limits,
            &[
                (C2S, b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n"),
                (C2S, &[b'x'; 65]),
            ],
            true,
        );
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::BufferLimit, AnomalyEffect::StopDirection)]
        );
    }

    /// zeek http/261 variant-04: both Transfer-Encoding and Content-Length.
    #[test]
    fn smuggling_te_and_cl_follows_chunked() {
        let events = run(&[(
            C2S,
            b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\nGET /smuggled-te-cl HTTP/1.1\r\nHost: target\r\n\r\n",
        )]);
        // RFC 9112 §6.3 item 3: Transfer-Encoding overrides Content-Length, so
        // the body ends at the last chunk and a second request follows.
        assert_eq!(methods(&events), ["POST", "GET"]);
        assert_eq!(requests(&events)[1].uri, "/smuggled-te-cl");
        assert!(requests(&events)[0].chunked);
        assert_eq!(
            anomalies(&events),
            [(
                AnomalyKind::TransferEncodingWithContentLength,
                AnomalyEffect::Continue
            )]
        );
    }

    /// zeek http/261 variant-01: chunk size 2^64.
    #[test]
    fn chunk_size_2_pow_64_stops_the_direction() {
        let events = run(&[(
            C2S,
            b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\nGET /smuggled-chunk-2pow64 HTTP/1.1\r\nHost: target\r\n\r\n",
        )]);
        assert_eq!(methods(&events), ["POST"]);
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::ChunkSizeOverflow, AnomalyEffect::StopDirection)]
        );
        assert_eq!(bodies(&events).len(), 1);
        assert!(!bodies(&events)[0].complete);
    }

    #[test]
    fn obfuscated_transfer_encodings() {
        // suricata capture: HEAD with "Content-Length: 0" and ",<TAB>chunked,".
        let events = run(&[(
            C2S,
            b"HEAD /f.ttf HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nTransfer-Encoding: ,\tchunked,\r\n\r\n",
        )]);
        assert_eq!(methods(&events), ["HEAD"]);
        assert_eq!(
            anomalies(&events),
            [
                (
                    AnomalyKind::ObfuscatedTransferEncoding,
                    AnomalyEffect::Continue
                ),
                (
                    AnomalyKind::TransferEncodingWithContentLength,
                    AnomalyEffect::Continue
                ),
            ]
        );
        // "xchunked": unknown final coding in a request is unrecoverable.
        let events = run(&[(
            C2S,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        )]);
        assert_eq!(methods(&events), ["POST"]);
        assert_eq!(
            anomalies(&events),
            [
                (
                    AnomalyKind::ObfuscatedTransferEncoding,
                    AnomalyEffect::Continue
                ),
                (
                    AnomalyKind::UnsupportedTransferEncoding,
                    AnomalyEffect::StopDirection
                ),
            ]
        );
        // "chunked " with a trailing space: followed, but flagged.
        let events = run(&[(
            C2S,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        )]);
        assert_eq!(methods(&events), ["POST", "GET"]);
        assert_eq!(
            anomalies(&events),
            [(
                AnomalyKind::ObfuscatedTransferEncoding,
                AnomalyEffect::Continue
            )]
        );
    }

    /// The head limit of the split-invariance regression tests.
    const SMALL_HEAD_BYTES: usize = 32;

    /// `stream` fed in one direction with a [`SMALL_HEAD_BYTES`] head limit,
    /// whole and in `piece`-byte pieces: the events of each.
    fn small_head_whole_and_in_pieces(
        dir: Direction,
        stream: &[u8],
        piece: usize,
    ) -> (Vec<HttpEvent>, Vec<HttpEvent>) {
        let limits = HttpLimits {
            max_head_bytes: SMALL_HEAD_BYTES,
            ..HttpLimits::default()
        };
        let whole = run_with(limits.clone(), &[(dir, stream)], true);
        let pieces: Vec<(Direction, &[u8])> = stream.chunks(piece).map(|c| (dir, c)).collect();
        (whole, run_with(limits, &pieces, true))
    }

    #[test]
    fn resync_on_a_max_head_line_does_not_depend_on_the_split() {
        // Found by the fuzz target: after an invalid status line, a status
        // line of exactly max_head_bytes plus its CR was taken as a message
        // start when it arrived whole (then reported HeadTooLarge) but
        // dropped as too long when it arrived byte by byte.
        let mut stream = b"\x9c\r\nHTTP/1.1 200 ".to_vec();
        stream.resize(3 + SMALL_HEAD_BYTES, b'O');
        stream.extend_from_slice(b"\r\n\r\n");
        let (whole, bytewise) = small_head_whole_and_in_pieces(S2C, &stream, 1);
        assert_eq!(
            anomalies(&whole),
            [(AnomalyKind::InvalidStatusLine, AnomalyEffect::Resync)]
        );
        assert_eq!(whole, bytewise);
    }

    #[test]
    fn request_line_longer_than_max_head_does_not_depend_on_the_split() {
        // Found by the fuzz target: a simple request line (RFC 1945 §4.1)
        // longer than max_head_bytes was accepted when its LF arrived in
        // the same call, but reported HeadTooLarge when it arrived in
        // pieces.
        let mut stream = b"GET /".to_vec();
        stream.resize(SMALL_HEAD_BYTES + 8, b'x');
        stream.extend_from_slice(b"\r\n");
        let (whole, split) = small_head_whole_and_in_pieces(C2S, &stream, 2);
        assert!(requests(&whole).is_empty(), "{whole:?}");
        assert_eq!(
            anomalies(&whole)[0],
            (AnomalyKind::HeadTooLarge, AnomalyEffect::Resync)
        );
        assert_eq!(whole, split);
    }

    #[test]
    fn invalid_content_length_stops_the_direction() {
        for cl in [
            &b"Content-Length: 5\r\nContent-Length: 6"[..],
            b"Content-Length: 5x",
        ] {
            let mut req = b"POST / HTTP/1.1\r\nHost: h\r\n".to_vec();
            req.extend_from_slice(cl);
            req.extend_from_slice(b"\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n");
            let events = run(&[(C2S, &req)]);
            assert_eq!(methods(&events), ["POST"]);
            assert_eq!(requests(&events)[0].content_length, None);
            assert_eq!(
                anomalies(&events),
                [(
                    AnomalyKind::InvalidContentLength,
                    AnomalyEffect::StopDirection
                )]
            );
        }
        // Identical duplicates are one valid value (RFC 9110 §8.6).
        let events = run(&[(
            C2S,
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello",
        )]);
        assert_eq!(requests(&events)[0].content_length, Some(5));
        assert!(anomalies(&events).is_empty());
    }

    #[test]
    fn basic_auth_user_only_and_password_never_in_events() {
        // base64("test:S3cr:3t:Pw") from Python's base64 module; the user is
        // what precedes the first ':' (RFC 7617 §2).
        let events = run(&[
            (C2S, b"GET /admin HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dGVzdDpTM2NyOjN0OlB3\r\n\r\n"),
            (C2S, b"GET http://bob:Hunter2x@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            (C2S, b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization  : Basic dGVzdDpTM2NyOjN0OlB3\r\n\r\n"),
            (C2S, b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization Basic dGVzdDpTM2NyOjN0OlB3\r\n\r\n"),
            (C2S, b"GET  http://eve:Hunter2x@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            (C2S, b"GET http://eve:Hunter2x@h/ x HTTP/1.1\r\nHost: h\r\n\r\n"),
            (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        ]);
        assert_eq!(
            requests(&events)[0].auth,
            Auth::Basic {
                user: "test".into(),
                has_password: true,
                password_len: 10,
                credential: Some(crate::proto::credential::digest("test", "S3cr:3t:Pw")),
            }
        );
        assert_eq!(requests(&events)[1].uri, "http://bob@h/");
        let debug = format!("{events:?}");
        for secret in ["S3cr", "3t:Pw", "Hunter2x", "dGVzdDpTM2NyOjN0OlB3"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    #[test]
    fn basic_auth_credential_digest_from_captures() {
        use crate::proto::credential::digest;
        // Authorization values of http-basic-auth-port2082-304.pcap,
        // http-basic-auth-password-with-colon-port8000.pcap (two spaces
        // after "Basic") and http-401-challenge-then-basic-auth.pcap, with
        // tshark's decoded `http.authbasic` as (user, password).
        for (value, user, password) in [
            (
                "Basic dXNlcnJycnI6cGFzc3dvcmRkZGRk",
                "userrrrr",
                "passworddddd",
            ),
            ("Basic  dGVzdDoxOjM0", "test", "1:34"),
            ("Basic YWRtaW46cGFzc3dvcmQxMjM=", "admin", "password123"),
        ] {
            let head = format!("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: {value}\r\n\r\n");
            let events = run(&[(C2S, head.as_bytes())]);
            let Auth::Basic { credential, .. } = &requests(&events)[0].auth else {
                panic!("{events:?}")
            };
            assert_eq!(*credential, Some(digest(user, password)), "{value}");
            assert_ne!(*credential, Some(digest(user, "wrong")), "{value}");
        }
    }

    #[test]
    fn http09_simple_request_and_bare_reply() {
        // zeek http_09 capture: "GET /zeek.html" and a headerless reply.
        let events = run(&[
            (C2S, b"GET /zeek.html\r\n"),
            (
                S2C,
                b"<html>\n  The Zeek Network Security Monitor\n</html>\n",
            ),
        ]);
        let r = requests(&events);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].uri.as_str(), r[0].version),
            ("/zeek.html", Version::Http09)
        );
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::Http09Request, AnomalyEffect::Continue)]
        );
        assert!(responses(&events).is_empty());
        let b = bodies(&events);
        // 51 bytes: the length of the reply segment in the capture.
        assert_eq!((b[0].dir, b[0].total_len, b[0].complete), (S2C, 51, true));
        // A server that answers a version-less line with a status line anyway.
        let events = run(&[
            (C2S, b"GET /HTTP/1.1\n"),
            (
                S2C,
                b"HTTP/1.0 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
            ),
        ]);
        assert_eq!(statuses(&events), [403]);
        assert_eq!(responses(&events)[0].request_method, Some(Method::Get));
    }

    #[test]
    fn lenient_responses_keep_what_was_parsed() {
        // suricata http1-noint-status: "HTTP/1.0 2XX OK".
        let events = run(&[
            (C2S, b"GET /test HTTP/1.1\r\nHost: 127.0.0.1:8001\r\n\r\n"),
            (
                S2C,
                b"HTTP/1.0 2XX OK\r\nServer: POC\r\nContent-Length:4\r\n\r\ntoto",
            ),
        ]);
        assert_eq!(statuses(&events), [2]);
        assert_eq!(bodies(&events)[0].head.as_bytes(), b"toto");
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::InvalidStatusCode, AnomalyEffect::Continue)]
        );
        // Lower-case "http/1.1" and header names, missing reason phrase.
        let events = run(&[
            (
                C2S,
                b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            ),
            (
                S2C,
                b"http/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiHTTP/1.1 404\r\n\r\n",
            ),
        ]);
        assert_eq!(statuses(&events), [200, 404]);
        assert_eq!(responses(&events)[1].reason, "");
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::InvalidVersion, AnomalyEffect::Continue)]
        );
    }

    #[test]
    fn garbage_requests_resync_and_keep_pairing() {
        // Shapes from the many-methods capture; each is answered with 400.
        // Lines skipped while resynchronising are not reported again, so a
        // valid request comes between the two bad ones here.
        let events = run(&[
            (C2S, b"OPTIONS\nHost: www.google.com\n\n"),
            (
                S2C,
                b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            ),
            (C2S, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (C2S, b"\xc3\x83\xc3\x82 / HTTP/1.1\nHost: x\n\n"),
            (
                S2C,
                b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
            ),
        ]);
        assert_eq!(methods(&events), ["GET"]);
        let paired: Vec<_> = responses(&events)
            .iter()
            .map(|r| r.request_method.clone())
            .collect();
        assert_eq!(paired, [None, Some(Method::Get), None]);
        assert_eq!(
            anomalies(&events),
            [
                (AnomalyKind::InvalidRequestLine, AnomalyEffect::Resync),
                (AnomalyKind::InvalidRequestLine, AnomalyEffect::Resync),
            ]
        );
        let HttpEvent::Anomaly(first) = events
            .iter()
            .find(|e| matches!(e, HttpEvent::Anomaly(_)))
            .unwrap()
        else {
            unreachable!()
        };
        assert_eq!(first.detail, "OPTIONS");
    }

    #[test]
    fn non_http_server_is_reported() {
        let events = run(&[
            (C2S, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            (S2C, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n"),
        ]);
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::InvalidStatusLine, AnomalyEffect::Resync)]
        );
        let HttpEvent::Anomaly(a) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(a.detail, "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3");
    }

    #[test]
    fn head_size_and_header_count_limits() {
        let limits = HttpLimits {
            max_head_bytes: 64,
            max_headers: 3,
            ..HttpLimits::default()
        };
        let mut big = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        big.resize(80, b'a');
        big.extend_from_slice(b"\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n");
        let events = run_with(limits.clone(), &[(C2S, &big)], true);
        assert_eq!(methods(&events), ["GET"]);
        assert_eq!(requests(&events)[0].uri, "/after");
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::HeadTooLarge, AnomalyEffect::Resync)]
        );

        let many = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n";
        let events = run_with(limits, &[(C2S, many)], true);
        assert_eq!(methods(&events), ["GET"]);
        assert_eq!(requests(&events)[0].uri, "/n");
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::TooManyHeaders, AnomalyEffect::Resync)]
        );
    }

    #[test]
    fn heads_with_more_fields_than_the_first_storage() {
        // 40 fields, more than SMALL_HEADER_STORAGE and fewer than
        // max_headers (100); the framing field comes last.
        let head = |start: &str, bad_line: bool, fields: usize| {
            let mut h = format!("{start}\r\n");
            if bad_line {
                h.push_str("no colon here\r\n");
            }
            for i in 0..fields {
                h.push_str(&format!("X-F{i}: v\r\n"));
            }
            h.push_str("Host: h\r\nContent-Length: 2\r\n\r\nok");
            h.into_bytes()
        };
        for bad_line in [false, true] {
            let request = head("POST /a HTTP/1.1", bad_line, 40);
            let response = head("HTTP/1.1 200 OK", bad_line, 40);
            let events = run(&[(C2S, &request), (S2C, &response)]);
            assert_eq!(methods(&events), ["POST"], "{events:?}");
            assert_eq!(statuses(&events), [200]);
            let b = bodies(&events);
            assert_eq!((b[0].dir, b[0].total_len), (C2S, 2));
            assert_eq!((b[1].dir, b[1].total_len), (S2C, 2));
            let expected = if bad_line {
                vec![(AnomalyKind::InvalidHeader, AnomalyEffect::Continue); 2]
            } else {
                vec![]
            };
            assert_eq!(anomalies(&events), expected);
        }
        // Over max_headers: reported with the configured limit.
        for bad_line in [false, true] {
            let request = head("POST /a HTTP/1.1", bad_line, 120);
            let response = head("HTTP/1.1 200 OK", bad_line, 120);
            let events = run(&[(C2S, &request), (S2C, &response)]);
            let details: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    HttpEvent::Anomaly(a) => Some((a.kind, a.detail.as_str())),
                    _ => None,
                })
                .collect();
            assert_eq!(
                details,
                [
                    (AnomalyKind::TooManyHeaders, "more than 100 header fields"),
                    (AnomalyKind::TooManyHeaders, "more than 100 header fields"),
                ]
            );
        }
    }

    #[test]
    fn pipeline_limit() {
        let limits = HttpLimits {
            max_pending_requests: 2,
            ..HttpLimits::default()
        };
        let three = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
        let events = run_with(limits, &[(C2S, three)], true);
        assert_eq!(methods(&events).len(), 3);
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::PipelineLimit, AnomalyEffect::Continue)]
        );
    }

    #[test]
    fn gaps() {
        let mut s = HttpSession::new(HttpLimits::default());
        let mut out = Vec::new();
        s.on_data(
            t(),
            C2S,
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab",
            &mut out,
        );
        s.on_gap(t(), C2S, 5, &mut out);
        s.on_data(t(), C2S, b"cde", &mut out);
        // Inside the body: skipped, the body is complete in length but not in content.
        assert_eq!(
            bodies(&out)[0],
            &HttpBody {
                dir: C2S,
                total_len: 10,
                head: BodyHead::new(b"abcde"),
                complete: false
            }
        );
        // Between messages: sync is lost and found again at the next request line.
        s.on_data(t(), C2S, b"GET /x HT", &mut out);
        s.on_gap(t(), C2S, 100, &mut out);
        s.on_data(
            t(),
            C2S,
            b"ost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        assert_eq!(methods(&out), ["POST", "GET"]);
        assert_eq!(requests(&out)[1].uri, "/y");
        assert_eq!(
            anomalies(&out),
            [(AnomalyKind::GapLostSync, AnomalyEffect::Resync)]
        );
        assert_eq!(s.stats().resyncs, 1);
        // A gap larger than the rest of a body loses sync too.
        s.on_data(
            t(),
            S2C,
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na",
            &mut out,
        );
        s.on_gap(t(), S2C, 10, &mut out);
        assert!(!bodies(&out)[1].complete);
        assert_eq!(anomalies(&out).len(), 2);
        // In a close-delimited body a gap is just counted.
        let mut s = HttpSession::new(HttpLimits::default());
        let mut out = Vec::new();
        s.on_data(t(), S2C, b"HTTP/1.0 200 OK\r\n\r\nab", &mut out);
        s.on_gap(t(), S2C, 1000, &mut out);
        s.on_close(t(), &mut out);
        assert_eq!(
            (bodies(&out)[0].total_len, bodies(&out)[0].complete),
            (1002, false)
        );
        assert!(anomalies(&out).is_empty());
    }

    #[test]
    fn close_flushes_what_is_pending() {
        // Chunked body cut short (the S3 403 capture ends mid-chunk).
        let events = run(&[(
            S2C,
            b"HTTP/1.1 403 Forbidden\r\nx-amz-request-id2 CA4DB8F36423461F\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\ne7\r\n<?xml version=\"1.0\"?>",
        )]);
        assert_eq!(statuses(&events), [403]);
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::InvalidHeader, AnomalyEffect::Continue)]
        );
        let b = bodies(&events);
        assert_eq!((b[0].total_len, b[0].complete), (21, false));
        // A head cut short.
        let events = run(&[(C2S, b"GET / HTTP/1.1\r\nHost: h\r\n")]);
        assert!(requests(&events).is_empty());
        assert_eq!(
            anomalies(&events),
            [(AnomalyKind::TruncatedHead, AnomalyEffect::Continue)]
        );
        // Nothing is parsed after the close.
        let mut s = HttpSession::new(HttpLimits::default());
        let mut out = Vec::new();
        s.on_close(t(), &mut out);
        s.on_data(t(), C2S, HELLO_REQUEST, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn body_head_keeps_first_64_bytes_for_magic() {
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n".to_vec();
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(100, 0xaa);
        response.extend_from_slice(&elf);
        let events = run(&[
            (C2S, b"GET /x.bin HTTP/1.1\r\nHost: h\r\n\r\n"),
            (S2C, &response),
        ]);
        let b = bodies(&events);
        assert_eq!(b[0].total_len, 100);
        assert_eq!(b[0].head.len(), BODY_HEAD_BYTES);
        assert_eq!(&b[0].head[..], &elf[..BODY_HEAD_BYTES]);
    }

    #[test]
    fn missing_or_duplicate_host_in_http11() {
        let events = run(&[(C2S, b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")]);
        assert_eq!(methods(&events).len(), 3);
        assert_eq!(
            anomalies(&events),
            [
                (AnomalyKind::InvalidHost, AnomalyEffect::Continue),
                (AnomalyKind::InvalidHost, AnomalyEffect::Continue),
            ]
        );
    }

    #[test]
    fn extension_methods_are_carried() {
        let events = run(&[(
            C2S,
            b"QUERY /users HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n",
        )]);
        assert_eq!(
            requests(&events)
                .iter()
                .map(|r| r.method.clone())
                .collect::<Vec<_>>(),
            [
                Method::Unknown("QUERY".into()),
                Method::Unknown("M-SEARCH".into())
            ]
        );
        assert_eq!(
            requests(&events)[0].content_type.as_deref(),
            Some("application/json")
        );
    }

    #[test]
    fn stats_follow_events() {
        let mut s = HttpSession::new(HttpLimits::default());
        let mut out = Vec::new();
        s.on_data(t(), C2S, CLIENT, &mut out);
        s.on_data(t(), S2C, SERVER, &mut out);
        s.on_close(t(), &mut out);
        let st = s.stats();
        assert_eq!(
            (st.requests, st.responses, st.bodies, st.anomalies),
            (5, 7, 5, 1)
        );
    }

    #[test]
    fn no_panic_and_bounded_buffers_on_mutated_streams() {
        let limits = HttpLimits {
            max_head_bytes: 256,
            ..HttpLimits::default()
        };
        let mut state = 0x9e37_79b9_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for round in 0..300 {
            let mut client = CLIENT.to_vec();
            let mut server = SERVER.to_vec();
            for _ in 0..(1 + round % 6) {
                let i = next() as usize % client.len();
                client[i] = next() as u8;
                let i = next() as usize % server.len();
                server[i] = next() as u8;
            }
            let mut s = HttpSession::new(limits.clone());
            let mut out = Vec::new();
            let (mut c, mut v) = (&client[..], &server[..]);
            while !c.is_empty() || !v.is_empty() {
                let n = (next() as usize % 40).min(c.len());
                let (piece, rest) = c.split_at(n);
                s.on_data(t(), C2S, piece, &mut out);
                c = rest;
                let n = (next() as usize % 40).min(v.len());
                let (piece, rest) = v.split_at(n);
                s.on_data(t(), S2C, piece, &mut out);
                v = rest;
                if next() % 17 == 0 {
                    s.on_gap(
                        t(),
                        if next() % 2 == 0 { C2S } else { S2C },
                        u64::from(next() % 50),
                        &mut out,
                    );
                }
                assert!(s.client.buf.len() <= limits.max_head_bytes);
                assert!(s.server.buf.len() <= limits.max_head_bytes);
                assert!(s.pending.len() <= limits.max_pending_requests);
            }
            s.on_close(t(), &mut out);
        }
    }
    /// Whole streams take the strict single-pass path for every well-formed
    /// head; a byte at a time they never do (the first byte already starts
    /// the scan for the head's end). Both must give the same events, also on
    /// damaged streams that mix both paths.
    #[test]
    fn whole_and_byte_at_a_time_agree_on_mutated_streams() {
        let mut state = 0x1234_5678_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let client = [
            CLIENT,
            b"GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Basic YWRtaW46cGFzcw==\r\n\
Content-Length: 3\r\n\r\nabcPOST /y HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nabc\r\n0\r\n\r\n",
        ]
        .concat();
        let server = [
            SERVER,
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n\
nopeHTTP/1.1 200 OK\r\n\r\n",
        ]
        .concat();
        let bytes = |d: &[u8]| d.iter().map(|&b| vec![b]).collect::<Vec<_>>();
        for round in 0..1500 {
            let (mut client, mut server) = (client.clone(), server.clone());
            for _ in 0..(round % 5) {
                for stream in [&mut client, &mut server] {
                    let i = next() as usize % stream.len();
                    stream[i] = match next() % 4 {
                        0 => b'\n',
                        1 => b'\r',
                        2 => b' ',
                        _ => next() as u8,
                    };
                }
            }
            let whole = run(&[(C2S, &client), (S2C, &server)]);
            let bytewise = feed_split(&[(C2S, bytes(&client)), (S2C, bytes(&server))]);
            assert_eq!(
                whole,
                bytewise,
                "round {round}: {:?} / {:?}",
                String::from_utf8_lossy(&client),
                String::from_utf8_lossy(&server)
            );
        }
    }
}
