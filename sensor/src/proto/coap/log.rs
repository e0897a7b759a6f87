//! The CoAP log (`coap.jsonl`): messages, observe and block-wise milestones,
//! discovered resources, unanswered requests and anomalies (see
//! `proto/log.rs` for the common fields).

use serde::Serialize;

use super::{
    BlockKind, BlockValue, CoapEvent, CoapMessageEvent, Code, LinkResource, Method,
    ObserveEndReason, ResponseKind, ResponseMatch, Token,
};
use crate::capture::Timestamp;
use crate::flow::Direction;
use crate::proto::record::{Shown, is_false};

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CoapRecord<'a> {
    Message(Box<CoapMessage<'a>>),
    ObserveRegister {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
    },
    ObserveDeregister {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
    },
    ObserveNotify {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        observe: u32,
        code: Shown<Code>,
        code_num: u8,
        notifications: u32,
    },
    ObserveEnd {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        reason: &'static str,
        notifications: u32,
    },
    BlockTransfer {
        block: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        blocks: u32,
        bytes: u64,
        block_size: u16,
    },
    Discovery {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_uri_path: Option<&'a str>,
        resources: Vec<CoapResource<'a>>,
        truncated: bool,
        malformed_links: u32,
    },
    Unanswered {
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Shown<Token>>,
        message_id: u16,
        request_code: Shown<Code>,
        request_code_num: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        uri_path: Option<&'a str>,
        retransmissions: u16,
        acknowledged: bool,
    },
    Anomaly {
        kind: &'static str,
        detail: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        option: Option<u16>,
    },
}

/// One CoAP message (RFC 7252 §3), with tshark's numbering for type and code.
#[derive(Serialize)]
pub struct CoapMessage<'a> {
    /// "CON", "NON", "ACK", "RST".
    #[serde(rename = "type")]
    msg_type: &'static str,
    /// `coap.type`: 0 CON .. 3 RST.
    type_num: u8,
    /// "c.dd", e.g. "0.01", "2.05".
    code: Shown<Code>,
    /// `coap.code`: class * 32 + detail (1 GET, 69 = 2.05).
    code_num: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    message_id: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<Shown<Token>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_format: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accept: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observe: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block1: Option<CoapBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    block2: Option<CoapBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size1: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size2: Option<u32>,
    payload_len: usize,
    retransmission: bool,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    unknown_critical_options: &'a [u16],
    #[serde(skip_serializing_if = "is_false")]
    capped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    format_error: Option<Shown<super::ParseError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_to: Option<CoapResponseTo<'a>>,
}

/// A Block1/Block2 option value (RFC 7959 §2.2).
#[derive(Serialize)]
pub struct CoapBlock {
    num: u32,
    more: bool,
    szx: u8,
    /// Block size in bytes; absent for the reserved SZX 7.
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u16>,
}

impl From<BlockValue> for CoapBlock {
    fn from(b: BlockValue) -> Self {
        CoapBlock {
            num: b.num,
            more: b.more,
            szx: b.szx,
            size: b.size(),
        }
    }
}

/// The request a response answered (RFC 7252 §5.3.2).
#[derive(Serialize)]
pub struct CoapResponseTo<'a> {
    kind: &'static str,
    request_code: Shown<Code>,
    request_code_num: u8,
    request_message_id: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_uri_path: Option<&'a str>,
    /// Seconds from the request's first transmission.
    rtt: f64,
}

/// A discovered resource (RFC 6690 §2, §3).
#[derive(Serialize)]
pub struct CoapResource<'a> {
    target: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rt: Option<&'a str>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    interface: Option<&'a str>,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    ct: &'a [u16],
    #[serde(skip_serializing_if = "is_false")]
    obs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sz: Option<u64>,
}

impl<'a> From<&'a LinkResource> for CoapResource<'a> {
    fn from(l: &'a LinkResource) -> Self {
        CoapResource {
            target: &l.target,
            rt: l.rt.as_deref(),
            interface: l.interface.as_deref(),
            ct: &l.content_formats,
            obs: l.observable,
            title: l.title.as_deref(),
            sz: l.size,
        }
    }
}

/// The token as hex, `None` for an empty one (RFC 7252 §5.3.1).
fn token(t: Token) -> Option<Shown<Token>> {
    (!t.is_empty()).then_some(Shown(t))
}

