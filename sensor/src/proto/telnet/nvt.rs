//! Network Virtual Terminal text (RFC 854 "THE NETWORK VIRTUAL TERMINAL",
//! "THE NVT PRINTER AND KEYBOARD"): assembling the lines a client types, and
//! keeping the server's current output line for prompt recognition.
//!
//! Line ends: RFC 854 sends end of line as CR LF and a bare carriage return as
//! CR NUL. Real clients also send a bare LF (linemode clients) or a CR whose LF
//! arrives in a later segment, so CR ends a line at once and a following LF or
//! NUL is swallowed. Editing: BS/DEL and `IAC EC` erase a character,
//! ^U and `IAC EL` erase the line, ^C abandons it.

use std::fmt;

use crate::proto::credential::{self, CredentialDigest};

/// NUL.
pub const NUL: u8 = 0x00;
/// ^C (ETX): interrupt, abandons the line being typed.
pub const CTRL_C: u8 = 0x03;
/// BEL, terminates an OSC escape sequence.
pub const BEL: u8 = 0x07;
/// BS, erases the previous character.
pub const BS: u8 = 0x08;
/// Horizontal tab, kept as text.
pub const TAB: u8 = 0x09;
/// LF.
pub const LF: u8 = 0x0a;
/// CR.
pub const CR: u8 = 0x0d;
/// ^U (NAK): kill line.
pub const CTRL_U: u8 = 0x15;
/// ESC, starts an ECMA-48 escape sequence.
pub const ESC: u8 = 0x1b;
/// DEL, erases the previous character (most terminals send it for Backspace).
pub const DEL: u8 = 0x7f;
/// Longest escape sequence followed before giving up on it (bounds the filter).
pub const MAX_ESCAPE_BYTES: u16 = 64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum AnsiState {
    #[default]
    Normal,
    Esc,
    EscOne,
    Csi,
    Osc,
    OscEsc,
}

/// Drops ECMA-48 escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL`,
/// two and three byte escapes) so prompts such as busybox ash's
/// `ipcam-25# ESC[6n` read as text.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnsiFilter {
    state: AnsiState,
    len: u16,
}

/// A byte [`ServerText`] keeps as it is outside escape sequences: not a
/// control character, not DEL.
fn is_printable(byte: u8) -> bool {
    byte >= 0x20 && byte != DEL
}

impl AnsiFilter {
    /// Outside any escape sequence: every byte but ESC is text.
    pub fn is_normal(&self) -> bool {
        self.state == AnsiState::Normal
    }

    /// True when `byte` is text, false when it belongs to an escape sequence.
    pub fn is_text(&mut self, byte: u8) -> bool {
        match self.state {
            AnsiState::Normal => {
                if byte == ESC {
                    self.state = AnsiState::Esc;
                    self.len = 0;
                    false
                } else {
                    true
                }
            }
            AnsiState::Esc => {
                self.state = match byte {
                    b'[' => AnsiState::Csi,
                    b']' => AnsiState::Osc,
                    // Character set designation takes one more byte.
                    b'(' | b')' | b'*' | b'+' | b'#' => AnsiState::EscOne,
                    _ => AnsiState::Normal,
                };
                false
            }
            AnsiState::EscOne => {
                self.state = AnsiState::Normal;
                false
            }
            AnsiState::Csi => {
                self.len = self.len.saturating_add(1);
                match byte {
                    0x40..=0x7e => {
                        self.state = AnsiState::Normal;
                        false
                    }
                    0x20..=0x3f if self.len < MAX_ESCAPE_BYTES => false,
                    // A control byte or an overlong sequence ends it; the byte is text.
                    _ => {
                        self.state = AnsiState::Normal;
                        true
                    }
                }
            }
            AnsiState::Osc => {
                self.len = self.len.saturating_add(1);
                match byte {
                    BEL => self.state = AnsiState::Normal,
                    ESC => self.state = AnsiState::OscEsc,
                    CR | LF => {
                        self.state = AnsiState::Normal;
                        return true;
                    }
                    _ if self.len >= MAX_ESCAPE_BYTES => self.state = AnsiState::Normal,
                    _ => {}
                }
                false
            }
            AnsiState::OscEsc => {
                self.state = AnsiState::Normal;
                false
            }
        }
    }
}

