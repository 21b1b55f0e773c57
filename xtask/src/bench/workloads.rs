//! The load generator: many MySQL connections on tokio (mysql_async), closed loop, each
//! operation's latency recorded in an HDR histogram.
//!
//! A timed run connects all its clients first (not measured), lets them run through a warm-up,
//! then measures a window: only operations that start and finish inside it count. The CPU time
//! and peak RSS of the process behind the path (HAProxy, the gateway) are read at the window's
//! edges.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use hdrhistogram::Histogram;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Statement};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use super::dataset::{BIG_ROWS, TABLES, TABLE_SIZE};
use crate::process;

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `SELECT c FROM sbtestN WHERE id = ?`, text protocol.
    PointSelect,
    /// The same with a prepared statement (binary protocol).
    PointSelectPs,
    /// A read-only transaction: point select, ranges, ORDER BY, DISTINCT, aggregates.
    ReadOnly,
    /// A write transaction: two updates, a delete and an insert.
    WriteMix,
    /// `SELECT` of 10,000 rows of ~200 bytes.
    LargeResult,
    /// Connect, authenticate, one point select, close.
    ConnectStorm,
    /// N authenticated connections held open, idle.
    Idle,
}

impl Workload {
    /// Every workload, in the order they run.
    pub const ALL: [Workload; 7] = [
        Workload::PointSelect,
        Workload::PointSelectPs,
        Workload::ReadOnly,
        Workload::WriteMix,
        Workload::LargeResult,
        Workload::ConnectStorm,
        Workload::Idle,
    ];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::PointSelect => "point-select",
            Workload::PointSelectPs => "point-select-ps",
            Workload::ReadOnly => "read-only",
            Workload::WriteMix => "write-mix",
            Workload::LargeResult => "large-result",
            Workload::ConnectStorm => "connect-storm",
            Workload::Idle => "idle",
        }
    }

    /// One line saying what it does.
    pub fn title(self) -> &'static str {
        match self {
            Workload::PointSelect => "point select by primary key, text protocol",
            Workload::PointSelectPs => "point select by primary key, prepared (binary protocol)",
            Workload::ReadOnly => {
                "read-only transactions: point, range, SUM, ORDER BY, DISTINCT, GROUP BY"
            }
            Workload::WriteMix => "write transactions: 2 UPDATE, DELETE, INSERT",
            Workload::LargeResult => "large result set: 10,000 rows x ~200 bytes",
            Workload::ConnectStorm => "connection storm: connect + authenticate + 1 query + close",
            Workload::Idle => "idle authenticated connections held open",
        }
    }

    /// What one recorded latency covers.
    pub fn op(self) -> &'static str {
        match self {
            Workload::PointSelect | Workload::PointSelectPs | Workload::LargeResult => "statement",
            Workload::ReadOnly | Workload::WriteMix => "transaction",
            Workload::ConnectStorm => "connect+query+close",
            Workload::Idle => "connect+authenticate",
        }
    }
}

/// Where and as whom the clients log in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The address clients connect to.
    pub addr: SocketAddr,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl Endpoint {
    /// mysql_async options: plaintext, database `shop`, and no settings queries after login
    /// (`max_allowed_packet`, `wait_timeout` and the socket preference are given up front), so
    /// every statement on the wire is one the workload sent.
    pub fn opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.addr.ip().to_string())
            .resolved_ips(Some(vec![self.addr.ip()]))
            .tcp_port(self.addr.port())
            .user(Some(&self.user))
            .pass(Some(&self.password))
            .db_name(Some(gatehouse_tests::TEST_DB))
            .prefer_socket(false)
            .max_allowed_packet(Some(64 << 20))
            .wait_timeout(Some(28_800))
            .into()
    }

    /// Logs in and checks that the load phase's data is visible through this path.
    pub async fn check(&self) -> Result<()> {
        let mut conn = Conn::new(self.opts()).await.context("connecting")?;
        let n: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM sbtest{TABLES}"))
            .await
            .context("SELECT COUNT(*)")?;
        ensure!(
            n == Some(TABLE_SIZE as u64),
            "SELECT COUNT(*) FROM sbtest{TABLES} returned {n:?}, expected {TABLE_SIZE}"
        );
        conn.disconnect().await?;
        Ok(())
    }
}

