//! Telemetry: the sensor's health and findings for Prometheus.
//!
//! `/metrics` is read from what the stages publish (`pipeline::Published`:
//! snapshots of the capture and application stages taken at most every
//! 200 ms, atomics for the kernel counters, the capture loop's heartbeat and
//! the hand-over between the stages), so a scrape never stops or slows the
//! packet path: the stages swap a pointer under a lock they never wait for.
//! The process metrics (`process_*`: CPU, resident memory, open files,
//! start time) come from the `prometheus` crate's collector reading /proc.
//!
//! `/healthz` answers 200 while the capture loop shows life (a frame's
//! second of packet time, or an idle read when the interface is quiet)
//! within [`Telemetry::health`]'s limit, 503 otherwise, with a one-line
//! reason.

pub mod exposition;
mod families;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::{Encoder, TextEncoder};

use crate::pipeline::Published;
pub use exposition::{Loads, MAX_ALERT_SERIES, Reading};
pub use server::{MAX_CONNECTIONS, MetricsServer, REQUEST_TIMEOUT};

/// Why the exposition could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot serve /metrics on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the /metrics server thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] prometheus::Error),
}

/// What /metrics and /healthz read: the pipeline's published state, and
/// what the command line records of loads and reloads.
pub struct Telemetry {
    published: Arc<Published>,
    process: ProcessCollector,
    health_stale: Duration,
    /// Unix time (f64 bits) of the last model and rules loads; 0: none.
    model_loaded: AtomicU64,
    rules_loaded: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

/// /healthz's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    /// One line saying why.
    pub reason: String,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Telemetry {
    /// Telemetry of the pipeline that publishes to `published`; /healthz
    /// fails after `health_stale` without a sign of life of the capture.
    pub fn new(published: Arc<Published>, health_stale: Duration) -> Self {
        Telemetry {
            published,
            process: ProcessCollector::for_self(),
            health_stale,
            model_loaded: AtomicU64::new(0),
            rules_loaded: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    /// A model was loaded (at start or on SIGHUP).
    pub fn model_loaded(&self) {
        self.model_loaded
            .store(unix_now().to_bits(), Ordering::Relaxed);
    }

    /// Rules were loaded (at start or on SIGHUP).
    pub fn rules_loaded(&self) {
        self.rules_loaded
            .store(unix_now().to_bits(), Ordering::Relaxed);
    }

    /// A SIGHUP was handled: applied, or failed (nothing changed).
    pub fn reloaded(&self, applied: bool) {
        let counter = if applied {
            &self.reloads
        } else {
            &self.reload_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn loads(&self) -> Loads {
        let at = |cell: &AtomicU64| {
            let secs = f64::from_bits(cell.load(Ordering::Relaxed));
            (secs > 0.0).then_some(secs)
        };
        Loads {
            model_loaded_secs: at(&self.model_loaded),
            rules_loaded_secs: at(&self.rules_loaded),
            reloads: self.reloads.load(Ordering::Relaxed),
            reload_failures: self.reload_failures.load(Ordering::Relaxed),
        }
    }

    /// The text exposition (Prometheus text format 0.0.4).
    pub fn render(&self) -> Result<String, TelemetryError> {
        let capture = self.published.capture();
        let app = self.published.app();
        let reading = Reading {
            capture: capture.as_deref(),
            app: Some(&app),
            kernel: self.published.kernel(),
            batches: Some(self.published.batches.read()),
            heartbeat_age_secs: self.published.since_heartbeat().map(|d| d.as_secs_f64()),
            loads: self.loads(),
        };
        let mut families = exposition::families(&reading);
        families.extend(self.process.collect());
        let mut out = Vec::new();
        TextEncoder::new().encode(&families.into_sorted(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Whether the capture is alive.
    pub fn health(&self) -> Health {
        let packets = self.published.capture().map_or(0, |s| s.packets);
        match self.published.since_heartbeat() {
            None => Health {
                ok: false,
                reason: "capture has not delivered a frame or an idle read yet".into(),
            },
            Some(age) if age > self.health_stale => Health {
                ok: false,
                reason: format!(
                    "capture stalled: no frame or idle read for {:.1} s (limit {} s); {packets} packets so far",
                    age.as_secs_f64(),
                    self.health_stale.as_secs()
                ),
            },
            Some(age) => Health {
                ok: true,
                reason: format!(
                    "ok: capture alive {:.1} s ago, {packets} packets",
                    age.as_secs_f64()
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alerter;
    use crate::capture::MergedSource;
    use crate::config::Config;
    use crate::detect::default_ruleset;
    use crate::detect::detector::Detector;
    use crate::pipeline::{self, DetectionSetup, Pipeline};
    use std::io::{Read, Write};

    /// A sample of the exposition: `series value`.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    }

    #[test]
    fn health_says_why_until_the_capture_shows_life() {
        let mut p = Pipeline::new(Config::default().pipeline_config());
        let t = Telemetry::new(p.published(), Duration::from_secs(10));
        let h = t.health();
        assert!(!h.ok && h.reason.contains("not delivered"), "{h:?}");
        p.idle();
        let h = t.health();
        assert!(h.ok && h.reason.starts_with("ok: capture alive"), "{h:?}");
        let strict = Telemetry::new(p.published(), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(20));
        let h = strict.health();
        assert!(!h.ok && h.reason.starts_with("capture stalled"), "{h:?}");
    }

    /// The lab's attack capture through the default rules: the exposition
    /// shows the run's own summary, counter for counter.
    #[test]
    fn the_exposition_counts_what_the_summary_counts() {
        let cfg = Config::default();
        let mut p = Pipeline::new(cfg.pipeline_config());
        let t = Telemetry::new(p.published(), Duration::from_secs(10));
        p.detect_with(DetectionSetup {
            rules: Some(Detector::new(
                default_ruleset().expect("rules"),
                cfg.rules.limits(),
            )),
            model: None,
            profile: None,
            alerts: Alerter::new(cfg.alerts.limits()),
            learned: Default::default(),
            state_path: None,
            learn_secs: 0,
        });
        let capture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../datasets/samples/attack/capture.pcap");
        let mut source = MergedSource::open(&[capture]).expect("capture");
        pipeline::run_source(&mut source, &mut p, &mut |_, _| {}).expect("replay");
        p.finish();
        let text = t.render().expect("render");
        let s = p.summary(&[], None);
        assert_eq!(value(&text, "spanwatch_packets_total"), s.packets as f64);
        assert_eq!(value(&text, "spanwatch_bytes_total"), s.bytes as f64);
        assert_eq!(
            value(&text, "spanwatch_ip_packets_total{version=\"4\"}"),
            s.decode.ipv4 as f64
        );
        assert_eq!(
            value(&text, "spanwatch_flows_created_total{transport=\"tcp\"}"),
            s.flows.tcp as f64
        );
        assert_eq!(
            value(
                &text,
                "spanwatch_protocol_messages_total{protocol=\"mqtt\",kind=\"message\"}"
            ),
            s.protocols.mqtt.messages as f64
        );
        assert_eq!(
            value(
                &text,
                "spanwatch_protocol_messages_total{protocol=\"http\",kind=\"request\"}"
            ),
            s.protocols.http.requests as f64
        );
        let d = s.detection.as_ref().expect("detection");
        assert!(d.alerts.emitted > 0, "the attack capture raises alerts");
        let alerts: f64 = text
            .lines()
            .filter(|l| l.starts_with("spanwatch_alerts_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert_eq!(alerts, d.alerts.emitted as f64);
        assert_eq!(
            value(&text, "spanwatch_rules"),
            d.rules as f64,
            "rules loaded"
        );
        let info = text
            .lines()
            .find(|l| l.starts_with("spanwatch_detection_info{"))
            .expect("info metric");
        let version = d.rules_version.as_deref().expect("rules version");
        assert!(
            info.contains(&format!("rules_version=\"{version}\"")),
            "{info}"
        );
        // Every family says what it is.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "no help: {name}"
            );
        }
    }

    /// One HTTP/1.0 request to the server; the status line, headers and body.
    fn http(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        answer
    }

    #[test]
    fn the_server_answers_metrics_health_and_nothing_else() {
        let p = Pipeline::new(Config::default().pipeline_config());
        let t = Arc::new(Telemetry::new(p.published(), Duration::from_secs(10)));
        let server = MetricsServer::start("127.0.0.1:0".parse().expect("addr"), t).expect("start");
        let addr = server.local_addr();
        let metrics = http(addr, "GET /metrics HTTP/1.0\r\n\r\n");
        assert!(metrics.starts_with("HTTP/1.0 200 OK\r\n"), "{metrics}");
        assert!(
            metrics.contains("content-type: text/plain; version=0.0.4"),
            "{metrics}"
        );
        assert!(
            metrics.contains("\nprocess_resident_memory_bytes "),
            "{metrics}"
        );
        let health = http(addr, "GET /healthz HTTP/1.0\r\n\r\n");
        assert!(health.starts_with("HTTP/1.0 503 "), "{health}");
        assert!(health.ends_with("capture has not delivered a frame or an idle read yet\n"));
        let other = http(addr, "GET /admin HTTP/1.0\r\n\r\n");
        assert!(other.starts_with("HTTP/1.0 404 "), "{other}");
        let post = http(addr, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        assert!(post.starts_with("HTTP/1.0 405 "), "{post}");
        assert!(post.contains("allow: GET, HEAD"), "{post}");
        // A port taken is an error naming the address.
        let busy = MetricsServer::start(
            addr,
            Arc::new(Telemetry::new(p.published(), Duration::from_secs(1))),
        )
        .expect_err("in use");
        assert!(busy.to_string().contains(&addr.to_string()), "{busy}");
    }
}
