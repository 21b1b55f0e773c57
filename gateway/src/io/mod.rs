//! I/O drivers: thin loops that move bytes between sockets and the sans-IO [`crate::session`].
//!
//! Two drivers run the same per-connection loop ([`conn`]): io_uring on tokio-uring
//! ([`uring`]) and epoll on tokio ([`epoll`]). Either way there is one single-threaded runtime
//! per worker thread, each with its own `SO_REUSEPORT` listener per configured listener, so
//! the kernel spreads connections across workers and a session never leaves its thread.
//!
//! This module also turns the configuration into what sessions share (identities, TLS
//! configurations, the upstream credential): files are read here, at start, never later.

mod conn;
mod epoll;
mod uring;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use crate::auth::IdentityStore;
use crate::config::{Config, IoMode, ListenerConfig, TargetConfig, UpstreamTlsMode};
use crate::record::Recorder;
use crate::session::kill::SessionRegistry;
use crate::session::phases::{AllowAll, CommandGate, PassThrough};
use crate::session::phases::{CommandContext, Decision, Recording};
use crate::session::phases::{DiscardEvents, EventSink};
use crate::session::{AuthMode, SessionConfig, TargetInfo};
use crate::wire::command::CommandPacket;
use crate::wire::frame::{parse_packet, write_packet_with};
use crate::wire::handshake::parse_handshake_v10;
use crate::wire::response::encode_gateway_err;
use crate::wire::ErrorCode;

/// The driver actually running (after `auto` resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// io_uring via tokio-uring.
    Uring,
    /// epoll via tokio.
    Epoll,
}

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration cannot be used (e.g. certificate unreadable, secret missing).
    #[error("{0}")]
    Config(String),
    /// io_uring was asked for explicitly and does not work here.
    #[error("io_uring is not available here: {0} (use --io epoll)")]
    UringUnavailable(String),
}

/// What every connection accepted on one listener shares.
#[derive(Clone)]
pub(crate) struct ListenerShared {
    session: Arc<SessionConfig>,
    upstream: SocketAddr,
    connections: Arc<AtomicUsize>,
    max_connections: usize,
    next_id: Arc<AtomicU64>,
    record: Option<conn::RecordTo>,
}

/// A running gateway: its listeners and worker threads.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    driver: Driver,
    shutdown: tokio::sync::watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    recorder: Option<Recorder>,
}

/// Starts the gateway in background threads; returns once every listener is bound.
pub fn start(config: Config, mode: IoMode) -> Result<ServerHandle, StartError> {
    start_with_events(config, mode, Arc::new(DiscardEvents))
}

