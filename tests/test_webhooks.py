"""Webhook delivery (monitor/alerts/webhook.py, outbox.py) against a real HTTP receiver.

The receiver is a ``ThreadingHTTPServer`` on 127.0.0.1 that checks every signature with
``verify`` and records what it got; it can answer 503, answer slowly, or be stopped and
started again on the same port. Downtime is scaled from a minute to ~2 seconds, with
backoffs scaled alike.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import structlog
from jsonschema import Draft202012Validator
from sqlalchemy import select

from monitor.alerts import (
    SIGNATURE_HEADER,
    AlertPolicyState,
    OutboxWorker,
    enqueue,
    routes_for,
    sign,
    slack_body,
    verify,
)
from monitor.config import (
    AlertDelivery,
    AlertPolicy,
    AlertRule,
    AlertSettings,
    StoreSettings,
    WebhookRoute,
)
from monitor.schemas import load_schema
from monitor.store import Store, open_store
from monitor.store import tables as t
from tests.services.webhook_receiver import Receiver, Request
from tests.test_alert_policy import line

SECRET = "whsec-driftline-test"
FAST = AlertDelivery(timeout_s=2.0, initial_backoff_s=0.05, max_backoff_s=0.3, give_up_after_s=60.0)
ALERT_SCHEMA = Draft202012Validator(load_schema("alert"))


# --- the receiver ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    # `driftline` CLI tests configure structlog to print to pytest's captured stderr of
    # their own test, which is closed by now
    structlog.reset_defaults()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(SECRET)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(StoreSettings(url=f"sqlite:///{tmp_path}/s.db")) as opened:
        opened.register_model("wine", "classification")
        yield opened


# --- helpers -----------------------------------------------------------------------------


def settings_for(receiver: Receiver, delivery: AlertDelivery = FAST, **route: Any) -> AlertSettings:
    options = {"secret": SECRET, **route}
    return AlertSettings(routes=(WebhookRoute("hook", receiver.url, **options),), delivery=delivery)


def raise_alerts(
    store: Store, settings: AlertSettings, episodes: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Commit ``episodes`` drift episodes (a firing and a resolved notice each) like the
    daemon does: alerts and their outbox rows in one batch. Returns the bodies."""
    flappy = AlertRule(keep_firing=1, cooldown_s=0.0)  # an episode per two windows
    state = AlertPolicyState("wine", AlertPolicy(drift=flappy))
    lines = [line(i, drift=i % 2 == 0) for i in range(2 * episodes)]
    bodies = [event.to_body() for item in lines for event in state.evaluate(item)]
    rows = enqueue(bodies, settings.routes, now or datetime.now(UTC))
    store.commit_batch("g", alerts=bodies, outbox=rows)
    return bodies


def outbox(store: Store) -> list[dict[str, Any]]:
    with store.reading("reading the outbox") as conn:
        return [dict(r) for r in conn.execute(select(t.Outbox).order_by(t.Outbox.id)).mappings()]


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def notices(requests: list[Request]) -> Counter[tuple[str, str]]:
    return Counter((r.body["alert_id"], r.body["status"]) for r in requests)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- tests -------------------------------------------------------------------------------


