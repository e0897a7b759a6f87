//! Streaming Telnet tokenizer: splits one direction of a Telnet byte stream
//! into data bytes and commands (RFC 854 "TELNET COMMAND STRUCTURE", RFC 855
//! "Subnegotiation").
//!
//! The tokenizer is a byte-level state machine. Between calls it keeps at most
//! the state of one IAC sequence (two bytes) plus, inside `IAC SB`, the
//! sub-negotiation payload bounded by [`TelnetParser::new`]'s limit. Any split
//! of the stream over calls yields the same tokens as one call with the whole
//! stream. "Incomplete" is the parser holding a partial sequence
//! ([`TelnetParser::pending`]); malformed input is reported as a
//! [`Token::Error`] and the tokenizer resynchronises on the next byte.

use thiserror::Error;

/// Interpret As Command (RFC 854): starts every command; doubled to send 255 as data.
pub const IAC: u8 = 255;
/// Don't use option (RFC 854).
pub const DONT: u8 = 254;
/// Please use option (RFC 854).
pub const DO: u8 = 253;
/// Won't use option (RFC 854).
pub const WONT: u8 = 252;
/// Will use option (RFC 854).
pub const WILL: u8 = 251;
/// Sub-negotiation begin (RFC 854, RFC 855).
pub const SB: u8 = 250;
/// Go ahead (RFC 854).
pub const GA: u8 = 249;
/// Erase line (RFC 854).
pub const EL: u8 = 248;
/// Erase character (RFC 854).
pub const EC: u8 = 247;
/// Are you there (RFC 854).
pub const AYT: u8 = 246;
/// Abort output (RFC 854).
pub const AO: u8 = 245;
/// Interrupt process (RFC 854).
pub const IP: u8 = 244;
/// Break (RFC 854).
pub const BRK: u8 = 243;
/// Data mark, the data-stream part of a Synch (RFC 854).
pub const DM: u8 = 242;
/// No operation (RFC 854).
pub const NOP: u8 = 241;
/// Sub-negotiation end (RFC 854, RFC 855).
pub const SE: u8 = 240;
/// End of record (RFC 885 "Command Name and Code").
pub const EOR: u8 = 239;
/// Abort, sent when LINEMODE is in effect (RFC 1184 "Command Names and Codes").
pub const ABORT: u8 = 238;
/// Suspend, sent when LINEMODE is in effect (RFC 1184 "Command Names and Codes").
pub const SUSP: u8 = 237;
/// End of file, sent when LINEMODE is in effect (RFC 1184 "Command Names and Codes").
pub const XEOF: u8 = 236;

/// Option negotiation verb (RFC 854 "TELNET COMMAND STRUCTURE"; RFC 855).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `IAC WILL <option>` (251).
    Will,
    /// `IAC WONT <option>` (252).
    Wont,
    /// `IAC DO <option>` (253).
    Do,
    /// `IAC DONT <option>` (254).
    Dont,
}

impl Verb {
    /// The verb whose command byte is `byte`, if any.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            WILL => Some(Verb::Will),
            WONT => Some(Verb::Wont),
            DO => Some(Verb::Do),
            DONT => Some(Verb::Dont),
            _ => None,
        }
    }

    /// The command byte of this verb.
    pub fn byte(self) -> u8 {
        match self {
            Verb::Will => WILL,
            Verb::Wont => WONT,
            Verb::Do => DO,
            Verb::Dont => DONT,
        }
    }
}

/// A single (two byte) Telnet command: RFC 854 "TELNET COMMAND STRUCTURE",
/// plus EOR (RFC 885) and the LINEMODE commands EOF, SUSP, ABORT (RFC 1184).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// NOP (241).
    Nop,
    /// Data Mark (242), the data-stream part of a Synch.
    DataMark,
    /// Break (243).
    Break,
    /// Interrupt Process (244).
    InterruptProcess,
    /// Abort Output (245).
    AbortOutput,
    /// Are You There (246).
    AreYouThere,
    /// Erase Character (247).
    EraseCharacter,
    /// Erase Line (248).
    EraseLine,
    /// Go Ahead (249).
    GoAhead,
    /// End of Record (239, RFC 885).
    EndOfRecord,
    /// End of File (236, RFC 1184).
    EndOfFile,
    /// Suspend (237, RFC 1184).
    Suspend,
    /// Abort (238, RFC 1184).
    Abort,
}

