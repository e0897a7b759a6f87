//! spanwatch as a service, judged by real tools in network namespaces this
//! test creates: a real Prometheus server scrapes `spanwatch live
//! --metrics` while real daemons talk (mosquitto with mosquitto_pub, a
//! refused-password brute force among them; libcoap's server and client;
//! busybox httpd and curl), and what Prometheus stored is checked against
//! the sensor's own final summary, tcpdump's and tshark's counts of the same
//! link, and the alerts file; `promtool check metrics` lints the exposition.
//! On a switched lab: a sensor on a mirror port (privileges dropped, never
//! sending), the retrain loop (windows recorded as Parquet, `spanwatch
//! train` on them, SIGHUP), and two sensors feeding one Prometheus and one
//! dataset. Prometheus binds the namespace's loopback only, keeps its
//! storage in the lab's temporary directory and is ended by PID with the
//! lab. Needs root, and the `train` feature (the retrain loop and the fleet
//! dataset train models and write Parquet).
#![cfg(feature = "train")]

mod netlab;

use std::path::Path;
use std::time::{Duration, Instant};

use netlab::{Lab, SERVER_ADDR, Tap, Transport};
use serde_json::Value;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(30);
/// Where spanwatch serves /metrics and Prometheus its API, on the loopback
/// of the namespace they run in.
const METRICS_ADDR: &str = "127.0.0.1:9187";
const PROMETHEUS_ADDR: &str = "127.0.0.1:9090";
const HTTP_PORT: u16 = 8080;
/// Bounded traffic: MQTT publishes with the right password, CONNECTs with a
/// wrong one (the MQTT brute-force rule fires at 5 within a minute), CoAP
/// GETs, HTTP fetches.
const MQTT_PUBLISHES: usize = 4;
const MQTT_WRONG_PASSWORDS: usize = 6;
const COAP_GETS: usize = 3;
const HTTP_FETCHES: usize = 3;
/// Rule ids of the default ruleset these clients set off.
const MQTT_BRUTE_FORCE: &str = "9100203";
const HTTP_DEFAULT_CREDENTIAL: &str = "9100105";

/// A mosquitto broker in the server namespace that wants a password; the
/// user and its (random) password.
fn start_broker(lab: &mut Lab) -> (String, String) {
    netlab::require_program("mosquitto_pub", "mosquitto-clients");
    let user = "swmetrics".to_string();
    let password = netlab::random_secret();
    lab.start_mosquitto(Some((&user, &password)));
    (user, password)
}

/// One CONNECT with `password` and a QoS 1 publish; whether it was accepted.
fn mqtt_publish(lab: &Lab, user: &str, password: &str, what: &str) -> bool {
    lab.client(
        what,
        "mosquitto_pub",
        &[
            "-h",
            SERVER_ADDR,
            "-u",
            user,
            "-P",
            password,
            "-t",
            "site/meter/power",
            "-m",
            "42",
            "-q",
            "1",
        ],
        None,
        CLIENT_TIMEOUT,
    )
    .status
    .success()
}

/// MQTT_PUBLISHES accepted publishes, then `wrong_passwords` CONNECTs with
/// one fresh wrong password (a brute force), each refused; that password.
fn publishes_then_brute_force(
    lab: &Lab,
    user: &str,
    password: &str,
    wrong_passwords: usize,
) -> String {
    for i in 0..MQTT_PUBLISHES {
        assert!(mqtt_publish(lab, user, password, &format!("publish {i}")));
    }
    let wrong = netlab::random_secret();
    for i in 0..wrong_passwords {
        assert!(!mqtt_publish(lab, user, &wrong, &format!("wrong {i}")));
    }
    wrong
}

/// busybox httpd and libcoap's server in the server namespace.
fn start_web_and_coap(lab: &mut Lab) {
    netlab::require_program("coap-server-notls", "libcoap3-bin");
    netlab::require_program("coap-client-notls", "libcoap3-bin");
    lab.start_httpd(HTTP_PORT, "hello from the lab");
    let coap = lab.start_server(
        "coap-server",
        "coap-server-notls",
        &["-A", SERVER_ADDR, "-p", "5683"],
    );
    lab.wait_listening(coap, Transport::Udp, 5683);
}

