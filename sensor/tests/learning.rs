//! Learning what is routine: a learning period turns a network's medium and
//! low rule findings into routine (kept in the state file, not raised again
//! by a later run), high findings always go out, and `spanwatch learn` /
//! `unlearn` accept or take back one finding by its alert key.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn test_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("spanwatch-learning-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    dir
}

/// The bundled attack capture of the lab (labels.csv beside it).
fn attack_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples/attack/capture.pcap")
}

/// Replays the capture with `extra` flags, returning (key, severity) of
/// every alert.
fn run(dir: &Path, name: &str, extra: &[&str]) -> Vec<(String, u64)> {
    let file = dir.join(format!("{name}.jsonl"));
    let mut args = vec!["--no-model", "--alerts", file.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let (out, summary) = common::replay_json(&[&attack_capture()], &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.is_some(), "summary is JSON");
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let a: Value = serde_json::from_str(l).expect("EVE line");
            (
                a["spanwatch"]["key"].as_str().expect("key").to_string(),
                a["alert"]["severity"].as_u64().expect("severity"),
            )
        })
        .collect()
}

/// A config file that keeps the learned state in `state`.
fn state_config(dir: &Path, state: &Path) -> PathBuf {
    let config = dir.join("spanwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\nstate_file = {:?}\n",
            state.to_str().expect("utf-8 path")
        ),
    )
    .expect("write config");
    config
}

fn keys(alerts: &[(String, u64)]) -> BTreeSet<String> {
    alerts.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn a_learning_period_makes_medium_and_low_findings_routine_for_later_runs() {
    let dir = test_dir("period");
    let state = dir.join("learned.json");
    let config = state_config(&dir, &state);
    let state_arg = config.to_str().expect("utf-8 path");
    let plain = run(&dir, "plain", &[]);
    assert!(
        plain.iter().any(|(_, s)| *s == 1),
        "the attack raises high alerts"
    );
    assert!(plain.iter().any(|(_, s)| *s >= 2), "and medium or low ones");

    // Learning over the whole capture: only high alerts go out.
    let learning = run(
        &dir,
        "learning",
        &["--learn", "100000", "--config", state_arg],
    );
    let high: BTreeSet<String> = plain
        .iter()
        .filter(|(_, s)| *s == 1)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(learning.iter().all(|(_, s)| *s == 1), "{learning:?}");
    assert_eq!(keys(&learning), high);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state file written"))
            .expect("state is JSON");
    let learned: BTreeSet<String> = saved["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|k| k.as_str().expect("key").to_string())
        .collect();
    let routine: BTreeSet<String> = plain
        .iter()
        .filter(|(_, s)| *s >= 2)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(learned, routine);
    assert!(
        saved["devices"].as_array().expect("devices").len() >= 5,
        "the devices seen are known"
    );

    // A later run with the state: the routine findings stay quiet, the
    // high ones still go out.
    let later = run(&dir, "later", &["--config", state_arg]);
    assert_eq!(keys(&later), high);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn learn_and_unlearn_accept_and_take_back_one_finding() {
    let dir = test_dir("keys");
    let state = dir.join("learned.json");
    let config = state_config(&dir, &state);
    let state_arg = config.to_str().expect("utf-8 path");
    let plain = run(&dir, "plain", &[]);
    let (key, _) = plain
        .iter()
        .find(|(_, s)| *s >= 2)
        .expect("a medium or low finding")
        .clone();
    let learn = |cmd: &str, k: &str| {
        common::spanwatch()
            .args([cmd, "--state"])
            .arg(&state)
            .arg(k)
            .output()
            .expect("run learn")
    };
    assert!(learn("learn", &key).status.success());
    let quiet = run(&dir, "quiet", &["--config", state_arg]);
    assert!(!keys(&quiet).contains(&key), "{key} was learned");
    assert_eq!(keys(&quiet).len() + 1, keys(&plain).len());

    let before = std::fs::read(&state).expect("state");
    let bad = learn("learn", "not-a-key");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not-a-key"));
    assert_eq!(std::fs::read(&state).expect("state"), before, "unchanged");

    assert!(learn("unlearn", &key).status.success());
    let again = run(&dir, "again", &["--config", state_arg]);
    assert_eq!(keys(&again), keys(&plain));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_state_file_is_named_and_nothing_runs() {
    let dir = test_dir("corrupt");
    let state = dir.join("learned.json");
    std::fs::write(
        &state,
        "{\"format\": \"spanwatch-learned\", \"findings\": [1,",
    )
    .expect("write");
    let config = state_config(&dir, &state);
    let (out, _) = common::replay_json(
        &[&attack_capture()],
        &["--config", config.to_str().expect("utf-8 path")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("learned.json") && err.contains("line 1"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
