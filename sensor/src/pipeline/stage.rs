//! The application stage (protocol parsers, the event layer, rules, alerts,
//! logs) and how the flow stage hands it work: batches of flow observations
//! and packet-time ticks in packet order, run either on the same thread or on
//! a worker thread of their own.
//!
//! The flow stage copies what the application stage needs (flow record, stream
//! bytes, datagrams, packet notes, the end of every flow) into a [`Batch`].
//! Batches go through a bounded queue, so a slow application stage slows
//! capture down instead of growing memory; emptied batches come back to be
//! filled again. The application stage sees the same observations in the same
//! order either way, so its output does not depend on where it runs.

use std::ops::Range;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::alert::{AlertInput, Alerter};
use crate::capture::Timestamp;
use crate::decode::NonIp;
use crate::detect::detector::Detector;
use crate::detect::rules::RuleMatch;
use crate::event::Normalizer;
use crate::features::{Extractor, WindowSink};
use crate::flow::{
    CloseReason, Direction, FlowActivity, FlowHandler, FlowInfo, PacketNote, StreamEvent,
};
use crate::proto::dispatch::{AppEventSink, Dispatcher, FlowApp};
use crate::proto::log::{LogContext, LogError, ProtocolLogs};
use crate::proto::norm::Event;
use crate::proto::{AppEvent, AppProto, ProtoCounts};
use crate::summary::{DetectionSummary, DevicesSummary, Talkers};

/// A batch is handed over once it holds this many observations...
pub const BATCH_ITEMS: usize = 1024;
/// ...or this many bytes of stream data and datagrams (sized to stay in cache).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Batches waiting for the worker thread; capture waits when they are all full.
pub const QUEUE_BATCHES: usize = 4;

/// What the flow stage saw of one flow that the application stage acts on.
#[derive(Debug)]
enum ItemKind {
    Packet {
        note: PacketNote,
        established_before: bool,
    },
    /// In-order stream bytes, in the batch's byte buffer.
    Data(Range<usize>),
    Gap(u64),
    /// A UDP payload, in the batch's byte buffer.
    Datagram(Range<usize>),
    Close,
}

/// One observation, in packet order.
#[derive(Debug)]
enum Item {
    /// Of one flow, with the flow record as it was then.
    Flow {
        /// The flow's application state in [`AppStage::apps`], once it had
        /// something for that stage.
        slot: Option<u32>,
        dir: Direction,
        flow: FlowInfo,
        kind: ItemKind,
    },
    /// Packet time went on to `now` (at least once a second, also when
    /// quiet): what the flows did in the second that began at `second`, and
    /// the frames without IP of that second.
    Tick {
        now: Timestamp,
        second: Timestamp,
        activity: Vec<FlowActivity>,
        non_ip: Vec<NonIp>,
    },
}

/// Observations in packet order, and the bytes they carry.
#[derive(Debug, Default)]
pub struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            items: Vec::with_capacity(BATCH_ITEMS),
            bytes: Vec::with_capacity(BATCH_BYTES),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.bytes.len() >= BATCH_BYTES
    }

    fn bytes(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }
}

/// What the application stage's slot table costs per flow: its entry (the
/// table grows by doubling, so twice over) and a free-list entry.
pub const SLOT_BYTES_PER_FLOW: usize =
    2 * std::mem::size_of::<FlowApp>() + std::mem::size_of::<u32>();

/// The flow table's per-flow state in the flow stage: which application
/// state slot the flow was given, once it had something for that stage, and
/// where this second's activity record of the flow is.
#[derive(Debug, Default)]
pub struct AppSlot {
    slot: Option<u32>,
    /// The tick number of the second `activity` is of (0: none yet).
    tick: u32,
    activity: u32,
}

/// Frames without IP kept per second for the device stage; more are counted
/// in [`Handoff::non_ip_dropped`].
pub const MAX_NON_IP_PER_SECOND: usize = 65_536;

