//! Session tests without sockets: a fake client and a fake MySQL server around a real
//! [`Session`], on a virtual clock (in the spirit of quinn's `Pair`).
//!
//! ```text
//! test ──▶ Pair::client_send ──▶ Session::handle_client ─┐
//!                                                         │  transfer(): poll_event (answers
//! Pair::client_recv ◀── poll_transmit(Client) ◀───────────┤  ConnectUpstream), poll_transmit
//!                                                         │  both ways, until quiescent
//! FakeServer::receive ◀── poll_transmit(Server) ◀─────────┘
//! FakeServer::outbox ──▶ Session::handle_server
//! ```
//!
//! The fake server checks the gateway's login (upstream user, scramble of the upstream
//! password for its own nonce) and answers each command with the next scripted reply.
//! Everything is built and checked with the `wire` encoders and parsers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::phases::{
    AllowAll, ColumnInfo, CommandContext, CommandGate, Decision, PassThrough, RowFormat,
    RowTransform,
};
use super::{
    AuthMode, CloseReason, CommandRecord, Event, Peer, Session, SessionConfig, TargetInfo, Verdict,
};
use crate::auth::scramble::{native_scramble, sha2_scramble};
use crate::auth::secret::tests::cheap_secret;
use crate::auth::{Identity, IdentityStore};
use crate::config::{IdentityConfig, LimitsConfig};
use crate::wire::binary::{encode_binary_row, BinaryValue, ColumnType};
use crate::wire::command::{encode_command, ChangeUser, CommandPacket, StmtExecute};
use crate::wire::consts::MAX_FRAME_PAYLOAD;
use crate::wire::frame::{parse_packet, write_packet};
use crate::wire::handshake::{
    encode_auth_more_data, encode_handshake_response, encode_handshake_v10, parse_auth_switch,
    parse_handshake_response, parse_handshake_v10, HandshakeResponse41, HandshakeV10,
};
use crate::wire::response::{
    encode_eof, encode_err, encode_ok, parse_err, parse_ok, EofPacket, ErrPacket, OkPacket,
};
use crate::wire::resultset::{
    encode_column_definition, encode_stmt_prepare_ok, encode_text_row, text_row_values,
    ColumnDefinition, StmtPrepareOk,
};
use crate::wire::{CapabilityFlags, Command, ErrorCode, StatusFlags};

// ===== harness =================================================================================

const TARGET: &str = "primary";
const UPSTREAM_USER: &str = "app";
const UPSTREAM_PASSWORD: &str = "upstream-S3cret!";
const ALICE_PW: &str = "alice-correct-horse";
const BOB_PW: &str = "bob-battery-staple";
/// Carol's secret has no mysql_native_password hash.
const CAROL_PW: &str = "carol-sha2-only";
const PEER: &str = "192.0.2.10:51000";
const SERVER_NONCE: &[u8; 20] = b"Srv-nonce-0123456789";
const UPSTREAM_CONNECTION_ID: u32 = 4242;

/// A packet as a peer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pkt {
    seq: u8,
    payload: Vec<u8>,
}

/// Splits whole packets off the front of `buf` (continuations reassembled).
fn split_packets(buf: &mut Vec<u8>) -> Vec<Pkt> {
    let mut out = Vec::new();
    let mut used = 0;
    while let Some(p) = parse_packet(&buf[used..], usize::MAX).expect("valid framing") {
        out.push(Pkt {
            seq: p.seq,
            payload: p.payload.into_owned(),
        });
        used += p.wire_len;
    }
    buf.drain(..used);
    out
}

fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_packet(&mut out, seq, payload);
    out
}

/// Frames `payloads` as consecutive packets from sequence id `seq`.
fn frame_all(mut seq: u8, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        seq = write_packet(&mut out, seq, p).wrapping_add(1);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ----- packet builders (payloads) ---------------------------------------------------------------

fn ok_payload(caps: CapabilityFlags, status: StatusFlags, affected_rows: u64) -> Vec<u8> {
    let mut v = Vec::new();
    encode_ok(
        &mut v,
        &OkPacket {
            affected_rows,
            status,
            ..Default::default()
        },
        caps,
    );
    v
}

/// EOF, or the 0xFE OK that replaces it under CLIENT_DEPRECATE_EOF.
fn terminator(caps: CapabilityFlags, status: StatusFlags) -> Vec<u8> {
    let mut v = Vec::new();
    if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        encode_ok(
            &mut v,
            &OkPacket {
                header: 0xFE,
                status,
                ..Default::default()
            },
            caps,
        );
    } else {
        encode_eof(
            &mut v,
            &EofPacket {
                warnings: 0,
                status,
            },
        );
    }
    v
}

/// The EOF after column definitions (absent under CLIENT_DEPRECATE_EOF).
fn columns_eof(caps: CapabilityFlags, status: StatusFlags) -> Option<Vec<u8>> {
    (!caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)).then(|| {
        let mut v = Vec::new();
        encode_eof(
            &mut v,
            &EofPacket {
                warnings: 0,
                status,
            },
        );
        v
    })
}

fn err_payload(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut v = Vec::new();
    encode_err(
        &mut v,
        &ErrPacket {
            code,
            sqlstate: Some(sqlstate.as_bytes()),
            message: message.as_bytes(),
        },
    );
    v
}

fn coldef(name: &str, column_type: u8) -> Vec<u8> {
    let mut v = Vec::new();
    encode_column_definition(
        &mut v,
        &ColumnDefinition {
            catalog: b"def",
            schema: b"shop",
            table: b"t",
            org_table: b"t",
            name: name.as_bytes(),
            org_name: name.as_bytes(),
            extended: None,
            charset: 45,
            column_length: 255,
            column_type,
            flags: 0,
            decimals: 0,
        },
    );
    v
}

fn text_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_text_row(&mut v, values.iter().copied());
    v
}

const VAR_STRING: u8 = 0xFD;
const AUTOCOMMIT: StatusFlags = StatusFlags::SERVER_STATUS_AUTOCOMMIT;

/// A whole text result set: count, definitions, [EOF], rows, terminator with `status`.
fn text_result(
    caps: CapabilityFlags,
    columns: &[&str],
    rows: &[Vec<Option<&[u8]>>],
    status: StatusFlags,
) -> Vec<Vec<u8>> {
    let mut out = vec![vec![columns.len() as u8]];
    out.extend(columns.iter().map(|c| coldef(c, VAR_STRING)));
    out.extend(columns_eof(caps, AUTOCOMMIT));
    out.extend(rows.iter().map(|r| text_row(r)));
    out.push(terminator(caps, status));
    out
}

/// Three rows of (id, name), the second with a NULL name.
fn three_rows() -> Vec<Vec<Option<&'static [u8]>>> {
    vec![
        vec![Some(b"1"), Some(b"ada")],
        vec![Some(b"2"), None],
        vec![Some(b"3"), Some(b"grace hopper")],
    ]
}

fn command_payload(cmd: &CommandPacket<'_>, caps: CapabilityFlags) -> Vec<u8> {
    let mut v = Vec::new();
    encode_command(&mut v, cmd, caps);
    v
}

fn query_payload(sql: &str) -> Vec<u8> {
    command_payload(
        &CommandPacket::Query {
            sql: sql.as_bytes(),
        },
        CapabilityFlags::empty(),
    )
}

/// Checks an ERR packet's code and SQLSTATE and returns its message.
#[track_caller]
fn assert_err(p: &Pkt, code: ErrorCode) -> String {
    let e = parse_err(&p.payload).unwrap_or_else(|e| panic!("not an ERR packet ({e}): {p:?}"));
    assert_eq!(
        (e.code, e.sqlstate),
        (code.code, Some(code.sqlstate.as_bytes())),
        "ERR {}: {}",
        e.code,
        String::from_utf8_lossy(e.message)
    );
    String::from_utf8_lossy(e.message).into_owned()
}

#[track_caller]
fn assert_ok(p: &Pkt, caps: CapabilityFlags) {
    assert_eq!(p.payload.first(), Some(&0x00), "not an OK packet: {p:?}");
    parse_ok(&p.payload, caps).expect("OK packet parses");
}

// ----- fake server ------------------------------------------------------------------------------

/// How the fake server answers the gateway's login.
#[derive(Debug, Clone, Copy)]
enum UpstreamLogin {
    /// OK.
    Accept,
    /// ERR with this code, SQLSTATE and message.
    Refuse(u16, &'static str, &'static str),
    /// AuthSwitchRequest to mysql_native_password with [`SWITCH_NONCE`], then OK.
    SwitchToNative,
    /// caching_sha2_password "perform full authentication" (0x01 0x04) without TLS: serves its
    /// password encrypted to its (pinned) RSA key, decrypts it, then OK.
    Sha2FullAuth,
}

/// The nonce of the fake server's auth switch.
const SWITCH_NONCE: &[u8; 20] = b"Switch-nonce-ABCDEFG";
/// The fake server's RSA key (caching_sha2_password full authentication without TLS).
const UPSTREAM_RSA_KEY: &str = include_str!("testdata/upstream_rsa_key.pem");
const UPSTREAM_RSA_PUB: &str = include_str!("testdata/upstream_rsa_pub.pem");

/// What the gateway's HandshakeResponse41 said.
#[derive(Debug, Clone)]
struct LoginSeen {
    caps: CapabilityFlags,
    user: Vec<u8>,
    auth_response: Vec<u8>,
    plugin: Option<Vec<u8>>,
    database: Option<Vec<u8>>,
    attrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One command packet the server received.
#[derive(Debug, Clone)]
struct Received {
    seq: u8,
    payload: Vec<u8>,
    raw: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerPhase {
    NotConnected,
    ExpectLogin,
    /// Waiting for the login packet with this sequence id (after an auth switch or more data).
    LoginStep(u8),
    Command,
    Refused,
}

/// A scripted MySQL server.
struct FakeServer {
    /// Capabilities in the greeting.
    caps: CapabilityFlags,
    /// The greeting's auth plugin.
    plugin: &'static str,
    login_reply: UpstreamLogin,
    phase: ServerPhase,
    inbox: Vec<u8>,
    /// Every byte the gateway ever sent upstream.
    received: Vec<u8>,
    login: Option<LoginSeen>,
    /// Command-phase packets, in order.
    commands: Vec<Received>,
    /// Replies (payload lists) for the next commands that expect a response.
    script: VecDeque<Vec<Vec<u8>>>,
    /// Bytes to deliver to the gateway.
    outbox: Vec<u8>,
    /// Raw bytes of every reply sent in the command phase.
    replies: Vec<Vec<u8>>,
    /// The upstream session's default database (COM_RESET_CONNECTION keeps it, as MySQL does).
    current_db: Option<Vec<u8>>,
}

impl FakeServer {
    fn new() -> FakeServer {
        FakeServer {
            // What a MySQL 8 server offers, including what the gateway must never take.
            caps: CapabilityFlags::GATEWAY
                | CapabilityFlags::CLIENT_COMPRESS
                | CapabilityFlags::CLIENT_LOCAL_FILES
                | CapabilityFlags::CLIENT_SSL
                | CapabilityFlags::CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
                | CapabilityFlags::CLIENT_QUERY_ATTRIBUTES,
            plugin: "mysql_native_password",
            login_reply: UpstreamLogin::Accept,
            phase: ServerPhase::NotConnected,
            inbox: Vec::new(),
            received: Vec::new(),
            login: None,
            commands: Vec::new(),
            script: VecDeque::new(),
            outbox: Vec::new(),
            replies: Vec::new(),
            current_db: None,
        }
    }

    /// Capabilities the gateway asked for (known after the login).
    fn login_caps(&self) -> CapabilityFlags {
        self.login.as_ref().map(|l| l.caps).unwrap_or_default()
    }

    /// The TCP connection is up: greet.
    fn connect(&mut self) {
        assert_eq!(self.phase, ServerPhase::NotConnected, "connected twice");
        let mut g = Vec::new();
        encode_handshake_v10(
            &mut g,
            &HandshakeV10 {
                server_version: b"8.0.36",
                connection_id: UPSTREAM_CONNECTION_ID,
                auth_data_1: &SERVER_NONCE[..8],
                auth_data_2: &SERVER_NONCE[8..],
                capabilities: self.caps,
                charset: 255,
                status: AUTOCOMMIT,
                mariadb_capabilities: 0,
                auth_plugin: Some(self.plugin.as_bytes()),
            },
        );
        self.outbox.extend(frame(0, &g));
        self.phase = ServerPhase::ExpectLogin;
    }

    fn receive(&mut self, bytes: &[u8]) {
        assert_ne!(
            self.phase,
            ServerPhase::NotConnected,
            "bytes sent upstream before the connection was up"
        );
        self.received.extend_from_slice(bytes);
        self.inbox.extend_from_slice(bytes);
        while let Some(p) = parse_packet(&self.inbox, usize::MAX).expect("gateway framing") {
            let wire_len = p.wire_len;
            let (seq, last_seq, payload) = (p.seq, p.last_seq, p.payload.into_owned());
            let raw: Vec<u8> = self.inbox.drain(..wire_len).collect();
            self.on_packet(seq, last_seq, payload, raw);
        }
    }

    fn on_packet(&mut self, seq: u8, last_seq: u8, payload: Vec<u8>, raw: Vec<u8>) {
        match self.phase {
            ServerPhase::NotConnected => unreachable!(),
            ServerPhase::ExpectLogin => self.on_login(seq, &payload),
            ServerPhase::LoginStep(expected) => {
                assert_eq!(seq, expected, "login packets continue the sequence");
                self.on_login_step(seq, &payload)
            }
            ServerPhase::Refused => panic!("gateway kept talking after a refused login"),
            ServerPhase::Command => {
                assert_eq!(seq, 0, "a command starts a new sequence");
                let command = Command(payload[0]);
                match command {
                    Command::COM_INIT_DB => self.current_db = Some(payload[1..].to_vec()),
                    Command::COM_RESET_CONNECTION => {} // keeps the default database
                    _ => {}
                }
                self.commands.push(Received {
                    seq,
                    payload: payload.clone(),
                    raw,
                });
                let silent = matches!(
                    command,
                    Command::COM_STMT_CLOSE | Command::COM_STMT_SEND_LONG_DATA | Command::COM_QUIT
                );
                if silent {
                    return;
                }
                let reply = self.script.pop_front().or_else(|| {
                    matches!(
                        command,
                        Command::COM_PING | Command::COM_RESET_CONNECTION | Command::COM_INIT_DB
                    )
                    .then(|| vec![ok_payload(self.login_caps(), AUTOCOMMIT, 0)])
                });
                if let Some(reply) = reply {
                    let bytes = frame_all(last_seq.wrapping_add(1), &reply);
                    self.outbox.extend_from_slice(&bytes);
                    self.replies.push(bytes);
                }
            }
        }
    }

