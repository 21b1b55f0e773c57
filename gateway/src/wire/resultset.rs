//! Result sets and prepared-statement responses.
//!
//! ```text
//! result set := column_count<lenenc> ColumnDefinition41{count} [EOF] row* (EOF | OK(0xFE)) | ERR
//! ColumnDefinition41 := catalog schema table org_table name org_name <lenenc each>
//!                       [extended_metadata<lenenc>]   (MariaDB, MARIADB_CLIENT_EXTENDED_METADATA)
//!                       0x0C charset:u16 length:u32 type:u8 flags:u16 decimals:u8 0x0000
//! text row   := (value<lenenc> | 0xFB NULL){column_count}
//! binary row := 0x00 null_bitmap[(count+9)/8] value*        (see [`super::binary`])
//! COM_STMT_PREPARE_OK := 0x00 stmt_id:u32 columns:u16 params:u16 0x00 warnings:u16
//! LOCAL INFILE request := 0xFB filename<EOF>
//! ```

use nom::number::complete::{le_u16, le_u32, le_u8};

use super::codec::{
    lenenc_bytes, lenenc_int, lenenc_nullable, optional, parse_all, put_lenenc_bytes,
};
use super::Error;

/// A column's definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDefinition<'a> {
    /// Always `def`.
    pub catalog: &'a [u8],
    /// Database.
    pub schema: &'a [u8],
    /// Table alias.
    pub table: &'a [u8],
    /// Physical table.
    pub org_table: &'a [u8],
    /// Column alias.
    pub name: &'a [u8],
    /// Physical column.
    pub org_name: &'a [u8],
    /// MariaDB's extended type information (type name, format such as `json`), present
    /// exactly when the connection negotiated MARIADB_CLIENT_EXTENDED_METADATA.
    pub extended: Option<&'a [u8]>,
    /// Collation id.
    pub charset: u16,
    /// Maximum display length.
    pub column_length: u32,
    /// Column type (see [`super::binary::ColumnType`]).
    pub column_type: u8,
    /// Column flags.
    pub flags: u16,
    /// Decimals.
    pub decimals: u8,
}

/// Parses a ColumnDefinition41 payload (trailing COM_FIELD_LIST default values are ignored);
/// `extended`: the connection negotiated MariaDB's extended metadata.
pub fn parse_column_definition(
    payload: &[u8],
    extended: bool,
) -> Result<ColumnDefinition<'_>, Error> {
    parse_all("column definition", payload, |i: &[u8]| {
        let (i, catalog) = lenenc_bytes(i)?;
        let (i, schema) = lenenc_bytes(i)?;
        let (i, table) = lenenc_bytes(i)?;
        let (i, org_table) = lenenc_bytes(i)?;
        let (i, name) = lenenc_bytes(i)?;
        let (i, org_name) = lenenc_bytes(i)?;
        let (i, extended) = optional(extended, i, lenenc_bytes)?;
        let (i, _fixed_len) = lenenc_int(i)?;
        let (i, charset) = le_u16(i)?;
        let (i, column_length) = le_u32(i)?;
        let (i, column_type) = le_u8(i)?;
        let (i, flags) = le_u16(i)?;
        let (i, decimals) = le_u8(i)?;
        Ok((
            i,
            ColumnDefinition {
                catalog,
                schema,
                table,
                org_table,
                name,
                org_name,
                extended,
                charset,
                column_length,
                column_type,
                flags,
                decimals,
            },
        ))
    })
}

/// Appends a ColumnDefinition41 payload.
pub fn encode_column_definition(out: &mut Vec<u8>, c: &ColumnDefinition<'_>) {
    for s in [
        c.catalog,
        c.schema,
        c.table,
        c.org_table,
        c.name,
        c.org_name,
    ] {
        put_lenenc_bytes(out, s);
    }
    if let Some(extended) = c.extended {
        put_lenenc_bytes(out, extended);
    }
    out.push(0x0c);
    out.extend_from_slice(&c.charset.to_le_bytes());
    out.extend_from_slice(&c.column_length.to_le_bytes());
    out.push(c.column_type);
    out.extend_from_slice(&c.flags.to_le_bytes());
    out.push(c.decimals);
    out.extend_from_slice(&[0, 0]);
}

/// Parses the column count that starts a result set.
pub fn parse_column_count(payload: &[u8]) -> Result<u64, Error> {
    parse_all("column count", payload, lenenc_int)
}

