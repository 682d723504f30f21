"""The daemon's Prometheus metrics, in a registry of their own.

Each :class:`Metrics` owns a ``CollectorRegistry`` (never the process-global one), so tests
and several daemons in one process do not clash. The daemon calls the ``observe_*``
methods at its edges (per poll batch, per dead letter, per window line, per commit), never
per event; ``/metrics`` serves :meth:`Metrics.exposition`.

>>> metrics = Metrics()
>>> metrics.observe_messages({"predictions": 3, "labels": 1})
>>> b'driftline_events_total{stream="predictions"} 3.0' in metrics.exposition()
True
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder, generate_latest

from monitor.ingest.decode import REASONS
from monitor.timeparse import parse_timestamp_ms

__all__ = ["DELIVERY_OUTCOMES", "RETRAIN_OUTCOMES", "STREAMS", "Metrics"]

STREAMS = ("predictions", "features", "labels")
EVICTION_KINDS = ("features", "labels")  # unmatched: their prediction never came
DELIVERY_OUTCOMES = ("delivered", "retried", "gave_up")
RETRAIN_OUTCOMES = ("succeeded", "failed", "promoted")
COMMIT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters and gauges of one daemon; thread-safe (the outbox worker observes too)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "driftline_events", "Messages consumed, per stream.", ["stream"], registry=r
        )
        self.dead_letters = Counter(
            "driftline_dead_letters", "Messages sent to a DLQ, per reason.", ["reason"], registry=r
        )
        self.evictions = Counter(
            "driftline_join_evictions",
            "Features or labels given up unmatched by the join (count or age bound).",
            ["kind"],
            registry=r,
        )
        self.windows = Counter(
            "driftline_windows", "Windows closed and scored (first lines).", ["model"], registry=r
        )
        self.revisions = Counter(
            "driftline_window_revisions",
            "Revision lines of closed windows (late labels).",
            ["model"],
            registry=r,
        )
        self.lag = Gauge(
            "driftline_consumer_lag",
            "Records on the broker not yet consumed (high-water mark minus position).",
            ["topic", "partition"],
            registry=r,
        )
        self.health = Gauge(
            "driftline_health_score",
            "Health score (0 to 100) of the model's newest window.",
            ["model"],
            registry=r,
        )
        self.feature_drift = Gauge(
            "driftline_feature_drift_score",
            "Drift score (distance or test statistic of its method) per feature, newest window.",
            ["model", "feature"],
            registry=r,
        )
        self.drift_detected = Gauge(
            "driftline_drift_detected",
            "1 when the model's newest window drifted, else 0.",
            ["model"],
            registry=r,
        )
        self.deliveries = Counter(
            "driftline_webhook_deliveries",
            "Alert webhook delivery attempts, per outcome.",
            ["outcome"],
            registry=r,
        )
        self.retrains = Counter(
            "driftline_retrains", "Finished retrain runs, per outcome.", ["outcome"], registry=r
        )
        self.commit_seconds = Histogram(
            "driftline_commit_seconds",
            "Time to save offsets, state and windows in one store transaction.",
            buckets=COMMIT_BUCKETS_S,
            registry=r,
        )
        # zero series from the start, so rate() and absent() work before the first event
        for stream in STREAMS:
            self.events.labels(stream)
        for reason in REASONS:
            self.dead_letters.labels(reason)
        for kind in EVICTION_KINDS:
            self.evictions.labels(kind)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        for outcome in RETRAIN_OUTCOMES:
            self.retrains.labels(outcome)
        self._lock = threading.Lock()
        self._newest_ms: dict[str, int] = {}  # window_start of the window the gauges show
        self._features: dict[str, set[str]] = {}

    def observe_messages(self, stream_counts: Mapping[str, int]) -> None:
        """Messages of one poll batch, per stream (``{"predictions": 812, ...}``)."""
        for stream, n in stream_counts.items():
            if n:
                self.events.labels(stream).inc(n)

    def observe_dead_letter(self, reason: str) -> None:
        self.dead_letters.labels(reason).inc()

    def observe_eviction(self, kind: str, n: int = 1) -> None:
        """``n`` features or labels (``kind``) given up unmatched."""
        if n:
            self.evictions.labels(kind).inc(n)

    def observe_window(self, line: Mapping[str, Any]) -> None:
        """Count a contract window line; the gauges follow the model's newest window.

        A revision of an older window is counted but leaves the gauges alone.
        """
        model = str(line["model"])
        first = int(line.get("revision", 0)) == 0
        (self.windows if first else self.revisions).labels(model).inc()
        start_ms = parse_timestamp_ms(line["window_start"])
        features = {str(name): _number(v.get("score")) for name, v in line["features"].items()}
        with self._lock:
            if start_ms < self._newest_ms.get(model, start_ms):
                return
            self._newest_ms[model] = start_ms
            self.health.labels(model).set(_number(line.get("health_score")))
            self.drift_detected.labels(model).set(1.0 if line.get("drift_detected") else 0.0)
            for name, score in features.items():
                self.feature_drift.labels(model, name).set(score)
            for gone in self._features.get(model, set()) - features.keys():
                self.feature_drift.remove(model, gone)  # dropped by a re-baselined profile
            self._features[model] = set(features)

    def observe_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic, str(partition)).set(lag)

    def observe_delivery(self, outcome: str, n: int = 1) -> None:
        """``outcome``: delivered, retried or gave_up (``DeliveryStats`` fields)."""
        if n:
            self.deliveries.labels(outcome).inc(n)

    def observe_retrain(self, outcome: str) -> None:
        """``outcome``: succeeded, failed, or promoted (counted besides succeeded)."""
        self.retrains.labels(outcome).inc()

    def observe_commit(self, seconds: float) -> None:
        self.commit_seconds.observe(seconds)

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)

    def negotiate(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format an ``Accept`` header asks for, and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def _number(value: object) -> float:
    """A score from a line as a gauge value; null (not computable) is NaN."""
    return float(value) if isinstance(value, int | float) else math.nan