/// The flow table's consumer in the flow stage: fills the batch, and counts
/// the top talkers (which need only the flow records).
#[derive(Debug)]
pub struct Handoff {
    parse_protocols: bool,
    /// A detector wants the notes of the packets that tell of connection
    /// attempts and refusals.
    pub packets: bool,
    pub batch: Batch,
    free: Vec<u32>,
    next_slot: u32,
    pub talkers: Talkers,
    /// The device stage wants each flow's activity per second and the
    /// frames without IP.
    pub devices: bool,
    /// Number of the current second (from 1), its start, and what happened
    /// in it so far.
    tick_no: u32,
    second: Timestamp,
    activity: Vec<FlowActivity>,
    non_ip: Vec<NonIp>,
    pub non_ip_dropped: u64,
}

impl Handoff {
    pub fn new(parse_protocols: bool) -> Self {
        Handoff {
            parse_protocols,
            packets: false,
            batch: Batch::new(),
            free: Vec::new(),
            next_slot: 0,
            talkers: Talkers::default(),
            devices: false,
            tick_no: 1,
            second: Timestamp::default(),
            activity: Vec::new(),
            non_ip: Vec::new(),
            non_ip_dropped: 0,
        }
    }

    fn push(&mut self, info: &FlowInfo, app: &mut AppSlot, dir: Direction, kind: ItemKind) {
        let slot = match app.slot {
            Some(slot) => slot,
            None => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.next_slot += 1;
                    self.next_slot - 1
                });
                app.slot = Some(slot);
                slot
            }
        };
        self.batch.items.push(Item::Flow {
            slot: Some(slot),
            dir,
            flow: info.clone(),
            kind,
        });
    }

    /// Packet time reached `now`: the second that ended goes with the tick.
    pub fn tick(&mut self, now: Timestamp) {
        self.batch.items.push(Item::Tick {
            now,
            second: self.second,
            activity: std::mem::take(&mut self.activity),
            non_ip: std::mem::take(&mut self.non_ip),
        });
        self.second = now;
        self.tick_no = self.tick_no.wrapping_add(1).max(1);
    }

    /// A frame that carries no IP, for the device stage.
    pub fn non_ip(&mut self, frame: NonIp) {
        if !self.devices {
            return;
        }
        if self.non_ip.len() < MAX_NON_IP_PER_SECOND {
            self.non_ip.push(frame);
        } else {
            self.non_ip_dropped += 1;
        }
    }
}

impl FlowHandler<AppSlot> for Handoff {
    fn on_packet(
        &mut self,
        info: &FlowInfo,
        app: &mut AppSlot,
        dir: Direction,
        pkt: &crate::decode::Packet<'_>,
        established_before: bool,
    ) {
        if !self.packets && !self.devices {
            return;
        }
        let note = PacketNote::of(pkt);
        if self.devices {
            if app.tick != self.tick_no {
                app.tick = self.tick_no;
                app.activity = self.activity.len() as u32;
                let opened = info.packets[0] + info.packets[1] == 1;
                self.activity.push(FlowActivity::of(info, opened));
            }
            if let Some(a) = self.activity.get_mut(app.activity as usize) {
                a.add(dir, pkt.wire_len, &note, established_before);
            }
        }
        if self.packets && note.is_connection_signal() {
            let kind = ItemKind::Packet {
                note,
                established_before,
            };
            self.push(info, app, dir, kind);
        }
    }

    fn on_stream(
        &mut self,
        info: &FlowInfo,
        app: &mut AppSlot,
        dir: Direction,
        ev: StreamEvent<'_>,
    ) {
        if !self.parse_protocols {
            return;
        }
        let kind = match ev {
            StreamEvent::Data(data) => ItemKind::Data(self.batch.bytes(data)),
            StreamEvent::Gap(n) => ItemKind::Gap(n),
        };
        self.push(info, app, dir, kind);
    }

