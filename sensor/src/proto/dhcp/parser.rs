//! Zero-copy DHCPv4 message view: RFC 2131 §2 (message format, Figure 1,
//! Table 1), §3 (the magic cookie), §4.1 (options overloaded into `sname`
//! and `file`, and the order they are read in), RFC 2132 §2-§3 (option
//! format, Pad and End) and RFC 951 (the BOOTP header DHCP keeps).
//!
//! [`DhcpMessage::parse`] is the single checked entry: it checks that the
//! datagram holds the 236-byte fixed header and that `op` is BOOTREQUEST or
//! BOOTREPLY. After that every header accessor is a plain read at a named
//! offset. [`DhcpMessage::options`] walks the option areas without copying.
//!
//! A UDP datagram is complete by construction, so the three parser outcomes
//! of STYLE.md are: a message, "incomplete" as [`ParseError::TruncatedHeader`]
//! (the datagram ended inside the header) and a typed [`ParseError`]. What
//! is wrong inside a readable message (no magic cookie, an option running
//! past its field, no End option) is reported by the option walk as an
//! [`OptionError`] beside the options that could be read.

use std::fmt;
use std::net::Ipv4Addr;

use thiserror::Error;

/// Byte layout of the fixed header (RFC 2131 §2, Figure 1).
mod field {
    use std::ops::Range;
    /// Message op code: 1 BOOTREQUEST, 2 BOOTREPLY.
    pub const OP: usize = 0;
    /// Hardware address type (ARP `hrd`, RFC 1700): 1 is 10 Mb Ethernet.
    pub const HTYPE: usize = 1;
    /// Hardware address length.
    pub const HLEN: usize = 2;
    /// Relay agent hops.
    pub const HOPS: usize = 3;
    /// Transaction ID, chosen by the client.
    pub const XID: Range<usize> = 4..8;
    /// Seconds since the client began acquiring or renewing.
    pub const SECS: Range<usize> = 8..10;
    /// Flags; the leftmost bit is BROADCAST (RFC 2131 §2, Figure 2).
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    /// Client hardware address, `hlen` bytes used.
    pub const CHADDR: Range<usize> = 28..44;
    /// Server host name, or options when overloaded.
    pub const SNAME: Range<usize> = 44..108;
    /// Boot file name, or options when overloaded.
    pub const FILE: Range<usize> = 108..236;
    /// The magic cookie opening the `options` field (RFC 2131 §3).
    pub const COOKIE: Range<usize> = 236..240;
}

/// Length of the fixed BOOTP/DHCP header, up to `options` (RFC 2131 §2).
pub const HEADER_LEN: usize = field::FILE.end;
/// Where the options start, after the magic cookie.
pub const OPTIONS_START: usize = field::COOKIE.end;
/// Bytes of the `chaddr` field (RFC 2131 §2).
pub const CHADDR_LEN: usize = field::CHADDR.end - field::CHADDR.start;
/// The first four bytes of the `options` field: 99.130.83.99 (RFC 2131 §3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// The BROADCAST bit of `flags` (RFC 2131 §2, Figure 2).
pub const FLAG_BROADCAST: u16 = 0x8000;
/// `htype` of Ethernet (RFC 1700, ARP hardware types).
pub const HTYPE_ETHERNET: u8 = 1;
/// Length of an Ethernet address.
pub const ETHERNET_ADDR_LEN: u8 = 6;
/// Pad option: one byte, no length (RFC 2132 §3.1).
pub const OPTION_PAD: u8 = 0;
/// End option: one byte, no length, ends the area (RFC 2132 §3.2).
pub const OPTION_END: u8 = 255;

/// Why a datagram is not a DHCP message at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error(
        "datagram of {len} bytes is shorter than the {HEADER_LEN}-byte BOOTP header (RFC 2131 §2)"
    )]
    TruncatedHeader { len: usize },
    #[error("op {0} is neither BOOTREQUEST (1) nor BOOTREPLY (2) (RFC 2131 §2)")]
    BadOp(u8),
}

/// Message op code (RFC 2131 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Sent by a client (or a relay agent forwarding it).
    BootRequest,
    /// Sent by a server.
    BootReply,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::BootRequest => "request",
            Op::BootReply => "reply",
        }
    }
}

/// DHCP message type, option 53 (RFC 2132 §9.6; 9 RFC 3203; 10-13 RFC 4388).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    ForceRenew,
    LeaseQuery,
    LeaseUnassigned,
    LeaseUnknown,
    LeaseActive,
    Unknown(u8),
}

