//! The `gatehouse` command: run the gateway, check a configuration, hash an identity's secret.
//!
//! ```text
//! gatehouse serve --config gatehouse.toml [--io auto|uring|epoll]
//! gatehouse check-config gatehouse.toml
//! echo -n 'password' | gatehouse hash-secret [--native]
//! gatehouse policy check FILE…
//! gatehouse policy explain --policy FILE… --identity NAME [--group G…] [--target T] [--db DB] SQL
//! gatehouse status --config gatehouse.toml
//! gatehouse audit verify [DIR | --config FILE]
//! gatehouse audit export [--dir DIR | --config FILE] [--format jsonl] [--since 2h] [--output FILE]
//! gatehouse sessions list [--dir DIR | --config FILE] [--identity X] [--target T] [--since 2h] [--statement-kind write]
//! gatehouse sessions show ID [--dir DIR | --config FILE]
//! gatehouse replay ID --config FILE --against TARGET [--allow-writes]
//! ```
//!
//! Exit status: 0 on success, 1 on any error (every error is printed to stderr first).
#![forbid(unsafe_code)]

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gatehouse::auth::secret::StoredSecret;
use gatehouse::config::{Config, ConfigError, IoMode};
use gatehouse::policy::{describe, flag_names, ExplainContext, PolicyError, PolicySet, Subject};
use gatehouse::sql::{Mode, Server};

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
    /// Statement policies: check policy files, explain a decision.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Show the state of a running gateway's recorder (from the audit directory's status
    /// file): healthy or failing and why, records written and on disk, queue depth.
    Status {
        /// The gateway's configuration file (its `[recording] dir`).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The audit log: verify it, export it.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Recorded sessions: list them, show one as a timeline.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Re-execute a recorded session's statements against a target (e.g. staging) and compare
    /// result hashes statement by statement. Read-only statements only, unless --allow-writes.
    Replay(ReplayArgs),
}

