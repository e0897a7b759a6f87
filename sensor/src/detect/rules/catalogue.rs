//! The event catalogue rules are validated against: every event kind the
//! normaliser emits and the typed fields it carries (the table in
//! `rules/README.md`, "Event catalogue"), plus the header pseudo-fields every
//! event has (`src_ip`, `dst_port`, ...).
//!
//! A rule naming a kind or field missing here is rejected at load time, so a
//! typo is an error instead of a rule that silently never fires. A new kind or
//! field is added here and in the README table together.

/// The type of a field's value ([`crate::proto::norm::Value`] variants, plus
/// the header's address types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Str,
    Int,
    Bool,
    /// A list of strings; conditions hold when any element satisfies them.
    List,
    /// An IP address (header fields only).
    Ip,
    /// A MAC address `aa:bb:cc:dd:ee:ff` (header fields only).
    Mac,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Str => "string",
            FieldType::Int => "integer",
            FieldType::Bool => "boolean",
            FieldType::List => "list of strings",
            FieldType::Ip => "IP address",
            FieldType::Mac => "MAC address",
        }
    }
}

/// One event kind and its fields.
#[derive(Debug)]
pub struct EventKind {
    /// `"<proto>.<what>"`, e.g. `"mqtt.connect"`.
    pub kind: &'static str,
    /// Application protocol (EVE `app_proto`) or transport of the event.
    pub proto: &'static str,
    pub fields: &'static [(&'static str, FieldType)],
}

/// Header pseudo-fields, available on every event: they read
/// [`crate::proto::norm::Event`]'s `src`, `dst`, `src_mac`, `dst_mac`,
/// `proto` and `transport`. A field of the same name in the event's `fields`
/// takes precedence (e.g. `tcp.syn`'s `dst_port`, which is the same value).
pub const HEADER_FIELDS: &[(&str, FieldType)] = &[
    ("src_ip", FieldType::Ip),
    ("src_port", FieldType::Int),
    ("dst_ip", FieldType::Ip),
    ("dst_port", FieldType::Int),
    ("src_mac", FieldType::Mac),
    ("dst_mac", FieldType::Mac),
    ("proto", FieldType::Str),
    ("transport", FieldType::Int),
];

use FieldType::{Bool, Int, List, Str};

