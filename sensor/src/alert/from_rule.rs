//! A rule match as an alert: the event's endpoints (client → server), the
//! rule's identity and references, the evidence (never a password) and the
//! dedupe key the rule's `alert_per` asks for.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Value as Json};

use super::{AlertHead, AlertInput, AlertSource, DedupeKey, HeadKey};
use crate::detect::rules::{AlertPer, RuleMatch};

/// The endpoints a rule's `alert_per` keeps of its match: the source, the
/// target or both.
fn sides(m: &RuleMatch) -> (Option<IpAddr>, Option<IpAddr>) {
    let ev = &m.event;
    match m.rule.alert_per {
        AlertPer::SourceAndTarget => (Some(ev.src.0), Some(ev.dst.0)),
        AlertPer::Target => (None, Some(ev.dst.0)),
        AlertPer::Source => (Some(ev.src.0), None),
    }
}

/// The name of a rule match's finding for `spanwatch learn`
/// ([`AlertInput::key`]): `rule:<id>:<source>:<target>`, `*` for an
/// endpoint the rule's `alert_per` leaves out.
pub fn rule_key(m: &RuleMatch) -> String {
    let (source, target) = sides(m);
    let side = |ip: Option<IpAddr>| ip.map_or("*".to_string(), |a| a.to_string());
    format!("rule:{}:{}:{}", m.rule.id, side(source), side(target))
}

impl HeadKey<'_> {
    /// The key's text: an alert's own, or a rule match's [`rule_key`].
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            HeadKey::Made(key) => Cow::Borrowed(key),
            HeadKey::Rule(m) => Cow::Owned(rule_key(m)),
        }
    }
}

/// The head of the alert [`AlertInput::from_match`] makes of `m`.
pub fn rule_head(m: &RuleMatch) -> AlertHead<'_> {
    let (source, target) = sides(m);
    AlertHead {
        key: HeadKey::Rule(m),
        dedupe_key: DedupeKey {
            signature_id: m.rule.id,
            source,
            target,
            episode: 0,
        },
        ts: m.event.ts,
        src: m.event.src.0,
        dst: m.event.dst,
        transport: m.event.transport,
        device_mac: m.event.src_mac,
        signature_id: m.rule.id,
        signature: &m.rule.name,
        severity: m.rule.severity.as_u8(),
        source: AlertSource::Rule,
    }
}

impl AlertInput {
    /// The alert of a rule match whose [`rule_key`] is `key`.
    pub fn from_match(m: &RuleMatch, key: String) -> AlertInput {
        let ev = &m.event;
        let rule = &m.rule;
        let mut evidence = Map::new();
        if let Some(n) = m.evidence.count {
            evidence.insert("count".into(), Json::from(n));
        }
        if let Some(n) = m.evidence.distinct {
            evidence.insert("distinct".into(), Json::from(n));
        }
        if let Some(n) = m.evidence.sources {
            evidence.insert("sources".into(), Json::from(n));
        }
        if let Some(n) = m.evidence.window_secs {
            evidence.insert("window_secs".into(), Json::from(n));
        }
        if let Some(u) = &m.evidence.user {
            evidence.insert("user".into(), Json::from(u.as_str()));
        }
        for (k, v) in &m.evidence.detail {
            evidence.insert(k.clone(), Json::from(v.as_str()));
        }
        evidence.insert("event".into(), Json::from(ev.kind));
        let app_proto = match ev.proto {
            "tcp" | "udp" => None,
            other => Some(other),
        };
        let (source, target) = sides(m);
        AlertInput {
            key,
            ts: ev.ts,
            src: ev.src,
            dst: ev.dst,
            transport: ev.transport,
            app_proto,
            flow_id: ev.flow_id,
            signature_id: rule.id,
            signature: rule.name.clone(),
            category: rule.category.clone(),
            severity: rule.severity.as_u8(),
            source: AlertSource::Rule,
            references: rule.references.iter().map(|r| r.to_string()).collect(),
            device_mac: ev.src_mac,
            evidence,
            score: None,
            threshold: None,
            top_features: Vec::new(),
            dedupe_key: DedupeKey {
                signature_id: rule.id,
                source,
                target,
                episode: 0,
            },
        }
    }
}
