//! DHCP counts for the summary; `message_type` follows tshark's
//! `dhcp.option.dhcp`, `hostnames` its `dhcp.option.hostname`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{DhcpEvent, MessageType};
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
    /// "2 flows, 5 messages (2 DISCOVER, 1 OFFER, 1 REQUEST, 1 ACK)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} flows, {} messages", self.flows, self.messages)?;
        let types: Vec<String> = self
            .message_type
            .nonzero()
            .map(|(t, n)| {
                let t = MessageType::from_u8(u8::try_from(t).unwrap_or(u8::MAX));
                format!("{n} {t}")
            })
            .collect();
        if !types.is_empty() {
            write!(f, " ({})", types.join(", "))?;
        }
        f.write_str(&anomalies_suffix(&self.anomalies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::flow::Direction;
    use crate::proto::dhcp::parser::tests::{Builder, MAC};
    use crate::proto::dhcp::{DhcpLimits, DhcpSession};

    #[test]
    fn summary_line_lists_messages_by_type() {
        let mut session = DhcpSession::new(DhcpLimits::default());
        let mut counts = DhcpCounts {
            flows: 2,
            ..DhcpCounts::default()
        };
        let mut out = Vec::new();
        for (op, t) in [(1, 1), (2, 2), (1, 3), (2, 5), (1, 1)] {
            let d = Builder::new(op, 1, MAC).options(&[53, 1, t, 255]);
            session.on_datagram(Timestamp(0), Direction::ToServer, &d, &mut out);
        }
        session.on_datagram(Timestamp(0), Direction::ToServer, &[1, 1], &mut out);
        for ev in &out {
            counts.count(ev);
        }
        assert_eq!(
            counts.to_string(),
            "2 flows, 5 messages (2 DISCOVER, 1 OFFER, 1 REQUEST, 1 ACK); anomalies: truncated_header 1"
        );
        let json = serde_json::to_value(&counts).unwrap();
        assert_eq!(
            json["message_type"],
            serde_json::json!({"1": 2, "2": 1, "3": 1, "5": 1})
        );
    }
}