/// The bytes of a line typed where a password was expected, held only until
/// the login tracker has turned them into a credential digest: they cannot be
/// read back, Debug shows nothing, and they are overwritten when dropped
/// (best effort: memory the buffer left while it grew is not scrubbed).
#[derive(PartialEq, Eq)]
pub struct SecretLine {
    bytes: Vec<u8>,
    complete: bool,
}

impl SecretLine {
    /// `complete`: no byte was dropped at the line bound.
    pub fn new(bytes: Vec<u8>, complete: bool) -> Self {
        SecretLine { bytes, complete }
    }

    /// The line was not cut at the assembler's bound.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// [`credential::digest`] of `user` and this password; `None` when the
    /// line was cut (the digest of a prefix would name another password).
    pub fn digest(&self, user: &str) -> Option<CredentialDigest> {
        self.complete.then(|| credential::digest(user, &self.bytes))
    }
}

impl Drop for SecretLine {
    fn drop(&mut self) {
        self.bytes.fill(0);
    }
}

impl fmt::Debug for SecretLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretLine(..)")
    }
}

/// A completed client line.
#[derive(PartialEq, Eq)]
pub enum Line {
    /// A line typed where a password was expected: its length in characters,
    /// and its bytes sealed for the credential digest.
    Secret {
        /// Characters typed after editing.
        len: usize,
        /// The password, readable only as a digest.
        password: SecretLine,
    },
    /// An ordinary line.
    Text {
        /// The line after editing (capped at the assembler's bound).
        text: String,
        /// Characters beyond the bound were dropped.
        truncated: bool,
    },
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Secret { len, .. } => f
                .debug_struct("Secret")
                .field("len", len)
                .finish_non_exhaustive(),
            Line::Text { text, truncated } => f
                .debug_struct("Text")
                .field("text", text)
                .field("truncated", truncated)
                .finish(),
        }
    }
}

/// Assembles the lines a client types, with editing, bounded.
///
/// Whether a line is secret is decided by its first byte: a secret line's
/// bytes are handed over sealed in a [`SecretLine`] and wiped from the buffer.
pub struct LineAssembler {
    buf: Vec<u8>,
    max: usize,
    started: bool,
    secret: bool,
    secret_len: usize,
    truncated: bool,
    after_cr: bool,
    discard: bool,
    ansi: AnsiFilter,
}

impl fmt::Debug for LineAssembler {
    /// Shows lengths only: a typed-ahead password may sit in the buffer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineAssembler")
            .field("buffered", &self.buf.len())
            .field("started", &self.started)
            .field("secret", &self.secret)
            .field("discard", &self.discard)
            .finish_non_exhaustive()
    }
}

impl LineAssembler {
    /// An assembler keeping at most `max` bytes of a line.
    pub fn new(max: usize) -> Self {
        LineAssembler {
            buf: Vec::new(),
            max,
            started: false,
            secret: false,
            secret_len: 0,
            truncated: false,
            after_cr: false,
            discard: false,
            ansi: AnsiFilter::default(),
        }
    }

    /// True when nothing has been typed on the current line.
    pub fn is_idle(&self) -> bool {
        !self.started
    }

    /// Feeds one data byte typed by the client. `secret_if_new` tells whether
    /// a line that this byte starts is a password line. Returns the line when
    /// this byte ends it.
    pub fn push(&mut self, byte: u8, secret_if_new: bool) -> Option<Line> {
        if std::mem::take(&mut self.after_cr) && (byte == LF || byte == NUL) {
            return None;
        }
        if !self.ansi.is_text(byte) {
            return None;
        }
        match byte {
            CR | LF => {
                self.after_cr = byte == CR;
                if std::mem::take(&mut self.discard) {
                    self.clear();
                    return None;
                }
                if !self.started {
                    self.secret = secret_if_new;
                }
                let line = if self.secret {
                    Line::Secret {
                        len: self.secret_len,
                        password: SecretLine::new(std::mem::take(&mut self.buf), !self.truncated),
                    }
                } else {
                    Line::Text {
                        text: String::from_utf8_lossy(&self.buf).into_owned(),
                        truncated: self.truncated,
                    }
                };
                self.clear();
                Some(line)
            }
            _ if self.discard => None,
            BS | DEL => {
                self.erase_char();
                None
            }
            CTRL_U => {
                self.erase_line();
                None
            }
            CTRL_C => {
                self.clear();
                None
            }
            b if b < 0x20 && b != TAB => None,
            b => {
                if !self.started {
                    self.started = true;
                    self.secret = secret_if_new;
                }
                if self.secret {
                    self.secret_len = self.secret_len.saturating_add(1);
                }
                if self.buf.len() < self.max {
                    self.buf.push(b);
                } else {
                    self.truncated = true;
                }
                None
            }
        }
    }

