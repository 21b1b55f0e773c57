//! Splitting a COM_QUERY into the statements the server will run.
//!
//! The server does not split on `;` itself: it parses one statement with its grammar and, if
//! a `;` ends it and more input follows, parses the rest as the next statement. Outside
//! compound statements the grammar has no `;`, so a `;` token (outside strings, identifiers
//! and comments — the lexer's job) ends a statement. Inside a compound statement (a stored
//! program body, `BEGIN NOT ATOMIC … END`, `IF … END IF` at top level, Oracle-mode blocks…)
//! `;` separates the body's statements, and only the grammar knows where the compound ends.
//! So a statement that *can* start a compound is not split at all: it runs to the end of the
//! input, everything after it included, and is marked [`Statement::compound`] for the caller
//! to treat as one opaque unit. The test is on the first words (measured on MariaDB 10.11):
//!
//! * `IF`, `CASE`, `LOOP`, `WHILE`, `REPEAT`, `FOR`, `DECLARE` (Oracle mode), `<<` (Oracle
//!   label), or a word followed by `:` (a label);
//! * `BEGIN` followed by anything but `WORK`, `;` or the end (`BEGIN NOT ATOMIC`, and Oracle
//!   mode's `BEGIN … END`);
//! * `CREATE`/`ALTER` with `PROCEDURE`, `FUNCTION`, `TRIGGER`, `EVENT` or `PACKAGE` among its
//!   words outside parentheses before the first `;`;
//! * `SET STATEMENT … FOR` followed by any of the above.
//!
//! Over-approximating is safe (the rest of the input stays in one unit the caller sees whole);
//! missing a compound would split a body into pieces, each still analysed.
//!
//! Other rules, also measured: an empty statement (`;;`, or a leading `;`) makes the server
//! fail; it is skipped here (the server runs less, never more). Only whitespace and comments
//! after the last `;` are no statement. A `;` inside an executable comment (`/*! … ; … */`)
//! outside a compound makes the server fail the statement; it is refused here
//! ([`LexError::SemicolonInComment`]).

use super::keywords::{self as kw, lookup};
use super::lex::{LexError, Lexer, Mode, Token, TokenFlags, TokenKind};

/// One statement of a COM_QUERY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// Its text: from its first byte that is not whitespace to its terminating `;` (excluded),
    /// trailing whitespace trimmed. Comments around it are included.
    pub sql: &'a [u8],
    /// Where `sql` starts in the input.
    pub offset: usize,
    /// It may be, or contain, a compound statement: it runs to the end of the input and may
    /// hold several statements the server separates by its grammar.
    pub compound: bool,
}

/// The statements of a COM_QUERY, as the server will separate them.
pub fn split(sql: &[u8], mode: Mode) -> Result<Vec<Statement<'_>>, LexError> {
    let mut out = Vec::new();
    let mut boundary = 0;
    while boundary < sql.len() {
        let run = run(sql, mode, boundary, false, &mut NoSink)?;
        let Run::Done(seg) = run else {
            unreachable!("NoSink never restarts")
        };
        if let Some(statement) = seg.statement {
            out.push(statement);
        }
        boundary = seg.next;
    }
    Ok(out)
}

/// Receives the tokens of one statement.
pub(crate) trait Sink<'a> {
    /// One token (`keyword`: the keyword a [`TokenKind::Word`] spells). Returns `false` to
    /// ask for the statement to be fed again from its start.
    fn token(&mut self, token: &Token<'a>, keyword: Option<u16>) -> bool;
}

struct NoSink;

impl<'a> Sink<'a> for NoSink {
    #[inline]
    fn token(&mut self, _: &Token<'a>, _: Option<u16>) -> bool {
        true
    }
}

/// One segment of the input: a statement, or nothing (whitespace, comments, an empty
/// statement), and where the next segment starts.
pub(crate) struct Segment<'a> {
    pub(crate) statement: Option<Statement<'a>>,
    pub(crate) next: usize,
}

pub(crate) enum Run<'a> {
    Done(Segment<'a>),
    /// The sink asked to start over.
    Restart,
}