class TestSigning:
    def test_the_signature_is_the_hmac_of_timestamp_dot_body(self) -> None:
        expected = hmac.new(SECRET.encode(), b'1767225600.{"a":1}', hashlib.sha256).hexdigest()
        assert sign(b'{"a":1}', SECRET, 1767225600) == f"t=1767225600,v1={expected}"

    def test_verify_refuses_a_changed_body_a_wrong_secret_and_a_stale_timestamp(self) -> None:
        header = sign(b"{}", SECRET, 1000)
        assert verify(header, b"{}", SECRET, tolerance_s=300, now=1200)
        assert not verify(header, b"{ }", SECRET, tolerance_s=300, now=1200)
        assert not verify(header, b"{}", "other", tolerance_s=300, now=1200)
        assert not verify(header, b"{}", SECRET, tolerance_s=300, now=1400)

    def test_verify_accepts_any_of_several_v1_signatures(self) -> None:
        old = sign(b"{}", "old-secret", 1000).partition(",")[2]
        header = f"{sign(b'{}', SECRET, 1000)},{old}"
        assert verify(header, b"{}", "old-secret", tolerance_s=10, now=1000)

    @pytest.mark.parametrize("header", [None, "", "t=abc,v1=00", "v1=00", "t=1000"])
    def test_verify_refuses_malformed_headers(self, header: str | None) -> None:
        assert not verify(header, b"{}", SECRET, tolerance_s=10, now=1000)


class TestRouting:
    ALERT: ClassVar[dict[str, str]] = {
        "alert_id": "a", "model": "wine", "kind": "drift", "severity": "warning"
    }  # fmt: skip

    def test_routes_match_model_kind_and_minimum_severity(self) -> None:
        routes = (
            WebhookRoute("all", "http://127.0.0.1:1/a"),
            WebhookRoute("iris", "http://127.0.0.1:1/b", models=("iris",)),
            WebhookRoute("perf", "http://127.0.0.1:1/c", kinds=("performance",)),
            WebhookRoute("pager", "http://127.0.0.1:1/d", min_severity="critical"),
            WebhookRoute("wine-drift", "http://127.0.0.1:1/e", models=("wine",), kinds=("drift",)),
        )
        assert [r.name for r in routes_for(self.ALERT, routes)] == ["all", "wine-drift"]
        critical = {**self.ALERT, "severity": "critical"}
        assert [r.name for r in routes_for(critical, routes)] == ["all", "pager", "wine-drift"]

    def test_a_health_rule_alert_matches_the_health_kind_not_its_window_kind(self) -> None:
        routes = (WebhookRoute("drift", "http://127.0.0.1:1/a", kinds=("drift",)),
                  WebhookRoute("health", "http://127.0.0.1:1/b", kinds=("health",)))  # fmt: skip
        chosen = routes_for({**self.ALERT, "rule": "health"}, routes)
        assert [r.name for r in chosen] == ["health"]

    def test_enqueue_makes_one_row_per_notice_and_matching_route(self) -> None:
        routes = (WebhookRoute("a", "http://127.0.0.1:1/a"), WebhookRoute("b", "http://127.0.0.1:1/b"),
                  WebhookRoute("c", "http://127.0.0.1:1/c", models=("iris",)))  # fmt: skip
        now = datetime(2026, 1, 1, tzinfo=UTC)
        rows = enqueue([self.ALERT, {**self.ALERT, "alert_id": "b"}], routes, now)
        assert [(r["alert_id"], r["route"]) for r in rows] == [
            ("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")
        ]  # fmt: skip
        assert rows[0]["body"]["raised_at"] == "2026-01-01T00:00:00Z"


