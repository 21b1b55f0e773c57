"""Protocol commands beyond COM_QUERY: COM_INIT_DB (select_db, also to an unknown database),
COM_PING, and killing another connection by the id its handshake announced, both with the SQL
KILL statement (PyMySQL's kill()) and with COM_PROCESS_KILL."""

import struct
import threading
import time

import pymysql
from pymysql.constants import COMMAND

from common import check, connect, done, eq, expect_error, log, parse_args

args = parse_args()
conn = connect(args, autocommit=True)
cur = conn.cursor()

# COM_INIT_DB
conn.select_db("mysql")
cur.execute("SELECT DATABASE()")
eq(cur.fetchone()[0], "mysql", "after select_db(mysql)")
expect_error(lambda: conn.select_db("no_such_db"), 1049, "select_db(no_such_db)")
cur.execute("SELECT DATABASE()")
eq(cur.fetchone()[0], "mysql", "database unchanged after a failed COM_INIT_DB")
conn.select_db(args.db)
cur.execute("SELECT DATABASE()")
eq(cur.fetchone()[0], args.db, "back to the test db")

# COM_PING
for _ in range(3):
    conn.ping(reconnect=False)
log("ping ok")


def victim_dies(victim, how):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            victim.ping(reconnect=False)
        except pymysql.MySQLError as e:
            log(f"victim after {how}: {e}")
            return
        time.sleep(0.1)
    raise AssertionError(f"the victim connection survived {how}")


failures = []


def attempt(name, fn):
    """Runs one kill scenario; a failure is recorded and the next scenario still runs."""
    try:
        fn()
        log(f"{name}: ok")
    except Exception as e:  # noqa: BLE001 - report every scenario
        log(f"{name}: FAILED: {e!r}")
        failures.append(f"{name}: {e!r}")


def kill_sql():
    # KILL <id> as SQL (what PyMySQL's kill() sends), with the id from the victim's handshake.
    victim = connect(args)
    vcur = victim.cursor()
    vcur.execute("SELECT CONNECTION_ID()")
    log(f"victim: handshake thread id {victim.thread_id()}, CONNECTION_ID() {vcur.fetchone()[0]}")
    conn.kill(victim.thread_id())
    victim_dies(victim, "KILL (SQL)")


def com_process_kill():
    victim = connect(args)
    conn._execute_command(COMMAND.COM_PROCESS_KILL, struct.pack("<I", victim.thread_id()))
    conn._read_ok_packet()
    victim_dies(victim, "COM_PROCESS_KILL")


def kill_query():
    # KILL QUERY interrupts a running statement but leaves the connection usable.
    victim = connect(args)
    vcur = victim.cursor()
    result = {}

    def sleeper():
        try:
            vcur.execute("SELECT SLEEP(30)")
            result["row"] = vcur.fetchone()
        except pymysql.MySQLError as e:
            result["error"] = e

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    time.sleep(0.5)
    cur.execute(f"KILL QUERY {victim.thread_id()}")
    t.join(15)
    check(not t.is_alive(), "SELECT SLEEP(30) still running 15 s after KILL QUERY")
    log("victim after KILL QUERY:", result)
    # MariaDB makes an interrupted SLEEP() return 1 (or error 1317 for other statements).
    check(result.get("row") == (1,) or getattr(result.get("error"), "args", [None])[0] == 1317, f"{result}")
    vcur.execute("SELECT 'still alive'")
    eq(vcur.fetchone(), ("still alive",), "victim usable after KILL QUERY")
    victim.close()


attempt("KILL <thread_id()>", kill_sql)
attempt("COM_PROCESS_KILL", com_process_kill)
attempt("KILL QUERY <thread_id()>", kill_query)

# Our own connection is fine after all that.
cur.execute("SELECT 1")
eq(cur.fetchone(), (1,), "killer connection")
conn.close()
if failures:
    raise AssertionError("kill scenarios failed:\n  " + "\n  ".join(failures))
done("commands")
