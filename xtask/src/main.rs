//! `cargo xtask …`: Gatehouse's development tasks.
//!
//! | command | file |
//! |---|---|
//! | `cargo xtask bench` — load benchmark: direct vs HAProxy vs the gateway | `bench/` |
//! | `cargo xtask demo` — the gateway in front of a local MariaDB, ready for `mariadb` | `demo.rs` |
//! | `cargo xtask mtr` — MariaDB's test suite through the gateway (passthrough) vs direct | `mtr.rs`, `mtr/` |
//!
//! Shared pieces: `gateway.rs` (build, hash a secret, generate a config, serve) and
//! `process.rs` (child processes, `/proc` readings).

mod bench;
mod demo;
mod gateway;
mod mtr;
mod process;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Gatehouse development tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Load benchmark: each workload against direct, HAProxy, gateway (epoll, io_uring).
    Bench(bench::BenchArgs),
    /// Start MariaDB and the gateway here, print the command to connect; Ctrl-C stops.
    Demo(demo::DemoArgs),
    /// Transparency proof: MariaDB's mtr tests and mariadb-client-test through the gateway in
    /// passthrough mode and directly, on fresh servers; fails on any test that passes directly
    /// but not through the gateway.
    Mtr(mtr::MtrArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Bench(args) => bench::run(args),
        Task::Demo(args) => demo::run(args),
        Task::Mtr(args) => mtr::run(args),
    }
}
