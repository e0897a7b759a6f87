//! Hosts of the synthetic segment: the devices and the servers they talk to.
//!
//! Devices are 10.0.x.y (x, y in 1..=254) with locally administered MACs
//! 02:53:59:10:x:y; servers are 10.0.0.1..=4 with MACs 02:53:59:00:00:0n.
//! A device's traits (kind, name, credentials) are derived from the seed and
//! its index alone, so they are recomputed when needed instead of stored.

use super::rng::{SplitMix64, derive};
use super::session::Endpoint;

/// Devices addressable as 10.0.x.y with x, y in 1..=254.
pub const MAX_DEVICES: u32 = 254 * 254;

/// First client port (IANA dynamic range, RFC 6335 §6).
const EPHEMERAL_FIRST: u16 = 49_152;
const EPHEMERAL_COUNT: u64 = 16_384;

const DEVICE_SALT: u64 = 0x6465_7669_6365;

/// Factory-default credentials some devices keep (what default-credential
/// rules look for).
const DEFAULT_CREDENTIALS: [(&str, &str); 6] = [
    ("admin", "admin"),
    ("admin", "1234"),
    ("root", "root"),
    ("root", "12345"),
    ("user", "user"),
    ("admin", "password"),
];

pub(super) fn device_ip(index: u32) -> [u8; 4] {
    let i = index % MAX_DEVICES;
    [10, 0, 1 + (i / 254) as u8, 1 + (i % 254) as u8]
}

pub(super) fn device_mac(index: u32) -> [u8; 6] {
    let ip = device_ip(index);
    [0x02, 0x53, 0x59, 0x10, ip[2], ip[3]]
}

/// The servers on the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Server {
    MqttBroker,
    Coap,
    WebUi,
    TelnetDevice,
}

impl Server {
    pub(super) fn endpoint(self, port: u16) -> Endpoint {
        let n = match self {
            Server::MqttBroker => 1,
            Server::Coap => 2,
            Server::WebUi => 3,
            Server::TelnetDevice => 4,
        };
        Endpoint {
            mac: [0x02, 0x53, 0x59, 0x00, 0x00, n],
            ip: [10, 0, 0, n],
            port,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Sensor,
    Camera,
    Plug,
    Gateway,
}

/// Application protocol of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum App {
    Mqtt,
    Coap,
    Http,
    Telnet,
}

/// A device's stable traits.
#[derive(Clone, Debug)]
pub(super) struct Device {
    pub index: u32,
    pub kind: Kind,
    /// Host name, MQTT client id and user-agent suffix, e.g. `cam-0007`.
    pub name: String,
    pub user: String,
    pub password: String,
    /// Misconfigured device whose logins are always refused.
    pub wrong_password: bool,
    /// Port of the web UI this device uses (80 or 8080).
    pub http_port: u16,
    port_base: u64,
}

impl Device {
    pub(super) fn new(seed: u64, index: u32) -> Self {
        let mut rng = derive(seed, DEVICE_SALT, u64::from(index));
        let kind = match rng.below(100) {
            0..40 => Kind::Sensor,
            40..55 => Kind::Camera,
            55..85 => Kind::Plug,
            _ => Kind::Gateway,
        };
        let prefix = match kind {
            Kind::Sensor => "sensor",
            Kind::Camera => "cam",
            Kind::Plug => "plug",
            Kind::Gateway => "gw",
        };
        let name = format!("{prefix}-{index:04}");
        let (user, password) = if rng.chance(400) {
            let (u, p) = rng.pick(&DEFAULT_CREDENTIALS);
            (u.to_string(), p.to_string())
        } else {
            let mut secret = [0u8; 6];
            rng.fill(&mut secret);
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            (name.clone(), hex)
        };
        Device {
            index,
            kind,
            name,
            user,
            password,
            wrong_password: rng.chance(50),
            http_port: rng.pick(&[80, 80, 8080]),
            port_base: rng.below(EPHEMERAL_COUNT),
        }
    }

    /// The device's end of its `round`-th session: a fresh ephemeral port per
    /// round, so its concurrent and successive sessions have distinct tuples.
    pub(super) fn endpoint(&self, round: u64) -> Endpoint {
        let port = EPHEMERAL_FIRST + ((self.port_base + round) % EPHEMERAL_COUNT) as u16;
        Endpoint {
            mac: device_mac(self.index),
            ip: device_ip(self.index),
            port,
        }
    }

    /// Choose the protocol of a session by the device's kind.
    pub(super) fn pick_app(&self, rng: &mut SplitMix64) -> App {
        // Weights for MQTT, CoAP, HTTP, Telnet out of 100.
        let [mqtt, coap, http, _] = match self.kind {
            Kind::Sensor => [55, 35, 8, 2],
            Kind::Camera => [20, 0, 60, 20],
            Kind::Plug => [30, 45, 20, 5],
            Kind::Gateway => [40, 20, 30, 10],
        };
        let r = rng.below(100);
        if r < mqtt {
            App::Mqtt
        } else if r < mqtt + coap {
            App::Coap
        } else if r < mqtt + coap + http {
            App::Http
        } else {
            App::Telnet
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_private_and_locally_administered() {
        assert_eq!(device_ip(0), [10, 0, 1, 1]);
        assert_eq!(device_ip(253), [10, 0, 1, 254]);
        assert_eq!(device_ip(254), [10, 0, 2, 1]);
        assert_eq!(device_ip(MAX_DEVICES - 1), [10, 0, 254, 254]);
        // IEEE 802: bit 1 of the first octet = locally administered, bit 0 = unicast.
        let mac = device_mac(300);
        assert_eq!(mac[0] & 0b11, 0b10);
        assert_eq!(&mac[4..], &[2, 47]);
        let s = Server::WebUi.endpoint(8080);
        assert_eq!((s.ip, s.port), ([10, 0, 0, 3], 8080));
    }

    #[test]
    fn device_traits_are_stable_and_ports_rotate() {
        let a = Device::new(1, 42);
        let b = Device::new(1, 42);
        assert_eq!((&a.name, &a.user, a.kind), (&b.name, &b.user, b.kind));
        assert!(a.name.ends_with("-0042"));
        let p0 = a.endpoint(0).port;
        let p1 = a.endpoint(1).port;
        assert_ne!(p0, p1);
        assert!(p0 >= EPHEMERAL_FIRST && p1 >= EPHEMERAL_FIRST);
        assert_eq!(a.endpoint(EPHEMERAL_COUNT).port, p0);
    }
}