impl Command {
    /// The single command whose byte is `byte`; `None` for SE, SB, the verbs,
    /// IAC and unassigned bytes.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            NOP => Some(Command::Nop),
            DM => Some(Command::DataMark),
            BRK => Some(Command::Break),
            IP => Some(Command::InterruptProcess),
            AO => Some(Command::AbortOutput),
            AYT => Some(Command::AreYouThere),
            EC => Some(Command::EraseCharacter),
            EL => Some(Command::EraseLine),
            GA => Some(Command::GoAhead),
            EOR => Some(Command::EndOfRecord),
            XEOF => Some(Command::EndOfFile),
            SUSP => Some(Command::Suspend),
            ABORT => Some(Command::Abort),
            _ => None,
        }
    }

    /// The command byte.
    pub fn byte(self) -> u8 {
        match self {
            Command::Nop => NOP,
            Command::DataMark => DM,
            Command::Break => BRK,
            Command::InterruptProcess => IP,
            Command::AbortOutput => AO,
            Command::AreYouThere => AYT,
            Command::EraseCharacter => EC,
            Command::EraseLine => EL,
            Command::GoAhead => GA,
            Command::EndOfRecord => EOR,
            Command::EndOfFile => XEOF,
            Command::Suspend => SUSP,
            Command::Abort => ABORT,
        }
    }
}

/// Telnet option codes (IANA "Telnet Options" registry). Options without a
/// name here are carried as `Unknown(code)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TelnetOption {
    /// 0, RFC 856.
    Binary,
    /// 1, RFC 857.
    Echo,
    /// 3, RFC 858.
    SuppressGoAhead,
    /// 5, RFC 859.
    Status,
    /// 6, RFC 860.
    TimingMark,
    /// 18, RFC 727.
    Logout,
    /// 23, RFC 779.
    SendLocation,
    /// 24, RFC 1091.
    TerminalType,
    /// 25, RFC 885.
    EndOfRecord,
    /// 31, RFC 1073 (Negotiate About Window Size).
    Naws,
    /// 32, RFC 1079.
    TerminalSpeed,
    /// 33, RFC 1372.
    RemoteFlowControl,
    /// 34, RFC 1184.
    Linemode,
    /// 35, RFC 1096.
    XDisplayLocation,
    /// 36, RFC 1408.
    OldEnviron,
    /// 37, RFC 2941.
    Authentication,
    /// 38, RFC 2946.
    Encrypt,
    /// 39, RFC 1572.
    NewEnviron,
    /// 40, RFC 2355.
    Tn3270e,
    /// 42, RFC 2066.
    Charset,
    /// 44, RFC 2217.
    ComPortControl,
    /// 255, RFC 861 (Extended Options List).
    ExtendedOptionsList,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for TelnetOption {
    fn from(code: u8) -> Self {
        match code {
            0 => TelnetOption::Binary,
            1 => TelnetOption::Echo,
            3 => TelnetOption::SuppressGoAhead,
            5 => TelnetOption::Status,
            6 => TelnetOption::TimingMark,
            18 => TelnetOption::Logout,
            23 => TelnetOption::SendLocation,
            24 => TelnetOption::TerminalType,
            25 => TelnetOption::EndOfRecord,
            31 => TelnetOption::Naws,
            32 => TelnetOption::TerminalSpeed,
            33 => TelnetOption::RemoteFlowControl,
            34 => TelnetOption::Linemode,
            35 => TelnetOption::XDisplayLocation,
            36 => TelnetOption::OldEnviron,
            37 => TelnetOption::Authentication,
            38 => TelnetOption::Encrypt,
            39 => TelnetOption::NewEnviron,
            40 => TelnetOption::Tn3270e,
            42 => TelnetOption::Charset,
            44 => TelnetOption::ComPortControl,
            255 => TelnetOption::ExtendedOptionsList,
            other => TelnetOption::Unknown(other),
        }
    }
}