/// [`start`], handing every session event to `events` (the recorder's seam).
pub fn start_with_events(
    config: Config,
    mode: IoMode,
    events: Arc<dyn EventSink>,
) -> Result<ServerHandle, StartError> {
    let driver = match mode {
        IoMode::Epoll => Driver::Epoll,
        IoMode::Uring => {
            uring::probe().map_err(StartError::UringUnavailable)?;
            Driver::Uring
        }
        // Measured with `cargo xtask bench` (README, "Performance"): on tokio-uring every
        // completion still travels through tokio's epoll (the ring's eventfd), and the epoll
        // driver came out ahead on QPS, CPU per statement and idle memory. So `auto` is epoll;
        // io_uring is there to be chosen, and measured, explicitly.
        IoMode::Auto => {
            if let Err(why) = uring::probe() {
                info!(reason = %why, "io_uring is not available here (only --io uring needs it)");
            }
            Driver::Epoll
        }
    };
    let threads = match config.io.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let identities =
        Arc::new(IdentityStore::from_config(&config.identities).map_err(StartError::Config)?);
    let (gate, policy) = command_gate(&config)?;
    let recorder = open_recorder(&config)?;
    let (gate, recording) = match (&recorder, &config.recording) {
        (Some(recorder), Some(settings)) => {
            let gate: Arc<dyn CommandGate> = Arc::new(RecordingGate {
                inner: gate,
                recorder: recorder.clone(),
            });
            let roles = policy.map(|p| {
                Box::new(move |identity: &crate::auth::Identity| {
                    let policy = p.policy();
                    let set = policy.roles_of(&identity.name, &identity.groups);
                    policy
                        .role_names_of(&set)
                        .into_iter()
                        .map(str::to_owned)
                        .collect()
                }) as crate::session::phases::RolesOf
            });
            let recording = Arc::new(Recording {
                config: settings.clone(),
                roles,
            });
            (gate, Some(recording))
        }
        _ => (gate, None),
    };
    let registry = Arc::new(SessionRegistry::default());
    let connections = Arc::new(AtomicUsize::new(0));
    // Session ids are unique within the audit log: new ones number after the last recorded.
    let first_id = recorder.as_ref().map_or(0, Recorder::last_session_id) + 1;
    let next_id = Arc::new(AtomicU64::new(first_id));

    // Bind every listener once per worker (SO_REUSEPORT), all on the same port.
    let mut per_worker: Vec<Vec<(std::net::TcpListener, ListenerShared)>> =
        (0..threads).map(|_| Vec::new()).collect();
    let mut addrs = Vec::new();
    for l in &config.listeners {
        let target = config.target(&l.target).ok_or_else(|| {
            StartError::Config(format!(
                "listener {:?}: unknown target {:?}",
                l.name, l.target
            ))
        })?;
        let shared = ListenerShared {
            session: Arc::new(session_config(
                &config,
                l,
                target,
                identities.clone(),
                registry.clone(),
                events.clone(),
                gate.clone(),
                recording.clone(),
            )?),
            upstream: resolve(&target.address).map_err(StartError::Config)?,
            connections: connections.clone(),
            max_connections: config.limits.max_connections,
            next_id: next_id.clone(),
            record: recorder.as_ref().map(|r| conn::RecordTo {
                recorder: r.clone(),
                strict: config
                    .recording
                    .as_ref()
                    .is_some_and(|c| c.durability == crate::config::Durability::Strict),
                listener: Arc::from(l.name.as_str()),
            }),
        };
        learn_target(&shared, &config);
        let mut addr = l.address;
        for worker in per_worker.iter_mut() {
            let listener =
                bind_reuseport(addr).map_err(|source| StartError::Bind { addr, source })?;
            addr = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            worker.push((listener, shared.clone()));
        }
        info!(listener = %l.name, %addr, target = %l.target, ?driver, threads, "listening");
        addrs.push(addr);
    }

    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for (n, listeners) in per_worker.into_iter().enumerate() {
        let rx = rx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("gatehouse-{n}"))
            .spawn(move || {
                let res = match driver {
                    Driver::Uring => uring::run_worker(listeners, rx),
                    Driver::Epoll => epoll::run_worker(listeners, rx),
                };
                if let Err(e) = res {
                    tracing::error!(error = %e, "worker stopped");
                }
            })
            .map_err(|e| StartError::Config(format!("cannot start worker thread: {e}")))?;
        workers.push(handle);
    }
    Ok(ServerHandle {
        addrs,
        driver,
        shutdown,
        workers,
        recorder,
    })
}

impl ServerHandle {
    /// The bound address of each listener, in config order (port 0 resolved).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The driver in use.
    pub fn driver(&self) -> Driver {
        self.driver
    }

    /// Stops accepting, closes every session and joins the worker threads.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for w in self.workers {
            let _ = w.join();
        }
        if let Some(recorder) = self.recorder {
            recorder.close();
        }
    }

    /// Blocks until SIGINT or SIGTERM, then shuts down.
    pub fn wait(self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("signal runtime");
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                    _ = hup.recv() => reload_policy(),
                }
            }
        });
        info!("shutting down");
        self.shutdown();
    }
}

