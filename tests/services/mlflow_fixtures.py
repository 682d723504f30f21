"""Pytest fixture of a real MLflow tracking server (``tests/services/mlflow_server.py``).

Load it with ``pytest_plugins = ["tests.services.mlflow_fixtures"]``:

    def test_registers(mlflow_server):
        client = MlflowClient(tracking_uri=mlflow_server.uri)
        ...

The server starts once per session, only when a test first asks for it, and is always
stopped at the end. Every test shares it: use a fresh registered-model name per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.services.mlflow_server import QUIET_MLFLOW_ENV, MlflowServer, start_mlflow

__all__ = ["mlflow_server"]

for _name, _value in QUIET_MLFLOW_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real ``mlflow server`` on 127.0.0.1 for the whole session, stopped at its end."""
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.stop()
