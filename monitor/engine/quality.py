"""Data quality of a window, feature by feature, compared with the reference.

Rates per feature (over the window's feature rows; out-of-range and unseen over the
feature's non-missing values):

- ``missing_rate``: absent or null (the reference has its own missing rate);
- ``type_error_rate``: a value of the wrong type (also left out of the statistics);
- ``out_of_range_rate`` (numeric): below the reference minimum or above its maximum;
- ``unseen_rate`` (categorical): a category the reference never had.

The reference has no type errors and nothing unseen, by construction; its expected
out-of-range rate is 2 / (n + 1) for n reference values (a new draw from the same
distribution lands outside their range that often).
A rate's excess is how far the window is above the reference, read at the Wilson lower
bound of the window's rate (z = 2, ~98 % one-sided) so that a few rows cannot raise it:
excess = max(0, lower_bound − reference rate). The window's data quality alerts when an
excess reaches ``DriftSettings.quality_margin`` (default 0.05: five more values in a
hundred missing, mistyped, out of range or unseen than in the reference). The largest
excess also drives the health score's data-quality component.
"""

from __future__ import annotations

import math
from typing import Any

from monitor.config import DriftSettings
from monitor.engine.profile import ReferenceProfile
from monitor.engine.window_state import WindowState

__all__ = ["Z", "data_quality", "wilson_bounds"]

Z = 2.0  # confidence of the excess and of performance drops: ~97.7 % one-sided


def wilson_bounds(rate: float, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a proportion ``rate`` observed over ``n`` trials.

    >>> [round(b, 3) for b in wilson_bounds(0.1, 10)]
    [0.017, 0.411]
    """
    if n <= 0:
        return 0.0, 1.0
    z2n = z * z / n
    center = rate + z2n / 2.0
    spread = z * math.sqrt(rate * (1.0 - rate) / n + z2n / (4.0 * n))
    return max(0.0, (center - spread) / (1.0 + z2n)), min(1.0, (center + spread) / (1.0 + z2n))


def data_quality(
    profile: ReferenceProfile, state: WindowState, drift: DriftSettings
) -> dict[str, Any]:
    """{"features": {name: rates}, "totals": rates, "max_excess", "alert"} for a window."""
    n_rows = state.n_rows
    n_num = len(profile.numeric)
    per_feature: dict[str, dict[str, Any]] = {}
    totals = {"missing": 0, "type_errors": 0, "out_of_range": 0, "unseen": 0}
    present_total = {"numeric": 0, "categorical": 0}
    max_excess = 0.0
    for j, column in enumerate(profile.numeric):
        errors = int(state.type_errors[j])
        missing = int(state.features.n_missing[j]) - errors
        bins = state.features.counts[j, : column.counts.size]
        outside = int(bins[0] + bins[-1])
        present = int(bins.sum())
        rates = {
            "missing_rate": (missing, n_rows, column.missing_rate),
            "type_error_rate": (errors, n_rows, 0.0),
            # a fresh draw from the reference's own distribution falls outside the range
            # of its n values with probability 2 / (n + 1) (order statistics)
            "out_of_range_rate": (outside, present, 2.0 / (column.n + 1)),
        }
        per_feature[column.name], excess = _feature(rates, drift)
        max_excess = max(max_excess, excess)
        totals["missing"] += missing
        totals["type_errors"] += errors
        totals["out_of_range"] += outside
        present_total["numeric"] += present
    for j, cat in enumerate(profile.categorical):
        errors = int(state.type_errors[n_num + j])
        counts = state.categories.column(j)
        size = len(cat.categories)
        missing = int(counts[size + 1]) - errors
        unseen = int(counts[size])
        present = int(counts[: size + 1].sum())
        rates = {
            "missing_rate": (missing, n_rows, cat.missing_rate),
            "type_error_rate": (errors, n_rows, 0.0),
            "unseen_rate": (unseen, present, 0.0),
        }
        per_feature[cat.name], excess = _feature(rates, drift)
        max_excess = max(max_excess, excess)
        totals["missing"] += missing
        totals["type_errors"] += errors
        totals["unseen"] += unseen
        present_total["categorical"] += present
    n_values = n_rows * (n_num + len(profile.categorical))
    return {
        "features": per_feature,
        "totals": {
            "rows": n_rows,
            "missing_rate": _rate(totals["missing"], n_values),
            "type_error_rate": _rate(totals["type_errors"], n_values),
            "out_of_range_rate": _rate(totals["out_of_range"], present_total["numeric"]),
            "unseen_rate": _rate(totals["unseen"], present_total["categorical"]),
        },
        "max_excess": max_excess,
        "alert": any(f["alert"] for f in per_feature.values()),
    }


def _feature(
    rates: dict[str, tuple[int, int, float]], drift: DriftSettings
) -> tuple[dict[str, Any], float]:
    out: dict[str, Any] = {}
    worst = 0.0
    for name, (count, total, reference) in rates.items():
        out[name] = _rate(count, total)
        if name == "missing_rate":
            out["reference_missing_rate"] = reference
        if total > 0:
            lower, _ = wilson_bounds(count / total, total)
            worst = max(worst, lower - reference)
    out["alert"] = worst > 0.0 and worst >= drift.quality_margin
    return out, worst


def _rate(count: int, total: int) -> float | None:
    return count / total if total > 0 else None