fn coap_get(lab: &Lab) {
    lab.client_ok(
        "coap-client",
        "coap-client-notls",
        &["-B", "5", &format!("coap://{SERVER_ADDR}/.well-known/core")],
        CLIENT_TIMEOUT,
    );
}

fn http_get(lab: &Lab, credential: Option<&str>) {
    lab.http_get(
        &format!("http://{SERVER_ADDR}:{HTTP_PORT}/index.html"),
        credential,
    );
}

/// GET `url` from inside the client namespace (where spanwatch and
/// Prometheus listen on loopback): status code and body.
fn fetch(lab: &Lab, url: &str) -> (u16, String) {
    let out = lab.client_ok(
        "curl",
        "curl",
        &["-s", "--max-time", "5", "-w", "\n%{http_code}", url],
        CLIENT_TIMEOUT,
    );
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The value of one sample in the exposition text (`name{labels} value`).
fn exposed(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The namespace a Prometheus server runs in and is asked from: the one
/// its targets are in (the client's in a lab of two hosts, the sensor's in
/// a switched lab).
#[derive(Clone, Copy)]
enum Side {
    Client,
    Sensor,
}

impl Side {
    fn start(self, lab: &mut Lab, what: &str, program: &str, args: &[&str]) -> netlab::ProcId {
        match self {
            Side::Client => lab.start_client(what, program, args),
            Side::Sensor => lab.start_sensor(what, program, args),
        }
    }

    /// A bounded run that must exit 0: its stdout.
    fn run_ok(self, lab: &Lab, what: &str, program: &str, args: &[&str]) -> String {
        match self {
            Side::Client => lab.client_ok(what, program, args, CLIENT_TIMEOUT),
            Side::Sensor => lab.sensor_ok(what, program, args, CLIENT_TIMEOUT),
        }
    }
}

/// Prometheus's answer to an instant query: each series' labels and value.
fn query(lab: &Lab, promql: &str) -> Vec<(Value, f64)> {
    query_in(lab, Side::Client, promql)
}

fn query_in(lab: &Lab, side: Side, promql: &str) -> Vec<(Value, f64)> {
    let out = side.run_ok(
        lab,
        "prometheus query",
        "curl",
        &[
            "-s",
            "--max-time",
            "5",
            "--get",
            "--data-urlencode",
            &format!("query={promql}"),
            &format!("http://{PROMETHEUS_ADDR}/api/v1/query"),
        ],
    );
    let answer: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("Prometheus answered {promql:?} with no JSON ({e}): {out}"));
    assert_eq!(answer["status"], "success", "{promql}: {answer}");
    answer["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{promql}: no result list: {answer}"))
        .iter()
        .map(|s| {
            let v = s["value"][1].as_str().and_then(|v| v.parse().ok());
            (
                s["metric"].clone(),
                v.unwrap_or_else(|| panic!("{promql}: bad sample {s}")),
            )
        })
        .collect()
}

/// The single value of an instant query (a sum, or one series).
fn query_one(lab: &Lab, promql: &str) -> f64 {
    let rows = query(lab, promql);
    assert_eq!(rows.len(), 1, "{promql}: expected one series, got {rows:?}");
    rows[0].1
}

/// A Prometheus server in the client namespace scraping `targets` (address,
/// sensor label) every second; waits until it is ready.
fn start_prometheus(lab: &mut Lab, targets: &[(&str, &str)]) -> netlab::ProcId {
    start_prometheus_in(lab, Side::Client, targets)
}

