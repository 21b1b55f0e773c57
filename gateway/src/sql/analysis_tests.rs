//! Tests of statement analysis: every class and operation, table qualification, CTE scoping,
//! subqueries, executable comments, `sql_mode` lexing tricks, MariaDB syntax, limits.

use super::*;
use StatementClass as C;

const DB: &str = "app";

fn ctx() -> Context<'static> {
    Context::new(Some(DB))
}

fn an_in(sql: &str, ctx: &Context<'_>) -> Analysis {
    analyze(sql, ctx).unwrap_or_else(|e| {
        panic!(
            "{sql:?} should be analysed, got: {e} (leading keyword {:?})",
            e.leading_keyword
        )
    })
}

fn an(sql: &str) -> Analysis {
    an_in(sql, &ctx())
}

fn un_in(sql: &str, ctx: &Context<'_>) -> Unanalyzable {
    match analyze(sql, ctx) {
        Ok(a) => panic!("{sql:?} should be unanalysable, got {a:?}"),
        Err(e) => e,
    }
}

fn un(sql: &str) -> Unanalyzable {
    un_in(sql, &ctx())
}

fn names(tables: &[TableRef]) -> Vec<String> {
    tables.iter().map(ToString::to_string).collect()
}

/// Asserts class, operation, reads and writes (as `db.table`).
#[track_caller]
fn check_in(sql: &str, ctx: &Context<'_>, class: C, op: &str, reads: &[&str], writes: &[&str]) {
    let a = an_in(sql, ctx);
    assert_eq!(
        (
            a.class,
            a.operation.name(),
            names(&a.reads),
            names(&a.writes)
        ),
        (
            class,
            op,
            reads.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            writes.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        ),
        "{sql:?}"
    );
}

#[track_caller]
fn check(sql: &str, class: C, op: &str, reads: &[&str], writes: &[&str]) {
    check_in(sql, &ctx(), class, op, reads, writes);
}

// ---------------------------------------------------------------------------------------------
// Classes and operations

