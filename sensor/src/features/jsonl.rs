//! Feature windows as JSON Lines, one object per window: `device` (the MAC),
//! `start` and `end` (RFC 3339, UTC), then every feature by name. Plain
//! text for tests, scripts and builds without the Parquet datasets.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{FEATURES, Window, WindowSink};
use crate::device::inventory::{Device, MacText};

/// Appends windows to a file.
pub struct JsonlWindows {
    path: PathBuf,
    out: BufWriter<File>,
    /// One serialized line, reused.
    line: Vec<u8>,
}

impl JsonlWindows {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(JsonlWindows {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            line: Vec::with_capacity(1024),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A window as a JSON object.
pub fn window_json(w: &Window) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("device".into(), Value::from(MacText(w.device).to_string()));
    m.insert("start".into(), Value::from(w.start.to_string()));
    m.insert("end".into(), Value::from(w.end.to_string()));
    for (spec, v) in FEATURES.iter().zip(w.values) {
        m.insert(spec.name.into(), Value::from(v));
    }
    m
}

impl WindowSink for JsonlWindows {
    fn window(&mut self, w: &Window, _device: Option<&Device>) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, &window_json(w)).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::features::{FEATURE_COUNT, Feature};

    #[test]
    fn a_window_is_one_line_with_every_feature_by_name() {
        let dir = std::env::temp_dir().join(format!("spanwatch-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("w.jsonl");
        let mut sink = JsonlWindows::create(&path).expect("create");
        let mut values = [0.0; FEATURE_COUNT];
        values[Feature::PacketsOut.index()] = 12.0;
        let w = Window {
            device: [2, 0x77, 0, 0, 0, 0x0a],
            // 1700000000 s = 2023-11-14T22:13:20Z (`date -u -d @1700000000`).
            start: Timestamp::from_secs_nanos(1_700_000_000, 0),
            end: Timestamp::from_secs_nanos(1_700_000_010, 0),
            values,
            notes: Default::default(),
        };
        sink.window(&w, None).expect("write");
        sink.window(&w, None).expect("write");
        sink.flush().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["device"], "02:77:00:00:00:0a");
        assert_eq!(lines[0]["start"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(lines[0]["packets_out"], 12.0);
        assert_eq!(
            lines[0].as_object().map(|o| o.len()),
            Some(3 + FEATURE_COUNT)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
