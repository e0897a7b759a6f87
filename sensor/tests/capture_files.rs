//! Every capture of the shared corpus read with our own pcap/pcapng reader and
//! checked against tshark's ground truth in `MANIFEST.tsv` (frame counts, first
//! and last timestamps to the nanosecond, link types) and the manifest's header
//! walk (format, byte order, timestamp resolution, snaplen, per-interface counts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use spanwatch::capture::{
    ByteOrder, CaptureError, CaptureFormat, FileSource, FrameSource, LinkType, MergedSource, Next,
    Timestamp, TsPrecision,
};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// tshark reads this fuzzed file as 2 frames through a pcap-variant heuristic.
/// A strict reader sees 1 valid record, then at byte offset 228 a record header
/// whose captured length is 0x53fe6000 (1409179648): the file header is 24
/// bytes and the first record header (offset 24) gives caplen 0xbc = 188, so
/// the second record starts at 24 + 16 + 188 = 228.
const FUZZ_FILE: &str = "generic/damaged-record-header-fuzz.pcap";
const FUZZ_DAMAGE_OFFSET: u64 = 228;

/// Cut in the middle of a record header: 2715460 bytes, of which the last one
/// (offset 2715459) starts a 2697th record header that never finishes.
const TRUNCATED_FILE: &str = "generic/truncated-file-http-mime.pcap";
const TRUNCATED_DAMAGE_OFFSET: u64 = 2_715_459;

struct Row {
    path: String,
    link_type: String,
    packets: u64,
    expected: Value,
}

fn corpus(path: &str) -> PathBuf {
    Path::new(CORPUS).join(path)
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("manifest header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (path, link_type, packets, expected) = (
        col("path"),
        col("link_type"),
        col("packets"),
        col("expected"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            Row {
                path: cells[path].to_string(),
                link_type: cells[link_type].to_string(),
                packets: cells[packets].parse().expect("packets"),
                expected: serde_json::from_str(cells[expected]).expect("expected JSON"),
            }
        })
        .collect()
}

/// tshark's `frame.time_epoch` ("1585066888.214312000") in nanoseconds,
/// saturated to what a [`Timestamp`] holds (i64 nanoseconds, years 1677-2262)
/// as the reader saturates: `pcapng-ether-and-linux-sll-with-comments.pcapng`
/// has an interface whose 64-bit microsecond counts are near 2^64, which
/// tshark shows as 18446744073204.x seconds.
fn epoch_nanos(text: &str) -> i64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let frac = format!("{frac:0<9}");
    let nanos = secs.parse::<i128>().unwrap() * 1_000_000_000 + frac[..9].parse::<i128>().unwrap();
    let nanos = if negative { -nanos } else { nanos };
    i64::try_from(nanos).unwrap_or(if negative { i64::MIN } else { i64::MAX })
}

/// "ETHERNET(1)" -> 1.
fn linktype_number(name: &str) -> u32 {
    let inner = name
        .trim()
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("link type {name:?}"));
    inner.parse().unwrap()
}

struct Read {
    frames: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    per_link: HashMap<LinkType, u64>,
    error: Option<CaptureError>,
}

fn read_file(path: &Path) -> (CaptureFormat, Read) {
    let mut src = FileSource::open(path).unwrap_or_else(|e| panic!("{e}"));
    let format = *src.format();
    let mut read = Read {
        frames: 0,
        first: None,
        last: None,
        per_link: HashMap::new(),
        error: None,
    };
    loop {
        match src.advance() {
            Ok(Next::Frame) => {
                let f = src.current();
                read.frames += 1;
                read.first.get_or_insert(f.ts);
                read.last = Some(f.ts);
                *read.per_link.entry(f.link).or_default() += 1;
            }
            Ok(Next::Idle) => panic!("{}: a file never idles", path.display()),
            Ok(Next::End) => break,
            Err(e) => {
                read.error = Some(e);
                assert_eq!(src.advance().unwrap(), Next::End, "End after an error");
                break;
            }
        }
    }
    assert_eq!(src.frames(), read.frames);
    (format, read)
}

