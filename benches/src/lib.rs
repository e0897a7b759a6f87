//! Shared helpers for the spanwatch criterion benchmarks.
