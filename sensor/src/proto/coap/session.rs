//! Per-flow CoAP exchange tracker (one client/server UDP pair).
//!
//! - Deduplication (RFC 7252 §4.5): a Message ID seen again from the same
//!   endpoint within EXCHANGE_LIFETIME (NON_LIFETIME for NON) is a
//!   retransmission, reported with `is_retransmission` and never as a new
//!   request or response.
//! - Request/response matching (RFC 7252 §5.3.2): a piggy-backed response (ACK)
//!   matches by Message ID and token, a separate response (CON/NON) by token.
//! - Observe (RFC 7641): registration (GET/FETCH with Observe = 0),
//!   notifications (responses carrying Observe for a registered token),
//!   deregistration (Observe = 1), RST to a notification, final responses.
//! - Block-wise (RFC 7959): progress of Block1 (request payload) and Block2
//!   (response payload) transfers, completion on the block with M = 0.
//! - Discovery (RFC 6690 §4, RFC 7252 §7.2): 2.05 responses with
//!   Content-Format 40, or answering a GET of `.well-known/core`, become a
//!   resource list.
//!
//! Every table is bounded by a [`CoapLimits`] field; evictions and expiries are
//! counted in [`CoapStats`]. Entries expire after the RFC 7252 §4.8.2 lifetimes,
//! measured on packet timestamps.

use std::collections::VecDeque;
use std::sync::Arc;

use super::events::{
    AnomalyKind, BlockKind, CoapAnomaly, CoapEvent, CoapMessageEvent, DiscoveryEvent,
    ObserveEndReason, ResponseKind, ResponseMatch, Token,
};
use super::linkformat::{LinkFormatLimits, parse_link_format};
use super::parser::{BlockValue, CoapMessage, Code, CodeKind, MessageType, Method, OptionValue};
use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::text::push_capped;

/// EXCHANGE_LIFETIME with the default transmission parameters (RFC 7252 §4.8.2).
pub const EXCHANGE_LIFETIME_SECS: u64 = 247;
/// NON_LIFETIME with the default transmission parameters (RFC 7252 §4.8.2).
pub const NON_LIFETIME_SECS: u64 = 145;
/// Responses held while waiting for the request a reordering tap delivers
/// after them (per session).
pub const MAX_EARLY_RESPONSES: usize = 4;
/// Later datagrams of the flow an early response waits for its request
/// before it is handled (and reported unmatched): more than the few
/// positions a merging SPAN port displaces a datagram.
pub const EARLY_RESPONSE_WAIT_DATAGRAMS: u32 = 8;

/// Default cap on requests waiting for a response.
pub const DEFAULT_MAX_OPEN_EXCHANGES: usize = 32;
/// Default cap on Message IDs remembered per direction for deduplication.
pub const DEFAULT_MAX_RECENT_MESSAGES: usize = 64;
/// Default cap on active observations.
pub const DEFAULT_MAX_OBSERVATIONS: usize = 16;
/// Default cap on block-wise transfers in progress.
pub const DEFAULT_MAX_BLOCK_TRANSFERS: usize = 8;
/// Default cap on options inspected per message.
pub const DEFAULT_MAX_OPTIONS: usize = 64;
/// Default cap, in bytes, on each string kept in an event.
pub const DEFAULT_MAX_STRING_LEN: usize = 256;
/// Default cap on option numbers listed in `unknown_critical_options`.
pub const DEFAULT_MAX_UNKNOWN_CRITICAL: usize = 8;
/// application/link-format (RFC 6690 §7.3, RFC 7252 §12.3).
pub const CONTENT_FORMAT_LINK_FORMAT: u16 = 40;
/// The discovery resource as a joined Uri-Path (RFC 6690 §4).
pub const WELL_KNOWN_CORE: &str = ".well-known/core";

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Entries reserved when the Message ID memory is first used.
const RECENT_INITIAL_CAPACITY: usize = 8;

/// A lifetime in seconds as nanoseconds (saturating).
fn life_nanos(secs: u64) -> u64 {
    secs.saturating_mul(NANOS_PER_SEC)
}

/// The time after which an entry stamped `ts` with lifetime `life` nanoseconds
/// has expired (`now.nanos_since(ts) > life` implies `now > expiry(ts, life)`).
fn expiry(ts: Timestamp, life: u64) -> Timestamp {
    Timestamp(ts.0.saturating_add(i64::try_from(life).unwrap_or(i64::MAX)))
}

/// Bounds of one session (config section `[protocols.coap]`). `Default`
/// gives the named constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoapLimits {
    pub max_open_exchanges: usize,
    /// Per direction.
    pub max_recent_messages: usize,
    pub max_observations: usize,
    pub max_block_transfers: usize,
    pub max_options: usize,
    /// Bytes kept of each string in an event.
    #[serde(
        rename = "max_string_bytes",
        deserialize_with = "crate::units::de_bytes"
    )]
    pub max_string_len: usize,
    pub max_unknown_critical: usize,
    pub exchange_lifetime_secs: u64,
    pub non_lifetime_secs: u64,
    pub link_format: LinkFormatLimits,
}

impl Default for CoapLimits {
    fn default() -> Self {
        CoapLimits {
            max_open_exchanges: DEFAULT_MAX_OPEN_EXCHANGES,
            max_recent_messages: DEFAULT_MAX_RECENT_MESSAGES,
            max_observations: DEFAULT_MAX_OBSERVATIONS,
            max_block_transfers: DEFAULT_MAX_BLOCK_TRANSFERS,
            max_options: DEFAULT_MAX_OPTIONS,
            max_string_len: DEFAULT_MAX_STRING_LEN,
            max_unknown_critical: DEFAULT_MAX_UNKNOWN_CRITICAL,
            exchange_lifetime_secs: EXCHANGE_LIFETIME_SECS,
            non_lifetime_secs: NON_LIFETIME_SECS,
            link_format: LinkFormatLimits::default(),
        }
    }
}

/// Counters of one session (what was seen, and every bound that was hit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoapStats {
    pub datagrams: u64,
    pub messages: u64,
    /// Datagrams with a fatal header error (no message event).
    pub rejected_datagrams: u64,
    pub retransmissions: u64,
    pub matched_responses: u64,
    pub exchanges_evicted: u64,
    pub exchanges_expired: u64,
    pub recent_evicted: u64,
    pub observations_evicted: u64,
    pub block_transfers_evicted: u64,
    pub block_transfers_expired: u64,
    /// Responses that matched nothing on arrival and were held for their
    /// request; those whose request came within the wait.
    pub early_responses: u64,
    pub early_responses_matched: u64,
}

/// Message ID families: CON/NON are numbered by their sender; ACK/RST echo the
/// peer's number (RFC 7252 §4.4), so the two never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    ConNon,
    AckRst,
}

