//! `gatehouse audit verify` (being written).
use std::path::Path;
use std::process::ExitCode;

/// `gatehouse audit verify DIR`.
pub fn main_verify(_dir: &Path) -> ExitCode {
    eprintln!("gatehouse: audit verify is not built yet");
    ExitCode::FAILURE
}
