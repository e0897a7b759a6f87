//! The PNG plots, through the binary: `eval --plot` on the bundled attack
//! sample draws the timeline and its `--json` agrees with the sample's
//! labels; `train` writes its three plots beside the model and the model
//! card links them. The PNG files are checked against the PNG specification
//! (signature, chunk layout, CRCs, IHDR) by code of their own, not by the
//! encoder that wrote them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The timeline's size, as `spanwatch eval --help` documents it.
const TIMELINE_SIZE: (u32, u32) = (1600, 900);
/// The training plots' size, as `spanwatch train --help` documents it.
const TRAINING_PLOT_SIZE: (u32, u32) = (1200, 800);

/// Phases the default rules detect when a capture labels them (the list
/// `tests/rules_lab.rs` holds the rules to).
const RULE_PHASES: &[&str] = &[
    "telnet_bruteforce_hydra",
    "mqtt_bruteforce",
    "mqtt_wildcard_subscribe",
    "mqtt_publish_flood",
    "coap_discovery_tamper",
    "http_basic_auth_bruteforce",
    "http_firmware_download",
    "mirai_telnet_login",
    "recon_nmap_syn_scan",
    "syn_flood_hping3",
];

/// The PNG file signature (PNG specification, 3rd ed., section 5.2).
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/samples")
        .join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spanwatch-plots-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// CRC-32 as PNG uses it (ISO 3309 / ITU-T V.42: reflected, polynomial
/// 0xEDB88320, initial and final XOR 0xFFFFFFFF; PNG spec section 5.5).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc ^ 0xFFFF_FFFF
}

/// Checks that `path` is a whole PNG file (signature; chunks of length,
/// type, data and a matching CRC; IHDR first with 13 bytes; at least one
/// IDAT; IEND last and empty) and returns its width and height (IHDR's
/// first two fields, bytes 16..24 of the file).
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.display();
    assert!(
        bytes.len() > 8 && bytes[..8] == PNG_SIGNATURE,
        "{name}: no PNG signature"
    );
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let mut chunks = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        assert!(at + 12 <= bytes.len(), "{name}: chunk header cut at {at}");
        let len = be32(at) as usize;
        let end = at + 8 + len;
        assert!(
            end + 4 <= bytes.len(),
            "{name}: chunk at {at} runs past the end"
        );
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).to_string();
        assert_eq!(
            crc32(&bytes[at + 4..end]),
            be32(end),
            "{name}: bad CRC of the {kind} chunk at {at}"
        );
        chunks.push((kind, len));
        at = end + 4;
    }
    assert_eq!(
        chunks.first(),
        Some(&("IHDR".to_string(), 13)),
        "{name}: IHDR first"
    );
    assert!(chunks.iter().any(|(k, _)| k == "IDAT"), "{name}: no IDAT");
    assert_eq!(
        chunks.last(),
        Some(&("IEND".to_string(), 0)),
        "{name}: IEND last"
    );
    // IHDR: bit depth 8, colour type 2 (RGB) or 6 (RGBA), compression,
    // filter and interlace method 0 or 1.
    assert_eq!(bytes[24], 8, "{name}: bit depth");
    assert!(
        matches!(bytes[25], 2 | 6),
        "{name}: colour type {}",
        bytes[25]
    );
    (be32(16), be32(20))
}

/// One row of a lab labels.csv: start, end, phase (the notes after may
/// hold commas; the first three fields never do).
fn labels(path: &Path) -> Vec<(f64, f64, String)> {
    let text = std::fs::read_to_string(path).expect("labels");
    let mut lines = text.lines();
    assert_eq!(
        lines
            .next()
            .map(|h| h.split(',').take(3).collect::<Vec<_>>()),
        Some(vec!["start_epoch", "end_epoch", "phase"])
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ',').collect();
            (
                f[0].parse().expect("start"),
                f[1].parse().expect("end"),
                f[2].to_string(),
            )
        })
        .collect()
}

/// Seconds since the epoch of an RFC 3339 time, by GNU date.
fn epoch(ts: &str) -> f64 {
    let out = Command::new("date")
        .args(["-u", "-d", ts, "+%s.%N"])
        .output()
        .expect("run date");
    assert!(out.status.success(), "date cannot read {ts:?}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("date prints a number")
}

#[test]
fn eval_draws_the_timeline_and_its_json_agrees_with_the_labels() {
    let dir = scratch("eval");
    let plot = dir.join("timeline.png");
    let labels_path = sample("attack/labels.csv");
    let out = common::spanwatch()
        .arg("eval")
        .arg(sample("attack/capture.pcap"))
        .arg("--labels")
        .arg(&labels_path)
        .arg("--json")
        .arg("--plot")
        .arg(&plot)
        .output()
        .expect("run spanwatch eval");
    assert!(
        out.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(png_size(&plot), TIMELINE_SIZE);

    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("eval --json");
    let phases = json["phases"].as_array().expect("phases");
    let labelled = labels(&labels_path);
    assert_eq!(
        phases.len(),
        labelled.len(),
        "one result per labelled phase"
    );
    for (start, end, name) in &labelled {
        let mine: Vec<&serde_json::Value> = phases
            .iter()
            .filter(|p| p["phase"] == name.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "phase {name} appears once");
        let p = mine[0];
        for (field, want) in [("start", start), ("end", end)] {
            let got = epoch(p[field].as_str().expect("a time"));
            assert!(
                (got - want).abs() < 5e-4,
                "{name}: {field} {got} in the JSON, {want} in labels.csv"
            );
        }
        if RULE_PHASES.contains(&name.as_str()) {
            assert_eq!(
                p["detected"], true,
                "{name} is detected by the default rules"
            );
            assert!(
                p["time_to_detect_secs"].is_number(),
                "{name}: time to detect"
            );
        }
    }
    assert!(
        labelled
            .iter()
            .filter(|(_, _, n)| RULE_PHASES.contains(&n.as_str()))
            .count()
            >= 8,
        "the attack sample labels the phases the rules detect"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_writes_three_plots_that_the_model_card_links() {
    let dir = scratch("train");
    let out = common::spanwatch()
        .arg("train")
        .arg(sample("benign/capture.pcap"))
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run spanwatch train");
    assert!(
        out.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let card = std::fs::read_to_string(dir.join("MODEL_CARD.md")).expect("model card");
    for plot in ["scores.png", "clusters.png", "projection.png"] {
        assert_eq!(png_size(&dir.join(plot)), TRAINING_PLOT_SIZE, "{plot}");
        assert!(
            card.contains(&format!("]({plot})")),
            "the card links {plot}"
        );
    }
    // Every relative link of the card points at a file beside it.
    for link in card.split("](").skip(1) {
        let target = link.split(')').next().unwrap_or_default();
        assert!(
            dir.join(target).is_file(),
            "the card links {target}, which is missing"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
