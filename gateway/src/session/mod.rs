//! The per-connection state machine, sans-IO: bytes in, bytes and events out.
//!
//! A [`Session`] stands between one client connection and its upstream connection. It greets
//! the client itself, authenticates it against gateway identities, logs in to the upstream with
//! the credential the gateway holds, then relays the command phase — asking the
//! [`phases::CommandGate`] before each command and passing every row through the
//! [`phases::RowTransform`].
//!
//! # Driving a session
//!
//! Inputs (`handle_*`): [`Session::handle_client`], [`Session::handle_server`],
//! [`Session::handle_server_connected`] / [`Session::handle_server_unreachable`],
//! [`Session::handle_client_eof`], [`Session::handle_server_eof`],
//! [`Session::handle_timeout`], [`Session::handle_approval`].
//!
//! Outputs (`poll_*`), to drain after every input, in this order:
//! 1. [`Session::poll_event`] until `None` — it may ask to [`Event::ConnectUpstream`];
//! 2. [`Session::poll_transmit`] for each [`Peer`], writing what it returns to that socket;
//! 3. [`Session::poll_timeout`] to arm the timer, and [`Session::is_closed`] to finish.
//!
//! The session owns no socket, no runtime and no clock: time comes in as `now`.
//!
//! ```text
//! ExpectHandshakeResponse ─▶ ClientAuth* ─▶ ConnectingUpstream ─▶ UpstreamGreeting
//!   ─▶ [UpstreamTls] ─▶ UpstreamAuth ─▶ Idle ⇄ Response | Held | ChangeUser* ─▶ Closed
//! ```

mod channel;
pub mod client_auth;
pub mod kill;
mod passthrough;
pub mod phases;
pub mod response;
/// The upstream login, also used by `gatehouse replay` to log in as the gateway does.
pub(crate) mod upstream;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::auth::{Identity, IdentityStore};
use crate::config::LimitsConfig;
use crate::wire::command::{parse_command, ChangeUser, CommandPacket};
use crate::wire::consts::mariadb_caps;
use crate::wire::frame::{parse_packet, write_packet, write_packet_with, FrameError, Packet};
use crate::wire::handshake::{
    encode_handshake_response, encode_handshake_v10, encode_ssl_request, parse_handshake_response,
    parse_handshake_v10, parse_ssl_request, HandshakeResponse41, HandshakeV10, SSL_REQUEST_LEN,
};
use crate::wire::response::{encode_gateway_err, encode_ok, OkPacket, ERR_HEADER, OK_HEADER};
use crate::wire::resultset::parse_column_definition;
use crate::wire::{CapabilityFlags, Command, ErrorCode, StatusFlags};

use channel::Channel;
use client_auth::{AuthStep, ClientAuth};
use passthrough::{ClientVerdict, RelayedLogin, ServerVerdict};
use phases::{ColumnInfo, CommandContext, CommandGate, Decision, RowTransform};
use response::{Expect, Outcome, PacketRole, Progress, Response};
use upstream::{LoginStep, UpstreamLogin};

pub use channel::ChannelError;

/// Largest packet before the client is authenticated: handshake responses and auth data are
/// small, so an unauthenticated peer may not make the gateway buffer megabytes.
const MAX_PREAUTH_PACKET: usize = 64 << 10;

/// What a client may send ahead (beyond one whole packet) while the session is not reading.
const QUEUED_SLACK: usize = 1 << 20;

/// Largest server packet the gateway accepts (MySQL's own max_allowed_packet ceiling).
const MAX_SERVER_PACKET: usize = 1 << 30;

/// Capabilities whose meaning or packet layout must be the same on both sides, because the
/// gateway forwards the server's bytes to the client unchanged.
const MUST_MATCH: CapabilityFlags = CapabilityFlags::CLIENT_PROTOCOL_41
    .union(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    .union(CapabilityFlags::CLIENT_SESSION_TRACK)
    .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_MULTI_STATEMENTS)
    .union(CapabilityFlags::CLIENT_TRANSACTIONS)
    .union(CapabilityFlags::CLIENT_FOUND_ROWS);

/// Which side of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The agent's client connection.
    Client,
    /// The upstream MySQL connection.
    Server,
}

/// What a target has told the gateway about itself, learned from its greetings and shared by
/// every session to that target (so the gateway greets clients as the target would).
#[derive(Debug, Default)]
pub struct TargetInfo {
    learned: RwLock<Option<LearnedTarget>>,
}

/// A target's self-description.
#[derive(Debug, Clone)]
pub struct LearnedTarget {
    /// Its version string.
    pub server_version: String,
    /// Its capabilities.
    pub capabilities: CapabilityFlags,
    /// Its default collation.
    pub charset: u8,
    /// MariaDB's extended capabilities (0 for MySQL).
    pub mariadb_capabilities: u32,
}

impl TargetInfo {
    /// Records what a greeting said.
    pub fn learn(&self, greeting: &HandshakeV10<'_>) {
        let learned = LearnedTarget {
            server_version: String::from_utf8_lossy(greeting.server_version).into_owned(),
            capabilities: greeting.capabilities,
            charset: greeting.charset,
            mariadb_capabilities: mariadb_capabilities(
                greeting.capabilities,
                greeting.mariadb_capabilities,
            ),
        };
        *self.learned.write().unwrap_or_else(|e| e.into_inner()) = Some(learned);
    }

    /// What is known, if a greeting has been seen.
    pub fn get(&self) -> Option<LearnedTarget> {
        self.learned
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// How a listener authenticates its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Clients log in as gateway identities; the gateway logs in upstream with the credential
    /// it holds. No client password ever reaches the upstream.
    #[default]
    GatewayIdentity,
    /// Adoption mode: the client's own MySQL login is relayed to the upstream, which accepts or
    /// refuses it; the session's identity is the MySQL account (`user@client-address`).
    Passthrough,
}

/// Everything a session needs, shared by all sessions of a listener.
pub struct SessionConfig {
    /// How clients authenticate.
    pub auth: AuthMode,
    /// Target name (logs, errors).
    pub target_name: String,
    /// What the target is like.
    pub target: Arc<TargetInfo>,
    /// Gateway identities.
    pub identities: Arc<IdentityStore>,
    /// TLS offered to clients.
    pub client_tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse clients that do not upgrade to TLS.
    pub require_client_tls: bool,
    /// The upstream account (unused in [`AuthMode::Passthrough`]).
    pub upstream_user: String,
    /// Its password (held by the gateway, never seen by clients; unused in passthrough).
    pub upstream_password: String,
    /// The upstream's RSA public key (PEM), pinned for caching_sha2 full authentication
    /// without TLS.
    pub upstream_public_key: Option<Vec<u8>>,
    /// TLS to the upstream: client config and the name to verify.
    pub upstream_tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// Limits.
    pub limits: LimitsConfig,
    /// Decides on every command.
    pub gate: Arc<dyn CommandGate>,
    /// Rewrites rows.
    pub rows: Arc<dyn RowTransform>,
    /// Live sessions of the whole gateway (KILL translation).
    pub registry: Arc<kill::SessionRegistry>,
    /// Where the driver hands every event.
    pub events: Arc<dyn phases::EventSink>,
    /// Session recording: `None` when sessions are not recorded (no statement events, no
    /// result hashes).
    pub recording: Option<Arc<phases::Recording>>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// COM_QUIT.
    ClientQuit,
    /// The client closed its socket.
    ClientGone,
    /// The upstream closed.
    UpstreamGone,
    /// Could not reach or log in to the upstream.
    UpstreamUnavailable(String),
    /// Authentication failed.
    AuthFailed,
    /// Handshake or idle timeout.
    Timeout(&'static str),
    /// The client broke the protocol.
    ProtocolError(String),
    /// The upstream broke the protocol or misbehaved.
    UpstreamProtocolError(String),
}

/// The result of one command, for the recorder.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// The command byte.
    pub command: Command,
    /// Statement text (COM_QUERY, COM_STMT_PREPARE), lossily decoded.
    pub sql: Option<String>,
    /// Statement id (COM_STMT_*).
    pub stmt_id: Option<u32>,
    /// Whether it was forwarded, refused (with code) or released after a hold.
    pub refused: Option<u16>,
    /// Counters from the response.
    pub outcome: Outcome,
    /// When the command arrived.
    pub received: Instant,
    /// When its response ended.
    pub finished: Instant,
    /// Bytes sent to the client in the response.
    pub response_bytes: u64,
    /// The command's number within the session (as in its [`Event::Statement`]).
    pub n: u64,
    /// The refusal is the gate's, already carried by the command's [`Event::Statement`].
    pub refused_by_gate: bool,
    /// When it was written upstream (`None`: it was not).
    pub forwarded: Option<Instant>,
    /// When the first packet of the response arrived.
    pub first_byte: Option<Instant>,
    /// BLAKE3 of the rows as the client received them (when recording captures hashes).
    pub result_hash: Option<[u8; 32]>,
    /// Row payloads as sent (when recording captures rows).
    pub captured: Option<Vec<Vec<u8>>>,
    /// Rows went beyond the capture limit.
    pub capture_truncated: bool,
}

/// Something the driver or the recorder must know.
#[derive(Debug, Clone)]
pub enum Event {
    /// Connect to the target now, then call [`Session::handle_server_connected`] (or
    /// [`Session::handle_server_unreachable`]).
    ConnectUpstream,
    /// The client is logged in and the upstream session is ready.
    Authenticated {
        /// Who.
        identity: Identity,
        /// How: `gateway` (a gateway identity) or `passthrough` (the upstream's own login),
        /// with the client's auth plugin.
        auth: String,
        /// After COM_CHANGE_USER (the session switched identity).
        change_user: bool,
        /// The upstream's connection id (matches its process list).
        upstream_connection_id: u32,
        /// Client TLS, if any.
        tls: Option<String>,
    },
    /// A command was received and decided, before anything is forwarded (only when the
    /// session is recorded). With strict durability the driver writes nothing upstream until
    /// this is on disk.
    Statement(Instant, Box<crate::record::event::StatementEntry>),
    /// A command finished (or was refused).
    Command(CommandRecord),
    /// A command is held for approval.
    ApprovalRequested {
        /// The request id from the gate.
        request_id: u64,
        /// The command's number within the session.
        n: u64,
    },
    /// The session ended.
    Closed(CloseReason),
}

/// A human's verdict on a held command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it.
    Approve,
    /// Refuse it with this reason.
    Deny(String),
}

