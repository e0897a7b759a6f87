//! HTTP counts for the summary; keys follow tshark's `http` fields.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{Auth, HttpEvent};
use crate::proto::counts::{CodeCounts, NameCounts, NameSet, anomalies_suffix, bump_name};

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

impl HttpCounts {
    pub(super) fn count(&mut self, ev: &HttpEvent) {
        match ev {
            HttpEvent::Request(r) => {
                self.requests += 1;
                self.methods.bump(r.method.as_str());
                if let Auth::Basic { user, .. } = &r.auth {
                    self.basic_auth_users.add(user);
                }
            }
            HttpEvent::Response(r) => {
                self.responses += 1;
                self.status_codes.bump(usize::from(r.status));
            }
            HttpEvent::Anomaly(a) => bump_name(&mut self.anomalies, a.kind.as_str()),
            HttpEvent::Body(_) | HttpEvent::Tunnel(_) => {}
        }
    }
}

impl fmt::Display for HttpCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flows, {} requests, {} responses{}",
            self.flows,
            self.requests,
            self.responses,
            anomalies_suffix(&self.anomalies)
        )
    }
}
