//! The typed config file, `spanwatch.toml`.
//!
//! One root struct, [`Config`], gathers every setting of a run: live capture,
//! threads, the flow table and TCP reassembly, IP defragmentation, each
//! protocol parser's bounds, protocol logs, rules, alert limits and sinks, and
//! the summary. Every table is closed (`deny_unknown_fields`) and optional
//! (`default`): a file names only what it changes, and a misspelt key is an
//! error naming the file, line, column and key, with the valid keys of its
//! table. Units are in the key names; byte sizes may be written as integers or
//! as strings like `"128M"` ([`crate::units::de_bytes`]).
//!
//! Defaults live in one place: each stage's own settings struct
//! ([`FlowConfig`], [`HttpLimits`](crate::proto::http::HttpLimits), ...),
//! embedded here as it is, or, for the sections defined here, the `Default`
//! of the struct the section is converted into. [`DEFAULT_TOML`] is the
//! commented default file (`spanwatch config default`); the tests below keep
//! it equal to `Config::default()` key for key and value for value.
//!
//! A section for a new stage is one more field of [`Config`] holding that
//! stage's settings struct (serde `default` and `deny_unknown_fields`), its
//! keys with their comments in `config/default.toml`, and, if it may change
//! while `live` runs, its key in [`RELOADABLE`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::alert::{AlertConfig, AlertError, ExecConfig, WebhookConfig};
use crate::capture::LiveConfig;
use crate::decode::defrag::DefragLimits;
use crate::detect::model::{Model, ModelArtifact, ModelDetector, ModelError};
use crate::detect::profile::{DeniedFlow, EXTERNAL_ZONE, ProfileDetector};
use crate::detect::rules::EngineLimits;
use crate::device::inventory::DEFAULT_MAX_DEVICES;
use crate::device::zone::Zone;
use crate::features::{DEFAULT_WINDOW_SECS, Extractor};
use crate::flow::FlowConfig;
use crate::pipeline::{self, PipelineConfig};
use crate::proto::AppLimits;
use crate::proto::coap::CoapLimits;
use crate::proto::dhcp::DhcpLimits;
use crate::proto::http::HttpLimits;
use crate::proto::mqtt::MqttLimits;
use crate::proto::telnet::TelnetLimits;

/// The commented default config that `spanwatch config default` prints.
pub const DEFAULT_TOML: &str = include_str!("config/default.toml");

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Keys (or whole tables) that `live` applies when SIGHUP re-reads the
/// config; every other change needs a restart.
pub const RELOADABLE: &[&str] = &["rules.dir", "alerts", "model"];

/// Default seconds between two summaries of `live`.
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 60;

/// Largest value of `[pipeline] threads`: the capture thread, the
/// application stage's, and up to 14 parser threads.
pub const MAX_THREADS: u8 = 16;

/// Every setting of a run (`spanwatch.toml`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub capture: CaptureSection,
    pub pipeline: PipelineSection,
    pub flows: FlowConfig,
    pub defrag: DefragLimits,
    pub protocols: ProtocolsSection,
    pub logs: LogsSection,
    pub rules: RulesSection,
    pub alerts: AlertsSection,
    pub devices: DevicesSection,
    pub dataset: DatasetSection,
    pub model: ModelSection,
    pub summary: SummarySection,
    pub metrics: MetricsSection,
}

/// `[capture]`: how `live` opens its interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureSection {
    /// Interface to capture on (`-i` wins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// BPF filter expression (pcap-filter(7) syntax).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf: Option<String>,
    pub snaplen_bytes: u32,
    pub promisc: bool,
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub buffer_bytes: u32,
    pub read_timeout_ms: u32,
    /// `live`: the user to run as once the interface is open (its group and
    /// supplementary groups too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Default for CaptureSection {
    fn default() -> Self {
        let live = LiveConfig::new(String::new());
        CaptureSection {
            interface: None,
            bpf: live.bpf,
            snaplen_bytes: live.snaplen,
            promisc: live.promisc,
            buffer_bytes: live.buffer_bytes,
            read_timeout_ms: live.read_timeout_ms,
            user: None,
        }
    }
}

/// `[pipeline]`: threads of the packet path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSection {
    /// 0: two when the machine has more than one core. 1: everything on
    /// the capture thread; 2: the parsers, rules and devices on a second;
    /// N > 2: the flows' parsing shared by N - 2 parser threads, besides.
    pub threads: u8,
}

/// `[protocols]`: the application-protocol stage and each parser's bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolsSection {
    /// Parse the application protocols (off: flows and reassembly only).
    pub enabled: bool,
    /// Memory for parser sessions.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub memcap_bytes: usize,
    pub http: HttpLimits,
    pub mqtt: MqttLimits,
    pub coap: CoapLimits,
    pub telnet: TelnetLimits,
    pub dhcp: DhcpLimits,
}

impl Default for ProtocolsSection {
    fn default() -> Self {
        let pipeline = PipelineConfig::default();
        let AppLimits {
            http,
            mqtt,
            coap,
            telnet,
            dhcp,
        } = pipeline.app_limits;
        ProtocolsSection {
            enabled: pipeline.parse_protocols,
            memcap_bytes: pipeline.app_memcap_bytes,
            http,
            mqtt,
            coap,
            telnet,
            dhcp,
        }
    }
}

