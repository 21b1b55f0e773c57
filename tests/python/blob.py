"""A 20 MiB blob through the text protocol: the INSERT is one >16 MiB command (split into
several packets) and the row read back is a >16 MiB packet from the server."""

import hashlib
import os

from common import connect, done, eq, log, parse_args

SIZE = 20 << 20

args = parse_args()
conn = connect(args, autocommit=True, max_allowed_packet=64 << 20)
cur = conn.cursor()
cur.execute("DROP TABLE IF EXISTS py_blob")
cur.execute("CREATE TABLE py_blob (id INT PRIMARY KEY, b LONGBLOB)")
data = os.urandom(SIZE)
cur.execute("INSERT INTO py_blob VALUES (1, _binary %s)", (data,))
cur.execute("SELECT LENGTH(b), SHA2(b, 256) FROM py_blob WHERE id = 1")
length, digest = cur.fetchone()
eq(length, SIZE, "stored length")
eq(digest, hashlib.sha256(data).hexdigest(), "stored digest")
cur.execute("SELECT b FROM py_blob WHERE id = 1")
back = cur.fetchone()[0]
eq(len(back), SIZE, "read-back length")
eq(back == data, True, "read-back content")
# A value of exactly 16 MiB - 1 bytes and one just over a packet boundary, as results.
for n in ((16 << 20) - 1 - 8, (16 << 20) + 3):
    cur.execute("SELECT REPEAT('q', %s)", (n,))
    eq(len(cur.fetchone()[0]), n, f"REPEAT {n}")
cur.execute("DROP TABLE py_blob")
log("blob ok")
conn.close()
done("blob")
