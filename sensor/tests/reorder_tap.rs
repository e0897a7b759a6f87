//! Issue 16: captures reordered as a merging SPAN port delivers them (a
//! share of frames 1..=N positions late, across flows and directions,
//! timestamps kept in file order) give the same protocol messages, logins,
//! anomalies and rule alerts as the in-order capture, and no gap or
//! retransmission it lacks.
//!
//! Expected values are those of the in-order capture, rewritten through the
//! same writer at rate 0 (so that both sides have the same microsecond
//! timestamps); alerts are rule alerts (`--no-model`: the clustering model
//! and profiles are not what reordering is about).

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde_json::Value;
use spanwatch::synth::{ReorderConfig, SynthConfig, reorder_capture, write_pcap};

/// Reassembly counters that reordering must not change.
const STREAM_LOSS_COUNTERS: [&str; 4] = [
    "gaps",
    "gap_bytes",
    "retransmitted_bytes",
    "overlap_conflicts",
];

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "spanwatch-reorder-tap-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What a replay saw: the protocols section, the loss counters and the rule
/// alerts as (signature id, source, destination, port, app protocol) counts.
struct Seen {
    protocols: Value,
    losses: BTreeMap<&'static str, u64>,
    alerts: BTreeMap<String, u64>,
    out_of_order: u64,
}

fn replay(capture: &Path, dir: &Path, label: &str) -> Seen {
    let alerts_path = dir.join(format!("{label}.alerts.jsonl"));
    let alerts_arg = alerts_path.to_str().unwrap();
    let (out, json) = common::replay_json(&[capture], &["--no-model", "--alerts", alerts_arg]);
    assert!(
        out.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json.unwrap_or_else(|| panic!("{label}: no JSON summary"));
    let ra = &json["reassembly"];
    let losses = STREAM_LOSS_COUNTERS
        .iter()
        .map(|k| {
            (
                *k,
                ra[k].as_u64().unwrap_or_else(|| panic!("reassembly.{k}")),
            )
        })
        .collect();
    let mut alerts = BTreeMap::new();
    let text = std::fs::read_to_string(&alerts_path).unwrap_or_default();
    for line in text.lines() {
        let a: Value = serde_json::from_str(line).unwrap();
        let key = format!(
            "{} {} -> {}:{} {}",
            a["alert"]["signature_id"], a["src_ip"], a["dest_ip"], a["dest_port"], a["app_proto"]
        );
        *alerts.entry(key).or_insert(0) += 1;
    }
    Seen {
        protocols: json["protocols"].clone(),
        losses,
        alerts,
        out_of_order: ra["out_of_order_segments"].as_u64().unwrap(),
    }
}

/// Rewrites `input` at 0 %, then 1 %, 5 % (displacement up to 2) and 30 %
/// (up to 4), and checks every reordered replay against the in-order one.
fn check_reordered_like_in_order(input: &Path, name: &str) {
    let dir = scratch(name);
    let rewrite = |rate: u32, max: u32| {
        let out = dir.join(format!("{name}-{rate}.pcap"));
        let cfg = ReorderConfig {
            seed: u64::from(rate) + 16,
            rate_percent: rate,
            max_displacement: max,
        };
        let report = reorder_capture(input, &out, &cfg).unwrap();
        (out, report)
    };
    let (base_file, _) = rewrite(0, 1);
    let base = replay(&base_file, &dir, "in-order");
    assert!(
        base.protocols.as_object().is_some_and(|p| !p.is_empty()),
        "{name}: no protocol seen"
    );
    for (rate, max) in [(1, 2), (5, 2), (30, 4)] {
        let (file, report) = rewrite(rate, max);
        assert!(report.delayed * 100 >= report.frames * u64::from(rate) / 2);
        let seen = replay(&file, &dir, &format!("{rate}pc"));
        let what = format!("{name} at {rate} % (displacement up to {max})");
        // The rewrite did reorder TCP segments within streams.
        assert!(seen.out_of_order > base.out_of_order, "{what}");
        assert_eq!(seen.losses, base.losses, "{what}: gaps / retransmissions");
        assert_eq!(
            seen.protocols, base.protocols,
            "{what}: messages, logins or anomalies differ"
        );
        assert_eq!(seen.alerts, base.alerts, "{what}: rule alerts differ");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// The labelled lab capture: real daemons (mosquitto, libcoap, a web server,
// telnetd) and the attacks of labels.csv.
#[test]
fn lab_sample_reordered_gives_the_in_order_results() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab-sample/capture.pcap");
    check_reordered_like_in_order(&lab, "lab");
}

// The project's generated IoT mix (seed 7, 200 devices), 200,000 packets.
#[test]
fn generated_mix_reordered_gives_the_in_order_results() {
    let dir = scratch("mix-source");
    let mix = dir.join("mix.pcap");
    let cfg = SynthConfig {
        seed: 7,
        devices: 200,
        packets: 200_000,
        ..SynthConfig::default()
    };
    write_pcap(&cfg, BufWriter::new(File::create(&mix).unwrap())).unwrap();
    check_reordered_like_in_order(&mix, "mix");
    std::fs::remove_dir_all(&dir).unwrap();
}
