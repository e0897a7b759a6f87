//! Application protocol parsers: one folder per protocol, each with a parser
//! (bytes to typed messages), session state (per flow) and events.

pub mod coap;
pub mod http;
pub mod mqtt;
pub mod telnet;
