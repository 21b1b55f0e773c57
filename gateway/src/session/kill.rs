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

/// Classifies a statement's text. Leading whitespace and ordinary comments are skipped; an
/// executable comment (`/*! … */`, `/*M! … */`) that starts with `KILL` counts as a `KILL`.
pub(crate) fn classify(sql: &[u8]) -> KillStatement {
    let rest = skip_blanks(sql);
    let executable = rest.starts_with(b"/*!") || rest.starts_with(b"/*M!");
    let body = if executable {
        let inner = &rest[if rest.starts_with(b"/*!") { 3 } else { 4 }..];
        // Skip an optional version number, as the server does.
        let digits = inner.iter().take_while(|b| b.is_ascii_digit()).count();
        skip_blanks(&inner[digits..])
    } else {
        rest
    };
    let Some(after) = keyword(body, b"KILL") else {
        return KillStatement::NotKill;
    };
    if executable {
        return KillStatement::Unsupported;
    }
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
        return KillStatement::Unsupported;
    }
    let id = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse().ok());
    let tail = skip_spaces(&rest[digits..]);
    let tail = tail.strip_prefix(b";").map_or(tail, skip_spaces);
    match (id, tail.is_empty()) {
        (Some(id), true) => KillStatement::Simple { kind, id },
        _ => KillStatement::Unsupported,
    }
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
