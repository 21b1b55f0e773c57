//! Passthrough (adoption mode) without sockets: the test plays both the client and the
//! upstream, packet by packet, and checks what the session relays between them.

use super::*;
use crate::wire::command::parse_command;
const ED25519_NONCE: [u8; 32] = [0x5a; 32];

/// A passthrough session driven by hand: `to_client` / `to_server` collect what it sends.
struct Relay {
    session: Session,
    now: Instant,
    events: Vec<Event>,
    client_in: Vec<u8>,
    server_in: Vec<u8>,
    connect_asked: bool,
}

impl Relay {
    fn new() -> Relay {
        let cfg = SessionConfig {
            auth: AuthMode::Passthrough,
            target_name: TARGET.into(),
            target: Default::default(),
            identities: Arc::new(IdentityStore::from_config(&[]).expect("empty store")),
            client_tls: None,
            require_client_tls: false,
            upstream_user: String::new(),
            upstream_password: String::new(),
            upstream_tls: None,
            upstream_public_key: None,
            limits: LimitsConfig::default(),
            gate: Arc::new(AllowAll),
            rows: Arc::new(PassThrough),
            registry: Default::default(),
            events: Arc::new(crate::session::phases::DiscardEvents),
            recording: None,
        };
        let now = Instant::now();
        let session = Session::new(Arc::new(cfg), 9, PEER.parse().unwrap(), now, [1; 20]);
        let mut r = Relay {
            session,
            now,
            events: Vec::new(),
            client_in: Vec::new(),
            server_in: Vec::new(),
            connect_asked: false,
        };
        r.drain();
        r
    }

    fn drain(&mut self) {
        while let Some(e) = self.session.poll_event() {
            if matches!(e, Event::ConnectUpstream) {
                self.connect_asked = true;
            }
            self.events.push(e);
        }
        let mut buf = Vec::new();
        if self.session.poll_transmit(Peer::Client, &mut buf) {
            self.client_in.extend_from_slice(&buf);
        }
        if self.session.poll_transmit(Peer::Server, &mut buf) {
            self.server_in.extend_from_slice(&buf);
        }
    }

    fn client_send(&mut self, seq: u8, payload: &[u8]) {
        self.session.handle_client(self.now, &frame(seq, payload));
        self.drain();
    }

    fn server_send(&mut self, seq: u8, payload: &[u8]) {
        self.session.handle_server(self.now, &frame(seq, payload));
        self.drain();
    }

    fn client_recv(&mut self) -> Vec<Pkt> {
        split_packets(&mut self.client_in)
    }

    fn server_recv(&mut self) -> Vec<Pkt> {
        split_packets(&mut self.server_in)
    }

