//! The deployment files of `sensor/deploy/`, checked by the tools that use
//! them: systemd-analyze verifies the unit, promtool checks the alerting
//! rules and runs their unit tests, promtool parses every query of the
//! Grafana dashboard, every metric the dashboard and the rules name is one
//! the sensor serves (from a replay of the bundled attack capture), and
//! spanwatch accepts the example config.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use spanwatch::alert::{Alerter, FileSink};
use spanwatch::capture::MergedSource;
use spanwatch::config::Config;
use spanwatch::detect::default_ruleset;
use spanwatch::detect::detector::Detector;
use spanwatch::detect::learned::LearnedState;
use spanwatch::pipeline::{self, DetectionSetup, Pipeline};
use spanwatch::telemetry::Telemetry;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spanwatch-deploy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "{program} not found: this test needs the Debian package {package}"
    );
}

/// `program args` in `dir`: it must exit 0; its stdout and stderr.
fn run_ok(dir: &Path, program: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    require("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(deploy_dir().join("spanwatch.service")).unwrap();
    // verify checks that the program exists: point it at the binary built
    // here instead of the installed path.
    let installed = "/usr/local/bin/spanwatch";
    assert!(unit.contains(&format!("ExecStart={installed} live ")));
    let dir = scratch("unit");
    let path = dir.join("spanwatch.service");
    std::fs::write(
        &path,
        unit.replace(installed, env!("CARGO_BIN_EXE_spanwatch")),
    )
    .unwrap();
    let (stdout, stderr) = run_ok(&dir, "systemd-analyze", &["verify", path.to_str().unwrap()]);
    // Unknown keys and bad values are only warnings: there must be none.
    assert_eq!(
        format!("{stdout}{stderr}"),
        "",
        "systemd-analyze verify warned"
    );
    for line in [
        "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "User=spanwatch",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line} in the unit");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    require("promtool", "prometheus");
    let (out, _) = run_ok(
        &deploy_dir(),
        "promtool",
        &["check", "rules", "prometheus-alerts.yml"],
    );
    assert!(out.contains("SUCCESS: 7 rules found"), "{out}");
    run_ok(
        &deploy_dir(),
        "promtool",
        &["test", "rules", "prometheus-alerts.test.yml"],
    );
}

#[test]
fn the_example_config_is_valid() {
    let config = deploy_dir().join("spanwatch.toml");
    let (out, _) = run_ok(
        &deploy_dir(),
        env!("CARGO_BIN_EXE_spanwatch"),
        &["config", "check", config.to_str().unwrap()],
    );
    assert!(out.contains(": valid"), "{out}");
}

/// The exposition of a sensor that replayed the bundled attack capture
/// with the default rules, model and profiles.
fn exposition_of_a_replay() -> String {
    let cfg = Config::default();
    let mut p = Pipeline::new(cfg.pipeline_config());
    let telemetry = Telemetry::new(p.published(), Duration::from_secs(10));
    let dir = scratch("exposition");
    let mut alerter = Alerter::new(cfg.alerts.limits());
    alerter.add_sink(Box::new(
        FileSink::open(dir.join("alerts.jsonl")).expect("alerts file"),
    ));
    p.detect_with(DetectionSetup {
        rules: Some(Detector::new(
            default_ruleset().expect("built-in rules"),
            cfg.rules.limits(),
        )),
        model: cfg.model_detector().expect("built-in model"),
        profile: cfg.profile_detector(),
        alerts: alerter,
        learned: LearnedState::default(),
        state_path: None,
        learn_secs: 0,
    });
    p.profile_devices(cfg.devices.extractor().expect("devices on"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Attacks of real tools, MQTT wildcards, and an MQTT packet and frames
    // with something wrong (so that the anomaly and decode error series
    // exist).
    let captures = [
        manifest.join("../datasets/samples/attack/capture.pcap"),
        manifest.join(
            "../../shared/pcaps/mqtt/mqtt-synthetic-v31-v311-v5-wildcards-oversize-topic.pcap",
        ),
        manifest.join("../../shared/pcaps/mqtt/mqtt5-malformed-excessive-property-length.pcap"),
        manifest.join("../../shared/pcaps/generic/frame-shorter-than-headers.pcap"),
    ];
    let mut source = MergedSource::open(&captures).expect("captures");
    pipeline::run_source(&mut source, &mut p, &mut |_, _| {}).expect("replay");
    p.finish();
    p.flush_alerts().expect("alerts written");
    let _ = std::fs::remove_dir_all(&dir);
    telemetry.render().expect("exposition")
}

/// Metric names (`spanwatch_*`, `process_*`, `up`) in a PromQL expression.
fn names_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let word = &tail[..end];
        let prev = rest[..i].chars().last();
        // Not a label value ("...") nor the inside of a label matcher.
        if (word.starts_with("spanwatch_") || word.starts_with("process_") || word == "up")
            && prev != Some('"')
        {
            names.insert(word.to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// Every `expr:` of the alerting rules file.
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        if rest.trim() == "|" {
            let indent = |l: &str| l.len() - l.trim_start().len();
            let base = indent(line);
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| indent(l) > base)
                .map(|l| l.trim())
                .collect();
            out.push(body.join(" "));
        } else {
            out.push(rest.trim().to_string());
        }
    }
    out
}

#[test]
fn the_dashboard_and_the_rules_query_only_what_the_sensor_serves() {
    require("promtool", "prometheus");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 20, "{} queries", exprs.len());

    // promtool parses each query (Grafana's variables given values).
    let dir = scratch("dashboard");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let promql = e.replace("$__rate_interval", "5m").replace("$sensor", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&promql).unwrap()
        ));
    }
    std::fs::write(dir.join("dashboard.yml"), rules).unwrap();
    run_ok(&dir, "promtool", &["check", "rules", "dashboard.yml"]);
    let _ = std::fs::remove_dir_all(&dir);

    let alerting = std::fs::read_to_string(deploy_dir().join("prometheus-alerts.yml")).unwrap();
    let alert_exprs = rule_exprs(&alerting);
    assert_eq!(alert_exprs.len(), 7);
    let exposition = exposition_of_a_replay();
    let served: BTreeSet<&str> = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    // `up` is Prometheus' own; the kernel's counters exist only live (the
    // Prometheus test of service_live.rs sees them).
    let elsewhere = [
        "up",
        "spanwatch_kernel_received_packets_total",
        "spanwatch_kernel_dropped_packets_total",
        "spanwatch_interface_dropped_packets_total",
    ];
    let mut missing = Vec::new();
    for expr in exprs.iter().chain(&alert_exprs) {
        for name in names_in(expr) {
            if !elsewhere.contains(&name.as_str()) && !served.contains(name.as_str()) {
                missing.push(format!("{name} (in {expr})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried but not served:\n{}",
        missing.join("\n")
    );
}

/// Docker is not on the CI machine: what the Dockerfile relies on is checked
/// instead. Every flag of its command line is one `spanwatch live` takes, and
/// every file it copies from the repository exists.
#[test]
fn the_dockerfile_runs_flags_and_files_that_exist() {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let cmd = text
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("a CMD line");
    let args: Vec<String> = serde_json::from_str(cmd).expect("CMD in JSON form");
    assert_eq!(args.first().map(String::as_str), Some("live"));
    let help = Command::new(env!("CARGO_BIN_EXE_spanwatch"))
        .args(["live", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")),
            "spanwatch live has no {flag}"
        );
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let source = line.split_whitespace().nth(1).unwrap();
        if source != "." {
            assert!(repo.join(source).exists(), "COPY of a missing {source}");
        }
    }
}
