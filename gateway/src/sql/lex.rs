//! The lexer: MariaDB's tokenizer (`Lex_input_stream::lex_one_token` in `sql/sql_lex.cc`),
//! reduced to what splitting and digesting need, over the raw bytes of a COM_QUERY.
//!
//! Everything that decides *where a token ends* follows the server byte for byte, because that
//! is what decides where strings, comments and statements end; where the server's answer
//! depends on information the lexer does not have, the lexer refuses ([`LexError`]) instead of
//! guessing. Checked against MariaDB 10.11 (see `super` for the measurements):
//!
//! * Strings `'…'` and `"…"` (unless `ANSI_QUOTES`): a doubled quote is a quote; a backslash
//!   escapes the next byte unless `NO_BACKSLASH_ESCAPES`; in the multi-byte charsets a valid
//!   multi-byte character is skipped whole, so its second byte is never a quote or a backslash
//!   (the GBK/SJIS/Big5 `0x5C` trail byte).
//! * Identifiers: `` `…` `` (and `"…"` under `ANSI_QUOTES`) with the quote doubled, no
//!   escapes. Unquoted words are `[A-Za-z0-9_$]` and bytes ≥ 0x80 (multi-byte aware).
//! * Comments: `#…` and `-- …` to the end of the line (`--` is a comment only when the next byte
//!   is a space or control character of the client charset, or the end of input: `1--1` is
//!   `1 - -1`, and `--;` is not a comment), `/* … */` to the first `*/`, no nesting.
//! * Executable comments `/*!…*/`, `/*!NNNNN…*/`, `/*M!…*/`, `/*M!NNNNNN…*/`: their content is
//!   lexed as code (whether the server runs it depends on its version, so the lexer always
//!   assumes it does). The two readings — code, or a comment ending at the first `*/` — must
//!   agree on where the comment ends, otherwise the input is refused: no comment inside one,
//!   and no string, identifier or line comment in one may run past its first `*/`.
//! * Unterminated strings, identifiers and comments, `X'…'`/`B'…'` with bad digits, and NUL
//!   bytes outside strings and `/* */` comments are errors (the server refuses them too).

use bitflags::bitflags;

/// The client character set (`character_set_client`), as far as lexing is concerned.
///
/// The server lexes in the client charset: it decides which bytes are spaces (so where a `--`
/// comment starts) and, for the multi-byte charsets whose characters can contain ASCII bytes,
/// where strings and identifiers end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Charset {
    /// `utf8mb4`, `utf8mb3`, `ascii`, `binary`, the EUC family (`ujis`, `eucjpms`, `euckr`,
    /// `gb2312`: their multi-byte characters never contain an ASCII byte) and the single-byte
    /// charsets measured to lex exactly like them (`koi8r`, `koi8u`, `cp1256`, `swe7`,
    /// `tis620`): spaces are `\t \n \v \f \r` and ` `; `--` starts a comment before a byte
    /// `<= 0x20` or `0x7F`.
    #[default]
    Utf8,
    /// `latin1`: as [`Charset::Utf8`], and `0xA0` is a space too.
    Latin1,
    /// `gbk`: two-byte characters `[81–FE][40–7E 80–FE]`.
    Gbk,
    /// `big5`: two-byte characters `[A1–F9][40–7E A1–FE]`.
    Big5,
    /// `sjis` and `cp932`: two-byte characters `[81–9F E0–FC][40–7E 80–FC]`.
    Sjis,
    /// `gb18030` (MySQL only): `gbk`'s two-byte characters and four-byte
    /// `[81–FE][30–39][81–FE][30–39]`.
    Gb18030,
    /// Any other single-byte charset (`latin2`, `cp1250`, `cp1251`, …). They disagree with
    /// each other about which bytes ≥ 0x7F are spaces or control characters, so such a byte
    /// after `--`, and the bytes `0xA0` and `0xFF` outside strings, are refused.
    OtherSingleByte,
}

