//! What a bench run found: per scenario (a workload, or a sysbench test), per path, per round;
//! summaries over rounds (median, min–max), ratios between paths, the targets, and the machine
//! it ran on. Printed as tables and written as JSON.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::workloads::{new_histogram, Measured};
use super::PathKind;

/// One run of one scenario on one path, summarized.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Operations completed in the window (statements, transactions or connections).
    pub ops: u64,
    /// Statements sent by those operations.
    pub statements: u64,
    /// Operations that failed in the window.
    pub errors: u64,
    /// The first error seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Length of the measured window.
    pub secs: f64,
    /// Statements per second (operations per second when the scenario sends no statement).
    pub rate: f64,
    /// Latency of an operation, microseconds.
    pub p50_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// 99.9th percentile.
    pub p999_us: Option<f64>,
    /// Largest.
    pub max_us: Option<f64>,
    /// CPU time of the path's process per statement (per operation when it sends none).
    pub cpu_us_per_stmt: Option<f64>,
    /// CPU time of the load generator per statement: the client shares the cores, so this
    /// says how much of the machine the measuring itself took.
    pub client_cpu_us_per_stmt: Option<f64>,
    /// Peak RSS of the path's process in the window (`VmHWM`), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Idle connections: RSS growth of the path's process per connection, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_conn_kib: Option<f64>,
    /// The full latency distribution (for the chart), when the load generator measured it.
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

impl From<Measured> for Sample {
    fn from(m: Measured) -> Sample {
        let secs = m.elapsed.as_secs_f64();
        let per = if m.statements > 0 {
            m.statements
        } else {
            m.ops
        };
        let q = |q: f64| Some(m.latency_us.value_at_quantile(q) as f64);
        Sample {
            ops: m.ops,
            statements: m.statements,
            errors: m.errors,
            first_error: m.first_error,
            secs,
            rate: per as f64 / secs.max(1e-9),
            p50_us: q(0.5),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: Some(m.latency_us.max() as f64),
            cpu_us_per_stmt: m.cpu.map(|cpu| cpu.as_micros() as f64 / per.max(1) as f64),
            client_cpu_us_per_stmt: m
                .client_cpu
                .map(|cpu| cpu.as_micros() as f64 / per.max(1) as f64),
            peak_rss_kib: m.peak_rss_kib,
            rss_per_conn_kib: m.rss_per_conn_kib,
            histogram: Some(m.latency_us),
        }
    }
}

/// Median, min and max of a value over rounds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stat {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Stat {
    /// `None` for no values.
    pub fn of(mut values: Vec<f64>) -> Option<Stat> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

/// One round's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: usize,
    /// The measurement, when the run worked.
    #[serde(flatten)]
    pub sample: Option<Sample>,
    /// Why the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A scenario's runs on one path.
#[derive(Debug, Clone, Serialize)]
pub struct PathRuns {
    /// Which path.
    pub path: PathKind,
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Over the rounds that worked (absent when none did).
    pub summary: Option<Summary>,
}

impl PathRuns {
    fn samples(&self) -> impl Iterator<Item = (usize, &Sample)> {
        self.rounds
            .iter()
            .filter_map(|r| r.sample.as_ref().map(|s| (r.round, s)))
    }

    fn stat(&self, f: impl Fn(&Sample) -> Option<f64>) -> Option<Stat> {
        Stat::of(self.samples().filter_map(|(_, s)| f(s)).collect())
    }

    /// `f(self's sample, other's sample)` for each round both measured.
    fn paired(
        &self,
        other: &PathRuns,
        f: impl Fn(&Sample, &Sample) -> Option<f64>,
    ) -> Option<Stat> {
        let values = self
            .samples()
            .filter_map(|(round, a)| {
                let (_, b) = other.samples().find(|(r, _)| *r == round)?;
                f(a, b)
            })
            .collect();
        Stat::of(values)
    }

    /// Every round's latency histogram added together.
    pub fn merged_histogram(&self) -> Option<Histogram<u64>> {
        let mut merged = new_histogram();
        for h in self.samples().filter_map(|(_, s)| s.histogram.as_ref()) {
            merged.add(h).ok()?;
        }
        (!merged.is_empty()).then_some(merged)
    }
}

