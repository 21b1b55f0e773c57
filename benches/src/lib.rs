//! Fixtures for the hot-path micro-benchmarks, shared by the criterion benches
//! (`benches/*.rs`) and the instruction-count runner (`src/bin/icount.rs`).
//!
//! Everything here is built with the encoders of [`gatehouse::wire`] and drives the sans-IO
//! core directly: no sockets, no runtime, and a clock that only moves when told to.
//!
//! | module | what it builds |
//! |---|---|
//! | [`wire`] | packet payloads and framed wire bytes (queries, column definitions, rows, OK) |
//! | [`frame`] | the loops the `frame/*` benches time (parse or write many packets) |
//! | [`session`] | a [`Session`](gatehouse::session::Session) logged in through a fake client and a fake server, and one statement's round trip through it |
//! | [`policy`] | the example policies behind a [`PolicyGate`](gatehouse::policy::PolicyGate), a command context, a 200-byte query and a mix of statements |
//!
//! Setup panics with a description of what it observed: a bench that cannot reach its
//! starting state must not time something else.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

/// Packet payloads and framed wire bytes, built with the `gatehouse::wire` encoders.
pub mod wire {
    use gatehouse::wire::binary::{encode_binary_row, BinaryValue, ColumnType};
    use gatehouse::wire::command::{encode_command, CommandPacket};
    use gatehouse::wire::frame::write_packet;
    use gatehouse::wire::response::{encode_eof, encode_ok, EofPacket, OkPacket, EOF_HEADER};
    use gatehouse::wire::resultset::{encode_column_definition, encode_text_row, ColumnDefinition};
    use gatehouse::wire::{CapabilityFlags, StatusFlags};

    /// `MYSQL_TYPE_VAR_STRING` (no named constant in [`ColumnType`]).
    pub const VAR_STRING: u8 = 0xFD;
    /// `MYSQL_TYPE_LONGLONG`.
    pub const LONGLONG: u8 = ColumnType::LONGLONG.0;

    /// A `SELECT` statement of exactly `len` bytes (at least 64): an `IN` list grown, then
    /// padded with spaces, to the length asked for.
    pub fn query_sql(len: usize) -> Vec<u8> {
        assert!(
            len >= 64,
            "query_sql: {len} bytes is too short for the template"
        );
        let mut sql = b"SELECT id, name, email FROM shop.customers WHERE id IN (1".to_vec();
        for n in 2.. {
            let item = format!(", {n}");
            if sql.len() + item.len() + 1 > len {
                break;
            }
            sql.extend_from_slice(item.as_bytes());
        }
        sql.resize(len - 1, b' ');
        sql.push(b')');
        sql
    }

    /// A COM_QUERY payload (command byte included) of exactly `len` bytes.
    pub fn query_payload(len: usize) -> Vec<u8> {
        let sql = query_sql(len - 1);
        let mut out = Vec::with_capacity(len);
        encode_command(
            &mut out,
            &CommandPacket::Query { sql: &sql },
            CapabilityFlags::GATEWAY,
        );
        debug_assert_eq!(out.len(), len);
        out
    }

    /// Frames one payload as a packet starting at sequence id `seq`.
    pub fn framed(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        write_packet(&mut out, seq, payload);
        out
    }

    /// `count` COM_QUERY packets of `payload_len`-byte payloads back to back, as a client
    /// pipelining statements would fill a read buffer.
    pub fn many_queries(payload_len: usize, count: usize) -> Vec<u8> {
        let payload = query_payload(payload_len);
        let mut out = Vec::with_capacity(count * (payload_len + 4));
        for _ in 0..count {
            write_packet(&mut out, 0, &payload);
        }
        out
    }