impl Family {
    fn of(t: MessageType) -> Family {
        match t {
            MessageType::Confirmable | MessageType::NonConfirmable => Family::ConNon,
            MessageType::Acknowledgement | MessageType::Reset => Family::AckRst,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Recent {
    /// The endpoint that sent the message.
    dir: Direction,
    mid: u16,
    ts: Timestamp,
    family: Family,
    mtype: MessageType,
    code: Code,
    token: Token,
}

#[derive(Clone, Debug)]
struct Exchange {
    requester: Direction,
    token: Token,
    mid: u16,
    ts: Timestamp,
    code: Code,
    mtype: MessageType,
    uri_path: Option<Arc<str>>,
    observe_register: bool,
    acknowledged: bool,
    retransmissions: u16,
}

#[derive(Clone, Debug)]
struct Observation {
    client: Direction,
    token: Token,
    uri_path: Option<Arc<str>>,
    last_ts: Timestamp,
    notifications: u32,
}

#[derive(Clone, Debug)]
struct BlockTransfer {
    sender: Direction,
    kind: BlockKind,
    uri_path: Option<Arc<str>>,
    next_num: u32,
    blocks: u32,
    bytes: u64,
    block_size: u16,
    last_ts: Timestamp,
}

/// What the options of one message say, after the §5.4 rules.
#[derive(Default)]
struct Summary {
    uri_host: Option<String>,
    uri_path: Option<Arc<str>>,
    uri_query: Option<String>,
    content_format: Option<u16>,
    accept: Option<u16>,
    observe: Option<u32>,
    block1: Option<BlockValue>,
    block2: Option<BlockValue>,
    size1: Option<u32>,
    size2: Option<u32>,
    unknown_critical: Vec<u16>,
    capped: bool,
}

fn anomaly(
    kind: AnomalyKind,
    dir: Direction,
    message_id: Option<u16>,
    option: Option<u16>,
    detail: String,
) -> CoapEvent {
    CoapEvent::Anomaly(CoapAnomaly {
        kind,
        dir,
        message_id,
        option,
        detail,
    })
}

/// Per-flow CoAP state.
#[derive(Debug)]
pub struct CoapSession {
    limits: CoapLimits,
    stats: CoapStats,
    /// Message IDs seen from both endpoints, oldest first; at most
    /// `max_recent_messages` per direction. One table rather than one per
    /// direction: a short flow then allocates it once.
    recent: VecDeque<Recent>,
    exchanges: Vec<Exchange>,
    observations: Vec<Observation>,
    blocks: Vec<BlockTransfer>,
    /// No exchange, remembered Message ID or block transfer expires at or
    /// before this time (a lower bound, lowered whenever one is stamped):
    /// until then `expire` has nothing to scan for.
    next_expiry: Timestamp,
    /// Where the Uri-Path of the current message is joined before it is
    /// shared as an `Arc<str>` (reused; never longer than the string cap).
    path_buf: String,
    /// The last Uri-Path shared: a client mostly asks for the same resource
    /// again (a sensor polled, an observation renewed), and its messages
    /// then share one string.
    last_path: Option<Arc<str>>,
    /// Responses that arrived before their request, oldest first; at most
    /// [`MAX_EARLY_RESPONSES`].
    early: Vec<EarlyResponse>,
}

/// A response datagram held for its request.
#[derive(Debug)]
struct EarlyResponse {
    ts: Timestamp,
    dir: Direction,
    bytes: Vec<u8>,
    /// Later datagrams of the flow seen since.
    waited: u32,
}

impl CoapSession {
    pub fn new(limits: CoapLimits) -> Self {
        CoapSession {
            limits,
            stats: CoapStats::default(),
            recent: VecDeque::new(),
            exchanges: Vec::new(),
            observations: Vec::new(),
            blocks: Vec::new(),
            next_expiry: Timestamp(i64::MAX),
            path_buf: String::new(),
            last_path: None,
            early: Vec::new(),
        }
    }

    pub fn stats(&self) -> &CoapStats {
        &self.stats
    }

    /// Requests still waiting for a response.
    pub fn open_exchanges(&self) -> usize {
        self.exchanges.len()
    }

    pub fn active_observations(&self) -> usize {
        self.observations.len()
    }

    /// One UDP datagram of this flow. Emits a `Message` event (unless the
    /// header is unreadable), then its anomalies and derived events.
    /// One datagram of the flow. A response that matches no open request,
    /// observation or recent message is held (bounded) for the request a
    /// reordering tap may deliver a few datagrams later (RFC 7252 §5.3.2
    /// matching is then done as if in order); it is handled when its
    /// request came, after [`EARLY_RESPONSE_WAIT_DATAGRAMS`] later
    /// datagrams, or when the flow ends ([`CoapSession::close`]).
    pub fn on_datagram(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        payload: &[u8],
        out: &mut Vec<CoapEvent>,
    ) {
        if self.early.len() < MAX_EARLY_RESPONSES && self.awaits_request(dir, payload) {
            self.stats.early_responses += 1;
            self.early.push(EarlyResponse {
                ts,
                dir,
                bytes: payload.to_vec(),
                waited: 0,
            });
            return;
        }
        self.handle(ts, dir, payload, out);
        if !self.early.is_empty() {
            self.retry_early(out);
        }
    }

    /// The flow ended: held responses are handled (reported unmatched when
    /// still so), and every exchange still open ends unanswered.
    pub fn close(&mut self, out: &mut Vec<CoapEvent>) {
        for e in std::mem::take(&mut self.early) {
            self.handle(e.ts, e.dir, &e.bytes, out);
        }
        self.expire(Timestamp(i64::MAX), out);
    }

    /// Handles the held responses whose request has come, or whose wait is
    /// over, in arrival order.
    fn retry_early(&mut self, out: &mut Vec<CoapEvent>) {
        let mut early = std::mem::take(&mut self.early);
        let mut i = 0;
        while i < early.len() {
            early[i].waited += 1;
            let e = &early[i];
            let matched = !self.awaits_request(e.dir, &e.bytes);
            if matched || e.waited > EARLY_RESPONSE_WAIT_DATAGRAMS {
                let e = early.remove(i);
                if matched {
                    self.stats.early_responses_matched += 1;
                }
                self.handle(e.ts, e.dir, &e.bytes, out);
            } else {
                i += 1;
            }
        }
        // Nothing was held while handling: `handle` never holds.
        self.early = early;
    }

    /// Whether `payload`, sent `dir`, is a response that would match nothing
    /// now: no open exchange (by Message ID for a piggy-backed ACK, by token
    /// otherwise), no observation, and not a message seen recently from
    /// `dir` (a retransmission is matched by deduplication).
    fn awaits_request(&self, dir: Direction, payload: &[u8]) -> bool {
        let Ok(msg) = CoapMessage::parse(payload) else {
            return false;
        };
        let mtype = msg.message_type();
        if msg.code().kind() != CodeKind::Response || mtype == MessageType::Reset {
            return false;
        }
        let peer = dir.reverse();
        let mid = msg.message_id();
        let Some(token) = Token::new(msg.token()) else {
            return false;
        };
        let open = if mtype == MessageType::Acknowledgement {
            self.exchanges
                .iter()
                .any(|e| e.requester == peer && e.mid == mid && e.mtype == MessageType::Confirmable)
        } else {
            // A notification that overtook the piggy-backed answer to its
            // CON registration would take that answer's place: it waits for
            // the registration's ACK (RFC 7641 §3.1, §4.1).
            self.exchanges.iter().any(|e| {
                e.requester == peer
                    && e.token == token
                    && !(e.observe_register
                        && e.mtype == MessageType::Confirmable
                        && !e.acknowledged)
            }) || self
                .observations
                .iter()
                .any(|o| o.client == peer && o.token == token)
        };
        let family = Family::of(mtype);
        let recent = self
            .recent
            .iter()
            .any(|r| r.dir == dir && r.mid == mid && r.family == family);
        !open && !recent
    }

    fn handle(&mut self, ts: Timestamp, dir: Direction, payload: &[u8], out: &mut Vec<CoapEvent>) {
        self.stats.datagrams += 1;
        self.expire(ts, out);
        let msg = match CoapMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.rejected_datagrams += 1;
                let mid = payload.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]));
                out.push(anomaly(e.into(), dir, mid, None, e.to_string()));
                return;
            }
        };
        self.stats.messages += 1;
        let mid = msg.message_id();
        let code = msg.code();
        let mtype = msg.message_type();
        // `parse` guarantees at most 8 token bytes.
        let token = Token::new(msg.token()).unwrap_or_default();
        // The Message event goes here, before the events the message causes.
        let message_at = out.len();

        let mut summary = Summary::default();
        self.summarize(&msg, dir, &mut summary, out);
        if let Some(e) = msg.format_error() {
            out.push(anomaly(e.into(), dir, Some(mid), None, e.to_string()));
        }
        if code.kind() == CodeKind::Reserved {
            out.push(anomaly(
                AnomalyKind::ReservedCodeClass,
                dir,
                Some(mid),
                None,
                format!("code {code} is in reserved class {}", code.class()),
            ));
        }
        if let Some(why) = msg.type_code_violation() {
            out.push(anomaly(
                AnomalyKind::InvalidTypeForCode,
                dir,
                Some(mid),
                None,
                why.to_string(),
            ));
        }

        let is_retransmission = self.deduplicate(ts, dir, &msg, token, out);
        let response_to = if is_retransmission {
            if code.is_request() {
                if let Some(e) = self
                    .exchanges
                    .iter_mut()
                    .find(|e| e.requester == dir && e.mid == mid && e.token == token)
                {
                    e.retransmissions = e.retransmissions.saturating_add(1);
                }
            }
            None
        } else {
            match code.kind() {
                CodeKind::Request if Family::of(mtype) == Family::ConNon => {
                    self.on_request(ts, dir, &msg, token, &summary, out);
                    None
                }
                CodeKind::Response if mtype != MessageType::Reset => {
                    self.on_response(ts, dir, &msg, token, &summary, out)
                }
                CodeKind::Empty => {
                    self.on_empty(dir, &msg, out);
                    None
                }
                _ => None,
            }
        };

        let message = CoapEvent::Message(CoapMessageEvent {
            dir,
            msg_type: mtype,
            code,
            message_id: mid,
            token,
            uri_host: summary.uri_host,
            uri_path: summary.uri_path,
            uri_query: summary.uri_query,
            content_format: summary.content_format,
            accept: summary.accept,
            observe: summary.observe,
            block1: summary.block1,
            block2: summary.block2,
            size1: summary.size1,
            size2: summary.size2,
            payload_len: msg.payload().len(),
            option_count: msg.option_count(),
            is_retransmission,
            unknown_critical_options: summary.unknown_critical,
            capped: summary.capped,
            format_error: msg.format_error(),
            response_to,
        });
        out.insert(message_at, message);
    }

    /// Drops state older than its lifetime; a request dropped without any
    /// response is reported as `Unanswered`. `on_datagram` calls this first;
    /// the flow table may call it on idle flows. The tables are only scanned
    /// when something in them can have expired.
    #[inline]
    pub fn expire(&mut self, now: Timestamp, out: &mut Vec<CoapEvent>) {
        if now > self.next_expiry {
            self.expire_scan(now, out);
        }
    }

    /// The scan behind [`expire`](Self::expire), once something can have expired.
    fn expire_scan(&mut self, now: Timestamp, out: &mut Vec<CoapEvent>) {
        let exchange_life = life_nanos(self.limits.exchange_lifetime_secs);
        let non_life = life_nanos(self.limits.non_lifetime_secs);
        let mut i = 0;
        while let Some(e) = self.exchanges.get(i) {
            let life = if e.mtype == MessageType::NonConfirmable {
                non_life
            } else {
                exchange_life
            };
            if now.nanos_since(e.ts) > life {
                let e = self.exchanges.swap_remove(i);
                self.stats.exchanges_expired += 1;
                out.push(CoapEvent::Unanswered {
                    dir: e.requester,
                    token: e.token,
                    message_id: e.mid,
                    request_code: e.code,
                    uri_path: e.uri_path,
                    retransmissions: e.retransmissions,
                    acknowledged: e.acknowledged,
                });
            } else {
                i += 1;
            }
        }
        self.recent
            .retain(|r| now.nanos_since(r.ts) <= exchange_life);
        let before = self.blocks.len();
        self.blocks
            .retain(|b| now.nanos_since(b.last_ts) <= exchange_life);
        self.stats.block_transfers_expired += (before - self.blocks.len()) as u64;
        // What is left expires after `now`: find the earliest such time again.
        let exchanges = self
            .exchanges
            .iter()
            .map(|e| expiry(e.ts, self.exchange_life(e.mtype)));
        let recent = self.recent.iter().map(|r| r.ts);
        let blocks = self.blocks.iter().map(|b| b.last_ts);
        let others = recent.chain(blocks).map(|ts| expiry(ts, exchange_life));
        self.next_expiry = exchanges.chain(others).min().unwrap_or(Timestamp(i64::MAX));
    }

    /// Lifetime in nanoseconds of a request of this type (RFC 7252 §4.8.2).
    fn exchange_life(&self, mtype: MessageType) -> u64 {
        life_nanos(if mtype == MessageType::NonConfirmable {
            self.limits.non_lifetime_secs
        } else {
            self.limits.exchange_lifetime_secs
        })
    }

    /// Notes that an entry stamped `ts` now lives `life` nanoseconds.
    fn stamp(&mut self, ts: Timestamp, life: u64) {
        self.next_expiry = self.next_expiry.min(expiry(ts, life));
    }

    /// Applies the option rules of RFC 7252 §5.4 and collects the fields the
    /// message event carries, into `s` (passed in rather than returned, so
    /// that it is written in place instead of copied out).
    fn summarize(
        &mut self,
        msg: &CoapMessage<'_>,
        dir: Direction,
        s: &mut Summary,
        out: &mut Vec<CoapEvent>,
    ) {
        let mid = Some(msg.message_id());
        let cap = self.limits.max_string_len;
        let mut uri_path = Joined::reusing(std::mem::take(&mut self.path_buf));
        let mut uri_query = Joined::reusing(String::new());
        let mut previous: Option<u16> = None;
        for (index, opt) in msg.options().enumerate() {
            if index == self.limits.max_options {
                out.push(anomaly(
                    AnomalyKind::TooManyOptions,
                    dir,
                    mid,
                    None,
                    format!(
                        "{} options, only the first {} inspected",
                        msg.option_count(),
                        self.limits.max_options
                    ),
                ));
                s.capped = true;
                break;
            }
            let number = opt.number();
            let n = number.number();
            let repeated = previous == Some(n);
            previous = Some(n);
            if number.is_reserved() {
                out.push(anomaly(
                    AnomalyKind::ReservedOptionNumber,
                    dir,
                    mid,
                    Some(n),
                    format!("option number {n} is reserved"),
                ));
            }
            // §5.4.3 and §5.4.5: out-of-range lengths and supernumerary
            // occurrences are treated like unrecognised options.
            let unrecognised = match number.spec() {
                None => true,
                Some(spec) if !opt.length_in_range() => {
                    out.push(anomaly(
                        AnomalyKind::OptionValueLengthOutOfRange,
                        dir,
                        mid,
                        Some(n),
                        format!(
                            "{} value of {} bytes outside {}-{}",
                            spec.name,
                            opt.value().len(),
                            spec.min_len,
                            spec.max_len
                        ),
                    ));
                    true
                }
                Some(spec) if repeated && !spec.repeatable => {
                    out.push(anomaly(
                        AnomalyKind::OptionRepeated,
                        dir,
                        mid,
                        Some(n),
                        format!("{} is not repeatable", spec.name),
                    ));
                    true
                }
                Some(_) => false,
            };
            if unrecognised {
                if number.is_critical() {
                    if s.unknown_critical.len() < self.limits.max_unknown_critical {
                        s.unknown_critical.push(n);
                    } else {
                        s.capped = true;
                    }
                    if !number.is_known() {
                        out.push(anomaly(
                            AnomalyKind::UnknownCriticalOption,
                            dir,
                            mid,
                            Some(n),
                            format!("unrecognised critical option {n} in {}", msg.code()),
                        ));
                    }
                }
                continue;
            }
            match opt.typed() {
                OptionValue::UriHost(v) => {
                    let mut host = String::new();
                    s.capped |= push_capped(&mut host, v, cap);
                    s.uri_host = Some(host);
                }
                OptionValue::UriPath(v) => {
                    if v == b"." || v == b".." {
                        out.push(anomaly(
                            AnomalyKind::UriPathDotSegment,
                            dir,
                            mid,
                            Some(n),
                            "Uri-Path segment is \".\" or \"..\"".to_string(),
                        ));
                    }
                    s.capped |= uri_path.push('/', v, cap);
                }
                OptionValue::UriQuery(v) => {
                    s.capped |= uri_query.push('&', v, cap);
                }
                OptionValue::ContentFormat(cf) => s.content_format = Some(cf),
                OptionValue::Accept(cf) => s.accept = Some(cf),
                OptionValue::Observe(v) => s.observe = Some(v),
                OptionValue::Block1(b) => s.block1 = Some(b),
                OptionValue::Block2(b) => s.block2 = Some(b),
                OptionValue::Size1(v) => s.size1 = Some(v),
                OptionValue::Size2(v) => s.size2 = Some(v),
                _ => {}
            }
        }
        for (b, n) in [(s.block1, 27u16), (s.block2, 23)] {
            if let Some(b) = b.filter(|b| b.is_szx_reserved()) {
                out.push(anomaly(
                    AnomalyKind::BlockSzxReserved,
                    dir,
                    mid,
                    Some(n),
                    format!(
                        "block number {} uses the reserved SZX 7 (RFC 7959 §2.2)",
                        b.num
                    ),
                ));
            }
        }
        s.uri_path = uri_path.started.then(|| match &self.last_path {
            Some(last) if **last == *uri_path.text => Arc::clone(last),
            _ => {
                let path: Arc<str> = Arc::from(uri_path.text.as_str());
                self.last_path = Some(Arc::clone(&path));
                path
            }
        });
        self.path_buf = uri_path.text;
        s.uri_query = uri_query.started.then_some(uri_query.text);
    }

    /// RFC 7252 §4.5: returns true when this Message ID was already seen from
    /// this endpoint within its lifetime; otherwise remembers it.
    fn deduplicate(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        msg: &CoapMessage<'_>,
        token: Token,
        out: &mut Vec<CoapEvent>,
    ) -> bool {
        let mtype = msg.message_type();
        let family = Family::of(mtype);
        let mid = msg.message_id();
        let lifetime_secs = if mtype == MessageType::NonConfirmable {
            self.limits.non_lifetime_secs
        } else {
            self.limits.exchange_lifetime_secs
        };
        let lifetime = lifetime_secs.saturating_mul(NANOS_PER_SEC);
        // Newest first; counts this endpoint's entries on the way.
        let mut from_dir = 0;
        let seen = self.recent.iter().rev().find(|r| {
            if r.dir != dir {
                return false;
            }
            from_dir += 1;
            r.mid == mid && r.family == family && ts.nanos_since(r.ts) <= lifetime
        });
        if let Some(seen) = seen {
            if seen.code != msg.code() || seen.token != token || seen.mtype != mtype {
                out.push(anomaly(
                    AnomalyKind::MessageIdReused,
                    dir,
                    Some(mid),
                    None,
                    format!(
                        "Message ID {mid} reused within {lifetime_secs} s: {} {} then {} {}",
                        seen.mtype.name(),
                        seen.code,
                        mtype.name(),
                        msg.code()
                    ),
                ));
            }
            self.stats.retransmissions += 1;
            return true;
        }
        // Not found: every entry of this endpoint was counted.
        if from_dir >= self.limits.max_recent_messages {
            if let Some(oldest) = self.recent.iter().position(|r| r.dir == dir) {
                self.recent.remove(oldest);
            }
            self.stats.recent_evicted += 1;
        }
        if self.limits.max_recent_messages > 0 {
            if self.recent.capacity() == 0 {
                // Room for a short flow's messages from both endpoints at
                // once, rather than growing from 4 to 8.
                let both = self.limits.max_recent_messages.saturating_mul(2);
                self.recent.reserve(both.min(RECENT_INITIAL_CAPACITY));
            }
            self.recent.push_back(Recent {
                dir,
                mid,
                ts,
                family,
                mtype,
                code: msg.code(),
                token,
            });
            self.stamp(ts, life_nanos(self.limits.exchange_lifetime_secs));
        }
        false
    }

    fn on_request(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        msg: &CoapMessage<'_>,
        token: Token,
        summary: &Summary,
        out: &mut Vec<CoapEvent>,
    ) {
        let code = msg.code();
        let observable_method = matches!(code.method(), Some(Method::Get | Method::Fetch));
        let observe_register = observable_method && summary.observe == Some(0);
        if observe_register {
            out.push(CoapEvent::ObserveRegister {
                dir,
                token,
                uri_path: summary.uri_path.clone(),
            });
        }
        if observable_method && summary.observe == Some(1) {
            out.push(CoapEvent::ObserveDeregister {
                dir,
                token,
                uri_path: summary.uri_path.clone(),
            });
            if let Some(i) = self
                .observations
                .iter()
                .position(|o| o.client == dir && o.token == token)
            {
                let o = self.observations.swap_remove(i);
                out.push(CoapEvent::ObserveEnd {
                    token,
                    uri_path: o.uri_path,
                    reason: ObserveEndReason::Deregistered,
                    notifications: o.notifications,
                });
            }
        }
        // A token is reused only once its previous exchange is over.
        if let Some(i) = self
            .exchanges
            .iter()
            .position(|e| e.requester == dir && e.token == token)
        {
            self.exchanges.swap_remove(i);
        }
        if self.exchanges.len() >= self.limits.max_open_exchanges {
            if let Some(oldest) = (0..self.exchanges.len()).min_by_key(|&i| self.exchanges[i].ts) {
                self.exchanges.swap_remove(oldest);
                self.stats.exchanges_evicted += 1;
            }
        }
        if self.limits.max_open_exchanges > 0 {
            self.exchanges.push(Exchange {
                requester: dir,
                token,
                mid: msg.message_id(),
                ts,
                code,
                mtype: msg.message_type(),
                uri_path: summary.uri_path.clone(),
                observe_register,
                acknowledged: false,
                retransmissions: 0,
            });
            self.stamp(ts, self.exchange_life(msg.message_type()));
        }
        if let Some(b) = summary.block1 {
            let path = summary.uri_path.clone();
            self.block_progress(ts, dir, BlockKind::Block1, path, b, msg, out);
        }
    }

    fn on_response(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        msg: &CoapMessage<'_>,
        token: Token,
        summary: &Summary,
        out: &mut Vec<CoapEvent>,
    ) -> Option<ResponseMatch> {
        let peer = dir.reverse();
        let mid = msg.message_id();
        let code = msg.code();
        let mtype = msg.message_type();
        let found = if mtype == MessageType::Acknowledgement {
            let by_mid = self.exchanges.iter().position(|e| {
                e.requester == peer && e.mid == mid && e.mtype == MessageType::Confirmable
            });
            match by_mid {
                Some(i) if self.exchanges[i].token != token => {
                    out.push(anomaly(
                        AnomalyKind::TokenMismatch,
                        dir,
                        Some(mid),
                        None,
                        format!(
                            "ACK for Message ID {mid} carries token {token}, request had {}",
                            self.exchanges[i].token
                        ),
                    ));
                    return None;
                }
                other => other,
            }
        } else {
            self.exchanges
                .iter()
                .position(|e| e.requester == peer && e.token == token)
        };

        let mut matched = None;
        // Uri-Path of the observation the response belongs to, if any.
        let mut observed_path = None;
        if let Some(i) = found {
            let ex = self.exchanges.swap_remove(i);
            self.stats.matched_responses += 1;
            if ex.observe_register {
                match summary.observe {
                    Some(sequence) if code.is_success() => {
                        self.add_observation(ts, peer, token, ex.uri_path.clone(), out);
                        out.push(CoapEvent::ObserveNotify {
                            dir,
                            token,
                            uri_path: ex.uri_path.clone(),
                            sequence,
                            code,
                            notifications: 1,
                        });
                    }
                    _ => out.push(CoapEvent::ObserveEnd {
                        token,
                        uri_path: ex.uri_path.clone(),
                        reason: ObserveEndReason::NotAccepted,
                        notifications: 0,
                    }),
                }
            }
            matched = Some(ResponseMatch {
                kind: if mtype == MessageType::Acknowledgement {
                    ResponseKind::Piggybacked
                } else {
                    ResponseKind::Separate
                },
                request_code: ex.code,
                request_message_id: ex.mid,
                request_uri_path: ex.uri_path,
                rtt_nanos: ts.nanos_since(ex.ts),
            });
        } else if let Some(i) = (mtype != MessageType::Acknowledgement)
            .then(|| {
                self.observations
                    .iter()
                    .position(|o| o.client == peer && o.token == token)
            })
            .flatten()
        {
            // RFC 7641 §3.2/§4.2: a 2.xx with Observe is a notification; any
            // other response ends the observation.
            match summary.observe {
                Some(sequence) if code.is_success() => {
                    let o = &mut self.observations[i];
                    o.notifications = o.notifications.saturating_add(1);
                    o.last_ts = ts;
                    observed_path = o.uri_path.clone();
                    out.push(CoapEvent::ObserveNotify {
                        dir,
                        token,
                        uri_path: o.uri_path.clone(),
                        sequence,
                        code,
                        notifications: o.notifications,
                    });
                }
                _ => {
                    let o = self.observations.swap_remove(i);
                    observed_path = o.uri_path.clone();
                    out.push(CoapEvent::ObserveEnd {
                        token,
                        uri_path: o.uri_path,
                        reason: ObserveEndReason::FinalResponse,
                        notifications: o.notifications,
                    });
                }
            }
        } else {
            out.push(anomaly(
                AnomalyKind::UnmatchedResponse,
                dir,
                Some(mid),
                None,
                format!(
                    "{} {code} with token {token} matches no open request",
                    mtype.name()
                ),
            ));
        }

        // The request's Uri-Path, borrowed (not cloned) for the checks below.
        let request_path = match &matched {
            Some(m) => m.request_uri_path.as_ref(),
            None => observed_path.as_ref(),
        };
        if let Some(b) = summary.block2 {
            let path = request_path.cloned();
            self.block_progress(ts, dir, BlockKind::Block2, path, b, msg, out);
        }
        let is_discovery = code == Code::CONTENT
            && (summary.content_format == Some(CONTENT_FORMAT_LINK_FORMAT)
                || request_path.map(|p| &**p) == Some(WELL_KNOWN_CORE));
        if is_discovery && !msg.payload().is_empty() {
            let path = request_path.cloned();
            self.discovery(dir, msg, token, summary, path, out);
        }
        matched
    }

    fn on_empty(&mut self, dir: Direction, msg: &CoapMessage<'_>, out: &mut Vec<CoapEvent>) {
        let peer = dir.reverse();
        let mid = msg.message_id();
        match msg.message_type() {
            MessageType::Acknowledgement => {
                // Empty ACK: the response will come separately (§5.2.2).
                if let Some(e) = self.exchanges.iter_mut().find(|e| {
                    e.requester == peer && e.mid == mid && e.mtype == MessageType::Confirmable
                }) {
                    e.acknowledged = true;
                }
            }
            MessageType::Reset => {
                let target = self
                    .recent
                    .iter()
                    .rev()
                    .find(|r| r.dir == peer && r.mid == mid && r.family == Family::ConNon)
                    .copied();
                // An RST answering an Empty CON is the "CoAP ping" reply (§4.3).
                if target.is_some_and(|r| r.code.is_empty()) {
                    return;
                }
                out.push(anomaly(
                    AnomalyKind::ResetReceived,
                    dir,
                    Some(mid),
                    None,
                    reset_detail(mid, target.as_ref()),
                ));
                let Some(r) = target else { return };
                if r.code.is_request() {
                    self.exchanges
                        .retain(|e| !(e.requester == peer && e.mid == mid && e.token == r.token));
                } else if let Some(i) = self
                    .observations
                    .iter()
                    .position(|o| o.client == dir && o.token == r.token)
                {
                    let o = self.observations.swap_remove(i);
                    out.push(CoapEvent::ObserveEnd {
                        token: o.token,
                        uri_path: o.uri_path,
                        reason: ObserveEndReason::Reset,
                        notifications: o.notifications,
                    });
                }
            }
            MessageType::Confirmable | MessageType::NonConfirmable => {}
        }
    }

    fn add_observation(
        &mut self,
        ts: Timestamp,
        client: Direction,
        token: Token,
        uri_path: Option<Arc<str>>,
        out: &mut Vec<CoapEvent>,
    ) {
        self.observations
            .retain(|o| !(o.client == client && o.token == token));
        if self.observations.len() >= self.limits.max_observations {
            if let Some(oldest) =
                (0..self.observations.len()).min_by_key(|&i| self.observations[i].last_ts)
            {
                let o = self.observations.swap_remove(oldest);
                self.stats.observations_evicted += 1;
                out.push(CoapEvent::ObserveEnd {
                    token: o.token,
                    uri_path: o.uri_path,
                    reason: ObserveEndReason::Evicted,
                    notifications: o.notifications,
                });
            }
        }
        if self.limits.max_observations > 0 {
            self.observations.push(Observation {
                client,
                token,
                uri_path,
                last_ts: ts,
                notifications: 1,
            });
        }
    }

    /// Tracks a descriptive block (RFC 7959 §2.3): Block1 in a request, Block2
    /// in a response. `sender` is the direction the data flows.
    #[allow(clippy::too_many_arguments)]
    fn block_progress(
        &mut self,
        ts: Timestamp,
        sender: Direction,
        kind: BlockKind,
        uri_path: Option<Arc<str>>,
        b: BlockValue,
        msg: &CoapMessage<'_>,
        out: &mut Vec<CoapEvent>,
    ) {
        let Some(block_size) = b.size() else { return };
        let mid = Some(msg.message_id());
        let option = Some(match kind {
            BlockKind::Block1 => 27,
            BlockKind::Block2 => 23,
        });
        let len = msg.payload().len();
        if b.more && len != usize::from(block_size) {
            out.push(anomaly(
                AnomalyKind::BlockSizeMismatch,
                sender,
                mid,
                option,
                format!(
                    "block {} with M set carries {len} bytes, block size is {block_size}",
                    b.num
                ),
            ));
        }
        let pos = self
            .blocks
            .iter()
            .position(|t| t.sender == sender && t.kind == kind && t.uri_path == uri_path);
        let i = match pos {
            Some(i) => {
                let t = &mut self.blocks[i];
                if b.num == 0 {
                    // A new transfer of the same resource.
                    t.blocks = 0;
                    t.bytes = 0;
                } else if b.num != t.next_num && kind == BlockKind::Block1 {
                    // RFC 7959 §2.5: Block1 blocks arrive in order; a server
                    // answers a gap with 4.08 Request Entity Incomplete.
                    out.push(anomaly(
                        AnomalyKind::BlockOutOfOrder,
                        sender,
                        mid,
                        option,
                        format!("Block1 number {} while {} was expected", b.num, t.next_num),
                    ));
                }
                i
            }
            None => {
                if self.blocks.len() >= self.limits.max_block_transfers {
                    if let Some(oldest) =
                        (0..self.blocks.len()).min_by_key(|&j| self.blocks[j].last_ts)
                    {
                        self.blocks.swap_remove(oldest);
                        self.stats.block_transfers_evicted += 1;
                    }
                }
                if self.limits.max_block_transfers == 0 {
                    return;
                }
                self.blocks.push(BlockTransfer {
                    sender,
                    kind,
                    uri_path,
                    next_num: 0,
                    blocks: 0,
                    bytes: 0,
                    block_size,
                    last_ts: ts,
                });
                self.blocks.len() - 1
            }
        };
        let t = &mut self.blocks[i];
        t.next_num = b.num.saturating_add(1);
        t.blocks = t.blocks.saturating_add(1);
        t.bytes = t.bytes.saturating_add(len as u64);
        t.block_size = block_size;
        t.last_ts = ts;
        self.stamp(ts, life_nanos(self.limits.exchange_lifetime_secs));
        if !b.more {
            let t = self.blocks.swap_remove(i);
            out.push(CoapEvent::BlockTransferComplete {
                dir: sender,
                kind,
                uri_path: t.uri_path,
                blocks: t.blocks,
                bytes: t.bytes,
                block_size: t.block_size,
            });
        }
    }

    fn discovery(
        &mut self,
        dir: Direction,
        msg: &CoapMessage<'_>,
        token: Token,
        summary: &Summary,
        request_uri_path: Option<Arc<str>>,
        out: &mut Vec<CoapEvent>,
    ) {
        let lf = parse_link_format(msg.payload(), self.limits.link_format);
        // Only one block of a block-wise body: links at its edges are cut.
        let partial = summary.block2.is_some_and(|b| b.more || b.num > 0);
        if lf.malformed > 0 && !partial {
            out.push(anomaly(
                AnomalyKind::LinkFormatMalformed,
                dir,
                Some(msg.message_id()),
                None,
                format!("{} links do not follow RFC 6690 §2", lf.malformed),
            ));
        }
        out.push(CoapEvent::Discovery(Box::new(DiscoveryEvent {
            dir,
            token,
            request_uri_path,
            links: lf.links,
            truncated: lf.truncated || partial,
            malformed_links: lf.malformed,
        })));
    }
}

