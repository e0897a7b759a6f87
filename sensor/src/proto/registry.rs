//! The protocols spanwatch parses: the one list the dispatcher, the counts,
//! the logs, the normaliser and the config file work from. Adding a protocol
//! is a folder implementing [`Protocol`] plus one line of [`protocols!`].
//!
//! Each line reads `Variant: field => path::Type`: `Variant` names the
//! protocol in [`AppProto`], [`Session`] and [`AppEvent`], `field` in
//! [`ProtoCounts`] and [`AppLimits`] (the summary's and the config file's
//! key), and the type implements [`Protocol`]. The order of the lines is the
//! order of the summary and the order in which content probes are tried.

use serde::{Deserialize, Serialize};

use super::contract::{CountsView, Protocol};
use super::norm::{Event, NormContext};
use super::{Probe, coap, dhcp, http, mqtt, telnet};
use crate::capture::Timestamp;
use crate::flow::Direction;

/// Memory accounted to a session beyond its own struct: its tables and
/// buffers in ordinary use (each is bounded by its limits).
pub const SESSION_HEAP_ESTIMATE_BYTES: usize = 1024;

/// What a session is given.
#[derive(Clone, Copy, Debug)]
pub enum Feed<'a> {
    /// In-order bytes of a TCP stream.
    Data(&'a [u8]),
    /// Bytes lost in a TCP stream.
    Gap(u64),
    /// One UDP datagram.
    Datagram(&'a [u8]),
    /// The end of the flow.
    Close,
}

fn feed<P: Protocol>(
    session: &mut P::Session,
    ts: Timestamp,
    dir: Direction,
    what: Feed<'_>,
    out: &mut Vec<P::Event>,
) {
    match what {
        Feed::Data(d) => P::on_data(session, ts, dir, d, out),
        Feed::Gap(n) => P::on_gap(session, ts, dir, n, out),
        Feed::Datagram(d) => P::on_datagram(session, ts, dir, d, out),
        Feed::Close => P::on_close(session, ts, out),
    }
}

/// Something done with one event of any protocol that needs the protocol's
/// type (its [`Protocol`] functions): see [`AppEvent::visit`].
pub trait EventVisitor {
    fn visit<P: Protocol>(&mut self, proto: AppProto, event: &P::Event);
}

macro_rules! protocols {
    ($($variant:ident: $field:ident => $imp:ty),+ $(,)?) => {
        /// The application protocols spanwatch parses.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AppProto {
            $($variant),+
        }

        impl AppProto {
            /// Every protocol, in registration order.
            pub const ALL: &'static [AppProto] = &[$(AppProto::$variant),+];

            /// The protocol's lower-case name ([`Protocol::NAME`]).
            pub fn name(self) -> &'static str {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::NAME),+
                }
            }

            /// Kind of the normalised event of a flow recognised as this protocol.
            pub fn flow_kind(self) -> &'static str {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::FLOW_KIND),+
                }
            }

            /// Position in [`AppProto::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }

            pub fn tcp_ports(self) -> &'static [u16] {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::TCP_PORTS),+
                }
            }

            pub fn udp_ports(self) -> &'static [u16] {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::UDP_PORTS),+
                }
            }

            pub fn probe_stream(self, first: &[u8], dir: Direction) -> Probe {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::probe_stream(first, dir)),+
                }
            }

            pub fn probe_datagram(self, payload: &[u8], dir: Direction) -> Probe {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::probe_datagram(payload, dir)),+
                }
            }

            /// Memory one session of this protocol is accounted.
            pub fn session_cost(self) -> usize {
                let inline = match self {
                    $(AppProto::$variant => std::mem::size_of::<<$imp as Protocol>::Session>()),+
                };
                inline + SESSION_HEAP_ESTIMATE_BYTES
            }
        }

        /// The parser session of a flow whose protocol is known.
        #[derive(Debug)]
        pub enum Session {
            $($variant(Box<<$imp as Protocol>::Session>)),+
        }

        impl Session {
            pub fn new(proto: AppProto, limits: &AppLimits) -> Session {
                match proto {
                    $(AppProto::$variant => {
                        Session::$variant(Box::new(<$imp as Protocol>::session(&limits.$field)))
                    }),+
                }
            }

            pub fn proto(&self) -> AppProto {
                match self {
                    $(Session::$variant(_) => AppProto::$variant),+
                }
            }

            /// Gives the session `what`: the events it reports, in their
            /// protocol's buffer of `bufs`.
            pub fn feed<'b>(
                &mut self,
                ts: Timestamp,
                dir: Direction,
                what: Feed<'_>,
                bufs: &'b mut EventBufs,
            ) -> Events<'b> {
                match self {
                    $(Session::$variant(s) => {
                        let buf = &mut bufs.$field;
                        buf.clear();
                        feed::<$imp>(s, ts, dir, what, buf);
                        Events::$variant(buf)
                    }),+
                }
            }
        }

        /// The events one feed of a session reported, in its protocol's
        /// reused buffer: read in place, or moved out.
        #[derive(Debug)]
        pub enum Events<'a> {
            $($variant(&'a mut Vec<<$imp as Protocol>::Event>)),+
        }

        impl Events<'_> {
            /// Hands each event, in order, to `each`.
            pub fn each(&self, mut each: impl FnMut(AppEvent<'_>)) {
                match self {
                    $(Events::$variant(buf) => buf.iter().for_each(|e| each(AppEvent::$variant(e)))),+
                }
            }

            /// Moves each event, in order, to `each` (the buffer is left empty).
            pub fn drain(&mut self, mut each: impl FnMut(OwnedEvent)) {
                match self {
                    $(Events::$variant(buf) => buf.drain(..).for_each(|e| each(OwnedEvent::$variant(e)))),+
                }
            }
        }

        /// One event from any parser, moved out of its session's buffer
        /// (to be handed on later, on another thread).
        #[derive(Debug)]
        pub enum OwnedEvent {
            $($variant(<$imp as Protocol>::Event)),+
        }

        impl OwnedEvent {
            pub fn as_event(&self) -> AppEvent<'_> {
                match self {
                    $(OwnedEvent::$variant(e) => AppEvent::$variant(e)),+
                }
            }
        }

        /// One event from any parser.
        #[derive(Clone, Copy, Debug)]
        pub enum AppEvent<'a> {
            $($variant(&'a <$imp as Protocol>::Event)),+
        }

        impl<'a> AppEvent<'a> {
            pub fn proto(&self) -> AppProto {
                match self {
                    $(AppEvent::$variant(_) => AppProto::$variant),+
                }
            }

            /// The normalised events of this event.
            pub fn normalize(&self, cx: &mut NormContext<'_>, out: &mut Vec<Event<'a>>) {
                match self {
                    $(AppEvent::$variant(e) => <$imp as Protocol>::normalize(e, cx, out)),+
                }
            }

            /// Hands the event to `visitor` with its protocol's type.
            pub fn visit(&self, visitor: &mut impl EventVisitor) {
                match self {
                    $(AppEvent::$variant(e) => visitor.visit::<$imp>(AppProto::$variant, e)),+
                }
            }
        }

        impl AppProto {
            /// The normalised events of the end of a flow of this protocol.
            pub fn normalize_close(self, cx: &mut NormContext<'_>, out: &mut Vec<Event<'_>>) {
                match self {
                    $(AppProto::$variant => <$imp as Protocol>::normalize_close(cx, out)),+
                }
            }
        }

        /// Reused event buffers, one per protocol, so that nothing is
        /// allocated per packet.
        #[derive(Debug, Default)]
        pub struct EventBufs {
            $($field: Vec<<$imp as Protocol>::Event>),+
        }

        /// Counts of every protocol, for the summary.
        #[derive(Clone, Debug, Default, Serialize)]
        pub struct ProtoCounts {
            $(pub $field: <$imp as Protocol>::Counts),+
        }

        impl ProtoCounts {
            /// A flow was recognised as `proto`.
            pub fn on_detect(&mut self, proto: AppProto) {
                match proto {
                    $(AppProto::$variant => <$imp as Protocol>::count_flow(&mut self.$field)),+
                }
            }

            pub fn on_event(&mut self, ev: AppEvent<'_>) {
                match ev {
                    $(AppEvent::$variant(e) => <$imp as Protocol>::count(&mut self.$field, e)),+
                }
            }

            /// Anomalies of every protocol.
            pub fn anomalies_total(&self) -> u64 {
                0 $(+ <$imp as Protocol>::anomalies(&self.$field))+
            }

            /// Every protocol's name and the counts all protocols have.
            pub fn views(&self) -> Vec<(&'static str, CountsView<'_>)> {
                vec![$((<$imp as Protocol>::NAME, <$imp as Protocol>::view(&self.$field))),+]
            }

            /// One summary line per protocol: its name and its counts.
            pub fn lines(&self) -> Vec<(&'static str, String)> {
                vec![$((<$imp as Protocol>::NAME, self.$field.to_string())),+]
            }
        }

        /// Parser limits, one table per protocol.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct AppLimits {
            $(pub $field: <$imp as Protocol>::Limits),+
        }
    };
}

protocols! {
    Http: http => http::Http,
    Mqtt: mqtt => mqtt::Mqtt,
    Coap: coap => coap::Coap,
    Telnet: telnet => telnet::Telnet,
    Dhcp: dhcp => dhcp::Dhcp,
}
