//! Several capture files read as one stream, in timestamp order.
//!
//! `spanwatch replay a.pcap b.pcapng ...` reads its files through a
//! [`MergedSource`]: a k-way merge on the frames' capture timestamps.
//!
//! Order: the frame with the smallest timestamp comes first; frames with equal
//! timestamps come in the order the files were given, and within one file in
//! record order (the merge is stable). Each file is taken in its own record
//! order: a file whose records go back in time is not re-sorted.
//!
//! Errors: a damaged or unreadable member does not stop the others. Its error
//! (for example [`CaptureError::Damaged`], after the frames before the damage
//! were delivered) is kept once in a warning list that
//! [`MergedSource::take_warnings`] hands out, that member ends there, and the
//! merge goes on with the rest. [`advance`](FrameSource::advance) itself never
//! returns an error. Opening is different: [`MergedSource::open`] fails on the
//! first file that cannot be opened or is not a capture, before any frame is
//! read, so a mistyped path is reported at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use super::{CaptureError, FileSource, Frame, FrameSource, LinkType, Next, Timestamp};

/// Frame sources merged in timestamp order (see the module documentation).
pub struct MergedSource<S = FileSource> {
    sources: Vec<S>,
    /// Members holding an unconsumed frame, keyed by (timestamp, member index)
    /// so that equal timestamps keep the members' order.
    heads: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// Members to advance before the next pick (all of them at first).
    pending: Vec<usize>,
    /// The member whose frame is current.
    current: Option<usize>,
    /// One member only: no heap, just forward (set once it has ended).
    single_done: bool,
    warnings: Vec<CaptureError>,
}

impl MergedSource<FileSource> {
    /// Open every file (failing on the first that cannot be opened or is not a
    /// capture) and merge them.
    pub fn open<P: AsRef<Path>>(paths: &[P]) -> Result<Self, CaptureError> {
        let sources = paths
            .iter()
            .map(FileSource::open)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MergedSource::new(sources))
    }
}

impl<S: FrameSource> MergedSource<S> {
    /// Merge these sources; their order breaks timestamp ties.
    pub fn new(sources: Vec<S>) -> Self {
        let count = sources.len();
        MergedSource {
            sources,
            heads: BinaryHeap::with_capacity(count),
            pending: (0..count).rev().collect(),
            current: None,
            single_done: false,
            warnings: Vec::new(),
        }
    }

    /// The merged sources, in the order given (e.g. for their formats in a summary).
    pub fn sources(&self) -> &[S] {
        &self.sources
    }

    /// Index (in the order given) of the source the current frame came from.
    pub fn current_source(&self) -> Option<usize> {
        self.current
    }

    /// Errors of members that ended early, each reported once; the list is
    /// empty after this call.
    pub fn take_warnings(&mut self) -> Vec<CaptureError> {
        std::mem::take(&mut self.warnings)
    }

    fn advance_single(&mut self) -> Next {
        self.current = None;
        if self.single_done {
            return Next::End;
        }
        let Some(only) = self.sources.first_mut() else {
            return Next::End;
        };
        match only.advance() {
            Ok(Next::Frame) => {
                self.current = Some(0);
                Next::Frame
            }
            Ok(Next::Idle) => Next::Idle,
            Ok(Next::End) => {
                self.single_done = true;
                Next::End
            }
            Err(e) => {
                self.warnings.push(e);
                self.single_done = true;
                Next::End
            }
        }
    }
}

impl<S: FrameSource> FrameSource for MergedSource<S> {
    fn advance(&mut self) -> Result<Next, CaptureError> {
        if self.sources.len() == 1 {
            return Ok(self.advance_single());
        }
        if let Some(taken) = self.current.take() {
            self.pending.push(taken);
        }
        while let Some(index) = self.pending.pop() {
            let Some(source) = self.sources.get_mut(index) else {
                continue;
            };
            match source.advance() {
                Ok(Next::Frame) => self.heads.push(Reverse((source.current_ts(), index))),
                Ok(Next::End) => {}
                Ok(Next::Idle) => {
                    // A member that idles (a live source) is asked again on the
                    // next call; no frame can be picked before it answers.
                    self.pending.push(index);
                    return Ok(Next::Idle);
                }
                Err(e) => self.warnings.push(e),
            }
        }
        match self.heads.pop() {
            Some(Reverse((_, index))) => {
                self.current = Some(index);
                Ok(Next::Frame)
            }
            None => Ok(Next::End),
        }
    }