fn start_prometheus_in(lab: &mut Lab, side: Side, targets: &[(&str, &str)]) -> netlab::ProcId {
    netlab::require_program("prometheus", "prometheus");
    let mut static_configs = String::new();
    for (addr, sensor) in targets {
        static_configs.push_str(&format!(
            "      - targets: ['{addr}']\n        labels:\n          sensor: '{sensor}'\n"
        ));
    }
    let config = lab.dir().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: spanwatch\n    static_configs:\n{static_configs}"
        ),
    )
    .unwrap();
    let storage = lab.dir().join("prometheus-data");
    let prometheus = side.start(
        lab,
        "prometheus",
        "prometheus",
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", storage.display()),
            &format!("--web.listen-address={PROMETHEUS_ADDR}"),
            "--log.level=warn",
        ],
    );
    let deadline = Instant::now() + WAIT;
    loop {
        // curl fails while nothing listens yet: its status code is the answer.
        let code = side.run_ok(
            lab,
            "prometheus ready",
            "sh",
            &[
                "-c",
                &format!(
                    "curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 http://{PROMETHEUS_ADDR}/-/ready; true"
                ),
            ],
        );
        if code.trim() == "200" {
            return prometheus;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready within {WAIT:?}:\n{}",
            lab.log(prometheus)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Wait (bounded) until Prometheus has scraped the value the sensor serves
/// now for `series`; that value.
fn wait_scraped(lab: &Lab, series: &str, promql: &str) -> f64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = fetch(lab, &format!("http://{METRICS_ADDR}/metrics"));
        let served = exposed(&text, series);
        let stored = query(lab, promql).first().map(|r| r.1);
        if served.is_some() && served == stored {
            return stored.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has {stored:?} for {promql}, the sensor serves {served:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_real_prometheus_scrapes_what_the_sensor_counts() {
    netlab::require_program("promtool", "prometheus");
    let mut lab = Lab::new("pm");
    let (user, password) = start_broker(&mut lab);
    start_web_and_coap(&mut lab);
    let capture = lab.start_capture("metrics");
    let alerts = lab.dir().join("alerts.jsonl");
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Client,
        &[
            "--metrics",
            METRICS_ADDR,
            "--alerts",
            alerts.to_str().unwrap(),
            // The model scores the last, partial windows as the sensor
            // stops: an alert it raised then would be in the final summary
            // and in no scrape. Rules only here (the retrain test below
            // checks model alerts).
            "--no-model",
            "--json",
        ],
    );
    let prometheus = start_prometheus(&mut lab, &[(METRICS_ADDR, "pm")]);

    let (code, health) = fetch(&lab, &format!("http://{METRICS_ADDR}/healthz"));
    assert_eq!(code, 200, "{health}");
    assert!(health.starts_with("ok: capture alive"), "{health}");

    let wrong = publishes_then_brute_force(&lab, &user, &password, MQTT_WRONG_PASSWORDS);
    for _ in 0..COAP_GETS {
        coap_get(&lab);
    }
    for _ in 0..HTTP_FETCHES - 1 {
        http_get(&lab, None);
    }
    // A well-known default credential (a public default pair).
    http_get(&lab, Some("admin:admin"));
    std::thread::sleep(Duration::from_secs(1));

    let ip_packets = wait_scraped(
        &lab,
        "spanwatch_ip_packets_total{version=\"4\"}",
        "spanwatch_ip_packets_total{sensor=\"pm\",version=\"4\"}",
    );
    let alerts_scraped = wait_scraped(
        &lab,
        "spanwatch_alert_findings_total",
        "spanwatch_alert_findings_total{sensor=\"pm\"}",
    );
    assert!(alerts_scraped > 0.0);
    assert_eq!(query_one(&lab, "up{job=\"spanwatch\",sensor=\"pm\"}"), 1.0);
    let packets = query_one(&lab, "spanwatch_packets_total{sensor=\"pm\"}");
    let messages = |protocol: &str| {
        query_one(
            &lab,
            &format!(
                "sum(spanwatch_protocol_messages_total{{sensor=\"pm\",protocol=\"{protocol}\"}})"
            ),
        )
    };
    let (mqtt, coap) = (messages("mqtt"), messages("coap"));
    let http_requests = query_one(
        &lab,
        "spanwatch_protocol_messages_total{sensor=\"pm\",protocol=\"http\",kind=\"request\"}",
    );
    let alerts_by_rule: Vec<(String, f64)> = query(&lab, "spanwatch_alerts_total{sensor=\"pm\"}")
        .into_iter()
        .map(|(labels, v)| (labels["signature_id"].as_str().unwrap().to_string(), v))
        .collect();
    let alerts_total: f64 = alerts_by_rule.iter().map(|(_, v)| v).sum();
    let fired = |id: &str| alerts_by_rule.iter().any(|(r, v)| r == id && *v >= 1.0);
    assert!(fired(MQTT_BRUTE_FORCE), "{alerts_by_rule:?}");
    assert!(fired(HTTP_DEFAULT_CREDENTIAL), "{alerts_by_rule:?}");
    let high_rule_alerts = query_one(
        &lab,
        "sum(spanwatch_alerts_total{sensor=\"pm\",severity=\"high\",source=\"rule\"})",
    );
    assert!(high_rule_alerts >= 1.0);

    // promtool lints the exposition as served.
    let metrics_url = format!("http://{METRICS_ADDR}/metrics");
    let (_, exposition) = fetch(&lab, &metrics_url);
    let lint = lab.client(
        "promtool check metrics",
        "promtool",
        &["check", "metrics"],
        Some(&exposition),
        CLIENT_TIMEOUT,
    );
    assert!(
        lint.status.success(),
        "promtool check metrics failed:\n{}{}",
        lint.stdout,
        lint.stderr
    );
    assert!(
        !exposition.contains(&password) && !exposition.contains(&wrong),
        "a password reached /metrics"
    );
    for family in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "spanwatch_kernel_dropped_packets_total",
        "spanwatch_kernel_received_packets_total",
        "spanwatch_interface_dropped_packets_total",
        "spanwatch_stage_batch_latency_seconds_bucket",
        "spanwatch_detection_info",
    ] {
        assert!(
            exposition.contains(&format!("\n{family}")),
            "no {family} in /metrics"
        );
    }

    lab.stop(spanwatch);
    lab.stop(prometheus);
    let pcap = lab.finish_capture(capture);
    let summary = lab.final_summary(spanwatch);
    let int = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")) as f64;
    // Nothing crossed the link after the last scrape checked above.
    assert_eq!(ip_packets, int(&summary["decode"]["ipv4"]));
    assert_eq!(packets, int(&summary["packets"]), "packets");
    assert_eq!(mqtt, int(&summary["protocols"]["mqtt"]["messages"]));
    assert_eq!(coap, int(&summary["protocols"]["coap"]["messages"]));
    assert_eq!(
        http_requests,
        int(&summary["protocols"]["http"]["requests"])
    );
    assert_eq!(
        alerts_total,
        int(&summary["detection"]["alerts"]["emitted"])
    );
    let alert_lines = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert_eq!(alerts_total, alert_lines.lines().count() as f64);
    assert!(!alert_lines.contains(&password) && !alert_lines.contains(&wrong));

    // The same link as tcpdump and tshark saw it.
    let tcpdump_ip = tcpdump_count(&pcap, "ip");
    assert_eq!(ip_packets, tcpdump_ip as f64, "IPv4 packets, tcpdump");
    let mqtt_wire =
        netlab::count_occurrences(&netlab::tshark_fields(&pcap, "mqtt", &["mqtt.msgtype"]), 0);
    assert_eq!(mqtt, mqtt_wire as f64, "MQTT messages, tshark");
    assert!(mqtt_wire as usize >= MQTT_PUBLISHES * 4 + MQTT_WRONG_PASSWORDS * 2);
    let coap_wire = netlab::tshark_fields(&pcap, "coap && !icmp", &["coap.mid"]).len();
    assert_eq!(coap, coap_wire as f64, "CoAP messages, tshark");
    let http_wire = netlab::tshark_fields(&pcap, "http.request", &["http.request.method"]).len();
    assert_eq!(http_requests, http_wire as f64, "HTTP requests, tshark");
    assert_eq!(http_wire, HTTP_FETCHES);
}

/// Frames of `pcap` matching the tcpdump filter `filter`.
fn tcpdump_count(pcap: &Path, filter: &str) -> usize {
    tcpdump_times(pcap, filter).len()
}

/// Frames of `pcap` matching `filter` that were captured before `cutoff`
/// (tcpdump's own timestamps).
fn tcpdump_count_before(pcap: &Path, filter: &str, cutoff: std::time::SystemTime) -> usize {
    let cutoff = cutoff
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    tcpdump_times(pcap, filter)
        .into_iter()
        .filter(|t| *t < cutoff)
        .count()
}

/// tcpdump's timestamps (seconds since the epoch) of the frames of `pcap`
/// matching `filter`.
fn tcpdump_times(pcap: &Path, filter: &str) -> Vec<f64> {
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-tt", "-r"])
        .arg(pcap)
        .arg(filter)
        .output()
        .expect("run tcpdump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let t = l.split_whitespace().next().unwrap_or_default();
            t.parse::<f64>()
                .unwrap_or_else(|_| panic!("no timestamp in tcpdump's line {l:?}"))
        })
        .collect()
}

/// Frames the sensor on the mirror port may count fewer than tcpdump on the
/// client's link (see the SPAN test).
const MIRROR_SLACK: u64 = 1;

/// CONNECTs with a wrong password in the SPAN test: a bounded brute force.
const SPAN_WRONG_PASSWORDS: usize = 20;

/// uid and gid of `user`, from getent (the system's own account lookup).
fn account(user: &str) -> (String, String) {
    let out = std::process::Command::new("getent")
        .args(["passwd", user])
        .output()
        .expect("run getent");
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let fields: Vec<&str> = line.trim().split(':').collect();
    assert!(fields.len() >= 4, "getent passwd {user}: {line:?}");
    (fields[2].to_string(), fields[3].to_string())
}

/// The ids of one line of /proc/PID/status (`Uid:` or `Gid:`): real,
/// effective, saved, filesystem.
fn status_ids(pid: u32, key: &str) -> Vec<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_sensor_on_a_span_port_sees_the_devices_and_the_attack_and_never_sends() {
    let mut lab = Lab::switched("sp", 1);
    let (user, password) = start_broker(&mut lab);
    let capture = lab.start_capture("span");
    let mirror = lab.mirror_interfaces()[0].clone();
    let alerts = lab.dir().join("alerts.jsonl");
    // The unprivileged account every Debian system has.
    let (uid, gid) = account("nobody");
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Mirror(0),
        &[
            "--user",
            "nobody",
            "--alerts",
            alerts.to_str().unwrap(),
            "--json",
        ],
    );
    lab.wait_log(spanwatch, "as user nobody", WAIT);
    let pid = lab.pid(spanwatch);
    assert_eq!(
        status_ids(pid, "Uid:"),
        [uid.as_str(); 4],
        "not running as nobody"
    );
    assert_eq!(
        status_ids(pid, "Gid:"),
        [gid.as_str(); 4],
        "not in nobody's group"
    );

    let wrong = publishes_then_brute_force(&lab, &user, &password, SPAN_WRONG_PASSWORDS);
    std::thread::sleep(Duration::from_secs(1));
    let (tx_running, rx_running) = lab.sensor_interface_packets(&mirror);
    // tcpdump outlives the sensor: what crosses the link after the sensor
    // is told to stop is tcpdump's alone.
    let stopping = std::time::SystemTime::now();
    lab.stop(spanwatch);
    let pcap = lab.finish_capture(capture);
    let (tx, rx) = lab.sensor_interface_packets(&mirror);
    assert_eq!(
        (tx_running, tx),
        (0, 0),
        "the capture interface sent frames"
    );
    assert!(rx_running > 0 && rx >= rx_running);

    let summary = lab.final_summary(spanwatch);
    // Every frame between the hosts reached the mirror port once, and the
    // sensor saw them, but for at most MIRROR_SLACK: on this kernel the
    // sensor has counted one frame fewer than tcpdump on the client's link
    // in some runs (a frame before the stop; which one is not found yet).
    let on_link = tcpdump_count_before(&pcap, "ip", stopping) as u64;
    let seen = summary["decode"]["ipv4"].as_u64().unwrap_or(0);
    assert!(
        seen <= on_link && seen + MIRROR_SLACK >= on_link,
        "IPv4 packets: {seen} on the mirror port, {on_link} on the client's link"
    );
    let mut seen: Vec<String> = summary["devices"]["table"]
        .as_array()
        .expect("a device table")
        .iter()
        .map(|d| d["mac"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut hosts = lab.host_macs().to_vec();
    hosts.sort();
    assert_eq!(seen, hosts, "devices on the segment");

    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(!text.contains(&password) && !text.contains(&wrong));
    let brute: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| {
            a["alert"]["signature_id"]
                .as_u64()
                .map(|id| id.to_string())
                .as_deref()
                == Some(MQTT_BRUTE_FORCE)
        })
        .collect();
    assert_eq!(
        brute.len(),
        1,
        "one brute-force alert (suppressed after):\n{text}"
    );
    assert_eq!(brute[0]["src_ip"], netlab::CLIENT_ADDR);
    assert_eq!(brute[0]["dest_ip"], SERVER_ADDR);
    assert_eq!(brute[0]["dest_port"], 1883);
}

/// Benign publishes recorded for training (one every `RECORD_EVERY`).
const RECORD_PUBLISHES: usize = 70;
const RECORD_EVERY: Duration = Duration::from_millis(400);
/// Windows the training needs (`train --k-max 4` wants 50 normal ones).
const TRAIN_WINDOWS: usize = 60;
/// Refused CONNECTs after the reload: a burst the new model has not seen.
const BURST_WRONG_PASSWORDS: usize = 30;

/// The complete lines of a JSON Lines file that is still being written.
fn complete_lines(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match text.rfind('\n') {
        Some(end) => text[..=end].to_string(),
        None => String::new(),
    }
}

fn alert_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `spanwatch train --k-min 2 --k-max K_MAX --out OUT INPUT`, which must
/// succeed; the model.json it wrote.
fn train(input: &Path, out: &Path, k_max: &str) -> Value {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_spanwatch"))
        .args(["train", "--k-min", "2", "--k-max", k_max, "--out"])
        .arg(out)
        .arg(input)
        .output()
        .expect("run spanwatch train");
    assert!(
        run.status.success(),
        "train on {} failed: {}",
        input.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let path = out.join("model.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn retraining_and_sighup_swap_the_model_without_losing_an_alert() {
    let mut lab = Lab::new("rt");
    let (user, password) = start_broker(&mut lab);
    let dir = lab.dir().to_path_buf();
    let windows = dir.join("windows.jsonl");
    let dataset = dir.join("dataset");
    let state = dir.join("learned.json");
    let model_dir = dir.join("model");
    let config = dir.join("spanwatch.toml");
    // Windows of one second, recorded as Parquet (a file per second of
    // packet time) and, to count them while they come, as JSON Lines.
    let base = format!(
        "[devices]\nwindow_secs = 1\nwindows_file = {:?}\n\n\
         [dataset]\ndir = {:?}\nsensor_name = \"rt\"\nrotate_secs = 1\n\n\
         [model]\nstate_file = {:?}\n",
        windows.display().to_string(),
        dataset.display().to_string(),
        state.display().to_string()
    );
    std::fs::write(&config, &base).unwrap();
    let alerts = dir.join("alerts.jsonl");
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Client,
        &[
            "--config",
            config.to_str().unwrap(),
            "--metrics",
            METRICS_ADDR,
            "--alerts",
            alerts.to_str().unwrap(),
            "--json",
        ],
    );
    let metrics_url = format!("http://{METRICS_ADDR}/metrics");
    let info = |lab: &Lab| -> String {
        let (_, text) = fetch(lab, &metrics_url);
        text.lines()
            .find(|l| l.starts_with("spanwatch_detection_info{"))
            .unwrap_or_else(|| panic!("no info metric:\n{text}"))
            .to_string()
    };
    let built_in = info(&lab);

    // Record: a device publishing regularly.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut published = 0;
    while complete_lines(&windows).lines().count() < TRAIN_WINDOWS || published < RECORD_PUBLISHES {
        assert!(Instant::now() < deadline, "too few windows recorded");
        assert!(mqtt_publish(&lab, &user, &password, "record"));
        published += 1;
        std::thread::sleep(RECORD_EVERY);
    }
    // A few more seconds of the same, so that the files holding those
    // windows are complete; the training set is the dataset as it is now.
    for _ in 0..5 {
        assert!(mqtt_publish(&lab, &user, &password, "record"));
        std::thread::sleep(RECORD_EVERY);
    }
    let training = dir.join("training");
    let copy = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&dataset)
        .arg(&training)
        .status()
        .unwrap();
    assert!(copy.success());

    // An attack before the reload: its alert must survive the reload.
    let wrong = netlab::random_secret();
    for i in 0..MQTT_WRONG_PASSWORDS {
        assert!(!mqtt_publish(&lab, &user, &wrong, &format!("wrong {i}")));
    }
    std::thread::sleep(Duration::from_secs(1));

    let artifact = train(&training, &model_dir, "4");
    let trained_on = artifact["training"]["windows"].as_u64().unwrap_or(0);
    assert!(
        trained_on >= TRAIN_WINDOWS as u64,
        "trained on {trained_on} recorded windows"
    );
    let new_id = artifact["model_id"].as_str().unwrap().to_string();
    assert!(!built_in.contains(&new_id), "{built_in}");

    std::fs::write(
        &config,
        format!("{base}path = {:?}\n", model_dir.display().to_string()),
    )
    .unwrap();
    let before_hup = std::time::SystemTime::now();
    lab.signal(spanwatch, "HUP");
    lab.wait_log(spanwatch, &format!("-> {new_id}"), WAIT);
    lab.wait_log(spanwatch, "learned state", WAIT);
    let reloaded = info(&lab);
    // The snapshot the metrics read is published within 200 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = reloaded;
    while !now.contains(&format!("model_id=\"{new_id}\"")) {
        assert!(Instant::now() < deadline, "metrics still show {now}");
        std::thread::sleep(Duration::from_millis(200));
        now = info(&lab);
    }
    // From here on every window that closes is scored by the new model.
    let reloaded_at = std::time::SystemTime::now();

    // After the reload: a burst the new model has never seen.
    for i in 0..BURST_WRONG_PASSWORDS {
        assert!(!mqtt_publish(&lab, &user, &wrong, &format!("burst {i}")));
    }
    std::thread::sleep(Duration::from_secs(3));
    lab.stop(spanwatch);

    let all = alert_lines(&alerts);
    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(!text.contains(&password) && !text.contains(&wrong));
    // Alert times to the microsecond, as EVE writes them (without the
    // zone), to compare with the alerts' as text. A window that ended
    // before the reload was confirmed (the attack's, say, in the second of
    // the SIGHUP) may be the old model's.
    let eve_time = |at: std::time::SystemTime| {
        let since = at.duration_since(std::time::UNIX_EPOCH).unwrap();
        let out = std::process::Command::new("date")
            .args([
                "-u",
                "-d",
                &format!("@{}.{:09}", since.as_secs(), since.subsec_nanos()),
                "+%Y-%m-%dT%H:%M:%S.%6N",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "date: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let hup_time = eve_time(before_hup);
    let reload_time = eve_time(reloaded_at);
    let brute = all
        .iter()
        .find(|a| {
            a["alert"]["signature_id"]
                .as_u64()
                .map(|id| id.to_string())
                .as_deref()
                == Some(MQTT_BRUTE_FORCE)
        })
        .unwrap_or_else(|| panic!("the brute force before the reload is lost:\n{text}"));
    assert!(
        brute["timestamp"].as_str().unwrap() < hup_time.as_str(),
        "{brute} after {hup_time}"
    );
    let model_alerts: Vec<&Value> = all
        .iter()
        .filter(|a| a["spanwatch"]["source"] == "model")
        .filter(|a| a["timestamp"].as_str().unwrap() > reload_time.as_str())
        .collect();
    assert!(
        !model_alerts.is_empty(),
        "no model alert after the reload:\n{text}"
    );
    for a in &model_alerts {
        assert_eq!(a["spanwatch"]["evidence"]["model"], new_id.as_str(), "{a}");
    }
    let summary = lab.final_summary(spanwatch);
    assert_eq!(
        summary["detection"]["alerts"]["emitted"].as_u64(),
        Some(all.len() as u64),
        "every alert raised is in the file"
    );
    assert_eq!(summary["detection"]["model"]["id"], new_id.as_str());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["format"], "spanwatch-learned");
    assert!(
        saved["devices"].as_array().is_some_and(|d| d.len() == 2),
        "{saved}"
    );
}

/// Two sensors on two mirror ports of one switch (two SPAN sessions), one
/// Prometheus scraping both, both recording windows into one dataset
/// directory: Prometheus tells the sensors apart by their label, DuckDB
/// reads rows of both sensors in one query, and `spanwatch train` fits a
/// model on the fleet's dataset.
#[test]
fn two_sensors_feed_one_prometheus_and_one_dataset() {
    let mut lab = Lab::switched("fl", 2);
    let (user, password) = start_broker(&mut lab);
    let fleet = lab.dir().join("fleet");
    let fleet_dir = fleet.to_str().unwrap().to_string();
    let sensors = [("edge-a", "127.0.0.1:9188"), ("edge-b", "127.0.0.1:9189")];
    let mut procs = Vec::new();
    for (mirror, (name, addr)) in sensors.iter().enumerate() {
        let config = lab.dir().join(format!("{name}.toml"));
        std::fs::write(&config, "[devices]\nwindow_secs = 1\n").unwrap();
        let id = lab.start_live(
            name,
            Tap::Mirror(mirror),
            &[
                "--config",
                config.to_str().unwrap(),
                "--metrics",
                addr,
                "--dataset-dir",
                &fleet_dir,
                "--sensor-name",
                name,
                "--rotate",
                "1s",
                "--json",
            ],
        );
        procs.push(id);
    }
    let targets: Vec<(&str, &str)> = sensors.iter().map(|(n, a)| (*a, *n)).collect();
    let prometheus = start_prometheus_in(&mut lab, Side::Sensor, &targets);

    // Traffic both mirror ports see, for long enough to fill some windows.
    for i in 0..40 {
        assert!(mqtt_publish(&lab, &user, &password, &format!("fleet {i}")));
        std::thread::sleep(Duration::from_millis(250));
    }
    // Both sensors scraped, told apart by their label, each with packets.
    let deadline = Instant::now() + WAIT;
    let by_sensor = loop {
        let rows = query_in(&lab, Side::Sensor, "spanwatch_packets_total");
        let mut seen: Vec<(String, f64)> = rows
            .iter()
            .map(|(labels, v)| (labels["sensor"].as_str().unwrap_or("").to_string(), *v))
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        if seen.len() == 2 && seen.iter().all(|(_, v)| *v > 0.0) {
            break seen;
        }
        assert!(Instant::now() < deadline, "Prometheus has {seen:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        by_sensor
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["edge-a", "edge-b"]
    );
    let up = query_in(&lab, Side::Sensor, "sum(up{job=\"spanwatch\"})");
    assert_eq!(up.first().map(|r| r.1), Some(2.0), "{up:?}");
    for id in procs {
        lab.stop(id);
    }
    lab.stop(prometheus);

    // One query over both sensors' partitions.
    let duckdb = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import duckdb, sys\n\
             q = \"SELECT sensor, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY sensor ORDER BY sensor\"\n\
             for sensor, n in duckdb.execute(q, [sys.argv[1] + '/windows/**/*.parquet']).fetchall():\n    print(sensor, n)",
        )
        .arg(&fleet)
        .output()
        .expect("run python3 (Debian package python3)");
    assert!(
        duckdb.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&duckdb.stderr)
    );
    let rows: Vec<(String, u64)> = String::from_utf8_lossy(&duckdb.stdout)
        .lines()
        .map(|l| {
            let (sensor, n) = l.split_once(' ').expect("sensor count");
            (sensor.to_string(), n.parse().expect("a count"))
        })
        .collect();
    assert_eq!(
        rows.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        ["edge-a", "edge-b"],
        "{rows:?}"
    );
    assert!(rows.iter().all(|(_, n)| *n > 0), "{rows:?}");
    let total: u64 = rows.iter().map(|(_, n)| n).sum();

    let model = lab.dir().join("fleet-model");
    let artifact = train(&fleet, &model, "3");
    assert_eq!(
        artifact["training"]["windows"].as_u64(),
        Some(total),
        "the model is trained on every row of both sensors"
    );
}
