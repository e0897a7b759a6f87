//! `spanwatch live --dataset-dir` records feature windows from real traffic:
//! on a veth link between two network namespaces this test creates, curl
//! fetches pages from busybox httpd for a bounded time while spanwatch
//! captures the client end with 2 s windows and 5 s files. While it runs,
//! every file that has appeared reads back whole (a reader never sees half a
//! file); SIGTERM closes the last one; then DuckDB and pyarrow read every
//! file, the files are several (it rotated), and the rows are exactly the
//! windows of the same run's JSON Lines. Needs root (network namespaces),
//! python3 with duckdb, pyarrow and blake3 (`.ci/deps`).
#![cfg(feature = "train")]

mod common;
mod netlab;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use netlab::{Lab, Tap};
use serde_json::Value;

/// Fetches, one every FETCH_EVERY (bounded traffic: about 14 s).
const FETCHES: u32 = 28;
const FETCH_EVERY: Duration = Duration::from_millis(500);
/// The rotation period and window length the test configures.
const ROTATE_SECS: u64 = 5;
const WINDOW_SECS: u64 = 2;

/// Names of the files under `dir` (recursively): complete `.parquet` files
/// and temporaries apart.
fn listing(dir: &Path) -> (BTreeSet<String>, usize) {
    let mut done = BTreeSet::new();
    let mut temp = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                stack.push(e.path());
            } else if name.ends_with(".parquet") {
                done.insert(name);
            } else {
                temp += 1;
            }
        }
    }
    (done, temp)
}

#[test]
fn live_records_rotating_parquet_files_that_read_back_and_sigterm_closes_the_last() {
    let mut lab = Lab::new("ds");
    let listen = lab.start_httpd(8080, &"x".repeat(2000));

    let dataset = lab.dir().join("dataset");
    let jsonl = lab.dir().join("windows.jsonl");
    let config = lab.dir().join("spanwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[devices]\nwindow_secs = {WINDOW_SECS}\n\n[dataset]\nsensor_name = \"live-test\"\n"
        ),
    )
    .unwrap();
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Client,
        &[
            "--config",
            config.to_str().unwrap(),
            "--no-rules",
            "--windows",
            jsonl.to_str().unwrap(),
            "--dataset-dir",
            dataset.to_str().unwrap(),
            "--rotate",
            &format!("{ROTATE_SECS}s"),
        ],
    );

    let url = format!("http://{listen}/index.html");
    let started = Instant::now();
    let mut seen_while_running = BTreeSet::new();
    for i in 0..FETCHES {
        lab.http_get(&url, None);
        std::thread::sleep(FETCH_EVERY);
        // Halfway, what has appeared is complete: it all reads back.
        if i == FETCHES / 2 {
            let (done, _) = listing(&dataset);
            assert!(
                !done.is_empty(),
                "no file closed after {:?}",
                started.elapsed()
            );
            let report = common::dataset_check(&dataset, &[]);
            let files = report["windows"]["files"].as_array().unwrap();
            assert_eq!(files.len(), done.len(), "{report}");
            seen_while_running = done;
        }
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2 * ROTATE_SECS),
        "too short to rotate twice"
    );
    lab.stop(spanwatch);
    let log = lab.log(spanwatch);
    assert!(log.contains("dataset: feature windows under"), "{log}");

    // After SIGTERM: no temporary left, more files than halfway (the
    // last one closed), and every file reads back.
    let (done, temp) = listing(&dataset);
    assert_eq!(temp, 0, "a file was left half-written: {done:?}");
    assert!(done.is_superset(&seen_while_running));
    let report = common::dataset_check(&dataset, &[]);
    let windows = &report["windows"];
    let files = windows["files"].as_array().unwrap();
    assert!(files.len() >= 3, "did not rotate: {files:?}");
    for f in files {
        assert!(f["rows"].as_u64().unwrap() > 0, "{f}");
        assert!(
            f["path"]
                .as_str()
                .unwrap()
                .starts_with("windows/sensor=live-test/date="),
            "{f}"
        );
    }

    // Exactly the windows of the JSON Lines of the same run.
    let text = std::fs::read_to_string(&jsonl).expect("windows.jsonl");
    let expected: BTreeSet<(String, String)> = text
        .lines()
        .map(|l| {
            let w: Value = serde_json::from_str(l).unwrap();
            (
                w["device"].as_str().unwrap().into(),
                w["start"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(expected.len() >= 10, "too few windows: {text}");
    assert_eq!(
        windows["duckdb_rows"].as_u64(),
        Some(text.lines().count() as u64)
    );
    assert_eq!(
        windows["pyarrow_rows"].as_u64(),
        Some(text.lines().count() as u64)
    );
    let rows: BTreeSet<(String, String)> = windows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["device"].as_str().unwrap().into(),
                r["start"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(rows, expected);
    // Both ends of the link, and the inventory file written at exit.
    let devices: BTreeSet<&String> = expected.iter().map(|(d, _)| d).collect();
    assert_eq!(devices.len(), 2, "{devices:?}");
    assert_eq!(report["devices"]["duckdb_rows"].as_u64(), Some(2));
}
