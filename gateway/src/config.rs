//! The gateway's configuration: one TOML file (see `gatehouse.example.toml`, documented line by
//! line). Parsed into immutable `*Config` values shared by every session.
//!
//! This module owns parsing and validation; it reads files (certificates, secrets) only in
//! [`Config::load`] / [`Config::load_all`] and [`TargetConfig::password`], never on the hot path.
//!
//! Every error names the place in the file it is about (`file:line:col`, from the TOML parser's
//! spans) and says what is expected instead:
//!
//! ```text
//! gatehouse.toml:14:10: [[listener]] "main": target "primry" is not defined; expected the name of a [[target]] ("primary")
//! ```
//!
//! Relative paths in a loaded file (`tls.cert`, `tls.key`, `tls.ca`, `password_file`) are taken
//! relative to the directory of the configuration file, not the working directory.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::auth::secret::StoredSecret;
use crate::session::AuthMode;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// The MySQL/MariaDB servers behind the gateway.
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
    /// Who may log in through the gateway.
    #[serde(default, rename = "identity")]
    pub identities: Vec<IdentityConfig>,
    /// Resource limits and timeouts.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// I/O driver selection.
    #[serde(default)]
    pub io: IoConfig,
    /// Statement policy. Absent: every statement the wire layer understands is allowed
    /// (logged as a warning at startup).
    pub policy: Option<PolicyConfig>,
    /// Session recording (the audit log). Absent: sessions are not recorded (logged as a
    /// warning at startup).
    pub recording: Option<RecordingConfig>,
}

/// `[recording]`: where and how every session is recorded (see `docs/audit-log.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// The audit log's directory (relative to the configuration file). Keep it outside
    /// MySQL's datadir and on a file system the database does not fill.
    pub dir: PathBuf,
    /// `batched` (default): a record is durable within `commit_interval_ms`. `strict`: a
    /// statement is forwarded only once its record is on disk (fsync).
    #[serde(default)]
    pub durability: Durability,
    /// Group commit: how often the writer fsyncs, in milliseconds.
    #[serde(default = "RecordingConfig::default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// A segment is closed and a new one started beyond this size, in MiB.
    #[serde(default = "RecordingConfig::default_segment_size_mb")]
    pub segment_size_mb: u64,
    /// Segments older than this many days are removed (0: keep everything).
    #[serde(default)]
    pub retain_days: u64,
    /// Events the queue between sessions and the writer holds; when full, sessions wait.
    #[serde(default = "RecordingConfig::default_queue_capacity")]
    pub queue_capacity: usize,
    /// What is kept of result rows by default: `none`, `hash` (a BLAKE3 of the rows as the
    /// client received them; default) or `rows` (the rows themselves, as sent).
    #[serde(default)]
    pub capture: Capture,
    /// Rows captured per statement with `capture = "rows"`, at most (bytes); the hash still
    /// covers every row.
    #[serde(default = "RecordingConfig::default_capture_max_bytes")]
    pub capture_max_bytes: usize,
    /// Per-session overrides of `capture`, first match wins.
    #[serde(default, rename = "capture_rule")]
    pub capture_rules: Vec<CaptureRule>,
}

impl RecordingConfig {
    fn default_commit_interval_ms() -> u64 {
        10
    }
    fn default_segment_size_mb() -> u64 {
        64
    }
    fn default_queue_capacity() -> usize {
        64 * 1024
    }
    fn default_capture_max_bytes() -> usize {
        1 << 20
    }
    /// The group-commit interval.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_millis(self.commit_interval_ms.max(1))
    }
    /// A configuration with every default, writing to `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> RecordingConfig {
        RecordingConfig {
            dir: dir.into(),
            durability: Durability::default(),
            commit_interval_ms: Self::default_commit_interval_ms(),
            segment_size_mb: Self::default_segment_size_mb(),
            retain_days: 0,
            queue_capacity: Self::default_queue_capacity(),
            capture: Capture::default(),
            capture_max_bytes: Self::default_capture_max_bytes(),
            capture_rules: Vec::new(),
        }
    }
    /// The capture mode for a session.
    pub fn capture_for(
        &self,
        target: &str,
        identity: &str,
        groups: &[String],
        roles: &[String],
    ) -> Capture {
        self.capture_rules
            .iter()
            .find(|r| {
                r.target.as_deref().is_none_or(|t| t == target)
                    && r.identity.as_deref().is_none_or(|i| i == identity)
                    && r.group
                        .as_deref()
                        .is_none_or(|g| groups.iter().any(|x| x == g))
                    && r.role
                        .as_deref()
                        .is_none_or(|g| roles.iter().any(|x| x == g))
            })
            .map_or(self.capture, |r| r.capture)
    }
}

/// When a record counts as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Durable within the group-commit interval.
    #[default]
    Batched,
    /// A statement waits for its record's fsync before it is forwarded.
    Strict,
}

/// What is kept of result rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    /// Counters only.
    None,
    /// Counters and a BLAKE3 hash of the rows as the client received them.
    #[default]
    Hash,
    /// Counters, the hash, and the rows themselves (as sent to the client, i.e. masked).
    Rows,
}

/// `[[recording.capture_rule]]`: a capture mode for the sessions it matches (every given key
/// must match).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRule {
    /// Target name.
    pub target: Option<String>,
    /// Identity name.
    pub identity: Option<String>,
    /// A group of the identity.
    pub group: Option<String>,
    /// A policy role of the identity.
    pub role: Option<String>,
    /// The mode.
    pub capture: Capture,
}

/// `[policy]`: the policy files every session is decided by.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Policy files, or directories whose `*.toml` files are loaded in name order; relative
    /// to the configuration file. Reloaded when they change and on SIGHUP.
    pub paths: Vec<PathBuf>,
}

/// One listening address, bound to one target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name used in logs.
    pub name: String,
    /// `ip:port` to listen on (port 0 picks a free port).
    #[serde(deserialize_with = "deserialize_socket_addr")]
    pub address: SocketAddr,
    /// Name of the `[[target]]` sessions from this listener reach.
    pub target: String,
    /// How clients log in: `identity` (default) or `passthrough`.
    #[serde(default)]
    pub auth: ListenerAuth,
    /// TLS offered to clients (absent: no TLS offered).
    #[serde(default)]
    pub tls: Option<ListenerTlsConfig>,
}

/// How a listener's clients log in (`auth = "identity" | "passthrough"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerAuth {
    /// Clients log in as `[[identity]]`s; the gateway logs in to the target with the credential
    /// it holds (the target's `user` and password).
    #[default]
    Identity,
    /// Adoption mode: the client's own MySQL login is relayed to the target, which accepts or
    /// refuses it. `[[identity]]`s play no part; the target needs no credential.
    Passthrough,
}

impl ListenerAuth {
    /// The session core's name for this mode.
    pub fn mode(self) -> AuthMode {
        match self {
            ListenerAuth::Identity => AuthMode::GatewayIdentity,
            ListenerAuth::Passthrough => AuthMode::Passthrough,
        }
    }
}

impl From<ListenerAuth> for AuthMode {
    fn from(auth: ListenerAuth) -> AuthMode {
        auth.mode()
    }
}

impl fmt::Display for ListenerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerAuth::Identity => "identity",
            ListenerAuth::Passthrough => "passthrough",
        })
    }
}

/// Server-side TLS for a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// PEM certificate chain (relative to the configuration file's directory once loaded).
    pub cert: PathBuf,
    /// PEM private key (relative to the configuration file's directory once loaded).
    pub key: PathBuf,
    /// Refuse clients that do not upgrade to TLS.
    #[serde(default)]
    pub require: bool,
}

