//! Statement analysis: what one SQL statement does, for policy.
//!
//! [`analyze`] takes the bytes of **one** statement (the splitter separates a multi-statement
//! packet first) and the session state it depends on ([`Context`]: current database, lexing
//! [`Mode`], server flavour and version), and returns an [`Analysis`]: the statement class,
//! the operation (a stable snake_case name policy files use), the tables read and written
//! (qualified with the current database), the databases it creates, alters or drops, and
//! flags (`UPDATE`/`DELETE` without `WHERE`, server-file access, variable assignments, `USE`,
//! `sql_mode` and character set changes, …). It runs on a digest cache miss, so it favours
//! being right over being fast (tens of microseconds).
//!
//! # Pipeline
//!
//! 1. **Canonical text** (`canonicalize`). The statement is re-read with the server's own
//!    lexer ([`lex`](super::lex), the one the splitter and the digest use), in the session's
//!    [`Mode`] (`ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`, client charset), and re-emitted as text
//!    sqlparser cannot read differently: comments dropped; executable comments (`/*! … */`,
//!    `/*!50100 … */`, `/*M!100100 … */`) inlined when the [`Server`] runs them and dropped
//!    when it does not (a version-gated one whose fate depends on a version the caller did
//!    not give is refused); strings as `'…'` with backslash escapes, quoted identifiers as
//!    `` `…` ``; words the server lexes as identifiers whatever they spell (around a
//!    qualifying `.`, with `$`, a leading digit or non-ASCII letters) backtick-quoted; tokens
//!    separated by spaces. Left alone, sqlparser would treat `/*! … */` as a comment (MariaDB
//!    executes it), read `"x"` as an identifier whatever `ANSI_QUOTES` says, honour backslash
//!    escapes under `NO_BACKSLASH_ESCAPES` (so `'\' , (SELECT …) , '` would hide a
//!    subquery), and read `$$ … $$` as a string (MariaDB: two identifiers).
//! 2. **Tokens** (sqlparser's tokenizer, MySQL dialect) and limits: at most [`MAX_NESTING`]
//!    levels of parentheses and [`MAX_CHAIN`] operators in one chain (sqlparser builds
//!    left-deep trees for `a OR b OR …` and `… UNION …`, and dropping or visiting a tree
//!    tens of thousands of levels deep overflows a 2 MiB thread stack).
//! 3. **Statements sqlparser does not know** (`LOAD DATA`, `SHOW …`, account statements with
//!    `user@host`, `XA`, `SET PASSWORD`, replication and maintenance statements, `PREPARE`,
//!    `ALTER TABLE` with MariaDB's options, `CREATE PROCEDURE`…) are recognised by their
//!    leading keywords, where the keywords alone decide class, operation and tables and the
//!    statement cannot contain a subquery (checked). A few MariaDB forms sqlparser mis-reads
//!    are rewritten first (`SELECT … INTO OUTFILE`, `… INTO @v` at the end, `LOCK IN SHARE
//!    MODE`, `UPDATE a, b SET`, `DELETE t.* FROM`, `UPDATE LOW_PRIORITY`, `DELETE QUICK`,
//!    `SET @v := …`, `a MOD b`); `CREATE TABLE` that sqlparser cannot parse (partitioning,
//!    system versioning) falls back to keywords when no query can be in it.
//! 4. **Everything else** is parsed by sqlparser (`MySqlDialect`, pinned exactly in the
//!    workspace `Cargo.toml`) and its tree walked: every table in a `FROM`, join, subquery,
//!    derived table or CTE body is a read unless it is the statement's target; CTE names are
//!    scoped as in SQL (a CTE hides a table of the same name only inside its `WITH`).
//!
//! # Fails closed
//!
//! A statement that cannot be tokenized or parsed, that uses a form not analysed here, or that is
//! unanalysable by design (`PREPARE … FROM @var`, `EXECUTE`, `HANDLER`, compound `BEGIN NOT
//! ATOMIC … END`, stored-program bodies with `;`) is [`Unanalyzable`], carrying the leading
//! keyword (after executable-comment expansion) so a policy can allow a shape by keyword, and a
//! reason to put in the refusal. Nothing is ever guessed to be a read.
//!
//! # Names and case
//!
//! Table and database names keep the case they were written with (backticks removed). An
//! unqualified table is qualified with the session's current database ([`TableRef::schema`] is
//! `None` when there is none). MariaDB on Linux compares database and table names
//! case-sensitively by default (`lower_case_table_names=0`; `1` on Windows, `2` on macOS), so do
//! not fold them unless the server does: [`TableRef::same_table`] takes that choice.
//! `information_schema` is case-insensitive on every server and is always reported lower-case.
//! Keywords, function names, variable names and CTE names are case-insensitive in MySQL; a
//! CTE reference is only recognised when written with the CTE's exact case (otherwise it is
//! reported as a table read — over-reporting is the safe side).
//!
//! # What analysis cannot see
//!
//! - **Stored code.** `CALL p()` runs whatever `p` does; a stored function in a `SELECT` can
//!   write (`SELECT f()`); triggers fire on writes; views read their base tables. Calls are
//!   flagged ([`Flags::calls_procedure`], [`Flags::calls_function`] for any function that is not
//!   a known built-in), but the policy cannot see inside them.
//! - **`WHERE` that is always true.** [`Flags::no_where`] is set when there is no `WHERE` or
//!   when the `WHERE` references no column (`WHERE 1=1`, `WHERE ?`, `WHERE NOW() > 0`); a
//!   tautology over a column (`WHERE id = id`, `WHERE id > 0 OR 1`) is not detected.
//! - **Session state between statements.** A statement that changes how later ones are lexed
//!   ([`Flags::sql_mode`], [`Flags::charset`]) or qualified ([`Flags::changes_database`]) must
//!   update the [`Context`] before the next statement of the same packet is analysed.
//!   In the multi-byte charsets (GBK, Big5, SJIS/CP932, GB18030) a token whose extent depends
//!   on the charset's tables (a byte ≥ 0x80 before a backslash or backtick) is refused. Names
//!   must be valid text in the client charset (UTF-8, or latin1); string values need not be.
//! - **Syntax sqlparser does not parse** (system-versioned `FOR SYSTEM_TIME`, `FOR UPDATE WAIT
//!   n`, `CHAR(… USING …)`, `{oj …}`, `FROM (a, b) JOIN c`, `LIMIT … ROWS EXAMINED`, stored
//!   program bodies, `WITH … UPDATE|DELETE`, …) is [`Unanalyzable`].

use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, AssignmentTarget, BinaryOperator, ContextModifier, Expr, FromTable,
    Function, ObjectName, ObjectNamePart, ObjectType, OnInsert, Query, RenameTableNameKind,
    SchemaName, Select, SetExpr, Statement, TableFactor, TableObject, TableWithJoins, Use, Value,
    Visit, Visitor,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

use super::lex::{lex, Charset, Mode, TokenFlags, TokenKind};

/// Deepest parenthesis nesting analysed; deeper statements are [`Unanalyzable`].
pub const MAX_NESTING: usize = 64;
/// Longest chain of operators at one nesting level (between commas), and most set operations
/// plus joins in a statement, analysed; longer statements are [`Unanalyzable`].
pub const MAX_CHAIN: usize = 4096;
/// sqlparser's own recursion limit (it counts nested expressions and queries).
const PARSER_RECURSION_LIMIT: usize = 160;
/// `SET STATEMENT … FOR …` and `PREPARE … FROM '…'` analyse an inner statement; no deeper.
const MAX_INNER_DEPTH: usize = 2;
/// The oldest MariaDB the gateway supports is 10.0 (`MYSQL_VERSION_ID` 100000): a versioned
/// executable comment at or below it runs on every supported MariaDB.
const MIN_MARIADB_VERSION_ID: u32 = 100_000;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// The broad kind of a statement; a policy usually allows or refuses whole classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatementClass {
    /// Queries: `SELECT`, `WITH … SELECT`, `VALUES`, `DO`.
    Read,
    /// Data changes: `INSERT`, `REPLACE`, `UPDATE`, `DELETE`, `LOAD DATA`, and `CALL` (a
    /// procedure can do anything: it is classed as a write and flagged).
    Write,
    /// Schema changes: `CREATE`/`ALTER`/`DROP`/`RENAME` of tables, views, indexes, databases,
    /// sequences and stored programs, `TRUNCATE`.
    Ddl,
    /// Accounts and privileges: `GRANT`, `REVOKE`, `CREATE`/`ALTER`/`DROP`/`RENAME USER`,
    /// roles, `SET PASSWORD`, `SET ROLE`.
    Dcl,
    /// Server administration: `KILL`, `FLUSH`, `SHUTDOWN`, plugins, replication, `PURGE`,
    /// `RESET`, table maintenance (`OPTIMIZE`/`REPAIR`/`CHECK`/`ANALYZE TABLE`), any `SET` of a
    /// global variable, and anything reading or writing a file on the server (`SELECT … INTO
    /// OUTFILE`, `LOAD_FILE()` in a query): those need the administrative `FILE` privilege.
    Admin,
    /// `BEGIN`, `START TRANSACTION`, `COMMIT`, `ROLLBACK`, savepoints, `SET TRANSACTION`, `XA`,
    /// `LOCK TABLES`, `UNLOCK TABLES`.
    Transaction,
    /// Session state: `SET` of session or user variables, `SET NAMES`, `USE`,
    /// `DEALLOCATE PREPARE`. (`PREPARE name FROM '…'` is analysed as the statement prepared,
    /// with [`Flags::prepare`] set.)
    Session,
    /// `SHOW …`, `DESCRIBE`, `EXPLAIN` (without `ANALYZE`), `HELP`.
    Show,
}

impl StatementClass {
    /// Every class, in declaration order.
    pub const ALL: [StatementClass; 8] = [
        StatementClass::Read,
        StatementClass::Write,
        StatementClass::Ddl,
        StatementClass::Dcl,
        StatementClass::Admin,
        StatementClass::Transaction,
        StatementClass::Session,
        StatementClass::Show,
    ];

    /// The name used in policy files (lower case).
    pub const fn name(self) -> &'static str {
        match self {
            StatementClass::Read => "read",
            StatementClass::Write => "write",
            StatementClass::Ddl => "ddl",
            StatementClass::Dcl => "dcl",
            StatementClass::Admin => "admin",
            StatementClass::Transaction => "transaction",
            StatementClass::Session => "session",
            StatementClass::Show => "show",
        }
    }

    /// The class with this policy name (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<StatementClass> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for StatementClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What a statement does, finer than its [`StatementClass`]. [`Operation::name`] is the
        /// stable snake_case name policy files use (`"drop_database"`, `"update"`, …).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($(#[$doc])* $variant,)*
        }

        impl Operation {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The stable name used in policy files.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => $name,)*
                }
            }
        }
    };
}

operations! {
    /// `SELECT`, `WITH … SELECT`, `VALUES`, set operations of those.
    Select => "select",
    /// `SELECT … INTO OUTFILE` or `INTO DUMPFILE`: writes a file on the server.
    SelectIntoOutfile => "select_into_outfile",
    /// `DO expr, …`.
    Do => "do",
    /// `INSERT`.
    Insert => "insert",
    /// `REPLACE`.
    Replace => "replace",
    /// `UPDATE` (single- or multi-table).
    Update => "update",
    /// `DELETE` (single- or multi-table).
    Delete => "delete",
    /// `LOAD DATA` or `LOAD XML`.
    LoadData => "load_data",
    /// `CALL procedure(…)`.
    Call => "call",
    /// `CREATE TABLE` (including `… AS SELECT` and `… LIKE`).
    CreateTable => "create_table",
    /// `CREATE VIEW`.
    CreateView => "create_view",
    /// `CREATE INDEX`.
    CreateIndex => "create_index",
    /// `CREATE DATABASE` / `CREATE SCHEMA`.
    CreateDatabase => "create_database",
    /// `CREATE SEQUENCE`.
    CreateSequence => "create_sequence",
    /// `CREATE PROCEDURE` (body not analysed).
    CreateProcedure => "create_procedure",
    /// `CREATE FUNCTION` (body not analysed), including loadable functions (`SONAME`).
    CreateFunction => "create_function",
    /// `CREATE TRIGGER` (body not analysed; the trigger's table is in `writes`).
    CreateTrigger => "create_trigger",
    /// `CREATE EVENT` (body not analysed).
    CreateEvent => "create_event",
    /// `ALTER TABLE`.
    AlterTable => "alter_table",
    /// `ALTER VIEW`.
    AlterView => "alter_view",
    /// `ALTER DATABASE` / `ALTER SCHEMA`.
    AlterDatabase => "alter_database",
    /// `DROP TABLE`.
    DropTable => "drop_table",
    /// `DROP VIEW`.
    DropView => "drop_view",
    /// `DROP INDEX … ON table`.
    DropIndex => "drop_index",
    /// `DROP DATABASE` / `DROP SCHEMA`.
    DropDatabase => "drop_database",
    /// `DROP SEQUENCE`.
    DropSequence => "drop_sequence",
    /// `DROP PROCEDURE`.
    DropProcedure => "drop_procedure",
    /// `DROP FUNCTION`.
    DropFunction => "drop_function",
    /// `DROP TRIGGER`.
    DropTrigger => "drop_trigger",
    /// `DROP EVENT`.
    DropEvent => "drop_event",
    /// `TRUNCATE [TABLE]`.
    Truncate => "truncate",
    /// `RENAME TABLE`.
    RenameTable => "rename_table",
    /// `GRANT`.
    Grant => "grant",
    /// `REVOKE`.
    Revoke => "revoke",
    /// `CREATE USER`.
    CreateUser => "create_user",
    /// `ALTER USER`.
    AlterUser => "alter_user",
    /// `DROP USER`.
    DropUser => "drop_user",
    /// `RENAME USER`.
    RenameUser => "rename_user",
    /// `CREATE ROLE`.
    CreateRole => "create_role",
    /// `DROP ROLE`.
    DropRole => "drop_role",
    /// `SET PASSWORD`.
    SetPassword => "set_password",
    /// `SET ROLE`.
    SetRole => "set_role",
    /// `SET DEFAULT ROLE`.
    SetDefaultRole => "set_default_role",
    /// `KILL`.
    Kill => "kill",
    /// `FLUSH`.
    Flush => "flush",
    /// `SHUTDOWN`.
    Shutdown => "shutdown",
    /// `INSTALL PLUGIN` / `INSTALL SONAME`.
    InstallPlugin => "install_plugin",
    /// `UNINSTALL PLUGIN` / `UNINSTALL SONAME`.
    UninstallPlugin => "uninstall_plugin",
    /// `CHANGE MASTER TO` / `CHANGE REPLICATION …`.
    ChangeMaster => "change_master",
    /// `START SLAVE` / `START REPLICA` / `START ALL SLAVES`.
    StartReplica => "start_replica",
    /// `STOP SLAVE` / `STOP REPLICA` / `STOP ALL SLAVES`.
    StopReplica => "stop_replica",
    /// `PURGE BINARY LOGS` / `PURGE MASTER LOGS`.
    Purge => "purge_binary_logs",
    /// `RESET MASTER` / `RESET SLAVE` / `RESET QUERY CACHE` / ….
    Reset => "reset",
    /// `BINLOG '…'` (replays binary-log events).
    Binlog => "binlog",
    /// `CACHE INDEX` / `LOAD INDEX INTO CACHE`.
    CacheIndex => "cache_index",
    /// `OPTIMIZE TABLE`.
    OptimizeTable => "optimize_table",
    /// `REPAIR TABLE`.
    RepairTable => "repair_table",
    /// `CHECK TABLE`.
    CheckTable => "check_table",
    /// `CHECKSUM TABLE`.
    ChecksumTable => "checksum_table",
    /// `ANALYZE TABLE`.
    AnalyzeTable => "analyze_table",
    /// `SET` of at least one global variable (`SET GLOBAL x`, `SET @@global.x`, `SET GLOBAL
    /// TRANSACTION …`).
    SetGlobal => "set_global",
    /// `BEGIN` / `START TRANSACTION`.
    Begin => "begin",
    /// `COMMIT`.
    Commit => "commit",
    /// `ROLLBACK` (including `ROLLBACK TO SAVEPOINT`).
    Rollback => "rollback",
    /// `SAVEPOINT`.
    Savepoint => "savepoint",
    /// `RELEASE SAVEPOINT`.
    ReleaseSavepoint => "release_savepoint",
    /// `SET [SESSION] TRANSACTION …` (session scope; the global form is [`Operation::SetGlobal`]).
    SetTransaction => "set_transaction",
    /// `XA START|END|PREPARE|COMMIT|ROLLBACK|RECOVER`.
    Xa => "xa",
    /// `LOCK TABLES` (READ locks in `reads`, WRITE locks in `writes`).
    LockTables => "lock_tables",
    /// `UNLOCK TABLES`.
    UnlockTables => "unlock_tables",
    /// `SET` of session system variables and user variables.
    Set => "set",
    /// `SET NAMES` / `SET CHARACTER SET` / `SET CHARSET`.
    SetNames => "set_names",
    /// `USE database`.
    Use => "use",
    /// `DEALLOCATE PREPARE` / `DROP PREPARE`.
    DeallocatePrepare => "deallocate_prepare",
    /// `SHOW …`.
    Show => "show",
    /// `DESCRIBE table` / `DESC table` / `EXPLAIN table`.
    Describe => "describe",
    /// `EXPLAIN statement` (the statement's tables are in `reads`; it is not executed).
    Explain => "explain",
    /// `HELP 'topic'`.
    Help => "help",
}

