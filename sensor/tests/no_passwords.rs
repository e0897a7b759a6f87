//! No password seen on the wire appears in anything spanwatch writes: the
//! summary (text and JSON), stdout and stderr, the per-protocol logs, the
//! alerts (rules, model and profiles), and the feature windows (`--windows`);
//! with the `train` feature, the Parquet datasets of `spanwatch extract` too
//! (read back by pyarrow).
//!
//! The passwords are taken from the traffic itself, independently of
//! spanwatch: tshark's `mqtt.passwd` and `http.authbasic` fields, and every
//! line a Telnet client types after the server's `Password:` prompt
//! (tshark's TCP payloads of the streams it dissects as Telnet, with the
//! RFC 854 commands removed). The captures are the shared corpus, the shared
//! lab sample and the bundled samples.
//!
//! A password is found where it occurs as a word: not inside a longer run of
//! letters, digits and '_' ("oot" typed by hydra is not found in "root", nor
//! "1234" in "12345"). Every other occurrence is a leak unless the exact
//! output field it occurs in holds, as a whole, something else the password
//! happens to equal (see `exempt`): a user name, a request target, a rule's
//! name, a protocol's name.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The server prompt after which a Telnet client types a password (login(1),
/// busybox login, Microsoft Telnet: "Password: "), compared lower case.
const PASSWORD_PROMPT: &str = "password:";

/// Prompts after which a Telnet client types a user name.
const USER_PROMPTS: &[&str] = &["login:", "username:"];