    fn current(&self) -> Frame<'_> {
        match self.current.and_then(|i| self.sources.get(i)) {
            Some(source) => source.current(),
            None => Frame {
                ts: Timestamp::default(),
                link: LinkType::Other(0),
                data: &[],
                orig_len: 0,
            },
        }
    }

    fn current_ts(&self) -> Timestamp {
        self.current
            .and_then(|i| self.sources.get(i))
            .map_or(Timestamp::default(), |s| s.current_ts())
    }

    fn bytes_read(&self) -> u64 {
        self.sources.iter().map(|s| s.bytes_read()).sum()
    }

    fn total_bytes(&self) -> Option<u64> {
        self.sources.iter().map(|s| s.total_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    type MemSource = FileSource<Cursor<Vec<u8>>>;

    /// A little-endian microsecond pcap (draft-ietf-opsawg-pcap §4, §5) whose
    /// records carry `(seconds, payload)`.
    fn pcap(name: &str, records: &[(u32, &[u8])]) -> MemSource {
        let mut out = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (sec, data) in records {
            for v in [*sec, 0, data.len() as u32, data.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(data);
        }
        let len = out.len() as u64;
        FileSource::from_reader(name, Cursor::new(out), Some(len)).unwrap()
    }

    /// (seconds, payload, source index) of every merged frame.
    fn drain<S: FrameSource>(merged: &mut MergedSource<S>) -> Vec<(i64, Vec<u8>, usize)> {
        let mut out = Vec::new();
        while let Next::Frame = merged.advance().unwrap() {
            let f = merged.current();
            out.push((
                f.ts.secs(),
                f.data.to_vec(),
                merged.current_source().unwrap(),
            ));
        }
        out
    }

    #[test]
    fn interleaves_by_timestamp_and_keeps_ties_stable() {
        let a = pcap("a", &[(1, b"a1"), (3, b"a3"), (3, b"a3'"), (7, b"a7")]);
        let b = pcap("b", &[(2, b"b2"), (3, b"b3"), (8, b"b8")]);
        let c = pcap("c", &[(0, b"c0"), (3, b"c3")]);
        let mut merged = MergedSource::new(vec![a, b, c]);
        let got = drain(&mut merged);
        let want: Vec<(i64, Vec<u8>, usize)> = vec![
            (0, b"c0".to_vec(), 2),
            (1, b"a1".to_vec(), 0),
            (2, b"b2".to_vec(), 1),
            (3, b"a3".to_vec(), 0),
            (3, b"a3'".to_vec(), 0),
            (3, b"b3".to_vec(), 1),
            (3, b"c3".to_vec(), 2),
            (7, b"a7".to_vec(), 0),
            (8, b"b8".to_vec(), 1),
        ];
        assert_eq!(got, want);
        assert_eq!(merged.advance().unwrap(), Next::End);
        assert!(merged.take_warnings().is_empty());
    }

    #[test]
    fn damaged_member_is_a_warning_and_the_others_go_on() {
        let good = pcap("good", &[(1, b"g1"), (5, b"g5")]);
        let mut bytes = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1, 2, 0, 2, 2] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(b"d2");
        // Second record: header announces 100 bytes, file ends after 3.
        for v in [3u32, 0, 100, 100] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(b"xyz");
        let damaged = FileSource::from_reader("damaged", Cursor::new(bytes), None).unwrap();
        let mut merged = MergedSource::new(vec![damaged, good]);
        let got: Vec<_> = drain(&mut merged).into_iter().map(|f| f.1).collect();
        assert_eq!(got, vec![b"g1".to_vec(), b"d2".to_vec(), b"g5".to_vec()]);
        let warnings = merged.take_warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            matches!(
                &warnings[0],
                CaptureError::Damaged {
                    record: 1,
                    offset: 42,
                    ..
                }
            ),
            "{:?}",
            warnings[0]
        );
        assert!(merged.take_warnings().is_empty(), "reported once");
    }

    #[test]
    fn single_source_is_forwarded() {
        let mut merged = MergedSource::new(vec![pcap("one", &[(4, b"x"), (2, b"y")])]);
        // One member: its record order is kept even when time goes back.
        assert_eq!(
            drain(&mut merged),
            vec![(4, b"x".to_vec(), 0), (2, b"y".to_vec(), 0)]
        );
        assert_eq!(merged.advance().unwrap(), Next::End);
        assert_eq!(merged.current().data, b"");
    }

    #[test]
    fn single_damaged_source_becomes_a_warning() {
        let mut bytes = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1, 1, 0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let src = FileSource::from_reader("cut", Cursor::new(bytes), None).unwrap();
        let mut merged = MergedSource::new(vec![src]);
        assert_eq!(merged.advance().unwrap(), Next::End);
        let warnings = merged.take_warnings();
        assert!(matches!(
            warnings.as_slice(),
            [CaptureError::Damaged {
                record: 0,
                offset: 24,
                ..
            }]
        ));
        assert_eq!(merged.advance().unwrap(), Next::End);
    }

    #[test]
    fn no_sources_is_empty() {
        let mut merged: MergedSource<MemSource> = MergedSource::new(Vec::new());
        assert_eq!(merged.advance().unwrap(), Next::End);
        assert_eq!(merged.total_bytes(), Some(0));
    }

    #[test]
    fn progress_sums_the_members() {
        let a = pcap("a", &[(1, b"1234")]);
        let b = pcap("b", &[(2, b"12")]);
        let mut merged = MergedSource::new(vec![a, b]);
        assert_eq!(merged.total_bytes(), Some((24 + 20) + (24 + 18)));
        assert_eq!(merged.bytes_read(), 48);
        drain(&mut merged);
        assert_eq!(merged.bytes_read(), merged.total_bytes().unwrap());
    }

    #[test]
    fn open_fails_on_a_missing_file() {
        let err = MergedSource::open(&["/nonexistent/spanwatch-test.pcap"])
            .err()
            .unwrap();
        assert!(matches!(err, CaptureError::Io { .. }), "{err}");
    }
}
