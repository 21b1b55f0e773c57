//! Bad input and broken peers: every case must end in a MySQL ERR packet or a closed connection
//! within a bounded time, never a hang, and must not disturb other clients.
//!
//! Each test starts its own MariaDB + gateway, under both I/O drivers. Raw-socket cases use the
//! tiny client in `gatehouse_tests::proto`.
//!
//! In direct mode (`GATEHOUSE_TEST_DIRECT=1`) the limits are mapped onto the server
//! (`max_connections`, `connect_timeout` ≥ 2 s, `max_allowed_packet`); cases that only make sense
//! with a gateway in between (upstream down at connect) are skipped with a log line, and
//! gateway-specific expectations are relaxed where MariaDB itself behaves differently (logged).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gatehouse_tests::clients::{block_on_with_limit, mysql_connect, mysql_opts};
use gatehouse_tests::proto::{self, err_of, read_until_closed, RawConn};
use gatehouse_tests::{both_drivers, free_port, GatewayOptions, IoMode, Limits, TestEnv};
use mysql_async::prelude::*;

const T: Duration = Duration::from_secs(10);
/// Upper bound for a test's async part (mysql_async has no read timeout of its own).
const LIMIT: Duration = Duration::from_secs(120);

fn env(driver: IoMode, limits: Limits) -> Result<TestEnv> {
    TestEnv::start(GatewayOptions::new(driver).limits(limits))
}

/// `(code, state, message)` of a server error.
fn server_err(e: &mysql_async::Error) -> Option<(u16, &str, &str)> {
    match e {
        mysql_async::Error::Server(s) => Some((s.code, s.state.as_str(), s.message.as_str())),
        _ => None,
    }
}

/// A normal client still works: log in, `SELECT 1`.
async fn still_works(env: &TestEnv) -> Result<()> {
    let mut c = mysql_connect(mysql_opts(&env.gw), T)
        .await
        .context("a well-behaved client after the fault")?;
    let one: Option<i64> = c.query_first("SELECT 1").await?;
    ensure!(one == Some(1));
    c.disconnect().await?;
    Ok(())
}

/// Checks what a misbehaving raw client saw: nothing or one ERR with the expected code, then
/// close.
fn expect_err_or_close(
    packets: &[Vec<u8>],
    closed: bool,
    codes: &[u16],
    state: &str,
    what: &str,
) -> Result<()> {
    ensure!(
        closed,
        "{what}: the connection was not closed (got {packets:02x?})"
    );
    match packets {
        [] => eprintln!("{what}: closed without an ERR packet"),
        [p] => {
            let e = proto::parse_err(p)
                .with_context(|| format!("{what}: expected an ERR packet, got {p:02x?}"))?;
            eprintln!("{what}: {e}");
            ensure!(
                codes.contains(&e.code) && e.state == state,
                "{what}: expected ERROR {codes:?} ({state}), got {e}"
            );
        }
        _ => bail!("{what}: expected at most one ERR packet, got {packets:02x?}"),
    }
    Ok(())
}

/// Garbage instead of a handshake response: a framed packet far too short to be one, and an
/// HTTP request (whose first bytes read as a 5.5 MB frame with sequence id 32). Each ends in
/// ERR 1043 (08S01) (or 1156 for the HTTP request's sequence id, as MariaDB answers) or a close;
/// a normal client works afterwards.
fn garbage_handshake(driver: IoMode) -> Result<()> {
    let env = env(
        driver,
        Limits {
            handshake_timeout_secs: Some(2),
            ..Limits::default()
        },
    )?;
    // A framed packet that cannot be a HandshakeResponse41.
    let mut c = RawConn::connect(env.gw.addr(), T)?;
    c.send(1, b"\x01\x02garbage")?;
    let (packets, closed) = read_until_closed(&mut c.stream, Duration::from_secs(8));
    expect_err_or_close(&packets, closed, &[1043], "08S01", "short garbage packet")?;

    // Bytes that are not even framed sensibly.
    let mut c = RawConn::connect(env.gw.addr(), T)?;
    c.stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let (packets, closed) = read_until_closed(&mut c.stream, Duration::from_secs(8));
    expect_err_or_close(&packets, closed, &[1043, 1156], "08S01", "HTTP request")?;

    // 200 random-looking bytes in a well-formed frame.
    let mut c = RawConn::connect(env.gw.addr(), T)?;
    let junk: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    c.send(1, &junk)?;
    let (packets, closed) = read_until_closed(&mut c.stream, Duration::from_secs(8));
    ensure!(
        closed || packets.iter().any(|p| p.starts_with(&[0xff])),
        "random handshake response: neither ERR nor close: {packets:02x?}"
    );
    eprintln!("random bytes: {packets:02x?} closed={closed}");

    block_on_with_limit(LIMIT, still_works(&env))
}

