//! Statement policy end to end: a read-only identity and an operator identity behind the
//! gateway, real clients (the `mariadb` CLI, PyMySQL, mysql_async with server-side prepared
//! statements). Refused statements get an ERR naming the rule, the connection stays usable, and
//! the data on the server — checked directly, not through the gateway — is untouched. The
//! policy is reloaded when its file changes; a broken file keeps the previous one in force.
//!
//! Gateway-only: in direct mode there is no policy to test, so each test says so and passes.

use anyhow::{ensure, Context, Result};
use gatehouse::config::IoMode;
use gatehouse_tests::clients::{
    block_on_with_limit, mariadb_cli, mysql_connect, mysql_opts, run_python,
};
use gatehouse_tests::gateway::{direct_mode, GatewayOptions, BOB};
use gatehouse_tests::{both_drivers, TestEnv, TEST_DB};
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);
const T: Duration = Duration::from_secs(10);
const PLAIN: &[&str] = &["--skip-ssl", TEST_DB];

/// alice (group dev) may only read; bob (group ops) may change data and schemas, but never
/// drop or truncate, and never update or delete every row.
const POLICY: &str = r#"
[[role]]
name = "analytics-agent"
identities = ["alice"]
[[role.grant]]
targets = ["db"]
classes = ["read", "show", "session", "transaction"]

[[role]]
name = "operator"
groups = ["ops"]
[[role.grant]]
targets = ["db"]
classes = ["read", "write", "ddl", "show", "session", "transaction"]

[[rule]]
name = "no-destructive-ddl"
action = "deny"
operations = ["drop_table", "drop_database", "truncate"]

[[rule]]
name = "no-where-guard"
action = "deny"
operations = ["update", "delete"]
flags = ["no_where"]
message = "add a WHERE clause on a key"
"#;

fn skip_in_direct_mode(test: &str) -> bool {
    if direct_mode() {
        eprintln!("{test}: the policy is the gateway's; nothing to test directly");
    }
    direct_mode()
}

/// Starts MariaDB with `shop.orders` (three rows) and the gateway with [`POLICY`].
fn start(driver: IoMode, policy: &str) -> Result<TestEnv> {
    let env = TestEnv::start(GatewayOptions::new(driver).policy(policy))?;
    env.db.root_sql(&format!(
        "CREATE TABLE {TEST_DB}.orders (id INT PRIMARY KEY, total INT);
         INSERT INTO {TEST_DB}.orders VALUES (1, 10), (2, 20), (3, 30);"
    ))?;
    Ok(env)
}

/// The orders as the server has them (read directly, not through the gateway).
fn orders(env: &TestEnv) -> Result<String> {
    env.db.root_sql(&format!(
        "SELECT id, total FROM {TEST_DB}.orders ORDER BY id"
    ))
}

const ALL_ROWS: &str = "id\ttotal\n1\t10\n2\t20\n3\t30\n";

/// The read-only identity through the stock CLI: reads work; DROP TABLE, UPDATE, statements
/// smuggled after a SELECT or inside an executable comment are refused with 1142/1227 and
/// the rule's name, and the table is untouched.
fn read_only_identity_cli(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("read_only_identity_cli") {
        return Ok(());
    }
    let env = start(driver, POLICY)?;
    let gw = &env.gw;
    let (user, pw) = (gw.user(), gw.password());
    let out = mariadb_cli(gw, user, pw, PLAIN, "SELECT SUM(total) FROM orders;\n")?;
    ensure!(out.ok && out.stdout.contains("60"), "a read: {out}");

    let out = mariadb_cli(gw, user, pw, PLAIN, "DROP TABLE orders;\n")?;
    ensure!(!out.ok, "DROP TABLE passed: {out}");
    ensure!(
        out.stderr.contains("ERROR 1142 (42000)")
            && out.stderr.contains("DROP TABLE on shop.orders")
            && out.stderr.contains("\"no-destructive-ddl\"")
            && out.stderr.contains("analytics-agent"),
        "the refusal names operation, table, rule and role: {out}"
    );
    for sql in [
        "UPDATE orders SET total = 0 WHERE id = 1;",
        "SELECT 1; DELETE FROM orders WHERE id = 2;",
        "SELECT 1 /*!, (SELECT 1) */; /*!DELETE FROM orders WHERE id = 3*/;",
        "sElEcT 1;\n/* hi */ dRoP/**/TABLE `orders`;",
    ] {
        let out = mariadb_cli(gw, user, pw, PLAIN, &format!("{sql}\n"))?;
        ensure!(!out.ok, "{sql:?} passed: {out}");
        ensure!(
            out.stderr.contains("ERROR 1142") || out.stderr.contains("ERROR 1227"),
            "{sql:?}: {out}"
        );
    }
    ensure!(
        orders(&env)? == ALL_ROWS,
        "the data changed: {}",
        orders(&env)?
    );

    // One session: a refusal leaves the connection usable.
    let out = mariadb_cli(
        gw,
        user,
        pw,
        &["--skip-ssl", "--force", TEST_DB],
        "DROP TABLE orders;\nSELECT COUNT(*) AS n FROM orders;\n",
    )?;
    ensure!(
        out.stdout.contains('3') && out.stderr.contains("1142"),
        "after a refusal the session goes on: {out}"
    );
    Ok(())
}

