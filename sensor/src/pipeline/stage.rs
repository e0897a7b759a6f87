//! The application stage (protocol parsers, the event layer, rules, alerts,
//! logs) and how the flow stage hands it work: batches of flow observations
//! and packet-time ticks in packet order, run either on the same thread or on
//! a worker thread of their own, with the parsing of the flows shared among
//! parser threads ([`Shard`]) or not.
//!
//! The flow stage copies what the application stage needs (flow record, stream
//! bytes, datagrams, packet notes, the end of every flow) into a [`Batch`].
//! Batches go through a bounded queue, so a slow application stage slows
//! capture down instead of growing memory; emptied batches come back to be
//! filled again. The application stage sees the same observations in the same
//! order either way, so its output does not depend on where it runs.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::alert::AlertSource;
use crate::alert::from_rule::{rule_head, rule_key};
use crate::alert::{AlertHead, AlertInput, Alerter};
use crate::capture::Timestamp;
use crate::decode::FrameNote;
use crate::detect::detector::Detector;
use crate::detect::learned::{LearnedState, MAX_LEARNED_ENTRIES, StateError};
use crate::detect::model::ModelDetector;
use crate::detect::profile::{ProfileDetector, ProfileFinding};
use crate::detect::rules::RuleMatch;
use crate::device::inventory::{Device, Inventory, MacText, parse_mac};
use crate::device::profile::Service;
use crate::event::Normalizer;
use crate::features::{Extractor, Window, WindowSink};
use crate::flow::{
    CloseReason, Direction, FlowActivity, FlowHandler, FlowInfo, PacketNote, StreamEvent,
};
use crate::proto::dispatch::{AppEventSink, Dispatcher, FlowApp, SessionBudget};
use crate::proto::log::{LogContext, LogError, ProtocolLogs};
use crate::proto::norm::Event;
use crate::proto::registry::{Events, OwnedEvent};
use crate::proto::{AppEvent, AppLimits, AppProto, ProtoCounts};
use crate::summary::{
    DetectionSummary, DevicesSummary, MAX_SUMMARY_DEVICES, ModelSummary, Talkers,
};

/// A batch is handed over once it holds this many observations...
pub const BATCH_ITEMS: usize = 1024;
/// ...or this many bytes of stream data and datagrams (sized to stay in cache).
pub const BATCH_BYTES: usize = 256 * 1024;
/// ...or this many flow activity records (a second of a million flows goes
/// over in parts, so the flow stage never holds more than this many).
pub const BATCH_ACTIVITY: usize = 4096;
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
    /// the frames of that second that no flow counted for its devices.
    Tick {
        now: Timestamp,
        second: Timestamp,
        activity: Vec<FlowActivity>,
        frames: Vec<FrameNote>,
    },
    /// Part of what the flows did in the second that began at `second`,
    /// handed over before the second ends ([`BATCH_ACTIVITY`]).
    Activity {
        second: Timestamp,
        activity: Vec<FlowActivity>,
    },
}

/// Observations in packet order, and the bytes they carry.
#[derive(Debug, Default)]
pub struct Batch {
    items: Vec<Item>,
    bytes: Vec<u8>,
    /// Flow activity records in `items`.
    records: usize,
    /// When the flow stage handed the batch over (for [`BatchStats`]).
    handed_at: Option<Instant>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            items: Vec::with_capacity(BATCH_ITEMS),
            bytes: Vec::with_capacity(BATCH_BYTES),
            records: 0,
            handed_at: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS
            || self.bytes.len() >= BATCH_BYTES
            || self.records >= BATCH_ACTIVITY
    }

    /// The batch leaves the flow stage now.
    pub fn hand_over(&mut self, stats: &BatchStats) {
        self.handed_at = Some(Instant::now());
        stats.handed_over();
    }

    /// Emptied, to be filled again.
    fn clear(&mut self) {
        self.items.clear();
        self.bytes.clear();
        self.records = 0;
        self.handed_at = None;
    }

    fn bytes(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }
}

/// The most memory the device stage takes with `devices` devices: each at
/// its bounds, the attempts waiting for an answer, and the flow activity
/// records in flight (the batches queued, the one being filled, the one
/// being read, and the second being collected).
pub fn device_stage_bytes(devices: usize) -> usize {
    use crate::features::{MAX_DEVICE_BYTES, MAX_PENDING_ATTEMPTS, PENDING_ATTEMPT_BYTES};
    devices * MAX_DEVICE_BYTES
        + MAX_PENDING_ATTEMPTS * PENDING_ATTEMPT_BYTES
        + (QUEUE_BATCHES + 3) * BATCH_ACTIVITY * std::mem::size_of::<FlowActivity>()
}

/// What the application stage's slot table costs per flow: its entry (the
/// table grows by doubling, so twice over) and a free-list entry.
pub const SLOT_BYTES_PER_FLOW: usize =
    2 * std::mem::size_of::<FlowApp>() + std::mem::size_of::<u32>();

/// The flow table's per-flow state in the flow stage: which application
/// state slot the flow was given, once it had something for that stage,
/// where this second's activity record of the flow is, and whether the
/// server refused the connection already.
#[derive(Debug, Default)]
pub struct AppSlot {
    slot: Option<u32>,
    /// The tick number of the second `activity` is of (0: none yet).
    tick: u32,
    activity: u32,
    refused: bool,
}

