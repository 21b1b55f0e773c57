//! Differential test: every statement of `tests/differential/statements.sql` runs once directly
//! against MariaDB (as `app`) and once through the gateway (as alice), each time on a freshly
//! created `shop` database of the same server over one mysql_async text-protocol connection.
//! Per statement, everything a client can observe must be identical: column metadata, rows,
//! affected rows, last insert id, info string, warning count, errors (code, SQLSTATE, message)
//! and `SHOW WARNINGS`. The first difference is reported with both sides (and the line numbers
//! of all others).
//!
//! In direct mode both legs are direct: that checks the statement list is deterministic.
//! Set `GATEHOUSE_DIFF_DUMP=<file>` to write the direct leg's transcript.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gatehouse_tests::clients::{block_on, mysql_connect, mysql_opts};
use gatehouse_tests::{
    both_drivers, GatewayOptions, IoMode, TestEnv, APP_PASSWORD, APP_USER, TEST_DB,
};
use mysql_async::prelude::*;
use mysql_async::{Column, Conn, Row, Value};

const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The statements, with their line numbers.
fn statements() -> Result<Vec<(usize, String)>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/differential/statements.sql");
    let text = std::fs::read_to_string(path).with_context(|| path.to_string())?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with("--"))
        .map(|(n, l)| (n, l.to_string()))
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
struct ColumnMeta {
    name: String,
    org_name: String,
    table: String,
    org_table: String,
    schema: String,
    column_type: String,
    flags: u16,
    charset: u16,
    length: u32,
    decimals: u8,
}

impl ColumnMeta {
    fn of(c: &Column) -> ColumnMeta {
        ColumnMeta {
            name: c.name_str().into_owned(),
            org_name: c.org_name_str().into_owned(),
            table: c.table_str().into_owned(),
            org_table: c.org_table_str().into_owned(),
            schema: c.schema_str().into_owned(),
            column_type: format!("{:?}", c.column_type()),
            flags: c.flags().bits(),
            charset: c.character_set(),
            length: c.column_length(),
            decimals: c.decimals(),
        }
    }
}

/// One result of a statement: a result set, or an OK.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Rows {
        columns: Vec<ColumnMeta>,
        rows: Vec<Vec<Cell>>,
    },
    Ok {
        affected_rows: u64,
        last_insert_id: Option<u64>,
        info: String,
        warnings: u16,
    },
}

/// A text-protocol value, shown readably.
#[derive(Clone, PartialEq)]
struct Cell(Option<Vec<u8>>);

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => write!(f, "NULL"),
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) if s.len() > 200 => write!(
                    f,
                    "{:?}…({} bytes)",
                    &s[..s.floor_char_boundary(200)],
                    s.len()
                ),
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(
                    f,
                    "0x{}",
                    b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                ),
            },
        }
    }
}

fn cells(row: Row) -> Vec<Cell> {
    row.unwrap()
        .into_iter()
        .map(|v| match v {
            Value::NULL => Cell(None),
            Value::Bytes(b) => Cell(Some(b)),
            other => Cell(Some(other.as_sql(true).into_bytes())),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    parts: Vec<Part>,
    /// `(code, SQLSTATE, message)` if the statement (or one of a multi-statement) failed.
    error: Option<(u16, String, String)>,
    /// Rows of `SHOW WARNINGS` right after, or its own failure.
    show_warnings: std::result::Result<Vec<Vec<Cell>>, String>,
}

fn error_of(e: mysql_async::Error) -> (u16, String, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.state, s.message),
        other => (0, "client".into(), other.to_string()),
    }
}

