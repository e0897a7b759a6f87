//! The config file through the built binary: `config default` and `config
//! check`, errors with file, line and key (exit code 5), and `--config` on
//! `replay` of the bundled attack capture, with command-line flags winning
//! over the file only when given. Whether a dedupe window took effect is
//! judged from the alerts' own timestamps, not from spanwatch's counters.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// Exit code of a bad config file (`exit::CONFIG`).
const EXIT_CONFIG: i32 = 5;

fn attack_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples/attack/capture.pcap")
}

fn repo_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// A fresh, empty directory for one test, removed when the test passes (a
/// failed test leaves it for a look).
struct TestDir(PathBuf);

impl TestDir {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn test_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("spanwatch-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    TestDir(dir)
}

fn write(dir: &TestDir, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `spanwatch replay --json` of the attack capture with `args`; its summary.
fn replay(args: &[&str]) -> Value {
    let (out, json) = common::replay_json(&[&attack_capture()], args);
    assert!(
        out.status.success(),
        "replay {args:?} failed: {}",
        stderr(&out)
    );
    json.expect("JSON summary")
}

/// Alert lines of an EVE file (none when the file does not exist).
fn alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert line is JSON"))
        .collect()
}

/// Seconds since 1970 of an EVE timestamp ("2026-11-28T05:35:56.720657+0000"),
/// by the civil-calendar arithmetic of H. Hinnant's days_from_civil.
fn epoch_secs(ts: &str) -> f64 {
    let num = |range: std::ops::Range<usize>| -> i64 {
        ts.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad timestamp {ts}"))
    };
    assert!(ts.ends_with("+0000"), "UTC timestamp expected: {ts}");
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    secs as f64 + num(20..26) as f64 / 1e6
}

/// Alert times per dedupe key (signature, source, target), sorted.
fn times_by_key(lines: &[Value]) -> BTreeMap<(u64, String, String), Vec<f64>> {
    let mut keys: BTreeMap<_, Vec<f64>> = BTreeMap::new();
    for a in lines {
        // An alert aggregated per source or per target (rules/README.md,
        // `alert_per`) is deduplicated without the other side.
        let per = a["spanwatch"]["evidence"]["aggregated_per"].as_str();
        let side = |field: &str, left_out: &str| match per {
            Some(p) if p == left_out => "*".to_string(),
            _ => a[field].as_str().expect(field).to_string(),
        };
        let key = (
            a["alert"]["signature_id"].as_u64().expect("signature_id"),
            side("src_ip", "target"),
            side("dest_ip", "source"),
        );
        keys.entry(key)
            .or_default()
            .push(epoch_secs(a["timestamp"].as_str().expect("timestamp")));
    }
    for times in keys.values_mut() {
        times.sort_by(f64::total_cmp);
    }
    keys
}

/// The shortest gap between two alerts of the same key.
fn shortest_repeat(keys: &BTreeMap<(u64, String, String), Vec<f64>>) -> Option<f64> {
    keys.values()
        .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]))
        .min_by(f64::total_cmp)
}

#[test]
fn the_default_config_passes_config_check_and_changes_nothing() {
    let dir = test_dir("roundtrip");
    let out = common::spanwatch()
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("[alerts]") && text.contains("memcap_bytes"),
        "{text}"
    );
    let file = write(&dir, "spanwatch.toml", &text);
    let out = common::spanwatch()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}: valid\nevery setting has its default value\n",
            file.display()
        )
    );
    // A replay with it gives the same alerts as one without.
    let with = replay(&["--config", file.to_str().unwrap()]);
    let without = replay(&[]);
    assert_eq!(with["detection"]["alerts"], without["detection"]["alerts"]);
    assert_eq!(with["flows"], without["flows"]);
}

#[test]
fn config_check_lists_the_settings_a_file_changes() {
    let dir = test_dir("check-lists");
    let file = write(
        &dir,
        "c.toml",
        "[flows]\nmemcap_bytes = \"1G\"\n\n[alerts]\ndedupe_secs = 0\n",
    );
    let out = common::spanwatch()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("2 settings differ"), "{text}");
    assert!(text.contains("  alerts.dedupe_secs: 60 -> 0\n"), "{text}");
    // 1G = 2^30 bytes; 128M = 2^27.
    assert!(
        text.contains("  flows.memcap_bytes: 134217728 -> 1073741824\n"),
        "{text}"
    );
}

