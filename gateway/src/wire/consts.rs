//! Protocol constants with MySQL's own names: capability and status flags, command bytes,
//! error codes. Unknown values stay representable (a [`Command`] is a newtype over `u8`), so an
//! unknown command can be named in a log line and refused.

use bitflags::bitflags;

bitflags! {
    /// Capability flags exchanged in the handshake (`CLIENT_*` in MySQL's `mysql_com.h`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CapabilityFlags: u32 {
        /// Old long-password flag; always set by modern peers.
        const CLIENT_LONG_PASSWORD = 0x0000_0001;
        /// Report found rows instead of affected rows.
        const CLIENT_FOUND_ROWS = 0x0000_0002;
        /// Column definitions carry long flags.
        const CLIENT_LONG_FLAG = 0x0000_0004;
        /// A database name may follow in the handshake response.
        const CLIENT_CONNECT_WITH_DB = 0x0000_0008;
        /// Disallow `db.table.column` syntax.
        const CLIENT_NO_SCHEMA = 0x0000_0010;
        /// Compression protocol (never offered by the gateway).
        const CLIENT_COMPRESS = 0x0000_0020;
        /// ODBC client (no effect).
        const CLIENT_ODBC = 0x0000_0040;
        /// `LOAD DATA LOCAL` allowed (never offered by the gateway).
        const CLIENT_LOCAL_FILES = 0x0000_0080;
        /// Ignore spaces before `(`.
        const CLIENT_IGNORE_SPACE = 0x0000_0100;
        /// The 4.1 protocol.
        const CLIENT_PROTOCOL_41 = 0x0000_0200;
        /// Interactive client (interactive_timeout).
        const CLIENT_INTERACTIVE = 0x0000_0400;
        /// TLS upgrade via SSLRequest.
        const CLIENT_SSL = 0x0000_0800;
        /// Ignore SIGPIPE (client side only).
        const CLIENT_IGNORE_SIGPIPE = 0x0000_1000;
        /// Transactions status flags in OK/EOF.
        const CLIENT_TRANSACTIONS = 0x0000_2000;
        /// Old flag (4.1 protocol).
        const CLIENT_RESERVED = 0x0000_4000;
        /// 4.1 authentication (20-byte scramble).
        const CLIENT_SECURE_CONNECTION = 0x0000_8000;
        /// Several statements in one COM_QUERY.
        const CLIENT_MULTI_STATEMENTS = 0x0001_0000;
        /// Several result sets per command.
        const CLIENT_MULTI_RESULTS = 0x0002_0000;
        /// Several result sets for prepared statements.
        const CLIENT_PS_MULTI_RESULTS = 0x0004_0000;
        /// Auth plugin names in the handshake.
        const CLIENT_PLUGIN_AUTH = 0x0008_0000;
        /// Connection attributes in the handshake response.
        const CLIENT_CONNECT_ATTRS = 0x0010_0000;
        /// Auth response as a length-encoded string.
        const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x0020_0000;
        /// Client can handle expired passwords.
        const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 0x0040_0000;
        /// Session state change information in OK packets.
        const CLIENT_SESSION_TRACK = 0x0080_0000;
        /// OK packets (0xFE header) replace EOF packets.
        const CLIENT_DEPRECATE_EOF = 0x0100_0000;
        /// Optional result set metadata (MySQL 8).
        const CLIENT_OPTIONAL_RESULTSET_METADATA = 0x0200_0000;
        /// zstd compression (never offered).
        const CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x0400_0000;
        /// Query attributes (MySQL 8).
        const CLIENT_QUERY_ATTRIBUTES = 0x0800_0000;
        /// Multi-factor authentication (MySQL 8).
        const CLIENT_MULTI_FACTOR_AUTHENTICATION = 0x1000_0000;
        /// Capability extension.
        const CLIENT_CAPABILITY_EXTENSION = 0x2000_0000;
        /// Verify the server certificate (client side only).
        const CLIENT_SSL_VERIFY_SERVER_CERT = 0x4000_0000;
        /// Remember options (client side only).
        const CLIENT_REMEMBER_OPTIONS = 0x8000_0000;
    }
}

