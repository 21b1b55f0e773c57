//! Adoption mode: clients keep their own MySQL accounts and the gateway relays their login to
//! MariaDB, which accepts or refuses it — with `mysql_native_password`, MariaDB's ed25519 (an
//! auth switch the client must follow), the cleartext plugin over TLS, and COM_CHANGE_USER
//! between two accounts. A gateway-identity listener, by contrast, never relays a client's
//! password.

use anyhow::{ensure, Context, Result};
use gatehouse::config::IoMode;
use gatehouse_tests::clients::{
    block_on_with_limit, mariadb_cli, mysql_connect, mysql_opts, mysql_tls, run_python,
};
use gatehouse_tests::gateway::{Gateway, GatewayOptions, Tls, TlsFiles};
use gatehouse_tests::{both_drivers, MariaDb, TestEnv, APP_PASSWORD, APP_USER, TEST_DB};
use mysql_async::prelude::Queryable;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);
const T: Duration = Duration::from_secs(10);
const PLAIN: &[&str] = &["--skip-ssl", TEST_DB];
const TLS: &[&str] = &["--ssl", "--disable-ssl-verify-server-cert", TEST_DB];

/// The MySQL error code a client reported, if it was a server error.
fn server_code(e: &anyhow::Error) -> Option<u16> {
    match e.downcast_ref::<mysql_async::Error>() {
        Some(mysql_async::Error::Server(s)) => Some(s.code),
        _ => None,
    }
}

/// Native logins relayed: the right password is accepted by MariaDB as the client's own
/// account, a wrong one and an unknown account are refused by MariaDB itself (its 1045, not the
/// gateway's), and the session's identity is `user@client-address`. Over plaintext and TLS.
fn passthrough_native(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).passthrough().tls(Tls::On))?;
    let gw = &env.gw;
    block_on_with_limit(LIMIT, async {
        for tls in [false, true] {
            let mut opts = mysql_opts(gw);
            if tls {
                opts = opts.ssl_opts(Some(mysql_tls()));
            }
            let mut conn = mysql_connect(opts.clone(), T).await?;
            let row: Option<(String, String)> = conn
                .query_first("SELECT CURRENT_USER(), DATABASE()")
                .await?;
            ensure!(
                row == Some((format!("{APP_USER}@%"), TEST_DB.into())),
                "logged in as {row:?}"
            );
            // COM_RESET_CONNECTION passes through: session variables are gone afterwards.
            conn.query_drop("SET @x = 42").await?;
            ensure!(conn.reset().await?, "COM_RESET_CONNECTION supported");
            let x: Option<Option<i64>> = conn.query_first("SELECT @x").await?;
            ensure!(x == Some(None), "@x survived COM_RESET_CONNECTION: {x:?}");
            conn.disconnect().await?;

            let wrong = mysql_connect(opts.clone().pass(Some("not-the-password")), T).await;
            let e = wrong.err().context("a wrong password was accepted")?;
            ensure!(server_code(&e) == Some(1045), "wrong password: {e}");
            ensure!(
                e.to_string().contains("Access denied for user 'app'"),
                "MariaDB's own message: {e}"
            );
            let unknown = mysql_connect(opts.clone().user(Some("nobody")), T).await;
            let e = unknown.err().context("an unknown account was accepted")?;
            ensure!(server_code(&e) == Some(1045), "unknown account: {e}");
        }
        Ok(())
    })?;
    if !gw.is_direct() {
        let logins = gw.logins();
        ensure!(
            logins.len() == 2 && logins.iter().all(|(_, who)| who == "app@127.0.0.1"),
            "sessions recorded as {logins:?}"
        );
    }
    // The stock CLI and PyMySQL log in the same way.
    let out = mariadb_cli(gw, APP_USER, APP_PASSWORD, TLS, "SELECT CURRENT_USER();\n")?;
    ensure!(out.ok && out.stdout.contains("app@%"), "{out}");
    let out = run_python(gw, "tls.py", true, &[])?;
    ensure!(out.ok, "PyMySQL over TLS: {out}");
    Ok(())
}