/// Lexes one statement from `boundary` (just after the previous `;`, or 0), feeding `sink`.
/// With `whole`, the input is not split: every token up to the end is one unit.
pub(crate) fn run<'a, S: Sink<'a>>(
    sql: &'a [u8],
    mode: Mode,
    boundary: usize,
    whole: bool,
    sink: &mut S,
) -> Result<Run<'a>, LexError> {
    let mut lexer = Lexer::at(sql, boundary, mode);
    let mut head = Head::default();
    let mut compound = false;
    let mut any = false;
    let mut end = sql.len();
    for token in lexer.by_ref() {
        let token = token?;
        let keyword = if token.kind == TokenKind::Word {
            lookup(token.text)
        } else {
            None
        };
        if token.kind == TokenKind::Semicolon {
            if !whole && !compound {
                if token.flags.contains(TokenFlags::EXECUTABLE) {
                    return Err(LexError::SemicolonInComment(token.offset));
                }
                end = token.offset;
                break;
            }
            if !compound {
                // `whole`: the next token starts a statement again.
                if token.flags.contains(TokenFlags::EXECUTABLE) {
                    return Err(LexError::SemicolonInComment(token.offset));
                }
                head = Head::default();
            }
        } else {
            any = true;
            if !compound && head.feed(&token, keyword) {
                compound = true;
            }
        }
        if !sink.token(&token, keyword) {
            return Ok(Run::Restart);
        }
    }
    let next = if end < sql.len() { end + 1 } else { end };
    let statement = any.then(|| {
        let start = boundary
            + sql[boundary..end]
                .iter()
                .take_while(|b| is_space(**b))
                .count();
        let mut stop = end;
        while stop > start && (is_space(sql[stop - 1]) || (compound && sql[stop - 1] == b';')) {
            stop -= 1;
        }
        Statement {
            sql: &sql[start..stop],
            offset: start,
            compound,
        }
    });
    Ok(Run::Done(Segment { statement, next }))
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// Recognizes statements that may start a compound statement, from their first tokens.
#[derive(Debug, Default)]
pub(crate) struct Head {
    depth: u32,
    /// Tokens seen outside parentheses since the (sub)statement started.
    n: u32,
    begin: bool,
    label: bool,
    create: bool,
    set: bool,
    set_statement: bool,
}

impl Head {
    /// Feeds one token (not a `;`); returns whether the statement may be compound.
    pub(crate) fn feed(&mut self, token: &Token<'_>, keyword: Option<u16>) -> bool {
        let top = self.depth == 0;
        if token.kind == TokenKind::Operator {
            match token.text {
                b"(" => self.depth += 1,
                b")" => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        if !top {
            return false;
        }
        let n = self.n;
        self.n += 1;
        if n == 0 {
            match keyword {
                Some(kw::IF | kw::CASE | kw::LOOP | kw::WHILE | kw::REPEAT | kw::FOR)
                | Some(kw::DECLARE) => return true,
                Some(kw::BEGIN) => self.begin = true,
                Some(kw::CREATE | kw::ALTER) => self.create = true,
                Some(kw::SET) => self.set = true,
                _ => {}
            }
            if token.kind == TokenKind::Operator && token.text == b"<<" {
                return true;
            }
            self.label = matches!(token.kind, TokenKind::Word | TokenKind::QuotedIdent);
            return false;
        }
        if n == 1 {
            if self.begin {
                return keyword != Some(kw::WORK);
            }
            if self.label && token.kind == TokenKind::Operator && token.text == b":" {
                return true;
            }
            if self.set && keyword == Some(kw::STATEMENT) {
                self.set_statement = true;
                return false;
            }
        }
        if self.create
            && matches!(
                keyword,
                Some(kw::PROCEDURE | kw::FUNCTION | kw::TRIGGER | kw::EVENT | kw::PACKAGE)
            )
        {
            return true;
        }
        if self.set_statement && keyword == Some(kw::FOR) {
            // `SET STATEMENT var = value, … FOR <statement>`: judge the inner statement.
            *self = Head::default();
        }
        false
    }
}
