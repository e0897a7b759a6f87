//! Throughput of each protocol session (HTTP, MQTT, CoAP, Telnet) on the
//! application payloads of the synthetic IoT mix, in bytes per second.
//!
//! Setup, not timed: the mix is generated, decoded and reassembled once; the
//! TCP payload of every flow is cut, per direction turn, into chunks of at
//! most one Ethernet MSS (1460 bytes), the way a reassembler hands over a
//! bulk transfer; CoAP datagrams stay as they are. Timed: a fresh session
//! per flow fed with every chunk (with its capture timestamp), then closed.
//! Flows are assigned to a parser by their server port, as the mix uses the
//! standard ports (MQTT 1883, CoAP 5683, Telnet 23, HTTP 80 and 8080).

use std::collections::BTreeMap;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spanwatch::capture::Timestamp;
use spanwatch::decode::{Decoded, Decoder};
use spanwatch::flow::{
    CloseReason, Direction, FlowConfig, FlowHandler, FlowInfo, FlowTable, StreamEvent,
};
use spanwatch::proto::coap::{CoapLimits, CoapSession};
use spanwatch::proto::http::{HttpLimits, HttpSession};
use spanwatch::proto::mqtt::{MqttLimits, MqttSession};
use spanwatch::proto::telnet::{TelnetLimits, TelnetSession};
use spanwatch::synth::Impairments;
use spanwatch_benches::{frames, iot_pcap};

/// Frames of the synthetic mix to extract streams from.
const PACKETS: u64 = 100_000;
/// Largest chunk handed to a TCP session (Ethernet MSS).
const CHUNK: usize = 1460;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Http,
    Mqtt,
    Coap,
    Telnet,
}

impl Proto {
    fn of_port(port: u16) -> Option<Proto> {
        match port {
            80 | 8080 => Some(Proto::Http),
            1883 => Some(Proto::Mqtt),
            5683 => Some(Proto::Coap),
            23 => Some(Proto::Telnet),
            _ => None,
        }
    }
}

/// What reassembly delivered for one direction at one time.
enum Piece {
    Data(Timestamp, Direction, Vec<u8>),
    Gap(Timestamp, Direction, u64),
}

/// One flow's pieces, in delivery order.
struct Flow {
    proto: Proto,
    pieces: Vec<Piece>,
}

/// Collects the pieces of every flow on a known server port.
#[derive(Default)]
struct Collect {
    flows: BTreeMap<u64, Flow>,
}

impl Collect {
    fn push(&mut self, info: &FlowInfo, piece: Piece) {
        if let Some(proto) = Proto::of_port(info.server.1) {
            self.flows
                .entry(info.id)
                .or_insert_with(|| Flow {
                    proto,
                    pieces: Vec::new(),
                })
                .pieces
                .push(piece);
        }
    }
}

impl FlowHandler<()> for Collect {
    fn on_stream(&mut self, info: &FlowInfo, _: &mut (), dir: Direction, ev: StreamEvent<'_>) {
        let piece = match ev {
            StreamEvent::Data(d) => Piece::Data(info.last_ts, dir, d.to_vec()),
            StreamEvent::Gap(n) => Piece::Gap(info.last_ts, dir, n),
        };
        self.push(info, piece);
    }
    fn on_datagram(&mut self, info: &FlowInfo, _: &mut (), dir: Direction, d: &[u8]) {
        self.push(info, Piece::Data(info.last_ts, dir, d.to_vec()));
    }
    fn on_close(&mut self, _: &FlowInfo, _: &mut (), _: CloseReason) {}
}

