"""``driftline report``: a window's retained rows against the reference, as Evidently HTML.

The windows come from a real pipeline run whose commits go through ``Effects`` into a real
store (SQLite and PostgreSQL), on synthetic traffic where ``f0`` shifts by 2 standard
deviations and ``c0`` gains an unseen category halfway; the report is made through
``driftline report`` and through the daemon's HTTP route. A reference behind an MLflow URI
is fetched from a real ``mlflow server``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from sklearn.linear_model import LogisticRegression

from monitor.alerts import OutboxWorker
from monitor.cli import main
from monitor.config import Config, StoreSettings, load_config
from monitor.effects import Effects
from monitor.engine.sample_rows import UNSEEN
from monitor.http_api import HttpServer, create_app
from monitor.metrics import Metrics
from monitor.pipeline import Message, Pipeline
from monitor.replay import load_profiles
from monitor.report import WindowReports
from monitor.store import Store, WindowLine, WindowSample, open_store, queries
from monitor.store.samples import load_sample
from monitor.store.utc import utc_now
from monitor.synthetic import CATEGORIES, Shift, events, reference_frame
from retrain.registry import REFERENCE_ARTIFACT, bootstrap_champion
from tests.test_store import line

WINDOW = 500  # predictions per window
SAMPLE_SIZE = 200  # rows a window keeps
SHIFT_AT = 1500  # windows 0..2 are clean, 3..5 drifted
TOKEN = "report-token"


@dataclass
class Monitored:
    config_path: Path
    config: Config
    store: Store
    lines: list[dict[str, Any]]

    def key_of(self, index: int) -> int:
        """The window key of the index-th window closed."""
        return [x["window_key"] for x in self.lines if x["revision"] == 0][index]


@pytest.fixture
def monitored(tmp_path: Path, store_url: str) -> Iterator[Monitored]:
    """Six windows committed by the daemon's commit path, drift from the fourth on."""
    reference_frame(3000, n_numeric=3, n_categorical=1, seed=11).to_csv(
        tmp_path / "ref.csv", index=False)
    path = tmp_path / "driftline.yaml"
    path.write_text(
        f"store: {{url: {orjson.dumps(store_url).decode()}}}\n"
        "models:\n"
        "  - name: m\n"
        "    task: classification\n"
        "    reference: {path: ref.csv, target: target, prediction: prediction,"
        " probability: probability}\n"
        f"    window: {{size: {WINDOW}, grace: 0s}}\n"
        f"    drift: {{sample_size: {SAMPLE_SIZE}}}\n")
    config = load_config(path)
    store = open_store(config.store)
    store.register_model("m", "classification")
    pipeline = Pipeline(config, load_profiles(config, tmp_path / "cache"), lambda _: None,
                        lambda *_: None, local=False)  # as the daemon: windows in the store
    effects = Effects(config, store, pipeline, metrics=Metrics(),
                      worker=OutboxWorker(store, config.alerts), trigger=None, sink=None)
    effects.set_partitions(1)
    pairs = list(events(3000, n_numeric=3, n_categorical=1, seed=12, model="m",
                        shift=Shift(start=SHIFT_AT, features=[0], sd=2.0,
                                    new_categories=["purple"])))
    messages = [Message(s, orjson.dumps(e), s, 0, i) for i, (s, e) in enumerate(pairs)]
    for start in range(0, len(messages), 700):  # commits land mid-window, as in the daemon
        pipeline.process(messages[start:start + 700])
        effects.commit({("p", 0): start + 700})
    pipeline.flush()
    effects.commit({("p", 0): len(messages)})
    written = queries.windows(store, "m", limit=10**6, all_revisions=True)
    try:
        yield Monitored(path, config, store, written)
    finally:
        store.close()


def drift_verdicts(page: str) -> dict[str, str]:
    """Evidently's per-column verdict ("Detected" / "Not Detected") from the embedded JSON."""
    found = {}
    for match in re.finditer(r'"column_name": "(\w+)", "column_type": "\w+"', page):
        verdict = re.search(r'"data_drift": "(Detected|Not Detected)"', page[match.end():])
        assert verdict is not None
        found[match.group(1)] = verdict.group(1)
    return found


def report(monitored: Monitored, *args: str) -> int:
    return main(["report", "--config", str(monitored.config_path), "--model", "m", *args])


class TestSamples:
    def test_every_window_keeps_a_bounded_sample_with_categories_decoded(self, monitored):
        keys = [x["window_key"] for x in monitored.lines if x["revision"] == 0]
        assert len(keys) == 6

        for index, key in enumerate(keys):
            sample = load_sample(monitored.store, "m", key)
            assert sample is not None
            assert [c["name"] for c in sample.columns] == ["f0", "f1", "f2", "c0"]
            assert [c["kind"] for c in sample.columns] == ["numeric"] * 3 + ["categorical"]
            assert len(sample.rows) == SAMPLE_SIZE
            categories = {row[3] for row in sample.rows}
            if index < 3:
                assert categories <= set(CATEGORIES)
            else:  # "purple" was never in the reference: decoded as unseen
                assert UNSEEN in categories
                assert categories <= {*CATEGORIES, UNSEEN}
            assert all(isinstance(row[0], float) for row in sample.rows)

    def test_the_hourly_prune_drops_samples_past_the_horizon_and_keeps_scores(self, monitored):
        pruned = monitored.store.prune(utc_now() + timedelta(days=1))

        assert pruned["window_samples"] == 6
        assert load_sample(monitored.store, "m", monitored.key_of(0)) is None
        assert report(monitored, "--window", "latest") == 1