/// An ed25519 account: MariaDB greets with mysql_native_password, the client answers with it,
/// MariaDB switches the client to client_ed25519 (a fresh 32-byte nonce, relayed as is), and
/// the signature is checked by MariaDB. Many logins, so nonces of every shape pass through.
fn passthrough_ed25519(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).passthrough())?;
    let gw = &env.gw;
    let sql = "SELECT CURRENT_USER(); SELECT 1;\n";
    for _ in 0..20 {
        let out = mariadb_cli(gw, "app_ed", APP_PASSWORD, PLAIN, sql)?;
        ensure!(
            out.ok && out.stdout.contains("app_ed@%"),
            "ed25519 login: {out}"
        );
    }
    let out = mariadb_cli(gw, "app_ed", "wrong-password", PLAIN, "SELECT 1;\n")?;
    ensure!(!out.ok, "a wrong ed25519 password was accepted: {out}");
    ensure!(
        out.stderr.contains("1045") && out.stderr.contains("app_ed"),
        "MariaDB's refusal: {out}"
    );
    if !gw.is_direct() {
        let ed = gw
            .logins()
            .iter()
            .filter(|(_, w)| w == "app_ed@127.0.0.1")
            .count();
        ensure!(ed == 20, "{ed} ed25519 sessions recorded");
    }
    Ok(())
}

/// The client chooses mysql_clear_password (its password in clear in the first response):
/// refused over a plaintext client link; over client TLS refused while the link to MariaDB is
/// plaintext; relayed (and MariaDB switches it to native) when both links are TLS.
fn passthrough_cleartext(driver: IoMode) -> Result<()> {
    if gatehouse_tests::gateway::direct_mode() {
        eprintln!("passthrough_cleartext: tests the gateway's links; skipped in direct mode");
        return Ok(());
    }
    let certs = tempfile::tempdir()?;
    let server = TlsFiles::generate(certs.path())?;
    let db = MariaDb::start_with_args(&[
        format!("--ssl-cert={}", server.cert.display()),
        format!("--ssl-key={}", server.key.display()),
    ])?;
    let clear = [
        "--enable-cleartext-plugin",
        "--default-auth=mysql_clear_password",
    ];
    let args =
        |tls: &[&'static str]| -> Vec<&'static str> { clear.iter().chain(tls).copied().collect() };

    let gw = Gateway::start(&db, GatewayOptions::new(driver).passthrough().tls(Tls::On))?;
    for tls in [PLAIN, TLS] {
        let out = mariadb_cli(&gw, APP_USER, APP_PASSWORD, &args(tls), "SELECT 1;\n")?;
        ensure!(!out.ok, "cleartext relayed over a plaintext link: {out}");
        ensure!(
            out.stderr.contains("3159"),
            "refused as insecure transport: {out}"
        );
    }
    drop(gw);

    let opts = GatewayOptions::new(driver)
        .passthrough()
        .tls(Tls::On)
        .upstream_tls(&server.cert);
    let gw = Gateway::start(&db, opts)?;
    let out = mariadb_cli(
        &gw,
        APP_USER,
        APP_PASSWORD,
        &args(TLS),
        "SELECT CURRENT_USER();\n",
    )?;
    ensure!(
        out.ok && out.stdout.contains("app@%"),
        "TLS on both links: {out}"
    );
    let out = mariadb_cli(&gw, APP_USER, APP_PASSWORD, &args(PLAIN), "SELECT 1;\n")?;
    ensure!(
        !out.ok && out.stderr.contains("3159"),
        "plaintext client: {out}"
    );
    Ok(())
}

/// COM_CHANGE_USER between two MariaDB accounts, relayed: MariaDB authenticates the new account,
/// the session's identity switches (the recorder sees both), and a refused change keeps the
/// session with the account it had.
fn passthrough_change_user(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).passthrough())?;
    let gw = &env.gw;
    let (other, other_pw) = gw.other_identity();
    block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(gw), T).await?;
        let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await?;
        ensure!(who.as_deref() == Some("app@%"), "{who:?}");
        conn.change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some(other.into()))
                .with_pass(Some(other_pw.into())),
        )
        .await?;
        let row: Option<(String, Option<String>)> = conn
            .query_first("SELECT CURRENT_USER(), DATABASE()")
            .await?;
        ensure!(
            row == Some((format!("{other}@%"), Some(TEST_DB.into()))),
            "after change_user: {row:?}"
        );
        conn.change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some(APP_USER.into()))
                .with_pass(Some(APP_PASSWORD.into())),
        )
        .await?;
        let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await?;
        ensure!(who.as_deref() == Some("app@%"), "changed back: {who:?}");
        conn.disconnect().await?;

        let mut conn = mysql_connect(mysql_opts(gw), T).await?;
        let refused = conn
            .change_user(
                mysql_async::ChangeUserOpts::default()
                    .with_user(Some(other.into()))
                    .with_pass(Some("wrong".into())),
            )
            .await;
        let e = anyhow::Error::from(
            refused
                .err()
                .context("change_user with a wrong password succeeded")?,
        );
        ensure!(server_code(&e) == Some(1045), "refused change_user: {e}");
        Ok(())
    })?;
    if !gw.is_direct() {
        let logins = gw.logins();
        let first = logins.first().context("no login recorded")?.0;
        let switched: Vec<&str> = logins
            .iter()
            .filter(|(id, _)| *id == first)
            .map(|(_, who)| who.as_str())
            .collect();
        let bob = format!("{other}@127.0.0.1");
        ensure!(
            switched == ["app@127.0.0.1", bob.as_str(), "app@127.0.0.1"],
            "the recorder saw {switched:?}"
        );
        // The refused change left the second session as app.
        let second: Vec<&(u64, String)> = logins.iter().filter(|(id, _)| *id != first).collect();
        ensure!(
            second.len() == 1 && second[0].1 == "app@127.0.0.1",
            "second session: {second:?}"
        );
    }
    Ok(())
}

