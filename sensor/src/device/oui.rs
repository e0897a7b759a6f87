//! Vendor names from the IEEE Registration Authority's MAC address registry.
//!
//! A universally administered MAC address begins with a block the IEEE
//! assigned to an organisation: an MA-L (24-bit prefix, the classic OUI), an
//! MA-M (28-bit) or an MA-S (36-bit; the legacy IAB blocks are 36-bit too).
//! Smaller blocks are carved out of MA-Ls the IEEE holds itself, so the
//! holder is the one of the longest matching prefix. The first octet's two
//! low bits (IEEE Std 802-2014, clause 8.2) mark group addresses (I/G) and
//! locally administered ones (U/L, which includes randomised addresses); no
//! vendor is named for either.
//!
//! The table is `oui/registry.txt`, built by `oui/refresh.py` from the IEEE's
//! CSV listings; `oui/README.md` gives its date, licence and format. It is
//! embedded in the binary and parsed once, on the first lookup, into sorted
//! arrays searched by binary search; a lookup does not allocate.

use std::sync::OnceLock;

use thiserror::Error;

/// The embedded registry: header lines starting with `#`, then one
/// `PREFIX NAME` line per assignment, sorted.
const REGISTRY: &str = include_str!("oui/registry.txt");

/// First-octet bit of group (multicast and broadcast) addresses.
const GROUP_BIT: u8 = 0x01;
/// First-octet bit of locally administered addresses.
const LOCAL_BIT: u8 = 0x02;

/// Bits in a MAC address.
const MAC_BITS: u32 = 48;
/// Prefix lengths of the block sizes, longest first: MA-S and IAB, MA-M, MA-L.
const PREFIX_BITS: [u32; 3] = [36, 28, 24];

/// The organisation the IEEE registry names for `mac`'s block: the longest
/// matching MA-S/IAB, MA-M or MA-L assignment. `None` for group and locally
/// administered addresses and for blocks with no assignment. Holders that
/// asked for anonymity are named `Private`, as in the registry.
pub fn vendor(mac: [u8; 6]) -> Option<&'static str> {
    if mac[0] & (GROUP_BIT | LOCAL_BIT) != 0 {
        return None;
    }
    embedded().ok()?.lookup(mac)
}

/// The embedded table, parsed on first use. A malformed table (which the
/// unit test `embedded_table_is_well_formed` rules out before a release)
/// would make every lookup answer `None`.
fn embedded() -> Result<&'static Table, &'static TableError> {
    static TABLE: OnceLock<Result<Table, TableError>> = OnceLock::new();
    TABLE.get_or_init(|| Table::parse(REGISTRY)).as_ref()
}

/// Assignments of one block size, sorted by prefix.
#[derive(Debug, Default)]
struct Blocks {
    prefixes: Vec<u64>,
    names: Vec<&'static str>,
}

/// All assignments, one `Blocks` per entry of `PREFIX_BITS`.
#[derive(Debug, Default)]
struct Table {
    blocks: [Blocks; PREFIX_BITS.len()],
}

