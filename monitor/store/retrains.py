"""Retrain runs: one row per retrain request, from its start to its outcome in MLflow.

``request_id`` is unique: starting a request that already has a run (as a restarted daemon
would) returns that run rather than a second one. A run is ``running`` until it is finished
as ``succeeded`` or ``failed``; a run whose process died stays ``running`` until someone
finishes it. Results are plain JSON-able dicts with RFC 3339 UTC times.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.engine import Connection, RowMapping

from monitor.store import tables as t
from monitor.store.upsert import dialect_insert
from monitor.store.utc import as_utc, rfc3339

__all__ = ["FINISHED", "REQUEST_ID_LENGTH", "finish", "newest_first", "run_dict", "start"]

FINISHED = ("succeeded", "failed")
REQUEST_ID_LENGTH = 64
R = t.RetrainRun


def start(
    conn: Connection,
    model: str,
    request_id: str,
    trigger_alert_id: str | None,
    started_at: datetime,
) -> tuple[int, bool]:
    """Insert a running run of ``request_id``: (its id, True), or (the existing id, False)."""
    if not 0 < len(request_id) <= REQUEST_ID_LENGTH:
        raise ValueError(
            f"request_id {request_id!r} must be 1 to {REQUEST_ID_LENGTH} characters; "
            "derive a longer one by hashing it"
        )
    row = {
        "model": model,
        "request_id": request_id,
        "trigger_alert_id": trigger_alert_id,
        "status": "running",
        "promoted": False,
        "started_at": as_utc(started_at),
    }
    stmt = dialect_insert(conn, t.Base.metadata.tables["retrain_runs"]).values(row)
    stmt = stmt.on_conflict_do_nothing(index_elements=["request_id"]).returning(R.id)
    run_id = conn.execute(stmt).scalar_one_or_none()
    if run_id is not None:
        return int(run_id), True
    existing = conn.execute(select(R.id).where(R.request_id == request_id)).scalar_one()
    return int(existing), False


def finish(
    conn: Connection,
    run_id: int,
    *,
    status: str,
    mlflow_run_id: str | None,
    registered_version: str | None,
    promoted: bool,
    detail: Mapping[str, Any] | None,
    finished_at: datetime,
) -> bool:
    """Record the outcome of run ``run_id``; False when there is no such run."""
    if status not in FINISHED:
        raise ValueError(f"status {status!r} is not a finished status; use one of {FINISHED}")
    result = conn.execute(
        update(R)
        .where(R.id == run_id)
        .values(
            status=status,
            mlflow_run_id=mlflow_run_id,
            registered_version=registered_version,
            promoted=bool(promoted),
            detail=None if detail is None else dict(detail),
            finished_at=as_utc(finished_at),
        )
    )
    return result.rowcount == 1


def newest_first(
    model: str | None = None, since: datetime | None = None, *, running: bool = False
) -> Select[Any]:
    """Runs (of ``model``, started at or after ``since``, unfinished only), newest first."""
    query = select(*R.__table__.columns).order_by(R.started_at.desc(), R.id.desc())
    if model is not None:
        query = query.where(R.model == model)
    if since is not None:
        query = query.where(R.started_at >= as_utc(since))
    if running:
        query = query.where(R.finished_at.is_(None))
    return query


def run_dict(row: RowMapping) -> dict[str, Any]:
    """A run as plain JSON-able values."""
    return {
        **row,
        "started_at": rfc3339(row["started_at"]),
        "finished_at": rfc3339(row["finished_at"]),
    }
