//! mysql_async (Rust, binary protocol) through the gateway: prepared statements with every
//! column type and NULL in every position (both NULL bitmaps), a 20 MiB blob (long data out,
//! packets over 16 MiB back), multiple result sets, statement close/reuse, COM_RESET_CONNECTION
//! and COM_CHANGE_USER.
//!
//! Cursors (COM_STMT_FETCH) are not covered: mysql_async never opens a cursor.

use anyhow::{bail, ensure, Context, Result};
use gatehouse_tests::clients::{block_on_with_limit, mysql_connect, mysql_opts, mysql_tls};
use gatehouse_tests::{both_drivers, GatewayOptions, IoMode, TestEnv, Tls};
use mysql_async::consts::ColumnType as CT;
use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Conn, Row, Value};
use sha2::Digest;

const T: std::time::Duration = std::time::Duration::from_secs(30);
/// Upper bound for a whole test body (mysql_async has no read timeout of its own).
const LIMIT: std::time::Duration = std::time::Duration::from_secs(240);

/// One column of the type table: SQL type, the value bound on INSERT, the value expected back
/// from a binary-protocol SELECT, and the column type the server reports.
struct Col {
    name: &'static str,
    sql: &'static str,
    put: Value,
    get: Value,
    ty: CT,
}

fn col(name: &'static str, sql: &'static str, put: Value, get: Value, ty: CT) -> Col {
    Col {
        name,
        sql,
        put,
        get,
        ty,
    }
}

fn b(s: impl AsRef<[u8]>) -> Value {
    Value::Bytes(s.as_ref().to_vec())
}

