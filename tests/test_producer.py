"""The app-side PredictionLogger: contract-valid events or an error at the call site."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import orjson
import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError
from kafka.future import Future

from monitor.errors import ConfigError, EventError, InputError, KafkaError
from monitor.ingest.decode import Decoder, Event
from monitor.producer import DEFAULT_TOPICS, PredictionLogger
from monitor.schemas import compiled_validator
from tests.services.kafka_broker import MAX_MESSAGE_BYTES

NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NOW_MS = 1_767_225_600_000


class FakeProducer:
    """Stands in for KafkaProducer: records every send; fails those whose key is in ``fail``."""

    def __init__(self, fail: frozenset[bytes] = frozenset()) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = fail
        self.flushes = 0
        self.closed = False

    def send(self, topic: str, *, key: bytes, value: bytes) -> Future:
        self.sent.append((topic, key, value))
        future = Future()
        if key in self.fail:
            return future.failure(KafkaTimeoutError(f"no ack for {key!r}"))
        return future.success(None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, _, value in self.sent]


def make_logger(fake: FakeProducer | None = None, **kwargs: Any) -> PredictionLogger:
    return PredictionLogger(model="m", producer=fake or FakeProducer(), clock=lambda: NOW_S,
                            **kwargs)


def raises_at_call(call: Callable[[PredictionLogger], object], match: str) -> None:
    """``call`` raises an EventError matching ``match`` and sends nothing."""
    fake = FakeProducer()
    with pytest.raises(EventError, match=match):
        call(make_logger(fake))
    assert fake.sent == []


class TestEvents:
    def test_a_prediction_is_the_contract_event_keyed_by_its_event_id(self) -> None:
        fake = FakeProducer()
        event_id = make_logger(fake, model_version="3").log_prediction(
            1, features={"x": 0.5, "c": "red", "gone": None}, probabilities=0.8)
        assert len(event_id) == 32
        assert fake.sent[0][:2] == ("driftline.predictions", event_id.encode())
        assert fake.bodies() == [{
            "schema_version": 1, "event_id": event_id, "model": "m", "timestamp": NOW_MS,
            "prediction": 1, "model_version": "3", "probabilities": 0.8,
            "features": {"x": 0.5, "c": "red", "gone": None}}]

    def test_features_and_labels_go_to_their_streams_and_pass_their_schemas(self) -> None:
        fake = FakeProducer()
        logger = make_logger(fake, topics={"labels": "my.labels"})
        logger.log_features("e1", {"x": 1.0})
        logger.log_label("e1", True, timestamp="2026-01-02T00:00:00+01:00")
        assert [(topic, key) for topic, key, _ in fake.sent] == [
            (DEFAULT_TOPICS["features"], b"e1"), ("my.labels", b"e1")]
        features, label = fake.bodies()
        assert compiled_validator("features").is_valid(features)
        assert compiled_validator("labels").is_valid(label)
        assert label["timestamp"] == "2026-01-02T00:00:00+01:00"

    def test_a_per_call_model_version_overrides_the_logger_one(self) -> None:
        fake = FakeProducer()
        make_logger(fake, model_version="3").log_prediction("a", model_version="4")
        assert fake.bodies()[0]["model_version"] == "4"

    def test_an_aware_datetime_becomes_epoch_milliseconds(self) -> None:
        fake = FakeProducer()
        paris = timezone(timedelta(hours=1))
        make_logger(fake).log_label("e1", 0, timestamp=datetime(2026, 1, 1, 1, tzinfo=paris))
        make_logger(fake).log_label("e2", 0, timestamp=np.int64(NOW_MS + 5))
        assert [body["timestamp"] for body in fake.bodies()] == [NOW_MS, NOW_MS + 5]

    def test_numpy_values_serialise_as_plain_json(self) -> None:
        fake = FakeProducer()
        make_logger(fake).log_prediction(
            np.int64(1),
            features={"f32": np.float32(0.5), "i64": np.int64(7), "flag": np.bool_(True)},
            probabilities=dict(zip(np.array([0, 1]), np.array([0.25, 0.75]), strict=True)))
        body = fake.bodies()[0]
        assert body["prediction"] == 1
        assert body["features"] == {"f32": 0.5, "i64": 7, "flag": True}
        assert body["probabilities"] == {"0": 0.25, "1": 0.75}

    def test_class_keys_are_named_like_the_daemon_names_classes(self) -> None:
        fake = FakeProducer()
        make_logger(fake).log_prediction(True, probabilities={True: 0.6, False: 0.4})
        make_logger(fake).log_prediction(2, probabilities={1.0: 0.1, 2.5: 0.9})
        assert [body["probabilities"] for body in fake.bodies()] == [
            {"true": 0.6, "false": 0.4}, {"1": 0.1, "2.5": 0.9}]


class TestInvalidInput:
    def test_an_event_error_is_a_value_error_and_an_input_error(self) -> None:
        assert issubclass(EventError, ValueError)
        assert issubclass(EventError, InputError)

    @pytest.mark.parametrize(("timestamp", "match"), [
        ("yesterday", r"timestamp: 'yesterday': not an RFC 3339"),
        ("2026-02-30T00:00:00Z", r"timestamp: .*day is out of range"),
        ("2026-01-01T00:00:00", r"timestamp: .*not an RFC 3339 date-time with offset"),
        (NOW_S, r"timestamp: .* is not integer epoch milliseconds \(seconds \* 1000\)"),
        (-1, r"timestamp: -1 epoch milliseconds is outside 0\.\.253402300799999"),
        (True, r"timestamp: True is not integer epoch milliseconds"),
    ])
    def test_a_bad_timestamp_is_named(self, timestamp: Any, match: str) -> None:
        raises_at_call(lambda lg: lg.log_prediction(1, timestamp=timestamp), match)

    def test_a_naive_datetime_is_refused(self) -> None:
        raises_at_call(lambda lg: lg.log_label("e1", 1, timestamp=datetime(2026, 1, 1)),
                       r"timestamp: .* has no time zone; use an aware datetime")

    @pytest.mark.parametrize(("call", "match"), [
        (lambda lg: lg.log_prediction(1, features={"x": math.nan}), r"features\['x'\]: nan"),
        (lambda lg: lg.log_features("e1", {"x": np.float32("inf")}), r"features\['x'\]: inf"),
        (lambda lg: lg.log_prediction(math.inf), r"prediction: inf"),
        (lambda lg: lg.log_prediction(1, probabilities={"a": math.nan}),
         r"probabilities\['a'\]: nan"),
        (lambda lg: lg.log_prediction(1, probabilities=-math.inf), r"probabilities: -inf"),
        (lambda lg: lg.log_label("e1", np.float64("nan")), r"label: nan"),
    ])
    def test_a_non_finite_number_is_named(self, call: Any, match: str) -> None:
        raises_at_call(call, match + " is not a finite number")

    @pytest.mark.parametrize(("probabilities", "match"), [
        (1.5, r"\$\.probabilities: 1\.5 is greater than the maximum of 1"),
        ({"a": -0.1, "b": 1.1}, r"\$\.probabilities\.a: -0\.1 is less than the minimum of 0"),
    ])
    def test_probabilities_outside_0_1_are_refused(self, probabilities: Any, match: str) -> None:
        raises_at_call(lambda lg: lg.log_prediction(1, probabilities=probabilities), match)

    def test_an_event_id_over_128_characters_is_refused(self) -> None:
        raises_at_call(lambda lg: lg.log_prediction(1, event_id="e" * 129),
                       r"invalid predictions event: \$\.event_id: .* longer than 128 characters")

    def test_an_empty_or_non_string_event_id_is_refused(self) -> None:
        raises_at_call(lambda lg: lg.log_label("", 1), r"\$\.event_id: .*shorter than 1")
        raises_at_call(lambda lg: lg.log_label(42, 1), r"\$\.event_id: 42 is not of type")  # type: ignore[arg-type]

    def test_a_nested_feature_value_is_refused(self) -> None:
        raises_at_call(lambda lg: lg.log_prediction(1, features={"x": [1, 2]}),
                       r"invalid predictions event: \$\.features\.x: \[1,2\] is not of types")

    def test_a_prediction_that_is_not_a_number_string_or_boolean_is_refused(self) -> None:
        raises_at_call(lambda lg: lg.log_prediction(None), r"\$\.prediction: null is not of")

    def test_a_value_json_cannot_hold_is_named(self) -> None:
        raises_at_call(lambda lg: lg.log_prediction(1, features={"x": object()}),
                       r"features\['x'\]: Type is not JSON serializable: object")
        raises_at_call(lambda lg: lg.log_label("e1", 2**70), r"label: Integer exceeds 64-bit")

    def test_feature_names_must_be_strings_and_features_a_mapping(self) -> None:
        raises_at_call(lambda lg: lg.log_prediction(1, features={3: 1.0}),
                       r"features: the name 3 is not a string")
        raises_at_call(lambda lg: lg.log_features("e1", [1.0, 2.0]),  # type: ignore[arg-type]
                       r"features: expected a mapping of name -> value")

    def test_an_event_over_the_size_limit_is_refused(self) -> None:
        fake = FakeProducer()
        with pytest.raises(EventError, match=r"over the limit of 1000 \(max_event_bytes\)"):
            make_logger(fake, max_event_bytes=1000).log_features("e1", {"blob": "x" * 1000})
        assert fake.sent == []


class TestConfiguration:
    @pytest.mark.parametrize(("kwargs", "match"), [
        ({"model": ""}, r"model: expected the monitored model's name"),
        ({"model": "m", "model_version": 3}, r"model_version: expected a string or None"),
        ({"model": "m", "topics": {"predictions.dlq": "x"}},
         r"topics: unknown stream 'predictions.dlq'; allowed: predictions, features, labels"),
        ({"model": "m", "linger": 5}, r"'linger' is not a kafka-python KafkaProducer setting"),
    ])
    def test_a_bad_argument_is_named(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ConfigError, match=match):
            PredictionLogger("127.0.0.1:1", **kwargs)

    def test_an_unreachable_broker_is_a_kafka_error(self) -> None:
        with pytest.raises(KafkaError, match=r"cannot connect to Kafka at 127\.0\.0\.1:1"):
            PredictionLogger("127.0.0.1:1", model="m", api_version_auto_timeout_ms=500)


class TestDelivery:
    def test_flush_raises_how_many_sends_failed_and_the_first_error(self) -> None:
        fake = FakeProducer(fail=frozenset({b"e2", b"e3"}))
        logger = make_logger(fake)
        for event_id in ("e1", "e2", "e3"):
            logger.log_label(event_id, 1)  # failures never raise at the call site
        with pytest.raises(KafkaError, match=r"2 event\(s\) failed .* labels event 'e2'") as info:
            logger.flush()
        assert isinstance(info.value.__cause__, KafkaTimeoutError)
        logger.flush()  # reported once

    def test_close_flushes_and_leaves_a_producer_passed_in_open(self) -> None:
        fake = FakeProducer()
        with make_logger(fake) as logger:
            logger.log_label("e1", 1)
        assert (fake.flushes, fake.closed) == (1, False)
        with pytest.raises(KafkaError, match="closed"):
            logger.log_label("e2", 1)
        logger.close()  # idempotent


def consume(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
    records: list[Any] = []
    deadline = time.monotonic() + 60
    while len(records) < expected and time.monotonic() < deadline:
        records.extend(consumer)  # until nothing more arrived for a second
    consumer.close()
    return records


@pytest.mark.kafka
class TestOnTheBroker:
    def test_a_thousand_predictions_and_labels_come_back_exactly(
        self, kafka_broker: Any, kafka_topics: Any
    ) -> None:
        topics = kafka_topics("predictions", "features", "labels")
        rng = np.random.default_rng(11)
        clock = iter(NOW_S + i for i in range(10_000))
        sent: dict[str, dict[str, dict[str, Any]]] = {stream: {} for stream in topics}
        with PredictionLogger(kafka_broker.bootstrap, model="m", model_version="1",
                              topics=topics, clock=lambda: next(clock)) as logger:
            for i in range(1000):
                features = {"x": np.float64(rng.normal()), "n": rng.integers(9), "c": "ab"[i % 2]}
                plain = {k: v.item() if isinstance(v, np.generic) else v
                         for k, v in features.items()}
                p, label = rng.random(), int(rng.random() > 0.5)
                if i % 2:  # features logged apart, after the prediction
                    event_id = logger.log_prediction(int(p > 0.5), probabilities=p)
                    logger.log_features(event_id, features)
                    sent["predictions"][event_id] = {"prediction": int(p > 0.5)}
                    sent["features"][event_id] = {"features": plain}
                else:
                    event_id = logger.log_prediction(int(p > 0.5), probabilities=p,
                                                     features=features)
                    sent["predictions"][event_id] = {"prediction": int(p > 0.5),
                                                     "features": plain}
                sent["predictions"][event_id] |= {"probabilities": p, "model_version": "1"}
                logger.log_label(event_id, label)
                sent["labels"][event_id] = {"label": label}
        decoder = Decoder(["m"])
        for stream, topic in topics.items():
            records = consume(kafka_broker.bootstrap, topic, len(sent[stream]))
            assert len(records) == len(sent[stream]) == (500 if stream == "features" else 1000)
            assert {r.key.decode() for r in records} == set(sent[stream])
            for record in records:
                body = orjson.loads(record.value)
                assert compiled_validator(stream).is_valid(body)
                assert body["event_id"] == record.key.decode()
                assert body.items() >= sent[stream][body["event_id"]].items()
                event = decoder.decode(stream, record.value)
                assert isinstance(event, Event), event
                assert event.event_id == body["event_id"]

    def test_a_message_the_broker_refuses_makes_flush_raise(
        self, kafka_broker: Any, kafka_topics: Any
    ) -> None:
        topics = kafka_topics("predictions", "features", "labels")
        big = MAX_MESSAGE_BYTES + 1024 * 1024
        with PredictionLogger(kafka_broker.bootstrap, model="m", topics=topics,
                              max_event_bytes=2 * big, max_request_size=2 * big) as logger:
            logger.log_features("e1", {"blob": "x" * big})  # accepted here: sent async
            with pytest.raises(KafkaError, match=r"1 event\(s\) failed .* features event 'e1'"):
                logger.flush(timeout_s=60)
            logger.log_label("e1", 1)
            logger.flush(timeout_s=60)
