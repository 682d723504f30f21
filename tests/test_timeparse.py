"""Event timestamps and config durations (monitor/timeparse.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.timeparse import format_rfc3339_ms, parse_duration, parse_timestamp_ms

JAN_1_2026_MS = 1_767_225_600_000
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the schema's maximum


class TestParseTimestampMs:
    def test_a_utc_timestamp_with_z_gives_epoch_milliseconds(self) -> None:
        assert parse_timestamp_ms("2026-01-01T00:00:00Z") == JAN_1_2026_MS

    def test_a_numeric_offset_is_applied(self) -> None:
        assert parse_timestamp_ms("2026-01-01T05:30:00+05:30") == JAN_1_2026_MS
        assert parse_timestamp_ms("2025-12-31T19:00:00-05:00") == JAN_1_2026_MS

    def test_milliseconds_are_kept_and_finer_fractions_truncated(self) -> None:
        assert parse_timestamp_ms("2026-01-01T00:00:00.123Z") == JAN_1_2026_MS + 123
        assert parse_timestamp_ms("2026-01-01T00:00:00.1239999Z") == JAN_1_2026_MS + 123
        assert parse_timestamp_ms("2026-01-01T00:00:00.5Z") == JAN_1_2026_MS + 500

    def test_lower_case_t_and_z_are_accepted_as_rfc_3339_allows(self) -> None:
        assert parse_timestamp_ms("2026-01-01t00:00:00z") == JAN_1_2026_MS

    def test_an_integer_is_epoch_milliseconds_and_passes_through(self) -> None:
        assert parse_timestamp_ms(JAN_1_2026_MS) == JAN_1_2026_MS
        assert parse_timestamp_ms(0) == 0

    def test_an_integral_float_counts_as_an_integer(self) -> None:
        # JSON has one number type: 1767225600000.0 is the same value as the integer.
        result = parse_timestamp_ms(float(JAN_1_2026_MS))
        assert result == JAN_1_2026_MS
        assert type(result) is int

    def test_a_string_without_offset_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="no UTC offset"):
            parse_timestamp_ms("2026-01-01T00:00:00")

    @pytest.mark.parametrize(
        "text", ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z"]
    )
    def test_an_impossible_date_or_time_is_rejected_with_the_reason(self, text: str) -> None:
        with pytest.raises(ValueError, match="invalid timestamp"):
            parse_timestamp_ms(text)

    @pytest.mark.parametrize("value", [True, None, 1.5, [1], "yesterday", ""])
    def test_anything_else_is_rejected(self, value: object) -> None:
        with pytest.raises(ValueError, match="timestamp"):
            parse_timestamp_ms(value)

    @given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)))
    def test_it_agrees_with_datetime_arithmetic_for_any_time_and_offset(
        self, moment: datetime
    ) -> None:
        for offset_minutes in (0, 330, -480):
            zone = timezone(timedelta(minutes=offset_minutes))
            local = moment.replace(tzinfo=zone)
            expected = (local - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
            assert parse_timestamp_ms(local.isoformat()) == expected


class TestFormatRfc3339Ms:
    def test_whole_seconds_are_written_without_a_fraction(self) -> None:
        assert format_rfc3339_ms(JAN_1_2026_MS + 15 * 60_000) == "2026-01-01T00:15:00Z"

    def test_milliseconds_are_written_with_three_digits(self) -> None:
        assert format_rfc3339_ms(JAN_1_2026_MS + 7) == "2026-01-01T00:00:00.007Z"

    def test_the_epoch_is_1970(self) -> None:
        assert format_rfc3339_ms(0) == "1970-01-01T00:00:00Z"

    @given(st.integers(min_value=0, max_value=MAX_MS))
    def test_parsing_what_it_formats_gives_back_the_same_milliseconds(self, ms: int) -> None:
        assert parse_timestamp_ms(format_rfc3339_ms(ms)) == ms


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("500ms", 0.5),
            ("30s", 30.0),
            ("15m", 900.0),
            ("2h", 7200.0),
            ("7d", 604_800.0),
            ("1.5h", 5400.0),
            ("1h30m", 5400.0),
            ("0s", 0.0),
        ],
    )
    def test_a_number_with_a_unit_gives_seconds(self, text: str, seconds: float) -> None:
        assert parse_duration(text, key="window.duration") == seconds

    @pytest.mark.parametrize(("value", "seconds"), [(45, 45.0), (0.25, 0.25), ("90", 90.0)])
    def test_a_plain_number_means_seconds(self, value: object, seconds: float) -> None:
        assert parse_duration(value, key="window.grace") == seconds  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "value", ["15 m", "15min", "1w", "m", "-1s", "", "1h 30m", -1, True, float("inf")]
    )
    def test_anything_else_is_a_config_error_naming_the_key(self, value: object) -> None:
        with pytest.raises(ConfigError, match=r"join\.max_age: invalid duration"):
            parse_duration(value, key="join.max_age")  # type: ignore[arg-type]
