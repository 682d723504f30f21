"""The promotion gate: does the challenger beat the champion on the configured metric?

Pure: two scores in, a decision and a sentence out. Higher is better for ``accuracy``,
``f1_macro`` and ``roc_auc``; lower for ``mae`` and ``rmse``. The challenger must be better
by *more than* ``margin`` (in the metric's units), so a tie never promotes, and a score
that is undefined on the holdout (NaN, e.g. ROC AUC of a one-class slice) never promotes.

>>> compare("accuracy", champion_score=0.90, challenger_score=0.95, margin=0.01).passed
True
>>> compare("rmse", champion_score=2.0, challenger_score=2.5, margin=0.0).reason
'challenger rmse 2.5000 is not below champion 2.0000 - margin 0.0000'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["HIGHER_IS_BETTER", "GateResult", "compare"]

# metric -> True when a higher score is better
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "f1_macro": True,
    "roc_auc": True,
    "mae": False,
    "rmse": False,
}


@dataclass(frozen=True)
class GateResult:
    """The decision and why, with the figures it was made on."""

    passed: bool
    reason: str
    metric: str = ""
    champion_score: float = math.nan
    challenger_score: float = math.nan
    margin: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (an undefined score is ``None``)."""
        return {
            "passed": self.passed,
            "reason": self.reason,
            "metric": self.metric,
            "champion": _json_float(self.champion_score),
            "challenger": _json_float(self.challenger_score),
            "margin": self.margin,
        }

    def tag(self) -> str:
        """The ``driftline.gate`` tag of the registered version: ``passed: <why>``."""
        return f"{'passed' if self.passed else 'failed'}: {self.reason}"


def compare(
    metric: str, champion_score: float, challenger_score: float, margin: float
) -> GateResult:
    """Whether the challenger beats the champion on ``metric`` by more than ``margin``.

    Raises ``ValueError`` for an unknown metric or a negative or non-finite margin.
    """
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(
            f"unknown gate metric {metric!r}; use one of {', '.join(HIGHER_IS_BETTER)}"
        )
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"gate margin must be a finite number >= 0, got {margin!r}")

    def result(passed: bool, reason: str) -> GateResult:
        return GateResult(
            passed, reason, metric, float(champion_score), float(challenger_score), float(margin)
        )

    if math.isnan(challenger_score):
        return result(False, f"challenger {metric} is undefined on the holdout")
    if math.isnan(champion_score):
        return result(False, f"champion {metric} is undefined on the holdout: cannot compare")
    shown = f"{challenger_score:.4f}", f"{champion_score:.4f}", f"{margin:.4f}"
    if HIGHER_IS_BETTER[metric]:
        passed = challenger_score > champion_score + margin
        relation = "exceeds" if passed else "does not exceed"
        reason = (
            f"challenger {metric} {shown[0]} {relation} champion {shown[1]} + margin {shown[2]}"
        )
    else:
        passed = challenger_score < champion_score - margin
        relation = "is below" if passed else "is not below"
        reason = (
            f"challenger {metric} {shown[0]} {relation} champion {shown[1]} - margin {shown[2]}"
        )
    return result(passed, reason)


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value