/// Where the audit log is: a directory, or a configuration's `[recording] dir`.
#[derive(Debug, Args)]
struct LogLocation {
    /// The audit log directory.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    dir: Option<PathBuf>,
    /// A configuration file whose `[recording] dir` is the audit log.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every record's CRC and the whole hash chain, across segments; report the first
    /// broken or missing record precisely. Exit status 0: intact; 1: broken or unreadable.
    Verify {
        /// The audit log directory (or use --config).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A configuration file whose `[recording] dir` is the audit log.
        #[arg(short, long, value_name = "FILE", conflicts_with = "dir")]
        config: Option<PathBuf>,
    },
    /// Export records as one JSON object per line (for a SIEM).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    log: LogLocation,
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "jsonl")]
    format: String,
    /// Only records at most this old (`2h`, `30m`, `7d`) or since this RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List recorded sessions, newest first.
    List(SessionsListArgs),
    /// Show one session as a readable timeline.
    Show {
        /// The session id.
        id: u64,
        #[command(flatten)]
        log: LogLocation,
        /// One JSON object per record instead of the timeline.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct SessionsListArgs {
    #[command(flatten)]
    log: LogLocation,
    /// Only sessions of this identity.
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
    /// Only sessions to this target.
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
    /// Only sessions started at most this long ago (`2h`, `30m`, `7d`) or since this RFC 3339
    /// time.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only sessions that sent a statement of this kind (read, write, ddl, admin, session,
    /// transaction, other), whether it ran or was refused.
    #[arg(long, value_name = "KIND")]
    statement_kind: Option<String>,
    /// At most this many sessions.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per session.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The session id.
    id: u64,
    /// The gateway configuration: its targets (address, credential, TLS) and `[recording] dir`.
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// The target to replay against (a `[[target]]` name).
    #[arg(long, value_name = "TARGET")]
    against: String,
    /// Also replay statements that write (by default they are skipped).
    #[arg(long)]
    allow_writes: bool,
    /// The audit log directory, if not the configuration's.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check policy files as the gateway loads them (together, as one policy): syntax, unknown
    /// keys, roles, operations, classes and flags, bad globs, duplicate names, unreachable
    /// rules. Prints every problem as file:line:col and exits 1 if there is any.
    Check {
        /// Policy files, or directories standing for the *.toml files in them.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Show how the policy decides a query for an identity: each statement's class,
    /// operation, tables read and written, digest, and the decision with the rule and role
    /// that made it.
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// A policy file, or a directory standing for the *.toml files in it; repeat for more.
    #[arg(long = "policy", short = 'p', value_name = "FILE", required = true)]
    policy: Vec<PathBuf>,
    /// The gateway identity running the query.
    #[arg(long, value_name = "NAME")]
    identity: String,
    /// A group of the identity; repeat for more.
    #[arg(long = "group", short = 'g', value_name = "GROUP")]
    groups: Vec<String>,
    /// The target (upstream) name.
    #[arg(long, value_name = "TARGET", default_value = "primary")]
    target: String,
    /// The session's current database.
    #[arg(long, value_name = "DB")]
    db: Option<String>,
    /// The session's sql_mode has ANSI_QUOTES ("x" is an identifier).
    #[arg(long)]
    ansi_quotes: bool,
    /// The session's sql_mode has NO_BACKSLASH_ESCAPES.
    #[arg(long)]
    no_backslash_escapes: bool,
    /// The server's version string (decides which versioned executable comments run), e.g.
    /// `10.11.6-MariaDB` or `8.0.36`. Default: a MariaDB of unknown version.
    #[arg(long, value_name = "VERSION")]
    server: Option<String>,
    /// Decide it as a prepared statement (COM_STMT_PREPARE) instead of a query.
    #[arg(long)]
    prepare: bool,
    /// The query (one or more statements).
    #[arg(value_name = "SQL")]
    sql: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, io } => serve(&config, io),
        Command::CheckConfig { config } => check_config(&config),
        Command::HashSecret { native } => hash_secret(native),
        Command::Policy {
            command: PolicyCommand::Check { files },
        } => policy_check(&files),
        Command::Policy {
            command: PolicyCommand::Explain(args),
        } => policy_explain(&args),
        Command::Status { config } => match recording_config(&config) {
            Ok(rec) => gatehouse::record::query::main_status(&rec.dir),
            Err(code) => code,
        },
        Command::Audit {
            command: AuditCommand::Verify { dir, config },
        } => match log_dir(&LogLocation { dir, config }) {
            Ok(dir) => gatehouse::record::verify::main_verify(&dir),
            Err(code) => code,
        },
        Command::Audit {
            command: AuditCommand::Export(a),
        } => match log_dir(&a.log) {
            Ok(dir) => gatehouse::record::query::main_export(
                &dir,
                &a.format,
                a.since.as_deref(),
                a.output.as_deref(),
            ),
            Err(code) => code,
        },
        Command::Sessions {
            command: SessionsCommand::List(a),
        } => match log_dir(&a.log) {
            Ok(dir) => gatehouse::record::query::main_list(
                &dir,
                &gatehouse::record::query::ListFilter {
                    identity: a.identity,
                    target: a.target,
                    since: a.since,
                    statement_kind: a.statement_kind,
                    limit: a.limit,
                },
                a.json,
            ),
            Err(code) => code,
        },
        Command::Sessions {
            command: SessionsCommand::Show { id, log, json },
        } => match log_dir(&log) {
            Ok(dir) => gatehouse::record::query::main_show(&dir, id, json),
            Err(code) => code,
        },
        Command::Replay(a) => {
            let config = match Config::load_all(&a.config) {
                Ok(c) => c,
                Err(errors) => {
                    print_errors(&a.config, &errors);
                    return ExitCode::FAILURE;
                }
            };
            let dir = match (&a.dir, &config.recording) {
                (Some(d), _) => d.clone(),
                (None, Some(r)) => r.dir.clone(),
                (None, None) => {
                    eprintln!(
                        "gatehouse: {} has no [recording] section; pass --dir",
                        a.config.display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            gatehouse::record::replay::main_replay(&config, &dir, a.id, &a.against, a.allow_writes)
        }
    }
}

/// The `[recording]` section of a configuration file (errors printed).
fn recording_config(path: &Path) -> Result<gatehouse::config::RecordingConfig, ExitCode> {
    let config = Config::load_all(path).map_err(|errors| {
        print_errors(path, &errors);
        ExitCode::FAILURE
    })?;
    config.recording.ok_or_else(|| {
        eprintln!(
            "gatehouse: {} has no [recording] section (sessions are not recorded)",
            path.display()
        );
        ExitCode::FAILURE
    })
}

/// The audit log directory named by `--dir` or a configuration (errors printed).
fn log_dir(at: &LogLocation) -> Result<PathBuf, ExitCode> {
    match (&at.dir, &at.config) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Some(config)) => recording_config(config).map(|r| r.dir),
        (None, None) => {
            eprintln!("gatehouse: name the audit log with --dir DIR or --config FILE");
            Err(ExitCode::FAILURE)
        }
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
    match &config.policy {
        // Loaded without error: check_files tried.
        Some(p) => println!(
            "  policy: {}",
            p.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => println!("  policy: none (every statement is allowed)"),
    }
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

/// `gatehouse policy check`.
fn policy_check(files: &[PathBuf]) -> ExitCode {
    match PolicySet::load(files) {
        Ok(policy) => {
            for f in policy.files() {
                println!("{f}: ok");
            }
            println!(
                "  {}, {} ({} in audit mode), version {}",
                plural(policy.role_names().count(), "role", "roles"),
                plural(policy.rule_names().count(), "rule", "rules"),
                policy.audit_rules(),
                policy.version()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_policy_errors(&errors);
            ExitCode::FAILURE
        }
    }
}

fn print_policy_errors(errors: &[PolicyError]) {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!("policy: {}", plural(errors.len(), "error", "errors"));
}

/// `gatehouse policy explain`.
fn policy_explain(args: &ExplainArgs) -> ExitCode {
    let policy = match PolicySet::load(&args.policy) {
        Ok(policy) => policy,
        Err(errors) => {
            print_policy_errors(&errors);
            return ExitCode::FAILURE;
        }
    };
    let server = match &args.server {
        None => Server::MariaDb { version_id: None },
        Some(v) => match Server::from_version_string(v) {
            Some(s) => s,
            None => {
                eprintln!(
                    "gatehouse: --server {v:?}: expected a version such as 10.11.6-MariaDB or \
                     8.0.36"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let mode = Mode {
        ansi_quotes: args.ansi_quotes,
        no_backslash_escapes: args.no_backslash_escapes,
        ..Mode::DEFAULT
    };
    let subject = Subject {
        identity: &args.identity,
        groups: &args.groups,
        target: &args.target,
    };
    let ctx = ExplainContext {
        database: args.db.as_deref(),
        mode,
        server,
        prepare: args.prepare,
    };
    let explanation = policy.explain(&subject, args.sql.as_bytes(), &ctx);
    println!(
        "identity {:?} on target {:?}: {}",
        args.identity,
        args.target,
        if explanation.roles.is_empty() {
            "no role".to_owned()
        } else {
            format!("roles {}", explanation.roles.join(", "))
        }
    );
    let list = |tables: &[gatehouse::sql::TableRef]| {
        if tables.is_empty() {
            "-".to_owned()
        } else {
            tables
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for (i, s) in explanation.statements.iter().enumerate() {
        println!();
        println!("statement {}: {}", i + 1, s.sql);
        println!("  digest:    {}", s.digest);
        println!("  database:  {}", s.database.as_deref().unwrap_or("(none)"));
        match &s.analysis {
            Ok(a) => {
                println!("  class:     {}", a.class);
                println!("  operation: {} ({})", a.operation, describe(a));
                println!("  reads:     {}", list(&a.reads));
                println!("  writes:    {}", list(&a.writes));
                if !a.databases.is_empty() {
                    println!("  databases: {}", a.databases.join(", "));
                }
                let mut flags: Vec<String> = flag_names(a).into_iter().map(str::to_owned).collect();
                if !a.flags.variables.is_empty() {
                    flags.push(format!("variables {}", a.flags.variables.join(", ")));
                }
                if let Some(db) = &a.flags.changes_database {
                    flags.push(format!("database becomes {db}"));
                }
                if flags.is_empty() {
                    flags.push("-".into());
                }
                println!("  flags:     {}", flags.join(", "));
            }
            Err(u) => {
                println!(
                    "  analysis:  not analysed (leading keyword {:?}): {}",
                    u.leading_keyword, u.reason
                );
            }
        }
        let v = &s.verdict;
        let by = match (&v.rule, &v.role) {
            (Some(rule), Some(role)) => format!("rule {rule:?} (role {role})"),
            (None, Some(role)) => format!("a grant of role {role}"),
            (Some(rule), None) => format!("rule {rule:?}"),
            (None, None) => "default (nothing allows it)".to_owned(),
        };
        println!("  decision:  {} by {by}, {}", v.action, v.mode);
        println!("  message:   {}", v.message);
        for hit in &v.audit {
            println!(
                "  audit:     rule {:?} (role {}) would {}: {}",
                hit.rule,
                hit.role.as_deref().unwrap_or("-"),
                hit.action,
                hit.message
            );
        }
    }
    println!();
    match &explanation.refusal {
        None => println!("query: allowed"),
        Some((code, message)) => println!(
            "query: refused, ERR {} ({}): {message}",
            code.code, code.sqlstate
        ),
    }
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
