//! CoAP counts for the summary; keys follow tshark's `coap` fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::CoapEvent;
use crate::proto::counts::{CodeCounts, NameSet, anomalies_suffix, bump_name};

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

impl CoapCounts {
    pub(super) fn count(&mut self, ev: &CoapEvent) {
        match ev {
            CoapEvent::Message(m) => {
                self.messages += 1;
                self.code.bump(usize::from(m.code.number()));
                self.msg_type.bump(m.msg_type as usize);
                if let Some(path) = &m.uri_path {
                    self.uri_paths.add(path);
                }
                if m.observe.is_some() {
                    self.observe += 1;
                }
                if m.block1.is_some() || m.block2.is_some() {
                    self.block += 1;
                }
            }
            CoapEvent::Anomaly(a) => bump_name(&mut self.anomalies, a.kind.as_str()),
            _ => {}
        }
    }
}

impl fmt::Display for CoapCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flows, {} messages, {} observe, {} block-wise{}",
            self.flows,
            self.messages,
            self.observe,
            self.block,
            anomalies_suffix(&self.anomalies)
        )
    }
}
