//! Zeek-style protocol logs: `http.jsonl`, `mqtt.jsonl`, `coap.jsonl` and
//! `telnet.jsonl`, one JSON object per line (JSON Lines, RFC 8259 texts
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
//! a [`ContentClass`] of its first bytes, because a form body or a payload can
//! carry credentials.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use super::coap::{
    BlockKind, BlockValue, CoapEvent, CoapMessageEvent, Code, LinkResource, ObserveEndReason,
    ResponseKind, ResponseMatch, Token,
};
use super::http::{
    AnomalyEffect, AnomalyKind as HttpAnomalyKind, Auth, HttpEvent, Method, TunnelKind, Version,
};
use super::mqtt::{ConnackCode, MqttEvent, PacketType, PropertySummary, ProtocolVersion};
use super::telnet::subneg::{AuthDetail, EnvCommand, TerminalSpeedDetail, TerminalTypeDetail};
use super::telnet::{
    AnomalyKind as TelnetAnomalyKind, LoginOutcome, SubnegDetail, TelnetEvent, TokenError,
    UserSource,
};
use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo};

/// File name of the HTTP log inside the log directory.
pub const HTTP_LOG: &str = "http.jsonl";
/// File name of the MQTT log.
pub const MQTT_LOG: &str = "mqtt.jsonl";
/// File name of the CoAP log.
pub const COAP_LOG: &str = "coap.jsonl";
/// File name of the Telnet log.
pub const TELNET_LOG: &str = "telnet.jsonl";

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

/// Lines written to each file of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LogCounts {
    pub http: u64,
    pub mqtt: u64,
    pub coap: u64,
    pub telnet: u64,
}

/// The four log files of one run; each line one JSON object, flushed on
/// [`ProtocolLogs::finish`].
pub struct ProtocolLogs {
    http: LogFile,
    mqtt: LogFile,
    coap: LogFile,
    telnet: LogFile,
    /// One serialized line, reused: a line reaches its file whole or not at all.
    line: Vec<u8>,
}

impl fmt::Debug for ProtocolLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolLogs")
            .field("http", &self.http.path)
            .field("mqtt", &self.mqtt.path)
            .field("coap", &self.coap.path)
            .field("telnet", &self.telnet.path)
            .finish_non_exhaustive()
    }
}

impl ProtocolLogs {
    /// Creates `dir` (and its parents) if needed and the four files in it,
    /// truncating files left by an earlier run.
    pub fn create(dir: &Path) -> Result<Self, LogError> {
        fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(ProtocolLogs {
            http: LogFile::create(dir, HTTP_LOG)?,
            mqtt: LogFile::create(dir, MQTT_LOG)?,
            coap: LogFile::create(dir, COAP_LOG)?,
            telnet: LogFile::create(dir, TELNET_LOG)?,
            line: Vec::with_capacity(512),
        })
    }

    /// Logs an HTTP event: one line per request head, response head, body
    /// end, tunnel and anomaly.
    pub fn http(&mut self, ctx: &LogContext<'_>, ev: &HttpEvent) -> Result<(), LogError> {
        let (dir, record) = http_record(ev);
        let line = Line::new(ctx, dir.unwrap_or(ctx.dir), record);
        self.http.write(&mut self.line, &line)
    }

    /// Logs an MQTT event: one line per control packet and per anomaly.
    pub fn mqtt(&mut self, ctx: &LogContext<'_>, ev: &MqttEvent) -> Result<(), LogError> {
        let line = Line::new(ctx, ctx.dir, mqtt_record(ev));
        self.mqtt.write(&mut self.line, &line)
    }

    /// Logs a CoAP event: messages, observe and block-wise milestones,
    /// discovered resources, unanswered requests and anomalies.
    pub fn coap(&mut self, ctx: &LogContext<'_>, ev: &CoapEvent) -> Result<(), LogError> {
        let (dir, record) = coap_record(ev);
        let line = Line::new(ctx, dir.unwrap_or(ctx.dir), record);
        self.coap.write(&mut self.line, &line)
    }

    /// Logs a Telnet event: login attempts, shell commands, informative
    /// sub-negotiations and anomalies. Option negotiations, single commands
    /// and data counts are not logged (one line per option would drown the
    /// rest); this returns `Ok` without writing for them.
    pub fn telnet(&mut self, ctx: &LogContext<'_>, ev: &TelnetEvent) -> Result<(), LogError> {
        let Some((dir, record)) = telnet_record(ev) else {
            return Ok(());
        };
        let line = Line::new(ctx, dir.unwrap_or(ctx.dir), record);
        self.telnet.write(&mut self.line, &line)
    }

