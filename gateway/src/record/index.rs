//! The session index: one row per recorded session in `<dir>/index.sqlite`, so that
//! `sessions list` and `sessions show` do not scan the whole log.
//!
//! The index is a derived cache. Everything in it can be rebuilt from the segments, so it
//! makes no durability promises of its own (WAL, `synchronous = NORMAL`) and any problem with
//! it is handled by rebuilding it, never by stopping the recorder:
//!
//! * In the gateway it is an [`Observer`] of the writer thread, and does no SQLite work
//!   there: [`Observer::observe`] keeps a few integers per record (~80 ns), and
//!   [`Observer::committed`] hands what became durable to the index's own thread, which
//!   applies everything queued in one transaction. When that thread is behind, batches are
//!   dropped; when it finds records missing before a batch (dropped, or written while it was
//!   not running) it reads them from the segments. If SQLite fails it logs a warning, stops
//!   for a minute and then catches up the same way. Recording never waits for the index.
//! * [`SessionIndex::open`] catches up: it applies every record after the index's watermark
//!   (`indexed_through_seq` in `meta`) from the segments, so the index is complete after a
//!   crash, after the file was deleted, or while the gateway is not running. The watermark
//!   remembers where its record is (segment, offset, time); if that record is not there any
//!   more (the log was replaced), the index is rebuilt from scratch.
//! * Writers serialise on SQLite's lock and re-read the watermark inside their transaction, so
//!   the CLI and the gateway can both update the same index without counting a record twice.
//!
//! Tables: `sessions` (one row per session id, with counters and a bitmask of the statement
//! kinds seen), `session_identities` (identities taken with COM_CHANGE_USER), `session_segments`
//! (the offsets of a session's first and last record in each segment it has records in, so
//! `sessions show` reads only that range), `segments` (time span of each segment, for
//! `audit export --since`) and `meta`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde::Deserialize;

use super::event::{Payload, SessionEnd, SessionStart};
use super::format::{self, Kind, RecordRef};
use super::{Observer, RecordAt};

/// The index's file name in the log directory.
pub const INDEX_FILE: &str = "index.sqlite";

/// Bumped when the schema changes (an index of another version is rebuilt).
const SCHEMA_VERSION: i64 = 2;

/// Statement kinds (`statement.kind`), in the order of their bits in `sessions.kinds`.
pub const STATEMENT_KINDS: [&str; 7] = [
    "read",
    "write",
    "ddl",
    "admin",
    "session",
    "transaction",
    "other",
];

/// The bit of a statement kind in `sessions.kinds`.
pub fn kind_bit(kind: &str) -> Option<u32> {
    STATEMENT_KINDS
        .iter()
        .position(|k| *k == kind)
        .map(|i| 1 << i)
}

/// The kinds whose bits are set.
pub fn kind_names(bits: u32) -> Vec<&'static str> {
    STATEMENT_KINDS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, k)| *k)
        .collect()
}

/// Records applied per transaction while catching up.
const CATCH_UP_BATCH: usize = 200_000;
/// Records the observer keeps while no commit comes (beyond, they are dropped: the index
/// thread reads them from the segments later).
const MAX_PENDING: usize = 1 << 20;
/// Committed batches queued for the index thread; when it is this far behind, batches are
/// dropped (and read from the segments when it gets to the next one).
const QUEUE_BATCHES: usize = 1024;
/// How long the index thread waits after an error before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Busy timeout (another process — the CLI or the gateway — may hold the write lock).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One session as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Session id.
    pub id: u64,
    /// Identity at login (`None` when the session's start is not in the log any more).
    pub identity: Option<String>,
    /// Identities taken later with COM_CHANGE_USER.
    pub changed_to: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Authentication method.
    pub auth: Option<String>,
    /// Client address.
    pub client: Option<String>,
    /// Original destination (eBPF steering).
    pub original_dst: Option<String>,
    /// Listener.
    pub listener: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// Client TLS.
    pub tls: Option<String>,
    /// Upstream connection id.
    pub upstream_connection_id: Option<u32>,
    /// When it started (or its first record, when the start is missing).
    pub started_ns: i64,
    /// When it ended.
    pub ended_ns: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Commands received.
    pub statements: u64,
    /// Commands refused.
    pub refused: u64,
    /// Rows sent to the client.
    pub rows: u64,
    /// Bytes sent to the client.
    pub bytes: u64,
    /// Bitmask of statement kinds seen (see [`kind_names`]).
    pub kinds: u32,
    /// Its first record's seq.
    pub first_seq: u64,
    /// Its last record's seq (so far).
    pub last_seq: u64,
}

/// What [`SessionIndex::sessions`] selects.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Sessions of this identity (at login or after COM_CHANGE_USER).
    pub identity: Option<String>,
    /// Sessions to this target.
    pub target: Option<String>,
    /// Sessions started at or after this time (Unix ns).
    pub since_ns: Option<i64>,
    /// Sessions that ran a statement of one of these kinds (bits of [`kind_bit`]; 0: any).
    pub kinds: u32,
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// A segment's time span (what `audit export --since` uses to skip whole segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpan {
    /// The segment's first seq (names its file).
    pub first_seq: u64,
    /// Earliest record time in it.
    pub min_time_ns: i64,
    /// Latest record time in it.
    pub max_time_ns: i64,
    /// Its last seq indexed.
    pub last_seq: u64,
}

/// What a catch-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Records applied.
    pub records: u64,
    /// The watermark after it.
    pub through_seq: u64,
    /// The index was rebuilt from scratch (it did not match the log).
    pub rebuilt: bool,
    /// A damaged record that stopped it (`gatehouse audit verify` tells more).
    pub problem: Option<String>,
}

/// The session index (see the module docs).
pub struct SessionIndex {
    dir: PathBuf,
    /// For queries (`None` for [`SessionIndex::for_recorder`]).
    conn: Option<Connection>,
    /// Records observed and not committed yet, in seq order.
    pending: Vec<Op>,
    /// The index thread, once observing.
    worker: Option<Worker>,
    /// What the open's catch-up did.
    opened: CatchUp,
}

impl std::fmt::Debug for SessionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionIndex")
            .field("dir", &self.dir)
            .field("pending", &self.pending.len())
            .field("observing", &self.worker.is_some())
            .finish()
    }
}

// ----- what one record changes ---------------------------------------------------------------

/// One record, reduced to what the index needs.
#[derive(Debug)]
struct Op {
    seq: u64,
    segment: u64,
    offset: u64,
    time_ns: i64,
    what: What,
}

#[derive(Debug)]
enum What {
    /// Not about a session (gateway start/stop, unknown kinds): only moves the watermark.
    Nothing,
    Start(Box<SessionStart>),
    Statement {
        session: u64,
        refused: bool,
        kind: u32,
    },
    Result {
        session: u64,
        rows: u64,
        bytes: u64,
    },
    End(Box<SessionEnd>),
    /// Another record of a session (approval).
    Touch {
        session: u64,
    },
    Pruned {
        through_seq: u64,
        segments: Vec<u64>,
    },
}

impl What {
    fn session(&self) -> Option<u64> {
        match self {
            What::Start(s) => Some(s.session),
            What::Statement { session, .. }
            | What::Result { session, .. }
            | What::Touch { session } => Some(*session),
            What::End(e) => Some(e.session),
            What::Nothing | What::Pruned { .. } => None,
        }
    }