impl From<TelnetOption> for u8 {
    fn from(option: TelnetOption) -> u8 {
        match option {
            TelnetOption::Binary => 0,
            TelnetOption::Echo => 1,
            TelnetOption::SuppressGoAhead => 3,
            TelnetOption::Status => 5,
            TelnetOption::TimingMark => 6,
            TelnetOption::Logout => 18,
            TelnetOption::SendLocation => 23,
            TelnetOption::TerminalType => 24,
            TelnetOption::EndOfRecord => 25,
            TelnetOption::Naws => 31,
            TelnetOption::TerminalSpeed => 32,
            TelnetOption::RemoteFlowControl => 33,
            TelnetOption::Linemode => 34,
            TelnetOption::XDisplayLocation => 35,
            TelnetOption::OldEnviron => 36,
            TelnetOption::Authentication => 37,
            TelnetOption::Encrypt => 38,
            TelnetOption::NewEnviron => 39,
            TelnetOption::Tn3270e => 40,
            TelnetOption::Charset => 42,
            TelnetOption::ComPortControl => 44,
            TelnetOption::ExtendedOptionsList => 255,
            TelnetOption::Unknown(code) => code,
        }
    }
}

/// Malformed Telnet command structure. The tokenizer reports it and goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TokenError {
    /// `IAC` followed by a byte that is no command (RFC 854 assigns 240-255;
    /// RFC 885 and RFC 1184 add 236-239). Both bytes are dropped.
    #[error("IAC followed by unassigned command byte {0}")]
    UnknownCommand(u8),
    /// `IAC SE` outside a sub-negotiation (RFC 855: SE only ends an SB).
    #[error("IAC SE without a preceding IAC SB")]
    SeWithoutSb,
    /// The sub-negotiation payload reached the limit; the rest up to `IAC SE`
    /// is skipped.
    #[error("sub-negotiation of option {option:?} longer than {limit} bytes")]
    SubnegTooLong {
        /// Option being sub-negotiated.
        option: TelnetOption,
        /// The configured bound.
        limit: usize,
    },
    /// An `IAC <command>` other than `IAC SE` / `IAC IAC` inside a
    /// sub-negotiation (RFC 855 requires IAC to be doubled there). The
    /// sub-negotiation is abandoned and the command is processed.
    #[error("sub-negotiation of option {option:?} interrupted by IAC {by} after {len} bytes")]
    SubnegInterrupted {
        /// Option being sub-negotiated.
        option: TelnetOption,
        /// The byte after IAC.
        by: u8,
        /// Payload bytes seen before the interruption.
        len: usize,
    },
    /// The stream ended inside a sub-negotiation.
    #[error("sub-negotiation of option {option:?} unterminated at end of stream after {len} bytes")]
    SubnegUnterminated {
        /// Option being sub-negotiated.
        option: TelnetOption,
        /// Payload bytes seen.
        len: usize,
    },
    /// The stream ended inside an `IAC`, `IAC <verb>` or `IAC SB` prefix.
    #[error("stream ended inside an IAC command")]
    TruncatedCommand,
}

/// One unit of a Telnet stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// Data bytes (NVT characters). An escaped `IAC IAC` arrives as a one
    /// byte `Data(&[255])`.
    Data(&'a [u8]),
    /// A single command.
    Command(Command),
    /// `IAC WILL|WONT|DO|DONT <option>`.
    Negotiation {
        /// The verb.
        verb: Verb,
        /// The option code.
        option: TelnetOption,
    },
    /// `IAC SB <option> <payload> IAC SE`, payload with `IAC IAC` undoubled.
    Subnegotiation {
        /// The option code.
        option: TelnetOption,
        /// The payload between the option byte and `IAC SE`.
        payload: &'a [u8],
    },
    /// Malformed command structure (evidence; the tokenizer has resynchronised).
    Error(TokenError),
}

