"""Start retrains on alerts, out of the consumer loop, with guard rails against storms.

A firing alert of a kind listed in ``retrain.on`` starts ``driftline retrain`` for its model
in a child process, unless one is already running for that model, the last one started
less than ``retrain.cooldown`` ago, or ``retrain.max_per_day`` ran in the last 24 hours
(a circuit breaker). The request id is derived from the alert, so a restarted daemon never
starts the same retrain twice. The recent labelled rows the job trains on come from the
store (``training_rows``, within ``retrain.horizon``), handed over as a Parquet file.

``poll()`` collects finished children: their JSON outcome is recorded in ``retrain_runs``
and turned into alerts (``retrain_succeeded``/``retrain_failed``, ``model_promoted``).
"""

from __future__ import annotations

import hashlib
import queue
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
import pandas as pd
import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from monitor.config import Config, ModelConfig
from monitor.errors import ConfigError
from monitor.store import Store
from retrain.outcome import RetrainOutcome, RetrainRequest, outcome_alerts, started_alert

__all__ = ["RetrainTrigger"]

log = structlog.get_logger("driftline.retrain")


@dataclass
class _Running:
    run_id: int
    request: RetrainRequest
    process: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]
    stdout_path: Path
    stderr_path: Path


def request_id(alert_id: str) -> str:
    return "rt-" + hashlib.sha256(alert_id.encode()).hexdigest()[:40]


