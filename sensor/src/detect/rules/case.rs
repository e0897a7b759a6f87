//! Rule test cases (`[[rule.test]]`): a list of events, written in TOML, and
//! the number of matches the rule must produce on them. This file builds the
//! events; `check` runs them.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::catalogue::{self, FieldType};
use super::field::{FieldError, typed};
use super::limits::{MAX_TEST_EVENTS, MAX_WINDOW_SECS};
use super::model::TestCase;
use crate::capture::Timestamp;
use crate::device::inventory::parse_mac;
use crate::proto::norm::{Event, Value};

/// Latest `ts` of a test event, in seconds since the epoch (year 2096).
const MAX_TEST_TS_SECS: f64 = 4.0e9;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseRaw {
    #[serde(default)]
    name: Option<String>,
    events: Vec<toml::Value>,
    expect: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRaw {
    kind: String,
    src: String,
    dst: String,
    #[serde(default)]
    ts: Option<f64>,
    #[serde(default)]
    fields: toml::Table,
    /// `"user:password"`, hashed at once; only test files hold one.
    #[serde(default)]
    credential: Option<String>,
    #[serde(default)]
    src_mac: Option<String>,
    #[serde(default)]
    dst_mac: Option<String>,
    #[serde(default = "one")]
    repeat: u32,
    #[serde(default)]
    step_secs: f64,
    #[serde(default)]
    increment: Vec<String>,
}

fn one() -> u32 {
    1
}

/// Header fields `increment` may name (besides integer event fields).
const INCREMENTABLE: &[&str] = &["src_port", "dst_port", "src_ip", "dst_ip"];

fn endpoint(s: &str, at: &str) -> Result<(IpAddr, u16), FieldError> {
    s.parse::<SocketAddr>()
        .map(|a| (a.ip(), a.port()))
        .map_err(|_| {
            FieldError::new(
                at,
                format!("`{s}` is not ADDRESS:PORT (e.g. 10.0.0.1:1234 or [fe80::1]:23)"),
            )
        })
}

fn secs_to_ts(secs: f64, at: &str) -> Result<Timestamp, FieldError> {
    if !secs.is_finite() || !(0.0..=MAX_TEST_TS_SECS).contains(&secs) {
        return Err(FieldError::new(
            at,
            format!("must be 0 to {MAX_TEST_TS_SECS} seconds"),
        ));
    }
    // In range, so the product fits an i64 of nanoseconds.
    Ok(Timestamp((secs * 1e9).round() as i64))
}

fn field_value(v: &toml::Value, ty: FieldType, at: &str) -> Result<Value<'static>, FieldError> {
    let wrong = || {
        FieldError::new(
            at,
            format!("expected a {} value, found {}", ty.name(), v.type_str()),
        )
    };
    Ok(match ty {
        FieldType::Str => Value::from(v.as_str().ok_or_else(wrong)?.to_string()),
        FieldType::Int => Value::Int(v.as_integer().ok_or_else(wrong)?),
        FieldType::Bool => Value::Bool(v.as_bool().ok_or_else(wrong)?),
        FieldType::List => Value::List(
            v.as_array()
                .ok_or_else(wrong)?
                .iter()
                .map(|x| x.as_str().map(|s| s.to_string().into()).ok_or_else(wrong))
                .collect::<Result<_, _>>()?,
        ),
        // Header types never appear among event fields.
        FieldType::Ip | FieldType::Mac => return Err(wrong()),
    })
}

fn add_ip(ip: IpAddr, n: u32) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).checked_add(n).map(|x| IpAddr::V4(x.into())),
        IpAddr::V6(v6) => u128::from(v6)
            .checked_add(u128::from(n))
            .map(|x| IpAddr::V6(x.into())),
    }
}

fn add_port(port: u16, n: u32) -> Option<u16> {
    u16::try_from(u32::from(port).checked_add(n)?).ok()
}

