//! `cargo xtask bench`: the load benchmark. Starts an isolated MariaDB (the test harness's),
//! HAProxy in `mode tcp` (the cheapest possible hop) and the gateway (release build, one process
//! per I/O driver), then runs each workload against each path, interleaved (direct, haproxy,
//! gateway-epoll, gateway-uring, direct, ...) for several rounds so machine drift hits every
//! path alike.
//!
//! How it measures:
//! - The load generator (`workloads.rs`) is closed-loop: N mysql_async connections on tokio,
//!   each sending its next operation when the last one answered. It always runs from an
//!   optimized build (a debug `cargo xtask` re-runs itself with `--release`), since it shares
//!   the cores with the server and the relay.
//! - Each run: connect (unmeasured), warm up, then a measured window. Latency per operation in
//!   an HDR histogram; CPU of the relay process from `/proc/PID/stat` (utime + stime) over the
//!   window, divided by statements; peak RSS from `VmHWM` (reset at the window's start through
//!   `/proc/PID/clear_refs`). The client's own CPU per statement goes in the JSON.
//! - Ratios (x direct, x haproxy) pair runs of the same round, then take the median and the
//!   min–max over rounds.
//! - The idle workload runs against a fresh relay process each round (memory an allocator kept
//!   from earlier workloads would hide what a connection costs) and reports RSS growth per held
//!   connection.
//!
//! A path that cannot start, or a run that fails, is reported as failed with its error; the
//! other paths go on, and the exit status is non-zero at the end. Results: a table per workload
//! on stdout; under `target/bench/` a JSON file per run (machine, versions, git commit, every
//! round) and an SVG chart of the latency percentiles; configs and logs of the relays in
//! `target/bench/last-run/`.

mod chart;
mod dataset;
mod haproxy;
mod paths;
mod report;
mod sysbench;
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use gatehouse_tests::MariaDb;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::gateway;
use crate::process::{self, Service};
use paths::{Launcher, Path, PathKind};
use report::{PathRuns, Round, Sample, Scenario};
use workloads::{Window, Workload};

/// `cargo xtask bench` flags. Defaults fit a 2-core machine in under 10 minutes (after the
/// release build); `--quick` runs everything briefly (under 2 minutes) for CI.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Every workload, briefly: 0.7 s windows, 0.2 s warm-up, 200 idle connections.
    #[arg(long)]
    quick: bool,
    /// Paths to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = PathKind::ALL)]
    paths: Vec<PathKind>,
    /// Workloads to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Workload::ALL)]
    workloads: Vec<Workload>,
    /// Rounds of (every path once) per workload; at least 3 gives a median and a spread.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds per run [default: 5, --quick: 0.7].
    #[arg(long)]
    duration: Option<f64>,
    /// Unmeasured warm-up seconds before each run's window [default: 1, --quick: 0.2].
    #[arg(long)]
    warmup: Option<f64>,
    /// Client connections for point select, prepared, read-only and write mixes.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Client connections for the large result set.
    #[arg(long, default_value_t = 4)]
    large_connections: usize,
    /// Concurrent clients in the connection storm.
    #[arg(long, default_value_t = 8)]
    storm_connections: usize,
    /// Idle connections held open [default: 1000, --quick: 200; at most 1900].
    #[arg(long)]
    idle_connections: Option<usize>,
    /// Load generator threads (tokio workers) [default: CPUs].
    #[arg(long)]
    client_threads: Option<usize>,
    /// Gateway `[io] threads` (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    gateway_threads: usize,
    /// Use this gateway binary instead of `cargo build --release -p gatehouse`.
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Also run sysbench oltp_point_select and oltp_read_only against each path.
    #[arg(long)]
    sysbench: bool,
    /// sysbench threads.
    #[arg(long, default_value_t = 16)]
    sysbench_threads: usize,
    /// Where the JSON and SVG go [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The flags with defaults resolved, as recorded in the JSON.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    quick: bool,
    paths: Vec<PathKind>,
    workloads: Vec<Workload>,
    rounds: usize,
    duration_secs: f64,
    warmup_secs: f64,
    connections: usize,
    large_connections: usize,
    storm_connections: usize,
    idle_connections: usize,
    client_threads: usize,
    gateway_threads: usize,
    sysbench: bool,
    sysbench_threads: usize,
}