/// What is wrong with a line of the vendor table.
#[derive(Debug, PartialEq, Eq, Error)]
enum TableErrorKind {
    #[error("expected `PREFIX NAME`")]
    NoName,
    #[error("prefix {0:?} is not 6, 7 or 9 hex digits")]
    BadPrefix(&'static str),
    #[error("prefix {0} has the group or local bit set, so no address can match it")]
    GroupOrLocal(&'static str),
    #[error("prefix {0} is not above the previous prefix of its length (the table must be sorted)")]
    NotAscending(&'static str),
    #[error("name {0:?} is empty or has surrounding whitespace")]
    BadName(&'static str),
}

/// A malformed line of the vendor table, with its 1-based line number.
#[derive(Debug, PartialEq, Eq, Error)]
#[error("vendor table line {line}: {kind}; rebuild it with oui/refresh.py")]
struct TableError {
    line: usize,
    kind: TableErrorKind,
}

impl Table {
    fn parse(text: &'static str) -> Result<Table, TableError> {
        let mut table = Table::default();
        for (index, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let error = |kind| TableError {
                line: index + 1,
                kind,
            };
            let (hex, name) = line
                .split_once(' ')
                .ok_or_else(|| error(TableErrorKind::NoName))?;
            let slot = PREFIX_BITS
                .iter()
                .position(|bits| hex.len() * 4 == *bits as usize)
                .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| error(TableErrorKind::BadPrefix(hex)))?;
            let prefix =
                u64::from_str_radix(hex, 16).map_err(|_| error(TableErrorKind::BadPrefix(hex)))?;
            let first_octet = prefix >> (PREFIX_BITS[slot] - 8);
            if first_octet & u64::from(GROUP_BIT | LOCAL_BIT) != 0 {
                return Err(error(TableErrorKind::GroupOrLocal(hex)));
            }
            if name.is_empty() || name.trim() != name {
                return Err(error(TableErrorKind::BadName(name)));
            }
            let blocks = &mut table.blocks[slot];
            if blocks.prefixes.last().is_some_and(|last| *last >= prefix) {
                return Err(error(TableErrorKind::NotAscending(hex)));
            }
            blocks.prefixes.push(prefix);
            blocks.names.push(name);
        }
        Ok(table)
    }

    fn lookup(&self, mac: [u8; 6]) -> Option<&'static str> {
        let [a, b, c, d, e, f] = mac;
        let address = u64::from_be_bytes([0, 0, a, b, c, d, e, f]);
        PREFIX_BITS
            .iter()
            .zip(&self.blocks)
            .find_map(|(bits, blocks)| {
                let key = address >> (MAC_BITS - bits);
                let at = blocks.prefixes.binary_search(&key).ok()?;
                Some(blocks.names[at])
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected names are those of the IEEE registry dated 2022-08-27 (Debian
    // ieee-data 20220827.1), looked up by hand in /usr/share/ieee-data; the
    // comment on each gives the file and line.

    #[test]
    fn embedded_table_is_well_formed() {
        let table = embedded().expect("embedded registry parses");
        // refresh.py writes the per-registry row counts it kept into the
        // header; the parser must have kept every one of them.
        let entries = REGISTRY
            .lines()
            .find_map(|l| l.strip_prefix("# Entries: "))
            .expect("header has an Entries line");
        let count = |registry: &str| -> usize {
            let at = entries.find(&format!("{registry} ")).expect(registry) + registry.len() + 1;
            let digits: String = entries[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().expect("a count")
        };
        let sizes: Vec<usize> = table.blocks.iter().map(|b| b.prefixes.len()).collect();
        assert_eq!(
            sizes,
            [count("MA-S") + count("IAB"), count("MA-M"), count("MA-L")]
        );
        assert!(
            sizes.iter().all(|n| *n > 1000),
            "suspiciously few: {sizes:?}"
        );
    }

    #[test]
    fn ma_l_assignments() {
        // oui.csv:1863 MA-L,00000C,"Cisco Systems, Inc"
        assert_eq!(
            vendor([0x00, 0x00, 0x0C, 0x12, 0x34, 0x56]),
            Some("Cisco Systems, Inc")
        );
        // oui.csv:28616 MA-L,B827EB,Raspberry Pi Foundation
        assert_eq!(
            vendor([0xB8, 0x27, 0xEB, 0x00, 0x00, 0x00]),
            Some("Raspberry Pi Foundation")
        );
        // oui.csv:91 MA-L,DCA632,Raspberry Pi Trading Ltd
        assert_eq!(
            vendor([0xDC, 0xA6, 0x32, 0xFF, 0xFF, 0xFF]),
            Some("Raspberry Pi Trading Ltd")
        );
    }

    #[test]
    fn ma_m_assignment_and_its_edges() {
        // mam.csv:3726 MA-M,741AE03,Philips Personal Health Solutions
        // mam.csv:233  MA-M,741AE04,Revl Inc.
        assert_eq!(
            vendor([0x74, 0x1A, 0xE0, 0x30, 0x00, 0x00]),
            Some("Philips Personal Health Solutions")
        );
        assert_eq!(
            vendor([0x74, 0x1A, 0xE0, 0x3F, 0xFF, 0xFF]),
            Some("Philips Personal Health Solutions")
        );
        assert_eq!(
            vendor([0x74, 0x1A, 0xE0, 0x40, 0x00, 0x00]),
            Some("Revl Inc.")
        );
    }

    #[test]
    fn ma_s_and_iab_assignments_and_edges() {
        // oui36.csv:4161 MA-S,70B3D5F21,dds
        // oui36.csv:1145 MA-S,70B3D5F22,Shengli Financial Software Development
        assert_eq!(vendor([0x70, 0xB3, 0xD5, 0xF2, 0x1F, 0xFF]), Some("dds"));
        assert_eq!(
            vendor([0x70, 0xB3, 0xD5, 0xF2, 0x20, 0x00]),
            Some("Shengli Financial Software Development")
        );
        // iab.csv:2 IAB,0050C27D5,DEUTA-WERKE GmbH
        assert_eq!(
            vendor([0x00, 0x50, 0xC2, 0x7D, 0x5A, 0xBC]),
            Some("DEUTA-WERKE GmbH")
        );
    }

    #[test]
    fn ma_l_with_ma_m_sub_assignments_falls_back_to_the_ma_l() {
        // oui.csv:7184 MA-L,741AE0,IEEE Registration Authority; mam.csv has
        // 741AE00 to 741AE0E but no 741AE0F.
        assert_eq!(
            vendor([0x74, 0x1A, 0xE0, 0xF0, 0x00, 0x01]),
            Some("IEEE Registration Authority")
        );
        // mam.csv:1 MA-M,741AE09,Private (a holder that asked for anonymity)
        assert_eq!(
            vendor([0x74, 0x1A, 0xE0, 0x90, 0x00, 0x00]),
            Some("Private")
        );
    }

    #[test]
    fn unassigned_blocks_have_no_vendor() {
        // mam.csv has 1C87740 to 1C8774E; oui.csv has no 1C8774.
        assert_eq!(
            vendor([0x1C, 0x87, 0x74, 0xE0, 0x00, 0x00]),
            Some("Quest Integrity")
        );
        assert_eq!(vendor([0x1C, 0x87, 0x74, 0xF0, 0x00, 0x00]), None);
        // No 00AABB in oui.csv.
        assert_eq!(vendor([0x00, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE]), None);
    }

    #[test]
    fn group_and_locally_administered_addresses_have_no_vendor() {
        // Cisco's 00000C with the group bit: the CDP/VTP multicast address.
        assert_eq!(vendor([0x01, 0x00, 0x0C, 0xCC, 0xCC, 0xCC]), None);
        assert_eq!(vendor([0xFF; 6]), None);
        // IPv4 multicast (RFC 1112) is under IANA's 00005E with the group bit.
        assert_eq!(vendor([0x01, 0x00, 0x5E, 0x00, 0x00, 0x01]), None);
        // Raspberry Pi's B827EB and Cisco's 00000C with the local bit set.
        assert_eq!(vendor([0xBA, 0x27, 0xEB, 0x00, 0x00, 0x01]), None);
        assert_eq!(vendor([0x02, 0x00, 0x0C, 0x12, 0x34, 0x56]), None);
    }

    fn parse_error(text: &'static str) -> TableError {
        Table::parse(text).expect_err("table is malformed")
    }

    #[test]
    fn small_table_longest_match() {
        let table = Table::parse("# header\n000001 A\n0000012 B\n000001234 C\n").expect("parses");
        assert_eq!(table.lookup([0, 0, 1, 0x00, 0, 0]), Some("A"));
        assert_eq!(table.lookup([0, 0, 1, 0x20, 0, 0]), Some("B"));
        assert_eq!(table.lookup([0, 0, 1, 0x23, 0x40, 0]), Some("C"));
        assert_eq!(table.lookup([0, 0, 1, 0x23, 0x50, 0]), Some("B"));
        assert_eq!(table.lookup([0, 0, 2, 0, 0, 0]), None);
    }

    #[test]
    fn malformed_tables_name_the_line_and_fault() {
        assert_eq!(
            parse_error("# h\n000001 A\n000002\n"),
            TableError {
                line: 3,
                kind: TableErrorKind::NoName
            }
        );
        assert_eq!(
            parse_error("00001 A\n").kind,
            TableErrorKind::BadPrefix("00001")
        );
        // from_str_radix alone would accept a sign.
        assert_eq!(
            parse_error("+00001 A\n").kind,
            TableErrorKind::BadPrefix("+00001")
        );
        assert_eq!(
            parse_error("0G0001 A\n").kind,
            TableErrorKind::BadPrefix("0G0001")
        );
        assert_eq!(
            parse_error("020000 A\n").kind,
            TableErrorKind::GroupOrLocal("020000")
        );
        assert_eq!(
            parse_error("0100000 A\n").kind,
            TableErrorKind::GroupOrLocal("0100000")
        );
        assert_eq!(
            parse_error("000002 A\n0000010 B\n000001 C\n"),
            TableError {
                line: 3,
                kind: TableErrorKind::NotAscending("000001")
            }
        );
        assert_eq!(
            parse_error("000001 A\n000001 B\n").kind,
            TableErrorKind::NotAscending("000001")
        );
        assert_eq!(
            parse_error("000001  A\n").kind,
            TableErrorKind::BadName(" A")
        );
        assert_eq!(parse_error("000001 \n").kind, TableErrorKind::BadName(""));
        assert_eq!(
            parse_error("000001 A\n00001 B\n").to_string(),
            "vendor table line 2: prefix \"00001\" is not 6, 7 or 9 hex digits; \
             rebuild it with oui/refresh.py"
        );
    }
}
