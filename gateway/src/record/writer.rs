//! The writer thread: drains the queue, appends records to the current segment (one write per
//! batch), group-commits with fdatasync, rotates segments, applies retention, keeps the status
//! file, and holds everything it could not write until it can (fail closed, never lossy).
//!
//! Bytes move through three stages:
//! * `pending`: encoded records not yet written (kept across write failures);
//! * `written`: written to the current segment, not yet fsynced (kept so that a failed fsync,
//!   after which the kernel may have dropped the dirty pages, can be redone: the file is cut
//!   back to its last synced length and the bytes are written again);
//! * synced: durable; `record_durable` waiters are told, observers get `committed`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::event::{Entry, GatewayStart, Payload, Pruned};
use super::format::{self, Hash, SegmentHeader, HEADER_LEN};
use super::recorder::{Health, Item, Observer, RecordAt, Shared, StatusFile};
use super::recover::{self, Recovered};
use crate::config::{Durability, RecordingConfig};

/// How often a failing write is retried.
const RETRY: Duration = Duration::from_millis(500);
/// How often `status.json` is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the chain head is logged and retention runs.
const MINUTE: Duration = Duration::from_secs(60);
/// A batch is written once it reaches this size even if the queue still has items.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// While draining, producers waiting for room are woken every this many items.
const NOTIFY_EVERY: usize = 1024;
/// How long a stopping writer keeps retrying a failing disk.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Encoded records for one segment, in order.
struct Chunk {
    /// The segment these records start (its file is created before they are written).
    new_segment: Option<SegmentHeader>,
    bytes: Vec<u8>,
    /// The last record's seq and hash.
    last_seq: u64,
    last_hash: Hash,
    /// The records, for observers (empty without observers).
    records: Vec<(RecordAt, Payload)>,
}

/// The segment being appended to.
struct Segment {
    file: File,
    header: SegmentHeader,
    /// Bytes written.
    len: u64,
    /// Bytes known durable.
    synced_len: u64,
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    dir: PathBuf,
    observers: Vec<Box<dyn Observer>>,
    interval: Duration,
    segment_bytes: u64,
    retain: Option<Duration>,
    durability: &'static str,
    queue_capacity: usize,
    status: StatusFile,

    // Encoding: where the next record goes.
    next_seq: u64,
    prev_hash: Hash,
    enc_segment: u64,
    enc_segment_first: u64,
    enc_segment_len: u64,
    json: Vec<u8>,

    pending: VecDeque<Chunk>,
    written: VecDeque<Chunk>,
    waiters: VecDeque<(u64, oneshot::Sender<()>)>,
    spare: Vec<Vec<u8>>,

    // The files.
    cur: Option<Segment>,
    segments: u64,
    written_seq: u64,
    durable_seq: u64,
    durable_hash: Hash,
    observed_seq: u64,
    last_sync: Instant,

    failing: Option<(i64, String)>,
    next_retry: Instant,
    stop_deadline: Option<Instant>,
    last_status: Instant,
    last_minute: Instant,
    /// What recovery found (for `gateway_start`).
    recovery: Option<super::event::Recovery>,
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        cfg: &RecordingConfig,
        observers: Vec<Box<dyn Observer>>,
        segment_bytes: u64,
        status: StatusFile,
        recovered: Recovered,
    ) -> io::Result<Writer> {
        let now = Instant::now();
        let last_seq = recovered.next_seq - 1;
        let mut w = Writer {
            shared,
            dir: cfg.dir.clone(),
            observers,
            interval: cfg.commit_interval(),
            segment_bytes,
            retain: (cfg.retain_days > 0)
                .then(|| Duration::from_secs(cfg.retain_days.saturating_mul(86_400))),
            durability: match cfg.durability {
                Durability::Batched => "batched",
                Durability::Strict => "strict",
            },
            queue_capacity: cfg.queue_capacity,
            status,
            next_seq: recovered.next_seq,
            prev_hash: recovered.prev_hash,
            enc_segment: 0,
            enc_segment_first: 0,
            enc_segment_len: 0,
            json: Vec::with_capacity(1024),
            pending: VecDeque::new(),
            written: VecDeque::new(),
            waiters: VecDeque::new(),
            spare: Vec::new(),
            cur: None,
            segments: recovered.segments,
            written_seq: last_seq,
            durable_seq: last_seq,
            durable_hash: recovered.prev_hash,
            observed_seq: last_seq,
            last_sync: now,
            failing: None,
            next_retry: now,
            stop_deadline: None,
            last_status: now,
            // The chain head is logged, and retention runs, right away and then every minute.
            last_minute: now.checked_sub(MINUTE).unwrap_or(now),
            recovery: None,
        };
        if let Some(last) = recovered.last {
            let file = OpenOptions::new().read(true).write(true).open(&last.path)?;
            // The previous process may have died with data in the page cache.
            file.sync_data()?;
            w.enc_segment = last.header.segment;
            w.enc_segment_first = last.header.first_seq;
            w.enc_segment_len = last.len;
            w.cur = Some(Segment {
                file,
                header: last.header,
                len: last.len,
                synced_len: last.len,
            });
        }
        w.recovery = recovered.recovery;
        Ok(w)
    }
}

