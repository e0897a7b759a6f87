//! Rule evaluation: events per second through the full default ruleset.
//! The events are a mix like an IoT segment's (mostly MQTT publishes and TCP
//! connection attempts, some logins, HTTP and CoAP requests) from 200 devices.

use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spanwatch::capture::Timestamp;
use spanwatch::detect::default_ruleset;
use spanwatch::detect::rules::{Engine, EngineLimits};
use spanwatch::proto::norm::Event;

const EVENTS: usize = 100_000;
const DEVICES: u32 = 200;

fn event(i: usize) -> Event<'static> {
    let device = (i as u32) % DEVICES;
    let src = (
        IpAddr::V4(Ipv4Addr::from(0x0A00_0100 + device)),
        40_000 + (i % 20_000) as u16,
    );
    let base = |kind: &'static str, proto: &'static str, port: u16| Event {
        ts: Timestamp::from_secs_nanos(
            1_700_000_000 + (i / 1000) as i64,
            (i % 1000) as u32 * 1_000_000,
        ),
        kind,
        proto,
        src,
        dst: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)), port),
        src_mac: None,
        dst_mac: None,
        transport: 6,
        flow_id: i as u64,
        fields: Vec::new(),
        credential: None,
    };
    match i % 20 {
        0..=9 => base("mqtt.publish", "mqtt", 1883)
            .with("from", "client")
            .with("topic", "home/livingroom/temp")
            .with("qos", 1i64)
            .with("retain", false)
            .with("payload_len", 12i64),
        10..=13 => base("tcp.syn", "tcp", 1883).with("dst_port", 1883i64),
        14 => base("mqtt.connect", "mqtt", 1883)
            .with("client_id", format!("dev{device}"))
            .with("user", format!("dev{device}"))
            .with("has_password", true)
            .with("version", 4i64)
            .with("keep_alive", 60i64),
        15 => base("http.request", "http", 80)
            .with("method", "GET")
            .with("uri", "/status.json")
            .with("host", "10.0.0.10"),
        16 => base("http.response", "http", 80).with("status", 200i64),
        17 => base("coap.request", "coap", 5683)
            .with("method", "GET")
            .with("code", "0.01")
            .with("type", "CON")
            .with("uri_path", "sensors/temp")
            .with("observe", false)
            .with("unknown_critical", false),
        18 => base("telnet.login", "telnet", 23)
            .with("user", "admin")
            .with("has_password", true)
            .with("outcome", "success"),
        _ => base("tcp.refused", "tcp", 8080).with("dst_port", 8080i64),
    }
}

fn bench(c: &mut Criterion) {
    let events: Vec<Event> = (0..EVENTS).map(event).collect();
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("default_ruleset", |b| {
        b.iter(|| {
            let rules = default_ruleset().expect("built-in rules load");
            let mut engine = Engine::new(rules, EngineLimits::default());
            let mut out = Vec::new();
            for ev in &events {
                engine.on_event(ev, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
