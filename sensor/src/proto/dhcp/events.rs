//! Owned events a [`DhcpSession`](super::DhcpSession) emits. Strings are
//! copied and capped (`DhcpLimits::max_string_bytes`); nothing borrows the
//! datagram.

use std::fmt;
use std::net::Ipv4Addr;

use super::parser::{CHADDR_LEN, MessageType, Op, OptionError, ParseError};
use crate::flow::Direction;

/// A hardware address as `chaddr` carries it (at most 16 bytes), inline.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HwAddr {
    bytes: [u8; CHADDR_LEN],
    len: u8,
}

impl HwAddr {
    /// The first [`CHADDR_LEN`] bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> HwAddr {
        let mut a = HwAddr::default();
        let n = bytes.len().min(CHADDR_LEN);
        a.bytes[..n].copy_from_slice(&bytes[..n]);
        a.len = u8::try_from(n).unwrap_or(0);
        a
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for HwAddr {
    /// Lower-case hex bytes joined by ':', as tshark prints `dhcp.hw.mac_addr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.as_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for HwAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HwAddr({self})")
    }
}

/// One DHCP (or BOOTP) message as seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpMessageEvent {
    /// Direction the datagram travelled in its flow.
    pub dir: Direction,
    pub op: Op,
    /// Option 53; `None` for a BOOTP message or one without it.
    pub message_type: Option<MessageType>,
    pub xid: u32,
    pub secs: u16,
    /// The BROADCAST flag (RFC 2131 §2, Figure 2).
    pub broadcast: bool,
    pub htype: u8,
    pub hops: u8,
    /// `chaddr`, `hlen` bytes (cut to the field).
    pub chaddr: HwAddr,
    /// `chaddr` when `htype`/`hlen` say Ethernet.
    pub client_mac: Option<[u8; 6]>,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_secs: Option<u32>,
    /// Option 12, capped.
    pub hostname: Option<String>,
    /// Option 60, capped.
    pub vendor_class: Option<String>,
    /// Option 61 as colon-separated hex (type byte first), capped.
    pub client_id: Option<String>,
    /// Option 55: the option codes the client asks for, in its order, capped.
    pub param_request_list: Vec<u8>,
    /// Options read (Pad and End not counted; may exceed what was inspected).
    pub option_count: usize,
    /// A string or the parameter list above was cut at its cap.
    pub capped: bool,
}

impl DhcpMessageEvent {
    /// A relay agent forwarded the message (`giaddr` set, RFC 2131 §4.1).
    pub fn relayed(&self) -> bool {
        !self.giaddr.is_unspecified()
    }
}

/// Typed reason of an anomaly. `as_str` gives a stable label for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// Shorter than the 236-byte BOOTP header.
    TruncatedHeader,
    /// `op` other than 1 or 2.
    BadOp,
    /// `hlen` larger than the 16-byte `chaddr` field.
    BadHardwareLength,
    /// No 99.130.83.99 at offset 236: BOOTP, or not DHCP.
    MissingMagicCookie,
    /// An option's length byte or value runs past the end of its field.
    TruncatedOption,
    /// The `options` field has no End option.
    MissingEnd,
    /// A value of a length RFC 2132 does not allow for its option (an
    /// overlong message type or lease time, an empty host name, ...).
    BadOptionLength,
    /// A single-valued option (53, 50, 51, 54) appears more than once.
    OptionRepeated,
    /// Option 52 with a value other than 1, 2 or 3, or outside the
    /// `options` field.
    BadOverload,
    /// More options than the session inspects (`DhcpLimits::max_options`).
    TooManyOptions,
    /// A message with the magic cookie but no option 53.
    MissingMessageType,
    /// A client message type in a BOOTREPLY or a server one in a
    /// BOOTREQUEST (RFC 2131 §3, Table 2).
    OpTypeMismatch,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::TruncatedHeader => "truncated_header",
            AnomalyKind::BadOp => "bad_op",
            AnomalyKind::BadHardwareLength => "bad_hardware_length",
            AnomalyKind::MissingMagicCookie => "missing_magic_cookie",
            AnomalyKind::TruncatedOption => "truncated_option",
            AnomalyKind::MissingEnd => "missing_end",
            AnomalyKind::BadOptionLength => "bad_option_length",
            AnomalyKind::OptionRepeated => "option_repeated",
            AnomalyKind::BadOverload => "bad_overload",
            AnomalyKind::TooManyOptions => "too_many_options",
            AnomalyKind::MissingMessageType => "missing_message_type",
            AnomalyKind::OpTypeMismatch => "op_type_mismatch",
        }
    }
}

impl From<ParseError> for AnomalyKind {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::TruncatedHeader { .. } => AnomalyKind::TruncatedHeader,
            ParseError::BadOp(_) => AnomalyKind::BadOp,
        }
    }
}

impl From<OptionError> for AnomalyKind {
    fn from(e: OptionError) -> Self {
        match e {
            OptionError::MissingMagicCookie => AnomalyKind::MissingMagicCookie,
            OptionError::Truncated { .. } => AnomalyKind::TruncatedOption,
            OptionError::MissingEnd { .. } => AnomalyKind::MissingEnd,
        }
    }
}

/// Something in the traffic broke a rule; carried as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpAnomaly {
    pub kind: AnomalyKind,
    pub dir: Direction,
    /// Transaction ID of the offending message, when its header was readable.
    pub xid: Option<u32>,
    /// Option code concerned, for option anomalies.
    pub option: Option<u8>,
    /// Human-readable detail (short, built from typed values).
    pub detail: String,
}

/// Everything a DHCP session reports: one `Message` per datagram with a
/// readable header, and the anomalies found in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpEvent {
    Message(Box<DhcpMessageEvent>),
    Anomaly(DhcpAnomaly),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_addresses_print_like_tshark() {
        let a = HwAddr::new(&[0x6c, 0xf0, 0x49, 0xb2, 0xde, 0x6e]);
        assert_eq!(a.to_string(), "6c:f0:49:b2:de:6e");
        assert_eq!(HwAddr::new(&[]).to_string(), "");
        assert_eq!(HwAddr::new(&[1; 20]).as_bytes().len(), CHADDR_LEN);
    }

    #[test]
    fn anomaly_labels_are_snake_case() {
        for kind in [
            AnomalyKind::TruncatedHeader,
            AnomalyKind::BadHardwareLength,
            AnomalyKind::OpTypeMismatch,
            AnomalyKind::from(OptionError::MissingMagicCookie),
        ] {
            let s = kind.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }
}
