//! Wires the stages: frames → decode → flow table (TCP reassembly) → the
//! application stage (protocol parsers, rules, logs), and keeps the run's
//! summary. One packet path for replay and live.
//!
//! With two threads (the default on a machine with more than one core), the
//! application stage runs on a worker thread fed with batches (see [`stage`]),
//! so that parsing and rules overlap with decoding and reassembly; with more,
//! parser threads share the flows' parsing beside it.

#[cfg(test)]
mod device_tests;
mod stage;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::alert::{AlertConfig, AlertError, Sink};
use crate::capture::{CaptureError, Frame, FrameSource, LiveSource, Next, Timestamp};
use crate::decode::defrag::DefragLimits;
use crate::decode::{Decoded, Decoder, FrameNote};
use crate::detect::learned::{LearnedState, StateError};
use crate::detect::model::ModelDetector;
use crate::detect::rules::RuleSet;
use crate::features::{Extractor, WindowSink};
use crate::flow::{FlowConfig, FlowTable};
use crate::proto::AppLimits;
use crate::proto::log::{LogCounts, LogError, ProtocolLogs};
use crate::summary::{DecodeSummary, FlowSummary, KernelStats, MAX_SUMMARY_DEVICES, Span, Summary};
use stage::{AppSlot, AppStage, Detection, Handoff, SLOT_BYTES_PER_FLOW, Worker};
pub use stage::{
    AppSnapshot, BATCH_LATENCY_BUCKETS_SECS, BatchLatency, BatchStats, SharedSnapshot,
};
pub use stage::{DetectionSetup, Devices, ReloadOutcome, device_stage_bytes};

/// Settings of a pipeline run.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub flows: FlowConfig,
    pub defrag: DefragLimits,
    /// Bounds of each protocol parser.
    pub app_limits: AppLimits,
    /// Memory for protocol sessions (parsers' per-flow state).
    pub app_memcap_bytes: usize,
    /// Parse the application protocols (off: flows and reassembly only).
    pub parse_protocols: bool,
    /// Rows in the top-talkers table.
    pub top_talkers: usize,
    /// Run the application stage on a thread of its own.
    pub app_thread: bool,
    /// Parser threads beside it, each parsing the flows of one shard (0:
    /// the parsers run in the application stage).
    pub parser_threads: usize,
}

/// Whether this machine has a core to spare for the application stage.
pub fn spare_core() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flows: FlowConfig::default(),
            defrag: DefragLimits::default(),
            app_limits: AppLimits::default(),
            app_memcap_bytes: 64 << 20,
            parse_protocols: true,
            top_talkers: 10,
            app_thread: spare_core(),
            parser_threads: 0,
        }
    }
}

