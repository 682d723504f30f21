"""Training rows and retrain runs in the store (every test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.config import StoreSettings
from monitor.errors import StoreError
from monitor.store import Store, TrainingLabel, TrainingRow, WindowLine, open_store, queries
from monitor.store import tables as t
from tests.services.store_fixtures import T0

T0_MS = int(T0.timestamp() * 1000)
P0 = ("driftline.predictions", 0)



def row(event_id: str, second: int = 0, model: str = "wine", **features: Any) -> TrainingRow:
    """A prediction event ``second`` seconds after T0 with a predicted class 1."""
    return TrainingRow(model, event_id, T0_MS + 1000 * second, features or {"alcohol": 12.5}, 1)


def label(event_id: str, value: Any = 0, model: str = "wine") -> TrainingLabel:
    return TrainingLabel(model, event_id, value)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["event_id"] for r in rows]


def saved(store: Store, event_id: str, model: str = "wine") -> dict[str, Any]:
    """The stored row, labelled or not."""
    r = t.TrainingRow
    with store.reading("test") as conn:
        found = (
            conn.execute(select(r).where(r.model == model, r.event_id == event_id)).mappings().one()
        )
    return dict(found)


def count_rows(store: Store) -> int:
    with store.reading("counting") as conn:
        return conn.execute(select(func.count()).select_from(t.TrainingRow)).scalar_one()


def window_line(key: int) -> dict[str, Any]:
    start = T0 + timedelta(minutes=15 * key)
    return {
        "model": "wine",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=15)).isoformat(),
        "n_predictions": 10,
    }


def alert(alert_id: str) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "model": "wine",
        "kind": "drift",
        "severity": "warning",
        "status": "firing",
        "summary": "wine: drift",
    }


class TestTrainingRowsInABatch:
    def test_rows_and_their_labels_are_read_back_as_labelled_rows(self, store):
        store.commit_batch(
            "g",
            offsets={P0: 2},
            training_rows=[row("e1", 1, alcohol=12.5), row("e2", 2, alcohol=13.0)],
            training_labels=[label("e1", 1), label("e2", 0)],
        )

        assert store.recent_training_rows("wine") == [
            {"event_id": "e1", "ts_ms": T0_MS + 1000, "features": {"alcohol": 12.5},
             "prediction": 1, "label": 1},
            {"event_id": "e2", "ts_ms": T0_MS + 2000, "features": {"alcohol": 13.0},
             "prediction": 1, "label": 0},
        ]  # fmt: skip

    def test_rows_without_a_label_are_not_read_back(self, store):
        store.commit_batch("g", training_rows=[row("e1"), row("e2")], training_labels=[label("e2")])

        assert ids(store.recent_training_rows("wine")) == ["e2"]

    def test_a_failing_batch_leaves_no_training_rows_or_labels(self, store):
        store.commit_batch("g", training_rows=[row("e1")], windows=[WindowLine(0, window_line(0))])
        with pytest.raises(StoreError, match="saving a batch of consumer group 'g'"):
            store.commit_batch(
                "g",
                offsets={P0: 9},
                windows=[WindowLine(0, window_line(0))],  # (wine, 0, 0) again: a conflict
                training_rows=[row("e2")],
                training_labels=[label("e1"), label("e3")],
            )

        assert count_rows(store) == 1
        assert saved(store, "e1")["label"] is None
        assert store.load_offsets("g") == {}

    def test_a_label_of_an_unregistered_model_fails_the_batch(self, store):
        with pytest.raises(StoreError, match="constraint"):
            store.commit_batch("g", offsets={P0: 1}, training_labels=[label("e1", model="x")])

        assert store.load_offsets("g") == {}


class TestUpsertRules:
    def test_a_replayed_row_keeps_the_saved_features_and_prediction(self, store):
        store.commit_batch("g", training_rows=[row("e1", 1, alcohol=12.5)])
        replayed = TrainingRow("wine", "e1", T0_MS + 9000, {"alcohol": 99.0}, 0)
        store.commit_batch("g", training_rows=[replayed], training_labels=[label("e1", 1)])

        [kept] = store.recent_training_rows("wine")
        assert (kept["ts_ms"], kept["features"], kept["prediction"]) == (
            T0_MS + 1000,
            {"alcohol": 12.5},
            1,
        )

    def test_a_row_written_again_keeps_its_label(self, store, clock):
        store.commit_batch("g", training_rows=[row("e1")], training_labels=[label("e1", "yes")])
        clock.now = T0 + timedelta(hours=1)
        store.commit_batch("g", training_rows=[row("e1")])

        assert saved(store, "e1")["label"] == "yes"
        assert saved(store, "e1")["labelled_at"] == T0
        assert saved(store, "e1")["updated_at"] == clock.now

    def test_a_later_label_replaces_the_earlier_one(self, store, clock):
        store.commit_batch("g", training_rows=[row("e1")], training_labels=[label("e1", 0)])
        clock.now = T0 + timedelta(hours=1)
        store.commit_batch("g", training_labels=[label("e1", 1)])

        assert saved(store, "e1")["label"] == 1
        assert saved(store, "e1")["labelled_at"] == clock.now

    def test_a_none_label_never_overwrites_a_label(self, store):
        store.commit_batch("g", training_rows=[row("e1")], training_labels=[label("e1", 1)])
        store.commit_batch("g", training_labels=[label("e1", None), label("e2", None)])

        assert saved(store, "e1")["label"] == 1
        assert count_rows(store) == 1

    def test_in_one_batch_the_first_row_and_the_last_label_of_an_event_stand(self, store):
        store.commit_batch(
            "g",
            training_rows=[row("e1", alcohol=1.0), row("e1", alcohol=2.0)],
            training_labels=[label("e1", "a"), label("e1", "b")],
        )

        [kept] = store.recent_training_rows("wine")
        assert (kept["features"], kept["label"]) == ({"alcohol": 1.0}, "b")

    def test_a_row_without_features_is_not_kept(self, store):
        store.commit_batch("g", training_rows=[TrainingRow("wine", "e1", T0_MS, {}, 1)])

        assert count_rows(store) == 0

    def test_the_same_event_id_of_two_models_is_two_rows(self, store):
        store.commit_batch(
            "g",
            training_rows=[row("e1", alcohol=1.0), row("e1", model="iris", petal=2.0)],
            training_labels=[label("e1", "w"), label("e1", "i", model="iris")],
        )

        [wine] = store.recent_training_rows("wine")
        [iris] = store.recent_training_rows("iris")
        assert (wine["features"], wine["label"]) == ({"alcohol": 1.0}, "w")
        assert (iris["features"], iris["label"]) == ({"petal": 2.0}, "i")

    def test_labels_and_predictions_keep_their_json_types(self, store):
        rows = [
            TrainingRow("wine", "e1", T0_MS, {"x": 1.5, "kind": "red", "ok": True}, {"p": 0.7}),
            TrainingRow("wine", "e2", T0_MS + 1, {"x": None}, None),
            row("e3", 2),
        ]
        labels = [label("e1", "1"), label("e2", False), label("e3", 2.0)]
        store.commit_batch("g", training_rows=rows, training_labels=labels)

        got = store.recent_training_rows("wine")
        assert [(r["features"], r["prediction"], r["label"]) for r in got] == [
            ({"x": 1.5, "kind": "red", "ok": True}, {"p": 0.7}, "1"),
            ({"x": None}, None, False),
            ({"alcohol": 12.5}, 1, 2.0),
        ]
        assert [type(r["label"]) for r in got] == [str, bool, float]  # SQLite would make 2.0 int
        assert json.loads(json.dumps(got)) == got


class TestLabelBeforeFeatures:
    def test_a_label_for_an_unknown_event_waits_for_its_features(self, store, clock):
        store.commit_batch("g", training_labels=[label("e1", 1)])

        assert store.recent_training_rows("wine") == []
        waiting = saved(store, "e1")
        assert (waiting["features"], waiting["ts_ms"], waiting["label"]) == ({}, None, 1)

        clock.now = T0 + timedelta(minutes=5)
        store.commit_batch("g", training_rows=[row("e1", 3, alcohol=11.0)])

        [complete] = store.recent_training_rows("wine")
        assert complete == {
            "event_id": "e1",
            "ts_ms": T0_MS + 3000,
            "features": {"alcohol": 11.0},
            "prediction": 1,
            "label": 1,
        }
        assert saved(store, "e1")["labelled_at"] == T0

    def test_features_then_a_label_in_one_batch_make_a_complete_row(self, store):
        store.commit_batch("g", training_labels=[label("e1", 1)], training_rows=[row("e1")])

        assert ids(store.recent_training_rows("wine")) == ["e1"]

    def test_a_label_first_then_a_later_label_then_features(self, store):
        store.commit_batch("g", training_labels=[label("e1", 0)])
        store.commit_batch("g", training_labels=[label("e1", 1)])
        store.commit_batch("g", training_rows=[row("e1")])

        assert [r["label"] for r in store.recent_training_rows("wine")] == [1]


class TestRecentTrainingRows:
    @pytest.fixture
    def filled(self, store: Store) -> Store:
        seconds = [5, 1, 4, 2, 3, 3]
        names = ["e5", "e1", "e4", "e2", "e3b", "e3a"]
        store.commit_batch(
            "g",
            training_rows=[row(name, s) for name, s in zip(names, seconds, strict=True)],
            training_labels=[label(name) for name in names],
        )
        store.commit_batch("g", training_rows=[row("unlabelled", 6)])
        return store

    def test_rows_come_oldest_first_with_ties_in_event_id_order(self, filled):
        assert ids(filled.recent_training_rows("wine")) == ["e1", "e2", "e3a", "e3b", "e4", "e5"]

    def test_limit_keeps_the_newest_rows(self, filled):
        assert ids(filled.recent_training_rows("wine", limit=3)) == ["e3b", "e4", "e5"]
        assert filled.recent_training_rows("wine", limit=0) == []

    def test_since_ms_keeps_rows_predicted_at_or_after_it(self, filled):
        since = T0_MS + 3000

        assert ids(filled.recent_training_rows("wine", since_ms=since)) == [
            "e3a",
            "e3b",
            "e4",
            "e5",
        ]
        assert ids(filled.recent_training_rows("wine", since_ms=since, limit=1)) == ["e5"]

    def test_rows_are_read_per_model(self, filled):
        assert filled.recent_training_rows("iris") == []

    def test_a_negative_limit_is_refused(self, filled):
        with pytest.raises(ValueError, match="limit must be 0 or more"):
            filled.recent_training_rows("wine", limit=-1)


class TestPruneTrainingRows:
    def test_prune_drops_rows_last_written_before_the_cutoff(self, store, clock):
        store.commit_batch(
            "g",
            training_rows=[row("old"), row("relabelled"), row("waiting")],
            training_labels=[label("old"), label("orphan")],  # orphan: its features never came
        )
        clock.now = T0 + timedelta(days=8)
        store.commit_batch("g", training_rows=[row("new")], training_labels=[label("relabelled")])

        pruned = store.prune(older_than=clock.now - timedelta(days=7))

        assert pruned["training_rows"] == 3
        with store.reading("test") as conn:
            left = conn.execute(select(t.TrainingRow.event_id).order_by("event_id")).scalars()
            assert list(left) == ["new", "relabelled"]


class TestRetrainRuns:
    def test_a_started_run_is_running_until_it_is_finished(self, store):
        store.commit_batch("g", alerts=[alert("a1")])
        run_id, created = store.start_retrain_run("wine", "r-1", "a1", T0)

        assert created is True
        running = store.running_retrain("wine")
        assert running is not None
        assert {k: running[k] for k in ("id", "request_id", "trigger_alert_id", "status")} == {
            "id": run_id,
            "request_id": "r-1",
            "trigger_alert_id": "a1",
            "status": "running",
        }
        assert (running["started_at"], running["finished_at"]) == ("2026-01-01T00:00:00Z", None)

        store.finish_retrain_run(
            run_id,
            "succeeded",
            mlflow_run_id="abc123",
            registered_version="4",
            promoted=True,
            detail={"metrics": {"challenger_accuracy": 0.93}},
            finished_at=T0 + timedelta(minutes=3),
        )

        assert store.running_retrain("wine") is None
        [finished] = store.retrain_runs("wine")
        assert finished == {
            "id": run_id,
            "model": "wine",
            "request_id": "r-1",
            "trigger_alert_id": "a1",
            "status": "succeeded",
            "mlflow_run_id": "abc123",
            "registered_version": "4",
            "promoted": True,
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:03:00Z",
            "detail": {"metrics": {"challenger_accuracy": 0.93}},
        }
        assert json.loads(json.dumps(finished)) == finished

    def test_starting_a_request_again_returns_its_run(self, store, store_url):
        first = store.start_retrain_run("wine", "r-1", None, T0)
        again = store.start_retrain_run("wine", "r-1", None, T0 + timedelta(minutes=1))
        with open_store(StoreSettings(url=store_url)) as restarted:
            after_restart = restarted.start_retrain_run("wine", "r-1", None, T0)

        assert first[1] is True
        assert again == after_restart == (first[0], False)
        assert [r["started_at"] for r in store.retrain_runs("wine")] == ["2026-01-01T00:00:00Z"]

    def test_two_daemons_starting_one_request_at_once_make_one_run(self, store, store_url):
        def start(_: int) -> tuple[int, bool]:
            with open_store(StoreSettings(url=store_url)) as own:
                return own.start_retrain_run("wine", "r-race", None, T0)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(start, range(4)))

        assert len({run_id for run_id, _ in results}) == 1
        assert sorted(created for _, created in results) == [False, False, False, True]

    def test_a_failed_run_keeps_its_reason(self, store):
        run_id, _ = store.start_retrain_run("wine", "r-1", None, T0)
        store.finish_retrain_run(
            run_id,
            "failed",
            mlflow_run_id=None,
            registered_version=None,
            promoted=False,
            detail={"reason": "MLflow unreachable"},
            finished_at=T0 + timedelta(seconds=30),
        )

        [failed] = store.retrain_runs("wine")
        assert (failed["status"], failed["promoted"], failed["detail"]) == (
            "failed",
            False,
            {"reason": "MLflow unreachable"},
        )

    def test_a_finish_needs_a_final_status_and_a_known_run(self, store):
        run_id, _ = store.start_retrain_run("wine", "r-1", None, T0)
        outcome: dict[str, Any] = {
            "mlflow_run_id": None,
            "registered_version": None,
            "promoted": False,
            "detail": None,
            "finished_at": T0,
        }

        with pytest.raises(ValueError, match="'running' is not a finished status"):
            store.finish_retrain_run(run_id, "running", **outcome)
        with pytest.raises(StoreError, match="no retrain run 999"):
            store.finish_retrain_run(999, "failed", **outcome)
        assert store.running_retrain("wine") is not None

    def test_a_trigger_must_be_a_saved_alert(self, store):
        with pytest.raises(StoreError, match="constraint"):
            store.start_retrain_run("wine", "r-1", "never-saved", T0)

        assert store.retrain_runs("wine") == []

    def test_a_request_id_longer_than_64_characters_is_refused(self, store):
        with pytest.raises(ValueError, match="1 to 64 characters"):
            store.start_retrain_run("wine", "r" * 65, None, T0)

    def test_runs_are_listed_per_model_oldest_first_and_since_a_time(self, store):
        for minute, (model, request) in enumerate(
            [("wine", "w1"), ("iris", "i1"), ("wine", "w2"), ("wine", "w3")]
        ):
            store.start_retrain_run(model, request, None, T0 + timedelta(minutes=minute))

        def requests(runs: list[dict[str, Any]]) -> list[str]:
            return [r["request_id"] for r in runs]

        assert requests(store.retrain_runs("wine")) == ["w1", "w2", "w3"]
        assert requests(store.retrain_runs("wine", since=T0 + timedelta(minutes=2))) == ["w2", "w3"]
        assert requests(queries.retrains(store)) == ["w1", "i1", "w2", "w3"]
        assert requests(queries.retrains(store, model="iris")) == ["i1"]
        assert requests(queries.retrains(store, limit=2)) == ["w2", "w3"]
        assert requests(queries.retrains(store, since=T0 + timedelta(minutes=1))) == [
            "i1",
            "w2",
            "w3",
        ]
        running = store.running_retrain("wine")
        assert running is not None
        assert running["request_id"] == "w3"
