"""Shared by the PyMySQL test scripts: argument parsing, connecting, small assertions.

Every script takes --host --port --user --password --db [--tls] and exits non-zero (with a
traceback) on the first failed check.
"""

import argparse
import ssl
import sys

import pymysql


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--tls", action="store_true", help="connect with TLS (certificate not verified)")
    if extra:
        extra(p)
    return p.parse_args()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(args, **kw):
    """A new connection as the test user; TLS with --tls, else TLS explicitly disabled."""
    opts = dict(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        database=args.db,
        charset="utf8mb4",
        connect_timeout=10,
        read_timeout=60,
        write_timeout=60,
    )
    if args.tls:
        opts["ssl"] = tls_context()
    else:
        opts["ssl_disabled"] = True
    opts.update(kw)
    return pymysql.connect(**opts)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def log(*a):
    print(*a, flush=True)


def expect_error(fn, code, what):
    """Runs fn(); it must raise a pymysql error with the given code. Returns the exception."""
    try:
        fn()
    except pymysql.MySQLError as e:
        got = e.args[0] if e.args else None
        eq(got, code, f"{what}: error code ({e})")
        log(f"{what}: {e}")
        return e
    raise AssertionError(f"{what}: no error raised")


def done(name):
    log(f"{name}: OK")
    sys.exit(0)
