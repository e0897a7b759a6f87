//! Command-line interface: argument definitions (clap) and the commands.
//! `main.rs` only parses the arguments and turns errors into exit codes.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::alert::{
    AlertConfig, AlertError, Alerter, ExecConfig, ExecSink, FileSink, StdoutSink, WebhookConfig,
    WebhookSink,
};
use crate::capture::{CaptureError, LiveConfig, LiveSource, MergedSource};
use crate::detect::default_ruleset;
use crate::detect::detector::Detector;
use crate::detect::rules::{RuleError, RuleSet, check_dir};
use crate::flow::FlowConfig;
use crate::pipeline::{self, LiveSignals, Pipeline, PipelineConfig};
use crate::summary::{KernelStats, Summary};
use crate::synth::{self, Impairments, Mode, SynthConfig};

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    /// Success (a damaged capture whose readable part was processed counts as success;
    /// the damage is printed as a warning).
    pub const OK: u8 = 0;
    /// An unexpected failure (e.g. writing the output failed).
    pub const FAILURE: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// An input file cannot be read or is not a pcap/pcapng capture.
    pub const INPUT: u8 = 3;
    /// Live capture could not start or failed (no such interface, permissions, bad BPF).
    pub const CAPTURE: u8 = 4;
    /// A rule file, credential dictionary or alert output is invalid or cannot be opened.
    pub const CONFIG: u8 = 5;
    /// `rules check`: a rule's own test case failed.
    pub const RULE_TEST: u8 = 6;
}

const AFTER_HELP: &str = "\
Examples:
  spanwatch replay datasets/samples/attack/capture.pcap
  spanwatch replay day1.pcapng day2.pcap --json > summary.json
  spanwatch live -i eth1 --bpf 'not port 22' --stats-interval 30
  spanwatch synth --out /tmp/mix.pcap --packets 1000000 --seed 7

Exit codes:
  0  success (damage in a capture is a warning; the frames before it are processed)
  1  unexpected failure
  2  bad command line
  3  an input file cannot be read or is not a pcap/pcapng capture
  4  live capture could not start or failed
  5  a rule file, credential dictionary or alert output is invalid or cannot be opened
  6  rules check: a rule's own test case failed";

#[derive(Debug, Parser)]
#[command(
    name = "spanwatch",
    version,
    about = "Passive anomaly-detection sensor for IoT network segments",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Process capture files (pcap or pcapng; several are merged in time order) and print a summary.
    #[command(after_help = "Example:\n  spanwatch replay capture.pcap other.pcapng --json")]
    Replay(ReplayArgs),
    /// Capture from a network interface and print the summary periodically and on SIGINT/SIGTERM.
    #[command(after_help = "Example:\n  spanwatch live -i eth1 --bpf 'tcp or udp' --duration 60")]
    Live(LiveArgs),
    /// Validate rules and run each rule's own test cases.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write a deterministic synthetic IoT capture (HTTP, MQTT, CoAP, Telnet) for benchmarks and tests.
    #[command(after_help = "Example:\n  spanwatch synth --out mix.pcap --packets 1000000 --seed 1")]
    Synth(SynthArgs),
}

/// Settings shared by replay and live.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Memory for flow records (e.g. 128M, 1G); the flow limit is derived from it.
    #[arg(long, default_value = "128M", value_parser = parse_bytes)]
    pub flow_memcap: usize,
    /// Memory for out-of-order TCP data across all streams.
    #[arg(long, default_value = "64M", value_parser = parse_bytes)]
    pub reassembly_memcap: usize,
    /// Memory for protocol parser sessions; flows beyond it are left unparsed (counted).
    #[arg(long, default_value = "64M", value_parser = parse_bytes)]
    pub app_memcap: usize,
    /// Rows in the top-talkers table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Skip protocol parsing: decode, flows and TCP reassembly only.
    #[arg(long)]
    pub no_parsers: bool,
    /// Rules directory (*.rules.toml and default-credentials.toml); default: the built-in ruleset.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Do not run the rules.
    #[arg(long, conflicts_with = "rules")]
    pub no_rules: bool,
    /// Write alerts as EVE JSON Lines to PATH (appended; `-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub alerts: Option<PathBuf>,
    /// Also POST each alert (EVE JSON) to this http:// URL (bounded queue and retries; never blocks capture).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Also run this program for each alert, the EVE JSON on its stdin (with a timeout), e.g. a script that isolates a device.
    #[arg(long, value_name = "PROGRAM")]
    pub exec: Option<PathBuf>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Threads of the packet path: 1 runs everything on the capture thread, 2 runs the protocol parsers and rules on a second one [default: 2 when the machine has more than one core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub threads: Option<u8>,
}

