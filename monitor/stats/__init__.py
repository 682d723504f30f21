"""Pure drift statistics over numpy arrays: one module per statistic, no I/O.

Binned statistics take two count vectors over the same bins (reference, current): counts,
not proportions, since the totals are the sample sizes of the p-values. Sample statistics
take two raw samples and drop NaNs.
"""

from __future__ import annotations

from monitor.stats.chisquare import chi_square, chi_square_gof
from monitor.stats.jensen_shannon import jensen_shannon
from monitor.stats.ks import KsResult, ks_binned, ks_exact
from monitor.stats.multiple_testing import benjamini_hochberg
from monitor.stats.psi import psi
from monitor.stats.wasserstein import wasserstein_normed

__all__ = [
    "KsResult",
    "benjamini_hochberg",
    "chi_square",
    "chi_square_gof",
    "jensen_shannon",
    "ks_binned",
    "ks_exact",
    "psi",
    "wasserstein_normed",
]
