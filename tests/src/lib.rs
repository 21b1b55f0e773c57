//! The end-to-end test harness: an isolated MariaDB ([`mariadb::MariaDb`]), and (later) the
//! gateway in front of it. Shared by the tests under `tests/tests/` and by `cargo xtask bench`.

pub mod mariadb;

pub use mariadb::{free_port, MariaDb, APP_PASSWORD, APP_USER, TEST_DB};