/// `[logs]`: per-protocol JSON Lines logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// `[rules]`: the rule engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSection {
    pub enabled: bool,
    /// Rules directory; absent: the built-in ruleset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub max_groups_per_rule: usize,
    pub max_entries_per_group: usize,
    /// Estimated bytes of all rule state (windows, sequences, suppressions,
    /// sessions). 0 keeps only the state the current event uses.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub memcap_bytes: usize,
}

impl Default for RulesSection {
    fn default() -> Self {
        let limits = EngineLimits::default();
        RulesSection {
            enabled: true,
            dir: None,
            max_groups_per_rule: limits.max_groups_per_rule,
            max_entries_per_group: limits.max_entries_per_group,
            memcap_bytes: limits.memcap_bytes,
        }
    }
}

impl RulesSection {
    pub fn limits(&self) -> EngineLimits {
        EngineLimits {
            max_groups_per_rule: self.max_groups_per_rule,
            max_entries_per_group: self.max_entries_per_group,
            memcap_bytes: self.memcap_bytes,
        }
    }
}

/// `[alerts]`: deduplication, rate limit and sinks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSection {
    /// EVE JSON Lines file, appended; `-` is stdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    pub dedupe_secs: u64,
    pub max_alerts_per_sec: u32,
    pub max_keys: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecConfig>,
}

impl Default for AlertsSection {
    fn default() -> Self {
        let limits = AlertConfig::default();
        AlertsSection {
            file: None,
            dedupe_secs: limits.dedupe_secs,
            max_alerts_per_sec: limits.max_alerts_per_sec,
            max_keys: limits.max_keys,
            webhook: None,
            exec: None,
        }
    }
}

impl AlertsSection {
    /// The deduplication and rate settings.
    pub fn limits(&self) -> AlertConfig {
        AlertConfig {
            dedupe_secs: self.dedupe_secs,
            max_alerts_per_sec: self.max_alerts_per_sec,
            max_keys: self.max_keys,
        }
    }

    /// Whether `other` names different sinks (or sink settings).
    pub fn sinks_differ(&self, other: &AlertsSection) -> bool {
        (&self.file, &self.webhook, &self.exec) != (&other.file, &other.webhook, &other.exec)
    }
}

/// `[devices]`: the device inventory, behaviour profiles and feature windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesSection {
    pub enabled: bool,
    /// Length of a feature window, in seconds of packet time.
    pub window_secs: u64,
    /// Devices kept; the least recently seen makes room.
    pub max_devices: usize,
    /// Flows between zones that raise an alert.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<DeniedFlow>,
    /// Feature windows are also written here as JSON Lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_file: Option<PathBuf>,
    /// Named subnets; the first holding a device's address is its zone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Zone>,
}

impl Default for DevicesSection {
    fn default() -> Self {
        DevicesSection {
            enabled: true,
            window_secs: DEFAULT_WINDOW_SECS,
            max_devices: DEFAULT_MAX_DEVICES,
            windows_file: None,
            deny: Vec::new(),
            zones: Vec::new(),
        }
    }
}

impl DevicesSection {
    /// The extractor these settings ask for (None when devices are off).
    pub fn extractor(&self) -> Option<Extractor> {
        self.enabled
            .then(|| Extractor::new(self.window_secs, self.max_devices, self.zones.clone()))
    }
}

/// Default length of a dataset file's period, in seconds.
pub const DEFAULT_ROTATE_SECS: u64 = 3600;
/// Default rows of a Parquet row group (the rows a writer buffers).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 16_384;
/// Largest `[dataset] row_group_rows`.
pub const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

/// Longest `[dataset] sensor_name`, in bytes.
pub const MAX_SENSOR_NAME_BYTES: usize = 64;

/// A sensor name is the value of a Hive partition (`sensor=NAME`) and a
/// path component: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with a dot
/// (never hidden, safe in a path and a glob). The reason when it is not.
pub fn check_sensor_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_SENSOR_NAME_BYTES {
        return Err("must have 1 to 64 characters");
    }
    if name.starts_with('.') {
        return Err("must not start with a dot");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("may hold only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// `[dataset]`: Parquet datasets of feature windows and the inventory
/// (`spanwatch extract`, `spanwatch live --dataset-dir`; builds with the
/// `train` feature). The defaults are here, not in the dataset module, so
/// that a build without it reads the same files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetSection {
    /// `live` records the windows under this directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The `sensor=` partition; absent: the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor_name: Option<String>,
    /// Period of one recorded file, in seconds of packet time (0 counts as 1).
    pub rotate_secs: u64,
    /// Recorded files older than this are deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_secs: Option<u64>,
    /// The oldest recorded files are deleted while the sensor's files
    /// together are larger than this.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::units::de_opt_bytes"
    )]
    pub retain_bytes: Option<u64>,
    /// Rows buffered and written as one Parquet row group (0 counts as 1).
    pub row_group_rows: usize,
    /// MACs, IPs and names are replaced by pseudonyms keyed by this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudonymize_key_file: Option<PathBuf>,
}

