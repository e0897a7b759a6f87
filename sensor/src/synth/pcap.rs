//! Minimal classic-pcap writer (microsecond timestamps, little endian).
//!
//! File format per draft-ietf-opsawg-pcap (§4 file header, §5 packet record):
//! a 24-byte header (magic `0xA1B2C3D4`, version 2.4, SnapLen, LinkType), then
//! for each packet a 16-byte record header (seconds, microseconds, captured
//! length, original length) followed by the captured bytes.

use std::io::{self, Write};

use crate::capture::Timestamp;

/// LINKTYPE_ETHERNET (tcpdump.org/linktypes.html).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// SnapLen written in the header; also the largest record accepted (tcpdump's
/// default snapshot length).
pub const PCAP_SNAPLEN: u32 = 262_144;

/// Writes a classic pcap stream: the file header on creation, then one record
/// per call. Buffering is the caller's choice (wrap `out` in a `BufWriter`).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header for `linktype` (e.g. [`LINKTYPE_ETHERNET`]).
    pub fn new(mut out: W, linktype: u32) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..16: thiszone and sigfigs, both zero.
        header[16..20].copy_from_slice(&PCAP_SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// One record holding the whole frame (captured length = original length).
    pub fn write_frame(&mut self, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.write_truncated(ts, data, len)
    }

    /// One record whose frame was `orig_len` bytes on the wire, of which
    /// `data` was captured (for tests of snap-length handling).
    ///
    /// Fails with `InvalidInput` when the timestamp is outside classic pcap's
    /// unsigned 32-bit seconds (1970..2106), when `data` exceeds
    /// [`PCAP_SNAPLEN`], or when `orig_len` is shorter than `data`.
    pub fn write_truncated(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let secs = u32::try_from(ts.secs()).map_err(|_| {
            invalid(format!(
                "timestamp {} is outside classic pcap's range (1970..2106)",
                ts.as_nanos()
            ))
        })?;
        let incl = u32::try_from(data.len())
            .ok()
            .filter(|&n| n <= PCAP_SNAPLEN)
            .ok_or_else(|| {
                invalid(format!(
                    "frame of {} bytes exceeds the snap length {PCAP_SNAPLEN}",
                    data.len()
                ))
            })?;
        if orig_len < incl {
            return Err(invalid(format!(
                "original length {orig_len} is shorter than the {incl} captured bytes"
            )));
        }
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&(ts.subsec_nanos() / 1000).to_le_bytes());
        rec[8..12].copy_from_slice(&incl.to_le_bytes());
        rec[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(data)
    }

    /// Flush and return the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_follow_the_classic_layout() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
        let ts = Timestamp::from_secs_nanos(0x0102_0304, 5_006_999);
        w.write_truncated(ts, &[0xAA, 0xBB], 60).unwrap();
        let bytes = w.into_inner().unwrap();
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xD4, 0xC3, 0xB2, 0xA1, // magic, microsecond resolution, little endian
            2, 0, 4, 0,             // version 2.4
            0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
            0, 0, 4, 0,             // snaplen 262144
            1, 0, 0, 0,             // LINKTYPE_ETHERNET
            4, 3, 2, 1,             // ts_sec
            0x8E, 0x13, 0, 0,       // ts_usec 5006 (nanoseconds truncated)
            2, 0, 0, 0,             // captured length
            60, 0, 0, 0,            // original length
            0xAA, 0xBB,
        ];
        assert_eq!(bytes, want);
    }

    #[test]
    fn rejects_timestamps_before_1970_and_oversized_frames() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET).unwrap();
        let early = Timestamp::from_secs_nanos(-1, 0);
        assert_eq!(
            w.write_frame(early, &[1]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let big = vec![0u8; PCAP_SNAPLEN as usize + 1];
        assert!(w.write_frame(Timestamp(0), &big).is_err());
        assert!(w.write_truncated(Timestamp(0), &[1, 2, 3], 2).is_err());
        assert_eq!(w.into_inner().unwrap().len(), 24);
    }
}
