"""What the daemon hands the store, and how contract lines become rows.

``Partial`` and ``Checkpoint`` are the state the daemon saves per topic partition;
``WindowLine`` is a closed window's result line (contract section 3) with the window's key;
``TrainingRow`` and ``TrainingLabel`` are the halves of a labelled example kept for retrains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.store.utc import parse_rfc3339

__all__ = [
    "ALERT_UPDATES",
    "Checkpoint",
    "Partial",
    "TopicPartition",
    "TrainingLabel",
    "TrainingRow",
    "Watermark",
    "WindowLine",
    "alert_row",
    "checkpoint_row",
    "feature_rows",
    "label_row",
    "offset_row",
    "partial_row",
    "training_row",
    "watermark_row",
    "window_row",
]

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Partial:
    """The state of an open window from the messages of one topic partition.

    ``state`` is the window state's ``to_dict()``; ``updated_at`` is set by the store.

    >>> Partial("wine", 7, "driftline.predictions", 0, {"n": 3}, n_predictions=3).window_key
    7
    """

    model: str
    window_key: int
    topic: str
    partition: int
    state: dict[str, Any]
    n_predictions: int = 0
    updated_at: datetime | None = None
    refs: int = 0  # predictions in the join that point at it (late labels may come)


@dataclass(frozen=True, slots=True)
class Watermark:
    """The event time one partition has passed, for one model (its shard's clock)."""

    model: str
    topic: str
    partition: int
    watermark_ms: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The join state of one topic partition for one model; ``updated_at`` set by the store."""

    topic: str
    partition: int
    model: str
    state: dict[str, Any]
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WindowLine:
    """A closed window's result line (first close or a revision) and the window's key."""

    window_key: int
    line: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """A prediction event kept for retraining: its features and prediction.

    ``ts_ms`` is the prediction's event time (epoch milliseconds); ``prediction`` is any
    JSON value (None when unknown).

    >>> TrainingRow("wine", "e-1", 1_767_225_600_000, {"alcohol": 12.8}, 1).event_id
    'e-1'
    """

    model: str
    event_id: str
    ts_ms: int
    features: Mapping[str, Any]
    prediction: Any = None


@dataclass(frozen=True, slots=True)
class TrainingLabel:
    """The ground truth of the prediction event ``event_id`` (a JSON number, string or bool)."""

    model: str
    event_id: str
    label: Any


def window_row(item: WindowLine, finalised_at: datetime) -> dict[str, Any]:
    """The ``windows`` row of a result line."""
    line = item.line
    return {
        "model": line["model"],
        "model_version": _text(line.get("model_version")),
        "window_key": int(item.window_key),
        "window_start": parse_rfc3339(line["window_start"]),
        "window_end": parse_rfc3339(line["window_end"]),
        "n_predictions": int(line["n_predictions"]),
        "revision": int(line.get("revision", 0)),
        "as_of": parse_rfc3339(line.get("as_of", line["window_end"])),
        "drift_share": _number(line.get("drift_share")),
        "drift_detected": _flag(line.get("drift_detected")),
        "health_score": _number(line.get("health_score")),
        "performance": line.get("performance"),
        "estimated_performance": line.get("estimated_performance"),
        "data_quality": line.get("data_quality"),
        "health": line.get("health"),
        "alerts": line.get("alerts"),
        "line": dict(line),
        "finalised_at": finalised_at,
    }


def feature_rows(line: Mapping[str, Any], window_id: int) -> list[dict[str, Any]]:
    """The ``feature_scores`` rows of a result line's ``features``."""
    return [
        {
            "window_id": window_id,
            "feature": name,
            "method": str(score.get("method", "")),
            "score": _number(score.get("score")),
            "p_value": _number(score.get("p_value")),
            "threshold": _number(score.get("threshold")),
            "drift": _flag(score.get("drift")),
        }
        for name, score in (line.get("features") or {}).items()
    ]


def alert_row(body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The ``alerts`` row of an alert body (contract section 4)."""
    start, end = body.get("window_start"), body.get("window_end")
    return {
        "alert_id": body["alert_id"],
        "model": body["model"],
        "model_version": _text(body.get("model_version")),
        "kind": body["kind"],
        "severity": body["severity"],
        "status": body["status"],
        "window_start": parse_rfc3339(start) if start is not None else None,
        "window_end": parse_rfc3339(end) if end is not None else None,
        "health_score": _number(body.get("health_score")),
        "summary": body.get("summary", ""),
        "details": body.get("details"),
        "created_at": now,
        "resolved_at": now if body["status"] == "resolved" else None,
    }


# what a later body of the same alert_id changes (created_at stays)
ALERT_UPDATES = [
    "model_version",
    "kind",
    "severity",
    "status",
    "window_start",
    "window_end",
    "health_score",
    "summary",
    "details",
    "resolved_at",
]


def offset_row(group_id: str, tp: TopicPartition, offset: int, now: datetime) -> dict[str, Any]:
    """A ``consumer_offsets`` row."""
    topic, partition = tp
    return {
        "group_id": group_id,
        "topic": topic,
        "partition": partition,
        "next_offset": offset,
        "updated_at": now,
    }


def partial_row(partial: Partial, now: datetime) -> dict[str, Any]:
    """A ``window_partials`` row."""
    return {
        "model": partial.model,
        "window_key": partial.window_key,
        "topic": partial.topic,
        "partition": partial.partition,
        "state": partial.state,
        "n_predictions": partial.n_predictions,
        "refs": partial.refs,
        "updated_at": now,
    }


def watermark_row(mark: Watermark, now: datetime) -> dict[str, Any]:
    """A ``partition_watermarks`` row."""
    return {"model": mark.model, "topic": mark.topic, "partition": mark.partition,
            "watermark_ms": mark.watermark_ms, "updated_at": now}


def checkpoint_row(group_id: str, checkpoint: Checkpoint, now: datetime) -> dict[str, Any]:
    """A ``pipeline_checkpoints`` row."""
    return {
        "group_id": group_id,
        "topic": checkpoint.topic,
        "partition": checkpoint.partition,
        "model": checkpoint.model,
        "state": checkpoint.state,
        "updated_at": now,
    }


def training_row(row: TrainingRow, now: datetime) -> dict[str, Any]:
    """A ``training_rows`` row of a prediction event (its label is set apart)."""
    return {
        "model": row.model,
        "event_id": row.event_id,
        "ts_ms": int(row.ts_ms),
        "features": dict(row.features),
        "prediction": row.prediction,
        "updated_at": now,
    }


def label_row(label: TrainingLabel, now: datetime) -> dict[str, Any]:
    """A ``training_rows`` row holding only a label (what it is when the label comes first)."""
    return {
        "model": label.model,
        "event_id": label.event_id,
        "ts_ms": None,
        "features": {},
        "prediction": None,
        "label": label.label,
        "labelled_at": now,
        "updated_at": now,
    }


def _number(value: Any) -> float | None:
    # NaN and infinities are stored as NULL: SQLite would do so anyway, PostgreSQL would not
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
