//! Decoding of sub-negotiation payloads (the bytes between `IAC SB <option>`
//! and `IAC SE`, already undoubled by the tokenizer) for the options a sensor
//! cares about:
//!
//! - NAWS, RFC 1073 §2 "Command Meanings": `WIDTH[1] WIDTH[0] HEIGHT[1] HEIGHT[0]`;
//! - TERMINAL-TYPE, RFC 1091 "Specification": `IS <name>` / `SEND`;
//! - TERMINAL-SPEED, RFC 1079: `IS <tx>,<rx>` / `SEND`;
//! - NEW-ENVIRON, RFC 1572 "Command Names and Codes" / "Command Meanings":
//!   `IS|SEND|INFO` then a list of `VAR|USERVAR name [VALUE value]`, ESC quoting;
//! - LINEMODE, RFC 1184 §2 "Command Meanings": `MODE mask`, `DO|DONT|WILL|WONT FORWARDMASK ...`,
//!   `SLC` triples;
//! - AUTHENTICATION, RFC 2941 §2 "Command Meanings": `IS|SEND|REPLY|NAME`; authentication data
//!   is never kept, only its length.
//!
//! Other options are not decoded (only their length is reported).

use thiserror::Error;

use super::parser::{TelnetOption, Verb};
use crate::proto::text::capped;

/// TERMINAL-TYPE / TERMINAL-SPEED / NEW-ENVIRON / AUTHENTICATION sub-command IS (0).
pub const IS: u8 = 0;
/// TERMINAL-TYPE / TERMINAL-SPEED / NEW-ENVIRON / AUTHENTICATION sub-command SEND (1).
pub const SEND: u8 = 1;
/// NEW-ENVIRON sub-command INFO (2), RFC 1572.
pub const INFO: u8 = 2;
/// AUTHENTICATION sub-command REPLY (2), RFC 2941.
pub const AUTH_REPLY: u8 = 2;
/// AUTHENTICATION sub-command NAME (3), RFC 2941.
pub const AUTH_NAME: u8 = 3;
/// NEW-ENVIRON list type VAR (0), RFC 1572.
pub const ENV_VAR: u8 = 0;
/// NEW-ENVIRON list type VALUE (1), RFC 1572.
pub const ENV_VALUE: u8 = 1;
/// NEW-ENVIRON quoting byte ESC (2), RFC 1572.
pub const ENV_ESC: u8 = 2;
/// NEW-ENVIRON list type USERVAR (3), RFC 1572.
pub const ENV_USERVAR: u8 = 3;
/// LINEMODE sub-command MODE (1), RFC 1184 §2 "Command Meanings".
pub const LM_MODE: u8 = 1;
/// LINEMODE sub-command FORWARDMASK (2), RFC 1184 §2 "Command Meanings".
pub const LM_FORWARDMASK: u8 = 2;
/// LINEMODE sub-command SLC (3), RFC 1184 §2 "Command Meanings".
pub const LM_SLC: u8 = 3;
/// Length of a NAWS payload, RFC 1073 §2 "Command Meanings".
pub const NAWS_LEN: usize = 4;
/// Bytes in one SLC triple (function, modifier, value), RFC 1184 §2 "Command Meanings".
pub const SLC_TRIPLE_LEN: usize = 3;

/// Bounds applied while decoding (strings are cut, extra variables dropped and counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most environment variables kept from one NEW-ENVIRON message.
    pub max_env_vars: usize,
    /// Longest name/value/terminal type kept, in bytes.
    pub max_string_bytes: usize,
}

/// A decoded sub-negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubnegDetail {
    /// NAWS window size (RFC 1073). Zero means "unknown" per the RFC.
    WindowSize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// TERMINAL-TYPE (RFC 1091).
    TerminalType(TerminalTypeDetail),
    /// TERMINAL-SPEED (RFC 1079).
    TerminalSpeed(TerminalSpeedDetail),
    /// NEW-ENVIRON (RFC 1572).
    Environ(EnvironDetail),
    /// LINEMODE (RFC 1184).
    Linemode(LinemodeDetail),
    /// AUTHENTICATION (RFC 2941).
    Authentication(AuthDetail),
    /// An option this sensor does not decode, or a payload that failed to
    /// decode (the anomaly says why); only the payload length is kept.
    Undecoded {
        /// Payload bytes.
        len: usize,
    },
}