/// The packet path and its counters.
pub struct Pipeline {
    cfg: PipelineConfig,
    decoder: Decoder,
    flows: FlowTable<AppSlot>,
    handoff: Handoff,
    /// The application stage, when it runs here; an empty stand-in while
    /// `worker` has it.
    stage: Box<AppStage>,
    worker: Option<Worker>,
    packets: u64,
    bytes: u64,
    captured_bytes: u64,
    span: Span,
    /// Packet time of the last tick and when (wall clock) it was given: the
    /// clock of a quiet live capture goes on from there.
    clock: Option<(Timestamp, Instant)>,
    /// Where both stages publish their counters at every tick.
    published: Arc<Published>,
    /// The packet-time second (in nanoseconds) of the last tick.
    tick_second: std::ops::Range<i64>,
    /// When the capture stage last published its counters.
    last_publish: Option<Instant>,
    warnings: Vec<String>,
    started: Instant,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Self {
        let published = Arc::new(Published::new());
        let parser_threads = if cfg.app_thread {
            cfg.parser_threads
        } else {
            0
        };
        let mut stage = AppStage::new(&cfg.app_limits, cfg.app_memcap_bytes, parser_threads);
        stage.published = Arc::clone(&published.app);
        Pipeline {
            decoder: Decoder::new(cfg.defrag),
            flows: FlowTable::with_consumer_bytes(cfg.flows, SLOT_BYTES_PER_FLOW),
            handoff: Handoff::new(cfg.parse_protocols),
            stage: Box::new(stage),
            cfg,
            worker: None,
            packets: 0,
            bytes: 0,
            captured_bytes: 0,
            span: Span::default(),
            clock: None,
            published,
            tick_second: 0..0,
            last_publish: None,
            warnings: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Run one frame through every stage.
    pub fn process(&mut self, frame: &Frame<'_>) {
        self.packets += 1;
        self.bytes += u64::from(frame.orig_len);
        self.captured_bytes += frame.data.len() as u64;
        self.span.add(frame.ts);
        // Most frames fall in the second of the last tick: two comparisons.
        if !self.tick_second.contains(&frame.ts.0) {
            self.tick(frame.ts);
        }
        match self.decoder.decode(frame) {
            Decoded::Packet(pkt) => {
                self.flows.process(&pkt, &mut self.handoff);
                if self.handoff.batch.is_full() {
                    self.hand_off();
                }
            }
            Decoded::NotIp(frame) => self.handoff.frame(FrameNote::from(&frame)),
            Decoded::FragmentHeld(note) | Decoded::Error(_, Some(note)) => self.handoff.frame(note),
            Decoded::Error(_, None) => {}
        }
    }

    /// Tells the application stage that packet time reached `now` (called
    /// when `now` leaves the second of the last tick).
    fn tick(&mut self, now: Timestamp) {
        let start = now.secs().saturating_mul(Timestamp::NANOS_PER_SEC);
        self.tick_second = start..start.saturating_add(Timestamp::NANOS_PER_SEC);
        self.clock = Some((now, Instant::now()));
        self.handoff.tick(now);
        self.published.beat();
        if self
            .last_publish
            .is_none_or(|at| at.elapsed() >= stage::PUBLISH_INTERVAL)
        {
            self.last_publish = Some(Instant::now());
            let summary = Arc::new(self.capture_summary(&[], None));
            // A reader holds the lock only to copy the pointer: skip this
            // publication rather than wait.
            if let Ok(mut published) = self.published.capture.try_lock() {
                *published = Some(summary);
            }
        }
    }

    /// A live capture saw nothing: packet time goes on with the wall clock
    /// from the last tick, so that flows expire and the application stage
    /// gets its ticks during quiet periods too. Hands over what waits.
    pub fn idle(&mut self) {
        self.published.beat();
        if let Some((ts, at)) = self.clock {
            let elapsed = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let now = Timestamp(ts.0.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX)));
            if !self.tick_second.contains(&now.0) {
                // A batch at a time: after a quiet spell a full table's
                // flows may all end at once.
                while self
                    .flows
                    .expire_part(now, stage::BATCH_ITEMS, &mut self.handoff)
                {
                    self.hand_off();
                }
                self.tick(now);
            }
        }
        self.hand_off();
    }

    /// Give what the flow stage collected to the application stage: queue it
    /// for the worker thread (started on first use), or run it here.
    pub fn hand_off(&mut self) {
        if self.handoff.batch.is_empty() {
            return;
        }
        let batches = &self.published.batches;
        self.handoff.batch.hand_over(batches);
        if self.worker.is_none() && self.cfg.app_thread {
            match Worker::start(std::mem::take(&mut self.stage), Arc::clone(batches)) {
                Ok(worker) => self.worker = Some(worker),
                Err((stage, e)) => {
                    self.stage = stage;
                    self.cfg.app_thread = false;
                    self.warn(format!(
                        "no thread for the protocol parsers ({e}): running them on the capture thread"
                    ));
                }
            }
        }
        let Some(worker) = self.worker.take() else {
            self.stage
                .run_counted(&mut self.handoff.batch, &self.published.batches);
            return;
        };
        match worker.send(std::mem::take(&mut self.handoff.batch)) {
            Ok((worker, next)) => {
                self.worker = Some(worker);
                self.handoff.batch = next;
            }
            Err((stage, mut batch)) => {
                self.stage = stage;
                self.stage.run_counted(&mut batch, &self.published.batches);
                self.handoff.batch = batch;
            }
        }
    }

