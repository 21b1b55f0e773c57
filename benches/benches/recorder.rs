//! `recorder/*`: what recording costs a session, and what the writer sustains.
//!
//! ```text
//! recorder/enqueue     Recorder::try_record of one statement entry (what an I/O thread pays
//!                      per event): a lock-free push, nothing else
//! recorder/writer      entries per second through the writer thread: decode, JSON, CRC-32C,
//!                      BLAKE3 chain, write(2), group-commit fsync (batched durability)
//! ```
//!
//! Before the criterion groups, enqueue latency is timed one push at a time (p50/p99/p99.9/max
//! printed: the issue's target is p99 < 1 µs), and the writer's throughput is measured over one
//! million events pushed by one producer, from the first push until every record is on disk
//! (target ≥ 1 M small events/s): `statement` events (a 40-byte query the writer lexes for its
//! digest and kind) and `result` events (counters and a result hash).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::config::RecordingConfig;
use gatehouse::record::event::{EntryKind, ResultEntry, StatementEntry};
use gatehouse::record::{now_ns, Entry, Recorder};

// As in the gateway binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-bench-{name}-{}-{}",
        std::process::id(),
        now_ns()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn recorder(name: &str) -> (Recorder, std::path::PathBuf) {
    let dir = temp_dir(name);
    let mut cfg = RecordingConfig::in_dir(&dir);
    cfg.queue_capacity = 1 << 20;
    (
        Recorder::open(&cfg, Vec::new()).expect("open the recorder"),
        dir,
    )
}

fn statement(session: u64, n: u64, sql: &Arc<[u8]>) -> Entry {
    Entry {
        time_ns: now_ns(),
        what: EntryKind::Statement(Box::new(StatementEntry {
            session,
            n,
            command: "COM_QUERY",
            sql: Some(sql.clone()),
            stmt_id: None,
            params: None,
            long_data: None,
            argument: None,
            mode: Some(gatehouse::sql::Mode::DEFAULT),
            database: None,
            decision: "allow",
            rules: Vec::new(),
            error: None,
        })),
    }
}

fn sql() -> Arc<[u8]> {
    Arc::from(&b"SELECT id, name FROM items WHERE id = 42"[..])
}

fn enqueue_percentiles() {
    let (rec, dir) = recorder("enqueue-p");
    let sql = sql();
    let mut samples = Vec::with_capacity(200_000);
    for n in 0..200_000u64 {
        let entry = statement(1, n, &sql);
        let t = Instant::now();
        let pushed = rec.try_record(entry);
        samples.push(t.elapsed());
        if pushed.is_err() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "recorder/enqueue one push: p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        at(0.5),
        at(0.99),
        at(0.999),
        samples.last().unwrap()
    );
    rec.close();
    let _ = std::fs::remove_dir_all(dir);
}

/// A finished command's record (no SQL: nothing to lex on the writer).
fn result(session: u64, n: u64) -> Entry {
    Entry {
        time_ns: now_ns(),
        what: EntryKind::Result(Box::new(ResultEntry {
            session,
            n,
            forwarded_ns: now_ns(),
            first_byte_ns: Some(now_ns()),
            done_ns: now_ns(),
            rows: 1,
            result_sets: 1,
            bytes: 120,
            affected_rows: 0,
            warnings: 0,
            error: None,
            prepared_stmt_id: None,
            result_hash: Some([7; 32]),
            rows_captured: None,
            capture_truncated: false,
        })),
    }
}

fn writer_throughput(what: &str, make: impl Fn(u64, &Arc<[u8]>) -> Entry) {
    const EVENTS: u64 = 1_000_000;
    let (rec, dir) = recorder("writer");
    let sql = sql();
    let started = Instant::now();
    for n in 0..EVENTS {
        let mut entry = make(n, &sql);
        while let Err(back) = rec.try_record(entry) {
            entry = back;
            std::thread::yield_now();
        }
    }
    rec.close(); // returns once everything is written and fsynced
    let secs = started.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "recorder/writer: {EVENTS} {what} events in {secs:.2} s = {:.0} events/s ({:.0} MB/s of log)",
        EVENTS as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits until the writer has drained the queue.
fn drained(rec: &Recorder) {
    while rec.status().queued > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn bench(c: &mut Criterion) {
    enqueue_percentiles();
    writer_throughput("statement", |n, sql| statement(n / 10, n, sql));
    writer_throughput("result", |n, _| result(n / 10, n));
    let (rec, dir) = recorder("enqueue");
    let sql = sql();
    // Only the push is timed: entries are built beforehand, and each chunk starts on an empty
    // queue (the writer is slower than a tight loop of pushes).
    c.bench_function("recorder/enqueue", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(100_000);
                left -= chunk;
                let entries: Vec<Entry> = (0..chunk).map(|n| statement(1, n, &sql)).collect();
                drained(&rec);
                let t = Instant::now();
                for e in entries {
                    let _ = black_box(rec.try_record(e));
                }
                total += t.elapsed();
            }
            total
        })
    });
    rec.close();
    let _ = std::fs::remove_dir_all(dir);
}
criterion_group!(benches, bench);
criterion_main!(benches);
