"""Autocommit on/off, COMMIT, ROLLBACK, savepoints, isolation seen from a second connection,
executemany inside a transaction, and a deadlock-free lock wait timeout."""

from common import connect, done, eq, expect_error, log, parse_args

args = parse_args()
a = connect(args, autocommit=True)
b = connect(args, autocommit=True)
ca, cb = a.cursor(), b.cursor()
ca.execute("DROP TABLE IF EXISTS py_tx")
ca.execute("CREATE TABLE py_tx (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")


def count(cur):
    cur.execute("SELECT COUNT(*) FROM py_tx")
    return cur.fetchone()[0]


# autocommit=True: visible at once.
ca.execute("INSERT INTO py_tx VALUES (1, 1)")
eq(count(cb), 1, "autocommit insert visible")

# Explicit transaction, rollback.
a.autocommit(False)
ca.execute("SELECT @@autocommit")
eq(ca.fetchone()[0], 0, "@@autocommit after autocommit(False)")
ca.execute("INSERT INTO py_tx VALUES (2, 2)")
eq(count(ca), 2, "own uncommitted insert")
eq(count(cb), 1, "other connection does not see uncommitted insert")
a.rollback()
eq(count(ca), 1, "after rollback")

# Commit, with executemany.
ca.executemany("INSERT INTO py_tx VALUES (%s, %s)", [(i, i * i) for i in range(10, 60)])
eq(count(cb), 1, "before commit")
a.commit()
eq(count(cb), 51, "after commit")

# Savepoints.
ca.execute("INSERT INTO py_tx VALUES (100, 0)")
ca.execute("SAVEPOINT sp1")
ca.execute("INSERT INTO py_tx VALUES (101, 0)")
ca.execute("ROLLBACK TO SAVEPOINT sp1")
a.commit()
ca.execute("SELECT id FROM py_tx WHERE id >= 100")
eq(ca.fetchall(), ((100,),), "savepoint rollback")

# START TRANSACTION via SQL, and the server status flag PyMySQL tracks.
a.autocommit(True)
ca.execute("START TRANSACTION")
ca.execute("UPDATE py_tx SET v = -1 WHERE id = 1")
# b waits on the row lock and times out: error 1205, connection stays usable.
cb.execute("SET SESSION innodb_lock_wait_timeout = 1")
expect_error(lambda: cb.execute("UPDATE py_tx SET v = -2 WHERE id = 1"), 1205, "lock wait timeout")
ca.execute("ROLLBACK")
cb.execute("SELECT v FROM py_tx WHERE id = 1")
eq(cb.fetchone()[0], 1, "value after rollback")

ca.execute("DROP TABLE py_tx")
log("transactions ok")
a.close()
b.close()
done("transactions")
