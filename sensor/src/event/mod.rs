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

use crate::capture::Timestamp;
use crate::flow::{Direction, FlowInfo, PacketNote};
use crate::proto::norm::{Event, FieldPool, Fields, NormContext, NoteTable, Value, relabel};
use crate::proto::{AppEvent, AppProto};

/// Normalises, into buffers reused from one input to the next: the events
/// of one input, and their field vectors. An event's strings borrow from the
/// parser event, so each method hands its events to a closure instead of
/// returning them. Once the buffers have grown, an event allocates only for
/// a value it must own: a list (MQTT filters, CoAP resources), an address
/// as text (DHCP), or a note recalled at a flow's end (the MQTT client id).
#[derive(Debug, Default)]
pub struct Normalizer {
    notes: NoteTable,
    pool: FieldPool,
    /// The events buffer, empty between calls.
    spare: Vec<Event<'static>>,
    /// The field vector of flow events, empty between calls.
    flow_fields: Fields<'static>,
}

impl Normalizer {
    /// Notes not kept because the table was full.
    pub fn notes_dropped(&self) -> u64 {
        self.notes.dropped
    }

    /// Builds events with `make` into the reused buffer, hands them to
    /// `consume`, and keeps the buffers.
    fn emit<'e>(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        dir: Direction,
        make: impl FnOnce(&mut NormContext<'_>, &mut Vec<Event<'e>>),
        consume: impl FnOnce(&[Event<'_>]),
    ) {
        let mut out: Vec<Event<'e>> = relabel(std::mem::take(&mut self.spare));
        make(
            &mut NormContext::new(flow, ts, dir, &mut self.notes, &mut self.pool),
            &mut out,
        );
        if !out.is_empty() {
            consume(&out);
        }
        for ev in out.drain(..) {
            self.pool.give(ev.fields);
        }
        self.spare = relabel(out);
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
        consume: impl FnOnce(&[Event<'_>]),
    ) {
        let Some(flags) = pkt.tcp_flags else {
            return;
        };
        let kind = if flags.syn() && !flags.ack() && dir == Direction::ToServer {
            "tcp.syn"
        } else if flags.rst() && dir == Direction::ToClient && !established_before {
            "tcp.refused"
        } else {
            return;
        };
        self.flow_event(flow, pkt.ts, kind, "tcp", consume);
    }

    /// A flow was recognised as `proto`: `<proto>.flow`.
    pub fn detect(&mut self, flow: &FlowInfo, proto: AppProto, consume: impl FnOnce(&[Event<'_>])) {
        self.flow_event(flow, flow.last_ts, proto.flow_kind(), proto.name(), consume);
    }

    /// One event about the flow itself, with its server port. It holds no
    /// borrowed string, so its field vector is kept as it is from one to the
    /// next.
    fn flow_event(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        kind: &'static str,
        proto: &'static str,
        consume: impl FnOnce(&[Event<'_>]),
    ) {
        let mut fields = std::mem::take(&mut self.flow_fields);
        fields.push(("dst_port", Value::Int(i64::from(flow.server.1))));
        let ev = Event::new(flow, ts, kind, proto, fields);
        consume(std::slice::from_ref(&ev));
        self.flow_fields = ev.fields;
        self.flow_fields.clear();
    }

    /// A parser event.
    pub fn event<'e>(
        &mut self,
        flow: &FlowInfo,
        ts: Timestamp,
        dir: Direction,
        event: AppEvent<'e>,
        consume: impl FnOnce(&[Event<'_>]),
    ) {
        self.emit(
            flow,
            ts,
            dir,
            |cx, out: &mut Vec<Event<'e>>| event.normalize(cx, out),
            consume,
        );
    }

    /// A flow ended; `proto` is what it was recognised as, if anything.
    pub fn close(
        &mut self,
        flow: &FlowInfo,
        proto: Option<AppProto>,
        consume: impl FnOnce(&[Event<'_>]),
    ) {
        if let Some(proto) = proto {
            self.emit(
                flow,
                flow.last_ts,
                Direction::ToServer,
                |cx, out| proto.normalize_close(cx, out),
                consume,
            );
        }
        self.notes.forget(flow.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                        let mut made = 0;
                        n.packet(&flow, dir, &note, established, |out| made = out.len());
                        if !note.is_connection_signal() {
                            assert_eq!(made, 0, "{note:?} {dir:?}");
                        } else {
                            wanted += made;
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