/// "RST rejects Message ID 4711 (NON 2.05)", or "(an unseen message)". A
/// client that cancels an observation sends such an RST (RFC 7641 §3.6), so
/// this detail is common: it is written without the formatting machinery.
fn reset_detail(mid: u16, target: Option<&Recent>) -> String {
    let mut d = String::with_capacity(40);
    d.push_str("RST rejects Message ID ");
    let mut digits = [0u8; 5];
    let mut start = digits.len();
    let mut n = mid;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    d.extend(digits[start..].iter().map(|&b| char::from(b)));
    match target {
        Some(r) => {
            d.push_str(" (");
            d.push_str(r.mtype.name());
            d.push(' ');
            // `Code`'s Display: class, '.', detail in two digits.
            let (class, detail) = (r.code.class(), r.code.detail());
            for b in [b'0' + class, b'.', b'0' + detail / 10, b'0' + detail % 10] {
                d.push(char::from(b));
            }
            d.push(')');
        }
        None => d.push_str(" (an unseen message)"),
    }
    d
}

/// Bytes reserved when a [`Joined`] list gets its first segment.
const JOINED_INITIAL_CAPACITY: usize = 64;

/// Segments joined with a separator (`a/b/c`, `x=1&y=2`) under a byte cap;
/// once a segment had to be cut, nothing more is appended.
struct Joined {
    text: String,
    /// A segment was pushed (the list exists, even if its text is empty).
    started: bool,
    cut: bool,
}

