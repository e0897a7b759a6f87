//! Per-flow DHCP session: each datagram is read on its own (DHCP keeps no
//! state a sensor needs across messages of one UDP flow), its options are
//! checked against RFC 2132 and summarised into one [`DhcpMessageEvent`],
//! and what is wrong becomes [`DhcpAnomaly`] events after it.
//!
//! Options that appear more than once are concatenated in the order they
//! were read (RFC 3396 §7, long options), which is how a host name or a
//! parameter request list longer than 255 bytes is sent; a single-valued
//! option that repeats is an anomaly and its first value is kept. Trailing
//! NULs of text options are dropped (RFC 2132 §2).

use serde::{Deserialize, Serialize};

use super::events::{AnomalyKind, DhcpAnomaly, DhcpEvent, DhcpMessageEvent, HwAddr};
use super::parser::{
    Area, DhcpMessage, DhcpOption, MessageType, OptionCode, OptionError, OptionItem,
};
use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::text::push_capped;

/// Default number of options inspected per message.
pub const DEFAULT_MAX_OPTIONS: usize = 64;
/// Default bound of a kept string (host name, vendor class, client id).
pub const DEFAULT_MAX_STRING_BYTES: usize = 256;
/// Default number of parameter request list codes kept.
pub const DEFAULT_MAX_PARAM_REQUESTS: usize = 64;

/// Bounds of a DHCP session (config section `[protocols.dhcp]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhcpLimits {
    /// Options read per message; the rest are skipped with an anomaly.
    pub max_options: usize,
    /// Bytes kept of a host name or vendor class, characters kept of a
    /// client id written in hex.
    #[serde(deserialize_with = "crate::units::de_bytes")]
    pub max_string_bytes: usize,
    /// Option codes kept from a parameter request list.
    pub max_param_requests: usize,
}

impl Default for DhcpLimits {
    fn default() -> Self {
        DhcpLimits {
            max_options: DEFAULT_MAX_OPTIONS,
            max_string_bytes: DEFAULT_MAX_STRING_BYTES,
            max_param_requests: DEFAULT_MAX_PARAM_REQUESTS,
        }
    }
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhcpStats {
    pub datagrams: u64,
    /// Datagrams with a readable header (one message event each).
    pub messages: u64,
    /// Datagrams too short or with a bad `op` (no message event).
    pub rejected_datagrams: u64,
}

/// DHCP state of one UDP flow: its limits and counters.
#[derive(Debug)]
pub struct DhcpSession {
    limits: DhcpLimits,
    stats: DhcpStats,
}

/// The single-valued options, for spotting repeats (the message type first).
const SINGLE_VALUED: [OptionCode; 5] = [
    OptionCode::MessageType,
    OptionCode::RequestedIp,
    OptionCode::LeaseTime,
    OptionCode::ServerId,
    OptionCode::Overload,
];

/// Concatenated lengths of the variable-length options read (RFC 3396), to
/// check their RFC 2132 minimum once the whole message is read.
#[derive(Default)]
struct Totals {
    seen: [bool; SINGLE_VALUED.len()],
    hostname: Option<usize>,
    vendor_class: Option<usize>,
    client_id: Option<usize>,
    params: Option<usize>,
}

fn anomaly(
    kind: AnomalyKind,
    dir: Direction,
    xid: Option<u32>,
    option: Option<u8>,
    detail: String,
) -> DhcpEvent {
    DhcpEvent::Anomaly(DhcpAnomaly {
        kind,
        dir,
        xid,
        option,
        detail,
    })
}

fn ipv4(value: &[u8]) -> Option<std::net::Ipv4Addr> {
    <[u8; 4]>::try_from(value)
        .ok()
        .map(std::net::Ipv4Addr::from)
}

/// Appends `value` as colon-separated hex to `dst` while it stays within
/// `cap` characters; true when something was left out.
fn push_hex(dst: &mut String, value: &[u8], cap: usize) -> bool {
    use std::fmt::Write;
    for b in value {
        let sep = usize::from(!dst.is_empty());
        if dst.len() + sep + 2 > cap {
            return true;
        }
        if sep == 1 {
            dst.push(':');
        }
        let _ = write!(dst, "{b:02x}");
    }
    false
}

impl DhcpSession {
    pub fn new(limits: DhcpLimits) -> Self {
        DhcpSession {
            limits,
            stats: DhcpStats::default(),
        }
    }