impl CapabilityFlags {
    /// What the gateway itself can speak on either side. Compression, LOCAL INFILE and the
    /// MySQL 8 extensions that change packet layouts (query attributes, optional metadata,
    /// multi-factor auth) are deliberately absent: the gateway must understand every byte it
    /// forwards, and refusing a capability is how it keeps that promise.
    pub const GATEWAY: CapabilityFlags = CapabilityFlags::CLIENT_LONG_PASSWORD
        .union(CapabilityFlags::CLIENT_FOUND_ROWS)
        .union(CapabilityFlags::CLIENT_LONG_FLAG)
        .union(CapabilityFlags::CLIENT_CONNECT_WITH_DB)
        .union(CapabilityFlags::CLIENT_NO_SCHEMA)
        .union(CapabilityFlags::CLIENT_ODBC)
        .union(CapabilityFlags::CLIENT_IGNORE_SPACE)
        .union(CapabilityFlags::CLIENT_PROTOCOL_41)
        .union(CapabilityFlags::CLIENT_INTERACTIVE)
        .union(CapabilityFlags::CLIENT_IGNORE_SIGPIPE)
        .union(CapabilityFlags::CLIENT_TRANSACTIONS)
        .union(CapabilityFlags::CLIENT_RESERVED)
        .union(CapabilityFlags::CLIENT_SECURE_CONNECTION)
        .union(CapabilityFlags::CLIENT_MULTI_STATEMENTS)
        .union(CapabilityFlags::CLIENT_MULTI_RESULTS)
        .union(CapabilityFlags::CLIENT_PS_MULTI_RESULTS)
        .union(CapabilityFlags::CLIENT_PLUGIN_AUTH)
        .union(CapabilityFlags::CLIENT_CONNECT_ATTRS)
        .union(CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
        .union(CapabilityFlags::CLIENT_SESSION_TRACK)
        .union(CapabilityFlags::CLIENT_DEPRECATE_EOF);
}

/// MariaDB's extended capabilities: the 4 bytes greeting and handshake response carry when
/// `CLIENT_LONG_PASSWORD` (MariaDB calls it `CLIENT_MYSQL`) is clear. Bit `n` here is MariaDB's
/// capability bit `32 + n`.
pub mod mariadb_caps {
    /// Progress report packets during long statements (they look like ERR packets).
    pub const PROGRESS: u32 = 1 << 0;
    /// COM_MULTI.
    pub const COM_MULTI: u32 = 1 << 1;
    /// COM_STMT_BULK_EXECUTE.
    pub const STMT_BULK_OPERATIONS: u32 = 1 << 2;
    /// Column definitions carry extended type information (e.g. `format=json`).
    pub const EXTENDED_METADATA: u32 = 1 << 3;
    /// Result sets may omit metadata the client has cached.
    pub const CACHE_METADATA: u32 = 1 << 4;

