"""The whole loop on real services: Kafka, MLflow, a webhook receiver. A drift alert starts
a retrain out of process; the challenger beats a poor champion, is promoted, and the daemon
re-baselines on it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from kafka import KafkaProducer
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from monitor.config import StoreSettings
from monitor.store import open_store, queries
from monitor.synthetic import Shift, events, reference_frame
from retrain.registry import bootstrap_champion
from tests.services.daemon_config import kafka_yaml
from tests.services.webhook_receiver import Receiver

pytestmark = pytest.mark.kafka

FEATURES = [f"f{i}" for i in range(5)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(None)
    running.start()
    yield running
    running.stop()


def labelled_phase(n: int, name: str, start_ms: int, shift: Shift | None
                   ) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for stream, event in events(n, n_numeric=5, seed=len(name), start_ms=start_ms,
                                shift=shift, label_delay=20):
        out.append((stream, {**event, "event_id": f"{name}-{event['event_id']}"}))
    return out


def test_drift_starts_a_retrain_whose_better_challenger_is_promoted(
    kafka_broker: Any, kafka_topics: Any, mlflow_server: Any, receiver: Receiver,
    tmp_path: Path
) -> None:
    registered = f"loop-{tmp_path.name[-8:]}"
    reference = reference_frame(3000, n_numeric=5, seed=3)
    reference.to_csv(tmp_path / "ref.csv", index=False)
    rng = np.random.default_rng(0)
    poor = LogisticRegression().fit(reference[FEATURES].iloc[:200],
                                    rng.integers(0, 2, 200))  # trained on noise
    bootstrap_champion(poor, registered_model=registered, sample=reference[FEATURES].head(5),
                       tracking_uri=mlflow_server.uri)

    topics = kafka_topics()
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
{kafka_yaml(kafka_broker.bootstrap, topics, "loop")}
alerts:
  routes: [{{name: all, url: "{receiver.url}"}}]
  delivery: {{initial_backoff: 100ms, max_backoff: 1s}}
models:
  - name: m
    task: classification
    reference: {{path: ref.csv, target: target, prediction: prediction,
                 probability: probability}}
    features: {{f0: numeric, f1: numeric, f2: numeric, f3: numeric, f4: numeric}}
    window: {{size: 500, grace: 5s}}
    alerts:
      drift: {{pending: 1, keep_firing: 3}}
    retrain:
      enabled: true
      on: [drift]
      tracking_uri: "{mlflow_server.uri}"
      registered_model: {registered}
      metric: accuracy
      margin: 0.02
      cooldown: 0s
      horizon: 10m
""")
    t0 = 1_767_225_600_000
    stream = (labelled_phase(1500, "calm", t0, None)
              + labelled_phase(1500, "drift", t0 + 10**6,
                               Shift(start=0, features=[0, 1, 2], sd=1.0)))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for name, event in stream:
        producer.send(topics[name], key=event["event_id"].encode(), value=orjson.dumps(event))
    producer.flush()
    producer.close()

    log = (tmp_path / "daemon.log").open("wb")
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config), "--max-idle", "3",
         "--cache-dir", str(tmp_path / "cache")],
        env=env, stdout=log, stderr=log, timeout=600, check=False)
    text = (tmp_path / "daemon.log").read_text()
    assert proc.returncode == 0, text[-3000:]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(receiver.accepted()) < 4:
        time.sleep(0.2)
    kinds = Counter((r.body["kind"], r.body["status"]) for r in receiver.accepted())
    assert kinds[("drift", "firing")] == 1
    assert kinds[("retrain_started", "firing")] == 1
    assert kinds[("retrain_succeeded", "firing")] + kinds[("retrain_succeeded", "resolved")] == 1
    assert sum(n for (kind, _), n in kinds.items() if kind == "model_promoted") == 1

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    champion = client.get_model_version_by_alias(registered, "champion")
    assert champion.version == "2"
    assert client.get_model_version_by_alias(registered, "challenger").version == "2"
    assert '"rebaselined"' in text

    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")) as store:
        (run,) = queries.retrains(store, "m")
    assert run["status"] == "succeeded"
    assert run["promoted"] is True
    assert run["registered_version"] == "2"

    # the drifted traffic is the new normal: a restarted daemon scores it against the
    # promoted champion's reference (its recent training rows) and finds it healthy
    later = labelled_phase(1500, "later", t0 + 2 * 10**6, Shift(start=0, features=[0, 1, 2],
                                                                   sd=1.0))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
    for name, event in later:
        producer.send(topics[name], key=event["event_id"].encode(), value=orjson.dumps(event))
    producer.flush()
    producer.close()
    log = (tmp_path / "restart.log").open("wb")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config), "--max-idle", "1",
         "--cache-dir", str(tmp_path / "cache")],
        env=env, stdout=log, stderr=log, timeout=300, check=False)
    restarted = (tmp_path / "restart.log").read_text()
    assert proc.returncode == 0, restarted[-3000:]
    assert '"profile_from_store"' in restarted
    assert '"version": "2"' in restarted
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")) as store:
        windows = queries.windows(store, "m", limit=10**4)
    after = [w for w in windows if w["window_start"] >= "2026-01-01T00:33:20Z"]
    assert after, "no window of the later traffic"
    assert not any(w["drift_detected"] for w in after)

    # a config may name the champion itself as the reference: its logged profile is used
    by_uri = tmp_path / "by_uri.yaml"
    by_uri.write_text(f"""
models:
  - name: m
    task: classification
    reference: {{uri: "models:/{registered}@champion", target: target}}
    window: {{size: 500}}
    retrain: {{tracking_uri: "{mlflow_server.uri}"}}
""")
    inputs = tmp_path / "drift.jsonl"
    inputs.write_bytes(b"".join(orjson.dumps({"stream": s, "value": e}) + b"\n"
                                for s, e in stream[:3000]))
    out = tmp_path / "by_uri.jsonl"
    subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--config", str(by_uri),
                    "--output", str(out), "--cache-dir", str(tmp_path / "cache"), str(inputs)],
                   env=env, check=True, capture_output=True, timeout=300)
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert lines[-1]["summary"]["windows"] >= 2