/// Merges consecutive data of one direction and cuts it into `CHUNK`-byte
/// pieces (the timestamp of a turn's first delivery is kept).
fn rechunk(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut turns: Vec<Piece> = Vec::new();
    for p in pieces {
        match (turns.last_mut(), p) {
            (Some(Piece::Data(_, last_dir, buf)), Piece::Data(_, dir, d)) if *last_dir == dir => {
                buf.extend_from_slice(&d);
            }
            (_, p) => turns.push(p),
        }
    }
    turns
        .into_iter()
        .flat_map(|p| match p {
            Piece::Data(ts, dir, d) => d
                .chunks(CHUNK)
                .map(|c| Piece::Data(ts, dir, c.to_vec()))
                .collect::<Vec<_>>(),
            gap => vec![gap],
        })
        .collect()
}

/// The flows of the synthetic mix, per protocol, ready to replay.
fn streams() -> BTreeMap<Proto, Vec<Vec<Piece>>> {
    let pcap = iot_pcap(PACKETS, Impairments::NONE);
    let mut decoder = Decoder::default();
    let mut table: FlowTable<()> = FlowTable::new(FlowConfig::default());
    let mut collect = Collect::default();
    for f in frames(&pcap) {
        if let Decoded::Packet(p) = decoder.decode(&f.frame()) {
            table.process(&p, &mut collect);
        }
    }
    table.flush(&mut collect);
    let mut out: BTreeMap<Proto, Vec<Vec<Piece>>> = BTreeMap::new();
    for flow in collect.flows.into_values() {
        let pieces = match flow.proto {
            Proto::Coap => flow.pieces,
            _ => rechunk(flow.pieces),
        };
        out.entry(flow.proto).or_default().push(pieces);
    }
    out
}

fn payload_bytes(flows: &[Vec<Piece>]) -> u64 {
    flows
        .iter()
        .flatten()
        .map(|p| match p {
            Piece::Data(_, _, d) => d.len() as u64,
            Piece::Gap(..) => 0,
        })
        .sum()
}

/// Replays every flow into a fresh TCP session; returns the events seen.
macro_rules! replay_tcp {
    ($flows:expr, $session:expr) => {{
        let mut events = 0usize;
        let mut out = Vec::new();
        for flow in $flows {
            let mut s = $session;
            let mut last = Timestamp(0);
            for p in flow {
                match p {
                    Piece::Data(ts, dir, d) => {
                        s.on_data(*ts, *dir, d, &mut out);
                        last = *ts;
                    }
                    Piece::Gap(ts, dir, n) => s.on_gap(*ts, *dir, *n, &mut out),
                }
                events += out.len();
                out.clear();
            }
            s.on_close(last, &mut out);
            events += out.len();
            out.clear();
        }
        events
    }};
}

fn replay_coap(flows: &[Vec<Piece>]) -> usize {
    let mut events = 0usize;
    let mut out = Vec::new();
    for flow in flows {
        let mut s = CoapSession::new(CoapLimits::default());
        for p in flow {
            if let Piece::Data(ts, dir, d) = p {
                s.on_datagram(*ts, *dir, d, &mut out);
                events += out.len();
                out.clear();
            }
        }
    }
    events
}

fn bench(c: &mut Criterion) {
    let streams = streams();
    let mut g = c.benchmark_group("parsers");
    g.sample_size(20);
    for (proto, flows) in &streams {
        let bytes = payload_bytes(flows);
        eprintln!("{proto:?}: {} flows, {bytes} payload bytes", flows.len());
        g.throughput(Throughput::Bytes(bytes));
        match proto {
            Proto::Http => g.bench_function("http", |b| {
                b.iter(|| replay_tcp!(flows, HttpSession::new(HttpLimits::default())))
            }),
            Proto::Mqtt => g.bench_function("mqtt", |b| {
                b.iter(|| replay_tcp!(flows, MqttSession::new(MqttLimits::default())))
            }),
            Proto::Telnet => g.bench_function("telnet", |b| {
                b.iter(|| replay_tcp!(flows, TelnetSession::new(TelnetLimits::default())))
            }),
            Proto::Coap => g.bench_function("coap", |b| b.iter(|| replay_coap(flows))),
        };
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
