//! The `windows` table: one row per device and window, written as the
//! windows close. Columns, in order:
//!
//! | column | type | |
//! |---|---|---|
//! | `device` | string | the device's MAC (`02:77:00:00:00:0a`), or its pseudonym |
//! | `start`, `end` | timestamp (µs, UTC) | the window, `[start, end)` |
//! | one per feature | float64 | in the order of `FEATURES.md` |
//! | `phase` | string, null | the labelled phase the window overlaps (`extract --labels`) |
//! | `role` | string, null | the device's role in it: `attacker`, `target`, or null |
//!
//! Files are cut by date (the `date=` partition is the UTC date of each
//! row's `start`) and, when recording, by rotation period of packet time:
//! a file holds the windows that closed during its period. Rows are
//! buffered a row group at a time (about 350 bytes a row), in at most
//! [`MAX_OPEN_FILES`] files, so memory is bounded whatever the period.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use polars::prelude::{
    Column, DataFrame, DataType, Float64Chunked, Int64Chunked, IntoColumn, NewChunkedArray, Schema,
    StringChunked, TimeUnit, TimeZone,
};

use super::DatasetError;
use super::layout::{
    PartFile, Retention, SensorName, Table, date_of, enforce_retention, partition_dir,
    remove_stale_temporaries, stamp_of,
};
use super::pseudonym::Pseudonymizer;
use crate::capture::Timestamp;
use crate::device::inventory::{Device, MacText};
use crate::features::{FEATURE_COUNT, FEATURES, Window, WindowSink};
use crate::labels::Labels;

/// Most files open at once (one per date a period's windows fall on);
/// beyond it the oldest date's file is closed.
pub const MAX_OPEN_FILES: usize = 4;

/// How windows are written.
#[derive(Clone, Debug)]
pub struct WindowsSettings {
    /// The dataset's root directory.
    pub root: PathBuf,
    pub sensor: SensorName,
    /// Length of a file's period in seconds of packet time; None: one file
    /// per date for the whole run.
    pub rotate_secs: Option<u64>,
    /// Rows buffered before they are written as a row group (the config
    /// bounds it: `[dataset] row_group_rows`).
    pub row_group_rows: usize,
    /// Applied at start, at each rotation and at the end.
    pub retention: Retention,
    pub pseudonyms: Option<Pseudonymizer>,
    pub labels: Option<Labels>,
}

/// The column types of the table.
pub fn schema() -> Schema {
    let mut fields = vec![
        ("device".into(), DataType::String),
        ("start".into(), timestamp_type()),
        ("end".into(), timestamp_type()),
    ];
    fields.extend(FEATURES.iter().map(|f| (f.name.into(), DataType::Float64)));
    fields.push(("phase".into(), DataType::String));
    fields.push(("role".into(), DataType::String));
    Schema::from_iter(fields)
}

/// Timestamps are microseconds in UTC, which every Parquet reader takes
/// (Spark has no nanoseconds); windows start on whole seconds.
pub fn timestamp_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

pub(super) fn micros(t: Timestamp) -> i64 {
    t.0.div_euclid(1000)
}