    /// Flushes every file and returns the lines written to each.
    pub fn finish(self) -> Result<LogCounts, LogError> {
        Ok(LogCounts {
            http: self.http.finish()?,
            mqtt: self.mqtt.finish()?,
            coap: self.coap.finish()?,
            telnet: self.telnet.finish()?,
        })
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

/// Serializes a value through its `Display` form (no intermediate `String`).
struct Shown<T>(T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
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

// ---- content classification ------------------------------------------------

/// ELF identification, `e_ident[EI_MAG0..EI_MAG3]` (System V gABI, ch. 4).
const MAGIC_ELF: &[u8] = b"\x7fELF";
/// gzip member header ID1 ID2 (RFC 1952 §2.3.1).
const MAGIC_GZIP: &[u8] = b"\x1f\x8b";
/// ZIP local file header signature 0x04034b50 (PKWARE APPNOTE.TXT §4.3.7).
const MAGIC_ZIP: &[u8] = b"PK\x03\x04";
/// ZIP end of central directory signature 0x06054b50, the start of an empty
/// archive (APPNOTE.TXT §4.3.16).
const MAGIC_ZIP_EMPTY: &[u8] = b"PK\x05\x06";
/// xz stream header magic (The .xz File Format 1.0.4 §2.1.1.1).
const MAGIC_XZ: &[u8] = b"\xfd7zXZ\x00";
/// bzip2 stream header "BZh" (followed by the block size digit '1'..'9').
const MAGIC_BZIP2: &[u8] = b"BZh";
/// PNG signature (ISO/IEC 15948 §5.2).
const MAGIC_PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
/// JPEG SOI marker followed by the next marker's 0xFF (ITU-T T.81 B.1.1.3).
const MAGIC_JPEG: &[u8] = b"\xff\xd8\xff";
/// GIF header signature and versions (GIF89a specification §17).
const MAGIC_GIF: [&[u8]; 2] = [b"GIF87a", b"GIF89a"];
/// PDF file header (ISO 32000-1 §7.5.2).
const MAGIC_PDF: &[u8] = b"%PDF-";
/// MS-DOS stub signature at the start of a PE image (Microsoft PE/COFF
/// specification §2).
const MAGIC_MZ: &[u8] = b"MZ";
/// Interpreter line of a script, as execve(2) recognises it.
const MAGIC_SHEBANG: &[u8] = b"#!";

/// What the first bytes of a body or payload look like. Only this
/// classification and a length are ever logged, never the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentClass {
    /// No bytes.
    Empty,
    Elf,
    /// Windows PE executable ("MZ" followed by binary bytes).
    Pe,
    Gzip,
    Zip,
    Xz,
    Bzip2,
    Png,
    Jpeg,
    Gif,
    Pdf,
    /// Text starting with `#!`.
    Script,
    /// Text starting (after white space) with `{` or `[` (RFC 8259 §2).
    Json,
    /// Text starting (after white space) with `<`: HTML or XML.
    Markup,
    /// Other UTF-8 text without control characters (tab, CR, LF allowed).
    Text,
    /// Anything else.
    Binary,
}

impl ContentClass {
    /// Classifies the leading bytes of a body or payload (any length; a
    /// multi-byte UTF-8 character cut at the end still counts as text).
    pub fn of(head: &[u8]) -> Self {
        if head.is_empty() {
            return ContentClass::Empty;
        }
        let binary_magic = [
            (MAGIC_ELF, ContentClass::Elf),
            (MAGIC_GZIP, ContentClass::Gzip),
            (MAGIC_ZIP, ContentClass::Zip),
            (MAGIC_ZIP_EMPTY, ContentClass::Zip),
            (MAGIC_XZ, ContentClass::Xz),
            (MAGIC_PNG, ContentClass::Png),
            (MAGIC_JPEG, ContentClass::Jpeg),
            (MAGIC_PDF, ContentClass::Pdf),
        ];
        if let Some((_, class)) = binary_magic.iter().find(|(m, _)| head.starts_with(m)) {
            return *class;
        }
        if MAGIC_GIF.iter().any(|m| head.starts_with(m)) {
            return ContentClass::Gif;
        }
        if head.starts_with(MAGIC_BZIP2)
            && head
                .get(MAGIC_BZIP2.len())
                .is_some_and(|d| (b'1'..=b'9').contains(d))
        {
            return ContentClass::Bzip2;
        }
        if !is_text(head) {
            return if head.starts_with(MAGIC_MZ) {
                ContentClass::Pe
            } else {
                ContentClass::Binary
            };
        }
        if head.starts_with(MAGIC_SHEBANG) {
            return ContentClass::Script;
        }
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => ContentClass::Json,
            Some(b'<') => ContentClass::Markup,
            _ => ContentClass::Text,
        }
    }

    /// Stable lower-case name, as written in the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentClass::Empty => "empty",
            ContentClass::Elf => "elf",
            ContentClass::Pe => "pe",
            ContentClass::Gzip => "gzip",
            ContentClass::Zip => "zip",
            ContentClass::Xz => "xz",
            ContentClass::Bzip2 => "bzip2",
            ContentClass::Png => "png",
            ContentClass::Jpeg => "jpeg",
            ContentClass::Gif => "gif",
            ContentClass::Pdf => "pdf",
            ContentClass::Script => "script",
            ContentClass::Json => "json",
            ContentClass::Markup => "markup",
            ContentClass::Text => "text",
            ContentClass::Binary => "binary",
        }
    }
}

/// UTF-8 (an incomplete character at the very end allowed) without control
/// characters other than tab, LF, CR and form feed.
fn is_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        // `error_len() == None`: the input ends inside a character.
        Err(e) if e.error_len().is_none() => {
            match bytes.get(..e.valid_up_to()).map(std::str::from_utf8) {
                Some(Ok(s)) => s,
                _ => return false,
            }
        }
        Err(_) => return false,
    };
    valid
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// Classification of a captured head, `None` when nothing was captured.
fn magic_of(head: &[u8]) -> Option<&'static str> {
    (!head.is_empty()).then(|| ContentClass::of(head).as_str())
}

// ---- HTTP ------------------------------------------------------------------

/// HTTP version as Zeek writes it ("1.1").
struct HttpVersion(Version);

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Version::Http09 => f.write_str("0.9"),
            Version::Http10 => f.write_str("1.0"),
            Version::Http11 => f.write_str("1.1"),
            Version::Other { major, minor } => write!(f, "{major}.{minor}"),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum HttpRecord<'a> {
    Request {
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<&'a str>,
        uri: &'a str,
        version: Shown<HttpVersion>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_length: Option<u64>,
        chunked: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_scheme: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_user: Option<&'a str>,
        /// Basic only: a password was present (never its length).
        #[serde(skip_serializing_if = "Option::is_none")]
        auth_has_password: Option<bool>,
    },
    Response {
        status: u16,
        reason: &'a str,
        version: Shown<HttpVersion>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_type: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_length: Option<u64>,
        chunked: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_method: Option<&'a str>,
    },
    Body {
        body_len: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        body_magic: Option<&'static str>,
        complete: bool,
    },
    Tunnel {
        tunnel: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        authority: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        upgrade: Option<&'a str>,
    },
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        effect: &'static str,
    },
}

