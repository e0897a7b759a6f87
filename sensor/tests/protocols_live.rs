//! The protocol parsers against traffic from real software: libcoap's
//! coap-server/coap-client, inetutils telnetd with the system's /bin/login,
//! mosquitto with mosquitto_pub/mosquitto_sub, and busybox udhcpd with
//! busybox udhcpc talk across a veth link between
//! two network namespaces these tests create. tcpdump captures the client end,
//! tshark's counts over the capture are the expected values, and
//! `spanwatch replay --json` must report the same per-protocol counts in its
//! `protocols` section. Telnet logins, which tshark does not decode, are
//! compared with what the test itself did. Needs root.
//!
//! Debian packages: libcoap3-bin, inetutils-inetd, inetutils-telnetd, login,
//! passwd, python3-minimal, mosquitto, mosquitto-clients, busybox, tcpdump,
//! tshark, iproute2, procps.

mod common;
mod netlab;

use netlab::{Lab, Rows, SERVER_ADDR, Transport};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Bound on one short client exchange (a CoAP request, an MQTT publish).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the scripted Telnet session (login's failure delay is ~3 s).
const TELNET_TIMEOUT: Duration = Duration::from_secs(90);
/// Frames with an expert item of Error severity (malformed packets among
/// them). Warnings are allowed: tshark 4.0 warns about option 292
/// (Request-Tag, RFC 9175), which libcoap sends with block-wise PUTs.
const EXPERT_ERRORS: &str = "_ws.expert.severity >= 8388608";
/// The five protocols of the `protocols` section.
const PROTOCOLS: [&str; 5] = ["http", "mqtt", "coap", "telnet", "dhcp"];

/// spanwatch's summary of `pcap`, which must have a `protocols` section.
fn spanwatch_protocols(pcap: &Path) -> (Value, String) {
    let (out, json) = common::replay_json(&[pcap], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "spanwatch replay failed ({}):\n{stderr}",
        out.status
    );
    let summary = json.unwrap_or_else(|| panic!("replay summary is not JSON:\n{stdout}"));
    let protocols = summary
        .get("protocols")
        .filter(|p| p.is_object())
        .unwrap_or_else(|| panic!("replay summary has no `protocols` object:\n{stdout}"))
        .clone();
    (protocols, format!("{stdout}\n{stderr}"))
}

/// `{value: count}` as a JSON object.
fn counts(map: BTreeMap<String, u64>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

/// Number of distinct TCP/UDP conversations among the frames `filter` matches.
fn tshark_flows(pcap: &Path, filter: &str) -> u64 {
    let rows = netlab::tshark_fields(pcap, filter, &["tcp.stream", "udp.stream"]);
    let tcp = netlab::distinct(&rows, 0).len();
    let udp = netlab::distinct(&rows, 1).len();
    (tcp + udp) as u64
}

/// Compare spanwatch's `protocols` section with the expected one, key by key
/// (lists as sets), for every key the expectation names; one panic lists all
/// differences.
fn assert_protocols_match(actual: &Value, expected: &Map<String, Value>, context: &str) {
    let mut diffs = Vec::new();
    for (protocol, want) in expected {
        let Some(want) = want.as_object() else {
            continue;
        };
        for (key, want_value) in want {
            let got = &actual[protocol.as_str()][key.as_str()];
            let equal = match (got, want_value) {
                (Value::Array(g), Value::Array(w)) => {
                    let mut g: Vec<String> = g.iter().map(Value::to_string).collect();
                    let mut w: Vec<String> = w.iter().map(Value::to_string).collect();
                    g.sort();
                    w.sort();
                    g == w
                }
                (g, w) => g == w,
            };
            if !equal {
                diffs.push(format!(
                    "protocols.{protocol}.{key}: spanwatch {got}, expected {want_value}"
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{context}: spanwatch disagrees with the expected counts:\n  {}\nspanwatch's section: {actual:#}",
        diffs.join("\n  ")
    );
}

/// Judge spanwatch's replay of `pcap`, a capture of `present` only: its
/// `protocols` section must hold `section` for that protocol, and `flows: 0`
/// for every other one, checked against tshark too (it must see none of them
/// either). None of `secrets` (the passwords the test sent) may appear in
/// spanwatch's output.
fn assert_replay_matches(
    pcap: &Path,
    present: &str,
    section: Value,
    secrets: &[&str],
    context: &str,
) {
    let mut expected = Map::new();
    expected.insert(present.to_string(), section);
    for protocol in PROTOCOLS.iter().filter(|p| **p != present) {
        let flows = tshark_flows(pcap, protocol);
        assert_eq!(flows, 0, "tshark sees {protocol} in the {present} capture");
        expected.insert(protocol.to_string(), json!({ "flows": flows }));
    }
    let (actual, output) = spanwatch_protocols(pcap);
    assert!(
        !secrets.iter().any(|s| output.contains(s)),
        "a {present} password appears in spanwatch's output"
    );
    assert_protocols_match(&actual, &expected, context);
}

// ---------------------------------------------------------------- CoAP

/// Resource big enough for block-wise transfer at 64-byte blocks.
const BIG_RESOURCE_BYTES: usize = 2000;
/// An unassigned option number in the experimental range (RFC 7252 §12.2);
/// odd, so critical (§5.4.1): the server must reject the request.
const UNKNOWN_CRITICAL_OPTION: &str = "65001";

/// CoAP messages on the wire, for tshark. coap-client ends an observation
/// with a NON GET and exits without waiting, so the server's NON answer can
/// meet a closed port: tshark then also dissects the CoAP message quoted in
/// the ICMP port-unreachable error. That quote is not a message of any CoAP
/// flow (the answer itself is counted once, where it crossed the link), so
/// tshark's counts leave it out.
const COAP_ON_THE_WIRE: &str = "coap && !icmp";

/// The CoAP expectations tshark gives for the capture.
fn coap_expected_from_tshark(pcap: &Path) -> Value {
    let rows: Rows = netlab::tshark_fields(
        pcap,
        COAP_ON_THE_WIRE,
        &[
            "coap.code",
            "coap.type",
            "coap.opt.uri_path",
            "coap.opt.observe",
            "coap.opt.block_number",
        ],
    );
    let mut uri_paths: Vec<String> = rows
        .iter()
        .filter(|r| !r[2].is_empty())
        .map(|r| r[2].join("/"))
        .collect();
    uri_paths.sort();
    uri_paths.dedup();
    json!({
        "flows": tshark_flows(pcap, COAP_ON_THE_WIRE),
        "messages": netlab::count_occurrences(&rows, 0),
        "code": counts(netlab::count_values(&rows, 0)),
        "type": counts(netlab::count_values(&rows, 1)),
        "uri_paths": uri_paths,
        "observe": netlab::rows_with(&rows, 3),
        "block": netlab::rows_with(&rows, 4),
    })
}

#[test]
fn coap_from_libcoap_matches_tshark() {
    netlab::require_program("coap-server-notls", "libcoap3-bin");
    netlab::require_program("coap-client-notls", "libcoap3-bin");
    let mut lab = Lab::new("co");
    let server = lab.start_server(
        "coap-server",
        "coap-server-notls",
        &["-A", SERVER_ADDR, "-p", "5683", "-d", "10"],
    );
    lab.wait_listening(server, Transport::Udp, 5683);
    let big = lab.dir().join("big.txt");
    let big_copy = lab.dir().join("big-copy.txt");
    let body: String = (0..BIG_RESOURCE_BYTES)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    std::fs::write(&big, &body).unwrap();
    let (big, big_copy) = (big.to_str().unwrap(), big_copy.to_str().unwrap());
    let url = |path: &str| format!("coap://{SERVER_ADDR}/{path}");
    let capture = lab.start_capture("coap");
    let coap = |what: &str, args: &[&str]| -> String {
        let mut all = vec!["-B", "5"];
        all.extend_from_slice(args);
        lab.client_ok(what, "coap-client-notls", &all, CLIENT_TIMEOUT)
    };

    let core = coap("discovery", &["-o", "-", &url(".well-known/core")]);
    assert!(core.contains("</time>"), "no /time in discovery: {core}");
    coap("put", &["-m", "put", "-e", "21.5", &url("sensors/temp")]);
    let value = coap("get-non", &["-N", "-o", "-", &url("sensors/temp")]);
    assert!(value.contains("21.5"), "NON GET returned {value:?}");
    coap("post", &["-m", "post", "-e", "22", &url("sensors/temp")]);
    coap(
        "block1-put",
        &["-m", "put", "-b", "64", "-f", big, &url("big")],
    );
    coap("block2-get", &["-b", "64", "-o", big_copy, &url("big")]);
    assert_eq!(
        std::fs::read_to_string(big_copy).unwrap_or_default(),
        body,
        "block-wise GET did not return what block-wise PUT stored"
    );
    let ticks = coap("observe", &["-s", "5", "-o", "-", &url("time")]);
    assert!(!ticks.is_empty(), "observe of /time returned nothing");
    // An unknown critical option: 4.02 Bad Option to a CON request, RST to a
    // NON one (RFC 7252 §5.4.1). coap-client then waits for its -B deadline
    // and its exit status is not the point, so it is not checked.
    let option = format!("{UNKNOWN_CRITICAL_OPTION},x");
    for (what, non) in [("bad-option-con", false), ("bad-option-non", true)] {
        let mut args = vec!["-B", "1", "-O", option.as_str()];
        if non {
            args.push("-N");
        }
        let target = url("sensors/temp");
        args.push(&target);
        lab.client(what, "coap-client-notls", &args, None, CLIENT_TIMEOUT);
    }
    coap("delete", &["-m", "delete", &url("sensors/temp")]);
    let pcap = lab.finish_capture(capture);
    lab.stop(server);

    // The traffic did what it was meant to, as tshark sees it.
    netlab::assert_no_frames(
        &pcap,
        EXPERT_ERRORS,
        "tshark finds errors in the CoAP capture",
    );
    let coap_expected = coap_expected_from_tshark(&pcap);
    for code in ["1", "2", "3", "4", "65", "66", "68", "69", "95", "130"] {
        assert!(
            coap_expected["code"][code].as_u64() > Some(0),
            "tshark sees no CoAP code {code}: {coap_expected}"
        );
    }
    for ty in ["0", "1", "2", "3"] {
        assert!(
            coap_expected["type"][ty].as_u64() > Some(0),
            "tshark sees no CoAP type {ty}: {coap_expected}"
        );
    }
    assert!(
        coap_expected["observe"].as_u64() >= Some(3),
        "{coap_expected}"
    );
    assert!(
        coap_expected["block"].as_u64() >= Some(2 * 31),
        "{coap_expected}"
    );
    // Anomalies: every message carrying the unassigned critical option (our
    // two requests, and libcoap's 4.02 echoes it back), and every RST.
    let with_option = format!(
        "{COAP_ON_THE_WIRE} && coap.opt.name contains \"Unknown Option ({UNKNOWN_CRITICAL_OPTION})\""
    );
    let unknown_critical = netlab::tshark_fields(&pcap, &with_option, &["frame.number"]).len();
    assert!(
        unknown_critical >= 2,
        "tshark sees option {UNKNOWN_CRITICAL_OPTION} in {unknown_critical} messages, not in both requests"
    );
    let resets = coap_expected["type"]["3"].clone();

    let mut section = coap_expected.as_object().cloned().unwrap_or_default();
    section.insert(
        "anomalies".into(),
        json!({ "unknown_critical_option": unknown_critical, "reset_received": resets }),
    );
    assert_replay_matches(
        &pcap,
        "coap",
        Value::Object(section),
        &[],
        "libcoap capture",
    );
}

// ---------------------------------------------------------------- Telnet

/// A scripted Telnet client (Python's `socket`): answers option negotiation
/// like a terminal client (ECHO/SGA accepted from the server; SGA, TTYPE and
/// NAWS offered), logs in once with the wrong password (first stdin line)
/// and once with the right one (second line), runs one command and exits.
/// Every wait is bounded; a missing prompt ends it with a message and exit 1.
const TELNET_CLIENT: &str = r#"
import socket, sys, time
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
wrong, right = sys.stdin.read().split("\n")[:2]
IAC, SB, SE, WILL, WONT, DO, DONT = 255, 250, 240, 251, 252, 253, 254
ECHO, SGA, TTYPE, NAWS = 1, 3, 24, 31
sock = socket.create_connection((host, port), timeout=10)
text, sub = bytearray(), bytearray()
state, verb, answered = "data", 0, set()

def negotiate(verb, opt):
    if (verb, opt) in answered:
        return
    answered.add((verb, opt))
    if verb == WILL:
        reply = DO if opt in (ECHO, SGA) else DONT
    elif verb == DO:
        reply = WILL if opt in (SGA, TTYPE, NAWS) else WONT
    else:
        return
    sock.sendall(bytes([IAC, reply, opt]))
    if verb == DO and opt == NAWS:
        sock.sendall(bytes([IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE]))

def feed(data):
    global state, verb
    for b in data:
        if state == "data":
            if b == IAC:
                state = "iac"
            else:
                text.append(b)
        elif state == "iac":
            if b in (WILL, WONT, DO, DONT):
                verb, state = b, "opt"
            elif b == SB:
                state = "sb"
            else:
                if b == IAC:
                    text.append(b)
                state = "data"
        elif state == "opt":
            negotiate(verb, b)
            state = "data"
        elif state == "sb":
            if b == IAC:
                state = "sbiac"
            else:
                sub.append(b)
        elif state == "sbiac":
            if b == SE:
                if bytes(sub) == bytes([TTYPE, 1]):
                    sock.sendall(bytes([IAC, SB, TTYPE, 0]) + b"XTERM" + bytes([IAC, SE]))
                del sub[:]
                state = "data"
            else:
                state = "sb"

def expect(needle, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        at = text.find(needle)
        if at >= 0:
            del text[: at + len(needle)]
            return
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit("telnet client: no %r within %ss; last text %r" % (needle, timeout, bytes(text[-200:])))
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        if not data:
            sys.exit("telnet client: connection closed while waiting for %r" % needle)
        feed(data)

def send(line):
    sock.sendall(line.encode() + b"\r\n")

for password, right_one in ((wrong, False), (right, True)):
    expect(b"login: ")
    send(user)
    expect(b"Password: ")
    send(password)
    if not right_one:
        expect(b"Login incorrect")
expect(b"$ ")
send("echo SW_$((20+22))_OK")
expect(b"SW_42_OK")
send("exit")
deadline = time.monotonic() + 15
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        sys.exit("telnet client: server did not close the connection after exit")
    sock.settimeout(left)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        continue
    if not data:
        break
    feed(data)
print("telnet client: logged out")
"#;

#[test]
fn telnet_login_through_real_telnetd_matches_tshark() {
    netlab::require_program("/usr/sbin/inetutils-inetd", "inetutils-inetd");
    netlab::require_program("/usr/sbin/telnetd", "inetutils-telnetd");
    netlab::require_program("/bin/login", "login");
    netlab::require_program("python3", "python3-minimal");
    let mut lab = Lab::new("tn");
    let user = format!("swtel{}", std::process::id());
    let password = lab.add_user(&user);
    let wrong = netlab::other_secret(&password);
    let conf = lab.dir().join("inetd.conf");
    std::fs::write(
        &conf,
        format!("{SERVER_ADDR}:23 stream tcp nowait root /usr/sbin/telnetd telnetd\n"),
    )
    .unwrap();
    let pidfile = format!("--pidfile={}", lab.dir().join("inetd.pid").display());
    let inetd = lab.start_server(
        "inetd",
        "/usr/sbin/inetutils-inetd",
        &["-d", &pidfile, conf.to_str().unwrap()],
    );
    lab.wait_listening(inetd, Transport::Tcp, 23);
    let capture = lab.start_capture("telnet");
    let run = lab.client(
        "telnet-client",
        "python3",
        &["-c", TELNET_CLIENT, SERVER_ADDR, "23", &user],
        Some(&format!("{wrong}\n{password}\n")),
        TELNET_TIMEOUT,
    );
    assert!(
        run.status.success(),
        "scripted telnet session failed ({}): {}{}\ninetd:\n{}",
        run.status,
        run.stdout,
        run.stderr,
        lab.log(inetd)
    );
    let pcap = lab.finish_capture(capture);
    lab.stop(inetd);

    let rows = netlab::tshark_fields(&pcap, "telnet", &["telnet.cmd"]);
    let iac_commands = netlab::count_occurrences(&rows, 0);
    let verbs = netlab::count_values(&rows, 0);
    assert!(iac_commands > 0, "tshark sees no Telnet commands");
    for verb in ["250", "240", "251", "252", "253", "254"] {
        assert!(
            verbs.contains_key(verb),
            "tshark sees no IAC {verb}: {verbs:?}"
        );
    }
    netlab::assert_no_frames(
        &pcap,
        EXPERT_ERRORS,
        "tshark finds errors in the Telnet capture",
    );

    let flows = tshark_flows(&pcap, "telnet");
    assert_eq!(flows, 1, "one Telnet connection");
    let section = json!({
        "flows": flows,
        "iac_commands": iac_commands,
        // What the test did (tshark has no login field).
        "logins": { "success": 1, "failure": 1, "unknown": 0 },
        "usernames": [user],
        "anomalies": {},
    });
    assert_replay_matches(
        &pcap,
        "telnet",
        section,
        &[&password, &wrong],
        "telnetd capture",
    );
}

// ---------------------------------------------------------------- MQTT

#[test]
fn mqtt_from_mosquitto_matches_tshark() {
    netlab::require_program("mosquitto_passwd", "mosquitto");
    netlab::require_program("mosquitto_pub", "mosquitto-clients");
    netlab::require_program("mosquitto_sub", "mosquitto-clients");
    let mut lab = Lab::new("mq");
    let user = "swmqtt";
    let password = netlab::random_secret();
    let wrong = netlab::other_secret(&password);
    let broker = lab.start_mosquitto(Some((user, &password)));
    let capture = lab.start_capture("mqtt");
    let auth = ["-h", SERVER_ADDR, "-u", user, "-P", password.as_str()];
    let publish = |lab: &Lab, what: &str, extra: &[&str]| {
        let mut args = auth.to_vec();
        args.extend_from_slice(extra);
        lab.client_ok(what, "mosquitto_pub", &args, CLIENT_TIMEOUT);
    };

    // A retained QoS 1 message over 3.1.1, before anyone subscribes.
    publish(
        &lab,
        "retained",
        &[
            "-V",
            "mqttv311",
            "-t",
            "sw/lab/status",
            "-m",
            "online",
            "-r",
            "-q",
            "1",
        ],
    );
    // An MQTT 5 subscriber with two wildcard filters and a CONNECT property;
    // it gets the retained message, then the four publishes below.
    let mut sub_args = auth.to_vec();
    sub_args.extend_from_slice(&[
        "-V",
        "mqttv5",
        "-i",
        "swsub",
        "-q",
        "2",
        "-v",
        "-C",
        "5",
        "-W",
        "20",
        "-t",
        "sw/+/temp",
        "-t",
        "sw/lab/#",
        "-D",
        "connect",
        "session-expiry-interval",
        "30",
    ]);
    let sub = lab.start_client("mosquitto_sub", "mosquitto_sub", &sub_args);
    lab.wait_log(sub, "sw/lab/status online", CLIENT_TIMEOUT);
    publish(
        &lab,
        "qos0-v311",
        &[
            "-V",
            "mqttv311",
            "-t",
            "sw/kitchen/temp",
            "-m",
            "21",
            "-q",
            "0",
        ],
    );
    publish(
        &lab,
        "qos1-v5",
        &[
            "-V",
            "mqttv5",
            "-t",
            "sw/kitchen/temp",
            "-m",
            "22",
            "-q",
            "1",
            "-D",
            "publish",
            "user-property",
            "sensor",
            "k1",
            "-D",
            "publish",
            "message-expiry-interval",
            "60",
        ],
    );
    publish(
        &lab,
        "qos2-v5",
        &[
            "-V",
            "mqttv5",
            "-t",
            "sw/garage/temp",
            "-m",
            "23",
            "-q",
            "2",
            "-D",
            "publish",
            "content-type",
            "text/plain",
        ],
    );
    publish(
        &lab,
        "qos2-v311",
        &["-V", "mqttv311", "-t", "sw/lab/hum", "-m", "40", "-q", "2"],
    );
    let status = lab.wait_exit(sub, CLIENT_TIMEOUT);
    let received = lab.log(sub);
    assert!(
        status.success() && received.contains("sw/lab/hum 40"),
        "mosquitto_sub did not get every message ({status}):\n{received}"
    );
    // Refused CONNECTs: a wrong password, over 3.1.1 and over 5.
    for (what, version) in [("refused-v311", "mqttv311"), ("refused-v5", "mqttv5")] {
        let run = lab.client(
            what,
            "mosquitto_pub",
            &[
                "-h",
                SERVER_ADDR,
                "-u",
                user,
                "-P",
                &wrong,
                "-V",
                version,
                "-t",
                "sw/x",
                "-m",
                "x",
            ],
            None,
            CLIENT_TIMEOUT,
        );
        assert!(
            !run.status.success(),
            "{what}: the broker accepted a wrong password"
        );
    }
    let pcap = lab.finish_capture(capture);
    lab.stop(broker);

    let rows = netlab::tshark_fields(
        &pcap,
        "mqtt",
        &[
            "mqtt.msgtype",
            "mqtt.ver",
            "mqtt.username",
            "mqtt.passwd",
            "mqtt.conack.val",
            "mqtt.connack.reason_code",
        ],
    );
    let msgtype = netlab::count_values(&rows, 0);
    for t in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "14"] {
        assert!(
            msgtype.contains_key(t),
            "tshark sees no MQTT type {t}: {msgtype:?}"
        );
    }
    let versions = netlab::count_values(&rows, 1);
    assert!(
        versions.contains_key("4") && versions.contains_key("5"),
        "{versions:?}"
    );
    let v3 = netlab::count_values(&rows, 4);
    let v5 = netlab::count_values(&rows, 5);
    assert!(v3.contains_key("5"), "no refused 3.1.1 CONNACK: {v3:?}");
    assert!(
        v5.keys().any(|k| k != "0"),
        "no refused MQTT 5 CONNACK: {v5:?}"
    );
    netlab::assert_no_frames(
        &pcap,
        EXPERT_ERRORS,
        "tshark finds errors in the MQTT capture",
    );

    let section = json!({
        "flows": tshark_flows(&pcap, "mqtt"),
        "messages": netlab::count_occurrences(&rows, 0),
        "msgtype": counts(msgtype),
        "connect_versions": counts(versions),
        "usernames": netlab::distinct(&rows, 2),
        "connect_with_password": netlab::count_occurrences(&rows, 3),
        "connack_return_code_v3": counts(v3),
        "connack_reason_code_v5": counts(v5),
        "anomalies": {},
    });
    assert_replay_matches(
        &pcap,
        "mqtt",
        section,
        &[&password, &wrong],
        "mosquitto capture",
    );
}

// ---------------------------------------------------------------- DHCP

/// First and last address udhcpd leases (in SERVER_ADDR's /24).
const DHCP_POOL: (&str, &str) = ("10.233.0.100", "10.233.0.110");
/// Bound on each step of a udhcpc run (its DISCOVER retries are 1 s apart).
const DHCP_STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// udhcpc's event script: configures the leased address, so that the renewal
/// and the DHCPRELEASE leave from it (RFC 2131 §4.4.5, §4.4.6).
const UDHCPC_SCRIPT: &str = "#!/bin/sh\n\
case \"$1\" in\n\
bound|renew) ip addr replace \"$ip/24\" dev \"$interface\" ;;\n\
esac\n\
exit 0\n";

/// Wait (bounded) until `needle` occurs `n` times in the process's output.
fn wait_count(lab: &mut Lab, id: netlab::ProcId, needle: &str, n: usize) {
    let deadline = std::time::Instant::now() + DHCP_STEP_TIMEOUT;
    while lab.log(id).matches(needle).count() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not seen {n} times within {DHCP_STEP_TIMEOUT:?}:\n{}",
            lab.log(id)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dhcp_from_busybox_matches_tshark() {
    netlab::require_program("busybox", "busybox");
    let mut lab = Lab::new("dh");
    let conf = lab.dir().join("udhcpd.conf");
    let leases = lab.dir().join("udhcpd.leases");
    std::fs::write(&leases, "").unwrap();
    std::fs::write(
        &conf,
        format!(
            "start {}\nend {}\ninterface {}\nlease_file {}\npidfile {}\nmax_leases 10\n\
             option subnet 255.255.255.0\noption lease 600\n",
            DHCP_POOL.0,
            DHCP_POOL.1,
            lab.server_interface(),
            leases.display(),
            lab.dir().join("udhcpd.pid").display(),
        ),
    )
    .unwrap();
    let script = lab.dir().join("udhcpc.script");
    std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // -a 100: 100 ms for the ARP check of an offered address.
    let server = lab.start_server(
        "udhcpd",
        "busybox",
        &["udhcpd", "-f", "-a", "100", conf.to_str().unwrap()],
    );
    lab.wait_log(server, "started", DHCP_STEP_TIMEOUT);
    let capture = lab.start_capture("dhcp");
    let iface = lab.client_interface().to_string();
    let script = script.to_str().unwrap().to_string();
    // Two clients in turn, each with its own host name (option 12) and
    // vendor class (option 60); the second asks for an address (option 50)
    // and for broadcast replies. Each takes a lease (DISCOVER, OFFER,
    // REQUEST, ACK), renews it on SIGUSR1 (unicast REQUEST and ACK) and
    // releases it on SIGTERM (-R: unicast RELEASE).
    let runs: [(&str, &str, &[&str]); 2] = [
        ("swdhcp-cam", "swvendor-cam", &[]),
        (
            "swdhcp-plug",
            "swvendor-plug",
            &["-B", "-r", "10.233.0.105"],
        ),
    ];
    for (hostname, vendor, extra) in runs {
        let host_option = format!("hostname:{hostname}");
        let mut args = vec![
            "udhcpc",
            "-i",
            &iface,
            "-f",
            "-n",
            "-R",
            "-t",
            "5",
            "-T",
            "1",
            "-s",
            &script,
            "-x",
            &host_option,
            "-V",
            vendor,
        ];
        args.extend_from_slice(extra);
        let client = lab.start_client(hostname, "busybox", &args);
        wait_count(&mut lab, client, "obtained", 1);
        lab.signal(client, "USR1");
        wait_count(&mut lab, client, "obtained", 2);
        lab.stop(client);
        let log = lab.log(client);
        assert!(log.contains("unicasting a release"), "{hostname}: {log}");
    }
    let pcap = lab.finish_capture(capture);
    lab.stop(server);

    let rows = netlab::tshark_fields(
        &pcap,
        "dhcp",
        &[
            "dhcp.option.dhcp",
            "dhcp.option.hostname",
            "dhcp.option.vendor_class_id",
            "dhcp.hw.mac_addr",
        ],
    );
    let types = netlab::count_values(&rows, 0);
    // Per client: DISCOVER, OFFER, 2 REQUEST, 2 ACK, RELEASE.
    let want: BTreeMap<String, u64> = [("1", 2), ("2", 2), ("3", 4), ("5", 4), ("7", 2)]
        .into_iter()
        .map(|(t, n)| (t.to_string(), n))
        .collect();
    assert_eq!(types, want, "tshark's DHCP message types");
    let hostnames = netlab::distinct(&rows, 1);
    assert_eq!(
        hostnames,
        ["swdhcp-cam", "swdhcp-plug"],
        "tshark's host names"
    );
    netlab::assert_no_frames(
        &pcap,
        EXPERT_ERRORS,
        "tshark finds errors in the DHCP capture",
    );

    let section = json!({
        "flows": tshark_flows(&pcap, "dhcp"),
        "messages": rows.len(),
        "message_type": counts(types),
        "hostnames": hostnames,
        "vendor_classes": netlab::distinct(&rows, 2),
        "anomalies": {},
    });
    assert_replay_matches(&pcap, "dhcp", section, &[], "udhcpd capture");

    // The device inventory names the client's MAC (tshark's chaddr) after
    // the host names it sent.
    let macs = netlab::distinct(&rows, 3);
    let [mac] = macs.as_slice() else {
        panic!("one client MAC expected, tshark sees {macs:?}")
    };
    let out = common::spanwatch()
        .args(["devices", "--json"])
        .arg(&pcap)
        .output()
        .expect("run spanwatch devices");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let devices: Value = serde_json::from_slice(&out.stdout).expect("devices --json");
    let device = devices
        .as_array()
        .and_then(|d| d.iter().find(|d| d["mac"] == mac.as_str()))
        .unwrap_or_else(|| panic!("no device {mac}: {devices:#}"));
    for hostname in ["swdhcp-cam", "swdhcp-plug"] {
        assert!(
            device["names"]
                .as_array()
                .is_some_and(|n| n.contains(&json!(["dhcp_hostname", hostname]))),
            "device {mac} is not named {hostname}: {device:#}"
        );
    }
}
