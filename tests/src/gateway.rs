//! The gateway under test, started in-process in front of a [`MariaDb`].
//!
//! [`Gateway::start`] writes a configuration as TOML text (listener on `127.0.0.1:0`, one target
//! pointing at the MariaDB with the `app` account's password in a file, the identities
//! `alice`/`alice-secret` and `bob`/`bob-secret`, optional TLS with a fresh self-signed
//! certificate), parses it with [`Config::from_toml`] and starts it with [`gatehouse::io::start`].
//!
//! Tests never use the upstream credential: they connect to [`Gateway::addr`] as
//! [`Gateway::user`] with [`Gateway::password`].
//!
//! **Passthrough** ([`GatewayOptions::passthrough`]): the listener has `auth = "passthrough"` and
//! the target no credential (the identities are still in the file, and must be ignored); clients
//! log in with their own MariaDB account, so [`Gateway::user`]/[`Gateway::password`] are
//! `app`/[`APP_PASSWORD`] (or the [`GatewayOptions::target_user`] account) and
//! [`Gateway::other_identity`] is `bob`, created on the MariaDB as in direct mode. `alice` has
//! no MariaDB account, so logging in as [`ALICE`] must fail.
//!
//! **Direct mode** (`GATEHOUSE_TEST_DIRECT=1`): no gateway is started; `addr()` is the MariaDB's
//! own address and the credentials are `app`/[`APP_PASSWORD`], so the very same tests run against
//! the server directly. This validates the tests themselves. Where it can, direct mode maps the
//! gateway options onto the server (TLS via `--ssl-cert`, limits via `SET GLOBAL`), so that the
//! fault tests see comparable behaviour; see [`TestEnv::start`].

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use gatehouse::config::{Config, IoMode};
use gatehouse::io::ServerHandle;
use gatehouse::session::phases::EventSink;
use gatehouse::session::Event;

use crate::mariadb::{MariaDb, APP_PASSWORD, APP_USER};

/// The identity tests log in as.
pub const ALICE: (&str, &str) = ("alice", "alice-secret");
/// A second identity (for `COM_CHANGE_USER`).
pub const BOB: (&str, &str) = ("bob", "bob-secret");

/// Whether `GATEHOUSE_TEST_DIRECT=1`: tests run against MariaDB directly, no gateway.
pub fn direct_mode() -> bool {
    std::env::var("GATEHOUSE_TEST_DIRECT").is_ok_and(|v| v == "1")
}

/// TLS offered by the gateway's listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tls {
    /// No TLS offered.
    #[default]
    Off,
    /// TLS offered; plaintext clients accepted too.
    On,
    /// TLS offered and required.
    Require,
}

/// Overrides of the gateway's `[limits]` (unset: the gateway's default).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// `max_connections`.
    pub max_connections: Option<usize>,
    /// `handshake_timeout_secs`.
    pub handshake_timeout_secs: Option<u64>,
    /// `idle_timeout_secs`.
    pub idle_timeout_secs: Option<u64>,
    /// `connect_timeout_secs`.
    pub connect_timeout_secs: Option<u64>,
    /// `max_packet_size`.
    pub max_packet_size: Option<usize>,
}

/// How to start the gateway.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// The I/O driver (`Epoll` or `Uring`).
    pub driver: IoMode,
    /// TLS on the client side.
    pub tls: Tls,
    /// Limit overrides.
    pub limits: Limits,
    /// Overrides the target's address (default: the MariaDB's), e.g. a closed port.
    pub target_address: Option<String>,
    /// Overrides the upstream account (default `app`; `app_ed` logs in with ed25519).
    pub target_user: Option<String>,
    /// TLS to the upstream (`mode = "required"`), verified against this CA file.
    pub upstream_tls_ca: Option<PathBuf>,
    /// The listener relays each client's own MySQL login (`auth = "passthrough"`).
    pub passthrough: bool,
    /// A statement policy (TOML text of one policy file; the target is named `db`).
    pub policy: Option<String>,
    /// Record sessions: the body of the `[recording]` table (`dir` is added: the audit log
    /// goes to `<scratch>/audit` unless the body sets `dir`).
    pub recording: Option<String>,
}

