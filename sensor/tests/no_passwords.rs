//! No password seen on the wire appears in anything spanwatch writes: the
//! summary (text and JSON), stderr, the per-protocol logs, or the alerts. The passwords are
//! found independently: tshark's `mqtt.passwd` and `http.authbasic` fields for
//! every capture, and the Telnet passwords read by hand from the captures'
//! TCP streams (tshark has no Telnet password field).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Telnet passwords typed in the captures (tshark `-z follow,tcp,ascii`): the
/// Microsoft Telnet logins of the shared corpus, and the lab sample's labelled
/// Mirai, hydra and operator logins.
const TELNET_PASSWORDS: &[&str] = &["penguin", "xc3511", "vizxv", "Adm1n!2024"];

/// Telnet user names typed in the same logins.
const TELNET_USERS: &[&str] = &["administrator", "root", "admin"];

/// Passwords short enough to occur in unrelated text (a port, a topic) are
/// searched as whole JSON string values instead, and so are passwords that
/// occur in spanwatch's own output (e.g. "password"). A password that is also
/// a user name (admin/admin) is legitimately printed as the user name, one
/// that is a word of spanwatch's own output (the protocol name "mqtt") is
/// printed as that word, and a short all-digit one ("1234") cannot be told
/// from a number: these are left out of the value search.
const MIN_SUBSTRING_LEN: usize = 6;

fn tshark_field(file: &Path, field: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args([
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=\n",
            "-e",
            field,
        ])
        .output()
        .expect("tshark must be installed (bash .ci/deps installs it)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// (passwords, user names) in a capture, by tshark.
fn tshark_credentials(file: &Path) -> (Vec<String>, Vec<String>) {
    let mut passwords = tshark_field(file, "mqtt.passwd");
    let mut users = tshark_field(file, "mqtt.username");
    // http.authbasic is "user:password"; the password may itself hold ':'.
    for v in tshark_field(file, "http.authbasic") {
        if let Some((u, p)) = v.split_once(':') {
            users.push(u.to_string());
            passwords.push(p.to_string());
        }
    }
    passwords.retain(|p| !p.is_empty());
    (passwords, users)
}

fn string_values(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| string_values(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| string_values(x, out)),
        _ => {}
    }
}

#[test]
fn passwords_never_reach_summary_logs_or_stderr() {
    let mut files: Vec<PathBuf> = common::manifest().iter().map(|r| r.file()).collect();
    files.push(common::pcaps_dir().join("../lab-sample/capture.pcap"));
    let mut passwords: Vec<String> = TELNET_PASSWORDS.iter().map(|s| s.to_string()).collect();
    let mut users: Vec<String> = TELNET_USERS.iter().map(|s| s.to_string()).collect();
    for f in &files {
        let (p, u) = tshark_credentials(f);
        passwords.extend(p);
        users.extend(u);
    }
    passwords.sort();
    passwords.dedup();
    assert!(
        passwords.len() >= 10,
        "expected the captures' passwords, found {passwords:?}"
    );

    // spanwatch's own vocabulary: everything it prints about an empty capture.
    let empty = common::pcaps_dir().join("generic/pcap-empty-header-only.pcap");
    let mut vocabulary = String::new();
    for extra in [&["--json"][..], &[][..]] {
        let out = common::spanwatch()
            .args(["replay", "--no-progress"])
            .args(extra)
            .arg(&empty)
            .output()
            .unwrap();
        vocabulary.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    // Its words (keys, labels, protocol names such as "mqtt"), for the value search.
    let words: Vec<&str> = vocabulary
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();

    let logs = std::env::temp_dir().join(format!("spanwatch-nopw-{}", std::process::id()));
    let alerts = logs.with_extension("alerts.jsonl");
    let mut leaks = Vec::new();
    for f in &files {
        let _ = std::fs::remove_dir_all(&logs);
        let mut texts = Vec::new();
        let mut values = Vec::new();
        for json in [true, false] {
            let _ = std::fs::remove_file(&alerts);
            let mut cmd = common::spanwatch();
            cmd.args(["replay", "--no-progress", "--log-dir"])
                .arg(&logs)
                .arg("--alerts")
                .arg(&alerts)
                .arg(f);
            if json {
                cmd.arg("--json");
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{}", f.display());
            texts.push(String::from_utf8_lossy(&out.stdout).into_owned());
            texts.push(String::from_utf8_lossy(&out.stderr).into_owned());
            let alert_lines = std::fs::read_to_string(&alerts).unwrap_or_default();
            for line in alert_lines.lines() {
                string_values(&serde_json::from_str(line).unwrap(), &mut values);
            }
            texts.push(alert_lines);
            if json {
                string_values(&serde_json::from_slice(&out.stdout).unwrap(), &mut values);
            }
        }
        for entry in std::fs::read_dir(&logs).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for line in text.lines() {
                string_values(&serde_json::from_str(line).unwrap(), &mut values);
            }
            texts.push(text);
        }
        for pw in &passwords {
            let leaked = if pw.len() >= MIN_SUBSTRING_LEN && !vocabulary.contains(pw.as_str()) {
                texts.iter().any(|t| t.contains(pw.as_str()))
            } else if users.contains(pw)
                || words.contains(&pw.as_str())
                || pw.bytes().all(|b| b.is_ascii_digit())
            {
                false
            } else {
                values.iter().any(|v| v == pw)
            };
            if leaked {
                leaks.push(format!(
                    "{}: a password of length {}",
                    f.display(),
                    pw.len()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&logs);
    let _ = std::fs::remove_file(&alerts);
    // The message names the file and the length only, so a failure does not
    // print the password either.
    assert!(leaks.is_empty(), "passwords written:\n{}", leaks.join("\n"));
}