fn columns() -> Vec<Col> {
    use Value::*;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let json = r#"{"k": [1, 2.5, null, "🚪"], "n": {"t": true}}"#;
    vec![
        col("ti", "TINYINT", Int(-128), Int(-128), CT::MYSQL_TYPE_TINY),
        col(
            "tiu",
            "TINYINT UNSIGNED",
            UInt(255),
            UInt(255),
            CT::MYSQL_TYPE_TINY,
        ),
        col(
            "si",
            "SMALLINT",
            Int(-32768),
            Int(-32768),
            CT::MYSQL_TYPE_SHORT,
        ),
        col(
            "siu",
            "SMALLINT UNSIGNED",
            UInt(65535),
            UInt(65535),
            CT::MYSQL_TYPE_SHORT,
        ),
        col(
            "mi",
            "MEDIUMINT",
            Int(-8388608),
            Int(-8388608),
            CT::MYSQL_TYPE_INT24,
        ),
        col(
            "miu",
            "MEDIUMINT UNSIGNED",
            UInt(16777215),
            UInt(16777215),
            CT::MYSQL_TYPE_INT24,
        ),
        col(
            "i",
            "INT",
            Int(i32::MIN.into()),
            Int(i32::MIN.into()),
            CT::MYSQL_TYPE_LONG,
        ),
        col(
            "iu",
            "INT UNSIGNED",
            UInt(u32::MAX.into()),
            UInt(u32::MAX.into()),
            CT::MYSQL_TYPE_LONG,
        ),
        col(
            "bi",
            "BIGINT",
            Int(i64::MIN),
            Int(i64::MIN),
            CT::MYSQL_TYPE_LONGLONG,
        ),
        col(
            "bi2",
            "BIGINT",
            Int(i64::MAX),
            Int(i64::MAX),
            CT::MYSQL_TYPE_LONGLONG,
        ),
        col(
            "biu",
            "BIGINT UNSIGNED",
            UInt(u64::MAX),
            UInt(u64::MAX),
            CT::MYSQL_TYPE_LONGLONG,
        ),
        col(
            "f",
            "FLOAT",
            Float(-1.5e-3),
            Float(-1.5e-3),
            CT::MYSQL_TYPE_FLOAT,
        ),
        col(
            "d",
            "DOUBLE",
            Double(f64::MAX),
            Double(f64::MAX),
            CT::MYSQL_TYPE_DOUBLE,
        ),
        col(
            "d2",
            "DOUBLE",
            Double(-0.1),
            Double(-0.1),
            CT::MYSQL_TYPE_DOUBLE,
        ),
        col(
            "dec",
            "DECIMAL(65,30)",
            b("-12345678901234567890123456789012345.123456789012345678901234567890"),
            b("-12345678901234567890123456789012345.123456789012345678901234567890"),
            CT::MYSQL_TYPE_NEWDECIMAL,
        ),
        col(
            "dec2",
            "DECIMAL(5,2)",
            b("999.99"),
            b("999.99"),
            CT::MYSQL_TYPE_NEWDECIMAL,
        ),
        col(
            "dte",
            "DATE",
            Date(1000, 1, 1, 0, 0, 0, 0),
            Date(1000, 1, 1, 0, 0, 0, 0),
            CT::MYSQL_TYPE_DATE,
        ),
        col(
            "dtm",
            "DATETIME(6)",
            Date(9999, 12, 31, 23, 59, 59, 999_999),
            Date(9999, 12, 31, 23, 59, 59, 999_999),
            CT::MYSQL_TYPE_DATETIME,
        ),
        col(
            "ts",
            "TIMESTAMP(3) NULL",
            Date(2038, 1, 19, 3, 14, 7, 123_000),
            Date(2038, 1, 19, 3, 14, 7, 123_000),
            CT::MYSQL_TYPE_TIMESTAMP,
        ),
        col(
            "tm",
            "TIME(6)",
            Time(true, 34, 22, 59, 58, 999_999),
            Time(true, 34, 22, 59, 58, 999_999),
            CT::MYSQL_TYPE_TIME,
        ),
        col(
            "tm2",
            "TIME",
            Time(false, 0, 1, 2, 3, 0),
            Time(false, 0, 1, 2, 3, 0),
            CT::MYSQL_TYPE_TIME,
        ),
        col("yr", "YEAR", Int(2155), Int(2155), CT::MYSQL_TYPE_YEAR),
        col("ch", "CHAR(10)", b("ab"), b("ab"), CT::MYSQL_TYPE_STRING),
        col(
            "vc",
            "VARCHAR(100)",
            b("grüße, мир, 世界, 🚪🔑"),
            b("grüße, мир, 世界, 🚪🔑"),
            CT::MYSQL_TYPE_VAR_STRING,
        ),
        col(
            "tx",
            "TEXT",
            b("emoji 🎉 ".repeat(500)),
            b("emoji 🎉 ".repeat(500)),
            CT::MYSQL_TYPE_BLOB,
        ),
        col(
            "bn",
            "BINARY(4)",
            b([0u8, 1, 255]),
            b([0u8, 1, 255, 0]),
            CT::MYSQL_TYPE_STRING,
        ),
        col(
            "vb",
            "VARBINARY(300)",
            b(&all_bytes),
            b(&all_bytes),
            CT::MYSQL_TYPE_VAR_STRING,
        ),
        col(
            "bl",
            "BLOB",
            b(all_bytes.repeat(10)),
            b(all_bytes.repeat(10)),
            CT::MYSQL_TYPE_BLOB,
        ),
        col(
            "en",
            "ENUM('small','medium','large')",
            b("medium"),
            b("medium"),
            CT::MYSQL_TYPE_STRING,
        ),
        col(
            "st",
            "SET('a','b','c','d')",
            b("a,c,d"),
            b("a,c,d"),
            CT::MYSQL_TYPE_STRING,
        ),
        col(
            "bt",
            "BIT(10)",
            b([2u8, 1]),
            b([2u8, 1]),
            CT::MYSQL_TYPE_BIT,
        ),
        col("js", "JSON", b(json), b(json), CT::MYSQL_TYPE_BLOB),
    ]
}