/// A client that connects and then says nothing (or half a header) is closed after the
/// handshake timeout (1 s; MariaDB's minimum `connect_timeout` is 2 s in direct mode).
fn handshake_stall(driver: IoMode) -> Result<()> {
    let env = env(
        driver,
        Limits {
            handshake_timeout_secs: Some(1),
            ..Limits::default()
        },
    )?;
    let started = Instant::now();
    let mut silent = RawConn::connect(env.gw.addr(), T)?;
    let mut partial = RawConn::connect(env.gw.addr(), T)?;
    partial.stream.write_all(&[0x40, 0x00])?; // two bytes of a packet header
    let (p1, closed1) = read_until_closed(&mut silent.stream, Duration::from_secs(8));
    let (p2, closed2) = read_until_closed(&mut partial.stream, Duration::from_secs(8));
    let took = started.elapsed();
    eprintln!("stalled clients: silent {p1:02x?} closed={closed1}; partial {p2:02x?} closed={closed2}; {took:?}");
    ensure!(closed1, "a silent client was not disconnected within 8 s");
    ensure!(
        closed2,
        "a client stalled mid-header was not disconnected within 8 s"
    );
    for p in p1.iter().chain(&p2) {
        ensure!(
            p.starts_with(&[0xff]),
            "a stalled client got something other than an ERR: {p:02x?}"
        );
    }
    ensure!(
        took < Duration::from_secs(7),
        "closing stalled clients took {took:?}"
    );
    block_on_with_limit(LIMIT, still_works(&env))
}

/// A command larger than `max_packet_size` (1 MiB) after login: ERR 1153 (08S01), then the
/// connection is closed; smaller commands work, and other clients are unaffected.
fn oversize_packet(driver: IoMode) -> Result<()> {
    let env = env(
        driver,
        Limits {
            max_packet_size: Some(1 << 20),
            ..Limits::default()
        },
    )?;
    block_on_with_limit(LIMIT, async {
        // Tell the client a large limit so that it does not refuse to send by itself.
        let opts = mysql_opts(&env.gw).max_allowed_packet(Some(64 << 20));
        let mut c = mysql_connect(opts.clone(), T).await?;
        let small = format!("SELECT LENGTH('{}')", "s".repeat(512 << 10));
        let n: Option<u64> = c.query_first(small).await?;
        ensure!(n == Some(512 << 10), "512 KiB query: {n:?}");

        let big = format!("SELECT LENGTH('{}')", "b".repeat(2 << 20));
        let r = tokio::time::timeout(T, c.query_first::<u64, _>(big)).await;
        let e = match r {
            Err(_) => bail!("a 2 MiB query over a 1 MiB limit hung"),
            Ok(Ok(v)) => bail!("a 2 MiB query over a 1 MiB limit succeeded: {v:?}"),
            Ok(Err(e)) => e,
        };
        eprintln!("oversize packet: {e}");
        let (code, state, _) = server_err(&e).with_context(|| format!("not an ERR: {e:?}"))?;
        ensure!(
            (code, state) == (1153, "08S01"),
            "expected ERROR 1153 (08S01), got {e}"
        );
        // The connection is closed afterwards.
        let next = tokio::time::timeout(T, c.query_drop("SELECT 1")).await;
        ensure!(
            matches!(next, Ok(Err(_))),
            "the connection stayed usable after ER_NET_PACKET_TOO_LARGE: {next:?}"
        );
        still_works(&env).await
    })
}

