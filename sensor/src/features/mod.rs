//! Feature windows: per device, per window of packet time, one fixed vector
//! of counts that says what the device did ([`FEATURES`], generated from the
//! table in `FEATURES.md`, its single source). The same extractor runs in
//! `replay`, `live`, `extract` and `train`.
//!
//! Features hold no address or name: a model trained on one network can
//! score another. The device a window belongs to travels beside the values.

mod distinct;
mod extract;
pub mod jsonl;

pub use extract::{
    Extractor, ExtractorStats, MAX_DEVICE_BYTES, MAX_PENDING_ATTEMPTS, PENDING_ATTEMPT_BYTES,
};

use serde::Serialize;

use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::device::inventory::Device;
use crate::device::profile::Service;

include!(concat!(env!("OUT_DIR"), "/features.rs"));

/// Default length of a window, in seconds of packet time.
pub const DEFAULT_WINDOW_SECS: u64 = 10;

/// Name, unit and meaning of one feature (a row of `FEATURES.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureSpec {
    pub name: &'static str,
    pub unit: &'static str,
    pub meaning: &'static str,
}

impl Feature {
    /// Position in a window's values.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn spec(self) -> &'static FeatureSpec {
        &FEATURES[self.index()]
    }
}

/// One device's behaviour during one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// The device (its MAC address).
    pub device: [u8; 6],
    /// Start (inclusive) and end (exclusive) in packet time.
    pub start: Timestamp,
    pub end: Timestamp,
    /// The features, in [`FEATURES`] order.
    pub values: [f64; FEATURE_COUNT],
    /// What the counts leave out, for the profile detections: which peers
    /// and services were new. Not part of the datasets.
    pub notes: WindowNotes,
}

/// Peers and services kept per window note list.
pub const MAX_WINDOW_NOTES: usize = 8;

/// Addresses and services behind a window's counts, bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowNotes {
    /// Peers the device opened flows to that its profile did not have.
    pub new_peers_opened: Vec<IpAddr>,
    /// Services it used or offered for the first time.
    pub new_services: Vec<Service>,
    /// Peers it opened flows to (for the zone policy).
    pub opened_to: Vec<IpAddr>,
}

impl WindowNotes {
    pub(crate) fn push<T: PartialEq>(list: &mut Vec<T>, item: T) {
        if list.len() < MAX_WINDOW_NOTES && !list.contains(&item) {
            list.push(item);
        }
    }
}

impl Window {
    pub fn get(&self, f: Feature) -> f64 {
        self.values[f.index()]
    }
}

/// Receives the windows as they close (in packet-time order per device):
/// a dataset writer, the model.
pub trait WindowSink: Send {
    /// A window closed; `device` is its device as the inventory knows it
    /// then (its addresses, names, roles), None if it was evicted.
    fn window(&mut self, w: &Window, device: Option<&Device>) -> std::io::Result<()>;
    /// Packet time reached `now` (each second, after that second's
    /// windows): a sink that cuts files by time rotates here.
    fn tick(&mut self, _now: Timestamp) -> std::io::Result<()> {
        Ok(())
    }
    /// End of input or shutdown: write out what is buffered.
    fn flush(&mut self) -> std::io::Result<()>;
}
