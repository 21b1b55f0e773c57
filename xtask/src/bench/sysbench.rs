//! `--sysbench`: sysbench's own OLTP tests against each path, as an outside judge of the load
//! generator. They run on the load phase's `sbtest` tables (same schema and size as
//! `sysbench prepare` makes), so nothing is prepared per path.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::dataset::{TABLES, TABLE_SIZE};
use super::report::Sample;
use super::workloads::Endpoint;
use crate::process;

/// The sysbench tests run.
pub const TESTS: [&str; 2] = ["oltp_point_select", "oltp_read_only"];

/// What each test's transaction is, for the report.
pub fn title(test: &str) -> &'static str {
    match test {
        "oltp_point_select" => "sysbench oltp_point_select (prepared point selects)",
        _ => "sysbench oltp_read_only (10 point, 4 range selects per transaction)",
    }
}

/// Runs one sysbench test for `duration` (whole seconds, at least 1) against `endpoint`;
/// measures the CPU of `pid` over sysbench's whole run.
pub fn run(
    test: &str,
    endpoint: &Endpoint,
    threads: usize,
    duration: Duration,
    pid: Option<u32>,
) -> Result<Sample> {
    let secs = duration.as_secs().max(1);
    let mut cmd = Command::new("sysbench");
    cmd.arg(test)
        .arg("--db-driver=mysql")
        .arg(format!("--mysql-host={}", endpoint.addr.ip()))
        .arg(format!("--mysql-port={}", endpoint.addr.port()))
        .arg(format!("--mysql-user={}", endpoint.user))
        .arg(format!("--mysql-password={}", endpoint.password))
        .arg(format!("--mysql-db={}", gatehouse_tests::TEST_DB))
        .arg(format!("--tables={TABLES}"))
        .arg(format!("--table-size={TABLE_SIZE}"))
        .arg(format!("--threads={threads}"))
        .arg(format!("--time={secs}"))
        .arg("--percentile=99")
        .arg("run");
    if let Some(p) = pid {
        process::reset_peak_rss(p);
    }
    let cpu_before = pid.map(process::cpu_time).transpose()?;
    let out = process::output(&mut cmd, "")?;
    let cpu = pid
        .map(process::cpu_time)
        .transpose()?
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    let peak_rss_kib = pid.map(|p| process::status_kib(p, "VmHWM")).transpose()?;
    let mut sample = parse(&out).with_context(|| format!("parsing sysbench output:\n{out}"))?;
    sample.cpu_us_per_stmt = cpu.map(|c| c.as_micros() as f64 / sample.statements.max(1) as f64);
    sample.peak_rss_kib = peak_rss_kib;
    Ok(sample)
}

/// Reads sysbench 1.0's summary: `queries:`, `transactions:`, `ignored errors:`, `total time:`
/// and the latency block (milliseconds).
fn parse(out: &str) -> Result<Sample> {
    let value = |key: &str| -> Option<f64> {
        let line = out.lines().find(|l| l.trim_start().starts_with(key))?;
        let rest = line.trim_start()[key.len()..].trim();
        rest.split_whitespace()
            .next()?
            .trim_end_matches('s')
            .parse()
            .ok()
    };
    let (Some(queries), Some(transactions), Some(secs)) = (
        value("queries:"),
        value("transactions:"),
        value("total time:"),
    ) else {
        bail!("no queries/transactions/total time in the output");
    };
    let ms = |key: &str| value(key).map(|v| v * 1000.0);
    Ok(Sample {
        ops: transactions as u64,
        statements: queries as u64,
        errors: value("ignored errors:").unwrap_or(0.0) as u64,
        first_error: None,
        secs,
        rate: queries / secs.max(1e-9),
        p50_us: None,
        p99_us: ms("99th percentile:"),
        p999_us: None,
        max_us: ms("max:"),
        cpu_us_per_stmt: None,
        client_cpu_us_per_stmt: None,
        peak_rss_kib: None,
        rss_per_conn_kib: None,
        histogram: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_summary() {
        let out = "SQL statistics:\n    queries performed:\n        read:   1000\n        \
                   other:  0\n        total:  1000\n    transactions:  1000   (99.90 per sec.)\n    \
                   queries:  1000   (99.90 per sec.)\n    ignored errors:  2  (0.20 per sec.)\n\n\
                   General statistics:\n    total time:  10.0100s\n\n\
                   Latency (ms):\n         min:  0.10\n         avg:  0.50\n         \
                   max:  9.00\n         99th percentile:  1.50\n";
        let s = super::parse(out).unwrap();
        assert_eq!((s.ops, s.statements, s.errors), (1000, 1000, 2));
        assert_eq!(s.p99_us, Some(1500.0));
        assert!((s.secs - 10.01).abs() < 1e-9);
    }
}