impl EngineArgs {
    /// The rules and the alert stage these arguments ask for (None with
    /// `--no-rules`).
    fn detector(&self) -> Result<Option<(Detector, Alerter)>, CliError> {
        if self.no_rules {
            return Ok(None);
        }
        let rules = self.ruleset()?;
        let mut alerter = Alerter::new(AlertConfig::default());
        let sink_error = |e: AlertError| CliError {
            code: exit::CONFIG,
            message: e.to_string(),
        };
        match self.alerts.as_deref() {
            Some(p) if p == Path::new("-") => alerter.add_sink(Box::new(StdoutSink::new())),
            Some(p) => alerter.add_sink(Box::new(FileSink::open(p).map_err(sink_error)?)),
            None => {}
        }
        if let Some(url) = &self.webhook {
            let sink = WebhookSink::new(WebhookConfig::new(url.clone())).map_err(sink_error)?;
            alerter.add_sink(Box::new(sink));
        }
        if let Some(program) = &self.exec {
            let argv = vec![program.display().to_string()];
            alerter.add_sink(Box::new(
                ExecSink::new(ExecConfig::new(argv)).map_err(sink_error)?,
            ));
        }
        Ok(Some((Detector::new(rules), alerter)))
    }

    /// The rules: from `--rules DIR`, else the built-in ruleset.
    fn ruleset(&self) -> Result<RuleSet, CliError> {
        match &self.rules {
            Some(dir) => RuleSet::load_dir(dir),
            None => default_ruleset(),
        }
        .map_err(|e| CliError {
            code: exit::CONFIG,
            message: rule_error_text(&e),
        })
    }

    fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            flows: FlowConfig {
                memcap_bytes: self.flow_memcap,
                reassembly_memcap_bytes: self.reassembly_memcap,
                ..FlowConfig::default()
            },
            app_memcap_bytes: self.app_memcap,
            parse_protocols: !self.no_parsers,
            top_talkers: self.top,
            app_thread: self.threads.map_or_else(pipeline::spare_core, |n| n > 1),
            ..PipelineConfig::default()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load every *.rules.toml of DIR (default: the repository's rules/), validate it and run its test cases.
    #[command(after_help = "Example:\n  spanwatch rules check rules/")]
    Check {
        #[arg(default_value = "rules")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Do not show a progress bar (it is only shown when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Write one JSON Lines log per protocol (http.jsonl, mqtt.jsonl, coap.jsonl, telnet.jsonl) here.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on.
    #[arg(short = 'i', long)]
    pub interface: String,
    /// BPF capture filter (tcpdump syntax).
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Bytes captured per frame.
    #[arg(long, default_value_t = 65_535)]
    pub snaplen: u32,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Kernel capture buffer size (e.g. 16M).
    #[arg(long, default_value = "16M", value_parser = parse_bytes)]
    pub buffer_size: usize,
    /// Seconds between periodic summaries (0: only at the end).
    #[arg(long, default_value_t = 60)]
    pub stats_interval: u64,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    pub duration: Option<u64>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SynthMode {
    /// Devices speaking MQTT, CoAP, HTTP and Telnet over full TCP sessions.
    Iot,
    /// One packet per distinct flow (to exercise the flow table's bounds).
    DistinctFlows,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output pcap file.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of packets to write.
    #[arg(long, default_value_t = 100_000)]
    pub packets: u64,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of devices.
    #[arg(long, default_value_t = 50)]
    pub devices: u32,
    #[arg(long, value_enum, default_value_t = SynthMode::Iot)]
    pub mode: SynthMode,
    /// TCP data segments reordered, per thousand.
    #[arg(long, default_value_t = 0)]
    pub reorder: u16,
    /// TCP data segments retransmitted, per thousand.
    #[arg(long, default_value_t = 0)]
    pub retransmit: u16,
    /// TCP data segments sent again overlapping earlier data, per thousand.
    #[arg(long, default_value_t = 0)]
    pub overlap: u16,
    /// TCP data segments lost before the capture point, per thousand.
    #[arg(long, default_value_t = 0)]
    pub drop: u16,
}

/// Parse a byte size: a number with an optional K, M or G suffix (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => return Err(format!("unknown size suffix {c:?} in {s:?}: use K, M or G")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 65536, 64K, 128M, 1G)"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// An error with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<CaptureError> for CliError {
    fn from(e: CaptureError) -> Self {
        let code = match e {
            CaptureError::Live { .. } => exit::CAPTURE,
            _ => exit::INPUT,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError {
            code: exit::FAILURE,
            message: e.to_string(),
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Replay(args) => replay(args),
        Command::Live(args) => live(args),
        Command::Synth(args) => synth_cmd(args),
        Command::Rules(RulesCommand::Check { dir }) => rules_check(&dir),
    }
}

fn print_summary(summary: &Summary, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, summary).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        out.write_all(summary.to_text().as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

fn replay(args: ReplayArgs) -> Result<ExitCode, CliError> {
    let mut source = MergedSource::open(&args.files)?;
    let inputs: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    let mut pipeline = Pipeline::new(args.engine.pipeline_config());
    if let Some(detector) = args.engine.detector()? {
        pipeline.detect_with(detector.0, detector.1);
    }
    if let Some(dir) = &args.log_dir {
        pipeline.log_to(dir).map_err(log_error)?;
    }

    let bar = (!args.no_progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |read: u64, total: Option<u64>| {
        if let Some(bar) = &bar {
            if let Some(total) = total {
                bar.set_length(total);
            }
            bar.set_position(read);
        }
    };
    pipeline::run_source(&mut source, &mut pipeline, &mut progress)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    for warning in source.take_warnings() {
        eprintln!("spanwatch: warning: {warning}");
        pipeline.warn(warning.to_string());
    }
    pipeline.finish();
    pipeline.finish_logs().map_err(log_error)?;
    pipeline.flush_alerts().map_err(alert_error)?;
    print_summary(&pipeline.summary(&inputs, None), args.engine.json)?;
    Ok(ExitCode::from(exit::OK))
}

fn alert_error(e: AlertError) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: e.to_string(),
    }
}

/// Every problem of a rule error, one per line.
fn rule_error_text(e: &RuleError) -> String {
    let lines: Vec<String> = e.errors().iter().map(|e| e.to_string()).collect();
    lines.join("\n")
}

fn rules_check(dir: &Path) -> Result<ExitCode, CliError> {
    let report = check_dir(dir).map_err(|e| CliError {
        code: exit::CONFIG,
        message: rule_error_text(&e),
    })?;
    print!("{report}");
    Ok(ExitCode::from(if report.passed() {
        exit::OK
    } else {
        exit::RULE_TEST
    }))
}

fn log_error(e: crate::proto::log::LogError) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: e.to_string(),
    }
}

/// Set `signals.stop` on SIGINT or SIGTERM and `signals.reload` on SIGHUP (a
/// small runtime on its own thread).
fn watch_signals(signals: &LiveSignals) -> Result<(), CliError> {
    let stop = signals.stop.clone();
    let reload = signals.reload.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = term.recv() => break,
                        _ = int.recv() => break,
                        _ = hup.recv() => reload.store(true, Ordering::Relaxed),
                    }
                }
                stop.store(true, Ordering::Relaxed);
            });
        })?;
    Ok(())
}

