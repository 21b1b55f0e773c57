"""Warnings: the warning count in OK packets and SHOW WARNINGS after a truncating INSERT, a
division by zero, and a note; SHOW WARNINGS is empty after a clean statement."""

from common import connect, done, eq, log, parse_args

args = parse_args()
conn = connect(args, autocommit=True)
cur = conn.cursor()
cur.execute("SET SESSION sql_mode = ''")
cur.execute("DROP TABLE IF EXISTS py_warn")
cur.execute("CREATE TABLE py_warn (c VARCHAR(3), n TINYINT)")
cur.execute("INSERT INTO py_warn VALUES ('abcdef', 1000), ('ok', 1)")
eq(conn.warning_count if hasattr(conn, "warning_count") else cur._result.warning_count, 2, "warning count")
cur.execute("SHOW WARNINGS")
warnings = cur.fetchall()
log("warnings:", warnings)
eq(
    warnings,
    (
        ("Warning", 1265, "Data truncated for column 'c' at row 1"),
        ("Warning", 1264, "Out of range value for column 'n' at row 1"),
    ),
    "SHOW WARNINGS",
)
cur.execute("SHOW COUNT(*) WARNINGS")
eq(cur.fetchone()[0], 2, "SHOW COUNT(*) WARNINGS")

# Division by zero warns only with ERROR_FOR_DIVISION_BY_ZERO in sql_mode. (A statement that
# uses no table does not clear the previous statement's warnings, so the mode matters here.)
cur.execute("SET SESSION sql_mode = 'ERROR_FOR_DIVISION_BY_ZERO'")
cur.execute("SELECT 1/0")
eq(cur.fetchone(), (None,), "1/0")
cur.execute("SHOW WARNINGS")
eq(cur.fetchall(), (("Warning", 1365, "Division by 0"),), "division by zero warning")

cur.execute("DROP TABLE IF EXISTS py_no_such_table")
cur.execute("SHOW WARNINGS")
eq(cur.fetchall(), (("Note", 1051, "Unknown table 'shop.py_no_such_table'"),), "note")

cur.execute("SELECT c, n FROM py_warn ORDER BY n")
eq(cur.fetchall(), (("ok", 1), ("abc", 127)), "stored values")
cur.execute("SHOW WARNINGS")
eq(cur.fetchall(), (), "no warnings after a clean statement")
cur.execute("DROP TABLE py_warn")
conn.close()
done("warnings")
