//! `spanwatch live` on a veth link between two network namespaces this test
//! creates: real HTTP traffic (curl against busybox httpd) crosses the link while
//! tcpdump and spanwatch capture the same interface. spanwatch must count
//! the packets tcpdump counts, reload its rules on SIGHUP, and on SIGTERM
//! flush every alert raised so far. Needs root (network namespaces).

mod common;
mod netlab;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use netlab::{Lab, Tap};

/// HTTP fetches across the link (bounded).
const FETCHES: usize = 20;
/// Size of the page fetched.
const PAGE_BYTES: usize = 20_000;

#[test]
fn live_counts_exactly_what_tcpdump_counts_on_a_veth_link() {
    let mut lab = Lab::new("lv");
    let listen = lab.start_httpd(8080, &"x".repeat(PAGE_BYTES));
    let capture = lab.start_capture("live");
    let alerts = lab.dir().join("alerts.jsonl");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Client,
        &[
            "--json",
            "--rules",
            rules.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
        ],
    );

    let url = format!("http://{listen}/index.html");
    for _ in 0..FETCHES {
        lab.http_get(&url, None);
    }
    // One login with a well-known default credential (a public default pair).
    lab.http_get(&url, Some("admin:admin"));
    std::thread::sleep(Duration::from_millis(500));
    lab.signal(spanwatch, "HUP");
    lab.wait_log(spanwatch, "rules reloaded", Duration::from_secs(10));
    lab.stop(spanwatch);
    let alert_lines = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(
        alert_lines.contains("\"signature_id\":9100102"),
        "default-credential alert not flushed on SIGTERM:\n{alert_lines}"
    );
    assert!(!alert_lines.contains("admin:admin"));
    let pcap = lab.finish_capture(capture);

    let summary = lab.final_summary(spanwatch);
    let read = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    let tcpdump_packets = String::from_utf8_lossy(&read.stdout).lines().count() as u64;
    let ours = summary["packets"].as_u64().unwrap();
    assert!(
        tcpdump_packets >= FETCHES as u64 * 6,
        "tcpdump saw only {tcpdump_packets} packets"
    );
    // tcpdump starts before spanwatch and stops after it, and nothing crosses
    // the link outside the fetches (IPv6 off, no address resolution while idle),
    // so both see exactly the same packets.
    assert_eq!(
        ours, tcpdump_packets,
        "spanwatch counted {ours} packets, tcpdump {tcpdump_packets}"
    );
    assert!(summary["flows"]["tcp"].as_u64().unwrap() >= FETCHES as u64);
    assert!(
        summary["reassembly"]["delivered_bytes"].as_u64().unwrap() >= (FETCHES * PAGE_BYTES) as u64
    );
    assert_eq!(
        summary["protocols"]["http"]["requests"].as_u64(),
        Some(FETCHES as u64 + 1)
    );
    assert!(summary["kernel"]["received"].as_u64().is_some());
}

#[test]
fn live_on_a_missing_interface_is_exit_4_naming_it() {
    let out = common::spanwatch()
        .args(["live", "-i", "swnosuchif0", "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("swnosuchif0"), "{stderr}");
}
