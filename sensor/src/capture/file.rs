//! Streaming reader for capture files: classic pcap and pcapng.
//!
//! Formats followed:
//! - classic pcap: draft-ietf-opsawg-pcap, §4 (file header) and §5 (packet
//!   record); magics `a1b2c3d4` (microseconds) and `a1b23c4d` (nanoseconds) in
//!   either byte order, plus the "modified" (Kuznetzov) variant `a1b2cd34`
//!   whose record header carries 8 more bytes (ifindex, protocol, packet type).
//! - pcapng: draft-ietf-opsawg-pcapng, §3.1 (general block structure), §3.5
//!   (options), §4.1 (Section Header Block), §4.2 (Interface Description Block
//!   with `if_tsresol` and `if_tsoffset`), §4.3 (Enhanced Packet Block), §4.4
//!   (Simple Packet Block) and Appendix A (obsolete Packet Block). Every other
//!   block is skipped by its length.
//!
//! Memory is constant for any file size: one read buffer ([`READ_BUFFER_BYTES`]),
//! grown only for a pcapng block that does not fit, and never beyond
//! [`MAX_BLOCK_LEN`]. Input is read in buffer-sized chunks, and a frame borrows
//! its bytes from the buffer, so the read itself is the only copy.
//!
//! Damage (a record cut short, an implausible length, a pcapng block that does
//! not add up, a packet for an interface that was never described) ends the
//! file: [`advance`](FrameSource::advance) returns [`CaptureError::Damaged`]
//! once, naming the byte offset of the damaged record, and `Next::End` after.
//! Frames before the damage were already delivered; the error's `record` is
//! their count (packet records only: pcapng blocks without a packet are not
//! counted).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{CaptureError, Frame, FrameSource, LinkType, Next, Timestamp};

/// Largest captured length accepted for one frame: 256 KiB, the standard
/// maximum of libpcap and Wireshark. A longer record means the file is damaged.
pub const MAX_CAPLEN: u32 = 256 * 1024;

/// Largest pcapng block accepted (16 MiB, as Wireshark). A longer block length
/// means the file is damaged; the read buffer never grows beyond this.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// Most interfaces one pcapng section may describe; more is treated as damage.
pub const MAX_INTERFACES: usize = 65_536;

/// Size of the reusable read buffer.
pub const READ_BUFFER_BYTES: usize = 1 << 20;

/// Classic pcap file header length (draft-ietf-opsawg-pcap §4).
const PCAP_HEADER_LEN: usize = 24;
/// Classic pcap record header length (§5), and the modified variant's.
const PCAP_RECORD_LEN: usize = 16;
const PCAP_MODIFIED_RECORD_LEN: usize = 24;
/// Classic pcap magic numbers, as read in the file's own byte order.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
/// libpcap's LT_LINKTYPE mask: the upper bits of the header's link type field
/// carry FCS information, not the link type.
const LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// pcapng block types (§4 and Appendix A). The SHB type reads the same in both
/// byte orders.
const BLOCK_SHB: u32 = 0x0a0d_0d0a;
const BLOCK_IDB: u32 = 1;
const BLOCK_PB: u32 = 2;
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;
/// Byte-order magic of a Section Header Block (§4.1).
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Block type + block total length.
const BLOCK_HEAD_LEN: usize = 8;
/// Block type + length + byte-order magic: enough to read an SHB's length.
const SHB_HEAD_LEN: usize = 12;
/// Smallest legal block: type, leading length, trailing length.
const BLOCK_MIN_LEN: u32 = 12;
/// Trailing block total length.
const BLOCK_TRAILER_LEN: usize = 4;
/// Fixed parts of each block, trailing length included.
const SHB_MIN_LEN: usize = 28;
const IDB_MIN_LEN: usize = 20;
const EPB_MIN_LEN: usize = 32;
const SPB_MIN_LEN: usize = 16;
/// Offset of packet data in an EPB / obsolete PB, and in an SPB.
const EPB_DATA_OFFSET: usize = 28;
const SPB_DATA_OFFSET: usize = 12;
/// IDB options start after type, length, link type, reserved, snaplen.
const IDB_OPTIONS_OFFSET: usize = 16;
/// Option codes (§3.5, §4.2).
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// The pcapng major version this reader knows (§4.1).
const PCAPNG_MAJOR: u16 = 1;
/// The classic pcap major version this reader knows (§4).
const PCAP_MAJOR: u16 = 2;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Byte order of a capture file or pcapng section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }

    fn i64(self, b: [u8; 8]) -> i64 {
        match self {
            ByteOrder::Little => i64::from_le_bytes(b),
            ByteOrder::Big => i64::from_be_bytes(b),
        }
    }
}

impl fmt::Display for ByteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        })
    }
}

/// Timestamp precision of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsPrecision {
    Micros,
    Nanos,
}

/// What kind of capture file a [`FileSource`] reads, for the run summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format; `modified` is the Kuznetzov variant (`a1b2cd34`).
    Pcap {
        byte_order: ByteOrder,
        precision: TsPrecision,
        modified: bool,
        version_major: u16,
        version_minor: u16,
        snaplen: u32,
        link: LinkType,
    },
    /// pcapng; the byte order is the first section's (later sections may differ).
    PcapNg { byte_order: ByteOrder },
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureFormat::Pcap {
                byte_order,
                precision,
                modified,
                version_major,
                version_minor,
                snaplen,
                link,
            } => {
                let kind = if *modified { "modified pcap" } else { "pcap" };
                let unit = match precision {
                    TsPrecision::Micros => "microsecond",
                    TsPrecision::Nanos => "nanosecond",
                };
                write!(
                    f,
                    "{kind} {version_major}.{version_minor} ({byte_order}, {unit} timestamps, \
                     snaplen {snaplen}, link type {link:?})"
                )
            }
            CaptureFormat::PcapNg { byte_order } => write!(f, "pcapng ({byte_order})"),
        }
    }
}

/// Unit of a pcapng interface's timestamps, from `if_tsresol` (§4.2): the most
/// significant bit selects a negative power of 2 (set) or of 10 (clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsUnit {
    /// 10^-n with n <= 9: whole nanoseconds per unit.
    NanosPerUnit(u64),
    /// 10^-n with n > 9: units per nanosecond (sub-nanosecond digits dropped).
    UnitsPerNano(u64),
    /// 2^-n.
    Binary(u32),
}

impl TsUnit {
    /// The default when an interface has no `if_tsresol`: microseconds.
    const MICROS: TsUnit = TsUnit::NanosPerUnit(1_000);

    fn from_tsresol(value: u8) -> TsUnit {
        let exp = u32::from(value & 0x7f);
        if value & 0x80 != 0 {
            TsUnit::Binary(exp)
        } else if let Some(below_nanos) = 9u32.checked_sub(exp) {
            TsUnit::NanosPerUnit(10u64.pow(below_nanos))
        } else {
            // 10^-(n) for n > 9; 10^(n-9) overflows u64 from n = 29 on, and
            // then every 64-bit timestamp is below one nanosecond anyway.
            TsUnit::UnitsPerNano(10u64.checked_pow(exp - 9).unwrap_or(u64::MAX))
        }
    }

    fn to_nanos(self, units: u64) -> i128 {
        match self {
            TsUnit::NanosPerUnit(mul) => i128::from(units) * i128::from(mul),
            TsUnit::UnitsPerNano(div) => i128::from(units / div),
            // exp <= 127 and units * 10^9 < 2^94, so neither the shift nor the
            // result can overflow.
            TsUnit::Binary(exp) => {
                let nanos = (u128::from(units) * 1_000_000_000) >> exp;
                i128::try_from(nanos).unwrap_or(i128::MAX)
            }
        }
    }
}

