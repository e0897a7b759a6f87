//! The device inventory: a device is a MAC address on the segment, with the
//! addresses it used, the names it showed, the roles its behaviour shows, its
//! zone and its behaviour profile.
//!
//! Addresses behind a router reach the segment with the router's MAC: a MAC
//! that sends from more than [`MAX_OWN_IPS`] addresses that are not its own
//! (not announced by its ARP, not in a configured zone) is a **gateway**, and
//! those addresses are external peers, never devices. Group and all-zero
//! MACs are never devices. The inventory holds at most `max_devices`; the
//! least recently seen device makes room, and is counted. Each device has a
//! slot, its own while it is kept: a later stage keeps what it adds to a
//! device (the device stage's open feature window) by slot.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::net::IpAddr;

use serde::Serialize;

use super::oui;
use super::profile::{Bounded, Profile};
use super::zone::{Zone, zone_of};
use crate::capture::Timestamp;

/// Addresses a device may use before it counts as a gateway.
pub const MAX_OWN_IPS: usize = 4;
/// Addresses kept per device (its own, and a gateway's ARP-announced ones).
pub const MAX_DEVICE_IPS: usize = 8;
/// Names kept per device, and the longest kept, in bytes.
pub const MAX_DEVICE_NAMES: usize = 16;
pub const MAX_NAME_BYTES: usize = 64;
/// Devices kept by default.
pub const DEFAULT_MAX_DEVICES: usize = 10_000;
/// Devices kept at most, whatever the configuration asks (slots are `u32`).
pub const MAX_SLOTS: usize = u32::MAX as usize;

/// A role a device's behaviour shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    MqttBroker,
    MqttClient,
    CoapServer,
    CoapClient,
    HttpServer,
    HttpClient,
    TelnetServer,
    TelnetClient,
    Gateway,
    ScannerLike,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::MqttBroker,
        Role::MqttClient,
        Role::CoapServer,
        Role::CoapClient,
        Role::HttpServer,
        Role::HttpClient,
        Role::TelnetServer,
        Role::TelnetClient,
        Role::Gateway,
        Role::ScannerLike,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::MqttBroker => "mqtt-broker",
            Role::MqttClient => "mqtt-client",
            Role::CoapServer => "coap-server",
            Role::CoapClient => "coap-client",
            Role::HttpServer => "http-server",
            Role::HttpClient => "http-client",
            Role::TelnetServer => "telnet-server",
            Role::TelnetClient => "telnet-client",
            Role::Gateway => "gateway",
            Role::ScannerLike => "scanner-like",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }

    /// The server and client roles of an application protocol, by name.
    pub fn of_protocol(proto: &str) -> Option<(Role, Role)> {
        Some(match proto {
            "mqtt" => (Role::MqttBroker, Role::MqttClient),
            "coap" => (Role::CoapServer, Role::CoapClient),
            "http" => (Role::HttpServer, Role::HttpClient),
            "telnet" => (Role::TelnetServer, Role::TelnetClient),
            _ => return None,
        })
    }
}

/// Where a device's name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    DhcpHostname,
    MqttClientId,
    MqttUser,
    HttpUserAgent,
    HttpServer,
    TelnetBanner,
    CoapResource,
}

/// One address of a device and when it was seen.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SeenIp {
    pub ip: IpAddr,
    #[serde(serialize_with = "ts")]
    pub first_seen: Timestamp,
    #[serde(serialize_with = "ts")]
    pub last_seen: Timestamp,
}

fn ts<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// One device.
#[derive(Clone, Debug, Serialize)]
pub struct Device {
    #[serde(serialize_with = "mac_text")]
    pub mac: [u8; 6],
    pub vendor: Option<&'static str>,
    pub ips: Vec<SeenIp>,
    /// Addresses it sent from that are not its own (a gateway's external
    /// peers), counted, not kept.
    pub foreign_ips: u64,
    pub names: Vec<(NameSource, String)>,
    /// The roles its behaviour showed, as a bit set of [`Role`]s (a list of
    /// role names in JSON).
    #[serde(serialize_with = "role_names")]
    roles: u16,
    pub zone: Option<String>,
    #[serde(serialize_with = "ts")]
    pub first_seen: Timestamp,
    #[serde(serialize_with = "ts")]
    pub last_seen: Timestamp,
    /// When it last sent a frame.
    #[serde(serialize_with = "ts")]
    pub last_sent: Timestamp,
    pub packets_out: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Application protocols its flows spoke.
    pub protocols: Bounded<&'static str>,
    pub profile: Profile,
}