impl Operation {
    /// The operation with this policy name: ASCII case-insensitive, and spaces, `-` and `_`
    /// are all the same separator (`"drop_database"`, `"DROP DATABASE"` and `"drop-database"`
    /// are [`Operation::DropDatabase`]).
    pub fn from_name(name: &str) -> Option<Operation> {
        let mut wanted = String::with_capacity(name.len());
        for word in name.split(|c: char| c.is_whitespace() || c == '-' || c == '_') {
            if word.is_empty() {
                continue;
            }
            if !wanted.is_empty() {
                wanted.push('_');
            }
            wanted.push_str(&word.to_ascii_lowercase());
        }
        Self::ALL.iter().copied().find(|op| op.name() == wanted)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A table (or view, or sequence) a statement reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// The database: as written when the name was qualified, else the session's current
    /// database; `None` when unqualified and the session has no current database.
    pub schema: Option<String>,
    /// The table name as written (backticks removed, case kept).
    pub name: String,
}

impl TableRef {
    /// A table reference from its parts.
    pub fn new(schema: Option<&str>, name: &str) -> TableRef {
        TableRef {
            schema: schema.map(normalize_schema),
            name: name.to_owned(),
        }
    }

    /// Whether both name the same table: byte-equal names, or ASCII case-insensitively equal
    /// when the server folds names (`lower_case_table_names` 1 or 2). A `None` schema matches
    /// only `None`.
    pub fn same_table(&self, other: &TableRef, case_insensitive: bool) -> bool {
        let eq = |a: &str, b: &str| {
            if case_insensitive {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let schemas = match (&self.schema, &other.schema) {
            (Some(a), Some(b)) => eq(a, b),
            (None, None) => true,
            _ => false,
        };
        schemas && eq(&self.name, &other.name)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A change of the session's `sql_mode` (`SET [SESSION] sql_mode = …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlModeChange {
    /// The new mode as written (a string literal or bare word), e.g. `"ANSI_QUOTES"`.
    Value(String),
    /// `= DEFAULT`: the global value.
    Default,
    /// An expression (`CONCAT(@@sql_mode, …)`, a variable, a number): the session's lexical
    /// mode is unknown from here on.
    Unknown,
}

/// What else a statement does, beyond class, operation and tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `UPDATE`/`DELETE` with no `WHERE`, or whose `WHERE` references no column
    /// (`WHERE 1=1`, `WHERE ?`): every row (up to a `LIMIT`) is affected.
    pub no_where: bool,
    /// Reads or writes a file on the database server: `SELECT … INTO OUTFILE`/`DUMPFILE`,
    /// `LOAD_FILE()`, `LOAD DATA INFILE` without `LOCAL`.
    pub server_file: bool,
    /// `SELECT … INTO OUTFILE` / `INTO DUMPFILE`.
    pub into_outfile: bool,
    /// `LOAD DATA LOCAL INFILE` (the gateway never offers the client a local-infile exchange).
    pub local_infile: bool,
    /// Assigns a variable: `SET`, `SELECT … INTO @v`, `@v := …`, `SET STATEMENT … FOR`.
    pub sets_variable: bool,
    /// The variables assigned: system variables lower-cased (`sql_mode`), prefixed `global.`
    /// when global; user variables as written with their `@`.
    pub variables: Vec<String>,
    /// Reads or writes a user variable (`@v`).
    pub uses_user_variables: bool,
    /// `CALL`: the procedure, qualified like a table.
    pub calls_procedure: Option<TableRef>,
    /// Calls a function that is not a known built-in: a stored function or a loadable (UDF)
    /// one, which can read and write anything.
    pub calls_function: bool,
    /// `USE db`: the new current database.
    pub changes_database: Option<String>,
    /// The session's `sql_mode` changes (which changes how later statements are lexed).
    pub sql_mode: Option<SqlModeChange>,
    /// The connection character set changes (`SET NAMES x`, `SET CHARACTER SET x`,
    /// `SET character_set_client = x`): the new name as written, `DEFAULT`, or `?` when not a
    /// literal.
    pub charset: Option<String>,
    /// Creates a stored program (procedure, function, trigger, event) whose body is not
    /// analysed.
    pub stored_program: bool,
    /// `PREPARE name FROM '…'`: the statement's name. The rest of the analysis is that of the
    /// statement prepared (nothing runs yet; the session decides at `EXECUTE name`, which is
    /// itself [`Unanalyzable`] because its text is not visible there).
    pub prepare: Option<String>,
    /// `ALTER TABLE` that destroys data: `DROP [COLUMN]`, `DROP PARTITION`, `TRUNCATE
    /// PARTITION`.
    pub drops_data: bool,
}

/// The result of analysing one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The broad kind.
    pub class: StatementClass,
    /// What it does.
    pub operation: Operation,
    /// Tables read (in order of appearance, each once).
    pub reads: Vec<TableRef>,
    /// Tables written, created, altered or dropped (in order of appearance, each once).
    pub writes: Vec<TableRef>,
    /// Databases created, altered or dropped (`CREATE`/`ALTER`/`DROP DATABASE`).
    pub databases: Vec<String>,
    /// Everything else.
    pub flags: Flags,
}

impl Analysis {
    fn new(class: StatementClass, operation: Operation) -> Analysis {
        Analysis {
            class,
            operation,
            reads: Vec::new(),
            writes: Vec::new(),
            databases: Vec::new(),
            flags: Flags::default(),
        }
    }
}

/// A statement that could not be analysed. Policy refuses it unless it explicitly allows the
/// statement shape by [`Unanalyzable::leading_keyword`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanalyzable {
    /// The statement's first keyword, upper-cased, after executable comments are expanded
    /// (`""` when there is none).
    pub leading_keyword: String,
    /// Why, for the refusal message.
    pub reason: String,
}

impl fmt::Display for Unanalyzable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "statement could not be analysed: {}", self.reason)
    }
}

impl std::error::Error for Unanalyzable {}

/// Which server runs the statement: it decides which executable comments run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// MariaDB. `version_id` is its `MYSQL_VERSION_ID` (`major * 10000 + minor * 100 + patch`,
    /// e.g. `101106` for 10.11.6), when known; unknown means "some MariaDB ≥ 10.0", and a
    /// version-gated executable comment newer than 10.0 is then refused.
    MariaDb {
        /// `MYSQL_VERSION_ID`, if known.
        version_id: Option<u32>,
    },
    /// MySQL with this `MYSQL_VERSION_ID` (e.g. `80036`). `/*M! … */` is a plain comment there.
    MySql {
        /// `MYSQL_VERSION_ID`.
        version_id: u32,
    },
}

impl Server {
    /// The server announced by a handshake's version string: `5.5.5-10.11.6-MariaDB-…` (the
    /// `5.5.5-` prefix MariaDB adds for old clients) or `10.11.6-MariaDB` is MariaDB 10.11.6,
    /// `8.0.36` is MySQL 8.0.36. `None` when the version cannot be read.
    pub fn from_version_string(version: &str) -> Option<Server> {
        let mariadb = version.contains("MariaDB");
        let v = if mariadb {
            version.strip_prefix("5.5.5-").unwrap_or(version)
        } else {
            version
        };
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (next()?, next()?, next().unwrap_or(0));
        if minor > 99 || patch > 99 {
            return None;
        }
        let version_id = major * 10_000 + minor * 100 + patch;
        Some(if mariadb {
            Server::MariaDb {
                version_id: Some(version_id),
            }
        } else {
            Server::MySql { version_id }
        })
    }
}

/// The session state analysis depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context<'a> {
    /// The session's current database (`USE`, `COM_INIT_DB`, or the database of the
    /// handshake): unqualified table names are qualified with it.
    pub current_db: Option<&'a str>,
    /// How the session lexes: `ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`, the client charset —
    /// the same [`Mode`] the digest uses.
    pub mode: Mode,
    /// The upstream server.
    pub server: Server,
}

impl<'a> Context<'a> {
    /// Default `sql_mode` lexing, a MariaDB of unknown version, this current database.
    pub fn new(current_db: Option<&'a str>) -> Context<'a> {
        Context {
            current_db,
            mode: Mode::DEFAULT,
            server: Server::MariaDb { version_id: None },
        }
    }

    /// This context with lexing mode `mode`.
    pub fn with_mode(self, mode: Mode) -> Context<'a> {
        Context { mode, ..self }
    }

    /// This context for server `server`.
    pub fn with_server(self, server: Server) -> Context<'a> {
        Context { server, ..self }
    }
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context::new(None)
    }
}

/// Analyses **one** statement (as [`split`](super::split) separates them; a trailing `;` is
/// allowed, a second statement is not), as the server described by `ctx` would run it.
///
/// Accepts the raw bytes of the statement (`&[u8]`, as they arrive in a COM_QUERY) or a
/// `&str`.
pub fn analyze(sql: impl AsRef<[u8]>, ctx: &Context<'_>) -> Result<Analysis, Unanalyzable> {
    analyze_bytes(sql.as_ref(), ctx, 0)
}

fn analyze_bytes(sql: &[u8], ctx: &Context<'_>, depth: usize) -> Result<Analysis, Unanalyzable> {
    let canonical = canonicalize(sql, ctx).map_err(|e| Unanalyzable {
        leading_keyword: first_word(&e.partial),
        reason: e.reason,
    })?;
    let tokens = Tokenizer::new(&MySqlDialect {}, &canonical)
        .tokenize_with_location()
        .map_err(|e| Unanalyzable {
            leading_keyword: first_word(&canonical),
            reason: format!("it could not be tokenized ({})", e.message),
        })?;
    let toks = Toks::new(tokens);
    let leading_keyword = toks.leading_keyword();
    analyze_tokens(toks, ctx, depth).map_err(|reason| Unanalyzable {
        leading_keyword,
        reason,
    })
}

// ---------------------------------------------------------------------------------------------
// Stage 1: canonical text
// ---------------------------------------------------------------------------------------------

struct CanonError {
    /// The canonical text up to the problem, for the leading keyword.
    partial: String,
    reason: String,
}

/// Re-reads `sql` with the server's lexer ([`lex`](super::lex)) and returns text sqlparser
/// reads the same way: comments dropped, the content of executable comments the server runs
/// inlined and of those it skips dropped, strings as `'…'` (backslash-escaped), quoted
/// identifiers as `` `…` ``, and unquoted words that are identifiers whatever they spell
/// (qualifiers, words after a qualifying `.`, words with `$`, a digit first or non-ASCII
/// letters) backtick-quoted.
fn canonicalize(sql: &[u8], ctx: &Context<'_>) -> Result<String, CanonError> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut lexer = lex(sql, ctx.mode);
    // The executable comment last seen (its start) and whether the server runs it.
    let mut comment: Option<(usize, bool)> = None;
    // The previous token emitted: whether it was an operator, whether it was `-`, and where
    // it ended if it was a `.`.
    let mut prev_operator = false;
    let mut prev_minus = false;
    let mut prev_dot_end: Option<usize> = None;
    let fail = |out: &String, reason: String| CanonError {
        partial: out.clone(),
        reason,
    };
    while let Some(token) = lexer.next() {
        let token = token.map_err(|e| fail(&out, format!("it could not be lexed ({e})")))?;
        if token.flags.contains(TokenFlags::EXECUTABLE) {
            let start = lexer
                .executable_comment_start()
                .ok_or_else(|| fail(&out, "an executable comment out of place".into()))?;
            let runs = match comment {
                Some((s, runs)) if s == start => runs,
                _ => {
                    let runs = executable_comment_runs(sql, start, ctx.server)
                        .map_err(|reason| fail(&out, reason))?;
                    comment = Some((start, runs));
                    runs
                }
            };
            if !runs {
                continue;
            }
        }
        if token.kind == TokenKind::Semicolon && token.flags.contains(TokenFlags::EXECUTABLE) {
            // The server fails such a statement (outside compound statements, which are not
            // analysed anyway).
            return Err(fail(&out, "a `;` inside an executable comment".into()));
        }
        if ctx.mode.charset.is_multibyte() && token.flags.contains(TokenFlags::CHARSET_SENSITIVE) {
            return Err(fail(
                &out,
                "where a token ends depends on the client character set's tables".into(),
            ));
        }
        let after_dot = prev_dot_end == Some(token.offset);
        let text = token.text;
        let is_operator = token.kind == TokenKind::Operator;
        let is_minus = is_operator && text == b"-";
        // Tokens are separated by a space, so sqlparser never merges two (`'a'` `'b'`, `0`
        // `x1`…), except adjacent operators: sqlparser then reads MySQL's `->`/`->>` (which
        // MariaDB refuses anyway); `--` is kept apart (a comment to sqlparser).
        if !out.is_empty() && !(is_operator && prev_operator && !(is_minus && prev_minus)) {
            out.push(' ');
        }
        let charset = ctx.mode.charset;
        let not_text = |out: &String| {
            fail(
                out,
                "a name that is not valid text in the client character set".into(),
            )
        };
        match token.kind {
            TokenKind::Word => {
                if text == b"\\N" {
                    out.push_str("NULL");
                } else if is_plain_word(text)
                    && !token.flags.contains(TokenFlags::QUALIFIER)
                    && !after_dot
                {
                    // Plain ASCII: checked by `is_plain_word`.
                    out.push_str(std::str::from_utf8(text).map_err(|_| not_text(&out))?);
                } else {
                    let name = decode_name(text, charset).ok_or_else(|| not_text(&out))?;
                    push_identifier(&mut out, &name);
                }
            }
            TokenKind::QuotedIdent => {
                let value = unquote(&text[1..text.len() - 1], text[0], false);
                let name = decode_name(&value, charset).ok_or_else(|| not_text(&out))?;
                push_identifier(&mut out, &name);
            }
            TokenKind::String | TokenKind::NationalString => {
                let body = if token.kind == TokenKind::NationalString {
                    out.push('N');
                    &text[1..]
                } else {
                    text
                };
                let escapes = !ctx.mode.no_backslash_escapes;
                let value = unquote(&body[1..body.len() - 1], body[0], escapes);
                push_string(&mut out, &decode_string(&value, charset));
            }
            TokenKind::UserVariable => {
                out.push('@');
                let name = &text[1..];
                match name.first() {
                    Some(&q @ (b'\'' | b'"')) if !(q == b'"' && ctx.mode.ansi_quotes) => {
                        let escapes = !ctx.mode.no_backslash_escapes;
                        let value = unquote(&name[1..name.len() - 1], q, escapes);
                        push_string(&mut out, &decode_string(&value, charset));
                    }
                    Some(&q @ (b'`' | b'"')) => {
                        let value = unquote(&name[1..name.len() - 1], q, false);
                        let name = decode_name(&value, charset).ok_or_else(|| not_text(&out))?;
                        push_identifier(&mut out, &name);
                    }
                    _ if name.iter().all(|&c| is_plain_byte(c) || c == b'.') => {
                        out.push_str(std::str::from_utf8(name).map_err(|_| not_text(&out))?);
                    }
                    _ => {
                        let name = decode_name(name, charset).ok_or_else(|| not_text(&out))?;
                        push_identifier(&mut out, &name);
                    }
                }
            }
            TokenKind::HexNumber | TokenKind::BitNumber => {
                // `0x41` and `0b01` as `X'41'` and `B'01'` (the same values; sqlparser reads
                // `0b01` as `0` followed by a word).
                out.push(if token.kind == TokenKind::HexNumber {
                    'X'
                } else {
                    'B'
                });
                out.push('\'');
                out.push_str(std::str::from_utf8(&text[2..]).map_err(|_| not_text(&out))?);
                out.push('\'');
            }
            _ => {
                // Numbers, operators, `?`, `;`, `@@…`, introducers, X'…', B'…': ASCII as
                // written (a system variable's quoted name is refused if not text).
                out.push_str(std::str::from_utf8(text).map_err(|_| not_text(&out))?);
            }
        }
        prev_operator = is_operator;
        prev_minus = is_minus;
        prev_dot_end =
            (token.kind == TokenKind::Operator && text == b".").then_some(token.offset + 1);
    }
    Ok(out)
}