/// Iterates over the values of a text-protocol row without allocating.
pub fn text_row_values(payload: &[u8]) -> impl Iterator<Item = Result<Option<&[u8]>, Error>> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match lenenc_nullable(rest) {
            Ok((r, v)) => {
                rest = r;
                Some(Ok(v))
            }
            Err(_) => {
                rest = &[];
                Some(Err(Error::Malformed("text row")))
            }
        }
    })
}

/// Appends a text-protocol row.
pub fn encode_text_row<'a>(out: &mut Vec<u8>, values: impl IntoIterator<Item = Option<&'a [u8]>>) {
    for v in values {
        match v {
            Some(v) => put_lenenc_bytes(out, v),
            None => out.push(0xFB),
        }
    }
}

/// COM_STMT_PREPARE's success response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StmtPrepareOk {
    /// Statement id.
    pub stmt_id: u32,
    /// Result columns (column definitions follow the parameter definitions).
    pub num_columns: u16,
    /// Parameters (their definitions follow this packet).
    pub num_params: u16,
    /// Warnings.
    pub warnings: u16,
}

/// Parses COM_STMT_PREPARE_OK.
pub fn parse_stmt_prepare_ok(payload: &[u8]) -> Result<StmtPrepareOk, Error> {
    parse_all("COM_STMT_PREPARE_OK", payload, |i: &[u8]| {
        let (i, _) = nom::bytes::complete::tag(&[0u8][..])(i)?;
        let (i, stmt_id) = le_u32(i)?;
        let (i, num_columns) = le_u16(i)?;
        let (i, num_params) = le_u16(i)?;
        let (i, _filler) = le_u8(i)?;
        let (i, warnings) = if i.len() >= 2 { le_u16(i)? } else { (i, 0) };
        Ok((
            i,
            StmtPrepareOk {
                stmt_id,
                num_columns,
                num_params,
                warnings,
            },
        ))
    })
}

/// Appends COM_STMT_PREPARE_OK.
pub fn encode_stmt_prepare_ok(out: &mut Vec<u8>, ok: &StmtPrepareOk) {
    out.push(0);
    out.extend_from_slice(&ok.stmt_id.to_le_bytes());
    out.extend_from_slice(&ok.num_columns.to_le_bytes());
    out.extend_from_slice(&ok.num_params.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&ok.warnings.to_le_bytes());
}

/// Parses a LOCAL INFILE request: the file name the server asks the client to send.
pub fn parse_local_infile_request(payload: &[u8]) -> Result<&[u8], Error> {
    match payload.split_first() {
        Some((0xFB, name)) => Ok(name),
        _ => Err(Error::Malformed("LOCAL INFILE request")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    proptest! {
        #[test]
        fn column_definition_round_trip(s in proptest::collection::vec(bytes(30), 6), ext in proptest::option::of(bytes(30)), charset: u16, len: u32, ty: u8, flags: u16, dec: u8) {
            let c = ColumnDefinition { catalog: &s[0], schema: &s[1], table: &s[2], org_table: &s[3], name: &s[4], org_name: &s[5], extended: ext.as_deref(), charset, column_length: len, column_type: ty, flags, decimals: dec };
            let mut out = Vec::new();
            encode_column_definition(&mut out, &c);
            prop_assert_eq!(parse_column_definition(&out, ext.is_some()).unwrap(), c);
        }

        #[test]
        fn text_row_round_trip(values in proptest::collection::vec(proptest::option::of(bytes(300)), 0..20)) {
            let mut out = Vec::new();
            encode_text_row(&mut out, values.iter().map(|v| v.as_deref()));
            let back: Vec<Option<&[u8]>> = text_row_values(&out).collect::<Result<_, _>>().unwrap();
            let want: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
            prop_assert_eq!(back, want);
        }

        #[test]
        fn prepare_ok_round_trip(stmt_id: u32, num_columns: u16, num_params: u16, warnings: u16) {
            let ok = StmtPrepareOk { stmt_id, num_columns, num_params, warnings };
            let mut out = Vec::new();
            encode_stmt_prepare_ok(&mut out, &ok);
            prop_assert_eq!(parse_stmt_prepare_ok(&out).unwrap(), ok);
        }

        #[test]
        fn never_panics(b in bytes(100)) {
            let _ = parse_column_definition(&b, false);
            let _ = parse_column_definition(&b, true);
            let _ = text_row_values(&b).count();
            let _ = parse_stmt_prepare_ok(&b);
            let _ = parse_column_count(&b);
        }
    }
}
