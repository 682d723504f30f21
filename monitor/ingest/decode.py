"""Decode and validate one raw message of a stream into an ``Event`` or a ``Rejection``.

The order of checks is the order of cost: size, JSON, non-finite numbers, schema, known
model, timestamp. A rejection carries the DLQ reason (a stable, documented name) and a
detail a person can act on; the raw bytes are never altered.

>>> decoder = Decoder(known_models={"wine"}, max_bytes=1024)
>>> decoder.decode("labels", b'{"schema_version": 1, "event_id": "e1", "model": "wine",'
...                b' "timestamp": 0, "label": 1}').event_id
'e1'
>>> decoder.decode("labels", b'{"oops"').reason
'not_json'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from monitor.schemas import STREAMS, compiled_validator
from monitor.timeparse import parse_timestamp_ms

__all__ = ["REASONS", "Decoder", "Event", "Rejection"]

#: Every reason a message can be dead-lettered for; the DLQ header `driftline.error`.
REASONS = (
    "too_large",  # larger than kafka.max_message_bytes
    "not_json",  # not UTF-8 JSON
    "non_finite",  # NaN, Infinity or a number too large for a double
    "schema_violation",  # fails the stream's JSON Schema (includes impossible timestamps)
    "unknown_model",  # names a model the config does not monitor
    "duplicate_event_id",  # a second prediction with an event_id already seen (pipeline)
)


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event: the decoded body plus the fields every stage needs."""

    stream: str
    model: str
    event_id: str
    ts_ms: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str


class _NonFiniteError(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFiniteError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFiniteError(f"number {text} overflows a double")
    return value


class Decoder:
    """Turns raw message bytes into events; compiled validators are built once."""

    def __init__(self, known_models: Iterable[str], max_bytes: int = 1_048_576) -> None:
        self.known_models = frozenset(known_models)
        self.max_bytes = max_bytes
        self._validators: dict[str, Any] = {
            stream: compiled_validator(stream) for stream in STREAMS
        }

    def decode(self, stream: str, value: bytes | None) -> Event | Rejection:
        if value is None:
            return Rejection("not_json", "empty message (null value, e.g. a tombstone)")
        if len(value) > self.max_bytes:
            return Rejection(
                "too_large", f"{len(value)} bytes is over the limit of {self.max_bytes} bytes"
            )
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError as err:
            return self._explain_json_error(value, err)
        if not isinstance(body, dict):
            return Rejection(
                "schema_violation", f"an event is a JSON object, got {type(body).__name__}"
            )
        validator = self._validators[stream]
        if not validator.is_valid(body):
            return Rejection("schema_violation", _schema_detail(validator, body))
        model = body["model"]
        if model not in self.known_models:
            known = ", ".join(sorted(self.known_models))
            return Rejection("unknown_model", f"model {model!r} is not configured (known: {known})")
        try:
            ts_ms = parse_timestamp_ms(body["timestamp"])
        except ValueError as err:
            return Rejection("schema_violation", f"timestamp: {err}")
        return Event(stream, model, body["event_id"], ts_ms, body)

    @staticmethod
    def _explain_json_error(value: bytes, err: orjson.JSONDecodeError) -> Rejection:
        # orjson refuses NaN/Infinity and overflowing numbers like any other bad JSON; the
        # standard parser tells a non-finite number apart from broken JSON.
        try:
            json.loads(value, parse_constant=_reject_constant, parse_float=_finite_float)
        except _NonFiniteError as non_finite:
            return Rejection("non_finite", str(non_finite))
        except (ValueError, UnicodeDecodeError):
            pass
        else:  # stdlib accepted what orjson refused (e.g. an integer beyond 64 bits)
            return Rejection("schema_violation", f"unsupported JSON number: {err}")
        return Rejection("not_json", f"not UTF-8 JSON: {err}")


def _schema_detail(validator: Any, body: Any) -> str:
    """The first schema error, with its JSON path: ``$.timestamp: "x" does not match ...``."""
    for error in validator.iter_errors(body):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
        return f"${path}: {error.message}"
    return "fails the schema"
