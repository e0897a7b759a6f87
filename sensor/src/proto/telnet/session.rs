//! Per-flow Telnet session: one tokenizer per direction (RFC 854/855), data
//! separated from negotiation, sub-negotiations decoded, and the login
//! dialogue recognised from the data of both directions.
//!
//! The session assumes `on_data` calls arrive in capture order across the two
//! directions (a prompt is judged at the end of each server segment).

use serde::{Deserialize, Serialize};

use crate::capture::Timestamp;
use crate::flow::Direction;

use super::banner::Banner;
use super::events::{AnomalyKind, TelnetAnomaly, TelnetEvent, UserSource};
use super::login::{LoginLimits, LoginTracker, classify_prompt};
use super::nvt::{Line, LineAssembler, ServerText};
use super::parser::{Command, TelnetOption, TelnetParser, Token};
use super::subneg::{self, AuthDetail, DecodeLimits, EnvCommand, SubnegDetail};
use crate::proto::text::capped;

/// Default bound of one sub-negotiation payload (inetutils telnetd buffers 512 bytes).
pub const DEFAULT_MAX_SUBNEG_BYTES: usize = 1024;
/// Default bound of one client line while it is assembled.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024;
/// Default bound of a user name kept in an event.
pub const DEFAULT_MAX_USER_BYTES: usize = 64;
/// Default number of shell command lines reported after a login.
pub const DEFAULT_MAX_SHELL_COMMANDS: usize = 32;
/// Default bound of one shell command line kept in an event.
pub const DEFAULT_MAX_SHELL_COMMAND_BYTES: usize = 256;
/// Default bound of the server's current output line kept for prompt matching.
pub const DEFAULT_MAX_SERVER_LINE_BYTES: usize = 256;
/// Default number of NEW-ENVIRON variables kept from one message.
pub const DEFAULT_MAX_ENV_VARS: usize = 16;
/// Default bound of a NEW-ENVIRON name/value or terminal type.
pub const DEFAULT_MAX_ENV_STRING_BYTES: usize = 128;

/// Bounds of a Telnet session (every one counts when hit; config section
/// `[protocols.telnet]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelnetLimits {
    /// Longest sub-negotiation payload buffered; longer ones are skipped with an anomaly.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_subneg_bytes: usize,
    /// Longest client line assembled; the rest is dropped (counted).
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_line_bytes: usize,
    /// Longest user name kept.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_user_bytes: usize,
    /// Shell command lines reported after a successful login.
    pub max_shell_commands: usize,
    /// Longest shell command line kept.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_shell_command_bytes: usize,
    /// Bytes of the server's current output line kept for prompt recognition.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_server_line_bytes: usize,
    /// NEW-ENVIRON variables kept per message.
    pub max_env_vars: usize,
    /// Longest NEW-ENVIRON name/value, terminal type or AUTHENTICATION name kept.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_env_string_bytes: usize,
}

impl Default for TelnetLimits {
    fn default() -> Self {
        TelnetLimits {
            max_subneg_bytes: DEFAULT_MAX_SUBNEG_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_user_bytes: DEFAULT_MAX_USER_BYTES,
            max_shell_commands: DEFAULT_MAX_SHELL_COMMANDS,
            max_shell_command_bytes: DEFAULT_MAX_SHELL_COMMAND_BYTES,
            max_server_line_bytes: DEFAULT_MAX_SERVER_LINE_BYTES,
            max_env_vars: DEFAULT_MAX_ENV_VARS,
            max_env_string_bytes: DEFAULT_MAX_ENV_STRING_BYTES,
        }
    }
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelnetStats {
    /// Data bytes from the client (after IAC unescaping).
    pub data_bytes_to_server: u64,
    /// Data bytes from the server (after IAC unescaping).
    pub data_bytes_to_client: u64,
    /// Single commands.
    pub commands: u64,
    /// WILL/WONT/DO/DONT.
    pub negotiations: u64,
    /// Complete sub-negotiations.
    pub subnegotiations: u64,
    /// Anomaly events.
    pub anomalies: u64,
    /// Gaps reported by reassembly.
    pub gaps: u64,
    /// Client lines cut at `max_line_bytes`.
    pub lines_truncated: u64,
    /// Shell command lines over `max_shell_commands`.
    pub shell_commands_dropped: u64,
    /// Password lines typed inside a shell (su, sudo, enable).
    pub shell_secret_lines: u64,
}

/// Telnet state of one TCP connection.
#[derive(Debug)]
pub struct TelnetSession {
    to_server: TelnetParser,
    to_client: TelnetParser,
    text: TextState,
}

/// Everything but the tokenizers, so a tokenizer can feed it.
#[derive(Debug)]
struct TextState {
    client_line: LineAssembler,
    server_text: ServerText,
    login: LoginTracker,
    banner: Banner,
    stats: TelnetStats,
    decode: DecodeLimits,
    max_user_bytes: usize,
}

impl TelnetSession {
    /// A session with nothing seen.
    pub fn new(limits: TelnetLimits) -> Self {
        TelnetSession {
            to_server: TelnetParser::new(limits.max_subneg_bytes),
            to_client: TelnetParser::new(limits.max_subneg_bytes),
            text: TextState {
                client_line: LineAssembler::new(limits.max_line_bytes),
                server_text: ServerText::new(limits.max_server_line_bytes),
                banner: Banner::new(limits.max_server_line_bytes),
                login: LoginTracker::new(LoginLimits {
                    max_user_bytes: limits.max_user_bytes,
                    max_shell_commands: limits.max_shell_commands,
                    max_shell_command_bytes: limits.max_shell_command_bytes,
                }),
                stats: TelnetStats::default(),
                decode: DecodeLimits {
                    max_env_vars: limits.max_env_vars,
                    max_string_bytes: limits.max_env_string_bytes,
                },
                max_user_bytes: limits.max_user_bytes,
            },
        }
    }

