//! A capture of one million distinct flows replays within the configured
//! memory caps of the packet path (flow table, reassembly, parser sessions).
//! Peak RSS is measured from outside, with getrusage on the spanwatch child
//! process (this file is its own test binary, so the only child waited for is
//! that replay). The rules run without a byte cap of their own (their state is
//! bounded in groups and entries per rule), so they are left out here. The
//! device stage is bounded per device (`device_stage_bytes`): its bound for
//! the capture's devices is part of the cap. So is the binary's own
//! footprint before it holds any data (code and relocated tables, several
//! MiB in a debug build with polars), measured first with `spanwatch
//! features`: the caps bound what the data makes the process hold, not the
//! size of its code.

/// Peak RSS of the waited-for children so far, in KiB.
fn children_peak_kib() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage.ru_maxrss as u64
    }
}

mod common;

use spanwatch::synth::{Mode, SynthConfig, write_pcap};

const FLOW_MEMCAP_MIB: u64 = 32;
const REASSEMBLY_MEMCAP_MIB: u64 = 16;
const APP_MEMCAP_MIB: u64 = 16;

#[test]
fn million_distinct_flows_stay_under_the_memory_cap() {
    let dir = std::env::temp_dir().join(format!("spanwatch-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("flows.pcap");
    let cfg = SynthConfig {
        seed: 11,
        devices: 200,
        packets: 1_000_000,
        mode: Mode::DistinctFlows,
        ..SynthConfig::default()
    };
    let report = write_pcap(
        &cfg,
        std::io::BufWriter::new(std::fs::File::create(&pcap).unwrap()),
    )
    .unwrap();
    assert_eq!(report.packets, 1_000_000);

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
    let (out, json) = common::replay_json(
        &[&pcap],
        &[
            "--flow-memcap",
            &flow_cap,
            "--reassembly-memcap",
            &reassembly_cap,
            "--app-memcap",
            &app_cap,
            "--no-rules",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = json.expect("summary");
    let flows = &json["flows"];
    let created = flows["total"].as_u64().unwrap();
    let max_flows = flows["max_flows"].as_u64().unwrap();
    assert_eq!(created, report.flows_tcp + report.flows_udp);
    assert!(created >= 1_000_000, "created {created}");
    assert!(flows["peak_active"].as_u64().unwrap() <= max_flows);
    assert!(
        flows["evicted"].as_u64().unwrap() >= created - max_flows,
        "every flow beyond the table's size evicts one: {flows}"
    );

    let peak_kib = children_peak_kib();
    let devices = json["devices"]["devices"].as_u64().unwrap();
    assert!(
        devices >= u64::from(cfg.devices),
        "every client MAC is a device: {devices}"
    );
    let device_kib = spanwatch::pipeline::device_stage_bytes(devices as usize) as u64 / 1024;
    let cap_kib = (FLOW_MEMCAP_MIB + REASSEMBLY_MEMCAP_MIB + APP_MEMCAP_MIB) * 1024
        + device_kib
        + baseline_kib;
    eprintln!(
        "peak RSS {peak_kib} KiB for a cap of {cap_kib} KiB ({baseline_kib} KiB of it the idle binary)"
    );
    assert!(
        peak_kib < cap_kib,
        "peak RSS {peak_kib} KiB is over the configured cap {cap_kib} KiB"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
