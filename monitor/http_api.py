"""The daemon's HTTP server: probes, Prometheus metrics and a read-only JSON API.

    app = create_app(store, metrics, ready=lambda: {"store": True, ...}, token=None)
    server = HttpServer(app, "127.0.0.1", 8080); server.start(); ...; server.stop()

Routes: ``/healthz`` (the process answers), ``/readyz`` (503 naming the failing checks),
``/metrics`` (Prometheus), ``/api/models``, ``/api/models/{model}/windows``,
``/api/alerts``, ``/api/retrains``; the OpenAPI schema is at ``/openapi.json``; the
dashboard (``monitor/dashboard``) is at ``/``. With a ``token``, ``/metrics`` and ``/api/*``
need ``Authorization: Bearer <token>``; the probes and the dashboard's static page stay
open (the page asks for the token). ``since``/``until`` take RFC 3339 (``2026-01-01T00:00:00Z``)
or a duration back from now (``24h``). Store failures answer 503.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from monitor import dashboard
from monitor.config import ModelConfig
from monitor.errors import ConfigError, DriftlineError, ReportError, StoreError
from monitor.metrics import Metrics
from monitor.store import Store, queries
from monitor.store.utc import parse_rfc3339, utc_now
from monitor.timeparse import parse_duration

if TYPE_CHECKING:
    from monitor.report import WindowReports

__all__ = ["HttpServer", "create_app", "parse_since"]

MAX_LIMIT = 10_000
Since = Annotated[
    str | None, Query(description="RFC 3339 time (`2026-01-01T00:00:00Z`) or duration (`24h`)")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="keep the newest this many")]


# --- response models: the documented fields; fields added later pass through -------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelVersion(_Open):
    version: str
    reference_hash: str | None
    created_at: str | None


class ModelSummary(_Open):
    name: str
    task: str
    created_at: str | None
    versions: list[ModelVersion]
    windows: int
    last_window_end: str | None


class WindowResult(_Open):
    """A contract window line at its latest revision (every field of the line is kept)."""

    model: str
    window_key: int
    window_start: str
    window_end: str
    n_predictions: int
    features: dict[str, dict[str, Any]]
    drift_detected: bool | None
    health_score: float | None
    alerts: list[str]
    revision: int
    as_of: str | None
    finalised_at: str | None


class Alert(_Open):
    alert_id: str
    model: str
    kind: str
    severity: str
    status: str
    summary: str
    window_start: str | None
    window_end: str | None
    created_at: str | None
    resolved_at: str | None


class RetrainRun(_Open):
    id: int
    model: str
    request_id: str
    status: str
    promoted: bool
    started_at: str | None
    finished_at: str | None
    run_url: str | None = None
    model_version_url: str | None = None


class Ready(BaseModel):
    ready: bool
    checks: dict[str, bool]
    failing: list[str]
    error: str | None = None


def create_app(
    store: Store,
    metrics: Metrics,
    ready: Callable[[], dict[str, bool]],
    token: str | None,
    *,
    clock: Callable[[], datetime] = utc_now,
    reports: WindowReports | None = None,
    models: Sequence[ModelConfig] = (),
) -> FastAPI:
    """The FastAPI app over ``store`` (read-only) and ``metrics``; with ``reports``, also
    the drill-down report route.

    ``ready()`` returns named checks (``{"broker": True, "store": True, "assignment":
    False}``); it runs on the server's threads, so it must not touch the Kafka consumer.
    ``models`` (the config's) give retrain runs links to the MLflow UI of their
    ``retrain.tracking_uri``.
    """
    targets = dashboard.mlflow_targets(models)
    app = FastAPI(title="driftline", version="1", redoc_url=None)
    app.state.auth_required = token is not None
    guarded = APIRouter(dependencies=[Depends(_bearer(token))] if token else [])

    def when(value: str | None, name: str) -> datetime | None:
        try:
            return parse_since(value, clock())
        except ValueError as err:
            raise HTTPException(422, f"{name}: {err}") from None

    def known(model: str | None) -> None:
        if model is not None and model not in {m["name"] for m in queries.models(store)}:
            raise HTTPException(404, f"no model named {model!r}; see /api/models")

    @app.exception_handler(StoreError)
    def store_down(_request: Request, err: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=503)

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        """The process is alive and serving."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"model": Ready}})
    def readyz() -> JSONResponse:
        """Broker and store reachable, partitions assigned; 503 names what fails."""
        error: str | None = None
        try:
            checks = {name: bool(ok) for name, ok in ready().items()}
        except Exception as err:  # a broken check means not ready, never a 500
            checks, error = {"readiness": False}, f"{type(err).__name__}: {err}"
        failing = [name for name, ok in checks.items() if not ok]
        body = Ready(ready=not failing, checks=checks, failing=failing, error=error)
        return JSONResponse(body.model_dump(), status_code=503 if failing else 200)

    @guarded.get(
        "/metrics",
        tags=["metrics"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    def prometheus(request: Request) -> Response:
        """Counters and gauges in the Prometheus (or OpenMetrics) text format."""
        body, content_type = metrics.negotiate(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    @guarded.get("/api/models", tags=["api"])
    def list_models() -> list[ModelSummary]:
        """Every monitored model with its versions, window count and newest window end."""
        return [ModelSummary.model_validate(m) for m in queries.models(store)]

    @guarded.get("/api/models/{model}/windows", tags=["api"])
    def list_windows(
        model: str, since: Since = None, until: Since = None, limit: Limit = queries.DEFAULT_LIMIT
    ) -> list[WindowResult]:
        """A model's closed windows (latest revisions) that ended at or after ``since``
        and started before ``until``, oldest first."""
        rows = queries.windows(store, model, when(since, "since"), when(until, "until"), limit)
        if not rows:
            known(model)
        return [WindowResult.model_validate(row) for row in rows]

    @guarded.get("/api/alerts", tags=["api"])
    def list_alerts(
        model: str | None = None,
        since: Since = None,
        status: Literal["firing", "resolved"] | None = None,
        limit: Limit = queries.DEFAULT_LIMIT,
    ) -> list[Alert]:
        """Alerts created at or after ``since``, oldest first."""
        rows = queries.alerts(store, model, when(since, "since"), status, limit)
        if not rows:
            known(model)
        return [Alert.model_validate(row) for row in rows]

    @guarded.get("/api/retrains", tags=["api"])
    def list_retrains(
        model: str | None = None, since: Since = None, limit: Limit = queries.DEFAULT_LIMIT
    ) -> list[RetrainRun]:
        """Retrain runs started at or after ``since``, oldest first, with MLflow UI links
        (``run_url``, ``model_version_url``) when the tracking server is reached over HTTP."""
        rows = queries.retrains(store, model, when(since, "since"), limit)
        if not rows:
            known(model)
        return [
            RetrainRun.model_validate(
                {**row, **dashboard.retrain_links(row, targets.get(row["model"]))}
            )
            for row in rows
        ]

    if reports is not None:
        _add_report_route(guarded, reports)
    app.include_router(guarded)
    app.include_router(dashboard.router(token_required=token is not None))
    return app


def _add_report_route(router: APIRouter, reports: WindowReports) -> None:
    """``/models/{model}/windows/{window_key}/report``: guarded like ``/api/*``."""

    @router.get(
        "/models/{model}/windows/{window_key}/report",
        tags=["reports"],
        response_class=HTMLResponse,
        responses={404: {"description": "no such model or window, or no saved sample"}},
    )
    def window_report(model: str, window_key: int) -> HTMLResponse:
        """The Evidently report (HTML) of a window's retained rows against the reference,
        as ``driftline report`` writes it."""
        try:
            return HTMLResponse(reports.html(model, window_key))
        except (ConfigError, ReportError) as err:
            raise HTTPException(404, str(err)) from None
        except StoreError:
            raise  # 503, as for every route
        except (DriftlineError, ValueError) as err:  # an unreadable reference, say: say so
            raise HTTPException(500, f"cannot make the report: {err}") from None


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``2026-01-01T00:00:00Z`` as is, ``24h`` as ``now`` minus 24 hours, None as None.

    >>> from datetime import UTC
    >>> parse_since("1h30m", datetime(2026, 1, 1, 12, tzinfo=UTC)).isoformat()
    '2026-01-01T10:30:00+00:00'
    """
    if value is None:
        return None
    try:
        return now - timedelta(seconds=parse_duration(value, key="since"))
    except ConfigError:
        pass
    if value[-6:-5] == " ":  # a '+' of an offset that the query string turned into a space
        value = value[:-6] + "+" + value[-5:]
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an RFC 3339 time with offset (2026-01-01T00:00:00Z) "
            "nor a duration (500ms, 30s, 15m, 24h, 7d)"
        ) from None


_BEARER = HTTPBearer(auto_error=False, description="The token in the variable `http.token_env`.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def _bearer(token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    expected = token.encode()

    def check(credentials: Credentials) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                401,
                "send the token named by http.token_env as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


class HttpServer:
    """Runs an app with uvicorn on a daemon thread, started once; ``port=0`` picks a free
    port (read ``port`` after :meth:`start`).

    Refuses (``ConfigError``) a non-loopback ``host`` for an app made without a token.
    """

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *, grace_s: int = 5
    ) -> None:
        if not _is_loopback(host) and not getattr(app.state, "auth_required", False):
            raise ConfigError(
                f"http.host {host!r} is reachable from other machines, and no token is "
                "set: set http.token_env to an environment variable holding a bearer "
                "token, or bind http.host to 127.0.0.1"
            )
        self.host, self.port = host, port
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                           lifespan="off", timeout_graceful_shutdown=grace_s)
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind (errors here, not in the thread), then serve until :meth:`stop`."""
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="driftline-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise ConfigError(f"the HTTP server on {self.url} did not start; see the log")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish open requests (up to ``grace_s``) and close the socket."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> HttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name may resolve anywhere


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, _proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind)
    except OSError as err:
        raise ConfigError(f"http.host {host!r} cannot be used: {err}") from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {err}; choose another http.port "
            "or stop the process that uses it"
        ) from err
    return sock