/// `[A-Za-z0-9_]`.
fn is_plain_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// An unquoted word sqlparser reads as the server does: `[A-Za-z_][A-Za-z0-9_]*`. Anything
/// else the server lexes as one word (`$`, a leading digit, non-ASCII) is an identifier and is
/// emitted quoted.
fn is_plain_word(text: &[u8]) -> bool {
    text.first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && text.iter().all(|&c| is_plain_byte(c))
}

/// The value of a quoted token's content: a doubled `quote` is one; with `escapes`,
/// MariaDB's backslash escapes (`\%` and `\_` keep their backslash).
fn unquote(content: &[u8], quote: u8, escapes: bool) -> Vec<u8> {
    let mut value = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let c = content[i];
        if escapes && c == b'\\' && i + 1 < content.len() {
            let e = content[i + 1];
            match e {
                b'0' => value.push(0),
                b'b' => value.push(8),
                b'n' => value.push(b'\n'),
                b'r' => value.push(b'\r'),
                b't' => value.push(b'\t'),
                b'Z' => value.push(26),
                b'%' | b'_' => value.extend_from_slice(&[b'\\', e]),
                _ => value.push(e),
            }
            i += 2;
        } else if c == quote && content.get(i + 1) == Some(&quote) {
            value.push(quote);
            i += 2;
        } else {
            value.push(c);
            i += 1;
        }
    }
    value
}

/// A name's bytes as text: UTF-8 for the UTF-8 family, ISO-8859-1 for `latin1` (except
/// 0x80–0x9F, where MariaDB's `latin1` is cp1252), ASCII only for the others. `None` when the
/// bytes are not text there (the statement is then refused: a table name must be exact).
fn decode_name(bytes: &[u8], charset: Charset) -> Option<String> {
    if bytes.is_ascii() {
        return String::from_utf8(bytes.to_vec()).ok();
    }
    match charset {
        Charset::Utf8 => String::from_utf8(bytes.to_vec()).ok(),
        Charset::Latin1 => bytes
            .iter()
            .map(|&b| (!(0x80..0xA0).contains(&b)).then_some(char::from(b)))
            .collect(),
        _ => None,
    }
}

/// A string value's bytes as text: exact where [`decode_name`] is, otherwise with U+FFFD
/// for what is not text (a string's value never decides what a statement reads or writes).
fn decode_string(bytes: &[u8], charset: Charset) -> String {
    decode_name(bytes, charset).unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned())
}

/// Whether the executable comment whose `/*` is at `start` runs on `server`; `Err` when
/// that depends on a server version not known.
///
/// MariaDB (`sql_lex.cc`): 5 digits (6 when a sixth follows) are a version; the content runs
/// when `version <= MYSQL_VERSION_ID` and, for the MySQL syntax `/*!`, the version is not in
/// 50700..=99999 (MySQL 5.7/8.x features MariaDB ignores). `/*M!` is MariaDB's own. MySQL
/// reads exactly 5 digits and treats `/*M!` as a comment.
fn executable_comment_runs(b: &[u8], start: usize, server: Server) -> Result<bool, String> {
    let mariadb_syntax = b.get(start + 2) == Some(&b'M');
    let digits_at = start + if mariadb_syntax { 4 } else { 3 };
    let digits = b
        .get(digits_at..)
        .unwrap_or_default()
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if mariadb_syntax && matches!(server, Server::MySql { .. }) {
        return Ok(false);
    }
    if digits < 5 {
        return Ok(true);
    }
    let version: u32 = std::str::from_utf8(&b[digits_at..digits_at + digits])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX);
    match server {
        Server::MariaDb { version_id } => {
            if !mariadb_syntax && (50_700..=99_999).contains(&version) {
                return Ok(false);
            }
            match version_id {
                Some(server_version) => Ok(version <= server_version),
                None if version <= MIN_MARIADB_VERSION_ID => Ok(true),
                None => Err(format!(
                    "an executable comment for version {version} and later: whether it runs \
                     depends on the server version, which is not known"
                )),
            }
        }
        Server::MySql { version_id } => {
            if digits == 6 {
                return Err(format!(
                    "an executable comment with a six-digit version ({version}) MySQL reads \
                     differently"
                ));
            }
            Ok(version <= version_id)
        }
    }
}

/// Appends `'value'` with `\`, `'` and NUL backslash-escaped (sqlparser's MySQL tokenizer
/// reads it back to `value`).
fn push_string(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            _ => out.push(c),
        }
    }
    out.push('\'');
}

/// Appends `` `value` `` with backticks doubled.
fn push_identifier(out: &mut String, value: &str) {
    out.push('`');
    for c in value.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
}

/// The first word of canonical text, upper-cased (for errors before tokenizing).
fn first_word(text: &str) -> String {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_uppercase()
}

// ---------------------------------------------------------------------------------------------
// Stage 2: tokens
// ---------------------------------------------------------------------------------------------

/// sqlparser tokens with the indexes of the significant (non-white-space) ones.
struct Toks {
    all: Vec<TokenWithSpan>,
    sig: Vec<usize>,
}

impl Toks {
    fn new(all: Vec<TokenWithSpan>) -> Toks {
        let mut toks = Toks {
            all,
            sig: Vec::new(),
        };
        toks.reindex();
        toks
    }

    fn reindex(&mut self) {
        self.sig.clear();
        self.sig.extend(
            self.all
                .iter()
                .enumerate()
                .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
                .map(|(i, _)| i),
        );
    }

    fn len(&self) -> usize {
        self.sig.len()
    }

    fn get(&self, n: usize) -> Option<&Token> {
        self.sig.get(n).map(|&i| &self.all[i].token)
    }

    fn word(&self, n: usize) -> Option<&Word> {
        match self.get(n) {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        }
    }