    /// Checks the gateway's HandshakeResponse41 and answers it.
    fn on_login(&mut self, seq: u8, payload: &[u8]) {
        assert_eq!(seq, 1, "handshake response follows the greeting");
        let r =
            parse_handshake_response(payload).expect("gateway sends a valid HandshakeResponse41");
        assert!(r.capabilities.contains(
            CapabilityFlags::CLIENT_PROTOCOL_41
                | CapabilityFlags::CLIENT_SECURE_CONNECTION
                | CapabilityFlags::CLIENT_PLUGIN_AUTH
        ));
        let never = CapabilityFlags::CLIENT_COMPRESS
            | CapabilityFlags::CLIENT_LOCAL_FILES
            | CapabilityFlags::CLIENT_QUERY_ATTRIBUTES
            | CapabilityFlags::CLIENT_SSL;
        assert!(
            (r.capabilities & never).is_empty(),
            "gateway asked upstream for {:?}",
            r.capabilities & never
        );
        assert_eq!(
            r.username,
            UPSTREAM_USER.as_bytes(),
            "logs in as the upstream user"
        );
        assert_eq!(r.auth_plugin, Some(self.plugin.as_bytes()));
        let expected: Vec<u8> = match self.plugin {
            "caching_sha2_password" => {
                sha2_scramble(UPSTREAM_PASSWORD.as_bytes(), SERVER_NONCE).to_vec()
            }
            _ => native_scramble(UPSTREAM_PASSWORD.as_bytes(), SERVER_NONCE).to_vec(),
        };
        assert_eq!(
            r.auth_response,
            &expected[..],
            "scramble of the upstream password for the server's nonce"
        );
        self.login = Some(LoginSeen {
            caps: r.capabilities,
            user: r.username.to_vec(),
            auth_response: r.auth_response.to_vec(),
            plugin: r.auth_plugin.map(<[u8]>::to_vec),
            database: r.database.map(<[u8]>::to_vec),
            attrs: r
                .connect_attrs
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
        });
        self.current_db = r.database.map(<[u8]>::to_vec);
        let caps = r.capabilities;
        match self.login_reply {
            UpstreamLogin::Accept => {
                let mut replies = Vec::new();
                if self.plugin == "caching_sha2_password" {
                    let mut fast_ok = Vec::new();
                    encode_auth_more_data(&mut fast_ok, &[0x03]);
                    replies.push(fast_ok);
                }
                replies.push(ok_payload(caps, AUTOCOMMIT, 0));
                self.outbox.extend(frame_all(2, &replies));
                self.phase = ServerPhase::Command;
            }
            UpstreamLogin::Refuse(code, state, msg) => {
                self.outbox.extend(frame(2, &err_payload(code, state, msg)));
                self.phase = ServerPhase::Refused;
            }
            UpstreamLogin::SwitchToNative => {
                let mut switch = Vec::new();
                crate::wire::handshake::encode_scramble_switch(
                    &mut switch,
                    b"mysql_native_password",
                    SWITCH_NONCE,
                );
                self.outbox.extend(frame(2, &switch));
                self.phase = ServerPhase::LoginStep(3);
            }
            UpstreamLogin::Sha2FullAuth => {
                assert_eq!(self.plugin, "caching_sha2_password");
                let mut full = Vec::new();
                encode_auth_more_data(&mut full, &[0x04]);
                self.outbox.extend(frame(2, &full));
                self.phase = ServerPhase::LoginStep(3);
            }
        }
    }

    /// The gateway's later login packets (auth switch response, full authentication).
    fn on_login_step(&mut self, seq: u8, payload: &[u8]) {
        let password = UPSTREAM_PASSWORD.as_bytes();
        let caps = self.login_caps();
        match (self.login_reply, seq) {
            (UpstreamLogin::SwitchToNative, 3) => {
                assert_eq!(
                    payload,
                    native_scramble(password, SWITCH_NONCE),
                    "switch answer"
                );
                self.outbox
                    .extend(frame(4, &ok_payload(caps, AUTOCOMMIT, 0)));
                self.phase = ServerPhase::Command;
            }
            // The gateway encrypts to the key pinned in its configuration right away; it never
            // asks for the key over plaintext (0x02).
            (UpstreamLogin::Sha2FullAuth, 3) => {
                assert_ne!(payload, [0x02], "asked for the public key over plaintext");
                use rsa::pkcs1::DecodeRsaPrivateKey;
                let key = rsa::RsaPrivateKey::from_pkcs1_pem(UPSTREAM_RSA_KEY).unwrap();
                let plain = key
                    .decrypt(rsa::Oaep::new::<sha1::Sha1>(), payload)
                    .expect("RSA-OAEP ciphertext");
                let expected: Vec<u8> = password
                    .iter()
                    .chain(&[0])
                    .zip(SERVER_NONCE.iter().cycle())
                    .map(|(p, n)| p ^ n)
                    .collect();
                assert_eq!(plain, expected, "(password NUL) XOR nonce");
                self.outbox
                    .extend(frame(4, &ok_payload(caps, AUTOCOMMIT, 0)));
                self.phase = ServerPhase::Command;
            }
            other => panic!("unexpected login packet {other:?}: {payload:?}"),
        }
    }
}

// ----- seams for tests --------------------------------------------------------------------------

/// What the gate was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    identity: String,
    database: Option<String>,
    command: Command,
}

#[derive(Debug, Clone, PartialEq)]
struct SeenContext {
    database: Option<String>,
    mode: Option<crate::sql::Mode>,
    prepared: Option<Vec<u8>>,
}

/// Refuses COM_QUERY containing "DROP", holds COM_QUERY containing "HOLD", allows the rest;
/// records every question.
#[derive(Default)]
struct TestGate {
    asked: Mutex<Vec<Asked>>,
    /// Database, lexical mode and prepared SQL of every question.
    contexts: Mutex<Vec<SeenContext>>,
    next_request: AtomicU64,
}

const GATE_REFUSAL: ErrorCode = ErrorCode::ER_SPECIFIC_ACCESS_DENIED_ERROR;
const GATE_MESSAGE: &str = "Gatehouse: DROP is not allowed for this identity";

impl CommandGate for TestGate {
    fn decide(&self, ctx: &CommandContext<'_>, command: &CommandPacket<'_>) -> Decision {
        self.contexts.lock().unwrap().push(SeenContext {
            database: ctx.database.map(str::to_owned),
            mode: ctx.mode,
            prepared: ctx.prepared_sql.map(<[u8]>::to_vec),
        });
        self.asked.lock().unwrap().push(Asked {
            identity: ctx.identity.name.clone(),
            database: ctx.database.map(str::to_owned),
            command: command.command(),
        });
        match command {
            CommandPacket::Query { sql } if contains(sql, b"DROP") => Decision::Refuse {
                code: GATE_REFUSAL,
                message: GATE_MESSAGE.into(),
            },
            CommandPacket::Query { sql } if contains(sql, b"HOLD") => Decision::Hold {
                request_id: 100 + self.next_request.fetch_add(1, Ordering::Relaxed),
            },
            _ => Decision::Allow,
        }
    }
}

/// Uppercases every text value; records the column names each row was given.
#[derive(Default)]
struct Uppercase {
    columns_seen: Mutex<Vec<Vec<String>>>,
}

impl RowTransform for Uppercase {
    fn is_identity(&self) -> bool {
        false
    }
    fn on_row(&self, columns: &[ColumnInfo], format: RowFormat, payload: &[u8], out: &mut Vec<u8>) {
        self.columns_seen
            .lock()
            .unwrap()
            .push(columns.iter().map(|c| c.name.clone()).collect());
        match format {
            RowFormat::Text => {
                let values: Vec<Option<Vec<u8>>> = text_row_values(payload)
                    .map(|v| v.expect("text row").map(|b| b.to_ascii_uppercase()))
                    .collect();
                encode_text_row(out, values.iter().map(|v| v.as_deref()));
            }
            RowFormat::Binary => out.extend_from_slice(payload),
        }
    }
}

// ----- the pair ---------------------------------------------------------------------------------

/// What happens when the session asks to connect upstream.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    Reachable,
    Unreachable(&'static str),
    /// The test calls `handle_server_connected` itself (or never).
    Manual,
}

struct Setup {
    deprecate_eof: bool,
    limits: LimitsConfig,
    gate: Arc<dyn CommandGate>,
    rows: Arc<dyn RowTransform>,
    /// The upstream's pinned RSA key.
    upstream_public_key: Option<Vec<u8>>,
    /// Live sessions (shared between pairs to test KILL across sessions).
    registry: Arc<crate::session::kill::SessionRegistry>,
    upstream: Upstream,
    server: FakeServer,
    /// Bytes are handed to the session in pieces of at most this size.
    chunk: usize,
    /// TLS offered to clients.
    client_tls: Option<Arc<rustls::ServerConfig>>,
    require_client_tls: bool,
    /// Shared with other sessions (a fresh one when `None`).
    identities: Option<Arc<IdentityStore>>,
    /// Shared with other sessions (a fresh one when `None`).
    target: Option<Arc<TargetInfo>>,
    /// Session recording.
    recording: Option<Arc<super::phases::Recording>>,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            deprecate_eof: true,
            limits: LimitsConfig::default(),
            gate: Arc::new(AllowAll),
            rows: Arc::new(PassThrough),
            registry: Default::default(),
            upstream_public_key: None,
            upstream: Upstream::Reachable,
            server: FakeServer::new(),
            chunk: usize::MAX,
            client_tls: None,
            require_client_tls: false,
            identities: None,
            target: None,
            recording: None,
        }
    }
}

fn identity_store() -> Arc<IdentityStore> {
    Arc::new(
        IdentityStore::from_config(&[
            identity("alice", ALICE_PW, true),
            identity("bob", BOB_PW, true),
            identity("carol", CAROL_PW, false),
        ])
        .expect("identities"),
    )
}

fn identity(name: &str, password: &str, native: bool) -> IdentityConfig {
    IdentityConfig {
        name: name.into(),
        groups: vec!["dev".into()],
        secret: cheap_secret(password, native).to_string(),
    }
}

/// Fake client ↔ session ↔ fake server, on a virtual clock.
struct Pair {
    start: Instant,
    now: Instant,
    session: Session,
    /// Capabilities the client asks for.
    client_caps: CapabilityFlags,
    /// The greeting the client received.
    greeting_caps: CapabilityFlags,
    nonce: Vec<u8>,
    /// Bytes received by the client and not yet read.
    client_in: Vec<u8>,
    server: FakeServer,
    upstream: Upstream,
    events: Vec<Event>,
    chunk: usize,
    /// The client's TLS, once it upgraded.
    tls: Option<rustls::ClientConnection>,
    /// Sequence id of the handshake response (2 after an SSLRequest).
    hs_seq: u8,
}

impl Pair {
    fn new(setup: Setup) -> Pair {
        let cfg = SessionConfig {
            auth: AuthMode::GatewayIdentity,
            target_name: TARGET.into(),
            target: setup.target.unwrap_or_default(),
            identities: setup.identities.unwrap_or_else(identity_store),
            client_tls: setup.client_tls,
            require_client_tls: setup.require_client_tls,
            upstream_user: UPSTREAM_USER.into(),
            upstream_password: UPSTREAM_PASSWORD.into(),
            upstream_tls: None,
            upstream_public_key: setup.upstream_public_key,
            limits: setup.limits,
            gate: setup.gate,
            rows: setup.rows,
            registry: setup.registry,
            events: Arc::new(super::phases::DiscardEvents),
            recording: setup.recording,
        };
        let start = Instant::now();
        let random = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let session = Session::new(Arc::new(cfg), 7, PEER.parse().unwrap(), start, random);
        let mut client_caps = CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_MULTI_STATEMENTS
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_CONNECT_ATTRS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_SESSION_TRACK
            // What a client may ask for and the gateway must not grant.
            | CapabilityFlags::CLIENT_LOCAL_FILES
            | CapabilityFlags::CLIENT_QUERY_ATTRIBUTES;
        client_caps.set(CapabilityFlags::CLIENT_DEPRECATE_EOF, setup.deprecate_eof);
        let mut pair = Pair {
            start,
            now: start,
            session,
            client_caps,
            greeting_caps: CapabilityFlags::empty(),
            nonce: Vec::new(),
            client_in: Vec::new(),
            server: setup.server,
            upstream: setup.upstream,
            events: Vec::new(),
            chunk: setup.chunk,
            tls: None,
            hs_seq: 1,
        };
        pair.transfer();
        let greeting = pair.client_recv();
        assert_eq!(greeting.len(), 1, "one greeting");
        assert_eq!(greeting[0].seq, 0);
        let g = parse_handshake_v10(&greeting[0].payload).expect("greeting parses");
        pair.greeting_caps = g.capabilities;
        pair.nonce = g.nonce();
        assert_eq!(g.auth_plugin, Some(&b"caching_sha2_password"[..]));
        pair
    }

    fn with_defaults() -> Pair {
        Pair::new(Setup::default())
    }

