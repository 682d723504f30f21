"""Finalising in the store: daemons that each hold some partitions of a model, sharing one
store, write every window once, equal to one local pipeline's; on SQLite and PostgreSQL."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.alerts import AlertPolicyState, OutboxWorker
from monitor.config import Config, StoreSettings, config_from_dict
from monitor.effects import Effects
from monitor.engine.profile import ReferenceProfile
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.store import Store, open_store, queries
from monitor.synthetic import Shift, events, reference_frame
from tests.services.window_lines import assert_same, final_lines

PARTITIONS = 4


@pytest.fixture
def config(tmp_path: Path) -> Config:
    reference_frame(2000, n_numeric=4, seed=7).to_csv(tmp_path / "ref.csv", index=False)
    return config_from_dict({
        "models": [{"name": "m", "task": "classification",
                    "reference": {"path": "ref.csv", "target": "target",
                                  "prediction": "prediction", "probability": "probability"},
                    "window": {"duration": "1m", "grace": "5s"},
                    "alerts": {"drift": {"pending": 1, "keep_firing": 1}}}],
    }, base_dir=tmp_path, environ={})


@pytest.fixture
def shared(store_url: str, config: Config) -> Iterator[Store]:
    with open_store(StoreSettings(url=store_url)) as store:
        store.register_model("m", "classification")
        yield store


def daemon_half(config: Config, store: Store, cache: Path) -> Effects:
    """What one daemon holds: a store-finalising pipeline and its commit."""
    pipeline = Pipeline(config, load_profiles(config, cache), lambda line: None,
                        lambda *a: None, local=False)
    effects = Effects(config, store, pipeline, metrics=Metrics(),
                      worker=OutboxWorker(store, config.alerts), trigger=None, sink=None)
    effects.set_partitions(PARTITIONS)
    return effects


def messages() -> list[Message]:
    pairs = events(6000, n_numeric=4, seed=4, label_every=2, label_delay=1500,
                   shift=Shift(start=3000, features=[2], sd=1.0))
    return [Message(s, orjson.dumps(e), s, zlib.crc32(e["event_id"].encode()) % PARTITIONS, i)
            for i, (s, e) in enumerate(pairs)]


def test_two_daemons_sharing_a_store_finalise_each_window_once(
    config: Config, shared: Store, tmp_path: Path
) -> None:
    all_messages = messages()
    local: list[dict[str, Any]] = []
    alone = Pipeline(config, load_profiles(config, tmp_path / "cache"), local.append,
                     lambda *a: None)
    alone.process(all_messages)
    alone.flush()

    a, b = daemon_half(config, shared, tmp_path / "cache"), daemon_half(config, shared,
                                                                        tmp_path / "cache")
    a.pipeline.open_shards([0, 1], wall_ms=0)
    b.pipeline.open_shards([2, 3], wall_ms=0)
    for start in range(0, len(all_messages), 700):  # they take turns, committing each time
        for half, held in ((a, {0, 1}), (b, {2, 3})):
            half.pipeline.process([m for m in all_messages[start:start + 700]
                                   if m.partition in held])
            half.commit({})
    a.pipeline.flush()
    a.commit({})
    last_end = max(line["window_end"] for line in local)
    assert queries.windows(shared, "m", limit=100)[-1]["window_end"] < last_end  # b holds it
    b.pipeline.flush()  # the last partitions end: the last windows are final
    b.commit({})

    stored = queries.windows(shared, "m", limit=10**6, all_revisions=True)
    firsts = [(line["window_key"], line["revision"]) for line in stored if line["revision"] == 0]
    assert len(firsts) == len({key for key, _ in firsts}) == 10  # each window once
    got, want = final_lines(stored), final_lines(local)
    assert sorted(got) == sorted(want)
    for key in want:
        assert_same(got[key], want[key], f"window {key}")
    assert any(line["revision"] > 0 for line in stored)  # late labels revised some
    policy = AlertPolicyState("m", config.models[0].alerts)  # what one daemon would raise
    expected = {}
    for line in local:
        for event in policy.evaluate(line):
            expected[event.to_body()["alert_id"]] = event.to_body()["status"]
    alerts = queries.alerts(shared, model="m")
    assert expected  # the drift fired
    assert {alert["alert_id"]: alert["status"] for alert in alerts} == expected


def test_a_champion_promoted_by_another_daemon_is_followed(
    config: Config, shared: Store, tmp_path: Path
) -> None:
    effects = daemon_half(config, shared, tmp_path / "cache")
    frame = reference_frame(2000, n_numeric=4, seed=99)
    frame["f0"] += 3.0
    saved = ReferenceProfile.build(frame, task="classification", features=None,
                                   target="target", prediction="prediction",
                                   probability="probability").to_dict()
    shared.save_profile("m", "new", saved, 1)
    shared.register_version("m", "7", "new")
    effects._followed_at = float("-inf")
    effects.follow_rebaselines()
    assert effects.pipeline.profiles["m"].to_dict() == ReferenceProfile.from_dict(saved).to_dict()
    assert effects.versions["m"] == "7"
