"""Validation of the count vectors that the binned statistics compare.

Every binned statistic takes two count vectors over the same bins (reference, current).
Counts may be floats (merged or scaled sketches) but must be finite and non-negative.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["as_count_pair"]


def as_count_pair(
    ref_counts: ArrayLike, cur_counts: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return both count vectors as float64 arrays, or raise ``ValueError``.

    >>> as_count_pair([1, 2], [3, 0])
    (array([1., 2.]), array([3., 0.]))
    """
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != cur.shape:
        raise ValueError(
            "ref_counts and cur_counts must be 1-D and over the same bins, "
            f"got shapes {ref.shape} and {cur.shape}"
        )
    # NaN fails `>= 0`, so this also rejects NaN; the sum check rejects inf.
    if not (np.all(ref >= 0) and np.all(cur >= 0) and np.isfinite(ref.sum() + cur.sum())):
        raise ValueError(
            f"counts must be finite and non-negative, got ref_counts={ref} cur_counts={cur}"
        )
    return ref, cur
