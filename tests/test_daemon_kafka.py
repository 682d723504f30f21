"""The daemon on a real broker: every bad message in its DLQ, every good one counted once,
and no valid event skipped after a SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerts import OutboxWorker
from monitor.config import StoreSettings, load_config
from monitor.effects import Effects
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.store import open_store, queries
from monitor.store.samples import load_sample
from monitor.synthetic import Shift, events, reference_frame
from tests.services.daemon_config import kafka_yaml
from tests.services.window_lines import assert_same, final_lines

pytestmark = pytest.mark.kafka

N_FEATURES = 5


def write_config(tmp_path: Path, bootstrap: str, topics: dict[str, str], *, size: int,
                 grace: str = "0s") -> Path:
    reference_frame(2000, n_numeric=N_FEATURES, seed=7).to_csv(tmp_path / "ref.csv", index=False)
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
{kafka_yaml(bootstrap, topics, f"g-{tmp_path.name}")}
models:
  - name: m
    task: classification
    reference: {{path: ref.csv, target: target, prediction: prediction,
                 probability: probability}}
    window: {{size: {size}, grace: {grace}}}
""")
    return config


def run_daemon(config: Path, output: Path, tmp_path: Path, *, max_idle: float = 4.0,
               wait: bool = True) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
           "--output", str(output), "--max-idle", str(max_idle),
           "--cache-dir", str(tmp_path / "cache")]
    log = (tmp_path / "daemon.log").open("ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    if wait:
        assert proc.wait(timeout=300) == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    return proc


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def consume_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000,
                             fetch_max_bytes=8 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024)
    records = []
    deadline = time.monotonic() + 60
    while len(records) < expected and time.monotonic() < deadline:
        records.extend(consumer)
    consumer.close()
    return records


def bad_messages(n_each: int) -> list[tuple[str, bytes, str]]:
    """(stream, raw value, expected reason), n_each of every kind but duplicates."""
    out: list[tuple[str, bytes, str]] = []
    streams = ("predictions", "features", "labels")
    good = {
        "predictions": {"prediction": 1},
        "features": {"features": {"f0": 0.5}},
        "labels": {"label": 1},
    }
    for i in range(n_each):
        stream = streams[i % 3]
        base = {"schema_version": 1, "event_id": f"bad-{i}", "model": "m",
                "timestamp": 1_767_225_600_000, **good[stream]}
        out.append((stream, b'{"schema_version": 1, "event_id": "x' + str(i).encode(),
                    "not_json"))
        out.append((stream, orjson.dumps({**base, "event_id": ""}), "schema_violation"))
        out.append((stream, orjson.dumps(base).replace(b'"timestamp":1767225600000',
                                                        b'"timestamp":NaN'), "non_finite"))
        out.append((stream, orjson.dumps({**base, "model": "nope"}), "unknown_model"))
        if i % 10 == 0:  # big messages are slow to move; fewer of them
            padding = "x" * (1_100_000)
            out.append((stream, orjson.dumps({**base, "blob": padding}), "too_large"))
    return out


