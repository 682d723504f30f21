"""The daemon's HTTP server: probes, /metrics and the read-only API, over a real socket.

Every test talks to a real uvicorn server on 127.0.0.1 (a free port) with httpx.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from monitor.config import StoreSettings
from monitor.errors import ConfigError
from monitor.http_api import HttpServer, create_app, parse_since
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.store import Store, WindowLine, open_store
from monitor.synthetic import events, reference_frame
from tests.services.store_fixtures import T0, FrozenClock
from tests.test_pipeline import make_config
from tests.test_store import alert, line

NOW = T0 + timedelta(hours=1)  # the API's clock: windows 0..3 end at 00:15 ... 01:00
TOKEN = "s3cret-token"
ALL_READY = {"broker": True, "store": True, "assignment": True}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """wine: windows 0..3 (window 1 revised twice), alerts a1 then a2 (an hour later) and a
    succeeded, promoted retrain; iris: one window, alert b1; cats: registered, nothing yet."""
    folder = tmp_path_factory.mktemp("http")
    clock = FrozenClock()
    with open_store(StoreSettings(url=f"sqlite:///{folder}/s.db"), clock=clock) as opened:
        for name in ("wine", "iris", "cats"):
            opened.register_model(name, "classification")
        opened.register_version("wine", "3", None)
        opened.commit_batch("g", windows=[WindowLine(k, line(k)) for k in range(4)],
                            alerts=[alert("a1"), alert("b1", model="iris")])
        opened.commit_batch("g", windows=[WindowLine(1, line(1, revision=1))])
        opened.commit_batch("g", windows=[WindowLine(1, line(1, revision=2)),
                                          WindowLine(0, line(0, model="iris"))])
        run_id, _ = opened.start_retrain_run("wine", "r1", "a1", T0)
        opened.finish_retrain_run(run_id, "succeeded", mlflow_run_id="m1",
                                  registered_version="4", promoted=True, detail={"x": 1},
                                  finished_at=T0 + timedelta(minutes=5))
        clock.now = NOW
        opened.commit_batch("g", alerts=[alert("a1", status="resolved"), alert("a2")])
        yield opened


Serve = Callable[..., httpx.Client]


@pytest.fixture
def serve(store: Store) -> Iterator[Serve]:
    """``serve(token=None, ready=..., metrics=...)``: a started server and a client of it."""
    started: list[tuple[HttpServer, httpx.Client]] = []

    def start(token: str | None = None, ready: Callable[[], dict[str, bool]] = ALL_READY.copy,
              metrics: Metrics | None = None) -> httpx.Client:
        app = create_app(store, metrics or Metrics(), ready, token, clock=lambda: NOW)
        server = HttpServer(app, "127.0.0.1", 0)
        server.start()
        client = httpx.Client(base_url=server.url, timeout=10)
        started.append((server, client))
        return client

    yield start
    for server, client in started:
        client.close()
        server.stop()


def get(client: httpx.Client, path: str, expect: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == expect, response.text
    return response.json()


class TestProbes:
    def test_healthz_answers_while_the_process_runs(self, serve: Serve) -> None:
        assert get(serve(), "/healthz") == {"status": "ok"}

    def test_readyz_is_200_when_every_check_passes(self, serve: Serve) -> None:
        body = get(serve(), "/readyz")
        assert body == {"ready": True, "checks": ALL_READY, "failing": [], "error": None}

    def test_readyz_is_503_naming_the_failing_checks(self, serve: Serve) -> None:
        client = serve(ready=lambda: {"broker": False, "store": True, "assignment": False})
        body = get(client, "/readyz", 503)
        assert body["ready"] is False
        assert body["failing"] == ["broker", "assignment"]

    def test_a_readiness_check_that_raises_is_a_503_not_a_500(self, serve: Serve) -> None:
        def broken() -> dict[str, bool]:
            raise RuntimeError("consumer gone")

        body = get(serve(ready=broken), "/readyz", 503)
        assert body["failing"] == ["readiness"]
        assert body["error"] == "RuntimeError: consumer gone"


class TestApi:
    def test_models_lists_each_model_with_versions_and_window_counts(self, serve: Serve) -> None:
        models = {m["name"]: m for m in get(serve(), "/api/models")}
        assert list(models) == ["cats", "iris", "wine"]
        assert models["wine"]["windows"] == 6  # 4 windows, 2 revisions
        assert models["wine"]["last_window_end"] == "2026-01-01T01:00:00Z"
        assert [v["version"] for v in models["wine"]["versions"]] == ["3"]
        assert models["cats"]["windows"] == 0
        assert models["cats"]["last_window_end"] is None

    def test_windows_are_the_contract_lines_at_their_latest_revision(self, serve: Serve) -> None:
        rows = get(serve(), "/api/models/wine/windows")
        assert [(r["window_key"], r["revision"]) for r in rows] == [(0, 0), (1, 2), (2, 0), (3, 0)]
        assert rows[1]["performance"]["n_labels"] == 402  # the whole line is served
        assert rows[0]["features"]["alcohol"]["score"] == 0.31
        assert rows[0]["finalised_at"].endswith("Z")

    @pytest.mark.parametrize(
        ("since", "keys"),
        [
            ("2026-01-01T00:30:00Z", [1, 2, 3]),  # windows that ended at or after it
            ("2026-01-01T01:30:00+01:00", [1, 2, 3]),  # any offset
            ("30m", [1, 2, 3]),  # a duration back from the API's clock (01:00)
            ("1m", [3]),
        ],
    )
    def test_since_is_a_time_or_a_duration(self, serve: Serve, since: str, keys: list[int]) -> None:
        rows = get(serve(), "/api/models/wine/windows", since=since)
        assert [r["window_key"] for r in rows] == keys

    def test_until_and_limit_narrow_the_windows(self, serve: Serve) -> None:
        client = serve()
        rows = get(client, "/api/models/wine/windows", until="2026-01-01T00:30:00Z")
        assert [r["window_key"] for r in rows] == [0, 1]
        assert [r["window_key"] for r in get(client, "/api/models/wine/windows", limit=2)] == [2, 3]

    def test_an_unreadable_since_is_a_422_saying_what_is_accepted(self, serve: Serve) -> None:
        body = get(serve(), "/api/models/wine/windows", 422, since="yesterday")
        assert "since: 'yesterday' is neither an RFC 3339 time" in body["detail"]

    def test_an_unknown_model_is_a_404_naming_it(self, serve: Serve) -> None:
        client = serve()
        body = get(client, "/api/models/wien/windows", 404)
        assert body["detail"] == "no model named 'wien'; see /api/models"
        assert get(client, "/api/alerts", 404, model="wien")["detail"].startswith("no model")
        assert get(client, "/api/retrains", 404, model="wien")["detail"].startswith("no model")

    def test_a_known_model_without_results_is_an_empty_list(self, serve: Serve) -> None:
        client = serve()
        assert get(client, "/api/models/cats/windows") == []
        assert get(client, "/api/alerts", model="cats") == []

    def test_alerts_filter_by_model_status_and_since(self, serve: Serve) -> None:
        client = serve()
        assert [a["alert_id"] for a in get(client, "/api/alerts")] == ["a1", "b1", "a2"]
        wine = get(client, "/api/alerts", model="wine")
        assert [(a["alert_id"], a["status"]) for a in wine] == [
            ("a1", "resolved"), ("a2", "firing")
        ]  # fmt: skip
        assert wine[0]["resolved_at"] == "2026-01-01T01:00:00Z"
        firing = get(client, "/api/alerts", status="firing")
        assert [a["alert_id"] for a in firing] == ["b1", "a2"]
        assert [a["alert_id"] for a in get(client, "/api/alerts", since="10m")] == ["a2"]
        assert get(client, "/api/alerts", 422, status="open")["detail"][0]["loc"] == [
            "query", "status"
        ]  # fmt: skip

    def test_retrains_show_each_run_and_its_outcome(self, serve: Serve) -> None:
        client = serve()
        (run,) = get(client, "/api/retrains", model="wine")
        assert (run["status"], run["promoted"]) == ("succeeded", True)
        assert run["registered_version"] == "4"
        assert run["trigger_alert_id"] == "a1"
        assert run["finished_at"] == "2026-01-01T00:05:00Z"
        assert get(client, "/api/retrains", since="2026-01-01T00:01:00Z") == []

    def test_the_openapi_schema_documents_every_route(self, serve: Serve) -> None:
        schema = get(serve(), "/openapi.json")
        assert set(schema["paths"]) == {
            "/healthz", "/readyz", "/metrics", "/api/models", "/api/models/{model}/windows",
            "/api/alerts", "/api/retrains",
        }  # fmt: skip
        assert {"window_start", "health_score", "features"} <= set(
            schema["components"]["schemas"]["WindowResult"]["properties"]
        )
        assert "securitySchemes" not in schema.get("components", {})


    def test_an_unreachable_store_is_a_503_saying_so(self, tmp_path: Path) -> None:
        broken = Store(create_engine(f"sqlite:///{tmp_path}/missing/folder/s.db"))
        server = HttpServer(create_app(broken, Metrics(), ALL_READY.copy, None), "127.0.0.1", 0)
        with server, httpx.Client(base_url=server.url) as client:
            assert "listing models" in get(client, "/api/models", 503)["detail"]
            assert get(client, "/healthz") == {"status": "ok"}


class TestToken:
    def test_api_and_metrics_need_the_bearer_token_when_one_is_set(self, serve: Serve) -> None:
        client = serve(token=TOKEN)
        for path in ("/metrics", "/api/models", "/api/models/wine/windows", "/api/alerts",
                     "/api/retrains"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            assert "http.token_env" in response.json()["detail"]
            wrong = client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            right = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 200, path

    def test_the_probes_and_the_schema_stay_open_for_orchestrators(self, serve: Serve) -> None:
        client = serve(token=TOKEN)
        assert get(client, "/healthz") == {"status": "ok"}
        assert get(client, "/readyz")["ready"] is True
        schema = get(client, "/openapi.json")
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

    def test_binding_beyond_loopback_without_a_token_is_refused(self, store: Store) -> None:
        app = create_app(store, Metrics(), ALL_READY.copy, None)
        with pytest.raises(ConfigError, match=r"set http\.token_env"):
            HttpServer(app, "0.0.0.0", 0)
        HttpServer(app, "::1", 0)  # loopback: fine without a token
        HttpServer(create_app(store, Metrics(), ALL_READY.copy, TOKEN), "0.0.0.0", 0)

    def test_a_port_in_use_is_a_config_error_naming_http_port(self, store: Store) -> None:
        app = create_app(store, Metrics(), ALL_READY.copy, None)
        with HttpServer(app, "127.0.0.1", 0) as first:
            with pytest.raises(ConfigError, match=r"choose another http\.port"):
                HttpServer(app, "127.0.0.1", first.port).start()
            assert httpx.get(f"{first.url}/healthz").status_code == 200

    def test_a_stopped_server_no_longer_listens(self, store: Store) -> None:
        server = HttpServer(create_app(store, Metrics(), ALL_READY.copy, None), "127.0.0.1", 0)
        server.start()
        url = server.url
        server.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz")


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed by prometheus_client: (sample name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


class TestMetrics:
    def test_every_counter_is_exposed_at_zero_before_the_first_event(self, serve: Serve) -> None:
        samples = scrape(serve())
        assert samples[("driftline_events_total", (("stream", "labels"),))] == 0
        assert samples[("driftline_dead_letters_total", (("reason", "not_json"),))] == 0
        assert samples[("driftline_join_evictions_total", (("kind", "features"),))] == 0
        assert samples[("driftline_webhook_deliveries_total", (("outcome", "gave_up"),))] == 0
        assert samples[("driftline_retrains_total", (("outcome", "promoted"),))] == 0
        assert samples[("driftline_commit_seconds_count", ())] == 0

    def test_the_counters_move_as_events_flow_through_the_pipeline(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        metrics = Metrics()
        client = serve(metrics=metrics)
        pipeline = metered_pipeline(tmp_path, metrics)
        before = scrape(client)
        batch = [*events(600, n_numeric=4, seed=3), ("labels", {"bad": True})]
        messages = [Message(s, orjson.dumps(v), s, 0, i) for i, (s, v) in enumerate(batch)]
        messages.append(Message("features", b"{not json", "features", 0, len(messages)))
        for start in range(0, len(messages), 400):  # as the daemon does per poll batch
            chunk = messages[start:start + 400]
            metrics.observe_messages(count_streams(chunk))
            pipeline.process(chunk)
        pipeline.flush()
        metrics.observe_commit(0.02)
        after = scrape(client)

        def moved(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after[key] - before.get(key, 0.0)

        assert moved("driftline_events_total", stream="predictions") == 600
        assert moved("driftline_events_total", stream="labels") == 601
        assert moved("driftline_events_total", stream="features") == 1
        assert moved("driftline_dead_letters_total", reason="not_json") == 1
        assert moved("driftline_dead_letters_total", reason="schema_violation") == 1
        assert moved("driftline_windows_total", model="m") == 3  # windows of 200
        assert moved("driftline_commit_seconds_count") == 1
        assert 0 <= after[("driftline_health_score", (("model", "m"),))] <= 100
        assert ("driftline_feature_drift_score", (("feature", "f3"), ("model", "m"))) in after

    def test_first_closes_and_revisions_are_counted_apart(self, serve: Serve) -> None:
        metrics = Metrics()
        client = serve(metrics=metrics)
        for key in range(3):
            metrics.observe_window(line(key))
        metrics.observe_window(line(0, revision=1))
        samples = scrape(client)
        assert samples[("driftline_windows_total", (("model", "wine"),))] == 3
        assert samples[("driftline_window_revisions_total", (("model", "wine"),))] == 1

    def test_gauges_show_the_newest_window_and_a_late_revision_leaves_them(
        self, serve: Serve
    ) -> None:
        metrics = Metrics()
        client = serve(metrics=metrics)
        metrics.observe_window(line(5, health_score=40.0, drift_detected=True))
        metrics.observe_window(line(2, revision=1, health_score=99.0, drift_detected=False))
        samples = scrape(client)
        assert samples[("driftline_health_score", (("model", "wine"),))] == 40.0
        assert samples[("driftline_drift_detected", (("model", "wine"),))] == 1
        drift = ("driftline_feature_drift_score", (("feature", "alcohol"), ("model", "wine")))
        assert samples[drift] == 0.31

    def test_a_feature_gone_from_the_newest_window_loses_its_gauge(self, serve: Serve) -> None:
        metrics = Metrics()
        client = serve(metrics=metrics)
        metrics.observe_window(line(0))
        newer = line(1, health_score=None)
        newer["features"] = {"alcohol": {**newer["features"]["alcohol"], "score": None}}
        metrics.observe_window(newer)
        samples = scrape(client)
        features = {dict(labels)["feature"] for name, labels in samples
                    if name == "driftline_feature_drift_score"}
        assert features == {"alcohol"}
        assert math.isnan(samples[("driftline_health_score", (("model", "wine"),))])

    def test_lag_deliveries_retrains_and_evictions_are_exposed(self, serve: Serve) -> None:
        metrics = Metrics()
        client = serve(metrics=metrics)
        metrics.observe_lag("driftline.predictions", 2, 17)
        metrics.observe_delivery("delivered", 3)
        metrics.observe_delivery("retried")
        metrics.observe_retrain("succeeded")
        metrics.observe_retrain("promoted")
        metrics.observe_eviction("labels", 4)
        samples = scrape(client)
        lag = (("partition", "2"), ("topic", "driftline.predictions"))
        assert samples[("driftline_consumer_lag", lag)] == 17
        assert samples[("driftline_webhook_deliveries_total", (("outcome", "delivered"),))] == 3
        assert samples[("driftline_webhook_deliveries_total", (("outcome", "retried"),))] == 1
        assert samples[("driftline_retrains_total", (("outcome", "promoted"),))] == 1
        assert samples[("driftline_join_evictions_total", (("kind", "labels"),))] == 4

    def test_two_metrics_objects_do_not_share_their_series(self) -> None:
        first, second = Metrics(), Metrics()
        first.observe_dead_letter("too_large")
        assert b'driftline_dead_letters_total{reason="too_large"} 1.0' in first.exposition()
        assert b'driftline_dead_letters_total{reason="too_large"} 0.0' in second.exposition()


def metered_pipeline(folder: Path, metrics: Metrics) -> Pipeline:
    """A pipeline wired to ``metrics`` the way the daemon wires it."""
    reference_frame(1000, n_numeric=4, seed=1).to_csv(folder / "ref.csv", index=False)
    config = make_config(folder, {"size": 200, "grace": "0s"})
    return Pipeline(
        config,
        load_profiles(config, folder / "cache"),
        on_window=metrics.observe_window,
        on_dead_letter=lambda _message, reason, _detail: metrics.observe_dead_letter(reason),
    )


def count_streams(messages: list[Message]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.stream] = counts.get(message.stream, 0) + 1
    return counts


def test_parse_since_reads_a_space_where_a_query_string_had_a_plus() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_since("2026-01-01T01:00:00 01:00", now) == now
    assert parse_since(None, now) is None
