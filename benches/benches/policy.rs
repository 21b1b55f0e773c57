//! `policy/*`: the statement-policy stage's costs per statement.
//!
//! ```text
//! policy/digest_200B     sql::digest of a 200-byte query (the decision-cache key)
//! policy/decide_cached   PolicyGate::decide on that query as a COM_QUERY, decision cached:
//!                        split + digest + cache lookup (the example policies)
//! policy/analyze_cold    sql::analyze + PolicySet::evaluate of the same query: what a cache
//!                        miss adds
//! ```
//!
//! Before the criterion groups, the cold path (`analyze` + `evaluate`) is timed one call at a
//! time over a mix of 20 statements (`gatehouse_benches::policy::MIX`), and its p50/p90/p99/max
//! printed: criterion reports means, and the tail of a cache miss is what the issue asks for.
//!
//! Measured on the 2-core development VM (release profile, `--warm-up-time 1
//! --measurement-time 3`, noisy): see benches/README.md for the latest numbers.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::policy::Subject;
use gatehouse::session::phases::CommandGate;
use gatehouse::sql::{analyze, digest, Context, Mode, Server};
use gatehouse::wire::command::CommandPacket;
use gatehouse_benches::policy::{agent, context, gate, query_200, warm, MIX};

fn cold_percentiles() {
    let gate = gate();
    let policy = gate.policy();
    let agent = agent();
    let subject = Subject {
        identity: &agent.name,
        groups: &agent.groups,
        target: "primary",
    };
    let ctx = Context::new(Some("shop")).with_server(Server::MariaDb {
        version_id: Some(101106),
    });
    // Warm up code and allocator.
    for sql in MIX.iter().cycle().take(2_000) {
        black_box(policy.evaluate(&subject, &analyze(sql, &ctx)));
    }
    let mut samples = Vec::with_capacity(MIX.len() * 500);
    for _ in 0..500 {
        for sql in MIX {
            let start = Instant::now();
            let verdict = policy.evaluate(&subject, &analyze(black_box(sql), &ctx));
            samples.push(start.elapsed().as_nanos() as u64);
            black_box(verdict);
        }
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    println!(
        "policy/analyze_cold over {} statements x 500: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, \
         max {:.1} µs",
        MIX.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        *samples.last().unwrap() as f64 / 1000.0
    );
}

fn policy(c: &mut Criterion) {
    cold_percentiles();

    let mut g = c.benchmark_group("policy");
    let sql = query_200();
    assert_eq!(sql.len(), 200);

    g.bench_function("digest_200B", |b| {
        b.iter(|| digest(black_box(&sql), Mode::DEFAULT))
    });

    let gate = gate();
    let agent = agent();
    let ctx = context(&agent);
    warm(&gate, &ctx, &sql);
    let command = CommandPacket::Query { sql: &sql };
    g.bench_function("decide_cached", |b| {
        b.iter(|| gate.decide(black_box(&ctx), black_box(&command)))
    });

    let policy = gate.policy();
    let subject = Subject {
        identity: &agent.name,
        groups: &agent.groups,
        target: "primary",
    };
    let actx = Context::new(Some("shop")).with_server(ctx.server);
    g.bench_function("analyze_cold", |b| {
        b.iter(|| policy.evaluate(&subject, &analyze(black_box(&sql), &actx)))
    });
    g.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