    /// A COM_QUERY whose payload is `len` bytes: from 16 MiB − 1 bytes on it is split into
    /// continuation frames.
    pub fn big_query_payload(len: usize) -> Vec<u8> {
        let mut payload = Vec::with_capacity(len);
        payload.push(0x03);
        payload.extend_from_slice(b"INSERT INTO shop.blobs (data) VALUES ('");
        payload.resize(len - 2, b'x');
        payload.extend_from_slice(b"')");
        payload
    }

    /// A ColumnDefinition41 payload for `shop.customers.<name>`.
    pub fn column_definition(name: &str, column_type: u8) -> Vec<u8> {
        let mut out = Vec::new();
        encode_column_definition(
            &mut out,
            &ColumnDefinition {
                catalog: b"def",
                schema: b"shop",
                table: b"customers",
                org_table: b"customers",
                name: name.as_bytes(),
                org_name: name.as_bytes(),
                extended: None,
                charset: 45,
                column_length: 1020,
                column_type,
                flags: 0,
                decimals: 0,
            },
        );
        out
    }

    /// A text-protocol row payload.
    pub fn text_row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_text_row(&mut out, values.iter().copied());
        out
    }

    /// A five-column text row: id, name, email, a NULL, a timestamp.
    pub fn customer_text_row() -> Vec<u8> {
        text_row(&[
            Some(b"4711"),
            Some(b"Ada Lovelace"),
            Some(b"ada.lovelace@example.com"),
            None,
            Some(b"2024-05-01 12:34:56"),
        ])
    }

    /// The binary-protocol counterpart of [`customer_text_row`]: its column types and payload
    /// (BIGINT, VAR_STRING, VAR_STRING, NULL VAR_STRING, DATETIME).
    pub fn customer_binary_row() -> (Vec<ColumnType>, Vec<u8>) {
        let types = vec![
            ColumnType::LONGLONG,
            ColumnType(VAR_STRING),
            ColumnType(VAR_STRING),
            ColumnType(VAR_STRING),
            ColumnType::DATETIME,
        ];
        let id = 4711u64.to_le_bytes();
        // year:u16 month day hour minute second
        let datetime = [0xE8, 0x07, 5, 1, 12, 34, 56];
        let values = [
            Some(BinaryValue {
                column_type: types[0],
                bytes: &id,
            }),
            Some(BinaryValue {
                column_type: types[1],
                bytes: b"Ada Lovelace",
            }),
            Some(BinaryValue {
                column_type: types[2],
                bytes: b"ada.lovelace@example.com",
            }),
            None,
            Some(BinaryValue {
                column_type: types[4],
                bytes: &datetime,
            }),
        ];
        let mut out = Vec::new();
        encode_binary_row(&mut out, &values);
        (types, out)
    }

    /// What an UPDATE's OK packet looks like.
    pub fn update_ok() -> OkPacket<'static> {
        OkPacket {
            header: 0x00,
            affected_rows: 1,
            last_insert_id: 0,
            status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            warnings: 0,
            info: b"Rows matched: 1  Changed: 1  Warnings: 0",
            session_state: None,
        }
    }

    /// An OK payload.
    pub fn ok_payload(ok: &OkPacket<'_>, caps: CapabilityFlags) -> Vec<u8> {
        let mut out = Vec::new();
        encode_ok(&mut out, ok, caps);
        out
    }

    /// A whole text result set as the server sends it after a COM_QUERY (sequence ids from 1):
    /// column count, definitions, `[EOF]`, rows, and the terminator — a 0xFE OK under
    /// `CLIENT_DEPRECATE_EOF`, an EOF otherwise.
    pub fn text_result_set(
        caps: CapabilityFlags,
        columns: &[(&str, u8)],
        rows: &[Vec<u8>],
    ) -> Vec<u8> {
        let deprecate_eof = caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF);
        let status = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        let eof = || {
            let mut v = Vec::new();
            encode_eof(
                &mut v,
                &EofPacket {
                    warnings: 0,
                    status,
                },
            );
            v
        };
        let mut payloads = vec![vec![columns.len() as u8]];
        payloads.extend(columns.iter().map(|(n, t)| column_definition(n, *t)));
        if !deprecate_eof {
            payloads.push(eof());
        }
        payloads.extend(rows.iter().cloned());
        payloads.push(if deprecate_eof {
            ok_payload(
                &OkPacket {
                    header: EOF_HEADER,
                    status,
                    ..OkPacket::default()
                },
                caps,
            )
        } else {
            eof()
        });
        let mut out = Vec::new();
        let mut seq = 1u8;
        for p in &payloads {
            seq = write_packet(&mut out, seq, p).wrapping_add(1);
        }
        out
    }

    /// The point select's result: one BIGINT column, one row.
    pub fn point_select_result(caps: CapabilityFlags) -> Vec<u8> {
        text_result_set(caps, &[("id", LONGLONG)], &[text_row(&[Some(b"4711")])])
    }

    /// A `rows`-row result of three columns (id, name, email), about 50 bytes a row.
    pub fn customers_result(caps: CapabilityFlags, rows: usize) -> Vec<u8> {
        let rows: Vec<Vec<u8>> = (0..rows)
            .map(|i| {
                let id = (100_000 + i).to_string();
                let name = format!("customer {i:06}");
                let email = format!("customer.{i:06}@example.com");
                text_row(&[
                    Some(id.as_bytes()),
                    Some(name.as_bytes()),
                    Some(email.as_bytes()),
                ])
            })
            .collect();
        text_result_set(
            caps,
            &[
                ("id", LONGLONG),
                ("name", VAR_STRING),
                ("email", VAR_STRING),
            ],
            &rows,
        )
    }
}

