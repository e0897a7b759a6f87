//! Command-line interface: argument definitions (clap) and the commands.
//! `main.rs` only parses the arguments and turns errors into exit codes.

mod dataset;
mod error;

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::alert::{
    AlertError, Alerter, ExecConfig, ExecSink, FileSink, Sink, StdoutSink, WebhookConfig,
    WebhookSink,
};
use crate::capture::{LiveSource, MergedSource, Timestamp};
use crate::config::parse_listen;
use crate::config::{Config, ConfigError, DEFAULT_TOML};
use crate::detect::default_ruleset;
use crate::detect::detector::Detector;
use crate::detect::learned::{LearnedState, StateError};
use crate::detect::rules::{RuleError, RuleSet, check_dir};
use crate::features::FEATURES;
use crate::features::jsonl::JsonlWindows;
use crate::pipeline::{self, DetectionSetup, LiveSignals, Pipeline, ReloadOutcome};
use crate::summary::{DevicesSummary, KernelStats, Summary};
use crate::synth::{self, Impairments, Mode, SynthConfig};
use crate::telemetry::{MetricsServer, Telemetry};
use crate::units::parse_bytes;

pub use dataset::{ExtractArgs, RecordArgs};
use error::config_error;
pub use error::{CliError, exit};

const AFTER_HELP: &str = "\
Examples:
  spanwatch replay datasets/samples/attack/capture.pcap
  spanwatch replay day1.pcapng day2.pcap --json > summary.json
  spanwatch live -i eth1 --bpf 'not port 22' --stats-interval 30
  spanwatch config default > spanwatch.toml
  spanwatch live -i eth1 --config spanwatch.toml --alerts alerts.jsonl
  spanwatch synth --out /tmp/mix.pcap --packets 1000000 --seed 7
  spanwatch extract capture.pcap --out dataset/ --labels labels.csv
  spanwatch live -i eth1 --dataset-dir /var/lib/spanwatch/dataset --rotate 1h --retain 30d

Exit codes:
  0  success (damage in a capture is a warning; the frames before it are processed)
  1  unexpected failure
  2  bad command line (or a dataset asked of a build without Parquet)
  3  an input file cannot be read or is not a pcap/pcapng capture
  4  live capture could not start or failed
  5  the config file, a rule file, the credential dictionary, an alert output, a
     labels file or a pseudonymisation key is invalid or cannot be opened
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
    #[command(
        after_help = "Examples:\n  spanwatch replay capture.pcap other.pcapng --json\n  spanwatch replay capture.pcap --config spanwatch.toml --no-rules"
    )]
    Replay(ReplayArgs),
    /// Capture from a network interface and print the summary periodically and on SIGINT/SIGTERM; SIGHUP re-reads the config file and the rules.
    #[command(
        after_help = "Examples:\n  spanwatch live -i eth1 --bpf 'tcp or udp' --duration 60\n  spanwatch live --config /etc/spanwatch.toml   # the file sets capture.interface"
    )]
    Live(Box<LiveArgs>),
    /// Print the commented default config, or check a config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Validate rules and run each rule's own test cases.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// List the devices of captures: MAC, vendor, addresses, names, roles, zone, peers, protocols, first and last seen, traffic.
    #[command(
        after_help = "Examples:\n  spanwatch devices capture.pcap\n  spanwatch devices capture.pcap --json   # with each device's behaviour profile"
    )]
    Devices(DevicesArgs),
    /// Print the features of a feature window: name, unit and meaning.
    Features,
    /// Write Parquet datasets from captures: the feature windows (with the lab's labels) and the device inventory, partitioned by sensor and date; MACs, IPs and names optionally pseudonymised.
    #[command(
        after_help = "Examples:\n  spanwatch extract capture.pcap --out dataset/ --labels labels.csv\n  spanwatch extract day1.pcap day2.pcap --out dataset/ --pseudonymize-key dataset.key --sensor-name edge-01\n\nRead back: duckdb -c \"SELECT * FROM read_parquet('dataset/windows/**/*.parquet', hive_partitioning = true)\"\n(a build without the `train` feature has no Parquet and says so)"
    )]
    Extract(ExtractArgs),
    /// Replay a labelled capture and judge the alerts against its attack phases: per phase detected or not, time to detect, first alert and source; false alerts per severity and per device-hour; with --plot, a timeline of the phases and alerts (PNG).
    #[command(
        after_help = "Examples:\n  spanwatch eval datasets/samples/attack/capture.pcap --labels datasets/samples/attack/labels.csv --plot timeline.png\n  spanwatch eval run/capture.pcap --labels run/labels.csv --no-rules --model models/mine --json"
    )]
    Eval(EvalArgs),
    /// Fit the clustering model on normal traffic: captures (a labels.csv beside a capture marks its attack phases, left out) or --windows files; writes model.json, MODEL_CARD.md and its plots (scores.png, clusters.png, projection.png).
    #[cfg(feature = "train")]
    #[command(
        after_help = "Examples:\n  spanwatch train /data/benign-*/capture.pcap --out models/mine\n  spanwatch train /var/lib/spanwatch/datasets --out models/site   # windows recorded by live --dataset-dir (a fleet: every sensor= partition)\n  spanwatch replay capture.pcap --model models/mine"
    )]
    Train(TrainArgs),
    /// Accept findings as normal: each KEY is an alert's `spanwatch.key`; later runs with this state file no longer raise them (a model key raises that device's own threshold to the score).
    #[command(
        after_help = "Example:\n  spanwatch learn --state /var/lib/spanwatch/learned.json 'rule:9101002:10.0.0.2:*'"
    )]
    Learn(StateArgs),
    /// Take back what `learn` (or a learning period) accepted for each KEY.
    Unlearn(StateArgs),
    /// Write a deterministic synthetic IoT capture (HTTP, MQTT, CoAP, Telnet) for benchmarks and tests.
    #[command(after_help = "Example:\n  spanwatch synth --out mix.pcap --packets 1000000 --seed 1")]
    Synth(SynthArgs),
}

