//! Where dataset files go and how they appear: Hive partitions by sensor and
//! date, files written under a hidden temporary name and renamed into place
//! when complete, and retention (oldest files first) by age and total size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{DataFrame, ParquetCompression, ParquetWriter, Schema};

use super::DatasetError;
use crate::capture::Timestamp;
use crate::config::{MAX_SENSOR_NAME_BYTES, check_sensor_name};

/// Sensor name when the host name is unusable.
pub const FALLBACK_SENSOR_NAME: &str = "sensor";
/// Files with the same partition and stamp before a name is refused.
pub const MAX_SAME_STAMP: u32 = 10_000;
/// Dataset files retention looks at, per sensor (more are left alone).
pub const MAX_RETENTION_FILES: usize = 1_000_000;
/// Suffix of a file being written.
const TEMP_SUFFIX: &str = ".tmp";

/// A table of the dataset: a directory of partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Windows,
    Devices,
}

impl Table {
    pub const ALL: [Table; 2] = [Table::Windows, Table::Devices];

    /// Its directory under the dataset root, and its files' name prefix.
    pub fn name(self) -> &'static str {
        match self {
            Table::Windows => "windows",
            Table::Devices => "devices",
        }
    }
}

/// The value of the `sensor=` partition (checked as
/// [`check_sensor_name`] says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorName(String);

impl SensorName {
    pub fn new(name: &str) -> Result<SensorName, DatasetError> {
        check_sensor_name(name).map_err(|reason| DatasetError::SensorName {
            name: name.to_string(),
            reason,
        })?;
        Ok(SensorName(name.to_string()))
    }

