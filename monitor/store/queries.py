"""The store's read API, for ``driftline status`` and the HTTP API: plain JSON-able dicts.

Times are RFC 3339 UTC strings in results and aware datetimes in arguments. Lists are in
time order, oldest first; ``limit`` keeps the newest. A window is shown at its latest
revision unless ``all_revisions`` is asked for. ``since`` keeps windows that ended at or
after it, ``until`` those that started before it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select

from monitor.store import retrains as runs
from monitor.store import tables as t
from monitor.store.repository import Store
from monitor.store.utc import as_utc, rfc3339

__all__ = ["alerts", "health", "models", "retrains", "windows"]

DEFAULT_LIMIT = 1000
W = t.Window


def models(store: Store) -> list[dict[str, Any]]:
    """Every monitored model with its versions, window count and newest window."""
    counts = (
        select(W.model, func.count().label("n"), func.max(W.window_end).label("last_end"))
        .group_by(W.model)
        .subquery()
    )
    query = (
        select(t.Model.name, t.Model.task, t.Model.created_at, counts.c.n, counts.c.last_end)
        .outerjoin(counts, counts.c.model == t.Model.name)
        .order_by(t.Model.name)
    )
    v = t.ModelVersion
    with store.reading("listing models") as conn:
        rows = conn.execute(query).all()
        versions = conn.execute(
            select(v.model, v.version, v.reference_hash, v.created_at).order_by(v.created_at)
        ).all()
    by_model: dict[str, list[dict[str, Any]]] = {}
    for model, version, reference_hash, created_at in versions:
        by_model.setdefault(model, []).append(
            {
                "version": version,
                "reference_hash": reference_hash,
                "created_at": rfc3339(created_at),
            }
        )
    return [
        {
            "name": name,
            "task": task,
            "created_at": rfc3339(created_at),
            "versions": by_model.get(name, []),
            "windows": n or 0,
            "last_window_end": rfc3339(last_end),
        }
        for name, task, created_at, n, last_end in rows
    ]


def windows(
    store: Store,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    *,
    all_revisions: bool = False,
) -> list[dict[str, Any]]:
    """The result lines of a model's closed windows, with ``window_key`` and ``finalised_at``."""
    query = _window_query(model, since, until, all_revisions).add_columns(
        W.line, W.window_key, W.finalised_at
    )
    with store.reading(f"reading the windows of {model!r}") as conn:
        rows = conn.execute(_newest(query, limit)).all()
    return [
        {**line, "window_key": key, "finalised_at": rfc3339(finalised_at)}
        for line, key, finalised_at in reversed(rows)
    ]


def health(store: Store, model: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """A model's health per window (latest revisions): scores, drift, labels, alerts."""
    query = _window_query(model, since, None, all_revisions=False).add_columns(
        W.window_start,
        W.window_end,
        W.model_version,
        W.n_predictions,
        W.health_score,
        W.drift_detected,
        W.drift_share,
        W.performance,
        W.alerts,
        W.revision,
        W.as_of,
    )
    with store.reading(f"reading the health of {model!r}") as conn:
        rows = conn.execute(_newest(query, DEFAULT_LIMIT)).mappings().all()
    return [
        {
            **row,
            "window_start": rfc3339(row["window_start"]),
            "window_end": rfc3339(row["window_end"]),
            "as_of": rfc3339(row["as_of"]),
            "n_labels": (row["performance"] or {}).get("n_labels", 0),
            "alerts": row["alerts"] or [],
        }
        for row in reversed(rows)
    ]


def alerts(
    store: Store,
    model: str | None = None,
    since: datetime | None = None,
    status: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Alerts (of one model, created at or after ``since``, with one status), oldest first."""
    a = t.Alert
    query = select(*a.__table__.columns).order_by(a.created_at.desc(), a.alert_id.desc())
    if model is not None:
        query = query.where(a.model == model)
    if since is not None:
        query = query.where(a.created_at >= as_utc(since))
    if status is not None:
        query = query.where(a.status == status)
    with store.reading("reading alerts") as conn:
        rows = conn.execute(query.limit(limit)).mappings().all()
    times = ("window_start", "window_end", "created_at", "resolved_at")
    return [
        {key: rfc3339(value) if key in times else value for key, value in row.items()}
        for row in reversed(rows)
    ]


def retrains(
    store: Store,
    model: str | None = None,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Retrain runs (of one model, started at or after ``since``), oldest first."""
    with store.reading("reading retrain runs") as conn:
        rows = conn.execute(runs.newest_first(model, since).limit(limit)).mappings().all()
    return [runs.run_dict(row) for row in reversed(rows)]


def _window_query(
    model: str, since: datetime | None, until: datetime | None, all_revisions: bool
) -> Select[Any]:
    query = select().select_from(W).where(W.model == model)
    if not all_revisions:
        latest = (
            select(W.window_key, func.max(W.revision).label("revision"))
            .where(W.model == model)
            .group_by(W.window_key)
            .subquery()
        )
        query = query.join(
            latest,
            and_(W.window_key == latest.c.window_key, W.revision == latest.c.revision),
        )
    if since is not None:
        query = query.where(W.window_end >= as_utc(since))
    if until is not None:
        query = query.where(W.window_start < as_utc(until))
    return query


def _newest(query: Select[Any], limit: int) -> Select[Any]:
    return query.order_by(W.window_start.desc(), W.window_key.desc(), W.revision.desc()).limit(
        limit
    )
