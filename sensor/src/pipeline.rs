//! Wires the stages: frames → decode → flow table (TCP reassembly) → per-flow
//! consumers, and keeps the run's summary. One packet path for replay and live.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::alert::AlertError;
use crate::capture::{CaptureError, Frame, FrameSource, LiveSource, Next, Timestamp};
use crate::decode::defrag::DefragLimits;
use crate::decode::{Decoded, Decoder, Packet};
use crate::detect::detector::Detector;
use crate::detect::rules::RuleSet;
use crate::flow::{
    CloseReason, Direction, FlowConfig, FlowHandler, FlowInfo, FlowTable, StreamEvent,
};
use crate::proto::counts::ProtoCounts;
use crate::proto::dispatch::{AppEvent, AppEventSink, AppLimits, AppProto, Dispatcher, FlowApp};
use crate::proto::log::{LogContext, LogCounts, LogError, ProtocolLogs};
use crate::summary::{DecodeSummary, FlowSummary, KernelStats, Span, Summary, Talkers};

/// Settings of a pipeline run.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    pub flows: FlowConfig,
    pub defrag: DefragLimits,
    /// Memory for protocol sessions (parsers' per-flow state).
    pub app_memcap_bytes: usize,
    /// Parse the application protocols (off: flows and reassembly only).
    pub parse_protocols: bool,
    /// Rows in the top-talkers table.
    pub top_talkers: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            flows: FlowConfig::default(),
            defrag: DefragLimits::default(),
            app_memcap_bytes: 64 << 20,
            parse_protocols: true,
            top_talkers: 10,
        }
    }
}

/// What the pipeline does with parser events: counts them and, when asked,
/// writes the per-protocol logs.
#[derive(Default)]
struct EventSink {
    protocols: ProtoCounts,
    logs: Option<ProtocolLogs>,
    /// The first log write failure; logging stops there.
    log_error: Option<LogError>,
    detector: Option<Detector>,
}

impl AppEventSink for EventSink {
    fn on_detect(&mut self, flow: &FlowInfo, proto: AppProto) {
        self.protocols.on_detect(proto);
        if let Some(d) = self.detector.as_mut() {
            d.detect(flow, proto);
        }
    }

    fn on_close(&mut self, flow: &FlowInfo, proto: Option<AppProto>) {
        if let Some(d) = self.detector.as_mut() {
            d.close(flow, proto);
        }
    }

    fn on_event(&mut self, flow: &FlowInfo, ts: Timestamp, dir: Direction, event: AppEvent<'_>) {
        self.protocols.on_event(event);
        if let Some(d) = self.detector.as_mut() {
            d.event(flow, ts, dir, event);
        }
        if let Some(logs) = self.logs.as_mut() {
            let ctx = LogContext { ts, flow, dir };
            let written = match event {
                AppEvent::Http(e) => logs.http(&ctx, e),
                AppEvent::Mqtt(e) => logs.mqtt(&ctx, e),
                AppEvent::Coap(e) => logs.coap(&ctx, e),
                AppEvent::Telnet(e) => logs.telnet(&ctx, e),
            };
            if let Err(e) = written {
                self.log_error = Some(e);
                self.logs = None;
            }
        }
    }
}

/// Consumer of the flow table's output: protocol sessions and talkers.
struct Consumers {
    parse_protocols: bool,
    dispatcher: Dispatcher,
    sink: EventSink,
    talkers: Talkers,
}

impl FlowHandler<FlowApp> for Consumers {
    fn on_packet(
        &mut self,
        info: &FlowInfo,
        _: &mut FlowApp,
        dir: Direction,
        pkt: &Packet<'_>,
        established_before: bool,
    ) {
        if let Some(d) = self.sink.detector.as_mut() {
            d.packet(info, dir, pkt, established_before);
        }
    }

    fn on_stream(
        &mut self,
        info: &FlowInfo,
        app: &mut FlowApp,
        dir: Direction,
        ev: StreamEvent<'_>,
    ) {
        if !self.parse_protocols {
            return;
        }
        self.dispatcher
            .on_stream(info, app, dir, ev, &mut self.sink);
    }

    fn on_datagram(&mut self, info: &FlowInfo, app: &mut FlowApp, dir: Direction, payload: &[u8]) {
        if !self.parse_protocols {
            return;
        }
        self.dispatcher
            .on_datagram(info, &mut app.session, dir, payload, &mut self.sink);
    }

