//! Gatehouse: an access gateway for production MySQL.
//!
//! One folder per stage of a connection's flow (see `DESIGN.md`):
//!
//! | module | owns | may do I/O? |
//! |---|---|---|
//! | [`wire`] | MySQL packet framing, parsers (nom, borrowing) and encoders | no |
//! | [`auth`] | password scrambles, stored secrets, gateway identities | no |
//! | [`session`] | the per-connection state machine: bytes in, bytes and events out | no |
//! | [`sql`] | SQL as the server lexes it: statement splitting and digests | no |
//! | [`policy`] | who may run which statement where: roles, rules, decisions, cache | reads policy files at load |
//! | [`record`] | the audit log: queue, writer thread, format, verify, index, replay | its own thread and files |
//! | [`io`] | the io_uring and epoll drivers: sockets, timers, threads | yes |
//! | [`config`] | the TOML configuration | reads files at load |
#![warn(missing_docs, unreachable_pub)]

pub mod auth;
pub mod config;
pub mod io;
pub mod policy;
pub mod record;
pub mod session;
pub mod sql;
pub mod wire;