def test_every_bad_message_reaches_its_dlq_and_every_good_one_counts_once(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    topics = kafka_topics()
    bootstrap = kafka_broker.bootstrap
    config = write_config(tmp_path, bootstrap, topics, size=500, grace="5s")
    n_predictions = 6_400
    good = list(events(n_predictions, n_numeric=N_FEATURES, seed=3, features_inline=False,
                       label_every=1, label_delay=50))
    bad = bad_messages(n_each=210)
    duplicates = [("predictions", orjson.dumps(event), "duplicate_event_id")
                  for stream, event in good[:600:6] if stream == "predictions"]
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024,
                             linger_ms=5)
    expected: dict[bytes, tuple[str, str]] = {}
    step = max(1, len(good) // len(bad))
    sent = 0
    for index, (stream, event) in enumerate(good):
        producer.send(topics[stream], key=event["event_id"].encode(), value=orjson.dumps(event))
        sent += 1
        if index % step == 0 and bad:
            b_stream, raw, reason = bad.pop()
            key = f"bad-{index}".encode()
            producer.send(topics[b_stream], key=key, value=raw)
            expected[key] = (b_stream, reason)
            sent += 1
    for index, (stream, raw, reason) in enumerate(duplicates + [(s, r, why) for s, r, why in bad]):
        key = f"late-bad-{index}".encode()
        producer.send(topics[stream], key=key, value=raw)
        expected[key] = (stream, reason)
        sent += 1
    producer.flush()
    producer.close()
    assert sent >= 20_000
    bad_share = len(expected) / sent
    assert 0.04 <= bad_share <= 0.07

    output = tmp_path / "out.jsonl"
    run_daemon(config, output, tmp_path)
    lines = read_lines(output)
    summary = lines[-1]["summary"]
    windows = [line for line in lines[:-1] if line["revision"] == 0]

    expected_reasons = Counter(reason for _, reason in expected.values())
    assert summary["dlq"] == dict(expected_reasons)
    assert summary["predictions"] == n_predictions
    assert sum(w["n_predictions"] for w in windows) == n_predictions
    assert summary["unmatched"] == {"features": 0, "labels": 0}
    assert summary["late_features"] == 0

    for stream in ("predictions", "features", "labels"):
        want = {k: v for k, v in expected.items() if v[0] == stream}
        records = consume_all(bootstrap, f"{topics[stream]}.dlq", len(want))
        assert len(records) == len(want)
        for record in records:
            headers = dict(record.headers)
            assert headers["driftline.error"].decode() == want[record.key][1]
            assert headers["driftline.source.topic"].decode() == topics[stream]
            assert int(headers["driftline.source.offset"]) >= 0
            assert headers["driftline.error.detail"]


def test_sigkilled_and_restarted_the_daemon_finalises_exactly_what_a_replay_does(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    soak = bool(os.environ.get("DRIFTLINE_SOAK"))
    n_predictions, kills = (200_000, 5) if soak else (30_000, 3)
    topics = kafka_topics()
    bootstrap = kafka_broker.bootstrap
    config = write_config(tmp_path, bootstrap, topics, size=1000, grace="5s")
    pairs = list(events(n_predictions, n_numeric=N_FEATURES, seed=5, label_every=3,
                        label_delay=120, shift=Shift(start=n_predictions // 2,
                                                     features=[0, 1], sd=0.5)))
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256_000)
    for stream, event in pairs:
        producer.send(topics[stream], key=event["event_id"].encode(), value=orjson.dumps(event))
    producer.flush()
    producer.close()

    rng = random.Random(1)
    for kill in range(kills):
        output = tmp_path / f"run{kill}.jsonl"
        proc = run_daemon(config, output, tmp_path, wait=False)
        deadline = time.monotonic() + 120  # a killed member holds its partitions until its
        while time.monotonic() < deadline:  # session times out: wait for the assignment
            if (tmp_path / "daemon.log").read_text().count('"assigned"') > kill:
                break
            time.sleep(0.1)
        time.sleep(rng.uniform(0.5, 3.0))  # then kill mid-stream
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    run_daemon(config, tmp_path / "last.jsonl", tmp_path)
    written = [len(read_lines(tmp_path / f"run{k}.jsonl")) if (tmp_path / f"run{k}.jsonl").exists()
               else 0 for k in range(kills)]
    print(f"\nwindow lines written before each SIGKILL: {written}")
    assert written[0] < n_predictions // 1000, "the first kill came after all the work"

    replayed = tmp_path / "replay.jsonl"
    inputs = tmp_path / "events.jsonl"
    inputs.write_bytes(b"".join(orjson.dumps({"stream": s, "value": e}) + b"\n"
                                for s, e in pairs))
    subprocess.run([sys.executable, "-m", "monitor.cli", "replay", "--config", str(config),
                    "--output", str(replayed), "--cache-dir", str(tmp_path / "cache"),
                    str(inputs)], check=True, capture_output=True)

    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")) as store:
        stored = final_lines(queries.windows(store, "m", limit=10**6))
    expected = final_lines(read_lines(replayed))
    assert sorted(stored) == sorted(expected)
    assert sum(line["n_predictions"] for line in stored.values()) == n_predictions
    for key in expected:
        assert_same(stored[key], expected[key], f"window {key}")
    # each window's retained rows, saved with its first close, are those of one clean pass
    clean = samples_of_one_pass(config, pairs, tmp_path)
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")) as store:
        for key in expected:
            sample = load_sample(store, "m", key)
            assert sample is not None, f"window {key} has no saved sample"
            assert sample.rows == clean[key], f"window {key}"


def samples_of_one_pass(config: Path, pairs: list[tuple[str, dict[str, Any]]],
                        tmp_path: Path) -> dict[int, list[list[Any]]]:
    """The row samples one uninterrupted pass of the daemon's pipeline saves."""
    loaded = load_config(config)
    pipeline = Pipeline(loaded, load_profiles(loaded, tmp_path / "cache"), lambda _: None,
                        lambda *_: None, local=False)
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'one-pass.db'}")) as store:
        store.register_model("m", "classification")
        effects = Effects(loaded, store, pipeline, metrics=Metrics(),
                          worker=OutboxWorker(store, loaded.alerts), trigger=None, sink=None)
        effects.set_partitions(1)
        pipeline.process(Message(s, orjson.dumps(e), s) for s, e in pairs)
        pipeline.flush()
        effects.commit({})
        keys = [w["window_key"] for w in queries.windows(store, "m", limit=10**6)]
        saved = {key: load_sample(store, "m", key) for key in keys}
    return {key: sample.rows for key, sample in saved.items() if sample is not None}