/// Checks one manifest row; returns what disagreed.
fn check(row: &Row) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let (format, read) = read_file(&corpus(&row.path));
    let file = &row.expected["file"];

    // Frame count and the error that ended the file.
    match row.path.as_str() {
        FUZZ_FILE => {
            expect(read.frames == 1, format!("frames {} != 1", read.frames));
            expect(
                file["complete_records"] == 1,
                "manifest walk should agree on 1 complete record".into(),
            );
            expect(
                matches!(&read.error, Some(CaptureError::Damaged { record: 1, offset: FUZZ_DAMAGE_OFFSET, what, .. })
                    if what.contains("1409179648")),
                format!("error {:?}", read.error),
            );
        }
        TRUNCATED_FILE => {
            expect(
                read.frames == row.packets,
                format!("frames {} != {}", read.frames, row.packets),
            );
            expect(
                matches!(&read.error, Some(CaptureError::Damaged { record, offset: TRUNCATED_DAMAGE_OFFSET, .. })
                    if *record == row.packets),
                format!("error {:?}", read.error),
            );
        }
        _ => {
            expect(
                read.frames == row.packets,
                format!("frames {} != {}", read.frames, row.packets),
            );
            expect(read.error.is_none(), format!("error {:?}", read.error));
        }
    }

    // Timestamps, to the nanosecond (the fuzz file's second frame is tshark's
    // heuristic reading, so only its first timestamp is comparable).
    let first = row.expected["first_ts_epoch"].as_str().map(epoch_nanos);
    expect(
        read.first.map(Timestamp::as_nanos) == first,
        format!("first ts {:?} != {first:?}", read.first),
    );
    if row.path != FUZZ_FILE {
        let last = row.expected["last_ts_epoch"].as_str().map(epoch_nanos);
        expect(
            read.last.map(Timestamp::as_nanos) == last,
            format!("last ts {:?} != {last:?}", read.last),
        );
    }

    // Format details from the manifest's header walk.
    let order = match file["byte_order"].as_str() {
        Some("little") => ByteOrder::Little,
        Some("big") => ByteOrder::Big,
        other => panic!("{}: byte_order {other:?}", row.path),
    };
    match (file["format"].as_str(), format) {
        (
            Some("pcap"),
            CaptureFormat::Pcap {
                byte_order,
                precision,
                snaplen,
                link,
                ..
            },
        ) => {
            expect(byte_order == order, format!("byte order {byte_order:?}"));
            let want = match file["ts_resolution"].as_str() {
                Some("usec") => TsPrecision::Micros,
                Some("nsec") => TsPrecision::Nanos,
                other => panic!("{}: ts_resolution {other:?}", row.path),
            };
            expect(precision == want, format!("precision {precision:?}"));
            expect(file["snaplen"] == snaplen, format!("snaplen {snaplen}"));
            let want_link = LinkType::from_linktype(linktype_number(&row.link_type));
            expect(
                link == want_link,
                format!("header link {link:?} != {want_link:?}"),
            );
            let mut want_links = HashMap::new();
            if read.frames > 0 {
                want_links.insert(want_link, read.frames);
            }
            expect(
                read.per_link == want_links,
                format!("frame links {:?}", read.per_link),
            );
        }
        (Some("pcapng"), CaptureFormat::PcapNg { byte_order }) => {
            expect(byte_order == order, format!("byte order {byte_order:?}"));
            let mut want_links: HashMap<LinkType, u64> = HashMap::new();
            for iface in file["interfaces"].as_array().expect("interfaces") {
                let link =
                    LinkType::from_linktype(linktype_number(iface["linktype"].as_str().unwrap()));
                let packets = iface["packets"].as_u64().unwrap();
                if packets > 0 {
                    *want_links.entry(link).or_default() += packets;
                }
            }
            expect(
                read.per_link == want_links,
                format!("frame links {:?} != {want_links:?}", read.per_link),
            );
        }
        (want, got) => expect(false, format!("format {got:?}, manifest says {want:?}")),
    }
    problems
}

#[test]
fn every_manifest_capture_reads_as_tshark_counts() {
    let rows = manifest();
    assert!(rows.len() >= 80, "manifest has {} rows", rows.len());
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let problems = check(row);
            (!problems.is_empty()).then(|| format!("{}: {}", row.path, problems.join("; ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} files disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn empty_file_is_a_clear_header_error() {
    let path = std::env::temp_dir().join(format!("spanwatch-empty-{}.pcap", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let result = FileSource::open(&path);
    std::fs::remove_file(&path).unwrap();
    let err = result.err().expect("an empty file is not a capture");
    assert!(matches!(err, CaptureError::BadHeader { .. }), "{err}");
    assert!(err.to_string().contains("empty file"), "{err}");
}

#[test]
fn text_file_is_not_a_capture() {
    let err = FileSource::open(corpus("MANIFEST.tsv"))
        .err()
        .expect("not a capture");
    assert!(
        matches!(&err, CaptureError::NotACapture { magic, .. } if magic == b"path"),
        "{err}"
    );
}

#[test]
fn merged_files_come_in_timestamp_order() {
    // Both captures start at 1585173935.383730 and interleave.
    let a = "mqtt/mqtt5-connack-134-refused-then-jpeg-publish.pcap";
    let b = "mqtt/mqtt5-publish-jpeg-35k-multisegment.pcap";
    let rows = manifest();
    let count = |p: &str| rows.iter().find(|r| r.path == p).unwrap().packets;
    let mut merged = MergedSource::open(&[corpus(a), corpus(b)]).unwrap();
    let mut frames = 0;
    let mut previous: Option<(Timestamp, usize)> = None;
    let mut from = [0u64; 2];
    while let Next::Frame = merged.advance().unwrap() {
        let ts = merged.current().ts;
        let source = merged.current_source().unwrap();
        if let Some((prev_ts, prev_source)) = previous {
            assert!(ts >= prev_ts, "frame {frames}: {ts:?} before {prev_ts:?}");
            if ts == prev_ts {
                assert!(
                    source >= prev_source,
                    "frame {frames}: equal timestamps keep file order"
                );
            }
        }
        previous = Some((ts, source));
        from[source] += 1;
        frames += 1;
    }
    assert_eq!(frames, count(a) + count(b));
    assert_eq!(from, [count(a), count(b)]);
    assert!(merged.take_warnings().is_empty());
    assert_eq!(merged.bytes_read(), merged.total_bytes().unwrap());
}

#[test]
fn merged_read_survives_a_damaged_member() {
    let other = "http/http-head-500.pcap";
    let rows = manifest();
    let count = |p: &str| rows.iter().find(|r| r.path == p).unwrap().packets;
    let mut merged = MergedSource::open(&[corpus(TRUNCATED_FILE), corpus(other)]).unwrap();
    let mut frames = 0;
    while let Next::Frame = merged.advance().unwrap() {
        frames += 1;
    }
    assert_eq!(frames, count(TRUNCATED_FILE) + count(other));
    let warnings = merged.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        matches!(
            &warnings[0],
            CaptureError::Damaged {
                offset: TRUNCATED_DAMAGE_OFFSET,
                ..
            }
        ),
        "{:?}",
        warnings[0]
    );
}
