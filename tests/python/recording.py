"""Session recording through PyMySQL, as an operator identity (--as-user/--as-password): a read
and a parameterised insert, whose records the Rust test then checks in the audit log."""

from common import connect, done, eq, parse_args


def extra(p):
    p.add_argument("--as-user", required=True)
    p.add_argument("--as-password", required=True)


args = parse_args(extra)
conn = connect(args, user=args.as_user, password=args.as_password)
cur = conn.cursor()
cur.execute("SELECT id, name FROM items ORDER BY id")
eq([tuple(r) for r in cur.fetchall()], [(1, "apple"), (2, "pear"), (3, "fig")], "rows")
cur.execute("INSERT INTO items VALUES (%s, %s)", (4, "kiwi"))
eq(cur.rowcount, 1, "insert")
conn.commit()
conn.close()
done("recording")