pub(super) fn timestamp_column(name: &str, values: Vec<i64>) -> Column {
    Int64Chunked::from_vec(name.into(), values)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

/// Rows waiting to be written, column by column.
#[derive(Default)]
struct Rows {
    device: Vec<String>,
    start: Vec<i64>,
    end: Vec<i64>,
    values: Vec<Vec<f64>>,
    phase: Vec<Option<String>>,
    role: Vec<Option<&'static str>>,
}

impl Rows {
    fn len(&self) -> usize {
        self.device.len()
    }

    fn push(&mut self, device: String, w: &Window, label: Option<(&str, Option<&'static str>)>) {
        if self.values.is_empty() {
            self.values = vec![Vec::new(); FEATURE_COUNT];
        }
        self.device.push(device);
        self.start.push(micros(w.start));
        self.end.push(micros(w.end));
        for (column, v) in self.values.iter_mut().zip(w.values) {
            column.push(v);
        }
        self.phase.push(label.map(|l| l.0.to_string()));
        self.role.push(label.and_then(|l| l.1));
    }

    /// The rows as a frame (one chunk per column); the buffer is emptied.
    fn take_frame(&mut self) -> Result<DataFrame, polars::error::PolarsError> {
        let rows = std::mem::take(self);
        let height = rows.len();
        let mut columns = vec![
            StringChunked::from_iter_values(
                "device".into(),
                rows.device.iter().map(String::as_str),
            )
            .into_column(),
            timestamp_column("start", rows.start),
            timestamp_column("end", rows.end),
        ];
        let mut values = rows.values;
        values.resize(FEATURE_COUNT, Vec::new());
        for (spec, column) in FEATURES.iter().zip(values) {
            columns.push(Float64Chunked::from_vec(spec.name.into(), column).into_column());
        }
        columns.push(
            StringChunked::from_iter_options("phase".into(), rows.phase.into_iter()).into_column(),
        );
        columns.push(
            StringChunked::from_iter_options("role".into(), rows.role.into_iter()).into_column(),
        );
        DataFrame::new(height, columns)
    }
}

/// An open file and the rows waiting for it.
struct Open {
    file: PartFile,
    rows: Rows,
}

/// What a writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowsStats {
    pub rows: u64,
    pub files: u64,
    pub deleted_files: u64,
}

/// A window sink writing the `windows` table.
pub struct ParquetWindows {
    settings: WindowsSettings,
    schema: Schema,
    /// Open files by date.
    open: BTreeMap<String, Open>,
    /// The rotation period of the last tick (packet time / rotation).
    period: Option<i64>,
    stats: WindowsStats,
}

impl ParquetWindows {
    /// A writer into `settings.root` (removing what writers that died left
    /// half-written, then applying retention).
    pub fn new(settings: WindowsSettings) -> Result<ParquetWindows, DatasetError> {
        std::fs::create_dir_all(&settings.root).map_err(DatasetError::io(&settings.root))?;
        remove_stale_temporaries(&settings.root, &settings.sensor)?;
        let mut w = ParquetWindows {
            settings: WindowsSettings {
                row_group_rows: settings.row_group_rows.max(1),
                ..settings
            },
            schema: schema(),
            open: BTreeMap::new(),
            period: None,
            stats: WindowsStats::default(),
        };
        w.retain()?;
        Ok(w)
    }

    pub fn stats(&self) -> WindowsStats {
        self.stats
    }

    fn add(&mut self, w: &Window, device: Option<&Device>) -> Result<(), DatasetError> {
        let date = date_of(w.start);
        if !self.open.contains_key(&date) {
            if self.open.len() >= MAX_OPEN_FILES
                && let Some((_, oldest)) = self.open.pop_first()
            {
                self.close(oldest)?;
            }
            let s = &self.settings;
            let dir = partition_dir(&s.root, Table::Windows, &s.sensor, &date);
            let file = PartFile::create(&dir, Table::Windows, &stamp_of(w.start), &self.schema)?;
            self.open.insert(
                date.clone(),
                Open {
                    file,
                    rows: Rows::default(),
                },
            );
        }
        let s = &self.settings;
        let id = match &s.pseudonyms {
            Some(p) => p.mac(w.device),
            None => MacText(w.device).to_string(),
        };
        let label = s.labels.as_ref().and_then(|l| {
            l.label(w.start, w.end, device)
                .map(|(phase, role)| (phase, role.map(|r| r.as_str())))
        });
        let row_group = self.settings.row_group_rows;
        let Some(open) = self.open.get_mut(&date) else {
            return Ok(());
        };
        open.rows.push(id, w, label);
        self.stats.rows += 1;
        if open.rows.len() >= row_group {
            write_rows(open)?;
        }
        Ok(())
    }

    /// Writes a file's last rows and closes it.
    fn close(&mut self, mut open: Open) -> Result<(), DatasetError> {
        write_rows(&mut open)?;
        open.file.finish()?;
        self.stats.files += 1;
        Ok(())
    }

    /// Closes every open file: they appear complete under their final
    /// names. The first error is returned once all were tried.
    fn close_all(&mut self) -> Result<(), DatasetError> {
        let mut first_error = None;
        while let Some((_, open)) = self.open.pop_first() {
            if let Err(e) = self.close(open) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn retain(&mut self) -> Result<(), DatasetError> {
        let s = &self.settings;
        if s.retention == Retention::default() {
            return Ok(());
        }
        let report = enforce_retention(&s.root, &s.sensor, s.retention, SystemTime::now())?;
        self.stats.deleted_files += report.deleted_files;
        Ok(())
    }
}

fn write_rows(open: &mut Open) -> Result<(), DatasetError> {
    if open.rows.len() == 0 {
        return Ok(());
    }
    let df = open
        .rows
        .take_frame()
        .map_err(|source| DatasetError::Parquet {
            path: open.file.temp_path().to_path_buf(),
            source,
        })?;
    open.file.write(&df)
}

impl WindowSink for ParquetWindows {
    fn window(&mut self, w: &Window, device: Option<&Device>) -> std::io::Result<()> {
        Ok(self.add(w, device)?)
    }

    fn tick(&mut self, now: Timestamp) -> std::io::Result<()> {
        let Some(secs) = self.settings.rotate_secs else {
            return Ok(());
        };
        let nanos = i64::try_from(secs.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(Timestamp::NANOS_PER_SEC);
        let period = now.0.div_euclid(nanos);
        if self.period.is_some_and(|p| p != period) {
            self.close_all()?;
            self.retain()?;
        }
        self.period = Some(period);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.close_all()?;
        self.retain()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use polars::prelude::{
        DataType as Dt, HiveOptions, IntoLazy, LazyFrame, PlRefPath, ScanArgsParquet, col,
    };

    use super::*;
    use crate::features::Feature;

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("spanwatch-windows-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn window(mac_last: u8, start_secs: i64, packets: f64) -> Window {
        let mut values = [0.0; FEATURE_COUNT];
        values[Feature::PacketsOut.index()] = packets;
        Window {
            device: [2, 0x77, 0, 0, 0, mac_last],
            start: Timestamp::from_secs_nanos(start_secs, 0),
            end: Timestamp::from_secs_nanos(start_secs + 2, 0),
            values,
            notes: Default::default(),
        }
    }

    fn settings(root: &Path, rotate_secs: Option<u64>) -> WindowsSettings {
        WindowsSettings {
            root: root.to_path_buf(),
            sensor: SensorName::new("unit").expect("name"),
            rotate_secs,
            row_group_rows: 2,
            retention: Retention::default(),
            pseudonyms: None,
            labels: None,
        }
    }

    /// Complete `.parquet` files and temporaries under `root`, by name.
    fn files(root: &Path) -> (Vec<String>, usize) {
        let mut done = Vec::new();
        let mut temp = 0;
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    stack.push(p);
                } else if name.ends_with(".tmp") {
                    temp += 1;
                } else {
                    let rel = p.strip_prefix(root).expect("under root");
                    done.push(rel.display().to_string());
                }
            }
        }
        done.sort();
        (done, temp)
    }

    /// The whole table as polars reads a Hive-partitioned dataset.
    fn scan(root: &Path) -> DataFrame {
        let glob = format!("{}/windows/**/*.parquet", root.display());
        // Dates stay text: this build of polars has no Date type.
        let args = ScanArgsParquet {
            hive_options: HiveOptions {
                try_parse_dates: false,
                ..HiveOptions::new_enabled()
            },
            glob: true,
            ..ScanArgsParquet::default()
        };
        LazyFrame::scan_parquet(PlRefPath::new(glob), args)
            .expect("scan")
            .sort(["start"], Default::default())
            .collect()
            .expect("collect")
    }

    #[test]
    fn files_rotate_on_packet_time_split_by_date_and_appear_only_complete() {
        let root = tempdir("rot");
        let mut sink = ParquetWindows::new(settings(&root, Some(10))).expect("writer");
        // 1700006396 s = 2023-11-14T23:59:56Z (`date -u -d @1700006396`):
        // windows at :56 and :58 fall on the 14th, :00 and :02 on the 15th.
        let midnight = 1_700_006_400;
        sink.tick(Timestamp::from_secs_nanos(midnight - 4, 0))
            .expect("tick");
        for (i, t) in [-4, -2, 0, 2].into_iter().enumerate() {
            sink.window(&window(1, midnight + t, i as f64), None)
                .expect("window");
        }
        sink.window(&window(2, midnight - 2, 9.0), None)
            .expect("window");
        // Same period (1700006390-1700006399 is one 10 s period; the 15th's
        // windows went to another date's file): nothing complete yet.
        sink.tick(Timestamp::from_secs_nanos(midnight - 1, 0))
            .expect("tick");
        let (done, temp) = files(&root);
        assert!(done.is_empty(), "{done:?}");
        assert_eq!(temp, 2);
        // The next period: both files close and appear under their names.
        sink.tick(Timestamp::from_secs_nanos(midnight + 5, 0))
            .expect("tick");
        let (done, temp) = files(&root);
        assert_eq!(
            done,
            [
                "windows/sensor=unit/date=2023-11-14/windows-20231114T235956Z-0.parquet",
                "windows/sensor=unit/date=2023-11-15/windows-20231115T000000Z-0.parquet",
            ]
        );
        assert_eq!(temp, 0);
        // A late window and a new one; SIGTERM's flush closes their file.
        sink.window(&window(1, midnight + 4, 7.0), None)
            .expect("window");
        sink.flush().expect("flush");
        let (done, temp) = files(&root);
        assert_eq!(done.len(), 3, "{done:?}");
        assert_eq!(temp, 0);
        assert_eq!(sink.stats().rows, 6);
        assert_eq!(sink.stats().files, 3);

        let df = scan(&root);
        assert_eq!(df.height(), 6);
        let packets = df
            .column("packets_out")
            .expect("column")
            .f64()
            .expect("f64");
        let packets: Vec<Option<f64>> = (0..packets.len()).map(|i| packets.get(i)).collect();
        // Sorted by start: -4 (0), -2 (1 and 9), 0 (2), 2 (3), 4 (7).
        let mut middle = packets[1..3].to_vec();
        middle.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
        assert_eq!(packets[0], Some(0.0));
        assert_eq!(middle, [Some(1.0), Some(9.0)]);
        assert_eq!(packets[3..], [Some(2.0), Some(3.0), Some(7.0)]);
        let dates = df
            .lazy()
            .select([col("date").cast(Dt::String), col("sensor")])
            .collect()
            .expect("select");
        let dates = dates.column("date").expect("date").str().expect("str");
        let dates: Vec<Option<&str>> = (0..dates.len()).map(|i| dates.get(i)).collect();
        assert_eq!(
            dates,
            [
                Some("2023-11-14"),
                Some("2023-11-14"),
                Some("2023-11-14"),
                Some("2023-11-15"),
                Some("2023-11-15"),
                Some("2023-11-15"),
            ]
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn without_rotation_a_run_is_one_file_per_date_and_a_file_is_never_overwritten() {
        let root = tempdir("once");
        for run in 0..2 {
            let mut sink = ParquetWindows::new(settings(&root, None)).expect("writer");
            for t in 0..5 {
                sink.tick(Timestamp::from_secs_nanos(1_700_000_000 + 100 * t, 0))
                    .expect("tick");
                sink.window(&window(1, 1_700_000_000 + 100 * t, run as f64), None)
                    .expect("window");
            }
            sink.flush().expect("flush");
        }
        let (done, _) = files(&root);
        assert_eq!(
            done,
            [
                "windows/sensor=unit/date=2023-11-14/windows-20231114T221320Z-0.parquet",
                "windows/sensor=unit/date=2023-11-14/windows-20231114T221320Z-1.parquet",
            ]
        );
        assert_eq!(scan(&root).height(), 10);
        let _ = std::fs::remove_dir_all(&root);
    }
}
