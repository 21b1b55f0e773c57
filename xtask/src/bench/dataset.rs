//! The load phase: the tables every workload reads and writes, created once, directly on the
//! MariaDB (as root over its unix socket) before any path is measured.
//!
//! `sbtest1..sbtest4` have sysbench's schema and size (so `--sysbench` runs against them with no
//! `sysbench prepare` of its own); `big` holds the large result set.

use anyhow::{ensure, Result};
use gatehouse_tests::{MariaDb, TEST_DB};

/// Number of `sbtest` tables.
pub const TABLES: u32 = 4;
/// Rows per `sbtest` table.
pub const TABLE_SIZE: u32 = 10_000;
/// Rows in `big`, each about 200 bytes in a text-protocol result.
pub const BIG_ROWS: usize = 10_000;

/// Creates and fills the tables (a few seconds; MariaDB's `seq_1_to_N` sequence tables do the
/// row generation server-side).
pub fn load(db: &MariaDb) -> Result<()> {
    let mut sql = format!("USE {TEST_DB};\n");
    for t in 1..=TABLES {
        sql += &format!(
            "CREATE TABLE sbtest{t} (
               id INT NOT NULL AUTO_INCREMENT,
               k INT NOT NULL DEFAULT 0,
               c CHAR(120) NOT NULL DEFAULT '',
               pad CHAR(60) NOT NULL DEFAULT '',
               PRIMARY KEY (id),
               KEY k_{t} (k)
             ) ENGINE=InnoDB;
             INSERT INTO sbtest{t} (k, c, pad)
               SELECT FLOOR(1 + RAND() * {TABLE_SIZE}),
                      LEFT(REPEAT(SHA2(RAND(), 256), 2), 119),
                      LEFT(SHA2(RAND(), 256), 59)
               FROM seq_1_to_{TABLE_SIZE};\n"
        );
    }
    // id (≤ 5 digits) + 100 + 90 characters + a bigint: ~200 bytes per row.
    sql += &format!(
        "CREATE TABLE big (
           id INT NOT NULL PRIMARY KEY,
           a VARCHAR(100) NOT NULL,
           b VARCHAR(100) NOT NULL,
           n BIGINT NOT NULL
         ) ENGINE=InnoDB;
         INSERT INTO big
           SELECT seq, LEFT(REPEAT(SHA2(seq, 256), 2), 100), LEFT(SHA2(-seq, 512), 90),
                  seq * 1000003
           FROM seq_1_to_{BIG_ROWS};\n"
    );
    db.root_sql(&sql)?;

    let counts = db.root_sql(&format!(
        "SELECT (SELECT COUNT(*) FROM {TEST_DB}.sbtest{TABLES}), (SELECT COUNT(*) FROM {TEST_DB}.big)"
    ))?;
    let expected = format!("{TABLE_SIZE}\t{BIG_ROWS}");
    ensure!(
        counts.lines().any(|l| l.trim() == expected),
        "load phase: expected row counts {expected:?}, got {counts:?}"
    );
    Ok(())
}