    /// Capabilities client and gateway agreed on (the layout of every later packet).
    fn caps(&self) -> CapabilityFlags {
        self.client_caps & self.greeting_caps
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Moves bytes and events until nothing moves.
    fn transfer(&mut self) {
        let mut buf = Vec::new();
        loop {
            let mut progress = false;
            while let Some(event) = self.session.poll_event() {
                progress = true;
                if matches!(event, Event::ConnectUpstream) {
                    match self.upstream {
                        Upstream::Reachable => {
                            self.session.handle_server_connected(self.now);
                            self.server.connect();
                        }
                        Upstream::Unreachable(why) => {
                            self.session.handle_server_unreachable(self.now, why)
                        }
                        Upstream::Manual => {}
                    }
                }
                self.events.push(event);
            }
            if self.session.poll_transmit(Peer::Client, &mut buf) {
                match self.tls.as_mut() {
                    None => self.client_in.extend_from_slice(&buf),
                    Some(tls) => {
                        let mut rd = &buf[..];
                        while !rd.is_empty() {
                            tls.read_tls(&mut rd).expect("read_tls");
                            let state = tls.process_new_packets().expect("client TLS");
                            let n = state.plaintext_bytes_to_read();
                            let start = self.client_in.len();
                            self.client_in.resize(start + n, 0);
                            std::io::Read::read_exact(
                                &mut tls.reader(),
                                &mut self.client_in[start..],
                            )
                            .expect("plaintext");
                        }
                    }
                }
                progress = true;
            }
            if let Some(tls) = self.tls.as_mut() {
                if tls.wants_write() {
                    let mut out = Vec::new();
                    while tls.wants_write() {
                        tls.write_tls(&mut out).expect("write_tls");
                    }
                    self.session.handle_client(self.now, &out);
                    progress = true;
                }
            }
            if self.session.poll_transmit(Peer::Server, &mut buf) {
                self.server.receive(&buf);
                progress = true;
            }
            if !self.server.outbox.is_empty() {
                let bytes = std::mem::take(&mut self.server.outbox);
                for piece in bytes.chunks(self.chunk) {
                    self.session.handle_server(self.now, piece);
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }

    /// The client writes raw bytes.
    fn client_send_raw(&mut self, bytes: &[u8]) {
        let encrypted;
        let bytes = match self.tls.as_mut() {
            None => bytes,
            Some(tls) => {
                std::io::Write::write_all(&mut tls.writer(), bytes).expect("TLS write");
                let mut out = Vec::new();
                while tls.wants_write() {
                    tls.write_tls(&mut out).expect("write_tls");
                }
                encrypted = out;
                &encrypted[..]
            }
        };
        for piece in bytes.chunks(self.chunk) {
            self.session.handle_client(self.now, piece);
        }
        self.transfer();
    }

    /// Sends an SSLRequest and runs the TLS handshake.
    fn start_tls(&mut self, roots: &rustls::RootCertStore) {
        self.client_caps |= CapabilityFlags::CLIENT_SSL;
        let mut req = Vec::new();
        crate::wire::handshake::encode_ssl_request(
            &mut req,
            &HandshakeResponse41 {
                capabilities: self.client_caps,
                max_packet_size: 1 << 24,
                charset: 45,
                ..Default::default()
            },
        );
        self.client_send(1, &req);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("gatehouse.test").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        self.tls = Some(conn);
        self.transfer();
        assert!(
            !self.tls.as_ref().unwrap().is_handshaking(),
            "TLS handshake done"
        );
        self.hs_seq = 2;
    }

    /// The client writes one packet.
    fn client_send(&mut self, seq: u8, payload: &[u8]) {
        self.client_send_raw(&frame(seq, payload));
    }

    /// Packets the client received since the last call.
    fn client_recv(&mut self) -> Vec<Pkt> {
        split_packets(&mut self.client_in)
    }

    /// Raw bytes the client received since the last call.
    fn client_recv_raw(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client_in)
    }

    /// The fake server sends raw bytes now.
    fn server_send_raw(&mut self, bytes: &[u8]) {
        self.server.outbox.extend_from_slice(bytes);
        self.transfer();
    }

    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Command records among the events so far (taking all events).
    fn take_commands(&mut self) -> Vec<CommandRecord> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Command(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed(r) => Some(r.clone()),
            _ => None,
        })
    }

    /// Sends HandshakeResponse41 (sequence id 1).
    fn send_handshake_response(
        &mut self,
        user: &str,
        plugin: &str,
        auth_response: &[u8],
        database: Option<&str>,
    ) {
        let mut caps = self.client_caps;
        caps.set(CapabilityFlags::CLIENT_CONNECT_WITH_DB, database.is_some());
        let mut payload = Vec::new();
        encode_handshake_response(
            &mut payload,
            &HandshakeResponse41 {
                capabilities: caps,
                max_packet_size: 1 << 24,
                charset: 45,
                mariadb_capabilities: 0,
                username: user.as_bytes(),
                auth_response,
                database: database.map(str::as_bytes),
                auth_plugin: Some(plugin.as_bytes()),
                connect_attrs: vec![
                    (b"_client_name", b"fake"),
                    (b"_gatehouse_identity", b"root"),
                ],
            },
        );
        self.client_send(self.hs_seq, &payload);
    }

    /// Logs in with mysql_native_password; returns what the client got back.
    fn login_native(&mut self, user: &str, password: &str, database: Option<&str>) -> Vec<Pkt> {
        let scramble = native_scramble(password.as_bytes(), &self.nonce);
        self.send_handshake_response(user, "mysql_native_password", &scramble, database);
        self.client_recv()
    }

    /// A successful login as alice (asserts it).
    fn login(&mut self) {
        self.login_db(None)
    }

    fn login_db(&mut self, database: Option<&str>) {
        let got = self.login_native("alice", ALICE_PW, database);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].seq, 2);
        assert_ok(&got[0], self.caps());
        assert!(!self.session.is_closed());
        self.take_events();
    }

    /// Scripts the server's reply, sends `payload` as a command and returns the client's raw
    /// reply bytes.
    fn command(&mut self, payload: &[u8], reply: Vec<Vec<u8>>) -> Vec<u8> {
        self.server.script.push_back(reply);
        self.client_send(0, payload);
        self.client_recv_raw()
    }

    /// COM_QUERY with a scripted reply; returns the client's raw reply bytes.
    fn query(&mut self, sql: &str, reply: Vec<Vec<u8>>) -> Vec<u8> {
        self.command(&query_payload(sql), reply)
    }

    /// Checks that `SELECT 1` still goes through and comes back.
    #[track_caller]
    fn assert_usable(&mut self) {
        let before = self.server.commands.len();
        let caps = self.caps();
        let reply = text_result(caps, &["1"], &[vec![Some(b"1")]], AUTOCOMMIT);
        let got = self.query("SELECT 1", reply);
        assert_eq!(
            self.server.commands.len(),
            before + 1,
            "SELECT 1 was forwarded"
        );
        assert_eq!(
            self.server.commands.last().unwrap().payload,
            query_payload("SELECT 1")
        );
        assert_eq!(
            &got,
            self.server.replies.last().unwrap(),
            "SELECT 1 answered"
        );
        assert!(!self.session.is_closed());
    }

    /// Checks that no byte sent upstream carries a client's secret or scramble.
    #[track_caller]
    fn assert_no_client_secret_upstream(&self) {
        for pw in [ALICE_PW, BOB_PW, CAROL_PW] {
            assert!(
                !contains(&self.server.received, pw.as_bytes()),
                "{pw} went upstream"
            );
            let scramble = native_scramble(pw.as_bytes(), &self.nonce);
            assert!(
                !contains(&self.server.received, &scramble),
                "scramble of {pw} went upstream"
            );
            let scramble = sha2_scramble(pw.as_bytes(), &self.nonce);
            assert!(
                !contains(&self.server.received, &scramble),
                "scramble of {pw} went upstream"
            );
        }
    }
}

fn authenticated(events: &[Event]) -> Vec<(Identity, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Authenticated {
                identity,
                upstream_connection_id,
                ..
            } => Some((identity.clone(), *upstream_connection_id)),
            _ => None,
        })
        .collect()
}

// ===== 1. login and relay ======================================================================

fn login_and_query(deprecate_eof: bool) {
    let mut pair = Pair::new(Setup {
        deprecate_eof,
        ..Setup::default()
    });
    // The greeting offers what the gateway can honour, never what it cannot inspect.
    let offered = pair.greeting_caps;
    assert!(offered.contains(
        CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_DEPRECATE_EOF
    ));
    assert!(!offered.intersects(
        CapabilityFlags::CLIENT_LOCAL_FILES
            | CapabilityFlags::CLIENT_COMPRESS
            | CapabilityFlags::CLIENT_SSL
            | CapabilityFlags::CLIENT_QUERY_ATTRIBUTES
    ));
    assert_eq!(pair.nonce.len(), 20);
    assert!(
        pair.nonce.iter().all(|b| (33..127).contains(b)),
        "printable nonce"
    );

    let got = pair.login_native("alice", ALICE_PW, Some("shop"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].seq, 2);
    assert_ok(&got[0], pair.caps());

    // Upstream saw the gateway's own credential, never the client's.
    let login = pair
        .server
        .login
        .clone()
        .expect("gateway logged in upstream");
    assert_eq!(login.user, b"app");
    assert_eq!(login.plugin.as_deref(), Some(&b"mysql_native_password"[..]));
    assert_eq!(
        login.auth_response,
        native_scramble(UPSTREAM_PASSWORD.as_bytes(), SERVER_NONCE)
    );
    assert_eq!(login.database.as_deref(), Some(&b"shop"[..]));
    assert_eq!(
        login.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
        deprecate_eof,
        "upstream speaks the layout the client negotiated"
    );
    let attr = |k: &[u8]| {
        login
            .attrs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attr(b"_gatehouse_identity"),
        vec![b"alice".to_vec()],
        "client can't spoof it"
    );
    assert_eq!(attr(b"_client_name"), vec![b"fake".to_vec()]);
    assert_eq!(attr(b"_gatehouse_client"), vec![PEER.as_bytes().to_vec()]);
    pair.assert_no_client_secret_upstream();

    let events = pair.take_events();
    assert!(matches!(events[0], Event::ConnectUpstream));
    let auth = authenticated(&events);
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].0.name, "alice");
    assert_eq!(auth[0].0.groups, vec!["dev".to_string()]);
    assert_eq!(auth[0].1, UPSTREAM_CONNECTION_ID);

    // A query and its result set, byte for byte both ways.
    let caps = pair.caps();
    let sql = "SELECT id, name FROM t";
    let reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
    let sent = frame(0, &query_payload(sql));
    pair.server.script.push_back(reply);
    pair.client_send_raw(&sent);
    assert_eq!(pair.server.commands.len(), 1);
    assert_eq!(
        pair.server.commands[0].raw, sent,
        "server sees the exact bytes"
    );
    let got = pair.client_recv_raw();
    assert_eq!(
        &got, &pair.server.replies[0],
        "client gets the result set unchanged"
    );
    let packets = split_packets(&mut got.clone());
    assert_eq!(packets.len(), if deprecate_eof { 7 } else { 8 });
    assert_eq!(
        packets.iter().map(|p| p.seq).collect::<Vec<_>>(),
        (1..=packets.len() as u8).collect::<Vec<_>>()
    );

    let records = pair.take_commands();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.command, Command::COM_QUERY);
    assert_eq!(r.sql.as_deref(), Some(sql));
    assert_eq!(r.refused, None);
    assert_eq!(r.outcome.rows, 3);
    assert_eq!(r.outcome.result_sets, 1);
    assert_eq!(r.outcome.error, None);
    assert_eq!(r.response_bytes, got.len() as u64);
    pair.assert_usable();
}

#[test]
fn native_login_then_query_relayed_with_deprecate_eof() {
    login_and_query(true);
}

#[test]
fn native_login_then_query_relayed_without_deprecate_eof() {
    login_and_query(false);
}

#[test]
fn everything_works_when_bytes_arrive_one_at_a_time() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            chunk: 1,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
        let got = pair.query("SELECT id, name FROM t", reply);
        assert_eq!(&got, &pair.server.replies[0]);
        assert_eq!(pair.take_commands()[0].outcome.rows, 3);
        pair.assert_usable();
    }
}

#[test]
fn pipelined_queries_are_answered_in_order() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    pair.server
        .script
        .push_back(text_result(caps, &["a"], &[vec![Some(b"1")]], AUTOCOMMIT));
    pair.server
        .script
        .push_back(vec![ok_payload(caps, AUTOCOMMIT, 5)]);
    let mut both = frame(0, &query_payload("SELECT 1 AS a"));
    both.extend(frame(0, &query_payload("UPDATE t SET x = 1")));
    pair.client_send_raw(&both);
    assert_eq!(pair.server.commands.len(), 2);
    let got = pair.client_recv_raw();
    assert_eq!(got, pair.server.replies.concat());
    let records = pair.take_commands();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].outcome.affected_rows, 5);
}

#[test]
fn com_quit_is_forwarded_and_closes() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.client_send(0, &[Command::COM_QUIT.0]);
    assert!(pair.session.is_closed());
    assert_eq!(
        pair.server.commands.last().unwrap().payload,
        [Command::COM_QUIT.0]
    );
    assert!(pair.client_recv().is_empty(), "no answer to COM_QUIT");
    assert_eq!(pair.close_reason(), Some(CloseReason::ClientQuit));
}

#[test]
fn upstream_with_caching_sha2_fast_auth() {
    let mut server = FakeServer::new();
    server.plugin = "caching_sha2_password";
    let mut pair = Pair::new(Setup {
        server,
        ..Setup::default()
    });
    pair.login();
    pair.assert_usable();
}

// ===== 2. caching_sha2_password on the client side ===========================================

#[test]
fn caching_sha2_first_login_over_plaintext_switches_to_native() {
    let mut pair = Pair::with_defaults();
    let scramble = sha2_scramble(ALICE_PW.as_bytes(), &pair.nonce);
    pair.send_handshake_response("alice", "caching_sha2_password", &scramble, None);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].seq, 2);
    let switch = parse_auth_switch(&got[0].payload).expect("an auth switch");
    assert_eq!(switch.plugin, b"mysql_native_password");
    assert_eq!(switch.scramble(), &pair.nonce[..], "same nonce");
    assert!(
        pair.server.login.is_none(),
        "no upstream before the client is proven"
    );

    let native = native_scramble(ALICE_PW.as_bytes(), &pair.nonce);
    pair.client_send(3, &native);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].seq, 4);
    assert_ok(&got[0], pair.caps());
    let auth = authenticated(&pair.take_events());
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].0.name, "alice");
    pair.assert_no_client_secret_upstream();
    pair.assert_usable();
}

/// Runs the caching_sha2 login to its end; returns the client's packets.
fn sha2_login(user: &str, password: &str) -> (Pair, Vec<Pkt>) {
    let mut pair = Pair::with_defaults();
    let scramble = sha2_scramble(password.as_bytes(), &pair.nonce);
    pair.send_handshake_response(user, "caching_sha2_password", &scramble, None);
    let mut got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        parse_auth_switch(&got[0].payload).is_ok(),
        "switch to native first"
    );
    let native = native_scramble(password.as_bytes(), &pair.nonce);
    pair.client_send(3, &native);
    got.extend(pair.client_recv());
    (pair, got)
}