    fn identities(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Authenticated { identity, .. } => Some(identity.name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Connects, relays the server's greeting, and returns the greeting the client got.
    fn greet(&mut self, plugin: &str) -> Vec<u8> {
        self.greet_with(
            plugin,
            CapabilityFlags::GATEWAY | CapabilityFlags::CLIENT_SSL,
            0,
        )
    }

    /// [`Relay::greet`] with the upstream's capabilities, MariaDB's extended ones included.
    fn greet_with(&mut self, plugin: &str, capabilities: CapabilityFlags, mariadb: u32) -> Vec<u8> {
        assert!(self.connect_asked, "passthrough connects upstream first");
        assert!(
            self.client_in.is_empty(),
            "no greeting before the upstream's"
        );
        self.session.handle_server_connected(self.now);
        let mut g = Vec::new();
        encode_handshake_v10(
            &mut g,
            &HandshakeV10 {
                server_version: b"10.11.19-MariaDB",
                connection_id: UPSTREAM_CONNECTION_ID,
                auth_data_1: &SERVER_NONCE[..8],
                auth_data_2: &SERVER_NONCE[8..],
                capabilities,
                charset: 45,
                status: AUTOCOMMIT,
                mariadb_capabilities: mariadb,
                auth_plugin: Some(plugin.as_bytes()),
            },
        );
        self.server_send(0, &g);
        let got = self.client_recv();
        assert_eq!(got.len(), 1, "one greeting");
        assert_eq!(got[0].seq, 0);
        got[0].payload.clone()
    }

    /// The client's HandshakeResponse41 as `user` with `auth` made by `plugin`.
    fn login(&mut self, user: &str, plugin: &str, auth: &[u8]) {
        let mut payload = Vec::new();
        encode_handshake_response(
            &mut payload,
            &HandshakeResponse41 {
                capabilities: client_caps(),
                max_packet_size: 1 << 24,
                charset: 45,
                mariadb_capabilities: 0,
                username: user.as_bytes(),
                auth_response: auth,
                database: None,
                auth_plugin: Some(plugin.as_bytes()),
                connect_attrs: vec![(b"_client_name", b"fake"), (b"_gatehouse_identity", b"x")],
            },
        );
        self.client_send(1, &payload);
    }
}

fn client_caps() -> CapabilityFlags {
    CapabilityFlags::CLIENT_LONG_PASSWORD
        | CapabilityFlags::CLIENT_PROTOCOL_41
        | CapabilityFlags::CLIENT_TRANSACTIONS
        | CapabilityFlags::CLIENT_SECURE_CONNECTION
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH
        | CapabilityFlags::CLIENT_CONNECT_ATTRS
        | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
}

/// Logs `app` in with native then an ed25519 auth switch; returns the relay, idle.
fn logged_in() -> Relay {
    let mut r = Relay::new();
    r.greet("mysql_native_password");
    let scramble = native_scramble(b"pw", SERVER_NONCE);
    r.login("app", "mysql_native_password", &scramble);
    let sent = r.server_recv();
    assert_eq!(sent.len(), 1);
    r.server_send(2, &ok_payload(client_caps(), AUTOCOMMIT, 0));
    assert_ok(&r.client_recv()[0], client_caps());
    r
}

#[test]
fn the_client_is_greeted_with_the_upstreams_nonce_and_plugin() {
    let mut r = Relay::new();
    let g = r.greet("mysql_native_password");
    let g = parse_handshake_v10(&g).unwrap();
    assert_eq!(
        g.nonce(),
        SERVER_NONCE,
        "the upstream's nonce, so scrambles verify there"
    );
    assert_eq!(g.auth_plugin, Some(&b"mysql_native_password"[..]));
    assert_eq!(g.server_version, b"10.11.19-MariaDB");
    assert_eq!(
        g.connection_id, UPSTREAM_CONNECTION_ID,
        "the server's thread id, as CONNECTION_ID() will say"
    );
    assert!(
        !g.capabilities.contains(CapabilityFlags::CLIENT_SSL),
        "no TLS configured"
    );
}

#[test]
fn the_login_and_an_auth_switch_are_relayed_and_the_upstream_decides() {
    let mut r = Relay::new();
    r.greet("mysql_native_password");
    let scramble = native_scramble(b"pw", SERVER_NONCE);
    r.login("app", "mysql_native_password", &scramble);
    let sent = r.server_recv();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].seq, 1);
    let hs = parse_handshake_response(&sent[0].payload).unwrap();
    assert_eq!(hs.username, b"app", "the client's own account");
    assert_eq!(
        hs.auth_response,
        &scramble[..],
        "the client's own scramble, untouched"
    );
    assert_eq!(hs.auth_plugin, Some(&b"mysql_native_password"[..]));
    let attrs: Vec<(&[u8], &[u8])> = hs.connect_attrs.clone();
    assert!(attrs.contains(&(&b"_client_name"[..], &b"fake"[..])));
    assert!(
        attrs.contains(&(&b"_gatehouse_identity"[..], &b"app@192.0.2.10"[..])),
        "{attrs:?}"
    );
    assert!(
        !attrs.contains(&(&b"_gatehouse_identity"[..], &b"x"[..])),
        "spoofed attr dropped"
    );

    // The account uses ed25519: the upstream switches, the nonce ends in 0 (kept whole).
    let mut nonce = ED25519_NONCE;
    nonce[31] = 0;
    let mut switch = b"\xfeclient_ed25519\0".to_vec();
    switch.extend_from_slice(&nonce);
    r.server_send(2, &switch);
    let got = r.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].seq, &got[0].payload),
        (2, &switch),
        "switch relayed byte for byte"
    );
    let signature = crate::auth::scramble::ed25519_response(b"pw", &nonce);
    r.client_send(3, &signature);
    let sent = r.server_recv();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].seq, &sent[0].payload[..]), (3, &signature[..]));
    r.server_send(4, &ok_payload(client_caps(), AUTOCOMMIT, 0));
    let got = r.client_recv();
    assert_eq!(got[0].seq, 4);
    assert_ok(&got[0], client_caps());
    assert_eq!(r.identities(), ["app@192.0.2.10"]);

    // Commands flow as usual.
    r.client_send(0, &query_payload("SELECT 1"));
    assert_eq!(r.server_recv()[0].payload, query_payload("SELECT 1"));
}

#[test]
fn a_refused_login_is_the_upstreams_error_and_ends_the_session() {
    let mut r = Relay::new();
    r.greet("mysql_native_password");
    r.login("app", "mysql_native_password", &[7; 20]);
    r.server_recv();
    let denied = err_payload(
        1045,
        "28000",
        "Access denied for user 'app'@'127.0.0.1' (using password: YES)",
    );
    r.server_send(2, &denied);
    let got = r.client_recv();
    assert_eq!(
        (got[0].seq, &got[0].payload),
        (2, &denied),
        "the upstream's own error"
    );
    assert!(r.session.is_closed());
    assert!(r.identities().is_empty());
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::Closed(CloseReason::AuthFailed))));
}

