"""Text protocol CRUD: DDL, INSERT (lastrowid, rowcount), SELECT, UPDATE, DELETE, executemany,
parameters with quotes and backslashes, errors that leave the connection usable."""

from common import connect, done, eq, expect_error, log, parse_args

args = parse_args()
conn = connect(args, autocommit=True)
cur = conn.cursor()
cur.execute("DROP TABLE IF EXISTS py_crud")
cur.execute(
    "CREATE TABLE py_crud (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE,"
    " price DECIMAL(10,2), note TEXT)"
)
eq(cur.execute("INSERT INTO py_crud (name, price) VALUES (%s, %s)", ("apple", "1.50")), 1, "insert rowcount")
eq(cur.lastrowid, 1, "lastrowid")
eq(conn.insert_id(), 1, "insert_id")

rows = [(f"item{i}", f"{i}.25", "it's a \\ \"quoted\" \n note") for i in range(100)]
eq(cur.executemany("INSERT INTO py_crud (name, price, note) VALUES (%s, %s, %s)", rows), 100, "executemany rowcount")
cur.execute("SELECT COUNT(*), SUM(price) FROM py_crud")
count, total = cur.fetchone()
eq(count, 101, "count")
eq(str(total), "4976.50", "sum")

cur.execute("SELECT note FROM py_crud WHERE name = %s", ("item7",))
eq(cur.fetchone()[0], "it's a \\ \"quoted\" \n note", "escaped note")

eq(cur.execute("UPDATE py_crud SET price = price * 2 WHERE id <= %s", (11,)), 11, "update rowcount")
eq(cur.execute("UPDATE py_crud SET price = price WHERE id = 1"), 0, "no-op update rowcount")
eq(cur.execute("DELETE FROM py_crud WHERE name LIKE %s", ("item9%",)), 11, "delete rowcount")

cur.execute("SELECT id, name, price FROM py_crud ORDER BY id LIMIT 3")
got = [(r[0], r[1], str(r[2])) for r in cur.fetchall()]
eq(got, [(1, "apple", "3.00"), (2, "item0", "0.50"), (3, "item1", "2.50")], "first rows")
eq([d[0] for d in cur.description], ["id", "name", "price"], "column names")

# Errors keep the connection usable.
expect_error(lambda: cur.execute("INSERT INTO py_crud (name) VALUES ('apple')"), 1062, "duplicate key")
expect_error(lambda: cur.execute("SELEC 1"), 1064, "syntax error")
expect_error(lambda: cur.execute("SELECT * FROM py_nope"), 1146, "unknown table")
cur.execute("SELECT 42")
eq(cur.fetchone(), (42,), "after errors")

# A large result set through an unbuffered cursor.
import pymysql.cursors

ss = conn.cursor(pymysql.cursors.SSCursor)
ss.execute("SELECT seq, REPEAT('r', 100) FROM seq_1_to_50000")
n = 0
for row in ss:
    n += 1
eq(n, 50000, "streamed rows")
ss.close()

cur.execute("DROP TABLE py_crud")
log("rows ok")
conn.close()
done("crud")
