//! Recognition of the login dialogue carried in Telnet data (no RFC defines
//! it; it follows what login(1), busybox login, PAM and the Microsoft Telnet
//! Service print).
//!
//! The server's output is watched line by line and at the end of every
//! segment that changed it ("the server output so far"):
//!
//! - a *user prompt* (`login:`, `Username:`, `User Name:`, `user:`) makes the
//!   client's next line the user name;
//! - a *password prompt* (`Password:`) makes the client's next line a
//!   password — counted and turned into a credential digest with the user
//!   name, never stored;
//! - with a user or password given, a failure text (`Login incorrect`,
//!   `Login failed`, `incorrect`, `Access denied`, `Authentication failed`, ...)
//!   or a new user prompt is a failure; a shell prompt (output ending in `$`,
//!   `#`, `>` or `%`, optionally followed by a space) is a success, as is any
//!   pending output after a `Last login`/`Welcome` line.
//!
//! Names come from what the client typed, not from the server's echo, so line
//! mode, character-at-a-time with remote echo and linemode all work; editing
//! is done by [`super::nvt::LineAssembler`]. A line typed after a user name and
//! before the password prompt arrives is treated as a password (secret first).
//! A user name may also come from NEW-ENVIRON `USER` or AUTHENTICATION `NAME`.

use crate::capture::Timestamp;
use crate::proto::credential::CredentialDigest;

use super::events::{LoginAttempt, LoginOutcome, TelnetEvent, UserSource};
use super::nvt::{Line, SecretLine};
use crate::proto::text::{capped, push_capped};

/// User prompts, matched case-insensitively at the end of the output.
pub const USER_PROMPTS: [&[u8]; 4] = [b"login:", b"username:", b"user name:", b"user:"];
/// Password prompt, matched case-insensitively at the end of the output.
pub const PASSWORD_PROMPT: &[u8] = b"password:";
/// Last characters of a shell prompt (before optional trailing blanks).
pub const SHELL_PROMPT_ENDINGS: [u8; 4] = [b'$', b'#', b'>', b'%'];
/// Server text that reports a failed login (case-insensitive substrings).
pub const FAILURE_TEXTS: [&[u8]; 8] = [
    b"incorrect",
    b"login failed",
    b"logon failure",
    b"access denied",
    b"authentication failed",
    b"bad password",
    b"invalid password",
    b"invalid login",
];
/// Server text that follows a successful login (case-insensitive substrings).
pub const MOTD_TEXTS: [&[u8]; 2] = [b"last login", b"welcome"];
/// Longest output line still considered a prompt.
pub const MAX_PROMPT_BYTES: usize = 128;

/// What the end of the server output asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// A user name.
    User,
    /// A password.
    Password,
    /// A command (a shell or CLI prompt).
    Shell,
}

/// Classifies the server's current output line.
pub fn classify_prompt(tail: &[u8]) -> Option<Prompt> {
    let text = trim_end(tail);
    if text.is_empty() || text.len() > MAX_PROMPT_BYTES {
        return None;
    }
    if ends_with_ignore_case(text, PASSWORD_PROMPT) {
        return Some(Prompt::Password);
    }
    if USER_PROMPTS.iter().any(|p| ends_with_ignore_case(text, p))
        && !starts_with_ignore_case(text, b"last login")
    {
        return Some(Prompt::User);
    }
    match text.last() {
        Some(last) if SHELL_PROMPT_ENDINGS.contains(last) => Some(Prompt::Shell),
        _ => None,
    }
}

/// True when a line of server output reports a failed login.
pub fn is_failure_text(line: &[u8]) -> bool {
    contains_any_ignore_case(line, &FAILURE_TEXTS, &FAILURE_FIRST_BYTES)
}

/// True when a line of server output is typical of a successful login.
pub fn is_motd_text(line: &[u8]) -> bool {
    contains_any_ignore_case(line, &MOTD_TEXTS, &MOTD_FIRST_BYTES)
}

/// For each byte, the [`FAILURE_TEXTS`] that start with it (either case).
const FAILURE_FIRST_BYTES: [u8; 256] = first_bytes(&FAILURE_TEXTS);
/// For each byte, the [`MOTD_TEXTS`] that start with it (either case).
const MOTD_FIRST_BYTES: [u8; 256] = first_bytes(&MOTD_TEXTS);

