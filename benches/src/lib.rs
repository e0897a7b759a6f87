//! Shared inputs for the spanwatch criterion benchmarks: deterministic
//! synthetic captures, generated in memory once per benchmark.

use spanwatch::capture::{FileSource, FrameSource, LinkType, Next, Timestamp};
use spanwatch::synth::{Impairments, SynthConfig, write_pcap};

/// A frame held in memory, so benchmarks time processing, not file reading.
pub struct OwnedFrame {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl OwnedFrame {
    pub fn frame(&self) -> spanwatch::capture::Frame<'_> {
        spanwatch::capture::Frame {
            ts: self.ts,
            link: self.link,
            data: &self.data,
            orig_len: self.orig_len,
        }
    }
}

/// A pcap of the IoT mix (MQTT, CoAP, HTTP, Telnet devices), in memory.
pub fn iot_pcap(packets: u64, impair: Impairments) -> Vec<u8> {
    let cfg = SynthConfig {
        seed: 42,
        devices: 64,
        packets,
        impair,
        ..SynthConfig::default()
    };
    let mut pcap = Vec::new();
    write_pcap(&cfg, &mut pcap).expect("writing to memory cannot fail");
    pcap
}

/// Every frame of an in-memory pcap.
pub fn frames(pcap: &[u8]) -> Vec<OwnedFrame> {
    let mut source = FileSource::from_reader("bench.pcap", pcap, Some(pcap.len() as u64))
        .expect("generated pcap is valid");
    let mut out = Vec::new();
    while let Ok(Next::Frame) = source.advance() {
        let f = source.current();
        out.push(OwnedFrame {
            ts: f.ts,
            link: f.link,
            data: f.data.to_vec(),
            orig_len: f.orig_len,
        });
    }
    out
}