    pub fn stats(&self) -> &DhcpStats {
        &self.stats
    }

    /// One datagram of the flow.
    pub fn on_datagram(
        &mut self,
        _ts: Timestamp,
        dir: Direction,
        payload: &[u8],
        out: &mut Vec<DhcpEvent>,
    ) {
        self.stats.datagrams += 1;
        let msg = match DhcpMessage::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.rejected_datagrams += 1;
                out.push(anomaly(e.into(), dir, None, None, e.to_string()));
                return;
            }
        };
        self.stats.messages += 1;
        let xid = Some(msg.xid());
        let mut ev = DhcpMessageEvent {
            dir,
            op: msg.op(),
            message_type: None,
            xid: msg.xid(),
            secs: msg.secs(),
            broadcast: msg.broadcast(),
            htype: msg.htype(),
            hops: msg.hops(),
            chaddr: HwAddr::new(msg.chaddr()),
            client_mac: msg.client_mac(),
            ciaddr: msg.ciaddr(),
            yiaddr: msg.yiaddr(),
            siaddr: msg.siaddr(),
            giaddr: msg.giaddr(),
            requested_ip: None,
            server_id: None,
            lease_secs: None,
            hostname: None,
            vendor_class: None,
            client_id: None,
            param_request_list: Vec::new(),
            option_count: 0,
            capped: false,
        };
        // The message event goes first; its anomalies follow it.
        let at = out.len();
        if !msg.hlen_valid() {
            out.push(anomaly(
                AnomalyKind::BadHardwareLength,
                dir,
                xid,
                None,
                format!(
                    "hlen {} is longer than the 16-byte chaddr field (RFC 2131 §2)",
                    msg.hlen()
                ),
            ));
        }
        let mut totals = Totals::default();
        for item in msg.options() {
            let opt = match item {
                OptionItem::Option(o) => o,
                OptionItem::Error(e) => {
                    let option = match e {
                        OptionError::Truncated { code, .. } => Some(code),
                        _ => None,
                    };
                    out.push(anomaly(e.into(), dir, xid, option, e.to_string()));
                    continue;
                }
            };
            // Hitting the bound is counted as this anomaly.
            if ev.option_count >= self.limits.max_options {
                out.push(anomaly(
                    AnomalyKind::TooManyOptions,
                    dir,
                    xid,
                    None,
                    format!("more than {} options", self.limits.max_options),
                ));
                break;
            }
            ev.option_count += 1;
            self.option(&mut ev, &mut totals, opt, out);
        }
        self.finish(&mut ev, &totals, msg.has_magic_cookie(), out);
        out.insert(at, DhcpEvent::Message(Box::new(ev)));
    }

    /// Takes one option into the event.
    fn option(
        &self,
        ev: &mut DhcpMessageEvent,
        totals: &mut Totals,
        opt: DhcpOption<'_>,
        out: &mut Vec<DhcpEvent>,
    ) {
        let (dir, xid) = (ev.dir, Some(ev.xid));
        let code = opt.code;
        let number = code.number();
        let value = opt.value;
        let cap = self.limits.max_string_bytes;
        if let Some(slot) = SINGLE_VALUED.iter().position(|c| *c == code) {
            if std::mem::replace(&mut totals.seen[slot], true) {
                out.push(anomaly(
                    AnomalyKind::OptionRepeated,
                    dir,
                    xid,
                    Some(number),
                    format!("option {number} appears more than once; the first is kept"),
                ));
                return;
            }
            let (min, max) = code.length_range();
            if !(min..=max).contains(&value.len()) {
                out.push(anomaly(
                    AnomalyKind::BadOptionLength,
                    dir,
                    xid,
                    Some(number),
                    format!(
                        "option {number} has {} bytes, RFC 2132 gives it {min}",
                        value.len()
                    ),
                ));
                return;
            }
        }
        match code {
            OptionCode::MessageType => {
                ev.message_type = value.first().map(|n| MessageType::from_u8(*n));
            }
            OptionCode::RequestedIp => ev.requested_ip = ipv4(value),
            OptionCode::ServerId => ev.server_id = ipv4(value),
            OptionCode::LeaseTime => {
                ev.lease_secs = <[u8; 4]>::try_from(value).ok().map(u32::from_be_bytes);
            }
            OptionCode::Overload => {
                let valid = matches!(value, [1..=3]);
                if !valid || opt.area != Area::Options {
                    out.push(anomaly(
                        AnomalyKind::BadOverload,
                        dir,
                        xid,
                        Some(number),
                        format!(
                            "option 52 = {} in the {} field: only 1, 2 or 3 in the options field is read (RFC 2131 §4.1)",
                            value.first().copied().unwrap_or(0),
                            opt.area.name()
                        ),
                    ));
                }
            }
            OptionCode::HostName => {
                *totals.hostname.get_or_insert(0) += value.len();
                let s = ev.hostname.get_or_insert_with(String::new);
                ev.capped |= push_capped(s, value, cap);
            }
            OptionCode::VendorClass => {
                *totals.vendor_class.get_or_insert(0) += value.len();
                let s = ev.vendor_class.get_or_insert_with(String::new);
                ev.capped |= push_capped(s, value, cap);
            }
            OptionCode::ClientId => {
                *totals.client_id.get_or_insert(0) += value.len();
                let s = ev.client_id.get_or_insert_with(String::new);
                ev.capped |= push_hex(s, value, cap);
            }
            OptionCode::ParameterRequestList => {
                *totals.params.get_or_insert(0) += value.len();
                let room = self
                    .limits
                    .max_param_requests
                    .saturating_sub(ev.param_request_list.len());
                ev.capped |= value.len() > room;
                ev.param_request_list
                    .extend_from_slice(value.get(..room).unwrap_or(value));
            }
            OptionCode::Unknown(_) => {}
        }
    }

    /// Checks what needs the whole message: the minimum lengths of the
    /// concatenated options, the message type and its op code.
    fn finish(
        &self,
        ev: &mut DhcpMessageEvent,
        totals: &Totals,
        cookie: bool,
        out: &mut Vec<DhcpEvent>,
    ) {
        let (dir, xid) = (ev.dir, Some(ev.xid));
        for (code, total) in [
            (OptionCode::HostName, totals.hostname),
            (OptionCode::VendorClass, totals.vendor_class),
            (OptionCode::ClientId, totals.client_id),
            (OptionCode::ParameterRequestList, totals.params),
        ] {
            let (min, _) = code.length_range();
            if let Some(len) = total.filter(|len| *len < min) {
                let number = code.number();
                out.push(anomaly(
                    AnomalyKind::BadOptionLength,
                    dir,
                    xid,
                    Some(number),
                    format!("option {number} has {len} bytes, RFC 2132 gives it at least {min}"),
                ));
            }
        }
        for s in [&mut ev.hostname, &mut ev.vendor_class] {
            if let Some(text) = s.as_mut() {
                let kept = text.trim_end_matches('\0').len();
                text.truncate(kept);
            }
        }
        let type_seen = totals.seen[0];
        match ev.message_type {
            None if cookie && !type_seen => out.push(anomaly(
                AnomalyKind::MissingMessageType,
                dir,
                xid,
                Some(OptionCode::MessageType.number()),
                "a DHCP message without option 53 (RFC 2131 §3)".to_string(),
            )),
            Some(t) if t.op().is_some_and(|op| op != ev.op) => out.push(anomaly(
                AnomalyKind::OpTypeMismatch,
                dir,
                xid,
                Some(OptionCode::MessageType.number()),
                format!("{t} in a BOOT{} (RFC 2131 §3)", ev.op.name().to_uppercase()),
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::proto::dhcp::parser::tests::{Builder, MAC};
    use crate::proto::dhcp::parser::{HEADER_LEN, Op};

    const C: Direction = Direction::ToServer;

    fn run(limits: DhcpLimits, d: &[u8]) -> Vec<DhcpEvent> {
        let mut s = DhcpSession::new(limits);
        let mut out = Vec::new();
        s.on_datagram(Timestamp(0), C, d, &mut out);
        let st = *s.stats();
        assert_eq!(st.datagrams, 1);
        assert_eq!(st.messages + st.rejected_datagrams, 1);
        out
    }

    fn message(events: &[DhcpEvent]) -> &DhcpMessageEvent {
        match events.first() {
            Some(DhcpEvent::Message(m)) => m,
            other => panic!("no message first: {other:?}"),
        }
    }

    fn kinds(events: &[DhcpEvent]) -> Vec<AnomalyKind> {
        events
            .iter()
            .filter_map(|e| match e {
                DhcpEvent::Anomaly(a) => Some(a.kind),
                DhcpEvent::Message(_) => None,
            })
            .collect()
    }

    /// A DHCPREQUEST as RFC 2131 §3.1 step 3 describes it: option 53 = 3,
    /// the requested address (50), the chosen server (54), a host name (12,
    /// RFC 2132 §3.14), a vendor class (60, §9.13), a client identifier
    /// (61, §9.14: type 1 and the MAC) and a parameter request list (55, §9.8).
    fn request() -> Vec<u8> {
        let mut o = vec![53, 1, 3];
        o.extend_from_slice(&[50, 4, 192, 168, 1, 124]);
        o.extend_from_slice(&[54, 4, 192, 168, 1, 1]);
        o.extend_from_slice(&[12, 6]);
        o.extend_from_slice(b"cam-01");
        o.extend_from_slice(&[60, 8]);
        o.extend_from_slice(b"MSFT 5.0");
        o.extend_from_slice(&[61, 7, 1]);
        o.extend_from_slice(&MAC);
        o.extend_from_slice(&[55, 4, 1, 3, 6, 15, 255]);
        Builder::new(1, 0x3903_F326, MAC).options(&o)
    }

    #[test]
    fn request_options_rfc2131_3_1() {
        let out = run(DhcpLimits::default(), &request());
        assert_eq!(kinds(&out), vec![]);
        let m = message(&out);
        assert_eq!(m.op, Op::BootRequest);
        assert_eq!(m.message_type, Some(MessageType::Request));
        assert_eq!(m.xid, 0x3903_F326);
        assert_eq!(m.client_mac, Some(MAC));
        assert_eq!(m.requested_ip, Some(Ipv4Addr::new(192, 168, 1, 124)));
        assert_eq!(m.server_id, Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(m.hostname.as_deref(), Some("cam-01"));
        assert_eq!(m.vendor_class.as_deref(), Some("MSFT 5.0"));
        assert_eq!(m.client_id.as_deref(), Some("01:00:0b:82:01:fc:42"));
        assert_eq!(m.param_request_list, vec![1, 3, 6, 15]);
        assert_eq!(m.option_count, 7);
        assert!(!m.capped && !m.relayed());
    }

    #[test]
    fn ack_carries_yiaddr_and_lease_rfc2131_3_1() {
        // Step 5: DHCPACK with the address in yiaddr, lease time (51) and
        // server identifier (54), which RFC 2131 Table 3 requires.
        let d = Builder::new(2, 0x3903_F326, MAC)
            .yiaddr([192, 168, 1, 124])
            .options(&[
                53, 1, 5, 51, 4, 0, 0, 0x0e, 0x10, 54, 4, 192, 168, 1, 1, 255,
            ]);
        let out = run(DhcpLimits::default(), &d);
        assert_eq!(kinds(&out), vec![]);
        let m = message(&out);
        assert_eq!(m.message_type, Some(MessageType::Ack));
        assert_eq!(m.yiaddr, Ipv4Addr::new(192, 168, 1, 124));
        assert_eq!(m.lease_secs, Some(3600));
        assert_eq!(m.server_id, Some(Ipv4Addr::new(192, 168, 1, 1)));
    }

    #[test]
    fn long_options_are_concatenated_rfc3396() {
        // A host name split in two option 12 instances, the second in the
        // overloaded `file` field (RFC 3396 §5, RFC 2131 §4.1 order).
        let d = Builder::new(1, 1, MAC)
            .area(Area::File, &[12, 3, b'-', b'0', b'1', 255])
            .options(&[53, 1, 1, 52, 1, 1, 12, 3, b'c', b'a', b'm', 255]);
        let out = run(DhcpLimits::default(), &d);
        assert_eq!(kinds(&out), vec![]);
        assert_eq!(message(&out).hostname.as_deref(), Some("cam-01"));
    }

    #[test]
    fn trailing_nul_of_a_name_is_dropped_rfc2132_2() {
        let d = Builder::new(1, 1, MAC).options(&[53, 1, 1, 12, 4, b'p', b'c', 0, 0, 255]);
        assert_eq!(
            message(&run(DhcpLimits::default(), &d)).hostname.as_deref(),
            Some("pc")
        );
    }

    #[test]
    fn bad_lengths_and_repeats_are_anomalies() {
        // Message type of 2 bytes (RFC 2132 §9.6 says 1), then a valid one;
        // a lease time of 3 bytes; a second message type; an empty host name.
        let d =
            Builder::new(1, 1, MAC).options(&[53, 2, 1, 1, 51, 3, 0, 0, 1, 53, 1, 1, 12, 0, 255]);
        let out = run(DhcpLimits::default(), &d);
        assert_eq!(
            kinds(&out),
            vec![
                AnomalyKind::BadOptionLength,
                AnomalyKind::BadOptionLength,
                AnomalyKind::OptionRepeated,
                AnomalyKind::BadOptionLength,
            ]
        );
        let m = message(&out);
        assert_eq!((m.message_type, m.lease_secs), (None, None));
        assert_eq!(m.hostname.as_deref(), Some(""));
    }

    #[test]
    fn truncated_option_keeps_what_came_before() {
        let d = Builder::new(1, 1, MAC).options(&[53, 1, 1, 12, 10, b'a', b'b']);
        let out = run(DhcpLimits::default(), &d);
        assert_eq!(kinds(&out), vec![AnomalyKind::TruncatedOption]);
        let DhcpEvent::Anomaly(a) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(a.option, Some(12));
        assert_eq!(message(&out).message_type, Some(MessageType::Discover));
    }

    #[test]
    fn missing_end_and_bad_overload() {
        let d = Builder::new(2, 1, MAC).options(&[53, 1, 2, 52, 1, 7]);
        assert_eq!(
            kinds(&run(DhcpLimits::default(), &d)),
            vec![AnomalyKind::BadOverload, AnomalyKind::MissingEnd]
        );
    }

    #[test]
    fn op_and_message_type_must_agree_rfc2131_table_2() {
        // A DHCPOFFER in a BOOTREQUEST.
        let d = Builder::new(1, 1, MAC).options(&[53, 1, 2, 255]);
        assert_eq!(
            kinds(&run(DhcpLimits::default(), &d)),
            vec![AnomalyKind::OpTypeMismatch]
        );
        // An unassigned type is a value, not an anomaly.
        let d = Builder::new(1, 1, MAC).options(&[53, 1, 200, 255]);
        let out = run(DhcpLimits::default(), &d);
        assert_eq!(kinds(&out), vec![]);
        assert_eq!(message(&out).message_type, Some(MessageType::Unknown(200)));
    }

    #[test]
    fn bootp_and_broken_headers() {
        let mut bootp = Builder::new(1, 1, MAC).bytes;
        bootp.extend_from_slice(&[0; 64]);
        let out = run(DhcpLimits::default(), &bootp);
        assert_eq!(kinds(&out), vec![AnomalyKind::MissingMagicCookie]);
        assert_eq!(message(&out).message_type, None);
        let out = run(DhcpLimits::default(), &bootp[..HEADER_LEN - 36]);
        assert_eq!(kinds(&out), vec![AnomalyKind::TruncatedHeader]);
        let mut bad_op = bootp.clone();
        bad_op[0] = 0;
        assert_eq!(
            kinds(&run(DhcpLimits::default(), &bad_op)),
            vec![AnomalyKind::BadOp]
        );
        let mut long_hlen = request();
        long_hlen[2] = 17;
        let out = run(DhcpLimits::default(), &long_hlen);
        assert_eq!(kinds(&out), vec![AnomalyKind::BadHardwareLength]);
        assert_eq!(message(&out).client_mac, None);
    }

    #[test]
    fn limits_bound_what_is_kept() {
        let limits = DhcpLimits {
            max_options: 3,
            max_string_bytes: 5,
            max_param_requests: 2,
        };
        let out = run(limits, &request());
        assert_eq!(kinds(&out), vec![AnomalyKind::TooManyOptions]);
        let m = message(&out);
        assert_eq!(m.option_count, 3);
        assert_eq!(m.hostname, None);
        let limits = DhcpLimits {
            max_options: 64,
            ..limits
        };
        let m = message(&run(limits, &request())).clone();
        assert_eq!(m.hostname.as_deref(), Some("cam-0"));
        assert_eq!(m.vendor_class.as_deref(), Some("MSFT "));
        assert_eq!(m.client_id.as_deref(), Some("01:00"));
        assert_eq!(m.param_request_list, vec![1, 3]);
        assert!(m.capped);
    }

    #[test]
    fn relayed_messages_say_so() {
        let d = Builder::new(1, 1, MAC)
            .giaddr([10, 1, 0, 1])
            .options(&[53, 1, 1, 255]);
        assert!(message(&run(DhcpLimits::default(), &d)).relayed());
    }
}