/// What the tokenizer holds between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Nothing: the stream so far ended on a token boundary.
    Nothing,
    /// Part of an IAC command (at most two bytes).
    Command,
    /// An open sub-negotiation with this many payload bytes buffered.
    Subnegotiation(usize),
}

/// Tokenizer state. Runs of bytes are scanned in `Data`, `Sb` and
/// `SbDiscard`; the other states look at exactly one byte ([`Step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data,
    Sb,
    SbDiscard,
    Byte(Step),
}

/// States that consume a single byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// After IAC.
    Iac,
    /// After IAC WILL|WONT|DO|DONT: the option byte.
    Verb(Verb),
    /// After IAC SB: the option byte.
    SbOption,
    /// IAC inside a sub-negotiation.
    SbIac,
    /// IAC inside a sub-negotiation being skipped.
    SbDiscardIac,
}

/// Streaming tokenizer for one direction of a Telnet connection.
pub struct TelnetParser {
    state: State,
    option: TelnetOption,
    sb: Vec<u8>,
    max_subneg_bytes: usize,
}

impl std::fmt::Debug for TelnetParser {
    /// Lengths only: a sub-negotiation buffer may hold authentication data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnetParser")
            .field("state", &self.state)
            .field("option", &self.option)
            .field("buffered", &self.sb.len())
            .field("max_subneg_bytes", &self.max_subneg_bytes)
            .finish()
    }
}

impl TelnetParser {
    /// A tokenizer that buffers at most `max_subneg_bytes` of one
    /// sub-negotiation payload.
    pub fn new(max_subneg_bytes: usize) -> Self {
        TelnetParser {
            state: State::Data,
            option: TelnetOption::Unknown(0),
            sb: Vec::new(),
            max_subneg_bytes,
        }
    }

    /// What is held from earlier input.
    pub fn pending(&self) -> Pending {
        match self.state {
            State::Data => Pending::Nothing,
            State::Byte(Step::Iac | Step::Verb(_) | Step::SbOption) => Pending::Command,
            State::Sb | State::SbDiscard | State::Byte(Step::SbIac | Step::SbDiscardIac) => {
                Pending::Subnegotiation(self.sb.len())
            }
        }
    }

    /// Forgets any partial sequence (after a gap in the stream): the next byte
    /// is read as data.
    pub fn reset(&mut self) {
        self.state = State::Data;
        self.sb.clear();
    }

    /// Tokenizes `input`, calling `sink` for every token in stream order.
    pub fn feed<F: FnMut(Token<'_>)>(&mut self, input: &[u8], sink: &mut F) {
        let mut i = 0;
        while let Some(rest) = input.get(i..).filter(|r| !r.is_empty()) {
            match self.state {
                State::Data => match memchr::memchr(IAC, rest) {
                    None => {
                        sink(Token::Data(rest));
                        i = input.len();
                    }
                    Some(at) => {
                        if let Some(run) = rest.get(..at).filter(|r| !r.is_empty()) {
                            sink(Token::Data(run));
                        }
                        self.state = State::Byte(Step::Iac);
                        i += at + 1;
                    }
                },
                State::Sb => {
                    let at = memchr::memchr(IAC, rest);
                    let run = rest.get(..at.unwrap_or(rest.len())).unwrap_or(&[]);
                    let room = self.max_subneg_bytes.saturating_sub(self.sb.len());
                    if run.len() > room {
                        self.sb.extend_from_slice(run.get(..room).unwrap_or(&[]));
                        sink(Token::Error(TokenError::SubnegTooLong {
                            option: self.option,
                            limit: self.max_subneg_bytes,
                        }));
                        self.state = State::SbDiscard;
                        i += room;
                    } else {
                        self.sb.extend_from_slice(run);
                        match at {
                            Some(at) => {
                                self.state = State::Byte(Step::SbIac);
                                i += at + 1;
                            }
                            None => i = input.len(),
                        }
                    }
                }
                State::SbDiscard => match memchr::memchr(IAC, rest) {
                    Some(at) => {
                        self.state = State::Byte(Step::SbDiscardIac);
                        i += at + 1;
                    }
                    None => i = input.len(),
                },
                State::Byte(step) => {
                    let byte = rest.first().copied().unwrap_or(0);
                    i += 1;
                    self.step(step, byte, rest.get(..1).unwrap_or(&[]), sink);
                }
            }
        }
    }

