"""The retrain-and-register job: refit a monitored model on recent labelled data, compare
it with the champion on a held-out slice, register it in MLflow as ``challenger`` and move
``champion`` to it when it passes the promotion gate (contract section 5).

Run by hand with ``driftline retrain --model NAME``, or started by the daemon on an alert.
"""

from __future__ import annotations

from retrain.gate import GateResult, compare
from retrain.job import run_retrain
from retrain.outcome import RetrainOutcome, RetrainRequest, outcome_alerts, started_alert
from retrain.registry import CHALLENGER, CHAMPION, bootstrap_champion

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GateResult",
    "RetrainOutcome",
    "RetrainRequest",
    "bootstrap_champion",
    "compare",
    "outcome_alerts",
    "run_retrain",
    "started_alert",
]
