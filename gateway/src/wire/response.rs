//! Generic responses: OK, ERR and EOF.
//!
//! ```text
//! OK  := 0x00|0xFE affected_rows<lenenc> last_insert_id<lenenc> status:u16 warnings:u16
//!        [info<lenenc> [session_state<lenenc>]]   (with CLIENT_SESSION_TRACK)
//!        | info<EOF>                             (without)
//! ERR := 0xFF code:u16 ['#' sqlstate[5]] message<EOF>
//! EOF := 0xFE warnings:u16 status:u16            (payload < 9 bytes)
//! ```
//! With `CLIENT_DEPRECATE_EOF` the end of a result set is an OK packet with header 0xFE; it is
//! told apart from a row by its length (below 0xFFFFFF: a text row starting with 0xFE would need
//! an 8-byte length prefix, i.e. a continued packet).

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u8};

use super::codec::{lenenc_bytes, lenenc_int, parse_all, put_lenenc_bytes, put_lenenc_int};
use super::consts::{CapabilityFlags, ErrorCode, StatusFlags, MAX_FRAME_PAYLOAD};
use super::Error;

/// Header byte of an OK packet.
pub const OK_HEADER: u8 = 0x00;
/// Header byte of an EOF packet (and of OK packets ending result sets with DEPRECATE_EOF).
pub const EOF_HEADER: u8 = 0xFE;
/// Header byte of an ERR packet.
pub const ERR_HEADER: u8 = 0xFF;
/// Header byte of a LOCAL INFILE request.
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// An OK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkPacket<'a> {
    /// Header byte: 0x00, or 0xFE when it stands for an EOF.
    pub header: u8,
    /// Rows affected.
    pub affected_rows: u64,
    /// Last AUTO_INCREMENT id.
    pub last_insert_id: u64,
    /// Server status.
    pub status: StatusFlags,
    /// Warning count.
    pub warnings: u16,
    /// Human-readable info.
    pub info: &'a [u8],
    /// Session state changes (raw), when `SERVER_SESSION_STATE_CHANGED` is set.
    pub session_state: Option<&'a [u8]>,
}

/// Parses an OK packet (header 0x00 or 0xFE) as laid out for the given capabilities.
pub fn parse_ok(payload: &[u8], caps: CapabilityFlags) -> Result<OkPacket<'_>, Error> {
    parse_all("OK packet", payload, |input: &[u8]| {
        let (input, header) = le_u8(input)?;
        let (input, affected_rows) = lenenc_int(input)?;
        let (input, last_insert_id) = lenenc_int(input)?;
        let (input, status) = le_u16(input)?;
        let (input, warnings) = le_u16(input)?;
        let status = StatusFlags::from_bits_retain(status);
        let (input, info, session_state) = if caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
            if input.is_empty() {
                (input, &input[..0], None)
            } else {
                let (input, info) = lenenc_bytes(input)?;
                if status.contains(StatusFlags::SERVER_SESSION_STATE_CHANGED) && !input.is_empty() {
                    let (input, st) = lenenc_bytes(input)?;
                    (input, info, Some(st))
                } else {
                    (input, info, None)
                }
            }
        } else {
            (&input[input.len()..], input, None)
        };
        Ok((
            input,
            OkPacket {
                header,
                affected_rows,
                last_insert_id,
                status,
                warnings,
                info,
                session_state,
            },
        ))
    })
}

/// Appends an OK packet payload for the given capabilities.
pub fn encode_ok(out: &mut Vec<u8>, ok: &OkPacket<'_>, caps: CapabilityFlags) {
    out.push(ok.header);
    put_lenenc_int(out, ok.affected_rows);
    put_lenenc_int(out, ok.last_insert_id);
    out.extend_from_slice(&ok.status.bits().to_le_bytes());
    out.extend_from_slice(&ok.warnings.to_le_bytes());
    if caps.contains(CapabilityFlags::CLIENT_SESSION_TRACK) {
        if !ok.info.is_empty() || ok.session_state.is_some() {
            put_lenenc_bytes(out, ok.info);
        }
        if let Some(st) = ok.session_state {
            put_lenenc_bytes(out, st);
        }
    } else {
        out.extend_from_slice(ok.info);
    }
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    /// Error number.
    pub code: u16,
    /// SQLSTATE (five bytes), absent in pre-4.1 style errors.
    pub sqlstate: Option<&'a [u8]>,
    /// Message.
    pub message: &'a [u8],
}

/// Parses an ERR packet.
pub fn parse_err(payload: &[u8]) -> Result<ErrPacket<'_>, Error> {
    parse_all("ERR packet", payload, |input: &[u8]| {
        let (input, _) = nom::bytes::complete::tag(&[ERR_HEADER][..])(input)?;
        let (input, code) = le_u16(input)?;
        let (input, sqlstate) = if input.first() == Some(&b'#') && input.len() >= 6 {
            let (i, s) = take(6usize)(input)?;
            (i, Some(&s[1..]))
        } else {
            (input, None)
        };
        Ok((
            &input[input.len()..],
            ErrPacket {
                code,
                sqlstate,
                message: input,
            },
        ))
    })
}

