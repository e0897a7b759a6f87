//! The default rules on labelled captures of real IoT software and real attack
//! tools: every labelled attack phase raises, from its attacker inside its
//! window, an alert of each rule written to detect it, and each capture
//! labels the phases it is meant to; outside the phases only low-severity policy findings fire, at
//! most once per device and service. The alerts file is validated against the
//! repository's JSON schema by an independent validator (Python jsonschema,
//! Debian's python3-jsonschema).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each attack phase of the lab generator and the default rules written to
/// detect it (rules/iot-default.rules.toml): every one of them must raise an
/// alert from the phase's attacker inside its window. Another rule firing in
/// the window (e.g. the MQTT cleartext-password policy 9100302 inside the
/// publish flood) does not count for the phase.
const PHASE_RULES: &[(&str, &[u64])] = &[
    // Refused ports (9101001) and the ARP/SYN sweep of the /24 (9101002).
    ("recon_nmap_syn_scan", &[9101001, 9101002]),
    // 3000 PUBLISHes in 3 s on one topic.
    ("mqtt_publish_flood", &[9100701]),
    // Refused CONNECTs, then the accepted one.
    ("mqtt_bruteforce", &[9100203, 9100206]),
    // SUBSCRIBE '#' and '$SYS/#'.
    ("mqtt_wildcard_subscribe", &[9100501]),
    // The same client id from the attacker's address.
    ("mqtt_clientid_takeover", &[9100601]),
    // root/xc3511 accepted, then the busybox MIRAI commands.
    ("mirai_telnet_login", &[9100101, 9100902]),
    // The compromised camera sweeps the segment's Telnet port.
    ("lateral_movement", &[9101002]),
    // hping3 half-open SYNs.
    ("syn_flood_hping3", &[9101003]),
    // PUT/DELETE on the device's resources. Its GET /.well-known/core is the
    // discovery rule's (9100801), suppressed for 300 s per source and
    // destination after the nmap probe of the same device in the recon phase.
    ("coap_discovery_tamper", &[9100802]),
    // hydra's failed logins.
    ("telnet_bruteforce_hydra", &[9100201]),
    // hydra's 401s, then the 200 for the guessed pair.
    ("http_basic_auth_bruteforce", &[9100202, 9100205]),
    // GET /admin/firmware.bin.
    ("http_firmware_download", &[9100401]),
];

/// Every phase of `PHASE_RULES` but the client-id takeover, which the shared
/// lab sample was recorded without.
const LAB_SAMPLE_PHASES: &[&str] = &[
    "recon_nmap_syn_scan",
    "mqtt_publish_flood",
    "mqtt_bruteforce",
    "mqtt_wildcard_subscribe",
    "mirai_telnet_login",
    "lateral_movement",
    "syn_flood_hping3",
    "coap_discovery_tamper",
    "telnet_bruteforce_hydra",
    "http_basic_auth_bruteforce",
    "http_firmware_download",
];

/// The system interpreter, which Debian's python3-jsonschema is installed for.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// Severity of policy findings (Suricata's "low").
const POLICY_SEVERITY: u64 = 3;

struct Label {
    start: f64,
    end: f64,
    phase: String,
    attacker: String,
}

/// labels.csv: start_epoch,end_epoch,phase,attacker_ip,... (notes may hold commas, quoted).
fn labels(path: &Path) -> Vec<Label> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ',').collect();
            Label {
                start: f[0].parse().unwrap(),
                end: f[1].parse().unwrap(),
                phase: f[2].to_string(),
                attacker: f[3].to_string(),
            }
        })
        .collect()
}