/// A path's results over rounds, and how they compare with direct and HAProxy (ratios are
/// taken per round, pairing runs of the same round, then summarized).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Statements (or operations) per second.
    pub rate: Stat,
    /// Median latency.
    pub p50_us: Option<Stat>,
    /// 99th percentile latency.
    pub p99_us: Option<Stat>,
    /// 99.9th percentile latency.
    pub p999_us: Option<Stat>,
    /// CPU of the path's process per statement.
    pub cpu_us_per_stmt: Option<Stat>,
    /// Largest peak RSS over rounds, KiB.
    pub peak_rss_kib: Option<u64>,
    /// RSS per idle connection, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_conn_kib: Option<Stat>,
    /// Errors over all rounds.
    pub errors: u64,
    /// rate / direct's rate.
    pub rate_vs_direct: Option<Stat>,
    /// rate / HAProxy's rate.
    pub rate_vs_haproxy: Option<Stat>,
    /// p99 / direct's p99.
    pub p99_vs_direct: Option<Stat>,
    /// p99 − direct's p99, microseconds.
    pub added_p99_vs_direct_us: Option<Stat>,
    /// CPU per statement / HAProxy's.
    pub cpu_vs_haproxy: Option<Stat>,
    /// Latency percentile curve over all rounds: `[percentile, microseconds]`.
    pub percentiles: Vec<[f64; 2]>,
}

/// One scenario: a built-in workload or a sysbench test.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Short name (`point-select`, `sysbench-oltp_point_select`, ...).
    pub name: String,
    /// What it does.
    pub title: String,
    /// What one latency sample covers.
    pub latency_of: String,
    /// Unit of `rate`.
    pub rate_unit: String,
    /// Client connections (or threads).
    pub connections: usize,
    /// Results per path.
    pub paths: Vec<PathRuns>,
}

/// Percentiles the JSON curve and the chart sample.
pub fn curve_points() -> Vec<f64> {
    // Minimum (0%) .. 99.99% evenly in "nines" (−log10(1 − q)), then the maximum.
    let mut points: Vec<f64> = (0..=80)
        .map(|i| 1.0 - 10f64.powf(-(i as f64 * 0.05)))
        .collect();
    points.push(1.0);
    points
}

