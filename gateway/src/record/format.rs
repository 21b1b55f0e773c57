//! The audit log's on-disk format: segments of length-prefixed, CRC-checked, hash-chained
//! records. This module is the whole format; `docs/audit-log.md` describes the same thing for
//! auditors who write their own verifier.
//!
//! ```text
//! log directory := segment* status.json index.sqlite
//! segment file  := <first seq, 20 digits>.seg  =  header record*
//! header  (64 B) := magic "GHAUDIT1" | version u32 = 1 | reserved u32 = 0
//!                   | segment number u64 | first seq u64 | prev hash [32]
//! record         := body length u32 | CRC-32C(body) u32 | body
//! body           := seq u64 | time (unix ns) i64 | prev hash [32] | kind u8 | payload (JSON)
//! hash(record)   := BLAKE3(body)
//! ```
//! All integers are little endian. Within a segment each record's `seq` is the previous one's
//! plus one and its `prev hash` is the previous record's hash; the first record's are the
//! header's `first seq` and `prev hash`, which continue the previous segment (its last record's
//! seq + 1 and hash). The very first segment of a log has prev hash all zeros. Segments are
//! numbered from 1 without gaps, except that retention removes the oldest ones (recorded in the
//! log by a `pruned` record).

use std::fmt;

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"GHAUDIT1";
/// The format version written.
pub const VERSION: u32 = 1;
/// Size of a segment header.
pub const HEADER_LEN: usize = 64;
/// Length prefix + CRC before each body.
pub const FRAME_LEN: usize = 8;
/// Fixed part of a body before the payload.
pub const BODY_FIXED_LEN: usize = 8 + 8 + 32 + 1;
/// Largest body accepted when reading (a record is never this big; a larger length means the
/// file is damaged, not that a huge record follows).
pub const MAX_BODY_LEN: usize = 256 << 20;
/// Extension of segment files.
pub const SEGMENT_EXT: &str = "seg";

/// A BLAKE3 hash of a record body.
pub type Hash = [u8; 32];

/// The hash that starts a log.
pub const GENESIS: Hash = [0; 32];

/// What a record is about (the payload's `type`, as one byte so readers can skip payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The gateway started (and, after a crash, what recovery did).
    GatewayStart = 1,
    /// The gateway stopped cleanly.
    GatewayStop = 2,
    /// A client logged in (or switched identity with COM_CHANGE_USER).
    SessionStart = 3,
    /// A command was received and decided (before anything was forwarded).
    Statement = 4,
    /// A forwarded command's response ended.
    Result = 5,
    /// A session ended.
    SessionEnd = 6,
    /// Retention removed old segments.
    Pruned = 7,
    /// A command is held for human approval.
    Approval = 8,
}

impl Kind {
    /// The kind for a byte, if known.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::GatewayStart,
            2 => Kind::GatewayStop,
            3 => Kind::SessionStart,
            4 => Kind::Statement,
            5 => Kind::Result,
            6 => Kind::SessionEnd,
            7 => Kind::Pruned,
            8 => Kind::Approval,
            _ => return None,
        })
    }

    /// The payload's `type` for this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::GatewayStart => "gateway_start",
            Kind::GatewayStop => "gateway_stop",
            Kind::SessionStart => "session_start",
            Kind::Statement => "statement",
            Kind::Result => "result",
            Kind::SessionEnd => "session_end",
            Kind::Pruned => "pruned",
            Kind::Approval => "approval",
        }
    }
}

/// A segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// 1, 2, 3… in the order segments were written.
    pub segment: u64,
    /// The seq of the segment's first record.
    pub first_seq: u64,
    /// The hash of the record before the first one (the previous segment's last).
    pub prev_hash: Hash,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.segment.to_le_bytes());
        out[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        out[32..64].copy_from_slice(&self.prev_hash);
        out
    }

    /// Parses a header.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, FormatError> {
        if bytes.len() < HEADER_LEN {
            return Err(FormatError::ShortHeader(bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(FormatError::UnknownVersion(version));
        }
        Ok(SegmentHeader {
            segment: u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")),
            first_seq: u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")),
            prev_hash: bytes[32..64].try_into().expect("32 bytes"),
        })
    }
}

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{SEGMENT_EXT}")
}

/// The segment files in `dir`, by first seq (the order they were written), with their paths.
/// Files that are not named like segments are ignored.
pub fn segment_paths(dir: &std::path::Path) -> std::io::Result<Vec<(u64, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
            continue;
        }
        let Some(first) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((first, path));
    }
    out.sort();
    Ok(out)
}

/// Appends one whole record (frame and body) to `out`; returns the record's hash.
pub fn encode_record(
    out: &mut Vec<u8>,
    seq: u64,
    time_ns: i64,
    prev_hash: &Hash,
    kind: Kind,
    payload: &[u8],
) -> Hash {
    let start = out.len();
    let body_len = BODY_FIXED_LEN + payload.len();
    out.reserve(FRAME_LEN + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&time_ns.to_le_bytes());
    out.extend_from_slice(prev_hash);
    out.push(kind as u8);
    out.extend_from_slice(payload);
    let body = &out[body_at..];
    let crc = crc32c::crc32c(body);
    let hash = *blake3::hash(body).as_bytes();
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    hash
}