impl Settings {
    fn resolve(a: &BenchArgs) -> Result<Settings> {
        let pick = |v: Option<f64>, normal: f64, quick: f64| {
            v.unwrap_or(if a.quick { quick } else { normal })
        };
        let s = Settings {
            quick: a.quick,
            paths: dedup(&a.paths),
            workloads: dedup(&a.workloads),
            rounds: a.rounds,
            duration_secs: pick(a.duration, 5.0, 0.7),
            warmup_secs: pick(a.warmup, 1.0, 0.2),
            connections: a.connections,
            large_connections: a.large_connections,
            storm_connections: a.storm_connections,
            idle_connections: a
                .idle_connections
                .unwrap_or(if a.quick { 200 } else { 1000 }),
            client_threads: a
                .client_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            gateway_threads: a.gateway_threads,
            sysbench: a.sysbench,
            sysbench_threads: a.sysbench_threads,
        };
        ensure!(s.rounds >= 1, "--rounds must be at least 1");
        ensure!(
            s.duration_secs > 0.0 && s.warmup_secs >= 0.0,
            "bad --duration/--warmup"
        );
        ensure!(
            s.connections > 0 && s.large_connections > 0 && s.storm_connections > 0,
            "connection counts must be positive"
        );
        // The harness's MariaDB allows 2000 connections; every path opens one upstream each.
        ensure!(
            (1..=1900).contains(&s.idle_connections),
            "--idle-connections must be 1..=1900"
        );
        ensure!(s.client_threads > 0, "--client-threads must be positive");
        Ok(s)
    }

    fn window(&self) -> Window {
        Window {
            warmup: Duration::from_secs_f64(self.warmup_secs),
            measure: Duration::from_secs_f64(self.duration_secs),
        }
    }

    fn connections_for(&self, w: Workload) -> usize {
        match w {
            Workload::LargeResult => self.large_connections,
            Workload::ConnectStorm => self.storm_connections,
            Workload::Idle => self.idle_connections,
            _ => self.connections,
        }
    }

    /// Connections any path must accept at once.
    fn max_connections(&self) -> usize {
        (self.idle_connections + 100).max(4096)
    }
}

/// `v` without repeats, first occurrences kept in order.
fn dedup<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    out
}

/// What is being measured in one run cell.
#[derive(Debug, Clone, Copy)]
enum Job {
    Workload(Workload),
    Sysbench(&'static str),
}

/// Path status in the JSON.
#[derive(Debug, Serialize)]
struct PathStatus {
    path: PathKind,
    address: Option<String>,
    error: Option<String>,
}

/// The JSON written per run.
#[derive(Serialize)]
struct RunReport<'a> {
    started_at: String,
    wall_secs: f64,
    git: report::Git,
    machine: report::Machine,
    versions: BTreeMap<String, String>,
    settings: &'a Settings,
    paths: Vec<PathStatus>,
    scenarios: &'a [Scenario],
    targets: Vec<report::TargetCheck>,
}

/// Set to run the load generator from a debug build (it then uses far more CPU per statement,
/// CPU it takes from the server and the proxy on the same cores).
const DEBUG_CLIENT_ENV: &str = "XTASK_BENCH_DEBUG_CLIENT";

/// Runs the benchmark (re-running itself from an optimized build first, see
/// [`DEBUG_CLIENT_ENV`]).
pub fn run(args: BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) && std::env::var_os(DEBUG_CLIENT_ENV).is_none() {
        return rerun_optimized();
    }
    let settings = Settings::resolve(&args)?;
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    process::raise_fd_limit();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| gateway::target_dir().join("bench"));
    // Configs and logs of this run's HAProxy and gateways (replaced by the next run).
    let run_dir = out_dir.join("last-run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    std::fs::create_dir_all(&run_dir)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: stopping after the current run");
                flag.store(true, Ordering::SeqCst);
            }
        });
    }

    // The gateway build first, so cargo's output comes before the progress bar.
    let wants_gateway = settings.paths.iter().any(|p| p.io_mode().is_some());
    let gateway_prepared = wants_gateway
        .then(|| paths::prepare_gateway(args.gateway_bin.as_deref()).map_err(|e| format!("{e:#}")));
    let started = Instant::now();

    eprintln!("starting MariaDB and loading the tables...");
    let db = MariaDb::start().context("starting MariaDB")?;
    dataset::load(&db).context("load phase")?;
    let launcher = Launcher {
        db: &db,
        run_dir: &run_dir,
        gateway: gateway_prepared,
        settings: &settings,
    };
    let mut paths: Vec<Path> = settings
        .paths
        .iter()
        .map(|&kind| launcher.start(kind, &rt))
        .collect();
    for p in &paths {
        match &p.endpoint {
            Ok(e) => eprintln!("  {:<14} ready on {}", p.kind.name(), e.addr),
            Err(e) => eprintln!("  {:<14} FAILED: {e}", p.kind.name()),
        }
    }
    ensure!(!interrupted.load(Ordering::SeqCst), "interrupted");
    warm_up(&mut paths, &settings, &rt);

    let scenarios = measure(&mut paths, &launcher, &rt, &interrupted)?;

    let gateway_paths: Vec<PathKind> = settings
        .paths
        .iter()
        .copied()
        .filter(|p| p.io_mode().is_some())
        .collect();
    let targets = report::targets(&scenarios, &gateway_paths);
    if !targets.is_empty() {
        print!("{}", report::targets_text(&targets));
    }
    let run_report = RunReport {
        started_at: report::utc_timestamp(started_unix),
        wall_secs: started.elapsed().as_secs_f64(),
        git: report::Git::probe(),
        machine: report::Machine::probe(),
        versions: versions(&settings, launcher.gateway.as_ref()),
        settings: &settings,
        paths: paths
            .iter()
            .map(|p| PathStatus {
                path: p.kind,
                address: p.endpoint.as_ref().ok().map(|e| e.addr.to_string()),
                error: p.endpoint.as_ref().err().cloned(),
            })
            .collect(),
        scenarios: &scenarios,
        targets,
    };
    write_files(&run_report, started_unix, &out_dir)?;
    println!("logs:  {}", run_dir.display());
    println!(
        "took {:.0} s (after builds)",
        started.elapsed().as_secs_f64()
    );

    // The exit status says whether every path produced numbers for every workload (CI checks
    // that the benchmark ran; what the numbers are is never asserted).
    let missing: Vec<String> = scenarios
        .iter()
        .flat_map(|s| {
            s.paths
                .iter()
                .filter(|p| p.summary.is_none())
                .map(move |p| format!("{} on {}", s.name, p.path.name()))
        })
        .collect();
    ensure!(
        missing.is_empty(),
        "no numbers for {} (see the errors above and in the JSON)",
        missing.join(", ")
    );
    Ok(())
}

