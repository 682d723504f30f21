"""Scoring a window: drift per feature and for the model's output, performance, data
quality, health score and alerts, as one dict of plain JSON values.

The keys are the contract's window fields (``features``, ``drift_share``,
``drift_detected``, ``prediction_drift``, ``performance``, ``health_score``, ``alerts``)
plus ``estimated_performance``, ``data_quality`` and ``health``. How each decision is
made is documented where it is made: ``monitor.engine.decisions`` (methods, thresholds,
Benjamini–Hochberg, effect floors), ``monitor.engine.quality`` and
``monitor.engine.health`` (the health formula and the performance check).

Window-level drift: ``drift_share`` = drifted features / features, and
``drift_detected`` when it reaches ``DriftSettings.drift_share`` (with at least one
feature drifted) or any feature marked ``critical`` drifts. ``prediction_drift`` is
reported (the prediction's distribution, and the positive-class probability's for binary
classifiers) but does not make the window drift: it follows from feature drift or from a
changed model, and performance covers the latter once labels arrive.

Alerts: "drift" when ``drift_detected``; "performance" when the measured metric is worse
than the reference's by ``performance_drop`` beyond the noise, with ``min_labels``
labels; "data_quality" when a feature's missing, type-error, out-of-range or unseen rate
exceeds the reference's by ``quality_margin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.config import DriftSettings, FeatureSpec
from monitor.engine.decisions import ColumnData, decide, measure, resolve_method
from monitor.engine.health import drift_severity, health, performance_check, severity
from monitor.engine.profile import ReferenceProfile
from monitor.engine.quality import data_quality
from monitor.engine.sketches import NumericSketch
from monitor.engine.window_state import WindowState
from monitor.errors import ConfigError

__all__ = ["score_window"]


def score_window(
    profile: ReferenceProfile,
    state: WindowState,
    drift: DriftSettings,
    features: Sequence[FeatureSpec] | None = None,
) -> dict[str, Any]:
    """Score ``state`` against ``profile``; ``features`` carry per-feature method,
    threshold and ``critical`` (default: the profile's features on "auto").

    >>> import pandas as pd
    >>> from monitor.engine.window_state import to_batch
    >>> frame = pd.DataFrame({"x": [float(i % 10) for i in range(200)]})
    >>> profile = ReferenceProfile.build(frame, task="regression", features=None)
    >>> state = WindowState(profile)
    >>> state.update(to_batch([{"x": 20.0 + i % 3} for i in range(100)], profile))
    >>> result = score_window(profile, state, DriftSettings())
    >>> result["features"]["x"]["drift"], result["drift_detected"], result["alerts"]
    (True, True, ['drift', 'data_quality'])
    """
    specs = _specs(profile, features)
    columns = _columns(profile, state)
    measurements = [measure(resolve_method(s, drift), columns[s.name]) for s in specs]
    decisions = decide(specs, measurements, drift)
    per_feature = {s.name: d for s, d in zip(specs, decisions, strict=True)}
    n_drifted = sum(d["drift"] for d in decisions)
    share = n_drifted / len(specs) if specs else 0.0
    critical = any(d["drift"] and s.critical for s, d in zip(specs, decisions, strict=True))
    detected = (n_drifted > 0 and share >= drift.drift_share) or critical

    measured = state.performance.metrics()
    performance = None
    if measured is not None:
        completeness = measured["n_labels"] / state.n_predictions if state.n_predictions else None
        performance = {**measured, "label_completeness": completeness}
    estimated = state.performance.estimated()
    check = performance_check(profile.task, profile.performance, measured, estimated, drift)
    quality = data_quality(profile, state, drift)

    components = health(
        drift_severity(share, critical, drift),
        0.0 if check is None else check["severity"],
        severity(quality["max_excess"], drift.quality_margin),
    )
    alerts = [
        kind
        for kind, firing in (
            ("drift", detected),
            ("performance", check is not None and check["alert"]),
            ("data_quality", quality["alert"]),
        )
        if firing
    ]
    return {
        "features": per_feature,
        "drift_share": share,
        "drift_detected": detected,
        "prediction_drift": _prediction_drift(profile, state, drift),
        "performance": performance,
        "estimated_performance": estimated,
        "data_quality": quality,
        "health_score": components["score"],
        "health": {**components, "performance_check": check},
        "alerts": alerts,
    }


def _specs(profile: ReferenceProfile, features: Sequence[FeatureSpec] | None) -> list[FeatureSpec]:
    """The profile's features in order, with the configured method/threshold/critical."""
    given = {spec.name: spec for spec in features or ()}
    unknown = sorted(set(given) - {f.name for f in profile.features})
    if unknown:
        raise ConfigError(f"features {unknown} are not in the reference profile; rebuild it")
    specs = []
    for base in profile.features:
        spec = given.get(base.name, base)
        specs.append(FeatureSpec(base.name, base.kind, spec.method, spec.threshold, spec.critical))
    return specs


def _columns(profile: ReferenceProfile, state: WindowState) -> dict[str, ColumnData]:
    columns = {}
    for j, column in enumerate(profile.numeric):
        columns[column.name] = ColumnData(
            column.counts,
            state.features.counts[j, : column.counts.size],
            partial(_samples, column.sample, state.features, j),
        )
    for j, cat in enumerate(profile.categorical):
        # the missing bucket (last) is data quality, not distribution
        columns[cat.name] = ColumnData(cat.counts, state.categories.column(j)[: cat.counts.size])
    return columns


def _samples(
    reference: NDArray[np.float64], sketch: NumericSketch, j: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return reference, sketch.sample(j)


def _prediction_drift(
    profile: ReferenceProfile, state: WindowState, drift: DriftSettings
) -> dict[str, Any] | None:
    pred = profile.prediction
    if pred is None:
        return None
    if state.prediction_values is not None:
        cur = state.prediction_values.counts[0, : pred.counts.size]
        result = _single("prediction", "numeric", pred.counts, cur, drift)
    elif state.prediction_counts is not None:
        cur = state.prediction_counts.column(0)[: pred.counts.size]
        result = _single("prediction", "categorical", pred.counts, cur, drift)
    else:
        return None
    prob = profile.probability
    if prob is not None and state.probability_values is not None:
        cur = state.probability_values.counts[0, : prob.counts.size]
        result["probability"] = _single("probability", "numeric", prob.counts, cur, drift)
        result["drift"] = result["drift"] or result["probability"]["drift"]
    return result


def _single(
    name: str,
    kind: str,
    ref: NDArray[np.int64],
    cur: NDArray[np.int64],
    drift: DriftSettings,
) -> dict[str, Any]:
    """The "auto" test alone (level ``fdr``, a family of one) with its effect floor."""
    spec = FeatureSpec(name, "numeric" if kind == "numeric" else "categorical")
    method = "ks_binned" if kind == "numeric" else "chisquare"
    return decide([spec], [measure(method, ColumnData(ref, cur))], drift)[0]
