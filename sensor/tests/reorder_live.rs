//! Issue 16, live: real daemons (mosquitto with mosquitto_pub at QoS 1 and
//! 2, libcoap's server with CON GETs, busybox httpd with curl) on links
//! whose hosts reorder what they send, joined by a bridge in a test
//! namespace whose ports are mirrored to a capture interface. `spanwatch
//! live` on the mirror must count the messages tshark counts on tcpdump's
//! capture of the client's link, and report no gap, retransmission or
//! protocol anomaly. Rule alerts only (`--no-model`). Needs root.
//!
//! Reordering: `tc qdisc add dev DEV root netem delay 2ms reorder 25% 50%`
//! on both hosts' ends. A kernel built without sch_netem (as some
//! container hosts are) gets the same effect from HTB, which every kernel
//! here has: frames with an odd IP ID go through a 1 Mbit/s class with a
//! one-frame burst, the others through a 1 Gbit/s class, so a burst's later
//! frames overtake its earlier ones.
//!
//! Debian packages: mosquitto, mosquitto-clients, libcoap3-bin, busybox,
//! curl, tcpdump, tshark, iproute2, procps.

mod netlab;

use std::time::Duration;

use netlab::{Lab, SERVER_ADDR, Tap, Transport};
use serde_json::Value;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(30);
const HTTP_PORT: u16 = 80;
/// Exchanges of each kind: enough for netem to reorder many segments.
const ROUNDS: usize = 6;
/// netem on each host's egress: 2 ms delay, a quarter of the packets (50 %
/// correlated) sent at once, overtaking the delayed ones (tc-netem(8)).
const NETEM: [&str; 7] = ["root", "netem", "delay", "2ms", "reorder", "25%", "50%"];

fn start_servers(lab: &mut Lab) {
    netlab::require_program("coap-server-notls", "libcoap3-bin");
    lab.start_mosquitto(None);
    lab.start_httpd(HTTP_PORT, &"x".repeat(20_000));
    let coap = lab.start_server(
        "coap-server",
        "coap-server-notls",
        &["-A", SERVER_ADDR, "-p", "5683"],
    );
    lab.wait_listening(coap, Transport::Udp, 5683);
}

/// HTB classes and the filter that splits a host's frames between them
/// by the low bit of the IP ID (offset 4 of the IPv4 header); segments are
/// kept to one frame each (no GSO) so that the split applies per frame.
fn htb_split(dev: &str) -> [Vec<String>; 5] {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    [
        words(&format!("-force link set dev {dev} gso_max_segs 1")),
        words(&format!(
            "qdisc add dev {dev} root handle 1: htb default 10"
        )),
        words(&format!(
            "class add dev {dev} parent 1: classid 1:10 htb rate 1gbit"
        )),
        words(&format!(
            "class add dev {dev} parent 1: classid 1:20 htb rate 1mbit ceil 1mbit burst 1600 cburst 1600"
        )),
        words(&format!(
            "filter add dev {dev} parent 1: protocol ip u32 match u16 0x0001 0x0001 at 4 flowid 1:20"
        )),
    ]
}

/// `program ARGS` in the client (or server) namespace: success, stderr.
fn run_in(lab: &mut Lab, server: bool, program: &str, args: &[String]) -> (bool, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if server {
        let id = lab.start_server(program, program, &args);
        let ok = lab.wait_exit(id, WAIT).success();
        (ok, lab.log(id))
    } else {
        let run = lab.client(program, program, &args, None, CLIENT_TIMEOUT);
        (run.status.success(), run.stderr)
    }
}

/// Reordering on both hosts' ends of their links: netem, or the HTB split
/// where the kernel has no netem.
fn reorder_links(lab: &mut Lab) {
    for server in [false, true] {
        let dev = if server {
            lab.server_interface().to_string()
        } else {
            lab.client_interface().to_string()
        };
        let mut netem = vec!["qdisc", "add", "dev", dev.as_str()];
        netem.extend(NETEM);
        let netem: Vec<String> = netem.into_iter().map(String::from).collect();
        let (ok, err) = run_in(lab, server, "tc", &netem);
        if ok {
            continue;
        }
        assert!(err.contains("qdisc kind is unknown"), "tc netem: {err}");
        for (i, step) in htb_split(&dev).into_iter().enumerate() {
            let program = if i == 0 { "ip" } else { "tc" };
            let (ok, err) = run_in(lab, server, program, &step);
            assert!(ok, "tc {step:?}: {err}");
        }
    }
}

