"""Alert policies (monitor/alerts/policy.py, event.py): pending, keep-firing, cooldown, ids."""

from __future__ import annotations

import doctest
import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from monitor.alerts import AlertEvent, AlertPolicyState, alert_id
from monitor.config import AlertPolicy, AlertRule
from monitor.schemas import load_schema

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(minutes=15)
ALERT_SCHEMA = Draft202012Validator(load_schema("alert"))


def ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def line(
    i: int,
    *,
    drift: bool = False,
    quality: bool = False,
    performance: float | None = None,
    basis: str = "measured",
    health: float | None = None,
    revision: int = 0,
    model: str = "wine",
) -> dict[str, Any]:
    """The contract line of 15-minute window ``i``; ``performance`` is the check's severity
    (None: no labels and no estimate yet)."""
    start = T0 + i * WINDOW
    check = None
    if performance is not None:
        check = {
            "metric": "accuracy",
            "value": 0.8,
            "reference": 0.92,
            "n": 480,
            "basis": basis,
            "confident_change": 0.1,
            "severity": performance,
            "alert": basis == "measured" and performance >= 0.5,
        }
    conditions = {"drift": drift, "performance": bool(check and check["alert"]),
                  "data_quality": quality}  # fmt: skip
    alerts = [kind for kind, holds in conditions.items() if holds]
    score = health if health is not None else (50.0 if alerts else 100.0)
    features = {
        "alcohol": {"method": "ks_binned", "score": 0.31, "p_value": 0.001, "drift": drift},
        "color": {"method": "chisquare", "score": float("nan"), "p_value": None, "drift": drift},
        "ph": {"method": "ks_binned", "score": 0.01, "p_value": 0.9, "drift": False},
    }
    quality_block = {
        "features": {"alcohol": {"missing_rate": 0.2, "alert": quality}},
        "max_excess": 0.15 if quality else 0.0,
        "alert": quality,
    }
    components = {
        "score": score,
        "drift": 0.6 if drift else 0.0,
        "performance": performance or 0.0,
        "data_quality": 0.7 if quality else 0.0,
        "performance_check": check,
    }
    return {
        "model": model,
        "model_version": "3",
        "window_start": ts(start),
        "window_end": ts(start + WINDOW),
        "n_predictions": 500,
        "features": {name: {**f, "threshold": 0.01} for name, f in features.items()},
        "drift_share": 2 / 3 if drift else 0.0,
        "drift_detected": drift,
        "prediction_drift": None,
        "performance": None if check is None else {"accuracy": 0.8, "n_labels": 480},
        "estimated_performance": None,
        "data_quality": quality_block,
        "health_score": score,
        "health": components,
        "alerts": alerts,
        "revision": revision,
        "as_of": ts(start + WINDOW),
    }


def drift_policy(**rule: Any) -> AlertPolicy:
    """A drift rule with the given settings; resolving after one good window and no
    cooldown unless said (the defaults are stricter, against flapping)."""
    return AlertPolicy(drift=AlertRule(**{"keep_firing": 1, "cooldown_s": 0.0, **rule}))


def run(state: AlertPolicyState, lines: list[dict[str, Any]]) -> list[AlertEvent]:
    return [event for item in lines for event in state.evaluate(item)]


def drifts(state: AlertPolicyState, pattern: str) -> list[tuple[int, str]]:
    """(window index, status) of the drift notices for a pattern like "..XX.X" (X: drift)."""
    out = []
    for i, char in enumerate(pattern):
        out.extend((i, e.status) for e in state.evaluate(line(i, drift=char == "X")))
    return out


class TestPending:
    def test_a_single_bad_window_fires_at_the_default_pending_of_one(self) -> None:
        assert drifts(AlertPolicyState("wine", AlertPolicy()), "..X") == [(2, "firing")]

    def test_it_fires_only_after_pending_bad_windows_in_a_row(self) -> None:
        state = AlertPolicyState("wine", drift_policy(pending=3))
        assert drifts(state, "XX.XXX") == [(5, "firing")]

    def test_windows_without_a_verdict_neither_count_nor_break_the_run(self) -> None:
        state = AlertPolicyState("wine", AlertPolicy(performance=AlertRule(pending=2)))
        events = run(state, [line(0, performance=0.9), line(1), line(2, performance=0.9)])
        assert [(e.kind, e.status, e.window_start) for e in events] == [
            ("performance", "firing", ts(T0 + 2 * WINDOW))
        ]

    def test_a_disabled_rule_never_fires(self) -> None:
        state = AlertPolicyState("wine", drift_policy(enabled=False))
        assert drifts(state, "XXXX") == []


