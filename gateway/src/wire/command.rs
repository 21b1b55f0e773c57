//! Command-phase requests from the client.
//!
//! ```text
//! COM_QUERY            := 0x03 sql<EOF>
//! COM_INIT_DB          := 0x02 schema<EOF>
//! COM_FIELD_LIST       := 0x04 table<NUL> wildcard<EOF>
//! COM_PROCESS_KILL     := 0x0C connection_id:u32
//! COM_SET_OPTION       := 0x1B option:u16
//! COM_CHANGE_USER      := 0x11 user<NUL> auth(len:u8 bytes | <NUL>) schema<NUL>
//!                         [charset:u16] [plugin<NUL>] [attrs<lenenc>]
//! COM_STMT_PREPARE     := 0x16 sql<EOF>
//! COM_STMT_EXECUTE     := 0x17 stmt_id:u32 flags:u8 iterations:u32 params…
//! COM_STMT_SEND_LONG_DATA := 0x18 stmt_id:u32 param_id:u16 data<EOF>
//! COM_STMT_CLOSE / RESET  := 0x19|0x1A stmt_id:u32
//! COM_STMT_FETCH       := 0x1C stmt_id:u32 rows:u32
//! COM_QUIT, COM_PING, COM_STATISTICS, COM_RESET_CONNECTION := the byte alone
//! ```

use nom::number::complete::{le_u16, le_u32, le_u8};

use super::codec::{null_str, null_str_or_eof, optional, parse_all, put_null_str, Res};
use super::consts::{CapabilityFlags, Command};
use super::handshake::{connect_attrs, put_connect_attrs};
use super::Error;

/// A parsed client command, borrowing from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandPacket<'a> {
    /// COM_QUIT.
    Quit,
    /// COM_INIT_DB.
    InitDb {
        /// The new default database.
        schema: &'a [u8],
    },
    /// COM_QUERY.
    Query {
        /// The statement text.
        sql: &'a [u8],
    },
    /// COM_FIELD_LIST.
    FieldList {
        /// Table name.
        table: &'a [u8],
        /// Column wildcard.
        wildcard: &'a [u8],
    },
    /// COM_STATISTICS.
    Statistics,
    /// COM_REFRESH.
    Refresh {
        /// What to flush (REFRESH_GRANT, REFRESH_LOG, REFRESH_TABLES… bits).
        options: u8,
    },
    /// COM_SHUTDOWN.
    Shutdown {
        /// Shutdown level, when sent.
        level: Option<u8>,
    },
    /// COM_PROCESS_INFO.
    ProcessInfo,
    /// COM_DEBUG.
    Debug,
    /// COM_PROCESS_KILL.
    ProcessKill {
        /// The connection to kill.
        connection_id: u32,
    },
    /// COM_PING.
    Ping,
    /// COM_CHANGE_USER.
    ChangeUser(ChangeUser<'a>),
    /// COM_STMT_PREPARE.
    StmtPrepare {
        /// The statement text.
        sql: &'a [u8],
    },
    /// COM_STMT_EXECUTE (parameters left raw: their layout depends on the prepared statement).
    StmtExecute(StmtExecute<'a>),
    /// MariaDB's COM_STMT_BULK_EXECUTE (offered only with `STMT_BULK_OPERATIONS`): the
    /// prepared statement once per row of parameters; rows left raw, like an EXECUTE's.
    StmtBulkExecute {
        /// Statement id.
        stmt_id: u32,
        /// `STMT_BULK_FLAG_*` bits (types sent, unit results).
        flags: u16,
        /// Parameter types (when sent) and rows of values with indicators.
        data: &'a [u8],
    },
    /// COM_STMT_SEND_LONG_DATA.
    StmtSendLongData {
        /// Statement id.
        stmt_id: u32,
        /// Parameter index.
        param_id: u16,
        /// The chunk.
        data: &'a [u8],
    },
    /// COM_STMT_CLOSE.
    StmtClose {
        /// Statement id.
        stmt_id: u32,
    },
    /// COM_STMT_RESET.
    StmtReset {
        /// Statement id.
        stmt_id: u32,
    },
    /// COM_SET_OPTION.
    SetOption {
        /// 0 = multi-statements on, 1 = off.
        option: u16,
    },
    /// COM_STMT_FETCH.
    StmtFetch {
        /// Statement id.
        stmt_id: u32,
        /// Rows wanted.
        num_rows: u32,
    },
    /// COM_RESET_CONNECTION.
    ResetConnection,
    /// Anything else: representable so that it can be logged and refused.
    Unknown {
        /// The command byte.
        command: Command,
        /// The rest of the payload.
        body: &'a [u8],
    },
}

/// COM_CHANGE_USER's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeUser<'a> {
    /// New user name.
    pub user: &'a [u8],
    /// Auth response made with the connection's current nonce.
    pub auth_response: &'a [u8],
    /// New default database.
    pub schema: &'a [u8],
    /// New collation id, if sent.
    pub charset: Option<u16>,
    /// Plugin the response was made with.
    pub auth_plugin: Option<&'a [u8]>,
    /// Connection attributes.
    pub connect_attrs: Vec<(&'a [u8], &'a [u8])>,
}