/// `YEAR` may come back as a signed or unsigned integer: compare integers by value.
fn same(a: &Value, b: &Value) -> bool {
    fn int(v: &Value) -> Option<i128> {
        match v {
            Value::Int(i) => Some(*i as i128),
            Value::UInt(u) => Some(*u as i128),
            _ => None,
        }
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

async fn prepared_types_on(conn: &mut Conn, table: &str) -> Result<()> {
    let cols = columns();
    let defs: Vec<String> = cols
        .iter()
        .map(|c| format!("`{}` {}", c.name, c.sql))
        .collect();
    conn.query_drop(format!("DROP TABLE IF EXISTS {table}"))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, {}) DEFAULT CHARSET=utf8mb4",
        defs.join(", ")
    ))
    .await?;
    conn.query_drop("SET time_zone = '+00:00'").await?;
    let names: Vec<String> = cols.iter().map(|c| format!("`{}`", c.name)).collect();
    let names = names.join(", ");
    let marks = vec!["?"; cols.len()].join(", ");
    let insert = conn
        .prep(format!(
            "INSERT INTO {table} (id, {names}) VALUES (?, {marks})"
        ))
        .await?;
    ensure!(insert.num_params() as usize == cols.len() + 1);

    // Row 1: every value; row 2: all NULL; rows 100+i: NULL only in column i (both the
    // parameter NULL bitmap on the way in and the row NULL bitmap on the way out).
    let full: Vec<Value> = cols.iter().map(|c| c.put.clone()).collect();
    let mut rows: Vec<(i64, Vec<Value>)> =
        vec![(1, full.clone()), (2, vec![Value::NULL; cols.len()])];
    for i in 0..cols.len() {
        let mut v = full.clone();
        v[i] = Value::NULL;
        rows.push((100 + i as i64, v));
    }
    for (id, values) in &rows {
        let mut params = vec![Value::Int(*id)];
        params.extend(values.iter().cloned());
        conn.exec_drop(&insert, params)
            .await
            .with_context(|| format!("insert row {id}"))?;
        ensure!(conn.affected_rows() == 1);
    }
    conn.close(insert).await?;

    let select = conn
        .prep(format!("SELECT {names} FROM {table} WHERE id = ?"))
        .await?;
    // Column metadata as the server describes it (from the prepare, and from the execute).
    for (c, meta) in cols.iter().zip(select.columns().iter()) {
        ensure!(
            meta.name_str() == c.name && meta.column_type() == c.ty,
            "column {}: prepare reports {} {:?}, expected {:?}",
            c.name,
            meta.name_str(),
            meta.column_type(),
            c.ty
        );
    }
    for (id, values) in &rows {
        let row: Row = conn
            .exec_first(&select, (id,))
            .await?
            .with_context(|| format!("row {id} missing"))?;
        if *id == 1 {
            for (c, meta) in cols.iter().zip(row.columns_ref()) {
                ensure!(
                    meta.column_type() == c.ty,
                    "column {}: {:?}",
                    c.name,
                    meta.column_type()
                );
            }
        }
        let got = row.unwrap();
        ensure!(got.len() == cols.len());
        for ((c, put), got) in cols.iter().zip(values).zip(&got) {
            let want = if *put == Value::NULL {
                &Value::NULL
            } else {
                &c.get
            };
            ensure!(
                same(got, want),
                "row {id}, column {} ({}): got {got:?}, want {want:?}",
                c.name,
                c.sql
            );
        }
    }
    // The same statement, re-executed many times, and with a parameter of another type.
    for _ in 0..20 {
        let n: Option<Row> = conn.exec_first(&select, ("1",)).await?;
        ensure!(n.is_some());
    }

    // Parameters only: NULL bitmap of up to 40 parameters, each position NULL once.
    let n = 40;
    let q = format!("SELECT {}", vec!["?"; n].join(", "));
    let stmt = conn.prep(q).await?;
    for null_at in 0..n {
        let params: Vec<Value> = (0..n)
            .map(|i| {
                if i == null_at {
                    Value::NULL
                } else {
                    Value::Int(i as i64)
                }
            })
            .collect();
        let row: Row = conn.exec_first(&stmt, params).await?.context("no row")?;
        for (i, v) in row.unwrap().into_iter().enumerate() {
            let want = if i == null_at {
                Value::NULL
            } else {
                Value::Int(i as i64)
            };
            ensure!(same(&v, &want), "param {i} (NULL at {null_at}): {v:?}");
        }
    }
    conn.close(stmt).await?;
    conn.query_drop(format!("DROP TABLE {table}")).await?;
    Ok(())
}

/// Every column type through prepared statements, over plaintext and over TLS.
fn prepared_types(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).tls(Tls::On))?;
    block_on_with_limit(LIMIT, async {
        let mut plain = mysql_connect(mysql_opts(&env.gw), T).await?;
        prepared_types_on(&mut plain, "ma_types")
            .await
            .context("plaintext")?;
        plain.disconnect().await?;
        let mut tls = mysql_connect(mysql_opts(&env.gw).ssl_opts(mysql_tls()), T).await?;
        prepared_types_on(&mut tls, "ma_types_tls")
            .await
            .context("TLS")?;
        tls.disconnect().await?;
        Ok(())
    })
}