/// One pcapng interface (IDB) of the current section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    unit: TsUnit,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_secs: i64,
}

impl Interface {
    fn timestamp(&self, units: u64) -> Timestamp {
        let nanos = self.unit.to_nanos(units) + i128::from(self.offset_secs) * NANOS_PER_SEC;
        Timestamp(clamp_i64(nanos))
    }
}

fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// How records are laid out, fixed by the file header (pcap) or by the current
/// section (pcapng).
#[derive(Debug)]
enum Layout {
    Pcap {
        order: ByteOrder,
        record_len: usize,
        nanos_per_frac: i64,
        link: LinkType,
    },
    PcapNg,
}

/// State of the current pcapng section (unused for classic pcap).
#[derive(Debug)]
struct Section {
    order: ByteOrder,
    interfaces: Vec<Interface>,
    /// Timestamp given to a Simple Packet Block, which has none: the last one
    /// seen in this file, so time order is kept.
    last_ts: Timestamp,
}

/// The frame `current` returns, as a range of the read buffer.
#[derive(Clone, Copy, Debug)]
struct Current {
    ts: Timestamp,
    link: LinkType,
    start: usize,
    len: usize,
    orig_len: u32,
}

/// A packet found in a pcapng block, with its data as a range of the block.
struct BlockPacket {
    ts: Timestamp,
    link: LinkType,
    data_offset: usize,
    caplen: usize,
    orig_len: u32,
}

/// Why a read stopped: the input failed, or the file is damaged at `offset`.
enum Fault {
    Io(io::Error),
    Damage { offset: u64, what: String },
}

impl From<io::Error> for Fault {
    fn from(e: io::Error) -> Self {
        Fault::Io(e)
    }
}

fn damage(offset: u64, what: String) -> Fault {
    Fault::Damage { offset, what }
}

/// A capture file (pcap or pcapng) read as a stream of frames.
///
/// `R` is the byte source; [`FileSource::open`] reads a file, and
/// [`FileSource::from_reader`] takes any reader (stdin, a pipe, bytes in memory).
pub struct FileSource<R = File> {
    path: PathBuf,
    reader: R,
    /// Read buffer: `buf[pos..end]` holds input not parsed yet.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
    total: Option<u64>,
    format: CaptureFormat,
    layout: Layout,
    section: Section,
    frames: u64,
    current: Current,
    finished: bool,
}

impl FileSource<File> {
    /// Open a capture file and read its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let io_error = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let total = file.metadata().map_err(io_error)?.len();
        FileSource::from_reader(path, file, Some(total))
    }
}

impl<R: Read> FileSource<R> {
    /// Read a capture from any byte source. `path` names it in errors;
    /// `total_bytes` is its size when known, for progress reporting.
    pub fn from_reader(
        path: impl Into<PathBuf>,
        reader: R,
        total_bytes: Option<u64>,
    ) -> Result<Self, CaptureError> {
        Self::with_buffer(path.into(), reader, total_bytes, READ_BUFFER_BYTES)
    }

    fn with_buffer(
        path: PathBuf,
        reader: R,
        total: Option<u64>,
        buffer_bytes: usize,
    ) -> Result<Self, CaptureError> {
        let mut source = FileSource {
            path,
            reader,
            buf: vec![0; buffer_bytes.max(SHB_MIN_LEN)],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            total,
            format: CaptureFormat::PcapNg {
                byte_order: ByteOrder::Little,
            },
            layout: Layout::PcapNg,
            section: Section {
                order: ByteOrder::Little,
                interfaces: Vec::new(),
                last_ts: Timestamp::default(),
            },
            frames: 0,
            current: Current {
                ts: Timestamp::default(),
                link: LinkType::Ethernet,
                start: 0,
                len: 0,
                orig_len: 0,
            },
            finished: false,
        };
        source.read_file_header()?;
        Ok(source)
    }

    /// The file format, as found in its header.
    pub fn format(&self) -> &CaptureFormat {
        &self.format
    }

    /// The name given when opening.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames delivered so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn io_error(&self, source: io::Error) -> CaptureError {
        CaptureError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn bad_header(&self, what: String) -> CaptureError {
        CaptureError::BadHeader {
            path: self.path.clone(),
            what,
        }
    }

