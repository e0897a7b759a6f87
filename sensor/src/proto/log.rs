//! Zeek-style protocol logs, one file per protocol (`http.jsonl`,
//! `mqtt.jsonl`, `coap.jsonl`, `telnet.jsonl`, `dhcp.jsonl`), one JSON object per line (JSON Lines, RFC 8259 texts
//! separated by `\n`), written by `spanwatch replay --log-dir DIR`.
//!
//! Every line starts with where the event happened: `ts` (RFC 3339, UTC,
//! microseconds, as Suricata's EVE), `flow_id`, `src_ip`/`src_port` (the
//! endpoint that sent what the line describes), `dest_ip`/`dest_port` (the one
//! that received it), `vlan` and `inner_vlan` when tagged (Zeek's conn.log
//! names). An `event` field names the kind of line; the protocol fields that
//! follow are curated like Zeek's logs, and fields without a value are left
//! out rather than written as `null`.
//!
//! Orientation: an event that says which direction it travelled (an HTTP body
//! or anomaly, every CoAP message, a Telnet sub-negotiation) or whose
//! direction is fixed by the protocol (an HTTP request is the client's, a
//! response the server's; a Telnet login attempt or shell command is the
//! client's) is oriented by that; otherwise by [`LogContext::dir`]. Sessions
//! may emit an event while handling the other direction's bytes (an HTTP
//! request held until its CONNECT was answered, a login outcome that the
//! server's reply decides, bodies cut short at the close), so the context
//! alone would put those lines backwards.
//!
//! Privacy: no line holds a password or anything derived from one (not even
//! its length): logins carry a presence flag only. Body and payload bytes are
//! never written: an HTTP body or MQTT payload is described by its length and
//! a [`ContentClass`](super::content::ContentClass) of its first bytes,
//! because a form body or a payload can carry credentials.
//!
//! This file is the writer; each protocol maps its events to its own record
//! type in its folder's `log.rs` ([`Protocol::log_record`]).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::record::Shown;

use super::contract::Protocol;
use super::registry::{AppEvent, AppProto, EventVisitor};
use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo};

/// Where an event happened.
#[derive(Clone, Copy, Debug)]
pub struct LogContext<'a> {
    /// Packet time of the bytes that produced the event.
    pub ts: Timestamp,
    pub flow: &'a FlowInfo,
    /// Direction of the bytes that produced the event; used for events that
    /// do not carry their own (see the module documentation).
    pub dir: Direction,
}

/// A log file could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create log directory {}: {source} (check the --log-dir path and its permissions)", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot create log file {}: {source} (check the --log-dir path and its permissions)", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write log file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Lines written to each file of one run, by protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCounts([u64; AppProto::ALL.len()]);

impl LogCounts {
    pub fn lines(&self, proto: AppProto) -> u64 {
        self.0[proto.index()]
    }
}

/// The log files of one run, one per protocol (`NAME.jsonl`); each line one
/// JSON object, flushed on [`ProtocolLogs::finish`].
pub struct ProtocolLogs {
    /// By [`AppProto::index`].
    files: Vec<LogFile>,
    /// One serialized line, reused: a line reaches its file whole or not at all.
    line: Vec<u8>,
}

impl fmt::Debug for ProtocolLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paths: Vec<&Path> = self.files.iter().map(|f| f.path.as_path()).collect();
        f.debug_struct("ProtocolLogs")
            .field("files", &paths)
            .finish_non_exhaustive()
    }
}

impl ProtocolLogs {
    /// Creates `dir` (and its parents) if needed and one file per protocol in
    /// it, truncating files left by an earlier run.
    pub fn create(dir: &Path) -> Result<Self, LogError> {
        fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let files = AppProto::ALL
            .iter()
            .map(|p| LogFile::create(dir, &format!("{}.jsonl", p.name())))
            .collect::<Result<_, _>>()?;
        Ok(ProtocolLogs {
            files,
            line: Vec::with_capacity(512),
        })
    }

    /// Logs one event, if it has a line.
    pub fn write_event(
        &mut self,
        ctx: &LogContext<'_>,
        event: AppEvent<'_>,
    ) -> Result<(), LogError> {
        struct Writer<'l, 'c> {
            logs: &'l mut ProtocolLogs,
            ctx: &'l LogContext<'c>,
            result: Result<(), LogError>,
        }
        impl EventVisitor for Writer<'_, '_> {
            fn visit<P: Protocol>(&mut self, proto: AppProto, event: &P::Event) {
                self.result = self.logs.write::<P>(proto, self.ctx, event);
            }
        }
        let mut w = Writer {
            logs: self,
            ctx,
            result: Ok(()),
        };
        event.visit(&mut w);
        w.result
    }

    /// Logs one event of protocol `P` (which is `proto`), if it has a line.
    pub fn write<P: Protocol>(
        &mut self,
        proto: AppProto,
        ctx: &LogContext<'_>,
        ev: &P::Event,
    ) -> Result<(), LogError> {
        let Some((dir, record)) = P::log_record(ev) else {
            return Ok(());
        };
        let line = Line::new(ctx, dir.unwrap_or(ctx.dir), record);
        self.files[proto.index()].write(&mut self.line, &line)
    }

    /// Flushes every file and returns the lines written to each.
    pub fn finish(self) -> Result<LogCounts, LogError> {
        let mut counts = LogCounts::default();
        for (n, file) in counts.0.iter_mut().zip(self.files) {
            *n = file.finish()?;
        }
        Ok(counts)
    }
}

/// One buffered output file.
struct LogFile {
    path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
}

impl LogFile {
    fn create(dir: &Path, name: &str) -> Result<Self, LogError> {
        let path = dir.join(name);
        match File::create(&path) {
            Ok(file) => Ok(LogFile {
                path,
                out: BufWriter::new(file),
                lines: 0,
            }),
            Err(source) => Err(LogError::Create { path, source }),
        }
    }

