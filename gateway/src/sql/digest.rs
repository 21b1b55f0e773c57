//! Statement digests: the statement's tokens, normalized, with literal values folded to `?` —
//! the key of the decision cache, so two statements with the same digest must mean the same
//! thing to a policy up to the values of their literals.
//!
//! Normalization:
//!
//! * Comments are dropped; the content of executable comments is kept inline, like any code.
//! * Tokens are separated by one space, except none after `(`, before `)` and `,`, around a
//!   qualifier `.` (`shop.t`), and between a function name and `(` when they touch in the
//!   input (`COUNT(*)` and `COUNT (*)` can differ for the server, so they differ here).
//! * Reserved words are upper-cased (`select` → `SELECT`). Other words keep their case: the
//!   lexer cannot tell a non-reserved keyword from an identifier, and database and table names
//!   are case sensitive on most servers (`lower_case_table_names=0`), so `FROM t` and `FROM T`
//!   must not share a decision. A word used as a qualifier (`select.t`) is an identifier.
//! * Identifiers are written in one canonical form: bare when they are a plain name (letters,
//!   digits, `_`, `$`, bytes ≥ 0x80, not starting with a digit, not a keyword), otherwise in
//!   backticks with backticks doubled. `` `shop`.`t` ``, `shop.t` and (under `ANSI_QUOTES`)
//!   `"shop"."t"` all digest to `shop.t`; `` `select` ``, `` `my table` `` stay quoted.
//! * Literals — strings (`'x'`, `"x"`, `N'x'`), numbers, `X'41'`, `B'01'`, `0x41`, `0b01` —
//!   and `?` become `?`; a charset introducer stays (`_latin1 ?`). A sign directly applied to
//!   a literal is folded with it (`a = -1` → `a = ?`). `NULL`, `TRUE`, `FALSE` are keywords,
//!   not folded. `LIMIT 10, 20` → `LIMIT ?, ?`.
//! * A parenthesized list of literals after `IN` becomes `(...)` whatever its length
//!   (`IN (1, 2, 3)` → `IN (...)`); a list with anything else in it is digested normally.
//! * In `VALUES`, a row that digests the same as the first row is dropped, so a multi-row
//!   `INSERT` digests the same whatever its number of rows (`VALUES (?, ?)`).
//!
//! What is never folded, because the value changes what the statement does:
//!
//! * Numbers in an `ORDER BY` or `GROUP BY` clause: `ORDER BY 2` names the second column. The
//!   clause runs to `LIMIT`, `HAVING`, `UNION`, `FOR`, `INTO`, `WINDOW`… or its closing
//!   parenthesis; every number in it is kept (`ORDER BY (2)`, `ORDER BY +2` are positional
//!   too).
//! * A string directly before `@` (`'root'@'%'`): an account name.
//! * Every literal of a statement where literals are names, paths or code
//!   ([`DigestFlags::VERBATIM_LITERALS`]): those starting with `PREPARE`, `EXECUTE`, `GRANT`,
//!   `REVOKE`, `SET`, `LOAD`, `INSTALL`, `UNINSTALL`, `CHANGE`, `HELP`, `KILL`, `BINLOG`,
//!   `PURGE`, `RENAME`; `CREATE`/`ALTER`/`DROP` … `USER`/`ROLE`/`SERVER`; and any statement
//!   with `OUTFILE`, `DUMPFILE`, `INFILE`, `LOAD_FILE`, `SONAME` or `IMMEDIATE` in it. Without
//!   this, `EXECUTE IMMEDIATE 'SELECT 1'` and `EXECUTE IMMEDIATE 'DROP TABLE t'` would share a
//!   cache entry.
//!
//! The text is bytes, not a `String`: the input is in the client charset and identifiers are
//! kept as they are. The hash is a fast 64-bit non-cryptographic hash of the text and flags,
//! for bucketing: anyone can make two texts collide, so a cache must compare the text (as
//! [`Digest`]'s `Eq` does) and never trust the hash alone.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use bitflags::bitflags;

