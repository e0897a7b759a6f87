//! Short owned strings and byte strings for events.
//!
//! Events own what they carry so they can outlive the packet bytes, but what
//! they carry is short: a topic, a client id, the first bytes of a payload.
//! Giving each value its own heap allocation, freed again as soon as the
//! event has been handed on, cost more than decoding the packet.
//! [`InlineBytes`] and [`InlineStr`] keep up to `N` bytes in place and use the
//! heap only for longer values. They compare, hash and print like the `[u8]`
//! and `str` they hold (`Debug` output is the same as `Vec<u8>`'s and
//! `String`'s).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use super::text::capped;

/// Bytes held in place up to `N` (at most 255), on the heap beyond.
#[derive(Clone)]
pub struct InlineBytes<const N: usize>(BytesRepr<N>);

#[derive(Clone)]
enum BytesRepr<const N: usize> {
    Inline { len: u8, buf: [u8; N] },
    Heap(Box<[u8]>),
}

/// `bytes` copied into an `N`-byte array, when they fit (and `N` fits the
/// `u8` length).
fn inline<const N: usize>(bytes: &[u8]) -> Option<(u8, [u8; N])> {
    let len = u8::try_from(bytes.len())
        .ok()
        .filter(|_| bytes.len() <= N)?;
    let mut buf = [0u8; N];
    buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some((len, buf))
}

impl<const N: usize> InlineBytes<N> {
    pub fn new(bytes: &[u8]) -> Self {
        match inline(bytes) {
            Some((len, buf)) => InlineBytes(BytesRepr::Inline { len, buf }),
            None => InlineBytes(BytesRepr::Heap(bytes.into())),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            BytesRepr::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or_default(),
            BytesRepr::Heap(b) => b,
        }
    }
}

impl<const N: usize> Default for InlineBytes<N> {
    fn default() -> Self {
        InlineBytes::new(&[])
    }
}

impl<const N: usize> Deref for InlineBytes<N> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> AsRef<[u8]> for InlineBytes<N> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> From<&[u8]> for InlineBytes<N> {
    fn from(bytes: &[u8]) -> Self {
        InlineBytes::new(bytes)
    }
}

impl<const N: usize> fmt::Debug for InlineBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_bytes(), f)
    }
}

impl<const N: usize> PartialEq for InlineBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for InlineBytes<N> {}

impl<const N: usize> Hash for InlineBytes<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl<const N: usize> PartialEq<[u8]> for InlineBytes<N> {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl<const N: usize> PartialEq<&[u8]> for InlineBytes<N> {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

impl<const N: usize> PartialEq<Vec<u8>> for InlineBytes<N> {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_bytes() == other.as_slice()
    }
}

/// A string held in place up to `N` bytes (at most 255), on the heap beyond.
#[derive(Clone)]
pub struct InlineStr<const N: usize>(StrRepr<N>);

/// `Inline` holds valid UTF-8: it is only ever built from a `&str`.
#[derive(Clone)]
enum StrRepr<const N: usize> {
    Inline { len: u8, buf: [u8; N] },
    Heap(Box<str>),
}

impl<const N: usize> InlineStr<N> {
    pub fn new(s: &str) -> Self {
        match inline(s.as_bytes()) {
            Some((len, buf)) => InlineStr(StrRepr::Inline { len, buf }),
            None => InlineStr(StrRepr::Heap(s.into())),
        }
    }

    /// `bytes` as a string held in place, when they are ASCII (so valid
    /// UTF-8, every byte a character) and fit.
    pub fn from_ascii(bytes: &[u8]) -> Option<Self> {
        if !bytes.is_ascii() {
            return None;
        }
        let (len, buf) = inline(bytes)?;
        Some(InlineStr(StrRepr::Inline { len, buf }))
    }

    /// What [`capped`] keeps of `bytes`, held in place when it fits: a
    /// parser's capped text without a heap allocation for a short value.
    pub fn capped(bytes: &[u8], cap: usize) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) if s.len() <= cap => InlineStr::new(s),
            _ => InlineStr::new(&capped(bytes, cap)),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from a `&str`, so the check cannot fail; it is a short
            // scan (the inline form is at most `N` bytes).
            StrRepr::Inline { len, buf } => buf
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            StrRepr::Heap(s) => s,
        }
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr::new("")
    }
}

impl<const N: usize> Deref for InlineStr<N> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> AsRef<str> for InlineStr<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> From<&str> for InlineStr<N> {
    fn from(s: &str) -> Self {
        InlineStr::new(s)
    }
}

impl<const N: usize> From<&InlineStr<N>> for String {
    fn from(s: &InlineStr<N>) -> Self {
        s.as_str().to_owned()
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<const N: usize> PartialEq for InlineStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for InlineStr<N> {}

impl<const N: usize> Hash for InlineStr<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl<const N: usize> PartialEq<str> for InlineStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> PartialEq<String> for InlineStr<N> {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_in_place_keeps_what_capped_keeps() {
        let inputs: [&[u8]; 6] = [
            b"nginx",
            b"exactly8",
            b"longer than the cap",
            "caf\u{e9} au lait".as_bytes(),
            b"bad \xff utf-8",
            b"",
        ];
        for bytes in inputs {
            for cap in [0, 4, 5, 8, 64] {
                let kept: InlineStr<8> = InlineStr::capped(bytes, cap);
                assert_eq!(kept, capped(bytes, cap), "{bytes:?} cap {cap}");
            }
        }
        let short: InlineStr<8> = InlineStr::capped(b"nginx", 64);
        assert!(matches!(short.0, StrRepr::Inline { len: 5, .. }));
    }

    #[test]
    fn short_values_stay_inline_and_long_ones_spill() {
        let s: InlineStr<4> = InlineStr::new("abcd");
        assert!(matches!(s.0, StrRepr::Inline { len: 4, .. }));
        assert_eq!(s, "abcd");
        let s: InlineStr<4> = InlineStr::new("abcdé");
        assert!(matches!(s.0, StrRepr::Heap(_)));
        assert_eq!(s.as_str(), "abcdé");
        let b: InlineBytes<2> = InlineBytes::new(&[1, 2, 3]);
        assert!(matches!(b.0, BytesRepr::Heap(_)));
        assert_eq!(b, vec![1, 2, 3]);
        assert_eq!(InlineBytes::<2>::new(&[7]).as_bytes(), &[7]);
        assert!(InlineStr::<8>::default().is_empty());
        assert_eq!(
            InlineStr::<4>::from_ascii(b"ab"),
            Some(InlineStr::new("ab"))
        );
        assert_eq!(InlineStr::<4>::from_ascii(b"abcde"), None);
        assert_eq!(InlineStr::<4>::from_ascii("é".as_bytes()), None);
        assert_eq!(InlineStr::<4>::from_ascii(b""), Some(InlineStr::default()));
    }

    #[test]
    fn equal_whatever_the_storage_and_printed_like_std() {
        let inline: InlineStr<8> = InlineStr::new("topic/é");
        let heap: InlineStr<8> = InlineStr(StrRepr::Heap("topic/é".into()));
        assert_eq!(inline, heap);
        assert_eq!(format!("{inline:?}"), format!("{:?}", "topic/é"));
        assert_eq!(inline.to_string(), "topic/é");
        let b: InlineBytes<8> = InlineBytes::new(b"\x00ab");
        assert_eq!(format!("{b:?}"), format!("{:?}", b"\x00ab".to_vec()));
        assert_eq!(&b[..1], &[0]);
    }
}