/// The loops the `frame/*` benches time.
pub mod frame {
    use std::hint::black_box;

    use gatehouse::wire::frame::{parse_packet, write_packet};

    /// Largest payload the frame benches accept (the gateway's own server-side ceiling).
    pub const MAX_PAYLOAD: usize = 1 << 30;

    /// Parses every packet in `wire` (which must hold whole packets only); returns how many.
    #[inline]
    pub fn parse_all(wire: &[u8]) -> usize {
        let mut at = 0;
        let mut count = 0;
        while at < wire.len() {
            let packet = parse_packet(&wire[at..], MAX_PAYLOAD)
                .expect("fixture framing is valid")
                .expect("fixture holds whole packets");
            at += packet.wire_len;
            count += 1;
            black_box(&packet.payload);
        }
        count
    }

    /// Frames every payload into `out` (cleared first, its allocation reused).
    #[inline]
    pub fn write_all(out: &mut Vec<u8>, payloads: &[Vec<u8>]) {
        out.clear();
        for p in payloads {
            write_packet(out, 0, p);
        }
    }
}

/// A session logged in through a fake client and a fake server, and statements through it.
pub mod session {
    use std::fmt::Write as _;
    use std::hint::black_box;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Instant;

    use gatehouse::auth::scramble::native_scramble;
    use gatehouse::auth::{IdentityStore, StoredSecret};
    use gatehouse::config::{IdentityConfig, LimitsConfig};
    use gatehouse::session::phases::{AllowAll, PassThrough};
    use gatehouse::session::{Event, Peer, Session, SessionConfig, TargetInfo};
    use gatehouse::wire::frame::parse_packet;
    use gatehouse::wire::handshake::{
        encode_handshake_response, encode_handshake_v10, parse_handshake_response,
        parse_handshake_v10, HandshakeResponse41, HandshakeV10,
    };
    use gatehouse::wire::response::{parse_err, OkPacket};
    use gatehouse::wire::{CapabilityFlags, StatusFlags};
    use rand::SeedableRng;

    use super::wire::{framed, ok_payload};

