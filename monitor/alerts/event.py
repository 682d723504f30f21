"""One alert notice (firing or resolved) and the webhook body it becomes (contract section 4).

An :class:`AlertEvent` is plain data built from the window line that changed an alert's
state. ``to_body()`` is the JSON body of ``schemas/alert.schema.json``, plus two extra
fields receivers may ignore: ``rule`` (the policy rule that raised it: the kind, or
``health``) and, once enqueued, ``raised_at``.

>>> event = AlertEvent(alert_id="abc", model="wine", model_version="3", kind="drift",
...     rule="drift", severity="warning", status="firing",
...     window_start="2026-01-01T00:00:00Z", window_end="2026-01-01T00:15:00Z",
...     health_score=62.5, summary="wine: drift in alcohol (1 of 2 features) — health 62",
...     details={})
>>> event.to_body()["status"], "sent_at" in event.to_body()
('firing', False)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from monitor.config import AlertRule, Severity
from monitor.timeparse import format_rfc3339_ms, parse_timestamp_ms

__all__ = ["RULES", "AlertEvent", "Status", "alert_id", "build_event", "main_part"]

Status = Literal["firing", "resolved"]
RULES = ("drift", "performance", "data_quality", "health")  # policy rules, in evaluation order
HEALTH_PARTS = ("drift", "performance", "data_quality")  # health components = window kinds
MAX_NAMES = 5  # feature names written out in a summary


@dataclass(frozen=True)
class AlertEvent:
    """A state change of one alert episode; ``alert_id`` is the same for firing and resolved."""

    alert_id: str
    model: str
    model_version: str | None
    kind: str  # contract kind: drift | performance | data_quality (health: its main part)
    rule: str  # the rule that raised it: one of RULES
    severity: Severity
    status: Status
    window_start: str
    window_end: str
    health_score: float | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_body(self, sent_at: str | None = None) -> dict[str, Any]:
        """The webhook body (``sent_at`` only when given: it is set per delivery attempt)."""
        body: dict[str, Any] = {
            "alert_id": self.alert_id,
            "model": self.model,
            "model_version": self.model_version,
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "status": self.status,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "health_score": self.health_score,
            "summary": self.summary,
            "details": self.details,
        }
        if sent_at is not None:
            body["sent_at"] = sent_at
        return body


def alert_id(model: str, rule: str, first_window_start: str) -> str:
    """The id of the episode of ``rule`` that began with the window at ``first_window_start``.

    A hash, so a replay or a restart that sees the same windows gives the same id.

    >>> alert_id("wine", "drift", "2026-01-01T00:00:00Z") == alert_id(
    ...     "wine", "drift", "2026-01-01T01:00:00+01:00")
    True
    """
    start_ms = parse_timestamp_ms(first_window_start)
    key = f"driftline-alert\x1f{model}\x1f{rule}\x1f{start_ms}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def build_event(
    line: Mapping[str, Any],
    rule_name: str,
    rule: AlertRule,
    *,
    status: Status,
    episode_id: str,
    kind: str,
    first_window_start: str,
) -> AlertEvent:
    """The notice about ``line`` (the window that changed the episode's state)."""
    health_score = _finite(line.get("health_score"))
    model = str(line["model"])
    if status == "firing":
        suffix = "" if rule_name == "health" else _health(health_score)
        summary = f"{model}: {_what(line, rule_name, rule)}{suffix}"
    else:
        what = "health" if rule_name == "health" else kind.replace("_", " ")
        since = format_rfc3339_ms(parse_timestamp_ms(first_window_start))
        summary = f"{model}: {what} resolved (firing since {since}){_health(health_score)}"
    details = {
        "revision": int(line.get("revision", 0)),
        "first_window_start": first_window_start,
        **_details(line, rule_name, rule),
    }
    version = line.get("model_version")
    return AlertEvent(
        alert_id=episode_id,
        model=model,
        model_version=None if version is None else str(version),
        kind=kind,
        rule=rule_name,
        severity=rule.severity,
        status=status,
        window_start=str(line["window_start"]),
        window_end=str(line["window_end"]),
        health_score=health_score,
        summary=summary,
        details=_plain(details),
    )


def main_part(line: Mapping[str, Any]) -> str:
    """The health component that weighs most on a window's score (its alert kind)."""
    parts = line.get("health") or {}
    return max(HEALTH_PARTS, key=lambda p: (_finite(parts.get(p)) or 0.0, -HEALTH_PARTS.index(p)))


# --- summaries and details ---------------------------------------------------------------


def _what(line: Mapping[str, Any], rule_name: str, rule: AlertRule) -> str:
    if rule_name == "drift":
        features = line.get("features") or {}
        drifted = [name for name, f in features.items() if f.get("drift")]
        if not drifted:
            return f"drift (drift share {_number(line.get('drift_share'))})"
        return f"drift in {_names(drifted)} ({len(drifted)} of {len(features)} features)"
    if rule_name == "performance":
        check = (line.get("health") or {}).get("performance_check")
        if not check:
            return "performance below the reference"
        return (
            f"{check['metric']} {_number(check['value'])} vs reference "
            f"{_number(check['reference'])} ({check['basis']}, n={check['n']})"
        )
    if rule_name == "data_quality":
        per_feature = (line.get("data_quality") or {}).get("features") or {}
        bad = [name for name, f in per_feature.items() if f.get("alert")]
        if not bad:
            return "data quality below the reference"
        return f"data quality in {_names(bad)} ({len(bad)} of {len(per_feature)} features)"
    score = _finite(line.get("health_score"))
    return (
        f"health {_number(score, 0)} below {_number(rule.below, 0)} "
        f"(mostly {main_part(line).replace('_', ' ')})"
    )


def _details(line: Mapping[str, Any], rule_name: str, rule: AlertRule) -> dict[str, Any]:
    if rule_name == "drift":
        return {
            "drift_share": line.get("drift_share"),
            "drift_detected": line.get("drift_detected"),
            "features": line.get("features") or {},
            "prediction_drift": line.get("prediction_drift"),
        }
    if rule_name == "performance":
        return {
            "performance": line.get("performance"),
            "estimated_performance": line.get("estimated_performance"),
            "performance_check": (line.get("health") or {}).get("performance_check"),
        }
    if rule_name == "data_quality":
        return {"data_quality": line.get("data_quality")}
    return {"below": rule.below, "health": line.get("health")}


def _health(score: float | None) -> str:
    return "" if score is None else f" — health {score:.0f}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown if len(names) <= MAX_NAMES else f"{shown} and {len(names) - MAX_NAMES} more"


def _number(value: Any, digits: int = 2) -> str:
    number = _finite(value)
    return "n/a" if number is None else f"{number:.{digits}f}"


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    # JSON-safe: NaN and infinities become null (as in the store), numpy values plain
    data: dict[str, Any] = orjson.loads(
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    )
    return data
