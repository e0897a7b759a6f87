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
//! buffered up to a row group at a time, so memory is bounded whatever the
//! period.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use polars::prelude::{
    Column, DataFrame, DataType, Float64Chunked, Int64Chunked, IntoColumn, NewChunkedArray, Schema,
    StringChunked,
    TimeUnit, TimeZone,
};

use super::labels::Labels;
use super::layout::{
    PartFile, Retention, SensorName, Table, date_of, enforce_retention, partition_dir,
    remove_stale_temporaries, stamp_of,
};
use super::pseudonym::Pseudonymizer;
use super::DatasetError;
use crate::capture::Timestamp;
use crate::device::inventory::{Device, MacText};
use crate::features::{FEATURE_COUNT, FEATURES, Window, WindowSink};

/// Most files open at once (one per date a period's windows fall on);
/// beyond it the oldest date's file is closed.
pub const MAX_OPEN_FILES: usize = 4;
/// Largest row group, in rows.
pub const MAX_ROW_GROUP_ROWS: usize = 1 << 20;

/// How windows are written.
#[derive(Clone, Debug)]
pub struct WindowsSettings {
    /// The dataset's root directory.
    pub root: PathBuf,
    pub sensor: SensorName,
    /// Length of a file's period in seconds of packet time; None: one file
    /// per date for the whole run.
    pub rotate_secs: Option<u64>,
    /// Rows buffered before they are written as a row group.
    pub row_group_rows: usize,
    /// Applied when a file closes.
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
            StringChunked::from_iter_values("device".into(), rows.device.iter().map(String::as_str))
                .into_column(),
            timestamp_column("start", rows.start),
            timestamp_column("end", rows.end),
        ];
        let mut values = rows.values;
        values.resize(FEATURE_COUNT, Vec::new());
        for (spec, column) in FEATURES.iter().zip(values) {
            columns.push(Float64Chunked::from_vec(spec.name.into(), column).into_column());
        }
        columns.push(StringChunked::from_iter_options("phase".into(), rows.phase.into_iter()).into_column());
        columns.push(StringChunked::from_iter_options("role".into(), rows.role.into_iter()).into_column());
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
                row_group_rows: settings.row_group_rows.clamp(1, MAX_ROW_GROUP_ROWS),
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

    pub fn root(&self) -> &Path {
        &self.settings.root
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
