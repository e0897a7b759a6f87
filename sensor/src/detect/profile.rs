//! Detections on the device profiles: what a device does that its own past
//! says it does not.
//!
//! - a new peer or a new service for a device whose set has been stable;
//! - lateral movement: a device that talked to few hosts opens flows to
//!   several new ones on the segment;
//! - a device silent: nothing sent, every one of its regular behaviours
//!   overdue;
//! - a flow between two zones the zone policy denies;
//! - after learning, a device never seen before on the segment.
//!
//! "Stable" needs [`STABLE_WINDOWS`] active windows of history without a new
//! peer. Nothing is raised while learning.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use foldhash::fast::RandomState;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::capture::Timestamp;
use crate::device::inventory::{Device, Inventory};
use crate::device::profile::{MAX_PEERS, Service};
use crate::device::zone::{Zone, zone_of};
use crate::features::{Feature, Window};

/// Active windows without a new peer (or service) after which a device's
/// set counts as stable.
pub const STABLE_WINDOWS: u32 = 30;
/// A device with at most this many peers that opens flows to at least
/// [`LATERAL_NEW_PEERS`] new ones on the segment in a window is moving
/// laterally.
pub const LATERAL_MAX_PEERS: usize = 4;
pub const LATERAL_NEW_PEERS: usize = 3;
/// A device is silent when it sends nothing and every one of its regular
/// (learned periodic) behaviours is overdue: none has happened for the
/// longest of
/// [`SILENT_PERIODS`] periods, the period plus four times its jitter (how
/// TCP bounds a retransmission timeout, RFC 6298) and [`SILENT_MIN_SECS`].
pub const SILENT_PERIODS: f64 = 3.0;
/// A reboot (a device off the wire for a few seconds) is not a silence.
pub const SILENT_MIN_SECS: f64 = 20.0;
/// Devices whose state the detector keeps.
pub const MAX_TRACKED_DEVICES: usize = 65_536;
/// The zone name of an address in no configured zone.
pub const EXTERNAL_ZONE: &str = "external";

/// A pair of zones whose flows the policy denies (`[[devices.deny]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedFlow {
    /// Zone of the device that opens the flow.
    pub from: String,
    /// Zone of the peer (`"external"`: an address in no zone).
    pub to: String,
}

/// What a profile detection found.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileKind {
    NewPeer {
        peers: Vec<IpAddr>,
    },
    NewService {
        services: Vec<Service>,
    },
    LateralMovement {
        new_peers: Vec<IpAddr>,
        known_peers: usize,
    },
    Silent {
        silent_secs: f64,
        allowed_secs: f64,
    },
    DeniedZone {
        peer: IpAddr,
        from: String,
        to: String,
    },
    NewDevice,
}

/// One finding about one device.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileFinding {
    pub device: [u8; 6],
    pub ip: Option<IpAddr>,
    pub ts: Timestamp,
    pub kind: ProfileKind,
}

#[derive(Clone, Copy, Debug, Default)]
struct Track {
    /// Active windows seen.
    windows: u32,
    /// Active windows since the last new peer or service.
    stable: u32,
    /// A silence is being reported (until the device sends again).
    silent: bool,
}

/// Counters of the profile detections.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProfileStats {
    pub findings: u64,
    /// Devices first seen after learning (each a new-device finding).
    pub new_devices: u64,
    /// Devices silent as of the last second of packet time.
    pub silent_devices: u64,
}

/// The profile detections of a run.
#[derive(Debug)]
pub struct ProfileDetector {
    zones: Vec<Zone>,
    deny: Vec<DeniedFlow>,
    learn_nanos: i64,
    learn_until: Option<Timestamp>,
    tracks: HashMap<[u8; 6], Track, RandomState>,
    /// Tracks of devices reported silent.
    silent_tracks: usize,
    /// The inventory's count of devices made, at the last look for new ones.
    made_seen: u64,
    stats: ProfileStats,
}

impl ProfileDetector {
    pub fn new(zones: Vec<Zone>, deny: Vec<DeniedFlow>, learn_secs: u64) -> Self {
        ProfileDetector {
            zones,
            deny,
            learn_nanos: i64::try_from(learn_secs)
                .unwrap_or(i64::MAX / Timestamp::NANOS_PER_SEC)
                .saturating_mul(Timestamp::NANOS_PER_SEC),
            learn_until: None,
            tracks: HashMap::default(),
            silent_tracks: 0,
            made_seen: 0,
            stats: ProfileStats::default(),
        }
    }

    pub fn stats(&self) -> ProfileStats {
        self.stats
    }

