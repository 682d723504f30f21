"""Alembic migrations of the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, String, insert, inspect, select, text

from monitor.config import StoreSettings
from monitor.store import open_store, queries
from monitor.store.db import create_store_engine
from monitor.store.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from monitor.store.tables import Base

# Loads store_url/postgres_server even without tests/conftest.py; a plugin registers once.

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REVISIONS = list(reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions())))


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = create_store_engine(StoreSettings(url=store_url))
    try:
        yield engine
    finally:
        engine.dispose()


def differences(engine: Engine, metadata: MetaData = Base.metadata) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)


class TestRevisions:
    def test_the_revisions_form_one_line_from_0001(self):
        assert [r.revision for r in REVISIONS][:2] == ["0001", "0002"]
        assert REVISIONS[0].down_revision is None
        for older, newer in pairwise(REVISIONS):
            assert newer.down_revision == older.revision
        assert head_revision() == REVISIONS[-1].revision


class TestUpgrade:
    def test_upgrading_an_empty_database_creates_every_table(self, engine):
        assert current_revision(engine) is None

        upgrade(engine)

        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)

    def test_upgrading_twice_changes_nothing(self, store_url):
        open_store(StoreSettings(url=store_url)).close()
        with open_store(StoreSettings(url=store_url)) as store:
            assert current_revision(store.engine) == head_revision()

    def test_upgrading_from_the_previous_revision_keeps_the_data(self, engine, store_url):
        previous = REVISIONS[-1].down_revision
        assert previous is not None
        upgrade(engine, previous)
        with engine.begin() as conn:  # rows as that revision's code wrote them
            old = MetaData()
            old.reflect(conn, only=["models", "consumer_offsets", "window_partials"])
            conn.execute(insert(old.tables["models"]),
                         {"name": "wine", "task": "classification", "created_at": T0})
            conn.execute(insert(old.tables["consumer_offsets"]), {
                "group_id": "g", "topic": "p", "partition": 0, "next_offset": 12,
                "updated_at": T0})
            conn.execute(insert(old.tables["window_partials"]), {
                "model": "wine", "window_key": 1, "topic": "p", "partition": 0,
                "state": {"n": 1}, "n_predictions": 1, "updated_at": T0})

        with open_store(StoreSettings(url=store_url), clock=lambda: T0) as store:
            assert current_revision(store.engine) == head_revision()
            assert store.load_offsets("g") == {("p", 0): 12}
            assert [(p.state, p.refs) for p in store.load_partials()] == [({"n": 1}, 0)]
            assert [m["name"] for m in queries.models(store)] == ["wine"]


class TestRevision0006:
    def test_states_are_stored_uncompressed_and_window_samples_with_lz4(self, engine):
        if engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL compresses (TOAST); SQLite has nothing to change")
        query = text("SELECT attrelid::regclass::text, attname, attstorage, attcompression "
                     "FROM pg_attribute WHERE (attname = 'state' AND attrelid::regclass::text "
                     "IN ('pipeline_checkpoints', 'window_partials')) OR (attname = 'rows' "
                     "AND attrelid::regclass::text = 'window_samples') ORDER BY 1")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(query).all() == [("pipeline_checkpoints", "state", "e", ""),
                                                 ("window_partials", "state", "e", ""),
                                                 ("window_samples", "rows", "x", "l")]
        downgrade(engine, "0005")
        with engine.connect() as conn:
            assert conn.execute(query).all() == [("pipeline_checkpoints", "state", "x", ""),
                                                 ("window_partials", "state", "x", ""),
                                                 ("window_samples", "rows", "x", "")]


class TestRevision0003:
    def test_retrain_runs_saved_before_it_get_a_request_id_each(self, engine):
        upgrade(engine, "0002")
        with engine.begin() as conn:
            old = MetaData()
            old.reflect(conn, only=["models", "retrain_runs"])
            conn.execute(
                insert(old.tables["models"]), {"name": "wine", "task": "x", "created_at": T0}
            )
            run = {"model": "wine", "status": "failed", "promoted": False, "started_at": T0}
            conn.execute(insert(old.tables["retrain_runs"]), [run, run])

        upgrade(engine, "0003")
        with engine.connect() as conn:
            runs = conn.execute(select(Base.metadata.tables["retrain_runs"])).mappings().all()
        assert sorted((r["id"], r["request_id"]) for r in runs) == [(1, "run-1"), (2, "run-2")]

        downgrade(engine, "0002")
        with engine.connect() as conn:
            kept = conn.execute(select(old.tables["retrain_runs"].c.id)).scalars().all()
        assert sorted(kept) == [1, 2]


class TestDowngrade:
    def test_every_revision_downgrades_one_step_and_upgrades_again(self, engine):
        upgrade(engine)
        for revision in reversed(REVISIONS):
            downgrade(engine, revision.down_revision or "base")
            assert current_revision(engine) == revision.down_revision
            upgrade(engine, revision.revision)
            assert current_revision(engine) == revision.revision
            downgrade(engine, revision.down_revision or "base")

        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert differences(engine) == []

    def test_sqlite_foreign_keys_are_back_on_after_a_migration(self, tmp_path):
        engine = create_store_engine(StoreSettings(url=f"sqlite:///{tmp_path}/d.db"))
        upgrade(engine)
        downgrade(engine, "-1")

        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        engine.dispose()


class TestConcurrentOpen:
    def test_processes_opening_a_fresh_database_together_all_succeed(self, store_url):
        def open_and_close(_: int) -> str | None:
            with open_store(StoreSettings(url=store_url)) as store:
                return current_revision(store.engine)

        with ThreadPoolExecutor(max_workers=4) as pool:
            revisions = list(pool.map(open_and_close, range(4)))

        assert revisions == [head_revision()] * 4


class TestModelsAgreeWithMigrations:
    def test_the_migrated_schema_is_what_the_models_describe(self, engine):
        upgrade(engine)

        assert differences(engine) == []

    @pytest.mark.parametrize("change", ["add_column", "modify_type"])
    def test_the_comparison_notices_what_the_migrations_lack(self, engine, change):
        upgrade(engine)
        changed = MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.tables.values():
            table.to_metadata(changed)
        windows = changed.tables["windows"]
        if change == "add_column":
            windows.append_column(Column("extra", Integer, nullable=True))
        else:
            windows.c.model_version.type = String(20)

        found = [
            diff[0] if isinstance(diff, tuple) else diff[0][0]
            for diff in differences(engine, changed)
        ]
        assert found == [change]
