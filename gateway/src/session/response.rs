//! Follows the server's response to one command, packet by packet, so the session knows when
//! it ends and which packets are rows.
//!
//! ```text
//! COM_QUERY / COM_STMT_EXECUTE:  OK | ERR | count def{count} [EOF] row* (EOF|OK)  — repeated
//!                                while the status carries SERVER_MORE_RESULTS_EXISTS
//! COM_STMT_PREPARE:  PREPARE_OK param_def{p} [EOF] column_def{c} [EOF] | ERR
//! COM_FIELD_LIST:    column_def* (EOF|OK) | ERR
//! COM_STMT_FETCH:    row* (EOF|OK) | ERR
//! COM_STATISTICS:    one string packet
//! others:            OK | ERR | EOF
//! ```
//! A result set opened with a cursor the client asked for (COM_STMT_EXECUTE flags) ends after its
//! metadata (status SERVER_STATUS_CURSOR_EXISTS);
//! its rows come with COM_STMT_FETCH. `[EOF]` packets are absent under CLIENT_DEPRECATE_EOF.

use crate::wire::command::CommandPacket;
use crate::wire::response::{
    is_result_terminator, parse_err, parse_ok, terminator_status, ERR_HEADER, LOCAL_INFILE_HEADER,
    OK_HEADER,
};
use crate::wire::resultset::{parse_column_count, parse_stmt_prepare_ok};
use crate::wire::{CapabilityFlags, Error, StatusFlags};

use super::phases::RowFormat;

/// What kind of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Result sets (text or binary), OK or ERR.
    Results(RowFormat),
    /// COM_STMT_EXECUTE that asked for a cursor: as `Results(Binary)`, except that a result set
    /// the server opened a cursor for ends after its metadata.
    CursorResults,
    /// COM_STMT_PREPARE's response.
    Prepare,
    /// COM_FIELD_LIST's column list.
    FieldList,
    /// COM_STMT_FETCH's rows.
    Fetch,
    /// A single packet whatever it is (COM_STATISTICS).
    AnyOne,
    /// A single OK / ERR / EOF.
    Simple,
    /// No response at all.
    Nothing,
}

impl Expect {
    /// What the server answers to `cmd`.
    pub(crate) fn for_command(cmd: &CommandPacket<'_>) -> Expect {
        match cmd {
            CommandPacket::Query { .. } | CommandPacket::ProcessInfo => {
                Expect::Results(RowFormat::Text)
            }
            // Only a cursor the client asked for ends a result set early: the server also
            // reports SERVER_STATUS_CURSOR_EXISTS while a stored procedure has one open (an
            // Oracle-mode `CURSOR c IS …`), and those rows do follow.
            CommandPacket::StmtExecute(e) if e.flags != 0 => Expect::CursorResults,
            CommandPacket::StmtExecute(_) | CommandPacket::StmtBulkExecute { .. } => {
                Expect::Results(RowFormat::Binary)
            }
            CommandPacket::StmtPrepare { .. } => Expect::Prepare,
            CommandPacket::FieldList { .. } => Expect::FieldList,
            CommandPacket::StmtFetch { .. } => Expect::Fetch,
            CommandPacket::Statistics => Expect::AnyOne,
            CommandPacket::Quit
            | CommandPacket::StmtClose { .. }
            | CommandPacket::StmtSendLongData { .. } => Expect::Nothing,
            _ => Expect::Simple,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    ResultStart,
    ColumnDefs(u64),
    ColumnsEof,
    Rows,
    FieldList,
    PrepareStart,
    PrepareParams { left: u16, columns: u16 },
    PrepareParamsEof { columns: u16 },
    PrepareColumns(u16),
    PrepareColumnsEof,
    One,
}

/// How one server packet is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketRole {
    /// A column definition of the current result set.
    ColumnDefinition,
    /// A row (goes through the row transform).
    Row(RowFormat),
    /// Anything else (OK, ERR, EOF, counts, prepare metadata).
    Other,
}

/// Counters gathered while following a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows sent to the client.
    pub rows: u64,
    /// Result sets.
    pub result_sets: u32,
    /// Result sets whose rows ended (their terminator was seen; what the recorder's result
    /// hash marks).
    pub result_sets_ended: u32,
    /// Affected rows (sum over OK packets).
    pub affected_rows: u64,
    /// Warnings of the last status packet.
    pub warnings: u16,
    /// Error code, if the command failed.
    pub error: Option<u16>,
    /// For COM_STMT_PREPARE: statement id and parameter count.
    pub prepared: Option<(u32, u16)>,
    /// The server asked the client for a local file (refused).
    pub local_infile: bool,
    /// New default database reported by session-state tracking (`USE db`).
    pub schema: Option<String>,
}

