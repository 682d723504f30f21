"""What ``make demo`` tells: outcomes read from the daemon's HTTP API and the webhooks.

``Narrator.pump()`` prints, once each: newly scored windows (``/api/models/<m>/windows``),
alerts the webhook receiver got (signature checked), retrain runs as they start and end
(``/api/retrains``) and re-baselines (a model version with a reference in ``/api/models``).
It keeps what it saw, so the demo can wait on it and sum it up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.services.webhook_receiver import Receiver

__all__ = ["Narrator"]

SHOWN_FEATURES = 3
TRIGGER_WAIT_S = 5.0  # how long a retrain's start waits for its alert's webhook


class Narrator:
    def __init__(self, api: str, model: str, receiver: Receiver,
                 say: Callable[[str], None]) -> None:
        self.http = httpx.Client(base_url=api, timeout=5.0)
        self.model = model
        self.receiver = receiver
        self.say = say
        self.windows: list[dict[str, Any]] = []  # as first scored, in order
        self.alerts: list[dict[str, Any]] = []  # webhook bodies, in order received
        self.runs: dict[int, dict[str, Any]] = {}  # retrain runs by id, as last seen
        self.rebaselined: list[str] = []  # versions the daemon re-baselined on
        self._pending_runs: dict[int, float] = {}  # run id -> when first seen, not yet told

    def close(self) -> None:
        self.http.close()

    def pump(self) -> None:
        """Narrate what happened since the last call."""
        runs = self._get("/api/retrains")  # first: the windows that started one are stored
        self._windows()
        self._alerts()
        self._retrains(runs)
        self._models()

    def alerts_of(self, kind: str, status: str = "firing") -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["kind"] == kind and a["status"] == status]

    def _get(self, path: str) -> list[dict[str, Any]]:
        response = self.http.get(path, params={"limit": 10_000})
        if response.status_code == 404:  # nothing stored for the model yet
            return []
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows

    def _windows(self) -> None:
        seen = {w["window_key"] for w in self.windows}
        for line in self._get(f"/api/models/{self.model}/windows"):
            if line["window_key"] in seen:
                continue
            self.windows.append(line)
            self.say(f"window {len(self.windows)} scored: {describe(line)}")

    def _alerts(self) -> None:
        for request in self.receiver.accepted()[len(self.alerts):]:
            body = request.body
            self.alerts.append(body)
            self.say(f"webhook received (signature verified): {body['kind']} alert "
                     f"{body['status']} [{body['severity']}]: {body['summary']}")

    def _retrains(self, runs: list[dict[str, Any]]) -> None:
        received = {a["alert_id"] for a in self.alerts}
        for run in runs:
            before = self.runs.get(run["id"])
            if before is None and not self._trigger_told(run, received):
                continue  # tell the alert that started it first
            self.runs[run["id"]] = run
            if before is None:
                self.say(f"retrain started: run {run['id']}, a child process of the daemon "
                         "refits the champion on recent labelled traffic")
            if run["status"] != "running" and (before is None or before["status"] == "running"):
                self._finished(run)

    def _trigger_told(self, run: dict[str, Any], received: set[str]) -> bool:
        """Whether the alert that started ``run`` was narrated (or is overdue)."""
        first_seen = self._pending_runs.setdefault(run["id"], time.monotonic())
        return (run.get("trigger_alert_id") in received or run.get("trigger_alert_id") is None
                or time.monotonic() - first_seen > TRIGGER_WAIT_S)

    def _finished(self, run: dict[str, Any]) -> None:
        detail = run.get("detail") or {}
        if run["status"] == "failed":
            self.say(f"retrain failed: {detail.get('reason') or 'no reason recorded'}")
            return
        gate = detail.get("gate") or {}
        data = detail.get("data") or {}
        scores = (f"{gate.get('metric')}: challenger {gate.get('challenger', float('nan')):.3f}, "
                  f"champion {gate.get('champion', float('nan')):.3f} on "
                  f"{data.get('n_holdout', '?')} held-out recent rows")
        self.say(f"challenger registered as version {run['registered_version']} in MLflow "
                 f"(alias challenger; {scores})")
        if run["promoted"]:
            self.say(f"promoted: version {run['registered_version']} is the champion now "
                     f"({gate.get('reason', 'the gate passed')})")
        else:
            self.say(f"not promoted: the champion stays ({gate.get('reason', 'gate failed')})")
        if detail.get("run_url"):
            self.say(f"the retrain's MLflow run: {detail['run_url']}")

    def _models(self) -> None:
        promoted = {str(run["registered_version"]) for run in self.runs.values()
                    if run["promoted"]} - set(self.rebaselined)
        if not promoted:
            return
        for model in self._get("/api/models"):
            if model["name"] != self.model:
                continue
            for version in model["versions"]:
                if version["version"] in promoted and version.get("reference_hash"):
                    self.rebaselined.append(version["version"])
                    self.say(f"re-baselined: the daemon scores new windows against version "
                             f"{version['version']}'s reference (the recent traffic it was "
                             "trained on)")


def describe(line: dict[str, Any]) -> str:
    """One window in a few words: when, which version, health, drift, accuracy."""
    drifted = [name for name, f in line["features"].items() if f.get("drift")]
    if line.get("drift_detected"):
        more = f" and {len(drifted) - SHOWN_FEATURES} more" if len(drifted) > SHOWN_FEATURES else ""
        drift = f"DRIFT in {', '.join(drifted[:SHOWN_FEATURES])}{more}"
    else:
        drift = "no drift"
    performance = line.get("performance") or {}
    if performance.get("accuracy") is not None:
        accuracy = f"accuracy {performance['accuracy']:.3f} on {performance['n_labels']} labels"
    else:
        accuracy = "no labels yet"
    health = line.get("health_score")
    return (f"{line['window_start'][11:16]}-{line['window_end'][11:16]}, model version "
            f"{line.get('model_version') or '?'}: health "
            f"{'?' if health is None else f'{health:.0f}'}/100, {drift}, {accuracy}")
