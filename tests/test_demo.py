"""`make demo`, shortened: the whole loop runs unattended, and nothing it started outlives it.

Every process the demo starts inherits a marker in its environment, so the tests can find
any survivor (broker, MLflow server and workers, daemon, retrain child) after it exits.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from monitor.config import StoreSettings
from monitor.store import open_store, queries

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[1]
MARKER = "DRIFTLINE_DEMO_TEST_RUN"


def start_demo(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    marker = uuid.uuid4().hex
    env = {**os.environ, "DEMO_EVENTS": "3000", "DEMO_DIR": str(workdir), MARKER: marker}
    env.pop("DEMO_KEEP", None)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py")], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return process, marker


def survivors(marker: str) -> list[str]:
    """Live processes (zombies count as gone) whose environment carries ``marker``:
    ``"<pid>: <command line>"``."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if needle in environ and state != "Z":
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ports_named(narration: str) -> set[int]:
    return {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", narration)}


def test_the_shortened_demo_shows_the_whole_loop_and_stops_everything(tmp_path: Path) -> None:
    process, marker = start_demo(tmp_path / "demo")
    out, _ = process.communicate(timeout=540)
    assert process.returncode == 0, out[-5000:]

    assert "Kafka is up at 127.0.0.1:" in out
    assert "MLflow is up; its UI: http://127.0.0.1:" in out
    assert "registered it in MLflow as models:/cancer@champion (version 1)" in out
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/", out)
    assert re.search(r"window \d+ scored: .*model version 1: .*no drift", out)
    assert re.search(r"window \d+ scored: .*model version 1: .*DRIFT in", out)
    assert "webhook received (signature verified): drift alert firing" in out
    assert "retrain started" in out
    assert "challenger registered as version 2" in out
    assert "promoted: version 2 is the champion now" in out
    assert "re-baselined: the daemon scores new windows against version 2's reference" in out
    assert "now serving version 2" in out
    assert "recovered: all 4 windows since the promotion show no drift" in out
    assert re.search(r"done in \d+ s: 12 windows scored.*everything stopped", out)

    with open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'demo' / 'driftline.db'}")) as store:
        (run,) = queries.retrains(store, "cancer")
        windows = queries.windows(store, "cancer", limit=100)
    assert run["status"] == "succeeded"
    assert run["promoted"] is True
    assert run["registered_version"] == "2"
    after = [w for w in windows if w["model_version"] == "2"]
    assert len(after) == 4
    assert not any(w["drift_detected"] for w in after)

    assert survivors(marker) == []
    assert [port for port in ports_named(out) if listening(port)] == []


def test_ctrl_c_mid_run_stops_everything_and_exits_130(tmp_path: Path) -> None:
    process, marker = start_demo(tmp_path / "demo")
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # until the daemon's retrain child runs: the most to stop
        seen.append(line)
        if "retrain started" in line:
            process.send_signal(signal.SIGINT)
            break
    rest, _ = process.communicate(timeout=300)
    out = "".join(seen) + rest
    assert "retrain started" in out, out[-5000:]
    assert process.returncode == 130, out[-5000:]
    assert "interrupted: stopping everything the demo started" in out
    assert "done in" not in out

    assert survivors(marker) == []
    assert [port for port in ports_named(out) if listening(port)] == []


def test_a_failure_mid_run_stops_everything_and_exits_1(tmp_path: Path) -> None:
    process, marker = start_demo(tmp_path / "demo")
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # the daemon dies while the app logs drifted traffic
        seen.append(line)
        if "phase 2" in line:
            (daemon,) = [int(p.split(":")[0]) for p in survivors(marker)
                         if "monitor.cli" in p and " run " in p]
            os.kill(daemon, signal.SIGKILL)
            break
    rest, _ = process.communicate(timeout=300)
    out = "".join(seen) + rest
    assert process.returncode == 1, out[-5000:]
    assert "failed: the daemon exited with code -9" in out

    assert survivors(marker) == []
    assert [port for port in ports_named(out) if listening(port)] == []
