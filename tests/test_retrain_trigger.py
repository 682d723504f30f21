"""Guard rails of the retrain trigger, with a real store and real child processes (a
stand-in job that prints an outcome, so no MLflow is needed here)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.config import (
    Config,
    ModelConfig,
    ReferenceSource,
    RetrainSettings,
    StoreSettings,
    WindowSpec,
)
from monitor.retrain_trigger import RetrainTrigger
from monitor.store import open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, status: str = "succeeded", **retrain: Any
         ) -> tuple[RetrainTrigger, Clock, Any]:
    settings = RetrainSettings(enabled=True, on=("drift",), **retrain)
    model = ModelConfig(name="m", task="classification", reference=ReferenceSource(),
                        window=WindowSpec(size=10), retrain=settings)
    config = Config(models=(model,), store=StoreSettings(url=f"sqlite:///{tmp_path}/s.db"),
                    path=tmp_path / "driftline.yaml")
    store = open_store(config.store)
    store.register_model("m", "classification")
    outcome = {"status": status, "model": "m", "registered_model": "m", "version": "2",
               "promoted": status == "succeeded", "reason": "" if status == "succeeded"
               else "MLflow is down"}
    job = [sys.executable, "-c", f"print({orjson.dumps(outcome).decode()!r})"]
    clock = Clock()
    trigger = RetrainTrigger(config, store, tmp_path / "work", clock=clock,
                             command=lambda cmd: job)
    return trigger, clock, store


def drift(alert_id: str) -> dict[str, Any]:
    return {"alert_id": alert_id, "model": "m", "kind": "drift", "status": "firing",
            "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:15:00Z"}


def save_alert(store: Any, alert_id: str) -> None:
    body = {**drift(alert_id), "model_version": None, "severity": "warning",
            "health_score": 50.0, "summary": "s", "details": {}}
    store.commit_batch("g", alerts=[body])


def finish(trigger: RetrainTrigger) -> tuple[list[dict[str, Any]], list[Any]]:
    deadline = time.monotonic() + 30
    alerts: list[dict[str, Any]] = []
    outcomes: list[Any] = []
    while trigger.running and time.monotonic() < deadline:
        got = trigger.poll()
        alerts += got[0]
        outcomes += got[1]
        time.sleep(0.05)
    return alerts, outcomes


class TestRetrainTrigger:
    def test_a_drift_alert_starts_one_retrain_and_its_outcome_becomes_alerts(self, tmp_path):
        trigger, _, store = make(tmp_path)
        save_alert(store, "a1")
        started = trigger.consider([drift("a1")], event_time_ms=0)
        assert [b["kind"] for b in started] == ["retrain_started"]
        alerts, outcomes = finish(trigger)
        assert {b["kind"] for b in alerts} == {"retrain_succeeded", "model_promoted"}
        assert outcomes[0].promoted
        (run,) = store.retrain_runs("m")
        assert run["status"] == "succeeded"

    def test_only_one_retrain_of_a_model_runs_at_a_time(self, tmp_path):
        trigger, _, store = make(tmp_path, cooldown_s=0.0)
        save_alert(store, "a1")
        save_alert(store, "a2")
        assert trigger.consider([drift("a1")], 0)
        assert trigger.consider([drift("a2")], 0) == []
        finish(trigger)
        assert len(store.retrain_runs("m")) == 1

    def test_the_same_alert_never_starts_a_second_retrain_even_after_a_restart(self, tmp_path):
        trigger, _, store = make(tmp_path, cooldown_s=0.0)
        save_alert(store, "a1")
        trigger.consider([drift("a1")], 0)
        finish(trigger)
        again = RetrainTrigger(trigger.config, store, tmp_path / "work", clock=trigger.clock,
                               command=trigger.command)
        assert again.consider([drift("a1")], 0) == []

    def test_cooldown_and_daily_limit_stop_a_retrain_storm(self, tmp_path):
        trigger, clock, store = make(tmp_path, cooldown_s=3600.0, max_per_day=2)
        for i in range(4):
            save_alert(store, f"a{i}")
        assert trigger.consider([drift("a0")], 0)
        finish(trigger)
        clock.now += 600  # within the cooldown
        assert trigger.consider([drift("a1")], 0) == []
        clock.now += 3600
        assert trigger.consider([drift("a2")], 0)
        finish(trigger)
        clock.now += 3601
        assert trigger.consider([drift("a3")], 0) == []  # two in 24 h already
        assert len(store.retrain_runs("m")) == 2

    @pytest.mark.parametrize("still_firing", [True, False])
    def test_a_failed_retrain_is_retried_after_the_cooldown_only_while_its_alert_fires(
        self, tmp_path, still_firing
    ):
        trigger, clock, store = make(tmp_path, status="failed", cooldown_s=60.0)
        save_alert(store, "a1")
        trigger.consider([drift("a1")], 0)
        alerts, _ = finish(trigger)
        assert [b["kind"] for b in alerts] == ["retrain_failed"]
        assert trigger.due(0, is_firing=lambda alert_id: True) == []  # within the cooldown
        clock.now += 61
        retried = trigger.due(0, is_firing=lambda alert_id: still_firing)
        assert [b["kind"] for b in retried] == (["retrain_started"] if still_firing else [])

    def test_a_bad_cron_schedule_is_a_config_error_naming_the_key(self, tmp_path):
        trigger, _, _ = make(tmp_path, schedule="every day")
        with pytest.raises(Exception, match=r"retrain.schedule 'every day'"):
            trigger.start_schedules()
