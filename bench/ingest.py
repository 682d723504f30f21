"""Ingest throughput: driftline against a raw kafka-python consumer, in one run.

    .venv/bin/python bench/ingest.py [--events 200000] [--features 20]

1. CPU only, one core: decode + validate (``Decoder``), and the whole pipeline step
   (decode, validate, join, window buffering and vectorised window updates) on prebuilt
   messages of 20-feature predictions.
2. On a real broker started here: a raw ``KafkaConsumer`` + ``json.loads`` over the topic,
   then ``driftline run`` (in process) over the same topic; events/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaConsumer, KafkaProducer

from monitor.config import config_from_dict
from monitor.daemon import run_daemon
from monitor.ingest.decode import Decoder
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.synthetic import events, reference_frame
from tests.services.kafka_broker import start_broker


def _config(workdir: Path, n_features: int, bootstrap: str = "127.0.0.1:9092",
            topic: str = "bench") -> object:
    reference_frame(5000, n_numeric=n_features, seed=1).to_csv(workdir / "ref.csv", index=False)
    return config_from_dict({
        "http": {"enabled": False},
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{time.time_ns()}",
                  "topics": {"predictions": topic, "features": f"{topic}.f",
                             "labels": f"{topic}.l"}},
        "models": [{"name": "m", "task": "classification",
                    "reference": {"path": "ref.csv", "target": "target",
                                  "prediction": "prediction", "probability": "probability"},
                    "window": {"size": 10_000, "grace": "0s"}}],
    }, base_dir=workdir, environ={})


def cpu_only(workdir: Path, n: int, n_features: int) -> dict[str, float]:
    config = _config(workdir, n_features)
    raw = [orjson.dumps(e) for s, e in events(n, n_numeric=n_features, seed=2, label_every=10**9)
           if s == "predictions"]
    messages = [Message("predictions", value, "bench", 0, i) for i, value in enumerate(raw)]
    decoder = Decoder(["m"])
    t0 = time.perf_counter()
    for value in raw:
        decoder.decode("predictions", value)
    decode_s = time.perf_counter() - t0
    pipeline = Pipeline(config, load_profiles(config, workdir / "cache"),  # type: ignore[arg-type]
                        on_window=lambda line: None, on_dead_letter=lambda *a: None)
    t0 = time.perf_counter()
    for start in range(0, len(messages), 2000):
        pipeline.process(messages[start:start + 2000])
    pipeline_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for value in raw:
        json.loads(value)
    json_s = time.perf_counter() - t0
    return {"events": len(raw), "decode_validate_eps": len(raw) / decode_s,
            "pipeline_eps": len(raw) / pipeline_s, "json_loads_eps": len(raw) / json_s}


def over_kafka(workdir: Path, n: int, n_features: int) -> dict[str, float]:
    broker = start_broker(workdir / "kafka")
    try:
        topic = "bench.predictions"
        broker.create_topics([topic, f"{topic}.f", f"{topic}.l", f"{topic}.dlq"], partitions=1)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20,
                                 batch_size=512_000)
        count = 0
        for stream, event in events(n, n_numeric=n_features, seed=3, label_every=10**9):
            if stream == "predictions":
                producer.send(topic, key=event["event_id"].encode(), value=orjson.dumps(event))
                count += 1
        producer.flush()
        producer.close()

        consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 group_id="raw", max_poll_records=2000)
        seen, t0 = 0, 0.0
        while seen < count:  # timed from the first record, like the daemon below
            for records in consumer.poll(timeout_ms=500).values():
                if not seen:
                    t0 = time.monotonic()
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        raw_s = time.monotonic() - t0
        consumer.close()

        config = _config(workdir, n_features, broker.bootstrap, topic)
        load_profiles(config, workdir / "cache")  # type: ignore[arg-type]  # warm the cache
        stats = run_daemon(config, cache_dir=workdir / "cache",  # type: ignore[arg-type]
                           max_idle_s=1.0)
        daemon_s = stats.last_message_at - stats.first_message_at
        raw_eps, daemon_eps = count / raw_s, stats.consumed / daemon_s
        return {"events": count, "raw_consumer_eps": raw_eps, "driftline_eps": daemon_eps,
                "ratio": daemon_eps / raw_eps}
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python "
          f"{platform.python_version()}, {args.events} events of {args.features} features")
    with tempfile.TemporaryDirectory() as tmp:
        cpu = cpu_only(Path(tmp), args.events, args.features)
        for key, value in cpu.items():
            print(f"cpu    {key:24s} {value:12,.0f}")
        kafka = over_kafka(Path(tmp), args.events, args.features)
        for key, value in kafka.items():
            print(f"kafka  {key:24s} {value:12,.2f}")


if __name__ == "__main__":
    main()
