"""CLIENT_MULTI_STATEMENTS (several statements in one COM_QUERY, one result per statement,
an error in the middle) and a stored procedure returning several result sets (CALL)."""

from pymysql.constants import CLIENT

from common import connect, done, eq, expect_error, log, parse_args

args = parse_args()
conn = connect(args, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
cur = conn.cursor()

cur.execute(
    "DROP TABLE IF EXISTS py_multi; CREATE TABLE py_multi (id INT PRIMARY KEY, s VARCHAR(10));"
    " INSERT INTO py_multi VALUES (1, 'a'), (2, 'b'); SELECT * FROM py_multi ORDER BY id;"
    " SELECT 'second' AS x, 2 AS y; UPDATE py_multi SET s = 'z'"
)
results = []
while True:
    results.append((cur.rowcount, cur.description and [d[0] for d in cur.description], cur.fetchall()))
    if not cur.nextset():
        break
eq(len(results), 6, f"number of results {results}")
eq(results[2][0], 2, "INSERT rowcount")
eq(results[3][1:], (["id", "s"], ((1, "a"), (2, "b"))), "first SELECT")
eq(results[4][1:], (["x", "y"], (("second", 2),)), "second SELECT")
eq(results[5][0], 2, "UPDATE rowcount")
log("multi-statement ok")

# An error in the middle: the statements before it ran, the ones after it did not.
def failing():
    cur.execute("INSERT INTO py_multi VALUES (3, 'c'); INSERT INTO py_multi VALUES (1, 'dup'); INSERT INTO py_multi VALUES (4, 'd')")
    while cur.nextset():
        pass

expect_error(failing, 1062, "duplicate in the middle of a multi-statement")
cur.execute("SELECT id FROM py_multi ORDER BY id")
eq(cur.fetchall(), ((1,), (2,), (3,)), "rows after partial multi-statement")

# A stored procedure with several result sets.
cur.execute("DROP PROCEDURE IF EXISTS py_sets")
cur.execute(
    "CREATE PROCEDURE py_sets(IN n INT) BEGIN"
    " SELECT id, s FROM py_multi WHERE id <= n ORDER BY id;"
    " SELECT COUNT(*) AS c FROM py_multi;"
    " UPDATE py_multi SET s = 'p' WHERE id = 1;"
    " SELECT 'last' AS l; END"
)
for attempt in range(2):  # twice: the connection must be clean after the first CALL
    cur.callproc("py_sets", (2,))
    sets = []
    while True:
        sets.append(cur.fetchall())
        if not cur.nextset():
            break
    eq(sets[0], ((1, "z"), (2, "z")) if attempt == 0 else ((1, "p"), (2, "z")), "CALL set 1")
    eq(sets[1], ((3,),), "CALL set 2")
    eq(sets[2], (("last",),), "CALL set 3")
    eq(len(sets), 4, "CALL result count (3 sets + final status)")
cur.execute("SELECT 'after call'")
eq(cur.fetchone(), ("after call",), "query after CALL")
log("procedure ok")

cur.execute("DROP PROCEDURE py_sets; DROP TABLE py_multi")
while cur.nextset():
    pass
conn.close()
done("multi")