impl Joined {
    /// An empty list written into `buf` (cleared, its capacity kept).
    fn reusing(mut buf: String) -> Joined {
        buf.clear();
        Joined {
            text: buf,
            started: false,
            cut: false,
        }
    }

    /// Returns true when the cap cut something.
    fn push(&mut self, sep: char, segment: &[u8], cap: usize) -> bool {
        if self.cut {
            return true;
        }
        if self.started {
            if self.text.len() + sep.len_utf8() > cap {
                self.cut = true;
                return true;
            }
            self.text.push(sep);
        } else if self.text.capacity() == 0 {
            // Room for a typical path at once, rather than growing per segment.
            self.text.reserve(cap.min(JOINED_INITIAL_CAPACITY));
        }
        self.started = true;
        self.cut = push_capped(&mut self.text, segment, cap);
        self.cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::coap::linkformat::LinkResource;
    use crate::proto::coap::parser::ParseError;

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;
    const CON: u8 = 0;
    const NON: u8 = 1;
    const ACK: u8 = 2;
    const RST: u8 = 3;

    /// Test-side encoder of RFC 7252 §3/§3.1 (options must be given in order).
    fn enc(
        t: u8,
        code: Code,
        mid: u16,
        token: &[u8],
        opts: &[(u16, &[u8])],
        payload: &[u8],
    ) -> Vec<u8> {
        fn nibble(v: usize, ext: &mut Vec<u8>) -> u8 {
            match v {
                0..=12 => v as u8,
                13..=268 => {
                    ext.push((v - 13) as u8);
                    13
                }
                _ => {
                    ext.extend_from_slice(&((v - 269) as u16).to_be_bytes());
                    14
                }
            }
        }
        let mut d = vec![0x40 | (t << 4) | token.len() as u8, code.number()];
        d.extend_from_slice(&mid.to_be_bytes());
        d.extend_from_slice(token);
        let mut prev = 0usize;
        for &(n, v) in opts {
            let mut ext = Vec::new();
            let dn = nibble(usize::from(n) - prev, &mut ext);
            let ln = nibble(v.len(), &mut ext);
            d.push((dn << 4) | ln);
            d.extend_from_slice(&ext);
            d.extend_from_slice(v);
            prev = usize::from(n);
        }
        if !payload.is_empty() {
            d.push(0xFF);
            d.extend_from_slice(payload);
        }
        d
    }

    fn ms(n: i64) -> Timestamp {
        Timestamp(n * 1_000_000)
    }

    fn feed(s: &mut CoapSession, t: Timestamp, dir: Direction, d: &[u8]) -> Vec<CoapEvent> {
        let mut out = Vec::new();
        s.on_datagram(t, dir, d, &mut out);
        out
    }

    /// `feed`, then the flow ends (a held response is handled).
    fn feed_and_close(
        s: &mut CoapSession,
        t: Timestamp,
        dir: Direction,
        d: &[u8],
    ) -> Vec<CoapEvent> {
        let mut out = feed(s, t, dir, d);
        s.close(&mut out);
        out
    }

    fn message(events: &[CoapEvent]) -> &CoapMessageEvent {
        events
            .iter()
            .find_map(|e| match e {
                CoapEvent::Message(m) => Some(m),
                _ => None,
            })
            .expect("a message event")
    }

    fn kinds(events: &[CoapEvent]) -> Vec<AnomalyKind> {
        events
            .iter()
            .filter_map(|e| match e {
                CoapEvent::Anomaly(a) => Some(a.kind),
                _ => None,
            })
            .collect()
    }

    fn session() -> CoapSession {
        CoapSession::new(CoapLimits::default())
    }

    const URI_PATH: u16 = 11;
    const OBSERVE: u16 = 6;
    const CONTENT_FORMAT: u16 = 12;
    const BLOCK2: u16 = 23;
    const BLOCK1: u16 = 27;

    #[test]
    fn figure_16_piggybacked_response() {
        let mut s = session();
        let req = feed(&mut s, ms(0), C, b"\x40\x01\x7d\x34\xbbtemperature");
        assert_eq!(req.len(), 1);
        let m = message(&req);
        assert_eq!(m.uri_path.as_deref(), Some("temperature"));
        assert_eq!(m.response_to, None);
        assert_eq!(s.open_exchanges(), 1);
        let resp = feed(&mut s, ms(5), S, b"\x60\x45\x7d\x34\xff22.3 C");
        assert_eq!(resp.len(), 1, "{resp:?}");
        let m = message(&resp);
        assert_eq!(m.payload_len, 6);
        assert_eq!(
            m.response_to,
            Some(ResponseMatch {
                kind: ResponseKind::Piggybacked,
                request_code: Code::GET,
                request_message_id: 0x7d34,
                request_uri_path: Some("temperature".into()),
                rtt_nanos: 5_000_000,
            })
        );
        assert_eq!(s.open_exchanges(), 0);
        assert_eq!(s.stats().matched_responses, 1);
    }

    #[test]
    fn figure_18_retransmitted_request() {
        let mut s = session();
        let req = enc(
            CON,
            Code::GET,
            0x7d36,
            &[0x31],
            &[(URI_PATH, b"temperature")],
            b"",
        );
        assert!(!message(&feed(&mut s, ms(0), C, &req)).is_retransmission);
        let again = feed(&mut s, ms(2000), C, &req);
        assert!(message(&again).is_retransmission);
        assert_eq!(again.len(), 1);
        assert_eq!(s.open_exchanges(), 1, "not a second request");
        let resp = enc(ACK, Code::CONTENT, 0x7d36, &[0x31], &[], b"22.3 C");
        let ev = feed(&mut s, ms(2004), S, &resp);
        // rtt counts from the first transmission.
        assert_eq!(
            message(&ev).response_to.as_ref().unwrap().rtt_nanos,
            2_004_000_000
        );
        assert_eq!(s.stats().retransmissions, 1);
    }

    #[test]
    fn figure_19_retransmitted_ack_is_not_unmatched() {
        let mut s = session();
        let req = enc(
            CON,
            Code::GET,
            0x7d37,
            &[0x42],
            &[(URI_PATH, b"temperature")],
            b"",
        );
        let resp = enc(ACK, Code::CONTENT, 0x7d37, &[0x42], &[], b"22.3 C");
        feed(&mut s, ms(0), C, &req);
        assert!(
            message(&feed(&mut s, ms(1), S, &resp))
                .response_to
                .is_some()
        );
        assert!(message(&feed(&mut s, ms(2000), C, &req)).is_retransmission);
        let dup = feed(&mut s, ms(2001), S, &resp);
        assert!(message(&dup).is_retransmission);
        assert_eq!(kinds(&dup), vec![]);
    }

    #[test]
    fn figure_20_separate_response() {
        let mut s = session();
        let mut all = Vec::new();
        all.extend(feed(
            &mut s,
            ms(0),
            C,
            &enc(
                CON,
                Code::GET,
                0x7d38,
                &[0x53],
                &[(URI_PATH, b"temperature")],
                b"",
            ),
        ));
        all.extend(feed(&mut s, ms(1), S, &[0x60, 0x00, 0x7d, 0x38]));
        let resp = feed(
            &mut s,
            ms(900),
            S,
            &enc(CON, Code::CONTENT, 0xad7b, &[0x53], &[], b"22.3 C"),
        );
        all.extend(feed(&mut s, ms(901), C, &[0x60, 0x00, 0xad, 0x7b]));
        let m = message(&resp);
        let matched = m.response_to.as_ref().unwrap();
        assert_eq!(matched.kind, ResponseKind::Separate);
        assert_eq!(matched.request_message_id, 0x7d38);
        assert_eq!(matched.rtt_nanos, 900_000_000);
        assert_eq!(kinds(&all), vec![]);
        assert_eq!(kinds(&resp), vec![]);
    }

    #[test]
    fn figure_21_reset_of_separate_response() {
        let mut s = session();
        feed(
            &mut s,
            ms(0),
            C,
            &enc(
                CON,
                Code::GET,
                0x7d39,
                &[0x64],
                &[(URI_PATH, b"temperature")],
                b"",
            ),
        );
        feed(&mut s, ms(1), S, &[0x60, 0x00, 0x7d, 0x39]);
        feed(
            &mut s,
            ms(900),
            S,
            &enc(CON, Code::CONTENT, 0xad7c, &[0x64], &[], b"22.3 C"),
        );
        let rst = feed(&mut s, ms(901), C, &[0x70, 0x00, 0xad, 0x7c]);
        assert_eq!(kinds(&rst), vec![AnomalyKind::ResetReceived]);
    }

    #[test]
    fn figure_22_non_request_non_response() {
        let mut s = session();
        feed(
            &mut s,
            ms(0),
            C,
            &enc(
                NON,
                Code::GET,
                0x7d40,
                &[0x75],
                &[(URI_PATH, b"temperature")],
                b"",
            ),
        );
        let ev = feed(
            &mut s,
            ms(3),
            S,
            &enc(NON, Code::CONTENT, 0xad7d, &[0x75], &[], b"22.3 C"),
        );
        assert_eq!(
            message(&ev).response_to.as_ref().unwrap().kind,
            ResponseKind::Separate
        );
        assert_eq!(kinds(&ev), vec![]);
    }

    #[test]
    fn unmatched_and_token_mismatch() {
        let mut s = session();
        let ev = feed_and_close(
            &mut s,
            ms(0),
            S,
            &enc(NON, Code::CONTENT, 9, &[0x99], &[], b"x"),
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnmatchedResponse]);
        let mut s = session();
        // Piggy-backed: MID matches the CON request but the token does not.
        feed(
            &mut s,
            ms(1),
            C,
            &enc(CON, Code::GET, 10, &[0x01], &[], b""),
        );
        let ev = feed(
            &mut s,
            ms(2),
            S,
            &enc(ACK, Code::CONTENT, 10, &[0x02], &[], b"x"),
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::TokenMismatch]);
        assert_eq!(message(&ev).response_to, None);
        assert_eq!(s.open_exchanges(), 1);
        // Separate response from the wrong side (client) does not match.
        let ev = feed_and_close(
            &mut s,
            ms(3),
            C,
            &enc(NON, Code::CONTENT, 11, &[0x01], &[], b"x"),
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnmatchedResponse]);
    }

    // Issue 16: a merging SPAN port delivered a piggy-backed and a separate
    // response a datagram before their requests. Both are matched (RFC
    // 7252 §5.3.2) as if in order: no unmatched_response, the request's
    // Message event first.
    #[test]
    fn response_before_its_request_is_matched_within_the_window() {
        let mut s = session();
        let mut ev = feed(
            &mut s,
            ms(1),
            S,
            &enc(ACK, Code::CONTENT, 7, &[7], &[], b"21.5"),
        );
        assert!(ev.is_empty());
        ev.extend(feed(
            &mut s,
            ms(0),
            C,
            &enc(CON, Code::GET, 7, &[7], &[(URI_PATH, b"temp")], b""),
        ));
        ev.extend(feed(
            &mut s,
            ms(3),
            S,
            &enc(NON, Code::CONTENT, 90, &[8], &[], b"x"),
        ));
        ev.extend(feed(
            &mut s,
            ms(2),
            C,
            &enc(NON, Code::GET, 8, &[8], &[], b""),
        ));
        assert_eq!(kinds(&ev), vec![]);
        let codes: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                CoapEvent::Message(m) => Some((m.code, m.response_to.is_some())),
                _ => None,
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                (Code::GET, false),
                (Code::CONTENT, true),
                (Code::GET, false),
                (Code::CONTENT, true)
            ]
        );
        assert_eq!(s.stats().early_responses, 2);
        assert_eq!(s.stats().early_responses_matched, 2);
        assert_eq!(s.stats().matched_responses, 2);
    }

    // The tap delivered the first notification (CON, Observe) before the
    // piggy-backed 2.05 answering the registration (RFC 7641 §3.1): the ACK
    // registers the observation and the notification is a notification, as
    // in the capture's original order.
    #[test]
    fn notification_before_the_registration_ack_waits_for_it() {
        let mut s = session();
        let register = enc(
            CON,
            Code::GET,
            1,
            &[1],
            &[(OBSERVE, &[]), (URI_PATH, b"t")],
            b"",
        );
        let ack = enc(ACK, Code::CONTENT, 1, &[1], &[(OBSERVE, &[5])], b"20");
        let notify = enc(CON, Code::CONTENT, 500, &[1], &[(OBSERVE, &[6])], b"21");
        let mut ev = feed(&mut s, ms(0), C, &register);
        ev.extend(feed(&mut s, ms(1), S, &notify));
        ev.extend(feed(&mut s, ms(2), S, &ack));
        assert_eq!(kinds(&ev), vec![]);
        let sequences: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                CoapEvent::ObserveNotify { sequence, .. } => Some(*sequence),
                _ => None,
            })
            .collect();
        assert_eq!(sequences, vec![5, 6]);
        assert_eq!(s.active_observations(), 1);
    }

    // The wait is bounded: a response whose request never comes is reported
    // after EARLY_RESPONSE_WAIT_DATAGRAMS later datagrams, and at most
    // MAX_EARLY_RESPONSES are held (the next one is handled at once).
    #[test]
    fn early_response_wait_is_bounded() {
        let mut s = session();
        let stray = enc(NON, Code::CONTENT, 50, &[0x50], &[], b"x");
        assert!(feed(&mut s, ms(0), S, &stray).is_empty());
        let mut ev = Vec::new();
        for mid in 0..EARLY_RESPONSE_WAIT_DATAGRAMS as u16 {
            ev.extend(feed(
                &mut s,
                ms(1),
                C,
                &enc(NON, Code::GET, mid, &[1], &[], b""),
            ));
        }
        assert_eq!(kinds(&ev), vec![]);
        let ev = feed(&mut s, ms(2), C, &enc(NON, Code::GET, 99, &[2], &[], b""));
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnmatchedResponse]);
        let mut s = session();
        for mid in 0..MAX_EARLY_RESPONSES as u16 {
            let r = enc(NON, Code::CONTENT, 60 + mid, &[0x60 + mid as u8], &[], b"x");
            assert!(feed(&mut s, ms(0), S, &r).is_empty());
        }
        let r = enc(NON, Code::CONTENT, 70, &[0x70], &[], b"x");
        let ev = feed(&mut s, ms(0), S, &r);
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnmatchedResponse]);
    }

    #[test]
    fn message_id_reuse_and_lifetimes() {
        let mut s = session();
        feed(&mut s, ms(0), C, &enc(CON, Code::GET, 1, &[0xA], &[], b""));
        let ev = feed(
            &mut s,
            ms(10),
            C,
            &enc(CON, Code::POST, 1, &[0xB], &[], b""),
        );
        assert!(message(&ev).is_retransmission);
        assert_eq!(kinds(&ev), vec![AnomalyKind::MessageIdReused]);
        // NON_LIFETIME is 145 s: the same NON MID at 146 s is a new message.
        let non = enc(NON, Code::GET, 2, &[0xC], &[], b"");
        feed(&mut s, ms(20_000), C, &non);
        assert!(message(&feed(&mut s, ms(20_000 + 145_000), C, &non)).is_retransmission);
        assert!(!message(&feed(&mut s, ms(20_000 + 146_000 + 1), C, &non)).is_retransmission);
        // The same MID from the other endpoint is not a retransmission.
        assert!(
            !message(&feed(
                &mut s,
                ms(170_000),
                S,
                &enc(CON, Code::GET, 2, &[0xD], &[], b"")
            ))
            .is_retransmission
        );
    }

    #[test]
    fn coap_ping_is_not_a_reset_anomaly() {
        let mut s = session();
        let ping = feed(&mut s, ms(0), C, &[0x40, 0x00, 0x12, 0x34]);
        assert_eq!(kinds(&ping), vec![]);
        let pong = feed(
            &mut s,
            ms(1),
            S,
            &enc(RST, Code::EMPTY, 0x1234, &[], &[], b""),
        );
        assert_eq!(kinds(&pong), vec![]);
        // RST of something never seen is evidence.
        assert_eq!(
            kinds(&feed(&mut s, ms(2), S, &[0x70, 0x00, 0x55, 0x55])),
            vec![AnomalyKind::ResetReceived]
        );
    }

    #[test]
    fn reset_of_request_closes_the_exchange() {
        let mut s = session();
        feed(
            &mut s,
            ms(0),
            C,
            &enc(CON, Code::GET, 7, &[0x7], &[(25, b"")], b""),
        );
        assert_eq!(s.open_exchanges(), 1);
        assert_eq!(
            kinds(&feed(&mut s, ms(1), S, &[0x70, 0x00, 0x00, 0x07])),
            vec![AnomalyKind::ResetReceived]
        );
        assert_eq!(s.open_exchanges(), 0);
    }

    fn observe_events(events: &[CoapEvent]) -> Vec<CoapEvent> {
        events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    CoapEvent::ObserveRegister { .. }
                        | CoapEvent::ObserveDeregister { .. }
                        | CoapEvent::ObserveNotify { .. }
                        | CoapEvent::ObserveEnd { .. }
                )
            })
            .cloned()
            .collect()
    }

    /// Registration in the shape of RFC 7641 §1.2 Figure 2: GET /temperature,
    /// token 0x4a, Observe 0; notifications carry Observe 12 and 44.
    fn register(s: &mut CoapSession) -> Token {
        let token = Token::new(&[0x4a]).unwrap();
        let reg = feed(
            s,
            ms(0),
            C,
            &enc(
                CON,
                Code::GET,
                0x100,
                &[0x4a],
                &[(OBSERVE, b""), (URI_PATH, b"temperature")],
                b"",
            ),
        );
        assert_eq!(message(&reg).observe, Some(0));
        assert_eq!(
            observe_events(&reg),
            vec![CoapEvent::ObserveRegister {
                dir: C,
                token,
                uri_path: Some("temperature".into())
            }]
        );
        let first = feed(
            s,
            ms(5),
            S,
            &enc(
                ACK,
                Code::CONTENT,
                0x100,
                &[0x4a],
                &[(OBSERVE, &[12])],
                b"22.9 Cel",
            ),
        );
        assert_eq!(
            observe_events(&first),
            vec![CoapEvent::ObserveNotify {
                dir: S,
                token,
                uri_path: Some("temperature".into()),
                sequence: 12,
                code: Code::CONTENT,
                notifications: 1
            }]
        );
        assert!(message(&first).response_to.is_some());
        let second = feed(
            s,
            ms(5000),
            S,
            &enc(
                CON,
                Code::CONTENT,
                0x200,
                &[0x4a],
                &[(OBSERVE, &[44])],
                b"22.8 Cel",
            ),
        );
        assert_eq!(message(&second).response_to, None);
        assert_eq!(kinds(&second), vec![]);
        assert!(matches!(
            observe_events(&second)[..],
            [CoapEvent::ObserveNotify {
                sequence: 44,
                notifications: 2,
                ..
            }]
        ));
        assert_eq!(
            kinds(&feed(s, ms(5001), C, &[0x60, 0x00, 0x02, 0x00])),
            vec![]
        );
        assert_eq!(s.active_observations(), 1);
        token
    }

    #[test]
    fn observe_register_notify_deregister() {
        let mut s = session();
        let token = register(&mut s);
        let dereg = feed(
            &mut s,
            ms(9000),
            C,
            &enc(
                CON,
                Code::GET,
                0x101,
                &[0x4a],
                &[(OBSERVE, &[1]), (URI_PATH, b"temperature")],
                b"",
            ),
        );
        assert_eq!(
            observe_events(&dereg),
            vec![
                CoapEvent::ObserveDeregister {
                    dir: C,
                    token,
                    uri_path: Some("temperature".into())
                },
                CoapEvent::ObserveEnd {
                    token,
                    uri_path: Some("temperature".into()),
                    reason: ObserveEndReason::Deregistered,
                    notifications: 2
                }
            ]
        );
        assert_eq!(s.active_observations(), 0);
    }

    #[test]
    fn observe_reset_by_client() {
        let mut s = session();
        register(&mut s);
        feed(
            &mut s,
            ms(6000),
            S,
            &enc(
                NON,
                Code::CONTENT,
                0x201,
                &[0x4a],
                &[(OBSERVE, &[60])],
                b"23.1 Cel",
            ),
        );
        let rst = feed(&mut s, ms(6001), C, &[0x70, 0x00, 0x02, 0x01]);
        assert_eq!(kinds(&rst), vec![AnomalyKind::ResetReceived]);
        assert!(matches!(
            observe_events(&rst)[..],
            [CoapEvent::ObserveEnd {
                reason: ObserveEndReason::Reset,
                notifications: 3,
                ..
            }]
        ));
        assert_eq!(s.active_observations(), 0);
    }

    #[test]
    fn observe_final_response_and_refusal() {
        let mut s = session();
        register(&mut s);
        // RFC 7641 §4.2: a non-2.xx notification has no Observe and ends it.
        let end = feed(
            &mut s,
            ms(7000),
            S,
            &enc(CON, Code::NOT_FOUND, 0x202, &[0x4a], &[], b""),
        );
        assert!(matches!(
            observe_events(&end)[..],
            [CoapEvent::ObserveEnd {
                reason: ObserveEndReason::FinalResponse,
                ..
            }]
        ));
        // §3.1: a server that does not add the client answers without Observe.
        feed(
            &mut s,
            ms(8000),
            C,
            &enc(
                CON,
                Code::GET,
                0x300,
                &[0x5b],
                &[(OBSERVE, b""), (URI_PATH, b"t")],
                b"",
            ),
        );
        let refused = feed(
            &mut s,
            ms(8001),
            S,
            &enc(ACK, Code::CONTENT, 0x300, &[0x5b], &[], b"1"),
        );
        assert!(matches!(
            observe_events(&refused)[..],
            [CoapEvent::ObserveEnd {
                reason: ObserveEndReason::NotAccepted,
                notifications: 0,
                ..
            }]
        ));
        assert_eq!(s.active_observations(), 0);
    }

    fn completions(events: &[CoapEvent]) -> Vec<CoapEvent> {
        events
            .iter()
            .filter(|e| matches!(e, CoapEvent::BlockTransferComplete { .. }))
            .cloned()
            .collect()
    }

    #[test]
    fn block2_get_in_three_blocks() {
        // RFC 7959 §3.1 simple GET: Block2 0/1/128, 1/1/128, 2/0/128 (SZX 3).
        let mut s = session();
        let mut all = Vec::new();
        let blocks: [(&[u8], u8, usize); 3] =
            [(&[], 0x0B, 128), (&[0x13], 0x1B, 128), (&[0x23], 0x23, 50)];
        for (i, (req_block, resp_block, len)) in blocks.into_iter().enumerate() {
            let mid = 0x500 + i as u16;
            let mut opts: Vec<(u16, &[u8])> = vec![(URI_PATH, b"status")];
            if !req_block.is_empty() {
                opts.push((BLOCK2, req_block));
            }
            all.extend(feed(
                &mut s,
                ms(10 * i as i64),
                C,
                &enc(CON, Code::GET, mid, &[i as u8], &opts, b""),
            ));
            let body = vec![b'x'; len];
            let ev = feed(
                &mut s,
                ms(10 * i as i64 + 1),
                S,
                &enc(
                    ACK,
                    Code::CONTENT,
                    mid,
                    &[i as u8],
                    &[(BLOCK2, &[resp_block])],
                    &body,
                ),
            );
            let b = message(&ev).block2.unwrap();
            assert_eq!((b.num, b.more, b.size()), (i as u32, i < 2, Some(128)));
            all.extend(ev);
        }
        assert_eq!(kinds(&all), vec![]);
        assert_eq!(
            completions(&all),
            vec![CoapEvent::BlockTransferComplete {
                dir: S,
                kind: BlockKind::Block2,
                uri_path: Some("status".into()),
                blocks: 3,
                bytes: 128 + 128 + 50,
                block_size: 128
            }]
        );
    }

    #[test]
    fn block1_put_in_three_blocks() {
        // RFC 7959 §3.2 simple PUT: Block1 0/1/128, 1/1/128 (2.31 Continue),
        // then 2/0/128 answered by 2.04 Changed.
        let mut s = session();
        let mut all = Vec::new();
        for (i, (block, len)) in [(0x0Bu8, 128usize), (0x1B, 128), (0x23, 10)]
            .into_iter()
            .enumerate()
        {
            let mid = 0x600 + i as u16;
            let body = vec![b'y'; len];
            let req = enc(
                CON,
                Code::PUT,
                mid,
                &[0x77],
                &[(URI_PATH, b"options"), (BLOCK1, &[block])],
                &body,
            );
            all.extend(feed(&mut s, ms(10 * i as i64), C, &req));
            let code = if i < 2 { Code::CONTINUE } else { Code::CHANGED };
            all.extend(feed(
                &mut s,
                ms(10 * i as i64 + 1),
                S,
                &enc(ACK, code, mid, &[0x77], &[(BLOCK1, &[block])], b""),
            ));
        }
        assert_eq!(kinds(&all), vec![]);
        assert_eq!(
            completions(&all),
            vec![CoapEvent::BlockTransferComplete {
                dir: C,
                kind: BlockKind::Block1,
                uri_path: Some("options".into()),
                blocks: 3,
                bytes: 266,
                block_size: 128
            }]
        );
    }

    #[test]
    fn block_anomalies() {
        let mut s = session();
        let put = |mid: u16, block: u8, len: usize| {
            enc(
                CON,
                Code::PUT,
                mid,
                &[mid as u8],
                &[(URI_PATH, b"fw"), (BLOCK1, &[block])],
                &vec![0u8; len],
            )
        };
        assert_eq!(kinds(&feed(&mut s, ms(0), C, &put(1, 0x0A, 64))), vec![]);
        // Block 2 after block 0 (SZX 2 = 64 bytes): block 1 was skipped.
        assert_eq!(
            kinds(&feed(&mut s, ms(1), C, &put(2, 0x2A, 64))),
            vec![AnomalyKind::BlockOutOfOrder]
        );
        // M set but 10 bytes instead of 64.
        assert_eq!(
            kinds(&feed(&mut s, ms(2), C, &put(3, 0x3A, 10))),
            vec![AnomalyKind::BlockSizeMismatch]
        );
        // SZX 7 is reserved.
        assert_eq!(
            kinds(&feed(&mut s, ms(3), C, &put(4, 0x07, 10))),
            vec![AnomalyKind::BlockSzxReserved]
        );
    }

    fn discovery_of(events: &[CoapEvent]) -> Option<&DiscoveryEvent> {
        events.iter().find_map(|e| match e {
            CoapEvent::Discovery(d) => Some(d.as_ref()),
            _ => None,
        })
    }

    const RFC6690_S5: &[u8] = b"</sensors>;ct=40;title=\"Sensor Index\",\
        </sensors/temp>;rt=\"temperature-c\";if=\"sensor\",\
        </sensors/light>;rt=\"light-lux\";if=\"sensor\",\
        <http://www.example.com/sensors/t123>;anchor=\"/sensors/temp\";rel=\"describedby\",\
        </t>;anchor=\"/sensors/temp\";rel=\"alternate\"";

    #[test]
    fn well_known_core_discovery() {
        let mut s = session();
        let get = enc(
            CON,
            Code::GET,
            1,
            &[1],
            &[(URI_PATH, b".well-known"), (URI_PATH, b"core")],
            b"",
        );
        assert_eq!(
            message(&feed(&mut s, ms(0), C, &get)).uri_path.as_deref(),
            Some(".well-known/core")
        );
        // Content-Format 40 present.
        let ev = feed(
            &mut s,
            ms(1),
            S,
            &enc(
                ACK,
                Code::CONTENT,
                1,
                &[1],
                &[(CONTENT_FORMAT, &[40])],
                RFC6690_S5,
            ),
        );
        let d = discovery_of(&ev).expect("discovery");
        assert_eq!(d.links.len(), 5);
        assert_eq!(d.request_uri_path.as_deref(), Some(".well-known/core"));
        assert_eq!(
            d.links[1],
            LinkResource {
                target: "/sensors/temp".into(),
                rt: Some("temperature-c".into()),
                interface: Some("sensor".into()),
                ..LinkResource::default()
            }
        );
        assert!(!d.truncated);
        // No Content-Format, but the request was for .well-known/core.
        feed(
            &mut s,
            ms(2),
            C,
            &enc(
                CON,
                Code::GET,
                2,
                &[2],
                &[(URI_PATH, b".well-known"), (URI_PATH, b"core")],
                b"",
            ),
        );
        let ev = feed(
            &mut s,
            ms(3),
            S,
            &enc(ACK, Code::CONTENT, 2, &[2], &[], b"</a>;obs"),
        );
        assert!(discovery_of(&ev).unwrap().links[0].observable);
        // Neither: an ordinary 2.05 is not a resource list.
        feed(
            &mut s,
            ms(4),
            C,
            &enc(CON, Code::GET, 3, &[3], &[(URI_PATH, b"x")], b""),
        );
        assert!(
            discovery_of(&feed(
                &mut s,
                ms(5),
                S,
                &enc(ACK, Code::CONTENT, 3, &[3], &[], b"</a>")
            ))
            .is_none()
        );
        // Unmatched but ct=40: still read, plus the anomaly; malformed links
        // counted (when its wait for a request ends, here the flow's end).
        let ev = feed_and_close(
            &mut s,
            ms(6),
            S,
            &enc(
                NON,
                Code::CONTENT,
                4,
                &[4],
                &[(CONTENT_FORMAT, &[40])],
                b"</a>,junk",
            ),
        );
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::UnmatchedResponse,
                AnomalyKind::LinkFormatMalformed
            ]
        );
        assert_eq!(discovery_of(&ev).unwrap().malformed_links, 1);
    }

    #[test]
    fn unknown_and_bad_options() {
        let mut s = session();
        // 25 is unassigned and odd (critical); 26 unassigned and even (elective).
        let ev = feed(
            &mut s,
            ms(0),
            C,
            &enc(CON, Code::GET, 1, &[], &[(25, b"x"), (26, b"y")], b""),
        );
        assert_eq!(message(&ev).unknown_critical_options, vec![25]);
        assert_eq!(kinds(&ev), vec![AnomalyKind::UnknownCriticalOption]);
        // Uri-Host twice (critical, not repeatable): second is unrecognised.
        let ev = feed(
            &mut s,
            ms(1),
            C,
            &enc(CON, Code::GET, 2, &[], &[(3, b"a"), (3, b"b")], b""),
        );
        assert_eq!(message(&ev).uri_host.as_deref(), Some("a"));
        assert_eq!(message(&ev).unknown_critical_options, vec![3]);
        assert_eq!(kinds(&ev), vec![AnomalyKind::OptionRepeated]);
        // Content-Format twice (elective): anomaly, nothing critical.
        let ev = feed(
            &mut s,
            ms(2),
            C,
            &enc(CON, Code::GET, 3, &[], &[(12, &[0]), (12, &[40])], b""),
        );
        assert_eq!(message(&ev).content_format, Some(0));
        assert!(message(&ev).unknown_critical_options.is_empty());
        // Reserved option numbers 0 and 128.
        let ev = feed(
            &mut s,
            ms(3),
            C,
            &enc(CON, Code::GET, 4, &[], &[(0, b""), (128, b"")], b""),
        );
        assert_eq!(
            kinds(&ev),
            vec![
                AnomalyKind::ReservedOptionNumber,
                AnomalyKind::ReservedOptionNumber
            ]
        );
        // Observe with 4 bytes (RFC 7641: 0-3) is ignored and reported.
        let ev = feed(
            &mut s,
            ms(4),
            C,
            &enc(CON, Code::GET, 5, &[], &[(OBSERVE, &[0, 0, 0, 0])], b""),
        );
        assert_eq!(message(&ev).observe, None);
        assert_eq!(kinds(&ev), vec![AnomalyKind::OptionValueLengthOutOfRange]);
        // "." and ".." segments.
        let ev = feed(
            &mut s,
            ms(5),
            C,
            &enc(
                CON,
                Code::GET,
                6,
                &[],
                &[(URI_PATH, b".."), (URI_PATH, b"etc")],
                b"",
            ),
        );
        assert_eq!(message(&ev).uri_path.as_deref(), Some("../etc"));
        assert_eq!(kinds(&ev), vec![AnomalyKind::UriPathDotSegment]);
    }

    #[test]
    fn query_join_and_string_caps() {
        let limits = CoapLimits {
            max_string_len: 5,
            ..CoapLimits::default()
        };
        let mut s = CoapSession::new(limits);
        let ev = feed(
            &mut s,
            ms(0),
            C,
            &enc(
                CON,
                Code::GET,
                1,
                &[],
                &[
                    (URI_PATH, b"abc"),
                    (URI_PATH, b"def"),
                    (15, b"a=1"),
                    (15, b"b"),
                ],
                b"",
            ),
        );
        let m = message(&ev);
        assert_eq!(m.uri_path.as_deref(), Some("abc/d"));
        assert_eq!(m.uri_query.as_deref(), Some("a=1&b"));
        assert!(m.capped);
    }

    #[test]
    fn too_many_options() {
        let limits = CoapLimits {
            max_options: 2,
            ..CoapLimits::default()
        };
        let mut s = CoapSession::new(limits);
        let ev = feed(
            &mut s,
            ms(0),
            C,
            &enc(
                CON,
                Code::GET,
                1,
                &[],
                &[(URI_PATH, b"a"), (URI_PATH, b"b"), (URI_PATH, b"c")],
                b"",
            ),
        );
        assert_eq!(message(&ev).uri_path.as_deref(), Some("a/b"));
        assert_eq!(message(&ev).option_count, 3);
        assert_eq!(kinds(&ev), vec![AnomalyKind::TooManyOptions]);
    }

    #[test]
    fn parse_errors_become_anomalies() {
        let mut s = session();
        let ev = feed(&mut s, ms(0), C, &[0x80, 0x01, 0x00, 0x05]);
        assert_eq!(ev.len(), 1, "no message event for a bad version");
        assert!(matches!(
            &ev[0],
            CoapEvent::Anomaly(CoapAnomaly {
                kind: AnomalyKind::BadVersion,
                message_id: Some(5),
                ..
            })
        ));
        assert_eq!(
            kinds(&feed(&mut s, ms(1), C, &[0x4f, 1, 0, 1])),
            vec![AnomalyKind::TokenLengthReserved]
        );
        assert_eq!(
            kinds(&feed(&mut s, ms(2), C, &[0x40])),
            vec![AnomalyKind::TruncatedHeader]
        );
        assert_eq!(s.stats().rejected_datagrams, 3);
        // Option-area error: the message is still reported.
        let ev = feed(
            &mut s,
            ms(3),
            C,
            &[0x40, 0x01, 0x00, 0x06, 0xB1, b'a', 0xF0],
        );
        let m = message(&ev);
        assert_eq!(m.uri_path.as_deref(), Some("a"));
        assert_eq!(
            m.format_error,
            Some(ParseError::OptionDeltaReserved { offset: 6 })
        );
        assert_eq!(kinds(&ev), vec![AnomalyKind::OptionDeltaReserved]);
        for (d, kind) in [
            (
                &[0x40, 0x01, 0x00, 0x07, 0xFF][..],
                AnomalyKind::PayloadMarkerWithoutPayload,
            ),
            (
                &[0x41, 0x00, 0x00, 0x08, 0x01],
                AnomalyKind::EmptyMessageNotEmpty,
            ),
            (
                &[0x40, 0x01, 0x00, 0x09, 0x0D],
                AnomalyKind::TruncatedOption,
            ),
            (
                &[0x40, 0x01, 0x00, 0x0A, 0x1F],
                AnomalyKind::OptionLengthReserved,
            ),
            (
                &[0x40, 0x01, 0x00, 0x0B, 0xE0, 0xFF, 0xFF],
                AnomalyKind::OptionNumberOverflow,
            ),
            (&[0x40, 0x20, 0x00, 0x0C], AnomalyKind::ReservedCodeClass),
            (&[0x60, 0x01, 0x00, 0x0D], AnomalyKind::InvalidTypeForCode),
            (&[0x50, 0x00, 0x00, 0x0E], AnomalyKind::InvalidTypeForCode),
        ] {
            assert_eq!(kinds(&feed(&mut s, ms(4), C, d)), vec![kind], "{d:02x?}");
        }
    }

    #[test]
    fn expiry_reports_unanswered_requests() {
        let mut s = session();
        let con = enc(CON, Code::GET, 1, &[1], &[(URI_PATH, b"a")], b"");
        feed(&mut s, ms(0), C, &con);
        feed(&mut s, ms(1000), C, &con); // retransmission
        feed(&mut s, ms(2000), C, &enc(NON, Code::GET, 2, &[2], &[], b""));
        // 146 s after the NON: past NON_LIFETIME (145 s), not past EXCHANGE_LIFETIME.
        let ev = feed(&mut s, ms(148_001), C, &[0x40, 0x00, 0x00, 0x03]);
        assert!(matches!(
            &ev[0],
            CoapEvent::Unanswered {
                message_id: 2,
                request_code: Code::GET,
                ..
            }
        ));
        assert_eq!(s.open_exchanges(), 1);
        // 247 s (EXCHANGE_LIFETIME) after the CON.
        let mut out = Vec::new();
        s.expire(ms(247_001), &mut out);
        assert_eq!(
            out,
            vec![CoapEvent::Unanswered {
                dir: C,
                token: Token::new(&[1]).unwrap(),
                message_id: 1,
                request_code: Code::GET,
                uri_path: Some("a".into()),
                retransmissions: 1,
                acknowledged: false,
            }]
        );
        assert_eq!(s.stats().exchanges_expired, 2);
        // The MID memory expired too: the same CON is new again.
        assert!(!message(&feed(&mut s, ms(400_000), C, &con)).is_retransmission);
    }

    #[test]
    fn reset_detail_reads_as_formatted() {
        for mid in [0, 7, 10, 99, 4711, 65535] {
            assert_eq!(
                reset_detail(mid, None),
                format!("RST rejects Message ID {mid} (an unseen message)")
            );
            for (mtype, raw) in [
                (MessageType::NonConfirmable, 0x45),
                (MessageType::Confirmable, 0x01),
                (MessageType::Acknowledgement, 0xFF),
                (MessageType::Reset, 0x00),
            ] {
                let code = Code::from_u8(raw);
                let r = Recent {
                    dir: C,
                    mid,
                    ts: Timestamp(0),
                    family: Family::of(mtype),
                    mtype,
                    code,
                    token: Token::default(),
                };
                assert_eq!(
                    reset_detail(mid, Some(&r)),
                    format!("RST rejects Message ID {mid} ({} {code})", mtype.name())
                );
            }
        }
    }

    #[test]
    fn expiry_follows_the_earliest_stamp_even_out_of_order() {
        let mut s = session();
        feed(
            &mut s,
            ms(10_000),
            C,
            &enc(CON, Code::GET, 1, &[1], &[], b""),
        );
        // Stamped earlier than the previous datagram (captures are not
        // always in time order): it expires first.
        feed(&mut s, ms(0), C, &enc(CON, Code::GET, 2, &[2], &[], b""));
        let mut out = Vec::new();
        s.expire(ms(247_000), &mut out);
        assert!(out.is_empty(), "{out:?}");
        s.expire(ms(247_001), &mut out);
        assert!(
            matches!(&out[..], [CoapEvent::Unanswered { message_id: 2, .. }]),
            "{out:?}"
        );
        out.clear();
        s.expire(ms(257_000), &mut out);
        assert!(out.is_empty(), "{out:?}");
        s.expire(ms(257_001), &mut out);
        assert!(
            matches!(&out[..], [CoapEvent::Unanswered { message_id: 1, .. }]),
            "{out:?}"
        );
        assert_eq!(s.stats().exchanges_expired, 2);
        // Nothing is left: the flow's end finds nothing more.
        out.clear();
        s.expire(Timestamp(i64::MAX), &mut out);
        assert!(out.is_empty() && s.open_exchanges() == 0);
    }

    #[test]
    fn message_id_memory_is_bounded_per_endpoint() {
        let limits = CoapLimits {
            max_recent_messages: 2,
            ..CoapLimits::default()
        };
        let mut s = CoapSession::new(limits);
        // A request from the server (CoAP endpoints are symmetric).
        let server_con = enc(CON, Code::GET, 9, &[9], &[], b"");
        feed(&mut s, ms(0), S, &server_con);
        for mid in 0..3u16 {
            let req = enc(NON, Code::GET, mid, &[mid as u8], &[], b"");
            feed(&mut s, ms(1 + i64::from(mid)), C, &req);
        }
        // The client's third message evicted the client's first only.
        assert_eq!(s.stats().recent_evicted, 1);
        let again = |s: &mut CoapSession, dir, d: &[u8]| {
            message(&feed(s, ms(10), dir, d)).is_retransmission
        };
        assert!(again(&mut s, S, &server_con));
        assert!(again(&mut s, C, &enc(NON, Code::GET, 2, &[2], &[], b"")));
        assert!(!again(&mut s, C, &enc(NON, Code::GET, 0, &[0], &[], b"")));
    }

    #[test]
    fn tables_are_bounded_and_evictions_counted() {
        let limits = CoapLimits {
            max_open_exchanges: 2,
            max_recent_messages: 2,
            max_observations: 1,
            ..CoapLimits::default()
        };
        let mut s = CoapSession::new(limits);
        for mid in 0..3u16 {
            feed(
                &mut s,
                ms(i64::from(mid)),
                C,
                &enc(CON, Code::GET, mid, &[mid as u8], &[], b""),
            );
        }
        assert_eq!(s.open_exchanges(), 2);
        assert_eq!(s.stats().exchanges_evicted, 1);
        assert_eq!(s.stats().recent_evicted, 1);
        // MID 0 was forgotten: its repeat is no longer recognised.
        assert!(
            !message(&feed(
                &mut s,
                ms(10),
                C,
                &enc(CON, Code::GET, 0, &[0], &[], b"")
            ))
            .is_retransmission
        );
        // Two observations with room for one: the first is evicted.
        let mut all = Vec::new();
        for (i, tok) in [0x10u8, 0x11].into_iter().enumerate() {
            let mid = 0x100 + i as u16;
            feed(
                &mut s,
                ms(20),
                C,
                &enc(CON, Code::GET, mid, &[tok], &[(OBSERVE, b"")], b""),
            );
            all.extend(feed(
                &mut s,
                ms(21 + i as i64),
                S,
                &enc(ACK, Code::CONTENT, mid, &[tok], &[(OBSERVE, &[1])], b"v"),
            ));
        }
        assert_eq!(s.active_observations(), 1);
        assert_eq!(s.stats().observations_evicted, 1);
        assert!(all.iter().any(|e| matches!(
            e,
            CoapEvent::ObserveEnd {
                reason: ObserveEndReason::Evicted,
                ..
            }
        )));
    }

    /// Deterministic xorshift, enough to vary mutations.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn no_panic_and_bounded_on_mutated_input() {
        let seeds = [
            enc(
                CON,
                Code::GET,
                1,
                &[1, 2],
                &[
                    (OBSERVE, b""),
                    (URI_PATH, b".well-known"),
                    (URI_PATH, b"core"),
                    (BLOCK2, &[0x0B]),
                ],
                b"",
            ),
            enc(
                ACK,
                Code::CONTENT,
                1,
                &[1, 2],
                &[(OBSERVE, &[5]), (CONTENT_FORMAT, &[40]), (BLOCK2, &[0x0B])],
                RFC6690_S5,
            ),
            enc(
                CON,
                Code::PUT,
                2,
                &[3],
                &[(URI_PATH, b"x"), (BLOCK1, &[0x1B]), (300, &[9; 300])],
                &[7; 128],
            ),
            vec![0x70, 0x00, 0x00, 0x01],
        ];
        let limits = CoapLimits {
            max_open_exchanges: 4,
            max_recent_messages: 4,
            max_observations: 2,
            max_block_transfers: 2,
            ..CoapLimits::default()
        };
        let mut s = CoapSession::new(limits);
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut out = Vec::new();
        let mut t = 0i64;
        for seed in &seeds {
            for end in 0..=seed.len() {
                t += 1;
                s.on_datagram(ms(t), C, &seed[..end], &mut out);
            }
            for _ in 0..3000 {
                let mut d = seed.clone();
                for _ in 0..(next(&mut rng) % 4 + 1) {
                    let i = (next(&mut rng) as usize) % d.len();
                    d[i] = next(&mut rng) as u8;
                }
                t += 1;
                let dir = if next(&mut rng) % 2 == 0 { C } else { S };
                s.on_datagram(ms(t), dir, &d, &mut out);
                assert!(s.open_exchanges() <= 4 && s.active_observations() <= 2);
                for d in [C, S] {
                    assert!(s.recent.iter().filter(|r| r.dir == d).count() <= 4);
                }
                assert!(s.blocks.len() <= 2);
                out.clear();
            }
        }
        for _ in 0..2000 {
            let len = (next(&mut rng) % 64) as usize;
            let d: Vec<u8> = (0..len).map(|_| next(&mut rng) as u8).collect();
            t += 1;
            s.on_datagram(ms(t), S, &d, &mut out);
            out.clear();
        }
        assert!(s.stats().datagrams > 10_000);
    }
}