#[test]
fn caching_sha2_wrong_password_is_denied_and_closed() {
    let (pair, got) = sha2_login("alice", "not-the-password");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].seq, 4);
    let msg = assert_err(&got[1], ErrorCode::ER_ACCESS_DENIED_ERROR);
    assert_eq!(
        msg,
        "Access denied for user 'alice'@'192.0.2.10' (using password: YES)"
    );
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::AuthFailed));
    assert!(!pair
        .events
        .iter()
        .any(|e| matches!(e, Event::ConnectUpstream)));
    assert!(pair.server.received.is_empty(), "upstream never contacted");
}

#[test]
fn unknown_user_looks_exactly_like_a_wrong_password() {
    // caching_sha2 path (switch, then ERR).
    let (_, wrong) = sha2_login("alice", "not-the-password");
    let (unknown_pair, unknown) = sha2_login("mallory", "not-the-password");
    assert!(unknown_pair.session.is_closed());
    let shape = |pkts: &[Pkt], user: &str| {
        pkts.iter()
            .map(|p| {
                let text = String::from_utf8_lossy(&p.payload).replace(user, "USER");
                (p.seq, text)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&wrong, "alice"), shape(&unknown, "mallory"));
    let msg = assert_err(&unknown[1], ErrorCode::ER_ACCESS_DENIED_ERROR);
    assert_eq!(
        msg,
        "Access denied for user 'mallory'@'192.0.2.10' (using password: YES)"
    );

    // mysql_native_password path (ERR at once).
    let mut a = Pair::with_defaults();
    let wrong = a.login_native("alice", "not-the-password", None);
    let mut b = Pair::with_defaults();
    let unknown = b.login_native("mallory", "not-the-password", None);
    assert_eq!(wrong.len(), 1);
    assert_eq!(wrong[0].seq, 2);
    assert_err(&wrong[0], ErrorCode::ER_ACCESS_DENIED_ERROR);
    assert_eq!(shape(&wrong, "alice"), shape(&unknown, "mallory"));
    assert!(a.session.is_closed() && b.session.is_closed());
}

#[test]
fn identity_without_native_hash_cannot_log_in_over_plaintext() {
    // Carol's secret has no native hash and plaintext never carries a cleartext password.
    let (pair, got) = sha2_login("carol", CAROL_PW);
    assert_eq!(got.len(), 2);
    assert_err(&got[1], ErrorCode::ER_ACCESS_DENIED_ERROR);
    assert!(pair.session.is_closed());
    assert!(pair.server.received.is_empty());
}

#[test]
fn other_client_plugins_are_switched_to_native() {
    let mut pair = Pair::with_defaults();
    pair.send_handshake_response("alice", "mysql_clear_password", ALICE_PW.as_bytes(), None);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    let switch = parse_auth_switch(&got[0].payload).expect("an auth switch");
    assert_eq!(switch.plugin, b"mysql_native_password");
    pair.client_send(3, &native_scramble(ALICE_PW.as_bytes(), &pair.nonce));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_ok(&got[0], pair.caps());
}

// ===== 3. multi-result sets and errors mid-response ==========================================

#[test]
fn multi_result_sets_end_on_the_last_status() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let more = AUTOCOMMIT | StatusFlags::SERVER_MORE_RESULTS_EXISTS;
        let mut reply = text_result(caps, &["id", "name"], &three_rows(), more);
        reply.push(ok_payload(caps, more, 2)); // an UPDATE between two SELECTs
        reply.extend(text_result(caps, &["n"], &[vec![Some(b"42")]], AUTOCOMMIT));
        let got = pair.query(
            "SELECT id, name FROM t; UPDATE t SET x=1; SELECT 42 AS n",
            reply,
        );
        assert_eq!(
            &got,
            pair.server.replies.last().unwrap(),
            "deprecate_eof={deprecate_eof}"
        );
        let records = pair.take_commands();
        assert_eq!(records.len(), 1);
        let o = &records[0].outcome;
        assert_eq!((o.rows, o.result_sets, o.affected_rows), (4, 2, 2));
        assert_eq!(o.error, None);
        pair.assert_usable();
    }
}

#[test]
fn err_in_the_middle_of_rows_ends_the_response() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let mut reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
        reply.pop(); // no terminator: the server fails after the rows
        reply.pop();
        reply.push(err_payload(
            1317,
            "70100",
            "Query execution was interrupted",
        ));
        let got = pair.query("SELECT id, name FROM t", reply);
        assert_eq!(&got, pair.server.replies.last().unwrap());
        let packets = split_packets(&mut got.clone());
        assert_err(packets.last().unwrap(), ErrorCode::ER_QUERY_INTERRUPTED);
        let r = &pair.take_commands()[0];
        assert_eq!(r.outcome.error, Some(1317));
        assert_eq!(r.outcome.rows, 2);
        pair.assert_usable();
    }
}

#[test]
fn err_after_a_first_result_set_ends_a_multi_result_response() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let more = AUTOCOMMIT | StatusFlags::SERVER_MORE_RESULTS_EXISTS;
    let mut reply = text_result(caps, &["n"], &[vec![Some(b"1")]], more);
    reply.push(err_payload(
        1146,
        "42S02",
        "Table 'shop.nope' doesn't exist",
    ));
    let got = pair.query("SELECT 1 AS n; SELECT * FROM nope", reply);
    assert_eq!(&got, pair.server.replies.last().unwrap());
    assert_eq!(pair.take_commands()[0].outcome.error, Some(1146));
    pair.assert_usable();
}

// ===== 4. prepared statements ===================================================================

fn prepare_reply(
    caps: CapabilityFlags,
    stmt_id: u32,
    params: u16,
    columns: &[&str],
) -> Vec<Vec<u8>> {
    let mut ok = Vec::new();
    encode_stmt_prepare_ok(
        &mut ok,
        &StmtPrepareOk {
            stmt_id,
            num_columns: columns.len() as u16,
            num_params: params,
            warnings: 0,
        },
    );
    let mut reply = vec![ok];
    if params > 0 {
        reply.extend((0..params).map(|_| coldef("?", VAR_STRING)));
        reply.extend(columns_eof(caps, AUTOCOMMIT));
    }
    if !columns.is_empty() {
        reply.extend(columns.iter().map(|c| coldef(c, VAR_STRING)));
        reply.extend(columns_eof(caps, AUTOCOMMIT));
    }
    reply
}

fn binary_row(id: i32, name: Option<&[u8]>) -> Vec<u8> {
    let id = id.to_le_bytes();
    let mut v = Vec::new();
    encode_binary_row(
        &mut v,
        &[
            Some(BinaryValue {
                column_type: ColumnType::LONG,
                bytes: &id,
            }),
            name.map(|n| BinaryValue {
                column_type: ColumnType(VAR_STRING),
                bytes: n,
            }),
        ],
    );
    v
}

fn binary_result(
    caps: CapabilityFlags,
    status_after_defs: StatusFlags,
    rows: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    let mut reply = vec![
        vec![2],
        coldef("id", ColumnType::LONG.0),
        coldef("name", VAR_STRING),
    ];
    reply.extend(columns_eof(caps, status_after_defs));
    reply.extend(rows.iter().cloned());
    reply.push(terminator(caps, AUTOCOMMIT));
    reply
}

fn execute_payload(stmt_id: u32) -> Vec<u8> {
    // Two parameters: id (LONG) = 7, name (VAR_STRING) sent with COM_STMT_SEND_LONG_DATA.
    let mut params = vec![0x00, 0x01, ColumnType::LONG.0, 0x00, VAR_STRING, 0x00];
    params.extend_from_slice(&7i32.to_le_bytes());
    command_payload(
        &CommandPacket::StmtExecute(StmtExecute {
            stmt_id,
            flags: 0,
            iteration_count: 1,
            params: &params,
        }),
        CapabilityFlags::empty(),
    )
}

#[test]
fn prepared_statement_prepare_long_data_execute_close() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let sql = "SELECT id, name FROM t WHERE id = ? AND name = ?";

        // COM_STMT_PREPARE: params and columns pass through unchanged.
        let prepare = command_payload(
            &CommandPacket::StmtPrepare {
                sql: sql.as_bytes(),
            },
            caps,
        );
        let got = pair.command(&prepare, prepare_reply(caps, 1, 2, &["id", "name"]));
        assert_eq!(
            &got,
            pair.server.replies.last().unwrap(),
            "deprecate_eof={deprecate_eof}"
        );
        let r = &pair.take_commands()[0];
        assert_eq!(r.command, Command::COM_STMT_PREPARE);
        assert_eq!(r.sql.as_deref(), Some(sql));
        assert_eq!(r.outcome.prepared, Some((1, 2)));

        // COM_STMT_SEND_LONG_DATA: forwarded, no response.
        let long_data = command_payload(
            &CommandPacket::StmtSendLongData {
                stmt_id: 1,
                param_id: 1,
                data: b"a long name",
            },
            caps,
        );
        let before = pair.server.replies.len();
        pair.client_send(0, &long_data);
        assert_eq!(pair.server.commands.last().unwrap().payload, long_data);
        assert!(
            pair.client_recv().is_empty(),
            "no response to SEND_LONG_DATA"
        );
        assert_eq!(pair.server.replies.len(), before);
        let r = &pair.take_commands()[0];
        assert_eq!(
            (r.command, r.stmt_id),
            (Command::COM_STMT_SEND_LONG_DATA, Some(1))
        );

        // COM_STMT_EXECUTE: binary rows, byte for byte.
        let rows = [binary_row(7, Some(b"a long name")), binary_row(8, None)];
        let got = pair.command(&execute_payload(1), binary_result(caps, AUTOCOMMIT, &rows));
        assert_eq!(
            pair.server.commands.last().unwrap().payload,
            execute_payload(1)
        );
        assert_eq!(&got, pair.server.replies.last().unwrap());
        let r = &pair.take_commands()[0];
        assert_eq!((r.command, r.stmt_id), (Command::COM_STMT_EXECUTE, Some(1)));
        assert_eq!(r.outcome.rows, 2);

        // COM_STMT_CLOSE: no response expected; the next command still works.
        let close = command_payload(&CommandPacket::StmtClose { stmt_id: 1 }, caps);
        pair.client_send(0, &close);
        assert!(pair.client_recv().is_empty());
        assert_eq!(pair.server.commands.last().unwrap().payload, close);
        pair.assert_usable();
    }
}

#[test]
fn stmt_close_pipelined_with_the_next_query() {
    // Connectors write COM_STMT_CLOSE and the next command in one go.
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    pair.server
        .script
        .push_back(text_result(caps, &["1"], &[vec![Some(b"1")]], AUTOCOMMIT));
    let mut bytes = frame(
        0,
        &command_payload(&CommandPacket::StmtClose { stmt_id: 3 }, caps),
    );
    bytes.extend(frame(0, &query_payload("SELECT 1")));
    pair.client_send_raw(&bytes);
    assert_eq!(pair.server.commands.len(), 2);
    assert_eq!(pair.client_recv_raw(), pair.server.replies[0]);
    pair.assert_usable();
}

#[test]
fn prepare_without_params_or_columns_is_one_packet() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let prepare = command_payload(&CommandPacket::StmtPrepare { sql: b"DO 1" }, caps);
    let got = pair.command(&prepare, prepare_reply(caps, 9, 0, &[]));
    assert_eq!(&got, pair.server.replies.last().unwrap());
    assert_eq!(pair.take_commands()[0].outcome.prepared, Some((9, 0)));
    pair.assert_usable();
}

#[test]
fn prepare_error_ends_the_response() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let prepare = command_payload(&CommandPacket::StmtPrepare { sql: b"SELEC 1" }, caps);
    let got = pair.command(
        &prepare,
        vec![err_payload(1064, "42000", "You have an error")],
    );
    assert_eq!(&got, pair.server.replies.last().unwrap());
    pair.assert_usable();
}

#[test]
fn cursor_execute_then_fetch() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        // Execute with a read-only cursor: metadata, then a terminator with CURSOR_EXISTS.
        let mut exec = execute_payload(1);
        exec[5] = 0x01; // CURSOR_TYPE_READ_ONLY
        let cursor = AUTOCOMMIT | StatusFlags::SERVER_STATUS_CURSOR_EXISTS;
        let mut reply = vec![
            vec![2],
            coldef("id", ColumnType::LONG.0),
            coldef("name", VAR_STRING),
        ];
        match columns_eof(caps, cursor) {
            Some(eof) => reply.push(eof),
            None => reply.push(terminator(caps, cursor)),
        }
        let got = pair.command(&exec, reply);
        assert_eq!(
            &got,
            pair.server.replies.last().unwrap(),
            "deprecate_eof={deprecate_eof}"
        );
        assert_eq!(
            pair.take_commands().len(),
            1,
            "execute finished after its metadata"
        );

        // COM_STMT_FETCH: rows, then a terminator.
        let fetch = command_payload(
            &CommandPacket::StmtFetch {
                stmt_id: 1,
                num_rows: 10,
            },
            caps,
        );
        let reply = vec![
            binary_row(1, Some(b"x")),
            binary_row(2, Some(b"y")),
            terminator(caps, AUTOCOMMIT | StatusFlags::SERVER_STATUS_LAST_ROW_SENT),
        ];
        let got = pair.command(&fetch, reply);
        assert_eq!(&got, pair.server.replies.last().unwrap());
        assert_eq!(pair.take_commands()[0].outcome.rows, 2);
        pair.assert_usable();
    }
}

// ===== 5. protocol violations ==================================================================

fn small_packets() -> Setup {
    Setup {
        limits: LimitsConfig {
            max_packet_size: LimitsConfig::MIN_PACKET_SIZE,
            ..LimitsConfig::default()
        },
        ..Setup::default()
    }
}

#[test]
fn oversized_client_packet_is_refused_and_closes() {
    let mut pair = Pair::new(small_packets());
    pair.login();
    let sql = format!("SELECT '{}'", "x".repeat(2000));
    pair.client_send(0, &query_payload(&sql));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_err(&got[0], ErrorCode::ER_NET_PACKET_TOO_LARGE);
    assert!(pair.session.is_closed());
    assert!(pair.server.commands.is_empty(), "nothing forwarded");
    assert!(matches!(
        pair.close_reason(),
        Some(CloseReason::ProtocolError(_))
    ));
}

