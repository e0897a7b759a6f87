//! The CLI's error: a message and the exit code it maps to.

use crate::capture::CaptureError;
use crate::config::ConfigError;

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    /// Success (a damaged capture whose readable part was processed counts as success;
    /// the damage is printed as a warning).
    pub const OK: u8 = 0;
    /// An unexpected failure (e.g. writing the output failed).
    pub const FAILURE: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// An input file cannot be read or is not a pcap/pcapng capture.
    pub const INPUT: u8 = 3;
    /// Live capture could not start or failed (no such interface, permissions, bad BPF).
    pub const CAPTURE: u8 = 4;
    /// The config file, a rule file, the credential dictionary, an alert output, a
    /// labels file or a pseudonymisation key is invalid or cannot be opened.
    pub const CONFIG: u8 = 5;
    /// `rules check`: a rule's own test case failed.
    pub const RULE_TEST: u8 = 6;
}

/// An error with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<CaptureError> for CliError {
    fn from(e: CaptureError) -> Self {
        let code = match e {
            CaptureError::Live { .. } => exit::CAPTURE,
            _ => exit::INPUT,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError {
            code: exit::FAILURE,
            message: e.to_string(),
        }
    }
}

/// A config error as the CLI reports it.
pub fn config_error(e: ConfigError) -> CliError {
    CliError {
        code: exit::CONFIG,
        message: e.to_string(),
    }
}