    /// End of stream: reports a partial sequence still held and resets.
    pub fn finish<F: FnMut(Token<'_>)>(&mut self, sink: &mut F) {
        match self.state {
            State::Data | State::SbDiscard | State::Byte(Step::SbDiscardIac) => {}
            State::Byte(Step::Iac | Step::Verb(_) | Step::SbOption) => {
                sink(Token::Error(TokenError::TruncatedCommand));
            }
            State::Sb | State::Byte(Step::SbIac) => {
                sink(Token::Error(TokenError::SubnegUnterminated {
                    option: self.option,
                    len: self.sb.len(),
                }))
            }
        }
        self.reset();
    }

    /// One byte in a state that looks at single bytes. `this` is the byte as a
    /// slice of the input, so an escaped IAC can be passed on as borrowed data.
    fn step<F: FnMut(Token<'_>)>(&mut self, step: Step, byte: u8, this: &[u8], sink: &mut F) {
        match step {
            Step::Iac => self.after_iac(byte, this, sink),
            Step::Verb(verb) => {
                sink(Token::Negotiation {
                    verb,
                    option: TelnetOption::from(byte),
                });
                self.state = State::Data;
            }
            Step::SbOption => {
                self.option = TelnetOption::from(byte);
                self.sb.clear();
                self.state = State::Sb;
            }
            Step::SbIac => match byte {
                SE => {
                    sink(Token::Subnegotiation {
                        option: self.option,
                        payload: &self.sb,
                    });
                    self.sb.clear();
                    self.state = State::Data;
                }
                IAC => {
                    if self.sb.len() < self.max_subneg_bytes {
                        self.sb.push(IAC);
                        self.state = State::Sb;
                    } else {
                        sink(Token::Error(TokenError::SubnegTooLong {
                            option: self.option,
                            limit: self.max_subneg_bytes,
                        }));
                        self.state = State::SbDiscard;
                    }
                }
                other => {
                    sink(Token::Error(TokenError::SubnegInterrupted {
                        option: self.option,
                        by: other,
                        len: self.sb.len(),
                    }));
                    self.sb.clear();
                    self.after_iac(other, this, sink);
                }
            },
            Step::SbDiscardIac => match byte {
                SE => {
                    self.sb.clear();
                    self.state = State::Data;
                }
                IAC => self.state = State::SbDiscard,
                other => {
                    self.sb.clear();
                    self.after_iac(other, this, sink);
                }
            },
        }
    }

