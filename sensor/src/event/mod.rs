//! The event layer: turns what the flow stage and the parsers saw into
//! normalised [`Event`]s, the one shape the later stages (rules, device
//! profiles, the model) read.
//!
//! Inputs, in packet order: parser events (through each protocol's
//! normaliser, [`crate::proto::Protocol::normalize`]), a flow recognised as a
//! protocol, the end of a flow, and the notes of TCP SYN and RST packets
//! (connection attempts and refusals). The normalisers' per-flow memory (the
//! last request URI, the MQTT client id) is kept here, bounded, and dropped
//! when the flow ends.

use crate::flow::{Direction, FlowInfo, PacketNote};
use crate::proto::norm::{Event, NormContext, NoteTable};
use crate::proto::{AppEvent, AppProto};

/// Normalises, into a buffer reused from one input to the next.
#[derive(Debug, Default)]
pub struct Normalizer {
    notes: NoteTable,
    out: Vec<Event>,
}

impl Normalizer {
    /// Notes not kept because the table was full.
    pub fn notes_dropped(&self) -> u64 {
        self.notes.dropped
    }

    /// The events of one packet: a connection attempt (`tcp.syn`, a SYN
    /// without ACK to the server) or a refusal (`tcp.refused`, a RST to the
    /// client before the handshake completed). `established_before` says
    /// whether the handshake had completed before this packet.
    pub fn packet(
        &mut self,
        flow: &FlowInfo,
        dir: Direction,
        pkt: &PacketNote,
        established_before: bool,
    ) -> &[Event] {
        self.out.clear();
        if let Some(flags) = pkt.tcp_flags {
            let dst_port = i64::from(flow.server.1);
            if flags.syn() && !flags.ack() && dir == Direction::ToServer {
                let ev = Event::of_flow(flow, pkt.ts, "tcp.syn", "tcp");
                self.out.push(ev.with("dst_port", dst_port));
            } else if flags.rst() && dir == Direction::ToClient && !established_before {
                let ev = Event::of_flow(flow, pkt.ts, "tcp.refused", "tcp");
                self.out.push(ev.with("dst_port", dst_port));
            }
        }
        &self.out
    }

    /// A flow was recognised as `proto`: `<proto>.flow`.
    pub fn detect(&mut self, flow: &FlowInfo, proto: AppProto) -> &[Event] {
        self.out.clear();
        let ev = Event::of_flow(flow, flow.last_ts, proto.flow_kind(), proto.name());
        self.out.push(ev.with("dst_port", i64::from(flow.server.1)));
        &self.out
    }

    /// A parser event.
    pub fn event(
        &mut self,
        flow: &FlowInfo,
        ts: crate::capture::Timestamp,
        dir: Direction,
        event: AppEvent<'_>,
    ) -> &[Event] {
        self.out.clear();
        let mut cx = NormContext::new(flow, ts, dir, &mut self.notes);
        event.normalize(&mut cx, &mut self.out);
        &self.out
    }

    /// A flow ended; `proto` is what it was recognised as, if anything.
    pub fn close(&mut self, flow: &FlowInfo, proto: Option<AppProto>) -> &[Event] {
        self.out.clear();
        if let Some(proto) = proto {
            let mut cx = NormContext::new(flow, flow.last_ts, Direction::ToServer, &mut self.notes);
            proto.normalize_close(&mut cx, &mut self.out);
        }
        self.notes.forget(flow.id);
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::decode::TcpFlags;

    /// The flow stage hands over only the packets `is_connection_signal` accepts:
    /// no other packet may make an event.
    #[test]
    fn packets_not_wanted_make_no_event() {
        let mut n = Normalizer::default();
        let flow = FlowInfo::for_test(1, 6, 23);
        let mut wanted = 0;
        for bits in 0..=u8::MAX {
            for tcp_flags in [Some(TcpFlags(bits)), None] {
                let note = PacketNote {
                    ts: Timestamp::default(),
                    tcp_flags,
                };
                for dir in [Direction::ToServer, Direction::ToClient] {
                    for established in [false, true] {
                        let out = n.packet(&flow, dir, &note, established);
                        if !note.is_connection_signal() {
                            assert!(out.is_empty(), "{note:?} {dir:?}: {out:?}");
                        } else {
                            wanted += out.len();
                        }
                    }
                }
            }
        }
        // RFC 9293 §3.1: SYN is 0x02, ACK 0x10, RST 0x04. A SYN without ACK to
        // the server is an attempt: 64 flag bytes, established or not. A RST to
        // the client before the handshake is a refusal: 128 flag bytes.
        assert_eq!(wanted, 64 * 2 + 128);
    }
}
