"""Statements and payloads shared by the SQL tests, written for them (none are
copied from the benchmark corpora).

BENIGN: statements in the form ORMs and hand-written code send them (SQLAlchemy,
Django, Rails-style, sqlcommenter, migrations), each with the dialect it is
written in. PAYLOADS: sqlmap-style injections by technique, written as sqlmap
writes them (boolean, error, union, stacked, time-based), and TAMPER, the
tamper scripts the issue names, applied to them.
"""

from __future__ import annotations

import random
import re

BENIGN: list[tuple[str, str]] = [
    # SQLAlchemy (sqlite, qmark)
    ("sqlite", "SELECT users.id, users.name, users.email FROM users WHERE users.id = ?"),
    ("sqlite", "SELECT users.id AS users_id, users.name AS users_name FROM users "
     "WHERE users.name LIKE '%' || ? || '%' ORDER BY users.id LIMIT ? OFFSET ?"),
    ("sqlite", "INSERT INTO users (name, email, created_at) VALUES (?, ?, CURRENT_TIMESTAMP)"),
    ("sqlite", "UPDATE users SET name=?, updated_at=? WHERE users.id = ?"),
    ("sqlite", "DELETE FROM sessions WHERE sessions.expires_at < ?"),
    ("sqlite", "SELECT count(*) AS count_1 FROM (SELECT users.id AS users_id FROM users "
     "WHERE users.active = 1) AS anon_1"),
    ("sqlite", "SELECT users.id FROM users WHERE users.id IN (?, ?, ?) OR users.role = ?"),
    ("sqlite", "SELECT users.id FROM users WHERE 1 != 1"),
    ("sqlite", "SELECT lower(hex(randomblob(16))) AS token"),
    ("sqlite", "PRAGMA main.table_info(\"users\")"),
    ("sqlite", "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"),
    ("sqlite", "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, "
     "kind TEXT NOT NULL DEFAULT 'event', at REAL)"),
    ("sqlite", "SELECT * FROM orders WHERE status = 'shipped' AND total > 100.5 ORDER BY id DESC"),
    ("sqlite", "SELECT a.id, b.title FROM authors a LEFT OUTER JOIN books b ON b.author_id = a.id "
     "WHERE b.title IS NOT NULL GROUP BY a.id HAVING count(b.id) > 2"),
    ("sqlite", "SELECT id FROM t WHERE x = :x AND y = :y"),
    ("sqlite", "SELECT coalesce(sum(amount), 0) FROM payments WHERE user_id = ? AND "
     "created >= date('now', '-30 days')"),
    ("sqlite", "INSERT INTO notes (body) VALUES ('Tom or Jerry? Either works; see you at 5')"),
    ("sqlite", "SELECT * FROM products WHERE description = 'Don''t panic' OR sku = ?"),
    ("sqlite", "WITH RECURSIVE cnt(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM cnt "
     "WHERE x < 10) SELECT x FROM cnt"),
    ("sqlite", "SELECT id FROM users UNION SELECT owner_id FROM groups"),
    ("sqlite", "SELECT id FROM events WHERE kind = ? /*action='list',framework='flask'*/"),
    # Django (PostgreSQL, %s)
    ("postgresql", 'SELECT "auth_user"."id", "auth_user"."password", "auth_user"."last_login" '
     'FROM "auth_user" WHERE "auth_user"."username" = %s LIMIT 21'),
    ("postgresql", 'SELECT COUNT(*) AS "__count" FROM "blog_post" WHERE ("blog_post"."published" '
     'AND "blog_post"."author_id" = %s)'),
    ("postgresql", 'INSERT INTO "blog_post" ("title", "body", "created") VALUES (%s, %s, %s) '
     'RETURNING "blog_post"."id"'),
    ("postgresql", 'UPDATE "django_session" SET "session_data" = %s, "expire_date" = %s '
     'WHERE "django_session"."session_key" = %s'),
    ("postgresql", 'SELECT "shop_item"."id" FROM "shop_item" WHERE UPPER("shop_item"."name"::text) '
     "LIKE UPPER(%s) ORDER BY \"shop_item\".\"price\" DESC NULLS LAST"),
    ("postgresql", 'SELECT "t"."id" FROM "t" WHERE "t"."data" @> %s AND "t"."tags" && %s'),
    ("postgresql", "SELECT id, payload->>'kind' AS kind FROM events WHERE created_at > now() - "
     "interval '1 hour'"),
    ("postgresql", "SELECT pg_advisory_xact_lock(%s)"),
    ("postgresql", "SELECT $1::int + $2::int AS total"),
    ("postgresql", "CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $$ BEGIN "
     "NEW.updated := now(); RETURN NEW; END; $$ LANGUAGE plpgsql"),
    ("postgresql", "SELECT E'line\\nbreak', 'C:\\path' AS p"),
    ("postgresql", "SELECT id FROM items WHERE name ILIKE %(q)s ORDER BY id LIMIT %(n)s"),
    ("postgresql", "SELECT string_agg(name, ', ') FROM tags WHERE post_id = $1"),
    ("postgresql", "SELECT version()"),
    # MySQL (PyMySQL / mysqlclient)
    ("mysql", "SELECT `users`.`id`, `users`.`name` FROM `users` WHERE `users`.`email` = %s"),
    ("mysql", "INSERT INTO `log` (`msg`) VALUES ('It\\'s done'), (\"quoted \\\"word\\\"\")"),
    ("mysql", "SELECT CONCAT(first_name, ' ', last_name) AS full_name FROM people WHERE id = %s"),
    ("mysql", "SELECT * FROM t WHERE a = 1 AND b <=> NULL ORDER BY created DESC LIMIT 10"),
    ("mysql", "SELECT SQL_CALC_FOUND_ROWS id FROM posts WHERE status = 'draft' LIMIT 0, 20"),
    ("mysql", "UPDATE counters SET hits = hits + 1 WHERE page = %s"),
    ("mysql", "SELECT DATE_FORMAT(created, '%Y-%m-%d') AS day, COUNT(*) FROM visits GROUP BY day"),
]

