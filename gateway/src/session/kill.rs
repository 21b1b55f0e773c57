//! `KILL` through the gateway.
//!
//! A client learns its connection id from the gateway's greeting — the gateway's session id,
//! not the upstream's thread id (the upstream connection does not exist yet when the client is
//! greeted). So `KILL <id>` and `COM_PROCESS_KILL <id>` name gateway sessions and must be
//! translated to the upstream thread id before they are forwarded; forwarded untranslated they
//! would kill whatever unrelated upstream session happens to carry that number.
//!
//! Sessions register here once their upstream login succeeds. A client may kill only sessions
//! of its own identity on the same target (the upstream account is shared, so the server's own
//! ownership check cannot tell agents apart). Every other `KILL` is refused.

use std::collections::HashMap;
use std::sync::Mutex;

/// Live sessions, by the connection id their client was greeted with.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: Mutex<HashMap<u32, Registered>>,
}

#[derive(Debug, Clone)]
struct Registered {
    upstream_connection_id: u32,
    target: String,
    identity: String,
}

/// Why a kill was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KillRefusal {
    /// No such session (ER_NO_SUCH_THREAD, 1094).
    Unknown(u64),
    /// The session belongs to another identity (ER_KILL_DENIED_ERROR, 1095).
    NotOwner(u64),
}

impl SessionRegistry {
    /// Records a session whose upstream connection is ready.
    pub(crate) fn register(
        &self,
        id: u32,
        upstream_connection_id: u32,
        target: &str,
        identity: &str,
    ) {
        self.lock().insert(
            id,
            Registered {
                upstream_connection_id,
                target: target.to_owned(),
                identity: identity.to_owned(),
            },
        );
    }

