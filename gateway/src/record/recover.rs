//! Opening the log: find where the chain ends, cut a torn tail left by a crash, refuse a log
//! damaged anywhere else (fail closed: the operator runs `gatehouse audit verify`).
//!
//! Rules (also in `docs/audit-log.md`):
//! * The last segment's header must be readable and continue the previous segment (segment
//!   number + 1, first seq = its last seq + 1, prev hash = its last record's hash).
//! * A last segment shorter than a header, or all zeros, was being created when the gateway
//!   died: it holds no record and is removed.
//! * Records must follow each other (seq + 1, prev hash = hash of the previous body).
//! * A record at the end that is incomplete or fails its CRC, with no readable record after
//!   it, is a torn write: the file is cut before it (`ftruncate` + fsync).
//! * Anything else is damage: opening fails with [`RecordError::Damaged`].

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::event::Recovery;
use super::format::{
    decode_record, segment_paths, FormatError, Hash, Kind, Records, SegmentHeader, GENESIS,
    HEADER_LEN, MAGIC,
};
use super::recorder::RecordError;

/// The segment the writer continues in.
#[derive(Debug)]
pub(super) struct LastSegment {
    pub(super) path: PathBuf,
    pub(super) header: SegmentHeader,
    /// Its length after recovery (where the next record goes).
    pub(super) len: u64,
}

/// Where the chain ends.
#[derive(Debug)]
pub(super) struct Recovered {
    /// The last segment, if there is one.
    pub(super) last: Option<LastSegment>,
    /// Segment files in the directory.
    pub(super) segments: u64,
    /// The seq of the next record.
    pub(super) next_seq: u64,
    /// The hash of the last record (or the chain's start).
    pub(super) prev_hash: Hash,
    /// Set when the previous run did not end with `gateway_stop`, or a torn tail was cut.
    pub(super) recovery: Option<Recovery>,
    /// The highest session id found (see [`recover`]).
    pub(super) last_session_id: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError {
    let path = path.to_path_buf();
    move |source| RecordError::Io { path, source }
}

fn damaged(path: &Path, why: impl std::fmt::Display) -> RecordError {
    RecordError::Damaged {
        path: path.to_path_buf(),
        why: format!(
            "{why}; the log is damaged beyond a torn tail, the gateway will not append to it \
             (run `gatehouse audit verify {}` and move the damaged log aside)",
            path.parent().unwrap_or(Path::new(".")).display()
        ),
    }
}

/// Fsyncs a directory (after creating or removing files in it).
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What scanning a segment's records found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// The last good record: seq, hash, kind byte, time.
    pub(super) last: Option<(u64, Hash, u8, i64)>,
    /// Where the good records end.
    pub(super) end: usize,
    /// The first unreadable record: offset and why.
    pub(super) error: Option<(usize, FormatError)>,
    /// The highest session id of the good records.
    pub(super) max_session: Option<u64>,
}

/// Scans a segment's records checking the chain from its header. A chain break is an
/// `Err((offset, why))`; an unreadable record ends the scan (`Scan::error`).
pub(super) fn scan_segment(
    bytes: &[u8],
    header: &SegmentHeader,
    sessions: bool,
) -> Result<Scan, (usize, String)> {
    let mut scan = Scan {
        end: HEADER_LEN.min(bytes.len()),
        ..Scan::default()
    };
    let mut prev = header.prev_hash;
    for (expected, (at, record)) in (header.first_seq..).zip(Records::new(bytes)) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                scan.error = Some((at, e));
                break;
            }
        };
        if record.seq != expected {
            return Err((
                at,
                format!(
                    "record seq {} where seq {expected} was expected",
                    record.seq
                ),
            ));
        }
        if record.prev_hash != prev {
            return Err((
                at,
                format!(
                    "record seq {}: prev hash does not match the hash of the record before it",
                    record.seq
                ),
            ));
        }
        let hash = record.hash();
        if sessions {
            if let Some(s) = payload_session(record.kind, record.payload) {
                scan.max_session = Some(scan.max_session.map_or(s, |m| m.max(s)));
            }
        }
        scan.last = Some((record.seq, hash, record.kind, record.time_ns));
        scan.end = at + super::format::FRAME_LEN + record.body.len();
        prev = hash;
    }
    Ok(scan)
}

