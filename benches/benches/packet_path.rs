//! Throughput of each stage of the packet path on the synthetic IoT mix:
//! reading pcap records, decoding, decode + flow table + TCP reassembly, and
//! the whole pipeline. Reported in packets per second (criterion "elements").

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spanwatch::capture::{FileSource, FrameSource, Next};
use spanwatch::decode::{Decoded, Decoder};
use spanwatch::flow::{
    CloseReason, Direction, FlowConfig, FlowHandler, FlowInfo, FlowTable, StreamEvent,
};
use spanwatch::pipeline::{Pipeline, PipelineConfig};
use spanwatch::synth::Impairments;
use spanwatch_benches::{frames, iot_pcap};

const PACKETS: u64 = 100_000;

/// Counts what the flow table hands out, so nothing is optimised away.
#[derive(Default)]
struct Count(u64);

impl FlowHandler<()> for Count {
    fn on_stream(&mut self, _: &FlowInfo, _: &mut (), _: Direction, ev: StreamEvent<'_>) {
        if let StreamEvent::Data(d) = ev {
            self.0 += d.len() as u64;
        }
    }
    fn on_datagram(&mut self, _: &FlowInfo, _: &mut (), _: Direction, d: &[u8]) {
        self.0 += d.len() as u64;
    }
    fn on_close(&mut self, _: &FlowInfo, _: &mut (), _: CloseReason) {}
}

fn bench(c: &mut Criterion) {
    let pcap = iot_pcap(PACKETS, Impairments::NONE);
    let frames = frames(&pcap);
    let impaired = self::frames(&iot_pcap(
        PACKETS,
        Impairments {
            reorder_permille: 50,
            retransmit_permille: 20,
            overlap_permille: 20,
            drop_permille: 5,
        },
    ));
    let mut g = c.benchmark_group("packet_path");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.sample_size(20);

    g.bench_function("read_pcap", |b| {
        b.iter(|| {
            let mut s = FileSource::from_reader("b.pcap", &pcap[..], None).unwrap();
            let mut n = 0u64;
            while let Ok(Next::Frame) = s.advance() {
                n += s.current().data.len() as u64;
            }
            n
        })
    });

    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut d = Decoder::default();
            for f in &frames {
                let _ = d.decode(&f.frame());
            }
            d.stats.ip_packets
        })
    });

    for (name, input) in [
        ("decode_flows_reassembly", &frames),
        ("decode_flows_reassembly_impaired", &impaired),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut d = Decoder::default();
                let mut t: FlowTable<()> = FlowTable::new(FlowConfig::default());
                let mut count = Count::default();
                for f in input.iter() {
                    if let Decoded::Packet(p) = d.decode(&f.frame()) {
                        t.process(&p, &mut count);
                    }
                }
                t.flush(&mut count);
                count.0
            })
        });
    }

    // The whole packet path, parsers on the capture thread and on their own.
    for (name, app_thread) in [
        ("pipeline_one_thread", false),
        ("pipeline_two_threads", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut p = Pipeline::new(PipelineConfig {
                    app_thread,
                    ..PipelineConfig::default()
                });
                for f in &frames {
                    p.process(&f.frame());
                }
                p.finish();
                p.packets()
            })
        });
    }
    g.finish();
}

/// The reassembler alone: a 4 MiB stream in 1 000-byte segments, in order and
/// with every window of 8 segments reversed.
fn reassembly(c: &mut Criterion) {
    use spanwatch::flow::reassembly::{ReassemblyBudget, ReassemblyLimits, Stream};
    const SEGMENTS: usize = 4096;
    const MSS: usize = 1000;
    let data: Vec<u8> = (0..SEGMENTS * MSS).map(|i| (i % 251) as u8).collect();
    let in_order: Vec<usize> = (0..SEGMENTS).collect();
    let reordered: Vec<usize> = in_order
        .chunks(8)
        .flat_map(|w| w.iter().rev().copied())
        .collect();
    let mut g = c.benchmark_group("reassembly");
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, order) in [("in_order", &in_order), ("reordered_by_8", &reordered)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let limits = ReassemblyLimits::default();
                let mut budget = ReassemblyBudget::new(64 << 20);
                let mut stats = Default::default();
                let mut stream = Stream::default();
                stream.on_syn(0);
                let mut delivered = 0usize;
                for &i in order.iter() {
                    let seg = &data[i * MSS..(i + 1) * MSS];
                    stream.segment(
                        1 + (i * MSS) as u32,
                        seg,
                        MSS as u32,
                        false,
                        &limits,
                        &mut budget,
                        &mut stats,
                        &mut |ev| {
                            if let StreamEvent::Data(d) = ev {
                                delivered += d.len();
                            }
                        },
                    );
                }
                delivered
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, reassembly);
criterion_main!(benches);