class TestDelivery:
    def test_a_signed_alert_arrives_valid_once_and_is_marked_delivered(
        self, store_url: str, receiver: Receiver
    ) -> None:
        settings = settings_for(receiver)
        with open_store(StoreSettings(url=store_url)) as store:
            store.register_model("wine", "classification")
            bodies = raise_alerts(store, settings, episodes=1)
            stats = OutboxWorker(store, settings).run_once()
            rows = outbox(store)
        assert (stats.claimed, stats.delivered) == (2, 2)
        assert notices(receiver.requests) == {(b["alert_id"], b["status"]): 1 for b in bodies}
        for request in receiver.requests:
            assert request.status == 200  # the receiver verified the signature
            assert request.headers["Content-Type"] == "application/json"
            assert ALERT_SCHEMA.is_valid(request.body)
            assert request.body["sent_at"].endswith("Z")
        assert all(r["delivered_at"] is not None and r["attempts"] == 1 for r in rows)

    def test_the_body_is_the_same_as_enqueued_except_sent_at(
        self, store: Store, receiver: Receiver
    ) -> None:
        settings = settings_for(receiver)
        raise_alerts(store, settings, episodes=1)
        OutboxWorker(store, settings).run_once()
        for row, request in zip(outbox(store), receiver.requests, strict=True):
            sent = dict(request.body)
            del sent["sent_at"]
            assert sent == row["body"]

    def test_a_route_without_a_secret_sends_no_signature(self, store: Store) -> None:
        unsigned = Receiver(secret=None)
        unsigned.start()
        try:
            settings = settings_for(unsigned, secret=None)
            raise_alerts(store, settings, episodes=1)
            OutboxWorker(store, settings).run_once()
        finally:
            unsigned.stop()
        assert len(unsigned.accepted()) == 2
        assert all(SIGNATURE_HEADER not in r.headers for r in unsigned.requests)

    def test_a_slack_route_receives_a_signed_slack_message(
        self, store: Store, receiver: Receiver
    ) -> None:
        settings = settings_for(receiver, format="slack")
        bodies = raise_alerts(store, settings, episodes=1)
        OutboxWorker(store, settings).run_once()
        firing = receiver.accepted()[0].body
        assert set(firing) == {"text", "blocks"}
        assert firing == slack_body(bodies[0])
        assert firing["text"].startswith(":warning: [warning] wine: drift in alcohol, color")
        assert bodies[0]["alert_id"] in firing["blocks"][-1]["elements"][0]["text"]
        assert receiver.accepted()[1].body["text"].startswith(":white_check_mark:")

    def test_a_commit_does_not_wait_for_a_slow_receiver(
        self, store: Store, receiver: Receiver
    ) -> None:
        receiver.delay_s = 2.0
        settings = settings_for(receiver)
        with OutboxWorker(store, settings, poll_interval_s=0.05):
            raise_alerts(store, settings, episodes=1)
            assert receiver.in_flight.wait(5.0)
            store.commit_batch("g", offsets={("driftline.predictions", 0): 10})
            # committed while the receiver still sleeps on the request: no lock is held
            assert receiver.requests == []


