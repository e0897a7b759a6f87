//! Telnet: drives a `TelnetSession` with the scheduled chunks and gaps of
//! the input (see `spanwatch_fuzz`), checks the documented bounds of every
//! event and the session counters, then runs the probe, the tokenizer
//! (whole, and cut at the schedule's steps with each step's edges split
//! into pieces: the token stream must not depend on the split) and the
//! sub-negotiation decoder on the payload.
//!
//! The session itself is not compared across splits: login recognition
//! looks at the server's output where each delivery ends (a prompt is where
//! the server stops and waits), so it depends on the split by design.

use crate::{Clock, Input, Step, assert_bytes_capped, pieces};
use spanwatch::flow::Direction;
use spanwatch::proto::Probe;
use spanwatch::proto::telnet::subneg::{
    self, AuthDetail, DecodeLimits, TerminalSpeedDetail, TerminalTypeDetail,
};
use spanwatch::proto::telnet::{
    AnomalyKind, Command, SubnegDetail, TelnetEvent, TelnetLimits, TelnetOption, TelnetParser,
    TelnetSession, Token, TokenError, Verb, probe,
};

fn tiny_limits() -> TelnetLimits {
    TelnetLimits {
        max_subneg_bytes: 8,
        max_line_bytes: 12,
        max_user_bytes: 4,
        max_shell_commands: 2,
        max_shell_command_bytes: 6,
        max_server_line_bytes: 16,
        max_env_vars: 2,
        max_env_string_bytes: 5,
    }
}

/// `max_payload`: the longest payload the detail may have come from.
fn check_detail(detail: &SubnegDetail, l: &TelnetLimits, max_payload: usize) {
    let cap = l.max_env_string_bytes;
    match detail {
        SubnegDetail::TerminalType(TerminalTypeDetail::Is { name }) => {
            assert_bytes_capped(name, cap, "terminal type")
        }
        SubnegDetail::TerminalSpeed(TerminalSpeedDetail::Is { speed }) => {
            assert_bytes_capped(speed, cap, "terminal speed")
        }
        SubnegDetail::Environ(env) => {
            assert!(env.vars.len() <= l.max_env_vars);
            for v in &env.vars {
                assert_bytes_capped(&v.name, cap, "env name");
                if let Some(value) = &v.value {
                    assert_bytes_capped(value, cap, "env value");
                }
            }
        }
        SubnegDetail::Authentication(AuthDetail::Name { name }) => {
            assert_bytes_capped(name, cap, "auth name")
        }
        SubnegDetail::Undecoded { len } => assert!(*len <= max_payload),
        _ => {}
    }
}

#[derive(Default)]
struct Tally {
    data: [u64; 2],
    commands: u64,
    negotiations: u64,
    subnegotiations: u64,
    anomalies: u64,
    shell_commands: usize,
    banners: usize,
}

fn check_events(events: &[TelnetEvent], l: &TelnetLimits, t: &mut Tally) {
    for ev in events {
        match ev {
            TelnetEvent::Negotiation { .. } => t.negotiations += 1,
            TelnetEvent::Subnegotiation { detail, .. } => {
                t.subnegotiations += 1;
                check_detail(detail, l, l.max_subneg_bytes);
            }
            TelnetEvent::Command { .. } => t.commands += 1,
            TelnetEvent::Data { dir, len } => {
                assert!(*len > 0, "empty data event");
                t.data[dir.index()] += *len as u64;
            }
            TelnetEvent::LoginAttempt(a) => {
                if let Some(user) = &a.user {
                    assert_bytes_capped(user, l.max_user_bytes, "login user");
                }
                assert!(a.has_password || a.password_len == 0);
            }
            TelnetEvent::ShellCommand { line, .. } => {
                t.shell_commands += 1;
                assert_bytes_capped(line, l.max_shell_command_bytes, "shell command");
            }
            TelnetEvent::Banner { text } => {
                t.banners += 1;
                assert_bytes_capped(text, l.max_server_line_bytes, "banner");
                assert!(!text.is_empty(), "empty banner");
                assert!(
                    !text.chars().any(char::is_control),
                    "control character in {text:?}"
                );
            }
            TelnetEvent::Anomaly(a) => {
                t.anomalies += 1;
                match &a.kind {
                    AnomalyKind::LoginArgumentInjection { user, .. } => {
                        assert_bytes_capped(user, l.max_user_bytes, "injected user")
                    }
                    AnomalyKind::Token(TokenError::SubnegTooLong { limit, .. }) => {
                        assert_eq!(*limit, l.max_subneg_bytes)
                    }
                    _ => {}
                }
            }
        }
    }
}

