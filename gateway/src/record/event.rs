//! What is recorded: the in-memory [`Entry`] a session's driver hands to the recorder (cheap
//! to build on an I/O thread: owned bytes, no formatting), and the [`Payload`] the writer
//! thread turns it into — the JSON object stored in each record (see [`super::format`]).
//!
//! Work that can wait (decoding parameters, digests, hex) happens in [`Entry::into_payload`],
//! on the writer thread, off the hot path.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::format::Kind;
use crate::wire::binary::{parse_execute_params, BinaryValue, ColumnType};

/// A JSON payload: one record's content. The `type` field names the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// The gateway started.
    GatewayStart(GatewayStart),
    /// The gateway stopped cleanly.
    GatewayStop(GatewayStop),
    /// A client logged in (or switched identity).
    SessionStart(SessionStart),
    /// A command was received and decided, before anything was forwarded.
    Statement(Statement),
    /// A forwarded command's response ended.
    Result(CommandResult),
    /// A session ended.
    SessionEnd(SessionEnd),
    /// Retention removed the oldest segments.
    Pruned(Pruned),
    /// A command is held for approval.
    Approval(Approval),
}

impl Payload {
    /// The record kind byte for this payload.
    pub fn kind(&self) -> Kind {
        match self {
            Payload::GatewayStart(_) => Kind::GatewayStart,
            Payload::GatewayStop(_) => Kind::GatewayStop,
            Payload::SessionStart(_) => Kind::SessionStart,
            Payload::Statement(_) => Kind::Statement,
            Payload::Result(_) => Kind::Result,
            Payload::SessionEnd(_) => Kind::SessionEnd,
            Payload::Pruned(_) => Kind::Pruned,
            Payload::Approval(_) => Kind::Approval,
        }
    }

    /// The session the record belongs to, if any.
    pub fn session(&self) -> Option<u64> {
        match self {
            Payload::SessionStart(s) => Some(s.session),
            Payload::Statement(s) => Some(s.session),
            Payload::Result(r) => Some(r.session),
            Payload::SessionEnd(e) => Some(e.session),
            Payload::Approval(a) => Some(a.session),
            Payload::GatewayStart(_) | Payload::GatewayStop(_) | Payload::Pruned(_) => None,
        }
    }
}

/// `gateway_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStart {
    /// The gateway's version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// What recovery found when the previous run did not stop cleanly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovery>,
}

/// What opening the log after an unclean stop did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The last record of the previous run that survived.
    pub last_seq: u64,
    /// Bytes of a torn record cut from the end of the last segment.
    pub truncated_bytes: u64,
}

/// `gateway_stop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStop {
    /// Why (`shutdown`).
    pub reason: String,
}

/// `session_start`: who connected, from where, to what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    /// The gateway's session id (unique within the log).
    pub session: u64,
    /// The identity (gateway identity, or `user@address` in passthrough).
    pub identity: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How it authenticated (`gateway:caching_sha2_password`, `passthrough`, …).
    pub auth: String,
    /// The client's address.
    pub client: String,
    /// The address the client asked for, when it was steered (eBPF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_dst: Option<String>,
    /// The listener it connected to.
    pub listener: String,
    /// The target (upstream) name.
    pub target: String,
    /// The client's TLS (version and cipher suite), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// The upstream's connection id (its process list id).
    pub upstream_connection_id: u32,
    /// True when this start follows COM_CHANGE_USER inside an existing session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub change_user: bool,
}

/// One rule or grant that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleNote {
    /// `allow`, `deny`, `approve`, `mask`.
    pub action: String,
    /// The rule's name (absent: a grant, the default deny, or unanalysable SQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The role through which it applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// True for an audit-mode rule (logged, not enforced).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
}

/// An error sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorNote {
    /// MySQL error code.
    pub code: u16,
    /// The message.
    pub message: String,
}

/// One bound parameter of a prepared statement's execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The `MYSQL_TYPE_*` code it was sent with.
    #[serde(rename = "type")]
    pub type_code: u8,
    /// Sent as unsigned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsigned: bool,
    /// The value: `null`, a number, a string, or `{"base64": …}` for bytes that are not UTF-8.
    /// Temporal values are strings (`2024-01-31 12:00:00.000001`, `-1 02:03:04`).
    pub value: serde_json::Value,
}