fn live(args: LiveArgs) -> Result<ExitCode, CliError> {
    let signals = LiveSignals::default();
    watch_signals(&signals)?;
    let stop = signals.stop.clone();
    if let Some(secs) = args.duration {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("duration".into())
            .spawn(move || {
                std::thread::sleep(Duration::from_secs(secs));
                stop.store(true, Ordering::Relaxed);
            })?;
    }
    let cfg = LiveConfig {
        bpf: args.bpf.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_bytes: u32::try_from(args.buffer_size).unwrap_or(u32::MAX),
        ..LiveConfig::new(args.interface.clone())
    };
    let mut source = LiveSource::open_with_stop(&cfg, stop.clone())?;
    eprintln!(
        "spanwatch: capturing on {} (link type {:?}); SIGINT or SIGTERM prints the summary and stops",
        source.interface(),
        source.link_type()
    );
    let inputs = vec![format!("live:{}", args.interface)];
    let mut pipeline = Pipeline::new(args.engine.pipeline_config());
    if let Some(detector) = args.engine.detector()? {
        pipeline.detect_with(detector.0, detector.1);
    }
    let interval = match args.stats_interval {
        0 => Duration::MAX,
        secs => Duration::from_secs(secs),
    };
    let json = args.engine.json;
    let mut report_error = None;
    let mut report = |p: &mut Pipeline, kernel: Option<KernelStats>| {
        // What the stages published at the last tick: the pipeline goes on.
        let Some(summary) = p.published().summary(&inputs, kernel) else {
            return;
        };
        if let Err(e) = print_summary(&summary, json) {
            report_error.get_or_insert(e);
        }
    };
    let mut reload = || match args.engine.ruleset() {
        Ok(rules) => {
            eprintln!("spanwatch: rules reloaded ({} rules)", rules.len());
            Some(rules)
        }
        Err(e) => {
            eprintln!("spanwatch: rules not reloaded, the old ones stay: {e}");
            None
        }
    };
    pipeline::run_live(
        &mut source,
        &mut pipeline,
        &signals,
        interval,
        &mut report,
        &mut reload,
    )?;
    if let Some(e) = report_error {
        return Err(e);
    }
    pipeline.finish();
    pipeline.flush_alerts().map_err(alert_error)?;
    let kernel = pipeline::kernel_stats(&mut source);
    print_summary(&pipeline.summary(&inputs, kernel), json)?;
    Ok(ExitCode::from(exit::OK))
}

fn synth_cmd(args: SynthArgs) -> Result<ExitCode, CliError> {
    let cfg = SynthConfig {
        seed: args.seed,
        devices: args.devices,
        packets: args.packets,
        mode: match args.mode {
            SynthMode::Iot => Mode::IotMix,
            SynthMode::DistinctFlows => Mode::DistinctFlows,
        },
        impair: Impairments {
            reorder_permille: args.reorder,
            retransmit_permille: args.retransmit,
            overlap_permille: args.overlap,
            drop_permille: args.drop,
        },
        ..SynthConfig::default()
    };
    let file = File::create(&args.out).map_err(|e| CliError {
        code: exit::FAILURE,
        message: format!("{}: cannot create: {e}", args.out.display()),
    })?;
    let mut out = BufWriter::new(file);
    let report = synth::write_pcap(&cfg, &mut out)?;
    out.flush()?;
    eprintln!(
        "wrote {} packets ({} bytes, {} TCP and {} UDP flows) to {}",
        report.packets,
        report.bytes,
        report.flows_tcp,
        report.flows_udp,
        args.out.display()
    );
    Ok(ExitCode::from(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("128m"), Ok(128 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("12X").unwrap_err().contains("suffix"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
    }
}
