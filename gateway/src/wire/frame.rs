//! Packet framing: every MySQL packet travels as one or more frames.
//!
//! ```text
//! frame   := payload_length:u24le  sequence_id:u8  payload[payload_length]
//! packet  := frame(len = 0xFFFFFF)*  frame(len < 0xFFFFFF)
//! ```
//!
//! A payload of exactly 16 MiB − 1 bytes is continued by the next frame (possibly an empty
//! one). Framing is the same for every command, in both directions, so continuations are
//! reassembled here once and never per command. Sequence ids count up per frame and wrap at
//! 255 (`wrapping_add`, never `+ 1`).

use std::borrow::Cow;

use super::consts::MAX_FRAME_PAYLOAD;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 4;

/// One logical packet, found at the start of a read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Sequence id of the first frame.
    pub seq: u8,
    /// Sequence id of the last frame (equal to `seq` unless the packet was continued).
    pub last_seq: u8,
    /// The payload, borrowed from the buffer when it fit one frame, reassembled otherwise.
    pub payload: Cow<'a, [u8]>,
    /// How many bytes of the buffer the packet occupied, headers included.
    pub wire_len: usize,
}

/// Why the bytes at the start of a buffer are not a valid packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The payload (after reassembly) would exceed the allowed size.
    #[error("packet of at least {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The size seen so far.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A continuation frame did not carry the next sequence id.
    #[error("continuation frame has sequence id {got}, expected {expected}")]
    OutOfOrder {
        /// The expected id.
        expected: u8,
        /// The id received.
        got: u8,
    },
}

/// Reads one frame header: `(payload_len, seq)`, or `None` if fewer than four bytes.
pub fn parse_header(buf: &[u8]) -> Option<(usize, u8)> {
    let h = buf.get(..HEADER_LEN)?;
    Some((
        usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16,
        h[3],
    ))
}

/// Looks for a whole packet at the start of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed (never an error: a short read is normal),
/// and an error as soon as the declared size passes `max_payload` — before the bytes arrive,
/// so an oversize packet is never buffered.
pub fn parse_packet(buf: &[u8], max_payload: usize) -> Result<Option<Packet<'_>>, FrameError> {
    let Some((len, seq)) = parse_header(buf) else {
        return Ok(None);
    };
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    if len < MAX_FRAME_PAYLOAD {
        // The common case: one frame, payload borrowed straight from the buffer.
        let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        return Ok(Some(Packet {
            seq,
            last_seq: seq,
            payload: Cow::Borrowed(payload),
            wire_len: HEADER_LEN + len,
        }));
    }
    // Continued packet: first walk the headers to learn whether it is all here.
    let mut offset = 0;
    let mut total = 0;
    let mut expected = seq;
    loop {
        let Some((len, s)) = parse_header(&buf[offset..]) else {
            return Ok(None);
        };
        if s != expected {
            return Err(FrameError::OutOfOrder { expected, got: s });
        }
        total += len;
        if total > max_payload {
            return Err(FrameError::TooLarge {
                len: total,
                max: max_payload,
            });
        }
        offset += HEADER_LEN + len;
        if buf.len() < offset {
            return Ok(None);
        }
        if len < MAX_FRAME_PAYLOAD {
            break;
        }
        expected = expected.wrapping_add(1);
    }
    let mut payload = Vec::with_capacity(total);
    let mut at = 0;
    while at < offset {
        let (len, _) = parse_header(&buf[at..]).expect("walked above");
        payload.extend_from_slice(&buf[at + HEADER_LEN..at + HEADER_LEN + len]);
        at += HEADER_LEN + len;
    }
    Ok(Some(Packet {
        seq,
        last_seq: expected,
        payload: Cow::Owned(payload),
        wire_len: offset,
    }))
}

/// Appends `payload` to `out` as one packet starting at sequence id `seq`, split into frames
/// as needed. Returns the sequence id of the last frame written.
pub fn write_packet(out: &mut Vec<u8>, seq: u8, payload: &[u8]) -> u8 {
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let len = rest.len().min(MAX_FRAME_PAYLOAD);
        out.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, seq]);
        out.extend_from_slice(&rest[..len]);
        rest = &rest[len..];
        if len < MAX_FRAME_PAYLOAD {
            return seq;
        }
        seq = seq.wrapping_add(1);
    }
}

/// Appends a packet whose payload is produced by `fill` (which appends to the vector),
/// framing it in place: no intermediate buffer for the common single-frame case.
pub fn write_packet_with(out: &mut Vec<u8>, seq: u8, fill: impl FnOnce(&mut Vec<u8>)) -> u8 {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, seq]);
    fill(out);
    let len = out.len() - start - HEADER_LEN;
    if len < MAX_FRAME_PAYLOAD {
        out[start..start + 3].copy_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8]);
        return seq;
    }
    // Rare: too big for one frame; re-frame it.
    let payload = out.split_off(start + HEADER_LEN);
    out.truncate(start);
    write_packet(out, seq, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_reads_are_incomplete_not_errors() {
        let mut wire = Vec::new();
        write_packet(&mut wire, 0, b"\x03SELECT 1");
        for cut in 0..wire.len() {
            assert_eq!(parse_packet(&wire[..cut], 1024), Ok(None), "cut at {cut}");
        }
        let p = parse_packet(&wire, 1024).unwrap().unwrap();
        assert_eq!(&*p.payload, b"\x03SELECT 1");
        assert!(matches!(p.payload, Cow::Borrowed(_)));
        assert_eq!(p.wire_len, wire.len());
    }

    #[test]
    fn oversize_is_refused_from_the_header_alone() {
        let header = [0x00, 0x00, 0x10, 0x00]; // 1 MiB declared
        assert_eq!(
            parse_packet(&header, 1000),
            Err(FrameError::TooLarge {
                len: 1 << 20,
                max: 1000
            })
        );
    }

    #[test]
    fn exact_16mib_payload_gets_an_empty_trailing_frame() {
        let payload = vec![7u8; MAX_FRAME_PAYLOAD];
        let mut wire = Vec::new();
        let last = write_packet(&mut wire, 255, &payload);
        assert_eq!(last, 0, "sequence ids wrap");
        assert_eq!(wire.len(), 2 * HEADER_LEN + MAX_FRAME_PAYLOAD);
        let p = parse_packet(&wire, usize::MAX).unwrap().unwrap();
        assert_eq!(p.payload.len(), MAX_FRAME_PAYLOAD);
        assert_eq!((p.seq, p.last_seq), (255, 0));
    }

    #[test]
    fn continuation_with_wrong_sequence_is_out_of_order() {
        let mut wire = Vec::new();
        write_packet(&mut wire, 0, &vec![1u8; MAX_FRAME_PAYLOAD + 5]);
        wire[HEADER_LEN + MAX_FRAME_PAYLOAD + 3] = 9;
        assert_eq!(
            parse_packet(&wire, usize::MAX),
            Err(FrameError::OutOfOrder {
                expected: 1,
                got: 9
            })
        );
    }

    #[test]
    fn write_packet_with_matches_write_packet() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        write_packet(&mut a, 3, b"hello");
        write_packet_with(&mut b, 3, |o| o.extend_from_slice(b"hello"));
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..2048), seq: u8, tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut wire = Vec::new();
            write_packet(&mut wire, seq, &payload);
            let n = wire.len();
            wire.extend_from_slice(&tail);
            let p = parse_packet(&wire, 4096).unwrap().unwrap();
            prop_assert_eq!(&*p.payload, &payload[..]);
            prop_assert_eq!(p.seq, seq);
            prop_assert_eq!(p.wire_len, n);
        }
    }
}