class TestKeepFiring:
    def test_more_bad_windows_while_firing_send_nothing_more(self) -> None:
        assert drifts(AlertPolicyState("wine", AlertPolicy()), "XXXXX") == [(0, "firing")]

    def test_it_resolves_after_keep_firing_good_windows_with_the_same_id(self) -> None:
        state = AlertPolicyState("wine", drift_policy(keep_firing=2))
        events = run(state, [line(i, drift=c == "X") for i, c in enumerate("XX.X..")])
        assert [e.status for e in events] == ["firing", "resolved"]
        assert events[1].window_start == ts(T0 + 5 * WINDOW)
        assert events[0].alert_id == events[1].alert_id

    def test_the_resolved_notice_says_so_in_its_summary(self) -> None:
        state = AlertPolicyState("wine", drift_policy(keep_firing=1))
        events = run(state, [line(0, drift=True), line(1)])
        assert events[1].summary == (
            "wine: drift resolved (firing since 2026-01-01T00:00:00Z) — health 100"
        )


class TestCooldown:
    def test_no_new_episode_starts_within_the_cooldown_after_a_resolve(self) -> None:
        state = AlertPolicyState("wine", drift_policy(cooldown_s=3600.0))  # 4 windows
        # resolved by window 1 (ends 00:30); windows starting before 01:30 cannot fire
        assert drifts(state, "X.XXXXXX") == [(0, "firing"), (1, "resolved"), (6, "firing")]

    def test_the_episode_after_the_cooldown_has_a_new_id(self) -> None:
        state = AlertPolicyState("wine", drift_policy(cooldown_s=1800.0))
        events = run(state, [line(i, drift=c == "X") for i, c in enumerate("X....X")])
        assert [e.status for e in events] == ["firing", "resolved", "firing"]
        assert events[0].alert_id != events[2].alert_id


class TestIds:
    def test_the_id_hashes_the_model_the_rule_and_the_first_bad_window(self) -> None:
        state = AlertPolicyState("wine", drift_policy(pending=2))
        events = run(state, [line(3, drift=True), line(4, drift=True)])
        assert events[0].alert_id == alert_id("wine", "drift", ts(T0 + 3 * WINDOW))
        assert events[0].details["first_window_start"] == ts(T0 + 3 * WINDOW)

    @settings(max_examples=60, deadline=None)
    @given(pattern=st.text("X.", max_size=40), split=st.integers(0, 40))
    def test_a_saved_and_restored_state_continues_as_if_never_stopped(
        self, pattern: str, split: int
    ) -> None:
        policy = drift_policy(pending=2, keep_firing=2, cooldown_s=1800.0)
        lines = [line(i, drift=c == "X") for i, c in enumerate(pattern)]
        whole = run(AlertPolicyState("wine", policy), lines)
        first = AlertPolicyState("wine", policy)
        before = run(first, lines[:split])
        saved = json.loads(json.dumps(first.to_dict()))
        after = run(AlertPolicyState.from_dict(saved, policy), lines[split:])
        assert before + after == whole

    @settings(max_examples=60, deadline=None)
    @given(pattern=st.text("X.", max_size=60), pending=st.integers(1, 3),
           keep=st.integers(1, 3))  # fmt: skip
    def test_episodes_alternate_firing_and_resolved_with_unique_ids(
        self, pattern: str, pending: int, keep: int
    ) -> None:
        state = AlertPolicyState("wine", drift_policy(pending=pending, keep_firing=keep))
        events = run(state, [line(i, drift=c == "X") for i, c in enumerate(pattern)])
        statuses = [e.status for e in events]
        assert statuses == ["firing", "resolved"] * (len(events) // 2) + ["firing"] * (
            len(events) % 2
        )
        firing = [e.alert_id for e in events if e.status == "firing"]
        assert len(set(firing)) == len(firing)
        pairs = zip(events[::2], events[1::2], strict=False)
        assert all(fired.alert_id == resolved.alert_id for fired, resolved in pairs)


class TestHovering:
    HOVER = "XX" + ".X" * 40 + "...."  # onset, then hovering at the threshold, then healthy

    def test_a_stream_hovering_at_the_threshold_is_one_episode_not_one_per_window(
        self,
    ) -> None:
        state = AlertPolicyState("wine", drift_policy(pending=2, keep_firing=2))
        assert [status for _, status in drifts(state, self.HOVER)] == ["firing", "resolved"]

    def test_without_keep_firing_the_same_stream_would_flap(self) -> None:
        state = AlertPolicyState("wine", drift_policy(pending=1, keep_firing=1))
        assert len(drifts(state, self.HOVER)) > 40

    @settings(max_examples=80, deadline=None)
    @given(runs=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 2)), min_size=1))
    def test_any_hover_whose_good_spells_are_shorter_than_keep_firing_is_one_episode(
        self, runs: list[tuple[int, int]]
    ) -> None:
        pattern = "".join("X" * bad + "." * good for bad, good in runs)
        state = AlertPolicyState("wine", drift_policy(keep_firing=3))
        assert drifts(state, pattern) == [(0, "firing")]

    @pytest.mark.parametrize("seed", range(5))
    def test_a_random_hover_fires_no_sooner_than_the_cooldown_after_each_resolve(
        self, seed: int
    ) -> None:
        bad = np.random.default_rng(seed).random(400) < 0.5  # 100 hours at the threshold
        policy = drift_policy(pending=2, keep_firing=3, cooldown_s=6 * 3600)
        state = AlertPolicyState("wine", policy)
        events = drifts(state, "".join("X" if b else "." for b in bad))
        for (resolved_at, status), (fired_at, _) in zip(events[1::2], events[2::2], strict=False):
            assert status == "resolved"
            assert fired_at - (resolved_at + 1) >= 24  # 6 h of 15-minute windows
        assert len(events) / 2 <= 400 / (3 + 1 + 24) + 1  # vs ~one per 4 windows flapping


