//! `spanwatch extract`: the Parquet dataset read back by DuckDB and pyarrow
//! (`dataset_check.py`, readers that share no code with spanwatch). The
//! rows are the windows of the same run's JSON Lines, value for value; the
//! labels join agrees with labels.csv and hosts.csv; with a key, no MAC,
//! IP, name, user name or password that tshark finds in the capture is in
//! any byte of the output, and the pseudonyms are the keyed BLAKE3 hashes
//! the blake3 package computes: the same across two files for one key,
//! others for another key. Needs python3 with duckdb, pyarrow and blake3
//! (`.ci/deps` installs them) and tshark.
#![cfg(feature = "train")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Rows per row group in the first test (the lab sample has a few hundred
/// windows).
const ROW_GROUP_ROWS: u64 = 100;

fn lab_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab-sample")
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets/samples")
        .join(name)
}

/// A fresh directory for one test.
fn workdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spanwatch-extract-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create work directory");
    dir
}

fn extract(capture: &Path, out: &Path, extra: &[&str]) {
    let run = common::spanwatch()
        .arg("extract")
        .arg(capture)
        .arg("--out")
        .arg(out)
        .args(["--sensor-name", "lab-a"])
        .args(extra)
        .output()
        .expect("run spanwatch extract");
    assert!(
        run.status.success(),
        "extract failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Column `name` of a CSV file (no quoted commas in the columns read here).
fn csv_column(path: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let i = header.iter().position(|h| *h == name).expect("column");
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .nth(i)
                .expect("field")
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn every_window_of_the_run_is_one_row_and_the_labels_join_matches_labels_csv() {
    let dir = workdir("labels");
    let out = dir.join("dataset");
    let jsonl = dir.join("windows.jsonl");
    // Small row groups: the writer holds at most this many rows.
    let config = dir.join("spanwatch.toml");
    std::fs::write(
        &config,
        format!("[dataset]\nrow_group_rows = {ROW_GROUP_ROWS}\n"),
    )
    .unwrap();
    let lab = lab_sample();
    extract(
        &lab.join("capture.pcap"),
        &out,
        &[
            "--labels",
            lab.join("labels.csv").to_str().unwrap(),
            "--windows",
            jsonl.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let report = common::dataset_check(
        &out,
        &[
            "--labels",
            lab.join("labels.csv").to_str().unwrap(),
            "--hosts",
            lab.join("hosts.csv").to_str().unwrap(),
        ],
    );
    let windows = &report["windows"];

    // The same run's JSON Lines: one row per (device, window), same values.
    let text = std::fs::read_to_string(&jsonl).expect("read windows.jsonl");
    let mut expected: BTreeMap<(String, String), Value> = BTreeMap::new();
    for line in text.lines() {
        let w: Value = serde_json::from_str(line).expect("JSON line");
        let key = (
            w["device"].as_str().unwrap().to_string(),
            w["start"].as_str().unwrap().to_string(),
        );
        assert!(expected.insert(key, w).is_none(), "a window twice in JSONL");
    }
    assert!(expected.len() > 100, "too few windows: {}", expected.len());
    assert_eq!(windows["duckdb_rows"].as_u64(), Some(expected.len() as u64));
    assert_eq!(
        windows["pyarrow_rows"].as_u64(),
        Some(expected.len() as u64)
    );
    let rows = windows["rows"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for r in rows {
        let key = (
            r["device"].as_str().unwrap().to_string(),
            r["start"].as_str().unwrap().to_string(),
        );
        let w = expected
            .get(&key)
            .unwrap_or_else(|| panic!("row {key:?} not in JSONL"));
        assert_eq!(r["end"], w["end"], "{key:?}");
        let values = r["values"].as_object().unwrap();
        // Every feature of the JSONL line, by name (device, start, end aside).
        assert_eq!(values.len() + 3, w.as_object().unwrap().len(), "{key:?}");
        for (name, v) in values {
            assert_eq!(v.as_f64(), w[name].as_f64(), "{key:?} {name}");
        }
        assert!(seen.insert(key), "a window twice in Parquet");
    }

    // Partitions: this sensor, and the date of the rows' start (UTC).
    let dates: BTreeSet<&str> = rows
        .iter()
        .map(|r| &r["start"].as_str().unwrap()[..10])
        .collect();
    let partitions: Vec<(String, String)> = windows["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    let want: Vec<(String, String)> = dates
        .iter()
        .map(|d| ("lab-a".into(), d.to_string()))
        .collect();
    assert_eq!(partitions, want);
    for f in windows["files"].as_array().unwrap() {
        let rows = f["rows"].as_u64().unwrap();
        assert_eq!(
            f["row_groups"].as_u64(),
            Some(rows.div_ceil(ROW_GROUP_ROWS)),
            "{f}"
        );
        let path = f["path"].as_str().unwrap();
        assert!(
            path.starts_with("windows/sensor=lab-a/date=") && path.ends_with(".parquet"),
            "{path}"
        );
    }

    // The labels: every row agrees with labels.csv and hosts.csv, and
    // every phase with an attacker has windows of it labelled so.
    let labels = &report["labels"];
    assert_eq!(labels["problems"], serde_json::json!([]), "{labels}");
    let phases = csv_column(&lab.join("labels.csv"), "phase");
    let attackers = csv_column(&lab.join("labels.csv"), "attacker_ip");
    for (phase, attacker) in phases.iter().zip(&attackers) {
        if attacker.is_empty() {
            continue;
        }
        let n = labels["attacker_windows"][phase].as_u64().unwrap_or(0);
        assert!(n > 0, "no window of {attacker} labelled {phase} attacker");
    }

    // The inventory: one row per host of hosts.csv, by MAC.
    let devices = &report["devices"];
    let macs: BTreeSet<String> = csv_column(&lab.join("hosts.csv"), "mac")
        .into_iter()
        .collect();
    assert_eq!(devices["duckdb_rows"].as_u64(), Some(macs.len() as u64));
    assert_eq!(devices["pyarrow_rows"].as_u64(), Some(macs.len() as u64));
    let found = strings(&devices["strings"]);
    for mac in &macs {
        assert!(found.contains(mac), "{mac} not in devices.parquet");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What identifies hosts in a capture, by tshark: MACs, IPs, MQTT client
/// ids, user names and passwords, HTTP Basic credentials, User-Agent and
/// Server, DHCP host names; and the names of hosts.csv.
fn identifying(capture: &Path, hosts: &Path) -> BTreeSet<String> {
    let fields = [
        "eth.src",
        "eth.dst",
        "ip.src",
        "ip.dst",
        "mqtt.clientid",
        "mqtt.username",
        "mqtt.passwd",
        "http.authbasic",
        "http.user_agent",
        "http.server",
        "dhcp.option.hostname",
    ];
    let mut found = BTreeSet::new();
    for field in fields {
        for value in common::tshark_values(capture, field) {
            let mut parts = vec![value.as_str()];
            if field == "http.authbasic" {
                // user:password: both count.
                parts.extend(value.split(':'));
            }
            for part in parts {
                if part.len() >= 3 && part != "ff:ff:ff:ff:ff:ff" {
                    found.insert(part.to_string());
                }
            }
        }
    }
    found.extend(csv_column(hosts, "name"));
    found
}

/// Where a device's names come from (`names` is `source=name`).
const NAME_SOURCES: [&str; 7] = [
    "dhcp_hostname",
    "mqtt_client_id",
    "mqtt_user",
    "http_user_agent",
    "http_server",
    "telnet_banner",
    "coap_resource",
];

/// The words of the format itself, lower case: column and feature names,
/// roles, protocols, name sources, Parquet's schema names, and the phases
/// of `labels`.
fn vocabulary(labels: &Path) -> String {
    let features = common::spanwatch()
        .arg("features")
        .output()
        .expect("run spanwatch features");
    let mut words: Vec<String> = String::from_utf8_lossy(&features.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    words.extend(
        [
            "device start end phase role attacker target mac vendor ips names roles protocols zone",
            "first_seen last_seen mqtt-broker mqtt-client coap-server coap-client http-server",
            "http-client telnet-server telnet-client gateway scanner-like mqtt coap http telnet",
            // Parquet's own: the schema's root, list fields, the writer.
            "root list item element polars",
        ]
        .join(" ")
        .split(' ')
        .map(str::to_string),
    );
    words.extend(NAME_SOURCES.iter().map(|s| s.to_string()));
    words.extend(csv_column(labels, "phase"));
    words.join(" ").to_lowercase()
}

/// `text` with every pseudonym (`mac-`, `ip-` or `name-` and 24 hex
/// digits) cut out.
fn without_pseudonyms(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for prefix in ["mac-", "ip-", "name-"] {
            if let Some(after) = rest.strip_prefix(prefix)
                && after.len() >= 24
                && after.as_bytes()[..24]
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            {
                rest = &after[24..];
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        out.extend(chars.next());
        rest = chars.as_str();
    }
    out
}

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, (0..32u8).map(|i| i ^ byte).collect::<Vec<u8>>()).expect("write key");
    path
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn with_a_key_nothing_identifying_is_written_and_pseudonyms_are_stable_per_key() {
    let dir = workdir("key");
    let key1 = key_file(&dir, "one.key", 0x11);
    let key2 = key_file(&dir, "two.key", 0x22);
    let (benign, attack) = (sample("benign"), sample("attack"));
    let runs = [
        ("benign-k1", &benign, &key1),
        ("attack-k1", &attack, &key1),
        ("attack-k2", &attack, &key2),
    ];
    let hosts = attack.join("hosts.csv");
    let macs = csv_column(&hosts, "mac");
    let ips = csv_column(&hosts, "ip");
    let mut reports = BTreeMap::new();
    for (name, capture, key) in runs {
        let out = dir.join(name);
        extract(
            &capture.join("capture.pcap"),
            &out,
            &[
                "--pseudonymize-key",
                key.to_str().unwrap(),
                "--labels",
                capture.join("labels.csv").to_str().unwrap(),
            ],
        );
        let mut secrets = identifying(&capture.join("capture.pcap"), &capture.join("hosts.csv"));
        assert!(secrets.len() > 30, "tshark found too little");
        // A value that is also a word of the format itself (the MQTT user
        // `mqtt` is in `mqtt-broker`, a password `root` is the name of every
        // Parquet schema's root) cannot be judged by a search: the structure
        // check below covers it.
        let vocabulary = vocabulary(&capture.join("labels.csv"));
        let before = secrets.len();
        secrets.retain(|s| !vocabulary.contains(&s.to_lowercase()));
        assert!(
            before - secrets.len() <= 2,
            "too many values are words of the format"
        );
        // No secret in any byte of any file, nor in any value read back.
        let files = files_under(&out);
        assert!(files.len() >= 2, "{files:?}");
        // Raw bytes: the exact text, and MACs in capitals too (a search
        // ignoring case would find four letters in compressed binary).
        for f in &files {
            let bytes = std::fs::read(f).expect("read output");
            for s in &secrets {
                let is_mac = s.len() == 17 && s.matches(':').count() == 5;
                let upper = if is_mac { s.to_uppercase() } else { s.clone() };
                for form in [s.clone(), upper] {
                    assert!(
                        !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                        "{} holds an identifying value of the capture",
                        f.display()
                    );
                }
            }
        }
        let report = common::dataset_check(
            &out,
            &[
                "--key",
                key.to_str().unwrap(),
                "--macs",
                &macs.join(","),
                "--ips",
                &ips.join(","),
            ],
        );
        // Values read back: pseudonyms aside (their hex may hold `1234` by
        // chance; the structure check covers them), no secret in any.
        for table in ["windows", "devices"] {
            for value in strings(&report[table]["strings"]) {
                let rest = without_pseudonyms(&value).to_lowercase();
                for s in &secrets {
                    assert!(
                        !rest.contains(&s.to_lowercase()),
                        "a {table} value of {name} holds an identifying value of the capture"
                    );
                }
            }
        }
        // Structure: every identifying column holds pseudonyms only.
        for value in strings(&report["devices"]["strings"]) {
            let pseudonym = match value.split_once('=') {
                Some((source, name)) if NAME_SOURCES.contains(&source) => name.starts_with("name-"),
                _ => {
                    value.starts_with("mac-")
                        || value.starts_with("ip-")
                        || vocabulary.contains(&value.to_lowercase())
                }
            };
            assert!(
                pseudonym,
                "a devices value of {name} is not a pseudonym nor a word of the format"
            );
        }
        reports.insert(name, report);
    }

    // The devices are the hosts, under the pseudonyms blake3 computes.
    let device_ids = |name: &str| -> BTreeSet<String> {
        let r = &reports[name];
        let mut ids = BTreeSet::new();
        for v in strings(&r["devices"]["strings"]) {
            if v.starts_with("mac-") {
                ids.insert(v);
            }
        }
        ids
    };
    let expected = |name: &str, values: &[String]| -> BTreeSet<String> {
        values
            .iter()
            .map(|v| reports[name]["pseudonyms"][v].as_str().unwrap().to_string())
            .collect()
    };
    let hosts_k1 = expected("attack-k1", &macs);
    let hosts_k2 = expected("attack-k2", &macs);
    assert_eq!(device_ids("attack-k1"), hosts_k1);
    assert_eq!(device_ids("attack-k2"), hosts_k2);
    assert!(
        hosts_k1.is_disjoint(&hosts_k2),
        "two keys gave a common pseudonym"
    );
    // The benign run (same lab, no attacker) under the same key: the same
    // pseudonym for each of its hosts, so two files join on them.
    let benign_ids = device_ids("benign-k1");
    assert!(benign_ids.len() >= macs.len() - 1, "{benign_ids:?}");
    assert!(benign_ids.is_subset(&hosts_k1), "{benign_ids:?}");
    // Windows name their device by the same pseudonym.
    for name in ["benign-k1", "attack-k1"] {
        for r in reports[name]["windows"]["rows"].as_array().unwrap() {
            assert!(hosts_k1.contains(r["device"].as_str().unwrap()), "{r}");
        }
    }
    // Addresses too: the hosts' IPs, pseudonymised.
    let ip_ids: BTreeSet<String> = strings(&reports["attack-k1"]["devices"]["strings"])
        .into_iter()
        .filter(|v| v.starts_with("ip-"))
        .collect();
    assert_eq!(ip_ids, expected("attack-k1", &ips));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `spanwatch train` on an extracted dataset: it reads every row DuckDB
/// reads, and leaves out the rows DuckDB finds in a labelled phase.
#[test]
fn train_reads_the_dataset_and_leaves_the_labelled_phases_out() {
    let dir = workdir("train");
    let out = dir.join("dataset");
    let lab = lab_sample();
    extract(
        &lab.join("capture.pcap"),
        &out,
        &["--labels", lab.join("labels.csv").to_str().unwrap()],
    );
    let duckdb = Command::new("python3")
        .arg("-c")
        .arg(
            "import duckdb, sys\n\
             q = \"SELECT count(*), count(phase) FROM read_parquet(?, hive_partitioning = true)\"\n\
             print(*duckdb.execute(q, [sys.argv[1] + '/windows/**/*.parquet']).fetchone())",
        )
        .arg(&out)
        .output()
        .expect("run python3 (Debian package python3)");
    assert!(
        duckdb.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&duckdb.stderr)
    );
    let counts: Vec<u64> = String::from_utf8_lossy(&duckdb.stdout)
        .split_whitespace()
        .map(|n| n.parse().expect("a count"))
        .collect();
    let (rows, in_phases) = (counts[0], counts[1]);
    assert!(
        in_phases > 0 && in_phases < rows,
        "{rows} rows, {in_phases} labelled"
    );

    let model = dir.join("model");
    let run = common::spanwatch()
        .args(["train", "--k-min", "2", "--k-max", "3", "--out"])
        .arg(&model)
        .arg(&out)
        .output()
        .expect("run spanwatch train");
    assert!(
        run.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let artifact: Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).expect("model.json"))
            .expect("JSON");
    let training = &artifact["training"];
    assert_eq!(training["windows"].as_u64(), Some(rows), "{training}");
    assert_eq!(
        training["attack_windows_excluded"].as_u64(),
        Some(in_phases),
        "{training}"
    );

    // A damaged file is an error naming it, not a panic.
    let part = files_under(&out.join("windows"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a windows file");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let run = common::spanwatch()
        .args(["train", "--out"])
        .arg(dir.join("model2"))
        .arg(&out)
        .output()
        .expect("run spanwatch train");
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    let name = part.file_name().unwrap().to_string_lossy();
    assert!(stderr.contains(name.as_ref()), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
