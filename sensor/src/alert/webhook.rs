//! HTTP POST of each alert's JSON line to an `http://` URL.
//!
//! `write` only puts the line on a bounded queue (dropping and counting when
//! it is full); one worker thread delivers it with `Content-Type:
//! application/json` (RFC 9110 §8.3), retrying a bounded number of times with
//! exponential backoff on connection errors, timeouts, 429 and 5xx answers
//! (RFC 9110 §15.6: server errors may be transient; other 4xx are not
//! retried). `flush` waits, bounded, for the queue to drain; drop stops the
//! worker with a bounded wait. This build has no TLS, so only plain HTTP URLs
//! are accepted. Proxies from the environment and redirects are not followed:
//! an alert goes only where it was configured to go.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::AlertError;
use super::sink::{EveLine, Sink, SinkStats};

/// Upper bound for `queue_len`.
pub const MAX_WEBHOOK_QUEUE_LEN: usize = 65_536;
/// Upper bound for `max_retries`.
pub const MAX_WEBHOOK_RETRIES: u32 = 10;

/// Webhook settings (config table `[alerts.webhook]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host[:port]/path`.
    pub url: String,
    /// Alerts waiting for delivery; more are dropped and counted.
    #[serde(default = "default_queue_len")]
    pub queue_len: usize,
    /// Extra attempts after the first failed one.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Whole-request timeout (connect, send, answer).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long `flush` and shutdown wait for the queue to drain.
    #[serde(default = "default_shutdown_wait_ms")]
    pub shutdown_wait_ms: u64,
}

fn default_queue_len() -> usize {
    1024
}
fn default_max_retries() -> u32 {
    3
}
fn default_backoff_initial_ms() -> u64 {
    250
}
fn default_backoff_max_ms() -> u64 {
    5_000
}
fn default_request_timeout_ms() -> u64 {
    5_000
}
fn default_shutdown_wait_ms() -> u64 {
    2_000
}