    /// The host name, with characters a sensor name cannot hold made `-`.
    pub fn from_host() -> SensorName {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let cleaned: String = host
            .trim()
            .trim_start_matches('.')
            .chars()
            .take(MAX_SENSOR_NAME_BYTES)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        SensorName::new(&cleaned).unwrap_or_else(|_| SensorName(FALLBACK_SENSOR_NAME.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `YYYY-MM-DD` (UTC) of a time.
pub fn date_of(t: Timestamp) -> String {
    // RFC 3339 text starts with the date.
    t.to_string()[..10].to_string()
}

/// `YYYYMMDDTHHMMSSZ` (UTC) of a time, for file names.
pub fn stamp_of(t: Timestamp) -> String {
    t.to_string()[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .chain(std::iter::once('Z'))
        .collect()
}

/// The directory of one partition.
pub fn partition_dir(root: &Path, table: Table, sensor: &SensorName, date: &str) -> PathBuf {
    root.join(table.name())
        .join(format!("sensor={}", sensor.as_str()))
        .join(format!("date={date}"))
}

/// A `Write` the Parquet writer owns while this side keeps the file, to
/// flush and sync it once the footer is written.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<BufWriter<File>>>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock()?.flush()
    }
}

impl SharedFile {
    fn lock(&self) -> std::io::Result<std::sync::MutexGuard<'_, BufWriter<File>>> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("a Parquet writer panicked"))
    }
}

/// A Parquet file being written: rows go in as row groups; `finish` writes
/// the footer, syncs, and renames it into place.
pub struct PartFile {
    temp: PathBuf,
    path: PathBuf,
    file: SharedFile,
    writer: BatchedWriter<SharedFile>,
}

impl PartFile {
    /// A new file `<table>-<stamp>-<n>.parquet` in `dir` (created), with the
    /// lowest `n` not taken: a file is never overwritten.
    pub fn create(
        dir: &Path,
        table: Table,
        stamp: &str,
        schema: &Schema,
    ) -> Result<PartFile, DatasetError> {
        std::fs::create_dir_all(dir).map_err(DatasetError::io(dir))?;
        let pid = std::process::id();
        for n in 0..MAX_SAME_STAMP {
            let name = format!("{}-{stamp}-{n}.parquet", table.name());
            let path = dir.join(&name);
            let temp = dir.join(format!(".{name}.{pid}{TEMP_SUFFIX}"));
            if path.exists() || temp.exists() {
                continue;
            }
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(DatasetError::io(&temp))?;
            let file = SharedFile(Arc::new(Mutex::new(BufWriter::new(file))));
            let writer = ParquetWriter::new(file.clone())
                .with_compression(ParquetCompression::Zstd(None))
                .set_parallel(false)
                .batched(schema)
                .map_err(|source| DatasetError::Parquet {
                    path: temp.clone(),
                    source,
                })?;
            return Ok(PartFile {
                temp,
                path,
                file,
                writer,
            });
        }
        Err(DatasetError::Io {
            path: dir.join(format!("{}-{stamp}-*.parquet", table.name())),
            source: std::io::Error::other(format!("{MAX_SAME_STAMP} files already")),
        })
    }

    /// Appends `df` (one chunk per column) as a row group.
    pub fn write(&mut self, df: &DataFrame) -> Result<(), DatasetError> {
        self.writer
            .write_batch(df)
            .map_err(|source| DatasetError::Parquet {
                path: self.temp.clone(),
                source,
            })
    }

    /// Where the file is while it is written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Footer, flush, fsync, rename into place; the final path.
    pub fn finish(self) -> Result<PathBuf, DatasetError> {
        let PartFile {
            temp,
            path,
            file,
            writer,
        } = self;
        writer.finish().map_err(|source| DatasetError::Parquet {
            path: temp.clone(),
            source,
        })?;
        drop(writer);
        {
            let mut out = file.lock().map_err(DatasetError::io(&temp))?;
            out.flush().map_err(DatasetError::io(&temp))?;
            out.get_ref().sync_all().map_err(DatasetError::io(&temp))?;
        }
        std::fs::rename(&temp, &path).map_err(DatasetError::io(&path))?;
        if let Some(dir) = path.parent() {
            // The rename itself survives a crash once the directory is synced.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(DatasetError::io(dir))?;
        }
        Ok(path)
    }

    /// Give up: the temporary file is removed.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// How long and how much of a sensor's dataset is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Files older than this (by modification time) are deleted.
    pub max_age: Option<Duration>,
    /// The oldest files are deleted while the sensor's files together are
    /// larger than this.
    pub max_bytes: Option<u64>,
}

/// What one retention pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub kept_files: u64,
    pub kept_bytes: u64,
    pub deleted_files: u64,
    pub deleted_bytes: u64,
}

/// One dataset file of a sensor.
struct Found {
    path: PathBuf,
    modified: SystemTime,
    bytes: u64,
}

/// The complete `.parquet` files of `sensor` in every table of `root`.
fn sensor_files(root: &Path, sensor: &SensorName) -> Result<Vec<Found>, DatasetError> {
    let mut out = Vec::new();
    for table in Table::ALL {
        let dir = root
            .join(table.name())
            .join(format!("sensor={}", sensor.as_str()));
        let dates = match std::fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DatasetError::io(&dir)(e)),
        };
        for date in dates {
            let date = date.map_err(DatasetError::io(&dir))?.path();
            if !date.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&date).map_err(DatasetError::io(&date))? {
                let entry = entry.map_err(DatasetError::io(&date))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || !name.ends_with(".parquet") {
                    continue;
                }
                let meta = entry.metadata().map_err(DatasetError::io(entry.path()))?;
                if out.len() < MAX_RETENTION_FILES {
                    out.push(Found {
                        path: entry.path(),
                        modified: meta.modified().map_err(DatasetError::io(entry.path()))?,
                        bytes: meta.len(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Deletes the sensor's oldest files until none is older than
/// `retention.max_age` (before `now`) and the rest fit in
/// `retention.max_bytes`; empty date directories go too. Other sensors'
/// files and files being written are never touched.
pub fn enforce_retention(
    root: &Path,
    sensor: &SensorName,
    retention: Retention,
    now: SystemTime,
) -> Result<RetentionReport, DatasetError> {
    let mut files = sensor_files(root, sensor)?;
    files.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
    let mut total: u64 = files.iter().map(|f| f.bytes).sum();
    let mut report = RetentionReport::default();
    for f in files {
        let too_old = retention
            .max_age
            .is_some_and(|age| now.duration_since(f.modified).is_ok_and(|a| a > age));
        let too_big = retention.max_bytes.is_some_and(|max| total > max);
        if too_old || too_big {
            std::fs::remove_file(&f.path).map_err(DatasetError::io(&f.path))?;
            total -= f.bytes;
            report.deleted_files += 1;
            report.deleted_bytes += f.bytes;
            if let Some(dir) = f.path.parent() {
                // Fails, as it should, while the directory holds anything.
                let _ = std::fs::remove_dir(dir);
            }
        } else {
            report.kept_files += 1;
            report.kept_bytes += f.bytes;
        }
    }
    Ok(report)
}

/// Removes the temporary files of `sensor` left by writers that died
/// (their process is gone); returns how many.
pub fn remove_stale_temporaries(root: &Path, sensor: &SensorName) -> Result<u64, DatasetError> {
    let mut removed = 0;
    for table in Table::ALL {
        let dir = root
            .join(table.name())
            .join(format!("sensor={}", sensor.as_str()));
        let Ok(dates) = std::fs::read_dir(&dir) else {
            continue;
        };
        for date in dates.flatten() {
            let Ok(entries) = std::fs::read_dir(date.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = temp_owner(&name) else {
                    continue;
                };
                if !Path::new("/proc").join(pid.to_string()).exists() {
                    std::fs::remove_file(entry.path()).map_err(DatasetError::io(entry.path()))?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

/// The PID in a temporary file's name `.<file>.parquet.<pid>.tmp`.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (file, pid) = rest.rsplit_once('.')?;
    file.ends_with(".parquet").then_some(())?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("spanwatch-layout-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn sensor_names_are_checked() {
        assert!(SensorName::new("edge-01.lab_a").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "x=y", "*", &"n".repeat(65)] {
            assert!(SensorName::new(bad).is_err(), "{bad:?} accepted");
        }
        let e = SensorName::new("a/b").unwrap_err().to_string();
        assert!(e.contains("\"a/b\"") && e.contains("letters"), "{e}");
        assert!(SensorName::new(SensorName::from_host().as_str()).is_ok());
    }

    #[test]
    fn dates_and_stamps_are_utc() {
        // `date -u -d @1700000000` = Tue Nov 14 22:13:20 UTC 2023.
        let t = Timestamp::from_secs_nanos(1_700_000_000, 5);
        assert_eq!(date_of(t), "2023-11-14");
        assert_eq!(stamp_of(t), "20231114T221320Z");
        let sensor = SensorName::new("s1").expect("name");
        assert_eq!(
            partition_dir(Path::new("/d"), Table::Windows, &sensor, "2023-11-14"),
            Path::new("/d/windows/sensor=s1/date=2023-11-14")
        );
    }

    fn put(path: &Path, bytes: usize, age_secs: u64, now: SystemTime) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, vec![0u8; bytes]).expect("write");
        let f = File::options().write(true).open(path).expect("open");
        f.set_modified(now - Duration::from_secs(age_secs))
            .expect("mtime");
    }

    #[test]
    fn retention_deletes_the_oldest_files_of_its_own_sensor_first() {
        let root = tempdir("ret");
        let now = SystemTime::now();
        let me = SensorName::new("me").expect("name");
        let dir = |date: &str| partition_dir(&root, Table::Windows, &me, date);
        let a = dir("2024-01-01").join("windows-a-0.parquet");
        let b = dir("2024-01-02").join("windows-b-0.parquet");
        let c = dir("2024-01-03").join("windows-c-0.parquet");
        let d = partition_dir(&root, Table::Devices, &me, "2024-01-03").join("devices-d-0.parquet");
        let other = root.join("windows/sensor=other/date=2024-01-01/windows-a-0.parquet");
        let temp = dir("2024-01-03").join(".windows-e-0.parquet.1.tmp");
        put(&a, 100, 5000, now);
        put(&b, 100, 4000, now);
        put(&c, 100, 100, now);
        put(&d, 50, 50, now);
        put(&other, 100, 9000, now);
        put(&temp, 100, 9000, now);
        // Age: a (5000 s) goes with a limit of 4500 s; size: then b, to fit 160.
        let report = enforce_retention(
            &root,
            &me,
            Retention {
                max_age: Some(Duration::from_secs(4500)),
                max_bytes: Some(160),
            },
            now,
        )
        .expect("retention");
        assert_eq!(
            report,
            RetentionReport {
                kept_files: 2,
                kept_bytes: 150,
                deleted_files: 2,
                deleted_bytes: 200,
            }
        );
        assert!(!a.exists() && !b.exists() && c.exists() && d.exists());
        assert!(!dir("2024-01-01").exists(), "empty date directory left");
        assert!(other.exists() && temp.exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_live_ones_kept() {
        let root = tempdir("tmp");
        let me = SensorName::new("me").expect("name");
        let dir = partition_dir(&root, Table::Windows, &me, "2024-01-01");
        std::fs::create_dir_all(&dir).expect("dir");
        // PID 4194305 is above Linux's largest (pid_max is at most 2^22).
        let dead = dir.join(".windows-x-0.parquet.4194305.tmp");
        let alive = dir.join(format!(".windows-x-1.parquet.{}.tmp", std::process::id()));
        std::fs::write(&dead, b"partial").expect("write");
        std::fs::write(&alive, b"partial").expect("write");
        assert_eq!(remove_stale_temporaries(&root, &me).expect("clean"), 1);
        assert!(!dead.exists() && alive.exists());
        assert_eq!(temp_owner("windows-x.parquet"), None);
        let _ = std::fs::remove_dir_all(&root);
    }
}