/// `config check FILE` and `replay --config FILE` both refuse `text` with
/// exit code 5 and a message naming FILE:LINE:COLUMN and the key.
fn assert_refused(name: &str, text: &str, at: &str, key: &str, why: &[&str]) {
    let dir = test_dir(name);
    let file = write(&dir, "bad.toml", text);
    let check = common::spanwatch()
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let (replay, _) =
        common::replay_json(&[&attack_capture()], &["--config", file.to_str().unwrap()]);
    for (what, out) in [("config check", check), ("replay --config", replay)] {
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{what}: {err}");
        let location = format!("{}:{at}: key `{key}`: ", file.display());
        assert!(
            err.contains(&location),
            "{what}: no {location:?} in:\n{err}"
        );
        for w in why {
            assert!(err.contains(w), "{what}: no {w:?} in:\n{err}");
        }
        assert!(out.stdout.is_empty(), "{what}: printed a summary");
    }
}

#[test]
fn an_unknown_key_fails_with_file_line_key_and_the_valid_keys() {
    assert_refused(
        "unknown-key",
        "# tuned for the lab\n[alerts]\ndedupe_secs = 5\ndedupe_window = 5\n",
        "4:1",
        "alerts.dedupe_window",
        &[
            "unknown key `dedupe_window`",
            "valid keys of [alerts] are",
            "`dedupe_secs`",
            "`max_alerts_per_sec`",
            "`webhook`",
        ],
    );
}

#[test]
fn an_unknown_table_fails_with_the_valid_top_level_keys() {
    assert_refused(
        "unknown-table",
        "[flow]\nmemcap_bytes = 1\n",
        "1:2",
        "flow",
        &["unknown key `flow`", "`flows`", "`protocols`"],
    );
}

#[test]
fn a_wrong_type_fails_with_file_line_and_key() {
    assert_refused(
        "wrong-type",
        "[flows]\ntcp_new_timeout_secs = 30\nudp_timeout_secs = \"soon\"\n",
        "3:20",
        "flows.udp_timeout_secs",
        &["invalid type: string \"soon\""],
    );
    assert_refused(
        "bad-size",
        "[protocols.http]\nmax_head_bytes = \"64X\"\n",
        "2:18",
        "protocols.http.max_head_bytes",
        &["unknown size suffix"],
    );
}

