//! The same capture gives the same alerts and the same feature windows, byte
//! for byte, in every run and with the parsers on the capture thread or on
//! their own (`--threads 1` and `2`). Hash maps are seeded anew in every
//! process, so anything taken from one in its own order (a bounded profile
//! filled from a hashed set, findings raised while walking the inventory)
//! shows here as runs that disagree.

mod common;

use std::path::{Path, PathBuf};

use common::{manifest, pcaps_dir, spanwatch};

/// Alerts and windows of one replay of `file` (into fresh files: the alert
/// file is appended to, as a sensor's EVE file is).
fn outputs(file: &Path, threads: &str, dir: &Path, run: usize) -> (Vec<u8>, Vec<u8>) {
    let alerts = dir.join(format!("alerts-{run}.jsonl"));
    let windows = dir.join(format!("windows-{run}.jsonl"));
    for f in [&alerts, &windows] {
        let _ = std::fs::remove_file(f);
    }
    let out = spanwatch()
        .args(["replay", "--no-progress", "--threads", threads, "--alerts"])
        .arg(&alerts)
        .arg("--windows")
        .arg(&windows)
        .arg(file)
        .output()
        .expect("run spanwatch");
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (read(&alerts), read(&windows))
}

/// The captures with devices enough for the profiles to fill: the lab
/// sample, the bundled attack sample, and the corpus captures of many hosts.
fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![
        root.join("../shared/lab-sample/capture.pcap"),
        root.join("datasets/samples/attack/capture.pcap"),
    ];
    files.extend(
        manifest()
            .into_iter()
            .filter(|r| r.packets >= 500)
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
    for file in captures() {
        let first = outputs(&file, "1", &dir, 0);
        assert!(
            !first.1.is_empty(),
            "{}: no feature window at all",
            file.display()
        );
        for (run, threads) in [(1, "1"), (2, "2"), (3, "2")] {
            let again = outputs(&file, threads, &dir, run);
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