class TestReportCommand:
    def test_a_drifted_window_names_the_shifted_feature_as_drifted(
            self, monitored, tmp_path, capsys):
        out = tmp_path / "drifted.html"

        assert report(monitored, "--window", str(monitored.key_of(4)), "--output",
                      str(out)) == 0

        assert capsys.readouterr().out.strip() == str(out)
        page = out.read_text(encoding="utf-8")
        assert "window.drawDashboard(" in page  # Evidently's standalone page
        verdicts = drift_verdicts(page)
        assert verdicts["f0"] == "Detected"
        assert verdicts["f1"] == verdicts["f2"] == "Not Detected"
        assert "driftline · m · window" in page

    def test_a_clean_window_shows_no_drift_in_the_shifted_feature(self, monitored, tmp_path):
        out = tmp_path / "clean.html"

        assert report(monitored, "--window", str(monitored.key_of(1)), "--output",
                      str(out)) == 0

        assert drift_verdicts(out.read_text(encoding="utf-8"))["f0"] == "Not Detected"

    def test_latest_writes_report_model_key_html_in_the_working_directory(
            self, monitored, tmp_path, monkeypatch, capsys):
        monkeypatch.chdir(tmp_path)

        assert report(monitored, "--window", "latest") == 0

        expected = f"report-m-{monitored.key_of(5)}.html"
        assert capsys.readouterr().out.strip() == expected
        assert (tmp_path / expected).stat().st_size > 0

    def test_a_time_names_the_window_that_holds_it(self, monitored, tmp_path, capsys):
        third = [x for x in monitored.lines if x["revision"] == 0][2]

        assert report(monitored, "--window", third["window_start"], "--output",
                      str(tmp_path / "t.html")) == 0

        assert (tmp_path / "t.html").is_file()
        assert report(monitored, "--window", "2020-01-01T00:00:00Z") == 1
        assert "no closed window that holds 2020-01-01T00:00:00Z" in capsys.readouterr().err

    def test_an_unknown_model_is_bad_usage(self, monitored, capsys):
        code = main(["report", "--config", str(monitored.config_path), "--model", "nope",
                     "--window", "latest"])

        assert code == 2
        assert "no model named 'nope'; the config has m" in capsys.readouterr().err

    def test_an_unknown_window_fails_naming_it(self, monitored, capsys):
        assert report(monitored, "--window", "999") == 1
        assert "window 999 of model 'm'" in capsys.readouterr().err

    def test_a_window_that_is_neither_key_latest_nor_time_is_bad_usage(self, monitored, capsys):
        assert report(monitored, "--window", "yesterday") == 2
        assert "--window 'yesterday'" in capsys.readouterr().err


class TestReportRoute:
    def test_the_daemon_serves_the_report_as_html_behind_the_token(self, monitored):
        app = create_app(monitored.store, Metrics(), lambda: {}, TOKEN,
                         reports=WindowReports(monitored.config, monitored.store))
        key = monitored.key_of(4)
        with HttpServer(app, "127.0.0.1", 0) as server, httpx.Client(base_url=server.url,
                                                                     timeout=60) as client:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            page = client.get(f"/models/m/windows/{key}/report", headers=auth)
            anonymous = client.get(f"/models/m/windows/{key}/report")
            unknown = client.get("/models/m/windows/999/report", headers=auth)
            no_model = client.get(f"/models/nope/windows/{key}/report", headers=auth)

        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert drift_verdicts(page.text)["f0"] == "Detected"
        assert anonymous.status_code == 401
        assert unknown.status_code == 404
        assert "window 999" in unknown.json()["detail"]
        assert no_model.status_code == 404


class TestMlflowReference:
    def test_a_reference_behind_an_mlflow_uri_comes_from_the_champions_run(
            self, mlflow_server, tmp_path, capsys):
        name = f"m-{uuid.uuid4().hex[:8]}"
        reference = reference_frame(1000, n_numeric=3, seed=3)
        reference.to_parquet(tmp_path / REFERENCE_ARTIFACT, index=False)
        features = reference[["f0", "f1", "f2"]]
        bootstrap_champion(LogisticRegression().fit(features, reference["target"]),
                           registered_model=name, sample=features,
                           tracking_uri=mlflow_server.uri,
                           artifacts=[tmp_path / REFERENCE_ARTIFACT])
        capsys.readouterr()  # MLflow's run links
        config = tmp_path / "driftline.yaml"
        config.write_text(
            f"store: {{url: 'sqlite:///{tmp_path}/d.db'}}\n"
            f"models:\n  - name: {name}\n    task: classification\n"
            f"    reference: {{uri: 'models:/{name}@champion', target: target}}\n"
            "    window: {size: 300}\n"
            f"    retrain: {{tracking_uri: '{mlflow_server.uri}'}}\n")
        rng = np.random.default_rng(4)
        columns = [{"name": f"f{i}", "kind": "numeric"} for i in range(3)]
        values = rng.standard_normal((300, 3))
        values[:, 0] += 3.0  # f0 moved by 3 standard deviations
        rows = values.tolist()
        with open_store(StoreSettings(url=f"sqlite:///{tmp_path}/d.db")) as store:
            store.register_model(name, "classification")
            store.commit_batch("g", windows=[WindowLine(0, line(0, model=name))],
                               window_samples=[WindowSample(name, 0, columns, rows)])
        out = tmp_path / "r.html"

        assert main(["report", "--config", str(config), "--model", name, "--window", "0",
                     "--output", str(out)]) == 0

        page = out.read_text(encoding="utf-8")
        assert "300 sampled rows of the window against 1000 reference rows" in page
        assert drift_verdicts(page)["f0"] == "Detected"