    /// Whether significant token `n` is the unquoted word `kw` (ASCII case-insensitive).
    fn is(&self, n: usize, kw: &str) -> bool {
        matches!(self.word(n), Some(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    fn is_any(&self, n: usize, kws: &[&str]) -> bool {
        kws.iter().any(|kw| self.is(n, kw))
    }

    /// A string literal's value.
    fn string(&self, n: usize) -> Option<&str> {
        match self.get(n) {
            Some(
                Token::SingleQuotedString(s)
                | Token::DoubleQuotedString(s)
                | Token::NationalStringLiteral(s),
            ) => Some(s),
            _ => None,
        }
    }

    /// A user variable `@name` (not `@@`).
    fn user_variable(&self, n: usize) -> Option<&str> {
        self.word(n)
            .filter(|w| w.quote_style.is_none() && is_user_variable(&w.value))
            .map(|w| w.value.as_str())
    }

    /// Removes significant tokens `from..to` and everything between them.
    fn remove(&mut self, from: usize, to: usize) {
        if from >= to {
            return;
        }
        let (a, z) = (self.sig[from], self.sig[to - 1]);
        self.all.drain(a..=z);
        self.reindex();
    }

    /// Replaces significant token `n` by `tokens`, separated by spaces.
    fn replace(&mut self, n: usize, tokens: &[Token]) {
        let i = self.sig[n];
        let span = self.all[i].span;
        let mut new = Vec::with_capacity(tokens.len() * 2);
        for (k, token) in tokens.iter().enumerate() {
            if k > 0 {
                new.push(TokenWithSpan::new(
                    Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                    span,
                ));
            }
            new.push(TokenWithSpan::new(token.clone(), span));
        }
        self.all.splice(i..=i, new);
        self.reindex();
    }

    /// The first unquoted word, upper-cased, skipping opening parentheses.
    fn leading_keyword(&self) -> String {
        for n in 0..self.len() {
            match self.get(n) {
                Some(Token::LParen) => continue,
                Some(Token::Word(w)) if w.quote_style.is_none() => {
                    return w.value.to_ascii_uppercase()
                }
                _ => break,
            }
        }
        String::new()
    }

    /// A possibly qualified name (`a` or `a.b`) starting at `n`: its words and the index after.
    fn name_at(&self, n: usize) -> Option<(Vec<&Word>, usize)> {
        let first = self.word(n)?;
        if self.get(n + 1) == Some(&Token::Period) {
            if let Some(second) = self.word(n + 2) {
                return Some((vec![first, second], n + 3));
            }
            return None;
        }
        Some((vec![first], n + 1))
    }

    /// Whether a subquery (which could read any table) may hide in these tokens.
    ///
    /// In MariaDB's grammar a query inside another statement is parenthesized (`(SELECT …)`,
    /// `((SELECT …))`, `(WITH …)`, `(VALUES …)`, `(TABLE t)`); a bare `SELECT` in the
    /// statements routed by keyword is a privilege name (`GRANT SELECT ON …`) or a stored
    /// program body, which is not analysed and flagged as such.
    fn may_contain_query(&self) -> bool {
        (0..self.len()).any(|n| {
            self.get(n) == Some(&Token::LParen)
                && self.is_any(n + 1, &["SELECT", "WITH", "VALUES", "TABLE"])
        })
    }

    fn into_tokens(self) -> Vec<TokenWithSpan> {
        self.all
    }
}

fn is_user_variable(name: &str) -> bool {
    name.starts_with('@') && !name.starts_with("@@")
}

/// Refuses statements nested or chained beyond what the parser and the tree can take.
fn check_limits(t: &Toks) -> Result<(), String> {
    let mut chains: Vec<usize> = vec![0];
    let mut global = 0usize;
    for n in 0..t.len() {
        let Some(token) = t.get(n) else { break };
        let chained = match token {
            Token::LParen => {
                chains.push(0);
                if chains.len() > MAX_NESTING + 1 {
                    return Err(format!(
                        "it is too deeply nested (more than {MAX_NESTING} levels of parentheses)"
                    ));
                }
                false
            }
            Token::RParen => {
                if chains.len() > 1 {
                    chains.pop();
                }
                false
            }
            Token::Comma => {
                if let Some(c) = chains.last_mut() {
                    *c = 0;
                }
                false
            }
            Token::Word(w) if w.quote_style.is_none() => {
                let v = w.value.as_str();
                if ["UNION", "INTERSECT", "EXCEPT", "JOIN", "STRAIGHT_JOIN"]
                    .iter()
                    .any(|k| v.eq_ignore_ascii_case(k))
                {
                    global += 1;
                    if global > MAX_CHAIN {
                        return Err(format!(
                            "it is too complex (more than {MAX_CHAIN} set operations and joins)"
                        ));
                    }
                }
                [
                    "AND", "OR", "XOR", "NOT", "IS", "LIKE", "RLIKE", "REGEXP", "DIV", "MOD",
                    "BETWEEN", "IN", "COLLATE", "INTERVAL", "SOUNDS", "ESCAPE", "BINARY",
                ]
                .iter()
                .any(|k| v.eq_ignore_ascii_case(k))
            }
            Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::DuckIntDiv
            | Token::Mod
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::Tilde
            | Token::ExclamationMark
            | Token::Assignment
            | Token::Arrow
            | Token::LongArrow => true,
            _ => false,
        };
        if chained {
            if let Some(c) = chains.last_mut() {
                *c += 1;
                if *c > MAX_CHAIN {
                    return Err(format!(
                        "it is too complex (more than {MAX_CHAIN} chained operators)"
                    ));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Stage 3: routing by leading keywords; statements sqlparser does not know
// ---------------------------------------------------------------------------------------------

fn analyze_tokens(mut t: Toks, ctx: &Context<'_>, depth: usize) -> Result<Analysis, String> {
    // One statement: trailing `;` dropped, any other `;` refused.
    while t.len() > 0 && t.get(t.len() - 1) == Some(&Token::SemiColon) {
        let last = t.len() - 1;
        t.remove(last, last + 1);
    }
    if t.len() == 0 {
        return Err("the statement is empty".into());
    }
    if (0..t.len()).any(|n| t.get(n) == Some(&Token::SemiColon)) {
        return Err(
            "it holds more than one statement (or a compound statement body, which is not \
             analysed)"
                .into(),
        );
    }
    check_limits(&t)?;
    // `a MOD b` is `a % b` (sqlparser knows only the function `MOD(a, b)`).
    for n in 1..t.len() {
        if t.is(n, "MOD") && t.get(n + 1) != Some(&Token::LParen) {
            let i = t.sig[n];
            t.all[i].token = Token::Mod;
        }
    }

    use StatementClass as C;
    let simple = |class, op| -> Result<Analysis, String> { Ok(Analysis::new(class, op)) };
    // Keyword-only statements must not hide a subquery.
    let no_query = |t: &Toks| -> Result<(), String> {
        if t.may_contain_query() {
            Err("a subquery in this kind of statement is not analysed".into())
        } else {
            Ok(())
        }
    };

    let k0 = t.leading_keyword();
    if t.get(0) != Some(&Token::LParen) {
        match k0.as_str() {
            "SHOW" => return show(&t, ctx),
            "GRANT" => {
                no_query(&t)?;
                return simple(C::Dcl, Operation::Grant);
            }
            "REVOKE" => {
                no_query(&t)?;
                return simple(C::Dcl, Operation::Revoke);
            }
            "CREATE" => {
                if let Some(a) = create_database(&t)? {
                    return Ok(a);
                }
                if let Some(a) = create_lexical(&t, ctx)? {
                    return Ok(a);
                }
                // `CREATE FULLTEXT|SPATIAL INDEX` is an index like any other.
                if t.is_any(1, &["FULLTEXT", "SPATIAL"]) && t.is(2, "INDEX") {
                    t.remove(1, 2);
                }
                // `CREATE VIEW … WITH [CASCADED|LOCAL] CHECK OPTION`: not known to sqlparser,
                // no table in it.
                let len = t.len();
                if len > 4 && t.is(len - 2, "CHECK") && t.is(len - 1, "OPTION") {
                    let with = if t.is_any(len - 3, &["CASCADED", "LOCAL"]) {
                        len - 4
                    } else {
                        len - 3
                    };
                    if t.is(with, "WITH") {
                        t.remove(with, len);
                    }
                }
            }
            "ALTER" => {
                if let Some(a) = alter_table(&t, ctx)? {
                    return Ok(a);
                }
                if t.is(1, "USER") {
                    no_query(&t)?;
                    return simple(C::Dcl, Operation::AlterUser);
                }
                if t.is_any(1, &["DATABASE", "SCHEMA"]) {
                    no_query(&t)?;
                    let mut a = Analysis::new(C::Ddl, Operation::AlterDatabase);
                    match t.word(2) {
                        Some(w) if w.quote_style.is_some() || !is_database_option(&w.value) => {
                            a.databases.push(w.value.clone())
                        }
                        _ => a.databases.extend(ctx.current_db.map(str::to_owned)),
                    }
                    return Ok(a);
                }
            }
            "DROP" => {
                if t.is(1, "USER") {
                    no_query(&t)?;
                    return simple(C::Dcl, Operation::DropUser);
                }
                if t.is(1, "ROLE") {
                    no_query(&t)?;
                    return simple(C::Dcl, Operation::DropRole);
                }
                if t.is(1, "EVENT") {
                    no_query(&t)?;
                    return simple(C::Ddl, Operation::DropEvent);
                }
                if t.is(1, "PREPARE") {
                    no_query(&t)?;
                    return simple(C::Session, Operation::DeallocatePrepare);
                }
            }
            "RENAME" if t.is(1, "USER") => {
                no_query(&t)?;
                return simple(C::Dcl, Operation::RenameUser);
            }
            "SET" => {
                if let Some(a) = set_lexical(&t, ctx, depth)? {
                    return Ok(a);
                }
                // `SET @v := x` is `SET @v = x` (sqlparser knows only `=`). Only the first
                // assignment operator of each comma-separated assignment is the SET's own; a
                // later `:=` is an assignment expression inside the value.
                let mut level = 0usize;
                let mut seen = false;
                for n in 1..t.len() {
                    match t.get(n) {
                        Some(Token::LParen) => level += 1,
                        Some(Token::RParen) => level = level.saturating_sub(1),
                        Some(Token::Comma) if level == 0 => seen = false,
                        Some(Token::Eq) if level == 0 => seen = true,
                        Some(Token::Assignment) if level == 0 && !seen => {
                            let i = t.sig[n];
                            t.all[i].token = Token::Eq;
                            seen = true;
                        }
                        _ => {}
                    }
                }
            }
            "LOAD" => {
                if t.is_any(1, &["DATA", "XML"]) {
                    return load_data(&t, ctx);
                }
                if t.is(1, "INDEX") {
                    no_query(&t)?;
                    return simple(C::Admin, Operation::CacheIndex);
                }
                return Err("this LOAD statement is not analysed".into());
            }
            "PREPARE" => return prepare(&t, ctx, depth),
            "EXECUTE" => {
                return Err(
                    "EXECUTE runs a statement prepared with SQL-level PREPARE, whose \
                            text is not visible here (use the binary protocol, COM_STMT_PREPARE)"
                        .into(),
                )
            }
            "DEALLOCATE" if t.is(1, "PREPARE") => {
                no_query(&t)?;
                return simple(C::Session, Operation::DeallocatePrepare);
            }
            "HANDLER" => {
                return Err("HANDLER reads tables below SQL; it is not analysed by design".into())
            }
            "XA" => {
                no_query(&t)?;
                return simple(C::Transaction, Operation::Xa);
            }
            // COMMIT|ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE],
            // ROLLBACK [WORK] TO [SAVEPOINT] name: words only.
            "COMMIT" | "ROLLBACK" if (1..t.len()).all(|n| t.word(n).is_some()) => {
                let op = if k0 == "COMMIT" {
                    Operation::Commit
                } else {
                    Operation::Rollback
                };
                return simple(C::Transaction, op);
            }
            "BEGIN" => {
                let plain = t.len() == 1 || (t.len() == 2 && t.is(1, "WORK"));
                if !plain {
                    return Err("BEGIN … is a compound statement (BEGIN NOT ATOMIC … END); \
                                not analysed"
                        .into());
                }
                return simple(C::Transaction, Operation::Begin);
            }
            "START" => {
                if t.is(1, "TRANSACTION") {
                    // Options are keywords only (READ ONLY, READ WRITE, WITH CONSISTENT SNAPSHOT).
                    let options_ok = (2..t.len()).all(|n| {
                        t.is_any(
                            n,
                            &["READ", "ONLY", "WRITE", "WITH", "CONSISTENT", "SNAPSHOT"],
                        ) || t.get(n) == Some(&Token::Comma)
                    });
                    if !options_ok {
                        return Err("START TRANSACTION with unknown options".into());
                    }
                    return simple(C::Transaction, Operation::Begin);
                }
                if t.is_any(1, &["SLAVE", "REPLICA", "ALL"]) || t.string(1).is_some() {
                    no_query(&t)?;
                    return simple(C::Admin, Operation::StartReplica);
                }
            }
            "STOP" if t.is_any(1, &["SLAVE", "REPLICA", "ALL"]) || t.string(1).is_some() => {
                no_query(&t)?;
                return simple(C::Admin, Operation::StopReplica);
            }
            "CHANGE" if t.is_any(1, &["MASTER", "REPLICATION"]) || t.string(1).is_some() => {
                no_query(&t)?;
                return simple(C::Admin, Operation::ChangeMaster);
            }
            // Administration whose leading keyword alone says what it is (no subquery).
            "PURGE" | "RESET" | "SHUTDOWN" | "INSTALL" | "UNINSTALL" | "BINLOG" | "FLUSH"
            | "KILL" => {
                no_query(&t)?;
                let op = match k0.as_str() {
                    "PURGE" => Operation::Purge,
                    "RESET" => Operation::Reset,
                    "SHUTDOWN" => Operation::Shutdown,
                    "INSTALL" => Operation::InstallPlugin,
                    "UNINSTALL" => Operation::UninstallPlugin,
                    "BINLOG" => Operation::Binlog,
                    "FLUSH" => Operation::Flush,
                    _ => Operation::Kill,
                };
                return simple(C::Admin, op);
            }
            "CACHE" if t.is(1, "INDEX") => {
                no_query(&t)?;
                return simple(C::Admin, Operation::CacheIndex);
            }
            "OPTIMIZE" | "REPAIR" | "CHECK" | "CHECKSUM" => return table_maintenance(&t, ctx),
            "ANALYZE" => {
                let mut n = 1;
                if t.is(n, "FORMAT") && t.get(n + 1) == Some(&Token::Eq) {
                    n += 3;
                }
                if t.is_any(
                    n,
                    &["SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE", "WITH"],
                ) || t.get(n) == Some(&Token::LParen)
                {
                    // MariaDB's ANALYZE <statement> executes it: the statement's own analysis.
                    t.remove(0, n);
                    return analyze_tokens(t, ctx, depth);
                }
                return table_maintenance(&t, ctx);
            }
            "HELP" => {
                no_query(&t)?;
                return simple(C::Show, Operation::Help);
            }
            "LOCK" if t.is_any(1, &["TABLE", "TABLES"]) => return lock_tables(&t, ctx),
            "UNLOCK" if t.is_any(1, &["TABLE", "TABLES"]) && t.len() == 2 => {
                return simple(C::Transaction, Operation::UnlockTables)
            }
            "DO" => {
                // DO evaluates expressions like SELECT does, without a result.
                let i = t.sig[0];
                t.all[i].token = Token::make_keyword("SELECT");
                t.reindex();
                let mut a = parse_and_analyze(t, ctx, &Rewrites::default())?;
                if a.operation != Operation::Select {
                    return Err("DO with a form that is not analysed".into());
                }
                a.operation = Operation::Do;
                return Ok(a);
            }
            // MariaDB's EXPLAIN EXTENDED / PARTITIONS (old spellings): same as EXPLAIN.
            "EXPLAIN" | "DESCRIBE" | "DESC" if t.is_any(1, &["EXTENDED", "PARTITIONS"]) => {
                t.remove(1, 2);
            }
            "UPDATE" => {
                while t.is_any(1, &["LOW_PRIORITY", "IGNORE"]) {
                    t.remove(1, 2);
                }
                // MySQL's `UPDATE a, b SET …` (sqlparser knows only `a JOIN b`): a comma
                // between table references is a cross join.
                let mut level = 0usize;
                let mut n = 1;
                while n < t.len() {
                    match t.get(n) {
                        Some(Token::LParen) => level += 1,
                        Some(Token::RParen) => level = level.saturating_sub(1),
                        Some(Token::Comma) if level == 0 => {
                            t.replace(
                                n,
                                &[Token::make_keyword("CROSS"), Token::make_keyword("JOIN")],
                            );
                            n += 1;
                        }
                        _ if level == 0 && t.is(n, "SET") => break,
                        _ => {}
                    }
                    n += 1;
                }
            }
            "DELETE" => {
                while t.is_any(1, &["LOW_PRIORITY", "QUICK", "IGNORE"]) {
                    t.remove(1, 2);
                }
                // `DELETE t1.*, t2.* FROM …` / `DELETE FROM t1.* USING …`: the `.*` is noise.
                let mut level = 0usize;
                let mut n = 1;
                while n < t.len() {
                    match t.get(n) {
                        Some(Token::LParen) => level += 1,
                        Some(Token::RParen) => level = level.saturating_sub(1),
                        Some(Token::Period) if level == 0 && t.get(n + 1) == Some(&Token::Mul) => {
                            t.remove(n, n + 2);
                            continue;
                        }
                        _ if level == 0 && t.is(n, "WHERE") => break,
                        _ => {}
                    }
                    n += 1;
                }
            }
            "GET" | "SIGNAL" | "RESIGNAL" | "BACKUP" | "DECLARE" => {
                return Err(format!("{k0} statements are not analysed"));
            }
            _ => {}
        }
    }

    let mut rewrites = Rewrites::default();
    strip_lock_in_share_mode(&mut t);
    if t.get(0) == Some(&Token::LParen) || t.is_any(0, &["SELECT", "WITH", "VALUES"]) {
        strip_select_into(&mut t, &mut rewrites)?;
    }
    let fallback = (k0 == "CREATE").then(|| Toks {
        all: t.all.clone(),
        sig: t.sig.clone(),
    });
    match parse_and_analyze(t, ctx, &rewrites) {
        Err(e) if e.starts_with("it could not be parsed") => {
            match fallback.map(|t| create_table_lexical(&t, ctx)) {
                Some(Ok(Some(a))) => Ok(a),
                _ => Err(e),
            }
        }
        Ok(mut a) if a.operation == Operation::CreateTable => {
            if let Some(t) = fallback {
                for table in references(&t, ctx)? {
                    push_unique(&mut a.reads, table);
                }
            }
            Ok(a)
        }
        result => result,
    }
}

/// The tables named after `REFERENCES` (foreign keys): the server reads them to check the
/// constraint.
fn references(t: &Toks, ctx: &Context<'_>) -> Result<Vec<TableRef>, String> {
    let mut out = Vec::new();
    for n in 0..t.len() {
        if t.is(n, "REFERENCES") {
            let (words, _) = t.name_at(n + 1).ok_or("REFERENCES without a table")?;
            push_unique(&mut out, table_from_words(&words, ctx)?);
        }
    }
    Ok(out)
}

/// `CREATE [OR REPLACE] [TEMPORARY] TABLE [IF NOT EXISTS] t (…) [options]` that sqlparser
/// cannot parse (MariaDB options, partitioning): the table is written, tables a foreign key
/// references are read. Only when no query can be in it (`… AS SELECT` needs the parser);
/// `None` otherwise.
fn create_table_lexical(t: &Toks, ctx: &Context<'_>) -> Result<Option<Analysis>, String> {
    let mut n = 1;
    if t.is(n, "OR") && t.is(n + 1, "REPLACE") {
        n += 2;
    }
    if t.is(n, "TEMPORARY") {
        n += 1;
    }
    if !t.is(n, "TABLE") {
        return Ok(None);
    }
    n += 1;
    if t.is(n, "IF") && t.is(n + 1, "NOT") && t.is(n + 2, "EXISTS") {
        n += 3;
    }
    let (words, next) = t.name_at(n).ok_or("CREATE TABLE without a name")?;
    // A query (`SELECT`, `WITH` other than `WITH SYSTEM VERSIONING`, `TABLE`, `VALUES` other
    // than a partition's `VALUES LESS THAN` / `VALUES IN`, `AS` outside the column list) or a
    // copy (`LIKE`) anywhere.
    let mut level = 0usize;
    let query_or_copy = (next..t.len()).any(|i| {
        match t.get(i) {
            Some(Token::LParen) => level += 1,
            Some(Token::RParen) => level = level.saturating_sub(1),
            _ => {}
        }
        t.is_any(i, &["SELECT", "TABLE", "LIKE"])
            || (t.is(i, "WITH") && !t.is(i + 1, "SYSTEM"))
            || (t.is(i, "VALUES") && !t.is_any(i + 1, &["LESS", "IN"]))
            || (level == 0 && t.is(i, "AS"))
    });
    if query_or_copy || t.get(next) != Some(&Token::LParen) {
        return Ok(None);
    }
    let mut a = Analysis::new(StatementClass::Ddl, Operation::CreateTable);
    a.writes.push(table_from_words(&words, ctx)?);
    a.reads = references(t, ctx)?;
    Ok(Some(a))
}

/// `ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] t …` (MariaDB's options are many; sqlparser
/// knows few): the table, a new name (`RENAME [TO|AS] u`), a table exchanged with a partition
/// (`EXCHANGE PARTITION p WITH TABLE u`), all written; tables a foreign key references
/// (`REFERENCES u`) are read. `None` when this is not `ALTER … TABLE`.
fn alter_table(t: &Toks, ctx: &Context<'_>) -> Result<Option<Analysis>, String> {
    let mut n = 1;
    while t.is_any(n, &["ONLINE", "IGNORE"]) {
        n += 1;
    }
    if !t.is(n, "TABLE") {
        return Ok(None);
    }
    check_no_query(t)?;
    n += 1;
    if t.is(n, "IF") && t.is(n + 1, "EXISTS") {
        n += 2;
    }
    let (words, mut n) = t.name_at(n).ok_or("ALTER TABLE without a table name")?;
    let mut a = Analysis::new(StatementClass::Ddl, Operation::AlterTable);
    a.writes.push(table_from_words(&words, ctx)?);
    a.reads = references(t, ctx)?;
    let mut level = 0usize;
    while n < t.len() {
        match t.get(n) {
            Some(Token::LParen) => level += 1,
            Some(Token::RParen) => level = level.saturating_sub(1),
            _ if level > 0 => {}
            _ if t.is(n, "RENAME")
                && !t.is_any(n + 1, &["COLUMN", "INDEX", "KEY", "CONSTRAINT"]) =>
            {
                let at = if t.is_any(n + 1, &["TO", "AS"]) {
                    n + 2
                } else {
                    n + 1
                };
                let (words, _) = t.name_at(at).ok_or("RENAME without a table name")?;
                push_unique(&mut a.writes, table_from_words(&words, ctx)?);
            }
            _ if t.is(n, "WITH")
                && t.is(n + 1, "TABLE")
                && t.is(n.saturating_sub(2), "PARTITION") =>
            {
                let (words, _) = t.name_at(n + 2).ok_or("WITH TABLE without a table name")?;
                push_unique(&mut a.writes, table_from_words(&words, ctx)?);
            }
            _ if t.is(n, "TRUNCATE") && t.is(n + 1, "PARTITION") => a.flags.drops_data = true,
            _ if t.is(n, "DROP")
                && !t.is_any(
                    n + 1,
                    &[
                        "INDEX",
                        "KEY",
                        "FOREIGN",
                        "PRIMARY",
                        "CONSTRAINT",
                        "CHECK",
                        "DEFAULT",
                        "PERIOD",
                        "SYSTEM",
                    ],
                ) =>
            {
                a.flags.drops_data = true
            }
            _ => {}
        }
        n += 1;
    }
    Ok(Some(a))
}

/// `CREATE [OR REPLACE] {DATABASE|SCHEMA} [IF NOT EXISTS] name [options]`; `None` for other
/// `CREATE`s.
fn create_database(t: &Toks) -> Result<Option<Analysis>, String> {
    let mut n = 1;
    if t.is(n, "OR") && t.is(n + 1, "REPLACE") {
        n += 2;
    }
    if !t.is_any(n, &["DATABASE", "SCHEMA"]) {
        return Ok(None);
    }
    check_no_query(t)?;
    n += 1;
    if t.is(n, "IF") && t.is(n + 1, "NOT") && t.is(n + 2, "EXISTS") {
        n += 3;
    }
    let name = t.word(n).ok_or("CREATE DATABASE without a name")?;
    if name.quote_style.is_none() && is_reserved(&name.value) {
        return Err(format!(
            "`{}` is a reserved word where a name is expected",
            name.value
        ));
    }
    let mut a = Analysis::new(StatementClass::Ddl, Operation::CreateDatabase);
    a.databases.push(normalize_schema(&name.value));
    Ok(Some(a))
}

/// Options that may follow `ALTER DATABASE` directly (the database is then the current one).
fn is_database_option(word: &str) -> bool {
    [
        "DEFAULT",
        "CHARACTER",
        "CHARSET",
        "COLLATE",
        "COMMENT",
        "UPGRADE",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}

/// A table reference from name words (`[schema, name]` or `[name]`).
fn table_from_words(words: &[&Word], ctx: &Context<'_>) -> Result<TableRef, String> {
    for w in words {
        if w.quote_style.is_none() && is_reserved(&w.value) {
            return Err(format!(
                "`{}` is a reserved word where a table name is expected",
                w.value
            ));
        }
    }
    match words {
        [name] => Ok(TableRef {
            schema: ctx.current_db.map(str::to_owned),
            name: name.value.clone(),
        }),
        [schema, name] => Ok(TableRef::new(Some(&schema.value), &name.value)),
        _ => Err("a table name with more than two parts".into()),
    }
}

fn show(t: &Toks, ctx: &Context<'_>) -> Result<Analysis, String> {
    if t.may_contain_query() {
        return Err("a subquery in SHOW is not analysed".into());
    }
    let mut a = Analysis::new(StatementClass::Show, Operation::Show);
    let mut n = 1;
    while t.is_any(n, &["FULL", "EXTENDED", "GLOBAL", "SESSION"]) {
        n += 1;
    }
    // SHOW COLUMNS|INDEX FROM t [FROM db], SHOW CREATE TABLE|VIEW|SEQUENCE t: table metadata.
    let table_at = ((t.is_any(n, &["COLUMNS", "FIELDS", "INDEX", "INDEXES", "KEYS"])
        && t.is_any(n + 1, &["FROM", "IN"]))
        || (t.is(n, "CREATE") && t.is_any(n + 1, &["TABLE", "VIEW", "SEQUENCE"])))
    .then_some(n + 2);
    if let Some(at) = table_at {
        let (words, next) = t.name_at(at).ok_or("SHOW without a table name")?;
        let mut table = table_from_words(&words, ctx)?;
        if words.len() == 1 && t.is_any(next, &["FROM", "IN"]) {
            let db = t.word(next + 1).ok_or("SHOW … FROM without a database")?;
            table.schema = Some(normalize_schema(&db.value));
        }
        a.reads.push(table);
    }
    // `SHOW … WHERE expr` may call a stored function.
    a.flags.calls_function = (1..t.len()).any(|n| {
        t.get(n + 1) == Some(&Token::LParen)
            && matches!(t.word(n), Some(w) if w.quote_style.is_some()
                || !(is_builtin_function(&w.value) || is_reserved(&w.value)))
    });
    Ok(a)
}

/// `CREATE USER|ROLE`, stored programs; `None` for what sqlparser handles.
fn create_lexical(t: &Toks, ctx: &Context<'_>) -> Result<Option<Analysis>, String> {
    use StatementClass as C;
    let mut n = 1;
    if t.is(n, "OR") && t.is(n + 1, "REPLACE") {
        n += 2;
    }
    if t.is(n, "USER") {
        check_no_query(t)?;
        return Ok(Some(Analysis::new(C::Dcl, Operation::CreateUser)));
    }
    if t.is(n, "ROLE") {
        check_no_query(t)?;
        return Ok(Some(Analysis::new(C::Dcl, Operation::CreateRole)));
    }
    if t.is(n, "SERVER") {
        return Err("CREATE SERVER is not analysed".into());
    }
    // [DEFINER = user] [AGGREGATE] PROCEDURE|FUNCTION|TRIGGER|EVENT
    if t.is(n, "DEFINER") && t.get(n + 1) == Some(&Token::Eq) {
        n += 2;
        // user | 'user'@'host' | CURRENT_USER[()]
        n += 1;
        if let Some(Token::Word(w)) = t.get(n) {
            if w.value.starts_with('@') {
                n += 1;
            }
        }
        if t.get(n) == Some(&Token::AtSign) {
            n += 2;
        }
        if t.get(n) == Some(&Token::LParen) && t.get(n + 1) == Some(&Token::RParen) {
            n += 2;
        }
    }
    if t.is(n, "AGGREGATE") {
        n += 1;
    }
    let op = if t.is(n, "PROCEDURE") {
        Operation::CreateProcedure
    } else if t.is(n, "FUNCTION") {
        Operation::CreateFunction
    } else if t.is(n, "TRIGGER") {
        Operation::CreateTrigger
    } else if t.is(n, "EVENT") {
        Operation::CreateEvent
    } else {
        return Ok(None);
    };
    let mut a = Analysis::new(C::Ddl, op);
    a.flags.stored_program = true;
    if op == Operation::CreateTrigger {
        // … TRIGGER name {BEFORE|AFTER} {INSERT|UPDATE|DELETE} ON table …
        let on = (n..t.len())
            .find(|&i| {
                t.is(i, "ON") && t.is_any(i.saturating_sub(1), &["INSERT", "UPDATE", "DELETE"])
            })
            .ok_or("CREATE TRIGGER without ON table")?;
        let (words, _) = t.name_at(on + 1).ok_or("CREATE TRIGGER without a table")?;
        a.writes.push(table_from_words(&words, ctx)?);
    }
    Ok(Some(a))
}

fn check_no_query(t: &Toks) -> Result<(), String> {
    if t.may_contain_query() {
        Err("a subquery in this kind of statement is not analysed".into())
    } else {
        Ok(())
    }
}

/// The `SET` forms sqlparser does not know or reads wrongly; `None` for ordinary assignments.
fn set_lexical(t: &Toks, ctx: &Context<'_>, depth: usize) -> Result<Option<Analysis>, String> {
    use StatementClass as C;
    if t.is(1, "PASSWORD") {
        check_no_query(t)?;
        return Ok(Some(Analysis::new(C::Dcl, Operation::SetPassword)));
    }
    if t.is(1, "ROLE") {
        check_no_query(t)?;
        return Ok(Some(Analysis::new(C::Dcl, Operation::SetRole)));
    }
    if t.is(1, "DEFAULT") && t.is(2, "ROLE") {
        check_no_query(t)?;
        return Ok(Some(Analysis::new(C::Dcl, Operation::SetDefaultRole)));
    }
    if t.is(1, "STATEMENT") {
        return set_statement(t, ctx, depth).map(Some);
    }
    if (t.is(1, "CHARACTER") && t.is(2, "SET")) || t.is(1, "CHARSET") {
        check_no_query(t)?;
        let at = if t.is(1, "CHARSET") { 2 } else { 3 };
        let mut a = Analysis::new(C::Session, Operation::SetNames);
        a.flags.charset = Some(
            t.word(at)
                .map(|w| w.value.clone())
                .or_else(|| t.string(at).map(str::to_owned))
                .unwrap_or_else(|| "?".into()),
        );
        return Ok(Some(a));
    }
    // SET [GLOBAL|SESSION|LOCAL] TRANSACTION …: sqlparser drops the scope.
    let scope_len = usize::from(t.is_any(1, &["GLOBAL", "SESSION", "LOCAL"]));
    if t.is(1 + scope_len, "TRANSACTION") {
        check_no_query(t)?;
        if t.is(1, "GLOBAL") {
            let mut a = Analysis::new(C::Admin, Operation::SetGlobal);
            a.flags.sets_variable = true;
            a.flags.variables.push("global.transaction".into());
            return Ok(Some(a));
        }
        return Ok(Some(Analysis::new(
            C::Transaction,
            Operation::SetTransaction,
        )));
    }
    if t.is_any(1, &["PERSIST", "PERSIST_ONLY"]) {
        check_no_query(t)?;
        let mut a = Analysis::new(C::Admin, Operation::SetGlobal);
        a.flags.sets_variable = true;
        return Ok(Some(a));
    }
    Ok(None)
}

/// `SET STATEMENT var = value [, …] FOR statement` (MariaDB): the inner statement's analysis,
/// plus the (statement-scoped) variable assignments.
fn set_statement(t: &Toks, ctx: &Context<'_>, depth: usize) -> Result<Analysis, String> {
    if depth >= MAX_INNER_DEPTH {
        return Err("SET STATEMENT nested too deeply".into());
    }
    let mut level = 0usize;
    let mut for_at = None;
    for n in 2..t.len() {
        match t.get(n) {
            Some(Token::LParen) => level += 1,
            Some(Token::RParen) => level = level.saturating_sub(1),
            _ if level == 0 && t.is(n, "FOR") => {
                for_at = Some(n);
                break;
            }
            _ => {}
        }
    }
    let for_at = for_at.ok_or("SET STATEMENT without FOR")?;
    // The assignments, as an ordinary SET.
    let mut set_part = Toks {
        all: t.all[..t.sig[for_at]].to_vec(),
        sig: Vec::new(),
    };
    set_part.reindex();
    set_part.remove(1, 2); // STATEMENT
    if set_part.may_contain_query() {
        return Err("a subquery in SET STATEMENT is not analysed".into());
    }
    let set = parse_and_analyze(set_part, ctx, &Rewrites::default())?;
    if set.class != StatementClass::Session || set.operation != Operation::Set {
        return Err("SET STATEMENT with other than session variables".into());
    }
    // Whether the server lexes the inner statement with the statement's or the session's
    // sql_mode and character set, analysis must not depend on it.
    let lexes_alike = match &set.flags.sql_mode {
        None => true,
        Some(SqlModeChange::Value(v)) => {
            let new = ctx.mode.with_sql_mode(v);
            new.ansi_quotes == ctx.mode.ansi_quotes
                && new.no_backslash_escapes == ctx.mode.no_backslash_escapes
        }
        Some(_) => false,
    };
    if !lexes_alike || set.flags.charset.is_some() {
        return Err(
            "SET STATEMENT changing how the statement is lexed (sql_mode, character set) is \
             not analysed"
                .into(),
        );
    }
    let mut inner = Toks {
        all: t.all[t.sig[for_at] + 1..].to_vec(),
        sig: Vec::new(),
    };
    inner.reindex();
    let mut a = analyze_tokens(inner, ctx, depth + 1)?;
    a.flags.sets_variable = true;
    a.flags.variables.extend(set.flags.variables);
    a.flags.uses_user_variables |= set.flags.uses_user_variables;
    a.flags.calls_function |= set.flags.calls_function;
    Ok(a)
}

/// `LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] [LOCAL] INFILE 'file' [REPLACE|IGNORE]
/// INTO TABLE t …`.
fn load_data(t: &Toks, ctx: &Context<'_>) -> Result<Analysis, String> {
    if t.may_contain_query() {
        return Err("a subquery in LOAD DATA is not analysed".into());
    }
    let mut n = 2;
    if t.is_any(n, &["LOW_PRIORITY", "CONCURRENT"]) {
        n += 1;
    }
    let local = t.is(n, "LOCAL");
    if local {
        n += 1;
    }
    if !t.is(n, "INFILE") || t.string(n + 1).is_none() {
        return Err("LOAD DATA without INFILE 'file'".into());
    }
    n += 2;
    if t.is_any(n, &["REPLACE", "IGNORE"]) {
        n += 1;
    }
    if !(t.is(n, "INTO") && t.is(n + 1, "TABLE")) {
        return Err("LOAD DATA without INTO TABLE".into());
    }
    let (words, _) = t.name_at(n + 2).ok_or("LOAD DATA without a table")?;
    let mut a = Analysis::new(StatementClass::Write, Operation::LoadData);
    a.writes.push(table_from_words(&words, ctx)?);
    a.flags.local_infile = local;
    a.flags.server_file = !local;
    // `SET col = expr` may call functions.
    a.flags.calls_function = (n + 2..t.len()).any(|i| {
        t.get(i + 1) == Some(&Token::LParen)
            && matches!(t.word(i), Some(w) if w.quote_style.is_some() || !is_builtin_function(&w.value))
    });
    a.flags.uses_user_variables = (n + 2..t.len()).any(|i| t.user_variable(i).is_some());
    Ok(a)
}

/// `PREPARE name FROM 'text'`: the analysis of `text`; `FROM @var` cannot be analysed.
fn prepare(t: &Toks, ctx: &Context<'_>, depth: usize) -> Result<Analysis, String> {
    if !(t.word(1).is_some() && t.is(2, "FROM")) {
        return Err("PREPARE without name FROM".into());
    }
    if t.user_variable(3).is_some()
        || t.get(3)
            .is_some_and(|tok| !matches!(tok, Token::SingleQuotedString(_)))
    {
        return Err(
            "PREPARE … FROM @variable: the statement text is in a variable and cannot be \
             analysed"
                .into(),
        );
    }
    let text = t.string(3).ok_or("PREPARE without statement text")?;
    if t.len() != 4 {
        return Err("PREPARE … FROM with more than one string".into());
    }
    if depth >= MAX_INNER_DEPTH {
        return Err("PREPARE nested too deeply".into());
    }
    let mut a = analyze_bytes(text.as_bytes(), ctx, depth + 1)
        .map_err(|e| format!("the prepared statement could not be analysed: {}", e.reason))?;
    if a.flags.prepare.is_some() {
        return Err("PREPARE of a PREPARE".into());
    }
    a.flags.prepare = t.word(1).map(|w| w.value.clone());
    Ok(a)
}

/// `OPTIMIZE|REPAIR|CHECK|CHECKSUM|ANALYZE [NO_WRITE_TO_BINLOG|LOCAL] TABLE t [, …] [options]`.
fn table_maintenance(t: &Toks, ctx: &Context<'_>) -> Result<Analysis, String> {
    if t.may_contain_query() {
        return Err("a subquery in a table maintenance statement is not analysed".into());
    }
    let op = if t.is(0, "OPTIMIZE") {
        Operation::OptimizeTable
    } else if t.is(0, "REPAIR") {
        Operation::RepairTable
    } else if t.is(0, "CHECK") {
        Operation::CheckTable
    } else if t.is(0, "CHECKSUM") {
        Operation::ChecksumTable
    } else {
        Operation::AnalyzeTable
    };
    let mut n = 1;
    if t.is_any(n, &["NO_WRITE_TO_BINLOG", "LOCAL"]) {
        n += 1;
    }
    if !t.is_any(n, &["TABLE", "TABLES"]) {
        return Err(format!("{} without TABLE is not analysed", op.name()));
    }
    n += 1;
    let mut a = Analysis::new(StatementClass::Admin, op);
    loop {
        let (words, next) = t.name_at(n).ok_or("a table name is expected")?;
        let table = table_from_words(&words, ctx)?;
        // OPTIMIZE and REPAIR rebuild the table; CHECK, CHECKSUM and ANALYZE read it
        // (ANALYZE updates statistics only).
        if matches!(op, Operation::OptimizeTable | Operation::RepairTable) {
            push_unique(&mut a.writes, table);
        } else {
            push_unique(&mut a.reads, table);
        }
        n = next;
        if t.get(n) == Some(&Token::Comma) {
            n += 1;
            continue;
        }
        break;
    }
    Ok(a)
}

/// `LOCK TABLE[S] t [[AS] alias] {READ [LOCAL] | [LOW_PRIORITY] WRITE [CONCURRENT]} [, …]`.
fn lock_tables(t: &Toks, ctx: &Context<'_>) -> Result<Analysis, String> {
    if t.may_contain_query() {
        return Err("a subquery in LOCK TABLES is not analysed".into());
    }
    let mut a = Analysis::new(StatementClass::Transaction, Operation::LockTables);
    let mut n = 2;
    loop {
        let (words, next) = t
            .name_at(n)
            .ok_or("LOCK TABLES: a table name is expected")?;
        let table = table_from_words(&words, ctx)?;
        n = next;
        if t.is(n, "AS") {
            n += 2;
        } else if t.word(n).is_some() && !t.is_any(n, &["READ", "WRITE", "LOW_PRIORITY"]) {
            n += 1;
        }
        if t.is(n, "READ") {
            n += 1;
            if t.is(n, "LOCAL") {
                n += 1;
            }
            push_unique(&mut a.reads, table);
        } else {
            if t.is(n, "LOW_PRIORITY") {
                n += 1;
            }
            if !t.is(n, "WRITE") {
                return Err("LOCK TABLES: READ or WRITE is expected".into());
            }
            n += 1;
            if t.is(n, "CONCURRENT") {
                n += 1;
            }
            push_unique(&mut a.writes, table);
        }
        if t.is(n, "WAIT") {
            n += 2;
        } else if t.is(n, "NOWAIT") {
            n += 1;
        }
        match t.get(n) {
            Some(Token::Comma) => n += 1,
            None => return Ok(a),
            Some(_) => return Err("LOCK TABLES: unexpected tokens".into()),
        }
    }
}

/// What was rewritten out of the tokens before parsing.
#[derive(Default)]
struct Rewrites {
    into_outfile: bool,
    into_variables: Vec<String>,
}

/// Removes `LOCK IN SHARE MODE` (MySQL's old spelling of `FOR SHARE`; a locking read).
fn strip_lock_in_share_mode(t: &mut Toks) {
    let mut n = 0;
    while n + 3 < t.len() {
        if t.is(n, "LOCK") && t.is(n + 1, "IN") && t.is(n + 2, "SHARE") && t.is(n + 3, "MODE") {
            t.remove(n, n + 4);
        } else {
            n += 1;
        }
    }
}

/// Removes `INTO OUTFILE 'f' [options]`, `INTO DUMPFILE 'f'` and `INTO @v [, @w …]` from a
/// query, recording them (sqlparser does not know the first two, nor a trailing `INTO @v`).
fn strip_select_into(t: &mut Toks, rewrites: &mut Rewrites) -> Result<(), String> {
    let mut n = 0;
    while n + 1 < t.len() {
        if !t.is(n, "INTO") {
            n += 1;
            continue;
        }
        if t.is_any(n + 1, &["OUTFILE", "DUMPFILE"]) {
            if rewrites.into_outfile {
                return Err("more than one INTO OUTFILE".into());
            }
            let dumpfile = t.is(n + 1, "DUMPFILE");
            if t.string(n + 2).is_none() {
                return Err("INTO OUTFILE without a file name".into());
            }
            let mut j = n + 3;
            if !dumpfile {
                j = skip_export_options(t, j)?;
            }
            t.remove(n, j);
            rewrites.into_outfile = true;
        } else if t.user_variable(n + 1).is_some() {
            let mut j = n + 1;
            while let Some(v) = t.user_variable(j) {
                rewrites.into_variables.push(v.to_owned());
                j += 1;
                if t.get(j) == Some(&Token::Comma) && t.user_variable(j + 1).is_some() {
                    j += 1;
                } else {
                    break;
                }
            }
            t.remove(n, j);
        } else {
            n += 1;
        }
    }
    Ok(())
}

/// Skips `[CHARACTER SET cs] [{FIELDS|COLUMNS} …] [LINES …]` after `INTO OUTFILE 'f'`.
fn skip_export_options(t: &Toks, mut j: usize) -> Result<usize, String> {
    let by_string = |j: usize, kws: &[&str]| -> Option<usize> {
        let mut k = j;
        for kw in kws {
            if !t.is(k, kw) {
                return None;
            }
            k += 1;
        }
        t.string(k).map(|_| k + 1)
    };
    loop {
        if t.is(j, "CHARACTER") && t.is(j + 1, "SET") && t.word(j + 2).is_some() {
            j += 3;
        } else if t.is(j, "CHARSET") && t.word(j + 1).is_some() {
            j += 2;
        } else if t.is_any(j, &["FIELDS", "COLUMNS"]) {
            j += 1;
            let start = j;
            while let Some(k) = by_string(j, &["TERMINATED", "BY"])
                .or_else(|| by_string(j, &["OPTIONALLY", "ENCLOSED", "BY"]))
                .or_else(|| by_string(j, &["ENCLOSED", "BY"]))
                .or_else(|| by_string(j, &["ESCAPED", "BY"]))
            {
                j = k;
            }
            if j == start {
                return Err("INTO OUTFILE … FIELDS without options".into());
            }
        } else if t.is(j, "LINES") {
            j += 1;
            let start = j;
            while let Some(k) =
                by_string(j, &["STARTING", "BY"]).or_else(|| by_string(j, &["TERMINATED", "BY"]))
            {
                j = k;
            }
            if j == start {
                return Err("INTO OUTFILE … LINES without options".into());
            }
        } else {
            return Ok(j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 4: sqlparser
// ---------------------------------------------------------------------------------------------

fn parse_and_analyze(t: Toks, ctx: &Context<'_>, rewrites: &Rewrites) -> Result<Analysis, String> {
    let dialect = MySqlDialect {};
    let statements = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(t.into_tokens())
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => "it is too deeply nested".to_owned(),
            ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                format!("it could not be parsed ({m})")
            }
        })?;
    let [statement] = statements.as_slice() else {
        return Err("it holds more than one statement".into());
    };
    let mut a = analyze_statement(statement, ctx)?;
    if rewrites.into_outfile {
        if a.operation != Operation::Select {
            return Err("INTO OUTFILE outside a SELECT".into());
        }
        a.class = StatementClass::Admin;
        a.operation = Operation::SelectIntoOutfile;
        a.flags.into_outfile = true;
        a.flags.server_file = true;
    }
    if !rewrites.into_variables.is_empty() {
        if a.operation != Operation::Select && a.operation != Operation::SelectIntoOutfile {
            return Err("INTO @variable outside a SELECT".into());
        }
        a.flags.sets_variable = true;
        a.flags.uses_user_variables = true;
        for v in &rewrites.into_variables {
            if !a.flags.variables.contains(v) {
                a.flags.variables.push(v.clone());
            }
        }
    }
    Ok(a)
}

/// One table source of a DML statement's table list.
struct Source<'s> {
    /// The name node, when a base table (not a derived table).
    name: Option<&'s ObjectName>,
    table: Option<TableRef>,
    alias: Option<&'s str>,
}

fn collect_sources<'s>(
    twj: &'s TableWithJoins,
    ctx: &Context<'_>,
    out: &mut Vec<Source<'s>>,
) -> Result<(), String> {
    fn factor<'s>(
        f: &'s TableFactor,
        ctx: &Context<'_>,
        out: &mut Vec<Source<'s>>,
    ) -> Result<(), String> {
        match f {
            TableFactor::Table { name, alias, .. } => out.push(Source {
                name: Some(name),
                table: Some(table_ref(name, ctx.current_db)?),
                alias: alias.as_ref().map(|a| a.name.value.as_str()),
            }),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => collect_sources(table_with_joins, ctx, out)?,
            TableFactor::Derived { alias, .. } => out.push(Source {
                name: None,
                table: None,
                alias: alias.as_ref().map(|a| a.name.value.as_str()),
            }),
            _ => return Err("an unsupported table source in a data-changing statement".into()),
        }
        Ok(())
    }
    factor(&twj.relation, ctx, out)?;
    for join in &twj.joins {
        factor(&join.relation, ctx, out)?;
    }
    Ok(())
}

/// The sources a multi-table target name (`t`, `alias`, `db.t`) designates: by alias, else by
/// table name; all base tables when nothing matches (conservative).
fn resolve_target(parts: &[String], sources: &[Source<'_>]) -> Result<Vec<usize>, String> {
    let by_alias_or_name = |q: &str, exact: bool| -> Vec<usize> {
        let eq = |a: &str, b: &str| {
            if exact {
                a == b
            } else {
                a.eq_ignore_ascii_case(b)
            }
        };
        let aliased: Vec<usize> = (0..sources.len())
            .filter(|&i| sources[i].alias.is_some_and(|a| eq(a, q)))
            .collect();
        if !aliased.is_empty() {
            return aliased;
        }
        (0..sources.len())
            .filter(|&i| {
                sources[i].alias.is_none()
                    && sources[i].table.as_ref().is_some_and(|t| eq(&t.name, q))
            })
            .collect()
    };
    let found = match parts {
        [q] => {
            let exact = by_alias_or_name(q, true);
            if exact.is_empty() {
                by_alias_or_name(q, false)
            } else {
                exact
            }
        }
        [db, name] => {
            let wanted = TableRef::new(Some(db), name);
            (0..sources.len())
                .filter(|&i| {
                    sources[i]
                        .table
                        .as_ref()
                        .is_some_and(|t| t.same_table(&wanted, false))
                })
                .collect()
        }
        _ => Vec::new(),
    };
    if found.is_empty() {
        return Ok((0..sources.len())
            .filter(|&i| sources[i].table.is_some())
            .collect());
    }
    Ok(found)
}

fn analyze_statement(statement: &Statement, ctx: &Context<'_>) -> Result<Analysis, String> {
    use StatementClass as C;
    let mut collector = Collector::new(ctx.current_db);
    let mut a;
    match statement {
        Statement::Query(_) => {
            a = Analysis::new(C::Read, Operation::Select);
        }
        Statement::Insert(insert) => {
            if insert.or.is_some()
                || insert.overwrite
                || !insert.after_columns.is_empty()
                || insert.multi_table_insert_type.is_some()
                || !insert.multi_table_into_clauses.is_empty()
                || insert.settings.is_some()
                || insert.format_clause.is_some()
                || insert.output.is_some()
                || matches!(insert.on, Some(OnInsert::OnConflict(_)))
            {
                return Err("an INSERT form that is not MySQL's".into());
            }
            let TableObject::TableName(name) = &insert.table else {
                return Err("INSERT into a table function".into());
            };
            let is_replace = insert.replace_into
                || matches!(&insert.insert_token.0.token, Token::Word(w) if w.value.eq_ignore_ascii_case("REPLACE"));
            a = Analysis::new(
                C::Write,
                if is_replace {
                    Operation::Replace
                } else {
                    Operation::Insert
                },
            );
            a.writes.push(table_ref(name, ctx.current_db)?);
            collector.skip(name);
        }
        Statement::Update(update) => {
            if update.from.is_some() || update.or.is_some() || update.output.is_some() {
                return Err("an UPDATE form that is not MySQL's".into());
            }
            a = Analysis::new(C::Write, Operation::Update);
            let mut sources = Vec::new();
            collect_sources(&update.table, ctx, &mut sources)?;
            let mut targets: Vec<usize> = Vec::new();
            for assignment in &update.assignments {
                let columns: Vec<&ObjectName> = match &assignment.target {
                    AssignmentTarget::ColumnName(c) => vec![c],
                    AssignmentTarget::Tuple(cs) => cs.iter().collect(),
                };
                for column in columns {
                    let parts = name_parts(column)?;
                    let found = if parts.len() <= 1 {
                        // An unqualified column: the only table, or (ambiguous) every table.
                        (0..sources.len())
                            .filter(|&i| sources[i].table.is_some())
                            .collect()
                    } else {
                        resolve_target(&parts[..parts.len() - 1], &sources)?
                    };
                    for i in found {
                        if !targets.contains(&i) {
                            targets.push(i);
                        }
                    }
                }
            }
            targets.sort_unstable();
            for i in targets {
                if let (Some(name), Some(table)) = (sources[i].name, &sources[i].table) {
                    push_unique(&mut a.writes, table.clone());
                    collector.skip(name);
                }
            }
            a.flags.no_where = update.selection.as_ref().is_none_or(is_constant);
        }
        Statement::Delete(delete) => {
            if delete.output.is_some() {
                return Err("a DELETE form that is not MySQL's".into());
            }
            a = Analysis::new(C::Write, Operation::Delete);
            let from = match &delete.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
            };
            let mut from_sources = Vec::new();
            for twj in from {
                collect_sources(twj, ctx, &mut from_sources)?;
            }
            match &delete.using {
                None if delete.tables.is_empty() => {
                    // DELETE FROM t …: the FROM tables are the targets.
                    for s in &from_sources {
                        match (s.name, &s.table) {
                            (Some(name), Some(table)) => {
                                push_unique(&mut a.writes, table.clone());
                                collector.skip(name);
                            }
                            _ => return Err("DELETE from a derived table".into()),
                        }
                    }
                }
                None => {
                    // DELETE t1, t2 FROM t1 JOIN t2 …
                    for target in &delete.tables {
                        let parts = name_parts(target)?;
                        for i in resolve_target(&parts, &from_sources)? {
                            if let (Some(name), Some(table)) =
                                (from_sources[i].name, &from_sources[i].table)
                            {
                                push_unique(&mut a.writes, table.clone());
                                collector.skip(name);
                            }
                        }
                    }
                }
                Some(using) => {
                    // DELETE FROM t1, t2 USING t1 JOIN t2 …: the FROM list names the targets.
                    if !delete.tables.is_empty() {
                        return Err("DELETE with both a table list and USING".into());
                    }
                    let mut using_sources = Vec::new();
                    for twj in using {
                        collect_sources(twj, ctx, &mut using_sources)?;
                    }
                    for s in &from_sources {
                        let Some(name) = s.name else {
                            return Err("DELETE from a derived table".into());
                        };
                        collector.skip(name);
                        let parts = name_parts(name)?;
                        for i in resolve_target(&parts, &using_sources)? {
                            if let (Some(uname), Some(table)) =
                                (using_sources[i].name, &using_sources[i].table)
                            {
                                push_unique(&mut a.writes, table.clone());
                                collector.skip(uname);
                            }
                        }
                    }
                }
            }
            a.flags.no_where = delete.selection.as_ref().is_none_or(is_constant);
        }
        Statement::CreateTable(create) => {
            if create.clone.is_some() {
                return Err("CREATE TABLE … CLONE is not MySQL's".into());
            }
            a = Analysis::new(C::Ddl, Operation::CreateTable);
            a.writes.push(table_ref(&create.name, ctx.current_db)?);
            collector.skip(&create.name);
            if let Some(like) = &create.like {
                let (sqlparser::ast::CreateTableLikeKind::Plain(l)
                | sqlparser::ast::CreateTableLikeKind::Parenthesized(l)) = like;
                a.reads.push(table_ref(&l.name, ctx.current_db)?);
                collector.skip(&l.name);
            }
        }
        Statement::CreateView(view) => {
            if view.to.is_some() || view.materialized {
                return Err("a CREATE VIEW form that is not MySQL's".into());
            }
            a = Analysis::new(C::Ddl, Operation::CreateView);
            a.writes.push(table_ref(&view.name, ctx.current_db)?);
            collector.skip(&view.name);
        }
        Statement::AlterView { name, .. } => {
            a = Analysis::new(C::Ddl, Operation::AlterView);
            a.writes.push(table_ref(name, ctx.current_db)?);
            collector.skip(name);
        }
        Statement::AlterTable(alter) => {
            a = Analysis::new(C::Ddl, Operation::AlterTable);
            a.writes.push(table_ref(&alter.name, ctx.current_db)?);
            collector.skip(&alter.name);
            for op in &alter.operations {
                if let AlterTableOperation::RenameTable { table_name } = op {
                    let (RenameTableNameKind::As(new) | RenameTableNameKind::To(new)) = table_name;
                    push_unique(&mut a.writes, table_ref(new, ctx.current_db)?);
                    collector.skip(new);
                }
            }
        }
        Statement::CreateIndex(index) => {
            a = Analysis::new(C::Ddl, Operation::CreateIndex);
            a.writes.push(table_ref(&index.table_name, ctx.current_db)?);
            collector.skip(&index.table_name);
            if let Some(name) = &index.name {
                collector.skip(name);
            }
        }
        Statement::CreateDatabase { db_name, .. } => {
            a = Analysis::new(C::Ddl, Operation::CreateDatabase);
            a.databases.push(database_name(db_name)?);
            collector.skip(db_name);
        }
        Statement::CreateSchema { schema_name, .. } => {
            a = Analysis::new(C::Ddl, Operation::CreateDatabase);
            let SchemaName::Simple(name) = schema_name else {
                return Err("CREATE SCHEMA … AUTHORIZATION is not MySQL's".into());
            };
            a.databases.push(database_name(name)?);
            collector.skip(name);
        }
        Statement::CreateSequence { name, .. } => {
            a = Analysis::new(C::Ddl, Operation::CreateSequence);
            a.writes.push(table_ref(name, ctx.current_db)?);
            collector.skip(name);
        }
        Statement::Drop {
            object_type,
            names,
            table,
            ..
        } => {
            for name in names {
                collector.skip(name);
            }
            match object_type {
                ObjectType::Table | ObjectType::View | ObjectType::Sequence => {
                    a = Analysis::new(
                        C::Ddl,
                        match object_type {
                            ObjectType::Table => Operation::DropTable,
                            ObjectType::View => Operation::DropView,
                            _ => Operation::DropSequence,
                        },
                    );
                    for name in names {
                        push_unique(&mut a.writes, table_ref(name, ctx.current_db)?);
                    }
                }
                ObjectType::Index => {
                    a = Analysis::new(C::Ddl, Operation::DropIndex);
                    let table = table.as_ref().ok_or("DROP INDEX without ON table")?;
                    a.writes.push(table_ref(table, ctx.current_db)?);
                    collector.skip(table);
                }
                ObjectType::Database | ObjectType::Schema => {
                    a = Analysis::new(C::Ddl, Operation::DropDatabase);
                    for name in names {
                        a.databases.push(database_name(name)?);
                    }
                }
                ObjectType::Role | ObjectType::User => {
                    a = Analysis::new(
                        C::Dcl,
                        if *object_type == ObjectType::Role {
                            Operation::DropRole
                        } else {
                            Operation::DropUser
                        },
                    );
                }
                _ => return Err(format!("DROP {object_type} is not analysed")),
            }
        }
        Statement::DropProcedure { .. } => a = Analysis::new(C::Ddl, Operation::DropProcedure),
        Statement::DropFunction(_) => a = Analysis::new(C::Ddl, Operation::DropFunction),
        Statement::DropTrigger(_) => a = Analysis::new(C::Ddl, Operation::DropTrigger),
        Statement::Truncate(truncate) => {
            a = Analysis::new(C::Ddl, Operation::Truncate);
            for target in &truncate.table_names {
                push_unique(&mut a.writes, table_ref(&target.name, ctx.current_db)?);
                collector.skip(&target.name);
            }
        }
        Statement::RenameTable(renames) => {
            a = Analysis::new(C::Ddl, Operation::RenameTable);
            for r in renames {
                push_unique(&mut a.writes, table_ref(&r.old_name, ctx.current_db)?);
                push_unique(&mut a.writes, table_ref(&r.new_name, ctx.current_db)?);
                collector.skip(&r.old_name);
                collector.skip(&r.new_name);
            }
        }
        Statement::Set(set) => a = analyze_set(set)?,
        Statement::Use(Use::Object(name)) => {
            a = Analysis::new(C::Session, Operation::Use);
            let db = database_name(name)?;
            a.flags.changes_database = Some(db);
        }
        Statement::StartTransaction {
            statements,
            exception,
            modifier,
            ..
        } => {
            if !statements.is_empty() || exception.is_some() || modifier.is_some() {
                return Err("a transaction block is not analysed".into());
            }
            a = Analysis::new(C::Transaction, Operation::Begin);
        }
        Statement::Commit { modifier, .. } => {
            if modifier.is_some() {
                return Err("a COMMIT form that is not MySQL's".into());
            }
            a = Analysis::new(C::Transaction, Operation::Commit);
        }
        Statement::Rollback { .. } => a = Analysis::new(C::Transaction, Operation::Rollback),
        Statement::Savepoint { .. } => a = Analysis::new(C::Transaction, Operation::Savepoint),
        Statement::ReleaseSavepoint { .. } => {
            a = Analysis::new(C::Transaction, Operation::ReleaseSavepoint)
        }
        Statement::Call(function) => {
            a = Analysis::new(C::Write, Operation::Call);
            a.flags.calls_procedure = Some(table_ref(&function.name, ctx.current_db)?);
        }
        Statement::ExplainTable { table_name, .. } => {
            a = Analysis::new(C::Show, Operation::Describe);
            a.reads.push(table_ref(table_name, ctx.current_db)?);
            collector.skip(table_name);
        }
        Statement::Explain {
            statement,
            analyze,
            query_plan,
            estimate,
            options,
            ..
        } => {
            if *query_plan || *estimate || options.is_some() {
                return Err("an EXPLAIN form that is not MySQL's".into());
            }
            let inner = analyze_statement(statement, ctx)?;
            if *analyze {
                // EXPLAIN ANALYZE executes the statement.
                return Ok(inner);
            }
            let mut a = Analysis::new(C::Show, Operation::Explain);
            a.reads = inner.reads;
            for w in inner.writes {
                push_unique(&mut a.reads, w);
            }
            return Ok(a);
        }
        _ => return Err("this kind of statement is not analysed".into()),
    }

    if let ControlFlow::Break(reason) = statement.visit(&mut collector) {
        return Err(reason);
    }
    for table in collector.reads {
        push_unique(&mut a.reads, table);
    }
    let f = &mut a.flags;
    f.uses_user_variables |= collector.uses_user_variables;
    f.sets_variable |= collector.sets_variable;
    f.calls_function |= collector.calls_function;
    f.server_file |= collector.server_file;
    for v in collector.variables {
        if !f.variables.contains(&v) {
            f.variables.push(v);
        }
    }
    if collector.server_file && a.class == C::Read {
        // LOAD_FILE() in a query reads a server file: the FILE privilege, administrative.
        a.class = C::Admin;
    }
    Ok(a)
}

/// `SET` assignments (sqlparser's `Set`); the forms handled lexically never get here.
fn analyze_set(set: &sqlparser::ast::Set) -> Result<Analysis, String> {
    use sqlparser::ast::Set as S;
    let mut a = Analysis::new(StatementClass::Session, Operation::Set);
    let assignments: Vec<(Option<&ContextModifier>, &ObjectName, &Expr)> = match set {
        S::SingleAssignment {
            scope,
            hivevar,
            variable,
            values,
        } => {
            let [value] = values.as_slice() else {
                return Err("SET with a list of values".into());
            };
            if *hivevar {
                return Err("a SET form that is not MySQL's".into());
            }
            vec![(scope.as_ref(), variable, value)]
        }
        S::MultipleAssignments { assignments } => assignments
            .iter()
            .map(|s| (s.scope.as_ref(), &s.name, &s.value))
            .collect(),
        S::SetNames { charset_name, .. } => {
            let mut a = Analysis::new(StatementClass::Session, Operation::SetNames);
            a.flags.charset = Some(charset_name.value.clone());
            return Ok(a);
        }
        S::SetNamesDefault {} => {
            let mut a = Analysis::new(StatementClass::Session, Operation::SetNames);
            a.flags.charset = Some("DEFAULT".into());
            return Ok(a);
        }
        S::SetTransaction { .. } => {
            return Ok(Analysis::new(
                StatementClass::Transaction,
                Operation::SetTransaction,
            ))
        }
        _ => return Err("a SET form that is not MySQL's".into()),
    };
    a.flags.sets_variable = true;
    for (scope, name, value) in assignments {
        let parts = name_parts(name)?;
        let (global, var) = match (scope, parts.as_slice()) {
            (None, [v]) if is_user_variable(v) => {
                a.flags.uses_user_variables = true;
                if !a.flags.variables.contains(v) {
                    a.flags.variables.push(v.clone());
                }
                continue;
            }
            (None, [v]) if v.starts_with("@@") => (false, v[2..].to_ascii_lowercase()),
            (None, [s, v]) if s.eq_ignore_ascii_case("@@global") => (true, v.to_ascii_lowercase()),
            (None, [s, v])
                if s.eq_ignore_ascii_case("@@session") || s.eq_ignore_ascii_case("@@local") =>
            {
                (false, v.to_ascii_lowercase())
            }
            (Some(ContextModifier::Global), p) => (true, join_lower(p)),
            (Some(ContextModifier::Session | ContextModifier::Local) | None, p)
                if !p.iter().any(|x| x.starts_with('@')) =>
            {
                (false, join_lower(p))
            }
            _ => return Err("an unsupported variable in SET".into()),
        };
        if var.is_empty() {
            return Err("SET of an unnamed variable".into());
        }
        if global {
            a.class = StatementClass::Admin;
            a.operation = Operation::SetGlobal;
            a.flags.variables.push(format!("global.{var}"));
            continue;
        }
        match var.as_str() {
            "sql_mode" => a.flags.sql_mode = Some(sql_mode_value(value)),
            "character_set_client" | "character_set_connection" | "names" => {
                a.flags.charset = Some(literal_value(value).unwrap_or_else(|| "?".into()));
            }
            "password" => return Err("SET PASSWORD in an unexpected form".into()),
            _ => {}
        }
        if !a.flags.variables.contains(&var) {
            a.flags.variables.push(var);
        }
    }
    Ok(a)
}

fn join_lower(parts: &[String]) -> String {
    parts.join(".").to_ascii_lowercase()
}

fn literal_value(value: &Expr) -> Option<String> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::Identifier(id) if !id.value.starts_with('@') => Some(id.value.clone()),
        _ => None,
    }
}

fn sql_mode_value(value: &Expr) -> SqlModeChange {
    match literal_value(value) {
        Some(v) if v.eq_ignore_ascii_case("DEFAULT") && !matches!(value, Expr::Value(_)) => {
            SqlModeChange::Default
        }
        Some(v) => SqlModeChange::Value(v),
        None => SqlModeChange::Unknown,
    }
}

/// Whether an expression references no column and holds no subquery (its value is the same
/// for every row).
fn is_constant(expr: &Expr) -> bool {
    struct Columns(bool);
    impl Visitor for Columns {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(id) if !id.value.starts_with('@') => ControlFlow::Break(()),
                Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let mut v = Columns(true);
    let constant = expr.visit(&mut v).is_continue();
    v.0 && constant
}

fn name_parts(name: &ObjectName) -> Result<Vec<String>, String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => Ok(id.value.clone()),
            _ => Err(format!("an unsupported name `{name}`")),
        })
        .collect()
}

fn database_name(name: &ObjectName) -> Result<String, String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => Ok(normalize_schema(&id.value)),
        _ => Err(format!("an unsupported database name `{name}`")),
    }
}

/// `information_schema` is case-insensitive everywhere: reported lower-case.
fn normalize_schema(schema: &str) -> String {
    if schema.eq_ignore_ascii_case("information_schema") {
        "information_schema".into()
    } else {
        schema.to_owned()
    }
}

fn table_ref(name: &ObjectName, current_db: Option<&str>) -> Result<TableRef, String> {
    let mut idents = Vec::with_capacity(2);
    for part in &name.0 {
        match part {
            ObjectNamePart::Identifier(id) => {
                if id.quote_style.is_none() && is_reserved(&id.value) {
                    return Err(format!(
                        "`{}` is a reserved word where a table name is expected",
                        id.value
                    ));
                }
                idents.push(id);
            }
            _ => return Err(format!("an unsupported table name `{name}`")),
        }
    }
    match idents.as_slice() {
        [t] => Ok(TableRef {
            schema: current_db.map(str::to_owned),
            name: t.value.clone(),
        }),
        [s, t] => Ok(TableRef::new(Some(&s.value), &t.value)),
        _ => Err(format!("a table name with more than two parts `{name}`")),
    }
}

fn push_unique(list: &mut Vec<TableRef>, table: TableRef) {
    if !list.contains(&table) {
        list.push(table);
    }
}

/// Walks a statement: every table name in a relation position is a read unless skipped (the
/// statement's targets), honouring CTE scopes; collects flags from expressions.
struct Collector<'c> {
    current_db: Option<&'c str>,
    skip: Vec<*const ObjectName>,
    reads: Vec<TableRef>,
    /// CTE names visible in the query being walked (top of stack).
    scopes: Vec<Vec<String>>,
    /// CTE bodies not yet entered, with the names visible inside each.
    pending: Vec<(*const Query, Vec<String>)>,
    uses_user_variables: bool,
    sets_variable: bool,
    calls_function: bool,
    server_file: bool,
    variables: Vec<String>,
}

