//! `cargo xtask mtr`: the transparency proof of adoption mode (issue 10). MariaDB's own
//! regression suite (mtr, from the `mariadb-test` package) and its C API test program
//! (`mariadb-client-test`) run against a server through the gateway in passthrough mode, and
//! against the same kind of server directly; every test that passes directly must pass through
//! the gateway.
//!
//! How it runs:
//! - A *run* is one pass of the test list against one fresh MariaDB (its own datadir and free
//!   port, torn down afterwards): mtr in `--extern` mode does not clean up between tests, so no
//!   server is reused. The server gets the options mtr's own servers get
//!   (`include/default_mysqld.cnf`: latin1, MyISAM by default, performance schema, ...) and the
//!   `mtr` schema and time zone data mtr's bootstrap installs, so that most tests can pass.
//! - Runs differ by route (direct, or the release gateway in passthrough mode on the epoll or
//!   io_uring driver), TLS (off: neither the server nor the gateway offers it; on: both offer
//!   the same certificate from mtr's `std_data`, every client connection uses TLS, and the
//!   gateway reaches MariaDB over verified TLS) and protocol (text, or `--ps-protocol`: every
//!   statement of every test as a prepared statement, binary protocol).
//! - mtr reaches the server only over TCP: `--extern protocol=tcp`, and the socket it is given
//!   does not exist, so nothing can fall back to the unix socket. The harness's own setup (time
//!   zones, the `test` and `mtr` schemas) uses the socket before the run starts.
//! - `mariadb-client-test` (about 300 C API test functions, each run as its own process so one
//!   failure does not hide the rest) runs direct and through each driver, TLS off: the program
//!   has no TLS option.
//! - The report (`target/mtr/report.md`, `report.json`) sets each gateway run beside the direct
//!   run of the same TLS and protocol, and lists every test that passed directly but not through
//!   the gateway with the paths of its mtr output, result diff and the gateway's log. The exit
//!   status is non-zero if there is any such test, or a run failed.
//!
//! Lists (`xtask/mtr/`): `tests.txt`, the full list, and `quick.txt`, a short one for CI; their
//! headers say how they were chosen.

mod report;
mod results;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gatehouse_tests::{free_port, MariaDb};
use serde::Serialize;

use crate::gateway::{self, GatewaySetup, ListenerTls};
use crate::process::Service;
use results::{Outcome, TestResult};

/// `cargo xtask mtr` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MtrArgs {
    /// The short list (xtask/mtr/quick.txt), one driver (epoll), TLS off and on, both
    /// protocols: a few minutes, for CI.
    #[arg(long)]
    quick: bool,
    /// The test list [default: xtask/mtr/tests.txt, --quick: xtask/mtr/quick.txt].
    #[arg(long)]
    list: Option<PathBuf>,
    /// Tests to run instead of a list (`main.select,main.ps`).
    #[arg(long, value_delimiter = ',', conflicts_with = "list")]
    tests: Vec<String>,
    /// Gateway I/O drivers to run through [default: epoll,uring; --quick: epoll].
    #[arg(long, value_enum, value_delimiter = ',')]
    drivers: Option<Vec<Driver>>,
    /// TLS settings to run with.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [TlsMode::Off, TlsMode::On])]
    tls: Vec<TlsMode>,
    /// Protocols: `text`, or `ps` (mtr --ps-protocol: statements as prepared statements).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Protocol::Text, Protocol::Ps])]
    protocols: Vec<Protocol>,
    /// Runs at once, each with its own servers [default: 2; each run is mostly one client
    /// waiting on one server, so two share two cores well].
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Split the list into parts of at most this many tests, each on its own fresh server
    /// (the same parts for every route): a test that breaks the server for the ones after it
    /// (mtr does not clean up in --extern mode) spoils only its part. 0: one part.
    #[arg(long, default_value_t = 100)]
    chunk_size: usize,
    /// Only the direct runs (to check or choose a list).
    #[arg(long)]
    direct_only: bool,
    /// Skip mariadb-client-test.
    #[arg(long)]
    no_client_test: bool,
    /// mariadb-client-test functions to run [default: all it lists, --quick: a few].
    #[arg(long, value_delimiter = ',')]
    client_tests: Vec<String>,
    /// Minutes one mtr test may take before mtr fails it.
    #[arg(long, default_value_t = 3)]
    testcase_timeout: u32,
    /// Let mtr go on after a failing test on the same server. By default mtr stops at a
    /// failure and the rest of the part goes on on a fresh server (and gateway): mtr does not
    /// clean up in --extern mode, so a failing test often leaves tables, users or a locked-out
    /// root behind that fail the tests after it.
    #[arg(long)]
    no_fresh_after_failure: bool,
    /// Re-run each test that passed directly but not through the gateway alone, on fresh
    /// servers (direct and gateway), to tell a gateway bug from a flaky or order-dependent
    /// test; at most this many per configuration (0: none) [default: 10, --quick: 0].
    #[arg(long)]
    confirm: Option<usize>,
    /// mtr's directory [default: /usr/share/mysql/mysql-test].
    #[arg(long)]
    mtr_dir: Option<PathBuf>,
    /// Use this gateway binary instead of `cargo build --release -p gatehouse`.
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Where reports and run directories go [default: target/mtr].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A gateway I/O driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    Epoll,
    Uring,
}

impl Driver {
    fn name(self) -> &'static str {
        match self {
            Driver::Epoll => "epoll",
            Driver::Uring => "uring",
        }
    }
}

/// TLS between the clients and what they connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Off,
    On,
}

/// How mtr sends statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// COM_QUERY.
    Text,
    /// `--ps-protocol`: COM_STMT_PREPARE / EXECUTE, binary result sets.
    Ps,
}

/// Where a run's clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    Direct,
    Gateway(Driver),
}

impl Route {
    fn name(self) -> String {
        match self {
            Route::Direct => "direct".into(),
            Route::Gateway(d) => format!("gateway-{}", d.name()),
        }
    }
}

/// Which program a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    Mtr,
    ClientTest,
}

/// The settings a direct run and its gateway runs share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Setting {
    pub suite: Suite,
    pub tls: TlsMode,
    pub protocol: Protocol,
}

