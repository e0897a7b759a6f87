//! Which protocol a flow speaks, and the per-flow session that parses it.
//!
//! Detection is by content first — each protocol's `probe` looks at the first
//! bytes either side sent — with the well-known ports only as hints: to break a
//! tie, or to decide when the content is undecidable (a Telnet server that
//! never negotiates, a CoAP server answering with an anomaly). A flow whose
//! first bytes match nothing is left opaque.

use super::{Probe, coap, http, mqtt, telnet};
use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo, StreamEvent};

/// The application protocols spanwatch parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppProto {
    Http,
    Mqtt,
    Coap,
    Telnet,
}

impl AppProto {
    pub const ALL: [AppProto; 4] = [
        AppProto::Http,
        AppProto::Mqtt,
        AppProto::Coap,
        AppProto::Telnet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Mqtt => "mqtt",
            AppProto::Coap => "coap",
            AppProto::Telnet => "telnet",
        }
    }
}

/// Bytes per direction a TCP flow may show before its protocol is decided.
pub const PROBE_MAX_BYTES: usize = 4096;
/// UDP datagrams that may fail the CoAP probe before a flow is left opaque.
pub const UDP_PROBE_DATAGRAMS: u8 = 4;

/// Port hints (IANA assignments and the usual IoT alternatives).
fn port_hint_tcp(port: u16) -> Option<AppProto> {
    match port {
        1883 | 1884 => Some(AppProto::Mqtt),
        80 | 81 | 591 | 8000 | 8008 | 8080 | 8081 | 8888 => Some(AppProto::Http),
        23 | 2323 => Some(AppProto::Telnet),
        _ => None,
    }
}

fn port_hint_udp(port: u16) -> Option<AppProto> {
    match port {
        5683 => Some(AppProto::Coap),
        // SSDP (UPnP discovery): HTTP messages over UDP, one per datagram.
        SSDP_PORT => Some(AppProto::Http),
        _ => None,
    }
}

/// SSDP's multicast port (UPnP Device Architecture 2.0 §1.1).
pub const SSDP_PORT: u16 = 1900;

/// Early bytes of a TCP flow whose protocol is not known yet, in arrival order.
#[derive(Debug, Default)]
pub struct Pending {
    chunks: Vec<(Direction, Vec<u8>)>,
    bytes: [usize; 2],
    udp_misses: u8,
}

impl Pending {
    /// All bytes `dir` sent so far, with `extra` (not yet stored) appended.
    fn first_bytes(&self, dir: Direction, extra: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = self
            .chunks
            .iter()
            .filter(|(d, _)| *d == dir)
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        v.extend_from_slice(extra);
        v
    }
}

/// The protocols whose probe matched, in probe order (at most the three TCP
/// protocols), without allocating.
#[derive(Clone, Copy, Debug, Default)]
struct Matched {
    protos: [Option<AppProto>; 3],
    len: usize,
}

impl Matched {
    fn push(&mut self, proto: AppProto) {
        if let Some(slot) = self.protos.get_mut(self.len) {
            *slot = Some(proto);
            self.len += 1;
        }
    }

    fn first(&self) -> Option<AppProto> {
        self.protos[0]
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn contains(&self, proto: &AppProto) -> bool {
        self.protos.contains(&Some(*proto))
    }
}

/// Per-flow application state.
#[derive(Debug, Default)]
pub enum AppSession {
    /// Not decided yet.
    #[default]
    Undecided,
    Probing(Box<Pending>),
    Http(Box<http::HttpSession>),
    Mqtt(Box<mqtt::MqttSession>),
    Coap(Box<coap::CoapSession>),
    Telnet(Box<telnet::TelnetSession>),
    /// Not a protocol spanwatch parses.
    Opaque,
}

impl AppSession {
    pub fn proto(&self) -> Option<AppProto> {
        match self {
            AppSession::Http(_) => Some(AppProto::Http),
            AppSession::Mqtt(_) => Some(AppProto::Mqtt),
            AppSession::Coap(_) => Some(AppProto::Coap),
            AppSession::Telnet(_) => Some(AppProto::Telnet),
            _ => None,
        }
    }
}

/// Per-flow application state: the session, and whether the flow table's
/// client/server orientation had to be turned around (a flow picked up
/// mid-stream is oriented by ports; content such as a request line from the
/// supposed server proves it wrong).
#[derive(Debug, Default)]
pub struct FlowApp {
    pub session: AppSession,
    pub swapped: bool,
}

/// The flow as the application sees it: oriented by content when that
/// disagreed with the flow table.
fn view(flow: &FlowInfo, swapped: bool) -> std::borrow::Cow<'_, FlowInfo> {
    if !swapped {
        return std::borrow::Cow::Borrowed(flow);
    }
    let mut f = flow.clone();
    std::mem::swap(&mut f.client, &mut f.server);
    std::mem::swap(&mut f.client_mac, &mut f.server_mac);
    f.packets.swap(0, 1);
    f.bytes.swap(0, 1);
    std::borrow::Cow::Owned(f)
}