/// COM_STMT_EXECUTE's fixed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StmtExecute<'a> {
    /// Statement id.
    pub stmt_id: u32,
    /// Cursor flags (0 = no cursor, 1 = read-only cursor…).
    pub flags: u8,
    /// Always 1.
    pub iteration_count: u32,
    /// NULL bitmap, new-params-bound flag, types and values (see [`super::binary`]).
    pub params: &'a [u8],
}

impl CommandPacket<'_> {
    /// The command byte.
    pub fn command(&self) -> Command {
        match self {
            CommandPacket::Quit => Command::COM_QUIT,
            CommandPacket::InitDb { .. } => Command::COM_INIT_DB,
            CommandPacket::Query { .. } => Command::COM_QUERY,
            CommandPacket::FieldList { .. } => Command::COM_FIELD_LIST,
            CommandPacket::Statistics => Command::COM_STATISTICS,
            CommandPacket::Refresh { .. } => Command::COM_REFRESH,
            CommandPacket::Shutdown { .. } => Command::COM_SHUTDOWN,
            CommandPacket::ProcessInfo => Command::COM_PROCESS_INFO,
            CommandPacket::Debug => Command::COM_DEBUG,
            CommandPacket::ProcessKill { .. } => Command::COM_PROCESS_KILL,
            CommandPacket::Ping => Command::COM_PING,
            CommandPacket::ChangeUser(_) => Command::COM_CHANGE_USER,
            CommandPacket::StmtPrepare { .. } => Command::COM_STMT_PREPARE,
            CommandPacket::StmtExecute(_) => Command::COM_STMT_EXECUTE,
            CommandPacket::StmtBulkExecute { .. } => Command::COM_STMT_BULK_EXECUTE,
            CommandPacket::StmtSendLongData { .. } => Command::COM_STMT_SEND_LONG_DATA,
            CommandPacket::StmtClose { .. } => Command::COM_STMT_CLOSE,
            CommandPacket::StmtReset { .. } => Command::COM_STMT_RESET,
            CommandPacket::SetOption { .. } => Command::COM_SET_OPTION,
            CommandPacket::StmtFetch { .. } => Command::COM_STMT_FETCH,
            CommandPacket::ResetConnection => Command::COM_RESET_CONNECTION,
            CommandPacket::Unknown { command, .. } => *command,
        }
    }
}

