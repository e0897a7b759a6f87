//! Streaming decoder for the chunked transfer coding (RFC 9112 §7.1):
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! The decoder keeps no buffer: it walks the framing byte by byte and hands
//! chunk data back as slices of the input, so any split of the stream works.
//! Chunk-size lines and the trailer section are bounded; a chunk size that
//! does not fit in 64 bits is an error (RFC 9112 §7.1: "recipients MUST
//! anticipate potentially large hexadecimal numerals and prevent parsing
//! errors due to integer conversion overflows"). A bare LF is accepted as a
//! line terminator (RFC 9112 §2.2 allows recipients to do so).

use thiserror::Error;

/// Why chunked framing could not be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ChunkedError {
    #[error("chunk size does not fit in 64 bits")]
    SizeOverflow,
    #[error("byte {0:#04x} where a chunk size was expected")]
    InvalidSize(u8),
    #[error("byte {0:#04x} in a chunk extension")]
    InvalidExtension(u8),
    #[error("byte {0:#04x} instead of the CRLF after chunk data")]
    MissingDataTerminator(u8),
    #[error("chunk-size line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("byte {0:#04x} instead of LF at the end of the trailer section")]
    InvalidTrailerEnd(u8),
    #[error("trailer section longer than {0} bytes")]
    TrailerTooLarge(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    SizeStart,
    /// Inside the hex digits.
    Size(u64),
    /// Whitespace after the digits (BWS before `;`).
    SizeSpace(u64),
    /// Inside chunk extensions.
    Extension(u64),
    /// CR seen at the end of the size line.
    SizeLf(u64),
    /// Chunk data bytes still to come.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerLineStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// CR seen on the final empty line.
    TrailerEndLf,
    /// The chunked body is complete.
    Done,
}

/// Result of one [`ChunkedDecoder::decode`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkedStep<'a> {
    /// Bytes of the input used (framing and data).
    pub consumed: usize,
    /// Chunk data found, a sub-slice of the input (possibly empty).
    pub data: &'a [u8],
    /// The last chunk and trailer section have been read.
    pub done: bool,
}

