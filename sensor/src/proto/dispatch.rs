//! Which protocol a flow speaks, and the per-flow session that parses it.
//!
//! Detection is by content first — each protocol's `probe` looks at the first
//! bytes either side sent — with the well-known ports only as hints: to break a
//! tie, or to decide when the content is undecidable (a Telnet server that
//! never negotiates, a CoAP server answering with an anomaly). A flow whose
//! first bytes match nothing is left opaque.

use super::Probe;
use super::registry::{AppLimits, AppProto, EventBufs, Events, Feed, Session};
use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo, StreamEvent};

/// Bytes per direction a TCP flow may show before its protocol is decided.
pub const PROBE_MAX_BYTES: usize = 4096;
/// UDP datagrams that may fail the CoAP probe before a flow is left opaque.
pub const UDP_PROBE_DATAGRAMS: u8 = 4;

/// The protocol whose well-known TCP port `port` is (a hint only).
fn port_hint_tcp(port: u16) -> Option<AppProto> {
    AppProto::ALL
        .iter()
        .copied()
        .find(|p| p.tcp_ports().contains(&port))
}

/// The protocol whose well-known UDP port `port` is (a hint only).
fn port_hint_udp(port: u16) -> Option<AppProto> {
    AppProto::ALL
        .iter()
        .copied()
        .find(|p| p.udp_ports().contains(&port))
}

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

/// What the stream probes of every protocol said about some first bytes.
#[derive(Clone, Copy, Debug)]
struct Probes([Probe; AppProto::ALL.len()]);

impl Probes {
    fn of(first: &[u8], dir: Direction) -> Probes {
        let mut out = [Probe::NoMatch; AppProto::ALL.len()];
        for (slot, proto) in out.iter_mut().zip(AppProto::ALL) {
            *slot = proto.probe_stream(first, dir);
        }
        Probes(out)
    }

    fn matched(&self) -> impl Iterator<Item = AppProto> + '_ {
        AppProto::ALL
            .iter()
            .zip(self.0)
            .filter(|(_, p)| *p == Probe::Match)
            .map(|(proto, _)| *proto)
    }

    fn undecided(&self) -> bool {
        self.0.contains(&Probe::NeedMore)
    }
}

/// Per-flow application state.
#[derive(Debug, Default)]
pub enum AppSession {
    /// Not decided yet.
    #[default]
    Undecided,
    Probing(Box<Pending>),
    Parsed(Session),
    /// Not a protocol spanwatch parses.
    Opaque,
}

