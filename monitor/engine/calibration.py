"""Calibration of a binary model's positive-class probability, fitted on the reference.

Isotonic regression finds the non-decreasing map g minimising Σ (g(p_j) − y_j)² over the
reference rows (p_j the model's positive-class probability, y_j ∈ {0, 1} the outcome), so
that g(p) estimates P(y = 1 | p). Only the fitted thresholds are kept, as two plain
arrays, so the calibrator serialises with the window state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.isotonic import IsotonicRegression

__all__ = ["Calibrator"]


class Calibrator:
    """Monotone map of raw to calibrated positive-class probability (isotonic regression).

    Stored as the fitted thresholds (x, y) and applied by linear interpolation, clipped at
    the ends: exactly sklearn's ``IsotonicRegression(out_of_bounds="clip").predict``.
    The identity when not fitted.

    >>> cal = Calibrator.fit([0.1, 0.3, 0.6, 0.8], [0, 1, 0, 1])
    >>> cal.apply(np.array([0.0, 0.45, 1.0])).tolist()
    [0.0, 0.5, 1.0]
    >>> Calibrator().apply(np.array([0.3])).tolist()
    [0.3]
    """

    def __init__(self, x: ArrayLike = (), y: ArrayLike = ()) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        if self.x.ndim != 1 or self.x.shape != self.y.shape:
            raise ValueError(f"calibrator x and y must be 1-D of one length, got {x!r}, {y!r}")
        if np.any(np.diff(self.x) <= 0):
            raise ValueError(f"calibrator x must be strictly increasing, got {self.x}")

    @classmethod
    def fit(cls, probabilities: ArrayLike, outcomes: ArrayLike) -> Calibrator:
        """Fit on reference positive-class probabilities and outcomes (1/True = positive)."""
        p = np.asarray(probabilities, dtype=np.float64)
        y = np.asarray(outcomes, dtype=np.float64)
        if p.shape != y.shape or p.ndim != 1:
            raise ValueError(f"probabilities and outcomes differ in shape: {p.shape}, {y.shape}")
        keep = np.isfinite(p) & np.isfinite(y)
        if not keep.any():
            return cls()
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(p[keep], y[keep])
        return cls(iso.X_thresholds_, iso.y_thresholds_)

    @property
    def fitted(self) -> bool:
        return self.x.size > 0

    def apply(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        if not self.fitted:
            return np.array(p, dtype=np.float64)
        return np.interp(p, self.x, self.y)

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Calibrator:
        return cls(data["x"], data["y"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Calibrator):
            return NotImplemented
        return np.array_equal(self.x, other.x) and np.array_equal(self.y, other.y)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays: not hashable
