"""Every common column type round-trips through the text protocol: integers at their extremes,
DECIMAL, FLOAT/DOUBLE, dates and times (negative TIME, microseconds), YEAR, utf8mb4 strings with
emoji, binary data with every byte value, NULL in every column, JSON, ENUM, SET, BIT."""

import datetime as dt
import json
from decimal import Decimal

from common import connect, done, eq, log, parse_args

args = parse_args()
conn = connect(args, autocommit=True)
cur = conn.cursor()

COLUMNS = [
    # (name, type, value inserted, value expected back)
    ("ti", "TINYINT", -128, -128),
    ("tiu", "TINYINT UNSIGNED", 255, 255),
    ("si", "SMALLINT", -32768, -32768),
    ("siu", "SMALLINT UNSIGNED", 65535, 65535),
    ("mi", "MEDIUMINT", -8388608, -8388608),
    ("miu", "MEDIUMINT UNSIGNED", 16777215, 16777215),
    ("i", "INT", -2147483648, -2147483648),
    ("iu", "INT UNSIGNED", 4294967295, 4294967295),
    ("bi", "BIGINT", -9223372036854775808, -9223372036854775808),
    ("biu", "BIGINT UNSIGNED", 18446744073709551615, 18446744073709551615),
    ("dec", "DECIMAL(65,30)", Decimal("-12345678901234567890123456789012345.123456789012345678901234567890"),
     Decimal("-12345678901234567890123456789012345.123456789012345678901234567890")),
    ("dec2", "DECIMAL(5,2)", Decimal("999.99"), Decimal("999.99")),
    ("f", "FLOAT", 1.5, 1.5),
    ("d", "DOUBLE", -1.7976931348623157e308, -1.7976931348623157e308),
    ("dte", "DATE", dt.date(1000, 1, 1), dt.date(1000, 1, 1)),
    ("dtm", "DATETIME(6)", dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ("ts", "TIMESTAMP(3) NULL", dt.datetime(2038, 1, 19, 3, 14, 7, 123000), dt.datetime(2038, 1, 19, 3, 14, 7, 123000)),
    ("tm", "TIME(6)", -dt.timedelta(hours=838, minutes=59, seconds=58, microseconds=999999),
     -dt.timedelta(hours=838, minutes=59, seconds=58, microseconds=999999)),
    ("yr", "YEAR", 2155, 2155),
    ("ch", "CHAR(10)", "ab", "ab"),
    ("vc", "VARCHAR(100)", "grüße, мир, 世界, 🚪🔑", "grüße, мир, 世界, 🚪🔑"),
    ("tx", "LONGTEXT", "emoji 🎉 " * 1000, "emoji 🎉 " * 1000),
    ("bn", "BINARY(4)", b"\x00\x01\xff", b"\x00\x01\xff\x00"),
    ("vb", "VARBINARY(300)", bytes(range(256)), bytes(range(256))),
    ("bl", "BLOB", bytes(range(256)) * 10, bytes(range(256)) * 10),
    ("js", "JSON", json.dumps({"k": [1, 2.5, None, "🚪"], "n": {"t": True}}), None),  # compared parsed
    ("en", "ENUM('small','medium','large')", "medium", "medium"),
    ("st", "SET('a','b','c','d')", "a,c,d", None),  # PyMySQL may return a set or a string
    ("bt", "BIT(10)", b"\x02\x01", b"\x02\x01"),
]

cur.execute("DROP TABLE IF EXISTS py_types")
cols = ", ".join(f"`{n}` {t}" for n, t, _, _ in COLUMNS)
cur.execute(f"CREATE TABLE py_types (id INT PRIMARY KEY, {cols}) DEFAULT CHARSET=utf8mb4")
cur.execute("SET time_zone = '+00:00'")

names = ", ".join(f"`{n}`" for n, _, _, _ in COLUMNS)
marks = ", ".join("%s" for _ in COLUMNS)


def insert(row_id, values):
    cur.execute(f"INSERT INTO py_types (id, {names}) VALUES (%s, {marks})", (row_id, *values))


def check_value(name, got, inserted, want):
    if name == "js":
        eq(json.loads(got), json.loads(inserted), name)
    elif name == "st":
        got_set = set(got.split(",")) if isinstance(got, str) else set(got)
        eq(got_set, {"a", "c", "d"}, name)
    elif name == "f":
        eq(abs(got - want) < 1e-6, True, f"{name} ({got!r})")
    else:
        eq(got, want, name)


values = [v for _, _, v, _ in COLUMNS]
insert(1, values)
# A row of all NULLs, and rows with exactly one NULL at each position.
insert(2, [None] * len(COLUMNS))
for i in range(len(COLUMNS)):
    v = list(values)
    v[i] = None
    insert(100 + i, v)

cur.execute(f"SELECT {names} FROM py_types WHERE id = 1")
row = cur.fetchone()
for (name, _, inserted, want), got in zip(COLUMNS, row):
    check_value(name, got, inserted, want)
log("values ok")

cur.execute(f"SELECT {names} FROM py_types WHERE id = 2")
eq(cur.fetchone(), tuple([None] * len(COLUMNS)), "all-NULL row")

cur.execute(f"SELECT id, {names} FROM py_types WHERE id >= 100 ORDER BY id")
for i, row in enumerate(cur.fetchall()):
    eq(row[0], 100 + i, "row id")
    for j, ((name, _, inserted, want), got) in enumerate(zip(COLUMNS, row[1:])):
        if j == i:
            eq(got, None, f"NULL in {name}")
        else:
            check_value(name, got, inserted, want)
log("NULL positions ok")

# Column metadata as PyMySQL sees it.
cur.execute(f"SELECT {names} FROM py_types LIMIT 0")
eq([d[0] for d in cur.description], [n for n, _, _, _ in COLUMNS], "column names")

# Literal expressions of many types.
cur.execute(
    "SELECT 1, -1.5, 1e300, 'x', X'00FF', NULL, CAST('2020-02-29' AS DATE),"
    " CAST('-00:00:01.5' AS TIME(1)), 18446744073709551615, b'101'"
)
eq(
    cur.fetchone(),
    (1, Decimal("-1.5"), 1e300, "x", b"\x00\xff", None, dt.date(2020, 2, 29),
     -dt.timedelta(seconds=1, microseconds=500000), 18446744073709551615, b"\x05"),
    "literals",
)
cur.execute("DROP TABLE py_types")
conn.close()
done("types")