/// Settings shared by replay and live. Each one overrides its key of the
/// config file when given; the defaults are those of `spanwatch config default`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Read the settings from this TOML file (see `spanwatch config default`); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Memory for flow records (e.g. 128M, 1G); the flow limit is derived from it [config: flows.memcap_bytes, default 128M].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub flow_memcap: Option<usize>,
    /// Memory for out-of-order TCP data across all streams [config: flows.reassembly_memcap_bytes, default 64M].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub reassembly_memcap: Option<usize>,
    /// Memory for protocol parser sessions; flows beyond it are left unparsed (counted) [config: protocols.memcap_bytes, default 64M].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub app_memcap: Option<usize>,
    /// Memory for rule state (windows, sequences, suppressions); beyond it the least recently used group is evicted (counted) [config: rules.memcap_bytes, default 32M].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub rules_memcap: Option<usize>,
    /// Rows in the top-talkers table [config: summary.top_talkers, default 10].
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Skip protocol parsing: decode, flows and TCP reassembly only [config: protocols.enabled = false].
    #[arg(long)]
    pub no_parsers: bool,
    /// Rules directory (*.rules.toml and default-credentials.toml) [config: rules.dir, default: the built-in ruleset].
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Do not run the rules [config: rules.enabled = false].
    #[arg(long, conflicts_with = "rules")]
    pub no_rules: bool,
    /// Do not keep the device inventory, profiles and feature windows [config: devices.enabled = false].
    #[arg(long)]
    pub no_devices: bool,
    /// Score the feature windows with this model (a file or directory from `spanwatch train`) [config: model.path; default: the built-in model, models/default].
    #[arg(long, value_name = "PATH", conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Do not score the feature windows [config: model.enabled = false].
    #[arg(long)]
    pub no_model: bool,
    /// Learn each device's own normal for SECONDS of packet time before the model raises anything about it [config: model.learn_secs].
    #[arg(long, value_name = "SECONDS")]
    pub learn: Option<u64>,
    /// Write every feature window to FILE as JSON Lines (`spanwatch features` lists the columns) [config: devices.windows_file].
    #[arg(long, value_name = "FILE", conflicts_with = "no_devices")]
    pub windows: Option<PathBuf>,
    /// Write alerts as EVE JSON Lines to PATH (appended; `-` for stdout) [config: alerts.file].
    #[arg(long, value_name = "PATH")]
    pub alerts: Option<PathBuf>,
    /// Also POST each alert (EVE JSON) to this http:// URL (bounded queue and retries; never blocks capture) [config: alerts.webhook.url].
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Also run this program for each alert, the EVE JSON on its stdin (with a timeout), e.g. a script that isolates a device [config: alerts.exec.argv].
    #[arg(long, value_name = "PROGRAM")]
    pub exec: Option<PathBuf>,
    /// Write one JSON Lines log per protocol (http.jsonl, mqtt.jsonl, coap.jsonl, telnet.jsonl, dhcp.jsonl) here [config: logs.dir].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Print the summary as JSON instead of a table [config: summary.json = true].
    #[arg(long)]
    pub json: bool,
    /// Threads of the packet path: 1 runs everything on the capture thread, 2 runs the protocol parsers, rules and devices on a second one, N > 2 adds N - 2 parser threads that share the flows among them (the output is the same for any N) [config: pipeline.threads; default: 2 when the machine has more than one core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=i64::from(crate::config::MAX_THREADS)))]
    pub threads: Option<u8>,
}

