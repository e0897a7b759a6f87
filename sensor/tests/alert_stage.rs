//! The alert stage: a distributed flood is a handful of alerts that say how
//! big it is, and targeted alerts are all still there.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The SYN flood rule of the default ruleset and its threshold (`count = 500`
/// in `rules/iot-default.rules.toml`, `alert_per = "target"`).
const SYN_FLOOD: u64 = 9_101_003;
const SYN_FLOOD_COUNT: u64 = 500;

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "spanwatch-alert-stage-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    dir
}

fn alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("alert file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("EVE line"))
        .collect()
}

/// 200 000 SYNs from random spoofed sources at 4 targets (50 000 each, over
/// about 4 s): each target's 500-SYN window fills 100 times, from 500
/// different sources each time. One alert per target, not 400.
#[test]
fn a_spoofed_syn_flood_is_one_alert_per_target_with_its_size() {
    let dir = test_dir("flood");
    let pcap = dir.join("flood.pcap");
    let out = common::spanwatch()
        .args(["synth", "--mode", "syn-flood", "--packets", "200000"])
        .args(["--devices", "4", "--seed", "3", "--out"])
        .arg(&pcap)
        .output()
        .expect("run synth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("alerts.jsonl");
    let (out, summary) = common::replay_json(&[&pcap], &["--alerts", file.to_str().unwrap()]);
    assert!(out.status.success());
    let summary = summary.expect("summary");

    let flood: Vec<Value> = alerts(&file)
        .into_iter()
        .filter(|a| a["alert"]["signature_id"] == SYN_FLOOD)
        .collect();
    let mut per_target: BTreeMap<String, usize> = BTreeMap::new();
    for a in &flood {
        *per_target
            .entry(a["dest_ip"].as_str().expect("dest_ip").to_string())
            .or_default() += 1;
        let ev = &a["spanwatch"]["evidence"];
        assert_eq!(ev["count"], SYN_FLOOD_COUNT, "{a}");
        // 500 draws of a 32-bit source address: a repeat has a chance of
        // about 3e-5.
        assert!(ev["sources"].as_u64() >= Some(SYN_FLOOD_COUNT - 2), "{a}");
        assert_eq!(ev["aggregated_per"], "target", "{a}");
    }
    assert_eq!(per_target.len(), 4, "{per_target:?}");
    assert!(per_target.values().all(|n| *n == 1), "{per_target:?}");

    // Every firing reached the alert stage; all but the first per target
    // were folded into it.
    let row = summary["detection"]["alerts"]["signatures"]
        .as_array()
        .expect("signature rows")
        .iter()
        .find(|r| r["signature_id"] == SYN_FLOOD)
        .expect("flood row")
        .clone();
    assert_eq!(row["emitted"], 4);
    assert_eq!(row["suppressed"], 4 * (50_000 / SYN_FLOOD_COUNT - 1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Alerts per rule on the labelled lab captures: those of the previous
/// release (the pipeline before the event layer and the alert stage), except
/// - the host sweep rule 9101002, now aggregated per source: one alert per
///   scanner (the recon scan and the infected camera's lateral movement)
///   where there was one per (scanner, target);
/// - the default-credential rules, now an attempt (9100104 Telnet, 9100105
///   HTTP, 9100106 MQTT, medium) and a success (9100101, 9100102, 9100103,
///   high): the Mirai login's three default pairs (two refused, one let in)
///   were one alert of 9100101 per (source, target, user) and are now two
///   attempts and one success, and the other attempts keep their count under
///   the attempt rules.
#[test]
fn targeted_alerts_per_rule_on_the_lab_captures_are_unchanged() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases: [(PathBuf, &[(u64, usize)]); 3] = [
        (
            manifest.join("../../shared/lab-sample/capture.pcap"),
            &[
                (9100101, 1),
                (9100104, 3),
                (9100105, 2),
                (9100106, 1),
                (9100201, 1),
                (9100202, 1),
                (9100203, 1),
                (9100205, 1),
                (9100206, 1),
                (9100301, 3),
                (9100302, 8),
                (9100303, 3),
                (9100401, 2),
                (9100501, 1),
                (9100701, 1),
                (9100801, 12),
                (9100802, 1),
                (9100901, 2),
                (9100902, 1),
                (9101001, 1),
                (9101002, 2),
                (9101003, 1),
            ],
        ),
        (
            manifest.join("../datasets/samples/attack/capture.pcap"),
            &[
                (9100101, 1),
                (9100104, 2),
                (9100105, 1),
                (9100106, 1),
                (9100201, 1),
                (9100202, 1),
                (9100203, 1),
                (9100205, 1),
                (9100206, 1),
                (9100301, 4),
                (9100302, 10),
                (9100303, 3),
                (9100401, 2),
                (9100501, 1),
                (9100601, 2),
                (9100701, 1),
                (9100801, 16),
                (9100802, 1),
                (9100901, 2),
                (9100902, 1),
                (9101001, 1),
                (9101002, 2),
                (9101003, 1),
            ],
        ),
        (
            manifest.join("../datasets/samples/benign/capture.pcap"),
            &[(9100301, 3), (9100302, 9), (9100303, 1), (9100901, 1)],
        ),
    ];
    let dir = test_dir("lab");
    for (i, (pcap, expected)) in cases.iter().enumerate() {
        let file = dir.join(format!("{i}.jsonl"));
        let (out, _) =
            common::replay_json(&[pcap], &["--no-model", "--alerts", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", pcap.display());
        let mut got: BTreeMap<u64, usize> = BTreeMap::new();
        for a in alerts(&file) {
            *got.entry(a["alert"]["signature_id"].as_u64().expect("sid"))
                .or_default() += 1;
        }
        let expected: BTreeMap<u64, usize> = expected.iter().copied().collect();
        assert_eq!(got, expected, "{}", pcap.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
