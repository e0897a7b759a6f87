//! A model finding as an alert: the device (source and target are the
//! device), the score and threshold, and the features that explain it.

use serde_json::{Map, Value as Json};

use super::{AlertInput, AlertSource, DedupeKey};
use crate::detect::model::ModelFinding;

/// The model's signature.
pub const MODEL_SIGNATURE_ID: u32 = 9_200_001;
pub const MODEL_SIGNATURE: &str = "SPANWATCH Device behaviour unlike its normal (model)";
pub const MODEL_CATEGORY: &str = "Device Behaviour Anomaly";

impl From<&ModelFinding> for AlertInput {
    fn from(f: &ModelFinding) -> AlertInput {
        let ip =
            f.ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut evidence = Map::new();
        evidence.insert("cluster".into(), Json::from(f.score.cluster));
        evidence.insert(
            "window_start".into(),
            Json::from(f.window_start.to_string()),
        );
        evidence.insert("window_end".into(), Json::from(f.window_end.to_string()));
        evidence.insert("model".into(), Json::from(f.model_id.as_str()));
        if f.threshold > f.score.threshold {
            evidence.insert("device_threshold".into(), Json::from(f.threshold));
        }
        let top_features = f
            .deviations
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Json::Null))
            .collect();
        AlertInput {
            key: format!(
                "model:{}:{:.3}",
                crate::device::inventory::MacText(f.device),
                f.score.score
            ),
            ts: f.window_end,
            src: (ip, 0),
            dst: (ip, 0),
            transport: 0,
            app_proto: None,
            flow_id: 0,
            signature_id: MODEL_SIGNATURE_ID,
            signature: MODEL_SIGNATURE.to_string(),
            category: MODEL_CATEGORY.to_string(),
            severity: f.severity,
            source: AlertSource::Model,
            // ETSI EN 303 645 provision 5.10-1: telemetry examined for security
            // anomalies.
            references: vec!["ETSI-EN-303-645:5.10-1".into()],
            device_mac: Some(f.device),
            evidence,
            score: Some((f.score.score * 1000.0).round() / 1000.0),
            threshold: Some((f.threshold * 1000.0).round() / 1000.0),
            top_features,
            dedupe_key: DedupeKey {
                episode: f.finding_id,
                ..DedupeKey::pair(MODEL_SIGNATURE_ID, ip, ip)
            },
        }
    }
}