/// `statement`: a command as received, and what the gateway decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Session id.
    pub session: u64,
    /// Command number within the session (1, 2, 3…); its `result` carries the same.
    pub n: u64,
    /// `COM_QUERY`, `COM_STMT_EXECUTE`, …
    pub command: String,
    /// The SQL (COM_QUERY, COM_STMT_PREPARE; for COM_STMT_EXECUTE the prepared SQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// The SQL, when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_base64: Option<String>,
    /// The prepared statement id (COM_STMT_*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stmt_id: Option<u32>,
    /// Bound parameter values (COM_STMT_EXECUTE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<Param>>,
    /// COM_STMT_SEND_LONG_DATA: the parameter index and the chunk (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_data: Option<LongData>,
    /// Other arguments (COM_INIT_DB's schema, COM_FIELD_LIST's table, KILL's id…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argument: Option<String>,
    /// The statement's digest (literals folded; 16 hex digits), when it could be lexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `read`, `write`, `ddl`, `admin`, `session`, `transaction`, `other` (from the first
    /// keyword; for filtering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The session's default database when it was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `allow`, `refuse` or `hold`.
    pub decision: String,
    /// The rules and grants that decided (empty without a policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleNote>,
    /// The error the client got instead (for `refuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorNote>,
    /// When it was received (Unix ns).
    pub received_ns: i64,
}

/// A COM_STMT_SEND_LONG_DATA chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongData {
    /// The parameter index.
    pub param: u16,
    /// The chunk's length.
    pub bytes: u64,
    /// The chunk (base64).
    pub data_base64: String,
}

/// `result`: how a forwarded command's response went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// Session id.
    pub session: u64,
    /// The command number (as in its `statement`).
    pub n: u64,
    /// When it was written upstream (Unix ns).
    pub forwarded_ns: i64,
    /// When the first byte of the response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ns: Option<i64>,
    /// When the response ended.
    pub done_ns: i64,
    /// Rows sent to the client.
    pub rows: u64,
    /// Result sets.
    pub result_sets: u32,
    /// Bytes sent to the client.
    pub bytes: u64,
    /// Affected rows.
    pub affected_rows: u64,
    /// Warnings.
    pub warnings: u16,
    /// Server error code, if the command failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<u16>,
    /// COM_STMT_PREPARE: the statement id the server assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared_stmt_id: Option<u32>,
    /// BLAKE3 of the rows as the client received them (see [`ResultHasher`]), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<String>,
    /// Captured row payloads, as sent to the client (base64), with `capture = "rows"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_base64: Option<Vec<String>>,
    /// More rows were returned than the capture limit kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture_truncated: bool,
}

/// `session_end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// Session id.
    pub session: u64,
    /// `client_quit`, `client_gone`, `upstream_gone`, `auth_failed`, `timeout`, `killed`,
    /// `expired`, `protocol_error`, `upstream_unavailable`, `shutdown`.
    pub reason: String,
    /// More about the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Commands received.
    pub statements: u64,
    /// Commands refused.
    pub refused: u64,
    /// Rows sent to the client.
    pub rows: u64,
    /// Bytes sent to the client in responses.
    pub bytes: u64,
}

/// `pruned`: retention removed segments (the chain now starts after them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// The removed segment files.
    pub segments: Vec<String>,
    /// The last seq they held.
    pub through_seq: u64,
    /// The hash of that record (hex): the anchor the remaining chain continues from.
    pub last_hash: String,
}

/// `approval`: a command is held for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Session id.
    pub session: u64,
    /// The command number.
    pub n: u64,
    /// The approval request id.
    pub request_id: u64,
}

// ----- what drivers hand over ----------------------------------------------------------------

/// One event for the recorder, as a driver builds it. `time_ns` is when it happened.
#[derive(Debug)]
pub struct Entry {
    /// When (Unix ns).
    pub time_ns: i64,
    /// What.
    pub what: EntryKind,
}

/// The events.
#[derive(Debug)]
pub enum EntryKind {
    /// Already in payload form (session start and end, approvals, gateway events).
    Ready(Box<Payload>),
    /// A received command (decoding deferred to the writer).
    Statement(Box<StatementEntry>),
    /// A finished response (hex deferred to the writer).
    Result(Box<ResultEntry>),
}