impl GatewayOptions {
    /// Defaults (no TLS, default limits) with the given driver.
    pub fn new(driver: IoMode) -> GatewayOptions {
        GatewayOptions {
            driver,
            tls: Tls::Off,
            limits: Limits::default(),
            target_address: None,
            target_user: None,
            upstream_tls_ca: None,
            passthrough: false,
            policy: None,
            recording: None,
        }
    }
    /// Records sessions with these `[recording]` settings (TOML lines; may be empty).
    pub fn recording(mut self, body: impl Into<String>) -> Self {
        self.recording = Some(body.into());
        self
    }
    /// Decides every statement by this policy (the text of one policy file; the target is
    /// named `db`, the identities are `alice` in group `dev` and `bob` in group `ops`).
    pub fn policy(mut self, toml: impl Into<String>) -> Self {
        self.policy = Some(toml.into());
        self
    }
    /// Makes the listener relay each client's own MySQL login (`auth = "passthrough"`): clients
    /// log in as the MariaDB account (`app`, or [`GatewayOptions::target_user`]'s).
    pub fn passthrough(mut self) -> Self {
        self.passthrough = true;
        self
    }
    /// Logs in upstream as another account (in passthrough: the account clients log in as).
    pub fn target_user(mut self, user: impl Into<String>) -> Self {
        self.target_user = Some(user.into());
        self
    }
    /// Requires TLS to the upstream, verified against `ca`.
    pub fn upstream_tls(mut self, ca: impl Into<PathBuf>) -> Self {
        self.upstream_tls_ca = Some(ca.into());
        self
    }
    /// Sets the TLS mode.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }
    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Points the target somewhere else.
    pub fn target_address(mut self, address: impl Into<String>) -> Self {
        self.target_address = Some(address.into());
        self
    }
}

/// Certificate and key files (PEM) of a self-signed certificate for `localhost`/`127.0.0.1`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Generates a fresh self-signed certificate into `dir`.
    pub fn generate(dir: &Path) -> Result<TlsFiles> {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .context("generating a self-signed certificate")?;
        let cert = dir.join("gateway-cert.pem");
        let key = dir.join("gateway-key.pem");
        std::fs::write(&cert, ck.cert.pem())?;
        std::fs::write(&key, ck.key_pair.serialize_pem())?;
        Ok(TlsFiles { cert, key })
    }
}

/// A running gateway (or, in direct mode, the MariaDB's own address and account).
pub struct Gateway {
    handle: Option<ServerHandle>,
    addr: SocketAddr,
    user: String,
    password: String,
    tls: Option<TlsFiles>,
    direct: bool,
    passthrough: bool,
    driver: IoMode,
    events: Arc<CollectEvents>,
    policy_file: Option<PathBuf>,
    config_file: Option<PathBuf>,
    recording: bool,
}

/// Keeps every session event the gateway emits (what the recorder will receive).
#[derive(Default)]
pub struct CollectEvents {
    events: std::sync::Mutex<Vec<(u64, Event)>>,
}

impl EventSink for CollectEvents {
    fn on_event(&self, session_id: u64, event: &Event) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push((session_id, event.clone()));
    }
}

