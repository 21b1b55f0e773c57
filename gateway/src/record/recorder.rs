//! [`Recorder`]: the handle sessions' drivers record through. (API fixed; the implementation
//! is being written — see the task description of the recorder.)

use std::path::PathBuf;

use super::event::{Entry, Payload};
use crate::config::RecordingConfig;

/// Where a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAt {
    /// Its seq.
    pub seq: u64,
    /// The first seq of its segment (names the segment file).
    pub segment_first_seq: u64,
    /// Its offset in the segment file.
    pub offset: u64,
    /// Its time (Unix ns).
    pub time_ns: i64,
}

/// Sees every record the writer appends (the session index is one).
pub trait Observer: Send {
    /// A record was appended (not yet necessarily durable).
    fn observe(&mut self, at: RecordAt, payload: &Payload);
    /// Every record up to `durable_seq` is on disk.
    fn committed(&mut self, durable_seq: u64);
}

/// Whether the log can be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Writing.
    Ok,
    /// Writing fails; statements are refused until it works again.
    Failing {
        /// Since when (Unix ns).
        since_ns: i64,
        /// The error.
        error: String,
    },
}

/// What `gatehouse status` shows.
#[derive(Debug, Clone)]
pub struct RecorderStatus {
    /// Health.
    pub health: Health,
    /// The last seq appended.
    pub last_seq: u64,
    /// The last seq on disk.
    pub durable_seq: u64,
    /// Events waiting in the queue.
    pub queued: usize,
    /// The log directory.
    pub dir: PathBuf,
}

/// Opening the log failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// An I/O error.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log is damaged beyond a torn tail (run `gatehouse audit verify`).
    #[error("audit log {path}: {why}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The recorder handle (cheap to clone).
#[derive(Clone)]
pub struct Recorder {}

impl Recorder {
    /// Opens (or creates) the log in `cfg.dir`, recovers it after an unclean stop, appends
    /// `gateway_start` and starts the writer thread.
    pub fn open(
        _cfg: &RecordingConfig,
        _observers: Vec<Box<dyn Observer>>,
    ) -> Result<Recorder, RecordError> {
        unimplemented!("recorder")
    }
    /// The highest session id in the log when it was opened (new sessions number after it).
    pub fn last_session_id(&self) -> u64 {
        unimplemented!("recorder")
    }
    /// Queues an entry without waiting; gives it back when the queue is full.
    pub fn try_record(&self, _entry: Entry) -> Result<(), Entry> {
        unimplemented!("recorder")
    }
    /// Queues an entry, waiting (asynchronously) while the queue is full.
    pub async fn record(&self, _entry: Entry) {
        unimplemented!("recorder")
    }
    /// Queues an entry and waits until it is on disk.
    pub async fn record_durable(&self, _entry: Entry) {
        unimplemented!("recorder")
    }
    /// Whether the log is being written (one atomic load).
    pub fn is_healthy(&self) -> bool {
        unimplemented!("recorder")
    }
    /// The health, with the error when failing.
    pub fn health(&self) -> Health {
        unimplemented!("recorder")
    }
    /// Status for `gatehouse status`.
    pub fn status(&self) -> RecorderStatus {
        unimplemented!("recorder")
    }
    /// Appends `gateway_stop`, writes and fsyncs everything queued, stops the writer.
    pub fn close(&self) {
        unimplemented!("recorder")
    }
}