#[test]
fn a_missing_config_file_is_exit_5_naming_it() {
    let dir = test_dir("missing");
    let missing = dir.join("nowhere.toml");
    let (out, _) = common::replay_json(
        &[&attack_capture()],
        &["--config", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(EXIT_CONFIG));
    assert!(stderr(&out).contains("nowhere.toml"), "{}", stderr(&out));
}

#[test]
fn the_dedupe_window_of_the_config_file_governs_the_alerts_of_a_replay() {
    let dir = test_dir("dedupe");
    // The rules' alerts: the model's are deduplicated per device episode.
    let run = |name: &str, config: Option<&str>| {
        let file = dir.join(&format!("{name}.jsonl"));
        let mut args = vec![
            "--no-model".to_string(),
            "--alerts".to_string(),
            file.display().to_string(),
        ];
        if let Some(text) = config {
            let cfg = write(&dir, &format!("{name}.toml"), text);
            args.extend(["--config".into(), cfg.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (replay(&args), alerts(&file))
    };
    let (default_summary, default_lines) = run("default", None);
    let (_, every_lines) = run("every", Some("[alerts]\ndedupe_secs = 0\n"));
    let (_, hour_lines) = run("hour", Some("[alerts]\ndedupe_secs = 3600\n"));
    let (default, every, hour) = (
        times_by_key(&default_lines),
        times_by_key(&every_lines),
        times_by_key(&hour_lines),
    );

    // The same attacks are reported whatever the window.
    assert!(default.len() >= 10, "too few alert keys: {}", default.len());
    let keys = |m: &BTreeMap<_, _>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&default), keys(&every));
    assert_eq!(keys(&default), keys(&hour));
    // Default 60 s: repeats of a key at least a minute apart. 3600 s: the
    // 170 s capture gives each key once. 0: repeats closer than a minute.
    assert!(shortest_repeat(&default).is_none_or(|gap| gap >= 60.0));
    assert!(hour.values().all(|t| t.len() == 1), "{hour:?}");
    assert!(shortest_repeat(&every).is_some_and(|gap| gap < 60.0));
    // Without deduplication every alert raised in the default run is emitted.
    assert!(every_lines.len() > default_lines.len());
    assert_eq!(
        Some(every_lines.len() as u64),
        default_summary["detection"]["alerts"]["raised"].as_u64()
    );
}

#[test]
fn rules_off_in_the_file_gives_no_alerts_and_the_rules_flag_wins() {
    let dir = test_dir("rules-off");
    let cfg = write(&dir, "off.toml", "[rules]\nenabled = false\n");
    let cfg = cfg.to_str().unwrap();
    let off_file = dir.join("off.jsonl");
    let off = replay(&["--config", cfg, "--alerts", off_file.to_str().unwrap()]);
    assert_eq!(off["detection"]["rules"], 0, "{}", off["detection"]);
    let from_rules = |file: &Path| {
        alerts(file)
            .into_iter()
            .filter(|a| a["spanwatch"]["source"] == "rule")
            .count()
    };
    assert_eq!(from_rules(&off_file), 0);

    let on_file = dir.join("on.jsonl");
    let rules = repo_rules();
    let on = replay(&[
        "--config",
        cfg,
        "--rules",
        rules.to_str().unwrap(),
        "--alerts",
        on_file.to_str().unwrap(),
    ]);
    let default = replay(&[]);
    // The repository's rules directory is the built-in ruleset.
    let signatures = |s: &Value| s["detection"]["alerts"]["signatures"].clone();
    assert_eq!(signatures(&on), signatures(&default));
    assert!(from_rules(&on_file) > 0);
}

#[test]
fn flags_given_win_over_the_file_and_flags_left_out_do_not() {
    let dir = test_dir("override");
    let from_file = dir.join("from-file.jsonl");
    let from_flag = dir.join("from-flag.jsonl");
    let text = format!(
        "[flows]\nmemcap_bytes = \"1M\"\n\n[summary]\ntop_talkers = 3\n\n[alerts]\nfile = {:?}\n",
        from_file.display().to_string()
    );
    let cfg = write(&dir, "c.toml", &text);
    let cfg = cfg.to_str().unwrap();
    let default = replay(&[]);

    let file_only = replay(&["--config", cfg]);
    assert_eq!(file_only["top_talkers"].as_array().map(Vec::len), Some(3));
    let small = file_only["flows"]["max_flows"].as_u64().unwrap();
    let normal = default["flows"]["max_flows"].as_u64().unwrap();
    // 1M of flow records instead of 128M: a 128th of the flows (rounded).
    assert!(
        small > 0 && small <= normal / 128 + 1,
        "{small} vs {normal}"
    );
    assert!(
        !alerts(&from_file).is_empty(),
        "alerts.file of the config unused"
    );

    std::fs::remove_file(&from_file).unwrap();
    let flags = replay(&[
        "--config",
        cfg,
        "--top",
        "5",
        "--flow-memcap",
        "128M",
        "--alerts",
        from_flag.to_str().unwrap(),
    ]);
    assert_eq!(flags["top_talkers"].as_array().map(Vec::len), Some(5));
    assert_eq!(flags["flows"]["max_flows"].as_u64(), Some(normal));
    assert!(!alerts(&from_flag).is_empty());
    assert!(
        !from_file.exists(),
        "the --alerts flag did not replace alerts.file"
    );
}

/// Every numeric setting at 0 is accepted and is a bound, not a crash.
#[test]
fn zero_for_every_number_is_handled_without_a_crash() {
    let dir = test_dir("zeros");
    let out = common::spanwatch()
        .args(["config", "default"])
        .output()
        .unwrap();
    let zeros: String = stdout(&out)
        .lines()
        .map(|line| match line.split_once(" = ") {
            Some((key, value))
                if !line.starts_with('#')
                    && value
                        .trim_matches('"')
                        .trim_end_matches(['K', 'M', 'G'])
                        .parse::<u64>()
                        .is_ok() =>
            {
                format!("{key} = 0\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    assert!(zeros.matches(" = 0\n").count() >= 50, "{zeros}");
    let cfg = write(&dir, "zeros.toml", &zeros);
    for threads in ["1", "2", "4"] {
        let summary = replay(&["--config", cfg.to_str().unwrap(), "--threads", threads]);
        assert_eq!(summary["flows"]["max_flows"].as_u64(), Some(1));
        assert!(summary["sessions"]["refused"].as_u64() > Some(0));
    }
}
