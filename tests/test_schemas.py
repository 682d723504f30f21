"""The contract's JSON Schemas (schemas/*.schema.json) and their loader (monitor/schemas.py).

Every event rule is checked with both validators: ``jsonschema`` (the reference) and the
jsonschema-rs validator the daemon runs; both read the files as draft 2020-12.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from monitor.schemas import STREAMS, compiled_validator, load_schema, schema_dir

ALL_SCHEMAS = (*STREAMS, "alert", "config")
KEYWORD_MAPS = {"properties", "$defs", "patternProperties"}  # their keys are names
DATA_KEYWORDS = {"default", "enum", "const"}  # their values are instances, not schemas

BASE = {"schema_version": 1, "event_id": "e-1", "model": "wine"}
VALID_EVENTS: dict[str, dict[str, Any]] = {
    "predictions": {**BASE, "timestamp": "2026-01-01T00:00:00Z", "prediction": 1},
    "features": {**BASE, "timestamp": "2026-01-01T00:00:00Z", "features": {"alcohol": 13.2}},
    "labels": {**BASE, "timestamp": "2026-01-01T00:00:00Z", "label": 1},
}
VALID_ALERT: dict[str, Any] = {
    "alert_id": "a-1",
    "model": "wine",
    "model_version": "3",
    "kind": "drift",
    "severity": "warning",
    "status": "firing",
    "window_start": "2026-01-01T00:00:00Z",
    "window_end": "2026-01-01T00:15:00Z",
    "health_score": 62.5,
    "summary": "wine: 1 of 4 features drifted (alcohol)",
    "details": {"features": {"alcohol": {"method": "psi", "score": 0.31}}},
}


def is_valid(name: str, instance: object) -> bool:
    """Whether ``instance`` passes schema ``name``; both validators must agree."""
    reference = Draft202012Validator(load_schema(name)).is_valid(instance)
    compiled = compiled_validator(name).is_valid(copy.deepcopy(instance))
    assert reference == compiled, f"jsonschema says {reference}, jsonschema-rs {compiled}"
    return reference


def event(stream: str, **changes: object) -> dict[str, Any]:
    """The valid event of ``stream`` with fields changed (``None`` values are removed)."""
    body = {**VALID_EVENTS[stream], **changes}
    return {key: value for key, value in body.items() if value is not None}


def walk_keywords(schema: object) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key
            if key in DATA_KEYWORDS:
                continue
            children = value.values() if key in KEYWORD_MAPS else [value]
            for child in children:
                yield from walk_keywords(child)
    elif isinstance(schema, list):
        for item in schema:
            yield from walk_keywords(item)


class TestSchemaFiles:
    @pytest.mark.parametrize("name", ALL_SCHEMAS)
    def test_every_schema_is_a_valid_draft_2020_12_schema(self, name: str) -> None:
        schema = load_schema(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"https://driftline.dev/schemas/{name}.schema.json"
        Draft202012Validator.check_schema(schema)

    @pytest.mark.parametrize("name", ALL_SCHEMAS)
    def test_every_reference_points_into_the_same_files_defs(self, name: str) -> None:
        text = json.dumps(load_schema(name))
        schema = load_schema(name)
        for ref in (v for k, v in _items(schema) if k == "$ref"):
            assert ref.startswith("#/$defs/"), ref
            assert ref.removeprefix("#/$defs/") in schema["$defs"], ref
        assert '"$ref"' not in text or "$defs" in schema

    def test_the_compiled_validator_resolves_refs_into_defs(self) -> None:
        # event_id's length limit lives in $defs; it must be enforced by the compiled code
        assert not compiled_validator("labels").is_valid(event("labels", event_id="x" * 129))


def _items(schema: object) -> Iterator[tuple[str, Any]]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield key, value
            yield from _items(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _items(item)


class TestSchemaLoader:
    def test_schemas_are_found_in_the_checkout(self) -> None:
        assert (schema_dir() / "predictions.schema.json").is_file()

    def test_load_schema_returns_a_copy_callers_may_change(self) -> None:
        load_schema("labels")["required"].append("mutated")
        assert "mutated" not in load_schema("labels")["required"]

    def test_a_schema_is_compiled_once(self) -> None:
        assert compiled_validator("predictions") is compiled_validator("predictions")

    def test_the_compiled_validator_accepts_valid_and_rejects_invalid_events(self) -> None:
        validator = compiled_validator("predictions")
        assert validator.is_valid(event("predictions"))
        assert not validator.is_valid(event("predictions", prediction=None))

    def test_an_unknown_schema_name_lists_the_known_ones(self) -> None:
        with pytest.raises(KeyError, match="known schemas: alert, config"):
            load_schema("nope")


@pytest.mark.parametrize("stream", STREAMS)
class TestEveryStream:
    def test_the_minimal_event_is_valid(self, stream: str) -> None:
        assert is_valid(stream, event(stream))

    @pytest.mark.parametrize("field", ["schema_version", "event_id", "model", "timestamp"])
    def test_each_common_field_is_required(self, stream: str, field: str) -> None:
        body = event(stream)
        del body[field]
        assert not is_valid(stream, body)

    @pytest.mark.parametrize("version", [2, 0, "1", True])
    def test_schema_version_must_be_the_integer_1(self, stream: str, version: object) -> None:
        assert is_valid(stream, event(stream, schema_version=1.0))
        assert not is_valid(stream, event(stream, schema_version=version))

    def test_event_id_is_a_string_of_1_to_128_characters(self, stream: str) -> None:
        assert is_valid(stream, event(stream, event_id="x"))
        assert is_valid(stream, event(stream, event_id="é" * 128))
        assert not is_valid(stream, event(stream, event_id=""))
        assert not is_valid(stream, event(stream, event_id="x" * 129))
        assert not is_valid(stream, event(stream, event_id=7))

    def test_model_is_a_non_empty_string(self, stream: str) -> None:
        assert not is_valid(stream, event(stream, model=""))
        assert not is_valid(stream, event(stream, model=["wine"]))

    @pytest.mark.parametrize(
        "timestamp",
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.123456Z",
            "2026-01-01T05:30:00+05:30",
            "2025-12-31T19:00:00-05:00",
            "2026-01-01t00:00:00z",
            0,
            1_767_225_600_000,
            253_402_300_799_999,
        ],
    )
    def test_timestamp_is_rfc_3339_with_offset_or_epoch_milliseconds(
        self, stream: str, timestamp: object
    ) -> None:
        assert is_valid(stream, event(stream, timestamp=timestamp))

    @pytest.mark.parametrize(
        "timestamp",
        [
            "2026-01-01T00:00:00",  # no offset
            "2026-01-01",  # no time
            "2026-01-01 00:00:00Z",  # not the T separator
            "2026-01-01T00:00:00+0530",  # offset without colon
            "2026-13-01T00:00:00Z",  # no month 13
            "2026-01-01T00:00:60Z",  # leap seconds cannot be represented
            "20260101T000000Z",  # ISO 8601 basic format is not RFC 3339
            "٢٠٢٦-01-01T00:00:00Z",  # non-ASCII digits
            -1,  # before the epoch
            1.5,  # not whole milliseconds
            253_402_300_800_000,  # after 9999-12-31
            True,
            None,
        ],
    )
    def test_any_other_timestamp_is_rejected(self, stream: str, timestamp: object) -> None:
        body = event(stream)
        body["timestamp"] = timestamp
        assert not is_valid(stream, body)

    def test_a_timestamp_with_a_trailing_newline_is_rejected_on_the_hot_path(
        self, stream: str
    ) -> None:
        # Python's jsonschema lets `$` match before a final newline; the ECMA 262 regex
        # semantics JSON Schema specifies, and jsonschema-rs, do not.
        assert not compiled_validator(stream).is_valid(
            event(stream, timestamp="2026-01-01T00:00:00Z\n"))

    def test_unknown_extra_fields_are_allowed(self, stream: str) -> None:
        assert is_valid(stream, event(stream, trace_id="abc", extra={"nested": [1, 2]}))

    def test_an_event_is_a_json_object(self, stream: str) -> None:
        assert not is_valid(stream, [event(stream)])


class TestPredictionEvents:
    @pytest.mark.parametrize("prediction", [1, 0.25, "red", True, False])
    def test_prediction_is_a_number_string_or_boolean(self, prediction: object) -> None:
        assert is_valid("predictions", event("predictions", prediction=prediction))

    @pytest.mark.parametrize("prediction", [[1], {"class": 1}])
    def test_any_other_prediction_is_rejected(self, prediction: object) -> None:
        assert not is_valid("predictions", event("predictions", prediction=prediction))

    def test_prediction_is_required_and_not_null(self) -> None:
        body = event("predictions")
        del body["prediction"]
        assert not is_valid("predictions", body)
        assert not is_valid("predictions", {**body, "prediction": None})

    def test_model_version_is_an_optional_string(self) -> None:
        assert is_valid("predictions", event("predictions", model_version="3"))
        assert not is_valid("predictions", event("predictions", model_version=3))

    @pytest.mark.parametrize("probabilities", [{"red": 0.2, "white": 0.8}, {}, 0.7, 0, 1])
    def test_probabilities_are_class_probabilities_or_one_positive_class_number(
        self, probabilities: object
    ) -> None:
        assert is_valid("predictions", event("predictions", probabilities=probabilities))

    @pytest.mark.parametrize("probabilities", [{"red": 1.2}, {"red": "0.2"}, -0.1, 1.01, "0.7"])
    def test_probabilities_outside_0_to_1_or_not_numbers_are_rejected(
        self, probabilities: object
    ) -> None:
        assert not is_valid("predictions", event("predictions", probabilities=probabilities))

    def test_features_may_be_inline_with_scalar_or_null_values(self) -> None:
        features = {"alcohol": 13.2, "color": "red", "organic": True, "ph": None, "n": 3}
        assert is_valid("predictions", event("predictions", features=features))

    @pytest.mark.parametrize("value", [[1, 2], {"a": 1}])
    def test_inline_feature_values_must_be_scalars(self, value: object) -> None:
        assert not is_valid("predictions", event("predictions", features={"x": value}))


class TestFeatureEvents:
    def test_features_are_required(self) -> None:
        body = event("features")
        del body["features"]
        assert not is_valid("features", body)

    def test_feature_values_are_numbers_strings_booleans_or_null(self) -> None:
        features = {"alcohol": 13.2, "color": "red", "organic": False, "ph": None}
        assert is_valid("features", event("features", features=features))
        assert is_valid("features", event("features", features={}))

    @pytest.mark.parametrize("features", [[1.0], "alcohol=13", {"x": [1]}, {"x": {"y": 1}}])
    def test_anything_else_as_features_is_rejected(self, features: object) -> None:
        assert not is_valid("features", event("features", features=features))


class TestLabelEvents:
    @pytest.mark.parametrize("label", [1, 0.5, "red", False])
    def test_label_is_a_number_string_or_boolean(self, label: object) -> None:
        assert is_valid("labels", event("labels", label=label))

    @pytest.mark.parametrize("label", [[1], {"y": 1}])
    def test_any_other_label_is_rejected(self, label: object) -> None:
        assert not is_valid("labels", event("labels", label=label))

    def test_label_is_required_and_not_null(self) -> None:
        body = event("labels")
        del body["label"]
        assert not is_valid("labels", body)
        assert not is_valid("labels", {**body, "label": None})


def alert(**changes: object) -> dict[str, Any]:
    return {**VALID_ALERT, **changes}


class TestAlertBody:
    def test_a_drift_alert_is_valid(self) -> None:
        assert is_valid("alert", alert())

    @pytest.mark.parametrize(
        "field",
        [
            "alert_id", "model", "model_version", "kind", "severity", "status",
            "window_start", "window_end", "health_score", "summary", "details",
        ],
    )  # fmt: skip
    def test_each_contract_field_is_required(self, field: str) -> None:
        body = alert()
        del body[field]
        assert not is_valid("alert", body)

    @pytest.mark.parametrize(
        "kind", ["retrain_started", "retrain_succeeded", "retrain_failed", "model_promoted"]
    )
    def test_retrain_kinds_have_no_window_and_no_health_score(self, kind: str) -> None:
        body = alert(kind=kind, window_start=None, window_end=None, health_score=None)
        assert is_valid("alert", body)

    @pytest.mark.parametrize("kind", ["drift", "performance", "data_quality"])
    def test_window_kinds_must_name_their_window(self, kind: str) -> None:
        assert not is_valid("alert", alert(kind=kind, window_start=None))
        assert not is_valid("alert", alert(kind=kind, window_end=None))

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("kind", "anomaly"),
            ("severity", "error"),
            ("status", "open"),
            ("health_score", 100.5),
            ("health_score", -1),
            ("window_end", "2026-01-01 00:15"),
            ("model_version", 3),
            ("details", "alcohol drifted"),
            ("sent_at", "yesterday"),
            ("links", {"dashboard": 1}),
        ],
    )
    def test_values_outside_the_contract_are_rejected(self, field: str, value: object) -> None:
        assert not is_valid("alert", alert(**{field: value}))

    def test_optional_fields_and_unknown_extras_are_accepted(self) -> None:
        body = alert(
            sent_at="2026-01-01T00:15:31Z",
            links={"dashboard": "https://grafana.example/d/wine"},
            model_version=None,
            runbook="wiki/drift",
        )
        assert is_valid("alert", body)


# --- both validators agree on generated events -----------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@st.composite
def rfc3339_like(draw: st.DrawFn) -> str:
    """Strings near the RFC 3339 shape: valid ones and ones one mistake away."""
    parts = [
        draw(st.sampled_from(["2026", "1970", "9999", "0000", "26", "٢٠٢٦"])),
        draw(st.sampled_from(["-", "/", ""])),
        draw(st.sampled_from(["01", "12", "13", "00", "1"])),
        "-",
        draw(st.sampled_from(["01", "31", "32", "00", "30"])),
        draw(st.sampled_from(["T", "t", " ", ""])),
        draw(st.sampled_from(["00", "23", "24", "9"])),
        ":",
        draw(st.sampled_from(["00", "59", "60"])),
        draw(st.sampled_from([":00", ":59", ":60", ""])),
        draw(st.sampled_from(["", ".1", ".123456789", "."])),
        draw(st.sampled_from(["Z", "z", "+05:30", "-23:59", "+24:00", "+0530", "", "UTC"])),
        draw(st.sampled_from(["", "", "", "x", " "])),
    ]
    return "".join(parts)


def mostly(valid: st.SearchStrategy[Any], wild: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` values nine times in ten, else ``wild`` ones (often invalid)."""
    return st.integers(0, 9).flatmap(lambda roll: wild if roll == 0 else valid)