    /// Input offset of the parse position.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn available(&self) -> usize {
        self.end - self.pos
    }

    /// The unparsed input, `len` bytes of it (fewer only if not buffered).
    fn window(&self, len: usize) -> &[u8] {
        let stop = self.pos.saturating_add(len).min(self.end);
        self.buf.get(self.pos..stop).unwrap_or(&[])
    }

    /// Make `need` bytes available at the parse position, reading more input.
    /// False when the input ends first. `need` must not exceed
    /// [`MAX_BLOCK_LEN`] (callers check lengths against it first).
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.available() >= need {
            return Ok(true);
        }
        if self.pos + need > self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            if need > self.buf.len() {
                let grown = need.max(self.buf.len().saturating_mul(2));
                self.buf
                    .resize(grown.min(MAX_BLOCK_LEN as usize).max(need), 0);
            }
        }
        // From here `end < buf.len()`: `end - pos < need <= buf.len() - pos`.
        while self.available() < need {
            if self.eof {
                return Ok(false);
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.reader.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Consume `count` bytes without keeping them. False if the input ends first.
    fn discard(&mut self, mut count: u64) -> io::Result<bool> {
        loop {
            let available = self.available() as u64;
            if available >= count {
                // count <= available, which is a buffer length.
                self.pos += count as usize;
                return Ok(true);
            }
            count -= available;
            self.base += self.end as u64;
            self.pos = 0;
            self.end = 0;
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        self.fill(PCAP_HEADER_LEN).map_err(|e| self.io_error(e))?;
        let head = self.window(PCAP_HEADER_LEN);
        if head.is_empty() {
            return Err(
                self.bad_header("empty file (0 bytes): not a pcap or pcapng capture".to_string())
            );
        }
        let Some(magic) = head.first_chunk::<4>().copied() else {
            return Err(self.bad_header(format!(
                "file is only {} bytes, too short for a capture file header",
                head.len()
            )));
        };
        if u32::from_le_bytes(magic) == BLOCK_SHB {
            let order = match self.read_section_header() {
                Ok(order) => order,
                Err(Fault::Io(e)) => return Err(self.io_error(e)),
                Err(Fault::Damage { what, .. }) => return Err(self.bad_header(what)),
            };
            self.format = CaptureFormat::PcapNg { byte_order: order };
            return Ok(());
        }
        let Some((order, precision, modified)) = pcap_magic(magic) else {
            return Err(CaptureError::NotACapture {
                path: self.path.clone(),
                magic: magic.to_vec(),
            });
        };
        let Some(header) = head.first_chunk::<PCAP_HEADER_LEN>().copied() else {
            return Err(self.bad_header(format!(
                "pcap file header cut short: {} of {PCAP_HEADER_LEN} bytes",
                head.len()
            )));
        };
        let version_major = order.u16([header[4], header[5]]);
        let version_minor = order.u16([header[6], header[7]]);
        if version_major != PCAP_MAJOR {
            return Err(self.bad_header(format!(
                "unsupported pcap version {version_major}.{version_minor} (this reader knows {PCAP_MAJOR}.x)"
            )));
        }
        let snaplen = order.u32([header[16], header[17], header[18], header[19]]);
        let network = order.u32([header[20], header[21], header[22], header[23]]);
        let link = LinkType::from_linktype(network & LINKTYPE_MASK);
        self.pos += PCAP_HEADER_LEN;
        self.format = CaptureFormat::Pcap {
            byte_order: order,
            precision,
            modified,
            version_major,
            version_minor,
            snaplen,
            link,
        };
        self.layout = Layout::Pcap {
            order,
            record_len: if modified {
                PCAP_MODIFIED_RECORD_LEN
            } else {
                PCAP_RECORD_LEN
            },
            nanos_per_frac: match precision {
                TsPrecision::Micros => 1_000,
                TsPrecision::Nanos => 1,
            },
            link,
        };
        Ok(())
    }

    /// Read the Section Header Block at the parse position and start a new
    /// section with it: its byte order, and no interfaces yet (§4.1).
    fn read_section_header(&mut self) -> Result<ByteOrder, Fault> {
        let at = self.offset();
        if !self.fill(SHB_HEAD_LEN)? {
            return Err(damage(
                at,
                format!(
                    "section header cut short: {} of {SHB_HEAD_LEN} bytes at end of file",
                    self.available()
                ),
            ));
        }
        let head = self.window(SHB_HEAD_LEN);
        let (Some(len_bytes), Some(bom)) = (
            head.get(4..8).and_then(|b| <[u8; 4]>::try_from(b).ok()),
            head.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok()),
        ) else {
            return Err(damage(at, "section header unreadable".to_string()));
        };
        let order = if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
            ByteOrder::Little
        } else if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
            ByteOrder::Big
        } else {
            return Err(damage(
                at,
                format!(
                    "section header byte-order magic {bom:02x?} is neither 1a2b3c4d nor 4d3c2b1a"
                ),
            ));
        };
        let len = order.u32(len_bytes);
        let block_len = self.load_block(at, order, BLOCK_SHB, len)?.len();
        let Some(fixed) = self.window(block_len).first_chunk::<SHB_MIN_LEN>().copied() else {
            return Err(damage(
                at,
                format!(
                    "section header block of {len} bytes is shorter than its {SHB_MIN_LEN}-byte minimum"
                ),
            ));
        };
        let major = order.u16([fixed[12], fixed[13]]);
        let minor = order.u16([fixed[14], fixed[15]]);
        if major != PCAPNG_MAJOR {
            return Err(damage(
                at,
                format!(
                    "unsupported pcapng version {major}.{minor} (this reader knows {PCAPNG_MAJOR}.x)"
                ),
            ));
        }
        self.pos += block_len;
        self.layout = Layout::PcapNg;
        self.section.order = order;
        self.section.interfaces.clear();
        Ok(order)
    }

    /// Check a block's length, buffer the whole block and check its trailing
    /// length (§3.1). Returns the block's bytes; the parse position stays at
    /// its start.
    fn load_block(
        &mut self,
        at: u64,
        order: ByteOrder,
        block_type: u32,
        len: u32,
    ) -> Result<&[u8], Fault> {
        check_block_len(block_type, len).map_err(|what| damage(at, what))?;
        let len = len as usize;
        if !self.fill(len)? {
            return Err(damage(
                at,
                format!(
                    "block of type {block_type:#x} and {len} bytes cut short: {} bytes left at end of file",
                    self.available()
                ),
            ));
        }
        let block = self.window(len);
        let trailer = block
            .last_chunk::<BLOCK_TRAILER_LEN>()
            .map(|b| order.u32(*b))
            .unwrap_or(0);
        if trailer as usize != len {
            return Err(damage(
                at,
                format!(
                    "block of type {block_type:#x}: trailing length {trailer} differs from leading length {len}"
                ),
            ));
        }
        Ok(block)
    }

    fn next_pcap(
        &mut self,
        order: ByteOrder,
        record_len: usize,
        nanos_per_frac: i64,
        link: LinkType,
    ) -> Result<Next, Fault> {
        let at = self.offset();
        if !self.fill(record_len)? {
            let have = self.available();
            if have == 0 {
                return Ok(Next::End);
            }
            return Err(damage(
                at,
                format!("record header cut short: {have} of {record_len} bytes at end of file"),
            ));
        }
        let Some(header) = self.window(record_len).first_chunk::<PCAP_RECORD_LEN>() else {
            return Err(damage(at, "record header unreadable".to_string()));
        };
        let ts_sec = order.u32([header[0], header[1], header[2], header[3]]);
        let ts_frac = order.u32([header[4], header[5], header[6], header[7]]);
        let caplen = order.u32([header[8], header[9], header[10], header[11]]);
        let orig_len = order.u32([header[12], header[13], header[14], header[15]]);
        if caplen > MAX_CAPLEN {
            return Err(damage(
                at,
                format!("implausible captured length {caplen} (limit {MAX_CAPLEN})"),
            ));
        }
        let total = record_len + caplen as usize;
        if !self.fill(total)? {
            return Err(damage(
                at,
                format!(
                    "record data cut short: {} of {caplen} bytes at end of file",
                    self.available() - record_len
                ),
            ));
        }
        // Both fit in i64: u32::MAX * 10^9 + u32::MAX * 1000 < 2^63.
        let nanos =
            i64::from(ts_sec) * Timestamp::NANOS_PER_SEC + i64::from(ts_frac) * nanos_per_frac;
        self.current = Current {
            ts: Timestamp(nanos),
            link,
            start: self.pos + record_len,
            len: caplen as usize,
            orig_len,
        };
        self.pos += total;
        Ok(Next::Frame)
    }

    fn next_pcapng(&mut self) -> Result<Next, Fault> {
        loop {
            let at = self.offset();
            if !self.fill(BLOCK_HEAD_LEN)? {
                let have = self.available();
                if have == 0 {
                    return Ok(Next::End);
                }
                return Err(damage(
                    at,
                    format!(
                        "block header cut short: {have} of {BLOCK_HEAD_LEN} bytes at end of file"
                    ),
                ));
            }
            let Some(head) = self
                .window(BLOCK_HEAD_LEN)
                .first_chunk::<BLOCK_HEAD_LEN>()
                .copied()
            else {
                return Err(damage(at, "block header unreadable".to_string()));
            };
            if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == BLOCK_SHB {
                self.read_section_header()?;
                continue;
            }
            let order = self.section.order;
            let block_type = order.u32([head[0], head[1], head[2], head[3]]);
            let len = order.u32([head[4], head[5], head[6], head[7]]);
            match block_type {
                BLOCK_IDB | BLOCK_EPB | BLOCK_SPB | BLOCK_PB => {}
                _ => {
                    self.skip_block(at, order, block_type, len)?;
                    continue;
                }
            }
            let block_len = self.load_block(at, order, block_type, len)?.len();
            let Some(block) = self.buf.get(self.pos..self.pos + block_len) else {
                return Err(damage(at, "block unreadable".to_string()));
            };
            let Section {
                interfaces,
                last_ts,
                ..
            } = &mut self.section;
            if block_type == BLOCK_IDB {
                if interfaces.len() >= MAX_INTERFACES {
                    return Err(damage(
                        at,
                        format!("more than {MAX_INTERFACES} interfaces in one section"),
                    ));
                }
                interfaces.push(parse_idb(order, block).map_err(|what| damage(at, what))?);
                self.pos += block_len;
                continue;
            }
            let packet = parse_packet_block(order, block_type, block, interfaces, *last_ts)
                .map_err(|what| damage(at, what))?;
            *last_ts = packet.ts;
            self.current = Current {
                ts: packet.ts,
                link: packet.link,
                start: self.pos + packet.data_offset,
                len: packet.caplen,
                orig_len: packet.orig_len,
            };
            self.pos += block_len;
            return Ok(Next::Frame);
        }
    }

    /// Skip a block this reader does not use, without buffering it whole, and
    /// check its trailing length.
    fn skip_block(
        &mut self,
        at: u64,
        order: ByteOrder,
        block_type: u32,
        len: u32,
    ) -> Result<(), Fault> {
        check_block_len(block_type, len).map_err(|what| damage(at, what))?;
        let cut_short = || {
            damage(
                at,
                format!("block of type {block_type:#x} and {len} bytes cut short at end of file"),
            )
        };
        if !self.discard(u64::from(len) - BLOCK_TRAILER_LEN as u64)?
            || !self.fill(BLOCK_TRAILER_LEN)?
        {
            return Err(cut_short());
        }
        let trailer = self
            .window(BLOCK_TRAILER_LEN)
            .first_chunk::<BLOCK_TRAILER_LEN>()
            .map(|b| order.u32(*b))
            .unwrap_or(0);
        if trailer != len {
            return Err(damage(
                at,
                format!(
                    "block of type {block_type:#x}: trailing length {trailer} differs from leading length {len}"
                ),
            ));
        }
        self.pos += BLOCK_TRAILER_LEN;
        Ok(())
    }
}

