//! What the first bytes of a body or payload look like, from the format's
//! magic number: only this class and a length are ever logged or put in an
//! event, never the bytes (a form body or a payload can carry credentials).

/// ELF identification, `e_ident[EI_MAG0..EI_MAG3]` (System V gABI, ch. 4).
const MAGIC_ELF: &[u8] = b"\x7fELF";
/// gzip member header ID1 ID2 (RFC 1952 §2.3.1).
const MAGIC_GZIP: &[u8] = b"\x1f\x8b";
/// ZIP local file header signature 0x04034b50 (PKWARE APPNOTE.TXT §4.3.7).
const MAGIC_ZIP: &[u8] = b"PK\x03\x04";
/// ZIP end of central directory signature 0x06054b50, the start of an empty
/// archive (APPNOTE.TXT §4.3.16).
const MAGIC_ZIP_EMPTY: &[u8] = b"PK\x05\x06";
/// xz stream header magic (The .xz File Format 1.0.4 §2.1.1.1).
const MAGIC_XZ: &[u8] = b"\xfd7zXZ\x00";
/// bzip2 stream header "BZh" (followed by the block size digit '1'..'9').
const MAGIC_BZIP2: &[u8] = b"BZh";
/// PNG signature (ISO/IEC 15948 §5.2).
const MAGIC_PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
/// JPEG SOI marker followed by the next marker's 0xFF (ITU-T T.81 B.1.1.3).
const MAGIC_JPEG: &[u8] = b"\xff\xd8\xff";
/// GIF header signature and versions (GIF89a specification §17).
const MAGIC_GIF: [&[u8]; 2] = [b"GIF87a", b"GIF89a"];
/// PDF file header (ISO 32000-1 §7.5.2).
const MAGIC_PDF: &[u8] = b"%PDF-";
/// MS-DOS stub signature at the start of a PE image (Microsoft PE/COFF
/// specification §2).
const MAGIC_MZ: &[u8] = b"MZ";
/// Interpreter line of a script, as execve(2) recognises it.
const MAGIC_SHEBANG: &[u8] = b"#!";

/// What the first bytes of a body or payload look like. Only this
/// classification and a length are ever logged, never the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentClass {
    /// No bytes.
    Empty,
    Elf,
    /// Windows PE executable ("MZ" followed by binary bytes).
    Pe,
    Gzip,
    Zip,
    Xz,
    Bzip2,
    Png,
    Jpeg,
    Gif,
    Pdf,
    /// Text starting with `#!`.
    Script,
    /// Text starting (after white space) with `{` or `[` (RFC 8259 §2).
    Json,
    /// Text starting (after white space) with `<`: HTML or XML.
    Markup,
    /// Other UTF-8 text without control characters (tab, CR, LF allowed).
    Text,
    /// Anything else.
    Binary,
}

impl ContentClass {
    /// Classifies the leading bytes of a body or payload (any length; a
    /// multi-byte UTF-8 character cut at the end still counts as text).
    pub fn of(head: &[u8]) -> Self {
        if head.is_empty() {
            return ContentClass::Empty;
        }
        let binary_magic = [
            (MAGIC_ELF, ContentClass::Elf),
            (MAGIC_GZIP, ContentClass::Gzip),
            (MAGIC_ZIP, ContentClass::Zip),
            (MAGIC_ZIP_EMPTY, ContentClass::Zip),
            (MAGIC_XZ, ContentClass::Xz),
            (MAGIC_PNG, ContentClass::Png),
            (MAGIC_JPEG, ContentClass::Jpeg),
            (MAGIC_PDF, ContentClass::Pdf),
        ];
        if let Some((_, class)) = binary_magic.iter().find(|(m, _)| head.starts_with(m)) {
            return *class;
        }
        if MAGIC_GIF.iter().any(|m| head.starts_with(m)) {
            return ContentClass::Gif;
        }
        if head.starts_with(MAGIC_BZIP2)
            && head
                .get(MAGIC_BZIP2.len())
                .is_some_and(|d| (b'1'..=b'9').contains(d))
        {
            return ContentClass::Bzip2;
        }
        if !is_text(head) {
            return if head.starts_with(MAGIC_MZ) {
                ContentClass::Pe
            } else {
                ContentClass::Binary
            };
        }
        if head.starts_with(MAGIC_SHEBANG) {
            return ContentClass::Script;
        }
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => ContentClass::Json,
            Some(b'<') => ContentClass::Markup,
            _ => ContentClass::Text,
        }
    }

    /// Stable lower-case name, as written in the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentClass::Empty => "empty",
            ContentClass::Elf => "elf",
            ContentClass::Pe => "pe",
            ContentClass::Gzip => "gzip",
            ContentClass::Zip => "zip",
            ContentClass::Xz => "xz",
            ContentClass::Bzip2 => "bzip2",
            ContentClass::Png => "png",
            ContentClass::Jpeg => "jpeg",
            ContentClass::Gif => "gif",
            ContentClass::Pdf => "pdf",
            ContentClass::Script => "script",
            ContentClass::Json => "json",
            ContentClass::Markup => "markup",
            ContentClass::Text => "text",
            ContentClass::Binary => "binary",
        }
    }
}

/// UTF-8 (an incomplete character at the very end allowed) without control
/// characters other than tab, LF, CR and form feed.
fn is_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        // `error_len() == None`: the input ends inside a character.
        Err(e) if e.error_len().is_none() => {
            match bytes.get(..e.valid_up_to()).map(std::str::from_utf8) {
                Some(Ok(s)) => s,
                _ => return false,
            }
        }
        Err(_) => return false,
    };
    valid
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// Classification of a captured head, `None` when nothing was captured.
pub fn magic_of(head: &[u8]) -> Option<&'static str> {
    (!head.is_empty()).then(|| ContentClass::of(head).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn content_classes_from_format_magic_numbers() {
        let cases: [(&[u8], ContentClass); 21] = [
            (b"", ContentClass::Empty),
            (b"\x7fELF\x01\x01\x01\x00", ContentClass::Elf),
            (b"MZ\x90\x00\x03\x00\x00\x00", ContentClass::Pe),
            (b"\x1f\x8b\x08\x00", ContentClass::Gzip),
            (b"PK\x03\x04\x14\x00", ContentClass::Zip),
            (b"PK\x05\x06\x00\x00", ContentClass::Zip),
            (b"\xfd7zXZ\x00\x00\x04", ContentClass::Xz),
            (b"BZh91AY&SY", ContentClass::Bzip2),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", ContentClass::Png),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF", ContentClass::Jpeg),
            (b"GIF89a\x01\x00\x01\x00", ContentClass::Gif),
            (b"%PDF-1.7\n", ContentClass::Pdf),
            (b"#!/bin/sh\nwget http://x/a\n", ContentClass::Script),
            (b"  {\"temp\": 22.5}", ContentClass::Json),
            (b"[1,2]", ContentClass::Json),
            (b"<!DOCTYPE html><html>", ContentClass::Markup),
            (b"22.3 C", ContentClass::Text),
            // "MZ" as the start of text is text, not an executable.
            (b"MZone ready\r\n", ContentClass::Text),
            // "é" (c3 a9) cut after its first byte at the end of the head.
            (b"caf\xc3", ContentClass::Text),
            (b"\x00\x01\x02\x03", ContentClass::Binary),
            (b"ok\x1b[0m", ContentClass::Binary),
        ];
        for (bytes, class) in cases {
            assert_eq!(ContentClass::of(bytes), class, "{bytes:02x?}");
        }
        let names: BTreeSet<&str> = cases.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(names.len(), 16, "distinct names: {names:?}");
    }
}