    fn from_payload(payload: &Payload) -> What {
        match payload {
            Payload::SessionStart(s) => What::Start(Box::new(s.clone())),
            Payload::Statement(s) => What::Statement {
                session: s.session,
                refused: s.decision == "refuse",
                kind: s.kind.as_deref().and_then(kind_bit).unwrap_or(0),
            },
            Payload::Result(r) => What::Result {
                session: r.session,
                rows: r.rows,
                bytes: r.bytes,
            },
            Payload::SessionEnd(e) => What::End(Box::new(e.clone())),
            Payload::Approval(a) => What::Touch { session: a.session },
            Payload::Pruned(p) => What::Pruned {
                through_seq: p.through_seq,
                segments: pruned_segments(&p.segments),
            },
            Payload::GatewayStart(_) | Payload::GatewayStop(_) => What::Nothing,
        }
    }

    /// From a record read from a segment. Statements and results (nearly every record) are
    /// parsed partially, skipping SQL, parameters and captured rows.
    fn from_record(record: &RecordRef<'_>) -> Result<What, serde_json::Error> {
        #[derive(Deserialize)]
        struct LiteStatement<'a> {
            session: u64,
            #[serde(borrow)]
            decision: Cow<'a, str>,
            #[serde(default, borrow)]
            kind: Option<Cow<'a, str>>,
        }
        #[derive(Deserialize)]
        struct LiteResult {
            session: u64,
            rows: u64,
            bytes: u64,
        }
        #[derive(Deserialize)]
        struct LiteSession {
            session: u64,
        }
        Ok(match Kind::from_u8(record.kind) {
            Some(Kind::Statement) => {
                let s: LiteStatement<'_> = serde_json::from_slice(record.payload)?;
                What::Statement {
                    session: s.session,
                    refused: s.decision == "refuse",
                    kind: s.kind.as_deref().and_then(kind_bit).unwrap_or(0),
                }
            }
            Some(Kind::Result) => {
                let r: LiteResult = serde_json::from_slice(record.payload)?;
                What::Result {
                    session: r.session,
                    rows: r.rows,
                    bytes: r.bytes,
                }
            }
            Some(Kind::Approval) => {
                let a: LiteSession = serde_json::from_slice(record.payload)?;
                What::Touch { session: a.session }
            }
            Some(Kind::SessionStart | Kind::SessionEnd | Kind::Pruned) => {
                What::from_payload(&serde_json::from_slice::<Payload>(record.payload)?)
            }
            Some(Kind::GatewayStart | Kind::GatewayStop) | None => What::Nothing,
        })
    }
}

/// The first seqs of pruned segment files (from their names).
fn pruned_segments(names: &[String]) -> Vec<u64> {
    names
        .iter()
        .filter_map(|n| {
            Path::new(n)
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
        })
        .collect()
}

/// What a batch of records changes for one session.
#[derive(Default)]
struct Delta {
    start: Option<(Box<SessionStart>, i64)>,
    changed_to: Vec<String>,
    statements: u64,
    refused: u64,
    rows: u64,
    bytes: u64,
    kinds: u32,
    end: Option<(Box<SessionEnd>, i64)>,
    first_seq: u64,
    first_time_ns: i64,
    last_seq: u64,
}

/// Where the index's watermark record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    seq: u64,
    segment: u64,
    offset: u64,
    time_ns: i64,
}

enum Applied {
    /// Applied (or already in the index); the watermark now.
    Through(u64),
    /// The first record is not the one after the watermark.
    Gap,
}

// ----- SQLite ----------------------------------------------------------------------------------

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions(
    id INTEGER PRIMARY KEY,
    identity TEXT, groups TEXT, auth TEXT, client TEXT, original_dst TEXT, listener TEXT,
    target TEXT, tls TEXT, upstream_connection_id INTEGER,
    started_ns INTEGER NOT NULL, ended_ns INTEGER, end_reason TEXT,
    statements INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0,
    rows INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
    kinds INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_ns);
CREATE INDEX IF NOT EXISTS sessions_identity ON sessions(identity, started_ns);
CREATE INDEX IF NOT EXISTS sessions_target ON sessions(target, started_ns);
CREATE TABLE IF NOT EXISTS session_identities(
    session_id INTEGER NOT NULL, identity TEXT NOT NULL,
    PRIMARY KEY(identity, session_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS session_segments(
    session_id INTEGER NOT NULL, segment_first_seq INTEGER NOT NULL,
    first_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL,
    PRIMARY KEY(session_id, segment_first_seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments(
    first_seq INTEGER PRIMARY KEY, min_time_ns INTEGER NOT NULL,
    max_time_ns INTEGER NOT NULL, last_seq INTEGER NOT NULL);
";

const DROP: &str = "
DROP TABLE IF EXISTS sessions; DROP TABLE IF EXISTS session_identities;
DROP TABLE IF EXISTS session_segments; DROP TABLE IF EXISTS segments;
DROP TABLE IF EXISTS meta;
";

fn sql_err(e: rusqlite::Error) -> String {
    format!("session index: {e}")
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Opens (creating) the index file with the schema.
fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    init_schema(&conn)?;
    Ok(conn)
}

fn init_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(SCHEMA)?;
    let version: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if version != Some(SCHEMA_VERSION) {
        // A new file, or an index of another version: start over.
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {DROP} {SCHEMA} COMMIT;"))?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('schema', ?1)",
            [SCHEMA_VERSION],
        )?;
    }
    Ok(())
}

fn read_mark(conn: &Connection) -> rusqlite::Result<Option<Mark>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM meta WHERE key IN ('indexed_through_seq', \
         'indexed_through_segment', 'indexed_through_offset', 'indexed_through_time_ns')",
    )?;
    let mut mark = Mark {
        seq: 0,
        segment: 0,
        offset: 0,
        time_ns: 0,
    };
    let mut found = false;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let value: i64 = row.get(1)?;
        match key.as_str() {
            "indexed_through_seq" => {
                mark.seq = value as u64;
                found = true;
            }
            "indexed_through_segment" => mark.segment = value as u64,
            "indexed_through_offset" => mark.offset = value as u64,
            _ => mark.time_ns = value,
        }
    }
    Ok(found.then_some(mark))
}

fn write_mark(conn: &Connection, mark: &Mark) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")?;
    stmt.execute(params!["indexed_through_seq", mark.seq as i64])?;
    stmt.execute(params!["indexed_through_segment", mark.segment as i64])?;
    stmt.execute(params!["indexed_through_offset", mark.offset as i64])?;
    stmt.execute(params!["indexed_through_time_ns", mark.time_ns])?;
    Ok(())
}

/// Applies `ops` (in seq order) in one transaction, skipping those the index already has.
/// With `allow_gap` false, a first record that does not follow the watermark is refused
/// (the observer then catches up from the segments first).
fn apply(conn: &mut Connection, ops: &[Op], allow_gap: bool) -> rusqlite::Result<Applied> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let through = read_mark(&tx)?.map_or(0, |m| m.seq);
    let ops = &ops[ops.partition_point(|o| o.seq <= through)..];
    let (Some(first), Some(last)) = (ops.first(), ops.last()) else {
        return Ok(Applied::Through(through));
    };
    if !allow_gap && first.seq != through + 1 {
        return Ok(Applied::Gap);
    }
    write_ops(&tx, ops)?;
    write_mark(
        &tx,
        &Mark {
            seq: last.seq,
            segment: last.segment,
            offset: last.offset,
            time_ns: last.time_ns,
        },
    )?;
    tx.commit()?;
    Ok(Applied::Through(last.seq))
}

