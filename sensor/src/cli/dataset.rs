//! The dataset commands and flags: `spanwatch extract` and `live
//! --dataset-dir`. A build without the `train` feature has them too, and
//! says it cannot write Parquet.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::error::{CliError, exit};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::units::{parse_bytes, parse_secs};

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Capture files (pcap or pcapng; several are merged in time order).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Dataset directory: the tables go to DIR/windows/ and DIR/devices/, partitioned by sensor and date.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The lab's labels.csv: each window gets the phase it overlaps and its device's role in it (attacker, target).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Replace every MAC, IP and name by a keyed BLAKE3 pseudonym; the key is derived from this file (at least 16 bytes) [config: dataset.pseudonymize_key_file].
    #[arg(long, value_name = "KEYFILE")]
    pub pseudonymize_key: Option<PathBuf>,
    /// Value of the sensor= partition [config: dataset.sensor_name; default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    /// Also write every window as JSON Lines to FILE [config: devices.windows_file].
    #[arg(long, value_name = "FILE")]
    pub windows: Option<PathBuf>,
    /// Read the settings (window length, zones, bounds, [dataset]) from this TOML file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The recording flags of `live`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Record the feature windows as Parquet under DIR (a file per --rotate period; the inventory at exit) [config: dataset.dir].
    #[arg(long, value_name = "DIR")]
    pub dataset_dir: Option<PathBuf>,
    /// Period of one recorded file, e.g. 1h, 10m, 5s [config: dataset.rotate_secs, default 1h].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_secs)]
    pub rotate: Option<u64>,
    /// Delete recorded files older than this, e.g. 30d [config: dataset.retain_secs].
    #[arg(long, value_name = "DURATION", value_parser = parse_secs)]
    pub retain: Option<u64>,
    /// Delete the oldest recorded files while this sensor's files are larger than this, e.g. 10G [config: dataset.retain_bytes].
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    pub retain_bytes: Option<usize>,
    /// Pseudonymise MACs, IPs and names with a key derived from this file [config: dataset.pseudonymize_key_file].
    #[arg(long, value_name = "KEYFILE")]
    pub pseudonymize_key: Option<PathBuf>,
    /// Value of the sensor= partition [config: dataset.sensor_name; default: the host name].
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
}

fn parse_positive_secs(s: &str) -> Result<u64, String> {
    match parse_secs(s)? {
        0 => Err("a rotation period must be at least 1 s".into()),
        n => Ok(n),
    }
}

impl RecordArgs {
    /// Override the `[dataset]` settings whose flags were given.
    pub fn apply(&self, cfg: &mut Config) {
        let d = &mut cfg.dataset;
        if let Some(dir) = &self.dataset_dir {
            d.dir = Some(dir.clone());
        }
        if let Some(secs) = self.rotate {
            d.rotate_secs = secs;
        }
        if let Some(secs) = self.retain {
            d.retain_secs = Some(secs);
        }
        if let Some(bytes) = self.retain_bytes {
            d.retain_bytes = Some(bytes as u64);
        }
        if let Some(key) = &self.pseudonymize_key {
            d.pseudonymize_key_file = Some(key.clone());
        }
        if let Some(name) = &self.sensor_name {
            d.sensor_name = Some(name.clone());
        }
    }
}

/// What `live` records, to finish after the capture.
#[cfg(feature = "train")]
pub use train::Recording;

/// What `live` records: nothing in a build without Parquet.
#[cfg(not(feature = "train"))]
pub enum Recording {}

#[cfg(not(feature = "train"))]
impl Recording {
    pub fn finish(self, _pipeline: &mut Pipeline) -> Result<String, CliError> {
        match self {}
    }
}

/// The error of a build without Parquet.
#[cfg(not(feature = "train"))]
fn no_parquet(what: &str) -> CliError {
    CliError {
        code: exit::USAGE,
        message: format!(
            "{what}: this spanwatch was built without Parquet datasets (no `train` cargo feature, an edge build); build it with the default features to write datasets"
        ),
    }
}

