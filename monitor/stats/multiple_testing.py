"""Benjamini–Hochberg control of the false discovery rate over many tests.

With the m non-NaN p-values sorted, p_(1) ≤ … ≤ p_(m), the adjusted p-values are

    q_(i) = min_{j ≥ i} p_(j) · m / j,

and a test is rejected when q ≤ fdr. This controls the expected share of false drift
calls among the features flagged at ``fdr`` (for independent or positively dependent
tests). NaN p-values (statistics that could not be computed) are never rejected and do not
count in m. Equal to ``scipy.stats.false_discovery_control(p, method="bh") <= fdr`` on the
non-NaN p-values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["benjamini_hochberg"]


def benjamini_hochberg(p_values: ArrayLike, fdr: float) -> NDArray[np.bool_]:
    """Boolean array: which hypotheses are rejected at false discovery rate ``fdr``.

    >>> benjamini_hochberg([0.01, 0.02, 0.03, float("nan"), 0.5], fdr=0.05).tolist()
    [True, True, True, False, False]
    """
    if not 0.0 < fdr < 1.0:
        raise ValueError(f"fdr must be in (0, 1), got {fdr}")
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    known = ~np.isnan(p)
    ps = p[known]
    if np.any((ps < 0.0) | (ps > 1.0)):
        raise ValueError(f"p-values must be in [0, 1] or NaN, got {p}")
    reject = np.zeros(p.shape, dtype=np.bool_)
    m = ps.size
    if m == 0:
        return reject
    order = np.argsort(ps)
    adjusted = ps[order] * (m / np.arange(1, m + 1, dtype=np.float64))
    adjusted = np.minimum.accumulate(adjusted[::-1])[::-1]
    rejected_known = np.empty(m, dtype=np.bool_)
    rejected_known[order] = adjusted <= fdr
    reject[known] = rejected_known
    return reject
