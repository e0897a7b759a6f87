//! Per-protocol message counts of `spanwatch replay` against tshark's, as
//! recorded in MANIFEST.tsv's `expected` column, for every shared capture
//! (a protocol tshark did not see is expected at 0).
//! Where spanwatch and tshark legitimately disagree, an exception below names
//! the file, the field, spanwatch's value and the reason.

mod common;

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// (file, protocol.field, spanwatch's value, reason).
const EXCEPTIONS: &[(&str, &str, &str, &str)] = &[
    (
        "coap/coap-get-icmpv6-port-unreachable.pcap",
        "coap.code",
        r#"{"1":1}"#,
        ICMP_QUOTE,
    ),
    (
        "coap/coap-get-icmpv6-port-unreachable.pcap",
        "coap.type",
        r#"{"0":1}"#,
        ICMP_QUOTE,
    ),
    (
        "generic/linux-sll-v1-ipv6-http-snaplen-cut.pcap",
        "http.responses",
        "0",
        SNAPLEN_HEAD,
    ),
    (
        "generic/linux-sll-v1-ipv6-http-snaplen-cut.pcap",
        "http.status_codes",
        "{}",
        SNAPLEN_HEAD,
    ),
    (
        "generic/pcapng-ether-and-linux-sll-with-comments.pcapng",
        "http.responses",
        "0",
        SNAPLEN_HEAD,
    ),
    (
        "generic/pcapng-ether-and-linux-sll-with-comments.pcapng",
        "http.status_codes",
        "{}",
        SNAPLEN_HEAD,
    ),
    (
        "generic/vlan-two-tags-http.pcap",
        "http.responses",
        "1",
        BODY_CUT,
    ),
    (
        "generic/vlan-two-tags-http.pcap",
        "http.status_codes",
        r#"{"200":1}"#,
        BODY_CUT,
    ),
    (
        "http/http-401-challenge-then-basic-auth.pcap",
        "http.responses",
        "2",
        BODY_CUT,
    ),
    (
        "http/http-401-challenge-then-basic-auth.pcap",
        "http.status_codes",
        r#"{"200":1,"401":1}"#,
        BODY_CUT,
    ),
    (
        "http/http-connect-tunnel-request-split-port8001.pcap",
        "http.requests",
        "1",
        TUNNEL,
    ),
    (
        "http/http-connect-tunnel-request-split-port8001.pcap",
        "http.methods",
        r#"{"CONNECT":1}"#,
        TUNNEL,
    ),
    (
        "http/http-lowercase-headers-port1234.pcap",
        "http.responses",
        "1",
        "tshark does not recognise this response with lower-case header names (corpus README)",
    ),
    (
        "http/http-lowercase-headers-port1234.pcap",
        "http.status_codes",
        r#"{"200":1}"#,
        "tshark does not recognise this response with lower-case header names (corpus README)",
    ),
    (
        "http/http-many-methods-400-405-411.pcap",
        "http.requests",
        "10",
        INVALID_LINES,
    ),
    (
        "http/http-many-methods-400-405-411.pcap",
        "http.methods",
        r#"{"CCM_POST":1,"CONNECT":1,"DELETE":1,"GET":3,"HEAD":1,"OPTIONS":1,"PUT":1,"TRACE":1}"#,
        INVALID_LINES,
    ),
    (
        "http/http-malformed-403-response-single-segment.pcapng",
        "http.responses",
        "1",
        HEAD_WITHOUT_END,
    ),
    (
        "http/http-malformed-403-response-single-segment.pcapng",
        "http.status_codes",
        r#"{"403":1}"#,
        HEAD_WITHOUT_END,
    ),
    (
        "http/http-request-without-version.pcap",
        "http.requests",
        "1",
        HTTP09,
    ),
    (
        "http/http-request-without-version.pcap",
        "http.methods",
        r#"{"GET":1}"#,
        HTTP09,
    ),
    (
        "http/http09-simple-request.pcap",
        "http.requests",
        "1",
        HTTP09,
    ),
    (
        "http/http09-simple-request.pcap",
        "http.methods",
        r#"{"GET":1}"#,
        HTTP09,
    ),
    (
        "http/http-query-method-port4711.pcap",
        "http.requests",
        "1",
        "tshark does not know the QUERY method (corpus README)",
    ),
    (
        "http/http-query-method-port4711.pcap",
        "http.methods",
        r#"{"QUERY":1}"#,
        "tshark does not know the QUERY method (corpus README)",
    ),
    (
        "mqtt/mqtt-mixed-sessions-missing-connect-and-http.pcap",
        "mqtt.connack_return_code_v3",
        r#"{"0":2}"#,
        MIDSTREAM_CONNACK,
    ),
    (
        "mqtt/mqtt-mixed-sessions-missing-connect-and-http.pcap",
        "mqtt.connack_reason_code_v5",
        "{}",
        MIDSTREAM_CONNACK,
    ),
    (
        "mqtt/mqtt5-malformed-excessive-property-length.pcap",
        "mqtt.connect_versions",
        "{}",
        "the CONNECT is malformed (its property length runs past the packet): spanwatch \
         reports it unparsed with an anomaly, tshark still counts its protocol level",
    ),
    (
        "telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
        "http.requests",
        "35",
        SOCKS,
    ),
    (
        "telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
        "http.methods",
        r#"{"GET":1,"M-SEARCH":20,"NOTIFY":14}"#,
        SOCKS,
    ),
    (
        "telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
        "http.responses",
        "1",
        SOCKS,
    ),
    (
        "telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
        "http.status_codes",
        r#"{"200":1}"#,
        SOCKS,
    ),
];

