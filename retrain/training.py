"""Fitting the challenger: the champion's estimator refitted, or a training entry point.

Refit: ``sklearn.base.clone`` of the champion (same parameters, no fitted state) fitted on
the training rows. Entry point: ``training_entry_point: "package.module:function"``,
called ``function(X, y)`` with the training features (a DataFrame in the champion's
column order) and target (a Series); it returns a fitted estimator with ``predict``.
"""

from __future__ import annotations

import importlib
from typing import Any

from sklearn.base import clone

from monitor.errors import RetrainError
from retrain.dataset import TrainingSet

__all__ = ["fit_challenger"]


def fit_challenger(champion: Any, entry_point: str | None, data: TrainingSet) -> Any:
    if entry_point is None:
        return clone(champion).fit(data.X_train, data.y_train)
    module_name, _, function_name = entry_point.partition(":")
    if not module_name or not function_name:
        raise RetrainError(
            f"training_entry_point {entry_point!r} must read 'package.module:function'"
        )
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as err:
        raise RetrainError(f"training_entry_point {entry_point!r} cannot be loaded: {err}") from err
    estimator = function(data.X_train, data.y_train)
    if not hasattr(estimator, "predict"):
        raise RetrainError(
            f"training_entry_point {entry_point!r} returned {type(estimator).__name__}, "
            "not a fitted estimator with predict()"
        )
    return estimator
