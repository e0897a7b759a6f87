//! Why a frame could not be decoded.

/// Why a frame could not be decoded. Each reason is a counter in [`super::DecodeStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    #[error("link-layer header truncated")]
    LinkTruncated,
    #[error("unsupported link type")]
    UnsupportedLinkType,
    #[error("more stacked VLAN tags than supported")]
    VlanTooDeep,
    #[error("IP version is neither 4 nor 6")]
    IpVersion,
    #[error("IP header truncated")]
    IpTruncated,
    #[error("IP header malformed")]
    IpMalformed,
    #[error("IPv6 extension header malformed")]
    Ipv6ExtMalformed,
    #[error("TCP header truncated or malformed")]
    TcpMalformed,
    #[error("UDP header truncated")]
    UdpTruncated,
    #[error("ICMP header truncated")]
    IcmpTruncated,
}

impl DecodeError {
    pub const ALL: [DecodeError; 10] = [
        DecodeError::LinkTruncated,
        DecodeError::UnsupportedLinkType,
        DecodeError::VlanTooDeep,
        DecodeError::IpVersion,
        DecodeError::IpTruncated,
        DecodeError::IpMalformed,
        DecodeError::Ipv6ExtMalformed,
        DecodeError::TcpMalformed,
        DecodeError::UdpTruncated,
        DecodeError::IcmpTruncated,
    ];

    /// Stable snake_case name used in summaries and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DecodeError::LinkTruncated => "link_truncated",
            DecodeError::UnsupportedLinkType => "unsupported_link_type",
            DecodeError::VlanTooDeep => "vlan_too_deep",
            DecodeError::IpVersion => "ip_version",
            DecodeError::IpTruncated => "ip_truncated",
            DecodeError::IpMalformed => "ip_malformed",
            DecodeError::Ipv6ExtMalformed => "ipv6_ext_malformed",
            DecodeError::TcpMalformed => "tcp_malformed",
            DecodeError::UdpTruncated => "udp_truncated",
            DecodeError::IcmpTruncated => "icmp_truncated",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}