/// RFC 854: IAC, and the commands with an option byte (WILL, WONT, DO, DONT),
/// sub-negotiation begin (SB) and end (SE).
const IAC: u8 = 255;
const SB: u8 = 250;
const SE: u8 = 240;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Fields holding a user name (logs, alerts' evidence, summary lists, device
/// names): the traffic's own user name may equal a password (admin/admin).
const USER_FIELDS: &[&str] = &[
    "user",
    "auth_user",
    "username",
    "usernames",
    "basic_auth_users",
    "names",
];

/// Fields holding a request target (the HTTP log, alert evidence): a
/// directory may be named like a password ("/admin/" and the password admin).
const URI_FIELDS: &[&str] = &["uri"];

/// Fields holding a rule's name: "... known default credential",
/// "... password sent without TLS" name passwords of hydra's dictionary.
const SIGNATURE_FIELDS: &[&str] = &["signature"];

/// Fields holding spanwatch's name of a protocol, alone or as the prefix of
/// an event or role ("mqtt", "mqtt.connect", "mqtt-client"): the lab's MQTT
/// clients use "mqtt" as a password.
const PROTOCOL_FIELDS: &[&str] = &["app_proto", "event", "protocols", "roles"];

/// The protocols spanwatch names.
const PROTOCOLS: &[&str] = &["http", "mqtt", "coap", "telnet", "dhcp"];

/// Fixed phrases of the text summary: the label of
/// `protocols.mqtt.connect_with_password` in the JSON summary.
const TEXT_PHRASES: &[&str] = &["CONNECT with password"];

/// Passwords and user names in a capture's traffic.
#[derive(Default)]
struct Credentials {
    passwords: BTreeSet<String>,
    users: BTreeSet<String>,
    /// HTTP request targets (tshark's http.request.uri).
    uris: BTreeSet<String>,
}

/// The data bytes of a Telnet segment, RFC 854 commands and sub-negotiations
/// removed (IAC IAC is a data byte 255).
fn telnet_data(payload: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut i = 0;
    while i < payload.len() {
        if payload[i] != IAC {
            data.push(payload[i]);
            i += 1;
            continue;
        }
        match payload.get(i + 1) {
            Some(&IAC) => {
                data.push(IAC);
                i += 2;
            }
            Some(&SB) => {
                i = payload[i..]
                    .windows(2)
                    .position(|w| w == [IAC, SE])
                    .map_or(payload.len(), |at| i + at + 2);
            }
            Some(c) if (WILL..=DONT).contains(c) => i += 3,
            _ => i += 2,
        }
    }
    data
}

fn unhex(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// A Telnet stream's client side cut into lines, each with what the server
/// printed since the line before.
#[derive(Default)]
struct TelnetStream {
    server_text: Vec<u8>,
    line: Vec<u8>,
}

/// Passwords and user names typed in the Telnet streams of a capture. The
/// server of a stream is the end on the lower port (23 in these captures).
fn telnet_credentials(file: &Path, found: &mut Credentials) {
    let rows = common::tshark(
        file,
        &[
            "-Y",
            "telnet && tcp.len > 0 && !tcp.analysis.retransmission",
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.payload",
        ],
    );
    let mut streams: std::collections::BTreeMap<String, TelnetStream> = Default::default();
    for row in rows.lines() {
        let cells: Vec<&str> = row.split('\t').collect();
        let [stream, src, dst, payload] = cells[..] else {
            panic!("{}: tshark row {row:?}", file.display());
        };
        let to_server = dst.parse::<u16>().unwrap() < src.parse::<u16>().unwrap();
        let state = streams.entry(stream.to_string()).or_default();
        let data = telnet_data(&unhex(payload));
        if !to_server {
            state.server_text.extend_from_slice(&data);
            continue;
        }
        for byte in data {
            if !matches!(byte, b'\r' | b'\n' | 0) {
                state.line.push(byte);
                continue;
            }
            if state.line.is_empty() {
                continue;
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut state.line)).into_owned();
            let prompt = String::from_utf8_lossy(&std::mem::take(&mut state.server_text))
                .trim_end()
                .to_lowercase();
            if prompt.ends_with(PASSWORD_PROMPT) {
                found.passwords.insert(line);
            } else if USER_PROMPTS.iter().any(|p| prompt.ends_with(p)) {
                found.users.insert(line);
            }
        }
    }
}

/// Every credential of a capture, by tshark.
fn credentials(file: &Path) -> Credentials {
    let mut found = Credentials::default();
    found
        .passwords
        .extend(common::tshark_values(file, "mqtt.passwd"));
    found
        .users
        .extend(common::tshark_values(file, "mqtt.username"));
    // http.authbasic is "user:password"; the password may itself hold ':'.
    for v in common::tshark_values(file, "http.authbasic") {
        if let Some((u, p)) = v.split_once(':') {
            found.users.insert(u.to_string());
            found.passwords.insert(p.to_string());
        }
    }
    telnet_credentials(file, &mut found);
    found
        .uris
        .extend(common::tshark_values(file, "http.request.uri"));
    found.passwords.retain(|p| !p.is_empty());
    found
}

/// Whether `word` occurs in `text` other than inside a longer word.
fn occurs_as_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_word)
            && !text[at + word.len()..].chars().next().is_some_and(is_word)
    })
}

/// One piece of output: where it is (file, line, JSON path), its last JSON
/// key if any, and its text.
struct Piece {
    place: String,
    key: Option<String>,
    text: String,
}

/// The keys and string values of a JSON value, as pieces.
fn json_pieces(v: &serde_json::Value, place: &str, key: Option<&str>, out: &mut Vec<Piece>) {
    match v {
        serde_json::Value::String(s) => out.push(Piece {
            place: place.to_string(),
            key: key.map(str::to_string),
            text: s.clone(),
        }),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                json_pieces(x, &format!("{place}[{i}]"), key, out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                let inner = format!("{place}.{k}");
                // A map's keys may come from the traffic (methods, users):
                // they are searched as values of the map's field.
                out.push(Piece {
                    place: inner.clone(),
                    key: key.map(str::to_string),
                    text: k.clone(),
                });
                json_pieces(x, &inner, Some(k), out);
            }
        }
        _ => {}
    }
}

/// A JSON Lines file, as pieces.
fn json_lines_pieces(name: &str, text: &str, out: &mut Vec<Piece>) {
    for (n, line) in text.lines().enumerate() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name} line {}: not JSON ({e})", n + 1));
        json_pieces(&value, &format!("{name}:{}", n + 1), None, out);
    }
}

