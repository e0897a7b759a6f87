//! Byte sizes as people write them, shared by the command line (`--flow-memcap
//! 128M`) and the config file (`memcap_bytes = "128M"` or `134217728`), and
//! durations of the command line (`--rotate 1h`, `--retain 30d`).
//!
//! This module imports nothing from the crate, so that any stage's settings
//! may use it.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

/// Largest byte size accepted: a TOML integer is a signed 64-bit number, and
/// every size must be writable back into a config file.
pub const MAX_BYTE_SIZE: u64 = i64::MAX as u64;
/// Longest duration accepted, in seconds (a TOML integer, as above).
pub const MAX_DURATION_SECS: u64 = i64::MAX as u64;

/// Parse a byte size: a number with an optional K, M or G suffix (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => return Err(format!("unknown size suffix {c:?} in {s:?}: use K, M or G")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 65536, 64K, 128M, 1G)"))?;
    n.checked_mul(1usize << shift)
        .filter(|&n| n as u64 <= MAX_BYTE_SIZE)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parse a duration in whole seconds: a number with an optional s, m, h or d
/// suffix (seconds, minutes, hours, days).
pub fn parse_secs(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let unit = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => {
                    return Err(format!(
                        "unknown duration suffix {c:?} in {s:?}: use s, m, h or d"
                    ));
                }
            };
            (&s[..i], unit)
        }
        _ => (s, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90, 5s, 10m, 1h, 30d)"))?;
    n.checked_mul(unit)
        .filter(|&n| n <= MAX_DURATION_SECS)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Serde `deserialize_with` for a byte-size field of any unsigned integer
/// type: accepts an integer (`65536`) or a string with a K, M or G suffix
/// (`"64K"`). A size that does not fit the field is an error naming its limit.
pub fn de_bytes<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + Bounded,
{
    deserializer.deserialize_any(BytesVisitor(PhantomData))
}

/// [`de_bytes`] for an optional field (with the struct's `default`, an
/// absent key stays `None`).
pub fn de_opt_bytes<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + Bounded,
{
    de_bytes(deserializer).map(Some)
}

/// The largest value of an unsigned integer type, for error messages.
pub trait Bounded {
    const MAX_U64: u64;
}

impl Bounded for u32 {
    const MAX_U64: u64 = u32::MAX as u64;
}

impl Bounded for u64 {
    const MAX_U64: u64 = u64::MAX;
}

impl Bounded for usize {
    const MAX_U64: u64 = usize::MAX as u64;
}

struct BytesVisitor<T>(PhantomData<T>);

impl<T: TryFrom<u64> + Bounded> BytesVisitor<T> {
    fn fit<E: de::Error>(n: u64) -> Result<T, E> {
        let max = T::MAX_U64.min(MAX_BYTE_SIZE);
        if n > max {
            return Err(E::custom(format!(
                "{n} bytes is too large for this setting (at most {max})"
            )));
        }
        T::try_from(n).map_err(|_| E::custom(format!("{n} bytes does not fit this setting")))
    }
}

impl<T: TryFrom<u64> + Bounded> Visitor<'_> for BytesVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte size: an integer or a string like \"64K\", \"128M\", \"1G\"")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        Self::fit(n)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        let n = u64::try_from(n)
            .map_err(|_| E::custom(format!("{n} is negative: a byte size is at least 0")))?;
        Self::fit(n)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        Self::fit(parse_bytes(s).map_err(E::custom)? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("128m"), Ok(128 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert!(parse_bytes("12X").unwrap_err().contains("suffix"));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
        // 2^63 bytes does not fit a TOML integer.
        assert!(
            parse_bytes("8589934592G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations_parse_with_unit_suffixes() {
        assert_eq!(parse_secs("90"), Ok(90));
        assert_eq!(parse_secs("5s"), Ok(5));
        assert_eq!(parse_secs("10m"), Ok(600));
        assert_eq!(parse_secs("1h"), Ok(3600));
        assert_eq!(parse_secs("30D"), Ok(30 * 86_400));
        assert!(parse_secs("2w").unwrap_err().contains("suffix"));
        assert!(parse_secs("h").is_err());
        assert!(parse_secs("-1s").is_err());
        assert!(
            parse_secs("9223372036854775807d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[derive(Debug, serde::Deserialize)]
    struct Sizes {
        #[serde(deserialize_with = "de_bytes")]
        small: u32,
        #[serde(deserialize_with = "de_bytes")]
        big: usize,
    }

    fn sizes(text: &str) -> Result<Sizes, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn config_sizes_are_integers_or_suffixed_strings() {
        let s = sizes("small = 4096\nbig = \"128M\"").expect("valid");
        assert_eq!((s.small, s.big), (4096, 128 << 20));
        let s = sizes("small = \"3G\"\nbig = 0").expect("valid");
        assert_eq!((s.small, s.big), (3 << 30, 0));
    }

    #[test]
    fn config_sizes_out_of_range_or_malformed_say_why() {
        // 4 GiB is one more than u32::MAX.
        let e = sizes("small = \"4G\"\nbig = 1").unwrap_err();
        assert!(e.contains("at most 4294967295"), "{e}");
        let e = sizes("small = -1\nbig = 1").unwrap_err();
        assert!(e.contains("negative"), "{e}");
        let e = sizes("small = \"12X\"\nbig = 1").unwrap_err();
        assert!(e.contains("suffix"), "{e}");
        let e = sizes("small = true\nbig = 1").unwrap_err();
        assert!(e.contains("byte size"), "{e}");
    }
}