impl Gateway {
    /// Starts the gateway in-process in front of `db` (or, in direct mode, returns `db`'s
    /// address and the `app` account). In direct mode with TLS, `db` must have been started with
    /// TLS: use [`TestEnv::start`].
    pub fn start(db: &MariaDb, opts: GatewayOptions) -> Result<Gateway> {
        init_tracing();
        install_crypto_provider();
        if direct_mode() {
            return Gateway::start_direct(db, &opts);
        }
        let dir = db.scratch();
        let password_file = dir.join("upstream-password");
        std::fs::write(&password_file, format!("{APP_PASSWORD}\n"))?;
        if opts.passthrough {
            // Clients log in as MariaDB accounts: the second identity must be one.
            db.root_sql(&create_other_account())?;
        }
        let tls = match opts.tls {
            Tls::Off => None,
            Tls::On | Tls::Require => Some(TlsFiles::generate(dir)?),
        };
        let target_address = opts
            .target_address
            .clone()
            .unwrap_or_else(|| db.addr().to_string());
        let policy_file = match &opts.policy {
            None => None,
            Some(text) => {
                let path = dir.join("policy.toml");
                std::fs::write(&path, text)?;
                Some(path)
            }
        };
        let text = config_toml(
            &opts,
            &target_address,
            &password_file,
            tls.as_ref(),
            policy_file.as_deref(),
        )?;
        let config_file = dir.join("gatehouse.toml");
        std::fs::write(&config_file, &text)?;
        let config = Config::from_toml(&text, "test")
            .map_err(|e| anyhow::anyhow!("test config rejected: {e}\n{text}"))?;
        let events = Arc::new(CollectEvents::default());
        let handle = gatehouse::io::start_with_events(config, opts.driver, events.clone())
            .map_err(|e| anyhow::anyhow!("gatehouse::io::start({:?}): {e}", opts.driver))?;
        let addr = *handle
            .listen_addrs()
            .first()
            .context("the gateway reports no listen address")?;
        eprintln!(
            "gateway ({:?}, tls {:?}{}) listening on {addr} in front of {target_address}",
            handle.driver(),
            opts.tls,
            if opts.passthrough {
                ", passthrough"
            } else {
                ""
            }
        );
        let (user, password) = if opts.passthrough {
            (
                opts.target_user.as_deref().unwrap_or(APP_USER),
                APP_PASSWORD,
            )
        } else {
            ALICE
        };
        Ok(Gateway {
            handle: Some(handle),
            addr,
            user: user.into(),
            password: password.into(),
            tls,
            direct: false,
            passthrough: opts.passthrough,
            driver: opts.driver,
            events,
            policy_file,
            config_file: Some(config_file),
            recording: opts.recording.is_some(),
        })
    }

    /// The audit log directory (with [`GatewayOptions::recording`] and no `dir` of its own).
    pub fn audit_dir(&self) -> Option<PathBuf> {
        self.config_file
            .as_ref()
            .map(|c| c.with_file_name("audit"))
            .filter(|_| self.recording)
    }

    /// The configuration file the gateway was started with.
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// Stops the gateway now (closing every session and the recorder), as SIGTERM would.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }

    /// The policy file the gateway watches (with [`GatewayOptions::policy`]).
    pub fn policy_file(&self) -> Option<&Path> {
        self.policy_file.as_deref()
    }

    fn start_direct(db: &MariaDb, opts: &GatewayOptions) -> Result<Gateway> {
        eprintln!(
            "GATEHOUSE_TEST_DIRECT=1: testing MariaDB directly at {}",
            db.addr()
        );
        // The second identity exists as a MariaDB account, so that COM_CHANGE_USER tests run.
        let mut sql = create_other_account();
        // Map the limits onto the server where an equivalent exists.
        let l = &opts.limits;
        if let Some(n) = l.max_connections {
            // CONNECTION ADMIN (part of ALL) ignores max_connections (and MariaDB's minimum
            // is 10).
            writeln!(
                sql,
                "SET GLOBAL max_connections = {n};
                 REVOKE CONNECTION ADMIN, SUPER ON *.* FROM '{APP_USER}'@'%';"
            )?;
        }
        if let Some(s) = l.handshake_timeout_secs {
            // MariaDB's minimum is 2 s.
            writeln!(sql, "SET GLOBAL connect_timeout = {};", s.max(2))?;
        }
        if let Some(s) = l.idle_timeout_secs {
            writeln!(sql, "SET GLOBAL wait_timeout = {s};")?;
        }
        if let Some(n) = l.max_packet_size {
            writeln!(
                sql,
                "SET GLOBAL max_allowed_packet = {};",
                n.max(1024) / 1024 * 1024
            )?;
        }
        db.root_sql(&sql)?;
        let tls = match opts.tls {
            Tls::Off => None,
            Tls::On | Tls::Require => {
                let have = db.root_sql("SELECT @@have_ssl")?;
                if !have.contains("YES") {
                    bail!(
                        "direct mode with TLS needs a MariaDB started with a certificate: \
                         use TestEnv::start (have_ssl: {have:?})"
                    );
                }
                Some(TlsFiles {
                    cert: db.scratch().join("direct-certs/gateway-cert.pem"),
                    key: db.scratch().join("direct-certs/gateway-key.pem"),
                })
            }
        };
        Ok(Gateway {
            handle: None,
            addr: db.addr(),
            user: APP_USER.into(),
            password: APP_PASSWORD.into(),
            tls,
            direct: true,
            passthrough: opts.passthrough,
            driver: opts.driver,
            events: Arc::default(),
            policy_file: None,
            config_file: None,
            recording: false,
        })
    }