/// Byte order, precision and modified-variant flag from a classic pcap magic.
fn pcap_magic(magic: [u8; 4]) -> Option<(ByteOrder, TsPrecision, bool)> {
    let read = |order: ByteOrder| match order.u32(magic) {
        MAGIC_MICROS => Some((order, TsPrecision::Micros, false)),
        MAGIC_NANOS => Some((order, TsPrecision::Nanos, false)),
        MAGIC_MODIFIED => Some((order, TsPrecision::Micros, true)),
        _ => None,
    };
    read(ByteOrder::Little).or_else(|| read(ByteOrder::Big))
}

/// A block total length must be a multiple of 4, hold at least type and both
/// lengths, and stay under [`MAX_BLOCK_LEN`] (§3.1).
fn check_block_len(block_type: u32, len: u32) -> Result<(), String> {
    if len < BLOCK_MIN_LEN {
        Err(format!(
            "block of type {block_type:#x} has length {len}, below the {BLOCK_MIN_LEN}-byte minimum"
        ))
    } else if len % 4 != 0 {
        Err(format!(
            "block of type {block_type:#x} has length {len}, not a multiple of 4"
        ))
    } else if len > MAX_BLOCK_LEN {
        Err(format!(
            "block of type {block_type:#x} has length {len}, above the {MAX_BLOCK_LEN}-byte limit"
        ))
    } else {
        Ok(())
    }
}