impl EngineArgs {
    /// The config file (or the defaults) with the flags given applied.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        self.apply(&mut cfg);
        Ok(cfg)
    }

    /// Override the settings of `cfg` whose flags were given.
    fn apply(&self, cfg: &mut Config) {
        if let Some(n) = self.flow_memcap {
            cfg.flows.memcap_bytes = n;
        }
        if let Some(n) = self.reassembly_memcap {
            cfg.flows.reassembly_memcap_bytes = n;
        }
        if let Some(n) = self.app_memcap {
            cfg.protocols.memcap_bytes = n;
        }
        if let Some(n) = self.rules_memcap {
            cfg.rules.memcap_bytes = n;
        }
        if let Some(n) = self.top {
            cfg.summary.top_talkers = n;
        }
        if self.no_parsers {
            cfg.protocols.enabled = false;
        }
        if let Some(dir) = &self.rules {
            cfg.rules.dir = Some(dir.clone());
            cfg.rules.enabled = true;
        }
        if self.no_rules {
            cfg.rules.enabled = false;
        }
        if self.no_devices {
            cfg.devices.enabled = false;
        }
        if let Some(path) = &self.windows {
            cfg.devices.windows_file = Some(path.clone());
        }
        if let Some(path) = &self.model {
            cfg.model.path = Some(path.clone());
            cfg.model.enabled = true;
        }
        if self.no_model {
            cfg.model.enabled = false;
        }
        if let Some(secs) = self.learn {
            cfg.model.learn_secs = secs;
        }
        if let Some(path) = &self.alerts {
            cfg.alerts.file = Some(path.clone());
        }
        if let Some(url) = &self.webhook {
            let webhook = cfg
                .alerts
                .webhook
                .get_or_insert_with(|| WebhookConfig::new(url.clone()));
            webhook.url.clone_from(url);
        }
        if let Some(program) = &self.exec {
            let argv = vec![program.display().to_string()];
            let exec = cfg
                .alerts
                .exec
                .get_or_insert_with(|| ExecConfig::new(argv.clone()));
            exec.argv = argv;
        }
        if let Some(dir) = &self.log_dir {
            cfg.logs.dir = Some(dir.clone());
        }
        if self.json {
            cfg.summary.json = true;
        }
        if let Some(n) = self.threads {
            cfg.pipeline.threads = n;
        }
    }
}

fn sink_error(e: AlertError) -> CliError {
    CliError {
        code: exit::CONFIG,
        message: e.to_string(),
    }
}

/// The rules, the model, the profile detections and the alert stage `cfg`
/// asks for, with the learned state (None with every detector off: then no
/// alert is raised).
fn detector(cfg: &Config) -> Result<Option<DetectionSetup>, CliError> {
    let config_error = |e: &dyn std::fmt::Display| CliError {
        code: exit::CONFIG,
        message: e.to_string(),
    };
    let rules = if cfg.rules.enabled {
        Some(Detector::new(ruleset(cfg)?, cfg.rules.limits()))
    } else {
        None
    };
    let model = cfg.model_detector().map_err(|e| config_error(&e))?;
    let profile = cfg.profile_detector();
    if rules.is_none() && model.is_none() && profile.is_none() {
        return Ok(None);
    }
    let learned = match &cfg.model.state_file {
        Some(path) => LearnedState::load(path).map_err(|e| config_error(&e))?,
        None => LearnedState::default(),
    };
    let mut alerts = Alerter::new(cfg.alerts.limits());
    for sink in alert_sinks(cfg).map_err(sink_error)? {
        alerts.add_sink(sink);
    }
    Ok(Some(DetectionSetup {
        rules,
        model,
        profile,
        alerts,
        learned,
        state_path: cfg.model.state_file.clone(),
        learn_secs: cfg.model.learn_secs,
    }))
}

/// The alert sinks of `cfg.alerts`: file (or stdout), webhook, exec.
fn alert_sinks(cfg: &Config) -> Result<Vec<Box<dyn Sink>>, AlertError> {
    let alerts = &cfg.alerts;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    match alerts.file.as_deref() {
        Some(p) if p == Path::new("-") => sinks.push(Box::new(StdoutSink::new())),
        Some(p) => sinks.push(Box::new(FileSink::open(p)?)),
        None => {}
    }
    if let Some(webhook) = &alerts.webhook {
        sinks.push(Box::new(WebhookSink::new(webhook.clone())?));
    }
    if let Some(exec) = &alerts.exec {
        sinks.push(Box::new(ExecSink::new(exec.clone())?));
    }
    Ok(sinks)
}