/// Ids mean what they mean on the server: the client's connection id is the server's thread id
/// (`CONNECTION_ID()` agrees), `KILL QUERY` of one's own connection works, and killing another
/// account's connection is refused by MariaDB itself (1095), as directly.
fn passthrough_kill(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).passthrough())?;
    let gw = &env.gw;
    // An account without the privilege to kill others' connections.
    let (other, other_pw) = ("limited", "limited-Pw-1");
    env.db.root_sql(&format!(
        "CREATE USER '{other}'@'%' IDENTIFIED BY '{other_pw}'; GRANT SELECT ON {TEST_DB}.* TO '{other}'@'%';"
    ))?;
    block_on_with_limit(LIMIT, async {
        let mut a = mysql_connect(mysql_opts(gw), T).await?;
        let mut a2 = mysql_connect(mysql_opts(gw), T).await?;
        let id: Option<u32> = a.query_first("SELECT CONNECTION_ID()").await?;
        ensure!(
            id == Some(a.id()),
            "CONNECTION_ID() {id:?}, greeted with {}",
            a.id()
        );
        let processes: Vec<u64> = a2
            .query("SELECT ID FROM information_schema.PROCESSLIST")
            .await?;
        ensure!(
            processes.contains(&u64::from(a.id())),
            "{processes:?} lacks {}",
            a.id()
        );
        a2.query_drop(format!("KILL QUERY {}", a.id())).await?;
        let still: Option<i64> = a.query_first("SELECT 1").await?;
        ensure!(still == Some(1), "KILL QUERY ended the connection");

        let mut b = mysql_connect(mysql_opts(gw).user(Some(other)).pass(Some(other_pw)), T).await?;
        let refused = b.query_drop(format!("KILL {}", a.id())).await;
        let e = anyhow::Error::from(
            refused
                .err()
                .context("killed another account's connection")?,
        );
        ensure!(server_code(&e) == Some(1095), "{e}");
        a2.query_drop(format!("KILL {}", a.id())).await?;
        let gone = a.query_drop("SELECT 1").await;
        ensure!(gone.is_err(), "the killed connection still answers");
        Ok(())
    })
}