/// How long a timed run lasts.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Run, unmeasured, this long first.
    pub warmup: Duration,
    /// Then measure this long.
    pub measure: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Operations completed inside the window.
    pub ops: u64,
    /// Statements they sent (a transaction counts each of its statements, BEGIN and COMMIT too).
    pub statements: u64,
    /// Operations that failed inside the window.
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// The window's length.
    pub elapsed: Duration,
    /// Latency of each operation, microseconds.
    pub latency_us: Histogram<u64>,
    /// CPU time the path's process used in the window.
    pub cpu: Option<Duration>,
    /// CPU time the load generator (this process) used in the window.
    pub client_cpu: Option<Duration>,
    /// The path's process peak RSS during the window, KiB.
    pub peak_rss_kib: Option<u64>,
    /// For [`Workload::Idle`]: RSS growth of the path's process per held connection, KiB.
    pub rss_per_conn_kib: Option<f64>,
}

/// An empty latency histogram: 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// Runs a timed workload with `conns` clients against `endpoint`; `pid` is the process behind
/// the path (none for direct).
pub async fn run_timed(
    workload: Workload,
    endpoint: &Endpoint,
    conns: usize,
    window: Window,
    pid: Option<u32>,
) -> Result<Measured> {
    assert_ne!(workload, Workload::Idle, "idle is not timed; see run_idle");
    let opts = endpoint.opts();
    let mut connecting = JoinSet::new();
    for i in 0..conns {
        let opts = opts.clone();
        connecting.spawn(async move { Client::start(workload, opts, i as u64).await });
    }
    let mut clients = Vec::with_capacity(conns);
    while let Some(client) = connecting.join_next().await {
        clients.push(client??);
    }

    let start = Instant::now();
    let measure_from = start + window.warmup;
    let until = measure_from + window.measure;
    let mut running = JoinSet::new();
    for client in clients {
        running.spawn(client.run(workload, measure_from, until));
    }

    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = pid.map(process::cpu_time).transpose()?;
    let client_cpu_before = process::cpu_time(std::process::id())?;
    if let Some(p) = pid {
        // If the reset is refused, VmHWM below is the process's lifetime peak.
        process::reset_peak_rss(p);
    }
    tokio::time::sleep_until(until.into()).await;
    let cpu_after = pid.map(process::cpu_time).transpose()?;
    let client_cpu = process::cpu_time(std::process::id())?.saturating_sub(client_cpu_before);
    let peak_rss_kib = pid.map(|p| process::status_kib(p, "VmHWM")).transpose()?;

    let mut total = Measured {
        ops: 0,
        statements: 0,
        errors: 0,
        first_error: None,
        elapsed: window.measure,
        latency_us: new_histogram(),
        cpu: cpu_before.zip(cpu_after).map(|(b, a)| a.saturating_sub(b)),
        client_cpu: Some(client_cpu),
        peak_rss_kib,
        rss_per_conn_kib: None,
    };
    while let Some(done) = running.join_next().await {
        let tally = done?;
        total.ops += tally.ops;
        total.statements += tally.statements;
        total.errors += tally.errors;
        total.latency_us.add(&tally.latency_us)?;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    if total.ops == 0 {
        bail!(
            "no {} completed; first error: {}",
            workload.op(),
            total.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(total)
}

/// What one client counted.
struct Tally {
    ops: u64,
    statements: u64,
    errors: u64,
    first_error: Option<String>,
    latency_us: Histogram<u64>,
}

/// One simulated client: its connection (none between operations for the storm), its
/// prepared statements, its random numbers.
struct Client {
    opts: Opts,
    conn: Option<Conn>,
    point_stmts: Vec<Statement>,
    rng: SmallRng,
}

impl Client {
    async fn start(workload: Workload, opts: Opts, seed: u64) -> Result<Client> {
        let mut client = Client {
            opts,
            conn: None,
            point_stmts: Vec::new(),
            rng: SmallRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED),
        };
        if workload != Workload::ConnectStorm {
            client.connect(workload).await?;
        }
        Ok(client)
    }

    async fn connect(&mut self, workload: Workload) -> Result<&mut Conn> {
        let mut conn = Conn::new(self.opts.clone()).await?;
        self.point_stmts.clear();
        if workload == Workload::PointSelectPs {
            for t in 1..=TABLES {
                let stmt = conn
                    .prep(format!("SELECT c FROM sbtest{t} WHERE id = ?"))
                    .await?;
                self.point_stmts.push(stmt);
            }
        }
        Ok(self.conn.insert(conn))
    }

    /// Runs operations until `until`, recording those inside `[measure_from, until]`.
    async fn run(mut self, workload: Workload, measure_from: Instant, until: Instant) -> Tally {
        let mut tally = Tally {
            ops: 0,
            statements: 0,
            errors: 0,
            first_error: None,
            latency_us: new_histogram(),
        };
        loop {
            let began = Instant::now();
            if began >= until {
                break;
            }
            let result = self.op(workload).await;
            let ended = Instant::now();
            let measured = began >= measure_from && ended <= until;
            match result {
                Ok(statements) if measured => {
                    tally.ops += 1;
                    tally.statements += statements;
                    tally.latency_us.saturating_record(micros(ended - began));
                }
                Ok(_) => {}
                Err(e) => {
                    if measured {
                        tally.errors += 1;
                    }
                    tally.first_error.get_or_insert_with(|| format!("{e:#}"));
                    self.recover().await;
                    // Do not spin on an error that repeats (e.g. the path went away).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.disconnect().await;
        }
        tally
    }

    /// After an error: roll back what the connection may have open, or drop it (the next
    /// operation reconnects).
    async fn recover(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.query_drop("ROLLBACK").await.is_err() {
                self.conn = None;
            }
        }
    }

    fn table(&mut self) -> u32 {
        self.rng.gen_range(1..=TABLES)
    }

    fn id(&mut self) -> u32 {
        self.rng.gen_range(1..=TABLE_SIZE)
    }

    /// sysbench's `c` column: groups of 11 digits joined by '-'.
    fn sb_text(&mut self, groups: usize) -> String {
        let mut s = String::with_capacity(groups * 12);
        for g in 0..groups {
            if g > 0 {
                s.push('-');
            }
            s += &format!("{:011}", self.rng.gen_range(0..100_000_000_000u64));
        }
        s
    }

    /// Runs one operation; returns how many statements it sent.
    async fn op(&mut self, workload: Workload) -> Result<u64> {
        if workload == Workload::ConnectStorm {
            let (t, id) = (self.table(), self.id());
            let mut conn = Conn::new(self.opts.clone()).await?;
            conn.query_drop(format!("SELECT c FROM sbtest{t} WHERE id = {id}"))
                .await?;
            conn.disconnect().await?;
            return Ok(1);
        }
        if self.conn.is_none() {
            self.connect(workload).await?;
        }
        let (t, id) = (self.table(), self.id());
        let statements: Vec<String> = match workload {
            Workload::PointSelect => vec![format!("SELECT c FROM sbtest{t} WHERE id = {id}")],
            Workload::PointSelectPs => {
                let stmt = self.point_stmts[t as usize - 1].clone();
                let conn = self.conn.as_mut().expect("connected above");
                conn.exec_drop(&stmt, (id,)).await?;
                return Ok(1);
            }
            Workload::ReadOnly => {
                let lo = self.rng.gen_range(1..=TABLE_SIZE - 1000);
                let (hi, hi_wide) = (lo + 99, lo + 999);
                vec![
                    "BEGIN".into(),
                    format!("SELECT c FROM sbtest{t} WHERE id = {id}"),
                    format!("SELECT c FROM sbtest{t} WHERE id BETWEEN {lo} AND {hi}"),
                    format!("SELECT SUM(k) FROM sbtest{t} WHERE id BETWEEN {lo} AND {hi}"),
                    format!("SELECT c FROM sbtest{t} WHERE id BETWEEN {lo} AND {hi} ORDER BY c"),
                    format!(
                        "SELECT DISTINCT c FROM sbtest{t} WHERE id BETWEEN {lo} AND {hi} ORDER BY c"
                    ),
                    format!(
                        "SELECT k % 10 AS bucket, COUNT(*), AVG(LENGTH(c)) FROM sbtest{t} \
                         WHERE id BETWEEN {lo} AND {hi_wide} GROUP BY bucket"
                    ),
                    "COMMIT".into(),
                ]
            }
            Workload::WriteMix => {
                let (id2, id3) = (self.id(), self.id());
                let k = self.rng.gen_range(1..=TABLE_SIZE);
                let (c1, c2, pad) = (self.sb_text(10), self.sb_text(10), self.sb_text(5));
                vec![
                    "BEGIN".into(),
                    format!("UPDATE sbtest{t} SET k = k + 1 WHERE id = {id}"),
                    format!("UPDATE sbtest{t} SET c = '{c1}' WHERE id = {id2}"),
                    format!("DELETE FROM sbtest{t} WHERE id = {id3}"),
                    format!(
                        "INSERT INTO sbtest{t} (id, k, c, pad) VALUES ({id3}, {k}, '{c2}', '{pad}')"
                    ),
                    "COMMIT".into(),
                ]
            }
            Workload::LargeResult => {
                let conn = self.conn.as_mut().expect("connected above");
                let mut rows = 0usize;
                conn.query_iter("SELECT id, a, b, n FROM big")
                    .await?
                    .for_each_and_drop(|_row| rows += 1)
                    .await?;
                ensure!(
                    rows == BIG_ROWS,
                    "large result: {rows} rows, expected {BIG_ROWS}"
                );
                return Ok(1);
            }
            Workload::ConnectStorm | Workload::Idle => unreachable!("handled elsewhere"),
        };
        let conn = self.conn.as_mut().expect("connected above");
        for sql in &statements {
            conn.query_drop(sql).await?;
        }
        Ok(statements.len() as u64)
    }
}

/// Opens `n` connections (64 at a time), holds them idle, and reports the growth in RSS of the
/// path's process per connection (from after a first connection to `settle` after the last),
/// then pings each (they must still be usable) and closes them. The latency recorded is each
/// connection's connect + authenticate.
pub async fn run_idle(
    endpoint: &Endpoint,
    n: usize,
    settle: Duration,
    pid: Option<u32>,
) -> Result<Measured> {
    let opts = endpoint.opts();
    // One connection first: what the relay sets up once (threads, buffers) is no connection's cost.
    let first = Conn::new(opts.clone()).await.context("first connection")?;
    tokio::time::sleep(settle).await;
    let rss_before = pid.map(|p| process::status_kib(p, "VmRSS")).transpose()?;
    if let Some(p) = pid {
        process::reset_peak_rss(p);
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let started = Instant::now();
    let mut connecting = JoinSet::new();
    for _ in 0..n {
        let (opts, gate) = (opts.clone(), gate.clone());
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let began = Instant::now();
            let conn = Conn::new(opts).await?;
            anyhow::Ok((conn, micros(began.elapsed())))
        });
    }
    let mut latency_us = new_histogram();
    let mut conns = Vec::with_capacity(n);
    let mut first_error = None;
    while let Some(joined) = connecting.join_next().await {
        match joined? {
            Ok((conn, us)) => {
                latency_us.saturating_record(us);
                conns.push(conn);
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let elapsed = started.elapsed();
    let errors = (n - conns.len()) as u64;
    if let Some(e) = &first_error {
        for conn in conns {
            let _ = conn.disconnect().await;
        }
        bail!("{errors} of {n} connections failed; first error: {e}");
    }

    tokio::time::sleep(settle).await;
    let rss_after = pid.map(|p| process::status_kib(p, "VmRSS")).transpose()?;
    let peak_rss_kib = pid.map(|p| process::status_kib(p, "VmHWM")).transpose()?;
    let rss_per_conn_kib = rss_before
        .zip(rss_after)
        .map(|(b, a)| (a as f64 - b as f64) / n.max(1) as f64);

    let mut closing = JoinSet::new();
    for mut conn in conns {
        closing.spawn(async move {
            conn.ping().await?;
            conn.disconnect().await?;
            anyhow::Ok(())
        });
    }
    while let Some(done) = closing.join_next().await {
        done?.context("an idle connection did not survive being held")?;
    }
    first.disconnect().await?;

    Ok(Measured {
        ops: n as u64,
        statements: 0,
        errors,
        first_error,
        elapsed,
        latency_us,
        cpu: None,
        client_cpu: None,
        peak_rss_kib,
        rss_per_conn_kib,
    })
}
