//! Capture rewriter that reorders frames as a merging SPAN or mirror port
//! does: a share of the frames arrives 1 to `max_displacement` positions
//! later than sent, across flows and directions, while the record
//! timestamps stay in file order (the k-th record written carries the k-th
//! timestamp read; a port stamps frames as it delivers them).
//!
//! The rewrite is streamed with bounded memory (at most `max_displacement`
//! held frames) and is deterministic: the same input, seed and settings give
//! the same bytes. Frames are written to classic pcap with the input's link
//! type (microsecond timestamps, draft-ietf-opsawg-pcap §4, §5).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::pcap::PcapWriter;
use super::rng::SplitMix64;
use crate::capture::{CaptureError, FileSource, FrameSource, LinkType, Next, Timestamp};

/// Largest displacement accepted, in frames.
pub const MAX_DISPLACEMENT: u32 = 16;

/// How to reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReorderConfig {
    pub seed: u64,
    /// Share of frames delayed, in percent (0..=100).
    pub rate_percent: u32,
    /// Each delayed frame is passed by 1..=`max_displacement` later frames
    /// (uniformly), at most [`MAX_DISPLACEMENT`].
    pub max_displacement: u32,
}

/// What a rewrite did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReorderReport {
    pub frames: u64,
    /// Frames written later than their position in the input.
    pub delayed: u64,
}

