"""Event timestamps (RFC 3339 or epoch milliseconds) and ``15m``-style durations.

``parse_timestamp_ms`` runs once per event, so it stays a single C-level parse plus one
integer division; the schema's pattern has already checked the RFC 3339 shape.

>>> parse_timestamp_ms("2026-01-01T00:15:00Z")
1767226500000
>>> format_rfc3339_ms(1767226500123)
'2026-01-01T00:15:00.123Z'
>>> parse_duration("1h30m", key="window.duration")
5400.0
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from monitor.errors import ConfigError

__all__ = ["format_rfc3339_ms", "parse_duration", "parse_timestamp_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # only ever formatted, as UTC
_ONE_MS = timedelta(milliseconds=1)
_fromisoformat = datetime.fromisoformat

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+|[0-9]+(?:\.[0-9]+)?")


def parse_duration(value: str | float, *, key: str) -> float:
    """Seconds in a duration like ``500ms``, ``30s``, ``15m``, ``2h``, ``7d`` or ``1h30m``.

    A plain number (or numeric string) means seconds. ``key`` names the config key in
    the ``ConfigError`` raised for anything else.
    """
    if isinstance(value, bool):
        pass  # YAML's yes/no are booleans, never durations
    elif isinstance(value, int | float):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value):
        parts = _DURATION_PART.findall(value)
        if not parts:
            return float(value)
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    raise ConfigError(
        f"{key}: invalid duration {value!r}; use a number with a unit "
        "(500ms, 30s, 15m, 2h, 7d, or combined like 1h30m) or a number of seconds"
    )


def parse_timestamp_ms(value: object) -> int:
    """Epoch milliseconds of an event timestamp.

    Accepts an RFC 3339 string with a UTC offset (``Z`` or ``+hh:mm``; fractions below a
    millisecond are truncated) or integer epoch milliseconds (an integral float counts).
    Raises ``ValueError`` for a string without offset, an impossible date, or any other type.
    """
    if type(value) is str:
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            parsed = _parse_unusual(value)
        if parsed.tzinfo is None:
            raise ValueError(
                f"timestamp {value!r} has no UTC offset; add 'Z' or '+hh:mm' (RFC 3339)"
            )
        return (parsed - _EPOCH) // _ONE_MS
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    raise ValueError(
        f"timestamp {value!r} is neither an RFC 3339 string with offset "
        "nor integer epoch milliseconds"
    )


def _parse_unusual(value: str) -> datetime:
    # RFC 3339 allows lower-case 't' and 'z', which datetime.fromisoformat rejects.
    try:
        return _fromisoformat(value.upper())
    except ValueError as err:
        raise ValueError(f"invalid timestamp {value!r}: {err}") from None


def format_rfc3339_ms(ms: int) -> str:
    """The RFC 3339 UTC form of epoch milliseconds, with a fraction only when non-zero."""
    seconds, millis = divmod(int(ms), 1000)
    text = (_EPOCH_NAIVE + timedelta(seconds=seconds)).isoformat()
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
