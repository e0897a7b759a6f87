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
