"""End to end on the real broker: drift in the stream, one signed `drift` alert per episode
at a real receiver, and a `resolved` notice once the stream is healthy again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from monitor.config import StoreSettings
from monitor.store import open_store, queries
from monitor.synthetic import Shift, events, reference_frame
from tests.services.daemon_config import kafka_yaml
from tests.services.webhook_receiver import Receiver

pytestmark = pytest.mark.kafka

SECRET = "whsec-e2e"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(SECRET)
    running.start()
    yield running
    running.stop()


def phase(n: int, name: str, start_ms: int, shift: Shift | None) -> list[tuple[str, Any]]:
    out = []
    for stream, event in events(n, n_numeric=5, seed=len(name), start_ms=start_ms,
                                shift=shift, label_every=10**9):
        if stream == "predictions":
            out.append((stream, {**event, "event_id": f"{name}-{event['event_id']}"}))
    return out


def test_a_drift_episode_sends_one_signed_alert_and_one_resolved_notice(
    kafka_broker: Any, kafka_topics: Any, receiver: Receiver, tmp_path: Path
) -> None:
    topics = kafka_topics()
    reference_frame(5000, n_numeric=5, seed=3).to_csv(tmp_path / "ref.csv", index=False)
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
{kafka_yaml(kafka_broker.bootstrap, topics, "e2e")}
alerts:
  routes:
    - {{name: oncall, url: "{receiver.url}", secret_env: E2E_SECRET}}
  delivery: {{initial_backoff: 100ms, max_backoff: 1s}}
models:
  - name: m
    task: classification
    reference: {{path: ref.csv, target: target, prediction: prediction,
                 probability: probability}}
    window: {{size: 500, grace: 0s}}
    alerts:
      drift: {{pending: 1, keep_firing: 2, cooldown: 0s}}
""")
    t0 = 1_767_225_600_000
    drifted = Shift(start=0, features=[0, 1, 2], sd=1.0)
    stream = (phase(2000, "calm", t0, None) + phase(2000, "drift", t0 + 10**6, drifted)
              + phase(2000, "calm-again", t0 + 2 * 10**6, None))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for name, event in stream:
        producer.send(topics[name], key=event["event_id"].encode(), value=orjson.dumps(event))
    producer.flush()
    producer.close()

    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config), "--max-idle", "3",
         "--cache-dir", str(tmp_path / "cache")],
        env={**os.environ, "E2E_SECRET": SECRET}, stdout=log, stderr=log, timeout=300,
        check=False)
    assert proc.returncode == 0, (tmp_path / "daemon.log").read_text()[-3000:]

    deadline = time.monotonic() + 30  # the outbox worker sends on its own thread
    while time.monotonic() < deadline and len(receiver.accepted()) < 2:
        time.sleep(0.2)
    # every request carried a valid signature (the receiver answers 401 otherwise)
    assert receiver.requests
    assert all(r.status == 200 for r in receiver.requests)
    notices = Counter((r.body["kind"], r.body["status"]) for r in receiver.accepted())
    assert notices == {("drift", "firing"): 1, ("drift", "resolved"): 1}
    firing, resolved = (r.body for r in receiver.accepted())
    assert firing["alert_id"] == resolved["alert_id"]
    assert firing["model"] == "m"
    assert {"f0", "f1", "f2"} <= set(firing["details"]["features"])
    assert firing["window_start"] >= "2026-01-01T00:16:40Z"  # a window of the drift phase


def saved_alerts(tmp_path: Path) -> list[dict[str, Any]]:
    if not (tmp_path / "driftline.db").exists():
        return []
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")) as store:
        return queries.alerts(store, "m")


def test_alerts_in_the_outbox_of_a_sigkilled_daemon_are_sent_after_restart(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    receiver = Receiver(SECRET)  # not started yet: the receiver is down
    topics = kafka_topics()
    reference_frame(5000, n_numeric=5, seed=3).to_csv(tmp_path / "ref.csv", index=False)
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
{kafka_yaml(kafka_broker.bootstrap, topics, "outbox")}
alerts:
  routes: [{{name: oncall, url: "{receiver.url}", secret_env: E2E_SECRET}}]
  delivery: {{initial_backoff: 100ms, max_backoff: 500ms}}
models:
  - name: m
    task: classification
    reference: {{path: ref.csv, target: target, prediction: prediction,
                 probability: probability}}
    window: {{size: 500, grace: 0s}}
""")
    drifted = Shift(start=0, features=[0, 1, 2], sd=1.0)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for name, event in phase(2000, "drift", 1_767_225_600_000, drifted):
        producer.send(topics[name], key=event["event_id"].encode(), value=orjson.dumps(event))
    producer.flush()
    producer.close()

    env = {**os.environ, "E2E_SECRET": SECRET}
    cmd = [sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
           "--cache-dir", str(tmp_path / "cache")]
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen([*cmd, "--max-idle", "600"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not saved_alerts(tmp_path):
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)  # a few delivery attempts fail against the closed port
    proc.kill()  # SIGKILL with the alert still undelivered in the outbox
    proc.wait(timeout=30)
    assert receiver.requests == []

    receiver.start()
    try:
        restart = subprocess.run([*cmd, "--max-idle", "3"], env=env, stdout=log, stderr=log,
                                 timeout=300, check=False)
        assert restart.returncode == 0, (tmp_path / "daemon.log").read_text()[-3000:]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not receiver.accepted():
            time.sleep(0.2)
        notices = Counter((r.body["kind"], r.body["status"]) for r in receiver.accepted())
        assert notices == {("drift", "firing"): 1}
    finally:
        receiver.stop()