/// The rules: from `rules.dir`, else the built-in ruleset.
fn ruleset(cfg: &Config) -> Result<RuleSet, CliError> {
    match &cfg.rules.dir {
        Some(dir) => RuleSet::load_dir(dir),
        None => default_ruleset(),
    }
    .map_err(|e| CliError {
        code: exit::CONFIG,
        message: rule_error_text(&e),
    })
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the default config: every key with its default value and a comment saying what it does and its unit.
    #[command(after_help = "Example:\n  spanwatch config default > /etc/spanwatch.toml")]
    Default,
    /// Check a config file: syntax, keys, types and values. The first problem is reported with its file, line, column and key (exit code 5).
    #[command(after_help = "Example:\n  spanwatch config check /etc/spanwatch.toml")]
    Check {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
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
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The Prometheus endpoint of `replay` and `live`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Serve /metrics and /healthz on ADDR: IP:PORT, or a port alone for loopback (127.0.0.1) [config: metrics.listen].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub metrics: Option<std::net::SocketAddr>,
}

impl MetricsArgs {
    fn apply(&self, cfg: &mut Config) {
        if let Some(addr) = self.metrics {
            cfg.metrics.listen = Some(addr.to_string());
        }
    }
}

#[cfg(feature = "train")]
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TrainAlgorithm {
    /// k-means, k chosen by the silhouette.
    Kmeans,
    /// A Gaussian mixture, k chosen by BIC.
    Gmm,
}

#[cfg(feature = "train")]
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Captures (pcap/pcapng), feature windows (.jsonl from --windows), or Parquet datasets (a .parquet file, or a directory as extract and live --dataset-dir write: the dataset, its windows table, or one partition of it).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Directory the model is written to (model.json, MODEL_CARD.md, and the plots scores.png, clusters.png, projection.png: 1200×800 pixels).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Settings (window length, zones, bounds) to cut the windows of captures with.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Clustering algorithm.
    #[arg(long, value_enum, default_value = "kmeans")]
    pub algorithm: TrainAlgorithm,
    /// Smallest and largest number of clusters tried (a segment has several kinds of device: fewer than 4 clusters lump kinds whose normals differ, and the tighter models catch more).
    #[arg(long, default_value_t = crate::train::fit::DEFAULT_K_MIN)]
    pub k_min: usize,
    #[arg(long, default_value_t = crate::train::fit::DEFAULT_K_MAX)]
    pub k_max: usize,
    /// Seed of the clustering and of the split into fitted and held-back windows.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Anomalous windows per normal window the thresholds aim at.
    #[arg(long, default_value_t = 0.001)]
    pub false_alarm_rate: f64,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A capture of the lab generator (pcap or pcapng).
    #[arg(value_name = "CAPTURE")]
    pub capture: PathBuf,
    /// Its labels.csv (start_epoch,end_epoch,phase,attacker_ip,target_ips,...).
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Draw a timeline of the labelled phases and the alerts (rule, model and profile rows, coloured by severity) as a PNG of 1600×900 pixels.
    #[cfg(feature = "train")]
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the inventory as JSON, with each device's behaviour profile.
    #[arg(long)]
    pub json: bool,
    /// Read the settings (zones, window length, bounds) from this TOML file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture on [config: capture.interface; one of the two is needed].
    #[arg(short = 'i', long)]
    pub interface: Option<String>,
    /// BPF capture filter (tcpdump syntax) [config: capture.bpf].
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Bytes captured per frame [config: capture.snaplen_bytes, default 262144].
    #[arg(long, value_name = "BYTES")]
    pub snaplen: Option<u32>,
    /// Do not put the interface in promiscuous mode [config: capture.promisc = false].
    #[arg(long)]
    pub no_promisc: bool,
    /// Kernel capture buffer size (e.g. 16M) [config: capture.buffer_bytes, default 16M].
    #[arg(long, value_name = "SIZE", value_parser = parse_buffer_size)]
    pub buffer_size: Option<u32>,
    /// Seconds between periodic summaries (0: only at the end) [config: summary.stats_interval_secs, default 60].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=MAX_SECS_ARG))]
    pub stats_interval: Option<u64>,
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Once the interface is open, run as this user and its groups (dropping root) [config: capture.user].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub record: RecordArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Largest number of seconds a flag that is also a config key takes (a TOML
/// integer is a signed 64-bit number).
const MAX_SECS_ARG: u64 = i64::MAX as u64;

impl LiveArgs {
    /// The config file (or the defaults) with the flags given applied.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut cfg = self.engine.config()?;
        let capture = &mut cfg.capture;
        if let Some(interface) = &self.interface {
            capture.interface = Some(interface.clone());
        }
        if let Some(bpf) = &self.bpf {
            capture.bpf = Some(bpf.clone());
        }
        if let Some(n) = self.snaplen {
            capture.snaplen_bytes = n;
        }
        if self.no_promisc {
            capture.promisc = false;
        }
        if let Some(n) = self.buffer_size {
            capture.buffer_bytes = n;
        }
        if let Some(secs) = self.stats_interval {
            cfg.summary.stats_interval_secs = secs;
        }
        self.record.apply(&mut cfg);
        if let Some(user) = &self.user {
            cfg.capture.user = Some(user.clone());
        }
        self.metrics.apply(&mut cfg);
        Ok(cfg)
    }
}

/// A kernel buffer size (e.g. 16M); it must fit libpcap's 32-bit setting.
fn parse_buffer_size(s: &str) -> Result<u32, String> {
    let n = parse_bytes(s)?;
    u32::try_from(n).map_err(|_| format!("{s:?} is too large: at most 4G - 1 bytes"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SynthMode {
    /// Devices speaking MQTT, CoAP, HTTP and Telnet over full TCP sessions.
    Iot,
    /// One packet per distinct flow (to exercise the flow table's bounds).
    DistinctFlows,
    /// SYNs from random spoofed sources at the devices (a distributed flood).
    SynFlood,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The learned-state file [config: model.state_file]; created when absent.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Alert keys (`spanwatch.key` of an alert).
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,
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
    /// Instead of generating, rewrite this capture as a merging SPAN port
    /// delivers it: --rate % of the frames arrive 1..=--max-displacement
    /// positions late, across flows and directions; timestamps stay in file
    /// order.
    #[arg(long, value_name = "CAPTURE")]
    pub reorder_capture: Option<PathBuf>,
    /// With --reorder-capture: frames delayed, in percent.
    #[arg(long, default_value_t = 5, requires = "reorder_capture", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub rate: u32,
    /// With --reorder-capture: a delayed frame is passed by up to this many later frames.
    #[arg(long, default_value_t = 2, requires = "reorder_capture", value_parser = clap::value_parser!(u32).range(1..=i64::from(synth::MAX_DISPLACEMENT)))]
    pub max_displacement: u32,
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Replay(args) => replay(args),
        Command::Live(args) => live(*args),
        Command::Synth(args) => synth_cmd(args),
        Command::Devices(args) => devices_cmd(args),
        Command::Extract(args) => dataset::extract(args),
        Command::Eval(args) => eval_cmd(args),
        #[cfg(feature = "train")]
        Command::Train(args) => train_cmd(args),
        Command::Learn(args) => state_cmd(&args, LearnedState::learn),
        Command::Unlearn(args) => state_cmd(&args, LearnedState::unlearn),
        Command::Features => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<22} {:<12} meaning", "name", "unit")?;
            for f in FEATURES {
                writeln!(out, "{:<22} {:<12} {}", f.name, f.unit, f.meaning)?;
            }
            out.flush()?;
            Ok(ExitCode::from(exit::OK))
        }
        Command::Config(ConfigCommand::Default) => {
            let mut out = std::io::stdout().lock();
            out.write_all(DEFAULT_TOML.as_bytes())?;
            out.flush()?;
            Ok(ExitCode::from(exit::OK))
        }
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
        Command::Rules(RulesCommand::Check { dir }) => rules_check(&dir),
    }
}

/// `config check`: the file is valid; list the settings it changes.
fn config_check(file: &Path) -> Result<ExitCode, CliError> {
    let cfg = Config::load(file).map_err(config_error)?;
    let changes = Config::default().changes(&cfg).map_err(|e| CliError {
        code: exit::CONFIG,
        message: format!(
            "{}: a value cannot be written back as TOML: {e}",
            file.display()
        ),
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: valid", file.display())?;
    match changes.len() {
        0 => writeln!(out, "every setting has its default value")?,
        n => {
            writeln!(
                out,
                "{n} settings differ from the defaults (key: default -> this file):"
            )?;
            for change in &changes {
                writeln!(out, "  {change}")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::from(exit::OK))
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
    let mut cfg = args.engine.config().map_err(config_error)?;
    args.metrics.apply(&mut cfg);
    let mut source = MergedSource::open(&args.files)?;
    let inputs: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    let mut pipeline = Pipeline::new(cfg.pipeline_config());
    let telemetry = serve_metrics(&cfg, &pipeline)?;
    if let Some(detector) = detector(&cfg)? {
        loaded(telemetry.as_deref(), &detector);
        pipeline.detect_with(detector);
    }
    if let Some(dir) = &cfg.logs.dir {
        pipeline.log_to(dir).map_err(log_error)?;
    }
    profile_devices(&cfg, &mut pipeline)?;

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
    pipeline.save_learned().map_err(state_error)?;
    if let Some(e) = pipeline.window_sink_error() {
        return Err(windows_error(e));
    }
    print_summary(&pipeline.summary(&inputs, None), cfg.summary.json)?;
    Ok(ExitCode::from(exit::OK))
}

/// `learn` and `unlearn`: apply `op` to every key, then save the state (all
/// keys or none: a bad key leaves the file as it was).
fn state_cmd(
    args: &StateArgs,
    op: fn(&mut LearnedState, &str) -> Result<(), StateError>,
) -> Result<ExitCode, CliError> {
    let usage = |e: StateError| CliError {
        code: exit::USAGE,
        message: e.to_string(),
    };
    let mut state = LearnedState::load(&args.state).map_err(state_error)?;
    for key in &args.keys {
        op(&mut state, key).map_err(usage)?;
    }
    state.save(&args.state).map_err(state_error)?;
    Ok(ExitCode::from(exit::OK))
}

fn state_error(e: StateError) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: e.to_string(),
    }
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
    let cfg = args.config().map_err(config_error)?;
    let Some(interface) = cfg.capture.interface.clone() else {
        return Err(CliError {
            code: exit::USAGE,
            message: "no interface to capture on: give -i IFACE, or set interface in the [capture] table of the config file".into(),
        });
    };
    // Every output is set up (and may fail) before the interface opens.
    let inputs = vec![format!("live:{interface}")];
    let mut pipeline = Pipeline::new(cfg.pipeline_config());
    let telemetry = serve_metrics(&cfg, &pipeline)?;
    let detecting = match detector(&cfg)? {
        Some(detector) => {
            loaded(telemetry.as_deref(), &detector);
            pipeline.detect_with(detector);
            true
        }
        None => false,
    };
    if let Some(dir) = &cfg.logs.dir {
        pipeline.log_to(dir).map_err(log_error)?;
    }
    profile_devices(&cfg, &mut pipeline)?;
    let recording = dataset::record(&cfg, &mut pipeline)?;
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
    let mut source = LiveSource::open_with_stop(&cfg.live_config(&interface), stop.clone())?;
    if let Some(user) = &cfg.capture.user {
        crate::privilege::drop_to(user).map_err(|e| CliError {
            code: exit::CAPTURE,
            message: e.to_string(),
        })?;
    }
    eprintln!(
        "spanwatch: capturing on {} (link type {:?}){}; SIGINT or SIGTERM prints the summary and stops, SIGHUP re-reads the config, rules, model and learned state",
        source.interface(),
        source.link_type(),
        cfg.capture
            .user
            .as_ref()
            .map(|u| format!(" as user {u}"))
            .unwrap_or_default()
    );
    let interval = match cfg.summary.stats_interval_secs {
        0 => Duration::MAX,
        secs => Duration::from_secs(secs),
    };
    let json = cfg.summary.json;
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
    let mut reloader = Reloader {
        args: &args,
        running: cfg,
        detecting,
        telemetry: telemetry.as_deref(),
    };
    pipeline::run_live(
        &mut source,
        &mut pipeline,
        &signals,
        interval,
        &mut report,
        &mut |p: &mut Pipeline| reloader.reload(p),
    )?;
    if let Some(e) = report_error {
        return Err(e);
    }
    pipeline.finish();
    pipeline.finish_logs().map_err(log_error)?;
    pipeline.flush_alerts().map_err(alert_error)?;
    pipeline.save_learned().map_err(state_error)?;
    if let Some(e) = pipeline.window_sink_error() {
        return Err(windows_error(e));
    }
    if let Some(recording) = recording {
        eprintln!("spanwatch: {}", recording.finish(&mut pipeline)?);
    }
    let kernel = pipeline::kernel_stats(&mut source);
    print_summary(&pipeline.summary(&inputs, kernel), json)?;
    Ok(ExitCode::from(exit::OK))
}

/// What SIGHUP does in `live`: read the config file (with the flags applied
/// again, so they still win) and the rules again, apply the settings that
/// can change while running, and report on stderr what changed. Anything
/// that fails leaves the running config and rules as they were.
struct Reloader<'a> {
    args: &'a LiveArgs,
    /// The settings in force.
    running: Config,
    /// Whether the run detects anything (rules, model or profiles).
    detecting: bool,
    telemetry: Option<&'a Telemetry>,
}

impl Reloader<'_> {
    fn reload(&mut self, pipeline: &mut Pipeline) {
        let outcome = self.try_reload(pipeline);
        if let Some(t) = self.telemetry {
            t.reloaded(outcome.is_ok());
        }
        match outcome {
            Ok(report) => {
                for line in report {
                    eprintln!("spanwatch: {line}");
                }
            }
            Err(why) => {
                eprintln!(
                    "spanwatch: SIGHUP: nothing reloaded, the old config, rules and model stay: {why}"
                );
            }
        }
    }

    /// The lines of the report, or why nothing was applied.
    fn try_reload(&mut self, pipeline: &mut Pipeline) -> Result<Vec<String>, String> {
        let new = self.args.config().map_err(|e| e.to_string())?;
        let changes = self
            .running
            .changes(&new)
            .map_err(|e| format!("a setting cannot be compared: {e}"))?;
        let detecting = self.detecting;
        let mut report = Vec::new();
        if let Some(path) = &self.args.engine.config {
            report.push(format!("config {} re-read", path.display()));
        }
        if detecting {
            // Everything is read and checked before anything is applied.
            let rules = if self.running.rules.enabled {
                Some(ruleset(&new).map_err(|e| e.message)?)
            } else {
                None
            };
            let sinks = if new.alerts.sinks_differ(&self.running.alerts) {
                Some(alert_sinks(&new).map_err(|e| e.to_string())?)
            } else {
                None
            };
            let model = new.model_detector().map_err(|e| e.to_string())?;
            let state_path = new.model.state_file.clone();
            let from_file = match &state_path {
                Some(path) => LearnedState::load(path).map_err(|e| e.to_string())?,
                None => LearnedState::default(),
            };
            if let Some(rules) = rules {
                report.push(format!(
                    "rules reloaded ({} rules), version {}",
                    rules.len(),
                    rules.version()
                ));
                pipeline.reload_rules(rules);
                if let Some(t) = self.telemetry {
                    t.rules_loaded();
                }
            }
            if let Err(e) = pipeline.reconfigure_alerts(&new.alerts.limits(), sinks) {
                report.push(format!(
                    "warning: flushing the replaced alert sinks failed: {e}"
                ));
            }
            if let Some(outcome) = pipeline.reload_detection(model, from_file, state_path.clone()) {
                report.extend(reload_report(&outcome, state_path.as_deref()));
                if outcome.new_model.is_some()
                    && let Some(t) = self.telemetry
                {
                    t.model_loaded();
                }
            }
            self.running.apply_reloadable(&new);
        }
        for change in &changes {
            let outcome = if detecting && change.reloadable() {
                "applied"
            } else {
                "changed, needs a restart: not applied"
            };
            report.push(format!("config: {change} ({outcome})"));
        }
        if changes.is_empty() && self.args.engine.config.is_some() {
            report.push("config: no setting changed".into());
        }
        Ok(report)
    }
}

/// The lines SIGHUP reports about the model and the learned state, after
/// writing the state back to its file (a failure is reported, the new
/// state stays in force).
fn reload_report(outcome: &ReloadOutcome, state_path: Option<&Path>) -> Vec<String> {
    let mut lines = Vec::new();
    match (&outcome.old_model, &outcome.new_model) {
        (Some(old), Some(new)) if old == new => {
            lines.push(format!("model {new} read again (unchanged)"));
        }
        (old, Some(new)) => lines.push(format!(
            "model reloaded: {} -> {new}",
            old.as_deref().unwrap_or("none")
        )),
        (Some(old), None) => lines.push(format!("model {old} turned off")),
        (None, None) => {}
    }
    if outcome.dropped_scores > 0 {
        lines.push(format!(
            "{} device scores learned under the old model dropped: the new model learns each device's normal again",
            outcome.dropped_scores
        ));
    }
    if let Some(path) = state_path {
        let s = &outcome.state;
        match s.save(path) {
            Ok(()) => lines.push(format!(
                "learned state {} reloaded: {} routine findings, {} device scores, {} known devices",
                path.display(),
                s.findings.len(),
                s.device_scores.len(),
                s.devices.len()
            )),
            Err(e) => lines.push(format!(
                "warning: the learned state is in force but could not be written back: {e}"
            )),
        }
    }
    lines
}

/// The /metrics server `cfg` asks for, started on the pipeline's published
/// state; None when metrics are off.
fn serve_metrics(cfg: &Config, pipeline: &Pipeline) -> Result<Option<Arc<Telemetry>>, CliError> {
    let fail = |message: String| CliError {
        code: exit::CONFIG,
        message,
    };
    let Some(addr) = cfg
        .metrics
        .listen_addr()
        .map_err(|e| fail(format!("metrics.listen: {e}")))?
    else {
        return Ok(None);
    };
    let telemetry = Arc::new(Telemetry::new(
        pipeline.published(),
        Duration::from_secs(cfg.metrics.health_stale_secs.max(1)),
    ));
    let server =
        MetricsServer::start(addr, Arc::clone(&telemetry)).map_err(|e| fail(e.to_string()))?;
    eprintln!(
        "spanwatch: serving /metrics and /healthz on http://{}",
        server.local_addr()
    );
    Ok(Some(telemetry))
}

/// Tells the telemetry that the rules and the model of `setup` were loaded.
fn loaded(telemetry: Option<&Telemetry>, setup: &DetectionSetup) {
    if let Some(t) = telemetry {
        if setup.rules.is_some() {
            t.rules_loaded();
        }
        if setup.model.is_some() {
            t.model_loaded();
        }
    }
}

fn synth_cmd(args: SynthArgs) -> Result<ExitCode, CliError> {
    if let Some(input) = &args.reorder_capture {
        let cfg = synth::ReorderConfig {
            seed: args.seed,
            rate_percent: args.rate,
            max_displacement: args.max_displacement,
        };
        let report = synth::reorder_capture(input, &args.out, &cfg).map_err(|e| CliError {
            code: exit::FAILURE,
            message: e.to_string(),
        })?;
        eprintln!(
            "wrote {} frames ({} delayed) to {}",
            report.frames,
            report.delayed,
            args.out.display()
        );
        return Ok(ExitCode::from(exit::OK));
    }
    let cfg = SynthConfig {
        seed: args.seed,
        devices: args.devices,
        packets: args.packets,
        mode: match args.mode {
            SynthMode::Iot => Mode::IotMix,
            SynthMode::DistinctFlows => Mode::DistinctFlows,
            SynthMode::SynFlood => Mode::SynFlood,
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

/// Devices, profiles and feature windows as `cfg` asks, with the windows
/// file when one is set.
fn profile_devices(cfg: &Config, pipeline: &mut Pipeline) -> Result<(), CliError> {
    let Some(extractor) = cfg.devices.extractor() else {
        return Ok(());
    };
    pipeline.profile_devices(extractor);
    if let Some(path) = &cfg.devices.windows_file {
        let sink = JsonlWindows::create(path).map_err(|e| CliError {
            code: exit::FAILURE,
            message: format!("cannot create the windows file {}: {e}", path.display()),
        })?;
        pipeline.add_window_sink(Box::new(sink));
    }
    Ok(())
}

/// A window sink failed: the windows file is incomplete.
fn windows_error(e: std::io::Error) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: format!("cannot write the feature windows: {e}"),
    }
}

/// `devices`: the inventory of captures, as a table or JSON.
fn devices_cmd(args: DevicesArgs) -> Result<ExitCode, CliError> {
    let mut cfg = match &args.config {
        Some(path) => Config::load(path).map_err(config_error)?,
        None => Config::default(),
    };
    cfg.rules.enabled = false;
    cfg.devices.enabled = true;
    let Some(extractor) = cfg.devices.extractor() else {
        return Ok(ExitCode::from(exit::OK));
    };
    let mut source = MergedSource::open(&args.files)?;
    let mut pipeline = Pipeline::new(cfg.pipeline_config());
    pipeline.profile_devices(extractor);
    pipeline::run_source(&mut source, &mut pipeline, &mut |_, _| {})?;
    for warning in source.take_warnings() {
        eprintln!("spanwatch: warning: {warning}");
    }
    pipeline.finish();
    let Some(devices) = pipeline.devices() else {
        return Ok(ExitCode::from(exit::OK));
    };
    let inventory = devices.extractor.inventory();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &inventory.sorted())
            .map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        let summary = DevicesSummary::new(inventory, devices.extractor.stats().windows);
        writeln!(out, "{} devices", summary.devices)?;
        out.write_all(summary.to_text(usize::MAX).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::from(exit::OK))
}

/// `train`: fit a model and write it with its card.
#[cfg(feature = "train")]
fn train_cmd(args: TrainArgs) -> Result<ExitCode, CliError> {
    use crate::train::{self, fit};
    let cfg = match &args.config {
        Some(path) => Config::load(path).map_err(config_error)?,
        None => Config::default(),
    };
    let fail = |code: u8| {
        move |e: &dyn std::fmt::Display| CliError {
            code,
            message: e.to_string(),
        }
    };
    if !(args.false_alarm_rate > 0.0 && args.false_alarm_rate < 1.0) {
        return Err(fail(exit::USAGE)(
            &"--false-alarm-rate must be between 0 and 1",
        ));
    }
    // A missing font is said before the fit, not after it.
    crate::plot::ensure_font().map_err(plot_error)?;
    let windows = train::read_inputs(&args.inputs, &cfg).map_err(|e| match e {
        train::InputError::Capture(c) => CliError::from(c),
        other => fail(exit::INPUT)(&other),
    })?;
    let fit_cfg = fit::FitConfig {
        algorithm: match args.algorithm {
            TrainAlgorithm::Kmeans => fit::Algorithm::Kmeans,
            TrainAlgorithm::Gmm => fit::Algorithm::Gmm,
        },
        k_min: args.k_min,
        k_max: args.k_max,
        seed: args.seed,
        false_alarm_rate: args.false_alarm_rate,
        ..fit::FitConfig::default()
    };
    let inputs: Vec<String> = args
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let (artifact, report) =
        fit::fit(&windows, &inputs, &fit_cfg).map_err(|e| fail(exit::FAILURE)(&e))?;
    let path = artifact
        .save(&args.out)
        .map_err(|e| fail(exit::FAILURE)(&e))?;
    train::plots::write_all(&args.out, &artifact, &report).map_err(plot_error)?;
    let card = args.out.join("MODEL_CARD.md");
    std::fs::write(&card, train::card::card(&artifact, &report))
        .map_err(|e| fail(exit::FAILURE)(&format!("cannot write {}: {e}", card.display())))?;
    eprintln!(
        "spanwatch: model {} ({} clusters, {} windows from {} devices) written to {}",
        artifact.model_id,
        artifact.clusters.len(),
        artifact.training.fit_windows,
        artifact.training.devices,
        path.display()
    );
    Ok(ExitCode::from(exit::OK))
}

/// A plot could not be drawn (no font, the file cannot be written).
#[cfg(feature = "train")]
fn plot_error(e: crate::plot::PlotError) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: e.to_string(),
    }
}

