//! The edge build (`--no-default-features`: no polars) replays, profiles
//! devices and writes JSON Lines windows, and says plainly that it has no
//! Parquet datasets when asked for one (exit code 2), before touching any
//! file or interface.
#![cfg(not(feature = "train"))]

mod common;

use std::path::Path;

fn attack_sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples/attack/capture.pcap")
}

#[test]
fn extract_and_dataset_recording_say_this_build_has_no_parquet() {
    let out_dir = std::env::temp_dir().join(format!("spanwatch-edge-{}", std::process::id()));
    let extract = common::spanwatch()
        .arg("extract")
        .arg(attack_sample())
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run spanwatch");
    assert_eq!(extract.status.code(), Some(2));
    let err = String::from_utf8_lossy(&extract.stderr);
    assert!(
        err.contains("spanwatch extract: this spanwatch was built without Parquet datasets"),
        "{err}"
    );
    assert!(
        !out_dir.exists(),
        "the edge build created {}",
        out_dir.display()
    );

    // `live` refuses before it opens the interface (which does not exist).
    let live = common::spanwatch()
        .args(["live", "-i", "no-such-if0", "--dataset-dir"])
        .arg(&out_dir)
        .output()
        .expect("run spanwatch");
    assert_eq!(live.status.code(), Some(2));
    let err = String::from_utf8_lossy(&live.stderr);
    assert!(
        err.contains("--dataset-dir: this spanwatch was built without Parquet"),
        "{err}"
    );
    assert!(!out_dir.exists());
}

#[test]
fn replay_profiles_devices_and_writes_jsonl_windows_without_polars() {
    let dir = std::env::temp_dir().join(format!("spanwatch-edge-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let windows = dir.join("w.jsonl");
    let (out, summary) = common::replay_json(
        &[&attack_sample()],
        &["--no-rules", "--windows", windows.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary.expect("JSON summary");
    // hosts.csv of the sample lists 16 hosts, the attacker included.
    let hosts =
        std::fs::read_to_string(attack_sample().with_file_name("hosts.csv")).expect("hosts");
    assert_eq!(
        summary["devices"]["devices"].as_u64(),
        Some(hosts.lines().count() as u64 - 1),
        "{}",
        summary["devices"]
    );
    let lines = std::fs::read_to_string(&windows).expect("windows file");
    assert!(lines.lines().count() > 100);
    let _ = std::fs::remove_dir_all(&dir);
}
