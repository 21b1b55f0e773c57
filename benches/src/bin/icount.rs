//! Runs one bench scenario a fixed number of times, for instruction counting under callgrind:
//! unlike wall-clock time, the count per iteration is the same on every run and every machine
//! with the same build (see `benches/README.md` and `benches/icount.sh`).
//!
//! ```text
//! icount                 list the scenarios and their default iteration counts
//! icount <name> [iters]  set the scenario up, then run it iters times inside `measure`
//! ```
//! Only [`measure`] is meant to be counted (`--toggle-collect='*icount*measure*'`), so setup
//! (the argon2 hashes of the bench identity, building fixtures) is left out. The scenarios
//! and their fixtures are the criterion benches' own.

use std::hint::black_box;
use std::io::Write as _;
use std::process::ExitCode;

use gatehouse::policy::Subject;
use gatehouse::session::phases::CommandGate;
use gatehouse::sql::{analyze, digest, Context, Mode};
use gatehouse::wire::binary::parse_binary_row;
use gatehouse::wire::command::{parse_command, CommandPacket};
use gatehouse::wire::consts::MAX_FRAME_PAYLOAD;
use gatehouse::wire::response::{encode_ok, parse_ok};
use gatehouse::wire::resultset::{parse_column_definition, text_row_values};
use gatehouse::wire::CapabilityFlags;
use gatehouse_benches::frame::{parse_all, write_all};
use gatehouse_benches::policy;
use gatehouse_benches::session::{config, Statement};
use gatehouse_benches::wire::{
    big_query_payload, column_definition, customer_binary_row, customer_text_row, framed,
    many_queries, ok_payload, query_payload, update_ok, VAR_STRING,
};

const CAPS: CapabilityFlags = CapabilityFlags::GATEWAY;

/// A scenario: its criterion id, default iterations, and a runner taking the iteration count.
type Scenario = (&'static str, u64, fn(u64));

const SCENARIOS: &[Scenario] = &[
    ("frame/100B_x1000", 100, |n| {
        let wire = many_queries(100, 1000);
        measure(n, || parse_all(black_box(&wire)));
    }),
    ("frame/write_100B_x1000", 100, |n| {
        let payloads = vec![query_payload(100); 1000];
        let mut out = Vec::with_capacity(payloads.len() * 104);
        measure(n, || write_all(&mut out, black_box(&payloads)));
    }),
    ("frame/16MiB_split", 3, |n| {
        let wire = framed(0, &big_query_payload(MAX_FRAME_PAYLOAD + 1025));
        measure(n, || parse_all(black_box(&wire)));
    }),
    ("frame/write_16MiB_split", 3, |n| {
        let payloads = vec![big_query_payload(MAX_FRAME_PAYLOAD + 1025)];
        let mut out = Vec::with_capacity(MAX_FRAME_PAYLOAD + 1033);
        measure(n, || write_all(&mut out, black_box(&payloads)));
    }),
    ("parse/command_query", 10_000, |n| {
        let query = query_payload(100);
        measure(n, || parse_command(black_box(&query), CAPS).is_ok());
    }),
    ("parse/column_definition", 10_000, |n| {
        let coldef = column_definition("email", VAR_STRING);
        measure(n, || {
            parse_column_definition(black_box(&coldef), false).is_ok()
        });
    }),
    ("parse/text_row", 10_000, |n| {
        let row = customer_text_row();
        measure(n, || text_row_values(black_box(&row)).count());
    }),
    ("parse/binary_row", 10_000, |n| {
        let (types, row) = customer_binary_row();
        measure(n, || parse_binary_row(black_box(&row), &types).is_ok());
    }),
    ("parse/ok", 10_000, |n| {
        let ok = ok_payload(&update_ok(), CAPS);
        measure(n, || parse_ok(black_box(&ok), CAPS).is_ok());
    }),
    ("encode/ok", 10_000, |n| {
        let ok = update_ok();
        let mut out = Vec::with_capacity(64);
        measure(n, || {
            out.clear();
            encode_ok(&mut out, black_box(&ok), CAPS);
        });
    }),
    ("session_e2e/point_select", 10_000, |n| {
        let mut s = Statement::point_select(config());
        measure(n, || s.run());
    }),
    ("session_e2e/1000_rows", 100, |n| {
        let mut s = Statement::customers(config(), 1000);
        measure(n, || s.run());
    }),
    ("policy/digest_200B", 10_000, |n| {
        let sql = policy::query_200();
        measure(n, || digest(black_box(&sql), Mode::DEFAULT).is_ok());
    }),
    ("policy/decide_cached", 10_000, |n| {
        let gate = policy::gate();
        let agent = policy::agent();
        let ctx = policy::context(&agent);
        let sql = policy::query_200();
        policy::warm(&gate, &ctx, &sql);
        let command = CommandPacket::Query { sql: &sql };
        measure(n, || gate.decide(black_box(&ctx), black_box(&command)));
    }),
    ("policy/analyze_cold", 1_000, |n| {
        let gate = policy::gate();
        let p = gate.policy();
        let agent = policy::agent();
        let subject = Subject {
            identity: &agent.name,
            groups: &agent.groups,
            target: "primary",
        };
        let ctx = Context::new(Some("shop"));
        let sql = policy::query_200();
        measure(n, || p.evaluate(&subject, &analyze(black_box(&sql), &ctx)));
    }),
];

/// The counted region: `iters` calls of `f`.
#[inline(never)]
fn measure<T>(iters: u64, mut f: impl FnMut() -> T) {
    for _ in 0..iters {
        black_box(f());
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        let mut out = std::io::stdout().lock();
        for (name, iters, _) in SCENARIOS {
            // A closed pipe (`icount | head`) is not an error worth a panic.
            if writeln!(out, "{name} {iters}").is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    };
    let Some((_, default_iters, run)) = SCENARIOS.iter().find(|(n, _, _)| n == name) else {
        eprintln!("icount: no scenario {name:?} (run without arguments for the list)");
        return ExitCode::FAILURE;
    };
    let iters = match args.get(1).map(|s| s.parse::<u64>()) {
        None => *default_iters,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("icount: iterations must be a positive integer");
            return ExitCode::FAILURE;
        }
    };
    run(iters);
    ExitCode::SUCCESS
}
