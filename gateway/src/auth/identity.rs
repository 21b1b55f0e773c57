//! The gateway's identities and the checks a session runs against them.
//!
//! One [`IdentityStore`] is built from the configuration and shared by every session (behind
//! an `Arc`); a configuration reload builds a new one. Its only mutable state is the
//! `caching_sha2_password` fast-path cache, which works like MySQL's:
//!
//! ```text
//! client ── sha2 scramble ──▶ verify_sha2_fast ── cached & matches ──▶ Ok(identity)
//!                                   │ nothing cached, or mismatch
//!                                   ▼
//!                             NeedFullAuth: the session asks for the cleartext password
//!                             (only over TLS) ──▶ verify_cleartext (argon2, ~15–30 ms)
//!                                                   └─ on success caches SHA256(SHA256(pw))
//! ```
//!
//! The configuration holds only the slow argon2 hash, so the first `caching_sha2_password`
//! login of an identity after start (or reload) is always a full authentication; later ones
//! take the fast path. A cached entry never goes stale: a store's secrets never change, and
//! only the right password fills the cache.
//!
//! No user-existence oracle: an unknown user goes through the same work as a known one (an
//! argon2 check against a decoy secret of the same cost, a scramble check against a decoy hash)
//! and gets the same answer as a known user with a wrong password. [`IdentityStore::lookup`]
//! and [`IdentityStore::has_native`] do reveal existence: a session must not let a client
//! observe them before authentication succeeds (e.g. by choosing the offered plugin per user).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::OnceLock;

use super::scramble::{native_verify, sha2_double_hash, sha2_verify};
use super::secret::StoredSecret;
use crate::config::IdentityConfig;

/// An authenticated gateway identity: who the policy is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name the client logged in with.
    pub name: String,
    /// Groups the identity belongs to (from the configuration).
    pub groups: Vec<String>,
}

/// One configured identity: who it is, its stored secret and its fast-path cache.
pub struct IdentityEntry {
    identity: Identity,
    secret: StoredSecret,
    /// `SHA256(SHA256(pw))`, set by the first successful cleartext check.
    sha2_cache: OnceLock<[u8; 32]>,
}

impl IdentityEntry {
    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Its stored secret.
    pub fn secret(&self) -> &StoredSecret {
        &self.secret
    }

    /// Whether a `caching_sha2_password` fast-path login is possible (a cleartext login has
    /// succeeded since this store was built).
    pub fn sha2_cached(&self) -> bool {
        self.sha2_cache.get().is_some()
    }
}

impl std::fmt::Debug for IdentityEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityEntry")
            .field("identity", &self.identity)
            .field("secret", &self.secret)
            .field("sha2_cached", &self.sha2_cached())
            .finish()
    }
}

/// The outcome of a `caching_sha2_password` fast-path check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum FastAuth {
    /// The scramble matches the cached hash.
    Ok(Identity),
    /// Ask the client for its cleartext password (`0x01 0x04`, "perform full
    /// authentication"), then call [`IdentityStore::verify_cleartext`]. Returned when nothing
    /// is cached, when the scramble does not match, and for unknown users, so the client cannot
    /// tell these apart (as MySQL does).
    NeedFullAuth,
    /// The response is not a 32-byte scramble (an empty one is what clients send for an empty
    /// password, which gateway identities cannot use on this path); refuse the login, as
    /// MySQL does. Independent of the user.
    Failed,
}

/// All configured identities; thread-safe, shared by every session.
#[derive(Debug)]
pub struct IdentityStore {
    entries: HashMap<String, IdentityEntry>,
    /// Checked instead of a real secret for unknown users; same argon2 cost.
    decoy: StoredSecret,
    decoy_native: [u8; 20],
    decoy_sha2: [u8; 32],
}

impl IdentityStore {
    /// Builds the store from the `[[identity]]` sections. Fails, naming the identity, on an
    /// empty or repeated name, an empty group name, or a secret that does not parse.
    ///
    /// Computes one argon2 hash (the decoy for unknown users, at the cost of the first
    /// identity's secret).
    pub fn from_config(identities: &[IdentityConfig]) -> Result<IdentityStore, String> {
        let mut entries = HashMap::with_capacity(identities.len());
        for (i, config) in identities.iter().enumerate() {
            let name = &config.name;
            if name.is_empty() {
                return Err(format!("identity #{}: empty name", i + 1));
            }
            if config.groups.iter().any(String::is_empty) {
                return Err(format!("identity {name:?}: empty group name"));
            }
            let secret: StoredSecret = config
                .secret
                .parse()
                .map_err(|e| format!("identity {name:?}: secret: {e}"))?;
            let entry = IdentityEntry {
                identity: Identity {
                    name: name.clone(),
                    groups: config.groups.clone(),
                },
                secret,
                sha2_cache: OnceLock::new(),
            };
            if entries.insert(name.clone(), entry).is_some() {
                return Err(format!("identity {name:?} is defined more than once"));
            }
        }
        let first = identities.first().and_then(|c| entries.get(&c.name));
        let decoy = StoredSecret::decoy(first.map(|e| &e.secret));
        Ok(IdentityStore {
            entries,
            decoy,
            decoy_native: super::scramble::native_double_hash(b"gatehouse decoy"),
            decoy_sha2: sha2_double_hash(b"gatehouse decoy"),
        })
    }