/// Parses a command payload; `caps` are the capabilities negotiated with the client
/// (COM_CHANGE_USER's layout depends on them).
pub fn parse_command(payload: &[u8], caps: CapabilityFlags) -> Result<CommandPacket<'_>, Error> {
    let Some((&byte, body)) = payload.split_first() else {
        return Err(Error::Malformed("empty command packet"));
    };
    let command = Command(byte);
    let what = command.name().unwrap_or("command");
    Ok(match command {
        Command::COM_QUIT => CommandPacket::Quit,
        Command::COM_PING => CommandPacket::Ping,
        Command::COM_STATISTICS => CommandPacket::Statistics,
        Command::COM_RESET_CONNECTION => CommandPacket::ResetConnection,
        Command::COM_PROCESS_INFO => CommandPacket::ProcessInfo,
        Command::COM_DEBUG => CommandPacket::Debug,
        Command::COM_REFRESH => CommandPacket::Refresh {
            options: parse_all(what, body, le_u8)?,
        },
        Command::COM_SHUTDOWN => CommandPacket::Shutdown {
            level: body.first().copied().filter(|_| body.len() == 1),
        },
        Command::COM_INIT_DB => CommandPacket::InitDb { schema: body },
        Command::COM_QUERY => CommandPacket::Query { sql: body },
        Command::COM_STMT_PREPARE => CommandPacket::StmtPrepare { sql: body },
        Command::COM_FIELD_LIST => parse_all(what, body, |i: &[u8]| {
            let (i, table) = null_str_or_eof(i)?;
            Ok((
                &i[i.len()..],
                CommandPacket::FieldList { table, wildcard: i },
            ))
        })?,
        Command::COM_PROCESS_KILL => CommandPacket::ProcessKill {
            connection_id: parse_all(what, body, le_u32)?,
        },
        Command::COM_SET_OPTION => CommandPacket::SetOption {
            option: parse_all(what, body, le_u16)?,
        },
        Command::COM_STMT_CLOSE => CommandPacket::StmtClose {
            stmt_id: parse_all(what, body, le_u32)?,
        },
        Command::COM_STMT_RESET => CommandPacket::StmtReset {
            stmt_id: parse_all(what, body, le_u32)?,
        },
        Command::COM_STMT_FETCH => parse_all(what, body, |i| {
            let (i, stmt_id) = le_u32(i)?;
            let (i, num_rows) = le_u32(i)?;
            Ok((i, CommandPacket::StmtFetch { stmt_id, num_rows }))
        })?,
        Command::COM_STMT_SEND_LONG_DATA => parse_all(what, body, |i| {
            let (i, stmt_id) = le_u32(i)?;
            let (i, param_id) = le_u16(i)?;
            Ok((
                &i[i.len()..],
                CommandPacket::StmtSendLongData {
                    stmt_id,
                    param_id,
                    data: i,
                },
            ))
        })?,
        Command::COM_STMT_BULK_EXECUTE => parse_all(what, body, |i| {
            let (i, stmt_id) = le_u32(i)?;
            let (i, flags) = le_u16(i)?;
            Ok((
                &i[i.len()..],
                CommandPacket::StmtBulkExecute {
                    stmt_id,
                    flags,
                    data: i,
                },
            ))
        })?,
        Command::COM_STMT_EXECUTE => parse_all(what, body, |i| {
            let (i, stmt_id) = le_u32(i)?;
            let (i, flags) = le_u8(i)?;
            let (i, iteration_count) = le_u32(i)?;
            Ok((
                &i[i.len()..],
                CommandPacket::StmtExecute(StmtExecute {
                    stmt_id,
                    flags,
                    iteration_count,
                    params: i,
                }),
            ))
        })?,
        Command::COM_CHANGE_USER => {
            CommandPacket::ChangeUser(parse_all(what, body, |i| change_user(i, caps))?)
        }
        _ => CommandPacket::Unknown { command, body },
    })
}

fn change_user(input: &[u8], caps: CapabilityFlags) -> Res<'_, ChangeUser<'_>> {
    let (input, user) = null_str(input)?;
    let (input, auth_response) = if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
        let (i, n) = le_u8(input)?;
        nom::bytes::complete::take(n)(i)?
    } else {
        null_str(input)?
    };
    let (input, schema) = null_str_or_eof(input)?;
    let (input, charset) = if input.len() >= 2 {
        let (i, c) = le_u16(input)?;
        (i, Some(c))
    } else {
        (input, None)
    };
    let plugin_auth = caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH);
    let (input, auth_plugin) = optional(plugin_auth, input, null_str_or_eof)?;
    let with_attrs = caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS);
    let (input, connect_attrs) = optional(with_attrs, input, connect_attrs)?;
    let connect_attrs = connect_attrs.unwrap_or_default();
    Ok((
        input,
        ChangeUser {
            user,
            auth_response,
            schema,
            charset,
            auth_plugin,
            connect_attrs,
        },
    ))
}