    /// Feeds the leading run of printable bytes of `bytes` (see
    /// [`LineAssembler::push`]) and returns how many it took: none when
    /// `bytes` starts with a byte that needs [`LineAssembler::push`] (a line
    /// end, an edit, a control byte) or while an escape sequence is open.
    /// Such a run ends no line, so the caller pushes the byte after it.
    pub fn push_run(&mut self, bytes: &[u8], secret_if_new: bool) -> usize {
        if !self.ansi.is_normal() {
            return 0;
        }
        let run = bytes
            .iter()
            .position(|&b| !is_printable(b))
            .unwrap_or(bytes.len());
        let Some(text) = bytes.get(..run).filter(|t| !t.is_empty()) else {
            return 0;
        };
        // What push does for each of these bytes, at once.
        self.after_cr = false;
        if self.discard {
            return run;
        }
        if !self.started {
            self.started = true;
            self.secret = secret_if_new;
        }
        if self.secret {
            self.secret_len = self.secret_len.saturating_add(run);
        }
        let room = self.max.saturating_sub(self.buf.len());
        let kept = text.get(..room).unwrap_or(text);
        self.buf.extend_from_slice(kept);
        if kept.len() < run {
            self.truncated = true;
        }
        run
    }

    /// Erase Character (BS, DEL, `IAC EC`): removes the last character.
    pub fn erase_char(&mut self) {
        if self.secret {
            self.secret_len = self.secret_len.saturating_sub(1);
        }
        // Remove UTF-8 continuation bytes, then the lead byte (zeroed first:
        // it may be part of a password).
        while let Some(last) = self.buf.last_mut() {
            let byte = std::mem::take(last);
            self.buf.pop();
            if byte & 0xc0 != 0x80 {
                break;
            }
        }
    }

    /// Erase Line (^U, `IAC EL`): empties the line, keeping its secrecy.
    pub fn erase_line(&mut self) {
        self.wipe();
        self.secret_len = 0;
    }

    /// After a gap: drops what was typed and everything up to the next line end.
    pub fn discard_current(&mut self) {
        self.clear();
        self.discard = true;
        self.after_cr = false;
        self.ansi = AnsiFilter::default();
    }

    /// Empties the buffer, overwriting what a password line left in it.
    fn wipe(&mut self) {
        self.buf.fill(0);
        self.buf.clear();
    }

    fn clear(&mut self) {
        self.wipe();
        self.started = false;
        self.secret = false;
        self.secret_len = 0;
        self.truncated = false;
    }
}

/// The server's current output line (text after the last CR or LF, escape
/// sequences removed), keeping its last `max` bytes.
#[derive(Debug)]
pub struct ServerText {
    line: Vec<u8>,
    max: usize,
    ansi: AnsiFilter,
    changed: bool,
}

impl ServerText {
    /// Keeps at most `max` bytes (at least 2) of the current line.
    pub fn new(max: usize) -> Self {
        ServerText {
            line: Vec::new(),
            max: max.max(2),
            ansi: AnsiFilter::default(),
            changed: false,
        }
    }

    /// Feeds one byte of server output; `on_line` sees each non-empty line
    /// that this byte completes.
    pub fn push<F: FnMut(&[u8])>(&mut self, byte: u8, on_line: &mut F) {
        if !self.ansi.is_text(byte) {
            return;
        }
        match byte {
            CR | LF => {
                if !self.line.is_empty() {
                    on_line(&self.line);
                    self.line.clear();
                    self.changed = true;
                }
            }
            BS => {
                self.changed |= self.line.pop().is_some();
            }
            b if b < 0x20 && b != TAB => {}
            DEL => {}
            b => {
                if self.line.len() >= self.max {
                    self.line.drain(..self.max / 2);
                }
                self.line.push(b);
                self.changed = true;
            }
        }
    }

