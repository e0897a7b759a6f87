//! spanwatch: a passive anomaly-detection sensor for IoT network segments.
//!
//! Data flows one way (checked by `tests/architecture.rs`): `capture` →
//! `decode` → `flow` (with TCP reassembly) → `proto` (the parsers, one
//! contract each) → `event` (normalised events) → `device`, `detect` (rules)
//! → `alert` (dedupe, aggregation, sinks). `pipeline` wires the stages and
//! `summary` reports on them; `config` gathers every stage's settings into
//! the typed config file; `units` (byte sizes, durations) is shared by every
//! stage; `telemetry` serves what the stages publish as Prometheus metrics.
//! After them come the tools that drive the pipeline: `labels` (the lab's
//! labels.csv, which the next three read), `dataset` (Parquet datasets) and
//! `train`, both with the `train` feature, and `eval`.
#![forbid(unsafe_code)]

pub mod alert;
pub mod capture;
pub mod cli;
pub mod config;
#[cfg(feature = "train")]
pub mod dataset;
pub mod decode;
pub mod detect;
pub mod device;
pub mod eval;
pub mod event;
pub mod features;
pub mod flow;
pub mod labels;
pub mod pipeline;
#[cfg(feature = "train")]
pub mod plot;
pub mod privilege;
pub mod proto;
pub mod summary;
pub mod synth;
pub mod telemetry;
#[cfg(feature = "train")]
pub mod train;
pub mod units;
