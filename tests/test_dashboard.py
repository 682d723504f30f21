"""The dashboard at ``/`` in a real headless Chromium (Debian's, driven by Selenium).

A store on each backend is seeded with the real pipeline and alert policy: ten windows of
a synthetic classifier, healthy, then two windows in which feature ``f2`` shifts by one
standard deviation, then healthy again (the drift alert fires and resolves), plus a failed
and a succeeded retrain run; model ``cats`` is registered with nothing yet. The real app
is served by the real uvicorn ``HttpServer`` on 127.0.0.1 and the page must draw every
plot, name the worst window and its drifted feature, link reports and MLflow pages, and
log no error in the browser console.

``DRIFTLINE_SCREENSHOT=1`` also copies the screenshot to ``docs/dashboard.png``.
"""

from __future__ import annotations

import doctest
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from monitor.alerts.policy import AlertPolicyState
from monitor.config import Config, StoreSettings
from monitor.dashboard import mlflow_links
from monitor.http_api import HttpServer, create_app
from monitor.metrics import Metrics
from monitor.store import Store, WindowLine, open_store
from monitor.store.utc import parse_rfc3339
from monitor.synthetic import Shift, events, reference_frame
from tests.services.store_fixtures import FrozenClock
from tests.test_pipeline import Run, make_config

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
MLFLOW_UI = "http://127.0.0.1:5000"  # links only: nothing is fetched from it
TOKEN = "dashboard-token"
WINDOW, N_EVENTS, STEP_MS = 300, 3000, 3000  # ten 15-minute windows
DRIFTING = range(1200, 1800)  # events of windows 4 and 5: f2 shifted by 1 sd
UNLABELLED = 2500  # labels of events from here on are not known yet
PLOTS = ("health", "heatmap", "performance", "alerts", "retrains")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Debian Chromium; Selenium Manager is never asked for a driver."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        subprocess.run([str(ROOT / "scripts" / "chromium"), "install"], check=True)
    folder = tmp_path_factory.mktemp("chromium")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1650", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", f"--user-data-dir={folder}/profile"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(folder / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def drifting_events() -> list[tuple[str, dict[str, Any]]]:
    """The same seeded stream twice, f2 shifted in one copy: the shifted copy's events
    inside ``DRIFTING`` and the plain copy's outside it; every other event is labelled,
    400 events later, and the newest events not yet."""
    common = {"n_numeric": 4, "seed": 3, "step_ms": STEP_MS, "label_every": 2,
              "label_delay": 400}
    shifted = events(N_EVENTS, shift=Shift(start=DRIFTING.start, features=[2], sd=1.0), **common)
    plain = events(N_EVENTS, **common)
    chosen = []
    for s, p in zip(shifted, plain, strict=True):
        stream, event = s if index(s[1]) in DRIFTING else p
        if stream != "labels" or index(event) < UNLABELLED:
            chosen.append((stream, event))
    return chosen


def index(event: dict[str, Any]) -> int:
    return int(event["event_id"].split("-")[1])


class Seeded:
    """A store filled by the real pipeline and alert policy, and the config it used."""

    def __init__(self, folder: Path, store_url: str) -> None:
        reference_frame(2000, n_numeric=4, seed=1).to_csv(folder / "ref.csv", index=False)
        config = make_config(folder, {"size": WINDOW, "grace": "0s"})
        model = config.models[0]
        self.config: Config = replace(config, models=(
            replace(model, retrain=replace(model.retrain, tracking_uri=MLFLOW_UI)),))
        self.lines = Run(self.config, folder).feed(drifting_events()).lines
        self.clock = FrozenClock()
        self.store: Store = open_store(StoreSettings(url=store_url), clock=self.clock)
        self.store.register_model("m", "classification")
        self.store.register_model("cats", "classification")
        policy = AlertPolicyState("m", model.alerts)
        self.alerts: list[dict[str, Any]] = []
        for line in self.lines:  # one commit per line, at its event time, as the daemon does
            self.clock.now = parse_rfc3339(line["as_of"])
            bodies = [event.to_body() for event in policy.evaluate(line)]
            self.alerts += bodies
            self.store.commit_batch("g", windows=[WindowLine(line["window_key"], line)],
                                    alerts=bodies)
        drift = next(a for a in self.alerts if a["kind"] == "drift")
        fired = parse_rfc3339(drift["window_end"])
        failed, _ = self.store.start_retrain_run("m", "r-failed", drift["alert_id"], fired)
        self.store.finish_retrain_run(failed, "failed", mlflow_run_id=None,
                                      registered_version=None, promoted=False,
                                      detail={"reason": "MLflow unreachable"},
                                      finished_at=fired + timedelta(seconds=20))
        later = fired + timedelta(minutes=2)
        run, _ = self.store.start_retrain_run("m", "r-ok", drift["alert_id"], later)
        self.mlflow_run_id = "5f3c0e1d2b7a4c4e9a1f0b6d8e2c7a91"
        self.store.finish_retrain_run(run, "succeeded", mlflow_run_id=self.mlflow_run_id,
                                      registered_version="2", promoted=True,
                                      detail={"reason": "challenger better"},
                                      finished_at=later + timedelta(seconds=40))

    def latest(self) -> list[dict[str, Any]]:
        """Each window at its latest revision, in window order."""
        newest: dict[int, dict[str, Any]] = {}
        for line in self.lines:
            newest[line["window_key"]] = line
        return [newest[k] for k in sorted(newest)]


@pytest.fixture
def seeded(tmp_path: Path, store_url: str) -> Iterator[Seeded]:
    data = Seeded(tmp_path, store_url)
    yield data
    data.store.close()


@pytest.fixture
def serve(seeded: Seeded) -> Iterator[Any]:
    servers: list[HttpServer] = []

    def start(token: str | None = None) -> str:
        app = create_app(seeded.store, Metrics(), lambda: {"store": True}, token,
                         models=seeded.config.models)
        server = HttpServer(app, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


def rendered(driver: WebDriver, url: str) -> str:
    """Load ``url`` and wait until the page says it is done; its final state."""
    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
        in ("ready", "error", "token"))
    return str(driver.find_element(By.TAG_NAME, "body").get_attribute("data-state"))


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def traces(driver: WebDriver, plot: str) -> list[dict[str, Any]]:
    """The Plotly traces drawn in the plot ``plot`` of model m (their data as JSON)."""
    return list(driver.execute_script(
        "const el = document.querySelector(`section[data-model='m'] .plot.${arguments[0]}`);"
        "return JSON.parse(JSON.stringify(el.data));", plot))


def screenshot(driver: WebDriver, folder: Path) -> Path:
    """The section of model m as a PNG (and in docs/ when DRIFTLINE_SCREENSHOT=1)."""
    path = folder / "dashboard.png"
    assert driver.find_element(By.CSS_SELECTOR, "section[data-model='m']").screenshot(str(path))
    if os.environ.get("DRIFTLINE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, ROOT / "docs" / "dashboard.png")
    return path


class TestDashboard:
    def test_every_plot_is_drawn_without_console_errors(
        self, browser: WebDriver, serve: Any, seeded: Seeded, tmp_path: Path
    ) -> None:
        state = rendered(browser, serve())
        errors = console_errors(browser)
        page_error = browser.find_element(By.ID, "error").text
        assert state == "ready", page_error
        assert errors == []
        for plot in PLOTS:
            selector = f"section[data-model='m'] .plot.{plot} .main-svg"
            assert browser.find_elements(By.CSS_SELECTOR, selector), f"{plot} not drawn"
        empty = browser.find_element(By.CSS_SELECTOR, "section[data-model='cats']")
        assert empty.find_element(By.CSS_SELECTOR, ".verdict").text == "No closed windows yet."
        assert empty.find_elements(By.CSS_SELECTOR, ".plot") == []
        assert screenshot(browser, tmp_path).stat().st_size > 10_000

    def test_health_and_heatmap_show_every_window_and_feature(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        assert rendered(browser, serve()) == "ready"
        windows = seeded.latest()
        (health,) = traces(browser, "health")
        assert health["y"] == [w["health_score"] for w in windows]
        (heatmap,) = traces(browser, "heatmap")
        assert sorted(heatmap["y"]) == ["f0", "f1", "f2", "f3"]
        assert heatmap["y"][-1] == "f2"  # the most drifted feature is the top row
        assert len(heatmap["z"]) == 4
        assert all(len(row) == len(windows) for row in heatmap["z"])
        drifted = [w["window_key"] for w in windows if w["features"]["f2"]["drift"]]
        marked = [i for i, mark in enumerate(heatmap["text"][-1]) if mark == "✕"]
        assert marked == drifted == [4, 5]

    def test_the_worst_window_and_its_drifted_feature_are_named(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        assert rendered(browser, serve()) == "ready"
        windows = seeded.latest()
        lowest = min(w["health_score"] for w in windows)
        worst_key = int(browser.find_element(By.CSS_SELECTOR, ".worst-window").text.split()[-1])
        worst = windows[worst_key]
        assert worst["health_score"] == lowest
        assert worst["drift_detected"] is True
        assert browser.find_element(By.CSS_SELECTOR, ".top-feature").text == "f2"
        report = browser.find_element(By.CSS_SELECTOR, ".worst-report").get_attribute("href")
        assert report.endswith(f"/models/m/windows/{worst_key}/report")
        annotation = browser.find_element(
            By.CSS_SELECTOR, "section[data-model='m'] .plot.health .annotation-text").text
        assert f"window {worst_key}" in annotation
        assert "f2" in annotation

    def test_performance_shows_measured_estimated_and_label_completeness(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        assert rendered(browser, serve()) == "ready"
        windows = seeded.latest()
        bars, measured, estimated = traces(browser, "performance")
        assert bars["name"] == "label completeness"
        labelled = [w["performance"]["n_labels"] / w["n_predictions"] if w["performance"]
                    else 0.0 for w in windows]
        assert bars["y"] == pytest.approx(labelled)
        assert labelled[0] == 0.5  # every other event
        assert 0 < labelled[-2] < 0.5  # the newest labels are not known yet
        assert labelled[-1] == 0
        accuracy = [w["performance"] and w["performance"]["accuracy"] for w in windows]
        assert measured["y"][:-1] == pytest.approx(accuracy[:-1])
        assert measured["y"][-1] is None
        assert estimated["y"] == pytest.approx(
            [w["estimated_performance"]["accuracy"] for w in windows])

    def test_alert_episodes_are_drawn_firing_and_resolved(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        assert rendered(browser, serve()) == "ready"
        firing, resolved = traces(browser, "alerts")
        final = {a["alert_id"]: a for a in seeded.alerts}  # the store keeps the newest body
        drift = [a for a in final.values() if a["kind"] == "drift"]
        assert [a["status"] for a in drift] == ["resolved"]
        first = drift[0]["details"]["first_window_start"]
        assert first.replace("T", " ").replace("Z", "") in resolved["x"][0::3]
        n_firing = sum(a["status"] == "firing" for a in final.values())
        assert len(firing["x"]) == 3 * n_firing
        assert len(resolved["x"]) == 3 * (len(final) - n_firing)

    def test_retrain_runs_link_to_the_mlflow_run_and_model_version(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        assert rendered(browser, serve()) == "ready"
        (runs,) = traces(browser, "retrains")
        assert runs["y"] == ["failed", "succeeded"]
        run_link = browser.find_element(By.CSS_SELECTOR, ".retrain-links .run-link")
        assert run_link.get_attribute("href") == f"{MLFLOW_UI}/#/runs/{seeded.mlflow_run_id}"
        version = browser.find_element(By.CSS_SELECTOR, ".retrain-links .version-link")
        assert version.get_attribute("href") == f"{MLFLOW_UI}/#/models/m/versions/2"
        assert version.text == "model version 2"

    def test_each_window_links_its_drill_down_report(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        assert rendered(browser, serve()) == "ready"
        links = browser.find_elements(By.CSS_SELECTOR, ".reports .report-link")
        hrefs = [link.get_attribute("href") for link in links]
        keys = [w["window_key"] for w in seeded.latest()]
        assert [h.rsplit("/windows/", 1)[1] for h in hrefs] == [f"{k}/report" for k in keys]


class TestToken:
    def test_with_a_token_the_page_asks_for_it_then_draws(
        self, browser: WebDriver, serve: Any, seeded: Seeded
    ) -> None:
        url = serve(TOKEN)
        assert httpx.get(f"{url}/api/models").status_code == 401
        assert httpx.get(f"{url}/").status_code == 200
        assert httpx.get(f"{url}/static/plotly.min.js").status_code == 200
        assert rendered(browser, url) == "token"
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
        assert browser.find_element(By.CSS_SELECTOR, ".top-feature").text == "f2"
        assert console_errors(browser) == []
        browser.execute_script("sessionStorage.clear()")


class TestApi:
    def test_retrain_runs_carry_their_mlflow_links(self, serve: Any, seeded: Seeded) -> None:
        runs = httpx.get(f"{serve()}/api/retrains", params={"model": "m"}).json()
        assert [(r["run_url"], r["model_version_url"]) for r in runs] == [
            (None, None),  # failed before MLflow answered
            (f"{MLFLOW_UI}/#/runs/{seeded.mlflow_run_id}", f"{MLFLOW_UI}/#/models/m/versions/2"),
        ]


class TestStatic:
    def test_plotly_is_served_from_the_installed_package(self, serve: Any) -> None:
        response = httpx.get(f"{serve()}/static/plotly.min.js")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert b"plotly.js" in response.content[:2000]

    def test_unknown_static_files_are_404(self, serve: Any) -> None:
        assert httpx.get(f"{serve()}/static/../pyproject.toml").status_code == 404
        assert httpx.get(f"{serve()}/static/secret.txt").status_code == 404


class TestMlflowLinks:
    def test_the_docstring_example_runs(self) -> None:
        assert doctest.testmod(mlflow_links).failed == 0

    def test_a_tracking_store_that_is_not_a_server_has_no_pages(self) -> None:
        target = mlflow_links.MlflowTarget("sqlite:///mlflow.db", "wine")
        run = {"mlflow_run_id": "ab12", "registered_version": "4", "detail": {}}
        assert mlflow_links.retrain_links(run, target) == {
            "run_url": None, "model_version_url": None}

    def test_the_jobs_own_run_url_and_registered_name_win(self) -> None:
        target = mlflow_links.MlflowTarget("https://mlflow.example/", "wine")
        run = {"mlflow_run_id": "ab12", "registered_version": "4",
               "detail": {"run_url": "https://mlflow.example/#/experiments/7/runs/ab12",
                          "registered_model": "wine classifier"}}
        assert mlflow_links.retrain_links(run, target) == {
            "run_url": "https://mlflow.example/#/experiments/7/runs/ab12",
            "model_version_url": "https://mlflow.example/#/models/wine%20classifier/versions/4"}

    def test_targets_come_from_each_models_retrain_settings(self, tmp_path: Path) -> None:
        config = make_config(tmp_path, {"size": 10})
        model = replace(config.models[0], retrain=replace(
            config.models[0].retrain, tracking_uri=MLFLOW_UI, registered_model="m-prod"))
        assert mlflow_links.mlflow_targets([model]) == {
            "m": mlflow_links.MlflowTarget(MLFLOW_UI, "m-prod")}
