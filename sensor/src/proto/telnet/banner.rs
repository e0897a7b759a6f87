//! The server's banner: what a Telnet server prints before it first asks for
//! something (a login, a password or a command), such as `Ubuntu 8.04` or
//! `BusyBox v1.35.0 (2023-01-01) built-in shell`. No RFC defines it; it is the
//! `/etc/issue` of login(1) and the greeting of embedded CLIs, and often names
//! the device or its firmware.
//!
//! The banner is made of the first [`MAX_BANNER_LINES`] complete lines of
//! server output that hold a letter or a digit (decoration such as `*****`
//! is skipped), after [`super::nvt::ServerText`] has removed escape
//! sequences and control characters. It is reported once, when the first
//! prompt is recognised, and only if the client had typed nothing and no
//! server bytes were lost before: what a client types, and what the server
//! echoes of it, is never part of it. A server line longer than the line
//! bound arrives as its last bytes (the server text keeps the end of a line).

use super::events::TelnetEvent;
use crate::proto::text::push_capped;

/// Lines of server output kept in a banner.
pub const MAX_BANNER_LINES: usize = 2;
/// Between two banner lines.
pub const LINE_SEPARATOR: &str = " / ";

#[derive(Debug)]
enum State {
    /// Collecting lines until a prompt.
    Open { text: String, lines: usize },
    /// Reported, or given up (the client typed, a gap, a prompt without lines).
    Closed,
}

/// The banner of one connection.
#[derive(Debug)]
pub struct Banner {
    state: State,
    /// Bytes kept of the whole banner.
    max_bytes: usize,
}

impl Banner {
    /// A banner of at most `max_bytes` bytes.
    pub fn new(max_bytes: usize) -> Self {
        Banner {
            state: State::Open {
                text: String::new(),
                lines: 0,
            },
            max_bytes,
        }
    }

    /// A complete, non-empty line of server output (escape sequences and
    /// control characters already removed).
    pub fn on_server_line(&mut self, line: &[u8]) {
        let State::Open { text, lines } = &mut self.state else {
            return;
        };
        if *lines >= MAX_BANNER_LINES || !line.iter().any(u8::is_ascii_alphanumeric) {
            return;
        }
        let line = trim(line);
        if *lines > 0 {
            push_capped(text, LINE_SEPARATOR.as_bytes(), self.max_bytes);
        }
        // A tab is the one control character the server text keeps.
        for (i, piece) in line.split(|&b| b == b'\t').enumerate() {
            if i > 0 {
                push_capped(text, b" ", self.max_bytes);
            }
            push_capped(text, piece, self.max_bytes);
        }
        *lines += 1;
    }

    /// The server's output now ends with a prompt: the banner, if any, is
    /// complete.
    pub fn on_prompt(&mut self, out: &mut Vec<TelnetEvent>) {
        if let State::Open { text, lines } = std::mem::replace(&mut self.state, State::Closed)
            && lines > 0
        {
            out.push(TelnetEvent::Banner { text });
        }
    }

    /// The client typed something, or server bytes were lost: no banner.
    pub fn close(&mut self) {
        self.state = State::Closed;
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    line.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(lines: &[&[u8]], max: usize) -> Vec<TelnetEvent> {
        let mut b = Banner::new(max);
        for l in lines {
            b.on_server_line(l);
        }
        let mut out = Vec::new();
        b.on_prompt(&mut out);
        b.on_prompt(&mut out);
        out
    }

    fn text(s: &str) -> Vec<TelnetEvent> {
        vec![TelnetEvent::Banner { text: s.into() }]
    }

    #[test]
    fn first_lines_with_text_joined() {
        assert_eq!(
            banner(
                &[b"  Ubuntu 8.04\t(tty1) ", b"****", b"Welcome", b"third"],
                256
            ),
            text("Ubuntu 8.04 (tty1) / Welcome")
        );
    }

    #[test]
    fn capped_and_once() {
        assert_eq!(banner(&[b"abcdef", b"ghi"], 8), text("abcdef /"));
        assert_eq!(banner(&[], 256), vec![]);
        assert_eq!(banner(&[b"----"], 256), vec![]);
    }

    #[test]
    fn closed_banner_reports_nothing() {
        let mut b = Banner::new(256);
        b.on_server_line(b"Router");
        b.close();
        b.on_server_line(b"later");
        let mut out = Vec::new();
        b.on_prompt(&mut out);
        assert!(out.is_empty());
    }
}
