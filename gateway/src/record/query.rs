//! `gatehouse sessions list|show`, `gatehouse audit export` and `gatehouse status`: reading
//! the audit log (through the [session index](super::index) where it helps).
//!
//! Times are printed in UTC. `--since` takes a duration back from now (`45s`, `30m`, `2h`,
//! `7d`, `1w`, or combinations like `1h30m`) or an RFC 3339 time (`2026-12-03T10:00:00Z`,
//! `2026-12-03T12:00:00+02:00`, or a date, `2026-12-03`, meaning its midnight UTC).

use std::io::{self, IsTerminal as _, Write};
use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;

use super::event::{CommandResult, Param, Payload, SessionEnd, SessionStart, Statement};
use super::format::{self, Kind};
use super::index::{self, SessionFilter, SessionIndex, SessionSummary};

/// Filters of `sessions list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Identity.
    pub identity: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// `2h` or RFC 3339.
    pub since: Option<String>,
    /// Statement kind.
    pub statement_kind: Option<String>,
    /// Max sessions.
    pub limit: usize,
}

/// The recorder's status file in the log directory.
pub const STATUS_FILE: &str = "status.json";
/// A status not updated for longer than this means the gateway is not running (or stuck).
const STALE_STATUS_NS: i64 = 5_000_000_000;

const NS_PER_SEC: i64 = 1_000_000_000;

// ----- time ------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Unix time in ns, broken down in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

impl Utc {
    fn from_ns(ns: i64) -> Utc {
        let secs = ns.div_euclid(NS_PER_SEC);
        let nanos = ns.rem_euclid(NS_PER_SEC) as u32;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400) as u32;
        Utc {
            year,
            month,
            day,
            hour: s / 3600,
            minute: s / 60 % 60,
            second: s % 60,
            nanos,
        }
    }

    fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    fn clock(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// `2026-12-03 10:00:00` (UTC).
pub fn format_utc(ns: i64) -> String {
    let t = Utc::from_ns(ns);
    format!("{} {}", t.date(), t.clock())
}

/// `2026-12-03 10:00:00.123456` (UTC, microseconds).
fn format_utc_micros(ns: i64) -> String {
    let t = Utc::from_ns(ns);
    format!("{} {}.{:06}", t.date(), t.clock(), t.nanos / 1000)
}

/// RFC 3339 with nanoseconds: `2026-12-03T10:00:00.123456789Z`.
pub fn format_rfc3339(ns: i64) -> String {
    let t = Utc::from_ns(ns);
    format!("{}T{}.{:09}Z", t.date(), t.clock(), t.nanos)
}

/// Parses an RFC 3339 time (`2026-12-03T10:00:00Z`, fractions and offsets allowed; a space
/// may replace the `T`) or a date (`2026-12-03`, midnight UTC), to Unix ns.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time (like 2026-12-03T10:00:00Z)");
    let b = s.trim().as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let digits = b.get(from..from + len).ok_or_else(bad)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, c: u8| -> Result<(), String> {
        (b.get(at) == Some(&c)).then_some(()).ok_or_else(bad)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b'-')?;
    sep(7, b'-')?;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month {
        return Err(bad());
    }
    let days = days_from_civil(year, month as u32, day as u32);
    if b.len() == 10 {
        return Ok(days * 86_400 * NS_PER_SEC);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(bad());
    }
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b':')?;
    sep(16, b':')?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return Err(bad());
        }
        for _ in (at - start)..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') if b.len() == at + 1 => 0,
        Some(&c @ (b'+' | b'-')) if b.len() == at + 6 => {
            sep(at + 3, b':')?;
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let o = oh * 3600 + om * 60;
            if c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad()),
    };
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Ok(secs * NS_PER_SEC + nanos)
}

/// Parses a duration: `45s`, `30m`, `2h`, `7d`, `1w`, `500ms`, or several (`1h30m`), to ns.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration (like 45s, 30m, 2h, 7d)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit: i64 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => NS_PER_SEC,
            "m" | "min" => 60 * NS_PER_SEC,
            "h" => 3600 * NS_PER_SEC,
            "d" => 86_400 * NS_PER_SEC,
            "w" => 7 * 86_400 * NS_PER_SEC,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// `--since`: a duration back from `now_ns`, or an RFC 3339 time.
pub fn parse_since(s: &str, now_ns: i64) -> Result<i64, String> {
    if s.trim().starts_with(|c: char| c.is_ascii_digit())
        && s.trim().ends_with(|c: char| c.is_ascii_alphabetic())
        && !s.contains('-')
    {
        if let Ok(d) = parse_duration(s) {
            return Ok(now_ns.saturating_sub(d));
        }
    }
    parse_rfc3339(s).map_err(|_| {
        format!(
            "--since {s:?}: expected a duration back from now (45s, 30m, 2h, 7d) or an RFC 3339 \
             time (2026-12-03T10:00:00Z)"
        )
    })
}

/// A duration for people: `850ms`, `12.3s`, `3m04s`, `2h05m`, `3d04h`.
fn format_duration(ns: i64) -> String {
    let ns = ns.max(0);
    let s = ns / NS_PER_SEC;
    if ns < NS_PER_SEC {
        format!("{}ms", ns / 1_000_000)
    } else if s < 60 {
        format!("{:.1}s", ns as f64 / 1e9)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s / 3600 % 24)
    }
}

/// A short span in ms: `1.234 ms`.
fn format_ms(ns: i64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

// ----- common ----------------------------------------------------------------------------------

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {msg}");
    ExitCode::FAILURE
}

/// The exit status after writing output: a closed pipe (`| head`) is not an error.
fn finish(r: io::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(format!("writing the output: {e}")),
    }
}

/// Opens the index (catching up with the log); in memory when the directory is not
/// writable.
fn open_index(dir: &Path) -> Result<SessionIndex, String> {
    if !dir.is_dir() {
        return Err(format!("{}: no such audit log directory", dir.display()));
    }
    let index = match SessionIndex::open(dir) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gatehouse: warning: {e}; reading the whole log instead");
            SessionIndex::open_in_memory(dir)?
        }
    };
    if let Some(p) = &index.opened().problem {
        eprintln!(
            "gatehouse: warning: damaged record in {p}: later records are not indexed \
             (run `gatehouse audit verify`)"
        );
    }
    Ok(index)
}

/// Resolves `sessions list` options against the clock.
pub fn session_filter(f: &ListFilter, now_ns: i64) -> Result<SessionFilter, String> {
    let since_ns = f
        .since
        .as_deref()
        .map(|s| parse_since(s, now_ns))
        .transpose()?;
    let mut kinds = 0;
    if let Some(k) = &f.statement_kind {
        for word in k.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            kinds |= index::kind_bit(&word.to_ascii_lowercase()).ok_or_else(|| {
                format!(
                    "--statement-kind {word:?}: unknown kind (one of {})",
                    index::STATEMENT_KINDS.join(", ")
                )
            })?;
        }
        if kinds == 0 {
            return Err(format!(
                "--statement-kind: name a kind (one of {})",
                index::STATEMENT_KINDS.join(", ")
            ));
        }
    }
    Ok(SessionFilter {
        identity: f.identity.clone(),
        target: f.target.clone(),
        since_ns,
        kinds,
        limit: f.limit,
    })
}

