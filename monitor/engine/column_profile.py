"""Reference profile of one column: quantile bins and moments, or category frequencies.

Numeric bins. ``edges`` = e_0 < e_1 < … < e_m, with e_0 the reference minimum, the inner
edges the reference quantiles at 1/B, 2/B, … (duplicates dropped, so a discrete column gets
fewer bins) and e_m the next float above the reference maximum. A value x falls in bin
``searchsorted(edges, x, side="right")``: 0 is the underflow bin (x below the reference
minimum), i in 1..m is [e_{i-1}, e_i), m + 1 is the overflow bin (x above the maximum).
The reference itself never lands in the two outer bins; a window's share there is its
out-of-reference-range rate. Missing values are counted apart, never in a bin.

Categorical buckets: the reference categories (``class_key`` strings, sorted), then one
"unseen" bucket for categories the reference never had (zero in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from monitor.engine.performance import class_key
from monitor.errors import ReferenceDataError

__all__ = [
    "CategoricalProfile",
    "NumericProfile",
    "categorical_profile",
    "category_key",
    "float_column",
    "float_or_none",
    "numeric_profile",
]


def float_or_none(value: float) -> float | None:
    """``value`` as a JSON-safe float: NaN and infinities become None."""
    return float(value) if np.isfinite(value) else None


def category_key(value: object) -> str:
    """``class_key`` of a value, or ``str`` of types it does not know (dates, ...)."""
    try:
        return class_key(value)
    except TypeError:
        return str(value)


def float_column(series: pd.Series) -> NDArray[np.float64]:
    """A reference column as floats (NA -> NaN); ``ReferenceDataError`` if it is not numeric."""
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        example = series[bad].iloc[0]
        raise ReferenceDataError(
            f"column {series.name!r} is numeric but holds {int(bad.sum())} non-numeric "
            f"values such as {example!r}: fix the data or declare it categorical"
        )
    return np.asarray(values, dtype=np.float64)


def _float(value: object) -> float:
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Bins, moments, missing rate and a sorted seeded sample of one numeric column."""

    name: str
    edges: NDArray[np.float64]
    counts: NDArray[np.int64]  # len(edges) + 1 bins: underflow, inner bins, overflow
    n: int  # non-missing values
    n_missing: int
    mean: float
    std: float  # population std (ddof 0)
    minimum: float
    maximum: float
    sample: NDArray[np.float64]  # sorted, at most `sample_size` values

    @property
    def missing_rate(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "n": self.n,
            "n_missing": self.n_missing,
            "mean": float_or_none(self.mean),
            "std": float_or_none(self.std),
            "minimum": float_or_none(self.minimum),
            "maximum": float_or_none(self.maximum),
            "sample": self.sample.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericProfile:
        return cls(
            name=str(data["name"]),
            edges=np.asarray(data["edges"], dtype=np.float64),
            counts=np.asarray(data["counts"], dtype=np.int64),
            n=int(data["n"]),
            n_missing=int(data["n_missing"]),
            mean=_float(data["mean"]),
            std=_float(data["std"]),
            minimum=_float(data["minimum"]),
            maximum=_float(data["maximum"]),
            sample=np.asarray(data["sample"], dtype=np.float64),
        )


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Category counts (plus a zero "unseen" bucket) and missing rate of one column."""

    name: str
    categories: tuple[str, ...]
    counts: NDArray[np.int64]  # len(categories) + 1: the last bucket is "unseen" (0 here)
    n_missing: int

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def missing_rate(self) -> float:
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "categories": list(self.categories),
            "counts": self.counts.tolist(),
            "n_missing": self.n_missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalProfile:
        return cls(
            name=str(data["name"]),
            categories=tuple(str(c) for c in data["categories"]),
            counts=np.asarray(data["counts"], dtype=np.int64),
            n_missing=int(data["n_missing"]),
        )


def numeric_profile(
    name: str, values: NDArray[np.float64], bins: int, sample_size: int, seed: int
) -> NumericProfile:
    """Profile of the float values of one column (NaN = missing).

    >>> p = numeric_profile("x", np.arange(100.0), bins=4, sample_size=10, seed=0)
    >>> p.edges.tolist()[:4], p.counts.tolist()
    ([0.0, 24.75, 49.5, 74.25], [0, 25, 25, 25, 25, 0])
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    missing = np.isnan(values)
    present = values[~missing]
    if present.size == 0:
        raise ReferenceDataError(f"reference column {name!r} has no non-missing values")
    inner = np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[:-1])
    top = np.nextafter(present.max(), np.inf)
    edges = np.unique(np.append(inner, top))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    rng = np.random.default_rng(seed)
    take = min(sample_size, present.size)
    sample = np.sort(rng.choice(present, size=take, replace=False))
    return NumericProfile(
        name=name,
        edges=edges,
        counts=counts.astype(np.int64),
        n=int(present.size),
        n_missing=int(missing.sum()),
        mean=float(present.mean()),
        std=float(present.std()),
        minimum=float(present.min()),
        maximum=float(present.max()),
        sample=sample,
    )


def categorical_profile(name: str, values: pd.Series) -> CategoricalProfile:
    """Profile of one column whose values are keyed with ``class_key`` (missing = NA).

    >>> p = categorical_profile("c", pd.Series(["b", "a", "b", None]))
    >>> p.categories, p.counts.tolist(), p.n_missing
    (('a', 'b'), [1, 2, 0], 1)
    """
    missing = values.isna()
    raw_counts = values[~missing].value_counts(sort=False)
    by_key: dict[str, int] = {}
    for raw, count in raw_counts.items():
        key = category_key(raw)
        by_key[key] = by_key.get(key, 0) + int(count)
    categories = tuple(sorted(by_key))
    counts = np.array([by_key[c] for c in categories] + [0], dtype=np.int64)
    return CategoricalProfile(
        name=name, categories=categories, counts=counts, n_missing=int(missing.sum())
    )
