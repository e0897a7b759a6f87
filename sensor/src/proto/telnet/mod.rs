//! Telnet: RFC 854 (protocol, NVT, command structure) and RFC 855 (option
//! negotiation and sub-negotiation), with the options a sensor meets on IoT
//! segments: RFC 857 ECHO, RFC 858 SUPPRESS-GO-AHEAD, RFC 1073 NAWS,
//! RFC 1091 TERMINAL-TYPE, RFC 1079 TERMINAL-SPEED, RFC 1184 LINEMODE,
//! RFC 1572 NEW-ENVIRON and RFC 2941 AUTHENTICATION.
//!
//! - [`parser`]: streaming tokenizer, bytes to data / commands / negotiations /
//!   sub-negotiations / typed errors, no flow knowledge;
//! - [`subneg`]: sub-negotiation payload decoding;
//! - [`nvt`]: NVT line assembly (CR LF, CR NUL, editing) and escape filtering;
//! - [`login`]: login dialogue recognition (prompts, outcomes, shell commands);
//! - [`banner`]: what the server printed before its first prompt;
//! - [`session`]: per-flow state producing [`TelnetEvent`]s;
//! - [`events`]: the events. Passwords are never stored, only their presence
//!   and length;
//! - [`counts`], [`log`], [`normalize`]: what the rest of spanwatch makes of
//!   the events.

pub mod banner;
pub mod counts;
pub mod events;
pub mod log;
pub mod login;
pub mod normalize;
pub mod nvt;
pub mod parser;
pub mod session;
pub mod subneg;

#[cfg(test)]
mod capture_tests;

use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::Probe;
use crate::proto::contract::{CountsView, Protocol};
use crate::proto::norm::{Event, NormContext};

pub use counts::TelnetCounts;
pub use events::{AnomalyKind, LoginAttempt, LoginOutcome, TelnetAnomaly, TelnetEvent, UserSource};
pub use parser::{Command, TelnetOption, TelnetParser, Token, TokenError, Verb};
pub use session::{TelnetLimits, TelnetSession, TelnetStats};
pub use subneg::SubnegDetail;

/// Content probe: a Telnet stream (from either side) normally opens with
/// option negotiation, `IAC WILL|WONT|DO|DONT|SB ...` (RFC 855). Ports (23,
/// 2323) are the caller's business.
pub fn probe(first_bytes: &[u8], _dir: Direction) -> Probe {
    match first_bytes {
        [] | [parser::IAC] => Probe::NeedMore,
        [parser::IAC, next, ..] if Verb::from_byte(*next).is_some() || *next == parser::SB => {
            Probe::Match
        }
        _ => Probe::NoMatch,
    }
}

/// Telnet over TCP.
pub struct Telnet;

impl Protocol for Telnet {
    const NAME: &'static str = "telnet";
    const FLOW_KIND: &'static str = "telnet.flow";
    /// 23 (RFC 854), 2323 (the usual alternative on IoT devices).
    const TCP_PORTS: &'static [u16] = &[23, 2323];

    type Limits = TelnetLimits;
    type Session = TelnetSession;
    type Event = TelnetEvent;
    type Counts = TelnetCounts;
    type Record<'a> = log::TelnetRecord<'a>;

    fn probe_stream(first: &[u8], dir: Direction) -> Probe {
        probe(first, dir)
    }

    fn session(limits: &TelnetLimits) -> TelnetSession {
        TelnetSession::new(*limits)
    }

    fn on_data(
        s: &mut TelnetSession,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut Vec<TelnetEvent>,
    ) {
        s.on_data(ts, dir, data, out);
    }

    fn on_gap(
        s: &mut TelnetSession,
        ts: Timestamp,
        dir: Direction,
        len: u64,
        out: &mut Vec<TelnetEvent>,
    ) {
        s.on_gap(ts, dir, len, out);
    }

    fn on_close(s: &mut TelnetSession, ts: Timestamp, out: &mut Vec<TelnetEvent>) {
        s.on_close(ts, out);
    }

    fn count_flow(c: &mut TelnetCounts) {
        c.flows += 1;
    }

    fn count(c: &mut TelnetCounts, ev: &TelnetEvent) {
        c.count(ev);
    }

    fn view(c: &TelnetCounts) -> CountsView<'_> {
        CountsView {
            flows: c.flows,
            messages: vec![
                ("iac_command", c.iac_commands),
                (
                    "login",
                    c.logins.success + c.logins.failure + c.logins.unknown,
                ),
            ],
            anomalies: &c.anomalies,
        }
    }

    fn log_record(ev: &TelnetEvent) -> Option<(Option<Direction>, log::TelnetRecord<'_>)> {
        log::record(ev)
    }

    fn normalize<'e>(ev: &'e TelnetEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
        normalize::normalize(ev, cx, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_outcomes() {
        for dir in [Direction::ToServer, Direction::ToClient] {
            // busybox telnetd opens with ff fd 01 (DO ECHO), the lab capture.
            assert_eq!(probe(&[0xff, 0xfd, 0x01], dir), Probe::Match);
            for verb in [251u8, 252, 253, 254, 250] {
                assert_eq!(probe(&[0xff, verb], dir), Probe::Match);
            }
            assert_eq!(probe(&[0xff], dir), Probe::NeedMore);
            assert_eq!(probe(&[], dir), Probe::NeedMore);
            // IAC IAC, IAC NOP, IAC SE: not an opening negotiation.
            for second in [255u8, 241, 240, 0] {
                assert_eq!(probe(&[0xff, second], dir), Probe::NoMatch);
            }
            assert_eq!(probe(b"GET / HTTP/1.1\r\n", dir), Probe::NoMatch);
            assert_eq!(probe(b"login: ", dir), Probe::NoMatch);
        }
    }
}
