"""SQLite settings of the store: WAL journal, real transactions, a lock wait, foreign keys.

The sqlite3 module's own transaction handling is switched off (it would not BEGIN before
DDL or SELECT); a ``begin`` hook issues BEGIN instead, so migrations are transactional too.
A connection carrying the execution option ``WRITE`` begins with ``BEGIN IMMEDIATE``: it
takes the write lock up front and waits up to the busy timeout for it, rather than failing
midway through a transaction when another process writes.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["BUSY_TIMEOUT_MS", "WRITE", "configure_sqlite"]

BUSY_TIMEOUT_MS = 30_000
WRITE = "driftline_write"


def configure_sqlite(engine: Engine) -> None:
    """Install the connect and begin hooks on an SQLite engine."""
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)


def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """WAL mode (persistent once set). Switching to it needs an exclusive lock and SQLite
    answers "database is locked" at once, without its busy handler, while another process
    holds one: so wait here, up to the busy timeout, like every other lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
