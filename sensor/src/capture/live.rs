//! Live capture from a network interface through libpcap (the `pcap` crate).
//!
//! The interface is opened in immediate mode (each frame is handed over as it
//! arrives). [`advance`](FrameSource::advance) returns [`Next::Idle`] when no
//! frame came within the read timeout (the caller does its periodic work and
//! asks again), and [`Next::End`] once the stop flag is set: a stop is
//! honoured within [`IDLE_POLL_MS`].
//!
//! On Linux, libpcap's own read timeout does not fire while no frame arrives
//! (measured with libpcap 1.10.3 on a quiet interface: a blocking read with a
//! 50 ms timeout, immediate mode or not, never returned). So the handle is put
//! in non-blocking mode, and when the ring is empty `advance` sleeps
//! [`IDLE_POLL_MS`] between reads until a frame comes or the timeout passes.
//! Under load the ring is never empty and nothing sleeps; a frame arriving
//! after a quiet spell waits at most [`IDLE_POLL_MS`] in the kernel ring.
//!
//! Timestamps are libpcap's, in microseconds.
//!
//! libpcap lends a frame only until its next read, so each frame is copied
//! once into a reused buffer (no allocation per frame).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{CaptureError, Frame, FrameSource, LinkType, Next, Timestamp};

/// Default snap length: whole frames up to libpcap's usual maximum.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Default kernel capture buffer: 16 MiB absorbs bursts on a busy SPAN port.
pub const DEFAULT_BUFFER_BYTES: u32 = 16 * 1024 * 1024;
/// Default read timeout: how long `advance` may block before `Next::Idle`.
pub const DEFAULT_READ_TIMEOUT_MS: u32 = 100;
/// Shortest read timeout used (0 would make every empty read an `Idle`).
pub const MIN_READ_TIMEOUT_MS: u32 = 1;
/// Sleep between reads of an empty capture ring; bounds how late a stop is
/// seen and how long a frame after a quiet spell waits.
pub const IDLE_POLL_MS: u64 = 5;

/// How to open a live capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Interface name, as `ip link` shows it.
    pub interface: String,
    /// Optional BPF filter expression (pcap-filter(7) syntax).
    pub bpf: Option<String>,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// Promiscuous mode (needed on a SPAN port to see others' traffic).
    pub promisc: bool,
    /// Kernel capture buffer size.
    pub buffer_bytes: u32,
    /// Read timeout; raised to [`MIN_READ_TIMEOUT_MS`] if lower.
    pub read_timeout_ms: u32,
}

impl LiveConfig {
    /// A configuration for `interface` with the default settings.
    pub fn new(interface: impl Into<String>) -> Self {
        LiveConfig {
            interface: interface.into(),
            bpf: None,
            snaplen: DEFAULT_SNAPLEN,
            promisc: true,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
        }
    }
}

/// Capture statistics as libpcap's `pcap_stats` reports them (32-bit counters
/// since the capture started; see pcap_stats(3PCAP) for per-platform meaning).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Frames the capture received.
    pub received: u32,
    /// Frames dropped because the capture buffer was full (we read too slowly).
    pub dropped: u32,
    /// Frames dropped by the interface or its driver.
    pub if_dropped: u32,
}

/// Frames from a network interface.
pub struct LiveSource {
    capture: pcap::Capture<pcap::Active>,
    interface: String,
    link: LinkType,
    stop: Arc<AtomicBool>,
    read_timeout: Duration,
    data: Vec<u8>,
    ts: Timestamp,
    orig_len: u32,
    bytes: u64,
}

impl LiveSource {
    /// Open the interface with its own stop flag (see [`LiveSource::stop_flag`]).
    pub fn open(config: &LiveConfig) -> Result<Self, CaptureError> {
        Self::open_with_stop(config, Arc::new(AtomicBool::new(false)))
    }