#[test]
fn reads() {
    check("SELECT 1", C::Read, "select", &[], &[]);
    check("select * from t", C::Read, "select", &["app.t"], &[]);
    check(
        "SELECT a FROM shop.orders o WHERE o.id = 1",
        C::Read,
        "select",
        &["shop.orders"],
        &[],
    );
    check(
        "SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN other.c USING (id)",
        C::Read,
        "select",
        &["app.a", "app.b", "other.c"],
        &[],
    );
    check(
        "SELECT * FROM a, b, a",
        C::Read,
        "select",
        &["app.a", "app.b"],
        &[],
    );
    check(
        "SELECT 1 UNION ALL SELECT x FROM u",
        C::Read,
        "select",
        &["app.u"],
        &[],
    );
    check(
        "(SELECT 1 FROM a) UNION (SELECT 2 FROM b) ORDER BY 1",
        C::Read,
        "select",
        &["app.a", "app.b"],
        &[],
    );
    check("VALUES (1), (2)", C::Read, "select", &[], &[]);
    check(
        "SELECT * FROM t FOR UPDATE",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t LOCK IN SHARE MODE",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check("DO 1 + 1", C::Read, "do", &[], &[]);
    check(
        "DO (SELECT COUNT(*) FROM secret.t)",
        C::Read,
        "do",
        &["secret.t"],
        &[],
    );
    check(
        "SELECT * FROM information_schema.TABLES",
        C::Read,
        "select",
        &["information_schema.TABLES"],
        &[],
    );
    check(
        "SELECT * FROM INFORMATION_SCHEMA.tables",
        C::Read,
        "select",
        &["information_schema.tables"],
        &[],
    );
}

#[test]
fn writes() {
    check(
        "INSERT INTO t (a) VALUES (1)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT t VALUES (1), (2)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO t SET a = 1",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO shop.t SELECT * FROM u",
        C::Write,
        "insert",
        &["app.u"],
        &["shop.t"],
    );
    check(
        "INSERT IGNORE INTO t VALUES (1)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT LOW_PRIORITY INTO t VALUES (1)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a) + 1",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO t (a) SELECT b FROM u ON DUPLICATE KEY UPDATE a = (SELECT MAX(c) FROM v)",
        C::Write,
        "insert",
        &["app.u", "app.v"],
        &["app.t"],
    );
    check(
        "REPLACE INTO t VALUES (1)",
        C::Write,
        "replace",
        &[],
        &["app.t"],
    );
    check(
        "REPLACE t SELECT * FROM x.u",
        C::Write,
        "replace",
        &["x.u"],
        &["app.t"],
    );
    check(
        "UPDATE t SET a = 1 WHERE id = 2",
        C::Write,
        "update",
        &[],
        &["app.t"],
    );
    check(
        "UPDATE LOW_PRIORITY IGNORE t SET a = 1 WHERE id = 2",
        C::Write,
        "update",
        &[],
        &["app.t"],
    );
    check(
        "UPDATE t SET a = (SELECT MAX(b) FROM u) WHERE id IN (SELECT id FROM v)",
        C::Write,
        "update",
        &["app.u", "app.v"],
        &["app.t"],
    );
    check(
        "UPDATE t SET a = 1 ORDER BY id LIMIT 10",
        C::Write,
        "update",
        &[],
        &["app.t"],
    );
    check(
        "DELETE FROM t WHERE id = 1",
        C::Write,
        "delete",
        &[],
        &["app.t"],
    );
    check(
        "DELETE LOW_PRIORITY QUICK IGNORE FROM t WHERE id = 1",
        C::Write,
        "delete",
        &[],
        &["app.t"],
    );
    check(
        "DELETE FROM t WHERE id = 1 ORDER BY id LIMIT 1",
        C::Write,
        "delete",
        &[],
        &["app.t"],
    );
    check(
        "DELETE FROM t WHERE id IN (SELECT id FROM shop.u)",
        C::Write,
        "delete",
        &["shop.u"],
        &["app.t"],
    );
    check(
        "DELETE FROM t WHERE id = 1 RETURNING id",
        C::Write,
        "delete",
        &[],
        &["app.t"],
    );
    check("CALL p()", C::Write, "call", &[], &[]);
    check("CALL shop.p(1, @x)", C::Write, "call", &[], &[]);
    check("CALL p", C::Write, "call", &[], &[]);
    let a = an("CALL shop.p(1)");
    assert_eq!(
        a.flags.calls_procedure.map(|p| p.to_string()),
        Some("shop.p".into())
    );
    let a = an("CALL p");
    assert_eq!(
        a.flags.calls_procedure.map(|p| p.to_string()),
        Some("app.p".into())
    );
}

#[test]
fn multi_table_update_and_delete() {
    check(
        "UPDATE a, b SET a.x = b.y WHERE a.id = b.id",
        C::Write,
        "update",
        &["app.b"],
        &["app.a"],
    );
    check(
        "UPDATE a, b SET a.x = 1, b.y = 2 WHERE a.id = b.id",
        C::Write,
        "update",
        &[],
        &["app.a", "app.b"],
    );
    check(
        "UPDATE a JOIN shop.b AS bb ON a.id = bb.id SET bb.y = a.x",
        C::Write,
        "update",
        &["app.a"],
        &["shop.b"],
    );
    check(
        "UPDATE a x, (SELECT id FROM c) d SET x.v = 1 WHERE x.id = d.id",
        C::Write,
        "update",
        &["app.c"],
        &["app.a"],
    );
    // An unqualified column in a multi-table update: either table may be written.
    check(
        "UPDATE a, b SET v = 1 WHERE a.id = b.id",
        C::Write,
        "update",
        &[],
        &["app.a", "app.b"],
    );
    check(
        "DELETE a FROM a JOIN b ON a.id = b.id WHERE b.x = 1",
        C::Write,
        "delete",
        &["app.b"],
        &["app.a"],
    );
    check(
        "DELETE a.*, b.* FROM a JOIN b ON a.id = b.id WHERE b.x = 1",
        C::Write,
        "delete",
        &[],
        &["app.a", "app.b"],
    );
    check(
        "DELETE x FROM shop.a AS x JOIN b ON x.id = b.id WHERE b.x = 1",
        C::Write,
        "delete",
        &["app.b"],
        &["shop.a"],
    );
    check(
        "DELETE FROM a USING a JOIN b ON a.id = b.id WHERE b.x = 1",
        C::Write,
        "delete",
        &["app.b"],
        &["app.a"],
    );
    check(
        "DELETE FROM a.*, b USING a, b, c WHERE a.id = b.id AND b.id = c.id",
        C::Write,
        "delete",
        &["app.c"],
        &["app.a", "app.b"],
    );
}

#[test]
fn ddl() {
    check(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))",
        C::Ddl,
        "create_table",
        &[],
        &["app.t"],
    );
    check(
        "CREATE TABLE IF NOT EXISTS shop.t (id INT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        C::Ddl,
        "create_table",
        &[],
        &["shop.t"],
    );
    check(
        "CREATE TEMPORARY TABLE t (a INT)",
        C::Ddl,
        "create_table",
        &[],
        &["app.t"],
    );
    check(
        "CREATE TABLE t2 LIKE shop.t1",
        C::Ddl,
        "create_table",
        &["shop.t1"],
        &["app.t2"],
    );
    check(
        "CREATE TABLE t AS SELECT * FROM u",
        C::Ddl,
        "create_table",
        &["app.u"],
        &["app.t"],
    );
    check(
        "CREATE TABLE t SELECT a FROM secret.u",
        C::Ddl,
        "create_table",
        &["secret.u"],
        &["app.t"],
    );
    check(
        "CREATE VIEW v AS SELECT * FROM t",
        C::Ddl,
        "create_view",
        &["app.t"],
        &["app.v"],
    );
    check(
        "CREATE OR REPLACE VIEW shop.v AS SELECT * FROM secret.t",
        C::Ddl,
        "create_view",
        &["secret.t"],
        &["shop.v"],
    );
    check(
        "ALTER VIEW v AS SELECT * FROM u",
        C::Ddl,
        "alter_view",
        &["app.u"],
        &["app.v"],
    );
    check(
        "CREATE INDEX i ON t (a)",
        C::Ddl,
        "create_index",
        &[],
        &["app.t"],
    );
    check(
        "CREATE UNIQUE INDEX i ON shop.t (a, b)",
        C::Ddl,
        "create_index",
        &[],
        &["shop.t"],
    );
    check("CREATE DATABASE d", C::Ddl, "create_database", &[], &[]);
    check(
        "CREATE SCHEMA IF NOT EXISTS d CHARACTER SET utf8mb4",
        C::Ddl,
        "create_database",
        &[],
        &[],
    );
    check(
        "CREATE SEQUENCE s",
        C::Ddl,
        "create_sequence",
        &[],
        &["app.s"],
    );
    check(
        "ALTER TABLE t ADD COLUMN b INT",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    check(
        "ALTER TABLE t ENGINE=InnoDB",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    check(
        "ALTER TABLE shop.t ADD INDEX (b), ALGORITHM=INPLACE, LOCK=NONE",
        C::Ddl,
        "alter_table",
        &[],
        &["shop.t"],
    );
    check(
        "ALTER TABLE t RENAME TO u",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t", "app.u"],
    );
    check(
        "ALTER TABLE t RENAME other.u",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t", "other.u"],
    );
    check(
        "ALTER TABLE t RENAME COLUMN a TO b",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    check(
        "ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE shop.archive",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t", "shop.archive"],
    );
    check(
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (u_id) REFERENCES u (id)",
        C::Ddl,
        "alter_table",
        &["app.u"],
        &["app.t"],
    );
    check(
        "ALTER ONLINE IGNORE TABLE IF EXISTS t FORCE",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    check(
        "ALTER DATABASE d CHARACTER SET utf8mb4",
        C::Ddl,
        "alter_database",
        &[],
        &[],
    );
    check("DROP TABLE t", C::Ddl, "drop_table", &[], &["app.t"]);
    check(
        "DROP TABLE IF EXISTS a, shop.b",
        C::Ddl,
        "drop_table",
        &[],
        &["app.a", "shop.b"],
    );
    check(
        "DROP TEMPORARY TABLE a",
        C::Ddl,
        "drop_table",
        &[],
        &["app.a"],
    );
    check("DROP VIEW v", C::Ddl, "drop_view", &[], &["app.v"]);
    check("DROP INDEX i ON t", C::Ddl, "drop_index", &[], &["app.t"]);
    check("DROP DATABASE d", C::Ddl, "drop_database", &[], &[]);
    check("DROP SCHEMA IF EXISTS d", C::Ddl, "drop_database", &[], &[]);
    check("DROP SEQUENCE s", C::Ddl, "drop_sequence", &[], &["app.s"]);
    check(
        "DROP PROCEDURE IF EXISTS shop.p",
        C::Ddl,
        "drop_procedure",
        &[],
        &[],
    );
    check("DROP FUNCTION f", C::Ddl, "drop_function", &[], &[]);
    check("DROP TRIGGER tr", C::Ddl, "drop_trigger", &[], &[]);
    check("DROP EVENT e", C::Ddl, "drop_event", &[], &[]);
    check("TRUNCATE t", C::Ddl, "truncate", &[], &["app.t"]);
    check(
        "TRUNCATE TABLE shop.t",
        C::Ddl,
        "truncate",
        &[],
        &["shop.t"],
    );
    check(
        "RENAME TABLE a TO b",
        C::Ddl,
        "rename_table",
        &[],
        &["app.a", "app.b"],
    );
    check(
        "RENAME TABLE a TO b, shop.c TO archive.c",
        C::Ddl,
        "rename_table",
        &[],
        &["app.a", "app.b", "shop.c", "archive.c"],
    );
    check(
        "CREATE PROCEDURE p() SELECT 1",
        C::Ddl,
        "create_procedure",
        &[],
        &[],
    );
    check(
        "CREATE DEFINER = 'admin'@'%' FUNCTION f() RETURNS INT RETURN 1",
        C::Ddl,
        "create_function",
        &[],
        &[],
    );
    check(
        "CREATE TRIGGER tr BEFORE INSERT ON shop.t FOR EACH ROW SET NEW.a = 1",
        C::Ddl,
        "create_trigger",
        &[],
        &["shop.t"],
    );
    check(
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
        C::Ddl,
        "create_event",
        &[],
        &[],
    );
    assert!(an("CREATE PROCEDURE p() SELECT 1").flags.stored_program);
}

#[test]
fn database_names() {
    assert_eq!(an("DROP DATABASE shop").databases, ["shop"]);
    assert_eq!(an("DROP SCHEMA `My Shop`").databases, ["My Shop"]);
    assert_eq!(an("CREATE DATABASE IF NOT EXISTS d").databases, ["d"]);
    assert_eq!(
        an("ALTER DATABASE d CHARACTER SET utf8mb4").databases,
        ["d"]
    );
    // `ALTER DATABASE` without a name alters the current database.
    assert_eq!(an("ALTER DATABASE CHARACTER SET utf8mb4").databases, [DB]);
}

#[test]
fn alter_table_that_destroys_data() {
    for sql in [
        "ALTER TABLE t DROP COLUMN a",
        "ALTER TABLE t DROP a",
        "ALTER TABLE t ADD b INT, DROP IF EXISTS c",
        "ALTER TABLE t DROP PARTITION p0",
        "ALTER TABLE t TRUNCATE PARTITION p0",
    ] {
        assert!(an(sql).flags.drops_data, "{sql}");
    }
    for sql in [
        "ALTER TABLE t ADD COLUMN b INT",
        "ALTER TABLE t DROP INDEX i",
        "ALTER TABLE t DROP PRIMARY KEY",
        "ALTER TABLE t DROP FOREIGN KEY fk",
        "ALTER TABLE t ALTER COLUMN a DROP DEFAULT",
    ] {
        assert!(!an(sql).flags.drops_data, "{sql}");
    }
}

#[test]
fn dcl() {
    for (sql, op) in [
        ("GRANT SELECT ON shop.* TO 'agent'@'%'", "grant"),
        (
            "GRANT ALL PRIVILEGES ON *.* TO admin@localhost WITH GRANT OPTION",
            "grant",
        ),
        ("GRANT reader TO 'bob'@'10.0.0.%'", "grant"),
        ("REVOKE INSERT ON shop.t FROM 'agent'@'%'", "revoke"),
        (
            "CREATE USER 'agent'@'%' IDENTIFIED BY 'secret'",
            "create_user",
        ),
        ("CREATE USER IF NOT EXISTS u", "create_user"),
        (
            "CREATE OR REPLACE USER u@h IDENTIFIED VIA ed25519 USING PASSWORD('x')",
            "create_user",
        ),
        ("ALTER USER 'agent'@'%' IDENTIFIED BY 'new'", "alter_user"),
        ("ALTER USER CURRENT_USER() PASSWORD EXPIRE", "alter_user"),
        ("DROP USER 'agent'@'%'", "drop_user"),
        ("DROP USER IF EXISTS a, b@localhost", "drop_user"),
        ("RENAME USER a@'%' TO b@'%'", "rename_user"),
        ("CREATE ROLE reader", "create_role"),
        ("DROP ROLE reader", "drop_role"),
        (
            "SET PASSWORD FOR 'agent'@'%' = PASSWORD('x')",
            "set_password",
        ),
        ("SET PASSWORD = 'hash'", "set_password"),
        ("SET ROLE reader", "set_role"),
        ("SET DEFAULT ROLE reader FOR bob", "set_default_role"),
    ] {
        let a = an(sql);
        assert_eq!((a.class, a.operation.name()), (C::Dcl, op), "{sql}");
    }
}

#[test]
fn admin() {
    for (sql, op) in [
        ("KILL 42", "kill"),
        ("KILL QUERY 42", "kill"),
        ("KILL CONNECTION 42", "kill"),
        ("FLUSH PRIVILEGES", "flush"),
        ("FLUSH TABLES WITH READ LOCK", "flush"),
        ("SHUTDOWN", "shutdown"),
        ("INSTALL PLUGIN x SONAME 'x.so'", "install_plugin"),
        ("INSTALL SONAME 'auth_ed25519'", "install_plugin"),
        ("UNINSTALL PLUGIN x", "uninstall_plugin"),
        ("CHANGE MASTER TO MASTER_HOST = 'h'", "change_master"),
        ("START SLAVE", "start_replica"),
        ("START REPLICA", "start_replica"),
        ("STOP SLAVE", "stop_replica"),
        ("STOP ALL SLAVES", "stop_replica"),
        (
            "PURGE BINARY LOGS TO 'mysql-bin.000010'",
            "purge_binary_logs",
        ),
        ("RESET MASTER", "reset"),
        ("BINLOG 'AbCd'", "binlog"),
        ("CACHE INDEX t IN hot", "cache_index"),
        ("LOAD INDEX INTO CACHE t", "cache_index"),
        ("SET GLOBAL max_connections = 10", "set_global"),
        ("SET @@global.sql_mode = ''", "set_global"),
        (
            "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "set_global",
        ),
        ("SET @a = 1, GLOBAL general_log = 1", "set_global"),
    ] {
        let a = an(sql);
        assert_eq!((a.class, a.operation.name()), (C::Admin, op), "{sql}");
    }
    check(
        "OPTIMIZE TABLE t, shop.u",
        C::Admin,
        "optimize_table",
        &[],
        &["app.t", "shop.u"],
    );
    check(
        "REPAIR NO_WRITE_TO_BINLOG TABLE t QUICK",
        C::Admin,
        "repair_table",
        &[],
        &["app.t"],
    );
    check(
        "CHECK TABLE t EXTENDED",
        C::Admin,
        "check_table",
        &["app.t"],
        &[],
    );
    check(
        "CHECKSUM TABLE shop.t",
        C::Admin,
        "checksum_table",
        &["shop.t"],
        &[],
    );
    check(
        "ANALYZE TABLE t",
        C::Admin,
        "analyze_table",
        &["app.t"],
        &[],
    );
    assert_eq!(
        an("SET GLOBAL max_connections = 10").flags.variables,
        ["global.max_connections"]
    );
}

#[test]
fn server_files() {
    let a = an("SELECT * FROM t INTO OUTFILE '/tmp/t.csv' FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n'");
    assert_eq!(
        (a.class, a.operation.name()),
        (C::Admin, "select_into_outfile")
    );
    assert_eq!(names(&a.reads), ["app.t"]);
    assert!(a.flags.server_file && a.flags.into_outfile);
    let a = an("SELECT a INTO DUMPFILE '/tmp/x' FROM secret.t");
    assert_eq!(
        (a.class, a.operation.name()),
        (C::Admin, "select_into_outfile")
    );
    assert_eq!(names(&a.reads), ["secret.t"]);
    let a = an("SELECT LOAD_FILE('/etc/passwd')");
    assert_eq!((a.class, a.operation.name()), (C::Admin, "select"));
    assert!(a.flags.server_file);
    let a = an("LOAD DATA INFILE '/tmp/x.csv' INTO TABLE t FIELDS TERMINATED BY ','");
    assert_eq!((a.class, a.operation.name()), (C::Write, "load_data"));
    assert_eq!(names(&a.writes), ["app.t"]);
    assert!(a.flags.server_file && !a.flags.local_infile);
    let a = an("LOAD DATA LOCAL INFILE 'x.csv' REPLACE INTO TABLE shop.t (a, @b) SET c = @b");
    assert_eq!((a.class, a.operation.name()), (C::Write, "load_data"));
    assert_eq!(names(&a.writes), ["shop.t"]);
    assert!(!a.flags.server_file && a.flags.local_infile && a.flags.uses_user_variables);
    let a = an("LOAD XML INFILE '/tmp/x.xml' INTO TABLE t");
    assert_eq!(a.operation.name(), "load_data");
    assert!(!an("SELECT * FROM t").flags.server_file);
}

#[test]
fn transactions() {
    for (sql, op) in [
        ("BEGIN", "begin"),
        ("BEGIN WORK", "begin"),
        ("START TRANSACTION", "begin"),
        ("START TRANSACTION READ ONLY", "begin"),
        (
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE",
            "begin",
        ),
        ("COMMIT", "commit"),
        ("COMMIT WORK", "commit"),
        ("ROLLBACK", "rollback"),
        ("ROLLBACK TO SAVEPOINT s", "rollback"),
        ("SAVEPOINT s", "savepoint"),
        ("RELEASE SAVEPOINT s", "release_savepoint"),
        (
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "set_transaction",
        ),
        ("SET SESSION TRANSACTION READ ONLY", "set_transaction"),
        ("XA START 'x'", "xa"),
        ("XA COMMIT 'x'", "xa"),
        ("UNLOCK TABLES", "unlock_tables"),
    ] {
        let a = an(sql);
        assert_eq!((a.class, a.operation.name()), (C::Transaction, op), "{sql}");
    }
    check(
        "LOCK TABLES t READ, shop.u AS x WRITE, v LOW_PRIORITY WRITE",
        C::Transaction,
        "lock_tables",
        &["app.t"],
        &["shop.u", "app.v"],
    );
}

#[test]
fn session() {
    let a = an("SET NAMES utf8mb4");
    assert_eq!((a.class, a.operation.name()), (C::Session, "set_names"));
    assert_eq!(a.flags.charset.as_deref(), Some("utf8mb4"));
    let a = an("SET NAMES 'latin1' COLLATE 'latin1_swedish_ci'");
    assert_eq!(a.operation.name(), "set_names");
    assert_eq!(a.flags.charset.as_deref(), Some("latin1"));
    let a = an("SET CHARACTER SET gbk");
    assert_eq!((a.class, a.operation.name()), (C::Session, "set_names"));
    assert_eq!(a.flags.charset.as_deref(), Some("gbk"));
    let a = an("SET character_set_client = big5");
    assert_eq!((a.class, a.operation.name()), (C::Session, "set"));
    assert_eq!(a.flags.charset.as_deref(), Some("big5"));

    let a = an("SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'");
    assert_eq!((a.class, a.operation.name()), (C::Session, "set"));
    assert_eq!(
        a.flags.sql_mode,
        Some(SqlModeChange::Value(
            "ANSI_QUOTES,NO_BACKSLASH_ESCAPES".into()
        ))
    );
    assert_eq!(a.flags.variables, ["sql_mode"]);
    for (sql, change) in [
        ("SET sql_mode = ''", SqlModeChange::Value(String::new())),
        (
            "SET @@sql_mode = 'ANSI'",
            SqlModeChange::Value("ANSI".into()),
        ),
        (
            "SET @@session.sql_mode = \"TRADITIONAL\"",
            SqlModeChange::Value("TRADITIONAL".into()),
        ),
        ("SET LOCAL sql_mode = DEFAULT", SqlModeChange::Default),
        (
            "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')",
            SqlModeChange::Unknown,
        ),
        ("SET sql_mode = @saved", SqlModeChange::Unknown),
    ] {
        let a = an(sql);
        assert_eq!(
            (a.class, a.flags.sql_mode),
            (C::Session, Some(change)),
            "{sql}"
        );
    }
    assert_eq!(an("SET GLOBAL sql_mode = 'ANSI'").flags.sql_mode, None);
    assert_eq!(an("SET autocommit = 0").flags.sql_mode, None);

    let a = an("SET @a = 1, @b := (SELECT COUNT(*) FROM secret.t), autocommit = 1");
    assert_eq!((a.class, a.operation.name()), (C::Session, "set"));
    assert_eq!(a.flags.variables, ["@a", "@b", "autocommit"]);
    assert_eq!(names(&a.reads), ["secret.t"]);
    assert!(a.flags.sets_variable && a.flags.uses_user_variables);

    let a = an("USE shop");
    assert_eq!((a.class, a.operation.name()), (C::Session, "use"));
    assert_eq!(a.flags.changes_database.as_deref(), Some("shop"));
    assert_eq!(
        an("USE `my db`").flags.changes_database.as_deref(),
        Some("my db")
    );

    let a = an("DEALLOCATE PREPARE s");
    assert_eq!(
        (a.class, a.operation.name()),
        (C::Session, "deallocate_prepare")
    );
    assert_eq!(an("DROP PREPARE s").operation.name(), "deallocate_prepare");

    let a = an("SELECT a INTO @x FROM t");
    assert_eq!((a.class, a.operation.name()), (C::Read, "select"));
    assert_eq!(a.flags.variables, ["@x"]);
    let a = an("SELECT a FROM t INTO @x, @y");
    assert_eq!(names(&a.reads), ["app.t"]);
    assert_eq!(a.flags.variables, ["@x", "@y"]);
}

#[test]
fn show_and_describe() {
    for sql in [
        "SHOW TABLES",
        "SHOW FULL TABLES FROM shop LIKE 'o%'",
        "SHOW DATABASES",
        "SHOW VARIABLES LIKE 'sql_mode'",
        "SHOW GLOBAL STATUS",
        "SHOW PROCESSLIST",
        "SHOW GRANTS FOR CURRENT_USER()",
        "SHOW WARNINGS",
        "SHOW MASTER STATUS",
    ] {
        let a = an(sql);
        assert_eq!(
            (a.class, a.operation.name(), a.reads.len()),
            (C::Show, "show", 0),
            "{sql}"
        );
    }
    check("SHOW COLUMNS FROM t", C::Show, "show", &["app.t"], &[]);
    check(
        "SHOW FULL COLUMNS FROM t FROM shop",
        C::Show,
        "show",
        &["shop.t"],
        &[],
    );
    check("SHOW INDEX FROM shop.t", C::Show, "show", &["shop.t"], &[]);
    check(
        "SHOW CREATE TABLE secret.t",
        C::Show,
        "show",
        &["secret.t"],
        &[],
    );
    check("DESCRIBE t", C::Show, "describe", &["app.t"], &[]);
    check("DESC shop.t", C::Show, "describe", &["shop.t"], &[]);
    check(
        "EXPLAIN SELECT * FROM t JOIN u",
        C::Show,
        "explain",
        &["app.t", "app.u"],
        &[],
    );
    check(
        "EXPLAIN EXTENDED SELECT * FROM t",
        C::Show,
        "explain",
        &["app.t"],
        &[],
    );
    // EXPLAIN of a write reports its tables as reads: nothing is written.
    check(
        "EXPLAIN DELETE FROM t WHERE a = 1",
        C::Show,
        "explain",
        &["app.t"],
        &[],
    );
    check("HELP 'SELECT'", C::Show, "help", &[], &[]);
    // MariaDB's ANALYZE <statement> runs the statement.
    check(
        "ANALYZE DELETE FROM t WHERE a = 1",
        C::Write,
        "delete",
        &[],
        &["app.t"],
    );
    check(
        "ANALYZE FORMAT=JSON SELECT * FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
}

#[test]
fn every_class_and_operation_has_a_stable_name() {
    let classes: Vec<&str> = StatementClass::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(
        classes,
        [
            "read",
            "write",
            "ddl",
            "dcl",
            "admin",
            "transaction",
            "session",
            "show"
        ]
    );
    for class in StatementClass::ALL {
        assert_eq!(
            StatementClass::from_name(&class.name().to_uppercase()),
            Some(class)
        );
    }
    for &op in Operation::ALL {
        let name = op.name();
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}"
        );
        assert_eq!(Operation::from_name(name), Some(op));
        assert_eq!(
            Operation::from_name(&name.replace('_', " ").to_uppercase()),
            Some(op)
        );
    }
    assert_eq!(
        Operation::from_name("drop  database"),
        Some(Operation::DropDatabase)
    );
    assert_eq!(
        Operation::from_name("DROP-TABLE"),
        Some(Operation::DropTable)
    );
    assert_eq!(Operation::from_name("drop"), None);
    assert_eq!(Operation::from_name("drop database x"), None);
    assert_eq!(StatementClass::from_name("writes"), None);
}

#[test]
fn operations_are_all_produced() {
    // One statement per operation: a new operation must be added here with a statement.
    let by_op = [
        ("select", "SELECT 1"),
        ("select_into_outfile", "SELECT 1 INTO OUTFILE '/tmp/x'"),
        ("do", "DO 1"),
        ("insert", "INSERT INTO t VALUES (1)"),
        ("replace", "REPLACE INTO t VALUES (1)"),
        ("update", "UPDATE t SET a = 1"),
        ("delete", "DELETE FROM t"),
        ("load_data", "LOAD DATA INFILE 'x' INTO TABLE t"),
        ("call", "CALL p()"),
        ("create_table", "CREATE TABLE t (a INT)"),
        ("create_view", "CREATE VIEW v AS SELECT 1"),
        ("create_index", "CREATE INDEX i ON t (a)"),
        ("create_database", "CREATE DATABASE d"),
        ("create_sequence", "CREATE SEQUENCE s"),
        ("create_procedure", "CREATE PROCEDURE p() SELECT 1"),
        (
            "create_function",
            "CREATE FUNCTION f() RETURNS INT RETURN 1",
        ),
        (
            "create_trigger",
            "CREATE TRIGGER tr AFTER DELETE ON t FOR EACH ROW SET @x = 1",
        ),
        (
            "create_event",
            "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO SELECT 1",
        ),
        ("alter_table", "ALTER TABLE t ADD b INT"),
        ("alter_view", "ALTER VIEW v AS SELECT 2"),
        ("alter_database", "ALTER DATABASE d COMMENT 'x'"),
        ("drop_table", "DROP TABLE t"),
        ("drop_view", "DROP VIEW v"),
        ("drop_index", "DROP INDEX i ON t"),
        ("drop_database", "DROP DATABASE d"),
        ("drop_sequence", "DROP SEQUENCE s"),
        ("drop_procedure", "DROP PROCEDURE p"),
        ("drop_function", "DROP FUNCTION f"),
        ("drop_trigger", "DROP TRIGGER tr"),
        ("drop_event", "DROP EVENT e"),
        ("truncate", "TRUNCATE TABLE t"),
        ("rename_table", "RENAME TABLE a TO b"),
        ("grant", "GRANT SELECT ON *.* TO u"),
        ("revoke", "REVOKE SELECT ON *.* FROM u"),
        ("create_user", "CREATE USER u"),
        ("alter_user", "ALTER USER u ACCOUNT LOCK"),
        ("drop_user", "DROP USER u"),
        ("rename_user", "RENAME USER u TO v"),
        ("create_role", "CREATE ROLE r"),
        ("drop_role", "DROP ROLE r"),
        ("set_password", "SET PASSWORD = PASSWORD('x')"),
        ("set_role", "SET ROLE NONE"),
        ("set_default_role", "SET DEFAULT ROLE r"),
        ("kill", "KILL 1"),
        ("flush", "FLUSH LOGS"),
        ("shutdown", "SHUTDOWN"),
        ("install_plugin", "INSTALL PLUGIN p SONAME 'p'"),
        ("uninstall_plugin", "UNINSTALL SONAME 'p'"),
        ("change_master", "CHANGE MASTER TO MASTER_PORT = 1"),
        ("start_replica", "START SLAVE"),
        ("stop_replica", "STOP SLAVE"),
        ("purge_binary_logs", "PURGE MASTER LOGS BEFORE '2024-01-01'"),
        ("reset", "RESET SLAVE"),
        ("binlog", "BINLOG 'x'"),
        ("cache_index", "CACHE INDEX t IN c"),
        ("optimize_table", "OPTIMIZE TABLE t"),
        ("repair_table", "REPAIR TABLE t"),
        ("check_table", "CHECK TABLE t"),
        ("checksum_table", "CHECKSUM TABLE t"),
        ("analyze_table", "ANALYZE TABLE t"),
        ("set_global", "SET GLOBAL x = 1"),
        ("begin", "BEGIN"),
        ("commit", "COMMIT"),
        ("rollback", "ROLLBACK"),
        ("savepoint", "SAVEPOINT s"),
        ("release_savepoint", "RELEASE SAVEPOINT s"),
        ("set_transaction", "SET TRANSACTION READ WRITE"),
        ("xa", "XA RECOVER"),
        ("lock_tables", "LOCK TABLES t READ"),
        ("unlock_tables", "UNLOCK TABLES"),
        ("set", "SET @x = 1"),
        ("set_names", "SET NAMES utf8mb4"),
        ("use", "USE d"),
        ("deallocate_prepare", "DEALLOCATE PREPARE s"),
        ("show", "SHOW TABLES"),
        ("describe", "DESCRIBE t"),
        ("explain", "EXPLAIN SELECT 1"),
        ("help", "HELP 'x'"),
    ];
    let listed: Vec<&str> = by_op.iter().map(|(op, _)| *op).collect();
    let all: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
    assert_eq!(
        listed, all,
        "every operation is exercised, in declaration order"
    );
    for (op, sql) in by_op {
        assert_eq!(an(sql).operation.name(), op, "{sql}");
    }
    // And every class.
    let mut seen: Vec<StatementClass> = by_op.iter().map(|(_, sql)| an(sql).class).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, StatementClass::ALL);
}

// ---------------------------------------------------------------------------------------------
// Names

#[test]
fn tables_are_qualified_with_the_current_database() {
    let shop = Context::new(Some("shop"));
    check_in(
        "SELECT * FROM t JOIN other.u",
        &shop,
        C::Read,
        "select",
        &["shop.t", "other.u"],
        &[],
    );
    check_in(
        "DROP TABLE t",
        &shop,
        C::Ddl,
        "drop_table",
        &[],
        &["shop.t"],
    );
    let none = Context::new(None);
    let a = an_in("SELECT * FROM t JOIN other.u", &none);
    assert_eq!(
        a.reads,
        [
            TableRef {
                schema: None,
                name: "t".into()
            },
            TableRef {
                schema: Some("other".into()),
                name: "u".into()
            },
        ]
    );
    assert_eq!(a.reads[0].to_string(), "t");
    // Quoting and case are kept (names are case-sensitive on Linux).
    check(
        "SELECT * FROM `Shop`.`Order Items`, `t``x`",
        C::Read,
        "select",
        &["Shop.Order Items", "app.t`x"],
        &[],
    );
    let x = TableRef::new(Some("Shop"), "T");
    assert!(x.same_table(&TableRef::new(Some("shop"), "t"), true));
    assert!(!x.same_table(&TableRef::new(Some("shop"), "t"), false));
    assert!(!x.same_table(&TableRef::new(None, "T"), true));
}

#[test]
fn keywords_as_names_are_identifiers_after_a_dot() {
    // The server lexes a word after a qualifying `.` (and a word before one) as an identifier.
    check(
        "SELECT * FROM shop.select",
        C::Read,
        "select",
        &["shop.select"],
        &[],
    );
    check(
        "SELECT * FROM select.t",
        C::Read,
        "select",
        &["select.t"],
        &[],
    );
    check("SELECT t.1a FROM t", C::Read, "select", &["app.t"], &[]);
    check(
        "SELECT * FROM $t, 1t, shop.$x",
        C::Read,
        "select",
        &["app.$t", "app.1t", "shop.$x"],
        &[],
    );
    check(
        "SELECT * FROM `données`.`été`",
        C::Read,
        "select",
        &["données.été"],
        &[],
    );
    // Unquoted reserved words are not table names: sqlparser misreading is refused.
    un("SELECT * FROM select");
}

// ---------------------------------------------------------------------------------------------
// CTEs, subqueries, derived tables

#[test]
fn cte_names_hide_tables_only_in_their_scope() {
    check(
        "WITH c AS (SELECT * FROM t) SELECT * FROM c",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b JOIN a",
        C::Read,
        "select",
        &[],
        &[],
    );
    // A CTE body does not see itself unless RECURSIVE: `t` in its body is the table.
    check(
        "WITH t AS (SELECT * FROM t) SELECT * FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
        C::Read,
        "select",
        &[],
        &[],
    );
    // A later CTE is not visible in an earlier one.
    check(
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
        C::Read,
        "select",
        &["app.b"],
        &[],
    );
    // A CTE in a subquery does not hide the table outside it.
    check(
        "SELECT * FROM c WHERE EXISTS (WITH c AS (SELECT 1) SELECT * FROM c)",
        C::Read,
        "select",
        &["app.c"],
        &[],
    );
    // ... but is visible in nested subqueries inside it.
    check(
        "WITH c AS (SELECT id FROM t) SELECT * FROM u WHERE id IN (SELECT id FROM c)",
        C::Read,
        "select",
        &["app.t", "app.u"],
        &[],
    );
    // A qualified name is never a CTE.
    check(
        "WITH c AS (SELECT 1) SELECT * FROM app.c",
        C::Read,
        "select",
        &["app.c"],
        &[],
    );
    check(
        "INSERT INTO t WITH c AS (SELECT * FROM u) SELECT * FROM c",
        C::Write,
        "insert",
        &["app.u"],
        &["app.t"],
    );
}

#[test]
fn subqueries_and_derived_tables_are_read() {
    check(
        "SELECT (SELECT MAX(a) FROM s1), b FROM t WHERE c IN (SELECT c FROM s2) AND EXISTS (SELECT 1 FROM s3)",
        C::Read,
        "select",
        &["app.s1", "app.t", "app.s2", "app.s3"],
        &[],
    );
    check(
        "SELECT * FROM (SELECT * FROM (SELECT * FROM deep.t) x) y",
        C::Read,
        "select",
        &["deep.t"],
        &[],
    );
    check(
        "SELECT * FROM t JOIN (SELECT id FROM u UNION SELECT id FROM v) d ON t.id = d.id",
        C::Read,
        "select",
        &["app.t", "app.u", "app.v"],
        &[],
    );
    check(
        "SELECT * FROM t WHERE a = ANY (SELECT b FROM u) HAVING COUNT(*) > (SELECT 1 FROM v)",
        C::Read,
        "select",
        &["app.t", "app.u", "app.v"],
        &[],
    );
    check(
        "SELECT * FROM JSON_TABLE((SELECT doc FROM d), '$[*]' COLUMNS (a INT PATH '$')) AS jt",
        C::Read,
        "select",
        &["app.d"],
        &[],
    );
    check(
        "UPDATE t SET a = 1 WHERE id = (SELECT MIN(id) FROM (SELECT id FROM t) x)",
        C::Write,
        "update",
        &["app.t"],
        &["app.t"],
    );
    check(
        "DELETE FROM t WHERE id IN (SELECT id FROM (SELECT id FROM t WHERE x) s)",
        C::Write,
        "delete",
        &["app.t"],
        &["app.t"],
    );
    check(
        "INSERT INTO t (a) VALUES ((SELECT secret FROM s.keys LIMIT 1))",
        C::Write,
        "insert",
        &["s.keys"],
        &["app.t"],
    );
}

// ---------------------------------------------------------------------------------------------
// Flags

#[test]
fn update_and_delete_without_where() {
    for (sql, no_where) in [
        ("UPDATE t SET a = 1", true),
        ("UPDATE t SET a = 1 WHERE 1 = 1", true),
        ("UPDATE t SET a = 1 WHERE TRUE", true),
        ("UPDATE t SET a = 1 WHERE ?", true),
        ("UPDATE t SET a = 1 WHERE NOW() > 0", true),
        ("UPDATE t SET a = 1 LIMIT 10", true),
        ("UPDATE t SET a = 1 WHERE id = 1", false),
        ("UPDATE t SET a = 1 WHERE t.id > 5", false),
        ("UPDATE t SET a = 1 WHERE EXISTS (SELECT 1 FROM u)", false),
        ("DELETE FROM t", true),
        ("DELETE FROM t WHERE 1", true),
        ("DELETE FROM t WHERE @x = 1", true),
        ("DELETE FROM t ORDER BY id LIMIT 5", true),
        ("DELETE FROM t WHERE id = 1", false),
        ("DELETE a FROM a JOIN b ON a.id = b.id", true),
        ("DELETE a FROM a JOIN b ON a.id = b.id WHERE b.x = 1", false),
        ("UPDATE a, b SET a.x = b.x", true),
    ] {
        assert_eq!(an(sql).flags.no_where, no_where, "{sql}");
    }
    assert!(!an("SELECT * FROM t").flags.no_where);
    assert!(!an("INSERT INTO t VALUES (1)").flags.no_where);
}

#[test]
fn function_calls_are_flagged() {
    assert!(
        !an("SELECT COUNT(*), CONCAT(a, 'x'), NOW(), JSON_EXTRACT(d, '$.a'), ST_AsText(g) FROM t")
            .flags
            .calls_function
    );
    assert!(an("SELECT my_func(a) FROM t").flags.calls_function);
    assert!(an("SELECT shop.f()").flags.calls_function);
    assert!(
        an("UPDATE t SET a = stored_fn(1) WHERE id = 1")
            .flags
            .calls_function
    );
    assert!(an("SELECT `count`(*) FROM t").flags.calls_function);
}

#[test]
fn prepare_is_analysed_as_the_statement_prepared() {
    let a = an("PREPARE s FROM 'DELETE FROM t WHERE id = ?'");
    assert_eq!((a.class, a.operation.name()), (C::Write, "delete"));
    assert_eq!(names(&a.writes), ["app.t"]);
    assert_eq!(a.flags.prepare.as_deref(), Some("s"));
    assert!(!a.flags.no_where);
    let a = an("PREPARE s FROM 'DROP TABLE `x`'");
    assert_eq!((a.class, a.operation.name()), (C::Ddl, "drop_table"));
    // The text is lexed as the server will lex it when preparing.
    let a = an("PREPARE s FROM 'SELECT 1 /*! , (SELECT 1 FROM secret.t) */'");
    assert_eq!(names(&a.reads), ["secret.t"]);

    let e = un("PREPARE s FROM @sql");
    assert_eq!(e.leading_keyword, "PREPARE");
    assert!(e.reason.contains("variable"), "{}", e.reason);
    un("PREPARE s FROM CONCAT('DROP ', 'TABLE t')");
    un("PREPARE s FROM 'SELECT 1; DROP TABLE t'");
    un("PREPARE s FROM 'PREPARE t FROM ''SELECT 1'''");
    let e = un("EXECUTE s");
    assert_eq!(e.leading_keyword, "EXECUTE");
    let e = un("EXECUTE s USING @a");
    assert_eq!(e.leading_keyword, "EXECUTE");
}

#[test]
fn set_statement_for_is_the_inner_statement() {
    let a = an("SET STATEMENT max_statement_time = 1 FOR DELETE FROM t");
    assert_eq!((a.class, a.operation.name()), (C::Write, "delete"));
    assert_eq!(names(&a.writes), ["app.t"]);
    assert!(a.flags.no_where);
    assert_eq!(a.flags.variables, ["max_statement_time"]);
    let a = an("SET STATEMENT sql_mode = 'STRICT_ALL_TABLES' FOR SELECT * FROM t");
    assert_eq!(
        (a.class, names(&a.reads)),
        (C::Read, vec!["app.t".to_string()])
    );
    // Statement-scoped: the session's sql_mode does not change.
    assert_eq!(a.flags.sql_mode, None);
    assert_eq!(a.flags.variables, ["sql_mode"]);
    un("SET STATEMENT x = (SELECT 1 FROM secret.t) FOR SELECT 1");
    // A statement-scoped mode that changes lexing: which mode lexes the inner statement must
    // not matter, so it is refused.
    un("SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT \"x\" FROM t");
    un("SET STATEMENT sql_mode = 'NO_BACKSLASH_ESCAPES' FOR SELECT '\\' , (SELECT 1 FROM secret.t) , ''");
    un("SET STATEMENT character_set_client = 'gbk' FOR SELECT 1");
    // SET STATEMENT must be followed by a statement.
    un("SET STATEMENT x = 1");
}

// ---------------------------------------------------------------------------------------------
// Lexing: executable comments, quotes, sql_mode

#[test]
fn executable_comments_are_code() {
    check(
        "SELECT 1 /*! , (select * from secret.t) */",
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check(
        "SELECT 1 /*!, (select * from secret.t) */",
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check(
        "SELECT 1 /*M! , (SELECT a FROM secret.t) */",
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check("/*! DROP TABLE t */", C::Ddl, "drop_table", &[], &["app.t"]);
    check(
        "/*!40101 DROP TABLE t */",
        C::Ddl,
        "drop_table",
        &[],
        &["app.t"],
    );
    check(
        "SELECT * FROM /*!50001 secret. */t",
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check("DROP /*! TABLE */ t", C::Ddl, "drop_table", &[], &["app.t"]);
    // A plain comment is not code.
    check(
        "SELECT 1 /* , (SELECT * FROM secret.t) */",
        C::Read,
        "select",
        &[],
        &[],
    );
    check(
        "SELECT 1 -- , (SELECT * FROM secret.t)\n",
        C::Read,
        "select",
        &[],
        &[],
    );
    check(
        "SELECT 1 # , (SELECT * FROM secret.t)",
        C::Read,
        "select",
        &[],
        &[],
    );
    check("/* DROP TABLE t */ SELECT 1", C::Read, "select", &[], &[]);
    // `--` without a space is not a comment: `1--1` is `1 - -1`.
    check("SELECT 1--1 FROM t", C::Read, "select", &["app.t"], &[]);
    // Comments splitting keywords.
    let e = un("DR/**/OP TABLE t");
    assert_eq!(e.leading_keyword, "DR");
}

#[test]
fn executable_comments_follow_the_server_version() {
    // MariaDB skips MySQL-only versions 50700..=99999: the WHERE is not there.
    let a = an("DELETE FROM t /*!50700 WHERE id = 1 */");
    assert!(a.flags.no_where);
    let a = an("DELETE FROM t /*!80000 WHERE id = 1 */");
    assert!(a.flags.no_where);
    // Versions up to 10.0 run on every supported MariaDB.
    assert!(!an("DELETE FROM t /*!50100 WHERE id = 1 */").flags.no_where);
    // Newer MariaDB versions need the server version.
    let e = un("SELECT 1 /*M!100500 , (SELECT * FROM secret.t) */");
    assert_eq!(e.leading_keyword, "SELECT");
    assert!(e.reason.contains("version"), "{}", e.reason);
    let mariadb_10_11 = ctx().with_server(Server::MariaDb {
        version_id: Some(101106),
    });
    check_in(
        "SELECT 1 /*M!100500 , (SELECT * FROM secret.t) */",
        &mariadb_10_11,
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check_in(
        "SELECT 1 /*!110000 , (SELECT * FROM secret.t) */",
        &mariadb_10_11,
        C::Read,
        "select",
        &[],
        &[],
    );
    check_in(
        "SELECT 1 /*!100500 , (SELECT * FROM secret.t) */",
        &mariadb_10_11,
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    // MySQL: `/*M!` is a comment, `/*!80000` runs on 8.0.36.
    let mysql8 = ctx().with_server(Server::MySql { version_id: 80036 });
    check_in(
        "SELECT 1 /*M! , (SELECT * FROM secret.t) */",
        &mysql8,
        C::Read,
        "select",
        &[],
        &[],
    );
    check_in(
        "SELECT 1 /*!80000 , (SELECT * FROM secret.t) */",
        &mysql8,
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check_in(
        "SELECT 1 /*!90000 , (SELECT * FROM secret.t) */",
        &mysql8,
        C::Read,
        "select",
        &[],
        &[],
    );
    un_in("SELECT 1 /*!800001 , (SELECT * FROM secret.t) */", &mysql8);

    assert_eq!(
        Server::from_version_string("5.5.5-10.11.6-MariaDB-0+deb12u1"),
        Some(Server::MariaDb {
            version_id: Some(101106)
        })
    );
    assert_eq!(
        Server::from_version_string("11.4.2-MariaDB"),
        Some(Server::MariaDb {
            version_id: Some(110402)
        })
    );
    assert_eq!(
        Server::from_version_string("8.0.36"),
        Some(Server::MySql { version_id: 80036 })
    );
    assert_eq!(Server::from_version_string("garbage"), None);
}

#[test]
fn executable_comments_hiding_a_second_statement_are_refused() {
    let e = un("SELECT 1 /*!; DROP TABLE t */");
    assert_eq!(e.leading_keyword, "SELECT");
    un("SELECT 1; DROP TABLE t");
    un("SELECT 1 /*! ; */");
    // An executable comment that two readings end in different places.
    un("SELECT 1 /*! '*/' , (SELECT * FROM secret.t) -- ' */");
    // Unterminated.
    un("SELECT 1 /*! , (SELECT * FROM secret.t)");
    un("SELECT 'abc");
    // A trailing `;` is fine.
    check("SELECT 1;", C::Read, "select", &[], &[]);
    check("SELECT 1 ; ", C::Read, "select", &[], &[]);
}

#[test]
fn ansi_quotes_decide_what_double_quotes_are() {
    let ansi = ctx().with_mode(Mode::DEFAULT.with_sql_mode("ANSI_QUOTES"));
    // Under ANSI_QUOTES "x" is a name.
    check_in(
        "SELECT * FROM \"secret\".\"t\"",
        &ansi,
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    check_in(
        "DROP TABLE \"t\"",
        &ansi,
        C::Ddl,
        "drop_table",
        &[],
        &["app.t"],
    );
    check(
        "SELECT \"secret.t\" FROM u",
        C::Read,
        "select",
        &["app.u"],
        &[],
    );
    // A backslash does not escape in an identifier: under ANSI_QUOTES the subquery is code.
    check_in(
        "SELECT \"a\\\", (SELECT 1 FROM secret.t) AS \"b\"",
        &ansi,
        C::Read,
        "select",
        &["secret.t"],
        &[],
    );
    // Without ANSI_QUOTES the same bytes are one string and a column.
    check(
        "SELECT \"a\\\", (SELECT 1 FROM secret.t) AS \\\"b\" FROM u",
        C::Read,
        "select",
        &["app.u"],
        &[],
    );
    // `ANSI` implies ANSI_QUOTES.
    let ansi_mode = ctx().with_mode(Mode::DEFAULT.with_sql_mode("ANSI"));
    check_in(
        "DELETE FROM \"t\"",
        &ansi_mode,
        C::Write,
        "delete",
        &[],
        &["app.t"],
    );
}

#[test]
fn no_backslash_escapes_decides_where_strings_end() {
    let nbe = ctx().with_mode(Mode::DEFAULT.with_sql_mode("NO_BACKSLASH_ESCAPES"));
    let sql = "SELECT '\\' , (SELECT * FROM secret.t) , '' FROM u";
    // NO_BACKSLASH_ESCAPES: `'\'` is a whole string; the subquery is code.
    check_in(sql, &nbe, C::Read, "select", &["secret.t", "app.u"], &[]);
    // By default `\'` escapes the quote: one long string.
    check(
        "SELECT '\\' , (SELECT * FROM secret.t) , ''' FROM u",
        C::Read,
        "select",
        &["app.u"],
        &[],
    );
    // Strings keep their values through re-quoting.
    let a = an_in("SET sql_mode = 'a\\b'", &nbe);
    assert_eq!(a.flags.sql_mode, Some(SqlModeChange::Value("a\\b".into())));
    let a = an("SET sql_mode = 'a\\'b''c\\\\'");
    assert_eq!(
        a.flags.sql_mode,
        Some(SqlModeChange::Value("a'b'c\\".into()))
    );
    let a = an("SELECT _utf8mb4'\\x' LIKE 'a\\%b', N'it''s'");
    assert_eq!(a.operation.name(), "select");
}

#[test]
fn multi_byte_charsets_are_lexed_as_the_server_does() {
    // In GBK 0xBF5C is one character: the quote after it closes the string, and the subquery
    // is code.
    let gbk = ctx().with_mode(Mode::DEFAULT.with_charset(Charset::Gbk));
    let sql = b"SELECT '\xbf\\' , (SELECT 1 FROM secret.t) , '' FROM u";
    let e = analyze(&sql[..], &gbk).unwrap_err();
    assert!(e.reason.contains("character set"), "{}", e.reason);
    // Without a byte >= 0x80 next to a backslash, GBK lexes like UTF-8.
    let a = analyze("SELECT * FROM t WHERE a = 'x\\'y'", &gbk).unwrap();
    assert_eq!(names(&a.reads), ["app.t"]);
    // Non-UTF-8 bytes in strings are fine; in names they are refused.
    let a = analyze(&b"SELECT * FROM t WHERE a = '\xff\xfe'"[..], &ctx()).unwrap();
    assert_eq!(names(&a.reads), ["app.t"]);
    assert!(analyze(&b"SELECT * FROM t\xff"[..], &ctx()).is_err());
    let latin1 = ctx().with_mode(Mode::DEFAULT.with_charset(Charset::Latin1));
    let a = analyze(&b"SELECT * FROM caf\xe9"[..], &latin1).unwrap();
    assert_eq!(names(&a.reads), ["app.café"]);
}

#[test]
fn dollar_quotes_and_other_dialects_are_not_strings() {
    // MariaDB: `$$` is an identifier, not a dollar-quoted string.
    check(
        "SELECT $$, (SELECT 1 FROM secret.t), $$ FROM u",
        C::Read,
        "select",
        &["secret.t", "app.u"],
        &[],
    );
    // Backslash-N is NULL.
    check("SELECT \\N FROM t", C::Read, "select", &["app.t"], &[]);
}

// ---------------------------------------------------------------------------------------------
// MariaDB syntax in practice

#[test]
fn mariadb_syntax_in_practice() {
    check(
        "SELECT * FROM t LIMIT 10 OFFSET 5",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t LIMIT 5, 10",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT HIGH_PRIORITY STRAIGHT_JOIN * FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t FORCE INDEX (i) WHERE a = 1",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM a STRAIGHT_JOIN b ON a.id = b.id",
        C::Read,
        "select",
        &["app.a", "app.b"],
        &[],
    );
    check(
        "SELECT a, COUNT(*) FROM t GROUP BY a WITH ROLLUP",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT GROUP_CONCAT(a ORDER BY a SEPARATOR ',') FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT DATE_ADD(NOW(), INTERVAL 1 DAY)",
        C::Read,
        "select",
        &[],
        &[],
    );
    check(
        "SELECT * FROM t WHERE a REGEXP '^x' COLLATE utf8mb4_bin",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT _utf8mb4'x', X'41', B'01', 0x41, N'n'",
        C::Read,
        "select",
        &[],
        &[],
    );
    check(
        "SELECT @@session.sql_mode, @@version",
        C::Read,
        "select",
        &[],
        &[],
    );
    check(
        "SELECT * FROM t WHERE MATCH (a) AGAINST ('x' IN BOOLEAN MODE)",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t PARTITION (p0)",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check("SELECT 1 FROM DUAL", C::Read, "select", &[], &[]);
    check(
        "SELECT * FROM t WHERE id = ?",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT CAST(a AS CHAR), CONVERT(b USING utf8mb4) FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "REPLACE INTO shop.t (a, b) VALUES (1, 2)",
        C::Write,
        "replace",
        &[],
        &["shop.t"],
    );
    check(
        "INSERT INTO t VALUES (1) RETURNING id",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "CREATE TABLE t2 LIKE t1",
        C::Ddl,
        "create_table",
        &["app.t1"],
        &["app.t2"],
    );
    check(
        "RENAME TABLE old TO new",
        C::Ddl,
        "rename_table",
        &[],
        &["app.old", "app.new"],
    );
    check("SHOW TABLES", C::Show, "show", &[], &[]);
    check(
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        C::Session,
        "set_names",
        &[],
        &[],
    );
    check(
        "SET SESSION sql_mode = 'STRICT_TRANS_TABLES'",
        C::Session,
        "set",
        &[],
        &[],
    );
    check("START TRANSACTION", C::Transaction, "begin", &[], &[]);
    check(
        "GRANT SELECT, INSERT ON shop.* TO 'app'@'10.%'",
        C::Dcl,
        "grant",
        &[],
        &[],
    );
    check("KILL 12345", C::Admin, "kill", &[], &[]);
    check("CALL p()", C::Write, "call", &[], &[]);
    // mysqldump's prologue and epilogue.
    check(
        "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */",
        C::Session,
        "set",
        &[],
        &[],
    );
    check(
        "/*!40103 SET TIME_ZONE='+00:00' */",
        C::Session,
        "set",
        &[],
        &[],
    );
    check(
        "/*!40000 ALTER TABLE `t` DISABLE KEYS */",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    check(
        "LOCK TABLES `t` WRITE",
        C::Transaction,
        "lock_tables",
        &[],
        &["app.t"],
    );
    check(
        "DROP TABLE IF EXISTS `t`",
        C::Ddl,
        "drop_table",
        &[],
        &["app.t"],
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn unparseable_statements_are_refused_with_their_leading_keyword() {
    for (sql, keyword) in [
        ("FROBNICATE the table", "FROBNICATE"),
        ("SELECT FROM WHERE", "SELECT"),
        ("select * frm t", "SELECT"),
        ("HANDLER t OPEN", "HANDLER"),
        ("HANDLER t READ FIRST", "HANDLER"),
        ("BEGIN NOT ATOMIC SELECT 1; END", "BEGIN"),
        ("CREATE PROCEDURE p() BEGIN DELETE FROM t; END", "CREATE"),
        ("GET DIAGNOSTICS @n = NUMBER", "GET"),
        ("SIGNAL SQLSTATE '45000'", "SIGNAL"),
        ("/*!  */", ""),
        ("", ""),
        ("  -- nothing\n", ""),
        ("  /*! DROP */ x", "DROP"),
        ("(SELECT 1", "SELECT"),
        ("GRANT SELECT ON t TO (SELECT user FROM u)", "GRANT"),
        ("SHOW TABLES WHERE (SELECT 1 FROM secret.t)", "SHOW"),
        ("KILL (SELECT 1 FROM secret.t)", "KILL"),
        ("SELECT * FROM TABLE(f())", "SELECT"),
    ] {
        let e = un(sql);
        assert_eq!(e.leading_keyword, keyword, "{sql:?}: {}", e.reason);
        assert!(!e.reason.is_empty());
        assert!(e
            .to_string()
            .starts_with("statement could not be analysed: "));
    }
}

#[test]
fn data_changing_ctes_and_foreign_syntax_are_refused() {
    // Never guessed to be a read.
    un("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x");
    un("SELECT * FROM t FOR XML AUTO");
    un("TABLE t");
    un("INSERT OR REPLACE INTO t VALUES (1)");
    un("UPDATE t SET a = 1 FROM u");
    un("SELECT * FROM t1 PIVOT (SUM(a) FOR b IN (1)) p");
}

// ---------------------------------------------------------------------------------------------
// Limits

fn with_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    with_small_stack(|| {
        let deep = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = un(&deep);
        assert!(e.reason.contains("nested"), "{}", e.reason);
        let deep_subqueries = format!(
            "SELECT * FROM t WHERE a IN {}1{}",
            "(SELECT a FROM t WHERE a IN ".repeat(5_000),
            ")".repeat(5_000)
        );
        un(&deep_subqueries);
        let unclosed = format!("SELECT {}", "(".repeat(1_000_000));
        un(&unclosed);
        let long_chain = format!(
            "SELECT * FROM t WHERE {}",
            vec!["a = 1"; 100_000].join(" OR ")
        );
        let e = un(&long_chain);
        assert!(e.reason.contains("complex"), "{}", e.reason);
        let unions = vec!["SELECT a FROM t"; 10_000].join(" UNION ");
        un(&unions);
        let not_not = format!("SELECT {}1", "NOT ".repeat(100_000));
        un(&not_not);
        let minus = format!("SELECT {}1", "- ".repeat(100_000));
        un(&minus);
    });
}

#[test]
fn nesting_within_the_limits_is_analysed() {
    with_small_stack(|| {
        let nested = format!(
            "SELECT * FROM {}deep.t{}",
            "(SELECT * FROM ".repeat(20),
            ") x".repeat(20)
        );
        check(&nested, C::Read, "select", &["deep.t"], &[]);
        let parens = format!(
            "SELECT {}1{} FROM t",
            "(".repeat(MAX_NESTING - 1),
            ")".repeat(MAX_NESTING - 1)
        );
        check(&parens, C::Read, "select", &["app.t"], &[]);
        let chain = format!("SELECT * FROM t WHERE {}", vec!["a = 1"; 1000].join(" OR "));
        check(&chain, C::Read, "select", &["app.t"], &[]);
        // A chain just below the limit is parsed, walked and dropped within a 2 MiB stack.
        let sum = format!("SELECT {} FROM t", vec!["a"; MAX_CHAIN].join(" + "));
        check(&sum, C::Read, "select", &["app.t"], &[]);
        let sum = format!("SELECT {} FROM t", vec!["a"; MAX_CHAIN + 2].join(" + "));
        un(&sum);
        let in_list = format!(
            "SELECT * FROM t WHERE a IN ({})",
            vec!["1"; 10_000].join(", ")
        );
        check(&in_list, C::Read, "select", &["app.t"], &[]);
        let unions = vec!["SELECT a FROM t"; 200].join(" UNION ALL ");
        check(&unions, C::Read, "select", &["app.t"], &[]);
    });
}

#[test]
fn mariadb_ddl_forms_sqlparser_does_not_know() {
    // Partitioning: sqlparser fails, the keyword fallback analyses it (no query inside).
    check(
        "CREATE TABLE t (id INT PRIMARY KEY) PARTITION BY RANGE (id) \
         (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)",
        C::Ddl,
        "create_table",
        &[],
        &["app.t"],
    );
    check(
        "CREATE TABLE shop.t (a INT) WITH SYSTEM VERSIONING",
        C::Ddl,
        "create_table",
        &[],
        &["shop.t"],
    );
    // ... but never when a query could be in it.
    un("CREATE TABLE t (a INT) IGNORE SELECT * FROM secret.u");
    un("CREATE TABLE t (a INT) (SELECT * FROM secret.u)");
    // Foreign keys read the parent table, in either path.
    check(
        "CREATE TABLE t (id INT, u INT, FOREIGN KEY (u) REFERENCES shop.u (id) ON DELETE CASCADE)",
        C::Ddl,
        "create_table",
        &["shop.u"],
        &["app.t"],
    );
    check(
        "CREATE TABLE t (u INT REFERENCES p (id)) PARTITION BY HASH (u) PARTITIONS 4",
        C::Ddl,
        "create_table",
        &["app.p"],
        &["app.t"],
    );
    check(
        "CREATE TABLE t (a INT, b INT AS (a + 1) VIRTUAL)",
        C::Ddl,
        "create_table",
        &[],
        &["app.t"],
    );
    check(
        "CREATE OR REPLACE TABLE t (a INT)",
        C::Ddl,
        "create_table",
        &[],
        &["app.t"],
    );
    check(
        "CREATE FULLTEXT INDEX i ON t (a)",
        C::Ddl,
        "create_index",
        &[],
        &["app.t"],
    );
    check(
        "CREATE SPATIAL INDEX i ON shop.t (g)",
        C::Ddl,
        "create_index",
        &[],
        &["shop.t"],
    );
    check(
        "CREATE VIEW v (a) AS SELECT a FROM t WITH CASCADED CHECK OPTION",
        C::Ddl,
        "create_view",
        &["app.t"],
        &["app.v"],
    );
    check(
        "CREATE ALGORITHM=MERGE DEFINER=CURRENT_USER SQL SECURITY INVOKER VIEW v AS SELECT * FROM t",
        C::Ddl,
        "create_view",
        &["app.t"],
        &["app.v"],
    );
    check(
        "ALTER TABLE t ADD PARTITION (PARTITION p3 VALUES LESS THAN (100))",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    check(
        "ALTER TABLE t MODIFY a BIGINT NOT NULL, CHANGE b c INT",
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
    // Stored programs with a body of several statements are not analysed.
    un("CREATE PROCEDURE p(IN a INT) BEGIN SELECT a; END");
    un("CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW BEGIN SET NEW.a = 1; END");
    check(
        "CREATE FUNCTION f RETURNS STRING SONAME 'udf.so'",
        C::Ddl,
        "create_function",
        &[],
        &[],
    );
}

#[test]
fn more_syntax_in_practice() {
    check(
        "SELECT a DIV 2, a MOD 2, MOD(a, 2), a XOR b FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT 0x41, 0b01, X'41' FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT 'a' 'b' \"c\" FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t USE INDEX FOR JOIN (i) IGNORE INDEX (j)",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t WHERE a = 1 LIMIT 1 FOR UPDATE SKIP LOCKED",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t1 INTERSECT SELECT * FROM t2 EXCEPT SELECT * FROM t3",
        C::Read,
        "select",
        &["app.t1", "app.t2", "app.t3"],
        &[],
    );
    check(
        "SELECT a->>'$.x' FROM t",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t1 NATURAL LEFT JOIN t2 CROSS JOIN t3",
        C::Read,
        "select",
        &["app.t1", "app.t2", "app.t3"],
        &[],
    );
    check(
        "INSERT INTO t VALUE (1)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO t PARTITION (p0) VALUES (1)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT HIGH_PRIORITY INTO t VALUES (1)",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "REPLACE INTO t SET a = 1",
        C::Write,
        "replace",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO t (a) VALUES (1), (2) AS new ON DUPLICATE KEY UPDATE a = new.a",
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check(
        "INSERT INTO t SELECT * FROM t",
        C::Write,
        "insert",
        &["app.t"],
        &["app.t"],
    );
    check("DELETE HISTORY FROM t", C::Write, "delete", &[], &["app.t"]);
    check(
        "COMMIT AND NO CHAIN NO RELEASE",
        C::Transaction,
        "commit",
        &[],
        &[],
    );
    check(
        "ROLLBACK WORK AND CHAIN",
        C::Transaction,
        "rollback",
        &[],
        &[],
    );
    check("SET @@autocommit := 0", C::Session, "set", &[], &[]);
    check(
        "SET time_zone = '+00:00', FOREIGN_KEY_CHECKS = 0",
        C::Session,
        "set",
        &[],
        &[],
    );
    check("KILL QUERY ID 5", C::Admin, "kill", &[], &[]);
    check("SHOW TABLE STATUS LIKE 't'", C::Show, "show", &[], &[]);
    check(
        "DESCRIBE SELECT * FROM t",
        C::Show,
        "explain",
        &["app.t"],
        &[],
    );
    check(
        "EXPLAIN FORMAT=JSON SELECT * FROM t",
        C::Show,
        "explain",
        &["app.t"],
        &[],
    );
    check("EXPLAIN t", C::Show, "describe", &["app.t"], &[]);
    check("USE information_schema", C::Session, "use", &[], &[]);
    check("GRANT SELECT (a, b) ON t TO u", C::Dcl, "grant", &[], &[]);
    check(
        "GRANT EXECUTE ON PROCEDURE p TO u",
        C::Dcl,
        "grant",
        &[],
        &[],
    );
    check(
        "SELECT * FROM t -- trailing comment",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    check(
        "SELECT * FROM t # trailing comment",
        C::Read,
        "select",
        &["app.t"],
        &[],
    );
    // Accepted as bytes, str and String.
    assert_eq!(analyze(b"SELECT 1", &ctx()), analyze("SELECT 1", &ctx()));
    assert_eq!(
        analyze(String::from("SELECT 1"), &ctx()),
        analyze("SELECT 1", &ctx())
    );
}

#[test]
fn calls_that_may_write_are_flagged() {
    // Sequences: NEXTVAL/SETVAL change the sequence.
    assert!(an("SELECT NEXTVAL(s)").flags.calls_function);
    assert!(an("SELECT SETVAL(s, 10)").flags.calls_function);
    assert!(!an("SELECT LASTVAL(s)").flags.calls_function);
    assert!(an("SHOW TABLES WHERE my_func(1)").flags.calls_function);
    assert!(
        !an("SHOW TABLES WHERE `Tables_in_app` IN ('x') AND LENGTH(x) > 1")
            .flags
            .calls_function
    );
    assert!(an("CALL p((SELECT a FROM secret.t))").reads == [TableRef::new(Some("secret"), "t")]);
}

#[test]
fn lex_errors_keep_the_leading_keyword() {
    let e = un("SELECT 'abc");
    assert_eq!(e.leading_keyword, "SELECT");
    assert!(e.reason.contains("lexed"), "{}", e.reason);
    let e = un("DELETE FROM `t");
    assert_eq!(e.leading_keyword, "DELETE");
    let e = un("/*!DROP TABLE t");
    assert_eq!(e.leading_keyword, "");
    let e = un("UPDATE t SET a = X'4'");
    assert_eq!(e.leading_keyword, "UPDATE");
    let e = un("SELECT 1\0");
    assert_eq!(e.leading_keyword, "SELECT");
}

#[test]
fn mysqldump_output() {
    let mariadb = ctx().with_server(Server::MariaDb {
        version_id: Some(101106),
    });
    check_in(
        "/*!50001 CREATE ALGORITHM=UNDEFINED */\n\
         /*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n\
         /*!50001 VIEW `v` AS select `t`.`a` AS `a` from `t` */",
        &mariadb,
        C::Ddl,
        "create_view",
        &["app.t"],
        &["app.v"],
    );
    check_in(
        "/*!40101 SET @saved_cs_client     = @@character_set_client */",
        &mariadb,
        C::Session,
        "set",
        &[],
        &[],
    );
    check_in(
        "/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */",
        &mariadb,
        C::Session,
        "set",
        &[],
        &[],
    );
    check_in(
        "INSERT INTO `t` VALUES (1,'a\\'b'),(2,'c\\\\')",
        &mariadb,
        C::Write,
        "insert",
        &[],
        &["app.t"],
    );
    check_in(
        "/*!40000 ALTER TABLE `t` ENABLE KEYS */",
        &mariadb,
        C::Ddl,
        "alter_table",
        &[],
        &["app.t"],
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Statement-like byte strings: SQL fragments, quotes, comments and random bytes.
    fn sqlish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"SELECT ".to_vec()),
            Just(b"FROM t ".to_vec()),
            Just(b"WHERE ".to_vec()),
            Just(b"(".to_vec()),
            Just(b")".to_vec()),
            Just(b"'".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"`".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"/*".to_vec()),
            Just(b"*/".to_vec()),
            Just(b"/*!".to_vec()),
            Just(b"/*M!100500".to_vec()),
            Just(b"-- ".to_vec()),
            Just(b"#".to_vec()),
            Just(b"\n".to_vec()),
            Just(b";".to_vec()),
            Just(b",".to_vec()),
            Just(b"@".to_vec()),
            Just(b"$$".to_vec()),
            Just(b".".to_vec()),
            Just(b"DROP TABLE ".to_vec()),
            Just(b"UPDATE t SET a=1 ".to_vec()),
            Just(b"INTO OUTFILE 'x' ".to_vec()),
            Just(b"PREPARE s FROM ".to_vec()),
            Just(b"SET STATEMENT x=1 FOR ".to_vec()),
            Just(b"secret.t ".to_vec()),
            Just(b"1 ".to_vec()),
            proptest::collection::vec(any::<u8>(), 1..4),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    fn any_context() -> impl Strategy<Value = Context<'static>> {
        (any::<bool>(), any::<bool>(), 0..3u8, any::<bool>()).prop_map(|(a, n, c, db)| {
            let charset = [Charset::Utf8, Charset::Latin1, Charset::Gbk][usize::from(c)];
            Context::new(db.then_some("app")).with_mode(Mode {
                ansi_quotes: a,
                no_backslash_escapes: n,
                charset,
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Never panics; an analysed statement names its operation and class consistently.
        #[test]
        fn never_panics(sql in sqlish(), ctx in any_context()) {
            if let Ok(a) = analyze(&sql, &ctx) {
                prop_assert!(Operation::ALL.contains(&a.operation));
                prop_assert!(StatementClass::ALL.contains(&a.class));
            }
        }

        /// Comments between tokens change nothing.
        #[test]
        fn comments_are_irrelevant(
            words in proptest::collection::vec(
                prop_oneof![
                    Just("SELECT"), Just("a"), Just("FROM"), Just("t"), Just("JOIN"),
                    Just("shop.u"), Just("WHERE"), Just("a"), Just("="), Just("1"),
                    Just(","), Just("("), Just(")"), Just("'x'"), Just("`q`"),
                ],
                1..12,
            ),
            comment in prop_oneof![Just(" /* c */ "), Just(" -- c\n"), Just(" # c\n"), Just("/**/")],
        ) {
            let plain = words.join(" ");
            let commented = words.join(comment);
            let key = |sql: &str| analyze(sql, &ctx()).map_err(|e| e.leading_keyword);
            prop_assert_eq!(key(&plain), key(&commented));
        }
    }
}