async fn run_one(conn: &mut Conn, sql: &str) -> Outcome {
    let mut parts = Vec::new();
    let mut error = None;
    match conn.query_iter(sql).await {
        Err(e) => error = Some(error_of(e)),
        Ok(mut r) => loop {
            let columns = r.columns().unwrap_or_else(|| Vec::new().into());
            if columns.is_empty() {
                parts.push(Part::Ok {
                    affected_rows: r.affected_rows(),
                    last_insert_id: r.last_insert_id(),
                    info: r.info().into_owned(),
                    warnings: r.warnings(),
                });
            }
            match r.collect::<Row>().await {
                Err(e) => {
                    error = Some(error_of(e));
                    break;
                }
                Ok(rows) => {
                    if !columns.is_empty() {
                        parts.push(Part::Rows {
                            columns: columns.iter().map(ColumnMeta::of).collect(),
                            rows: rows.into_iter().map(cells).collect(),
                        });
                    }
                }
            }
            if r.is_empty() {
                // mysql_async keeps an ERR that ends a multi-result as a "pending" error,
                // surfaced only by the next read: fetch it here.
                if let Err(e) = r.collect::<Row>().await {
                    error = Some(error_of(e));
                }
                break;
            }
        },
    }
    let show_warnings = match conn.query::<Row, _>("SHOW WARNINGS").await {
        Ok(rows) => Ok(rows.into_iter().map(cells).collect()),
        Err(e) => Err(e.to_string()),
    };
    Outcome {
        parts,
        error,
        show_warnings,
    }
}

/// Runs every statement on one connection, with a timeout per statement (a hang is recorded
/// as an error and ends the leg).
async fn run_leg(
    opts: mysql_async::OptsBuilder,
    stmts: &[(usize, String)],
) -> Result<Vec<Outcome>> {
    let mut conn = mysql_connect(opts, STATEMENT_TIMEOUT).await?;
    let mut out = Vec::with_capacity(stmts.len());
    for (_, sql) in stmts {
        match tokio::time::timeout(STATEMENT_TIMEOUT, run_one(&mut conn, sql)).await {
            Ok(o) => out.push(o),
            Err(_) => {
                out.push(Outcome {
                    parts: vec![],
                    error: Some((
                        0,
                        "timeout".into(),
                        format!("no answer within {STATEMENT_TIMEOUT:?}"),
                    )),
                    show_warnings: Err("not run".into()),
                });
                return Ok(out);
            }
        }
    }
    let _ = conn.disconnect().await;
    Ok(out)
}

fn fresh_schema(env: &TestEnv) -> Result<()> {
    env.db.root_sql(&format!(
        "DROP DATABASE IF EXISTS {TEST_DB}; CREATE DATABASE {TEST_DB};"
    ))?;
    Ok(())
}

fn transcript(stmts: &[(usize, String)], outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for ((line, sql), o) in stmts.iter().zip(outcomes) {
        let _ = writeln!(s, "-- line {line}: {sql}\n{o:#?}\n");
    }
    s
}

fn differential(driver: IoMode) -> Result<()> {
    let env = TestEnv::start(GatewayOptions::new(driver))?;
    let stmts = statements()?;
    anyhow::ensure!(stmts.len() >= 100, "only {} statements", stmts.len());

    let direct_opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(env.db.addr().ip().to_string())
        .tcp_port(env.db.port())
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some(TEST_DB))
        .prefer_socket(false);

    fresh_schema(&env)?;
    let direct = block_on(run_leg(direct_opts, &stmts)).context("direct leg")?;
    fresh_schema(&env)?;
    let through = block_on(run_leg(mysql_opts(&env.gw), &stmts)).context("gateway leg")?;

    if let Ok(path) = std::env::var("GATEHOUSE_DIFF_DUMP") {
        std::fs::write(&path, transcript(&stmts, &direct))?;
        eprintln!("direct transcript written to {path}");
    }
    let errors = direct.iter().filter(|o| o.error.is_some()).count();
    eprintln!(
        "[{}] {} statements, {} of them errors (directly)",
        env.gw.label(),
        stmts.len(),
        errors
    );

    let differing: Vec<usize> = stmts
        .iter()
        .enumerate()
        .filter(|(i, _)| direct.get(*i) != through.get(*i))
        .map(|(_, (line, _))| *line)
        .collect();
    if let Some(i) = (0..stmts.len()).find(|&i| direct.get(i) != through.get(i)) {
        let (line, sql) = &stmts[i];
        bail!(
            "first difference at statements.sql line {line}:\n  {sql}\n\
             --- direct (app) ---\n{:#?}\n--- through the gateway ({}) ---\n{:#?}\n\
             {} statement(s) differ, at lines {:?}",
            direct.get(i),
            env.gw.label(),
            through.get(i),
            differing.len(),
            differing
        );
    }
    Ok(())
}

both_drivers!(differential);