fn write_ops(tx: &Connection, ops: &[Op]) -> rusqlite::Result<()> {
    // Aggregate in memory first: one or two statements per session touched, not per record.
    let mut deltas: BTreeMap<u64, Delta> = BTreeMap::new();
    let mut offsets: BTreeMap<(u64, u64), (u64, u64)> = BTreeMap::new();
    let mut spans: BTreeMap<u64, SegmentSpan> = BTreeMap::new();
    let mut pruned: Vec<(u64, Vec<u64>)> = Vec::new();
    for op in ops {
        spans
            .entry(op.segment)
            .and_modify(|s| {
                s.min_time_ns = s.min_time_ns.min(op.time_ns);
                s.max_time_ns = s.max_time_ns.max(op.time_ns);
                s.last_seq = s.last_seq.max(op.seq);
            })
            .or_insert(SegmentSpan {
                first_seq: op.segment,
                min_time_ns: op.time_ns,
                max_time_ns: op.time_ns,
                last_seq: op.seq,
            });
        if let What::Pruned {
            through_seq,
            segments,
        } = &op.what
        {
            pruned.push((*through_seq, segments.clone()));
            continue;
        }
        let Some(session) = op.what.session() else {
            continue;
        };
        offsets
            .entry((session, op.segment))
            .and_modify(|o| o.1 = op.offset)
            .or_insert((op.offset, op.offset));
        let d = deltas.entry(session).or_insert_with(|| Delta {
            first_seq: op.seq,
            first_time_ns: op.time_ns,
            ..Delta::default()
        });
        d.last_seq = op.seq;
        match &op.what {
            What::Start(s) if s.change_user => d.changed_to.push(s.identity.clone()),
            What::Start(s) => d.start = Some((s.clone(), op.time_ns)),
            What::Statement { refused, kind, .. } => {
                d.statements += 1;
                d.refused += u64::from(*refused);
                d.kinds |= kind;
            }
            What::Result { rows, bytes, .. } => {
                d.rows += rows;
                d.bytes += bytes;
            }
            What::End(e) => d.end = Some((e.clone(), op.time_ns)),
            What::Touch { .. } | What::Nothing | What::Pruned { .. } => {}
        }
    }

    let mut start_stmt = tx.prepare_cached(
        "INSERT INTO sessions(id, identity, groups, auth, client, original_dst, listener, \
         target, tls, upstream_connection_id, started_ns, first_seq, last_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) \
         ON CONFLICT(id) DO UPDATE SET identity = excluded.identity, groups = excluded.groups, \
         auth = excluded.auth, client = excluded.client, original_dst = excluded.original_dst, \
         listener = excluded.listener, target = excluded.target, tls = excluded.tls, \
         upstream_connection_id = excluded.upstream_connection_id, \
         started_ns = excluded.started_ns, first_seq = min(first_seq, excluded.first_seq)",
    )?;
    let mut bump_stmt = tx.prepare_cached(
        "UPDATE sessions SET statements = statements + ?2, refused = refused + ?3, \
         rows = rows + ?4, bytes = bytes + ?5, kinds = kinds | ?6, \
         last_seq = max(last_seq, ?7) WHERE id = ?1",
    )?;
    let mut orphan_stmt = tx.prepare_cached(
        "INSERT INTO sessions(id, started_ns, first_seq, last_seq, statements, refused, rows, \
         bytes, kinds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut end_stmt = tx.prepare_cached(
        "UPDATE sessions SET ended_ns = ?2, end_reason = ?3, statements = ?4, refused = ?5, \
         rows = ?6, bytes = ?7 WHERE id = ?1",
    )?;
    let mut identity_stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO session_identities(session_id, identity) VALUES (?1, ?2)",
    )?;
    for (&id, d) in &deltas {
        let sid = id as i64;
        if let Some((s, time_ns)) = &d.start {
            let groups = serde_json::to_string(&s.groups).unwrap_or_else(|_| "[]".into());
            start_stmt.execute(params![
                sid,
                s.identity,
                groups,
                s.auth,
                s.client,
                s.original_dst,
                s.listener,
                s.target,
                s.tls,
                s.upstream_connection_id,
                time_ns,
                d.first_seq as i64,
            ])?;
        }
        let changed = bump_stmt.execute(params![
            sid,
            d.statements as i64,
            d.refused as i64,
            d.rows as i64,
            d.bytes as i64,
            d.kinds,
            d.last_seq as i64,
        ])?;
        if changed == 0 {
            // Records of a session whose start is not in the log (pruned, or never written).
            orphan_stmt.execute(params![
                sid,
                d.first_time_ns,
                d.first_seq as i64,
                d.last_seq as i64,
                d.statements as i64,
                d.refused as i64,
                d.rows as i64,
                d.bytes as i64,
                d.kinds,
            ])?;
        }
        for identity in &d.changed_to {
            identity_stmt.execute(params![sid, identity])?;
        }
        if let Some((e, time_ns)) = &d.end {
            end_stmt.execute(params![
                sid,
                time_ns,
                e.reason,
                e.statements as i64,
                e.refused as i64,
                e.rows as i64,
                e.bytes as i64,
            ])?;
        }
    }

    let mut offsets_stmt = tx.prepare_cached(
        "INSERT INTO session_segments(session_id, segment_first_seq, first_offset, \
         last_offset) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(session_id, segment_first_seq) DO UPDATE SET \
         first_offset = min(first_offset, excluded.first_offset), \
         last_offset = max(last_offset, excluded.last_offset)",
    )?;
    for (&(session, segment), &(first, last)) in &offsets {
        offsets_stmt.execute(params![
            session as i64,
            segment as i64,
            first as i64,
            last as i64
        ])?;
    }
    let mut span_stmt = tx.prepare_cached(
        "INSERT INTO segments(first_seq, min_time_ns, max_time_ns, last_seq) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT(first_seq) DO UPDATE SET \
         min_time_ns = min(min_time_ns, excluded.min_time_ns), \
         max_time_ns = max(max_time_ns, excluded.max_time_ns), \
         last_seq = max(last_seq, excluded.last_seq)",
    )?;
    for s in spans.values() {
        span_stmt.execute(params![
            s.first_seq as i64,
            s.min_time_ns,
            s.max_time_ns,
            s.last_seq as i64
        ])?;
    }
    for (through_seq, segments) in pruned {
        for segment in segments {
            tx.execute(
                "DELETE FROM session_segments WHERE segment_first_seq = ?1",
                [segment as i64],
            )?;
            tx.execute(
                "DELETE FROM segments WHERE first_seq = ?1",
                [segment as i64],
            )?;
        }
        // Sessions with no record left.
        tx.execute(
            "DELETE FROM session_identities WHERE session_id IN \
             (SELECT id FROM sessions WHERE last_seq <= ?1)",
            [through_seq as i64],
        )?;
        tx.execute(
            "DELETE FROM sessions WHERE last_seq <= ?1",
            [through_seq as i64],
        )?;
    }
    Ok(())
}

/// Reads the records of a segment file from the one at `first` through the one at `last`
/// (offsets of record starts; the bytes start at `first`).
pub fn read_segment_range(path: &Path, first: u64, last: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(first))?;
    let upto_frame = (last.saturating_sub(first) as usize).saturating_add(format::FRAME_LEN);
    let mut buf = Vec::with_capacity(upto_frame);
    (&mut file).take(upto_frame as u64).read_to_end(&mut buf)?;
    if buf.len() == upto_frame {
        let at = upto_frame - format::FRAME_LEN;
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len <= format::MAX_BODY_LEN {
            file.take(len as u64).read_to_end(&mut buf)?;
        }
    }
    Ok(buf)
}