    /// The gateway identity the fake client logs in as.
    pub const USER: &str = "bench";
    /// Its password.
    pub const PASSWORD: &str = "bench-correct-horse";
    /// The upstream account the gateway logs in with.
    pub const UPSTREAM_USER: &str = "app";
    /// Its password.
    pub const UPSTREAM_PASSWORD: &str = "upstream-S3cret!";
    const SERVER_NONCE: &[u8; 20] = b"Srv-nonce-0123456789";

    /// What a mysql 8 client asks for (the session keeps what the gateway offers of it).
    pub fn client_capabilities() -> CapabilityFlags {
        CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_MULTI_STATEMENTS
            | CapabilityFlags::CLIENT_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_DEPRECATE_EOF
    }

    /// A listener's configuration: one identity (with a native hash), no TLS, allow-all gate,
    /// pass-through rows. Costs two argon2 hashes (the identity's and the store's decoy).
    pub fn config() -> Arc<SessionConfig> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6761_7465);
        let secret = StoredSecret::generate(PASSWORD, &mut rng, true).to_string();
        let identities = IdentityStore::from_config(&[IdentityConfig {
            name: USER.to_owned(),
            groups: vec!["bench".to_owned()],
            secret,
        }])
        .expect("bench identity is valid");
        Arc::new(SessionConfig {
            auth: gatehouse::session::AuthMode::GatewayIdentity,
            target_name: "primary".to_owned(),
            target: Arc::new(TargetInfo::default()),
            identities: Arc::new(identities),
            client_tls: None,
            require_client_tls: false,
            upstream_user: UPSTREAM_USER.to_owned(),
            upstream_password: UPSTREAM_PASSWORD.to_owned(),
            upstream_tls: None,
            upstream_public_key: None,
            limits: LimitsConfig::default(),
            gate: Arc::new(AllowAll),
            rows: Arc::new(PassThrough),
            registry: Default::default(),
            events: Arc::new(gatehouse::session::phases::DiscardEvents),
            recording: None,
        })
    }

    /// A session in the command phase, with the buffers a driver would keep.
    pub struct LoggedIn {
        /// The session.
        pub session: Session,
        /// The virtual clock (never advanced: no timer is due in the command phase).
        pub now: Instant,
        /// Capabilities the client negotiated.
        pub caps: CapabilityFlags,
        /// What the last statement sent upstream.
        pub to_server: Vec<u8>,
        /// What the last statement sent to the client.
        pub to_client: Vec<u8>,
    }

    /// A transcript of the login, for the panic message when it goes wrong.
    #[derive(Default)]
    struct Transcript(String);

    impl Transcript {
        fn note(&mut self, line: impl AsRef<str>) {
            self.0.push_str("\n  ");
            self.0.push_str(line.as_ref());
        }

        fn fail<T>(&self, what: &str) -> Result<T, String> {
            Err(format!(
                "session login failed: {what}\nwhat happened:{}",
                self.0
            ))
        }
    }

    /// Describes wire bytes: each packet's sequence id, header byte and length, and the
    /// message of ERR packets.
    fn describe(bytes: &[u8]) -> String {
        let mut out = String::new();
        let mut at = 0;
        while let Ok(Some(p)) = parse_packet(&bytes[at..], usize::MAX) {
            let header = p.payload.first().copied();
            let _ = write!(out, "[seq {} len {} ", p.seq, p.payload.len());
            match header {
                Some(0xFF) => match parse_err(&p.payload) {
                    Ok(e) => {
                        let _ = write!(
                            out,
                            "ERR {} {:?}",
                            e.code,
                            String::from_utf8_lossy(e.message)
                        );
                    }
                    Err(_) => out.push_str("malformed ERR"),
                },
                Some(h) => {
                    let _ = write!(out, "header 0x{h:02X}");
                }
                None => out.push_str("empty"),
            }
            out.push(']');
            at += p.wire_len;
        }
        if at < bytes.len() {
            let _ = write!(out, " +{} unframed bytes", bytes.len() - at);
        }
        if out.is_empty() {
            out.push_str("nothing");
        }
        out
    }

    fn drain_events(session: &mut Session, t: &mut Transcript) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(e) = session.poll_event() {
            t.note(format!("event: {e:?}"));
            events.push(e);
        }
        events
    }

    fn transmit(session: &mut Session, to: Peer, t: &mut Transcript) -> Vec<u8> {
        let mut buf = Vec::new();
        session.poll_transmit(to, &mut buf);
        t.note(format!("gateway -> {to:?}: {}", describe(&buf)));
        buf
    }

    impl LoggedIn {
        /// A new session on `cfg`, logged in: the fake client answers the greeting with a
        /// `mysql_native_password` scramble, the fake server greets, checks the gateway's
        /// login and accepts it.
        pub fn new(cfg: Arc<SessionConfig>) -> Result<LoggedIn, String> {
            LoggedIn::login(cfg, PASSWORD)
        }

        fn login(cfg: Arc<SessionConfig>, password: &str) -> Result<LoggedIn, String> {
            let now = Instant::now();
            let peer: SocketAddr = "192.0.2.10:51000".parse().expect("valid address");
            let mut session = Session::new(cfg, 1, peer, now, [7; 20]);
            let mut t = Transcript::default();

            // Client side: greeting in, HandshakeResponse41 out.
            let greeting_wire = transmit(&mut session, Peer::Client, &mut t);
            let Ok(Some(greeting_packet)) = parse_packet(&greeting_wire, usize::MAX) else {
                return t.fail("no whole greeting for the client");
            };
            let Ok(greeting) = parse_handshake_v10(&greeting_packet.payload) else {
                return t.fail("the client greeting is not a HandshakeV10");
            };
            let caps = client_capabilities() & greeting.capabilities;
            if !caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
                return t.fail("the gateway did not offer CLIENT_DEPRECATE_EOF");
            }
            let scramble = native_scramble(password.as_bytes(), &greeting.nonce());
            let mut response = Vec::new();
            encode_handshake_response(
                &mut response,
                &HandshakeResponse41 {
                    capabilities: caps,
                    max_packet_size: 16 << 20,
                    charset: 45,
                    username: USER.as_bytes(),
                    auth_response: &scramble,
                    auth_plugin: Some(b"mysql_native_password"),
                    ..HandshakeResponse41::default()
                },
            );
            t.note("client -> gateway: HandshakeResponse41 (mysql_native_password), seq 1");
            session.handle_client(now, &framed(1, &response));
            let events = drain_events(&mut session, &mut t);
            transmit(&mut session, Peer::Client, &mut t);
            if !events.iter().any(|e| matches!(e, Event::ConnectUpstream)) {
                return t.fail("the client was not authenticated (no ConnectUpstream event)");
            }

            // Server side: connect, greet, check the gateway's login, accept it.
            session.handle_server_connected(now);
            let mut server_greeting = Vec::new();
            encode_handshake_v10(
                &mut server_greeting,
                &HandshakeV10 {
                    server_version: b"8.0.36",
                    connection_id: 4242,
                    auth_data_1: &SERVER_NONCE[..8],
                    auth_data_2: &SERVER_NONCE[8..],
                    capabilities: CapabilityFlags::GATEWAY,
                    charset: 255,
                    status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                    mariadb_capabilities: 0,
                    auth_plugin: Some(b"mysql_native_password"),
                },
            );
            t.note("server -> gateway: HandshakeV10 (mysql_native_password), seq 0");
            session.handle_server(now, &framed(0, &server_greeting));
            drain_events(&mut session, &mut t);
            let login_wire = transmit(&mut session, Peer::Server, &mut t);
            let Ok(Some(login_packet)) = parse_packet(&login_wire, usize::MAX) else {
                return t.fail("the gateway sent no whole login packet upstream");
            };
            let Ok(login) = parse_handshake_response(&login_packet.payload) else {
                return t.fail("the gateway's upstream login is not a HandshakeResponse41");
            };
            let expected = native_scramble(UPSTREAM_PASSWORD.as_bytes(), SERVER_NONCE);
            if login.username != UPSTREAM_USER.as_bytes() || login.auth_response != expected {
                return t.fail("the gateway's upstream login has the wrong user or scramble");
            }
            let server_caps = login.capabilities;
            let ok = ok_payload(
                &OkPacket {
                    status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
                    ..OkPacket::default()
                },
                server_caps,
            );
            let ok_seq = login_packet.last_seq.wrapping_add(1);
            t.note(format!("server -> gateway: OK, seq {ok_seq}"));
            session.handle_server(now, &framed(ok_seq, &ok));
            let events = drain_events(&mut session, &mut t);
            let client_ok = transmit(&mut session, Peer::Client, &mut t);
            if !events
                .iter()
                .any(|e| matches!(e, Event::Authenticated { .. }))
            {
                return t.fail("no Authenticated event after the upstream OK");
            }
            match parse_packet(&client_ok, usize::MAX) {
                Ok(Some(p)) if p.payload.first() == Some(&0x00) => {}
                _ => return t.fail("the client did not get an OK after the login"),
            }
            if session.is_closed() {
                return t.fail("the session closed");
            }
            Ok(LoggedIn {
                session,
                now,
                caps,
                to_server: Vec::new(),
                to_client: Vec::new(),
            })
        }

        /// One statement, as a driver would run it: the client's `command` bytes in, events
        /// drained, bytes for the server taken; the server's `response` bytes in, events drained,
        /// bytes for the client taken. Returns the bytes moved out of the session.
        #[inline]
        pub fn round_trip(&mut self, command: &[u8], response: &[u8]) -> usize {
            let s = &mut self.session;
            s.handle_client(self.now, command);
            while let Some(e) = s.poll_event() {
                black_box(e);
            }
            s.poll_transmit(Peer::Server, &mut self.to_server);
            s.handle_server(self.now, response);
            while let Some(e) = s.poll_event() {
                black_box(e);
            }
            s.poll_transmit(Peer::Client, &mut self.to_client);
            self.to_server.len() + self.to_client.len()
        }

        /// Runs one statement and checks it went through untouched: the command reached the
        /// server, the response reached the client, one `Command` event with `rows` rows and
        /// no error, and the session is idle again (a second statement goes through too).
        pub fn check_round_trip(
            &mut self,
            command: &[u8],
            response: &[u8],
            rows: u64,
        ) -> Result<(), String> {
            for attempt in 1..=2 {
                let s = &mut self.session;
                s.handle_client(self.now, command);
                let mut events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
                s.poll_transmit(Peer::Server, &mut self.to_server);
                s.handle_server(self.now, response);
                events.extend(std::iter::from_fn(|| s.poll_event()));
                s.poll_transmit(Peer::Client, &mut self.to_client);
                let what = format!(
                    "statement {attempt}: upstream got {}; client got {}; events {events:?}",
                    describe(&self.to_server),
                    describe(&self.to_client)
                );
                if self.to_server != command {
                    return Err(format!("the command was not forwarded as sent. {what}"));
                }
                if self.to_client != response {
                    return Err(format!("the response was not relayed as sent. {what}"));
                }
                let recorded = match events.as_slice() {
                    [Event::Command(r)] => r,
                    _ => return Err(format!("expected one Command event. {what}")),
                };
                if recorded.refused.is_some()
                    || recorded.outcome.error.is_some()
                    || recorded.outcome.rows != rows
                {
                    return Err(format!("unexpected command record. {what}"));
                }
                if self.session.is_closed() {
                    return Err(format!("the session closed. {what}"));
                }
            }
            Ok(())
        }
    }

    /// A logged-in session plus one statement's bytes both ways, checked once before timing.
    pub struct Statement {
        /// The session.
        pub session: LoggedIn,
        /// The client's COM_QUERY, framed.
        pub command: Vec<u8>,
        /// The server's whole response, framed.
        pub response: Vec<u8>,
    }

    impl Statement {
        /// `SELECT id FROM shop.customers WHERE id = 4711`: one column, one row.
        pub fn point_select(cfg: Arc<SessionConfig>) -> Statement {
            Statement::new(
                cfg,
                b"SELECT id FROM shop.customers WHERE id = 4711",
                super::wire::point_select_result,
                1,
            )
        }

        /// `SELECT id, name, email FROM shop.customers LIMIT <rows>`.
        pub fn customers(cfg: Arc<SessionConfig>, rows: usize) -> Statement {
            let sql = format!("SELECT id, name, email FROM shop.customers LIMIT {rows}");
            Statement::new(
                cfg,
                sql.as_bytes(),
                |caps| super::wire::customers_result(caps, rows),
                rows as u64,
            )
        }

        fn new(
            cfg: Arc<SessionConfig>,
            sql: &[u8],
            response: impl FnOnce(CapabilityFlags) -> Vec<u8>,
            rows: u64,
        ) -> Statement {
            let mut session = LoggedIn::new(cfg).unwrap_or_else(|e| panic!("{e}"));
            let command = framed(0, &[&[0x03], sql].concat());
            let response = response(session.caps);
            if let Err(e) = session.check_round_trip(&command, &response, rows) {
                panic!("session round trip misbehaves: {e}");
            }
            Statement {
                session,
                command,
                response,
            }
        }

        /// Runs the statement once; returns the bytes moved.
        #[inline]
        pub fn run(&mut self) -> usize {
            self.session.round_trip(&self.command, &self.response)
        }
    }

    #[cfg(test)]
    mod tests {
        use std::sync::{Arc, OnceLock};

        use super::*;

        /// One configuration for all tests: it costs two argon2 hashes.
        fn shared_config() -> Arc<SessionConfig> {
            static CFG: OnceLock<Arc<SessionConfig>> = OnceLock::new();
            CFG.get_or_init(config).clone()
        }

        #[test]
        fn statements_go_through() {
            let mut s = Statement::point_select(shared_config());
            assert_eq!(s.run(), s.command.len() + s.response.len());
            let mut s = Statement::customers(shared_config(), 10);
            assert_eq!(s.run(), s.command.len() + s.response.len());
        }

        #[test]
        fn a_failed_login_says_what_happened() {
            let Err(e) = LoggedIn::login(shared_config(), "wrong password") else {
                panic!("logged in with a wrong password");
            };
            assert!(e.contains("no ConnectUpstream event"), "{e}");
            assert!(e.contains("ERR 1045"), "{e}");
            assert!(e.contains("AuthFailed"), "{e}");
        }
    }
}