const ICMP_QUOTE: &str = "tshark also dissects the CoAP request quoted inside the ICMPv6 \
    port-unreachable error; spanwatch counts the messages of UDP flows only";
const SNAPLEN_HEAD: &str = "the 128-byte snap length cuts the response head: tshark reads the \
    status line of the partial frame, spanwatch reports a head it could not read to its end \
    as an anomaly, not as a response";
const BODY_CUT: &str = "the capture ends inside a response body: tshark counts a response once \
    its body is reassembled, spanwatch once its head is complete";
const TUNNEL: &str = "after CONNECT is answered 2xx the connection is an opaque tunnel \
    (RFC 9110 §9.3.6); tshark goes on dissecting the tunnelled GET";
const INVALID_LINES: &str = "tshark counts the methods of 17 request lines that are invalid \
    per RFC 9112 §3: 8 with a truncated version ('GET / HTTP/1.'), 7 without a version whose \
    method is not GET (a version-less line is an HTTP/0.9 simple request, defined for GET only, \
    RFC 1945 §4.1; 'GET /HTTP/1.1' is counted as one), 2 without a request-target \
    ('OPTIONS HTTP/1.1', a bare 'OPTIONS'); spanwatch reports them as invalid_request_line \
    anomalies";
const HEAD_WITHOUT_END: &str = "the only segment holds a whole response head with a field line \
    without ':' and the start of its chunked body; tshark waits for more of the PDU and reports \
    no HTTP (MANIFEST description), spanwatch counts the response and reports the field line \
    as an invalid_header anomaly";
const HTTP09: &str = "an HTTP/0.9 simple request ('GET <uri>' without a version, RFC 1945 \
    §4.1): tshark does not dissect it as HTTP (MANIFEST description), spanwatch counts it as a \
    GET with an http09_request anomaly";
const MIDSTREAM_CONNACK: &str = "mid-stream session without CONNECT: tshark guesses MQTT 5.0 \
    for a CONNACK of remaining length 2, which cannot be 5.0 (a 5.0 CONNACK carries a property \
    length, OASIS MQTT 5.0 §3.2.2.3); spanwatch reads it as 3.1.1";
const SOCKS: &str = "four HTTP exchanges run inside SOCKS connections (port 1080) that tshark's \
    SOCKS dissector hands to HTTP; spanwatch leaves SOCKS flows opaque";

/// The fields compared, as (protocol, field in spanwatch's summary, key in the manifest).
const FIELDS: &[(&str, &str, &str)] = &[
    ("http", "requests", "requests"),
    ("http", "responses", "responses"),
    ("http", "methods", "methods"),
    ("http", "status_codes", "status_codes"),
    ("http", "basic_auth_users", "basic_auth_users"),
    ("mqtt", "msgtype", "msgtype"),
    ("mqtt", "connect_versions", "connect_versions"),
    ("mqtt", "usernames", "usernames"),
    ("mqtt", "connect_with_password", "connect_with_password"),
    ("mqtt", "connack_return_code_v3", "connack_return_code_v3"),
    ("mqtt", "connack_reason_code_v5", "connack_reason_code_v5"),
    ("coap", "code", "code"),
    ("coap", "type", "type"),
    ("telnet", "iac_commands", "iac_commands"),
];

/// A manifest value in spanwatch's shape: absent counts are zero, absent maps
/// and lists empty, lists compared as sorted sets.
fn normalise(v: Option<&Value>, like: &Value) -> Value {
    match (v, like) {
        (Some(Value::Array(a)), _) => {
            let mut items: Vec<String> = a
                .iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect();
            items.sort();
            items.dedup();
            json!(items)
        }
        (Some(v), _) => v.clone(),
        (None, Value::Number(_)) => json!(0),
        (None, Value::Array(_)) => json!([]),
        (None, _) => json!({}),
    }
}

#[test]
fn protocol_counts_equal_tsharks() {
    let mut differences = BTreeMap::new();
    let mut compared = 0;
    let rows = common::manifest();
    // The parsers on the capture thread, on a thread of their own, and
    // sharing the flows among two parser threads.
    for (threads, row) in ["1", "2", "4"]
        .into_iter()
        .flat_map(|t| rows.iter().map(move |row| (t, row)))
    {
        // A capture without a protocol key is compared too: tshark found no
        // message of that protocol, so every count is 0.
        let expected = &row.expected;
        let (out, json) = common::replay_json(&[&row.file()], &["--threads", threads]);
        assert!(
            out.status.success(),
            "{}: {}",
            row.path,
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = json.expect("summary");
        for (proto, ours_key, theirs_key) in FIELDS {
            let ours = &summary["protocols"][proto][ours_key];
            let theirs = normalise(expected.get(*proto).and_then(|p| p.get(*theirs_key)), ours);
            compared += 1;
            if *ours == theirs {
                continue;
            }
            let field = format!("{proto}.{ours_key}");
            let ours_text = ours.to_string();
            let excused = EXCEPTIONS
                .iter()
                .any(|(f, k, v, _)| *f == row.path && *k == field && *v == ours_text);
            if !excused {
                differences.insert(
                    format!("{} {field} (threads {threads})", row.path),
                    format!("spanwatch {ours} tshark {theirs}"),
                );
            }
        }
    }
    assert!(compared > 1000, "compared only {compared} values");
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