/// The record of an HTTP event and the direction it travelled, when the
/// event fixes it.
fn http_record(ev: &HttpEvent) -> (Option<Direction>, HttpRecord<'_>) {
    match ev {
        HttpEvent::Request(r) => {
            let (auth_scheme, auth_user, auth_has_password) = match &r.auth {
                Auth::None => (None, None, None),
                Auth::Basic {
                    user, has_password, ..
                } => (Some("basic"), Some(user.as_str()), Some(*has_password)),
                Auth::Digest { user } => (Some("digest"), user.as_deref(), None),
                Auth::Bearer => (Some("bearer"), None, None),
                Auth::Other(scheme) => (Some(scheme.as_str()), None, None),
            };
            let record = HttpRecord::Request {
                method: r.method.as_str(),
                host: r.host.as_deref(),
                uri: &r.uri,
                version: Shown(HttpVersion(r.version)),
                user_agent: r.user_agent.as_deref(),
                content_type: r.content_type.as_deref(),
                content_length: r.content_length,
                chunked: r.chunked,
                auth_scheme,
                auth_user,
                auth_has_password,
            };
            (Some(Direction::ToServer), record)
        }
        HttpEvent::Response(r) => {
            let record = HttpRecord::Response {
                status: r.status,
                reason: &r.reason,
                version: Shown(HttpVersion(r.version)),
                content_type: r.content_type.as_deref(),
                content_length: r.content_length,
                chunked: r.chunked,
                request_method: r.request_method.as_ref().map(Method::as_str),
            };
            (Some(Direction::ToClient), record)
        }
        HttpEvent::Body(b) => {
            let record = HttpRecord::Body {
                body_len: b.total_len,
                body_magic: magic_of(&b.head),
                complete: b.complete,
            };
            (Some(b.dir), record)
        }
        // A tunnel starts with the server's answer (2xx to CONNECT, 101).
        HttpEvent::Tunnel(kind) => {
            let record = match kind {
                TunnelKind::Connect { authority } => HttpRecord::Tunnel {
                    tunnel: "connect",
                    authority: Some(authority),
                    upgrade: None,
                },
                TunnelKind::Upgrade { protocol } => HttpRecord::Tunnel {
                    tunnel: "upgrade",
                    authority: None,
                    upgrade: Some(protocol),
                },
            };
            (Some(Direction::ToClient), record)
        }
        HttpEvent::Anomaly(a) => {
            let record = HttpRecord::Anomaly {
                kind: http_anomaly_name(a.kind),
                detail: &a.detail,
                effect: match a.effect {
                    AnomalyEffect::Continue => "continue",
                    AnomalyEffect::Resync => "resync",
                    AnomalyEffect::StopDirection => "stop_direction",
                },
            };
            (Some(a.dir), record)
        }
    }
}

/// Stable snake_case name of an HTTP anomaly kind.
fn http_anomaly_name(kind: HttpAnomalyKind) -> &'static str {
    use HttpAnomalyKind as K;
    match kind {
        K::Http09Request => "http09_request",
        K::InvalidRequestLine => "invalid_request_line",
        K::InvalidStatusLine => "invalid_status_line",
        K::InvalidStatusCode => "invalid_status_code",
        K::InvalidVersion => "invalid_version",
        K::InvalidHeader => "invalid_header",
        K::TooManyHeaders => "too_many_headers",
        K::HeadTooLarge => "head_too_large",
        K::InvalidHost => "invalid_host",
        K::TransferEncodingWithContentLength => "transfer_encoding_with_content_length",
        K::ObfuscatedTransferEncoding => "obfuscated_transfer_encoding",
        K::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
        K::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
        K::InvalidContentLength => "invalid_content_length",
        K::ChunkSizeOverflow => "chunk_size_overflow",
        K::InvalidChunk => "invalid_chunk",
        K::TrailerTooLarge => "trailer_too_large",
        K::InvalidAuthorization => "invalid_authorization",
        K::UserinfoInUri => "userinfo_in_uri",
        K::PipelineLimit => "pipeline_limit",
        K::GapLostSync => "gap_lost_sync",
        K::TruncatedHead => "truncated_head",
        K::BufferLimit => "buffer_limit",
    }
}

// ---- MQTT ------------------------------------------------------------------

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum MqttRecord<'a> {
    Packet(Box<MqttPacket<'a>>),
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_type: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        msg_type_code: Option<u8>,
    },
}

/// One control packet. Which fields are present depends on `msg_type`.
#[derive(Default, Serialize)]
struct MqttPacket<'a> {
    msg_type: &'static str,
    msg_type_code: u8,
    // CONNECT (MQTT 5.0 §3.1.2, §3.1.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_password: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clean_start: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_qos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_retain: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_payload_len: Option<u16>,
    // CONNACK (§3.2)
    #[serde(skip_serializing_if = "Option::is_none")]
    session_present: Option<bool>,
    /// 3.x Connect Return Code (3.1.1 §3.2.2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    return_code: Option<u8>,
    /// 5.0 Reason Code (§2.4) of CONNACK, PUBACK..PUBCOMP, DISCONNECT, AUTH.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<bool>,
    // PUBLISH (§3.3)
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retain: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dup: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    packet_id: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_magic: Option<&'static str>,
    // SUBSCRIBE / UNSUBSCRIBE (§3.8, §3.10)
    #[serde(skip_serializing_if = "Option::is_none")]
    filters: Option<Vec<&'a str>>,
    /// Requested QoS of each filter, SUBSCRIBE only.
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_qos: Option<Vec<u8>>,
    /// Filters in the packet (`filters` may hold fewer).
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_count: Option<usize>,
    // SUBACK / UNSUBACK (§3.9, §3.11)
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_codes: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code_count: Option<usize>,
    /// A packet whose body was not decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    properties: Option<MqttProperties<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_properties: Option<MqttProperties<'a>>,
}

