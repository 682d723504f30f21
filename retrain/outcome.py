"""What starts a retrain, what came of it, and the alerts that say so (contract section 4).

Every outcome is an alert: the caller emits ``started_alert(request)`` before running the
job, then ``outcome_alerts(outcome, request)``: ``retrain_succeeded`` or
``retrain_failed``, plus ``model_promoted`` when the champion moved. An ``alert_id`` is a
hash of the request id and the kind, so a redelivered or re-emitted alert deduplicates.
Retrain alerts are not about a window (``window_start``/``window_end`` are null, per
``schemas/alert.schema.json``); the triggering alert and window are in ``details``.

>>> request = RetrainRequest(model="wine", request_id="r-1")
>>> outcome = RetrainOutcome(status="failed", model="wine", registered_model="wine",
...                          reason="MLflow unreachable")
>>> [a["kind"] for a in outcome_alerts(outcome, request)]
['retrain_failed']
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["RetrainOutcome", "RetrainRequest", "alert_id", "outcome_alerts", "started_alert"]

Status = Literal["succeeded", "failed"]


@dataclass(frozen=True)
class RetrainRequest:
    """One request to retrain ``model`` (the monitored model's name in the config).

    ``request_id`` identifies the request (and its alerts); a daemon derives it from the
    triggering alert so a restart does not start the same retrain twice.
    """

    model: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    trigger_alert_id: str | None = None
    trigger_kind: str | None = None  # the alert kind that triggered it: drift, performance
    window_start: str | None = None  # RFC 3339 UTC, the triggering window
    window_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain did.

    ``metrics`` are ``challenger_<m>`` and ``champion_<m>`` on the holdout, for every metric
    of the task that is defined there (ROC AUC of a one-class holdout is left out).
    """

    status: Status
    model: str
    registered_model: str
    run_id: str | None = None
    version: str | None = None  # the registered challenger version
    champion_version: str | None = None  # the champion it was compared with
    promoted: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] | None = None  # GateResult.to_dict()
    data: dict[str, Any] = field(default_factory=dict)  # TrainingSet.summary()
    reason: str = ""
    run_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alert_id(request: RetrainRequest, kind: str) -> str:
    """Stable id of the ``kind`` alert of ``request``."""
    digest = hashlib.sha256(f"{request.request_id}\x00{kind}".encode()).hexdigest()
    return f"retrain-{digest[:32]}"


def started_alert(request: RetrainRequest, registered_model: str | None = None) -> dict[str, Any]:
    """The ``retrain_started`` body, emitted by the caller before ``run_retrain``."""
    if request.trigger_alert_id:
        kind = f"{request.trigger_kind} " if request.trigger_kind else ""
        trigger = f"the {kind}alert {request.trigger_alert_id}"
    elif request.trigger_kind == "schedule":
        trigger = "the schedule"
    else:
        trigger = "a manual request"
    return _body(
        request,
        "retrain_started",
        severity="info",
        version=None,
        summary=f"{request.model}: retrain started (triggered by {trigger})",
        details={"registered_model": registered_model or request.model},
    )


def outcome_alerts(outcome: RetrainOutcome, request: RetrainRequest) -> list[dict[str, Any]]:
    """The webhook bodies of ``outcome``: succeeded or failed, then promoted when it was."""
    details = {
        key: value
        for key, value in outcome.to_dict().items()
        if key not in ("status", "model", "run_url")
    }
    if outcome.status == "failed":
        return [
            _body(
                request,
                "retrain_failed",
                severity="warning",
                version=outcome.version,
                summary=f"{request.model}: retrain failed: {outcome.reason}",
                details=details,
                run_url=outcome.run_url,
            )
        ]
    gate = (outcome.gate or {}).get("reason", "no gate result")
    verdict = "promoted to champion" if outcome.promoted else "not promoted"
    alerts = [
        _body(
            request,
            "retrain_succeeded",
            severity="info",
            version=outcome.version,
            summary=(
                f"{request.model}: retrain registered version {outcome.version} as "
                f"challenger, {verdict} ({gate})"
            ),
            details=details,
            run_url=outcome.run_url,
        )
    ]
    if outcome.promoted:
        alerts.append(
            _body(
                request,
                "model_promoted",
                severity="info",
                version=outcome.version,
                summary=(
                    f"{request.model}: version {outcome.version} is the new champion "
                    f"(was {outcome.champion_version}; {gate})"
                ),
                details=details,
                run_url=outcome.run_url,
            )
        )
    return alerts


def _body(
    request: RetrainRequest,
    kind: str,
    *,
    severity: str,
    version: str | None,
    summary: str,
    details: dict[str, Any],
    run_url: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alert_id": alert_id(request, kind),
        "model": request.model,
        "model_version": version,
        "kind": kind,
        "severity": severity,
        "status": "firing",
        "window_start": None,
        "window_end": None,
        "health_score": None,
        "summary": summary,
        "details": {
            "request_id": request.request_id,
            "trigger_alert_id": request.trigger_alert_id,
            "trigger_kind": request.trigger_kind,
            "trigger_window_start": request.window_start,
            "trigger_window_end": request.window_end,
            **details,
        },
    }
    if run_url:
        body["links"] = {"mlflow_run": run_url}
    return body