/// For each byte value, a bit set of the non-empty `needles` whose first
/// byte it is, in either ASCII case. At most eight needles (checked when the
/// tables are built, at compile time).
const fn first_bytes(needles: &[&[u8]]) -> [u8; 256] {
    assert!(needles.len() <= 8, "a needle set is a u8 bit set");
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < needles.len() {
        if let [first, ..] = needles[i] {
            table[first.to_ascii_lowercase() as usize] |= 1 << i;
            table[first.to_ascii_uppercase() as usize] |= 1 << i;
        }
        i += 1;
    }
    table
}

/// Whether `text` contains one of `needles`, ASCII case-insensitively.
/// `first` is [`first_bytes`] of `needles`: the text is read once, and at
/// each byte only the needles starting with it are compared.
fn contains_any_ignore_case(text: &[u8], needles: &[&[u8]], first: &[u8; 256]) -> bool {
    text.iter().enumerate().any(|(i, &b)| {
        let mut set = first[usize::from(b)];
        while set != 0 {
            let n = set.trailing_zeros() as usize;
            set &= set - 1;
            if let (Some(rest), Some(needle)) = (text.get(i..), needles.get(n))
                && starts_with_ignore_case(rest, needle)
            {
                return true;
            }
        }
        false
    })
}

fn trim_end(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    text.get(..end).unwrap_or(text)
}

fn ends_with_ignore_case(text: &[u8], suffix: &[u8]) -> bool {
    text.len()
        .checked_sub(suffix.len())
        .and_then(|start| text.get(start..))
        .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Bounds of the recognizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Longest user name kept, in bytes.
    pub max_user_bytes: usize,
    /// Shell command lines reported after a successful login.
    pub max_shell_commands: usize,
    /// Longest shell command line kept, in bytes.
    pub max_shell_command_bytes: usize,
}

/// Counters of what the recognizer saw but did not report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginCounters {
    /// Shell command lines over `max_shell_commands`.
    pub shell_commands_dropped: u64,
    /// Lines typed at a password prompt inside a shell (su, sudo, enable).
    pub shell_secret_lines: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Attempt {
    user: Option<String>,
    user_source: UserSource,
    /// `user` was cut at `max_user_bytes`: no credential digest then.
    user_cut: bool,
    started: Timestamp,
    password_len: Option<usize>,
    credential: Option<CredentialDigest>,
}

impl Attempt {
    /// The user name a credential digest is computed over: the whole name.
    fn digest_user(&self) -> Option<&str> {
        self.user.as_deref().filter(|_| !self.user_cut)
    }

    /// Records the password line: its length, and the credential digest when
    /// the whole user name and the whole password are known.
    fn set_password(&mut self, len: usize, password: &SecretLine) {
        self.password_len = Some(len);
        self.credential = self.digest_user().and_then(|user| password.digest(user));
    }
}

/// A user name announced by option, kept for the next attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hint {
    name: String,
    source: UserSource,
    cut: bool,
}

/// `name` capped at `max` bytes, and whether that cut it.
fn capped_user(name: &str, max: usize) -> (String, bool) {
    let mut kept = String::new();
    let cut = push_capped(&mut kept, name.as_bytes(), max);
    (kept, cut)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// No login in progress.
    Idle,
    /// A user name was given; waiting for the password prompt or an answer.
    User(Attempt),
    /// A password was given; waiting for the answer. `before_prompt`: it was
    /// typed before the password prompt arrived.
    Password {
        attempt: Attempt,
        before_prompt: bool,
    },
    /// Logged in: client lines are shell commands.
    Shell,
}

/// Per-connection login dialogue state.
#[derive(Debug)]
pub struct LoginTracker {
    stage: Stage,
    prompt: Option<Prompt>,
    hint: Option<Hint>,
    saw_motd: bool,
    shell_commands: usize,
    counters: LoginCounters,
    limits: LoginLimits,
}