/// How far the CLI may index: while a gateway is writing the log (its `status.json` is
/// fresh), only what it has made durable — a record written but not yet synced can still be
/// cut if the sync fails (the gateway's own index thread applies the rest). Otherwise
/// everything on disk.
fn durable_limit(dir: &Path) -> u64 {
    let Ok(bytes) = std::fs::read(dir.join("status.json")) else {
        return u64::MAX;
    };
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
        .map_or(0, |i| i + 1);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes[..end]) else {
        return u64::MAX;
    };
    let running = v.get("running").and_then(serde_json::Value::as_bool) != Some(false);
    let fresh = v
        .get("updated_ns")
        .and_then(serde_json::Value::as_i64)
        .is_some_and(|t| (super::now_ns() - t).abs() < 5_000_000_000);
    match v.get("durable_seq").and_then(serde_json::Value::as_u64) {
        Some(durable) if running && fresh => durable,
        _ => u64::MAX,
    }
}

/// Reads a segment file from `offset` to its end.
pub fn read_segment_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len.saturating_sub(offset) as usize);
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Applies the records after the watermark (up to `upto`) from the segments in `dir`.
fn catch_up(conn: &mut Connection, dir: &Path, upto: u64) -> Result<CatchUp, String> {
    let mut out = CatchUp::default();
    let mark = read_mark(conn).map_err(sql_err)?;
    let segments =
        format::segment_paths(dir).map_err(|e| format!("audit log {}: {e}", dir.display()))?;

    // Where to start: just after the watermark record, if it is still where the index saw
    // it. If it is not, this index is of another log (or the log lost its tail): rebuild.
    let mut start: Option<(usize, u64)> = Some((0, format::HEADER_LEN as u64));
    let mut through = 0;
    if let Some(mark) = mark.filter(|m| m.seq > 0) {
        through = mark.seq;
        let pos = segments
            .iter()
            .position(|(first, _)| *first == mark.segment);
        match pos {
            Some(i) => {
                let bytes = read_segment_from(&segments[i].1, mark.offset)
                    .map_err(|e| format!("{}: {e}", segments[i].1.display()))?;
                match format::decode_record(&bytes) {
                    Ok((r, len)) if r.seq == mark.seq && r.time_ns == mark.time_ns => {
                        start = Some((i, mark.offset + len as u64));
                    }
                    _ => start = None,
                }
            }
            // Its segment was pruned: everything left is newer (or the log is another one,
            // in which case nothing after the watermark is found).
            None if segments.iter().all(|(first, _)| *first > mark.seq) => {}
            None => start = None,
        }
    }
    let (first_segment, mut offset) = match start {
        Some(s) => s,
        None => {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {DROP} COMMIT;"))
                .map_err(sql_err)?;
            init_schema(conn).map_err(sql_err)?;
            out.rebuilt = true;
            through = 0;
            (0, format::HEADER_LEN as u64)
        }
    };
    out.through_seq = through;

    let mut batch: Vec<Op> = Vec::new();
    let flush = |conn: &mut Connection, batch: &mut Vec<Op>, out: &mut CatchUp| {
        if let Applied::Through(seq) = apply(conn, batch, true).map_err(sql_err)? {
            out.through_seq = seq;
        }
        batch.clear();
        Ok::<(), String>(())
    };
    let last = segments.len().saturating_sub(1);
    'segments: for (i, (first_seq, path)) in segments.iter().enumerate().skip(first_segment) {
        let bytes = match read_segment_from(path, offset) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // pruned meanwhile
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let base = offset;
        offset = format::HEADER_LEN as u64;
        for (at, record) in format::Records::from_offset(&bytes, 0) {
            let record = match record {
                Ok(r) => r,
                // A torn tail at the end of the log is a write in progress (or recovery's
                // job); anything else is damage: index what is before it.
                Err(format::FormatError::Truncated { .. }) if i == last => break 'segments,
                Err(e) => {
                    out.problem = Some(format!(
                        "{} at offset {}: {e}",
                        path.display(),
                        base + at as u64
                    ));
                    break 'segments;
                }
            };
            if record.seq <= through {
                continue;
            }
            if record.seq > upto {
                break 'segments;
            }
            let what = What::from_record(&record).unwrap_or_else(|e| {
                tracing::warn!(seq = record.seq, "session index: unreadable payload: {e}");
                What::Nothing
            });
            batch.push(Op {
                seq: record.seq,
                segment: *first_seq,
                offset: base + at as u64,
                time_ns: record.time_ns,
                what,
            });
            out.records += 1;
            if batch.len() >= CATCH_UP_BATCH {
                flush(conn, &mut batch, &mut out)?;
            }
        }
    }
    flush(conn, &mut batch, &mut out)?;
    Ok(out)
}

