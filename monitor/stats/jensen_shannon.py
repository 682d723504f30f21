"""Jensen–Shannon distance of two binned distributions, base 2, in [0, 1].

    JS(p, q) = sqrt( (KL(p ‖ m) + KL(q ‖ m)) / 2 ),   m = (p + q) / 2,

with KL in bits (log base 2), p and q the reference and current proportions. It is 0 for
equal distributions and 1 for distributions with disjoint support. Empty bins need no
smoothing: m is positive wherever p or q is, and 0 · log 0 = 0. Equal to
``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import rel_entr

from monitor.stats._counts import count_pair

__all__ = ["jensen_shannon"]

_LN2 = float(np.log(2.0))


def jensen_shannon(ref_counts: ArrayLike, cur_counts: ArrayLike) -> float:
    """JS distance (base 2) between reference and current counts over the same bins.

    NaN when either side has no observations.

    >>> jensen_shannon([10, 10], [10, 10])
    0.0
    >>> jensen_shannon([10, 0], [0, 10])
    1.0
    """
    ref, cur, n_ref, n_cur = count_pair(ref_counts, cur_counts)
    if n_ref == 0 or n_cur == 0:
        return float("nan")
    p = ref / n_ref
    q = cur / n_cur
    m = (p + q) / 2.0
    js_bits = ((rel_entr(p, m) + rel_entr(q, m)).sum()) / _LN2
    # Rounding can push the divergence a hair below 0 or above 1.
    return float(np.sqrt(min(max(js_bits / 2.0, 0.0), 1.0)))
