//! Tests of the lexer, splitter and digest: unit tests, the table of evasion attempts (each
//! checked against MariaDB 10.11 where marked), and properties.

use proptest::prelude::*;

use super::*;

const ANSI: Mode = Mode {
    ansi_quotes: true,
    ..Mode::DEFAULT
};
const NBE: Mode = Mode {
    no_backslash_escapes: true,
    ..Mode::DEFAULT
};

fn with_charset(charset: Charset) -> Mode {
    Mode::DEFAULT.with_charset(charset)
}

/// The digests of `sql`'s statements, as text, or the error.
fn digests_in(sql: &[u8], mode: Mode) -> Result<Vec<String>, LexError> {
    Ok(digest_all(sql, mode)?
        .into_iter()
        .map(|s| s.digest.text_lossy().into_owned())
        .collect())
}

fn digests(sql: &str) -> Vec<String> {
    digests_in(sql.as_bytes(), Mode::DEFAULT).unwrap_or_else(|e| panic!("{sql:?}: {e}"))
}

/// The digest of a single statement.
fn d(sql: &str) -> String {
    let all = digests(sql);
    assert_eq!(all.len(), 1, "{sql:?} is one statement: {all:?}");
    all.into_iter().next().unwrap()
}

fn kinds(sql: &[u8], mode: Mode) -> Vec<(TokenKind, String)> {
    lex(sql, mode)
        .map(|t| {
            let t = t.unwrap();
            (t.kind, String::from_utf8_lossy(t.text).into_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[test]
fn lexes_token_kinds() {
    use TokenKind::*;
    let got = kinds(
        b"SELECT `a``b`, 'x\\'y', \"q\", N'n', _utf8mb4'u', X'41', x'', B'01', 0x1F, 0b10, \
          12, 1.5, .5, 1e3, 2E-2, 1abc, ? , @v, @'w', @@global.x, \\N, a<=>b, c:=1;",
        Mode::DEFAULT,
    );
    let want: Vec<(TokenKind, &str)> = vec![
        (Word, "SELECT"),
        (QuotedIdent, "`a``b`"),
        (Operator, ","),
        (String, "'x\\'y'"),
        (Operator, ","),
        (String, "\"q\""),
        (Operator, ","),
        (NationalString, "N'n'"),
        (Operator, ","),
        (Introducer, "_utf8mb4"),
        (String, "'u'"),
        (Operator, ","),
        (HexString, "X'41'"),
        (Operator, ","),
        (HexString, "x''"),
        (Operator, ","),
        (BitString, "B'01'"),
        (Operator, ","),
        (HexNumber, "0x1F"),
        (Operator, ","),
        (BitNumber, "0b10"),
        (Operator, ","),
        (Number, "12"),
        (Operator, ","),
        (Number, "1.5"),
        (Operator, ","),
        (Number, ".5"),
        (Operator, ","),
        (Number, "1e3"),
        (Operator, ","),
        (Number, "2E-2"),
        (Operator, ","),
        (Word, "1abc"),
        (Operator, ","),
        (Placeholder, "?"),
        (Operator, ","),
        (UserVariable, "@v"),
        (Operator, ","),
        (UserVariable, "@'w'"),
        (Operator, ","),
        (SystemVariable, "@@global.x"),
        (Operator, ","),
        (Word, "\\N"),
        (Operator, ","),
        (Word, "a"),
        (Operator, "<=>"),
        (Word, "b"),
        (Operator, ","),
        (Word, "c"),
        (Operator, ":="),
        (Number, "1"),
        (Semicolon, ";"),
    ];
    let want: Vec<(TokenKind, std::string::String)> =
        want.into_iter().map(|(k, t)| (k, t.to_owned())).collect();
    assert_eq!(got, want);
}

#[test]
fn numbers_and_words_split_like_the_server() {
    use TokenKind::*;
    let k = |s: &str| kinds(s.as_bytes(), Mode::DEFAULT);
    // `0X41` is not hex (only lower-case x), `0x` alone and `0xg` are words.
    assert_eq!(k("0X41")[0], (Word, "0X41".into()));
    assert_eq!(k("0x")[0], (Word, "0x".into()));
    assert_eq!(k("0xg1")[0], (Word, "0xg1".into()));
    assert_eq!(k("0b12")[0], (Word, "0b12".into()));
    // `1e` and `1e+x` are not floats.
    assert_eq!(k("1e")[0], (Word, "1e".into()));
    assert_eq!(
        k("1e+x"),
        vec![
            (Word, "1e".into()),
            (Operator, "+".into()),
            (Word, "x".into())
        ]
    );
    assert_eq!(
        k("1e+5x"),
        vec![(Number, "1e+5".into()), (Word, "x".into())]
    );
    // `1..2` is a range, `1.x` a decimal and a word (an alias).
    assert_eq!(
        k("1..2"),
        vec![
            (Number, "1".into()),
            (Operator, "..".into()),
            (Number, "2".into())
        ]
    );
    assert_eq!(k("1.x"), vec![(Number, "1.".into()), (Word, "x".into())]);
    // After a qualifier dot, digits are an identifier; after a quoted one, a number.
    assert_eq!(
        k("t.1e5"),
        vec![
            (Word, "t".into()),
            (Operator, ".".into()),
            (Word, "1e5".into())
        ]
    );
    assert_eq!(
        k("`t`.5"),
        vec![(QuotedIdent, "`t`".into()), (Number, ".5".into())]
    );
    assert_eq!(
        k("`t`.a"),
        vec![
            (QuotedIdent, "`t`".into()),
            (Operator, ".".into()),
            (Word, "a".into())
        ]
    );
    // Operators.
    assert_eq!(
        k("a<>b!=c>=d<<e>>f&&g||h"),
        ["a", "<>", "b", "!=", "c", ">=", "d", "<<", "e", ">>", "f", "&&", "g", "||", "h"]
            .iter()
            .map(|t| {
                let kind = if t.as_bytes()[0].is_ascii_alphabetic() {
                    Word
                } else {
                    Operator
                };
                (kind, t.to_string())
            })
            .collect::<Vec<_>>()
    );
    // `_foo` is a word, `_latin1` an introducer.
    assert_eq!(k("_foo 'x'")[0].0, Word);
    assert_eq!(k("_LATIN1'x'")[0].0, Introducer);
}

#[test]
fn comments_are_skipped() {
    use TokenKind::*;
    let k = |s: &str| kinds(s.as_bytes(), Mode::DEFAULT);
    assert_eq!(k("a /* x */ b # y\nc -- z\nd --\tq\ne --"), k("a b c d e"));
    // `--` needs a space or control character after it.
    assert_eq!(
        k("1--1"),
        vec![
            (Number, "1".into()),
            (Operator, "-".into()),
            (Operator, "-".into()),
            (Number, "1".into())
        ]
    );
    assert_eq!(k("1 --;").len(), 4);
    assert_eq!(k("1 --\x01;"), vec![(Number, "1".into())]);
    assert_eq!(k("1 --\x7f;"), vec![(Number, "1".into())]);
    assert_eq!(
        k("1 --\n2"),
        vec![(Number, "1".into()), (Number, "2".into())]
    );
    assert_eq!(k("1 --"), vec![(Number, "1".into())]);
    // `/*/` does not close; `/**/` is empty; comments do not nest.
    assert_eq!(k("a/**/b"), vec![(Word, "a".into()), (Word, "b".into())]);
    assert_eq!(k("/* /* */ x */").len(), 3);
    assert_eq!(k("/*m! x */ y"), vec![(Word, "y".into())]);
}

#[test]
fn executable_comments_are_code() {
    use TokenKind::*;
    let k = |s: &str| kinds(s.as_bytes(), Mode::DEFAULT);
    for sql in [
        "/*!a*/",
        "/*! a */",
        "/*!50000 a */",
        "/*!101119 a*/",
        "/*!99999 a */",
        "/*M!a*/",
        "/*M!100000 a */",
        "/*!50700a*/",
    ] {
        assert_eq!(k(sql), vec![(Word, "a".into())], "{sql}");
    }
    // Fewer than five digits are code; a seventh digit too.
    assert_eq!(k("/*!1234 a */")[0], (Number, "1234".into()));
    assert_eq!(k("/*!1000000 */")[0], (Number, "0".into()));
    assert_eq!(k("/*!50000*/"), vec![]);
    let t = lex(b"x /*!y*/ z", Mode::DEFAULT)
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    assert!(!t[0].flags.contains(TokenFlags::EXECUTABLE));
    assert!(t[1].flags.contains(TokenFlags::EXECUTABLE));
    assert!(!t[2].flags.contains(TokenFlags::EXECUTABLE));
    // A stray `*/` outside one is two operators.
    assert_eq!(
        k("a */"),
        vec![
            (Word, "a".into()),
            (Operator, "*".into()),
            (Operator, "/".into())
        ]
    );
}

#[test]
fn ambiguous_executable_comments_are_refused() {
    let err = |s: &str| lex(s.as_bytes(), Mode::DEFAULT).find_map(Result::err);
    // A skipped version comment ends at its first `*/`; run as code, these end later.
    assert_eq!(
        err("/*!99999 '*/ ; DROP TABLE x; -- ' */"),
        Some(LexError::ExecutableComment(0))
    );
    assert_eq!(
        err("x /*!99999 `*/` */"),
        Some(LexError::ExecutableComment(2))
    );
    assert_eq!(err("/*! # */ x\n */"), Some(LexError::ExecutableComment(0)));
    assert_eq!(
        err("/*! -- */ x\n */"),
        Some(LexError::ExecutableComment(0))
    );
    assert_eq!(
        err("/*! a /* b */ c */"),
        Some(LexError::ExecutableComment(0))
    );
    assert_eq!(err("/*!50000 a"), Some(LexError::UnterminatedComment(0)));
    assert_eq!(err("/*! 'a */"), Some(LexError::UnterminatedString(4)));
    // A string that closes before `*/` is fine.
    assert_eq!(err("/*! 'a*b' */"), None);
}

#[test]
fn lexer_errors() {
    let err = |s: &[u8], m: Mode| lex(s, m).find_map(Result::err);
    assert_eq!(
        err(b"'abc", Mode::DEFAULT),
        Some(LexError::UnterminatedString(0))
    );
    assert_eq!(
        err(b"'abc\\'", Mode::DEFAULT),
        Some(LexError::UnterminatedString(0))
    );
    assert_eq!(
        err(b"'abc\\", Mode::DEFAULT),
        Some(LexError::UnterminatedString(0))
    );
    assert_eq!(err(b"'abc\\'", NBE), None);
    assert_eq!(
        err(b"x `abc", Mode::DEFAULT),
        Some(LexError::UnterminatedIdentifier(2))
    );
    assert_eq!(
        err(b"\"abc", ANSI),
        Some(LexError::UnterminatedIdentifier(0))
    );
    assert_eq!(
        err(b"/* abc", Mode::DEFAULT),
        Some(LexError::UnterminatedComment(0))
    );
    assert_eq!(
        err(b"/*/", Mode::DEFAULT),
        Some(LexError::UnterminatedComment(0))
    );
    assert_eq!(err(b"X'4'", Mode::DEFAULT), Some(LexError::BadLiteral(0)));
    assert_eq!(err(b"X'4g'", Mode::DEFAULT), Some(LexError::BadLiteral(0)));
    assert_eq!(err(b"x'41", Mode::DEFAULT), Some(LexError::BadLiteral(0)));
    assert_eq!(err(b"B'012'", Mode::DEFAULT), Some(LexError::BadLiteral(0)));
    assert_eq!(err(b"1 \0", Mode::DEFAULT), Some(LexError::Nul(2)));
    assert_eq!(err(b"1 # x\0\n", Mode::DEFAULT), Some(LexError::Nul(5)));
    assert_eq!(err(b"`a\0b`", Mode::DEFAULT), Some(LexError::Nul(2)));
    // NUL is fine in strings and block comments.
    assert_eq!(err(b"'a\0b' /* \0 */", Mode::DEFAULT), None);
    // The lexer stops after an error.
    let mut l = lex(b"'a", Mode::DEFAULT);
    assert!(matches!(l.next(), Some(Err(_))));
    assert_eq!(l.next(), None);
}

#[test]
fn charsets_change_where_strings_and_comments_end() {
    // GBK: 0xBF 0x5C is one character, so the quote after it closes the string.
    let sql = b"SELECT '\xbf\\'; DROP TABLE x -- '";
    assert_eq!(
        digests_in(sql, with_charset(Charset::Gbk)).unwrap().len(),
        2
    );
    assert_eq!(digests_in(sql, Mode::DEFAULT).unwrap().len(), 1);
    for cs in [Charset::Big5, Charset::Sjis] {
        assert_eq!(
            digests_in(b"SELECT '\xe0\\'; SELECT 2 -- '", with_charset(cs))
                .unwrap()
                .len(),
            2
        );
    }
    // The flag says the statement depends on the charset.
    let all = digest_all(sql, Mode::DEFAULT).unwrap();
    assert!(all[0]
        .digest
        .flags()
        .contains(DigestFlags::CHARSET_SENSITIVE));
    // An unquoted GBK identifier swallows a 0x60 trail byte (the server too, or it fails on
    // the head byte if the pair is not in its table); in UTF-8 the backtick opens a quoted
    // identifier. Inside backticks, a head byte before a backtick is refused.
    let sql = b"SELECT \x81`; SELECT 2 -- `";
    assert_eq!(
        digests_in(sql, with_charset(Charset::Gbk)).unwrap().len(),
        2
    );
    assert_eq!(digests_in(sql, Mode::DEFAULT).unwrap().len(), 1);
    assert_eq!(
        digests_in(b"SELECT `\x81`; SELECT 2 -- `", with_charset(Charset::Gbk)),
        Err(LexError::Charset(8))
    );
    // latin1: 0xA0 is a space, also after `--`.
    assert_eq!(
        digests_in(b"DROP\xa0TABLE x", with_charset(Charset::Latin1)).unwrap(),
        ["DROP TABLE x"]
    );
    assert_eq!(
        digests_in(b"SELECT 1 --\xa0; DROP", with_charset(Charset::Latin1)).unwrap(),
        ["SELECT ?"]
    );
    assert_eq!(
        digests_in(b"SELECT 1 --\xa0; DROP", Mode::DEFAULT)
            .unwrap()
            .len(),
        2
    );
    // Single-byte charsets that disagree about such bytes: refused.
    let other = with_charset(Charset::OtherSingleByte);
    assert_eq!(
        digests_in(b"SELECT 1 --\x80; DROP", other),
        Err(LexError::Charset(9))
    );
    assert_eq!(
        digests_in(b"DROP\xa0TABLE x", other),
        Err(LexError::Charset(4))
    );
    assert!(digests_in(b"SELECT '\xa0\xff', `\xa0`", other).is_ok());
    // GB18030 four-byte characters.
    let gb = with_charset(Charset::Gb18030);
    assert_eq!(
        digests_in(b"SELECT '\x81\x30\x81\x30\\'; x'", gb)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(digests_in(b"SELECT '\x81\\'; x", gb).unwrap().len(), 2);
}

#[test]
fn charset_names_and_collations() {
    assert_eq!(Charset::from_name("UTF8MB4"), Some(Charset::Utf8));
    assert_eq!(Charset::from_name("latin1"), Some(Charset::Latin1));
    assert_eq!(Charset::from_name("cp932"), Some(Charset::Sjis));
    assert_eq!(Charset::from_name("latin2"), Some(Charset::OtherSingleByte));
    assert_eq!(Charset::from_name("utf16"), None);
    assert_eq!(Charset::from_name("klingon"), None);
    assert_eq!(Charset::from_collation_id(45), Some(Charset::Utf8));
    assert_eq!(Charset::from_collation_id(255), Some(Charset::Utf8));
    assert_eq!(Charset::from_collation_id(8), Some(Charset::Latin1));
    assert_eq!(Charset::from_collation_id(28), Some(Charset::Gbk));
    assert_eq!(Charset::from_collation_id(95), Some(Charset::Sjis));
    assert_eq!(Charset::from_collation_id(35), None); // ucs2
    assert_eq!(Charset::from_collation_id(1000), None);
}

#[test]
fn sql_mode_flags() {
    let m = Mode::DEFAULT.with_sql_mode("STRICT_TRANS_TABLES,ANSI_QUOTES,NO_BACKSLASH_ESCAPES");
    assert!(m.ansi_quotes && m.no_backslash_escapes);
    assert!(Mode::DEFAULT.with_sql_mode("oracle").ansi_quotes);
    assert!(!Mode::DEFAULT.with_sql_mode("ANSI_QUOTES_NOT").ansi_quotes);
    assert_eq!(ANSI.with_sql_mode(""), Mode::DEFAULT);
    assert_eq!(ANSI.with_charset(Charset::Gbk).charset, Charset::Gbk);
}

// ---------------------------------------------------------------------------------------------
// Splitting

fn texts(sql: &str, mode: Mode) -> Vec<(String, bool)> {
    split(sql.as_bytes(), mode)
        .unwrap()
        .into_iter()
        .map(|s| (String::from_utf8_lossy(s.sql).into_owned(), s.compound))
        .collect()
}

#[test]
fn splits_at_semicolons_outside_quotes_and_comments() {
    let t = texts(
        " SELECT 1 ; SELECT ';' /* ; */ ;\n# c ;\nSELECT 3; ",
        Mode::DEFAULT,
    );
    assert_eq!(
        t,
        vec![
            ("SELECT 1".into(), false),
            ("SELECT ';' /* ; */".into(), false),
            ("# c ;\nSELECT 3".into(), false)
        ]
    );
    let s = split(b"SELECT 1; SELECT 2", Mode::DEFAULT).unwrap();
    assert_eq!((s[1].offset, s[1].sql), (10, &b"SELECT 2"[..]));
    // Empty statements and trailing comments are no statement.
    assert_eq!(texts(";; SELECT 1;;; -- x", Mode::DEFAULT).len(), 1);
    assert!(split(b"", Mode::DEFAULT).unwrap().is_empty());
    assert!(split(b"  /* */ ; -- x", Mode::DEFAULT).unwrap().is_empty());
}

#[test]
fn compound_statements_run_to_the_end() {
    for sql in [
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END; SELECT 3",
        "create definer=`a`@`b` procedure p() begin select 1; end; select 3",
        "CREATE OR REPLACE FUNCTION f() RETURNS INT BEGIN RETURN 1; END; SELECT 3",
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END; SELECT 3",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN SELECT 1; END; SELECT 3",
        "ALTER EVENT e DO BEGIN SELECT 1; END; SELECT 3",
        "BEGIN NOT ATOMIC SELECT 1; END; SELECT 3",
        "IF 1 THEN SELECT 1; END IF; SELECT 3",
        "CASE WHEN 1 THEN SELECT 1; END CASE; SELECT 3",
        "WHILE 0 DO SELECT 1; END WHILE; SELECT 3",
        "REPEAT SELECT 1; UNTIL 1 END REPEAT; SELECT 3",
        "LOOP LEAVE x; END LOOP; SELECT 3",
        "FOR i IN 1..2 DO SELECT i; END FOR; SELECT 3",
        "lbl: BEGIN NOT ATOMIC SELECT 1; END lbl; SELECT 3",
        "SET STATEMENT max_statement_time=10 FOR BEGIN NOT ATOMIC SELECT 1; END; SELECT 3",
        "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; SET NEW.b = 2; END */; SELECT 3",
    ] {
        let t = texts(sql, Mode::DEFAULT);
        assert_eq!(t.len(), 1, "{sql}: {t:?}");
        assert!(t[0].1, "{sql}");
        assert!(t[0].0.to_ascii_uppercase().ends_with("SELECT 3"), "{sql}: {t:?}");
    }
    // Oracle mode's blocks.
    let oracle = Mode::DEFAULT.with_sql_mode("ORACLE");
    for sql in [
        "BEGIN SELECT 1; SELECT 2; END; SELECT 3",
        "DECLARE x INT := 5; BEGIN SELECT x; END; SELECT 3",
        "<<lbl>> BEGIN NULL; END; SELECT 3",
        "CREATE PACKAGE pk AS PROCEDURE a; END; SELECT 3",
    ] {
        let t = texts(sql, oracle);
        assert_eq!(t.len(), 1, "{sql}: {t:?}");
        assert!(t[0].1);
    }
    // Not compound: transactions, a single-statement body is still one unit (conservative).
    assert_eq!(texts("BEGIN; SELECT 1; COMMIT", Mode::DEFAULT).len(), 3);
    assert_eq!(texts("BEGIN WORK; SELECT 1", Mode::DEFAULT).len(), 2);
    assert_eq!(texts("BEGIN", Mode::DEFAULT), vec![("BEGIN".into(), false)]);
    assert_eq!(
        texts("SELECT IF(1, 2, 3); SELECT 2", Mode::DEFAULT).len(),
        2
    );
    assert_eq!(
        texts("CREATE TABLE t (event INT); SELECT 2", Mode::DEFAULT).len(),
        2
    );
    assert_eq!(texts("SET @a = 1; SELECT 2", Mode::DEFAULT).len(), 2);
    assert_eq!(
        texts("SET STATEMENT a=1 FOR SELECT 1; SELECT 2", Mode::DEFAULT).len(),
        2
    );
    // A compound after ordinary statements takes the rest.
    let t = texts(
        "SELECT 1; IF 1 THEN SELECT 2; END IF; SELECT 3",
        Mode::DEFAULT,
    );
    assert_eq!(
        t,
        vec![
            ("SELECT 1".into(), false),
            ("IF 1 THEN SELECT 2; END IF; SELECT 3".into(), true)
        ]
    );
}

#[test]
fn semicolon_inside_an_executable_comment() {
    assert_eq!(
        split(b"SELECT 1 /*! ; SELECT 2 */", Mode::DEFAULT),
        Err(LexError::SemicolonInComment(13))
    );
    assert_eq!(
        digest(b"SELECT 1 /*!;*/", Mode::DEFAULT),
        Err(LexError::SemicolonInComment(12))
    );
    assert!(split(b"/*! BEGIN NOT ATOMIC SELECT 1; END */", Mode::DEFAULT).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Digest

#[test]
fn digest_folds_literals() {
    assert_eq!(
        d("select * from `shop`.`customers` where id = 42 and name = 'bob' and x = \"y\" limit 10"),
        "SELECT * FROM shop.customers WHERE id = ? AND name = ? AND x = ? LIMIT ?"
    );
    assert_eq!(
        d("SELECT _latin1'x', _binary 0x41, N'n', X'4142', B'1', 0b1, 1.5e3, -7, +8, ?"),
        "SELECT _latin1 ?, _binary ?, ?, ?, ?, ?, ?, ?, ?, ?"
    );
    assert_eq!(
        d("SELECT a - 1, a-1, - - 1, -(1)"),
        "SELECT a - ?, a - ?, ?, - (?)"
    );
    assert_eq!(
        d("SELECT * FROM t LIMIT 10, 20"),
        "SELECT * FROM t LIMIT ?, ?"
    );
    assert_eq!(
        d("SELECT NULL, \\N, TRUE, false"),
        "SELECT NULL, NULL, TRUE, FALSE"
    );
    assert_eq!(d("SELECT 'a' 'b'"), "SELECT ? ?");
}

#[test]
fn digest_keeps_positional_order_by() {
    assert_eq!(
        d("SELECT a, b FROM t ORDER BY 2"),
        "SELECT a, b FROM t ORDER BY 2"
    );
    assert_ne!(
        d("SELECT a, b FROM t ORDER BY 2"),
        d("SELECT a, b FROM t ORDER BY 1")
    );
    assert_eq!(
        d("SELECT a FROM t GROUP BY 1, 2 DESC ORDER BY 2, 1 LIMIT 5"),
        "SELECT a FROM t GROUP BY 1, 2 DESC ORDER BY 2, 1 LIMIT ?"
    );
    assert_ne!(
        d("SELECT a FROM t ORDER BY +2"),
        d("SELECT a FROM t ORDER BY +1")
    );
    assert_ne!(
        d("SELECT a FROM t ORDER BY (2)"),
        d("SELECT a FROM t ORDER BY (1)")
    );
    assert_eq!(
        d("SELECT (SELECT a FROM t ORDER BY 1 LIMIT 1) x FROM u WHERE b = 1"),
        "SELECT (SELECT a FROM t ORDER BY 1 LIMIT ?) x FROM u WHERE b = ?"
    );
    assert_eq!(
        d("SELECT a FROM t ORDER BY a LIMIT 1 OFFSET 2"),
        "SELECT a FROM t ORDER BY a LIMIT ? OFFSET ?"
    );
    assert_eq!(
        d("SELECT ROW_NUMBER() OVER (ORDER BY a ROWS BETWEEN 1 PRECEDING AND 2 FOLLOWING) FROM t"),
        "SELECT ROW_NUMBER() OVER (ORDER BY a ROWS BETWEEN ? PRECEDING AND ? FOLLOWING) FROM t"
    );
    // String constants are never positional.
    assert_eq!(
        d("SELECT a FROM t ORDER BY 'x'"),
        "SELECT a FROM t ORDER BY ?"
    );
}

#[test]
fn digest_folds_in_lists_and_values_rows() {
    assert_eq!(
        d("SELECT * FROM t WHERE a IN (1, 2, 3)"),
        "SELECT * FROM t WHERE a IN (...)"
    );
    assert_eq!(
        d("SELECT * FROM t WHERE a IN (1)"),
        d("SELECT * FROM t WHERE a in (-5,'x',?)")
    );
    assert_eq!(
        d("SELECT * FROM t WHERE a NOT IN ('x')"),
        "SELECT * FROM t WHERE a NOT IN (...)"
    );
    assert_eq!(
        d("SELECT * FROM t WHERE a IN (1, b)"),
        "SELECT * FROM t WHERE a IN (?, b)"
    );
    assert_eq!(
        d("SELECT * FROM t WHERE a IN (SELECT 1)"),
        "SELECT * FROM t WHERE a IN (SELECT ?)"
    );
    assert_eq!(
        d("SELECT * FROM t WHERE (a, b) IN ((1, 2))"),
        "SELECT * FROM t WHERE (a, b) IN ((?, ?))"
    );
    assert_eq!(
        d("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')"),
        "INSERT INTO t (a, b) VALUES (?, ?)"
    );
    assert_eq!(
        d("INSERT INTO t VALUES (1, 2)"),
        d("INSERT INTO t VALUES (3, 4), (5, 6)")
    );
    assert_ne!(
        d("INSERT INTO t VALUES (1, 2)"),
        d("INSERT INTO t VALUES (3, 4, 5)")
    );
    assert_eq!(
        d("INSERT INTO t VALUES (1, NOW()), (2, 3), (4, NOW())"),
        "INSERT INTO t VALUES (?, NOW()), (?, ?)"
    );
    assert_eq!(
        d("INSERT INTO t VALUES (1),(2) ON DUPLICATE KEY UPDATE a = VALUES(a) + 1"),
        "INSERT INTO t VALUES (?) ON DUPLICATE KEY UPDATE a = VALUES (a) + ?"
    );
}

#[test]
fn digest_case_and_identifiers() {
    // Reserved words are upper-cased; other words keep their case.
    assert_eq!(
        d("select count(*) from Customers"),
        "SELECT count(*) FROM Customers"
    );
    assert_ne!(d("SELECT * FROM t"), d("SELECT * FROM T"));
    assert_ne!(d("SELECT * FROM status"), d("SELECT * FROM STATUS"));
    // Quoting does not matter for plain names; it does for keywords and odd names.
    assert_eq!(d("SELECT `a` FROM `shop`.`t`"), d("SELECT a FROM shop.t"));
    assert_eq!(
        digests_in(b"SELECT \"a\" FROM \"shop\".\"t\"", ANSI).unwrap(),
        [d("SELECT a FROM shop.t")]
    );
    assert_eq!(
        d("SELECT `select`, `a b`, `a``b`, `1x`, `status`"),
        "SELECT `select`, `a b`, `a``b`, `1x`, `status`"
    );
    assert_eq!(
        digests_in(b"SELECT \"a\"\"b\", \"a`b\"", ANSI).unwrap(),
        ["SELECT `a\"b`, `a``b`"]
    );
    assert_ne!(d("SELECT `status` FROM t"), d("SELECT status FROM t"));
    // Words that are certainly identifiers are written as identifiers.
    assert_eq!(
        d("SELECT t.1, t.select, select.t, 1abc FROM t"),
        "SELECT t.`1`, t.`select`, `select`.t, `1abc` FROM t"
    );
    assert_eq!(d("SELECT t.*, a*b FROM t"), "SELECT t.*, a * b FROM t");
    assert_eq!(d("GRANT SELECT ON *.* TO x"), "GRANT SELECT ON *.* TO x");
    // A function name touching `(` stays touching.
    assert_eq!(
        d("SELECT COUNT(*), count (*), IF (a, 1, 2)"),
        "SELECT COUNT(*), count (*), IF (a, ?, ?)"
    );
    // Variables are kept.
    assert_eq!(
        d("SELECT @a, @'b', @@session.sql_mode"),
        "SELECT @a, @'b', @@session.sql_mode"
    );
}

#[test]
fn digest_keeps_literals_that_are_names_paths_or_code() {
    for (sql, want) in [
        (
            "EXECUTE IMMEDIATE 'DROP TABLE t'",
            "EXECUTE IMMEDIATE 'DROP TABLE t'",
        ),
        ("PREPARE s FROM 'SELECT 1'", "PREPARE s FROM 'SELECT 1'"),
        (
            "GRANT ALL ON db.* TO 'alice'@'%'",
            "GRANT ALL ON db.* TO 'alice' @'%'",
        ),
        (
            "CREATE USER 'bob' IDENTIFIED BY 'pw'",
            "CREATE USER 'bob' IDENTIFIED BY 'pw'",
        ),
        (
            "SET PASSWORD FOR 'root'@'%' = PASSWORD('x')",
            "SET PASSWORD FOR 'root' @'%' = PASSWORD('x')",
        ),
        ("SET NAMES 'gbk'", "SET NAMES 'gbk'"),
        (
            "SET sql_mode = 'ANSI_QUOTES'",
            "SET sql_mode = 'ANSI_QUOTES'",
        ),
        (
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
        ),
        (
            "SELECT 1, 'a' INTO OUTFILE '/tmp/x'",
            "SELECT 1, 'a' INTO OUTFILE '/tmp/x'",
        ),
        (
            "SELECT LOAD_FILE('/etc/passwd')",
            "SELECT LOAD_FILE('/etc/passwd')",
        ),
        ("INSTALL SONAME 'ha_x'", "INSTALL SONAME 'ha_x'"),
        ("KILL 5", "KILL 5"),
        ("DROP USER 'a'@'b'", "DROP USER 'a' @'b'"),
    ] {
        let all = digest_all(sql.as_bytes(), Mode::DEFAULT).unwrap();
        assert_eq!(all[0].digest.text_lossy(), want, "{sql}");
        assert!(
            all[0]
                .digest
                .flags()
                .contains(DigestFlags::VERBATIM_LITERALS),
            "{sql}"
        );
    }
    // Account names are kept wherever they are.
    assert_eq!(
        d("SHOW GRANTS FOR 'root'@'localhost'"),
        "SHOW GRANTS FOR 'root' @'localhost'"
    );
    assert_eq!(
        d("CREATE DEFINER='root'@'%' VIEW v AS SELECT 1"),
        "CREATE DEFINER = 'root' @'%' VIEW v AS SELECT ?"
    );
    // Ordinary statements fold.
    assert!(!digest(b"SELECT 'a'", Mode::DEFAULT)
        .unwrap()
        .flags()
        .contains(DigestFlags::VERBATIM_LITERALS));
    assert_ne!(
        d("EXECUTE IMMEDIATE 'SELECT 1'"),
        d("EXECUTE IMMEDIATE 'DROP TABLE t'")
    );
}

#[test]
fn digest_flags() {
    let f = |sql: &[u8], m: Mode| digest(sql, m).unwrap().flags();
    assert!(f(b"SELECT \"a\"", Mode::DEFAULT).contains(DigestFlags::MODE_SENSITIVE));
    assert!(f(b"SELECT 'a\\'b'", Mode::DEFAULT).contains(DigestFlags::MODE_SENSITIVE));
    assert!(f(b"SELECT 'a\\'", NBE).contains(DigestFlags::MODE_SENSITIVE));
    assert!(!f(b"SELECT 'a', `b`", Mode::DEFAULT).contains(DigestFlags::MODE_SENSITIVE));
    assert!(f(b"SELECT '\xbf\\''", Mode::DEFAULT).contains(DigestFlags::CHARSET_SENSITIVE));
    assert!(f(b"SELECT /*!40101 1 */", Mode::DEFAULT).contains(DigestFlags::EXECUTABLE_COMMENT));
    assert!(f(b"BEGIN NOT ATOMIC SELECT 1; END", Mode::DEFAULT).contains(DigestFlags::COMPOUND));
    assert_eq!(f(b"SELECT 1", Mode::DEFAULT), DigestFlags::empty());
}

#[test]
fn digest_of_a_whole_input() {
    assert_eq!(
        digest(b"SELECT 1; SELECT 'a';", Mode::DEFAULT)
            .unwrap()
            .text(),
        b"SELECT ?; SELECT ?"
    );
    assert_eq!(
        digest(b"CREATE PROCEDURE p() BEGIN SELECT 1; END", Mode::DEFAULT)
            .unwrap()
            .text(),
        b"CREATE PROCEDURE p() BEGIN SELECT ?; END"
    );
    assert_eq!(digest(b"", Mode::DEFAULT).unwrap().text(), b"");
    // Equality compares text and flags; the hash follows.
    let a = digest(b"SELECT 1", Mode::DEFAULT).unwrap();
    let b = digest(b"select   2", Mode::DEFAULT).unwrap();
    let c = digest(b"SELECT \"x\"", Mode::DEFAULT).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.text(), c.text());
    assert_ne!(a, c, "same text, different flags");
}

// ---------------------------------------------------------------------------------------------
// Evasion attempts: how each input splits and digests. `(server)` marks the ones checked
// against MariaDB 10.11 (statement boundaries from performance_schema).

#[test]
fn evasion_table() {
    type Want = Result<&'static [&'static str], LexError>;
    let cases: &[(&[u8], Mode, Want)] = &[
        // A comment inside a keyword splits it in two (server: syntax error).
        (b"DR/**/OP TABLE x", Mode::DEFAULT, Ok(&["DR OP TABLE x"])),
        // Executable comments are code (server: runs DROP).
        (b"/*!DROP*/ TABLE x", Mode::DEFAULT, Ok(&["DROP TABLE x"])),
        (
            b"/*M!50000 DROP */ TABLE x",
            Mode::DEFAULT,
            Ok(&["DROP TABLE x"]),
        ),
        (
            b"/*!50000DROP*/ TABLE x",
            Mode::DEFAULT,
            Ok(&["DROP TABLE x"]),
        ),
        (
            b"SELECT 1 /*!99999 ; DROP TABLE x */",
            Mode::DEFAULT,
            Err(LexError::SemicolonInComment(18)),
        ),
        (
            b"/*!99999 '*/ ; DROP TABLE x; -- ' */",
            Mode::DEFAULT,
            Err(LexError::ExecutableComment(0)),
        ),
        (b"/*m! DROP */ SELECT 1", Mode::DEFAULT, Ok(&["SELECT ?"])),
        // Two statements (server: both run).
        (
            b"SELECT 1; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT ';' ; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (b"SELECT \"a;b\"", Mode::DEFAULT, Ok(&["SELECT ?"])),
        (b"SELECT \"a;b\"", ANSI, Ok(&["SELECT `a;b`"])),
        (
            b"SELECT \"a\";DROP TABLE x",
            ANSI,
            Ok(&["SELECT a", "DROP TABLE x"]),
        ),
        (
            b"SELECT `a;b`; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT `a;b`", "DROP TABLE x"]),
        ),
        (b"SELECT `a``;b`", Mode::DEFAULT, Ok(&["SELECT `a``;b`"])),
        // Line comments (server: `--;` is not a comment, `1 --` then `;`).
        (
            b"SELECT 1 -- ; DROP TABLE x\n",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        (
            b"SELECT 1 -- x\n; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT 1 --; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ? - -", "DROP TABLE x"]),
        ),
        (
            b"SELECT 1 --\t; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        (
            b"SELECT 1 # ; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        (
            b"SELECT 1 #\n; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT 1 /* ; */ ; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        // Backslashes (server: with escapes, `\'` stays in the string).
        (
            b"SELECT 'a\\';DROP TABLE x; -- '",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        (
            b"SELECT 'a\\';DROP TABLE x; -- '",
            NBE,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT 'a\\\\';DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT \"a\\\";DROP TABLE x; -- \"",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        (
            b"SELECT \"a\\\";DROP TABLE x; -- \"",
            ANSI,
            Ok(&["SELECT `a\\`", "DROP TABLE x"]),
        ),
        (
            b"SELECT 'it''s'; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT 'it''s; DROP TABLE x'",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        // Introducers and hex/bit literals.
        (
            b"SELECT _latin1'x;y'; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["SELECT _latin1 ?", "DROP TABLE x"]),
        ),
        (
            b"SELECT X'41', 0x41, N'x;', B'1'",
            Mode::DEFAULT,
            Ok(&["SELECT ?, ?, ?, ?"]),
        ),
        (b"SELECT X'4;'", Mode::DEFAULT, Err(LexError::BadLiteral(7))),
        // Unterminated.
        (
            b"SELECT 1 /* ; DROP TABLE x",
            Mode::DEFAULT,
            Err(LexError::UnterminatedComment(9)),
        ),
        (
            b"SELECT 'a; DROP TABLE x",
            Mode::DEFAULT,
            Err(LexError::UnterminatedString(7)),
        ),
        (
            b"SELECT `a; DROP TABLE x",
            Mode::DEFAULT,
            Err(LexError::UnterminatedIdentifier(7)),
        ),
        (
            b"SELECT 1; SELECT 'a",
            Mode::DEFAULT,
            Err(LexError::UnterminatedString(17)),
        ),
        // NUL ends the query at the server.
        (
            b"SELECT 1\0; DROP TABLE x",
            Mode::DEFAULT,
            Err(LexError::Nul(8)),
        ),
        (
            b"SELECT 1 -- x\0\n; DROP TABLE x",
            Mode::DEFAULT,
            Err(LexError::Nul(13)),
        ),
        // Multi-byte charsets (server: GBK's 0xBF 0x5C is one character).
        (
            b"SELECT '\xbf\\'; DROP TABLE x; -- '",
            Mode::DEFAULT,
            Ok(&["SELECT ?"]),
        ),
        (
            b"SELECT '\xbf\\'; DROP TABLE x; -- '",
            Mode {
                charset: Charset::Gbk,
                ..Mode::DEFAULT
            },
            Ok(&["SELECT ?", "DROP TABLE x"]),
        ),
        // Compound statements hide nothing: the rest of the input is one unit.
        (
            b"BEGIN NOT ATOMIC SELECT 1; END; DROP TABLE x",
            Mode::DEFAULT,
            Ok(&["BEGIN NOT ATOMIC SELECT ?; END; DROP TABLE x"]),
        ),
        // Keyword case does not hide anything.
        (b"dRoP tAbLe x", Mode::DEFAULT, Ok(&["DROP TABLE x"])),
    ];
    for (sql, mode, want) in cases {
        let got = digests_in(sql, *mode);
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{:?} {mode:?}", String::from_utf8_lossy(sql));
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn any_mode() -> impl Strategy<Value = Mode> {
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(Charset::Utf8),
            Just(Charset::Latin1),
            Just(Charset::Gbk),
            Just(Charset::Big5),
            Just(Charset::Sjis),
            Just(Charset::Gb18030),
            Just(Charset::OtherSingleByte),
        ],
    )
        .prop_map(|(ansi_quotes, no_backslash_escapes, charset)| Mode {
            ansi_quotes,
            no_backslash_escapes,
            charset,
        })
}

/// Inputs built from the pieces that matter to the lexer, so random cases reach its corners.
fn sqlish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"'"[..]),
        Just(&b"\""[..]),
        Just(&b"`"[..]),
        Just(&b"\\"[..]),
        Just(&b";"[..]),
        Just(&b"--"[..]),
        Just(&b"-- "[..]),
        Just(&b"#"[..]),
        Just(&b"\n"[..]),
        Just(&b"/*"[..]),
        Just(&b"*/"[..]),
        Just(&b"/*!"[..]),
        Just(&b"/*M!"[..]),
        Just(&b"50000"[..]),
        Just(&b" "[..]),
        Just(&b"SELECT"[..]),
        Just(&b"x'"[..]),
        Just(&b"N'"[..]),
        Just(&b"0x1"[..]),
        Just(&b"1.5e3"[..]),
        Just(&b"."[..]),
        Just(&b"@"[..]),
        Just(&b"@@"[..]),
        Just(&b"t"[..]),
        Just(&b"BEGIN"[..]),
        Just(&b"IF"[..]),
        Just(&b"("[..]),
        Just(&b")"[..]),
        Just(&b"\xbf"[..]),
        Just(&b"\x81"[..]),
        Just(&b"\xa0"[..]),
        Just(&b"\0"[..]),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No input makes the lexer, splitter or digest panic, whatever the mode; tokens are
    /// in order, inside the input, and never overlap.
    #[test]
    fn never_panics(sql in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), sqlish()], mode in any_mode()) {
        let mut end = 0;
        for token in lex(&sql, mode) {
            let Ok(token) = token else { break };
            prop_assert!(token.offset >= end);
            prop_assert!(!token.text.is_empty());
            prop_assert_eq!(&sql[token.offset..token.offset + token.text.len()], token.text);
            end = token.offset + token.text.len();
        }
        let _ = digest(&sql, mode);
        let split = split(&sql, mode);
        let all = digest_all(&sql, mode);
        // Splitting and digesting agree on statements and errors.
        match (split, all) {
            (Ok(s), Ok(a)) => {
                prop_assert_eq!(s.len(), a.len());
                for (s, a) in s.iter().zip(&a) {
                    prop_assert_eq!(s, &a.statement);
                    prop_assert_eq!(s.compound, a.digest.flags().contains(DigestFlags::COMPOUND));
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (s, a) => prop_assert!(false, "split {:?} vs digest_all {:?}", s, a.map(|v| v.len())),
        }
    }

    /// A statement digests the same alone as inside a multi-statement input (with its `;`:
    /// `--;` is no comment, `--` at the end is).
    #[test]
    fn statements_digest_alone_as_in_a_batch(sql in sqlish(), mode in any_mode()) {
        if let Ok(all) = digest_all(&sql, mode) {
            for s in all {
                if !s.statement.compound {
                    let end = s.statement.offset + s.statement.sql.len();
                    let rest = &sql[end..];
                    let semicolon = rest.iter().position(|b| !b.is_ascii_whitespace());
                    let end = match semicolon {
                        Some(i) if rest[i] == b';' => end + i + 1,
                        _ => end,
                    };
                    let alone = digest(&sql[s.statement.offset..end], mode).unwrap();
                    prop_assert_eq!(alone, s.digest);
                }
            }
        }
    }

    /// Changing literal values never changes the digest.
    #[test]
    fn stable_under_literal_changes(
        n1 in any::<i64>(), n2 in any::<u32>(), f in any::<f64>(),
        s1 in "[ -~]{0,12}", s2 in "[ -~]{0,12}", k in 1usize..6, rows in 1usize..5,
    ) {
        let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"));
        let list = (0..k).map(|i| (n2 as usize + i).to_string()).collect::<Vec<_>>().join(", ");
        let values = (0..rows).map(|i| format!("({}, {})", n1.wrapping_add(i as i64), quote(&s2))).collect::<Vec<_>>().join(", ");
        let a = format!(
            "SELECT a, {} FROM t WHERE b = {n1} AND c = {} AND d > {f:e} AND e IN ({list}) \
             ORDER BY 2 LIMIT {n2}; INSERT INTO t (a, b) VALUES {values}",
            quote(&s1), quote(&s2)
        );
        let b = "SELECT a, 'x' FROM t WHERE b = 0 AND c = 'y' AND d > 1.5 AND e IN (7) \
                 ORDER BY 2 LIMIT 3; INSERT INTO t (a, b) VALUES (1, 'z')";
        prop_assert_eq!(digests(&a), digests(b));
    }

    /// Different identifiers, keywords or positional numbers give different digests.
    #[test]
    fn different_structure_different_digest(
        a in "[a-zA-Z_][a-zA-Z0-9_]{0,8}", b in "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        p in 1u32..50, q in 1u32..50,
    ) {
        let one = |x: &str, y: &str, n: u32| digests(&format!("SELECT `{x}` FROM `{y}` ORDER BY {n}"));
        prop_assert_eq!(one(&a, &b, p) == one(&b, &a, q), a == b && p == q);
        prop_assert_eq!(one(&a, &a, p) == one(&a, &a, q), p == q);
        let upper = a.to_ascii_uppercase();
        prop_assert_eq!(one(&a, &b, p) == one(&upper, &b, p), a == upper);
    }

    /// Quoting a plain identifier, or not, does not change the digest.
    #[test]
    fn quoting_plain_names_is_irrelevant(a in "[a-z_][a-z0-9_]{0,8}x", b in "[a-z_][a-z0-9_]{0,8}x") {
        prop_assert_eq!(
            digests(&format!("SELECT {a} FROM {b}.{a}")),
            digests(&format!("SELECT `{a}` FROM `{b}`.`{a}`"))
        );
    }
}
