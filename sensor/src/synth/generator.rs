//! The scheduler: interleaves live sessions in time and renders their packets
//! into Ethernet/IPv4/TCP|UDP frames with etherparse's `PacketBuilder`.
//!
//! Memory is constant in the number of packets: at most
//! [`MAX_LIVE_SESSIONS`] sessions are scripted at a time, each slot reusing its
//! buffers, and the frame buffer is reused for every packet.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::mem;
use std::path::PathBuf;

use etherparse::{IpHeaders, Ipv4Header, PacketBuilder, TcpHeader, TcpOptionElement};

use super::device::{App, Device, MAX_DEVICES, Server, device_ip, device_mac};
use super::rng::{SplitMix64, derive};
use super::session::{ACK, Endpoint, FIN, PSH, Pkt, RST, SYN, Session, Transport};
use super::{Mode, StreamTruth, SynthConfig, SynthReport, coap, http, mqtt, telnet};
use crate::capture::{CaptureError, Frame, FrameSource, LinkType, Next, Timestamp};

/// Sessions scripted and interleaved at once (one per device up to this many
/// devices; beyond it devices take turns).
pub const MAX_LIVE_SESSIONS: usize = 64;

/// Ethernet frames shorter than this (without FCS) are zero-padded, as a
/// SPAN port delivers them (IEEE 802.3 minimum frame of 64 bytes with FCS).
const MIN_FRAME_LEN: usize = 60;

/// Pause of a device between two of its sessions, in nanoseconds.
const IDLE_MIN_NS: u64 = 20_000_000;
const IDLE_MAX_NS: u64 = 2_000_000_000;

/// DistinctFlows: client ports 1024..=65535 and 2^16 server addresses
/// 10.1.0.0/16 per device before 5-tuples repeat.
const DISTINCT_PORTS: u64 = 64_512;
const DISTINCT_SERVERS: u64 = 65_536;

/// SynFlood: the MAC every spoofed SYN comes from (the router's port).
const FLOOD_MAC: [u8; 6] = [0x02, 0x53, 0x59, 0x66, 0x00, 0x01];

const SESSION_SALT: u64 = 0x0073_6573_7369_6F6E;
const DISTINCT_SALT: u64 = 0x6469_7374_696E_6374;

/// One scheduler slot: a live session and the global number it was started as.
struct Slot {
    session: Session,
    number: u64,
}

/// Deterministic synthetic traffic as a stream of Ethernet frames.
///
/// Yields exactly `cfg.packets` frames (dropped segments are not counted:
/// they never reach the capture), with strictly increasing microsecond
/// timestamps. Also a [`FrameSource`], so benchmarks and tests can feed the
/// packet path without a capture file.
pub struct Generator {
    cfg: SynthConfig,
    devices: u32,
    report: SynthReport,
    frame: Vec<u8>,
    frame_ts: Timestamp,
    last_us: Option<i64>,
    scratch: Vec<u8>,
    /// Finished sessions' ground truth, when collected.
    truth: Option<Vec<StreamTruth>>,
    ended: bool,
    slots: Vec<Slot>,
    /// (time in ns since `cfg.start`, session number, slot) of each slot's next packet.
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    next_session: u64,
    distinct_rng: SplitMix64,
    distinct_clock_ns: u64,
}

impl Generator {
    /// A generator that does not keep ground truth (constant memory).
    pub fn new(cfg: &SynthConfig) -> Self {
        let devices = cfg.devices.clamp(1, MAX_DEVICES);
        let live = match cfg.mode {
            Mode::IotMix => (devices as usize).min(MAX_LIVE_SESSIONS),
            Mode::DistinctFlows | Mode::SynFlood => 0,
        };
        let mut g = Generator {
            cfg: *cfg,
            devices,
            report: SynthReport::default(),
            frame: Vec::with_capacity(1600),
            frame_ts: cfg.start,
            last_us: None,
            scratch: Vec::with_capacity(64),
            truth: None,
            ended: false,
            slots: Vec::with_capacity(live),
            queue: BinaryHeap::with_capacity(live),
            next_session: 0,
            distinct_rng: derive(cfg.seed, DISTINCT_SALT, 0),
            distinct_clock_ns: 0,
        };
        for i in 0..live {
            g.slots.push(Slot {
                session: Session::new(),
                number: 0,
            });
            g.start_session(i, 0, true);
        }
        g
    }

