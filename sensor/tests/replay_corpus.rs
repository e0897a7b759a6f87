//! `spanwatch replay` on every capture of the shared corpus: packet counts equal
//! tshark's (MANIFEST.tsv), nothing panics, damage is reported, and flow counts
//! per transport equal what tshark's conversation tables say, computed here by
//! running tshark itself.

mod common;

use std::collections::BTreeMap;

use common::{manifest, replay_json};

/// Files where spanwatch and tshark legitimately disagree on the packet count.
/// Each entry: path, spanwatch's count, the reason.
const PACKET_COUNT_EXCEPTIONS: &[(&str, u64, &str)] = &[(
    "generic/damaged-record-header-fuzz.pcap",
    1,
    "record 2 has an implausible captured length (1409179648 bytes): tshark re-reads the file \
     as a pcap variant by heuristic and finds 2 frames; a strict reader delivers the 1 valid \
     record and reports the damage",
)];

#[test]
fn every_corpus_capture_replays_with_tsharks_packet_count() {
    let mut failures = Vec::new();
    for row in manifest() {
        let file = row.file();
        let (out, json) = replay_json(&[&file], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(
            out.status.code(),
            Some(101),
            "{}: spanwatch panicked: {stderr}",
            row.path
        );
        assert!(
            out.status.success(),
            "{}: exit {:?}: {stderr}",
            row.path,
            out.status.code()
        );
        let json = json.unwrap_or_else(|| panic!("{}: summary is not JSON", row.path));
        let packets = json["packets"].as_u64().expect("packets");
        let expected = PACKET_COUNT_EXCEPTIONS
            .iter()
            .find(|(p, _, _)| *p == row.path)
            .map_or(row.packets, |(_, n, _)| *n);
        if packets != expected {
            failures.push(format!(
                "{}: {packets} packets, expected {expected}",
                row.path
            ));
        }
        let damaged = row.expected["file"]["damage"].is_string();
        let warned = json["warnings"].as_array().is_some_and(|w| !w.is_empty());
        if damaged != warned {
            failures.push(format!(
                "{}: damage in file {damaged}, warning reported {warned}: {}",
                row.path, json["warnings"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn damage_warning_names_file_record_and_offset() {
    let row = manifest()
        .into_iter()
        .find(|r| r.path == "generic/truncated-file-http-mime.pcap")
        .expect("truncated capture in manifest");
    let (out, json) = replay_json(&[&row.file()], &[]);
    assert!(out.status.success());
    let warning = json.unwrap()["warnings"][0].as_str().unwrap().to_string();
    assert!(
        warning.contains("truncated-file-http-mime.pcap"),
        "{warning}"
    );
    assert!(
        warning.contains("2696"),
        "names the record count: {warning}"
    );
    assert!(warning.contains("offset"), "names the offset: {warning}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning"),
        "warning also on stderr: {stderr}"
    );
}

#[test]
fn not_a_capture_is_exit_3_with_the_file_named() {
    let dir = std::env::temp_dir().join(format!("spanwatch-notcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("notes.txt");
    std::fs::write(&bogus, "this is not a capture file at all\n").unwrap();
    let (out, _) = replay_json(&[&bogus], &[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.txt"), "{stderr}");
    let missing = dir.join("missing.pcap");
    let (out, _) = replay_json(&[&missing], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pcap"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Conversations tshark lists in `-z conv,<proto>` for a file.
fn tshark_conversations(file: &std::path::Path, proto: &str) -> u64 {
    common::tshark(file, &["-q", "-z", &format!("conv,{proto}")])
        .lines()
        .filter(|l| l.contains("<->"))
        .count() as u64
}

/// Files whose flow counts legitimately differ from tshark's conversations:
/// path, extra (tcp, udp) flows spanwatch counts, and why.
const FLOW_COUNT_EXCEPTIONS: &[(&str, (u64, u64), &str)] = &[(
    "telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
    (0, 3),
    "tshark's conversation table never times out; spanwatch ends a UDP flow after 60 s of \
     silence. By tshark's own per-packet timestamps, three UDP conversations here are silent \
     for longer (DHCPv6 546/547 for 63 s, NetBIOS datagrams on 138 for 170 s, DHCP 68/67 for \
     seven years), so each of them is two flows",
)];

#[test]
fn flow_counts_per_transport_equal_tsharks_conversations() {
    let mut compared = 0;
    let mut failures = BTreeMap::new();
    for row in manifest() {
        if row.packets == 0 {
            continue;
        }
        let extra = FLOW_COUNT_EXCEPTIONS
            .iter()
            .find(|(p, _, _)| *p == row.path)
            .map_or((0, 0), |(_, extra, _)| *extra);
        let file = row.file();
        let (_, json) = replay_json(&[&file], &[]);
        let json = json.expect("summary");
        let ours = (
            json["flows"]["tcp"].as_u64().unwrap(),
            json["flows"]["udp"].as_u64().unwrap(),
        );
        let theirs = (
            tshark_conversations(&file, "tcp") + extra.0,
            tshark_conversations(&file, "udp") + extra.1,
        );
        compared += 1;
        if ours != theirs {
            failures.insert(
                row.path.clone(),
                format!("spanwatch (tcp, udp) = {ours:?}, expected from tshark = {theirs:?}"),
            );
        }
    }
    assert!(compared >= 10, "compared only {compared} captures");
    assert!(
        failures.is_empty(),
        "flow counts differ:\n{}",
        failures
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
