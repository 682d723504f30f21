"""The retrain's training set and holdout (pure), and the alerts of an outcome."""

from __future__ import annotations

import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from monitor.errors import RetrainError
from monitor.schemas import load_schema
from retrain.dataset import build_training_set, recent_within_horizon
from retrain.outcome import RetrainOutcome, RetrainRequest, outcome_alerts, started_alert


def _frame(start: int, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [float(i) for i in range(start, start + n)],
            "c": ["a", "b"] * (n // 2) + ["a"] * (n % 2),
            "y": [i % 2 for i in range(start, start + n)],
        }
    )


class TestHoldoutOfRecentRows:
    def test_the_newest_fraction_of_recent_rows_is_held_out(self) -> None:
        data = build_training_set(
            _frame(0, 10), _frame(100, 10), features=["x"], target="y", holdout_fraction=0.3
        )
        assert data.holdout_source == "recent"
        assert data.holdout["x"].tolist() == [107.0, 108.0, 109.0]
        assert data.train["x"].tolist() == [*range(10), *range(100, 107)]
        assert data.summary() == {
            "n_train": 17,
            "n_holdout": 3,
            "n_reference": 10,
            "n_recent": 10,
            "holdout_source": "recent",
        }

    def test_one_recent_row_is_held_out_and_not_trained_on(self) -> None:
        data = build_training_set(
            _frame(0, 4), _frame(100, 1), features=["x"], target="y", holdout_fraction=0.1
        )
        assert data.holdout["x"].tolist() == [100.0]
        assert len(data.train) == 4

    def test_recent_rows_without_a_label_are_dropped(self) -> None:
        recent = _frame(100, 4).astype({"y": "float64"})
        recent.loc[3, "y"] = None
        data = build_training_set(
            _frame(0, 4), recent, features=["x"], target="y", holdout_fraction=0.5
        )
        assert data.n_recent == 3
        assert data.holdout["x"].tolist() == [101.0, 102.0]

    def test_labels_are_cast_to_the_reference_type(self) -> None:
        recent = _frame(100, 4).astype({"y": "str"})
        data = build_training_set(
            _frame(0, 4), recent, features=["x"], target="y", holdout_fraction=0.5
        )
        assert data.y_holdout.tolist() == [0, 1]
        assert data.y_train.dtype == "int64"

    def test_estimator_features_and_carried_columns(self) -> None:
        data = build_training_set(
            _frame(0, 4),
            _frame(100, 4),
            features=["x"],
            target="y",
            holdout_fraction=0.5,
            extra_columns=["c"],
        )
        assert list(data.X_train.columns) == ["x"]
        assert list(data.train.columns) == ["x", "c", "y"]


class TestHoldoutOfReference:
    @pytest.mark.parametrize("recent", [None, _frame(100, 0)])
    def test_without_recent_rows_a_seeded_share_of_the_reference_is_held_out(
        self, recent: pd.DataFrame | None
    ) -> None:
        first = build_training_set(
            _frame(0, 20), recent, features=["x"], target="y", holdout_fraction=0.25, seed=3
        )
        again = build_training_set(
            _frame(0, 20), recent, features=["x"], target="y", holdout_fraction=0.25, seed=3
        )
        assert first.holdout_source == "reference"
        assert len(first.holdout) == 5
        assert len(first.train) == 15
        assert first.holdout["x"].tolist() == again.holdout["x"].tolist()
        assert set(first.holdout["x"]).isdisjoint(first.train["x"])


class TestErrors:
    def test_a_missing_column_is_named(self) -> None:
        with pytest.raises(RetrainError, match=r"recent labelled rows lack the columns \['x'\]"):
            build_training_set(
                _frame(0, 4),
                _frame(0, 4).drop(columns="x"),
                features=["x"],
                target="y",
                holdout_fraction=0.3,
            )

    @pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
    def test_a_fraction_outside_0_1_is_refused(self, fraction: float) -> None:
        with pytest.raises(RetrainError, match="holdout_fraction"):
            build_training_set(
                _frame(0, 4), None, features=["x"], target="y", holdout_fraction=fraction
            )

    def test_labels_of_another_type_are_refused_with_the_column(self) -> None:
        recent = _frame(0, 4).astype({"y": "str"})
        recent["y"] = ["yes", "no", "yes", "no"]
        with pytest.raises(RetrainError, match="column 'y'"):
            build_training_set(
                _frame(0, 4), recent, features=["x"], target="y", holdout_fraction=0.5
            )


