//! Per-protocol message and anomaly counts for the run summary. Keys follow
//! tshark's fields (see `../shared/pcaps/README.md`), so the tests can compare
//! them with tshark directly.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::dispatch::{AppEvent, AppProto};
use super::{coap, http, mqtt, telnet};

/// Distinct names kept in the user-name and path lists of the summary.
pub const MAX_LISTED_NAMES: usize = 64;

/// A bounded, sorted set of names.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct NameSet(BTreeSet<String>);

impl NameSet {
    fn add(&mut self, name: &str) {
        if self.0.len() < MAX_LISTED_NAMES && !self.0.contains(name) {
            self.0.insert(name.to_string());
        }
    }
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K) {
    *map.entry(key).or_insert(0) += 1;
}

/// [`bump`] for a name given as `&str`: allocated only the first time.
fn bump_name(map: &mut BTreeMap<String, u64>, name: &str) {
    match map.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            map.insert(name.to_owned(), 1);
        }
    }
}

/// Counts indexed by a small number (a code or type), without allocation on
/// the hot path; serialised as a map from the number (as text) to its count,
/// leaving out zeros, as tshark's counts are keyed.
#[derive(Clone, Debug)]
pub struct CodeCounts<const N: usize>([u64; N]);

impl<const N: usize> Default for CodeCounts<N> {
    fn default() -> Self {
        CodeCounts([0; N])
    }
}

impl<const N: usize> CodeCounts<N> {
    fn bump(&mut self, code: usize) {
        if let Some(c) = self.0.get_mut(code) {
            *c += 1;
        }
    }
}

impl<const N: usize> Serialize for CodeCounts<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        // Keys in text order, as a BTreeMap<String, _> would give them.
        let mut keys: Vec<(String, u64)> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.to_string(), *n))
            .collect();
        keys.sort();
        for (k, n) in keys {
            map.serialize_entry(&k, &n)?;
        }
        map.end()
    }
}

/// Counts by name for a few distinct names (HTTP methods): found by comparing
/// text, allocated only for a new name, bounded in number.
#[derive(Clone, Debug, Default)]
pub struct NameCounts(Vec<(String, u64)>);

impl NameCounts {
    fn bump(&mut self, name: &str) {
        if let Some((_, c)) = self.0.iter_mut().find(|(n, _)| n == name) {
            *c += 1;
        } else if self.0.len() < MAX_LISTED_NAMES {
            self.0.push((name.to_string(), 1));
        }
    }
}

impl Serialize for NameCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<&str, u64> = self.0.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        sorted.serialize(s)
    }
}