    /// The application stage on this thread, with everything so far done.
    /// A worker thread is joined here and started again at the next batch.
    fn stage(&mut self) -> &mut AppStage {
        self.hand_off();
        if let Some(worker) = self.worker.take() {
            self.stage = worker.join();
        }
        &mut self.stage
    }

    /// Write per-protocol JSON Lines logs (http.jsonl, mqtt.jsonl, ...) into `dir`.
    pub fn log_to(&mut self, dir: &std::path::Path) -> Result<(), LogError> {
        self.stage().sink.logs = Some(ProtocolLogs::create(dir)?);
        Ok(())
    }

    /// Flush the protocol logs: lines written per file.
    pub fn finish_logs(&mut self) -> Result<Option<LogCounts>, LogError> {
        let sink = &mut self.stage().sink;
        if let Some(e) = sink.log_error.take() {
            return Err(e);
        }
        sink.logs.take().map(ProtocolLogs::finish).transpose()
    }

    /// Run the rules on what the pipeline sees, the model and the profile
    /// detections on the feature windows, raising alerts through the alert
    /// stage of `setup`.
    pub fn detect_with(&mut self, setup: DetectionSetup) {
        self.handoff.packets = setup.rules.is_some();
        self.stage().sink.detection = Some(Detection::new(setup));
        self.republish();
    }

    /// Publishes the application stage's counters now (it runs here): after
    /// a change of what it runs, readers need not wait for the next tick.
    fn republish(&mut self) {
        let at = self.stage().published.lock().ok().and_then(|p| p.at);
        let snapshot = Arc::new(self.stage.snapshot(at, MAX_SUMMARY_DEVICES));
        if let Ok(mut published) = self.stage.published.lock() {
            *published = snapshot;
        }
    }

    /// Writes what detection learned to its state file (end of a run).
    pub fn save_learned(&mut self) -> Result<(), StateError> {
        let sink = &mut self.stage().sink;
        let inventory = sink.devices.as_ref().map(|d| d.extractor.inventory());
        match sink.detection.as_mut() {
            Some(d) => d.save_state(inventory),
            None => Ok(()),
        }
    }

    /// SIGHUP: a new model (or the same one read again) and the learned
    /// state as its file holds it now, with what this run learned added
    /// (see [`Detection::reload`]). None without detection.
    pub fn reload_detection(
        &mut self,
        model: Option<ModelDetector>,
        from_file: LearnedState,
        state_path: Option<std::path::PathBuf>,
    ) -> Option<ReloadOutcome> {
        let sink = &mut self.stage().sink;
        let inventory = sink.devices.as_ref().map(|d| d.extractor.inventory());
        let detection = sink.detection.as_mut()?;
        detection.state_path = state_path;
        let outcome = detection.reload(model, from_file, inventory);
        self.republish();
        Some(outcome)
    }

    /// Replace the rules of a running detection (SIGHUP).
    pub fn reload_rules(&mut self, rules: RuleSet) {
        if let Some(d) = self
            .stage()
            .sink
            .detection
            .as_mut()
            .and_then(|d| d.rules.as_mut())
        {
            d.reload(rules);
        }
        self.republish();
    }

    /// New alert deduplication and rate settings, and new sinks if given
    /// (SIGHUP). The old sinks are flushed before they are replaced; the
    /// error is that of the flush. Without detection there is nothing to
    /// change.
    pub fn reconfigure_alerts(
        &mut self,
        limits: &AlertConfig,
        sinks: Option<Vec<Box<dyn Sink>>>,
    ) -> Result<(), AlertError> {
        let Some(alerter) = self.stage().sink.detection.as_mut().map(|d| &mut d.alerts) else {
            return Ok(());
        };
        alerter.reconfigure(limits);
        sinks.map_or(Ok(()), |sinks| alerter.replace_sinks(sinks))
    }

