"""Shared fixtures: the real Kafka broker (tests/services) and seeded model files."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

pytest_plugins = [
    "tests.services.fixtures",
    "tests.services.pg_fixtures",
    "tests.services.mlflow_fixtures",
    "tests.services.store_fixtures",
]


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """`driftline` commands run in-process bind structlog to pytest's captured stderr."""
    yield
    structlog.reset_defaults()