    /// A generator that also records a [`StreamTruth`] for every TCP session
    /// (memory grows with the sessions; meant for tests).
    pub fn with_truth(cfg: &SynthConfig) -> Self {
        let mut g = Generator::new(cfg);
        g.truth = Some(Vec::new());
        g
    }

    /// Counters so far (final once `next_frame` returned `None`).
    pub fn report(&self) -> SynthReport {
        self.report
    }

    /// Ground truth of the TCP sessions finished since the last call; after
    /// the last frame also of the sessions the end of the capture cut.
    pub fn take_truth(&mut self) -> Vec<StreamTruth> {
        self.truth.as_mut().map(mem::take).unwrap_or_default()
    }

    /// The next frame, or `None` once `cfg.packets` frames were produced.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame<'_>>> {
        if !self.advance_frame()? {
            return Ok(None);
        }
        Ok(Some(self.frame()))
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.frame_ts,
            link: LinkType::Ethernet,
            data: &self.frame,
            orig_len: u32::try_from(self.frame.len()).unwrap_or(u32::MAX),
        }
    }

    /// Produce the next frame into `self.frame`; false at the end.
    fn advance_frame(&mut self) -> io::Result<bool> {
        if self.report.packets >= self.cfg.packets {
            self.finish();
            return Ok(false);
        }
        let at = match self.cfg.mode {
            Mode::DistinctFlows => self.distinct_frame()?,
            Mode::SynFlood => self.flood_frame()?,
            Mode::IotMix => match self.mix_frame()? {
                Some(at) => at,
                None => {
                    self.finish();
                    return Ok(false);
                }
            },
        };
        self.stamp(at);
        self.report.packets += 1;
        self.report.bytes += self.frame.len() as u64;
        Ok(true)
    }

    /// Set the frame's timestamp from its scheduled time, keeping capture
    /// timestamps strictly increasing at microsecond resolution.
    fn stamp(&mut self, at_ns: u64) {
        let abs = self
            .cfg
            .start
            .as_nanos()
            .saturating_add(i64::try_from(at_ns).unwrap_or(i64::MAX));
        let mut us = abs.div_euclid(1000);
        if let Some(last) = self.last_us.filter(|&last| us <= last) {
            us = last.saturating_add(1);
        }
        self.last_us = Some(us);
        self.frame_ts = Timestamp(us.saturating_mul(1000));
    }

    /// At the end of the capture, record the truth of the sessions it cut.
    fn finish(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(truth) = self.truth.as_mut() {
            truth.extend(self.slots.iter().filter_map(|slot| slot.session.truth()));
        }
    }

    /// Script session number `next_session` into slot `i`, starting after an
    /// idle pause from `at_ns` (a random offset for the `initial` sessions).
    fn start_session(&mut self, i: usize, at_ns: u64, initial: bool) {
        let number = self.next_session;
        self.next_session += 1;
        let devices = u64::from(self.devices);
        let dev = Device::new(self.cfg.seed, (number % devices) as u32);
        let round = number / devices;
        let mut rng = derive(self.cfg.seed, SESSION_SALT, number);
        let idle = if initial {
            rng.below(IDLE_MAX_NS / 2)
        } else {
            rng.range(IDLE_MIN_NS, IDLE_MAX_NS)
        };
        let app = dev.pick_app(&mut rng);
        let (transport, server) = match app {
            App::Mqtt => (Transport::Tcp, Server::MqttBroker.endpoint(1883)),
            App::Coap => (Transport::Udp, Server::Coap.endpoint(5683)),
            App::Http => (Transport::Tcp, Server::WebUi.endpoint(dev.http_port)),
            App::Telnet => (Transport::Tcp, Server::TelnetDevice.endpoint(23)),
        };
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        slot.number = number;
        let s = &mut slot.session;
        s.reset(transport, dev.endpoint(round), server, &mut rng);
        let mut impair_rng = rng.fork();
        match app {
            App::Mqtt => mqtt::script(s, &mut rng, &dev),
            App::Coap => coap::script(s, &mut rng),
            App::Http => http::script(s, &mut rng, &dev),
            App::Telnet => telnet::script(s, &mut rng, &dev),
        }
        s.impair(&self.cfg.impair, &mut impair_rng);
        let first = s.pkts.first().map_or(0, |p| p.gap_ns);
        let when = at_ns.saturating_add(idle).saturating_add(first);
        self.queue.push(Reverse((when, number, i)));
    }

    /// IotMix: replay the earliest scheduled packet of any live session.
    /// Returns its time, or `None` if nothing is scheduled (cannot happen
    /// with at least one slot).
    fn mix_frame(&mut self) -> io::Result<Option<u64>> {
        loop {
            let Some(Reverse((at, number, i))) = self.queue.pop() else {
                return Ok(None);
            };
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            let s = &mut slot.session;
            let Some(p) = s.pkts.get(s.cursor).copied() else {
                // The session is over: keep its truth, start the device's next one.
                if let Some(truth) = self.truth.as_mut() {
                    truth.extend(s.truth());
                }
                self.start_session(i, at, false);
                continue;
            };
            s.cursor += 1;
            let next = s
                .pkts
                .get(s.cursor)
                .map_or(at, |q| at.saturating_add(q.gap_ns));
            self.queue.push(Reverse((next, number, i)));
            if p.dropped {
                continue;
            }
            if s.cursor == 1 {
                match s.transport {
                    Transport::Tcp => self.report.flows_tcp += 1,
                    Transport::Udp => self.report.flows_udp += 1,
                }
            }
            render_session_packet(&mut self.frame, s, &p)?;
            return Ok(Some(at));
        }
    }

    /// DistinctFlows: packet `n` is the only packet of flow `n`, alternating a
    /// TCP SYN and a CoAP GET over UDP; the 5-tuple is a bijection of `n`
    /// (client device, client port, server address), so flows are distinct
    /// for `n < devices × 64 512 × 65 536`.
    /// One SYN of [`Mode::SynFlood`]: a random source address and port (the
    /// flood's sources are spoofed), a target among the devices, gaps of 10
    /// to 30 µs.
    fn flood_frame(&mut self) -> io::Result<u64> {
        let n = self.report.packets;
        let target = (n % u64::from(self.devices)) as u32;
        let rng = &mut self.distinct_rng;
        self.distinct_clock_ns += rng.range(10_000, 30_000);
        let src = (rng.next_u64() as u32).to_be_bytes();
        let client = Endpoint {
            mac: FLOOD_MAC,
            ip: src,
            port: rng.range(1024, 65_535) as u16,
        };
        let server = Endpoint {
            mac: device_mac(target),
            ip: device_ip(target),
            port: 1883,
        };
        let tcp = TcpFields {
            seq: rng.next_u64() as u32,
            ack: 0,
            flags: SYN,
            window: 512,
            mss: None,
        };
        let w = Wire {
            src: &client,
            dst: &server,
            ttl: 64,
            ip_id: rng.next_u64() as u16,
            tcp: Some(tcp),
            payload: &[],
        };
        build_frame(&mut self.frame, &w)?;
        self.report.flows_tcp += 1;
        Ok(self.distinct_clock_ns)
    }

    fn distinct_frame(&mut self) -> io::Result<u64> {
        let n = self.report.packets;
        let devices = u64::from(self.devices);
        let host = (n % devices) as u32;
        let q = n / devices;
        let r = (q / DISTINCT_PORTS) % DISTINCT_SERVERS;
        let client = Endpoint {
            mac: device_mac(host),
            ip: device_ip(host),
            port: 1024 + (q % DISTINCT_PORTS) as u16,
        };
        let (hi, lo) = ((r >> 8) as u8, r as u8);
        let rng = &mut self.distinct_rng;
        self.distinct_clock_ns += rng.range(1_000, 20_000);
        let mut server = Endpoint {
            mac: [0x02, 0x53, 0x59, 0x20, hi, lo],
            ip: [10, 1, hi, lo],
            port: 5683,
        };
        let ip_id = rng.next_u64() as u16;
        if n & 1 == 0 {
            server.port = rng.pick(&[80, 8080, 1883, 23]);
            let tcp = TcpFields {
                seq: rng.next_u64() as u32,
                ack: 0,
                flags: SYN,
                window: 64_240,
                mss: Some(1460),
            };
            let w = Wire {
                src: &client,
                dst: &server,
                ttl: 64,
                ip_id,
                tcp: Some(tcp),
                payload: &[],
            };
            build_frame(&mut self.frame, &w)?;
        } else {
            let mid = rng.next_u64() as u16;
            let token = (rng.next_u64() as u32).to_be_bytes();
            self.scratch.clear();
            coap::message(
                &mut self.scratch,
                coap::Type::Confirmable,
                coap::GET,
                mid,
                &token,
                &[
                    (coap::URI_PATH, b"sensors"),
                    (coap::URI_PATH, b"temperature"),
                ],
                b"",
            );
            let w = Wire {
                src: &client,
                dst: &server,
                ttl: 64,
                ip_id,
                tcp: None,
                payload: &self.scratch,
            };
            build_frame(&mut self.frame, &w)?;
        }
        if n & 1 == 0 {
            self.report.flows_tcp += 1;
        } else {
            self.report.flows_udp += 1;
        }
        Ok(self.distinct_clock_ns)
    }
}