/// A received command, raw.
#[derive(Debug, Clone)]
pub struct StatementEntry {
    /// Session id.
    pub session: u64,
    /// Command number.
    pub n: u64,
    /// The command byte's name.
    pub command: &'static str,
    /// The SQL (shared with the session's prepared-statement table).
    pub sql: Option<Arc<[u8]>>,
    /// Statement id.
    pub stmt_id: Option<u32>,
    /// COM_STMT_EXECUTE's parameter block, with what is needed to decode it.
    pub params: Option<RawParams>,
    /// COM_STMT_SEND_LONG_DATA: parameter index and chunk.
    pub long_data: Option<(u16, Vec<u8>)>,
    /// Other arguments.
    pub argument: Option<String>,
    /// How the session lexes SQL (for the digest); `None`: unknown.
    pub mode: Option<crate::sql::Mode>,
    /// The default database.
    pub database: Option<String>,
    /// `allow`, `refuse`, `hold`.
    pub decision: &'static str,
    /// Rules and grants that decided.
    pub rules: Vec<RuleNote>,
    /// The error sent instead.
    pub error: Option<ErrorNote>,
}

/// COM_STMT_EXECUTE's parameters, undecoded.
#[derive(Debug, Clone)]
pub struct RawParams {
    /// The block after the fixed fields (null bitmap, bound flag, types, values).
    pub block: Vec<u8>,
    /// How many parameters the statement has.
    pub count: u16,
    /// Types bound by an earlier execute (when this one does not resend them).
    pub bound_types: Option<Arc<[(ColumnType, u8)]>>,
    /// Parameters whose value came with COM_STMT_SEND_LONG_DATA.
    pub long_data: Vec<bool>,
}

/// A finished response, raw.
#[derive(Debug)]
pub struct ResultEntry {
    /// Session id.
    pub session: u64,
    /// Command number.
    pub n: u64,
    /// Unix ns.
    pub forwarded_ns: i64,
    /// Unix ns.
    pub first_byte_ns: Option<i64>,
    /// Unix ns.
    pub done_ns: i64,
    /// Counters.
    pub rows: u64,
    /// Result sets.
    pub result_sets: u32,
    /// Bytes to the client.
    pub bytes: u64,
    /// Affected rows.
    pub affected_rows: u64,
    /// Warnings.
    pub warnings: u16,
    /// Server error.
    pub error: Option<u16>,
    /// COM_STMT_PREPARE's statement id.
    pub prepared_stmt_id: Option<u32>,
    /// BLAKE3 of the rows.
    pub result_hash: Option<[u8; 32]>,
    /// Captured rows.
    pub rows_captured: Option<Vec<Vec<u8>>>,
    /// Capture hit its limit.
    pub capture_truncated: bool,
}

impl Entry {
    /// An entry already in payload form.
    pub fn ready(time_ns: i64, payload: Payload) -> Entry {
        Entry {
            time_ns,
            what: EntryKind::Ready(Box::new(payload)),
        }
    }