/// TERMINAL-TYPE sub-negotiation (RFC 1091).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminalTypeDetail {
    /// `IS <name>`.
    Is {
        /// The terminal type (capped).
        name: String,
    },
    /// `SEND`.
    Send,
}

/// TERMINAL-SPEED sub-negotiation (RFC 1079).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TerminalSpeedDetail {
    /// `IS <transmit>,<receive>` as sent (capped).
    Is {
        /// The speed text.
        speed: String,
    },
    /// `SEND`.
    Send,
}

/// NEW-ENVIRON command (RFC 1572).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvCommand {
    /// IS (0).
    Is,
    /// SEND (1).
    Send,
    /// INFO (2).
    Info,
    /// Any other byte.
    Unknown(u8),
}

/// Kind of a NEW-ENVIRON variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvVarKind {
    /// Well-known variable (VAR, 0): USER, JOB, ACCT, PRINTER, SYSTEMTYPE, DISPLAY.
    Var,
    /// User-defined variable (USERVAR, 3).
    UserVar,
}

/// One NEW-ENVIRON variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    /// VAR or USERVAR.
    pub kind: EnvVarKind,
    /// Name (capped).
    pub name: String,
    /// Value, if a VALUE followed the name (capped).
    pub value: Option<String>,
}

/// A decoded NEW-ENVIRON message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvironDetail {
    /// IS, SEND or INFO.
    pub command: EnvCommand,
    /// Variables kept (at most `DecodeLimits::max_env_vars`).
    pub vars: Vec<EnvVar>,
    /// Variables beyond the bound, counted and dropped.
    pub vars_dropped: usize,
    /// Bytes that belong to no variable (before the first VAR/USERVAR, or a
    /// VALUE without a variable): malformed per RFC 1572.
    pub stray_bytes: usize,
}

impl EnvironDetail {
    /// The value of the well-known variable USER (RFC 1572: "USER ... the
    /// user name to log in as"), if present.
    pub fn user(&self) -> Option<&str> {
        self.vars
            .iter()
            .find(|v| v.kind == EnvVarKind::Var && v.name == "USER")
            .and_then(|v| v.value.as_deref())
    }
}

/// A decoded LINEMODE message (RFC 1184 §2 "Command Meanings").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinemodeDetail {
    /// `MODE mask` (EDIT 1, TRAPSIG 2, MODE_ACK 4, SOFT_TAB 8, LIT_ECHO 16).
    Mode {
        /// The mode bits.
        mask: u8,
    },
    /// `<verb> FORWARDMASK [mask bytes]`.
    ForwardMask {
        /// DO, DONT, WILL or WONT.
        verb: Verb,
        /// Mask bytes (at most 32 per the RFC; not kept).
        mask_len: usize,
    },
    /// `SLC` followed by triples.
    Slc {
        /// Number of (function, modifier, value) triples.
        triples: usize,
    },
    /// Another sub-command.
    Unknown {
        /// The first payload byte.
        code: u8,
    },
}

/// A decoded AUTHENTICATION message (RFC 2941 §2 "Command Meanings"). Authentication data is
/// credential material and is never kept: only its length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthDetail {
    /// `IS <type> <modifiers> <data>` (client to server).
    Is {
        /// Authentication type (e.g. 2 KERBEROS_V5, 5 SRP).
        auth_type: u8,
        /// Modifier bits.
        modifiers: u8,
        /// Length of the authentication data.
        data_len: usize,
    },
    /// `SEND <type modifiers>...` (server lists acceptable pairs).
    Send {
        /// Number of type/modifier pairs.
        pairs: usize,
    },
    /// `REPLY <type> <modifiers> <data>` (server to client).
    Reply {
        /// Authentication type.
        auth_type: u8,
        /// Modifier bits.
        modifiers: u8,
        /// Length of the authentication data.
        data_len: usize,
    },
    /// `NAME <name>`: the account the client wants (a login hint).
    Name {
        /// The name (capped).
        name: String,
    },
    /// Another sub-command.
    Unknown {
        /// The first payload byte.
        code: u8,
    },
}

