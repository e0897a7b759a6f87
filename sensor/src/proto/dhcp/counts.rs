//! DHCP counts for the summary; `message_type` follows tshark's
//! `dhcp.option.dhcp`, `hostnames` its `dhcp.option.hostname`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::DhcpEvent;
use crate::proto::counts::{CodeCounts, NameSet, anomalies_suffix, bump_name};

#[derive(Clone, Debug, Default, Serialize)]
pub struct DhcpCounts {
    pub flows: u64,
    /// Datagrams with a readable BOOTP header.
    pub messages: u64,
    /// Messages by option 53 value (1 DISCOVER ... 8 INFORM).
    pub message_type: CodeCounts<256>,
    /// Distinct host names (option 12).
    pub hostnames: NameSet,
    /// Distinct vendor classes (option 60).
    pub vendor_classes: NameSet,
    pub anomalies: BTreeMap<String, u64>,
}

impl DhcpCounts {
    pub(super) fn count(&mut self, ev: &DhcpEvent) {
        match ev {
            DhcpEvent::Message(m) => {
                self.messages += 1;
                if let Some(t) = m.message_type {
                    self.message_type.bump(usize::from(t.number()));
                }
                if let Some(h) = &m.hostname {
                    self.hostnames.add(h);
                }
                if let Some(v) = &m.vendor_class {
                    self.vendor_classes.add(v);
                }
            }
            DhcpEvent::Anomaly(a) => bump_name(&mut self.anomalies, a.kind.as_str()),
        }
    }
}

impl fmt::Display for DhcpCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flows, {} messages{}",
            self.flows,
            self.messages,
            anomalies_suffix(&self.anomalies)
        )
    }
}