/// `live`: add the dataset writer `cfg.dataset.dir` asks for (with devices on).
pub fn record(cfg: &Config, pipeline: &mut Pipeline) -> Result<Option<Recording>, CliError> {
    let Some(dir) = &cfg.dataset.dir else {
        return Ok(None);
    };
    if !cfg.devices.enabled {
        return Err(CliError {
            code: exit::USAGE,
            message: "--dataset-dir records feature windows: it needs the devices on (drop --no-devices, or set enabled = true in [devices])".into(),
        });
    }
    #[cfg(feature = "train")]
    {
        train::record(cfg, dir, pipeline).map(Some)
    }
    #[cfg(not(feature = "train"))]
    {
        let _ = (dir, pipeline);
        Err(no_parquet("--dataset-dir"))
    }
}

/// `spanwatch extract`.
pub fn extract(args: ExtractArgs) -> Result<ExitCode, CliError> {
    #[cfg(feature = "train")]
    {
        train::extract(args)
    }
    #[cfg(not(feature = "train"))]
    {
        let _ = args;
        Err(no_parquet("spanwatch extract"))
    }
}

#[cfg(feature = "train")]
mod train {
    use std::path::Path;
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use super::super::error::{CliError, config_error, exit};
    use super::ExtractArgs;
    use crate::capture::MergedSource;
    use crate::config::Config;
    use crate::dataset::{
        DatasetError, ParquetWindows, Pseudonymizer, Retention, SensorName, WindowsSettings,
        write_devices,
    };
    use crate::features::jsonl::JsonlWindows;
    use crate::labels::Labels;
    use crate::pipeline::{self, Pipeline};