/// Why a payload could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SubnegError {
    /// No payload at all where a sub-command byte is required.
    #[error("empty sub-negotiation payload")]
    Empty,
    /// The payload length is not the one the RFC fixes.
    #[error("payload of {got} bytes, expected {expected}")]
    WrongLength {
        /// What the RFC requires.
        expected: usize,
        /// What was sent.
        got: usize,
    },
    /// The payload is shorter than its sub-command needs.
    #[error("payload of {got} bytes, sub-command needs at least {min}")]
    TooShort {
        /// Minimum for this sub-command.
        min: usize,
        /// What was sent.
        got: usize,
    },
    /// LINEMODE SLC data is not a whole number of triples.
    #[error("SLC data of {len} bytes is not a whole number of triples")]
    SlcNotTriples {
        /// Bytes after the SLC byte.
        len: usize,
    },
    /// A TERMINAL-TYPE/SPEED sub-command other than IS or SEND.
    #[error("unknown sub-command {0}")]
    UnknownSubcommand(u8),
}

/// Decodes the payload of `IAC SB <option> ... IAC SE`.
pub fn decode(
    option: TelnetOption,
    payload: &[u8],
    limits: &DecodeLimits,
) -> Result<SubnegDetail, SubnegError> {
    match option {
        TelnetOption::Naws => decode_naws(payload),
        TelnetOption::TerminalType => decode_is_send(payload, limits).map(|d| {
            SubnegDetail::TerminalType(match d {
                Some(name) => TerminalTypeDetail::Is { name },
                None => TerminalTypeDetail::Send,
            })
        }),
        TelnetOption::TerminalSpeed => decode_is_send(payload, limits).map(|d| {
            SubnegDetail::TerminalSpeed(match d {
                Some(speed) => TerminalSpeedDetail::Is { speed },
                None => TerminalSpeedDetail::Send,
            })
        }),
        TelnetOption::NewEnviron => decode_environ(payload, limits).map(SubnegDetail::Environ),
        TelnetOption::Linemode => decode_linemode(payload).map(SubnegDetail::Linemode),
        TelnetOption::Authentication => {
            decode_auth(payload, limits).map(SubnegDetail::Authentication)
        }
        _ => Ok(SubnegDetail::Undecoded { len: payload.len() }),
    }
}

/// RFC 1073 §2 "Command Meanings": `IAC SB NAWS WIDTH[1] WIDTH[0] HEIGHT[1] HEIGHT[0] IAC SE`.
fn decode_naws(payload: &[u8]) -> Result<SubnegDetail, SubnegError> {
    match payload {
        &[w1, w0, h1, h0] => Ok(SubnegDetail::WindowSize {
            width: u16::from_be_bytes([w1, w0]),
            height: u16::from_be_bytes([h1, h0]),
        }),
        _ => Err(SubnegError::WrongLength {
            expected: NAWS_LEN,
            got: payload.len(),
        }),
    }
}

/// `IS <text>` gives `Some(text)`, `SEND` gives `None` (RFC 1091, RFC 1079).
fn decode_is_send(payload: &[u8], limits: &DecodeLimits) -> Result<Option<String>, SubnegError> {
    match payload.split_first() {
        None => Err(SubnegError::Empty),
        Some((&IS, text)) => Ok(Some(capped(text, limits.max_string_bytes))),
        Some((&SEND, _)) => Ok(None),
        Some((&other, _)) => Err(SubnegError::UnknownSubcommand(other)),
    }
}

/// Which part of a NEW-ENVIRON variable bytes are appended to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EnvPart {
    Outside,
    Name,
    Value,
}

