"""Alert policy of one model: window lines in, firing and resolved notices out. Pure.

Per rule (drift, performance, data_quality, health) each window line gives a verdict: bad,
good, or none (no verdict: performance before any label or estimate, health without a
score). Windows without a verdict neither count nor break a run. In window order:

- ``pending`` bad windows in a row fire the alert: status ``firing``, ``alert_id`` =
  hash(model, rule, start of the first bad window of the run), so the same windows always
  give the same id, after a retry, a replay or a restart;
- while firing, more bad windows send nothing; ``keep_firing`` good windows in a row
  resolve it: status ``resolved``, the same ``alert_id``;
- after a resolve, windows that start at or before the resolving window are ignored (no
  second episode can begin with a window that an earlier one already covered), and no new
  episode fires from a window starting less than ``cooldown`` (event time) after the
  resolving window ends. Bad windows inside the cooldown still count towards ``pending``.

Revision lines (``revision`` > 0: late labels changed a closed window's performance) are
evaluated for the performance rule only; the other rules were decided when the window
first closed. A revision replaces the verdict of its window (windows are keyed by start and
end), so the run is always read in window order however late the labels come, and the
window never counts twice. Only the newest ``max(pending, keep_firing)`` verdicts of a rule
are kept: older ones cannot change a decision.

The state is plain data (``to_dict``/``from_dict``) so the daemon saves it in the same
transaction as the alerts it produced.

>>> from monitor.config import AlertPolicy, AlertRule
>>> state = AlertPolicyState("wine", AlertPolicy(drift=AlertRule(pending=2, keep_firing=1)))
>>> def line(i, drift):
...     return {"model": "wine", "window_start": f"2026-01-01T0{i}:00:00Z",
...             "window_end": f"2026-01-01T0{i}:15:00Z", "drift_detected": drift,
...             "alerts": ["drift"] if drift else [], "health_score": 50.0 if drift else 100.0}
>>> [e.status for i, d in enumerate([True, True, True, False]) for e in state.evaluate(line(i, d))]
['firing', 'resolved']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.alerts.event import RULES, AlertEvent, Status, alert_id, build_event, main_part
from monitor.config import AlertPolicy, AlertRule
from monitor.timeparse import format_rfc3339_ms, parse_timestamp_ms

__all__ = ["AlertPolicyState", "verdict"]

STATE_VERSION = 1


@dataclass
class _RuleState:
    """One rule's run of recent verdicts and its open episode."""

    # (window start ms, window end ms, bad) of the newest windows with a verdict, in order
    verdicts: list[tuple[int, int, bool]] = field(default_factory=list)
    alert_id: str | None = None  # the firing episode
    kind: str | None = None  # its contract kind
    first_window_start: str | None = None  # its first bad window
    floor_ms: int | None = None  # windows starting at or before this are past
    resolved_end_ms: int | None = None  # end of the window that resolved the last episode

    def record(self, start: int, end: int, bad: bool, keep: int) -> None:
        self.verdicts = [v for v in self.verdicts if (v[0], v[1]) != (start, end)]
        self.verdicts.append((start, end, bad))
        self.verdicts.sort()
        del self.verdicts[:-keep]

    def run(self) -> tuple[int, bool]:
        """Length and kind (bad?) of the newest run of equal verdicts."""
        last = self.verdicts[-1][2]
        length = 0
        for _, _, bad in reversed(self.verdicts):
            if bad != last:
                break
            length += 1
        return length, last

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdicts": [list(v) for v in self.verdicts],
            "alert_id": self.alert_id,
            "kind": self.kind,
            "first_window_start": self.first_window_start,
            "floor_ms": self.floor_ms,
            "resolved_end_ms": self.resolved_end_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _RuleState:
        verdicts = [(int(s), int(e), bool(b)) for s, e, b in data.get("verdicts", [])]
        return cls(
            verdicts=verdicts,
            **{key: data.get(key) for key in _OPTIONAL_KEYS},
        )


_OPTIONAL_KEYS = ("alert_id", "kind", "first_window_start", "floor_ms", "resolved_end_ms")