fn coap_message(m: &CoapMessageEvent) -> CoapMessage<'_> {
    CoapMessage {
        msg_type: m.msg_type.name(),
        type_num: m.msg_type.as_u8(),
        code: Shown(m.code),
        code_num: m.code.number(),
        method: m.code.method().and_then(Method::name),
        message_id: m.message_id,
        token: token(m.token),
        uri_host: m.uri_host.as_deref(),
        uri_path: m.uri_path.as_deref(),
        uri_query: m.uri_query.as_deref(),
        content_format: m.content_format,
        accept: m.accept,
        observe: m.observe,
        block1: m.block1.map(CoapBlock::from),
        block2: m.block2.map(CoapBlock::from),
        size1: m.size1,
        size2: m.size2,
        payload_len: m.payload_len,
        retransmission: m.is_retransmission,
        unknown_critical_options: &m.unknown_critical_options,
        capped: m.capped,
        format_error: m.format_error.map(Shown),
        response_to: m.response_to.as_ref().map(coap_response_to),
    }
}

fn coap_response_to(r: &ResponseMatch) -> CoapResponseTo<'_> {
    CoapResponseTo {
        kind: match r.kind {
            ResponseKind::Piggybacked => "piggybacked",
            ResponseKind::Separate => "separate",
        },
        request_code: Shown(r.request_code),
        request_code_num: r.request_code.number(),
        request_message_id: r.request_message_id,
        request_uri_path: r.request_uri_path.as_deref(),
        rtt: r.rtt_nanos as f64 / Timestamp::NANOS_PER_SEC as f64,
    }
}

pub(super) fn record(ev: &CoapEvent) -> (Option<Direction>, CoapRecord<'_>) {
    match ev {
        CoapEvent::Message(m) => (Some(m.dir), CoapRecord::Message(Box::new(coap_message(m)))),
        CoapEvent::ObserveRegister {
            dir,
            token: t,
            uri_path,
        } => (
            Some(*dir),
            CoapRecord::ObserveRegister {
                token: token(*t),
                uri_path: uri_path.as_deref(),
            },
        ),
        CoapEvent::ObserveDeregister {
            dir,
            token: t,
            uri_path,
        } => (
            Some(*dir),
            CoapRecord::ObserveDeregister {
                token: token(*t),
                uri_path: uri_path.as_deref(),
            },
        ),
        CoapEvent::ObserveNotify {
            dir,
            token: t,
            uri_path,
            sequence,
            code,
            notifications,
        } => (
            Some(*dir),
            CoapRecord::ObserveNotify {
                token: token(*t),
                uri_path: uri_path.as_deref(),
                observe: *sequence,
                code: Shown(*code),
                code_num: code.number(),
                notifications: *notifications,
            },
        ),
        CoapEvent::ObserveEnd {
            token: t,
            uri_path,
            reason,
            notifications,
        } => (
            None,
            CoapRecord::ObserveEnd {
                token: token(*t),
                uri_path: uri_path.as_deref(),
                reason: match reason {
                    ObserveEndReason::NotAccepted => "not_accepted",
                    ObserveEndReason::FinalResponse => "final_response",
                    ObserveEndReason::Reset => "reset",
                    ObserveEndReason::Deregistered => "deregistered",
                    ObserveEndReason::Evicted => "evicted",
                },
                notifications: *notifications,
            },
        ),
        CoapEvent::BlockTransferComplete {
            dir,
            kind,
            uri_path,
            blocks,
            bytes,
            block_size,
        } => (
            Some(*dir),
            CoapRecord::BlockTransfer {
                block: match kind {
                    BlockKind::Block1 => "block1",
                    BlockKind::Block2 => "block2",
                },
                uri_path: uri_path.as_deref(),
                blocks: *blocks,
                bytes: *bytes,
                block_size: *block_size,
            },
        ),
        CoapEvent::Discovery(d) => (
            Some(d.dir),
            CoapRecord::Discovery {
                token: token(d.token),
                request_uri_path: d.request_uri_path.as_deref(),
                resources: d.links.iter().map(CoapResource::from).collect(),
                truncated: d.truncated,
                malformed_links: d.malformed_links,
            },
        ),
        CoapEvent::Unanswered {
            dir,
            token: t,
            message_id,
            request_code,
            uri_path,
            retransmissions,
            acknowledged,
        } => (
            Some(*dir),
            CoapRecord::Unanswered {
                token: token(*t),
                message_id: *message_id,
                request_code: Shown(*request_code),
                request_code_num: request_code.number(),
                uri_path: uri_path.as_deref(),
                retransmissions: *retransmissions,
                acknowledged: *acknowledged,
            },
        ),
        CoapEvent::Anomaly(a) => (
            Some(a.dir),
            CoapRecord::Anomaly {
                kind: a.kind.as_str(),
                detail: &a.detail,
                message_id: a.message_id,
                option: a.option,
            },
        ),
    }
}