    /// The payload to store (decodes parameters, computes the digest). Runs on the writer.
    pub fn into_payload(self) -> (i64, Payload) {
        let payload = match self.what {
            EntryKind::Ready(p) => *p,
            EntryKind::Statement(s) => Payload::Statement(s.into_statement(self.time_ns)),
            EntryKind::Result(r) => Payload::Result(r.into_result()),
        };
        (self.time_ns, payload)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl StatementEntry {
    fn into_statement(self, received_ns: i64) -> Statement {
        let (sql, sql_base64) = match &self.sql {
            None => (None, None),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => (Some(s.to_owned()), None),
                Err(_) => (None, Some(b64(bytes))),
            },
        };
        let (digest, kind) = match (&self.sql, self.mode) {
            (Some(bytes), Some(mode)) => (
                crate::sql::digest(bytes, mode)
                    .ok()
                    .map(|d| format!("{:016x}", d.hash())),
                Some(statement_kind(bytes, mode).to_owned()),
            ),
            (Some(bytes), None) => (
                None,
                Some(statement_kind(bytes, crate::sql::Mode::DEFAULT).to_owned()),
            ),
            (None, _) => (None, None),
        };
        Statement {
            session: self.session,
            n: self.n,
            command: self.command.to_owned(),
            sql,
            sql_base64,
            stmt_id: self.stmt_id,
            params: self.params.map(|p| decode_params(&p)),
            long_data: self.long_data.map(|(param, data)| LongData {
                param,
                bytes: data.len() as u64,
                data_base64: b64(&data),
            }),
            argument: self.argument,
            digest,
            kind,
            database: self.database,
            decision: self.decision.to_owned(),
            rules: self.rules,
            error: self.error,
            received_ns,
        }
    }
}

impl ResultEntry {
    fn into_result(self) -> CommandResult {
        CommandResult {
            session: self.session,
            n: self.n,
            forwarded_ns: self.forwarded_ns,
            first_byte_ns: self.first_byte_ns,
            done_ns: self.done_ns,
            rows: self.rows,
            result_sets: self.result_sets,
            bytes: self.bytes,
            affected_rows: self.affected_rows,
            warnings: self.warnings,
            error: self.error,
            prepared_stmt_id: self.prepared_stmt_id,
            result_hash: self.result_hash.map(hex::encode),
            rows_base64: self
                .rows_captured
                .map(|rows| rows.iter().map(|r| b64(r)).collect()),
            capture_truncated: self.capture_truncated,
        }
    }
}

/// A statement's kind from its first keyword (what `sessions list --statement-kind` filters
/// on; the policy's own classification is finer).
pub fn statement_kind(sql: &[u8], mode: crate::sql::Mode) -> &'static str {
    let first = crate::sql::lex(sql, mode)
        .next()
        .and_then(Result::ok)
        .map(|t| t.text.to_ascii_uppercase());
    let Some(word) = first else { return "other" };
    match &word[..] {
        b"SELECT" | b"SHOW" | b"DESCRIBE" | b"DESC" | b"EXPLAIN" | b"WITH" | b"TABLE"
        | b"VALUES" | b"HELP" | b"(" => "read",
        b"INSERT" | b"UPDATE" | b"DELETE" | b"REPLACE" | b"LOAD" | b"CALL" | b"DO" | b"HANDLER" => {
            "write"
        }
        b"CREATE" | b"ALTER" | b"DROP" | b"RENAME" | b"TRUNCATE" => "ddl",
        b"GRANT" | b"REVOKE" | b"KILL" | b"FLUSH" | b"SHUTDOWN" | b"INSTALL" | b"UNINSTALL"
        | b"ANALYZE" | b"OPTIMIZE" | b"REPAIR" | b"CHECK" | b"RESET" | b"PURGE" | b"CHANGE"
        | b"START" | b"STOP" => "admin",
        b"BEGIN" | b"COMMIT" | b"ROLLBACK" | b"SAVEPOINT" | b"RELEASE" | b"XA" | b"LOCK"
        | b"UNLOCK" => "transaction",
        b"SET" | b"USE" | b"PREPARE" | b"EXECUTE" | b"DEALLOCATE" => "session",
        _ => "other",
    }
}

/// Decodes a COM_STMT_EXECUTE parameter block into values (an undecodable block is kept as
/// one `{"base64": …}` value so nothing is lost).
pub fn decode_params(p: &RawParams) -> Vec<Param> {
    let parsed = parse_execute_params(
        &p.block,
        usize::from(p.count),
        p.bound_types.as_deref(),
        &p.long_data,
    );
    let Ok(parsed) = parsed else {
        return vec![Param {
            type_code: 0xff,
            unsigned: false,
            value: serde_json::json!({ "base64": b64(&p.block), "undecodable": true }),
        }];
    };
    let types: Vec<(ColumnType, u8)> = parsed
        .types
        .clone()
        .or_else(|| p.bound_types.as_deref().map(<[_]>::to_vec))
        .unwrap_or_default();
    parsed
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (ty, flags) = types.get(i).copied().unwrap_or((ColumnType::NULL, 0));
            let unsigned = flags & 0x80 != 0;
            let value = match v {
                None if p.long_data.get(i).copied().unwrap_or(false) => {
                    serde_json::json!({ "long_data": true })
                }
                None => serde_json::Value::Null,
                Some(v) => binary_value_json(v, unsigned),
            };
            Param {
                type_code: ty.0,
                unsigned,
                value,
            }
        })
        .collect()
}

