//! Vendor lookups (`device::oui::vendor`) per second, on two sets of 4096
//! addresses: addresses in assigned blocks of every size (MA-L, MA-M, MA-S,
//! IAB) with varying device parts, and random universally administered
//! unicast addresses, nearly all in unassigned blocks, which cost the most
//! (a search of every block size). The one-time parse of the embedded table
//! happens before timing and is printed.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spanwatch::device::oui::vendor;

/// Addresses per timed batch.
const ADDRESSES: usize = 4096;

/// Blocks from the registry (2022-08-27): MA-L 00000C Cisco, B827EB
/// Raspberry Pi Foundation, 00005E IANA, 001788 Philips Lighting BV; MA-M
/// 741AE03 Philips Personal Health Solutions; MA-S 70B3D5F21 dds; IAB
/// 0050C27D5 DEUTA-WERKE. (Prefix, its length in bits.)
const ASSIGNED: [(u64, u32); 7] = [
    (0x00000C, 24),
    (0xB827EB, 24),
    (0x00005E, 24),
    (0x001788, 24),
    (0x741AE03, 28),
    (0x70B3D5F21, 36),
    (0x0050C27D5, 36),
];

/// A deterministic 64-bit generator (splitmix64), so every run times the
/// same addresses.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mac(address: u64) -> [u8; 6] {
    let [_, _, a, b, c, d, e, f] = address.to_be_bytes();
    [a, b, c, d, e, f]
}

fn bench(c: &mut Criterion) {
    let started = Instant::now();
    assert_eq!(
        vendor(mac(0x00000C_000001)),
        Some("Cisco Systems, Inc"),
        "embedded table"
    );
    eprintln!("devices: vendor table parsed in {:?}", started.elapsed());

    let mut state = 42;
    let assigned: Vec<[u8; 6]> = (0..ADDRESSES)
        .map(|i| {
            let (prefix, bits) = ASSIGNED[i % ASSIGNED.len()];
            let device = splitmix(&mut state) & ((1 << (48 - bits)) - 1);
            mac((prefix << (48 - bits)) | device)
        })
        .collect();
    assert!(assigned.iter().all(|m| vendor(*m).is_some()));
    // Clear the group and local bits of the first octet.
    let random: Vec<[u8; 6]> = (0..ADDRESSES)
        .map(|_| mac(splitmix(&mut state) & 0xFCFF_FFFF_FFFF))
        .collect();

    let mut g = c.benchmark_group("oui_vendor");
    g.throughput(Throughput::Elements(ADDRESSES as u64));
    for (name, set) in [("assigned", &assigned), ("random_universal", &random)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                set.iter()
                    .filter(|m| vendor(black_box(**m)).is_some())
                    .count()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
