"""Log predictions, features and labels from the serving app to driftline's streams.

A thin layer on kafka-python. Each call builds one event of the contract (section 1),
checks it against the stream's JSON Schema and hands it to the producer's background
batching (``linger_ms``, 20 ms by default): an invalid event raises ``EventError`` (a
``ValueError``) at the call site, a valid one costs no network round trip. Delivery
failures are collected and raised by ``flush()`` as ``KafkaError``.

Example::

    from monitor.producer import PredictionLogger

    with PredictionLogger("127.0.0.1:9092", model="wine", model_version="3") as logger:
        event_id = logger.log_prediction(1, features={"alcohol": 13.2, "color": "red"},
                                         probabilities=0.83)
        logger.log_label(event_id, 0)  # later, once the truth is known
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any, Self

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError as KafkaLibError

from monitor.errors import ConfigError, EventError, KafkaError
from monitor.schemas import STREAMS, compiled_validator, load_schema
from monitor.timeparse import parse_timestamp_ms

__all__ = ["DEFAULT_TOPICS", "PredictionLogger"]

DEFAULT_TOPICS: Mapping[str, str] = MappingProxyType({s: f"driftline.{s}" for s in STREAMS})
_TIMESTAMP = load_schema("predictions")["$defs"]["timestamp"]
_RFC3339 = re.compile(_TIMESTAMP["pattern"])
_MAX_MS = _TIMESTAMP["maximum"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY  # numpy scalars straight from model outputs
_ALWAYS_FINITE = frozenset({str, int, bool, type(None)})
Timestamp = int | str | datetime  # epoch ms, RFC 3339 with offset, or an aware datetime


class PredictionLogger:
    """Sends contract-valid events of one model to Kafka; not blocking, batched.

    ``topics`` maps stream names (``predictions``, ``features``, ``labels``) to topics
    and defaults to ``DEFAULT_TOPICS``. Extra keyword arguments are kafka-python
    ``KafkaProducer`` settings. A ``producer`` passed in is used as is (and left open by
    ``close()``). ``max_event_bytes`` is the daemon's ``kafka.max_message_bytes``.
    """

    def __init__(
        self, bootstrap_servers: str | Sequence[str] = "127.0.0.1:9092", *, model: str,
        model_version: str | None = None, topics: Mapping[str, str] | None = None,
        producer: KafkaProducer | None = None, clock: Callable[[], float] = time.time,
        max_event_bytes: int = 1_048_576, **kafka_config: Any,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model: expected the monitored model's name, got {model!r}")
        if model_version is not None and not isinstance(model_version, str):
            raise ConfigError(f"model_version: expected a string or None, got {model_version!r}")
        unknown = sorted(set(topics or {}) - set(STREAMS))
        if unknown:
            allowed = ", ".join(STREAMS)
            raise ConfigError(f"topics: unknown stream {unknown[0]!r}; allowed: {allowed}")
        self.model, self.model_version, self.max_event_bytes = model, model_version, max_event_bytes
        self.topics: dict[str, str] = {**DEFAULT_TOPICS, **(topics or {})}
        self._clock = clock
        self._owns_producer = producer is None
        self._producer = _connect(bootstrap_servers, kafka_config) if producer is None else producer
        self._validators = {stream: compiled_validator(stream) for stream in STREAMS}
        self._lock = threading.Lock()  # errbacks run on kafka-python's sender thread
        self._failed = 0
        self._first_failure: tuple[str, BaseException] | None = None
        self._closed = False

    def log_prediction(
        self, prediction: Any, *, features: Mapping[str, Any] | None = None,
        probabilities: Mapping[Any, float] | float | None = None, event_id: str | None = None,
        timestamp: Timestamp | None = None, model_version: str | None = None,
    ) -> str:
        """Send one prediction (features inline if given) and return its ``event_id``."""
        event = self._event(uuid.uuid4().hex if event_id is None else event_id, timestamp)
        event["prediction"] = prediction
        version = self.model_version if model_version is None else model_version
        if version is not None:
            event["model_version"] = version
        if probabilities is not None:
            event["probabilities"] = _probabilities(probabilities)
        if features is not None:
            event["features"] = _features(features)
        self._send("predictions", event)
        return event["event_id"]

    def log_features(
        self, event_id: str, features: Mapping[str, Any], *, timestamp: Timestamp | None = None
    ) -> None:
        """Send the features of prediction ``event_id``, logged apart from it."""
        event = self._event(event_id, timestamp)
        self._send("features", {**event, "features": _features(features)})

    def log_label(self, event_id: str, label: Any, *, timestamp: Timestamp | None = None) -> None:
        """Send the ground truth of prediction ``event_id``; ``timestamp``: when it was known."""
        self._send("labels", {**self._event(event_id, timestamp), "label": label})

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every event is sent; raise ``KafkaError`` if any failed since last time."""
        if not self._closed:
            try:
                self._producer.flush(timeout=timeout_s)
            except KafkaLibError as err:
                raise KafkaError(f"events unsent after {timeout_s} s: {err}; is Kafka up?") from err
        with self._lock:
            failed, first = self._failed, self._first_failure
            self._failed, self._first_failure = 0, None
        if first is not None:
            where, cause = first
            raise KafkaError(f"{failed} event(s) failed to send to Kafka; the first, {where}: "
                             f"{cause!r}") from cause

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then close the producer this logger created. Idempotent."""
        if self._closed:
            return
        try:
            self.flush(timeout_s)
        finally:
            self._closed = True
            if self._owns_producer:
                self._producer.close(timeout=timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _event(self, event_id: Any, timestamp: Any) -> dict[str, Any]:
        ts = int(self._clock() * 1000) if timestamp is None else _timestamp(timestamp)
        return {"schema_version": 1, "event_id": event_id, "model": self.model, "timestamp": ts}

    def _send(self, stream: str, event: dict[str, Any]) -> None:
        if self._closed:
            raise KafkaError("this PredictionLogger is closed; create a new one to log more")
        value = self._encode(stream, event)
        topic, key = self.topics[stream], event["event_id"].encode()
        try:
            future = self._producer.send(topic, key=key, value=value)
        except KafkaLibError as err:
            raise KafkaError(f"cannot send to {topic} at the moment: {err}; is Kafka up?") from err
        future.add_errback(self._record_failure, f"{stream} event {event['event_id']!r}")

    def _encode(self, stream: str, event: dict[str, Any]) -> bytes:
        """The message value, or ``EventError`` naming the field and what is wrong with it."""
        for where, value in _leaves(event):  # orjson would quietly write NaN as null
            if not _is_finite(value):
                raise EventError(f"{where}: {value} is not a finite number")
        try:
            data = orjson.dumps(event, option=_DUMPS_OPTIONS)
        except orjson.JSONEncodeError as err:
            raise EventError(f"{_unencodable(event)}: {err}; use a number, string, boolean "
                             "or null") from None
        body = orjson.loads(data)  # validate exactly what is sent, numpy values included
        error = next(iter(self._validators[stream].iter_errors(body)), None)
        if error is not None:
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
            raise EventError(f"invalid {stream} event: ${path}: {error.message}")
        if len(data) > self.max_event_bytes:
            raise EventError(f"{stream} event {event['event_id']!r} is {len(data)} bytes, over "
                             f"the limit of {self.max_event_bytes} (max_event_bytes)")
        return data

    def _record_failure(self, where: str, err: BaseException) -> None:
        with self._lock:
            self._failed += 1
            if self._first_failure is None:
                self._first_failure = (where, err)


def _connect(bootstrap_servers: str | Sequence[str], kafka_config: dict[str, Any]) -> KafkaProducer:
    unknown = sorted(set(kafka_config) - set(KafkaProducer.DEFAULT_CONFIG))
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not a kafka-python KafkaProducer setting")
    try:
        config = {"linger_ms": 20, **kafka_config}
        return KafkaProducer(bootstrap_servers=bootstrap_servers, **config)
    except KafkaLibError as err:
        raise KafkaError(f"cannot connect to Kafka at {bootstrap_servers}: {err}; check "
                         "bootstrap_servers and the Kafka settings") from err


def _timestamp(value: object) -> int | str:
    """Epoch ms or the RFC 3339 string itself; ``EventError`` for anything the daemon rejects."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise EventError(f"timestamp: {value!r} has no time zone; use an aware datetime "
                             "such as datetime.now(UTC)")
        value = (value - _EPOCH) // _ONE_MS
    if isinstance(value, str):
        try:
            if not _RFC3339.fullmatch(value):
                raise ValueError("not an RFC 3339 date-time with offset like 2026-01-01T00:15:00Z")
            parse_timestamp_ms(value)
        except ValueError as err:
            raise EventError(f"timestamp: {value!r}: {err}") from None
        return value
    if isinstance(value, Integral) and not isinstance(value, bool):
        ms = int(value)
        if not 0 <= ms <= _MAX_MS:
            raise EventError(f"timestamp: {ms} epoch milliseconds is outside 0..{_MAX_MS}")
        return ms
    raise EventError(f"timestamp: {value!r} is not integer epoch milliseconds (seconds * 1000), "
                     "an aware datetime or an RFC 3339 string with offset")