/// A server response being followed.
#[derive(Debug)]
pub(crate) struct Response {
    stage: Stage,
    format: RowFormat,
    /// The client asked for a cursor (COM_STMT_EXECUTE flags).
    cursor: bool,
    /// MariaDB progress reports were negotiated: an ERR packet with code 0xFFFF is a report
    /// (stage, progress, state) that the client shows, and the response goes on.
    progress: bool,
    caps: CapabilityFlags,
    /// What has been seen so far.
    pub(crate) outcome: Outcome,
}

/// What the response did after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More packets follow.
    More,
    /// This packet ended the response.
    Done,
}

impl Response {
    /// Starts following a response of the given kind (`Expect::Nothing` has none: don't).
    pub(crate) fn new(expect: Expect, caps: CapabilityFlags, progress: bool) -> Response {
        let (stage, format) = match expect {
            Expect::Results(f) => (Stage::ResultStart, f),
            Expect::CursorResults => (Stage::ResultStart, RowFormat::Binary),
            Expect::Prepare => (Stage::PrepareStart, RowFormat::Binary),
            Expect::FieldList => (Stage::FieldList, RowFormat::Text),
            Expect::Fetch => (Stage::Rows, RowFormat::Binary),
            Expect::AnyOne | Expect::Simple | Expect::Nothing => (Stage::One, RowFormat::Text),
        };
        Response {
            stage,
            format,
            cursor: expect == Expect::CursorResults,
            progress,
            caps,
            outcome: Outcome::default(),
        }
    }

    fn deprecate_eof(&self) -> bool {
        self.caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    /// Classifies the next server packet (`payload` is a whole logical packet) and advances.
    pub(crate) fn on_packet(&mut self, payload: &[u8]) -> Result<(PacketRole, Progress), Error> {
        use Progress::{Done, More};
        let header = payload.first().copied();
        if header == Some(ERR_HEADER) && self.progress && payload.get(1..3) == Some(&[0xff, 0xff]) {
            return Ok((PacketRole::Other, More));
        }
        if header == Some(ERR_HEADER) {
            // An ERR ends any response, wherever it comes.
            self.outcome.error = Some(parse_err(payload)?.code);
            return Ok((PacketRole::Other, Done));
        }
        let deprecate_eof = self.deprecate_eof();
        let (role, progress) = match self.stage {
            Stage::One => (PacketRole::Other, Done),
            Stage::ResultStart => match header {
                Some(OK_HEADER) => {
                    let ok = parse_ok(payload, self.caps)?;
                    self.outcome.affected_rows += ok.affected_rows;
                    self.outcome.warnings = ok.warnings;
                    if let Some(schema) = ok.session_state.and_then(tracked_schema) {
                        self.outcome.schema = Some(schema);
                    }
                    (PacketRole::Other, self.after_status(ok.status))
                }
                Some(LOCAL_INFILE_HEADER) => {
                    self.outcome.local_infile = true;
                    (PacketRole::Other, Done)
                }
                _ => {
                    let n = parse_column_count(payload)?;
                    if n == 0 {
                        return Err(Error::Malformed("result set with zero columns"));
                    }
                    self.outcome.result_sets += 1;
                    self.stage = Stage::ColumnDefs(n);
                    (PacketRole::Other, More)
                }
            },
            Stage::ColumnDefs(n) => {
                self.stage = match (n - 1, deprecate_eof) {
                    (0, true) => Stage::Rows,
                    (0, false) => Stage::ColumnsEof,
                    (left, _) => Stage::ColumnDefs(left),
                };
                (PacketRole::ColumnDefinition, More)
            }
            Stage::ColumnsEof => {
                let (status, _) = terminator_status(payload, self.caps)?;
                if self.cursor && status.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS) {
                    (PacketRole::Other, Done)
                } else {
                    self.stage = Stage::Rows;
                    (PacketRole::Other, More)
                }
            }
            Stage::Rows => {
                if is_result_terminator(payload, deprecate_eof) {
                    let (status, warnings) = terminator_status(payload, self.caps)?;
                    self.outcome.warnings = warnings;
                    self.outcome.result_sets_ended += 1;
                    if self.cursor
                        && status.contains(StatusFlags::SERVER_STATUS_CURSOR_EXISTS)
                        && self.outcome.rows == 0
                        && self.outcome.result_sets > 0
                    {
                        return Ok((PacketRole::Other, Done));
                    }
                    (PacketRole::Other, self.after_status(status))
                } else {
                    self.outcome.rows += 1;
                    (PacketRole::Row(self.format), More)
                }
            }
            Stage::FieldList => {
                if is_result_terminator(payload, deprecate_eof) {
                    (PacketRole::Other, Done)
                } else {
                    (PacketRole::ColumnDefinition, More)
                }
            }
            Stage::PrepareStart => {
                let ok = parse_stmt_prepare_ok(payload)?;
                self.outcome.prepared = Some((ok.stmt_id, ok.num_params));
                self.outcome.warnings = ok.warnings;
                self.stage = if ok.num_params > 0 {
                    Stage::PrepareParams {
                        left: ok.num_params,
                        columns: ok.num_columns,
                    }
                } else {
                    return Ok((PacketRole::Other, self.prepare_columns(ok.num_columns)));
                };
                (PacketRole::Other, More)
            }
            Stage::PrepareParams { left, columns } => {
                let progress = if left > 1 {
                    self.stage = Stage::PrepareParams {
                        left: left - 1,
                        columns,
                    };
                    More
                } else if deprecate_eof {
                    self.prepare_columns(columns)
                } else {
                    self.stage = Stage::PrepareParamsEof { columns };
                    More
                };
                (PacketRole::Other, progress)
            }
            Stage::PrepareParamsEof { columns } => {
                (PacketRole::Other, self.prepare_columns(columns))
            }
            Stage::PrepareColumns(left) => {
                let progress = if left > 1 {
                    self.stage = Stage::PrepareColumns(left - 1);
                    More
                } else if deprecate_eof {
                    Done
                } else {
                    self.stage = Stage::PrepareColumnsEof;
                    More
                };
                (PacketRole::Other, progress)
            }
            Stage::PrepareColumnsEof => (PacketRole::Other, Done),
        };
        Ok((role, progress))
    }