/// Appends a command payload laid out for `caps`.
pub fn encode_command(out: &mut Vec<u8>, cmd: &CommandPacket<'_>, caps: CapabilityFlags) {
    out.push(cmd.command().0);
    match cmd {
        CommandPacket::Quit
        | CommandPacket::Ping
        | CommandPacket::Statistics
        | CommandPacket::ProcessInfo
        | CommandPacket::Debug
        | CommandPacket::ResetConnection
        | CommandPacket::Shutdown { level: None } => {}
        CommandPacket::Refresh { options: b } | CommandPacket::Shutdown { level: Some(b) } => {
            out.push(*b)
        }
        CommandPacket::InitDb { schema: s }
        | CommandPacket::Query { sql: s }
        | CommandPacket::StmtPrepare { sql: s } => out.extend_from_slice(s),
        CommandPacket::FieldList { table, wildcard } => {
            put_null_str(out, table);
            out.extend_from_slice(wildcard);
        }
        CommandPacket::ProcessKill { connection_id } => {
            out.extend_from_slice(&connection_id.to_le_bytes())
        }
        CommandPacket::SetOption { option } => out.extend_from_slice(&option.to_le_bytes()),
        CommandPacket::StmtClose { stmt_id } | CommandPacket::StmtReset { stmt_id } => {
            out.extend_from_slice(&stmt_id.to_le_bytes())
        }
        CommandPacket::StmtFetch { stmt_id, num_rows } => {
            out.extend_from_slice(&stmt_id.to_le_bytes());
            out.extend_from_slice(&num_rows.to_le_bytes());
        }
        CommandPacket::StmtSendLongData {
            stmt_id,
            param_id,
            data,
        } => {
            out.extend_from_slice(&stmt_id.to_le_bytes());
            out.extend_from_slice(&param_id.to_le_bytes());
            out.extend_from_slice(data);
        }
        CommandPacket::StmtBulkExecute {
            stmt_id,
            flags,
            data,
        } => {
            out.extend_from_slice(&stmt_id.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(data);
        }
        CommandPacket::StmtExecute(e) => {
            out.extend_from_slice(&e.stmt_id.to_le_bytes());
            out.push(e.flags);
            out.extend_from_slice(&e.iteration_count.to_le_bytes());
            out.extend_from_slice(e.params);
        }
        CommandPacket::ChangeUser(c) => {
            put_null_str(out, c.user);
            if caps.contains(CapabilityFlags::CLIENT_SECURE_CONNECTION) {
                out.push(c.auth_response.len() as u8);
                out.extend_from_slice(c.auth_response);
            } else {
                put_null_str(out, c.auth_response);
            }
            put_null_str(out, c.schema);
            if let Some(cs) = c.charset {
                out.extend_from_slice(&cs.to_le_bytes());
                if caps.contains(CapabilityFlags::CLIENT_PLUGIN_AUTH) {
                    put_null_str(out, c.auth_plugin.unwrap_or_default());
                }
                if caps.contains(CapabilityFlags::CLIENT_CONNECT_ATTRS) {
                    put_connect_attrs(out, &c.connect_attrs);
                }
            }
        }
        CommandPacket::Unknown { body, .. } => out.extend_from_slice(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }
    fn no_nul(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(1u8..=255, 0..max)
    }

    fn round_trip(cmd: &CommandPacket<'_>, caps: CapabilityFlags) {
        let mut out = Vec::new();
        encode_command(&mut out, cmd, caps);
        assert_eq!(&parse_command(&out, caps).unwrap(), cmd);
    }

    proptest! {
        #[test]
        fn text_commands_round_trip(body in bytes(200), n: u32, m: u32, o: u16, p: u16, table in no_nul(30)) {
            let caps = CapabilityFlags::GATEWAY;
            for cmd in [
                CommandPacket::Quit, CommandPacket::Ping, CommandPacket::Statistics, CommandPacket::ResetConnection,
                CommandPacket::ProcessInfo, CommandPacket::Debug,
                CommandPacket::Refresh { options: p as u8 },
                CommandPacket::Shutdown { level: None }, CommandPacket::Shutdown { level: Some(o as u8) },
                CommandPacket::Query { sql: &body }, CommandPacket::InitDb { schema: &body },
                CommandPacket::StmtPrepare { sql: &body },
                CommandPacket::FieldList { table: &table, wildcard: &body },
                CommandPacket::ProcessKill { connection_id: n }, CommandPacket::SetOption { option: o },
                CommandPacket::StmtClose { stmt_id: n }, CommandPacket::StmtReset { stmt_id: m },
                CommandPacket::StmtFetch { stmt_id: n, num_rows: m },
                CommandPacket::StmtSendLongData { stmt_id: n, param_id: p, data: &body },
                CommandPacket::StmtExecute(StmtExecute { stmt_id: n, flags: 1, iteration_count: 1, params: &body }),
                CommandPacket::StmtBulkExecute { stmt_id: m, flags: o, data: &body },
                CommandPacket::Unknown { command: Command(0x50), body: &body },
            ] {
                round_trip(&cmd, caps);
            }
        }

        #[test]
        fn change_user_round_trip(user in no_nul(20), auth in bytes(40), schema in no_nul(20), cs: u16, plugin in no_nul(25), attrs in proptest::collection::vec((bytes(10), bytes(10)), 0..4)) {
            let c = ChangeUser {
                user: &user, auth_response: &auth, schema: &schema, charset: Some(cs),
                auth_plugin: Some(&plugin), connect_attrs: attrs.iter().map(|(k, v)| (&k[..], &v[..])).collect(),
            };
            round_trip(&CommandPacket::ChangeUser(c), CapabilityFlags::GATEWAY);
        }

        #[test]
        fn never_panics(b in bytes(100)) {
            let _ = parse_command(&b, CapabilityFlags::GATEWAY);
            let _ = parse_command(&b, CapabilityFlags::empty());
        }
    }

    #[test]
    fn unknown_commands_are_representable() {
        let cmd = parse_command(&[0x12, 1, 2], CapabilityFlags::GATEWAY).unwrap();
        assert_eq!(cmd.command(), Command(0x12));
        assert_eq!(cmd.command().to_string(), "command 0x12");
    }
}
