//! What a COM_QUERY does to the session state the gateway must follow to analyse the next one:
//! the current database (`USE db`) and how later statements are lexed (`sql_mode`'s
//! `ANSI_QUOTES` / `NO_BACKSLASH_ESCAPES`, `character_set_client`).
//!
//! The server reports a new database through session-state tracking only to clients that asked
//! for it, and never reports `sql_mode` unless configured to; so the session works the effects
//! out from the statements themselves and applies them when the server answered without error.
//! Only statements that start with `USE` or `SET` are analysed (a lexer pass finds them), so
//! the cost for ordinary statements is one lexer pass.

use super::analysis::{analyze, Context, Server, SqlModeChange};
use super::lex::{Charset, Lexer, Mode, TokenKind};
use super::split::split;

/// How the session will lex after a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeEffect {
    /// No change.
    Unchanged,
    /// Lexing changes to this mode.
    Known(Mode),
    /// Lexing changes in a way the gateway cannot know (`SET sql_mode = @saved`, `= DEFAULT`
    /// — the global value —, a charset it does not know): statements whose meaning depends on
    /// the mode must be refused from here on.
    Unknown,
}

/// The effects of one COM_QUERY, to apply once the server has run it without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// `USE db`: the new current database.
    pub database: Option<String>,
    /// `SET sql_mode`, `SET NAMES`, …
    pub mode: ModeEffect,
}

/// Works out what `sql` (a whole COM_QUERY) does to the session's database and lexical mode.
pub fn session_effects(
    sql: &[u8],
    mode: Mode,
    server: Server,
    current_db: Option<&str>,
) -> Effects {
    let mut effects = Effects {
        database: None,
        mode: ModeEffect::Unchanged,
    };
    // This runs for every COM_QUERY: a statement can only start with USE or SET if those
    // letters are there at all, so most queries are done after one byte scan, without lexing.
    if !contains_word_letters(sql, b"use") && !contains_word_letters(sql, b"set") {
        return effects;
    }
    let Ok(statements) = split(sql, mode) else {
        // The server will not make sense of it either; nothing to follow, but be safe.
        effects.mode = ModeEffect::Unknown;
        return effects;
    };
    let mut running = mode;
    let mut db: Option<String> = current_db.map(str::to_owned);
    for statement in statements {
        if !starts_with_use_or_set(statement.sql, running) {
            continue;
        }
        let ctx = Context::new(db.as_deref())
            .with_mode(running)
            .with_server(server);
        let Ok(analysis) = analyze(statement.sql, &ctx) else {
            // A SET the analysis cannot read may change the mode.
            effects.mode = ModeEffect::Unknown;
            continue;
        };
        if let Some(new_db) = &analysis.flags.changes_database {
            db = Some(new_db.clone());
            effects.database = Some(new_db.clone());
        }
        let mut changed = None;
        if let Some(change) = &analysis.flags.sql_mode {
            changed = Some(match change {
                SqlModeChange::Value(v) => Some(apply_sql_mode(running, v)),
                SqlModeChange::Default | SqlModeChange::Unknown => None,
            });
        }
        if let Some(name) = &analysis.flags.charset {
            let base = changed.flatten().unwrap_or(running);
            changed = Some(Charset::from_name(name).map(|charset| Mode { charset, ..base }));
        }
        match changed {
            None => {}
            Some(Some(m)) if effects.mode != ModeEffect::Unknown => {
                running = m;
                effects.mode = ModeEffect::Known(m);
            }
            Some(_) => effects.mode = ModeEffect::Unknown,
        }
    }
    effects
}

/// Whether `needle` (lower-case ASCII) occurs in `sql`, in any case.
fn contains_word_letters(sql: &[u8], needle: &[u8]) -> bool {
    sql.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether the first token of a statement is `USE` or `SET` (also inside an executable comment:
/// mysqldump writes `/*!40101 SET NAMES utf8mb4 */`).
fn starts_with_use_or_set(sql: &[u8], mode: Mode) -> bool {
    let mut lexer = Lexer::at(sql, 0, mode);
    match lexer.next() {
        Some(Ok(token)) if token.kind == TokenKind::Word => {
            token.text.eq_ignore_ascii_case(b"use") || token.text.eq_ignore_ascii_case(b"set")
        }
        _ => false,
    }
}

/// The lexical mode after `SET sql_mode = 'value'`.
fn apply_sql_mode(mode: Mode, value: &str) -> Mode {
    let mut ansi_quotes = false;
    let mut no_backslash_escapes = false;
    for name in value.split(',').map(|n| n.trim().to_ascii_uppercase()) {
        match name.as_str() {
            // The combination modes that include ANSI_QUOTES (MariaDB's sql_mode docs).
            "ANSI_QUOTES" | "ANSI" | "ORACLE" | "DB2" | "MAXDB" | "MSSQL" | "POSTGRESQL" => {
                ansi_quotes = true
            }
            "NO_BACKSLASH_ESCAPES" => no_backslash_escapes = true,
            _ => {}
        }
    }
    Mode {
        ansi_quotes,
        no_backslash_escapes,
        ..mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effects(sql: &str) -> Effects {
        session_effects(
            sql.as_bytes(),
            Mode::DEFAULT,
            Server::MariaDb {
                version_id: Some(101106),
            },
            Some("shop"),
        )
    }

    #[test]
    fn ordinary_statements_change_nothing() {
        for sql in [
            "SELECT 1",
            "UPDATE t SET a = 1 WHERE id = 2",
            "SET @x = 1",
            "INSERT INTO t VALUES ('use x; set sql_mode=ansi')",
        ] {
            assert_eq!(
                effects(sql),
                Effects {
                    database: None,
                    mode: ModeEffect::Unchanged
                },
                "{sql}"
            );
        }
    }

    #[test]
    fn use_changes_the_database() {
        assert_eq!(effects("USE `crm`").database.as_deref(), Some("crm"));
        assert_eq!(
            effects("SELECT 1; use other; SELECT 2").database.as_deref(),
            Some("other")
        );
    }

    #[test]
    fn sql_mode_changes_lexing() {
        let ModeEffect::Known(m) = effects("SET sql_mode = 'ANSI_QUOTES,STRICT_TRANS_TABLES'").mode
        else {
            panic!("known")
        };
        assert!(m.ansi_quotes && !m.no_backslash_escapes);
        let ModeEffect::Known(m) = effects("SET SESSION sql_mode='ORACLE'").mode else {
            panic!("known")
        };
        assert!(m.ansi_quotes);
        let ModeEffect::Known(m) = effects("/*!40101 SET sql_mode='NO_BACKSLASH_ESCAPES' */").mode
        else {
            panic!("known")
        };
        assert!(m.no_backslash_escapes && !m.ansi_quotes);
        let ModeEffect::Known(m) = effects("SET sql_mode = ''").mode else {
            panic!("known")
        };
        assert_eq!(m, Mode::DEFAULT);
    }

    #[test]
    fn unknowable_changes_are_unknown() {
        for sql in [
            "SET sql_mode = @saved",
            "SET sql_mode = DEFAULT",
            "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')",
            "SET NAMES DEFAULT",
        ] {
            assert_eq!(effects(sql).mode, ModeEffect::Unknown, "{sql}");
        }
    }

    #[test]
    fn charset_changes() {
        let ModeEffect::Known(m) = effects("SET NAMES gbk").mode else {
            panic!("known")
        };
        assert_eq!(m.charset, Charset::Gbk);
    }
}