/// Appends one JSON line: `{"seq","time","time_ns"[,"hash"], ...payload fields}`. The payload
/// is spliced in as written (so its fields keep their order); one that is not a JSON object on
/// one line is re-encoded, or kept as base64 if it is not JSON at all.
fn json_line(
    out: &mut Vec<u8>,
    seq: u64,
    time_ns: i64,
    hash: Option<&format::Hash>,
    payload: &[u8],
) {
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(format_rfc3339(time_ns).as_bytes());
    out.extend_from_slice(b"\",\"time_ns\":");
    out.extend_from_slice(time_ns.to_string().as_bytes());
    if let Some(h) = hash {
        out.extend_from_slice(b",\"hash\":\"");
        out.extend_from_slice(hex::encode(h).as_bytes());
        out.push(b'"');
    }
    let trimmed = payload.trim_ascii();
    let object = trimmed.first() == Some(&b'{')
        && trimmed.last() == Some(&b'}')
        && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok();
    if object && !trimmed.iter().any(|&c| c == b'\n' || c == b'\r') {
        let inner = trimmed[1..trimmed.len() - 1].trim_ascii();
        if !inner.is_empty() {
            out.push(b',');
            out.extend_from_slice(inner);
        }
    } else if object {
        let v: serde_json::Value = serde_json::from_slice(trimmed).expect("checked");
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                out.push(b',');
                out.extend_from_slice(serde_json::to_string(&k).expect("string").as_bytes());
                out.push(b':');
                out.extend_from_slice(v.to_string().as_bytes());
            }
        }
    } else {
        out.extend_from_slice(b",\"payload_invalid\":true,\"payload_base64\":\"");
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(payload)
                .as_bytes(),
        );
        out.push(b'"');
    }
    out.extend_from_slice(b"}\n");
}

// ----- sessions list ---------------------------------------------------------------------------

/// `gatehouse sessions list`.
pub fn main_list(dir: &Path, filter: &ListFilter, json: bool) -> ExitCode {
    let filter = match session_filter(filter, super::now_ns()) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let index = match open_index(dir) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let sessions = match index.sessions(&filter) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut out = Vec::new();
    if json {
        for s in &sessions {
            out.extend_from_slice(session_json(s).to_string().as_bytes());
            out.push(b'\n');
        }
    } else {
        out = session_table(&sessions).into_bytes();
    }
    finish(io::stdout().lock().write_all(&out))
}

fn session_json(s: &SessionSummary) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": s.id,
        "identity": s.identity,
        "groups": s.groups,
        "auth": s.auth,
        "client": s.client,
        "listener": s.listener,
        "target": s.target,
        "tls": s.tls,
        "upstream_connection_id": s.upstream_connection_id,
        "started": format_rfc3339(s.started_ns),
        "started_ns": s.started_ns,
        "ended": s.ended_ns.map(format_rfc3339),
        "ended_ns": s.ended_ns,
        "end_reason": s.end_reason,
        "statements": s.statements,
        "refused": s.refused,
        "rows": s.rows,
        "bytes": s.bytes,
        "statement_kinds": index::kind_names(s.kinds),
        "first_seq": s.first_seq,
        "last_seq": s.last_seq,
    });
    if let Some(o) = &s.original_dst {
        v["original_dst"] = o.as_str().into();
    }
    if !s.changed_to.is_empty() {
        v["changed_to"] = s.changed_to.clone().into();
    }
    v
}

/// The table of `sessions list`.
fn session_table(sessions: &[SessionSummary]) -> String {
    const HEAD: [&str; 10] = [
        "ID", "STARTED", "DURATION", "IDENTITY", "TARGET", "CLIENT", "STMTS", "REFUSED", "ROWS",
        "END",
    ];
    const RIGHT: [bool; 10] = [
        true, false, true, false, false, false, true, true, true, false,
    ];
    let rows: Vec<[String; 10]> = sessions
        .iter()
        .map(|s| {
            let mut identity = s.identity.clone().unwrap_or_else(|| "?".into());
            for other in &s.changed_to {
                identity = format!("{identity}→{other}");
            }
            [
                s.id.to_string(),
                format_utc(s.started_ns),
                s.ended_ns
                    .map_or("-".into(), |e| format_duration(e - s.started_ns)),
                identity,
                s.target.clone().unwrap_or_else(|| "?".into()),
                s.client.clone().unwrap_or_else(|| "?".into()),
                s.statements.to_string(),
                s.refused.to_string(),
                s.rows.to_string(),
                s.end_reason.clone().unwrap_or_else(|| "open".into()),
            ]
        })
        .collect();
    let mut widths = HEAD.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                l.push_str("  ");
            }
            if RIGHT[i] {
                l.extend(std::iter::repeat_n(' ', pad));
                l.push_str(cell);
            } else {
                l.push_str(cell);
                if i + 1 < cells.len() {
                    l.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push_str(&l);
        out.push('\n');
    };
    line(&HEAD.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

// ----- sessions show ---------------------------------------------------------------------------

/// One record of a session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Its seq.
    pub seq: u64,
    /// Its time.
    pub time_ns: i64,
    /// Its payload.
    pub payload: Payload,
    /// The payload as stored.
    pub raw: Vec<u8>,
}

/// Whether a JSON payload has `"session": id` somewhere (a cheap test before parsing it).
fn mentions_session(payload: &[u8], id: u64) -> bool {
    const KEY: &[u8] = b"\"session\"";
    let mut rest = payload;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let mut i = 0;
        while rest
            .get(i)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b':')
        {
            i += 1;
        }
        let digits = rest[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0
            && std::str::from_utf8(&rest[i..i + digits])
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                == Some(id)
        {
            return true;
        }
    }
    false
}

/// The records of session `id`, in log order, using the index to find where they are.
/// `Ok(None)`: the index does not know the session.
pub fn session_records(
    index: &SessionIndex,
    id: u64,
) -> Result<Option<Vec<SessionRecord>>, String> {
    if index.session(id)?.is_none() {
        return Ok(None);
    }
    let dir = index.dir();
    let mut out = Vec::new();
    'segments: for (segment, first, last) in index.session_segments(id)? {
        let path = dir.join(format::segment_file_name(segment));
        let bytes = match index::read_segment_range(&path, first, last) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // pruned meanwhile
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        for (_, record) in format::Records::from_offset(&bytes, 0) {
            let Ok(record) = record else { break };
            let ours = matches!(
                Kind::from_u8(record.kind),
                Some(
                    Kind::SessionStart
                        | Kind::Statement
                        | Kind::Result
                        | Kind::SessionEnd
                        | Kind::Approval
                )
            ) && mentions_session(record.payload, id);
            if !ours {
                continue;
            }
            let Ok(payload) = serde_json::from_slice::<Payload>(record.payload) else {
                continue;
            };
            if payload.session() != Some(id) {
                continue;
            }
            let end = matches!(payload, Payload::SessionEnd(_));
            out.push(SessionRecord {
                seq: record.seq,
                time_ns: record.time_ns,
                payload,
                raw: record.payload.to_vec(),
            });
            if end {
                break 'segments;
            }
        }
    }
    Ok(Some(out))
}