    /// Devices known from an earlier run: not reported as new.
    pub fn know(&mut self, macs: impl IntoIterator<Item = [u8; 6]>) {
        for mac in macs {
            if self.tracks.len() >= MAX_TRACKED_DEVICES {
                break;
            }
            self.tracks.entry(mac).or_default();
        }
    }

    fn learning(&mut self, ts: Timestamp) -> bool {
        let until = *self
            .learn_until
            .get_or_insert(Timestamp(ts.0.saturating_add(self.learn_nanos)));
        ts < until
    }

    fn zone_of(&self, ip: IpAddr) -> &str {
        zone_of(&self.zones, ip).unwrap_or(EXTERNAL_ZONE)
    }

    /// A window closed: new peers and services, lateral movement, zones.
    pub fn window(&mut self, w: &Window, device: &Device, out: &mut Vec<ProfileFinding>) {
        let learning = self.learning(w.end);
        let start = out.len();
        if !self.tracks.contains_key(&w.device) && self.tracks.len() >= MAX_TRACKED_DEVICES {
            return;
        }
        let active = w.get(Feature::PacketsOut) + w.get(Feature::PacketsIn) > 0.0;
        let news = !w.notes.new_peers_opened.is_empty() || !w.notes.new_services.is_empty();
        let track = self.tracks.entry(w.device).or_default();
        let stable = track.windows >= STABLE_WINDOWS && track.stable >= STABLE_WINDOWS;
        if active {
            track.windows += 1;
            track.stable = if news { 0 } else { track.stable + 1 };
        }
        let ip = device.ips.first().map(|s| s.ip);
        let finding = |kind| ProfileFinding {
            device: w.device,
            ip,
            ts: w.end,
            kind,
        };
        let before = len_before(device, w);
        if !learning && stable {
            let new_peers = &w.notes.new_peers_opened;
            if before <= LATERAL_MAX_PEERS && new_peers.len() >= LATERAL_NEW_PEERS {
                out.push(finding(ProfileKind::LateralMovement {
                    new_peers: new_peers.clone(),
                    known_peers: before,
                }));
            } else if !new_peers.is_empty() && before < MAX_PEERS {
                out.push(finding(ProfileKind::NewPeer {
                    peers: new_peers.clone(),
                }));
            }
            if !w.notes.new_services.is_empty() {
                out.push(finding(ProfileKind::NewService {
                    services: w.notes.new_services.clone(),
                }));
            }
        }
        if !learning && let Some(own) = ip {
            let from = self.zone_of(own).to_string();
            for peer in &w.notes.opened_to {
                let to = self.zone_of(*peer);
                if self.deny.iter().any(|d| d.from == from && d.to == to) {
                    out.push(finding(ProfileKind::DeniedZone {
                        peer: *peer,
                        from: from.clone(),
                        to: to.to_string(),
                    }));
                }
            }
        }
        self.stats.findings += (out.len() - start) as u64;
    }

    /// A second of packet time passed: silent devices; after learning, new
    /// devices.
    pub fn tick(&mut self, now: Timestamp, inventory: &Inventory, out: &mut Vec<ProfileFinding>) {
        let learning = self.learning(now);
        let start = out.len();
        // A new device is one of those the inventory made since the last look.
        if inventory.made() != self.made_seen {
            self.made_seen = inventory.made();
            for d in inventory.iter() {
                let tracked = self.tracks.len();
                if let Entry::Vacant(e) = self.tracks.entry(d.mac)
                    && tracked < MAX_TRACKED_DEVICES
                {
                    if !learning && self.learn_nanos > 0 {
                        self.stats.new_devices += 1;
                        out.push(ProfileFinding {
                            device: d.mac,
                            ip: d.ips.first().map(|s| s.ip),
                            ts: now,
                            kind: ProfileKind::NewDevice,
                        });
                    }
                    e.insert(Track::default());
                }
            }
        }
        let mut silent_devices = 0;
        for d in inventory.iter() {
            let silent = silence(d, now);
            // Nothing to change for a device that sends while none is silent.
            if silent.is_none() && self.silent_tracks == 0 {
                continue;
            }
            let Some(track) = self.tracks.get_mut(&d.mac) else {
                continue;
            };
            match silent {
                Some((quiet, allowed)) => {
                    if !track.silent {
                        if !learning {
                            out.push(ProfileFinding {
                                device: d.mac,
                                ip: d.ips.first().map(|s| s.ip),
                                ts: now,
                                kind: ProfileKind::Silent {
                                    silent_secs: (quiet * 10.0).round() / 10.0,
                                    allowed_secs: (allowed * 10.0).round() / 10.0,
                                },
                            });
                        }
                        track.silent = true;
                        self.silent_tracks += 1;
                    }
                    silent_devices += 1;
                }
                None if track.silent => {
                    track.silent = false;
                    self.silent_tracks -= 1;
                }
                None => {}
            }
        }
        self.stats.silent_devices = silent_devices;
        self.stats.findings += (out.len() - start) as u64;
        // In device order, not the inventory's: every run raises the same
        // alerts in the same order.
        out[start..].sort_by_key(|f| f.device);
    }
}