use super::keywords::{self as kw, is_reserved, lookup};
use super::lex::{LexError, Mode, Token, TokenFlags, TokenKind};
use super::split::{run, Run, Segment, Sink, Statement};

bitflags! {
    /// Facts about a digested statement the caller may want to act on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct DigestFlags: u8 {
        /// It may be or contain a compound statement: it runs to the end of the input (see
        /// [`Statement::compound`]).
        const COMPOUND = 0x01;
        /// Its tokens depend on `sql_mode`: a `"`-delimited token (`ANSI_QUOTES`) or a string
        /// with a backslash (`NO_BACKSLASH_ESCAPES`). Refuse it if the session's mode is
        /// uncertain.
        const MODE_SENSITIVE = 0x02;
        /// Its tokens depend on the client charset: a byte ≥ 0x80 directly before a backslash
        /// or backtick. Refuse it if the session's charset is uncertain.
        const CHARSET_SENSITIVE = 0x04;
        /// It has code inside an executable comment (`/*! … */`, `/*M! … */`).
        const EXECUTABLE_COMMENT = 0x08;
        /// Its literals were kept, not folded (see the module documentation).
        const VERBATIM_LITERALS = 0x10;
    }
}

/// A statement's digest: its normalized text, a hash of it, and flags.
#[derive(Debug, Clone)]
pub struct Digest {
    text: Vec<u8>,
    hash: u64,
    flags: DigestFlags,
}

impl Digest {
    /// The normalized text (bytes in the client charset).
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The text for display, invalid UTF-8 replaced.
    pub fn text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.text)
    }

    /// A 64-bit hash of text and flags (not collision resistant: for bucketing only).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Facts about the statement.
    pub fn flags(&self) -> DigestFlags {
        self.flags
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Digest) -> bool {
        self.hash == other.hash && self.flags == other.flags && self.text == other.text
    }
}

impl Eq for Digest {}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// One statement of a COM_QUERY and its digest.
#[derive(Debug, Clone)]
pub struct StatementDigest<'a> {
    /// The statement.
    pub statement: Statement<'a>,
    /// Its digest.
    pub digest: Digest,
}

/// The digest of `sql` as one unit (a COM_STMT_PREPARE, or a statement already split): a `;`
/// between statements is kept in the text, a trailing one dropped.
pub fn digest(sql: &[u8], mode: Mode) -> Result<Digest, LexError> {
    digest_from(sql, mode, 0, true).map(|(_, digest)| digest)
}

/// Every statement of a COM_QUERY, as [`split`](super::split) separates them, with its digest.
pub fn digest_all(sql: &[u8], mode: Mode) -> Result<Vec<StatementDigest<'_>>, LexError> {
    let mut out = Vec::new();
    let mut boundary = 0;
    while boundary < sql.len() {
        let (segment, digest) = digest_from(sql, mode, boundary, false)?;
        if let Some(statement) = segment.statement {
            out.push(StatementDigest { statement, digest });
        }
        boundary = segment.next;
    }
    Ok(out)
}