    /// The entry of `user`, if configured. Reveals whether the user exists: see the module
    /// docs.
    pub fn lookup(&self, user: &str) -> Option<&IdentityEntry> {
        self.entries.get(user)
    }

    /// Whether `user` exists and its secret allows `mysql_native_password`. Reveals whether
    /// the user exists: see the module docs.
    pub fn has_native(&self, user: &str) -> bool {
        self.lookup(user)
            .is_some_and(|e| e.secret.native_double_hash().is_some())
    }

    /// Checks a `mysql_native_password` response to `nonce`. `None` for a wrong response, an
    /// unknown user, or an identity without a native hash, at the same cost.
    pub fn verify_native(&self, user: &str, nonce: &[u8], response: &[u8]) -> Option<Identity> {
        let found = self
            .lookup(user)
            .and_then(|e| Some((e, e.secret.native_double_hash()?)));
        match found {
            Some((entry, hash)) => {
                native_verify(&hash, nonce, response).then(|| entry.identity.clone())
            }
            None => {
                black_box(native_verify(&self.decoy_native, nonce, response));
                None
            }
        }
    }

    /// The `caching_sha2_password` fast path: checks the client's scramble of `nonce` against
    /// the cached hash. See [`FastAuth`] for what to do next.
    pub fn verify_sha2_fast(&self, user: &str, nonce: &[u8], response: &[u8]) -> FastAuth {
        if response.len() != 32 {
            return FastAuth::Failed;
        }
        let found = self
            .lookup(user)
            .and_then(|e| Some((e, e.sha2_cache.get()?)));
        match found {
            Some((entry, hash)) if sha2_verify(hash, nonce, response) => {
                FastAuth::Ok(entry.identity.clone())
            }
            Some(_) => FastAuth::NeedFullAuth,
            None => {
                black_box(sha2_verify(&self.decoy_sha2, nonce, response));
                FastAuth::NeedFullAuth
            }
        }
    }