    /// The byte after an IAC (RFC 854 "TELNET COMMAND STRUCTURE").
    fn after_iac<F: FnMut(Token<'_>)>(&mut self, byte: u8, this: &[u8], sink: &mut F) {
        self.state = State::Data;
        if byte == IAC {
            sink(Token::Data(this));
        } else if let Some(verb) = Verb::from_byte(byte) {
            self.state = State::Byte(Step::Verb(verb));
        } else if byte == SB {
            self.state = State::Byte(Step::SbOption);
        } else if byte == SE {
            sink(Token::Error(TokenError::SeWithoutSb));
        } else if let Some(command) = Command::from_byte(byte) {
            sink(Token::Command(command));
        } else {
            sink(Token::Error(TokenError::UnknownCommand(byte)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned copy of a token, so tests can collect across calls.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Owned {
        Data(Vec<u8>),
        Command(Command),
        Negotiation(Verb, TelnetOption),
        Sub(TelnetOption, Vec<u8>),
        Error(TokenError),
    }

    fn push_owned(out: &mut Vec<Owned>, token: Token<'_>) {
        match token {
            // Merge adjacent data so different splits compare equal.
            Token::Data(d) => match out.last_mut() {
                Some(Owned::Data(prev)) => prev.extend_from_slice(d),
                _ => out.push(Owned::Data(d.to_vec())),
            },
            Token::Command(c) => out.push(Owned::Command(c)),
            Token::Negotiation { verb, option } => out.push(Owned::Negotiation(verb, option)),
            Token::Subnegotiation { option, payload } => {
                out.push(Owned::Sub(option, payload.to_vec()))
            }
            Token::Error(e) => out.push(Owned::Error(e)),
        }
    }

    fn tokens_in_chunks(chunks: &[&[u8]], limit: usize) -> Vec<Owned> {
        let mut parser = TelnetParser::new(limit);
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut |t| push_owned(&mut out, t));
        }
        parser.finish(&mut |t| push_owned(&mut out, t));
        out
    }

    fn tokens(input: &[u8]) -> Vec<Owned> {
        tokens_in_chunks(&[input], 64)
    }

    #[test]
    fn every_rfc854_single_command() {
        // RFC 854 p.14: NOP 241, DM 242, BRK 243, IP 244, AO 245, AYT 246,
        // EC 247, EL 248, GA 249; RFC 885 EOR 239; RFC 1184 EOF 236 SUSP 237 ABORT 238.
        let table = [
            (241u8, Command::Nop),
            (242, Command::DataMark),
            (243, Command::Break),
            (244, Command::InterruptProcess),
            (245, Command::AbortOutput),
            (246, Command::AreYouThere),
            (247, Command::EraseCharacter),
            (248, Command::EraseLine),
            (249, Command::GoAhead),
            (239, Command::EndOfRecord),
            (236, Command::EndOfFile),
            (237, Command::Suspend),
            (238, Command::Abort),
        ];
        for (byte, command) in table {
            assert_eq!(
                tokens(&[b'a', IAC, byte, b'b']),
                vec![
                    Owned::Data(b"a".to_vec()),
                    Owned::Command(command),
                    Owned::Data(b"b".to_vec())
                ],
                "command byte {byte}"
            );
            assert_eq!(command.byte(), byte);
        }
    }

    #[test]
    fn every_negotiation_verb() {
        // RFC 854 p.14: WILL 251, WONT 252, DO 253, DONT 254, each + option code.
        for (byte, verb) in [
            (251u8, Verb::Will),
            (252, Verb::Wont),
            (253, Verb::Do),
            (254, Verb::Dont),
        ] {
            assert_eq!(
                tokens(&[IAC, byte, 1, IAC, byte, 200]),
                vec![
                    Owned::Negotiation(verb, TelnetOption::Echo),
                    Owned::Negotiation(verb, TelnetOption::Unknown(200)),
                ]
            );
            assert_eq!(verb.byte(), byte);
        }
    }

    #[test]
    fn option_codes_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(u8::from(TelnetOption::from(code)), code);
        }
        // IANA numbers of the options the task names.
        assert_eq!(TelnetOption::from(1), TelnetOption::Echo); // RFC 857
        assert_eq!(TelnetOption::from(3), TelnetOption::SuppressGoAhead); // RFC 858
        assert_eq!(TelnetOption::from(24), TelnetOption::TerminalType); // RFC 1091
        assert_eq!(TelnetOption::from(31), TelnetOption::Naws); // RFC 1073
        assert_eq!(TelnetOption::from(34), TelnetOption::Linemode); // RFC 1184
        assert_eq!(TelnetOption::from(37), TelnetOption::Authentication); // RFC 2941
        assert_eq!(TelnetOption::from(39), TelnetOption::NewEnviron); // RFC 1572
    }

    #[test]
    fn iac_iac_is_one_data_byte() {
        // RFC 854: "only the IAC need be doubled to be sent as data".
        assert_eq!(
            tokens(&[b'x', IAC, IAC, b'y', IAC, IAC]),
            vec![Owned::Data(vec![b'x', 255, b'y', 255])]
        );
    }

    #[test]
    fn subnegotiation_with_escaped_iac_in_payload() {
        // RFC 855: IAC inside SB is doubled. NAWS width 255 = ff ff (RFC 1073 example rule).
        assert_eq!(
            tokens(&[IAC, SB, 31, 0, IAC, IAC, 0, 24, IAC, SE, b'z']),
            vec![
                Owned::Sub(TelnetOption::Naws, vec![0, 255, 0, 24]),
                Owned::Data(b"z".to_vec())
            ]
        );
    }