impl MessageType {
    pub fn from_u8(n: u8) -> MessageType {
        match n {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            9 => MessageType::ForceRenew,
            10 => MessageType::LeaseQuery,
            11 => MessageType::LeaseUnassigned,
            12 => MessageType::LeaseUnknown,
            13 => MessageType::LeaseActive,
            n => MessageType::Unknown(n),
        }
    }

    /// The option value (tshark's `dhcp.option.dhcp`).
    pub fn number(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::ForceRenew => 9,
            MessageType::LeaseQuery => 10,
            MessageType::LeaseUnassigned => 11,
            MessageType::LeaseUnknown => 12,
            MessageType::LeaseActive => 13,
            MessageType::Unknown(n) => n,
        }
    }

    /// The name the RFCs give, without the "DHCP" prefix; `None` for an
    /// unassigned value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            MessageType::Discover => "DISCOVER",
            MessageType::Offer => "OFFER",
            MessageType::Request => "REQUEST",
            MessageType::Decline => "DECLINE",
            MessageType::Ack => "ACK",
            MessageType::Nak => "NAK",
            MessageType::Release => "RELEASE",
            MessageType::Inform => "INFORM",
            MessageType::ForceRenew => "FORCERENEW",
            MessageType::LeaseQuery => "LEASEQUERY",
            MessageType::LeaseUnassigned => "LEASEUNASSIGNED",
            MessageType::LeaseUnknown => "LEASEUNKNOWN",
            MessageType::LeaseActive => "LEASEACTIVE",
            MessageType::Unknown(_) => return None,
        })
    }

    /// The op code a message of this type travels in: what a client sends is
    /// a BOOTREQUEST, what a server sends a BOOTREPLY (RFC 2131 §3, Table 2;
    /// FORCERENEW is sent by a server, RFC 3203 §4; a LEASEQUERY by an
    /// access concentrator, answered by the server, RFC 4388 §6.1).
    pub fn op(self) -> Option<Op> {
        match self {
            MessageType::Discover
            | MessageType::Request
            | MessageType::Decline
            | MessageType::Release
            | MessageType::Inform
            | MessageType::LeaseQuery => Some(Op::BootRequest),
            MessageType::Offer
            | MessageType::Ack
            | MessageType::Nak
            | MessageType::ForceRenew
            | MessageType::LeaseUnassigned
            | MessageType::LeaseUnknown
            | MessageType::LeaseActive => Some(Op::BootReply),
            MessageType::Unknown(_) => None,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.number()),
        }
    }
}

/// The options spanwatch reads (RFC 2132); every other code is carried as
/// `Unknown(n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptionCode {
    /// 12 (RFC 2132 §3.14).
    HostName,
    /// 50 (RFC 2132 §9.1).
    RequestedIp,
    /// 51 (RFC 2132 §9.2).
    LeaseTime,
    /// 52 (RFC 2132 §9.3).
    Overload,
    /// 53 (RFC 2132 §9.6).
    MessageType,
    /// 54 (RFC 2132 §9.7).
    ServerId,
    /// 55 (RFC 2132 §9.8).
    ParameterRequestList,
    /// 60 (RFC 2132 §9.13).
    VendorClass,
    /// 61 (RFC 2132 §9.14).
    ClientId,
    Unknown(u8),
}

