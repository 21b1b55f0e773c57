//! Session recording end to end: real clients (mysql_async text and binary, PyMySQL, the
//! `mariadb` CLI) through the gateway to a real MariaDB, then the audit log read back: the
//! statements, bound parameters, decisions, row counts and result hashes match what happened
//! (the hashes are recomputed here from the rows the clients saw); `gatehouse audit verify`
//! finds the log intact and detects a flipped byte, a deleted record and a truncated segment;
//! `kill -9` under load loses no acknowledged statement in strict mode and leaves a verifiable
//! chain; a full disk refuses statements until space returns; `sessions list|show` and
//! `replay` work on the recorded sessions.
//!
//! Gateway-only: in direct mode nothing is recorded, so each test says so and passes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gatehouse::config::IoMode;
use gatehouse::record::event::{CommandResult, Payload, SessionStart, Statement};
use gatehouse::record::format::{segment_paths, Records};
use gatehouse::record::ResultHasher;
use gatehouse_tests::bin::{gatehouse_binary, run_gatehouse};
use gatehouse_tests::clients::{
    block_on_with_limit, mariadb_cli, mysql_connect, mysql_opts, run_python,
};
use gatehouse_tests::gateway::{direct_mode, GatewayOptions, ALICE, BOB};
use gatehouse_tests::{both_drivers, free_port, TestEnv, TEST_DB};
use mysql_async::prelude::Queryable;

const LIMIT: Duration = Duration::from_secs(180);
const T: Duration = Duration::from_secs(10);

/// alice reads; bob also writes. Nobody deletes without WHERE.
const POLICY: &str = r#"
[[role]]
name = "reader"
identities = ["alice"]
[[role.grant]]
targets = ["db"]
classes = ["read", "show", "session", "transaction"]

[[role]]
name = "operator"
groups = ["ops"]
[[role.grant]]
targets = ["db"]
classes = ["read", "write", "show", "session", "transaction"]

[[rule]]
name = "no-where-guard"
action = "deny"
operations = ["update", "delete"]
flags = ["no_where"]
"#;

fn skip_in_direct_mode(test: &str) -> bool {
    if direct_mode() {
        eprintln!("{test}: recording is the gateway's; nothing to test directly");
    }
    direct_mode()
}

fn start(driver: IoMode, recording: &str) -> Result<TestEnv> {
    let env = TestEnv::start(
        GatewayOptions::new(driver)
            .policy(POLICY)
            .recording(recording),
    )?;
    env.db.root_sql(&format!(
        "CREATE TABLE {TEST_DB}.items (id INT PRIMARY KEY, name VARCHAR(20));
         INSERT INTO {TEST_DB}.items VALUES (1, 'apple'), (2, 'pear'), (3, 'fig');"
    ))?;
    Ok(env)
}

/// Every record of the log: (seq, payload).
fn read_log(dir: &Path) -> Result<Vec<(u64, Payload)>> {
    let mut out = Vec::new();
    for (_, path) in segment_paths(dir)? {
        let bytes = std::fs::read(&path)?;
        for (offset, record) in Records::new(&bytes) {
            let record =
                record.map_err(|e| anyhow::anyhow!("{} offset {offset}: {e}", path.display()))?;
            let payload: Payload = serde_json::from_slice(record.payload)
                .with_context(|| format!("record {} payload", record.seq))?;
            out.push((record.seq, payload));
        }
    }
    Ok(out)
}