    /// Every session event so far: (session id, event). Empty in direct mode.
    pub fn events(&self) -> Vec<(u64, Event)> {
        self.events
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Who each session logged in (or switched) as, in order: (session id, identity name).
    pub fn logins(&self) -> Vec<(u64, String)> {
        self.events()
            .into_iter()
            .filter_map(|(id, e)| match e {
                Event::Authenticated { identity, .. } => Some((id, identity.name)),
                _ => None,
            })
            .collect()
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// The user name clients log in with (`alice`; `app` in direct mode and in passthrough).
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The password clients log in with.
    pub fn password(&self) -> &str {
        &self.password
    }
    /// The second identity (`bob`), for `COM_CHANGE_USER` tests (an account of the same name in
    /// direct mode and in passthrough).
    pub fn other_identity(&self) -> (&'static str, &'static str) {
        BOB
    }
    /// Whether this is direct mode (no gateway).
    pub fn is_direct(&self) -> bool {
        self.direct
    }
    /// Whether [`GatewayOptions::passthrough`] was asked for (in direct mode too, where it
    /// changes nothing: clients log in with their MariaDB account anyway).
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }
    /// The certificate clients may see (when TLS is on).
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }
    /// The requested driver.
    pub fn driver(&self) -> IoMode {
        self.driver
    }
    /// A label for logs: `epoll`, `uring`, or `direct`.
    pub fn label(&self) -> String {
        if self.direct {
            "direct".into()
        } else {
            format!("{:?}", self.driver).to_lowercase()
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }
}

fn config_toml(
    opts: &GatewayOptions,
    target_address: &str,
    password_file: &Path,
    tls: Option<&TlsFiles>,
    policy_file: Option<&Path>,
) -> Result<String> {
    let mut t = String::new();
    writeln!(t, "[[listener]]")?;
    writeln!(t, "name = \"test\"")?;
    writeln!(t, "address = \"127.0.0.1:0\"")?;
    writeln!(t, "target = \"db\"")?;
    if opts.passthrough {
        writeln!(t, "auth = \"passthrough\"")?;
    }
    if let Some(files) = tls {
        writeln!(t, "[listener.tls]")?;
        writeln!(t, "cert = {}", toml_str(&files.cert.display().to_string()))?;
        writeln!(t, "key = {}", toml_str(&files.key.display().to_string()))?;
        writeln!(t, "require = {}", opts.tls == Tls::Require)?;
    }
    writeln!(t, "\n[[target]]")?;
    writeln!(t, "name = \"db\"")?;
    writeln!(t, "address = {}", toml_str(target_address))?;
    // A passthrough listener relays the client's own login: the target needs no credential.
    if !opts.passthrough {
        writeln!(
            t,
            "user = {}",
            toml_str(opts.target_user.as_deref().unwrap_or(APP_USER))
        )?;
        writeln!(
            t,
            "password_file = {}",
            toml_str(&password_file.display().to_string())
        )?;
    }
    if let Some(ca) = &opts.upstream_tls_ca {
        writeln!(t, "[target.tls]")?;
        writeln!(t, "mode = \"required\"")?;
        writeln!(t, "ca = {}", toml_str(&ca.display().to_string()))?;
    }
    // Written in passthrough too, where the listener must ignore them: `alice` is then a login
    // the target refuses.
    for (name, password, groups) in [(ALICE.0, ALICE.1, "\"dev\""), (BOB.0, BOB.1, "\"ops\"")] {
        let secret = identity_secret(password);
        writeln!(t, "\n[[identity]]")?;
        writeln!(t, "name = {}", toml_str(name))?;
        writeln!(t, "groups = [{groups}]")?;
        writeln!(t, "secret = {}", toml_str(&secret))?;
    }
    let l = &opts.limits;
    writeln!(t, "\n[limits]")?;
    if let Some(n) = l.max_connections {
        writeln!(t, "max_connections = {n}")?;
    }
    if let Some(n) = l.handshake_timeout_secs {
        writeln!(t, "handshake_timeout_secs = {n}")?;
    }
    if let Some(n) = l.idle_timeout_secs {
        writeln!(t, "idle_timeout_secs = {n}")?;
    }
    if let Some(n) = l.connect_timeout_secs {
        writeln!(t, "connect_timeout_secs = {n}")?;
    }
    if let Some(n) = l.max_packet_size {
        writeln!(t, "max_packet_size = {n}")?;
    }
    let mode = match opts.driver {
        IoMode::Epoll => "epoll",
        IoMode::Uring => "uring",
        IoMode::Auto => "auto",
    };
    writeln!(t, "\n[io]\nmode = \"{mode}\"\nthreads = 1")?;
    if let Some(path) = policy_file {
        writeln!(
            t,
            "\n[policy]\npaths = [{}]",
            toml_str(&path.display().to_string())
        )?;
    }
    if let Some(body) = &opts.recording {
        writeln!(t, "\n[recording]")?;
        if !body.lines().any(|l| l.trim_start().starts_with("dir")) {
            let dir = password_file.with_file_name("audit");
            writeln!(t, "dir = {}", toml_str(&dir.display().to_string()))?;
        }
        writeln!(t, "{body}")?;
    }
    Ok(t)
}

/// SQL creating the second identity as a MariaDB account (direct mode and passthrough).
fn create_other_account() -> String {
    format!(
        "CREATE USER IF NOT EXISTS '{b}'@'%' IDENTIFIED BY '{bp}';
         GRANT ALL ON *.* TO '{b}'@'%';",
        b = BOB.0,
        bp = BOB.1
    )
}

/// The stored form of an identity's secret, as `gatehouse hash-secret` prints it. Computed once
/// per test process and identity: argon2 takes seconds in an unoptimized build.
fn identity_secret(password: &str) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap().get(password) {
        return s.clone();
    }
    let secret =
        gatehouse::auth::secret::StoredSecret::generate(password, &mut rand::thread_rng(), true)
            .to_string();
    cache
        .lock()
        .unwrap()
        .entry(password.to_string())
        .or_insert(secret)
        .clone()
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A MariaDB and a gateway in front of it, torn down together (gateway first).
pub struct TestEnv {
    /// The gateway (or direct-mode stand-in).
    pub gw: Gateway,
    /// The upstream server.
    pub db: MariaDb,
}

impl TestEnv {
    /// Starts a fresh MariaDB and a gateway in front of it. In direct mode with TLS, the MariaDB
    /// itself is started with a self-signed certificate (and `--require-secure-transport` for
    /// [`Tls::Require`]).
    pub fn start(opts: GatewayOptions) -> Result<TestEnv> {
        let started = std::time::Instant::now();
        let db = if direct_mode() && opts.tls != Tls::Off {
            let certs = tempfile::Builder::new()
                .prefix("gatehouse-certs-")
                .tempdir()?;
            let files = TlsFiles::generate(certs.path())?;
            let mut args = vec![
                format!("--ssl-cert={}", files.cert.display()),
                format!("--ssl-key={}", files.key.display()),
            ];
            if opts.tls == Tls::Require {
                args.push("--require-secure-transport=ON".into());
            }
            let db = MariaDb::start_with_args(&args)?;
            // Keep the files beside the server for as long as it runs.
            let keep = db.scratch().join("direct-certs");
            std::fs::create_dir_all(&keep)?;
            std::fs::copy(&files.cert, keep.join("gateway-cert.pem"))?;
            std::fs::copy(&files.key, keep.join("gateway-key.pem"))?;
            db
        } else {
            MariaDb::start()?
        };
        let db_ready = started.elapsed();
        let gw = Gateway::start(&db, opts)?;
        eprintln!(
            "test env ready: MariaDB in {db_ready:.1?}, gateway in {:.1?}",
            started.elapsed() - db_ready
        );
        Ok(TestEnv { gw, db })
    }
}

/// Installs rustls' ring provider as the process default (once; later calls are no-ops).
///
/// In this test binary rustls has both `ring` (workspace) and `aws-lc-rs` (mysql_async's rustls
/// default features) enabled, so rustls cannot pick a default by itself and
/// `ClientConfig::builder()`/`ServerConfig::builder()` would panic.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("GATEHOUSE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Defines one `#[test]` per I/O driver for a function `fn name(driver: IoMode) ->
/// anyhow::Result<()>`: `name::epoll` and `name::uring`.
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn epoll() -> ::anyhow::Result<()> {
                    super::$name($crate::IoMode::Epoll)
                }
                #[test]
                fn uring() -> ::anyhow::Result<()> {
                    super::$name($crate::IoMode::Uring)
                }
            }
        )+
    };
}