impl OptionCode {
    pub fn from_u8(n: u8) -> OptionCode {
        match n {
            12 => OptionCode::HostName,
            50 => OptionCode::RequestedIp,
            51 => OptionCode::LeaseTime,
            52 => OptionCode::Overload,
            53 => OptionCode::MessageType,
            54 => OptionCode::ServerId,
            55 => OptionCode::ParameterRequestList,
            60 => OptionCode::VendorClass,
            61 => OptionCode::ClientId,
            n => OptionCode::Unknown(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            OptionCode::HostName => 12,
            OptionCode::RequestedIp => 50,
            OptionCode::LeaseTime => 51,
            OptionCode::Overload => 52,
            OptionCode::MessageType => 53,
            OptionCode::ServerId => 54,
            OptionCode::ParameterRequestList => 55,
            OptionCode::VendorClass => 60,
            OptionCode::ClientId => 61,
            OptionCode::Unknown(n) => n,
        }
    }

    /// The lengths RFC 2132 allows the option's value: `(min, max)`; a
    /// repeated option's values are concatenated first (RFC 3396 §7).
    pub fn length_range(self) -> (usize, usize) {
        match self {
            OptionCode::RequestedIp | OptionCode::LeaseTime | OptionCode::ServerId => (4, 4),
            OptionCode::Overload | OptionCode::MessageType => (1, 1),
            OptionCode::HostName | OptionCode::ParameterRequestList | OptionCode::VendorClass => {
                (1, usize::MAX)
            }
            OptionCode::ClientId => (2, usize::MAX),
            OptionCode::Unknown(_) => (0, usize::MAX),
        }
    }
}

/// The fields of the message that hold options (RFC 2131 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Area {
    /// The `options` field after the magic cookie.
    Options,
    /// The `file` field, when option 52 says it holds options.
    File,
    /// The `sname` field, when option 52 says it holds options.
    Sname,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Options => "options",
            Area::File => "file",
            Area::Sname => "sname",
        }
    }
}

/// Which fields option 52 says hold options (RFC 2132 §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overload {
    File,
    Sname,
    Both,
}

impl Overload {
    /// 1 `file`, 2 `sname`, 3 both; `None` for other values.
    pub fn from_u8(n: u8) -> Option<Overload> {
        match n {
            1 => Some(Overload::File),
            2 => Some(Overload::Sname),
            3 => Some(Overload::Both),
            _ => None,
        }
    }

    fn file(self) -> bool {
        matches!(self, Overload::File | Overload::Both)
    }

    fn sname(self) -> bool {
        matches!(self, Overload::Sname | Overload::Both)
    }
}

/// One option: its code and its value, borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    pub code: OptionCode,
    pub value: &'a [u8],
    pub area: Area,
    /// Offset of the code byte in the datagram.
    pub offset: usize,
}

/// What is wrong with an option area; the options before it stay readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum OptionError {
    /// The `options` field does not start with 99.130.83.99: a BOOTP
    /// (RFC 951) message, or not DHCP; it has no options.
    #[error("no magic cookie at offset {offset} (RFC 2131 §3): the message has no DHCP options", offset = field::COOKIE.start)]
    MissingMagicCookie,
    /// The length byte, or the value, runs past the end of the field.
    #[error("option {code} at offset {offset} of the {} field declares {declared} bytes, {available} are left (RFC 2132 §2)", area.name())]
    Truncated {
        code: u8,
        area: Area,
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// The field ended without an End option (RFC 2132 §3.2).
    #[error("the {} field has no End option (RFC 2132 §3.2)", area.name())]
    MissingEnd { area: Area },
}

