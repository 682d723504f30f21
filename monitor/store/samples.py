"""Window samples: the rows a window retained, saved with its first close, for reports.

``Store.commit_batch(..., samples=[WindowSample(...)])`` upserts them by (model,
window_key) in the batch's transaction; ``Store.prune`` drops those older than the
retention horizon (the window's scores stay). The reads here serve ``driftline report``
and the HTTP report route: a window's sample, and which window a ``--window`` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Delete, delete, select
from sqlalchemy.engine import Connection

from monitor.store import tables as t
from monitor.store.upsert import upsert
from monitor.store.utc import as_utc

if TYPE_CHECKING:
    from monitor.store.repository import Store

__all__ = [
    "WindowSample",
    "load_sample",
    "newest_window_key",
    "prune_statement",
    "save_samples",
    "window_key_at",
    "window_line",
]

S, W = t.WindowSample, t.Window


@dataclass(frozen=True, slots=True)
class WindowSample:
    """The retained rows of one closed window (see ``monitor.engine.sample_rows``).

    >>> WindowSample("wine", 7, [{"name": "x", "kind": "numeric"}], [[1.5]]).window_key
    7
    """

    model: str
    window_key: int
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    created_at: datetime | None = None


def save_samples(conn: Connection, samples: Sequence[WindowSample], now: datetime) -> None:
    """Upsert by (model, window_key): a window closed again after a restart overwrites."""
    rows = [
        {"model": s.model, "window_key": s.window_key, "columns": s.columns, "rows": s.rows,
         "created_at": now}
        for s in samples
    ]  # fmt: skip
    upsert(conn, t.Base.metadata.tables["window_samples"], rows, ["model", "window_key"])


def prune_statement(cutoff: datetime) -> Delete:
    """Retention: samples saved before ``cutoff``."""
    return delete(S).where(S.created_at < cutoff)


def load_sample(store: Store, model: str, window_key: int) -> WindowSample | None:
    """The saved sample of a window, or None (never saved, or pruned)."""
    query = select(S.model, S.window_key, S.columns, S.rows, S.created_at).where(
        S.model == model, S.window_key == window_key
    )
    with store.reading(f"reading the sample of window {window_key} of {model!r}") as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else WindowSample(**row)


def newest_window_key(store: Store, model: str) -> int | None:
    """The key of the model's newest closed window (by start), or None."""
    query = (
        select(W.window_key)
        .where(W.model == model)
        .order_by(W.window_start.desc(), W.window_key.desc())
        .limit(1)
    )
    with store.reading(f"finding the newest window of {model!r}") as conn:
        return conn.execute(query).scalar()


def window_key_at(store: Store, model: str, at: datetime) -> int | None:
    """The key of the closed window of ``model`` that holds the instant ``at`` (the one
    starting latest when two touch there), or None."""
    when = as_utc(at)
    query = (
        select(W.window_key)
        .where(W.model == model, W.window_start <= when, W.window_end >= when)
        .order_by(W.window_start.desc(), W.window_key.desc())
        .limit(1)
    )
    with store.reading(f"finding the window of {model!r} at {when.isoformat()}") as conn:
        return conn.execute(query).scalar()


def window_line(store: Store, model: str, window_key: int) -> dict[str, Any] | None:
    """The newest revision's contract line of a closed window, or None."""
    query = (
        select(W.line)
        .where(W.model == model, W.window_key == window_key)
        .order_by(W.revision.desc())
        .limit(1)
    )
    with store.reading(f"reading window {window_key} of {model!r}") as conn:
        line = conn.execute(query).scalar()
    return None if line is None else dict(line)
