"""``driftline run``: the Kafka source and sinks around the shared pipeline.

One consumer group over the three topics, batched polling, and offsets committed only
after the effect of every message below them is out of the process: dead letters are
acknowledged by the broker, windows containing the messages are closed and written.
Offsets are held back to the lowest message still in an open window or waiting in the
join, so a crash (even SIGKILL) replays those messages after restart and skips none.

Delivery today is at least once: after a SIGKILL, messages after the committed offset
that had already been written as part of a closed window are counted again. Exactly-once
comes with the store (window state and offsets in one transaction).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError as KafkaLibError
from kafka.structs import OffsetAndMetadata

from monitor.config import Config
from monitor.errors import KafkaError
from monitor.ingest.ordering import TimestampMerge
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles

__all__ = ["DaemonStats", "dlq_headers", "run_daemon"]

log = structlog.get_logger("driftline.daemon")

PRODUCER_MAX_REQUEST = 16 * 1024 * 1024  # DLQ copies of oversized messages must fit
COMMIT_INTERVAL_S = 1.0  # a commit scans the join's pending entries: not per poll
ORDER_WAIT_S = 2.0  # how long records wait for a lagging partition before going on


def dlq_headers(message: Message, reason: str, detail: str) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why, and where the original came from."""
    return [
        *message.headers,
        ("driftline.error", reason.encode()),
        ("driftline.error.detail", detail.encode()[:4096]),
        ("driftline.source.topic", message.topic.encode()),
        ("driftline.source.partition", str(message.partition).encode()),
        ("driftline.source.offset", str(message.offset).encode()),
    ]


class DaemonStats:
    """What the daemon did, for logs and tests (Prometheus metrics come later)."""

    def __init__(self) -> None:
        self.consumed = 0
        self.dead_letters = 0
        self.windows = 0
        self.commits = 0
        self.first_message_at = 0.0  # time.monotonic() of the first and last poll with data
        self.last_message_at = 0.0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread; the caller owns `stop`
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _clients(config: Config) -> tuple[KafkaConsumer, KafkaProducer]:
    kafka = config.kafka
    common: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "client_id": kafka.client_id,
        **kafka.security,
    }
    topics = kafka.topics
    try:
        consumer = KafkaConsumer(
            topics.predictions, topics.features, topics.labels,
            group_id=kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=kafka.poll_max_records,
            **common,
        )
        producer = KafkaProducer(
            acks="all",
            linger_ms=5,
            max_request_size=max(PRODUCER_MAX_REQUEST, 2 * kafka.max_message_bytes),
            **common,
        )
    except KafkaLibError as err:
        raise KafkaError(
            f"cannot connect to Kafka at {kafka.bootstrap_servers}: {err}; check "
            "kafka.bootstrap_servers and kafka.security in the config"
        ) from err
    return consumer, producer


def run_daemon(
    config: Config,
    *,
    cache_dir: Path,
    output: Path | None = None,
    max_idle_s: float | None = None,
    stop: threading.Event | None = None,
) -> DaemonStats:
    """Consume until stopped (signal, ``stop`` event, or ``max_idle_s`` without messages).

    When stopped for idleness, open windows are closed and written first (backfills,
    demos, tests); on a signal they stay open, their offsets uncommitted, and the next
    start rebuilds them.
    """
    stop = stop or threading.Event()
    stats = DaemonStats()
    profiles = load_profiles(config, cache_dir)
    consumer, producer = _clients(config)
    sink = output.open("ab") if output is not None else None
    failures: list[BaseException] = []

    def on_window(line: dict[str, Any]) -> None:
        stats.windows += 1
        log.info("window", model=line["model"], window_start=line["window_start"],
                 revision=line["revision"], n=line["n_predictions"],
                 drift=line.get("drift_detected"), health=line.get("health_score"))
        if sink is not None:
            sink.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))

    def on_dead_letter(message: Message, reason: str, detail: str) -> None:
        stats.dead_letters += 1
        future = producer.send(f"{message.topic}.dlq", value=message.value, key=message.key,
                               headers=dlq_headers(message, reason, detail))
        future.add_errback(failures.append)

    pipeline = Pipeline(config, profiles, on_window, on_dead_letter)
    streams = {t: config.kafka.topics.stream_of(t) for t in
               (config.kafka.topics.predictions, config.kafka.topics.features,
                config.kafka.topics.labels)}
    next_offsets: dict[tuple[str, int], int] = {}

    def commit() -> None:
        producer.flush()
        if failures:
            raise KafkaError(f"a dead letter could not be written: {failures[0]}; "
                             "offsets were not committed, nothing is lost")
        if sink is not None:
            sink.flush()
        low = pipeline.low_offsets()
        offsets = {
            TopicPartition(topic, partition): OffsetAndMetadata(
                min(low.get((topic, partition), end), end), "", -1)
            for (topic, partition), end in next_offsets.items()
        }
        if offsets:
            consumer.commit(offsets=offsets)
            stats.commits += 1

    merge: TimestampMerge[TopicPartition] = TimestampMerge()

    def feed(records: list[Any]) -> None:
        if not records:
            return
        messages = [
            Message(streams[r.topic] or "", r.value, r.topic, r.partition, r.offset, r.key,
                    tuple(r.headers or ()))
            for r in records
        ]
        pipeline.process(messages)
        for r in records:
            next_offsets[(r.topic, r.partition)] = r.offset + 1
        stats.consumed += len(records)
        stats.last_message_at = time.monotonic()

    def lagging() -> set[TopicPartition]:
        """Partitions with records on the broker that this consumer has not fetched yet."""
        out = set()
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None and consumer.position(tp) < highwater:
                out.add(tp)
        return out

    log.info("started", bootstrap=config.kafka.bootstrap_servers, group=config.kafka.group_id,
             models=[m.name for m in config.models])
    idle_since = committed_at = time.monotonic()
    uncommitted = False
    try:
        with _stop_on_signals(stop):
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=config.kafka.poll_timeout_ms,
                                      max_records=config.kafka.poll_max_records)
                now = time.monotonic()
                for tp, records in batch.items():
                    merge.add(tp, [(r.offset, r.timestamp, r) for r in records])
                if batch or not consumer.assignment():  # idle counts once partitions are ours
                    idle_since = now
                if batch:
                    stats.first_message_at = stats.first_message_at or now
                    feed(list(merge.drain(lagging())))
                    uncommitted = True
                elif len(merge) and now - idle_since >= ORDER_WAIT_S:
                    feed(list(merge.drain_all()))  # a lagging partition sent nothing: go on
                if uncommitted and (not batch or now - committed_at >= COMMIT_INTERVAL_S):
                    pipeline.emit_revisions()  # a quiet moment, or the interval is up
                    commit()
                    uncommitted, committed_at = False, now
                if not batch and max_idle_s is not None and now - idle_since >= max_idle_s:
                    log.info("idle_stop", idle_s=max_idle_s)
                    feed(list(merge.drain_all()))
                    pipeline.flush()
                    break
            pipeline.emit_revisions()
            commit()
    finally:
        summary = pipeline.summary()
        log.info("stopped", consumed=stats.consumed, lines_written=stats.windows, **summary)
        if sink is not None:
            sink.write(orjson.dumps({"summary": summary}, option=orjson.OPT_APPEND_NEWLINE))
            sink.close()
        timeout = config.kafka.shutdown_timeout_s
        producer.close(timeout=timeout)
        consumer.close(autocommit=False)
    return stats
