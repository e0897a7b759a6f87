//! The attack phases of a labelled capture (`labels.csv` of the lab
//! generator, `datasets/README.md`): windows that overlap one are not normal
//! traffic and are left out of training.

use std::path::{Path, PathBuf};

use crate::capture::Timestamp;

/// Largest labels file read, in bytes.
pub const MAX_LABELS_BYTES: u64 = 1 << 20;

/// A labels file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("cannot read labels {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("labels {}, line {line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        problem: &'static str,
    },
}

/// One labelled phase: its name and time span (both ends included).
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// The phases of one capture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Phases(pub Vec<Phase>);

fn epoch(text: &str) -> Option<Timestamp> {
    let secs: f64 = text.trim().parse().ok()?;
    secs.is_finite()
        .then(|| Timestamp((secs * Timestamp::NANOS_PER_SEC as f64).round() as i64))
}

impl Phases {
    /// Reads `start_epoch,end_epoch,phase,...` rows after the header.
    pub fn load(path: &Path) -> Result<Phases, LabelError> {
        let read = |source| LabelError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.len() > MAX_LABELS_BYTES {
            return Err(LabelError::Line {
                path: path.to_path_buf(),
                line: 1,
                problem: "the file is larger than MAX_LABELS_BYTES",
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Phases, LabelError> {
        let mut phases = Vec::new();
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.starts_with("start_epoch,end_epoch,phase") => {}
            _ => {
                return Err(LabelError::Line {
                    path: path.to_path_buf(),
                    line: 1,
                    problem: "the header is not start_epoch,end_epoch,phase,...",
                });
            }
        }
        for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |problem| LabelError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                problem,
            };
            let mut cells = line.splitn(4, ',');
            let start = cells
                .next()
                .and_then(epoch)
                .ok_or_else(|| bad("bad start_epoch"))?;
            let end = cells
                .next()
                .and_then(epoch)
                .ok_or_else(|| bad("bad end_epoch"))?;
            let name = cells
                .next()
                .ok_or_else(|| bad("no phase"))?
                .trim()
                .to_string();
            if end < start {
                return Err(bad("end_epoch is before start_epoch"));
            }
            phases.push(Phase { name, start, end });
        }
        Ok(Phases(phases))
    }

    /// Whether the window `[start, end)` overlaps a phase.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.0.iter().any(|p| start <= p.end && p.start < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: &str = "start_epoch,end_epoch,phase,attacker_ip,target_ips,tool,notes\n\
        100.5,110.250,mqtt_bruteforce,10.0.0.66,\"10.0.0.10\",\"mosquitto_pub\",\"x, y\"\n\
        200,205,device_silent,,\"10.0.0.21\",\"none\",\"\"\n";

    fn t(secs: f64) -> Timestamp {
        Timestamp((secs * 1e9) as i64)
    }

    #[test]
    fn windows_overlapping_a_phase_are_found() {
        let p = Phases::parse(Path::new("labels.csv"), LABELS).expect("valid");
        assert_eq!(p.0.len(), 2);
        assert_eq!(p.0[0].name, "mqtt_bruteforce");
        assert!(!p.overlaps(t(90.0), t(100.5)));
        assert!(p.overlaps(t(100.0), t(110.0)));
        assert!(p.overlaps(t(110.0), t(120.0)));
        assert!(!p.overlaps(t(110.26), t(120.0)));
        assert!(p.overlaps(t(199.0), t(209.0)));
    }

    #[test]
    fn bad_files_say_where() {
        let e = Phases::parse(Path::new("l.csv"), "a,b\n").expect_err("header");
        assert!(e.to_string().contains("line 1"));
        let e = Phases::parse(Path::new("l.csv"), "start_epoch,end_epoch,phase\n5,4,x\n")
            .expect_err("reversed");
        assert!(e.to_string().contains("line 2") && e.to_string().contains("before"));
        let e = Phases::parse(Path::new("l.csv"), "start_epoch,end_epoch,phase\nx,4,p\n")
            .expect_err("not a number");
        assert!(e.to_string().contains("start_epoch"));
    }
}