/// A 20 MiB blob: bound as a prepared-statement parameter (mysql_async sends it with
/// COM_STMT_SEND_LONG_DATA) and as a 40 MiB hex literal in one COM_QUERY (three client packets);
/// read back through both protocols (server rows > 16 MiB, split over packets); then over TLS.
fn large_blob(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver).tls(Tls::On))?;
    block_on_with_limit(LIMIT, async {
        let mut conn = mysql_connect(mysql_opts(&env.gw), T).await?;
        conn.query_drop("CREATE TABLE ma_blob (id INT PRIMARY KEY, b LONGBLOB)")
            .await?;
        let data: Vec<u8> = {
            use rand::RngCore;
            let mut v = vec![0u8; 20 << 20];
            rand::thread_rng().fill_bytes(&mut v);
            v
        };
        let digest = hex(&sha2::Sha256::digest(&data));

        conn.exec_drop("INSERT INTO ma_blob VALUES (?, ?)", (1, &data))
            .await?;
        let hexed = hex(&data);
        conn.query_drop(format!("INSERT INTO ma_blob VALUES (2, X'{hexed}')"))
            .await?;
        drop(hexed);

        let sums: Vec<(i32, u64, String)> = conn
            .query("SELECT id, LENGTH(b), SHA2(b, 256) FROM ma_blob ORDER BY id")
            .await?;
        for (id, len, sum) in &sums {
            ensure!(*len == data.len() as u64, "row {id}: stored length {len}");
            ensure!(*sum == digest, "row {id}: stored content differs");
        }
        ensure!(sums.len() == 2);

        for id in [1, 2] {
            let back: Option<Vec<u8>> = conn
                .exec_first("SELECT b FROM ma_blob WHERE id = ?", (id,))
                .await?;
            ensure!(
                back.as_deref() == Some(&data[..]),
                "binary protocol read-back of row {id}"
            );
            let back: Option<Vec<u8>> = conn
                .query_first(format!("SELECT b FROM ma_blob WHERE id = {id}"))
                .await?;
            ensure!(
                back.as_deref() == Some(&data[..]),
                "text protocol read-back of row {id}"
            );
        }
        // Both rows in one result set: two consecutive >16 MiB rows.
        let both: Vec<Vec<u8>> = conn.exec("SELECT b FROM ma_blob ORDER BY id", ()).await?;
        ensure!(both.len() == 2 && both.iter().all(|b| b[..] == data[..]));
        // Still in sync afterwards.
        let one: Option<i32> = conn.query_first("SELECT 1").await?;
        ensure!(one == Some(1));
        conn.disconnect().await?;

        // The same over TLS: long data in, >16 MiB rows out.
        let mut tls = mysql_connect(mysql_opts(&env.gw).ssl_opts(mysql_tls()), T).await?;
        let small: Option<String> = tls.query_first("SELECT REPEAT('t', 100000)").await?;
        ensure!(
            small.map(|s| s.len()) == Some(100000),
            "100 kB value over TLS"
        );
        tls.exec_drop("INSERT INTO ma_blob VALUES (?, ?)", (3, &data))
            .await?;
        let back: Option<Vec<u8>> = tls
            .exec_first("SELECT b FROM ma_blob WHERE id = ?", (3,))
            .await?;
        ensure!(
            back.as_deref() == Some(&data[..]),
            "TLS read-back (binary protocol)"
        );
        let back: Option<Vec<u8>> = tls
            .query_first("SELECT b FROM ma_blob WHERE id = 1")
            .await?;
        ensure!(
            back.as_deref() == Some(&data[..]),
            "TLS read-back (text protocol)"
        );
        tls.disconnect().await?;
        Ok(())
    })
}