fn session(input: &Input<'_>, limits: &TelnetLimits) {
    let mut s = TelnetSession::new(*limits);
    let mut clock = Clock::new(input.config);
    let mut out = Vec::new();
    let mut t = Tally::default();
    for step in input.steps() {
        match step {
            Step::Data(dir, data) => s.on_data(clock.tick(), dir, data, &mut out),
            Step::Gap(dir, missing) => s.on_gap(clock.tick(), dir, missing, &mut out),
        }
        check_events(&out, limits, &mut t);
        out.clear();
    }
    if input.config.close() {
        s.on_close(clock.tick(), &mut out);
        check_events(&out, limits, &mut t);
    }
    let stats = s.stats();
    assert_eq!(stats.data_bytes_to_server, t.data[0]);
    assert_eq!(stats.data_bytes_to_client, t.data[1]);
    assert_eq!(stats.commands, t.commands);
    assert_eq!(stats.negotiations, t.negotiations);
    assert_eq!(stats.subnegotiations, t.subnegotiations);
    assert_eq!(stats.anomalies, t.anomalies);
    assert!(t.shell_commands <= limits.max_shell_commands);
    assert!(t.banners <= 1, "{} banners in one session", t.banners);
}

/// A token with owned contents; runs of data are merged. (The other tokens
/// are kept as values: formatting each one as text took most of this
/// target's time on long inputs.)
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Data(Vec<u8>),
    Command(Command),
    Negotiation(Verb, TelnetOption),
    Error(TokenError),
    Subneg(TelnetOption, Vec<u8>),
}

/// The tokens of the payload fed whole, or (with `piece`) fed step by step as
/// the schedule cuts it, each step split by [`pieces`].
fn tokens(input: &Input<'_>, piece: Option<usize>, max_subneg: usize) -> Vec<Owned> {
    let mut parser = TelnetParser::new(max_subneg);
    let mut out: Vec<Owned> = Vec::new();
    let mut sink = |token: Token<'_>| match token {
        Token::Data(d) => {
            assert!(!d.is_empty(), "empty data token");
            match out.last_mut() {
                Some(Owned::Data(run)) => run.extend_from_slice(d),
                _ => out.push(Owned::Data(d.to_vec())),
            }
        }
        Token::Subnegotiation { option, payload } => {
            assert!(payload.len() <= max_subneg);
            out.push(Owned::Subneg(option, payload.to_vec()));
        }
        Token::Command(c) => out.push(Owned::Command(c)),
        Token::Negotiation { verb, option } => out.push(Owned::Negotiation(verb, option)),
        Token::Error(e) => out.push(Owned::Error(e)),
    };
    match piece {
        None => parser.feed(input.payload, &mut sink),
        Some(n) => {
            for step in input.steps() {
                if let Step::Data(_, data) = step {
                    for p in pieces(data, n) {
                        parser.feed(p, &mut sink);
                    }
                }
            }
        }
    }
    parser.finish(&mut sink);
    out
}

fn stateless(input: &Input<'_>, limits: &TelnetLimits) {
    let payload = input.payload;
    for dir in [Direction::ToServer, Direction::ToClient] {
        let p = probe(payload, dir);
        if payload.len() >= 2 {
            assert!(p != Probe::NeedMore);
        }
    }
    let max = limits.max_subneg_bytes;
    let whole = tokens(input, None, max);
    let split = tokens(input, Some(input.config.piece_len()), max);
    assert_eq!(whole, split, "tokens depend on how the stream was split");
    let decode = DecodeLimits {
        max_env_vars: limits.max_env_vars,
        max_string_bytes: limits.max_env_string_bytes,
    };
    for token in &whole {
        if let Owned::Subneg(option, payload) = token
            && let Ok(detail) = subneg::decode(*option, payload, &decode)
        {
            check_detail(&detail, limits, max);
        }
    }
    // The payload as the body of a sub-negotiation of each decoded option.
    for option in [24u8, 31, 32, 34, 37, 39] {
        if let Ok(detail) = subneg::decode(TelnetOption::from(option), payload, &decode) {
            check_detail(&detail, limits, payload.len());
        }
    }
}

/// One fuzz input: the body of the `telnet` fuzz target, also replayed over the
/// committed corpus by `tests/corpus.rs` on stable.
pub fn fuzz_one(data: &[u8]) {
    let input = Input::parse(data);
    let limits = if input.config.tiny_limits() {
        tiny_limits()
    } else {
        TelnetLimits::default()
    };
    session(&input, &limits);
    stateless(&input, &limits);
}