    fn write_error(&self, source: io::Error) -> LogError {
        LogError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Serializes `record` into `buf`, then appends it as one line.
    fn write<T: Serialize>(&mut self, buf: &mut Vec<u8>, record: &T) -> Result<(), LogError> {
        buf.clear();
        serde_json::to_writer(&mut *buf, record).map_err(|e| self.write_error(e.into()))?;
        buf.push(b'\n');
        self.out.write_all(buf).map_err(|e| self.write_error(e))?;
        self.lines += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<u64, LogError> {
        self.out.flush().map_err(|e| self.write_error(e))?;
        Ok(self.lines)
    }
}

/// The fields every line starts with, then the protocol record.
#[derive(Serialize)]
struct Line<R> {
    ts: Shown<Timestamp>,
    flow_id: u64,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inner_vlan: Option<u16>,
    #[serde(flatten)]
    record: R,
}

impl<R> Line<R> {
    /// `sender` is the direction the described bytes travelled.
    fn new(ctx: &LogContext<'_>, sender: Direction, record: R) -> Self {
        let flow = ctx.flow;
        let (src, dest) = match sender {
            Direction::ToServer => (flow.client, flow.server),
            Direction::ToClient => (flow.server, flow.client),
        };
        let [outer, inner] = flow.vlan;
        Line {
            ts: Shown(ctx.ts),
            flow_id: flow.id,
            src_ip: src.0,
            src_port: src.1,
            dest_ip: dest.0,
            dest_port: dest.1,
            vlan: (outer != 0).then_some(outer),
            inner_vlan: (inner != 0).then_some(inner),
            record,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::Value;

    use super::*;
    use crate::capture::{FileSource, FrameSource, Next};
    use crate::decode::{Decoded, Decoder};
    use crate::flow::{CloseReason, FlowConfig, FlowHandler, FlowTable, StreamEvent};
    use crate::proto::coap::{Coap, CoapLimits, CoapSession};
    use crate::proto::dhcp::{Dhcp, DhcpLimits, DhcpSession};
    use crate::proto::http::{BodyHead, Http, HttpBody, HttpEvent, HttpLimits, HttpSession};
    use crate::proto::mqtt::{Mqtt, MqttEvent, MqttLimits, MqttSession};
    use crate::proto::telnet::{Telnet, TelnetLimits, TelnetSession};

    const HTTP_LOG: &str = "http.jsonl";
    const MQTT_LOG: &str = "mqtt.jsonl";
    const COAP_LOG: &str = "coap.jsonl";
    const TELNET_LOG: &str = "telnet.jsonl";
    const DHCP_LOG: &str = "dhcp.jsonl";

    /// Lines per file: `n` for the protocols listed, 0 for the others.
    fn log_counts(lines: &[(AppProto, u64)]) -> LogCounts {
        let mut c = LogCounts::default();
        for (proto, n) in lines {
            c.0[proto.index()] = *n;
        }
        c
    }

    const C2S: Direction = Direction::ToServer;
    const S2C: Direction = Direction::ToClient;
    const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 0, 1), 50000);
    const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("spanwatch-log-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn flow(server_port: u16, vlan: [u16; 2]) -> FlowInfo {
        FlowInfo {
            id: 7,
            client: (IpAddr::V4(CLIENT.0), CLIENT.1),
            server: (IpAddr::V4(SERVER_IP), server_port),
            protocol: 6,
            vlan,
            client_mac: None,
            server_mac: None,
            first_ts: Timestamp(0),
            last_ts: Timestamp(0),
            packets: [0; 2],
            bytes: [0; 2],
            tcp_state: None,
            established: false,
        }
    }

    /// Every line of a log file, each parsed as a JSON object.
    fn read_lines(path: &Path) -> Vec<Value> {
        let text = fs::read_to_string(path).expect("read log");
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("line is JSON");
                assert!(v.is_object(), "{l}");
                v
            })
            .collect()
    }

    fn assert_from_client(line: &Value, server_port: u16) {
        assert_eq!(line["src_ip"], "10.0.0.1", "{line}");
        assert_eq!(line["src_port"], CLIENT.1, "{line}");
        assert_eq!(line["dest_ip"], "10.0.0.2", "{line}");
        assert_eq!(line["dest_port"], server_port, "{line}");
    }