/// Hands an accepted connection to a session task, or refuses it when at the limit.
pub(crate) fn accept<R: conn::Runtime>(
    stream: R::Stream,
    peer: SocketAddr,
    shared: &ListenerShared,
) {
    use conn::Stream;
    let open = shared.connections.fetch_add(1, Ordering::AcqRel);
    let guard = ConnectionSlot(shared.connections.clone());
    if open >= shared.max_connections {
        warn!(%peer, limit = shared.max_connections, "too many connections");
        R::spawn(async move {
            let _guard = guard;
            let mut err = Vec::new();
            write_packet_with(&mut err, 0, |o| {
                encode_gateway_err(o, ErrorCode::ER_CON_COUNT_ERROR, "Too many connections")
            });
            let _ = stream.write_all(err).await;
            stream.shutdown();
        });
        return;
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let cfg = shared.session.clone();
    let upstream = shared.upstream;
    let record = shared.record.clone();
    R::spawn(async move {
        let _guard = guard;
        conn::serve::<R>(stream, peer, cfg, upstream, id, record).await;
    });
}

/// Backs off after a failed accept (e.g. out of file descriptors) instead of spinning.
pub(crate) async fn accept_error(e: &std::io::Error) {
    warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|e| format!("target address {address:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("target address {address:?} resolves to nothing"))
}

#[allow(clippy::too_many_arguments)]
fn session_config(
    config: &Config,
    listener: &ListenerConfig,
    target: &TargetConfig,
    identities: Arc<IdentityStore>,
    registry: Arc<SessionRegistry>,
    events: Arc<dyn EventSink>,
    gate: Arc<dyn CommandGate>,
    recording: Option<Arc<Recording>>,
) -> Result<SessionConfig, StartError> {
    let client_tls = match &listener.tls {
        None => None,
        Some(t) => Some(Arc::new(server_tls(&t.cert, &t.key).map_err(|e| {
            StartError::Config(format!("listener {:?} TLS: {e}", listener.name))
        })?)),
    };
    let upstream_tls = match target.tls.mode {
        UpstreamTlsMode::Disabled => None,
        UpstreamTlsMode::Required => {
            let ca = target.tls.ca.as_ref().ok_or_else(|| {
                StartError::Config(format!(
                    "target {:?}: tls.mode = \"required\" needs tls.ca",
                    target.name
                ))
            })?;
            let host = target.tls.server_name.clone().unwrap_or_else(|| {
                target
                    .address
                    .rsplit_once(':')
                    .map_or(target.address.clone(), |(h, _)| h.to_owned())
            });
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
                StartError::Config(format!(
                    "target {:?}: server name {host:?}: {e}",
                    target.name
                ))
            })?;
            let cfg = upstream_client_tls(ca)
                .map_err(|e| StartError::Config(format!("target {:?} TLS: {e}", target.name)))?;
            Some((Arc::new(cfg), name))
        }
    };
    // The gateway's own upstream credential: always there for identity-mode listeners
    // (validation requires it); a passthrough listener relays each client's own login and
    // never reads it.
    let auth = listener.auth.mode();
    let (upstream_user, upstream_password) = match &target.user {
        _ if auth == AuthMode::Passthrough => (String::new(), String::new()),
        Some(user) if target.has_credential() => (
            user.clone(),
            target
                .password()
                .map_err(|e| StartError::Config(e.to_string()))?,
        ),
        _ => {
            return Err(StartError::Config(format!(
                "listener {:?} (auth = \"identity\"): target {:?} has no user and password \
                 for the gateway to log in with",
                listener.name, target.name
            )))
        }
    };
    Ok(SessionConfig {
        auth,
        target_name: target.name.clone(),
        target: Arc::new(TargetInfo::default()),
        identities,
        client_tls,
        require_client_tls: listener.tls.as_ref().is_some_and(|t| t.require),
        upstream_user,
        upstream_password,
        upstream_tls,
        upstream_public_key: match &target.server_public_key {
            None => None,
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                StartError::Config(format!(
                    "target {:?}: server_public_key {}: {e}",
                    target.name,
                    path.display()
                ))
            })?),
        },
        limits: config.limits.clone(),
        gate,
        rows: Arc::new(PassThrough),
        registry,
        events,
        recording,
    })
}

/// The audit log, when `[recording]` is configured.
fn open_recorder(config: &Config) -> Result<Option<Recorder>, StartError> {
    let Some(settings) = &config.recording else {
        warn!("no [recording] configured: sessions are not recorded");
        return Ok(None);
    };
    // The session index (for `sessions list|show`) follows the log on a thread of its own;
    // it is derived data, so it never holds recording up or stops it.
    let index = crate::record::index::SessionIndex::for_recorder(&settings.dir);
    let recorder = Recorder::open(settings, vec![Box::new(index)])
        .map_err(|e| StartError::Config(format!("cannot open the audit log: {e}")))?;
    info!(dir = %settings.dir.display(), durability = ?settings.durability, "recording sessions");
    Ok(Some(recorder))
}

/// Fail closed on recording: while the audit log cannot be written, every command that
/// would run something is refused (and says why); otherwise the inner gate decides.
struct RecordingGate {
    inner: Arc<dyn CommandGate>,
    recorder: Recorder,
}

impl RecordingGate {
    fn refusal(&self, command: &CommandPacket<'_>) -> Option<Decision> {
        if self.recorder.is_healthy() {
            return None;
        }
        // Commands with no response (or nothing to run) stay allowed: refusing them would
        // answer a client that reads no answer.
        if matches!(
            command,
            CommandPacket::Ping
                | CommandPacket::StmtClose { .. }
                | CommandPacket::StmtSendLongData { .. }
        ) {
            return None;
        }
        let why = match self.recorder.health() {
            crate::record::Health::Failing { error, .. } => error,
            crate::record::Health::Ok => return None,
        };
        Some(Decision::Refuse {
            code: ErrorCode {
                code: 1290,
                sqlstate: "HY000",
            },
            message: format!(
                "Gatehouse: the audit log cannot be written ({why}); statements are refused \
                 until recording works again"
            ),
        })
    }
}

impl CommandGate for RecordingGate {
    fn decide(&self, ctx: &CommandContext<'_>, command: &CommandPacket<'_>) -> Decision {
        self.refusal(command)
            .unwrap_or_else(|| self.inner.decide(ctx, command))
    }