impl Writer {
    /// Appends `gateway_start` and makes it durable (before the thread starts: a log that
    /// cannot be written fails the gateway's start).
    pub(super) fn start(&mut self, host: String) -> io::Result<()> {
        let payload = Payload::GatewayStart(GatewayStart {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            host,
            recovered: self.recovery.take(),
        });
        self.encode(super::now_ns(), payload, None);
        self.flush()?;
        self.sync()?;
        self.write_status();
        Ok(())
    }

    /// The thread's loop.
    pub(super) fn run(mut self) {
        loop {
            let stopping = self.shared.stop.load(Ordering::Acquire);
            if stopping && self.stop_deadline.is_none() {
                self.stop_deadline = Some(Instant::now() + STOP_GRACE);
            }
            #[cfg(test)]
            if !stopping && self.shared.faults.paused.load(Ordering::Acquire) {
                std::thread::park_timeout(Duration::from_millis(2));
                continue;
            }
            if self.failing.is_some() && Instant::now() >= self.next_retry {
                self.retry();
            }
            if self.failing.is_none() {
                self.drain_and_write(stopping);
            }
            if self.failing.is_none()
                && !self.written.is_empty()
                && (stopping
                    || !self.waiters.is_empty()
                    || self.last_sync.elapsed() >= self.interval)
            {
                if let Err(e) = self.sync() {
                    self.fail(e);
                }
            }
            let now = Instant::now();
            if now.duration_since(self.last_minute) >= MINUTE {
                self.last_minute = now;
                tracing::info!(
                    seq = self.durable_seq,
                    hash = %hex::encode(self.durable_hash),
                    "audit chain head"
                );
                if self.failing.is_none() {
                    self.retention();
                }
            }
            if now.duration_since(self.last_status) >= STATUS_EVERY {
                self.write_status();
            }
            if stopping {
                let idle = self.shared.queue.is_empty()
                    && self.pending.is_empty()
                    && self.written.is_empty();
                if idle && self.failing.is_none() {
                    break;
                }
                if self.stop_deadline.is_some_and(|d| Instant::now() >= d) {
                    let lost = self.shared.queue.len()
                        + self
                            .pending
                            .iter()
                            .map(|c| c.records_count())
                            .sum::<usize>()
                        + self
                            .written
                            .iter()
                            .map(|c| c.records_count())
                            .sum::<usize>();
                    tracing::error!(
                        records = lost,
                        "audit log: stopping while the log cannot be written; \
                         records after seq {} are not on disk",
                        self.durable_seq
                    );
                    break;
                }
            }
            let timeout = if self.failing.is_some() {
                self.next_retry.saturating_duration_since(Instant::now())
            } else if stopping {
                Duration::ZERO
            } else if !self.written.is_empty() {
                self.interval.saturating_sub(self.last_sync.elapsed())
            } else {
                self.interval
            };
            if !timeout.is_zero() {
                std::thread::park_timeout(timeout.min(STATUS_EVERY));
            } else if stopping && self.failing.is_some() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.write_status_final();
    }

    /// Drains the queue into batches and writes them.
    fn drain_and_write(&mut self, stopping: bool) {
        let started = Instant::now();
        loop {
            let mut popped = 0usize;
            let mut batch = 0usize;
            while batch < MAX_BATCH_BYTES {
                let Some(item) = self.shared.queue.pop() else {
                    break;
                };
                popped += 1;
                if popped % NOTIFY_EVERY == 0 {
                    // Let waiting producers refill while this batch is encoded.
                    self.shared.space.notify_waiters();
                }
                let (entry, waiter) = match item {
                    Item::Entry(e) => (e, None),
                    Item::Durable(e, w) => (e, Some(w)),
                };
                batch += self.encode_entry(entry, waiter);
            }
            if popped > 0 {
                self.shared.space.notify_waiters();
            }
            if self.pending.is_empty() {
                return;
            }
            if let Err(e) = self.flush() {
                self.fail(e);
                return;
            }
            // Keep group commit going under a constant stream: sync when someone waits or
            // the interval has passed, even if the queue is not empty yet.
            if popped == 0
                || stopping
                || !self.waiters.is_empty()
                || started.elapsed() >= self.interval
                || self.last_sync.elapsed() >= self.interval
            {
                return;
            }
        }
    }

    fn encode_entry(&mut self, entry: Entry, waiter: Option<oneshot::Sender<()>>) -> usize {
        let (time_ns, payload) = entry.into_payload();
        self.encode(time_ns, payload, waiter)
    }

    /// Encodes one record into `pending`; returns its size.
    fn encode(
        &mut self,
        time_ns: i64,
        payload: Payload,
        waiter: Option<oneshot::Sender<()>>,
    ) -> usize {
        let kind = payload.kind();
        self.json.clear();
        if let Err(e) = serde_json::to_writer(&mut self.json, &payload) {
            // Not expected (payloads are plain data); keep a record that says so.
            tracing::error!(error = %e, "audit log: a payload could not be serialized");
            self.json.clear();
            let fallback = serde_json::json!({
                "type": kind.name(),
                "unserializable": e.to_string(),
            });
            serde_json::to_writer(&mut self.json, &fallback).expect("plain JSON");
        }
        let rotate = self.enc_segment == 0
            || (self.enc_segment_len >= self.segment_bytes
                && self.enc_segment_len > HEADER_LEN as u64);
        if rotate {
            let header = SegmentHeader {
                segment: self.enc_segment + 1,
                first_seq: self.next_seq,
                prev_hash: self.prev_hash,
            };
            self.enc_segment = header.segment;
            self.enc_segment_first = header.first_seq;
            self.enc_segment_len = HEADER_LEN as u64;
            let chunk = self.new_chunk(Some(header));
            self.pending.push_back(chunk);
        } else if self.pending.is_empty() {
            let chunk = self.new_chunk(None);
            self.pending.push_back(chunk);
        }
        let seq = self.next_seq;
        let offset = self.enc_segment_len;
        let observe = !self.observers.is_empty();
        let chunk = self.pending.back_mut().expect("a chunk");
        let before = chunk.bytes.len();
        let hash = format::encode_record(
            &mut chunk.bytes,
            seq,
            time_ns,
            &self.prev_hash,
            kind,
            &self.json,
        );
        let size = chunk.bytes.len() - before;
        self.enc_segment_len += size as u64;
        chunk.last_seq = seq;
        chunk.last_hash = hash;
        if observe {
            let at = RecordAt {
                seq,
                segment_first_seq: self.enc_segment_first,
                offset,
                time_ns,
            };
            chunk.records.push((at, payload));
        }
        if let Some(w) = waiter {
            self.waiters.push_back((seq, w));
        }
        self.prev_hash = hash;
        self.next_seq += 1;
        size
    }

    fn new_chunk(&mut self, new_segment: Option<SegmentHeader>) -> Chunk {
        Chunk {
            new_segment,
            bytes: self.spare.pop().unwrap_or_default(),
            last_seq: 0,
            last_hash: [0; 32],
            records: Vec::new(),
        }
    }

    /// Writes `pending` (one write per chunk). On failure the file is cut back to where the
    /// failed chunk started and the chunk stays pending.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(chunk) = self.pending.front_mut() {
            if let Some(header) = chunk.new_segment {
                self.start_segment(header)?;
                self.pending.front_mut().expect("the chunk").new_segment = None;
            }
            let chunk = self.pending.front().expect("the chunk");
            let seg = self.cur.as_mut().expect("a segment is open before records");
            if let Err(e) = write_at(&self.shared, &seg.file, &chunk.bytes, seg.len) {
                // Leave no torn record in the file.
                let _ = seg.file.set_len(seg.len);
                return Err(e);
            }
            seg.len += chunk.bytes.len() as u64;
            let chunk = self.pending.pop_front().expect("the chunk");
            self.written_seq = chunk.last_seq;
            self.shared
                .last_seq
                .store(chunk.last_seq, Ordering::Release);
            for (at, payload) in &chunk.records {
                if at.seq > self.observed_seq {
                    for o in &mut self.observers {
                        o.observe(*at, payload);
                    }
                }
            }
            self.observed_seq = self.observed_seq.max(chunk.last_seq);
            self.written.push_back(chunk);
        }
        Ok(())
    }

    /// Seals the current segment (fsync) and creates the next one with its header.
    fn start_segment(&mut self, header: SegmentHeader) -> io::Result<()> {
        if self.cur.is_some() {
            self.sync()?;
        }
        let path = self.dir.join(format::segment_file_name(header.first_seq));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        write_at(&self.shared, &file, &header.encode(), 0)?;
        sync_file(&self.shared, &file)?;
        recover::sync_dir(&self.dir)?;
        self.cur = Some(Segment {
            file,
            header,
            len: HEADER_LEN as u64,
            synced_len: HEADER_LEN as u64,
        });
        self.segments += 1;
        Ok(())
    }

    /// fdatasync of the current segment; then waiters and observers are told. On failure the
    /// written-but-unsynced bytes go back to `pending` (the file is cut to its synced length).
    fn sync(&mut self) -> io::Result<()> {
        if let Some(seg) = self.cur.as_mut() {
            if seg.len != seg.synced_len {
                if let Err(e) = sync_file(&self.shared, &seg.file) {
                    let _ = seg.file.set_len(seg.synced_len);
                    seg.len = seg.synced_len;
                    while let Some(chunk) = self.written.pop_back() {
                        self.pending.push_front(chunk);
                    }
                    self.written_seq = self.durable_seq;
                    self.shared
                        .last_seq
                        .store(self.durable_seq, Ordering::Release);
                    return Err(e);
                }
                seg.synced_len = seg.len;
            }
        }
        self.last_sync = Instant::now();
        while let Some(mut chunk) = self.written.pop_front() {
            self.durable_seq = chunk.last_seq;
            self.durable_hash = chunk.last_hash;
            chunk.bytes.clear();
            if self.spare.len() < 4 && chunk.bytes.capacity() <= MAX_BATCH_BYTES * 2 {
                self.spare.push(std::mem::take(&mut chunk.bytes));
            }
        }
        self.shared
            .durable_seq
            .store(self.durable_seq, Ordering::Release);
        while self
            .waiters
            .front()
            .is_some_and(|(seq, _)| *seq <= self.durable_seq)
        {
            let (_, w) = self.waiters.pop_front().expect("a waiter");
            let _ = w.send(());
        }
        for o in &mut self.observers {
            o.committed(self.durable_seq);
        }
        Ok(())
    }

    /// Retries after a failure: cut the file back to its last good length, write, sync.
    fn retry(&mut self) {
        if let Some(seg) = &self.cur {
            if let Err(e) = seg.file.set_len(seg.len) {
                self.fail(e);
                return;
            }
        }
        match self.flush().and_then(|()| self.sync()) {
            Ok(()) => self.healthy_again(),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.next_retry = Instant::now() + RETRY;
        if self.failing.is_some() {
            return;
        }
        let since = super::now_ns();
        let error = e.to_string();
        tracing::error!(
            error = %error,
            dir = %self.dir.display(),
            last_durable_seq = self.durable_seq,
            "audit log cannot be written: statements are refused until it can; \
             records are kept in memory and retried"
        );
        self.shared.healthy.store(false, Ordering::Release);
        *self.shared.health.lock().unwrap_or_else(|e| e.into_inner()) = Health::Failing {
            since_ns: since,
            error: error.clone(),
        };
        self.failing = Some((since, error));
        self.write_status();
    }

    fn healthy_again(&mut self) {
        let Some((since, _)) = self.failing.take() else {
            return;
        };
        tracing::info!(
            failing_for_ms = (super::now_ns() - since) / 1_000_000,
            durable_seq = self.durable_seq,
            "audit log writable again; statements are accepted"
        );
        *self.shared.health.lock().unwrap_or_else(|e| e.into_inner()) = Health::Ok;
        self.shared.healthy.store(true, Ordering::Release);
        self.write_status();
    }

    /// Removes sealed segments whose last record is older than the retention, oldest first,
    /// after recording a `pruned` record that names them and the hash the chain continues
    /// from.
    fn retention(&mut self) {
        let Some(keep) = self.retain else { return };
        let Some(cur_first) = self.cur.as_ref().map(|s| s.header.first_seq) else {
            return;
        };
        if !self.pending.is_empty() {
            return;
        }
        let cutoff_ns = super::now_ns().saturating_sub(keep.as_nanos() as i64);
        let cutoff = std::time::UNIX_EPOCH + Duration::from_nanos(cutoff_ns.max(0) as u64);
        let paths = match format::segment_paths(&self.dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "audit log retention: cannot list segments");
                return;
            }
        };
        let mut removed: Vec<(String, PathBuf)> = Vec::new();
        let mut through: Option<(u64, Hash)> = None;
        for (first, path) in paths {
            if first >= cur_first {
                break;
            }
            // Cheap test first: a file modified after the cutoff holds a record after it.
            let old = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < cutoff);
            if !old {
                break;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                break;
            };
            let Ok(header) = SegmentHeader::decode(&bytes) else {
                break;
            };
            let Ok(scan) = recover::scan_segment(&bytes, &header, false) else {
                break;
            };
            if scan.error.is_some() {
                break;
            }
            let Some((seq, hash, _, time_ns)) = scan.last else {
                break;
            };
            if time_ns >= cutoff_ns {
                break;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            removed.push((name, path));
            through = Some((seq, hash));
        }
        let Some((through_seq, last_hash)) = through else {
            return;
        };
        let payload = Payload::Pruned(Pruned {
            segments: removed.iter().map(|(n, _)| n.clone()).collect(),
            through_seq,
            last_hash: hex::encode(last_hash),
        });
        self.encode(super::now_ns(), payload, None);
        if let Err(e) = self.flush().and_then(|()| self.sync()) {
            self.fail(e);
            return;
        }
        for (name, path) in &removed {
            match std::fs::remove_file(path) {
                Ok(()) => self.segments = self.segments.saturating_sub(1),
                Err(e) => tracing::warn!(segment = %name, error = %e,
                    "audit log retention: cannot remove segment"),
            }
        }
        let _ = recover::sync_dir(&self.dir);
        tracing::info!(
            segments = removed.len(),
            through_seq,
            "audit log retention removed old segments"
        );
    }

    fn status_json(&self, running: bool) -> serde_json::Value {
        let (health, error, since) = match &self.failing {
            None => ("ok", None, None),
            Some((since, e)) => ("failing", Some(e.clone()), Some(*since)),
        };
        serde_json::json!({
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
            "running": running,
            "updated_ns": super::now_ns(),
            "health": health,
            "error": error,
            "failing_since_ns": since,
            "last_seq": self.written_seq,
            "durable_seq": self.durable_seq,
            "queued": self.shared.queue.len(),
            "queue_capacity": self.queue_capacity,
            "segments": self.segments,
            "current_segment": self.cur.as_ref().map(|s| format::segment_file_name(s.header.first_seq)),
            "durability": self.durability,
        })
    }

    fn write_status(&mut self) {
        self.last_status = Instant::now();
        let status = self.status_json(true);
        self.status.write(&status);
    }

    fn write_status_final(&mut self) {
        let status = self.status_json(false);
        self.status.write(&status);
        let _ = self.status.sync();
    }
}

impl Chunk {
    fn records_count(&self) -> usize {
        // Without observers the records are not kept; count by frames.
        let mut n = 0;
        let mut at = 0;
        while at + format::FRAME_LEN <= self.bytes.len() {
            let len = u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes"));
            at += format::FRAME_LEN + len as usize;
            n += 1;
        }
        n
    }
}

fn write_at(shared: &Shared, file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    #[cfg(test)]
    if shared.faults.fail_writes.load(Ordering::Acquire) {
        // A partial write, then the disk is full.
        file.write_all_at(&bytes[..bytes.len() / 2], at)?;
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    let _ = shared;
    file.write_all_at(bytes, at)
}

fn sync_file(shared: &Shared, file: &File) -> io::Result<()> {
    #[cfg(test)]
    if shared.faults.fail_syncs.load(Ordering::Acquire) {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    let _ = shared;
    file.sync_data()
}
