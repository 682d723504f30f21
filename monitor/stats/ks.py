"""Two-sample Kolmogorov–Smirnov test, on raw samples or on binned counts.

    D = sup_x |F_ref(x) − F_cur(x)|

with F the empirical CDFs. ``ks_exact`` is ``scipy.stats.ks_2samp`` on the samples with
NaNs dropped.

``ks_binned`` reads D off two histograms over the same ordered bins: the CDFs are known
only at the bin edges, so it takes D_b = max over edges |F_ref − F_cur|, a lower bound of
the exact D of the samples that were binned. Inside bin i, with d_j the CDF difference at
edge j and r_i, c_i the bin's reference and current masses, the difference stays within

    [max(d_{i−1} − c_i, d_i − r_i),  min(d_{i−1} + r_i, d_i + c_i)],

so ``bound`` = max_i of the largest |value| of that interval, minus D_b, is an upper bound
of D − D_b. It never exceeds the largest single-bin mass of either side (with 10 quantile
bins of the reference, about 0.1 plus the current side's excess). The p-value is the
asymptotic Kolmogorov distribution at √n_eff · D_b, n_eff = N · M / (N + M): computed from
the lower bound D_b, it is conservative (an upper bound of the asymptotic p of the exact D).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import kolmogorov
from scipy.stats import ks_2samp

from monitor.stats._counts import as_count_pair

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
    ref, cur = as_count_pair(ref_counts, cur_counts)
    n_ref, n_cur = float(ref.sum()), float(cur.sum())
    if n_ref == 0 or n_cur == 0:
        nan = float("nan")
        return KsResult(nan, nan, nan)
    r = ref / n_ref
    c = cur / n_cur
    d = np.cumsum(r) - np.cumsum(c)
    d_prev = np.concatenate(([0.0], d[:-1]))
    statistic = float(np.abs(d).max())
    upper = np.minimum(d_prev + r, d + c)
    lower = np.maximum(d_prev - c, d - r)
    sup_possible = max(float(upper.max()), -float(lower.min()))
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
