"""``driftline status``: health per model from the store, for a person or a script.

    wine            12 windows  last 2026-01-01T03:00:00Z  health  62.5  DRIFT  alerts: drift
      recent health: 99 98 97 99 64 62
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import Config
from monitor.store import open_store, queries

__all__ = ["render", "status"]


def status(config: Config, models: Sequence[str] = (), since_s: float | None = None
           ) -> list[dict[str, Any]]:
    """Per configured model: its newest windows (latest revisions) and open alerts."""
    since = None if since_s is None else datetime.now(UTC) - timedelta(seconds=since_s)
    names = list(models) or [m.name for m in config.models]
    with open_store(config.store) as store:
        out = []
        for name in names:
            health = queries.health(store, name, since=since)
            firing = queries.alerts(store, model=name, status="firing")
            out.append({"model": name, "windows": len(health),
                        "last": health[-1] if health else None,
                        "recent_health": [h["health_score"] for h in health[-12:]],
                        "firing_alerts": [a["kind"] for a in firing]})
    return out


def render(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        last = row["last"]
        if last is None:
            lines.append(f"{row['model']:<16} no window scored yet")
            continue
        drift = "DRIFT" if last["drift_detected"] else "ok"
        alerts = ", ".join(last["alerts"]) or "none"
        lines.append(
            f"{row['model']:<16} {row['windows']:>5} windows  last {last['window_end']}  "
            f"health {last['health_score']:5.1f}  {drift:<5}  labels {last['n_labels']}  "
            f"alerts: {alerts}")
        recent = " ".join(f"{h:.0f}" for h in row["recent_health"] if h is not None)
        lines.append(f"  recent health: {recent}")
        if row["firing_alerts"]:
            lines.append(f"  firing: {', '.join(row['firing_alerts'])}")
    return "\n".join(lines)
