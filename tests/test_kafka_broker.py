"""The real broker that scripts/kafka starts works with the pinned kafka-python (2.3.3)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import MessageSizeTooLargeError

from tests.services.kafka_broker import MAX_MESSAGE_BYTES

# Loads kafka_broker/kafka_topics even without tests/conftest.py; a plugin registers once,
# so this shares the session's broker with a conftest that loads the same module.
pytestmark = pytest.mark.kafka

CONSUME_TIMEOUT_S = 60.0
# An oversized message as the daemon must see it to route it to the DLQ (`too_large`):
# above its default 1 MiB limit, below the broker's message.max.bytes.
BIG_MESSAGE_BYTES = 1536 * 1024


def _consume(consumer: KafkaConsumer, count: int) -> list:
    """Poll until `count` records arrived (or fail after CONSUME_TIMEOUT_S)."""
    records: list = []
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    while len(records) < count:
        assert time.monotonic() < deadline, f"got {len(records)} of {count} records"
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def _consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


class TestKeyedRoundTrip:
    def test_a_consumer_group_reads_back_every_keyed_message_in_key_order(
        self, kafka_broker, kafka_topics
    ):
        topic = kafka_topics("events", partitions=2)["events"]
        sent = [(f"model-{i % 37}".encode(), json.dumps({"i": i}).encode()) for i in range(1000)]
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
        try:
            for key, value in sent:
                producer.send(topic, key=key, value=value)
            producer.flush(timeout=30)
        finally:
            producer.close()

        consumer = _consumer(kafka_broker.bootstrap, topic)
        try:
            records = _consume(consumer, len(sent))
            consumer.commit()
            partitions = [TopicPartition(topic, p) for p in (0, 1)]
            committed = sum(consumer.committed(tp) for tp in partitions)
            ends = consumer.end_offsets(partitions)
        finally:
            consumer.close()

        assert sorted((r.key, r.value) for r in records) == sorted(sent)
        assert {r.partition for r in records} == {0, 1}
        partition_of_key = defaultdict(set)
        by_key = defaultdict(list)
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            partition_of_key[record.key].add(record.partition)
            by_key[record.key].append(record.value)
        assert all(len(parts) == 1 for parts in partition_of_key.values())
        expected_by_key = defaultdict(list)
        for key, value in sent:
            expected_by_key[key].append(value)
        assert by_key == expected_by_key  # per key, the order it was produced in
        assert committed == sum(ends.values()) == len(sent)


class TestOversizedMessages:
    def test_a_1_5_mib_message_round_trips_with_a_raised_max_request_size(
        self, kafka_broker, kafka_topics
    ):
        topic = kafka_topics("big")["big"]
        value = os.urandom(BIG_MESSAGE_BYTES)
        # kafka-python refuses records over max_request_size (default 1 MiB) before sending.
        producer = KafkaProducer(
            bootstrap_servers=kafka_broker.bootstrap, max_request_size=MAX_MESSAGE_BYTES
        )
        try:
            metadata = producer.send(topic, key=b"big", value=value).get(timeout=30)
        finally:
            producer.close()

        consumer = _consumer(kafka_broker.bootstrap, topic)
        try:
            [record] = _consume(consumer, 1)
        finally:
            consumer.close()
        assert (record.offset, record.key, record.value) == (metadata.offset, b"big", value)

    def test_the_default_producer_refuses_it(self, kafka_broker, kafka_topics):
        topic = kafka_topics("big")["big"]
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        try:
            future = producer.send(topic, value=bytes(BIG_MESSAGE_BYTES))
            with pytest.raises(MessageSizeTooLargeError):
                future.get(timeout=30)
        finally:
            producer.close()
