//! SIGHUP re-reads the config file of `spanwatch live`: on a veth link between
//! two network namespaces this test creates, curl sends HTTP requests with a
//! well-known default credential to busybox httpd while spanwatch captures
//! the client end with `--config` and `--alerts`. Between two rounds of
//! requests the test rewrites the config (a shorter dedupe window, a rules
//! directory without one rule, a setting that needs a restart) and sends
//! SIGHUP; then it sends SIGHUP with a broken config. The expected alerts
//! follow from the requests the test made and the settings it wrote. Needs
//! root (network namespaces).

mod common;
mod netlab;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlab::{Lab, ProcId, SERVER_ADDR, Tap};
use serde_json::Value;

/// A test rule without suppression: one alert per request for /probe, so the
/// alert dedupe window alone decides how many are emitted.
const PROBE_RULE_ID: u64 = 9_990_001;
const PROBE_RULE: &str = r#"
[[rule]]
id = 9990001
name = "TEST HTTP request for /probe"
severity = "low"
category = "Test"
references = ["OWASP-IoT-2018:I7"]
event = "http.request"
where = { uri = "/probe" }
[[rule.test]]
expect = 1
events = [{ kind = "http.request", src = "10.0.0.1:40000", dst = "10.0.0.2:80", ts = 1.0, fields = { method = "GET", uri = "/probe" } }]
[[rule.test]]
expect = 0
events = [{ kind = "http.request", src = "10.0.0.1:40000", dst = "10.0.0.2:80", ts = 1.0, fields = { method = "GET", uri = "/other" } }]
"#;
/// Default ruleset: an HTTP Basic login attempt with a known default
/// credential (the server answers /probe with 404, so an attempt, not a
/// success; suppressed per source, target and user for an hour by the rule
/// itself).
const DEFAULT_CREDENTIAL_RULE_ID: u64 = 9_100_105;
/// Default ruleset: Basic credentials over cleartext HTTP (suppressed
/// forever per service by the rule itself); removed by the reload.
const CLEARTEXT_RULE_ID: u64 = 9_100_301;
/// Requests per round (bounded traffic).
const ROUND: usize = 3;
/// Requests after the refused reload.
const LAST_ROUND: usize = 2;
const HTTP_PORT: u16 = 8080;
const WAIT: Duration = Duration::from_secs(20);

/// A rules directory: the default ruleset (without `drop_rule`), its
/// credential dictionary, and the probe rule.
fn rules_dir(dir: &Path, name: &str, drop_rule: Option<u64>) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let text = std::fs::read_to_string(repo.join("iot-default.rules.toml")).unwrap();
    let kept: Vec<&str> = text
        .split("\n[[rule]]\n")
        .filter(|block| drop_rule.is_none_or(|id| !block.starts_with(&format!("id = {id}\n"))))
        .collect();
    assert_eq!(
        kept.len() + usize::from(drop_rule.is_some()),
        text.split("\n[[rule]]\n").count(),
        "rule to drop not found"
    );
    std::fs::write(
        out.join("iot-default.rules.toml"),
        kept.join("\n[[rule]]\n"),
    )
    .unwrap();
    std::fs::copy(
        repo.join("default-credentials.toml"),
        out.join("default-credentials.toml"),
    )
    .unwrap();
    std::fs::write(out.join("probe.rules.toml"), PROBE_RULE).unwrap();
    out
}

/// Rules in the `*.rules.toml` files of `dir` (`[[rule]]` headers).
fn rule_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.toml"))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| *l == "[[rule]]")
                .count()
        })
        .sum()
}

/// `n` requests for /probe with a default credential (a public default pair).
fn requests(lab: &Lab, n: usize) {
    let url = format!("http://{SERVER_ADDR}:{HTTP_PORT}/probe");
    for _ in 0..n {
        lab.http_get(&url, Some("admin:admin"));
    }
    // Let the last packets leave the capture ring before the next step.
    std::thread::sleep(Duration::from_millis(500));
}

/// Alerts in the file so far, by signature id.
fn by_rule(alerts: &[Value]) -> BTreeMap<u64, Vec<&Value>> {
    let mut out: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for a in alerts {
        out.entry(a["alert"]["signature_id"].as_u64().unwrap())
            .or_default()
            .push(a);
    }
    out
}

fn count(alerts: &BTreeMap<u64, Vec<&Value>>, id: u64) -> usize {
    alerts.get(&id).map_or(0, Vec::len)
}

/// Send SIGHUP and wait for spanwatch to report `needle`.
fn hup(lab: &mut Lab, spanwatch: ProcId, needle: &str) {
    lab.signal(spanwatch, "HUP");
    lab.wait_log(spanwatch, needle, WAIT);
}

