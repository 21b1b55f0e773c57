//! `cargo xtask demo`: the gateway in front of a throwaway MariaDB on this machine, with one
//! identity (`alice`), and the exact `mariadb` command to connect through it. Ctrl-C stops
//! everything.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gatehouse_tests::{free_port, MariaDb, APP_PASSWORD, APP_USER, TEST_DB};
use rand::distributions::{Alphanumeric, DistString};

use crate::gateway::{self, GatewaySetup};
use crate::process::Service;

/// The packages the harness needs (Debian/Ubuntu names).
const APT_INSTALL: &str =
    "apt-get install -y --no-install-recommends mariadb-server mariadb-client";

/// `cargo xtask demo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Install MariaDB with apt-get when it is missing (needs root).
    #[arg(long)]
    install: bool,
    /// Build and run the release gateway instead of the debug one.
    #[arg(long)]
    release: bool,
    /// Port the gateway listens on [default: 3307 if free, else any free port].
    #[arg(long)]
    port: Option<u16>,
    /// alice's password [default: a random one, printed].
    #[arg(long)]
    password: Option<String>,
    /// The gateway's I/O driver.
    #[arg(long, default_value = "auto", value_parser = ["auto", "epoll", "uring"])]
    io: String,
}

/// Runs the demo until Ctrl-C.
pub fn run(args: DemoArgs) -> Result<()> {
    ensure_mariadb(args.install)?;
    let bin = gateway::build(args.release)?;
    let password = args
        .password
        .clone()
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 16));
    let secret = gateway::hash_secret(&bin, &password)?;

    let dir = gateway::target_dir().join("demo");
    std::fs::create_dir_all(&dir)?;
    eprintln!("starting MariaDB (datadir under {})...", dir.display());
    let db = start_mariadb_in(&dir)?;
    db.root_sql(&format!(
        "CREATE TABLE {TEST_DB}.customers (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(80));
         INSERT INTO {TEST_DB}.customers VALUES
           (1, 'Ada Lovelace', 'ada@example.com'),
           (2, 'Alan Turing', 'alan@example.com'),
           (3, 'Grace Hopper', 'grace@example.com');"
    ))?;

    let port = match args.port {
        Some(p) => p,
        None if TcpListener::bind(("127.0.0.1", 3307)).is_ok() => 3307,
        None => free_port()?,
    };
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let config = dir.join("gatehouse.toml");
    GatewaySetup {
        listen,
        upstream: db.addr(),
        upstream_user: APP_USER,
        identity: "alice",
        secret: &secret,
        io_mode: &args.io,
        io_threads: 0,
        max_connections: 256,
        passthrough: false,
        tls: None,
        upstream_ca: None,
        policy: None,
        recording: None,
    }
    .write(&config)?;

    let mut serve = gateway::serve_command(&bin, &config, None, APP_PASSWORD);
    eprintln!("starting the gateway: {serve:?}");
    let mut service = Service::spawn_foreground("gatehouse", &mut serve)?;
    service.wait_listening(listen, Duration::from_secs(15))?;

    println!();
    println!(
        "Gatehouse is listening on {listen}, in front of MariaDB on {}.",
        db.addr()
    );
    println!("Config: {}", config.display());
    println!("Connect through it as alice:");
    println!();
    println!("    mariadb -h 127.0.0.1 -P {port} -u alice -p{password} {TEST_DB}");
    println!();
    println!("(try: SELECT * FROM customers;)  Ctrl-C stops the gateway and MariaDB.");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let exited = rt.block_on(async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            status = async {
                loop {
                    if let Some(status) = service.exited() {
                        break status;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            } => Some(status),
        }
    });
    eprintln!("stopping...");
    drop(service);
    drop(db);
    match exited {
        Some(status) => bail!("the gateway exited ({status})"),
        None => Ok(()),
    }
}

/// Starts the harness's MariaDB with its datadir under `dir` (the harness puts it in a fresh
/// temporary directory, which follows `TMPDIR`).
fn start_mariadb_in(dir: &Path) -> Result<MariaDb> {
    let saved = std::env::var_os("TMPDIR");
    std::env::set_var("TMPDIR", dir);
    let db = MariaDb::start();
    match saved {
        Some(v) => std::env::set_var("TMPDIR", v),
        None => std::env::remove_var("TMPDIR"),
    }
    db.context("starting MariaDB")
}

/// Checks the MariaDB programs the harness runs; installs them with `--install` as root, or
/// says how.
fn ensure_mariadb(install: bool) -> Result<()> {
    let missing: Vec<&str> = ["mariadbd", "mariadb-install-db", "mariadb"]
        .into_iter()
        .filter(|prog| !on_path(prog))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !install || !root {
        let sudo = if root { "" } else { "sudo " };
        bail!(
            "missing {}: install MariaDB with\n\n    {sudo}apt-get update && {sudo}{APT_INSTALL}\n\n\
             (or, as root: cargo xtask demo --install)",
            missing.join(", ")
        );
    }
    eprintln!("installing MariaDB: apt-get update && {APT_INSTALL}");
    for cmd in ["apt-get update", APT_INSTALL] {
        let mut parts = cmd.split_whitespace();
        let status = Command::new(parts.next().expect("non-empty"))
            .args(parts)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running {cmd}"))?;
        if !status.success() {
            bail!("`{cmd}` failed ({status})");
        }
    }
    Ok(())
}

/// Whether `prog` is an executable in PATH or the sbin directories (mariadbd lives in
/// /usr/sbin, often not in a user's PATH).
fn on_path(prog: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .any(|d| d.join(prog).is_file())
}