impl Setting {
    /// `mtr, TLS off, text protocol`.
    pub fn label(self) -> String {
        match self.suite {
            Suite::Mtr => format!(
                "mtr, TLS {}, {}",
                if self.tls == TlsMode::On { "on" } else { "off" },
                match self.protocol {
                    Protocol::Text => "text protocol",
                    Protocol::Ps => "--ps-protocol",
                }
            ),
            Suite::ClientTest => format!(
                "mariadb-client-test, TLS {}",
                if self.tls == TlsMode::On { "on" } else { "off" }
            ),
        }
    }
}

/// One run to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSpec {
    pub setting: Setting,
    pub route: Route,
    /// The tests (mtr names, or client-test functions).
    #[serde(skip)]
    pub tests: Vec<String>,
    /// A confirmation re-run of one test.
    pub confirm: bool,
    /// This run's part of the list, when the list is split (index from 0, count).
    pub chunk: Option<(usize, usize)>,
}

impl RunSpec {
    /// The run's directory name: `mtr-tls-off-text-gateway-epoll`.
    pub fn dir_name(&self) -> String {
        let mut name = match self.setting.suite {
            Suite::Mtr => format!(
                "mtr-tls-{}-{}",
                if self.setting.tls == TlsMode::On {
                    "on"
                } else {
                    "off"
                },
                match self.setting.protocol {
                    Protocol::Text => "text",
                    Protocol::Ps => "ps",
                }
            ),
            Suite::ClientTest => "client-test".to_owned(),
        };
        name.push('-');
        name.push_str(&self.route.name());
        if let Some((i, n)) = self.chunk {
            name.push_str(&format!("/part{:0w$}of{n}", i + 1, w = n.to_string().len()));
        }
        if self.confirm {
            name = format!("confirm/{}/{name}", self.tests[0].replace('/', "_"));
        }
        name
    }
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub spec: RunSpec,
    /// The run's directory.
    pub dir: PathBuf,
    /// Results by test; a listed test without a result is `missing`.
    pub results: BTreeMap<String, TestResult>,
    /// Why the run could not complete (server or gateway did not start, mtr aborted, ...).
    pub error: Option<String>,
    /// What `mariadb -e '\s'` said about TLS on the route (`Cipher in use is ...`).
    pub client_tls: Option<String>,
    /// The gateway's log, for gateway runs.
    pub gateway_log: Option<PathBuf>,
    /// The gateway died during the run.
    pub gateway_died: Option<String>,
    pub elapsed_secs: f64,
}

/// Everything a run needs besides its spec.
struct Shared {
    mtr: MtrInstall,
    client_test: Option<PathBuf>,
    gateway_bin: Option<PathBuf>,
    out: PathBuf,
    testcase_timeout: u32,
    fresh_after_failure: bool,
    interrupted: Arc<AtomicBool>,
}

/// Where mtr lives.
#[derive(Debug, Clone)]
struct MtrInstall {
    /// `mysql-test/`.
    dir: PathBuf,
    /// `mariadb-test-run.pl` (or `mysql-test-run.pl`).
    script: PathBuf,
}

impl MtrInstall {
    fn find(dir: Option<&Path>) -> Result<MtrInstall> {
        let dir = dir
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("/usr/share/mysql/mysql-test"));
        for name in ["mariadb-test-run.pl", "mysql-test-run.pl"] {
            let script = dir.join(name);
            if script.is_file() {
                return Ok(MtrInstall { dir, script });
            }
        }
        bail!(
            "mtr not found in {} (install it: apt-get install -y mariadb-test; or pass --mtr-dir)",
            dir.display()
        )
    }

    /// mtr's copy of the server certificates (`std_data/`), which its tests expect.
    fn std_data(&self) -> PathBuf {
        self.dir.join("std_data")
    }
}

/// The certificates of TLS runs, from mtr's `std_data`. mtr's servers use `server-cert.pem`,
/// whose name is only in its CN, which the gateway's certificate verification (webpki) does
/// not read; `serversan-cert.pem` is the same CA's certificate with `localhost` and
/// `127.0.0.1` as subject alternative names, so the gateway can verify the server. The server
/// and the gateway's listener both present it: a client sees the same certificate either way.
const CA_CERT: &str = "cacert.pem";
const SERVER_CERT: &str = "serversan-cert.pem";
const SERVER_KEY: &str = "serversan-key.pem";

/// The default lists, relative to the workspace.
const FULL_LIST: &str = "xtask/mtr/tests.txt";
const QUICK_LIST: &str = "xtask/mtr/quick.txt";

/// client-test functions `--quick` runs: prepared statements and their metadata, cursors,
/// multi-statements and multi-results, stored procedure OUT parameters, long data,
/// change_user, character sets; and one of each kind that differed through the gateway when
/// this list was made (bulk execution, progress reports, COM_REFRESH, COM_DEBUG).
const QUICK_CLIENT_TESTS: &[&str] = &[
    "client_query",
    "test_prepare_insert_update",
    "test_fetch_date",
    "test_fetch_str",
    "test_ps_null_param",
    "test_bind_result_ext",
    "test_select_prepare",
    "test_multi_statements",
    "test_prepare_multi_statements",
    "test_multi_stmt",
    "test_long_data",
    "test_long_data_bin",
    "test_field_misc",
    "test_change_user",
    "test_bug20023",
    "test_mdev4603",
    "test_explain_bug",
    "test_bug11111",
    "test_ps_sp_out_params",
    "test_wl4435",
    "test_mysql_insert_id",
    "test_set_option",
    "test_ps_i18n",
    "test_bulk_autoinc",
    "test_progress_reporting",
    "test_wl4284_1",
    "test_bug28075",
];

