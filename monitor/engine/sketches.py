"""Bounded, mergeable sketches of a window's columns: the parts ``WindowState`` is made of.

``NumericSketch``: per column, counts over the reference bins (see
``monitor.engine.column_profile``), missing count, min, max, the sum and sum of squares of
x − c (c = the reference mean, which keeps the sums small and the variance accurate); and
for the group, a bottom-k ``RowSample`` of the raw values.

``CategoryCounts``: per column, counts over integer codes.

Memory is bounded by the profile (bins, categories) and ``sample_size``, never by traffic.
Counts merge exactly; the float sums merge up to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.engine.row_sample import RowSample

__all__ = ["CategoryCounts", "NumericSketch"]

_MAX_COMPARE_EDGES = 48  # above this many edges, binary search per column is faster


def _bounds_to_json(values: NDArray[np.float64]) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def _bounds_from_json(values: Sequence[float | None], empty: float) -> NDArray[np.float64]:
    return np.array([empty if v is None else v for v in values], dtype=np.float64)


class NumericSketch:
    """Bins, moments, missing counts and a bottom-k sample of a group of numeric columns.

    >>> sketch = NumericSketch([np.array([0.0, 1.0, 2.0])], np.array([1.0]), sample_size=2)
    >>> sketch.update(np.array([[0.5, 1.5, np.nan, 9.0]]), np.array([0.4, 0.1, 0.2, 0.3]))
    >>> sketch.counts.tolist(), sketch.n_missing.tolist()
    ([[0, 1, 1, 1]], [1])
    >>> sketch.sample(0).tolist()  # the two rows of smallest priority: 1.5 and a missing value
    [1.5]
    """

    def __init__(
        self,
        edges: Sequence[NDArray[np.float64]],
        centers: NDArray[np.float64],
        sample_size: int,
    ) -> None:
        n = len(edges)
        self.edges = tuple(np.asarray(e, dtype=np.float64) for e in edges)
        self.centers = np.asarray(centers, dtype=np.float64).reshape(n)
        self.sample_size = int(sample_size)
        n_bins = np.array([e.size + 1 for e in self.edges], dtype=np.intp)
        width = int(n_bins.max()) if n else 1
        self._offsets = np.arange(n, dtype=np.intp) * width
        n_edges = int(n_bins.max()) - 1 if n else 0
        self._padded_edges = np.full((n, n_edges), np.inf)  # +inf: no value is >= it
        for j, e in enumerate(self.edges):
            self._padded_edges[j, : e.size] = e
        self.counts = np.zeros((n, width), dtype=np.int64)
        self.n_missing = np.zeros(n, dtype=np.int64)
        self.shifted_sum = np.zeros(n)
        self.shifted_sumsq = np.zeros(n)
        self.minimum = np.full(n, np.inf)
        self.maximum = np.full(n, -np.inf)
        self.rows = RowSample(n, self.sample_size)

    @property
    def n_columns(self) -> int:
        return len(self.edges)

    def update(self, values: NDArray[np.float64], priorities: NDArray[np.float64]) -> None:
        """Add ``values`` (columns x rows, NaN = missing) with one priority per row."""
        n_cols, n_rows = values.shape
        if n_rows == 0 or n_cols == 0:
            return
        shifted = values - self.centers[:, None]
        row_sums = shifted.sum(axis=1)
        # A row sum is NaN exactly when the column has a missing value: look only there.
        nan_cols = np.flatnonzero(np.isnan(row_sums))
        n_missing = np.zeros(n_cols, dtype=np.int64)
        if nan_cols.size:
            missing = np.isnan(values[nan_cols])
            n_missing[nan_cols] = np.count_nonzero(missing, axis=1)
            cleaned = np.where(missing, 0.0, shifted[nan_cols])
            shifted[nan_cols] = cleaned
            row_sums[nan_cols] = cleaned.sum(axis=1)
        index = self._bin_index(values)
        flat = np.bincount(index.ravel(), minlength=self.counts.size)
        flat[self._offsets] -= n_missing  # NaN compares below every edge: underflow bin
        self.counts += flat.reshape(self.counts.shape)
        self.n_missing += n_missing
        self.shifted_sum += row_sums
        self.shifted_sumsq += np.einsum("ij,ij->i", shifted, shifted)
        np.fmin(self.minimum, np.fmin.reduce(values, axis=1), out=self.minimum)
        np.fmax(self.maximum, np.fmax.reduce(values, axis=1), out=self.maximum)
        self.rows.offer(values, priorities)

    def _bin_index(self, values: NDArray[np.float64]) -> NDArray[np.intp]:
        """Flat bin index (column offset + number of edges <= x) of every value.

        With few edges, one vectorised comparison per edge over the whole matrix beats a
        binary search per column: its branches are unpredictable on real data.
        """
        n_edges = self._padded_edges.shape[1]
        if n_edges <= _MAX_COMPARE_EDGES:
            below = np.zeros(values.shape, dtype=np.uint8)
            step = np.empty(values.shape, dtype=np.bool_)
            for k in range(n_edges):
                np.greater_equal(values, self._padded_edges[:, k, None], out=step)
                below += step.view(np.uint8)
            return below + self._offsets[:, None]
        index = np.empty(values.shape, dtype=np.intp)
        for j, edges in enumerate(self.edges):
            index[j] = np.searchsorted(edges, values[j], side="right")
        index[np.isnan(values)] = 0  # as the comparisons do
        return index + self._offsets[:, None]

    def sample(self, j: int) -> NDArray[np.float64]:
        """Column ``j``'s non-missing values in the row sample."""
        return self.rows.column(j)

    def n_values(self) -> NDArray[np.int64]:
        """Non-missing values per column."""
        return self.counts.sum(axis=1)

    def empty_like(self) -> NumericSketch:
        return NumericSketch(self.edges, self.centers, self.sample_size)

    def merge(self, other: NumericSketch) -> NumericSketch:
        """A new sketch of both sides' values; neither side changes."""
        if self.counts.shape != other.counts.shape or self.sample_size != other.sample_size:
            raise ValueError("cannot merge sketches of different profiles or sample sizes")
        out = self.empty_like()
        out.counts = self.counts + other.counts
        out.n_missing = self.n_missing + other.n_missing
        out.shifted_sum = self.shifted_sum + other.shifted_sum
        out.shifted_sumsq = self.shifted_sumsq + other.shifted_sumsq
        out.minimum = np.fmin(self.minimum, other.minimum)
        out.maximum = np.fmax(self.maximum, other.maximum)
        out.rows = self.rows.merge(other.rows)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.tolist(),
            "n_missing": self.n_missing.tolist(),
            "shifted_sum": self.shifted_sum.tolist(),
            "shifted_sumsq": self.shifted_sumsq.tolist(),
            "minimum": _bounds_to_json(self.minimum),
            "maximum": _bounds_to_json(self.maximum),
            "sample": self.rows.to_dict(),
        }

    def load_dict(self, data: dict[str, Any]) -> NumericSketch:
        """Fill this (empty) sketch from ``to_dict`` output; returns self."""
        counts = np.asarray(data["counts"], dtype=np.int64).reshape(self.counts.shape)
        self.counts = counts
        self.n_missing = np.asarray(data["n_missing"], dtype=np.int64).reshape(self.n_columns)
        self.shifted_sum = np.asarray(data["shifted_sum"], dtype=np.float64)
        self.shifted_sumsq = np.asarray(data["shifted_sumsq"], dtype=np.float64)
        self.minimum = _bounds_from_json(data["minimum"], np.inf)
        self.maximum = _bounds_from_json(data["maximum"], -np.inf)
        self.rows.load_dict(data["sample"])
        return self


