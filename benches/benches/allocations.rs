//! Heap allocations per packet on the synthetic IoT mix, through the whole
//! pipeline on one thread, for each set of stages: decode, flows and TCP
//! reassembly; then the protocol parsers; then the rules; then the devices,
//! profiles, feature windows and the model (the default sensor). Counted by
//! a global allocator that wraps the system's, in this benchmark binary only;
//! setting the stages up is not counted, only the packets and the end of
//! input. Prints a table (allocations and bytes asked for, per packet).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use spanwatch::alert::Alerter;
use spanwatch::config::Config;
use spanwatch::detect::default_ruleset;
use spanwatch::detect::detector::Detector;
use spanwatch::detect::learned::LearnedState;
use spanwatch::pipeline::{DetectionSetup, Pipeline};
use spanwatch::synth::Impairments;
use spanwatch_benches::{OwnedFrame, frames, iot_pcap};

const PACKETS: u64 = 200_000;

/// The system allocator, counting every allocation and reallocation.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn count(bytes: usize) {
    ALLOCATIONS.fetch_add(1, Relaxed);
    BYTES.fetch_add(bytes as u64, Relaxed);
}

// SAFETY: every call is passed on unchanged to the system allocator, which
// upholds GlobalAlloc's contract; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: ptr was allocated here with layout, as the caller promises.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr was allocated here with layout, as the caller promises.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Which stages run.
#[derive(Clone, Copy)]
struct Stages {
    parsers: bool,
    rules: bool,
    devices: bool,
}

/// Allocations and bytes asked for while `frames` go through a pipeline with
/// `stages`.
fn measure(frames: &[OwnedFrame], stages: Stages) -> (u64, u64) {
    let cfg = Config::default();
    let mut pc = cfg.pipeline_config();
    pc.app_thread = false;
    pc.parse_protocols = stages.parsers;
    let mut pipeline = Pipeline::new(pc);
    if stages.devices {
        pipeline.profile_devices(cfg.devices.extractor().expect("devices are on by default"));
    }
    if stages.rules {
        let model = if stages.devices {
            cfg.model_detector().expect("the built-in model loads")
        } else {
            None
        };
        pipeline.detect_with(DetectionSetup {
            rules: Some(Detector::new(
                default_ruleset().expect("the default rules load"),
                cfg.rules.limits(),
            )),
            model,
            profile: if stages.devices {
                cfg.profile_detector()
            } else {
                None
            },
            alerts: Alerter::new(cfg.alerts.limits()),
            learned: LearnedState::default(),
            state_path: None,
            learn_secs: cfg.model.learn_secs,
        });
    }
    let (a0, b0) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    for f in frames {
        pipeline.process(&f.frame());
    }
    pipeline.finish();
    let counted = (ALLOCATIONS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0);
    assert_eq!(
        pipeline.packets(),
        frames.len() as u64,
        "every packet counted"
    );
    counted
}

fn main() {
    let frames = frames(&iot_pcap(PACKETS, Impairments::NONE));
    let n = frames.len() as f64;
    println!(
        "allocations per packet, {} packets of the synthetic IoT mix, one thread",
        frames.len()
    );
    println!("{:<40} {:>12} {:>14}", "stages", "allocations", "bytes");
    let all = |parsers, rules, devices| Stages {
        parsers,
        rules,
        devices,
    };
    for (name, stages) in [
        ("decode + flows + reassembly", all(false, false, false)),
        ("+ protocol parsers", all(true, false, false)),
        ("+ rules", all(true, true, false)),
        ("+ devices, profiles, windows, model", all(true, true, true)),
    ] {
        let (allocations, bytes) = measure(&frames, stages);
        println!(
            "{name:<40} {:>12.2} {:>14.1}",
            allocations as f64 / n,
            bytes as f64 / n
        );
    }
}
