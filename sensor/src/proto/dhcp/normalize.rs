//! DHCP events as normalised events: `dhcp.request`, `dhcp.ack` and
//! `anomaly` (catalogue in `rules/README.md`).
//!
//! Both kinds are oriented DHCP client → DHCP server, whatever way the flow
//! table oriented the datagram's flow, and `from` says who sent the message.
//! The client side's MAC is the message's `chaddr` when it is an Ethernet
//! address (RFC 2131 §2): every client's broadcast (0.0.0.0:68 →
//! 255.255.255.255:67) belongs to one flow, whose MAC is the first sender's,
//! and a server's broadcast reply has no client MAC at all.

use super::{DhcpEvent, MessageType};
use crate::flow::Direction;
use crate::proto::norm::{Event, NormContext};

pub(super) fn normalize<'e>(e: &'e DhcpEvent, cx: &mut NormContext<'_>, out: &mut Vec<Event<'e>>) {
    match e {
        DhcpEvent::Message(m) => {
            let (kind, from_client) = match m.message_type {
                Some(MessageType::Discover | MessageType::Request | MessageType::Inform) => {
                    ("dhcp.request", true)
                }
                Some(MessageType::Offer | MessageType::Ack) => ("dhcp.ack", false),
                _ => return,
            };
            let mut ev = cx.event(kind, "dhcp");
            // The datagram's sender is the client side when it went to the
            // flow's server, the server side otherwise.
            if (m.dir == Direction::ToServer) != from_client {
                std::mem::swap(&mut ev.src, &mut ev.dst);
                std::mem::swap(&mut ev.src_mac, &mut ev.dst_mac);
            }
            if let Some(mac) = m.client_mac {
                ev.src_mac = Some(mac);
            }
            let from = if from_client { "client" } else { "server" };
            let type_name = m.message_type.and_then(|t| t.name()).unwrap_or("UNKNOWN");
            ev = ev
                .with("from", from)
                .with("message_type", type_name)
                .with("relayed", m.relayed());
            if from_client {
                if let Some(h) = &m.hostname {
                    ev = ev.with("hostname", h.as_str());
                }
                if let Some(v) = &m.vendor_class {
                    ev = ev.with("vendor_class", v.as_str());
                }
                if let Some(ip) = m.requested_ip {
                    ev = ev.with("requested_ip", ip.to_string());
                }
                if !m.param_request_list.is_empty() {
                    let list: Vec<String> =
                        m.param_request_list.iter().map(u8::to_string).collect();
                    ev = ev.with("param_request_list", list.join(","));
                }
            } else {
                if !m.yiaddr.is_unspecified() {
                    ev = ev.with("yiaddr", m.yiaddr.to_string());
                }
                if let Some(secs) = m.lease_secs {
                    ev = ev.with("lease_secs", i64::from(secs));
                }
                if let Some(ip) = m.server_id {
                    ev = ev.with("server_id", ip.to_string());
                }
            }
            out.push(ev);
        }
        DhcpEvent::Anomaly(a) => out.push(cx.anomaly("dhcp", a.kind.as_str(), &a.detail)),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::capture::Timestamp;
    use crate::flow::FlowInfo;
    use crate::proto::dhcp::parser::tests::{Builder, MAC};
    use crate::proto::dhcp::{DhcpLimits, DhcpSession};
    use crate::proto::norm::{FieldPool, NoteTable, Value};

    const FIRST_CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

    /// A UDP flow as the flow table orients it by ports (68 is the client).
    fn flow(client: Ipv4Addr, server: Ipv4Addr, client_mac: [u8; 6]) -> FlowInfo {
        FlowInfo {
            client: (IpAddr::V4(client), 68),
            server: (IpAddr::V4(server), 67),
            client_mac: Some(client_mac),
            server_mac: Some(SERVER_MAC),
            ..FlowInfo::for_test(1, 17, 67)
        }
    }

    fn events(flow: &FlowInfo, dir: Direction, datagram: &[u8]) -> Vec<Event<'static>> {
        let mut session = DhcpSession::new(DhcpLimits::default());
        let mut parsed = Vec::new();
        session.on_datagram(Timestamp(0), dir, datagram, &mut parsed);
        let mut notes = NoteTable::default();
        let mut pool = FieldPool::default();
        let mut cx = NormContext::new(flow, Timestamp(0), dir, &mut notes, &mut pool);
        let mut out = Vec::new();
        for e in &parsed {
            normalize(e, &mut cx, &mut out);
        }
        out.into_iter().map(Event::into_owned).collect()
    }

    fn text(ev: &Event, name: &str) -> Option<String> {
        match ev.field(name) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    #[test]
    fn discover_is_a_request_from_its_chaddr() {
        // Another client opened the broadcast flow: its MAC is the flow's.
        let f = flow(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, FIRST_CLIENT_MAC);
        let mut o = vec![53, 1, 1, 12, 6];
        o.extend_from_slice(b"cam-01");
        o.extend_from_slice(&[60, 4]);
        o.extend_from_slice(b"udhc");
        o.extend_from_slice(&[50, 4, 192, 168, 1, 124, 55, 3, 1, 3, 6, 255]);
        let out = events(
            &f,
            Direction::ToServer,
            &Builder::new(1, 9, MAC).options(&o),
        );
        let [ev] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(ev.kind, "dhcp.request");
        assert_eq!(ev.src_mac, Some(MAC));
        assert_eq!(ev.dst_mac, Some(SERVER_MAC));
        assert_eq!(ev.src, (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 68));
        assert_eq!(text(ev, "from").as_deref(), Some("client"));
        assert_eq!(text(ev, "message_type").as_deref(), Some("DISCOVER"));
        assert_eq!(text(ev, "hostname").as_deref(), Some("cam-01"));
        assert_eq!(text(ev, "vendor_class").as_deref(), Some("udhc"));
        assert_eq!(text(ev, "requested_ip").as_deref(), Some("192.168.1.124"));
        assert_eq!(text(ev, "param_request_list").as_deref(), Some("1,3,6"));
        assert_eq!(ev.field("relayed"), Some(&Value::Bool(false)));
    }

    #[test]
    fn offer_is_an_ack_oriented_client_to_server() {
        // The server's broadcast reply: the flow's client side is
        // 255.255.255.255:68 with the broadcast MAC.
        let f = flow(Ipv4Addr::BROADCAST, SERVER, [0xff; 6]);
        let d = Builder::new(2, 9, MAC)
            .yiaddr([192, 168, 1, 124])
            .options(&[53, 1, 2, 51, 4, 0, 0, 2, 0x58, 54, 4, 192, 168, 1, 1, 255]);
        let out = events(&f, Direction::ToClient, &d);
        let [ev] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(ev.kind, "dhcp.ack");
        assert_eq!(text(ev, "from").as_deref(), Some("server"));
        assert_eq!(ev.dst, (IpAddr::V4(SERVER), 67));
        assert_eq!((ev.src_mac, ev.dst_mac), (Some(MAC), Some(SERVER_MAC)));
        assert_eq!(text(ev, "message_type").as_deref(), Some("OFFER"));
        assert_eq!(text(ev, "yiaddr").as_deref(), Some("192.168.1.124"));
        assert_eq!(ev.field("lease_secs"), Some(&Value::Int(600)));
        assert_eq!(text(ev, "server_id").as_deref(), Some("192.168.1.1"));
    }

    #[test]
    fn a_request_sent_by_the_flows_server_side_is_turned_around() {
        // A flow whose ports misled the table: the client's REQUEST went to
        // the flow's client side.
        let f = flow(SERVER, Ipv4Addr::new(192, 168, 1, 124), SERVER_MAC);
        let d = Builder::new(1, 9, MAC).options(&[53, 1, 3, 255]);
        let out = events(&f, Direction::ToClient, &d);
        assert_eq!(
            out[0].src,
            (IpAddr::V4(Ipv4Addr::new(192, 168, 1, 124)), 67)
        );
        assert_eq!(out[0].dst, (IpAddr::V4(SERVER), 68));
        assert_eq!(out[0].src_mac, Some(MAC));
    }

    #[test]
    fn other_types_make_no_event_but_anomalies_do() {
        let f = flow(Ipv4Addr::new(192, 168, 1, 124), SERVER, MAC);
        for t in [4u8, 6, 7] {
            let d = Builder::new(if t == 6 { 2 } else { 1 }, 9, MAC).options(&[53, 1, t, 255]);
            assert!(events(&f, Direction::ToServer, &d).is_empty(), "type {t}");
        }
        let d = Builder::new(1, 9, MAC).options(&[53, 1, 1]);
        let out = events(&f, Direction::ToServer, &d);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].kind, "anomaly");
        assert_eq!(text(&out[1], "kind").as_deref(), Some("missing_end"));
    }
}
