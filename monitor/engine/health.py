"""The health score of a window and the performance check behind it.

    health_score = 100 · (1 − drift) · (1 − performance) · (1 − data_quality)

Each component is a severity in [0, 1]: 0 is as good as the reference, 0.5 is exactly at
its alert threshold, 1 is twice the threshold or worse (linear in between, capped):

- drift = 0.5 · drift_share / ``DriftSettings.drift_share``, at least 0.5 when a critical
  feature drifted. So it is >= 0.5 exactly when ``drift_detected``.
- performance = 0.5 · confident_drop / ``performance_drop``: for classifiers the drop of
  accuracy below the reference's, read at the Wilson upper bound of the window's accuracy
  (z = 2), so noise from a few labels does not count; for regression the relative rise of
  MAE above the reference's, read at MAE − 2 standard errors (s.e. from RMSE and MAE:
  Var|e| = RMSE² − MAE²). It needs ``min_labels`` labels. Before that, a classifier with
  probabilities uses the estimated (confidence-based) accuracy the same way; such a
  component is marked ``"basis": "estimated"`` and never raises an alert by itself.
- data_quality = 0.5 · max_excess / ``quality_margin`` (see ``monitor.engine.quality``).

A product rather than a mean, so one component at its threshold puts the score at 50
whatever the others, two at 25, and any component at twice its threshold at 0. The score
is monotone: a worse component never raises it.
"""

from __future__ import annotations

import math
from typing import Any

from monitor.config import DriftSettings
from monitor.engine.quality import Z, wilson_bounds

__all__ = ["drift_severity", "health", "performance_check", "severity"]


def severity(excess: float, margin: float) -> float:
    """0.5 · excess / margin, capped to [0, 1] (a zero margin: any excess is 1).

    >>> severity(0.05, 0.05), severity(0.2, 0.05), severity(-1.0, 0.05)
    (0.5, 1.0, 0.0)
    """
    if excess <= 0.0:
        return 0.0
    if margin <= 0.0:
        return 1.0
    return min(1.0, 0.5 * excess / margin)


def drift_severity(drift_share: float, critical_drift: bool, drift: DriftSettings) -> float:
    value = severity(drift_share, drift.drift_share)
    return max(value, 0.5) if critical_drift else value


def performance_check(
    task: str,
    reference: dict[str, Any] | None,
    measured: dict[str, Any] | None,
    estimated: dict[str, Any] | None,
    drift: DriftSettings,
) -> dict[str, Any] | None:
    """Compare the window's performance with the reference's; None when nothing compares.

    Returns {"metric", "value", "reference", "n", "basis", "confident_change",
    "severity", "alert"}: ``confident_change`` is the accuracy drop (absolute) or the MAE
    rise (relative), counted only beyond the noise (module docstring).
    """
    if reference is None:
        return None
    if task == "regression":
        return _regression(reference, measured, drift)
    ref = reference.get("accuracy")
    if ref is None:
        return None
    if measured is not None and measured["n_labels"] >= drift.min_labels:
        basis, value, n = "measured", float(measured["accuracy"]), int(measured["n_labels"])
    elif estimated is not None and estimated["n"] >= drift.min_labels:
        basis, value, n = "estimated", float(estimated["accuracy"]), int(estimated["n"])
    else:
        return None
    _, upper = wilson_bounds(value, n)
    drop = max(0.0, float(ref) - upper)
    sev = severity(drop, drift.performance_drop)
    return {
        "metric": "accuracy",
        "value": value,
        "reference": float(ref),
        "n": n,
        "basis": basis,
        "confident_change": drop,
        "severity": sev,
        "alert": basis == "measured" and sev >= 0.5,
    }


def _regression(
    reference: dict[str, Any], measured: dict[str, Any] | None, drift: DriftSettings
) -> dict[str, Any] | None:
    ref = reference.get("mae")
    if ref is None or measured is None or measured["n_labels"] < drift.min_labels:
        return None
    n = int(measured["n_labels"])
    mae, rmse = float(measured["mae"]), float(measured["rmse"])
    stderr = math.sqrt(max(rmse * rmse - mae * mae, 0.0) / n)
    lower = mae - Z * stderr
    rise = max(0.0, lower - float(ref)) / float(ref) if ref > 0 else float(lower > 0)
    sev = severity(rise, drift.performance_drop)
    return {
        "metric": "mae",
        "value": mae,
        "reference": float(ref),
        "n": n,
        "basis": "measured",
        "confident_change": rise,
        "severity": sev,
        "alert": sev >= 0.5,
    }


def health(drift: float, performance: float, data_quality: float) -> dict[str, Any]:
    """The score and its components (module docstring).

    >>> health(0.0, 0.0, 0.0)["score"], health(0.5, 0.0, 0.0)["score"]
    (100.0, 50.0)
    """
    score = 100.0 * (1.0 - drift) * (1.0 - performance) * (1.0 - data_quality)
    return {
        "score": round(min(100.0, max(0.0, score)), 6),
        "drift": drift,
        "performance": performance,
        "data_quality": data_quality,
    }