fn hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// All result sets of a text-protocol `query_iter` or binary `exec_iter`, as rows of values.
async fn all_sets<'a>(
    mut r: mysql_async::QueryResult<'a, 'static, impl mysql_async::prelude::Protocol>,
) -> Result<Vec<Vec<Vec<Value>>>> {
    let mut sets = Vec::new();
    while !r.is_empty() {
        let rows: Vec<Row> = r.collect().await?;
        sets.push(rows.into_iter().map(Row::unwrap).collect());
    }
    // An ERR ending a multi-result stays pending in mysql_async until the next read.
    let rest: Vec<Row> = r.collect().await?;
    anyhow::ensure!(rest.is_empty());
    Ok(sets)
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// Multiple result sets, statement lifecycle, COM_RESET_CONNECTION, COM_CHANGE_USER.
fn session_commands(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver))?;
    block_on_with_limit(LIMIT, async {
        // A statement cache larger than the 100 statements held open below (mysql_async closes
        // statements it evicts from its cache).
        let opts = mysql_opts(&env.gw).stmt_cache_size(256);
        let mut conn = mysql_connect(opts, T).await?;

        // --- multiple result sets
        conn.query_drop(
            "CREATE PROCEDURE ma_sets(IN n INT) BEGIN \
             SELECT n AS a; SELECT 'x' AS b, n * 2 AS c; SELECT seq FROM seq_1_to_3; END",
        )
        .await?;
        let want = vec![
            vec![vec![Value::Int(5)]],
            vec![vec![b("x"), Value::Int(10)]],
            vec![
                vec![Value::UInt(1)],
                vec![Value::UInt(2)],
                vec![Value::UInt(3)],
            ],
        ];
        // Text rows hold bytes, binary rows typed values: compare as text.
        let norm = |sets: Vec<Vec<Vec<Value>>>| -> Vec<Vec<Vec<String>>> {
            let text = |v: Value| match v {
                Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                other => other.as_sql(true),
            };
            sets.into_iter()
                .map(|s| {
                    s.into_iter()
                        .map(|r| r.into_iter().map(text).collect())
                        .collect()
                })
                .collect()
        };
        let text = all_sets(conn.query_iter("CALL ma_sets(5)").await?).await?;
        ensure!(
            norm(text.clone()) == norm(want.clone()),
            "CALL, text protocol: {text:?}"
        );
        let binary = all_sets(conn.exec_iter("CALL ma_sets(?)", (5,)).await?).await?;
        ensure!(
            norm(binary.clone()) == norm(want.clone()),
            "CALL, binary protocol: {binary:?}"
        );
        // Several statements in one COM_QUERY (mysql_async sets CLIENT_MULTI_STATEMENTS).
        let multi = all_sets(conn.query_iter("SELECT 1; DO 0; SELECT 'two', 2").await?).await?;
        eprintln!("multi-statement result sets: {multi:?}");
        ensure!(
            norm(multi.clone())
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                == vec![
                    vec![vec!["1".to_string()]],
                    vec![vec!["two".to_string(), "2".to_string()]]
                ],
            "multi-statement: {multi:?}"
        );

        // --- statement lifecycle
        let add = conn.prep("SELECT ? + 1").await?;
        for i in 0..50i64 {
            let r: Option<i64> = conn.exec_first(&add, (i,)).await?;
            ensure!(r == Some(i + 1));
        }
        // Many statements at once, executed interleaved.
        let mut stmts = Vec::new();
        for i in 0..100 {
            stmts.push(conn.prep(format!("SELECT ? * {i}")).await?);
        }
        for (i, s) in stmts.iter().enumerate().rev() {
            let r: Option<i64> = conn.exec_first(s, (3,)).await?;
            ensure!(r == Some(3 * i as i64), "statement {i}: {r:?}");
        }
        for s in stmts {
            conn.close(s).await?;
        }
        // Executing a closed statement: ERR 1243, connection still usable.
        conn.close(add.clone()).await?;
        match conn.exec_first::<i64, _, _>(&add, (1,)).await {
            Ok(v) => bail!("executing a closed statement succeeded: {v:?}"),
            Err(e) => {
                eprintln!("closed statement: {e}");
                ensure!(server_code(&e) == Some(1243), "expected ERROR 1243: {e}");
            }
        }
        // A statement that fails to prepare.
        match conn.prep("SELEC ?").await {
            Ok(_) => bail!("preparing a syntax error succeeded"),
            Err(e) => ensure!(server_code(&e) == Some(1064), "expected ERROR 1064: {e}"),
        }
        let one: Option<i64> = conn.exec_first("SELECT ?", (1,)).await?;
        ensure!(one == Some(1));

        // --- COM_RESET_CONNECTION: session state and prepared statements are gone.
        conn.query_drop("SET @v = 42").await?;
        conn.query_drop("CREATE TEMPORARY TABLE ma_tmp (x INT)")
            .await?;
        let kept = conn.prep("SELECT @v").await?;
        ensure!(conn.reset().await?, "COM_RESET_CONNECTION not supported");
        let v: Option<Option<i64>> = conn.query_first("SELECT @v").await?;
        ensure!(v == Some(None), "@v after reset: {v:?}");
        match conn.query_drop("SELECT * FROM ma_tmp").await {
            Ok(()) => bail!("temporary table survived COM_RESET_CONNECTION"),
            Err(e) => ensure!(server_code(&e) == Some(1146), "{e}"),
        }
        match conn.exec_drop(&kept, ()).await {
            Ok(()) => bail!("a prepared statement survived COM_RESET_CONNECTION"),
            Err(e) => ensure!(server_code(&e) == Some(1243), "{e}"),
        }
        let db: Option<String> = conn.query_first("SELECT DATABASE()").await?;
        ensure!(
            db.as_deref() == Some("shop"),
            "database after reset: {db:?}"
        );

        // --- COM_CHANGE_USER to the second identity, then with a wrong password.
        let (bob, bob_pw) = env.gw.other_identity();
        conn.query_drop("SET @v = 7").await?;
        conn.change_user(
            ChangeUserOpts::default()
                .with_user(Some(bob.into()))
                .with_pass(Some(bob_pw.into())),
        )
        .await
        .context("COM_CHANGE_USER to bob")?;
        let row: Option<(Option<i64>, String, Option<String>)> = conn
            .query_first("SELECT @v, CURRENT_USER(), DATABASE()")
            .await?;
        eprintln!("after change_user to {bob}: (@v, CURRENT_USER(), DATABASE()) = {row:?}");
        let (v, _user, db) = row.context("no row")?;
        ensure!(v.is_none(), "session variable survived COM_CHANGE_USER");
        ensure!(
            db.as_deref() == Some("shop"),
            "database after change_user: {db:?}"
        );
        let r = conn
            .change_user(
                ChangeUserOpts::default()
                    .with_user(Some(bob.into()))
                    .with_pass(Some("wrong-password".into())),
            )
            .await;
        match r {
            Ok(()) => bail!("COM_CHANGE_USER with a wrong password succeeded"),
            Err(e) => {
                eprintln!("change_user with a wrong password: {e}");
                ensure!(server_code(&e) == Some(1045), "expected ERROR 1045: {e}");
            }
        }
        drop(conn);

        // A new connection is unaffected.
        let mut conn = mysql_connect(mysql_opts(&env.gw), T).await?;
        let n: Option<i64> = conn.query_first("SELECT 2").await?;
        ensure!(n == Some(2));
        conn.disconnect().await?;
        Ok(())
    })
}