    /// Bytes of direction `dir`, in stream order, split anywhere.
    pub fn on_data(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut Vec<TelnetEvent>,
    ) {
        let text = &mut self.text;
        let parser = match dir {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        };
        let mut data_len = 0usize;
        parser.feed(data, &mut |token| {
            data_len += text.token(ts, dir, token, out);
        });
        if dir == Direction::ToClient && text.server_text.take_changed() {
            let tail = text.server_text.tail();
            if classify_prompt(tail).is_some() {
                text.banner.on_prompt(out);
            }
            text.login.on_server_tail(ts, tail, out);
        }
        if data_len > 0 {
            let len = u64::try_from(data_len).unwrap_or(u64::MAX);
            let counter = match dir {
                Direction::ToServer => &mut text.stats.data_bytes_to_server,
                Direction::ToClient => &mut text.stats.data_bytes_to_client,
            };
            *counter = counter.saturating_add(len);
            out.push(TelnetEvent::Data { dir, len: data_len });
        }
    }

    /// `missing` bytes of direction `dir` were lost. The tokenizer restarts
    /// on data, a client line being typed is dropped up to its end, and the
    /// server's current line is forgotten.
    pub fn on_gap(
        &mut self,
        _ts: Timestamp,
        dir: Direction,
        missing: u64,
        out: &mut Vec<TelnetEvent>,
    ) {
        self.text.stats.gaps += 1;
        self.text.banner.close();
        self.text.anomaly(dir, AnomalyKind::Gap { missing }, out);
        match dir {
            Direction::ToServer => {
                self.to_server.reset();
                self.text.client_line.discard_current();
            }
            Direction::ToClient => {
                self.to_client.reset();
                self.text.server_text.reset();
                self.text.login.on_server_gap();
            }
        }
    }

    /// The connection ended: reports unterminated sequences and an
    /// unanswered login attempt.
    pub fn on_close(&mut self, ts: Timestamp, out: &mut Vec<TelnetEvent>) {
        let text = &mut self.text;
        self.to_server.finish(&mut |token| {
            text.token(ts, Direction::ToServer, token, out);
        });
        self.to_client.finish(&mut |token| {
            text.token(ts, Direction::ToClient, token, out);
        });
        text.login.on_close(out);
    }

    /// Counters so far.
    pub fn stats(&self) -> TelnetStats {
        let login = self.text.login.counters();
        TelnetStats {
            shell_commands_dropped: login.shell_commands_dropped,
            shell_secret_lines: login.shell_secret_lines,
            ..self.text.stats
        }
    }
}

impl TextState {
    /// Handles one token; returns the number of data bytes in it.
    fn token(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        token: Token<'_>,
        out: &mut Vec<TelnetEvent>,
    ) -> usize {
        match token {
            Token::Data(bytes) => {
                self.data(ts, dir, bytes, out);
                bytes.len()
            }
            Token::Command(cmd) => {
                self.stats.commands += 1;
                if dir == Direction::ToServer {
                    match cmd {
                        Command::EraseCharacter => self.client_line.erase_char(),
                        Command::EraseLine => self.client_line.erase_line(),
                        _ => {}
                    }
                }
                out.push(TelnetEvent::Command { dir, cmd });
                0
            }
            Token::Negotiation { verb, option } => {
                self.stats.negotiations += 1;
                out.push(TelnetEvent::Negotiation { dir, verb, option });
                0
            }
            Token::Subnegotiation { option, payload } => {
                self.subnegotiation(dir, option, payload, out);
                0
            }
            Token::Error(error) => {
                self.anomaly(dir, AnomalyKind::Token(error), out);
                0
            }
        }
    }