fn sessions_of(log: &[(u64, Payload)], identity: &str) -> Vec<SessionStart> {
    log.iter()
        .filter_map(|(_, p)| match p {
            Payload::SessionStart(s) if s.identity == identity => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn statements(log: &[(u64, Payload)], session: u64) -> Vec<Statement> {
    log.iter()
        .filter_map(|(_, p)| match p {
            Payload::Statement(s) if s.session == session => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn result_of(log: &[(u64, Payload)], session: u64, n: u64) -> Option<CommandResult> {
    log.iter().find_map(|(_, p)| match p {
        Payload::Result(r) if r.session == session && r.n == n => Some(r.clone()),
        _ => None,
    })
}

fn statement<'a>(stmts: &'a [Statement], command: &str, sql: &str) -> Result<&'a Statement> {
    stmts
        .iter()
        .find(|s| s.command == command && s.sql.as_deref() == Some(sql))
        .with_context(|| format!("no {command} {sql:?} recorded among {stmts:#?}"))
}

/// A text-protocol row's payload: each value as a length-prefixed string.
fn text_row(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.push(v.len() as u8);
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// The hash of one result set of these row payloads, as the recorder computes it.
fn hash_rows(rows: &[Vec<u8>]) -> String {
    let mut h = ResultHasher::default();
    for r in rows {
        h.row(r);
    }
    h.end_of_result_set();
    hex(&h.finish())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn audit_dir(env: &TestEnv) -> Result<PathBuf> {
    env.gw.audit_dir().context("the gateway records")
}

/// What three clients did is what the log says, and `audit verify`, `sessions list|show`
/// agree.
fn records_what_happened(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("records_what_happened") {
        return Ok(());
    }
    let mut env = start(
        driver,
        "[[recording.capture_rule]]\nidentity = \"bob\"\ncapture = \"rows\"",
    )?;
    let dir = audit_dir(&env)?;

    // alice, mysql_async: a text query, a prepared statement with a parameter, a refusal.
    let name: String = block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(&env.gw), T).await?;
        let rows: Vec<(i32, String)> = conn.query("SELECT id, name FROM items ORDER BY id").await?;
        ensure!(rows.len() == 3, "{rows:?}");
        let name: Option<String> = conn
            .exec_first("SELECT name FROM items WHERE id = ?", (2,))
            .await?;
        let refused = conn.query_drop("DELETE FROM items").await;
        ensure!(refused.is_err(), "DELETE without WHERE passed");
        conn.disconnect().await?;
        Ok(name.unwrap_or_default())
    })?;
    ensure!(name == "pear", "{name}");

    // bob, PyMySQL: a read (rows captured) and a parameterised insert.
    let out = run_python(
        &env.gw,
        "recording.py",
        false,
        &["--as-user", BOB.0, "--as-password", BOB.1],
    )?;
    ensure!(out.ok, "recording.py: {out}");

    // bob, the mariadb CLI.
    let out = mariadb_cli(
        &env.gw,
        BOB.0,
        BOB.1,
        &["--skip-ssl", TEST_DB],
        "UPDATE items SET name = 'plum' WHERE id = 3;\n",
    )?;
    ensure!(out.ok, "cli: {out}");

    env.gw.stop();
    let log = read_log(&dir)?;

    // alice's session.
    let alice = sessions_of(&log, ALICE.0);
    ensure!(alice.len() == 1, "alice's sessions: {alice:#?}");
    let a = &alice[0];
    ensure!(a.target == "db" && a.auth == "gateway", "{a:#?}");
    ensure!(a.client.starts_with("127.0.0.1:"), "{a:#?}");
    ensure!(a.upstream_connection_id > 0, "{a:#?}");
    let stmts = statements(&log, a.session);
    let q = statement(
        &stmts,
        "COM_QUERY",
        "SELECT id, name FROM items ORDER BY id",
    )?;
    ensure!(
        q.decision == "allow" && q.kind.as_deref() == Some("read"),
        "{q:#?}"
    );
    ensure!(
        q.digest.is_some() && q.database.as_deref() == Some(TEST_DB),
        "{q:#?}"
    );
    let r = result_of(&log, a.session, q.n).context("the query's result")?;
    ensure!(r.rows == 3 && r.error.is_none(), "{r:#?}");
    let expected = hash_rows(&[
        text_row(&["1", "apple"]),
        text_row(&["2", "pear"]),
        text_row(&["3", "fig"]),
    ]);
    ensure!(
        r.result_hash.as_deref() == Some(expected.as_str()),
        "the result hash is the rows the client saw: {r:#?} vs {expected}"
    );
    ensure!(
        r.forwarded_ns >= q.received_ns && r.done_ns >= r.forwarded_ns,
        "{q:#?} {r:#?}"
    );

    let e = statement(
        &stmts,
        "COM_STMT_EXECUTE",
        "SELECT name FROM items WHERE id = ?",
    )?;
    let params = e.params.as_ref().context("bound parameters")?;
    ensure!(
        params.len() == 1 && params[0].value == serde_json::json!(2),
        "{params:#?}"
    );
    let r = result_of(&log, a.session, e.n).context("the execute's result")?;
    // A binary row: header 0x00, NULL bitmap (one byte for one column), then the value.
    let mut row = vec![0u8, 0];
    row.extend_from_slice(&text_row(&["pear"]));
    ensure!(
        r.rows == 1 && r.result_hash.as_deref() == Some(hash_rows(&[row]).as_str()),
        "{r:#?}"
    );

    let d = statement(&stmts, "COM_QUERY", "DELETE FROM items")?;
    ensure!(d.decision == "refuse", "{d:#?}");
    let err = d.error.as_ref().context("the refusal")?;
    ensure!(
        err.code == 1142 && err.message.contains("no-where-guard"),
        "{d:#?}"
    );
    ensure!(
        d.rules
            .iter()
            .any(|r| r.rule.as_deref() == Some("no-where-guard")),
        "{d:#?}"
    );
    ensure!(
        result_of(&log, a.session, d.n).is_none(),
        "a refused statement never ran"
    );
    let end = log
        .iter()
        .find_map(|(_, p)| match p {
            Payload::SessionEnd(e) if e.session == a.session => Some(e.clone()),
            _ => None,
        })
        .context("alice's session end")?;
    ensure!(end.reason == "client_quit" && end.refused == 1, "{end:#?}");
    // The totals add up the session's records (mysql_async runs a query of its own at
    // connect, so more than the 3 + 1 rows above).
    let rows: u64 = log
        .iter()
        .filter_map(|(_, p)| match p {
            Payload::Result(r) if r.session == a.session => Some(r.rows),
            _ => None,
        })
        .sum();
    ensure!(
        end.rows == rows && rows >= 4,
        "{end:#?} vs {rows} rows in results"
    );
    ensure!(end.statements == stmts.len() as u64, "{end:#?}");

    // bob's sessions: PyMySQL's read with captured rows, its insert; the CLI's update.
    let bob = sessions_of(&log, BOB.0);
    ensure!(bob.len() == 2, "bob's sessions: {bob:#?}");
    let py = statements(&log, bob[0].session);
    let read = statement(&py, "COM_QUERY", "SELECT id, name FROM items ORDER BY id")?;
    let r = result_of(&log, bob[0].session, read.n).context("bob's read")?;
    let captured = r.rows_base64.as_ref().context("rows captured for bob")?;
    use base64::Engine as _;
    let captured: Vec<Vec<u8>> = captured
        .iter()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
        .collect::<Result<_, _>>()?;
    ensure!(
        captured
            == [
                text_row(&["1", "apple"]),
                text_row(&["2", "pear"]),
                text_row(&["3", "fig"])
            ],
        "captured rows: {captured:?}"
    );
    let insert = statement(&py, "COM_QUERY", "INSERT INTO items VALUES (4, 'kiwi')")?;
    let r = result_of(&log, bob[0].session, insert.n).context("the insert's result")?;
    ensure!(
        r.affected_rows == 1 && insert.kind.as_deref() == Some("write"),
        "{r:#?}"
    );
    let cli = statements(&log, bob[1].session);
    let update = statement(
        &cli,
        "COM_QUERY",
        "UPDATE items SET name = 'plum' WHERE id = 3",
    )?;
    ensure!(
        result_of(&log, bob[1].session, update.n).is_some_and(|r| r.affected_rows == 1),
        "{update:#?}"
    );

    // The tools agree.
    let d = dir.display().to_string();
    let (ok, out, err) = run_gatehouse(&["audit", "verify", &d])?;
    ensure!(ok, "audit verify: {out}{err}");
    let (ok, out, err) = run_gatehouse(&["sessions", "list", "--dir", &d, "--identity", "bob"])?;
    ensure!(ok, "sessions list: {out}{err}");
    ensure!(
        out.contains(&bob[0].session.to_string()) && !out.contains(ALICE.0),
        "sessions list --identity bob: {out}"
    );
    let (ok, out, err) =
        run_gatehouse(&["sessions", "list", "--dir", &d, "--statement-kind", "write"])?;
    // Statements attempted count too: alice's refused DELETE is a write.
    ensure!(
        ok && out.contains(ALICE.0) && out.contains(BOB.0),
        "kind write: {out}{err}"
    );
    let (ok, out, err) =
        run_gatehouse(&["sessions", "list", "--dir", &d, "--statement-kind", "ddl"])?;
    ensure!(
        ok && !out.contains(ALICE.0) && !out.contains(BOB.0),
        "kind ddl: {out}{err}"
    );
    let id = a.session.to_string();
    let (ok, out, err) = run_gatehouse(&["sessions", "show", &id, "--dir", &d])?;
    ensure!(ok, "sessions show: {out}{err}");
    ensure!(
        out.contains("SELECT name FROM items WHERE id = ?") && out.contains("no-where-guard"),
        "sessions show {id}: {out}"
    );
    let (ok, out, err) = run_gatehouse(&["audit", "export", "--dir", &d])?;
    ensure!(ok, "export: {err}");
    let lines = out.lines().count();
    ensure!(
        lines == log.len(),
        "export: {lines} lines for {} records",
        log.len()
    );
    Ok(())
}

/// `audit verify` on copies of a real log: intact, a flipped byte, a record cut out, a
/// truncated segment.
fn verify_detects_tampering(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("verify_detects_tampering") {
        return Ok(());
    }
    let mut env = start(driver, "")?;
    let dir = audit_dir(&env)?;
    for _ in 0..3 {
        let out = mariadb_cli(
            &env.gw,
            ALICE.0,
            ALICE.1,
            &["--skip-ssl", TEST_DB],
            "SELECT * FROM items;\nSELECT COUNT(*) FROM items;\n",
        )?;
        ensure!(out.ok, "{out}");
    }
    env.gw.stop();
    let segments = segment_paths(&dir)?;
    ensure!(segments.len() == 1, "{segments:?}");
    let segment = &segments[0].1;
    let bytes = std::fs::read(segment)?;
    let offsets: Vec<usize> = Records::new(&bytes).map(|(at, _)| at).collect();
    ensure!(offsets.len() > 10, "records: {}", offsets.len());

    let copy = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let d = env.db.scratch().join(name);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(segment.file_name().unwrap()), bytes)?;
        Ok(d)
    };
    let verify = |d: &Path| run_gatehouse(&["audit", "verify", &d.display().to_string()]);

    let (ok, out, err) = verify(&copy("intact", &bytes)?)?;
    ensure!(ok, "intact copy: {out}{err}");

    let mut flipped = bytes.clone();
    let at = offsets[5] + 8 + 60; // inside record 6's payload
    flipped[at] ^= 0x20;
    let (ok, out, err) = verify(&copy("flipped", &flipped)?)?;
    let text = format!("{out}{err}");
    ensure!(!ok, "a flipped byte passed: {text}");
    ensure!(
        text.contains(&offsets[5].to_string()) && text.to_lowercase().contains("crc"),
        "names the record's offset and the CRC: {text}"
    );

    let mut cut = bytes[..offsets[7]].to_vec();
    cut.extend_from_slice(&bytes[offsets[8]..]);
    let (ok, out, err) = verify(&copy("deleted", &cut)?)?;
    let text = format!("{out}{err}");
    ensure!(!ok, "a deleted record passed: {text}");
    ensure!(text.contains("seq"), "names the seq: {text}");

    let truncated = &bytes[..bytes.len() - 7];
    let (ok, out, err) = verify(&copy("truncated", truncated)?)?;
    let text = format!("{out}{err}");
    ensure!(!ok, "a truncated segment passed: {text}");
    ensure!(text.to_lowercase().contains("truncated"), "{text}");
    Ok(())
}

/// A gateway process (the real binary) serving `config`, killed on drop.
struct GatewayProcess {
    child: Child,
}

impl GatewayProcess {
    fn start(config: &Path, port: u16) -> Result<GatewayProcess> {
        let child = Command::new(gatehouse_binary()?)
            .args(["serve", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(
                Instant::now() < deadline,
                "the gateway did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(GatewayProcess { child })
    }

    fn kill9(&mut self) -> Result<()> {
        let pid = self.child.id() as i32;
        // SAFETY: signalling our own child process.
        ensure!(unsafe { libc::kill(pid, libc::SIGKILL) } == 0, "kill -9");
        self.child.wait()?;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let pid = self.child.id() as i32;
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.kill9()?;
                bail!("the gateway did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The test gateway's configuration on a fixed port, with `durability`.
fn process_config(env: &TestEnv, durability: &str) -> Result<(PathBuf, u16)> {
    let text = std::fs::read_to_string(env.gw.config_file().context("config file")?)?;
    let port = free_port()?;
    let text = text
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
        .replace(
            "[recording]\n",
            &format!("[recording]\ndurability = \"{durability}\"\n"),
        );
    let path = env
        .db
        .scratch()
        .join(format!("gatehouse-{durability}.toml"));
    std::fs::write(&path, text)?;
    Ok((path, port))
}

/// Clients insert rows as fast as they can; the gateway is killed with SIGKILL; every insert a
/// client saw acknowledged must be in the log (strict), and after a restart the chain is
/// intact and continues (both modes).
fn kill_9_under_load(durability: &str) -> Result<()> {
    let mut env = start(IoMode::Epoll, "")?;
    env.gw.stop();
    env.db
        .root_sql(&format!("CREATE TABLE {TEST_DB}.hits (k INT PRIMARY KEY)"))?;
    let (config, port) = process_config(&env, durability)?;
    let dir = audit_dir(&env)?;
    let mut gw = GatewayProcess::start(&config, port)?;

    let acknowledged: BTreeSet<u32> = block_on_with_limit(LIMIT, async {
        let opts = mysql_opts(&env.gw)
            .tcp_port(port)
            .user(Some(BOB.0))
            .pass(Some(BOB.1));
        let mut tasks = Vec::new();
        for worker in 0..4u32 {
            let opts = opts.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                let Ok(mut conn) = mysql_connect(opts, T).await else {
                    return done;
                };
                for i in 0.. {
                    let k = worker * 1_000_000 + i;
                    match conn
                        .query_drop(format!("INSERT INTO hits VALUES ({k})"))
                        .await
                    {
                        Ok(()) => done.push(k),
                        Err(_) => break,
                    }
                }
                done
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        gw.kill9()?;
        let mut all = BTreeSet::new();
        for t in tasks {
            all.extend(t.await?);
        }
        Ok(all)
    })?;
    ensure!(
        acknowledged.len() > 20,
        "load: only {} inserts",
        acknowledged.len()
    );
    eprintln!(
        "{durability}: {} inserts acknowledged before kill -9",
        acknowledged.len()
    );

    // Restart: recovery cuts a torn tail, continues the chain.
    let mut gw = GatewayProcess::start(&config, port)?;
    gw.stop()?;
    let d = dir.display().to_string();
    let (ok, out, err) = run_gatehouse(&["audit", "verify", &d])?;
    ensure!(
        ok,
        "{durability}: the chain after kill -9 and restart: {out}{err}"
    );
    let log = read_log(&dir)?;
    let recovered = log
        .iter()
        .any(|(_, p)| matches!(p, Payload::GatewayStart(s) if s.recovered.is_some()));
    ensure!(recovered, "the restart says it recovered");
    if durability == "strict" {
        let recorded: BTreeSet<u32> = log
            .iter()
            .filter_map(|(_, p)| match p {
                Payload::Statement(s) => s
                    .sql
                    .as_deref()?
                    .strip_prefix("INSERT INTO hits VALUES (")?
                    .strip_suffix(')')?
                    .parse()
                    .ok(),
                _ => None,
            })
            .collect();
        let lost: Vec<_> = acknowledged.difference(&recorded).collect();
        ensure!(
            lost.is_empty(),
            "strict: {} acknowledged inserts have no record, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
    Ok(())
}

#[test]
fn kill_9_under_load_strict() -> Result<()> {
    if skip_in_direct_mode("kill_9_under_load_strict") {
        return Ok(());
    }
    kill_9_under_load("strict")
}

#[test]
fn kill_9_under_load_batched() -> Result<()> {
    if skip_in_direct_mode("kill_9_under_load_batched") {
        return Ok(());
    }
    kill_9_under_load("batched")
}

/// The audit log on a small tmpfs: filled up, statements are refused with a clear error and
/// `gatehouse status` says why; freed, statements run again and nothing was lost.
#[test]
fn disk_full_refuses_statements() -> Result<()> {
    if skip_in_direct_mode("disk_full_refuses_statements") {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("disk_full_refuses_statements: needs root to mount a tmpfs; skipped");
        return Ok(());
    }
    let db = gatehouse_tests::MariaDb::start()?;
    let fs = db.scratch().join("small-fs");
    std::fs::create_dir_all(&fs)?;
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "gatehouse-test"])
        .arg(&fs)
        .status()?;
    ensure!(mounted.success(), "mount tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(fs.clone());
    let dir = fs.join("audit");
    db.root_sql(&format!(
        "CREATE TABLE {TEST_DB}.items (id INT PRIMARY KEY, name VARCHAR(20));
         INSERT INTO {TEST_DB}.items VALUES (1, 'apple');"
    ))?;
    let mut gw = gatehouse_tests::Gateway::start(
        &db,
        GatewayOptions::new(IoMode::Epoll)
            .policy(POLICY)
            .recording(format!(
                "dir = {:?}\ncommit_interval_ms = 5",
                dir.display().to_string()
            )),
    )?;
    let config = gw.config_file().context("config")?.to_owned();

    let result = block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(&gw), T).await?;
        let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM items").await?;
        ensure!(n == Some(1));

        // Fill the file system.
        let filler = fs.join("filler");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&filler)?;
            let chunk = vec![0u8; 64 << 10];
            while f.write_all(&chunk).is_ok() {}
            let _ = f.sync_all();
        }
        // Statements go on until the writer meets the full disk; then they are refused.
        let deadline = Instant::now() + Duration::from_secs(20);
        let refusal = loop {
            ensure!(
                Instant::now() < deadline,
                "statements were never refused on a full disk"
            );
            match conn.query_drop("SELECT name FROM items WHERE id = 1").await {
                Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(mysql_async::Error::Server(e)) => break e,
                Err(e) => bail!("not a server error: {e}"),
            }
        };
        ensure!(
            refusal.code == 1290 && refusal.message.contains("audit log"),
            "the refusal says why: {refusal:?}"
        );
        let (ok, out, err) = run_gatehouse(&["status", "--config", &config.display().to_string()])?;
        ensure!(
            !ok && out.to_lowercase().contains("fail"),
            "status while full: {out}{err}"
        );

        // Space returns: recording recovers by itself, statements run again.
        std::fs::remove_file(&filler)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            ensure!(
                Instant::now() < deadline,
                "statements still refused after space returned"
            );
            match conn
                .query_first::<String, _>("SELECT name FROM items WHERE id = 1")
                .await
            {
                Ok(name) => {
                    ensure!(name.as_deref() == Some("apple"));
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let (ok, out, err) = run_gatehouse(&["status", "--config", &config.display().to_string()])?;
        ensure!(ok, "status after recovery: {out}{err}");
        conn.disconnect().await?;
        Ok(())
    });
    gw.stop();
    result?;
    let (ok, out, err) = run_gatehouse(&["audit", "verify", &dir.display().to_string()])?;
    ensure!(ok, "verify after the full disk: {out}{err}");
    // Every refusal was recorded too.
    let log = read_log(&dir)?;
    ensure!(
        log.iter().any(|(_, p)| matches!(p, Payload::Statement(s)
            if s.error.as_ref().is_some_and(|e| e.code == 1290))),
        "the refusals are in the log"
    );
    Ok(())
}

/// A recorded session replays against the same target with matching results; after the data
/// changes, replay reports the difference.
fn replay_compares_results(driver: IoMode) -> Result<()> {
    if skip_in_direct_mode("replay_compares_results") {
        return Ok(());
    }
    let mut env = start(driver, "")?;
    let dir = audit_dir(&env)?;
    block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(&env.gw), T).await?;
        let _: Vec<(i32, String)> = conn.query("SELECT id, name FROM items ORDER BY id").await?;
        let _: Option<String> = conn
            .exec_first("SELECT name FROM items WHERE id = ?", (3,))
            .await?;
        conn.disconnect().await?;
        Ok(())
    })?;
    env.gw.stop();
    let log = read_log(&dir)?;
    let session = sessions_of(&log, ALICE.0)
        .first()
        .context("alice's session")?
        .session
        .to_string();
    let config = env
        .gw
        .config_file()
        .context("config")?
        .display()
        .to_string();
    let (ok, out, err) =
        run_gatehouse(&["replay", &session, "--config", &config, "--against", "db"])?;
    ensure!(ok, "replay against unchanged data: {out}{err}");
    let differs = |out: &str| {
        out.lines()
            .any(|l| l.contains("DIFFERENT") && !l.contains("replayed against"))
    };
    ensure!(
        out.contains("all replayed results match") && !differs(&out),
        "{out}"
    );

    env.db.root_sql(&format!(
        "UPDATE {TEST_DB}.items SET name = 'grape' WHERE id = 3"
    ))?;
    let (ok, out, err) =
        run_gatehouse(&["replay", &session, "--config", &config, "--against", "db"])?;
    ensure!(!ok, "replay after the data changed must fail: {out}{err}");
    ensure!(differs(&out), "{out}");
    Ok(())
}

both_drivers!(
    records_what_happened,
    verify_detects_tampering,
    replay_compares_results
);