impl<'c> Collector<'c> {
    fn new(current_db: Option<&'c str>) -> Self {
        Collector {
            current_db,
            skip: Vec::new(),
            reads: Vec::new(),
            scopes: Vec::new(),
            pending: Vec::new(),
            uses_user_variables: false,
            sets_variable: false,
            calls_function: false,
            server_file: false,
            variables: Vec::new(),
        }
    }

    fn skip(&mut self, name: &ObjectName) {
        self.skip.push(name as *const ObjectName);
    }

    fn function(&mut self, f: &Function) {
        match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(id)] if id.quote_style.is_none() => {
                if id.value.eq_ignore_ascii_case("LOAD_FILE") {
                    self.server_file = true;
                }
                if !is_builtin_function(&id.value) {
                    self.calls_function = true;
                }
            }
            _ => self.calls_function = true,
        }
    }
}

/// Rejects query forms MySQL does not have and data-changing statements inside queries.
fn check_query(q: &Query) -> Result<(), String> {
    if q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty()
    {
        return Err("a query form that is not MySQL's".into());
    }
    let mut stack = vec![q.body.as_ref()];
    while let Some(e) = stack.pop() {
        match e {
            SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Query(_) => {}
            SetExpr::SetOperation { left, right, .. } => {
                stack.push(left);
                stack.push(right);
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                return Err(
                    "a data-changing statement inside a query (WITH … INSERT/UPDATE/DELETE) is \
                     not analysed"
                        .into(),
                )
            }
            SetExpr::Table(_) => return Err("the TABLE statement is not analysed".into()),
        }
    }
    Ok(())
}

