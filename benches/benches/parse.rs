//! `parse/*` and `encode/*`: the packet parsers a command and its response go through, each on
//! one whole payload (framing already done).
//!
//! ```text
//! parse/command_query      parse_command on a 100-byte COM_QUERY
//! parse/column_definition  parse_column_definition on shop.customers.email
//! parse/text_row           text_row_values over a 5-column row (one NULL), every value read
//! parse/binary_row         parse_binary_row on the same row in the binary protocol
//! parse/ok                 parse_ok on an UPDATE's OK (CLIENT_SESSION_TRACK layout)
//! encode/ok                encode_ok of the same packet into a reused buffer
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::wire::binary::parse_binary_row;
use gatehouse::wire::command::{parse_command, CommandPacket};
use gatehouse::wire::response::{encode_ok, parse_ok};
use gatehouse::wire::resultset::{parse_column_definition, text_row_values};
use gatehouse::wire::CapabilityFlags;
use gatehouse_benches::wire::{
    column_definition, customer_binary_row, customer_text_row, ok_payload, query_payload,
    update_ok, VAR_STRING,
};

/// What the gateway negotiates with a modern client.
const CAPS: CapabilityFlags = CapabilityFlags::GATEWAY;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");

    let query = query_payload(100);
    assert!(matches!(
        parse_command(&query, CAPS),
        Ok(CommandPacket::Query { .. })
    ));
    g.bench_function("command_query", |b| {
        b.iter(|| parse_command(black_box(&query), CAPS))
    });

    let coldef = column_definition("email", VAR_STRING);
    assert_eq!(
        parse_column_definition(&coldef, false).map(|c| c.name),
        Ok(&b"email"[..])
    );
    g.bench_function("column_definition", |b| {
        b.iter(|| parse_column_definition(black_box(&coldef), false))
    });

    let row = customer_text_row();
    let read_row = |row: &[u8]| {
        let mut values = 0usize;
        let mut bytes = 0usize;
        for v in text_row_values(row) {
            values += 1;
            bytes += v.expect("fixture row is valid").map_or(0, <[u8]>::len);
        }
        (values, bytes)
    };
    assert_eq!(read_row(&row).0, 5);
    g.bench_function("text_row", |b| b.iter(|| read_row(black_box(&row))));

    let (types, binary_row) = customer_binary_row();
    assert_eq!(
        parse_binary_row(&binary_row, &types).map(|v| v.iter().filter(|v| v.is_none()).count()),
        Ok(1)
    );
    g.bench_function("binary_row", |b| {
        b.iter(|| parse_binary_row(black_box(&binary_row), &types))
    });

    let ok = update_ok();
    let ok_bytes = ok_payload(&ok, CAPS);
    assert_eq!(parse_ok(&ok_bytes, CAPS).as_ref(), Ok(&ok));
    g.bench_function("ok", |b| b.iter(|| parse_ok(black_box(&ok_bytes), CAPS)));
    g.finish();

    let mut g = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(64);
    g.bench_function("ok", |b| {
        b.iter(|| {
            out.clear();
            encode_ok(&mut out, black_box(&ok), CAPS);
        })
    });
    assert_eq!(out, ok_bytes);
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
