//! An action per alert: run a command (e.g. a script that isolates a device)
//! with the alert's JSON line on stdin.
//!
//! The command is started directly from `argv`, never through a shell, so
//! nothing from the alert is ever interpreted as a command line; use
//! `["sh", "-c", "..."]` explicitly for shell syntax. The environment carries
//! `SPANWATCH_ALERT_SIGNATURE_ID`, `SPANWATCH_ALERT_SRC_IP`,
//! `SPANWATCH_ALERT_DEST_IP`, `SPANWATCH_ALERT_SEVERITY` and, when the
//! device's MAC is known, `SPANWATCH_ALERT_DEVICE_MAC`. The JSON on stdin
//! holds attacker-chosen strings (user names, URIs): scripts must treat it as
//! data.
//!
//! `write` only hands the alert to a supervisor thread, which starts the
//! command, feeds stdin, and kills the command (by its PID: SIGKILL to that
//! process only, not to anything it started) when it outlives `timeout_ms`.
//! At most `max_concurrent` commands run; further alerts are dropped and
//! counted.

use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::AlertError;
use super::sink::{EveLine, Sink, SinkStats};

/// Upper bound for `max_concurrent`.
pub const MAX_EXEC_CONCURRENT: usize = 64;
/// How often a supervisor checks whether its command has exited.
pub const EXEC_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// `flush` and drop wait this much longer than `timeout_ms` for commands.
pub const EXEC_FLUSH_MARGIN: Duration = Duration::from_secs(1);

/// Exec action settings (config table `[alerts.exec]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// A command still running after this is killed.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Commands running at once; alerts beyond are dropped.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_concurrent() -> usize {
    4
}

impl ExecConfig {
    /// `argv` with the default limits.
    pub fn new(argv: Vec<String>) -> Self {
        ExecConfig {
            argv,
            timeout_ms: default_timeout_ms(),
            max_concurrent: default_max_concurrent(),
        }
    }

    /// There is a program and the bounds are acceptable (checked again by
    /// [`ExecSink::new`]).
    pub fn validate(&self) -> Result<(), AlertError> {
        if self.argv.first().is_none_or(String::is_empty) {
            return Err(AlertError::Config {
                key: "exec.argv",
                reason: "needs a program (e.g. [\"/usr/local/bin/isolate\", \"--quiet\"])".into(),
            });
        }
        if self.max_concurrent == 0 || self.max_concurrent > MAX_EXEC_CONCURRENT {
            return Err(AlertError::Config {
                key: "exec.max_concurrent",
                reason: format!(
                    "must be 1..={MAX_EXEC_CONCURRENT}, got {}",
                    self.max_concurrent
                ),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Shared {
    running: Mutex<usize>,
    changed: Condvar,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    timeouts: AtomicU64,
    /// First error since the last `flush`, reported by it.
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn running(&self) -> MutexGuard<'_, usize> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release(&self) {
        let mut running = self.running();
        *running = running.saturating_sub(1);
        self.changed.notify_all();
    }

    fn fail(&self, message: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(message);
    }

    /// Waits up to `wait` for every command to end; the number still running.
    fn wait_idle(&self, wait: Duration) -> usize {
        let running = self.running();
        let (running, _) = self
            .changed
            .wait_timeout_while(running, wait, |n| *n > 0)
            .unwrap_or_else(|p| p.into_inner());
        *running
    }
}

/// Runs a command per alert; see the module docs.
#[derive(Debug)]
pub struct ExecSink {
    argv: Vec<String>,
    timeout: Duration,
    max_concurrent: usize,
    shared: Arc<Shared>,
}

impl ExecSink {
    pub fn new(cfg: ExecConfig) -> Result<ExecSink, AlertError> {
        cfg.validate()?;
        Ok(ExecSink {
            argv: cfg.argv,
            timeout: Duration::from_millis(cfg.timeout_ms),
            max_concurrent: cfg.max_concurrent,
            shared: Arc::new(Shared::default()),
        })
    }

    fn command(&self, alert: &EveLine) -> Command {
        let (program, args) = self
            .argv
            .split_first()
            .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
        let record = &alert.record;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env(
                "SPANWATCH_ALERT_SIGNATURE_ID",
                record.alert.signature_id.to_string(),
            )
            .env("SPANWATCH_ALERT_SRC_IP", record.src_ip.to_string())
            .env("SPANWATCH_ALERT_DEST_IP", record.dest_ip.to_string())
            .env(
                "SPANWATCH_ALERT_SEVERITY",
                record.alert.severity.to_string(),
            );
        if let Some(mac) = record.spanwatch.device.mac.as_deref() {
            cmd.env("SPANWATCH_ALERT_DEVICE_MAC", mac);
        }
        cmd
    }
}

/// Starts `cmd`, feeds `input`, waits at most `timeout`; runs on its own thread.
fn supervise(mut cmd: Command, program: String, input: String, timeout: Duration, shared: &Shared) {
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            shared.fail(format!("exec action {program:?}: {e}"));
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read stdin must not stall the supervisor:
        // the writer ends with the pipe (EPIPE once the command is gone).
        let writer = std::thread::Builder::new()
            .name("spanwatch-exec-stdin".into())
            .spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        // If no thread could be made, stdin was dropped with the closure:
        // the command sees end of input.
        drop(writer);
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                shared.written.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Some(status)) => {
                shared.fail(format!("exec action {program:?}: {status}"));
                return;
            }
            Ok(None) if started.elapsed() >= timeout => {
                // SIGKILL to this PID, then reap it.
                let _ = child.kill();
                let _ = child.wait();
                shared.timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(None) => std::thread::sleep(EXEC_POLL_INTERVAL),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                shared.fail(format!("exec action {program:?}: {e}"));
                return;
            }
        }
    }
}

impl Sink for ExecSink {
    fn name(&self) -> &'static str {
        "exec"
    }