/// The `session` of a payload, if it has one. Fast path for the writer's own layout
/// (`{"type":"…","session":N,…`), else a JSON parse.
pub(super) fn payload_session(kind: u8, payload: &[u8]) -> Option<u64> {
    let kind = Kind::from_u8(kind)?;
    if matches!(kind, Kind::GatewayStart | Kind::GatewayStop | Kind::Pruned) {
        return None;
    }
    let prefix = format!("{{\"type\":\"{}\",\"session\":", kind.name());
    if let Some(rest) = payload.strip_prefix(prefix.as_bytes()) {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && rest.get(digits).is_some_and(|b| matches!(b, b',' | b'}')) {
            if let Some(n) = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                return Some(n);
            }
        }
    }
    #[derive(serde::Deserialize)]
    struct S {
        session: Option<u64>,
    }
    serde_json::from_slice::<S>(payload).ok()?.session
}

/// Whether a readable record (valid frame and CRC) starts anywhere after `from`.
fn readable_record_after(bytes: &[u8], from: usize) -> Option<usize> {
    (from + 1..bytes.len()).find(|&p| decode_record(&bytes[p..]).is_ok())
}

/// The last record of a sealed segment (seq and hash), checking its chain.
fn segment_end(path: &Path) -> Result<(SegmentHeader, u64, Hash), RecordError> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let header =
        SegmentHeader::decode(&bytes).map_err(|e| damaged(path, format!("segment header: {e}")))?;
    let scan = scan_segment(&bytes, &header, false)
        .map_err(|(at, why)| damaged(path, format!("offset {at}: {why}")))?;
    if let Some((at, e)) = scan.error {
        return Err(damaged(path, format!("offset {at}: {e}")));
    }
    Ok(match scan.last {
        Some((seq, hash, _, _)) => (header, seq, hash),
        None => (header, header.first_seq - 1, header.prev_hash),
    })
}

