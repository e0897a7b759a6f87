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
    /// C0 control bytes already removed, see [`super::nvt::ServerText`]).
    pub fn on_server_line(&mut self, line: &[u8]) {
        let State::Open { text, lines } = &mut self.state else {
            return;
        };
        if *lines >= MAX_BANNER_LINES {
            return;
        }
        // Tabs become spaces; other control characters (C1 ones too, which
        // survive as UTF-8) are dropped.
        let clean: String = String::from_utf8_lossy(line)
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        let clean = clean.trim();
        if !clean.chars().any(char::is_alphanumeric) {
            return;
        }
        if *lines > 0 {
            // No separator without room for some of the line after it.
            if text.len() + LINE_SEPARATOR.len() >= self.max_bytes {
                return;
            }
            text.push_str(LINE_SEPARATOR);
        }
        push_capped(text, clean.as_bytes(), self.max_bytes);
        *lines += 1;
    }

    /// The server's output now ends with a prompt: the banner, if any, is
    /// complete.
    pub fn on_prompt(&mut self, out: &mut Vec<TelnetEvent>) {
        if let State::Open { text, .. } = std::mem::replace(&mut self.state, State::Closed)
            && !text.is_empty()
        {
            out.push(TelnetEvent::Banner { text });
        }
    }

    /// The client typed something, or server bytes were lost: no banner.
    pub fn close(&mut self) {
        self.state = State::Closed;
    }
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
    fn control_characters_are_removed() {
        // U+0085 (NEL, a C1 control) arrives as valid UTF-8 and is dropped;
        // an invalid byte becomes U+FFFD.
        assert_eq!(
            banner(&["Cam\u{85}Pro".as_bytes(), b"v\xff1"], 256),
            text("CamPro / v\u{fffd}1")
        );
    }

    #[test]
    fn capped_and_once() {
        assert_eq!(banner(&[b"abcdef", b"ghi"], 8), text("abcdef"));
        assert_eq!(banner(&[b"abcdef", b"ghi"], 10), text("abcdef / g"));
        assert_eq!(banner(&[], 256), vec![]);
        assert_eq!(banner(&[b"----"], 256), vec![]);
        assert_eq!(banner(&[b"abc"], 0), vec![]);
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