impl Scenario {
    /// Computes each path's summary (call once every round has run).
    pub fn summarize(&mut self) {
        let find = |kind: PathKind| self.paths.iter().find(|p| p.path == kind).cloned();
        let (direct, haproxy) = (find(PathKind::Direct), find(PathKind::Haproxy));
        for runs in &mut self.paths {
            let Some(rate) = runs.stat(|s| Some(s.rate)) else {
                runs.summary = None;
                continue;
            };
            let vs = |base: &Option<PathRuns>, f: &dyn Fn(&Sample, &Sample) -> Option<f64>| {
                base.as_ref()
                    .filter(|b| b.path != runs.path)
                    .and_then(|b| runs.paired(b, f))
            };
            let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?).filter(|r| r.is_finite());
            let percentiles = runs
                .merged_histogram()
                .map(|h| {
                    curve_points()
                        .into_iter()
                        .map(|q| [q * 100.0, h.value_at_quantile(q) as f64])
                        .collect()
                })
                .unwrap_or_default();
            runs.summary = Some(Summary {
                rate,
                p50_us: runs.stat(|s| s.p50_us),
                p99_us: runs.stat(|s| s.p99_us),
                p999_us: runs.stat(|s| s.p999_us),
                cpu_us_per_stmt: runs.stat(|s| s.cpu_us_per_stmt),
                peak_rss_kib: runs.samples().filter_map(|(_, s)| s.peak_rss_kib).max(),
                rss_per_conn_kib: runs.stat(|s| s.rss_per_conn_kib),
                errors: runs.samples().map(|(_, s)| s.errors).sum(),
                rate_vs_direct: vs(&direct, &|a, b| ratio(Some(a.rate), Some(b.rate))),
                rate_vs_haproxy: vs(&haproxy, &|a, b| ratio(Some(a.rate), Some(b.rate))),
                p99_vs_direct: vs(&direct, &|a, b| ratio(a.p99_us, b.p99_us)),
                added_p99_vs_direct_us: vs(&direct, &|a, b| Some(a.p99_us? - b.p99_us?)),
                cpu_vs_haproxy: vs(&haproxy, &|a, b| {
                    ratio(a.cpu_us_per_stmt, b.cpu_us_per_stmt)
                }),
                percentiles,
            });
        }
    }

    /// The table printed for this scenario.
    pub fn table(&self, rounds: usize) -> String {
        let mut out = format!(
            "\n== {} — {} ({} conns, {rounds} rounds; latency per {}) ==\n",
            self.name, self.title, self.connections, self.latency_of
        );
        let idle = self.paths.iter().any(|p| {
            p.summary
                .as_ref()
                .is_some_and(|s| s.rss_per_conn_kib.is_some())
        }) || self.name == "idle";
        let header: Vec<&str> = if idle {
            vec![
                "path", "conn/s", "p50", "p99", "p99.9", "RSS/conn", "peak RSS", "errors",
            ]
        } else {
            vec![
                "path",
                &self.rate_unit,
                "p50",
                "p99",
                "p99.9",
                "x direct",
                "x haproxy",
                "CPU us/stmt",
                "CPU x haproxy",
                "peak RSS",
                "errors",
            ]
        };
        let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
        for runs in &self.paths {
            let mut row = vec![runs.path.name().to_owned()];
            let Some(s) = &runs.summary else {
                let why = runs
                    .rounds
                    .iter()
                    .find_map(|r| r.error.as_deref())
                    .unwrap_or("not run");
                let first_line = why.lines().next().unwrap_or_default();
                row.push(format!("FAILED: {}", one_line(first_line, 100)));
                rows.push(row);
                continue;
            };
            row.push(fmt_count(s.rate.median));
            for p in [&s.p50_us, &s.p99_us, &s.p999_us] {
                row.push(p.map_or("-".into(), |p| fmt_us(p.median)));
            }
            if idle {
                row.push(
                    s.rss_per_conn_kib
                        .map_or("-".into(), |r| format!("{:.1} KiB", r.median)),
                );
            } else {
                row.push(fmt_ratio(s.rate_vs_direct));
                row.push(fmt_ratio(s.rate_vs_haproxy));
                row.push(
                    s.cpu_us_per_stmt
                        .map_or("-".into(), |c| format!("{:.1}", c.median)),
                );
                row.push(fmt_ratio(s.cpu_vs_haproxy));
            }
            row.push(s.peak_rss_kib.map_or("-".into(), fmt_kib));
            let failed_rounds = runs.rounds.iter().filter(|r| r.error.is_some()).count();
            row.push(if failed_rounds > 0 {
                format!("{} (+{failed_rounds} failed rounds)", s.errors)
            } else {
                s.errors.to_string()
            });
            rows.push(row);
        }
        out += &render_table(&rows);
        out
    }
}

