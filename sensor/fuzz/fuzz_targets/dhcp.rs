//! cargo-fuzz entry of the DHCP target: the body is
//! `spanwatch_fuzz::dhcp::fuzz_one`, which `tests/corpus.rs` also replays over the
//! committed corpus as an ordinary test.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spanwatch_fuzz::dhcp::fuzz_one(data));