    fn on_datagram(&mut self, info: &FlowInfo, app: &mut AppSlot, dir: Direction, payload: &[u8]) {
        if !self.parse_protocols {
            return;
        }
        let kind = ItemKind::Datagram(self.batch.bytes(payload));
        self.push(info, app, dir, kind);
    }

    /// Every flow's end reaches the application stage, whether or not it
    /// carried anything for the parsers; its slot goes to the next new flow.
    fn on_close(&mut self, info: &FlowInfo, app: &mut AppSlot, _: CloseReason) {
        self.talkers.add_flow(info);
        let slot = app.slot.take();
        if let Some(slot) = slot {
            self.free.push(slot);
        }
        self.batch.items.push(Item::Flow {
            slot,
            dir: Direction::ToServer,
            flow: info.clone(),
            kind: ItemKind::Close,
        });
    }
}

/// The rules and the alert stage they raise alerts through.
pub struct Detection {
    pub rules: Detector,
    pub alerts: Alerter,
    /// Matches of the current input, reused.
    matches: Vec<RuleMatch>,
}

impl Detection {
    pub fn new(rules: Detector, alerts: Alerter) -> Self {
        Detection {
            rules,
            alerts,
            matches: Vec::new(),
        }
    }

    /// Runs the rules on `events` and raises an alert for every match.
    fn run(&mut self, events: &[Event]) {
        self.rules.run(events, &mut self.matches);
        for m in self.matches.drain(..) {
            self.alerts.raise(AlertInput::from(&m));
        }
    }

    pub fn summary(&self) -> DetectionSummary {
        let rules = self.rules.summary();
        DetectionSummary {
            rules: rules.rules,
            engine: rules.engine,
            alerts: self.alerts.stats(),
        }
    }
}

/// Device profiles and feature windows, and where the windows go.
pub struct Devices {
    pub extractor: Extractor,
    pub sinks: Vec<Box<dyn WindowSink>>,
    /// The first sink failure; that sink's later windows are lost.
    pub sink_error: Option<std::io::Error>,
}

impl Devices {
    pub fn new(extractor: Extractor) -> Self {
        Devices {
            extractor,
            sinks: Vec::new(),
            sink_error: None,
        }
    }

    /// Hands the windows that closed to every sink, then the time, when
    /// packet time reached `now`.
    fn drain(&mut self, now: Option<Timestamp>) {
        let (windows, inventory) = self.extractor.take_windows();
        for w in windows {
            let device = inventory.get(&w.device);
            for sink in &mut self.sinks {
                if let Err(e) = sink.window(&w, device) {
                    self.sink_error.get_or_insert(e);
                }
            }
        }
        if let Some(now) = now {
            for sink in &mut self.sinks {
                if let Err(e) = sink.tick(now) {
                    self.sink_error.get_or_insert(e);
                }
            }
        }
    }

    /// End of input: the last windows close and every sink writes out.
    pub fn finish(&mut self) {
        self.extractor.finish();
        self.drain(None);
        for sink in &mut self.sinks {
            if let Err(e) = sink.flush() {
                self.sink_error.get_or_insert(e);
            }
        }
    }
}

/// Hands normalised events to the stages that read them.
fn consume(detection: &mut Option<Detection>, devices: &mut Option<Devices>, events: &[Event]) {
    if let Some(d) = detection.as_mut() {
        d.run(events);
    }
    if let Some(d) = devices.as_mut() {
        for ev in events {
            d.extractor.event(ev);
        }
    }
}

/// What the pipeline does with parser events: counts them and, when asked,
/// writes the per-protocol logs, normalises them and hands them to the rules
/// and the device stage.
#[derive(Default)]
pub struct EventSink {
    pub protocols: ProtoCounts,
    pub logs: Option<ProtocolLogs>,
    /// The first log write failure; logging stops there.
    pub log_error: Option<LogError>,
    pub normalizer: Normalizer,
    pub detection: Option<Detection>,
    pub devices: Option<Devices>,
}

