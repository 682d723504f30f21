"""The Kafka edge of the daemon: clients, dead-letter headers, seeking to stored offsets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError as KafkaLibError

from monitor.config import KafkaSettings
from monitor.errors import KafkaError
from monitor.pipeline import Message

__all__ = ["SeekToStored", "dlq_headers", "make_consumer", "make_producer"]

log = structlog.get_logger("driftline.kafka")

PRODUCER_MAX_REQUEST = 16 * 1024 * 1024  # DLQ copies of oversized messages must fit
FETCH_MAX_BYTES = 50 * 1024 * 1024


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


def _common(kafka: KafkaSettings) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.bootstrap_servers.split(","),
            "client_id": kafka.client_id, **kafka.security}


def _wrap(kafka: KafkaSettings, err: KafkaLibError) -> KafkaError:
    return KafkaError(
        f"cannot connect to Kafka at {kafka.bootstrap_servers}: {err}; check "
        "kafka.bootstrap_servers and kafka.security in the config"
    )


def make_consumer(kafka: KafkaSettings) -> KafkaConsumer:
    """A consumer of the group that never commits by itself (the store holds the offsets)."""
    try:
        return KafkaConsumer(
            group_id=kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=kafka.poll_max_records,
            # kafka-python accepts 1 MB response frames by default but fetches up to 50 MiB:
            # a fetch holding an oversized message would fail forever without this
            receive_message_max_bytes=FETCH_MAX_BYTES + 4 * 1024 * 1024,
            fetch_max_bytes=FETCH_MAX_BYTES,
            **_common(kafka),
        )
    except KafkaLibError as err:
        raise _wrap(kafka, err) from err


def make_producer(kafka: KafkaSettings) -> KafkaProducer:
    try:
        return KafkaProducer(
            acks="all",
            linger_ms=5,
            max_request_size=max(PRODUCER_MAX_REQUEST, 2 * kafka.max_message_bytes),
            **_common(kafka),
        )
    except KafkaLibError as err:
        raise _wrap(kafka, err) from err


class SeekToStored(ConsumerRebalanceListener):
    """On every assignment, position each partition at the offset saved in the store.

    The store's offsets were written in the same transaction as the pipeline state that
    includes every message below them; Kafka's own committed offsets are only for lag
    tooling. A partition the store does not know starts from Kafka's committed offset,
    else from the beginning.
    """

    def __init__(self, consumer: KafkaConsumer,
                 stored: Callable[[], dict[tuple[str, int], int]],
                 on_revoked: Callable[[], None],
                 on_assigned: Callable[[list[TopicPartition]], None]) -> None:
        """``on_revoked`` commits what the process did; ``on_assigned`` loads the state of
        the new assignment (before the partitions are positioned)."""
        self.consumer = consumer
        self.stored = stored
        self.on_revoked = on_revoked
        self.on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:
            self.on_revoked()

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.on_assigned(assigned)
        offsets = self.stored()
        for tp in assigned:
            offset = offsets.get((tp.topic, tp.partition))
            if offset is not None:
                self.consumer.seek(tp, offset)
        log.info("assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
