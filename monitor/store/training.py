"""Training rows: each prediction event's features, prediction and label, kept for retrains.

A row is keyed by (model, event_id). ``Store.commit_batch`` writes its two halves, which
arrive in either order, in the batch's transaction, rows first, then labels:

* a :class:`~monitor.store.records.TrainingRow` is inserted. When its row exists, the saved
  features, prediction and time stay (a replayed event changes nothing), unless the row
  holds only a label so far: then they complete it. The label is never touched. A row
  without features is not kept (it could train nothing).
* a :class:`~monitor.store.records.TrainingLabel` sets the label and ``labelled_at`` of its
  row (a later label replaces an earlier one; a None label is ignored). When the event is
  not known yet, the label is saved as a row with ``features == {}`` and ``ts_ms`` NULL,
  which the features complete when they arrive.

So ``ts_ms IS NULL`` marks a row whose features are unknown; ``recent_rows`` reads only
complete rows (features and label).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, case, delete, func, select
from sqlalchemy.engine import Connection

from monitor.store import tables as t
from monitor.store.records import TrainingLabel, TrainingRow, label_row, training_row
from monitor.store.upsert import dialect_insert

__all__ = ["prune_statement", "recent_rows", "save_training"]

R = t.TrainingRow
KEY = ["model", "event_id"]


def save_training(
    conn: Connection,
    rows: Sequence[TrainingRow],
    labels: Sequence[TrainingLabel],
    now: datetime,
) -> None:
    """Upsert ``rows``, then apply ``labels``, as the module docstring says."""
    table = t.Base.metadata.tables["training_rows"]
    firsts: dict[tuple[str, str], TrainingRow] = {}
    for row in rows:
        if row.features:
            firsts.setdefault((row.model, row.event_id), row)  # as a replay would keep it
    if firsts:
        stmt = dialect_insert(conn, table)
        new, label_only = stmt.excluded, table.c.ts_ms.is_(None)
        stmt = stmt.on_conflict_do_update(
            index_elements=KEY,
            set_={
                "ts_ms": func.coalesce(table.c.ts_ms, new.ts_ms),
                "features": case((label_only, new.features), else_=table.c.features),
                "prediction": case((label_only, new.prediction), else_=table.c.prediction),
                "updated_at": new.updated_at,
            },
        )
        conn.execute(stmt, [training_row(row, now) for row in firsts.values()])
    lasts = {(x.model, x.event_id): x for x in labels if x.label is not None}
    if lasts:
        stmt = dialect_insert(conn, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=KEY,
            set_={name: stmt.excluded[name] for name in ("label", "labelled_at", "updated_at")},
        )
        conn.execute(stmt, [label_row(label, now) for label in lasts.values()])


def recent_rows(
    conn: Connection, model: str, since_ms: int | None, limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` complete rows of ``model`` (at or after ``since_ms``), oldest first."""
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    query = select(R.event_id, R.ts_ms, R.features, R.prediction, R.label).where(
        R.model == model, R.ts_ms.is_not(None), R.label.is_not(None)
    )
    if since_ms is not None:
        query = query.where(R.ts_ms >= since_ms)
    query = query.order_by(R.ts_ms.desc(), R.event_id.desc()).limit(limit)
    return [dict(row) for row in reversed(conn.execute(query).mappings().all())]


def prune_statement(cutoff: datetime) -> Delete:
    """Deletes the rows last written before ``cutoff`` (labelled or not)."""
    return delete(R).where(R.updated_at < cutoff)
