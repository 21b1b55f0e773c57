//! An isolated MariaDB server for one test run: its own datadir in a temp dir, a free loopback
//! port, torn down (process killed, datadir removed) when dropped.
//!
//! Nothing is installed here: `.ci/run` installs `mariadb-server mariadb-client`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The account the gateway uses upstream (its "held credential").
pub const APP_USER: &str = "app";
/// Its password: only the gateway's config and the harness know it, never a client.
pub const APP_PASSWORD: &str = "upstream-Secret-42";
/// The database created for tests.
pub const TEST_DB: &str = "shop";

/// A running, isolated `mariadbd`.
pub struct MariaDb {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl MariaDb {
    /// Installs a fresh datadir and starts `mariadbd` on a free loopback port. Creates the
    /// `app` account (mysql_native_password), an `app_ed` account (ed25519) with the same
    /// password, and the `shop` database.
    pub fn start() -> Result<MariaDb> {
        MariaDb::start_with_args(&[])
    }

    /// Like [`MariaDb::start`], with extra `mariadbd` arguments (e.g. `--ssl-cert=…`).
    pub fn start_with_args(extra_args: &[String]) -> Result<MariaDb> {
        let db = MariaDb::spawn(extra_args)?;
        db.root_sql(&format!(
            "DELETE FROM mysql.global_priv WHERE User='';
             FLUSH PRIVILEGES;
             CREATE DATABASE {TEST_DB};
             CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{APP_PASSWORD}';
             GRANT ALL ON *.* TO '{APP_USER}'@'%';
             INSTALL SONAME 'auth_ed25519';
             CREATE USER 'app_ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{APP_PASSWORD}');
             GRANT ALL ON *.* TO 'app_ed'@'%';"
        ))?;
        Ok(db)
    }

    /// Like [`MariaDb::start_with_args`], but creates nothing (no `app` accounts, no `shop`
    /// database, no plugin); only the anonymous accounts `mariadb-install-db` made are dropped.
    /// For suites that expect a pristine server (`cargo xtask mtr`).
    pub fn start_bare(extra_args: &[String]) -> Result<MariaDb> {
        let db = MariaDb::spawn(extra_args)?;
        db.root_sql("DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES;")?;
        Ok(db)
    }

    /// Installs a fresh datadir and starts `mariadbd`; waits until it accepts connections.
    fn spawn(extra_args: &[String]) -> Result<MariaDb> {
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-mariadb-")
            .tempdir()?;
        let datadir = dir.path().join("data");
        // A private tmpdir: a starting mariadbd deletes every `#sql*` file in its tmpdir,
        // including the temporary tables of another server's bootstrap running in parallel.
        let tmpdir = dir.path().join("tmp");
        std::fs::create_dir(&tmpdir)?;
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--user=root")
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .context("running mariadb-install-db (is mariadb-server installed? see .ci/run)")?;
        if !out.status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("mariadbd.log"))?;
        let child = Command::new(mariadbd_path())
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--user=root")
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .arg("--skip-name-resolve")
            .arg("--max-allowed-packet=64M")
            .arg("--max-connections=2000")
            .arg("--innodb-buffer-pool-size=128M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .arg("--skip-log-bin")
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting mariadbd")?;
        let mut db = MariaDb { child, port, dir };
        db.wait_ready()?;
        Ok(db)
    }

    /// The TCP address clients use to reach the server directly.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The unix socket (root logs in here without a password).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// A scratch directory that lives as long as the server (configs, certificates, logs).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server process (SIGKILL) and reaps it: simulates the upstream crashing.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Runs SQL as root over the unix socket with the `mariadb` CLI; fails on any error.
    pub fn root_sql(&self, sql: &str) -> Result<String> {
        let out = self.mariadb_cli(&["--user=root"], sql)?;
        if !out.status.success() {
            bail!(
                "root SQL failed: {}\n{sql}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn mariadb_cli(&self, args: &[&str], sql: &str) -> Result<Output> {
        use std::io::Write;
        let mut child = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(args)
            .arg("--batch")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running the mariadb CLI")?;
        child.stdin.take().unwrap().write_all(sql.as_bytes())?;
        Ok(child.wait_with_output()?)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("mariadbd.log"))
                    .unwrap_or_default();
                bail!("mariadbd exited early ({status}):\n{log}");
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok()
                && self.socket().exists()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("mariadbd did not become ready within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mariadbd_path() -> PathBuf {
    for p in ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("mariadbd")
}

/// A loopback TCP port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