    /// Open the interface; setting `stop` makes `advance` return `Next::End`.
    pub fn open_with_stop(
        config: &LiveConfig,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, CaptureError> {
        let interface = config.interface.clone();
        let fail = |what: String| CaptureError::Live {
            interface: interface.clone(),
            what,
        };
        if interface.is_empty() {
            return Err(fail("no interface name given".to_string()));
        }
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let timeout = config.read_timeout_ms.max(MIN_READ_TIMEOUT_MS);
        let inactive =
            pcap::Capture::from_device(interface.as_str()).map_err(|e| fail(open_failure(&e)))?;
        let mut capture = inactive
            .promisc(config.promisc)
            .snaplen(to_i32(config.snaplen))
            .buffer_size(to_i32(config.buffer_bytes))
            .timeout(to_i32(timeout))
            .immediate_mode(true)
            .open()
            .map_err(|e| fail(open_failure(&e)))?
            .setnonblock()
            .map_err(|e| fail(format!("cannot switch to non-blocking reads: {e}")))?;
        if let Some(expr) = &config.bpf {
            capture
                .filter(expr, true)
                .map_err(|e| fail(format!("invalid BPF filter expression {expr:?}: {e}")))?;
        }
        let link =
            LinkType::from_linktype(u32::try_from(capture.get_datalink().0).unwrap_or(u32::MAX));
        Ok(LiveSource {
            capture,
            interface,
            link,
            stop,
            read_timeout: Duration::from_millis(u64::from(timeout)),
            data: Vec::new(),
            ts: Timestamp::default(),
            orig_len: 0,
            bytes: 0,
        })
    }

    /// The flag that stops this capture (shared with whoever opened it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's link type (DLT values map like LINKTYPE values; DLT_RAW
    /// 12/14 is `Raw`).
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Received and dropped counts from libpcap.
    pub fn stats(&mut self) -> Result<LiveStats, CaptureError> {
        let stat = self.capture.stats().map_err(|e| CaptureError::Live {
            interface: self.interface.clone(),
            what: format!("cannot read capture statistics: {e}"),
        })?;
        Ok(LiveStats {
            received: stat.received,
            dropped: stat.dropped,
            if_dropped: stat.if_dropped,
        })
    }
}

/// A user-facing reason for a failed open, with what to do about the usual causes.
fn open_failure(error: &pcap::Error) -> String {
    let text = error.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("no such device") {
        "; no interface has that name (list them with `ip link`)"
    } else if lower.contains("permission") || lower.contains("not permitted") {
        "; capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities"
    } else {
        ""
    };
    format!("cannot open for capture: {text}{hint}")
}

impl FrameSource for LiveSource {
    fn advance(&mut self) -> Result<Next, CaptureError> {
        // Set on the first empty read: when this call gives up with `Idle`.
        let mut deadline: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Next::End);
            }
            match self.capture.next_packet() {
                Ok(packet) => {
                    self.data.clear();
                    self.data.extend_from_slice(packet.data);
                    let tv = packet.header.ts;
                    let nanos =
                        i128::from(tv.tv_sec) * 1_000_000_000 + i128::from(tv.tv_usec) * 1_000;
                    self.ts = Timestamp(i64::try_from(nanos).unwrap_or(i64::MAX));
                    self.orig_len = packet.header.len;
                    self.bytes += packet.data.len() as u64;
                    return Ok(Next::Frame);
                }
                // Non-blocking read of an empty ring.
                Err(pcap::Error::TimeoutExpired) => {
                    let now = Instant::now();
                    let until = *deadline.get_or_insert(now + self.read_timeout);
                    if now >= until {
                        return Ok(Next::Idle);
                    }
                    std::thread::sleep((until - now).min(Duration::from_millis(IDLE_POLL_MS)));
                }
                Err(pcap::Error::NoMorePackets) => return Ok(Next::End),
                Err(e) => {
                    return Err(CaptureError::Live {
                        interface: self.interface.clone(),
                        what: format!("reading frames failed: {e}"),
                    });
                }
            }
        }
    }

    fn current(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            link: self.link,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }

    fn current_ts(&self) -> Timestamp {
        self.ts
    }

    /// Captured bytes delivered so far.
    fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonexistent_interface_is_a_clear_live_error() {
        let name = "spanwatch-nx0";
        let err = LiveSource::open(&LiveConfig::new(name)).err().unwrap();
        match &err {
            CaptureError::Live { interface, what } => {
                assert_eq!(interface, name);
                assert!(what.starts_with("cannot open for capture"), "{what}");
                assert!(what.contains("no interface has that name"), "{what}");
            }
            other => panic!("expected a live error, got {other:?}"),
        }
        assert!(err.to_string().contains(name), "{err}");
    }

    #[test]
    fn empty_interface_name_is_refused() {
        let err = LiveSource::open(&LiveConfig::new("")).err().unwrap();
        assert!(
            matches!(&err, CaptureError::Live { what, .. } if what.contains("no interface")),
            "{err}"
        );
    }

    /// Needs capture rights on `lo` (root in the dev and CI machines). Sends
    /// one datagram on loopback to a port this test bound, so no other traffic
    /// matches the filter.
    #[test]
    fn loopback_idle_frame_stats_and_stop() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = receiver.local_addr().unwrap().port();
        let mut config = LiveConfig::new("lo");
        config.bpf = Some(format!("udp dst port {port}"));
        config.read_timeout_ms = 30;
        config.promisc = false;
        let mut src = LiveSource::open(&config).unwrap();
        assert_eq!(src.link_type(), LinkType::Ethernet);

        let started = Instant::now();
        assert_eq!(src.advance().unwrap(), Next::Idle);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");

        let payload = b"spanwatch live capture test";
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(payload, ("127.0.0.1", port)).unwrap();
        let mut got = None;
        for _ in 0..50 {
            if src.advance().unwrap() == Next::Frame {
                got = Some(src.current());
                break;
            }
        }
        let frame = got.expect("the datagram is captured within 50 read timeouts");
        assert!(frame.data.ends_with(payload));
        // Ethernet 14 + IPv4 20 + UDP 8 + payload.
        assert_eq!(frame.orig_len as usize, 14 + 20 + 8 + payload.len());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let age = now.as_nanos() as i64 - frame.ts.as_nanos();
        assert!(
            (0..60_000_000_000).contains(&age),
            "frame time {:?}",
            frame.ts
        );
        assert!(src.stats().unwrap().received >= 1);

        src.stop_flag().store(true, Ordering::Relaxed);
        let stopping = Instant::now();
        assert_eq!(src.advance().unwrap(), Next::End);
        assert!(stopping.elapsed() < Duration::from_millis(IDLE_POLL_MS * 10));
    }

    #[test]
    fn bad_bpf_names_the_expression() {
        let mut config = LiveConfig::new("lo");
        config.bpf = Some("tcp port banana".to_string());
        let err = LiveSource::open(&config).err().unwrap();
        assert!(
            matches!(&err, CaptureError::Live { what, .. }
                if what.contains("invalid BPF filter expression \"tcp port banana\"")),
            "{err}"
        );
    }
}