impl LoginTracker {
    /// A tracker with nothing seen.
    pub fn new(limits: LoginLimits) -> Self {
        LoginTracker {
            stage: Stage::Idle,
            prompt: None,
            hint: None,
            saw_motd: false,
            shell_commands: 0,
            counters: LoginCounters::default(),
            limits,
        }
    }

    /// What was seen but not reported.
    pub fn counters(&self) -> LoginCounters {
        self.counters
    }

    /// Whether a client line starting now is a password: after a password
    /// prompt, or after a user name (even before the password prompt arrives).
    pub fn secret_next_line(&self) -> bool {
        self.prompt == Some(Prompt::Password) || matches!(self.stage, Stage::User(_))
    }

    /// A user name announced by option (NEW-ENVIRON USER, AUTHENTICATION NAME).
    pub fn set_hint(&mut self, name: &str, source: UserSource) {
        let (name, cut) = capped_user(name, self.limits.max_user_bytes);
        if let Stage::User(attempt) | Stage::Password { attempt, .. } = &mut self.stage {
            if attempt.user.is_none() {
                attempt.user = Some(name.clone());
                attempt.user_source = source;
                attempt.user_cut = cut;
            }
        }
        self.hint = Some(Hint { name, source, cut });
    }

    /// A line the client completed.
    pub fn on_client_line(&mut self, ts: Timestamp, line: Line, out: &mut Vec<TelnetEvent>) {
        let prompt = self.prompt.take();
        match line {
            Line::Secret { len, password } => self.on_password(ts, len, &password, prompt, out),
            // Typed before the password prompt arrived, or after a user name:
            // still a password (secrecy first).
            Line::Text { text, truncated }
                if prompt == Some(Prompt::Password) || matches!(self.stage, Stage::User(_)) =>
            {
                let len = text.chars().count();
                let password = SecretLine::new(text.into_bytes(), !truncated);
                self.on_password(ts, len, &password, prompt, out)
            }
            Line::Text { text, truncated } => self.on_text(ts, &text, truncated, prompt, out),
        }
    }

    /// A complete non-empty line of server output. `client_idle`: the client
    /// has not typed anything on its current line.
    pub fn on_server_line(&mut self, line: &[u8], client_idle: bool, out: &mut Vec<TelnetEvent>) {
        if client_idle {
            // Output went on past the prompt without an answer.
            self.prompt = None;
        }
        if self.pending() {
            if is_failure_text(line) {
                self.finish(LoginOutcome::Failure, out);
            } else if is_motd_text(line) {
                self.saw_motd = true;
            }
        }
    }

    /// The server's output so far ends with `tail` (its current line), which
    /// changed since the last call.
    pub fn on_server_tail(&mut self, ts: Timestamp, tail: &[u8], out: &mut Vec<TelnetEvent>) {
        let pending = self.pending();
        match classify_prompt(tail) {
            Some(Prompt::User) => {
                if pending {
                    self.finish(LoginOutcome::Failure, out);
                }
                self.prompt = Some(Prompt::User);
            }
            Some(Prompt::Password) => self.on_password_prompt(ts, out),
            Some(Prompt::Shell) => {
                if pending {
                    self.finish(LoginOutcome::Success, out);
                } else {
                    self.prompt = Some(Prompt::Shell);
                }
            }
            None if pending => {
                if is_failure_text(tail) {
                    self.finish(LoginOutcome::Failure, out);
                } else if self.saw_motd && !trim_end(tail).is_empty() {
                    self.finish(LoginOutcome::Success, out);
                }
            }
            None => {}
        }
    }

    /// Server output was lost: what it prompted for is unknown.
    pub fn on_server_gap(&mut self) {
        self.prompt = None;
    }

    /// End of the connection: an attempt without an answer is reported as such.
    pub fn on_close(&mut self, out: &mut Vec<TelnetEvent>) {
        self.finish(LoginOutcome::Unknown, out);
        self.prompt = None;
    }

    fn pending(&self) -> bool {
        matches!(self.stage, Stage::User(_) | Stage::Password { .. })
    }