/// The MQTT 5.0 properties worth a log column (§2.2.2.2). Binary values
/// (Authentication Data, Correlation Data) appear as presence flags; of the
/// User Properties only the count and the first name are written.
#[derive(Serialize)]
struct MqttProperties<'a> {
    count: u16,
    #[serde(skip_serializing_if = "is_zero")]
    user_properties: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_user_property_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_format_utf8: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_expiry_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_topic: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    has_correlation_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic_alias: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_expiry_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned_client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_keep_alive_secs: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_method: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    has_auth_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    will_delay_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receive_maximum: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_packet_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_qos: Option<u8>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn mqtt_properties(p: Option<&PropertySummary>) -> Option<MqttProperties<'_>> {
    let p = p?;
    Some(MqttProperties {
        count: p.count,
        user_properties: p.user_properties,
        first_user_property_name: p.first_user_property.as_ref().map(|(k, _)| k.as_str()),
        content_type: p.content_type.as_deref(),
        payload_format_utf8: p.payload_format_utf8,
        message_expiry_secs: p.message_expiry_secs,
        response_topic: p.response_topic.as_deref(),
        has_correlation_data: p.has_correlation_data,
        topic_alias: p.topic_alias,
        session_expiry_secs: p.session_expiry_secs,
        assigned_client_id: p.assigned_client_id.as_deref(),
        server_keep_alive_secs: p.server_keep_alive_secs,
        auth_method: p.auth_method.as_deref(),
        has_auth_data: p.has_auth_data,
        will_delay_secs: p.will_delay_secs,
        reason_string: p.reason_string.as_deref(),
        server_reference: p.server_reference.as_deref(),
        receive_maximum: p.receive_maximum,
        maximum_packet_size: p.maximum_packet_size,
        maximum_qos: p.maximum_qos,
    })
}

fn mqtt_version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

fn mqtt_record(ev: &MqttEvent) -> MqttRecord<'_> {
    if let MqttEvent::Anomaly(a) = ev {
        let t = a.msg_type.map(PacketType::from_nibble);
        return MqttRecord::Anomaly {
            kind: a.kind.as_str(),
            detail: &a.detail,
            msg_type: t.map(PacketType::name),
            msg_type_code: a.msg_type,
        };
    }
    // Every other event is a packet and has a type (`msg_type` is `None`
    // only for anomalies).
    let code = ev.msg_type().unwrap_or_default();
    let mut p = MqttPacket {
        msg_type: PacketType::from_nibble(code).name(),
        msg_type_code: code,
        ..MqttPacket::default()
    };
    match ev {
        MqttEvent::Connect(c) => {
            p.version = c.version.map(mqtt_version_name);
            p.protocol_name = Some(&c.protocol_name);
            p.protocol_level = Some(c.protocol_level);
            p.client_id = Some(&c.client_id);
            p.username = c.username.as_deref();
            p.has_password = Some(c.has_password);
            p.keep_alive = Some(c.keep_alive_secs);
            p.clean_start = Some(c.clean_start);
            if let Some(w) = &c.will {
                p.will_topic = Some(&w.topic);
                p.will_qos = Some(w.qos.code());
                p.will_retain = Some(w.retain);
                p.will_payload_len = Some(w.payload_len);
                p.will_properties = mqtt_properties(w.properties.as_deref());
            }
            p.properties = mqtt_properties(c.properties.as_deref());
        }
        MqttEvent::Connack(c) => {
            p.session_present = Some(c.session_present);
            match c.code {
                ConnackCode::V3(_) => p.return_code = Some(c.code.raw()),
                ConnackCode::V5(_) => p.reason_code = Some(c.code.raw()),
            }
            p.accepted = Some(c.code.is_accepted());
            p.properties = mqtt_properties(c.properties.as_deref());
        }
        MqttEvent::Publish(m) => {
            p.topic = Some(&m.topic);
            p.qos = Some(m.qos.code());
            p.retain = Some(m.retain);
            p.dup = Some(m.dup);
            p.packet_id = m.packet_id;
            p.payload_len = Some(m.payload_len);
            p.payload_magic = if m.payload_len == 0 {
                Some(ContentClass::Empty.as_str())
            } else {
                magic_of(&m.payload_head)
            };
            p.properties = mqtt_properties(m.properties.as_deref());
        }
        MqttEvent::Puback(a)
        | MqttEvent::Pubrec(a)
        | MqttEvent::Pubrel(a)
        | MqttEvent::Pubcomp(a) => {
            p.packet_id = Some(a.packet_id);
            p.reason_code = Some(a.reason.0);
            p.properties = mqtt_properties(a.properties.as_deref());
        }
        MqttEvent::Subscribe(s) => {
            p.packet_id = Some(s.packet_id);
            p.filters = Some(s.filters.iter().map(|f| f.filter.as_str()).collect());
            p.filter_qos = Some(s.filters.iter().map(|f| f.qos.code()).collect());
            p.filter_count = Some(s.filter_count);
            p.properties = mqtt_properties(s.properties.as_deref());
        }
        MqttEvent::Suback(s) => {
            p.packet_id = Some(s.packet_id);
            p.reason_codes = Some(s.codes.iter().map(|c| c.0).collect());
            p.reason_code_count = Some(s.code_count);
            p.properties = mqtt_properties(s.properties.as_deref());
        }
        MqttEvent::Unsubscribe(u) => {
            p.packet_id = Some(u.packet_id);
            p.filters = Some(u.filters.iter().map(|f| f.as_str()).collect());
            p.filter_count = Some(u.filter_count);
            p.properties = mqtt_properties(u.properties.as_deref());
        }
        MqttEvent::Unsuback(u) => {
            p.packet_id = Some(u.packet_id);
            p.reason_codes = Some(u.codes.iter().map(|c| c.0).collect());
            p.reason_code_count = Some(u.code_count);
            p.properties = mqtt_properties(u.properties.as_deref());
        }
        MqttEvent::Disconnect(d) => {
            p.reason_code = Some(d.reason.0);
            p.properties = mqtt_properties(d.properties.as_deref());
        }
        MqttEvent::Auth(a) => {
            p.reason_code = Some(a.reason.0);
            p.properties = mqtt_properties(a.properties.as_deref());
        }
        MqttEvent::Unparsed { remaining_len, .. } => p.remaining_len = Some(*remaining_len),
        MqttEvent::Pingreq | MqttEvent::Pingresp | MqttEvent::Anomaly(_) => {}
    }
    MqttRecord::Packet(Box::new(p))
}