#[test]
fn oversized_packet_err_continues_its_sequence() {
    let mut pair = Pair::new(small_packets());
    pair.login();
    let sql = format!("SELECT '{}'", "x".repeat(2000));
    pair.client_send(0, &query_payload(&sql));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_err(&got[0], ErrorCode::ER_NET_PACKET_TOO_LARGE);
    assert_eq!(
        got[0].seq, 1,
        "answers the command (sequence id 0) with id 1"
    );

    let mut pair = Pair::new(small_packets());
    let mut payload = vec![0u8; 2000];
    payload[..4].copy_from_slice(&CapabilityFlags::CLIENT_PROTOCOL_41.bits().to_le_bytes());
    pair.client_send(1, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    // Before authentication no legitimate packet is that large: a bad handshake.
    assert_err(&got[0], ErrorCode::ER_HANDSHAKE_ERROR);
    assert_eq!(
        got[0].seq, 2,
        "answers the handshake response (id 1) with id 2"
    );
}

#[test]
fn oversized_handshake_response_is_refused() {
    let mut pair = Pair::new(small_packets());
    let mut payload = vec![0u8; 2000];
    payload[..4].copy_from_slice(&CapabilityFlags::CLIENT_PROTOCOL_41.bits().to_le_bytes());
    pair.client_send(1, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_err(&got[0], ErrorCode::ER_HANDSHAKE_ERROR);
    assert!(pair.session.is_closed());
    assert!(pair.server.received.is_empty());
}

#[test]
fn wrong_sequence_id_is_out_of_order_and_closes() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.client_send(3, &query_payload("SELECT 1"));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_err(&got[0], ErrorCode::ER_NET_PACKETS_OUT_OF_ORDER);
    assert!(pair.session.is_closed());
    assert!(pair.server.commands.is_empty(), "nothing forwarded");

    // Also during the handshake.
    let mut pair = Pair::with_defaults();
    let scramble = native_scramble(ALICE_PW.as_bytes(), &pair.nonce);
    let mut payload = Vec::new();
    encode_handshake_response(
        &mut payload,
        &HandshakeResponse41 {
            capabilities: pair.client_caps,
            max_packet_size: 1 << 24,
            charset: 45,
            username: b"alice",
            auth_response: &scramble,
            auth_plugin: Some(b"mysql_native_password"),
            ..Default::default()
        },
    );
    pair.client_send(5, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_err(&got[0], ErrorCode::ER_NET_PACKETS_OUT_OF_ORDER);
    assert!(pair.session.is_closed());
    assert!(pair.server.received.is_empty());
}

#[test]
fn unknown_command_is_refused_and_connection_stays_usable() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.client_send(0, &[0x50, 1, 2, 3]);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    let msg = assert_err(&got[0], ErrorCode::ER_UNKNOWN_COM_ERROR);
    assert!(msg.contains("0x50"), "{msg}");
    assert!(!pair.session.is_closed());
    assert!(pair.server.commands.is_empty(), "nothing forwarded");
    let r = &pair.take_commands()[0];
    assert_eq!(r.command, Command(0x50));
    assert_eq!(r.refused, Some(1047));
    pair.assert_usable();
}

#[test]
fn malformed_known_command_is_refused_and_connection_stays_usable() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.client_send(0, &[Command::COM_STMT_CLOSE.0, 1]); // stmt id cut short
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    let e = parse_err(&got[0].payload).expect("ERR");
    assert_eq!(e.code, 1835);
    assert!(pair.server.commands.is_empty());
    pair.assert_usable();
}

#[test]
fn empty_or_garbage_handshake_response_is_bad_handshake() {
    let ssl_request_without_tls = {
        let mut v = Vec::new();
        crate::wire::handshake::encode_ssl_request(
            &mut v,
            &HandshakeResponse41 {
                capabilities: CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_SSL,
                ..Default::default()
            },
        );
        v
    };
    let no_protocol_41 = {
        let mut v = Vec::new();
        encode_handshake_response(
            &mut v,
            &HandshakeResponse41 {
                capabilities: CapabilityFlags::CLIENT_SECURE_CONNECTION,
                username: b"alice",
                ..Default::default()
            },
        );
        v
    };
    for payload in [
        Vec::new(),
        vec![0xFF; 10],
        b"GET / HTTP/1.1\r\nHost: db\r\n\r\n".to_vec(),
        ssl_request_without_tls,
        no_protocol_41,
    ] {
        let mut pair = Pair::with_defaults();
        pair.client_send(1, &payload);
        let got = pair.client_recv();
        assert_eq!(got.len(), 1, "{payload:?}");
        assert_eq!(got[0].seq, 2);
        let msg = assert_err(&got[0], ErrorCode::ER_HANDSHAKE_ERROR);
        assert_eq!(msg, "Bad handshake");
        assert!(pair.session.is_closed());
        assert!(pair.server.received.is_empty());
        assert!(!pair
            .events
            .iter()
            .any(|e| matches!(e, Event::ConnectUpstream)));
    }
}

#[test]
fn client_eof_closes_the_session() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.session.handle_client_eof(pair.now);
    pair.transfer();
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::ClientGone));
}

// ===== 6. seams ==================================================================================

fn gated() -> (Pair, Arc<TestGate>) {
    let gate = Arc::new(TestGate::default());
    let mut pair = Pair::new(Setup {
        gate: gate.clone(),
        ..Setup::default()
    });
    pair.login_db(Some("shop"));
    (pair, gate)
}

/// The gate is asked in the session's real context, followed without session-state tracking:
/// `USE` changes the database, `SET sql_mode` the lexical mode (unknown after `= @saved`),
/// and an EXECUTE carries the SQL its statement was prepared from until it is closed.
#[test]
fn the_gate_sees_the_session_state_the_server_has() {
    use crate::sql::Mode;
    let (mut pair, gate) = gated();
    let caps = pair.caps();
    let ok = || vec![ok_payload(caps, AUTOCOMMIT, 0)];
    pair.query("USE crm", ok());
    pair.query("SET sql_mode = 'ANSI_QUOTES'", ok());
    pair.query(
        "SELECT 1",
        text_result(caps, &["1"], &[vec![Some(b"1")]], AUTOCOMMIT),
    );
    // A failed USE changes nothing.
    pair.query(
        "USE nowhere",
        vec![err_payload(1049, "42000", "Unknown database")],
    );
    pair.query("SET sql_mode = @saved", ok());
    let prepare = command_payload(&CommandPacket::StmtPrepare { sql: b"DO ?" }, caps);
    pair.command(&prepare, prepare_reply(caps, 7, 1, &[]));
    let mut exec = execute_payload(7);
    pair.command(&exec, ok());
    pair.command(
        &command_payload(&CommandPacket::StmtClose { stmt_id: 7 }, caps),
        vec![],
    );
    exec = execute_payload(7);
    pair.command(
        &exec,
        vec![err_payload(1243, "HY000", "Unknown prepared statement")],
    );

    let seen = gate.contexts.lock().unwrap().clone();
    let db = |i: usize| seen[i].database.as_deref();
    let ansi = Mode {
        ansi_quotes: true,
        ..Mode::DEFAULT
    };
    assert_eq!(db(0), Some("shop"));
    assert_eq!(db(1), Some("crm"), "USE followed");
    assert_eq!(seen[1].mode.map(|m| m.ansi_quotes), Some(false));
    assert_eq!(
        seen[2].mode.map(|m| m.ansi_quotes),
        Some(true),
        "sql_mode followed"
    );
    assert_eq!(
        seen[2].mode.map(|m| m.no_backslash_escapes),
        Some(ansi.no_backslash_escapes)
    );
    assert_eq!(db(4), Some("crm"), "a failed USE changes nothing");
    assert_eq!(seen[5].mode, None, "sql_mode = @saved: unknown");
    assert_eq!(seen.len(), 9);
    assert_eq!(seen[5].prepared, None, "the PREPARE itself");
    assert_eq!(
        seen[6].prepared.as_deref(),
        Some(&b"DO ?"[..]),
        "EXECUTE carries its SQL"
    );
    assert_eq!(
        seen[7].prepared.as_deref(),
        Some(&b"DO ?"[..]),
        "CLOSE names it"
    );
    assert_eq!(seen[8].prepared, None, "closed: gone");
}

#[test]
fn gate_refusal_reaches_the_client_and_nothing_goes_upstream() {
    let (mut pair, gate) = gated();
    pair.client_send(0, &query_payload("DROP TABLE t"));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    let msg = assert_err(&got[0], GATE_REFUSAL);
    assert_eq!(msg, GATE_MESSAGE);
    assert!(pair.server.commands.is_empty(), "server receives nothing");
    assert!(!pair.session.is_closed());
    let r = &pair.take_commands()[0];
    assert_eq!(r.refused, Some(GATE_REFUSAL.code));
    assert_eq!(r.command, Command::COM_QUERY);
    pair.assert_usable();
    let asked = gate.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert_eq!(
        asked[0],
        Asked {
            identity: "alice".into(),
            database: Some("shop".into()),
            command: Command::COM_QUERY
        }
    );
}

#[test]
fn held_command_is_forwarded_exactly_on_approval() {
    let (mut pair, _) = gated();
    let sql_bytes = frame(0, &query_payload("DELETE FROM t /* HOLD */"));
    pair.client_send_raw(&sql_bytes);
    assert!(
        pair.server.commands.is_empty(),
        "nothing forwarded while held"
    );
    assert!(pair.client_recv().is_empty(), "client waits");
    let events = pair.take_events();
    let request_id = events
        .iter()
        .find_map(|e| match e {
            Event::ApprovalRequested { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .expect("approval requested");
    assert_eq!(request_id, 100);

    // A verdict for another request changes nothing.
    pair.session
        .handle_approval(pair.now, 999, Verdict::Approve);
    pair.transfer();
    assert!(pair.server.commands.is_empty());

    let caps = pair.caps();
    pair.server
        .script
        .push_back(vec![ok_payload(caps, AUTOCOMMIT, 3)]);
    pair.advance(Duration::from_secs(30));
    pair.session
        .handle_approval(pair.now, request_id, Verdict::Approve);
    pair.transfer();
    assert_eq!(pair.server.commands.len(), 1);
    assert_eq!(pair.server.commands[0].raw, sql_bytes, "exact held bytes");
    assert_eq!(
        pair.client_recv_raw(),
        pair.server.replies[0],
        "result reaches the client"
    );
    let r = &pair.take_commands()[0];
    assert_eq!(r.outcome.affected_rows, 3);
    assert_eq!(r.received, pair.start, "received when the client sent it");
    pair.assert_usable();
}

#[test]
fn held_command_denied_gets_1317() {
    let (mut pair, _) = gated();
    pair.client_send(0, &query_payload("DELETE FROM t /* HOLD */"));
    pair.session.handle_approval(
        pair.now,
        100,
        Verdict::Deny("not during business hours".into()),
    );
    pair.transfer();
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    let msg = assert_err(&got[0], ErrorCode::ER_QUERY_INTERRUPTED);
    assert!(msg.contains("not during business hours"), "{msg}");
    assert!(pair.server.commands.is_empty());
    let r = pair.take_commands();
    assert_eq!(r.last().unwrap().refused, Some(1317));
    pair.assert_usable();
}

#[test]
fn command_pipelined_behind_a_denied_hold_is_processed() {
    let (mut pair, _) = gated();
    let caps = pair.caps();
    pair.server
        .script
        .push_back(text_result(caps, &["1"], &[vec![Some(b"1")]], AUTOCOMMIT));
    let mut bytes = frame(0, &query_payload("DELETE FROM t /* HOLD */"));
    bytes.extend(frame(0, &query_payload("SELECT 1")));
    pair.client_send_raw(&bytes);
    assert!(pair.server.commands.is_empty());
    pair.session
        .handle_approval(pair.now, 100, Verdict::Deny("no".into()));
    pair.transfer();
    let got = pair.client_recv();
    assert_err(&got[0], ErrorCode::ER_QUERY_INTERRUPTED);
    assert_eq!(
        pair.server.commands.len(),
        1,
        "the pipelined SELECT 1 went upstream"
    );
    assert_eq!(got.len(), 1 + 4, "ERR, then SELECT 1's result set");
}

#[test]
fn command_pipelined_behind_an_approved_hold_is_processed() {
    let (mut pair, _) = gated();
    let caps = pair.caps();
    pair.server
        .script
        .push_back(vec![ok_payload(caps, AUTOCOMMIT, 1)]);
    pair.server
        .script
        .push_back(text_result(caps, &["1"], &[vec![Some(b"1")]], AUTOCOMMIT));
    let mut bytes = frame(0, &query_payload("DELETE FROM t /* HOLD */"));
    bytes.extend(frame(0, &query_payload("SELECT 1")));
    pair.client_send_raw(&bytes);
    pair.session
        .handle_approval(pair.now, 100, Verdict::Approve);
    pair.transfer();
    assert_eq!(pair.server.commands.len(), 2);
    assert_eq!(pair.client_recv_raw(), pair.server.replies.concat());
}

#[test]
fn held_command_does_not_leave_a_past_deadline() {
    let (mut pair, _) = gated();
    pair.client_send(0, &query_payload("DELETE FROM t /* HOLD */"));
    let idle = LimitsConfig::default().idle_timeout();
    pair.advance(idle + Duration::from_secs(1));
    pair.session.handle_timeout(pair.now);
    pair.transfer();
    assert!(!pair.session.is_closed(), "a hold is not idleness");
    if let Some(at) = pair.session.poll_timeout() {
        assert!(at > pair.now, "deadline {:?} in the past", pair.now - at);
    }
}

#[test]
fn row_transform_rewrites_text_rows() {
    for deprecate_eof in [true, false] {
        let rows = Arc::new(Uppercase::default());
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            rows: rows.clone(),
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let more = AUTOCOMMIT | StatusFlags::SERVER_MORE_RESULTS_EXISTS;
        let mut reply = text_result(caps, &["id", "name"], &three_rows(), more);
        reply.extend(text_result(
            caps,
            &["city"],
            &[vec![Some(b"paris")]],
            AUTOCOMMIT,
        ));
        let got = pair.query("SELECT id, name FROM t; SELECT city FROM c", reply.clone());

        // What the client should see: the same packets, rows uppercased, same sequence ids.
        let mut expected_payloads = reply.clone();
        let row_indexes: Vec<usize> = if deprecate_eof {
            vec![3, 4, 5, 9]
        } else {
            vec![4, 5, 6, 11]
        };
        for i in &row_indexes {
            let values: Vec<Option<Vec<u8>>> = text_row_values(&reply[*i])
                .map(|v| v.unwrap().map(|b| b.to_ascii_uppercase()))
                .collect();
            expected_payloads[*i] =
                text_row(&values.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        }
        assert_eq!(
            got,
            frame_all(1, &expected_payloads),
            "deprecate_eof={deprecate_eof}"
        );
        assert!(contains(&got, b"GRACE HOPPER"));
        assert_eq!(
            *rows.columns_seen.lock().unwrap(),
            vec![
                vec!["id".to_string(), "name".to_string()],
                vec!["id".to_string(), "name".to_string()],
                vec!["id".to_string(), "name".to_string()],
                vec!["city".to_string()],
            ],
            "each row sees its own result set's columns"
        );
        assert_eq!(pair.take_commands()[0].outcome.rows, 4);
    }
}

#[test]
fn identity_transform_is_byte_identical() {
    // PassThrough: every response packet reaches the client exactly as the server sent it,
    // including rows that start with 0xFB (NULL) or 0xFE (an 8-byte length).
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let rows = vec![
        vec![None, Some(&b"x"[..])],
        vec![Some(&b""[..]), Some(&[0xFE, 0xFF, 0x00][..])],
    ];
    let got = pair.query(
        "SELECT a, b FROM t",
        text_result(caps, &["a", "b"], &rows, AUTOCOMMIT),
    );
    assert_eq!(&got, pair.server.replies.last().unwrap());
}

// ===== 7. timeouts ================================================================================

#[test]
fn handshake_timeout_sends_1043_and_closes() {
    let mut pair = Pair::with_defaults();
    let limit = LimitsConfig::default().handshake_timeout();
    assert_eq!(pair.session.poll_timeout(), Some(pair.start + limit));
    pair.advance(limit - Duration::from_millis(1));
    pair.session.handle_timeout(pair.now);
    pair.transfer();
    assert!(!pair.session.is_closed(), "not yet");
    pair.advance(Duration::from_millis(2));
    pair.session.handle_timeout(pair.now);
    pair.transfer();
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    assert_err(&got[0], ErrorCode::ER_HANDSHAKE_ERROR);
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::Timeout("handshake")));
    assert_eq!(pair.session.poll_timeout(), None);
}

#[test]
fn handshake_timeout_covers_a_silent_upstream() {
    // The client is proven but the upstream never greets: the handshake deadline still holds.
    let mut pair = Pair::new(Setup {
        upstream: Upstream::Manual,
        ..Setup::default()
    });
    let got = pair.login_native("alice", ALICE_PW, None);
    assert!(got.is_empty(), "client waits for the upstream");
    let deadline = pair
        .session
        .poll_timeout()
        .expect("a deadline while connecting");
    pair.now = deadline;
    pair.session.handle_timeout(pair.now);
    pair.transfer();
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 2);
    assert!(parse_err(&got[0].payload).is_ok());
    assert!(pair.session.is_closed());
}

#[test]
fn idle_timeout_after_login_closes() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let idle = LimitsConfig::default().idle_timeout();
    assert_eq!(pair.session.poll_timeout(), Some(pair.now + idle));

    // Activity pushes the deadline back.
    pair.advance(idle / 2);
    pair.assert_usable();
    pair.take_events();
    assert_eq!(pair.session.poll_timeout(), Some(pair.now + idle));
    pair.advance(idle / 2 + Duration::from_secs(1));
    pair.session.handle_timeout(pair.now);
    assert!(!pair.session.is_closed());

    pair.advance(idle);
    pair.session.handle_timeout(pair.now);
    pair.transfer();
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    let e = parse_err(&got[0].payload).expect("ERR");
    assert_eq!((e.code, e.sqlstate), (4031, Some(&b"HY000"[..])));
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::Timeout("idle")));
}

