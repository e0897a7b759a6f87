//! The lab's labels (`labels.csv`, described in `datasets/README.md`): one
//! row per attack phase with its time span, attacker and targets. The one
//! reader of the file for every tool: a dataset window gets the phase it
//! overlaps and its device's role in that phase, training leaves out every
//! window that overlaps a phase, and `eval` judges alerts against them.
//!
//! A window `[start, end)` overlaps a phase when it intersects
//! `[start_epoch, end_epoch]`. A device is the phase's attacker when one of
//! its addresses (as the inventory knows them when the window closes) is
//! `attacker_ip`, a target when one is in `target_ips` (`;`-separated
//! addresses or subnets); attacker wins. When a window overlaps several
//! phases, the one where the device has the stronger role wins (attacker,
//! then target, then none), then the longer overlap, then the earlier phase.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::capture::Timestamp;
use crate::device::inventory::Device;
use crate::device::zone::Cidr;

/// Largest labels file read.
pub const MAX_LABELS_BYTES: u64 = 16 << 20;
/// Most phases read.
pub const MAX_PHASES: usize = 100_000;
/// Longest phase name kept, in bytes.
pub const MAX_PHASE_BYTES: usize = 128;
/// Most addresses or subnets in one `target_ips` cell.
pub const MAX_TARGETS: usize = 256;

/// A labels file could not be read: what is wrong and where (line 0: the
/// file as a whole).
#[derive(Debug, thiserror::Error)]
#[error("labels {}, line {line}: {reason}", path.display())]
pub struct LabelsError {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// A device's part in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabelRole {
    Target,
    Attacker,
}

impl LabelRole {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelRole::Attacker => "attacker",
            LabelRole::Target => "target",
        }
    }
}

/// One row of labels.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Both inclusive.
    pub start: Timestamp,
    pub end: Timestamp,
    pub name: String,
    pub attacker: Option<IpAddr>,
    pub targets: Vec<Cidr>,
}

impl Phase {
    fn role_of(&self, device: &Device) -> Option<LabelRole> {
        let ips = || device.ips.iter().map(|s| s.ip.to_canonical());
        if self.attacker.is_some_and(|a| ips().any(|ip| ip == a)) {
            Some(LabelRole::Attacker)
        } else if ips().any(|ip| self.targets.iter().any(|t| t.contains(ip))) {
            Some(LabelRole::Target)
        } else {
            None
        }
    }
}

/// The phases of a labels file, in file order.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    phases: Vec<Phase>,
}

impl Labels {
    pub fn load(path: &Path) -> Result<Labels, LabelsError> {
        let fail = |(line, reason)| LabelsError {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let text = read_bounded(path).map_err(fail)?;
        Labels::parse(&text).map_err(fail)
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Parse labels.csv text; an error is (line, reason).
    pub fn parse(text: &str) -> Result<Labels, (usize, String)> {
        let records = csv_records(text)?;
        let mut rows = records.into_iter();
        let Some((_, header)) = rows.next() else {
            return Err((1, "empty file: expected the header start_epoch,end_epoch,phase,attacker_ip,target_ips,...".into()));
        };
        let col = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                (
                    1,
                    format!("no `{name}` column in the header (labels.csv needs start_epoch, end_epoch, phase, attacker_ip, target_ips)"),
                )
            })
        };
        let c = [
            col("start_epoch")?,
            col("end_epoch")?,
            col("phase")?,
            col("attacker_ip")?,
            col("target_ips")?,
        ];
        let mut phases = Vec::new();
        for (line, row) in rows {
            if row.len() == 1 && row[0].is_empty() {
                continue;
            }
            if phases.len() >= MAX_PHASES {
                return Err((line, format!("more than {MAX_PHASES} phases")));
            }
            let cell = |i: usize| {
                row.get(c[i]).map(|s| s.trim()).ok_or_else(|| {
                    (
                        line,
                        format!("{} fields, the header has {}", row.len(), header.len()),
                    )
                })
            };
            let time = |i: usize, what: &str| -> Result<Timestamp, (usize, String)> {
                let text = cell(i)?;
                epoch_nanos(text).map(Timestamp).ok_or_else(|| {
                    (
                        line,
                        format!(
                            "{what} {text:?} is not a Unix time in seconds (e.g. 1795444182.206)"
                        ),
                    )
                })
            };
            let (start, end) = (time(0, "start_epoch")?, time(1, "end_epoch")?);
            if end < start {
                return Err((line, "end_epoch is before start_epoch".into()));
            }
            let name = cell(2)?;
            if name.is_empty() || name.len() > MAX_PHASE_BYTES {
                return Err((
                    line,
                    format!("the phase name must have 1 to {MAX_PHASE_BYTES} bytes"),
                ));
            }
            let attacker = match cell(3)? {
                "" => None,
                text => Some(
                    text.parse::<IpAddr>()
                        .map_err(|_| (line, format!("attacker_ip {text:?} is not an IP address")))?
                        .to_canonical(),
                ),
            };
            let targets = targets(cell(4)?).map_err(|reason| (line, reason))?;
            phases.push(Phase {
                start,
                end,
                name: name.to_string(),
                attacker,
                targets,
            });
        }
        Ok(Labels { phases })
    }

    /// Whether the window `[start, end)` overlaps a phase.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.label(start, end, None).is_some()
    }

    /// The phase a window of `device` overlaps, and the device's role in it.
    pub fn label(
        &self,
        start: Timestamp,
        end: Timestamp,
        device: Option<&Device>,
    ) -> Option<(&str, Option<LabelRole>)> {
        self.phases
            .iter()
            .enumerate()
            .filter(|(_, p)| start <= p.end && p.start < end)
            .map(|(i, p)| {
                let role = device.and_then(|d| p.role_of(d));
                let overlap = p.end.min(end).0 - p.start.max(start).0;
                // Largest key wins: role, overlap, then the earlier phase.
                ((role, overlap, std::cmp::Reverse(i)), p, role)
            })
            .max_by_key(|(key, _, _)| *key)
            .map(|(_, p, role)| (p.name.as_str(), role))
    }
}

