-- Tables, inserts, joins, group by, an index, transactions with rollback.
.headers on
.mode list
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born INTEGER);
CREATE TABLE book (
    id INTEGER PRIMARY KEY,
    author_id INTEGER REFERENCES author(id),
    title TEXT NOT NULL,
    year INTEGER,
    price REAL
);
INSERT INTO author (name, born) VALUES
    ('Ursula K. Le Guin', 1929), ('Stanislaw Lem', 1921), ('Octavia E. Butler', 1947),
    ('Iain M. Banks', 1954), ('Nobody Yet', NULL);
INSERT INTO book (author_id, title, year, price) VALUES
    (1, 'The Left Hand of Darkness', 1969, 9.99), (1, 'The Dispossessed', 1974, 11.5),
    (1, 'A Wizard of Earthsea', 1968, 7.25), (2, 'Solaris', 1961, 8.75),
    (2, 'The Cyberiad', 1965, 10.0), (2, 'His Master''s Voice', 1968, 12.4),
    (3, 'Kindred', 1979, 9.0), (3, 'Parable of the Sower', 1993, 10.99),
    (4, 'Consider Phlebas', 1987, 8.99), (4, 'The Player of Games', 1988, 9.49),
    (4, 'Use of Weapons', 1990, 9.99);
CREATE INDEX book_year ON book(year);
CREATE UNIQUE INDEX book_title ON book(title);

SELECT a.name, count(b.id) AS books, printf('%.2f', coalesce(sum(b.price), 0)) AS total,
       min(b.year) AS first, max(b.year) AS last
FROM author a LEFT JOIN book b ON b.author_id = a.id
GROUP BY a.id ORDER BY books DESC, a.name;

SELECT b.title, a.name FROM book b JOIN author a ON a.id = b.author_id
WHERE b.year BETWEEN 1965 AND 1975 ORDER BY b.year, b.title;

SELECT year / 10 * 10 AS decade, count(*) AS n, group_concat(title, '; ') AS titles
FROM (SELECT * FROM book ORDER BY title) GROUP BY decade HAVING n > 1 ORDER BY decade;

SELECT name FROM author WHERE id NOT IN (SELECT author_id FROM book);
SELECT name FROM author WHERE born IS NULL OR born > 1950 ORDER BY name;

BEGIN;
UPDATE book SET price = price * 2;
DELETE FROM book WHERE year < 1970;
SELECT count(*) AS inside_txn, printf('%.2f', sum(price)) AS doubled FROM book;
ROLLBACK;
SELECT count(*) AS after_rollback, printf('%.2f', sum(price)) AS original FROM book;

BEGIN;
INSERT INTO author (name, born) VALUES ('Ted Chiang', 1967);
SAVEPOINT sp;
INSERT INTO book (author_id, title, year, price) VALUES (last_insert_rowid(), 'Exhalation', 2019, 14.0);
ROLLBACK TO sp;
RELEASE sp;
COMMIT;
SELECT a.name, count(b.id) AS books FROM author a LEFT JOIN book b ON b.author_id = a.id
WHERE a.name = 'Ted Chiang' GROUP BY a.id;

INSERT INTO book (author_id, title, year, price) VALUES (1, 'Solaris', 2000, 1.0);
SELECT changes() AS changed_after_failed_insert, count(*) AS books FROM book;
SELECT typeof(1), typeof(1.5), typeof('x'), typeof(NULL), typeof(x'00'), 7 / 2, 7 % 3, 7 / 2.0;
