-- Window functions, recursive CTEs, json and printf of floats.
.mode column
.headers on
CREATE TABLE sale (region TEXT, month INTEGER, amount REAL);
WITH RECURSIVE m(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM m WHERE n < 6)
INSERT INTO sale SELECT r.region, m.n, round(100 + ((m.n * 37 + length(r.region) * 11) % 50) * 1.25, 2)
FROM m, (SELECT 'north' AS region UNION ALL SELECT 'south' UNION ALL SELECT 'east') r;

SELECT region, month, amount,
       sum(amount) OVER (PARTITION BY region ORDER BY month) AS running,
       rank() OVER (PARTITION BY month ORDER BY amount DESC) AS rank_in_month,
       lag(amount, 1, 0) OVER (PARTITION BY region ORDER BY month) AS prev,
       round(avg(amount) OVER (PARTITION BY region ORDER BY month ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING), 3) AS smooth
FROM sale ORDER BY region, month;

SELECT region, ntile(2) OVER w AS half, row_number() OVER w AS rn, first_value(month) OVER w AS fv,
       cume_dist() OVER w AS cd
FROM sale WINDOW w AS (PARTITION BY region ORDER BY amount, month) ORDER BY region, rn LIMIT 8;

WITH RECURSIVE fib(i, a, b) AS (SELECT 0, 0, 1 UNION ALL SELECT i + 1, b, a + b FROM fib WHERE i < 90)
SELECT i, a FROM fib WHERE i % 15 = 0;

WITH RECURSIVE tree(id, parent, name) AS (
    VALUES (1, NULL, 'root'), (2, 1, 'usr'), (3, 2, 'bin'), (4, 2, 'lib'), (5, 1, 'etc'), (6, 4, 'riscv64-linux-gnu')
), walk(id, path, depth) AS (
    SELECT id, name, 0 FROM tree WHERE parent IS NULL
    UNION ALL
    SELECT t.id, w.path || '/' || t.name, w.depth + 1 FROM tree t JOIN walk w ON t.parent = w.id
    ORDER BY 2
)
SELECT depth, path FROM walk;

.mode list
SELECT json_object('region', region, 'total', round(sum(amount), 2), 'months', json_group_array(month))
FROM sale GROUP BY region ORDER BY region;
SELECT json_extract('{"a": {"b": [10, 20, {"c": "deep"}]}}', '$.a.b[2].c'),
       '{"x": [1, 2, 3]}' -> '$.x[1]', '{"x": [1, 2, 3]}' ->> '$.x[#-1]', json_array_length('[1,2,[3,4]]'),
       json_valid('{"broken":'), json_type('{"a": 1.5}', '$.a');
SELECT key, value, type FROM json_each('{"b": 2, "a": [1, 2], "c": null, "d": 1e3}') ORDER BY key;
SELECT json_set('{"a": 1}', '$.b', json('[true, false]'), '$.a', 2), json_remove('[0, 1, 2, 3]', '$[1]', '$[1]'),
       json_patch('{"a": 1, "b": 2}', '{"b": null, "c": 3}');
SELECT printf('%.17g|%.3f|%e|%g|%10.4f|%-8d|%08.2f|%x|%q|%w', 0.1, 2.0 / 3, 12345.6789, 1e-7, 3.14159265, 42, -3.5, 255, 'it''s', 'id"x');
SELECT printf('%.15g', 0.1 + 0.2), 0.1 + 0.2, 1e308 * 10, -1e308 * 10, 9223372036854775807 + 1,
       round(2.5), round(-2.5), round(1.005, 2), cast(1e19 AS INTEGER), abs(-9223372036854775807);
SELECT 10 / 3, 10.0 / 3, 1 / 0, 5 % 0, cast('12abc' AS INTEGER), cast('3.9' AS INTEGER), '10' + 5, 2 * '1.5';
SELECT length(randomblob(16)), hex('Ää'), unicode('€'), char(72, 105), upper('straße'), length('häll€'), instr('abcabc', 'ca'),
       substr('sqlite', -3), replace('a-b-c', '-', '+'), trim('  x  ') || '|', ltrim('xxhixx', 'x'), quote(NULL);
SELECT sum(value) AS s, total(value) AS t, avg(value) AS a, count(value) AS c, count(*) AS n
FROM (SELECT 1 AS value UNION ALL SELECT NULL UNION ALL SELECT 2.5);