    /// Flush the alert sinks (end of input or shutdown): nothing raised is lost.
    pub fn flush_alerts(&mut self) -> Result<(), AlertError> {
        match self.stage().sink.detection.as_mut() {
            Some(d) => d.alerts.flush(),
            None => Ok(()),
        }
    }

    /// Record a problem with the input that did not stop the run.
    pub fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Close every flow (end of input), so their data and counters are final.
    pub fn finish(&mut self) {
        // A batch at a time: a full table's ends would make one batch of
        // them all, as large as the table.
        let mut from = 0;
        while let Some(next) = self
            .flows
            .flush_part(from, stage::BATCH_ITEMS, &mut self.handoff)
        {
            from = next;
            self.hand_off();
        }
        if let Some(last) = self.span.last {
            // The last second's activity goes with a last tick.
            self.handoff.tick(last);
        }
        let sink = &mut self.stage().sink;
        if let Some(devices) = sink.devices.as_mut() {
            devices.finish(sink.detection.as_mut());
        }
        // The counters published are final: a last scrape reads them.
        let summary = Arc::new(self.capture_summary(&[], None));
        if let Ok(mut published) = self.published.capture.lock() {
            *published = Some(summary);
        }
        self.republish();
    }

    /// Keep the device inventory and profiles and cut feature windows with
    /// `extractor`.
    pub fn profile_devices(&mut self, extractor: Extractor) {
        self.stage().sink.devices = Some(Devices::new(extractor));
        self.handoff.devices = true;
    }

    /// Also hand every feature window to `sink` (a dataset, the model).
    pub fn add_window_sink(&mut self, sink: Box<dyn WindowSink>) {
        if let Some(d) = self.stage().sink.devices.as_mut() {
            d.sinks.push(sink);
        }
    }

    /// The first failure of a window sink, if any (taken).
    pub fn window_sink_error(&mut self) -> Option<std::io::Error> {
        self.stage().sink.devices.as_mut()?.sink_error.take()
    }

    /// The device stage, with everything handed over so far done (the
    /// worker thread is joined), when devices are profiled.
    pub fn devices(&mut self) -> Option<&Devices> {
        self.stage().sink.devices.as_ref()
    }

    /// The capture stage's part of the summary (the application stage's
    /// counters left empty).
    fn capture_summary(&self, inputs: &[String], kernel: Option<KernelStats>) -> Summary {
        let elapsed = self.started.elapsed().as_secs_f64();
        let fs = &self.flows.stats;
        Summary {
            inputs: inputs.to_vec(),
            packets: self.packets,
            bytes: self.bytes,
            captured_bytes: self.captured_bytes,
            first_ts: self.span.first.map(|t| t.to_string()),
            last_ts: self.span.last.map(|t| t.to_string()),
            duration_secs: self.span.duration_secs(),
            decode: DecodeSummary::new(&self.decoder.stats, self.decoder.defrag_stats()),
            flows: FlowSummary::new(fs),
            reassembly: fs.reassembly,
            protocols: Default::default(),
            sessions: Default::default(),
            detection: None,
            devices: None,
            top_talkers: self.handoff.talkers.top(self.cfg.top_talkers),
            untracked_talker_bytes: self.handoff.talkers.untracked_bytes(),
            kernel,
            warnings: self.warnings.clone(),
            elapsed_secs: elapsed,
            packets_per_sec: if elapsed > 0.0 {
                self.packets as f64 / elapsed
            } else {
                0.0
            },
        }
    }

