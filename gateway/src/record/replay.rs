//! `gatehouse replay ID --against TARGET [--allow-writes]`: forensic replay. Re-executes a
//! recorded session's commands, in order, against another target (e.g. staging) and compares
//! each result's hash with the one recorded (see [`super::ResultHasher`]).
//!
//! ```text
//! audit log ──scan──▶ the session's statement + result records (by command number n)
//!                          │
//!                          ▼ plan each command: replay, skip (write), not replayable, refused
//! target ◀── login as the gateway does (UpstreamLogin, TLS if configured) ── blocking socket
//!        ◀── COM_QUERY / PREPARE / EXECUTE (parameters re-encoded from the record) / …
//!        ──▶ rows hashed as recorded ──▶ match | DIFFERENT | error, one line per command
//! ```
//!
//! Read-only by default: a COM_QUERY (every statement of it) or a prepared statement's
//! EXECUTE is replayed only when the SQL analysis ([`crate::sql::analyze`]) classes it as a
//! read, `SHOW`, transaction control or session state, with no server-file access and no
//! stored function call. Everything else is reported `skipped (write)` unless
//! `--allow-writes`. Statements the gateway refused or held were never run, and are not run
//! here either.
//!
//! Exit status: 0 when every replayed command matched, 1 when one differed or failed
//! differently (or the session is not in the log), 2 when the replay could not be set up or
//! completed (unreadable log, unknown target, connection failure).

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal as _, Read, Write};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::event::{
    CommandResult, Param, Payload, ResultHasher, SessionEnd, SessionStart, Statement,
};
use super::format::{self, Kind, Records, SegmentHeader};
use crate::config::{Config, TargetConfig, UpstreamTlsMode};
use crate::session::phases::RowFormat;
use crate::session::response::{Expect, PacketRole, Progress, Response};
use crate::session::upstream::{first_response, LoginStep, UpstreamLogin};
use crate::wire::binary::ColumnType;
use crate::wire::command::{encode_command, CommandPacket, StmtExecute};
use crate::wire::frame::{parse_packet, write_packet};
use crate::wire::handshake::{
    encode_handshake_response, encode_ssl_request, parse_handshake_v10, HandshakeResponse41,
};
use crate::wire::response::{is_result_terminator, parse_err, EOF_HEADER, ERR_HEADER};
use crate::wire::CapabilityFlags;

/// Exit status when the replay cannot be set up or completed.
const SETUP_FAILED: u8 = 2;
/// utf8mb4_general_ci: what modern clients connect with, known to MySQL and MariaDB.
const CHARSET_UTF8MB4: u8 = 45;
/// Width of the command column.
const WHAT_WIDTH: usize = 60;

