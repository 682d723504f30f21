"""Scale-out on a real broker: two daemons share a 4-partition topic in one consumer group
and a PostgreSQL store; one is SIGKILLed and restarted mid-run (forcing rebalances). Every
finalised window must equal what one daemon alone finalises from the same topics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from monitor.config import StoreSettings
from monitor.store import open_store, queries
from monitor.synthetic import Shift, events, reference_frame
from tests.services.daemon_config import kafka_yaml
from tests.services.window_lines import assert_same, final_lines

pytestmark = pytest.mark.kafka

N_PREDICTIONS = 24_000  # 100 ms apart: 40 minutes of event time, 8 windows of 5 minutes


def write_config(folder: Path, bootstrap: str, topics: dict[str, str], group: str,
                 store_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    reference_frame(2000, n_numeric=4, seed=7).to_csv(folder / "ref.csv", index=False)
    config = folder / "driftline.yaml"
    config.write_text(f"""
{kafka_yaml(bootstrap, topics, group)}
store: {{url: "{store_url}"}}
models:
  - name: m
    task: classification
    reference: {{path: ref.csv, target: target, prediction: prediction,
                 probability: probability}}
    window: {{duration: 5m, grace: 10s}}
""")
    return config


def start(config: Path, name: str, *, max_idle: float) -> subprocess.Popen[bytes]:
    log = (config.parent / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
         "--max-idle", str(max_idle), "--cache-dir", str(config.parent / "cache")],
        stdout=log, stderr=log)


def assigned(log: Path) -> int:
    return log.read_text().count('"assigned"') if log.exists() else 0


def wait_for(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stored_lines(store_url: str) -> dict[int, dict[str, Any]]:
    with open_store(StoreSettings(url=store_url)) as store:
        return final_lines(queries.windows(store, "m", limit=10**6))


def produce(bootstrap: str, topics: dict[str, str], pairs: list[tuple[str, Any]],
            chunks: int) -> None:
    """Keyed by event_id, as the contract asks, in ``chunks`` paced sends."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256_000)
    step = -(-len(pairs) // chunks)
    for start in range(0, len(pairs), step):
        for stream, event in pairs[start:start + step]:
            producer.send(topics[stream], key=event["event_id"].encode(),
                          value=orjson.dumps(event))
        producer.flush()
        time.sleep(0.3)
    producer.close()


def consumed(log: Path) -> int:
    """Messages a daemon consumed, from its `stopped` lines."""
    return sum(orjson.loads(raw)["consumed"] for raw in log.read_bytes().splitlines()
               if raw.startswith(b"{") and b'"event": "stopped"' in raw)


def test_two_daemons_one_killed_finalise_what_one_daemon_does(
    kafka_broker: Any, kafka_topics: Any, postgres_server: Any, tmp_path: Path
) -> None:
    topics = kafka_topics(partitions=4)
    bootstrap = kafka_broker.bootstrap
    pairs = list(events(N_PREDICTIONS, n_numeric=4, seed=3, label_every=2,
                        label_delay=4000,  # labels 400 s late: revisions
                        shift=Shift(start=N_PREDICTIONS // 2, features=[0], sd=0.7)))
    third = len(pairs) // 3

    shared_url = postgres_server.create_database("scale_out")
    shared = write_config(tmp_path / "shared", bootstrap, topics, "g-shared", shared_url)
    log_a, log_b = tmp_path / "shared" / "a.log", tmp_path / "shared" / "b.log"
    a = start(shared, "a", max_idle=10)
    wait_for(lambda: assigned(log_a) >= 1, "the first daemon's assignment")
    b = start(shared, "b", max_idle=10)
    wait_for(lambda: assigned(log_b) >= 1, "the second daemon joining")  # a rebalance
    produce(bootstrap, topics, pairs[:third], chunks=10)  # both consume...
    os.kill(a.pid, signal.SIGKILL)  # ...then one dies mid-run
    a.wait(timeout=30)
    produce(bootstrap, topics, pairs[third:2 * third], chunks=10)
    log_a = tmp_path / "shared" / "a2.log"
    a = start(shared, "a2", max_idle=10)  # and comes back: more rebalances
    wait_for(lambda: assigned(log_a) >= 1, "the restarted daemon's assignment")
    produce(bootstrap, topics, pairs[2 * third:], chunks=10)
    for proc, log in ((a, log_a), (b, log_b)):
        assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert assigned(log_b) >= 2, "the kill and restart did not rebalance the survivor"
    assert consumed(log_a) > 0  # the restarted daemon had work after the rebalance
    assert consumed(log_b) > 0

    alone_url = f"sqlite:///{tmp_path / 'alone' / 'driftline.db'}"
    alone = write_config(tmp_path / "alone", bootstrap, topics, "g-alone", alone_url)
    proc = start(alone, "alone", max_idle=4)
    assert proc.wait(timeout=300) == 0, (tmp_path / "alone" / "alone.log").read_text()[-3000:]

    expected = stored_lines(alone_url)
    got = stored_lines(shared_url)
    assert len(expected) == N_PREDICTIONS // 3000
    assert sorted(got) == sorted(expected)
    assert sum(line["n_predictions"] for line in got.values()) == N_PREDICTIONS
    for key in expected:
        assert_same(got[key], expected[key], f"window {key}")
    assert any(line["drift_detected"] for line in got.values())