    /// The summary as of now, with everything handed over so far done (the
    /// worker thread is joined: at the end of a run, not per scrape).
    pub fn summary(&mut self, inputs: &[String], kernel: Option<KernelStats>) -> Summary {
        self.stage();
        let app = self.stage.snapshot(None, usize::MAX);
        with_app(self.capture_summary(inputs, kernel), app)
    }

    /// The summary as the two stages last published it (at the last tick of
    /// packet time): reading it never stops the pipeline.
    pub fn published(&self) -> Arc<Published> {
        Arc::clone(&self.published)
    }
}

/// `summary` with the application stage's counters of `app`.
fn with_app(summary: Summary, app: AppSnapshot) -> Summary {
    Summary {
        protocols: app.protocols,
        sessions: app.sessions,
        detection: app.detection,
        devices: app.devices,
        ..summary
    }
}

/// What the capture and application stages publish at every tick, for
/// readers on other threads (the periodic summary, /metrics). Snapshots are
/// swapped in as pointers under a lock the stages never wait for; the
/// counters that change more often are atomics.
#[derive(Debug)]
pub struct Published {
    capture: Mutex<Option<Arc<Summary>>>,
    app: SharedSnapshot,
    /// The kernel's counters of a live capture (`kernel_set` tells whether
    /// they were read at all).
    kernel: [AtomicU64; 3],
    kernel_set: AtomicBool,
    /// Milliseconds from `started` to the last sign of life of the capture
    /// loop (a tick of packet time or an idle read), plus one; 0: none yet.
    heartbeat_ms: AtomicU64,
    started: Instant,
    /// The hand-over between the two stages.
    pub batches: Arc<BatchStats>,
}

impl Published {
    fn new() -> Self {
        Published {
            capture: Mutex::default(),
            app: SharedSnapshot::default(),
            kernel: Default::default(),
            kernel_set: AtomicBool::new(false),
            heartbeat_ms: AtomicU64::new(0),
            started: Instant::now(),
            batches: Arc::default(),
        }
    }

    /// The last published summary, `None` before the first tick.
    pub fn summary(&self, inputs: &[String], kernel: Option<KernelStats>) -> Option<Summary> {
        let mut summary = Summary::clone(&*self.capture()?);
        summary.inputs = inputs.to_vec();
        summary.kernel = kernel;
        Some(with_app(summary, AppSnapshot::clone(&self.app())))
    }

    /// The capture stage's last published part of the summary (its
    /// application counters empty), `None` before the first tick.
    pub fn capture(&self) -> Option<Arc<Summary>> {
        self.capture.lock().ok()?.clone()
    }

    /// The application stage's last published counters.
    pub fn app(&self) -> Arc<AppSnapshot> {
        self.app.lock().map(|a| Arc::clone(&a)).unwrap_or_default()
    }

    /// The capture loop is alive now.
    fn beat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.heartbeat_ms.store(ms + 1, Ordering::Relaxed);
    }

    /// How long ago the capture loop last delivered a frame's tick or an
    /// idle read; `None` before it did either.
    pub fn since_heartbeat(&self) -> Option<Duration> {
        let beat = self.heartbeat_ms.load(Ordering::Relaxed).checked_sub(1)?;
        Some(
            self.started
                .elapsed()
                .saturating_sub(Duration::from_millis(beat)),
        )
    }

    /// Publishes the kernel's counters of a live capture.
    pub fn set_kernel(&self, k: KernelStats) {
        for (cell, v) in self
            .kernel
            .iter()
            .zip([k.received, k.dropped, k.if_dropped])
        {
            cell.store(v, Ordering::Relaxed);
        }
        self.kernel_set.store(true, Ordering::Relaxed);
    }

    /// The kernel's counters last published, `None` when not live.
    pub fn kernel(&self) -> Option<KernelStats> {
        self.kernel_set.load(Ordering::Relaxed).then(|| {
            let [received, dropped, if_dropped] =
                self.kernel.each_ref().map(|c| c.load(Ordering::Relaxed));
            KernelStats {
                received,
                dropped,
                if_dropped,
            }
        })
    }
}

