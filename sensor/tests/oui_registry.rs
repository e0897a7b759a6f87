//! The embedded vendor table (`spanwatch::device::oui`) against the IEEE
//! registry as Debian's ieee-data package installs it in /usr/share/ieee-data
//! (MA-L oui.csv, MA-M mam.csv, MA-S oui36.csv, IAB iab.csv), read here
//! directly rather than through the embedded file: for every distinct MAC
//! address tshark finds in the shared captures, and for the first and last
//! address of every block in the registry.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use spanwatch::device::oui::vendor;

const IEEE_DATA: &str = "/usr/share/ieee-data";
/// (file, registry, hex digits of its prefixes).
const REGISTRIES: [(&str, &str, usize); 4] = [
    ("oui.csv", "MA-L", 6),
    ("mam.csv", "MA-M", 7),
    ("oui36.csv", "MA-S", 9),
    ("iab.csv", "IAB", 9),
];

/// Every name the registry lists for each prefix (upper-case hex); a few old
/// MA-L prefixes are listed more than once.
struct Registry {
    names: HashMap<String, Vec<String>>,
}

impl Registry {
    fn load() -> Registry {
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        for (file, registry, digits) in REGISTRIES {
            let path = Path::new(IEEE_DATA).join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (install ieee-data: bash .ci/deps)", path.display())
            });
            let records = csv_records(&text);
            assert_eq!(
                records[0][..3],
                ["Registry", "Assignment", "Organization Name"],
                "{file} header"
            );
            for record in &records[1..] {
                assert_eq!(record[0], registry, "{file}: {record:?}");
                assert_eq!(record[1].len(), digits, "{file}: {record:?}");
                let name = record[2].split_whitespace().collect::<Vec<_>>().join(" ");
                names
                    .entry(record[1].to_ascii_uppercase())
                    .or_default()
                    .push(name);
            }
        }
        Registry { names }
    }

    /// The names the registry gives `mac`'s longest matching block; empty for
    /// group and locally administered addresses (IEEE Std 802-2014, clause
    /// 8.2: bits 0 and 1 of the first octet) and unassigned blocks.
    fn expected(&self, mac: [u8; 6]) -> &[String] {
        if mac[0] & 0b11 != 0 {
            return &[];
        }
        let hex: String = mac.iter().map(|b| format!("{b:02X}")).collect();
        [9, 7, 6]
            .iter()
            .find_map(|digits| self.names.get(&hex[..*digits]))
            .map_or(&[], Vec::as_slice)
    }

    /// Checks one address and says what disagrees.
    fn check(&self, mac: [u8; 6]) -> Result<(), String> {
        let expected = self.expected(mac);
        let ours = vendor(mac);
        let agrees = match ours {
            None => expected.is_empty(),
            Some(name) => expected.iter().any(|e| e == name),
        };
        if agrees {
            Ok(())
        } else {
            Err(format!(
                "{}: table says {ours:?}, registry says {expected:?}",
                mac_text(mac)
            ))
        }
    }
}

/// Records of an RFC 4180 CSV text: fields separated by commas, optionally
/// in double quotes (a quote inside doubled), records ended by CRLF or LF.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

fn parse_mac(text: &str) -> [u8; 6] {
    let octets: Vec<u8> = text
        .split(':')
        .map(|o| u8::from_str_radix(o, 16).unwrap_or_else(|e| panic!("{text:?}: {e}")))
        .collect();
    octets
        .try_into()
        .unwrap_or_else(|_| panic!("{text:?} is not six octets"))
}

/// The registry date the embedded table records, and the one of the
/// installed ieee-data: comparing tables of different dates would report
/// every change in between as an error.
#[test]
fn table_and_installed_registry_have_the_same_date() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/device/oui/registry.txt");
    let table = std::fs::read_to_string(&table).expect("registry.txt");
    let ours = table
        .lines()
        .find_map(|l| l.strip_prefix("# Registry date: "))
        .and_then(|l| l.get(..10))
        .expect("registry.txt has a Registry date line");
    let stamp = Path::new(IEEE_DATA).join(".lastupdate");
    let seconds = std::fs::read_to_string(&stamp)
        .unwrap_or_else(|e| panic!("{}: {e} (install ieee-data)", stamp.display()));
    let out = Command::new("date")
        .args(["-u", "+%F", "-d"])
        .arg(format!("@{}", seconds.trim()))
        .output()
        .expect("run date");
    let installed = String::from_utf8(out.stdout).expect("date prints ASCII");
    assert_eq!(
        ours,
        installed.trim(),
        "the embedded table and the installed ieee-data differ in date: \
         run sensor/src/device/oui/refresh.py (see its README)"
    );
}

#[test]
fn every_mac_in_the_shared_captures_gets_the_registry_vendor() {
    let registry = Registry::load();
    let mut macs = BTreeSet::new();
    let mut files_with_ethernet = 0;
    for row in common::manifest() {
        // A damaged capture makes tshark exit 2 after printing the frames
        // before the damage; those addresses count all the same.
        let text = common::tshark(
            &row.file(),
            &["-T", "fields", "-e", "eth.src", "-e", "eth.dst"],
        );
        let mut found = false;
        for field in text.split(['\t', '\n', ',']).filter(|f| !f.is_empty()) {
            macs.insert(parse_mac(field));
            found = true;
        }
        files_with_ethernet += usize::from(found);
    }
    let errors: Vec<String> = macs
        .iter()
        .filter_map(|m| registry.check(*m).err())
        .collect();
    assert!(
        errors.is_empty(),
        "{} disagreements:\n{}",
        errors.len(),
        errors.join("\n")
    );
    let named = macs.iter().filter(|m| vendor(**m).is_some()).count();
    assert!(
        files_with_ethernet >= 50 && macs.len() >= 100 && named >= 50,
        "too little checked: {} MACs ({named} with a vendor) in {files_with_ethernet} captures",
        macs.len()
    );
}

#[test]
fn first_and_last_address_of_every_registry_block_get_its_vendor() {
    let registry = Registry::load();
    let mut checked = 0;
    let mut errors = Vec::new();
    for prefix in registry.names.keys() {
        for fill in ["0", "F"] {
            let hex = format!("{prefix}{}", fill.repeat(12 - prefix.len()));
            let value = u64::from_str_radix(&hex, 16).expect("hex prefix");
            let [_, _, a, b, c, d, e, f] = value.to_be_bytes();
            if let Err(error) = registry.check([a, b, c, d, e, f]) {
                errors.push(error);
            }
            checked += 1;
        }
    }
    assert!(
        errors.is_empty(),
        "{} disagreements:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(checked > 80_000, "only {checked} addresses checked");
}