# sqlmap-style payloads, per technique, for a value pasted into the statement.
# "{q}" is the quote that closes the application's literal ("" for a number).
PAYLOADS: dict[str, list[str]] = {
    "boolean": [
        "1{q} AND 3098=3098 AND {q}x{q}={q}x",
        "1{q} OR 1=1-- x",
        "1{q} AND 5811=7928-- x",
        "1{q}) AND (8117=8117",
        "1{q})) OR (({q}a{q}={q}a",
        "-4251{q} OR 4611=4611#",
        "1{q} WHERE 3098=3098 AND 5811=7928-- x",
        "1{q} RLIKE (SELECT (CASE WHEN (4346=4346) THEN 1 ELSE 0x28 END))-- x",
        "1{q} AND (SELECT 2*(IF((SELECT * FROM (SELECT CONCAT(0x71,0x70,(SELECT (ELT(1=1,1))),"
        "0x71))s), 8446744073709551610, 8446744073709551610)))-- x",
    ],
    "error": [
        "1{q} AND EXTRACTVALUE(1534,CONCAT(0x5c,0x716a6a7671,(SELECT (ELT(1534=1534,1))),"
        "0x7178627071))-- x",
        "1{q} AND UPDATEXML(1,CONCAT(0x2e,0x71,(SELECT version()),0x71),1)-- x",
        "1{q} AND 6254=CAST((CHR(113)||CHR(120)||CHR(112))||(SELECT (CASE WHEN (6254=6254) THEN 1 E"
        "LSE 0 END))::text||(CHR(113)||CHR(122)) AS NUMERIC)-- x",
        "1{q} AND (SELECT 4201 FROM(SELECT COUNT(*),CONCAT(0x71,(SELECT (ELT(4201=4201,1))),0x71,"
        "FLOOR(RAND(0)*2))x FROM INFORMATION_SCHEMA.PLUGINS GROUP BY x)a)-- x",
        "1{q} AND EXP(~(SELECT * FROM (SELECT CONCAT(0x71,(SELECT (ELT(1=1,1))),0x71,0x78))x))-- x",
    ],
    "union": [
        "1{q} UNION ALL SELECT NULL,NULL,NULL-- x",
        "-1{q} UNION ALL SELECT NULL,CONCAT(0x71706a7a71,0x4a6b,0x7178767171),NULL#",
        "1{q} UNION SELECT 1,2,version()-- x",
        "1{q} UNION ALL SELECT name, sql FROM sqlite_master-- x",
        "-5{q} UNION SELECT username, password FROM users WHERE {q}1{q}={q}1",
        "1{q} ORDER BY 3-- x",
    ],
    "stacked": [
        "1{q}; SELECT PG_SLEEP(5)-- x",
        "1{q};SELECT SLEEP(5)#",
        "1{q}; DROP TABLE users-- x",
        "1{q}; INSERT INTO admins VALUES (1)-- x",
        "1{q}; WAITFOR DELAY '0:0:5'-- x",
    ],
    "time": [
        "1{q} AND SLEEP(5)-- x",
        "1{q} AND (SELECT 4564 FROM (SELECT(SLEEP(5)))abc)-- x",
        "1{q} AND 1234=(SELECT 1234 FROM PG_SLEEP(5))-- x",
        "1{q} AND 2154=LIKE(CHAR(65,66,67,68,69,70,71),UPPER(HEX(RANDOMBLOB(500000000/2))))-- x",
        "1{q} OR BENCHMARK(5000000,MD5(0x414243))#",
        "1{q} AND 9438=(CASE WHEN (9438=9438) THEN (SELECT 9438 FROM PG_SLEEP(5)) ELSE 9438 END)-- "
        "x",
    ],
    "probe": [  # quote-breaking probes that get a 500 out of a vulnerable app
        "1{q}",
        "1{q})",
        "1{q}`",
        "x{q})",
    ],
}

