//! The `gatehouse` command: run the gateway, check a configuration, hash an identity's secret.
//!
//! ```text
//! gatehouse serve --config gatehouse.toml [--io auto|uring|epoll]
//! gatehouse check-config gatehouse.toml
//! echo -n 'password' | gatehouse hash-secret [--native]
//! ```
//!
//! Exit status: 0 on success, 1 on any error (every error is printed to stderr first).
#![forbid(unsafe_code)]

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse::auth::secret::StoredSecret;
use gatehouse::config::{Config, ConfigError, IoMode};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gatehouse: an access gateway for production MySQL.
///
/// Clients connect with their ordinary MySQL client and their own identity; the gateway logs in
/// to the database with a credential only it holds.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until it is stopped (SIGINT/SIGTERM).
    ///
    /// Logs go to stderr; set RUST_LOG (e.g. `RUST_LOG=gatehouse=debug`) to change what is
    /// logged (default: `info`).
    Serve {
        /// The configuration file (see gatehouse.example.toml).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The I/O driver, overriding `[io] mode` in the configuration: `auto` tries io_uring
        /// and falls back to epoll.
        #[arg(long = "io", value_name = "DRIVER", value_enum)]
        io: Option<IoMode>,
    },
    /// Check a configuration file: syntax, names, limits, secrets, and that the certificate and
    /// key files it names are readable PEM. Prints every problem and exits 1 if there is any.
    CheckConfig {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
    /// Read a password from stdin (one line) and print the stored-secret line for an
    /// `[[identity]]`'s `secret` key.
    ///
    /// The password is echoed if typed at a terminal; pipe it in to keep it off the screen,
    /// e.g. `pass show db/alice | gatehouse hash-secret`.
    HashSecret {
        /// Also store a mysql_native_password hash, so clients that only speak
        /// mysql_native_password can log in as this identity.
        ///
        /// Weaker: that hash is an unsalted double SHA-1 of the password. Anyone who reads the
        /// configuration can brute-force it quickly, and together with one captured login
        /// exchange it yields a credential that logs in as this identity without knowing the
        /// password. Use it only for clients that cannot use the default methods.
        #[arg(long)]
        native: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, io } => serve(&config, io),
        Command::CheckConfig { config } => check_config(&config),
        Command::HashSecret { native } => hash_secret(native),
    }
}

/// `gatehouse serve`.
fn serve(path: &Path, io: Option<IoMode>) -> ExitCode {
    init_tracing();
    let mut config = match Config::load_all(path) {
        Ok(config) => config,
        Err(errors) => {
            print_errors(path, &errors);
            return ExitCode::FAILURE;
        }
    };
    if let Some(mode) = io {
        config.io.mode = mode;
    }
    let mode = config.io.mode;
    let listeners: Vec<(String, String)> = config
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.target.clone()))
        .collect();
    tracing::info!(
        config = %path.display(),
        version = env!("CARGO_PKG_VERSION"),
        io = %mode,
        "starting gatehouse"
    );
    let handle = match gatehouse::io::start(config, mode) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("gatehouse: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for ((name, target), addr) in listeners.iter().zip(handle.listen_addrs()) {
        tracing::info!(listener = %name, %addr, %target, "listening");
    }
    tracing::info!(driver = ?handle.driver(), "gateway running");
    handle.wait();
    tracing::info!("gateway stopped");
    ExitCode::SUCCESS
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// `gatehouse check-config`.
fn check_config(path: &Path) -> ExitCode {
    let config = match Config::load_all(path) {
        Ok(config) => config,
        Err(errors) => {
            print_errors(path, &errors);
            return ExitCode::FAILURE;
        }
    };
    println!("{}: ok", path.display());
    println!(
        "  {}: {}",
        plural(config.listeners.len(), "listener", "listeners"),
        config
            .listeners
            .iter()
            .map(|l| {
                let tls = match &l.tls {
                    None => "no tls",
                    Some(t) if t.require => "tls required",
                    Some(_) => "tls optional",
                };
                format!(
                    "{} {} -> {} ({tls}, auth {})",
                    l.name, l.address, l.target, l.auth
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  {}: {}",
        plural(config.targets.len(), "target", "targets"),
        config
            .targets
            .iter()
            .map(|t| {
                let password = match (&t.password_env, &t.password_file) {
                    (Some(var), _) => format!("password from ${var}"),
                    (_, Some(file)) => format!("password from {}", file.display()),
                    _ => "no password".into(),
                };
                match &t.user {
                    Some(user) => format!(
                        "{} {user}@{} ({password}, tls {})",
                        t.name, t.address, t.tls.mode
                    ),
                    // Only passthrough listeners reach it (validation saw to that).
                    None => format!(
                        "{} {} (no credential: passthrough only, tls {})",
                        t.name, t.address, t.tls.mode
                    ),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  {}",
        plural(config.identities.len(), "identity", "identities")
    );
    let threads = match config.io.threads {
        0 => "one thread per CPU".to_owned(),
        n => plural(n, "thread", "threads"),
    };
    println!("  io: {}, {threads}", config.io.mode);
    ExitCode::SUCCESS
}

/// `gatehouse hash-secret`.
fn hash_secret(native: bool) -> ExitCode {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (will be echoed): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    if let Err(e) = stdin.lock().read_line(&mut line) {
        eprintln!("gatehouse: cannot read the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        eprintln!("gatehouse: empty password on stdin; expected one line holding the password");
        return ExitCode::FAILURE;
    }
    let secret = StoredSecret::generate(password, &mut rand::rngs::OsRng, native);
    println!("{secret}");
    ExitCode::SUCCESS
}

/// Prints every configuration error, then a count.
fn print_errors(path: &Path, errors: &[ConfigError]) {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!(
        "{}: {}",
        path.display(),
        plural(errors.len(), "error", "errors")
    );
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