/// A command with a wrong sequence id (7 instead of 0): ERR 1156 (08S01) and close.
fn out_of_order(driver: IoMode) -> Result<()> {
    let env = env(driver, Limits::default())?;
    let mut c = RawConn::login(
        env.gw.addr(),
        env.gw.user(),
        env.gw.password(),
        Some("shop"),
        T,
    )?;
    // Sanity: a well-formed query works on this raw connection.
    c.query("SELECT 1")?;
    let (first, n) = c.read_response()?;
    ensure!(
        first == [1] && n == 5,
        "SELECT 1 on the raw client: {first:02x?} in {n} packets"
    );

    let mut p = vec![proto::COM_QUERY];
    p.extend_from_slice(b"SELECT 2");
    c.send(7, &p)?;
    let (packets, closed) = read_until_closed(&mut c.stream, Duration::from_secs(8));
    expect_err_or_close(&packets, closed, &[1156], "08S01", "out-of-order packet")?;
    ensure!(
        !packets.is_empty(),
        "out-of-order packet: closed without ERR 1156"
    );
    block_on_with_limit(LIMIT, still_works(&env))
}

/// Logs in as `user`/`pass`, expecting ERR 1045 (28000); returns the message with the user
/// name replaced by `<user>`.
async fn try_login(env: &TestEnv, user: &str, pass: &str) -> Result<String> {
    let opts = mysql_opts(&env.gw).user(Some(user)).pass(Some(pass));
    match mysql_connect(opts, T).await {
        Ok(_) => bail!("login as {user:?} with password {pass:?} succeeded"),
        Err(e) => {
            let e = e.downcast::<mysql_async::Error>()?;
            let (code, state, msg) =
                server_err(&e).with_context(|| format!("not an ERR: {e:?}"))?;
            eprintln!("login {user:?}/{pass:?}: ERROR {code} ({state}): {msg}");
            ensure!(
                (code, state) == (1045, "28000"),
                "expected 1045 (28000): {e}"
            );
            Ok(msg.replace(user, "<user>"))
        }
    }
}

/// Wrong password and unknown user: both ERR 1045 (28000), with the same message apart from the
/// user name (no user enumeration); an empty password too.
fn bad_credentials(driver: IoMode) -> Result<()> {
    let env = env(driver, Limits::default())?;
    block_on_with_limit(LIMIT, async {
        let user = env.gw.user().to_string();
        let wrong = try_login(&env, &user, "not-the-password").await?;
        let unknown = try_login(&env, "nosuchuser", "not-the-password").await?;
        ensure!(
            wrong == unknown,
            "wrong password and unknown user give different messages:\n  {wrong}\n  {unknown}"
        );
        let empty = try_login(&env, &user, "").await?;
        eprintln!("empty password: {empty}");
        // The raw client sees the same through mysql_native_password.
        match RawConn::login(env.gw.addr(), &user, "nope", None, T) {
            Ok(_) => bail!("raw login with a wrong password succeeded"),
            Err(e) => {
                let err = err_of(&e).with_context(|| format!("raw login: {e:#}"))?;
                ensure!(err.code == 1045 && err.state == "28000", "raw login: {err}");
            }
        }
        still_works(&env).await
    })
}

/// The target points at a closed port: the client gets an ERR (before or after its handshake),
/// quickly, not a hang.
fn upstream_down(driver: IoMode) -> Result<()> {
    if gatehouse_tests::direct_mode() {
        eprintln!("direct mode: skipping upstream_down (needs a gateway in between)");
        return Ok(());
    }
    let closed = format!("127.0.0.1:{}", free_port()?);
    let env = TestEnv::start(
        GatewayOptions::new(driver)
            .target_address(closed)
            .limits(Limits {
                connect_timeout_secs: Some(2),
                ..Limits::default()
            }),
    )?;
    let started = Instant::now();
    let r = RawConn::login(
        env.gw.addr(),
        env.gw.user(),
        env.gw.password(),
        Some("shop"),
        T,
    );
    let took = started.elapsed();
    match r {
        Ok(_) => bail!("login succeeded although the upstream is down"),
        Err(e) => {
            let err = err_of(&e).with_context(|| format!("no ERR packet, instead: {e:#}"))?;
            eprintln!("upstream down: {err} after {took:?}");
        }
    }
    ensure!(took < Duration::from_secs(8), "refusing took {took:?}");
    Ok(())
}

