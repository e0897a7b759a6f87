//! Device inventory and behaviour profiles.

pub mod oui;
