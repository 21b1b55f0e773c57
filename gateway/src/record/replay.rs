//! `gatehouse replay` (being written).
use std::path::Path;
use std::process::ExitCode;

/// `gatehouse replay ID --against TARGET`.
pub fn main_replay(_config: &crate::config::Config, _dir: &Path, _id: u64, _against: &str, _allow_writes: bool) -> ExitCode {
    ExitCode::FAILURE
}