impl EventSink {
    fn normalizing(&self) -> bool {
        self.detection.is_some() || self.devices.is_some()
    }

    fn packet(&mut self, flow: &FlowInfo, dir: Direction, note: &PacketNote, established: bool) {
        if self.normalizing() {
            let events = self.normalizer.packet(flow, dir, note, established);
            consume(&mut self.detection, &mut self.devices, events);
        }
    }

    fn tick(
        &mut self,
        now: Timestamp,
        second: Timestamp,
        activity: &[FlowActivity],
        non_ip: &[NonIp],
    ) {
        if let Some(d) = self.devices.as_mut() {
            d.extractor.tick(now, second, activity, non_ip);
            d.drain(Some(now));
        }
    }
}

impl AppEventSink for EventSink {
    fn on_detect(&mut self, flow: &FlowInfo, proto: AppProto) {
        self.protocols.on_detect(proto);
        if self.normalizing() {
            let events = self.normalizer.detect(flow, proto);
            consume(&mut self.detection, &mut self.devices, events);
        }
    }

    fn on_close(&mut self, flow: &FlowInfo, proto: Option<AppProto>) {
        let events = self.normalizer.close(flow, proto);
        consume(&mut self.detection, &mut self.devices, events);
    }

    fn on_event(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, event: AppEvent<'_>) {
        self.protocols.on_event(event);
        if self.normalizing() {
            let events = self.normalizer.event(flow, ts, dir, event);
            consume(&mut self.detection, &mut self.devices, events);
        }
        if let Some(logs) = self.logs.as_mut() {
            let ctx = LogContext { ts, flow, dir };
            if let Err(e) = logs.write_event(&ctx, event) {
                self.log_error = Some(e);
                self.logs = None;
            }
        }
    }
}

/// What the application stage publishes for readers on other threads (the
/// periodic summary, /metrics): taken at every tick, so reading it never
/// stops the pipeline.
#[derive(Clone, Debug, Default)]
pub struct AppSnapshot {
    /// Packet time of the tick it was taken at.
    pub at: Option<Timestamp>,
    pub protocols: ProtoCounts,
    pub sessions: crate::proto::dispatch::SessionBudget,
    pub detection: Option<DetectionSummary>,
    pub devices: Option<DevicesSummary>,
}

/// Where the application stage's snapshot is published.
pub type SharedSnapshot = Arc<Mutex<AppSnapshot>>;

/// Snapshots are taken at a tick of packet time, at most this often in wall
/// time: a replay ticks thousands of times a second, and readers (the
/// periodic summary, a /metrics scrape) need no more than this.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(200);

/// Protocol sessions, events, rules and logs: everything after the flow table.
#[derive(Default)]
pub struct AppStage {
    pub dispatcher: Dispatcher,
    pub sink: EventSink,
    /// Per-flow application state, by the slot the flow stage gave the flow.
    apps: Vec<FlowApp>,
    /// Published at ticks, at most every [`PUBLISH_INTERVAL`].
    pub published: SharedSnapshot,
    last_publish: Option<Instant>,
}

impl AppStage {
    pub fn new(dispatcher: Dispatcher) -> Self {
        AppStage {
            dispatcher,
            sink: EventSink::default(),
            apps: Vec::new(),
            published: SharedSnapshot::default(),
            last_publish: None,
        }
    }

    /// The stage's counters as of now.
    pub fn snapshot(&self, at: Option<Timestamp>) -> AppSnapshot {
        AppSnapshot {
            at,
            protocols: self.sink.protocols.clone(),
            sessions: self.dispatcher.budget,
            detection: self.sink.detection.as_ref().map(Detection::summary),
            devices: self
                .sink
                .devices
                .as_ref()
                .map(|d| DevicesSummary::new(d.extractor.inventory(), d.extractor.stats().windows)),
        }
    }