class TestFaults:
    def test_after_the_receiver_was_down_every_alert_arrives_exactly_once(
        self, store: Store, receiver: Receiver
    ) -> None:
        settings = settings_for(receiver)
        receiver.stop()
        with OutboxWorker(store, settings, poll_interval_s=0.05) as worker:
            bodies = raise_alerts(store, settings, episodes=3)
            worker.wake()
            time.sleep(2.0)  # "down for 60 s", scaled
            down = outbox(store)
            assert all(r["delivered_at"] is None and r["attempts"] >= 2 for r in down)
            assert all("ConnectError" in r["last_error"] for r in down)
            receiver.start()
            wait_until(lambda: all(r["delivered_at"] is not None for r in outbox(store)))
            time.sleep(0.5)  # time for any wrong second delivery to show
        expected = {(b["alert_id"], b["status"]): 1 for b in bodies}
        assert notices(receiver.requests) == expected  # no duplicates, not even deduplicated
        assert len(receiver.accepted()) == len(outbox(store)) == 6

    def test_503_answers_are_retried_until_a_2xx(self, store: Store, receiver: Receiver) -> None:
        settings = settings_for(receiver)
        receiver.status = 503
        with OutboxWorker(store, settings, poll_interval_s=0.05):
            bodies = raise_alerts(store, settings, episodes=1)
            wait_until(lambda: len(receiver.requests) >= 6)
            receiver.status = 200
            wait_until(lambda: all(r["delivered_at"] is not None for r in outbox(store)))
        assert notices(receiver.accepted()) == {(b["alert_id"], b["status"]): 1 for b in bodies}
        assert all(r["last_error"].startswith("HTTP 503") for r in outbox(store))

    def test_pending_deliveries_survive_a_restart_and_are_sent_then(
        self, store_url: str, receiver: Receiver
    ) -> None:
        settings = settings_for(receiver)
        receiver.stop()
        with open_store(StoreSettings(url=store_url)) as before:
            before.register_model("wine", "classification")
            bodies = raise_alerts(before, settings, episodes=2)
            first = OutboxWorker(before, settings)
            assert first.run_once().retried == 4  # the receiver is down
            first.stop()
        receiver.start()
        with open_store(StoreSettings(url=store_url)) as after:
            worker = OutboxWorker(after, settings)
            wait_until(lambda: worker.run_once().claimed == 0 and all(
                r["delivered_at"] is not None for r in outbox(after)))  # fmt: skip
            worker.stop()
        assert notices(receiver.requests) == {(b["alert_id"], b["status"]): 1 for b in bodies}

    def test_a_crash_while_sending_is_retried_once_its_lease_ends(
        self, store: Store, receiver: Receiver
    ) -> None:
        class Crash(BaseException):
            pass

        def crash(request: httpx.Request) -> httpx.Response:
            raise Crash

        settings = settings_for(receiver)
        raise_alerts(store, settings, episodes=1)
        now = datetime.now(UTC)  # the rows are due
        clock = FakeClock(now)
        crashing = OutboxWorker(store, settings, httpx.Client(transport=httpx.MockTransport(crash)),
                                clock=clock)  # fmt: skip
        with pytest.raises(Crash):
            crashing.run_once()
        restarted = OutboxWorker(store, settings, clock=clock)
        assert restarted.run_once().claimed == 0  # leased: another worker keeps off it
        clock.now = now + timedelta(seconds=FAST.timeout_s + 31)
        assert restarted.run_once().delivered == 2
        assert len(receiver.accepted()) == 2

    @pytest.mark.parametrize("fault", ["503", "down"])
    def test_it_gives_up_only_after_the_horizon_and_records_why(
        self, store: Store, receiver: Receiver, fault: str
    ) -> None:
        delivery = AlertDelivery(initial_backoff_s=1.0, max_backoff_s=4.0, give_up_after_s=30.0)
        settings = settings_for(receiver, delivery)
        if fault == "503":
            receiver.status = 503
        else:
            receiver.stop()
        start = datetime.now(UTC).replace(microsecond=0)
        clock = FakeClock(start)
        raise_alerts(store, settings, episodes=1, now=start)
        worker = OutboxWorker(store, settings, clock=clock)
        attempts_at = []
        while not all(r["gave_up_at"] for r in outbox(store)):
            clock.now = min(r["next_attempt_at"] for r in outbox(store) if not r["gave_up_at"])
            attempts_at.append(clock.now)
            worker.run_once()
            assert len(attempts_at) < 500
        for row in outbox(store):
            assert row["delivered_at"] is None
            assert row["gave_up_at"] - start >= timedelta(seconds=30)
            assert row["last_error"].startswith(f"gave up after {row['attempts']} attempts")
            assert ("HTTP 503" if fault == "503" else "ConnectError") in row["last_error"]
            assert row["attempts"] > 7  # retried all along, at most 4 s apart
        assert max(attempts_at) - start <= timedelta(seconds=30)  # the last try at the horizon

    def test_backoff_is_exponential_with_full_jitter_capped(self, store: Store) -> None:
        delivery = AlertDelivery(initial_backoff_s=1.0, max_backoff_s=20.0)
        worker = OutboxWorker(store, AlertSettings(delivery=delivery))
        for attempts, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 20.0), (60, 20.0)]:
            waits = [worker.backoff_s(attempts) for _ in range(2000)]
            assert min(waits) >= 0.0
            assert max(waits) <= cap
            assert abs(sum(waits) / len(waits) - cap / 2) < cap * 0.05
        assert worker.backoff_s(1, retry_after_s=7.0) >= 7.0
