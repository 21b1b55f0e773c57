//! Helpers to drive real clients against a [`Gateway`]: the `mariadb` CLI, python scripts, and
//! `mysql_async` connection options.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::gateway::Gateway;
use crate::mariadb::TEST_DB;

/// Runs `fut` to completion on a fresh current-thread tokio runtime.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(fut)
}

/// Runs an async test body on a fresh runtime, failing (instead of hanging) after `limit`.
pub fn block_on_with_limit<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    block_on(async {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => anyhow::bail!("the test did not finish within {limit:?} (hung?)"),
        }
    })
}

/// `mysql_async` options for `gw` as its user, database `shop`, TCP only (never the server's
/// unix socket, which `prefer_socket` would otherwise discover and use).
pub fn mysql_opts(gw: &Gateway) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname(gw.addr().ip().to_string())
        .tcp_port(gw.port())
        .user(Some(gw.user()))
        .pass(Some(gw.password()))
        .db_name(Some(TEST_DB))
        .prefer_socket(false)
}

/// TLS options accepting the test's self-signed certificate.
pub fn mysql_tls() -> mysql_async::SslOpts {
    crate::gateway::install_crypto_provider();
    mysql_async::SslOpts::default()
        .with_danger_accept_invalid_certs(true)
        .with_danger_skip_domain_validation(true)
}

/// Connects with `mysql_async`, failing after `timeout` instead of hanging.
pub async fn mysql_connect(
    opts: impl Into<mysql_async::Opts>,
    timeout: Duration,
) -> Result<mysql_async::Conn> {
    let opts = opts.into();
    match tokio::time::timeout(timeout, mysql_async::Conn::new(opts)).await {
        Ok(r) => Ok(r?),
        Err(_) => anyhow::bail!("connecting did not finish within {timeout:?}"),
    }
}

/// The `mariadb` CLI's output.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status was success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    fn from(out: Output) -> CliOutput {
        CliOutput {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit ok: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// Runs the `mariadb` CLI over TCP against `gw` in batch mode, feeding `stdin`. `args` come
/// after the connection arguments (e.g. `--ssl`, `--force`, a database name).
pub fn mariadb_cli(
    gw: &Gateway,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: &str,
) -> Result<CliOutput> {
    let mut child = Command::new("mariadb")
        .arg("--no-defaults")
        .arg("--protocol=TCP")
        .arg("-h")
        .arg(gw.addr().ip().to_string())
        .arg("-P")
        .arg(gw.port().to_string())
        .arg("-u")
        .arg(user)
        .arg(format!("--password={password}"))
        .arg("--batch")
        .arg("--connect-timeout=10")
        // Without a locale the CLI would pick latin1.
        .arg("--default-character-set=utf8mb4")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running the mariadb CLI")?;
    child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
    let out = wait_with_timeout(child, Duration::from_secs(120))?;
    Ok(CliOutput::from(out))
}

/// Waits for a child, killing it (by its own pid) after `timeout`.
pub fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> Result<Output> {
    let deadline = std::time::Instant::now() + timeout;
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = so.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(s) = se.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut v);
        }
        v
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let st = child.wait()?;
            let stderr = t_err.join().unwrap_or_default();
            anyhow::bail!(
                "child did not finish within {timeout:?} (killed, {st}); stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    })
}

/// The directory of the python client scripts.
pub fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// Runs `python3 tests/python/<script> --host … --port … --user … --password … --db shop
/// [--tls] [extra…]` against `gw`.
pub fn run_python(gw: &Gateway, script: &str, tls: bool, extra: &[&str]) -> Result<CliOutput> {
    let mut cmd = Command::new("python3");
    cmd.arg(python_dir().join(script))
        .arg("--host")
        .arg(gw.addr().ip().to_string())
        .arg("--port")
        .arg(gw.port().to_string())
        .arg("--user")
        .arg(gw.user())
        .arg("--password")
        .arg(gw.password())
        .arg("--db")
        .arg(TEST_DB);
    if tls {
        cmd.arg("--tls");
    }
    let child = cmd
        .args(extra)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running python3")?;
    Ok(CliOutput::from(wait_with_timeout(
        child,
        Duration::from_secs(180),
    )?))
}
