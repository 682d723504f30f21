"""What the store costs the ingest path: no store, SQLite and PostgreSQL, in one run.

    .venv/bin/python bench/store.py [--events 200000] [--window 15m] [--repeat 3]

The daemon's commit, without Kafka: the pipeline processes prebuilt messages (20-feature
predictions with labels, 4 partitions) and, once per second of processing, runs the
daemon's own commit (``monitor.effects.Effects.commit``: offsets, shard checkpoints,
partials, watermarks, then finalising the windows every partition passed, with their
feature scores and alerts; training rows off). The three run in turn, ``--repeat`` times.
Reported, as medians over the repeats: messages/s, the ratio to the no-store run of the
same round, the median commit time, the time in commits, and the median time of the commits
that finalised a window.
PostgreSQL is a throwaway cluster started here (scripts/postgres).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.alerts import OutboxWorker
from monitor.config import StoreSettings, config_from_dict
from monitor.effects import Effects
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.store import open_store
from monitor.synthetic import events, reference_frame
from tests.services.postgres import start_postgres

COMMIT_INTERVAL_S = 1.0
PARTITIONS = 4


def run(workdir: Path, messages: list[Message], store_url: str | None,
        window: str) -> dict[str, float]:
    config = config_from_dict({
        "models": [{"name": "m", "task": "classification",
                    "reference": {"path": "ref.csv", "target": "target",
                                  "prediction": "prediction", "probability": "probability"},
                    "window": {"duration": window, "grace": "5s"}}],
    }, base_dir=workdir, environ={})
    lines: list[dict[str, Any]] = []
    pipeline = Pipeline(config, load_profiles(config, workdir / "cache"), lines.append,
                        lambda *a: None, local=store_url is None)
    effects = None
    if store_url is not None:
        store = open_store(StoreSettings(url=store_url))
        store.register_model("m", "classification")
        effects = Effects(config, store, pipeline, metrics=Metrics(),
                          worker=OutboxWorker(store, config.alerts), trigger=None, sink=None)
        effects.set_partitions(PARTITIONS)
    commits: list[float] = []
    finalising: list[float] = []
    started = last = time.perf_counter()
    for i in range(0, len(messages), 2000):
        pipeline.process(messages[i:i + 2000])
        now = time.perf_counter()
        if effects is not None and now - last >= COMMIT_INTERVAL_S:
            written = effects.windows_written
            t0 = time.perf_counter()
            effects.commit({("bench", p): i + 2000 for p in range(PARTITIONS)})
            commits.append(time.perf_counter() - t0)
            if effects.windows_written > written:
                finalising.append(commits[-1])
            last = time.perf_counter()
    elapsed = time.perf_counter() - started
    if effects is not None:
        effects.store.close()
    return {"eps": len(messages) / elapsed,
            "commit_ms": statistics.median(commits) * 1000 if commits else 0.0,
            "window_ms": statistics.median(finalising) * 1000 if finalising else 0.0,
            "commits": len(commits), "commit_total_s": sum(commits)}


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--window", default="15m",
                        help="window duration (predictions are 100 ms apart in event time: "
                             "15m closes a window every 9,000 predictions)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        reference_frame(5000, n_numeric=20, seed=1).to_csv(workdir / "ref.csv", index=False)
        messages = [Message(s, orjson.dumps(e), s, zlib.crc32(e["event_id"].encode()) % PARTITIONS,
                            i) for i, (s, e) in
                    enumerate(events(args.events, n_numeric=20, seed=2, label_delay=500))]
        postgres = start_postgres(workdir / "pg")
        runs: dict[str, list[dict[str, float]]] = {"no store": [], "sqlite": [], "postgresql": []}
        try:
            for i in range(args.repeat):  # interleaved, so noise falls on all three alike
                runs["no store"].append(run(workdir, messages, None, args.window))
                runs["sqlite"].append(run(workdir, messages, f"sqlite:///{workdir / f'{i}.db'}",
                                          args.window))
                runs["postgresql"].append(run(workdir, messages,
                                              postgres.create_database(f"bench_{i}"), args.window))
        finally:
            postgres.stop()
    print(f"{len(messages):,} messages ({args.events:,} predictions of 20 features + labels), "
          f"commit every {COMMIT_INTERVAL_S:.0f} s of processing, {args.window} windows; "
          f"median of {args.repeat} runs")
    for name, results in runs.items():
        eps = statistics.median(r["eps"] for r in results)
        ratios = [r["eps"] / b["eps"] for r, b in zip(results, runs["no store"], strict=True)]
        print(f"{name:11s} {eps:10,.0f} msg/s  {statistics.median(ratios):5.2f}x "
              f"(runs: {', '.join(f'{x:.2f}' for x in ratios)})  "
              f"commit {statistics.median(r['commit_ms'] for r in results):6.1f} ms median, "
              f"{statistics.median(r['commit_total_s'] for r in results):4.1f} s in all  "
              f"finalising {statistics.median(r['window_ms'] for r in results):6.1f} ms")

if __name__ == "__main__":
    main()
