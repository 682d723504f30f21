"""``INSERT .. ON CONFLICT DO UPDATE`` for both backends, in one helper.

SQLAlchemy has the statement per dialect (``sqlalchemy.dialects.sqlite.insert`` and
``sqlalchemy.dialects.postgresql.insert``); ``upsert`` picks the one of the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["upsert"]


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
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # engine_url() admits only these two
        raise ValueError(f"no upsert for the {dialect} dialect")
    columns = [c.name for c in table.columns if c.name not in keys] if update is None else update
    if columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in columns}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, [dict(row) for row in rows])