/// Runs every job (workload or sysbench test) for every round on every path, interleaved,
/// printing each job's table when its last round is done.
fn measure(
    paths: &mut [Path],
    launcher: &Launcher,
    rt: &tokio::runtime::Runtime,
    interrupted: &AtomicBool,
) -> Result<Vec<Scenario>> {
    let settings = launcher.settings;
    let mut jobs: Vec<Job> = settings
        .workloads
        .iter()
        .map(|&w| Job::Workload(w))
        .collect();
    if settings.sysbench {
        jobs.extend(sysbench::TESTS.map(Job::Sysbench));
    }
    let cells = jobs.len() * settings.rounds * paths.len();
    let bar = ProgressBar::new(cells as u64).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:32}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut scenarios = Vec::new();
    for job in jobs {
        let mut scenario = new_scenario(job, settings, paths);
        for round in 1..=settings.rounds {
            for (path, runs) in paths.iter_mut().zip(&mut scenario.paths) {
                if interrupted.load(Ordering::SeqCst) {
                    bar.abandon();
                    bail!("interrupted");
                }
                bar.set_message(format!(
                    "{} · round {round}/{} · {}",
                    scenario.name,
                    settings.rounds,
                    path.kind.name()
                ));
                let outcome = run_cell(job, path, launcher, round, rt);
                runs.rounds.push(Round {
                    round,
                    error: outcome.as_ref().err().cloned(),
                    sample: outcome.ok(),
                });
                bar.inc(1);
            }
        }
        scenario.summarize();
        bar.suspend(|| print!("{}", scenario.table(settings.rounds)));
        scenarios.push(scenario);
    }
    bar.finish_and_clear();
    Ok(scenarios)
}

