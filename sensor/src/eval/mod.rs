//! `spanwatch eval`: replays a labelled capture and judges the alerts
//! against its attack phases (`labels.csv` of the lab generator): for each
//! phase whether it was detected with the right device, how soon, by which
//! alert and source; outside the phases, the false alerts per severity and
//! per device-hour.
//!
//! An alert belongs to a phase when it falls within the phase's time span
//! (from [`LEAD_SECS`] before its start to [`TRAIL_SECS`] after its end) and
//! one of its endpoints is the phase's attacker or one of its targets. A
//! phase is detected when such an alert names the attacker (for a phase
//! without an attacker, such as a device going silent, its target) and is
//! not a policy finding (category "Policy Violation": cleartext logins and
//! the like say how the network is run, not that it is attacked).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::alert::{AlertSource, EveLine, Sink, SinkStats};
use crate::capture::Timestamp;
use crate::labels::{Labels, LabelsError, Phase};

#[cfg(feature = "train")]
pub mod timeline;

/// An alert up to this long before a phase's start still belongs to it
/// (the labels' start is taken just before the tool starts).
pub const LEAD_SECS: f64 = 2.0;
/// ...and this long after its end (windows close up to a window later).
pub const TRAIL_SECS: f64 = 15.0;

/// Keeps every alert emitted (the eval reads them all).
#[derive(Clone, Default)]
pub struct Collect(pub Arc<Mutex<Vec<Alert>>>);

/// What the eval needs of an alert.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub signature_id: u32,
    pub signature: String,
    pub category: String,
    pub severity: u8,
    pub source: AlertSource,
}

/// The category of policy findings, which do not detect an attack.
pub const POLICY_CATEGORY: &str = "Policy Violation";

impl Sink for Collect {
    fn name(&self) -> &'static str {
        "eval"
    }

    fn write(&mut self, alert: &EveLine) -> std::io::Result<()> {
        let r = &alert.record;
        let ts = Timestamp::parse_rfc3339(&r.timestamp.replace("+0000", "Z"))
            .ok_or_else(|| std::io::Error::other("alert timestamp unreadable"))?;
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("eval collector poisoned"))?
            .push(Alert {
                ts,
                src: r.src_ip,
                dst: r.dest_ip,
                signature_id: r.alert.signature_id,
                signature: r.alert.signature.clone(),
                category: r.alert.category.clone(),
                severity: r.alert.severity,
                source: r.spanwatch.source,
            });
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }
}

/// Reads the phases of a lab `labels.csv` (see [`crate::labels`]).
pub fn read_labels(path: &Path) -> Result<Vec<Phase>, LabelsError> {
    Ok(Labels::load(path)?.phases().to_vec())
}

/// The first alert of a phase.
#[derive(Clone, Debug, Serialize)]
pub struct FirstAlert {
    pub signature_id: u32,
    pub signature: String,
    pub source: AlertSource,
    pub severity: u8,
    pub time: String,
}

/// How one phase went.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    pub phase: String,
    pub start: String,
    pub end: String,
    pub detected: bool,
    /// Seconds from the phase's start to its first alert naming the attacker.
    pub time_to_detect_secs: Option<f64>,
    pub first_alert: Option<FirstAlert>,
    /// Alerts of the phase naming the attacker, by source.
    pub rule_alerts: usize,
    pub model_alerts: usize,
    pub profile_alerts: usize,
    /// Alerts of the phase about its targets only.
    pub target_alerts: usize,
}

/// Alerts outside every phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FalseAlerts {
    pub total: usize,
    /// By severity: high, medium, low.
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    /// Devices of the capture and its length, in hours.
    pub devices: usize,
    pub hours: f64,
    /// Medium-or-high false alerts per device-hour.
    pub medium_or_high_per_device_hour: f64,
    /// Each false alert: time, signature, source, severity, endpoints.
    pub alerts: Vec<Alert>,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub phases: Vec<PhaseResult>,
    pub detected: usize,
    pub false_alerts: FalseAlerts,
}