/// Every event kind (see `rules/README.md` for what each means). `from`
/// ("client" | "server", who sent the message) is on every application event.
pub const CATALOGUE: &[EventKind] = &[
    EventKind {
        kind: "tcp.syn",
        proto: "tcp",
        fields: &[("dst_port", Int)],
    },
    EventKind {
        kind: "tcp.refused",
        proto: "tcp",
        fields: &[("dst_port", Int)],
    },
    EventKind {
        kind: "http.flow",
        proto: "http",
        fields: &[("dst_port", Int), ("from", Str)],
    },
    EventKind {
        kind: "mqtt.flow",
        proto: "mqtt",
        fields: &[("dst_port", Int), ("from", Str)],
    },
    EventKind {
        kind: "coap.flow",
        proto: "coap",
        fields: &[("dst_port", Int), ("from", Str)],
    },
    EventKind {
        kind: "telnet.flow",
        proto: "telnet",
        fields: &[("dst_port", Int), ("from", Str)],
    },
    EventKind {
        kind: "dhcp.flow",
        proto: "dhcp",
        fields: &[("dst_port", Int), ("from", Str)],
    },
    EventKind {
        kind: "http.request",
        proto: "http",
        fields: &[
            ("from", Str),
            ("method", Str),
            ("uri", Str),
            ("host", Str),
            ("user_agent", Str),
            ("auth_scheme", Str),
            ("user", Str),
            ("has_password", Bool),
            ("content_type", Str),
        ],
    },
    EventKind {
        kind: "http.response",
        proto: "http",
        fields: &[
            ("from", Str),
            ("status", Int),
            ("request_method", Str),
            ("content_type", Str),
            ("server", Str),
        ],
    },
    EventKind {
        kind: "http.body",
        proto: "http",
        fields: &[
            ("from", Str),
            ("length", Int),
            ("magic", Str),
            ("complete", Bool),
            ("uri", Str),
        ],
    },
    EventKind {
        kind: "mqtt.connect",
        proto: "mqtt",
        fields: &[
            ("from", Str),
            ("version", Int),
            ("client_id", Str),
            ("user", Str),
            ("has_password", Bool),
            ("keep_alive", Int),
            ("will_topic", Str),
        ],
    },
    EventKind {
        kind: "mqtt.connack",
        proto: "mqtt",
        fields: &[("from", Str), ("code", Int), ("accepted", Bool)],
    },
    EventKind {
        kind: "mqtt.publish",
        proto: "mqtt",
        fields: &[
            ("from", Str),
            ("topic", Str),
            ("qos", Int),
            ("retain", Bool),
            ("payload_len", Int),
        ],
    },
    EventKind {
        kind: "mqtt.subscribe",
        proto: "mqtt",
        fields: &[("from", Str), ("filters", List)],
    },
    EventKind {
        kind: "mqtt.close",
        proto: "mqtt",
        fields: &[("from", Str), ("client_id", Str)],
    },
    EventKind {
        kind: "coap.request",
        proto: "coap",
        fields: &[
            ("from", Str),
            ("method", Str),
            ("code", Str),
            ("type", Str),
            ("uri_path", Str),
            ("uri_query", Str),
            ("observe", Bool),
            ("unknown_critical", Bool),
        ],
    },
    EventKind {
        kind: "coap.response",
        proto: "coap",
        fields: &[("from", Str), ("code", Str), ("class", Int)],
    },
    EventKind {
        kind: "coap.discovery",
        proto: "coap",
        fields: &[("from", Str), ("resources", List), ("truncated", Bool)],
    },
    EventKind {
        kind: "telnet.login",
        proto: "telnet",
        fields: &[
            ("from", Str),
            ("user", Str),
            ("has_password", Bool),
            ("outcome", Str),
        ],
    },
    EventKind {
        kind: "telnet.command",
        proto: "telnet",
        fields: &[("from", Str), ("line", Str)],
    },
    EventKind {
        kind: "telnet.banner",
        proto: "telnet",
        fields: &[("from", Str), ("banner", Str)],
    },
    EventKind {
        kind: "dhcp.request",
        proto: "dhcp",
        fields: &[
            ("from", Str),
            ("message_type", Str),
            ("relayed", Bool),
            ("hostname", Str),
            ("vendor_class", Str),
            ("requested_ip", Str),
            ("param_request_list", Str),
        ],
    },
    EventKind {
        kind: "dhcp.ack",
        proto: "dhcp",
        fields: &[
            ("from", Str),
            ("message_type", Str),
            ("relayed", Bool),
            ("yiaddr", Str),
            ("lease_secs", Int),
            ("server_id", Str),
        ],
    },
    EventKind {
        kind: "anomaly",
        proto: "tcp",
        fields: &[
            ("from", Str),
            ("protocol", Str),
            ("kind", Str),
            ("detail", Str),
        ],
    },
];

/// The catalogue entry of `kind`.
pub fn kind(kind: &str) -> Option<&'static EventKind> {
    CATALOGUE.iter().find(|k| k.kind == kind)
}

/// The names of every kind, comma separated (for error messages).
pub fn kind_names() -> String {
    CATALOGUE
        .iter()
        .map(|k| k.kind)
        .collect::<Vec<_>>()
        .join(", ")
}

impl EventKind {
    /// The static name and type of `name` on this kind: an event field first,
    /// then a header field.
    pub fn field(&self, name: &str) -> Option<(&'static str, FieldType)> {
        self.fields
            .iter()
            .chain(HEADER_FIELDS)
            .find(|(n, _)| *n == name)
            .copied()
    }

    /// The names of every field a rule may use on this kind, each once.
    pub fn field_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> =
            Vec::with_capacity(self.fields.len() + HEADER_FIELDS.len());
        for (n, _) in self.fields.iter().chain(HEADER_FIELDS) {
            if !names.contains(n) {
                names.push(n);
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_unique_and_named_proto_dot_what() {
        for (i, k) in CATALOGUE.iter().enumerate() {
            assert!(
                CATALOGUE[i + 1..].iter().all(|o| o.kind != k.kind),
                "{} twice",
                k.kind
            );
            assert!(k.kind == "anomaly" || k.kind.starts_with(&format!("{}.", k.proto)));
        }
    }

    #[test]
    fn event_fields_shadow_header_fields() {
        let syn = kind("tcp.syn").expect("tcp.syn is catalogued");
        assert_eq!(syn.field("dst_port"), Some(("dst_port", FieldType::Int)));
        assert_eq!(syn.field("src_ip"), Some(("src_ip", FieldType::Ip)));
        assert_eq!(syn.field("user"), None);
        assert!(kind("tcp.synack").is_none());
        let names = syn.field_names();
        assert_eq!(names.iter().filter(|n| **n == "dst_port").count(), 1);
        assert_eq!(names.len(), HEADER_FIELDS.len());
    }
}
