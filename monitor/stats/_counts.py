"""Validation of the count vectors that the binned statistics compare.

Every binned statistic takes two count vectors over the same bins (reference, current).
Counts may be floats (merged or scaled sketches) but must be finite and non-negative.
Scoring calls these statistics for every feature of every window, so the checks use
array methods (about 1 µs each) rather than the slower ``np.all``/``np.sum`` wrappers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CountPair", "count_pair"]


class CountPair(NamedTuple):
    """Reference and current counts as float64 arrays, with their totals."""

    ref: NDArray[np.float64]
    cur: NDArray[np.float64]
    n_ref: float
    n_cur: float


def count_pair(ref_counts: ArrayLike, cur_counts: ArrayLike) -> CountPair:
    """Both count vectors as float64 arrays with their totals, or raise ``ValueError``.

    >>> count_pair([1, 2], [3, 0])
    CountPair(ref=array([1., 2.]), cur=array([3., 0.]), n_ref=3.0, n_cur=3.0)
    """
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != cur.shape or ref.size == 0:
        raise ValueError(
            "ref_counts and cur_counts must be 1-D, non-empty and over the same bins, "
            f"got shapes {ref.shape} and {cur.shape}"
        )
    n_ref = float(ref.sum())
    n_cur = float(cur.sum())
    # NaN fails `>= 0`; an infinite count makes a total infinite.
    if not (min(ref.min(), cur.min()) >= 0 and math.isfinite(n_ref + n_cur)):
        raise ValueError(
            f"counts must be finite and non-negative, got ref_counts={ref} cur_counts={cur}"
        )
    return CountPair(ref, cur, n_ref, n_cur)
