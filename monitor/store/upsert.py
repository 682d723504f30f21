"""``INSERT .. ON CONFLICT DO UPDATE`` for both backends, in one helper.

SQLAlchemy has the statement per dialect (``sqlalchemy.dialects.sqlite.insert`` and
``sqlalchemy.dialects.postgresql.insert``); ``upsert`` picks the one of the connection.
``dialect_insert`` gives that statement for conflict rules ``upsert`` cannot say.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["dialect_insert", "upsert"]


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, overwrite ``update``.

    ``update`` defaults to every column not in ``keys``; an empty ``update`` keeps the
    existing row (``DO NOTHING``).
    """
    if not rows:
        return
    statement = _statement(conn.dialect.name, table, tuple(keys),
                           None if update is None else tuple(update))
    conn.execute(statement, [dict(row) for row in rows])


@functools.lru_cache(maxsize=256)
def _statement(dialect: str, table: Table, keys: tuple[str, ...],
               update: tuple[str, ...] | None) -> Any:
    """The statement, made once: building ``excluded`` costs milliseconds per call."""
    stmt = _insert(dialect, table)
    columns = [c.name for c in table.columns if c.name not in keys] if update is None else update
    if columns:
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in columns}
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The ``INSERT`` of ``conn``'s dialect, with ``on_conflict_do_update`` and ``excluded``."""
    return _insert(conn.dialect.name, table)


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    # engine_url() admits only these two
    raise ValueError(f"no upsert for the {dialect} dialect")
