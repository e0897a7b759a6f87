//! Telnet events as normalised events: `telnet.login`, `telnet.command`,
//! `telnet.banner` and `anomaly` (catalogue in `rules/README.md`).

use super::TelnetEvent;
use crate::proto::norm::{Event, NormContext};

pub(super) fn normalize<'e>(
    e: &'e TelnetEvent,
    cx: &mut NormContext<'_>,
    out: &mut Vec<Event<'e>>,
) {
    match e {
        TelnetEvent::LoginAttempt(l) => {
            let mut ev = cx
                .event("telnet.login", "telnet")
                .with("from", "client")
                .with("has_password", l.has_password)
                .with("outcome", l.outcome.as_str());
            if let Some(u) = &l.user {
                ev = ev.with("user", u.as_str());
            }
            ev.credential = l.credential;
            out.push(ev);
        }
        TelnetEvent::ShellCommand { line, .. } => out.push(
            cx.event("telnet.command", "telnet")
                .with("from", "client")
                .with("line", line.as_str()),
        ),
        TelnetEvent::Banner { text } => out.push(
            cx.event("telnet.banner", "telnet")
                .with("from", "server")
                .with("banner", text.as_str()),
        ),
        TelnetEvent::Anomaly(a) => out.push(cx.anomaly("telnet", a.kind.as_str(), "")),
        _ => {}
    }
}
