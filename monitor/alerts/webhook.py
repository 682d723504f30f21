"""Webhook wire format (contract section 4): signing, the Slack body, and routing.

The signature header is ``X-Driftline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">``, over the exact bytes sent. Receivers check it with :func:`verify`, which
also refuses a timestamp older (or newer) than ``tolerance_s`` against replays.

>>> header = sign(b'{"alert_id":"a"}', "s3cret", t=1767225600)
>>> header.startswith("t=1767225600,v1=")
True
>>> verify(header, b'{"alert_id":"a"}', "s3cret", tolerance_s=300, now=1767225700)
True
>>> verify(header, b'{"alert_id":"b"}', "s3cret", tolerance_s=300, now=1767225700)
False
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from monitor.alerts.event import AlertEvent
from monitor.config import WebhookRoute

__all__ = ["SIGNATURE_HEADER", "encode", "routes_for", "sign", "slack_body", "verify"]

SIGNATURE_HEADER = "X-Driftline-Signature"
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_ICONS = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
_RESOLVED_ICON = ":white_check_mark:"
_HEADER_LIMIT, _TEXT_LIMIT, _FIELD_LIMIT = 150, 3000, 2000  # Slack's block limits

Alert = AlertEvent | Mapping[str, Any]


def encode(body: Mapping[str, Any]) -> bytes:
    """The bytes sent (and signed) for a body: compact UTF-8 JSON."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def sign(body: bytes, secret: str, t: int) -> str:
    """The ``X-Driftline-Signature`` value of ``body`` sent at unix second ``t``."""
    digest = hmac.new(secret.encode(), f"{int(t)}.".encode() + body, hashlib.sha256)
    return f"t={int(t)},v1={digest.hexdigest()}"


def verify(
    header: str | None,
    body: bytes,
    secret: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    ``now`` is unix seconds (default: the wall clock). Several ``v1=`` entries are
    accepted (any one may match), so a sender can sign with an old and a new secret.
    """
    if not header:
        return False
    stamp: int | None = None
    signatures = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            stamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if stamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        return False
    expected = sign(body, secret, stamp).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in signatures)


def routes_for(alert: Alert, routes: Sequence[WebhookRoute]) -> list[WebhookRoute]:
    """The routes an alert goes to: model, kind and severity match.

    A route's ``kinds`` match the alert's ``rule`` when it has one (so ``health`` selects
    the alerts of the health rule, whatever their kind), else its ``kind``.
    """
    body = alert.to_body() if isinstance(alert, AlertEvent) else alert
    kind = str(body.get("rule") or body["kind"])
    rank = SEVERITY_RANK.get(str(body["severity"]), 0)
    return [
        route
        for route in routes
        if (not route.models or body["model"] in route.models)
        and (not route.kinds or kind in route.kinds)
        and rank >= SEVERITY_RANK[route.min_severity]
    ]


def slack_body(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` fallback and ``blocks``) for an alert."""
    body = alert.to_body() if isinstance(alert, AlertEvent) else alert
    severity, status = str(body["severity"]), str(body["status"])
    icon = _RESOLVED_ICON if status == "resolved" else _ICONS.get(severity, "")
    summary = _escape(str(body.get("summary", "")))
    title = f"{body['model']}: {str(body['kind']).replace('_', ' ')} {status}"
    window = "n/a"
    if body.get("window_start"):
        window = f"{body['window_start']} – {body.get('window_end') or '?'}"
    health = body.get("health_score")
    fields = {
        "Severity": severity,
        "Window": window,
        "Health": "n/a" if health is None else f"{float(health):.1f}",
        "Model version": str(body.get("model_version") or "n/a"),
    }
    return {
        "text": f"{icon} [{severity}] {summary}"[:_TEXT_LIMIT],
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"{icon} {title}"[:_HEADER_LIMIT]},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": summary[:_TEXT_LIMIT] or title},
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{_escape(value)}"[:_FIELD_LIMIT]}
                    for name, value in fields.items()
                ],
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"driftline alert_id `{body['alert_id']}`"}
                ],
            },
        ],
    }


def _escape(text: str) -> str:
    # the three characters Slack's mrkdwn needs escaped
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