impl Drop for Pipeline {
    /// A run that stops early (a capture error) still has everything seen so
    /// far processed, and the alert and log sinks dropped (flushed) before the
    /// process ends, as when the stage runs here.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.stage();
    }
}

/// Frames between two progress updates.
const PROGRESS_EVERY_FRAMES: u64 = 16_384;

/// Called now and then with (bytes read, total bytes) for a progress display.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// Feed a whole source through the pipeline.
///
/// Damage in a capture file is not fatal: the frames before it were processed,
/// the damage becomes a warning in the summary, and the run goes on with the
/// other inputs. Any other capture error stops the run.
pub fn run_source(
    source: &mut dyn FrameSource,
    pipeline: &mut Pipeline,
    progress: Progress<'_>,
) -> Result<(), CaptureError> {
    loop {
        match source.advance() {
            Ok(Next::Frame) => {
                let frame = source.current();
                pipeline.process(&frame);
                if pipeline.packets % PROGRESS_EVERY_FRAMES == 0 {
                    progress(source.bytes_read(), source.total_bytes());
                }
            }
            // Files never idle; a source that does is simply asked again.
            Ok(Next::Idle) => {}
            Ok(Next::End) => {
                progress(source.bytes_read(), source.total_bytes());
                return Ok(());
            }
            Err(e) if e.is_damage() => pipeline.warn(e.to_string()),
            Err(e) => return Err(e),
        }
    }
}

/// Longest a live capture holds observations back from the application stage.
const HANDOFF_INTERVAL: Duration = Duration::from_millis(100);

/// Flags the signal handlers of a live capture set.
#[derive(Debug, Default)]
pub struct LiveSignals {
    /// SIGINT or SIGTERM: print the summary, flush the alerts, stop.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: read the config file and the rules again.
    pub reload: Arc<AtomicBool>,
}

/// The kernel's counters of a live capture, if it can tell.
pub fn kernel_stats(source: &mut LiveSource) -> Option<KernelStats> {
    source.stats().ok().map(|s| KernelStats {
        received: u64::from(s.received),
        dropped: u64::from(s.dropped),
        if_dropped: u64::from(s.if_dropped),
    })
}

/// Like [`run_source`] for a live capture: also calls `report` every
/// `interval` of wall time (checked when frames arrive and when idle) and
/// `reload` after a SIGHUP, and returns when `stop` is set.
pub fn run_live(
    source: &mut LiveSource,
    pipeline: &mut Pipeline,
    signals: &LiveSignals,
    interval: Duration,
    report: &mut dyn FnMut(&mut Pipeline, Option<KernelStats>),
    reload: &mut dyn FnMut(&mut Pipeline),
) -> Result<(), CaptureError> {
    let mut last_report = Instant::now();
    let mut last_handoff = Instant::now();
    let mut last_kernel: Option<Instant> = None;
    loop {
        if signals.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            reload(pipeline);
        }
        match source.advance()? {
            Next::Frame => {
                let frame = source.current();
                pipeline.process(&frame);
            }
            Next::Idle => pipeline.idle(),
            Next::End => return Ok(()),
        }
        // Under steady light traffic a batch fills slowly: hand it over anyway,
        // so that alerts are not held back.
        let now = Instant::now();
        if now.duration_since(last_handoff) >= HANDOFF_INTERVAL {
            pipeline.hand_off();
            last_handoff = now;
        }
        if last_kernel.is_none_or(|at| now.duration_since(at) >= stage::PUBLISH_INTERVAL) {
            if let Some(kernel) = kernel_stats(source) {
                pipeline.published.set_kernel(kernel);
            }
            last_kernel = Some(now);
        }
        if now.duration_since(last_report) >= interval {
            let kernel = kernel_stats(source);
            report(pipeline, kernel);
            last_report = now;
        }
    }
}
