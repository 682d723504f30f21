"""Alert delivery through the store's outbox: written with the window, sent in the background.

The daemon turns a batch's alert notices into outbox rows with :func:`enqueue` and hands
them to ``Store.commit_batch(..., alerts=bodies, outbox=rows)``: one transaction with the
windows that raised them (and the policy state, saved alongside by the daemon), so a
crash neither loses an alert nor raises it twice. An
:class:`OutboxWorker` then sends due rows from a plain background thread (woken by
``wake()`` or every ``poll_interval_s``), so ingest never waits for a receiver.

Per row: POST ``Content-Type: application/json`` (signed when the route has a secret);
a 2xx marks it delivered. Anything else is retried after an exponential backoff with full
jitter, ``uniform(0, min(max_backoff, initial_backoff · 2^(attempts−1)))``, at least any
``Retry-After``, and never later than the horizon. A row still failing ``give_up_after``
after its alert was raised (``raised_at``) is given up: ``gave_up_at`` and ``last_error``
say when and why. Rows survive restarts (they are in the store); a row being sent is
leased (``next_attempt_at`` moved past the request timeout) so a crash mid-send retries
it, and a second worker skips it. Delivery is at least once; receivers deduplicate on
(``alert_id``, ``status``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import select, update

from monitor.alerts.event import AlertEvent
from monitor.alerts.webhook import SIGNATURE_HEADER, encode, routes_for, sign, slack_body
from monitor.config import AlertSettings, WebhookRoute
from monitor.store import Store
from monitor.store import tables as t
from monitor.store.utc import parse_rfc3339, rfc3339, utc_now

__all__ = ["DeliveryStats", "OutboxWorker", "enqueue"]

log = structlog.get_logger("driftline.alerts")
LEASE_EXTRA_S = 30.0  # a claimed row is retried this long after its request timed out


def enqueue(
    alerts: Iterable[AlertEvent | Mapping[str, Any]],
    routes: Sequence[WebhookRoute],
    now: datetime,
) -> list[dict[str, Any]]:
    """Outbox rows for ``Store.commit_batch(outbox=...)``: one per (alert notice, route).

    The body is fixed here (with ``raised_at`` = ``now``, where the give-up horizon
    starts), so every retry sends the same content; only ``sent_at`` changes.
    """
    rows: list[dict[str, Any]] = []
    for alert in alerts:
        body = alert.to_body() if isinstance(alert, AlertEvent) else dict(alert)
        body.setdefault("raised_at", rfc3339(now))
        rows.extend(
            {"alert_id": body["alert_id"], "route": route.name, "body": body}
            for route in routes_for(body, routes)
        )
    return rows


@dataclass
class DeliveryStats:
    """What one ``run_once`` did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    gave_up: int = 0


@dataclass(frozen=True)
class _Due:
    id: int
    alert_id: str
    route: str
    body: dict[str, Any]
    attempts: int
    raised_at: datetime


