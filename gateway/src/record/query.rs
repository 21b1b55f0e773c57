//! `sessions list|show`, `audit export`, `status` (being written).
use std::path::Path;
use std::process::ExitCode;

/// Filters of `sessions list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Identity.
    pub identity: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// `2h` or RFC 3339.
    pub since: Option<String>,
    /// Statement kind.
    pub statement_kind: Option<String>,
    /// Max sessions.
    pub limit: usize,
}

/// `gatehouse status`.
pub fn main_status(_dir: &Path) -> ExitCode {
    ExitCode::FAILURE
}
/// `gatehouse audit export`.
pub fn main_export(_dir: &Path, _format: &str, _since: Option<&str>, _output: Option<&Path>) -> ExitCode {
    ExitCode::FAILURE
}
/// `gatehouse sessions list`.
pub fn main_list(_dir: &Path, _filter: &ListFilter, _json: bool) -> ExitCode {
    ExitCode::FAILURE
}
/// `gatehouse sessions show`.
pub fn main_show(_dir: &Path, _id: u64, _json: bool) -> ExitCode {
    ExitCode::FAILURE
}