valid_rfc3339 = st.builds(
    lambda moment, offset, sep: moment.isoformat().replace("T", sep) + offset,
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from(["Z", "z", "+05:30", "-08:00", "+00:00"]),
    st.sampled_from(["T", "t"]),
)
valid_scalars = st.one_of(
    st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)
) | st.text(max_size=8)
valid_feature_maps = st.dictionaries(st.text(max_size=6), valid_scalars | st.none(), max_size=5)
COMMON = {
    "schema_version": mostly(st.sampled_from([1, 1.0]), st.sampled_from([2, "1", True, None])),
    "event_id": mostly(st.text(min_size=1, max_size=128), st.text(max_size=140) | json_scalars),
    "model": mostly(st.text(min_size=1, max_size=4), json_values),
    "timestamp": mostly(
        valid_rfc3339 | st.integers(0, 253_402_300_799_999),
        rfc3339_like()
        | st.integers(-10, 2**49)
        | st.floats(-1, 1e15, allow_nan=False)
        | json_scalars,
    ),
}
STREAM_FIELDS = {
    "predictions": {
        "prediction": mostly(valid_scalars, json_values),
        "model_version": mostly(st.text(max_size=3), json_scalars),
        "probabilities": mostly(
            st.floats(0, 1) | st.dictionaries(st.sampled_from(["a", "b"]), st.floats(0, 1)),
            st.floats(-0.5, 1.5, allow_nan=False)
            | st.dictionaries(st.sampled_from(["a", "b"]), st.floats(-0.5, 1.5) | json_scalars)
            | json_values,
        ),
        "features": mostly(valid_feature_maps, json_values),
    },
    "features": {"features": mostly(valid_feature_maps, json_values)},
    "labels": {"label": mostly(valid_scalars, json_values)},
}
REQUIRED = {"predictions": "prediction", "features": "features", "labels": "label"}


