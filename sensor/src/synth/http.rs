//! HTTP/1.1 exchanges with the web UI (RFC 9110 semantics, RFC 9112 message
//! syntax; Basic authentication per RFC 7617).

use std::io::Write;

use super::device::{Device, Kind};
use super::rng::SplitMix64;
use super::session::{Dir, Session};

/// Largest response body the web UI sends (a page or a camera snapshot).
const MAX_BODY_BYTES: u64 = 12 * 1024;
/// Requests per connection.
const MAX_REQUESTS: u64 = 3;

/// RFC 4648 §4 base64 with padding.
pub(super) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What one request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// GET /status.json → 200 JSON.
    Status,
    /// POST /api/telemetry with a JSON body → 200.
    Telemetry,
    /// GET /admin/ without credentials → 401, then with Basic → 200 page.
    Admin,
    /// GET /app.js with If-None-Match → 304.
    Cached,
    /// GET /snapshot.jpg with Basic → 200 image.
    Snapshot,
}

fn pick_ask(rng: &mut SplitMix64, kind: Kind) -> Ask {
    let menu: [Ask; 5] = match kind {
        Kind::Sensor => [
            Ask::Telemetry,
            Ask::Telemetry,
            Ask::Status,
            Ask::Status,
            Ask::Cached,
        ],
        Kind::Camera => [
            Ask::Snapshot,
            Ask::Snapshot,
            Ask::Status,
            Ask::Admin,
            Ask::Cached,
        ],
        Kind::Plug => [
            Ask::Status,
            Ask::Status,
            Ask::Admin,
            Ask::Telemetry,
            Ask::Cached,
        ],
        Kind::Gateway => [
            Ask::Admin,
            Ask::Cached,
            Ask::Status,
            Ask::Telemetry,
            Ask::Snapshot,
        ],
    };
    rng.pick(&menu)
}

struct Client<'a> {
    host: String,
    user_agent: String,
    authorization: String,
    dev: &'a Device,
}

/// One request: method, target, and what goes with it.
#[derive(Clone, Copy, Default)]
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    /// Send `Authorization: Basic` (RFC 7617 §2).
    auth: bool,
    /// Extra header lines, each ending in CRLF.
    extra: &'a str,
    body: &'a [u8],
    close: bool,
}

/// Request head (RFC 9112 §3) with optional Basic credentials and body.
fn request(out: &mut Vec<u8>, c: &Client, r: &Req) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\n",
        r.method, r.path, c.host, c.user_agent
    );
    if r.auth {
        let _ = write!(out, "Authorization: Basic {}\r\n", c.authorization);
    }
    out.extend_from_slice(r.extra.as_bytes());
    if !r.body.is_empty() {
        let _ = write!(
            out,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            r.body.len()
        );
    }
    if r.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(r.body);
}

/// One response.
#[derive(Clone, Copy, Default)]
struct Resp<'a> {
    status: &'a str,
    content_type: &'a str,
    /// Extra header lines, each ending in CRLF.
    extra: &'a str,
    body: &'a [u8],
    /// Chunked transfer coding, chunk sizes drawn from this seed.
    chunked: Option<u64>,
    close: bool,
}

const DENIED_PAGE: &[u8] = b"<html><body><h1>401 Unauthorized</h1></body></html>\n";