    #[test]
    fn se_without_sb_and_unknown_command_are_errors() {
        assert_eq!(
            tokens(&[IAC, SE, b'a', IAC, 7, b'b']),
            vec![
                Owned::Error(TokenError::SeWithoutSb),
                Owned::Data(b"a".to_vec()),
                Owned::Error(TokenError::UnknownCommand(7)),
                Owned::Data(b"b".to_vec())
            ]
        );
    }

    #[test]
    fn oversize_subnegotiation_is_skipped_then_resyncs() {
        let mut input = vec![IAC, SB, 24, 0];
        input.extend(std::iter::repeat_n(b'A', 100));
        input.extend([IAC, SE, b'o', b'k']);
        assert_eq!(
            tokens_in_chunks(&[&input], 16),
            vec![
                Owned::Error(TokenError::SubnegTooLong {
                    option: TelnetOption::TerminalType,
                    limit: 16
                }),
                Owned::Data(b"ok".to_vec())
            ]
        );
    }

    #[test]
    fn oversize_by_escaped_iac_at_the_limit() {
        // Payload of exactly the limit, then a doubled IAC that does not fit.
        let input = [IAC, SB, 24, 1, 2, IAC, IAC, IAC, SE, b'k'];
        assert_eq!(
            tokens_in_chunks(&[&input], 2),
            vec![
                Owned::Error(TokenError::SubnegTooLong {
                    option: TelnetOption::TerminalType,
                    limit: 2
                }),
                Owned::Data(b"k".to_vec())
            ]
        );
        // Exactly at the limit is accepted.
        assert_eq!(
            tokens_in_chunks(&[&[IAC, SB, 24, 1, 2, IAC, SE]], 2),
            vec![Owned::Sub(TelnetOption::TerminalType, vec![1, 2])]
        );
    }

    #[test]
    fn interrupted_subnegotiation_resyncs_on_the_command() {
        // The tcpdump OOB-read capture pattern: SB 0x7b ... IAC DONT 36.
        assert_eq!(
            tokens(&[
                IAC, SB, 0x7b, 0xf5, 0, IAC, DONT, 36, IAC, SB, 24, 1, IAC, SE
            ]),
            vec![
                Owned::Error(TokenError::SubnegInterrupted {
                    option: TelnetOption::Unknown(0x7b),
                    by: DONT,
                    len: 2
                }),
                Owned::Negotiation(Verb::Dont, TelnetOption::OldEnviron),
                Owned::Sub(TelnetOption::TerminalType, vec![1]),
            ]
        );
        // An interrupting IAC IAC is payload, an interrupting single command is processed.
        assert_eq!(
            tokens(&[IAC, SB, 24, 9, IAC, NOP, b'q']),
            vec![
                Owned::Error(TokenError::SubnegInterrupted {
                    option: TelnetOption::TerminalType,
                    by: NOP,
                    len: 1
                }),
                Owned::Command(Command::Nop),
                Owned::Data(b"q".to_vec())
            ]
        );
    }

    #[test]
    fn command_inside_discarded_subnegotiation_is_processed() {
        let input = [IAC, SB, 24, 1, 2, 3, IAC, WILL, 1, b'd'];
        assert_eq!(
            tokens_in_chunks(&[&input], 2),
            vec![
                Owned::Error(TokenError::SubnegTooLong {
                    option: TelnetOption::TerminalType,
                    limit: 2
                }),
                Owned::Negotiation(Verb::Will, TelnetOption::Echo),
                Owned::Data(b"d".to_vec())
            ]
        );
    }