impl Default for DatasetSection {
    fn default() -> Self {
        DatasetSection {
            dir: None,
            sensor_name: None,
            rotate_secs: DEFAULT_ROTATE_SECS,
            retain_secs: None,
            retain_bytes: None,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            pseudonymize_key_file: None,
        }
    }
}

/// `[model]`: the clustering model scoring every feature window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    pub enabled: bool,
    /// A model file or directory (from `spanwatch train`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Seconds of packet time during which each device's own normal (and
    /// the routine medium and low rule findings) are learned before the
    /// model and those rules raise anything about it.
    pub learn_secs: u64,
    /// Where what was learned is kept across restarts (read at start,
    /// written at the end); `spanwatch learn` edits it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            enabled: true,
            path: None,
            learn_secs: 0,
            state_file: None,
        }
    }
}

impl Config {
    /// The profile detections (on when the devices are).
    pub fn profile_detector(&self) -> Option<ProfileDetector> {
        self.devices.enabled.then(|| {
            ProfileDetector::new(
                self.devices.zones.clone(),
                self.devices.deny.clone(),
                self.model.learn_secs,
            )
        })
    }

    /// The model detector these settings ask for: None when the model or the
    /// devices (which make the windows it scores) are off; without a path,
    /// the built-in default model.
    pub fn model_detector(&self) -> Result<Option<ModelDetector>, ModelError> {
        if !self.model.enabled || !self.devices.enabled {
            return Ok(None);
        }
        let artifact = match &self.model.path {
            Some(path) => ModelArtifact::load(path)?,
            None => ModelArtifact::built_in()?,
        };
        Ok(Some(ModelDetector::new(
            Model::new(artifact),
            self.model.learn_secs,
        )))
    }
}

/// `[summary]`: the run's summary report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SummarySection {
    /// JSON instead of a table.
    pub json: bool,
    pub top_talkers: usize,
    /// `live`: seconds between summaries; 0 only at the end.
    pub stats_interval_secs: u64,
}

impl Default for SummarySection {
    fn default() -> Self {
        SummarySection {
            json: false,
            top_talkers: PipelineConfig::default().top_talkers,
            stats_interval_secs: DEFAULT_STATS_INTERVAL_SECS,
        }
    }
}

/// Default seconds without a sign of life of the capture loop before
/// /healthz fails (`[metrics] health_stale_secs`). The loop shows life at
/// least every read timeout (100 ms by default) when the interface is quiet.
pub const DEFAULT_HEALTH_STALE_SECS: u64 = 10;

/// `[metrics]`: the Prometheus endpoint (/metrics, /healthz) of `live` and
/// `replay`; off unless `listen` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `HOST:PORT` (`[::1]:9187` for IPv6), or a port alone for loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// /healthz fails after this many seconds without a sign of life of the
    /// capture loop.
    pub health_stale_secs: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: None,
            health_stale_secs: DEFAULT_HEALTH_STALE_SECS,
        }
    }
}

impl MetricsSection {
    /// The address to serve on, when metrics are on.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        self.listen.as_deref().map(parse_listen).transpose()
    }
}

/// A listen address: `HOST:PORT` with an IP address as host, or a port
/// alone (optionally `:PORT`) meaning loopback, `127.0.0.1:PORT`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().map_err(|_| {
        format!("{text:?} is not an address to listen on: give IP:PORT (127.0.0.1:9187, [::1]:9187) or a port alone for loopback")
    })
}

/// Why a config file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the config file is larger than {MAX_CONFIG_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

/// A bad key or value and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The file (or other origin) of the text.
    pub origin: String,
    /// 1-based line and column (in characters), when known.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the offending key (`flows.memcap_bytes`), when known.
    pub key: Option<String>,
    pub message: String,
    /// The line of the file the position points into.
    pub source_line: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some((line, column)), Some(text)) = (self.position, &self.source_line) {
            let gutter = " ".repeat(line.to_string().len());
            let caret = " ".repeat(column.saturating_sub(1));
            write!(f, "\n{gutter} |\n{line} | {text}\n{gutter} | {caret}^")?;
        }
        Ok(())
    }
}