    fn data(&mut self, ts: Timestamp, dir: Direction, bytes: &[u8], out: &mut Vec<TelnetEvent>) {
        match dir {
            Direction::ToServer => {
                if !bytes.is_empty() {
                    self.banner.close();
                }
                let mut rest = bytes;
                while let Some((&byte, tail)) = rest.split_first() {
                    let secret = self.login.secret_next_line();
                    let run = self.client_line.push_run(rest, secret);
                    if run > 0 {
                        rest = rest.get(run..).unwrap_or_default();
                        continue;
                    }
                    rest = tail;
                    if let Some(line) = self.client_line.push(byte, secret) {
                        let cut = match &line {
                            Line::Text { truncated, .. } => *truncated,
                            Line::Secret { password, .. } => !password.is_complete(),
                        };
                        if cut {
                            self.stats.lines_truncated += 1;
                        }
                        self.login.on_client_line(ts, line, out);
                    }
                }
            }
            Direction::ToClient => {
                let client_idle = self.client_line.is_idle();
                let (login, banner) = (&mut self.login, &mut self.banner);
                self.server_text.push_slice(bytes, &mut |line| {
                    banner.on_server_line(line);
                    login.on_server_line(line, client_idle, out);
                });
            }
        }
    }

    fn subnegotiation(
        &mut self,
        dir: Direction,
        option: TelnetOption,
        payload: &[u8],
        out: &mut Vec<TelnetEvent>,
    ) {
        self.stats.subnegotiations += 1;
        let detail = match subneg::decode(option, payload, &self.decode) {
            Ok(detail) => detail,
            Err(error) => {
                self.anomaly(dir, AnomalyKind::SubnegMalformed { option, error }, out);
                SubnegDetail::Undecoded { len: payload.len() }
            }
        };
        match &detail {
            SubnegDetail::Environ(env) => {
                if env.vars_dropped > 0 {
                    let dropped = env.vars_dropped;
                    self.anomaly(dir, AnomalyKind::EnvVarsDropped { dropped }, out);
                }
                if env.stray_bytes > 0 {
                    let count = env.stray_bytes;
                    self.anomaly(dir, AnomalyKind::EnvStrayBytes { count }, out);
                }
                // RFC 1572: the client answers with IS (or volunteers INFO).
                let from_client = dir == Direction::ToServer
                    && matches!(env.command, EnvCommand::Is | EnvCommand::Info);
                if let Some(user) = env.user().filter(|_| from_client) {
                    self.user_hint(dir, user, UserSource::EnvironUser, out);
                }
            }
            SubnegDetail::Authentication(AuthDetail::Name { name })
                if dir == Direction::ToServer =>
            {
                self.user_hint(dir, name, UserSource::AuthenticationName, out);
            }
            _ => {}
        }
        out.push(TelnetEvent::Subnegotiation {
            dir,
            option,
            detail,
        });
    }

    fn user_hint(
        &mut self,
        dir: Direction,
        user: &str,
        origin: UserSource,
        out: &mut Vec<TelnetEvent>,
    ) {
        if user.starts_with('-') {
            let user = capped(user.as_bytes(), self.max_user_bytes);
            self.anomaly(
                dir,
                AnomalyKind::LoginArgumentInjection { origin, user },
                out,
            );
        }
        self.login.set_hint(user, origin);
    }