enum State {
    ExpectHandshakeResponse,
    ClientAuth(ClientAuth),
    ConnectingUpstream,
    UpstreamGreeting,
    UpstreamTls,
    UpstreamAuth(UpstreamLogin),
    Idle,
    Response(Box<InFlight>),
    Held {
        request_id: u64,
        packet: Vec<u8>,
        received: Instant,
    },
    ChangeUserAuth(ClientAuth),
    ChangeUserReset {
        identity: Identity,
        schema: Vec<u8>,
    },
    ChangeUserInitDb {
        identity: Identity,
    },
    /// Passthrough: the client's login (or COM_CHANGE_USER) relayed to the upstream.
    Relayed(RelayedLogin),
    Closed,
}

/// A forwarded command whose response is streaming back.
struct InFlight {
    response: Response,
    record: CommandRecord,
    /// Columns of the current result set (only kept when rows are transformed).
    columns: Vec<ColumnInfo>,
    /// Schema to adopt if the command (COM_INIT_DB) succeeds.
    new_schema: Option<String>,
    /// What a COM_QUERY does to the session's database and lexical mode.
    effects: Option<crate::sql::Effects>,
    /// COM_STMT_PREPARE: the SQL, kept under the statement id the server assigns.
    prepared_text: Option<Arc<[u8]>>,
    /// What recording keeps of the rows.
    capture: RowCapture,
}

/// The rows of one response as recording keeps them.
#[derive(Default)]
struct RowCapture {
    hasher: Option<crate::record::ResultHasher>,
    rows: Option<Vec<Vec<u8>>>,
    bytes: usize,
    limit: usize,
    truncated: bool,
    /// Result sets whose end the hasher has marked.
    ended: u32,
}

impl RowCapture {
    fn new(capture: crate::config::Capture, limit: usize) -> RowCapture {
        use crate::config::Capture;
        RowCapture {
            hasher: (capture != Capture::None).then(Default::default),
            rows: (capture == Capture::Rows).then(Vec::new),
            limit,
            ..RowCapture::default()
        }
    }

    fn is_off(&self) -> bool {
        self.hasher.is_none()
    }

    /// A row payload as the client receives it.
    fn row(&mut self, payload: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.row(payload);
        }
        if let Some(rows) = &mut self.rows {
            if self.bytes + payload.len() <= self.limit {
                self.bytes += payload.len();
                rows.push(payload.to_vec());
            } else {
                self.truncated = true;
            }
        }
    }

    /// Marks result sets that ended (the response's count of ended sets is `ended`).
    fn sets_ended(&mut self, ended: u32) {
        if let Some(h) = &mut self.hasher {
            while self.ended < ended {
                h.end_of_result_set();
                self.ended += 1;
            }
        }
    }
}

/// A prepared statement as the session knows it.
#[derive(Debug, Clone)]
struct Prepared {
    /// Its SQL: what every EXECUTE is decided on.
    sql: Arc<[u8]>,
    /// How many parameters it has.
    params: u16,
    /// The parameter types the last EXECUTE bound (later ones may not resend them).
    bound_types: Option<Arc<[(crate::wire::binary::ColumnType, u8)]>>,
    /// Parameters given with COM_STMT_SEND_LONG_DATA since the last EXECUTE.
    long_data: Vec<bool>,
}

/// What the client's handshake response told us, kept for the upstream login.
#[derive(Default)]
struct ClientHello {
    user: String,
    database: Option<Vec<u8>>,
    charset: u8,
    attrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One client connection and its upstream connection.
pub struct Session {
    cfg: Arc<SessionConfig>,
    id: u64,
    peer: SocketAddr,
    state: State,
    client: Channel,
    server: Channel,
    nonce: [u8; 20],
    /// Capabilities agreed with the client (and requested from the upstream).
    caps: CapabilityFlags,
    /// Sequence id of the last packet from the client.
    client_seq: u8,
    /// Sequence id of the last packet from the server.
    server_seq: u8,
    /// What to add to the server's sequence ids on the way to the client (non-zero only after
    /// a row transform changed how many frames a row takes).
    seq_shift: u8,
    /// Column definitions of open cursors, by statement id (kept only when rows are
    /// transformed: COM_STMT_FETCH rows need the columns the EXECUTE announced).
    cursor_columns: std::collections::HashMap<u32, Vec<ColumnInfo>>,
    /// Each prepared statement, by statement id: its SQL (what every EXECUTE is decided on)
    /// and parameters.
    prepared_sql: std::collections::HashMap<u32, Prepared>,
    /// Commands received so far (numbers each command for the recorder).
    commands: u64,
    /// What recording keeps of result rows in this session.
    capture: crate::config::Capture,
    /// How the session lexes SQL (`None`: changed in a way the gateway cannot follow).
    lex_mode: Option<crate::sql::Mode>,
    /// The upstream's flavour and version, from its greeting.
    server_kind: crate::sql::Server,
    hello: ClientHello,
    identity: Option<Identity>,
    database: Option<String>,
    upstream_connection_id: u32,
    deadline: Option<Instant>,
    /// `Event::Closed` has been emitted (exactly once per session).
    closed_reported: bool,
    /// Capabilities offered in the greeting (what the client may negotiate).
    offered: CapabilityFlags,
    /// MariaDB extended capabilities offered in the greeting.
    offered_mariadb: u32,
    /// MariaDB extended capabilities agreed with the client (and requested upstream).
    mariadb_caps: u32,
    /// Greeting plugin and nonce, kept until the login response can be sent.
    pending_login: Option<(String, Vec<u8>)>,
    /// Passthrough: the client's first auth response, kept until the upstream link is ready.
    relayed_first: Option<(Vec<u8>, RelayedLogin)>,
    events: VecDeque<Event>,
    scratch: Vec<u8>,
}

impl Session {
    /// A new session for a client that just connected; the greeting is queued at once.
    /// `random` seeds the authentication nonce (the session has no randomness of its own).
    pub fn new(
        cfg: Arc<SessionConfig>,
        id: u64,
        peer: SocketAddr,
        now: Instant,
        random: [u8; 20],
    ) -> Session {
        // Nonces are printable ASCII: some clients treat them as C strings.
        let nonce = random.map(|b| b % 94 + 33);
        let mut s = Session {
            deadline: Some(now + cfg.limits.handshake_timeout()),
            cfg,
            id,
            peer,
            state: State::ExpectHandshakeResponse,
            client: Channel::default(),
            server: Channel::default(),
            nonce,
            caps: CapabilityFlags::empty(),
            client_seq: 0,
            server_seq: 0,
            seq_shift: 0,
            cursor_columns: Default::default(),
            prepared_sql: Default::default(),
            commands: 0,
            capture: crate::config::Capture::None,
            lex_mode: Some(crate::sql::Mode::DEFAULT),
            server_kind: crate::sql::Server::MariaDb { version_id: None },
            hello: ClientHello::default(),
            identity: None,
            database: None,
            upstream_connection_id: 0,
            pending_login: None,
            relayed_first: None,
            closed_reported: false,
            offered: CapabilityFlags::empty(),
            offered_mariadb: 0,
            mariadb_caps: 0,
            events: VecDeque::new(),
            scratch: Vec::new(),
        };
        match s.cfg.auth {
            AuthMode::GatewayIdentity => {
                let nonce = s.nonce;
                s.send_greeting(&nonce, client_auth::CACHING_SHA2.as_bytes());
            }
            AuthMode::Passthrough => {
                // The client is greeted with the upstream's own greeting (its nonce), so the
                // upstream comes first. An error before that greeting goes out as packet 0.
                s.client_seq = u8::MAX;
                s.state = State::ConnectingUpstream;
                s.events.push_back(Event::ConnectUpstream);
            }
        }
        s
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The configuration the session runs with.
    pub fn config(&self) -> &Arc<SessionConfig> {
        &self.cfg
    }

    /// Who is logged in, once authenticated.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether the session is over (drain [`Session::poll_transmit`] first, then close).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Moves the bytes waiting for `to` into `buf` (replacing its contents, keeping both
    /// allocations). Returns whether there were any.
    pub fn poll_transmit(&mut self, to: Peer, buf: &mut Vec<u8>) -> bool {
        match to {
            Peer::Client => self.client.take_outbound(buf),
            Peer::Server => self.server.take_outbound(buf),
        }
        !buf.is_empty()
    }

    /// Bytes waiting for `to` (back-pressure: stop reading the other side when large).
    pub fn pending(&self, to: Peer) -> usize {
        match to {
            Peer::Client => self.client.pending(),
            Peer::Server => self.server.pending(),
        }
    }

    // ----- inputs ---------------------------------------------------------------------------

    /// Bytes arrived from the client.
    pub fn handle_client(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() {
            return;
        }
        if self.client.is_plain_and_empty() {
            // Hot path: parse straight from the driver's read buffer, keep only a partial tail.
            let used = self.process_client(now, data);
            self.client.inbound.extend_from_slice(&data[used..]);
        } else {
            if let Err(e) = self.client.feed(data) {
                return self.close(CloseReason::ProtocolError(e.to_string()));
            }
            self.resume_client(now);
        }
        // Bytes the session is not reading yet (a command is in flight, held or logging in)
        // may not pile up without bound.
        if self.client.inbound.len() > self.max_client_packet() + QUEUED_SLACK {
            warn!(
                session = self.id,
                queued = self.client.inbound.len(),
                "client sent too much ahead"
            );
            self.send_client_err_seq(
                self.next_client_seq(),
                ErrorCode::ER_NET_PACKET_TOO_LARGE,
                "Gatehouse: too much data sent ahead of the server's answer",
            );
            return self.close(CloseReason::ProtocolError("too much data queued".into()));
        }
        if self.client.closed {
            self.handle_client_eof(now);
        }
    }

    /// The client closed its side (or the socket failed).
    pub fn handle_client_eof(&mut self, _now: Instant) {
        if self.is_closed() {
            return;
        }
        debug!(session = self.id, "client went away");
        self.close(CloseReason::ClientGone);
    }

    /// The TCP connection to the upstream is up.
    pub fn handle_server_connected(&mut self, _now: Instant) {
        if matches!(self.state, State::ConnectingUpstream) {
            self.state = State::UpstreamGreeting;
        }
    }

    /// The upstream could not be reached.
    pub fn handle_server_unreachable(&mut self, _now: Instant, reason: &str) {
        if self.closed_reported {
            return;
        }
        warn!(session = self.id, target = %self.cfg.target_name, %reason, "upstream unreachable");
        let msg = format!(
            "Gatehouse: target '{}' is unavailable, try again later",
            self.cfg.target_name
        );
        self.send_client_err(ErrorCode::CR_CONN_HOST_ERROR, &msg);
        self.close(CloseReason::UpstreamUnavailable(reason.to_owned()));
    }

    /// Bytes arrived from the upstream.
    pub fn handle_server(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() {
            return;
        }
        if self.server.is_plain_and_empty() {
            let used = self.process_server(now, data);
            self.server.inbound.extend_from_slice(&data[used..]);
        } else {
            if let Err(e) = self.server.feed(data) {
                return self.upstream_failed(format!("upstream {e}"));
            }
            if matches!(self.state, State::UpstreamTls) && !self.server.is_handshaking() {
                self.send_upstream_handshake_response();
            }
            self.resume(now, Peer::Server);
        }
        if self.server.closed {
            self.handle_server_eof(now);
        }
        // A finished response may have unblocked commands the client already sent.
        if matches!(self.state, State::Idle) && !self.client.inbound.is_empty() {
            self.resume_client(now);
        }
    }

    /// The upstream closed its side.
    pub fn handle_server_eof(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            State::ConnectingUpstream
            | State::UpstreamGreeting
            | State::UpstreamTls
            | State::UpstreamAuth(_) => {
                self.handle_server_unreachable(_now, "upstream closed during login")
            }
            State::Relayed(ref login) if login.change_user_schema.is_none() => {
                self.handle_server_unreachable(_now, "upstream closed during login")
            }
            State::Idle => {
                // As directly: the client finds the connection gone when it next sends
                // (2006). An error packet now would answer a command it has not sent yet.
                warn!(
                    session = self.id,
                    "upstream closed the idle connection (timeout or kill)"
                );
                self.close(CloseReason::UpstreamGone);
            }
            State::Response(_) => {
                // Killed mid-command (KILL, shutdown): the server closes without a word, and
                // so does the gateway — the client's library reports the lost connection
                // (2013) exactly as it would directly.
                warn!(
                    session = self.id,
                    "upstream closed the connection during a command"
                );
                self.close(CloseReason::UpstreamGone);
            }
            _ => {
                warn!(session = self.id, "upstream closed the connection");
                let seq = self.next_client_seq();
                self.send_client_err_seq(
                    seq,
                    ErrorCode::CR_SERVER_LOST,
                    "Gatehouse: lost connection to the upstream server",
                );
                self.close(CloseReason::UpstreamGone);
            }
        }
    }