/// Plain text, one piece per line.
fn text_pieces(name: &str, text: &str, out: &mut Vec<Piece>) {
    for (n, line) in text.lines().enumerate() {
        out.push(Piece {
            place: format!("{name}:{}", n + 1),
            key: None,
            text: line.to_string(),
        });
    }
}

/// Everything `spanwatch replay` writes about `file`, with every output on:
/// the JSON summary and the text summary (stdout), stderr, the alerts, the
/// per-protocol logs, the feature windows.
fn replay_outputs(file: &Path, scratch: &Path) -> Vec<Piece> {
    let logs = scratch.join("logs");
    let alerts = scratch.join("alerts.jsonl");
    let windows = scratch.join("windows.jsonl");
    let mut pieces = Vec::new();
    for json in [true, false] {
        let _ = std::fs::remove_dir_all(&logs);
        let _ = std::fs::remove_file(&alerts);
        let _ = std::fs::remove_file(&windows);
        let mut cmd = common::spanwatch();
        cmd.args(["replay", "--no-progress", "--log-dir"])
            .arg(&logs)
            .arg("--alerts")
            .arg(&alerts)
            .arg("--windows")
            .arg(&windows)
            .arg(file);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if json {
            let summary: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{}: summary not JSON ({e})", file.display()));
            json_pieces(&summary, "summary.json", None, &mut pieces);
        } else {
            text_pieces("summary.txt", &stdout, &mut pieces);
        }
        text_pieces("stderr", &String::from_utf8_lossy(&out.stderr), &mut pieces);
        for (name, path) in [("alerts.jsonl", &alerts), ("windows.jsonl", &windows)] {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            json_lines_pieces(name, &text, &mut pieces);
        }
        for entry in std::fs::read_dir(&logs).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            json_lines_pieces(&name, &std::fs::read_to_string(&path).unwrap(), &mut pieces);
        }
    }
    #[cfg(feature = "train")]
    dataset_pieces(file, scratch, &mut pieces);
    pieces
}

/// Every string of the Parquet datasets `spanwatch extract` writes for
/// `file` (not pseudonymised), read back by pyarrow (tests/dataset_check.py)
/// as one piece per value: the column is not named, so a value is excused
/// only where it equals one the JSON outputs excuse (the same device name).
#[cfg(feature = "train")]
fn dataset_pieces(file: &Path, scratch: &Path, out: &mut Vec<Piece>) {
    let dir = scratch.join("dataset");
    let _ = std::fs::remove_dir_all(&dir);
    let run = common::spanwatch()
        .arg("extract")
        .arg(file)
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run spanwatch extract");
    assert!(
        run.status.success(),
        "{}: extract failed: {}",
        file.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    text_pieces("extract stdout", &String::from_utf8_lossy(&run.stdout), out);
    text_pieces("extract stderr", &String::from_utf8_lossy(&run.stderr), out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dataset_check.py");
    let check = std::process::Command::new("python3")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("run python3 (bash .ci/deps installs duckdb and pyarrow)");
    assert!(
        check.status.success(),
        "dataset_check.py: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    for table in ["windows", "devices"] {
        for value in report[table]["strings"].as_array().into_iter().flatten() {
            out.push(Piece {
                place: format!("dataset {table}"),
                key: None,
                text: value.as_str().unwrap_or_default().to_string(),
            });
        }
    }
}

/// The captures: the shared corpus, the lab sample, the bundled samples.
fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = common::manifest().iter().map(|r| r.file()).collect();
    files.push(common::pcaps_dir().join("../lab-sample/capture.pcap"));
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples");
    files.push(samples.join("attack/capture.pcap"));
    files.push(samples.join("benign/capture.pcap"));
    files
}

/// The names of the rules in the repository's rules directory (the built-in
/// ruleset), read with a TOML parser.
fn rule_names() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".rules.toml") {
            continue;
        }
        let doc: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for rule in doc["rule"].as_array().unwrap() {
            names.insert(rule["name"].as_str().unwrap().to_string());
        }
    }
    names
}