def http_url(log: Path) -> str:
    """The daemon's HTTP address, from its `http` log line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for raw in log.read_bytes().splitlines():
            if raw.startswith(b"{") and b'"event": "http"' in raw:
                return str(orjson.loads(raw)["url"])
        time.sleep(0.1)
    raise AssertionError(f"no http line in {log}")


def predictions_counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "driftline_events_total" and \
                    sample.labels.get("stream") == "predictions":
                return sample.value
    raise AssertionError("driftline_events_total{stream=predictions} is missing")


def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(
    kafka_broker: Any, kafka_topics: Any, tmp_path: Path
) -> None:
    topics = kafka_topics()
    config = write_config(tmp_path, kafka_broker.bootstrap, topics, size=1000)
    stream = [p for p in events(20_000, n_numeric=N_FEATURES, seed=8) if p[0] == "predictions"]

    def produce(pairs: list[tuple[str, dict[str, Any]]]) -> None:
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, linger_ms=20)
        for name, event in pairs:
            producer.send(topics[name], value=orjson.dumps(event))
        producer.flush()
        producer.close()

    def wait_until_counted(url: str, n: int) -> None:
        deadline = time.monotonic() + 120
        while predictions_counted(url) < n and time.monotonic() < deadline:
            time.sleep(0.3)
        counted = predictions_counted(url)
        assert counted == n, f"/metrics counts {counted} predictions, {n} were sent"

    produce(stream[:10_000])
    proc = run_daemon(config, tmp_path / "out.jsonl", tmp_path, max_idle=600, wait=False)
    url = http_url(tmp_path / "daemon.log")
    wait_until_counted(url, 10_000)
    produce(stream[10_000:])  # the counter moves with the stream
    wait_until_counted(url, 20_000)
    assert httpx.get(f"{url}/readyz").status_code == 200
    proc.send_signal(signal.SIGTERM)  # kafka.shutdown_timeout (10 s) bounds the exit
    assert proc.wait(timeout=60) == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    log = (tmp_path / "daemon.log").read_text()
    assert '"signal": "SIGTERM"' in log
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")) as store:
        offsets = store.load_offsets(f"g-{tmp_path.name}")
    assert offsets, "nothing was committed before exiting"
