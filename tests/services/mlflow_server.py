"""A real MLflow tracking server for tests: ``mlflow server`` on 127.0.0.1, SQLite backend.

Usage::

    server = start_mlflow(tmp_path)   # a fresh server on a free loopback port
    server.uri                        # http://127.0.0.1:<port>
    server.stop()                     # kills the server's whole process group

The server stores runs and the model registry in ``<workdir>/mlflow.db`` and serves
artifacts itself (``--serve-artifacts``), writing them under ``<workdir>/artifacts``, so
clients need no access to the server's disk. One worker keeps it light on small machines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["QUIET_MLFLOW_ENV", "MlflowServer", "MlflowStartError", "free_port", "start_mlflow"]

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
# No telemetry and no fetching of the remote model catalog: tests talk to loopback only.
QUIET_MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_MODEL_CATALOG_URI": "",
}
# The server's background job runner (a pool of huey consumers) serves GenAI features the
# tests never use; without it the server starts faster and holds one process, not ten.
SERVER_ONLY_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class MlflowStartError(RuntimeError):
    """The server did not answer ``/health`` in time; the message carries its log tail."""


class MlflowServer:
    """A running server: its ``uri``, its log file, and how to stop it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.process = process
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / "server.log"

    def __repr__(self) -> str:
        return f"MlflowServer(uri={self.uri!r}, pid={self.process.pid})"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=timeout_s) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the process group (uvicorn and its worker), SIGKILL it if it lingers."""
        if self.process.poll() is not None and not _group_alive(self.process.pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_S)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mlflow(workdir: Path, timeout_s: float = START_TIMEOUT_S) -> MlflowServer:
    """Start ``mlflow server`` in ``workdir`` and return it once ``/health`` answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination", str(workdir / "artifacts"),
    ]  # fmt: skip
    env = {**os.environ, **QUIET_MLFLOW_ENV, **SERVER_ONLY_ENV}
    with (workdir / "server.log").open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills the workers too
        )
    server = MlflowServer(process, port, workdir)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise MlflowStartError(
                    f"mlflow server exited with {process.returncode}:\n{server.log_tail()}"
                )
            if server.healthy():
                return server
            time.sleep(0.25)
        raise MlflowStartError(
            f"mlflow server did not answer {server.uri}/health within {timeout_s:.0f} s:\n"
            f"{server.log_tail()}"
        )
    except BaseException:
        server.stop()
        raise
