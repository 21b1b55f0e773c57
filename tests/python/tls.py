"""TLS on the client side: with --tls the socket is TLS (cipher and version known) and queries
work; without it, the connection is plaintext (ssl_disabled)."""

import ssl

from common import check, connect, done, eq, log, parse_args

args = parse_args()
conn = connect(args)
sock = conn._sock
cur = conn.cursor()
cur.execute("SELECT 'over the wire', REPEAT('t', 100000)")
row = cur.fetchone()
eq(row[0], "over the wire", "query result")
eq(len(row[1]), 100000, "large value")
if args.tls:
    check(isinstance(sock, ssl.SSLSocket), f"expected a TLS socket, got {type(sock)}")
    log("TLS:", sock.version(), sock.cipher())
    check(sock.version() in ("TLSv1.2", "TLSv1.3"), f"TLS version {sock.version()}")
else:
    check(not isinstance(sock, ssl.SSLSocket), "expected a plaintext socket")
    log("plaintext connection")
conn.close()
done("tls")