    /// Act on every observation of `batch`, in order, and empty it.
    pub fn run(&mut self, batch: &mut Batch) {
        for item in batch.items.drain(..) {
            let (slot, dir, flow, kind) = match item {
                Item::Flow {
                    slot,
                    dir,
                    flow,
                    kind,
                } => (slot, dir, flow, kind),
                Item::Tick {
                    now,
                    second,
                    activity,
                    non_ip,
                } => {
                    self.sink.tick(now, second, &activity, &non_ip);
                    if self
                        .last_publish
                        .is_none_or(|at| at.elapsed() >= PUBLISH_INTERVAL)
                    {
                        self.last_publish = Some(Instant::now());
                        let snapshot = self.snapshot(Some(now));
                        if let Ok(mut published) = self.published.lock() {
                            *published = snapshot;
                        }
                    }
                    continue;
                }
            };
            let sink = &mut self.sink;
            let Some(slot) = slot.map(|s| s as usize) else {
                // The end of a flow that never had anything for the parsers.
                sink.on_close(&flow, None);
                continue;
            };
            if slot >= self.apps.len() {
                self.apps.resize_with(slot + 1, FlowApp::default);
            }
            let app = &mut self.apps[slot];
            match kind {
                ItemKind::Packet {
                    note,
                    established_before,
                } => sink.packet(&flow, dir, &note, established_before),
                ItemKind::Data(range) => {
                    let ev = StreamEvent::Data(&batch.bytes[range]);
                    self.dispatcher.on_stream(&flow, app, dir, ev, sink);
                }
                ItemKind::Gap(n) => {
                    self.dispatcher
                        .on_stream(&flow, app, dir, StreamEvent::Gap(n), sink);
                }
                ItemKind::Datagram(range) => {
                    let payload = &batch.bytes[range];
                    self.dispatcher
                        .on_datagram(&flow, &mut app.session, dir, payload, sink);
                }
                ItemKind::Close => {
                    self.dispatcher.on_close(&flow, app, sink);
                    // The slot goes to the next new flow.
                    *app = FlowApp::default();
                }
            }
        }
        batch.bytes.clear();
    }
}

/// The application stage running on a thread of its own.
pub struct Worker {
    jobs: SyncSender<Batch>,
    emptied: Receiver<Batch>,
    thread: JoinHandle<Box<AppStage>>,
}

impl Worker {
    /// Start a thread running `stage`; on failure the stage is given back.
    pub fn start(stage: Box<AppStage>) -> Result<Worker, (Box<AppStage>, std::io::Error)> {
        let (jobs, queue) = mpsc::sync_channel::<Batch>(QUEUE_BATCHES);
        let (give_back, emptied) = mpsc::channel::<Batch>();
        // The stage goes over once the thread exists, so that a failed spawn
        // does not lose it.
        let (hand, take) = mpsc::channel::<Box<AppStage>>();
        let spawned = std::thread::Builder::new()
            .name("spanwatch-app".into())
            .spawn(move || {
                let Ok(mut stage) = take.recv() else {
                    return Box::default();
                };
                for mut batch in queue {
                    stage.run(&mut batch);
                    // The pipeline may have stopped taking batches back.
                    let _ = give_back.send(batch);
                }
                stage
            });
        let thread = match spawned {
            Ok(thread) => thread,
            Err(e) => return Err((stage, e)),
        };
        match hand.send(stage) {
            Ok(()) => Ok(Worker {
                jobs,
                emptied,
                thread,
            }),
            Err(mpsc::SendError(stage)) => Err((
                stage,
                std::io::Error::other("the parser thread ended before it started"),
            )),
        }
    }

