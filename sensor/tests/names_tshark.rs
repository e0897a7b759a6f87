//! The names devices reveal on the wire, against tshark on the shared
//! captures: DHCP messages, message types, host names and vendor classes
//! (tshark's `dhcp.option.dhcp`, `dhcp.option.hostname` and
//! `dhcp.option.vendor_class_id`) from `spanwatch replay --json`, and the
//! values of HTTP `Server` headers (tshark's `http.server`) from the `server`
//! field of the responses in `http.jsonl`. The captures compared are the
//! corpus files whose protocol hierarchy (`phs/<path>.txt`, tshark's `-z
//! io,phs`) lists the protocol and that tshark reads to their end (no
//! `tshark_read_error` in MANIFEST.tsv). Where spanwatch and tshark legitimately
//! disagree, an exception names the file and the reason; an exception that no
//! longer matches a difference fails the test.

mod common;
mod netlab;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// (file, reason) of the captures whose `Server` values differ from tshark's.
const SERVER_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "http/http-lowercase-headers-port1234.pcap",
        "tshark does not recognise this response with lower-case header names (corpus README)",
    ),
    (
        "telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
        "four HTTP exchanges run inside SOCKS connections (port 1080) that tshark's SOCKS \
         dissector hands to HTTP; spanwatch leaves SOCKS flows opaque",
    ),
];

/// A directory under the system temp dir for tshark's output and the logs,
/// removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("sw-names-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch directory");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The corpus files whose tshark protocol hierarchy has a `protocol` line,
/// without the ones tshark cannot read to the end.
fn captures_with(protocol: &str) -> Vec<common::ManifestRow> {
    common::manifest()
        .into_iter()
        .filter(|row| row.expected.get("tshark_read_error").is_none())
        .filter(|row| {
            let phs = common::pcaps_dir()
                .join("phs")
                .join(format!("{}.txt", row.path));
            std::fs::read_to_string(&phs)
                .unwrap_or_else(|e| panic!("{}: {e}", phs.display()))
                .lines()
                .any(|l| l.split_whitespace().next() == Some(protocol))
        })
        .collect()
}

fn counts(map: BTreeMap<String, u64>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

#[test]
fn dhcp_messages_and_names_equal_tsharks() {
    let scratch = Scratch::new("dhcp");
    let files = captures_with("dhcp");
    assert!(files.len() >= 2, "the corpus has two captures with DHCP");
    let mut differences = Vec::new();
    let mut messages = 0;
    for row in &files {
        let rows = netlab::tshark_fields_in(
            &scratch.0,
            &row.file(),
            "dhcp",
            &[
                "dhcp.option.dhcp",
                "dhcp.option.hostname",
                "dhcp.option.vendor_class_id",
            ],
        );
        messages += rows.len();
        let expected = json!({
            "messages": rows.len(),
            "message_type": counts(netlab::count_values(&rows, 0)),
            "hostnames": netlab::distinct(&rows, 1),
            "vendor_classes": netlab::distinct(&rows, 2),
            // tshark finds no malformed DHCP frame in the corpus.
            "anomalies": {},
        });
        let (out, summary) = common::replay_json(&[&row.file()], &[]);
        assert!(
            out.status.success(),
            "{}: {}",
            row.path,
            String::from_utf8_lossy(&out.stderr)
        );
        let actual = &summary.expect("summary")["protocols"]["dhcp"];
        for (key, want) in expected.as_object().into_iter().flatten() {
            if actual[key] != *want {
                differences.push(format!(
                    "{} dhcp.{key}: spanwatch {} tshark {want}",
                    row.path, actual[key]
                ));
            }
        }
    }
    assert!(messages >= 12, "tshark sees only {messages} DHCP messages");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// The `server` values of the responses in an `http.jsonl`, sorted.
fn logged_servers(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut servers: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a log line is JSON"))
        .filter(|v| v["event"] == "response")
        .filter_map(|v| v["server"].as_str().map(str::to_string))
        .collect();
    servers.sort();
    servers
}

#[test]
fn http_server_values_equal_tsharks() {
    let scratch = Scratch::new("http");
    let files = captures_with("http");
    assert!(files.len() >= 30, "only {} captures with HTTP", files.len());
    let mut differences = BTreeMap::new();
    let mut compared = 0;
    for (i, row) in files.iter().enumerate() {
        let rows =
            netlab::tshark_fields_in(&scratch.0, &row.file(), "http.response", &["http.server"]);
        // Every value: a frame may carry several pipelined responses.
        let mut theirs: Vec<String> = rows.iter().flat_map(|r| r[0].iter().cloned()).collect();
        theirs.sort();
        let logs = scratch.0.join(format!("logs-{i}"));
        let out = common::spanwatch()
            .args(["replay", "--no-progress", "--log-dir"])
            .arg(&logs)
            .arg(row.file())
            .output()
            .expect("run spanwatch");
        assert!(
            out.status.success(),
            "{}: {}",
            row.path,
            String::from_utf8_lossy(&out.stderr)
        );
        let ours = logged_servers(&logs.join("http.jsonl"));
        compared += theirs.len();
        if ours != theirs {
            differences.insert(
                row.path.clone(),
                format!("spanwatch {ours:?} tshark {theirs:?}"),
            );
        }
    }
    assert!(compared >= 60, "tshark saw only {compared} Server values");
    for (file, reason) in SERVER_EXCEPTIONS {
        assert!(
            differences.remove(*file).is_some(),
            "{file} agrees with tshark now; drop its exception ({reason})"
        );
    }
    assert!(
        differences.is_empty(),
        "{}",
        differences
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
