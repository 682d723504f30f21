"""The training set of a retrain, and the held-out slice both models are scored on.

Training rows are the reference frame plus the recent labelled rows (features joined with
their labels, oldest first), except the newest ``holdout_fraction`` of the recent rows
(at least one): those are held out. The challenger never sees them, and champion and
challenger are both scored on them, so the gate compares the two on the traffic the model
faces now. The split is deterministic: the same rows in the same order give the same split.

When there are no recent labelled rows, a seeded random ``holdout_fraction`` of the
reference is held out instead (``holdout_source == "reference"``). The champion was
usually trained on those rows, so this comparison favours the champion: the gate is then
harder to pass, never easier.

Recent rows without a target are dropped; their columns are cast to the reference's
dtypes (a label ``"1"`` of a JSON event matches the reference's integer ``1``).

>>> ref = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
>>> new = pd.DataFrame({"x": [4.0, 5.0, 6.0], "y": ["1", "0", "1"]})
>>> data = build_training_set(ref, new, features=["x"], target="y", holdout_fraction=0.3)
>>> len(data.train), data.holdout["x"].tolist(), data.holdout_source
(6, [6.0], 'recent')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from monitor.errors import RetrainError
from monitor.timeparse import parse_timestamp_ms

__all__ = ["TrainingSet", "build_training_set", "recent_within_horizon"]

HoldoutSource = Literal["recent", "reference"]


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """Rows to fit on and rows to compare on; both hold ``columns`` and ``target``."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    features: tuple[str, ...]  # what the estimator is fitted on, in this order
    target: str
    holdout_source: HoldoutSource
    n_reference: int  # reference rows in ``train``
    n_recent: int  # recent labelled rows used, in ``train`` and ``holdout``

    @property
    def X_train(self) -> pd.DataFrame:  # noqa: N802 - scikit-learn's name for the inputs
        return self.train[list(self.features)]

    @property
    def y_train(self) -> pd.Series:
        return self.train[self.target]

    @property
    def X_holdout(self) -> pd.DataFrame:  # noqa: N802
        return self.holdout[list(self.features)]

    @property
    def y_holdout(self) -> pd.Series:
        return self.holdout[self.target]

    def summary(self) -> dict[str, Any]:
        return {
            "n_train": len(self.train),
            "n_holdout": len(self.holdout),
            "n_reference": self.n_reference,
            "n_recent": self.n_recent,
            "holdout_source": self.holdout_source,
        }


def build_training_set(
    reference: pd.DataFrame,
    recent: pd.DataFrame | None,
    *,
    features: Sequence[str],
    target: str,
    holdout_fraction: float,
    seed: int = 0,
    extra_columns: Sequence[str] = (),
) -> TrainingSet:
    """Split the data as the module docstring says.

    ``extra_columns`` are carried along (not fitted on): monitored features the estimator
    does not use, which the new reference profile still needs. Raises ``RetrainError``
    naming a missing column, a bad fraction, or a split that leaves no training rows.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise RetrainError(f"holdout_fraction must be in (0, 1), got {holdout_fraction!r}")
    columns = list(dict.fromkeys([*features, *extra_columns, target]))
    ref = _select(reference, columns, "the reference")
    ref = ref[ref[target].notna()].reset_index(drop=True)
    new = None if recent is None else _select(recent, columns, "the recent labelled rows")
    if new is not None:
        new = _cast_like(new[new[target].notna()], ref).reset_index(drop=True)
    if new is not None and len(new) > 0:
        n_holdout = max(1, math.ceil(len(new) * holdout_fraction))
        train = pd.concat([ref, new.iloc[: len(new) - n_holdout]], ignore_index=True)
        holdout = new.iloc[len(new) - n_holdout :].reset_index(drop=True)
        source: HoldoutSource = "recent"
        n_reference, n_recent = len(ref), len(new)
    else:
        n_holdout = max(1, math.ceil(len(ref) * holdout_fraction))
        held = np.random.default_rng(seed).permutation(len(ref))[:n_holdout]
        mask = np.zeros(len(ref), dtype=bool)
        mask[held] = True
        train = ref[~mask].reset_index(drop=True)
        holdout = ref[mask].reset_index(drop=True)
        source, n_reference, n_recent = "reference", len(train), 0
    if len(train) == 0:
        raise RetrainError(
            f"no rows left to train on ({len(ref)} reference rows, "
            f"{0 if new is None else len(new)} recent labelled rows, "
            f"holdout_fraction {holdout_fraction})"
        )
    return TrainingSet(train, holdout, tuple(features), target, source, n_reference, n_recent)


def recent_within_horizon(
    frame: pd.DataFrame,
    horizon_s: float,
    *,
    time_column: str = "timestamp",
    now_ms: int | None = None,
) -> pd.DataFrame:
    """The rows of ``frame`` in the ``horizon_s`` before its end, oldest first.

    ``time_column`` holds RFC 3339 strings with offset, epoch milliseconds or datetimes;
    the horizon ends at ``now_ms`` (epoch ms; later rows are dropped) or, when not given,
    at the newest row.
    A frame without ``time_column`` is returned unchanged (its order is taken as time order).
    """
    if time_column not in frame.columns or len(frame) == 0:
        return frame
    column = frame[time_column]
    try:
        if pd.api.types.is_datetime64_any_dtype(column):
            stamps = pd.to_datetime(column, utc=True).astype("datetime64[ms, UTC]")
            millis = stamps.astype("int64").to_numpy()
        else:
            millis = np.array([parse_timestamp_ms(v) for v in column.tolist()], dtype=np.int64)
    except ValueError as err:
        raise RetrainError(f"recent rows: column {time_column!r}: {err}") from err
    end = int(millis.max()) if now_ms is None else now_ms
    keep = (millis >= end - horizon_s * 1000.0) & (millis <= end)
    order = np.argsort(millis[keep], kind="stable")
    return frame[keep].iloc[order].reset_index(drop=True)


def _select(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RetrainError(
            f"{what} lack the columns {missing}; they have {[str(c) for c in frame.columns]}"
        )
    return frame[columns]


def _cast_like(frame: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each column cast to ``like``'s dtype where they differ."""
    out = frame.copy()
    for name in out.columns:
        dtype = like[name].dtype
        if out[name].dtype == dtype:
            continue
        try:
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            if numeric:  # parse, then keep floats when missing values cannot be integers
                values = pd.to_numeric(out[name])
                out[name] = values if values.isna().any() else values.astype(dtype)
            else:
                out[name] = out[name].astype(dtype)
        except (TypeError, ValueError) as err:
            raise RetrainError(
                f"recent labelled rows: column {name!r} cannot be read as the reference's "
                f"{dtype} ({err}); send values of the reference's type"
            ) from err
    return out
