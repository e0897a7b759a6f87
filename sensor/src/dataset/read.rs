//! Reading the windows table back, for `spanwatch train`: a Parquet file, a
//! table directory (`DIR/windows`, every partition under it) or a dataset
//! root (`DIR`, whose `windows` table is read). Files under a hidden name
//! (a writer's temporaries) are skipped.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::{ParquetReader, SerReader};

use crate::capture::Timestamp;
use crate::device::inventory::parse_mac;
use crate::features::{FEATURE_COUNT, FEATURES, Window};

use super::layout::Table;

/// A window read back, and whether the dataset's labels put it in an attack
/// phase (`phase` not null).
pub struct ReadWindow {
    pub window: Window,
    pub attack: bool,
}

/// Why a dataset could not be read: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub problem: String,
}

fn error(path: &Path, problem: impl Into<String>) -> ReadError {
    ReadError {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Every window of `path` (a file, a table directory or a dataset root), in
/// the order of the files' names.
pub fn read_windows(path: &Path) -> Result<Vec<ReadWindow>, ReadError> {
    let mut files = Vec::new();
    if path.is_dir() {
        let table = path.join(Table::Windows.name());
        let dir = if table.is_dir() {
            table
        } else {
            path.to_path_buf()
        };
        parquet_files(&dir, &mut files)?;
        if files.is_empty() {
            return Err(error(path, "no Parquet file in this directory"));
        }
    } else {
        files.push(path.to_path_buf());
    }
    files.sort();
    let mut out = Vec::new();
    for file in &files {
        read_file(file, &mut out)?;
    }
    Ok(out)
}

fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| error(dir, e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| error(dir, e.to_string()))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            parquet_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, out: &mut Vec<ReadWindow>) -> Result<(), ReadError> {
    let file = File::open(path).map_err(|e| error(path, e.to_string()))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| error(path, format!("not a readable Parquet file: {e}")))?;
    let bad = |problem: String| error(path, problem);
    let text = |name: &str| {
        df.column(name)
            .and_then(|c| c.str().cloned())
            .map_err(|_| bad(format!("no text column {name:?}: not a windows table")))
    };
    let time = |name: &str| {
        df.column(name)
            .and_then(|c| c.datetime().map(|d| d.physical().clone()))
            .map_err(|_| bad(format!("no timestamp column {name:?}: not a windows table")))
    };
    let devices = text("device")?;
    let phases = text("phase")?;
    let (starts, ends) = (time("start")?, time("end")?);
    let features = FEATURES
        .iter()
        .map(|f| {
            df.column(f.name)
                .and_then(|c| c.f64().cloned())
                .map_err(|_| {
                    bad(format!(
                        "no number column {:?}: a table of another spanwatch version?",
                        f.name
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..df.height() {
        let at = |what: &str| bad(format!("row {}: no {what}", row + 1));
        let device = devices.get(row).ok_or_else(|| at("device"))?;
        let micros = |c: &polars::prelude::Int64Chunked, what: &str| {
            c.get(row)
                .map(|us| Timestamp(us * 1000))
                .ok_or_else(|| at(what))
        };
        let mut values = [0.0; FEATURE_COUNT];
        for ((x, column), spec) in values.iter_mut().zip(&features).zip(FEATURES) {
            *x = column.get(row).ok_or_else(|| at(spec.name))?;
        }
        out.push(ReadWindow {
            window: Window {
                device: device_key(device),
                start: micros(&starts, "start")?,
                end: micros(&ends, "end")?,
                values,
                notes: Default::default(),
            },
            attack: phases.get(row).is_some(),
        });
    }
    Ok(())
}

/// The device of a row: its MAC, or for a pseudonymised dataset a
/// locally administered address derived from the pseudonym (training only
/// tells devices apart).
fn device_key(text: &str) -> [u8; 6] {
    parse_mac(text).unwrap_or_else(|| {
        let hash = blake3::hash(text.as_bytes());
        let mut mac = [0; 6];
        mac.copy_from_slice(&hash.as_bytes()[..6]);
        mac[0] = (mac[0] | 0x02) & !0x01;
        mac
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_becomes_a_stable_local_unicast_address() {
        let a = device_key("p-3f9a1c0e77d2");
        assert_eq!(a, device_key("p-3f9a1c0e77d2"));
        assert_ne!(a, device_key("p-3f9a1c0e77d3"));
        assert_eq!(a[0] & 0x03, 0x02, "locally administered, unicast");
        assert_eq!(device_key("02:77:00:00:00:0a"), [0x02, 0x77, 0, 0, 0, 0x0a]);
    }

    #[test]
    fn a_file_that_is_not_parquet_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("spanwatch-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("windows-x.parquet");
        std::fs::write(&path, b"PAR1 but not really").expect("write");
        let err = read_windows(&path).err().expect("not Parquet");
        assert!(err.to_string().contains("windows-x.parquet"), "{err}");
        let err = read_windows(&dir.join("nothing")).err().expect("missing");
        assert!(err.to_string().contains("nothing"), "{err}");
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).expect("dir");
        let err = read_windows(&empty).err().expect("empty");
        assert!(err.to_string().contains("no Parquet file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