/// One record, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Position in the log (1, 2, 3…).
    pub seq: u64,
    /// When the event happened, in nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The previous record's hash.
    pub prev_hash: Hash,
    /// The kind byte (see [`Kind::from_u8`]; unknown kinds are readable, not understood).
    pub kind: u8,
    /// The JSON payload.
    pub payload: &'a [u8],
    /// The whole body (what the CRC and the hash cover).
    pub body: &'a [u8],
}

impl RecordRef<'_> {
    /// The record's hash (BLAKE3 of its body).
    pub fn hash(&self) -> Hash {
        *blake3::hash(self.body).as_bytes()
    }
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The file is shorter than a header.
    ShortHeader(usize),
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// A header version this reader does not know.
    UnknownVersion(u32),
    /// The bytes end inside a record (a torn write at the end of a segment).
    Truncated {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The length prefix is impossible.
    BadLength(usize),
    /// The body does not match its CRC.
    BadCrc {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::ShortHeader(n) => write!(f, "segment header is {n} bytes, expected 64"),
            FormatError::BadMagic => write!(f, "not a Gatehouse audit segment (bad magic)"),
            FormatError::UnknownVersion(v) => write!(f, "unknown segment format version {v}"),
            FormatError::Truncated { needed, available } => write!(
                f,
                "record truncated: needs {needed} bytes, {available} remain in the segment"
            ),
            FormatError::BadLength(n) => write!(f, "impossible record length {n}"),
            FormatError::BadCrc { stored, computed } => write!(
                f,
                "CRC mismatch: stored {stored:08x}, computed {computed:08x}"
            ),
        }
    }
}

impl std::error::Error for FormatError {}

/// Reads the record at the start of `bytes`; returns it and its whole length (frame + body).
pub fn decode_record(bytes: &[u8]) -> Result<(RecordRef<'_>, usize), FormatError> {
    if bytes.len() < FRAME_LEN {
        return Err(FormatError::Truncated {
            needed: FRAME_LEN,
            available: bytes.len(),
        });
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    if !(BODY_FIXED_LEN..=MAX_BODY_LEN).contains(&len) {
        return Err(FormatError::BadLength(len));
    }
    let total = FRAME_LEN + len;
    if bytes.len() < total {
        return Err(FormatError::Truncated {
            needed: total,
            available: bytes.len(),
        });
    }
    let stored = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    let body = &bytes[FRAME_LEN..total];
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(FormatError::BadCrc { stored, computed });
    }
    Ok((
        RecordRef {
            seq: u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
            time_ns: i64::from_le_bytes(body[8..16].try_into().expect("8 bytes")),
            prev_hash: body[16..48].try_into().expect("32 bytes"),
            kind: body[48],
            payload: &body[BODY_FIXED_LEN..],
            body,
        },
        total,
    ))
}

/// Iterates over the records of a segment's bytes (after its header), stopping at the first
/// error, which it yields with the offset (from the start of the segment file) it occurred at.
pub struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    /// Records of a whole segment file's bytes (header included: it is skipped).
    pub fn new(segment: &'a [u8]) -> Records<'a> {
        Records {
            bytes: segment,
            at: HEADER_LEN.min(segment.len()),
            failed: false,
        }
    }

    /// Records starting at `offset` of the segment file's bytes.
    pub fn from_offset(segment: &'a [u8], offset: usize) -> Records<'a> {
        Records {
            bytes: segment,
            at: offset.min(segment.len()),
            failed: false,
        }
    }

    /// The offset of the next record.
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for Records<'a> {
    /// `(offset of the record, the record)` or `(offset, why it is not readable)`.
    type Item = (usize, Result<RecordRef<'a>, FormatError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.bytes.len() {
            return None;
        }
        let at = self.at;
        match decode_record(&self.bytes[at..]) {
            Ok((record, len)) => {
                self.at += len;
                Some((at, Ok(record)))
            }
            Err(e) => {
                self.failed = true;
                Some((at, Err(e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_chain() {
        let mut seg = SegmentHeader {
            segment: 1,
            first_seq: 1,
            prev_hash: GENESIS,
        }
        .encode()
        .to_vec();
        let h1 = encode_record(&mut seg, 1, 10, &GENESIS, Kind::GatewayStart, b"{}");
        let h2 = encode_record(&mut seg, 2, 11, &h1, Kind::Statement, b"{\"a\":1}");
        let header = SegmentHeader::decode(&seg).unwrap();
        assert_eq!(header.first_seq, 1);
        let records: Vec<_> = Records::new(&seg).map(|(_, r)| r.unwrap()).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].hash(), h1);
        assert_eq!(records[1].prev_hash, h1);
        assert_eq!(records[1].hash(), h2);
        assert_eq!(records[1].payload, b"{\"a\":1}");
        assert_eq!(Kind::from_u8(records[1].kind), Some(Kind::Statement));
    }

    #[test]
    fn a_flipped_byte_fails_the_crc_and_a_cut_record_is_truncated() {
        let mut seg = SegmentHeader {
            segment: 1,
            first_seq: 1,
            prev_hash: GENESIS,
        }
        .encode()
        .to_vec();
        encode_record(&mut seg, 1, 10, &GENESIS, Kind::GatewayStart, b"{\"x\":2}");
        let mut flipped = seg.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let (at, r) = Records::new(&flipped).next().unwrap();
        assert_eq!(at, HEADER_LEN);
        assert!(matches!(r, Err(FormatError::BadCrc { .. })));
        let cut = &seg[..seg.len() - 3];
        let (_, r) = Records::new(cut).next().unwrap();
        assert!(matches!(r, Err(FormatError::Truncated { .. })));
    }
}
