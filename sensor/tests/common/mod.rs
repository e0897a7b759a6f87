//! Helpers shared by the integration tests: the shared capture corpus and the
//! `spanwatch` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared corpus of public captures, beside the repository.
pub fn pcaps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps")
}

/// One row of `MANIFEST.tsv`.
pub struct ManifestRow {
    pub path: String,
    pub packets: u64,
    pub expected: serde_json::Value,
}

impl ManifestRow {
    pub fn file(&self) -> PathBuf {
        pcaps_dir().join(&self.path)
    }
}

/// Every row of the manifest (tshark's ground truth for each capture).
pub fn manifest() -> Vec<ManifestRow> {
    let path = pcaps_dir().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (is ../shared beside the repo?)", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("manifest header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("manifest has no {name} column"))
    };
    let (c_path, c_packets, c_expected) = (col("path"), col("packets"), col("expected"));
    let rows: Vec<ManifestRow> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            ManifestRow {
                path: f[c_path].to_string(),
                packets: f[c_packets].parse().expect("packets column"),
                expected: serde_json::from_str(f[c_expected]).expect("expected column is JSON"),
            }
        })
        .collect();
    assert!(rows.len() >= 80, "manifest unexpectedly short");
    rows
}

pub fn spanwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spanwatch"))
}

/// `spanwatch replay --json --no-progress FILES...` and its parsed summary.
pub fn replay_json(files: &[&Path], extra: &[&str]) -> (Output, Option<serde_json::Value>) {
    let out = spanwatch()
        .arg("replay")
        .arg("--json")
        .arg("--no-progress")
        .args(extra)
        .args(files)
        .output()
        .expect("run spanwatch");
    let json = serde_json::from_slice(&out.stdout).ok();
    (out, json)
}

/// The report `tests/dataset_check.py DIR ARGS...` prints on a dataset
/// directory (DuckDB and pyarrow reading it back).
pub fn dataset_check(dir: &Path, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dataset_check.py");
    let run = Command::new("python3")
        .arg(script)
        .arg(dir)
        .args(args)
        .output()
        .expect("run python3 (Debian package python3)");
    assert!(
        run.status.success(),
        "dataset_check.py failed (python3 needs duckdb, pyarrow and blake3: bash .ci/deps): {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).expect("dataset_check.py prints JSON")
}

/// Captures of the corpus that tshark reads up to a damaged record and then
/// exits 2, with the message it prints: the frames before the damage are
/// still its judgement.
const TSHARK_DAMAGED: &[(&str, &str)] = &[
    (
        "generic/truncated-file-http-mime.pcap",
        "appears to have been cut short in the middle of a packet",
    ),
    (
        "generic/damaged-record-header-fuzz.pcap",
        "appears to be damaged or corrupt",
    ),
];

/// `tshark -n -r FILE ARGS...`, its standard output once its exit status says
/// it read the whole file: 0, or 2 with the known message for a damaged
/// capture of the corpus.
pub fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(args)
        .output()
        .expect("tshark must be installed (bash .ci/deps installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let damaged = TSHARK_DAMAGED
        .iter()
        .any(|(path, message)| file.ends_with(path) && stderr.contains(message));
    assert!(
        out.status.success() || (out.status.code() == Some(2) && damaged),
        "tshark {args:?} on {} failed ({}): {stderr}",
        file.display(),
        out.status
    );
    String::from_utf8(out.stdout).expect("tshark writes UTF-8")
}

/// Every value of a tshark field in a capture.
pub fn tshark_values(file: &Path, field: &str) -> Vec<String> {
    tshark(
        file,
        &[
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=\n",
            "-e",
            field,
        ],
    )
    .lines()
    .map(str::trim)
    .filter(|v| !v.is_empty())
    .map(str::to_string)
    .collect()
}
