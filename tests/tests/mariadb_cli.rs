//! The stock `mariadb` command-line client through the gateway (batch mode, TCP), as `alice`.

use anyhow::{ensure, Result};
use gatehouse_tests::clients::{mariadb_cli, CliOutput};
use gatehouse_tests::{both_drivers, GatewayOptions, IoMode, TestEnv, Tls, APP_PASSWORD, TEST_DB};

const PLAIN: &[&str] = &["--skip-ssl", TEST_DB];
const TLS: &[&str] = &["--ssl", "--disable-ssl-verify-server-cert", TEST_DB];

/// Everything a client saw, to prove the upstream password never reaches it.
#[derive(Default)]
struct Seen(String);

impl Seen {
    fn run(&mut self, env: &TestEnv, args: &[&str], sql: &str) -> Result<CliOutput> {
        let gw = &env.gw;
        let out = mariadb_cli(gw, gw.user(), gw.password(), args, sql)?;
        self.0.push_str(&out.stdout);
        self.0.push_str(&out.stderr);
        Ok(out)
    }
    fn ok(&mut self, env: &TestEnv, args: &[&str], sql: &str) -> Result<String> {
        let out = self.run(env, args, sql)?;
        ensure!(out.ok, "mariadb CLI failed on:\n{sql}\n{out}");
        Ok(out.stdout)
    }
}

/// Queries, multi-statement input, a stored procedure with several result sets, errors, `USE`,
/// and what the client can learn about the upstream account; over plaintext and TLS.
fn cli_queries(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).tls(Tls::On))?;
    let mut seen = Seen::default();
    for args in [PLAIN, TLS] {
        let out = seen.ok(&env, args, "SELECT 1 + 1 AS two;\n")?;
        ensure!(out == "two\n2\n", "{out:?}");

        // Several statements in one input, and on one line.
        let out = seen.ok(&env, args, "SELECT 1; SELECT 2;\nSELECT 'three' AS t;\n")?;
        ensure!(out == "1\n1\n2\n2\nt\nthree\n", "{out:?}");

        // Non-ASCII round trip (utf8mb4).
        let out = seen.ok(
            &env,
            args,
            "SELECT 'grüße 🚪' AS s, CHAR_LENGTH('grüße 🚪') AS n;\n",
        )?;
        ensure!(out == "s\tn\ngrüße 🚪\t7\n", "{out:?}");
    }

    // DDL, DML, a procedure defined with DELIMITER returning two result sets.
    let out = seen.ok(
        &env,
        PLAIN,
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(20), qty INT);
         INSERT INTO items (name, qty) VALUES ('bolt', 10), ('nut', 20), ('gear', 3);
         UPDATE items SET qty = qty + 1 WHERE name = 'gear';
         SELECT ROW_COUNT() AS changed;
         DELIMITER //
         CREATE PROCEDURE two_sets(IN lim INT)
         BEGIN
           SELECT name FROM items WHERE qty > lim ORDER BY id;
           SELECT COUNT(*) AS n, SUM(qty) AS total FROM items;
         END //
         DELIMITER ;
         CALL two_sets(5);
         SELECT 'done' AS status;\n",
    )?;
    ensure!(
        out == "changed\n1\nname\nbolt\nnut\nn\ttotal\n3\t34\nstatus\ndone\n",
        "{out:?}"
    );

    // A syntax error: the CLI prints ERROR 1064 (42000) and, with --force, goes on.
    let out = seen.run(
        &env,
        &["--skip-ssl", "--force", TEST_DB],
        "SELEC 1;\nSELECT 'after' AS a;\nSELECT * FROM no_such_table;\nSELECT 1/0 AS d;\n",
    )?;
    // (--force makes the exit status 0 despite the errors.)
    ensure!(
        out.stderr
            .contains("ERROR 1064 (42000) at line 1: You have an error in your SQL syntax"),
        "{out}"
    );
    ensure!(
        out.stderr
            .contains("ERROR 1146 (42S02) at line 3: Table 'shop.no_such_table' doesn't exist"),
        "{out}"
    );
    ensure!(out.stdout == "a\nafter\nd\nNULL\n", "{out}");
    // Without --force the CLI stops at the first error and fails.
    let out = seen.run(
        &env,
        PLAIN,
        "SELECT 'before' AS b;\nSELEC 1;\nSELECT 'never';\n",
    )?;
    ensure!(!out.ok && out.stdout == "b\nbefore\n", "{out}");
    ensure!(out.stderr.contains("ERROR 1064 (42000) at line 2"), "{out}");

    // USE switches the default database (COM_INIT_DB from the CLI).
    let out = seen.ok(
        &env,
        PLAIN,
        "SELECT DATABASE();\nUSE mysql;\nSELECT DATABASE();\nuse shop\nSELECT COUNT(*) FROM items;\n",
    )?;
    ensure!(
        out == "DATABASE()\nshop\nDATABASE()\nmysql\nCOUNT(*)\n3\n",
        "{out:?}"
    );

    // What the client can find out about the upstream account: the account name is fine, the
    // password never appears.
    let out = seen.ok(
        &env,
        PLAIN,
        "SELECT CURRENT_USER();\nSHOW GRANTS;\nSHOW PROCESSLIST;\n\
         SELECT user, host FROM mysql.user;\nSHOW VARIABLES LIKE '%pass%';\n",
    )?;
    ensure!(out.contains("app@%"), "{out}");

    // The client side of TLS, from the CLI's own status output.
    let plain = seen.ok(&env, PLAIN, "status\n")?;
    ensure!(plain.contains("SSL:\t\t\tNot in use"), "{plain}");
    let tls = seen.ok(&env, TLS, "status\n")?;
    ensure!(tls.contains("SSL:\t\t\tCipher in use is "), "{tls}");

    // A wrong password.
    let gw = &env.gw;
    let out = mariadb_cli(gw, gw.user(), "wrong-password", PLAIN, "SELECT 1;\n")?;
    seen.0.push_str(&out.stdout);
    seen.0.push_str(&out.stderr);
    ensure!(!out.ok, "{out}");
    ensure!(out.stderr.contains("ERROR 1045 (28000)"), "{out}");
    let out = mariadb_cli(gw, "mallory", "wrong-password", TLS, "SELECT 1;\n")?;
    ensure!(
        !out.ok && out.stderr.contains("ERROR 1045 (28000)"),
        "{out}"
    );
    seen.0.push_str(&out.stderr);

    ensure!(
        !seen.0.contains(APP_PASSWORD),
        "the upstream password reached the client:\n{}",
        seen.0
    );
    Ok(())
}

/// With TLS required, a plaintext client is refused and a TLS client gets in.
fn cli_tls_required(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).tls(Tls::Require))?;
    let gw = &env.gw;
    let out = mariadb_cli(gw, gw.user(), gw.password(), PLAIN, "SELECT 'in' AS x;\n")?;
    eprintln!("plaintext client with TLS required: {}", out.stderr.trim());
    ensure!(!out.ok && out.stderr.contains("ERROR"), "{out}");
    let out = mariadb_cli(
        gw,
        gw.user(),
        gw.password(),
        TLS,
        "SELECT 'in' AS x;\nstatus\n",
    )?;
    ensure!(out.ok && out.stdout.starts_with("x\nin\n"), "{out}");
    ensure!(out.stdout.contains("Cipher in use is "), "{out}");
    Ok(())
}

both_drivers!(cli_queries, cli_tls_required);
