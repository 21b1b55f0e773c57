//! The gateway's configuration: one TOML file (see `gatehouse.example.toml`, documented line by
//! line). Parsed into immutable `*Config` values shared by every session.
//!
//! This module owns parsing and validation; it reads files (certificates, secrets) only in
//! [`Config::load`], never on the hot path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
}

/// One listening address, bound to one target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name used in logs.
    pub name: String,
    /// `ip:port` to listen on (port 0 picks a free port).
    pub address: SocketAddr,
    /// Name of the `[[target]]` sessions from this listener reach.
    pub target: String,
    /// TLS offered to clients (absent: no TLS offered).
    #[serde(default)]
    pub tls: Option<ListenerTlsConfig>,
}

/// Server-side TLS for a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Refuse clients that do not upgrade to TLS.
    #[serde(default)]
    pub require: bool,
}

/// An upstream MySQL/MariaDB server and the credential the gateway holds for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name referenced by listeners.
    pub name: String,
    /// `host:port` of the server.
    pub address: String,
    /// The MySQL account the gateway logs in as.
    pub user: String,
    /// Environment variable holding the password (exactly one of `password_env`/`password_file`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// TLS to the upstream.
    #[serde(default)]
    pub tls: UpstreamTlsConfig,
}

/// TLS from the gateway to a target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// `disabled` (default), `required` (verify against `ca`).
    #[serde(default)]
    pub mode: UpstreamTlsMode,
    /// PEM CA bundle the server certificate must chain to.
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
    /// `auto` (io_uring if it works here, else epoll), `uring` or `epoll`.
    pub mode: IoMode,
    /// Worker threads (one runtime each); 0 means one per CPU.
    pub threads: usize,
}

/// Which I/O driver runs the sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum IoMode {
    /// io_uring when available, otherwise epoll (and log why).
    #[default]
    Auto,
    /// io_uring via tokio-uring.
    Uring,
    /// epoll via tokio.
    Epoll,
}

/// A configuration error, with the place in the file when known.
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
    /// Parses a configuration from TOML text (`origin` names the file in errors).
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((0, 0));
            ConfigError::Parse(format!("{origin}:{line}:{col}: {}", e.message()))
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(format!("{origin}: {msg}")));
        if self.listeners.is_empty() {
            return bad("no [[listener]] defined: the gateway would accept nothing".into());
        }
        for l in &self.listeners {
            if !self.targets.iter().any(|t| t.name == l.target) {
                return bad(format!(
                    "listener {:?} names target {:?}, but no [[target]] has that name",
                    l.name, l.target
                ));
            }
        }
        for t in &self.targets {
            if t.password_env.is_some() == t.password_file.is_some() {
                return bad(format!(
                    "target {:?}: set exactly one of password_env or password_file",
                    t.name
                ));
            }
        }
        Ok(())
    }

    /// The target a listener leads to.
    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}
