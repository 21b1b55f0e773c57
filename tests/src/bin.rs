//! The `gatehouse` binary, for tests that run it as a process (CLI commands, kill -9).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The path of a freshly built `gatehouse` binary (built once per test process with the same
/// cargo and target directory as the tests).
pub fn gatehouse_binary() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "gatehouse",
            "--bin",
            "gatehouse",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!(
            "cargo build -p gatehouse failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(exe) = msg.get("executable").and_then(|e| e.as_str()) {
            if msg["target"]["name"] == "gatehouse" {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    bail!("cargo build did not report the gatehouse executable")
}

/// Runs `gatehouse ARGS…` to completion; (success, stdout, stderr).
pub fn run_gatehouse(args: &[&str]) -> Result<(bool, String, String)> {
    let out = Command::new(gatehouse_binary()?)
        .args(args)
        .output()
        .context("running gatehouse")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