/// A server that refuses a connection before its greeting ("Too many connections") is heard
/// by the client as it would be directly: MariaDB's own error 1040, not a gateway error. Other
/// sessions are unaffected.
fn passthrough_server_refusal(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).passthrough())?;
    let gw = &env.gw;
    let (user, pw) = ("limited", "limited-Pw-1");
    env.db.root_sql(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'; GRANT SELECT ON {TEST_DB}.* TO '{user}'@'%';
         SET GLOBAL max_connections = 10;"
    ))?;
    block_on_with_limit(LIMIT, async {
        let opts = mysql_opts(gw).user(Some(user)).pass(Some(pw));
        let mut held = Vec::new();
        let refusal = loop {
            match mysql_connect(opts.clone(), T).await {
                Ok(conn) => held.push(conn),
                Err(e) => break e,
            }
            ensure!(
                held.len() <= 12,
                "max_connections = 10 (its minimum) not enforced"
            );
        };
        ensure!(server_code(&refusal) == Some(1040), "{refusal:#}");
        // That refusal came after the login; an account with CONNECTION ADMIN may take one
        // more connection, and then the server refuses before even greeting.
        let admin = loop {
            match mysql_connect(mysql_opts(gw), T).await {
                Ok(conn) => held.push(conn),
                Err(e) => break e,
            }
            ensure!(held.len() <= 14, "the hard connection limit not enforced");
        };
        ensure!(server_code(&admin) == Some(1040), "{admin:#}");
        // The stock CLI sees the same error.
        let out = mariadb_cli(gw, APP_USER, APP_PASSWORD, PLAIN, "SELECT 1;\n")?;
        ensure!(
            !out.ok && out.stderr.contains("1040") && out.stderr.contains("Too many connections"),
            "{out}"
        );
        // The connections already open are unaffected.
        for conn in &mut held {
            let one: Option<i64> = conn.query_first("SELECT 1").await?;
            ensure!(one == Some(1), "a held connection broke");
        }
        Ok(())
    })?;
    env.db.root_sql("SET GLOBAL max_connections = 151;")?;
    Ok(())
}

/// A gateway-identity listener never relays a client's password: a client presenting a real
/// MariaDB account and its password is refused by the gateway, and MariaDB sees no connection.
fn identity_listener_never_relays(driver: IoMode) -> Result<()> {
    if gatehouse_tests::gateway::direct_mode() {
        eprintln!("identity_listener_never_relays: gateway-only; skipped in direct mode");
        return Ok(());
    }
    let env = TestEnv::start(GatewayOptions::new(driver))?;
    let connections = |db: &MariaDb| -> Result<u64> {
        let out = db.root_sql("SHOW GLOBAL STATUS LIKE 'Connections'")?;
        let n = out
            .split_whitespace()
            .last()
            .context("no Connections row")?;
        Ok(n.parse()?)
    };
    let before = connections(&env.db)?;
    let out = mariadb_cli(&env.gw, APP_USER, APP_PASSWORD, PLAIN, "SELECT 1;\n")?;
    ensure!(!out.ok && out.stderr.contains("1045"), "{out}");
    let after = connections(&env.db)?;
    // The only new connection is the one that asked.
    ensure!(
        after == before + 1,
        "MariaDB saw {} connections",
        after - before - 1
    );
    Ok(())
}

both_drivers!(
    passthrough_native,
    passthrough_ed25519,
    passthrough_cleartext,
    passthrough_change_user,
    passthrough_kill,
    passthrough_server_refusal,
    identity_listener_never_relays,
);
