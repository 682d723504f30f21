"""`make demo`, shortened: it runs to the end unattended and narrates the drift."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[1]


def test_the_shortened_demo_runs_to_the_end_and_shows_the_drift() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        env={**os.environ, "DEMO_EVENTS": "3000"}, capture_output=True, text=True,
        timeout=600, check=False)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "Kafka is up at 127.0.0.1:" in out
    assert "no drift" in out  # the healthy first half
    assert "DRIFT in" in out  # the drifted second half
    assert "summary: 3000 predictions" in out
