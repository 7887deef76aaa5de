"""Baseline for bench/intake.py: a bare WSGI app, no framework, that only commits the raw body.

One connection per thread, one INSERT in autocommit. SQLite through the sqlite3 module with
Harbour's options (WAL, synchronous NORMAL, 20 s busy timeout); PostgreSQL through psycopg.
Served by gunicorn with the same worker settings as Harbour. BENCH_DATABASE_URL names the database.
"""
import os
import sqlite3
import threading

URL = os.environ["BENCH_DATABASE_URL"]
SQLITE_PREFIX = "sqlite:///"
_local = threading.local()
_ANSWER = b'{"resourceType":"OperationOutcome"}'


def _connect():
    if URL.startswith(SQLITE_PREFIX):
        conn = sqlite3.connect(URL[len(SQLITE_PREFIX) :], timeout=20, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn, "INSERT INTO raw_message (received_at, raw) VALUES (datetime('now'), ?)"
    import psycopg

    return psycopg.connect(URL, autocommit=True), "INSERT INTO raw_message (received_at, raw) VALUES (now(), %s)"


def create_table():
    conn, _ = _connect()
    if URL.startswith(SQLITE_PREFIX):
        conn.execute("CREATE TABLE raw_message (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT, raw BLOB)")
    else:
        conn.execute("CREATE TABLE raw_message (id BIGSERIAL PRIMARY KEY, received_at TIMESTAMPTZ, raw BYTEA)")
    conn.close()


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("405 Method Not Allowed", [("Allow", "POST"), ("Content-Length", "0")])
        return [b""]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    if not hasattr(_local, "conn"):
        _local.conn, _local.insert = _connect()
    _local.conn.execute(_local.insert, (body,))
    start_response("200 OK", [("Content-Type", "application/fhir+json"), ("Content-Length", str(len(_ANSWER)))])
    return [_ANSWER]


if __name__ == "__main__":
    create_table()