/// `KILL` names the id a client was greeted with; through the gateway that is a gateway session
/// id, translated to the upstream thread id, and only sessions of the same identity may be
/// killed (the upstream account is shared by every identity, so the server cannot tell).
fn kill_ownership(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver))?;
    if env.gw.is_direct() {
        eprintln!(
            "kill_ownership: identities only exist through the gateway; skipped in direct mode"
        );
        return Ok(());
    }
    block_on_with_limit(LIMIT, async {
        let mut alice = mysql_connect(mysql_opts(&env.gw), T).await?;
        let mut alice2 = mysql_connect(mysql_opts(&env.gw), T).await?;
        let (bob, bob_pw) = env.gw.other_identity();
        let mut bob =
            mysql_connect(mysql_opts(&env.gw).user(Some(bob)).pass(Some(bob_pw)), T).await?;
        let victim = alice.id();

        // Another identity may not kill alice's session, by either form.
        let e = bob
            .query_drop(format!("KILL {victim}"))
            .await
            .err()
            .context("bob killed alice's session")?;
        ensure!(server_code(&e) == Some(1095), "expected ERROR 1095: {e}");
        let e = bob
            .query_drop("KILL 4000000000")
            .await
            .err()
            .context("KILL of an unknown id succeeded")?;
        ensure!(server_code(&e) == Some(1094), "expected ERROR 1094: {e}");
        let e = bob
            .query_drop("KILL USER app")
            .await
            .err()
            .context("KILL USER passed")?;
        ensure!(server_code(&e) == Some(1148), "expected ERROR 1148: {e}");
        let one: Option<i64> = alice.query_first("SELECT 1").await?;
        ensure!(one == Some(1), "alice's session was disturbed");

        // Alice may kill her own other session: it is the upstream thread that dies.
        let upstream_id: Option<u64> = alice2.query_first("SELECT CONNECTION_ID()").await?;
        alice.query_drop(format!("KILL {}", alice2.id())).await?;
        let r: std::result::Result<Option<i64>, _> = alice2.query_first("SELECT 1").await;
        ensure!(r.is_err(), "alice2 survived KILL");
        // KILL returns once the thread is told to die; it leaves the process list shortly.
        let upstream_id = upstream_id.context("no id")?;
        let mut live: Option<i64> = None;
        for _ in 0..50 {
            live = alice
                .query_first(format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {upstream_id}"
                ))
                .await?;
            if live == Some(0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        ensure!(
            live == Some(0),
            "the upstream thread of the killed session is still there after 5 s"
        );
        Ok(())
    })
}

both_drivers!(prepared_types, large_blob, session_commands, kill_ownership);