/// `println!` that ignores a closed stdout (`gatehouse replay … | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `gatehouse replay ID --against TARGET`.
pub fn main_replay(
    config: &Config,
    dir: &Path,
    id: u64,
    against: &str,
    allow_writes: bool,
) -> ExitCode {
    let Some(target) = config.targets.iter().find(|t| t.name == against) else {
        let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
        eprintln!(
            "gatehouse: no target {against:?} in the configuration (targets: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        );
        return ExitCode::from(SETUP_FAILED);
    };
    let session = match read_session(dir, id) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "gatehouse: session {id} is not in the audit log at {}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    print_session_header(&session, id);
    if session.statements.is_empty() {
        say!("nothing to replay: the session recorded no commands");
        return ExitCode::SUCCESS;
    }
    let settings = match ConnectSettings::from_target(target, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    let database = session.statements.first().and_then(|s| s.database.clone());
    let mut conn = match Conn::connect(&settings, database.as_deref(), id) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatehouse: cannot replay against target {against:?}: {e}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    say!(
        "replaying against target {against:?} ({}, {}, connection {}){}{}",
        settings.address,
        conn.server_version,
        conn.connection_id,
        match &database {
            Some(db) => format!(", database {db}"),
            None => String::new(),
        },
        if allow_writes {
            ", writes included"
        } else {
            ", read-only"
        }
    );
    say!();

    let bar = progress_bar(session.statements.len() as u64, "replaying");
    let mut replayer = Replayer::new(&session, allow_writes, database.clone());
    let mut tally = Tally::default();
    say!("{}", header_line());
    let mut lost: Option<String> = None;
    for st in &session.statements {
        let result = session.results.get(&st.n);
        let verdict = match &lost {
            Some(_) => Verdict::NotReplayed("connection lost".into()),
            None => match replayer.step(&mut conn, st, result) {
                Ok(v) => v,
                Err(e) => {
                    let v = Verdict::Lost(e.0.clone());
                    lost = Some(e.0);
                    v
                }
            },
        };
        tally.add(&verdict);
        let line = table_line(st, result, &verdict);
        bar.suspend(|| say!("{line}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if lost.is_none() {
        conn.quit();
    }
    say!();
    say!("{}", tally.summary(against));
    if let Some(why) = lost {
        eprintln!("gatehouse: the replay stopped: {why}");
        return ExitCode::from(SETUP_FAILED);
    }
    if tally.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn progress_bar(len: u64, message: &'static str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

fn print_session_header(s: &SessionLog, id: u64) {
    match &s.start {
        Some(start) => say!(
            "session {id}: identity {}, client {}, target {:?} (upstream connection {}), {} command(s){}",
            start.identity,
            start.client,
            start.target,
            start.upstream_connection_id,
            s.statements.len(),
            match &s.end {
                Some(end) => format!(", ended: {}", end.reason),
                None => ", no session_end record (still running, or the gateway stopped)".into(),
            }
        ),
        None => say!(
            "session {id}: {} command(s) (its session_start record is not in the log)",
            s.statements.len()
        ),
    }
}

// ----- reading the session from the log ------------------------------------------------------

/// One session's records.
#[derive(Debug, Default)]
pub(crate) struct SessionLog {
    /// The (first) session_start.
    pub(crate) start: Option<SessionStart>,
    /// Its commands, in log order.
    pub(crate) statements: Vec<Statement>,
    /// The results, by command number.
    pub(crate) results: HashMap<u64, CommandResult>,
    /// The session_end.
    pub(crate) end: Option<SessionEnd>,
}

/// The `session` field of a payload, read without decoding the JSON: every payload that has
/// one writes it right after `type` (a fixed name), so the first `"session":` is the key.
fn payload_session(payload: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"session\":";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Reads session `id`'s records from the log in `dir` (a full scan, stopping at its
/// session_end). `Ok(None)`: the log has no record of it.
pub(crate) fn read_session(dir: &Path, id: u64) -> Result<Option<SessionLog>, String> {
    let segments = format::segment_paths(dir)
        .map_err(|e| format!("cannot read the audit log directory {}: {e}", dir.display()))?;
    if segments.is_empty() {
        return Err(format!(
            "no audit log segments in {} (is it the [recording] dir?)",
            dir.display()
        ));
    }
    let total: u64 = segments
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let bar = progress_bar(total, "reading the audit log");
    let mut log = SessionLog::default();
    let mut found = false;
    'segments: for (_, path) in &segments {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        bar.inc(bytes.len() as u64);
        if let Err(e) = SegmentHeader::decode(&bytes) {
            bar.suspend(|| eprintln!("gatehouse: skipping {}: {e}", path.display()));
            continue;
        }
        for (offset, record) in Records::new(&bytes) {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    bar.suspend(|| {
                        eprintln!(
                            "gatehouse: {} at byte {offset}: {e} (rest of the segment skipped; \
                             `gatehouse audit verify` checks the log)",
                            path.display()
                        )
                    });
                    continue 'segments;
                }
            };
            let relevant = matches!(
                Kind::from_u8(record.kind),
                Some(Kind::SessionStart | Kind::Statement | Kind::Result | Kind::SessionEnd)
            );
            if !relevant || payload_session(record.payload) != Some(id) {
                continue;
            }
            let payload: Payload = match serde_json::from_slice(record.payload) {
                Ok(p) => p,
                Err(e) => {
                    bar.suspend(|| {
                        eprintln!(
                            "gatehouse: {} record {}: undecodable payload, skipped: {e}",
                            path.display(),
                            record.seq
                        )
                    });
                    continue;
                }
            };
            if payload.session() != Some(id) {
                continue;
            }
            found = true;
            match payload {
                Payload::SessionStart(s) => {
                    log.start.get_or_insert(s);
                }
                Payload::Statement(s) => log.statements.push(s),
                Payload::Result(r) => {
                    log.results.insert(r.n, r);
                }
                Payload::SessionEnd(e) => {
                    log.end = Some(e);
                    break 'segments;
                }
                _ => {}
            }
        }
    }
    bar.finish_and_clear();
    Ok(found.then_some(log))
}

// ----- what to do with each command ----------------------------------------------------------

/// Whether SQL may be replayed read-only: `Err(reason)` when it (or any statement of it) may
/// change something.
pub(crate) fn read_only(sql: &[u8], database: Option<&str>) -> Result<(), String> {
    use crate::sql::StatementClass as C;
    let mode = crate::sql::Mode::DEFAULT;
    let statements = crate::sql::split(sql, mode).map_err(|e| format!("unsplittable: {e}"))?;
    for st in statements {
        if st.compound {
            return Err("compound statement".into());
        }
        let a = crate::sql::analyze(st.sql, &crate::sql::Context::new(database))
            .map_err(|e| format!("unanalysable: {}", e.reason))?;
        let class_ok = matches!(a.class, C::Read | C::Show | C::Transaction | C::Session);
        if !class_ok {
            return Err(a.class.name().to_owned());
        }
        if a.flags.server_file || a.flags.into_outfile {
            return Err("server file".into());
        }
        if a.flags.calls_function || a.flags.calls_procedure.is_some() {
            return Err("calls a stored function".into());
        }
    }
    Ok(())
}

/// The statement's SQL (text or base64).
fn statement_sql(st: &Statement) -> Option<Vec<u8>> {
    if let Some(s) = &st.sql {
        return Some(s.clone().into_bytes());
    }
    st.sql_base64
        .as_ref()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
}

/// How a command turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Same result hash (or same error).
    Match {
        /// Rows the replay returned.
        rows: Option<u64>,
        /// Detail (`error 1146 as originally`).
        note: Option<String>,
    },
    /// The hashes (or the error codes) differ.
    Different {
        /// Rows the replay returned.
        rows: Option<u64>,
        /// What differs.
        detail: String,
    },
    /// The replay failed where the original did not (or failed differently).
    Error {
        /// Rows before the error.
        rows: Option<u64>,
        /// Code and message.
        detail: String,
    },
    /// Ran, nothing to compare against (no response expected, or none recorded).
    Done {
        /// Rows.
        rows: Option<u64>,
        /// Why there is nothing to compare.
        note: String,
    },
    /// A write, not replayed without `--allow-writes`.
    SkippedWrite(String),
    /// Not replayed.
    NotReplayed(String),
    /// The gateway refused (or held) it originally.
    RefusedOriginally(String),
    /// The connection failed on this command.
    Lost(String),
}

#[derive(Debug, Default)]
struct Tally {
    total: usize,
    matched: usize,
    different: usize,
    errors: usize,
    done: usize,
    skipped: usize,
    not_replayed: usize,
    refused: usize,
}

impl Tally {
    fn add(&mut self, v: &Verdict) {
        self.total += 1;
        match v {
            Verdict::Match { .. } => self.matched += 1,
            Verdict::Different { .. } => self.different += 1,
            Verdict::Error { .. } | Verdict::Lost(_) => self.errors += 1,
            Verdict::Done { .. } => self.done += 1,
            Verdict::SkippedWrite(_) => self.skipped += 1,
            Verdict::NotReplayed(_) => self.not_replayed += 1,
            Verdict::RefusedOriginally(_) => self.refused += 1,
        }
    }

    fn failed(&self) -> bool {
        self.different > 0 || self.errors > 0
    }

    fn summary(&self, against: &str) -> String {
        let replayed = self.matched + self.different + self.errors + self.done;
        format!(
            "{replayed} of {} command(s) replayed against {against:?}: {} match, {} DIFFERENT, \
             {} error, {} without comparison; {} skipped (write), {} not replayed, {} refused \
             originally — {}",
            self.total,
            self.matched,
            self.different,
            self.errors,
            self.done,
            self.skipped,
            self.not_replayed,
            self.refused,
            if self.failed() {
                "results DIFFER"
            } else {
                "all replayed results match"
            }
        )
    }
}

fn short_hash(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// The command column: SQL (whitespace collapsed) or the command and its argument.
fn describe(st: &Statement) -> String {
    let sql = || {
        statement_sql(st)
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let text = match st.command.as_str() {
        "COM_QUERY" => sql(),
        "COM_STMT_PREPARE" => format!("PREPARE {}", sql()),
        "COM_STMT_EXECUTE" => format!("EXECUTE {}", sql()),
        "COM_INIT_DB" => format!("INIT_DB {}", st.argument.as_deref().unwrap_or("")),
        other => {
            let name = other.strip_prefix("COM_").unwrap_or(other);
            match (&st.argument, st.stmt_id) {
                (Some(a), _) => format!("{name} {a}"),
                (None, Some(id)) => format!("{name} #{id}"),
                _ => name.to_owned(),
            }
        }
    };
    truncate(&text, WHAT_WIDTH)
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

fn header_line() -> String {
    format!(
        "{:>5}  {:<WHAT_WIDTH$}  {:>9}  {:>9}  verdict",
        "n", "command", "orig rows", "rows"
    )
}

fn table_line(st: &Statement, result: Option<&CommandResult>, v: &Verdict) -> String {
    let replay_rows = match v {
        Verdict::Match { rows, .. }
        | Verdict::Different { rows, .. }
        | Verdict::Error { rows, .. }
        | Verdict::Done { rows, .. } => *rows,
        _ => None,
    };
    let show = |r: Option<u64>| r.map_or_else(|| "-".to_owned(), |r| r.to_string());
    let orig_rows = result.filter(|r| r.error.is_none()).map(|r| r.rows);
    let verdict = match v {
        Verdict::Match { note: None, .. } => "match".to_owned(),
        Verdict::Match { note: Some(n), .. } => format!("match ({n})"),
        Verdict::Different { detail, .. } => format!("DIFFERENT ({detail})"),
        Verdict::Error { detail, .. } => format!("error ({detail})"),
        Verdict::Done { note, .. } => note.clone(),
        Verdict::SkippedWrite(why) => format!("skipped (write: {why})"),
        Verdict::NotReplayed(why) => format!("not replayed ({why})"),
        Verdict::RefusedOriginally(d) => format!("{d} originally"),
        Verdict::Lost(why) => format!("error (connection lost: {why})"),
    };
    let what = describe(st);
    format!(
        "{:>5}  {what:<WHAT_WIDTH$}  {:>9}  {:>9}  {verdict}",
        st.n,
        show(orig_rows),
        show(replay_rows)
    )
}

/// A prepared statement on the replay connection.
#[derive(Debug, Clone, Copy)]
struct Prepared {
    id: u32,
    params: u16,
}

/// The connection failed: the replay cannot go on.
#[derive(Debug)]
pub(crate) struct Lost(String);

/// Replays commands one by one, keeping the prepared-statement map.
struct Replayer {
    allow_writes: bool,
    /// Original statement id → the replay's.
    prepared: HashMap<u32, Prepared>,
    /// Original ids whose rows were fetched with a cursor (COM_STMT_FETCH).
    cursors: HashSet<u32>,
    /// The replay connection's default database, as far as known.
    database: Option<String>,
}

impl Replayer {
    fn new(session: &SessionLog, allow_writes: bool, database: Option<String>) -> Replayer {
        Replayer {
            allow_writes,
            prepared: HashMap::new(),
            database,
            cursors: session
                .statements
                .iter()
                .filter(|s| s.command == "COM_STMT_FETCH")
                .filter_map(|s| s.stmt_id)
                .collect(),
        }
    }

    /// Makes the replay connection's default database the one the statement was received
    /// with, when they differ (e.g. after a COM_CHANGE_USER that is not replayed). A failure
    /// is left to the statement itself to show.
    fn sync_database(&mut self, conn: &mut Conn, st: &Statement) -> Result<(), Lost> {
        let Some(want) = &st.database else {
            return Ok(());
        };
        if self.database.as_ref() == Some(want) {
            return Ok(());
        }
        let reply = conn.run(
            &CommandPacket::InitDb {
                schema: want.as_bytes(),
            },
            Expect::Simple,
        )?;
        if reply.error.is_none() {
            self.database = Some(want.clone());
        }
        Ok(())
    }

    /// Whether `sql` runs here: `Err(verdict)` when it is skipped.
    fn writes_allowed(&self, sql: &[u8], database: Option<&str>) -> Result<(), Verdict> {
        if self.allow_writes {
            return Ok(());
        }
        read_only(sql, database).map_err(Verdict::SkippedWrite)
    }

    fn step(
        &mut self,
        conn: &mut Conn,
        st: &Statement,
        result: Option<&CommandResult>,
    ) -> Result<Verdict, Lost> {
        match st.decision.as_str() {
            "allow" => {}
            "refuse" => return Ok(Verdict::RefusedOriginally("refused".into())),
            "hold" => return Ok(Verdict::RefusedOriginally("held".into())),
            other => return Ok(Verdict::RefusedOriginally(other.to_owned())),
        }
        let db = st.database.as_deref();
        match st.command.as_str() {
            "COM_QUERY" => {
                let Some(sql) = statement_sql(st) else {
                    return Ok(Verdict::NotReplayed("SQL not recorded".into()));
                };
                if let Err(v) = self.writes_allowed(&sql, db) {
                    return Ok(v);
                }
                self.sync_database(conn, st)?;
                let reply = conn.run(
                    &CommandPacket::Query { sql: &sql },
                    Expect::Results(RowFormat::Text),
                )?;
                if let Some(schema) = &reply.outcome.schema {
                    self.database = Some(schema.clone());
                }
                Ok(compare(result, &reply, true))
            }
            "COM_INIT_DB" => {
                let Some(schema) = &st.argument else {
                    return Ok(Verdict::NotReplayed("schema not recorded".into()));
                };
                let reply = conn.run(
                    &CommandPacket::InitDb {
                        schema: schema.as_bytes(),
                    },
                    Expect::Simple,
                )?;
                if reply.error.is_none() {
                    self.database = Some(schema.clone());
                }
                Ok(compare(result, &reply, false))
            }
            "COM_PING" => {
                let reply = conn.run(&CommandPacket::Ping, Expect::Simple)?;
                Ok(compare(result, &reply, false))
            }
            "COM_RESET_CONNECTION" => {
                let reply = conn.run(&CommandPacket::ResetConnection, Expect::Simple)?;
                // The server forgets every prepared statement.
                self.prepared.clear();
                Ok(compare(result, &reply, false))
            }
            "COM_STMT_PREPARE" => {
                let Some(sql) = statement_sql(st) else {
                    return Ok(Verdict::NotReplayed("SQL not recorded".into()));
                };
                self.sync_database(conn, st)?;
                let reply = conn.run(&CommandPacket::StmtPrepare { sql: &sql }, Expect::Prepare)?;
                if let (Some((id, params)), Some(orig)) = (
                    reply.outcome.prepared,
                    result.and_then(|r| r.prepared_stmt_id),
                ) {
                    self.prepared.insert(orig, Prepared { id, params });
                }
                Ok(compare(result, &reply, false))
            }
            "COM_STMT_EXECUTE" => self.execute(conn, st, result),
            "COM_STMT_SEND_LONG_DATA" => {
                let Some(p) = st.stmt_id.and_then(|id| self.prepared.get(&id).copied()) else {
                    return Ok(Verdict::NotReplayed("statement not prepared here".into()));
                };
                let Some(data) = st.long_data.as_ref().and_then(|l| {
                    base64::engine::general_purpose::STANDARD
                        .decode(&l.data_base64)
                        .ok()
                        .map(|d| (l.param, d))
                }) else {
                    return Ok(Verdict::NotReplayed("long data not recorded".into()));
                };
                conn.run(
                    &CommandPacket::StmtSendLongData {
                        stmt_id: p.id,
                        param_id: data.0,
                        data: &data.1,
                    },
                    Expect::Nothing,
                )?;
                Ok(Verdict::Done {
                    rows: None,
                    note: "sent".into(),
                })
            }
            "COM_STMT_CLOSE" => {
                let Some(p) = st.stmt_id.and_then(|id| self.prepared.remove(&id)) else {
                    return Ok(Verdict::NotReplayed("statement not prepared here".into()));
                };
                conn.run(&CommandPacket::StmtClose { stmt_id: p.id }, Expect::Nothing)?;
                Ok(Verdict::Done {
                    rows: None,
                    note: "sent".into(),
                })
            }
            "COM_STMT_RESET" => {
                let Some(p) = st.stmt_id.and_then(|id| self.prepared.get(&id).copied()) else {
                    return Ok(Verdict::NotReplayed("statement not prepared here".into()));
                };
                let reply =
                    conn.run(&CommandPacket::StmtReset { stmt_id: p.id }, Expect::Simple)?;
                Ok(compare(result, &reply, false))
            }
            "COM_QUIT" => Ok(Verdict::NotReplayed("end of session".into())),
            "COM_STMT_FETCH" => Ok(Verdict::NotReplayed("cursor fetch".into())),
            "COM_STMT_BULK_EXECUTE" => {
                Ok(Verdict::NotReplayed("bulk parameters not recorded".into()))
            }
            "COM_CHANGE_USER" => Ok(Verdict::NotReplayed("change user".into())),
            "COM_PROCESS_KILL" => Ok(Verdict::NotReplayed("kill".into())),
            "COM_SET_OPTION" => Ok(Verdict::NotReplayed("option not recorded".into())),
            "COM_STATISTICS" | "COM_PROCESS_INFO" | "COM_DEBUG" => {
                Ok(Verdict::NotReplayed("server state".into()))
            }
            "COM_FIELD_LIST" => Ok(Verdict::NotReplayed("field list".into())),
            "COM_REFRESH" | "COM_SHUTDOWN" => Ok(Verdict::NotReplayed("administration".into())),
            other => Ok(Verdict::NotReplayed(format!("{other} is not replayable"))),
        }
    }

    fn execute(
        &mut self,
        conn: &mut Conn,
        st: &Statement,
        result: Option<&CommandResult>,
    ) -> Result<Verdict, Lost> {
        let Some(orig) = st.stmt_id else {
            return Ok(Verdict::NotReplayed("statement id not recorded".into()));
        };
        if self.cursors.contains(&orig) {
            return Ok(Verdict::NotReplayed("rows fetched with a cursor".into()));
        }
        let Some(sql) = statement_sql(st) else {
            return Ok(Verdict::NotReplayed("prepared SQL not recorded".into()));
        };
        if let Err(v) = self.writes_allowed(&sql, st.database.as_deref()) {
            return Ok(v);
        }
        let Some(p) = self.prepared.get(&orig).copied() else {
            return Ok(Verdict::NotReplayed("statement not prepared here".into()));
        };
        let Some(params) = &st.params else {
            return Ok(Verdict::NotReplayed("parameters not recorded".into()));
        };
        if params.len() != usize::from(p.params) {
            return Ok(Verdict::NotReplayed(format!(
                "{} parameter(s) recorded, the statement here has {}",
                params.len(),
                p.params
            )));
        }
        let block = match encode_params(params) {
            Ok(b) => b,
            Err(e) => return Ok(Verdict::NotReplayed(e)),
        };
        self.sync_database(conn, st)?;
        let reply = conn.run(
            &CommandPacket::StmtExecute(StmtExecute {
                stmt_id: p.id,
                flags: 0,
                iteration_count: 1,
                params: &block,
            }),
            Expect::Results(RowFormat::Binary),
        )?;
        Ok(compare(result, &reply, true))
    }
}

/// Compares a replay's reply with the recorded result. `rows`: the command returns rows
/// (its hash is compared).
pub(crate) fn compare(result: Option<&CommandResult>, reply: &Reply, rows: bool) -> Verdict {
    let replay_rows = rows.then_some(reply.rows);
    let Some(orig) = result else {
        return match &reply.error {
            Some((code, msg)) => Verdict::Error {
                rows: replay_rows,
                detail: format!("{code}: {msg}; no original result recorded"),
            },
            None => Verdict::Done {
                rows: replay_rows,
                note: "no original result".into(),
            },
        };
    };
    match (orig.error, &reply.error) {
        (Some(a), Some((b, _))) if a == *b => Verdict::Match {
            rows: replay_rows,
            note: Some(format!("error {a} as originally")),
        },
        (Some(a), Some((b, msg))) => Verdict::Error {
            rows: replay_rows,
            detail: format!("{b}: {msg}; originally error {a}"),
        },
        (None, Some((b, msg))) => Verdict::Error {
            rows: replay_rows,
            detail: format!("{b}: {msg}"),
        },
        (Some(a), None) => Verdict::Different {
            rows: replay_rows,
            detail: format!("originally error {a}, succeeded here"),
        },
        (None, None) if !rows => Verdict::Match {
            rows: None,
            note: None,
        },
        (None, None) => match &orig.result_hash {
            None => Verdict::Done {
                rows: replay_rows,
                note: "no original hash".into(),
            },
            Some(h) if h.eq_ignore_ascii_case(&hex::encode(reply.hash)) => Verdict::Match {
                rows: replay_rows,
                note: None,
            },
            Some(h) => Verdict::Different {
                rows: replay_rows,
                detail: format!(
                    "hash {} / {} rows originally, {} / {} rows here",
                    short_hash(h),
                    orig.rows,
                    short_hash(&hex::encode(reply.hash)),
                    reply.rows
                ),
            },
        },
    }
}

// ----- prepared statement parameters ---------------------------------------------------------

/// Encodes recorded parameters as COM_STMT_EXECUTE's parameter block, types always sent
/// (`new_params_bound = 1`). A parameter recorded as `{"long_data": true}` has no value here
/// (COM_STMT_SEND_LONG_DATA sent it).
pub(crate) fn encode_params(params: &[Param]) -> Result<Vec<u8>, String> {
    let n = params.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut out = vec![0u8; n.div_ceil(8)];
    out.push(1);
    for p in params {
        if p.type_code == 0xff {
            return Err("parameters were not decodable when recorded".into());
        }
        out.push(p.type_code);
        out.push(if p.unsigned { 0x80 } else { 0 });
    }
    for (i, p) in params.iter().enumerate() {
        if p.value.is_null() {
            out[i / 8] |= 1 << (i % 8);
            continue;
        }
        if p.value.get("long_data").is_some() {
            continue;
        }
        encode_param_value(&mut out, p).map_err(|e| format!("parameter {}: {e}", i + 1))?;
    }
    Ok(out)
}

fn encode_param_value(out: &mut Vec<u8>, p: &Param) -> Result<(), String> {
    use serde_json::Value;
    let ty = ColumnType(p.type_code);
    let v = &p.value;
    let int = || -> Result<u64, String> {
        v.as_u64()
            .or_else(|| v.as_i64().map(|i| i as u64))
            .ok_or_else(|| format!("expected an integer, got {v}"))
    };
    let float = || {
        v.as_f64()
            .ok_or_else(|| format!("expected a number, got {v}"))
    };
    let text = || {
        v.as_str()
            .ok_or_else(|| format!("expected a string, got {v}"))
    };
    match ty {
        ColumnType::NULL => {}
        ColumnType::TINY => out.push(int()? as u8),
        ColumnType::SHORT | ColumnType::YEAR => {
            out.extend_from_slice(&(int()? as u16).to_le_bytes())
        }
        ColumnType::LONG | ColumnType::INT24 => {
            out.extend_from_slice(&(int()? as u32).to_le_bytes())
        }
        ColumnType::LONGLONG => out.extend_from_slice(&int()?.to_le_bytes()),
        ColumnType::FLOAT => out.extend_from_slice(&(float()? as f32).to_le_bytes()),
        ColumnType::DOUBLE => out.extend_from_slice(&float()?.to_le_bytes()),
        ColumnType::DATE | ColumnType::DATETIME | ColumnType::TIMESTAMP => {
            let b = encode_datetime(text()?)?;
            out.push(b.len() as u8);
            out.extend_from_slice(&b);
        }
        ColumnType::TIME => {
            let b = encode_time(text()?)?;
            out.push(b.len() as u8);
            out.extend_from_slice(&b);
        }
        _ => {
            let bytes = match v {
                Value::String(s) => s.clone().into_bytes(),
                Value::Number(n) => n.to_string().into_bytes(),
                Value::Object(o) => match o.get("base64").and_then(Value::as_str) {
                    Some(b) => base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|e| format!("bad base64: {e}"))?,
                    None => return Err(format!("unexpected value {v}")),
                },
                other => return Err(format!("unexpected value {other}")),
            };
            crate::wire::codec::put_lenenc_bytes(out, &bytes);
        }
    }
    Ok(())
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("bad {what} {s:?} in a temporal value"))
}

/// `.ffffff` (any number of digits up to 6, right-padded) as microseconds.
fn micros(frac: &str) -> Result<u32, String> {
    if frac.is_empty() || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad fraction {frac:?}"));
    }
    Ok(num::<u32>(frac, "fraction")? * 10u32.pow(6 - frac.len() as u32))
}

/// `HH:MM:SS[.ffffff]` → (h, m, s, micros).
fn clock(s: &str) -> Result<(u8, u8, u8, Option<u32>), String> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(micros(f)?)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let (Some(h), Some(m), Some(sec), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad time {s:?}"));
    };
    Ok((
        num(h, "hour")?,
        num(m, "minute")?,
        num(sec, "second")?,
        frac,
    ))
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` → the binary DATE/DATETIME bytes (4, 7 or 11).
fn encode_datetime(s: &str) -> Result<Vec<u8>, String> {
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("bad date {s:?}"));
    };
    let mut out = num::<u16>(y, "year")?.to_le_bytes().to_vec();
    out.push(num(m, "month")?);
    out.push(num(d, "day")?);
    if let Some(t) = time {
        let (h, mi, sec, frac) = clock(t)?;
        out.extend_from_slice(&[h, mi, sec]);
        if let Some(us) = frac {
            out.extend_from_slice(&us.to_le_bytes());
        }
    }
    Ok(out)
}

/// `[-][D ]HH:MM:SS[.ffffff]` → the binary TIME bytes (8 or 12).
fn encode_time(s: &str) -> Result<Vec<u8>, String> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (days, clock_part) = match rest.split_once(' ') {
        Some((d, c)) => (num::<u32>(d, "days")?, c),
        None => (0, rest),
    };
    let (h, m, sec, frac) = clock(clock_part)?;
    let mut out = vec![u8::from(negative)];
    out.extend_from_slice(&days.to_le_bytes());
    out.extend_from_slice(&[h, m, sec]);
    if let Some(us) = frac {
        out.extend_from_slice(&us.to_le_bytes());
    }
    Ok(out)
}

// ----- the connection ------------------------------------------------------------------------

/// How to reach and log in to a target.
struct ConnectSettings {
    address: String,
    user: String,
    password: String,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    public_key: Option<Vec<u8>>,
    connect_timeout: Duration,
    max_packet: usize,
}

impl ConnectSettings {
    fn from_target(t: &TargetConfig, config: &Config) -> Result<ConnectSettings, String> {
        let user = t.user.clone().ok_or_else(|| {
            format!(
                "target {:?} has no user: replay logs in with the target's credential",
                t.name
            )
        })?;
        let password = t.password().map_err(|e| e.to_string())?;
        let tls = match t.tls.mode {
            UpstreamTlsMode::Disabled => None,
            UpstreamTlsMode::Required => {
                let ca = t.tls.ca.as_ref().ok_or_else(|| {
                    format!("target {:?}: tls.mode = \"required\" needs tls.ca", t.name)
                })?;
                let host = t.tls.server_name.clone().unwrap_or_else(|| {
                    let host = t
                        .address
                        .rsplit_once(':')
                        .map_or(&t.address[..], |(h, _)| h);
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned()
                });
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| format!("target {:?}: server name {host:?}: {e}", t.name))?;
                let cfg = client_tls(ca).map_err(|e| format!("target {:?} TLS: {e}", t.name))?;
                Some((Arc::new(cfg), name))
            }
        };
        let public_key = match &t.server_public_key {
            None => None,
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                format!(
                    "target {:?}: server_public_key {}: {e}",
                    t.name,
                    path.display()
                )
            })?),
        };
        Ok(ConnectSettings {
            address: t.address.clone(),
            user,
            password,
            tls,
            public_key,
            connect_timeout: config.limits.connect_timeout(),
            max_packet: config.limits.max_packet_size,
        })
    }
}

/// The gateway's upstream TLS client configuration (as `io::upstream_client_tls`).
fn client_tls(ca: &Path) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let file = std::fs::File::open(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(file)) {
        roots
            .add(cert.map_err(|e| format!("{}: {e}", ca.display()))?)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The capabilities replay asks for (intersected with the server's).
const WANTED: CapabilityFlags = CapabilityFlags::CLIENT_LONG_PASSWORD
    .union(CapabilityFlags::CLIENT_LONG_FLAG)
    .union(CapabilityFlags::CLIENT_PROTOCOL_41)
    .union(CapabilityFlags::CLIENT_TRANSACTIONS)
    .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
    .union(CapabilityFlags::CLIENT_MULTI_STATEMENTS)
    .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH)
    .union(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
    .union(CapabilityFlags::CLIENT_CONNECT_ATTRS)
    .union(CapabilityFlags::CLIENT_SESSION_TRACK)
    .union(CapabilityFlags::CLIENT_DEPRECATE_EOF);

/// A replayed command's reply.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    /// Counters.
    pub(crate) outcome: crate::session::response::Outcome,
    /// Rows.
    pub(crate) rows: u64,
    /// The rows' hash, as the recorder computes it.
    pub(crate) hash: [u8; 32],
    /// ERR: code and message.
    pub(crate) error: Option<(u16, String)>,
}

/// Follows one response packet by packet, hashing rows the way the recorder does: each row
/// payload, and a marker at the end of each result set's rows (its terminator).
pub(crate) struct ReplyTracker {
    response: Response,
    deprecate_eof: bool,
    /// Result sets seen (column counts).
    sets: u32,
    phase: Phase,
    hasher: ResultHasher,
    rows: u64,
    error: Option<(u16, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before a result set (or between two).
    Between,
    /// Column definitions (and, without DEPRECATE_EOF, their EOF).
    Columns,
    /// Rows.
    Rows,
}

impl ReplyTracker {
    pub(crate) fn new(expect: Expect, caps: CapabilityFlags) -> ReplyTracker {
        ReplyTracker {
            response: Response::new(expect, caps, false),
            deprecate_eof: caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF),
            sets: 0,
            phase: Phase::Between,
            hasher: ResultHasher::default(),
            rows: 0,
            error: None,
        }
    }

    /// One whole packet; `true` when the response is complete.
    pub(crate) fn on_packet(&mut self, payload: &[u8]) -> Result<bool, String> {
        let (role, progress) = self
            .response
            .on_packet(payload)
            .map_err(|e| format!("server response: {e}"))?;
        if payload.first() == Some(&ERR_HEADER) {
            let msg = parse_err(payload)
                .map(|e| (e.code, String::from_utf8_lossy(e.message).into_owned()))
                .unwrap_or((0, "malformed ERR packet".into()));
            self.error = Some(msg);
            self.phase = Phase::Between;
        } else if self.response.outcome.result_sets > self.sets {
            self.sets = self.response.outcome.result_sets;
            self.phase = Phase::Columns;
        } else {
            match (role, self.phase) {
                (PacketRole::Row(_), _) => {
                    self.phase = Phase::Rows;
                    self.rows += 1;
                    self.hasher.row(payload);
                }
                (PacketRole::Other, Phase::Columns)
                    if !self.deprecate_eof && payload.first() == Some(&EOF_HEADER) =>
                {
                    // The EOF after the column definitions.
                    self.phase = Phase::Rows;
                }
                (PacketRole::Other, Phase::Columns | Phase::Rows)
                    if is_result_terminator(payload, self.deprecate_eof) =>
                {
                    self.hasher.end_of_result_set();
                    self.phase = Phase::Between;
                }
                _ => {}
            }
        }
        Ok(progress == Progress::Done)
    }

    pub(crate) fn finish(self) -> Reply {
        Reply {
            hash: self.hasher.finish(),
            rows: self.rows,
            error: self.error,
            outcome: self.response.outcome,
        }
    }
}

/// A blocking client connection to the target.
struct Conn {
    stream: Stream,
    /// Bytes read and not yet consumed, from `start`.
    buf: Vec<u8>,
    start: usize,
    /// Sequence id of the last packet read or written.
    seq: u8,
    caps: CapabilityFlags,
    max_packet: usize,
    server_version: String,
    connection_id: u32,
}

impl Conn {
    fn connect(s: &ConnectSettings, database: Option<&str>, session: u64) -> Result<Conn, String> {
        let addrs = s
            .address
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", s.address))?;
        let mut last = format!("{}: no address", s.address);
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, s.connect_timeout) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(s.connect_timeout))
            .map_err(|e| e.to_string())?;
        let mut conn = Conn {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            start: 0,
            seq: 0,
            caps: CapabilityFlags::empty(),
            max_packet: s.max_packet,
            server_version: String::new(),
            connection_id: 0,
        };
        conn.login(s, database, session)
            .map_err(|e| format!("login to {}: {e}", s.address))?;
        conn.stream
            .tcp()
            .set_read_timeout(None)
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    fn login(
        &mut self,
        s: &ConnectSettings,
        database: Option<&str>,
        session: u64,
    ) -> Result<(), String> {
        let greeting = self.read_packet(|p| p.to_vec()).map_err(|e| e.0)?;
        if greeting.first() == Some(&ERR_HEADER) {
            let msg = parse_err(&greeting)
                .map(|e| format!("{}: {}", e.code, String::from_utf8_lossy(e.message)))
                .unwrap_or_else(|_| "malformed ERR".into());
            return Err(format!("the server refused the connection: {msg}"));
        }
        let g = parse_handshake_v10(&greeting).map_err(|e| format!("greeting: {e}"))?;
        if !g.capabilities.contains(CapabilityFlags::CLIENT_PROTOCOL_41) {
            return Err("the server does not speak the 4.1 protocol".into());
        }
        self.server_version = String::from_utf8_lossy(g.server_version).into_owned();
        self.connection_id = g.connection_id;
        let mut caps = WANTED & g.capabilities;
        caps |= CapabilityFlags::CLIENT_PROTOCOL_41;
        if database.is_some()
            && g.capabilities
                .contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB)
        {
            caps |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        }
        let nonce = g.nonce();
        let plugin =
            String::from_utf8_lossy(g.auth_plugin.unwrap_or(b"mysql_native_password")).into_owned();
        let tls = s.tls.is_some();
        if let Some((cfg, name)) = &s.tls {
            if !g.capabilities.contains(CapabilityFlags::CLIENT_SSL) {
                return Err("the server does not offer TLS, which the target requires".into());
            }
            caps |= CapabilityFlags::CLIENT_SSL;
            let mut req = Vec::new();
            encode_ssl_request(
                &mut req,
                &HandshakeResponse41 {
                    capabilities: caps,
                    max_packet_size: s.max_packet as u32,
                    charset: CHARSET_UTF8MB4,
                    ..Default::default()
                },
            );
            self.write_packet(&req).map_err(|e| e.0)?;
            let conn = rustls::ClientConnection::new(cfg.clone(), name.clone())
                .map_err(|e| format!("TLS: {e}"))?;
            // The same socket (the plaintext handle closes, the connection stays).
            let tcp = self.stream.tcp().try_clone().map_err(|e| e.to_string())?;
            self.stream = Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)));
        }
        self.caps = caps;
        let (auth, plugin) = first_response(&plugin, &nonce, s.password.as_bytes());
        let mut login = UpstreamLogin::new(plugin.clone(), nonce, s.public_key.clone());
        let session_id = session.to_string();
        let response = HandshakeResponse41 {
            capabilities: caps,
            max_packet_size: s.max_packet as u32,
            charset: CHARSET_UTF8MB4,
            mariadb_capabilities: 0,
            username: s.user.as_bytes(),
            auth_response: &auth,
            database: database.map(str::as_bytes),
            auth_plugin: Some(plugin.as_bytes()),
            connect_attrs: vec![
                (&b"_client_name"[..], &b"gatehouse-replay"[..]),
                (b"_gatehouse_replay_of", session_id.as_bytes()),
            ],
        };
        let mut payload = Vec::new();
        encode_handshake_response(&mut payload, &response);
        self.write_packet(&payload).map_err(|e| e.0)?;
        loop {
            let packet = self.read_packet(|p| p.to_vec()).map_err(|e| e.0)?;
            match login.on_packet(&packet, caps, s.password.as_bytes(), tls) {
                LoginStep::Send(p) => self.write_packet(&p).map_err(|e| e.0)?,
                LoginStep::Wait => {}
                LoginStep::Done { status: _ } => return Ok(()),
                LoginStep::Refused(code, msg) => {
                    return Err(format!("the server refused the login: {code}: {msg}"))
                }
                LoginStep::Failed(why) => return Err(why),
            }
        }
    }

    /// Reads one whole packet and hands its payload to `f`.
    fn read_packet<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, Lost> {
        loop {
            match parse_packet(&self.buf[self.start..], self.max_packet) {
                Ok(Some(p)) => {
                    self.seq = p.last_seq;
                    let r = f(&p.payload);
                    self.start += p.wire_len;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => return Err(Lost(format!("framing: {e}"))),
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let have = self.buf.len();
            self.buf.resize(have + 64 * 1024, 0);
            let n = loop {
                match self.stream.read(&mut self.buf[have..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.buf.truncate(have);
                        return Err(Lost(format!("read: {e}")));
                    }
                }
            };
            self.buf.truncate(have + n);
            if n == 0 {
                return Err(Lost("the server closed the connection".into()));
            }
        }
    }

    /// Writes `payload` as the next packet of the exchange.
    fn write_packet(&mut self, payload: &[u8]) -> Result<(), Lost> {
        let mut out = Vec::with_capacity(payload.len() + 4);
        self.seq = write_packet(&mut out, self.seq.wrapping_add(1), payload);
        self.stream
            .write_all(&out)
            .and_then(|()| self.stream.flush())
            .map_err(|e| Lost(format!("write: {e}")))
    }

    /// Sends a command and follows its response.
    fn run(&mut self, cmd: &CommandPacket<'_>, expect: Expect) -> Result<Reply, Lost> {
        let mut payload = Vec::new();
        encode_command(&mut payload, cmd, self.caps);
        self.seq = u8::MAX; // a command starts at sequence id 0
        self.write_packet(&payload)?;
        let mut tracker = ReplyTracker::new(expect, self.caps);
        if expect == Expect::Nothing {
            return Ok(tracker.finish());
        }
        loop {
            if self.read_packet(|p| tracker.on_packet(p))?.map_err(Lost)? {
                return Ok(tracker.finish());
            }
        }
    }

    fn quit(&mut self) {
        let _ = self.run(&CommandPacket::Quit, Expect::Nothing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event::{decode_params, RawParams};
    use crate::record::format::{encode_record, GENESIS};
    use serde_json::json;

    fn param(type_code: u8, unsigned: bool, value: serde_json::Value) -> Param {
        Param {
            type_code,
            unsigned,
            value,
        }
    }

    fn round_trip(params: &[Param]) -> Vec<Param> {
        let block = encode_params(params).unwrap();
        let long_data = params
            .iter()
            .map(|p| p.value.get("long_data").is_some())
            .collect();
        decode_params(&RawParams {
            block,
            count: params.len() as u16,
            bound_types: None,
            long_data,
        })
    }

    #[test]
    fn recorded_parameters_encode_back_to_the_same_values() {
        let params = vec![
            param(0x01, false, json!(-5)),
            param(0x01, true, json!(250)),
            param(0x02, false, json!(-30000)),
            param(0x0d, true, json!(2024)),
            param(0x03, false, json!(-2_000_000_000)),
            param(0x09, true, json!(4_000_000_000u64)),
            param(0x08, false, json!(i64::MIN)),
            param(0x08, true, json!(u64::MAX)),
            param(0x04, false, json!(1.5f32)),
            param(0x05, false, json!(-0.1)),
            param(0x0a, false, json!("2024-01-31")),
            param(0x0c, false, json!("2024-01-31 12:00:00")),
            param(0x0c, false, json!("2024-01-31 12:00:00.000001")),
            param(0x07, false, json!("1999-12-31 23:59:59.999999")),
            param(0x0b, false, json!("-1 02:03:04")),
            param(0x0b, false, json!("0 22:59:59.500000")),
            param(0x0f, false, json!("hé")),
            param(0xfd, false, json!("")),
            param(0xfc, false, json!({ "base64": "AP8Q" })),
            param(0xf6, false, json!("-12.50")),
            param(0x0f, false, json!(null)),
            param(0x06, false, json!(null)),
            param(0x08, false, json!(null)),
            param(0xfc, false, json!({ "long_data": true })),
        ];
        assert_eq!(round_trip(&params), params);
    }

    #[test]
    fn parameters_recorded_from_a_real_block_round_trip() {
        // What a client sent: INT 42, NULL, DATETIME with micros, TIME, blob not UTF-8.
        let mut block = vec![0b0000_0010, 1];
        for t in [0x03u8, 0x06, 0x0c, 0x0b, 0xfc] {
            block.extend_from_slice(&[t, 0]);
        }
        block.extend_from_slice(&42i32.to_le_bytes());
        block.extend_from_slice(&[11, 0xe8, 0x07, 2, 29, 1, 2, 3, 7, 0, 0, 0]);
        block.extend_from_slice(&[12, 1, 3, 0, 0, 0, 4, 5, 6, 9, 0, 0, 0]);
        block.extend_from_slice(&[2, 0xff, 0xfe]);
        let raw = RawParams {
            block: block.clone(),
            count: 5,
            bound_types: None,
            long_data: vec![false; 5],
        };
        let recorded = decode_params(&raw);
        assert_eq!(recorded[2].value, json!("2024-02-29 01:02:03.000007"));
        assert_eq!(recorded[3].value, json!("-3 04:05:06.000009"));
        assert_eq!(encode_params(&recorded).unwrap(), block);
    }

    #[test]
    fn zero_parameters_and_undecodable_ones() {
        assert_eq!(encode_params(&[]).unwrap(), Vec::<u8>::new());
        let bad = [param(
            0xff,
            false,
            json!({ "base64": "AA==", "undecodable": true }),
        )];
        assert!(encode_params(&bad).is_err());
        assert!(encode_params(&[param(0x03, false, json!("x"))]).is_err());
        assert!(encode_params(&[param(0x0c, false, json!("2024-13"))]).is_err());
        // Short fractions are right-padded: .5 is 500000 µs.
        assert_eq!(
            encode_datetime("2024-01-01 00:00:00.5").unwrap()[7..],
            500_000u32.to_le_bytes()
        );
    }

    fn statement(session: u64, n: u64, sql: &str) -> Payload {
        Payload::Statement(Statement {
            session,
            n,
            command: "COM_QUERY".into(),
            sql: Some(sql.into()),
            sql_base64: None,
            stmt_id: None,
            params: None,
            long_data: None,
            argument: None,
            digest: None,
            kind: Some("read".into()),
            database: Some("shop".into()),
            decision: "allow".into(),
            rules: Vec::new(),
            error: None,
            received_ns: 1,
        })
    }

    fn result(session: u64, n: u64, hash: &str) -> Payload {
        Payload::Result(CommandResult {
            session,
            n,
            forwarded_ns: 1,
            first_byte_ns: None,
            done_ns: 2,
            rows: 1,
            result_sets: 1,
            bytes: 10,
            affected_rows: 0,
            warnings: 0,
            error: None,
            prepared_stmt_id: None,
            result_hash: Some(hash.into()),
            rows_base64: None,
            capture_truncated: false,
        })
    }

    fn end(session: u64) -> Payload {
        Payload::SessionEnd(SessionEnd {
            session,
            reason: "client_quit".into(),
            detail: None,
            statements: 2,
            refused: 0,
            rows: 2,
            bytes: 20,
        })
    }

    /// Writes segments of payloads (one Vec per segment), chained.
    fn write_log(dir: &Path, segments: &[Vec<Payload>]) {
        let mut seq = 1;
        let mut prev = GENESIS;
        for (i, payloads) in segments.iter().enumerate() {
            let first = seq;
            let mut bytes = SegmentHeader {
                segment: i as u64 + 1,
                first_seq: first,
                prev_hash: prev,
            }
            .encode()
            .to_vec();
            for p in payloads {
                let json = serde_json::to_vec(p).unwrap();
                prev = encode_record(&mut bytes, seq, seq as i64, &prev, p.kind(), &json);
                seq += 1;
            }
            std::fs::write(dir.join(format::segment_file_name(first)), bytes).unwrap();
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-replay-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_session_is_read_across_segments_and_stops_at_its_end() {
        let dir = temp_dir("read");
        let start = |session: u64| {
            Payload::SessionStart(SessionStart {
                session,
                identity: format!("user{session}"),
                groups: Vec::new(),
                auth: "gateway:mysql_native_password".into(),
                client: "127.0.0.1:5000".into(),
                original_dst: None,
                listener: "main".into(),
                target: "prod".into(),
                tls: None,
                upstream_connection_id: 9,
                change_user: false,
            })
        };
        write_log(
            &dir,
            &[
                vec![
                    Payload::GatewayStart(crate::record::event::GatewayStart {
                        version: "0".into(),
                        pid: 1,
                        host: "h \"session\":2".into(),
                        recovered: None,
                    }),
                    start(2),
                    start(12),
                    statement(2, 1, "SELECT 1"),
                    statement(12, 1, "SELECT 'other'"),
                    result(2, 1, "aa"),
                ],
                vec![
                    statement(2, 2, "SELECT 2"),
                    result(12, 1, "bb"),
                    result(2, 2, "cc"),
                    end(2),
                    // After its end: never read (session ids are unique in a log).
                    statement(2, 3, "SELECT 3"),
                ],
            ],
        );
        // A file that is not a segment is ignored.
        std::fs::write(dir.join("status.json"), b"{}").unwrap();
        let log = read_session(&dir, 2).unwrap().unwrap();
        assert_eq!(log.start.as_ref().unwrap().identity, "user2");
        let sql: Vec<_> = log
            .statements
            .iter()
            .map(|s| s.sql.clone().unwrap())
            .collect();
        assert_eq!(sql, ["SELECT 1", "SELECT 2"]);
        assert_eq!(log.results.len(), 2);
        assert_eq!(log.results[&2].result_hash.as_deref(), Some("cc"));
        assert_eq!(log.end.as_ref().unwrap().reason, "client_quit");
        let other = read_session(&dir, 12).unwrap().unwrap();
        assert_eq!(other.statements.len(), 1);
        assert!(other.end.is_none());
        assert!(read_session(&dir, 1).unwrap().is_none());
        assert!(read_session(&dir.join("missing"), 2).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn session_ids_are_read_from_the_raw_payload() {
        assert_eq!(
            payload_session(br#"{"type":"result","session":42,"n":1}"#),
            Some(42)
        );
        assert_eq!(payload_session(br#"{"type":"x","session":4}"#), Some(4));
        assert_eq!(
            payload_session(br#"{"type":"gateway_stop","reason":"x"}"#),
            None
        );
    }

    #[test]
    fn only_reads_replay_without_allow_writes() {
        let db = Some("shop");
        for sql in [
            "SELECT * FROM t WHERE id = 1",
            "  show tables",
            "SET @a = 1",
            "SET NAMES utf8mb4",
            "USE shop",
            "BEGIN",
            "START TRANSACTION",
            "COMMIT",
            "SELECT 1; SELECT 2",
            "SELECT * FROM t WHERE id = ?",
        ] {
            assert_eq!(read_only(sql.as_bytes(), db), Ok(()), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "update t set a = 1",
            "DELETE FROM t",
            "SELECT 1; DELETE FROM t",
            "DROP TABLE t",
            "SET GLOBAL max_connections = 10",
            "SET PASSWORD = PASSWORD('x')",
            "SELECT * FROM t INTO OUTFILE '/tmp/x'",
            "CALL p()",
            "SELECT my_func(1)",
            "EXECUTE stmt",
            "GRANT ALL ON *.* TO x",
        ] {
            assert!(read_only(sql.as_bytes(), db).is_err(), "{sql}");
        }
    }

    fn session_of(statements: Vec<Statement>) -> SessionLog {
        SessionLog {
            statements,
            ..SessionLog::default()
        }
    }

    #[test]
    fn skipped_and_refused_commands_never_reach_the_server() {
        let Payload::Statement(mut write) = statement(1, 1, "DELETE FROM t") else {
            unreachable!()
        };
        let Payload::Statement(mut refused) = statement(1, 2, "SELECT secret FROM t") else {
            unreachable!()
        };
        refused.decision = "refuse".into();
        let mut fetch = write.clone();
        fetch.command = "COM_STMT_FETCH".into();
        fetch.stmt_id = Some(3);
        let mut exec = write.clone();
        exec.command = "COM_STMT_EXECUTE".into();
        exec.sql = Some("SELECT * FROM t WHERE id = ?".into());
        exec.stmt_id = Some(3);
        let mut r = Replayer::new(&session_of(vec![fetch.clone()]), false, None);
        // A connection that was never opened: any attempt to use it would fail the test.
        let mut conn = Conn {
            stream: Stream::Plain(
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| TcpStream::connect(l.local_addr()?))
                    .unwrap(),
            ),
            buf: Vec::new(),
            start: 0,
            seq: 0,
            caps: CapabilityFlags::empty(),
            max_packet: 1 << 20,
            server_version: String::new(),
            connection_id: 0,
        };
        assert!(matches!(
            r.step(&mut conn, &write, None),
            Ok(Verdict::SkippedWrite(_))
        ));
        assert_eq!(
            r.step(&mut conn, &refused, None).unwrap(),
            Verdict::RefusedOriginally("refused".into())
        );
        assert!(matches!(
            r.step(&mut conn, &fetch, None),
            Ok(Verdict::NotReplayed(_))
        ));
        assert!(matches!(
            r.step(&mut conn, &exec, None),
            Ok(Verdict::NotReplayed(_))
        ));
        write.command = "COM_STMT_EXECUTE".into();
        write.stmt_id = Some(4);
        assert!(matches!(
            r.step(&mut conn, &write, None),
            Ok(Verdict::SkippedWrite(_))
        ));
        let line = table_line(&write, None, &Verdict::SkippedWrite("write".into()));
        assert!(line.contains("EXECUTE DELETE FROM t") && line.ends_with("skipped (write: write)"));
        // With --allow-writes the write would run (here: not prepared on this connection).
        let mut r = Replayer::new(&session_of(Vec::new()), true, None);
        assert_eq!(
            r.step(&mut conn, &write, None).unwrap(),
            Verdict::NotReplayed("statement not prepared here".into())
        );
    }

    #[test]
    fn rows_are_hashed_per_result_set_as_recorded() {
        use crate::wire::resultset::encode_column_definition;
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_DEPRECATE_EOF
            | CapabilityFlags::CLIENT_MULTI_RESULTS;
        let mut def = Vec::new();
        encode_column_definition(&mut def, &Default::default());
        // Two result sets: two rows, then none; SERVER_MORE_RESULTS_EXISTS between them.
        let more_ok = vec![0xfe, 0, 0, 0x08, 0, 0, 0];
        let last_ok = vec![0xfe, 0, 0, 0x02, 0, 0, 0];
        let mut t = ReplyTracker::new(Expect::Results(RowFormat::Text), caps);
        let packets = [
            vec![1],
            def.clone(),
            vec![1, b'a'],
            vec![1, b'b'],
            more_ok,
            vec![1],
            def,
            last_ok,
        ];
        let done: Vec<bool> = packets.iter().map(|p| t.on_packet(p).unwrap()).collect();
        assert_eq!(done.iter().filter(|d| **d).count(), 1);
        assert!(done[7]);
        let reply = t.finish();
        let mut want = ResultHasher::default();
        want.row(&[1, b'a']);
        want.row(&[1, b'b']);
        want.end_of_result_set();
        want.end_of_result_set();
        assert_eq!(reply.hash, want.finish());
        assert_eq!(reply.rows, 2);
        assert!(reply.error.is_none());

        // An OK without rows hashes nothing; an ERR is reported with its message.
        let mut t = ReplyTracker::new(Expect::Results(RowFormat::Text), caps);
        assert!(t.on_packet(&[0, 1, 0, 2, 0, 0, 0]).unwrap());
        assert_eq!(t.finish().hash, ResultHasher::default().finish());
        let mut t = ReplyTracker::new(Expect::Results(RowFormat::Text), caps);
        assert!(t
            .on_packet(b"\xff\x7a\x04#42S02Table 'shop.x' doesn't exist")
            .unwrap());
        let reply = t.finish();
        assert_eq!(
            reply.error,
            Some((1146, "Table 'shop.x' doesn't exist".into()))
        );
    }

    #[test]
    fn rows_are_hashed_the_same_with_eof_packets() {
        use crate::wire::resultset::encode_column_definition;
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41;
        let mut def = Vec::new();
        encode_column_definition(&mut def, &Default::default());
        let eof = vec![0xfe, 0, 0, 0x02, 0];
        let mut t = ReplyTracker::new(Expect::Results(RowFormat::Text), caps);
        for p in [vec![1], def, eof.clone(), vec![1, b'a'], eof] {
            t.on_packet(&p).unwrap();
        }
        let mut want = ResultHasher::default();
        want.row(&[1, b'a']);
        want.end_of_result_set();
        assert_eq!(t.finish().hash, want.finish());
    }

    #[test]
    fn verdicts_compare_hashes_and_errors() {
        let Payload::Result(mut orig) = result(1, 1, "") else {
            unreachable!()
        };
        let mut h = ResultHasher::default();
        h.row(b"\x01x");
        h.end_of_result_set();
        let reply = Reply {
            hash: h.finish(),
            rows: 1,
            ..Reply::default()
        };
        orig.result_hash = Some(hex::encode(h.finish()));
        assert!(matches!(
            compare(Some(&orig), &reply, true),
            Verdict::Match { .. }
        ));
        orig.result_hash = Some(hex::encode([0u8; 32]));
        assert!(matches!(
            compare(Some(&orig), &reply, true),
            Verdict::Different { .. }
        ));
        orig.result_hash = None;
        assert!(matches!(
            compare(Some(&orig), &reply, true),
            Verdict::Done { .. }
        ));
        orig.error = Some(1146);
        let failed = Reply {
            error: Some((1146, "no table".into())),
            ..Reply::default()
        };
        assert!(matches!(
            compare(Some(&orig), &failed, true),
            Verdict::Match { .. }
        ));
        assert!(matches!(
            compare(Some(&orig), &reply, true),
            Verdict::Different { .. }
        ));
        orig.error = None;
        assert!(matches!(
            compare(Some(&orig), &failed, true),
            Verdict::Error { .. }
        ));
    }
}
