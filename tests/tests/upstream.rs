//! The gateway's own login to the upstream: MariaDB's `client_ed25519`, and TLS verified
//! against a CA (and refused when the certificate does not verify).

use anyhow::{ensure, Context, Result};
use gatehouse::config::IoMode;
use gatehouse_tests::clients::{block_on_with_limit, mysql_connect, mysql_opts};
use gatehouse_tests::gateway::{Gateway, GatewayOptions, TlsFiles};
use gatehouse_tests::{both_drivers, MariaDb};
use mysql_async::prelude::Queryable;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const T: Duration = Duration::from_secs(10);

fn upstream_ed25519(driver: IoMode) -> Result<()> {
    if gatehouse_tests::gateway::direct_mode() {
        eprintln!("upstream_ed25519: tests the gateway's upstream login; skipped in direct mode");
        return Ok(());
    }
    let db = MariaDb::start()?;
    let gw = Gateway::start(&db, GatewayOptions::new(driver).target_user("app_ed"))?;
    block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(&gw), T).await?;
        let row: Option<(String, String)> = conn
            .query_first(
                "SELECT CURRENT_USER(), (SELECT JSON_VALUE(Priv, '$.plugin') FROM mysql.global_priv WHERE User = 'app_ed')",
            )
            .await?;
        let (user, plugin) = row.context("no row")?;
        ensure!(user == "app_ed@%", "logged in upstream as {user}");
        ensure!(plugin == "ed25519", "app_ed uses {plugin}");
        Ok(())
    })
}

fn upstream_tls(driver: IoMode) -> Result<()> {
    if gatehouse_tests::gateway::direct_mode() {
        eprintln!("upstream_tls: tests the gateway's upstream login; skipped in direct mode");
        return Ok(());
    }
    let certs = tempfile::tempdir()?;
    let server = TlsFiles::generate(certs.path())?;
    let db = MariaDb::start_with_args(&[
        format!("--ssl-cert={}", server.cert.display()),
        format!("--ssl-key={}", server.key.display()),
    ])?;
    let gw = Gateway::start(&db, GatewayOptions::new(driver).upstream_tls(&server.cert))?;
    block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(&gw), T).await?;
        // The session the server sees is the gateway's: its cipher is the upstream link's.
        let row: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await?;
        let (_, cipher) = row.context("no Ssl_cipher row")?;
        ensure!(!cipher.is_empty(), "the upstream session is not encrypted");
        eprintln!("upstream cipher: {cipher}");
        Ok(())
    })?;
    drop(gw);

    // A CA that did not sign the server's certificate: the gateway refuses to log in, and the
    // client gets an error instead of a plaintext or unverified session.
    let other = tempfile::tempdir()?;
    let wrong = TlsFiles::generate(other.path())?;
    let gw = Gateway::start(&db, GatewayOptions::new(driver).upstream_tls(&wrong.cert))?;
    block_on_with_limit(LIMIT, async {
        let r = mysql_connect(mysql_opts(&gw), T).await;
        let e = r
            .err()
            .context("logged in through an upstream whose certificate does not verify")?;
        eprintln!("with the wrong CA: {e}");
        Ok(())
    })
}

both_drivers!(upstream_ed25519, upstream_tls);