/// Text table with aligned columns; a row with fewer cells spills its last one over the rest.
fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in rows.iter().filter(|r| r.len() == cols) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                let _ = write!(out, "{cell}");
            } else if i == 0 {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            } else {
                let _ = write!(out, "{cell:>w$}  ", w = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

fn one_line(s: &str, max: usize) -> String {
    let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > max {
        format!("{}...", line.chars().take(max).collect::<String>())
    } else {
        line
    }
}

/// `12.3k`, `950`.
pub fn fmt_count(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `850us`, `1.23ms`, `12.3ms`, `123ms`, `2.50s`: three significant digits.
pub fn fmt_us(us: f64) -> String {
    match us {
        _ if us < 1000.0 => format!("{us:.0}us"),
        _ if us < 10_000.0 => format!("{:.2}ms", us / 1e3),
        _ if us < 100_000.0 => format!("{:.1}ms", us / 1e3),
        _ if us < 1_000_000.0 => format!("{:.0}ms", us / 1e3),
        _ => format!("{:.2}s", us / 1e6),
    }
}

fn fmt_kib(kib: u64) -> String {
    if kib >= 10 * 1024 {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    } else {
        format!("{kib} KiB")
    }
}

/// `0.64 (0.60-0.70)`: median over rounds, then min-max.
fn fmt_ratio(r: Option<Stat>) -> String {
    r.map_or("-".into(), |r| {
        format!("{:.2} ({:.2}-{:.2})", r.median, r.min, r.max)
    })
}

/// A target from the issue: reported, never asserted.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// Which gateway path.
    pub path: PathKind,
    /// What is wanted, in words.
    pub target: String,
    /// What was measured (median over rounds), in words.
    pub measured: Option<String>,
    /// `None`: could not be measured.
    pub met: Option<bool>,
}

/// Evaluates the targets for each gateway path that was asked for.
pub fn targets(scenarios: &[Scenario], gateway_paths: &[PathKind]) -> Vec<TargetCheck> {
    let summary = |scenario: &str, path: PathKind| {
        scenarios
            .iter()
            .find(|s| s.name == scenario)?
            .paths
            .iter()
            .find(|p| p.path == path)?
            .summary
            .clone()
    };
    let mut checks = Vec::new();
    for &path in gateway_paths {
        let point = summary("point-select", path);
        let idle = summary("idle", path);
        let mut check =
            |target: &str, value: Option<f64>, limit: f64, at_least: bool, unit: &str| {
                checks.push(TargetCheck {
                    path,
                    target: target.to_owned(),
                    measured: value.map(|v| format!("{v:.2}{unit}")),
                    met: value.map(|v| if at_least { v >= limit } else { v <= limit }),
                })
            };
        let p = point.as_ref();
        check(
            "point-select QPS >= 0.9 x haproxy",
            p.and_then(|s| s.rate_vs_haproxy).map(|r| r.median),
            0.9,
            true,
            " x",
        );
        check(
            "point-select CPU/statement <= 1.5 x haproxy",
            p.and_then(|s| s.cpu_vs_haproxy).map(|r| r.median),
            1.5,
            false,
            " x",
        );
        check(
            "point-select p99 added over direct <= 100 us",
            p.and_then(|s| s.added_p99_vs_direct_us).map(|r| r.median),
            100.0,
            false,
            " us",
        );
        check(
            "RSS per idle connection <= 64 KiB",
            idle.and_then(|s| s.rss_per_conn_kib).map(|r| r.median),
            64.0,
            false,
            " KiB",
        );
    }
    checks
}

/// The targets as printed lines.
pub fn targets_text(checks: &[TargetCheck]) -> String {
    let mut out = String::from("\n== targets (reported, not asserted) ==\n");
    for c in checks {
        let verdict = match c.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "  [{verdict:^12}] {:<14} {:<46} {}",
            c.path.name(),
            c.target,
            c.measured.as_deref().unwrap_or("-")
        );
    }
    out
}

/// Where and on what the run happened.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `PRETTY_NAME` from /etc/os-release.
    pub os: String,
    /// Total memory, KiB.
    pub mem_total_kib: u64,
}

impl Machine {
    /// Reads /proc and /etc.
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let field = |text: &str, key: &str, sep: char| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(sep))
                .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                .unwrap_or_default()
        };
        let meminfo = read("/proc/meminfo");
        Machine {
            cpu_model: field(&read("/proc/cpuinfo"), "model name", ':'),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            os: field(&read("/etc/os-release"), "PRETTY_NAME", '='),
            mem_total_kib: field(&meminfo, "MemTotal", ':')
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0),
        }
    }
}

/// The commit measured.
#[derive(Debug, Clone, Serialize)]
pub struct Git {
    /// `git rev-parse HEAD`.
    pub commit: Option<String>,
    /// Tracked files differ from it.
    pub dirty: bool,
}

impl Git {
    /// Asks git in the workspace.
    pub fn probe() -> Git {
        let git = |args: &[&str]| {
            crate::process::output(
                std::process::Command::new("git")
                    .current_dir(crate::gateway::workspace_root())
                    .args(args),
                "",
            )
            .ok()
        };
        Git {
            commit: git(&["rev-parse", "HEAD"]),
            dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
        }
    }
}

/// `2024-06-01T12:34:56Z` for a Unix time.
pub fn utc_timestamp(unix_secs: u64) -> String {
    let (days, secs) = (unix_secs / 86_400, unix_secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_median_min_max() {
        let s = Stat::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of(vec![1.0, 4.0]).unwrap().median, 2.5);
        assert!(Stat::of(vec![]).is_none());
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
