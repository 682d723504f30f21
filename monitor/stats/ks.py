"""Two-sample Kolmogorov–Smirnov test, on raw samples or on binned counts.

    D = sup_x |F_ref(x) − F_cur(x)|

with F the empirical CDFs. ``ks_exact`` is ``scipy.stats.ks_2samp`` on the samples with
NaNs dropped.

``ks_binned`` reads D off two histograms over the same ordered bins: the CDFs are known
only at the bin edges, so it takes D_b = max over edges |F_ref − F_cur|, a lower bound of
the exact D of the samples that were binned. Inside bin i, with d_{i−1} the CDF difference
F_ref − F_cur at the bin's left edge and r_i, c_i the bin's reference and current masses,
the difference can only move by mass that is inside the bin, so it stays within

    [d_{i−1} − c_i,  d_{i−1} + r_i],

and ``bound`` = max_i max(d_{i−1} + r_i, c_i − d_{i−1}) − D_b is an upper bound of
D − D_b. It never exceeds the largest single-bin mass of either side (with 10 quantile
bins of the reference about 0.1, more where the current window piles into one bin).

The p-value is the asymptotic Kolmogorov distribution at √n_eff · D_b with
n_eff = N · M / (N + M), as ``ks_2samp(method="asymp")`` up to its finite-n correction.
Computed from the lower bound D_b, it is conservative: never below the asymptotic p of
the exact D.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import kolmogorov
from scipy.stats import ks_2samp

from monitor.stats._counts import count_pair

__all__ = ["KsResult", "ks_binned", "ks_exact"]


class KsResult(NamedTuple):
    """KS statistic from binned counts, its asymptotic p-value and the binning error bound.

    The exact statistic of the binned samples lies in [statistic, statistic + bound].
    """

    statistic: float
    p_value: float
    bound: float


def ks_exact(ref_sample: ArrayLike, cur_sample: ArrayLike) -> tuple[float, float]:
    """(statistic, p-value) of ``scipy.stats.ks_2samp``, NaNs dropped; NaNs if a side is empty.

    >>> ks_exact([1.0, 2.0, 3.0, float("nan")], [1.0, 2.0, 3.0])
    (0.0, 1.0)
    """
    ref = _finite(ref_sample)
    cur = _finite(cur_sample)
    if ref.size == 0 or cur.size == 0:
        return float("nan"), float("nan")
    result = ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def ks_binned(
    ref_counts: ArrayLike, cur_counts: ArrayLike, n_ref_effective: float | None = None
) -> KsResult:
    """KS statistic, p-value and error bound from counts over the same ordered bins.

    Bins must be ordered along the value axis (no missing/NaN bucket). ``n_ref_effective``
    replaces the reference total in n_eff when the counts are scaled (e.g. a large
    reference stored as a sample). All NaN when either side is empty.

    >>> ks_binned([25, 25, 25, 25], [25, 25, 25, 25])
    KsResult(statistic=0.0, p_value=1.0, bound=0.25)
    >>> result = ks_binned([25, 25, 25, 25], [0, 0, 50, 50])
    >>> result.statistic, result.bound
    (0.5, 0.25)
    """
    ref, cur, n_ref, n_cur = count_pair(ref_counts, cur_counts)
    if n_ref == 0 or n_cur == 0:
        nan = float("nan")
        return KsResult(nan, nan, nan)
    r = ref / n_ref
    c = cur / n_cur
    step = r - c
    d = step.cumsum()
    d_prev = d - step
    statistic = float(np.abs(d).max())
    sup_possible = max(float((d_prev + r).max()), float((c - d_prev).max()))
    bound = max(sup_possible - statistic, 0.0)
    n_eff_ref = n_ref if n_ref_effective is None else float(n_ref_effective)
    if n_eff_ref <= 0:
        raise ValueError(f"n_ref_effective must be > 0, got {n_ref_effective}")
    n_eff = n_eff_ref * n_cur / (n_eff_ref + n_cur)
    p_value = float(kolmogorov(math.sqrt(n_eff) * statistic))
    return KsResult(statistic, p_value, bound)


def _finite(sample: ArrayLike) -> NDArray[np.float64]:
    values = np.asarray(sample, dtype=np.float64).ravel()
    return values[~np.isnan(values)]