#[test]
fn no_idle_timeout_while_a_response_streams() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let mut reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
    let last = reply.pop().unwrap();
    pair.query("SELECT id, name FROM t", reply);
    assert_eq!(
        pair.session.poll_timeout(),
        None,
        "a slow query is not idleness"
    );
    pair.advance(LimitsConfig::default().idle_timeout() * 2);
    pair.session.handle_timeout(pair.now);
    assert!(!pair.session.is_closed());
    let n = split_packets(&mut pair.server.replies[0].clone()).len() as u8;
    pair.server_send_raw(&frame(n + 1, &last));
    assert_eq!(pair.client_recv().len(), 1);
    assert_eq!(pair.take_commands().len(), 1);
    assert!(pair.session.poll_timeout().is_some());
}

// ===== 8. upstream faults =========================================================================

#[test]
fn unreachable_upstream_gives_2003_and_closes() {
    let mut pair = Pair::new(Setup {
        upstream: Upstream::Unreachable("connection refused"),
        ..Setup::default()
    });
    let got = pair.login_native("alice", ALICE_PW, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 2);
    let msg = assert_err(&got[0], ErrorCode::CR_CONN_HOST_ERROR);
    assert!(msg.contains(TARGET), "{msg}");
    assert!(pair.session.is_closed());
    assert_eq!(
        pair.close_reason(),
        Some(CloseReason::UpstreamUnavailable(
            "connection refused".into()
        ))
    );
    assert!(authenticated(&pair.events).is_empty());
}

/// The server vanishing mid-response (KILL of the connection, shutdown) closes the client's
/// connection after what was relayed, with nothing added: the client's library reports the
/// lost connection (2013) as it would directly (mtr innodb.innodb_bug51920, main.lock_kill).
#[test]
fn upstream_eof_mid_result_closes_like_the_server() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let mut reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
    reply.truncate(4); // count, two definitions, and one row or the EOF
    let got = pair.query("SELECT id, name FROM t", reply);
    assert_eq!(
        &got,
        pair.server.replies.last().unwrap(),
        "what arrived was relayed"
    );
    pair.session.handle_server_eof(pair.now);
    pair.transfer();
    assert!(pair.client_recv().is_empty(), "nothing added");
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::UpstreamGone));
}

/// The server closing an idle connection (`idle_transaction_timeout`, `wait_timeout`, KILL)
/// closes the client's as it is, without an error packet the client would read as the answer
/// to its next command (mtr main.transaction_timeout expects 2006, not a malformed packet).
#[test]
fn upstream_eof_while_idle_closes() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.session.handle_server_eof(pair.now);
    pair.transfer();
    assert!(pair.client_recv().is_empty(), "nothing sent");
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::UpstreamGone));
}

#[test]
fn local_infile_request_is_refused_and_never_forwarded() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let mut request = vec![0xFB];
    request.extend_from_slice(b"/etc/passwd");
    let got = pair.query(
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t",
        vec![request],
    );
    let packets = split_packets(&mut got.clone());
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert_eq!(packets[0].seq, 1);
    assert_err(&packets[0], ErrorCode::ER_NOT_ALLOWED_COMMAND);
    assert!(
        !contains(&got, b"/etc/passwd"),
        "file request not forwarded"
    );
    assert!(pair.session.is_closed());
    assert_eq!(
        pair.server.commands.len(),
        1,
        "no file (nor empty packet) sent upstream"
    );
}

#[test]
fn upstream_login_refusal_hides_the_upstream_account() {
    let mut server = FakeServer::new();
    server.login_reply = UpstreamLogin::Refuse(
        1045,
        "28000",
        "Access denied for user 'app'@'10.0.0.5' (using password: YES)",
    );
    let mut pair = Pair::new(Setup {
        server,
        ..Setup::default()
    });
    let got = pair.login_native("alice", ALICE_PW, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 2);
    let msg = assert_err(&got[0], ErrorCode::CR_CONN_HOST_ERROR);
    let words: Vec<&str> = msg.split(|c: char| !c.is_alphanumeric()).collect();
    assert!(
        !words.contains(&UPSTREAM_USER),
        "upstream user leaked: {msg}"
    );
    assert!(!msg.contains("10.0.0.5"), "{msg}");
    assert!(!contains(&got[0].payload, UPSTREAM_PASSWORD.as_bytes()));
    assert!(pair.session.is_closed());
    assert!(authenticated(&pair.events).is_empty());
}

#[test]
fn upstream_unknown_database_is_relayed() {
    let mut server = FakeServer::new();
    server.login_reply = UpstreamLogin::Refuse(1049, "42000", "Unknown database 'nope'");
    let mut pair = Pair::new(Setup {
        server,
        ..Setup::default()
    });
    let got = pair.login_native("alice", ALICE_PW, Some("nope"));
    assert_eq!(got.len(), 1);
    let msg = assert_err(
        &got[0],
        ErrorCode {
            code: 1049,
            sqlstate: "42000",
        },
    );
    assert_eq!(msg, "Unknown database 'nope'");
    assert!(pair.session.is_closed());
}

#[test]
fn upstream_without_deprecate_eof_is_refused_not_truncated() {
    let mut server = FakeServer::new();
    server.caps -= CapabilityFlags::CLIENT_DEPRECATE_EOF;
    let mut pair = Pair::new(Setup {
        server,
        ..Setup::default()
    });
    let got = pair.login_native("alice", ALICE_PW, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 2);
    assert_err(&got[0], ErrorCode::CR_SERVER_LOST);
    assert!(pair.session.is_closed());
    assert!(pair.server.login.is_none(), "no login attempted");
}

#[test]
fn upstream_greeting_err_is_unavailable() {
    let mut pair = Pair::new(Setup {
        upstream: Upstream::Manual,
        ..Setup::default()
    });
    assert!(pair.login_native("alice", ALICE_PW, None).is_empty());
    pair.session.handle_server_connected(pair.now);
    pair.server.phase = ServerPhase::ExpectLogin;
    pair.server_send_raw(&frame(
        0,
        &err_payload(1040, "08004", "Too many connections"),
    ));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_err(&got[0], ErrorCode::CR_CONN_HOST_ERROR);
    assert!(pair.session.is_closed());
}

// ===== 9. 16 MiB continuations ===================================================================

fn big_packets() -> Setup {
    Setup {
        limits: LimitsConfig {
            max_packet_size: 32 << 20,
            ..LimitsConfig::default()
        },
        ..Setup::default()
    }
}

#[test]
fn query_over_16mib_is_forwarded_whole() {
    let mut pair = Pair::new(big_packets());
    pair.login();
    let caps = pair.caps();
    // 17 MiB, and exactly 16 MiB − 1 (which needs an empty trailing frame).
    for len in [17 << 20, MAX_FRAME_PAYLOAD] {
        let mut payload = vec![Command::COM_QUERY.0];
        payload.extend(b"SELECT '");
        payload.resize(len - 1, b'x');
        payload.push(b'\'');
        assert_eq!(payload.len(), len);
        let sent = frame(0, &payload);
        pair.server
            .script
            .push_back(vec![ok_payload(caps, AUTOCOMMIT, 0)]);
        pair.client_send_raw(&sent);
        let received = pair.server.commands.last().expect("forwarded");
        assert_eq!(received.raw.len(), sent.len());
        assert!(received.raw == sent, "forwarded intact");
        assert_eq!(received.payload.len(), len);
        let got = pair.client_recv();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].seq, 2, "the response continues after the last frame");
        assert_ok(&got[0], caps);
        let r = &pair.take_commands()[0];
        assert_eq!(r.sql.as_ref().map(String::len), Some(len - 1));
    }
    pair.assert_usable();
}

#[test]
fn row_over_16mib_passes_through_intact() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..big_packets()
        });
        pair.login();
        let caps = pair.caps();
        let big = vec![b'y'; 17 << 20];
        let rows = vec![vec![Some(&big[..])], vec![Some(&b"small"[..])]];
        let reply = text_result(caps, &["blob"], &rows, AUTOCOMMIT);
        assert_eq!(
            reply[if deprecate_eof { 2 } else { 3 }][0],
            0xFE,
            "row starts with 0xFE"
        );
        let got = pair.query("SELECT blob FROM t", reply);
        assert!(
            &got == pair.server.replies.last().unwrap(),
            "deprecate_eof={deprecate_eof}"
        );
        let r = &pair.take_commands()[0];
        assert_eq!(r.outcome.rows, 2);
        pair.assert_usable();
    }
}

#[test]
fn row_over_16mib_through_a_row_transform() {
    let rows_t = Arc::new(Uppercase::default());
    let mut pair = Pair::new(Setup {
        rows: rows_t.clone(),
        ..big_packets()
    });
    pair.login();
    let caps = pair.caps();
    let big = vec![b'y'; 17 << 20];
    let reply = text_result(caps, &["blob"], &[vec![Some(&big[..])]], AUTOCOMMIT);
    let got = pair.query("SELECT blob FROM t", reply);
    let packets = split_packets(&mut got.clone());
    assert_eq!(packets.len(), 4);
    assert_eq!(
        packets.iter().map(|p| p.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 5]
    );
    let value = text_row_values(&packets[2].payload)
        .next()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(value.len(), big.len());
    assert!(value.iter().all(|&b| b == b'Y'));
    pair.assert_usable();
}

// ===== 10. COM_CHANGE_USER ======================================================================

fn change_user_payload(pair: &Pair, user: &str, password: &str, schema: &str) -> Vec<u8> {
    let scramble = native_scramble(password.as_bytes(), &pair.nonce);
    command_payload(
        &CommandPacket::ChangeUser(ChangeUser {
            user: user.as_bytes(),
            auth_response: &scramble,
            schema: schema.as_bytes(),
            charset: Some(45),
            auth_plugin: Some(b"mysql_native_password"),
            connect_attrs: vec![(b"_client_name", b"fake")],
        }),
        pair.caps(),
    )
}

