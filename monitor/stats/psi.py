"""Population stability index (PSI) of two binned distributions.

    PSI = Σ_i (c_i − r_i) · ln(c_i / r_i)

where r_i and c_i are the reference and current proportions of bin i. PSI is symmetric in
the two distributions and is 0 when they are equal. Usual reading: < 0.1 stable, 0.1–0.2
some shift, > 0.2 significant shift (Evidently's default threshold is 0.1).

Smoothing. A bin empty on one side makes ln(c_i / r_i) infinite, so before the sum each
side's zero proportions are replaced by ``eps`` and the side is renormalised to sum to 1.
An empty bin then contributes at most about p · ln(p / eps) (≈ 9.2 · p for eps = 1e-4)
instead of infinity. Bins empty on both sides are left out first, so an always-present
but unused bucket (e.g. "missing") changes nothing. Evidently also
replaces zero proportions by 1e-4 (or by the smallest non-zero proportion / 10⁶ when that
is below 1e-4) but does not renormalise; the two agree to O(k · eps) and exactly when no
bin is empty.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from monitor.stats._counts import count_pair

__all__ = ["psi"]


def psi(ref_counts: ArrayLike, cur_counts: ArrayLike, eps: float = 1e-4) -> float:
    """PSI between reference and current counts over the same bins.

    NaN when either side has no observations.

    >>> psi([50, 50], [50, 50])
    0.0
    >>> round(psi([50, 50], [80, 20]), 4)
    0.4159
    """
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    ref, cur, n_ref, n_cur = count_pair(ref_counts, cur_counts)
    if n_ref == 0 or n_cur == 0:
        return float("nan")
    used = (ref + cur) > 0
    if not used.all():
        ref, cur = ref[used], cur[used]
    r = _smoothed_proportions(ref, n_ref, eps)
    c = _smoothed_proportions(cur, n_cur, eps)
    return float(((c - r) * np.log(c / r)).sum())


def _smoothed_proportions(
    counts: NDArray[np.float64], total: float, eps: float
) -> NDArray[np.float64]:
    p = counts / total
    empty = p == 0.0
    if empty.any():
        p[empty] = eps
        p /= p.sum()
    return p