impl WebhookConfig {
    /// `url` with the default limits.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            queue_len: default_queue_len(),
            max_retries: default_max_retries(),
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            shutdown_wait_ms: default_shutdown_wait_ms(),
        }
    }

    /// The URL and the bounds are acceptable (checked again by [`WebhookSink::new`]).
    pub fn validate(&self) -> Result<(), AlertError> {
        check_url(&self.url)?;
        if self.queue_len == 0 || self.queue_len > MAX_WEBHOOK_QUEUE_LEN {
            return Err(AlertError::Config {
                key: "webhook.queue_len",
                reason: format!(
                    "must be 1..={MAX_WEBHOOK_QUEUE_LEN}, got {}",
                    self.queue_len
                ),
            });
        }
        if self.max_retries > MAX_WEBHOOK_RETRIES {
            return Err(AlertError::Config {
                key: "webhook.max_retries",
                reason: format!(
                    "must be at most {MAX_WEBHOOK_RETRIES}, got {}",
                    self.max_retries
                ),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct State {
    /// Queued or being delivered.
    pending: usize,
    /// Set by drop: no more retries, and nothing is sent after `deadline`.
    stopping: bool,
    deadline: Option<Instant>,
    /// The worker has returned.
    finished: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    timeouts: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the counters are
        // still meaningful.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// POSTs alerts to a webhook from a worker thread; see the module docs.
#[derive(Debug)]
pub struct WebhookSink {
    url: String,
    tx: Option<SyncSender<String>>,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    shutdown_wait: Duration,
}

impl WebhookSink {
    pub fn new(cfg: WebhookConfig) -> Result<WebhookSink, AlertError> {
        cfg.validate()?;
        let (tx, rx) = mpsc::sync_channel(cfg.queue_len);
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            agent: agent(Duration::from_millis(cfg.request_timeout_ms)),
            url: cfg.url.clone(),
            max_retries: cfg.max_retries,
            backoff_initial: Duration::from_millis(cfg.backoff_initial_ms),
            backoff_max: Duration::from_millis(cfg.backoff_max_ms),
            shared: Arc::clone(&shared),
        };
        let handle = std::thread::Builder::new()
            .name("spanwatch-webhook".into())
            .spawn(move || worker.run(rx))
            .map_err(|source| AlertError::Spawn {
                what: "webhook worker thread",
                source,
            })?;
        Ok(WebhookSink {
            url: cfg.url,
            tx: Some(tx),
            shared,
            worker: Some(handle),
            shutdown_wait: Duration::from_millis(cfg.shutdown_wait_ms),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .user_agent(concat!("spanwatch/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// Accepts `http://host[:port][/path]` only.
fn check_url(url: &str) -> Result<(), AlertError> {
    let bad = |reason: &'static str| AlertError::WebhookUrl {
        url: url.to_string(),
        reason,
    };
    let uri: ureq::http::Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https needs TLS, which this build leaves out; use an http:// URL (e.g. a local relay)",
            ));
        }
        _ => return Err(bad("the URL must start with http://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    Ok(())
}

struct Worker {
    agent: ureq::Agent,
    url: String,
    max_retries: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
    shared: Arc<Shared>,
}

enum Attempt {
    Delivered,
    Retry,
    GiveUp,
}

impl Worker {
    /// Delivers queued lines until the sink drops its sender.
    fn run(self, rx: Receiver<String>) {
        while let Ok(body) = rx.recv() {
            let past_deadline = {
                let state = self.shared.lock();
                state.deadline.is_some_and(|d| Instant::now() >= d)
            };
            if past_deadline {
                Shared::count(&self.shared.dropped);
            } else {
                self.deliver(&body);
            }
            let mut state = self.shared.lock();
            state.pending = state.pending.saturating_sub(1);
            self.shared.changed.notify_all();
        }
        self.shared.lock().finished = true;
        self.shared.changed.notify_all();
    }

    fn deliver(&self, body: &str) {
        let mut backoff = self.backoff_initial;
        for attempt in 0..=self.max_retries {
            if attempt > 0 {
                if !self.sleep_unless_stopping(backoff) {
                    break;
                }
                backoff = (backoff * 2).min(self.backoff_max);
                Shared::count(&self.shared.retries);
            }
            match self.post(body) {
                Attempt::Delivered => {
                    Shared::count(&self.shared.written);
                    return;
                }
                Attempt::GiveUp => break,
                Attempt::Retry => {}
            }
        }
        Shared::count(&self.shared.failed);
    }

    fn post(&self, body: &str) -> Attempt {
        let result = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body);
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => Attempt::Delivered,
                    429 | 500..=599 => Attempt::Retry,
                    _ => Attempt::GiveUp,
                }
            }
            Err(ureq::Error::Timeout(_)) => {
                Shared::count(&self.shared.timeouts);
                Attempt::Retry
            }
            Err(_) => Attempt::Retry,
        }
    }

    /// Waits `delay`; false (at once) if the sink is being dropped.
    fn sleep_unless_stopping(&self, delay: Duration) -> bool {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, delay, |s| !s.stopping)
            .unwrap_or_else(|p| p.into_inner());
        !state.stopping
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    /// Never blocks: a full queue drops the alert (counted).
    fn write(&mut self, alert: &EveLine) -> io::Result<()> {
        let Some(tx) = &self.tx else {
            Shared::count(&self.shared.dropped);
            return Ok(());
        };
        self.shared.lock().pending += 1;
        match tx.try_send(alert.line.clone()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared.lock().pending -= 1;
                Shared::count(&self.shared.dropped);
                match e {
                    TrySendError::Full(_) => Ok(()),
                    TrySendError::Disconnected(_) => Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        format!("webhook {}: the delivery thread has stopped", self.url),
                    )),
                }
            }
        }
    }

    /// Waits up to `shutdown_wait_ms` for every queued alert to be delivered
    /// or given up.
    fn flush(&mut self) -> io::Result<()> {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, self.shutdown_wait, |s| s.pending > 0)
            .unwrap_or_else(|p| p.into_inner());
        if state.pending > 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "webhook {}: {} alerts still queued after {} ms",
                    self.url,
                    state.pending,
                    self.shutdown_wait.as_millis()
                ),
            ));
        }
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        let s = &self.shared;
        SinkStats {
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            timeouts: s.timeouts.load(Ordering::Relaxed),
        }
    }
}