/// The statement-policy stage: the example policies (`policies/`) and statements to decide.
pub mod policy {
    use std::path::PathBuf;

    use gatehouse::auth::Identity;
    use gatehouse::policy::PolicyGate;
    use gatehouse::session::phases::{CommandContext, CommandGate, Decision};
    use gatehouse::sql::{Mode, Server};
    use gatehouse::wire::command::CommandPacket;

    /// A typical application query of exactly 200 bytes: a join, a range, an `IN` list, a
    /// string literal, ordering and a limit.
    pub fn query_200() -> Vec<u8> {
        let mut sql = b"SELECT o.id, o.total, c.name, c.email FROM orders o JOIN customers c ON \
c.id = o.customer_id WHERE o.created_at >= '2024-01-01' AND o.status IN ('paid', 'shipped') \
ORDER BY o.id DESC LIMIT 50"
            .to_vec();
        assert!(sql.len() <= 200, "{}", sql.len());
        sql.resize(200, b' ');
        sql
    }

    /// Statements of 30–300 bytes, the kinds an application and an agent send, for the cold
    /// analysis percentiles.
    pub const MIX: &[&str] = &[
        "SELECT * FROM orders WHERE id = 42",
        "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
         WHERE o.status = 'paid' ORDER BY o.created_at DESC LIMIT 20",
        "INSERT INTO orders (customer_id, total, status, created_at) VALUES (17, 99.5, 'new', NOW())",
        "UPDATE orders SET status = 'shipped', shipped_at = NOW() WHERE id = 42 AND status = 'paid'",
        "DELETE FROM sessions WHERE expires_at < NOW() - INTERVAL 1 DAY LIMIT 1000",
        "SELECT COUNT(*), SUM(total), AVG(total) FROM orders WHERE created_at >= '2024-01-01' \
         GROUP BY DATE(created_at) ORDER BY 1",
        "SELECT * FROM products WHERE id IN (SELECT product_id FROM order_items WHERE order_id = 7)",
        "WITH recent AS (SELECT customer_id, MAX(created_at) AS last FROM orders GROUP BY \
         customer_id) SELECT c.name, r.last FROM customers c JOIN recent r ON r.customer_id = c.id",
        "DROP TABLE orders",
        "ALTER TABLE orders ADD COLUMN note TEXT",
        "SELECT * FROM secrets.api_tokens WHERE name = 'stripe'",
        "SET autocommit = 0",
        "BEGIN",
        "COMMIT",
        "SHOW TABLES",
        "SELECT @@version, DATABASE(), NOW()",
        "INSERT INTO audit (who, what) SELECT user, action FROM staging.events WHERE id > 1000",
        "UPDATE orders o JOIN customers c ON c.id = o.customer_id SET o.vip = 1 WHERE c.tier = 'gold'",
        "SELECT id FROM orders WHERE status = 'paid' UNION ALL SELECT id FROM archive.orders \
         WHERE status = 'paid'",
        "REPLACE INTO settings (k, v) VALUES ('theme', 'dark')",
    ];