/// An upstream MySQL/MariaDB server and the credential the gateway holds for it.
///
/// The credential (`user` and a password source) is required when an identity-mode listener
/// leads to the target; a target reached only by passthrough listeners may go without one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name referenced by listeners.
    pub name: String,
    /// `host:port` of the server (an IPv6 address in brackets: `[::1]:3306`).
    pub address: String,
    /// The MySQL account the gateway logs in as (required for identity-mode listeners).
    #[serde(default)]
    pub user: Option<String>,
    /// Environment variable holding the password (at most one of `password_env`/`password_file`;
    /// one is required for identity-mode listeners).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (trailing newline ignored; relative to the configuration file's
    /// directory once loaded).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS to the upstream.
    #[serde(default)]
    pub tls: UpstreamTlsConfig,
    /// PEM file with the server's RSA public key, for `caching_sha2_password` full
    /// authentication without TLS. Without it (and without TLS) the gateway refuses rather than
    /// encrypt its password to a key received over plaintext.
    #[serde(default)]
    pub server_public_key: Option<PathBuf>,
}

/// TLS from the gateway to a target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// `disabled` (default), `required` (verify against `ca`).
    #[serde(default)]
    pub mode: UpstreamTlsMode,
    /// PEM CA bundle the server certificate must chain to (relative to the configuration file's
    /// directory once loaded).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Name expected in the server certificate (default: the host part of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
}

/// Whether the gateway speaks TLS to the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamTlsMode {
    /// Plaintext.
    #[default]
    Disabled,
    /// TLS with certificate verification; refuse the upstream if it does not offer TLS.
    Required,
}

impl fmt::Display for UpstreamTlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamTlsMode::Disabled => "disabled",
            UpstreamTlsMode::Required => "required",
        })
    }
}

/// A gateway identity (a person, agent or pipeline) and its stored secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The user name the client logs in with.
    pub name: String,
    /// Groups (used by policy).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The hashed secret, as printed by `gatehouse hash-secret`.
    pub secret: String,
}

/// Limits and timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Client connections open at once; more are refused with ER_CON_COUNT_ERROR (1040).
    pub max_connections: usize,
    /// Seconds a client has to complete the handshake.
    pub handshake_timeout_secs: u64,
    /// Seconds a client may stay idle between commands.
    pub idle_timeout_secs: u64,
    /// Seconds to connect and log in to the upstream.
    pub connect_timeout_secs: u64,
    /// Largest client packet (a whole command, after reassembly), in bytes.
    pub max_packet_size: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 4096,
            handshake_timeout_secs: 10,
            idle_timeout_secs: 8 * 3600,
            connect_timeout_secs: 5,
            max_packet_size: 64 << 20,
        }
    }
}

impl LimitsConfig {
    /// Smallest accepted `max_packet_size` (1 KiB).
    pub const MIN_PACKET_SIZE: usize = 1 << 10;
    /// Largest accepted `max_packet_size` (1 GiB, MySQL's own `max_allowed_packet` ceiling).
    pub const MAX_PACKET_SIZE: usize = 1 << 30;
    /// Largest accepted timeout, in seconds (365 days, MySQL's `wait_timeout` ceiling).
    pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

    /// The handshake timeout as a [`Duration`].
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
    /// The idle timeout as a [`Duration`].
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// The upstream connect timeout as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

/// I/O driver settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoConfig {
    /// `auto` (the driver measured fastest: epoll), `uring` or `epoll`.
    pub mode: IoMode,
    /// Worker threads (one runtime each); 0 means one per CPU.
    pub threads: usize,
}

/// Which I/O driver runs the sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum IoMode {
    /// The driver measured fastest here (epoll; see README "Performance").
    #[default]
    Auto,
    /// io_uring via tokio-uring.
    Uring,
    /// epoll via tokio.
    Epoll,
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoMode::Auto => "auto",
            IoMode::Uring => "uring",
            IoMode::Epoll => "epoll",
        })
    }
}