/// Runs `cargo xtask mtr`.
pub fn run(args: MtrArgs) -> Result<()> {
    let started = Instant::now();
    let mtr = MtrInstall::find(args.mtr_dir.as_deref())?;
    let root = gateway::workspace_root();
    let (list_path, tests) = if !args.tests.is_empty() {
        (None, args.tests.clone())
    } else {
        let path = args
            .list
            .clone()
            .unwrap_or_else(|| root.join(if args.quick { QUICK_LIST } else { FULL_LIST }));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the test list {}", path.display()))?;
        let tests =
            results::parse_list(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        (Some(path), tests)
    };
    if tests.is_empty() {
        bail!("the test list is empty");
    }
    let drivers = args.drivers.clone().unwrap_or_else(|| {
        if args.quick {
            vec![Driver::Epoll]
        } else {
            vec![Driver::Epoll, Driver::Uring]
        }
    });
    let mut routes = vec![Route::Direct];
    if !args.direct_only {
        routes.extend(drivers.iter().map(|&d| Route::Gateway(d)));
    }

    let client_test = if args.no_client_test {
        None
    } else {
        Some(find_program("mariadb-client-test").context(
            "mariadb-client-test not found (apt-get install -y mariadb-test; or --no-client-test)",
        )?)
    };
    let client_tests = match &client_test {
        None => Vec::new(),
        Some(_) if !args.client_tests.is_empty() => args.client_tests.clone(),
        Some(_) if args.quick => QUICK_CLIENT_TESTS.iter().map(|s| s.to_string()).collect(),
        Some(bin) => {
            let out = Command::new(bin)
                .arg("--show-tests")
                .output()
                .context("mariadb-client-test --show-tests")?;
            results::parse_client_test_names(&String::from_utf8_lossy(&out.stdout))
        }
    };

    let gateway_bin = if args.direct_only {
        None
    } else {
        Some(match &args.gateway_bin {
            Some(bin) => bin.clone(),
            None => {
                eprintln!("building the gateway: cargo build --release -p gatehouse");
                gateway::build(true)?
            }
        })
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| gateway::target_dir().join("mtr"));
    let runs_dir = out.join("runs");
    if runs_dir.exists() {
        std::fs::remove_dir_all(&runs_dir)
            .with_context(|| format!("removing {}", runs_dir.display()))?;
    }
    std::fs::create_dir_all(&runs_dir)?;

    let chunks = split(&tests, args.chunk_size);
    let mut specs = Vec::new();
    for &tls in &args.tls {
        for &protocol in &args.protocols {
            for (i, chunk) in chunks.iter().enumerate() {
                for &route in &routes {
                    specs.push(RunSpec {
                        setting: Setting {
                            suite: Suite::Mtr,
                            tls,
                            protocol,
                        },
                        route,
                        tests: chunk.clone(),
                        confirm: false,
                        chunk: (chunks.len() > 1).then_some((i, chunks.len())),
                    });
                }
            }
        }
    }
    if !client_tests.is_empty() {
        for &route in &routes {
            specs.push(RunSpec {
                setting: Setting {
                    suite: Suite::ClientTest,
                    tls: TlsMode::Off,
                    protocol: Protocol::Text,
                },
                route,
                tests: client_tests.clone(),
                confirm: false,
                chunk: None,
            });
        }
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // Ctrl-C: stop starting runs; the running ones stop their children when dropped.
        let _ = ctrlc_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let ctx = Arc::new(Shared {
        mtr,
        client_test,
        gateway_bin,
        out: runs_dir,
        testcase_timeout: args.testcase_timeout,
        fresh_after_failure: !args.no_fresh_after_failure,
        interrupted,
    });

    eprintln!(
        "{} runs of {} mtr tests{} ({} at a time); output under {}",
        specs.len(),
        tests.len(),
        if client_tests.is_empty() {
            String::new()
        } else {
            format!(" and {} client-test functions", client_tests.len())
        },
        args.jobs.max(1),
        out.display()
    );
    let mut outcomes = run_all(&ctx, specs, args.jobs.max(1));

    // Confirmation: each difference alone on fresh servers.
    let mut confirmations = Vec::new();
    let confirm = args.confirm.unwrap_or(if args.quick { 0 } else { 10 });
    if confirm > 0 && !ctx.interrupted.load(Ordering::SeqCst) {
        let comparisons = report::compare(&outcomes, &[]);
        let mut specs = Vec::new();
        for cmp in &comparisons {
            for diff in cmp.differences.iter().take(confirm) {
                for route in [Route::Direct, cmp.route] {
                    specs.push(RunSpec {
                        setting: cmp.setting,
                        route,
                        tests: vec![diff.test.clone()],
                        confirm: true,
                        chunk: None,
                    });
                }
            }
        }
        if !specs.is_empty() {
            eprintln!(
                "re-running {} differing tests alone on fresh servers",
                specs.len() / 2
            );
            confirmations = run_all(&ctx, specs, args.jobs.max(1));
        }
    }
    outcomes.sort_by_key(|o| (o.spec.setting, o.spec.route, o.spec.chunk));

    let comparisons = report::compare(&outcomes, &confirmations);
    let summary = report::Summary {
        list: list_path.map(|p| p.display().to_string()),
        tests: tests.len(),
        client_tests: client_tests.len(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        git_commit: git_commit(),
        mariadb: mariadb_version(),
    };
    let markdown = report::markdown(&summary, &outcomes, &comparisons);
    std::fs::write(out.join("report.md"), &markdown)?;
    let json = serde_json::to_string_pretty(&report::Json {
        summary: &summary,
        runs: &outcomes,
        confirmations: &confirmations,
        comparisons: &comparisons,
    })?;
    std::fs::write(out.join("report.json"), json)?;
    println!("{markdown}");
    eprintln!(
        "report: {} and report.json (total {:.0} s)",
        out.join("report.md").display(),
        started.elapsed().as_secs_f64()
    );

    if ctx.interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    let failed_runs: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.error
                .as_ref()
                .map(|e| format!("{}: {e}", o.spec.dir_name()))
        })
        .collect();
    let differences: usize = comparisons.iter().map(|c| c.differences.len()).sum();
    if !failed_runs.is_empty() || differences > 0 {
        bail!(
            "{differences} tests passed directly but not through the gateway; {} runs failed{}",
            failed_runs.len(),
            failed_runs
                .iter()
                .map(|e| format!("\n  {e}"))
                .collect::<String>()
        );
    }
    Ok(())
}

/// `tests` in consecutive parts of at most `size` (all in one for 0), of about equal sizes.
fn split(tests: &[String], size: usize) -> Vec<Vec<String>> {
    if size == 0 || tests.len() <= size {
        return vec![tests.to_vec()];
    }
    let parts = tests.len().div_ceil(size);
    let per = tests.len().div_ceil(parts);
    tests.chunks(per).map(<[String]>::to_vec).collect()
}

/// Runs `specs`, `jobs` at a time; results in the order given.
fn run_all(ctx: &Arc<Shared>, specs: Vec<RunSpec>, jobs: usize) -> Vec<RunOutcome> {
    let total = specs.len();
    let queue = Arc::new(Mutex::new(
        specs.into_iter().enumerate().collect::<VecDeque<_>>(),
    ));
    let done = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..jobs.min(total))
        .map(|_| {
            let (ctx, queue, done) = (ctx.clone(), queue.clone(), done.clone());
            std::thread::spawn(move || loop {
                let Some((i, spec)) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                if ctx.interrupted.load(Ordering::SeqCst) {
                    return;
                }
                let name = spec.dir_name();
                eprintln!("[{}/{total}] {name}: starting", i + 1);
                let outcome = execute(&ctx, spec);
                eprintln!("[{}/{total}] {name}: {}", i + 1, one_line(&outcome));
                done.lock().unwrap().push((i, outcome));
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let mut done = std::mem::take(&mut *done.lock().unwrap());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

/// `412 pass, 3 fail, 20 skipped in 610 s`.
fn one_line(o: &RunOutcome) -> String {
    let count = |x: Outcome| o.results.values().filter(|r| r.outcome == x).count();
    let mut s = format!(
        "{} pass, {} fail, {} skipped in {:.0} s",
        count(Outcome::Pass),
        count(Outcome::Fail) + count(Outcome::Missing),
        count(Outcome::Skipped) + count(Outcome::Disabled),
        o.elapsed_secs
    );
    if let Some(e) = &o.error {
        s.push_str(&format!(" — ERROR: {e}"));
    }
    if let Some(e) = &o.gateway_died {
        s.push_str(&format!(" — GATEWAY DIED: {e}"));
    }
    s
}

/// Does one run: fresh server, the gateway if the route says so, the tests, teardown.
fn execute(ctx: &Shared, spec: RunSpec) -> RunOutcome {
    let started = Instant::now();
    let dir = ctx.out.join(spec.dir_name());
    let mut outcome = RunOutcome {
        spec,
        dir: dir.clone(),
        results: BTreeMap::new(),
        error: None,
        client_tls: None,
        gateway_log: None,
        gateway_died: None,
        elapsed_secs: 0.0,
    };
    if let Err(e) = execute_in(ctx, &mut outcome) {
        outcome.error = Some(format!("{e:#}"));
    }
    // A listed test mtr said nothing about (it stopped early, or a wrong name).
    for test in &outcome.spec.tests {
        outcome
            .results
            .entry(test.clone())
            .or_insert_with(|| TestResult {
                outcome: Outcome::Missing,
                millis: None,
                comment: String::new(),
                details: String::new(),
                gateway_warnings: Vec::new(),
                dir: None,
            });
    }
    outcome.elapsed_secs = started.elapsed().as_secs_f64();
    outcome
}

fn execute_in(ctx: &Shared, outcome: &mut RunOutcome) -> Result<()> {
    let mut remaining = outcome.spec.tests.clone();
    let resume = ctx.fresh_after_failure && outcome.spec.setting.suite == Suite::Mtr;
    for attempt in 0.. {
        let dir = match attempt {
            0 => outcome.dir.clone(),
            n => outcome.dir.join(format!("resume{n:03}")),
        };
        let results = attempt_once(ctx, outcome, &dir, &remaining, resume)?;
        let before = remaining.len();
        remaining.retain(|t| !results.contains_key(t));
        for (test, mut result) in results {
            result.dir = Some(dir.clone());
            outcome.results.insert(test, result);
        }
        if !resume || remaining.is_empty() {
            break;
        }
        if remaining.len() == before {
            bail!(
                "mtr reported nothing for the last {} tests; see {}",
                remaining.len(),
                dir.join("mtr.log").display()
            );
        }
        if ctx.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
    }
    Ok(())
}

/// One server (and gateway), one mtr or client-test process over `tests`, in `dir`. With
/// `stop_at_failure`, mtr stops at the first failing test; the caller goes on with the rest
/// on a fresh server.
fn attempt_once(
    ctx: &Shared,
    outcome: &mut RunOutcome,
    dir: &Path,
    tests: &[String],
    stop_at_failure: bool,
) -> Result<BTreeMap<String, TestResult>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec = &outcome.spec;
    let vardir = dir.join("var");
    let tls = spec.setting.tls == TlsMode::On;

    let db =
        MariaDb::start_bare(&server_args(&ctx.mtr, &vardir, tls)).context("starting MariaDB")?;
    let server_log = db.scratch().join("mariadbd.log");
    let result = (|| -> Result<BTreeMap<String, TestResult>> {
        db.root_sql(&setup_sql(&ctx.mtr)?)
            .context("installing the mtr schema and time zones")?;

        let mut gateway = match spec.route {
            Route::Direct => None,
            Route::Gateway(driver) => {
                let bin = ctx.gateway_bin.as_ref().context("no gateway binary")?;
                Some(start_gateway(
                    bin,
                    dir,
                    &db,
                    driver,
                    tls.then(|| ctx.mtr.std_data()),
                )?)
            }
        };
        let port = match &gateway {
            Some((addr, _)) => addr.port(),
            None => db.port(),
        };
        let gateway_log = gateway.as_ref().map(|_| dir.join("gatehouse.log"));
        if outcome.gateway_log.is_none() {
            outcome.gateway_log = gateway_log.clone();
        }
        let client_tls = check_tls(port, tls)?;
        outcome.client_tls.get_or_insert(client_tls);

        let ran = match spec.setting.suite {
            Suite::Mtr => run_mtr(
                ctx,
                tests,
                spec.setting.protocol,
                dir,
                Endpoint {
                    port,
                    tls,
                    gateway_log: gateway_log.as_deref(),
                },
                stop_at_failure,
            ),
            Suite::ClientTest => run_client_tests(ctx, tests, dir, port, gateway_log.as_deref()),
        };
        if let Some((_, service)) = gateway.as_mut() {
            if let Some(status) = service.exited() {
                let died = format!("{}: exited ({status}){}", dir.display(), service.log_tail());
                outcome.gateway_died = Some(match outcome.gateway_died.take() {
                    Some(before) => format!("{before}\n{died}"),
                    None => died,
                });
            }
            service.stop();
        }
        ran
    })();
    // Keep the server's log with the run (its scratch directory goes with the server).
    let _ = std::fs::copy(&server_log, dir.join("mariadbd.log"));
    drop(db);
    result
}

/// A private view of mtr's directory for one run, under `dest`: real directories, every file a
/// symlink to the original. mysqltest writes a failed test's `.reject` file next to its
/// `.result` when it can (always, as root), which would litter the installed tree and let two
/// runs at once overwrite each other's. mtr finds the programs and character sets relative to
/// its own directory, so the overlay repeats the installed layout from the first ancestor
/// with a `bin/` (`/usr` for `/usr/share/mysql/mysql-test`): each directory on the way is a
/// real one whose other entries are symlinks. Returns the private mysql-test directory.
fn overlay(mtr_dir: &Path, dest: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::symlink;
    let mtr_dir = mtr_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", mtr_dir.display()))?;
    let base = mtr_dir
        .ancestors()
        .skip(1)
        .take(3)
        .find(|a| a.join("bin").is_dir())
        .unwrap_or_else(|| mtr_dir.parent().unwrap_or(&mtr_dir));
    let rel = mtr_dir.strip_prefix(base).expect("an ancestor");
    std::fs::create_dir_all(dest)?;
    // The directories from `base` down to the mtr directory's parent.
    let mut src = base.to_owned();
    let mut dst = dest.to_owned();
    for part in rel.iter() {
        for entry in
            std::fs::read_dir(&src).with_context(|| format!("listing {}", src.display()))?
        {
            let entry = entry?;
            if entry.file_name() != part {
                symlink(entry.path(), dst.join(entry.file_name()))?;
            }
        }
        src.push(part);
        dst.push(part);
        std::fs::create_dir(&dst)?;
    }
    mirror(&src, &dst)?;
    Ok(dst)
}

/// Moves the regular files (mysqltest's `.reject` files; everything else is a symlink) of a
/// private mtr directory into `dest`, at the same relative paths (`main/kill.reject`,
/// `suite/sql_sequence/r/kill.reject`).
fn keep_rejects(tree: &Path, dest: &Path) -> Result<()> {
    let mut stack = vec![tree.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                let to = dest.join(path.strip_prefix(tree).expect("under the tree"));
                std::fs::create_dir_all(to.parent().expect("a file"))?;
                std::fs::rename(&path, &to)?;
            }
        }
    }
    Ok(())
}

/// Where [`keep_rejects`] put a test's `.reject` file, relative to its `dest`.
pub fn reject_path(test: &str) -> PathBuf {
    let (suite, name) = test.split_once('.').unwrap_or(("main", test));
    let file = format!("{name}.reject");
    match suite {
        "main" => Path::new("main").join(file),
        s => Path::new("suite").join(s).join("r").join(file),
    }
}

/// Recreates the directories of `src` under `dst` (which exists) with symlinks for files.
fn mirror(src: &Path, dst: &Path) -> Result<()> {
    for entry in std::fs::read_dir(src).with_context(|| format!("listing {}", src.display()))? {
        let entry = entry?;
        let target = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir(&target)?;
            mirror(&entry.path(), &target)?;
        } else {
            std::os::unix::fs::symlink(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The server options: those of mtr's own servers (`include/default_mysqld.cnf`, minus what
/// only makes sense for a server mtr starts), on top of the harness's.
fn server_args(mtr: &MtrInstall, vardir: &Path, tls: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--disable-getopt-prefix-matching",
        "--plugin-maturity=unknown",
        "--open-files-limit=1024",
        "--local-infile",
        "--character-set-server=latin1",
        "--connect-timeout=60",
        "--log-basename=mysqld",
        "--loose-debug-no-sync",
        "--log-bin-trust-function-creators=1",
        "--key-buffer-size=1M",
        "--sort-buffer-size=256K",
        "--max-heap-table-size=1M",
        "--loose-aria-pagecache-buffer-size=8M",
        "--loose-innodb-buffer-pool-size=8M",
        "--loose-innodb-lru-scan-depth=100",
        "--loose-innodb-write-io-threads=2",
        "--loose-innodb-read-io-threads=2",
        "--loose-innodb-log-buffer-size=2M",
        "--loose-innodb-log-file-size=10M",
        "--slave-net-timeout=120",
        "--binlog-direct-non-transactional-updates",
        "--default-storage-engine=myisam",
        "--use-stat-tables=preferably",
        "--histogram-type=json_hb",
        // mtr's servers resolve client addresses: 127.0.0.1 is `localhost`, so root@localhost
        // and the test accounts created @localhost match TCP logins (the harness skips it).
        "--skip-name-resolve=0",
        // The harness's MariaDb sets these for its own tests; mtr's servers have the defaults.
        "--max-allowed-packet=16M",
        "--max-connections=151",
        "--loose-enable-performance-schema",
        "--loose-performance-schema-accounts-size=100",
        "--loose-performance-schema-digests-size=200",
        "--loose-performance-schema-hosts-size=100",
        "--loose-performance-schema-users-size=100",
        "--loose-performance-schema-max-mutex-instances=5000",
        "--loose-performance-schema-max-rwlock-instances=5000",
        "--loose-performance-schema-max-cond-instances=1500",
        "--loose-performance-schema-max-file-instances=10000",
        "--loose-performance-schema-max-socket-instances=1000",
        "--loose-performance-schema-max-table-instances=500",
        "--loose-performance-schema-max-table-lock-stat=500",
        "--loose-performance-schema-max-index-stat=5000",
        "--loose-performance-schema-max-table-handles=1000",
        "--loose-performance-schema-max-prepared-statements-instances=100",
        "--loose-performance-schema-max-program-instances=5000",
        "--loose-performance-schema-setup-actors-size=100",
        "--loose-performance-schema-setup-objects-size=100",
        "--loose-performance-schema-events-waits-history-size=10",
        "--loose-performance-schema-events-waits-history-long-size=10000",
        "--loose-performance-schema-events-stages-history-size=10",
        "--loose-performance-schema-events-stages-history-long-size=1000",
        "--loose-performance-schema-events-statements-history-size=10",
        "--loose-performance-schema-events-statements-history-long-size=1000",
        "--loose-performance-schema-events-transactions-history-size=10",
        "--loose-performance-schema-events-transactions-history-long-size=1000",
        "--loose-performance-schema-max-thread-instances=400",
        "--loose-performance-schema-session-connect-attrs-size=2048",
        "--loose-performance-schema-max-metadata-locks=10000",
        "--loose-performance-schema-instrument=%=ON",
        "--loose-performance-schema-consumer-events-stages-current=ON",
        "--loose-performance-schema-consumer-events-stages-history=ON",
        "--loose-performance-schema-consumer-events-stages-history-long=ON",
        "--loose-performance-schema-consumer-events-statements-current=ON",
        "--loose-performance-schema-consumer-events-statements-history=ON",
        "--loose-performance-schema-consumer-events-statements-history-long=ON",
        "--loose-performance-schema-consumer-events-transactions-current=ON",
        "--loose-performance-schema-consumer-events-transactions-history=ON",
        "--loose-performance-schema-consumer-events-transactions-history-long=ON",
        "--loose-performance-schema-consumer-events-waits-current=ON",
        "--loose-performance-schema-consumer-events-waits-history=ON",
        "--loose-performance-schema-consumer-events-waits-history-long=ON",
        "--loose-performance-schema-consumer-global-instrumentation=ON",
        "--loose-performance-schema-consumer-thread-instrumentation=ON",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // mtr points the server's file access (SELECT ... INTO OUTFILE, LOAD DATA INFILE) at its
    // vardir, where the tests read and write. mtr creates the vardir itself (an existing one
    // it takes as set up), and the server needs an existing directory: the run directory,
    // which holds it.
    let run_dir = vardir.parent().unwrap_or(vardir);
    args.push(format!("--secure-file-priv={}", run_dir.display()));
    if tls {
        let std_data = mtr.std_data();
        for (opt, file) in [
            ("ssl-ca", CA_CERT),
            ("ssl-cert", SERVER_CERT),
            ("ssl-key", SERVER_KEY),
        ] {
            args.push(format!("--{opt}={}", std_data.join(file).display()));
        }
    }
    args
}

/// What mtr's bootstrap adds to a fresh datadir, for the mariadb CLI: the test time zones, the
/// `test` database, the `mtr` schema (suppressions that tests add with
/// `mtr.add_suppression`, and `check_testcase`).
fn setup_sql(mtr: &MtrInstall) -> Result<String> {
    let share = ["/usr/share/mysql", "/usr/share/mariadb"]
        .iter()
        .map(Path::new)
        .find(|d| d.join("mysql_test_data_timezone.sql").is_file())
        .context("mysql_test_data_timezone.sql not found under /usr/share/{mysql,mariadb}")?;
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let mut sql = String::from("USE mysql;\n");
    sql.push_str(&read(share.join("mysql_test_data_timezone.sql"))?);
    sql.push_str(
        "\nCREATE DATABASE IF NOT EXISTS test CHARACTER SET latin1 COLLATE latin1_swedish_ci;\n\
         ALTER TABLE mysql.gtid_slave_pos ENGINE=Aria transactional=0;\n\
         CREATE DATABASE mtr CHARSET=latin1;\n",
    );
    for file in ["mtr_warnings.sql", "mtr_check.sql"] {
        sql.push_str(&mtr_sql_for_cli(&read(mtr.dir.join("include").join(file))?));
    }
    Ok(sql)
}

/// mtr's `sql_to_bootstrap`, for the mariadb CLI instead: `delimiter X;` lines (mysqltest
/// syntax) become the CLI's `DELIMITER X`, and comment lines (some inside procedure bodies,
/// which the server would reject) go.
fn mtr_sql_for_cli(text: &str) -> String {
    let mut out = String::new();
    let mut delimiter = ";".to_owned();
    for line in text.lines() {
        if let Some(new) = line.strip_prefix("delimiter ") {
            let new = new.trim_end();
            delimiter = new
                .strip_suffix(delimiter.as_str())
                .unwrap_or(new)
                .to_owned();
            out.push_str(&format!("DELIMITER {delimiter}\n"));
        } else if !line.trim_start().starts_with("--") {
            out.push_str(line);
            out.push('\n');
        }
    }
    if delimiter != ";" {
        out.push_str("DELIMITER ;\n");
    }
    out
}

/// Starts the gateway in passthrough mode in front of `db`; its config and log go in `dir`.
/// With `tls_from` (mtr's `std_data`), the listener offers TLS with the server's own
/// certificate, so clients that check it see what they would see directly, and the gateway
/// reaches the server over TLS too, verifying its certificate.
fn start_gateway(
    bin: &Path,
    dir: &Path,
    db: &MariaDb,
    driver: Driver,
    tls_from: Option<PathBuf>,
) -> Result<(SocketAddr, Service)> {
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (cert, key, ca) = match &tls_from {
        Some(d) => (d.join(SERVER_CERT), d.join(SERVER_KEY), d.join(CA_CERT)),
        None => Default::default(),
    };
    let config = dir.join("gatehouse.toml");
    GatewaySetup {
        listen,
        upstream: db.addr(),
        upstream_user: "",
        identity: "",
        secret: "",
        io_mode: driver.name(),
        io_threads: 0,
        max_connections: 1000,
        passthrough: true,
        tls: tls_from.as_ref().map(|_| ListenerTls {
            cert: &cert,
            key: &key,
        }),
        upstream_ca: tls_from.as_ref().map(|_| ca.as_path()),
        policy: None,
        recording: None,
    }
    .write(&config)?;
    let mut cmd = gateway::serve_command(bin, &config, Some(driver.name()), "");
    let mut service = Service::spawn_logged(
        &format!("gatehouse ({})", driver.name()),
        &mut cmd,
        &dir.join("gatehouse.log"),
    )?;
    service.wait_listening(listen, Duration::from_secs(15))?;
    Ok((listen, service))
}

/// Logs in as root over TCP (with TLS when `tls`) and returns what the client says about TLS
/// (`Cipher in use is TLS_AES_256_GCM_SHA384` or `Not in use`); with `tls`, an error unless a
/// cipher is in use. Also proves that root can log in on this route.
fn check_tls(port: u16, tls: bool) -> Result<String> {
    let mut cmd = Command::new("mariadb");
    cmd.args(["--no-defaults", "--protocol=tcp", "--host=127.0.0.1"])
        .arg(format!("--port={port}"))
        .args(["--user=root", "-e", "\\s"]);
    if tls {
        cmd.arg("--ssl");
    }
    let out = cmd.output().context("running the mariadb CLI")?;
    if !out.status.success() {
        bail!(
            "root cannot log in on port {port}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let ssl = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SSL:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "(no SSL line in `\\s`)".into());
    if tls && !ssl.starts_with("Cipher in use") {
        bail!("TLS was asked for but the client says: {ssl}");
    }
    Ok(ssl)
}

/// Where mtr's clients connect.
#[derive(Clone, Copy)]
struct Endpoint<'a> {
    port: u16,
    /// Clients use TLS.
    tls: bool,
    /// The gateway's log, when the port is the gateway's.
    gateway_log: Option<&'a Path>,
}

/// Runs mtr against `port`; returns the parsed results.
fn run_mtr(
    ctx: &Shared,
    tests: &[String],
    protocol: Protocol,
    dir: &Path,
    to: Endpoint<'_>,
    stop_at_failure: bool,
) -> Result<BTreeMap<String, TestResult>> {
    let Endpoint {
        port,
        tls,
        gateway_log,
    } = to;
    let vardir = &dir.join("var");
    let log = dir.join("mtr.log");
    let private = overlay(&ctx.mtr.dir, &dir.join("mtr"))?;
    let script = private.join(ctx.mtr.script.file_name().expect("a file"));
    let mut cmd = Command::new("perl");
    // mtr takes its own directory from the working directory.
    cmd.current_dir(&private).arg(&script);
    for ext in [
        "host=127.0.0.1".to_owned(),
        format!("port={port}"),
        "protocol=tcp".to_owned(),
        // Never used with protocol=tcp; a path that does not exist, so that nothing can reach
        // a server's socket (mtr's default, /tmp/mysqld.sock, may be a real server's).
        format!("socket={}", dir.join("no-such-socket").display()),
        "user=root".to_owned(),
    ] {
        cmd.arg("--extern").arg(ext);
    }
    if tls {
        // Written into [client] of the my.cnf mtr gives mysqltest and every client program a
        // test starts (mtr's own --ssl needs a server it started).
        cmd.args(["--extern", "ssl=1"]);
    }
    cmd.arg(format!("--vardir={}", vardir.display()))
        .args(["--parallel=1", "--force", "--retry=1"])
        .arg(format!(
            "--max-test-fail={}",
            if stop_at_failure { 1 } else { 0 }
        ))
        .arg(format!("--testcase-timeout={}", ctx.testcase_timeout))
        .arg("--suite-timeout=1440")
        .arg("--nocheck-testcases");
    if protocol == Protocol::Ps {
        cmd.arg("--ps-protocol");
    }
    cmd.args(tests);
    // mysqltest retries a failed connect 500 times, 0.1 s apart: after a test that locks root
    // out (a failing test does not clean up here), every later test would wait 50 s. mtr has
    // no option for it and every client reads the [client] group it writes (and warns about
    // options it does not know), so mtr runs mysqltest through a wrapper that adds it.
    let wrapper = dir.join("mysqltest");
    write_mysqltest_wrapper(&wrapper)?;
    cmd.env("MYSQL_TEST", &wrapper);
    // mtr's servers get their settings from mtr; nothing of the caller's should leak in.
    for var in [
        "MTR_BUILD_THREAD",
        "MTR_PORT_BASE",
        "MYSQL_TEST_DIR",
        "MYSQLTEST_VARDIR",
    ] {
        cmd.env_remove(var);
    }
    let mut service = Service::spawn_logged("mtr", &mut cmd, &log)?;
    loop {
        if service.exited().is_some() {
            break;
        }
        if ctx.interrupted.load(Ordering::SeqCst) {
            service.stop();
            bail!("interrupted");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Tests print results in many character sets: not all of it is UTF-8.
    let text = String::from_utf8_lossy(
        &std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?,
    )
    .into_owned();
    let mut results = results::parse_mtr_output(&text);
    if let Some(gateway_log) = gateway_log {
        attribute_gateway_log(&mut results, vardir, gateway_log);
    }
    // The private tree takes tens of MB (a block per symlink), mtr's copy of std_data 16 MB:
    // keep only what a reader needs, the .reject files, in rejects/.
    keep_rejects(&private, &dir.join("rejects"))?;
    let _ = std::fs::remove_dir_all(dir.join("mtr"));
    let _ = std::fs::remove_dir_all(vardir.join("std_data"));
    // Keep each failure's text next to the run, named after the test.
    let failures = dir.join("failures");
    for (name, r) in &results {
        if r.outcome == Outcome::Fail {
            std::fs::create_dir_all(&failures)?;
            std::fs::write(
                failures.join(format!("{}.txt", file_name(name))),
                &r.details,
            )?;
        }
    }
    if results.is_empty() {
        bail!(
            "mtr reported no test results; see {}{}",
            log.display(),
            tail(&text, 15)
        );
    }
    Ok(results)
}

/// A shell script that runs mysqltest with `--max-connect-retries=20` after its first
/// argument (mysqltest wants `--defaults-file` first).
fn write_mysqltest_wrapper(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mysqltest = ["mariadb-test", "mysqltest"]
        .iter()
        .find_map(|p| find_program(p))
        .context("mariadb-test (mysqltest) not found in PATH")?;
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\n\
             # Written by cargo xtask mtr: mysqltest with fewer connect retries.\n\
             first=\"$1\"; shift\n\
             exec {} \"$first\" --max-connect-retries=20 \"$@\"\n",
            mysqltest.display()
        ),
    )?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Runs each client-test function as its own process against `port`.
fn run_client_tests(
    ctx: &Shared,
    tests: &[String],
    dir: &Path,
    port: u16,
    gateway_log: Option<&Path>,
) -> Result<BTreeMap<String, TestResult>> {
    let bin = ctx.client_test.as_ref().context("no mariadb-client-test")?;
    let logs = dir.join("client-test");
    let vardir = dir.join("var");
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(&vardir)?;
    let mut results = BTreeMap::new();
    for test in tests {
        if ctx.interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let log = logs.join(format!("{}.log", file_name(test)));
        let started = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.current_dir(&vardir)
            .args(["--no-defaults", "--host=127.0.0.1"])
            .arg(format!("--port={port}"))
            .args(["--user=root", "--silent", "--testcase"])
            .arg(format!("--vardir={}", vardir.display()))
            .arg(test);
        let log_start = gateway_log.map_or(0, file_len);
        let status = run_with_timeout(&mut cmd, &log, Duration::from_secs(120))?;
        // The gateway writes its log line about a session's end after the client has gone.
        if gateway_log.is_some() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let gateway_warnings = gateway_log
            .map(|g| results::log_warnings(&read_range(g, log_start, file_len(g))))
            .unwrap_or_default();
        let output = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        let outcome = if status.as_deref() == Some("exit status: 0") {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        results.insert(
            test.clone(),
            TestResult {
                outcome,
                millis: Some(started.elapsed().as_millis() as u64),
                comment: match (&outcome, &status) {
                    (Outcome::Pass, _) => String::new(),
                    (_, Some(s)) => s.clone(),
                    (_, None) => "timeout after 120 s".into(),
                },
                details: if outcome == Outcome::Fail {
                    tail(&output, 30)
                } else {
                    String::new()
                },
                gateway_warnings,
                dir: None,
            },
        );
    }
    Ok(results)
}

/// Gives each test the gateway's WARN/ERROR lines of its own time. Tests run one after the
/// other, and mysqltest writes a test's log (`var/log/<test>.log`) as it ends: a line logged
/// after one test's log and up to the next one's belongs to the next test, except within
/// 50 ms of a test's end, when it is most likely the gateway logging the end of that test's
/// session just after the client saw it. Tests that share a short name across suites are
/// left without lines rather than given a neighbour's.
fn attribute_gateway_log(
    results: &mut BTreeMap<String, TestResult>,
    vardir: &Path,
    gateway_log: &Path,
) {
    let short = |t: &str| t.split_once('.').map_or(t, |(_, s)| s).to_owned();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for t in results.keys() {
        *seen.entry(short(t)).or_default() += 1;
    }
    let mut ends: Vec<(std::time::SystemTime, String)> = results
        .iter()
        .filter(|(t, r)| matches!(r.outcome, Outcome::Pass | Outcome::Fail) && seen[&short(t)] == 1)
        .filter_map(|(t, _)| {
            let log = vardir.join("log").join(format!("{}.log", short(t)));
            let mtime = std::fs::metadata(log).and_then(|m| m.modified()).ok()?;
            Some((mtime, t.clone()))
        })
        .collect();
    ends.sort();
    let text =
        String::from_utf8_lossy(&std::fs::read(gateway_log).unwrap_or_default()).into_owned();
    let slack = Duration::from_millis(50);
    for line in text.lines() {
        let Some((stamp, _)) = line.split_once(' ') else {
            continue;
        };
        let Some(at) = results::parse_utc(stamp) else {
            continue;
        };
        let warnings = results::log_warnings(line);
        if warnings.is_empty() {
            continue;
        }
        // The test that ended just before (the gateway logging a session's end), else the
        // one running then: the first to end after.
        let after = ends.partition_point(|(end, _)| *end <= at);
        let owner = match after.checked_sub(1).map(|i| &ends[i]) {
            Some((end, test)) if at.duration_since(*end).unwrap_or_default() <= slack => Some(test),
            _ => ends.get(after).map(|(_, test)| test),
        };
        if let Some(r) = owner.and_then(|test| results.get_mut(test)) {
            r.gateway_warnings.extend(warnings);
        }
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Bytes `start..end` of a file, as text (lossy).
fn read_range(path: &Path, start: u64, end: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let mut buf = Vec::new();
    if end > start && f.seek(SeekFrom::Start(start)).is_ok() {
        let _ = f.take(end - start).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `cmd` with its output in `log`; `Some(status)`, or `None` if it had to be killed
/// after `timeout`.
fn run_with_timeout(cmd: &mut Command, log: &Path, timeout: Duration) -> Result<Option<String>> {
    let file = std::fs::File::create(log)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status.to_string()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A test name as a file name (`compat/oracle.sp` → `compat_oracle.sp`).
fn file_name(test: &str) -> String {
    test.replace(['/', ' ', '\''], "_")
}

/// The last `n` lines of `text`, on new lines.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Finds `prog` in PATH.
fn find_program(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .current_dir(gateway::workspace_root())
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dirty = Command::new("git")
        .current_dir(gateway::workspace_root())
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    (!commit.is_empty()).then(|| format!("{commit}{}", if dirty { " (dirty)" } else { "" }))
}

fn mariadb_version() -> Option<String> {
    let out = Command::new("mariadb").arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Sets `f` to run on SIGINT/SIGTERM (instead of dying at once, so running children are
/// stopped in order).
fn ctrlc_handler(f: impl Fn() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
            eprintln!("interrupted: stopping the running runs...");
            f();
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtr_sql_becomes_cli_sql() {
        let text = "-- Copyright\n\
                    delimiter ||;\n\
                    use mtr||\n\
                    CREATE PROCEDURE p()\n\
                    BEGIN\n\
                    \x20 --SELECT 1;\n\
                    \x20 SELECT 2;\n\
                    END||\n";
        assert_eq!(
            mtr_sql_for_cli(text),
            "DELIMITER ||\nuse mtr||\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 2;\nEND||\nDELIMITER ;\n"
        );
        assert_eq!(mtr_sql_for_cli("SELECT 1;\n"), "SELECT 1;\n");
    }

    #[test]
    fn run_names() {
        let spec = RunSpec {
            setting: Setting {
                suite: Suite::Mtr,
                tls: TlsMode::On,
                protocol: Protocol::Ps,
            },
            route: Route::Gateway(Driver::Uring),
            tests: vec!["compat/oracle.sp".into()],
            confirm: false,
            chunk: None,
        };
        assert_eq!(spec.dir_name(), "mtr-tls-on-ps-gateway-uring");
        let confirm = RunSpec {
            confirm: true,
            route: Route::Direct,
            ..spec
        };
        assert_eq!(
            confirm.dir_name(),
            "confirm/compat_oracle.sp/mtr-tls-on-ps-direct"
        );
        let part = RunSpec {
            chunk: Some((2, 12)),
            confirm: false,
            ..confirm
        };
        assert_eq!(part.dir_name(), "mtr-tls-on-ps-direct/part03of12");
    }

    #[test]
    fn reject_paths() {
        assert_eq!(reject_path("main.kill"), Path::new("main/kill.reject"));
        assert_eq!(
            reject_path("compat/oracle.sp"),
            Path::new("suite/compat/oracle/r/sp.reject")
        );
    }

    #[test]
    fn splitting() {
        let tests: Vec<String> = (0..10).map(|i| format!("main.t{i}")).collect();
        let sizes = |size| split(&tests, size).iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(0), [10]);
        assert_eq!(sizes(10), [10]);
        assert_eq!(sizes(4), [4, 4, 2]);
        assert_eq!(sizes(6), [5, 5]);
        assert_eq!(split(&tests, 3).concat(), tests);
    }

    #[test]
    fn lists_in_the_repo_parse() {
        for list in [FULL_LIST, QUICK_LIST] {
            let path = gateway::workspace_root().join(list);
            let text = std::fs::read_to_string(&path).unwrap();
            let tests = results::parse_list(&text).unwrap();
            assert!(!tests.is_empty(), "{list}");
        }
        // The quick list is part of the full one.
        let read = |l: &str| {
            results::parse_list(
                &std::fs::read_to_string(gateway::workspace_root().join(l)).unwrap(),
            )
            .unwrap()
        };
        let full = read(FULL_LIST);
        for t in read(QUICK_LIST) {
            assert!(full.contains(&t), "{t} is in quick.txt but not tests.txt");
        }
    }
}
