"""The SQL store, on SQLite and on a real PostgreSQL (every test runs on both backends)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.config import StoreSettings
from monitor.errors import StoreError
from monitor.store import Checkpoint, Partial, Store, WindowLine, open_store, queries
from monitor.store import tables as t
from monitor.store.db import engine_url
from monitor.store.samples import WindowSample, load_sample
from tests.services.store_fixtures import T0

# Loads store_url/postgres_server even without tests/conftest.py; a plugin registers once.

P0, P1 = ("driftline.predictions", 0), ("driftline.predictions", 1)



def line(key: int, revision: int = 0, model: str = "wine", **extra: Any) -> dict[str, Any]:
    """A contract result line of a 15-minute window ``key``."""
    start = T0 + timedelta(minutes=15 * key)
    return {
        "model": model,
        "model_version": "3",
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "window_end": (start + timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
        "n_predictions": 500,
        "features": {
            "alcohol": {
                "method": "psi",
                "score": 0.31,
                "p_value": None,
                "threshold": 0.2,
                "drift": True,
            },
            "color": {
                "method": "chisquare",
                "score": 3.2,
                "p_value": 0.2,
                "threshold": 0.05,
                "drift": False,
            },
        },
        "drift_share": 0.5,
        "drift_detected": True,
        "prediction_drift": {"method": "psi", "score": 0.05, "drift": False},
        "performance": {"accuracy": 0.9 + revision / 100, "n_labels": 400 + revision},
        "health_score": 60.0 + revision,
        "alerts": ["drift"],
        "revision": revision,
        "as_of": (start + timedelta(minutes=16)).isoformat().replace("+00:00", "Z"),
        **extra,
    }


def alert(alert_id: str, status: str = "firing", model: str = "wine") -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "model": model,
        "model_version": "3",
        "kind": "drift",
        "severity": "warning",
        "status": status,
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": "2026-01-01T00:15:00Z",
        "health_score": 60.0,
        "summary": "wine: 1 of 2 features drifted",
        "details": {"alcohol": {"score": 0.31}},
    }


def count(store: Store, table: type[t.Base]) -> int:
    with store.reading("counting") as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


class TestOffsets:
    def test_offsets_round_trip_per_group_and_partition(self, store):
        store.commit_batch("g1", offsets={P0: 42, P1: 7})
        store.commit_batch("g2", offsets={P0: 1})

        assert store.load_offsets("g1") == {P0: 42, P1: 7}
        assert store.load_offsets("g1", [P1]) == {P1: 7}
        assert store.load_offsets("g2") == {P0: 1}
        assert store.load_offsets("nobody") == {}

    def test_a_later_batch_moves_the_offsets_on(self, store):
        store.commit_batch("g", offsets={P0: 42, P1: 7})
        store.commit_batch("g", offsets={P0: 50})

        assert store.load_offsets("g") == {P0: 50, P1: 7}


class TestPartials:
    def test_an_upsert_replaces_the_partial_of_the_same_key(self, store, clock):
        store.commit_batch("g", partials=[Partial("wine", 1, *P0, {"n": 1}, 1)])
        clock.now = T0 + timedelta(seconds=5)
        store.commit_batch(
            "g",
            partials=[Partial("wine", 1, *P0, {"n": 9}, 9), Partial("wine", 1, *P1, {"n": 2}, 2)],
        )

        saved = store.load_partials("wine")
        assert [(p.partition, p.state, p.n_predictions) for p in saved] == [
            (0, {"n": 9}, 9),
            (1, {"n": 2}, 2),
        ]
        assert saved[0].updated_at == T0 + timedelta(seconds=5)

    def test_of_two_partials_with_one_key_in_a_batch_the_last_stands(self, store):
        store.commit_batch(
            "g", partials=[Partial("wine", 1, *P0, {"n": 1}), Partial("wine", 1, *P0, {"n": 2})]
        )

        assert [p.state for p in store.load_partials()] == [{"n": 2}]

    def test_partials_are_loaded_per_model(self, store):
        store.commit_batch(
            "g",
            partials=[Partial("wine", 1, *P0, {"w": 1}), Partial("iris", 4, *P0, {"i": 1})],
        )

        assert [p.state for p in store.load_partials("iris")] == [{"i": 1}]
        assert len(store.load_partials()) == 2

    def test_finalising_a_window_deletes_its_partials_as_its_line_is_saved(self, store):
        store.commit_batch(
            "g",
            partials=[
                Partial("wine", 1, *P0, {"n": 1}),
                Partial("wine", 1, *P1, {"n": 1}),
                Partial("wine", 2, *P0, {"n": 1}),
            ],
        )
        store.commit_batch(
            "g",
            offsets={P0: 10},
            partials=[Partial("wine", 1, *P0, {"n": 2})],  # updated and finalised: deleted
            windows=[WindowLine(1, line(1))],
            finalised=[("wine", 1)],
        )

        assert [p.window_key for p in store.load_partials()] == [2]
        assert [w["window_key"] for w in queries.windows(store, "wine")] == [1]

    def test_non_finite_numbers_in_a_state_are_saved_as_null(self, store):
        store.commit_batch("g", partials=[Partial("wine", 1, *P0, {"mean": float("nan")})])

        assert store.load_partials()[0].state == {"mean": None}


class TestModels:
    def test_profiles_are_kept_by_hash_and_versions_point_at_them(self, store):
        store.save_profile("wine", "h1", {"features": ["alcohol"]}, format_version=1)
        store.save_profile("wine", "h1", {"features": ["changed"]}, format_version=1)
        store.save_profile("wine", "h2", {"features": ["alcohol", "color"]}, format_version=1)
        store.register_version("wine", "3", "h1")
        store.register_version("wine", "3", "h2")
        store.register_model("wine", "regression")

        with store.reading("test") as conn:
            profile = conn.execute(
                select(t.ReferenceProfile.profile).where(t.ReferenceProfile.hash == "h1")
            ).scalar_one()
        assert profile == {"features": ["alcohol"]}
        wine = next(m for m in queries.models(store) if m["name"] == "wine")
        assert wine["task"] == "regression"
        assert [(v["version"], v["reference_hash"]) for v in wine["versions"]] == [("3", "h2")]

    def test_a_window_of_an_unregistered_model_is_refused(self, store):
        with pytest.raises(StoreError, match="constraint"):
            store.commit_batch("g", windows=[WindowLine(0, line(0, model="nobody"))])


class TestCheckpoints:
    def test_checkpoints_round_trip_and_are_replaced(self, store):
        store.commit_batch("g", checkpoints=[Checkpoint(*P0, "wine", {"pending": [1]})])
        store.commit_batch(
            "g",
            checkpoints=[
                Checkpoint(*P0, "wine", {"pending": [1, 2]}),
                Checkpoint(*P1, "wine", {"pending": []}),
            ],
        )

        assert [c.state for c in store.load_checkpoints("g")] == [
            {"pending": [1, 2]},
            {"pending": []},
        ]
        assert [c.partition for c in store.load_checkpoints("g", [P1])] == [1]
        assert store.load_checkpoints("other") == []

    def test_a_dropped_checkpoint_is_deleted_in_the_same_transaction(self, store):
        store.commit_batch("g", checkpoints=[Checkpoint(*P0, "wine", {"v": 1}),
                                             Checkpoint(*P1, "wine", {"v": 1})])
        with store.writing("dropping a checkpoint") as conn:
            store.save_batch(conn, "g", checkpoints=[Checkpoint(*P1, "wine", {"v": 2})],
                             dropped_checkpoints=[(*P0, "wine"), (*P0, "other-model")])
        assert [(c.partition, c.state) for c in store.load_checkpoints("g")] == [(1, {"v": 2})]


class TestAtomicity:
    def test_a_failure_midway_leaves_offsets_partials_and_windows_unchanged(self, store):
        store.commit_batch(
            "g",
            offsets={P0: 5},
            partials=[Partial("wine", 1, *P0, {"n": 1})],
            checkpoints=[Checkpoint(*P0, "wine", {"v": 1})],
            windows=[WindowLine(0, line(0))],
        )
        with pytest.raises(StoreError, match="saving a batch of consumer group 'g'"):
            store.commit_batch(
                "g",
                offsets={P0: 9, P1: 3},
                partials=[Partial("wine", 1, *P0, {"n": 2}), Partial("wine", 2, *P0, {"n": 1})],
                checkpoints=[Checkpoint(*P0, "wine", {"v": 2})],
                windows=[WindowLine(3, line(3)), WindowLine(0, line(0))],  # (wine, 0, 0) again
                finalised=[("wine", 1)],
                alerts=[alert("a1")],
            )

        assert store.load_offsets("g") == {P0: 5}
        assert [(p.window_key, p.state) for p in store.load_partials()] == [(1, {"n": 1})]
        assert [c.state for c in store.load_checkpoints("g")] == [{"v": 1}]
        assert [w["window_key"] for w in queries.windows(store, "wine")] == [0]
        assert count(store, t.FeatureScore) == 2
        assert queries.alerts(store) == []

    def test_the_store_works_on_after_a_failed_batch(self, store):
        with pytest.raises(StoreError):
            store.commit_batch("g", offsets={P0: 1}, windows=[WindowLine(0, line(0, model="x"))])
        store.commit_batch("g", offsets={P0: 2})

        assert store.load_offsets("g") == {P0: 2}


class TestConcurrentWriters:
    def test_two_daemons_writing_at_once_both_get_every_batch_saved(self, store, store_url):
        def write(group: str) -> None:
            with open_store(StoreSettings(url=store_url)) as own:
                for offset in range(1, 31):
                    own.commit_batch(
                        group,
                        offsets={P0: offset},
                        partials=[Partial("wine", offset, *P0, {"group": group})],
                    )

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(write, ["g1", "g2"]))

        assert store.load_offsets("g1") == store.load_offsets("g2") == {P0: 30}
        assert len(store.load_partials()) == 30


class TestWindows:
    def test_a_line_is_saved_with_its_figures_and_feature_scores(self, store):
        store.commit_batch("g", windows=[WindowLine(0, line(0))])

        with store.reading("test") as conn:
            window = conn.execute(select(t.Window)).mappings().one()
            scores = conn.execute(
                select(t.FeatureScore.feature, t.FeatureScore.score, t.FeatureScore.drift).order_by(
                    t.FeatureScore.feature
                )
            ).all()
        assert window["window_start"] == T0
        assert window["health_score"] == 60.0
        assert window["performance"] == {"accuracy": 0.9, "n_labels": 400}
        assert window["line"] == line(0)
        assert [tuple(row) for row in scores] == [("alcohol", 0.31, True), ("color", 3.2, False)]


class TestQueries:
    @pytest.fixture
    def filled(self, store: Store) -> Store:
        store.register_version("wine", "3", None)
        store.commit_batch("g", windows=[WindowLine(k, line(k)) for k in range(4)])
        store.commit_batch("g", windows=[WindowLine(1, line(1, revision=1))])
        store.commit_batch("g", windows=[WindowLine(1, line(1, revision=2))])
        store.commit_batch("g", windows=[WindowLine(0, line(0, model="iris"))])
        return store

    def test_windows_shows_the_latest_revision_of_each_window_oldest_first(self, filled):
        shown = queries.windows(filled, "wine")

        assert [(w["window_key"], w["revision"]) for w in shown] == [(0, 0), (1, 2), (2, 0), (3, 0)]
        assert shown[1]["performance"] == {"accuracy": 0.92, "n_labels": 402}

    def test_windows_can_show_every_revision(self, filled):
        shown = queries.windows(filled, "wine", all_revisions=True)

        assert [(w["window_key"], w["revision"]) for w in shown] == [
            (0, 0),
            (1, 0),
            (1, 1),
            (1, 2),
            (2, 0),
            (3, 0),
        ]

    def test_windows_since_until_and_limit(self, filled):
        since, until = T0 + timedelta(minutes=30), T0 + timedelta(minutes=45)

        assert [w["window_key"] for w in queries.windows(filled, "wine", since=since)] == [1, 2, 3]
        assert [w["window_key"] for w in queries.windows(filled, "wine", until=until)] == [0, 1, 2]
        assert [w["window_key"] for w in queries.windows(filled, "wine", limit=2)] == [2, 3]

    def test_health_gives_scores_per_window_at_their_latest_revision(self, filled):
        rows = queries.health(filled, "wine", since=T0 + timedelta(minutes=30))

        assert [(r["window_start"], r["health_score"], r["n_labels"]) for r in rows] == [
            ("2026-01-01T00:15:00Z", 62.0, 402),
            ("2026-01-01T00:30:00Z", 60.0, 400),
            ("2026-01-01T00:45:00Z", 60.0, 400),
        ]
        assert rows[0]["alerts"] == ["drift"]
        assert rows[0]["drift_detected"] is True

    def test_models_lists_versions_and_window_counts(self, filled):
        listed = {m["name"]: m for m in queries.models(filled)}

        assert listed["wine"]["windows"] == 6
        assert listed["wine"]["last_window_end"] == "2026-01-01T01:00:00Z"
        assert [v["version"] for v in listed["wine"]["versions"]] == ["3"]
        assert listed["iris"]["windows"] == 1

    def test_alerts_are_upserted_by_id_and_filtered(self, filled, clock):
        filled.commit_batch("g", alerts=[alert("a1"), alert("b1", model="iris")])
        clock.now = T0 + timedelta(hours=1)
        filled.commit_batch("g", alerts=[alert("a1", status="resolved"), alert("a2")])

        everything = queries.alerts(filled)
        assert [a["alert_id"] for a in everything] == ["a1", "b1", "a2"]
        assert everything[0]["status"] == "resolved"
        assert everything[0]["created_at"] == "2026-01-01T00:00:00Z"
        assert everything[0]["resolved_at"] == "2026-01-01T01:00:00Z"
        assert [a["alert_id"] for a in queries.alerts(filled, model="iris")] == ["b1"]
        assert [a["alert_id"] for a in queries.alerts(filled, status="firing")] == ["b1", "a2"]
        assert [a["alert_id"] for a in queries.alerts(filled, since=clock.now)] == ["a2"]

    def test_every_result_is_plain_json(self, filled):
        filled.commit_batch("g", alerts=[alert("a1")])

        for result in (
            queries.windows(filled, "wine"),
            queries.health(filled, "wine"),
            queries.alerts(filled),
            queries.models(filled),
        ):
            assert json.loads(json.dumps(result)) == result


class TestPrune:
    def test_prune_drops_old_partials_and_checkpoints_and_keeps_closed_windows(self, store, clock):
        columns = [{"name": "x", "kind": "numeric"}]
        store.commit_batch(
            "g",
            partials=[Partial("wine", 1, *P0, {"old": 1})],
            checkpoints=[Checkpoint(*P0, "wine", {"old": 1})],
            windows=[WindowLine(0, line(0))],
            window_samples=[WindowSample("wine", 0, columns, [[1.0]])],
        )
        clock.now = T0 + timedelta(days=8)
        store.commit_batch(
            "g",
            partials=[Partial("wine", 2, *P0, {"new": 1})],
            checkpoints=[Checkpoint(*P1, "wine", {"new": 1})],
            windows=[WindowLine(1, line(1))],
            window_samples=[WindowSample("wine", 1, columns, [[2.0], [None]])],
        )

        pruned = store.prune(older_than=clock.now - timedelta(days=7))

        assert pruned == {
            "window_partials": 1,
            "pipeline_checkpoints": 1,
            "outbox": 0,
            "training_rows": 0,
            "window_samples": 1,
        }
        assert [p.state for p in store.load_partials()] == [{"new": 1}]
        assert [c.state for c in store.load_checkpoints("g")] == [{"new": 1}]
        assert [w["window_key"] for w in queries.windows(store, "wine")] == [0, 1]
        assert count(store, t.FeatureScore) == 4
        assert load_sample(store, "wine", 0) is None
        assert load_sample(store, "wine", 1).rows == [[2.0], [None]]

    def test_prune_wants_an_aware_time(self, store):
        with pytest.raises(ValueError, match="no time zone"):
            store.prune(older_than=datetime(2026, 1, 1))  # naive: the point of the test


class TestPassword:
    def test_the_password_comes_from_the_settings_and_is_masked(self):
        url = engine_url(StoreSettings(url="postgresql://app@db:5432/dl", password="s3cret"))

        assert url.password == "s3cret"
        assert url.drivername == "postgresql+psycopg"
        assert "s3cret" not in str(url)
        assert engine_url(StoreSettings(url="postgresql://app@db/dl")).password is None

    def test_an_unreachable_server_is_a_store_error_that_hides_the_password(self):
        settings = StoreSettings(url="postgresql+psycopg://app@127.0.0.1:1/dl", password="s3cret")

        with pytest.raises(StoreError) as caught:
            open_store(settings)
        message = str(caught.value)
        assert "s3cret" not in message
        assert "app:***@127.0.0.1:1/dl" in message
        assert "is running" in message

    def test_postgres_takes_the_password_from_the_settings(self, postgres_server):
        suffix = uuid.uuid4().hex[:12]
        database, role = f"t_{suffix}", f"app_{suffix}"
        postgres_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 's3cret'")
        postgres_server.create_database(database)
        postgres_server.execute(f"ALTER DATABASE {database} OWNER TO {role}")
        url = postgres_server.url_of(database, username=role)
        try:
            with open_store(StoreSettings(url=url, password="s3cret")) as opened:
                opened.register_model("wine", "classification")
                assert [m["name"] for m in queries.models(opened)] == ["wine"]
            if postgres_server.checks_passwords:
                with pytest.raises(StoreError) as caught:
                    open_store(StoreSettings(url=url, password="wrong-one"))
                assert "password authentication failed" in str(caught.value)
                assert "wrong-one" not in str(caught.value)
        finally:
            postgres_server.drop_database(database)
            postgres_server.execute(f"DROP ROLE IF EXISTS {role}")


class TestSqlite:
    def test_sqlite_runs_in_wal_mode_with_foreign_keys(self, tmp_path):
        settings = StoreSettings(url=f"sqlite:///{tmp_path}/sub/dir/d.db")
        with open_store(settings) as opened, opened.reading("pragmas") as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "busy_timeout": 30_000,
        }

    def test_a_relative_path_stays_relative_to_the_working_directory(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        with open_store(StoreSettings(url="sqlite:///state/driftline.db")):
            pass

        assert (tmp_path / "state" / "driftline.db").exists()