    /// Time passed; call at or after [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline || self.is_closed() {
            return;
        }
        match self.state {
            State::Idle => {
                info!(session = self.id, "idle timeout");
                self.send_client_err_seq(
                    0,
                    ErrorCode {
                        code: 4031,
                        sqlstate: "HY000",
                    },
                    "The client was disconnected by the server because of inactivity.",
                );
                self.close(CloseReason::Timeout("idle"));
            }
            State::Response(_) | State::Held { .. } => {}
            State::ConnectingUpstream
            | State::UpstreamGreeting
            | State::UpstreamTls
            | State::UpstreamAuth(_) => {
                warn!(session = self.id, target = %self.cfg.target_name, "upstream login timed out");
                let msg = format!(
                    "Gatehouse: target '{}' did not answer in time, try again later",
                    self.cfg.target_name
                );
                self.send_client_err(ErrorCode::CR_CONN_HOST_ERROR, &msg);
                self.close(CloseReason::UpstreamUnavailable("login timed out".into()));
            }
            _ => {
                info!(session = self.id, peer = %self.peer, "handshake timeout");
                self.send_client_err(ErrorCode::ER_HANDSHAKE_ERROR, "Bad handshake: timed out");
                self.close(CloseReason::Timeout("handshake"));
            }
        }
    }

    /// A human decided on a held command.
    pub fn handle_approval(&mut self, now: Instant, request_id: u64, verdict: Verdict) {
        let State::Held {
            request_id: held, ..
        } = self.state
        else {
            return;
        };
        if held != request_id {
            return;
        }
        let State::Held {
            packet, received, ..
        } = std::mem::replace(&mut self.state, State::Idle)
        else {
            unreachable!()
        };
        match verdict {
            Verdict::Approve => {
                let p = parse_packet(&packet, usize::MAX)
                    .ok()
                    .flatten()
                    .expect("held packets were parsed before");
                let cmd = parse_command(&p.payload, self.caps).expect("held packets parsed");
                self.forward_translated(now, received, &cmd, &packet);
            }
            Verdict::Deny(reason) => {
                self.refuse(
                    now,
                    received,
                    None,
                    ErrorCode::ER_QUERY_INTERRUPTED,
                    &format!("Gatehouse: request {request_id} was denied: {reason}"),
                );
            }
        }
        if matches!(self.state, State::Idle) && !self.client.inbound.is_empty() {
            self.resume_client(now);
        }
    }

    // ----- client side ----------------------------------------------------------------------

    fn resume_client(&mut self, now: Instant) {
        self.resume(now, Peer::Client);
    }

    /// Handles what is buffered from `peer`, keeping the unprocessed rest.
    fn resume(&mut self, now: Instant, peer: Peer) {
        fn channel(s: &mut Session, peer: Peer) -> &mut Vec<u8> {
            match peer {
                Peer::Client => &mut s.client.inbound,
                Peer::Server => &mut s.server.inbound,
            }
        }
        let mut buf = std::mem::take(channel(self, peer));
        let used = match peer {
            Peer::Client => self.process_client(now, &buf),
            Peer::Server => self.process_server(now, &buf),
        };
        buf.drain(..used);
        // Anything buffered meanwhile (e.g. bytes after a TLS upgrade) goes after the rest.
        buf.extend_from_slice(channel(self, peer));
        *channel(self, peer) = buf;
    }

    /// Handles every whole client packet at the start of `buf` that the current state can
    /// take; returns how many bytes were consumed.
    fn process_client(&mut self, now: Instant, buf: &[u8]) -> usize {
        let mut used = 0;
        loop {
            if !self.accepts_client_packets() {
                return used;
            }
            let packet = match parse_packet(&buf[used..], self.max_client_packet()) {
                Ok(Some(p)) => p,
                Ok(None) => return used,
                Err(FrameError::TooLarge { len, max }) => {
                    let seq = crate::wire::frame::parse_header(&buf[used..]).map_or(0, |(_, s)| s);
                    if self.identity.is_none() {
                        // No handshake or auth packet is that big: this is not a MySQL client.
                        self.client_seq = seq;
                        self.bad_handshake(&format!("{len}-byte packet before authentication"));
                        return buf.len();
                    }
                    warn!(session = self.id, len, max, "client packet too large");
                    self.send_client_err_seq(
                        seq.wrapping_add(1),
                        ErrorCode::ER_NET_PACKET_TOO_LARGE,
                        "Got a packet bigger than 'max_allowed_packet' bytes",
                    );
                    self.close(CloseReason::ProtocolError("packet too large".into()));
                    return buf.len();
                }
                Err(e @ FrameError::OutOfOrder { .. }) => {
                    self.out_of_order(e.to_string());
                    return buf.len();
                }
            };
            let wire_len = packet.wire_len;
            let raw = &buf[used..used + wire_len];
            used += wire_len;
            let upgrade = self.on_client_packet(now, packet, raw);
            if upgrade {
                // SSLRequest: everything after it is TLS.
                let rest = &buf[used..];
                if let Err(e) = self.client.feed(rest) {
                    self.close(CloseReason::ProtocolError(e.to_string()));
                }
                return buf.len();
            }
        }
    }

    fn accepts_client_packets(&self) -> bool {
        matches!(
            self.state,
            State::ExpectHandshakeResponse
                | State::ClientAuth(_)
                | State::Idle
                | State::ChangeUserAuth(_)
                | State::Relayed(_)
        )
    }

    /// One whole client packet. Returns true when the channel just switched to TLS.
    fn on_client_packet(&mut self, now: Instant, packet: Packet<'_>, raw: &[u8]) -> bool {
        let expected = match self.state {
            State::Idle => 0,
            _ => self.client_seq.wrapping_add(1),
        };
        if packet.seq != expected {
            self.out_of_order(format!(
                "client packet has sequence id {}, expected {expected}",
                packet.seq
            ));
            return false;
        }
        self.client_seq = packet.last_seq;
        match std::mem::replace(&mut self.state, State::Closed) {
            State::ExpectHandshakeResponse => return self.on_handshake_response(&packet.payload),
            State::ClientAuth(auth) => {
                let step = client_auth::resume(
                    auth,
                    &self.cfg.identities,
                    &packet.payload,
                    &self.nonce,
                    self.client.is_tls(),
                );
                self.on_auth_step(step, false);
            }
            State::ChangeUserAuth(auth) => {
                let step = client_auth::resume(
                    auth,
                    &self.cfg.identities,
                    &packet.payload,
                    &self.nonce,
                    self.client.is_tls(),
                );
                self.on_auth_step(step, true);
            }
            State::Idle => {
                self.state = State::Idle;
                self.on_command(now, &packet.payload, raw);
            }
            State::Relayed(mut login) => {
                match login.on_client_packet(self.client.is_tls(), self.server.is_tls()) {
                    ClientVerdict::Relay => {
                        self.send_server_packet(&packet.payload);
                        self.state = State::Relayed(login);
                    }
                    ClientVerdict::Refuse(why) => self.refuse_insecure_login(&login.user, &why),
                }
            }
            other => self.state = other,
        }
        false
    }

    fn on_handshake_response(&mut self, payload: &[u8]) -> bool {
        let offered = self.offered;
        if payload.len() == SSL_REQUEST_LEN {
            let req = match parse_ssl_request(payload) {
                Ok(r) => r,
                Err(e) => {
                    self.bad_handshake(&e.to_string());
                    return false;
                }
            };
            let Some(tls) = self.cfg.client_tls.clone() else {
                self.bad_handshake("client asked for TLS, which this listener does not offer");
                return false;
            };
            if !req.capabilities.contains(CapabilityFlags::CLIENT_SSL) {
                self.bad_handshake("32-byte handshake response without CLIENT_SSL");
                return false;
            }
            match rustls::ServerConnection::new(tls) {
                Ok(conn) => self.client.start_tls(conn.into()),
                Err(e) => {
                    self.bad_handshake(&format!("TLS setup: {e}"));
                    return false;
                }
            }
            self.state = State::ExpectHandshakeResponse;
            return true;
        }
        let r = match parse_handshake_response(payload) {
            Ok(r) => r,
            Err(e) => {
                self.bad_handshake(&e.to_string());
                return false;
            }
        };
        if self.cfg.require_client_tls && !self.client.is_tls() {
            info!(session = self.id, peer = %self.peer, "refused: plaintext on a TLS-only listener");
            self.send_client_err(
                ErrorCode::ER_SECURE_TRANSPORT_REQUIRED,
                "Connections using insecure transport are prohibited by Gatehouse (use TLS)",
            );
            self.close(CloseReason::ProtocolError("TLS required".into()));
            return false;
        }
        self.caps = r.capabilities & offered;
        self.mariadb_caps =
            mariadb_capabilities(r.capabilities, r.mariadb_capabilities) & self.offered_mariadb;
        if !self.caps.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            self.bad_handshake("client does not speak protocol 4.1");
            return false;
        }
        let user = String::from_utf8_lossy(r.username).into_owned();
        self.hello = ClientHello {
            user: user.clone(),
            database: r.database.filter(|d| !d.is_empty()).map(<[u8]>::to_vec),
            charset: r.charset,
            attrs: r
                .connect_attrs
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
        };
        self.lex_mode = self.initial_lex_mode();
        let plugin =
            String::from_utf8_lossy(r.auth_plugin.unwrap_or(b"mysql_native_password")).into_owned();
        if self.cfg.auth == AuthMode::Passthrough {
            let login = RelayedLogin::new(user, plugin);
            let upstream_tls = self.cfg.upstream_tls.is_some();
            if let ClientVerdict::Refuse(why) =
                login.check_first_response(self.client.is_tls(), upstream_tls)
            {
                self.refuse_insecure_login(&login.user, &why);
                return false;
            }
            self.relayed_first = Some((r.auth_response.to_vec(), login));
            self.start_upstream_login();
            return false;
        }
        let step = client_auth::start(
            &self.cfg.identities,
            &user,
            &plugin,
            r.auth_response,
            &self.nonce,
            self.client.is_tls(),
        );
        self.on_auth_step(step, false);
        false
    }

    fn on_auth_step(&mut self, step: AuthStep, change_user: bool) {
        match step {
            AuthStep::Continue(payload, auth) => {
                self.send_client_packet(&payload);
                self.state = if change_user {
                    State::ChangeUserAuth(auth)
                } else {
                    State::ClientAuth(auth)
                };
            }
            AuthStep::Accepted(extra, identity) => {
                if let Some(p) = extra {
                    self.send_client_packet(&p);
                }
                info!(session = self.id, identity = %identity.name, peer = %self.peer, change_user, "client authenticated");
                if change_user {
                    // Reset the upstream session before handing it to the new identity.
                    self.server_seq = 0;
                    self.send_server_command(&CommandPacket::ResetConnection);
                    let schema = self.hello.database.clone().unwrap_or_default();
                    self.state = State::ChangeUserReset { identity, schema };
                } else {
                    self.identity = Some(identity);
                    self.state = State::ConnectingUpstream;
                    self.events.push_back(Event::ConnectUpstream);
                }
            }
            AuthStep::Refused(why) => {
                let user = self.hello.user.clone();
                warn!(session = self.id, user = %user, peer = %self.peer, reason = why, "authentication failed");
                let host = self.peer.ip();
                self.send_client_err(
                    ErrorCode::ER_ACCESS_DENIED_ERROR,
                    &format!("Access denied for user '{user}'@'{host}' (using password: YES)"),
                );
                self.close(CloseReason::AuthFailed);
            }
        }
    }

    fn on_command(&mut self, now: Instant, payload: &[u8], raw: &[u8]) {
        self.commands += 1;
        let cmd = match parse_command(payload, self.caps) {
            Ok(c) => c,
            Err(e) => {
                warn!(session = self.id, error = %e, "malformed command");
                let code = ErrorCode {
                    code: 1835,
                    sqlstate: "HY000",
                };
                let message = "Malformed communication packet";
                self.note_statement(now, None, "refuse", Vec::new(), Some((code, message)));
                return self.refuse_decided(now, now, None, code, message);
            }
        };
        match &cmd {
            CommandPacket::Unknown { command, .. } => {
                warn!(session = self.id, %command, "unknown command refused");
                let msg = format!("Gatehouse: unknown command {command} is not allowed");
                let code = ErrorCode::ER_UNKNOWN_COM_ERROR;
                self.note_statement(now, Some(&cmd), "refuse", Vec::new(), Some((code, &msg)));
                self.refuse_decided(now, now, Some(*command), code, &msg);
            }
            CommandPacket::Quit => {
                self.note_statement(now, Some(&cmd), "allow", Vec::new(), None);
                self.server.send(raw);
                self.record_simple(now, Command::COM_QUIT);
                self.close(CloseReason::ClientQuit);
            }
            CommandPacket::ChangeUser(cu) => {
                self.note_statement(now, Some(&cmd), "allow", Vec::new(), None);
                self.on_change_user(cu.clone())
            }
            _ => {
                let identity = self.identity.clone().expect("authenticated in Idle");
                let prepared = statement_id(&cmd)
                    .and_then(|id| self.prepared_sql.get(&id).map(|p| p.sql.clone()));
                let ctx = CommandContext {
                    session_id: self.id,
                    identity: &identity,
                    database: self.database.as_deref(),
                    target: &self.cfg.target_name,
                    mode: self.lex_mode,
                    server: self.server_kind,
                    prepared_sql: prepared.as_deref(),
                };
                let mut rules = Vec::new();
                let decision = if self.cfg.recording.is_some() {
                    self.cfg.gate.decide_noted(&ctx, &cmd, &mut rules)
                } else {
                    self.cfg.gate.decide(&ctx, &cmd)
                };
                match decision {
                    Decision::Allow => {
                        self.note_statement(now, Some(&cmd), "allow", rules, None);
                        self.forward_translated(now, now, &cmd, raw)
                    }
                    Decision::Refuse { code, message } => {
                        self.note_statement(
                            now,
                            Some(&cmd),
                            "refuse",
                            rules,
                            Some((code, &message)),
                        );
                        self.refuse_decided(now, now, Some(cmd.command()), code, &message)
                    }
                    Decision::Hold { request_id } => {
                        self.note_statement(now, Some(&cmd), "hold", rules, None);
                        info!(session = self.id, request_id, "command held for approval");
                        self.state = State::Held {
                            request_id,
                            packet: raw.to_vec(),
                            received: now,
                        };
                        // Waiting for a human is not idleness; approvals bring their own timeout.
                        self.deadline = None;
                        self.events.push_back(Event::ApprovalRequested {
                            request_id,
                            n: self.commands,
                        });
                    }
                }
                // The parameters sent with COM_STMT_SEND_LONG_DATA belong to the next EXECUTE.
                match &cmd {
                    CommandPacket::StmtSendLongData {
                        stmt_id, param_id, ..
                    } => {
                        if let Some(p) = self.prepared_sql.get_mut(stmt_id) {
                            if let Some(flag) = p.long_data.get_mut(usize::from(*param_id)) {
                                *flag = true;
                            }
                        }
                    }
                    CommandPacket::StmtExecute(e) => {
                        if let Some(p) = self.prepared_sql.get_mut(&e.stmt_id) {
                            p.long_data.iter_mut().for_each(|f| *f = false);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Emits the [`Event::Statement`] for the command being decided (when recorded).
    fn note_statement(
        &mut self,
        now: Instant,
        cmd: Option<&CommandPacket<'_>>,
        decision: &'static str,
        rules: Vec<crate::record::event::RuleNote>,
        error: Option<(ErrorCode, &str)>,
    ) {
        use crate::record::event::{ErrorNote, RawParams, StatementEntry};
        if self.cfg.recording.is_none() {
            return;
        }
        let mut entry = StatementEntry {
            session: self.id,
            n: self.commands,
            command: cmd
                .and_then(|c| c.command().name())
                .unwrap_or(if cmd.is_some() {
                    "COM_UNKNOWN"
                } else {
                    "malformed"
                }),
            sql: None,
            stmt_id: cmd.and_then(statement_id),
            params: None,
            long_data: None,
            argument: None,
            mode: self.lex_mode,
            database: self.database.clone(),
            decision,
            rules,
            error: error.map(|(code, message)| ErrorNote {
                code: code.code,
                message: message.to_owned(),
            }),
        };
        let prepared = entry.stmt_id.and_then(|id| self.prepared_sql.get(&id));
        match cmd {
            Some(CommandPacket::Query { sql } | CommandPacket::StmtPrepare { sql }) => {
                entry.sql = Some(Arc::from(*sql));
            }
            Some(CommandPacket::StmtExecute(e)) => {
                if let Some(p) = prepared {
                    entry.sql = Some(p.sql.clone());
                    entry.params = Some(RawParams {
                        block: e.params.to_vec(),
                        count: p.params,
                        bound_types: p.bound_types.clone(),
                        long_data: p.long_data.clone(),
                    });
                }
            }
            Some(CommandPacket::StmtBulkExecute { data, .. }) => {
                entry.sql = prepared.map(|p| p.sql.clone());
                entry.argument = Some(format!("{} bytes of bulk parameters", data.len()));
            }
            Some(CommandPacket::StmtSendLongData { param_id, data, .. }) => {
                entry.sql = prepared.map(|p| p.sql.clone());
                entry.long_data = Some((*param_id, data.to_vec()));
            }
            Some(
                CommandPacket::StmtFetch { .. }
                | CommandPacket::StmtReset { .. }
                | CommandPacket::StmtClose { .. },
            ) => entry.sql = prepared.map(|p| p.sql.clone()),
            Some(CommandPacket::InitDb { schema }) => {
                entry.argument = Some(String::from_utf8_lossy(schema).into_owned())
            }
            Some(CommandPacket::FieldList { table, .. }) => {
                entry.argument = Some(String::from_utf8_lossy(table).into_owned())
            }
            Some(CommandPacket::ProcessKill { connection_id }) => {
                entry.argument = Some(connection_id.to_string())
            }
            Some(CommandPacket::ChangeUser(cu)) => {
                entry.argument = Some(String::from_utf8_lossy(cu.user).into_owned())
            }
            _ => {}
        }
        if let (Some(CommandPacket::StmtExecute(e)), Some(id)) = (cmd, entry.stmt_id) {
            // Types sent now are bound for later executes that don't resend them.
            if let Some(p) = self.prepared_sql.get_mut(&id) {
                if let Some(types) = sent_param_types(e.params, p.params) {
                    p.bound_types = Some(types);
                }
            }
        }
        self.events
            .push_back(Event::Statement(now, Box::new(entry)));
    }

    /// Forwards an allowed command, translating `KILL` targets from gateway session ids to
    /// upstream thread ids (see [`kill`]).
    fn forward_translated(
        &mut self,
        now: Instant,
        received: Instant,
        cmd: &CommandPacket<'_>,
        raw: &[u8],
    ) {
        if self.cfg.auth == AuthMode::Passthrough {
            // The session is the client's own MySQL account and its id is the server's: the
            // server checks whether that account may kill the thread, exactly as directly.
            return self.forward_command(now, received, cmd, raw);
        }
        // (gateway session id, SQL form) of a KILL; None: not a KILL.
        let target = match cmd {
            CommandPacket::ProcessKill { connection_id } => Some((u64::from(*connection_id), None)),
            CommandPacket::Query { sql } => match kill::classify(sql) {
                kill::KillStatement::NotKill => None,
                kill::KillStatement::Simple { kind, id } => Some((id, Some(kind))),
                kill::KillStatement::Unsupported => {
                    return self.refuse(
                        now,
                        received,
                        Some(Command::COM_QUERY),
                        ErrorCode::ER_NOT_ALLOWED_COMMAND,
                        "Gatehouse: only KILL [CONNECTION | QUERY] <id>, alone in its statement, is supported",
                    );
                }
            },
            // A prepared KILL would run untranslated at every EXECUTE.
            CommandPacket::StmtPrepare { sql }
                if kill::classify(sql) != kill::KillStatement::NotKill =>
            {
                return self.refuse(
                    now,
                    received,
                    Some(Command::COM_STMT_PREPARE),
                    ErrorCode::ER_NOT_ALLOWED_COMMAND,
                    "Gatehouse: KILL cannot be prepared; send KILL [CONNECTION | QUERY] <id> as a query",
                );
            }
            _ => None,
        };
        let Some((id, sql_kind)) = target else {
            return self.forward_command(now, received, cmd, raw);
        };

        let identity = self
            .identity
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let refusal = match self
            .cfg
            .registry
            .resolve(id, &self.cfg.target_name, &identity)
        {
            Ok(upstream) => {
                let sql;
                let translated = match sql_kind {
                    None => CommandPacket::ProcessKill {
                        connection_id: upstream,
                    },
                    Some(kind) => {
                        sql = format!("KILL {kind}{upstream}");
                        CommandPacket::Query {
                            sql: sql.as_bytes(),
                        }
                    }
                };
                let mut payload = Vec::new();
                crate::wire::command::encode_command(&mut payload, &translated, self.caps);
                let mut framed = Vec::new();
                write_packet(&mut framed, 0, &payload);
                self.client_seq = 0;
                return self.forward_command(now, received, &translated, &framed);
            }
            Err(kill::KillRefusal::Unknown(id)) => (1094, format!("Unknown thread id: {id}")),
            Err(kill::KillRefusal::NotOwner(id)) => {
                (1095, format!("You are not owner of thread {id}"))
            }
        };
        let code = ErrorCode {
            code: refusal.0,
            sqlstate: "HY000",
        };
        self.refuse(now, received, Some(cmd.command()), code, &refusal.1);
    }

    fn forward_command(
        &mut self,
        now: Instant,
        received: Instant,
        cmd: &CommandPacket<'_>,
        raw: &[u8],
    ) {
        self.server.send(raw);
        let expect = Expect::for_command(cmd);
        let (sql, stmt_id) = describe(cmd);
        let record = CommandRecord {
            command: cmd.command(),
            sql,
            stmt_id,
            refused: None,
            outcome: Outcome::default(),
            received,
            finished: now,
            response_bytes: 0,
            n: self.commands,
            refused_by_gate: false,
            forwarded: Some(now),
            first_byte: None,
            result_hash: None,
            captured: None,
            capture_truncated: false,
        };
        if let CommandPacket::StmtClose { stmt_id } = cmd {
            self.cursor_columns.remove(stmt_id);
            self.prepared_sql.remove(stmt_id);
        }
        if expect == Expect::Nothing {
            self.events.push_back(Event::Command(record));
            self.state = State::Idle;
            self.deadline = Some(now + self.cfg.limits.idle_timeout());
            return;
        }
        let new_schema = match cmd {
            CommandPacket::InitDb { schema } => Some(String::from_utf8_lossy(schema).into_owned()),
            _ => None,
        };
        // `USE db`, `SET sql_mode`, `SET NAMES`: followed so later statements are analysed in
        // the session's real context (applied once the server ran them without error).
        let effects = match (cmd, self.lex_mode) {
            (CommandPacket::Query { sql }, Some(mode)) => Some(crate::sql::session_effects(
                sql,
                mode,
                self.server_kind,
                self.database.as_deref(),
            )),
            _ => None,
        };
        // The response continues the command's sequence (a command split into several
        // frames shifts it).
        self.server_seq = self.client_seq;
        self.seq_shift = 0;
        self.deadline = None;
        let columns = match cmd {
            CommandPacket::StmtFetch { stmt_id, .. } => self
                .cursor_columns
                .get(stmt_id)
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        self.state = State::Response(Box::new(InFlight {
            response: Response::new(
                expect,
                self.caps,
                self.mariadb_caps & mariadb_caps::PROGRESS != 0,
            ),
            record,
            columns,
            new_schema,
            effects,
            prepared_text: match cmd {
                CommandPacket::StmtPrepare { sql } => Some(Arc::from(*sql)),
                _ => None,
            },
            capture: RowCapture::new(
                self.capture,
                self.cfg
                    .recording
                    .as_ref()
                    .map_or(0, |r| r.config.capture_max_bytes),
            ),
        }));
    }

    /// Refuses a command the gate allowed (the refusal is the session's: a KILL it cannot
    /// translate, an approval denied).
    fn refuse(
        &mut self,
        now: Instant,
        received: Instant,
        command: Option<Command>,
        code: ErrorCode,
        message: &str,
    ) {
        self.refuse_with(now, received, command, code, message, false)
    }

    /// Refuses a command as decided (its [`Event::Statement`] carries the refusal).
    fn refuse_decided(
        &mut self,
        now: Instant,
        received: Instant,
        command: Option<Command>,
        code: ErrorCode,
        message: &str,
    ) {
        self.refuse_with(now, received, command, code, message, true)
    }

    fn refuse_with(
        &mut self,
        now: Instant,
        received: Instant,
        command: Option<Command>,
        code: ErrorCode,
        message: &str,
        by_gate: bool,
    ) {
        self.send_client_err(code, message);
        self.events.push_back(Event::Command(CommandRecord {
            command: command.unwrap_or(Command(0)),
            sql: None,
            stmt_id: None,
            refused: Some(code.code),
            outcome: Outcome {
                error: Some(code.code),
                ..Outcome::default()
            },
            received,
            finished: now,
            response_bytes: 0,
            n: self.commands,
            refused_by_gate: by_gate,
            forwarded: None,
            first_byte: None,
            result_hash: None,
            captured: None,
            capture_truncated: false,
        }));
        self.state = State::Idle;
        self.deadline = Some(now + self.cfg.limits.idle_timeout());
    }

    fn record_simple(&mut self, now: Instant, command: Command) {
        self.events.push_back(Event::Command(CommandRecord {
            command,
            sql: None,
            stmt_id: None,
            refused: None,
            outcome: Outcome::default(),
            received: now,
            finished: now,
            response_bytes: 0,
            n: self.commands,
            refused_by_gate: false,
            forwarded: Some(now),
            first_byte: None,
            result_hash: None,
            captured: None,
            capture_truncated: false,
        }));
    }

    fn on_change_user(&mut self, cu: ChangeUser<'_>) {
        let user = String::from_utf8_lossy(cu.user).into_owned();
        self.hello.user = user.clone();
        self.hello.database = (!cu.schema.is_empty()).then(|| cu.schema.to_vec());
        let plugin = String::from_utf8_lossy(cu.auth_plugin.unwrap_or(b"mysql_native_password"))
            .into_owned();
        if self.cfg.auth == AuthMode::Passthrough {
            return self.relay_change_user(cu, user, plugin);
        }
        let step = client_auth::start(
            &self.cfg.identities,
            &user,
            &plugin,
            cu.auth_response,
            &self.nonce,
            self.client.is_tls(),
        );
        self.on_auth_step(step, true);
    }

    /// Passthrough COM_CHANGE_USER: the new account authenticates with the upstream, in the
    /// same relayed exchange as a login. Re-encoded for the capabilities the upstream agreed to
    /// (which may differ from the client's), with the gateway's connection attributes.
    fn relay_change_user(&mut self, cu: ChangeUser<'_>, user: String, plugin: String) {
        let mut login = RelayedLogin::new(user, plugin);
        let upstream_tls = self.server.is_tls();
        if let ClientVerdict::Refuse(why) =
            login.check_first_response(self.client.is_tls(), upstream_tls)
        {
            // Nothing went upstream: the old account's session carries on.
            warn!(session = self.id, user = %login.user, reason = %why, "COM_CHANGE_USER refused");
            return self.send_client_err(
                ErrorCode::ER_SECURE_TRANSPORT_REQUIRED,
                &format!("Gatehouse: {why}"),
            );
        }
        login.change_user_schema = Some(self.hello.database.clone());
        let identity = self.account_identity(&login.user);
        let attrs = self.upstream_attrs(&cu.connect_attrs, &identity.name);
        let relayed = CommandPacket::ChangeUser(ChangeUser {
            user: cu.user,
            auth_response: cu.auth_response,
            schema: cu.schema,
            charset: Some(cu.charset.unwrap_or(u16::from(self.hello.charset))),
            auth_plugin: Some(login.plugin().as_bytes()),
            connect_attrs: attrs.iter().map(|(k, v)| (&k[..], &v[..])).collect(),
        });
        let mut payload = Vec::new();
        crate::wire::command::encode_command(&mut payload, &relayed, self.upstream_capabilities());
        self.server_seq = u8::MAX;
        self.send_server_packet(&payload);
        info!(session = self.id, user = %login.user, "COM_CHANGE_USER relayed to the upstream");
        self.state = State::Relayed(login);
        self.deadline = None;
    }

    /// The identity of a passthrough session: the MySQL account as the client presented it,
    /// at the client's address.
    fn account_identity(&self, user: &str) -> Identity {
        Identity {
            name: format!("{user}@{}", self.peer.ip()),
            groups: Vec::new(),
        }
    }

    /// Passthrough: the upstream answered a relayed login or COM_CHANGE_USER.
    fn on_relayed_server_packet(&mut self, now: Instant, mut login: RelayedLogin, payload: &[u8]) {
        match login.on_server_packet(payload, self.client.is_tls()) {
            ServerVerdict::Relay => {
                self.send_client_packet(payload);
                self.state = State::Relayed(login);
            }
            ServerVerdict::Accepted => {
                // The upstream's own OK, with its status and session-state changes.
                self.send_client_packet(payload);
                let identity = self.account_identity(&login.user);
                match login.change_user_schema {
                    Some(schema) => {
                        info!(session = self.id, identity = %identity.name, "COM_CHANGE_USER: the session now belongs to a new account");
                        // The upstream session was reset: statements and cursors are gone.
                        self.cursor_columns.clear();
                        self.prepared_sql.clear();
                        self.lex_mode = self.initial_lex_mode();
                        self.database = schema.map(|d| String::from_utf8_lossy(&d).into_owned());
                    }
                    None => {
                        info!(session = self.id, identity = %identity.name, peer = %self.peer, upstream_connection_id = self.upstream_connection_id, "upstream accepted the relayed login");
                        self.database = self
                            .hello
                            .database
                            .as_deref()
                            .map(|d| String::from_utf8_lossy(d).into_owned());
                    }
                }
                self.session_ready(now, identity);
            }
            ServerVerdict::Refused => {
                self.send_client_packet(payload);
                let (code, message) = crate::wire::response::parse_err(payload)
                    .map(|e| (e.code, String::from_utf8_lossy(e.message).into_owned()))
                    .unwrap_or_default();
                warn!(session = self.id, user = %login.user, peer = %self.peer, code, %message, "upstream refused the relayed login");
                if login.change_user_schema.is_some() {
                    // The upstream keeps the previous account's session (MariaDB and MySQL
                    // both restore it); so does the gateway. If it closes, so do we.
                    self.state = State::Idle;
                    self.deadline = Some(now + self.cfg.limits.idle_timeout());
                } else {
                    self.close(CloseReason::AuthFailed);
                }
            }
            ServerVerdict::Insecure(why) => self.refuse_insecure_login(&login.user, &why),
            ServerVerdict::Malformed(why) => self.upstream_failed(why),
        }
    }

    /// A relayed login would have moved a cleartext password over a plaintext link.
    fn refuse_insecure_login(&mut self, user: &str, why: &str) {
        warn!(session = self.id, user = %user, peer = %self.peer, reason = %why, "relayed login refused");
        self.send_client_err(
            ErrorCode::ER_SECURE_TRANSPORT_REQUIRED,
            &format!("Gatehouse: {why}"),
        );
        self.close(CloseReason::AuthFailed);
    }

    // ----- server side ----------------------------------------------------------------------

    fn process_server(&mut self, now: Instant, buf: &[u8]) -> usize {
        let mut used = 0;
        while !self.is_closed() {
            let packet = match parse_packet(&buf[used..], MAX_SERVER_PACKET) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    self.upstream_failed(format!("upstream framing: {e}"));
                    return buf.len();
                }
            };
            let raw = &buf[used..used + packet.wire_len];
            used += packet.wire_len;
            if matches!(self.state, State::UpstreamTls) {
                // Bytes after our SSLRequest must be TLS; a packet here is a protocol error.
                self.upstream_failed("upstream sent plaintext during the TLS upgrade".into());
                return buf.len();
            }
            if !matches!(self.state, State::UpstreamGreeting) {
                let expected = self.server_seq.wrapping_add(1);
                if packet.seq != expected && !matches!(self.state, State::Idle) {
                    self.upstream_failed(format!(
                        "upstream packet has sequence id {}, expected {expected}",
                        packet.seq
                    ));
                    return buf.len();
                }
            }
            self.server_seq = packet.last_seq;
            self.on_server_packet(now, &packet.payload, raw);
            if self.server.is_tls() && matches!(self.state, State::UpstreamTls) {
                // Switched to TLS: the rest of the buffer is ciphertext.
                let rest = &buf[used..];
                if let Err(e) = self.server.feed(rest) {
                    self.upstream_failed(format!("upstream {e}"));
                }
                if !self.server.is_handshaking() {
                    self.send_upstream_handshake_response();
                }
                return buf.len();
            }
        }
        used
    }

    fn on_server_packet(&mut self, now: Instant, payload: &[u8], raw: &[u8]) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::UpstreamGreeting => self.on_upstream_greeting(now, payload),
            State::UpstreamAuth(mut login) => {
                let step = login.on_packet(
                    payload,
                    self.caps,
                    self.cfg.upstream_password.as_bytes(),
                    self.server.is_tls(),
                );
                self.state = State::UpstreamAuth(login);
                self.on_login_step(now, step);
            }
            State::Response(mut flight) => {
                flight.record.first_byte.get_or_insert(now);
                let (role, progress) = match flight.response.on_packet(payload) {
                    Ok(x) => x,
                    Err(e) => {
                        return self.upstream_failed(format!("upstream response: {e}"));
                    }
                };
                if flight.response.outcome.local_infile {
                    warn!(
                        session = self.id,
                        "upstream asked for a local file; refused"
                    );
                    self.send_client_err_seq(
                        self.server_seq.wrapping_add(self.seq_shift),
                        ErrorCode::ER_NOT_ALLOWED_COMMAND,
                        "Gatehouse: LOAD DATA LOCAL INFILE is not allowed",
                    );
                    return self.close(CloseReason::UpstreamProtocolError(
                        "LOCAL INFILE request".into(),
                    ));
                }
                let before = self.client.pending();
                self.forward_server_packet(&mut flight, role, payload, raw);
                flight.record.response_bytes +=
                    (self.client.pending().saturating_sub(before)) as u64;
                if !flight.capture.is_off() {
                    flight
                        .capture
                        .sets_ended(flight.response.outcome.result_sets_ended);
                }
                if progress == Progress::Done {
                    if let (Some(id), false) = (flight.record.stmt_id, flight.columns.is_empty()) {
                        if flight.record.command == Command::COM_STMT_EXECUTE {
                            self.cursor_columns
                                .insert(id, std::mem::take(&mut flight.columns));
                        }
                    }
                    if let Some(schema) = flight.response.outcome.schema.take() {
                        flight.new_schema = Some(schema);
                    }
                    let mut record = flight.record;
                    record.outcome = flight.response.outcome;
                    record.finished = now;
                    record.result_hash = flight.capture.hasher.as_ref().map(|h| h.finish());
                    record.captured = flight.capture.rows.take();
                    record.capture_truncated = flight.capture.truncated;
                    let text = flight.prepared_text.take();
                    self.follow_session_state(&record, flight.new_schema, flight.effects, text);
                    self.events.push_back(Event::Command(record));
                    self.state = State::Idle;
                    self.deadline = Some(now + self.cfg.limits.idle_timeout());
                } else {
                    self.state = State::Response(flight);
                }
            }
            State::ChangeUserReset { identity, schema } => {
                if payload.first() != Some(&OK_HEADER) {
                    return self.change_user_upstream_failed(payload, raw);
                }
                if schema.is_empty() {
                    self.finish_change_user(now, identity, payload);
                } else {
                    self.server_seq = 0;
                    self.send_server_command(&CommandPacket::InitDb { schema: &schema });
                    self.database = Some(String::from_utf8_lossy(&schema).into_owned());
                    self.state = State::ChangeUserInitDb { identity };
                }
            }
            State::ChangeUserInitDb { identity } => {
                if payload.first() != Some(&OK_HEADER) {
                    return self.change_user_upstream_failed(payload, raw);
                }
                self.finish_change_user(now, identity, payload);
            }
            State::Relayed(login) => self.on_relayed_server_packet(now, login, payload),
            State::Idle => {
                // Unsolicited: the server is shutting down or killed us. Relay and close.
                if payload.first() == Some(&ERR_HEADER) {
                    self.client.send(raw);
                }
                self.close(CloseReason::UpstreamGone);
            }
            other => {
                self.state = other;
                self.upstream_failed("unexpected packet from upstream".into());
            }
        }
    }

    fn forward_server_packet(
        &mut self,
        flight: &mut InFlight,
        role: PacketRole,
        payload: &[u8],
        raw: &[u8],
    ) {
        if self.cfg.rows.is_identity() {
            // The hot path: the server's bytes, as they are.
            if let (PacketRole::Row(_), false) = (role, flight.capture.is_off()) {
                flight.capture.row(payload);
            }
            self.client.send(raw);
            return;
        }
        match role {
            PacketRole::ColumnDefinition => {
                let extended = self.mariadb_caps & mariadb_caps::EXTENDED_METADATA != 0;
                match parse_column_definition(payload, extended) {
                    Ok(c) => flight.columns.push(ColumnInfo::from_definition(&c)),
                    // Rows could no longer be matched to their columns: stop, don't guess.
                    Err(e) => {
                        return self.upstream_failed(format!("upstream column definition: {e}"))
                    }
                }
                self.forward_shifted(raw);
            }
            PacketRole::Row(format) => {
                let seq = raw[3].wrapping_add(self.seq_shift);
                let transform = self.cfg.rows.clone();
                let columns = &flight.columns;
                let mut scratch = std::mem::take(&mut self.scratch);
                let mut last = seq;
                let capture = &mut flight.capture;
                self.client.send_with(&mut scratch, |out| {
                    last = write_packet_with(out, seq, |o| {
                        let start = o.len();
                        transform.on_row(columns, format, payload, o);
                        if !capture.is_off() {
                            // Recorded as the client receives it (masked).
                            capture.row(&o[start..]);
                        }
                    });
                });
                self.scratch = scratch;
                // A rewritten row may need more or fewer 16 MiB frames than the original:
                // renumber everything after it.
                self.seq_shift = last.wrapping_sub(self.server_seq);
            }
            PacketRole::Other => {
                if flight.response.at_result_start_or_columns() {
                    // A new result set: its column definitions follow.
                    flight.columns.clear();
                }
                self.forward_shifted(raw);
            }
        }
    }

    /// Forwards whole frames, renumbered by the current sequence shift.
    fn forward_shifted(&mut self, raw: &[u8]) {
        if self.seq_shift == 0 {
            return self.client.send(raw);
        }
        let mut copy = raw.to_vec();
        let mut at = 0;
        while let Some((len, seq)) = crate::wire::frame::parse_header(&copy[at..]) {
            copy[at + 3] = seq.wrapping_add(self.seq_shift);
            at += crate::wire::frame::HEADER_LEN + len;
        }
        self.client.send(&copy);
    }

    fn on_upstream_greeting(&mut self, now: Instant, payload: &[u8]) {
        if payload.first() == Some(&ERR_HEADER) {
            // e.g. "Too many connections" or "Host is blocked".
            let msg = crate::wire::response::parse_err(payload)
                .map(|e| String::from_utf8_lossy(e.message).into_owned())
                .unwrap_or_default();
            if self.cfg.auth == AuthMode::Passthrough && payload.len() <= MAX_PREAUTH_PACKET {
                // The client has not been greeted yet: it hears the server's refusal exactly
                // as it would directly (error 1040 is what clients and tests look for).
                warn!(session = self.id, target = %self.cfg.target_name, reason = %msg,
                    "upstream refused the connection before its greeting; relayed");
                let mut scratch = std::mem::take(&mut self.scratch);
                self.client
                    .send_with(&mut scratch, |out| _ = write_packet(out, 0, payload));
                self.scratch = scratch;
                return self.close(CloseReason::UpstreamUnavailable(msg));
            }
            return self.handle_server_unreachable(now, &msg);
        }
        let greeting = match parse_handshake_v10(payload) {
            Ok(g) => g,
            Err(e) => return self.upstream_failed(format!("upstream greeting: {e}")),
        };
        self.cfg.target.learn(&greeting);
        self.server_kind = crate::sql::Server::from_version_string(&String::from_utf8_lossy(
            greeting.server_version,
        ))
        .unwrap_or(crate::sql::Server::MariaDb { version_id: None });
        self.upstream_connection_id = greeting.connection_id;
        let missing = (self.caps & MUST_MATCH) - greeting.capabilities;
        if !missing.is_empty() {
            return self.upstream_failed(format!(
                "upstream lacks capabilities the client negotiated: {missing:?}"
            ));
        }
        let upstream_mariadb =
            mariadb_capabilities(greeting.capabilities, greeting.mariadb_capabilities);
        if self.mariadb_caps & !upstream_mariadb != 0 {
            return self.upstream_failed(format!(
                "upstream lacks MariaDB capabilities the client negotiated: {:#x}",
                self.mariadb_caps & !upstream_mariadb
            ));
        }
        let nonce = greeting.nonce();
        let plugin =
            String::from_utf8_lossy(greeting.auth_plugin.unwrap_or(b"mysql_native_password"))
                .into_owned();
        if self.cfg.upstream_tls.is_some()
            && !greeting.capabilities.contains(CapabilityFlags::CLIENT_SSL)
        {
            return self.upstream_failed("upstream does not offer TLS, which is required".into());
        }
        if self.cfg.auth == AuthMode::Passthrough {
            // Greet the client with the upstream's nonce and plugin: its answers are then
            // exactly what the upstream expects.
            if nonce.len() < 8 {
                return self.upstream_failed(format!(
                    "upstream greeting has a {}-byte nonce",
                    nonce.len()
                ));
            }
            self.send_greeting(&nonce, plugin.as_bytes());
            self.pending_login = Some((plugin, nonce));
            self.state = State::ExpectHandshakeResponse;
            return;
        }
        self.pending_login = Some((plugin, nonce));
        self.start_upstream_login();
    }

    /// Starts the upstream login: TLS first when configured, then HandshakeResponse41.
    fn start_upstream_login(&mut self) {
        if let Some((tls, name)) = self.cfg.upstream_tls.clone() {
            let mut req = Vec::new();
            encode_ssl_request(
                &mut req,
                &HandshakeResponse41 {
                    capabilities: self.upstream_capabilities(),
                    max_packet_size: self.cfg.limits.max_packet_size as u32,
                    charset: self.hello.charset,
                    mariadb_capabilities: self.mariadb_caps,
                    ..Default::default()
                },
            );
            self.send_server_packet(&req);
            match rustls::ClientConnection::new(tls, name) {
                Ok(conn) => self.server.start_tls(conn.into()),
                Err(e) => return self.upstream_failed(format!("upstream TLS setup: {e}")),
            }
            self.state = State::UpstreamTls;
            return;
        }
        self.state = State::UpstreamTls;
        self.send_upstream_handshake_response();
    }

    /// What the gateway asks of the upstream: what the client negotiated (so the server's
    /// bytes mean the same to it), plus what the gateway's own login needs.
    fn upstream_capabilities(&self) -> CapabilityFlags {
        let mut caps = (self.caps & CapabilityFlags::GATEWAY)
            | CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_CONNECT_ATTRS
            | CapabilityFlags::CLIENT_LONG_PASSWORD;
        caps.set(
            CapabilityFlags::CLIENT_CONNECT_WITH_DB,
            self.hello.database.is_some(),
        );
        caps.set(CapabilityFlags::CLIENT_SSL, self.cfg.upstream_tls.is_some());
        // Asking for MariaDB's extended capabilities means clearing CLIENT_MYSQL.
        caps.set(
            CapabilityFlags::CLIENT_LONG_PASSWORD,
            self.mariadb_caps == 0,
        );
        caps
    }

    /// Sends HandshakeResponse41 (after the TLS handshake, when there is one).
    fn send_upstream_handshake_response(&mut self) {
        let Some((plugin, nonce)) = self.pending_login.take() else {
            return;
        };
        // Passthrough relays the client's own answer; otherwise the gateway answers with the
        // credential it holds.
        let (user, auth, plugin, identity, next) = match self.relayed_first.take() {
            Some((response, login)) => (
                login.user.clone(),
                response,
                login.plugin().to_owned(),
                self.account_identity(&login.user).name,
                State::Relayed(login),
            ),
            None => {
                let password = self.cfg.upstream_password.clone();
                let (auth, plugin) = upstream::first_response(&plugin, &nonce, password.as_bytes());
                let identity = self
                    .identity
                    .as_ref()
                    .map(|i| i.name.clone())
                    .unwrap_or_default();
                let login =
                    UpstreamLogin::new(plugin.clone(), nonce, self.cfg.upstream_public_key.clone());
                let user = self.cfg.upstream_user.clone();
                (user, auth, plugin, identity, State::UpstreamAuth(login))
            }
        };
        let client_attrs: Vec<(&[u8], &[u8])> = self
            .hello
            .attrs
            .iter()
            .map(|(k, v)| (&k[..], &v[..]))
            .collect();
        let attrs = self.upstream_attrs(&client_attrs, &identity);
        let response = HandshakeResponse41 {
            capabilities: self.upstream_capabilities(),
            max_packet_size: self.cfg.limits.max_packet_size as u32,
            charset: self.hello.charset,
            mariadb_capabilities: self.mariadb_caps,
            username: user.as_bytes(),
            auth_response: &auth,
            database: self.hello.database.as_deref(),
            auth_plugin: Some(plugin.as_bytes()),
            connect_attrs: attrs.iter().map(|(k, v)| (&k[..], &v[..])).collect(),
        };
        let mut payload = Vec::new();
        encode_handshake_response(&mut payload, &response);
        self.send_server_packet(&payload);
        self.state = next;
    }

    /// The connection attributes the upstream sees: the client's own (minus any that pose as
    /// the gateway's), then who the gateway says is behind the session.
    fn upstream_attrs(&self, client: &[(&[u8], &[u8])], identity: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut attrs: Vec<(Vec<u8>, Vec<u8>)> = client
            .iter()
            .filter(|(k, _)| !k.starts_with(b"_gatehouse"))
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        attrs.push((
            b"_gatehouse_identity".to_vec(),
            identity.as_bytes().to_vec(),
        ));
        attrs.push((
            b"_gatehouse_session".to_vec(),
            self.id.to_string().into_bytes(),
        ));
        attrs.push((
            b"_gatehouse_client".to_vec(),
            self.peer.to_string().into_bytes(),
        ));
        attrs
    }

    fn on_login_step(&mut self, now: Instant, step: LoginStep) {
        match step {
            LoginStep::Send(payload) => self.send_server_packet(&payload),
            LoginStep::Wait => {}
            LoginStep::Done { status } => {
                let identity = self.identity.clone().expect("authenticated before login");
                info!(session = self.id, identity = %identity.name, upstream_connection_id = self.upstream_connection_id, "upstream session ready");
                self.database = self
                    .hello
                    .database
                    .as_deref()
                    .map(|d| String::from_utf8_lossy(d).into_owned());
                self.send_client_ok(status);
                self.session_ready(now, identity);
            }
            LoginStep::Refused(code, message) => {
                warn!(session = self.id, target = %self.cfg.target_name, code, %message, "upstream refused the gateway's login");
                if matches!(code, 1044 | 1045 | 1251 | 1698 | 1862) {
                    // The gateway's own credential failed: not the client's business.
                    let msg = format!(
                        "Gatehouse: cannot log in to target '{}' (see the gateway log)",
                        self.cfg.target_name
                    );
                    self.send_client_err(ErrorCode::CR_CONN_HOST_ERROR, &msg);
                } else {
                    // e.g. 1049 Unknown database: exactly what the client would see directly.
                    let sqlstate = if code == 1049 { "42000" } else { "HY000" };
                    self.send_client_err(ErrorCode { code, sqlstate }, &message);
                }
                self.close(CloseReason::UpstreamUnavailable(message));
            }
            LoginStep::Failed(why) => self.upstream_failed(why),
        }
    }

    fn change_user_upstream_failed(&mut self, payload: &[u8], _raw: &[u8]) {
        let why = crate::wire::response::parse_err(payload)
            .map(|e| String::from_utf8_lossy(e.message).into_owned())
            .unwrap_or_else(|_| "unexpected packet".into());
        warn!(session = self.id, %why, "upstream reset for COM_CHANGE_USER failed");
        self.send_client_err(
            ErrorCode::CR_SERVER_LOST,
            "Gatehouse: could not reset the upstream session for the new user",
        );
        self.close(CloseReason::UpstreamProtocolError(why));
    }

    fn finish_change_user(&mut self, now: Instant, identity: Identity, ok_payload: &[u8]) {
        let status = crate::wire::response::parse_ok(ok_payload, self.caps)
            .map(|ok| ok.status)
            .unwrap_or_default();
        // Without a schema the upstream keeps its default database across the reset; so does
        // the gateway's view of it.
        self.send_client_ok(status);
        self.session_ready(now, identity);
    }

    /// `identity` now owns the session (after login or COM_CHANGE_USER): registered for KILL,
    /// announced to the recorder, ready for commands.
    fn session_ready(&mut self, now: Instant, identity: Identity) {
        self.cfg.registry.register(
            self.connection_id(),
            self.upstream_connection_id,
            &self.cfg.target_name,
            &identity.name,
        );
        // Only COM_CHANGE_USER makes a session ready after a command.
        let change_user = self.commands > 0;
        self.capture = match &self.cfg.recording {
            None => crate::config::Capture::None,
            Some(r) => r.capture_for(&self.cfg.target_name, &identity),
        };
        self.events.push_back(Event::Authenticated {
            identity: identity.clone(),
            auth: match self.cfg.auth {
                AuthMode::GatewayIdentity => "gateway".into(),
                AuthMode::Passthrough => "passthrough".into(),
            },
            change_user,
            upstream_connection_id: self.upstream_connection_id,
            tls: self.client.tls_summary(),
        });
        self.identity = Some(identity);
        self.state = State::Idle;
        self.deadline = Some(now + self.cfg.limits.idle_timeout());
    }

    // ----- output helpers -------------------------------------------------------------------

    fn offered_capabilities(&self) -> CapabilityFlags {
        let mut caps = CapabilityFlags::GATEWAY;
        if let Some(t) = self.cfg.target.get() {
            // Offer only what the target can honour for the bytes the gateway forwards.
            caps -= MUST_MATCH - t.capabilities;
        }
        caps.set(CapabilityFlags::CLIENT_SSL, self.cfg.client_tls.is_some());
        caps
    }

    /// Greets the client with `nonce` (the gateway's own, or in passthrough the upstream's)
    /// and the authentication plugin the client should start with.
    fn send_greeting(&mut self, nonce: &[u8], plugin: &[u8]) {
        self.offered = self.offered_capabilities();
        self.offered_mariadb = self
            .cfg
            .target
            .get()
            .map_or(0, |t| t.mariadb_capabilities & mariadb_caps::GATEWAY);
        if self.offered_mariadb != 0 {
            // Clearing CLIENT_MYSQL is how a MariaDB server says its extra 4 bytes count.
            self.offered -= CapabilityFlags::CLIENT_LONG_PASSWORD;
        }
        let learned = self.cfg.target.get();
        let version = learned
            .as_ref()
            .map(|t| t.server_version.clone())
            .unwrap_or_else(|| "8.0.0-gatehouse".to_owned());
        let greeting = HandshakeV10 {
            server_version: version.as_bytes(),
            connection_id: self.greeting_connection_id(),
            auth_data_1: &nonce[..8],
            auth_data_2: &nonce[8..],
            capabilities: self.offered,
            charset: learned.map(|t| t.charset).unwrap_or(45),
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            mariadb_capabilities: self.offered_mariadb,
            auth_plugin: Some(plugin),
        };
        let mut payload = Vec::new();
        encode_handshake_v10(&mut payload, &greeting);
        self.client_seq = 0;
        let mut framed = Vec::new();
        write_packet(&mut framed, 0, &payload);
        self.client.send(&framed);
    }

    /// Sends a payload to the client as the next packet of the current exchange.
    fn send_client_packet(&mut self, payload: &[u8]) {
        self.client_seq = self.client_seq.wrapping_add(1);
        let seq = self.client_seq;
        let mut scratch = std::mem::take(&mut self.scratch);
        self.client.send_with(&mut scratch, |out| {
            write_packet(out, seq, payload);
        });
        self.scratch = scratch;
    }

    fn send_client_ok(&mut self, status: StatusFlags) {
        let mut payload = Vec::new();
        encode_ok(
            &mut payload,
            &OkPacket {
                status,
                ..Default::default()
            },
            self.caps,
        );
        self.send_client_packet(&payload);
    }

    fn send_client_err(&mut self, code: ErrorCode, message: &str) {
        self.send_client_err_seq(self.client_seq.wrapping_add(1), code, message);
    }

    fn send_client_err_seq(&mut self, seq: u8, code: ErrorCode, message: &str) {
        // Before its greeting a client has not said it speaks protocol 4.1, so, as a server
        // does, the error carries no SQLSTATE (clients would show `#HY000` in the message).
        let greeted = !(self.cfg.auth == AuthMode::Passthrough
            && matches!(
                self.state,
                State::ConnectingUpstream | State::UpstreamGreeting
            ));
        let mut scratch = std::mem::take(&mut self.scratch);
        self.client.send_with(&mut scratch, |out| {
            write_packet_with(out, seq, |o| {
                if greeted {
                    encode_gateway_err(o, code, message)
                } else {
                    crate::wire::response::encode_err(
                        o,
                        &crate::wire::response::ErrPacket {
                            code: code.code,
                            sqlstate: None,
                            message: message.as_bytes(),
                        },
                    )
                }
            });
        });
        self.scratch = scratch;
    }

    /// Sends a payload to the server as the next packet of the current exchange.
    fn send_server_packet(&mut self, payload: &[u8]) {
        self.server_seq = self.server_seq.wrapping_add(1);
        let seq = self.server_seq;
        let mut scratch = std::mem::take(&mut self.scratch);
        self.server.send_with(&mut scratch, |out| {
            write_packet(out, seq, payload);
        });
        self.scratch = scratch;
    }

    /// Sends a command the gateway itself issues (sequence id 0).
    fn send_server_command(&mut self, cmd: &CommandPacket<'_>) {
        let mut payload = Vec::new();
        crate::wire::command::encode_command(&mut payload, cmd, self.caps);
        self.server_seq = u8::MAX; // so the command goes out as 0
        self.send_server_packet(&payload);
    }

    fn bad_handshake(&mut self, why: &str) {
        warn!(session = self.id, peer = %self.peer, reason = why, "bad handshake");
        self.send_client_err(ErrorCode::ER_HANDSHAKE_ERROR, "Bad handshake");
        self.close(CloseReason::ProtocolError(why.to_owned()));
    }

    fn out_of_order(&mut self, why: String) {
        warn!(session = self.id, peer = %self.peer, reason = %why, "packets out of order");
        self.send_client_err(
            ErrorCode::ER_NET_PACKETS_OUT_OF_ORDER,
            "Got packets out of order",
        );
        self.close(CloseReason::ProtocolError(why));
    }

    fn upstream_failed(&mut self, why: String) {
        warn!(session = self.id, target = %self.cfg.target_name, reason = %why, "upstream failure");
        let seq = self.next_client_seq();
        self.send_client_err_seq(
            seq,
            ErrorCode::CR_SERVER_LOST,
            "Gatehouse: lost connection to the upstream server",
        );
        self.close(CloseReason::UpstreamProtocolError(why));
    }

    /// The largest client packet accepted in the current state.
    fn max_client_packet(&self) -> usize {
        match self.state {
            State::ExpectHandshakeResponse
            | State::ClientAuth(_)
            | State::ChangeUserAuth(_)
            | State::Relayed(_) => MAX_PREAUTH_PACKET.min(self.cfg.limits.max_packet_size),
            _ => self.cfg.limits.max_packet_size,
        }
    }

    /// How a fresh upstream session lexes: the server's default `sql_mode` (assumed to be
    /// MariaDB's, without `ANSI_QUOTES` or `NO_BACKSLASH_ESCAPES`) and the client's charset.
    fn initial_lex_mode(&self) -> Option<crate::sql::Mode> {
        crate::sql::Charset::from_collation_id(u16::from(self.hello.charset)).map(|charset| {
            crate::sql::Mode {
                charset,
                ..crate::sql::Mode::DEFAULT
            }
        })
    }

    /// After a command finished: the session state later analysis depends on — current
    /// database, lexical mode, prepared statements — follows what the server did.
    fn follow_session_state(
        &mut self,
        record: &CommandRecord,
        new_schema: Option<String>,
        effects: Option<crate::sql::Effects>,
        prepared_text: Option<Arc<[u8]>>,
    ) {
        use crate::sql::ModeEffect;
        let ok = record.outcome.error.is_none();
        if let Some(effects) = effects {
            if ok {
                if let Some(db) = effects.database {
                    self.database = Some(db);
                }
            }
            match effects.mode {
                ModeEffect::Unchanged => {}
                ModeEffect::Known(mode) if ok => self.lex_mode = Some(mode),
                // Unknowable, or a failed batch that may have run part of it.
                _ => self.lex_mode = None,
            }
        }
        if !ok {
            return;
        }
        if let Some(schema) = new_schema {
            self.database = Some(schema);
        }
        match record.command {
            Command::COM_STMT_PREPARE => {
                if let (Some((id, params)), Some(sql)) = (record.outcome.prepared, prepared_text) {
                    self.prepared_sql.insert(
                        id,
                        Prepared {
                            sql,
                            params,
                            bound_types: None,
                            long_data: vec![false; usize::from(params)],
                        },
                    );
                }
            }
            Command::COM_RESET_CONNECTION => {
                // The server closed every prepared statement and reset session variables.
                self.prepared_sql.clear();
                self.cursor_columns.clear();
                self.lex_mode = self.initial_lex_mode();
            }
            _ => {}
        }
    }

    /// The gateway's id for this session (what an identity's `KILL` names).
    fn connection_id(&self) -> u32 {
        (self.id & 0xFFFF_FFFF) as u32
    }

    /// The connection id the client is greeted with: the gateway's own, or in passthrough the
    /// server's thread id, so that `mysql_thread_id()`, `CONNECTION_ID()`, the process list and
    /// `KILL` all agree as they do on a direct connection.
    fn greeting_connection_id(&self) -> u32 {
        match self.cfg.auth {
            AuthMode::GatewayIdentity => self.connection_id(),
            AuthMode::Passthrough => self.upstream_connection_id,
        }
    }

    /// The sequence id the client expects next: after the last relayed server packet while a
    /// response streams, after its own last packet otherwise.
    fn next_client_seq(&self) -> u8 {
        match self.state {
            State::Response(_) => self.server_seq.wrapping_add(1).wrapping_add(self.seq_shift),
            _ => self.client_seq.wrapping_add(1),
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.is_closed() && self.closed_reported {
            return;
        }
        self.closed_reported = true;
        debug!(session = self.id, ?reason, "session closed");
        self.cfg.registry.unregister(self.connection_id());
        self.client.close();
        self.state = State::Closed;
        self.deadline = None;
        self.events.push_back(Event::Closed(reason));
    }
}

/// The MariaDB extended capabilities a greeting or handshake response declares: its extra 4
/// bytes count only when `CLIENT_LONG_PASSWORD` (`CLIENT_MYSQL`) is clear.
fn mariadb_capabilities(caps: CapabilityFlags, extended: u32) -> u32 {
    if caps.contains(CapabilityFlags::CLIENT_LONG_PASSWORD) {
        0
    } else {
        extended
    }
}

/// The prepared statement a command names.
fn statement_id(cmd: &CommandPacket<'_>) -> Option<u32> {
    match cmd {
        CommandPacket::StmtExecute(e) => Some(e.stmt_id),
        CommandPacket::StmtBulkExecute { stmt_id, .. }
        | CommandPacket::StmtClose { stmt_id }
        | CommandPacket::StmtReset { stmt_id }
        | CommandPacket::StmtFetch { stmt_id, .. }
        | CommandPacket::StmtSendLongData { stmt_id, .. } => Some(*stmt_id),
        _ => None,
    }
}

/// The parameter types a COM_STMT_EXECUTE block sends (`new_params_bound = 1`), if it does.
fn sent_param_types(
    block: &[u8],
    params: u16,
) -> Option<Arc<[(crate::wire::binary::ColumnType, u8)]>> {
    let n = usize::from(params);
    let at = n.div_ceil(8);
    if n == 0 || block.get(at) != Some(&1) {
        return None;
    }
    let types = block.get(at + 1..at + 1 + 2 * n)?;
    Some(
        types
            .chunks_exact(2)
            .map(|c| (crate::wire::binary::ColumnType(c[0]), c[1]))
            .collect(),
    )
}

/// The statement text and statement id a command carries, for the record.
fn describe(cmd: &CommandPacket<'_>) -> (Option<String>, Option<u32>) {
    match cmd {
        CommandPacket::Query { sql } | CommandPacket::StmtPrepare { sql } => {
            (Some(String::from_utf8_lossy(sql).into_owned()), None)
        }
        CommandPacket::StmtExecute(e) => (None, Some(e.stmt_id)),
        CommandPacket::StmtBulkExecute { stmt_id, .. }
        | CommandPacket::StmtClose { stmt_id }
        | CommandPacket::StmtReset { stmt_id }
        | CommandPacket::StmtFetch { stmt_id, .. }
        | CommandPacket::StmtSendLongData { stmt_id, .. } => (None, Some(*stmt_id)),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests;