/// A checked DHCP (or BOOTP) message: a datagram of at least
/// [`HEADER_LEN`] bytes with a valid `op`.
#[derive(Clone, Copy, Debug)]
pub struct DhcpMessage<'a> {
    bytes: &'a [u8],
    op: Op,
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    match <[u8; 4]>::try_from(b) {
        Ok(a) => Ipv4Addr::from(a),
        Err(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn be16(b: &[u8]) -> u16 {
    <[u8; 2]>::try_from(b).map_or(0, u16::from_be_bytes)
}

fn be32(b: &[u8]) -> u32 {
    <[u8; 4]>::try_from(b).map_or(0, u32::from_be_bytes)
}

impl<'a> DhcpMessage<'a> {
    /// Checks the header's length and op code; every accessor is then a read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if bytes.len() < HEADER_LEN {
            return Err(ParseError::TruncatedHeader { len: bytes.len() });
        }
        let op = match bytes[field::OP] {
            1 => Op::BootRequest,
            2 => Op::BootReply,
            n => return Err(ParseError::BadOp(n)),
        };
        Ok(DhcpMessage { bytes, op })
    }

    fn get(&self, r: std::ops::Range<usize>) -> &'a [u8] {
        self.bytes.get(r).unwrap_or_default()
    }

    fn byte(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }

    pub fn op(&self) -> Op {
        self.op
    }

    pub fn htype(&self) -> u8 {
        self.byte(field::HTYPE)
    }

    pub fn hlen(&self) -> u8 {
        self.byte(field::HLEN)
    }

    pub fn hops(&self) -> u8 {
        self.byte(field::HOPS)
    }

    pub fn xid(&self) -> u32 {
        be32(self.get(field::XID))
    }

    pub fn secs(&self) -> u16 {
        be16(self.get(field::SECS))
    }

    pub fn flags(&self) -> u16 {
        be16(self.get(field::FLAGS))
    }

    /// The client asks for broadcast replies (RFC 2131 §4.1).
    pub fn broadcast(&self) -> bool {
        self.flags() & FLAG_BROADCAST != 0
    }

    pub fn ciaddr(&self) -> Ipv4Addr {
        ipv4(self.get(field::CIADDR))
    }

    pub fn yiaddr(&self) -> Ipv4Addr {
        ipv4(self.get(field::YIADDR))
    }

    pub fn siaddr(&self) -> Ipv4Addr {
        ipv4(self.get(field::SIADDR))
    }

    /// The relay agent's address; not 0.0.0.0 when a relay forwarded the message.
    pub fn giaddr(&self) -> Ipv4Addr {
        ipv4(self.get(field::GIADDR))
    }

    /// The used part of `chaddr` (`hlen` bytes); all 16 bytes when `hlen`
    /// is larger than the field, which [`DhcpMessage::hlen_valid`] reports.
    pub fn chaddr(&self) -> &'a [u8] {
        let field = self.get(field::CHADDR);
        field.get(..usize::from(self.hlen())).unwrap_or(field)
    }

    /// `hlen` fits the 16-byte `chaddr` field.
    pub fn hlen_valid(&self) -> bool {
        usize::from(self.hlen()) <= CHADDR_LEN
    }

    /// The client's Ethernet address, when `htype` and `hlen` say it is one.
    pub fn client_mac(&self) -> Option<[u8; 6]> {
        if self.htype() != HTYPE_ETHERNET || self.hlen() != ETHERNET_ADDR_LEN {
            return None;
        }
        <[u8; 6]>::try_from(self.chaddr()).ok()
    }

    /// The `options` field starts with the magic cookie (RFC 2131 §3).
    pub fn has_magic_cookie(&self) -> bool {
        self.bytes.get(field::COOKIE) == Some(&MAGIC_COOKIE[..])
    }

    /// The options, in the order RFC 2131 §4.1 reads them: the `options`
    /// field, then `file`, then `sname` when option 52 overloads them. Pad
    /// is skipped and End ends an area; an error ends its area and is
    /// yielded in place.
    pub fn options(&self) -> Options<'a> {
        let cookie = self.has_magic_cookie();
        Options {
            bytes: self.bytes,
            area: Area::Options,
            pos: OPTIONS_START,
            end: self.bytes.len(),
            overload: None,
            pending_error: (!cookie).then_some(OptionError::MissingMagicCookie),
            done: !cookie,
        }
    }
}

/// One step of the option walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionItem<'a> {
    Option(DhcpOption<'a>),
    Error(OptionError),
}

/// Iterator over a message's options (see [`DhcpMessage::options`]).
#[derive(Clone, Debug)]
pub struct Options<'a> {
    bytes: &'a [u8],
    area: Area,
    pos: usize,
    end: usize,
    /// The first valid option 52 of the `options` field.
    overload: Option<Overload>,
    pending_error: Option<OptionError>,
    /// No area is left.
    done: bool,
}

impl<'a> Options<'a> {
    /// Moves to the next area the overload option names, or stops.
    fn next_area(&mut self) {
        let overload = self.overload;
        let next = match self.area {
            Area::Options if overload.is_some_and(Overload::file) => Some(Area::File),
            Area::Options | Area::File if overload.is_some_and(Overload::sname) => {
                Some(Area::Sname)
            }
            _ => None,
        };
        match next {
            Some(area) => {
                let range = match area {
                    Area::File => field::FILE,
                    _ => field::SNAME,
                };
                self.area = area;
                self.pos = range.start;
                self.end = range.end;
            }
            None => self.done = true,
        }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = OptionItem<'a>;

    fn next(&mut self) -> Option<OptionItem<'a>> {
        if let Some(e) = self.pending_error.take() {
            return Some(OptionItem::Error(e));
        }
        while !self.done {
            let area = self.area;
            let Some(&code) = self.bytes.get(self.pos).filter(|_| self.pos < self.end) else {
                self.next_area();
                // Only the options field must carry End: an overloaded field
                // may be filled to its last byte.
                if area == Area::Options {
                    return Some(OptionItem::Error(OptionError::MissingEnd { area }));
                }
                continue;
            };
            let offset = self.pos;
            match code {
                OPTION_PAD => {
                    self.pos += 1;
                    continue;
                }
                OPTION_END => {
                    self.next_area();
                    continue;
                }
                _ => {}
            }
            let len = self
                .bytes
                .get(offset + 1)
                .filter(|_| offset + 1 < self.end)
                .map(|&l| usize::from(l));
            let value_start = offset + 2;
            let value = len.and_then(|l| {
                (value_start + l <= self.end)
                    .then(|| self.bytes.get(value_start..value_start + l))
                    .flatten()
            });
            let (Some(len), Some(value)) = (len, value) else {
                let available = self.end.saturating_sub(value_start);
                self.next_area();
                return Some(OptionItem::Error(OptionError::Truncated {
                    code,
                    area,
                    offset,
                    declared: len.unwrap_or(0),
                    available,
                }));
            };
            self.pos = value_start + len;
            let code = OptionCode::from_u8(code);
            if code == OptionCode::Overload && area == Area::Options && self.overload.is_none() {
                self.overload = match value {
                    [n] => Overload::from_u8(*n),
                    _ => None,
                };
            }
            return Some(OptionItem::Option(DhcpOption {
                code,
                value,
                area,
                offset,
            }));
        }
        None
    }
}