    /// Whether the next packets are a new result set's column definitions.
    pub(crate) fn at_result_start_or_columns(&self) -> bool {
        matches!(self.stage, Stage::ColumnDefs(_))
    }

    fn prepare_columns(&mut self, columns: u16) -> Progress {
        if columns == 0 {
            Progress::Done
        } else {
            self.stage = Stage::PrepareColumns(columns);
            Progress::More
        }
    }

    fn after_status(&mut self, status: StatusFlags) -> Progress {
        if status.contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
            self.stage = Stage::ResultStart;
            Progress::More
        } else {
            Progress::Done
        }
    }
}

/// The schema in session-state information, if it reports one.
///
/// ```text
/// session_state := (type:u8 data<lenenc>)*      type 0x01 = SESSION_TRACK_SCHEMA, data = name<lenenc>
/// ```
fn tracked_schema(mut state: &[u8]) -> Option<String> {
    use crate::wire::codec::lenenc_bytes;
    let mut found = None;
    while let Some((&kind, rest)) = state.split_first() {
        let (rest, data) = lenenc_bytes(rest).ok()?;
        if kind == 0x01 {
            let (_, name) = lenenc_bytes(data).ok()?;
            found = Some(String::from_utf8_lossy(name).into_owned());
        }
        state = rest;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::response::{encode_eof, encode_ok, EofPacket, OkPacket};
    use crate::wire::resultset::{encode_column_definition, encode_stmt_prepare_ok, StmtPrepareOk};

    fn ok(status: StatusFlags, header: u8, caps: CapabilityFlags) -> Vec<u8> {
        let mut v = Vec::new();
        encode_ok(
            &mut v,
            &OkPacket {
                header,
                status,
                ..Default::default()
            },
            caps,
        );
        v
    }

    fn run(resp: &mut Response, packets: &[Vec<u8>]) -> Vec<(PacketRole, Progress)> {
        packets.iter().map(|p| resp.on_packet(p).unwrap()).collect()
    }

    #[test]
    fn text_result_set_with_eof_then_more_results() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41;
        let mut def = Vec::new();
        encode_column_definition(&mut def, &Default::default());
        let mut eof = Vec::new();
        encode_eof(&mut eof, &EofPacket::default());
        let mut eof_more = Vec::new();
        encode_eof(
            &mut eof_more,
            &EofPacket {
                warnings: 0,
                status: StatusFlags::SERVER_MORE_RESULTS_EXISTS,
            },
        );
        let mut r = Response::new(Expect::Results(RowFormat::Text), caps, false);
        let steps = run(
            &mut r,
            &[
                vec![1],
                def,
                eof.clone(),
                vec![1, b'x'],
                eof_more,
                ok(StatusFlags::empty(), 0, caps),
            ],
        );
        assert_eq!(steps.last().unwrap().1, Progress::Done);
        assert_eq!(steps[3], (PacketRole::Row(RowFormat::Text), Progress::More));
        assert!(steps[..5].iter().all(|s| s.1 == Progress::More));
        assert_eq!(r.outcome.rows, 1);
    }

    #[test]
    fn deprecate_eof_result_set() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let mut def = Vec::new();
        encode_column_definition(&mut def, &Default::default());
        let mut r = Response::new(Expect::Results(RowFormat::Text), caps, false);
        let steps = run(
            &mut r,
            &[
                vec![1],
                def,
                vec![1, b'a'],
                vec![0xFB],
                ok(StatusFlags::empty(), 0xFE, caps),
            ],
        );
        assert_eq!(
            steps.iter().map(|s| s.1).collect::<Vec<_>>(),
            [
                Progress::More,
                Progress::More,
                Progress::More,
                Progress::More,
                Progress::Done
            ]
        );
        assert_eq!(r.outcome.rows, 2);
    }

    #[test]
    fn prepare_with_params_and_columns() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41;
        let mut p = Vec::new();
        encode_stmt_prepare_ok(
            &mut p,
            &StmtPrepareOk {
                stmt_id: 7,
                num_columns: 1,
                num_params: 2,
                warnings: 0,
            },
        );
        let mut def = Vec::new();
        encode_column_definition(&mut def, &Default::default());
        let mut eof = Vec::new();
        encode_eof(&mut eof, &EofPacket::default());
        let mut r = Response::new(Expect::Prepare, caps, false);
        let steps = run(
            &mut r,
            &[p, def.clone(), def.clone(), eof.clone(), def, eof],
        );
        assert_eq!(steps.iter().filter(|s| s.1 == Progress::Done).count(), 1);
        assert_eq!(steps.last().unwrap().1, Progress::Done);
        assert_eq!(r.outcome.prepared, Some((7, 2)));
    }

    #[test]
    fn error_mid_rows_ends_the_response() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let mut def = Vec::new();
        encode_column_definition(&mut def, &Default::default());
        let mut r = Response::new(Expect::Results(RowFormat::Text), caps, false);
        let steps = run(
            &mut r,
            &[
                vec![1],
                def,
                vec![1, b'a'],
                vec![0xFF, 0x10, 0x04, b'#', b'H', b'Y', b'0', b'0', b'0', b'x'],
            ],
        );
        assert_eq!(steps.last().unwrap().1, Progress::Done);
        assert_eq!(r.outcome.error, Some(0x0410));
    }

    /// MariaDB progress reports (`ERR` with code 0xFFFF: stage, max stage, progress, state)
    /// interrupt a response when the client negotiated them; they do not end it.
    #[test]
    fn progress_reports_do_not_end_a_response() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41 | CapabilityFlags::CLIENT_DEPRECATE_EOF;
        let report = [
            &[0xFF, 0xFF, 0xFF, 1, 2, 3][..],
            &[0xE8, 0x03, 0],
            b"\x0ccopy to table",
        ]
        .concat();
        let mut r = Response::new(Expect::Results(RowFormat::Text), caps, true);
        let steps = run(
            &mut r,
            &[
                report.clone(),
                report.clone(),
                ok(StatusFlags::empty(), 0, caps),
            ],
        );
        assert_eq!(
            steps.iter().map(|s| s.1).collect::<Vec<_>>(),
            [Progress::More, Progress::More, Progress::Done]
        );
        assert_eq!(r.outcome.error, None);
        // Not negotiated: an ERR is an ERR.
        let mut r = Response::new(Expect::Results(RowFormat::Text), caps, false);
        assert_eq!(run(&mut r, &[report])[0].1, Progress::Done);
    }
}