    /// Feeds a run of server output, as [`ServerText::push`] on each byte
    /// would. Outside escape sequences, runs of printable bytes are appended
    /// at once.
    pub fn push_slice<F: FnMut(&[u8])>(&mut self, bytes: &[u8], on_line: &mut F) {
        let mut rest = bytes;
        while let Some((&first, tail)) = rest.split_first() {
            if self.ansi.is_normal() && is_printable(first) {
                let run = rest
                    .iter()
                    .position(|&b| !is_printable(b))
                    .unwrap_or(rest.len());
                let (text, after) = rest.split_at(run);
                self.append(text);
                rest = after;
            } else {
                self.push(first, on_line);
                rest = tail;
            }
        }
    }

    /// Appends printable bytes, dropping the older half of the line each
    /// time it is full (as byte-wise pushes do).
    fn append(&mut self, mut text: &[u8]) {
        while !text.is_empty() {
            if self.line.len() >= self.max {
                self.line.drain(..self.max / 2);
            }
            let room = self.max.saturating_sub(self.line.len()).max(1);
            let (now, later) = text.split_at(room.min(text.len()));
            self.line.extend_from_slice(now);
            text = later;
        }
        self.changed = true;
    }

    /// Whether the current line changed since the last call (so a prompt
    /// check runs once per new output, not again for a negotiation-only segment).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The current, unterminated line.
    pub fn tail(&self) -> &[u8] {
        &self.line
    }

