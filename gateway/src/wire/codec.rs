//! The protocol's basic types, as nom parsers over borrowed slices and as appenders to a
//! `Vec<u8>`.
//!
//! ```text
//! int<lenenc>   := < 0xFB: 1 byte | 0xFC u16 | 0xFD u24 | 0xFE u64      (0xFB = NULL in rows)
//! string<lenenc>:= int<lenenc> length, bytes
//! string<NUL>   := bytes, 0x00
//! ```

use nom::bytes::complete::{tag, take, take_until};
use nom::number::complete::{le_u16, le_u24, le_u64, le_u8};
use nom::{IResult, Parser};

/// A parse result over a byte slice.
pub type Res<'a, T> = IResult<&'a [u8], T>;

/// A length-encoded integer.
pub fn lenenc_int(input: &[u8]) -> Res<'_, u64> {
    let (input, first) = le_u8(input)?;
    match first {
        0xFC => le_u16.map(u64::from).parse(input),
        0xFD => le_u24.map(u64::from).parse(input),
        0xFE => le_u64(input),
        0xFB | 0xFF => Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        ))),
        n => Ok((input, u64::from(n))),
    }
}

/// A length-encoded string.
pub fn lenenc_bytes(input: &[u8]) -> Res<'_, &[u8]> {
    let (input, len) = lenenc_int(input)?;
    let len = usize::try_from(len).map_err(|_| {
        nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::TooLarge,
        ))
    })?;
    take(len)(input)
}

/// A length-encoded string that may be NULL (0xFB), as in text rows.
pub fn lenenc_nullable(input: &[u8]) -> Res<'_, Option<&[u8]>> {
    if input.first() == Some(&0xFB) {
        return Ok((&input[1..], None));
    }
    lenenc_bytes.map(Some).parse(input)
}

/// A NUL-terminated string (the NUL is consumed, not returned).
pub fn null_str(input: &[u8]) -> Res<'_, &[u8]> {
    let (input, s) = take_until(&b"\0"[..])(input)?;
    let (input, _) = tag(&b"\0"[..])(input)?;
    Ok((input, s))
}

/// A NUL-terminated string whose NUL may be missing at the end of the packet.
pub fn null_str_or_eof(input: &[u8]) -> Res<'_, &[u8]> {
    match input.iter().position(|&b| b == 0) {
        Some(i) => Ok((&input[i + 1..], &input[..i])),
        None => Ok((&input[input.len()..], input)),
    }
}

/// A trailing field that is present only when `present` (a capability) holds and bytes remain.
pub fn optional<'a, T>(
    present: bool,
    input: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> Res<'a, T>,
) -> Res<'a, Option<T>> {
    if present && !input.is_empty() {
        let (rest, value) = parser(input)?;
        Ok((rest, Some(value)))
    } else {
        Ok((input, None))
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=250 => out.push(v as u8),
        251..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc_int(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a NUL-terminated string.
pub fn put_null_str(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b);
    out.push(0);
}

/// Runs a `complete` parser over a whole payload, mapping any failure to a
/// [`super::Error::Malformed`] that names what was being parsed.
pub fn parse_all<'a, T>(
    what: &'static str,
    input: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> Res<'a, T>,
) -> Result<T, super::Error> {
    match parser(input) {
        Ok((_, v)) => Ok(v),
        Err(_) => Err(super::Error::Malformed(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lenenc_int_round_trip(v: u64) {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, v);
            prop_assert_eq!(lenenc_int(&out), Ok((&[][..], v)));
        }

        #[test]
        fn lenenc_bytes_round_trip(b in proptest::collection::vec(any::<u8>(), 0..70000)) {
            let mut out = Vec::new();
            put_lenenc_bytes(&mut out, &b);
            prop_assert_eq!(lenenc_bytes(&out), Ok((&[][..], &b[..])));
        }

        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = lenenc_int(&b);
            let _ = lenenc_bytes(&b);
            let _ = lenenc_nullable(&b);
            let _ = null_str(&b);
        }
    }

    #[test]
    fn null_marker_is_not_an_integer() {
        assert!(lenenc_int(&[0xFB]).is_err());
        assert_eq!(lenenc_nullable(&[0xFB, 1]), Ok((&[1u8][..], None)));
    }
}
