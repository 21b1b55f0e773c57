"""Statement policy through PyMySQL, as an operator identity (--as-user/--as-password): a
targeted UPDATE runs; DELETE without WHERE and TRUNCATE are refused with error 1142 naming the
rule, and the connection stays usable after each refusal."""

import pymysql

from common import check, connect, done, eq, log, parse_args


def extra(p):
    p.add_argument("--as-user", required=True)
    p.add_argument("--as-password", required=True)


args = parse_args(extra)
conn = connect(args, user=args.as_user, password=args.as_password)
cur = conn.cursor()
cur.execute("UPDATE orders SET total = total + 1 WHERE id = 1")
eq(cur.rowcount, 1, "targeted update")
conn.commit()

for sql, rule in [
    ("DELETE FROM orders", "no-where-guard"),
    ("DELETE FROM orders WHERE 1=1", "no-where-guard"),
    ("TRUNCATE TABLE orders", "no-destructive-ddl"),
]:
    try:
        cur.execute(sql)
    except pymysql.err.MySQLError as e:
        code, message = e.args
        log(f"{sql!r}: refused: {code} {message}")
        eq(code, 1142, f"{sql!r}: error code")
        check(rule in message, f"{sql!r}: the message names {rule}: {message}")
    else:
        raise AssertionError(f"{sql!r} was not refused")
    cur.execute("SELECT COUNT(*) FROM orders")
    eq(cur.fetchone()[0], 3, "usable after a refusal, rows intact")

conn.close()
done("policy")
