//! The Telnet log (`telnet.jsonl`): the server's banner, login attempts,
//! shell commands, informative sub-negotiations and anomalies (see `proto/log.rs` for the
//! common fields). Option negotiations, single commands and data counts are
//! not logged: one line per option would drown the rest.

use serde::Serialize;

use super::subneg::{AuthDetail, EnvCommand, TerminalSpeedDetail, TerminalTypeDetail};
use super::{SubnegDetail, TelnetEvent, UserSource};
use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::record::Shown;

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TelnetRecord<'a> {
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
    /// What the server printed before its first prompt.
    Banner {
        banner: &'a str,
    },
    Anomaly {
        kind: &'static str,
        detail: String,
    },
}

/// The informative sub-negotiations (RFC 1073, 1079, 1091, 1572, 2941).
#[derive(Default, Serialize)]
pub struct TelnetSubneg<'a> {
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

pub(super) fn record(ev: &TelnetEvent) -> Option<(Option<Direction>, TelnetRecord<'_>)> {
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
                outcome: a.outcome.as_str(),
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
        TelnetEvent::Banner { text } => (
            Some(Direction::ToClient),
            TelnetRecord::Banner { banner: text },
        ),
        TelnetEvent::Anomaly(a) => (
            Some(a.dir),
            TelnetRecord::Anomaly {
                kind: a.kind.as_str(),
                detail: a.kind.to_string(),
            },
        ),
    })
}