#[test]
fn a_cleartext_switch_is_refused_for_a_plaintext_client() {
    let mut r = Relay::new();
    r.greet("mysql_native_password");
    r.login("app", "mysql_native_password", &[7; 20]);
    r.server_recv();
    r.server_send(2, b"\xfemysql_clear_password\0");
    let got = r.client_recv();
    assert_eq!(got.len(), 1, "the switch is not relayed, an error is");
    let msg = assert_err(&got[0], ErrorCode::ER_SECURE_TRANSPORT_REQUIRED);
    assert!(msg.contains("in clear"), "{msg}");
    assert!(r.session.is_closed());
}

#[test]
fn a_client_choosing_cleartext_over_plaintext_is_refused_before_anything_goes_upstream() {
    let mut r = Relay::new();
    r.greet("mysql_native_password");
    r.login("app", "mysql_clear_password", b"pw\0");
    assert!(
        r.server_recv().is_empty(),
        "the password never reaches the upstream"
    );
    assert_err(&r.client_recv()[0], ErrorCode::ER_SECURE_TRANSPORT_REQUIRED);
    assert!(r.session.is_closed());
}

fn change_user(user: &str, auth: &[u8]) -> Vec<u8> {
    command_payload(
        &CommandPacket::ChangeUser(ChangeUser {
            user: user.as_bytes(),
            auth_response: auth,
            schema: b"shop",
            charset: Some(45),
            auth_plugin: Some(b"mysql_native_password"),
            connect_attrs: vec![(b"_client_name", b"fake")],
        }),
        client_caps(),
    )
}

#[test]
fn change_user_is_relayed_and_switches_the_identity() {
    let mut r = logged_in();
    let scramble = native_scramble(b"other", SERVER_NONCE);
    r.client_send(0, &change_user("report", &scramble));
    let sent = r.server_recv();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].seq, 0);
    let cmd = parse_command(&sent[0].payload, client_caps()).unwrap();
    let CommandPacket::ChangeUser(cu) = cmd else {
        panic!("not a COM_CHANGE_USER: {cmd:?}")
    };
    assert_eq!(cu.user, b"report");
    assert_eq!(cu.auth_response, &scramble[..]);
    assert_eq!(cu.schema, b"shop");
    assert!(cu
        .connect_attrs
        .contains(&(&b"_gatehouse_identity"[..], &b"report@192.0.2.10"[..])));
    r.server_send(1, &ok_payload(client_caps(), AUTOCOMMIT, 0));
    assert_ok(&r.client_recv()[0], client_caps());
    assert_eq!(r.identities(), ["app@192.0.2.10", "report@192.0.2.10"]);
    assert_eq!(r.session.identity().unwrap().name, "report@192.0.2.10");
}

#[test]
fn a_refused_change_user_keeps_the_previous_account() {
    let mut r = logged_in();
    r.client_send(0, &change_user("report", &[1; 20]));
    r.server_recv();
    let denied = err_payload(1045, "28000", "Access denied for user 'report'@'127.0.0.1'");
    r.server_send(1, &denied);
    assert_eq!(r.client_recv()[0].payload, denied);
    assert!(!r.session.is_closed());
    assert_eq!(r.session.identity().unwrap().name, "app@192.0.2.10");
    assert_eq!(r.identities(), ["app@192.0.2.10"]);
    r.client_send(0, &query_payload("SELECT 1"));
    assert_eq!(
        r.server_recv()[0].payload,
        query_payload("SELECT 1"),
        "still usable"
    );
}

#[test]
fn change_user_auth_switch_round_trip() {
    let mut r = logged_in();
    r.client_send(0, &change_user("edu", &[1; 20]));
    r.server_recv();
    let mut switch = b"\xfeclient_ed25519\0".to_vec();
    switch.extend_from_slice(&ED25519_NONCE);
    r.server_send(1, &switch);
    assert_eq!(r.client_recv()[0].seq, 1);
    let signature = crate::auth::scramble::ed25519_response(b"pw", &ED25519_NONCE);
    r.client_send(2, &signature);
    let sent = r.server_recv();
    assert_eq!((sent[0].seq, &sent[0].payload[..]), (2, &signature[..]));
    r.server_send(3, &ok_payload(client_caps(), AUTOCOMMIT, 0));
    let got = r.client_recv();
    assert_eq!(got[0].seq, 3);
    assert_eq!(r.session.identity().unwrap().name, "edu@192.0.2.10");
}