// ---- CoAP ------------------------------------------------------------------

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum CoapRecord<'a> {
    Message(Box<CoapMessage<'a>>),
    ObserveRegister {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
    },
    ObserveDeregister {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
    },
    ObserveNotify {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        observe: u32,
        code: Shown<Code>,
        code_num: u8,
        notifications: u32,
    },
    ObserveEnd {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        reason: &'static str,
        notifications: u32,
    },
    BlockTransfer {
        block: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        blocks: u32,
        bytes: u64,
        block_size: u16,
    },
    Discovery {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_uri_path: Option<&'a str>,
        resources: Vec<CoapResource<'a>>,
        truncated: bool,
        malformed_links: u32,
    },
    Unanswered {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        message_id: u16,
        request_code: Shown<Code>,
        request_code_num: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        retransmissions: u16,
        acknowledged: bool,
    },
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        option: Option<u16>,
    },
}

/// One CoAP message (RFC 7252 §3), with tshark's numbering for type and code.
#[derive(Serialize)]
struct CoapMessage<'a> {
    /// "CON", "NON", "ACK", "RST".
    #[serde(rename = "type")]
    msg_type: &'static str,
    /// `coap.type`: 0 CON .. 3 RST.
    type_num: u8,
    /// "c.dd", e.g. "0.01", "2.05".
    code: Shown<Code>,
    /// `coap.code`: class * 32 + detail (1 GET, 69 = 2.05).
    code_num: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    message_id: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<Shown<Token>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_format: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accept: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observe: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block1: Option<CoapBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block2: Option<CoapBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size1: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size2: Option<u32>,
    payload_len: usize,
    retransmission: bool,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    unknown_critical_options: &'a [u16],
    #[serde(skip_serializing_if = "is_false")]
    capped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format_error: Option<Shown<super::coap::ParseError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_to: Option<CoapResponseTo<'a>>,
}

/// A Block1/Block2 option value (RFC 7959 §2.2).
#[derive(Serialize)]
struct CoapBlock {
    num: u32,
    more: bool,
    szx: u8,
    /// Block size in bytes; absent for the reserved SZX 7.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u16>,
}

impl From<BlockValue> for CoapBlock {
    fn from(b: BlockValue) -> Self {
        CoapBlock {
            num: b.num,
            more: b.more,
            szx: b.szx,
            size: b.size(),
        }
    }
}

/// The request a response answered (RFC 7252 §5.3.2).
#[derive(Serialize)]
struct CoapResponseTo<'a> {
    kind: &'static str,
    request_code: Shown<Code>,
    request_code_num: u8,
    request_message_id: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_uri_path: Option<&'a str>,
    /// Seconds from the request's first transmission.
    rtt: f64,
}

/// A discovered resource (RFC 6690 §2, §3).
#[derive(Serialize)]
struct CoapResource<'a> {
    target: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rt: Option<&'a str>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    interface: Option<&'a str>,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    ct: &'a [u16],
    #[serde(skip_serializing_if = "is_false")]
    obs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sz: Option<u64>,
}

impl<'a> From<&'a LinkResource> for CoapResource<'a> {
    fn from(l: &'a LinkResource) -> Self {
        CoapResource {
            target: &l.target,
            rt: l.rt.as_deref(),
            interface: l.interface.as_deref(),
            ct: &l.content_formats,
            obs: l.observable,
            title: l.title.as_deref(),
            sz: l.size,
        }
    }
}

/// The token as hex, `None` for an empty one (RFC 7252 §5.3.1).
fn token(t: Token) -> Option<Shown<Token>> {
    (!t.is_empty()).then_some(Shown(t))
}

fn coap_method_name(code: Code) -> Option<&'static str> {
    use super::coap::Method as M;
    Some(match code.method()? {
        M::Get => "GET",
        M::Post => "POST",
        M::Put => "PUT",
        M::Delete => "DELETE",
        M::Fetch => "FETCH",
        M::Patch => "PATCH",
        M::IPatch => "iPATCH",
        M::Unknown(_) => return None,
    })
}

fn coap_message(m: &CoapMessageEvent) -> CoapMessage<'_> {
    CoapMessage {
        msg_type: m.msg_type.name(),
        type_num: m.msg_type.as_u8(),
        code: Shown(m.code),
        code_num: m.code.number(),
        method: coap_method_name(m.code),
        message_id: m.message_id,
        token: token(m.token),
        uri_host: m.uri_host.as_deref(),
        uri_path: m.uri_path.as_deref(),
        uri_query: m.uri_query.as_deref(),
        content_format: m.content_format,
        accept: m.accept,
        observe: m.observe,
        block1: m.block1.map(CoapBlock::from),
        block2: m.block2.map(CoapBlock::from),
        size1: m.size1,
        size2: m.size2,
        payload_len: m.payload_len,
        retransmission: m.is_retransmission,
        unknown_critical_options: &m.unknown_critical_options,
        capped: m.capped,
        format_error: m.format_error.map(Shown),
        response_to: m.response_to.as_ref().map(coap_response_to),
    }
}