    fn anomaly(&mut self, dir: Direction, kind: AnomalyKind, out: &mut Vec<TelnetEvent>) {
        self.stats.anomalies += 1;
        out.push(TelnetEvent::Anomaly(TelnetAnomaly { dir, kind }));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::proto::credential::digest;
    use crate::proto::telnet::events::{LoginAttempt, LoginOutcome};
    use crate::proto::telnet::parser::{DO, IAC, SB, SE, TokenError, Verb, WILL};
    use crate::proto::telnet::subneg::{EnvVar, EnvVarKind, EnvironDetail, TerminalTypeDetail};

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    /// Feeds a dialogue, each step one `on_data` call, then closes.
    fn run(steps: &[(Direction, &[u8])]) -> Vec<TelnetEvent> {
        run_with(TelnetLimits::default(), steps)
    }

    fn run_with(limits: TelnetLimits, steps: &[(Direction, &[u8])]) -> Vec<TelnetEvent> {
        let mut session = TelnetSession::new(limits);
        let mut out = Vec::new();
        for (i, (dir, bytes)) in steps.iter().enumerate() {
            let ts = Timestamp(i64::try_from(i).unwrap_or(0));
            session.on_data(ts, *dir, bytes, &mut out);
        }
        session.on_close(Timestamp(1_000), &mut out);
        out
    }

    pub(in crate::proto::telnet) fn logins(events: &[TelnetEvent]) -> Vec<LoginAttempt> {
        events
            .iter()
            .filter_map(|e| match e {
                TelnetEvent::LoginAttempt(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    pub(in crate::proto::telnet) fn commands(events: &[TelnetEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                TelnetEvent::ShellCommand { line, .. } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }

    pub(in crate::proto::telnet) fn anomalies(events: &[TelnetEvent]) -> Vec<AnomalyKind> {
        events
            .iter()
            .filter_map(|e| match e {
                TelnetEvent::Anomaly(a) => Some(a.kind.clone()),
                _ => None,
            })
            .collect()
    }

    /// The attempt expected for a typed user and password line (in a real
    /// capture, readable in the client's segments); the credential is the
    /// digest of exactly that pair.
    pub(in crate::proto::telnet) fn typed(
        user: &str,
        password: Option<&str>,
        outcome: LoginOutcome,
        started: i64,
    ) -> LoginAttempt {
        LoginAttempt {
            user: Some(user.into()),
            user_source: UserSource::Typed,
            has_password: password.is_some(),
            password_len: password.map_or(0, |p| p.chars().count()),
            credential: password.map(|p| digest(user, p)),
            outcome,
            started: Timestamp(started),
        }
    }

    /// A busybox telnetd / login dialogue in character mode: the server
    /// echoes every character, the client sends one byte per segment,
    /// corrects the user name with DEL and the password with BS.
    /// Wrong password first (server: "Login incorrect"), then the right one.
    fn char_at_a_time_dialogue() -> Vec<(Direction, Vec<u8>)> {
        let mut steps: Vec<(Direction, Vec<u8>)> = vec![
            (S, vec![IAC, DO, 1, IAC, DO, 31, IAC, WILL, 1, IAC, WILL, 3]),
            (C, vec![IAC, 252, 1, IAC, 251, 31, IAC, DO, 1, IAC, DO, 3]),
            (S, b"\r\ncam login: ".to_vec()),
        ];
        let type_echoed = |steps: &mut Vec<(Direction, Vec<u8>)>, typed: &[u8], echo: bool| {
            for &b in typed {
                steps.push((C, vec![b]));
                if echo {
                    let shown = if b == 0x7f {
                        b"\x08 \x08".to_vec()
                    } else {
                        vec![b]
                    };
                    steps.push((S, shown));
                }
            }
        };
        type_echoed(&mut steps, b"rooz\x7ft", true);
        steps.push((C, b"\r\0".to_vec()));
        steps.push((S, b"\r\nPassword: ".to_vec()));
        type_echoed(&mut steps, b"guess", false);
        steps.push((C, b"\r\0".to_vec()));
        steps.push((S, b"\r\n".to_vec()));
        steps.push((S, b"Login incorrect\r\ncam login: ".to_vec()));
        type_echoed(&mut steps, b"root", true);
        steps.push((C, b"\r\0".to_vec()));
        steps.push((S, b"\r\nPassword: ".to_vec()));
        type_echoed(&mut steps, b"xc3512\x08\x0811", false);
        steps.push((C, b"\r\0".to_vec()));
        steps.push((
            S,
            b"\r\n\r\nBusyBox v1.35.0 built-in shell (ash)\r\n\r\n~ # ".to_vec(),
        ));
        type_echoed(&mut steps, b"/bin/busybox MIRAI", true);
        steps.push((C, b"\r\0".to_vec()));
        steps.push((S, b"\r\nMIRAI: applet not found\r\n~ # ".to_vec()));
        steps
    }

    fn banners(events: &[TelnetEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                TelnetEvent::Banner { text } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn banner_is_reported_at_the_first_prompt_only() {
        // Escape sequences and control bytes are not part of it (ECMA-48 SGR
        // "ESC [ 1 m" around the name); a later prompt brings no second one.
        let events = run(&[
            (S, b"\r\n\x1b[1mDVR-9000\x1b[0m firmware 2.1\x07\r\n\r\n"),
            (S, b"dvr login: "),
            (C, b"admin\r\n"),
            (S, b"Password: "),
            (C, b"x\r\n"),
            (S, b"Login incorrect\r\nAnother line\r\ndvr login: "),
        ]);
        assert_eq!(banners(&events), vec!["DVR-9000 firmware 2.1"]);
    }

    #[test]
    fn banner_never_holds_what_the_client_typed() {
        // The client types before any prompt; the server echoes it.
        let events = run(&[
            (S, b"Router\r\n"),
            (C, b"secret-ish\r\n"),
            (S, b"secret-ish\r\nlogin: "),
        ]);
        assert_eq!(banners(&events), Vec::<String>::new());
        // Server bytes lost before the prompt: no banner either.
        let mut s = TelnetSession::new(TelnetLimits::default());
        let mut out = Vec::new();
        s.on_data(Timestamp(0), S, b"Router\r\n", &mut out);
        s.on_gap(Timestamp(1), S, 10, &mut out);
        s.on_data(Timestamp(2), S, b"login: ", &mut out);
        assert_eq!(banners(&out), Vec::<String>::new());
        // Text that ends at the connection's close without a prompt is no banner.
        assert_eq!(
            banners(&run(&[(S, b"Too many users\r\n")])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn banner_before_a_shell_prompt() {
        // busybox telnetd -l /bin/sh: no login, a shell prompt at once.
        let events = run(&[(S, b"\r\nBusyBox v1.35.0 built-in shell (ash)\r\n\r\n~ # ")]);
        assert_eq!(
            banners(&events),
            vec!["BusyBox v1.35.0 built-in shell (ash)"]
        );
    }

    #[test]
    fn char_at_a_time_with_echo_wrong_then_right_password() {
        let steps = char_at_a_time_dialogue();
        let borrowed: Vec<(Direction, &[u8])> =
            steps.iter().map(|(d, b)| (*d, b.as_slice())).collect();
        let events = run(&borrowed);
        let attempts = logins(&events);
        assert_eq!(attempts.len(), 2);
        assert_eq!(
            (
                attempts[0].user.as_deref(),
                attempts[0].password_len,
                attempts[0].outcome
            ),
            (Some("root"), 5, LoginOutcome::Failure)
        );
        assert_eq!(
            (
                attempts[1].user.as_deref(),
                attempts[1].password_len,
                attempts[1].outcome
            ),
            (Some("root"), 6, LoginOutcome::Success)
        );
        // The digests are of the edited lines: "guess", then "xc3512" with
        // two BS and "11", i.e. "xc3511".
        assert_eq!(attempts[0].credential, Some(digest("root", "guess")));
        assert_eq!(attempts[1].credential, Some(digest("root", "xc3511")));
        assert_ne!(attempts[1].credential, Some(digest("root", "xc3512")));
        assert!(
            attempts
                .iter()
                .all(|a| a.has_password && a.user_source == UserSource::Typed)
        );
        assert_eq!(commands(&events), vec!["/bin/busybox MIRAI"]);
        let debug = format!("{events:?}");
        for secret in ["guess", "xc3511", "xc351"] {
            assert!(!debug.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn char_at_a_time_any_split_gives_same_logins() {
        // Whole dialogue per direction concatenated is not the same stream
        // order, so instead split every step into single bytes.
        let steps = char_at_a_time_dialogue();
        let bytes: Vec<(Direction, Vec<u8>)> = steps
            .iter()
            .flat_map(|(d, b)| b.iter().map(move |&x| (*d, vec![x])))
            .collect();
        let borrowed: Vec<(Direction, &[u8])> =
            bytes.iter().map(|(d, b)| (*d, b.as_slice())).collect();
        let one = logins(&run(&borrowed));
        assert_eq!(one.len(), 2);
        assert_eq!(
            one.iter()
                .map(|a| (a.password_len, a.outcome))
                .collect::<Vec<_>>(),
            vec![(5, LoginOutcome::Failure), (6, LoginOutcome::Success)]
        );
    }

    #[test]
    fn line_mode_dialogue_with_server_echo() {
        // inetutils telnetd + PAM login, client in line mode (stream shape of
        // the lab's rtr1 sessions): the server echoes "admin\r\n" with the prompt.
        let events = run(&[
            (S, b"rtr login: "),
            (C, b"admin\r\n"),
            (S, b"admin\r\nPassword: "),
            (C, b"s3cr3t!\r\n"),
            (S, b"\r\n"),
            (
                S,
                b"\r\nLast login: Mon Nov 23 14:29:13 UTC 2026 from 10.77.0.3 on pts/0\r\n",
            ),
            (S, b"$ "),
            (C, b"uptime\r\n"),
            (S, b"uptime\r\n 14:30:33 up 49 min\r\n$ "),
        ]);
        assert_eq!(
            logins(&events),
            vec![typed("admin", Some("s3cr3t!"), LoginOutcome::Success, 1)]
        );
        assert_eq!(commands(&events), vec!["uptime"]);
        assert!(!format!("{events:?}").contains("s3cr3t"));
    }

    #[test]
    fn negotiation_subnegotiation_command_and_data_events() {
        let events = run(&[
            (
                S,
                &[IAC, DO, 24, IAC, SB, 24, 1, IAC, SE, b'h', b'i', IAC, 246][..],
            ),
            (
                C,
                &[
                    IAC, WILL, 24, IAC, SB, 24, 0, b'v', b't', b'1', b'0', b'0', IAC, SE,
                ][..],
            ),
        ]);
        assert_eq!(
            events,
            vec![
                TelnetEvent::Negotiation {
                    dir: S,
                    verb: Verb::Do,
                    option: TelnetOption::TerminalType
                },
                TelnetEvent::Subnegotiation {
                    dir: S,
                    option: TelnetOption::TerminalType,
                    detail: SubnegDetail::TerminalType(TerminalTypeDetail::Send)
                },
                TelnetEvent::Command {
                    dir: S,
                    cmd: Command::AreYouThere
                },
                TelnetEvent::Data { dir: S, len: 2 },
                TelnetEvent::Negotiation {
                    dir: C,
                    verb: Verb::Will,
                    option: TelnetOption::TerminalType
                },
                TelnetEvent::Subnegotiation {
                    dir: C,
                    option: TelnetOption::TerminalType,
                    detail: SubnegDetail::TerminalType(TerminalTypeDetail::Is {
                        name: "vt100".into()
                    })
                },
            ]
        );
    }

    #[test]
    fn environ_user_hint_and_argument_injection() {
        // CVE-2026-24061 shape: USER='-f root' sent by NEW-ENVIRON IS.
        let mut sb = vec![IAC, SB, 39, 0, 0];
        sb.extend_from_slice(b"USER\x01-f root");
        sb.extend_from_slice(&[IAC, SE]);
        let events = run(&[
            (S, &[IAC, DO, 39][..]),
            (C, &sb),
            (S, b"\r\n# "),
            (C, b"id\r\n"),
        ]);
        assert_eq!(
            anomalies(&events),
            vec![AnomalyKind::LoginArgumentInjection {
                origin: UserSource::EnvironUser,
                user: "-f root".into()
            }]
        );
        assert!(events.contains(&TelnetEvent::Subnegotiation {
            dir: C,
            option: TelnetOption::NewEnviron,
            detail: SubnegDetail::Environ(EnvironDetail {
                command: EnvCommand::Is,
                vars: vec![EnvVar {
                    kind: EnvVarKind::Var,
                    name: "USER".into(),
                    value: Some("-f root".into())
                }],
                vars_dropped: 0,
                stray_bytes: 0
            })
        }));
        // A root shell with no prompt for credentials: shell commands are kept.
        assert_eq!(commands(&events), vec!["id"]);
    }

    #[test]
    fn authentication_name_is_a_hint() {
        let mut sb = vec![IAC, SB, 37, 3];
        sb.extend_from_slice(b"alice");
        sb.extend_from_slice(&[IAC, SE]);
        let events = run(&[
            (C, &sb),
            (S, b"Password: "),
            (C, b"pw\r\n"),
            (S, b"Access denied\r\n"),
        ]);
        assert_eq!(
            logins(&events),
            vec![LoginAttempt {
                user: Some("alice".into()),
                user_source: UserSource::AuthenticationName,
                has_password: true,
                password_len: 2,
                credential: Some(digest("alice", "pw")),
                outcome: LoginOutcome::Failure,
                started: Timestamp(2),
            }]
        );
    }

    #[test]
    fn iac_ec_and_el_edit_the_client_line() {
        let events = run(&[
            (S, b"login: "),
            (
                C,
                &[b'r', b'o', b'x', IAC, 247, b'o', b't', b'\r', b'\n'][..],
            ),
            (S, b"Password: "),
            (C, &[b'a', b'b', IAC, 248, b'p', b'w', b'\r', b'\n'][..]),
            (S, b"Login incorrect\r\n"),
        ]);
        assert_eq!(
            logins(&events),
            vec![typed("root", Some("pw"), LoginOutcome::Failure, 1)]
        );
    }

    #[test]
    fn anomalies_are_reported_with_direction() {
        let events = run(&[(
            C,
            &[IAC, SE, IAC, 17, IAC, SB, 31, 0, 80, IAC, SE, IAC, SB, 24][..],
        )]);
        assert_eq!(
            anomalies(&events),
            vec![
                AnomalyKind::Token(TokenError::SeWithoutSb),
                AnomalyKind::Token(TokenError::UnknownCommand(17)),
                AnomalyKind::SubnegMalformed {
                    option: TelnetOption::Naws,
                    error: subneg::SubnegError::WrongLength {
                        expected: 4,
                        got: 2
                    }
                },
                AnomalyKind::Token(TokenError::SubnegUnterminated {
                    option: TelnetOption::TerminalType,
                    len: 0
                }),
            ]
        );
        assert!(events.iter().all(|e| match e {
            TelnetEvent::Anomaly(a) => a.dir == C,
            _ => true,
        }));
        assert!(events.contains(&TelnetEvent::Subnegotiation {
            dir: C,
            option: TelnetOption::Naws,
            detail: SubnegDetail::Undecoded { len: 2 }
        }));
    }

    #[test]
    fn oversize_subnegotiation_counts_and_resyncs() {
        let limits = TelnetLimits {
            max_subneg_bytes: 8,
            ..TelnetLimits::default()
        };
        let mut sb = vec![IAC, SB, 39, 0, 3];
        sb.extend(std::iter::repeat_n(b'A', 50));
        sb.extend_from_slice(&[IAC, SE]);
        sb.extend_from_slice(b"login: ");
        let events = run_with(
            limits,
            &[(S, &sb), (C, b"root\r\n"), (S, b"Login incorrect\r\n")],
        );
        assert_eq!(
            anomalies(&events),
            vec![AnomalyKind::Token(TokenError::SubnegTooLong {
                option: TelnetOption::NewEnviron,
                limit: 8
            })]
        );
        assert_eq!(
            logins(&events),
            vec![typed("root", None, LoginOutcome::Failure, 1)]
        );
    }

    #[test]
    fn gap_in_client_direction_drops_the_partial_line() {
        let mut session = TelnetSession::new(TelnetLimits::default());
        let mut out = Vec::new();
        let t = Timestamp(5);
        session.on_data(t, S, b"login: ", &mut out);
        session.on_data(t, C, b"admin\r\n", &mut out);
        session.on_data(t, S, b"Password: ", &mut out);
        session.on_data(t, C, b"hun", &mut out);
        session.on_gap(t, C, 3, &mut out);
        // The rest of the password line after the gap must not become anything.
        session.on_data(t, C, b"er2\r\n", &mut out);
        session.on_data(t, S, b"\r\nLogin incorrect\r\nlogin: ", &mut out);
        session.on_close(t, &mut out);
        assert_eq!(anomalies(&out), vec![AnomalyKind::Gap { missing: 3 }]);
        assert_eq!(
            logins(&out),
            vec![typed("admin", None, LoginOutcome::Failure, 5)]
        );
        assert_eq!(session.stats().gaps, 1);
        assert!(!format!("{out:?}{session:?}").contains("er2"));
    }

    #[test]
    fn gap_in_server_direction_resets_the_tokenizer() {
        let mut session = TelnetSession::new(TelnetLimits::default());
        let mut out = Vec::new();
        let t = Timestamp(0);
        session.on_data(t, S, &[IAC, SB, 24], &mut out);
        session.on_gap(t, S, 100, &mut out);
        session.on_data(t, S, &[IAC, WILL, 1], &mut out);
        session.on_close(t, &mut out);
        assert_eq!(
            out,
            vec![
                TelnetEvent::Anomaly(TelnetAnomaly {
                    dir: S,
                    kind: AnomalyKind::Gap { missing: 100 }
                }),
                TelnetEvent::Negotiation {
                    dir: S,
                    verb: Verb::Will,
                    option: TelnetOption::Echo
                }
            ]
        );
    }

    #[test]
    fn shell_commands_are_bounded() {
        let limits = TelnetLimits {
            max_shell_commands: 2,
            max_shell_command_bytes: 4,
            ..TelnetLimits::default()
        };
        let mut session = TelnetSession::new(limits);
        let mut out = Vec::new();
        let t = Timestamp(0);
        session.on_data(t, S, b"login: ", &mut out);
        session.on_data(t, C, b"root\r\n", &mut out);
        session.on_data(t, S, b"Password: ", &mut out);
        session.on_data(t, C, b"x\r\n", &mut out);
        session.on_data(t, S, b"# ", &mut out);
        session.on_data(t, C, b"enable\r\nsystem\r\nshell\r\nsh\r\n", &mut out);
        assert_eq!(
            out.iter()
                .filter(|e| matches!(e, TelnetEvent::ShellCommand { .. }))
                .cloned()
                .collect::<Vec<_>>(),
            vec![
                TelnetEvent::ShellCommand {
                    line: "enab".into(),
                    truncated: true
                },
                TelnetEvent::ShellCommand {
                    line: "syst".into(),
                    truncated: true
                },
            ]
        );
        assert_eq!(session.stats().shell_commands_dropped, 2);
    }

    #[test]
    fn data_counts_unescaped_bytes_per_call() {
        let mut session = TelnetSession::new(TelnetLimits::default());
        let mut out = Vec::new();
        session.on_data(Timestamp(0), S, &[b'a', IAC, IAC, IAC, 241, b'b'], &mut out);
        assert_eq!(
            out,
            vec![
                TelnetEvent::Command {
                    dir: S,
                    cmd: Command::Nop
                },
                TelnetEvent::Data { dir: S, len: 3 }
            ]
        );
        assert_eq!(session.stats().data_bytes_to_client, 3);
        assert_eq!(session.stats().commands, 1);
    }

    #[test]
    fn limits_deserialize_with_defaults_and_reject_unknown_keys() {
        let limits: TelnetLimits =
            serde_json::from_str(r#"{"max_subneg_bytes": 64}"#).unwrap_or_default();
        assert_eq!(limits.max_subneg_bytes, 64);
        assert_eq!(limits.max_line_bytes, DEFAULT_MAX_LINE_BYTES);
        assert!(serde_json::from_str::<TelnetLimits>(r#"{"max_bogus": 1}"#).is_err());
    }

    /// The bounds a session keeps whatever the bytes: data events carry no
    /// more bytes than were fed in their direction, user names and shell
    /// commands stay within their caps, at most one banner.
    fn check_bounded(out: &[TelnetEvent], fed: [usize; 2], limits: &TelnetLimits) {
        let mut data = [0usize; 2];
        let mut shell_commands = 0;
        let mut banners = 0;
        for event in out {
            match event {
                TelnetEvent::Data { dir, len } => {
                    assert!(*len > 0, "empty data event");
                    data[usize::from(*dir == S)] += len;
                }
                TelnetEvent::LoginAttempt(a) => {
                    if let Some(user) = &a.user {
                        assert!(user.len() <= limits.max_user_bytes, "user {user:?}");
                    }
                }
                TelnetEvent::ShellCommand { line, .. } => {
                    shell_commands += 1;
                    assert!(line.len() <= limits.max_shell_command_bytes, "{line:?}");
                }
                TelnetEvent::Banner { .. } => banners += 1,
                _ => {}
            }
        }
        assert!(
            data[0] <= fed[0] && data[1] <= fed[1],
            "data {data:?} fed {fed:?}"
        );
        assert!(
            shell_commands <= limits.max_shell_commands,
            "{shell_commands} commands"
        );
        assert!(banners <= 1, "{banners} banners");
    }

    #[test]
    fn mutated_dialogues_stay_within_the_bounds() {
        let steps = char_at_a_time_dialogue();
        let stream: Vec<(Direction, u8)> = steps
            .iter()
            .flat_map(|(d, b)| b.iter().map(move |&x| (*d, x)))
            .collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let specials = [IAC, SB, SE, 0, b'\r', b'\n', 0x7f, 0x1b, 247, 248];
        for _ in 0..300 {
            let mut mutated = stream.clone();
            for _ in 0..(next() % 8) {
                let at = (next() as usize) % mutated.len();
                let byte = specials[(next() as usize) % specials.len()];
                mutated[at].1 = byte;
            }
            let limits = TelnetLimits {
                max_subneg_bytes: 4,
                max_line_bytes: 8,
                max_server_line_bytes: 8,
                max_user_bytes: 3,
                max_shell_commands: 2,
                max_shell_command_bytes: 4,
                ..TelnetLimits::default()
            };
            let mut session = TelnetSession::new(limits);
            let mut fed = [0usize; 2];
            let mut out = Vec::new();
            let mut i = 0;
            while i < mutated.len() {
                let dir = mutated[i].0;
                let take = 1 + (next() as usize) % 7;
                let chunk: Vec<u8> = mutated[i..]
                    .iter()
                    .take(take)
                    .take_while(|(d, _)| *d == dir)
                    .map(|(_, b)| *b)
                    .collect();
                i += chunk.len();
                if next() % 50 == 0 {
                    session.on_gap(Timestamp(0), dir, 10, &mut out);
                }
                fed[usize::from(dir == S)] += chunk.len();
                session.on_data(Timestamp(0), dir, &chunk, &mut out);
            }
            session.on_close(Timestamp(0), &mut out);
            check_bounded(&out, fed, &limits);
        }
    }
}