fn traffic(lab: &Lab) {
    let url = format!("http://{SERVER_ADDR}:{HTTP_PORT}/index.html");
    for i in 0..ROUNDS {
        for qos in ["1", "2"] {
            let message = format!("reading {i}");
            lab.client_ok(
                "mosquitto_pub",
                "mosquitto_pub",
                &[
                    "-h",
                    SERVER_ADDR,
                    "-t",
                    "site/meter",
                    "-q",
                    qos,
                    "-m",
                    &message,
                    "-r",
                ],
                CLIENT_TIMEOUT,
            );
        }
        lab.client_ok(
            "mosquitto_sub",
            "mosquitto_sub",
            &["-h", SERVER_ADDR, "-t", "site/meter", "-q", "2", "-C", "1"],
            CLIENT_TIMEOUT,
        );
        lab.client_ok(
            "coap-client",
            "coap-client-notls",
            &["-m", "get", &format!("coap://{SERVER_ADDR}/time")],
            CLIENT_TIMEOUT,
        );
        lab.http_get(&url, None);
    }
}

/// tshark's count of each value of `field` among the frames `filter` matches.
fn tshark_counts(pcap: &std::path::Path, filter: &str, field: &str) -> Value {
    let rows = netlab::tshark_fields(pcap, filter, &[field]);
    let counts = netlab::count_values(&rows, 0);
    Value::Object(
        counts
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
    )
}

#[test]
fn reordering_links_give_tshark_counts_and_no_false_anomalies() {
    let mut lab = Lab::switched("ro", 1);
    start_servers(&mut lab);
    reorder_links(&mut lab);
    let capture = lab.start_capture("netem");
    let alerts = lab.dir().join("alerts.jsonl");
    let spanwatch = lab.start_live(
        "spanwatch",
        Tap::Mirror(0),
        &["--no-model", "--alerts", alerts.to_str().unwrap(), "--json"],
    );
    traffic(&lab);
    std::thread::sleep(Duration::from_secs(1));
    lab.stop(spanwatch);
    let pcap = lab.finish_capture(capture);
    let summary = lab.final_summary(spanwatch);
    let protocols = &summary["protocols"];
    let ra = &summary["reassembly"];

    // netem did reorder: TCP segments arrived out of order at the mirror.
    let reordered = ra["out_of_order_segments"].as_u64().unwrap()
        + ra["held_for_peer_segments"].as_u64().unwrap()
        + ra["early_segments"].as_u64().unwrap();
    assert!(reordered > 0, "no reordering reached the sensor: {ra}");
    println!("reassembly at the mirror: {ra}");

    // The same messages as tshark on the client's link.
    assert_eq!(
        protocols["mqtt"]["msgtype"],
        tshark_counts(&pcap, "mqtt", "mqtt.msgtype"),
        "MQTT messages per type"
    );
    assert_eq!(
        protocols["coap"]["code"],
        tshark_counts(&pcap, "coap", "coap.code"),
        "CoAP messages per code"
    );
    // tshark does not reassemble out-of-order segments by default, so a
    // reordered response body hides its head from `http.response`: count
    // the segments that start a request or a response instead.
    let starting = |text: &str| {
        let filter = format!(
            "tcp.port == {HTTP_PORT} && tcp.payload[0:{}] == \"{text}\"",
            text.len()
        );
        netlab::tshark_fields(&pcap, &filter, &["frame.number"]).len()
    };
    let requests = starting("GET ");
    let responses = starting("HTTP/1.");
    assert_eq!(
        protocols["http"]["requests"].as_u64(),
        Some(requests as u64)
    );
    assert_eq!(
        protocols["http"]["responses"].as_u64(),
        Some(responses as u64)
    );
    assert_eq!(requests, ROUNDS);

    // No false findings: no gap, no retransmission the hosts did not make,
    // no protocol anomaly, no rule alert.
    assert_eq!(ra["gaps"].as_u64(), Some(0), "{ra}");
    let tshark_retrans =
        netlab::tshark_fields(&pcap, "tcp.analysis.retransmission", &["frame.number"]);
    if tshark_retrans.is_empty() {
        assert_eq!(ra["retransmitted_bytes"].as_u64(), Some(0), "{ra}");
    }
    for p in ["http", "mqtt", "coap"] {
        assert_eq!(
            protocols[p]["anomalies"],
            Value::Object(Default::default()),
            "{p} anomalies"
        );
    }
    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(
        text.trim().is_empty(),
        "rule alerts on benign traffic:\n{text}"
    );
}