    /// The example policy files.
    pub fn policies_dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../policies"))
    }

    /// A gate with the example policies.
    pub fn gate() -> PolicyGate {
        PolicyGate::load(&[policies_dir()]).unwrap_or_else(|e| {
            panic!(
                "example policies: {}",
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// A coding agent (role `coding-agent`).
    pub fn agent() -> Identity {
        Identity {
            name: "agent-bench".into(),
            groups: vec!["ai-agents".into()],
        }
    }

    /// The context of a session of `identity` on the primary, database `shop`, MariaDB 10.11.
    pub fn context(identity: &Identity) -> CommandContext<'_> {
        CommandContext {
            session_id: 1,
            identity,
            database: Some("shop"),
            target: "primary",
            mode: Some(Mode::DEFAULT),
            server: Server::MariaDb {
                version_id: Some(101106),
            },
            prepared_sql: None,
        }
    }

    /// Decides `sql` once through the gate and checks it is allowed (the bench must time an
    /// allowed, cached decision, not a refusal).
    pub fn warm(gate: &PolicyGate, ctx: &CommandContext<'_>, sql: &[u8]) {
        let d = gate.decide(ctx, &CommandPacket::Query { sql });
        assert_eq!(d, Decision::Allow, "{}", String::from_utf8_lossy(sql));
        assert!(gate.cached_decisions() > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::frame::parse_all;
    use super::wire::*;

    #[test]
    fn fixtures_have_the_sizes_asked_for() {
        for len in [64, 65, 100, 1000] {
            assert_eq!(query_sql(len).len(), len);
            assert_eq!(query_payload(len + 1).len(), len + 1);
        }
        assert_eq!(parse_all(&many_queries(100, 7)), 7);
        assert_eq!(many_queries(100, 7).len(), 7 * 104);
        assert_eq!(super::policy::query_200().len(), 200);
    }

    #[test]
    fn the_policy_fixtures_decide() {
        use super::policy::*;
        let gate = gate();
        let agent = agent();
        warm(&gate, &context(&agent), &query_200());
    }
}