fn coap_response_to(r: &ResponseMatch) -> CoapResponseTo<'_> {
    CoapResponseTo {
        kind: match r.kind {
            ResponseKind::Piggybacked => "piggybacked",
            ResponseKind::Separate => "separate",
        },
        request_code: Shown(r.request_code),
        request_code_num: r.request_code.number(),
        request_message_id: r.request_message_id,
        request_uri_path: r.request_uri_path.as_deref(),
        rtt: r.rtt_nanos as f64 / Timestamp::NANOS_PER_SEC as f64,
    }
}

fn coap_record(ev: &CoapEvent) -> (Option<Direction>, CoapRecord<'_>) {
    match ev {
        CoapEvent::Message(m) => (Some(m.dir), CoapRecord::Message(Box::new(coap_message(m)))),
        CoapEvent::ObserveRegister {
            dir,
            token: t,
            uri_path,
        } => (
            Some(*dir),
            CoapRecord::ObserveRegister {
                token: token(*t),
                uri_path: uri_path.as_deref(),
            },
        ),
        CoapEvent::ObserveDeregister {
            dir,
            token: t,
            uri_path,
        } => (
            Some(*dir),
            CoapRecord::ObserveDeregister {
                token: token(*t),
                uri_path: uri_path.as_deref(),
            },
        ),
        CoapEvent::ObserveNotify {
            dir,
            token: t,
            uri_path,
            sequence,
            code,
            notifications,
        } => (
            Some(*dir),
            CoapRecord::ObserveNotify {
                token: token(*t),
                uri_path: uri_path.as_deref(),
                observe: *sequence,
                code: Shown(*code),
                code_num: code.number(),
                notifications: *notifications,
            },
        ),
        CoapEvent::ObserveEnd {
            token: t,
            uri_path,
            reason,
            notifications,
        } => (
            None,
            CoapRecord::ObserveEnd {
                token: token(*t),
                uri_path: uri_path.as_deref(),
                reason: match reason {
                    ObserveEndReason::NotAccepted => "not_accepted",
                    ObserveEndReason::FinalResponse => "final_response",
                    ObserveEndReason::Reset => "reset",
                    ObserveEndReason::Deregistered => "deregistered",
                    ObserveEndReason::Evicted => "evicted",
                },
                notifications: *notifications,
            },
        ),
        CoapEvent::BlockTransferComplete {
            dir,
            kind,
            uri_path,
            blocks,
            bytes,
            block_size,
        } => (
            Some(*dir),
            CoapRecord::BlockTransfer {
                block: match kind {
                    BlockKind::Block1 => "block1",
                    BlockKind::Block2 => "block2",
                },
                uri_path: uri_path.as_deref(),
                blocks: *blocks,
                bytes: *bytes,
                block_size: *block_size,
            },
        ),
        CoapEvent::Discovery(d) => (
            Some(d.dir),
            CoapRecord::Discovery {
                token: token(d.token),
                request_uri_path: d.request_uri_path.as_deref(),
                resources: d.links.iter().map(CoapResource::from).collect(),
                truncated: d.truncated,
                malformed_links: d.malformed_links,
            },
        ),
        CoapEvent::Unanswered {
            dir,
            token: t,
            message_id,
            request_code,
            uri_path,
            retransmissions,
            acknowledged,
        } => (
            Some(*dir),
            CoapRecord::Unanswered {
                token: token(*t),
                message_id: *message_id,
                request_code: Shown(*request_code),
                request_code_num: request_code.number(),
                uri_path: uri_path.as_deref(),
                retransmissions: *retransmissions,
                acknowledged: *acknowledged,
            },
        ),
        CoapEvent::Anomaly(a) => (
            Some(a.dir),
            CoapRecord::Anomaly {
                kind: a.kind.as_str(),
                detail: &a.detail,
                message_id: a.message_id,
                option: a.option,
            },
        ),
    }
}

// ---- Telnet ----------------------------------------------------------------

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum TelnetRecord<'a> {
    /// A login attempt; the password is never written, only whether one was
    /// typed.
    Login {
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<&'a str>,
        user_source: &'static str,
        has_password: bool,
        outcome: &'static str,
        /// When the user or password line was completed.
        started: Shown<Timestamp>,
    },
    /// A line typed in a shell after a successful login.
    Shell {
        line: &'a str,
        truncated: bool,
    },
    Subnegotiation(TelnetSubneg<'a>),
    Anomaly {
        kind: &'static str,
        detail: String,
    },
}

/// The informative sub-negotiations (RFC 1073, 1079, 1091, 1572, 2941).
#[derive(Default, Serialize)]
struct TelnetSubneg<'a> {
    /// Option code (RFC 855).
    option: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    terminal_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_width: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_height: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    terminal_speed: Option<&'a str>,
    /// NEW-ENVIRON "is" or "info".
    #[serde(skip_serializing_if = "Option::is_none")]
    env_command: Option<&'static str>,
    /// Value of the well-known variable USER.
    #[serde(skip_serializing_if = "Option::is_none")]
    env_user: Option<&'a str>,
    /// Names of the variables sent (their values are not written).
    #[serde(skip_serializing_if = "Option::is_none")]
    env_vars: Option<Vec<&'a str>>,
    /// AUTHENTICATION NAME (the account asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_name: Option<&'a str>,
    /// AUTHENTICATION IS type (2 KERBEROS_V5, 5 SRP, ...); its data is
    /// credential material and is not written.
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_type: Option<u8>,
}