impl Charset {
    /// The charset named `name` (as in `character_set_client`, any case), or `None` for a
    /// charset that cannot be a client charset (`ucs2`, `utf16`, `utf32`) or is unknown.
    pub fn from_name(name: &str) -> Option<Charset> {
        let name = name.trim().to_ascii_lowercase();
        Some(match name.as_str() {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "binary" | "ujis" | "eucjpms" | "euckr"
            | "gb2312" | "koi8r" | "koi8u" | "cp1256" | "swe7" | "tis620" => Charset::Utf8,
            "latin1" => Charset::Latin1,
            "gbk" => Charset::Gbk,
            "big5" => Charset::Big5,
            "sjis" | "cp932" => Charset::Sjis,
            "gb18030" => Charset::Gb18030,
            "armscii8" | "cp1250" | "cp1251" | "cp1257" | "cp850" | "cp852" | "cp866" | "dec8"
            | "geostd8" | "greek" | "hebrew" | "hp8" | "keybcs2" | "latin2" | "latin5"
            | "latin7" | "macce" | "macroman" => Charset::OtherSingleByte,
            _ => return None,
        })
    }

    /// The charset of collation `id` (the handshake's character set byte, or a collation id
    /// from session tracking): MariaDB 10.11's collations below 256 and MySQL 8.0's
    /// `gb18030` (248–250) and `utf8mb4` (255–323) ones. `None` for the rest.
    pub fn from_collation_id(id: u16) -> Option<Charset> {
        let name = match id {
            1 | 84 => "big5",
            3 | 69 => "dec8",
            4 | 80 => "cp850",
            5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => "latin1",
            6 | 72 => "hp8",
            7 | 74 => "koi8r",
            2 | 9 | 21 | 27 | 77 => "latin2",
            10 | 82 => "swe7",
            11 | 65 => "ascii",
            12 | 91 => "ujis",
            13 | 88 => "sjis",
            14 | 23 | 50 | 51 | 52 => "cp1251",
            16 | 71 => "hebrew",
            18 | 89 => "tis620",
            19 | 85 => "euckr",
            20 | 41 | 42 | 79 => "latin7",
            22 | 75 => "koi8u",
            24 | 86 => "gb2312",
            25 | 70 => "greek",
            26 | 34 | 44 | 66 | 99 => "cp1250",
            28 | 87 => "gbk",
            29 | 58 | 59 => "cp1257",
            30 | 78 => "latin5",
            32 | 64 => "armscii8",
            33 | 76 | 83 | 192..=215 | 223 => "utf8mb3",
            36 | 68 => "cp866",
            37 | 73 => "keybcs2",
            38 | 43 => "macce",
            39 | 53 => "macroman",
            40 | 81 => "cp852",
            45 | 46 | 224..=247 | 255..=323 => "utf8mb4",
            57 | 67 => "cp1256",
            63 => "binary",
            92 | 93 => "geostd8",
            95 | 96 => "cp932",
            97 | 98 => "eucjpms",
            248..=250 => "gb18030",
            _ => return None,
        };
        Charset::from_name(name)
    }

    pub(crate) fn is_multibyte(self) -> bool {
        matches!(
            self,
            Charset::Gbk | Charset::Big5 | Charset::Sjis | Charset::Gb18030
        )
    }
}

/// How the session lexes: the parts of `sql_mode` that change tokens, and the client charset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mode {
    /// `ANSI_QUOTES`: `"x"` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// `NO_BACKSLASH_ESCAPES`: a backslash in a string is an ordinary byte.
    pub no_backslash_escapes: bool,
    /// `character_set_client`.
    pub charset: Charset,
}

impl Mode {
    /// A fresh MariaDB session: no `ANSI_QUOTES`, backslash escapes, `utf8mb4`.
    pub const DEFAULT: Mode = Mode {
        ansi_quotes: false,
        no_backslash_escapes: false,
        charset: Charset::Utf8,
    };

    /// This mode with the flags of the `sql_mode` value `sql_mode` (a comma-separated list, as
    /// `@@sql_mode` shows it; the combination modes `ANSI`, `DB2`, `MAXDB`, `MSSQL`, `ORACLE`
    /// and `POSTGRESQL` imply `ANSI_QUOTES`).
    pub fn with_sql_mode(self, sql_mode: &str) -> Mode {
        let mut mode = Mode {
            ansi_quotes: false,
            no_backslash_escapes: false,
            ..self
        };
        for flag in sql_mode.split(',') {
            let flag = flag.trim();
            if flag.eq_ignore_ascii_case("NO_BACKSLASH_ESCAPES") {
                mode.no_backslash_escapes = true;
            } else if [
                "ANSI_QUOTES",
                "ANSI",
                "DB2",
                "MAXDB",
                "MSSQL",
                "ORACLE",
                "POSTGRESQL",
            ]
            .iter()
            .any(|m| flag.eq_ignore_ascii_case(m))
            {
                mode.ansi_quotes = true;
            }
        }
        mode
    }