/// The `i`-th copy of a repeated event: `step_secs` later per copy, and each
/// `increment` field `i` higher.
fn nth(
    base: &Event<'static>,
    i: u32,
    step_nanos: i64,
    increment: &[String],
) -> Option<Event<'static>> {
    let mut ev = base.clone();
    ev.ts = Timestamp(
        base.ts
            .as_nanos()
            .checked_add(step_nanos.checked_mul(i64::from(i))?)?,
    );
    for name in increment {
        match name.as_str() {
            "src_port" => ev.src.1 = add_port(ev.src.1, i)?,
            "dst_port" => ev.dst.1 = add_port(ev.dst.1, i)?,
            "src_ip" => ev.src.0 = add_ip(ev.src.0, i)?,
            "dst_ip" => ev.dst.0 = add_ip(ev.dst.0, i)?,
            _ => {}
        }
        for (n, v) in &mut ev.fields {
            if *n == name.as_str()
                && let Value::Int(x) = v
            {
                *x = x.checked_add(i64::from(i))?;
            }
        }
    }
    Some(ev)
}

/// Builds the events of one test case (`value` is the `[[rule.test]]`
/// table; `path` is e.g. `test[0]`).
pub(crate) fn parse_case(value: toml::Value, path: &str) -> Result<TestCase, FieldError> {
    let raw: CaseRaw = typed(value, path)?;
    if raw.events.is_empty() {
        return Err(FieldError::new(
            format!("{path}.events"),
            "a test case needs at least one event",
        ));
    }
    let mut events: Vec<Event> = Vec::new();
    for (j, value) in raw.events.into_iter().enumerate() {
        let at = format!("{path}.events[{j}]");
        let e: EventRaw = typed(value, &at)?;
        let kind = catalogue::kind(&e.kind).ok_or_else(|| {
            FieldError::new(
                format!("{at}.kind"),
                format!(
                    "unknown event kind `{}`; valid kinds: {}",
                    e.kind,
                    catalogue::kind_names()
                ),
            )
        })?;
        let mut fields = Vec::with_capacity(e.fields.len());
        for (name, v) in &e.fields {
            let here = format!("{at}.fields.{name}");
            let Some(&(static_name, ty)) = kind.fields.iter().find(|(n, _)| n == name) else {
                let valid: Vec<&str> = kind.fields.iter().map(|(n, _)| *n).collect();
                return Err(FieldError::new(
                    here,
                    format!(
                        "`{}` has no field `{name}`; valid fields: {} (addresses and ports go in src and dst)",
                        kind.kind,
                        valid.join(", ")
                    ),
                ));
            };
            fields.push((static_name, field_value(v, ty, &here)?));
        }
        let proto = match (kind.kind, e.fields.get("protocol").and_then(|p| p.as_str())) {
            ("anomaly", Some(p)) => ["http", "mqtt", "coap", "telnet", "dhcp"]
                .into_iter()
                .find(|known| *known == p)
                .unwrap_or(kind.proto),
            _ => kind.proto,
        };
        let mac = |s: &Option<String>, name: &str| -> Result<Option<[u8; 6]>, FieldError> {
            s.as_deref()
                .map(|m| {
                    parse_mac(m).ok_or_else(|| {
                        FieldError::new(
                            format!("{at}.{name}"),
                            format!("`{m}` is not a MAC address"),
                        )
                    })
                })
                .transpose()
        };
        let ts = match e.ts {
            Some(secs) => secs_to_ts(secs, &format!("{at}.ts"))?,
            None => events.last().map_or(Timestamp(0), |last| last.ts),
        };
        let credential = match &e.credential {
            None => None,
            Some(c) => {
                let (user, password) = c.split_once(':').ok_or_else(|| {
                    FieldError::new(format!("{at}.credential"), "expected \"user:password\"")
                })?;
                Some(crate::proto::credential::digest(user, password))
            }
        };
        let base = Event {
            ts,
            kind: kind.kind,
            proto,
            src: endpoint(&e.src, &format!("{at}.src"))?,
            dst: endpoint(&e.dst, &format!("{at}.dst"))?,
            src_mac: mac(&e.src_mac, "src_mac")?,
            dst_mac: mac(&e.dst_mac, "dst_mac")?,
            transport: if proto == "coap" { 17 } else { 6 },
            flow_id: 0,
            fields,
            credential,
        };
        if e.repeat == 0 {
            return Err(FieldError::new(
                format!("{at}.repeat"),
                "must be at least 1",
            ));
        }
        if !e.step_secs.is_finite() || !(0.0..=MAX_WINDOW_SECS as f64).contains(&e.step_secs) {
            return Err(FieldError::new(
                format!("{at}.step_secs"),
                format!("must be 0 to {MAX_WINDOW_SECS} seconds"),
            ));
        }
        for name in &e.increment {
            let int_field = base
                .fields
                .iter()
                .any(|(n, v)| n == name && matches!(v, Value::Int(_)));
            if !INCREMENTABLE.contains(&name.as_str()) && !int_field {
                return Err(FieldError::new(
                    format!("{at}.increment"),
                    format!(
                        "`{name}` cannot be incremented; use {} or an integer field of this event",
                        INCREMENTABLE.join(", ")
                    ),
                ));
            }
        }
        if events.len().saturating_add(e.repeat as usize) > MAX_TEST_EVENTS {
            return Err(FieldError::new(
                format!("{at}.repeat"),
                format!("more than {MAX_TEST_EVENTS} events in one case (MAX_TEST_EVENTS)"),
            ));
        }
        let step = (e.step_secs * 1e9).round() as i64;
        for i in 0..e.repeat {
            let ev = nth(&base, i, step, &e.increment).ok_or_else(|| {
                FieldError::new(
                    format!("{at}.repeat"),
                    "incrementing overflows a port, address, field or the time",
                )
            })?;
            events.push(ev);
        }
    }
    Ok(TestCase {
        name: raw.name,
        events,
        expect: raw.expect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::credential::digest;

    fn case(text: &str) -> Result<TestCase, FieldError> {
        let table: toml::Table = toml::from_str(text).expect("test TOML parses");
        parse_case(toml::Value::Table(table), "test[0]")
    }

    fn case_err(text: &str) -> (String, String) {
        match case(text) {
            Ok(_) => panic!("expected an error for {text}"),
            Err(e) => (e.field, e.message),
        }
    }

    #[test]
    fn events_are_built_with_typed_fields_and_defaults() {
        let c = case(
            r##"
name = "two"
expect = 1
events = [
  { kind = "mqtt.subscribe", src = "10.0.0.1:4000", dst = "[fe80::2]:1883", ts = 1.5, fields = { filters = ["#"] } },
  { kind = "anomaly", src = "10.0.0.1:4000", dst = "10.0.0.2:5683", fields = { protocol = "coap", kind = "bad_option" }, src_mac = "02:00:00:00:00:01" },
]"##,
        )
        .expect("valid case");
        assert_eq!(c.name.as_deref(), Some("two"));
        assert_eq!(c.expect, 1);
        let [sub, anomaly] = c.events.as_slice() else {
            panic!("two events");
        };
        assert_eq!(sub.kind, "mqtt.subscribe");
        assert_eq!(sub.proto, "mqtt");
        assert_eq!(sub.ts, Timestamp(1_500_000_000));
        assert_eq!(sub.dst, ("fe80::2".parse().expect("ip"), 1883));
        assert_eq!(sub.field("filters"), Some(&Value::List(vec!["#".into()])));
        // No ts: the previous event's time. The anomaly's protocol sets proto.
        assert_eq!(anomaly.ts, Timestamp(1_500_000_000));
        assert_eq!((anomaly.proto, anomaly.transport), ("coap", 17));
        assert_eq!(anomaly.src_mac, Some([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn repeat_steps_time_and_increments_fields() {
        let c = case(
            r#"
expect = 1
events = [ { kind = "tcp.syn", src = "10.0.0.1:40000", dst = "10.0.0.2:20", ts = 10, fields = { dst_port = 20 },
             repeat = 3, step_secs = 0.5, increment = ["dst_port", "src_ip"] } ]"#,
        )
        .expect("valid case");
        let got: Vec<(i64, String, u16, Option<&Value>)> = c
            .events
            .iter()
            .map(|e| {
                (
                    e.ts.as_nanos(),
                    e.src.0.to_string(),
                    e.dst.1,
                    e.field("dst_port"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    10_000_000_000,
                    "10.0.0.1".to_string(),
                    20,
                    Some(&Value::Int(20))
                ),
                (
                    10_500_000_000,
                    "10.0.0.2".to_string(),
                    21,
                    Some(&Value::Int(21))
                ),
                (
                    11_000_000_000,
                    "10.0.0.3".to_string(),
                    22,
                    Some(&Value::Int(22))
                ),
            ]
        );
    }

    #[test]
    fn credential_is_hashed_with_the_credentials_digest() {
        let c = case(
            r#"
expect = 1
events = [ { kind = "telnet.login", src = "10.0.0.1:1", dst = "10.0.0.2:23", credential = "admin:pa:ss" } ]"#,
        )
        .expect("valid case");
        // Split at the first colon: the password may hold colons (RFC 7617 §2).
        assert_eq!(c.events[0].credential, Some(digest("admin", "pa:ss")));
        let (field, _) = case_err(
            r#"expect = 1
events = [ { kind = "telnet.login", src = "10.0.0.1:1", dst = "10.0.0.2:23", credential = "nopassword" } ]"#,
        );
        assert_eq!(field, "test[0].events[0].credential");
    }

    #[test]
    fn bad_test_events_name_their_field() {
        let base = r#"kind = "telnet.login", src = "10.0.0.1:1", dst = "10.0.0.2:23""#;
        for (extra, want) in [
            (
                r#"fields = { usr = "root" }"#,
                "test[0].events[0].fields.usr",
            ),
            (
                r#"fields = { outcome = 1 }"#,
                "test[0].events[0].fields.outcome",
            ),
            ("ts = -1", "test[0].events[0].ts"),
            ("repeat = 0", "test[0].events[0].repeat"),
            (r#"increment = ["user"]"#, "test[0].events[0].increment"),
            (r#"src_mac = "xx""#, "test[0].events[0].src_mac"),
            ("bogus = 1", "test[0].events[0].bogus"),
        ] {
            let (field, message) =
                case_err(&format!("expect = 1\nevents = [ {{ {base}, {extra} }} ]"));
            assert_eq!(field, want, "{extra}: {message}");
        }
        let (field, message) = case_err(
            r#"expect = 1
events = [ { kind = "telnet.logon", src = "10.0.0.1:1", dst = "10.0.0.2:23" } ]"#,
        );
        assert_eq!(field, "test[0].events[0].kind");
        assert!(message.contains("telnet.login"), "{message}");
        let (field, _) = case_err(
            r#"expect = 1
events = [ { kind = "telnet.login", src = "10.0.0.1", dst = "10.0.0.2:23" } ]"#,
        );
        assert_eq!(field, "test[0].events[0].src");
        let (field, _) = case_err("expect = 1\nevents = []");
        assert_eq!(field, "test[0].events");
        let (field, _) = case_err(&format!(
            "expect = 1\nevents = [ {{ {base}, repeat = {} }} ]",
            MAX_TEST_EVENTS + 1
        ));
        assert_eq!(field, "test[0].events[0].repeat");
        let (field, _) = case_err(
            r#"expect = 1
events = [ { kind = "tcp.syn", src = "10.0.0.1:1", dst = "10.0.0.2:65535", repeat = 2, increment = ["dst_port"] } ]"#,
        );
        assert_eq!(field, "test[0].events[0].repeat");
    }
}
