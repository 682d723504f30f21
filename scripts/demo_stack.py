"""What ``make demo`` starts, and stopping all of it, always.

A Kafka broker (``scripts/kafka``), an MLflow tracking server and a webhook receiver (the
real services the tests use, ``tests/services/``), and ``driftline run``. ``Stack.stop()``
stops whatever was started, in reverse dependency order, each step on its own so one
failure does not leave the rest running. The daemon runs in its own session: a Ctrl-C in
the terminal reaches only the demo, which then stops the daemon, and any retrain child
still in the daemon's process group is killed with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from kafka.admin import KafkaAdminClient, NewTopic

from tests.services.mlflow_server import MlflowServer, free_port, start_mlflow
from tests.services.webhook_receiver import Receiver

__all__ = ["ROOT", "DemoError", "Stack"]

ROOT = Path(__file__).resolve().parents[1]
KAFKA = ROOT / "scripts" / "kafka"
DAEMON_READY_TIMEOUT_S = 120.0
DAEMON_STOP_TIMEOUT_S = 30.0  # it lets a running retrain finish its step for 10 s


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what failed and where its log is."""


class Stack:
    """The services of one demo run in ``workdir``; ``stop()`` ends all that was started."""

    def __init__(self, workdir: Path, say: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.say = say
        self.http_port = free_port()
        self.bootstrap: str | None = None
        self.mlflow: MlflowServer | None = None
        self.receiver: Receiver | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.daemon_log = workdir / "daemon.log"
        self._kafka_started = False

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start_kafka(self) -> str:
        self._kafka_started = True  # set first: an interrupted start may leave a broker
        done = subprocess.run([str(KAFKA), "start", "--dir", str(self.workdir / "kafka")],
                              check=False, capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if done.returncode == 0 and line.startswith("KAFKA_BOOTSTRAP="):
                self.bootstrap = line.split("=", 1)[1]
                self._create_topics(self.bootstrap)
                return self.bootstrap
        raise DemoError(f"scripts/kafka start failed ({done.returncode}): "
                        f"{done.stdout[-2000:]}{done.stderr[-2000:]}")

    @staticmethod
    def _create_topics(bootstrap: str) -> None:
        """The three streams and their dead-letter topics, one partition each."""
        streams = [f"driftline.{s}" for s in ("predictions", "features", "labels")]
        topics = streams + [f"{t}.dlq" for t in streams]
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(t, 1, 1) for t in topics])
        finally:
            admin.close()

    def stop_stale_kafka(self) -> None:
        """A broker an earlier, killed run left in ``workdir``: stopped before it is wiped."""
        self._kafka_started = True
        self._stop_kafka()

    def start_mlflow(self) -> MlflowServer:
        self.mlflow = start_mlflow(self.workdir / "mlflow")
        return self.mlflow

    def start_receiver(self, secret: str) -> Receiver:
        self.receiver = Receiver(secret)
        self.receiver.start()
        return self.receiver

    def start_daemon(self, config: Path, env: dict[str, str]) -> None:
        """``driftline run`` in its own session; returns once ``/readyz`` answers 200."""
        with self.daemon_log.open("wb") as log:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "--log-level", "info", "run",
                 "--config", str(config), "--cache-dir", str(self.workdir / "cache")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + DAEMON_READY_TIMEOUT_S
        with httpx.Client(base_url=self.api, timeout=2.0) as client:
            while time.monotonic() < deadline:
                self.check_daemon()
                with contextlib.suppress(httpx.HTTPError):
                    if client.get("/readyz").status_code == 200:
                        return
                time.sleep(0.3)
        raise DemoError(f"the daemon was not ready within {DAEMON_READY_TIMEOUT_S:.0f} s; "
                        f"see {self.daemon_log}:\n{self.daemon_tail()}")

    def check_daemon(self) -> None:
        """Raise ``DemoError`` when the daemon has exited."""
        died = self.daemon_died()
        if died is not None:
            raise DemoError(died)

    def daemon_died(self, grace_s: float = 0.0) -> str | None:
        """Why the daemon is gone (its exit code and log tail), or None while it runs;
        ``grace_s``: how long a daemon that is just exiting may take to be gone."""
        if self.daemon is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.daemon.wait(timeout=grace_s)
        if self.daemon.poll() is None:
            return None
        return (f"the daemon exited with code {self.daemon.returncode}; see "
                f"{self.daemon_log}:\n{self.daemon_tail()}")

    def daemon_tail(self, lines: int = 25) -> str:
        try:
            text = self.daemon_log.read_text(errors="replace")
        except OSError:
            return "(no daemon log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop everything started, each step even if an earlier one failed."""
        steps = [("the daemon", self._stop_daemon), ("the MLflow server", self._stop_mlflow),
                 ("the webhook receiver", self._stop_receiver), ("Kafka", self._stop_kafka)]
        for name, step in steps:
            try:
                step()
            except Exception as err:  # keep going: the next service must still stop
                self.say(f"could not stop {name}: {type(err).__name__}: {err}")

    def _stop_daemon(self) -> None:
        daemon, self.daemon = self.daemon, None
        if daemon is None:
            return
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)  # graceful: finish the batch and commit
            try:
                daemon.wait(timeout=DAEMON_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.say("the daemon did not stop in time; killing it")
        # its group: the daemon itself if it hung, and any retrain child it left
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()

    def _stop_mlflow(self) -> None:
        server, self.mlflow = self.mlflow, None
        if server is not None:
            server.stop()

    def _stop_receiver(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.stop()

    def _stop_kafka(self) -> None:
        if self._kafka_started:
            self._kafka_started = False
            subprocess.run([str(KAFKA), "stop", "--dir", str(self.workdir / "kafka")],
                           check=False, capture_output=True)
