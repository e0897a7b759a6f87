//! The DHCP log (`dhcp.jsonl`): one line per message and one per anomaly
//! (see `proto/log.rs` for the common fields). Addresses of the header that
//! are 0.0.0.0 are left out.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::{DhcpEvent, DhcpMessageEvent, HwAddr};
use crate::flow::Direction;
use crate::proto::record::{Shown, is_false};

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DhcpRecord<'a> {
    Message(Box<DhcpMessage<'a>>),
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        xid: Option<Shown<Xid>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        option: Option<u8>,
    },
}

/// A transaction ID as tshark prints `dhcp.id`: `0x` and 8 hex digits.
pub struct Xid(u32);

impl std::fmt::Display for Xid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

fn set(a: Ipv4Addr) -> Option<Ipv4Addr> {
    (!a.is_unspecified()).then_some(a)
}

/// One DHCP message (RFC 2131 §2), with tshark's numbering for the type.
#[derive(Serialize)]
pub struct DhcpMessage<'a> {
    /// "request" (BOOTREQUEST) or "reply" (BOOTREPLY).
    op: &'static str,
    /// "DISCOVER", "OFFER", ...; absent for BOOTP or an unassigned value.
    #[serde(skip_serializing_if = "Option::is_none")]
    message_type: Option<&'static str>,
    /// `dhcp.option.dhcp`: option 53's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    message_type_num: Option<u8>,
    xid: Shown<Xid>,
    secs: u16,
    #[serde(skip_serializing_if = "is_false")]
    broadcast: bool,
    htype: u8,
    #[serde(skip_serializing_if = "is_zero_u8")]
    hops: u8,
    chaddr: Shown<HwAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciaddr: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    yiaddr: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    siaddr: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    giaddr: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_ip: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_id: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_secs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_class: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[u8]>::is_empty")]
    param_request_list: &'a [u8],
    option_count: usize,
    #[serde(skip_serializing_if = "is_false")]
    capped: bool,
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

impl<'a> From<&'a DhcpMessageEvent> for DhcpMessage<'a> {
    fn from(m: &'a DhcpMessageEvent) -> Self {
        DhcpMessage {
            op: m.op.name(),
            message_type: m.message_type.and_then(|t| t.name()),
            message_type_num: m.message_type.map(|t| t.number()),
            xid: Shown(Xid(m.xid)),
            secs: m.secs,
            broadcast: m.broadcast,
            htype: m.htype,
            hops: m.hops,
            chaddr: Shown(m.chaddr),
            ciaddr: set(m.ciaddr),
            yiaddr: set(m.yiaddr),
            siaddr: set(m.siaddr),
            giaddr: set(m.giaddr),
            requested_ip: m.requested_ip,
            server_id: m.server_id,
            lease_secs: m.lease_secs,
            hostname: m.hostname.as_deref(),
            vendor_class: m.vendor_class.as_deref(),
            client_id: m.client_id.as_deref(),
            param_request_list: &m.param_request_list,
            option_count: m.option_count,
            capped: m.capped,
        }
    }
}

/// The record of a DHCP event and the direction its datagram travelled.
pub(super) fn record(ev: &DhcpEvent) -> (Option<Direction>, DhcpRecord<'_>) {
    match ev {
        DhcpEvent::Message(m) => (
            Some(m.dir),
            DhcpRecord::Message(Box::new(m.as_ref().into())),
        ),
        DhcpEvent::Anomaly(a) => (
            Some(a.dir),
            DhcpRecord::Anomaly {
                kind: a.kind.as_str(),
                detail: &a.detail,
                xid: a.xid.map(|x| Shown(Xid(x))),
                option: a.option,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_is_written_as_tshark_writes_it() {
        assert_eq!(Xid(0x3903_f326).to_string(), "0x3903f326");
        assert_eq!(Xid(7).to_string(), "0x00000007");
    }
}