fn role_names<S: serde::Serializer>(roles: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        Role::ALL
            .iter()
            .filter(|r| roles & r.bit() != 0)
            .map(|r| r.name()),
    )
}

fn mac_text<S: serde::Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&MacText(*m))
}

/// A MAC address as `02:77:00:00:00:0a`.
pub struct MacText(pub [u8; 6]);

impl std::fmt::Display for MacText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`), the form [`MacText`] prints.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

impl Device {
    fn new(mac: [u8; 6], now: Timestamp) -> Self {
        Device {
            mac,
            vendor: oui::vendor(mac),
            ips: Vec::new(),
            foreign_ips: 0,
            names: Vec::new(),
            roles: 0,
            zone: None,
            first_seen: now,
            last_seen: now,
            last_sent: now,
            packets_out: 0,
            packets_in: 0,
            bytes_out: 0,
            bytes_in: 0,
            protocols: Bounded::new(8),
            profile: Profile::default(),
        }
    }

    pub fn has_role(&self, r: Role) -> bool {
        self.roles & r.bit() != 0
    }

    pub fn add_role(&mut self, r: Role) {
        self.roles |= r.bit();
    }

    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        Role::ALL.into_iter().filter(|r| self.has_role(*r))
    }

    /// Whether `ip` is one of the device's own addresses.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.ips.iter().any(|s| s.ip == ip)
    }

    /// The device sent `packets` frames at `now`.
    pub fn sent(&mut self, packets: u64, bytes: u64, now: Timestamp) {
        if packets > 0 {
            self.packets_out += packets;
            self.bytes_out += bytes;
            self.last_sent = self.last_sent.max(now);
        }
    }

    /// Records a name the device showed (cut to [`MAX_NAME_BYTES`]).
    pub fn add_name(&mut self, source: NameSource, name: &str) {
        let name = crate::proto::text::cap_str(name.trim(), MAX_NAME_BYTES);
        if name.is_empty()
            || self.names.len() >= MAX_DEVICE_NAMES
            || self.names.iter().any(|(s, n)| *s == source && n == name)
        {
            return;
        }
        self.names.push((source, name.to_string()));
    }

    /// Notes `ip` as one of the device's addresses; false when it is not
    /// kept as one (no room: a gateway's).
    fn note_ip(&mut self, ip: IpAddr, now: Timestamp, own: bool) -> bool {
        if let Some(seen) = self.ips.iter_mut().find(|s| s.ip == ip) {
            seen.last_seen = seen.last_seen.max(now);
            return true;
        }
        let room = if own { MAX_DEVICE_IPS } else { MAX_OWN_IPS };
        if (own || !self.has_role(Role::Gateway)) && self.ips.len() < room {
            self.ips.push(SeenIp {
                ip,
                first_seen: now,
                last_seen: now,
            });
            true
        } else {
            self.foreign_ips += 1;
            self.add_role(Role::Gateway);
            false
        }
    }
}

/// Counters of the inventory.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct InventoryStats {
    pub devices: usize,
    /// Devices forgotten to make room (the least recently seen).
    pub evicted: u64,
    pub max_devices: usize,
}

/// A device found by a lookup: its slot, which stays its own while it is
/// kept (a later stage keeps what it adds to a device by slot), and whether
/// the device is new in that slot (new, or in the room of one evicted).
#[derive(Debug)]
pub struct Seen<'a> {
    pub slot: usize,
    pub fresh: bool,
    pub device: &'a mut Device,
}

/// Every device seen, bounded.
#[derive(Debug)]
pub struct Inventory {
    /// The devices, by slot; a device evicted leaves its slot to the new one.
    slots: Vec<Device>,
    /// The slot of each device, by MAC (as a number: hashed in one step).
    index: HashMap<u64, u32, RandomState>,
    max_devices: usize,
    zones: Vec<Zone>,
    evicted: u64,
    /// Devices made, evicted ones included.
    made: u64,
}

/// A MAC as the key of the device map.
fn key(mac: &[u8; 6]) -> u64 {
    let [a, b, c, d, e, f] = *mac;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// Whether a MAC can be a device: unicast and not all zeros.
pub fn is_device_mac(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

impl Inventory {
    pub fn new(max_devices: usize, zones: Vec<Zone>) -> Self {
        Inventory {
            slots: Vec::new(),
            index: HashMap::default(),
            max_devices: max_devices.clamp(1, MAX_SLOTS),
            zones,
            evicted: 0,
            made: 0,
        }
    }

    pub fn stats(&self) -> InventoryStats {
        InventoryStats {
            devices: self.slots.len(),
            evicted: self.evicted,
            max_devices: self.max_devices,
        }
    }

    pub fn get(&self, mac: &[u8; 6]) -> Option<&Device> {
        self.slots.get(self.slot_of(mac)?)
    }

    pub fn get_mut(&mut self, mac: &[u8; 6]) -> Option<&mut Device> {
        let slot = self.slot_of(mac)?;
        self.slots.get_mut(slot)
    }

    /// How many devices were made so far (evicted ones included): when it
    /// has not changed, no device is new.
    pub fn made(&self) -> u64 {
        self.made
    }

    /// The slot of the device `mac`, when it is kept.
    pub fn slot_of(&self, mac: &[u8; 6]) -> Option<usize> {
        self.index.get(&key(mac)).map(|&i| i as usize)
    }

    /// The device in `slot`.
    pub fn at_mut(&mut self, slot: usize) -> Option<&mut Device> {
        self.slots.get_mut(slot)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.slots.iter()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The device `mac` (created if new and a possible device), seen at `now`.
    pub fn touch(&mut self, mac: [u8; 6], now: Timestamp) -> Option<Seen<'_>> {
        let (slot, fresh) = self.slot(mac, now)?;
        Some(self.seen(slot, fresh))
    }

    fn seen(&mut self, slot: usize, fresh: bool) -> Seen<'_> {
        Seen {
            slot,
            fresh,
            device: &mut self.slots[slot],
        }
    }

    /// The slot of the device `mac` (made if new and a possible device; the
    /// least recently seen device makes room at `max_devices`, counted), seen
    /// at `now`, and whether the device is new in it.
    fn slot(&mut self, mac: [u8; 6], now: Timestamp) -> Option<(usize, bool)> {
        if !is_device_mac(mac) {
            return None;
        }
        let k = key(&mac);
        let (slot, fresh) = match self.index.get(&k) {
            Some(&slot) => (slot as usize, false),
            None => (self.make(mac, k, now), true),
        };
        let d = &mut self.slots[slot];
        d.last_seen = d.last_seen.max(now);
        Some((slot, fresh))
    }

    /// A slot for the new device `mac` (key `k`): a new one, or at the cap
    /// that of the least recently seen device, which is forgotten. Out of
    /// line: a lookup's code stays small.
    #[cold]
    #[inline(never)]
    fn make(&mut self, mac: [u8; 6], k: u64, now: Timestamp) -> usize {
        let device = Device::new(mac, now);
        self.made += 1;
        let oldest = || {
            self.slots
                .iter()
                .enumerate()
                .min_by_key(|(_, d)| (d.last_seen, d.mac))
                .map(|(i, _)| i)
        };
        let slot = if self.slots.len() >= self.max_devices
            && let Some(i) = oldest()
        {
            self.index.remove(&key(&self.slots[i].mac));
            self.evicted += 1;
            self.slots[i] = device;
            i
        } else {
            self.slots.push(device);
            self.slots.len() - 1
        };
        // Slots are fewer than `max_devices`, at most `MAX_SLOTS`.
        self.index
            .insert(k, u32::try_from(slot).unwrap_or(u32::MAX));
        slot
    }

    /// `mac` sent a packet from `ip` (see [`Inventory::sent_from_slot`]).
    #[cfg(test)]
    pub fn sent_from(&mut self, mac: [u8; 6], ip: IpAddr, now: Timestamp) {
        self.sent_from_slot(mac, ip, now);
    }

    /// `mac` sent a packet from `ip`: its own address, unless the MAC turns
    /// out to route for others (see the module documentation). The device,
    /// as [`Inventory::touch`] finds it.
    pub fn sent_from_slot(&mut self, mac: [u8; 6], ip: IpAddr, now: Timestamp) -> Option<Seen<'_>> {
        let (slot, fresh) = self.slot(mac, now)?;
        // The zone's name is copied only into a device that has none yet.
        let zoned = zone_of(&self.zones, ip);
        let zones_known = !self.zones.is_empty();
        let d = &mut self.slots[slot];
        // With zones configured, an address outside every zone is external.
        let own = !zones_known || zoned.is_some();
        let owned = if own || d.owns(ip) {
            d.note_ip(ip, now, false)
        } else {
            d.foreign_ips += 1;
            d.add_role(Role::Gateway);
            false
        };
        if d.zone.is_none() && owned {
            d.zone = zoned.map(str::to_string);
        }
        Some(Seen {
            slot,
            fresh,
            device: d,
        })
    }

    /// An ARP message of `mac` announced `ip`: its own address. The device,
    /// as [`Inventory::touch`] finds it.
    pub fn announced(&mut self, mac: [u8; 6], ip: IpAddr, now: Timestamp) -> Option<Seen<'_>> {
        let (slot, fresh) = self.slot(mac, now)?;
        let d = &mut self.slots[slot];
        d.note_ip(ip, now, true);
        if d.zone.is_none() {
            d.zone = zone_of(&self.zones, ip).map(str::to_string);
        }
        Some(Seen {
            slot,
            fresh,
            device: d,
        })
    }

    /// The devices, sorted by address (IPv4 first) then MAC, for tables.
    pub fn sorted(&self) -> Vec<&Device> {
        self.sorted_first(usize::MAX)
    }

    /// The first `n` devices of [`Inventory::sorted`], found without sorting
    /// the others.
    pub fn sorted_first(&self, n: usize) -> Vec<&Device> {
        let key = |d: &&Device| (d.ips.first().map(|s| s.ip), d.mac);
        let mut v: Vec<&Device> = self.iter().collect();
        if n < v.len() {
            v.select_nth_unstable_by_key(n, key);
            v.truncate(n);
        }
        v.sort_by_key(key);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, last))
    }

    const CAM: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x19];
    const RTR: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x1b];

    #[test]
    fn a_mac_that_sends_from_many_addresses_is_a_gateway() {
        let mut inv = Inventory::new(100, Vec::new());
        let t = Timestamp(0);
        inv.sent_from(CAM, ip(25), t);
        inv.sent_from(CAM, ip(25), t);
        for n in 0..10u8 {
            inv.sent_from(RTR, IpAddr::V4(Ipv4Addr::new(203, 0, 113, n)), t);
        }
        inv.announced(RTR, ip(1), t);
        let cam = inv.get(&CAM).expect("camera");
        assert_eq!(cam.ips.len(), 1);
        assert!(!cam.has_role(Role::Gateway));
        let rtr = inv.get(&RTR).expect("router");
        assert!(rtr.has_role(Role::Gateway));
        // The first MAX_OWN_IPS addresses were taken for its own before the
        // fifth showed it routes; its ARP-announced address is kept too.
        assert_eq!(rtr.ips.len(), MAX_OWN_IPS + 1);
        assert!(rtr.owns(ip(1)));
        assert_eq!(rtr.foreign_ips, 10 - MAX_OWN_IPS as u64);
        assert_eq!(inv.len(), 2);
    }

    #[test]
    fn the_first_rows_of_the_table_are_those_of_the_whole_table() {
        let mut inv = Inventory::new(100, Vec::new());
        // Addresses in an order unlike the MACs', one device without any.
        for n in 0..30u8 {
            inv.sent_from([2, 0, 0, 0, 1, n], ip(200 - 3 * n), Timestamp(0));
        }
        inv.touch([2, 0, 0, 0, 2, 0], Timestamp(0));
        let all: Vec<[u8; 6]> = inv.sorted().iter().map(|d| d.mac).collect();
        assert_eq!(all.len(), 31);
        assert_eq!(all[0], [2, 0, 0, 0, 2, 0], "no address sorts first");
        assert_eq!(all[1], [2, 0, 0, 0, 1, 29], "then the lowest address");
        for n in [0, 1, 7, 30, 31, 1000] {
            let first: Vec<[u8; 6]> = inv.sorted_first(n).iter().map(|d| d.mac).collect();
            assert_eq!(first, all[..n.min(all.len())], "first {n}");
        }
    }

    #[test]
    fn with_zones_an_address_outside_them_is_external_at_once() {
        let zones = vec![Zone {
            name: "iot".into(),
            subnets: vec!["10.77.0.0/24".parse().expect("subnet")],
        }];
        let mut inv = Inventory::new(100, zones);
        inv.sent_from(RTR, ip(1), Timestamp(0));
        inv.sent_from(RTR, IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), Timestamp(0));
        let rtr = inv.get(&RTR).expect("router");
        assert!(rtr.has_role(Role::Gateway) && rtr.owns(ip(1)) && rtr.ips.len() == 1);
        assert_eq!(rtr.zone.as_deref(), Some("iot"));
    }

    #[test]
    fn group_and_zero_macs_are_not_devices_and_the_oldest_makes_room() {
        let mut inv = Inventory::new(2, Vec::new());
        assert!(inv.touch([0xff; 6], Timestamp(0)).is_none());
        assert!(inv.touch([0x01, 0, 0x5e, 0, 0, 1], Timestamp(0)).is_none());
        assert!(inv.touch([0; 6], Timestamp(0)).is_none());
        inv.touch([2, 0, 0, 0, 0, 1], Timestamp(1));
        inv.touch([2, 0, 0, 0, 0, 2], Timestamp(2));
        inv.touch([2, 0, 0, 0, 0, 1], Timestamp(3));
        inv.touch([2, 0, 0, 0, 0, 3], Timestamp(4));
        assert!(inv.get(&[2, 0, 0, 0, 0, 2]).is_none());
        assert_eq!((inv.len(), inv.stats().evicted), (2, 1));
    }

    /// A device keeps its slot while it is kept; one evicted leaves its slot
    /// to the device that made room, which is new in it (and so is the
    /// evicted one when it comes back).
    #[test]
    fn slots_are_kept_and_an_evicted_devices_slot_goes_to_the_newcomer() {
        let mut inv = Inventory::new(2, Vec::new());
        let seen = |inv: &mut Inventory, last: u8, t: i64| {
            let s = inv
                .touch([2, 0, 0, 0, 0, last], Timestamp(t))
                .expect("device");
            (s.slot, s.fresh)
        };
        let (a, a_fresh) = seen(&mut inv, 1, 1);
        let (b, b_fresh) = seen(&mut inv, 2, 2);
        assert!(a_fresh && b_fresh && a != b);
        assert_eq!(seen(&mut inv, 1, 3), (a, false));
        // Device 2 is the least recently seen: device 3 takes its slot.
        assert_eq!(seen(&mut inv, 3, 4), (b, true));
        assert_eq!(seen(&mut inv, 1, 5), (a, false));
        // Device 3 (seen at 4) makes room for device 2 coming back.
        assert_eq!(seen(&mut inv, 2, 6), (b, true));
        assert_eq!(inv.made(), 4);
        assert_eq!(inv.stats().evicted, 2);
    }

    #[test]
    fn names_are_kept_once_capped_and_bounded() {
        let mut d = Device::new(CAM, Timestamp(0));
        d.add_name(NameSource::MqttClientId, " cam-1 ");
        d.add_name(NameSource::MqttClientId, "cam-1");
        d.add_name(NameSource::HttpServer, &"n".repeat(300));
        d.add_name(NameSource::MqttUser, "");
        assert_eq!(d.names.len(), 2);
        assert_eq!(d.names[0], (NameSource::MqttClientId, "cam-1".to_string()));
        assert_eq!(d.names[1].1.len(), MAX_NAME_BYTES);
        for i in 0..40 {
            d.add_name(NameSource::CoapResource, &format!("/r{i}"));
        }
        assert_eq!(d.names.len(), MAX_DEVICE_NAMES);
    }

    /// `spanwatch devices --json` left the roles out.
    #[test]
    fn a_devices_json_lists_its_roles() {
        let mut d = Device::new(CAM, Timestamp(0));
        d.add_role(Role::ScannerLike);
        d.add_role(Role::HttpServer);
        let json = serde_json::to_value(&d).expect("json");
        assert_eq!(
            json["roles"],
            serde_json::json!(["http-server", "scanner-like"])
        );
        let none = serde_json::to_value(Device::new(RTR, Timestamp(0))).expect("json");
        assert_eq!(none["roles"], serde_json::json!([]));
    }

    #[test]
    fn macs_print_as_suricata_writes_them() {
        assert_eq!(MacText(CAM).to_string(), "02:77:00:00:00:19");
    }

    #[test]
    fn parse_mac_accepts_six_hex_pairs_only() {
        assert_eq!(
            parse_mac("02:00:5e:10:00:01"),
            Some([2, 0, 0x5e, 0x10, 0, 1])
        );
        assert_eq!(
            parse_mac("02-00-5E-10-00-01"),
            Some([2, 0, 0x5e, 0x10, 0, 1])
        );
        assert_eq!(parse_mac("02:00:5e:10:00"), None);
        assert_eq!(parse_mac("02:00:5e:10:00:01:02"), None);
        assert_eq!(parse_mac("2:00:5e:10:00:01"), None);
    }
}