/// `eval`: replay a labelled capture and judge its alerts (and draw them).
fn eval_cmd(args: EvalArgs) -> Result<ExitCode, CliError> {
    let cfg = args.engine.config().map_err(config_error)?;
    #[cfg(feature = "train")]
    if args.plot.is_some() {
        crate::plot::ensure_font().map_err(plot_error)?;
    }
    let phases = crate::eval::read_labels(&args.labels).map_err(|e| CliError {
        code: exit::INPUT,
        message: e.to_string(),
    })?;
    let mut source = MergedSource::open(std::slice::from_ref(&args.capture))?;
    let mut pipeline = Pipeline::new(cfg.pipeline_config());
    let collect = crate::eval::Collect::default();
    profile_devices(&cfg, &mut pipeline)?;
    if let Some(mut setup) = detector(&cfg)? {
        setup.alerts.add_sink(Box::new(collect.clone()));
        setup.state_path = None;
        pipeline.detect_with(setup);
    }
    pipeline::run_source(&mut source, &mut pipeline, &mut |_, _| {})?;
    pipeline.finish();
    pipeline.flush_alerts().map_err(alert_error)?;
    let summary = pipeline.summary(&[args.capture.display().to_string()], None);
    let devices = summary.devices.as_ref().map_or(0, |d| d.devices);
    let span = summary
        .first_ts
        .as_deref()
        .zip(summary.last_ts.as_deref())
        .and_then(|(a, b)| Some((Timestamp::parse_rfc3339(a)?, Timestamp::parse_rfc3339(b)?)))
        .unwrap_or_default();
    let alerts = collect.0.lock().map(|a| a.clone()).unwrap_or_default();
    let e = crate::eval::evaluate(&phases, &alerts, devices, span);
    #[cfg(feature = "train")]
    if let Some(path) = &args.plot {
        let capture = args
            .capture
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        crate::eval::timeline::Timeline {
            capture: &capture,
            phases: &phases,
            evaluation: &e,
            alerts: &alerts,
            span,
        }
        .write(path)
        .map_err(plot_error)?;
        eprintln!("spanwatch: timeline written to {}", path.display());
    }
    let mut out = std::io::stdout().lock();
    if cfg.summary.json {
        serde_json::to_writer_pretty(&mut out, &e).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<28} {:>8} {:>9} {:>6} {:>6} {:>7}  first alert",
            "phase", "detected", "after s", "rule", "model", "profile"
        )?;
        for p in &e.phases {
            writeln!(
                out,
                "{:<28} {:>8} {:>9} {:>6} {:>6} {:>7}  {}",
                p.phase,
                if p.detected { "yes" } else { "NO" },
                p.time_to_detect_secs
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_default(),
                p.rule_alerts,
                p.model_alerts,
                p.profile_alerts,
                p.first_alert
                    .as_ref()
                    .map(|a| format!("[{}] {}", a.signature_id, a.signature))
                    .unwrap_or_default()
            )?;
        }
        let f = &e.false_alerts;
        writeln!(
            out,
            "detected {} of {} phases; {} alerts outside the phases (high {}, medium {}, low {}): {} medium-or-high per device-hour ({} devices, {:.3} h)",
            e.detected,
            e.phases.len(),
            f.total,
            f.high,
            f.medium,
            f.low,
            f.medium_or_high_per_device_hour,
            f.devices,
            f.hours
        )?;
    }
    out.flush()?;
    Ok(ExitCode::from(exit::OK))
}
