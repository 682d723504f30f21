"""Alerts: per-model policies over window lines, and webhook delivery (contract section 4).

    state = AlertPolicyState("wine", config.model("wine").alerts)   # or .from_dict(saved)
    events = state.evaluate(line)                # per window line, in pipeline order
    bodies = [event.to_body() for event in events]
    store.commit_batch(group, ..., alerts=bodies,
                       outbox=enqueue(bodies, config.alerts.routes, now))
    worker = OutboxWorker(store, config.alerts); worker.start(); ...; worker.stop()

``policy.py`` (pure state machine) and ``event.py`` (the notices and their bodies) do no
I/O; ``webhook.py`` is the wire format (signing, Slack, routing); ``outbox.py`` the
delivery through the store.
"""

from __future__ import annotations

from monitor.alerts.event import AlertEvent, alert_id
from monitor.alerts.outbox import DeliveryStats, OutboxWorker, enqueue
from monitor.alerts.policy import AlertPolicyState, verdict
from monitor.alerts.webhook import SIGNATURE_HEADER, encode, routes_for, sign, slack_body, verify

__all__ = [
    "SIGNATURE_HEADER",
    "AlertEvent",
    "AlertPolicyState",
    "DeliveryStats",
    "OutboxWorker",
    "alert_id",
    "encode",
    "enqueue",
    "routes_for",
    "sign",
    "slack_body",
    "verdict",
    "verify",
]