    /// This mode with client charset `charset`.
    pub fn with_charset(self, charset: Charset) -> Mode {
        Mode { charset, ..self }
    }
}

/// Input the lexer refuses; the offset is where the offending token or comment starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LexError {
    /// A string literal without its closing quote.
    #[error("unterminated string at byte {0}")]
    UnterminatedString(usize),
    /// A quoted identifier without its closing quote.
    #[error("unterminated quoted identifier at byte {0}")]
    UnterminatedIdentifier(usize),
    /// A `/*` comment without `*/`.
    #[error("unterminated comment at byte {0}")]
    UnterminatedComment(usize),
    /// `X'…'` with a byte that is not a hex digit or an odd number of digits, or `B'…'` with a
    /// byte that is not 0 or 1.
    #[error("malformed hex or bit literal at byte {0}")]
    BadLiteral(usize),
    /// A NUL byte outside a string and a `/* */` comment (the server ends the query there).
    #[error("NUL byte at byte {0}")]
    Nul(usize),
    /// An executable comment whose end the server could place elsewhere: a comment inside it,
    /// or a string, identifier or line comment in it crossing its first `*/`.
    #[error("ambiguous executable comment at byte {0}")]
    ExecutableComment(usize),
    /// A `;` inside an executable comment outside a compound statement (the server refuses the
    /// statement).
    #[error("`;` inside an executable comment at byte {0}")]
    SemicolonInComment(usize),
    /// A byte whose meaning depends on charset tables the lexer does not carry: a multi-byte
    /// head byte before a backtick inside a backtick-quoted identifier, or in
    /// [`Charset::OtherSingleByte`] a byte ≥ 0x7F after `--`, or `0xA0`/`0xFF` outside quotes.
    #[error("charset-dependent byte at byte {0}")]
    Charset(usize),
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// An unquoted word: a keyword or an identifier (the lexer does not tell them apart), also
    /// a word of digits and letters such as `1abc`, and `\N` (NULL).
    Word,
    /// A charset introducer (`_utf8mb4`, `_latin1`, `_binary`…); a literal follows.
    Introducer,
    /// `` `x` ``, or `"x"` under `ANSI_QUOTES`.
    QuotedIdent,
    /// `'x'`, or `"x"` without `ANSI_QUOTES`.
    String,
    /// `N'x'`.
    NationalString,
    /// `X'41'`.
    HexString,
    /// `B'0101'`.
    BitString,
    /// `0x41`.
    HexNumber,
    /// `0b0101`.
    BitNumber,
    /// `1`, `1.5`, `.5`, `1e10`, `1.5E-3`.
    Number,
    /// `?`.
    Placeholder,
    /// `@name`, `@'name'`, `` @`name` ``; also the `@host` of `user@host`.
    UserVariable,
    /// `@@name`, `@@session.name`.
    SystemVariable,
    /// `;`.
    Semicolon,
    /// Any other punctuation or operator, one to three bytes (`<=>`, `:=`, `.`, `(`…).
    Operator,
}

bitflags! {
    /// Facts about one token.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TokenFlags: u8 {
        /// Whitespace or a comment separates it from the previous token.
        const SPACE_BEFORE = 0x01;
        /// It comes from inside an executable comment.
        const EXECUTABLE = 0x02;
        /// A string with a backslash: its extent depends on `NO_BACKSLASH_ESCAPES`.
        const BACKSLASH = 0x04;
        /// Delimited by `"`: string or identifier depending on `ANSI_QUOTES`.
        const DOUBLE_QUOTED = 0x08;
        /// A byte ≥ 0x80 directly before a backslash or backtick: its extent depends on the
        /// client charset (one multi-byte character in GBK, SJIS, Big5).
        const CHARSET_SENSITIVE = 0x10;
        /// An unquoted word directly followed by `.` and an identifier byte: a qualifier (a
        /// database or table name), never a keyword.
        const QUALIFIER = 0x20;
    }
}

/// One token: a slice of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What it is.
    pub kind: TokenKind,
    /// Its bytes, quotes and prefixes included (`N'x'`, `` @`v` ``).
    pub text: &'a [u8],
    /// Where it starts in the input.
    pub offset: usize,
    /// Facts about it.
    pub flags: TokenFlags,
}

/// The tokens of `sql`, comments skipped and executable comments' content included.
pub fn lex(sql: &[u8], mode: Mode) -> Lexer<'_> {
    Lexer::at(sql, 0, mode)
}

