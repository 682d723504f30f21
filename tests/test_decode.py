"""Decoding a raw message: each rejection reason, and what a valid event carries."""

from __future__ import annotations

import orjson
import pytest

from monitor.ingest.decode import REASONS, Decoder, Event, Rejection

BASE = {"schema_version": 1, "event_id": "e1", "model": "wine",
        "timestamp": "2026-01-01T00:00:00Z"}


@pytest.fixture
def decoder() -> Decoder:
    return Decoder(known_models={"wine"}, max_bytes=2048)


def reject(decoder: Decoder, stream: str, raw: bytes) -> Rejection:
    result = decoder.decode(stream, raw)
    assert isinstance(result, Rejection), result
    assert result.reason in REASONS
    assert result.detail
    return result


class TestDecoder:
    def test_a_valid_prediction_becomes_an_event_with_its_time_in_epoch_ms(self, decoder):
        event = decoder.decode("predictions", orjson.dumps({**BASE, "prediction": 1}))
        assert isinstance(event, Event)
        assert (event.model, event.event_id, event.ts_ms) == ("wine", "e1", 1_767_225_600_000)

    def test_unknown_extra_fields_are_kept_and_are_not_an_error(self, decoder):
        event = decoder.decode("labels", orjson.dumps({**BASE, "label": 0, "source": "app"}))
        assert isinstance(event, Event)
        assert event.body["source"] == "app"

    def test_a_message_over_the_size_limit_is_too_large(self, decoder):
        raw = orjson.dumps({**BASE, "label": 0, "pad": "x" * 3000})
        assert reject(decoder, "labels", raw).reason == "too_large"

    @pytest.mark.parametrize("raw", [b'{"a": ', b"\xff\xfe", b"", b"plain text"])
    def test_bytes_that_are_not_json_are_not_json(self, decoder, raw):
        assert reject(decoder, "labels", raw).reason == "not_json"

    def test_a_null_value_is_not_json(self, decoder):
        assert decoder.decode("labels", None).reason == "not_json"  # type: ignore[union-attr]

    @pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
    def test_a_non_finite_number_is_non_finite(self, decoder, token):
        raw = b'{"schema_version": 1, "event_id": "e1", "model": "wine", ' \
              b'"timestamp": 0, "prediction": ' + token + b"}"
        assert reject(decoder, "predictions", raw).reason == "non_finite"

    def test_a_json_array_is_a_schema_violation(self, decoder):
        assert reject(decoder, "labels", b"[1, 2]").reason == "schema_violation"

    def test_a_schema_violation_names_the_field(self, decoder):
        rejection = reject(decoder, "predictions", orjson.dumps(BASE))
        assert rejection.reason == "schema_violation"
        assert "prediction" in rejection.detail

    def test_an_impossible_date_is_a_schema_violation(self, decoder):
        raw = orjson.dumps({**BASE, "timestamp": "2026-02-30T00:00:00Z", "label": 1})
        assert reject(decoder, "labels", raw).reason == "schema_violation"

    def test_a_model_not_in_the_config_is_unknown_and_the_known_ones_are_listed(self, decoder):
        rejection = reject(decoder, "labels", orjson.dumps({**BASE, "model": "x", "label": 1}))
        assert rejection.reason == "unknown_model"
        assert "wine" in rejection.detail

    def test_features_events_need_features(self, decoder):
        assert reject(decoder, "features", orjson.dumps(BASE)).reason == "schema_violation"
