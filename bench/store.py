"""What the store costs the ingest path: no store, SQLite and PostgreSQL, in one run.

    .venv/bin/python bench/store.py [--events 200000]

The daemon's commit, without Kafka: the pipeline processes prebuilt messages (20-feature
predictions with labels) and, once per second of processing, saves exactly what
``driftline run`` saves in one transaction (offsets, the pipeline checkpoint, closed
windows with their feature scores, training rows off). Reported: events/s of each, the
ratio to no store, the median commit time, and the time to write one closed window.
PostgreSQL is a throwaway cluster started here (scripts/postgres).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import StoreSettings, config_from_dict
from monitor.effects import (
    CHECKPOINT_PARTITION,
    CHECKPOINT_TOPIC,
    SEGMENT_TOPIC,
    WINDOW_TOPIC,
)
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.store import Checkpoint, WindowLine, open_store
from monitor.synthetic import events, reference_frame
from tests.services.postgres import start_postgres

COMMIT_INTERVAL_S = 1.0


def run(workdir: Path, messages: list[Message], store_url: str | None) -> dict[str, float]:
    config = config_from_dict({
        "models": [{"name": "m", "task": "classification",
                    "reference": {"path": "ref.csv", "target": "target",
                                  "prediction": "prediction", "probability": "probability"},
                    "window": {"size": 10_000, "grace": "5s"}}],
    }, base_dir=workdir, environ={})
    lines: list[dict[str, Any]] = []
    pipeline = Pipeline(config, load_profiles(config, workdir / "cache"), lines.append,
                        lambda *a: None)
    store = None
    if store_url is not None:
        store = open_store(StoreSettings(url=store_url))
        store.register_model("m", "classification")
    commits: list[float] = []
    window_writes: list[float] = []
    started = last = time.perf_counter()
    for i in range(0, len(messages), 2000):
        pipeline.process(messages[i:i + 2000])
        now = time.perf_counter()
        if store is not None and now - last >= COMMIT_INTERVAL_S:
            t0 = time.perf_counter()
            closed = [WindowLine(x["window_key"], x) for x in lines]
            store.commit_batch(
                "bench", offsets={("bench", 0): i + 2000},
                checkpoints=[
                    *(Checkpoint(CHECKPOINT_TOPIC, CHECKPOINT_PARTITION, name, state)
                      for name, state in pipeline.checkpoint().items()),
                    *(Checkpoint(SEGMENT_TOPIC, key, name, {"entries": entries})
                      for name, changed in pipeline.segments().items()
                      for key, entries in changed.items()),
                    *(Checkpoint(WINDOW_TOPIC, key, name, {"window": window})
                      for name, changed in pipeline.closed_windows().items()
                      for key, window in changed.items()),
                ],
                windows=closed)
            commits.append(time.perf_counter() - t0)
            lines.clear()
            if closed:
                t1 = time.perf_counter()
                store.commit_batch("bench", windows=[WindowLine(10**9 + len(window_writes),
                                                                closed[0].line)])
                window_writes.append(time.perf_counter() - t1)
            last = time.perf_counter()
    elapsed = time.perf_counter() - started
    if store is not None:
        store.close()
    return {"eps": len(messages) / elapsed,
            "commit_ms": statistics.median(commits) * 1000 if commits else 0.0,
            "window_ms": statistics.median(window_writes) * 1000 if window_writes else 0.0,
            "commits": len(commits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        reference_frame(5000, n_numeric=20, seed=1).to_csv(workdir / "ref.csv", index=False)
        messages = [Message(s, orjson.dumps(e), s, 0, i) for i, (s, e) in
                    enumerate(events(args.events, n_numeric=20, seed=2, label_delay=500))]
        postgres = start_postgres(workdir / "pg")
        try:
            results = {
                "no store": run(workdir, messages, None),
                "sqlite": run(workdir, messages, f"sqlite:///{workdir / 'bench.db'}"),
                "postgresql": run(workdir, messages, postgres.url),
            }
        finally:
            postgres.stop()
    base = results["no store"]["eps"]
    print(f"{len(messages):,} messages ({args.events:,} predictions of 20 features + labels), "
          f"commit every {COMMIT_INTERVAL_S:.0f} s of processing")
    for name, r in results.items():
        print(f"{name:11s} {r['eps']:10,.0f} msg/s  {r['eps'] / base:5.2f}x  "
              f"commit {r['commit_ms']:7.1f} ms (median of {r['commits']:.0f})  "
              f"one window {r['window_ms']:6.1f} ms")


if __name__ == "__main__":
    main()