/// An iterator over tokens; it stops after the first error.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    mode: Mode,
    /// Inside an executable comment: where its closing `*/` is.
    exec_end: Option<usize>,
    /// Where that comment starts.
    exec_start: usize,
    /// The previous token was a word directly followed by `.` and an identifier byte, so the
    /// `.` is a qualifier and what follows it is an identifier, even if it starts with digits.
    qualifier_dot: bool,
    /// The previous token was a qualifier `.`: the next token is an identifier.
    ident_next: bool,
    done: bool,
}

#[inline]
fn is_ident_ascii(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

impl<'a> Lexer<'a> {
    /// A lexer starting at byte `pos` of `src`, which must be outside any comment.
    pub(crate) fn at(src: &'a [u8], pos: usize, mode: Mode) -> Lexer<'a> {
        Lexer {
            src,
            pos,
            mode,
            exec_end: None,
            exec_start: 0,
            qualifier_dot: false,
            ident_next: false,
            done: false,
        }
    }

    /// Where the lexer is: after the last token returned (and the comments it skipped so far).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// While the last token returned came from inside an executable comment: where that
    /// comment starts (its `/*`), so a caller can read its version.
    pub(crate) fn executable_comment_start(&self) -> Option<usize> {
        self.exec_end.map(|_| self.exec_start)
    }

    #[inline]
    fn byte(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    #[inline]
    fn is_space(&self, b: u8) -> bool {
        matches!(b, b' ' | b'\t'..=b'\r') || (b == 0xA0 && self.mode.charset == Charset::Latin1)
    }

    /// A byte that [`Charset::OtherSingleByte`] charsets disagree about outside quotes.
    #[inline]
    fn is_ambiguous(&self, b: u8) -> bool {
        (b == 0xA0 || b == 0xFF) && self.mode.charset == Charset::OtherSingleByte
    }

    /// Whether a byte continues an unquoted word.
    #[inline]
    fn is_ident_byte(&self, b: u8) -> bool {
        if b < 0x80 {
            is_ident_ascii(b)
        } else {
            !self.is_space(b) && !self.is_ambiguous(b)
        }
    }

    /// Whether `--` followed by `next` (`None`: end of input) starts a comment.
    fn dash_comment(&self, next: Option<u8>, at: usize) -> Result<bool, LexError> {
        let Some(b) = next else { return Ok(true) };
        if b <= 0x20 || b == 0x7F {
            return Ok(true);
        }
        match self.mode.charset {
            Charset::Latin1 => Ok(b == 0xA0),
            Charset::OtherSingleByte if b >= 0x80 => Err(LexError::Charset(at)),
            _ => Ok(false),
        }
    }

    /// The head-byte range of the multi-byte charset, if the charset is one.
    #[inline]
    fn is_mb_head(&self, c: u8) -> bool {
        match self.mode.charset {
            Charset::Gbk | Charset::Gb18030 => (0x81..=0xFE).contains(&c),
            Charset::Big5 => (0xA1..=0xF9).contains(&c),
            Charset::Sjis => matches!(c, 0x81..=0x9F | 0xE0..=0xFC),
            _ => false,
        }
    }

    /// The length of the character at `i` (a byte ≥ 0x80): 2 or 4 for a valid multi-byte
    /// character of the charset (by its head and tail ranges, as the server's `my_ismbchar`),
    /// otherwise 1.
    #[inline]
    fn mb_len(&self, i: usize) -> usize {
        let c = self.src[i];
        if !self.is_mb_head(c) {
            return 1;
        }
        let Some(t) = self.byte(i + 1) else { return 1 };
        let two = match self.mode.charset {
            Charset::Gbk | Charset::Gb18030 => matches!(t, 0x40..=0x7E | 0x80..=0xFE),
            Charset::Big5 => matches!(t, 0x40..=0x7E | 0xA1..=0xFE),
            Charset::Sjis => matches!(t, 0x40..=0x7E | 0x80..=0xFC),
            _ => false,
        };
        if two {
            return 2;
        }
        if self.mode.charset == Charset::Gb18030
            && t.is_ascii_digit()
            && matches!(self.byte(i + 2), Some(0x81..=0xFE))
            && matches!(self.byte(i + 3), Some(b'0'..=b'9'))
        {
            return 4;
        }
        1
    }

    /// Skips whitespace and comments; enters and leaves executable comments.
    /// Returns whether anything was skipped.
    fn skip_trivia(&mut self) -> Result<bool, LexError> {
        let start = self.pos;
        let mut skipped_comment = false;
        loop {
            if self.exec_end.is_some_and(|end| self.pos > end) {
                return Err(LexError::ExecutableComment(self.exec_start));
            }
            let Some(b) = self.byte(self.pos) else {
                if self.exec_end.is_some() {
                    return Err(LexError::ExecutableComment(self.exec_start));
                }
                break;
            };
            if self.is_space(b) {
                self.pos += 1;
                continue;
            }
            match b {
                b'#' => self.skip_line_comment()?,
                b'-' if self.byte(self.pos + 1) == Some(b'-')
                    && self.dash_comment(self.byte(self.pos + 2), self.pos)? =>
                {
                    self.skip_line_comment()?
                }
                b'/' if self.byte(self.pos + 1) == Some(b'*') => self.open_comment()?,
                b'*' if self.exec_end == Some(self.pos) => {
                    // The `*/` closing the executable comment we are in.
                    self.exec_end = None;
                    self.pos += 2;
                }
                _ => break,
            }
            skipped_comment = true;
        }
        Ok(skipped_comment || self.pos > start)
    }

    /// `#` or `-- `: to the end of the line. The server also stops at a NUL byte and then
    /// fails on it, so a NUL here is an error.
    fn skip_line_comment(&mut self) -> Result<(), LexError> {
        let rest = &self.src[self.pos..];
        match rest.iter().position(|&b| b == b'\n' || b == 0) {
            Some(i) if rest[i] == 0 => Err(LexError::Nul(self.pos + i)),
            Some(i) => {
                self.pos += i + 1;
                Ok(())
            }
            None => {
                self.pos = self.src.len();
                Ok(())
            }
        }
    }

    /// At `/*`: skips an ordinary comment, or enters an executable one.
    fn open_comment(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        if self.exec_end.is_some() {
            // Cannot happen (an executable comment's content has no `/*`), but never nest.
            return Err(LexError::ExecutableComment(start));
        }
        let opener = match (self.byte(start + 2), self.byte(start + 3)) {
            (Some(b'!'), _) => 3,
            (Some(b'M'), Some(b'!')) => 4,
            _ => {
                let end = find(&self.src[start + 2..], b"*/")
                    .ok_or(LexError::UnterminatedComment(start))?;
                self.pos = start + 2 + end + 2;
                return Ok(());
            }
        };
        // `/*!` or `/*M!`, then a version of exactly 5 or 6 digits, or none.
        let mut content = start + opener;
        let digits = self.src[content..]
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits >= 5 {
            content += digits;
        }
        let close = content
            + find(&self.src[content..], b"*/").ok_or(LexError::UnterminatedComment(start))?;
        if find(&self.src[content..close], b"/*").is_some() {
            return Err(LexError::ExecutableComment(start));
        }
        self.exec_end = Some(close);
        self.exec_start = start;
        self.pos = content;
        Ok(())
    }

    fn next_token(&mut self) -> Result<Option<Token<'a>>, LexError> {
        let space = self.skip_trivia()?;
        let start = self.pos;
        let Some(b) = self.byte(start) else {
            return Ok(None);
        };
        let mut flags = TokenFlags::empty();
        if space {
            flags |= TokenFlags::SPACE_BEFORE;
        }
        if self.exec_end.is_some() {
            flags |= TokenFlags::EXECUTABLE;
        }
        let ident_next = std::mem::take(&mut self.ident_next);
        let qualifier_dot = std::mem::take(&mut self.qualifier_dot);

        let (kind, end) = if ident_next && self.is_ident_byte(b) {
            (TokenKind::Word, self.scan_word(start, &mut flags))
        } else {
            match b {
                b'\'' => (
                    TokenKind::String,
                    self.scan_string(start, start + 1, b'\'', &mut flags)?,
                ),
                b'"' => {
                    flags |= TokenFlags::DOUBLE_QUOTED;
                    if self.mode.ansi_quotes {
                        (
                            TokenKind::QuotedIdent,
                            self.scan_quoted(start, start + 1, b'"', &mut flags)?,
                        )
                    } else {
                        (
                            TokenKind::String,
                            self.scan_string(start, start + 1, b'"', &mut flags)?,
                        )
                    }
                }
                b'`' => (
                    TokenKind::QuotedIdent,
                    self.scan_quoted(start, start + 1, b'`', &mut flags)?,
                ),
                b'x' | b'X' if self.byte(start + 1) == Some(b'\'') => {
                    (TokenKind::HexString, self.scan_hex_string(start)?)
                }
                b'b' | b'B' if self.byte(start + 1) == Some(b'\'') => {
                    (TokenKind::BitString, self.scan_bit_string(start)?)
                }
                b'n' | b'N' if self.byte(start + 1) == Some(b'\'') => (
                    TokenKind::NationalString,
                    self.scan_string(start, start + 2, b'\'', &mut flags)?,
                ),
                b'0'..=b'9' => self.scan_number(start, &mut flags),
                b'.' => {
                    let next = self.byte(start + 1);
                    if qualifier_dot {
                        self.ident_next = true;
                        (TokenKind::Operator, start + 1)
                    } else if next.is_some_and(|n| n.is_ascii_digit()) {
                        (TokenKind::Number, self.scan_fraction(start + 1))
                    } else if next == Some(b'.') {
                        (TokenKind::Operator, start + 2)
                    } else {
                        self.ident_next = next.is_some_and(|n| self.is_ident_byte(n));
                        (TokenKind::Operator, start + 1)
                    }
                }
                b'@' => self.scan_variable(start, &mut flags)?,
                b'?' => (TokenKind::Placeholder, start + 1),
                b';' => (TokenKind::Semicolon, start + 1),
                b'\\' if self.byte(start + 1) == Some(b'N') => (TokenKind::Word, start + 2),
                0 => return Err(LexError::Nul(start)),
                b'<' => (
                    TokenKind::Operator,
                    match (self.byte(start + 1), self.byte(start + 2)) {
                        (Some(b'='), Some(b'>')) => start + 3,
                        (Some(b'=' | b'>' | b'<'), _) => start + 2,
                        _ => start + 1,
                    },
                ),
                b'>' => (
                    TokenKind::Operator,
                    start + 1 + usize::from(matches!(self.byte(start + 1), Some(b'=' | b'>'))),
                ),
                b'!' => (
                    TokenKind::Operator,
                    start + 1 + usize::from(self.byte(start + 1) == Some(b'=')),
                ),
                b'&' | b'|' => (
                    TokenKind::Operator,
                    start + 1 + usize::from(self.byte(start + 1) == Some(b)),
                ),
                b':' => (
                    TokenKind::Operator,
                    start + 1 + usize::from(self.byte(start + 1) == Some(b'=')),
                ),
                _ if self.is_ambiguous(b) => return Err(LexError::Charset(start)),
                _ if is_ident_ascii(b) || b >= 0x80 => {
                    let end = self.scan_word(start, &mut flags);
                    let kind = if b == b'_' && is_charset_name(&self.src[start + 1..end]) {
                        TokenKind::Introducer
                    } else {
                        TokenKind::Word
                    };
                    (kind, end)
                }
                _ => (TokenKind::Operator, start + 1),
            }
        };
        if self.exec_end.is_some_and(|close| end > close) {
            return Err(LexError::ExecutableComment(self.exec_start));
        }
        self.pos = end;
        Ok(Some(Token {
            kind,
            text: &self.src[start..end],
            offset: start,
            flags,
        }))
    }

    /// An unquoted word from `start`; notes a following qualifier dot.
    fn scan_word(&mut self, start: usize, flags: &mut TokenFlags) -> usize {
        let mut i = start;
        let mb = self.mode.charset.is_multibyte();
        while let Some(c) = self.byte(i) {
            if c < 0x80 {
                if !is_ident_ascii(c) {
                    break;
                }
                i += 1;
            } else {
                if !self.is_ident_byte(c) {
                    break;
                }
                if matches!(self.byte(i + 1), Some(b'`' | b'\\')) {
                    *flags |= TokenFlags::CHARSET_SENSITIVE;
                }
                i += if mb { self.mb_len(i) } else { 1 };
            }
        }
        // `.` directly followed by an identifier byte makes the dot a qualifier and the next
        // word an identifier (`t.1` is column `1` of `t`, `select.t` is table `t` of database
        // `select`).
        if self.byte(i) == Some(b'.') && self.byte(i + 1).is_some_and(|n| self.is_ident_byte(n)) {
            self.qualifier_dot = true;
            *flags |= TokenFlags::QUALIFIER;
        }
        i
    }

    /// A string whose content starts at `from`, closed by `quote`; returns its end.
    fn scan_string(
        &self,
        start: usize,
        from: usize,
        quote: u8,
        flags: &mut TokenFlags,
    ) -> Result<usize, LexError> {
        let backslash = !self.mode.no_backslash_escapes;
        let mb = self.mode.charset.is_multibyte();
        let mut i = from;
        loop {
            // Jump to the next byte that can matter.
            let rest = &self.src[i..];
            let Some(j) = rest
                .iter()
                .position(|&c| c == quote || c == b'\\' || (c >= 0x80 && mb))
            else {
                return Err(LexError::UnterminatedString(start));
            };
            i += j;
            let c = self.src[i];
            if c == quote {
                if self.byte(i + 1) == Some(quote) {
                    i += 2;
                    continue;
                }
                return Ok(i + 1);
            }
            if c == b'\\' {
                *flags |= TokenFlags::BACKSLASH;
                if i > from && self.src[i - 1] >= 0x80 {
                    *flags |= TokenFlags::CHARSET_SENSITIVE;
                }
                if backslash {
                    if i + 1 >= self.src.len() {
                        return Err(LexError::UnterminatedString(start));
                    }
                    i += 2;
                } else {
                    i += 1;
                }
                continue;
            }
            // A byte >= 0x80 in a multi-byte charset.
            if self.byte(i + 1) == Some(b'\\') {
                *flags |= TokenFlags::CHARSET_SENSITIVE;
            }
            i += self.mb_len(i);
        }
    }

    /// A quoted identifier whose content starts at `from`; returns its end.
    fn scan_quoted(
        &self,
        start: usize,
        from: usize,
        quote: u8,
        flags: &mut TokenFlags,
    ) -> Result<usize, LexError> {
        let mb = self.mode.charset.is_multibyte();
        let mut i = from;
        loop {
            let Some(c) = self.byte(i) else {
                return Err(LexError::UnterminatedIdentifier(start));
            };
            if c == quote {
                if self.byte(i + 1) == Some(quote) {
                    i += 2;
                    continue;
                }
                return Ok(i + 1);
            }
            if c == 0 {
                // The server ends the identifier there and fails.
                return Err(LexError::Nul(i));
            }
            if c >= 0x80 {
                let next = self.byte(i + 1);
                if quote == b'`' && next == Some(quote) {
                    *flags |= TokenFlags::CHARSET_SENSITIVE;
                }
                if mb {
                    // The server keeps `head + quote` in the identifier only if the pair is a
                    // character of the charset's table; the lexer has only the ranges.
                    if next == Some(quote) && self.is_mb_head(c) {
                        return Err(LexError::Charset(i));
                    }
                    i += self.mb_len(i);
                    continue;
                }
            }
            i += 1;
        }
    }

    /// `X'…'`: an even number of hex digits.
    fn scan_hex_string(&self, start: usize) -> Result<usize, LexError> {
        let digits = self.src[start + 2..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let close = start + 2 + digits;
        if self.byte(close) != Some(b'\'') || digits % 2 != 0 {
            return Err(LexError::BadLiteral(start));
        }
        Ok(close + 1)
    }

    /// `B'…'`: binary digits.
    fn scan_bit_string(&self, start: usize) -> Result<usize, LexError> {
        let digits = self.src[start + 2..]
            .iter()
            .take_while(|&&b| b == b'0' || b == b'1')
            .count();
        let close = start + 2 + digits;
        if self.byte(close) != Some(b'\'') {
            return Err(LexError::BadLiteral(start));
        }
        Ok(close + 1)
    }

    /// A token starting with a digit: a number, `0x…`, `0b…`, or a word such as `1abc`.
    fn scan_number(&mut self, start: usize, flags: &mut TokenFlags) -> (TokenKind, usize) {
        let src = self.src;
        let ident_at = |i: usize| src.get(i).is_some_and(|&c| self.is_ident_byte(c));
        if src[start] == b'0' {
            let (kind, is_digit): (TokenKind, fn(&u8) -> bool) = match self.byte(start + 1) {
                Some(b'x') => (TokenKind::HexNumber, u8::is_ascii_hexdigit),
                Some(b'b') => (TokenKind::BitNumber, |b| *b == b'0' || *b == b'1'),
                _ => (TokenKind::Number, u8::is_ascii_digit),
            };
            if kind != TokenKind::Number {
                let end = start + 2 + src[start + 2..].iter().take_while(|b| is_digit(b)).count();
                if end > start + 2 && !ident_at(end) {
                    return (kind, end);
                }
                return (TokenKind::Word, self.scan_word(start, flags));
            }
        }
        let mut i = start
            + src[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        if !ident_at(i) {
            // An integer, or a decimal if a `.` (not `..`) follows.
            if src.get(i) == Some(&b'.') && src.get(i + 1) != Some(&b'.') {
                return (TokenKind::Number, self.scan_fraction(i + 1));
            }
            return (TokenKind::Number, i);
        }
        if matches!(src[i], b'e' | b'E') {
            let mut j = i + 1;
            if matches!(self.byte(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if self.byte(j).is_some_and(|c| c.is_ascii_digit()) {
                i = j + src[j..].iter().take_while(|b| b.is_ascii_digit()).count();
                return (TokenKind::Number, i);
            }
        }
        (TokenKind::Word, self.scan_word(start, flags))
    }

    /// The digits after a decimal point at `from - 1`, and an exponent; returns the end.
    fn scan_fraction(&self, from: usize) -> usize {
        let src = self.src;
        let mut i = from
            + src[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        if matches!(self.byte(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.byte(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if self.byte(j).is_some_and(|c| c.is_ascii_digit()) {
                i = j + src[j..].iter().take_while(|b| b.is_ascii_digit()).count();
            }
        }
        i
    }

    /// `@…` and `@@…`.
    fn scan_variable(
        &mut self,
        start: usize,
        flags: &mut TokenFlags,
    ) -> Result<(TokenKind, usize), LexError> {
        if self.byte(start + 1) == Some(b'@') {
            let from = start + 2;
            if self.byte(from) == Some(b'`') {
                let end = self.scan_quoted(start, from + 1, b'`', flags)?;
                return Ok((TokenKind::SystemVariable, end));
            }
            let end = from
                + self.src[from..]
                    .iter()
                    .take_while(|&&c| is_ident_ascii(c) || c == b'.')
                    .count();
            return Ok((TokenKind::SystemVariable, end));
        }
        let from = start + 1;
        let end = match self.byte(from) {
            Some(b'\'') => self.scan_string(start, from + 1, b'\'', flags)?,
            Some(b'"') => {
                *flags |= TokenFlags::DOUBLE_QUOTED;
                if self.mode.ansi_quotes {
                    self.scan_quoted(start, from + 1, b'"', flags)?
                } else {
                    self.scan_string(start, from + 1, b'"', flags)?
                }
            }
            Some(b'`') => self.scan_quoted(start, from + 1, b'`', flags)?,
            _ => {
                // A user variable name or the host of `user@host`.
                let mb = self.mode.charset.is_multibyte();
                let mut i = from;
                while let Some(c) = self.byte(i) {
                    if c < 0x80 {
                        if !(is_ident_ascii(c) || c == b'.') {
                            break;
                        }
                        i += 1;
                    } else {
                        if !self.is_ident_byte(c) {
                            break;
                        }
                        if matches!(self.byte(i + 1), Some(b'`' | b'\\')) {
                            *flags |= TokenFlags::CHARSET_SENSITIVE;
                        }
                        i += if mb { self.mb_len(i) } else { 1 };
                    }
                }
                i
            }
        };
        Ok((TokenKind::UserVariable, end))
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Result<Token<'a>, LexError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_token() {
            Ok(Some(token)) => Some(Ok(token)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The first occurrence of `needle` (two bytes) in `hay`.
#[inline]
fn find(hay: &[u8], needle: &[u8; 2]) -> Option<usize> {
    hay.windows(2).position(|w| w == needle)
}

/// Whether `name` (after the `_`) names a charset, so `_name` is an introducer.
fn is_charset_name(name: &[u8]) -> bool {
    const NAMES: &[&str] = &[
        "armscii8", "ascii", "big5", "binary", "cp1250", "cp1251", "cp1256", "cp1257", "cp850",
        "cp852", "cp866", "cp932", "dec8", "eucjpms", "euckr", "gb18030", "gb2312", "gbk",
        "geostd8", "greek", "hebrew", "hp8", "keybcs2", "koi8r", "koi8u", "latin1", "latin2",
        "latin5", "latin7", "macce", "macroman", "sjis", "swe7", "tis620", "ucs2", "ujis", "utf16",
        "utf16le", "utf32", "utf8", "utf8mb3", "utf8mb4",
    ];
    name.len() <= 8
        && NAMES
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}