/// A binary-protocol value as JSON (numbers as numbers, temporals and text as strings).
pub fn binary_value_json(v: &BinaryValue<'_>, unsigned: bool) -> serde_json::Value {
    use serde_json::json;
    let b = v.bytes;
    let int = |n: i64, u: u64| if unsigned { json!(u) } else { json!(n) };
    match v.column_type {
        ColumnType::TINY if b.len() == 1 => int(i64::from(b[0] as i8), u64::from(b[0])),
        ColumnType::SHORT | ColumnType::YEAR if b.len() == 2 => {
            let x = u16::from_le_bytes([b[0], b[1]]);
            int(i64::from(x as i16), u64::from(x))
        }
        ColumnType::LONG | ColumnType::INT24 if b.len() == 4 => {
            let x = u32::from_le_bytes(b.try_into().expect("4 bytes"));
            int(i64::from(x as i32), u64::from(x))
        }
        ColumnType::LONGLONG if b.len() == 8 => {
            let x = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            int(x as i64, x)
        }
        ColumnType::FLOAT if b.len() == 4 => {
            json!(f32::from_le_bytes(b.try_into().expect("4 bytes")))
        }
        ColumnType::DOUBLE if b.len() == 8 => {
            json!(f64::from_le_bytes(b.try_into().expect("8 bytes")))
        }
        ColumnType::DATE | ColumnType::DATETIME | ColumnType::TIMESTAMP => json!(datetime(b)),
        ColumnType::TIME => json!(time(b)),
        _ => match std::str::from_utf8(b) {
            Ok(s) => json!(s),
            Err(_) => json!({ "base64": b64(b) }),
        },
    }
}

fn datetime(b: &[u8]) -> String {
    let year = if b.len() >= 2 {
        u16::from_le_bytes([b[0], b[1]])
    } else {
        0
    };
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut s = format!("{year:04}-{:02}-{:02}", at(2), at(3));
    if b.len() >= 7 {
        s += &format!(" {:02}:{:02}:{:02}", at(4), at(5), at(6));
    }
    if b.len() >= 11 {
        let micros = u32::from_le_bytes(b[7..11].try_into().expect("4 bytes"));
        s += &format!(".{micros:06}");
    }
    s
}

fn time(b: &[u8]) -> String {
    if b.len() < 8 {
        return "00:00:00".into();
    }
    let sign = if b[0] == 1 { "-" } else { "" };
    let days = u32::from_le_bytes(b[1..5].try_into().expect("4 bytes"));
    let mut s = format!("{sign}{days} {:02}:{:02}:{:02}", b[5], b[6], b[7]);
    if b.len() >= 12 {
        let micros = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        s += &format!(".{micros:06}");
    }
    s
}

/// The hash of a result as the client received it: BLAKE3 over, for each row packet payload
/// (after any masking), its length as u32 LE then its bytes; and after each result set's
/// last row, the marker `ff ff ff ff`. A result with no result set hashes nothing (the hash
/// of the empty input). Replay hashes the same way.
#[derive(Debug, Default, Clone)]
pub struct ResultHasher {
    hasher: blake3::Hasher,
}

impl ResultHasher {
    /// Adds a row payload.
    pub fn row(&mut self, payload: &[u8]) {
        self.hasher.update(&(payload.len() as u32).to_le_bytes());
        self.hasher.update(payload);
    }

    /// Marks the end of a result set.
    pub fn end_of_result_set(&mut self) {
        self.hasher.update(&[0xff; 4]);
    }

    /// The hash.
    pub fn finish(&self) -> [u8; 32] {
        *self.hasher.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_as_tagged_json() {
        let p = Payload::SessionEnd(SessionEnd {
            session: 7,
            reason: "client_quit".into(),
            detail: None,
            statements: 3,
            refused: 1,
            rows: 10,
            bytes: 400,
        });
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.starts_with(r#"{"type":"session_end","session":7"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), p);
    }

    #[test]
    fn kinds_come_from_the_first_keyword() {
        let m = crate::sql::Mode::DEFAULT;
        assert_eq!(statement_kind(b"/* hi */ select 1", m), "read");
        assert_eq!(statement_kind(b"  INSERT INTO t VALUES (1)", m), "write");
        assert_eq!(statement_kind(b"drop table t", m), "ddl");
        assert_eq!(statement_kind(b"BEGIN", m), "transaction");
        assert_eq!(statement_kind(b"", m), "other");
    }

    #[test]
    fn execute_parameters_decode_to_json() {
        // Two params: INT 42 and VARCHAR 'hé', types sent.
        let mut block = vec![0u8, 1, 0x03, 0, 0x0f, 0];
        block.extend_from_slice(&42i32.to_le_bytes());
        block.push(3);
        block.extend_from_slice("hé".as_bytes());
        let params = decode_params(&RawParams {
            block,
            count: 2,
            bound_types: None,
            long_data: vec![false, false],
        });
        assert_eq!(params[0].value, serde_json::json!(42));
        assert_eq!(params[1].value, serde_json::json!("hé"));
        assert_eq!(params[1].type_code, 0x0f);
    }
}