impl AppSession {
    pub fn proto(&self) -> Option<AppProto> {
        match self {
            AppSession::Parsed(s) => Some(s.proto()),
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

/// Receives every parser event with its flow and time.
pub trait AppEventSink {
    /// A flow was recognised as `proto` and is parsed: a session of
    /// [`AppProto::session_cost`] bytes is taken from the memcap.
    fn on_detect(&mut self, flow: &FlowInfo, proto: AppProto);
    /// A flow recognised as `proto` is left unparsed: the memcap is spent.
    fn on_refused(&mut self, flow: &FlowInfo, proto: AppProto);
    /// The events of one feed of a session, in order (the sink may move
    /// them out of the session's buffer).
    fn on_events(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, events: Events<'_>);
    /// The flow ended; `proto` is what it was recognised as, if anything
    /// (its session's memory goes back to the memcap).
    fn on_close(&mut self, flow: &FlowInfo, proto: Option<AppProto>);
}

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

impl SessionBudget {
    /// A session of `proto` was started.
    pub fn taken(&mut self, proto: AppProto) {
        self.used_bytes += proto.session_cost();
        self.peak_bytes = self.peak_bytes.max(self.used_bytes);
    }

    /// A session of `proto` ended.
    pub fn given_back(&mut self, proto: AppProto) {
        self.used_bytes = self.used_bytes.saturating_sub(proto.session_cost());
    }
}

/// Creates sessions, feeds them, and hands their events to a sink. Holds the
/// event buffers so that nothing is allocated per packet. The sink is told
/// of every session taken from the memcap, refused and given back, and
/// keeps the counts ([`SessionBudget`]).
#[derive(Default)]
pub struct Dispatcher {
    limits: AppLimits,
    /// Memory this dispatcher's sessions may take, and take now.
    cap_bytes: usize,
    used_bytes: usize,
    bufs: EventBufs,
}

impl Dispatcher {
    pub fn new(limits: AppLimits, memcap_bytes: usize) -> Self {
        Dispatcher {
            limits,
            cap_bytes: memcap_bytes,
            used_bytes: 0,
            bufs: EventBufs::default(),
        }
    }

    /// Starts parsing `flow` as `proto` if the memcap allows (else leaves
    /// it opaque), and says which.
    fn start(
        &mut self,
        flow: &FlowInfo,
        app: &mut AppSession,
        proto: AppProto,
        sink: &mut dyn AppEventSink,
    ) {
        let cost = proto.session_cost();
        if self.used_bytes + cost > self.cap_bytes {
            *app = AppSession::Opaque;
            sink.on_refused(flow, proto);
            return;
        }
        self.used_bytes += cost;
        *app = AppSession::Parsed(Session::new(proto, &self.limits));
        sink.on_detect(flow, proto);
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
        match ev {
            StreamEvent::Data(data) => self.feed(&flow, app, dir, Feed::Data(data), sink),
            StreamEvent::Gap(n) => match app {
                // Bytes before the protocol is known are lost for detection; start over.
                AppSession::Probing(p) => p.chunks.retain(|(d, _)| *d != dir),
                _ => self.feed(&flow, app, dir, Feed::Gap(n), sink),
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
                self.start(flow, app, proto, sink);
                for (d, chunk) in &pending.chunks {
                    self.feed(flow, app, *d, Feed::Data(chunk), sink);
                }
            }
        }
        self.feed(flow, app, Direction::ToServer, Feed::Close, sink);
        let proto = app.proto();
        if let Some(proto) = proto {
            self.used_bytes = self.used_bytes.saturating_sub(proto.session_cost());
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
        let mut probes = Probes::of(&first, dir);
        if probes.matched().next().is_none() {
            // A request (or CONNECT) where the flow table expected the server
            // to speak: the orientation guessed from ports was wrong.
            let reversed = Probes::of(&first, dir.reverse());
            if reversed.matched().next().is_some() && !state.swapped {
                state.swapped = true;
                probes = reversed;
            }
        }
        let swapped = state.swapped;
        let app = &mut state.session;
        let flow = &*view(flow, swapped);
        let dir = orient(dir, swapped);
        let hint = port_hint_tcp(flow.server.1);
        let seen = match app {
            AppSession::Probing(p) => p.bytes[dir.index()] + data.len(),
            _ => data.len(),
        };
        let choice = if let Some(only) = probes.matched().next() {
            Some(
                hint.filter(|h| probes.matched().any(|m| m == *h))
                    .unwrap_or(only),
            )
        } else if probes.undecided() && seen < PROBE_MAX_BYTES {
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
                self.start(flow, app, proto, sink);
                // Chunks were stored in the flow table's orientation.
                for (d, chunk) in &earlier {
                    self.feed(flow, app, orient(*d, swapped), Feed::Data(chunk), sink);
                }
                self.feed(flow, app, dir, Feed::Data(data), sink);
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
            let by_content = AppProto::ALL
                .iter()
                .copied()
                .find(|p| p.probe_datagram(payload, dir) == Probe::Match);
            if let Some(proto) = by_content.or(hint) {
                self.start(flow, app, proto, sink);
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
        self.feed(flow, app, dir, Feed::Datagram(payload), sink);
    }

    fn feed(
        &mut self,
        flow: &FlowInfo,
        app: &mut AppSession,
        dir: Direction,
        what: Feed<'_>,
        sink: &mut dyn AppEventSink,
    ) {
        if let AppSession::Parsed(session) = app {
            let ts = flow.last_ts;
            let events = session.feed(ts, dir, what, &mut self.bufs);
            sink.on_events(flow, ts, dir, events);
        }
    }
}