    /// Hands the alert to a new supervisor thread; drops it (counted) when
    /// `max_concurrent` commands are running.
    fn write(&mut self, alert: &EveLine) -> io::Result<()> {
        {
            let mut running = self.shared.running();
            if *running >= self.max_concurrent {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            *running += 1;
        }
        let cmd = self.command(alert);
        let program = self.argv.first().cloned().unwrap_or_default();
        let input = format!("{}\n", alert.line);
        let timeout = self.timeout;
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("spanwatch-exec".into())
            .spawn(move || {
                supervise(cmd, program, input, timeout, &shared);
                shared.release();
            });
        if let Err(e) = spawned {
            self.shared.release();
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::new(
                e.kind(),
                format!("exec action: no thread: {e}"),
            ));
        }
        Ok(())
    }

    /// Waits (at most `timeout_ms` + [`EXEC_FLUSH_MARGIN`]) for running
    /// commands, then reports the first failure since the last flush.
    fn flush(&mut self) -> io::Result<()> {
        let still = self.shared.wait_idle(self.timeout + EXEC_FLUSH_MARGIN);
        if still > 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("exec action: {still} commands still running"),
            ));
        }
        let first = self
            .shared
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match first {
            Some(message) => Err(io::Error::other(message)),
            None => Ok(()),
        }
    }

    fn stats(&self) -> SinkStats {
        let s = &self.shared;
        SinkStats {
            written: s.written.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            retries: 0,
            timeouts: s.timeouts.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ExecSink {
    /// Waits, bounded, for running commands (each is killed at its timeout).
    fn drop(&mut self) {
        self.shared.wait_idle(self.timeout + EXEC_FLUSH_MARGIN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::eve::EveRecord;
    use crate::alert::tests::{rule_input, test_dir};

    fn alert() -> EveLine {
        let (record, _) = EveRecord::from_input(rule_input(), 0);
        let line = serde_json::to_string(&record).expect("serialises");
        EveLine { record, line }
    }

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_gets_the_alert_on_stdin_and_in_its_environment() {
        let dir = test_dir("exec-stdin");
        let json = dir.join("alert.json");
        let env = dir.join("env.txt");
        let script = format!(
            "cat > '{}'; printf '%s %s %s' \"$SPANWATCH_ALERT_SIGNATURE_ID\" \"$SPANWATCH_ALERT_SRC_IP\" \"$SPANWATCH_ALERT_DEVICE_MAC\" > '{}'",
            json.display(),
            env.display()
        );
        let mut sink = ExecSink::new(ExecConfig::new(argv(&["sh", "-c", &script]))).expect("sink");
        let a = alert();
        sink.write(&a).expect("started");
        sink.flush().expect("command succeeded");
        assert_eq!(sink.stats().written, 1);
        assert_eq!(
            std::fs::read_to_string(&json).expect("stdin copy"),
            format!("{}\n", a.line)
        );
        // rule_input(): signature 2000001 from 192.0.2.10, MAC 02:00:00:00:00:0a.
        assert_eq!(
            std::fs::read_to_string(&env).expect("env copy"),
            "2000001 192.0.2.10 02:00:00:00:00:0a"
        );
        drop(sink);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_counted() {
        let cfg = ExecConfig {
            timeout_ms: 200,
            ..ExecConfig::new(argv(&["sleep", "10"]))
        };
        let mut sink = ExecSink::new(cfg).expect("sink");
        let started = Instant::now();
        sink.write(&alert()).expect("started");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "write must not wait"
        );
        sink.flush().expect("killed, not failed");
        // flush returns once the supervisor has killed and reaped the command.
        assert!(started.elapsed() < Duration::from_secs(3));
        let stats = sink.stats();
        assert_eq!((stats.timeouts, stats.written, stats.failed), (1, 0, 0));
    }

    #[test]
    fn at_most_max_concurrent_commands_run() {
        let cfg = ExecConfig {
            timeout_ms: 300,
            max_concurrent: 1,
            ..ExecConfig::new(argv(&["sleep", "10"]))
        };
        let mut sink = ExecSink::new(cfg).expect("sink");
        sink.write(&alert()).expect("started");
        sink.write(&alert()).expect("dropped, not an error");
        sink.flush().expect("flush");
        let stats = sink.stats();
        assert_eq!((stats.dropped, stats.timeouts), (1, 1));
        // A slot is free again.
        sink.write(&alert()).expect("started");
        sink.flush().expect("flush");
        assert_eq!(sink.stats().timeouts, 2);
    }

    #[test]
    fn failures_are_counted_and_reported_by_flush() {
        let mut sink = ExecSink::new(ExecConfig::new(argv(&["sh", "-c", "exit 3"]))).expect("sink");
        sink.write(&alert()).expect("started");
        let err = sink.flush().expect_err("exit status 3");
        assert!(err.to_string().contains("exit status: 3"), "{err}");
        assert_eq!(sink.stats().failed, 1);
        // Reported once.
        sink.flush().expect("nothing new");

        let missing = "/nonexistent/spanwatch-isolate";
        let mut sink = ExecSink::new(ExecConfig::new(argv(&[missing]))).expect("sink");
        sink.write(&alert()).expect("handed over");
        let err = sink.flush().expect_err("no such program");
        assert!(err.to_string().contains(missing), "{err}");
        assert_eq!(sink.stats().failed, 1);
    }

    #[test]
    fn config_needs_a_program_and_a_bounded_concurrency() {
        assert!(ExecSink::new(ExecConfig::new(Vec::new())).is_err());
        assert!(ExecSink::new(ExecConfig::new(argv(&[""]))).is_err());
        let cfg = ExecConfig {
            max_concurrent: MAX_EXEC_CONCURRENT + 1,
            ..ExecConfig::new(argv(&["true"]))
        };
        let err = ExecSink::new(cfg).expect_err("too many");
        assert!(err.to_string().contains("max_concurrent"), "{err}");
    }
}
