//! The binary protocol's values: prepared-statement parameters and binary result rows.
//!
//! ```text
//! binary row  := 0x00 null_bitmap[(n + 7 + 2) / 8] value*      (bit i+2 set: column i NULL)
//! params      := null_bitmap[(n + 7) / 8] new_params_bound:u8 [(type:u8 flags:u8){n}] value*
//! value       := int1|int2|int4|int8|float|double (fixed, little endian)
//!              | len:u8 date/time bytes[len]                 (DATE, DATETIME, TIMESTAMP, TIME)
//!              | string<lenenc>                              (everything else)
//! ```

use nom::bytes::complete::take;
use nom::number::complete::le_u8;

use super::codec::{lenenc_bytes, parse_all, put_lenenc_bytes, Res};
use super::Error;

/// Column/parameter type codes (`MYSQL_TYPE_*`), a newtype so unknown codes stay representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColumnType(pub u8);

impl ColumnType {
    /// DECIMAL (old).
    pub const DECIMAL: ColumnType = ColumnType(0x00);
    /// TINYINT.
    pub const TINY: ColumnType = ColumnType(0x01);
    /// SMALLINT.
    pub const SHORT: ColumnType = ColumnType(0x02);
    /// INT.
    pub const LONG: ColumnType = ColumnType(0x03);
    /// FLOAT.
    pub const FLOAT: ColumnType = ColumnType(0x04);
    /// DOUBLE.
    pub const DOUBLE: ColumnType = ColumnType(0x05);
    /// NULL.
    pub const NULL: ColumnType = ColumnType(0x06);
    /// TIMESTAMP.
    pub const TIMESTAMP: ColumnType = ColumnType(0x07);
    /// BIGINT.
    pub const LONGLONG: ColumnType = ColumnType(0x08);
    /// MEDIUMINT.
    pub const INT24: ColumnType = ColumnType(0x09);
    /// DATE.
    pub const DATE: ColumnType = ColumnType(0x0a);
    /// TIME.
    pub const TIME: ColumnType = ColumnType(0x0b);
    /// DATETIME.
    pub const DATETIME: ColumnType = ColumnType(0x0c);
    /// YEAR.
    pub const YEAR: ColumnType = ColumnType(0x0d);

    /// Byte width of a fixed-size value, `None` for length-prefixed ones.
    fn fixed_width(self) -> Option<usize> {
        Some(match self {
            ColumnType::NULL => 0,
            ColumnType::TINY => 1,
            ColumnType::SHORT | ColumnType::YEAR => 2,
            ColumnType::LONG | ColumnType::INT24 | ColumnType::FLOAT => 4,
            ColumnType::LONGLONG | ColumnType::DOUBLE => 8,
            _ => return None,
        })
    }

    fn is_temporal(self) -> bool {
        matches!(
            self,
            ColumnType::DATE | ColumnType::DATETIME | ColumnType::TIMESTAMP | ColumnType::TIME
        )
    }
}

/// One binary value's bytes, exactly as on the wire minus any length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryValue<'a> {
    /// Its type.
    pub column_type: ColumnType,
    /// Its bytes.
    pub bytes: &'a [u8],
}

fn value(ty: ColumnType) -> impl Fn(&[u8]) -> Res<'_, BinaryValue<'_>> {
    move |input| {
        let (input, bytes) = if let Some(w) = ty.fixed_width() {
            take(w)(input)?
        } else if ty.is_temporal() {
            let (i, n) = le_u8(input)?;
            take(n)(i)?
        } else {
            lenenc_bytes(input)?
        };
        Ok((
            input,
            BinaryValue {
                column_type: ty,
                bytes,
            },
        ))
    }
}

/// Appends one binary value (with its length prefix when it has one).
pub fn encode_value(out: &mut Vec<u8>, v: &BinaryValue<'_>) {
    if v.column_type.fixed_width().is_some() {
        out.extend_from_slice(v.bytes);
    } else if v.column_type.is_temporal() {
        out.push(v.bytes.len() as u8);
        out.extend_from_slice(v.bytes);
    } else {
        put_lenenc_bytes(out, v.bytes);
    }
}

fn is_null(bitmap: &[u8], i: usize, offset: usize) -> bool {
    let bit = i + offset;
    bitmap[bit / 8] & (1 << (bit % 8)) != 0
}

/// Parses a binary result row given its columns' types.
pub fn parse_binary_row<'a>(
    payload: &'a [u8],
    types: &[ColumnType],
) -> Result<Vec<Option<BinaryValue<'a>>>, Error> {
    parse_all("binary row", payload, |i: &'a [u8]| {
        let (i, _) = nom::bytes::complete::tag(&[0u8][..])(i)?;
        let (mut i, bitmap) = take((types.len() + 7 + 2) / 8)(i)?;
        let mut values = Vec::with_capacity(types.len());
        for (n, ty) in types.iter().enumerate() {
            if is_null(bitmap, n, 2) {
                values.push(None);
            } else {
                let (rest, v) = value(*ty)(i)?;
                values.push(Some(v));
                i = rest;
            }
        }
        Ok((i, values))
    })
}