    /// Checks a cleartext password (without the NUL terminator clients send) with argon2
    /// (~15–30 ms). On success, caches the fast-path hash so the identity's next
    /// `caching_sha2_password` logins skip argon2. `None` for a wrong password or an unknown
    /// user, at the same cost.
    ///
    /// Only call this for passwords that arrived over TLS (or another channel the client
    /// trusts): this is where the cleartext crosses the network.
    pub fn verify_cleartext(&self, user: &str, password: &[u8]) -> Option<Identity> {
        match self.lookup(user) {
            Some(entry) if entry.secret.verify_cleartext(password) => {
                // Another session may have filled it first, with the same value.
                let _ = entry.sha2_cache.set(sha2_double_hash(password));
                Some(entry.identity.clone())
            }
            Some(_) => None,
            None => {
                black_box(self.decoy.verify_cleartext(password));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scramble::{native_response, native_scramble, sha2_scramble};
    use crate::auth::secret::tests::cheap_secret;
    use std::sync::Arc;

    const NONCE: &[u8; 20] = b"ABCDEFGHIJKLMNOPQRST";

    fn config(name: &str, groups: &[&str], secret: String) -> IdentityConfig {
        IdentityConfig {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            secret,
        }
    }

    fn store() -> IdentityStore {
        IdentityStore::from_config(&[
            config(
                "alice",
                &["dba", "oncall"],
                cheap_secret("alice-pw", true).to_string(),
            ),
            config("ci-bot", &[], cheap_secret("bot-pw", false).to_string()),
        ])
        .unwrap()
    }

    fn alice() -> Identity {
        Identity {
            name: "alice".into(),
            groups: vec!["dba".into(), "oncall".into()],
        }
    }

    #[test]
    fn builds_from_config_and_looks_up() {
        let store = store();
        let entry = store.lookup("alice").unwrap();
        assert_eq!(entry.identity(), &alice());
        assert!(entry.secret().verify_cleartext(b"alice-pw"));
        assert!(
            store.lookup("Alice").is_none(),
            "names are case-sensitive, like MySQL's"
        );
        assert!(store.lookup("mallory").is_none());
        assert!(store.has_native("alice"));
        assert!(!store.has_native("ci-bot"));
        assert!(!store.has_native("mallory"));
        assert!(IdentityStore::from_config(&[]).is_ok());
    }

    #[test]
    fn config_errors_name_the_identity() {
        let good = cheap_secret("pw", false).to_string();
        let cases = [
            (
                vec![config("", &[], good.clone())],
                "identity #1: empty name",
            ),
            (
                vec![
                    config("a", &[], good.clone()),
                    config("a", &[], good.clone()),
                ],
                "identity \"a\" is defined more than once",
            ),
            (
                vec![config("a", &["ok", ""], good.clone())],
                "identity \"a\": empty group name",
            ),
            (
                vec![
                    config("a", &[], good.clone()),
                    config("b", &[], "hunter2".into()),
                ],
                "identity \"b\": secret: not a gatehouse secret",
            ),
        ];
        for (identities, expected) in cases {
            let err = IdentityStore::from_config(&identities).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
    }

    #[test]
    fn native_logins() {
        let store = store();
        let ok = native_response(b"alice-pw", NONCE);
        assert_eq!(store.verify_native("alice", NONCE, &ok), Some(alice()));
        let wrong = native_response(b"alice-pw!", NONCE);
        assert_eq!(store.verify_native("alice", NONCE, &wrong), None);
        assert_eq!(store.verify_native("alice", b"another nonce", &ok), None);
        assert_eq!(store.verify_native("alice", NONCE, &ok[..10]), None);
        assert_eq!(store.verify_native("alice", NONCE, b""), None);
        // No native hash: refused even with the right password.
        let bot = native_scramble(b"bot-pw", NONCE);
        assert_eq!(store.verify_native("ci-bot", NONCE, &bot), None);
        assert_eq!(store.verify_native("mallory", NONCE, &ok), None);
    }

    #[test]
    fn sha2_fast_path_needs_one_full_auth_first() {
        let store = store();
        let scramble = sha2_scramble(b"alice-pw", NONCE);
        assert_eq!(
            store.verify_sha2_fast("alice", NONCE, &scramble),
            FastAuth::NeedFullAuth
        );

        // A wrong cleartext password caches nothing.
        assert_eq!(store.verify_cleartext("alice", b"alice-pw!"), None);
        assert!(!store.lookup("alice").unwrap().sha2_cached());
        assert_eq!(
            store.verify_sha2_fast("alice", NONCE, &scramble),
            FastAuth::NeedFullAuth
        );

        assert_eq!(store.verify_cleartext("alice", b"alice-pw"), Some(alice()));
        assert!(store.lookup("alice").unwrap().sha2_cached());
        assert_eq!(
            store.verify_sha2_fast("alice", NONCE, &scramble),
            FastAuth::Ok(alice())
        );
        let other_nonce = b"TSRQPONMLKJIHGFEDCBA";
        let fresh = sha2_scramble(b"alice-pw", other_nonce);
        assert_eq!(
            store.verify_sha2_fast("alice", other_nonce, &fresh),
            FastAuth::Ok(alice())
        );

        // Mismatches fall back to full auth, like MySQL; the cache keeps the right hash.
        let wrong = sha2_scramble(b"alice-pw!", NONCE);
        assert_eq!(
            store.verify_sha2_fast("alice", NONCE, &wrong),
            FastAuth::NeedFullAuth
        );
        assert_eq!(
            store.verify_sha2_fast("alice", other_nonce, &scramble),
            FastAuth::NeedFullAuth
        );
        assert_eq!(store.verify_cleartext("alice", b"alice-pw!"), None);
        assert_eq!(
            store.verify_sha2_fast("alice", NONCE, &scramble),
            FastAuth::Ok(alice())
        );

        // Other identities have their own cache.
        let bot = sha2_scramble(b"bot-pw", NONCE);
        assert_eq!(
            store.verify_sha2_fast("ci-bot", NONCE, &bot),
            FastAuth::NeedFullAuth
        );
    }

    #[test]
    fn unknown_users_look_like_wrong_passwords() {
        let store = store();
        let scramble = sha2_scramble(b"alice-pw", NONCE);
        assert_eq!(
            store.verify_sha2_fast("mallory", NONCE, &scramble),
            FastAuth::NeedFullAuth
        );
        assert_eq!(store.verify_cleartext("mallory", b"alice-pw"), None);
        assert_eq!(
            store.verify_cleartext("mallory", b"gatehouse decoy password"),
            None
        );
        assert_eq!(
            store.verify_sha2_fast("mallory", NONCE, &scramble),
            FastAuth::NeedFullAuth
        );
        assert_eq!(store.verify_cleartext("", b""), None);
    }

    #[test]
    fn malformed_fast_responses_fail_for_everyone() {
        let store = store();
        store.verify_cleartext("alice", b"alice-pw").unwrap();
        let scramble = sha2_scramble(b"alice-pw", NONCE);
        for user in ["alice", "ci-bot", "mallory"] {
            for response in [
                &b""[..],
                b"\0",
                &scramble[..31],
                &[scramble.as_slice(), b"\0"].concat(),
            ] {
                assert_eq!(
                    store.verify_sha2_fast(user, NONCE, response),
                    FastAuth::Failed
                );
            }
        }
    }

    #[test]
    fn shared_across_threads() {
        let store = Arc::new(store());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let nonce = [i as u8; 20];
                    let scramble = sha2_scramble(b"alice-pw", &nonce);
                    assert_eq!(store.verify_cleartext("alice", b"alice-pw"), Some(alice()));
                    assert_eq!(
                        store.verify_sha2_fast("alice", &nonce, &scramble),
                        FastAuth::Ok(alice())
                    );
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
