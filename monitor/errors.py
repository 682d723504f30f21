"""The one exception hierarchy of driftline.

Every message says what was wrong, with which input, and what to do about it. Failures of
Kafka, SQL and MLflow are wrapped with ``raise ... from err`` so the cause stays visible.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DriftlineError",
    "InputError",
    "KafkaError",
    "ReferenceDataError",
    "ReportError",
    "RetrainError",
    "StoreError",
]


class DriftlineError(Exception):
    """Base of every error driftline raises on purpose."""

    exit_code = 1


class ConfigError(DriftlineError):
    """The configuration file (or a command-line argument) is invalid."""

    exit_code = 2


class InputError(DriftlineError):
    """An input file (replay input, reference data) cannot be read."""

    exit_code = 2


class ReferenceDataError(DriftlineError):
    """The reference data of a model is missing, unreadable or unusable."""

    exit_code = 2


class KafkaError(DriftlineError):
    """The Kafka cluster could not be reached or refused an operation."""


class StoreError(DriftlineError):
    """The SQL store could not be reached or refused an operation."""


class ReportError(DriftlineError):
    """A drill-down report cannot be made: no such window, or its sample is gone."""


class RetrainError(DriftlineError):
    """The retrain job cannot run: no champion, unusable data, a bad training entry point."""


class EventError(InputError, ValueError):
    """An event given to ``PredictionLogger`` breaks the contract; raised where it is logged."""


__all__ += ["EventError"]