#[test]
fn an_unreachable_upstream_is_the_first_packet_the_client_sees() {
    let mut r = Relay::new();
    r.session
        .handle_server_unreachable(r.now, "connection refused");
    r.drain();
    let got = r.client_recv();
    assert_eq!(got[0].seq, 0, "an error instead of a greeting");
    // Before a greeting the client has not agreed to protocol 4.1: no SQLSTATE, as a server.
    let e = parse_err(&got[0].payload).unwrap();
    assert_eq!(
        (e.code, e.sqlstate),
        (ErrorCode::CR_CONN_HOST_ERROR.code, None)
    );
    assert!(r.session.is_closed());
}

/// A server that refuses before greeting ("Too many connections") is heard by the client
/// exactly as directly: its ERR packet, verbatim, as packet 0.
#[test]
fn a_refusal_before_the_greeting_is_the_servers_own() {
    let mut r = Relay::new();
    r.session.handle_server_connected(r.now);
    let refusal = b"\xff\x10\x04Too many connections";
    r.server_send(0, refusal);
    let got = r.client_recv();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].seq, &got[0].payload[..]), (0, &refusal[..]));
    assert!(r.session.is_closed());
}

/// MariaDB's extended capabilities the gateway follows — extended metadata (e.g. `format=json`
/// on JSON columns), progress reports, bulk execution — reach clients that ask for them; cached
/// metadata (result sets without column definitions) is never offered.
#[test]
fn mariadb_extended_metadata_is_negotiated_end_to_end() {
    use crate::wire::consts::mariadb_caps;
    let mut r = Relay::new();
    let server_caps = (CapabilityFlags::GATEWAY | CapabilityFlags::CLIENT_SSL)
        - CapabilityFlags::CLIENT_LONG_PASSWORD;
    let all = mariadb_caps::PROGRESS
        | mariadb_caps::STMT_BULK_OPERATIONS
        | mariadb_caps::EXTENDED_METADATA
        | mariadb_caps::CACHE_METADATA;
    let g = r.greet_with("mysql_native_password", server_caps, all);
    let g = parse_handshake_v10(&g).unwrap();
    assert!(
        !g.capabilities
            .contains(CapabilityFlags::CLIENT_LONG_PASSWORD),
        "MariaDB style"
    );
    let relayed = mariadb_caps::EXTENDED_METADATA
        | mariadb_caps::PROGRESS
        | mariadb_caps::STMT_BULK_OPERATIONS;
    assert_eq!(g.mariadb_capabilities, relayed);

    let mut payload = Vec::new();
    encode_handshake_response(
        &mut payload,
        &HandshakeResponse41 {
            capabilities: client_caps() - CapabilityFlags::CLIENT_LONG_PASSWORD,
            max_packet_size: 1 << 24,
            charset: 45,
            mariadb_capabilities: all,
            username: b"app",
            auth_response: &[7; 20],
            database: None,
            auth_plugin: Some(b"mysql_native_password"),
            connect_attrs: vec![],
        },
    );
    r.client_send(1, &payload);
    let sent = r.server_recv();
    let hs = parse_handshake_response(&sent[0].payload).unwrap();
    assert!(!hs
        .capabilities
        .contains(CapabilityFlags::CLIENT_LONG_PASSWORD));
    assert_eq!(hs.mariadb_capabilities, relayed, "only what was offered");

    // A MySQL-style client (CLIENT_MYSQL set) gets none, and the upstream is asked for none.
    let mut r = Relay::new();
    r.greet_with("mysql_native_password", server_caps, all);
    r.login("app", "mysql_native_password", &[7; 20]);
    let hs_payload = r.server_recv().remove(0).payload;
    let hs = parse_handshake_response(&hs_payload).unwrap();
    assert!(hs
        .capabilities
        .contains(CapabilityFlags::CLIENT_LONG_PASSWORD));
    assert_eq!(hs.mariadb_capabilities, 0);
}

/// In passthrough the session is the client's own account and its id the server's: KILL goes
/// to the server as sent (any form), and the server decides.
#[test]
fn kill_is_relayed_untranslated() {
    let mut r = logged_in();
    for sql in [
        "KILL 4242",
        "KILL QUERY 77",
        "KILL USER 'app'",
        "KILL 1; SELECT 1",
    ] {
        r.client_send(0, &query_payload(sql));
        let sent = r.server_recv();
        assert_eq!(sent.len(), 1, "{sql}");
        assert_eq!(sent[0].payload, query_payload(sql));
        r.server_send(1, &ok_payload(client_caps(), AUTOCOMMIT, 0));
        r.client_recv();
    }
    r.client_send(0, &[Command::COM_PROCESS_KILL.0, 5, 0, 0, 0]);
    assert_eq!(
        r.server_recv()[0].payload,
        [Command::COM_PROCESS_KILL.0, 5, 0, 0, 0]
    );
}