# Contexts a value is pasted into: (dialect, template, closing quote).
TEMPLATES: list[tuple[str, str, str]] = [
    ("sqlite", "SELECT id, name FROM users WHERE id = {v}", ""),
    ("sqlite", "SELECT id, name FROM users WHERE name = '{v}' AND active = 1", "'"),
    ("postgresql", "SELECT id, name FROM users WHERE id = {v} ORDER BY id", ""),
    ("postgresql", "SELECT id, name FROM users WHERE name = '{v}' LIMIT 10", "'"),
    ("postgresql", 'SELECT id FROM users WHERE (name = \'{v}\') AND "active"', "'"),
    ("mysql", "SELECT id, name FROM users WHERE id = {v}", ""),
    ("mysql", "SELECT id, name FROM users WHERE name = '{v}' LIMIT 10", "'"),
    ("mysql", 'SELECT id, name FROM users WHERE name = "{v}"', '"'),
]


def _space2comment(payload: str) -> str:
    return payload.replace(" ", "/**/")


def _between(payload: str) -> str:
    """sqlmap's between.py: ``A > B`` -> ``A NOT BETWEEN 0 AND B``,
    ``A = B`` -> ``A BETWEEN B AND B``."""
    payload = re.sub(r"(\w+)\s*>\s*(\w+)", r"\1 NOT BETWEEN 0 AND \2", payload)
    return re.sub(r"(\b\d+)\s*=\s*(\d+\b)", r"\1 BETWEEN \2 AND \2", payload)


def _randomcase(payload: str, seed: int = 7) -> str:
    rng = random.Random(seed)
    return re.sub(
        r"[A-Za-z_]{2,}",
        lambda m: "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in m.group()),
        payload,
    )


def _charencode(payload: str) -> str:
    """sqlmap's charencode.py: every character URL-encoded; the application sees
    it once decoded, so what reaches the statement is the payload itself."""
    from urllib.parse import quote, unquote

    return unquote(quote(payload, safe=""))


TAMPER = {
    "space2comment": _space2comment,
    "between": _between,
    "randomcase": _randomcase,
    "charencode": _charencode,
    "all": lambda p: _space2comment(_between(_randomcase(_charencode(p)))),
}


def attacks() -> list[tuple[str, str, str, str, str]]:
    """(technique, tamper, dialect, statement, value) for every payload in every
    context its quote fits, plain and with each tamper."""
    rows = []
    for dialect, template, quote in TEMPLATES:
        for technique, payloads in PAYLOADS.items():
            for payload in payloads:
                value = payload.replace("{q}", quote)
                if technique == "probe" and quote == "" and value == "1":
                    continue  # "1" is no probe in a numeric context
                for name, tamper in [("none", lambda p: p), *TAMPER.items()]:
                    tampered = tamper(value)
                    statement = template.replace("{v}", tampered)
                    rows.append((technique, name, dialect, statement, tampered))
    return rows