@st.composite
def events(draw: st.DrawFn, stream: str) -> dict[str, Any]:
    """Events near the schema's edge: each field valid nine times in ten."""
    fields = {**COMMON, **STREAM_FIELDS[stream]}
    required = [*COMMON, REQUIRED[stream]]
    optional = [name for name in fields if name not in required]
    present = required + [name for name in optional if draw(st.booleans())]
    if draw(st.integers(0, 9)) == 0:
        present.remove(draw(st.sampled_from(required)))
    body = {name: draw(fields[name]) for name in present}
    if draw(st.booleans()):
        body["extra"] = draw(json_values)
    return body


class TestValidatorsAgree:
    @pytest.mark.parametrize("stream", STREAMS)
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_the_two_validators_agree_on_generated_events(
        self, stream: str, data: st.DataObject
    ) -> None:
        is_valid(stream, data.draw(events(stream)))  # asserts agreement

    @pytest.mark.parametrize("stream", STREAMS)
    def test_the_generated_events_include_valid_and_invalid_ones(self, stream: str) -> None:
        # the agreement above only means something if both outcomes occur
        find(events(stream), lambda body: is_valid(stream, body))
        find(events(stream), lambda body: not is_valid(stream, body))

    @settings(max_examples=200, deadline=None)
    @given(
        kind=st.sampled_from(["drift", "retrain_failed", "other"]),
        window_start=st.one_of(st.none(), rfc3339_like()),
        health_score=st.one_of(st.none(), st.floats(-10, 110), json_scalars),
    )
    def test_both_validators_agree_on_generated_alerts(
        self, kind: str, window_start: str | None, health_score: object
    ) -> None:
        is_valid("alert", alert(kind=kind, window_start=window_start, health_score=health_score))