fn digest_from(
    sql: &[u8],
    mode: Mode,
    boundary: usize,
    whole: bool,
) -> Result<(Segment<'_>, Digest), LexError> {
    let capacity = (sql.len() - boundary).min(4096) * 3 / 2 + 16;
    let mut digester = Digester::new(capacity, false);
    let segment = match run(sql, mode, boundary, whole, &mut digester)? {
        Run::Done(segment) => segment,
        Run::Restart => {
            // A word that makes literals significant came after a literal was folded.
            digester = Digester::new(capacity, true);
            match run(sql, mode, boundary, whole, &mut digester)? {
                Run::Done(segment) => segment,
                Run::Restart => unreachable!("a verbatim digester never restarts"),
            }
        }
    };
    let mut flags = digester.flags;
    if segment.statement.is_some_and(|s| s.compound) {
        flags |= DigestFlags::COMPOUND;
    }
    if digester.verbatim {
        flags |= DigestFlags::VERBATIM_LITERALS;
    }
    let text = digester.out;
    let hash = hash64(&text) ^ u64::from(flags.bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Ok((segment, Digest { text, hash, flags }))
}

/// The class of the last token written, for spacing and context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Nothing yet (or just after a `;`).
    Start,
    Open,
    Close,
    Comma,
    Dot,
    /// A word that may be a function name: a `(` touching it keeps touching.
    Callable,
    /// A reserved word, variable…: `(` after it is always spaced.
    Word,
    Literal,
    Operator,
    /// `*`: an operator, or the `*` of `t.*` / `*.*`.
    Star,
}

#[derive(Debug, Clone, Copy)]
struct InList {
    /// Parenthesis depth inside the list.
    depth: u32,
    /// Where the output stood before the list's `(` (and the space before it).
    mark: usize,
    prev: Prev,
    literals_only: bool,
    count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Values {
    /// The depth of the `VALUES` keyword.
    depth: u32,
    /// The first row's text in the output.
    first: Option<(usize, usize)>,
    /// Where the output stood before the `,` preceding the current row.
    comma: Option<usize>,
    /// Where the current row's `(` is in the output.
    row: Option<usize>,
}

struct Digester<'a> {
    out: Vec<u8>,
    flags: DigestFlags,
    /// Keep literals as written.
    verbatim: bool,
    /// A literal was folded (so turning `verbatim` on needs a restart).
    folded: bool,
    prev: Prev,
    prev_keyword: Option<u16>,
    /// Tokens since the (sub)statement started.
    n: u32,
    /// The statement starts with CREATE, ALTER or DROP.
    ddl: bool,
    depth: u32,
    /// Inside an ORDER BY / GROUP BY clause opened at this depth.
    order: Option<u32>,
    in_list: Option<InList>,
    values: Option<Values>,
    /// A run of unary signs: where the output stood before the first, and `prev` then.
    signs: Option<(usize, Prev)>,
    /// The last token was a folded string: where its `?` starts, `prev` before it, its text.
    account: Option<(usize, Prev, &'a [u8])>,
    /// `;` seen but not yet written (dropped at the end).
    semicolons: u32,
}

impl<'a> Digester<'a> {
    fn new(capacity: usize, verbatim: bool) -> Digester<'a> {
        Digester {
            out: Vec::with_capacity(capacity),
            flags: DigestFlags::empty(),
            verbatim,
            folded: false,
            prev: Prev::Start,
            prev_keyword: None,
            n: 0,
            ddl: false,
            depth: 0,
            order: None,
            in_list: None,
            values: None,
            signs: None,
            account: None,
            semicolons: 0,
        }
    }

    /// Writes the separator a token of class `cur` needs after `self.prev`.
    #[inline]
    fn separate(&mut self, cur: Prev, touching: bool) {
        let space = match (self.prev, cur) {
            (Prev::Start, _) => false,
            (_, Prev::Close | Prev::Comma) => false,
            (Prev::Open, _) => false,
            (prev, Prev::Open) => !(prev == Prev::Callable && touching),
            (prev, Prev::Dot) => !matches!(prev, Prev::Callable | Prev::Word | Prev::Star),
            (Prev::Dot, cur) => !matches!(cur, Prev::Callable | Prev::Word | Prev::Star),
            _ => true,
        };
        if space {
            self.out.push(b' ');
        }
    }

    #[inline]
    fn write(&mut self, cur: Prev, touching: bool, text: &[u8]) {
        self.separate(cur, touching);
        self.out.extend_from_slice(text);
        self.prev = cur;
    }