/// Appends an ERR packet payload.
pub fn encode_err(out: &mut Vec<u8>, err: &ErrPacket<'_>) {
    out.push(ERR_HEADER);
    out.extend_from_slice(&err.code.to_le_bytes());
    if let Some(s) = err.sqlstate {
        out.push(b'#');
        out.extend_from_slice(s);
    }
    out.extend_from_slice(err.message);
}

/// Appends the ERR payload for one of the gateway's own error codes.
pub fn encode_gateway_err(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    encode_err(
        out,
        &ErrPacket {
            code: code.code,
            sqlstate: Some(code.sqlstate.as_bytes()),
            message: message.as_bytes(),
        },
    );
}

/// An EOF packet (without DEPRECATE_EOF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    /// Warning count.
    pub warnings: u16,
    /// Server status.
    pub status: StatusFlags,
}

/// Parses an EOF packet.
pub fn parse_eof(payload: &[u8]) -> Result<EofPacket, Error> {
    parse_all("EOF packet", payload, |input: &[u8]| {
        let (input, _) = nom::bytes::complete::tag(&[EOF_HEADER][..])(input)?;
        if input.is_empty() {
            // Pre-4.1 EOF: just the header.
            return Ok((input, EofPacket::default()));
        }
        let (input, warnings) = le_u16(input)?;
        let (input, status) = le_u16(input)?;
        Ok((
            input,
            EofPacket {
                warnings,
                status: StatusFlags::from_bits_retain(status),
            },
        ))
    })
}

/// Appends an EOF packet payload.
pub fn encode_eof(out: &mut Vec<u8>, eof: &EofPacket) {
    out.push(EOF_HEADER);
    out.extend_from_slice(&eof.warnings.to_le_bytes());
    out.extend_from_slice(&eof.status.bits().to_le_bytes());
}

/// Whether a packet that starts with 0xFE ends a result set (an EOF, or an OK standing in for
/// one under DEPRECATE_EOF) rather than being a row. `payload_len` is the logical length.
pub fn is_result_terminator(payload: &[u8], deprecate_eof: bool) -> bool {
    payload.first() == Some(&EOF_HEADER)
        && if deprecate_eof {
            payload.len() < MAX_FRAME_PAYLOAD
        } else {
            payload.len() < 9
        }
}

/// The status flags and warnings of a result-set terminator (EOF or 0xFE-OK).
pub fn terminator_status(
    payload: &[u8],
    caps: CapabilityFlags,
) -> Result<(StatusFlags, u16), Error> {
    if caps.contains(CapabilityFlags::CLIENT_DEPRECATE_EOF) {
        let ok = parse_ok(payload, caps)?;
        Ok((ok.status, ok.warnings))
    } else {
        let eof = parse_eof(payload)?;
        Ok((eof.status, eof.warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ok_round_trip(affected: u64, id: u64, status: u16, warnings: u16, info in proptest::collection::vec(any::<u8>(), 0..40), state in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), track: bool) {
            let caps = if track { CapabilityFlags::CLIENT_SESSION_TRACK } else { CapabilityFlags::empty() };
            let mut status = StatusFlags::from_bits_retain(status);
            let state = if track { state } else { None };
            status.set(StatusFlags::SERVER_SESSION_STATE_CHANGED, state.is_some());
            let ok = OkPacket { header: 0, affected_rows: affected, last_insert_id: id, status, warnings, info: &info, session_state: state.as_deref() };
            let mut out = Vec::new();
            encode_ok(&mut out, &ok, caps);
            prop_assert_eq!(parse_ok(&out, caps).unwrap(), ok);
        }

        #[test]
        fn err_round_trip(code: u16, state in proptest::collection::vec(b'0'..=b'Z', 5), msg in proptest::collection::vec(any::<u8>(), 0..80)) {
            let e = ErrPacket { code, sqlstate: Some(&state), message: &msg };
            let mut out = Vec::new();
            encode_err(&mut out, &e);
            prop_assert_eq!(parse_err(&out).unwrap(), e);
        }

        #[test]
        fn eof_round_trip(warnings: u16, status: u16) {
            let e = EofPacket { warnings, status: StatusFlags::from_bits_retain(status) };
            let mut out = Vec::new();
            encode_eof(&mut out, &e);
            prop_assert!(is_result_terminator(&out, false));
            prop_assert_eq!(parse_eof(&out).unwrap(), e);
        }

        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_ok(&b, CapabilityFlags::CLIENT_SESSION_TRACK);
            let _ = parse_ok(&b, CapabilityFlags::empty());
            let _ = parse_err(&b);
            let _ = parse_eof(&b);
        }
    }
}