class TestRevisions:
    def test_a_revision_line_is_evaluated_for_performance_only(self) -> None:
        state = AlertPolicyState("wine", AlertPolicy())
        assert state.evaluate(line(0, drift=True, quality=True, revision=1)) == []

    def test_late_labels_fire_a_performance_alert_from_the_first_bad_window(self) -> None:
        state = AlertPolicyState("wine", AlertPolicy(performance=AlertRule(pending=2)))
        closes = [line(0), line(1), line(2)]  # no labels yet: no verdict
        revisions = [line(1, performance=0.9, revision=1), line(0, performance=0.8, revision=1)]
        events = run(state, closes + revisions)
        assert [(e.status, e.window_start) for e in events] == [("firing", ts(T0))]
        assert events[0].alert_id == alert_id("wine", "performance", ts(T0))

    def test_a_revision_replaces_its_windows_verdict_rather_than_counting_twice(self) -> None:
        state = AlertPolicyState("wine", AlertPolicy(performance=AlertRule(pending=2)))
        lines = [line(0, performance=0.9), line(0, performance=0.9, revision=1)]
        assert run(state, lines) == []

    def test_a_revision_never_starts_a_second_episode_for_a_covered_window(self) -> None:
        quick = AlertRule(severity="critical", keep_firing=1, cooldown_s=0.0)
        state = AlertPolicyState("wine", AlertPolicy(performance=quick))
        lines = [line(0, performance=0.9), line(1, performance=0.1),
                 line(0, performance=0.9, revision=2)]  # fmt: skip
        assert [e.status for e in run(state, lines)] == ["firing", "resolved"]

    def test_an_estimated_performance_drop_counts_as_bad(self) -> None:
        state = AlertPolicyState("wine", AlertPolicy())
        (event,) = state.evaluate(line(0, performance=0.7, basis="estimated"))
        assert event.kind == "performance"
        assert event.severity == "critical"
        assert "(estimated, n=480)" in event.summary


class TestHealthRule:
    def test_it_is_off_by_default(self) -> None:
        state = AlertPolicyState("wine", AlertPolicy(drift=AlertRule(enabled=False)))
        assert state.evaluate(line(0, health=5.0)) == []

    def test_it_fires_below_its_level_as_the_kind_weighing_most(self) -> None:
        policy = AlertPolicy(
            data_quality=AlertRule(enabled=False),
            health=AlertRule(severity="critical", below=60.0),
        )
        (event,) = AlertPolicyState("wine", policy).evaluate(line(0, quality=True, health=30.0))
        assert (event.rule, event.kind, event.severity) == ("health", "data_quality", "critical")
        assert event.summary == "wine: health 30 below 60 (mostly data quality)"
        assert event.alert_id != alert_id("wine", "data_quality", ts(T0))


class TestBodies:
    def test_a_drift_body_is_valid_and_reads_as_one_line(self) -> None:
        (event,) = AlertPolicyState("wine", AlertPolicy()).evaluate(line(0, drift=True))
        body = event.to_body(sent_at="2026-01-01T00:16:00Z")
        assert ALERT_SCHEMA.is_valid(body), list(ALERT_SCHEMA.iter_errors(body))
        assert body["summary"] == "wine: drift in alcohol, color (2 of 3 features) — health 50"
        assert body["details"]["features"]["color"]["score"] is None  # NaN is not JSON

    @settings(max_examples=40, deadline=None)
    @given(flags=st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from(
        [None, 0.1, 0.9]), st.floats(0, 100)), max_size=12))  # fmt: skip
    def test_every_notice_of_every_rule_is_a_valid_webhook_body(
        self, flags: list[tuple[bool, bool, float | None, float]]
    ) -> None:
        policy = AlertPolicy(health=AlertRule(below=40.0))
        state = AlertPolicyState("wine", policy)
        lines = [line(i, drift=d, quality=q, performance=p, health=h)
                 for i, (d, q, p, h) in enumerate(flags)]  # fmt: skip
        for event in run(state, lines):
            assert ALERT_SCHEMA.is_valid(event.to_body())

    def test_a_line_of_another_model_is_refused(self) -> None:
        with pytest.raises(ValueError, match="one AlertPolicyState per model"):
            AlertPolicyState("wine", AlertPolicy()).evaluate(line(0, model="iris"))


@pytest.mark.parametrize("module", ["event", "policy", "webhook"])
def test_the_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"monitor.alerts.{module}"))
    assert result.failed == 0
    assert result.attempted > 0