/// The file's text, at most MAX_LABELS_BYTES of it; an error is (0, reason).
fn read_bounded(path: &Path) -> Result<String, (usize, String)> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| (0, e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_LABELS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| (0, e.to_string()))?;
    if text.len() as u64 > MAX_LABELS_BYTES {
        return Err((0, format!("larger than {MAX_LABELS_BYTES} bytes")));
    }
    Ok(text)
}

/// Unix time in seconds with up to nine decimals, exactly, in nanoseconds
/// (a float would round the milliseconds of today's times).
fn epoch_nanos(text: &str) -> Option<i64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !(frac.is_empty() || digits(frac) && frac.len() <= 9) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32)
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// `target_ips`: `;`-separated addresses or subnets (possibly none).
fn targets(text: &str) -> Result<Vec<Cidr>, String> {
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        if out.len() >= MAX_TARGETS {
            return Err(format!("more than {MAX_TARGETS} targets"));
        }
        let cidr = if part.contains('/') {
            part.parse::<Cidr>()
                .map_err(|e| format!("target_ips: {e}"))?
        } else {
            let ip: IpAddr = part
                .parse()
                .map_err(|_| format!("target_ips: {part:?} is not an IP address or subnet"))?;
            let ip = ip.to_canonical();
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            format!("{ip}/{bits}")
                .parse::<Cidr>()
                .map_err(|e| format!("target_ips: {e}"))?
        };
        out.push(cidr);
    }
    Ok(out)
}

/// A CSV record and the line it starts on.
type Record = (usize, Vec<String>);