/// Writes `bench-<time>-<commit>.json` and `.svg` into `out_dir`.
fn write_files(run_report: &RunReport, started_unix: u64, out_dir: &std::path::Path) -> Result<()> {
    let commit = run_report.git.commit.as_deref().unwrap_or("nogit");
    let stamp = format!(
        "{}-{}",
        report::utc_timestamp(started_unix).replace([':', '-'], ""),
        &commit[..commit.len().min(10)]
    );
    let json_path = out_dir.join(format!("bench-{stamp}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(run_report)?)?;
    println!("\nJSON:  {}", json_path.display());
    let svg_path = out_dir.join(format!("bench-{stamp}.svg"));
    let machine = &run_report.machine;
    let subtitle = format!(
        "{}, {} cores, {} rounds",
        machine.cpu_model, machine.cores, run_report.settings.rounds
    );
    let panels = chart::draw(&svg_path, run_report.scenarios, &subtitle)?;
    if panels > 0 {
        println!("chart: {} ({panels} panels)", svg_path.display());
    }
    Ok(())
}

/// One unmeasured point-select run per path before the first measured one: right after the
/// load phase InnoDB is still flushing, and every process's caches are cold; without this the
/// first path measured (direct) pays for it.
fn warm_up(paths: &mut [Path], settings: &Settings, rt: &tokio::runtime::Runtime) {
    let window = Window {
        warmup: Duration::ZERO,
        measure: Duration::from_secs_f64(if settings.quick { 0.5 } else { 2.0 }),
    };
    eprintln!("warming up each path for {:?}...", window.measure);
    for path in paths {
        if let Ok(endpoint) = path.ready() {
            let run = workloads::run_timed(
                Workload::PointSelect,
                endpoint,
                settings.connections,
                window,
                None,
            );
            // A path that fails here fails again, and is reported, in the measured runs.
            let _ = rt.block_on(async { tokio::time::timeout(window.measure * 10, run).await });
        }
    }
}

/// Replaces this process with `cargo run --release -p xtask -- <same arguments>`.
fn rerun_optimized() -> Result<()> {
    use std::os::unix::process::CommandExt;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the load generator optimized: cargo run --release -p xtask");
    let err = std::process::Command::new(cargo)
        .current_dir(gateway::workspace_root())
        .args(["run", "--quiet", "--release", "-p", "xtask", "--"])
        .args(std::env::args_os().skip(1))
        .exec();
    Err(err).context("re-running the bench from a release build")
}

fn new_scenario(job: Job, settings: &Settings, paths: &[Path]) -> Scenario {
    let (name, title, latency_of, rate_unit, connections) = match job {
        Job::Workload(w) => (
            w.name().to_owned(),
            w.title(),
            w.op(),
            match w {
                Workload::ConnectStorm | Workload::Idle => "conn/s",
                _ => "stmt/s",
            },
            settings.connections_for(w),
        ),
        Job::Sysbench(test) => (
            format!("sysbench-{test}"),
            sysbench::title(test),
            "transaction",
            "stmt/s",
            settings.sysbench_threads,
        ),
    };
    Scenario {
        name,
        title: title.to_owned(),
        latency_of: latency_of.to_owned(),
        rate_unit: rate_unit.to_owned(),
        connections,
        paths: paths
            .iter()
            .map(|p| PathRuns {
                path: p.kind,
                rounds: Vec::new(),
                summary: None,
            })
            .collect(),
    }
}

/// One run of one job on one path.
fn run_cell(
    job: Job,
    path: &mut Path,
    launcher: &Launcher,
    round: usize,
    rt: &tokio::runtime::Runtime,
) -> Result<Sample, String> {
    let settings = launcher.settings;
    let endpoint = path.ready()?.clone();
    let pid = path.pid();
    let window = settings.window();
    // Never hang on a path that stops answering: allow the window plus a generous margin.
    let limit = window.warmup + window.measure + Duration::from_secs(60);
    let result = match job {
        Job::Workload(Workload::Idle) => {
            // A fresh relay process: in one that has served other workloads, memory its
            // allocator kept from them would hide what a held connection costs.
            let fresh = match pid {
                Some(_) => Some(
                    launcher
                        .launch(path.kind, &format!("{}-idle{round}", path.kind.name()))
                        .map_err(|e| format!("starting a fresh {}: {e:#}", path.kind.name()))?,
                ),
                None => None,
            };
            let (endpoint, pid) = match &fresh {
                Some((endpoint, service)) => (endpoint, service.as_ref().map(Service::pid)),
                None => (&endpoint, pid),
            };
            rt.block_on(async {
                let n = settings.idle_connections;
                let run = workloads::run_idle(endpoint, n, Duration::from_millis(500), pid);
                tokio::time::timeout(limit + Duration::from_secs(60), run).await
            })
            .map(|r| r.map(Sample::from))
        }
        Job::Workload(w) => rt
            .block_on(async {
                let conns = settings.connections_for(w);
                let run = workloads::run_timed(w, &endpoint, conns, window, pid);
                tokio::time::timeout(limit, run).await
            })
            .map(|r| r.map(Sample::from)),
        Job::Sysbench(test) => Ok(sysbench::run(
            test,
            &endpoint,
            settings.sysbench_threads,
            window.measure,
            pid,
        )),
    };
    match result {
        Ok(Ok(sample)) => Ok(sample),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("timed out after {limit:?}")),
    }
}

/// Versions of the programs measured.
fn versions(
    settings: &Settings,
    gateway: Option<&Result<(PathBuf, String), String>>,
) -> BTreeMap<String, String> {
    let mut cmds: Vec<(&str, PathBuf, &str)> = vec![
        ("mariadbd", "mariadbd".into(), "--version"),
        ("haproxy", "haproxy".into(), "-v"),
    ];
    if let Some(Ok((bin, _))) = gateway {
        cmds.push(("gatehouse", bin.clone(), "--version"));
    }
    if settings.sysbench {
        cmds.push(("sysbench", "sysbench".into(), "--version"));
    }
    cmds.into_iter()
        .map(|(name, prog, arg)| {
            let out = process::output(std::process::Command::new(prog).arg(arg), "")
                .map(|o| o.lines().next().unwrap_or_default().to_owned())
                .unwrap_or_else(|e| format!("unknown: {e:#}"));
            (name.to_owned(), out)
        })
        .collect()
}
