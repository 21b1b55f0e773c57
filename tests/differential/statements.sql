-- Differential statements: tests/tests/differential.rs runs every line once directly against
-- MariaDB (as `app`) and once through the gateway (as alice), each time on a freshly created
-- `shop` database over one connection, and compares per statement: result sets (column
-- metadata and rows), affected rows, last insert id, info, warning count, errors (code, SQLSTATE,
-- message) and SHOW WARNINGS.
--
-- The `shop` database is created with the server's default character set (latin1 here): tables
-- that store non-latin1 text say DEFAULT CHARSET=utf8mb4.
--
-- Rules: one COM_QUERY per line (a line may hold several ';'-separated statements); lines that
-- start with "--" and blank lines are skipped. Everything must be deterministic across two fresh
-- runs: no NOW(), RAND(), UUID(), CONNECTION_ID(), timestamps, processlist, InnoDB statistics.
--
-- Connection and session basics
SELECT 1
SELECT 1 + 1 AS two, 'text' AS t, NULL AS n, 1.5 AS d, -7 AS neg, 0x41 AS hex_lit, TRUE AS yes
SELECT @@character_set_client, @@character_set_connection, @@character_set_results, @@collation_connection
SELECT @@autocommit, @@sql_mode, @@time_zone, @@tx_isolation, @@max_allowed_packet, @@sql_select_limit
SELECT DATABASE(), CURRENT_USER(), USER() LIKE 'app@%' AS user_is_app
SELECT VERSION() LIKE '%MariaDB%' AS is_mariadb, @@version_comment IS NOT NULL AS has_comment
SELECT @@in_transaction, @@last_insert_id, @@warning_count, @@error_count
-- DDL
CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, email VARCHAR(100) UNIQUE, created DATE, balance DECIMAL(10,2) DEFAULT 0) ENGINE=InnoDB
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2), status ENUM('new','paid','shipped') DEFAULT 'new', note TEXT, FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
CREATE TABLE products (sku CHAR(8) PRIMARY KEY, title VARCHAR(100) CHARACTER SET utf8mb4, price DOUBLE, tags SET('new','sale','eco'), attrs JSON, flags BIT(8), weight FLOAT, added DATETIME(3), shelf_life TIME, year_made YEAR, code BINARY(4), raw VARBINARY(16))
CREATE TABLE customers (id INT)
CREATE TABLE IF NOT EXISTS customers (id INT)
-- DML
INSERT INTO customers (name, email, created, balance) VALUES ('Ada', 'ada@example.com', '2020-01-01', 100.50)
INSERT INTO customers (name, email, created, balance) VALUES ('Bob', 'bob@example.com', '2021-06-15', 0), ('Cy', 'cy@example.com', '2019-12-31', -5.25)
SELECT LAST_INSERT_ID(), ROW_COUNT()
INSERT INTO customers (name, email) VALUES ('Dup', 'ada@example.com')
INSERT INTO orders (customer_id, amount, status, note) VALUES (1, 10.00, 'paid', 'first'), (1, 20.50, 'new', NULL), (2, 99.99, 'shipped', 'gift 🎁'), (3, 5.00, 'new', '')
INSERT INTO orders (customer_id, amount) VALUES (999, 1.00)
INSERT INTO products VALUES ('SKU00001', 'Widget ünïcödé', 9.99, 'new,eco', '{"color": "red", "size": [1,2,3]}', b'10100101', 1.25, '2020-02-29 12:34:56.789', '-12:00:00', 1999, X'DEADBEEF', X'00FF00'), ('SKU00002', 'Gadget 🚀', 0.1, '', '[]', b'0', -0.5, '1970-01-01 00:00:00', '838:59:59', 2155, 'ab', ''), ('SKU00003', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
SELECT * FROM customers ORDER BY id
SELECT * FROM orders ORDER BY id
SELECT * FROM products ORDER BY sku
SELECT sku, HEX(code), HEX(raw), LENGTH(code), flags + 0, tags + 0 FROM products ORDER BY sku
-- Queries: joins, subqueries, grouping, window functions, CTEs
SELECT c.name, COUNT(o.id) AS n, SUM(o.amount) AS total FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id
SELECT c.name, o.amount FROM customers c INNER JOIN orders o ON o.customer_id = c.id WHERE o.amount > 15 ORDER BY o.amount DESC
SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE status = 'new') ORDER BY name
SELECT name FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'shipped') ORDER BY name
SELECT status, COUNT(*) FROM orders GROUP BY status WITH ROLLUP
SELECT customer_id, SUM(amount) s FROM orders GROUP BY customer_id HAVING s > 10 ORDER BY s
SELECT name, balance, RANK() OVER (ORDER BY balance DESC) AS r, SUM(balance) OVER () AS total FROM customers ORDER BY id
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT SUM(i), GROUP_CONCAT(i ORDER BY i) FROM n
SELECT id FROM customers UNION SELECT customer_id FROM orders UNION ALL SELECT 42 ORDER BY 1
SELECT * FROM customers ORDER BY id LIMIT 1 OFFSET 1
SELECT COUNT(*), COUNT(DISTINCT customer_id), AVG(amount), MIN(amount), MAX(amount), STD(amount), GROUP_CONCAT(DISTINCT status ORDER BY status) FROM orders
-- Functions
SELECT CONCAT('a', 'b', NULL), CONCAT_WS('-', 'a', NULL, 'b'), UPPER('grüße'), LOWER('ÀÉÎ'), LENGTH('🚀'), CHAR_LENGTH('🚀'), HEX('🚀')
SELECT SUBSTRING('gatehouse', 5), REPLACE('a.b.c', '.', '/'), LPAD('7', 3, '0'), REVERSE('abc'), TRIM('  x  '), LOCATE('h', 'gatehouse'), SPACE(3), REPEAT('ab', 3)
SELECT ROUND(2.5), ROUND(-2.5), ROUND(1.005, 2), TRUNCATE(1.999, 2), CEIL(1.1), FLOOR(-1.1), MOD(10, 3), POW(2, 10), SQRT(2), PI(), EXP(1), LN(10)
SELECT 1/0, 1 DIV 0, MOD(1, 0)
SELECT 0.1 + 0.2, 0.1e0 + 0.2e0, CAST(0.1 AS DOUBLE), 3 / 7, 1e308
SELECT 1e308 * 10
SELECT CAST('123abc' AS SIGNED)
SELECT CAST(-1 AS UNSIGNED), CAST(18446744073709551615 AS SIGNED), ~0, 9223372036854775807 + 0
SELECT 9223372036854775807 + 1
SELECT DATE_ADD('2020-02-28', INTERVAL 1 DAY), DATEDIFF('2021-01-01', '2020-01-01'), DAYNAME('2024-02-29'), LAST_DAY('2023-02-01'), DATE_FORMAT('2020-05-06 07:08:09', '%Y/%m/%d %H-%i-%s')
SELECT TIMEDIFF('10:00:00', '12:30:00'), SEC_TO_TIME(-3661), TIME('838:59:59'), MAKETIME(1, 2, 3.5), TIMESTAMPDIFF(MONTH, '2020-01-31', '2020-03-01')
SELECT STR_TO_DATE('31/12/2020', '%d/%m/%Y'), STR_TO_DATE('nonsense', '%d/%m/%Y')
SELECT CAST('2020-13-45' AS DATE)
SELECT FROM_UNIXTIME(0, '%Y-%m-%d'), UNIX_TIMESTAMP('1970-01-02 00:00:00') - UNIX_TIMESTAMP('1970-01-01 00:00:00')
SELECT JSON_EXTRACT('{"a": {"b": [10, 20]}}', '$.a.b[1]'), JSON_OBJECT('k', 1, 'l', JSON_ARRAY(1, 'x', NULL)), JSON_VALID('{bad'), JSON_LENGTH('[1,2,3]')
SELECT sku, JSON_UNQUOTE(JSON_EXTRACT(attrs, '$.color')), JSON_TYPE(attrs) FROM products ORDER BY sku
SELECT JSON_EXTRACT('{bad', '$.a')
SELECT IF(1 > 0, 'yes', 'no'), IFNULL(NULL, 'dflt'), NULLIF(1, 1), COALESCE(NULL, NULL, 3), CASE 2 WHEN 1 THEN 'one' WHEN 2 THEN 'two' END
SELECT 'abc' = 'ABC', 'abc' = BINARY 'ABC', 'a' < 'b', STRCMP('b', 'a'), 'x' LIKE 'X', 'abc' REGEXP '^a.c$', 'x' IN ('a', 'x')
SELECT MD5('gatehouse'), SHA1('gatehouse'), SHA2('gatehouse', 256), CRC32('gatehouse'), TO_BASE64('gatehouse'), FROM_BASE64('Z2F0ZQ==')
SELECT INET_ATON('10.0.0.1'), INET_NTOA(167772161), CONV('ff', 16, 10), BIN(10), OCT(8), HEX(255), UNHEX('4142')
SELECT GREATEST(1, 5, 3), LEAST('b', 'a', 'c'), FIELD('b', 'a', 'b', 'c'), ELT(2, 'x', 'y'), FIND_IN_SET('eco', 'new,eco'), INTERVAL(5, 1, 10)
SELECT COLLATION('x'), CHARSET(_latin1'x'), COERCIBILITY('x'), COLLATION(CONVERT('x' USING latin1))
SELECT REPEAT('x', 100000) AS big
SELECT seq, seq * seq, REPEAT(CHAR(65 + seq % 26), seq % 50) FROM seq_1_to_2000
-- Errors
SELECT * FROM no_such_table
SELECT no_such_column FROM customers
SELEC 1
SELECT * FROM customers WHERE
SELECT 'unterminated
SELECT 1 FROM DUAL WHERE 1 = (SELECT id FROM customers)
INSERT INTO customers (name) VALUES (NULL)
SELECT * FROM no_such_db.t
USE no_such_db
-- Updates and deletes
UPDATE orders SET amount = amount * 1.111 WHERE status = 'new'
UPDATE orders SET status = 'paid' WHERE id = 2
UPDATE orders SET status = 'paid' WHERE id = 2
UPDATE orders SET status = 'lost' WHERE id = 1
DELETE FROM orders WHERE amount < 6
SELECT id, amount, status FROM orders ORDER BY id
REPLACE INTO products (sku, title, price) VALUES ('SKU00003', 'Replaced', 1)
INSERT INTO customers (id, name, email) VALUES (3, 'Cy', 'cy@example.com') ON DUPLICATE KEY UPDATE name = 'Cyrus'
INSERT IGNORE INTO customers (id, name, email) VALUES (1, 'Ignored', 'x@example.com')
SELECT id, name, email FROM customers ORDER BY id
DELETE FROM customers WHERE id = 1
-- Session variables and modes
SET @a = 5, @b = 'str'
SELECT @a * 2, @b, @undefined
SET SESSION sql_mode = ''
INSERT INTO orders (customer_id, amount, status) VALUES (2, 123456789012.345, 'bogus')
SELECT id, amount, status FROM orders WHERE customer_id = 2 ORDER BY id
SET SESSION sql_mode = DEFAULT
SELECT @@sql_mode
SET SESSION no_such_variable = 1
SET SESSION sql_mode = 'NOT_A_MODE'
SET GLOBAL no_such_variable = 1
SET NAMES latin1
SELECT 'é' AS e, @@character_set_client, CHARSET('x'), HEX('é')
SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci
SELECT 'é' AS e, HEX('é'), @@collation_connection, 'a' = 'A', _latin1 x'E9', CONVERT('🚀' USING utf8mb4)
SET NAMES utf8mb4
SET SESSION time_zone = '+05:30'
SELECT @@time_zone, CONVERT_TZ('2020-01-01 00:00:00', '+00:00', '+05:30'), FROM_UNIXTIME(0)
SET SESSION tx_isolation = 'READ-COMMITTED'
SELECT @@tx_isolation
SET SESSION sql_select_limit = 2
SELECT seq FROM seq_1_to_10
SET SESSION sql_select_limit = DEFAULT
-- Transactions
START TRANSACTION
INSERT INTO customers (name, email) VALUES ('Tx', 'tx@example.com')
SELECT COUNT(*), @@in_transaction FROM customers
ROLLBACK
SELECT COUNT(*), @@in_transaction FROM customers
BEGIN
UPDATE customers SET balance = balance + 1 WHERE id = 2
SAVEPOINT s1
UPDATE customers SET balance = balance + 100 WHERE id = 2
ROLLBACK TO SAVEPOINT s1
COMMIT
SELECT balance FROM customers WHERE id = 2
ROLLBACK TO SAVEPOINT nope
SET autocommit = 0
INSERT INTO customers (name, email) VALUES ('Ac', 'ac@example.com')
ROLLBACK
SET autocommit = 1
SELECT COUNT(*) FROM customers WHERE name = 'Ac'
START TRANSACTION READ ONLY
INSERT INTO customers (name) VALUES ('ro')
COMMIT
-- Schema changes
CREATE INDEX idx_status ON orders (status)
CREATE INDEX idx_status ON orders (status)
ALTER TABLE customers ADD COLUMN vip BOOLEAN NOT NULL DEFAULT FALSE AFTER name
ALTER TABLE customers DROP COLUMN nope
CREATE VIEW big_orders AS SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.amount > 50
SELECT * FROM big_orders ORDER BY id
-- SHOW and information_schema
SHOW CREATE TABLE customers
SHOW CREATE TABLE products
SHOW CREATE VIEW big_orders
SHOW COLUMNS FROM orders
SHOW FULL COLUMNS FROM products
SHOW TABLES
SHOW FULL TABLES
SHOW DATABASES LIKE 'shop'
SHOW VARIABLES LIKE 'character_set_client'
SHOW SESSION VARIABLES LIKE 'sql_mode'
SHOW COLLATION LIKE 'utf8mb4_bin'
SHOW CHARACTER SET LIKE 'utf8mb4'
SHOW CREATE DATABASE shop
SHOW WARNINGS
SHOW ERRORS
SHOW COUNT(*) WARNINGS
SHOW NO_SUCH_THING
SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop' ORDER BY TABLE_NAME
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'products' ORDER BY ORDINAL_POSITION
SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'shop'
SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE, SEQ_IN_INDEX FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shop' AND TABLE_NAME = 'orders' ORDER BY INDEX_NAME, SEQ_IN_INDEX
SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('shop', 'mysql', 'information_schema') ORDER BY 1
SELECT COUNT(*) > 100 FROM information_schema.COLLATIONS
-- Stored programs and multiple result sets
CREATE PROCEDURE stats(IN lim DECIMAL(10,2)) BEGIN SELECT COUNT(*) AS n FROM orders WHERE amount > lim; SELECT name FROM customers ORDER BY id; UPDATE customers SET balance = balance WHERE id = 2; END
CALL stats(10)
CALL stats(1000)
CALL no_such_proc()
CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2
SELECT twice(21), twice(NULL)
SELECT twice('abc')
CREATE PROCEDURE fails() BEGIN SELECT 'first'; SELECT * FROM no_such_table; END
CALL fails()
SELECT 1; SELECT 2, 3
INSERT INTO customers (name, email) VALUES ('M1', 'm1@example.com'); SELECT LAST_INSERT_ID(); UPDATE customers SET balance = 1 WHERE name = 'M1'
SELECT 'before'; SELEC 'broken'; SELECT 'never'
-- SQL-level prepared statements
PREPARE ps FROM 'SELECT ? * 3 AS tripled'
SET @x = 14
EXECUTE ps USING @x
EXECUTE ps USING 'abc'
DEALLOCATE PREPARE ps
EXECUTE ps USING @x
-- Temporary tables, auto-increment, found rows
CREATE TEMPORARY TABLE tmp_t (x INT)
INSERT INTO tmp_t VALUES (1), (2), (3)
SELECT SUM(x) FROM tmp_t
DROP TEMPORARY TABLE tmp_t
CREATE TABLE ai_test (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)) AUTO_INCREMENT = 1000
INSERT INTO ai_test (v) VALUES ('a'), ('b'), ('c')
INSERT INTO ai_test (v) VALUES ('d')
INSERT INTO ai_test (id, v) VALUES (18446744073709551615, 'max')
SELECT LAST_INSERT_ID(), ROW_COUNT()
SELECT SQL_CALC_FOUND_ROWS id FROM ai_test ORDER BY id LIMIT 2
SELECT FOUND_ROWS()
INSERT INTO ai_test (v) VALUES ('overflow')
-- Miscellaneous statements
DO SLEEP(0)
SELECT SLEEP(0), BENCHMARK(10, MD5('x'))
EXPLAIN SELECT * FROM customers WHERE id = 2
LOCK TABLES customers READ
SELECT COUNT(*) FROM customers
SELECT COUNT(*) FROM orders
UNLOCK TABLES
-- KILL is not here on purpose: the gateway translates KILL ids (gateway session id →
-- upstream thread id) and answers unknown ids itself, so it differs by design; see
-- tests/python/commands.py.
HELP 'no such help topic'
CHECKSUM TABLE customers
TRUNCATE TABLE ai_test
DROP VIEW big_orders
DROP TABLE IF EXISTS no_such_table_either
DROP TABLE no_such_table_either
DROP PROCEDURE IF EXISTS stats
DROP FUNCTION twice
SELECT 'end' AS last_statement