/// A configuration error, with the place in the file when known.
///
/// The `Display` form is one line, `file:line:col: what is wrong; what is expected`
/// (`file: …` when no single place is to blame).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or type error.
    #[error("{0}")]
    Parse(String),
    /// A value that parses but cannot work.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Parses and validates a configuration from TOML text (`origin` names the file in errors).
    ///
    /// Returns the first problem found; [`Config::from_toml_all`] returns every one. Reads no
    /// files: certificate and CA paths are checked by [`Config::load`].
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::from_toml_all(text, origin).map_err(first)
    }

    /// Like [`Config::from_toml`], but reports every problem found, in file order.
    ///
    /// A TOML syntax or type error stops parsing, so it is reported alone.
    pub fn from_toml_all(text: &str, origin: &str) -> Result<Config, Vec<ConfigError>> {
        let source = Source::new(text, origin);
        let config: Config = toml::from_str(text).map_err(|e| vec![source.parse_error(&e)])?;
        let errors = config.validate(&source);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.into_iter().map(|(e, _)| e).collect())
        }
    }

    /// Reads, parses and validates a configuration file, and checks that the files it names
    /// (certificates, keys, CA bundles) are readable PEM.
    ///
    /// Relative paths in the file are resolved against the file's directory. Returns the first
    /// problem found; [`Config::load_all`] returns every one.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_all(path).map_err(first)
    }

    /// Like [`Config::load`], but reports every problem found, in file order.
    pub fn load_all(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            vec![ConfigError::Io {
                path: path.to_owned(),
                source,
            }]
        })?;
        let origin = path.display().to_string();
        let source = Source::new(&text, &origin);
        let mut config: Config = toml::from_str(&text).map_err(|e| vec![source.parse_error(&e)])?;
        config.resolve_paths(path.parent().unwrap_or(Path::new("")));
        let mut errors = config.validate(&source);
        errors.extend(config.check_files(&source));
        errors.sort_by_key(|e| e.1);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.into_iter().map(|e| e.0).collect())
        }
    }

    /// The target a listener leads to.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Makes every relative path in the configuration relative to `base` instead.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for l in &mut self.listeners {
            if let Some(tls) = &mut l.tls {
                fix(&mut tls.cert);
                fix(&mut tls.key);
            }
        }
        if let Some(policy) = &mut self.policy {
            policy.paths.iter_mut().for_each(fix);
        }
        if let Some(recording) = &mut self.recording {
            fix(&mut recording.dir);
        }
        for t in &mut self.targets {
            if let Some(p) = &mut t.password_file {
                fix(p);
            }
            if let Some(p) = &mut t.tls.ca {
                fix(p);
            }
            if let Some(p) = &mut t.server_public_key {
                fix(p);
            }
        }
    }

    /// Every semantic problem, each with the offset it is about (for sorting).
    fn validate(&self, src: &Source<'_>) -> Vec<(ConfigError, usize)> {
        let mut v = Problems::new(src);
        use Seg::Index as I;

        if self.listeners.is_empty() {
            v.global(
                "no [[listener]] is defined, so the gateway would accept nothing; \
                 expected at least one [[listener]] table with name, address and target",
            );
        }

        // Listeners.
        for (i, l) in self.listeners.iter().enumerate() {
            let at = |key: &'static str| [k("listener"), I(i), k(key)];
            let what = format!("[[listener]] {:?}", l.name);
            if l.name.trim().is_empty() {
                v.push(
                    &at("name"),
                    "[[listener]] name is empty; expected a name used in logs",
                );
            } else if let Some(j) = self.listeners[..i].iter().position(|o| o.name == l.name) {
                v.push(
                    &at("name"),
                    format!(
                        "duplicate [[listener]] name {:?} (first defined at line {}); \
                         listener names must be unique",
                        l.name,
                        src.line(&[k("listener"), I(j), k("name")])
                    ),
                );
            }
            if l.address.port() != 0 {
                if let Some(j) = self.listeners[..i]
                    .iter()
                    .position(|o| o.address == l.address)
                {
                    v.push(
                        &at("address"),
                        format!(
                            "{what}: address {} is already used by [[listener]] {:?} \
                             (line {}); expected a distinct ip:port per listener",
                            l.address,
                            self.listeners[j].name,
                            src.line(&[k("listener"), I(j), k("address")])
                        ),
                    );
                }
            }
            if self.target(&l.target).is_none() {
                let known = self
                    .targets
                    .iter()
                    .map(|t| format!("{:?}", t.name))
                    .collect::<Vec<_>>();
                let expected = if known.is_empty() {
                    "but no [[target]] is defined; add a [[target]] table with that name".into()
                } else {
                    format!("expected the name of a [[target]] ({})", known.join(", "))
                };
                v.push(
                    &at("target"),
                    format!("{what}: target {:?} is not defined; {expected}", l.target),
                );
            }
        }

        // Targets.
        for (i, t) in self.targets.iter().enumerate() {
            let at = |key: &'static str| [k("target"), I(i), k(key)];
            let what = format!("[[target]] {:?}", t.name);
            if t.name.trim().is_empty() {
                v.push(
                    &at("name"),
                    "[[target]] name is empty; expected the name listeners refer to",
                );
            } else if let Some(j) = self.targets[..i].iter().position(|o| o.name == t.name) {
                v.push(
                    &at("name"),
                    format!(
                        "duplicate [[target]] name {:?} (first defined at line {}); \
                         target names must be unique",
                        t.name,
                        src.line(&[k("target"), I(j), k("name")])
                    ),
                );
            }
            if let Err(why) = check_host_port(&t.address) {
                v.push(
                    &at("address"),
                    format!(
                        "{what}: address {:?} {why}; expected host:port, \
                         e.g. \"db1.internal:3306\", \"10.0.0.5:3306\" or \"[::1]:3306\"",
                        t.address
                    ),
                );
            }
            // The credential is optional, but what is written must be usable.
            if t.user.as_deref().is_some_and(str::is_empty) {
                v.push(
                    &at("user"),
                    format!(
                        "{what}: user is empty; expected the MySQL account the gateway logs in as \
                         (or no user key, if only passthrough listeners lead to this target)"
                    ),
                );
            }
            match (&t.password_env, &t.password_file) {
                (Some(_), Some(_)) => v.push(
                    &at("password_file"),
                    format!(
                        "{what}: both password_env and password_file are set; \
                         expected exactly one of them"
                    ),
                ),
                (Some(var), None) if var.is_empty() || var.contains('=') || var.contains('\0') => v
                    .push(
                        &at("password_env"),
                        format!(
                            "{what}: password_env {var:?} is not a valid environment variable \
                             name; expected e.g. \"GATEHOUSE_PRIMARY_PASSWORD\""
                        ),
                    ),
                (None, Some(p)) if p.as_os_str().is_empty() => v.push(
                    &at("password_file"),
                    format!("{what}: password_file is empty; expected the path of a file"),
                ),
                _ => {}
            }
            // ... and required when an identity-mode listener logs in to this target with it.
            let users = self
                .listeners
                .iter()
                .enumerate()
                .filter(|(_, l)| l.target == t.name && l.auth == ListenerAuth::Identity)
                .map(|(j, l)| {
                    format!(
                        "[[listener]] {:?} (line {})",
                        l.name,
                        src.line(&[k("listener"), I(j), k("auth")])
                    )
                })
                .collect::<Vec<_>>();
            if !users.is_empty() {
                let (by, its) = if users.len() == 1 {
                    (format!("{} is", users[0]), "that listener")
                } else {
                    (format!("{} are", users.join(", ")), "those listeners")
                };
                let why = format!(
                    "{by} in identity mode (auth = \"identity\", the default), where the gateway \
                     logs in to this target with the credential it holds"
                );
                let or = format!(
                    "or auth = \"passthrough\" on {its}, to relay each client's own MySQL login"
                );
                if t.user.is_none() {
                    v.push(
                        &[k("target"), I(i)],
                        format!(
                            "{what}: no user, but {why}; expected user = \"ACCOUNT\", the MySQL \
                             account the gateway logs in as ({or})"
                        ),
                    );
                }
                if t.password_env.is_none() && t.password_file.is_none() {
                    v.push(
                        &[k("target"), I(i)],
                        format!(
                            "{what}: no password source, but {why}; expected exactly one of \
                             password_env = \"VARIABLE\" or password_file = \"/path\" ({or})"
                        ),
                    );
                }
            }
            let tls_at = |key: &'static str| [k("target"), I(i), k("tls"), k(key)];
            match t.tls.mode {
                UpstreamTlsMode::Required if t.tls.ca.is_none() => v.push(
                    &tls_at("mode"),
                    format!(
                        "{what}: tls.mode = \"required\" needs tls.ca, the PEM CA bundle \
                         the server certificate must chain to"
                    ),
                ),
                UpstreamTlsMode::Disabled => {
                    for (key, set) in [
                        ("ca", t.tls.ca.is_some()),
                        ("server_name", t.tls.server_name.is_some()),
                    ] {
                        if set {
                            v.push(
                                &tls_at(key),
                                format!(
                                    "{what}: tls.{key} is set but tls.mode is \"disabled\", so \
                                     it would be ignored and the connection left in plaintext; \
                                     expected tls.mode = \"required\" (or remove tls.{key})"
                                ),
                            );
                        }
                    }
                }
                UpstreamTlsMode::Required => {}
            }
            if t.tls
                .server_name
                .as_deref()
                .is_some_and(|s| s.trim().is_empty())
            {
                v.push(
                    &tls_at("server_name"),
                    format!(
                        "{what}: tls.server_name is empty; expected the name in the server \
                         certificate (or remove it to use the host part of address)"
                    ),
                );
            }
        }

        // Identities.
        for (i, id) in self.identities.iter().enumerate() {
            let at = |key: &'static str| [k("identity"), I(i), k(key)];
            let what = format!("[[identity]] {:?}", id.name);
            if id.name.is_empty() {
                v.push(
                    &at("name"),
                    "[[identity]] name is empty; expected the user name the client logs in with",
                );
            } else if let Some(j) = self.identities[..i].iter().position(|o| o.name == id.name) {
                v.push(
                    &at("name"),
                    format!(
                        "duplicate [[identity]] name {:?} (first defined at line {}); \
                         identity names must be unique",
                        id.name,
                        src.line(&[k("identity"), I(j), k("name")])
                    ),
                );
            }
            for (g, group) in id.groups.iter().enumerate() {
                if group.trim().is_empty() {
                    v.push(
                        &[k("identity"), I(i), k("groups"), I(g)],
                        format!("{what}: group name is empty; expected a non-empty group name"),
                    );
                }
            }
            if let Err(e) = id.secret.parse::<StoredSecret>() {
                let e = e.to_string();
                let hint = if e.contains("hash-secret") {
                    ""
                } else {
                    "; expected the line printed by `gatehouse hash-secret`"
                };
                v.push(&at("secret"), format!("{what}: invalid secret: {e}{hint}"));
            }
        }

        // Limits.
        let lim = &self.limits;
        let lim_at = |key: &'static str| [k("limits"), k(key)];
        if lim.max_connections == 0 {
            v.push(
                &lim_at("max_connections"),
                "limits.max_connections = 0 would refuse every client; expected at least 1",
            );
        }
        for (key, value) in [
            ("handshake_timeout_secs", lim.handshake_timeout_secs),
            ("idle_timeout_secs", lim.idle_timeout_secs),
            ("connect_timeout_secs", lim.connect_timeout_secs),
        ] {
            if value == 0 || value > LimitsConfig::MAX_TIMEOUT_SECS {
                v.push(
                    &lim_at(key),
                    format!(
                        "limits.{key} = {value}; expected seconds between 1 and {} (365 days)",
                        LimitsConfig::MAX_TIMEOUT_SECS
                    ),
                );
            }
        }
        if !(LimitsConfig::MIN_PACKET_SIZE..=LimitsConfig::MAX_PACKET_SIZE)
            .contains(&lim.max_packet_size)
        {
            v.push(
                &lim_at("max_packet_size"),
                format!(
                    "limits.max_packet_size = {}; expected bytes between {} (1 KiB) and {} (1 GiB)",
                    lim.max_packet_size,
                    LimitsConfig::MIN_PACKET_SIZE,
                    LimitsConfig::MAX_PACKET_SIZE
                ),
            );
        }

        // Recording.
        if let Some(r) = &self.recording {
            let at = |key: &'static str| [k("recording"), k(key)];
            if r.dir.as_os_str().is_empty() {
                v.push(
                    &at("dir"),
                    "recording.dir is empty; expected the audit log's directory",
                );
            }
            if !(1..=60_000).contains(&r.commit_interval_ms) {
                v.push(
                    &at("commit_interval_ms"),
                    format!(
                        "recording.commit_interval_ms = {}; expected milliseconds between 1 and 60000",
                        r.commit_interval_ms
                    ),
                );
            }
            if !(1..=4096).contains(&r.segment_size_mb) {
                v.push(
                    &at("segment_size_mb"),
                    format!(
                        "recording.segment_size_mb = {}; expected MiB between 1 and 4096",
                        r.segment_size_mb
                    ),
                );
            }
            if r.queue_capacity < 16 {
                v.push(
                    &at("queue_capacity"),
                    format!(
                        "recording.queue_capacity = {}; expected at least 16 events",
                        r.queue_capacity
                    ),
                );
            }
            for (i, rule) in r.capture_rules.iter().enumerate() {
                if let Some(t) = &rule.target {
                    if self.target(t).is_none() {
                        v.push(
                            &[k("recording"), k("capture_rule"), I(i), k("target")],
                            format!("[[recording.capture_rule]]: unknown target {t:?}"),
                        );
                    }
                }
            }
        }

        v.into_inner()
    }

    /// Checks that every file the configuration names is readable and holds what it should.
    fn check_files(&self, src: &Source<'_>) -> Vec<(ConfigError, usize)> {
        use Seg::Index as I;
        let mut v = Problems::new(src);
        for (i, l) in self.listeners.iter().enumerate() {
            let Some(tls) = &l.tls else { continue };
            for (key, path, kind) in [
                ("cert", &tls.cert, Pem::Certificates),
                ("key", &tls.key, Pem::PrivateKey),
            ] {
                if let Err(why) = check_pem(path, kind) {
                    v.push(
                        &[k("listener"), I(i), k("tls"), k(key)],
                        format!("[[listener]] {:?}: tls.{key} {why}", l.name),
                    );
                }
            }
        }
        if let Some(policy) = &self.policy {
            if let Err(errors) = crate::policy::PolicySet::load(&policy.paths) {
                for e in errors {
                    v.push(&[k("policy"), k("paths")], format!("[policy]: {e}"));
                }
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            if let Some(ca) = &t.tls.ca {
                if let Err(why) = check_pem(ca, Pem::Certificates) {
                    v.push(
                        &[k("target"), I(i), k("tls"), k("ca")],
                        format!("[[target]] {:?}: tls.ca {why}", t.name),
                    );
                }
            }
        }
        v.into_inner()
    }
}