impl SessionIndex {
    /// Opens (or creates) `<dir>/index.sqlite` and catches up with the segments in `dir`.
    /// A damaged index file is deleted and rebuilt.
    pub fn open(dir: &Path) -> Result<SessionIndex, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(INDEX_FILE);
        match Self::open_file(dir, &path) {
            Err(e) if e.1 => {
                tracing::warn!("{}: {}; rebuilding it", path.display(), e.0);
                remove_index_files(&path);
                Self::open_file(dir, &path).map_err(|e| e.0)
            }
            r => r.map_err(|e| e.0),
        }
    }

    /// An index in memory, built from the segments in `dir` (for a log directory that
    /// cannot be written).
    pub fn open_in_memory(dir: &Path) -> Result<SessionIndex, String> {
        let conn = Connection::open_in_memory().map_err(sql_err)?;
        init_schema(&conn).map_err(sql_err)?;
        Self::with_conn(dir, conn).map_err(|e| e.0)
    }

    fn open_file(dir: &Path, path: &Path) -> Result<SessionIndex, (String, bool)> {
        let conn = open_conn(path).map_err(|e| {
            let corrupt = is_corrupt(&e);
            (sql_err(e), corrupt)
        })?;
        Self::with_conn(dir, conn)
    }

    fn with_conn(dir: &Path, mut conn: Connection) -> Result<SessionIndex, (String, bool)> {
        let opened = catch_up(&mut conn, dir, durable_limit(dir)).map_err(|e| {
            let corrupt = e.contains("malformed") || e.contains("not a database");
            (e, corrupt)
        })?;
        if let Some(problem) = &opened.problem {
            tracing::warn!("session index stops before a damaged record: {problem}");
        }
        Ok(SessionIndex {
            dir: dir.to_owned(),
            conn: Some(conn),
            pending: Vec::new(),
            worker: None,
            opened,
        })
    }

    /// The index for the gateway's recorder: never fails and never delays startup. Its
    /// thread opens the file (rebuilding a damaged one) and catches up with the segments in
    /// the background, then applies what the writer commits; problems are logged as warnings
    /// and retried later. This handle is only an [`Observer`]: queries on it fail (open
    /// another with [`SessionIndex::open`]).
    pub fn for_recorder(dir: &Path) -> SessionIndex {
        SessionIndex {
            dir: dir.to_owned(),
            conn: None,
            pending: Vec::new(),
            worker: Some(Worker::spawn(dir)),
            opened: CatchUp::default(),
        }
    }

    /// Waits until the index thread has applied everything committed so far (for tests and
    /// for an orderly stop; the recorder does not need it).
    pub fn sync(&self) {
        if let Some(w) = &self.worker {
            w.sync();
        }
    }

    /// What opening caught up.
    pub fn opened(&self) -> &CatchUp {
        &self.opened
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies any records written since (from the segments).
    pub fn catch_up(&mut self) -> Result<CatchUp, String> {
        let dir = self.dir.clone();
        catch_up(self.conn()?, &dir, u64::MAX)
    }

    /// Empties the index and builds it again from the segments.
    pub fn rebuild(&mut self) -> Result<CatchUp, String> {
        let dir = self.dir.clone();
        let conn = self.conn()?;
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {DROP} COMMIT;"))
            .map_err(sql_err)?;
        init_schema(conn).map_err(sql_err)?;
        let mut c = catch_up(conn, &dir, u64::MAX)?;
        c.rebuilt = true;
        Ok(c)
    }

    fn conn(&mut self) -> Result<&mut Connection, String> {
        self.conn
            .as_mut()
            .ok_or_else(|| "this session index handle is the recorder's (no queries)".to_owned())
    }

    fn conn_ref(&self) -> Result<&Connection, String> {
        self.conn
            .as_ref()
            .ok_or_else(|| "this session index handle is the recorder's (no queries)".to_owned())
    }

    /// The last seq the index has applied.
    pub fn indexed_through(&self) -> Result<u64, String> {
        Ok(read_mark(self.conn_ref()?)
            .map_err(sql_err)?
            .map_or(0, |m| m.seq))
    }

    /// Sessions matching `filter`, newest first.
    pub fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionSummary>, String> {
        let conn = self.conn_ref()?;
        let mut sql = String::from("SELECT ");
        sql += SUMMARY_COLUMNS;
        sql += " FROM sessions s WHERE 1";
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(identity) = &filter.identity {
            args.push(identity.clone().into());
            sql += &format!(
                " AND s.id IN (SELECT id FROM sessions WHERE identity = ?{n} \
                 UNION SELECT session_id FROM session_identities WHERE identity = ?{n})",
                n = args.len()
            );
        }
        if let Some(target) = &filter.target {
            args.push(target.clone().into());
            sql += &format!(" AND s.target = ?{}", args.len());
        }
        if let Some(since) = filter.since_ns {
            args.push(since.into());
            sql += &format!(" AND s.started_ns >= ?{}", args.len());
        }
        if filter.kinds != 0 {
            args.push(i64::from(filter.kinds).into());
            sql += &format!(" AND (s.kinds & ?{}) != 0", args.len());
        }
        sql += " ORDER BY s.started_ns DESC, s.id DESC";
        if filter.limit > 0 {
            sql += &format!(" LIMIT {}", filter.limit);
        }
        let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), summary_from_row)
            .map_err(sql_err)?;
        let mut out = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err)?;
        self.fill_changed_to(&mut out)?;
        Ok(out)
    }

    /// One session.
    pub fn session(&self, id: u64) -> Result<Option<SessionSummary>, String> {
        let conn = self.conn_ref()?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM sessions s WHERE s.id = ?1"
            ))
            .map_err(sql_err)?;
        let found = stmt
            .query_row([id as i64], summary_from_row)
            .optional()
            .map_err(sql_err)?;
        let mut out: Vec<_> = found.into_iter().collect();
        self.fill_changed_to(&mut out)?;
        Ok(out.pop())
    }

    fn fill_changed_to(&self, sessions: &mut [SessionSummary]) -> Result<(), String> {
        let conn = self.conn_ref()?;
        let mut stmt = conn
            .prepare_cached("SELECT identity FROM session_identities WHERE session_id = ?1")
            .map_err(sql_err)?;
        let any: bool = conn
            .query_row("SELECT EXISTS(SELECT 1 FROM session_identities)", [], |r| {
                r.get(0)
            })
            .map_err(sql_err)?;
        if !any {
            return Ok(());
        }
        for s in sessions {
            s.changed_to = stmt
                .query_map([s.id as i64], |r| r.get(0))
                .map_err(sql_err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql_err)?;
        }
        Ok(())
    }

    /// The segments a session has records in (by first seq), with the offsets of its first
    /// and last record in each, in log order.
    pub fn session_segments(&self, id: u64) -> Result<Vec<(u64, u64, u64)>, String> {
        let conn = self.conn_ref()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT segment_first_seq, first_offset, last_offset FROM session_segments \
                 WHERE session_id = ?1 ORDER BY segment_first_seq",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map([id as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    /// The time span of every indexed segment, in log order.
    pub fn segment_spans(&self) -> Result<Vec<SegmentSpan>, String> {
        let conn = self.conn_ref()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT first_seq, min_time_ns, max_time_ns, last_seq FROM segments \
                 ORDER BY first_seq",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SegmentSpan {
                    first_seq: r.get::<_, i64>(0)? as u64,
                    min_time_ns: r.get(1)?,
                    max_time_ns: r.get(2)?,
                    last_seq: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }
}

const SUMMARY_COLUMNS: &str = "s.id, s.identity, s.groups, s.auth, s.client, s.original_dst, \
    s.listener, s.target, s.tls, s.upstream_connection_id, s.started_ns, s.ended_ns, \
    s.end_reason, s.statements, s.refused, s.rows, s.bytes, s.kinds, s.first_seq, s.last_seq";

fn summary_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    let groups: Option<String> = r.get(2)?;
    Ok(SessionSummary {
        id: r.get::<_, i64>(0)? as u64,
        identity: r.get(1)?,
        changed_to: Vec::new(),
        groups: groups
            .and_then(|g| serde_json::from_str(&g).ok())
            .unwrap_or_default(),
        auth: r.get(3)?,
        client: r.get(4)?,
        original_dst: r.get(5)?,
        listener: r.get(6)?,
        target: r.get(7)?,
        tls: r.get(8)?,
        upstream_connection_id: r.get(9)?,
        started_ns: r.get(10)?,
        ended_ns: r.get(11)?,
        end_reason: r.get(12)?,
        statements: r.get::<_, i64>(13)? as u64,
        refused: r.get::<_, i64>(14)? as u64,
        rows: r.get::<_, i64>(15)? as u64,
        bytes: r.get::<_, i64>(16)? as u64,
        kinds: r.get(17)?,
        first_seq: r.get::<_, i64>(18)? as u64,
        last_seq: r.get::<_, i64>(19)? as u64,
    })
}

fn remove_index_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

impl Observer for SessionIndex {
    fn observe(&mut self, at: RecordAt, payload: &Payload) {
        if self.pending.len() >= MAX_PENDING {
            // No commit for a long time (the log cannot be written?): let the index thread
            // read these from the segments later rather than hold them.
            self.pending.clear();
        }
        self.pending.push(Op {
            seq: at.seq,
            segment: at.segment_first_seq,
            offset: at.offset,
            time_ns: at.time_ns,
            what: What::from_payload(payload),
        });
    }

    fn committed(&mut self, durable_seq: u64) {
        let n = self.pending.partition_point(|o| o.seq <= durable_seq);
        if n == 0 {
            return;
        }
        let rest = self.pending.split_off(n);
        let batch = std::mem::replace(&mut self.pending, rest);
        let dir = &self.dir;
        self.worker
            .get_or_insert_with(|| Worker::spawn(dir))
            .send(batch);
    }
}

impl Drop for SessionIndex {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            w.stop();
        }
    }
}

// ----- the index thread ----------------------------------------------------------------------

enum Msg {
    Ops(Vec<Op>),
    Sync(std::sync::mpsc::Sender<()>),
}

/// The thread that applies committed records, so that no SQLite work happens on the
/// recorder's writer thread.
struct Worker {
    tx: std::sync::mpsc::SyncSender<Msg>,
    handle: JoinHandle<()>,
    /// A batch was dropped (queue full) and not reported yet.
    dropped: bool,
}

