"""Reference profile of a model's outputs: prediction, probability, performance, calibration.

- prediction: numeric bins (regression) or counts over the classes (classification); the
  classes are the ``class_key`` strings of the target and prediction columns, sorted;
- probability: numeric bins of the positive-class probability (binary classifiers with a
  probability column). The positive class is ``PerformanceState``'s: the greater of the
  two classes, numerically when both are numbers ("1" of 0/1, "true" of booleans, "yes"
  of no/yes), as scikit-learn's ``classes_[1]``;
- performance: ``PerformanceState`` metrics on the reference rows that have a target and a
  prediction (a binary classifier known only by its probability predicts positive at 0.5);
- calibrator: isotonic ``Calibrator`` of the probability against the target, used by the
  estimated (label-free) accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from monitor.config import Task
from monitor.engine.column_profile import (
    CategoricalProfile,
    NumericProfile,
    categorical_profile,
    category_key,
    float_column,
    numeric_profile,
)
from monitor.engine.performance import Calibrator, PerformanceState, class_key

__all__ = ["OutputProfile"]


@dataclass(frozen=True, eq=False)
class OutputProfile:
    """What the reference says about the model's outputs (see the module docstring)."""

    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    prediction: NumericProfile | CategoricalProfile | None = None
    probability: NumericProfile | None = None
    performance: dict[str, Any] | None = None
    calibrator: Calibrator | None = None

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        *,
        task: Task,
        target: str | None,
        prediction: str | None,
        probability: str | None,
        bins: int,
    ) -> OutputProfile:
        if task == "regression":
            pred = None
            if prediction is not None:
                pred = numeric_profile("prediction", float_column(frame[prediction]), bins, 0, 0)
            perf = _performance(
                frame, task, classes=(), positive=None, target=target, prediction=prediction
            )
            return cls(prediction=pred, performance=perf)
        keyed = [c for c in (target, prediction) if c is not None]
        classes = sorted({category_key(v) for c in keyed for v in frame[c].dropna().unique()})
        positive = PerformanceState(task, classes=classes).positive_class
        pred_profile = None
        if prediction is not None:
            pred_profile = _class_counts(frame[prediction], tuple(classes))
        prob_profile, calibrator = None, None
        if probability is not None:
            probs = float_column(frame[probability])
            prob_profile = numeric_profile("probability", probs, bins, 0, 0)
            if target is not None and positive is not None:
                calibrator = _calibrator(probs, frame[target], positive)
        perf = _performance(
            frame,
            task,
            classes=classes,
            positive=positive,
            target=target,
            prediction=prediction,
            probability=probability,
        )
        return cls(tuple(classes), positive, pred_profile, prob_profile, perf, calibrator)


def _class_counts(series: pd.Series, classes: tuple[str, ...]) -> CategoricalProfile:
    observed = categorical_profile("prediction", series)
    by_key = dict(zip(observed.categories, observed.counts.tolist(), strict=False))
    counts = np.array([by_key.get(c, 0) for c in classes] + [0], dtype=np.int64)
    return CategoricalProfile("prediction", classes, counts, observed.n_missing)


def _calibrator(probs: NDArray[np.float64], target: pd.Series, positive: str) -> Calibrator:
    known = ~np.isnan(probs) & target.notna().to_numpy()
    labels = np.array([class_key(v) == positive for v in target[known]], dtype=np.float64)
    return Calibrator.fit(probs[known], labels)


def _performance(
    frame: pd.DataFrame,
    task: Task,
    *,
    classes: Sequence[str],
    positive: str | None,
    target: str | None,
    prediction: str | None,
    probability: str | None = None,
) -> dict[str, Any] | None:
    if target is None or (prediction is None and (probability is None or positive is None)):
        return None
    cols = list(dict.fromkeys(c for c in (target, prediction, probability) if c is not None))
    rows = frame[cols].dropna()
    if rows.empty:
        return None
    probs = None if probability is None else rows[probability].to_numpy(dtype=np.float64)
    if prediction is not None:
        preds = rows[prediction].tolist()
    else:  # binary classifier known only by its probability: predict positive at 0.5
        negative = next(c for c in classes if c != positive)
        preds = [positive if p >= 0.5 else negative for p in probs]  # type: ignore[union-attr]
    state = PerformanceState(task, classes=tuple(classes), positive_class=positive)
    state.add(preds, rows[target].tolist(), probs)
    return state.metrics()