    fn decide_noted(
        &self,
        ctx: &CommandContext<'_>,
        command: &CommandPacket<'_>,
        notes: &mut Vec<crate::record::event::RuleNote>,
    ) -> Decision {
        self.refusal(command)
            .unwrap_or_else(|| self.inner.decide_noted(ctx, command, notes))
    }
}

/// The statement gate: the configured policy (watched for changes), or, with no `[policy]`,
/// everything the wire layer understands. Also the policy gate itself, when there is one.
fn command_gate(
    config: &Config,
) -> Result<(Arc<dyn CommandGate>, Option<PolicyHandle>), StartError> {
    let Some(policy) = &config.policy else {
        warn!("no [policy] configured: every statement is allowed");
        return Ok((Arc::new(AllowAll), None));
    };
    let gate = crate::policy::PolicyGate::load(&policy.paths).map_err(|errors| {
        StartError::Config(format!(
            "policy:\n  {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    })?;
    let gate = Arc::new(gate);
    info!(version = gate.version(), files = ?policy.paths, "policy loaded");
    crate::policy::spawn_watcher(gate.clone());
    *POLICY.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&gate);
    Ok((gate.clone(), Some(gate)))
}

/// The policy gate, for what needs the policy itself (capture rules naming roles).
type PolicyHandle = Arc<crate::policy::PolicyGate>;

/// The running policy, for SIGHUP.
static POLICY: std::sync::Mutex<std::sync::Weak<crate::policy::PolicyGate>> =
    std::sync::Mutex::new(std::sync::Weak::new());

/// SIGHUP: reload the policy now (a broken file keeps the previous policy and logs why).
fn reload_policy() {
    let Some(gate) = POLICY.lock().unwrap_or_else(|e| e.into_inner()).upgrade() else {
        info!("SIGHUP: no policy configured");
        return;
    };
    match gate.reload() {
        Ok(version) => info!(version, "SIGHUP: policy reloaded"),
        Err(errors) => {
            for e in errors {
                warn!(error = %e, "SIGHUP: policy not reloaded, the previous one stays in force");
            }
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).map_err(|e| format!("{}: {e}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).map_err(|e| format!("{}: {e}", key.display()))?,
    ))
    .map_err(|e| format!("{}: {e}", key.display()))?
    .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())
}

fn upstream_client_tls(ca: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(ca).map_err(|e| format!("{}: {e}", ca.display()))?,
    )) {
        roots
            .add(cert.map_err(|e| format!("{}: {e}", ca.display()))?)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Reads the target's greeting once at start so the first client is greeted as the target
/// would greet it (version string, capabilities). Best effort: a target that is down now is
/// learned from the first session that reaches it.
fn learn_target(shared: &ListenerShared, config: &Config) {
    use std::io::Read;
    let timeout = config.limits.connect_timeout().min(Duration::from_secs(2));
    let Ok(mut s) = TcpStream::connect_timeout(&shared.upstream, timeout) else {
        warn!(target = %shared.session.target_name, addr = %shared.upstream, "target unreachable at start");
        return;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n @ 1..) = s.read(&mut chunk) {
        buf.extend_from_slice(&chunk[..n]);
        if let Ok(Some(p)) = parse_packet(&buf, 1 << 16) {
            if let Ok(g) = parse_handshake_v10(&p.payload) {
                shared.session.target.learn(&g);
                info!(target = %shared.session.target_name, version = %String::from_utf8_lossy(g.server_version), "target learned");
            }
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str) -> Result<SessionConfig, StartError> {
        let config = Config::from_toml(text, "t.toml").unwrap();
        session_config(
            &config,
            &config.listeners[0],
            &config.targets[0],
            Arc::new(IdentityStore::from_config(&config.identities).unwrap()),
            Arc::default(),
            Arc::new(DiscardEvents),
            Arc::new(AllowAll),
            None,
        )
    }

    const PASSTHROUGH: &str = "[[listener]]\nname = \"adopt\"\naddress = \"127.0.0.1:0\"\n\
        target = \"db\"\nauth = \"passthrough\"\n\n[[target]]\nname = \"db\"\naddress = \"h:1\"\n";

    #[test]
    fn passthrough_without_credential_reads_nothing() {
        let s = build(PASSTHROUGH).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.auth, AuthMode::Passthrough);
        assert_eq!(s.upstream_user, "");
        assert_eq!(s.upstream_password, "");
    }

    #[test]
    fn identity_listener_gets_the_held_credential() {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-io-credential-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let text = PASSTHROUGH.replace("auth = \"passthrough\"\n", "")
            + &format!(
                "user = \"app\"\npassword_file = {:?}\n",
                file.display().to_string()
            );
        let s = build(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.auth, AuthMode::GatewayIdentity);
        assert_eq!(s.upstream_user, "app");
        assert_eq!(s.upstream_password, "s3cret");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
