//! The end-to-end test harness: an isolated MariaDB ([`mariadb::MariaDb`]), the gateway in front
//! of it ([`gateway::Gateway`], or the server itself with `GATEHOUSE_TEST_DIRECT=1`), helpers to
//! drive real clients ([`clients`]) and a raw protocol client for the fault tests ([`proto`]).
//! Shared by the tests under `tests/tests/` and by `cargo xtask bench`.

pub mod bin;
pub mod clients;
pub mod gateway;
pub mod mariadb;
pub mod proto;

pub use gatehouse::config::IoMode;
pub use gateway::{direct_mode, Gateway, GatewayOptions, Limits, TestEnv, Tls, ALICE, BOB};
pub use mariadb::{free_port, MariaDb, APP_PASSWORD, APP_USER, TEST_DB};