/// Appends a binary result row.
pub fn encode_binary_row(out: &mut Vec<u8>, values: &[Option<BinaryValue<'_>>]) {
    out.push(0);
    let start = out.len();
    out.resize(start + (values.len() + 7 + 2) / 8, 0);
    for (n, v) in values.iter().enumerate() {
        match v {
            None => out[start + (n + 2) / 8] |= 1 << ((n + 2) % 8),
            Some(v) => encode_value(out, v),
        }
    }
}

/// Parameters of a COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteParams<'a> {
    /// Types (type code, flags: 0x80 = unsigned) as sent now, or `None` when the client
    /// relies on the types bound by an earlier execute.
    pub types: Option<Vec<(ColumnType, u8)>>,
    /// Values (`None` = NULL).
    pub values: Vec<Option<BinaryValue<'a>>>,
}

/// Parses COM_STMT_EXECUTE's parameter block for a statement with `num_params` parameters.
/// `bound_types` are the types of the previous execute, used when the client does not resend
/// them. Parameters sent with COM_STMT_SEND_LONG_DATA have no value here.
pub fn parse_execute_params<'a>(
    params: &'a [u8],
    num_params: usize,
    bound_types: Option<&[(ColumnType, u8)]>,
    long_data: &[bool],
) -> Result<ExecuteParams<'a>, Error> {
    if num_params == 0 {
        return Ok(ExecuteParams {
            types: None,
            values: Vec::new(),
        });
    }
    parse_all("COM_STMT_EXECUTE parameters", params, |i: &'a [u8]| {
        let (i, bitmap) = take(num_params.div_ceil(8))(i)?;
        let (mut i, new_bound) = le_u8(i)?;
        let types = if new_bound == 1 {
            let (rest, raw) = take(num_params * 2)(i)?;
            i = rest;
            Some(
                raw.chunks_exact(2)
                    .map(|c| (ColumnType(c[0]), c[1]))
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        let Some(effective) = types.as_deref().or(bound_types) else {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Verify,
            )));
        };
        let mut values = Vec::with_capacity(num_params);
        if effective.len() < num_params {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Verify,
            )));
        }
        for (n, (ty, _)) in effective.iter().enumerate().take(num_params) {
            if is_null(bitmap, n, 0) || long_data.get(n).copied().unwrap_or(false) {
                values.push(None);
            } else {
                let (rest, v) = value(*ty)(i)?;
                values.push(Some(v));
                i = rest;
            }
        }
        Ok((i, ExecuteParams { types, values }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = (ColumnType, Vec<u8>)> {
        prop_oneof![
            Just((ColumnType::TINY, vec![7])),
            proptest::collection::vec(any::<u8>(), 2).prop_map(|b| (ColumnType::SHORT, b)),
            proptest::collection::vec(any::<u8>(), 4).prop_map(|b| (ColumnType::LONG, b)),
            proptest::collection::vec(any::<u8>(), 8).prop_map(|b| (ColumnType::DOUBLE, b)),
            proptest::collection::vec(any::<u8>(), 8).prop_map(|b| (ColumnType::LONGLONG, b)),
            prop_oneof![Just(0usize), Just(4), Just(7), Just(11)]
                .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
                .prop_map(|b| (ColumnType::DATETIME, b)),
            prop_oneof![Just(0usize), Just(8), Just(12)]
                .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
                .prop_map(|b| (ColumnType::TIME, b)),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| (ColumnType(0xfd), b)),
        ]
    }

    proptest! {
        #[test]
        fn binary_row_round_trip(cols in proptest::collection::vec((arb_value(), any::<bool>()), 0..20)) {
            let types: Vec<ColumnType> = cols.iter().map(|((t, _), _)| *t).collect();
            let values: Vec<Option<BinaryValue>> = cols.iter().map(|((t, b), null)| (!null).then_some(BinaryValue { column_type: *t, bytes: b })).collect();
            let mut out = Vec::new();
            encode_binary_row(&mut out, &values);
            prop_assert_eq!(parse_binary_row(&out, &types).unwrap(), values);
        }

        #[test]
        fn execute_params_round_trip(cols in proptest::collection::vec((arb_value(), any::<bool>()), 1..12)) {
            let n = cols.len();
            let mut out = vec![0u8; n.div_ceil(8)];
            for (i, (_, null)) in cols.iter().enumerate() {
                if *null { out[i / 8] |= 1 << (i % 8); }
            }
            out.push(1);
            for ((t, _), _) in &cols { out.extend_from_slice(&[t.0, 0]); }
            for ((t, b), null) in &cols {
                if !null { encode_value(&mut out, &BinaryValue { column_type: *t, bytes: b }); }
            }
            let p = parse_execute_params(&out, n, None, &[]).unwrap();
            for (i, ((t, b), null)) in cols.iter().enumerate() {
                let want = (!null).then_some(BinaryValue { column_type: *t, bytes: &b[..] });
                prop_assert_eq!(p.values[i], want);
            }
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..100), n in 0usize..10) {
            let types = vec![ColumnType(0xfd); n];
            let _ = parse_binary_row(&b, &types);
            let _ = parse_execute_params(&b, n, None, &[]);
        }
    }
}