/// The operator through PyMySQL and mysql_async: targeted writes work (and reach the server),
/// DELETE without WHERE and TRUNCATE are refused; a prepared statement is decided at PREPARE
/// and at every EXECUTE.
fn operator_identity(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("operator_identity") {
        return Ok(());
    }
    let env = start(driver, POLICY)?;
    let gw = &env.gw;
    let (bob, bob_pw) = BOB;
    let out = run_python(
        gw,
        "policy.py",
        false,
        &["--as-user", bob, "--as-password", bob_pw],
    )?;
    ensure!(out.ok, "PyMySQL: {out}");
    ensure!(
        orders(&env)? == "id\ttotal\n1\t11\n2\t20\n3\t30\n",
        "only the targeted update reached the server: {}",
        orders(&env)?
    );

    block_on_with_limit(LIMIT, async {
        let opts = mysql_opts(gw).user(Some(bob)).pass(Some(bob_pw));
        let mut conn = mysql_connect(opts, T).await?;
        // Binary protocol: the statement is decided at PREPARE...
        let stmt = conn
            .prep("UPDATE orders SET total = ? WHERE id = ?")
            .await?;
        conn.exec_drop(&stmt, (21, 2)).await?;
        let refused = conn.prep("DELETE FROM orders").await;
        let e = refused.err().context("DELETE without WHERE was prepared")?;
        ensure!(e.to_string().contains("no-where-guard"), "{e}");
        // ...and the connection goes on.
        let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM orders").await?;
        ensure!(n == Some(3), "{n:?}");
        Ok(())
    })?;
    ensure!(
        orders(&env)? == "id\ttotal\n1\t11\n2\t21\n3\t30\n",
        "{}",
        orders(&env)?
    );
    Ok(())
}

/// Hot reload: a changed policy file is in force within a few seconds; a broken one is
/// refused and the previous policy stays.
fn policy_reloads(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("policy_reloads") {
        return Ok(());
    }
    let env = start(driver, POLICY)?;
    let gw = &env.gw;
    let file = gw.policy_file().context("no policy file")?.to_owned();
    let (user, pw) = (gw.user(), gw.password());
    let update = "UPDATE orders SET total = 99 WHERE id = 3;\n";
    let out = mariadb_cli(gw, user, pw, PLAIN, update)?;
    ensure!(!out.ok, "alice may not write yet: {out}");

    // A broken file: the previous policy stays in force.
    std::fs::write(
        &file,
        format!("{POLICY}\n[[rule]]\nname = \"oops\"\naction = \"explode\"\n"),
    )?;
    std::thread::sleep(Duration::from_millis(2500));
    let out = mariadb_cli(gw, user, pw, PLAIN, "SELECT 1;\n")?;
    ensure!(out.ok, "a broken file must not stop the gateway: {out}");
    let out = mariadb_cli(gw, user, pw, PLAIN, update)?;
    ensure!(!out.ok, "still read-only: {out}");

    // alice gets write access.
    let widened = POLICY.replacen(
        r#"classes = ["read", "show", "session", "transaction"]"#,
        r#"classes = ["read", "write", "show", "session", "transaction"]"#,
        1,
    );
    std::fs::write(&file, widened)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = mariadb_cli(gw, user, pw, PLAIN, update)?;
        if out.ok {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the new policy never applied: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    ensure!(orders(&env)?.contains("3\t99"), "{}", orders(&env)?);
    Ok(())
}

/// Adoption mode: the session's identity is the MySQL account, `user@client-address`, and a
/// role can be matched to it; the account's own privileges (ALL here) do not matter.
fn passthrough_accounts_match_roles(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("passthrough_accounts_match_roles") {
        return Ok(());
    }
    let policy = POLICY.replacen(r#"identities = ["alice"]"#, r#"identities = ["app@*"]"#, 1);
    let env = TestEnv::start(GatewayOptions::new(driver).passthrough().policy(policy))?;
    env.db.root_sql(&format!(
        "CREATE TABLE {TEST_DB}.orders (id INT PRIMARY KEY, total INT);
         INSERT INTO {TEST_DB}.orders VALUES (1, 10), (2, 20), (3, 30);"
    ))?;
    let gw = &env.gw;
    let (user, pw) = (gw.user(), gw.password());
    let out = mariadb_cli(gw, user, pw, PLAIN, "SELECT COUNT(*) FROM orders;\n")?;
    ensure!(out.ok && out.stdout.contains('3'), "{out}");
    let out = mariadb_cli(gw, user, pw, PLAIN, "DELETE FROM orders WHERE id = 1;\n")?;
    ensure!(
        !out.ok && out.stderr.contains("analytics-agent"),
        "app@127.0.0.1 has the read-only role: {out}"
    );
    ensure!(orders(&env)? == ALL_ROWS, "{}", orders(&env)?);
    Ok(())
}

both_drivers!(
    read_only_identity_cli,
    operator_identity,
    policy_reloads,
    passthrough_accounts_match_roles,
);
