//! Parquet datasets to train on (built with the `train` cargo feature, which
//! brings polars): the feature windows and the device inventory, written by
//! `spanwatch extract` from captures and by `spanwatch live --dataset-dir`
//! from live traffic.
//!
//! Each table is a directory of Hive partitions, so that the files of many
//! runs and many sensors read as one table (polars `scan_parquet` with
//! `hive_partitioning`, DuckDB `read_parquet(..., hive_partitioning = true)`,
//! Spark `read.parquet(DIR/windows)`):
//!
//! ```text
//! DIR/windows/sensor=<name>/date=YYYY-MM-DD/windows-<first start>-<n>.parquet
//! DIR/devices/sensor=<name>/date=YYYY-MM-DD/devices-<last seen>-<n>.parquet
//! ```
//!
//! A file is written under a hidden temporary name and renamed into place
//! once complete: a reader never sees half a file. The columns, the labels
//! and the pseudonyms are described in `datasets/README.md`; [`windows`]
//! and [`devices`] define them.
//!
//! Datasets hold no password or payload: windows are counts, and the
//! inventory holds addresses and names, which a key replaces by keyed
//! BLAKE3 pseudonyms ([`pseudonym`]).

pub mod devices;
pub mod layout;
pub mod pseudonym;
pub mod read;
pub mod windows;

use std::path::PathBuf;

pub use devices::write_devices;
pub use layout::{Retention, SensorName};
pub use pseudonym::Pseudonymizer;
pub use read::{ReadError, read_windows};
pub use windows::{ParquetWindows, WindowsSettings};

/// Why a dataset could not be written, or its inputs read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot write Parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: polars::error::PolarsError,
    },
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelsError),
    #[error("pseudonymisation key file {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("sensor name {name:?}: {reason}")]
    SensorName { name: String, reason: &'static str },
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DatasetError {
        let path = path.into();
        move |source| DatasetError::Io { path, source }
    }
}

impl From<DatasetError> for std::io::Error {
    fn from(e: DatasetError) -> Self {
        match e {
            DatasetError::Io { path, source } => {
                std::io::Error::new(source.kind(), format!("{}: {source}", path.display()))
            }
            other => std::io::Error::other(other.to_string()),
        }
    }
}