/// Per-message chunked decoding state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    line_bytes: usize,
    trailer_bytes: usize,
    trailer_fields: usize,
    max_line_bytes: usize,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, with bounds on one chunk-size
    /// line (size plus extensions) and on the whole trailer section.
    pub fn new(max_line_bytes: usize, max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            line_bytes: 0,
            trailer_bytes: 0,
            trailer_fields: 0,
            max_line_bytes,
            max_trailer_bytes,
        }
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Number of trailer field lines read so far (RFC 9112 §7.1.2).
    pub fn trailer_fields(&self) -> usize {
        self.trailer_fields
    }

    /// Skips `missing` bytes lost in a capture gap, if they all fall inside the
    /// current chunk's data; returns whether that was possible.
    pub fn skip_data(&mut self, missing: u64) -> bool {
        match self.state {
            State::Data(remaining) if missing <= remaining => {
                self.state = match remaining - missing {
                    0 => State::DataCr,
                    left => State::Data(left),
                };
                true
            }
            _ => false,
        }
    }

    /// Walks framing bytes until chunk data is found, the input ends or the
    /// body is complete. Call again with the rest of the input while
    /// `consumed < input.len()` and not `done`.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<ChunkedStep<'a>, ChunkedError> {
        let mut pos = 0;
        while let Some(&b) = input.get(pos) {
            if self.state == State::Done {
                break;
            }
            if let State::Data(remaining) = self.state {
                let available = input.len() - pos;
                let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                let data = input.get(pos..pos + take).unwrap_or_default();
                self.state = match remaining - take as u64 {
                    0 => State::DataCr,
                    left => State::Data(left),
                };
                return Ok(ChunkedStep {
                    consumed: pos + take,
                    data,
                    done: false,
                });
            }
            pos += 1;
            self.step(b)?;
            if self.state == State::Done {
                return Ok(ChunkedStep {
                    consumed: pos,
                    data: &[],
                    done: true,
                });
            }
        }
        Ok(ChunkedStep {
            consumed: pos,
            data: &[],
            done: self.state == State::Done,
        })
    }

    /// One framing byte.
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        if matches!(
            self.state,
            State::SizeStart
                | State::Size(_)
                | State::SizeSpace(_)
                | State::Extension(_)
                | State::SizeLf(_)
        ) {
            self.line_bytes += 1;
            if self.line_bytes > self.max_line_bytes {
                return Err(ChunkedError::LineTooLong(self.max_line_bytes));
            }
        }
        if matches!(
            self.state,
            State::TrailerLineStart | State::TrailerLine | State::TrailerEndLf
        ) {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.max_trailer_bytes {
                return Err(ChunkedError::TrailerTooLarge(self.max_trailer_bytes));
            }
        }
        self.state = match (self.state, b) {
            (State::SizeStart, _) => State::Size(hex_value(b).ok_or(ChunkedError::InvalidSize(b))?),
            (State::Size(size), _) if hex_value(b).is_some() => {
                let digit = hex_value(b).unwrap_or_default();
                let size = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkedError::SizeOverflow)?;
                State::Size(size)
            }
            (State::Size(size) | State::SizeSpace(size), b' ' | b'\t') => State::SizeSpace(size),
            (State::Size(size) | State::SizeSpace(size) | State::Extension(size), b';') => {
                State::Extension(size)
            }
            (State::Size(size) | State::SizeSpace(size) | State::Extension(size), b'\r') => {
                State::SizeLf(size)
            }
            (
                State::Size(size)
                | State::SizeSpace(size)
                | State::Extension(size)
                | State::SizeLf(size),
                b'\n',
            ) => self.end_of_size_line(size),
            (State::Size(_) | State::SizeSpace(_) | State::SizeLf(_), _) => {
                return Err(ChunkedError::InvalidSize(b));
            }
            (State::Extension(size), _) if b == b'\t' || (b >= 0x20 && b != 0x7f) => {
                State::Extension(size)
            }
            (State::Extension(_), _) => return Err(ChunkedError::InvalidExtension(b)),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataCr | State::DataLf, b'\n') => State::SizeStart,
            (State::DataCr | State::DataLf, _) => {
                return Err(ChunkedError::MissingDataTerminator(b));
            }
            (State::TrailerLineStart, b'\r') => State::TrailerEndLf,
            (State::TrailerLineStart | State::TrailerEndLf, b'\n') => State::Done,
            (State::TrailerEndLf, _) => return Err(ChunkedError::InvalidTrailerEnd(b)),
            (State::TrailerLine, b'\n') => {
                self.trailer_fields += 1;
                State::TrailerLineStart
            }
            (State::TrailerLineStart | State::TrailerLine, _) => State::TrailerLine,
            // Data is handled by `decode`; nothing follows Done.
            (state @ (State::Data(_) | State::Done), _) => state,
        };
        Ok(())
    }

    fn end_of_size_line(&mut self, size: u64) -> State {
        self.line_bytes = 0;
        if size == 0 {
            State::TrailerLineStart
        } else {
            State::Data(size)
        }
    }
}

fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: usize = 64;
    const TRAILER: usize = 256;

    /// Feeds `input` in pieces of `piece` bytes; returns (data, consumed, done).
    fn run(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut dec = ChunkedDecoder::new(LINE, TRAILER);
        let mut data = Vec::new();
        let mut consumed = 0;
        for part in input.chunks(piece.max(1)) {
            let mut pos = 0;
            while pos < part.len() && !dec.is_done() {
                let step = dec.decode(&part[pos..])?;
                data.extend_from_slice(step.data);
                pos += step.consumed;
            }
            consumed += pos;
            if dec.is_done() {
                break;
            }
        }
        Ok((data, consumed, dec.is_done()))
    }

    #[test]
    fn two_chunks_and_last_chunk() {
        // "4" CRLF "Wiki" CRLF  "5" CRLF "pedia" CRLF  "0" CRLF CRLF, then the
        // next message, which the decoder must not touch.
        let body = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nGET /";
        let (data, consumed, done) = run(body, body.len()).unwrap();
        assert_eq!(data, b"Wikipedia");
        assert!(done);
        assert_eq!(consumed, body.len() - b"GET /".len());
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let body = b"4;name=\"quoted;value\"\r\nWiki\r\nA ; ext\r\n0123456789\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
        let whole = run(body, body.len()).unwrap();
        assert_eq!(whole.0, b"Wiki0123456789");
        assert!(whole.2);
        for piece in 1..body.len() {
            assert_eq!(run(body, piece).unwrap(), whole, "piece {piece}");
        }
    }

    #[test]
    fn extensions_rfc9112_7_1_1_and_trailers_7_1_2() {
        let body = b"1a; ieof\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n";
        let mut dec = ChunkedDecoder::new(LINE, TRAILER);
        let mut data = Vec::new();
        let mut pos = 0;
        while !dec.is_done() {
            let step = dec.decode(&body[pos..]).unwrap();
            data.extend_from_slice(step.data);
            pos += step.consumed;
        }
        assert_eq!(data, b"abcdefghijklmnopqrstuvwxyz");
        assert_eq!(pos, body.len());
        assert_eq!(dec.trailer_fields(), 2);
    }

    #[test]
    fn upper_case_hex_leading_zeros_and_bare_lf() {
        let (data, _, done) = run(b"000B\nhello world\n0\n\n", 64).unwrap();
        assert_eq!(data, b"hello world");
        assert!(done);
    }

    #[test]
    fn size_2_pow_64_overflows() {
        // 0x10000000000000000 = 2^64: 17 hex digits.
        assert_eq!(
            run(b"10000000000000000\r\n", 64),
            Err(ChunkedError::SizeOverflow)
        );
        // 2^64 - 1 fits; the data simply never arrives.
        let (data, consumed, done) = run(b"ffffffffffffffff\r\nab", 64).unwrap();
        assert_eq!((data.as_slice(), consumed, done), (&b"ab"[..], 20, false));
    }

    #[test]
    fn malformed_framing() {
        assert_eq!(run(b"\r\n", 8), Err(ChunkedError::InvalidSize(b'\r')));
        assert_eq!(run(b"g\r\n", 8), Err(ChunkedError::InvalidSize(b'g')));
        assert_eq!(run(b"1 2\r\n", 8), Err(ChunkedError::InvalidSize(b'2')));
        assert_eq!(run(b"1\rx", 8), Err(ChunkedError::InvalidSize(b'x')));
        assert_eq!(
            run(b"1;a\x00\r\n", 8),
            Err(ChunkedError::InvalidExtension(0))
        );
        assert_eq!(
            run(b"1\r\naXY", 8),
            Err(ChunkedError::MissingDataTerminator(b'X'))
        );
        assert_eq!(
            run(b"1\r\na\rX", 8),
            Err(ChunkedError::MissingDataTerminator(b'X'))
        );
        assert_eq!(
            run(b"0\r\n\rX", 8),
            Err(ChunkedError::InvalidTrailerEnd(b'X'))
        );
    }

    #[test]
    fn bounds() {
        let long_line = [b"1;".as_slice(), &[b'x'; LINE]].concat();
        assert_eq!(run(&long_line, 8), Err(ChunkedError::LineTooLong(LINE)));
        // Leading zeros count towards the line bound too.
        assert_eq!(
            run(&[b'0'; LINE + 1], 8),
            Err(ChunkedError::LineTooLong(LINE))
        );
        let big_trailer = [b"0\r\n".as_slice(), &[b'T'; TRAILER + 1]].concat();
        assert_eq!(
            run(&big_trailer, 8),
            Err(ChunkedError::TrailerTooLarge(TRAILER))
        );
    }

    #[test]
    fn gap_skips_only_inside_chunk_data() {
        let mut dec = ChunkedDecoder::new(LINE, TRAILER);
        assert!(!dec.skip_data(1));
        let step = dec.decode(b"a\r\n").unwrap();
        assert_eq!(step.consumed, 3);
        assert!(!dec.skip_data(11));
        assert!(dec.skip_data(4));
        assert!(dec.skip_data(6));
        let step = dec.decode(b"\r\n0\r\n\r\n").unwrap();
        assert!(step.done);
    }

    #[test]
    fn nothing_after_done_is_consumed() {
        let mut dec = ChunkedDecoder::new(LINE, TRAILER);
        let step = dec.decode(b"0\r\n\r\nmore").unwrap();
        assert_eq!((step.consumed, step.done), (5, true));
        let step = dec.decode(b"more").unwrap();
        assert_eq!((step.consumed, step.done), (0, true));
    }
}
