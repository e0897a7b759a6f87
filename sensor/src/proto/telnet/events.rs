//! Events a Telnet session produces. They own their data (capped strings) and
//! never carry a password: a login attempt has only `has_password`, the
//! password's length and the keyed credential digest of (user, password).

use thiserror::Error;

use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::credential::CredentialDigest;

use super::parser::{Command, TelnetOption, TokenError, Verb};
use super::subneg::{SubnegDetail, SubnegError};

/// Something seen on a Telnet connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TelnetEvent {
    /// `IAC WILL|WONT|DO|DONT <option>` (RFC 854, RFC 855).
    Negotiation {
        /// Who sent it.
        dir: Direction,
        /// The verb.
        verb: Verb,
        /// The option.
        option: TelnetOption,
    },
    /// `IAC SB <option> ... IAC SE` (RFC 855), decoded where known.
    Subnegotiation {
        /// Who sent it.
        dir: Direction,
        /// The option.
        option: TelnetOption,
        /// What it said.
        detail: SubnegDetail,
    },
    /// A single command (NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, EOR, EOF, SUSP, ABORT).
    Command {
        /// Who sent it.
        dir: Direction,
        /// The command.
        cmd: Command,
    },
    /// Data bytes delivered in one `on_data` call (a count only).
    Data {
        /// Who sent them.
        dir: Direction,
        /// Number of data bytes after IAC unescaping.
        len: usize,
    },
    /// A login dialogue reached an outcome (or ended without one).
    LoginAttempt(LoginAttempt),
    /// A line the client typed in a shell after a successful login (the first
    /// `TelnetLimits::max_shell_commands` only).
    ShellCommand {
        /// The line after editing, capped at `TelnetLimits::max_shell_command_bytes`.
        line: String,
        /// The line was longer than what is kept.
        truncated: bool,
    },
    /// What the server printed before its first prompt (see
    /// [`super::banner`]); at most once per connection.
    Banner {
        /// Its first lines, capped at `TelnetLimits::max_server_line_bytes`.
        text: String,
    },
    /// Malformed or suspicious protocol use.
    Anomaly(TelnetAnomaly),
}

/// One login attempt. The password itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The account name (capped), if one was typed or hinted.
    pub user: Option<String>,
    /// Where `user` came from.
    pub user_source: UserSource,
    /// A line was typed at a password prompt (it may be empty).
    pub has_password: bool,
    /// Characters in the password line after editing (0 without a password).
    pub password_len: usize,
    /// [`crate::proto::credential::digest`] of the user name and the
    /// password line, when both exist and neither was cut at its bound
    /// (`max_user_bytes`, `max_line_bytes`). Debug-redacted, never logged.
    pub credential: Option<CredentialDigest>,
    /// What the server answered.
    pub outcome: LoginOutcome,
    /// When the attempt started (the user or password line was completed).
    pub started: Timestamp,
}

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginOutcome {
    /// A shell prompt (or a MOTD then a prompt) followed.
    Success,
    /// The server said so ("Login incorrect", "Access denied", ...) or prompted again.
    Failure,
    /// The connection ended (or a new attempt began) before an answer.
    Unknown,
}

impl LoginOutcome {
    /// "success", "failure" or "unknown", as every output writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
            LoginOutcome::Unknown => "unknown",
        }
    }
}

/// Origin of the user name in a [`LoginAttempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserSource {
    /// Typed by the client after a login prompt.
    Typed,
    /// NEW-ENVIRON `VAR USER` (RFC 1572), e.g. the Microsoft telnet client.
    EnvironUser,
    /// AUTHENTICATION `NAME` (RFC 2941).
    AuthenticationName,
    /// No user name was seen.
    Unknown,
}

/// A protocol anomaly on one direction of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelnetAnomaly {
    /// The direction the offending bytes travelled.
    pub dir: Direction,
    /// What was wrong.
    pub kind: AnomalyKind,
}

/// Reasons for a [`TelnetAnomaly`]; `Display` gives the detail text.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AnomalyKind {
    /// Malformed command structure (unknown command, SE without SB, over-long,
    /// interrupted or unterminated sub-negotiation, truncated command).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A sub-negotiation payload of a decoded option did not parse.
    #[error("malformed {option:?} sub-negotiation: {error}")]
    SubnegMalformed {
        /// The option.
        option: TelnetOption,
        /// Why.
        error: SubnegError,
    },
    /// A NEW-ENVIRON message had more variables than kept.
    #[error("NEW-ENVIRON message with {dropped} variables over the bound")]
    EnvVarsDropped {
        /// Variables dropped.
        dropped: usize,
    },
    /// A NEW-ENVIRON message had bytes outside any variable (RFC 1572 violation).
    #[error("NEW-ENVIRON message with {count} bytes outside any variable")]
    EnvStrayBytes {
        /// Bytes outside variables.
        count: usize,
    },
    /// A user name sent by option starts with '-': it would be read as an
    /// option by login(1) (`USER='-f root'`, CVE-2026-24061).
    #[error("{origin:?} user name {user:?} starts with '-' (login argument injection)")]
    LoginArgumentInjection {
        /// Where the name came from.
        origin: UserSource,
        /// The name (capped).
        user: String,
    },
    /// Bytes of this direction were lost; parsing resynchronised.
    #[error("{missing} bytes missing from the stream")]
    Gap {
        /// How many bytes.
        missing: u64,
    },
}

impl AnomalyKind {
    /// Stable snake_case name, the one every output uses (logs, summary,
    /// rule events).
    pub fn as_str(&self) -> &'static str {
        match self {
            AnomalyKind::Token(t) => match t {
                TokenError::UnknownCommand(_) => "unknown_command",
                TokenError::SeWithoutSb => "se_without_sb",
                TokenError::SubnegTooLong { .. } => "subneg_too_long",
                TokenError::SubnegInterrupted { .. } => "subneg_interrupted",
                TokenError::SubnegUnterminated { .. } => "subneg_unterminated",
                TokenError::TruncatedCommand => "truncated_command",
            },
            AnomalyKind::SubnegMalformed { .. } => "subneg_malformed",
            AnomalyKind::EnvVarsDropped { .. } => "env_vars_dropped",
            AnomalyKind::EnvStrayBytes { .. } => "env_stray_bytes",
            AnomalyKind::LoginArgumentInjection { .. } => "login_argument_injection",
            AnomalyKind::Gap { .. } => "gap",
        }
    }
}
