//! `cargo xtask bench`: the load benchmark. Starts an isolated MariaDB, HAProxy (`mode tcp`,
//! the cheapest possible hop) and the gateway (release build, once per I/O driver), then runs
//! each workload against each path, interleaved (direct, haproxy, gateway-epoll, gateway-uring,
//! direct, ...) for several rounds so machine drift hits every path alike.
//!
//! A path that cannot start, or a run that fails, is reported as failed with its error; the
//! other paths go on. Results: a table per workload on stdout, and under `target/bench/` a JSON
//! file per run and an SVG chart of the latency distributions.

mod chart;
mod dataset;
mod haproxy;
mod report;
mod sysbench;
mod workloads;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use gatehouse_tests::{free_port, MariaDb, APP_PASSWORD, APP_USER};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::gateway::{self, GatewaySetup};
use crate::process::{self, Service};
use report::{PathRuns, Round, Sample, Scenario};
use workloads::{Endpoint, Window, Workload};

/// One way from the clients to MariaDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Straight to MariaDB.
    Direct,
    /// Through HAProxy in `mode tcp`.
    Haproxy,
    /// Through the gateway on its epoll driver.
    GatewayEpoll,
    /// Through the gateway on its io_uring driver.
    GatewayUring,
}

impl PathKind {
    const ALL: [PathKind; 4] = [
        PathKind::Direct,
        PathKind::Haproxy,
        PathKind::GatewayEpoll,
        PathKind::GatewayUring,
    ];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Haproxy => "haproxy",
            PathKind::GatewayEpoll => "gateway-epoll",
            PathKind::GatewayUring => "gateway-uring",
        }
    }

    fn io_mode(self) -> Option<&'static str> {
        match self {
            PathKind::GatewayEpoll => Some("epoll"),
            PathKind::GatewayUring => Some("uring"),
            PathKind::Direct | PathKind::Haproxy => None,
        }
    }
}

/// The identity clients log in as through the gateway, and its password.
const BENCH_IDENTITY: &str = "bench";
const BENCH_PASSWORD: &str = "bench-Secret-7";

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
        let pick = |v: Option<f64>, normal: f64, quick: f64| v.unwrap_or(if a.quick { quick } else { normal });
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
            idle_connections: a.idle_connections.unwrap_or(if a.quick { 200 } else { 1000 }),
            client_threads: a
                .client_threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            gateway_threads: a.gateway_threads,
            sysbench: a.sysbench,
            sysbench_threads: a.sysbench_threads,
        };
        ensure!(s.rounds >= 1, "--rounds must be at least 1");
        ensure!(s.duration_secs > 0.0 && s.warmup_secs >= 0.0, "bad --duration/--warmup");
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

/// A path ready to measure (or why it is not).
struct Path {
    kind: PathKind,
    endpoint: Result<Endpoint, String>,
    /// The process relaying (HAProxy, the gateway); none for direct.
    service: Option<Service>,
}

impl Path {
    fn pid(&self) -> Option<u32> {
        self.service.as_ref().map(Service::pid)
    }

    /// `Err` if the path failed to start, or its process has died since.
    fn ready(&mut self) -> Result<&Endpoint, String> {
        if let Some(service) = self.service.as_mut() {
            if let Some(status) = service.exited() {
                let error = format!("{} exited ({status}){}", self.kind.name(), service.log_tail());
                self.endpoint = Err(error);
                self.service = None;
            }
        }
        self.endpoint.as_ref().map_err(Clone::clone)
    }
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
    versions: Vec<(String, String)>,
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
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    process::raise_fd_limit();
    let out_dir = args.out.clone().unwrap_or_else(|| gateway::target_dir().join("bench"));
    std::fs::create_dir_all(&out_dir)?;

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
    let gateway_secret = wants_gateway.then(|| prepare_gateway(&args).map_err(|e| format!("{e:#}")));

    eprintln!("starting MariaDB and loading the tables...");
    let db = MariaDb::start().context("starting MariaDB")?;
    dataset::load(&db).context("load phase")?;

    let mut paths: Vec<Path> = settings
        .paths
        .iter()
        .map(|&kind| start_path(kind, &db, gateway_secret.as_ref(), &settings, &rt))
        .collect();
    for p in &paths {
        match &p.endpoint {
            Ok(e) => eprintln!("  {:<14} ready on {}", p.kind.name(), e.addr),
            Err(e) => eprintln!("  {:<14} FAILED: {e}", p.kind.name()),
        }
    }

    let mut jobs: Vec<Job> = settings.workloads.iter().map(|&w| Job::Workload(w)).collect();
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
        let mut scenario = new_scenario(job, &settings, &paths);
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
                let outcome = run_cell(job, path, &settings, &rt);
                runs.rounds.push(match outcome {
                    Ok(sample) => Round {
                        round,
                        sample: Some(sample),
                        error: None,
                    },
                    Err(e) => Round {
                        round,
                        sample: None,
                        error: Some(e),
                    },
                });
                bar.inc(1);
            }
        }
        scenario.summarize();
        bar.suspend(|| print!("{}", scenario.table(settings.rounds)));
        scenarios.push(scenario);
    }
    bar.finish_and_clear();

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

    let git = report::Git::probe();
    let stamp = format!(
        "{}-{}",
        report::utc_timestamp(started_unix).replace([':', '-'], ""),
        git.commit.as_deref().map_or("nogit", |c| &c[..c.len().min(10)])
    );
    let json_path = out_dir.join(format!("bench-{stamp}.json"));
    let svg_path = out_dir.join(format!("bench-{stamp}.svg"));
    let machine = report::Machine::probe();
    let run_report = RunReport {
        started_at: report::utc_timestamp(started_unix),
        wall_secs: started.elapsed().as_secs_f64(),
        versions: versions(settings.sysbench),
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
        git,
        machine,
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&run_report)?)?;
    let subtitle = format!(
        "{}, {} cores, {} rounds",
        run_report.machine.cpu_model, run_report.machine.cores, settings.rounds
    );
    let panels = chart::draw(&svg_path, &scenarios, &subtitle)?;
    println!("\nJSON:  {}", json_path.display());
    if panels > 0 {
        println!("chart: {} ({panels} panels)", svg_path.display());
    }
    println!("took {:.0} s", started.elapsed().as_secs_f64());
    drop(paths);
    drop(db);
    Ok(())
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