impl Visitor for Collector<'_> {
    type Break = String;

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<String> {
        if let Err(e) = check_query(q) {
            return ControlFlow::Break(e);
        }
        let ptr = q as *const Query;
        let visible = match self.pending.iter().position(|(p, _)| *p == ptr) {
            Some(i) => self.pending.swap_remove(i).1,
            None => self.scopes.last().cloned().unwrap_or_default(),
        };
        match &q.with {
            Some(with) => {
                let names: Vec<String> = with
                    .cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.clone())
                    .collect();
                for (i, cte) in with.cte_tables.iter().enumerate() {
                    // A CTE body sees the CTEs before it, and itself when RECURSIVE.
                    let mut inside = visible.clone();
                    inside.extend(names[..i].iter().cloned());
                    if with.recursive {
                        inside.push(names[i].clone());
                    }
                    self.pending.push((&*cte.query as *const Query, inside));
                }
                let mut all = visible;
                all.extend(names);
                self.scopes.push(all);
            }
            None => self.scopes.push(visible),
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<String> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<String> {
        if let Some(into) = &select.into {
            self.sets_variable = true;
            for target in &into.targets {
                if let Expr::Identifier(id) = target {
                    if is_user_variable(&id.value) {
                        self.uses_user_variables = true;
                        if !self.variables.contains(&id.value) {
                            self.variables.push(id.value.clone());
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<String> {
        if self.skip.contains(&(relation as *const ObjectName)) {
            return ControlFlow::Continue(());
        }
        if let [ObjectNamePart::Identifier(id)] = relation.0.as_slice() {
            // `FROM DUAL`: no table.
            if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("DUAL") {
                return ControlFlow::Continue(());
            }
            if self
                .scopes
                .last()
                .is_some_and(|visible| visible.contains(&id.value))
            {
                return ControlFlow::Continue(());
            }
        }
        match table_ref(relation, self.current_db) {
            Ok(t) => {
                push_unique(&mut self.reads, t);
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table { args: Some(_), .. } => {
                ControlFlow::Break("a table-valued function is not analysed".into())
            }
            TableFactor::Table { .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::JsonTable { .. } => ControlFlow::Continue(()),
            _ => ControlFlow::Break("a table source that is not MySQL's".into()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        match expr {
            Expr::Identifier(id) if id.quote_style.is_none() && is_user_variable(&id.value) => {
                self.uses_user_variables = true;
            }
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Assignment,
                ..
            } => {
                self.sets_variable = true;
                if let Expr::Identifier(id) = left.as_ref() {
                    if !self.variables.contains(&id.value) {
                        self.variables.push(id.value.clone());
                    }
                }
            }
            Expr::Function(f) => self.function(f),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

// ---------------------------------------------------------------------------------------------
// Word lists
// ---------------------------------------------------------------------------------------------

/// MariaDB/MySQL reserved words (unquoted, they cannot be table names). sqlparser accepts some
/// of them as identifiers (`UPDATE LOW_PRIORITY t` would name a table `LOW_PRIORITY`): a table
/// name that is one of these means sqlparser misread the statement.
const RESERVED: &[&str] = &[
    "ACCESSIBLE",
    "ADD",
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ASENSITIVE",
    "BEFORE",
    "BETWEEN",
    "BIGINT",
    "BINARY",
    "BLOB",
    "BOTH",
    "BY",
    "CALL",
    "CASCADE",
    "CASE",
    "CHANGE",
    "CHAR",
    "CHARACTER",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "CONDITION",
    "CONSTRAINT",
    "CONTINUE",
    "CONVERT",
    "CREATE",
    "CROSS",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURSOR",
    "DATABASE",
    "DATABASES",
    "DAY_HOUR",
    "DAY_MICROSECOND",
    "DAY_MINUTE",
    "DAY_SECOND",
    "DEC",
    "DECIMAL",
    "DECLARE",
    "DEFAULT",
    "DELAYED",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DETERMINISTIC",
    "DISTINCT",
    "DISTINCTROW",
    "DIV",
    "DOUBLE",
    "DROP",
    "DUAL",
    "EACH",
    "ELSE",
    "ELSEIF",
    "ENCLOSED",
    "ESCAPED",
    "EXCEPT",
    "EXISTS",
    "EXIT",
    "EXPLAIN",
    "FALSE",
    "FETCH",
    "FLOAT",
    "FLOAT4",
    "FLOAT8",
    "FOR",
    "FORCE",
    "FOREIGN",
    "FROM",
    "FULLTEXT",
    "GENERAL",
    "GRANT",
    "GROUP",
    "HAVING",
    "HIGH_PRIORITY",
    "HOUR_MICROSECOND",
    "HOUR_MINUTE",
    "HOUR_SECOND",
    "IF",
    "IGNORE",
    "IGNORE_SERVER_IDS",
    "IN",
    "INDEX",
    "INFILE",
    "INNER",
    "INOUT",
    "INSENSITIVE",
    "INSERT",
    "INT",
    "INT1",
    "INT2",
    "INT3",
    "INT4",
    "INT8",
    "INTEGER",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "ITERATE",
    "JOIN",
    "KEY",
    "KEYS",
    "KILL",
    "LEADING",
    "LEAVE",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LINEAR",
    "LINES",
    "LOAD",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "LOCK",
    "LONG",
    "LONGBLOB",
    "LONGTEXT",
    "LOOP",
    "LOW_PRIORITY",
    "MASTER_HEARTBEAT_PERIOD",
    "MASTER_SSL_VERIFY_SERVER_CERT",
    "MATCH",
    "MAXVALUE",
    "MEDIUMBLOB",
    "MEDIUMINT",
    "MEDIUMTEXT",
    "MIDDLEINT",
    "MINUTE_MICROSECOND",
    "MINUTE_SECOND",
    "MOD",
    "MODIFIES",
    "NATURAL",
    "NOT",
    "NO_WRITE_TO_BINLOG",
    "NULL",
    "NUMERIC",
    "OFFSET",
    "ON",
    "OPTIMIZE",
    "OPTION",
    "OPTIONALLY",
    "OR",
    "ORDER",
    "OUT",
    "OUTER",
    "OUTFILE",
    "OVER",
    "PARTITION",
    "PRECISION",
    "PRIMARY",
    "PROCEDURE",
    "PURGE",
    "RANGE",
    "READ",
    "READS",
    "READ_WRITE",
    "REAL",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "RELEASE",
    "RENAME",
    "REPEAT",
    "REPLACE",
    "REQUIRE",
    "RESIGNAL",
    "RESTRICT",
    "RETURN",
    "RETURNING",
    "REVOKE",
    "RIGHT",
    "RLIKE",
    "ROWS",
    "SCHEMA",
    "SCHEMAS",
    "SECOND_MICROSECOND",
    "SELECT",
    "SENSITIVE",
    "SEPARATOR",
    "SET",
    "SHOW",
    "SIGNAL",
    "SLOW",
    "SMALLINT",
    "SPATIAL",
    "SPECIFIC",
    "SQL",
    "SQLEXCEPTION",
    "SQLSTATE",
    "SQLWARNING",
    "SQL_BIG_RESULT",
    "SQL_CALC_FOUND_ROWS",
    "SQL_SMALL_RESULT",
    "SSL",
    "STARTING",
    "STRAIGHT_JOIN",
    "TABLE",
    "TERMINATED",
    "THEN",
    "TINYBLOB",
    "TINYINT",
    "TINYTEXT",
    "TO",
    "TRAILING",
    "TRIGGER",
    "TRUE",
    "UNDO",
    "UNION",
    "UNIQUE",
    "UNLOCK",
    "UNSIGNED",
    "UPDATE",
    "USAGE",
    "USE",
    "USING",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
    "VALUES",
    "VARBINARY",
    "VARCHAR",
    "VARCHARACTER",
    "VARYING",
    "WHEN",
    "WHERE",
    "WHILE",
    "WINDOW",
    "WITH",
    "WRITE",
    "XOR",
    "YEAR_MONTH",
    "ZEROFILL",
];

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// MariaDB built-in functions (upper case, sorted). A call to anything else — or to a
/// qualified name — may be a stored or loadable function. `ST_`, `MBR`, `JSON_` and `COLUMN_`
/// prefixes are built-in families.
const BUILTIN_FUNCTIONS: &[&str] = &[
    "ABS",
    "ACOS",
    "ADDDATE",
    "ADDTIME",
    "ADD_MONTHS",
    "AES_DECRYPT",
    "AES_ENCRYPT",
    "ANY_VALUE",
    "AREA",
    "ASBINARY",
    "ASCII",
    "ASIN",
    "ASTEXT",
    "ASWKB",
    "ASWKT",
    "ATAN",
    "ATAN2",
    "AVG",
    "BENCHMARK",
    "BIN",
    "BINLOG_GTID_POS",
    "BIT_AND",
    "BIT_COUNT",
    "BIT_LENGTH",
    "BIT_OR",
    "BIT_XOR",
    "BOUNDARY",
    "BUFFER",
    "CAST",
    "CEIL",
    "CEILING",
    "CENTROID",
    "CHAR",
    "CHARACTER_LENGTH",
    "CHARSET",
    "CHAR_LENGTH",
    "CHR",
    "COALESCE",
    "COERCIBILITY",
    "COLLATION",
    "COMPRESS",
    "CONCAT",
    "CONCAT_WS",
    "CONNECTION_ID",
    "CONTAINS",
    "CONV",
    "CONVERT",
    "CONVERT_TZ",
    "CONVEXHULL",
    "COS",
    "COT",
    "COUNT",
    "CRC32",
    "CRC32C",
    "CROSSES",
    "CUME_DIST",
    "CURDATE",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "CURTIME",
    "DATABASE",
    "DATE",
    "DATEDIFF",
    "DATE_ADD",
    "DATE_FORMAT",
    "DATE_SUB",
    "DAY",
    "DAYNAME",
    "DAYOFMONTH",
    "DAYOFWEEK",
    "DAYOFYEAR",
    "DECODE",
    "DECODE_HISTOGRAM",
    "DEFAULT",
    "DEGREES",
    "DENSE_RANK",
    "DES_DECRYPT",
    "DES_ENCRYPT",
    "DIMENSION",
    "DISJOINT",
    "DISTANCE",
    "ELT",
    "ENCODE",
    "ENCRYPT",
    "ENDPOINT",
    "ENVELOPE",
    "EQUALS",
    "EXP",
    "EXPORT_SET",
    "EXTERIORRING",
    "EXTRACT",
    "EXTRACTVALUE",
    "FIELD",
    "FIND_IN_SET",
    "FIRST_VALUE",
    "FLOOR",
    "FORMAT",
    "FORMAT_BYTES",
    "FORMAT_PICO_TIME",
    "FOUND_ROWS",
    "FROM_BASE64",
    "FROM_DAYS",
    "FROM_UNIXTIME",
    "GEOMCOLLFROMTEXT",
    "GEOMCOLLFROMWKB",
    "GEOMETRYCOLLECTION",
    "GEOMETRYCOLLECTIONFROMTEXT",
    "GEOMETRYCOLLECTIONFROMWKB",
    "GEOMETRYFROMTEXT",
    "GEOMETRYFROMWKB",
    "GEOMETRYN",
    "GEOMETRYTYPE",
    "GEOMFROMTEXT",
    "GEOMFROMWKB",
    "GET_FORMAT",
    "GET_LOCK",
    "GLENGTH",
    "GREATEST",
    "GROUP_CONCAT",
    "HEX",
    "HOUR",
    "IF",
    "IFNULL",
    "INET6_ATON",
    "INET6_NTOA",
    "INET_ATON",
    "INET_NTOA",
    "INSERT",
    "INSTR",
    "INTERIORRINGN",
    "INTERSECTS",
    "INTERVAL",
    "ISCLOSED",
    "ISEMPTY",
    "ISNULL",
    "ISRING",
    "ISSIMPLE",
    "IS_FREE_LOCK",
    "IS_IPV4",
    "IS_IPV4_COMPAT",
    "IS_IPV4_MAPPED",
    "IS_IPV6",
    "IS_USED_LOCK",
    "LAG",
    "LASTVAL",
    "LAST_DAY",
    "LAST_INSERT_ID",
    "LAST_VALUE",
    "LCASE",
    "LEAD",
    "LEAST",
    "LEFT",
    "LENGTH",
    "LENGTHB",
    "LINEFROMTEXT",
    "LINEFROMWKB",
    "LINESTRING",
    "LINESTRINGFROMTEXT",
    "LINESTRINGFROMWKB",
    "LN",
    "LOAD_FILE",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "LOCATE",
    "LOG",
    "LOG10",
    "LOG2",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MAKEDATE",
    "MAKETIME",
    "MAKE_SET",
    "MASTER_GTID_WAIT",
    "MASTER_POS_WAIT",
    "MAX",
    "MD5",
    "MEDIAN",
    "MICROSECOND",
    "MID",
    "MIN",
    "MINUTE",
    "MLINEFROMTEXT",
    "MLINEFROMWKB",
    "MOD",
    "MONTH",
    "MONTHNAME",
    "MPOINTFROMTEXT",
    "MPOINTFROMWKB",
    "MPOLYFROMTEXT",
    "MPOLYFROMWKB",
    "MULTILINESTRING",
    "MULTILINESTRINGFROMTEXT",
    "MULTILINESTRINGFROMWKB",
    "MULTIPOINT",
    "MULTIPOINTFROMTEXT",
    "MULTIPOINTFROMWKB",
    "MULTIPOLYGON",
    "MULTIPOLYGONFROMTEXT",
    "MULTIPOLYGONFROMWKB",
    "NAME_CONST",
    "NATURAL_SORT_KEY",
    "NOW",
    "NTH_VALUE",
    "NTILE",
    "NULLIF",
    "NUMGEOMETRIES",
    "NUMINTERIORRINGS",
    "NUMPOINTS",
    "NVL",
    "NVL2",
    "OCT",
    "OCTET_LENGTH",
    "OLD_PASSWORD",
    "ORD",
    "OVERLAPS",
    "PASSWORD",
    "PERCENTILE_CONT",
    "PERCENTILE_DISC",
    "PERCENT_RANK",
    "PERIOD_ADD",
    "PERIOD_DIFF",
    "PI",
    "POINT",
    "POINTFROMTEXT",
    "POINTFROMWKB",
    "POINTN",
    "POLYFROMTEXT",
    "POLYFROMWKB",
    "POLYGON",
    "POLYGONFROMTEXT",
    "POLYGONFROMWKB",
    "POSITION",
    "POW",
    "POWER",
    "QUARTER",
    "QUOTE",
    "RADIANS",
    "RAND",
    "RANDOM_BYTES",
    "RANK",
    "REGEXP_INSTR",
    "REGEXP_REPLACE",
    "REGEXP_SUBSTR",
    "RELEASE_ALL_LOCKS",
    "RELEASE_LOCK",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "ROUND",
    "ROW",
    "ROW_COUNT",
    "ROW_NUMBER",
    "RPAD",
    "RTRIM",
    "SCHEMA",
    "SECOND",
    "SEC_TO_TIME",
    "SESSION_USER",
    "SFORMAT",
    "SHA",
    "SHA1",
    "SHA2",
    "SIGN",
    "SIN",
    "SLEEP",
    "SOUNDEX",
    "SPACE",
    "SQRT",
    "SRID",
    "STARTPOINT",
    "STD",
    "STDDEV",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STRCMP",
    "STR_TO_DATE",
    "SUBDATE",
    "SUBSTR",
    "SUBSTRING",
    "SUBSTRING_INDEX",
    "SUBTIME",
    "SUM",
    "SYSDATE",
    "SYSTEM_USER",
    "SYS_GUID",
    "TAN",
    "TIME",
    "TIMEDIFF",
    "TIMESTAMP",
    "TIMESTAMPADD",
    "TIMESTAMPDIFF",
    "TIME_FORMAT",
    "TIME_TO_SEC",
    "TOUCHES",
    "TO_BASE64",
    "TO_CHAR",
    "TO_DAYS",
    "TO_SECONDS",
    "TRIM",
    "TRUNCATE",
    "UCASE",
    "UNCOMPRESS",
    "UNCOMPRESSED_LENGTH",
    "UNHEX",
    "UNIX_TIMESTAMP",
    "UPDATEXML",
    "UPPER",
    "USER",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
    "UUID",
    "UUID_SHORT",
    "VALUE",
    "VALUES",
    "VARIANCE",
    "VAR_POP",
    "VAR_SAMP",
    "VERSION",
    "WEEK",
    "WEEKDAY",
    "WEEKOFYEAR",
    "WEIGHT_STRING",
    "WITHIN",
    "WSREP_LAST_SEEN_GTID",
    "WSREP_LAST_WRITTEN_GTID",
    "WSREP_SYNC_WAIT_UPTO_GTID",
    "X",
    "Y",
    "YEAR",
    "YEARWEEK",
];

fn is_builtin_function(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["ST_", "MBR", "JSON_", "COLUMN_"]
        .iter()
        .any(|p| upper.starts_with(p))
        || BUILTIN_FUNCTIONS.binary_search(&upper.as_str()).is_ok()
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
mod tests;