    #[test]
    fn unterminated_and_truncated_at_end_of_stream() {
        // PcapPlusPlus telnetCommandAfterData.pcap payload: ff ff ff fa 17 00.
        assert_eq!(
            tokens(&[IAC, IAC, IAC, SB, 0x17, 0]),
            vec![
                Owned::Data(vec![255]),
                Owned::Error(TokenError::SubnegUnterminated {
                    option: TelnetOption::SendLocation,
                    len: 1
                })
            ]
        );
        for tail in [&[IAC][..], &[IAC, DO], &[IAC, SB]] {
            assert_eq!(
                tokens(tail),
                vec![Owned::Error(TokenError::TruncatedCommand)]
            );
        }
        assert_eq!(tokens(&[]), vec![]);
    }

    #[test]
    fn pending_reports_partial_state() {
        let mut p = TelnetParser::new(8);
        let mut sink = |_: Token<'_>| {};
        assert_eq!(p.pending(), Pending::Nothing);
        p.feed(&[IAC], &mut sink);
        assert_eq!(p.pending(), Pending::Command);
        p.feed(&[SB, 24, 0, b'x'], &mut sink);
        assert_eq!(p.pending(), Pending::Subnegotiation(2));
        p.reset();
        assert_eq!(p.pending(), Pending::Nothing);
    }

    /// A stream exercising every state: data, IAC IAC, commands, verbs, SB
    /// with escaped IAC, SE without SB, unknown command, interrupted SB.
    fn mixed_stream() -> Vec<u8> {
        vec![
            b'l', b'o', IAC, IAC, b'g', IAC, NOP, IAC, WILL, 1, IAC, DO, 3, IAC, SB, 31, 0, 80, 0,
            IAC, IAC, IAC, SE, b'i', IAC, SE, IAC, 100, IAC, SB, 39, 0, 0, b'U', IAC, GA, b'n',
            b'\r', 0, IAC, DONT, 34, IAC, SB, 24, 0, b'X', IAC, SE,
        ]
    }

    #[test]
    fn split_at_every_offset_equals_whole() {
        let input = mixed_stream();
        let whole = tokens(&input);
        assert_eq!(
            whole,
            vec![
                Owned::Data(vec![b'l', b'o', 255, b'g']),
                Owned::Command(Command::Nop),
                Owned::Negotiation(Verb::Will, TelnetOption::Echo),
                Owned::Negotiation(Verb::Do, TelnetOption::SuppressGoAhead),
                Owned::Sub(TelnetOption::Naws, vec![0, 80, 0, 255]),
                Owned::Data(b"i".to_vec()),
                Owned::Error(TokenError::SeWithoutSb),
                Owned::Error(TokenError::UnknownCommand(100)),
                Owned::Error(TokenError::SubnegInterrupted {
                    option: TelnetOption::NewEnviron,
                    by: GA,
                    len: 3
                }),
                Owned::Command(Command::GoAhead),
                Owned::Data(vec![b'n', b'\r', 0]),
                Owned::Negotiation(Verb::Dont, TelnetOption::Linemode),
                Owned::Sub(TelnetOption::TerminalType, vec![0, b'X']),
            ]
        );
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(tokens_in_chunks(&[a, b], 64), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(tokens_in_chunks(&bytes, 64), whole);
    }

    #[test]
    fn split_iac_sequences_at_every_offset_of_three_chunks() {
        let input = mixed_stream();
        let whole = tokens(&input);
        for a in 0..=input.len() {
            for b in a..=input.len() {
                let chunks = [&input[..a], &input[a..b], &input[b..]];
                assert_eq!(tokens_in_chunks(&chunks, 64), whole, "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn mutated_streams_tokenize_the_same_whole_or_split() {
        // Deterministic mutations of the mixed stream (xorshift), cut in two
        // at a varying offset: the tokenizer keeps no state that depends on
        // where a delivery ends, so the tokens equal those of the whole input.
        let base = mixed_stream();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let mut input = base.clone();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % input.len();
                let choice = next() % 4;
                let byte = [IAC, SB, SE, (next() & 0xff) as u8][choice as usize];
                input[at] = byte;
            }
            let cut = (next() as usize) % (input.len() + 1);
            assert_eq!(
                tokens_in_chunks(&[&input[..cut], &input[cut..]], 4),
                tokens_in_chunks(&[&input], 4),
                "{input:?} cut at {cut}"
            );
        }
    }
}
