"""Drift engine speed and memory, against Evidently on the same data, in one run.

    .venv/bin/python bench/engine.py [--features 20] [--window 1000]

1. ``WindowState.update`` on columnar batches of 1,000 rows (20 numeric features):
   events/s on one core.
2. Close and score a window (``score_window``), 20 features: milliseconds.
3. Evidently's ``DataDriftPreset`` report on the same reference and window: milliseconds,
   and the ratio to (2).
4. Peak memory (tracemalloc) of one window state after 1M and after 10M events: growth.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import DriftSettings
from monitor.engine.batch import Batch
from monitor.engine.profile import ReferenceProfile
from monitor.engine.scoring import score_window
from monitor.engine.window_state import WindowState


def _profile(n_features: int, rng: np.random.Generator) -> tuple[ReferenceProfile, pd.DataFrame]:
    reference = pd.DataFrame({f"f{i}": rng.normal(size=10_000) for i in range(n_features)})
    return ReferenceProfile.build(reference, task="regression", features=None), reference


def _batches(profile: ReferenceProfile, n_features: int, rows: int, count: int,
             rng: np.random.Generator) -> list[Batch]:
    return [Batch.from_columns(profile, {f"f{i}": rng.normal(0.1, 1, rows)
                                         for i in range(n_features)})
            for _ in range(count)]


def update_rate(profile: ReferenceProfile, batches: list[Batch], repeat: int = 5) -> float:
    best = 0.0
    for _ in range(repeat):
        state = WindowState(profile, sample_size=1000, seed=0)
        t0 = time.perf_counter()
        for batch in batches:
            state.update(batch)
        elapsed = time.perf_counter() - t0
        best = max(best, sum(b.n_rows for b in batches) / elapsed)
    return best


def score_ms(profile: ReferenceProfile, state: WindowState, repeat: int = 50) -> float:
    drift = DriftSettings()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        score_window(profile, state, drift)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def evidently_ms(reference: pd.DataFrame, current: pd.DataFrame, repeat: int = 5) -> float:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Report([DataDriftPreset()]).run(reference_data=reference, current_data=current)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def peak_memory(profile: ReferenceProfile, batch: Batch, events: int) -> int:
    gc.collect()
    tracemalloc.start()
    state = WindowState(profile, sample_size=1000, seed=0)
    for _ in range(events // batch.n_rows):
        state.update(batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--window", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    profile, reference = _profile(args.features, rng)
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")

    batches = _batches(profile, args.features, 1000, 200, rng)
    rate = update_rate(profile, batches)
    print(f"update           {rate:14,.0f} events/s   (20 features, batches of 1,000)")

    current = pd.DataFrame({f"f{i}": rng.normal(0.1, 1, args.window)
                            for i in range(args.features)})
    state = WindowState(profile, sample_size=1000, seed=0)
    state.update(Batch.from_columns(profile, {c: current[c].to_numpy() for c in current}))
    ours = score_ms(profile, state)
    print(f"close+score      {ours:14.3f} ms         (window of {args.window})")
    theirs = evidently_ms(reference, current)
    print(f"evidently        {theirs:14.1f} ms         DataDriftPreset, same reference/window")
    print(f"ratio            {theirs / ours:14.0f} x faster")

    one = peak_memory(profile, batches[0], 1_000_000)
    ten = peak_memory(profile, batches[0], 10_000_000)
    print(f"peak memory 1M   {one / 1e6:14.3f} MB")
    print(f"peak memory 10M  {ten / 1e6:14.3f} MB")
    print(f"growth           {100 * (ten - one) / one:14.1f} %")


if __name__ == "__main__":
    main()
