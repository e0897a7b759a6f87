//! spanwatch: a passive anomaly-detection sensor for IoT network segments.
//!
//! The packet path is `capture` → `decode` → `flow` (with TCP reassembly) →
//! protocol parsers; `pipeline` wires the stages and `summary` reports on them.
//! `config` gathers every stage's settings into the typed config file;
//! `units` (byte sizes) is shared by every stage and imports nothing.

pub mod alert;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod event;
pub mod flow;
pub mod pipeline;
pub mod proto;
pub mod summary;
pub mod synth;
pub mod units;