fn orient(dir: Direction, swapped: bool) -> Direction {
    if swapped { dir.reverse() } else { dir }
}

/// One event from any parser.
#[derive(Clone, Copy, Debug)]
pub enum AppEvent<'a> {
    Http(&'a http::HttpEvent),
    Mqtt(&'a mqtt::MqttEvent),
    Coap(&'a coap::CoapEvent),
    Telnet(&'a telnet::TelnetEvent),
}

/// Receives every parser event with its flow and time.
pub trait AppEventSink {
    /// A flow was recognised as `proto`.
    fn on_detect(&mut self, flow: &FlowInfo, proto: AppProto);
    fn on_event(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, event: AppEvent<'_>);
    /// The flow ended; `proto` is what it was recognised as, if anything.
    fn on_close(&mut self, flow: &FlowInfo, proto: Option<AppProto>);
}

/// Parser limits, one per protocol.
#[derive(Clone, Debug, Default)]
pub struct AppLimits {
    pub http: http::HttpLimits,
    pub mqtt: mqtt::MqttLimits,
    pub coap: coap::CoapLimits,
    pub telnet: telnet::TelnetLimits,
}

/// Memory accounted to a session beyond its own struct: its tables and
/// buffers in ordinary use (each is bounded by its limits).
pub const SESSION_HEAP_ESTIMATE_BYTES: usize = 1024;

/// Memory for protocol sessions across all flows. A flow that would exceed it
/// is left unparsed (opaque), and counted.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct SessionBudget {
    pub cap_bytes: usize,
    pub used_bytes: usize,
    pub peak_bytes: usize,
    /// Flows left unparsed because the budget was exhausted.
    pub refused: u64,
}

fn session_cost(proto: AppProto) -> usize {
    let inline = match proto {
        AppProto::Http => std::mem::size_of::<http::HttpSession>(),
        AppProto::Mqtt => std::mem::size_of::<mqtt::MqttSession>(),
        AppProto::Coap => std::mem::size_of::<coap::CoapSession>(),
        AppProto::Telnet => std::mem::size_of::<telnet::TelnetSession>(),
    };
    inline + SESSION_HEAP_ESTIMATE_BYTES
}

/// Creates sessions, feeds them, and hands their events to a sink. Holds the
/// event buffers so that nothing is allocated per packet.
#[derive(Default)]
pub struct Dispatcher {
    limits: AppLimits,
    pub budget: SessionBudget,
    http: Vec<http::HttpEvent>,
    mqtt: Vec<mqtt::MqttEvent>,
    coap: Vec<coap::CoapEvent>,
    telnet: Vec<telnet::TelnetEvent>,
}

/// Where a chunk of a TCP stream goes.
enum Feed<'a> {
    Data(&'a [u8]),
    Gap(u64),
    Close,
}

impl Dispatcher {
    pub fn new(limits: AppLimits, memcap_bytes: usize) -> Self {
        Dispatcher {
            limits,
            budget: SessionBudget {
                cap_bytes: memcap_bytes,
                ..SessionBudget::default()
            },
            ..Dispatcher::default()
        }
    }

    /// A new session for `proto`, or `Opaque` when the session budget is spent.
    fn session(&mut self, proto: AppProto) -> AppSession {
        let cost = session_cost(proto);
        if self.budget.used_bytes + cost > self.budget.cap_bytes {
            self.budget.refused += 1;
            return AppSession::Opaque;
        }
        self.budget.used_bytes += cost;
        self.budget.peak_bytes = self.budget.peak_bytes.max(self.budget.used_bytes);
        match proto {
            AppProto::Http => {
                AppSession::Http(Box::new(http::HttpSession::new(self.limits.http.clone())))
            }
            AppProto::Mqtt => {
                AppSession::Mqtt(Box::new(mqtt::MqttSession::new(self.limits.mqtt.clone())))
            }
            AppProto::Coap => AppSession::Coap(Box::new(coap::CoapSession::new(self.limits.coap))),
            AppProto::Telnet => {
                AppSession::Telnet(Box::new(telnet::TelnetSession::new(self.limits.telnet)))
            }
        }
    }

    /// In-order bytes or a gap of a TCP stream.
    pub fn on_stream(
        &mut self,
        flow: &FlowInfo,
        state: &mut FlowApp,
        dir: Direction,
        ev: StreamEvent<'_>,
        sink: &mut dyn AppEventSink,
    ) {
        if let (AppSession::Undecided | AppSession::Probing(_), StreamEvent::Data(data)) =
            (&state.session, &ev)
        {
            self.detect_tcp(flow, state, dir, data, sink);
            return;
        }
        let flow = view(flow, state.swapped);
        let dir = orient(dir, state.swapped);
        let app = &mut state.session;
        let ts = flow.last_ts;
        match ev {
            StreamEvent::Data(data) => self.feed(&flow, app, ts, dir, Feed::Data(data), sink),
            StreamEvent::Gap(n) => match app {
                // Bytes before the protocol is known are lost for detection; start over.
                AppSession::Probing(p) => p.chunks.retain(|(d, _)| *d != dir),
                _ => self.feed(&flow, app, ts, dir, Feed::Gap(n), sink),
            },
        }
    }

    /// The flow ended: flush its session.
    pub fn on_close(&mut self, flow: &FlowInfo, state: &mut FlowApp, sink: &mut dyn AppEventSink) {
        let flow = &*view(flow, state.swapped);
        let app = &mut state.session;
        if let AppSession::Probing(pending) = app {
            // Decide with what was seen, by port, and parse it.
            if let Some(proto) = port_hint_tcp(flow.server.1) {
                let pending = std::mem::take(pending);
                *app = self.session(proto);
                if app.proto().is_some() {
                    sink.on_detect(flow, proto);
                }
                for (d, chunk) in &pending.chunks {
                    self.feed(flow, app, flow.last_ts, *d, Feed::Data(chunk), sink);
                }
            }
        }
        self.feed(
            flow,
            app,
            flow.last_ts,
            Direction::ToServer,
            Feed::Close,
            sink,
        );
        let proto = app.proto();
        if let Some(proto) = proto {
            self.budget.used_bytes = self.budget.used_bytes.saturating_sub(session_cost(proto));
        }
        sink.on_close(flow, proto);
        *app = AppSession::Opaque;
    }

    fn detect_tcp(
        &mut self,
        flow: &FlowInfo,
        state: &mut FlowApp,
        dir: Direction,
        data: &[u8],
        sink: &mut dyn AppEventSink,
    ) {
        // The usual first call has all the bytes in `data`: probe it in place.
        let first: std::borrow::Cow<'_, [u8]> = match &state.session {
            AppSession::Probing(p) => p.first_bytes(dir, data).into(),
            _ => data.into(),
        };
        let probe_all = |as_dir: Direction| {
            [
                (AppProto::Telnet, telnet::probe(&first, as_dir)),
                (AppProto::Mqtt, mqtt::probe(&first, as_dir)),
                (AppProto::Http, http::probe(&first, as_dir)),
            ]
        };
        let matches = |probes: &[(AppProto, Probe)]| -> Matched {
            let mut m = Matched::default();
            for (proto, _) in probes.iter().filter(|(_, p)| *p == Probe::Match) {
                m.push(*proto);
            }
            m
        };
        let mut probes = probe_all(dir);
        let mut matched = matches(&probes);
        if matched.is_empty() {
            // A request (or CONNECT) where the flow table expected the server
            // to speak: the orientation guessed from ports was wrong.
            let reversed = probe_all(dir.reverse());
            let reversed_matched = matches(&reversed);
            if !reversed_matched.is_empty() && !state.swapped {
                state.swapped = true;
                probes = reversed;
                matched = reversed_matched;
            }
        }
        let swapped = state.swapped;
        let app = &mut state.session;
        let flow = &*view(flow, swapped);
        let dir = orient(dir, swapped);
        let hint = port_hint_tcp(flow.server.1);
        let undecided = probes.iter().any(|(_, p)| *p == Probe::NeedMore);
        let seen = match app {
            AppSession::Probing(p) => p.bytes[dir.index()] + data.len(),
            _ => data.len(),
        };
        let choice = if let Some(only) = matched.first() {
            Some(hint.filter(|h| matched.contains(h)).unwrap_or(only))
        } else if undecided && seen < PROBE_MAX_BYTES {
            None
        } else {
            // Content says nothing we know (or nothing decisive in time): a
            // protocol's own port still gets its parser, which then reports
            // what is wrong with the traffic.
            match hint {
                Some(h) => Some(h),
                None => {
                    *app = AppSession::Opaque;
                    return;
                }
            }
        };
        match choice {
            None => {
                let pending = match app {
                    AppSession::Probing(p) => p,
                    _ => {
                        *app = AppSession::Probing(Box::default());
                        let AppSession::Probing(p) = app else {
                            return;
                        };
                        p
                    }
                };
                pending.bytes[dir.index()] += data.len();
                pending.chunks.push((dir, data.to_vec()));
            }
            Some(proto) => {
                let earlier = match std::mem::take(app) {
                    AppSession::Probing(p) => p.chunks,
                    _ => Vec::new(),
                };
                // Chunks were stored in the flow table's orientation.
                let earlier: Vec<(Direction, Vec<u8>)> = earlier
                    .into_iter()
                    .map(|(d, c)| (orient(d, swapped), c))
                    .collect();
                *app = self.session(proto);
                if app.proto().is_some() {
                    sink.on_detect(flow, proto);
                }
                let ts = flow.last_ts;
                for (d, chunk) in &earlier {
                    self.feed(flow, app, ts, *d, Feed::Data(chunk), sink);
                }
                self.feed(flow, app, ts, dir, Feed::Data(data), sink);
            }
        }
    }

    /// A UDP datagram.
    pub fn on_datagram(
        &mut self,
        flow: &FlowInfo,
        app: &mut AppSession,
        dir: Direction,
        payload: &[u8],
        sink: &mut dyn AppEventSink,
    ) {
        if matches!(app, AppSession::Undecided | AppSession::Probing(_)) {
            let hint = port_hint_udp(flow.server.1).or(port_hint_udp(flow.client.1));
            let proto = if coap::probe(payload, dir) == Probe::Match {
                Some(AppProto::Coap)
            } else {
                hint
            };
            if let Some(proto) = proto {
                *app = self.session(proto);
                if app.proto().is_some() {
                    sink.on_detect(flow, proto);
                }
            } else {
                let misses = match app {
                    AppSession::Probing(p) => {
                        p.udp_misses += 1;
                        p.udp_misses
                    }
                    _ => {
                        *app = AppSession::Probing(Box::new(Pending {
                            udp_misses: 1,
                            ..Pending::default()
                        }));
                        1
                    }
                };
                if misses >= UDP_PROBE_DATAGRAMS {
                    *app = AppSession::Opaque;
                }
                return;
            }
        }
        match app {
            AppSession::Coap(s) => {
                self.coap.clear();
                s.on_datagram(flow.last_ts, dir, payload, &mut self.coap);
                for ev in &self.coap {
                    sink.on_event(flow, flow.last_ts, dir, AppEvent::Coap(ev));
                }
            }
            // Each SSDP datagram is one whole HTTP message: parse it, then
            // close it off so a lost or malformed one cannot stall the next.
            AppSession::Http(s) => {
                self.http.clear();
                s.on_data(flow.last_ts, dir, payload, &mut self.http);
                s.on_gap(flow.last_ts, dir, 0, &mut self.http);
                for ev in &self.http {
                    sink.on_event(flow, flow.last_ts, dir, AppEvent::Http(ev));
                }
            }
            _ => {}
        }
    }

    fn feed(
        &mut self,
        flow: &FlowInfo,
        app: &mut AppSession,
        ts: Timestamp,
        dir: Direction,
        what: Feed<'_>,
        sink: &mut dyn AppEventSink,
    ) {
        macro_rules! run {
            ($session:expr, $buf:ident, $variant:ident) => {{
                self.$buf.clear();
                match what {
                    Feed::Data(d) => $session.on_data(ts, dir, d, &mut self.$buf),
                    Feed::Gap(n) => $session.on_gap(ts, dir, n, &mut self.$buf),
                    Feed::Close => $session.on_close(ts, &mut self.$buf),
                }
                for ev in &self.$buf {
                    sink.on_event(flow, ts, dir, AppEvent::$variant(ev));
                }
            }};
        }
        match app {
            AppSession::Http(s) => run!(s, http, Http),
            AppSession::Mqtt(s) => run!(s, mqtt, Mqtt),
            AppSession::Telnet(s) => run!(s, telnet, Telnet),
            AppSession::Coap(s) => {
                if let Feed::Close = what {
                    self.coap.clear();
                    s.expire(Timestamp(i64::MAX), &mut self.coap);
                    for ev in &self.coap {
                        sink.on_event(flow, ts, dir, AppEvent::Coap(ev));
                    }
                }
            }
            AppSession::Undecided | AppSession::Probing(_) | AppSession::Opaque => {}
        }
    }
}