#[test]
fn change_user_to_a_second_identity() {
    let (mut pair, gate) = gated();
    let payload = change_user_payload(&pair, "bob", BOB_PW, "reports");
    pair.client_send(0, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].seq, 1);
    assert_ok(&got[0], pair.caps());

    // Upstream: reset, then the new schema; never the client's COM_CHANGE_USER.
    let cmds: Vec<Vec<u8>> = pair
        .server
        .commands
        .iter()
        .map(|c| c.payload.clone())
        .collect();
    assert_eq!(
        cmds,
        vec![
            vec![Command::COM_RESET_CONNECTION.0],
            [&[Command::COM_INIT_DB.0][..], b"reports"].concat()
        ]
    );
    assert!(pair.server.commands.iter().all(|c| c.seq == 0));
    pair.assert_no_client_secret_upstream();

    let auth = authenticated(&pair.take_events());
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].0.name, "bob");
    assert_eq!(auth[0].1, UPSTREAM_CONNECTION_ID);
    assert_eq!(
        pair.session.identity().map(|i| i.name.as_str()),
        Some("bob")
    );

    pair.assert_usable();
    let asked = gate.asked.lock().unwrap().clone();
    assert_eq!(
        asked.last().unwrap(),
        &Asked {
            identity: "bob".into(),
            database: Some("reports".into()),
            command: Command::COM_QUERY
        }
    );
    // And bob's refusals are bob's.
    pair.client_send(0, &query_payload("DROP TABLE t"));
    assert_err(&pair.client_recv()[0], GATE_REFUSAL);
}

#[test]
fn change_user_without_schema_only_resets() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let payload = change_user_payload(&pair, "bob", BOB_PW, "");
    pair.client_send(0, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_ok(&got[0], pair.caps());
    let cmds: Vec<Vec<u8>> = pair
        .server
        .commands
        .iter()
        .map(|c| c.payload.clone())
        .collect();
    assert_eq!(cmds, vec![vec![Command::COM_RESET_CONNECTION.0]]);
    assert_eq!(authenticated(&pair.take_events())[0].0.name, "bob");
    pair.assert_usable();
}

#[test]
fn change_user_without_schema_leaves_gateway_and_upstream_agreeing_on_the_database() {
    let (mut pair, gate) = gated(); // alice logged in with database "shop"
    let payload = change_user_payload(&pair, "bob", BOB_PW, "");
    pair.client_send(0, &payload);
    assert_ok(&pair.client_recv()[0], pair.caps());
    pair.assert_usable();
    let asked = gate.asked.lock().unwrap().last().unwrap().clone();
    let upstream_db = pair
        .server
        .current_db
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned());
    assert_eq!(
        asked.database, upstream_db,
        "policy's database = upstream's database"
    );
}

#[test]
fn change_user_with_caching_sha2_switches_to_native() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let scramble = sha2_scramble(BOB_PW.as_bytes(), &pair.nonce);
    let payload = command_payload(
        &CommandPacket::ChangeUser(ChangeUser {
            user: b"bob",
            auth_response: &scramble,
            schema: b"",
            charset: Some(45),
            auth_plugin: Some(b"caching_sha2_password"),
            connect_attrs: vec![],
        }),
        pair.caps(),
    );
    pair.client_send(0, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    assert_eq!(
        parse_auth_switch(&got[0].payload).unwrap().plugin,
        b"mysql_native_password"
    );
    assert!(
        pair.server.commands.is_empty(),
        "nothing upstream before bob is proven"
    );
    pair.client_send(2, &native_scramble(BOB_PW.as_bytes(), &pair.nonce));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 3);
    assert_ok(&got[0], pair.caps());
    assert_eq!(
        pair.session.identity().map(|i| i.name.as_str()),
        Some("bob")
    );
    pair.assert_usable();
}

#[test]
fn change_user_with_wrong_password_is_denied_and_closed() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let payload = change_user_payload(&pair, "bob", "not-bobs-password", "reports");
    pair.client_send(0, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    let msg = assert_err(&got[0], ErrorCode::ER_ACCESS_DENIED_ERROR);
    assert!(msg.starts_with("Access denied for user 'bob'@"), "{msg}");
    assert!(pair.session.is_closed());
    assert!(pair.server.commands.is_empty(), "no reset upstream");
    assert_eq!(pair.close_reason(), Some(CloseReason::AuthFailed));
    assert_eq!(
        pair.session.identity().map(|i| i.name.as_str()),
        Some("alice")
    );
}

#[test]
fn change_user_reset_failure_closes() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.server
        .script
        .push_back(vec![err_payload(1047, "08S01", "Unknown command")]);
    let payload = change_user_payload(&pair, "bob", BOB_PW, "");
    pair.client_send(0, &payload);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    assert_err(&got[0], ErrorCode::CR_SERVER_LOST);
    assert!(pair.session.is_closed());
    assert!(
        authenticated(&pair.events).is_empty(),
        "bob never got the session"
    );
}

// ===== more: upstream login variants ===========================================================

#[test]
fn upstream_auth_switch_to_native() {
    let mut server = FakeServer::new();
    server.plugin = "caching_sha2_password";
    server.login_reply = UpstreamLogin::SwitchToNative;
    let mut pair = Pair::new(Setup {
        server,
        ..Setup::default()
    });
    pair.login();
    assert_eq!(pair.server.phase, ServerPhase::Command);
    pair.assert_usable();
}

#[test]
fn upstream_sha2_full_auth_without_tls_uses_the_pinned_rsa_key() {
    let mut server = FakeServer::new();
    server.plugin = "caching_sha2_password";
    server.login_reply = UpstreamLogin::Sha2FullAuth;
    let mut pair = Pair::new(Setup {
        server,
        upstream_public_key: Some(UPSTREAM_RSA_PUB.as_bytes().to_vec()),
        ..Setup::default()
    });
    pair.login();
    assert!(
        !contains(&pair.server.received, UPSTREAM_PASSWORD.as_bytes()),
        "the upstream password never travels in clear"
    );
    pair.assert_usable();
}

#[test]
fn upstream_sha2_full_auth_without_tls_or_pinned_key_is_refused() {
    let mut server = FakeServer::new();
    server.plugin = "caching_sha2_password";
    server.login_reply = UpstreamLogin::Sha2FullAuth;
    let mut pair = Pair::new(Setup {
        server,
        ..Setup::default()
    });
    let got = pair.login_native("alice", ALICE_PW, None);
    assert!(
        pair.session.is_closed(),
        "a plaintext key exchange was attempted"
    );
    assert!(
        !contains(&pair.server.received, UPSTREAM_PASSWORD.as_bytes()),
        "the upstream password never travels in clear"
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_err(&got[0], ErrorCode::CR_SERVER_LOST);
}

// ===== more: row transforms, cursors, wrapping sequence ids ===================================

/// Replaces every non-NULL text value with fixed bytes (a mask, or something bigger).
struct Replace(Vec<u8>);

impl RowTransform for Replace {
    fn is_identity(&self) -> bool {
        false
    }
    fn on_row(&self, _: &[ColumnInfo], format: RowFormat, payload: &[u8], out: &mut Vec<u8>) {
        match format {
            RowFormat::Text => {
                let values: Vec<Option<&[u8]>> = text_row_values(payload)
                    .map(|v| v.expect("text row").map(|_| &self.0[..]))
                    .collect();
                encode_text_row(out, values);
            }
            RowFormat::Binary => out.extend_from_slice(payload),
        }
    }
}

#[test]
fn row_transform_crossing_16mib_keeps_sequence_ids_contiguous() {
    let big = vec![b'y'; 17 << 20];
    for (value, replacement) in [
        (big.clone(), b"***".to_vec()),
        (b"small".to_vec(), big.clone()),
    ] {
        let mut pair = Pair::new(Setup {
            rows: Arc::new(Replace(replacement.clone())),
            ..big_packets()
        });
        pair.login();
        let caps = pair.caps();
        let reply = text_result(caps, &["blob"], &[vec![Some(&value[..])]], AUTOCOMMIT);
        let got = pair.query("SELECT blob FROM t", reply);
        let packets = split_packets(&mut got.clone());
        assert_eq!(packets.len(), 4);
        let row = text_row_values(&packets[2].payload)
            .next()
            .unwrap()
            .unwrap();
        assert!(row == Some(&replacement[..]), "row rewritten");
        // Frame-level ids must count up by one across the whole response.
        let mut raw = &got[..];
        let mut ids = Vec::new();
        while raw.len() >= 4 {
            let len = usize::from(raw[0]) | usize::from(raw[1]) << 8 | usize::from(raw[2]) << 16;
            ids.push(raw[3]);
            raw = &raw[4 + len..];
        }
        let expected: Vec<u8> = (1..=ids.len() as u8).collect();
        assert_eq!(ids, expected, "value of {} bytes", value.len());
    }
}

#[test]
fn binary_rows_see_their_columns() {
    let rows_t = Arc::new(Uppercase::default());
    let mut pair = Pair::new(Setup {
        rows: rows_t.clone(),
        ..Setup::default()
    });
    pair.login();
    let caps = pair.caps();
    let rows = [binary_row(7, Some(b"x")), binary_row(8, None)];
    let got = pair.command(&execute_payload(1), binary_result(caps, AUTOCOMMIT, &rows));
    assert_eq!(
        &got,
        pair.server.replies.last().unwrap(),
        "binary rows untouched"
    );
    let seen = rows_t.columns_seen.lock().unwrap().clone();
    assert_eq!(seen, vec![vec!["id".to_string(), "name".to_string()]; 2]);
}

#[test]
fn fetched_rows_see_the_cursor_columns() {
    let rows_t = Arc::new(Uppercase::default());
    let mut pair = Pair::new(Setup {
        rows: rows_t.clone(),
        ..Setup::default()
    });
    pair.login();
    let caps = pair.caps();
    let mut exec = execute_payload(1);
    exec[5] = 0x01; // CURSOR_TYPE_READ_ONLY
    let cursor = AUTOCOMMIT | StatusFlags::SERVER_STATUS_CURSOR_EXISTS;
    let reply = vec![
        vec![2],
        coldef("id", ColumnType::LONG.0),
        coldef("name", VAR_STRING),
        terminator(caps, cursor),
    ];
    pair.command(&exec, reply);
    let fetch = command_payload(
        &CommandPacket::StmtFetch {
            stmt_id: 1,
            num_rows: 10,
        },
        caps,
    );
    let reply = vec![
        binary_row(1, Some(b"x")),
        terminator(caps, AUTOCOMMIT | StatusFlags::SERVER_STATUS_LAST_ROW_SENT),
    ];
    let got = pair.command(&fetch, reply);
    assert_eq!(split_packets(&mut got.clone()).len(), 2);
    let seen = rows_t.columns_seen.lock().unwrap().clone();
    assert_eq!(seen, vec![vec!["id".to_string(), "name".to_string()]]);
}

/// A stored procedure with an open Oracle-mode cursor makes the server report
/// SERVER_STATUS_CURSOR_EXISTS in a text result set's terminators: its rows still follow (the
/// client asked for no cursor), and the response ends at the final OK. Found by mtr
/// (compat/oracle.sp-cursor) through the gateway.
#[test]
fn a_procedure_cursor_does_not_end_a_text_result_early() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let leaked = AUTOCOMMIT
            | StatusFlags::SERVER_STATUS_CURSOR_EXISTS
            | StatusFlags::SERVER_MORE_RESULTS_EXISTS;
        let mut reply = vec![vec![1], coldef("c%ISOPEN", ColumnType::LONG.0)];
        if !deprecate_eof {
            reply.push(terminator(caps, leaked));
        }
        reply.push(text_row(&[Some(b"1")]));
        reply.push(terminator(caps, leaked));
        reply.push(ok_payload(caps, AUTOCOMMIT, 0));
        let got = pair.query("CALL p1()", reply);
        assert_eq!(&got, pair.server.replies.last().unwrap());
        let done = pair.take_commands();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].outcome.rows, 1);
        pair.assert_usable();
    }
}

#[test]
fn sequence_ids_wrap_in_long_responses() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let values: Vec<String> = (0..600).map(|i| i.to_string()).collect();
        let rows: Vec<Vec<Option<&[u8]>>> =
            values.iter().map(|v| vec![Some(v.as_bytes())]).collect();
        let got = pair.query(
            "SELECT n FROM seq",
            text_result(caps, &["n"], &rows, AUTOCOMMIT),
        );
        assert_eq!(&got, pair.server.replies.last().unwrap());
        assert_eq!(pair.take_commands()[0].outcome.rows, 600);
        pair.assert_usable();
    }
}

// ===== more: other commands =====================================================================

#[test]
fn field_list_statistics_ping_and_set_option() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let field_list = command_payload(
            &CommandPacket::FieldList {
                table: b"t",
                wildcard: b"",
            },
            caps,
        );
        let reply = vec![
            coldef("id", ColumnType::LONG.0),
            coldef("name", VAR_STRING),
            terminator(caps, AUTOCOMMIT),
        ];
        let got = pair.command(&field_list, reply);
        assert_eq!(
            &got,
            pair.server.replies.last().unwrap(),
            "deprecate_eof={deprecate_eof}"
        );

        // COM_STATISTICS: one string packet, whatever its first byte.
        let got = pair.command(
            &[Command::COM_STATISTICS.0],
            vec![b"Uptime: 100  Threads: 1  Questions: 7".to_vec()],
        );
        assert_eq!(&got, pair.server.replies.last().unwrap());

        let got = pair.command(
            &[Command::COM_PING.0],
            vec![ok_payload(caps, AUTOCOMMIT, 0)],
        );
        assert_eq!(&got, pair.server.replies.last().unwrap());

        let set_option = command_payload(&CommandPacket::SetOption { option: 1 }, caps);
        let got = pair.command(
            &set_option,
            vec![terminator(CapabilityFlags::empty(), AUTOCOMMIT)],
        );
        assert_eq!(
            &got,
            pair.server.replies.last().unwrap(),
            "COM_SET_OPTION answers EOF"
        );
        assert_eq!(pair.take_commands().len(), 4);
        pair.assert_usable();
    }
}