impl TargetConfig {
    /// Whether the configuration gives a credential for this target: a `user` and a password
    /// source. Always true for a target an identity-mode listener leads to (validation
    /// requires it); a target reached only by passthrough listeners may have none.
    pub fn has_credential(&self) -> bool {
        self.user.is_some() && (self.password_env.is_some() || self.password_file.is_some())
    }

    /// ` for user "app"`, or nothing when the target has no user.
    fn for_user(&self) -> String {
        match &self.user {
            Some(user) => format!(" for user {user:?}"),
            None => String::new(),
        }
    }

    /// Reads the password the gateway logs in to this target with, from the environment variable
    /// or file the configuration names. One trailing newline (`\n` or `\r\n`) is removed.
    ///
    /// Errors (naming the target) when the variable is unset, the file is unreadable, or the
    /// password is empty.
    pub fn password(&self) -> Result<String, ConfigError> {
        let bad = |msg: String| ConfigError::Invalid(format!("target {:?}: {msg}", self.name));
        let (raw, from) = match (&self.password_env, &self.password_file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(value) => (value, format!("environment variable {var}")),
                Err(std::env::VarError::NotPresent) => {
                    return Err(bad(format!(
                        "environment variable {var} (password_env) is not set; \
                         expected it to hold the password{}",
                        self.for_user()
                    )))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(bad(format!(
                        "environment variable {var} (password_env) is not valid UTF-8"
                    )))
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(value) => (value, format!("password_file {}", path.display())),
                Err(e) => {
                    return Err(bad(format!(
                        "cannot read password_file {}: {e}",
                        path.display()
                    )))
                }
            },
            _ => {
                return Err(bad(
                    "expected exactly one of password_env or password_file".into()
                ))
            }
        };
        let password = strip_newline(&raw);
        if password.is_empty() {
            return Err(bad(format!(
                "{from} is empty; expected the password{}",
                self.for_user()
            )));
        }
        Ok(password.to_owned())
    }
}

/// Returns the first of a non-empty list of errors.
fn first(mut errors: Vec<ConfigError>) -> ConfigError {
    errors.swap_remove(0)
}

/// Removes one trailing `\n` or `\r\n`.
fn strip_newline(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

fn deserialize_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not an ip:port; expected e.g. \"127.0.0.1:3307\", \"0.0.0.0:3307\" or \
             \"[::1]:3307\" (a listener binds an IP address, not a host name)"
        ))
    })
}

/// Checks a `host:port` string; the error completes "address … ".
fn check_host_port(address: &str) -> Result<(), &'static str> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("has no :port");
    };
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err("has an unclosed '['");
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err("has an invalid IPv6 address in brackets");
        }
    } else if host.contains(':') {
        return Err("is an IPv6 address without brackets");
    } else if host.is_empty() {
        return Err("has no host");
    } else if host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err("has a host with characters not allowed in a host name or IP address");
    }
    match port.parse::<u16>() {
        Ok(0) => Err("has port 0"),
        Ok(_) => Ok(()),
        Err(_) => Err("has a port that is not a number between 1 and 65535"),
    }
}

/// What a PEM file must contain.
#[derive(Clone, Copy)]
enum Pem {
    /// At least one `CERTIFICATE` block.
    Certificates,
    /// A PKCS#1, PKCS#8 or SEC1 private key.
    PrivateKey,
}