    /// Writes an identifier in its canonical form.
    fn write_ident(&mut self, content: &[u8], quote: Option<u8>, touching: bool) {
        let plain = !content.is_empty()
            && !content[0].is_ascii_digit()
            && content
                .iter()
                .all(|&b| b >= 0x80 || b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
            && lookup(content).is_none();
        self.separate(Prev::Callable, touching);
        if plain {
            self.out.extend_from_slice(content);
        } else {
            self.out.push(b'`');
            let mut i = 0;
            while i < content.len() {
                let b = content[i];
                // A doubled quote inside the original quotes is one quote.
                if Some(b) == quote && content.get(i + 1) == Some(&b) {
                    i += 1;
                }
                if b == b'`' {
                    self.out.push(b'`');
                }
                self.out.push(b);
                i += 1;
            }
            self.out.push(b'`');
        }
        self.prev = Prev::Callable;
    }

    /// Writes a literal token: `?`, or its text when `keep`. Returns whether it was folded.
    fn write_literal(&mut self, token: &Token<'_>, keep: bool) -> bool {
        let touching = !token.flags.contains(TokenFlags::SPACE_BEFORE);
        if keep {
            self.write(Prev::Literal, touching, token.text);
            return false;
        }
        if let Some((mark, prev)) = self.signs.take() {
            // `- 1` is one literal.
            self.out.truncate(mark);
            self.prev = prev;
        }
        self.folded = true;
        self.write(Prev::Literal, touching, b"?");
        true
    }

    /// Turns verbatim mode on; `false` if the statement must be digested again.
    fn make_verbatim(&mut self) -> bool {
        if self.verbatim {
            return true;
        }
        self.verbatim = true;
        !self.folded
    }

    /// Context kept after a word.
    fn word(&mut self, keyword: Option<u16>) {
        match keyword {
            Some(kw::BY) if matches!(self.prev_keyword, Some(kw::ORDER | kw::GROUP)) => {
                self.order = Some(self.depth);
            }
            Some(
                kw::LIMIT
                | kw::HAVING
                | kw::WINDOW
                | kw::UNION
                | kw::EXCEPT
                | kw::INTERSECT
                | kw::MINUS
                | kw::FOR
                | kw::LOCK
                | kw::INTO
                | kw::OFFSET
                | kw::FETCH
                | kw::ROWS
                | kw::RANGE
                | kw::ON
                | kw::PROCEDURE
                | kw::SEPARATOR
                | kw::RETURNING
                | kw::SELECT,
            ) if self.order == Some(self.depth) => self.order = None,
            Some(kw::VALUES | kw::VALUE) if !self.verbatim => {
                self.values = Some(Values {
                    depth: self.depth,
                    first: None,
                    comma: None,
                    row: None,
                });
                self.prev_keyword = keyword;
                return;
            }
            _ => {}
        }
        if self.values.is_some_and(|v| v.depth == self.depth) {
            self.values = None;
        }
        self.prev_keyword = keyword;
    }

    fn operator(&mut self, text: &'a [u8], touching: bool, is_sign: bool) {
        match text {
            b"(" => {
                let mark = self.out.len();
                let prev = self.prev;
                self.separate(Prev::Open, touching);
                if let Some(v) = &mut self.values {
                    if v.depth == self.depth {
                        v.row = Some(self.out.len());
                    }
                }
                self.out.push(b'(');
                self.prev = Prev::Open;
                self.depth += 1;
                if self.prev_keyword == Some(kw::IN) && !self.verbatim {
                    self.in_list = Some(InList {
                        depth: self.depth,
                        mark,
                        prev,
                        literals_only: true,
                        count: 0,
                    });
                } else if let Some(list) = &mut self.in_list {
                    // A parenthesis inside the list.
                    list.literals_only = false;
                }
            }
            b")" => {
                self.write(Prev::Close, touching, text);
                if let Some(list) = self.in_list {
                    if list.depth == self.depth {
                        if list.literals_only && list.count > 0 {
                            self.out.truncate(list.mark);
                            self.prev = list.prev;
                            self.separate(Prev::Open, false);
                            self.out.extend_from_slice(b"(...)");
                            self.prev = Prev::Close;
                        }
                        self.in_list = None;
                    }
                }
                self.depth = self.depth.saturating_sub(1);
                if self.order.is_some_and(|d| self.depth < d) {
                    self.order = None;
                }
                if let Some(v) = &mut self.values {
                    if v.depth == self.depth {
                        if let Some(row) = v.row.take() {
                            let end = self.out.len();
                            match v.first {
                                None => v.first = Some((row, end)),
                                Some((a, b)) => {
                                    if let Some(comma) = v.comma {
                                        if self.out[a..b] == self.out[row..end] {
                                            self.out.truncate(comma);
                                        }
                                    }
                                }
                            }
                        }
                    } else if self.depth < v.depth {
                        self.values = None;
                    }
                }
            }
            b"," => {
                if let Some(v) = &mut self.values {
                    if v.depth == self.depth {
                        v.comma = Some(self.out.len());
                    }
                }
                self.write(Prev::Comma, touching, text);
            }
            b"." => self.write(Prev::Dot, touching, text),
            _ => {
                if self.values.is_some_and(|v| v.depth == self.depth) {
                    self.values = None;
                }
                if is_sign && self.signs.is_none() {
                    self.signs = Some((self.out.len(), self.prev));
                }
                let class = if text == b"*" {
                    Prev::Star
                } else {
                    Prev::Operator
                };
                self.write(class, touching, text);
            }
        }
    }
}

impl<'a> Sink<'a> for Digester<'a> {
    fn token(&mut self, token: &Token<'a>, keyword: Option<u16>) -> bool {
        let kind = token.kind;
        let text = token.text;
        let touching = !token.flags.contains(TokenFlags::SPACE_BEFORE);
        if token
            .flags
            .intersects(TokenFlags::DOUBLE_QUOTED | TokenFlags::BACKSLASH)
        {
            self.flags |= DigestFlags::MODE_SENSITIVE;
        }
        if token.flags.contains(TokenFlags::CHARSET_SENSITIVE) {
            self.flags |= DigestFlags::CHARSET_SENSITIVE;
        }
        if token.flags.contains(TokenFlags::EXECUTABLE) {
            self.flags |= DigestFlags::EXECUTABLE_COMMENT;
        }

        if kind == TokenKind::Semicolon {
            // Between the statements of a compound, or of `digest`: a statement starts.
            self.semicolons += 1;
            self.order = None;
            self.in_list = None;
            self.values = None;
            self.signs = None;
            self.account = None;
            self.prev_keyword = None;
            self.n = 0;
            self.ddl = false;
            return true;
        }
        for _ in 0..std::mem::take(&mut self.semicolons) {
            self.out.push(b';');
            self.prev = Prev::Comma; // no space before `;`, one after
        }

        // Whether literals are significant, from the statement's words.
        if let Some(k) = keyword {
            let first = self.n == 0;
            let trigger = match k {
                kw::PREPARE
                | kw::EXECUTE
                | kw::GRANT
                | kw::REVOKE
                | kw::SET
                | kw::LOAD
                | kw::INSTALL
                | kw::UNINSTALL
                | kw::CHANGE
                | kw::HELP
                | kw::KILL
                | kw::BINLOG
                | kw::PURGE
                | kw::RENAME => first,
                kw::CREATE | kw::ALTER | kw::DROP => {
                    self.ddl |= first;
                    false
                }
                kw::USER | kw::ROLE | kw::SERVER => self.ddl && self.depth == 0,
                kw::OUTFILE
                | kw::DUMPFILE
                | kw::INFILE
                | kw::LOAD_FILE
                | kw::SONAME
                | kw::IMMEDIATE => true,
                _ => false,
            };
            if trigger && !self.make_verbatim() {
                return false;
            }
        }
        self.n += 1;

        // A folded string directly followed by `@host` is an account name: write it back.
        if let Some((mark, prev, string)) = self.account.take() {
            if kind == TokenKind::UserVariable {
                self.out.truncate(mark);
                self.prev = prev;
                self.write(Prev::Literal, false, string);
            }
        }

        let is_sign = kind == TokenKind::Operator
            && (text == b"-" || text == b"+")
            && matches!(
                self.prev,
                Prev::Start | Prev::Open | Prev::Comma | Prev::Operator | Prev::Star
            );

        // IN (…): is this token part of a list of literals only?
        if let Some(list) = &mut self.in_list {
            if self.depth == list.depth {
                let literal = match kind {
                    TokenKind::String
                    | TokenKind::NationalString
                    | TokenKind::HexString
                    | TokenKind::BitString
                    | TokenKind::HexNumber
                    | TokenKind::BitNumber
                    | TokenKind::Placeholder => true,
                    TokenKind::Number => self.order.is_none(),
                    _ => false,
                };
                if literal {
                    list.count += 1;
                } else if !(is_sign
                    || kind == TokenKind::Introducer
                    || (kind == TokenKind::Operator && (text == b"," || text == b")")))
                {
                    list.literals_only = false;
                }
            }
        }

        match kind {
            TokenKind::Word => {
                if text == b"\\N" {
                    self.write(Prev::Word, touching, b"NULL");
                } else if token.flags.contains(TokenFlags::QUALIFIER)
                    || self.prev == Prev::Dot
                    || text[0].is_ascii_digit()
                {
                    // Certainly an identifier.
                    self.write_ident(text, None, touching);
                } else if keyword.is_some_and(is_reserved) {
                    self.separate(Prev::Word, touching);
                    self.out.extend(text.iter().map(u8::to_ascii_uppercase));
                    self.prev = Prev::Word;
                } else {
                    self.write(Prev::Callable, touching, text);
                }
                self.word(keyword);
                return self.end_token(is_sign);
            }
            TokenKind::Introducer => self.write(Prev::Word, touching, text),
            TokenKind::QuotedIdent => {
                self.write_ident(&text[1..text.len() - 1], Some(text[0]), touching)
            }
            TokenKind::Number => {
                let keep = self.verbatim || self.order.is_some();
                self.write_literal(token, keep);
            }
            TokenKind::String | TokenKind::NationalString => {
                let mark = self.signs.map_or(self.out.len(), |(m, _)| m);
                let prev = self.signs.map_or(self.prev, |(_, p)| p);
                if self.write_literal(token, self.verbatim) {
                    self.account = Some((mark, prev, text));
                }
            }
            TokenKind::HexString
            | TokenKind::BitString
            | TokenKind::HexNumber
            | TokenKind::BitNumber
            | TokenKind::Placeholder => {
                let keep = self.verbatim && kind != TokenKind::Placeholder;
                self.write_literal(token, keep);
            }
            TokenKind::UserVariable | TokenKind::SystemVariable => {
                self.write(Prev::Word, touching, text)
            }
            TokenKind::Operator => self.operator(text, touching, is_sign),
            TokenKind::Semicolon => unreachable!("handled above"),
        }
        if self.values.is_some_and(|v| v.depth == self.depth)
            && !matches!(kind, TokenKind::Operator)
        {
            // Anything but `(`, `)` and `,` at the level of VALUES ends the rows.
            self.values = None;
        }
        self.prev_keyword = None;
        self.end_token(is_sign)
    }
}

impl Digester<'_> {
    #[inline]
    fn end_token(&mut self, is_sign: bool) -> bool {
        if !is_sign {
            self.signs = None;
        }
        true
    }
}

/// A fast 64-bit hash (multiply-rotate over 8-byte words, murmur3's finalizer). Not
/// collision resistant.
fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h ^ word).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}
