//! PyMySQL (pure-python client, text protocol) through the gateway: runs each script in
//! `tests/python/` over plaintext and over TLS, against one MariaDB + gateway per driver.
//!
//! Not covered here: COM_CHANGE_USER (PyMySQL has no change_user; see `mysql_async.rs`).
//! `commands.py` kills connections by the id their handshake announced (`thread_id()`), as the
//! `mariadb` CLI's Ctrl-C does: through the gateway that id must reach the right session.

use anyhow::{bail, Result};
use gatehouse_tests::clients::run_python;
use gatehouse_tests::{both_drivers, GatewayOptions, IoMode, TestEnv, Tls};

const SCRIPTS: &[&str] = &[
    "crud.py",
    "column_types.py",
    "transactions.py",
    "multi.py",
    "warnings_check.py",
    "tls.py",
    "commands.py",
    "blob.py",
];

/// Every script, plaintext then TLS; all run even if one fails, then every failure is reported
/// with the script's output.
fn pymysql_scripts(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).tls(Tls::On))?;
    let mut failures = Vec::new();
    for tls in [false, true] {
        for script in SCRIPTS {
            let started = std::time::Instant::now();
            let out = run_python(&env.gw, script, tls, &[])?;
            let label = format!("{script}{}", if tls { " --tls" } else { "" });
            eprintln!(
                "[{}] {label}: {} in {:.1?}",
                env.gw.label(),
                if out.ok { "ok" } else { "FAILED" },
                started.elapsed()
            );
            if !out.ok {
                failures.push(format!("=== {label} ===\n{out}"));
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} PyMySQL script run(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

both_drivers!(pymysql_scripts);