/// A setting whose value differs between two configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Dotted key path, e.g. `alerts.dedupe_secs`.
    pub key: String,
    /// Values as TOML would write them; `None` where the key is absent.
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Change {
    /// Whether `live` applies this change on SIGHUP (see [`RELOADABLE`]).
    pub fn reloadable(&self) -> bool {
        RELOADABLE.iter().any(|p| {
            self.key
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".into());
        write!(
            f,
            "{}: {} -> {}",
            self.key,
            show(&self.old),
            show(&self.new)
        )
    }
}

impl Config {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Config::from_toml(&path.display().to_string(), &text)
    }

    /// Parse and check config text; `origin` names it in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let key = span.as_ref().and_then(|s| {
                DeTable::parse(text)
                    .ok()
                    .and_then(|t| key_at(t.get_ref(), s.start))
            });
            let message = user_message(e.message().trim_end(), key.as_deref());
            invalid(origin, text, span, key, message)
        })?;
        cfg.validate().map_err(|(key, message)| {
            let span = DeTable::parse(text)
                .ok()
                .and_then(|t| span_of(t.get_ref(), &key));
            invalid(origin, text, span, Some(key), message)
        })?;
        Ok(cfg)
    }

    /// Checks the values serde cannot: ranges, URLs, programs. The error is
    /// (dotted key, reason).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.pipeline.threads > MAX_THREADS {
            return Err((
                "pipeline.threads".into(),
                format!(
                    "must be 0 (automatic) or 1 to {MAX_THREADS}, got {}",
                    self.pipeline.threads
                ),
            ));
        }
        let paths = [
            ("logs.dir", &self.logs.dir),
            ("rules.dir", &self.rules.dir),
            ("alerts.file", &self.alerts.file),
            ("dataset.dir", &self.dataset.dir),
            (
                "dataset.pseudonymize_key_file",
                &self.dataset.pseudonymize_key_file,
            ),
        ];
        for (key, path) in paths {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err((
                    key.into(),
                    "is empty: give a path, or leave the key out".into(),
                ));
            }
        }
        self.validate_dataset()?;
        let alert_problem = |e: AlertError, table: &str| match e {
            AlertError::Config { key, reason } => (format!("alerts.{key}"), reason),
            AlertError::WebhookUrl { url, reason } => {
                ("alerts.webhook.url".into(), format!("{url:?}: {reason}"))
            }
            other => (format!("alerts.{table}"), other.to_string()),
        };
        if let Some(webhook) = &self.alerts.webhook {
            webhook
                .validate()
                .map_err(|e| alert_problem(e, "webhook"))?;
        }
        if let Some(exec) = &self.alerts.exec {
            exec.validate().map_err(|e| alert_problem(e, "exec"))?;
        }
        if let Err(reason) = self.metrics.listen_addr() {
            return Err(("metrics.listen".into(), reason));
        }
        if self.capture.user.as_deref() == Some("") {
            return Err((
                "capture.user".into(),
                "is empty: give a user name, or leave the key out".into(),
            ));
        }
        let zone_names: Vec<&str> = self.devices.zones.iter().map(|z| z.name.as_str()).collect();
        for (i, d) in self.devices.deny.iter().enumerate() {
            for (side, zone) in [("from", &d.from), ("to", &d.to)] {
                if zone != EXTERNAL_ZONE && !zone_names.contains(&zone.as_str()) {
                    return Err((
                        format!("devices.deny[{i}].{side}"),
                        format!(
                            "{zone:?} is not a zone of [[devices.zones]] ({}) nor {EXTERNAL_ZONE:?}",
                            zone_names.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_dataset(&self) -> Result<(), (String, String)> {
        let d = &self.dataset;
        if d.row_group_rows > MAX_ROW_GROUP_ROWS {
            return Err((
                "dataset.row_group_rows".into(),
                format!(
                    "must be at most {MAX_ROW_GROUP_ROWS}, got {}",
                    d.row_group_rows
                ),
            ));
        }
        if let Some(name) = &d.sensor_name {
            check_sensor_name(name)
                .map_err(|reason| ("dataset.sensor_name".into(), format!("{name:?}: {reason}")))?;
        }
        Ok(())
    }

    /// The settings of the packet path.
    pub fn pipeline_config(&self) -> PipelineConfig {
        let p = &self.protocols;
        PipelineConfig {
            flows: self.flows,
            defrag: self.defrag,
            app_limits: AppLimits {
                http: p.http.clone(),
                mqtt: p.mqtt.clone(),
                coap: p.coap,
                telnet: p.telnet,
                dhcp: p.dhcp,
            },
            app_memcap_bytes: p.memcap_bytes,
            parse_protocols: p.enabled,
            top_talkers: self.summary.top_talkers,
            app_thread: match self.pipeline.threads {
                0 => pipeline::spare_core(),
                n => n > 1,
            },
            parser_threads: usize::from(self.pipeline.threads.saturating_sub(2)),
        }
    }

    /// How to open `interface` for `live`.
    pub fn live_config(&self, interface: &str) -> LiveConfig {
        let c = &self.capture;
        LiveConfig {
            bpf: c.bpf.clone(),
            snaplen: c.snaplen_bytes,
            promisc: c.promisc,
            buffer_bytes: c.buffer_bytes,
            read_timeout_ms: c.read_timeout_ms,
            ..LiveConfig::new(interface)
        }
    }

    /// Every setting whose value differs from `new`, in key order.
    pub fn changes(&self, new: &Config) -> Result<Vec<Change>, toml::ser::Error> {
        let (old, new) = (flat_values(self)?, flat_values(new)?);
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        Ok(keys
            .into_iter()
            .filter(|k| old.get(*k) != new.get(*k))
            .map(|k| Change {
                key: k.clone(),
                old: old.get(k).cloned(),
                new: new.get(k).cloned(),
            })
            .collect())
    }

    /// Take over from `new` what SIGHUP applies ([`RELOADABLE`]).
    pub fn apply_reloadable(&mut self, new: &Config) {
        self.rules.dir.clone_from(&new.rules.dir);
        self.alerts = new.alerts.clone();
        self.model = new.model.clone();
    }
}

/// Every leaf setting of `cfg` as (dotted key, value written as TOML).
/// Arrays are leaves.
fn flat_values(cfg: &Config) -> Result<BTreeMap<String, String>, toml::ser::Error> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                leaf => {
                    out.insert(key, leaf.to_string());
                }
            }
        }
    }
    let table = toml::Table::try_from(cfg)?;
    let mut out = BTreeMap::new();
    walk("", &table, &mut out);
    Ok(out)
}

/// serde's message in the words of a config file: "unknown field `x`,
/// expected one of `a`, `b`" names the key and the valid keys of its table,
/// and "expected struct FlowConfig" (a Rust type) becomes "expected a table".
/// Other messages are kept as they are.
fn user_message(message: &str, key: Option<&str>) -> String {
    if let Some((head, _)) = message.split_once(", expected struct ") {
        return format!("{head}, expected a table");
    }
    let Some((name, expected)) = message
        .strip_prefix("unknown field ")
        .and_then(|rest| rest.split_once(", "))
    else {
        return message.to_string();
    };
    let table = key
        .and_then(|k| k.rsplit_once('.'))
        .map_or_else(|| "the top level".to_string(), |(t, _)| format!("[{t}]"));
    let valid = expected
        .strip_prefix("expected one of ")
        .or_else(|| expected.strip_prefix("expected "))
        .unwrap_or(expected);
    format!("unknown key {name}; the valid keys of {table} are {valid}")
}

fn invalid(
    origin: &str,
    text: &str,
    span: Option<Range<usize>>,
    key: Option<String>,
    message: String,
) -> ConfigError {
    let position = span.map(|s| line_column(text, s.start));
    let source_line = position.and_then(|(line, _)| text.lines().nth(line - 1).map(str::to_string));
    ConfigError::Invalid(Box::new(Invalid {
        origin: origin.to_string(),
        position,
        key,
        message,
        source_line,
    }))
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// Dotted path of the innermost key whose name or value covers `offset`.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    for (k, v) in table {
        let in_key = contains(&k.span(), offset);
        let in_value = contains(&v.span(), offset);
        let inner = match v.get_ref() {
            DeValue::Table(t) => key_at(t, offset),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                if !contains(&item.span(), offset) {
                    return None;
                }
                Some(match item.get_ref() {
                    DeValue::Table(t) => {
                        key_at(t, offset).map_or(format!("[{i}]"), |inner| format!("[{i}].{inner}"))
                    }
                    _ => format!("[{i}]"),
                })
            }),
            _ => None,
        };
        match inner {
            Some(inner) if inner.starts_with('[') => {
                return Some(format!("{}{inner}", k.get_ref()));
            }
            Some(inner) => return Some(format!("{}.{inner}", k.get_ref())),
            None if in_key || in_value => return Some(k.get_ref().to_string()),
            None => {}
        }
    }
    None
}