/// When the device sent nothing for longer than its regular (learned
/// periodic) behaviours allow, and every one of them is overdue: (seconds
/// since it last sent, seconds allowed, the least of what its behaviours
/// allow). None while it sends or any behaviour is on time, or with none
/// learned.
fn silence(d: &Device, now: Timestamp) -> Option<(f64, f64)> {
    let mut allowed_least = f64::INFINITY;
    for p in d.profile.learned_periodic() {
        let period = p.period_nanos / 1e9;
        let allowed = (SILENT_PERIODS * period)
            .max(period + 4.0 * p.jitter_nanos / 1e9)
            .max(SILENT_MIN_SECS);
        if p.since_secs(now) <= allowed {
            return None;
        }
        allowed_least = allowed_least.min(allowed);
    }
    let quiet = now.nanos_since(d.last_sent) as f64 / 1e9;
    (allowed_least.is_finite() && quiet > allowed_least).then_some((quiet, allowed_least))
}

/// Peers the device had before this window: the profile learned the
/// window's new peers when it closed, before the window reached us.
fn len_before(device: &Device, w: &Window) -> usize {
    device
        .profile
        .peers
        .len()
        .saturating_sub(w.get(Feature::NewPeers) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{FEATURE_COUNT, WindowNotes};
    use std::net::Ipv4Addr;

    const CAM: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x19];
    const NEW: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x42];

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, last))
    }

    fn secs(s: i64) -> Timestamp {
        Timestamp(s * Timestamp::NANOS_PER_SEC)
    }

    /// A window of the camera ending at `end` s, active, opening flows to
    /// `new_peers` it never had.
    fn window(end: i64, new_peers: &[IpAddr]) -> Window {
        let mut values = [0.0; FEATURE_COUNT];
        values[Feature::PacketsOut.index()] = 4.0;
        values[Feature::NewPeers.index()] = new_peers.len() as f64;
        Window {
            device: CAM,
            start: secs(end - 10),
            end: secs(end),
            values,
            notes: WindowNotes {
                new_peers_opened: new_peers.to_vec(),
                new_services: Vec::new(),
                opened_to: new_peers.to_vec(),
            },
        }
    }

    /// The camera with its one usual peer (the broker), plus `extra`.
    fn camera(inv: &mut Inventory, extra: &[IpAddr]) -> Device {
        inv.sent_from(CAM, ip(25), secs(0));
        let d = inv.get_mut(&CAM).expect("camera");
        d.profile.peers.add(ip(10));
        for p in extra {
            d.profile.peers.add(*p);
        }
        d.clone()
    }

    #[test]
    fn a_stable_device_that_opens_flows_to_several_new_hosts_moves_laterally() {
        let mut det = ProfileDetector::new(Vec::new(), Vec::new(), 60);
        let mut inv = Inventory::new(16, Vec::new());
        let cam = camera(&mut inv, &[]);
        let mut out = Vec::new();
        for n in 1..=STABLE_WINDOWS as i64 {
            det.window(&window(10 * n, &[]), &cam, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        let targets = [ip(24), ip(26), ip(27)];
        let cam = camera(&mut inv, &targets);
        det.window(&window(400, &targets), &cam, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            out[0].kind,
            ProfileKind::LateralMovement {
                new_peers: targets.to_vec(),
                known_peers: 1
            }
        );
        // One new peer is only a new peer; the count restarts stability.
        let mut out = Vec::new();
        let cam = camera(&mut inv, &[ip(28)]);
        det.window(&window(410, &[ip(28)]), &cam, &mut out);
        assert!(out.is_empty(), "not stable after the movement: {out:?}");
        assert_eq!(det.stats().findings, 1);
    }

    #[test]
    fn nothing_is_raised_while_learning_or_before_the_set_is_stable() {
        let mut det = ProfileDetector::new(Vec::new(), Vec::new(), 1_000);
        let mut inv = Inventory::new(16, Vec::new());
        let targets = [ip(24), ip(26), ip(27)];
        let mut out = Vec::new();
        for n in 1..=STABLE_WINDOWS as i64 {
            det.window(&window(10 * n, &[]), &camera(&mut inv, &[]), &mut out);
        }
        det.window(
            &window(400, &targets),
            &camera(&mut inv, &targets),
            &mut out,
        );
        assert!(out.is_empty(), "learning until 1010 s: {out:?}");
        let mut young = ProfileDetector::new(Vec::new(), Vec::new(), 0);
        young.window(&window(10, &targets), &camera(&mut inv, &targets), &mut out);
        assert!(out.is_empty(), "one window is no history: {out:?}");
    }

    #[test]
    fn a_flow_the_zone_policy_denies_is_raised() {
        let zones = vec![
            Zone {
                name: "iot".into(),
                subnets: vec!["10.77.0.0/24".parse().expect("subnet")],
            },
            Zone {
                name: "office".into(),
                subnets: vec!["10.88.0.0/24".parse().expect("subnet")],
            },
        ];
        let deny = vec![
            DeniedFlow {
                from: "iot".into(),
                to: "office".into(),
            },
            DeniedFlow {
                from: "iot".into(),
                to: EXTERNAL_ZONE.into(),
            },
        ];
        let mut det = ProfileDetector::new(zones, deny, 0);
        let mut inv = Inventory::new(16, Vec::new());
        let office = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 5));
        let outside = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
        let mut w = window(10, &[]);
        w.notes.opened_to = vec![ip(10), office, outside];
        let mut out = Vec::new();
        det.window(&w, &camera(&mut inv, &[]), &mut out);
        let denied: Vec<_> = out
            .iter()
            .map(|f| match &f.kind {
                ProfileKind::DeniedZone { peer, to, .. } => (*peer, to.clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            denied,
            vec![
                (office, "office".to_string()),
                (outside, "external".to_string())
            ]
        );
    }

    #[test]
    fn a_regular_device_that_stops_sending_is_silent_once() {
        let mut det = ProfileDetector::new(Vec::new(), Vec::new(), 0);
        let mut inv = Inventory::new(16, Vec::new());
        inv.sent_from(CAM, ip(25), secs(0));
        // Publishes every 10 s from 0 to 100 s and polls every 2 s: periods
        // without jitter, so each is allowed max(3 periods, 20 s): 30 s for
        // the publish, 20 s for the poll.
        let publish = |inv: &mut Inventory, t: i64| {
            let d = inv.get_mut(&CAM).expect("camera");
            d.profile.occurred("mqtt.publish", 7, secs(t));
            d.sent(1, 100, secs(t));
        };
        for t in (0..=100).step_by(10) {
            publish(&mut inv, t);
        }
        for t in (0..=100).step_by(2) {
            let d = inv.get_mut(&CAM).expect("camera");
            d.profile.occurred("coap.request", 8, secs(t));
        }
        let mut out = Vec::new();
        for t in 101..=130 {
            det.tick(secs(t), &inv, &mut out);
        }
        assert!(out.is_empty(), "the publish is not 30 s late yet: {out:?}");
        assert_eq!(det.stats().silent_devices, 0);
        det.tick(secs(131), &inv, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(det.stats().silent_devices, 1);
        assert_eq!(
            out[0].kind,
            ProfileKind::Silent {
                silent_secs: 31.0,
                allowed_secs: 20.0
            }
        );
        det.tick(secs(140), &inv, &mut out);
        assert_eq!(out.len(), 1, "raised once per silence");
        assert_eq!(det.stats().silent_devices, 1, "still silent");
        // One behaviour on time again ends the silence (its 41 s interval
        // lengthens what it is allowed, to 3 × 13.9 s); the next silence is
        // raised again, once the publish is overdue: answering (sending
        // with no regular behaviour) at 160 s does not stop that.
        publish(&mut inv, 141);
        det.tick(secs(141), &inv, &mut out);
        assert_eq!(det.stats().silent_devices, 0, "sending again");
        for t in 142..=240 {
            if t == 160 {
                inv.get_mut(&CAM).expect("camera").sent(1, 60, secs(t));
            }
            det.tick(secs(t), &inv, &mut out);
        }
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].ts, secs(183));
        assert!(
            matches!(out[1].kind, ProfileKind::Silent { silent_secs, .. } if silent_secs == 23.0)
        );
    }

    #[test]
    fn after_learning_an_unknown_device_is_new_but_a_known_one_is_not() {
        let mut det = ProfileDetector::new(Vec::new(), Vec::new(), 30);
        det.know([NEW]);
        let mut inv = Inventory::new(16, Vec::new());
        inv.sent_from(CAM, ip(25), secs(0));
        let mut out = Vec::new();
        det.tick(secs(0), &inv, &mut out);
        inv.sent_from(NEW, ip(66), secs(40));
        inv.sent_from([0x02, 0x77, 0, 0, 0, 0x66], ip(67), secs(40));
        det.tick(secs(40), &inv, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].kind, ProfileKind::NewDevice);
        assert_eq!(out[0].device, [0x02, 0x77, 0, 0, 0, 0x66]);
        assert_eq!(det.stats().new_devices, 1);
    }
}