/// RFC 1572: `IS|SEND|INFO` then `type name [VALUE value]`..., where ESC
/// quotes the next byte.
fn decode_environ(payload: &[u8], limits: &DecodeLimits) -> Result<EnvironDetail, SubnegError> {
    let (&command, list) = payload.split_first().ok_or(SubnegError::Empty)?;
    let mut detail = EnvironDetail {
        command: match command {
            IS => EnvCommand::Is,
            SEND => EnvCommand::Send,
            INFO => EnvCommand::Info,
            other => EnvCommand::Unknown(other),
        },
        vars: Vec::new(),
        vars_dropped: 0,
        stray_bytes: 0,
    };
    // The variable being read, as raw bytes.
    let mut kind = EnvVarKind::Var;
    let mut name: Vec<u8> = Vec::new();
    let mut value: Option<Vec<u8>> = None;
    let mut part = EnvPart::Outside;
    let mut escaped = false;
    let max = limits.max_string_bytes;
    let flush = |kind: EnvVarKind,
                 name: &mut Vec<u8>,
                 value: &mut Option<Vec<u8>>,
                 detail: &mut EnvironDetail| {
        if detail.vars.len() < limits.max_env_vars {
            detail.vars.push(EnvVar {
                kind,
                name: capped(name, max),
                value: value.as_deref().map(|v| capped(v, max)),
            });
        } else {
            detail.vars_dropped += 1;
        }
        name.clear();
        *value = None;
    };
    for &byte in list {
        if !escaped {
            match byte {
                ENV_VAR | ENV_USERVAR => {
                    if part != EnvPart::Outside {
                        flush(kind, &mut name, &mut value, &mut detail);
                    }
                    kind = if byte == ENV_VAR {
                        EnvVarKind::Var
                    } else {
                        EnvVarKind::UserVar
                    };
                    part = EnvPart::Name;
                    continue;
                }
                ENV_VALUE => {
                    if part == EnvPart::Outside {
                        detail.stray_bytes += 1;
                    } else {
                        part = EnvPart::Value;
                        value.get_or_insert_with(Vec::new);
                    }
                    continue;
                }
                ENV_ESC => {
                    escaped = true;
                    continue;
                }
                _ => {}
            }
        }
        escaped = false;
        match part {
            EnvPart::Outside => detail.stray_bytes += 1,
            // Keep one byte over the bound so `capped_text` sees the cut.
            EnvPart::Name => {
                if name.len() <= max {
                    name.push(byte);
                }
            }
            EnvPart::Value => {
                if let Some(v) = value.as_mut().filter(|v| v.len() <= max) {
                    v.push(byte);
                }
            }
        }
    }
    if part != EnvPart::Outside {
        flush(kind, &mut name, &mut value, &mut detail);
    }
    Ok(detail)
}

/// RFC 1184 §2 "Command Meanings": MODE, FORWARDMASK, SLC.
fn decode_linemode(payload: &[u8]) -> Result<LinemodeDetail, SubnegError> {
    match payload {
        [] => Err(SubnegError::Empty),
        [LM_MODE, rest @ ..] => match rest {
            &[mask] => Ok(LinemodeDetail::Mode { mask }),
            _ => Err(SubnegError::WrongLength {
                expected: 2,
                got: payload.len(),
            }),
        },
        [LM_SLC, rest @ ..] => {
            if rest.len() % SLC_TRIPLE_LEN == 0 {
                Ok(LinemodeDetail::Slc {
                    triples: rest.len() / SLC_TRIPLE_LEN,
                })
            } else {
                Err(SubnegError::SlcNotTriples { len: rest.len() })
            }
        }
        [code, LM_FORWARDMASK, mask @ ..] => match Verb::from_byte(*code) {
            Some(verb) => Ok(LinemodeDetail::ForwardMask {
                verb,
                mask_len: mask.len(),
            }),
            None => Ok(LinemodeDetail::Unknown { code: *code }),
        },
        [code, ..] => Ok(LinemodeDetail::Unknown { code: *code }),
    }
}

