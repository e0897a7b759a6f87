//! Frame sources: offline capture files (pcap, pcapng) and live interfaces.
//!
//! Every source yields the same thing: a [`Frame`] with its capture timestamp,
//! link type and the captured bytes. Offline and live capture share one packet
//! path from here on.

use std::fmt;
use std::path::PathBuf;

mod file;
mod live;
mod merge;

pub use file::{
    ByteOrder, CaptureFormat, FileSource, MAX_BLOCK_LEN, MAX_CAPLEN, MAX_INTERFACES,
    READ_BUFFER_BYTES, TsPrecision,
};
pub use live::{LiveConfig, LiveSource, LiveStats};
pub use merge::MergedSource;

/// Capture time in nanoseconds since the Unix epoch (UTC).
///
/// Packet time is the only clock offline replay uses, so it is kept exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(i64::from(nanos)),
        )
    }

    pub fn as_nanos(self) -> i64 {
        self.0
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / Self::NANOS_PER_SEC as f64
    }

    pub fn saturating_add_secs(self, secs: u64) -> Self {
        let add = i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(Self::NANOS_PER_SEC);
        Timestamp(self.0.saturating_add(add))
    }

    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn nanos_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds, as Suricata's EVE writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs();
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            self.subsec_nanos() / 1000
        )
    }
}

/// Proleptic Gregorian date from days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days` algorithm).
impl serde::Serialize for Timestamp {
    /// As its RFC 3339 text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// [`civil_from_days`]; H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms").
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Timestamp {
    /// Reads what `Display` writes: `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (RFC
    /// 3339 in UTC, up to nanoseconds); `None` for anything else.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(r)?;
            s.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| s.parse().ok())?
        };
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let rest = text.get(19..)?.strip_suffix('Z')?;
        let nanos = match rest.strip_prefix('.') {
            None if rest.is_empty() => 0,
            Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) => {
                f.parse::<i64>().ok()? * 10_i64.pow(9 - f.len() as u32)
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        let secs = days * 86_400 + h * 3600 + mi * 60 + s;
        Some(Timestamp(
            secs.checked_mul(Self::NANOS_PER_SEC)?.checked_add(nanos)?,
        ))
    }
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Link-layer header type, by its LINKTYPE_ number (tcpdump.org/linktypes.html).
///
/// Unknown values are carried as `Other(n)`: the frame is counted and skipped
/// by the decoder, never an error at the capture layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_NULL (0): BSD loopback, 4-byte address family in host order.
    Null,
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_RAW (101) and DLT_RAW (12/14): a bare IPv4 or IPv6 packet.
    Raw,
    /// LINKTYPE_LOOP (108): like NULL but the family is in network order.
    Loop,
    /// LINKTYPE_LINUX_SLL (113): Linux "cooked" capture v1.
    LinuxSll,
    /// LINKTYPE_IEEE802_11_RADIOTAP (127): radiotap header then an 802.11 frame.
    Ieee80211Radiotap,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL2 (276): Linux "cooked" capture v2.
    LinuxSll2,
    /// Any other LINKTYPE value.
    Other(u32),
}

impl LinkType {
    pub fn from_linktype(value: u32) -> Self {
        match value {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            127 => LinkType::Ieee80211Radiotap,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }
}

/// One captured frame, borrowed from its source until the source advances.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Captured bytes (may be shorter than `orig_len` when the snap length cut it).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// What [`FrameSource::advance`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A frame is available through [`FrameSource::current`].
    Frame,
    /// No frame arrived within the live read timeout; the caller may do
    /// housekeeping (periodic reports) and call `advance` again. Files never
    /// return this.
    Idle,
    /// The source is exhausted (end of file(s), or a live capture was stopped).
    End,
}

/// Anything that yields frames: a capture file, several merged, a live interface.
///
/// A lending interface: `advance` moves to the next frame and `current` borrows
/// it until the next call to `advance`. This keeps the hot path free of copies.
pub trait FrameSource {
    /// Move to the next frame.
    fn advance(&mut self) -> Result<Next, CaptureError>;

    /// The frame `advance` moved to. Only valid after `advance` returned
    /// [`Next::Frame`].
    fn current(&self) -> Frame<'_>;

    /// Timestamp of the current frame (used to merge sources in time order).
    fn current_ts(&self) -> Timestamp {
        self.current().ts
    }

    /// Bytes of input consumed so far (for progress reporting).
    fn bytes_read(&self) -> u64;

    /// Total input size in bytes when known (files), for progress reporting.
    fn total_bytes(&self) -> Option<u64>;
}

/// What went wrong reading a capture, and where.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: not a pcap or pcapng file (first bytes {magic:02x?}); convert it with `editcap -F pcap` or give a capture file"
    )]
    NotACapture { path: PathBuf, magic: Vec<u8> },
    #[error("{path}: {what}")]
    BadHeader { path: PathBuf, what: String },
    /// The file is damaged after `record` complete records: everything before
    /// `offset` was delivered, the rest cannot be read.
    #[error("{path}: damaged at byte offset {offset}, after {record} complete records: {what}")]
    Damaged {
        path: PathBuf,
        record: u64,
        offset: u64,
        what: String,
    },
    #[error("live capture on {interface}: {what}")]
    Live { interface: String, what: String },
}

impl CaptureError {
    /// True when frames before the damage were delivered and the rest of the
    /// input can be skipped with a warning.
    pub fn is_damage(&self) -> bool {
        matches!(self, CaptureError::Damaged { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_text_reads_back() {
        // 1700000000 s = 2023-11-14T22:13:20Z (`date -u -d @1700000000`).
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_000);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20.123456Z"),
            Some(t)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(Timestamp::from_secs_nanos(1_700_000_000, 0))
        );
        // 951782400 s = 2000-02-29T00:00:00Z, a leap day (`date -u -d @951782400`).
        assert_eq!(
            Timestamp::parse_rfc3339("2000-02-29T00:00:00.5Z"),
            Some(Timestamp::from_secs_nanos(951_782_400, 500_000_000))
        );
        for bad in [
            "",
            "2023-11-14 22:13:20Z",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+01:00",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
