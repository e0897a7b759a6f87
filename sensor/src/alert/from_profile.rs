//! A profile detection as an alert: the device, what its profile says it
//! does not do, and the peers or services that are new.

use serde_json::{Map, Value as Json};

use super::{AlertInput, AlertSource, DedupeKey};
use crate::detect::profile::{ProfileFinding, ProfileKind};
use crate::device::inventory::MacText;

/// Signature, name, category, severity and reference of each detection.
fn signature(kind: &ProfileKind) -> (u32, &'static str, &'static str, u8, &'static str) {
    match kind {
        ProfileKind::NewPeer { .. } => (
            9_300_001,
            "SPANWATCH New peer for a device with a stable set of peers",
            "Device Behaviour Anomaly",
            3,
            "new-peer",
        ),
        ProfileKind::NewService { .. } => (
            9_300_002,
            "SPANWATCH New service for a device with a stable set of services",
            "Device Behaviour Anomaly",
            3,
            "new-service",
        ),
        ProfileKind::Silent { .. } => (
            9_300_003,
            "SPANWATCH Device silent for longer than its regular behaviour allows",
            "Device Availability",
            3,
            "silent",
        ),
        ProfileKind::LateralMovement { .. } => (
            9_300_004,
            "SPANWATCH Lateral movement: a device with few peers connects to many new hosts",
            "Attempted Administrator Privilege Gain",
            1,
            "lateral-movement",
        ),
        ProfileKind::DeniedZone { .. } => (
            9_300_005,
            "SPANWATCH Flow between zones the zone policy denies",
            "Policy Violation",
            2,
            "denied-zone",
        ),
        ProfileKind::NewDevice => (
            9_300_006,
            "SPANWATCH New device on the segment",
            "Device Behaviour Anomaly",
            2,
            "new-device",
        ),
    }
}

impl From<&ProfileFinding> for AlertInput {
    fn from(f: &ProfileFinding) -> AlertInput {
        let (id, name, category, severity, short) = signature(&f.kind);
        let ip =
            f.ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut evidence = Map::new();
        let list = |v: Vec<String>| Json::from(v);
        let mut target = ip;
        match &f.kind {
            ProfileKind::NewPeer { peers } => {
                evidence.insert(
                    "new_peers".into(),
                    list(peers.iter().map(|p| p.to_string()).collect()),
                );
            }
            ProfileKind::NewService { services } => {
                let shown = services
                    .iter()
                    .map(|s| {
                        format!(
                            "{}/{}",
                            if s.transport == 17 { "udp" } else { "tcp" },
                            s.port
                        )
                    })
                    .collect();
                evidence.insert("new_services".into(), list(shown));
            }
            ProfileKind::LateralMovement {
                new_peers,
                known_peers,
            } => {
                evidence.insert(
                    "new_peers".into(),
                    list(new_peers.iter().map(|p| p.to_string()).collect()),
                );
                evidence.insert("known_peers".into(), Json::from(*known_peers));
            }
            ProfileKind::Silent {
                silent_secs,
                allowed_secs,
            } => {
                evidence.insert("silent_secs".into(), Json::from(*silent_secs));
                evidence.insert("allowed_secs".into(), Json::from(*allowed_secs));
            }
            ProfileKind::DeniedZone { peer, from, to } => {
                evidence.insert("from_zone".into(), Json::from(from.as_str()));
                evidence.insert("to_zone".into(), Json::from(to.as_str()));
                target = *peer;
            }
            ProfileKind::NewDevice => {}
        }
        AlertInput {
            key: format!("profile:{short}:{}", MacText(f.device)),
            ts: f.ts,
            src: (ip, 0),
            dst: (target, 0),
            transport: 0,
            app_proto: None,
            flow_id: 0,
            signature_id: id,
            signature: name.to_string(),
            category: category.to_string(),
            severity,
            source: AlertSource::Profile,
            references: vec!["ETSI-EN-303-645:5.10-1".into()],
            device_mac: Some(f.device),
            evidence,
            score: None,
            threshold: None,
            top_features: Vec::new(),
            dedupe_key: DedupeKey::pair(id, ip, target),
        }
    }
}
