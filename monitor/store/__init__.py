"""The SQL store: results, alerts and the daemon's state, on SQLite or PostgreSQL.

    store = open_store(config.store)                  # migrates the schema to head
    store.commit_batch(group_id, offsets=..., partials=..., windows=..., finalised=...)
    queries.health(store, "wine", since=yesterday)    # plain, JSON-able dicts

Write API: :class:`Store` (``repository.py``). Read API: ``queries.py``. Tables:
``tables.py``; migrations: ``migrations/`` (Alembic, run by ``open_store``).
"""

from __future__ import annotations

from monitor.store import queries
from monitor.store.db import open_store
from monitor.store.records import Checkpoint, Partial, TrainingLabel, TrainingRow, WindowLine
from monitor.store.repository import Store
from monitor.store.samples import WindowSample

__all__ = [
    "Checkpoint",
    "Partial",
    "Store",
    "TrainingLabel",
    "TrainingRow",
    "WindowLine",
    "WindowSample",
    "open_store",
    "queries",
]