class OutboxWorker:
    """Sends the store's due outbox rows to their routes; ``start()``/``stop()`` a thread.

    ``client`` defaults to an ``httpx.Client`` with the delivery timeout (closed on stop);
    ``clock`` gives aware datetimes and ``rng`` the jitter, both injectable for tests.
    """

    def __init__(
        self,
        store: Store,
        settings: AlertSettings,
        client: httpx.Client | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        poll_interval_s: float = 1.0,
        batch_size: int = 100,
        on_stats: Callable[[DeliveryStats], None] | None = None,
    ) -> None:
        """``on_stats`` receives what every background round did (metrics)."""
        self.on_stats = on_stats
        self.store = store
        self.delivery = settings.delivery
        self._routes = {route.name: route for route in settings.routes}
        self._client = client or httpx.Client(timeout=self.delivery.timeout_s)
        self._owns_client = client is None
        self._clock = clock
        self._rng = rng or random.Random()
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one pass ------------------------------------------------------------------------

    def run_once(self) -> DeliveryStats:
        """Send every row due now (up to ``batch_size``) once; returns what happened."""
        due = self._claim(self._clock())
        stats = DeliveryStats(claimed=len(due))
        for index, row in enumerate(due):
            if self._stopping.is_set():
                self._release([r.id for r in due[index:]])
                break
            error, retry_after = self._send(row)
            self._record(row, error, retry_after, stats)
        return stats

    def backoff_s(self, attempts: int, retry_after_s: float | None = None) -> float:
        """The wait after the ``attempts``-th failed attempt (full jitter, capped)."""
        d = self.delivery
        cap = min(d.max_backoff_s, d.initial_backoff_s * 2.0 ** min(attempts - 1, 62))
        wait = self._rng.uniform(0.0, cap)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, d.max_backoff_s))
        return wait

    def _claim(self, now: datetime) -> list[_Due]:
        o, a = t.Outbox, t.Alert
        query = (
            select(o.id, o.alert_id, o.route, o.body, o.attempts, a.created_at)
            .join(a, a.alert_id == o.alert_id)
            .where(o.delivered_at.is_(None), o.gave_up_at.is_(None), o.next_attempt_at <= now)
            .order_by(o.next_attempt_at, o.id)
            .limit(self._batch_size)
            .with_for_update(of=o, skip_locked=True)  # PostgreSQL; SQLite locks the database
        )
        lease = now + timedelta(seconds=self.delivery.timeout_s + LEASE_EXTRA_S)
        with self.store.writing("claiming due alert deliveries") as conn:
            rows = conn.execute(query).all()
            if rows:
                ids = [row.id for row in rows]
                conn.execute(update(o).where(o.id.in_(ids)).values(next_attempt_at=lease))
        return [
            _Due(row.id, row.alert_id, row.route, row.body, row.attempts,
                 _raised_at(row.body, row.created_at))
            for row in rows
        ]  # fmt: skip

    def _release(self, ids: list[int]) -> None:
        now = self._clock()
        with self.store.writing("releasing alert deliveries") as conn:
            conn.execute(update(t.Outbox).where(t.Outbox.id.in_(ids)).values(next_attempt_at=now))

    def _send(self, row: _Due) -> tuple[str | None, float | None]:
        """(error or None, Retry-After seconds) of one POST."""
        route = self._routes.get(row.route)
        if route is None:
            return f"route {row.route!r} is not configured (alerts.routes)", None
        now = self._clock()
        payload = slack_body(row.body) if route.format == "slack" else {
            **row.body, "sent_at": rfc3339(now)
        }  # fmt: skip
        data = encode(payload)
        headers = {"Content-Type": "application/json", "User-Agent": "driftline"}
        if route.secret:
            headers[SIGNATURE_HEADER] = sign(data, route.secret, int(now.timestamp()))
        try:
            response = self._client.post(
                route.url, content=data, headers=headers, timeout=self.delivery.timeout_s
            )
        except httpx.HTTPError as err:
            return f"{type(err).__name__} posting to {route.url}: {err}", None
        if response.is_success:
            return None, None
        text = response.text[:200].strip()
        return f"HTTP {response.status_code} from {route.url}: {text}", _retry_after(response)

    def _record(
        self, row: _Due, error: str | None, retry_after: float | None, stats: DeliveryStats
    ) -> None:
        now = self._clock()
        attempts = row.attempts + 1
        fields: dict[str, Any] = {"attempts": attempts}
        elapsed_s = (now - row.raised_at).total_seconds()
        if error is None:
            fields["delivered_at"] = now
            stats.delivered += 1
        elif elapsed_s >= self.delivery.give_up_after_s:
            fields["gave_up_at"] = now
            fields["last_error"] = (
                f"gave up after {attempts} attempts over {elapsed_s:.0f}s "
                f"(alerts.delivery.give_up_after {self.delivery.give_up_after_s:g}s); "
                f"last error: {error}"
            )
            stats.gave_up += 1
        else:
            horizon = row.raised_at + timedelta(seconds=self.delivery.give_up_after_s)
            wait = timedelta(seconds=self.backoff_s(attempts, retry_after))
            fields["next_attempt_at"] = max(now, min(now + wait, horizon))
            fields["last_error"] = error
            stats.retried += 1
        with self.store.writing(f"recording the delivery of alert {row.alert_id}") as conn:
            conn.execute(update(t.Outbox).where(t.Outbox.id == row.id).values(**fields))
        if error is None:
            log.info("alert_delivered", alert_id=row.alert_id, route=row.route, attempts=attempts)
        elif "gave_up_at" in fields:
            log.warning("alert_gave_up", alert_id=row.alert_id, route=row.route, error=error)

    # --- the background thread -----------------------------------------------------------

    def start(self) -> None:
        """Run ``run_once`` in a daemon thread until ``stop()``."""
        if self._thread is not None and self._thread.is_alive():
            return
        if self._owns_client and self._client.is_closed:  # started again after stop()
            self._client = httpx.Client(timeout=self.delivery.timeout_s)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="driftline-outbox", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for due rows now (call after committing new alerts)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread after the request in flight (if any); close an own client."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.delivery.timeout_s + 5.0)
            self._thread = None
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> OutboxWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                stats = self.run_once()
            except Exception as err:  # keep delivering after a store hiccup
                log.error("outbox_error", error=str(err))
                stats = DeliveryStats()
            if self.on_stats is not None and stats.claimed:
                self.on_stats(stats)
            if stats.claimed >= self._batch_size:
                continue  # more may be due right away
            self._wake.wait(self._poll_interval_s)
            self._wake.clear()


def _raised_at(body: Mapping[str, Any], created_at: datetime) -> datetime:
    raised = body.get("raised_at")
    try:
        return parse_rfc3339(raised) if isinstance(raised, str) else created_at
    except ValueError:
        return created_at


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None