/// Checks a PEM file; the error completes "tls.cert … ".
fn check_pem(path: &Path, kind: Pem) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let found = match kind {
        Pem::Certificates => rustls_pemfile::certs(&mut &bytes[..])
            .collect::<Result<Vec<_>, _>>()
            .map(|certs| !certs.is_empty()),
        Pem::PrivateKey => rustls_pemfile::private_key(&mut &bytes[..]).map(|k| k.is_some()),
    };
    match (found, kind) {
        (Ok(true), _) => Ok(()),
        (Err(e), _) => Err(format!("{}: not valid PEM: {e}", path.display())),
        (Ok(false), Pem::Certificates) => Err(format!(
            "{}: no PEM CERTIFICATE block; expected a PEM certificate chain",
            path.display()
        )),
        (Ok(false), Pem::PrivateKey) => Err(format!(
            "{}: no PEM private key; expected a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key",
            path.display()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Locating items in the file.

/// One step of a path into the TOML document.
#[derive(Debug, Clone)]
enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array (`[[listener]]` tables included).
    Index(usize),
}

/// A [`Seg::Key`].
fn k(key: &str) -> Seg {
    Seg::Key(key.to_owned())
}

/// A value of the document and where it is. Parsed from the same text as [`Config`], so that
/// problems found after parsing can point into the file.
///
/// Like [`toml::Spanned`], but a value without a span (toml 0.8 gives none for tables made by
/// dotted keys, `tls.mode = …`) is kept with `span: None` instead of failing the whole parse.
#[derive(Debug)]
struct Located {
    span: Option<Range<usize>>,
    node: Node,
}

/// The shape of a [`Located`] value: only what locating needs.
#[derive(Debug)]
enum Node {
    Table(Vec<(String, Located)>),
    Array(Vec<Located>),
    String(String),
    Other,
}

impl Node {
    fn get(&self, seg: &Seg) -> Option<&Located> {
        match (self, seg) {
            (Node::Table(entries), Seg::Key(key)) => {
                entries.iter().find(|(name, _)| name == key).map(|(_, v)| v)
            }
            (Node::Array(items), Seg::Index(i)) => items.get(*i),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Asking for toml's `Spanned` struct makes its deserializer report the span as three
        // leading fields when it has one, and fall back to the plain value when it has not.
        const NAME: &str = "$__serde_spanned_private_Spanned";
        const START: &str = "$__serde_spanned_private_start";
        const END: &str = "$__serde_spanned_private_end";
        const VALUE: &str = "$__serde_spanned_private_value";
        static FIELDS: [&str; 3] = [START, END, VALUE];

        struct LocatedVisitor;
        impl<'de> Visitor<'de> for LocatedVisitor {
            type Value = Located;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Located, E> {
                Ok(Located::bare(Node::Other))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Located, E> {
                Ok(Located::bare(Node::Other))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Located, E> {
                Ok(Located::bare(Node::Other))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Located, E> {
                Ok(Located::bare(Node::Other))
            }
            fn visit_str<E>(self, s: &str) -> Result<Located, E> {
                Ok(Located::bare(Node::String(s.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Located::bare(Node::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.is_empty() && key == START {
                        let start: usize = map.next_value()?;
                        let _: Option<String> = map.next_key()?;
                        let end: usize = map.next_value()?;
                        let _: Option<String> = map.next_key()?;
                        // The value itself, asked for plainly: asking for `Spanned` again
                        // would get the same span again, forever.
                        let Plain(node) = map.next_value()?;
                        return Ok(Located {
                            span: Some(start..end),
                            node,
                        });
                    }
                    entries.push((key, map.next_value()?));
                }
                Ok(Located::bare(Node::Table(entries)))
            }
        }
        /// A value's shape without asking for its span.
        struct Plain(Node);
        impl<'de> Deserialize<'de> for Plain {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(LocatedVisitor).map(|l| Plain(l.node))
            }
        }

        d.deserialize_struct(NAME, &FIELDS, LocatedVisitor)
    }
}

impl Located {
    fn bare(node: Node) -> Self {
        Located { span: None, node }
    }
}

/// The text of a configuration, its name, and where each of its values is.
struct Source<'a> {
    origin: &'a str,
    text: &'a str,
    /// `None` when the text is not valid TOML (then only the parser's own span is known).
    tree: Option<Located>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str, origin: &'a str) -> Self {
        Source {
            origin,
            text,
            tree: toml::from_str(text).ok(),
        }
    }

    /// The span of the value at `path`, or of its deepest ancestor present in the file (a key
    /// left at its default points at the table that would hold it).
    fn span(&self, path: &[Seg]) -> Option<Range<usize>> {
        let mut node = self.tree.as_ref()?;
        let mut span = None;
        for seg in path {
            match node.node.get(seg) {
                Some(child) => {
                    node = child;
                    span = child.span.clone().or(span);
                }
                None => break,
            }
        }
        span
    }

    /// `file:line:col` of `offset`.
    fn at_offset(&self, offset: usize) -> String {
        let (line, col) = line_col(self.text, offset);
        format!("{}:{line}:{col}", self.origin)
    }

    /// The line of the value at `path` (0 if unknown).
    fn line(&self, path: &[Seg]) -> usize {
        self.span(path)
            .map(|s| line_col(self.text, s.start).0)
            .unwrap_or(0)
    }

    /// Turns a TOML parse error into a located, reworded [`ConfigError::Parse`].
    fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        // One line per error: toml's syntax messages put "expected …" on a line of its own.
        let message = e.message().trim_end().replace('\n', "; ");
        let message = message.as_str();
        let Some(span) = e.span() else {
            return ConfigError::Parse(format!("{}: {message}", self.origin));
        };
        let at = self.at_offset(span.start);
        let text = if let Some(rest) = message.strip_prefix("unknown field `") {
            let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = expected.trim_start_matches(',').trim();
            let expected = if expected == "there are no fields" {
                "this table takes no keys".to_owned()
            } else {
                expected.to_owned()
            };
            let place = match self.key_owner(key, &span) {
                Some(path) => format!(" {}", self.within(&path)),
                None => String::new(),
            };
            format!("unknown key `{key}`{place}; {expected}")
        } else if let Some(rest) = message.strip_prefix("missing field `") {
            let key = rest.split('`').next().unwrap_or(rest);
            let place = match self.path_of_span(&span) {
                Some(path) => format!(" {}", self.within(&path)),
                None => String::new(),
            };
            format!("missing key `{key}`{place}; it is required")
        } else {
            let message = message.replace("unknown variant", "unknown value");
            match self.path_of_span(&span) {
                Some(path) if !path.is_empty() => {
                    format!("{}: {message}", self.describe_key(&path))
                }
                _ => message,
            }
        };
        ConfigError::Parse(format!("{at}: {text}"))
    }

    /// The path of the table holding the key `key` written at `key_span` (the entry whose value
    /// starts nearest to the key).
    fn key_owner(&self, key: &str, key_span: &Range<usize>) -> Option<Vec<Seg>> {
        fn walk(
            node: &Located,
            key: &str,
            key_span: &Range<usize>,
            path: &mut Vec<Seg>,
            best: &mut Option<(usize, Vec<Seg>)>,
        ) {
            match &node.node {
                Node::Table(entries) => {
                    for (name, value) in entries {
                        if let (true, Some(span)) = (name == key, &value.span) {
                            let distance = span.start.abs_diff(key_span.start);
                            if best.as_ref().is_none_or(|(d, _)| distance < *d) {
                                *best = Some((distance, path.clone()));
                            }
                        }
                        path.push(Seg::Key(name.clone()));
                        walk(value, key, key_span, path, best);
                        path.pop();
                    }
                }
                Node::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        walk(item, key, key_span, path, best);
                        path.pop();
                    }
                }
                _ => {}
            }
        }
        let mut best = None;
        walk(
            self.tree.as_ref()?,
            key,
            key_span,
            &mut Vec::new(),
            &mut best,
        );
        best.map(|(_, path)| path)
    }

    /// The path of the value whose span is exactly `span`.
    fn path_of_span(&self, span: &Range<usize>) -> Option<Vec<Seg>> {
        fn walk(node: &Located, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
            // Children first: an array of tables has the same span as its only item.
            let found = match &node.node {
                Node::Table(entries) => entries.iter().any(|(key, value)| {
                    path.push(Seg::Key(key.clone()));
                    walk(value, span, path) || path.pop().is_none()
                }),
                Node::Array(items) => items.iter().enumerate().any(|(i, item)| {
                    path.push(Seg::Index(i));
                    walk(item, span, path) || path.pop().is_none()
                }),
                _ => false,
            };
            found || node.span.as_ref() == Some(span)
        }
        let mut path = Vec::new();
        walk(self.tree.as_ref()?, span, &mut path).then_some(path)
    }

    /// Names the table at `path` as a reader of the file sees it: `[limits]`,
    /// `[[listener]] "main"`, `[target.tls] of [[target]] "primary"`, `the top level`.
    fn describe(&self, path: &[Seg]) -> String {
        let keys = |segs: &[Seg]| {
            segs.iter()
                .filter_map(|s| match s {
                    Seg::Key(key) => Some(key.as_str()),
                    Seg::Index(_) => None,
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        if path.is_empty() {
            return "the top level".into();
        }
        match path.iter().rposition(|s| matches!(s, Seg::Index(_))) {
            None => format!("[{}]", keys(path)),
            Some(p) => {
                let item = format!("[[{}]] {}", keys(&path[..p]), self.item_name(&path[..=p]));
                if p == path.len() - 1 {
                    item
                } else {
                    format!("[{}] of {item}", keys(path))
                }
            }
        }
    }

    /// `in [limits]`, `in [[listener]] "main"`, or `at the top level`.
    fn within(&self, path: &[Seg]) -> String {
        if path.is_empty() {
            "at the top level".into()
        } else {
            format!("in {}", self.describe(path))
        }
    }

    /// Names the key at `path`: ``key `address` in [[listener]] "main"``.
    fn describe_key(&self, path: &[Seg]) -> String {
        match path.split_last() {
            Some((Seg::Key(key), parent)) => format!("key `{key}` {}", self.within(parent)),
            Some((Seg::Index(i), parent)) => {
                format!("item {} of {}", i + 1, self.describe_key(parent))
            }
            None => "the top level".into(),
        }
    }

    /// `"main"` (the item's `name`) or `#2` (its position) for an array item.
    fn item_name(&self, path: &[Seg]) -> String {
        let mut node = self.tree.as_ref();
        for seg in path {
            node = node.and_then(|n| n.node.get(seg));
        }
        match node.and_then(|n| n.node.get(&k("name"))).map(|n| &n.node) {
            Some(Node::String(name)) => format!("{name:?}"),
            _ => match path.last() {
                Some(Seg::Index(i)) => format!("#{}", i + 1),
                _ => String::new(),
            },
        }
    }
}

/// Collects located problems.
struct Problems<'s, 'a> {
    src: &'s Source<'a>,
    found: Vec<(ConfigError, usize)>,
}

impl<'s, 'a> Problems<'s, 'a> {
    fn new(src: &'s Source<'a>) -> Self {
        Problems {
            src,
            found: Vec::new(),
        }
    }

    /// A problem about the value at `path`.
    fn push(&mut self, path: &[Seg], message: impl fmt::Display) {
        let (offset, at) = match self.src.span(path) {
            Some(span) => (span.start, self.src.at_offset(span.start)),
            None => (0, self.src.origin.to_owned()),
        };
        self.found
            .push((ConfigError::Invalid(format!("{at}: {message}")), offset));
    }

    /// A problem about the file as a whole.
    fn global(&mut self, message: impl fmt::Display) {
        self.found.push((
            ConfigError::Invalid(format!("{}: {message}", self.src.origin)),
            0,
        ));
    }

    /// The problems, in file order.
    fn into_inner(mut self) -> Vec<(ConfigError, usize)> {
        self.found.sort_by_key(|(_, offset)| *offset);
        self.found
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid stored secret.
    fn secret() -> String {
        static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SECRET
            .get_or_init(|| {
                StoredSecret::generate("pw", &mut rand::thread_rng(), false).to_string()
            })
            .clone()
    }

    fn minimal() -> String {
        format!(
            r#"[[listener]]
name = "main"
address = "127.0.0.1:3307"
target = "primary"

[[target]]
name = "primary"
address = "127.0.0.1:3306"
user = "app"
password_env = "GATEHOUSE_PRIMARY_PASSWORD"

[[identity]]
name = "alice"
secret = "{}"
"#,
            secret()
        )
    }

    /// Every error for `text`, as displayed.
    fn errors(text: &str) -> Vec<String> {
        match Config::from_toml_all(text, "t.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// The single error for `text`.
    fn error(text: &str) -> String {
        let errors = errors(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.into_iter().next().unwrap()
    }

    fn assert_has(haystack: &str, needle: &str) {
        assert!(
            haystack.contains(needle),
            "{haystack:?}\n  does not contain {needle:?}"
        );
    }

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = Config::from_toml(&minimal(), "t.toml").unwrap();
        assert_eq!(
            config.listeners[0].address,
            "127.0.0.1:3307".parse().unwrap()
        );
        assert_eq!(
            config.target("primary").unwrap().user.as_deref(),
            Some("app")
        );
        assert_eq!(config.listeners[0].auth, ListenerAuth::Identity);
        assert_eq!(config.listeners[0].auth.mode(), AuthMode::GatewayIdentity);
        assert_eq!(config.limits.max_connections, 4096);
        assert_eq!(config.limits.idle_timeout(), Duration::from_secs(8 * 3600));
        assert_eq!(config.io.mode, IoMode::Auto);
        assert_eq!(config.targets[0].tls.mode, UpstreamTlsMode::Disabled);
    }

    #[test]
    fn unknown_key_names_key_table_and_place() {
        let text = minimal().replace(
            "target = \"primary\"\n",
            "target = \"primary\"\ncolour = 1\n",
        );
        let e = error(&text);
        assert_has(
            &e,
            "t.toml:5:1: unknown key `colour` in [[listener]] \"main\"; expected one of",
        );
        assert_has(&e, "`address`");
    }

    #[test]
    fn unknown_key_in_nested_table() {
        let text = format!(
            "{}\n[target.tls]\nmode = \"disabled\"\nverify = true\n",
            minimal()
        );
        let e = error(&text);
        // [target.tls] extends the last [[target]] even after [[identity]].
        assert_has(
            &e,
            "t.toml:18:1: unknown key `verify` in [target.tls] of [[target]] \"primary\"; \
             expected one of `mode`, `ca`, `server_name`",
        );
    }

    #[test]
    fn unknown_top_level_table() {
        let text = format!("{}\n[limit]\nmax_connections = 1\n", minimal());
        let e = error(&text);
        assert_has(&e, "t.toml:16:2: unknown key `limit` at the top level;");
    }

    #[test]
    fn missing_key_names_table() {
        let text = minimal().replace("address = \"127.0.0.1:3306\"\n", "");
        assert_has(
            &error(&text),
            "t.toml:6:1: missing key `address` in [[target]] \"primary\"",
        );
    }

    /// A passthrough listener in front of a target without credential, and no identities.
    fn passthrough_only() -> String {
        r#"[[listener]]
name = "adopt"
address = "127.0.0.1:3307"
target = "primary"
auth = "passthrough"

[[target]]
name = "primary"
address = "127.0.0.1:3306"
"#
        .to_owned()
    }

    #[test]
    fn passthrough_listener_needs_no_credential_nor_identities() {
        let config = Config::from_toml(&passthrough_only(), "t.toml").unwrap();
        assert_eq!(config.listeners[0].auth, ListenerAuth::Passthrough);
        assert_eq!(config.listeners[0].auth.mode(), AuthMode::Passthrough);
        assert_eq!(
            AuthMode::from(ListenerAuth::Identity),
            AuthMode::GatewayIdentity
        );
        assert_eq!(config.listeners[0].auth.to_string(), "passthrough");
        let t = config.target("primary").unwrap();
        assert_eq!(t.user, None);
        assert!(!t.has_credential());
        assert!(config.identities.is_empty());

        // A credential may still be given (and is then checked).
        let with = passthrough_only() + "user = \"app\"\npassword_env = \"P\"\n";
        let config = Config::from_toml(&with, "t.toml").unwrap();
        assert!(config.targets[0].has_credential());
        // Identities may be defined too (the passthrough listener ignores them).
        Config::from_toml(
            &minimal().replace(
                "target = \"primary\"\n",
                "target = \"primary\"\nauth = \"passthrough\"\n",
            ),
            "t.toml",
        )
        .unwrap();
    }

    #[test]
    fn passthrough_target_credential_is_still_checked() {
        let text = passthrough_only() + "user = \"\"\n";
        assert_has(
            &error(&text),
            "t.toml:10:8: [[target]] \"primary\": user is empty; expected the MySQL account",
        );
        let text = passthrough_only() + "password_env = \"P\"\npassword_file = \"/p\"\n";
        assert_has(
            &error(&text),
            "t.toml:11:17: [[target]] \"primary\": both password_env and password_file are set",
        );
        let text = passthrough_only() + "password_env = \"A=B\"\n";
        assert_has(
            &error(&text),
            "t.toml:10:16: [[target]] \"primary\": password_env \"A=B\" is not a valid",
        );
    }

    #[test]
    fn identity_listener_needs_target_credential() {
        // No user.
        let text = minimal().replace("user = \"app\"\n", "");
        assert_eq!(
            error(&text),
            "t.toml:6:1: [[target]] \"primary\": no user, but [[listener]] \"main\" (line 1) \
             is in identity mode (auth = \"identity\", the default), where the gateway logs in to \
             this target with the credential it holds; expected user = \"ACCOUNT\", the MySQL \
             account the gateway logs in as (or auth = \"passthrough\" on that listener, to \
             relay each client's own MySQL login)"
        );
        // Neither user nor password, with auth written out: the listener's line is that of
        // `auth`.
        let text = passthrough_only().replace("\"passthrough\"", "\"identity\"");
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_has(
            &e[0],
            "t.toml:7:1: [[target]] \"primary\": no user, but [[listener]] \"adopt\" (line 5) \
             is in identity mode",
        );
        assert_has(
            &e[1],
            "t.toml:7:1: [[target]] \"primary\": no password source, but [[listener]] \
             \"adopt\" (line 5) is in identity mode",
        );
        assert_has(
            &e[1],
            "expected exactly one of password_env = \"VARIABLE\" or",
        );
    }

    #[test]
    fn only_identity_listeners_need_the_credential() {
        // A passthrough and an identity listener on one target: only the latter is named.
        let text = passthrough_only()
            + "\n[[listener]]\nname = \"agents\"\naddress = \"127.0.0.1:3308\"\n\
               target = \"primary\"\n\n[[listener]]\nname = \"ci\"\n\
               address = \"127.0.0.1:3309\"\ntarget = \"primary\"\nauth = \"identity\"\n";
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_has(
            &e[0],
            "t.toml:7:1: [[target]] \"primary\": no user, but [[listener]] \"agents\" (line 11), \
             [[listener]] \"ci\" (line 20) are in identity mode",
        );
        assert_has(&e[0], "(or auth = \"passthrough\" on those listeners,");
        assert!(!e[0].contains("adopt"), "{e:?}");

        // Targets are judged one by one.
        let text = minimal()
            + "\n[[listener]]\nname = \"adopt\"\naddress = \"127.0.0.1:3308\"\n\
               target = \"legacy\"\nauth = \"passthrough\"\n\n[[target]]\nname = \"legacy\"\n\
               address = \"10.0.0.9:3306\"\n";
        let config = Config::from_toml(&text, "t.toml").unwrap();
        assert!(config.target("primary").unwrap().has_credential());
        assert!(!config.target("legacy").unwrap().has_credential());
    }

    #[test]
    fn listener_auth_values() {
        let text = minimal().replace(
            "target = \"primary\"\n",
            "target = \"primary\"\nauth = \"gateway\"\n",
        );
        assert_eq!(
            error(&text),
            "t.toml:5:8: key `auth` in [[listener]] \"main\": unknown value `gateway`, \
             expected `identity` or `passthrough`"
        );
        for (value, mode) in [
            ("identity", AuthMode::GatewayIdentity),
            ("passthrough", AuthMode::Passthrough),
        ] {
            let text = minimal().replace(
                "target = \"primary\"\n",
                &format!("target = \"primary\"\nauth = \"{value}\"\n"),
            );
            let config = Config::from_toml(&text, "t.toml").unwrap();
            assert_eq!(config.listeners[0].auth.mode(), mode);
            assert_eq!(config.listeners[0].auth.to_string(), value);
        }
        // Names are lowercase, like every other value in the file.
        let text = minimal().replace(
            "target = \"primary\"\n",
            "target = \"primary\"\nauth = \"Passthrough\"\n",
        );
        assert_has(&error(&text), "unknown value `Passthrough`");
    }

    #[test]
    fn type_errors_name_the_key() {
        let text = format!("{}\n[limits]\nmax_connections = \"many\"\n", minimal());
        assert_has(
            &error(&text),
            "t.toml:17:19: key `max_connections` in [limits]: invalid type: string \"many\"",
        );
        let text = format!("{}\n[io]\nmode = \"kqueue\"\n", minimal());
        assert_has(
            &error(&text),
            "key `mode` in [io]: unknown value `kqueue`, expected one of `auto`, `uring`, `epoll`",
        );
    }

    #[test]
    fn listener_address_must_be_ip_port() {
        let text = minimal().replace("127.0.0.1:3307", "localhost:3307");
        let e = error(&text);
        assert_has(&e, "t.toml:3:11: key `address` in [[listener]] \"main\":");
        assert_has(&e, "\"localhost:3307\" is not an ip:port");
    }

    #[test]
    fn syntax_error_is_located_on_one_line() {
        let text = minimal().replace("[[listener]]", "[[listener]");
        let e = error(&text);
        assert_has(&e, "t.toml:1:11: invalid table header; expected `.`, `]]`");
        assert!(!e.contains('\n'), "{e:?}");
    }

    #[test]
    fn dotted_keys_are_located() {
        // toml gives no span for the `tls` table a dotted key makes; its keys still have one.
        let text = minimal().replace(
            "user = \"app\"\n",
            "user = \"app\"\ntls.mode = \"require\"\n",
        );
        assert_has(
            &error(&text),
            "t.toml:10:12: key `mode` in [target.tls] of [[target]] \"primary\": unknown value \
             `require`, expected `disabled` or `required`",
        );
        let text = minimal().replace("user = \"app\"\n", "user = \"app\"\ntls.ca = \"x\"\n");
        assert_has(
            &error(&text),
            "t.toml:10:10: [[target]] \"primary\": tls.ca is set",
        );
        let text = minimal().replace("user = \"app\"\n", "user = \"app\"\ntls.cafile = \"x\"\n");
        assert_has(
            &error(&text),
            "t.toml:10:5: unknown key `cafile` in [target.tls] of [[target]] \"primary\"",
        );
    }

    #[test]
    fn no_listener() {
        let text = minimal();
        let text = &text[text.find("[[target]]").unwrap()..];
        assert_has(&error(text), "t.toml: no [[listener]] is defined");
    }

    #[test]
    fn listener_target_must_exist() {
        let text = minimal().replace("target = \"primary\"", "target = \"primry\"");
        assert_eq!(
            error(&text),
            "t.toml:4:10: [[listener]] \"main\": target \"primry\" is not defined; \
             expected the name of a [[target]] (\"primary\")"
        );
    }

    #[test]
    fn duplicate_names() {
        let text = format!(
            "{m}\n[[listener]]\nname = \"main\"\naddress = \"127.0.0.1:3307\"\ntarget = \"primary\"\n\
             \n[[target]]\nname = \"primary\"\naddress = \"h:1\"\nuser = \"u\"\npassword_env = \"X\"\n\
             \n[[identity]]\nname = \"alice\"\nsecret = \"{s}\"\n",
            m = minimal(),
            s = secret()
        );
        let e = errors(&text);
        assert_eq!(e.len(), 4, "{e:#?}");
        assert_has(
            &e[0],
            "t.toml:17:8: duplicate [[listener]] name \"main\" (first defined at line 2)",
        );
        assert_has(
            &e[1],
            "t.toml:18:11: [[listener]] \"main\": address 127.0.0.1:3307 is already used",
        );
        assert_has(
            &e[2],
            "t.toml:22:8: duplicate [[target]] name \"primary\" (first defined at line 7)",
        );
        assert_has(
            &e[3],
            "t.toml:28:8: duplicate [[identity]] name \"alice\" (first defined at line 13)",
        );
    }

    #[test]
    fn empty_names() {
        let text = minimal().replace("name = \"alice\"", "name = \"\"");
        assert_has(&error(&text), "t.toml:13:8: [[identity]] name is empty");
    }

    #[test]
    fn password_source_exactly_one() {
        let text = minimal().replace(
            "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"",
            "password_env = \"P\"\npassword_file = \"/p\"",
        );
        assert_has(
            &error(&text),
            "t.toml:11:17: [[target]] \"primary\": both password_env and password_file",
        );
        let text = minimal().replace("password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\n", "");
        assert_has(
            &error(&text),
            "t.toml:6:1: [[target]] \"primary\": no password source",
        );
    }

    #[test]
    fn target_address_is_host_port() {
        for (bad, why) in [
            ("db1", "has no :port"),
            ("db1:", "not a number"),
            ("db1:0", "has port 0"),
            ("db1:70000", "not a number"),
            (":3306", "has no host"),
            ("::1:3306", "without brackets"),
            ("[::1:3306", "unclosed"),
            ("[zz]:3306", "invalid IPv6"),
            ("db 1:3306", "characters not allowed"),
        ] {
            let text = minimal().replace("127.0.0.1:3306", bad);
            let e = error(&text);
            assert_has(&e, "t.toml:8:11: [[target]] \"primary\": address");
            assert_has(&e, why);
            assert_has(&e, "expected host:port");
        }
        for good in [
            "db1.internal:3306",
            "10.0.0.5:1",
            "[::1]:3306",
            "my_db-2:65535",
        ] {
            assert!(check_host_port(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn upstream_tls() {
        let text = format!("{}\n[target.tls]\nmode = \"required\"\n", minimal());
        // [target.tls] after [[identity]] still extends the last [[target]].
        assert_has(
            &error(&text),
            "[[target]] \"primary\": tls.mode = \"required\" needs tls.ca",
        );
        let text = minimal().replace(
            "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\n",
            "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\ntls = { ca = \"ca.pem\" }\n",
        );
        assert_has(
            &error(&text),
            "t.toml:11:14: [[target]] \"primary\": tls.ca is set but tls.mode is \"disabled\"",
        );
        let text = minimal().replace(
            "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\n",
            "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\ntls = { mode = \"required\", ca = \"ca.pem\" }\n",
        );
        Config::from_toml(&text, "t.toml").unwrap();
    }

    #[test]
    fn bad_secret() {
        let text = minimal().replace(
            &format!("secret = \"{}\"", secret()),
            "secret = \"hunter2\"",
        );
        let e = error(&text);
        assert_has(
            &e,
            "t.toml:14:10: [[identity]] \"alice\": invalid secret: not a gatehouse secret",
        );
        assert_has(&e, "gatehouse hash-secret");
    }

    #[test]
    fn limits_are_sane() {
        let text = format!(
            "{}\n[limits]\nmax_connections = 0\nhandshake_timeout_secs = 0\n\
             idle_timeout_secs = 99999999999\nconnect_timeout_secs = 1\nmax_packet_size = 1023\n",
            minimal()
        );
        let e = errors(&text);
        assert_eq!(e.len(), 4, "{e:#?}");
        assert_has(&e[0], "t.toml:17:19: limits.max_connections = 0");
        assert_has(
            &e[1],
            "t.toml:18:26: limits.handshake_timeout_secs = 0; expected seconds between 1 and",
        );
        assert_has(
            &e[2],
            "t.toml:19:21: limits.idle_timeout_secs = 99999999999",
        );
        assert_has(&e[3], "t.toml:21:19: limits.max_packet_size = 1023; expected bytes between 1024 (1 KiB) and 1073741824 (1 GiB)");
        let ok = format!("{}\n[limits]\nmax_packet_size = 1024\n", minimal());
        Config::from_toml(&ok, "t.toml").unwrap();
        let ok = format!("{}\n[limits]\nmax_packet_size = 1073741824\n", minimal());
        Config::from_toml(&ok, "t.toml").unwrap();
    }

    #[test]
    fn errors_come_in_file_order_and_from_toml_returns_the_first() {
        let text = minimal()
            .replace("target = \"primary\"", "target = \"nope\"")
            .replace("127.0.0.1:3306", "nope");
        let e = errors(&text);
        assert_eq!(e.len(), 2);
        assert!(e[0].starts_with("t.toml:4:"), "{e:?}");
        assert!(e[1].starts_with("t.toml:8:"), "{e:?}");
        let first = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
        assert_eq!(first, e[0]);
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("é = 1\nab", 0), (1, 1));
        assert_eq!(line_col("é = 1\nab", 2), (1, 2));
        assert_eq!(line_col("é = 1\nab", 7), (2, 1));
        assert_eq!(line_col("é = 1\nab", 8), (2, 2));
        assert_eq!(line_col("x", 99), (1, 2));
    }

    fn target(env: Option<&str>, file: Option<PathBuf>) -> TargetConfig {
        TargetConfig {
            name: "primary".into(),
            address: "h:1".into(),
            user: Some("app".into()),
            password_env: env.map(str::to_owned),
            password_file: file,
            tls: UpstreamTlsConfig::default(),
            server_public_key: None,
        }
    }

    #[test]
    fn password_from_env() {
        let var = "GATEHOUSE_CONFIG_TEST_PASSWORD_FROM_ENV";
        std::env::set_var(var, "s3cret\n");
        assert_eq!(target(Some(var), None).password().unwrap(), "s3cret");
        std::env::set_var(var, "");
        assert_has(
            &target(Some(var), None).password().unwrap_err().to_string(),
            "target \"primary\": environment variable GATEHOUSE_CONFIG_TEST_PASSWORD_FROM_ENV is empty",
        );
        std::env::remove_var(var);
        assert_has(
            &target(Some(var), None).password().unwrap_err().to_string(),
            "target \"primary\": environment variable GATEHOUSE_CONFIG_TEST_PASSWORD_FROM_ENV (password_env) is not set",
        );
    }

    #[test]
    fn password_from_file() {
        let dir = TestDir::new("password");
        let file = dir.0.join("pw");
        std::fs::write(&file, " two words \r\n").unwrap();
        assert_eq!(
            target(None, Some(file.clone())).password().unwrap(),
            " two words "
        );
        std::fs::write(&file, "\n").unwrap();
        assert_has(
            &target(None, Some(file.clone()))
                .password()
                .unwrap_err()
                .to_string(),
            "is empty",
        );
        let missing = dir.0.join("missing");
        let e = target(None, Some(missing))
            .password()
            .unwrap_err()
            .to_string();
        assert_has(&e, "target \"primary\": cannot read password_file ");
        assert_has(&e, "missing");
        let e = target(None, None).password().unwrap_err().to_string();
        assert_has(&e, "exactly one of password_env or password_file");
        std::fs::write(&file, "\n").unwrap();
        let mut no_user = target(None, Some(file));
        no_user.user = None;
        let e = no_user.password().unwrap_err().to_string();
        assert_has(&e, "is empty; expected the password");
        assert!(!e.contains("for user"), "{e}");
    }

    /// A scratch directory removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "gatehouse-config-{name}-{}-{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TestDir(dir)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_resolves_relative_paths_and_checks_pem_files() {
        let dir = TestDir::new("load");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.0.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.0.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        std::fs::write(dir.0.join("ca.pem"), cert.cert.pem()).unwrap();
        let with_tls = |cert: &str, key: &str, ca: &str| {
            minimal()
                .replace(
                    "target = \"primary\"\n",
                    &format!(
                        "target = \"primary\"\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}\n"
                    ),
                )
                .replace(
                    "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\n",
                    &format!(
                        "password_env = \"GATEHOUSE_PRIMARY_PASSWORD\"\n\
                         tls = {{ mode = \"required\", ca = \"{ca}\" }}\n"
                    ),
                )
        };
        let path = dir.0.join("gatehouse.toml");
        std::fs::write(&path, with_tls("cert.pem", "key.pem", "ca.pem")).unwrap();
        let config = Config::load(&path).unwrap();
        let tls = config.listeners[0].tls.as_ref().unwrap();
        assert_eq!(tls.cert, dir.0.join("cert.pem"));
        assert_eq!(tls.key, dir.0.join("key.pem"));
        assert_eq!(
            config.targets[0].tls.ca.as_deref(),
            Some(&*dir.0.join("ca.pem"))
        );

        // Missing, wrong content, and a key where a certificate belongs.
        std::fs::write(&path, with_tls("missing.pem", "cert.pem", "key.pem")).unwrap();
        let e = Config::load_all(&path).unwrap_err();
        let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(e.len(), 3, "{e:#?}");
        let origin = path.display().to_string();
        assert_has(
            &e[0],
            &format!("{origin}:5:16: [[listener]] \"main\": tls.cert "),
        );
        assert_has(&e[0], "missing.pem: cannot read: ");
        assert_has(
            &e[1],
            &format!("{origin}:5:37: [[listener]] \"main\": tls.key "),
        );
        assert_has(&e[1], "no PEM private key");
        assert_has(
            &e[2],
            &format!("{origin}:12:33: [[target]] \"primary\": tls.ca "),
        );
        assert_has(&e[2], "no PEM CERTIFICATE block");

        // Parsing from text reads no files.
        Config::from_toml(&with_tls("missing.pem", "cert.pem", "key.pem"), "t.toml").unwrap();
    }

    #[test]
    fn load_reports_unreadable_file() {
        let e = Config::load(Path::new("/nonexistent/gatehouse.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
        assert_has(&e.to_string(), "/nonexistent/gatehouse.toml: ");
    }
}
