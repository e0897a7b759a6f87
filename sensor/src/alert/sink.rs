//! Where alerts go: the [`Sink`] trait, stdout and an append-only file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::AlertError;
use super::eve::EveRecord;

/// One emitted alert as sinks receive it: the record and its JSON line
/// (serialised once, without the trailing newline).
#[derive(Clone, Debug)]
pub struct EveLine {
    pub record: EveRecord,
    pub line: String,
}

/// Counters every sink keeps; a sink leaves the ones that do not apply at 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Alerts delivered (written, POSTed with a 2xx answer, command exited 0).
    pub written: u64,
    /// Alerts not attempted: queue full, too many commands running, shut down.
    pub dropped: u64,
    /// Alerts attempted and not delivered (after retries, if any).
    pub failed: u64,
    /// Extra delivery attempts.
    pub retries: u64,
    /// Commands killed or requests abandoned for taking too long.
    pub timeouts: u64,
}

/// An alert destination. `write` is called on the capture path and must not
/// block for long; `flush` is called periodically and at shutdown.
pub trait Sink: Send {
    /// Short name for stats and errors ("stdout", "file", "webhook", "exec").
    fn name(&self) -> &'static str;
    fn write(&mut self, alert: &EveLine) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    fn stats(&self) -> SinkStats;
}

/// JSON Lines to any writer; [`StdoutSink`] is the stdout one.
#[derive(Debug)]
pub struct WriterSink<W: Write + Send> {
    name: &'static str,
    out: W,
    stats: SinkStats,
}

/// JSON Lines on standard output (`--alerts -`).
pub type StdoutSink = WriterSink<io::Stdout>;

impl WriterSink<io::Stdout> {
    pub fn new() -> Self {
        WriterSink::with_writer("stdout", io::stdout())
    }
}

impl Default for WriterSink<io::Stdout> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Write + Send> WriterSink<W> {
    pub fn with_writer(name: &'static str, out: W) -> Self {
        WriterSink {
            name,
            out,
            stats: SinkStats::default(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for WriterSink<W> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn write(&mut self, alert: &EveLine) -> io::Result<()> {
        // One formatted write: `Stdout` holds its lock for the whole line.
        let result = writeln!(self.out, "{}", alert.line);
        match result {
            Ok(()) => self.stats.written += 1,
            Err(_) => self.stats.failed += 1,
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn stats(&self) -> SinkStats {
        self.stats
    }
}

/// Lines buffered in memory beyond this are written out without waiting for
/// `flush`.
pub const FILE_BUFFER_LIMIT_BYTES: usize = 64 * 1024;

/// Appends JSON Lines to a file. Lines are buffered in memory and written on
/// [`Sink::flush`], when the buffer passes [`FILE_BUFFER_LIMIT_BYTES`], and on
/// drop. Errors name the file.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Lines in `buf`.
    buffered: u64,
    stats: SinkStats,
}

impl FileSink {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<FileSink, AlertError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AlertError::Open {
                path: path.clone(),
                source,
            })?;
        Ok(FileSink {
            path,
            file,
            buf: Vec::new(),
            buffered: 0,
            stats: SinkStats::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.buffered);
        let result = self.file.write_all(&self.buf);
        // On error part of the buffer may be on disk: drop it rather than
        // write it twice or grow without bound.
        self.buf.clear();
        match result {
            Ok(()) => {
                self.stats.written += lines;
                Ok(())
            }
            Err(e) => {
                self.stats.failed += lines;
                Err(io::Error::new(
                    e.kind(),
                    format!("writing alerts to {}: {e}", self.path.display()),
                ))
            }
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    fn write(&mut self, alert: &EveLine) -> io::Result<()> {
        self.buf.extend_from_slice(alert.line.as_bytes());
        self.buf.push(b'\n');
        self.buffered += 1;
        if self.buf.len() >= FILE_BUFFER_LIMIT_BYTES {
            self.write_out()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.file
            .flush()
            .map_err(|e| io::Error::new(e.kind(), format!("flushing {}: {e}", self.path.display())))
    }

    fn stats(&self) -> SinkStats {
        self.stats
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Nobody is left to report to; `flush` before drop to see errors.
        let _ = self.write_out();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::eve::EveRecord;
    use crate::alert::tests::{rule_input, test_dir};

    fn line(sid: u32) -> EveLine {
        let mut input = rule_input();
        input.signature_id = sid;
        let (record, _) = EveRecord::from_input(input, 0);
        let line = serde_json::to_string(&record).expect("serialises");
        EveLine { record, line }
    }

    #[test]
    fn writer_sink_writes_one_line_per_alert() {
        let mut sink = WriterSink::with_writer("mem", Vec::new());
        sink.write(&line(1)).expect("write");
        sink.write(&line(2)).expect("write");
        assert_eq!(sink.stats().written, 2);
        let text = String::from_utf8(sink.into_inner()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(lines[1]).expect("json");
        assert_eq!(v["alert"]["signature_id"], 2);
    }

    #[test]
    fn file_sink_appends_and_writes_only_on_flush() {
        let dir = test_dir("file-append");
        let path = dir.join("alerts.json");
        std::fs::write(&path, "{\"earlier\":true}\n").expect("seed file");

        let mut sink = FileSink::open(&path).expect("open");
        sink.write(&line(7)).expect("write");
        // Buffered in memory until flush.
        assert_eq!(
            std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .count(),
            1
        );
        sink.flush().expect("flush");
        assert_eq!(sink.stats().written, 1);
        sink.write(&line(8)).expect("write");
        drop(sink); // drop writes what is left

        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "{\"earlier\":true}");
        let second: serde_json::Value = serde_json::from_str(lines[1]).expect("json");
        let third: serde_json::Value = serde_json::from_str(lines[2]).expect("json");
        assert_eq!(second["alert"]["signature_id"], 7);
        assert_eq!(third["alert"]["signature_id"], 8);

        // Reopening appends instead of truncating.
        let mut again = FileSink::open(&path).expect("reopen");
        again.write(&line(9)).expect("write");
        again.flush().expect("flush");
        assert_eq!(
            std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .count(),
            4
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn file_sink_writes_out_when_the_buffer_is_full() {
        let dir = test_dir("file-limit");
        let path = dir.join("alerts.json");
        let mut sink = FileSink::open(&path).expect("open");
        let one = line(1);
        let needed = FILE_BUFFER_LIMIT_BYTES / (one.line.len() + 1) + 1;
        for _ in 0..needed {
            sink.write(&one).expect("write");
        }
        // Without the limit nothing would be on disk before flush; with it,
        // everything up to the write that crossed the limit is.
        let on_disk = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .count();
        assert!(
            on_disk > 0 && on_disk + 1 >= needed,
            "{on_disk} of {needed}"
        );
        drop(sink);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn file_sink_open_error_names_the_path() {
        let err =
            FileSink::open("/nonexistent-spanwatch-dir/alerts.json").expect_err("no such dir");
        assert!(
            err.to_string()
                .contains("/nonexistent-spanwatch-dir/alerts.json"),
            "{err}"
        );
    }

    #[test]
    fn file_sink_write_error_names_the_path() {
        // /dev/full accepts open but fails every write with ENOSPC.
        let mut sink = FileSink::open("/dev/full").expect("open /dev/full");
        sink.write(&line(1)).expect("buffered");
        let err = sink.flush().expect_err("ENOSPC");
        assert!(err.to_string().contains("/dev/full"), "{err}");
        assert_eq!(sink.stats().failed, 1);
        assert_eq!(sink.stats().written, 0);
    }
}
