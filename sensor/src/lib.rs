//! spanwatch: a passive anomaly-detection sensor for IoT network segments.
//!
//! The packet path is `capture` → `decode` → `flow` (with TCP reassembly) →
//! protocol parsers; `pipeline` wires the stages and `summary` reports on them.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod device;
pub mod flow;
pub mod pipeline;
pub mod proto;
pub mod summary;
pub mod synth;
