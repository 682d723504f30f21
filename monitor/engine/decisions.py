"""Per-feature drift decisions: the method, its score, and whether the feature drifted.

Methods, by the name written in the window line:

==============  ==========================================================================
``ks_binned``   Kolmogorov–Smirnov on the whole window's counts over the reference's
                quantile bins (``monitor.stats.ks_binned``: D at the bin edges, a
                conservative p-value). Numeric.
``ks``          ``scipy.stats.ks_2samp`` on the reference sample and the window's row
                sample (both at most ``sample_size`` values). Numeric.
``chisquare``   homogeneity test of the category (or bin) counts, unseen bucket included.
``psi``         population stability index over the same counts.
``jensenshannon`` Jensen–Shannon distance (base 2) over the same counts.
``wasserstein`` W1 / reference std on the two samples. Numeric.
==============  ==========================================================================

"auto" picks ``ks_binned`` for numeric and ``chisquare`` for categorical features, at
every window size. Evidently switches from tests (KS, chi-square) to distances
(Wasserstein, Jensen–Shannon) once the reference exceeds 1,000 rows because a p-value alone
alarms on negligible shifts when n is large. We keep the test and add an effect-size floor:
at small n the test is the binding condition (distances are noisy there: PSI of a
50-event window is ~0.2 under no drift), at large n the floor is (the test detects
anything). The binned KS reads the whole window (not a 1,000-value sample, so large
windows keep their power) and costs ~25 µs per feature, where the exact KS of two
1,000-value samples costs ~0.6 ms; ``ks`` stays available per feature for exact parity
with Evidently.

Decisions:

- distance methods (psi, jensenshannon, wasserstein): drift when score >= threshold
  (the feature's ``threshold``, else ``DriftSettings.thresholds[method]``, else 0.1, the
  Evidently defaults). No p-value.
- p-value methods (ks_binned, ks, chisquare): features without an explicit threshold are
  tested together with Benjamini–Hochberg at ``DriftSettings.fdr`` across the model's
  features; the reported ``threshold`` is the resulting p-value cutoff (k·fdr/m for k
  rejections of m, fdr/m when none). A feature with an explicit threshold (its own, or
  ``thresholds[method]``) is tested alone at that level. Then the effect floor: the
  feature drifts only if its effect reaches ``min_effect[method]``. Effects: the KS
  statistic D (the largest gap between the two CDFs; for ``ks_binned`` also under the
  key "ks"), and the Jensen–Shannon distance for chi-square. Default floors 0.05: the
  distributions must differ by at least ~5 % of probability mass (a 0.12 sd mean shift of
  a normal feature moves D by 0.05; Evidently's large-data Wasserstein threshold, 0.1 sd,
  is about as strict). Set a floor to 0 to decide on the p-value alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.config import DriftSettings, FeatureSpec
from monitor.engine.column_profile import float_or_none
from monitor.errors import ConfigError
from monitor.stats.chisquare import chi_square
from monitor.stats.jensen_shannon import jensen_shannon
from monitor.stats.ks import ks_binned, ks_exact
from monitor.stats.multiple_testing import benjamini_hochberg
from monitor.stats.psi import psi
from monitor.stats.wasserstein import wasserstein_normed

__all__ = [
    "DEFAULT_MIN_EFFECT",
    "DEFAULT_THRESHOLDS",
    "ColumnData",
    "Measurement",
    "decide",
    "measure",
    "resolve_method",
]

P_VALUE_METHODS = frozenset({"ks_binned", "ks", "chisquare"})
NUMERIC_ONLY = frozenset({"ks_binned", "ks", "wasserstein"})
DEFAULT_THRESHOLDS = {"psi": 0.1, "jensenshannon": 0.1, "wasserstein": 0.1}
DEFAULT_MIN_EFFECT = {"ks": 0.05, "chisquare": 0.05}

Samples = Callable[[], tuple[NDArray[np.float64], NDArray[np.float64]]]


@dataclass(frozen=True)
class ColumnData:
    """What a method compares: counts over the same buckets, and (lazily) raw samples."""

    ref_counts: NDArray[np.int64]
    cur_counts: NDArray[np.int64]
    samples: Samples | None = None  # (reference sample, window sample), numeric only


@dataclass(frozen=True)
class Measurement:
    method: str
    score: float
    p_value: float | None = None
    effect: float | None = None


def resolve_method(spec: FeatureSpec, drift: DriftSettings) -> str:
    """The method a feature is scored with; ``ConfigError`` if it cannot apply.

    A model-wide ``drift.method`` that cannot apply to a kind (ks on a categorical
    feature) leaves that kind on "auto"; a per-feature one is an error.
    """
    method: str = spec.method
    if method == "auto" and not (drift.method in NUMERIC_ONLY and spec.kind != "numeric"):
        method = drift.method
    if method == "auto":
        return "ks_binned" if spec.kind == "numeric" else "chisquare"
    if method in NUMERIC_ONLY and spec.kind != "numeric":
        raise ConfigError(
            f"feature {spec.name!r}: method {method!r} needs a numeric feature; "
            "use one of auto, chisquare, psi, jensenshannon"
        )
    return method


def measure(method: str, column: ColumnData) -> Measurement:
    """Score one column with ``method`` (NaN scores when a side is empty)."""
    ref, cur = column.ref_counts, column.cur_counts
    if method == "ks_binned":
        result = ks_binned(ref, cur)
        return Measurement(method, result.statistic, result.p_value, result.statistic)
    if method == "chisquare":
        statistic, p_value = chi_square(ref, cur)
        return Measurement(method, statistic, p_value, jensen_shannon(ref, cur))
    if method == "psi":
        return Measurement(method, psi(ref, cur))
    if method == "jensenshannon":
        return Measurement(method, jensen_shannon(ref, cur))
    if column.samples is None:
        raise ValueError(f"method {method!r} needs samples")
    ref_sample, cur_sample = column.samples()
    if method == "ks":
        statistic, p_value = ks_exact(ref_sample, cur_sample)
        return Measurement(method, statistic, p_value, statistic)
    if method == "wasserstein":
        return Measurement(method, wasserstein_normed(ref_sample, cur_sample))
    raise ValueError(f"unknown drift method {method!r}")


def decide(
    specs: Sequence[FeatureSpec], measurements: Sequence[Measurement], drift: DriftSettings
) -> list[dict[str, Any]]:
    """Per feature: {"method", "score", "p_value", "threshold", "drift", "effect",
    "min_effect"} (see the module docstring); plain JSON values, None for NaN."""
    levels = [_explicit_level(s, m.method, drift) for s, m in zip(specs, measurements, strict=True)]
    family = [
        i
        for i, m in enumerate(measurements)
        if m.method in P_VALUE_METHODS and levels[i] is None and _known(m.p_value)
    ]
    significant = np.zeros(len(measurements), dtype=np.bool_)
    if family:
        p_values = np.array([measurements[i].p_value for i in family], dtype=np.float64)
        rejected = benjamini_hochberg(p_values, drift.fdr)
        significant[family] = rejected
        cutoff = max(int(rejected.sum()), 1) * drift.fdr / len(family)
    else:
        cutoff = drift.fdr
    results = []
    for i, (spec, m) in enumerate(zip(specs, measurements, strict=True)):
        if m.method in P_VALUE_METHODS:
            level = levels[i]
            threshold = cutoff if level is None else level
            if level is not None and _known(m.p_value):
                significant[i] = m.p_value <= level  # type: ignore[operator]
            floor = _min_effect(m.method, drift)
            big_enough = _known(m.effect) and m.effect >= floor  # type: ignore[operator]
            drifted = bool(significant[i] and big_enough)
            results.append(_line(m, threshold, drifted, m.effect, floor))
        else:
            threshold = _distance_threshold(spec, m.method, drift)
            drifted = _known(m.score) and m.score >= threshold
            results.append(_line(m, threshold, drifted, None, None))
    return results


def _line(
    m: Measurement, threshold: float, drifted: bool, effect: float | None, floor: float | None
) -> dict[str, Any]:
    return {
        "method": m.method,
        "score": float_or_none(m.score),
        "p_value": None if m.p_value is None else float_or_none(m.p_value),
        "threshold": float(threshold),
        "drift": bool(drifted),
        "effect": None if effect is None else float_or_none(effect),
        "min_effect": floor,
    }


def _known(value: float | None) -> bool:
    return value is not None and not np.isnan(value)


def _explicit_level(spec: FeatureSpec, method: str, drift: DriftSettings) -> float | None:
    if method not in P_VALUE_METHODS:
        return None
    if spec.threshold is not None:
        return float(spec.threshold)
    for key in (method, "ks") if method == "ks_binned" else (method,):
        if key in drift.thresholds:
            return float(drift.thresholds[key])
    return None


def _min_effect(method: str, drift: DriftSettings) -> float:
    keys = (method, "ks") if method == "ks_binned" else (method,)
    for key in keys:
        if key in drift.min_effect:
            return float(drift.min_effect[key])
    return DEFAULT_MIN_EFFECT[keys[-1]]


def _distance_threshold(spec: FeatureSpec, method: str, drift: DriftSettings) -> float:
    if spec.threshold is not None:
        return float(spec.threshold)
    return float(drift.thresholds.get(method, DEFAULT_THRESHOLDS[method]))
