//! `session_e2e/*`: one statement through a logged-in [`Session`](gatehouse::session::Session),
//! as the I/O driver runs it, with no sockets.
//!
//! ```text
//! client COM_QUERY ─▶ handle_client ─▶ poll_event* ─▶ poll_transmit(Server)
//! server result    ─▶ handle_server ─▶ poll_event* ─▶ poll_transmit(Client)
//! ```
//! Setup logs the session in once (fake client: mysql_native_password; fake server: greeting,
//! then OK) and checks a first round trip; a session that does not get there panics with what
//! it saw. Gate: `AllowAll`; rows: `PassThrough`; `CLIENT_DEPRECATE_EOF` negotiated.
//!
//! ```text
//! session_e2e/point_select  1 column definition + 1 row + 0xFE OK; time is ns per statement
//! session_e2e/1000_rows     3 columns, 1000 rows of ~50 bytes; throughput in response bytes
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gatehouse_benches::session::{config, Statement};

fn session_e2e(c: &mut Criterion) {
    let cfg = config();
    let mut g = c.benchmark_group("session_e2e");

    let mut point = Statement::point_select(cfg.clone());
    g.throughput(Throughput::Elements(1));
    g.bench_function("point_select", |b| b.iter(|| point.run()));

    let mut rows = Statement::customers(cfg, 1000);
    g.throughput(Throughput::Bytes(rows.response.len() as u64));
    g.bench_function("1000_rows", |b| b.iter(|| rows.run()));

    g.finish();
}

criterion_group!(benches, session_e2e);
criterion_main!(benches);