    fn dataset_error(e: DatasetError) -> CliError {
        let code = match e {
            DatasetError::Labels(_)
            | DatasetError::Key { .. }
            | DatasetError::SensorName { .. } => exit::CONFIG,
            DatasetError::Io { .. } | DatasetError::Parquet { .. } => exit::FAILURE,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }

    fn sensor(cfg: &Config) -> Result<SensorName, CliError> {
        match &cfg.dataset.sensor_name {
            Some(name) => SensorName::new(name).map_err(dataset_error),
            None => Ok(SensorName::from_host()),
        }
    }

    fn pseudonyms(cfg: &Config) -> Result<Option<Pseudonymizer>, CliError> {
        cfg.dataset
            .pseudonymize_key_file
            .as_deref()
            .map(Pseudonymizer::from_key_file)
            .transpose()
            .map_err(dataset_error)
    }

    /// `live --dataset-dir`: the writer, and what the inventory file needs.
    pub struct Recording {
        root: std::path::PathBuf,
        sensor: SensorName,
        pseudonyms: Option<Pseudonymizer>,
    }

    pub fn record(
        cfg: &Config,
        dir: &Path,
        pipeline: &mut Pipeline,
    ) -> Result<Recording, CliError> {
        let d = &cfg.dataset;
        let settings = WindowsSettings {
            root: dir.to_path_buf(),
            sensor: sensor(cfg)?,
            rotate_secs: Some(d.rotate_secs),
            row_group_rows: d.row_group_rows,
            retention: Retention {
                max_age: d.retain_secs.map(Duration::from_secs),
                max_bytes: d.retain_bytes,
            },
            pseudonyms: pseudonyms(cfg)?,
            labels: None,
        };
        let recording = Recording {
            root: settings.root.clone(),
            sensor: settings.sensor.clone(),
            pseudonyms: settings.pseudonyms.clone(),
        };
        let writer = ParquetWindows::new(settings).map_err(dataset_error)?;
        pipeline.add_window_sink(Box::new(writer));
        Ok(recording)
    }

    impl Recording {
        /// After `Pipeline::finish`: the inventory file; a line for stderr.
        pub fn finish(self, pipeline: &mut Pipeline) -> Result<String, CliError> {
            let Some(devices) = pipeline.devices() else {
                return Ok(String::new());
            };
            let inventory = devices.extractor.inventory();
            let file = write_devices(
                &self.root,
                &self.sensor,
                inventory,
                self.pseudonyms.as_ref(),
            )
            .map_err(dataset_error)?;
            Ok(match file {
                Some(path) => format!(
                    "dataset: feature windows under {}, the inventory in {}",
                    self.root.display(),
                    path.display()
                ),
                None => format!(
                    "dataset: no device seen, nothing written to {}",
                    self.root.display()
                ),
            })
        }
    }

    pub fn extract(args: ExtractArgs) -> Result<ExitCode, CliError> {
        let started = Instant::now();
        let mut cfg = match &args.config {
            Some(path) => Config::load(path).map_err(config_error)?,
            None => Config::default(),
        };
        cfg.rules.enabled = false;
        cfg.devices.enabled = true;
        if let Some(key) = &args.pseudonymize_key {
            cfg.dataset.pseudonymize_key_file = Some(key.clone());
        }
        if let Some(name) = &args.sensor_name {
            cfg.dataset.sensor_name = Some(name.clone());
        }
        if let Some(path) = &args.windows {
            cfg.devices.windows_file = Some(path.clone());
        }
        let labels = args
            .labels
            .as_deref()
            .map(Labels::load)
            .transpose()
            .map_err(|e| dataset_error(e.into()))?;
        let sensor = sensor(&cfg)?;
        let pseudonyms = pseudonyms(&cfg)?;
        let settings = WindowsSettings {
            root: args.out.clone(),
            sensor: sensor.clone(),
            rotate_secs: None,
            row_group_rows: cfg.dataset.row_group_rows,
            retention: Retention::default(),
            pseudonyms: pseudonyms.clone(),
            labels,
        };
        let mut source = MergedSource::open(&args.files)?;
        let writer = ParquetWindows::new(settings).map_err(dataset_error)?;
        let Some(extractor) = cfg.devices.extractor() else {
            return Ok(ExitCode::from(exit::OK));
        };
        let mut pipeline = Pipeline::new(cfg.pipeline_config());
        pipeline.profile_devices(extractor);
        if let Some(path) = &cfg.devices.windows_file {
            let sink = JsonlWindows::create(path).map_err(|e| CliError {
                code: exit::FAILURE,
                message: format!("cannot create the windows file {}: {e}", path.display()),
            })?;
            pipeline.add_window_sink(Box::new(sink));
        }
        pipeline.add_window_sink(Box::new(writer));
        pipeline::run_source(&mut source, &mut pipeline, &mut |_, _| {})?;
        for warning in source.take_warnings() {
            eprintln!("spanwatch: warning: {warning}");
        }
        pipeline.finish();
        if let Some(e) = pipeline.window_sink_error() {
            return Err(CliError {
                code: exit::FAILURE,
                message: format!("cannot write the feature windows: {e}"),
            });
        }
        let Some(devices) = pipeline.devices() else {
            return Ok(ExitCode::from(exit::OK));
        };
        let windows = devices.extractor.stats().windows;
        let inventory = devices.extractor.inventory();
        let device_file = write_devices(&args.out, &sensor, inventory, pseudonyms.as_ref())
            .map_err(dataset_error)?;
        let secs = started.elapsed().as_secs_f64();
        let message = format!(
            "extract: {windows} windows of {} devices, sensor {}, in {secs:.2} s ({:.0} windows/s) -> {}/windows/, inventory {}",
            inventory.len(),
            sensor.as_str(),
            windows as f64 / secs.max(1e-9),
            args.out.display(),
            device_file.map_or_else(|| "empty".to_string(), |p| p.display().to_string()),
        );
        eprintln!("{message}");
        Ok(ExitCode::from(exit::OK))
    }
}