/// Builds the gateway (unless `--gateway-bin`) and hashes the bench identity's secret.
fn prepare_gateway(args: &BenchArgs) -> Result<(PathBuf, String)> {
    let bin = match &args.gateway_bin {
        Some(bin) => bin.clone(),
        None => {
            eprintln!("building the gateway: cargo build --release -p gatehouse");
            gateway::build(true)?
        }
    };
    let secret = gateway::hash_secret(&bin, BENCH_PASSWORD)?;
    Ok((bin, secret))
}

fn start_path(
    kind: PathKind,
    db: &MariaDb,
    gateway: Option<&Result<(PathBuf, String), String>>,
    settings: &Settings,
    rt: &tokio::runtime::Runtime,
) -> Path {
    let started = (|| -> Result<(Endpoint, Option<Service>)> {
        let app = |addr| Endpoint {
            addr,
            user: APP_USER.into(),
            password: APP_PASSWORD.into(),
        };
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let (endpoint, service) = match kind {
            PathKind::Direct => (app(db.addr()), None),
            PathKind::Haproxy => {
                let service = haproxy::start(db.scratch(), listen, db.addr(), settings.max_connections())?;
                (app(listen), Some(service))
            }
            PathKind::GatewayEpoll | PathKind::GatewayUring => {
                let mode = kind.io_mode().expect("a gateway path");
                let (bin, secret) = match gateway {
                    Some(Ok(prepared)) => prepared,
                    Some(Err(e)) => bail!("{e}"),
                    None => unreachable!("prepared when a gateway path is asked for"),
                };
                let config = db.scratch().join(format!("gateway-{mode}.toml"));
                GatewaySetup {
                    listen,
                    upstream: db.addr(),
                    upstream_user: APP_USER,
                    identity: BENCH_IDENTITY,
                    secret,
                    io_mode: mode,
                    io_threads: settings.gateway_threads,
                    max_connections: settings.max_connections(),
                }
                .write(&config)?;
                let mut service = Service::spawn_logged(
                    kind.name(),
                    &mut gateway::serve_command(bin, &config, Some(mode), APP_PASSWORD),
                    &db.scratch().join(format!("gateway-{mode}.log")),
                )?;
                service.wait_listening(listen, Duration::from_secs(15))?;
                let endpoint = Endpoint {
                    addr: listen,
                    user: BENCH_IDENTITY.into(),
                    password: BENCH_PASSWORD.into(),
                };
                (endpoint, Some(service))
            }
        };
        let check =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), endpoint.check()).await });
        match check {
            Ok(Ok(())) => Ok((endpoint, service)),
            Ok(Err(e)) => {
                let tail = service.as_ref().map(Service::log_tail).unwrap_or_default();
                bail!("sanity check through {}: {e:#}{tail}", kind.name())
            }
            Err(_) => bail!("sanity check through {} timed out after 20 s", kind.name()),
        }
    })();
    match started {
        Ok((endpoint, service)) => Path {
            kind,
            endpoint: Ok(endpoint),
            service,
        },
        Err(e) => Path {
            kind,
            endpoint: Err(format!("{e:#}")),
            service: None,
        },
    }
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
    settings: &Settings,
    rt: &tokio::runtime::Runtime,
) -> Result<Sample, String> {
    let endpoint = path.ready()?.clone();
    let pid = path.pid();
    let window = settings.window();
    // Never hang on a path that stops answering: allow the window plus a generous margin.
    let limit = window.warmup + window.measure + Duration::from_secs(60);
    let result = match job {
        Job::Workload(Workload::Idle) => rt
            .block_on(async {
                let run = workloads::run_idle(
                    &endpoint,
                    settings.idle_connections,
                    Duration::from_millis(500),
                    pid,
                );
                tokio::time::timeout(limit + Duration::from_secs(60), run).await
            })
            .map(|r| r.map(Sample::from)),
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
fn versions(sysbench: bool) -> Vec<(String, String)> {
    let mut cmds: Vec<(&str, &[&str])> = vec![("mariadbd", &["--version"]), ("haproxy", &["-v"])];
    if sysbench {
        cmds.push(("sysbench", &["--version"]));
    }
    cmds.into_iter()
        .map(|(prog, args)| {
            let out = process::output(std::process::Command::new(prog).args(args))
                .map(|o| o.lines().next().unwrap_or_default().to_owned())
                .unwrap_or_else(|e| format!("unknown: {e:#}"));
            (prog.to_owned(), out)
        })
        .collect()
}
