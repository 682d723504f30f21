"""A store on every backend of the `store_url` fixture, with a clock moved by hand.

Registered in tests/conftest.py: tests ask for ``store`` (models "wine" and "iris"
registered) and ``clock``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from monitor.config import StoreSettings
from monitor.store import Store, open_store

__all__ = ["T0", "FrozenClock", "clock", "store"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FrozenClock:
    """The store's clock, moved by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store(store_url: str, clock: FrozenClock) -> Iterator[Store]:
    with open_store(StoreSettings(url=store_url), clock=clock) as opened:
        opened.register_model("wine", "classification")
        opened.register_model("iris", "classification")
        yield opened