/// Judges `alerts` against `phases`; `devices` and the capture's span give
/// the device-hours.
pub fn evaluate(
    phases: &[Phase],
    alerts: &[Alert],
    devices: usize,
    span: (Timestamp, Timestamp),
) -> Evaluation {
    let lead = (LEAD_SECS * 1e9) as i64;
    let trail = (TRAIL_SECS * 1e9) as i64;
    let in_span = |p: &Phase, a: &Alert| {
        a.ts.0 >= p.start.0.saturating_sub(lead) && a.ts.0 <= p.end.0.saturating_add(trail)
    };
    let involved =
        |p: &Phase, ip: IpAddr| p.attacker == Some(ip) || p.targets.iter().any(|t| t.contains(ip));
    let names_culprit = |p: &Phase, a: &Alert| {
        a.category != POLICY_CATEGORY
            && match p.attacker {
                Some(atk) => a.src == atk || a.dst == atk,
                None => p
                    .targets
                    .iter()
                    .any(|t| t.contains(a.src) || t.contains(a.dst)),
            }
    };
    let mut claimed: BTreeSet<usize> = BTreeSet::new();
    let mut results = Vec::new();
    for p in phases {
        let mut mine: Vec<(usize, &Alert)> = alerts
            .iter()
            .enumerate()
            .filter(|(_, a)| in_span(p, a) && (involved(p, a.src) || involved(p, a.dst)))
            .collect();
        mine.sort_by_key(|(_, a)| a.ts);
        claimed.extend(mine.iter().map(|(i, _)| *i));
        let culprit: Vec<&Alert> = mine
            .iter()
            .map(|(_, a)| *a)
            .filter(|a| names_culprit(p, a))
            .collect();
        let first = culprit.first();
        results.push(PhaseResult {
            phase: p.name.clone(),
            start: p.start.to_string(),
            end: p.end.to_string(),
            detected: first.is_some(),
            time_to_detect_secs: first
                .map(|a| (a.ts.0.saturating_sub(p.start.0) as f64 / 1e9 * 1000.0).round() / 1000.0),
            first_alert: first.map(|a| FirstAlert {
                signature_id: a.signature_id,
                signature: a.signature.clone(),
                source: a.source,
                severity: a.severity,
                time: a.ts.to_string(),
            }),
            rule_alerts: culprit
                .iter()
                .filter(|a| a.source == AlertSource::Rule)
                .count(),
            model_alerts: culprit
                .iter()
                .filter(|a| a.source == AlertSource::Model)
                .count(),
            profile_alerts: culprit
                .iter()
                .filter(|a| a.source == AlertSource::Profile)
                .count(),
            target_alerts: mine.len() - culprit.len(),
        });
    }
    let false_list: Vec<Alert> = alerts
        .iter()
        .enumerate()
        .filter(|(i, _)| !claimed.contains(i))
        .map(|(_, a)| a.clone())
        .collect();
    let hours = span.1.nanos_since(span.0) as f64 / 3.6e12;
    let count = |sev: u8| false_list.iter().filter(|a| a.severity == sev).count();
    let (high, medium, low) = (count(1), count(2), count(3));
    let device_hours = devices as f64 * hours;
    Evaluation {
        detected: results.iter().filter(|r| r.detected).count(),
        phases: results,
        false_alerts: FalseAlerts {
            total: false_list.len(),
            high,
            medium,
            low,
            devices,
            hours: (hours * 10_000.0).round() / 10_000.0,
            medium_or_high_per_device_hour: if device_hours > 0.0 {
                ((high + medium) as f64 / device_hours * 1000.0).round() / 1000.0
            } else {
                0.0
            },
            alerts: false_list,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// A target that is one address.
    fn host(s: &str) -> crate::device::zone::Cidr {
        format!("{s}/32").parse().expect("host address")
    }

    fn at(secs: f64) -> Timestamp {
        Timestamp((secs * 1e9) as i64)
    }

    fn alert(secs: f64, src: &str, dst: &str, source: AlertSource, severity: u8) -> Alert {
        Alert {
            ts: at(secs),
            src: ip(src),
            dst: ip(dst),
            signature_id: 1,
            signature: "x".into(),
            category: "Test".into(),
            severity,
            source,
        }
    }

    #[test]
    fn labels_with_quotes_subnets_and_no_attacker_are_read() {
        let dir = std::env::temp_dir().join(format!("spanwatch-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("labels.csv");
        std::fs::write(
            &path,
            "start_epoch,end_epoch,phase,attacker_ip,target_ips,tool,notes\n\
             100.0,110.5,recon_nmap_syn_scan,10.0.0.66,\"10.0.0.0/24\",\"nmap\",\"a, \"\"b\"\"\"\n\
             200,206,device_silent,,\"10.0.0.21\",\"none\",\"\"\n",
        )
        .expect("write");
        let phases = read_labels(&path).expect("valid");
        assert_eq!(phases.len(), 2);
        assert_eq!(phases[0].attacker, Some(ip("10.0.0.66")));
        assert!(phases[0].targets[0].contains(ip("10.0.0.200")));
        assert_eq!(phases[1].attacker, None);
        assert_eq!(phases[1].end, at(206.0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn labels_with_times_out_of_range_are_refused_by_line() {
        let dir = std::env::temp_dir().join(format!("spanwatch-eval-range-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("labels.csv");
        for bad in ["-1e30", "1e30", "NaN", "inf"] {
            std::fs::write(
                &path,
                format!(
                    "start_epoch,end_epoch,phase,attacker_ip,target_ips\n\
                     100,110,ok,,10.0.0.1\n\
                     {bad},110,bad,,10.0.0.1\n"
                ),
            )
            .expect("write");
            let e = read_labels(&path).expect_err(bad);
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.reason.contains("is not a Unix time"), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn alerts_are_judged_by_time_and_device() {
        let phases = vec![
            Phase {
                name: "mqtt_bruteforce".into(),
                start: at(100.0),
                end: at(110.0),
                attacker: Some(ip("10.0.0.66")),
                targets: vec![host("10.0.0.10")],
            },
            Phase {
                name: "device_silent".into(),
                start: at(200.0),
                end: at(206.0),
                attacker: None,
                targets: vec![host("10.0.0.21")],
            },
            Phase {
                name: "http_firmware_download".into(),
                start: at(300.0),
                end: at(301.0),
                attacker: Some(ip("10.0.0.66")),
                targets: vec![host("10.0.0.25")],
            },
        ];
        let alerts = vec![
            // About the broker only: the phase's, but not a detection.
            alert(101.0, "10.0.0.10", "10.0.0.10", AlertSource::Model, 2),
            alert(104.5, "10.0.0.66", "10.0.0.10", AlertSource::Rule, 1),
            alert(112.0, "10.0.0.10", "10.0.0.66", AlertSource::Model, 2),
            alert(203.0, "10.0.0.21", "10.0.0.21", AlertSource::Model, 3),
            // Outside every phase (and 300 s is too late for the first).
            alert(150.0, "10.0.0.5", "10.0.0.6", AlertSource::Rule, 2),
            alert(400.0, "10.0.0.66", "10.0.0.25", AlertSource::Rule, 1),
        ];
        let e = evaluate(&phases, &alerts, 10, (at(0.0), at(3600.0)));
        assert_eq!(e.detected, 2);
        let bf = &e.phases[0];
        assert!(bf.detected);
        assert_eq!(bf.time_to_detect_secs, Some(4.5));
        assert_eq!(
            (bf.rule_alerts, bf.model_alerts, bf.target_alerts),
            (1, 1, 1)
        );
        assert!(e.phases[1].detected);
        assert!(!e.phases[2].detected);
        assert_eq!(e.false_alerts.total, 2);
        assert_eq!((e.false_alerts.high, e.false_alerts.medium), (1, 1));
        // Two medium-or-high in 10 devices × 1 hour.
        assert_eq!(e.false_alerts.medium_or_high_per_device_hour, 0.2);
    }
}
