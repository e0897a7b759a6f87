//! MQTT counts for the summary; keys follow tshark's `mqtt` fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{ConnackCode, MqttEvent};
use crate::proto::counts::{CodeCounts, NameSet, anomalies_suffix, bump_name};

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

impl MqttCounts {
    pub(super) fn count(&mut self, ev: &MqttEvent) {
        if let Some(t) = ev.msg_type() {
            self.messages += 1;
            self.msgtype.bump(usize::from(t));
        }
        match ev {
            MqttEvent::Connect(connect) => {
                self.connect_versions
                    .bump(usize::from(connect.protocol_level));
                if let Some(user) = &connect.username {
                    self.usernames.add(user);
                }
                if connect.has_password {
                    self.connect_with_password += 1;
                }
            }
            MqttEvent::Connack(ack) => match ack.code {
                ConnackCode::V3(_) => self
                    .connack_return_code_v3
                    .bump(usize::from(ack.code.raw())),
                ConnackCode::V5(_) => self
                    .connack_reason_code_v5
                    .bump(usize::from(ack.code.raw())),
            },
            MqttEvent::Anomaly(a) => bump_name(&mut self.anomalies, a.kind.as_str()),
            _ => {}
        }
    }
}

impl fmt::Display for MqttCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flows, {} messages, {} CONNECT with password{}",
            self.flows,
            self.messages,
            self.connect_with_password,
            anomalies_suffix(&self.anomalies)
        )
    }
}
