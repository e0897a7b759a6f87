//! Capped text: what every parser keeps of a string the traffic sent (a
//! topic, a URI, a user name), cut to a bound in bytes on a character
//! boundary, invalid UTF-8 replaced by U+FFFD. One rule for every protocol,
//! so that a bound in the limits is a bound on what is kept.

/// Appends `bytes` (UTF-8, invalid sequences replaced) to `dst` while `dst`
/// stays within `cap` bytes. Returns true when something was left out.
pub fn push_capped(dst: &mut String, bytes: &[u8], cap: usize) -> bool {
    let room = cap.saturating_sub(dst.len());
    // Every kept character takes at least as many bytes as it used in the
    // input, so only the first `room` input bytes can be kept.
    let cut = bytes.get(..room).unwrap_or(bytes);
    match std::str::from_utf8(cut) {
        // Nearly every string: valid, copied at once.
        Ok(s) => {
            dst.push_str(s);
            cut.len() < bytes.len()
        }
        // A character cut by the bound: the text before it.
        Err(e) if e.error_len().is_none() && cut.len() < bytes.len() => {
            dst.push_str(std::str::from_utf8(&cut[..e.valid_up_to()]).unwrap_or_default());
            true
        }
        Err(_) => {
            for ch in String::from_utf8_lossy(cut).chars() {
                if dst.len() + ch.len_utf8() > cap {
                    return true;
                }
                dst.push(ch);
            }
            cut.len() < bytes.len()
        }
    }
}

/// At most `cap` bytes of `text`, cut on a character boundary: what
/// [`capped`] keeps of valid UTF-8, without a copy.
pub fn cap_str(text: &str, cap: usize) -> &str {
    let mut end = cap.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// At most `cap` bytes of `bytes` as text (see [`push_capped`]).
pub fn capped(bytes: &[u8], cap: usize) -> String {
    let mut s = String::new();
    push_capped(&mut s, bytes, cap);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_strings() {
        let mut s = String::from("ab");
        assert!(!push_capped(&mut s, b"cd", 4));
        assert_eq!(s, "abcd");
        assert!(push_capped(&mut s, b"e", 4));
        assert_eq!(s, "abcd");
        // A multi-byte character is never split: "é" is 2 bytes.
        let mut s = String::new();
        assert!(push_capped(&mut s, "aé".as_bytes(), 2));
        assert_eq!(s, "a");
        let mut s = String::new();
        assert!(!push_capped(&mut s, &[0xFF], 8));
        assert_eq!(s, "\u{FFFD}");
    }

    #[test]
    fn cap_str_keeps_what_capped_keeps() {
        for text in ["", "abc", "aé", "éé", "日本語", "a日本"] {
            for cap in 0..8 {
                assert_eq!(
                    cap_str(text, cap),
                    capped(text.as_bytes(), cap),
                    "{text} {cap}"
                );
            }
        }
    }

    /// The valid-UTF-8 fast path cuts exactly where the char-by-char loop
    /// over the lossy conversion does.
    #[test]
    fn capped_strings_fast_path_matches_lossy_loop() {
        fn reference(dst: &mut String, bytes: &[u8], cap: usize) -> bool {
            for ch in String::from_utf8_lossy(bytes).chars() {
                if dst.len() + ch.len_utf8() > cap {
                    return true;
                }
                dst.push(ch);
            }
            false
        }
        let inputs: [&[u8]; 7] = [
            b"",
            b"temperature",
            "aé€😀b".as_bytes(),
            "€€€".as_bytes(),
            b"ab\xFFcd",
            b"\xE2\x82",
            "😀".as_bytes(),
        ];
        for prefix in ["", "x", "xyz", "0123456789"] {
            for bytes in inputs {
                for cap in 0..14 {
                    let (mut a, mut b) = (prefix.to_string(), prefix.to_string());
                    let cut = push_capped(&mut a, bytes, cap);
                    assert_eq!(
                        cut,
                        reference(&mut b, bytes, cap),
                        "{prefix:?} {bytes:?} {cap}"
                    );
                    assert_eq!(a, b, "{prefix:?} {bytes:?} {cap}");
                }
            }
        }
    }

    #[test]
    fn capped_cuts_on_a_char_boundary_and_replaces_invalid_bytes() {
        assert_eq!(capped("aéé".as_bytes(), 3), "aé");
        assert_eq!(capped("aéé".as_bytes(), 2), "a");
        assert_eq!(capped("héllo".as_bytes(), 2), "h");
        assert_eq!(capped(b"abc", 10), "abc");
        assert_eq!(capped(&[0xff, b'a'], 10), "\u{fffd}a");
        // The replacement character takes 3 bytes of the bound.
        assert_eq!(capped(b"ab\xffcd", 4), "ab");
        assert_eq!(capped(b"ab\xffcd", 6), "ab\u{fffd}c");
    }
}