/// Whether a field's whole value is something else `pw` equals, by the
/// field: the user name typed with it, a request target of the traffic, a
/// rule's name, a protocol's name.
fn exempt(key: &str, text: &str, pw: &str, creds: &Credentials, rules: &BTreeSet<String>) -> bool {
    (USER_FIELDS.contains(&key) && text == pw && creds.users.contains(pw))
        || (URI_FIELDS.contains(&key) && creds.uris.contains(text))
        || (SIGNATURE_FIELDS.contains(&key) && rules.contains(text))
        || (PROTOCOL_FIELDS.contains(&key)
            && PROTOCOLS.contains(&pw)
            && (text == pw
                || text
                    .strip_prefix(pw)
                    .is_some_and(|rest| rest.starts_with(['.', '-']))))
}

/// The leaks among `pieces`: the place and the length of the password, never
/// the password itself (a failure must not print it either). A line of text
/// (the text summary, stderr) is cleared first of the values its JSON
/// counterpart exempts, and of the text summary's fixed phrases.
fn leaks(
    file: &Path,
    pieces: &[Piece],
    creds: &Credentials,
    rules: &BTreeSet<String>,
) -> Vec<String> {
    let mut found = Vec::new();
    for pw in &creds.passwords {
        let mut exempt_values: BTreeSet<&str> = TEXT_PHRASES.iter().copied().collect();
        let mut leaked = Vec::new();
        for piece in pieces.iter().filter(|p| occurs_as_word(&p.text, pw)) {
            match &piece.key {
                Some(key) if exempt(key, &piece.text, pw, creds, rules) => {
                    exempt_values.insert(&piece.text);
                }
                _ => leaked.push(piece),
            }
        }
        for piece in leaked {
            if piece.key.is_none() {
                let mut rest = piece.text.clone();
                // Longest first, so a value is not cut by a shorter one inside it.
                let mut values: Vec<&&str> = exempt_values.iter().collect();
                values.sort_by_key(|v| std::cmp::Reverse(v.len()));
                for value in values {
                    rest = rest.replace(*value, " ");
                }
                if !occurs_as_word(&rest, pw) {
                    continue;
                }
            }
            found.push(format!(
                "{}: a password of length {} in {}",
                file.display(),
                pw.len(),
                piece.place
            ));
        }
    }
    found
}

#[test]
fn telnet_passwords_are_read_from_the_login_dialogues() {
    // The lab sample's labels: Mirai's root/xc3511, hydra's dictionary
    // (e.g. "default", "54321"), the operator's login; the corpus's
    // Microsoft Telnet logins.
    let lab = credentials(&common::pcaps_dir().join("../lab-sample/capture.pcap"));
    for pw in [
        "xc3511",
        "vizxv",
        "default",
        "54321",
        "888888",
        "Adm1n!2024",
    ] {
        assert!(lab.passwords.contains(pw), "a lab sample password missing");
    }
    assert!(lab.users.contains("root") && lab.users.contains("admin"));
    let ms = credentials(
        &common::pcaps_dir().join("telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap"),
    );
    assert!(ms.passwords.contains("penguin"));
}

#[test]
fn passwords_never_reach_any_output() {
    let scratch = std::env::temp_dir().join(format!("spanwatch-nopw-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let rules = rule_names();
    let mut all = Vec::new();
    let mut checked = 0;
    for file in captures() {
        let creds = credentials(&file);
        if creds.passwords.is_empty() {
            continue;
        }
        checked += creds.passwords.len();
        let pieces = replay_outputs(&file, &scratch);
        all.extend(leaks(&file, &pieces, &creds, &rules));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(checked >= 30, "only {checked} passwords in the captures");
    assert!(all.is_empty(), "passwords written:\n{}", all.join("\n"));
}
