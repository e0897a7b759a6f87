//! Memory under attack: one million distinct flows, merged in time with IoT
//! traffic whose TCP streams carry out-of-order segments, holes and overlaps
//! (many streams, many MQTT and CoAP sessions) and with a spoofed SYN flood
//! (half-open connections from random sources), replay with reassembly,
//! parsers, devices and rules on within the sum of their caps. Peak RSS is
//! measured from outside (getrusage on the children of this test binary,
//! which has this one test, so the children are its own).
//!
//! The same traffic is replayed twice. With `--no-rules`, the peak must stay
//! under the sum of the byte caps (flows, reassembly, parser sessions), the
//! device stage's bound and the idle binary, as in memory_bound.rs. With the
//! rules on, the cap adds the rules memory cap (`--rules-memcap`, small
//! enough here that the flood's sources fill it) and `max_keys` alert dedupe
//! keys of `ALERT_KEY_BYTES` (set in a config file here): an upper estimate
//! of one dedupe key (rule, addresses, counters).

mod common;

use spanwatch::synth::{Impairments, Mode, SynthConfig, write_pcap};

const FLOW_MEMCAP_MIB: u64 = 32;
const REASSEMBLY_MEMCAP_MIB: u64 = 16;
const APP_MEMCAP_MIB: u64 = 16;

const RULES_MEMCAP_MIB: u64 = 4;
const MAX_ALERT_KEYS: u64 = 8192;
const ALERT_KEY_BYTES: u64 = 512;

/// Peak RSS of the waited-for children so far, in KiB.
fn children_peak_kib() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss as u64
    }
}

fn synth(path: &std::path::Path, cfg: &SynthConfig) -> spanwatch::synth::SynthReport {
    write_pcap(
        cfg,
        std::io::BufWriter::new(std::fs::File::create(path).unwrap()),
    )
    .unwrap()
}

#[test]
fn flows_holes_and_floods_with_rules_stay_under_the_caps() {
    let dir = std::env::temp_dir().join(format!("spanwatch-memattack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flows = dir.join("flows.pcap");
    let iot = dir.join("iot-holes.pcap");
    let flood = dir.join("syn-flood.pcap");
    let distinct = synth(
        &flows,
        &SynthConfig {
            seed: 11,
            devices: 200,
            packets: 1_000_000,
            mode: Mode::DistinctFlows,
            ..SynthConfig::default()
        },
    );
    // 30 % of segments reordered, 5 % lost (holes), 5 % overlapping.
    let holes = synth(
        &iot,
        &SynthConfig {
            seed: 12,
            devices: 1000,
            packets: 300_000,
            impair: Impairments {
                reorder_permille: 300,
                retransmit_permille: 50,
                overlap_permille: 50,
                drop_permille: 50,
            },
            mode: Mode::IotMix,
            ..SynthConfig::default()
        },
    );
    let syn = synth(
        &flood,
        &SynthConfig {
            seed: 13,
            devices: 200,
            packets: 300_000,
            mode: Mode::SynFlood,
            ..SynthConfig::default()
        },
    );
    let config = dir.join("spanwatch.toml");
    std::fs::write(&config, format!("[alerts]\nmax_keys = {MAX_ALERT_KEYS}\n")).unwrap();

    // The footprint of the binary itself (the first child: the peak so far).
    let idle = common::spanwatch()
        .arg("features")
        .output()
        .expect("run spanwatch");
    assert!(idle.status.success());
    let baseline_kib = children_peak_kib();

    let flow_cap = format!("{FLOW_MEMCAP_MIB}M");
    let reassembly_cap = format!("{REASSEMBLY_MEMCAP_MIB}M");
    let app_cap = format!("{APP_MEMCAP_MIB}M");
    let rules_cap = format!("{RULES_MEMCAP_MIB}M");
    let replay = |rules: bool| {
        let mut args = vec![
            "--config",
            config.to_str().unwrap(),
            "--flow-memcap",
            &flow_cap,
            "--reassembly-memcap",
            &reassembly_cap,
            "--app-memcap",
            &app_cap,
            "--rules-memcap",
            &rules_cap,
            "--no-model",
        ];
        if !rules {
            args.push("--no-rules");
        }
        let (out, json) = common::replay_json(&[&flows, &iot, &flood], &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json.expect("summary")
    };
    let caps_kib = (FLOW_MEMCAP_MIB + REASSEMBLY_MEMCAP_MIB + APP_MEMCAP_MIB) * 1024;

    let without_rules = replay(false);
    let peak_kib = children_peak_kib();
    let devices = without_rules["devices"]["devices"].as_u64().unwrap();
    let device_kib = spanwatch::pipeline::device_stage_bytes(devices as usize) as u64 / 1024;
    let cap_kib = caps_kib + device_kib + baseline_kib;
    eprintln!(
        "without rules: peak RSS {peak_kib} KiB for a cap of {cap_kib} KiB ({baseline_kib} KiB \
         the idle binary, {device_kib} KiB the devices)"
    );
    assert!(
        peak_kib < cap_kib,
        "without rules: peak RSS {peak_kib} KiB is over the configured cap {cap_kib} KiB"
    );

    let json = replay(true);
    assert_eq!(
        json["packets"].as_u64(),
        Some(distinct.packets + holes.packets + syn.packets)
    );
    // The traffic fills what it is meant to: the flow table, reassembly
    // with holes and out-of-order data, parser sessions, the rules' windows.
    let created = json["flows"]["total"].as_u64().unwrap();
    assert!(created >= 1_000_000, "created {created}");
    let reassembly = &json["reassembly"];
    assert!(
        reassembly["out_of_order_segments"].as_u64().unwrap() > 10_000
            && reassembly["gaps"].as_u64().unwrap() > 1_000,
        "reassembly not exercised: {reassembly}"
    );
    // MQTT control packet type 1 is CONNECT (OASIS MQTT 3.1.1 §2.2.1).
    let mqtt = json["protocols"]["mqtt"]["msgtype"]["1"].as_u64();
    assert!(mqtt.unwrap_or(0) > 1000, "MQTT sessions: {mqtt:?}");
    let coap = json["protocols"]["coap"]["code"]
        .as_object()
        .map(|c| c.len());
    assert!(coap.unwrap_or(0) > 2, "CoAP exchanges: {coap:?}");
    let detection = &json["detection"];
    assert!(
        detection["engine"]["events"].as_u64().unwrap() > 100_000,
        "rules not exercised: {detection}"
    );
    let flood_alerts = detection["alerts"]["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["signature_id"] == 9101003);
    assert!(flood_alerts, "no SYN flood alert: {detection}");
    // The rule state filled its cap and stayed within it.
    let engine = &detection["engine"];
    assert!(
        engine["memcap_evictions"].as_u64().unwrap() > 0
            && engine["memory_peak_bytes"].as_u64().unwrap() <= RULES_MEMCAP_MIB << 20,
        "rules memory cap not filled or exceeded: {engine}"
    );

    // The peak over both runs: this run's is at most that.
    let peak_kib = children_peak_kib();
    let rules_kib = RULES_MEMCAP_MIB * 1024 + MAX_ALERT_KEYS * ALERT_KEY_BYTES / 1024;
    let cap_kib = cap_kib + rules_kib;
    eprintln!(
        "with rules: peak RSS {peak_kib} KiB for a cap of {cap_kib} KiB ({rules_kib} KiB the rules)"
    );
    assert!(
        peak_kib < cap_kib,
        "with rules: peak RSS {peak_kib} KiB is over the configured cap {cap_kib} KiB"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
