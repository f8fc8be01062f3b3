//! Exit codes, the same for every subcommand (listed in `--help`).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Anything not covered below.
    Failure = 1,
    /// The input or configuration is wrong; the message says what to fix.
    BadInput = 2,
    /// Redis could not be reached or did not answer in time.
    Unreachable = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}
