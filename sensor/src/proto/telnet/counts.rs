//! Telnet counts for the summary; `iac_commands` follows tshark's
//! `telnet.cmd`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{AnomalyKind, LoginOutcome, TelnetEvent, TokenError};
use crate::proto::counts::{NameSet, anomalies_suffix, bump_name};

#[derive(Clone, Debug, Default, Serialize)]
pub struct TelnetLogins {
    pub success: u64,
    pub failure: u64,
    pub unknown: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TelnetCounts {
    pub flows: u64,
    /// IAC commands: negotiations, single commands, and SB and SE of each
    /// sub-negotiation.
    pub iac_commands: u64,
    pub logins: TelnetLogins,
    pub usernames: NameSet,
    /// Connections whose server printed a banner before its first prompt.
    pub banners: u64,
    pub anomalies: BTreeMap<String, u64>,
}

impl TelnetCounts {
    pub(super) fn count(&mut self, ev: &TelnetEvent) {
        match ev {
            TelnetEvent::Negotiation { .. } | TelnetEvent::Command { .. } => self.iac_commands += 1,
            // IAC SB ... IAC SE: two commands, as tshark's telnet.cmd counts them.
            TelnetEvent::Subnegotiation { .. } => self.iac_commands += 2,
            TelnetEvent::LoginAttempt(login) => {
                match login.outcome {
                    LoginOutcome::Success => self.logins.success += 1,
                    LoginOutcome::Failure => self.logins.failure += 1,
                    LoginOutcome::Unknown => self.logins.unknown += 1,
                }
                if let Some(user) = &login.user {
                    self.usernames.add(user);
                }
            }
            TelnetEvent::Anomaly(a) => {
                // An SB that never met its SE, and an SE without SB, are still
                // one IAC command each on the wire.
                if matches!(
                    a.kind,
                    AnomalyKind::Token(
                        TokenError::SubnegInterrupted { .. }
                            | TokenError::SubnegUnterminated { .. }
                            | TokenError::SeWithoutSb
                    )
                ) {
                    self.iac_commands += 1;
                }
                bump_name(&mut self.anomalies, a.kind.as_str())
            }
            TelnetEvent::Banner { .. } => self.banners += 1,
            TelnetEvent::Data { .. } | TelnetEvent::ShellCommand { .. } => {}
        }
    }
}

impl fmt::Display for TelnetCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flows, logins: {} succeeded, {} failed, {} undecided{}",
            self.flows,
            self.logins.success,
            self.logins.failure,
            self.logins.unknown,
            anomalies_suffix(&self.anomalies)
        )
    }
}
