//! Live under load: tcpreplay sends the bundled attack capture (its
//! addresses first rewritten by tcprewrite into the test link's own subnet)
//! onto a veth link between two network namespaces this test creates, at
//! rising rates (10 k, 50 k, 100 k packets/s, then top speed), each for a
//! bounded time, while `spanwatch live` and tcpdump capture the link. At
//! every rate: spanwatch stops cleanly on SIGTERM, its peak RSS stays under
//! its caps, and its counts are consistent with the kernel's: every frame
//! the interface moved (`ip -s link`, both directions) reached its socket
//! (received), and what it processed is what was received less what the
//! kernel dropped; tcpdump's counts obey the same. Needs root.

mod common;
mod netlab;

use std::process::Command;
use std::time::Duration;

use netlab::{Lab, Tap, require_program};

/// The bundled attack sample (its addresses rewritten into the link's subnet).
const CAPTURE: &str = "../datasets/samples/attack/capture.pcap";

/// Rates tried, in packets/s; `None` is tcpreplay's top speed.
const RATES: &[Option<u32>] = &[Some(10_000), Some(50_000), Some(100_000), None];
/// Seconds each rate is sent for (the capture looped), and the loop bound.
const SECONDS_PER_RATE: &str = "2";
const MAX_LOOPS: &str = "40";
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// spanwatch's caps in this test, and its kernel buffer.
const FLOW_MEMCAP_MIB: u64 = 32;
const REASSEMBLY_MEMCAP_MIB: u64 = 16;
const APP_MEMCAP_MIB: u64 = 16;
const BUFFER_MIB: u64 = 64;
/// Frames of the sample are at most 1514 bytes.
const SNAPLEN: &str = "2048";

/// (rx, tx) packets of an interface in a namespace, by `ip -s link`.
fn link_packets(ns: &str, dev: &str) -> (u64, u64) {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", "dev", dev])
        .output()
        .expect("run ip (Debian package iproute2)");
    assert!(out.status.success(), "ip -s link show {dev}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
    let stats = &v[0]["stats64"];
    (
        stats["rx"]["packets"].as_u64().unwrap(),
        stats["tx"]["packets"].as_u64().unwrap(),
    )
}

/// Peak resident set of a process, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// A number tcpdump prints on exit before `suffix` ("packets captured").
fn tcpdump_count(log: &str, suffix: &str) -> u64 {
    log.lines()
        .find(|l| l.ends_with(suffix))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("tcpdump did not report '{suffix}':\n{log}"))
}

#[test]
fn live_keeps_its_caps_and_counts_consistent_at_rising_rates() {
    require_program("tcpreplay", "tcpreplay");
    let mut lab = Lab::new("ll");
    let rewritten = lab.rewritten_capture(CAPTURE);
    let iface = lab.client_interface().to_string();
    let ns = lab.client_namespace().to_string();
    let mut zero_drop_rates = Vec::new();
    for rate in RATES {
        let name = rate.map_or("top".to_string(), |r| r.to_string());
        let tcpdump = lab.start_capture(&format!("rate-{name}"));
        let spanwatch = lab.start_live(
            "spanwatch",
            Tap::Client,
            &[
                "--json",
                "--no-model",
                "--snaplen",
                SNAPLEN,
                "--buffer-size",
                &format!("{BUFFER_MIB}M"),
                "--flow-memcap",
                &format!("{FLOW_MEMCAP_MIB}M"),
                "--reassembly-memcap",
                &format!("{REASSEMBLY_MEMCAP_MIB}M"),
                "--app-memcap",
                &format!("{APP_MEMCAP_MIB}M"),
            ],
        );
        let start_kib = peak_rss_kib(lab.pid(spanwatch));
        let before = link_packets(&ns, &iface);
        let mut args = vec![
            "-q".to_string(),
            "-i".to_string(),
            iface.clone(),
            format!("--duration={SECONDS_PER_RATE}"),
            format!("--loop={MAX_LOOPS}"),
        ];
        args.push(rate.map_or("--topspeed".to_string(), |r| format!("--pps={r}")));
        args.push(rewritten.to_str().unwrap().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let replay = lab.start_client("tcpreplay", "tcpreplay", &args);
        let replayed = lab.wait_exit(replay, REPLAY_TIMEOUT);
        assert!(replayed.success(), "tcpreplay:\n{}", lab.log(replay));
        std::thread::sleep(Duration::from_millis(500));
        let after = link_packets(&ns, &iface);
        let peak_kib = peak_rss_kib(lab.pid(spanwatch));
        lab.signal(spanwatch, "TERM");
        let status = lab.wait_exit(spanwatch, Duration::from_secs(20));
        assert!(
            status.success(),
            "rate {name}: spanwatch {status}:\n{}",
            lab.log(spanwatch)
        );
        lab.stop(tcpdump.proc_id());
        let tcpdump_log = lab.log(tcpdump.proc_id());

        let summary = lab.final_summary(spanwatch);
        let moved = (after.0 - before.0) + (after.1 - before.1);
        let kernel = &summary["kernel"];
        let received = kernel["received"].as_u64().unwrap();
        let dropped = kernel["dropped"].as_u64().unwrap() + kernel["if_dropped"].as_u64().unwrap();
        let packets = summary["packets"].as_u64().unwrap();
        let reassembly = &summary["reassembly"];
        let flows = &summary["flows"];
        let captured = tcpdump_count(&tcpdump_log, "packets captured");
        let tcpdump_received = tcpdump_count(&tcpdump_log, "packets received by filter");
        let tcpdump_dropped = tcpdump_count(&tcpdump_log, "packets dropped by kernel");
        eprintln!(
            "rate {name}: link moved {moved}; spanwatch received {received}, dropped {dropped}, \
             processed {packets}, peak RSS {peak_kib} KiB (at start {start_kib} KiB), flows \
             evicted {}, reassembly budget drops {}, stream cap hits {}; tcpdump received \
             {tcpdump_received}, captured {captured}, dropped {tcpdump_dropped}",
            flows["evicted"], reassembly["budget_drops"], reassembly["stream_cap_hits"]
        );
        assert!(moved > 1000, "rate {name}: only {moved} frames sent");
        assert_eq!(
            received, moved,
            "rate {name}: spanwatch's socket vs ip -s link"
        );
        assert_eq!(
            packets + dropped,
            received,
            "rate {name}: processed + dropped vs received"
        );
        assert_eq!(
            tcpdump_received, moved,
            "rate {name}: tcpdump's socket vs ip -s link"
        );
        assert_eq!(captured + tcpdump_dropped, tcpdump_received);
        let devices = summary["devices"]["devices"].as_u64().unwrap_or(0);
        let cap_kib = start_kib
            + BUFFER_MIB * 1024
            + (FLOW_MEMCAP_MIB + REASSEMBLY_MEMCAP_MIB + APP_MEMCAP_MIB) * 1024
            + spanwatch::pipeline::device_stage_bytes(devices as usize) as u64 / 1024;
        assert!(
            peak_kib < cap_kib,
            "rate {name}: peak RSS {peak_kib} KiB over {cap_kib} KiB"
        );
        if dropped == 0 {
            zero_drop_rates.push(name);
        }
    }
    eprintln!("rates without a drop: {zero_drop_rates:?}");
}