/// Whether a datagram looks like DHCP: `op` 1 or 2, a hardware address that
/// fits `chaddr` with a non-zero type, and the magic cookie at offset 236.
pub fn looks_like_dhcp(payload: &[u8]) -> bool {
    DhcpMessage::parse(payload)
        .is_ok_and(|m| m.htype() != 0 && m.hlen_valid() && m.has_magic_cookie())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A BOOTP header built field by field (RFC 2131 §2, Figure 1), then
    /// the magic cookie and `options` bytes.
    pub(in crate::proto::dhcp) struct Builder {
        pub bytes: Vec<u8>,
    }

    impl Builder {
        pub fn new(op: u8, xid: u32, mac: [u8; 6]) -> Builder {
            let mut bytes = vec![0u8; HEADER_LEN];
            bytes[field::OP] = op;
            bytes[field::HTYPE] = HTYPE_ETHERNET;
            bytes[field::HLEN] = ETHERNET_ADDR_LEN;
            bytes[field::XID].copy_from_slice(&xid.to_be_bytes());
            bytes[field::CHADDR.start..field::CHADDR.start + 6].copy_from_slice(&mac);
            Builder { bytes }
        }

        pub fn set(mut self, range: std::ops::Range<usize>, value: &[u8]) -> Builder {
            self.bytes[range].copy_from_slice(value);
            self
        }

        pub fn yiaddr(self, a: [u8; 4]) -> Builder {
            self.set(field::YIADDR, &a)
        }

        pub fn giaddr(self, a: [u8; 4]) -> Builder {
            self.set(field::GIADDR, &a)
        }

        pub fn flags(self, f: u16) -> Builder {
            self.set(field::FLAGS, &f.to_be_bytes())
        }

        /// Writes `sname` or `file` bytes from their start.
        pub fn area(mut self, area: Area, value: &[u8]) -> Builder {
            let start = match area {
                Area::Sname => field::SNAME.start,
                _ => field::FILE.start,
            };
            self.bytes[start..start + value.len()].copy_from_slice(value);
            self
        }

        /// The magic cookie and then `options` as given (End included by the caller).
        pub fn options(mut self, options: &[u8]) -> Vec<u8> {
            self.bytes.extend_from_slice(&MAGIC_COOKIE);
            self.bytes.extend_from_slice(options);
            self.bytes
        }
    }

    pub(in crate::proto::dhcp) const MAC: [u8; 6] = [0x00, 0x0b, 0x82, 0x01, 0xfc, 0x42];

    fn items(d: &[u8]) -> Vec<OptionItem<'_>> {
        DhcpMessage::parse(d).expect("header").options().collect()
    }

    fn codes(d: &[u8]) -> Vec<(u8, Area, Vec<u8>)> {
        items(d)
            .into_iter()
            .filter_map(|i| match i {
                OptionItem::Option(o) => Some((o.code.number(), o.area, o.value.to_vec())),
                OptionItem::Error(_) => None,
            })
            .collect()
    }

    #[test]
    fn header_fields_at_rfc2131_offsets() {
        // RFC 2131 §2 Figure 1: a DHCPDISCOVER (option 53 = 1, RFC 2132 §9.6)
        // with xid 0x3903F326, secs 0, BROADCAST set, from 00:0b:82:01:fc:42.
        let d = Builder::new(1, 0x3903_F326, MAC)
            .flags(0x8000)
            .yiaddr([192, 168, 0, 10])
            .giaddr([10, 0, 0, 1])
            .options(&[53, 1, 1, 255]);
        let m = DhcpMessage::parse(&d).unwrap();
        assert_eq!(m.op(), Op::BootRequest);
        assert_eq!((m.htype(), m.hlen(), m.hops()), (1, 6, 0));
        assert_eq!(m.xid(), 0x3903_F326);
        assert!(m.broadcast());
        assert_eq!(m.yiaddr(), Ipv4Addr::new(192, 168, 0, 10));
        assert_eq!(m.giaddr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(m.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(m.client_mac(), Some(MAC));
        assert!(m.has_magic_cookie());
        assert_eq!(codes(&d), vec![(53, Area::Options, vec![1])]);
        assert!(looks_like_dhcp(&d));
    }

    #[test]
    fn truncated_header_and_bad_op_are_errors() {
        let d = Builder::new(1, 1, MAC).options(&[255]);
        assert_eq!(
            DhcpMessage::parse(&d[..HEADER_LEN - 1]).unwrap_err(),
            ParseError::TruncatedHeader {
                len: HEADER_LEN - 1
            }
        );
        let mut bad = d.clone();
        bad[0] = 3;
        assert_eq!(DhcpMessage::parse(&bad).unwrap_err(), ParseError::BadOp(3));
        assert!(!looks_like_dhcp(&bad));
    }

    #[test]
    fn bootp_without_cookie_has_no_options() {
        // RFC 951: the 64-byte `vend` field after `file`, here zeros.
        let mut d = Builder::new(1, 7, MAC).bytes;
        d.extend_from_slice(&[0; 64]);
        assert!(!looks_like_dhcp(&d));
        assert_eq!(
            items(&d),
            vec![OptionItem::Error(OptionError::MissingMagicCookie)]
        );
        // The header alone: no room for a cookie.
        let header = Builder::new(2, 7, MAC).bytes;
        assert_eq!(
            items(&header),
            vec![OptionItem::Error(OptionError::MissingMagicCookie)]
        );
    }

    #[test]
    fn pad_is_skipped_and_end_ends_the_field() {
        // RFC 2132 §3.1/§3.2: pads anywhere, nothing after End is read.
        let d =
            Builder::new(1, 1, MAC).options(&[0, 0, 53, 1, 3, 0, 12, 2, b'a', b'b', 255, 12, 1]);
        assert_eq!(
            codes(&d),
            vec![
                (53, Area::Options, vec![3]),
                (12, Area::Options, b"ab".to_vec())
            ]
        );
        assert!(items(&d).iter().all(|i| matches!(i, OptionItem::Option(_))));
    }

    #[test]
    fn option_running_past_the_field_is_truncated() {
        // Host name declares 10 bytes, 3 are left.
        let d = Builder::new(1, 1, MAC).options(&[53, 1, 1, 12, 10, b'a', b'b', b'c']);
        let offset = OPTIONS_START + 3;
        assert_eq!(
            items(&d),
            vec![
                OptionItem::Option(DhcpOption {
                    code: OptionCode::MessageType,
                    value: &[1],
                    area: Area::Options,
                    offset: OPTIONS_START,
                }),
                OptionItem::Error(OptionError::Truncated {
                    code: 12,
                    area: Area::Options,
                    offset,
                    declared: 10,
                    available: 3,
                }),
            ]
        );
        // A code byte with no length byte after it.
        let d = Builder::new(1, 1, MAC).options(&[53]);
        assert!(matches!(
            items(&d).as_slice(),
            [OptionItem::Error(OptionError::Truncated {
                code: 53,
                declared: 0,
                available: 0,
                ..
            })]
        ));
    }

    #[test]
    fn missing_end_is_reported_once_the_options_field_is_read() {
        let d = Builder::new(1, 1, MAC).options(&[53, 1, 1]);
        assert_eq!(
            items(&d).last(),
            Some(&OptionItem::Error(OptionError::MissingEnd {
                area: Area::Options
            }))
        );
    }

    #[test]
    fn overloaded_fields_are_read_file_then_sname_rfc2131_4_1() {
        // Option 52 = 3: `file` then `sname` hold options, each ending in End.
        let d = Builder::new(2, 1, MAC)
            .area(Area::Sname, &[12, 1, b's', 255])
            .area(Area::File, &[60, 1, b'f', 255])
            .options(&[53, 1, 5, 52, 1, 3, 255]);
        assert_eq!(
            codes(&d),
            vec![
                (53, Area::Options, vec![5]),
                (52, Area::Options, vec![3]),
                (60, Area::File, b"f".to_vec()),
                (12, Area::Sname, b"s".to_vec()),
            ]
        );
        // Option 52 = 2: only `sname`; `file` is a file name.
        let d = Builder::new(2, 1, MAC)
            .area(Area::Sname, &[12, 1, b's', 255])
            .area(Area::File, &[60, 1, b'f', 255])
            .options(&[52, 1, 2, 255]);
        assert_eq!(
            codes(&d),
            vec![
                (52, Area::Options, vec![2]),
                (12, Area::Sname, b"s".to_vec())
            ]
        );
        // Without option 52 neither field is read, however option-like it is.
        let d = Builder::new(2, 1, MAC)
            .area(Area::File, &[60, 1, b'f', 255])
            .options(&[255]);
        assert!(codes(&d).is_empty());
        // An overloaded field filled to its last byte needs no End.
        let mut sname = vec![12u8, 62];
        sname.extend_from_slice(&[b'x'; 62]);
        let d = Builder::new(2, 1, MAC)
            .area(Area::Sname, &sname)
            .options(&[52, 1, 2, 255]);
        assert_eq!(items(&d).len(), 2);
        // An option 52 inside an overloaded field changes nothing.
        let d = Builder::new(2, 1, MAC)
            .area(Area::File, &[52, 1, 2, 255])
            .area(Area::Sname, &[12, 1, b's', 255])
            .options(&[52, 1, 1, 255]);
        assert_eq!(
            codes(&d),
            vec![(52, Area::Options, vec![1]), (52, Area::File, vec![2])]
        );
    }

    #[test]
    fn unknown_codes_are_values() {
        let d = Builder::new(1, 1, MAC).options(&[224, 2, 1, 2, 255]);
        assert_eq!(codes(&d), vec![(224, Area::Options, vec![1, 2])]);
        assert_eq!(OptionCode::from_u8(224), OptionCode::Unknown(224));
        for n in 0..=u8::MAX {
            assert_eq!(OptionCode::from_u8(n).number(), n);
            assert_eq!(MessageType::from_u8(n).number(), n);
        }
    }

    #[test]
    fn message_types_and_their_op_rfc2131_table_2() {
        let client = [1u8, 3, 4, 7, 8];
        let server = [2u8, 5, 6];
        for n in client {
            assert_eq!(MessageType::from_u8(n).op(), Some(Op::BootRequest), "{n}");
        }
        for n in server {
            assert_eq!(MessageType::from_u8(n).op(), Some(Op::BootReply), "{n}");
        }
        assert_eq!(MessageType::from_u8(1).to_string(), "DISCOVER");
        assert_eq!(MessageType::from_u8(200).to_string(), "200");
        assert_eq!(MessageType::from_u8(200).op(), None);
    }

    #[test]
    fn probe_needs_sane_hardware_fields_and_the_cookie() {
        let good = Builder::new(1, 1, MAC).options(&[53, 1, 1, 255]);
        assert!(looks_like_dhcp(&good));
        let mut no_htype = good.clone();
        no_htype[field::HTYPE] = 0;
        assert!(!looks_like_dhcp(&no_htype));
        let mut long_hlen = good.clone();
        long_hlen[field::HLEN] = 17;
        assert!(!looks_like_dhcp(&long_hlen));
        let mut cookie = good.clone();
        cookie[field::COOKIE.start] = 98;
        assert!(!looks_like_dhcp(&cookie));
        assert!(!looks_like_dhcp(&good[..OPTIONS_START - 1]));
    }

    #[test]
    fn chaddr_longer_than_its_field_is_cut_to_the_field() {
        let mut d = Builder::new(1, 1, MAC).options(&[255]);
        d[field::HLEN] = 200;
        let m = DhcpMessage::parse(&d).unwrap();
        assert!(!m.hlen_valid());
        assert_eq!(m.chaddr().len(), CHADDR_LEN);
        assert_eq!(m.client_mac(), None);
    }
}