/// The records of CSV text (RFC 4180: fields in double quotes may hold
/// commas, line breaks and doubled quotes).
fn csv_records(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut record)));
                line += 1;
                record_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err((record_line, "a quoted field is not closed".into()));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((record_line, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "start_epoch,end_epoch,phase,attacker_ip,target_ips,tool,notes\n";

    #[test]
    fn rows_parse_with_quoted_fields_subnets_and_an_empty_attacker() {
        let text = format!(
            "{HEADER}1795444182.206,1795444221.350,recon_nmap_syn_scan,10.77.0.66,\"10.77.0.0/24\",\"nmap\",\"a, b \"\"quoted\"\"\nsecond line\"\n\
             1795844176.127,1795844182.044,device_silent,,\"10.77.0.33\",,\"\"\n"
        );
        let labels = Labels::parse(&text).expect("valid");
        let p = labels.phases();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "recon_nmap_syn_scan");
        assert_eq!(p[0].start, Timestamp(1_795_444_182_206_000_000));
        assert_eq!(p[0].end, Timestamp(1_795_444_221_350_000_000));
        assert_eq!(p[0].attacker, Some("10.77.0.66".parse().expect("ip")));
        assert!(p[0].targets[0].contains("10.77.0.200".parse().expect("ip")));
        assert_eq!(p[1].attacker, None);
        assert!(p[1].targets[0].contains("10.77.0.33".parse().expect("ip")));
        assert!(!p[1].targets[0].contains("10.77.0.34".parse().expect("ip")));
    }

    #[test]
    fn bad_rows_name_their_line_and_field() {
        let e = Labels::parse(&format!("{HEADER}x,2,p,10.0.0.1,10.0.0.2,t,n\n")).unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("start_epoch \"x\""), "{e:?}");
        for bad in ["1e9", "-1", ".5", "1.0000000001", "99999999999999999999"] {
            let e = Labels::parse(&format!("{HEADER}{bad},2,p,,,t,n\n")).unwrap_err();
            assert!(e.1.contains("start_epoch"), "{bad}: {e:?}");
        }
        let e = Labels::parse(&format!("{HEADER}1,2,p,10.0.0.300,,t,n\n")).unwrap_err();
        assert!(e.1.contains("attacker_ip"), "{e:?}");
        let e = Labels::parse(&format!("{HEADER}1,2,p,,10.0.0.0/40,t,n\n")).unwrap_err();
        assert!(e.1.contains("target_ips"), "{e:?}");
        let e = Labels::parse(&format!("{HEADER}1,2,p,,\"open\n")).unwrap_err();
        assert!(e.1.contains("not closed"), "{e:?}");
        let e = Labels::parse("start,end\n").unwrap_err();
        assert!(e.1.contains("start_epoch"), "{e:?}");
        let e = Labels::parse(&format!("{HEADER}3,2,p,,,t,n\n")).unwrap_err();
        assert!(e.1.contains("before"), "{e:?}");
    }

    fn t(secs: f64) -> Timestamp {
        Timestamp((secs * 1e9) as i64)
    }

    #[test]
    fn windows_overlapping_a_phase_are_found() {
        let text = format!(
            "{HEADER}100.5,110.250,mqtt_bruteforce,10.0.0.66,\"10.0.0.10\",\"mosquitto_pub\",\"x, y\"\n\
             200,205,device_silent,,\"10.0.0.21\",\"none\",\"\"\n"
        );
        let p = Labels::parse(&text).expect("valid");
        assert_eq!(p.phases().len(), 2);
        assert_eq!(p.phases()[0].name, "mqtt_bruteforce");
        assert!(!p.overlaps(t(90.0), t(100.5)));
        assert!(p.overlaps(t(100.0), t(110.0)));
        assert!(p.overlaps(t(110.0), t(120.0)));
        assert!(!p.overlaps(t(110.26), t(120.0)));
        assert!(p.overlaps(t(199.0), t(209.0)));
    }

    #[test]
    fn bad_files_say_where() {
        let dir = std::env::temp_dir().join(format!("swlabels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("l.csv");
        let load = |text: &str| {
            std::fs::write(&path, text).expect("write labels");
            Labels::load(&path).expect_err("invalid").to_string()
        };
        let header = load("a,b\n");
        let reversed = load(&format!("{HEADER}5,4,x,,,t,n\n"));
        let not_a_number = load(&format!("{HEADER}x,4,p,,,t,n\n"));
        std::fs::remove_dir_all(&dir).expect("remove temp dir");
        assert!(header.contains("l.csv, line 1:"), "{header}");
        assert!(
            reversed.contains("l.csv, line 2:") && reversed.contains("before"),
            "{reversed}"
        );
        assert!(not_a_number.contains("start_epoch"), "{not_a_number}");
    }

    fn device(ip: &str) -> Device {
        let mut inv = crate::device::inventory::Inventory::new(4, Vec::new());
        let mac = [2, 0, 0, 0, 0, 1];
        inv.sent_from(mac, ip.parse().expect("ip"), Timestamp(0));
        inv.get(&mac).expect("device").clone()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs_nanos(secs, 0)
    }

    #[test]
    fn a_window_gets_the_phase_it_overlaps_and_the_device_role() {
        // Phase a: [100, 104.5] by .66 on .10; phase b: [107, 120] by .66
        // on the /24.
        let text = format!(
            "{HEADER}100,104.5,a,10.77.0.66,10.77.0.10,t,n\n107,120,b,10.77.0.66,10.77.0.0/24,t,n\n"
        );
        let labels = Labels::parse(&text).expect("valid");
        let (atk, broker, other) = (
            device("10.77.0.66"),
            device("10.77.0.10"),
            device("10.77.0.21"),
        );
        // [90, 100) touches nothing: a ends are inclusive, window ends are not.
        assert_eq!(labels.label(at(90), at(100), Some(&atk)), None);
        // [104.5, 105) touches a's end.
        assert_eq!(
            labels
                .label(Timestamp(104_500_000_000), at(105), Some(&atk))
                .map(|l| l.0),
            Some("a")
        );
        // [100, 110): a overlaps 4.5 s, b 3 s; the broker is a target of both
        // (b's subnet holds it), so the longer overlap wins.
        assert_eq!(
            labels.label(at(100), at(110), Some(&broker)),
            Some(("a", Some(LabelRole::Target)))
        );
        // .21 is a target only in b: its role decides.
        assert_eq!(
            labels.label(at(100), at(110), Some(&other)),
            Some(("b", Some(LabelRole::Target)))
        );
        assert_eq!(
            labels.label(at(100), at(110), Some(&atk)),
            Some(("a", Some(LabelRole::Attacker)))
        );
        // A device unknown to the inventory: the phase, no role.
        assert_eq!(labels.label(at(110), at(120), None), Some(("b", None)));
    }
}
