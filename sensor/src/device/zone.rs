//! Zones: named sets of subnets (`iot`, `it`, `ot`) from the config file, and
//! the subnets that make up the monitored segment.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 or IPv6 subnet, `address/prefix` (RFC 4632 §3.1, RFC 4291 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a subnet could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a subnet (address/prefix, e.g. 10.77.0.0/24): {reason}")]
pub struct CidrError {
    pub text: String,
    pub reason: &'static str,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let fail = |reason| CidrError {
            text: text.to_string(),
            reason,
        };
        let (addr, prefix) = text.split_once('/').ok_or_else(|| fail("no /prefix"))?;
        let addr: IpAddr = addr.parse().map_err(|_| fail("not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| fail("the prefix is not a number"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(fail("the prefix is longer than the address"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A named zone and its subnets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub name: String,
    pub subnets: Vec<Cidr>,
}

/// The zone of an address: the first zone with a subnet holding it.
pub fn zone_of(zones: &[Zone], ip: IpAddr) -> Option<&str> {
    zones
        .iter()
        .find(|z| z.subnets.iter().any(|c| c.contains(ip)))
        .map(|z| z.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().expect("valid subnet")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid address")
    }

    #[test]
    fn subnets_hold_their_addresses_only() {
        let c = cidr("10.77.0.0/24");
        assert!(c.contains(ip("10.77.0.0")) && c.contains(ip("10.77.0.255")));
        assert!(!c.contains(ip("10.77.1.0")) && !c.contains(ip("::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("192.0.2.7/32").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7/32").contains(ip("192.0.2.6")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert_eq!(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
    }

    #[test]
    fn bad_subnets_say_why() {
        for (text, reason) in [
            ("10.77.0.0", "no /prefix"),
            ("10.77.0/24", "not an IP address"),
            ("10.77.0.0/x", "the prefix is not a number"),
            ("10.77.0.0/33", "the prefix is longer than the address"),
            ("::/129", "the prefix is longer than the address"),
        ] {
            let e = text.parse::<Cidr>().expect_err(text);
            assert_eq!(e.reason, reason, "{text}");
            assert!(e.to_string().contains(text));
        }
    }

    #[test]
    fn the_first_zone_holding_an_address_names_it() {
        let zones = vec![
            Zone {
                name: "ot".into(),
                subnets: vec![cidr("10.77.0.0/28")],
            },
            Zone {
                name: "iot".into(),
                subnets: vec![cidr("10.77.0.0/24"), cidr("fd00::/8")],
            },
        ];
        assert_eq!(zone_of(&zones, ip("10.77.0.3")), Some("ot"));
        assert_eq!(zone_of(&zones, ip("10.77.0.99")), Some("iot"));
        assert_eq!(zone_of(&zones, ip("fd12::1")), Some("iot"));
        assert_eq!(zone_of(&zones, ip("192.0.2.1")), None);
    }
}