    fn on_close(&mut self, info: &FlowInfo, app: &mut FlowApp, _: CloseReason) {
        self.dispatcher.on_close(info, app, &mut self.sink);
        self.talkers.add_flow(info);
    }
}

/// The packet path and its counters.
pub struct Pipeline {
    cfg: PipelineConfig,
    decoder: Decoder,
    flows: FlowTable<FlowApp>,
    consumers: Consumers,
    packets: u64,
    bytes: u64,
    captured_bytes: u64,
    span: Span,
    warnings: Vec<String>,
    started: Instant,
}

impl Pipeline {
    pub fn new(cfg: PipelineConfig) -> Self {
        Pipeline {
            cfg,
            decoder: Decoder::new(cfg.defrag),
            flows: FlowTable::new(cfg.flows),
            consumers: Consumers {
                parse_protocols: cfg.parse_protocols,
                dispatcher: Dispatcher::new(AppLimits::default(), cfg.app_memcap_bytes),
                sink: EventSink::default(),
                talkers: Talkers::default(),
            },
            packets: 0,
            bytes: 0,
            captured_bytes: 0,
            span: Span::default(),
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
        if let Decoded::Packet(pkt) = self.decoder.decode(frame) {
            self.flows.process(&pkt, &mut self.consumers);
        }
    }

    /// Write per-protocol JSON Lines logs (http.jsonl, mqtt.jsonl, ...) into `dir`.
    pub fn log_to(&mut self, dir: &std::path::Path) -> Result<(), LogError> {
        self.consumers.sink.logs = Some(ProtocolLogs::create(dir)?);
        Ok(())
    }

    /// Flush the protocol logs: lines written per file.
    pub fn finish_logs(&mut self) -> Result<Option<LogCounts>, LogError> {
        if let Some(e) = self.consumers.sink.log_error.take() {
            return Err(e);
        }
        self.consumers
            .sink
            .logs
            .take()
            .map(ProtocolLogs::finish)
            .transpose()
    }

    /// Run the rules on what the pipeline sees, raising alerts through `detector`.
    pub fn detect_with(&mut self, detector: Detector) {
        self.consumers.sink.detector = Some(detector);
    }

    /// Replace the rules of a running detection (SIGHUP).
    pub fn reload_rules(&mut self, rules: RuleSet) {
        if let Some(d) = self.consumers.sink.detector.as_mut() {
            d.reload(rules);
        }
    }

    /// Flush the alert sinks (end of input or shutdown): nothing raised is lost.
    pub fn flush_alerts(&mut self) -> Result<(), AlertError> {
        match self.consumers.sink.detector.as_mut() {
            Some(d) => d.flush(),
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
        self.flows.flush(&mut self.consumers);
    }

    /// The summary as of now.
    pub fn summary(&self, inputs: &[String], kernel: Option<KernelStats>) -> Summary {
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
            protocols: self.consumers.sink.protocols.clone(),
            sessions: self.consumers.dispatcher.budget,
            detection: self.consumers.sink.detector.as_ref().map(Detector::summary),
            top_talkers: self.consumers.talkers.top(self.cfg.top_talkers),
            untracked_talker_bytes: self.consumers.talkers.untracked_bytes(),
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

/// Flags the signal handlers of a live capture set.
#[derive(Debug, Default)]
pub struct LiveSignals {
    /// SIGINT or SIGTERM: print the summary, flush the alerts, stop.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: load the rules again.
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
/// `interval` of wall time (checked when frames arrive and when idle), and
/// returns when `stop` is set.
pub fn run_live(
    source: &mut LiveSource,
    pipeline: &mut Pipeline,
    signals: &LiveSignals,
    interval: Duration,
    report: &mut dyn FnMut(&Pipeline, Option<KernelStats>),
    reload: &mut dyn FnMut() -> Option<RuleSet>,
) -> Result<(), CaptureError> {
    let mut last_report = Instant::now();
    loop {
        if signals.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if signals.reload.swap(false, Ordering::Relaxed) {
            if let Some(rules) = reload() {
                pipeline.reload_rules(rules);
            }
        }
        match source.advance()? {
            Next::Frame => {
                let frame = source.current();
                pipeline.process(&frame);
            }
            Next::Idle => {}
            Next::End => return Ok(()),
        }
        if last_report.elapsed() >= interval {
            let kernel = kernel_stats(source);
            report(pipeline, kernel);
            last_report = Instant::now();
        }
    }
}