impl FrameSource for Generator {
    fn advance(&mut self) -> Result<Next, CaptureError> {
        match self.advance_frame() {
            Ok(true) => Ok(Next::Frame),
            Ok(false) => Ok(Next::End),
            Err(source) => Err(CaptureError::Io {
                path: PathBuf::from("<synthetic>"),
                source,
            }),
        }
    }

    fn current(&self) -> Frame<'_> {
        self.frame()
    }

    fn bytes_read(&self) -> u64 {
        self.report.bytes
    }

    fn total_bytes(&self) -> Option<u64> {
        None
    }
}

/// TCP header fields of a frame to build.
struct TcpFields {
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    mss: Option<u16>,
}

/// Everything a frame is built from.
struct Wire<'a> {
    src: &'a Endpoint,
    dst: &'a Endpoint,
    ttl: u8,
    ip_id: u16,
    /// TCP when present, else UDP.
    tcp: Option<TcpFields>,
    payload: &'a [u8],
}

fn build_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("building a synthetic frame: {e}"))
}

/// Ethernet II / IPv4 / TCP or UDP with correct lengths and checksums.
fn build_frame(frame: &mut Vec<u8>, w: &Wire) -> io::Result<()> {
    let ip = Ipv4Header {
        source: w.src.ip,
        destination: w.dst.ip,
        time_to_live: w.ttl,
        identification: w.ip_id,
        dont_fragment: w.tcp.is_some(),
        ..Default::default()
    };
    let builder =
        PacketBuilder::ethernet2(w.src.mac, w.dst.mac).ip(IpHeaders::Ipv4(ip, Default::default()));
    frame.clear();
    match &w.tcp {
        Some(t) => {
            let mut tcp = TcpHeader::new(w.src.port, w.dst.port, t.seq, t.window);
            tcp.fin = t.flags & FIN != 0;
            tcp.syn = t.flags & SYN != 0;
            tcp.rst = t.flags & RST != 0;
            tcp.psh = t.flags & PSH != 0;
            tcp.ack = t.flags & ACK != 0;
            tcp.acknowledgment_number = t.ack;
            if let Some(mss) = t.mss {
                tcp.set_options(&[TcpOptionElement::MaximumSegmentSize(mss)])
                    .map_err(build_error)?;
            }
            builder
                .tcp_header(tcp)
                .write_to_vec(frame, w.payload)
                .map_err(build_error)?;
        }
        None => builder
            .udp(w.src.port, w.dst.port)
            .write_to_vec(frame, w.payload)
            .map_err(build_error)?,
    }
    if frame.len() < MIN_FRAME_LEN {
        frame.resize(MIN_FRAME_LEN, 0);
    }
    Ok(())
}

fn render_session_packet(frame: &mut Vec<u8>, s: &mut Session, p: &Pkt) -> io::Result<()> {
    let d = p.dir.idx();
    let ip_id = s.ip_id[d];
    s.ip_id[d] = ip_id.wrapping_add(1);
    let (src, dst) = s.endpoints(p.dir);
    let payload = s
        .stream(p.dir)
        .get(p.start as usize..p.end as usize)
        .ok_or_else(|| build_error("payload range outside the stream"))?;
    let tcp = (s.transport == Transport::Tcp).then(|| TcpFields {
        seq: p.seq,
        ack: p.ack,
        flags: p.flags,
        window: s.window[d],
        mss: p.mss_option.then_some(s.mss[d]),
    });
    let w = Wire {
        src,
        dst,
        ttl: s.ttl[d],
        ip_id,
        tcp,
        payload,
    };
    build_frame(frame, &w)
}

#[cfg(test)]
impl Generator {
    /// Bytes held by the live sessions' buffers (for the memory-bound test).
    pub(super) fn buffered_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.session.buffered_bytes())
            .sum::<usize>()
            + self.frame.capacity()
            + self.scratch.capacity()
    }

    pub(super) fn live_sessions(&self) -> usize {
        self.slots.len()
    }
}
