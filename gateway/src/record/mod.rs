//! Session recording: every session's events, off the hot path, never lost, in a
//! tamper-evident log outside MySQL.
//!
//! ```text
//! session (sans-IO) ──Event──▶ driver ──Entry──▶ bounded lock-free queue ──▶ writer thread
//!                                 │  (waits when full; strict: waits for fsync)     │
//!                                 └─ fail-closed: statements refused while ◀─ health │
//!                                    the log cannot be written                      ▼
//!                                       segments: CRC-framed, hash-chained records (format)
//!                                       index.sqlite: sessions, for list/show (index)
//!                                       status.json: health, for `gatehouse status`
//! ```
//!
//! * [`format`]: the on-disk format (also in `docs/audit-log.md`).
//! * [`event`]: what is recorded — [`event::Entry`] from drivers, [`event::Payload`] on disk.
//! * [`Recorder`]: the queue and the writer thread (group commit, rotation, retention,
//!   recovery after a crash, health).
//! * [`verify`]: checks every CRC and the whole hash chain.
//! * [`index`], [`query`]: the session index and `sessions list|show`, `audit export`.
//! * [`replay`]: re-executes a recorded session against another target and compares results.

pub mod event;
pub mod format;
pub mod index;
pub mod query;
mod recorder;
mod recover;
pub mod replay;
pub mod verify;
mod writer;

pub use event::{Entry, EntryKind, Payload, ResultHasher};
pub use recorder::{Health, Observer, RecordAt, RecordError, Recorder, RecorderStatus};

/// The wall-clock time of `t` in nanoseconds since the Unix epoch (sessions keep
/// monotonic [`std::time::Instant`]s; the log keeps wall time).
pub fn wall_ns(t: std::time::Instant) -> i64 {
    use std::sync::OnceLock;
    static ANCHOR: OnceLock<(std::time::Instant, i64)> = OnceLock::new();
    let (at, ns) = *ANCHOR.get_or_init(|| (std::time::Instant::now(), now_ns()));
    match t.checked_duration_since(at) {
        Some(d) => ns + d.as_nanos() as i64,
        None => ns - at.duration_since(t).as_nanos() as i64,
    }
}

/// The current time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