impl Drop for WebhookSink {
    /// Stops retrying, sends what is queued until `shutdown_wait_ms` has
    /// passed, and drops the rest. A worker stuck in a request past the wait
    /// is left to finish on its own (bounded by the request timeout).
    fn drop(&mut self) {
        let deadline = Instant::now() + self.shutdown_wait;
        {
            let mut state = self.shared.lock();
            state.stopping = true;
            state.deadline = Some(deadline);
        }
        self.shared.changed.notify_all();
        self.tx = None;
        let state = self.shared.lock();
        let wait = deadline.saturating_duration_since(Instant::now());
        let (state, _) = self
            .shared
            .changed
            .wait_timeout_while(state, wait, |s| !s.finished)
            .unwrap_or_else(|p| p.into_inner());
        let finished = state.finished;
        drop(state);
        if let Some(handle) = self.worker.take().filter(|_| finished) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::eve::EveRecord;
    use crate::alert::tests::rule_input;
    use std::io::{Read, Write as _};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::AtomicBool;

    /// Longest any test server lives.
    const SERVER_LIFETIME: Duration = Duration::from_secs(10);
    const MAX_REQUEST_BYTES: usize = 64 * 1024;

    #[derive(Debug)]
    struct Recorded {
        request_line: String,
        content_type: Option<String>,
        body: String,
    }

    enum Behaviour {
        /// Answer the n-th connection with the n-th status (the last repeats).
        Answer(Vec<u16>),
        /// Read the request and never answer.
        Silent,
    }

    /// A one-thread HTTP/1.1 server on 127.0.0.1 for at most
    /// `max_connections` connections and [`SERVER_LIFETIME`].
    struct TestServer {
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<Recorded>>>,
        stop: Arc<AtomicBool>,
        handle: Option<JoinHandle<()>>,
    }

    impl TestServer {
        fn start(behaviour: Behaviour, max_connections: usize) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            listener.set_nonblocking(true).expect("nonblocking");
            let addr = listener.local_addr().expect("addr");
            let requests = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (reqs, stop2) = (Arc::clone(&requests), Arc::clone(&stop));
            let handle = std::thread::spawn(move || {
                let start = Instant::now();
                let mut held = Vec::new();
                let mut served = 0;
                while start.elapsed() < SERVER_LIFETIME && !stop2.load(Ordering::Relaxed) {
                    let stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    if served == max_connections {
                        continue; // refuse by closing
                    }
                    let Some(recorded) = read_request(&stream) else {
                        continue;
                    };
                    reqs.lock().expect("lock").push(recorded);
                    match &behaviour {
                        Behaviour::Answer(statuses) => {
                            let status = statuses
                                .get(served)
                                .or(statuses.last())
                                .copied()
                                .unwrap_or(200);
                            let mut stream = stream;
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            );
                        }
                        Behaviour::Silent => held.push(stream),
                    }
                    served += 1;
                }
            });
            TestServer {
                addr,
                requests,
                stop,
                handle: Some(handle),
            }
        }

        fn url(&self) -> String {
            format!("http://{}/alerts", self.addr)
        }

        fn requests(&self) -> usize {
            self.requests.lock().expect("lock").len()
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
    }

