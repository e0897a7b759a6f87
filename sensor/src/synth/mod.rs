//! Deterministic synthetic IoT traffic generator and pcap writer (benches, tests, timings).
//!
//! [`Mode::IotMix`] simulates `devices` devices (10.0.x.y, locally
//! administered MACs) talking to four servers on the segment: an MQTT 3.1.1
//! broker (TCP 1883), a CoAP server (UDP 5683), an HTTP web UI (TCP 80 and
//! 8080) and a telnet device (TCP 23). Every TCP session is complete —
//! handshake with random ISNs, data with coherent sequence and acknowledgment
//! numbers both ways, MSS segmentation, FIN or RST close — and sessions of
//! different devices interleave with seeded jitter. [`Mode::DistinctFlows`]
//! makes every packet its own flow, for memory-bound tests of the flow table.
//!
//! The same [`SynthConfig`] always produces the same bytes: all randomness
//! comes from a SplitMix64 generator written out in this module (not the
//! `rand` crate, whose value streams may change between versions), and each
//! session's content depends only on the seed and the session's number. A
//! capture of `n` packets is a prefix of the capture of `n + k` packets.
//!
//! Output is streamed ([`write_pcap`], [`Generator`]): memory holds only the
//! live sessions (at most [`MAX_LIVE_SESSIONS`]), whatever the packet count.
//! Frames shorter than 60 bytes are zero-padded as they appear on a SPAN port.
//! [`generate_with_truth`] additionally returns each TCP session's exact
//! application bytes for reassembly tests.

mod coap;
mod device;
mod generator;
mod http;
mod mqtt;
mod pcap;
mod reorder;
mod rng;
mod session;
mod telnet;
#[cfg(test)]
mod tests;

use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::ops::Range;

use crate::capture::Timestamp;

pub use device::MAX_DEVICES;
pub use generator::{Generator, MAX_LIVE_SESSIONS};
pub use pcap::{LINKTYPE_ETHERNET, PCAP_SNAPLEN, PcapWriter};
pub use reorder::{MAX_DISPLACEMENT, ReorderConfig, ReorderError, ReorderReport, reorder_capture};

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthConfig {
    pub seed: u64,
    /// Number of devices, clamped to `1..=MAX_DEVICES`.
    pub devices: u32,
    /// Exact number of frames written (segments removed by the `drop`
    /// impairment are not written and not counted).
    pub packets: u64,
    /// Capture time of the beginning of the traffic.
    pub start: Timestamp,
    /// Capture impairments applied to TCP data segments (IotMix only).
    pub impair: Impairments,
    pub mode: Mode,
}

impl Default for SynthConfig {
    /// Seed 1, 16 devices, 10 000 packets from 2024-01-01T00:00:00Z, no
    /// impairments, IoT mix.
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            devices: 16,
            packets: 10_000,
            start: Timestamp::from_secs_nanos(1_704_067_200, 0),
            impair: Impairments::NONE,
            mode: Mode::IotMix,
        }
    }
}

/// Kind of traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Devices' MQTT, CoAP, HTTP and telnet sessions with servers on the segment.
    #[default]
    IotMix,
    /// `packets` distinct flows of one packet each (alternately a TCP SYN and
    /// a CoAP request over UDP) from `devices` devices.
    DistinctFlows,
    /// A distributed SYN flood: `packets` TCP SYNs from random, spoofed
    /// source addresses (one attacker MAC, as behind a router port) at
    /// `devices` targets, 50 000 a second on average.
    SynFlood,
}

/// Capture impairments of TCP data segments, each in 1/1000 of the data
/// segments. One draw per segment picks at most one of them (so they are
/// exclusive; a sum above 1000 saturates in the order drop, retransmit,
/// overlap, reorder). A segment that cannot take its impairment — overlap of
/// the first segment of a direction, reorder without a later segment of its
/// direction within 16 packets — is sent unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Impairments {
    /// Swap the segment with the next data segment of its direction.
    pub reorder_permille: u16,
    /// Send the segment again one to three packets later, same bytes.
    pub retransmit_permille: u16,
    /// Send, with the same bytes, part of the previous segment again: the
    /// segment starts up to 48 bytes earlier, or (when that would exceed the
    /// MSS) an extra segment straddles the boundary of the two.
    pub overlap_permille: u16,
    /// Leave the segment out of the capture; the peer's ACKs still cover it,
    /// as when only the capture lost it.
    pub drop_permille: u16,
}

impl Impairments {
    pub const NONE: Impairments = Impairments {
        reorder_permille: 0,
        retransmit_permille: 0,
        overlap_permille: 0,
        drop_permille: 0,
    };

    pub fn is_none(&self) -> bool {
        *self == Impairments::NONE
    }
}

/// What a run produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthReport {
    /// Frames written.
    pub packets: u64,
    /// Sum of the frames' lengths (the pcap file adds 24 bytes of header
    /// and 16 per record).
    pub bytes: u64,
    /// TCP / UDP flows with at least one frame in the capture.
    pub flows_tcp: u64,
    pub flows_udp: u64,
}

/// Ground truth of one TCP session: what each side's application sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamTruth {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Bytes the client sent, in stream order (offset 0 = ISN + 1).
    pub to_server: Vec<u8>,
    /// Bytes the server sent.
    pub to_client: Vec<u8>,
    /// Ranges of `to_server` (stream offsets) that never reached the capture.
    pub dropped_to_server: Vec<Range<u64>>,
    pub dropped_to_client: Vec<Range<u64>>,
    /// The whole session is in the capture. When the end of the capture cut
    /// it, the streams stop before the first byte not yet sent.
    pub complete: bool,
}

/// Write a classic pcap (microseconds, Ethernet, little endian) of the
/// traffic `cfg` describes, generating as it writes.
pub fn write_pcap(cfg: &SynthConfig, out: impl Write) -> io::Result<SynthReport> {
    write_frames(Generator::new(cfg), out, |_| {})
}

/// [`write_pcap`], handing each TCP session's [`StreamTruth`] to `on_stream`
/// when the session ends (and at the end, for sessions the capture cut).
pub fn write_pcap_with_truth(
    cfg: &SynthConfig,
    out: impl Write,
    on_stream: impl FnMut(StreamTruth),
) -> io::Result<SynthReport> {
    write_frames(Generator::with_truth(cfg), out, on_stream)
}

/// The pcap bytes and the ground truth of every TCP session, in memory.
pub fn generate_with_truth(cfg: &SynthConfig) -> io::Result<(Vec<u8>, Vec<StreamTruth>)> {
    let mut pcap = Vec::new();
    let mut truth = Vec::new();
    write_pcap_with_truth(cfg, &mut pcap, |t| truth.push(t))?;
    Ok((pcap, truth))
}

fn write_frames(
    mut g: Generator,
    out: impl Write,
    mut on_stream: impl FnMut(StreamTruth),
) -> io::Result<SynthReport> {
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 16, out), LINKTYPE_ETHERNET)?;
    while let Some(frame) = g.next_frame()? {
        w.write_frame(frame.ts, frame.data)?;
        g.take_truth().into_iter().for_each(&mut on_stream);
    }
    g.take_truth().into_iter().for_each(&mut on_stream);
    w.into_inner()?.flush()?;
    Ok(g.report())
}
