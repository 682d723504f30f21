"""Scores of a fitted estimator on a labelled slice: the figures the promotion gate compares.

Classification: ``accuracy``, ``f1_macro`` and, when the estimator has ``predict_proba``,
``roc_auc`` (binary: the probability of ``classes_[1]``; multiclass: one-vs-rest, macro).
Regression: ``mae`` and ``rmse``. A score that is undefined on the slice (ROC AUC of a
slice holding one class, any score of an empty slice) is NaN, which the gate never promotes.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)

from monitor.config import Task

__all__ = ["TASK_METRICS", "evaluate"]

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1_macro", "roc_auc"),
    "regression": ("mae", "rmse"),
}


def evaluate(estimator: Any, x: pd.DataFrame, y: pd.Series, task: Task) -> dict[str, float]:
    """Every metric of ``task`` for ``estimator`` on inputs ``x``, truth ``y``; NaN if undefined."""
    if len(x) == 0:
        return dict.fromkeys(TASK_METRICS[task], math.nan)
    predicted = estimator.predict(x)
    if task == "regression":
        truth = y.to_numpy(dtype=np.float64)
        return {
            "mae": float(mean_absolute_error(truth, predicted)),
            "rmse": float(math.sqrt(mean_squared_error(truth, predicted))),
        }
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1_macro": float(f1_score(y, predicted, average="macro", zero_division=0)),
        "roc_auc": _roc_auc(estimator, x, y),
    }


def _roc_auc(estimator: Any, x: pd.DataFrame, y: pd.Series) -> float:
    if not hasattr(estimator, "predict_proba") or y.nunique() < 2:
        return math.nan
    probabilities = np.asarray(estimator.predict_proba(x))
    classes = list(getattr(estimator, "classes_", []))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class missing from the slice: NaN below
            if probabilities.shape[1] == 2:
                return float(roc_auc_score(y == classes[1], probabilities[:, 1]))
            return float(
                roc_auc_score(y, probabilities, multi_class="ovr", average="macro", labels=classes)
            )
    except (ValueError, IndexError):  # labels the estimator never saw, one class only
        return math.nan
