"""A real Kafka broker for tests: started by ``scripts/kafka``, managed with kafka-python.

Usage::

    broker = start_broker(tmp_path)  # a fresh single-node broker on 127.0.0.1
    broker.create_topics(["t.predictions"], partitions=2)  # returns once they have leaders
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    broker.stop()
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError

__all__ = ["KAFKA_SCRIPT", "MAX_MESSAGE_BYTES", "Broker", "BrokerStartError", "start_broker"]

KAFKA_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka"
# The broker's message.max.bytes (scripts/kafka_broker.py). A producer must also raise its
# own limit, `max_request_size` (default 1 MiB), to send anything near this size.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
START_TIMEOUT_S = 180.0
TOPIC_TIMEOUT_S = 30.0


class BrokerStartError(RuntimeError):
    """``scripts/kafka start`` failed; the message carries the broker's log tail."""


class Broker:
    """A running broker: its bootstrap address, an admin client, and a way to stop it."""

    def __init__(self, bootstrap: str, workdir: Path) -> None:
        self.bootstrap = bootstrap
        self.workdir = workdir
        self._admin: KafkaAdminClient | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"Broker(bootstrap={self.bootstrap!r}, workdir={str(self.workdir)!r})"

    @property
    def admin(self) -> KafkaAdminClient:
        """One admin client per broker, created on first use and closed by ``stop()``."""
        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, client_id="driftline-tests"
            )
        return self._admin

    def create_topics(
        self, names: Iterable[str], partitions: int = 1, timeout_s: float = TOPIC_TIMEOUT_S
    ) -> list[str]:
        """Create topics and wait until every partition has a leader; return the names."""
        names = list(names)
        self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names],
            timeout_ms=int(timeout_s * 1000),
        )
        self._wait(lambda: self._all_led(names, partitions), timeout_s, f"leaders for {names}")
        return names

    def delete_topics(
        self, names: Iterable[str], timeout_s: float = TOPIC_TIMEOUT_S, wait: bool = True
    ) -> None:
        """Delete topics; with ``wait``, return only once the broker no longer lists them."""
        names = list(names)
        if not names:
            return
        self.admin.delete_topics(names, timeout_ms=int(timeout_s * 1000))
        if wait:
            self._wait(
                lambda: not set(names) & set(self.admin.list_topics()),
                timeout_s,
                f"deletion of {names}",
            )

    def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after 15 s); safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        if self._admin is not None:
            with contextlib.suppress(KafkaError):  # the broker goes away next anyway
                self._admin.close()
            self._admin = None
        subprocess.run(
            [str(KAFKA_SCRIPT), "stop", "--dir", str(self.workdir)],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _all_led(self, names: list[str], partitions: int) -> bool:
        try:
            described = self.admin.describe_topics(names)
        except KafkaError:
            return False
        ready = {
            topic["topic"]
            for topic in described
            if topic["error_code"] == 0
            and len(topic["partitions"]) == partitions
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in topic["partitions"])
        }
        return ready == set(names)

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {timeout_s:.0f} s")
            time.sleep(0.1)


def start_broker(workdir: Path, timeout_s: float = START_TIMEOUT_S) -> Broker:
    """Run ``scripts/kafka start --dir workdir`` and return the ready broker.

    The first call on a machine fetches the jars with Maven (cached in .kafka/libs and
    ~/.m2); after that a start takes a few seconds.
    """
    command = [str(KAFKA_SCRIPT), "start", "--dir", str(workdir), "--timeout", str(timeout_s)]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s + 600,  # plus time for a first Maven fetch
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        Broker("", workdir).stop()  # a broker may be up without having been reported
        raise BrokerStartError(f"scripts/kafka start --dir {workdir} hung") from err
    prefix = "KAFKA_BOOTSTRAP="
    lines = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode != 0 or not lines:
        raise BrokerStartError(
            f"scripts/kafka start --dir {workdir} failed (exit {done.returncode}):\n"
            f"{done.stderr}{done.stdout}"
        )
    return Broker(lines[-1].removeprefix(prefix), workdir)
