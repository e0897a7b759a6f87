//! The `spanwatch` binary: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = spanwatch::cli::Cli::parse();
    match spanwatch::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("spanwatch: error: {e}");
            ExitCode::from(e.code)
        }
    }
}
