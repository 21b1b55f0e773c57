//! The decision cache: (policy version, role set, target, current database, lexical mode,
//! server, digest) → verdict. Bounded, sharded, lock per shard; lookups do not allocate.
//!
//! Keys are hashed with a per-cache random SipHash key (the digest's own hash is not collision
//! resistant: a client could otherwise pile entries into one bucket), and compared in full on
//! a hit. A shard that reaches its share of the capacity is emptied (cheap, and a policy's
//! working set of statement shapes is usually far smaller than the cap).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::sql::{Digest, Mode, Server, SqlModeChange};

use super::model::{RoleSet, Verdict};

const SHARDS: usize = 16;

/// Keys are already SipHash values: used as they are.
#[derive(Default)]
struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Slots = HashMap<u64, Vec<Arc<Entry>>, BuildHasherDefault<U64Hasher>>;

/// What a statement does to the session state later statements of the same packet are
/// analysed with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatementEffects {
    pub(crate) database: Option<String>,
    pub(crate) sql_mode: Option<SqlModeChange>,
    pub(crate) charset: Option<String>,
    /// It could not be analysed (and was allowed): its effects are unknown.
    pub(crate) unknown: bool,
}

impl StatementEffects {
    pub(crate) fn is_none(&self) -> bool {
        self.database.is_none()
            && self.sql_mode.is_none()
            && self.charset.is_none()
            && !self.unknown
    }
}

/// A cached decision.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) version: u64,
    pub(crate) roles: RoleSet,
    pub(crate) target: Box<str>,
    pub(crate) database: Option<Box<str>>,
    pub(crate) mode: Option<Mode>,
    pub(crate) server: Server,
    pub(crate) digest: Digest,
    pub(crate) verdict: Arc<Verdict>,
    pub(crate) effects: StatementEffects,
}

/// The key, borrowed.
pub(crate) struct Key<'a> {
    pub(crate) version: u64,
    pub(crate) roles: &'a RoleSet,
    pub(crate) target: &'a str,
    pub(crate) database: Option<&'a str>,
    pub(crate) mode: Option<Mode>,
    pub(crate) server: Server,
    pub(crate) digest: &'a Digest,
}

impl Key<'_> {
    fn matches(&self, e: &Entry) -> bool {
        e.version == self.version
            && e.roles == *self.roles
            && &*e.target == self.target
            && e.database.as_deref() == self.database
            && e.mode == self.mode
            && e.server == self.server
            && e.digest == *self.digest
    }
}

pub(crate) struct DecisionCache {
    hasher: RandomState,
    per_shard: usize,
    shards: Vec<Mutex<Slots>>,
}

impl DecisionCache {
    /// A cache holding at most about `capacity` decisions.
    pub(crate) fn new(capacity: usize) -> DecisionCache {
        DecisionCache {
            hasher: RandomState::new(),
            per_shard: (capacity / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(Slots::default())).collect(),
        }
    }

    fn hash(&self, key: &Key<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        key.version.hash(&mut h);
        key.roles.hash(&mut h);
        key.target.hash(&mut h);
        key.database.hash(&mut h);
        key.mode.hash(&mut h);
        match key.server {
            Server::MariaDb { version_id } => (0u8, version_id.unwrap_or(0)).hash(&mut h),
            Server::MySql { version_id } => (1u8, version_id).hash(&mut h),
        }
        h.write(key.digest.text());
        key.digest.flags().bits().hash(&mut h);
        h.finish()
    }

    fn shard(&self, hash: u64) -> &Mutex<Slots> {
        &self.shards[(hash >> 59) as usize % SHARDS]
    }

    pub(crate) fn get(&self, key: &Key<'_>) -> Option<Arc<Entry>> {
        let hash = self.hash(key);
        let shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(&hash)?.iter().find(|e| key.matches(e)).cloned()
    }

    pub(crate) fn insert(&self, key: &Key<'_>, entry: Entry) -> Arc<Entry> {
        let hash = self.hash(key);
        let entry = Arc::new(entry);
        let mut shard = self.shard(hash).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard {
            shard.clear();
        }
        let slot = shard.entry(hash).or_default();
        if slot.len() >= 4 {
            slot.clear();
        }
        slot.push(entry.clone());
        entry
    }

    pub(crate) fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// How many decisions are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }
}