/// Seconds since the epoch of an EVE timestamp ("2026-11-23T14:28:59.238120+0000").
fn epoch(ts: &str) -> f64 {
    let out = Command::new("date")
        .args(["-u", "-d", &ts.replace("+0000", "Z"), "+%s.%N"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Alerts of `spanwatch replay --threads THREADS CAPTURE`, and their file.
fn replay_alerts(capture: &Path, threads: &str) -> (Vec<serde_json::Value>, PathBuf) {
    let alerts = std::env::temp_dir().join(format!(
        "spanwatch-alerts-{}-{threads}-{}.jsonl",
        std::process::id(),
        capture
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    let _ = std::fs::remove_file(&alerts);
    // The rules alone: the model's findings are judged by `spanwatch eval`.
    let out = common::spanwatch()
        .args([
            "replay",
            "--no-progress",
            "--no-model",
            "--threads",
            threads,
        ])
        .arg("--alerts")
        .arg(&alerts)
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(&alerts).unwrap();
    let parsed = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert line is JSON"))
        .collect();
    (parsed, alerts)
}

/// Checks the alerts of `dir`'s capture against its labels, with the parsers
/// and rules on the capture thread, on a thread of their own, and with two
/// parser threads beside them: each must pass, with the same alerts. `phases` are the attack phases the capture
/// must label, no more and no fewer.
fn check_capture(dir: &Path, phases: &[&str]) {
    let labels = labels(&dir.join("labels.csv"));
    let labelled: BTreeSet<&str> = PHASE_RULES
        .iter()
        .map(|(phase, _)| *phase)
        .filter(|phase| labels.iter().any(|l| l.phase == *phase))
        .collect();
    assert_eq!(
        labelled,
        phases.iter().copied().collect::<BTreeSet<_>>(),
        "{}: attack phases labelled",
        dir.display()
    );
    let one = check_run(dir, "1");
    for threads in ["2", "4"] {
        assert!(
            check_run(dir, threads) == one,
            "{}: the alerts of --threads {threads} differ from those of --threads 1",
            dir.display()
        );
    }
}

fn check_run(dir: &Path, threads: &str) -> Vec<serde_json::Value> {
    let labels = labels(&dir.join("labels.csv"));
    let (alerts, file) = replay_alerts(&dir.join("capture.pcap"), threads);
    assert!(!alerts.is_empty(), "{}: no alerts", dir.display());
    let times: Vec<f64> = alerts
        .iter()
        .map(|a| epoch(a["timestamp"].as_str().unwrap()))
        .collect();

    // Every attack phase in the labels: each of its rules alerts on its
    // attacker inside its window.
    let mut missing = Vec::new();
    for label in &labels {
        let Some((_, rules)) = PHASE_RULES.iter().find(|(p, _)| *p == label.phase) else {
            continue;
        };
        for rule in *rules {
            let hit = alerts.iter().zip(&times).any(|(a, &t)| {
                a["alert"]["signature_id"] == *rule
                    && a["src_ip"] == label.attacker.as_str()
                    && t >= label.start
                    && t <= label.end
            });
            if !hit {
                missing.push(format!("{} (rule {rule})", label.phase));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{}: no alert in phases {missing:?}",
        dir.display()
    );

    // Outside every labelled window: only policy findings, once per device and service.
    let mut outside: BTreeMap<String, u64> = BTreeMap::new();
    for (a, &t) in alerts.iter().zip(&times) {
        if labels.iter().any(|l| t >= l.start && t <= l.end) {
            continue;
        }
        let severity = a["alert"]["severity"].as_u64().unwrap();
        assert_eq!(
            severity,
            POLICY_SEVERITY,
            "{}: alert outside the attack phases: {a}",
            dir.display()
        );
        let key = format!(
            "{} {} {} {}",
            a["alert"]["signature_id"], a["src_ip"], a["dest_ip"], a["dest_port"]
        );
        *outside.entry(key).or_default() += 1;
    }
    let repeated: Vec<_> = outside.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "policy findings repeated: {repeated:?}"
    );

    // The alerts validate against the schema kept in the repository.
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/eve-alert.schema.json");
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1]))\n\
        v=jsonschema.Draft202012Validator(schema)\n\
        n=0\n\
        for line in open(sys.argv[2]):\n\
        \x20   v.validate(json.loads(line)); n+=1\n\
        print(n)\n";
    // Debian's interpreter and its python3-jsonschema package (.ci/packages),
    // whatever other python3 comes first on the PATH.
    let out = Command::new(DEBIAN_PYTHON)
        .args(["-c", script])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("/usr/bin/python3 (bash .ci/deps installs python3-jsonschema)");
    assert!(
        out.status.success(),
        "schema validation failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        alerts.len().to_string()
    );
    let _ = std::fs::remove_file(&file);
    alerts
}

#[test]
fn shared_lab_sample_phases_raise_alerts_from_their_attackers() {
    check_capture(
        &common::pcaps_dir().join("../lab-sample"),
        LAB_SAMPLE_PHASES,
    );
}

#[test]
fn bundled_attack_sample_phases_raise_alerts_from_their_attackers() {
    let every: Vec<&str> = PHASE_RULES.iter().map(|(phase, _)| *phase).collect();
    check_capture(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples/attack"),
        &every,
    );
}

#[test]
fn bundled_benign_sample_raises_only_policy_findings() {
    check_capture(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples/benign"),
        &[],
    );
}

#[test]
fn rules_check_passes_on_the_repository_rules_and_fails_on_a_broken_file() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let out = common::spanwatch()
        .args(["rules", "check"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let dir = std::env::temp_dir().join(format!("spanwatch-badrules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.rules.toml"),
        "[[rule]]\nid = 1\nname = \"x\"\nseverity = \"high\"\ncategory = \"c\"\nevent = \"telnet.login\"\nthreshhold = { count = 5 }\n",
    )
    .unwrap();
    let out = common::spanwatch()
        .args(["rules", "check"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.rules.toml"), "{stderr}");
    assert!(stderr.contains("threshhold"), "{stderr}");

    // A rule whose own test case fails: exit 6.
    std::fs::write(
        dir.join("bad.rules.toml"),
        "[[rule]]\nid = 1\nname = \"x\"\nseverity = \"high\"\ncategory = \"c\"\nevent = \"telnet.login\"\nwhere = { outcome = \"failure\" }\n\
         [[rule.test]]\nexpect = 1\nevents = [{ kind = \"telnet.login\", src = \"10.0.0.1:1\", dst = \"10.0.0.2:23\", fields = { outcome = \"success\" } }]\n\
         [[rule.test]]\nexpect = 0\nevents = [{ kind = \"telnet.login\", src = \"10.0.0.1:1\", dst = \"10.0.0.2:23\", fields = { outcome = \"success\" } }]\n",
    )
    .unwrap();
    let out = common::spanwatch()
        .args(["rules", "check"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    std::fs::remove_dir_all(&dir).unwrap();
}