class RetrainTrigger:
    def __init__(self, config: Config, store: Store, workdir: Path,
                 clock: Callable[[], float] = time.time,
                 command: Callable[[list[str]], list[str]] = lambda cmd: cmd) -> None:
        """``command`` may rewrite the job's command line (tests run a stand-in job)."""
        self.command = command
        self.config = config
        self.store = store
        self.workdir = workdir
        self.clock = clock
        self.running: dict[str, _Running] = {}
        self._retries: dict[str, tuple[RetrainRequest, float]] = {}  # model -> (request, at)
        self._scheduled: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self._scheduler = BackgroundScheduler(timezone=UTC)

    def recover(self) -> None:
        """Runs left unfinished by a daemon that stopped: their child died with it."""
        for model in self.config.models:
            orphan = self.store.running_retrain(model.name)
            if orphan is not None:
                self.store.finish_retrain_run(
                    orphan["id"], "failed", mlflow_run_id=None, registered_version=None,
                    promoted=False, detail={"reason": "the daemon stopped while it ran"},
                    finished_at=datetime.fromtimestamp(self.clock(), UTC))

    def consider(self, alerts: list[dict[str, Any]], event_time_ms: int
                 ) -> list[dict[str, Any]]:
        """Start what these newly raised alerts ask for; returns `retrain_started` bodies.

        ``event_time_ms``: the newest event time seen; the training horizon ends there.
        """
        started = []
        for body in alerts:
            model = self.config.model(body["model"])
            if model is None or body["status"] != "firing":
                continue
            if model.retrain.enabled and body["kind"] in model.retrain.on:
                started += self._start(model, RetrainRequest(
                    model=model.name, request_id=request_id(body["alert_id"]),
                    trigger_alert_id=body["alert_id"], trigger_kind=body["kind"],
                    window_start=body.get("window_start"), window_end=body.get("window_end")),
                    event_time_ms)
        return started

    def due(self, event_time_ms: int, is_firing: Callable[[str], bool]
            ) -> list[dict[str, Any]]:
        """Start scheduled retrains whose time came, and retries of failed ones whose
        triggering alert still fires once the cooldown has passed."""
        started = []
        while not self._scheduled.empty():
            name, fired_at = self._scheduled.get()
            model = self.config.model(name)
            assert model is not None
            started += self._start(model, RetrainRequest(
                model=name, request_id=request_id(f"schedule:{name}:{fired_at}"),
                trigger_kind="schedule"), event_time_ms)
        now = self.clock()
        for name, (request, retry_at) in list(self._retries.items()):
            if now < retry_at:
                continue
            del self._retries[name]
            if request.trigger_alert_id is None or not is_firing(request.trigger_alert_id):
                continue
            model = self.config.model(name)
            assert model is not None
            attempt = request.request_id + "+"
            started += self._start(model, replace(request, request_id=request_id(attempt)),
                                   event_time_ms)
        return started

    def start_schedules(self) -> None:
        """Cron schedules of ``retrain.schedule`` (UTC), checked by APScheduler."""
        for model in self.config.models:
            if not (model.retrain.enabled and model.retrain.schedule):
                continue
            try:
                cron = CronTrigger.from_crontab(model.retrain.schedule, timezone=UTC)
            except ValueError as err:
                raise ConfigError(f"models[{model.name}].retrain.schedule "
                                  f"{model.retrain.schedule!r} is not a cron expression "
                                  f"(minute hour day month weekday): {err}") from err
            self._scheduler.add_job(
                lambda name=model.name: self._scheduled.put((name, int(self.clock()))), cron)
        if self._scheduler.get_jobs():
            self._scheduler.start()

    def _start(self, model: ModelConfig, request: RetrainRequest, event_time_ms: int
               ) -> list[dict[str, Any]]:
        why_not = self._blocked(model)
        if why_not:
            log.info("retrain_skipped", model=model.name, request_id=request.request_id,
                     reason=why_not)
            return []
        now = datetime.fromtimestamp(self.clock(), UTC)
        run_id, created = self.store.start_retrain_run(
            model.name, request.request_id, request.trigger_alert_id, now)
        if not created:
            return []  # started before a restart: never twice
        self.running[model.name] = self._launch(model, request, run_id, event_time_ms)
        log.info("retrain_started", model=model.name, request_id=request.request_id)
        return [started_alert(request, model.retrain.registered_model or model.name)]

    def _blocked(self, model: ModelConfig) -> str | None:
        if model.name in self.running or self.store.running_retrain(model.name) is not None:
            return "a retrain of this model is running"
        now = datetime.fromtimestamp(self.clock(), UTC)
        runs = self.store.retrain_runs(model.name, since=now - timedelta(days=1))
        if len(runs) >= model.retrain.max_per_day:
            return f"max_per_day ({model.retrain.max_per_day}) reached"
        if runs:
            last = datetime.fromisoformat(runs[-1]["started_at"].replace("Z", "+00:00"))
            if (now - last).total_seconds() < model.retrain.cooldown_s:
                return f"cooldown of {model.retrain.cooldown_s:.0f} s since the last retrain"
        return None

    def _recent_rows(self, model: ModelConfig, event_time_ms: int) -> Path | None:
        since_ms = event_time_ms - int(model.retrain.horizon_s * 1000)
        rows = self.store.recent_training_rows(model.name, since_ms=since_ms)
        if not rows:
            return None  # the job then holds out part of the reference
        target = model.reference.target or "target"
        frame = pd.DataFrame([{**row["features"], target: row["label"],
                               "timestamp": row["ts_ms"]} for row in rows])
        path = self.workdir / f"{model.name}-recent.parquet"
        frame.to_parquet(path, index=False)
        return path

    def _launch(self, model: ModelConfig, request: RetrainRequest, run_id: int,
                event_time_ms: int) -> _Running:
        self.workdir.mkdir(parents=True, exist_ok=True)
        assert self.config.path is not None, "the daemon runs from a config file"
        cmd = [sys.executable, "-m", "monitor.cli", "retrain", "--config",
               str(self.config.path), "--model", model.name,
               "--request-id", request.request_id,
               "--trigger-alert-id", request.trigger_alert_id or ""]
        recent = self._recent_rows(model, event_time_ms)
        if recent is not None:
            cmd += ["--recent", str(recent)]
        stdout_path = self.workdir / f"{request.request_id}.json"
        stderr_path = self.workdir / f"{request.request_id}.log"
        stdout, stderr = stdout_path.open("wb"), stderr_path.open("wb")
        process = subprocess.Popen(self.command(cmd), stdout=stdout, stderr=stderr)
        return _Running(run_id, request, process, stdout, stderr, stdout_path, stderr_path)

    def poll(self) -> tuple[list[dict[str, Any]], list[RetrainOutcome]]:
        """Alerts of finished retrains, and their outcomes (to re-baseline on promotion)."""
        alerts, outcomes = [], []
        for name, running in list(self.running.items()):
            code = running.process.poll()
            if code is None:
                continue
            del self.running[name]
            running.stdout.close()
            running.stderr.close()
            outcome = self._outcome(running, code)
            self.store.finish_retrain_run(
                running.run_id, outcome.status, mlflow_run_id=outcome.run_id,
                registered_version=outcome.version, promoted=outcome.promoted,
                detail=outcome.to_dict(), finished_at=datetime.fromtimestamp(self.clock(), UTC))
            log.info("retrain_finished", model=name, status=outcome.status,
                     version=outcome.version, promoted=outcome.promoted, reason=outcome.reason)
            alerts.extend(outcome_alerts(outcome, running.request))
            outcomes.append(outcome)
            if outcome.status == "failed":  # e.g. MLflow was down: try again later
                model = self.config.model(name)
                assert model is not None
                self._retries[name] = (running.request, self.clock() + model.retrain.cooldown_s)
        return alerts, outcomes

    def _outcome(self, running: _Running, code: int) -> RetrainOutcome:
        try:
            return RetrainOutcome(**orjson.loads(running.stdout_path.read_bytes()))
        except (orjson.JSONDecodeError, TypeError, OSError):
            tail = running.stderr_path.read_text(errors="replace")[-2000:]
            model = self.config.model(running.request.model)
            registered = (model.retrain.registered_model if model else None) \
                or running.request.model
            return RetrainOutcome(
                status="failed", model=running.request.model, registered_model=registered,
                reason=f"the retrain process exited with code {code}: {tail.strip()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let running retrains finish their current step; they are recorded on restart."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for running in self.running.values():
            try:
                running.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                running.process.terminate()
