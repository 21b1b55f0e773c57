//! SQL as the server lexes it: tokens, statements, digests, analysis.
//!
//! This is the first stage of statement policy. A COM_QUERY's bytes are split into the
//! statements the server will run ([`split`]), each reduced to a digest — its normalized text
//! with literal values folded to `?` — that keys the decision cache ([`digest_all`]). All of it
//! is sans-IO and borrows from the packet; a digest is one allocation. On a cache miss a
//! statement is [`analyze`]d: its class, operation, tables read and written, and flags — or
//! [`Unanalyzable`], which policy refuses.
//!
//! The point is to see exactly what the server will execute, so the lexer ([`lex`]) follows
//! MariaDB's own tokenizer where it matters — strings, quoted identifiers, comments and
//! executable comments — and refuses ([`LexError`]) where the answer depends on something it
//! cannot know. What it needs from the session is a [`Mode`]: `ANSI_QUOTES`,
//! `NO_BACKSLASH_ESCAPES` and the client charset. The caller must keep it current (the
//! session's `sql_mode` and `character_set_client` can change with `SET`), or refuse
//! statements whose digest says they depend on it ([`DigestFlags::MODE_SENSITIVE`],
//! [`DigestFlags::CHARSET_SENSITIVE`]).
//!
//! Measured against MariaDB 10.11 (statement boundaries read back from
//! `performance_schema.events_statements_history_long`):
//!
//! * `SELECT 1 --; SELECT 2` is one statement (`1 - -…`, a syntax error): `--` is a comment
//!   only before a space or control character (of the client charset: `0xA0` in latin1) or
//!   the end of input.
//! * `/*! … */` and `/*M! … */` run their content; `/*!NNNNN … */` runs when the server's
//!   version is at least NNNNN, except MySQL versions 50700–99999, which MariaDB skips unless
//!   written `/*M!…`; `/*m!` is a plain comment. A `;` inside one fails the statement unless it
//!   is in a compound statement (mysqldump's `/*!50003 CREATE … BEGIN …; END */`).
//! * `CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; SELECT 3` is two statements; so are
//!   `BEGIN NOT ATOMIC …; END; …`, `IF … END IF; …`, `SET STATEMENT x=1 FOR BEGIN NOT ATOMIC
//!   …; END; …`, and in Oracle mode `BEGIN …; END; …` and `DECLARE …; BEGIN …; END; …`. See
//!   [`split`](mod@split) for how the splitter stays on the safe side.
//! * In GBK, SJIS/CP932 and Big5 a string `'\xbf\';…` ends at the second quote (`\xbf\x5c` is
//!   one character): the lexer is multi-byte aware for those charsets.

mod analysis;
mod digest;
mod effects;
mod keywords;
mod lex;
mod split;
#[cfg(test)]
mod tests;

pub use analysis::{
    analyze, Analysis, Context, Flags, Operation, Server, SqlModeChange, StatementClass, TableRef,
    Unanalyzable, MAX_CHAIN, MAX_NESTING,
};
pub use digest::{digest, digest_all, Digest, DigestFlags, StatementDigest};
pub use effects::{session_effects, Effects, ModeEffect};
pub use lex::{lex, Charset, LexError, Lexer, Mode, Token, TokenFlags, TokenKind};
pub use split::{split, Statement};