    /// An attempt whose password comes first, its user name (if any) from
    /// the hint.
    fn new_attempt(&self, ts: Timestamp, len: usize, password: &SecretLine) -> Attempt {
        let (user, user_source, user_cut) = match &self.hint {
            Some(h) => (Some(h.name.clone()), h.source, h.cut),
            None => (None, UserSource::Unknown, false),
        };
        let mut attempt = Attempt {
            user,
            user_source,
            user_cut,
            started: ts,
            password_len: None,
            credential: None,
        };
        attempt.set_password(len, password);
        attempt
    }

    fn on_password(
        &mut self,
        ts: Timestamp,
        len: usize,
        password: &SecretLine,
        prompt: Option<Prompt>,
        out: &mut Vec<TelnetEvent>,
    ) {
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::User(mut attempt) => {
                attempt.set_password(len, password);
                self.stage = Stage::Password {
                    attempt,
                    before_prompt: prompt != Some(Prompt::Password),
                };
            }
            Stage::Shell => {
                self.stage = Stage::Shell;
                self.counters.shell_secret_lines += 1;
            }
            previous @ Stage::Password { .. } => {
                self.stage = previous;
                self.finish(LoginOutcome::Unknown, out);
                self.stage = Stage::Password {
                    attempt: self.new_attempt(ts, len, password),
                    before_prompt: false,
                };
            }
            Stage::Idle => {
                self.saw_motd = false;
                self.stage = Stage::Password {
                    attempt: self.new_attempt(ts, len, password),
                    before_prompt: false,
                };
            }
        }
    }

    fn on_text(
        &mut self,
        ts: Timestamp,
        text: &str,
        truncated: bool,
        prompt: Option<Prompt>,
        out: &mut Vec<TelnetEvent>,
    ) {
        if prompt == Some(Prompt::User) {
            let name = text.trim();
            if name.is_empty() {
                return;
            }
            self.finish(LoginOutcome::Unknown, out);
            self.saw_motd = false;
            let (user, cut) = capped_user(name, self.limits.max_user_bytes);
            self.stage = Stage::User(Attempt {
                user: Some(user),
                user_source: UserSource::Typed,
                user_cut: cut || truncated,
                started: ts,
                password_len: None,
                credential: None,
            });
            return;
        }
        match self.stage {
            Stage::Shell => self.shell_command(text, truncated, out),
            Stage::Idle if prompt == Some(Prompt::Shell) => {
                // A shell offered without any login (e.g. `telnetd -l /bin/sh`).
                self.stage = Stage::Shell;
                self.shell_command(text, truncated, out);
            }
            _ => {}
        }
    }

    fn on_password_prompt(&mut self, ts: Timestamp, out: &mut Vec<TelnetEvent>) {
        match &mut self.stage {
            Stage::Password {
                before_prompt: before @ true,
                ..
            } => {
                // The typed-ahead password answers this prompt.
                *before = false;
            }
            Stage::Password { attempt, .. } => {
                // Asked again after a password: that one was wrong (Cisco-style).
                let next = Attempt {
                    user: attempt.user.clone(),
                    user_source: attempt.user_source,
                    user_cut: attempt.user_cut,
                    started: ts,
                    password_len: None,
                    credential: None,
                };
                self.finish(LoginOutcome::Failure, out);
                self.stage = Stage::User(next);
                self.prompt = Some(Prompt::Password);
            }
            _ => self.prompt = Some(Prompt::Password),
        }
    }

    fn shell_command(&mut self, text: &str, truncated: bool, out: &mut Vec<TelnetEvent>) {
        let line = text.trim();
        if line.is_empty() {
            return;
        }
        if self.shell_commands >= self.limits.max_shell_commands {
            self.counters.shell_commands_dropped += 1;
            return;
        }
        self.shell_commands += 1;
        let kept = capped(line.as_bytes(), self.limits.max_shell_command_bytes);
        out.push(TelnetEvent::ShellCommand {
            truncated: truncated || kept.len() < line.len(),
            line: kept,
        });
    }

    /// Reports the attempt in progress, if any, with `outcome`.
    fn finish(&mut self, outcome: LoginOutcome, out: &mut Vec<TelnetEvent>) {
        match std::mem::replace(&mut self.stage, Stage::Idle) {
            Stage::User(attempt) | Stage::Password { attempt, .. } => {
                out.push(TelnetEvent::LoginAttempt(LoginAttempt {
                    user: attempt.user,
                    user_source: attempt.user_source,
                    has_password: attempt.password_len.is_some(),
                    password_len: attempt.password_len.unwrap_or(0),
                    credential: attempt.credential,
                    outcome,
                    started: attempt.started,
                }));
                self.saw_motd = false;
                if outcome == LoginOutcome::Success {
                    self.stage = Stage::Shell;
                }
            }
            other => self.stage = other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::credential::digest;

    #[test]
    fn user_prompts() {
        for tail in [
            &b"ipcam-25 login: "[..],
            b"rtr-ax3000 login: ",
            b"Username:",
            b"User Name: ",
            b"user:",
            b"LOGIN:  ",
        ] {
            assert_eq!(classify_prompt(tail), Some(Prompt::User), "{tail:?}");
        }
        // "Last login:" cut at a segment boundary is no prompt.
        assert_eq!(classify_prompt(b"Last login:"), None);
    }

    #[test]
    fn password_and_shell_prompts() {
        assert_eq!(classify_prompt(b"Password: "), Some(Prompt::Password));
        assert_eq!(classify_prompt(b"password:"), Some(Prompt::Password));
        for tail in [
            &b"$ "[..],
            b"ipcam-25# ",
            b"C:\\Users\\Administrator>",
            b"router> ",
            b"% ",
            b"root@box:~# ",
        ] {
            assert_eq!(classify_prompt(tail), Some(Prompt::Shell), "{tail:?}");
        }
        for tail in [
            &b""[..],
            b"   ",
            b"Enter the new date: (mm-dd-yy) ",
            b"Login incorrect",
            b"uptime",
        ] {
            assert_eq!(classify_prompt(tail), None, "{tail:?}");
        }
        let long = [b'x'; MAX_PROMPT_BYTES + 1];
        let mut long = long.to_vec();
        long.push(b'#');
        assert_eq!(classify_prompt(&long), None);
    }

    #[test]
    fn failure_and_motd_texts() {
        for line in [
            &b"Login incorrect"[..],
            b"Login failed.",
            b"% Access denied",
            b"Authentication failed",
            b"password INCORRECT",
            b"Logon failure: unknown user name or bad password.",
        ] {
            assert!(is_failure_text(line), "{line:?}");
        }
        assert!(!is_failure_text(
            b"RTR-AX3000 firmware 3.0.4 -- authorised access only"
        ));
        assert!(is_motd_text(
            b"Last login: Mon Nov 23 14:29:13 UTC 2026 from 10.77.0.3 on pts/0"
        ));
        assert!(is_motd_text(b"Welcome to Microsoft Telnet Service "));
    }

    // The one-pass search finds exactly what searching for each text in
    // turn finds, wherever the text sits and whatever its case.
    #[test]
    fn failure_and_motd_search_matches_a_plain_substring_search() {
        let plain = |line: &[u8], needles: &[&[u8]]| {
            needles
                .iter()
                .any(|n| line.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)))
        };
        let mut lines: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"i".to_vec(),
            b"incorrec".to_vec(),
            b"xINCORRECT".to_vec(),
            b"lAsT lOgIn".to_vec(),
            b"access denie".to_vec(),
            b"welcom\xe9".to_vec(),
            b"\xffbad password\x00".to_vec(),
        ];
        for t in FAILURE_TEXTS.iter().chain(MOTD_TEXTS.iter()) {
            for at in [0, 3] {
                let mut line = vec![b'a'; at];
                line.extend(t.iter().map(u8::to_ascii_uppercase));
                lines.push(line.clone());
                line.pop();
                lines.push(line);
            }
        }
        for line in &lines {
            assert_eq!(
                is_failure_text(line),
                plain(line, &FAILURE_TEXTS),
                "{line:?}"
            );
            assert_eq!(is_motd_text(line), plain(line, &MOTD_TEXTS), "{line:?}");
        }
    }

    fn tracker() -> LoginTracker {
        LoginTracker::new(LoginLimits {
            max_user_bytes: 8,
            max_shell_commands: 2,
            max_shell_command_bytes: 6,
        })
    }

    fn text(s: &str) -> Line {
        Line::Text {
            text: s.into(),
            truncated: false,
        }
    }

    /// A password line as the assembler seals it.
    fn secret(password: &str) -> Line {
        Line::Secret {
            len: password.chars().count(),
            password: SecretLine::new(password.into(), true),
        }
    }

    /// The attempt expected for a typed user and password; the credential is
    /// the digest of exactly that pair.
    fn attempt(user: Option<&str>, password: Option<&str>, outcome: LoginOutcome) -> TelnetEvent {
        TelnetEvent::LoginAttempt(LoginAttempt {
            user: user.map(Into::into),
            user_source: if user.is_some() {
                UserSource::Typed
            } else {
                UserSource::Unknown
            },
            has_password: password.is_some(),
            password_len: password.map_or(0, |p| p.chars().count()),
            credential: user.zip(password).map(|(u, p)| digest(u, p)),
            outcome,
            started: Timestamp(1),
        })
    }

    #[test]
    fn user_password_failure_then_success() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_server_tail(ts, b"box login: ", &mut out);
        assert!(!t.secret_next_line());
        t.on_client_line(ts, text("root"), &mut out);
        assert!(t.secret_next_line());
        t.on_server_tail(ts, b"Password: ", &mut out);
        t.on_client_line(ts, secret("guess"), &mut out);
        t.on_server_line(b"Login incorrect", true, &mut out);
        assert_eq!(
            out,
            vec![attempt(Some("root"), Some("guess"), LoginOutcome::Failure)]
        );
        let TelnetEvent::LoginAttempt(a) = &out[0] else {
            panic!()
        };
        assert_ne!(a.credential, Some(digest("root", "xc3511")));
        out.clear();
        t.on_server_tail(ts, b"box login: ", &mut out);
        t.on_client_line(ts, text("root"), &mut out);
        t.on_server_tail(ts, b"Password: ", &mut out);
        t.on_client_line(ts, secret("xc3511"), &mut out);
        t.on_server_tail(ts, b"# ", &mut out);
        assert_eq!(
            out,
            vec![attempt(Some("root"), Some("xc3511"), LoginOutcome::Success)]
        );
        out.clear();
        // Shell commands: first two kept, capped at 6 bytes.
        t.on_client_line(ts, text("enable"), &mut out);
        t.on_client_line(ts, text(""), &mut out);
        t.on_client_line(ts, text("/bin/busybox MIRAI"), &mut out);
        t.on_client_line(ts, text("sh"), &mut out);
        assert_eq!(
            out,
            vec![
                TelnetEvent::ShellCommand {
                    line: "enable".into(),
                    truncated: false
                },
                TelnetEvent::ShellCommand {
                    line: "/bin/b".into(),
                    truncated: true
                },
            ]
        );
        assert_eq!(t.counters().shell_commands_dropped, 1);
    }

    #[test]
    fn reprompt_for_login_is_a_failure_and_user_is_capped() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_client_line(ts, text("averylongname"), &mut out);
        t.on_server_tail(ts, b"Password: ", &mut out);
        t.on_client_line(ts, secret("pw!"), &mut out);
        t.on_server_tail(ts, b"login: ", &mut out);
        // The user name was cut: no digest (it would be one of "averylon").
        assert_eq!(
            out,
            vec![TelnetEvent::LoginAttempt(LoginAttempt {
                user: Some("averylon".into()),
                user_source: UserSource::Typed,
                has_password: true,
                password_len: 3,
                credential: None,
                outcome: LoginOutcome::Failure,
                started: ts,
            })]
        );
    }

    #[test]
    fn password_reprompt_is_a_failure_unless_typed_ahead() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        // Typed ahead: user and password sent before the password prompt.
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_client_line(ts, text("admin"), &mut out);
        assert!(t.secret_next_line());
        t.on_client_line(ts, secret("123456"), &mut out);
        t.on_server_tail(ts, b"Password: ", &mut out);
        assert!(out.is_empty());
        // The same prompt again is a failure; the next password is a new attempt.
        t.on_server_tail(ts, b"Password: ", &mut out);
        assert_eq!(
            out,
            vec![attempt(
                Some("admin"),
                Some("123456"),
                LoginOutcome::Failure
            )]
        );
        out.clear();
        // The second password is digested with the same user.
        t.on_client_line(ts, secret("1234"), &mut out);
        t.on_server_tail(ts, b"router>", &mut out);
        assert_eq!(
            out,
            vec![attempt(Some("admin"), Some("1234"), LoginOutcome::Success)]
        );
    }

    #[test]
    fn text_line_after_user_is_treated_as_password() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_client_line(ts, text("root"), &mut out);
        t.on_client_line(ts, text("hunter2"), &mut out);
        t.on_close(&mut out);
        assert_eq!(
            out,
            vec![attempt(
                Some("root"),
                Some("hunter2"),
                LoginOutcome::Unknown
            )]
        );
        assert!(!format!("{out:?}{t:?}").contains("hunter2"));
    }

    #[test]
    fn motd_then_prompt_like_output_is_success() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_client_line(ts, text("op"), &mut out);
        t.on_server_tail(ts, b"Password: ", &mut out);
        t.on_client_line(ts, secret("op"), &mut out);
        t.on_server_line(b"Welcome to BoxOS", true, &mut out);
        assert!(out.is_empty());
        t.on_server_tail(ts, b"box:~ ", &mut out);
        assert_eq!(
            out,
            vec![attempt(Some("op"), Some("op"), LoginOutcome::Success)]
        );
    }

    #[test]
    fn password_prompt_without_user_uses_hint() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.set_hint("administrator", UserSource::EnvironUser);
        t.on_server_tail(ts, b"password: ", &mut out);
        assert!(t.secret_next_line());
        t.on_client_line(ts, secret("penguin"), &mut out);
        t.on_server_tail(ts, b"C:\\Users\\Administrator>", &mut out);
        assert_eq!(
            out,
            vec![TelnetEvent::LoginAttempt(LoginAttempt {
                user: Some("administ".into()),
                user_source: UserSource::EnvironUser,
                has_password: true,
                password_len: 7,
                // "administrator" was cut at 8 bytes: no digest.
                credential: None,
                outcome: LoginOutcome::Success,
                started: ts,
            })]
        );
        // A whole hinted name gives the digest of (hint, password).
        let mut t = tracker();
        let mut out = Vec::new();
        t.set_hint("admin", UserSource::EnvironUser);
        t.on_server_tail(ts, b"password: ", &mut out);
        t.on_client_line(ts, secret("admin"), &mut out);
        t.on_close(&mut out);
        let TelnetEvent::LoginAttempt(a) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(a.credential, Some(digest("admin", "admin")));
    }

    #[test]
    fn unanswered_attempt_is_unknown_at_close_and_on_new_user() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_client_line(ts, text("a"), &mut out);
        // Server re-prompts for login before asking a password: failure without password.
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_client_line(ts, text("b"), &mut out);
        t.on_close(&mut out);
        assert_eq!(
            out,
            vec![
                attempt(Some("a"), None, LoginOutcome::Failure),
                attempt(Some("b"), None, LoginOutcome::Unknown)
            ]
        );
    }

    #[test]
    fn lines_without_prompt_are_ignored_and_stale_prompts_cleared() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_client_line(ts, text("user"), &mut out);
        t.on_server_tail(ts, b"login: ", &mut out);
        t.on_server_line(b"login: ", true, &mut out);
        t.on_server_line(b"timed out", true, &mut out);
        t.on_client_line(ts, text("late"), &mut out);
        t.on_close(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn shell_without_login_and_su_password_not_recorded() {
        let mut t = tracker();
        let mut out = Vec::new();
        let ts = Timestamp(1);
        t.on_server_tail(ts, b"/ # ", &mut out);
        t.on_client_line(ts, text("su"), &mut out);
        t.on_server_tail(ts, b"Password: ", &mut out);
        assert!(t.secret_next_line());
        t.on_client_line(ts, secret("rootpass"), &mut out);
        assert_eq!(
            out,
            vec![TelnetEvent::ShellCommand {
                line: "su".into(),
                truncated: false
            }]
        );
        assert_eq!(t.counters().shell_secret_lines, 1);
    }
}