class AlertPolicyState:
    """The alert state of one model under its :class:`~monitor.config.AlertPolicy`."""

    def __init__(
        self,
        model: str,
        policy: AlertPolicy,
        rules: Mapping[str, _RuleState] | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self._rules = {name: _RuleState() for name in RULES}
        self._rules.update(rules or {})

    def firing(self) -> dict[str, str]:
        """The open episodes: rule -> alert_id."""
        return {name: s.alert_id for name, s in self._rules.items() if s.alert_id is not None}

    def evaluate(self, line: Mapping[str, Any]) -> list[AlertEvent]:
        """The notices one window line (contract section 3) raises, in rule order."""
        if line.get("model") != self.model:
            raise ValueError(
                f"a line of model {line.get('model')!r} given to the alert policy of "
                f"{self.model!r}; keep one AlertPolicyState per model"
            )
        revision = int(line.get("revision", 0))
        events = []
        for name in RULES:
            rule: AlertRule = getattr(self.policy, name)
            if not rule.enabled or (revision > 0 and name != "performance"):
                continue
            bad = verdict(name, rule, line)
            if bad is not None:
                event = self._step(name, rule, line, bad)
                if event is not None:
                    events.append(event)
        return events

    def _step(
        self, name: str, rule: AlertRule, line: Mapping[str, Any], bad: bool
    ) -> AlertEvent | None:
        state = self._rules[name]
        start = parse_timestamp_ms(line["window_start"])
        end = parse_timestamp_ms(line["window_end"])
        if state.floor_ms is not None and start <= state.floor_ms:
            return None
        state.record(start, end, bad, keep=max(rule.pending, rule.keep_firing))
        length, run_is_bad = state.run()
        if state.alert_id is None:
            if not run_is_bad or length < rule.pending or self._cooling(state, rule):
                return None
            first_start = format_rfc3339_ms(state.verdicts[-length][0])
            state.alert_id = alert_id(self.model, name, first_start)
            state.kind = main_part(line) if name == "health" else name
            state.first_window_start = first_start
            return self._event(line, name, rule, state, "firing")
        if run_is_bad or length < rule.keep_firing:
            return None
        event = self._event(line, name, rule, state, "resolved")
        newest_start, newest_end, _ = state.verdicts[-1]
        state.floor_ms, state.resolved_end_ms = newest_start, newest_end
        state.verdicts.clear()
        state.alert_id = state.kind = state.first_window_start = None
        return event

    def _cooling(self, state: _RuleState, rule: AlertRule) -> bool:
        if state.resolved_end_ms is None:
            return False
        return state.verdicts[-1][0] < state.resolved_end_ms + rule.cooldown_s * 1000.0

    def _event(
        self, line: Mapping[str, Any], name: str, rule: AlertRule, state: _RuleState, status: Status
    ) -> AlertEvent:
        assert state.alert_id is not None
        assert state.kind is not None
        assert state.first_window_start is not None
        return build_event(
            line,
            name,
            rule,
            status=status,
            episode_id=state.alert_id,
            kind=state.kind,
            first_window_start=state.first_window_start,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state (the policy itself comes from the config)."""
        return {
            "version": STATE_VERSION,
            "model": self.model,
            "rules": {name: s.to_dict() for name, s in self._rules.items()},
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], policy: AlertPolicy, model: str | None = None
    ) -> AlertPolicyState:
        """The state saved by ``to_dict``, under the (possibly changed) ``policy``."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"alert state version {data.get('version')!r} is not supported")
        name = str(data["model"]) if model is None else model
        rules = {k: _RuleState.from_dict(v) for k, v in data.get("rules", {}).items()}
        return cls(name, policy, {k: v for k, v in rules.items() if k in RULES})


def verdict(rule_name: str, rule: AlertRule, line: Mapping[str, Any]) -> bool | None:
    """Whether ``line`` is bad for a rule (None: no verdict, the window does not count).

    Performance is bad when the line's alerts name it (measured, enough labels) or when
    its performance check, measured or estimated, is at or past the alert level
    (severity >= 0.5); it has no verdict while the window has neither labels nor estimate.
    """
    alerts = line.get("alerts") or ()
    if rule_name == "drift":
        detected = line.get("drift_detected")
        return "drift" in alerts if detected is None else bool(detected)
    if rule_name == "data_quality":
        return "data_quality" in alerts
    if rule_name == "performance":
        if "performance" in alerts:
            return True
        check = (line.get("health") or {}).get("performance_check")
        return None if check is None else float(check.get("severity") or 0.0) >= 0.5
    score = line.get("health_score")
    below = 50.0 if rule.below is None else rule.below
    return None if score is None else float(score) < below