/// Response (RFC 9112 §4): status line, headers, then the body framed by
/// Content-Length or by chunked transfer coding (§7.1); 304 has no body
/// (RFC 9110 §15.4.5).
fn response(out: &mut Vec<u8>, r: &Resp) {
    let _ = write!(out, "HTTP/1.1 {}\r\nServer: synth-webui/1.0\r\n", r.status);
    out.extend_from_slice(r.extra.as_bytes());
    if r.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    if r.status.starts_with("304") {
        out.extend_from_slice(b"\r\n");
        return;
    }
    let _ = write!(out, "Content-Type: {}\r\n", r.content_type);
    if let Some(seed) = r.chunked {
        let mut rng = SplitMix64::new(seed);
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        let mut rest = r.body;
        while !rest.is_empty() {
            let n = (rng.range(256, 2048) as usize).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            let _ = write!(out, "{n:x}\r\n");
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        let _ = write!(out, "Content-Length: {}\r\n\r\n", r.body.len());
        out.extend_from_slice(r.body);
    }
}

fn status_json(rng: &mut SplitMix64, dev: &Device) -> Vec<u8> {
    let mut body = Vec::with_capacity(96);
    let _ = write!(
        body,
        r#"{{"device":"{}","fw":"1.{}.{}","uptime":{},"rssi":-{}}}"#,
        dev.name,
        rng.below(5),
        rng.below(20),
        rng.range(60, 9_000_000),
        rng.range(35, 90)
    );
    body
}

fn admin_page(rng: &mut SplitMix64, dev: &Device) -> Vec<u8> {
    let target = rng.range(600, MAX_BODY_BYTES) as usize;
    let mut body = Vec::with_capacity(target + 64);
    let _ = write!(
        body,
        "<!DOCTYPE html>\n<html><head><title>{} settings</title></head><body><table>\n",
        dev.name
    );
    let mut row = 0u32;
    while body.len() < target {
        let _ = writeln!(
            body,
            "<tr><td>param{row}</td><td>{}</td></tr>",
            rng.below(100_000)
        );
        row += 1;
    }
    body.extend_from_slice(b"</table></body></html>\n");
    body
}

/// A JPEG-shaped camera snapshot (ITU-T T.81 markers, JFIF APP0): SOI,
/// APP0 "JFIF" 1.01, a one-component SOS header, random entropy-coded bytes
/// without 0xFF (so no byte stuffing is needed, §F.1.2.3), EOI.
fn snapshot(rng: &mut SplitMix64) -> Vec<u8> {
    #[rustfmt::skip]
    const HEAD: [u8; 30] = [
        0xFF, 0xD8,                                     // SOI
        0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, // APP0, length 16
        0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // v1.01, 1:1 density
        0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, // SOS
    ];
    let len = rng.range(2048, MAX_BODY_BYTES) as usize;
    let mut image = Vec::with_capacity(len + HEAD.len() + 2);
    image.extend_from_slice(&HEAD);
    image.resize(HEAD.len() + len, 0);
    if let Some(data) = image.get_mut(HEAD.len()..) {
        rng.fill(data);
        for b in data.iter_mut().filter(|b| **b == 0xFF) {
            *b = 0xFE;
        }
    }
    image.extend_from_slice(&[0xFF, 0xD9]);
    image
}

/// A device's HTTP connection to the web UI: one to three requests, the last
/// sometimes with `Connection: close` (then the server closes first).
pub(super) fn script(s: &mut Session, rng: &mut SplitMix64, dev: &Device) {
    s.open(rng);
    let host = if s.server.port == 80 {
        format!("10.0.0.{}", s.server.ip[3])
    } else {
        format!("10.0.0.{}:{}", s.server.ip[3], s.server.port)
    };
    let agent = match dev.kind {
        Kind::Sensor => "sensor-fw/2.1",
        Kind::Camera => "ipcam-agent/1.4",
        Kind::Plug => "esp-http-client/3.2",
        Kind::Gateway => "curl/8.5.0",
    };
    let password = if dev.wrong_password {
        "wrong-password"
    } else {
        dev.password.as_str()
    };
    let client = Client {
        host,
        user_agent: format!("{agent} ({})", dev.name),
        authorization: base64(format!("{}:{password}", dev.user).as_bytes()),
        dev,
    };
    let requests = rng.range(1, MAX_REQUESTS);
    let server_closes = rng.chance(500);
    let mut gap = rng.range(500_000, 5_000_000);
    for n in 1..=requests {
        let close = server_closes && n == requests;
        let ask = pick_ask(rng, dev.kind);
        exchange(s, rng, &client, ask, gap, close);
        gap = s.think_gap(rng);
    }
    if server_closes {
        let gap = rng.range(50_000, 500_000);
        s.close(rng, Dir::ToClient, gap);
    } else if rng.chance(900) {
        s.close(rng, Dir::ToServer, gap);
    } else {
        s.abort(Dir::ToServer, gap);
    }
}

fn exchange(s: &mut Session, rng: &mut SplitMix64, c: &Client, ask: Ask, gap: u64, close: bool) {
    let refused = c.dev.wrong_password;
    let get = |path| Req {
        method: "GET",
        path,
        close,
        ..Req::default()
    };
    let ok = |content_type, body| Resp {
        status: "200 OK",
        content_type,
        body,
        close,
        ..Resp::default()
    };
    let denied = |realm| Resp {
        status: "401 Unauthorized",
        content_type: "text/html",
        extra: realm,
        body: DENIED_PAGE,
        close,
        ..Resp::default()
    };
    match ask {
        Ask::Status => {
            s.send(rng, Dir::ToServer, gap, |o| {
                request(o, c, &get("/status.json"))
            });
            let body = status_json(rng, c.dev);
            let g = s.reply_gap(rng);
            s.send(rng, Dir::ToClient, g, |o| {
                response(o, &ok("application/json", &body))
            });
        }
        Ask::Telemetry => {
            let mut body = Vec::with_capacity(48);
            let _ = write!(
                body,
                r#"{{"temp":{},"battery":{}}}"#,
                rng.range(15, 32),
                rng.range(5, 100)
            );
            let post = Req {
                method: "POST",
                path: "/api/telemetry",
                body: &body,
                close,
                ..Req::default()
            };
            s.send(rng, Dir::ToServer, gap, |o| request(o, c, &post));
            let g = s.reply_gap(rng);
            s.send(rng, Dir::ToClient, g, |o| {
                response(o, &ok("application/json", br#"{"ok":true}"#))
            });
        }
        Ask::Admin => {
            let realm = "WWW-Authenticate: Basic realm=\"device\"\r\n";
            let first = Req {
                close: false,
                ..get("/admin/")
            };
            s.send(rng, Dir::ToServer, gap, |o| request(o, c, &first));
            let g = s.reply_gap(rng);
            let challenge = Resp {
                close: false,
                ..denied(realm)
            };
            s.send(rng, Dir::ToClient, g, |o| response(o, &challenge));
            let g = s.think_gap(rng) / 10;
            s.send(rng, Dir::ToServer, g, |o| {
                request(
                    o,
                    c,
                    &Req {
                        auth: true,
                        ..get("/admin/")
                    },
                )
            });
            let g = s.reply_gap(rng);
            if refused {
                s.send(rng, Dir::ToClient, g, |o| response(o, &denied(realm)));
            } else {
                let page = admin_page(rng, c.dev);
                let chunked = rng.chance(400).then(|| rng.next_u64());
                let r = Resp {
                    chunked,
                    ..ok("text/html", &page)
                };
                s.send(rng, Dir::ToClient, g, |o| response(o, &r));
            }
        }
        Ask::Cached => {
            let etag = format!("\"{:08x}\"", rng.next_u64() as u32);
            let condition = format!("If-None-Match: {etag}\r\n");
            let r = Req {
                extra: &condition,
                ..get("/app.js")
            };
            s.send(rng, Dir::ToServer, gap, |o| request(o, c, &r));
            let g = s.reply_gap(rng);
            let validator = format!("ETag: {etag}\r\n");
            let not_modified = Resp {
                status: "304 Not Modified",
                extra: &validator,
                close,
                ..Resp::default()
            };
            s.send(rng, Dir::ToClient, g, |o| response(o, &not_modified));
        }
        Ask::Snapshot => {
            s.send(rng, Dir::ToServer, gap, |o| {
                request(
                    o,
                    c,
                    &Req {
                        auth: true,
                        ..get("/snapshot.jpg")
                    },
                )
            });
            let g = s.reply_gap(rng);
            if refused {
                let realm = "WWW-Authenticate: Basic realm=\"camera\"\r\n";
                s.send(rng, Dir::ToClient, g, |o| response(o, &denied(realm)));
            } else {
                let image = snapshot(rng);
                s.send(rng, Dir::ToClient, g, |o| {
                    response(o, &ok("image/jpeg", &image))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_test_vectors() {
        // RFC 4648 §10.
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want);
        }
        // RFC 7617 §2 example credentials.
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn chunked_body_reassembles_to_the_original() {
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let r = Resp {
            status: "200 OK",
            content_type: "text/html",
            body: &body,
            chunked: Some(1),
            ..Resp::default()
        };
        response(&mut out, &r);
        let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = std::str::from_utf8(&out[..head_end]).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Transfer-Encoding: chunked\r\n"));
        // Decode the chunked coding by hand (RFC 9112 §7.1).
        let mut rest = &out[head_end..];
        let mut decoded = Vec::new();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n");
                break;
            }
            decoded.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n");
            rest = &rest[size + 2..];
        }
        assert_eq!(decoded, body);
    }

    #[test]
    fn request_with_credentials_and_body() {
        let dev = Device::new(1, 1);
        let c = Client {
            host: "10.0.0.3:8080".into(),
            user_agent: "ua".into(),
            authorization: base64(b"admin:admin"),
            dev: &dev,
        };
        let mut out = Vec::new();
        let r = Req {
            method: "POST",
            path: "/x",
            auth: true,
            body: b"{}",
            close: true,
            ..Req::default()
        };
        request(&mut out, &c, &r);
        let want = "POST /x HTTP/1.1\r\nHost: 10.0.0.3:8080\r\nUser-Agent: ua\r\nAccept: */*\r\n\
                    Authorization: Basic YWRtaW46YWRtaW4=\r\nContent-Type: application/json\r\n\
                    Content-Length: 2\r\nConnection: close\r\n\r\n{}";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn not_modified_has_no_body_or_length() {
        let mut out = Vec::new();
        let r = Resp {
            status: "304 Not Modified",
            extra: "ETag: \"1\"\r\n",
            body: b"ignored",
            ..Resp::default()
        };
        response(&mut out, &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 304 Not Modified\r\nServer: synth-webui/1.0\r\nETag: \"1\"\r\n\r\n"
        );
    }
}
