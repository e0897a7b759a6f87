//! Telnet login sessions (RFC 854 NVT, RFC 855 option negotiation; options
//! ECHO RFC 857, SUPPRESS-GO-AHEAD RFC 858, TERMINAL-TYPE RFC 1091, NAWS
//! RFC 1073).

use std::io::Write;

use super::device::Device;
use super::rng::SplitMix64;
use super::session::{Dir, Session};

/// Command bytes, RFC 854 p. 14.
const IAC: u8 = 255;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// Option codes.
const ECHO: u8 = 1;
const SUPPRESS_GO_AHEAD: u8 = 3;
const TERMINAL_TYPE: u8 = 24;
const NAWS: u8 = 31;
/// TERMINAL-TYPE subnegotiation verbs (RFC 1091).
const TTYPE_IS: u8 = 0;
const TTYPE_SEND: u8 = 1;

/// Failed logins before the device hangs up.
const MAX_LOGIN_ATTEMPTS: u32 = 3;

const COMMANDS: [(&str, &str); 5] = [
    (
        "uname -a",
        "Linux telnet-dev 4.9.37 #1 SMP PREEMPT armv7l GNU/Linux\r\n",
    ),
    ("cat /proc/uptime", "86400.12 80012.50\r\n"),
    (
        "ps",
        "  PID USER       VSZ STAT COMMAND\r\n    1 root      1516 S    init\r\n  412 root      2032 S    telnetd\r\n",
    ),
    (
        "free",
        "              total        used        free\r\nMem:         60512       21740       38772\r\n",
    ),
    ("id", "uid=0(root) gid=0(root)\r\n"),
];

/// A device logging in to the telnet device: option negotiation, `login:`,
/// user name (echoed by the server, which WILL ECHO), `Password:` (not
/// echoed), failure and retry or a shell prompt, a command or two, `exit`.
pub(super) fn script(s: &mut Session, rng: &mut SplitMix64, dev: &Device) {
    s.open(rng);
    let gap = s.reply_gap(rng);
    s.send(rng, Dir::ToClient, gap, |o| {
        o.extend_from_slice(&[IAC, DO, TERMINAL_TYPE, IAC, DO, NAWS, IAC, WILL, ECHO]);
        o.extend_from_slice(&[IAC, WILL, SUPPRESS_GO_AHEAD]);
    });
    let gap = s.reply_gap(rng);
    let refuse_naws = rng.chance(200);
    s.send(rng, Dir::ToServer, gap, |o| {
        o.extend_from_slice(&[IAC, WILL, TERMINAL_TYPE]);
        if refuse_naws {
            o.extend_from_slice(&[IAC, WONT, NAWS]);
        } else {
            // NAWS: IAC SB NAWS width(16) height(16) IAC SE, here 80 x 24.
            o.extend_from_slice(&[IAC, WILL, NAWS, IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE]);
        }
        o.extend_from_slice(&[IAC, DO, ECHO, IAC, DO, SUPPRESS_GO_AHEAD]);
    });
    let gap = s.reply_gap(rng);
    s.send(rng, Dir::ToClient, gap, |o| {
        o.extend_from_slice(&[IAC, SB, TERMINAL_TYPE, TTYPE_SEND, IAC, SE]);
    });
    let gap = s.reply_gap(rng);
    s.send(rng, Dir::ToServer, gap, |o| {
        o.extend_from_slice(&[IAC, SB, TERMINAL_TYPE, TTYPE_IS]);
        o.extend_from_slice(b"XTERM");
        o.extend_from_slice(&[IAC, SE]);
    });
    let gap = s.reply_gap(rng);
    let host = "telnet-dev";
    s.send(rng, Dir::ToClient, gap, |o| {
        let _ = write!(o, "\r\n{host} login: ");
    });

    let fails = if dev.wrong_password {
        MAX_LOGIN_ATTEMPTS
    } else if rng.chance(100) {
        1
    } else {
        0
    };
    for attempt in 1..=MAX_LOGIN_ATTEMPTS {
        let gap = s.think_gap(rng) / 2;
        let user = format!("{}\r\n", dev.user);
        s.send(rng, Dir::ToServer, gap, |o| {
            o.extend_from_slice(user.as_bytes())
        });
        let gap = s.reply_gap(rng);
        s.send(rng, Dir::ToClient, gap, |o| {
            o.extend_from_slice(user.as_bytes());
            o.extend_from_slice(b"Password: ");
        });
        let gap = s.think_gap(rng) / 2;
        let failed = attempt <= fails;
        let password = if failed {
            "letmein"
        } else {
            dev.password.as_str()
        };
        s.send(rng, Dir::ToServer, gap, |o| {
            o.extend_from_slice(password.as_bytes());
            o.extend_from_slice(b"\r\n");
        });
        let gap = s.reply_gap(rng) + rng.range(100_000_000, 1_000_000_000) * u64::from(failed);
        if !failed {
            s.send(rng, Dir::ToClient, gap, |o| {
                let _ = write!(o, "\r\n\r\nBusyBox built-in shell (ash)\r\n\r\n# ");
            });
            break;
        }
        if attempt == MAX_LOGIN_ATTEMPTS {
            s.send(rng, Dir::ToClient, gap, |o| {
                o.extend_from_slice(b"\r\nLogin incorrect\r\n")
            });
            let gap = rng.range(50_000, 500_000);
            s.close(rng, Dir::ToClient, gap);
            return;
        }
        s.send(rng, Dir::ToClient, gap, |o| {
            let _ = write!(o, "\r\nLogin incorrect\r\n{host} login: ");
        });
    }

    for _ in 0..rng.range(1, 2) {
        let (command, output) = rng.pick(&COMMANDS);
        let gap = s.think_gap(rng) * 2;
        s.send(rng, Dir::ToServer, gap, |o| {
            o.extend_from_slice(command.as_bytes());
            o.extend_from_slice(b"\r\n");
        });
        let gap = s.reply_gap(rng);
        s.send(rng, Dir::ToClient, gap, |o| {
            o.extend_from_slice(command.as_bytes());
            o.extend_from_slice(b"\r\n");
            o.extend_from_slice(output.as_bytes());
            o.extend_from_slice(b"# ");
        });
    }
    let gap = s.think_gap(rng);
    s.send(rng, Dir::ToServer, gap, |o| {
        o.extend_from_slice(b"exit\r\n")
    });
    let gap = s.reply_gap(rng);
    s.send(rng, Dir::ToClient, gap, |o| {
        o.extend_from_slice(b"exit\r\n")
    });
    let gap = rng.range(50_000, 500_000);
    s.close(rng, Dir::ToClient, gap);
}
