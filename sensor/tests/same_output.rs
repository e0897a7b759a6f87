//! The same capture gives the same alerts and the same feature windows, byte
//! for byte, in every run and with the parsers on the capture thread, on
//! their own, or sharing the flows among parser threads (`--threads 1`, `2`
//! and `4`). Hash maps are seeded anew in every process, so anything taken
//! from one in its own order (a bounded profile filled from a hashed set,
//! findings raised while walking the inventory) shows here as runs that
//! disagree.

mod common;

use std::path::{Path, PathBuf};

use common::{manifest, pcaps_dir, replay_json};

/// Alerts and windows of one replay of `file` (see [`everything`]).
fn outputs(file: &Path, threads: &str, dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let files = everything(file, threads, dir);
    let take = |name: &str| {
        files
            .iter()
            .find(|f| f.0 == name)
            .map(|f| f.1.clone())
            .unwrap_or_else(|| panic!("{}: no {name} written", file.display()))
    };
    (take("alerts.jsonl"), take("windows.jsonl"))
}

/// The lab sample, the bundled attack sample, and the corpus captures of at
/// least `min_packets` packets.
fn captures(min_packets: u64) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![
        root.join("../shared/lab-sample/capture.pcap"),
        root.join("datasets/samples/attack/capture.pcap"),
    ];
    files.extend(
        manifest()
            .into_iter()
            .filter(|r| r.packets >= min_packets)
            .map(|r| r.file()),
    );
    assert!(pcaps_dir().exists());
    files
}

#[test]
fn every_run_and_thread_count_gives_the_same_alerts_and_windows() {
    let dir = std::env::temp_dir().join(format!("spanwatch-same-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut checked = 0;
    // The captures with devices enough for the profiles to fill.
    for file in captures(500) {
        let first = outputs(&file, "1", &dir);
        assert!(
            !first.1.is_empty(),
            "{}: no feature window at all",
            file.display()
        );
        for (run, threads) in [(1, "1"), (2, "2"), (3, "2"), (4, "4")] {
            let again = outputs(&file, threads, &dir);
            assert!(
                again.0 == first.0,
                "{}: alerts of run {run} (--threads {threads}) differ from the first",
                file.display()
            );
            assert!(
                again.1 == first.1,
                "{}: windows of run {run} (--threads {threads}) differ from the first",
                file.display()
            );
        }
        checked += 1;
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 5, "only {checked} captures checked");
}

/// Everything one replay of `file` with `--threads THREADS` writes, into
/// fresh files (the alert file is appended to, as a sensor's EVE file is):
/// the summary (its timings taken out), then every other file by name.
fn everything(file: &Path, threads: &str, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let out_dir = dir.join(format!("threads-{threads}"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs).expect("output dir");
    let path = |p: PathBuf| p.to_str().expect("UTF-8 temp path").to_string();
    let (alerts, windows) = (
        path(out_dir.join("alerts.jsonl")),
        path(out_dir.join("windows.jsonl")),
    );
    let logs_arg = path(logs.clone());
    let (out, summary) = replay_json(
        &[file],
        &[
            "--threads",
            threads,
            "--alerts",
            &alerts,
            "--windows",
            &windows,
            "--log-dir",
            &logs_arg,
        ],
    );
    assert!(
        out.status.success(),
        "{} --threads {threads}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut summary = summary.expect("the summary is JSON");
    for timing in ["elapsed_secs", "packets_per_sec"] {
        summary
            .as_object_mut()
            .and_then(|s| s.remove(timing))
            .unwrap_or_else(|| panic!("the summary has no {timing}"));
    }
    let mut files = vec![("summary".to_string(), summary.to_string().into_bytes())];
    for d in [&out_dir, &logs] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(d)
            .expect("output dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let name = p.strip_prefix(&out_dir).unwrap().display().to_string();
            files.push((name, std::fs::read(&p).expect("output file")));
        }
    }
    files
}

/// Every capture of the corpus, the lab sample and the bundled attack
/// sample: the summary, the alerts, the windows and every protocol log are
/// the same whichever thread parses which flow.
#[test]
fn every_thread_count_gives_the_same_output_on_the_whole_corpus() {
    let dir = std::env::temp_dir().join(format!("spanwatch-threads-{}", std::process::id()));
    let (mut alerts, mut log_lines) = (0, 0);
    for file in &captures(0) {
        let one = everything(file, "1", &dir);
        for threads in ["2", "4"] {
            let other = everything(file, threads, &dir);
            let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
            assert_eq!(
                names(&other),
                names(&one),
                "{}: files written with --threads {threads} and 1",
                file.display()
            );
            for ((name, a), (_, b)) in one.iter().zip(&other) {
                assert!(
                    a == b,
                    "{}: {name} of --threads {threads} differs from that of --threads 1",
                    file.display()
                );
            }
        }
        let lines = |name: &str| {
            one.iter()
                .filter(|f| f.0.starts_with(name))
                .map(|f| f.1.iter().filter(|b| **b == b'\n').count())
                .sum::<usize>()
        };
        alerts += lines("alerts");
        log_lines += lines("logs");
    }
    let _ = std::fs::remove_dir_all(&dir);
    // The comparison is of something: alerts and protocol logs were written.
    assert!(
        alerts >= 50 && log_lines >= 1000,
        "{alerts} alerts, {log_lines} log lines"
    );
}