/// Span of the dotted `key` in the document, or of its nearest ancestor
/// present there.
fn span_of(table: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    let (head, rest) = key
        .split_once('.')
        .map_or((key, None), |(h, r)| (h, Some(r)));
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == head)?;
    let inner = match (rest, v.get_ref()) {
        (Some(rest), DeValue::Table(t)) => span_of(t, rest),
        _ => None,
    };
    inner.or_else(|| Some(k.span()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Invalid> {
        Config::from_toml("test.toml", text).map_err(|e| match e {
            ConfigError::Invalid(i) => *i,
            other => panic!("unexpected error {other}"),
        })
    }

    /// The example lines of the default text (`# key = value`,
    /// `# [table]`) made active.
    fn uncomment_examples(text: &str) -> String {
        text.lines()
            .map(|line| match example(line) {
                Some(active) => active.to_string(),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The text of a commented-out example line, if `line` is one.
    fn example(line: &str) -> Option<&str> {
        let rest = line.strip_prefix("# ")?;
        let is_table = rest.starts_with('[') && rest.ends_with(']') && !rest.contains(' ');
        let is_key = rest.split_once(" = ").is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        (is_table || is_key).then_some(rest)
    }

    /// Dotted paths of every table of a parsed document (the root is "").
    fn tables(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        out.push(prefix.to_string());
        for (k, v) in table {
            if let toml::Value::Table(t) = v {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                tables(&path, t, out);
            }
        }
    }

    fn table_at<'a>(root: &'a mut toml::Table, path: &str) -> &'a mut toml::Table {
        if path.is_empty() {
            return root;
        }
        path.split('.').fold(root, |t, k| match t.get_mut(k) {
            Some(toml::Value::Table(inner)) => inner,
            _ => panic!("no table {path}"),
        })
    }

    #[test]
    fn the_default_text_parses_to_exactly_the_default_config() {
        let parsed = Config::from_toml("default", DEFAULT_TOML).expect("default text is valid");
        let differ = Config::default().changes(&parsed).expect("diff");
        assert!(differ.is_empty(), "the default text differs: {differ:?}");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn the_default_text_sets_every_key_of_the_default_config_and_no_other() {
        let text: toml::Table = toml::from_str(DEFAULT_TOML).expect("toml");
        let mut in_text = BTreeMap::new();
        fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, ()>) {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match v {
                    toml::Value::Table(t) => walk(&key, t, out),
                    _ => {
                        out.insert(key, ());
                    }
                }
            }
        }
        walk("", &text, &mut in_text);
        let serialised = flat_values(&Config::default()).expect("serialise");
        let a: Vec<&String> = in_text.keys().collect();
        let b: Vec<&String> = serialised.keys().collect();
        assert_eq!(a, b);
    }

    /// Every field of every table, optional ones included, is in the
    /// default text (set, or as a commented example), and nothing else is:
    /// serde's unknown-field error lists a table's fields, so a key slipped
    /// into each table makes the struct itself say what it has.
    #[test]
    fn the_default_text_documents_every_field_of_every_table() {
        let full = uncomment_examples(DEFAULT_TOML);
        let parsed = Config::from_toml("full", &full).expect("examples are valid");
        assert_ne!(parsed, Config::default(), "the examples set optional keys");
        let doc: toml::Table = toml::from_str(&full).expect("toml");
        let mut paths = Vec::new();
        tables("", &doc, &mut paths);
        for path in paths {
            let mut probe = doc.clone();
            let table = table_at(&mut probe, &path);
            let mut documented: Vec<String> = table.keys().cloned().collect();
            documented.sort();
            table.insert("zz_probe".into(), toml::Value::Integer(0));
            let text = toml::to_string(&probe).expect("serialise");
            let err = parse(&text).expect_err("unknown key");
            // "unknown key `zz_probe`; the valid keys of [t] are `a`, `b`"
            let mut fields: Vec<String> = err
                .message
                .split('`')
                .skip(1)
                .step_by(2)
                .skip(1)
                .map(str::to_string)
                .collect();
            fields.sort();
            assert_eq!(documented, fields, "table [{path}]: {}", err.message);
        }
    }

    /// Every key line of the default text, set or example, follows a comment
    /// saying what it is.
    #[test]
    fn every_key_of_the_default_text_has_a_comment() {
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let key_line = match (line.starts_with('#'), example(line)) {
                (false, _) => *line,
                (true, Some(example)) => example,
                (true, None) => continue,
            };
            let Some((key, _)) = key_line.split_once(" = ") else {
                continue;
            };
            let prose = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.starts_with('#') && example(l).is_none())
                .count();
            assert!(prose > 0, "line {}: `{key}` has no comment above it", i + 1);
        }
    }

    #[test]
    fn sizes_accept_integers_and_suffixed_strings() {
        let cfg = parse("[flows]\nmemcap_bytes = \"256M\"\nreassembly_memcap_bytes = 1048576\n")
            .expect("valid");
        assert_eq!(cfg.flows.memcap_bytes, 256 << 20);
        assert_eq!(cfg.flows.reassembly_memcap_bytes, 1 << 20);
        let cfg = parse("[protocols.coap.link_format]\nmax_value_bytes = \"1K\"\n").expect("valid");
        assert_eq!(cfg.protocols.coap.link_format.max_value_len, 1024);
    }

    #[test]
    fn an_unknown_key_names_file_line_column_key_and_the_valid_keys() {
        let text = "[alerts]\ndedupe_secs = 5\n\n[flows]\nudp_timeout_secs = 9\nmemcap_byte = 1\n";
        let err = parse(text).expect_err("unknown key");
        assert_eq!(err.position, Some((6, 1)));
        assert_eq!(err.key.as_deref(), Some("flows.memcap_byte"));
        assert!(
            err.message
                .starts_with("unknown key `memcap_byte`; the valid keys of [flows] are "),
            "{}",
            err.message
        );
        for valid in [
            "memcap_bytes",
            "reassembly",
            "tcp_new_timeout_secs",
            "other_timeout_secs",
        ] {
            assert!(
                err.message.contains(&format!("`{valid}`")),
                "{}",
                err.message
            );
        }
        let shown = err.to_string();
        assert!(
            shown.starts_with("test.toml:6:1: key `flows.memcap_byte`: unknown key"),
            "{shown}"
        );
        assert!(shown.contains("6 | memcap_byte = 1"), "{shown}");
    }

    #[test]
    fn rules_memcap_is_a_byte_size() {
        let cfg = parse("[rules]\nmemcap_bytes = \"8M\"\n").expect("valid");
        assert_eq!(cfg.rules.limits().memcap_bytes, 8 << 20);
        let err = parse("[rules]\nenabled = true\nmemcap_bytes = -1\n").expect_err("negative");
        assert_eq!(err.key.as_deref(), Some("rules.memcap_bytes"));
        assert_eq!(err.position.map(|(line, _)| line), Some(3));
        assert!(err.message.contains("-1 is negative"), "{}", err.message);
        let err = parse("[rules]\nmemcap_bytes = \"32Q\"\n").expect_err("bad suffix");
        assert_eq!(err.key.as_deref(), Some("rules.memcap_bytes"));
        assert!(
            err.message.contains("unknown size suffix 'Q'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_denied_flow_must_name_a_zone() {
        let zones = "[[devices.zones]]\nname = \"iot\"\nsubnets = [\"10.77.0.0/24\"]\n";
        let ok = format!("{zones}[[devices.deny]]\nfrom = \"iot\"\nto = \"external\"\n");
        assert_eq!(parse(&ok).expect("valid").devices.deny.len(), 1);
        let typo = format!("{zones}[[devices.deny]]\nfrom = \"iot\"\nto = \"exernal\"\n");
        let err = parse(&typo).expect_err("no such zone");
        assert_eq!(err.key.as_deref(), Some("devices.deny[0].to"));
        assert!(
            err.message.contains("\"exernal\" is not a zone"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_unknown_table_is_named_with_the_root_keys() {
        let err = parse("[flow]\nmemcap_bytes = 1\n").expect_err("unknown table");
        assert_eq!(err.position, Some((1, 2)));
        assert_eq!(err.key.as_deref(), Some("flow"));
        assert!(
            err.message.contains("valid keys of the top level are"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("`flows`") && err.message.contains("`alerts`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_and_points_at_the_value() {
        let text = "[rules]\nenabled = \"no\"\n";
        let err = parse(text).expect_err("wrong type");
        assert_eq!(err.position, Some((2, 11)));
        assert_eq!(err.key.as_deref(), Some("rules.enabled"));
        assert!(
            err.message
                .contains("invalid type: string \"no\", expected a boolean"),
            "{}",
            err.message
        );

        let err = parse("[protocols.http]\nmax_head_bytes = \"64Q\"\n").expect_err("bad size");
        assert_eq!(err.key.as_deref(), Some("protocols.http.max_head_bytes"));
        assert_eq!(err.position, Some((2, 18)));
        assert!(err.message.contains("suffix"), "{}", err.message);
    }

    #[test]
    fn a_value_where_a_table_belongs_says_a_table_is_expected() {
        let err = parse("flows = 3\n").expect_err("not a table");
        assert_eq!(err.key.as_deref(), Some("flows"));
        assert_eq!(err.message, "invalid type: integer `3`, expected a table");
    }

    #[test]
    fn a_bad_value_inside_an_array_names_its_index() {
        let err = parse("[alerts.exec]\nargv = [\"/bin/true\", 3]\n").expect_err("wrong type");
        assert_eq!(err.key.as_deref(), Some("alerts.exec.argv[1]"));
        assert_eq!(err.position, Some((2, 22)));
    }

    #[test]
    fn values_serde_cannot_check_are_reported_at_their_key() {
        let err = parse("[pipeline]\nthreads = 17\n").expect_err("range");
        assert_eq!(err.key.as_deref(), Some("pipeline.threads"));
        assert_eq!(err.position, Some((2, 1)));
        let text = "[alerts]\nmax_keys = 9\n[alerts.webhook]\nurl = \"https://siem.example/\"\n";
        let err = parse(text).expect_err("https");
        assert_eq!(err.key.as_deref(), Some("alerts.webhook.url"));
        assert_eq!(err.position, Some((4, 1)));
        assert!(err.message.contains("TLS"), "{}", err.message);
        let err = parse("alerts.exec.argv = []\n").expect_err("no program");
        assert_eq!(err.key.as_deref(), Some("alerts.exec.argv"));
        assert_eq!(err.position, Some((1, 13)));
        let err = parse("[logs]\ndir = \"\"\n").expect_err("empty path");
        assert_eq!(err.key.as_deref(), Some("logs.dir"));
        let err = parse("[dataset]\nrow_group_rows = 2000000\n").expect_err("too many rows");
        assert_eq!(err.key.as_deref(), Some("dataset.row_group_rows"));
        assert_eq!(err.position, Some((2, 1)));
        let err = parse("[dataset]\nsensor_name = \"a/b\"\n").expect_err("slash");
        assert_eq!(err.key.as_deref(), Some("dataset.sensor_name"));
        assert!(err.message.contains("letters"), "{}", err.message);
    }

    #[test]
    fn dataset_sizes_and_durations_read_as_written() {
        let cfg = Config::from_toml(
            "t.toml",
            "[dataset]\nretain_bytes = \"10G\"\nretain_secs = 2592000\nrotate_secs = 5\n",
        )
        .expect("valid");
        assert_eq!(cfg.dataset.retain_bytes, Some(10 << 30));
        assert_eq!(cfg.dataset.retain_secs, Some(30 * 86_400));
        assert_eq!(cfg.dataset.rotate_secs, 5);
        assert_eq!(Config::default().dataset.retain_bytes, None);
    }

    #[test]
    fn metrics_and_user_keys_are_checked() {
        let err = parse("[metrics]\nlisten = \"localhost\"\n").expect_err("no port");
        assert_eq!(err.key.as_deref(), Some("metrics.listen"));
        assert!(err.message.contains("IP:PORT"), "{}", err.message);
        let err = parse("[capture]\nuser = \"\"\n").expect_err("empty user");
        assert_eq!(err.key.as_deref(), Some("capture.user"));
    }

    #[test]
    fn a_metrics_port_alone_is_loopback() {
        let addr = |text: &str| parse_listen(text).expect("valid");
        assert_eq!(addr("9187").to_string(), "127.0.0.1:9187");
        assert_eq!(addr(":9187").to_string(), "127.0.0.1:9187");
        assert_eq!(addr("0.0.0.0:9187").to_string(), "0.0.0.0:9187");
        assert_eq!(addr("[::1]:9187").to_string(), "[::1]:9187");
        assert!(parse_listen("99999").is_err());
        let cfg = parse("[metrics]\nlisten = \"9187\"\n").expect("valid");
        assert_eq!(
            cfg.metrics.listen_addr(),
            Ok(Some("127.0.0.1:9187".parse().expect("addr")))
        );
        assert_eq!(Config::default().metrics.listen_addr(), Ok(None));
    }

    #[test]
    fn a_syntax_error_has_a_position_and_no_key() {
        let err = parse("[flows]\nmemcap_bytes = = 3\n").expect_err("syntax");
        assert_eq!(err.position.map(|p| p.0), Some(2));
        assert_eq!(err.key, None);
    }

    #[test]
    fn a_missing_or_oversized_file_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("spanwatch-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let missing = dir.join("missing.toml");
        let err = Config::load(&missing).expect_err("missing");
        assert!(err.to_string().contains("missing.toml"), "{err}");
        let big = dir.join("big.toml");
        let line = "# padding\n";
        let text = line.repeat((MAX_CONFIG_BYTES as usize) / line.len() + 1);
        std::fs::write(&big, text).expect("write");
        assert!(matches!(
            Config::load(&big),
            Err(ConfigError::TooLarge { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn changes_list_what_differs_and_which_apply_on_reload() {
        let old = Config::default();
        let new = parse(
            "[flows]\nmemcap_bytes = \"1G\"\n[alerts]\ndedupe_secs = 0\nfile = \"a.jsonl\"\n[rules]\ndir = \"r\"\n",
        )
        .expect("valid");
        let changes = old.changes(&new).expect("diff");
        let shown: Vec<(String, bool)> = changes
            .iter()
            .map(|c| (c.to_string(), c.reloadable()))
            .collect();
        assert_eq!(
            shown,
            [
                ("alerts.dedupe_secs: 60 -> 0".to_string(), true),
                ("alerts.file: (not set) -> \"a.jsonl\"".to_string(), true),
                (
                    "flows.memcap_bytes: 134217728 -> 1073741824".to_string(),
                    false
                ),
                ("rules.dir: (not set) -> \"r\"".to_string(), true),
            ]
        );
    }

    /// After a reload, the running config differs from the file only in
    /// settings that need a restart.
    #[test]
    fn apply_reloadable_takes_over_exactly_the_reloadable_keys() {
        let full = Config::from_toml("full", &uncomment_examples(DEFAULT_TOML)).expect("valid");
        let mut changed = full.clone();
        changed.alerts.dedupe_secs += 1;
        changed.alerts.max_alerts_per_sec += 1;
        changed.alerts.max_keys += 1;
        changed.rules.max_groups_per_rule += 1;
        changed.flows.udp_timeout_secs += 1;
        changed.capture.promisc = !changed.capture.promisc;
        changed.model.learn_secs += 1;
        changed.metrics.health_stale_secs += 1;
        let mut running = Config::default();
        let before = running.changes(&changed).expect("diff");
        assert!(before.iter().any(Change::reloadable) && before.iter().any(|c| !c.reloadable()));
        running.apply_reloadable(&changed);
        let after = running.changes(&changed).expect("diff");
        let left: Vec<&Change> = before.iter().filter(|c| !c.reloadable()).collect();
        assert_eq!(after.iter().collect::<Vec<_>>(), left);
    }

    #[test]
    fn the_config_drives_the_pipeline_and_capture_settings() {
        let cfg = parse(
            "[pipeline]\nthreads = 1\n[protocols]\nenabled = false\nmemcap_bytes = \"1M\"\n\
             [protocols.mqtt]\nmax_inflight = 7\n[summary]\ntop_talkers = 3\n\
             [capture]\nbpf = \"tcp\"\nbuffer_bytes = \"2M\"\nsnaplen_bytes = 1500\npromisc = false\n",
        )
        .expect("valid");
        let p = cfg.pipeline_config();
        assert!(!p.app_thread && !p.parse_protocols);
        assert_eq!((p.app_memcap_bytes, p.top_talkers), (1 << 20, 3));
        assert_eq!(p.app_limits.mqtt.max_inflight, 7);
        let live = cfg.live_config("eth9");
        assert_eq!(live.interface, "eth9");
        assert_eq!(live.bpf.as_deref(), Some("tcp"));
        assert_eq!(
            (live.buffer_bytes, live.snaplen, live.promisc),
            (2 << 20, 1500, false)
        );
    }
}