class TestHorizon:
    def test_old_rows_are_dropped_and_the_rest_sorted_by_time(self) -> None:
        frame = pd.DataFrame(
            {
                "timestamp": [
                    "2026-01-03T00:00:00Z",
                    "2026-01-01T00:00:00Z",
                    1767312000000,  # 2026-01-02T00:00:00Z
                ],
                "x": [3.0, 1.0, 2.0],
            }
        )
        kept = recent_within_horizon(frame, horizon_s=86400.0)
        assert kept["x"].tolist() == [2.0, 3.0]

    def test_the_horizon_can_end_at_a_given_time(self) -> None:
        frame = pd.DataFrame({"timestamp": [0, 1000, 2000], "x": [0.0, 1.0, 2.0]})
        assert recent_within_horizon(frame, 1.0, now_ms=1500)["x"].tolist() == [1.0]

    def test_a_frame_without_timestamps_is_kept_as_is(self) -> None:
        frame = pd.DataFrame({"x": [2.0, 1.0]})
        assert recent_within_horizon(frame, 1.0) is frame


class TestOutcomeAlerts:
    request = RetrainRequest(
        model="wine",
        request_id="req-1",
        trigger_alert_id="a-9",
        trigger_kind="drift",
        window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-01T00:15:00Z",
    )
    validator = Draft202012Validator(load_schema("alert"))

    def _succeeded(self, promoted: bool) -> RetrainOutcome:
        return RetrainOutcome(
            status="succeeded",
            model="wine",
            registered_model="wine",
            run_id="r",
            version="2",
            champion_version="1",
            promoted=promoted,
            metrics={"challenger_accuracy": 0.95, "champion_accuracy": 0.9},
            gate={"passed": promoted, "reason": "why"},
        )

    def test_a_promotion_gives_succeeded_then_promoted(self) -> None:
        alerts = outcome_alerts(self._succeeded(promoted=True), self.request)
        assert [a["kind"] for a in alerts] == ["retrain_succeeded", "model_promoted"]
        assert all(a["model_version"] == "2" for a in alerts)
        assert alerts[1]["summary"] == "wine: version 2 is the new champion (was 1; why)"

    def test_no_promotion_gives_succeeded_only(self) -> None:
        alerts = outcome_alerts(self._succeeded(promoted=False), self.request)
        assert [a["kind"] for a in alerts] == ["retrain_succeeded"]
        assert "not promoted (why)" in alerts[0]["summary"]

    def test_every_body_is_valid_and_names_the_trigger(self) -> None:
        failed = RetrainOutcome("failed", "wine", "wine", reason="MLflow is down")
        bodies = [
            started_alert(self.request),
            *outcome_alerts(self._succeeded(promoted=True), self.request),
            *outcome_alerts(failed, self.request),
        ]
        for body in bodies:
            self.validator.validate(body)
            assert body["details"]["trigger_alert_id"] == "a-9"
            assert body["details"]["trigger_window_end"] == "2026-01-01T00:15:00Z"
        assert [b["kind"] for b in bodies][-1] == "retrain_failed"
        assert bodies[-1]["severity"] == "warning"

    def test_the_started_alert_says_what_triggered_it(self) -> None:
        scheduled = RetrainRequest(model="wine", request_id="r-2", trigger_kind="schedule")
        manual = RetrainRequest(model="wine", request_id="r-3")
        assert [started_alert(r)["summary"] for r in (self.request, scheduled, manual)] == [
            "wine: retrain started (triggered by the drift alert a-9)",
            "wine: retrain started (triggered by the schedule)",
            "wine: retrain started (triggered by a manual request)",
        ]

    def test_alert_ids_are_stable_per_request_and_kind(self) -> None:
        first = outcome_alerts(self._succeeded(promoted=True), self.request)
        again = outcome_alerts(self._succeeded(promoted=True), self.request)
        other = outcome_alerts(
            self._succeeded(promoted=True), RetrainRequest(model="wine", request_id="req-2")
        )
        ids = [a["alert_id"] for a in first]
        assert ids == [a["alert_id"] for a in again]
        assert len(set(ids)) == 2
        assert set(ids).isdisjoint(a["alert_id"] for a in other)
