"""Timestamps in the store: timezone-aware UTC datetimes on both backends.

Every timestamp column is :class:`UtcDateTime`: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL,
ISO text on SQLite (which has no time zone; values are stored converted to UTC, so text
order is time order). Naive datetimes are refused rather than guessed at. Reading gives
aware UTC datetimes either way.

>>> rfc3339(parse_rfc3339("2026-01-01T01:00:00+01:00"))
'2026-01-01T00:00:00Z'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from monitor.timeparse import parse_timestamp_ms

__all__ = ["UtcDateTime", "as_utc", "parse_rfc3339", "rfc3339", "utc_now"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and always returns aware UTC values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite, when read through a raw text() query
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is an error (its zone is unknown)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timestamp {value.isoformat()} has no time zone; give an aware datetime")
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The default clock of the store."""
    return datetime.now(UTC)


def parse_rfc3339(value: str | int | datetime) -> datetime:
    """An aware UTC datetime from an RFC 3339 string, epoch milliseconds or a datetime."""
    if isinstance(value, datetime):
        return as_utc(value)
    return _EPOCH + timedelta(milliseconds=parse_timestamp_ms(value))


def rfc3339(value: datetime | None) -> str | None:
    """The RFC 3339 UTC form (``...Z``), milliseconds only when non-zero."""
    if value is None:
        return None
    value = as_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond // 1000:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"