fn telnet_record(ev: &TelnetEvent) -> Option<(Option<Direction>, TelnetRecord<'_>)> {
    Some(match ev {
        TelnetEvent::Negotiation { .. }
        | TelnetEvent::Command { .. }
        | TelnetEvent::Data { .. } => {
            return None;
        }
        TelnetEvent::Subnegotiation {
            dir,
            option,
            detail,
        } => {
            let mut s = TelnetSubneg {
                option: u8::from(*option),
                ..TelnetSubneg::default()
            };
            match detail {
                SubnegDetail::WindowSize { width, height } => {
                    s.window_width = Some(*width);
                    s.window_height = Some(*height);
                }
                SubnegDetail::TerminalType(TerminalTypeDetail::Is { name }) => {
                    s.terminal_type = Some(name)
                }
                SubnegDetail::TerminalSpeed(TerminalSpeedDetail::Is { speed }) => {
                    s.terminal_speed = Some(speed)
                }
                SubnegDetail::Environ(env)
                    if matches!(env.command, EnvCommand::Is | EnvCommand::Info)
                        && !env.vars.is_empty() =>
                {
                    s.env_command = Some(match env.command {
                        EnvCommand::Is => "is",
                        _ => "info",
                    });
                    s.env_user = env.user();
                    s.env_vars = Some(env.vars.iter().map(|v| v.name.as_str()).collect());
                }
                SubnegDetail::Authentication(AuthDetail::Name { name }) => s.auth_name = Some(name),
                SubnegDetail::Authentication(AuthDetail::Is { auth_type, .. }) => {
                    s.auth_type = Some(*auth_type)
                }
                // Requests (SEND), empty environments, LINEMODE, other
                // AUTHENTICATION messages and undecoded payloads say nothing
                // about the session.
                _ => return None,
            }
            (Some(*dir), TelnetRecord::Subnegotiation(s))
        }
        // The client's act, whichever direction's bytes decided it.
        TelnetEvent::LoginAttempt(a) => (
            Some(Direction::ToServer),
            TelnetRecord::Login {
                user: a.user.as_deref(),
                user_source: match a.user_source {
                    UserSource::Typed => "typed",
                    UserSource::EnvironUser => "environ_user",
                    UserSource::AuthenticationName => "authentication_name",
                    UserSource::Unknown => "unknown",
                },
                has_password: a.has_password,
                outcome: match a.outcome {
                    LoginOutcome::Success => "success",
                    LoginOutcome::Failure => "failure",
                    LoginOutcome::Unknown => "unknown",
                },
                started: Shown(a.started),
            },
        ),
        TelnetEvent::ShellCommand { line, truncated } => (
            Some(Direction::ToServer),
            TelnetRecord::Shell {
                line,
                truncated: *truncated,
            },
        ),
        TelnetEvent::Anomaly(a) => (
            Some(a.dir),
            TelnetRecord::Anomaly {
                kind: telnet_anomaly_name(&a.kind),
                detail: a.kind.to_string(),
            },
        ),
    })
}