impl Worker {
    fn spawn(dir: &Path) -> Worker {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_BATCHES);
        let dir = dir.to_owned();
        let handle = std::thread::Builder::new()
            .name("session-index".into())
            .spawn(move || worker_loop(&dir, &rx))
            .expect("spawn the session index thread");
        Worker {
            tx,
            handle,
            dropped: false,
        }
    }

    fn send(&mut self, batch: Vec<Op>) {
        match self.tx.try_send(Msg::Ops(batch)) {
            Ok(()) => self.dropped = false,
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                // The thread is behind: it finds the gap and reads these from the segments.
                if !self.dropped {
                    tracing::debug!("session index thread is behind; it will catch up");
                }
                self.dropped = true;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {}
        }
    }

    fn sync(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Sync(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    fn stop(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}

/// Opens the index file, deleting a damaged one.
fn open_repairing(path: &Path) -> rusqlite::Result<Connection> {
    match open_conn(path) {
        Err(e) if is_corrupt(&e) => {
            tracing::warn!("{}: {e}; rebuilding it", path.display());
            remove_index_files(path);
            open_conn(path)
        }
        r => r,
    }
}

fn worker_loop(dir: &Path, rx: &std::sync::mpsc::Receiver<Msg>) {
    let path = dir.join(INDEX_FILE);
    let mut conn: Option<Connection> = None;
    let mut failed_at: Option<Instant> = None;
    // Catch up with what is on disk first (records committed meanwhile queue up).
    let mut catch_up_first = true;
    let mut syncs = Vec::new();
    loop {
        let mut ops: Vec<Op> = Vec::new();
        let mut closed = false;
        // Wait for work, then take everything queued: one transaction when behind.
        match rx.recv() {
            Ok(Msg::Ops(o)) => ops = o,
            Ok(Msg::Sync(s)) => syncs.push(s),
            Err(_) => closed = true,
        }
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Ops(o) => ops.extend(o),
                Msg::Sync(s) => syncs.push(s),
            }
        }
        let retry = failed_at.is_none_or(|t| t.elapsed() >= RETRY_AFTER);
        if conn.is_none() && retry && !(closed && ops.is_empty()) {
            match open_repairing(&path) {
                Ok(c) => {
                    conn = Some(c);
                    failed_at = None;
                }
                Err(e) => {
                    tracing::warn!(
                        "session index {}: {e}; sessions are indexed later                          (recording is not affected)",
                        path.display()
                    );
                    failed_at = Some(Instant::now());
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let upto = ops.first().map_or(u64::MAX, |o| o.seq.saturating_sub(1));
            let mut step = || -> Result<(), String> {
                if catch_up_first {
                    let done = catch_up(c, dir, upto)?;
                    if let Some(problem) = &done.problem {
                        tracing::warn!("session index stops before a damaged record: {problem}");
                    }
                    catch_up_first = false;
                }
                if let Applied::Gap = apply(c, &ops, false).map_err(sql_err)? {
                    // Records before these were not seen (dropped, or written before): read
                    // them from the segments. What is not there is not in the log.
                    catch_up(c, dir, upto)?;
                    apply(c, &ops, true).map_err(sql_err)?;
                }
                Ok(())
            };
            if let Err(e) = step() {
                tracing::warn!(
                    "session index {}: {e}; it stops updating for a while and catches up \
                     later (recording is not affected)",
                    path.display()
                );
                conn = None;
                failed_at = Some(Instant::now());
                catch_up_first = true;
            }
        }
        for s in syncs.drain(..) {
            let _ = s.send(());
        }
        if closed {
            return;
        }
    }
}

/// Builds logs for tests, straight from the format (no recorder).
#[cfg(test)]
pub(crate) mod testlog {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use crate::record::format::{self, Hash, Kind};

    /// A log being written into a temporary directory (removed on drop).
    pub(crate) struct TestLog {
        pub(crate) dir: PathBuf,
        segment_no: u64,
        seg: Vec<u8>,
        seg_first: u64,
        pub(crate) next_seq: u64,
        prev: Hash,
        /// (seq, segment first seq, offset, time, hash) of every record.
        pub(crate) records: Vec<(u64, u64, u64, i64, Hash)>,
    }

    impl TestLog {
        pub(crate) fn new(name: &str) -> TestLog {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir()
                .join(format!("gatehouse-{name}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut log = TestLog {
                dir,
                segment_no: 0,
                seg: Vec::new(),
                seg_first: 1,
                next_seq: 1,
                prev: format::GENESIS,
                records: Vec::new(),
            };
            log.rotate();
            log
        }

        /// Closes the current segment and starts the next.
        pub(crate) fn rotate(&mut self) {
            if self.segment_no > 0 {
                self.flush();
            }
            self.segment_no += 1;
            self.seg_first = self.next_seq;
            self.seg = format::SegmentHeader {
                segment: self.segment_no,
                first_seq: self.seg_first,
                prev_hash: self.prev,
            }
            .encode()
            .to_vec();
        }

        /// Writes the current segment's file.
        pub(crate) fn flush(&self) {
            std::fs::write(
                self.dir.join(format::segment_file_name(self.seg_first)),
                &self.seg,
            )
            .unwrap();
        }

        /// The current segment's size.
        pub(crate) fn segment_len(&self) -> usize {
            self.seg.len()
        }

        /// Appends a record (not flushed); returns its seq.
        pub(crate) fn push(&mut self, time_ns: i64, payload: &Value) -> u64 {
            let ty = payload["type"].as_str().unwrap();
            let kind = (1..=8)
                .filter_map(Kind::from_u8)
                .find(|k| k.name() == ty)
                .unwrap();
            let bytes = serde_json::to_vec(payload).unwrap();
            let seq = self.next_seq;
            let offset = self.seg.len() as u64;
            self.prev =
                format::encode_record(&mut self.seg, seq, time_ns, &self.prev, kind, &bytes);
            self.records
                .push((seq, self.seg_first, offset, time_ns, self.prev));
            self.next_seq += 1;
            seq
        }
    }

    impl Drop for TestLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    pub(crate) fn start(session: u64, identity: &str, target: &str) -> Value {
        json!({"type": "session_start", "session": session, "identity": identity,
               "groups": ["dev"], "auth": "gateway:caching_sha2_password",
               "client": format!("10.0.0.{}:5000", session % 250), "listener": "main",
               "target": target, "tls": "TLSv1.3", "upstream_connection_id": 1000 + session})
    }

    pub(crate) fn change_user(session: u64, identity: &str, target: &str) -> Value {
        let mut v = start(session, identity, target);
        v["change_user"] = true.into();
        v
    }

    pub(crate) fn stmt(
        session: u64,
        n: u64,
        sql: &str,
        kind: &str,
        decision: &str,
        at: i64,
    ) -> Value {
        json!({"type": "statement", "session": session, "n": n, "command": "COM_QUERY",
               "sql": sql, "kind": kind, "digest": "00112233aabbccdd",
               "decision": decision, "received_ns": at})
    }

    pub(crate) fn result(session: u64, n: u64, rows: u64, bytes: u64, at: i64) -> Value {
        json!({"type": "result", "session": session, "n": n, "forwarded_ns": at,
               "first_byte_ns": at + 1000, "done_ns": at + 2000, "rows": rows,
               "result_sets": 1, "bytes": bytes, "affected_rows": 0, "warnings": 0,
               "result_hash": "ab".repeat(32)})
    }

    pub(crate) fn end(session: u64, statements: u64, refused: u64, rows: u64, bytes: u64) -> Value {
        json!({"type": "session_end", "session": session, "reason": "client_quit",
               "statements": statements, "refused": refused, "rows": rows, "bytes": bytes})
    }
}

#[cfg(test)]
mod tests {
    use super::testlog::*;
    use super::*;

    const T0: i64 = 1_800_000_000 * 1_000_000_000;
    const SEC: i64 = 1_000_000_000;

    /// Three sessions over two segments: 1 (alice → primary, reads, ended), 2 (bob →
    /// replica, a refused write and a read, spans both segments, ended), 3 (alice → replica,
    /// DDL, open, changed user to carol).
    fn sample(log: &mut TestLog) {
        log.push(
            T0,
            &serde_json::json!({"type": "gateway_start", "version": "t", "pid": 1, "host": "h"}),
        );
        log.push(T0 + SEC, &start(1, "alice", "primary"));
        log.push(T0 + 2 * SEC, &start(2, "bob", "replica"));
        log.push(
            T0 + 3 * SEC,
            &stmt(1, 1, "SELECT 1", "read", "allow", T0 + 3 * SEC),
        );
        log.push(T0 + 3 * SEC, &result(1, 1, 1, 10, T0 + 3 * SEC));
        log.push(
            T0 + 4 * SEC,
            &stmt(2, 1, "DELETE FROM t", "write", "refuse", T0 + 4 * SEC),
        );
        log.push(T0 + 5 * SEC, &end(1, 1, 0, 1, 10));
        log.rotate();
        log.push(
            T0 + 10 * SEC,
            &stmt(2, 2, "SELECT * FROM t", "read", "allow", T0 + 10 * SEC),
        );
        log.push(T0 + 10 * SEC, &result(2, 2, 5, 500, T0 + 10 * SEC));
        log.push(T0 + 3600 * SEC, &start(3, "alice", "replica"));
        log.push(
            T0 + 3601 * SEC,
            &stmt(
                3,
                1,
                "CREATE TABLE x (a int)",
                "ddl",
                "allow",
                T0 + 3601 * SEC,
            ),
        );
        log.push(T0 + 3601 * SEC, &result(3, 1, 0, 11, T0 + 3601 * SEC));
        log.push(T0 + 3602 * SEC, &end(2, 2, 1, 5, 500));
        log.push(T0 + 3603 * SEC, &change_user(3, "carol", "replica"));
        log.flush();
    }

    fn ids(v: &[SessionSummary]) -> Vec<u64> {
        v.iter().map(|s| s.id).collect()
    }

    /// Every table's rows, for comparing two indexes.
    fn dump(index: &SessionIndex) -> Vec<String> {
        dump_conn(index.conn.as_ref().unwrap())
    }

    fn dump_conn(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for table in [
            "sessions",
            "session_identities",
            "session_segments",
            "segments",
            "meta",
        ] {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let cells: Vec<String> = (0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect();
                    Ok(format!("{table}: {}", cells.join(" | ")))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }

    #[test]
    fn catch_up_builds_the_index() {
        let mut log = TestLog::new("index-build");
        sample(&mut log);
        let index = SessionIndex::open(&log.dir).unwrap();
        assert_eq!(index.opened().records, 14);
        assert_eq!(index.indexed_through().unwrap(), 14);
        let all = index.sessions(&SessionFilter::default()).unwrap();
        assert_eq!(ids(&all), [3, 2, 1]);
        let s2 = &all[1];
        assert_eq!(s2.identity.as_deref(), Some("bob"));
        assert_eq!(s2.target.as_deref(), Some("replica"));
        assert_eq!(s2.groups, ["dev"]);
        assert_eq!(s2.tls.as_deref(), Some("TLSv1.3"));
        assert_eq!(s2.upstream_connection_id, Some(1002));
        assert_eq!(
            (s2.statements, s2.refused, s2.rows, s2.bytes),
            (2, 1, 5, 500)
        );
        assert_eq!(kind_names(s2.kinds), ["read", "write"]);
        assert_eq!(s2.started_ns, T0 + 2 * SEC);
        assert_eq!(s2.ended_ns, Some(T0 + 3602 * SEC));
        assert_eq!(s2.end_reason.as_deref(), Some("client_quit"));
        assert_eq!((s2.first_seq, s2.last_seq), (3, 13));
        let s3 = &all[0];
        assert_eq!(s3.end_reason, None);
        assert_eq!(s3.changed_to, ["carol"]);
        assert_eq!((s3.statements, s3.rows, s3.bytes), (1, 0, 11));
        // Session 2 has records in both segments; the offsets are its first record's.
        let segs = index.session_segments(2).unwrap();
        let at = |seq: u64| log.records.iter().find(|r| r.0 == seq).unwrap();
        assert_eq!(
            segs,
            [(1, at(3).2, at(6).2), (at(8).1, at(8).2, at(13).2)],
            "session 2: seqs 3, 6 in the first segment, 8, 9, 13 in the second"
        );
        let spans = index.segment_spans().unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].min_time_ns, spans[0].max_time_ns),
            (T0, T0 + 5 * SEC)
        );
        assert_eq!(spans[1].last_seq, 14);
    }

    #[test]
    fn filters_select_the_right_sessions() {
        let mut log = TestLog::new("index-filters");
        sample(&mut log);
        let index = SessionIndex::open(&log.dir).unwrap();
        let q = |f: SessionFilter| ids(&index.sessions(&f).unwrap());
        let identity = |s: &str| SessionFilter {
            identity: Some(s.into()),
            ..Default::default()
        };
        assert_eq!(q(identity("alice")), [3, 1]);
        assert_eq!(q(identity("bob")), [2]);
        assert_eq!(
            q(identity("carol")),
            [3],
            "identity taken with COM_CHANGE_USER"
        );
        assert_eq!(q(identity("nobody")), Vec::<u64>::new());
        let target = |s: &str| SessionFilter {
            target: Some(s.into()),
            ..Default::default()
        };
        assert_eq!(q(target("replica")), [3, 2]);
        assert_eq!(q(target("primary")), [1]);
        let since = SessionFilter {
            since_ns: Some(T0 + 2 * SEC),
            ..Default::default()
        };
        assert_eq!(q(since), [3, 2]);
        let kind = |k: &str| SessionFilter {
            kinds: kind_bit(k).unwrap(),
            ..Default::default()
        };
        assert_eq!(q(kind("read")), [2, 1]);
        assert_eq!(
            q(kind("write")),
            [2],
            "a refused write counts: it was attempted"
        );
        assert_eq!(q(kind("ddl")), [3]);
        assert_eq!(q(kind("admin")), Vec::<u64>::new());
        let combined = SessionFilter {
            identity: Some("alice".into()),
            target: Some("replica".into()),
            kinds: kind_bit("ddl").unwrap() | kind_bit("read").unwrap(),
            ..Default::default()
        };
        assert_eq!(q(combined), [3]);
        let limited = SessionFilter {
            limit: 2,
            ..Default::default()
        };
        assert_eq!(q(limited), [3, 2]);
    }

    #[test]
    fn a_deleted_index_is_rebuilt_identically_and_catch_up_is_incremental() {
        let mut log = TestLog::new("index-rebuild");
        sample(&mut log);
        let before = dump(&SessionIndex::open(&log.dir).unwrap());
        remove_index_files(&log.dir.join(INDEX_FILE));
        let rebuilt = SessionIndex::open(&log.dir).unwrap();
        assert_eq!(rebuilt.opened().records, 14);
        assert_eq!(dump(&rebuilt), before);
        drop(rebuilt);

        // More records later: a reopen applies only them, and the result is what a fresh
        // build gives.
        log.push(
            T0 + 4000 * SEC,
            &stmt(
                3,
                2,
                "UPDATE t SET a = 1",
                "write",
                "allow",
                T0 + 4000 * SEC,
            ),
        );
        log.push(T0 + 4000 * SEC, &result(3, 2, 0, 7, T0 + 4000 * SEC));
        log.rotate();
        log.push(T0 + 4001 * SEC, &end(3, 2, 0, 0, 18));
        log.flush();
        let again = SessionIndex::open(&log.dir).unwrap();
        assert_eq!(again.opened().records, 3);
        assert!(!again.opened().rebuilt);
        let incremental = dump(&again);
        drop(again);
        remove_index_files(&log.dir.join(INDEX_FILE));
        let fresh = SessionIndex::open(&log.dir).unwrap();
        assert_eq!(fresh.opened().records, 17);
        assert_eq!(dump(&fresh), incremental);
        let s3 = fresh.session(3).unwrap().unwrap();
        assert_eq!((s3.statements, s3.bytes), (2, 18));
        assert_eq!(kind_names(s3.kinds), ["write", "ddl"]);
    }

    #[test]
    fn an_index_of_another_log_is_rebuilt() {
        let mut log = TestLog::new("index-replaced");
        sample(&mut log);
        let index = SessionIndex::open(&log.dir).unwrap();
        drop(index);
        let keep = log.dir.join(INDEX_FILE);
        let kept = log.dir.with_extension("keep");
        std::fs::copy(&keep, &kept).unwrap();
        // Another log in the same directory: same seqs, other times and sessions.
        let dir = log.dir.clone();
        drop(log);
        let mut other = TestLog::new("index-replaced-2");
        other.push(T0 + 7, &start(9, "dave", "primary"));
        other.flush();
        for entry in std::fs::read_dir(&other.dir).unwrap() {
            let p = entry.unwrap().path();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
        std::fs::copy(&kept, dir.join(INDEX_FILE)).unwrap();
        let index = SessionIndex::open(&dir).unwrap();
        assert!(index.opened().rebuilt);
        assert_eq!(
            ids(&index.sessions(&SessionFilter::default()).unwrap()),
            [9]
        );
        drop(index);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&kept);
    }

    fn at(log: &TestLog, seq: u64) -> RecordAt {
        let r = log.records.iter().find(|r| r.0 == seq).unwrap();
        RecordAt {
            seq,
            segment_first_seq: r.1,
            offset: r.2,
            time_ns: r.3,
        }
    }

    #[test]
    fn as_an_observer_it_applies_what_is_durable_once() {
        let mut log = TestLog::new("index-observer");
        log.push(T0, &start(1, "alice", "primary"));
        log.flush();
        let mut index = SessionIndex::open(&log.dir).unwrap();
        let payloads = [
            stmt(1, 1, "SELECT 1", "read", "allow", T0 + SEC),
            result(1, 1, 3, 30, T0 + SEC),
            stmt(
                1,
                2,
                "INSERT INTO t VALUES (1)",
                "write",
                "allow",
                T0 + 2 * SEC,
            ),
            end(1, 2, 0, 3, 30),
        ];
        for (i, p) in payloads.iter().enumerate() {
            let seq = log.push(T0 + (i as i64 + 1) * SEC, p);
            index.observe(at(&log, seq), &serde_json::from_value(p.clone()).unwrap());
        }
        log.flush();
        // Only records up to the durable seq are applied.
        index.committed(3);
        index.sync();
        let s = index.session(1).unwrap().unwrap();
        assert_eq!((s.statements, s.rows, s.end_reason), (1, 3, None));
        assert_eq!(index.indexed_through().unwrap(), 3);
        // The CLI catches up meanwhile (it reads the segments): nothing is counted twice.
        let cli = SessionIndex::open(&log.dir).unwrap();
        assert_eq!(cli.opened().records, 2);
        index.committed(5);
        index.sync();
        let s = index.session(1).unwrap().unwrap();
        assert_eq!((s.statements, s.rows), (2, 3));
        assert_eq!(s.end_reason.as_deref(), Some("client_quit"));
        assert_eq!(index.indexed_through().unwrap(), 5);
        assert!(index.pending.is_empty());
        // What the observer built is what a build from the segments gives.
        let observed = dump(&index);
        drop((index, cli));
        remove_index_files(&log.dir.join(INDEX_FILE));
        assert_eq!(dump(&SessionIndex::open(&log.dir).unwrap()), observed);
    }

    #[test]
    fn an_observer_that_missed_records_catches_up_from_the_segments() {
        let mut log = TestLog::new("index-gap");
        log.push(T0, &start(1, "alice", "primary"));
        log.flush();
        let mut index = SessionIndex::open(&log.dir).unwrap();
        // Records 2 and 3 are written but never observed (e.g. dropped while the index
        // thread was behind).
        log.push(T0 + SEC, &stmt(1, 1, "SELECT 1", "read", "allow", T0 + SEC));
        log.push(T0 + SEC, &result(1, 1, 3, 30, T0 + SEC));
        let p = end(1, 1, 0, 3, 30);
        let seq = log.push(T0 + 2 * SEC, &p);
        log.flush();
        index.observe(at(&log, seq), &serde_json::from_value(p).unwrap());
        index.committed(seq);
        index.sync();
        let s = index.session(1).unwrap().unwrap();
        assert_eq!((s.statements, s.rows), (1, 3));
        assert_eq!(s.end_reason.as_deref(), Some("client_quit"));
        assert_eq!(index.indexed_through().unwrap(), 4);
    }

    #[test]
    fn the_recorder_index_catches_up_in_the_background() {
        let mut log = TestLog::new("index-for-recorder");
        sample(&mut log);
        // A damaged index file is replaced.
        std::fs::write(log.dir.join(INDEX_FILE), b"not a database, not at all").unwrap();
        let mut index = SessionIndex::for_recorder(&log.dir);
        assert!(index.sessions(&SessionFilter::default()).is_err());
        let p = end(3, 1, 0, 0, 11);
        let seq = log.push(T0 + 3700 * SEC, &p);
        log.flush();
        index.observe(at(&log, seq), &serde_json::from_value(p).unwrap());
        index.committed(seq);
        drop(index); // applies everything committed, then stops
        let conn = open_conn(&log.dir.join(INDEX_FILE)).unwrap();
        assert_eq!(read_mark(&conn).unwrap().unwrap().seq, seq);
        let incremental = dump_conn(&conn);
        drop(conn);
        remove_index_files(&log.dir.join(INDEX_FILE));
        assert_eq!(dump(&SessionIndex::open(&log.dir).unwrap()), incremental);
    }

    #[test]
    fn while_a_gateway_writes_the_cli_indexes_only_what_is_durable() {
        let mut log = TestLog::new("index-durable");
        sample(&mut log);
        let status = |running: bool, updated_ns: i64| {
            let mut doc = serde_json::to_vec(&serde_json::json!({
                "running": running, "updated_ns": updated_ns, "durable_seq": 5, "health": "ok"
            }))
            .unwrap();
            doc.resize(4096, b' ');
            std::fs::write(log.dir.join("status.json"), doc).unwrap();
        };
        status(true, crate::record::now_ns());
        assert_eq!(
            SessionIndex::open(&log.dir)
                .unwrap()
                .indexed_through()
                .unwrap(),
            5
        );
        // A stopped (or long silent) gateway: everything on disk.
        status(false, crate::record::now_ns());
        assert_eq!(
            SessionIndex::open(&log.dir)
                .unwrap()
                .indexed_through()
                .unwrap(),
            14
        );
        status(true, crate::record::now_ns() - 60 * SEC);
        assert_eq!(
            SessionIndex::open(&log.dir)
                .unwrap()
                .indexed_through()
                .unwrap(),
            14
        );
    }

    #[test]
    fn a_damaged_record_stops_the_index_there() {
        let mut log = TestLog::new("index-damaged");
        sample(&mut log);
        // Flip a byte in the first segment's last record.
        let path = log.dir.join(format::segment_file_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let index = SessionIndex::open(&log.dir).unwrap();
        assert!(index.opened().problem.is_some());
        assert_eq!(index.indexed_through().unwrap(), 6);
    }
}
