//! SIGTERM under load: `spanwatch live` on a veth link between two network
//! namespaces this test creates, while tcpreplay sends the bundled attack
//! capture onto the link (its addresses first rewritten by tcprewrite into
//! the link's own subnet), is stopped by SIGTERM in the middle of the replay.
//! Every alert raised from the packets it captured must be in its alerts
//! file: the judge is `spanwatch replay` of the same packets, the first N
//! frames of tcpdump's capture of the link, N being the packets the live run
//! counted (with no kernel drop, tcpdump and spanwatch see the same frames in
//! the same order). Needs root (network namespaces).

mod common;
mod netlab;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use netlab::{Lab, Tap, require_program};

/// The capture replayed: the bundled attack sample (17 k packets, every
/// attack phase of the lab), its addresses rewritten into the link's subnet.
const CAPTURE: &str = "../datasets/samples/attack/capture.pcap";

/// Replay rate (packets/s): the 17 k packets take about 1.7 s.
const REPLAY_PPS: &str = "10000";

/// Frames of the sample are at most 1514 bytes; a snap length near that and a
/// larger kernel buffer let the capture ring hold the replay's bursts.
const SNAPLEN: &str = "2048";
const BUFFER: &str = "64M";

/// How long after the replay starts spanwatch gets SIGTERM.
const TERM_AFTER: Duration = Duration::from_millis(900);

/// Bound on the replay.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// (signature id, source, destination) of every alert in an EVE file, sorted.
fn alert_keys(path: &Path) -> Vec<(u64, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut keys: Vec<_> = text
        .lines()
        .map(|l| {
            let a: serde_json::Value = serde_json::from_str(l).expect("alert line is JSON");
            (
                a["alert"]["signature_id"].as_u64().unwrap(),
                a["src_ip"].as_str().unwrap_or_default().to_string(),
                a["dest_ip"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn alerts_raised_before_sigterm_under_load_all_reach_the_file() {
    sigterm_under_load("st", &[]);
}

/// The same with two parser threads sharing the flows: the threads are
/// joined at SIGTERM and nothing they parsed is lost.
#[test]
fn alerts_raised_before_sigterm_with_parser_threads_all_reach_the_file() {
    sigterm_under_load("s4", &["--threads", "4"]);
}

/// SIGTERM during a replay onto the link of lab `name`, spanwatch live run
/// with the arguments `extra` added.
fn sigterm_under_load(name: &str, extra: &[&str]) {
    require_program("tcpreplay", "tcpreplay");
    let mut lab = Lab::new(name);
    let rewritten = lab.rewritten_capture(CAPTURE);

    let capture = lab.start_capture("link");
    let iface = lab.client_interface().to_string();
    let alerts = lab.dir().join("live-alerts.jsonl");
    // The rules alone: the model scores windows on a wall-clock tick live.
    let mut args = vec![
        "--json",
        "--no-model",
        "--snaplen",
        SNAPLEN,
        "--buffer-size",
        BUFFER,
        "--alerts",
        alerts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let spanwatch = lab.start_live("spanwatch", Tap::Client, &args);
    let replay = lab.start_client(
        "tcpreplay",
        "tcpreplay",
        &[
            "-q",
            "-i",
            &iface,
            "--pps",
            REPLAY_PPS,
            rewritten.to_str().unwrap(),
        ],
    );
    std::thread::sleep(TERM_AFTER);
    lab.stop(spanwatch);
    let replayed = lab.wait_exit(replay, REPLAY_TIMEOUT);
    assert!(replayed.success(), "tcpreplay:\n{}", lab.log(replay));
    let pcap = lab.finish_capture(capture);

    let summary = lab.final_summary(spanwatch);
    let packets = summary["packets"].as_u64().unwrap();
    let kernel = &summary["kernel"];
    assert_eq!(
        kernel["dropped"].as_u64(),
        Some(0),
        "kernel drops: {kernel}"
    );
    assert_eq!(
        kernel["if_dropped"].as_u64(),
        Some(0),
        "kernel drops: {kernel}"
    );
    // Stopped in the middle of the replay, well after it started.
    let total = Command::new("capinfos")
        .args(["-c", "-M", "-T", "-r"])
        .arg(&pcap)
        .output()
        .expect("capinfos (Debian package tshark's wireshark-common)");
    let total: u64 = String::from_utf8_lossy(&total.stdout)
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .expect("capinfos prints the packet count");
    assert!(
        packets > 1000 && packets < total,
        "SIGTERM came at packet {packets} of {total}: not during the replay"
    );

    // The judge: the same first N frames, replayed from tcpdump's file.
    let first = lab.dir().join("first.pcap");
    let cut = Command::new("tcpdump")
        .args(["-r"])
        .arg(&pcap)
        .args(["-c", &packets.to_string(), "-w"])
        .arg(&first)
        .output()
        .expect("run tcpdump");
    assert!(
        cut.status.success(),
        "tcpdump -c: {}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let replay_alerts = lab.dir().join("replay-alerts.jsonl");
    let out = common::spanwatch()
        .args(["replay", "--no-progress", "--no-model", "--alerts"])
        .arg(&replay_alerts)
        .arg(&first)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = alert_keys(&replay_alerts);
    assert!(
        expected.len() >= 3,
        "only {} alerts in the first {packets} packets",
        expected.len()
    );
    assert_eq!(
        alert_keys(&alerts),
        expected,
        "the live run's alerts differ from a replay of the {packets} packets it captured"
    );
}