/// `gatehouse sessions show`.
pub fn main_show(dir: &Path, id: u64, json: bool) -> ExitCode {
    let index = match open_index(dir) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let records = match session_records(&index, id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return fail(format!(
                "no session {id} in the audit log {}",
                dir.display()
            ))
        }
        Err(e) => return fail(e),
    };
    let mut out = Vec::new();
    if json {
        for r in &records {
            json_line(&mut out, r.seq, r.time_ns, None, &r.raw);
        }
    } else {
        let summary = match index.session(id) {
            Ok(Some(s)) => s,
            Ok(None) => return fail(format!("no session {id}")),
            Err(e) => return fail(e),
        };
        out = timeline(&summary, &records).into_bytes();
    }
    finish(io::stdout().lock().write_all(&out))
}

/// A parameter value as SQL-ish text.
fn param_text(p: &Param) -> String {
    use serde_json::Value;
    match &p.value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Object(o) if o.contains_key("long_data") => "<long data>".into(),
        Value::Object(o) => match o.get("base64").and_then(Value::as_str) {
            Some(b) => match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(bytes) => format!("x'{}'", hex::encode(bytes)),
                Err(_) => format!("<base64 {b}>"),
            },
            None => Value::Object(o.clone()).to_string(),
        },
        other => other.to_string(),
    }
}

/// Decodes a text-protocol row: length-encoded strings, `0xfb` for NULL.
fn decode_text_row(row: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let mut cells = Vec::new();
    let mut at = 0;
    while at < row.len() {
        let first = row[at];
        at += 1;
        let len = match first {
            0xfb => {
                cells.push(None);
                continue;
            }
            0xfc => {
                let b = row.get(at..at + 2)?;
                at += 2;
                u64::from(u16::from_le_bytes([b[0], b[1]]))
            }
            0xfd => {
                let b = row.get(at..at + 3)?;
                at += 3;
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
            }
            0xfe => {
                let b = row.get(at..at + 8)?;
                at += 8;
                u64::from_le_bytes(b.try_into().ok()?)
            }
            0xff => return None,
            n => u64::from(n),
        };
        let len = usize::try_from(len).ok()?;
        cells.push(Some(row.get(at..at.checked_add(len)?)?));
        at += len;
    }
    Some(cells)
}

fn cell_text(cell: Option<&[u8]>) -> String {
    match cell {
        None => "NULL".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if s.chars().count() > 60 => {
                format!("{}…", s.chars().take(60).collect::<String>())
            }
            Ok(s) => s.replace('\n', "\\n"),
            Err(_) if b.len() > 30 => format!("0x{}…", hex::encode(&b[..30])),
            Err(_) => format!("0x{}", hex::encode(b)),
        },
    }
}

/// One command of the timeline: its statement and what came of it.
#[derive(Default)]
struct Command<'a> {
    statement: Option<(i64, &'a Statement)>,
    result: Option<(i64, &'a CommandResult)>,
    approvals: Vec<u64>,
}

/// The readable timeline of `sessions show`.
fn timeline(summary: &SessionSummary, records: &[SessionRecord]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let start: Option<(&SessionStart, i64)> = records.iter().find_map(|r| match &r.payload {
        Payload::SessionStart(s) if !s.change_user => Some((s, r.time_ns)),
        _ => None,
    });
    let end: Option<(&SessionEnd, i64)> = records.iter().find_map(|r| match &r.payload {
        Payload::SessionEnd(e) => Some((e, r.time_ns)),
        _ => None,
    });
    let t0 = start.map_or(summary.started_ns, |(_, t)| t);
    let start_day = Utc::from_ns(t0).date();

    let _ = writeln!(o, "session {}", summary.id);
    match start {
        Some((s, _)) => {
            let groups = if s.groups.is_empty() {
                String::new()
            } else {
                format!("  (groups: {})", s.groups.join(", "))
            };
            let _ = writeln!(o, "  identity    {}{groups}", s.identity);
            let _ = writeln!(o, "  auth        {}", s.auth);
            let dst = s
                .original_dst
                .as_ref()
                .map_or(String::new(), |d| format!(", original destination {d}"));
            let _ = writeln!(
                o,
                "  client      {} via listener {}{dst}",
                s.client, s.listener
            );
            let _ = writeln!(
                o,
                "  target      {} (upstream connection id {})",
                s.target, s.upstream_connection_id
            );
            let _ = writeln!(o, "  TLS         {}", s.tls.as_deref().unwrap_or("none"));
        }
        None => {
            let _ = writeln!(
                o,
                "  (its session_start record is not in the log any more: pruned)"
            );
        }
    }
    let _ = writeln!(o, "  started     {} UTC", format_utc_micros(t0));
    match end {
        Some((e, t)) => {
            let detail = e
                .detail
                .as_ref()
                .map_or(String::new(), |d| format!(" ({d})"));
            let _ = writeln!(
                o,
                "  ended       {} UTC, after {}: {}{detail}",
                format_utc_micros(t),
                format_duration(t - t0),
                e.reason
            );
            let _ = writeln!(
                o,
                "  totals      {} statements ({} refused), {} rows, {} bytes",
                e.statements, e.refused, e.rows, e.bytes
            );
        }
        None => {
            let _ = writeln!(o, "  ended       not yet (open, or the gateway stopped)");
            let _ = writeln!(
                o,
                "  totals      {} statements ({} refused), {} rows, {} bytes so far",
                summary.statements, summary.refused, summary.rows, summary.bytes
            );
        }
    }
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        let _ = writeln!(
            o,
            "  records     {} (seq {} to {})",
            records.len(),
            first.seq,
            last.seq
        );
    }

    // Group statements and results by command number, in the order commands arrived; other
    // events (change of user) are shown where they happened.
    enum Line<'a> {
        Command(u64),
        ChangeUser(i64, &'a SessionStart),
    }
    let mut commands: std::collections::BTreeMap<u64, Command<'_>> = Default::default();
    let mut lines: Vec<Line<'_>> = Vec::new();
    for r in records {
        match &r.payload {
            Payload::Statement(s) => {
                let c = commands.entry(s.n).or_default();
                if c.statement.is_none() && c.result.is_none() && c.approvals.is_empty() {
                    lines.push(Line::Command(s.n));
                }
                c.statement = Some((r.time_ns, s));
            }
            Payload::Result(res) => {
                let c = commands.entry(res.n).or_default();
                if c.statement.is_none() && c.result.is_none() && c.approvals.is_empty() {
                    lines.push(Line::Command(res.n));
                }
                c.result = Some((r.time_ns, res));
            }
            Payload::Approval(a) => commands
                .entry(a.n)
                .or_default()
                .approvals
                .push(a.request_id),
            Payload::SessionStart(s) if s.change_user => lines.push(Line::ChangeUser(r.time_ns, s)),
            _ => {}
        }
    }
    let when = |t: i64| {
        let rel = t - t0;
        let rel = if rel.abs() < NS_PER_SEC {
            format!("+{}", format_ms(rel))
        } else {
            format!("+{:.3} s", rel as f64 / 1e9)
        };
        let u = Utc::from_ns(t);
        let abs = if u.date() == start_day {
            format!("{}.{:06}", u.clock(), u.nanos / 1000)
        } else {
            format_utc_micros(t)
        };
        format!("{rel}  {abs}")
    };
    for line in lines {
        o.push('\n');
        let n = match line {
            Line::ChangeUser(t, s) => {
                let _ = writeln!(
                    o,
                    "{}  COM_CHANGE_USER → {} ({}, groups: {})",
                    when(t),
                    s.identity,
                    s.auth,
                    s.groups.join(", ")
                );
                continue;
            }
            Line::Command(n) => n,
        };
        let c = &commands[&n];
        let Some((t, s)) = c.statement else {
            if let Some((t, r)) = c.result {
                let _ = writeln!(o, "#{n}  {}  (result without its statement)", when(t));
                result_lines(&mut o, r, None, false);
            }
            continue;
        };
        let t = if s.received_ns != 0 { s.received_ns } else { t };
        let mut head = format!("#{n}  {}  {}", when(t), s.command);
        if let Some(k) = &s.kind {
            head += &format!("  [{k}]");
        }
        if let Some(db) = &s.database {
            head += &format!("  db {db}");
        }
        let _ = writeln!(o, "{head}");
        // What was sent.
        let sql = s.sql.clone().or_else(|| {
            s.sql_base64.as_ref().map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_else(|_| format!("<base64 {b}>"))
            })
        });
        if let Some(params) = &s.params {
            let values: Vec<String> = params.iter().map(param_text).collect();
            let id = s.stmt_id.map_or(String::new(), |i| format!(" {i}"));
            let _ = writeln!(o, "    EXECUTE stmt{id} ({})", values.join(", "));
            if let Some(sql) = &sql {
                let _ = writeln!(o, "      prepared: {}", indent(sql, "                "));
            }
        } else if let Some(sql) = &sql {
            let _ = writeln!(o, "    {}", indent(sql, "    "));
        } else if let Some(id) = s.stmt_id {
            let _ = writeln!(o, "    statement {id}");
        }
        if let Some(a) = &s.argument {
            let _ = writeln!(o, "    argument: {a}");
        }
        if let Some(ld) = &s.long_data {
            let _ = writeln!(
                o,
                "    long data for parameter {}: {} bytes",
                ld.param, ld.bytes
            );
        }
        // The decision.
        let mut decision = s.decision.clone();
        let rules: Vec<String> = s
            .rules
            .iter()
            .map(|r| {
                let mut t = r.action.clone();
                match &r.rule {
                    Some(rule) => t += &format!(" rule {rule}"),
                    None => t += " (grant)",
                }
                if let Some(role) = &r.role {
                    t += &format!(", role {role}");
                }
                if r.audit {
                    t += " [audit only]";
                }
                t
            })
            .collect();
        if !rules.is_empty() {
            decision += &format!(": {}", rules.join("; "));
        }
        if let Some(e) = &s.error {
            decision += &format!("  → ERR {}: {}", e.code, e.message);
        }
        for id in &c.approvals {
            decision += &format!("  (approval request {id})");
        }
        let _ = writeln!(o, "    decision  {decision}");
        if let Some((_, r)) = c.result {
            let binary = s.command == "COM_STMT_EXECUTE";
            result_lines(&mut o, r, Some(t), binary);
        }
        if let Some(d) = &s.digest {
            let _ = writeln!(o, "    digest    {d}");
        }
    }
    o
}

