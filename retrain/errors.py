"""The retrain job's error: a child of driftline's one hierarchy (``monitor.errors``)."""

from __future__ import annotations

from monitor.errors import DriftlineError

__all__ = ["RetrainError"]


class RetrainError(DriftlineError):
    """The retrain job cannot run: no champion, unusable data, a bad training entry point."""