/// Why a rewrite failed.
#[derive(Debug, thiserror::Error)]
pub enum ReorderError {
    #[error("reorder: {0}")]
    Config(String),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(
        "{path}: frame {frame} has link type {found:?} but the capture started with {first:?}; a classic pcap holds one link type (split the capture with editcap first)"
    )]
    MixedLinkTypes {
        path: PathBuf,
        frame: u64,
        first: LinkType,
        found: LinkType,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ReorderConfig {
    fn check(&self) -> Result<(), ReorderError> {
        if self.rate_percent > 100 {
            return Err(ReorderError::Config(format!(
                "rate {} % is above 100 %",
                self.rate_percent
            )));
        }
        if !(1..=MAX_DISPLACEMENT).contains(&self.max_displacement) {
            return Err(ReorderError::Config(format!(
                "max displacement {} is outside 1..={MAX_DISPLACEMENT}",
                self.max_displacement
            )));
        }
        Ok(())
    }
}

/// A frame held back: its bytes, original length, and how many more later
/// frames must pass it.
struct Held {
    data: Vec<u8>,
    orig_len: u32,
    remaining: u32,
}

/// Reorders the frames of `input` (pcap or pcapng) into the classic pcap
/// file `output`.
pub fn reorder_capture(
    input: &Path,
    output: &Path,
    cfg: &ReorderConfig,
) -> Result<ReorderReport, ReorderError> {
    cfg.check()?;
    let mut source = FileSource::open(input)?;
    let write_err = |source| ReorderError::Write {
        path: output.to_path_buf(),
        source,
    };
    let mut more = next_frame(&mut source)?;
    let link = if more {
        source.current().link
    } else {
        LinkType::Ethernet
    };
    let file = File::create(output).map_err(write_err)?;
    let mut w = PcapWriter::new(BufWriter::new(file), linktype_number(link)).map_err(write_err)?;
    let mut rng = SplitMix64::new(cfg.seed);
    // Timestamps read and not yet given to a written frame: one per held
    // frame, so never more than `max_displacement + 1`.
    let mut stamps: VecDeque<Timestamp> = VecDeque::new();
    let mut held: Vec<Held> = Vec::with_capacity(cfg.max_displacement as usize);
    let mut report = ReorderReport::default();
    while more {
        let frame = source.current();
        report.frames += 1;
        if frame.link != link {
            return Err(ReorderError::MixedLinkTypes {
                path: input.to_path_buf(),
                frame: report.frames,
                first: link,
                found: frame.link,
            });
        }
        stamps.push_back(frame.ts);
        // Every frame read passes the frames held before it.
        for h in &mut held {
            h.remaining -= 1;
        }
        let delay = held.len() < cfg.max_displacement as usize
            && rng.below(100) < u64::from(cfg.rate_percent);
        if delay {
            report.delayed += 1;
            held.push(Held {
                data: frame.data.to_vec(),
                orig_len: frame.orig_len,
                remaining: rng.range(1, u64::from(cfg.max_displacement)) as u32,
            });
        } else {
            let ts = stamps.pop_front().unwrap_or(frame.ts);
            w.write_truncated(ts, frame.data, frame.orig_len)
                .map_err(write_err)?;
        }
        let mut i = 0;
        while i < held.len() {
            if held[i].remaining == 0 {
                let h = held.remove(i);
                let ts = stamps.pop_front().unwrap_or(frame.ts);
                w.write_truncated(ts, &h.data, h.orig_len)
                    .map_err(write_err)?;
            } else {
                i += 1;
            }
        }
        more = next_frame(&mut source)?;
    }
    for (h, ts) in held.iter().zip(stamps) {
        w.write_truncated(ts, &h.data, h.orig_len)
            .map_err(write_err)?;
    }
    w.into_inner()
        .and_then(|mut out| out.flush())
        .map_err(write_err)?;
    Ok(report)
}

/// Moves `source` to its next frame; false at the end.
fn next_frame(source: &mut FileSource) -> Result<bool, CaptureError> {
    loop {
        match source.advance()? {
            Next::Frame => return Ok(true),
            Next::Idle => continue,
            Next::End => return Ok(false),
        }
    }
}

/// The LINKTYPE_ number written for `link` (tcpdump.org/linktypes.html).
fn linktype_number(link: LinkType) -> u32 {
    match link {
        LinkType::Null => 0,
        LinkType::Ethernet => 1,
        LinkType::Raw => 101,
        LinkType::Loop => 108,
        LinkType::LinuxSll => 113,
        LinkType::Ieee80211Radiotap => 127,
        LinkType::Ipv4 => 228,
        LinkType::Ipv6 => 229,
        LinkType::LinuxSll2 => 276,
        LinkType::Other(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::LINKTYPE_ETHERNET;

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("spanwatch-reorder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Writes `n` 60-byte frames whose first 4 bytes number them, 1 ms apart.
    fn numbered_capture(path: &Path, n: u32) {
        let file = BufWriter::new(File::create(path).unwrap());
        let mut w = PcapWriter::new(file, LINKTYPE_ETHERNET).unwrap();
        for i in 0..n {
            let mut frame = [0u8; 60];
            frame[..4].copy_from_slice(&i.to_be_bytes());
            let ts = Timestamp::from_secs_nanos(
                1_700_000_000 + i64::from(i / 1000),
                i % 1000 * 1_000_000,
            );
            w.write_frame(ts, &frame).unwrap();
        }
        w.into_inner().unwrap();
    }

    /// (number, timestamp) of every frame of `path`, in file order.
    fn read_back(path: &Path) -> Vec<(u32, Timestamp)> {
        let mut src = FileSource::open(path).unwrap();
        let mut out = Vec::new();
        while next_frame(&mut src).unwrap() {
            let f = src.current();
            out.push((u32::from_be_bytes(f.data[..4].try_into().unwrap()), f.ts));
        }
        out
    }

    #[test]
    fn frames_move_at_most_the_displacement_and_timestamps_stay_in_order() {
        let dir = scratch("moves");
        let input = dir.join("in.pcap");
        let output = dir.join("out.pcap");
        numbered_capture(&input, 10_000);
        let cfg = ReorderConfig {
            seed: 3,
            rate_percent: 30,
            max_displacement: 4,
        };
        let report = reorder_capture(&input, &output, &cfg).unwrap();
        assert_eq!(report.frames, 10_000);
        // 30 % asked; a frame is not delayed while 4 are held already.
        assert!((2_500..=3_100).contains(&report.delayed), "{report:?}");
        let frames = read_back(&output);
        let original = read_back(&input);
        // Timestamps: the input's, in the input's order.
        let stamps: Vec<_> = frames.iter().map(|f| f.1).collect();
        let want: Vec<_> = original.iter().map(|f| f.1).collect();
        assert_eq!(stamps, want);
        // Every frame exactly once; none written more than 4 places late,
        // and a frame only moves up past the (at most 4) held ones.
        let mut seen: Vec<u32> = frames.iter().map(|f| f.0).collect();
        let mut late = 0;
        for (pos, &n) in seen.iter().enumerate() {
            let shift = pos as i64 - i64::from(n);
            assert!((-4..=4).contains(&shift), "frame {n} at {pos}");
            late += u64::from(shift > 0);
        }
        assert!(late >= report.delayed / 2, "{late} late of {report:?}");
        seen.sort_unstable();
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rate_zero_keeps_the_order_and_same_seed_same_bytes() {
        let dir = scratch("zero");
        let input = dir.join("in.pcap");
        numbered_capture(&input, 500);
        let zero = ReorderConfig {
            seed: 1,
            rate_percent: 0,
            max_displacement: 2,
        };
        reorder_capture(&input, &dir.join("z.pcap"), &zero).unwrap();
        assert_eq!(
            std::fs::read(dir.join("z.pcap")).unwrap(),
            std::fs::read(&input).unwrap()
        );
        let five = ReorderConfig {
            rate_percent: 5,
            ..zero
        };
        reorder_capture(&input, &dir.join("a.pcap"), &five).unwrap();
        reorder_capture(&input, &dir.join("b.pcap"), &five).unwrap();
        let a = std::fs::read(dir.join("a.pcap")).unwrap();
        assert_eq!(a, std::fs::read(dir.join("b.pcap")).unwrap());
        assert_ne!(a, std::fs::read(&input).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = scratch("bad");
        let input = dir.join("in.pcap");
        numbered_capture(&input, 1);
        let out = dir.join("o.pcap");
        let bad = ReorderConfig {
            seed: 1,
            rate_percent: 101,
            max_displacement: 2,
        };
        let e = reorder_capture(&input, &out, &bad).unwrap_err().to_string();
        assert!(e.contains("rate 101 %"), "{e}");
        let bad = ReorderConfig {
            rate_percent: 5,
            max_displacement: 0,
            ..bad
        };
        let e = reorder_capture(&input, &out, &bad).unwrap_err().to_string();
        assert!(e.contains("max displacement 0"), "{e}");
        let e = reorder_capture(&dir.join("none.pcap"), &out, &bad).unwrap_err();
        assert!(matches!(e, ReorderError::Config(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
