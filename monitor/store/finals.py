"""What finalising windows reads and deletes, inside the daemon's commit transaction.

Several processes of one consumer group each save the partials and watermarks of their
partitions; the first commit that finds every partition of a model past a window merges
and writes it. ``lock_models`` serialises those commits per model (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite's write transactions are serial already), so a window is
written once, and revisions get consecutive numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.engine import Connection

from monitor.store import tables as t

__all__ = [
    "checkpoint_states",
    "delete_released",
    "latest_revisions",
    "lock_models",
    "partials_of",
    "partitions_of",
    "unfinalised",
    "watermarks",
]

P = t.WindowPartial


def lock_models(conn: Connection, names: Iterable[str]) -> None:
    """Hold the rows of these models until the transaction ends (in name order)."""
    wanted = sorted(set(names))
    if wanted:
        conn.execute(select(t.Model.name).where(t.Model.name.in_(wanted))
                     .order_by(t.Model.name).with_for_update()).all()


def watermarks(conn: Connection, model: str, topic: str) -> dict[int, int]:
    """Each partition's saved watermark for ``model``."""
    w = t.PartitionWatermark
    rows = conn.execute(select(w.partition, w.watermark_ms)
                        .where(w.model == model, w.topic == topic)).all()
    return {int(p): int(mark) for p, mark in rows}


def unfinalised(conn: Connection, model: str) -> dict[int, set[int]]:
    """Window keys with partials but no window written yet, with their partitions."""
    written = exists().where(t.Window.model == P.model, t.Window.window_key == P.window_key)
    rows = conn.execute(select(P.window_key, P.partition)
                        .where(P.model == model, ~written)
                        .order_by(P.window_key, P.partition)).all()
    out: dict[int, set[int]] = {}
    for key, partition in rows:
        out.setdefault(key, set()).add(partition)
    return out


def latest_revisions(conn: Connection, model: str, keys: Iterable[int]) -> dict[int, int]:
    """The newest revision written of each of these windows (absent: not written yet)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = conn.execute(select(t.Window.window_key, func.max(t.Window.revision))
                        .where(t.Window.model == model, t.Window.window_key.in_(wanted))
                        .group_by(t.Window.window_key)).all()
    return {int(key): int(revision) for key, revision in rows}


def partitions_of(conn: Connection, model: str, key: int) -> list[int]:
    """The partitions that saved a partial of one window, in order."""
    return list(conn.execute(select(P.partition).where(P.model == model, P.window_key == key)
                             .order_by(P.partition)).scalars())


def partials_of(conn: Connection, model: str, key: int, partitions: Iterable[int]
                ) -> list[tuple[int, dict[str, Any]]]:
    """``(partition, state)`` of the partials of one window from ``partitions``."""
    wanted = sorted(set(partitions))
    if not wanted:
        return []
    rows = conn.execute(select(P.partition, P.state)
                        .where(P.model == model, P.window_key == key, P.partition.in_(wanted))
                        .order_by(P.partition)).all()
    return [(partition, state) for partition, state in rows]


def delete_released(conn: Connection, model: str, keys: Iterable[int]) -> None:
    """Forget the partials of these (finalised) windows where no prediction points at
    any of them any more: late labels cannot change them."""
    wanted = sorted(set(keys))
    if wanted:
        held = select(P.window_key).where(P.model == model, P.window_key.in_(wanted),
                                          P.refs > 0)
        conn.execute(delete(P).where(P.model == model, P.window_key.in_(wanted),
                                     P.window_key.not_in(held)))


def checkpoint_states(conn: Connection, group_id: str, topic: str, models: Iterable[str]
                      ) -> dict[str, dict[str, Any]]:
    """The per-model checkpoint states saved under ``topic`` (partition -1)."""
    c = t.PipelineCheckpoint
    wanted = sorted(set(models))
    if not wanted:
        return {}
    rows = conn.execute(select(c.model, c.state).where(
        c.group_id == group_id, c.topic == topic, c.partition == -1,
        c.model.in_(wanted))).all()
    return {str(model): dict(state) for model, state in rows}