    /// Queue `batch` (waiting while the queue is full) and return an empty
    /// batch to fill next. If the thread is gone, the stage and the batch
    /// come back.
    pub fn send(self, batch: Batch) -> Result<(Worker, Batch), (Box<AppStage>, Batch)> {
        match self.jobs.send(batch) {
            Ok(()) => {
                let next = self.emptied.try_recv().unwrap_or_else(|_| Batch::new());
                Ok((self, next))
            }
            Err(mpsc::SendError(batch)) => Err((self.join(), batch)),
        }
    }

    /// Wait for every queued batch to be done and take the stage back. A
    /// panic of the thread goes on here.
    pub fn join(self) -> Box<AppStage> {
        drop(self.jobs);
        match self.thread.join() {
            Ok(stage) => stage,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AppLimits;

    fn udp_flow(id: u64) -> FlowInfo {
        FlowInfo::for_test(id, 17, 5683)
    }

    /// A CoAP GET (RFC 7252 §3): CON, code 0.01, message id 0x1234, no token.
    const COAP_GET: [u8; 4] = [0x40, 0x01, 0x12, 0x34];

    /// (flow id, slot, is a close) of each flow item of a batch.
    fn flow_items(batch: &Batch) -> Vec<(u64, Option<u32>, bool)> {
        batch
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Flow {
                    slot, flow, kind, ..
                } => Some((flow.id, *slot, matches!(kind, ItemKind::Close))),
                Item::Tick { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_closed_flows_slot_goes_to_the_next_flow_and_quiet_flows_only_close() {
        let mut h = Handoff::new(true);
        let (a, b, quiet) = (udp_flow(1), udp_flow(2), udp_flow(3));
        let (mut app_a, mut app_b, mut app_quiet) = Default::default();
        h.on_datagram(&a, &mut app_a, Direction::ToServer, &COAP_GET);
        h.on_close(&a, &mut app_a, CloseReason::Timeout);
        h.on_datagram(&b, &mut app_b, Direction::ToServer, &COAP_GET);
        h.on_close(&quiet, &mut app_quiet, CloseReason::Timeout);
        assert_eq!(
            flow_items(&h.batch),
            [
                (1, Some(0), false),
                (1, Some(0), true),
                (2, Some(0), false),
                (3, None, true)
            ]
        );
        assert_eq!(h.batch.bytes, [COAP_GET, COAP_GET].concat());
        // Closed flows reach the talkers whether or not they had data.
        assert_eq!(h.talkers.top(10).len(), 2);
    }

    #[test]
    fn without_parsers_no_payload_is_copied() {
        let mut h = Handoff::new(false);
        let flow = udp_flow(1);
        let mut app = AppSlot::default();
        h.on_datagram(&flow, &mut app, Direction::ToServer, &COAP_GET);
        h.on_stream(
            &flow,
            &mut app,
            Direction::ToServer,
            StreamEvent::Data(b"GET"),
        );
        assert!(h.batch.is_empty() && h.batch.bytes.is_empty());
    }

    /// The same observations give the same events on a worker thread as here.
    #[test]
    fn a_worker_thread_sees_what_the_stage_here_sees() {
        let fill = || {
            let mut h = Handoff::new(true);
            for id in 0..3 {
                let flow = udp_flow(id);
                let mut app = AppSlot::default();
                h.on_datagram(&flow, &mut app, Direction::ToServer, &COAP_GET);
                h.on_close(&flow, &mut app, CloseReason::Timeout);
            }
            h.batch
        };
        let stage = || {
            Box::new(AppStage::new(Dispatcher::new(
                AppLimits::default(),
                1 << 20,
            )))
        };
        let mut here = stage();
        here.run(&mut fill());
        let worker = Worker::start(stage()).map_err(|(_, e)| e).unwrap();
        let (worker, next) = worker.send(fill()).map_err(|_| "thread gone").unwrap();
        assert!(next.is_empty());
        let there = worker.join();
        let count = |s: &AppStage| serde_json::to_value(&s.sink.protocols).unwrap();
        assert_eq!(count(&here), count(&there));
        assert_eq!(count(&here)["coap"]["messages"], 3);
    }
}