class CategoryCounts:
    """Counts over integer codes, per column (column j has ``sizes[j]`` codes).

    >>> counts = CategoryCounts([3])
    >>> counts.update(np.array([[0, 2, 2]]))
    >>> counts.counts.tolist()
    [[1, 0, 2]]
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        width = max(self.sizes, default=1)
        self._offsets = np.arange(len(self.sizes), dtype=np.int64)[:, None] * width
        self.counts = np.zeros((len(self.sizes), width), dtype=np.int64)

    def update(self, codes: NDArray[np.int64]) -> None:
        if codes.size == 0:
            return
        flat = np.bincount((codes + self._offsets).ravel(), minlength=self.counts.size)
        self.counts += flat.reshape(self.counts.shape)

    def column(self, j: int) -> NDArray[np.int64]:
        return self.counts[j, : self.sizes[j]]

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        if self.sizes != other.sizes:
            raise ValueError("cannot merge counts over different categories")
        out = CategoryCounts(self.sizes)
        out.counts = self.counts + other.counts
        return out

    def to_dict(self) -> list[list[int]]:
        return [self.column(j).tolist() for j in range(len(self.sizes))]

    def load_dict(self, data: list[list[int]]) -> CategoryCounts:
        for j, column in enumerate(data):
            if len(column) != self.sizes[j]:
                raise ValueError(f"column {j} has {len(column)} counts, expected {self.sizes[j]}")
            self.counts[j, : self.sizes[j]] = column
        return self
