"""Pytest fixtures for the real Kafka broker.

Load them in ``tests/conftest.py`` with ``from tests.services.fixtures import *``
(or ``pytest_plugins = ["tests.services.fixtures"]``):

    @pytest.mark.kafka
    def test_roundtrip(kafka_broker, kafka_topics):
        topics = kafka_topics()               # {"predictions": "t-1a2b3c4d.predictions", ...}
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
        ...

Set ``DRIFTLINE_KAFKA_BOOTSTRAP=host:port`` to run against a broker you started yourself
(for example the ``kafka`` service of docker-compose.yml) instead of starting one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.services.kafka_broker import Broker, start_broker

__all__ = ["DEFAULT_STREAMS", "kafka_broker", "kafka_topics"]

# The contract's three streams and their dead-letter topics (`<topic>.dlq`).
DEFAULT_STREAMS = (
    "predictions",
    "features",
    "labels",
    "predictions.dlq",
    "features.dlq",
    "labels.dlq",
)
EXTERNAL_BOOTSTRAP_ENV = "DRIFTLINE_KAFKA_BOOTSTRAP"


class _ExternalBroker(Broker):
    """A broker this session did not start, and so must not stop."""

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One real single-node broker for the whole test session, stopped at its end."""
    workdir = tmp_path_factory.mktemp("kafka")
    external = os.environ.get(EXTERNAL_BOOTSTRAP_ENV)
    broker = _ExternalBroker(external, workdir) if external else start_broker(workdir)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_topics(kafka_broker: Broker) -> Iterator[Callable[..., dict[str, str]]]:
    """Factory of uniquely named topics for one test, deleted after it.

    ``kafka_topics(*streams, partitions=1)`` creates ``t-<uuid8>.<stream>`` for each
    stream (default: the contract's three streams and their ``.dlq`` topics) and returns
    ``{stream: topic_name}`` once every partition has a leader.
    """
    created: list[str] = []

    def make(*streams: str, partitions: int = 1) -> dict[str, str]:
        prefix = f"t-{uuid.uuid4().hex[:8]}"
        names = {stream: f"{prefix}.{stream}" for stream in streams or DEFAULT_STREAMS}
        kafka_broker.create_topics(names.values(), partitions=partitions)
        created.extend(names.values())
        return names

    yield make
    if created:
        # Keep the shared broker small; no need to wait for the deletion to finish.
        kafka_broker.delete_topics(created, wait=False)
