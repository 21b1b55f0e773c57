//! `gatehouse audit verify`: checks every CRC and the whole hash chain of an audit log and
//! reports the first problem precisely (file, byte offset, seq, expected vs found).
//!
//! What is checked (the format is in [`super::format`] and `docs/audit-log.md`):
//! * segments, by first seq: each header (magic, version), its file name, segment numbers
//!   consecutive, and each header continuing the previous segment's last record exactly
//!   (first seq = last seq + 1, prev hash = that record's hash);
//! * every record: CRC-32C, seq = previous + 1, prev hash = BLAKE3 of the previous body, a
//!   known kind byte, a payload that is a JSON object whose `type` matches the kind;
//! * the start of the chain: seq 1 with a zero prev hash, or — after retention removed the
//!   oldest segments — a later seq, which the latest `pruned` record in the log must explain
//!   (its `through_seq` and `last_hash` are where the remaining chain starts).
//!
//! Memory is bounded by one segment (each is read whole, checked, and dropped).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::format::{
    segment_paths, FormatError, Hash, Kind, Records, SegmentHeader, FRAME_LEN, GENESIS,
};

/// What an intact log holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Segment files.
    pub segments: u64,
    /// Distinct session ids of `session_start` records.
    pub sessions: u64,
    /// The first record's seq (0 when the log holds no record).
    pub first_seq: u64,
    /// The last record's seq.
    pub last_seq: u64,
    /// The earliest record time (Unix ns).
    pub first_time_ns: Option<i64>,
    /// The latest record time (Unix ns).
    pub last_time_ns: Option<i64>,
    /// The hash of the last record: the chain head (ship it elsewhere to detect a rebuilt log).
    pub head_hash: Hash,
    /// The chain starts after seq 1 (older segments were removed by retention).
    pub starts_after_retention: bool,
    /// Bytes read.
    pub bytes: u64,
    /// The last record is `gateway_stop` (the gateway stopped cleanly).
    pub clean_stop: bool,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// The segment file's name, when the problem is in one.
    pub file: Option<String>,
    /// The byte offset in that file.
    pub offset: Option<u64>,
    /// The seq concerned (expected or found).
    pub seq: Option<u64>,
    /// What is wrong: expected vs found.
    pub problem: String,
    /// What was verified before the problem (`records` = 0: nothing).
    pub verified: Box<VerifyReport>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(offset) = self.offset {
                write!(f, " offset {offset}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for VerifyError {}

fn short(h: &Hash) -> String {
    hex::encode(&h[..8])
}

/// Verifies the log in `dir`. `progress` (if given) advances by the bytes of each segment.
pub fn verify(
    dir: &Path,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<VerifyReport, VerifyError> {
    Verifier::default().run(dir, progress)
}

/// A `pruned` record seen.
struct PrunedAt {
    through_seq: u64,
    last_hash: String,
    file: String,
    offset: u64,
    seq: u64,
}

#[derive(Default)]
struct Verifier {
    report: VerifyReport,
    sessions: HashSet<u64>,
    /// The last seq of each segment (and the seq before the chain's start) → hash.
    ends: HashMap<u64, Hash>,
    pruned: Option<PrunedAt>,
    chain_start: Option<(u64, Hash, String)>,
}

impl Verifier {
    fn fail(
        &self,
        file: Option<&str>,
        offset: Option<u64>,
        seq: Option<u64>,
        problem: String,
    ) -> VerifyError {
        VerifyError {
            file: file.map(str::to_owned),
            offset,
            seq,
            problem,
            verified: Box::new(self.report.clone()),
        }
    }

    fn run(
        mut self,
        dir: &Path,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<VerifyReport, VerifyError> {
        let paths = segment_paths(dir).map_err(|e| {
            self.fail(
                None,
                None,
                None,
                format!("cannot read {}: {e}", dir.display()),
            )
        })?;
        if paths.is_empty() {
            return Err(self.fail(
                None,
                None,
                None,
                format!("no audit segments (*.seg) in {}", dir.display()),
            ));
        }
        if let Some(p) = progress {
            let total: u64 = paths
                .iter()
                .filter_map(|(_, p)| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            p.set_length(total);
        }
        // (segment number, last seq, last hash, file name) of the previous segment.
        let mut prev: Option<(u64, u64, Hash, String)> = None;
        let count = paths.len();
        for (i, (name_seq, path)) in paths.into_iter().enumerate() {
            let is_last = i + 1 == count;
            let (segment, last_seq, last_hash, name) =
                self.segment(&path, name_seq, prev.as_ref(), is_last)?;
            if let Some(p) = progress {
                p.inc(std::fs::metadata(&path).map_or(0, |m| m.len()));
            }
            self.ends.insert(last_seq, last_hash);
            prev = Some((segment, last_seq, last_hash, name));
        }
        self.check_start()?;
        self.report.sessions = self.sessions.len() as u64;
        Ok(self.report)
    }

    /// Checks one segment; returns its number, last seq and hash, and file name.
    fn segment(
        &mut self,
        path: &PathBuf,
        name_seq: u64,
        prev: Option<&(u64, u64, Hash, String)>,
        is_last: bool,
    ) -> Result<(u64, u64, Hash, String), VerifyError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = Some(name.as_str());
        let bytes = std::fs::read(path)
            .map_err(|e| self.fail(file, None, None, format!("cannot read: {e}")))?;
        self.report.bytes += bytes.len() as u64;
        self.report.segments += 1;
        let header = SegmentHeader::decode(&bytes)
            .map_err(|e| self.fail(file, Some(0), None, format!("segment header: {e}")))?;
        if header.first_seq != name_seq {
            return Err(self.fail(
                file,
                Some(24),
                Some(header.first_seq),
                format!(
                    "the header says the segment starts at seq {}, its file name says {name_seq}",
                    header.first_seq
                ),
            ));
        }
        match prev {
            None => {
                if header.first_seq == 1 {
                    if header.prev_hash != GENESIS {
                        return Err(self.fail(
                            file,
                            Some(32),
                            Some(1),
                            format!(
                                "the log starts at seq 1 but the header's prev hash is {}…, \
                                 expected all zeros",
                                short(&header.prev_hash)
                            ),
                        ));
                    }
                    if header.segment != 1 {
                        return Err(self.fail(
                            file,
                            Some(16),
                            Some(1),
                            format!(
                                "the segment holding seq 1 is numbered {}, expected 1",
                                header.segment
                            ),
                        ));
                    }
                } else {
                    self.report.starts_after_retention = true;
                }
                self.ends.insert(header.first_seq - 1, header.prev_hash);
                self.chain_start = Some((header.first_seq, header.prev_hash, name.clone()));
            }
            Some((p_segment, p_last, p_hash, p_name)) => {
                if header.first_seq > p_last + 1 {
                    let missing = if header.first_seq == p_last + 2 {
                        format!("record {} is missing", p_last + 1)
                    } else {
                        format!(
                            "records {}..{} are missing",
                            p_last + 1,
                            header.first_seq - 1
                        )
                    };
                    return Err(self.fail(
                        file,
                        Some(24),
                        Some(header.first_seq),
                        format!(
                            "segment {} starts at seq {} but {p_name} (segment {p_segment}) \
                             ends at seq {p_last}: {missing} (a segment was removed or cut?)",
                            header.segment, header.first_seq
                        ),
                    ));
                }
                if header.first_seq <= *p_last {
                    return Err(self.fail(
                        file,
                        Some(24),
                        Some(header.first_seq),
                        format!(
                            "segment {} starts at seq {} but {p_name} already ends at seq \
                             {p_last} (overlapping segments)",
                            header.segment, header.first_seq
                        ),
                    ));
                }
                if header.segment != p_segment + 1 {
                    return Err(self.fail(
                        file,
                        Some(16),
                        Some(header.first_seq),
                        format!(
                            "segment number {} follows segment {p_segment} ({p_name}), \
                             expected {}",
                            header.segment,
                            p_segment + 1
                        ),
                    ));
                }
                if header.prev_hash != *p_hash {
                    return Err(self.fail(
                        file,
                        Some(32),
                        Some(header.first_seq),
                        format!(
                            "the header's prev hash {}… is not the hash of seq {p_last}, the \
                             last record of {p_name} ({}…): the chain is broken between \
                             segments",
                            short(&header.prev_hash),
                            short(p_hash)
                        ),
                    ));
                }
            }
        }

        let mut expected = header.first_seq;
        let mut prev_hash = header.prev_hash;
        for (at, record) in Records::new(&bytes) {
            let at64 = at as u64;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let problem = match e {
                        FormatError::Truncated { needed, available } => format!(
                            "truncated record at offset {at} (seq {expected} expected): needs \
                             {needed} bytes, {available} remain{}",
                            if is_last {
                                " (a torn write at the end of the last segment: the gateway \
                                 cuts it when it next starts)"
                            } else {
                                " (the segment was cut)"
                            }
                        ),
                        other => format!("record seq {expected} (expected here): {other}"),
                    };
                    return Err(self.fail(file, Some(at64), Some(expected), problem));
                }
            };
            if record.seq != expected {
                let problem = if record.seq > expected {
                    let missing = if record.seq == expected + 1 {
                        format!("record {expected} is missing")
                    } else {
                        format!("records {expected}..{} are missing", record.seq - 1)
                    };
                    format!(
                        "record seq {} follows seq {}: {missing}",
                        record.seq,
                        expected - 1
                    )
                } else {
                    format!(
                        "record seq {} where seq {expected} was expected (a record repeated \
                         or out of order)",
                        record.seq
                    )
                };
                return Err(self.fail(file, Some(at64), Some(record.seq), problem));
            }
            if record.prev_hash != prev_hash {
                let problem = if expected == header.first_seq {
                    format!(
                        "record seq {}: its prev hash {}… does not match the segment header's \
                         prev hash {}…",
                        record.seq,
                        short(&record.prev_hash),
                        short(&prev_hash)
                    )
                } else {
                    format!(
                        "record seq {}: its prev hash {}… is not the hash of record {} ({}…): \
                         the chain is broken — record {} was altered (and its CRC recomputed) \
                         or replaced",
                        record.seq,
                        short(&record.prev_hash),
                        record.seq - 1,
                        short(&prev_hash),
                        record.seq - 1
                    )
                };
                return Err(self.fail(file, Some(at64 + 24), Some(record.seq), problem));
            }
            let Some(kind) = Kind::from_u8(record.kind) else {
                return Err(self.fail(
                    file,
                    Some(at64 + FRAME_LEN as u64 + 48),
                    Some(record.seq),
                    format!(
                        "record seq {}: unknown kind byte {}",
                        record.seq, record.kind
                    ),
                ));
            };
            let payload_at = Some(at64 + (FRAME_LEN + super::format::BODY_FIXED_LEN) as u64);
            let json: serde_json::Value = serde_json::from_slice(record.payload).map_err(|e| {
                self.fail(
                    file,
                    payload_at,
                    Some(record.seq),
                    format!("record seq {}: the payload is not JSON: {e}", record.seq),
                )
            })?;
            let ty = json.get("type").and_then(|t| t.as_str());
            if ty != Some(kind.name()) {
                return Err(self.fail(
                    file,
                    payload_at,
                    Some(record.seq),
                    format!(
                        "record seq {}: kind byte says {}, the payload's type is {}",
                        record.seq,
                        kind.name(),
                        ty.map_or_else(|| "missing".to_owned(), |t| format!("{t:?}"))
                    ),
                ));
            }
            match kind {
                Kind::SessionStart => {
                    if let Some(s) = json.get("session").and_then(|s| s.as_u64()) {
                        self.sessions.insert(s);
                    }
                }
                Kind::Pruned => {
                    let through = json.get("through_seq").and_then(|s| s.as_u64());
                    let hash = json.get("last_hash").and_then(|s| s.as_str());
                    let (Some(through_seq), Some(last_hash)) = (through, hash) else {
                        return Err(self.fail(
                            file,
                            payload_at,
                            Some(record.seq),
                            format!(
                                "record seq {}: pruned record without through_seq/last_hash",
                                record.seq
                            ),
                        ));
                    };
                    if self
                        .pruned
                        .as_ref()
                        .is_none_or(|p| through_seq >= p.through_seq)
                    {
                        self.pruned = Some(PrunedAt {
                            through_seq,
                            last_hash: last_hash.to_owned(),
                            file: name.clone(),
                            offset: at64,
                            seq: record.seq,
                        });
                    }
                }
                _ => {}
            }
            let hash = record.hash();
            let r = &mut self.report;
            if r.records == 0 {
                r.first_seq = record.seq;
            }
            r.records += 1;
            r.last_seq = record.seq;
            r.head_hash = hash;
            r.clean_stop = kind == Kind::GatewayStop;
            r.first_time_ns = Some(
                r.first_time_ns
                    .map_or(record.time_ns, |t| t.min(record.time_ns)),
            );
            r.last_time_ns = Some(
                r.last_time_ns
                    .map_or(record.time_ns, |t| t.max(record.time_ns)),
            );
            expected += 1;
            prev_hash = hash;
        }
        if self.report.records == 0 {
            self.report.head_hash = prev_hash;
        }
        Ok((header.segment, expected - 1, prev_hash, name))
    }

    /// The chain's start against the latest `pruned` record.
    fn check_start(&self) -> Result<(), VerifyError> {
        let (Some(p), Some((start, start_hash, start_file))) = (&self.pruned, &self.chain_start)
        else {
            return Ok(());
        };
        let at = |problem: String| self.fail(Some(&p.file), Some(p.offset), Some(p.seq), problem);
        if p.through_seq + 1 < *start {
            return Err(at(format!(
                "the pruned record (seq {}) says segments were removed through seq {}, but \
                 the log starts at seq {start} ({start_file}): records {}..{} are missing",
                p.seq,
                p.through_seq,
                p.through_seq + 1,
                start - 1
            )));
        }
        let found = if p.through_seq + 1 == *start {
            Some(*start_hash)
        } else {
            self.ends.get(&p.through_seq).copied()
        };
        match found {
            Some(h) if hex::encode(h) == p.last_hash.to_ascii_lowercase() => Ok(()),
            Some(h) => Err(at(format!(
                "the pruned record (seq {}) says the chain continues from hash {}… at seq {}, \
                 but the log has {}…",
                p.seq,
                p.last_hash.get(..16).unwrap_or(&p.last_hash),
                p.through_seq,
                short(&h)
            ))),
            None => Err(at(format!(
                "the pruned record (seq {}) says segments through seq {} were removed, but \
                 seq {} is not the end of a segment in the log",
                p.seq, p.through_seq, p.through_seq
            ))),
        }
    }
}

/// `gatehouse audit verify DIR`.
pub fn main_verify(dir: &Path) -> ExitCode {
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "verifying {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let result = verify(dir, Some(&bar));
    bar.finish_and_clear();
    match result {
        Ok(r) => {
            println!("audit log {}: intact", dir.display());
            print!("{}", describe(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("audit log {}: BROKEN", dir.display());
            println!("  first problem: {e}");
            let v = &e.verified;
            if v.records > 0 {
                println!(
                    "  verified before it: {} records (seq {}..{}), last good hash {}",
                    v.records,
                    v.first_seq,
                    v.last_seq,
                    hex::encode(v.head_hash)
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// The summary of an intact log.
pub fn describe(r: &VerifyReport) -> String {
    let mut s = String::new();
    if r.records == 0 {
        s += "  records:    0\n";
    } else {
        s += &format!(
            "  records:    {} (seq {}..{})\n",
            r.records, r.first_seq, r.last_seq
        );
    }
    s += &format!("  segments:   {} ({} bytes)\n", r.segments, r.bytes);
    s += &format!("  sessions:   {}\n", r.sessions);
    if let (Some(a), Some(b)) = (r.first_time_ns, r.last_time_ns) {
        s += &format!(
            "  time:       {} .. {} ({})\n",
            utc(a),
            utc(b),
            span(b.saturating_sub(a))
        );
    }
    s += &format!(
        "  chain head: seq {} hash {}\n",
        r.last_seq,
        hex::encode(r.head_hash)
    );
    if r.starts_after_retention {
        s += &format!(
            "  note:       chain starts at seq {} (earlier segments removed by retention)\n",
            r.first_seq
        );
    }
    s += if r.clean_stop {
        "  last:       gateway_stop (stopped cleanly)\n"
    } else {
        "  last:       not gateway_stop (the gateway is running, or did not stop cleanly)\n"
    };
    s
}

/// Unix ns as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let millis = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn span(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0 => format!("{} ms", ns / 1_000_000),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_709_210_096_123_000_000), "2024-02-29T12:34:56.123Z");
        assert_eq!(span(90 * 1_000_000_000), "1m 30s");
    }
}

#[cfg(test)]
mod tamper_tests {
    use super::*;
    use crate::record::format::{encode_record, segment_paths, Kind};
    use crate::record::recorder::testutil::{offsets, write_log, TempDir};

    /// A log of 300 entries in ~2 KiB segments; its segment paths.
    fn log(name: &str) -> (TempDir, Vec<PathBuf>) {
        let dir = TempDir::new(name);
        write_log(&dir.0, 300, 2048);
        verify(&dir.0, None).expect("intact before tampering");
        let paths = segment_paths(&dir.0)
            .unwrap()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        (dir, paths)
    }

    fn file_name(p: &Path) -> String {
        p.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn an_intact_log_reports_counts_and_head() {
        let (dir, paths) = log("intact");
        let r = verify(&dir.0, None).unwrap();
        assert_eq!(r.records, 302);
        assert_eq!(r.segments as usize, paths.len());
        assert_eq!(r.sessions, 30);
        let last = offsets(paths.last().unwrap());
        let bytes = std::fs::read(paths.last().unwrap()).unwrap();
        let (at, len, seq) = *last.last().unwrap();
        assert_eq!(seq, 302);
        assert_eq!(
            r.head_hash,
            *blake3::hash(&bytes[at + FRAME_LEN..at + len]).as_bytes()
        );
        let text = describe(&r);
        assert!(text.contains("records:    302 (seq 1..302)"), "{text}");
    }

    #[test]
    fn a_flipped_byte_is_a_crc_mismatch_at_its_offset() {
        let (dir, paths) = log("flip");
        let seg = &paths[1];
        let (at, len, seq) = offsets(seg)[2];
        let mut bytes = std::fs::read(seg).unwrap();
        bytes[at + len - 3] ^= 0x20;
        std::fs::write(seg, &bytes).unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(file_name(seg).as_str()));
        assert_eq!(e.offset, Some(at as u64));
        assert_eq!(e.seq, Some(seq));
        assert!(e.problem.contains("CRC mismatch"), "{e}");
        assert_eq!(e.verified.last_seq, seq - 1);
        assert!(
            e.to_string()
                .starts_with(&format!("{} offset {at}: record seq {seq}", file_name(seg))),
            "{e}"
        );
    }

    #[test]
    fn a_deleted_record_is_reported_missing() {
        let (dir, paths) = log("delete");
        let seg = &paths[2];
        let (at, len, seq) = offsets(seg)[3];
        let mut bytes = std::fs::read(seg).unwrap();
        bytes.drain(at..at + len);
        std::fs::write(seg, &bytes).unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert_eq!(e.offset, Some(at as u64));
        assert_eq!(e.seq, Some(seq + 1));
        assert!(
            e.problem.contains(&format!(
                "record seq {} follows seq {}: record {seq} is missing",
                seq + 1,
                seq - 1
            )),
            "{e}"
        );
    }

    #[test]
    fn truncated_segments_are_reported() {
        // A non-last segment cut inside its last record.
        let (dir, paths) = log("cut-middle");
        let seg = &paths[1];
        let len = std::fs::metadata(seg).unwrap().len();
        let last = *offsets(seg).last().unwrap();
        std::fs::File::options()
            .write(true)
            .open(seg)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert_eq!(e.offset, Some(last.0 as u64));
        assert!(e.problem.contains("truncated record"), "{e}");
        assert!(
            e.problem
                .contains(&format!("needs {} bytes, {} remain", last.1, last.1 - 5)),
            "{e}"
        );
        assert!(e.problem.contains("the segment was cut"), "{e}");

        // A non-last segment cut at a record boundary: the next segment does not continue it.
        let (dir, paths) = log("cut-boundary");
        let seg = &paths[1];
        let last = *offsets(seg).last().unwrap();
        std::fs::File::options()
            .write(true)
            .open(seg)
            .unwrap()
            .set_len(last.0 as u64)
            .unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(file_name(&paths[2]).as_str()));
        assert!(
            e.problem.contains(&format!("record {} is missing", last.2)),
            "{e}"
        );

        // The last segment cut: a torn tail.
        let (dir, paths) = log("cut-last");
        let seg = paths.last().unwrap();
        let len = std::fs::metadata(seg).unwrap().len();
        std::fs::File::options()
            .write(true)
            .open(seg)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert!(
            e.problem
                .contains("torn write at the end of the last segment"),
            "{e}"
        );
    }

    #[test]
    fn a_deleted_middle_segment_is_reported() {
        let (dir, paths) = log("gap");
        let removed = offsets(&paths[2]);
        std::fs::remove_file(&paths[2]).unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert_eq!(e.file.as_deref(), Some(file_name(&paths[3]).as_str()));
        let (first, last) = (removed[0].2, removed.last().unwrap().2);
        assert!(
            e.problem
                .contains(&format!("records {first}..{last} are missing")),
            "{e}"
        );
    }

    #[test]
    fn a_forged_record_with_a_recomputed_crc_breaks_the_chain_at_the_next() {
        let (dir, paths) = log("forge");
        let seg = &paths[1];
        let (at, len, seq) = offsets(seg)[1];
        let mut bytes = std::fs::read(seg).unwrap();
        let (r, _) = crate::record::format::decode_record(&bytes[at..]).unwrap();
        let forged_payload = String::from_utf8(r.payload.to_vec())
            .unwrap()
            .replace("client_quit", "killed_by_admin_x");
        assert_ne!(forged_payload.as_bytes(), r.payload);
        let mut forged = Vec::new();
        encode_record(
            &mut forged,
            r.seq,
            r.time_ns,
            &r.prev_hash,
            Kind::from_u8(r.kind).unwrap(),
            forged_payload.as_bytes(),
        );
        bytes.splice(at..at + len, forged);
        std::fs::write(seg, &bytes).unwrap();
        let e = verify(&dir.0, None).unwrap_err();
        assert_eq!(e.seq, Some(seq + 1));
        assert!(
            e.problem
                .contains(&format!("is not the hash of record {seq}")),
            "{e}"
        );
    }

    #[test]
    fn a_log_starting_after_retention_is_accepted_with_a_note() {
        let (dir, paths) = log("retained");
        std::fs::remove_file(&paths[0]).unwrap();
        let r = verify(&dir.0, None).unwrap();
        assert!(r.starts_after_retention);
        assert!(describe(&r).contains(&format!("chain starts at seq {}", r.first_seq)));
        assert!(r.first_seq > 1);
        // But not seq 1 with another prev hash.
        let empty = TempDir::new("empty");
        assert!(verify(&empty.0, None)
            .unwrap_err()
            .problem
            .contains("no audit segments"));
    }
}