/// Finds the end of the chain in `dir`, repairing a torn tail (see the module docs).
pub(super) fn recover(dir: &Path) -> Result<Recovered, RecordError> {
    let mut paths = segment_paths(dir).map_err(io_error(dir))?;
    let mut truncated_bytes = 0u64;

    // A segment being created when the gateway died: shorter than a header, or all zeros.
    if let Some((_, path)) = paths.last() {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        let partial_header = bytes.len() < HEADER_LEN
            && bytes[..bytes.len().min(MAGIC.len())] == MAGIC[..bytes.len().min(MAGIC.len())];
        if partial_header || bytes.iter().all(|&b| b == 0) {
            tracing::warn!(path = %path.display(), bytes = bytes.len(),
                "audit log: removing a segment whose creation did not complete");
            std::fs::remove_file(path).map_err(io_error(path))?;
            sync_dir(dir).map_err(io_error(dir))?;
            truncated_bytes += bytes.len() as u64;
            paths.pop();
        }
    }

    let Some((name_seq, path)) = paths.last().cloned() else {
        return Ok(Recovered {
            last: None,
            segments: 0,
            next_seq: 1,
            prev_hash: GENESIS,
            recovery: (truncated_bytes > 0).then_some(Recovery {
                last_seq: 0,
                truncated_bytes,
            }),
            last_session_id: 0,
        });
    };

    let bytes = std::fs::read(&path).map_err(io_error(&path))?;
    let header = SegmentHeader::decode(&bytes)
        .map_err(|e| damaged(&path, format!("segment header: {e}")))?;
    if header.first_seq != name_seq {
        return Err(damaged(
            &path,
            format!(
                "the header's first seq {} does not match the file name",
                header.first_seq
            ),
        ));
    }
    if paths.len() >= 2 {
        let prev_path = &paths[paths.len() - 2].1;
        let (prev_header, prev_seq, prev_hash) = segment_end(prev_path)?;
        if header.segment != prev_header.segment + 1
            || header.first_seq != prev_seq + 1
            || header.prev_hash != prev_hash
        {
            return Err(damaged(
                &path,
                format!(
                    "segment {} (first seq {}) does not continue segment {} (last seq {prev_seq})",
                    header.segment, header.first_seq, prev_header.segment
                ),
            ));
        }
    } else if header.first_seq == 1 && header.prev_hash != GENESIS {
        return Err(damaged(&path, "the first segment does not start the chain"));
    }

    let mut scan = scan_segment(&bytes, &header, true)
        .map_err(|(at, why)| damaged(&path, format!("offset {at}: {why}")))?;
    let mut len = bytes.len() as u64;
    if let Some((at, e)) = &scan.error {
        if let Some(p) = readable_record_after(&bytes, *at) {
            return Err(damaged(
                &path,
                format!("offset {at}: {e}, but a readable record follows at offset {p}"),
            ));
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        file.set_len(*at as u64).map_err(io_error(&path))?;
        file.sync_all().map_err(io_error(&path))?;
        tracing::warn!(path = %path.display(), offset = at, bytes = len - *at as u64, error = %e,
            "audit log: cut a torn record from the end of the last segment");
        truncated_bytes += len - *at as u64;
        len = *at as u64;
        scan.error = None;
    }
    let (next_seq, prev_hash, clean) = match scan.last {
        Some((seq, hash, kind, _)) => (seq + 1, hash, kind == Kind::GatewayStop as u8),
        None => (header.first_seq, header.prev_hash, false),
    };

    // The highest session id: the last segment that has any.
    let mut last_session_id = scan.max_session;
    if last_session_id.is_none() {
        for (_, p) in paths[..paths.len() - 1].iter().rev() {
            let Ok(b) = std::fs::read(p) else { continue };
            let mut max = None;
            for (_, r) in Records::new(&b) {
                let Ok(r) = r else { break };
                if let Some(s) = payload_session(r.kind, r.payload) {
                    max = Some(max.map_or(s, |m: u64| m.max(s)));
                }
            }
            if max.is_some() {
                last_session_id = max;
                break;
            }
        }
    }

    Ok(Recovered {
        last: Some(LastSegment { path, header, len }),
        segments: paths.len() as u64,
        next_seq,
        prev_hash,
        recovery: (!clean || truncated_bytes > 0).then_some(Recovery {
            last_seq: next_seq - 1,
            truncated_bytes,
        }),
        last_session_id: last_session_id.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::format::{encode_record, segment_file_name};
    use crate::record::recorder::testutil::{cfg, entry, offsets, records, write_log, TempDir};
    use crate::record::verify::verify;
    use crate::record::Recorder;

    fn last_segment(dir: &Path) -> PathBuf {
        segment_paths(dir).unwrap().pop().unwrap().1
    }

    fn append(path: &Path, bytes: &[u8]) {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    /// The `recovered` of the last `gateway_start`.
    fn last_recovered(dir: &Path) -> serde_json::Value {
        let all = records(dir);
        let start = all.iter().rev().find(|r| r.1 == "gateway_start").unwrap();
        start.2["recovered"].clone()
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported() {
        let dir = TempDir::new("torn");
        write_log(&dir.0, 100, 2048);
        let paths = segment_paths(&dir.0).unwrap().len();
        let seg = last_segment(&dir.0);
        let len = std::fs::metadata(&seg).unwrap().len();
        let mut rec = Vec::new();
        encode_record(
            &mut rec,
            103,
            0,
            &[7; 32],
            Kind::Statement,
            br#"{"type":"statement"}"#,
        );
        append(&seg, &rec[..rec.len() / 2]);
        let torn = (rec.len() / 2) as u64;
        assert!(verify(&dir.0, None).is_err());

        let r = Recorder::open_with_segment_bytes(&cfg(&dir.0), Vec::new(), 2048).unwrap();
        assert_eq!(r.last_session_id(), 10);
        r.close();
        let recovered = last_recovered(&dir.0);
        assert_eq!(recovered["last_seq"], 102);
        assert_eq!(recovered["truncated_bytes"], torn);
        let report = verify(&dir.0, None).unwrap();
        assert_eq!(report.records, 104);
        // The new records continue right where the torn one was cut (or in a new segment
        // when the last one was full).
        if segment_paths(&dir.0).unwrap().len() == paths {
            let at = offsets(&seg).into_iter().find(|r| r.2 == 103).unwrap().0;
            assert_eq!(at as u64, len);
        } else {
            assert!(len >= 2048);
        }
    }

    #[test]
    fn a_crash_without_gateway_stop_is_reported_and_zeros_are_cut() {
        let dir = TempDir::new("crash");
        std::fs::create_dir_all(&dir.0).unwrap();
        // A log written by hand: header, gateway_start, a statement; no gateway_stop.
        let mut seg = SegmentHeader {
            segment: 1,
            first_seq: 1,
            prev_hash: GENESIS,
        }
        .encode()
        .to_vec();
        let h = encode_record(
            &mut seg,
            1,
            1,
            &GENESIS,
            Kind::GatewayStart,
            br#"{"type":"gateway_start","version":"0","pid":1,"host":"h"}"#,
        );
        encode_record(&mut seg, 2, 2, &h, Kind::SessionEnd,
            br#"{"type":"session_end","session":41,"reason":"client_quit","statements":0,"refused":0,"rows":0,"bytes":0}"#);
        seg.extend_from_slice(&[0; 300]); // an extended file whose data never made it
        std::fs::write(dir.0.join(segment_file_name(1)), &seg).unwrap();
        let r = Recorder::open(&cfg(&dir.0), Vec::new()).unwrap();
        assert_eq!(r.last_session_id(), 41);
        r.close();
        let recovered = last_recovered(&dir.0);
        assert_eq!(recovered["last_seq"], 2);
        assert_eq!(recovered["truncated_bytes"], 300);
        assert_eq!(verify(&dir.0, None).unwrap().records, 4);
    }

    #[test]
    fn a_segment_whose_creation_did_not_complete_is_removed() {
        let dir = TempDir::new("half-created");
        write_log(&dir.0, 100, 2048);
        let before = verify(&dir.0, None).unwrap();
        let next = dir.0.join(segment_file_name(before.last_seq + 1));
        std::fs::write(&next, &MAGIC[..5]).unwrap();
        let r = Recorder::open_with_segment_bytes(&cfg(&dir.0), Vec::new(), 2048).unwrap();
        r.close();
        assert_eq!(last_recovered(&dir.0)["truncated_bytes"], 5);
        assert_eq!(verify(&dir.0, None).unwrap().records, before.records + 2);
    }

    #[test]
    fn damage_before_the_tail_refuses_to_open() {
        // A bad record in the middle of the last segment.
        let dir = TempDir::new("damaged");
        write_log(&dir.0, 100, 1 << 20);
        let seg = last_segment(&dir.0);
        let (at, len, _) = offsets(&seg)[50];
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[at + len - 2] ^= 1;
        std::fs::write(&seg, &bytes).unwrap();
        let err = Recorder::open(&cfg(&dir.0), Vec::new())
            .err()
            .expect("refused");
        let RecordError::Damaged { path, why } = &err else {
            panic!("{err}")
        };
        assert_eq!(path, &seg);
        assert!(why.contains(&format!("offset {at}")), "{why}");
        assert!(why.contains("gatehouse audit verify"), "{why}");
        // Nothing was appended.
        assert_eq!(std::fs::read(&seg).unwrap(), bytes);

        // A chain break between segments.
        let dir = TempDir::new("damaged-chain");
        write_log(&dir.0, 100, 2048);
        let paths = segment_paths(&dir.0).unwrap();
        std::fs::remove_file(&paths[paths.len() - 2].1).unwrap();
        assert!(matches!(
            Recorder::open_with_segment_bytes(&cfg(&dir.0), Vec::new(), 2048),
            Err(RecordError::Damaged { .. })
        ));
    }

    #[test]
    fn a_fresh_directory_starts_a_chain_and_sessions_number_from_zero() {
        let dir = TempDir::new("fresh");
        let r = Recorder::open(&cfg(&dir.0.join("sub")), Vec::new()).unwrap();
        assert_eq!(r.last_session_id(), 0);
        r.try_record(entry(0)).unwrap();
        r.close();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.0.join("sub"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(last_recovered(&dir.0.join("sub")).is_null());
        assert_eq!(verify(&dir.0.join("sub"), None).unwrap().records, 3);
    }

    #[test]
    fn session_ids_parse_fast_and_slow() {
        assert_eq!(
            payload_session(6, br#"{"type":"session_end","session":12,"x":1}"#),
            Some(12)
        );
        assert_eq!(
            payload_session(6, br#"{"session":13,"type":"session_end"}"#),
            Some(13)
        );
        assert_eq!(
            payload_session(1, br#"{"type":"gateway_start","session":13}"#),
            None
        );
        assert_eq!(payload_session(4, b"not json"), None);
    }
}