    /// What the gateway relays: extended metadata (one more field in column definitions),
    /// progress reports (followed as packets of the response they interrupt) and bulk
    /// execution (COM_STMT_BULK_EXECUTE, bound to its prepared statement like an EXECUTE).
    /// Not COM_MULTI (several commands in one packet) nor metadata caching (result sets
    /// without column definitions: the row transforms need them).
    pub const GATEWAY: u32 = EXTENDED_METADATA | PROGRESS | STMT_BULK_OPERATIONS;
}

bitflags! {
    /// Server status flags carried by OK and EOF packets (`SERVER_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct StatusFlags: u16 {
        /// A transaction is open.
        const SERVER_STATUS_IN_TRANS = 0x0001;
        /// Autocommit is on.
        const SERVER_STATUS_AUTOCOMMIT = 0x0002;
        /// Another result set follows.
        const SERVER_MORE_RESULTS_EXISTS = 0x0008;
        /// The query used no good index.
        const SERVER_QUERY_NO_GOOD_INDEX_USED = 0x0010;
        /// The query used no index.
        const SERVER_QUERY_NO_INDEX_USED = 0x0020;
        /// A cursor was opened (COM_STMT_EXECUTE with a cursor): rows come via COM_STMT_FETCH.
        const SERVER_STATUS_CURSOR_EXISTS = 0x0040;
        /// The cursor is exhausted.
        const SERVER_STATUS_LAST_ROW_SENT = 0x0080;
        /// A database was dropped.
        const SERVER_STATUS_DB_DROPPED = 0x0100;
        /// Backslash is not an escape character.
        const SERVER_STATUS_NO_BACKSLASH_ESCAPES = 0x0200;
        /// Metadata changed since prepare.
        const SERVER_STATUS_METADATA_CHANGED = 0x0400;
        /// The query was slow.
        const SERVER_QUERY_WAS_SLOW = 0x0800;
        /// Output parameters of a procedure follow.
        const SERVER_PS_OUT_PARAMS = 0x1000;
        /// A read-only transaction is open.
        const SERVER_STATUS_IN_TRANS_READONLY = 0x2000;
        /// Session state changed (session-track info follows in OK).
        const SERVER_SESSION_STATE_CHANGED = 0x4000;
    }
}

/// A command byte of the command phase. A newtype, not an enum, so that commands the gateway
/// does not know remain representable — and refusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command(pub u8);

impl Command {
    /// Close the connection.
    pub const COM_QUIT: Command = Command(0x01);
    /// Change the default database.
    pub const COM_INIT_DB: Command = Command(0x02);
    /// A text-protocol query.
    pub const COM_QUERY: Command = Command(0x03);
    /// List a table's columns (deprecated).
    pub const COM_FIELD_LIST: Command = Command(0x04);
    /// Flush tables, logs, privileges… (`mysql_refresh`; a bitmask of what to flush).
    pub const COM_REFRESH: Command = Command(0x07);
    /// Shut the server down (`mysql_shutdown`).
    pub const COM_SHUTDOWN: Command = Command(0x08);
    /// Human-readable server statistics.
    pub const COM_STATISTICS: Command = Command(0x09);
    /// The process list as a result set (deprecated; `SHOW PROCESSLIST`).
    pub const COM_PROCESS_INFO: Command = Command(0x0a);
    /// Kill a connection or query (deprecated; `KILL` statement).
    pub const COM_PROCESS_KILL: Command = Command(0x0c);
    /// Dump debug information to the server's log (`mysql_dump_debug_info`).
    pub const COM_DEBUG: Command = Command(0x0d);
    /// Liveness check.
    pub const COM_PING: Command = Command(0x0e);
    /// Re-authenticate as another user.
    pub const COM_CHANGE_USER: Command = Command(0x11);
    /// Prepare a statement.
    pub const COM_STMT_PREPARE: Command = Command(0x16);
    /// Execute a prepared statement.
    pub const COM_STMT_EXECUTE: Command = Command(0x17);
    /// Send a chunk of a long parameter (no response).
    pub const COM_STMT_SEND_LONG_DATA: Command = Command(0x18);
    /// Deallocate a prepared statement (no response).
    pub const COM_STMT_CLOSE: Command = Command(0x19);
    /// Reset a prepared statement's long data and cursor.
    pub const COM_STMT_RESET: Command = Command(0x1a);
    /// Set a connection option (multi-statements on/off).
    pub const COM_SET_OPTION: Command = Command(0x1b);
    /// Fetch rows from a cursor.
    pub const COM_STMT_FETCH: Command = Command(0x1c);
    /// Reset the session state without re-authenticating.
    pub const COM_RESET_CONNECTION: Command = Command(0x1f);
    /// MariaDB: execute a prepared statement once per row of parameters (array binding).
    pub const COM_STMT_BULK_EXECUTE: Command = Command(0xfa);