/// `CamelCase` debug names as `snake_case` keys.
pub(crate) fn snake(kind: &impl std::fmt::Debug) -> String {
    let name = format!("{kind:?}");
    let name = name.split(['(', ' ', '{']).next().unwrap_or_default();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HttpCounts {
    pub flows: u64,
    pub requests: u64,
    pub responses: u64,
    pub methods: NameCounts,
    pub status_codes: CodeCounts<1000>,
    pub basic_auth_users: NameSet,
    pub anomalies: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MqttCounts {
    pub flows: u64,
    pub messages: u64,
    pub msgtype: CodeCounts<16>,
    pub connect_versions: CodeCounts<256>,
    pub usernames: NameSet,
    pub connect_with_password: u64,
    pub connack_return_code_v3: CodeCounts<256>,
    pub connack_reason_code_v5: CodeCounts<256>,
    pub anomalies: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CoapCounts {
    pub flows: u64,
    pub messages: u64,
    pub code: CodeCounts<256>,
    #[serde(rename = "type")]
    pub msg_type: CodeCounts<4>,
    pub uri_paths: NameSet,
    pub observe: u64,
    pub block: u64,
    pub anomalies: BTreeMap<String, u64>,
}

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
    pub anomalies: BTreeMap<String, u64>,
}

/// Counts of all four protocols.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProtoCounts {
    pub http: HttpCounts,
    pub mqtt: MqttCounts,
    pub coap: CoapCounts,
    pub telnet: TelnetCounts,
}

impl ProtoCounts {
    pub fn on_detect(&mut self, proto: AppProto) {
        match proto {
            AppProto::Http => self.http.flows += 1,
            AppProto::Mqtt => self.mqtt.flows += 1,
            AppProto::Coap => self.coap.flows += 1,
            AppProto::Telnet => self.telnet.flows += 1,
        }
    }

    pub fn on_event(&mut self, ev: AppEvent<'_>) {
        match ev {
            AppEvent::Http(e) => self.http(e),
            AppEvent::Mqtt(e) => self.mqtt(e),
            AppEvent::Coap(e) => self.coap(e),
            AppEvent::Telnet(e) => self.telnet(e),
        }
    }

    /// Anomalies of every protocol.
    pub fn anomalies_total(&self) -> u64 {
        [
            &self.http.anomalies,
            &self.mqtt.anomalies,
            &self.coap.anomalies,
            &self.telnet.anomalies,
        ]
        .iter()
        .flat_map(|m| m.values())
        .sum()
    }

    fn http(&mut self, ev: &http::HttpEvent) {
        let c = &mut self.http;
        match ev {
            http::HttpEvent::Request(r) => {
                c.requests += 1;
                c.methods.bump(r.method.as_str());
                if let http::Auth::Basic { user, .. } = &r.auth {
                    c.basic_auth_users.add(user);
                }
            }
            http::HttpEvent::Response(r) => {
                c.responses += 1;
                c.status_codes.bump(usize::from(r.status));
            }
            http::HttpEvent::Anomaly(a) => bump(&mut c.anomalies, snake(&a.kind)),
            http::HttpEvent::Body(_) | http::HttpEvent::Tunnel(_) => {}
        }
    }

    fn mqtt(&mut self, ev: &mqtt::MqttEvent) {
        let c = &mut self.mqtt;
        if let Some(t) = ev.msg_type() {
            c.messages += 1;
            c.msgtype.bump(usize::from(t));
        }
        match ev {
            mqtt::MqttEvent::Connect(connect) => {
                c.connect_versions.bump(usize::from(connect.protocol_level));
                if let Some(user) = &connect.username {
                    c.usernames.add(user);
                }
                if connect.has_password {
                    c.connect_with_password += 1;
                }
            }
            mqtt::MqttEvent::Connack(ack) => match ack.code {
                mqtt::ConnackCode::V3(_) => {
                    c.connack_return_code_v3.bump(usize::from(ack.code.raw()))
                }
                mqtt::ConnackCode::V5(_) => {
                    c.connack_reason_code_v5.bump(usize::from(ack.code.raw()))
                }
            },
            mqtt::MqttEvent::Anomaly(a) => bump_name(&mut c.anomalies, a.kind.as_str()),
            _ => {}
        }
    }

    fn coap(&mut self, ev: &coap::CoapEvent) {
        let c = &mut self.coap;
        match ev {
            coap::CoapEvent::Message(m) => {
                c.messages += 1;
                c.code.bump(usize::from(m.code.number()));
                c.msg_type.bump(m.msg_type as usize);
                if let Some(path) = &m.uri_path {
                    c.uri_paths.add(path);
                }
                if m.observe.is_some() {
                    c.observe += 1;
                }
                if m.block1.is_some() || m.block2.is_some() {
                    c.block += 1;
                }
            }
            coap::CoapEvent::Anomaly(a) => bump_name(&mut c.anomalies, a.kind.as_str()),
            _ => {}
        }
    }

    fn telnet(&mut self, ev: &telnet::TelnetEvent) {
        let c = &mut self.telnet;
        match ev {
            telnet::TelnetEvent::Negotiation { .. } | telnet::TelnetEvent::Command { .. } => {
                c.iac_commands += 1
            }
            // IAC SB ... IAC SE: two commands, as tshark's telnet.cmd counts them.
            telnet::TelnetEvent::Subnegotiation { .. } => c.iac_commands += 2,
            telnet::TelnetEvent::LoginAttempt(login) => {
                match login.outcome {
                    telnet::LoginOutcome::Success => c.logins.success += 1,
                    telnet::LoginOutcome::Failure => c.logins.failure += 1,
                    telnet::LoginOutcome::Unknown => c.logins.unknown += 1,
                }
                if let Some(user) = &login.user {
                    c.usernames.add(user);
                }
            }
            telnet::TelnetEvent::Anomaly(a) => {
                // An SB that never met its SE, and an SE without SB, are still
                // one IAC command each on the wire.
                use telnet::{AnomalyKind, TokenError};
                if matches!(
                    a.kind,
                    AnomalyKind::Token(
                        TokenError::SubnegInterrupted { .. }
                            | TokenError::SubnegUnterminated { .. }
                            | TokenError::SeWithoutSb
                    )
                ) {
                    c.iac_commands += 1;
                }
                bump(&mut c.anomalies, snake(&a.kind))
            }
            telnet::TelnetEvent::Data { .. } | telnet::TelnetEvent::ShellCommand { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Kind {
        InvalidRequestLine,
    }

    #[test]
    fn debug_names_become_snake_case_keys() {
        assert_eq!(snake(&Kind::InvalidRequestLine), "invalid_request_line");
        assert_eq!(snake(&Some(3)), "some");
    }

    #[test]
    fn name_sets_are_bounded() {
        let mut s = NameSet::default();
        for i in 0..(MAX_LISTED_NAMES + 10) {
            s.add(&format!("user{i}"));
        }
        assert_eq!(s.0.len(), MAX_LISTED_NAMES);
    }
}
