//! Deterministic synthetic IoT traffic generator and pcap writer (benches, tests, timings).