/// Interface Description Block (§4.2): link type, snaplen and the options that
/// change timestamps. Other options are skipped; a malformed option list ends
/// option parsing (the interface keeps the defaults for what was not read).
fn parse_idb(order: ByteOrder, block: &[u8]) -> Result<Interface, String> {
    let Some(fixed) = block.first_chunk::<IDB_MIN_LEN>() else {
        return Err(format!(
            "interface description block of {} bytes is shorter than its {IDB_MIN_LEN}-byte minimum",
            block.len()
        ));
    };
    let link = LinkType::from_linktype(u32::from(order.u16([fixed[8], fixed[9]])));
    let snaplen = order.u32([fixed[12], fixed[13], fixed[14], fixed[15]]);
    let options_end = block.len() - BLOCK_TRAILER_LEN;
    let mut options = block.get(IDB_OPTIONS_OFFSET..options_end).unwrap_or(&[]);
    let mut interface = Interface {
        link,
        snaplen,
        unit: TsUnit::MICROS,
        offset_secs: 0,
    };
    while let Some((head, rest)) = options.split_first_chunk::<4>() {
        let code = order.u16([head[0], head[1]]);
        let len = usize::from(order.u16([head[2], head[3]]));
        let Some(value) = rest.get(..len) else { break };
        match (code, value) {
            (OPT_ENDOFOPT, _) => break,
            (OPT_IF_TSRESOL, [resol]) => interface.unit = TsUnit::from_tsresol(*resol),
            (OPT_IF_TSOFFSET, value) => {
                if let Ok(bytes) = <[u8; 8]>::try_from(value) {
                    interface.offset_secs = order.i64(bytes);
                }
            }
            _ => {}
        }
        options = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    Ok(interface)
}

/// Enhanced Packet Block (§4.3), obsolete Packet Block (Appendix A) or Simple
/// Packet Block (§4.4). `block` is the whole block, trailing length included.
fn parse_packet_block(
    order: ByteOrder,
    block_type: u32,
    block: &[u8],
    interfaces: &[Interface],
    last_ts: Timestamp,
) -> Result<BlockPacket, String> {
    let body_end = block.len() - BLOCK_TRAILER_LEN;
    if block_type == BLOCK_SPB {
        let Some(fixed) = block.first_chunk::<SPB_MIN_LEN>() else {
            return Err(format!(
                "simple packet block of {} bytes is shorter than its {SPB_MIN_LEN}-byte minimum",
                block.len()
            ));
        };
        let Some(interface) = interfaces.first() else {
            return Err("simple packet block before any interface description".to_string());
        };
        let orig_len = order.u32([fixed[8], fixed[9], fixed[10], fixed[11]]);
        // Captured length is the smallest of the original length, the room in
        // the block and the interface's snaplen (0 = no limit).
        let room = body_end - SPB_DATA_OFFSET;
        let mut caplen = (orig_len as usize).min(room);
        if interface.snaplen != 0 {
            caplen = caplen.min(interface.snaplen as usize);
        }
        if caplen > MAX_CAPLEN as usize {
            return Err(format!(
                "implausible captured length {caplen} (limit {MAX_CAPLEN})"
            ));
        }
        return Ok(BlockPacket {
            ts: last_ts,
            link: interface.link,
            data_offset: SPB_DATA_OFFSET,
            caplen,
            orig_len,
        });
    }
    let name = if block_type == BLOCK_EPB {
        "enhanced packet block"
    } else {
        "packet block"
    };
    let Some(fixed) = block.first_chunk::<EPB_MIN_LEN>() else {
        return Err(format!(
            "{name} of {} bytes is shorter than its {EPB_MIN_LEN}-byte minimum",
            block.len()
        ));
    };
    let interface_id = if block_type == BLOCK_EPB {
        order.u32([fixed[8], fixed[9], fixed[10], fixed[11]])
    } else {
        u32::from(order.u16([fixed[8], fixed[9]]))
    };
    let ts_high = order.u32([fixed[12], fixed[13], fixed[14], fixed[15]]);
    let ts_low = order.u32([fixed[16], fixed[17], fixed[18], fixed[19]]);
    let caplen = order.u32([fixed[20], fixed[21], fixed[22], fixed[23]]);
    let orig_len = order.u32([fixed[24], fixed[25], fixed[26], fixed[27]]);
    let Some(interface) = interfaces.get(interface_id as usize) else {
        return Err(format!(
            "{name} for interface {interface_id}, but the section describes {}",
            interfaces.len()
        ));
    };
    if caplen > MAX_CAPLEN {
        return Err(format!(
            "implausible captured length {caplen} (limit {MAX_CAPLEN})"
        ));
    }
    let room = body_end - EPB_DATA_OFFSET;
    if caplen as usize > room {
        return Err(format!(
            "{name} captured length {caplen} exceeds the {room} bytes the block holds"
        ));
    }
    let units = (u64::from(ts_high) << 32) | u64::from(ts_low);
    Ok(BlockPacket {
        ts: interface.timestamp(units),
        link: interface.link,
        data_offset: EPB_DATA_OFFSET,
        caplen: caplen as usize,
        orig_len,
    })
}

impl<R: Read> FrameSource for FileSource<R> {
    fn advance(&mut self) -> Result<Next, CaptureError> {
        if self.finished {
            return Ok(Next::End);
        }
        let step = match self.layout {
            Layout::Pcap {
                order,
                record_len,
                nanos_per_frac,
                link,
            } => self.next_pcap(order, record_len, nanos_per_frac, link),
            Layout::PcapNg => self.next_pcapng(),
        };
        match step {
            Ok(Next::Frame) => {
                self.frames += 1;
                Ok(Next::Frame)
            }
            Ok(other) => {
                self.finished = true;
                Ok(other)
            }
            Err(fault) => {
                self.finished = true;
                Err(match fault {
                    Fault::Io(source) => self.io_error(source),
                    Fault::Damage { offset, what } => CaptureError::Damaged {
                        path: self.path.clone(),
                        record: self.frames,
                        offset,
                        what,
                    },
                })
            }
        }
    }

    fn current(&self) -> Frame<'_> {
        let c = &self.current;
        Frame {
            ts: c.ts,
            link: c.link,
            data: self.buf.get(c.start..c.start + c.len).unwrap_or(&[]),
            orig_len: c.orig_len,
        }
    }

    fn current_ts(&self) -> Timestamp {
        self.current.ts
    }

    fn bytes_read(&self) -> u64 {
        self.offset()
    }

    fn total_bytes(&self) -> Option<u64> {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    // ---- builders for small captures, written from the specs ----

    fn put16(out: &mut Vec<u8>, order: ByteOrder, v: u16) {
        out.extend_from_slice(&match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        });
    }

    fn put32(out: &mut Vec<u8>, order: ByteOrder, v: u32) {
        out.extend_from_slice(&match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        });
    }

    fn put64(out: &mut Vec<u8>, order: ByteOrder, v: u64) {
        out.extend_from_slice(&match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        });
    }

    /// Classic pcap file header (§4): magic, version 2.4, zone, sigfigs, snaplen, link type.
    fn pcap_header(order: ByteOrder, magic: u32, link: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put32(&mut out, order, magic);
        put16(&mut out, order, 2);
        put16(&mut out, order, 4);
        put32(&mut out, order, 0);
        put32(&mut out, order, 0);
        put32(&mut out, order, 65_535);
        put32(&mut out, order, link);
        out
    }

    /// Classic pcap record (§5).
    fn pcap_record(out: &mut Vec<u8>, order: ByteOrder, sec: u32, frac: u32, data: &[u8]) {
        put32(out, order, sec);
        put32(out, order, frac);
        put32(out, order, data.len() as u32);
        put32(out, order, data.len() as u32 + 10);
        out.extend_from_slice(data);
    }

    /// A pcapng block: type, length, body padded to 4, trailing length.
    fn block(order: ByteOrder, block_type: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        let mut out = Vec::new();
        put32(&mut out, order, block_type);
        put32(&mut out, order, len);
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        put32(&mut out, order, len);
        out
    }

    /// Section Header Block (§4.1): BOM, version 1.0, section length -1.
    fn shb(order: ByteOrder) -> Vec<u8> {
        let mut body = Vec::new();
        put32(&mut body, order, BYTE_ORDER_MAGIC);
        put16(&mut body, order, 1);
        put16(&mut body, order, 0);
        put64(&mut body, order, u64::MAX);
        block(order, BLOCK_SHB, &body)
    }

    /// An option (§3.5): code, length, value padded to 4.
    fn option(out: &mut Vec<u8>, order: ByteOrder, code: u16, value: &[u8]) {
        put16(out, order, code);
        put16(out, order, value.len() as u16);
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    /// Interface Description Block (§4.2) with optional tsresol / tsoffset.
    fn idb(
        order: ByteOrder,
        link: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put16(&mut body, order, link);
        put16(&mut body, order, 0);
        put32(&mut body, order, snaplen);
        // An option this reader ignores, before the ones it uses.
        option(&mut body, order, 2, b"eth0");
        if let Some(r) = tsresol {
            option(&mut body, order, OPT_IF_TSRESOL, &[r]);
        }
        if let Some(off) = tsoffset {
            let mut v = Vec::new();
            put64(&mut v, order, off as u64);
            option(&mut body, order, OPT_IF_TSOFFSET, &v);
        }
        option(&mut body, order, OPT_ENDOFOPT, &[]);
        block(order, BLOCK_IDB, &body)
    }

    /// Enhanced Packet Block (§4.3) with a comment option after the data.
    fn epb(order: ByteOrder, iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        put32(&mut body, order, iface);
        put32(&mut body, order, (ts >> 32) as u32);
        put32(&mut body, order, ts as u32);
        put32(&mut body, order, data.len() as u32);
        put32(&mut body, order, data.len() as u32 + 4);
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        option(&mut body, order, 1, b"a comment");
        option(&mut body, order, OPT_ENDOFOPT, &[]);
        block(order, BLOCK_EPB, &body)
    }

    fn reader(bytes: Vec<u8>) -> Result<FileSource<Cursor<Vec<u8>>>, CaptureError> {
        let len = bytes.len() as u64;
        FileSource::from_reader("test.cap", Cursor::new(bytes), Some(len))
    }

    /// (timestamp ns, link, data, orig_len) of every frame, and the final error if any.
    type Frames = Vec<(i64, LinkType, Vec<u8>, u32)>;

    fn read_all<R: Read>(mut src: FileSource<R>) -> (Frames, Option<CaptureError>) {
        let mut frames = Vec::new();
        loop {
            match src.advance() {
                Ok(Next::Frame) => {
                    let f = src.current();
                    frames.push((f.ts.as_nanos(), f.link, f.data.to_vec(), f.orig_len));
                }
                Ok(Next::Idle) => panic!("a file never idles"),
                Ok(Next::End) => return (frames, None),
                Err(e) => {
                    assert!(matches!(src.advance(), Ok(Next::End)), "End after an error");
                    return (frames, Some(e));
                }
            }
        }
    }

    /// Hands out at most one byte per read, to exercise partial reads.
    struct Trickle(Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    const SEC: i64 = 1_000_000_000;

    // ---- classic pcap ----

    #[test]
    fn pcap_little_endian_micros() {
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        pcap_record(&mut file, order, 1_600_000_000, 123_456, b"abc");
        pcap_record(&mut file, order, 1_600_000_001, 0, b"");
        let src = reader(file).unwrap();
        assert_eq!(
            *src.format(),
            CaptureFormat::Pcap {
                byte_order: order,
                precision: TsPrecision::Micros,
                modified: false,
                version_major: 2,
                version_minor: 4,
                snaplen: 65_535,
                link: LinkType::Ethernet,
            }
        );
        let (frames, err) = read_all(src);
        assert!(err.is_none());
        assert_eq!(
            frames,
            vec![
                (
                    1_600_000_000 * SEC + 123_456_000,
                    LinkType::Ethernet,
                    b"abc".to_vec(),
                    13
                ),
                (1_600_000_001 * SEC, LinkType::Ethernet, Vec::new(), 10),
            ]
        );
    }

    #[test]
    fn pcap_big_endian_nanos() {
        let order = ByteOrder::Big;
        let mut file = pcap_header(order, MAGIC_NANOS, 101);
        // The magic is stored big-endian: a1 b2 3c 4d.
        assert_eq!(file[..4], [0xa1, 0xb2, 0x3c, 0x4d]);
        pcap_record(&mut file, order, 7, 999_999_999, b"\x45\x00");
        let src = reader(file).unwrap();
        assert!(matches!(
            src.format(),
            CaptureFormat::Pcap {
                byte_order: ByteOrder::Big,
                precision: TsPrecision::Nanos,
                ..
            }
        ));
        let (frames, err) = read_all(src);
        assert!(err.is_none());
        assert_eq!(
            frames,
            vec![(
                7 * SEC + 999_999_999,
                LinkType::Raw,
                b"\x45\x00".to_vec(),
                12
            )]
        );
    }

    #[test]
    fn pcap_little_endian_nanos_and_big_endian_micros() {
        for (order, magic, frac, want) in [
            (ByteOrder::Little, MAGIC_NANOS, 5, 5),
            (ByteOrder::Big, MAGIC_MICROS, 5, 5_000),
        ] {
            let mut file = pcap_header(order, magic, 0);
            pcap_record(&mut file, order, 2, frac, b"x");
            let (frames, err) = read_all(reader(file).unwrap());
            assert!(err.is_none());
            assert_eq!(
                frames,
                vec![(2 * SEC + want, LinkType::Null, b"x".to_vec(), 11)]
            );
        }
    }

    #[test]
    fn pcap_link_type_ignores_fcs_bits() {
        // Bits 28..31 of the link type field carry the FCS length (§4).
        let file = pcap_header(ByteOrder::Little, MAGIC_MICROS, 0x1000_0000 | 113);
        let src = reader(file).unwrap();
        assert!(matches!(
            src.format(),
            CaptureFormat::Pcap {
                link: LinkType::LinuxSll,
                ..
            }
        ));
    }

    #[test]
    fn modified_pcap_has_24_byte_record_headers() {
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MODIFIED, 1);
        for (sec, data) in [(1u32, &b"one"[..]), (2, b"two!")] {
            put32(&mut file, order, sec);
            put32(&mut file, order, 0);
            put32(&mut file, order, data.len() as u32);
            put32(&mut file, order, data.len() as u32);
            put32(&mut file, order, 3); // ifindex
            put16(&mut file, order, 0x0800); // protocol
            file.extend_from_slice(&[0, 0]); // packet type, padding
            file.extend_from_slice(data);
        }
        let src = reader(file).unwrap();
        assert!(matches!(
            src.format(),
            CaptureFormat::Pcap { modified: true, .. }
        ));
        let (frames, err) = read_all(src);
        assert!(err.is_none());
        let data: Vec<_> = frames.iter().map(|f| (f.0, f.2.clone())).collect();
        assert_eq!(
            data,
            vec![(SEC, b"one".to_vec()), (2 * SEC, b"two!".to_vec())]
        );
    }

    #[test]
    fn pcap_header_only_yields_no_frames() {
        let (frames, err) =
            read_all(reader(pcap_header(ByteOrder::Little, MAGIC_MICROS, 1)).unwrap());
        assert!(frames.is_empty());
        assert!(err.is_none());
    }

    #[test]
    fn empty_input_is_a_bad_header() {
        let err = reader(Vec::new()).err().unwrap();
        assert!(
            matches!(&err, CaptureError::BadHeader { what, .. } if what.contains("empty file")),
            "{err}"
        );
    }

    #[test]
    fn unknown_magic_is_not_a_capture() {
        let err = reader(b"GIF89a and more bytes than a header".to_vec())
            .err()
            .unwrap();
        assert!(
            matches!(&err, CaptureError::NotACapture { magic, .. } if magic == b"GIF8"),
            "{err}"
        );
    }

    #[test]
    fn pcap_header_cut_short_is_a_bad_header() {
        let mut file = pcap_header(ByteOrder::Little, MAGIC_MICROS, 1);
        file.truncate(20);
        let err = reader(file).err().unwrap();
        assert!(
            matches!(&err, CaptureError::BadHeader { what, .. } if what.contains("20 of 24")),
            "{err}"
        );
    }

    #[test]
    fn truncated_record_is_damage_after_the_complete_ones() {
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        pcap_record(&mut file, order, 1, 0, b"0123456789");
        let second = file.len() as u64;
        pcap_record(&mut file, order, 2, 0, b"0123456789");
        file.truncate(file.len() - 3);
        let (frames, err) = read_all(reader(file).unwrap());
        assert_eq!(frames.len(), 1);
        match err {
            Some(CaptureError::Damaged {
                record,
                offset,
                what,
                ..
            }) => {
                assert_eq!((record, offset), (1, second));
                assert!(what.contains("7 of 10"), "{what}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn truncated_record_header_is_damage() {
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        pcap_record(&mut file, order, 1, 0, b"abc");
        let at = file.len() as u64;
        file.extend_from_slice(&[0; 5]);
        let (frames, err) = read_all(reader(file).unwrap());
        assert_eq!(frames.len(), 1);
        assert!(
            matches!(&err, Some(CaptureError::Damaged { record: 1, offset, what, .. })
                if *offset == at && what.contains("5 of 16")),
            "{err:?}"
        );
    }

    #[test]
    fn implausible_caplen_is_damage() {
        let order = ByteOrder::Big;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        put32(&mut file, order, 1);
        put32(&mut file, order, 0);
        put32(&mut file, order, MAX_CAPLEN + 1);
        put32(&mut file, order, 60);
        file.extend_from_slice(&[0; 64]);
        let (frames, err) = read_all(reader(file).unwrap());
        assert!(frames.is_empty());
        assert!(
            matches!(&err, Some(CaptureError::Damaged { record: 0, offset: 24, what, .. })
                if what.contains("implausible captured length 262145")),
            "{err:?}"
        );
    }

    #[test]
    fn caplen_at_the_limit_is_accepted() {
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        pcap_record(&mut file, order, 1, 0, &vec![0xab; MAX_CAPLEN as usize]);
        let (frames, err) = read_all(reader(file).unwrap());
        assert!(err.is_none());
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].2.len(), MAX_CAPLEN as usize);
    }

    #[test]
    fn records_straddling_buffer_refills_are_read_whole() {
        // A 64-byte buffer holds 2-3 records: every refill compacts, and the
        // 200-byte record forces the buffer to grow.
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        let mut want = Vec::new();
        for i in 0..50u32 {
            let data: Vec<u8> = (0..(i * 7 % 23)).map(|b| b as u8 ^ i as u8).collect();
            pcap_record(&mut file, order, i, i, &data);
            want.push(data);
        }
        pcap_record(&mut file, order, 99, 0, &[7; 200]);
        want.push(vec![7; 200]);
        let total = file.len() as u64;
        let src =
            FileSource::with_buffer("small".into(), Cursor::new(file.clone()), None, 64).unwrap();
        let (frames, err) = read_all(src);
        assert!(err.is_none());
        assert_eq!(frames.into_iter().map(|f| f.2).collect::<Vec<_>>(), want);

        // Same bytes, one byte per read.
        let mut src =
            FileSource::with_buffer("trickle".into(), Trickle(Cursor::new(file)), None, 64)
                .unwrap();
        let mut count = 0;
        while let Next::Frame = src.advance().unwrap() {
            assert_eq!(src.current().data, want[count].as_slice());
            count += 1;
        }
        assert_eq!(count, want.len());
        assert_eq!(src.bytes_read(), total);
    }

    #[test]
    fn progress_counts_consumed_bytes() {
        let order = ByteOrder::Little;
        let mut file = pcap_header(order, MAGIC_MICROS, 1);
        pcap_record(&mut file, order, 1, 0, b"abcd");
        let len = file.len() as u64;
        let mut src = reader(file).unwrap();
        assert_eq!(src.bytes_read(), 24);
        assert_eq!(src.total_bytes(), Some(len));
        assert_eq!(src.advance().unwrap(), Next::Frame);
        assert_eq!(src.bytes_read(), 24 + 16 + 4);
        assert_eq!(src.frames(), 1);
    }

    // ---- pcapng ----

    #[test]
    fn pcapng_both_byte_orders_default_microseconds() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let mut file = shb(order);
            file.extend(idb(order, 1, 0, None, None));
            // 2^32 + 5 microseconds.
            file.extend(epb(order, 0, (1 << 32) + 5, b"hello"));
            let src = reader(file).unwrap();
            assert_eq!(*src.format(), CaptureFormat::PcapNg { byte_order: order });
            let (frames, err) = read_all(src);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(
                frames,
                vec![(
                    (4_294_967_296 + 5) * 1_000,
                    LinkType::Ethernet,
                    b"hello".to_vec(),
                    9
                )]
            );
        }
    }

    #[test]
    fn pcapng_tsresol_power_of_ten_nanoseconds() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, Some(9), None));
        file.extend(epb(order, 0, 1_767_663_089_500_330_493, b"x"));
        let (frames, _) = read_all(reader(file).unwrap());
        assert_eq!(frames[0].0, 1_767_663_089_500_330_493);
    }

    #[test]
    fn pcapng_tsresol_power_of_two() {
        let order = ByteOrder::Big;
        let mut file = shb(order);
        // 0x8a: 2^-10 s units; 1536 units = 1.5 s.
        file.extend(idb(order, 1, 0, Some(0x8a), None));
        file.extend(epb(order, 0, 1536, b"x"));
        // 1 unit = 1/1024 s = 976562.5 ns, truncated.
        file.extend(epb(order, 0, 1, b"y"));
        let (frames, _) = read_all(reader(file).unwrap());
        assert_eq!(frames[0].0, 1_500_000_000);
        assert_eq!(frames[1].0, 976_562);
    }

    #[test]
    fn pcapng_tsresol_finer_than_nanoseconds() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        // 10^-12 s units: 1 s + 1.5 ns.
        file.extend(idb(order, 1, 0, Some(12), None));
        file.extend(epb(order, 0, 1_000_000_001_500, b"x"));
        let (frames, _) = read_all(reader(file).unwrap());
        assert_eq!(frames[0].0, SEC + 1);
    }

    #[test]
    fn pcapng_tsoffset_adds_seconds() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, Some(3), Some(1_000)));
        file.extend(idb(order, 1, 0, None, Some(-10)));
        file.extend(epb(order, 0, 2_500, b"a")); // 2.5 s + 1000 s
        file.extend(epb(order, 1, 20_000_000, b"b")); // 20 s - 10 s
        let (frames, _) = read_all(reader(file).unwrap());
        assert_eq!(frames[0].0, 1_002_500_000_000);
        assert_eq!(frames[1].0, 10 * SEC);
    }

    #[test]
    fn pcapng_link_type_per_interface() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, None, None));
        file.extend(idb(order, 113, 0, None, None));
        file.extend(idb(order, 0, 0, None, None));
        file.extend(epb(order, 2, 1, b"n"));
        file.extend(epb(order, 0, 2, b"e"));
        file.extend(epb(order, 1, 3, b"s"));
        let (frames, _) = read_all(reader(file).unwrap());
        let links: Vec<_> = frames.iter().map(|f| f.1).collect();
        assert_eq!(
            links,
            vec![LinkType::Null, LinkType::Ethernet, LinkType::LinuxSll]
        );
    }

    #[test]
    fn pcapng_new_section_resets_interfaces_and_byte_order() {
        let mut file = shb(ByteOrder::Little);
        file.extend(idb(ByteOrder::Little, 1, 0, None, None));
        file.extend(idb(ByteOrder::Little, 1, 0, None, None));
        file.extend(epb(ByteOrder::Little, 1, 1, b"a"));
        file.extend(shb(ByteOrder::Big));
        file.extend(idb(ByteOrder::Big, 101, 0, Some(9), None));
        file.extend(epb(ByteOrder::Big, 0, 42, b"b"));
        let second_section_end = file.len();
        // Interface 1 belonged to the first section only.
        file.extend(epb(ByteOrder::Big, 1, 43, b"c"));
        let (frames, err) = read_all(reader(file).unwrap());
        assert_eq!(
            frames,
            vec![
                (1_000, LinkType::Ethernet, b"a".to_vec(), 5),
                (42, LinkType::Raw, b"b".to_vec(), 5),
            ]
        );
        assert!(
            matches!(&err, Some(CaptureError::Damaged { record: 2, offset, what, .. })
                if *offset == second_section_end as u64 && what.contains("interface 1")),
            "{err:?}"
        );
    }

    #[test]
    fn pcapng_simple_packet_block_uses_interface_zero_and_snaplen() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(idb(order, 113, 4, None, None));
        file.extend(idb(order, 1, 0, None, None));
        file.extend(epb(order, 1, 7, b"e"));
        let mut body = Vec::new();
        put32(&mut body, order, 6); // original length
        body.extend_from_slice(b"abcdef");
        file.extend(block(order, BLOCK_SPB, &body));
        let (frames, err) = read_all(reader(file).unwrap());
        assert!(err.is_none(), "{err:?}");
        // snaplen 4 of interface 0 cuts the 6 bytes; no timestamp of its own.
        assert_eq!(frames[1], (7_000, LinkType::LinuxSll, b"abcd".to_vec(), 6));
    }

    #[test]
    fn pcapng_simple_packet_block_caplen_bounded_by_original_length() {
        let order = ByteOrder::Big;
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, None, None));
        let mut body = Vec::new();
        put32(&mut body, order, 3);
        body.extend_from_slice(b"abc"); // padded to 4 bytes in the block
        file.extend(block(order, BLOCK_SPB, &body));
        let (frames, _) = read_all(reader(file).unwrap());
        assert_eq!(frames[0].2, b"abc");
    }

    #[test]
    fn pcapng_obsolete_packet_block() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, None, None));
        file.extend(idb(order, 0, 0, Some(6), None));
        let mut body = Vec::new();
        put16(&mut body, order, 1); // interface id
        put16(&mut body, order, 0); // drops count
        put32(&mut body, order, 0);
        put32(&mut body, order, 3_000_000);
        put32(&mut body, order, 2);
        put32(&mut body, order, 2);
        body.extend_from_slice(b"pb");
        file.extend(block(order, BLOCK_PB, &body));
        let (frames, err) = read_all(reader(file).unwrap());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames, vec![(3 * SEC, LinkType::Null, b"pb".to_vec(), 2)]);
    }

    #[test]
    fn pcapng_unknown_blocks_are_skipped() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(block(order, 0x0000_0bad, b"custom block payload"));
        file.extend(idb(order, 1, 0, None, None));
        file.extend(block(order, 5, &[0; 20])); // interface statistics
        file.extend(epb(order, 0, 1, b"x"));
        file.extend(block(order, 4, &[0; 600])); // name resolution, bigger than the buffer
        file.extend(epb(order, 0, 2, b"y"));
        let src = FileSource::with_buffer("small".into(), Cursor::new(file), None, 64).unwrap();
        let (frames, err) = read_all(src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            frames.iter().map(|f| f.2.clone()).collect::<Vec<_>>(),
            vec![b"x".to_vec(), b"y".to_vec()]
        );
    }

    #[test]
    fn pcapng_header_only_yields_no_frames() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, None, None));
        let (frames, err) = read_all(reader(file).unwrap());
        assert!(frames.is_empty());
        assert!(err.is_none());
    }

    fn damaged_after_one(order: ByteOrder, tail: Vec<u8>) -> (u64, String) {
        let mut file = shb(order);
        file.extend(idb(order, 1, 0, None, None));
        file.extend(epb(order, 0, 1, b"ok"));
        let at = file.len() as u64;
        file.extend(tail);
        let (frames, err) = read_all(reader(file).unwrap());
        assert_eq!(frames.len(), 1);
        match err {
            Some(CaptureError::Damaged {
                record: 1,
                offset,
                what,
                ..
            }) => {
                assert_eq!(offset, at);
                (offset, what)
            }
            other => panic!("expected damage after 1 record, got {other:?}"),
        }
    }

    fn raw_head(order: ByteOrder, block_type: u32, len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        put32(&mut out, order, block_type);
        put32(&mut out, order, len);
        out.extend_from_slice(&[0; 64]);
        out
    }

    #[test]
    fn pcapng_block_length_not_multiple_of_four_is_damage() {
        let (_, what) = damaged_after_one(ByteOrder::Little, raw_head(ByteOrder::Little, 6, 50));
        assert!(what.contains("not a multiple of 4"), "{what}");
    }

    #[test]
    fn pcapng_block_length_too_small_is_damage() {
        let (_, what) = damaged_after_one(ByteOrder::Big, raw_head(ByteOrder::Big, 0x99, 8));
        assert!(what.contains("below the 12-byte minimum"), "{what}");
    }

    #[test]
    fn pcapng_block_length_too_big_is_damage() {
        let (_, what) = damaged_after_one(
            ByteOrder::Little,
            raw_head(ByteOrder::Little, 6, MAX_BLOCK_LEN + 4),
        );
        assert!(what.contains("above the"), "{what}");
    }

    #[test]
    fn pcapng_epb_shorter_than_fixed_part_is_damage() {
        let (_, what) = damaged_after_one(
            ByteOrder::Little,
            block(ByteOrder::Little, BLOCK_EPB, &[0; 8]),
        );
        assert!(what.contains("shorter than its 32-byte minimum"), "{what}");
    }

    #[test]
    fn pcapng_caplen_beyond_block_is_damage() {
        let order = ByteOrder::Little;
        let mut body = Vec::new();
        put32(&mut body, order, 0);
        put32(&mut body, order, 0);
        put32(&mut body, order, 0);
        put32(&mut body, order, 100); // caplen, but only 8 bytes follow
        put32(&mut body, order, 100);
        body.extend_from_slice(&[0; 8]);
        let (_, what) = damaged_after_one(order, block(order, BLOCK_EPB, &body));
        assert!(
            what.contains("captured length 100 exceeds the 8 bytes"),
            "{what}"
        );
    }

    #[test]
    fn pcapng_trailing_length_mismatch_is_damage() {
        let order = ByteOrder::Big;
        let mut bad = epb(order, 0, 2, b"zz");
        let n = bad.len();
        bad[n - 1] ^= 4;
        let (_, what) = damaged_after_one(order, bad);
        assert!(what.contains("trailing length"), "{what}");
    }

    #[test]
    fn pcapng_block_cut_short_is_damage() {
        let order = ByteOrder::Little;
        let mut cut = epb(order, 0, 2, b"zzzzzz");
        cut.truncate(cut.len() - 6);
        let (_, what) = damaged_after_one(order, cut);
        assert!(what.contains("cut short"), "{what}");
    }

    #[test]
    fn pcapng_block_header_cut_short_is_damage() {
        let (_, what) = damaged_after_one(ByteOrder::Little, vec![6, 0, 0]);
        assert!(what.contains("3 of 8 bytes"), "{what}");
    }

    #[test]
    fn pcapng_epb_before_any_interface_is_damage() {
        let order = ByteOrder::Little;
        let mut file = shb(order);
        file.extend(epb(order, 0, 1, b"x"));
        let (frames, err) = read_all(reader(file).unwrap());
        assert!(frames.is_empty());
        assert!(
            matches!(&err, Some(CaptureError::Damaged { record: 0, offset: 28, what, .. })
                if what.contains("interface 0, but the section describes 0")),
            "{err:?}"
        );
    }

    #[test]
    fn pcapng_bad_byte_order_magic_is_a_bad_header() {
        let mut file = shb(ByteOrder::Little);
        file[8..12].copy_from_slice(&[1, 2, 3, 4]);
        let err = reader(file).err().unwrap();
        assert!(
            matches!(&err, CaptureError::BadHeader { what, .. } if what.contains("byte-order magic")),
            "{err}"
        );
    }

    #[test]
    fn pcapng_unsupported_major_version_is_a_bad_header() {
        let mut file = shb(ByteOrder::Little);
        file[12] = 2;
        let err = reader(file).err().unwrap();
        assert!(
            matches!(&err, CaptureError::BadHeader { what, .. } if what.contains("version 2.0")),
            "{err}"
        );
    }

    #[test]
    fn tsresol_units() {
        assert_eq!(TsUnit::from_tsresol(6), TsUnit::NanosPerUnit(1_000));
        assert_eq!(TsUnit::from_tsresol(0), TsUnit::NanosPerUnit(1_000_000_000));
        assert_eq!(TsUnit::from_tsresol(9), TsUnit::NanosPerUnit(1));
        assert_eq!(TsUnit::from_tsresol(10), TsUnit::UnitsPerNano(10));
        assert_eq!(TsUnit::from_tsresol(127), TsUnit::UnitsPerNano(u64::MAX));
        assert_eq!(TsUnit::from_tsresol(0x80 | 20), TsUnit::Binary(20));
        // 2^-127 s units: any 64-bit count is far below a nanosecond.
        assert_eq!(TsUnit::Binary(127).to_nanos(u64::MAX), 0);
        // 2^0 s units.
        assert_eq!(TsUnit::Binary(0).to_nanos(3), 3_000_000_000);
    }

    #[test]
    fn huge_timestamps_saturate() {
        let iface = Interface {
            link: LinkType::Ethernet,
            snaplen: 0,
            unit: TsUnit::NanosPerUnit(1_000_000_000),
            offset_secs: i64::MAX,
        };
        assert_eq!(iface.timestamp(u64::MAX), Timestamp(i64::MAX));
        let back = Interface {
            offset_secs: i64::MIN,
            ..iface
        };
        assert_eq!(back.timestamp(0), Timestamp(i64::MIN));
    }
}