/// Frames counted by their addresses alone ([`FrameNote`]) kept per second
/// for the device stage; more are counted in [`Handoff::frames_dropped`].
pub const MAX_FRAMES_PER_SECOND: usize = 65_536;

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
    /// frames no flow counts for its devices.
    pub devices: bool,
    /// Number of the current second (from 1; also moved on when part of the
    /// second's activity is handed over), its start, and what happened in it
    /// so far.
    tick_no: u32,
    second: Timestamp,
    activity: Vec<FlowActivity>,
    frames: Vec<FrameNote>,
    pub frames_dropped: u64,
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
            frames: Vec::new(),
            frames_dropped: 0,
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
        self.batch.records += self.activity.len();
        // The next second likely sees as many: room for them from the start.
        let activity = Vec::with_capacity(self.activity.len());
        let frames = Vec::with_capacity(self.frames.len());
        self.batch.items.push(Item::Tick {
            now,
            second: self.second,
            activity: std::mem::replace(&mut self.activity, activity),
            frames: std::mem::replace(&mut self.frames, frames),
        });
        self.second = now;
        self.tick_no = self.tick_no.wrapping_add(1).max(1);
    }

    /// This second's activity so far goes with the batch (which is then
    /// full); flows active again in the second start new records.
    fn hand_over_activity(&mut self) {
        let activity = std::mem::take(&mut self.activity);
        self.batch.records += activity.len();
        self.batch.items.push(Item::Activity {
            second: self.second,
            activity,
        });
        // Records handed over are no longer this second's to add to.
        self.tick_no = self.tick_no.wrapping_add(1).max(1);
    }

    /// A frame that no flow counts for its devices, for the device stage.
    pub fn frame(&mut self, frame: FrameNote) {
        if !self.devices {
            return;
        }
        if self.frames.len() < MAX_FRAMES_PER_SECOND {
            self.frames.push(frame);
        } else {
            self.frames_dropped += 1;
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
                if self.activity.len() >= BATCH_ACTIVITY {
                    self.hand_over_activity();
                }
                app.tick = self.tick_no;
                app.activity = self.activity.len() as u32;
                let opened = info.packets[0] + info.packets[1] == 1;
                self.activity.push(FlowActivity::of(info, opened));
            }
            // A connection is refused once, however many RSTs answer it.
            let refusal = !app.refused & note.refuses(dir, established_before);
            app.refused |= refusal;
            // A frame counts for the devices of its own MAC addresses: those
            // of its flow's first packet, or (routed, mirrored twice) others.
            let (sender, receiver) = match dir {
                Direction::ToServer => (info.client_mac, info.server_mac),
                Direction::ToClient => (info.server_mac, info.client_mac),
            };
            let own_macs = (pkt.src_mac, pkt.dst_mac) == (sender, receiver);
            if let Some(a) = self.activity.get_mut(app.activity as usize) {
                if own_macs {
                    a.count(dir, pkt.wire_len);
                }
                a.handshake(dir, &note, refusal);
            }
            if !own_macs {
                self.frame(FrameNote::of_packet(pkt));
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

/// The detectors (rules on events, the model and the profile detections on
/// windows) and the alert stage they raise alerts through, with what was
/// learned of the network's normal.
pub struct Detection {
    pub rules: Option<Detector>,
    pub model: Option<ModelDetector>,
    pub profile: Option<ProfileDetector>,
    pub alerts: Alerter,
    /// Routine findings, device scores and known devices (see
    /// [`LearnedState`]); saved to `state_path` at the end.
    pub learned: LearnedState,
    /// What this run learned by itself since the state was last read: what
    /// it adds to the state file, which may have changed meanwhile
    /// (`spanwatch learn` and `unlearn` while the sensor runs).
    own: LearnedState,
    pub state_path: Option<PathBuf>,
    learn_nanos: i64,
    learn_until: Option<Timestamp>,
    /// Medium and low rule findings learned as routine, and findings
    /// suppressed because they were.
    pub learned_findings: u64,
    pub routine_suppressed: u64,
    /// Matches and findings of the current input, reused.
    matches: Vec<RuleMatch>,
    findings: Vec<ProfileFinding>,
}

/// How the detectors are set up.
pub struct DetectionSetup {
    pub rules: Option<Detector>,
    pub model: Option<ModelDetector>,
    pub profile: Option<ProfileDetector>,
    pub alerts: Alerter,
    pub learned: LearnedState,
    pub state_path: Option<PathBuf>,
    /// Seconds of packet time in which routine medium and low rule findings
    /// are learned instead of raised.
    pub learn_secs: u64,
}

impl Detection {
    pub fn new(setup: DetectionSetup) -> Self {
        let mut model = setup.model;
        if let Some(m) = model.as_mut() {
            m.restore(&setup.learned.device_scores);
        }
        let mut profile = setup.profile;
        if let Some(p) = profile.as_mut() {
            p.know(setup.learned.devices.iter().filter_map(|m| parse_mac(m)));
        }
        Detection {
            rules: setup.rules,
            model,
            profile,
            alerts: setup.alerts,
            learned: setup.learned,
            own: LearnedState::default(),
            state_path: setup.state_path,
            learn_nanos: i64::try_from(setup.learn_secs)
                .unwrap_or(i64::MAX / Timestamp::NANOS_PER_SEC)
                .saturating_mul(Timestamp::NANOS_PER_SEC),
            learn_until: None,
            learned_findings: 0,
            routine_suppressed: 0,
            matches: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// Raises an alert unless it is routine ([`Detection::routine`]).
    fn raise(&mut self, input: AlertInput, inventory: Option<&Inventory>) {
        if !self.routine(&AlertHead::of(&input), inventory) {
            self.alerts.raise(input);
        }
    }

    /// Whether a finding is routine, learned or counted as such: a finding
    /// accepted as normal, or (while learning) a medium or low rule
    /// finding, learned. High findings of the rules always go out.
    fn routine(&mut self, f: &AlertHead<'_>, inventory: Option<&Inventory>) -> bool {
        let until = *self
            .learn_until
            .get_or_insert(Timestamp(f.ts.0.saturating_add(self.learn_nanos)));
        let routine_kind = f.source == AlertSource::Rule && f.severity >= 2;
        if routine_kind && f.ts < until {
            let key = f.key.text();
            self.own.learn_finding(&key, f.signature_id, f.dst.0);
            if self.learned.learn_finding(&key, f.signature_id, f.dst.0) {
                self.learned_findings += 1;
            }
            return true;
        }
        // The key is made only when there are accepted findings to look in.
        let accepted =
            || !self.learned.findings.is_empty() && self.learned.findings.contains(&*f.key.text());
        let routine = if f.source == AlertSource::Rule {
            routine_kind && (accepted() || used_before(&self.learned, f, inventory))
        } else {
            accepted()
        };
        if routine {
            self.routine_suppressed += 1;
        }
        routine
    }

    /// Runs the rules on `events` and raises an alert for every match that
    /// is not routine. A match that is routine, deduplicated or
    /// rate-limited is never made into an alert (its evidence, references
    /// and names are not copied).
    fn run(&mut self, events: &[Event], inventory: Option<&Inventory>) {
        let Some(rules) = self.rules.as_mut() else {
            return;
        };
        rules.run(events, &mut self.matches);
        let matches = std::mem::take(&mut self.matches);
        for m in &matches {
            let head = rule_head(m);
            if !self.routine(&head, inventory)
                && let Some(admitted) = self.alerts.admit(&head)
            {
                self.alerts
                    .emit(AlertInput::from_match(m, rule_key(m)), admitted);
            }
        }
        self.matches = matches;
        self.matches.clear();
    }

    /// Scores a window and runs the profile detections on it.
    fn window(&mut self, w: &Window, device: Option<&Device>) {
        let ip = device.and_then(|d| d.ips.first()).map(|s| s.ip);
        if let Some(finding) = self.model.as_mut().and_then(|m| m.window(w, ip)) {
            self.raise(AlertInput::from(&finding), None);
        }
        if let (Some(p), Some(d)) = (self.profile.as_mut(), device) {
            p.window(w, d, &mut self.findings);
            self.raise_findings();
        }
    }

    /// A second of packet time passed: silences, new devices.
    fn tick(&mut self, now: Timestamp, inventory: &Inventory) {
        if let Some(p) = self.profile.as_mut() {
            p.tick(now, inventory, &mut self.findings);
            self.raise_findings();
        }
    }

    fn raise_findings(&mut self) {
        let findings = std::mem::take(&mut self.findings);
        for f in &findings {
            self.raise(AlertInput::from(f), None);
        }
        self.findings = findings;
        self.findings.clear();
    }

    /// What this run learned by itself: its routine findings, the model's
    /// device scores and the devices of the inventory.
    fn gathered(&self, inventory: Option<&Inventory>) -> LearnedState {
        let mut own = self.own.clone();
        if let Some(m) = self.model.as_ref() {
            for (mac, score) in m.learned() {
                if own.device_scores.len() < MAX_LEARNED_ENTRIES {
                    let best = own.device_scores.entry(mac).or_insert(score);
                    *best = best.max(score);
                }
            }
        }
        if let Some(inv) = inventory {
            for d in inv.iter() {
                if own.devices.len() < MAX_LEARNED_ENTRIES {
                    own.devices.insert(MacText(d.mac).to_string());
                }
            }
        }
        own
    }

    /// End of input: what this run learned is added to the state file as
    /// it is now (edits made while the sensor ran are kept).
    pub fn save_state(&mut self, inventory: Option<&Inventory>) -> Result<(), StateError> {
        let Some(path) = self.state_path.clone() else {
            return Ok(());
        };
        let mut state = LearnedState::load(&path)?;
        state.merge(&self.gathered(inventory));
        state.save(&path)?;
        self.learned = state;
        self.own = LearnedState::default();
        Ok(())
    }

    /// SIGHUP: a new model (or the same one read again) and the learned
    /// state as the state file now holds it (`from_file`), with what this
    /// run learned by itself added. A model with another id learns each
    /// device's normal again: the device scores learned under the old one
    /// (in its units) are dropped. The counters go on. Returns the new
    /// state, for the caller to write back to the state file.
    pub fn reload(
        &mut self,
        model: Option<ModelDetector>,
        from_file: LearnedState,
        inventory: Option<&Inventory>,
    ) -> ReloadOutcome {
        let old_id = self.model.as_ref().map(|m| m.model().id().to_string());
        let new_id = model.as_ref().map(|m| m.model().id().to_string());
        let same_model = old_id.is_some() && old_id == new_id;
        let mut state = from_file;
        state.merge(&self.gathered(inventory));
        let dropped_scores = if same_model {
            0
        } else {
            std::mem::take(&mut state.device_scores).len()
        };
        match (self.model.as_mut(), model) {
            // The same model: its episodes and learning go on.
            (Some(running), Some(_)) if same_model => running.restore(&state.device_scores),
            (running, Some(mut new)) => {
                if let Some(old) = running {
                    new.continue_counts(old.stats());
                }
                new.restore(&state.device_scores);
                self.model = Some(new);
            }
            (_, None) => self.model = None,
        }
        if let Some(p) = self.profile.as_mut() {
            p.know(state.devices.iter().filter_map(|m| parse_mac(m)));
        }
        self.learned = state.clone();
        self.own = LearnedState::default();
        ReloadOutcome {
            old_model: old_id,
            new_model: new_id,
            dropped_scores,
            state,
        }
    }

    pub fn summary(&self) -> DetectionSummary {
        let rules = self.rules.as_ref().map(Detector::summary);
        DetectionSummary {
            rules: rules.as_ref().map_or(0, |r| r.rules),
            rules_version: rules.as_ref().map(|r| r.version.clone()),
            engine: rules.map(|r| r.engine).unwrap_or_default(),
            model: self.model.as_ref().map(|m| ModelSummary {
                id: m.model().id().to_string(),
                stats: m.stats(),
            }),
            profile: self.profile.as_ref().map(ProfileDetector::stats),
            learned_findings: self.learned_findings,
            routine_suppressed: self.routine_suppressed,
            alerts: self.alerts.stats(),
        }
    }
}

/// What [`Detection::reload`] did.
#[derive(Debug)]
pub struct ReloadOutcome {
    /// The ids of the model before and after (None: no model).
    pub old_model: Option<String>,
    pub new_model: Option<String>,
    /// Device scores dropped because the model changed.
    pub dropped_scores: usize,
    /// The learned state now in force.
    pub state: LearnedState,
}

/// Whether a rule finding's target is a routine one for its rule and the
/// device behind the finding had opened a flow to that very service of the
/// target before (its own routine with the target, not a newcomer's).
fn used_before(learned: &LearnedState, f: &AlertHead<'_>, inventory: Option<&Inventory>) -> bool {
    let (Some(inv), Some(mac)) = (inventory, f.device_mac) else {
        return false;
    };
    // Without learned targets there is no key to make.
    if learned.targets.is_empty()
        || !learned
            .targets
            .contains(&LearnedState::target_key(f.signature_id, f.dst.0))
    {
        return false;
    }
    let service = Service {
        transport: f.transport,
        port: f.dst.1,
    };
    inv.get(&mac)
        .is_some_and(|d| d.profile.conversations.contains(&(f.dst.0, service)))
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

    /// Hands the windows that closed to every sink (with their device as
    /// the inventory knows it) and to the model, then, when packet time
    /// reached `now`, the time to the sinks.
    fn drain(&mut self, mut detection: Option<&mut Detection>, now: Option<Timestamp>) {
        let (windows, inventory) = self.extractor.take_windows();
        for w in windows {
            let device = inventory.get(&w.device);
            for sink in &mut self.sinks {
                if let Err(e) = sink.window(&w, device) {
                    self.sink_error.get_or_insert(e);
                }
            }
            if let Some(d) = detection.as_deref_mut() {
                d.window(&w, device);
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
    pub fn finish(&mut self, detection: Option<&mut Detection>) {
        self.extractor.finish();
        self.drain(detection, None);
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
        d.run(events, devices.as_ref().map(|d| d.extractor.inventory()));
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
    /// The protocol sessions' memory, over every parser shard.
    pub sessions: SessionBudget,
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
            self.normalizer
                .packet(flow, dir, note, established, |events| {
                    consume(&mut self.detection, &mut self.devices, events);
                });
        }
    }

    /// Part of a second's flow activity, before its tick.
    fn activity(&mut self, second: Timestamp, activity: &[FlowActivity]) {
        if let Some(d) = self.devices.as_mut() {
            d.extractor.tick(second, second, activity, &[]);
        }
    }

    fn tick(
        &mut self,
        now: Timestamp,
        second: Timestamp,
        activity: &[FlowActivity],
        frames: &[FrameNote],
    ) {
        if let Some(d) = self.devices.as_mut() {
            d.extractor.tick(now, second, activity, frames);
            d.drain(self.detection.as_mut(), Some(now));
            if let Some(det) = self.detection.as_mut() {
                det.tick(now, d.extractor.inventory());
            }
        }
    }
}

impl AppEventSink for EventSink {
    fn on_detect(&mut self, flow: &FlowInfo, proto: AppProto) {
        self.sessions.taken(proto);
        self.protocols.on_detect(proto);
        if self.normalizing() {
            self.normalizer.detect(flow, proto, |events| {
                consume(&mut self.detection, &mut self.devices, events);
            });
        }
    }

    fn on_refused(&mut self, _: &FlowInfo, _: AppProto) {
        self.sessions.refused += 1;
    }

    fn on_close(&mut self, flow: &FlowInfo, proto: Option<AppProto>) {
        if let Some(proto) = proto {
            self.sessions.given_back(proto);
        }
        self.normalizer.close(flow, proto, |events| {
            consume(&mut self.detection, &mut self.devices, events);
        });
    }

    fn on_events(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, events: Events<'_>) {
        events.each(|ev| self.event(flow, ts, dir, ev));
    }
}

impl EventSink {
    /// One event of a parser.
    fn event(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, event: AppEvent<'_>) {
        self.protocols.on_event(event);
        if self.normalizing() {
            self.normalizer.event(flow, ts, dir, event, |events| {
                consume(&mut self.detection, &mut self.devices, events);
            });
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

/// Where the application stage's snapshot is published: the lock is held
/// only to swap or copy a pointer, and the stage skips a publication rather
/// than wait for a reader.
pub type SharedSnapshot = Arc<Mutex<Arc<AppSnapshot>>>;

/// Upper bounds, in seconds, of the buckets of the batch latency histogram
/// (from the hand-over of a batch to the end of its processing); one more
/// bucket counts what is slower than the last.
pub const BATCH_LATENCY_BUCKETS_SECS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0,
];

/// The hand-over between the flow stage and the application stage, counted
/// with atomics (no lock on the packet path): batches queued and how long
/// each took from its hand-over to the end of its processing.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Batches handed over and not yet processed (queued or running).
    queued: AtomicU64,
    /// Processed batches per latency bucket (not cumulative); the last
    /// counts those slower than every bound.
    buckets: [AtomicU64; BATCH_LATENCY_BUCKETS_SECS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A reading of [`BatchStats`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchLatency {
    /// Batches handed over and not yet processed.
    pub queued: u64,
    /// Processed batches no slower than each bound of
    /// [`BATCH_LATENCY_BUCKETS_SECS`] (cumulative, as Prometheus counts).
    pub cumulative: Vec<u64>,
    /// Every processed batch, and the sum of their latencies.
    pub count: u64,
    pub sum_secs: f64,
}

impl BatchStats {
    fn handed_over(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// A batch handed over at `handed_at` (if it was) is processed.
    fn done_since(&self, handed_at: Option<Instant>) {
        let Some(at) = handed_at else {
            return;
        };
        let latency = at.elapsed();
        let secs = latency.as_secs_f64();
        let bucket = BATCH_LATENCY_BUCKETS_SECS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BATCH_LATENCY_BUCKETS_SECS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        // Saturating: a batch done before its hand-over was counted (the
        // counters are read and written without a lock) stays at zero.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(1))
            });
    }

    pub fn read(&self) -> BatchLatency {
        let mut total = 0;
        let mut cumulative = Vec::with_capacity(BATCH_LATENCY_BUCKETS_SECS.len());
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            if i < BATCH_LATENCY_BUCKETS_SECS.len() {
                cumulative.push(total);
            }
        }
        BatchLatency {
            queued: self.queued.load(Ordering::Relaxed),
            cumulative,
            count: total,
            sum_secs: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Snapshots are taken at a tick of packet time, at most this often in wall
/// time: a replay ticks thousands of times a second, and readers (the
/// periodic summary, a /metrics scrape) need no more than this.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(200);

/// The protocol sessions of the flows whose slot falls to one parser shard
/// (slot `s` is shard `s % shards`'s, at `s / shards` in its table).
#[derive(Default)]
pub struct Shard {
    dispatcher: Dispatcher,
    /// Per-flow application state, by the flow's index in this shard.
    apps: Vec<FlowApp>,
}

impl Shard {
    /// Parses what one observation of a flow carries (packet notes are the
    /// ordered stage's, not a shard's).
    fn parse(
        &mut self,
        index: usize,
        dir: Direction,
        flow: &FlowInfo,
        kind: &ItemKind,
        bytes: &[u8],
        sink: &mut dyn AppEventSink,
    ) {
        if index >= self.apps.len() {
            self.apps.resize_with(index + 1, FlowApp::default);
        }
        let app = &mut self.apps[index];
        match kind {
            ItemKind::Packet { .. } => {}
            ItemKind::Data(range) => {
                let ev = StreamEvent::Data(&bytes[range.clone()]);
                self.dispatcher.on_stream(flow, app, dir, ev, sink);
            }
            ItemKind::Gap(n) => {
                let ev = StreamEvent::Gap(*n);
                self.dispatcher.on_stream(flow, app, dir, ev, sink);
            }
            ItemKind::Datagram(range) => {
                let payload = &bytes[range.clone()];
                self.dispatcher
                    .on_datagram(flow, &mut app.session, dir, payload, sink);
            }
            ItemKind::Close => {
                self.dispatcher.on_close(flow, app, sink);
                // The slot goes to the next new flow.
                *app = FlowApp::default();
            }
        }
    }

    /// Parses this shard's flows' observations of `batch` (it is shard `k`
    /// of `shards`), recording what it tells the sink in `calls`.
    fn record(&mut self, batch: &Batch, k: usize, shards: usize, calls: &mut Calls) {
        for (i, item) in batch.items.iter().enumerate() {
            let Item::Flow {
                slot: Some(slot),
                dir,
                flow,
                kind,
            } = item
            else {
                continue;
            };
            let slot = *slot as usize;
            if slot % shards != k || matches!(kind, ItemKind::Packet { .. }) {
                continue;
            }
            let mut recorder = Recorder {
                item: i as u32,
                flow,
                calls: &mut *calls,
            };
            self.parse(slot / shards, *dir, flow, kind, &batch.bytes, &mut recorder);
        }
    }
}

/// One call a parser shard made to its sink, to be made again in order by
/// the ordered stage. `view` is the flow as the parsers saw it: the
/// observation's own flow record ([`Calls::OWN_FLOW`]) or one turned around
/// (in [`Calls::views`]); an event is in [`Calls::events`], so that the
/// calls of a batch of flow ends stay small.
#[derive(Debug)]
enum Call {
    Detect {
        view: u32,
        proto: AppProto,
    },
    Refused {
        view: u32,
        proto: AppProto,
    },
    Event {
        view: u32,
        ts: Timestamp,
        dir: Direction,
        event: u32,
    },
    Close {
        view: u32,
        proto: Option<AppProto>,
    },
}

/// What a parser shard told its sink while parsing one batch: each call with
/// the position of the observation it came of, in order.
#[derive(Debug, Default)]
pub struct Calls {
    calls: Vec<(u32, Call)>,
    views: Vec<FlowInfo>,
    events: Vec<OwnedEvent>,
    /// The next call to make again.
    next: usize,
}

impl Calls {
    const OWN_FLOW: u32 = u32::MAX;

    /// Makes again, into `sink`, the calls of the observation at `item`
    /// (whose flow record is `flow`).
    fn replay(&mut self, item: usize, flow: &FlowInfo, sink: &mut EventSink) {
        while let Some((at, call)) = self.calls.get(self.next) {
            if *at as usize != item {
                return;
            }
            self.next += 1;
            let view = |v: u32| match v {
                Calls::OWN_FLOW => flow,
                v => &self.views[v as usize],
            };
            match call {
                Call::Detect { view: v, proto } => sink.on_detect(view(*v), *proto),
                Call::Refused { view: v, proto } => sink.on_refused(view(*v), *proto),
                Call::Event {
                    view: v,
                    ts,
                    dir,
                    event,
                } => sink.event(view(*v), *ts, *dir, self.events[*event as usize].as_event()),
                Call::Close { view: v, proto } => sink.on_close(view(*v), *proto),
            }
        }
    }

    fn clear(&mut self) {
        self.calls.clear();
        self.views.clear();
        self.events.clear();
        self.next = 0;
    }
}

/// The sink of a parser shard on a thread of its own: records each call,
/// moving the events out of the sessions' buffers.
struct Recorder<'a> {
    item: u32,
    /// The observation's flow record.
    flow: &'a FlowInfo,
    calls: &'a mut Calls,
}

impl Recorder<'_> {
    /// `flow` as a [`Call`]'s view: the observation's own record, or a
    /// copy of the one the parsers turned around.
    fn view(&mut self, flow: &FlowInfo) -> u32 {
        if std::ptr::eq(flow, self.flow) {
            return Calls::OWN_FLOW;
        }
        self.calls.views.push(flow.clone());
        (self.calls.views.len() - 1) as u32
    }

    fn push(&mut self, call: Call) {
        self.calls.calls.push((self.item, call));
    }
}

impl AppEventSink for Recorder<'_> {
    fn on_detect(&mut self, flow: &FlowInfo, proto: AppProto) {
        let view = self.view(flow);
        self.push(Call::Detect { view, proto });
    }

    fn on_refused(&mut self, flow: &FlowInfo, proto: AppProto) {
        let view = self.view(flow);
        self.push(Call::Refused { view, proto });
    }

    fn on_events(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        dir: Direction,
        mut events: Events<'_>,
    ) {
        let view = self.view(flow);
        events.drain(|event| {
            let calls = &mut *self.calls;
            calls.calls.push((
                self.item,
                Call::Event {
                    view,
                    ts,
                    dir,
                    event: calls.events.len() as u32,
                },
            ));
            calls.events.push(event);
        });
    }

    fn on_close(&mut self, flow: &FlowInfo, proto: Option<AppProto>) {
        let view = self.view(flow);
        self.push(Call::Close { view, proto });
    }
}

/// Protocol sessions, events, rules and logs: everything after the flow table.
#[derive(Default)]
pub struct AppStage {
    /// The parser shards, each with its share of the session memcap: here,
    /// or away on threads of their own while a [`Worker`] runs them.
    shards: Vec<Shard>,
    /// How many shards there are, here or away.
    shard_count: usize,
    /// Whether the shards run on threads of their own beside the stage.
    shard_threads: bool,
    pub sink: EventSink,
    /// Published at ticks, at most every [`PUBLISH_INTERVAL`].
    pub published: SharedSnapshot,
    last_publish: Option<Instant>,
}

impl AppStage {
    /// A stage with `shard_threads` parser shards on threads of their own
    /// (0: one shard, run in the stage), sharing `memcap_bytes` of sessions.
    pub fn new(limits: &AppLimits, memcap_bytes: usize, shard_threads: usize) -> Self {
        let shard_count = shard_threads.max(1);
        // Each shard has its share of the memcap, the shares adding up to it.
        let shards = (0..shard_count)
            .map(|k| Shard {
                dispatcher: Dispatcher::new(
                    limits.clone(),
                    memcap_bytes / shard_count + usize::from(k < memcap_bytes % shard_count),
                ),
                apps: Vec::new(),
            })
            .collect();
        AppStage {
            shards,
            shard_count,
            shard_threads: shard_threads > 0,
            sink: EventSink {
                sessions: SessionBudget {
                    cap_bytes: memcap_bytes,
                    ..SessionBudget::default()
                },
                ..EventSink::default()
            },
            published: SharedSnapshot::default(),
            last_publish: None,
        }
    }

    /// The stage's counters as of now, with the first `device_rows` rows of
    /// the device table.
    pub fn snapshot(&self, at: Option<Timestamp>, device_rows: usize) -> AppSnapshot {
        AppSnapshot {
            at,
            protocols: self.sink.protocols.clone(),
            sessions: self.sink.sessions,
            detection: self.sink.detection.as_ref().map(Detection::summary),
            devices: self.sink.devices.as_ref().map(|d| {
                DevicesSummary::first(
                    d.extractor.inventory(),
                    d.extractor.stats().windows,
                    device_rows,
                )
            }),
        }
    }

    /// Act on every observation of `batch`, in order, parsing with the
    /// shards here.
    pub fn run(&mut self, batch: &Batch) {
        self.walk(batch, None);
    }

    /// Act on every observation of `batch`, in order, with what the shards
    /// (one `Calls` each) told their sinks when they parsed it.
    fn replay(&mut self, batch: &Batch, calls: &mut [Calls]) {
        self.walk(batch, Some(calls));
    }

    fn walk(&mut self, batch: &Batch, mut recorded: Option<&mut [Calls]>) {
        let shards = self.shard_count;
        for (i, item) in batch.items.iter().enumerate() {
            match item {
                Item::Tick {
                    now,
                    second,
                    activity,
                    frames,
                } => {
                    self.sink.tick(*now, *second, activity, frames);
                    self.publish(*now);
                }
                Item::Activity { second, activity } => self.sink.activity(*second, activity),
                // The end of a flow that never had anything for the parsers.
                Item::Flow {
                    slot: None, flow, ..
                } => self.sink.on_close(flow, None),
                Item::Flow {
                    slot: Some(_),
                    dir,
                    flow,
                    kind:
                        ItemKind::Packet {
                            note,
                            established_before,
                        },
                } => self.sink.packet(flow, *dir, note, *established_before),
                Item::Flow {
                    slot: Some(slot),
                    dir,
                    flow,
                    kind,
                } => {
                    let slot = *slot as usize;
                    match recorded.as_deref_mut() {
                        Some(calls) => calls[slot % shards].replay(i, flow, &mut self.sink),
                        None => self.shards[slot % shards].parse(
                            slot / shards,
                            *dir,
                            flow,
                            kind,
                            &batch.bytes,
                            &mut self.sink,
                        ),
                    }
                }
            }
        }
    }

    /// Publishes a snapshot taken at the tick of `now`, if the last one is
    /// [`PUBLISH_INTERVAL`] old.
    fn publish(&mut self, now: Timestamp) {
        if self
            .last_publish
            .is_some_and(|at| at.elapsed() < PUBLISH_INTERVAL)
        {
            return;
        }
        self.last_publish = Some(Instant::now());
        let snapshot = Arc::new(self.snapshot(Some(now), MAX_SUMMARY_DEVICES));
        // A reader holds the lock only to copy the pointer: skip this
        // publication rather than wait.
        if let Ok(mut published) = self.published.try_lock() {
            *published = snapshot;
        }
    }

    /// [`AppStage::run`], counted in `stats` as a batch handed over at
    /// `batch.handed_at`, and the batch emptied.
    pub fn run_counted(&mut self, batch: &mut Batch, stats: &BatchStats) {
        self.run(batch);
        stats.done_since(batch.handed_at.take());
        batch.clear();
    }
}

/// A parser shard running on a thread of its own.
struct ShardThread {
    jobs: SyncSender<Arc<Batch>>,
    thread: JoinHandle<Shard>,
}

/// The application stage running on a thread of its own, and its parser
/// shards on theirs when it has them there: each batch goes to every shard,
/// which parses its own flows' observations, and then to the stage, which
/// acts on every observation in order with what the shards found.
pub struct Worker {
    jobs: SyncSender<Arc<Batch>>,
    emptied: Receiver<Batch>,
    thread: JoinHandle<Box<AppStage>>,
    shards: Vec<ShardThread>,
}

/// Starts a thread named `name` running `body` with what `hand` sends it:
/// on failure, `hand` is given back.
fn spawn_with<T: Send + 'static, R: Send + Default + 'static>(
    name: String,
    hand: T,
    body: impl FnOnce(T) -> R + Send + 'static,
) -> Result<JoinHandle<R>, (T, std::io::Error)> {
    // `hand` goes over once the thread exists, so that a failed spawn does
    // not lose it.
    let (give, take) = mpsc::channel::<T>();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let Ok(hand) = take.recv() else {
            return R::default();
        };
        body(hand)
    });
    let thread = match spawned {
        Ok(thread) => thread,
        Err(e) => return Err((hand, e)),
    };
    match give.send(hand) {
        Ok(()) => Ok(thread),
        Err(mpsc::SendError(hand)) => Err((
            hand,
            std::io::Error::other("a parser thread ended before it started"),
        )),
    }
}

impl Worker {
    /// Start a thread running `stage` (and one per parser shard if the
    /// stage runs them on threads of their own); on failure the stage is
    /// given back whole.
    pub fn start(
        mut stage: Box<AppStage>,
        stats: Arc<BatchStats>,
    ) -> Result<Worker, (Box<AppStage>, std::io::Error)> {
        let mut shards = Vec::new();
        let mut results = Vec::new();
        if stage.shard_threads {
            let count = stage.shard_count;
            let mut pending = std::mem::take(&mut stage.shards).into_iter().enumerate();
            while let Some((k, shard)) = pending.next() {
                let (jobs, queue) = mpsc::sync_channel::<Arc<Batch>>(QUEUE_BATCHES);
                let (found, result) = mpsc::channel::<Calls>();
                let (recycle, recycled) = mpsc::channel::<Calls>();
                let body = move |mut shard: Shard| {
                    for batch in queue {
                        let mut calls = recycled.try_recv().unwrap_or_default();
                        shard.record(&batch, k, count, &mut calls);
                        // The stage takes the batch back once every shard
                        // is done with it.
                        drop(batch);
                        if found.send(calls).is_err() {
                            break;
                        }
                    }
                    shard
                };
                match spawn_with(format!("spanwatch-parse{k}"), shard, body) {
                    Ok(thread) => {
                        shards.push(ShardThread { jobs, thread });
                        results.push((result, recycle));
                    }
                    Err((shard, e)) => {
                        stage.shards = Worker::park(shards);
                        stage.shards.push(shard);
                        stage.shards.extend(pending.map(|(_, s)| s));
                        return Err((stage, e));
                    }
                }
            }
        }
        let (jobs, queue) = mpsc::sync_channel::<Arc<Batch>>(QUEUE_BATCHES);
        let (give_back, emptied) = mpsc::channel::<Batch>();
        let body = move |mut stage: Box<AppStage>| {
            let mut calls: Vec<Calls> = Vec::with_capacity(results.len());
            for batch in queue {
                calls.clear();
                for (result, _) in &results {
                    match result.recv() {
                        Ok(c) => calls.push(c),
                        // A shard ended (its panic goes on at `join`).
                        Err(_) => return stage,
                    }
                }
                if results.is_empty() {
                    stage.run(&batch);
                } else {
                    stage.replay(&batch, &mut calls);
                    for (mut c, (_, recycle)) in calls.drain(..).zip(&results) {
                        c.clear();
                        let _ = recycle.send(c);
                    }
                }
                let handed_at = batch.handed_at;
                // The pipeline sent the batch here last and every shard
                // dropped its share before it answered: it is this
                // thread's alone again, to be filled anew.
                if let Ok(mut batch) = Arc::try_unwrap(batch) {
                    batch.clear();
                    // The pipeline may have stopped taking batches back.
                    let _ = give_back.send(batch);
                }
                stats.done_since(handed_at);
            }
            stage
        };
        match spawn_with("spanwatch-app".into(), stage, body) {
            Ok(thread) => Ok(Worker {
                jobs,
                emptied,
                thread,
                shards,
            }),
            Err((mut stage, e)) => {
                stage.shards = Worker::park(shards);
                Err((stage, e))
            }
        }
    }

    /// Ends the shards' threads (their queues closed) and takes the shards
    /// back, in order. A panic of a thread goes on here.
    fn park(shards: Vec<ShardThread>) -> Vec<Shard> {
        let threads: Vec<_> = shards
            .into_iter()
            .map(|s| {
                drop(s.jobs);
                s.thread
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    }

    /// Queue `batch` (waiting while the queues are full) and return an
    /// empty batch to fill next. If a thread is gone, the stage and the
    /// batch come back.
    pub fn send(self, batch: Batch) -> Result<(Worker, Batch), (Box<AppStage>, Batch)> {
        let batch = Arc::new(batch);
        let to_shards = self
            .shards
            .iter()
            .all(|s| s.jobs.send(Arc::clone(&batch)).is_ok());
        // The stage's thread gets the batch last, so that it is the one to
        // hold it once the shards are done with it.
        let failed = match to_shards {
            true => match self.jobs.send(batch) {
                Ok(()) => {
                    let next = self.emptied.try_recv().unwrap_or_else(|_| Batch::new());
                    return Ok((self, next));
                }
                Err(mpsc::SendError(batch)) => batch,
            },
            false => batch,
        };
        let stage = self.join();
        // Every thread is joined: the batch is this one's alone.
        let batch = Arc::try_unwrap(failed).unwrap_or_else(|_| Batch::new());
        Err((stage, batch))
    }

    /// Wait for every queued batch to be done and take the stage back, with
    /// its shards. A panic of a thread goes on here.
    pub fn join(self) -> Box<AppStage> {
        let shards = Worker::park(self.shards);
        drop(self.jobs);
        let mut stage = match self.thread.join() {
            Ok(stage) => stage,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        if !shards.is_empty() {
            stage.shards = shards;
        }
        stage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                Item::Tick { .. } | Item::Activity { .. } => None,
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

    /// An HTTP request sent by the side the flow table took for the server.
    const REQUEST: &[u8] = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n";

    /// Five CoAP flows, open together and then closed, and an HTTP flow
    /// whose request comes from the supposed server.
    fn batch_of_flows() -> Batch {
        let mut h = Handoff::new(true);
        let mut apps: Vec<AppSlot> = (0..6).map(|_| AppSlot::default()).collect();
        for (id, app) in apps.iter_mut().enumerate().take(5) {
            h.on_datagram(&udp_flow(id as u64), app, Direction::ToServer, &COAP_GET);
        }
        let http = FlowInfo::for_test(5, 6, 40000);
        let ev = StreamEvent::Data(REQUEST);
        h.on_stream(&http, &mut apps[5], Direction::ToClient, ev);
        for (id, app) in apps.iter_mut().enumerate().take(5) {
            h.on_close(&udp_flow(id as u64), app, CloseReason::Timeout);
        }
        h.on_close(&http, &mut apps[5], CloseReason::Timeout);
        h.batch
    }

    /// The same observations give the same events on a worker thread, with
    /// or without parser threads beside it, as here.
    #[test]
    fn a_worker_thread_and_parser_threads_see_what_the_stage_here_sees() {
        let stage =
            |shard_threads| Box::new(AppStage::new(&AppLimits::default(), 1 << 20, shard_threads));
        let mut here = stage(0);
        here.run(&batch_of_flows());
        let count = |s: &AppStage| {
            let sessions = serde_json::to_value(s.sink.sessions).unwrap();
            (serde_json::to_value(&s.sink.protocols).unwrap(), sessions)
        };
        assert_eq!(count(&here).0["coap"]["messages"], 5);
        assert_eq!(count(&here).0["http"]["requests"], 1);
        assert!(count(&here).1["peak_bytes"].as_u64() > Some(0));
        for shard_threads in [0, 1, 2, 3] {
            let worker = Worker::start(stage(shard_threads), Arc::default())
                .map_err(|(_, e)| e)
                .unwrap();
            let (worker, next) = worker
                .send(batch_of_flows())
                .map_err(|_| "thread gone")
                .unwrap();
            assert!(next.is_empty());
            let there = worker.join();
            assert_eq!(there.shards.len(), shard_threads.max(1));
            assert_eq!(
                count(&here),
                count(&there),
                "{shard_threads} parser threads"
            );
        }
    }

    /// A shard on a thread of its own records the flow as the parsers saw
    /// it: turned around, when the request came from the supposed server.
    #[test]
    fn a_shard_records_the_flow_the_parsers_turned_around() {
        let batch = batch_of_flows();
        let mut shard = Shard {
            dispatcher: Dispatcher::new(AppLimits::default(), 1 << 20),
            apps: Vec::new(),
        };
        let mut calls = Calls::default();
        shard.record(&batch, 0, 1, &mut calls);
        let http = FlowInfo::for_test(5, 6, 40000);
        let turned: Vec<&FlowInfo> = calls
            .calls
            .iter()
            .filter_map(|(_, c)| match c {
                Call::Detect { view, .. } | Call::Close { view, .. }
                    if *view != Calls::OWN_FLOW =>
                {
                    Some(&calls.views[*view as usize])
                }
                _ => None,
            })
            .collect();
        assert_eq!(turned.len(), 2, "{:?}", calls.calls);
        assert!(
            turned
                .iter()
                .all(|f| f.client == http.server && f.server == http.client)
        );
        // The other shard of two has none of the flows of slot 0, 2, 4.
        let mut other = Calls::default();
        Shard::default().record(&batch, 1, 2, &mut other);
        assert!(!other.calls.is_empty());
        assert!(other.calls.iter().all(|(item, _)| {
            let Item::Flow { slot: Some(s), .. } = &batch.items[*item as usize] else {
                return false;
            };
            s % 2 == 1
        }));
    }
}