#[test]
fn sighup_applies_the_new_config_and_rules_and_loses_no_alert() {
    let mut lab = Lab::new("cf");
    lab.start_httpd(HTTP_PORT, "hello");

    let dir = lab.dir().to_path_buf();
    let full_rules = rules_dir(&dir, "rules-full", None);
    let fewer_rules = rules_dir(&dir, "rules-fewer", Some(CLEARTEXT_RULE_ID));
    let config = dir.join("spanwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[rules]\ndir = {:?}\n\n[alerts]\ndedupe_secs = 3600\n",
            full_rules.display().to_string()
        ),
    )
    .unwrap();
    let alerts_file = dir.join("alerts.jsonl");
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Client,
        &[
            "--config",
            config.to_str().unwrap(),
            "--alerts",
            alerts_file.to_str().unwrap(),
            "--json",
            // The model would judge these requests too (a device with a
            // run of 4xx answers); this test counts the rules' alerts.
            "--no-model",
        ],
    );

    // Round 1 under a one-hour dedupe window: one probe alert, two deduped.
    requests(&lab, ROUND);

    // A shorter window, a rules directory without the cleartext rule, and
    // a flow timeout, which needs a restart.
    std::fs::write(
        &config,
        format!(
            "[rules]\ndir = {:?}\n\n[alerts]\ndedupe_secs = 0\n\n[flows]\nudp_timeout_secs = 61\n",
            fewer_rules.display().to_string()
        ),
    )
    .unwrap();
    hup(&mut lab, spanwatch, "config: flows.udp_timeout_secs");
    let log = lab.log(spanwatch);
    let reloaded = format!("rules reloaded ({} rules)", rule_count(&fewer_rules));
    for line in [
        reloaded.as_str(),
        "config: alerts.dedupe_secs: 3600 -> 0 (applied)",
        "config: flows.udp_timeout_secs: 60 -> 61 (changed, needs a restart: not applied)",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
    assert!(
        log.contains("config: rules.dir: ") && log.contains("rules-fewer\" (applied)"),
        "{log}"
    );

    // Round 2: every probe alerted; the default credential once more (the
    // reload starts the rules afresh); the removed rule silent.
    requests(&lab, ROUND);

    // A broken config: refused with file, line and key; the last one stays.
    std::fs::write(&config, "[alerts]\ndedupe_secs = 0\nmax_alerts = 5\n").unwrap();
    hup(&mut lab, spanwatch, "nothing reloaded");
    let log = lab.log(spanwatch);
    let refusal = format!("{}:3:1: key `alerts.max_alerts`", config.display());
    assert!(log.contains(&refusal), "no {refusal:?} in:\n{log}");
    requests(&lab, LAST_ROUND);

    lab.stop(spanwatch);
    let text = std::fs::read_to_string(&alerts_file).unwrap_or_default();
    assert!(
        !text.contains("admin:admin"),
        "a password reached the alerts"
    );
    let alerts: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules = by_rule(&alerts);
    let probes = &rules[&PROBE_RULE_ID];
    // Round 1: 1 (2 deduped); round 2: 3, the first carrying the 2; last
    // round under the kept zero window: 2.
    assert_eq!(
        count(&rules, PROBE_RULE_ID),
        1 + ROUND + LAST_ROUND,
        "{text}"
    );
    let suppressed: Vec<u64> = probes
        .iter()
        .map(|a| a["spanwatch"]["suppressed"].as_u64().unwrap())
        .collect();
    assert_eq!(suppressed, [0, ROUND as u64 - 1, 0, 0, 0, 0], "{text}");
    assert_eq!(count(&rules, DEFAULT_CREDENTIAL_RULE_ID), 2, "{text}");
    // Raised in round 1, before the reload, and still in the file.
    assert_eq!(count(&rules, CLEARTEXT_RULE_ID), 1, "{text}");
    let cleartext_ts = rules[&CLEARTEXT_RULE_ID][0]["timestamp"].as_str().unwrap();
    let second_probe_ts = probes[1]["timestamp"].as_str().unwrap();
    // Same format and zone: the string order is the time order.
    assert!(
        cleartext_ts < second_probe_ts,
        "{cleartext_ts} {second_probe_ts}"
    );
    assert_eq!(rules.len(), 3, "unexpected alerts:\n{text}");

    // The summary printed at SIGTERM counts exactly the lines in the file.
    let summary = lab.final_summary(spanwatch);
    let detection = &summary["detection"];
    assert_eq!(
        detection["alerts"]["emitted"].as_u64(),
        Some(alerts.len() as u64)
    );
    assert_eq!(detection["engine"]["reloads"].as_u64(), Some(1));
    assert_eq!(
        summary["protocols"]["http"]["requests"].as_u64(),
        Some((2 * ROUND + LAST_ROUND) as u64)
    );
}
