//! Training the model from normal traffic: windows from captures (cut by the
//! same extractor the sensor runs) or from recorded windows, the labelled
//! attack phases left out, a model fitted ([`fit`]) and written with its card
//! ([`card`]) and plots ([`plots`]).

pub mod card;
pub mod fit;
pub mod plots;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::capture::{CaptureError, MergedSource};
use crate::config::Config;
use crate::device::inventory::{Device, parse_mac};
use crate::features::{FEATURE_COUNT, FEATURES, Window, WindowSink};
use crate::labels::{Labels, LabelsError};
use crate::pipeline::{self, Pipeline};
use fit::Labelled;

/// Keeps every window in memory (training reads them all).
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<Window>>>);

impl WindowSink for Collect {
    fn window(&mut self, w: &Window, _device: Option<&Device>) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("window collector poisoned"))?
            .push(w.clone());
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why training inputs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Labels(#[from] LabelsError),
    #[error(transparent)]
    Dataset(#[from] crate::dataset::ReadError),
    #[error("{}, line {line}: {problem}", path.display())]
    Windows {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The windows of one capture, cut as `cfg` says (devices on, rules off).
pub fn windows_of_capture(path: &Path, cfg: &Config) -> Result<Vec<Window>, InputError> {
    let mut cfg = cfg.clone();
    cfg.rules.enabled = false;
    cfg.devices.enabled = true;
    let collect = Collect::default();
    let mut source = MergedSource::open(&[path.to_path_buf()])?;
    let mut p = Pipeline::new(cfg.pipeline_config());
    if let Some(extractor) = cfg.devices.extractor() {
        p.profile_devices(extractor);
    }
    p.add_window_sink(Box::new(collect.clone()));
    pipeline::run_source(&mut source, &mut p, &mut |_, _| {})?;
    p.finish();
    let windows = collect
        .0
        .lock()
        .map(|mut w| std::mem::take(&mut *w))
        .unwrap_or_default();
    Ok(windows)
}

/// The windows of a JSON Lines file written by `--windows`.
pub fn windows_of_jsonl(path: &Path) -> Result<Vec<Window>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |problem: String| InputError::Windows {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text_field = |name: &str| {
            v[name]
                .as_str()
                .ok_or_else(|| bad(format!("no {name:?} text field")))
        };
        let device = parse_mac(text_field("device")?)
            .ok_or_else(|| bad("\"device\" is not a MAC address".into()))?;
        let start = parse_time(text_field("start")?).ok_or_else(|| bad("bad \"start\"".into()))?;
        let end = parse_time(text_field("end")?).ok_or_else(|| bad("bad \"end\"".into()))?;
        let mut values = [0.0; FEATURE_COUNT];
        for (x, spec) in values.iter_mut().zip(FEATURES) {
            *x = v[spec.name]
                .as_f64()
                .ok_or_else(|| bad(format!("no number for feature {:?}", spec.name)))?;
        }
        out.push(Window {
            device,
            start,
            end,
            values,
            notes: Default::default(),
        });
    }
    Ok(out)
}

/// Reads every input: a capture (pcap/pcapng; a `labels.csv` beside it
/// marks its attack phases), a `.jsonl` windows file, or a Parquet dataset
/// (a file, a `windows` table directory or a dataset root, as `extract` and
/// `live --dataset-dir` write them, whose `phase` column marks them); windows
/// in an attack phase are marked.
pub fn read_inputs(inputs: &[PathBuf], cfg: &Config) -> Result<Vec<Labelled>, InputError> {
    let mut out = Vec::new();
    for path in inputs {
        if path.is_dir() || path.extension().is_some_and(|e| e == "parquet") {
            out.extend(
                crate::dataset::read_windows(path)?
                    .into_iter()
                    .map(|r| Labelled {
                        window: r.window,
                        attack: r.attack,
                    }),
            );
            continue;
        }
        let windows = if path.extension().is_some_and(|e| e == "jsonl") {
            windows_of_jsonl(path)?
        } else {
            windows_of_capture(path, cfg)?
        };
        let labels = path.with_file_name("labels.csv");
        let phases = if labels.is_file() {
            Labels::load(&labels)?
        } else {
            Labels::default()
        };
        out.extend(windows.into_iter().map(|window| Labelled {
            attack: phases.overlaps(window.start, window.end),
            window,
        }));
    }
    Ok(out)
}

/// `2026-11-28T05:35:50.000000Z` (what `Timestamp` prints) back to a time.
fn parse_time(text: &str) -> Option<crate::capture::Timestamp> {
    crate::capture::Timestamp::parse_rfc3339(text)
}
