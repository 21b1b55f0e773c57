//! `frame/*`: finding whole packets in a read buffer and framing packets for a write.
//!
//! ```text
//! frame/100B_x1000         parse_packet over 1000 pipelined 100-byte COM_QUERYs (one frame each,
//!                          payload borrowed)
//! frame/16MiB_split        parse_packet over one COM_QUERY of 16 MiB + 1 KiB: two frames,
//!                          reassembled into an owned payload
//! frame/write_100B_x1000   write_packet of the same 1000 payloads into a reused buffer
//! frame/write_16MiB_split  write_packet of the 16 MiB + 1 KiB payload (split into two frames)
//! ```
//! Throughput is in wire bytes (headers included for parsing, payload bytes for writing).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gatehouse::wire::consts::MAX_FRAME_PAYLOAD;
use gatehouse_benches::frame::{parse_all, write_all};
use gatehouse_benches::wire::{big_query_payload, framed, many_queries, query_payload};

/// Packets in the small-packet buffer.
const COUNT: usize = 1000;
/// Payload bytes of each small packet.
const SMALL: usize = 100;
/// Payload bytes of the continued packet: one full frame plus 1 KiB.
const BIG: usize = MAX_FRAME_PAYLOAD + 1025;

fn frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");

    let small_wire = many_queries(SMALL, COUNT);
    assert_eq!(parse_all(&small_wire), COUNT);
    g.throughput(Throughput::Bytes(small_wire.len() as u64));
    g.bench_function("100B_x1000", |b| {
        b.iter(|| parse_all(black_box(&small_wire)))
    });

    let small_payloads = vec![query_payload(SMALL); COUNT];
    let mut out = Vec::with_capacity(small_wire.len());
    g.throughput(Throughput::Bytes((SMALL * COUNT) as u64));
    g.bench_function("write_100B_x1000", |b| {
        b.iter(|| write_all(&mut out, black_box(&small_payloads)))
    });
    assert_eq!(out, small_wire);

    // Each iteration moves 16 MiB: fewer samples keep the run short.
    g.sample_size(10);
    let big_payload = vec![big_query_payload(BIG)];
    let big_wire = framed(0, &big_payload[0]);
    assert_eq!(big_wire.len(), BIG + 8, "two frames");
    assert_eq!(parse_all(&big_wire), 1);
    g.throughput(Throughput::Bytes(big_wire.len() as u64));
    g.bench_function("16MiB_split", |b| {
        b.iter(|| parse_all(black_box(&big_wire)))
    });

    let mut out = Vec::with_capacity(big_wire.len());
    g.throughput(Throughput::Bytes(BIG as u64));
    g.bench_function("write_16MiB_split", |b| {
        b.iter(|| write_all(&mut out, black_box(&big_payload)))
    });
    assert_eq!(out, big_wire);

    g.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
