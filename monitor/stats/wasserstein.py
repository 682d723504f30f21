"""Wasserstein-1 distance between two samples, in units of the reference's spread.

    W_norm = W1(ref, cur) / max(std(ref), 0.001),   W1 = ∫ |F_ref(x) − F_cur(x)| dx,

with std the population standard deviation (ddof = 0). This is Evidently's normed
Wasserstein (default drift threshold 0.1, i.e. a shift of a tenth of a standard
deviation). NaNs are dropped first.

Constant reference: std = 0 would divide by zero, so, as in Evidently, the divisor is
floored at 0.001. Then any current value that differs from the constant shows up as
W1 / 0.001, large for any visible shift, and an identical constant gives 0. The floor is
in the feature's units, so it only matters when the reference spread is below 0.001.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import wasserstein_distance

__all__ = ["STD_FLOOR", "wasserstein_normed"]

STD_FLOOR = 0.001


def wasserstein_normed(ref_sample: ArrayLike, cur_sample: ArrayLike) -> float:
    """W1 between the samples divided by the reference's std; NaN if a side is empty.

    >>> round(wasserstein_normed([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]), 6)
    0.894427
    """
    ref = np.asarray(ref_sample, dtype=np.float64).ravel()
    cur = np.asarray(cur_sample, dtype=np.float64).ravel()
    ref = ref[~np.isnan(ref)]
    cur = cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        return float("nan")
    norm = max(float(np.std(ref)), STD_FLOOR)
    return float(wasserstein_distance(ref, cur)) / norm