    fn assert_from_server(line: &Value, server_port: u16) {
        assert_eq!(line["src_ip"], "10.0.0.2", "{line}");
        assert_eq!(line["src_port"], server_port, "{line}");
        assert_eq!(line["dest_ip"], "10.0.0.1", "{line}");
        assert_eq!(line["dest_port"], CLIENT.1, "{line}");
    }

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect()
    }

    /// Log, as protocol `P` (which is `app`) of the flow `info` at `ts`
    /// in direction `dir`, every event `feed` yields.
    fn log_events<P: Protocol>(
        logs: &mut ProtocolLogs,
        app: AppProto,
        info: &FlowInfo,
        ts: Timestamp,
        dir: Direction,
        feed: impl FnOnce(&mut Vec<P::Event>),
    ) {
        let mut out = Vec::new();
        feed(&mut out);
        let ctx = LogContext {
            ts,
            flow: info,
            dir,
        };
        for ev in &out {
            logs.write::<P>(app, &ctx, ev).unwrap();
        }
    }

    fn lines_with<'v>(lines: &'v [Value], event: &str) -> Vec<&'v Value> {
        lines.iter().filter(|l| l["event"] == event).collect()
    }

    #[test]
    fn mqtt_connect_and_connack_oriented_by_direction() {
        let dir = TempDir::new("mqtt");
        let info = flow(1883, [100, 0]);
        // mqtt311-connect-userpass-publish-qos0.pcap: first frame at
        // 1585066888.214312 s, "2020-03-24T16:21:28.214312Z" (MANIFEST.tsv).
        let ts = Timestamp::from_secs_nanos(1_585_066_888, 214_312_000);
        let mut session = MqttSession::new(MqttLimits::default());
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        // Frame 4 of that capture (tshark: client id "myvoiceismypassport",
        // user "user", password of 4 bytes, keep alive 60, flags 0xc2), the
        // CONNACK "accepted" (3.1.1 §3.2), then a PUBLISH whose JSON payload
        // holds a secret, written by hand per §3.3.
        let connect = unhex(
            "102b00044d51545404c2003c00136d79766f69636569736d7970617373706f7274000475736572000470617373",
        );
        let payload = br#"{"wifi_password":"Zz9-SecretPayload"}"#;
        let mut publish = vec![0x32, 0, 0, 9];
        publish.extend_from_slice(b"dev/cfg/1");
        publish.extend_from_slice(&[0x00, 0x05]);
        publish.extend_from_slice(payload);
        publish[1] = u8::try_from(publish.len() - 2).unwrap();
        for (d, bytes) in [
            (C2S, connect),
            (S2C, vec![0x20, 0x02, 0x00, 0x00]),
            (C2S, publish),
        ] {
            log_events::<Mqtt>(&mut logs, AppProto::Mqtt, &info, ts, d, |out| {
                session.on_data(ts, d, &bytes, out)
            });
        }
        let counts = logs.finish().unwrap();
        assert_eq!(counts, log_counts(&[(AppProto::Mqtt, 3)]));
        let text = fs::read_to_string(dir.0.join(MQTT_LOG)).unwrap();
        assert!(!text.contains("Zz9-SecretPayload"), "{text}");
        assert!(!text.contains("\"pass\""), "{text}");
        let lines = read_lines(&dir.0.join(MQTT_LOG));
        let [connect, connack, publish] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        for line in &lines {
            assert_eq!(line["ts"], "2020-03-24T16:21:28.214312Z");
            assert_eq!(line["flow_id"], 7);
            assert_eq!(line["vlan"], 100);
            assert!(line.get("inner_vlan").is_none());
            assert_eq!(line["event"], "packet");
        }
        assert_from_client(connect, 1883);
        assert_eq!(connect["msg_type"], "CONNECT");
        assert_eq!(connect["msg_type_code"], 1);
        assert_eq!(connect["version"], "3.1.1");
        assert_eq!(connect["protocol_name"], "MQTT");
        assert_eq!(connect["protocol_level"], 4);
        assert_eq!(connect["client_id"], "myvoiceismypassport");
        assert_eq!(connect["username"], "user");
        assert_eq!(connect["has_password"], true);
        assert_eq!(connect["keep_alive"], 60);
        assert_eq!(connect["clean_start"], true);
        assert!(connect.get("will_topic").is_none());
        assert_from_server(connack, 1883);
        assert_eq!(connack["msg_type"], "CONNACK");
        assert_eq!(connack["msg_type_code"], 2);
        assert_eq!(connack["return_code"], 0);
        assert_eq!(connack["accepted"], true);
        assert_eq!(connack["session_present"], false);
        assert_from_client(publish, 1883);
        assert_eq!(publish["msg_type"], "PUBLISH");
        assert_eq!(publish["topic"], "dev/cfg/1");
        assert_eq!(publish["qos"], 1);
        assert_eq!(publish["retain"], false);
        assert_eq!(publish["dup"], false);
        assert_eq!(publish["packet_id"], 5);
        assert_eq!(publish["payload_len"], payload.len());
        assert_eq!(publish["payload_magic"], "json");
    }

    #[test]
    fn mqtt_subscribe_suback_and_anomaly_fields() {
        let dir = TempDir::new("mqtt-sub");
        let info = flow(1883, [0, 0]);
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = MqttSession::new(MqttLimits::default());
        // 3.1.1 §3.8: SUBSCRIBE id 10, "home/#" QoS 1, "$SYS/#" QoS 0;
        // §3.9: SUBACK granting 1 and refusing the second (0x80).
        let mut sub = vec![0x82, 0, 0x00, 0x0a, 0x00, 0x06];
        sub.extend_from_slice(b"home/#\x01\x00\x06$SYS/#\x00");
        sub[1] = u8::try_from(sub.len() - 2).unwrap();
        // A PINGREQ with a non-zero flags nibble (§2.2.2: must be 0).
        let ping_bad_flags = [0xc1, 0x00];
        for (d, bytes) in [
            (C2S, &sub[..]),
            (S2C, &[0x90, 0x04, 0x00, 0x0a, 0x01, 0x80][..]),
            (C2S, &ping_bad_flags[..]),
        ] {
            log_events::<Mqtt>(&mut logs, AppProto::Mqtt, &info, Timestamp(0), d, |out| {
                session.on_data(Timestamp(0), d, bytes, out)
            });
        }
        logs.finish().unwrap();
        let lines = read_lines(&dir.0.join(MQTT_LOG));
        assert!(lines.iter().all(|l| l.get("vlan").is_none()));
        let packets = lines_with(&lines, "packet");
        let sub = packets
            .iter()
            .find(|l| l["msg_type"] == "SUBSCRIBE")
            .unwrap();
        assert_from_client(sub, 1883);
        assert_eq!(sub["msg_type_code"], 8);
        assert_eq!(sub["packet_id"], 10);
        assert_eq!(sub["filters"], serde_json::json!(["home/#", "$SYS/#"]));
        assert_eq!(sub["filter_qos"], serde_json::json!([1, 0]));
        assert_eq!(sub["filter_count"], 2);
        let suback = packets.iter().find(|l| l["msg_type"] == "SUBACK").unwrap();
        assert_from_server(suback, 1883);
        assert_eq!(suback["reason_codes"], serde_json::json!([1, 128]));
        let anomalies = lines_with(&lines, "anomaly");
        let flags = anomalies
            .iter()
            .find(|l| l["kind"] == "invalid_fixed_header_flags")
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert_from_client(flags, 1883);
        assert_eq!(flags["msg_type"], "PINGREQ");
        assert_eq!(flags["msg_type_code"], 12);
        assert!(flags["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }

    #[test]
    fn http_heads_bodies_and_privacy() {
        let dir = TempDir::new("http");
        let info = flow(80, [10, 20]);
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = HttpSession::new(HttpLimits::default());
        // base64("admin:hunter2") and the 29-byte form body from Python.
        let request = b"POST /login HTTP/1.1\r\nHost: cam.local\r\nUser-Agent: curl/8.0\r\n\
            Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\
            Authorization: Basic YWRtaW46aHVudGVyMg==\r\n\r\nuser=admin&password=Hunter2xy";
        let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
            Server: GoAhead-Webs\r\nContent-Length: 8\r\n\r\n\x7fELF\x02\x01\x01\x00";
        for (d, bytes) in [(C2S, &request[..]), (S2C, &response[..])] {
            log_events::<Http>(&mut logs, AppProto::Http, &info, Timestamp(0), d, |out| {
                session.on_data(Timestamp(0), d, bytes, out)
            });
        }
        // A body cut short at the close: the pipeline has no direction for
        // the close, the event's own direction orients the line.
        let cut = HttpEvent::Body(HttpBody {
            dir: S2C,
            total_len: 3,
            head: BodyHead::new(b"\x1f\x8b\x08"),
            complete: false,
        });
        let close_ctx = LogContext {
            ts: Timestamp(0),
            flow: &info,
            dir: C2S,
        };
        logs.write::<Http>(AppProto::Http, &close_ctx, &cut)
            .unwrap();
        assert_eq!(logs.finish().unwrap().lines(AppProto::Http), 5);

        let text = fs::read_to_string(dir.0.join(HTTP_LOG)).unwrap();
        for secret in ["hunter2", "Hunter2xy", "YWRtaW46aHVudGVyMg", "password="] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let lines = read_lines(&dir.0.join(HTTP_LOG));
        assert!(
            lines
                .iter()
                .all(|l| l["vlan"] == 10 && l["inner_vlan"] == 20)
        );
        let req = lines_with(&lines, "request");
        let [req] = req.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_client(req, 80);
        assert_eq!(req["method"], "POST");
        assert_eq!(req["host"], "cam.local");
        assert_eq!(req["uri"], "/login");
        assert_eq!(req["version"], "1.1");
        assert_eq!(req["user_agent"], "curl/8.0");
        assert_eq!(req["content_type"], "application/x-www-form-urlencoded");
        assert_eq!(req["content_length"], 29);
        assert_eq!(req["chunked"], false);
        assert_eq!(req["auth_scheme"], "basic");
        assert_eq!(req["auth_user"], "admin");
        assert_eq!(req["auth_has_password"], true);
        let resp = lines_with(&lines, "response");
        let [resp] = resp.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_server(resp, 80);
        assert_eq!(resp["status"], 200);
        assert_eq!(resp["reason"], "OK");
        assert_eq!(resp["request_method"], "POST");
        assert_eq!(resp["content_length"], 8);
        assert_eq!(resp["server"], "GoAhead-Webs");
        let bodies = lines_with(&lines, "body");
        let [form, elf, gz] = bodies.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_client(form, 80);
        assert_eq!(
            (&form["body_len"], &form["body_magic"]),
            (&29.into(), &"text".into())
        );
        assert_eq!(form["complete"], true);
        assert_from_server(elf, 80);
        assert_eq!(
            (&elf["body_len"], &elf["body_magic"]),
            (&8.into(), &"elf".into())
        );
        assert_from_server(gz, 80);
        assert_eq!(
            (&gz["body_magic"], &gz["complete"]),
            (&"gzip".into(), &false.into())
        );
    }

    #[test]
    fn http_anomaly_and_tunnel_lines() {
        let dir = TempDir::new("http-anomaly");
        let info = flow(8001, [0, 0]);
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = HttpSession::new(HttpLimits::default());
        // RFC 9112 §6.3 item 3: Transfer-Encoding with Content-Length; then
        // a CONNECT answered 200 (RFC 9110 §9.3.6) turns the flow into a tunnel.
        let request = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
            Content-Length: 3\r\n\r\n0\r\n\r\nCONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n";
        let response =
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n";
        for (d, bytes) in [(C2S, &request[..]), (S2C, &response[..])] {
            log_events::<Http>(&mut logs, AppProto::Http, &info, Timestamp(0), d, |out| {
                session.on_data(Timestamp(0), d, bytes, out)
            });
        }
        logs.finish().unwrap();
        let lines = read_lines(&dir.0.join(HTTP_LOG));
        let anomaly = lines_with(&lines, "anomaly");
        let te_cl = anomaly
            .iter()
            .find(|l| l["kind"] == "transfer_encoding_with_content_length")
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert_from_client(te_cl, 8001);
        assert_eq!(te_cl["effect"], "continue");
        let tunnel = lines_with(&lines, "tunnel");
        let [tunnel] = tunnel.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_server(tunnel, 8001);
        assert_eq!(tunnel["tunnel"], "connect");
        assert_eq!(tunnel["authority"], "h:443");
    }

    #[test]
    fn coap_rfc7252_examples_and_discovery() {
        let dir = TempDir::new("coap");
        let mut info = flow(5683, [0, 0]);
        info.protocol = 17;
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = CoapSession::new(CoapLimits::default());
        // RFC 7252 Appendix A Figure 17: CON GET /temperature, MID 0x7d35,
        // token 0x20, answered by a piggy-backed 2.05 "22.3 C". The request
        // is sent twice (a retransmission, §4.2).
        let get = b"\x41\x01\x7d\x35\x20\xbbtemperature";
        let ack = b"\x61\x45\x7d\x35\x20\xff22.3 C";
        // GET /.well-known/core (RFC 6690 §4) and a 2.05 with
        // Content-Format 40 whose links follow RFC 6690 §2 / §3.
        let discover = b"\x42\x01\x00\x01\xab\xcd\xbb.well-known\x04core";
        let links = br#"</sensors/temp>;rt="temperature-c";if="sensor";obs,</sensors/light>;ct=0"#;
        let mut resources = b"\x62\x45\x00\x01\xab\xcd\xc1\x28\xff".to_vec();
        resources.extend_from_slice(links);
        for (i, (d, bytes)) in [
            (C2S, &get[..]),
            (C2S, &get[..]),
            (S2C, &ack[..]),
            (C2S, &discover[..]),
            (S2C, &resources[..]),
        ]
        .into_iter()
        .enumerate()
        {
            let ts = Timestamp::from_secs_nanos(i64::try_from(i).unwrap(), 0);
            log_events::<Coap>(&mut logs, AppProto::Coap, &info, ts, d, |out| {
                session.on_datagram(ts, d, bytes, out)
            });
        }
        logs.finish().unwrap();
        let lines = read_lines(&dir.0.join(COAP_LOG));
        let msgs = lines_with(&lines, "message");
        let [get1, get2, ack, disc_req, disc_resp] = msgs.as_slice() else {
            panic!("{lines:?}")
        };
        for get in [get1, get2] {
            assert_from_client(get, 5683);
            assert_eq!(get["type"], "CON");
            assert_eq!(get["type_num"], 0);
            assert_eq!(get["code"], "0.01");
            assert_eq!(get["code_num"], 1);
            assert_eq!(get["method"], "GET");
            assert_eq!(get["message_id"], 0x7d35);
            assert_eq!(get["token"], "20");
            assert_eq!(get["uri_path"], "temperature");
            assert_eq!(get["payload_len"], 0);
        }
        assert_eq!(get1["retransmission"], false);
        assert_eq!(get2["retransmission"], true);
        assert_from_server(ack, 5683);
        assert_eq!(ack["type"], "ACK");
        assert_eq!(ack["type_num"], 2);
        assert_eq!(ack["code"], "2.05");
        assert_eq!(ack["code_num"], 69);
        assert!(ack.get("method").is_none());
        assert_eq!(ack["payload_len"], 6);
        let to = &ack["response_to"];
        assert_eq!(to["kind"], "piggybacked");
        assert_eq!(to["request_code"], "0.01");
        assert_eq!(to["request_code_num"], 1);
        assert_eq!(to["request_message_id"], 0x7d35);
        assert_eq!(to["request_uri_path"], "temperature");
        // First transmission at 0 s, response at 2 s.
        assert_eq!(to["rtt"], 2.0);
        assert_eq!(disc_req["uri_path"], ".well-known/core");
        assert_eq!(disc_resp["content_format"], 40);
        let disc = lines_with(&lines, "discovery");
        let [disc] = disc.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_server(disc, 5683);
        assert_eq!(disc["token"], "abcd");
        assert_eq!(disc["request_uri_path"], ".well-known/core");
        assert_eq!(
            disc["resources"],
            serde_json::json!([
                {"target": "/sensors/temp", "rt": "temperature-c", "if": "sensor", "obs": true},
                {"target": "/sensors/light", "ct": [0]}
            ])
        );
        assert_eq!(disc["truncated"], false);
    }

    #[test]
    fn coap_anomaly_for_unreadable_datagram() {
        let dir = TempDir::new("coap-anomaly");
        let info = flow(5683, [0, 0]);
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = CoapSession::new(CoapLimits::default());
        // Token length 9 is reserved (RFC 7252 §3); sent by the server.
        log_events::<Coap>(&mut logs, AppProto::Coap, &info, Timestamp(0), S2C, |out| {
            session.on_datagram(Timestamp(0), S2C, &[0x49, 0x01, 0x12, 0x34], out)
        });
        logs.finish().unwrap();
        let lines = read_lines(&dir.0.join(COAP_LOG));
        let [line] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_server(line, 5683);
        assert_eq!(line["event"], "anomaly");
        assert_eq!(line["kind"], "token_length_reserved");
        assert_eq!(line["message_id"], 0x1234);
    }

    #[test]
    fn telnet_logs_login_shell_subnegotiation_and_anomaly_only() {
        let dir = TempDir::new("telnet");
        let info = flow(23, [0, 0]);
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = TelnetSession::new(TelnetLimits::default());
        let iac = |bytes: &[u8]| bytes.to_vec();
        let dialogue: Vec<(Direction, Vec<u8>)> = vec![
            // IAC DO TERMINAL-TYPE, IAC DO NAWS (RFC 854/855 codes 253, 24, 31).
            (S2C, iac(&[255, 253, 24, 255, 253, 31])),
            (C2S, iac(&[255, 251, 24, 255, 251, 31])),
            // IAC SB NAWS 0 80 0 24 IAC SE (RFC 1073); IAC SB TTYPE SEND (RFC 1091).
            (C2S, iac(&[255, 250, 31, 0, 80, 0, 24, 255, 240])),
            (S2C, iac(&[255, 250, 24, 1, 255, 240])),
            // IAC SB TTYPE IS "XTERM" IAC SE.
            (C2S, iac(b"\xff\xfa\x18\x00XTERM\xff\xf0")),
            (S2C, b"\r\nIPC-Cam v2\r\n\r\n".to_vec()),
            (S2C, b"login: ".to_vec()),
            (C2S, b"root\r\n".to_vec()),
            (S2C, b"Password: ".to_vec()),
            (C2S, b"Zq9-pw-Secret\r\n".to_vec()),
            (
                S2C,
                b"\r\nBusyBox v1.36 built-in shell (ash)\r\n# ".to_vec(),
            ),
            (C2S, b"uname -a\r\n".to_vec()),
            (S2C, b"Linux cam 5.10\r\n# ".to_vec()),
            // IAC SE without IAC SB (RFC 855).
            (C2S, iac(&[255, 240])),
        ];
        for (i, (d, bytes)) in dialogue.iter().enumerate() {
            let ts = Timestamp::from_secs_nanos(i64::try_from(i).unwrap(), 0);
            log_events::<Telnet>(&mut logs, AppProto::Telnet, &info, ts, *d, |out| {
                session.on_data(ts, *d, bytes, out)
            });
        }
        let counts = logs.finish().unwrap();
        let text = fs::read_to_string(dir.0.join(TELNET_LOG)).unwrap();
        assert!(!text.contains("Zq9-pw-Secret"), "{text}");
        let lines = read_lines(&dir.0.join(TELNET_LOG));
        let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
        // No line per negotiation, none for TTYPE SEND or for data.
        assert_eq!(
            events,
            [
                "subnegotiation",
                "subnegotiation",
                "banner",
                "login",
                "shell",
                "anomaly"
            ],
            "{lines:?}"
        );
        assert_eq!(counts.lines(AppProto::Telnet), 6);
        let [naws, ttype, banner, login, shell, anomaly] = lines.as_slice() else {
            unreachable!()
        };
        // Printed before the first prompt, written when "login: " arrived.
        assert_from_server(banner, 23);
        assert_eq!(banner["banner"], "IPC-Cam v2");
        assert_eq!(banner["ts"], "1970-01-01T00:00:06.000000Z");
        assert_from_client(naws, 23);
        assert_eq!(naws["option"], 31);
        assert_eq!(
            (&naws["window_width"], &naws["window_height"]),
            (&80.into(), &24.into())
        );
        assert_from_client(ttype, 23);
        assert_eq!(ttype["option"], 24);
        assert_eq!(ttype["terminal_type"], "XTERM");
        // Decided by the server's prompt, written as the client's attempt.
        assert_from_client(login, 23);
        assert_eq!(login["user"], "root");
        assert_eq!(login["user_source"], "typed");
        assert_eq!(login["has_password"], true);
        assert_eq!(login["outcome"], "success");
        assert!(login.get("password_len").is_none());
        // The attempt started with the user line (segment 7) and was decided
        // by the shell prompt (segment 10).
        assert_eq!(login["started"], "1970-01-01T00:00:07.000000Z");
        assert_eq!(login["ts"], "1970-01-01T00:00:10.000000Z");
        assert_from_client(shell, 23);
        assert_eq!(shell["line"], "uname -a");
        assert_eq!(shell["truncated"], false);
        assert_from_client(anomaly, 23);
        assert_eq!(anomaly["kind"], "se_without_sb");
        assert_eq!(anomaly["detail"], "IAC SE without a preceding IAC SB");
    }

    #[test]
    fn telnet_environ_logs_user_and_variable_names_only() {
        let dir = TempDir::new("telnet-env");
        let info = flow(23, [0, 0]);
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = TelnetSession::new(TelnetLimits::default());
        // RFC 1572: IAC SB NEW-ENVIRON(39) IS(0) VAR(0) "USER" VALUE(1) "root"
        // USERVAR(3) "TOKEN" VALUE(1) "abc-val-77" IAC SE.
        let sb = b"\xff\xfa\x27\x00\x00USER\x01root\x03TOKEN\x01abc-val-77\xff\xf0";
        log_events::<Telnet>(
            &mut logs,
            AppProto::Telnet,
            &info,
            Timestamp(0),
            C2S,
            |out| session.on_data(Timestamp(0), C2S, sb, out),
        );
        logs.finish().unwrap();
        let text = fs::read_to_string(dir.0.join(TELNET_LOG)).unwrap();
        assert!(!text.contains("abc-val-77"), "{text}");
        let lines = read_lines(&dir.0.join(TELNET_LOG));
        let [env] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_client(env, 23);
        assert_eq!(env["event"], "subnegotiation");
        assert_eq!(env["option"], 39);
        assert_eq!(env["env_command"], "is");
        assert_eq!(env["env_user"], "root");
        assert_eq!(env["env_vars"], serde_json::json!(["USER", "TOKEN"]));
    }

    #[test]
    fn create_truncates_and_finish_counts_per_file() {
        let dir = TempDir::new("truncate");
        let info = flow(1883, [0, 0]);
        let ctx = LogContext {
            ts: Timestamp(0),
            flow: &info,
            dir: C2S,
        };
        let mut logs = ProtocolLogs::create(&dir.0.join("a/b")).unwrap();
        logs.write::<Mqtt>(AppProto::Mqtt, &ctx, &MqttEvent::Pingreq)
            .unwrap();
        logs.write::<Mqtt>(AppProto::Mqtt, &ctx, &MqttEvent::Pingreq)
            .unwrap();
        assert_eq!(logs.finish().unwrap(), log_counts(&[(AppProto::Mqtt, 2)]));
        assert_eq!(read_lines(&dir.0.join("a/b").join(MQTT_LOG)).len(), 2);
        let logs = ProtocolLogs::create(&dir.0.join("a/b")).unwrap();
        assert_eq!(logs.finish().unwrap(), LogCounts::default());
        for name in [HTTP_LOG, MQTT_LOG, COAP_LOG, TELNET_LOG, DHCP_LOG] {
            let len = fs::metadata(dir.0.join("a/b").join(name)).unwrap().len();
            assert_eq!(len, 0, "{name}");
        }
    }

    #[test]
    fn dhcp_discover_and_offer_oriented_by_direction() {
        let dir = TempDir::new("dhcp");
        let mut info = flow(67, [0, 0]);
        info.protocol = 17;
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        let mut session = DhcpSession::new(DhcpLimits::default());
        // RFC 2131 §2 Figure 1 header: op, htype 1, hlen 6, hops, xid
        // 0x3903f326, secs, flags (BROADCAST), ciaddr, yiaddr, siaddr, giaddr,
        // chaddr (16), sname (64), file (128); then the magic cookie (§3).
        let message = |op: u8, yiaddr: [u8; 4], options: &[u8]| {
            let mut d = vec![op, 1, 6, 0, 0x39, 0x03, 0xf3, 0x26, 0, 0, 0x80, 0];
            d.extend_from_slice(&[0; 4]);
            d.extend_from_slice(&yiaddr);
            d.extend_from_slice(&[0; 8]);
            d.extend_from_slice(&[0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42]);
            d.extend_from_slice(&[0; 10 + 64 + 128]);
            d.extend_from_slice(&[99, 130, 83, 99]);
            d.extend_from_slice(options);
            d
        };
        // DHCPDISCOVER with host name "cam-01" (RFC 2132 §9.6, §3.14), and
        // a DHCPOFFER of 10.0.0.1 for 600 s from server 10.0.0.2 (§9.2, §9.7).
        let mut discover = vec![53, 1, 1, 12, 6];
        discover.extend_from_slice(b"cam-01");
        discover.push(255);
        let offer = [53, 1, 2, 51, 4, 0, 0, 2, 0x58, 54, 4, 10, 0, 0, 2, 255];
        for (i, (d, bytes)) in [
            (C2S, message(1, [0; 4], &discover)),
            (S2C, message(2, [10, 0, 0, 1], &offer)),
        ]
        .into_iter()
        .enumerate()
        {
            let ts = Timestamp::from_secs_nanos(i64::try_from(i).unwrap(), 0);
            log_events::<Dhcp>(&mut logs, AppProto::Dhcp, &info, ts, d, |out| {
                session.on_datagram(ts, d, &bytes, out)
            });
        }
        assert_eq!(logs.finish().unwrap(), log_counts(&[(AppProto::Dhcp, 2)]));
        let lines = read_lines(&dir.0.join(DHCP_LOG));
        let [discover, offer] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert_from_client(discover, 67);
        assert_eq!(discover["event"], "message");
        assert_eq!(discover["op"], "request");
        assert_eq!(discover["message_type"], "DISCOVER");
        assert_eq!(discover["message_type_num"], 1);
        assert_eq!(discover["xid"], "0x3903f326");
        assert_eq!(discover["broadcast"], true);
        assert_eq!(discover["chaddr"], "00:0b:82:01:fc:42");
        assert_eq!(discover["hostname"], "cam-01");
        // 0.0.0.0 header addresses are left out.
        assert!(discover.get("yiaddr").is_none() && discover.get("ciaddr").is_none());
        assert_from_server(offer, 67);
        assert_eq!(offer["op"], "reply");
        assert_eq!(offer["message_type"], "OFFER");
        assert_eq!(offer["yiaddr"], "10.0.0.1");
        assert_eq!(offer["lease_secs"], 600);
        assert_eq!(offer["server_id"], "10.0.0.2");
    }

    #[test]
    fn errors_name_the_path() {
        let dir = TempDir::new("errors");
        fs::create_dir_all(&dir.0).unwrap();
        let file = dir.0.join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = ProtocolLogs::create(&file.join("logs")).unwrap_err();
        assert!(matches!(err, LogError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().contains("plain-file/logs"), "{err}");
        // A directory where a log file should be.
        let logs_dir = dir.0.join("logs");
        fs::create_dir_all(logs_dir.join(COAP_LOG)).unwrap();
        let err = ProtocolLogs::create(&logs_dir).unwrap_err();
        assert!(matches!(err, LogError::Create { .. }), "{err:?}");
        assert!(err.to_string().contains("coap.jsonl"), "{err}");
    }

    // ---- shared captures ---------------------------------------------------

    /// Per-flow protocol session, chosen by the server port.
    #[derive(Default)]
    enum App {
        #[default]
        Unrouted,
        Http(HttpSession),
        Mqtt(MqttSession),
        Coap(CoapSession),
        Telnet(TelnetSession),
        Ignored,
    }

    impl App {
        fn for_port(port: u16) -> Self {
            match port {
                80 | 2082 | 8000 => App::Http(HttpSession::new(HttpLimits::default())),
                1883 => App::Mqtt(MqttSession::new(MqttLimits::default())),
                5683 => App::Coap(CoapSession::new(CoapLimits::default())),
                23 => App::Telnet(TelnetSession::new(TelnetLimits::default())),
                _ => App::Ignored,
            }
        }
    }

    /// A minimal stand-in for the pipeline: sessions by port, every event logged.
    struct Router<'l> {
        logs: &'l mut ProtocolLogs,
    }

    impl Router<'_> {
        fn log_all(&mut self, info: &FlowInfo, dir: Direction, app: &mut App, feed: Feed<'_>) {
            let ctx = LogContext {
                ts: info.last_ts,
                flow: info,
                dir,
            };
            let ts = info.last_ts;
            let logs = &mut *self.logs;
            macro_rules! run {
                ($proto:ident, |$out:ident| $call:expr) => {{
                    let mut $out = Vec::new();
                    $call;
                    for ev in &$out {
                        logs.write::<$proto>(AppProto::$proto, &ctx, ev)
                            .expect("write log");
                    }
                }};
            }
            match (app, feed) {
                (App::Http(s), Feed::Data(d)) => {
                    run!(Http, |o| s.on_data(ts, dir, d, &mut o))
                }
                (App::Http(s), Feed::Gap(n)) => run!(Http, |o| s.on_gap(ts, dir, n, &mut o)),
                (App::Http(s), Feed::Close) => run!(Http, |o| s.on_close(ts, &mut o)),
                (App::Mqtt(s), Feed::Data(d)) => {
                    run!(Mqtt, |o| s.on_data(ts, dir, d, &mut o))
                }
                (App::Mqtt(s), Feed::Gap(n)) => run!(Mqtt, |o| s.on_gap(ts, dir, n, &mut o)),
                (App::Mqtt(s), Feed::Close) => run!(Mqtt, |o| s.on_close(ts, &mut o)),
                (App::Coap(s), Feed::Data(d)) => {
                    run!(Coap, |o| s.on_datagram(ts, dir, d, &mut o))
                }
                (App::Telnet(s), Feed::Data(d)) => {
                    run!(Telnet, |o| s.on_data(ts, dir, d, &mut o))
                }
                (App::Telnet(s), Feed::Gap(n)) => {
                    run!(Telnet, |o| s.on_gap(ts, dir, n, &mut o))
                }
                (App::Telnet(s), Feed::Close) => run!(Telnet, |o| s.on_close(ts, &mut o)),
                _ => {}
            }
        }
    }

    enum Feed<'a> {
        Data(&'a [u8]),
        Gap(u64),
        Close,
    }

    impl FlowHandler<App> for Router<'_> {
        fn on_stream(
            &mut self,
            info: &FlowInfo,
            app: &mut App,
            dir: Direction,
            ev: StreamEvent<'_>,
        ) {
            if matches!(app, App::Unrouted) {
                *app = App::for_port(info.server.1);
            }
            let feed = match ev {
                StreamEvent::Data(d) => Feed::Data(d),
                StreamEvent::Gap(n) => Feed::Gap(n),
            };
            self.log_all(info, dir, app, feed);
        }

        fn on_datagram(&mut self, info: &FlowInfo, app: &mut App, dir: Direction, payload: &[u8]) {
            if matches!(app, App::Unrouted) {
                *app = App::for_port(info.server.1);
            }
            self.log_all(info, dir, app, Feed::Data(payload));
        }

        fn on_close(&mut self, info: &FlowInfo, app: &mut App, _reason: CloseReason) {
            self.log_all(info, Direction::ToServer, app, Feed::Close);
        }
    }

    fn replay_into(logs: &mut ProtocolLogs, path: &Path) {
        let mut source = FileSource::open(path).expect("open capture");
        let mut decoder = Decoder::default();
        let mut table: FlowTable<App> = FlowTable::new(FlowConfig::default());
        let mut router = Router { logs };
        loop {
            match source.advance().expect("read capture") {
                Next::Frame => {
                    let frame = source.current();
                    if let Decoded::Packet(pkt) = decoder.decode(&frame) {
                        table.process(&pkt, &mut router);
                    }
                }
                Next::Idle => {}
                Next::End => break,
            }
        }
        table.flush(&mut router);
    }

    /// Every string value of a line except the timestamps.
    fn string_values<'v>(v: &'v Value, key: &str, out: &mut Vec<&'v str>) {
        match v {
            Value::String(s) if key != "ts" && key != "started" => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| string_values(i, key, out)),
            Value::Object(map) => map.iter().for_each(|(k, i)| string_values(i, k, out)),
            _ => {}
        }
    }

    #[test]
    fn shared_captures_never_leak_passwords() {
        let shared = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"));
        let dir = TempDir::new("privacy");
        let mut logs = ProtocolLogs::create(&dir.0).unwrap();
        for capture in [
            "lab-sample/capture.pcap",
            "pcaps/telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap",
            "pcaps/http/http-basic-auth-password-with-colon-port8000.pcap",
            "pcaps/http/http-basic-auth-port2082-304.pcap",
            "pcaps/http/http-401-challenge-then-basic-auth.pcap",
            "pcaps/mqtt/mqtt-synthetic-v31-v311-v5-wildcards-oversize-topic.pcap",
            "pcaps/mqtt/mqtt311-connect-userpass-publish-qos0.pcap",
        ] {
            replay_into(&mut logs, &shared.join(capture));
        }
        logs.finish().unwrap();

        let mut all_text = String::new();
        let mut all_lines = Vec::new();
        for name in [HTTP_LOG, MQTT_LOG, COAP_LOG, TELNET_LOG] {
            all_text.push_str(&fs::read_to_string(dir.0.join(name)).unwrap());
            all_lines.extend(read_lines(&dir.0.join(name)));
        }
        // The logins happened and were logged (users, not passwords): telnet
        // users from the parsers' capture tests, HTTP and MQTT users from
        // tshark's http.authbasic / mqtt.username on the same captures.
        let has = |event: &str, key: &str, value: &str| {
            all_lines
                .iter()
                .any(|l| l["event"] == event && l[key] == value)
        };
        for (event, key, value) in [
            ("login", "user", "administrator"),
            ("subnegotiation", "env_user", "administrator"),
            ("login", "user", "root"),
            ("login", "user", "admin"),
            ("request", "auth_user", "admin"),
            ("request", "auth_user", "userrrrr"),
            ("request", "auth_user", "test"),
            ("request", "auth_user", "root"),
            ("packet", "username", "hub"),
            ("packet", "username", "hum1"),
            ("packet", "username", "modern_user"),
            ("packet", "username", "user"),
        ] {
            assert!(
                has(event, key, value),
                "no {event} line with {key} {value:?}"
            );
        }
        // Passwords: telnet ones from telnet/capture_tests.rs; HTTP Basic and
        // MQTT ones from tshark (http.authbasic, mqtt.passwd).
        let distinctive = [
            "penguin",
            "xc3511",
            "vizxv",
            "Adm1n!2024",
            "password123",
            "passworddddd",
            "secret123",
            "mqtt5pass",
            "Hub-Secr3t-77",
            "hum-Sens0r#22",
            "t3mp-Sens0r!",
            "t3mp2-Sens0r!",
            "Th3rmo-2024",
            "admin1234",
        ];
        // Authorization values as sent (tshark http.authorization).
        let basic_tokens = [
            "dGVzdDoxOjM0",
            "dXNlcnJycnI6cGFzc3dvcmRkZGRk",
            "YWRtaW46cGFzc3dvcmQxMjM=",
            "YWRtaW46YWRtaW4xMjM=",
            "YWRtaW46MTIzNDU2",
            "cm9vdDpyb290",
            "cm9vdDpwYXNzd29yZA==",
            "YWRtaW46cXdlcnR5",
        ];
        for secret in distinctive.iter().chain(&basic_tokens) {
            assert!(!all_text.contains(secret), "{secret} written to a log");
        }
        // Short passwords would match inside other text (ports, client ids
        // such as "myvoiceismypassport"): no string value may be one.
        let short = [
            "pass", "1:34", "qwerty", "admin123", "123456", "12345", "111111", "888888", "12345678",
        ];
        let mut values = Vec::new();
        for line in &all_lines {
            string_values(line, "", &mut values);
        }
        for value in values {
            assert!(
                !short.contains(&value),
                "password {value:?} written to a log"
            );
        }
    }
}