    /// MySQL's name for the command, or `None` when the gateway does not know it.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Command::COM_QUIT => "COM_QUIT",
            Command::COM_INIT_DB => "COM_INIT_DB",
            Command::COM_QUERY => "COM_QUERY",
            Command::COM_FIELD_LIST => "COM_FIELD_LIST",
            Command::COM_REFRESH => "COM_REFRESH",
            Command::COM_SHUTDOWN => "COM_SHUTDOWN",
            Command::COM_STATISTICS => "COM_STATISTICS",
            Command::COM_PROCESS_INFO => "COM_PROCESS_INFO",
            Command::COM_DEBUG => "COM_DEBUG",
            Command::COM_PROCESS_KILL => "COM_PROCESS_KILL",
            Command::COM_PING => "COM_PING",
            Command::COM_CHANGE_USER => "COM_CHANGE_USER",
            Command::COM_STMT_PREPARE => "COM_STMT_PREPARE",
            Command::COM_STMT_EXECUTE => "COM_STMT_EXECUTE",
            Command::COM_STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
            Command::COM_STMT_CLOSE => "COM_STMT_CLOSE",
            Command::COM_STMT_RESET => "COM_STMT_RESET",
            Command::COM_SET_OPTION => "COM_SET_OPTION",
            Command::COM_STMT_FETCH => "COM_STMT_FETCH",
            Command::COM_RESET_CONNECTION => "COM_RESET_CONNECTION",
            Command::COM_STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "command 0x{:02x}", self.0),
        }
    }
}

/// Server error codes the gateway sends, with their SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The MySQL error number.
    pub code: u16,
    /// The five-character SQLSTATE.
    pub sqlstate: &'static str,
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = ($code:expr, $state:expr);)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: ErrorCode = ErrorCode { code: $code, sqlstate: $state };)*
        }
    };
}

error_codes! {
    /// Too many connections.
    ER_CON_COUNT_ERROR = (1040, "08004");
    /// Bad handshake.
    ER_HANDSHAKE_ERROR = (1043, "08S01");
    /// Access denied (wrong user or password: never says which).
    ER_ACCESS_DENIED_ERROR = (1045, "28000");
    /// Unknown command.
    ER_UNKNOWN_COM_ERROR = (1047, "08S01");
    /// Got a packet bigger than max_allowed_packet.
    ER_NET_PACKET_TOO_LARGE = (1153, "08S01");
    /// Got an error reading communication packets.
    ER_NET_READ_ERROR = (1158, "08S01");
    /// Got packets out of order.
    ER_NET_PACKETS_OUT_OF_ORDER = (1156, "08S01");
    /// Statement not allowed (policy refusal, LOCAL INFILE).
    ER_NOT_ALLOWED_COMMAND = (1148, "42000");
    /// Secure transport required.
    ER_SECURE_TRANSPORT_REQUIRED = (3159, "HY000");
    /// Lost connection to the server during query (client-side code, used for upstream loss).
    CR_SERVER_LOST = (2013, "HY000");
    /// Cannot connect to the server (client-side code, used when the upstream is unreachable).
    CR_CONN_HOST_ERROR = (2003, "HY000");
    /// Query interrupted (held statement denied or timed out).
    ER_QUERY_INTERRUPTED = (1317, "70100");
    /// Generic: the gateway's own refusal.
    ER_SPECIFIC_ACCESS_DENIED_ERROR = (1227, "42000");
    /// A policy refusal of a statement that names tables.
    ER_TABLEACCESS_DENIED_ERROR = (1142, "42000");
}

/// The largest payload of a single frame; a payload of exactly this length is continued by
/// the next frame.
pub const MAX_FRAME_PAYLOAD: usize = 0xFF_FFFF;