    /// Forgets a session.
    pub(crate) fn unregister(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// The upstream thread id behind gateway session `id`, if `identity` may kill it.
    pub(crate) fn resolve(
        &self,
        id: u64,
        target: &str,
        identity: &str,
    ) -> Result<u32, KillRefusal> {
        let sessions = self.lock();
        let found = u32::try_from(id)
            .ok()
            .and_then(|id| sessions.get(&id))
            .filter(|s| s.target == target)
            .ok_or(KillRefusal::Unknown(id))?;
        if found.identity != identity {
            return Err(KillRefusal::NotOwner(id));
        }
        Ok(found.upstream_connection_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Registered>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a COM_QUERY's text is, as far as `KILL` is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KillStatement {
    /// Not a `KILL`.
    NotKill,
    /// `KILL [CONNECTION | QUERY] <id>`: `kind` is `""`, `"CONNECTION "` or `"QUERY "`.
    Simple {
        /// What to kill.
        kind: &'static str,
        /// The gateway session id.
        id: u64,
    },
    /// A `KILL` the gateway cannot translate safely (by user, `HARD`/`SOFT`, `QUERY ID`,
    /// expressions, hidden in an executable comment, followed by more statements…).
    Unsupported,
}

/// Classifies a statement's text. Only `KILL [CONNECTION | QUERY] <id>`, alone, preceded at most
/// by whitespace and ordinary comments, is translatable. Any other text in which `KILL` appears
/// as a keyword — after another statement, inside an executable comment, a compound statement —
/// or that prepares or executes dynamic SQL mentioning it, is refused: it would reach the
/// upstream untranslated.
pub(crate) fn classify(sql: &[u8]) -> KillStatement {
    if let Some(simple) = simple_kill(sql) {
        return simple;
    }
    if mentions_kill(sql) {
        KillStatement::Unsupported
    } else {
        KillStatement::NotKill
    }
}

fn simple_kill(sql: &[u8]) -> Option<KillStatement> {
    let rest = skip_blanks(sql);
    let after = keyword(rest, b"KILL")?;
    let mut rest = skip_spaces(after);
    let mut kind = "";
    if let Some(r) = keyword(rest, b"CONNECTION") {
        kind = "CONNECTION ";
        rest = skip_spaces(r);
    } else if let Some(r) = keyword(rest, b"QUERY") {
        kind = "QUERY ";
        rest = skip_spaces(r);
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let id = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let tail = skip_spaces(&rest[digits..]);
    let tail = tail.strip_prefix(b";").map_or(tail, skip_spaces);
    tail.is_empty()
        .then_some(KillStatement::Simple { kind, id })
}

/// Whether `KILL` appears as a keyword outside string literals and ordinary comments (the
/// bodies of executable comments `/*! … */` count as code), or the text runs dynamic SQL
/// (`PREPARE`, `EXECUTE`) and mentions `kill` anywhere, strings included.
fn mentions_kill(sql: &[u8]) -> bool {
    let mut dynamic = false;
    let mut i = 0;
    while i < sql.len() {
        let b = sql[i];
        match b {
            b'\'' | b'"' | b'`' => {
                // Skip a quoted string or identifier (backslash escapes, doubled quotes).
                i += 1;
                while i < sql.len() {
                    if sql[i] == b'\\' && b != b'`' {
                        i += 2;
                    } else if sql[i] == b {
                        if sql.get(i + 1) == Some(&b) {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                let executable =
                    matches!(sql.get(i + 2), Some(b'!')) || sql[i..].starts_with(b"/*M!");
                if executable {
                    // Code inside: keep scanning (its closing `*/` is skipped below).
                    i += if sql[i..].starts_with(b"/*M!") { 4 } else { 3 };
                } else {
                    i = sql[i + 2..]
                        .windows(2)
                        .position(|w| w == b"*/")
                        .map_or(sql.len(), |p| i + 2 + p + 2);
                }
            }
            b'#' => i = line_end(sql, i),
            b'-' if sql.get(i + 1) == Some(&b'-')
                && sql
                    .get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
            {
                i = line_end(sql, i)
            }
            _ if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' => {
                let len = sql[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'$')
                    .count();
                let word = &sql[i..i + len];
                if word.eq_ignore_ascii_case(b"KILL") {
                    return true;
                }
                dynamic |=
                    word.eq_ignore_ascii_case(b"PREPARE") || word.eq_ignore_ascii_case(b"EXECUTE");
                i += len;
            }
            _ => i += 1,
        }
    }
    dynamic && sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"kill"))
}

fn line_end(sql: &[u8], from: usize) -> usize {
    sql[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(sql.len(), |p| from + p + 1)
}

/// `word` (case-insensitive) at the start of `s`, not followed by an identifier character.
fn keyword<'a>(s: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..word.len())?;
    let next = s.get(word.len()).copied();
    (head.eq_ignore_ascii_case(word)
        && !next.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$'))
    .then(|| &s[word.len()..])
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

/// Skips whitespace and non-executable comments.
fn skip_blanks(mut s: &[u8]) -> &[u8] {
    loop {
        s = skip_spaces(s);
        if s.starts_with(b"/*") && !s.starts_with(b"/*!") && !s.starts_with(b"/*M!") {
            match s.windows(2).position(|w| w == b"*/") {
                Some(end) => s = &s[end + 2..],
                None => return &s[s.len()..],
            }
        } else if s.starts_with(b"#") || s.starts_with(b"-- ") || s.starts_with(b"--\t") {
            match s.iter().position(|&b| b == b'\n') {
                Some(end) => s = &s[end + 1..],
                None => return &s[s.len()..],
            }
        } else {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_forms_are_translatable() {
        assert_eq!(
            classify(b"KILL 9"),
            KillStatement::Simple { kind: "", id: 9 }
        );
        assert_eq!(
            classify(b"  kill query 12 ;"),
            KillStatement::Simple {
                kind: "QUERY ",
                id: 12
            }
        );
        assert_eq!(
            classify(b"/* ctrl-c */ KILL CONNECTION 3"),
            KillStatement::Simple {
                kind: "CONNECTION ",
                id: 3
            }
        );
        assert_eq!(
            classify(b"-- x\nKILL 4"),
            KillStatement::Simple { kind: "", id: 4 }
        );
    }

    #[test]
    fn everything_else_that_kills_is_refused() {
        for sql in [
            &b"KILL USER app"[..],
            b"KILL HARD 5",
            b"KILL QUERY ID 5",
            b"KILL 5; SELECT 1",
            b"KILL 5+1",
            b"/*!KILL 5*/",
            b"/*!50000 KILL 5 */",
            b"/*M! KILL 5*/",
            b"KILL",
            b"\x0bKILL 5",
            b"--\nKILL 5",
            b"/*!99999 x*/ KILL 5",
            b"/*!*/KILL 5",
            b"DO 0; KILL 5",
            b"PREPARE s FROM 'KILL 5'",
            b"EXECUTE IMMEDIATE 'kill 5'",
            b"BEGIN NOT ATOMIC KILL 5; END",
        ] {
            assert_eq!(
                classify(sql),
                KillStatement::Unsupported,
                "{}",
                String::from_utf8_lossy(sql)
            );
        }
    }

    #[test]
    fn other_statements_are_not_kills() {
        assert_eq!(classify(b"SELECT 'KILL 5'"), KillStatement::NotKill);
        assert_eq!(
            classify(b"SELECT `kill` FROM t -- KILL 5"),
            KillStatement::NotKill
        );
        assert_eq!(
            classify(b"SELECT \"it's a kill\" /* KILL 5 */"),
            KillStatement::NotKill
        );
        assert_eq!(classify(b"KILLED"), KillStatement::NotKill);
        assert_eq!(
            classify(b"/*!40101 SET NAMES utf8 */"),
            KillStatement::NotKill
        );
    }

    #[test]
    fn only_own_sessions_on_the_same_target_resolve() {
        let r = SessionRegistry::default();
        r.register(9, 14, "primary", "alice");
        assert_eq!(r.resolve(9, "primary", "alice"), Ok(14));
        assert_eq!(
            r.resolve(9, "primary", "bob"),
            Err(KillRefusal::NotOwner(9))
        );
        assert_eq!(
            r.resolve(9, "replica", "alice"),
            Err(KillRefusal::Unknown(9))
        );
        assert_eq!(
            r.resolve(10, "primary", "alice"),
            Err(KillRefusal::Unknown(10))
        );
        r.unregister(9);
        assert_eq!(
            r.resolve(9, "primary", "alice"),
            Err(KillRefusal::Unknown(9))
        );
    }
}