/// The administrative commands client libraries still send (`mysql_refresh`,
/// `mysql_dump_debug_info`, `mysql_list_processes`): relayed like any other, with their
/// responses — one status packet, or a text result set for COM_PROCESS_INFO.
#[test]
fn refresh_debug_and_process_info_are_relayed() {
    for deprecate_eof in [true, false] {
        let mut pair = Pair::new(Setup {
            deprecate_eof,
            ..Setup::default()
        });
        pair.login();
        let caps = pair.caps();
        let got = pair.command(
            &[Command::COM_REFRESH.0, 0x04],
            vec![ok_payload(caps, AUTOCOMMIT, 0)],
        );
        assert_eq!(&got, pair.server.replies.last().unwrap());
        assert_eq!(pair.server.commands.last().unwrap().payload, [0x07, 0x04]);
        let got = pair.command(
            &[Command::COM_DEBUG.0],
            vec![terminator(CapabilityFlags::empty(), AUTOCOMMIT)],
        );
        assert_eq!(&got, pair.server.replies.last().unwrap());
        let processes = text_result(caps, &["Id", "User"], &three_rows(), AUTOCOMMIT);
        let got = pair.command(&[Command::COM_PROCESS_INFO.0], processes);
        assert_eq!(
            &got,
            pair.server.replies.last().unwrap(),
            "deprecate_eof={deprecate_eof}"
        );
        let done = pair.take_commands();
        assert_eq!(done.len(), 3);
        assert_eq!(
            done[2].outcome.rows, 3,
            "the process list is counted as rows"
        );
        pair.assert_usable();
    }
}

#[test]
fn init_db_changes_the_database_the_gate_sees_only_on_success() {
    let (mut pair, gate) = gated();
    let caps = pair.caps();
    let init = |s: &[u8]| command_payload(&CommandPacket::InitDb { schema: s }, caps);
    pair.command(&init(b"reports"), vec![ok_payload(caps, AUTOCOMMIT, 0)]);
    pair.assert_usable();
    let last = |g: &TestGate| g.asked.lock().unwrap().last().unwrap().database.clone();
    assert_eq!(last(&gate), Some("reports".into()));
    pair.command(
        &init(b"nope"),
        vec![err_payload(1049, "42000", "Unknown database 'nope'")],
    );
    pair.assert_usable();
    assert_eq!(last(&gate), Some("reports".into()));
}

#[test]
fn use_statement_changes_the_database_the_gate_sees() {
    let (mut pair, gate) = gated();
    let caps = pair.caps();
    assert!(caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK));
    // session_state_info: type SESSION_TRACK_SCHEMA (1), data = lenenc("reports").
    let mut state = vec![0x01, 8, 7];
    state.extend_from_slice(b"reports");
    let mut ok = Vec::new();
    encode_ok(
        &mut ok,
        &OkPacket {
            status: AUTOCOMMIT | StatusFlags::SERVER_SESSION_STATE_CHANGED,
            session_state: Some(&state),
            ..Default::default()
        },
        caps,
    );
    pair.query("USE reports", vec![ok]);
    pair.assert_usable();
    let asked = gate.asked.lock().unwrap().last().unwrap().clone();
    assert_eq!(asked.database, Some("reports".into()));
}

// ===== more: client TLS ==========================================================================

/// A listener TLS config with a fresh self-signed certificate for `gatehouse.test`, and the
/// roots a client needs to trust it.
fn tls_pair() -> (Arc<rustls::ServerConfig>, rustls::RootCertStore) {
    let ck = rcgen::generate_simple_self_signed(vec!["gatehouse.test".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key.into())
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    (Arc::new(server), roots)
}

fn tls_setup(server: &Arc<rustls::ServerConfig>, store: &Arc<IdentityStore>) -> Setup {
    Setup {
        client_tls: Some(server.clone()),
        identities: Some(store.clone()),
        ..Setup::default()
    }
}

#[test]
fn tls_caching_sha2_full_auth_then_fast_path() {
    let (server_tls, roots) = tls_pair();
    let store = identity_store();

    // First login: nothing cached, so "perform full authentication" and the cleartext password
    // (over TLS only).
    let mut pair = Pair::new(tls_setup(&server_tls, &store));
    assert!(pair.greeting_caps.contains(CapabilityFlags::CLIENT_SSL));
    pair.start_tls(&roots);
    let scramble = sha2_scramble(ALICE_PW.as_bytes(), &pair.nonce);
    pair.send_handshake_response("alice", "caching_sha2_password", &scramble, None);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].seq, &got[0].payload[..]), (3, &[0x01, 0x04][..]));
    pair.client_send(4, &[ALICE_PW.as_bytes(), &[0]].concat());
    let got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].seq, 5);
    assert_ok(&got[0], pair.caps());
    let tls = pair.events.iter().find_map(|e| match e {
        Event::Authenticated { tls, .. } => Some(tls.clone()),
        _ => None,
    });
    assert!(matches!(tls, Some(Some(_))), "TLS recorded: {tls:?}");
    pair.assert_no_client_secret_upstream();
    pair.assert_usable();

    // Second login over TLS: the fast path.
    let mut pair = Pair::new(tls_setup(&server_tls, &store));
    pair.start_tls(&roots);
    let scramble = sha2_scramble(ALICE_PW.as_bytes(), &pair.nonce);
    pair.send_handshake_response("alice", "caching_sha2_password", &scramble, None);
    let got = pair.client_recv();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].seq, &got[0].payload[..]), (3, &[0x01, 0x03][..]));
    assert_eq!(got[1].seq, 4);
    assert_ok(&got[1], pair.caps());

    // And in plaintext too: the fast path never reveals the password.
    let mut pair = Pair::new(Setup {
        identities: Some(store.clone()),
        ..Setup::default()
    });
    let scramble = sha2_scramble(ALICE_PW.as_bytes(), &pair.nonce);
    pair.send_handshake_response("alice", "caching_sha2_password", &scramble, None);
    let got = pair.client_recv();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].seq, &got[0].payload[..]), (2, &[0x01, 0x03][..]));
    assert_ok(&got[1], pair.caps());
}

#[test]
fn tls_wrong_cleartext_password_is_denied() {
    let (server_tls, roots) = tls_pair();
    let store = identity_store();
    let mut pair = Pair::new(tls_setup(&server_tls, &store));
    pair.start_tls(&roots);
    let scramble = sha2_scramble(b"wrong", &pair.nonce);
    pair.send_handshake_response("alice", "caching_sha2_password", &scramble, None);
    assert_eq!(pair.client_recv()[0].payload, [0x01, 0x04]);
    pair.client_send(4, b"wrong\0");
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 5);
    assert_err(&got[0], ErrorCode::ER_ACCESS_DENIED_ERROR);
    assert!(pair.session.is_closed());
    assert!(!store.lookup("alice").unwrap().sha2_cached());
}

#[test]
fn tls_identity_without_native_hash_goes_through_caching_sha2() {
    let (server_tls, roots) = tls_pair();
    let store = identity_store();
    let mut pair = Pair::new(tls_setup(&server_tls, &store));
    pair.start_tls(&roots);
    // Carol's client tries native first: over TLS the gateway switches her to caching_sha2.
    let scramble = native_scramble(CAROL_PW.as_bytes(), &pair.nonce);
    pair.send_handshake_response("carol", "mysql_native_password", &scramble, None);
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 3);
    assert_eq!(
        parse_auth_switch(&got[0].payload).unwrap().plugin,
        b"caching_sha2_password"
    );
    pair.client_send(4, &sha2_scramble(CAROL_PW.as_bytes(), &pair.nonce));
    assert_eq!(pair.client_recv()[0].payload, [0x01, 0x04]);
    pair.client_send(6, &[CAROL_PW.as_bytes(), &[0]].concat());
    let got = pair.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 7);
    assert_ok(&got[0], pair.caps());
    assert_eq!(
        pair.session.identity().map(|i| i.name.as_str()),
        Some("carol")
    );
    pair.assert_usable();
}

#[test]
fn tls_only_listener_refuses_plaintext_with_3159() {
    let (server_tls, _) = tls_pair();
    let store = identity_store();
    let mut pair = Pair::new(Setup {
        require_client_tls: true,
        ..tls_setup(&server_tls, &store)
    });
    let got = pair.login_native("alice", ALICE_PW, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 2);
    assert_err(&got[0], ErrorCode::ER_SECURE_TRANSPORT_REQUIRED);
    assert!(pair.session.is_closed());
    assert!(pair.server.received.is_empty());
}

#[test]
fn tls_only_listener_accepts_tls_and_relays() {
    let (server_tls, roots) = tls_pair();
    let store = identity_store();
    let mut pair = Pair::new(Setup {
        require_client_tls: true,
        ..tls_setup(&server_tls, &store)
    });
    pair.start_tls(&roots);
    let got = pair.login_native("alice", ALICE_PW, None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 3);
    assert_ok(&got[0], pair.caps());
    let caps = pair.caps();
    let reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
    let got = pair.query("SELECT id, name FROM t", reply);
    assert_eq!(&got, pair.server.replies.last().unwrap());
    pair.assert_usable();
}

// ===== more: the learned target, upstream misbehaviour ===========================================

#[test]
fn later_sessions_do_not_offer_what_the_target_lacks() {
    let target = Arc::new(TargetInfo::default());
    let old_server = || {
        let mut s = FakeServer::new();
        s.caps -= CapabilityFlags::CLIENT_DEPRECATE_EOF;
        s
    };
    // The first session learns the hard way (refused, not truncated)…
    let mut first = Pair::new(Setup {
        target: Some(target.clone()),
        server: old_server(),
        ..Setup::default()
    });
    first.login_native("alice", ALICE_PW, None);
    assert!(first.session.is_closed());
    // …the next one no longer offers CLIENT_DEPRECATE_EOF and works end to end.
    let mut pair = Pair::new(Setup {
        target: Some(target),
        server: old_server(),
        ..Setup::default()
    });
    assert!(!pair
        .greeting_caps
        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    assert!(pair
        .client_caps
        .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    pair.login();
    let caps = pair.caps();
    assert!(!caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
    let got = pair.query(
        "SELECT id, name FROM t",
        text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT),
    );
    assert_eq!(&got, pair.server.replies.last().unwrap());
    assert_eq!(pair.take_commands()[0].outcome.rows, 3);
}

#[test]
fn garbage_from_upstream_mid_response_gives_2013() {
    let mut pair = Pair::with_defaults();
    pair.login();
    // A column count of zero is not a result set.
    let got = pair.query("SELECT 1", vec![vec![0x00, 0x00]]);
    let packets = split_packets(&mut got.clone());
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert_eq!(packets[0].seq, 1);
    assert_err(&packets[0], ErrorCode::CR_SERVER_LOST);
    assert!(pair.session.is_closed());
}

#[test]
fn upstream_sequence_error_gives_2013() {
    let mut pair = Pair::with_defaults();
    pair.login();
    pair.server.script.push_back(vec![]); // the test answers by hand
    pair.client_send(0, &query_payload("SELECT 1"));
    pair.server_send_raw(&frame(7, &[1]));
    let got = pair.client_recv();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].seq, 1);
    assert_err(&got[0], ErrorCode::CR_SERVER_LOST);
    assert!(pair.session.is_closed());
}

#[test]
fn unsolicited_upstream_err_is_relayed_and_closes() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let shutdown = frame(
        0,
        &err_payload(1053, "08S01", "Server shutdown in progress"),
    );
    pair.server_send_raw(&shutdown);
    assert_eq!(pair.client_recv_raw(), shutdown);
    assert!(pair.session.is_closed());
    assert_eq!(pair.close_reason(), Some(CloseReason::UpstreamGone));
}

mod passthrough;

// ----- recording ---------------------------------------------------------------------------

fn recorded(capture: crate::config::Capture) -> Setup {
    let mut config = crate::config::RecordingConfig::in_dir("/nonexistent");
    config.capture = capture;
    Setup {
        recording: Some(Arc::new(super::phases::Recording {
            config,
            roles: None,
        })),
        ..Setup::default()
    }
}

fn statement_events(events: &[Event]) -> Vec<crate::record::event::StatementEntry> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Statement(_, s) => Some((**s).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_recorded_session_notes_each_statement_and_hashes_the_rows_the_client_got() {
    let mut pair = Pair::new(recorded(crate::config::Capture::Rows));
    pair.login();
    let caps = pair.caps();
    let reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
    let got = pair.query("SELECT id, name FROM t", reply);
    let events = pair.take_events();
    let statements = statement_events(&events);
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s.command, "COM_QUERY");
    assert_eq!(s.sql.as_deref(), Some(&b"SELECT id, name FROM t"[..]));
    assert_eq!(s.decision, "allow");
    assert_eq!(s.n, 1);
    let record = events
        .iter()
        .find_map(|e| match e {
            Event::Command(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a command record");
    assert_eq!(record.n, 1);
    assert!(record.forwarded.is_some() && record.first_byte.is_some());
    // The rows as the client received them: the packets between the column definitions' end
    // and the terminator.
    let packets = split_packets(&mut got.clone());
    // count, two column definitions (no EOF: DEPRECATE_EOF), three rows, OK.
    let rows: Vec<Vec<u8>> = packets[3..6].iter().map(|p| p.payload.clone()).collect();
    let mut hasher = crate::record::ResultHasher::default();
    rows.iter().for_each(|r| hasher.row(r));
    hasher.end_of_result_set();
    assert_eq!(record.result_hash, Some(hasher.finish()));
    assert_eq!(record.captured.as_deref(), Some(&rows[..]));
}

#[test]
fn an_unrecorded_session_emits_no_statement_events_and_hashes_nothing() {
    let mut pair = Pair::with_defaults();
    pair.login();
    let caps = pair.caps();
    let reply = text_result(caps, &["id", "name"], &three_rows(), AUTOCOMMIT);
    pair.query("SELECT id, name FROM t", reply);
    let events = pair.take_events();
    assert!(statement_events(&events).is_empty());
    let records: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Command(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].result_hash, None);
}

#[test]
fn a_refusal_is_noted_with_its_error_and_the_command_record_says_so() {
    let mut setup = recorded(crate::config::Capture::Hash);
    setup.gate = Arc::new(RefuseAll);
    let mut pair = Pair::new(setup);
    pair.login();
    pair.client_send(0, &query_payload("DROP TABLE t"));
    pair.client_recv();
    let events = pair.take_events();
    let statements = statement_events(&events);
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0].decision, "refuse");
    assert_eq!(statements[0].error.as_ref().map(|e| e.code), Some(1142));
    let record = events
        .iter()
        .find_map(|e| match e {
            Event::Command(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a command record");
    assert!(record.refused_by_gate && record.forwarded.is_none());
}

struct RefuseAll;

impl CommandGate for RefuseAll {
    fn decide(&self, _: &CommandContext<'_>, _: &CommandPacket<'_>) -> Decision {
        Decision::Refuse {
            code: ErrorCode {
                code: 1142,
                sqlstate: "42000",
            },
            message: "no".into(),
        }
    }
}