    /// Reads one request head and its Content-Length body.
    fn read_request(stream: &TcpStream) -> Option<Recorded> {
        stream.set_nonblocking(false).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut stream = stream;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if buf.len() > MAX_REQUEST_BYTES {
                return None;
            }
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(chunk.get(..n)?);
        };
        let head = String::from_utf8_lossy(buf.get(..head_end)?).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let length: usize = header("content-length")?.parse().ok()?;
        if length > MAX_REQUEST_BYTES {
            return None;
        }
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(chunk.get(..n)?);
        }
        Some(Recorded {
            request_line: head.lines().next()?.to_string(),
            content_type: header("content-type"),
            body: String::from_utf8_lossy(buf.get(head_end..head_end + length)?).into_owned(),
        })
    }

    fn alert(sid: u32) -> EveLine {
        let mut input = rule_input();
        input.signature_id = sid;
        let (record, _) = EveRecord::from_input(input, 0);
        let line = serde_json::to_string(&record).expect("serialises");
        EveLine { record, line }
    }

    fn quick(url: String) -> WebhookConfig {
        WebhookConfig {
            backoff_initial_ms: 10,
            backoff_max_ms: 40,
            request_timeout_ms: 1_000,
            shutdown_wait_ms: 3_000,
            ..WebhookConfig::new(url)
        }
    }

    #[test]
    fn posts_each_alert_as_a_json_body() {
        let server = TestServer::start(Behaviour::Answer(vec![200]), 8);
        let mut sink = WebhookSink::new(quick(server.url())).expect("sink");
        sink.write(&alert(11)).expect("queued");
        sink.write(&alert(12)).expect("queued");
        sink.flush().expect("drained");
        let stats = sink.stats();
        assert_eq!((stats.written, stats.failed, stats.dropped), (2, 0, 0));
        drop(sink);
        let reqs = server.requests.lock().expect("lock");
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].request_line, "POST /alerts HTTP/1.1");
        assert_eq!(reqs[0].content_type.as_deref(), Some("application/json"));
        let sids: Vec<u64> = reqs
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.body).expect("json body");
                v["alert"]["signature_id"].as_u64().expect("sid")
            })
            .collect();
        assert_eq!(sids, [11, 12]);
    }

    #[test]
    fn retries_a_server_that_fails_twice() {
        let server = TestServer::start(Behaviour::Answer(vec![500, 503, 200]), 8);
        let mut sink = WebhookSink::new(quick(server.url())).expect("sink");
        sink.write(&alert(1)).expect("queued");
        sink.flush().expect("drained");
        let stats = sink.stats();
        assert_eq!((stats.written, stats.retries, stats.failed), (1, 2, 0));
        assert_eq!(server.requests(), 3);
    }

    #[test]
    fn client_errors_are_not_retried() {
        let server = TestServer::start(Behaviour::Answer(vec![400]), 8);
        let mut sink = WebhookSink::new(quick(server.url())).expect("sink");
        sink.write(&alert(1)).expect("queued");
        sink.flush().expect("drained");
        let stats = sink.stats();
        assert_eq!((stats.written, stats.retries, stats.failed), (0, 0, 1));
        assert_eq!(server.requests(), 1);
    }

    #[test]
    fn a_refused_connection_is_retried_a_bounded_number_of_times() {
        // A port nobody listens on: bind, note the port, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cfg = WebhookConfig {
            max_retries: 2,
            ..quick(format!("http://127.0.0.1:{port}/alerts"))
        };
        let started = Instant::now();
        let mut sink = WebhookSink::new(cfg).expect("sink");
        for sid in 0..3 {
            sink.write(&alert(sid)).expect("queued");
        }
        sink.flush().expect("every alert given up within the wait");
        let stats = sink.stats();
        assert_eq!((stats.written, stats.failed, stats.retries), (0, 3, 6));
        drop(sink);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_silent_server_fills_the_queue_and_drops_are_counted_without_hanging() {
        let server = TestServer::start(Behaviour::Silent, 16);
        let cfg = WebhookConfig {
            queue_len: 2,
            max_retries: 0,
            request_timeout_ms: 400,
            shutdown_wait_ms: 500,
            ..quick(server.url())
        };
        let mut sink = WebhookSink::new(cfg).expect("sink");
        let started = Instant::now();
        for sid in 0..10 {
            sink.write(&alert(sid)).expect("never blocks, never fails");
        }
        // Ten writes against a queue of two (plus one being sent) return at
        // once; blocking ones would wait for 400 ms timeouts.
        assert!(started.elapsed() < Duration::from_millis(400));
        let err = sink
            .flush()
            .expect_err("two or three 400 ms timeouts exceed the 500 ms wait");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains(&server.url()), "{err}");
        let stats = sink.stats();
        assert!(stats.dropped >= 7, "{stats:?}");
        assert!(stats.timeouts >= 1, "{stats:?}");
        assert_eq!(stats.written, 0);
        let dropping = Instant::now();
        drop(sink);
        assert!(dropping.elapsed() < Duration::from_millis(1_500));
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        for url in [
            "https://127.0.0.1/x",
            "ftp://127.0.0.1/x",
            "127.0.0.1:80/x",
            "http://",
            "not a url",
        ] {
            let err = WebhookSink::new(WebhookConfig::new(url)).expect_err(url);
            assert!(err.to_string().contains(url), "{err}");
        }
        let err = WebhookSink::new(WebhookConfig {
            queue_len: 0,
            ..WebhookConfig::new("http://127.0.0.1:9/")
        })
        .expect_err("empty queue");
        assert!(err.to_string().contains("queue_len"), "{err}");
    }
}
