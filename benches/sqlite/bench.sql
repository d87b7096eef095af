-- CPU-bound SQLite workload for benches/cpu.sh, run on an in-memory database
-- (`sqlite3 :memory: < bench.sql`): 100k rows inserted in one transaction, an index built,
-- then aggregates and lookups through the index. Results are integers or fixed-point text, so
-- any SQLite 3 of the last years prints the same.
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER NOT NULL, item TEXT NOT NULL,
                     quantity INTEGER NOT NULL, cents INTEGER NOT NULL);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO orders (id, customer, item, quantity, cents)
SELECT i, (i * 7919) % 5003, 'item-' || ((i * 104729) % 997), 1 + i % 9, 100 + (i * 31337) % 99901
FROM n;
COMMIT;
CREATE INDEX orders_customer ON orders (customer);

SELECT count(*), sum(quantity), sum(cents), min(cents), max(cents),
       printf('%.2f', avg(cents) / 100.0) FROM orders;
SELECT item, count(*), sum(quantity * cents) FROM orders GROUP BY item ORDER BY 3 DESC, 1 LIMIT 3;

-- Point lookups through the index, for 1000 customers, and one ordered range.
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 999)
SELECT sum((SELECT count(*) FROM orders WHERE customer = k.i AND quantity > 4)) FROM k;
SELECT group_concat(id, ',') FROM (SELECT id FROM orders WHERE customer = 42 ORDER BY id LIMIT 8);