def _features(features: Any) -> dict[str, Any]:
    if not hasattr(features, "items"):  # a dict, a pandas Series
        raise EventError(f"features: expected a mapping of name -> value, got {type(features)}")
    out = dict(features.items())
    for name in out:
        if not isinstance(name, str):
            raise EventError(f"features: the name {name!r} is not a string")
    return out


def _probabilities(probabilities: Any) -> Any:
    """Class keys as the daemon names classes: 1 and 1.0 -> "1", True -> "true"."""
    if not isinstance(probabilities, Mapping):
        return probabilities
    return {_class_key(key): p for key, p in probabilities.items()}


def _class_key(key: Any) -> str:
    key = key.item() if hasattr(key, "item") else key  # numpy, as in zip(model.classes_, p)
    if isinstance(key, bool | str):
        return key if isinstance(key, str) else str(key).lower()
    if not isinstance(key, Real):
        raise EventError(f"probabilities: the class {key!r} is not a string, number or boolean")
    number = float(key)
    return str(int(number)) if number.is_integer() else repr(number)


def _is_finite(value: Any) -> bool:
    kind = type(value)  # plain types first: the ABC checks below cost a microsecond each
    if kind is float:
        return math.isfinite(value)
    if kind in _ALWAYS_FINITE:
        return True
    return not isinstance(value, Real) or isinstance(value, Integral) or math.isfinite(value)


def _leaves(event: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, value) of every top-level field and every feature and probability."""
    for field, value in event.items():
        if field in ("features", "probabilities") and isinstance(value, dict):
            yield from ((f"{field}[{name!r}]", item) for name, item in value.items())
        else:
            yield field, value


def _unencodable(event: dict[str, Any]) -> str:
    for where, value in _leaves(event):
        try:
            orjson.dumps(value, option=_DUMPS_OPTIONS)
        except orjson.JSONEncodeError:
            return where
    return "event"