fn indent(text: &str, by: &str) -> String {
    text.trim_end().replace('\n', &format!("\n{by}"))
}

fn result_lines(o: &mut String, r: &CommandResult, received_ns: Option<i64>, binary: bool) {
    use std::fmt::Write as _;
    let mut parts = vec![
        format!("{} rows", r.rows),
        format!("{} affected", r.affected_rows),
        format!("{} warnings", r.warnings),
    ];
    if let Some(e) = r.error {
        parts.push(format!("server error {e}"));
    }
    if let Some(t) = received_ns {
        parts.push(format!("{} total", format_ms(r.done_ns - t)));
    }
    if let Some(fb) = r.first_byte_ns {
        parts.push(format!("{} to first byte", format_ms(fb - r.forwarded_ns)));
    }
    parts.push(format!("{} bytes", r.bytes));
    if r.result_sets > 1 {
        parts.push(format!("{} result sets", r.result_sets));
    }
    if let Some(id) = r.prepared_stmt_id {
        parts.push(format!("prepared as statement {id}"));
    }
    if let Some(h) = &r.result_hash {
        parts.push(format!("hash {}", &h[..h.len().min(12)]));
    }
    let _ = writeln!(o, "    result    {}", parts.join(", "));
    let Some(rows) = &r.rows_base64 else { return };
    let decoded: Vec<Vec<u8>> = rows
        .iter()
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .collect();
    let truncated = if r.capture_truncated {
        " (capture truncated)"
    } else {
        ""
    };
    if binary {
        let _ = writeln!(o, "    captured  {} binary rows{truncated}", decoded.len());
        for row in decoded.iter().take(10) {
            let hex = hex::encode(&row[..row.len().min(32)]);
            let more = if row.len() > 32 { "…" } else { "" };
            let _ = writeln!(o, "      {} bytes: {hex}{more}", row.len());
        }
    } else {
        let _ = writeln!(o, "    captured  {} rows{truncated}", decoded.len());
        for row in decoded.iter().take(10) {
            match decode_text_row(row) {
                Some(cells) => {
                    let cells: Vec<String> = cells.into_iter().map(cell_text).collect();
                    let _ = writeln!(o, "      | {} |", cells.join(" | "));
                }
                None => {
                    let _ = writeln!(o, "      {} bytes: {}", row.len(), hex::encode(row));
                }
            }
        }
    }
    if decoded.len() > 10 {
        let _ = writeln!(o, "      … {} more", decoded.len() - 10);
    }
}

// ----- audit export ----------------------------------------------------------------------------

