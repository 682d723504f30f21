"""A bounded, mergeable sample of rows: the k rows of smallest priority (bottom-k).

Every row carries a priority in [0, 1) (a seeded hash of its event id, or a seeded
counter; see ``monitor.engine.batch``). Keeping the k smallest makes the sample mergeable:
the k smallest of a union are the k smallest of the two sides' k smallest, so ``merge`` is
exact, associative and commutative, and merged partitions hold the rows one pass would.
Ties in priority are broken by the row's values, so the kept set never depends on order.

Rows are buffered until 2k are held, then cut back to k: an update costs one comparison
per row (rows above the current k-th priority are skipped) plus a copy of the candidates.
A column's sample is its non-missing values in the kept rows, so a feature with missing
values has fewer than k.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["RowSample"]


class RowSample:
    """The ``size`` rows (of ``n_columns`` values each) of smallest priority.

    >>> sample = RowSample(n_columns=1, size=2)
    >>> sample.offer(np.array([[5.0, 6.0, 7.0]]), np.array([0.3, 0.1, 0.2]))
    >>> sample.column(0).tolist()
    [6.0, 7.0]
    """

    def __init__(self, n_columns: int, size: int) -> None:
        self.n_columns = int(n_columns)
        self.size = int(size)
        self._rows: list[NDArray[np.float64]] = []
        self._priorities: list[NDArray[np.float64]] = []
        self._buffered = 0
        self._canonical = True  # the buffer is one block of <= size rows in priority order
        self._threshold = np.inf  # the size-th smallest priority known (inf until full)

    def offer(self, values: NDArray[np.float64], priorities: NDArray[np.float64]) -> None:
        """Consider rows ``values[:, i]`` with ``priorities[i]``."""
        if self.size == 0 or priorities.size == 0:
            return
        if self._threshold < np.inf:
            rows = np.flatnonzero(priorities <= self._threshold)
            if rows.size == 0:
                return
            values, priorities = values[:, rows], priorities[rows]
        self._rows.append(np.array(values, dtype=np.float64))
        self._priorities.append(np.array(priorities, dtype=np.float64))
        self._buffered += priorities.size
        self._canonical = False
        if self._buffered > 2 * self.size:
            self._compact()

    def _compact(self) -> None:
        if self._canonical:
            return
        rows = np.concatenate(self._rows, axis=1)
        priorities = np.concatenate(self._priorities)
        order = np.argsort(priorities, kind="stable")
        ranked = priorities[order]
        if (ranked[1:] == ranked[:-1]).any():  # rare: values (NaN last) break the ties
            order = np.lexsort((*rows[::-1], priorities))  # the last key is the primary one
        order = order[: self.size]
        rows, priorities = rows[:, order], priorities[order]
        self._rows, self._priorities = [rows], [priorities]
        self._buffered = priorities.size
        self._canonical = True
        if priorities.size >= self.size > 0:
            self._threshold = float(priorities[-1])

    def rows(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(values: n_columns x m, priorities: m) of the kept rows, in priority order."""
        self._compact()
        if not self._rows:
            return np.empty((self.n_columns, 0)), np.empty(0)
        return self._rows[0], self._priorities[0]

    def column(self, j: int) -> NDArray[np.float64]:
        """The non-missing values of column ``j`` in the kept rows."""
        values = self.rows()[0][j]
        return values[~np.isnan(values)]

    def merge(self, other: RowSample) -> RowSample:
        """A new sample of both sides' rows; neither side changes."""
        if (self.n_columns, self.size) != (other.n_columns, other.size):
            raise ValueError("cannot merge row samples of different shapes")
        out = RowSample(self.n_columns, self.size)
        for side in (self, other):
            rows, priorities = side.rows()
            out._rows.append(rows)
            out._priorities.append(priorities)
            out._buffered += priorities.size
        out._canonical = False
        out._compact()
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and compact: the kept rows (``n_columns`` x m, row-major) and their
        priorities as base64 of little-endian float64, bit-exact (NaN is missing)."""
        rows, priorities = self.rows()
        return {"rows_f64": _pack(rows), "priorities_f64": _pack(priorities)}

    def load_dict(self, data: dict[str, Any]) -> RowSample:
        """Fill this (empty) sample from ``to_dict`` output; returns self. Also reads the
        older form: ``columns`` as lists of numbers (None for missing) and ``priorities``."""
        if "rows_f64" in data:
            priorities = _unpack(data["priorities_f64"])
            rows = _unpack(data["rows_f64"])
        else:
            priorities = np.asarray(data["priorities"], dtype=np.float64)
            rows = np.array(data["columns"], dtype=np.float64)
        if rows.size != self.n_columns * priorities.size or priorities.size > self.size:
            raise ValueError("row sample columns and priorities do not match its size")
        rows = rows.reshape(self.n_columns, priorities.size)
        self._rows, self._priorities = [rows], [priorities]
        self._buffered = priorities.size
        self._canonical = True
        if priorities.size >= self.size > 0:
            self._threshold = float(priorities[-1])
        return self


def _pack(values: NDArray[np.float64]) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _unpack(text: str) -> NDArray[np.float64]:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)