/// RFC 2941 §2 "Command Meanings": `IS|REPLY <type> <modifiers> <data>`, `SEND <pairs>`, `NAME <name>`.
fn decode_auth(payload: &[u8], limits: &DecodeLimits) -> Result<AuthDetail, SubnegError> {
    match payload {
        [] => Err(SubnegError::Empty),
        [IS | AUTH_REPLY, auth_type, modifiers, data @ ..] => {
            let (auth_type, modifiers, data_len) = (*auth_type, *modifiers, data.len());
            Ok(if payload.first() == Some(&IS) {
                AuthDetail::Is {
                    auth_type,
                    modifiers,
                    data_len,
                }
            } else {
                AuthDetail::Reply {
                    auth_type,
                    modifiers,
                    data_len,
                }
            })
        }
        [IS | AUTH_REPLY, ..] => Err(SubnegError::TooShort {
            min: 3,
            got: payload.len(),
        }),
        [SEND, pairs @ ..] => Ok(AuthDetail::Send {
            pairs: pairs.len() / 2,
        }),
        [AUTH_NAME, name @ ..] => Ok(AuthDetail::Name {
            name: capped(name, limits.max_string_bytes),
        }),
        [code, ..] => Ok(AuthDetail::Unknown { code: *code }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_env_vars: 4,
        max_string_bytes: 16,
    };

    #[test]
    fn naws_80x24_and_escaped_width() {
        // RFC 1073 §2 "Command Meanings" example: IAC SB NAWS 0 80 0 24 IAC SE is 80 x 24.
        assert_eq!(
            decode(TelnetOption::Naws, &[0, 80, 0, 24], &LIMITS),
            Ok(SubnegDetail::WindowSize {
                width: 80,
                height: 24
            })
        );
        // Width 255 arrives doubled on the wire, undoubled by the tokenizer.
        assert_eq!(
            decode(TelnetOption::Naws, &[1, 255, 0, 50], &LIMITS),
            Ok(SubnegDetail::WindowSize {
                width: 511,
                height: 50
            })
        );
        for bad in [&[][..], &[0, 80, 0], &[0, 80, 0, 24, 0]] {
            assert_eq!(
                decode(TelnetOption::Naws, bad, &LIMITS),
                Err(SubnegError::WrongLength {
                    expected: 4,
                    got: bad.len()
                })
            );
        }
    }

    #[test]
    fn terminal_type_is_and_send() {
        // RFC 1091: IAC SB TERMINAL-TYPE IS "XTERM" IAC SE (seen in the lab capture).
        assert_eq!(
            decode(TelnetOption::TerminalType, b"\x00XTERM", &LIMITS),
            Ok(SubnegDetail::TerminalType(TerminalTypeDetail::Is {
                name: "XTERM".into()
            }))
        );
        assert_eq!(
            decode(TelnetOption::TerminalType, &[1], &LIMITS),
            Ok(SubnegDetail::TerminalType(TerminalTypeDetail::Send))
        );
        assert_eq!(
            decode(TelnetOption::TerminalType, &[], &LIMITS),
            Err(SubnegError::Empty)
        );
        assert_eq!(
            decode(TelnetOption::TerminalType, &[7, b'x'], &LIMITS),
            Err(SubnegError::UnknownSubcommand(7))
        );
        // Capped at 16 bytes.
        assert_eq!(
            decode(
                TelnetOption::TerminalType,
                b"\x00ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                &LIMITS
            ),
            Ok(SubnegDetail::TerminalType(TerminalTypeDetail::Is {
                name: "ABCDEFGHIJKLMNOP".into()
            }))
        );
    }

    #[test]
    fn terminal_speed_is() {
        // inetutils telnet in the lab capture: IAC SB TSPEED IS "0,0" IAC SE.
        assert_eq!(
            decode(TelnetOption::TerminalSpeed, b"\x000,0", &LIMITS),
            Ok(SubnegDetail::TerminalSpeed(TerminalSpeedDetail::Is {
                speed: "0,0".into()
            }))
        );
    }

    #[test]
    fn new_environ_is_user_from_microsoft_telnet() {
        // Microsoft telnet client (MANIFEST: telnet-ms-telnet-logins...):
        // ff fa 27 00 00 55534552 01 61646d696e6973747261746f72 ff f0
        let payload = b"\x00\x00USER\x01administrator";
        let Ok(SubnegDetail::Environ(env)) = decode(TelnetOption::NewEnviron, payload, &LIMITS)
        else {
            panic!("not decoded as NEW-ENVIRON");
        };
        assert_eq!(env.command, EnvCommand::Is);
        assert_eq!(
            env.vars,
            vec![EnvVar {
                kind: EnvVarKind::Var,
                name: "USER".into(),
                value: Some("administrator".into())
            }]
        );
        assert_eq!(env.user(), Some("administrator"));
        assert_eq!((env.vars_dropped, env.stray_bytes), (0, 0));
    }

    #[test]
    fn new_environ_send_uservars_from_microsoft_server() {
        // ff fa 27 01 03 "SFUTLNTVER" 03 "SFUTLNTMODE" ff f0
        let payload = b"\x01\x03SFUTLNTVER\x03SFUTLNTMODE";
        let Ok(SubnegDetail::Environ(env)) = decode(TelnetOption::NewEnviron, payload, &LIMITS)
        else {
            panic!("not decoded as NEW-ENVIRON");
        };
        assert_eq!(env.command, EnvCommand::Send);
        assert_eq!(
            env.vars,
            vec![
                EnvVar {
                    kind: EnvVarKind::UserVar,
                    name: "SFUTLNTVER".into(),
                    value: None
                },
                EnvVar {
                    kind: EnvVarKind::UserVar,
                    name: "SFUTLNTMODE".into(),
                    value: None
                }
            ]
        );
        assert_eq!(env.user(), None);
    }

    #[test]
    fn new_environ_info_esc_empty_value_and_bounds() {
        // RFC 1572: ESC quotes VAR/VALUE/ESC/USERVAR inside names and values.
        let payload = b"\x02\x00US\x02\x01ER\x01v\x02\x02\x03EMPTY\x01\x03NOVAL";
        let Ok(SubnegDetail::Environ(env)) = decode(TelnetOption::NewEnviron, payload, &LIMITS)
        else {
            panic!("not decoded as NEW-ENVIRON");
        };
        assert_eq!(env.command, EnvCommand::Info);
        assert_eq!(
            env.vars,
            vec![
                EnvVar {
                    kind: EnvVarKind::Var,
                    name: "US\u{1}ER".into(),
                    value: Some("v\u{2}".into())
                },
                EnvVar {
                    kind: EnvVarKind::UserVar,
                    name: "EMPTY".into(),
                    value: Some(String::new())
                },
                EnvVar {
                    kind: EnvVarKind::UserVar,
                    name: "NOVAL".into(),
                    value: None
                },
            ]
        );
        // Stray bytes before the first type and a VALUE with no variable.
        let Ok(SubnegDetail::Environ(env)) =
            decode(TelnetOption::NewEnviron, b"\x00ab\x01c\x00X", &LIMITS)
        else {
            panic!("not decoded as NEW-ENVIRON");
        };
        assert_eq!(env.stray_bytes, 4);
        assert_eq!(env.vars.len(), 1);
        // More than max_env_vars (4): the rest is counted.
        let many = b"\x00\x03a\x03b\x03c\x03d\x03e\x03f";
        let Ok(SubnegDetail::Environ(env)) = decode(TelnetOption::NewEnviron, many, &LIMITS) else {
            panic!("not decoded as NEW-ENVIRON");
        };
        assert_eq!((env.vars.len(), env.vars_dropped), (4, 2));
        assert_eq!(
            decode(TelnetOption::NewEnviron, &[], &LIMITS),
            Err(SubnegError::Empty)
        );
    }

    #[test]
    fn linemode_mode_slc_forwardmask() {
        // inetutils telnetd in the lab capture: ff fa 22 01 03 ff f0 (MODE EDIT|TRAPSIG).
        assert_eq!(
            decode(TelnetOption::Linemode, &[1, 3], &LIMITS),
            Ok(SubnegDetail::Linemode(LinemodeDetail::Mode { mask: 3 }))
        );
        // Client SLC reply: 03 then 18 triples (54 bytes) in the lab capture.
        let mut slc = vec![3u8];
        slc.extend(std::iter::repeat_n(0u8, 54));
        assert_eq!(
            decode(TelnetOption::Linemode, &slc, &LIMITS),
            Ok(SubnegDetail::Linemode(LinemodeDetail::Slc { triples: 18 }))
        );
        assert_eq!(
            decode(TelnetOption::Linemode, &[3, 1, 2], &LIMITS),
            Err(SubnegError::SlcNotTriples { len: 2 })
        );
        // RFC 1184 §2 "Command Meanings": IAC SB LINEMODE DO FORWARDMASK mask0 mask1 IAC SE.
        assert_eq!(
            decode(TelnetOption::Linemode, &[253, 2, 0xff, 0x01], &LIMITS),
            Ok(SubnegDetail::Linemode(LinemodeDetail::ForwardMask {
                verb: Verb::Do,
                mask_len: 2
            }))
        );
        assert_eq!(
            decode(TelnetOption::Linemode, &[1], &LIMITS),
            Err(SubnegError::WrongLength {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            decode(TelnetOption::Linemode, &[9], &LIMITS),
            Ok(SubnegDetail::Linemode(LinemodeDetail::Unknown { code: 9 }))
        );
    }

    #[test]
    fn authentication_subcommands() {
        // RFC 2941 §2 "Command Meanings": IAC SB AUTHENTICATION NAME "alice" IAC SE.
        assert_eq!(
            decode(TelnetOption::Authentication, b"\x03alice", &LIMITS),
            Ok(SubnegDetail::Authentication(AuthDetail::Name {
                name: "alice".into()
            }))
        );
        assert_eq!(
            decode(TelnetOption::Authentication, &[1, 2, 2, 5, 0], &LIMITS),
            Ok(SubnegDetail::Authentication(AuthDetail::Send { pairs: 2 }))
        );
        assert_eq!(
            decode(TelnetOption::Authentication, &[0, 2, 1, 9, 9, 9], &LIMITS),
            Ok(SubnegDetail::Authentication(AuthDetail::Is {
                auth_type: 2,
                modifiers: 1,
                data_len: 3
            }))
        );
        // zeek telnet-auth-missing-name.pcap: ff fa 25 02 02 ff f0 (REPLY, no modifiers).
        assert_eq!(
            decode(TelnetOption::Authentication, &[2, 2], &LIMITS),
            Err(SubnegError::TooShort { min: 3, got: 2 })
        );
    }

    #[test]
    fn other_options_report_length_only() {
        assert_eq!(
            decode(TelnetOption::Unknown(0x7b), &[1, 2, 3], &LIMITS),
            Ok(SubnegDetail::Undecoded { len: 3 })
        );
    }

    /// What RFC 1073, 1091, 1079 and 1572 allow `decode` to return for a payload.
    fn check_decoded(option: TelnetOption, payload: &[u8]) {
        let got = decode(option, payload, &LIMITS);
        let context = format!("{option:?} {payload:?}: {got:?}");
        match (option, &got) {
            // RFC 1073 §2: exactly WIDTH[1] WIDTH[0] HEIGHT[1] HEIGHT[0].
            (TelnetOption::Naws, Ok(SubnegDetail::WindowSize { width, height })) => {
                assert_eq!(payload.len(), 4, "{context}");
                assert_eq!(*width, u16::from(payload[0]) * 256 + u16::from(payload[1]));
                assert_eq!(*height, u16::from(payload[2]) * 256 + u16::from(payload[3]));
            }
            (TelnetOption::Naws, Err(_)) => assert_ne!(payload.len(), 4, "{context}"),
            // RFC 1091 / RFC 1079: IS is 0, SEND is 1; nothing else decodes.
            (TelnetOption::TerminalType, Ok(SubnegDetail::TerminalType(d))) => match d {
                TerminalTypeDetail::Is { name } => {
                    assert_eq!(payload.first(), Some(&0), "{context}");
                    assert!(name.len() <= LIMITS.max_string_bytes, "{context}");
                }
                TerminalTypeDetail::Send => assert_eq!(payload.first(), Some(&1), "{context}"),
            },
            (TelnetOption::TerminalSpeed, Ok(SubnegDetail::TerminalSpeed(d))) => match d {
                TerminalSpeedDetail::Is { speed } => {
                    assert_eq!(payload.first(), Some(&0), "{context}");
                    assert!(speed.len() <= LIMITS.max_string_bytes, "{context}");
                }
                TerminalSpeedDetail::Send => assert_eq!(payload.first(), Some(&1), "{context}"),
            },
            (TelnetOption::TerminalType | TelnetOption::TerminalSpeed, Err(_)) => {
                assert!(!matches!(payload.first(), Some(0 | 1)), "{context}");
            }
            // RFC 1572: at most the bounded number of variables is kept.
            (TelnetOption::NewEnviron, Ok(SubnegDetail::Environ(d))) => {
                assert!(d.vars.len() <= LIMITS.max_env_vars, "{context}");
            }
            (TelnetOption::Linemode, Ok(SubnegDetail::Linemode(_)))
            | (TelnetOption::Authentication, Ok(SubnegDetail::Authentication(_)))
            | (
                TelnetOption::NewEnviron | TelnetOption::Linemode | TelnetOption::Authentication,
                Err(_),
            ) => {}
            (TelnetOption::Unknown(_), Ok(SubnegDetail::Undecoded { len })) => {
                assert_eq!(*len, payload.len(), "{context}");
            }
            _ => panic!("a detail of another option: {context}"),
        }
    }

    #[test]
    fn every_short_payload_decodes_to_what_its_option_allows() {
        let options = [
            TelnetOption::Naws,
            TelnetOption::TerminalType,
            TelnetOption::TerminalSpeed,
            TelnetOption::NewEnviron,
            TelnetOption::Linemode,
            TelnetOption::Authentication,
            TelnetOption::Unknown(0x7b),
        ];
        let alphabet = [0u8, 1, 2, 3, 0xff, b'a', 0xc3, 253];
        for option in options {
            for len in 0..=4usize {
                let total = alphabet.len().pow(len as u32);
                for mut n in 0..total {
                    let mut payload = Vec::with_capacity(len);
                    for _ in 0..len {
                        payload.push(alphabet[n % alphabet.len()]);
                        n /= alphabet.len();
                    }
                    check_decoded(option, &payload);
                }
            }
        }
    }
}