/// `gatehouse audit export`.
pub fn main_export(
    dir: &Path,
    format: &str,
    since: Option<&str>,
    output: Option<&Path>,
) -> ExitCode {
    if format != "jsonl" {
        return fail(format!(
            "--format {format:?}: unknown format (jsonl is the only one)"
        ));
    }
    let since_ns = match since.map(|s| parse_since(s, super::now_ns())).transpose() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if !dir.is_dir() {
        return fail(format!("{}: no such audit log directory", dir.display()));
    }
    let mut sink: Box<dyn Write> = match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(io::BufWriter::with_capacity(1 << 20, f)),
            Err(e) => return fail(format!("{}: {e}", path.display())),
        },
        None => Box::new(io::BufWriter::with_capacity(1 << 20, io::stdout().lock())),
    };
    let progress = io::stderr().is_terminal();
    match export(dir, since_ns, &mut sink, progress) {
        Ok(problems) => {
            let flushed = finish(sink.flush());
            if problems.is_empty() {
                flushed
            } else {
                for p in problems {
                    eprintln!("gatehouse: {p}");
                }
                eprintln!(
                    "gatehouse: the export skipped damaged records (run `gatehouse audit verify`)"
                );
                ExitCode::FAILURE
            }
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Writes every record (at or after `since_ns`) as a JSON line to `out`; returns the damaged
/// places it had to skip.
pub fn export(
    dir: &Path,
    since_ns: Option<i64>,
    out: &mut dyn Write,
    progress: bool,
) -> io::Result<Vec<String>> {
    let segments = format::segment_paths(dir)?;
    // With --since, whole segments that end before it are skipped (the index knows each
    // segment's latest record time). The last segment is always read: it may have grown.
    let mut skip = std::collections::HashSet::new();
    if let Some(since) = since_ns {
        if let Ok(index) = SessionIndex::open(dir).or_else(|_| SessionIndex::open_in_memory(dir)) {
            if let Ok(spans) = index.segment_spans() {
                // Only segments the index has whole: a later segment follows their last
                // indexed record.
                for s in spans {
                    let next = segments.iter().map(|(f, _)| *f).find(|f| *f > s.first_seq);
                    if s.max_time_ns < since && next == Some(s.last_seq + 1) {
                        skip.insert(s.first_seq);
                    }
                }
            }
        }
    }
    let todo: Vec<_> = segments
        .into_iter()
        .filter(|(first, _)| !skip.contains(first))
        .collect();
    let total: u64 = todo
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "exporting [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut problems = Vec::new();
    let mut buf = Vec::with_capacity(1 << 20);
    let last = todo.len().saturating_sub(1);
    for (i, (_, path)) in todo.iter().enumerate() {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // pruned meanwhile
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        if let Err(e) = format::SegmentHeader::decode(&bytes) {
            problems.push(format!("{}: {e}", path.display()));
            continue;
        }
        let mut done = 0;
        for (at, record) in format::Records::new(&bytes) {
            let record = match record {
                Ok(r) => r,
                Err(format::FormatError::Truncated { .. }) if i == last => break,
                Err(e) => {
                    problems.push(format!("{} at offset {at}: {e}", path.display()));
                    break;
                }
            };
            if since_ns.is_none_or(|s| record.time_ns >= s) {
                json_line(
                    &mut buf,
                    record.seq,
                    record.time_ns,
                    Some(&record.hash()),
                    record.payload,
                );
                if buf.len() >= 1 << 20 {
                    out.write_all(&buf)?;
                    buf.clear();
                    bar.inc((at - done) as u64);
                    done = at;
                }
            }
        }
        out.write_all(&buf)?;
        buf.clear();
        bar.inc((bytes.len() - done) as u64);
    }
    bar.finish_and_clear();
    out.flush()?;
    Ok(problems)
}

// ----- status ----------------------------------------------------------------------------------

/// The text of `gatehouse status` for a status document, and whether all is well (healthy
/// and fresh).
pub fn status_report(v: &serde_json::Value, now_ns: i64) -> (String, bool) {
    use std::fmt::Write as _;
    let mut o = String::new();
    let int = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
    let text = |k: &str| {
        v.get(k).map_or("?".to_owned(), |x| match x {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let mut ok = true;
    let health = v
        .get("health")
        .and_then(|h| h.as_str())
        .unwrap_or("unknown");
    if health == "ok" {
        let _ = writeln!(o, "recorder:    OK");
    } else {
        ok = false;
        let since = int("failing_since_ns").map_or(String::new(), |s| {
            format!(
                " since {} UTC ({} ago)",
                format_utc(s),
                format_duration(now_ns - s)
            )
        });
        let error = v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no error given");
        let _ = writeln!(
            o,
            "recorder:    {}{since}: {error}",
            health.to_ascii_uppercase()
        );
        if health == "failing" {
            let _ = writeln!(
                o,
                "             statements are refused until the audit log can be written again"
            );
        }
    }
    let _ = writeln!(
        o,
        "pid:         {} (version {})",
        text("pid"),
        text("version")
    );
    let stopped = v.get("running").and_then(serde_json::Value::as_bool) == Some(false);
    match int("updated_ns") {
        Some(t) if stopped => {
            ok = false;
            let _ = writeln!(
                o,
                "updated:     {} UTC: the gateway stopped then (this is its last status)",
                format_utc(t)
            );
        }
        Some(t) if now_ns - t > STALE_STATUS_NS => {
            ok = false;
            let running = int("pid").map(|pid| Path::new(&format!("/proc/{pid}")).exists());
            let hint = match running {
                Some(false) => " (no process with that pid)",
                _ => "",
            };
            let _ = writeln!(
                o,
                "updated:     {} UTC: not updated for {} s: is the gateway running?{hint}",
                format_utc(t),
                (now_ns - t) / NS_PER_SEC
            );
        }
        Some(t) => {
            let _ = writeln!(
                o,
                "updated:     {} UTC ({} ago)",
                format_utc(t),
                format_duration(now_ns - t)
            );
        }
        None => {
            ok = false;
            let _ = writeln!(o, "updated:     unknown (no updated_ns)");
        }
    }
    let _ = writeln!(
        o,
        "records:     last seq {}, durable through {}",
        text("last_seq"),
        text("durable_seq")
    );
    let _ = writeln!(
        o,
        "queue:       {} / {}",
        text("queued"),
        text("queue_capacity")
    );
    let current = v.get("current_segment").map_or(String::new(), |c| match c {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => format!(" (writing {s})"),
        other => format!(" (writing {other})"),
    });
    let segments = match v.get("segments") {
        Some(serde_json::Value::Array(a)) => a.len().to_string(),
        _ => text("segments"),
    };
    let _ = writeln!(o, "segments:    {segments}{current}");
    let _ = writeln!(o, "durability:  {}", text("durability"));
    (o, ok)
}

/// `gatehouse status`.
pub fn main_status(dir: &Path) -> ExitCode {
    let path = dir.join(STATUS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return fail(format!(
                "{}: no recorder status: the gateway has not recorded to {} yet",
                path.display(),
                dir.display()
            ))
        }
        Err(e) => return fail(format!("{}: {e}", path.display())),
    };
    // The recorder rewrites the file in place: padding may follow the document.
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
        .map_or(0, |i| i + 1);
    let v: serde_json::Value = match serde_json::from_slice(&bytes[..end]) {
        Ok(v) => v,
        Err(e) => return fail(format!("{}: not a status document: {e}", path.display())),
    };
    let (text, ok) = status_report(&v, super::now_ns());
    let mut out = format!("audit log:   {}\n", dir.display());
    out += &text;
    let written = finish(io::stdout().lock().write_all(out.as_bytes()));
    if ok {
        written
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::index::testlog::*;
    use serde_json::json;

    const T0: i64 = 1_800_000_000 * 1_000_000_000;
    const SEC: i64 = 1_000_000_000;

    #[test]
    fn dates_round_trip_through_the_civil_calendar() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(
            format_rfc3339(1_234_567_891),
            "1970-01-01T00:00:01.234567891Z"
        );
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59");
        for (text, secs) in [
            ("2026-12-03T10:00:00Z", 1_796_292_000i64),
            ("2000-02-29T00:00:00Z", 951_782_400),
            ("2024-12-31T23:59:59Z", 1_735_689_599),
            ("1969-07-20T20:17:40Z", -14_182_940),
        ] {
            let ns = parse_rfc3339(text).unwrap();
            assert_eq!(ns, secs * SEC, "{text}");
            assert_eq!(format_rfc3339(ns), text.replace('Z', ".000000000Z"));
        }
        // Every day for 1000 years round-trips.
        for day in (-200_000i64..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(
            parse_rfc3339("2026-12-03T12:00:00.5+02:00").unwrap(),
            1_796_292_000 * SEC + SEC / 2
        );
        assert_eq!(
            parse_rfc3339("2026-12-03 10:00:00.000000001z").unwrap(),
            1_796_292_000 * SEC + 1
        );
        assert_eq!(
            parse_rfc3339("2026-12-03").unwrap(),
            (1_796_292_000 - 36_000) * SEC
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-03T10:00:00",
            "2026-12-03T25:00:00Z",
            "2026-12-03T10:00Z",
            "2026-12-03T10:00:00.Z",
            "yesterday",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_and_since() {
        assert_eq!(parse_duration("45s").unwrap(), 45 * SEC);
        assert_eq!(parse_duration("30m").unwrap(), 1800 * SEC);
        assert_eq!(parse_duration("2h").unwrap(), 7200 * SEC);
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86_400 * SEC);
        assert_eq!(parse_duration("1w").unwrap(), 7 * 86_400 * SEC);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400 * SEC);
        assert_eq!(parse_duration("250ms").unwrap(), SEC / 4);
        for bad in [
            "",
            "h",
            "2",
            "2x",
            "-2h",
            "2h-",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now = T0;
        assert_eq!(parse_since("2h", now).unwrap(), now - 7200 * SEC);
        assert_eq!(
            parse_since("2026-12-03T10:00:00Z", now).unwrap(),
            1_796_292_000 * SEC
        );
        let e = parse_since("soon", now).unwrap_err();
        assert!(e.contains("2h") && e.contains("RFC 3339"), "{e}");
        assert_eq!(format_duration(850_000_000), "850ms");
        assert_eq!(format_duration(12_340_000_000), "12.3s");
        assert_eq!(format_duration(184 * SEC), "3m04s");
        assert_eq!(format_duration(7500 * SEC), "2h05m");
        assert_eq!(format_duration(3 * 86_400 * SEC + 4 * 3600 * SEC), "3d04h");
    }

    #[test]
    fn list_options_resolve_to_a_filter() {
        let f = session_filter(
            &ListFilter {
                identity: Some("alice".into()),
                since: Some("30m".into()),
                statement_kind: Some("Write,ddl".into()),
                limit: 5,
                ..Default::default()
            },
            T0,
        )
        .unwrap();
        assert_eq!(f.since_ns, Some(T0 - 1800 * SEC));
        assert_eq!(
            f.kinds,
            index::kind_bit("write").unwrap() | index::kind_bit("ddl").unwrap()
        );
        assert_eq!(f.limit, 5);
        let e = session_filter(
            &ListFilter {
                statement_kind: Some("select".into()),
                ..Default::default()
            },
            T0,
        )
        .unwrap_err();
        assert!(
            e.contains("read, write, ddl, admin, session, transaction, other"),
            "{e}"
        );
    }

    /// Session 2 spans two segments, interleaved with sessions 1 and 3.
    fn interleaved(log: &mut TestLog) {
        log.push(T0, &start(1, "alice", "primary"));
        log.push(T0 + SEC, &start(2, "bob", "replica"));
        log.push(T0 + SEC, &stmt(1, 1, "SELECT 1", "read", "allow", T0 + SEC));
        let mut exec = stmt(
            2,
            1,
            "SELECT * FROM t WHERE id = ? AND name = ?",
            "read",
            "allow",
            T0 + 2 * SEC,
        );
        exec["command"] = "COM_STMT_EXECUTE".into();
        exec["stmt_id"] = 3.into();
        exec["params"] = json!([{"type": 3, "value": 42}, {"type": 15, "value": "x'y"}, {"type": 6, "value": null}]);
        log.push(T0 + 2 * SEC, &exec);
        log.push(T0 + 2 * SEC, &result(1, 1, 1, 10, T0 + 2 * SEC));
        log.rotate();
        let mut res = result(2, 1, 2, 99, T0 + 2 * SEC);
        // Two text rows: (1, 'héllo') and (NULL, '').
        let rows: [&[u8]; 2] = [b"\x011\x06h\xc3\xa9llo", b"\xfb\x00"];
        res["rows_base64"] = rows
            .iter()
            .map(|r| base64::engine::general_purpose::STANDARD.encode(r))
            .collect::<Vec<_>>()
            .into();
        log.push(T0 + 3 * SEC, &res);
        log.push(T0 + 3 * SEC, &start(3, "carol", "primary"));
        let mut refused = stmt(2, 2, "DROP TABLE t", "ddl", "refuse", T0 + 4 * SEC);
        refused["rules"] = json!([{"action": "deny", "rule": "no-ddl", "role": "reader"}]);
        refused["error"] = json!({"code": 1142, "message": "DROP denied by policy"});
        log.push(T0 + 4 * SEC, &refused);
        log.push(T0 + 5 * SEC, &end(2, 2, 1, 2, 99));
        log.push(
            T0 + 6 * SEC,
            &stmt(3, 1, "SELECT 2", "read", "allow", T0 + 6 * SEC),
        );
        log.push(T0 + 7 * SEC, &end(1, 1, 0, 1, 10));
        log.flush();
    }

    #[test]
    fn show_finds_a_session_across_segments() {
        let mut log = TestLog::new("query-show");
        interleaved(&mut log);
        let index = SessionIndex::open(&log.dir).unwrap();
        let records = session_records(&index, 2).unwrap().unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 4, 6, 8, 9]);
        assert!(records.iter().all(|r| r.payload.session() == Some(2)));
        assert!(session_records(&index, 77).unwrap().is_none());

        let summary = index.session(2).unwrap().unwrap();
        let text = timeline(&summary, &records);
        for want in [
            "session 2",
            "identity    bob  (groups: dev)",
            "target      replica (upstream connection id 1002)",
            "TLS         TLSv1.3",
            "client_quit",
            "2 statements (1 refused), 2 rows, 99 bytes",
            "#1  +1.000 s",
            "EXECUTE stmt 3 (42, 'x\\'y', NULL)",
            "prepared: SELECT * FROM t WHERE id = ? AND name = ?",
            "captured  2 binary rows",
            "#2  +3.000 s",
            "DROP TABLE t",
            "refuse: deny rule no-ddl, role reader  → ERR 1142: DROP denied by policy",
            "hash abababababab",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // Session 3 is open: to the end of the log.
        let open = session_records(&index, 3).unwrap().unwrap();
        assert_eq!(open.iter().map(|r| r.seq).collect::<Vec<_>>(), [7, 10]);
    }

    #[test]
    fn text_rows_decode_for_the_timeline() {
        let cells = decode_text_row(b"\x011\x06h\xc3\xa9llo\xfb\x00").unwrap();
        assert_eq!(
            cells,
            [
                Some(&b"1"[..]),
                Some("héllo".as_bytes()),
                None,
                Some(&b""[..])
            ]
        );
        let mut long = vec![0xfc, 0x2c, 0x01];
        long.extend(std::iter::repeat_n(b'a', 300));
        assert_eq!(decode_text_row(&long).unwrap()[0].unwrap().len(), 300);
        assert!(decode_text_row(b"\x05ab").is_none());
        let mut o = String::new();
        let mut r: CommandResult = serde_json::from_value(result(1, 1, 2, 9, T0)).unwrap();
        r.rows_base64 = Some(vec![
            base64::engine::general_purpose::STANDARD.encode(b"\x011\x06h\xc3\xa9llo"),
            base64::engine::general_purpose::STANDARD.encode(b"\xfb\x00"),
        ]);
        result_lines(&mut o, &r, Some(T0 - 1000), false);
        assert!(o.contains("| 1 | héllo |"), "{o}");
        assert!(o.contains("| NULL |  |"), "{o}");
        assert!(o.contains("0.003 ms total"), "{o}");
    }

    #[test]
    fn export_writes_one_json_object_per_record_with_its_hash() {
        let mut log = TestLog::new("query-export");
        interleaved(&mut log);
        let mut out = Vec::new();
        let problems = export(&log.dir, None, &mut out, false).unwrap();
        assert!(problems.is_empty());
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), log.records.len());
        // The hashes are the records' (BLAKE3 of the body as read back).
        let mut hashes = Vec::new();
        for (_, path) in format::segment_paths(&log.dir).unwrap() {
            let bytes = std::fs::read(path).unwrap();
            for (_, r) in format::Records::new(&bytes) {
                let r = r.unwrap();
                hashes.push((r.seq, hex::encode(r.hash())));
            }
        }
        for (line, (seq, hash)) in lines.iter().zip(&hashes) {
            assert_eq!(line["seq"], *seq);
            assert_eq!(line["hash"], *hash);
            let rec = log.records.iter().find(|r| r.0 == *seq).unwrap();
            assert_eq!(line["hash"], hex::encode(rec.4));
            assert_eq!(line["time_ns"], rec.3);
            assert_eq!(line["time"], format_rfc3339(rec.3));
            assert!(line["type"].is_string());
        }
        assert_eq!(lines[3]["type"], "statement");
        assert_eq!(lines[3]["params"][0]["value"], 42);
        assert_eq!(lines[3]["session"], 2);

        // --since: only records at or after it (and the first segment is skipped whole).
        let _ = SessionIndex::open(&log.dir).unwrap();
        let mut out = Vec::new();
        export(&log.dir, Some(T0 + 4 * SEC), &mut out, false).unwrap();
        let seqs: Vec<u64> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, [8, 9, 10, 11]);
    }

    #[test]
    fn json_lines_keep_odd_payloads() {
        let mut out = Vec::new();
        json_line(&mut out, 1, 0, None, b"{}");
        json_line(&mut out, 2, 0, None, b"{\n  \"type\": \"x\"\n}");
        json_line(&mut out, 3, 0, None, b"not json");
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            json!({"seq": 1, "time": "1970-01-01T00:00:00.000000000Z", "time_ns": 0})
        );
        assert_eq!(lines[1]["type"], "x");
        assert_eq!(lines[2]["payload_invalid"], true);
    }

    #[test]
    fn status_tells_health_and_staleness() {
        let now = T0;
        let healthy = json!({"pid": 1, "version": "0.1.0", "updated_ns": now - SEC,
            "health": "ok", "error": null, "failing_since_ns": null, "last_seq": 10,
            "durable_seq": 9, "queued": 1, "queue_capacity": 65536, "segments": 2,
            "current_segment": "00000000000000000007.seg", "durability": "batched"});
        let (text, ok) = status_report(&healthy, now);
        assert!(ok, "{text}");
        assert!(text.contains("recorder:    OK"), "{text}");
        assert!(text.contains("last seq 10, durable through 9"), "{text}");
        assert!(text.contains("queue:       1 / 65536"), "{text}");
        assert!(text.contains("durability:  batched"), "{text}");

        let mut stale = healthy.clone();
        stale["updated_ns"] = (now - 30 * SEC).into();
        let (text, ok) = status_report(&stale, now);
        assert!(!ok);
        assert!(
            text.contains("not updated for 30 s: is the gateway running?"),
            "{text}"
        );
        let mut stopped = healthy.clone();
        stopped["running"] = false.into();
        let (text, ok) = status_report(&stopped, now);
        assert!(!ok);
        assert!(text.contains("the gateway stopped"), "{text}");

        let mut failing = healthy.clone();
        failing["health"] = "failing".into();
        failing["error"] = "No space left on device".into();
        failing["failing_since_ns"] = (now - 90 * SEC).into();
        let (text, ok) = status_report(&failing, now);
        assert!(!ok);
        assert!(text.contains("FAILING since"), "{text}");
        assert!(
            text.contains("(1m30s ago): No space left on device"),
            "{text}"
        );
    }
}

/// `cargo test --release -p gatehouse --lib measure_a_million_records -- --ignored --nocapture`
#[cfg(test)]
mod measure {
    use std::time::Instant;

    use super::*;
    use crate::record::index::testlog::*;
    use crate::record::{Observer, RecordAt};

    const T0: i64 = 1_800_000_000 * 1_000_000_000;
    const MS: i64 = 1_000_000;
    const SESSIONS: u64 = 100_000;
    /// Statements per session (each with its result): 2 + 2 * 4 = 10 records a session.
    const STATEMENTS: u64 = 4;
    const CONCURRENT: u64 = 64;
    const SEGMENT: usize = 64 << 20;

    fn sql(session: u64, n: u64) -> (&'static str, &'static str) {
        match (session % 100, n) {
            (0, 1) => ("CREATE TABLE tmp_report (id bigint primary key, total decimal(12,2))", "ddl"),
            (1..=9, 2) => ("UPDATE orders SET status = 'shipped' WHERE id = 123456 AND status = 'paid'", "write"),
            _ => ("SELECT id, customer_id, total, created_at FROM orders WHERE customer_id = 4242 ORDER BY created_at DESC LIMIT 20", "read"),
        }
    }

    /// The records of the synthetic log, in order: `CONCURRENT` sessions at a time, their
    /// records interleaved round-robin.
    fn records(mut f: impl FnMut(i64, serde_json::Value)) {
        let mut t = T0;
        let mut next_session = 1u64;
        // (session, records emitted so far)
        let mut live: Vec<(u64, u64)> = Vec::new();
        while next_session <= SESSIONS || !live.is_empty() {
            while live.len() < CONCURRENT as usize && next_session <= SESSIONS {
                live.push((next_session, 0));
                next_session += 1;
            }
            let mut i = 0;
            while i < live.len() {
                let (s, k) = live[i];
                t += MS / 10;
                let identity = format!("user{}", s % 97);
                let target = ["primary", "replica", "analytics"][(s % 3) as usize];
                let payload = match k {
                    0 => start(s, &identity, target),
                    k if k <= 2 * STATEMENTS && k % 2 == 1 => {
                        let n = k.div_ceil(2);
                        let (q, kind) = sql(s, n);
                        stmt(
                            s,
                            n,
                            q,
                            kind,
                            if s % 50 == 7 { "refuse" } else { "allow" },
                            t,
                        )
                    }
                    k if k <= 2 * STATEMENTS => result(s, k / 2, 20, 2400, t),
                    _ => end(
                        s,
                        STATEMENTS,
                        u64::from(s % 50 == 7),
                        20 * STATEMENTS,
                        2400 * STATEMENTS,
                    ),
                };
                f(t, payload);
                if k > 2 * STATEMENTS {
                    live.swap_remove(i);
                } else {
                    live[i].1 += 1;
                    i += 1;
                }
            }
        }
    }

    #[test]
    #[ignore = "a measurement: run it on purpose, in release"]
    fn measure_a_million_records() {
        let mut log = TestLog::new("measure");
        let clock = Instant::now();
        let mut n = 0u64;
        let mut sessions_at = Vec::new();
        records(|t, p| {
            if log.segment_len() >= SEGMENT {
                log.rotate();
            }
            if p["type"] == "session_start" {
                sessions_at.push(t);
            }
            log.push(t, &p);
            n += 1;
        });
        log.flush();
        let bytes: u64 = format::segment_paths(&log.dir)
            .unwrap()
            .iter()
            .map(|(_, p)| std::fs::metadata(p).unwrap().len())
            .sum();
        let segments = format::segment_paths(&log.dir).unwrap().len();
        eprintln!(
            "log: {n} records, {SESSIONS} sessions, {segments} segments, {} MB, written in {:?}",
            bytes >> 20,
            clock.elapsed()
        );

        let clock = Instant::now();
        let index = SessionIndex::open(&log.dir).unwrap();
        let build = clock.elapsed();
        assert_eq!(index.opened().records, n);
        let size = std::fs::metadata(log.dir.join(index::INDEX_FILE))
            .unwrap()
            .len()
            + std::fs::metadata(log.dir.join("index.sqlite-wal")).map_or(0, |m| m.len());
        eprintln!(
            "index build (catch-up from nothing): {build:?} ({:.0} records/s), index {} MB",
            n as f64 / build.as_secs_f64(),
            size >> 20
        );
        drop(index);
        let clock = Instant::now();
        let index = SessionIndex::open(&log.dir).unwrap();
        eprintln!("reopen, nothing to catch up: {:?}", clock.elapsed());

        let now = *sessions_at.last().unwrap();
        let cases: Vec<(&str, ListFilter)> = vec![
            (
                "newest 100",
                ListFilter {
                    limit: 100,
                    ..Default::default()
                },
            ),
            (
                "identity user5, 100",
                ListFilter {
                    identity: Some("user5".into()),
                    limit: 100,
                    ..Default::default()
                },
            ),
            (
                "identity user5, all",
                ListFilter {
                    identity: Some("user5".into()),
                    limit: 0,
                    ..Default::default()
                },
            ),
            (
                "target analytics + kind ddl, 100",
                ListFilter {
                    target: Some("analytics".into()),
                    statement_kind: Some("ddl".into()),
                    limit: 100,
                    ..Default::default()
                },
            ),
            (
                "kind ddl, all",
                ListFilter {
                    statement_kind: Some("ddl".into()),
                    limit: 0,
                    ..Default::default()
                },
            ),
            (
                "since 2m, all",
                ListFilter {
                    since: Some("2m".into()),
                    limit: 0,
                    ..Default::default()
                },
            ),
            (
                "identity user5 + kind write + since 10m, 100",
                ListFilter {
                    identity: Some("user5".into()),
                    statement_kind: Some("write".into()),
                    since: Some("10m".into()),
                    limit: 100,
                    ..Default::default()
                },
            ),
        ];
        for (name, f) in cases {
            let filter = session_filter(&f, now).unwrap();
            let clock = Instant::now();
            let found = index.sessions(&filter).unwrap();
            let took = clock.elapsed();
            let table = session_table(&found);
            eprintln!(
                "list {name}: {} sessions in {took:?} (+ table {:?})",
                found.len(),
                clock.elapsed() - took
            );
            assert!(table.lines().count() == found.len() + 1);
        }
        for id in [SESSIONS / 2, SESSIONS] {
            let clock = Instant::now();
            let records = session_records(&index, id).unwrap().unwrap();
            let summary = index.session(id).unwrap().unwrap();
            let text = timeline(&summary, &records);
            eprintln!(
                "show {id}: {} records, {} lines in {:?}",
                records.len(),
                text.lines().count(),
                clock.elapsed()
            );
            assert_eq!(records.len() as u64, 2 + 2 * STATEMENTS);
        }
        drop(index);

        let clock = Instant::now();
        let mut sink = std::io::sink();
        export(&log.dir, None, &mut sink, false).unwrap();
        let took = clock.elapsed();
        eprintln!(
            "export all: {took:?} ({:.0} records/s, {:.0} MB/s)",
            n as f64 / took.as_secs_f64(),
            bytes as f64 / 1e6 / took.as_secs_f64()
        );

        // The observer path on the writer thread: observe each record, commit every 1000.
        let payloads: Vec<(i64, Payload)> = {
            let mut v = Vec::new();
            records(|t, p| {
                if v.len() < 200_000 {
                    v.push((t, serde_json::from_value(p).unwrap()));
                }
            });
            v
        };
        {
            // The per-record part alone (no commits: nothing leaves the writer thread).
            let scratch = TestLog::new("measure-observe-only");
            let mut idle = SessionIndex::for_recorder(&scratch.dir);
            let clock = Instant::now();
            for (i, (t, p)) in payloads.iter().enumerate() {
                let at = RecordAt {
                    seq: i as u64 + 1,
                    segment_first_seq: 1,
                    offset: 64,
                    time_ns: *t,
                };
                idle.observe(at, p);
            }
            let took = clock.elapsed();
            eprintln!(
                "observe alone: {:.0} ns/record",
                took.as_nanos() as f64 / payloads.len() as f64
            );
        }
        let empty = TestLog::new("measure-observer");
        let mut observer = SessionIndex::for_recorder(&empty.dir);
        let clock = Instant::now();
        let mut worst = std::time::Duration::ZERO;
        for (i, (t, p)) in payloads.iter().enumerate() {
            let seq = i as u64 + 1;
            let at = RecordAt {
                seq,
                segment_first_seq: 1,
                offset: 64 + seq * 300,
                time_ns: *t,
            };
            let c = Instant::now();
            observer.observe(at, p);
            if seq % 1000 == 0 {
                observer.committed(seq);
            }
            worst = worst.max(c.elapsed());
        }
        observer.committed(payloads.len() as u64);
        let writer = clock.elapsed();
        observer.sync();
        let total = clock.elapsed();
        drop(observer);
        let conn = rusqlite::Connection::open(empty.dir.join(index::INDEX_FILE)).unwrap();
        let through: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'indexed_through_seq'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(through as usize, payloads.len());
        eprintln!(
            "observer, {} records committed every 1000: on the writer thread {writer:?} \
             ({:.0} ns/record, worst call {worst:?}); applied by the index thread after {total:?} \
             ({:.0} records/s)",
            payloads.len(),
            writer.as_nanos() as f64 / payloads.len() as f64,
            payloads.len() as f64 / total.as_secs_f64()
        );
    }
}