    /// Forgets the current line (after a gap).
    pub fn reset(&mut self) {
        self.line.clear();
        self.ansi = AnsiFilter::default();
        self.changed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], secret: bool) -> Vec<Line> {
        let mut asm = LineAssembler::new(16);
        input.iter().filter_map(|&b| asm.push(b, secret)).collect()
    }

    fn text(s: &str) -> Line {
        Line::Text {
            text: s.into(),
            truncated: false,
        }
    }

    fn secret(len: usize, password: &str) -> Line {
        Line::Secret {
            len,
            password: SecretLine::new(password.into(), true),
        }
    }

    #[test]
    fn cr_lf_cr_nul_and_bare_lf_end_lines() {
        // RFC 854: CR LF is end of line, CR NUL a bare carriage return.
        assert_eq!(
            lines(b"root\r\nadmin\r\0ls\nx\ry\r", false),
            vec![
                text("root"),
                text("admin"),
                text("ls"),
                text("x"),
                text("y")
            ]
        );
        // An LF arriving later after a CR (Microsoft telnet client) is swallowed.
        let mut asm = LineAssembler::new(16);
        assert_eq!(
            b"penguin\r"
                .iter()
                .filter_map(|&b| asm.push(b, false))
                .last(),
            Some(text("penguin"))
        );
        assert_eq!(asm.push(LF, false), None);
        assert!(asm.is_idle());
        // Empty lines are reported (hydra sends CR NUL alone).
        assert_eq!(lines(b"\r\0", false), vec![text("")]);
    }

    #[test]
    fn editing_with_bs_del_ctrl_u_ctrl_c() {
        assert_eq!(lines(b"rooo\x08t\r\n", false), vec![text("root")]);
        assert_eq!(lines(b"adx\x7fmin\r\n", false), vec![text("admin")]);
        assert_eq!(lines(b"junk\x15user\r\n", false), vec![text("user")]);
        assert_eq!(lines(b"oops\x03ls\r\n", false), vec![text("ls")]);
        // Erasing past the start is harmless; UTF-8 characters erase whole.
        assert_eq!(
            lines("\x08\x08é\x7fok\r".as_bytes(), false),
            vec![text("ok")]
        );
    }

    #[test]
    fn secret_lines_are_sealed_after_editing() {
        assert_eq!(lines(b"xc3511\r\0", true), vec![secret(6, "xc3511")]);
        assert_eq!(
            lines(b"pass\x7f\x7fss\x08\r\n", true),
            vec![secret(3, "pas")]
        );
        assert_eq!(lines(b"junk\x15vizxv\r\n", true), vec![secret(5, "vizxv")]);
        // An empty password line is a secret of length 0.
        assert_eq!(lines(b"\r\n", true), vec![secret(0, "")]);
        // Secrecy is fixed by the first byte of the line.
        let mut asm = LineAssembler::new(16);
        assert_eq!(asm.push(b'a', true), None);
        assert_eq!(asm.push(b'b', false), None);
        assert_eq!(asm.push(CR, false), Some(secret(2, "ab")));
        assert_eq!(asm.push(b'c', false), None);
        assert_eq!(asm.push(LF, true), Some(text("c")));
    }

    #[test]
    fn secret_line_digest_only_when_complete() {
        let Some(Line::Secret { len, password }) = lines(b"xc3511\r", true).pop() else {
            panic!()
        };
        assert_eq!(len, 6);
        assert!(password.is_complete());
        assert_eq!(
            password.digest("root"),
            Some(credential::digest("root", "xc3511"))
        );
        assert_ne!(
            password.digest("root"),
            Some(credential::digest("root", "xc351"))
        );
        assert_eq!(format!("{password:?}"), "SecretLine(..)");
        // Longer than the bound: length counted, no digest of a prefix.
        let mut input = vec![b'p'; 20];
        input.push(CR);
        let Some(Line::Secret { len, password }) = lines(&input, true).pop() else {
            panic!()
        };
        assert_eq!(len, 20);
        assert!(!password.is_complete());
        assert_eq!(password.digest("root"), None);
    }

    #[test]
    fn long_lines_are_capped_and_flagged() {
        let mut input = vec![b'a'; 40];
        input.push(CR);
        assert_eq!(
            lines(&input, false),
            vec![Line::Text {
                text: "a".repeat(16),
                truncated: true
            }]
        );
    }

    #[test]
    fn escape_sequences_typed_by_the_client_are_dropped() {
        // Up arrow (ESC [ A) typed before a command.
        assert_eq!(lines(b"\x1b[Als\r\n", false), vec![text("ls")]);
    }

    #[test]
    fn discard_after_gap_skips_to_next_line() {
        let mut asm = LineAssembler::new(16);
        for &b in b"secr" {
            asm.push(b, true);
        }
        asm.discard_current();
        let out: Vec<Line> = b"et\r\nls\r\n"
            .iter()
            .filter_map(|&b| asm.push(b, false))
            .collect();
        assert_eq!(out, vec![text("ls")]);
    }

    #[test]
    fn debug_of_assembler_hides_buffer() {
        let mut asm = LineAssembler::new(16);
        for &b in b"hunter2" {
            asm.push(b, false);
        }
        assert!(!format!("{asm:?}").contains("hunter2"));
        assert!(!format!("{asm:?}").contains("104")); // no byte values either
        let line = b"\rhunter2\r"
            .iter()
            .filter_map(|&b| asm.push(b, true))
            .last();
        let debug = format!("{line:?}");
        assert!(
            debug.contains("Secret") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    fn server_lines(input: &[u8]) -> (Vec<String>, String) {
        let mut text = ServerText::new(32);
        let mut out = Vec::new();
        for &b in input {
            text.push(b, &mut |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        (out, String::from_utf8_lossy(text.tail()).into_owned())
    }

    #[test]
    fn server_lines_and_tail() {
        // busybox telnetd output from the lab capture (stream 11412).
        let (done, tail) =
            server_lines(b"\r\r\n\r\r\n\rIPCAM-2000 (build 4.2.0)\r\r\n\ripcam-25 login: ");
        assert_eq!(done, vec!["IPCAM-2000 (build 4.2.0)"]);
        assert_eq!(tail, "ipcam-25 login: ");
        // busybox ash prompt followed by a cursor position query ESC [ 6 n.
        let (_, tail) = server_lines(b"\r\nipcam-25# \x1b[6n");
        assert_eq!(tail, "ipcam-25# ");
        // xterm title (OSC ... BEL) in a bash prompt.
        let (_, tail) = server_lines(b"\x1b]0;root@box: ~\x07root@box:~# ");
        assert_eq!(tail, "root@box:~# ");
        // Microsoft telnet server: LF CR before the prompt.
        let (_, tail) = server_lines(b"\n\rpassword: ");
        assert_eq!(tail, "password: ");
        // The echo of an erase (BS SP BS) removes the character.
        let (_, tail) = server_lines(b"login: roo\x08 \x08");
        assert_eq!(tail, "login: ro");
    }

    #[test]
    fn server_text_change_tracking() {
        let mut text = ServerText::new(32);
        let mut ignore = |_: &[u8]| {};
        assert!(!text.take_changed());
        for &b in b"login: " {
            text.push(b, &mut ignore);
        }
        assert!(text.take_changed());
        assert!(!text.take_changed());
        // Control bytes and escape sequences change nothing.
        for &b in b"\x00\x07\x1b[6n" {
            text.push(b, &mut ignore);
        }
        assert!(!text.take_changed());
        text.push(b'\n', &mut ignore);
        assert!(text.take_changed());
        assert_eq!(text.tail(), b"");
    }

    #[test]
    fn server_tail_keeps_the_end_of_long_lines() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"Password: ");
        let (_, tail) = server_lines(&input);
        assert!(tail.ends_with("Password: "));
        assert!(tail.len() <= 32);
    }

    #[test]
    fn overlong_escape_sequences_end() {
        let mut f = AnsiFilter::default();
        assert!(!f.is_text(ESC));
        assert!(!f.is_text(b'['));
        for _ in 0..(MAX_ESCAPE_BYTES - 1) {
            assert!(!f.is_text(b'1'));
        }
        assert!(f.is_text(b'1'));
        assert!(f.is_text(b'z'));
    }

    // push_slice is push on every byte: same lines, same current line, same
    // change flag, across escape sequences, edits and the line bound.
    #[test]
    fn server_text_slices_match_bytewise_pushes() {
        let inputs: [&[u8]; 6] = [
            b"\r\nBusyBox v1.35.0\r\n\r\n~ # ",
            b"abcdefghijklmnopqrstuvwxyz0123456789 long line past the bound\r\nnext",
            b"ipcam-25# \x1b[6n\x1b]0;title\x07pro\x08mpt\x7f> ",
            b"\x1b[1;32mgreen\x1b[0m \xc3\xa9t\xc3\xa9\tx\x01y\ru",
            b"",
            b"\x1b(Bx\x1b]unterminated\r\nafter",
        ];
        for max in [2, 7, 16, 256] {
            for input in inputs {
                for cut in 0..=input.len() {
                    let mut one = ServerText::new(max);
                    let mut one_lines = Vec::new();
                    for &b in input {
                        one.push(b, &mut |l: &[u8]| one_lines.push(l.to_vec()));
                    }
                    let mut two = ServerText::new(max);
                    let mut two_lines = Vec::new();
                    let (a, b) = input.split_at(cut);
                    two.push_slice(a, &mut |l: &[u8]| two_lines.push(l.to_vec()));
                    let changed_a = two.take_changed();
                    two.push_slice(b, &mut |l: &[u8]| two_lines.push(l.to_vec()));
                    let changed = changed_a | two.take_changed();
                    assert_eq!(one_lines, two_lines, "{input:?} max {max} cut {cut}");
                    assert_eq!(one.tail(), two.tail(), "{input:?} max {max} cut {cut}");
                    assert_eq!(one.take_changed(), changed, "{input:?} max {max}");
                }
            }
        }
    }

    // push_run then push on the rest is push on every byte: same lines
    // (text, secret length and digest, truncation) at any split.
    #[test]
    fn line_runs_match_bytewise_pushes() {
        let inputs: [&[u8]; 5] = [
            b"admin\r\ns3cr3t!\r\nuptime\r\n",
            b"rooz\x7ft\r\0xc3512\x08\x0811\r\0",
            b"a very long line past the bound\r\nnext\x15again\x03x\n",
            b"\x1b[Aup\x1b]t\x07\xc3\xa9\tx\ry",
            b"\nafter lf\r",
        ];
        let digest = |l: &Line| match l {
            Line::Secret { len, password } => (Some(*len), password.digest("u"), None),
            Line::Text { text, truncated } => (None, None, Some((text.clone(), *truncated))),
        };
        for max in [1, 4, 16] {
            for input in inputs {
                for secret in [false, true] {
                    let mut one = LineAssembler::new(max);
                    let a: Vec<_> = input
                        .iter()
                        .filter_map(|&b| one.push(b, secret))
                        .map(|l| digest(&l))
                        .collect();
                    let mut two = LineAssembler::new(max);
                    let mut b = Vec::new();
                    let mut rest = input;
                    while let Some((&first, tail)) = rest.split_first() {
                        let n = two.push_run(rest, secret);
                        if n > 0 {
                            rest = rest.get(n..).unwrap_or_default();
                            continue;
                        }
                        b.extend(two.push(first, secret).map(|l| digest(&l)));
                        rest = tail;
                    }
                    assert_eq!(a, b, "{input:?} max {max} secret {secret}");
                    assert_eq!(one.is_idle(), two.is_idle());
                }
            }
        }
    }
}
