//! Device inventory and behaviour profiles: a device is a MAC address on the
//! segment ([`inventory`]), what it normally does is its [`profile`], and
//! [`zone`]s name parts of the network. Vendors come from the IEEE registry
//! ([`oui`]).

pub mod inventory;
pub mod oui;
pub mod profile;
pub mod zone;