/// MariaDB dies mid-session: the next query fails (ERR or closed connection) instead of hanging,
/// and so does a new login.
fn upstream_dies(driver: IoMode) -> Result<()> {
    let mut env = env(driver, Limits::default())?;
    block_on_with_limit(LIMIT, async {
        let mut c = mysql_connect(mysql_opts(&env.gw), T).await?;
        let one: Option<i64> = c.query_first("SELECT 1").await?;
        ensure!(one == Some(1));
        env.db.kill()?;
        let r = tokio::time::timeout(Duration::from_secs(15), c.query_drop("SELECT 1")).await;
        match r {
            Err(_) => bail!("a query after the upstream died hung for 15 s"),
            Ok(Ok(())) => bail!("a query after the upstream died succeeded"),
            Ok(Err(e)) => eprintln!("query after upstream death: {e}"),
        }
        let r = tokio::time::timeout(
            Duration::from_secs(15),
            mysql_async::Conn::new(mysql_opts(&env.gw)),
        )
        .await;
        match r {
            Err(_) => bail!("a login after the upstream died hung for 15 s"),
            Ok(Ok(_)) => bail!("a login after the upstream died succeeded"),
            Ok(Err(e)) => eprintln!("login after upstream death: {e}"),
        }
        Ok(())
    })
}

fn marker_sessions(env: &TestEnv) -> Result<usize> {
    let out = env.db.root_sql(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE CONCAT('%vanish', '-marker%')",
    )?;
    out.lines()
        .last()
        .context("no output")?
        .trim()
        .parse()
        .context("COUNT(*)")
}

/// The client vanishes in the middle of a huge result: the upstream query is abandoned (no
/// session running it remains on MariaDB a few seconds later).
fn client_vanishes(driver: IoMode) -> Result<()> {
    let env = env(driver, Limits::default())?;
    let mut c = RawConn::login(
        env.gw.addr(),
        env.gw.user(),
        env.gw.password(),
        Some("shop"),
        T,
    )?;
    c.query("SELECT /* vanish-marker */ seq, REPEAT('x', 500) FROM seq_1_to_100000000")?;
    for _ in 0..200 {
        c.read()?;
    }
    let deadline = Instant::now() + T;
    while marker_sessions(&env)? == 0 {
        ensure!(
            Instant::now() < deadline,
            "the big SELECT never showed in the processlist"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Vanish: a hard close (RST) with unread data in the receive buffer.
    let _ = c.stream.shutdown(std::net::Shutdown::Both);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = marker_sessions(&env)?;
        if n == 0 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{n} upstream session(s) still run the abandoned query 10 s after the client vanished:\n{}",
            env.db.root_sql("SHOW FULL PROCESSLIST").unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    block_on_with_limit(LIMIT, still_works(&env))
}

/// More clients than `max_connections` (3): the next is refused with ERR 1040, and a slot frees
/// when a client leaves.
fn max_connections(driver: IoMode) -> Result<()> {
    const LIMIT: usize = 3;
    let env = env(
        driver,
        Limits {
            max_connections: Some(LIMIT),
            ..Limits::default()
        },
    )?;
    // MariaDB's minimum max_connections is 10 (direct mode).
    let expected = if env.gw.is_direct() {
        LIMIT.max(10)
    } else {
        LIMIT
    };
    let mut open: Vec<RawConn> = Vec::new();
    let refused = loop {
        ensure!(
            open.len() <= expected + 2,
            "{} connections open, none refused (limit {expected})",
            open.len()
        );
        match RawConn::login(env.gw.addr(), env.gw.user(), env.gw.password(), None, T) {
            Ok(mut c) => {
                c.query("SELECT 1")?;
                c.read_response()?;
                open.push(c);
            }
            Err(e) => {
                let err = err_of(&e)
                    .with_context(|| {
                        format!("connection {} failed without ERR: {e:#}", open.len() + 1)
                    })?
                    .clone();
                break err;
            }
        }
    };
    eprintln!("refused after {} connections: {refused}", open.len());
    ensure!(refused.code == 1040, "expected ERROR 1040, got {refused}");
    ensure!(
        open.len() == expected,
        "admitted {} connections, limit {expected}",
        open.len()
    );
    // Free one slot; a new client gets in (allow the gateway a moment to notice).
    let mut gone = open.pop().unwrap();
    gone.send(0, &[proto::COM_QUIT])?;
    drop(gone);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match RawConn::login(env.gw.addr(), env.gw.user(), env.gw.password(), None, T) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("after a client left: {e:#}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => bail!("no slot freed 5 s after a client quit: {e:#}"),
        }
    }
    drop(open);
    Ok(())
}

both_drivers!(
    garbage_handshake,
    handshake_stall,
    oversize_packet,
    out_of_order,
    bad_credentials,
    upstream_down,
    upstream_dies,
    client_vanishes,
    max_connections,
);