/// Stable snake_case name of a Telnet anomaly kind.
fn telnet_anomaly_name(kind: &TelnetAnomalyKind) -> &'static str {
    match kind {
        TelnetAnomalyKind::Token(t) => match t {
            TokenError::UnknownCommand(_) => "unknown_command",
            TokenError::SeWithoutSb => "se_without_sb",
            TokenError::SubnegTooLong { .. } => "subneg_too_long",
            TokenError::SubnegInterrupted { .. } => "subneg_interrupted",
            TokenError::SubnegUnterminated { .. } => "subneg_unterminated",
            TokenError::TruncatedCommand => "truncated_command",
        },
        TelnetAnomalyKind::SubnegMalformed { .. } => "subneg_malformed",
        TelnetAnomalyKind::EnvVarsDropped { .. } => "env_vars_dropped",
        TelnetAnomalyKind::EnvStrayBytes { .. } => "env_stray_bytes",
        TelnetAnomalyKind::LoginArgumentInjection { .. } => "login_argument_injection",
        TelnetAnomalyKind::Gap { .. } => "gap",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::Ipv4Addr;

    use serde_json::Value;

    use super::*;
    use crate::capture::{FileSource, FrameSource, Next};
    use crate::decode::{Decoded, Decoder};
    use crate::flow::{CloseReason, FlowConfig, FlowHandler, FlowTable, StreamEvent};
    use crate::proto::coap::{CoapLimits, CoapSession};
    use crate::proto::http::{BodyHead, HttpBody, HttpLimits, HttpSession};
    use crate::proto::mqtt::{MqttLimits, MqttSession};
    use crate::proto::telnet::{TelnetLimits, TelnetSession};

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
            let mut out = Vec::new();
            session.on_data(ts, d, &bytes, &mut out);
            let ctx = LogContext {
                ts,
                flow: &info,
                dir: d,
            };
            for ev in &out {
                logs.mqtt(&ctx, ev).unwrap();
            }
        }
        let counts = logs.finish().unwrap();
        assert_eq!(
            counts,
            LogCounts {
                mqtt: 3,
                ..LogCounts::default()
            }
        );
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
            let mut out = Vec::new();
            session.on_data(Timestamp(0), d, bytes, &mut out);
            let ctx = LogContext {
                ts: Timestamp(0),
                flow: &info,
                dir: d,
            };
            for ev in &out {
                logs.mqtt(&ctx, ev).unwrap();
            }
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
            Content-Length: 8\r\n\r\n\x7fELF\x02\x01\x01\x00";
        for (d, bytes) in [(C2S, &request[..]), (S2C, &response[..])] {
            let mut out = Vec::new();
            session.on_data(Timestamp(0), d, bytes, &mut out);
            let ctx = LogContext {
                ts: Timestamp(0),
                flow: &info,
                dir: d,
            };
            for ev in &out {
                logs.http(&ctx, ev).unwrap();
            }
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
        logs.http(&close_ctx, &cut).unwrap();
        assert_eq!(logs.finish().unwrap().http, 5);

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
            let mut out = Vec::new();
            session.on_data(Timestamp(0), d, bytes, &mut out);
            let ctx = LogContext {
                ts: Timestamp(0),
                flow: &info,
                dir: d,
            };
            for ev in &out {
                logs.http(&ctx, ev).unwrap();
            }
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
            let mut out = Vec::new();
            session.on_datagram(ts, d, bytes, &mut out);
            let ctx = LogContext {
                ts,
                flow: &info,
                dir: d,
            };
            for ev in &out {
                logs.coap(&ctx, ev).unwrap();
            }
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
        let mut out = Vec::new();
        session.on_datagram(Timestamp(0), S2C, &[0x49, 0x01, 0x12, 0x34], &mut out);
        let ctx = LogContext {
            ts: Timestamp(0),
            flow: &info,
            dir: S2C,
        };
        for ev in &out {
            logs.coap(&ctx, ev).unwrap();
        }
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
            let mut out = Vec::new();
            session.on_data(ts, *d, bytes, &mut out);
            let ctx = LogContext {
                ts,
                flow: &info,
                dir: *d,
            };
            for ev in &out {
                logs.telnet(&ctx, ev).unwrap();
            }
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
                "login",
                "shell",
                "anomaly"
            ],
            "{lines:?}"
        );
        assert_eq!(counts.telnet, 5);
        let [naws, ttype, login, shell, anomaly] = lines.as_slice() else {
            unreachable!()
        };
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
        // The attempt started with the user line (segment 6) and was decided
        // by the shell prompt (segment 9).
        assert_eq!(login["started"], "1970-01-01T00:00:06.000000Z");
        assert_eq!(login["ts"], "1970-01-01T00:00:09.000000Z");
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
        let mut out = Vec::new();
        session.on_data(Timestamp(0), C2S, sb, &mut out);
        let ctx = LogContext {
            ts: Timestamp(0),
            flow: &info,
            dir: C2S,
        };
        for ev in &out {
            logs.telnet(&ctx, ev).unwrap();
        }
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
    fn content_classes_from_format_magic_numbers() {
        let cases: [(&[u8], ContentClass); 21] = [
            (b"", ContentClass::Empty),
            (b"\x7fELF\x01\x01\x01\x00", ContentClass::Elf),
            (b"MZ\x90\x00\x03\x00\x00\x00", ContentClass::Pe),
            (b"\x1f\x8b\x08\x00", ContentClass::Gzip),
            (b"PK\x03\x04\x14\x00", ContentClass::Zip),
            (b"PK\x05\x06\x00\x00", ContentClass::Zip),
            (b"\xfd7zXZ\x00\x00\x04", ContentClass::Xz),
            (b"BZh91AY&SY", ContentClass::Bzip2),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", ContentClass::Png),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF", ContentClass::Jpeg),
            (b"GIF89a\x01\x00\x01\x00", ContentClass::Gif),
            (b"%PDF-1.7\n", ContentClass::Pdf),
            (b"#!/bin/sh\nwget http://x/a\n", ContentClass::Script),
            (b"  {\"temp\": 22.5}", ContentClass::Json),
            (b"[1,2]", ContentClass::Json),
            (b"<!DOCTYPE html><html>", ContentClass::Markup),
            (b"22.3 C", ContentClass::Text),
            // "MZ" as the start of text is text, not an executable.
            (b"MZone ready\r\n", ContentClass::Text),
            // "é" (c3 a9) cut after its first byte at the end of the head.
            (b"caf\xc3", ContentClass::Text),
            (b"\x00\x01\x02\x03", ContentClass::Binary),
            (b"ok\x1b[0m", ContentClass::Binary),
        ];
        for (bytes, class) in cases {
            assert_eq!(ContentClass::of(bytes), class, "{bytes:02x?}");
        }
        let names: BTreeSet<&str> = cases.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(names.len(), 16, "distinct names: {names:?}");
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
        logs.mqtt(&ctx, &MqttEvent::Pingreq).unwrap();
        logs.mqtt(&ctx, &MqttEvent::Pingreq).unwrap();
        assert_eq!(
            logs.finish().unwrap(),
            LogCounts {
                mqtt: 2,
                ..LogCounts::default()
            }
        );
        assert_eq!(read_lines(&dir.0.join("a/b").join(MQTT_LOG)).len(), 2);
        let logs = ProtocolLogs::create(&dir.0.join("a/b")).unwrap();
        assert_eq!(logs.finish().unwrap(), LogCounts::default());
        for name in [HTTP_LOG, MQTT_LOG, COAP_LOG, TELNET_LOG] {
            let len = fs::metadata(dir.0.join("a/b").join(name)).unwrap().len();
            assert_eq!(len, 0, "{name}");
        }
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
                ($log:ident, |$out:ident| $call:expr) => {{
                    let mut $out = Vec::new();
                    $call;
                    for ev in &$out {
                        logs.$log(&ctx, ev).expect("write log");
                    }
                }};
            }
            match (app, feed) {
                (App::Http(s), Feed::Data(d)) => {
                    run!(http, |o| s.on_data(ts, dir, d, &mut o))
                }
                (App::Http(s), Feed::Gap(n)) => run!(http, |o| s.on_gap(ts, dir, n, &mut o)),
                (App::Http(s), Feed::Close) => run!(http, |o| s.on_close(ts, &mut o)),
                (App::Mqtt(s), Feed::Data(d)) => {
                    run!(mqtt, |o| s.on_data(ts, dir, d, &mut o))
                }
                (App::Mqtt(s), Feed::Gap(n)) => run!(mqtt, |o| s.on_gap(ts, dir, n, &mut o)),
                (App::Mqtt(s), Feed::Close) => run!(mqtt, |o| s.on_close(ts, &mut o)),
                (App::Coap(s), Feed::Data(d)) => {
                    run!(coap, |o| s.on_datagram(ts, dir, d, &mut o))
                }
                (App::Telnet(s), Feed::Data(d)) => {
                    run!(telnet, |o| s.on_data(ts, dir, d, &mut o))
                }
                (App::Telnet(s), Feed::Gap(n)) => {
                    run!(telnet, |o| s.on_gap(ts, dir, n, &mut o))
                }
                (App::Telnet(s), Feed::Close) => run!(telnet, |o| s.on_close(ts, &mut o)),
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
