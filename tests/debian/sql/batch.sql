-- Run with -batch -bail: CSV output, a view, a trigger, upsert, strict tables and an error stop.
.mode csv
.headers on
CREATE TABLE account (id INTEGER PRIMARY KEY, owner TEXT UNIQUE, balance INTEGER CHECK (balance >= 0)) STRICT;
CREATE TABLE ledger (id INTEGER PRIMARY KEY, account INTEGER, delta INTEGER, note TEXT);
CREATE TRIGGER account_change AFTER UPDATE OF balance ON account
BEGIN
    INSERT INTO ledger (account, delta, note) VALUES (new.id, new.balance - old.balance, 'update ' || new.owner);
END;
CREATE VIEW summary AS SELECT owner, balance, (SELECT count(*) FROM ledger l WHERE l.account = a.id) AS moves FROM account a;
INSERT INTO account (owner, balance) VALUES ('ann', 100), ('ben', 50), ('cy', 0);
UPDATE account SET balance = balance - 30 WHERE owner = 'ann';
UPDATE account SET balance = balance + 30 WHERE owner = 'ben';
INSERT INTO account (owner, balance) VALUES ('ben', 5) ON CONFLICT(owner) DO UPDATE SET balance = balance + excluded.balance;
SELECT * FROM summary ORDER BY owner;
SELECT account, delta, note FROM ledger ORDER BY id;
SELECT 'with,comma', 'with "quote"', 'multi
line', 1.25, NULL;
.mode line
SELECT owner, balance FROM account WHERE owner = 'ann';
.mode list
.separator " | "
SELECT owner, balance FROM account ORDER BY balance DESC;
UPDATE account SET balance = -1 WHERE owner = 'cy';
SELECT 'not reached with -bail';
