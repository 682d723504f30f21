"""The retrain job against a real ``mlflow server`` (SQLite backend, served artifacts).

The data: scikit-learn's breast-cancer set, shuffled once. The champion is a scaled
logistic regression fitted on 60 rows of which a third carry flipped labels (a poor
model); the recent labelled rows are the other 400, oldest first. Every test registers
its own model name on the one session server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from monitor.config import ModelConfig, ReferenceSource, RetrainSettings, WindowSpec
from monitor.engine.profile import ReferenceProfile
from monitor.errors import RetrainError
from monitor.schemas import load_schema
from retrain import registry
from retrain.cli import main as retrain_main
from retrain.dataset import build_training_set
from retrain.job import RetrainOutcome, RetrainRequest, bootstrap_champion, run_retrain
from retrain.outcome import outcome_alerts
from retrain.training import fit_challenger
from tests.services.mlflow_server import MlflowServer, free_port

TARGET = "target"
N_REFERENCE = 60
N_RECENT = 400
ALERT_SCHEMA = Draft202012Validator(load_schema("alert"))


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(cancer: pd.DataFrame) -> pd.DataFrame:
    """The champion's poor training data: 60 rows, a third of the labels flipped."""
    frame = cancer.iloc[:N_REFERENCE].copy()
    flipped = np.random.default_rng(0).random(len(frame)) < 0.35
    frame.loc[flipped, TARGET] = 1 - frame.loc[flipped, TARGET]
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def recent(cancer: pd.DataFrame) -> pd.DataFrame:
    return cancer.iloc[N_REFERENCE : N_REFERENCE + N_RECENT].reset_index(drop=True)


def _estimator() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))


def _model(name: str, uri: str, *, margin: float = 0.01) -> ModelConfig:
    return ModelConfig(
        name=name,
        task="classification",
        reference=ReferenceSource(target=TARGET),
        window=WindowSpec(size=100),
        retrain=RetrainSettings(
            enabled=True, tracking_uri=uri, metric="accuracy", margin=margin, holdout_fraction=0.3
        ),
    )


@dataclass
class Case:
    """One test's registered model (version 1, the poor model, is champion) and data."""

    server: MlflowServer
    name: str
    reference: pd.DataFrame
    recent: pd.DataFrame

    def retrain(
        self,
        *,
        tracking_uri: str | None = None,
        recent: pd.DataFrame | None = None,
        client: MlflowClient | None = None,
        request: RetrainRequest | None = None,
    ) -> RetrainOutcome:
        model = _model(self.name, tracking_uri or self.server.uri)
        return run_retrain(
            request or _request(),
            model.retrain,
            recent=self.recent if recent is None else recent,
            reference=self.reference,
            model_config=model,
            client=client,
        )

    def alias(self, alias: str) -> str | None:
        """The version under ``alias``, asked of the real server."""
        client = MlflowClient(tracking_uri=self.server.uri)
        try:
            return str(client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None


@pytest.fixture
def case(mlflow_server: MlflowServer, reference: pd.DataFrame, recent: pd.DataFrame) -> Case:
    name = f"cancer-{uuid.uuid4().hex[:8]}"
    features = reference.drop(columns=TARGET)
    estimator = _estimator().fit(features, reference[TARGET])
    version = bootstrap_champion(
        estimator, registered_model=name, sample=features, tracking_uri=mlflow_server.uri
    )
    assert version == "1"
    return Case(mlflow_server, name, reference, recent)


@pytest.fixture
def quick_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retries with backoff: an unreachable server fails the call at once."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _request() -> RetrainRequest:
    return RetrainRequest(
        model="cancer",
        request_id=uuid.uuid4().hex,
        trigger_alert_id="alert-drift-1",
        trigger_kind="drift",
        window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-01T00:15:00Z",
    )


def _check_alerts(outcome: RetrainOutcome, request: RetrainRequest) -> list[str]:
    bodies = outcome_alerts(outcome, request)
    for body in bodies:
        ALERT_SCHEMA.validate(body)
    return [body["kind"] for body in bodies]


class TestBetterChallenger:
    def test_is_registered_tagged_and_promoted(self, case: Case, tmp_path: Path) -> None:
        request = _request()
        outcome = case.retrain(request=request)

        assert outcome.status == "succeeded", outcome.reason
        assert (outcome.version, outcome.champion_version, outcome.promoted) == ("2", "1", True)
        metrics = outcome.metrics
        assert metrics["challenger_accuracy"] > metrics["champion_accuracy"] + 0.1
        assert outcome.data["n_holdout"] == 120
        assert outcome.data["n_train"] == N_REFERENCE + N_RECENT - 120
        assert (case.alias("champion"), case.alias("challenger")) == ("2", "2")
        assert _check_alerts(outcome, request) == ["retrain_succeeded", "model_promoted"]

        client = MlflowClient(tracking_uri=case.server.uri)
        tags = client.get_model_version(case.name, "2").tags
        assert tags["driftline.trigger_alert_id"] == "alert-drift-1"
        assert tags["driftline.trigger_window_start"] == "2026-01-01T00:00:00Z"
        assert tags["driftline.trigger_window_end"] == "2026-01-01T00:15:00Z"
        assert tags["driftline.gate"].startswith("passed: challenger accuracy")
        run = client.get_run(outcome.run_id or "")
        assert run.data.params["logisticregression__C"] == "1.0"
        assert run.data.params["driftline.holdout_source"] == "recent"
        assert run.data.metrics["challenger_accuracy"] == metrics["challenger_accuracy"]

        profile_file = registry.download_run_artifact(
            f"models:/{case.name}@champion",
            registry.PROFILE_ARTIFACT,
            tmp_path,
            tracking_uri=case.server.uri,
        )
        profile = ReferenceProfile.load(profile_file)
        assert profile.n_rows == outcome.data["n_train"]
        assert profile.classes == ("0", "1")
        assert profile.probability is not None
        assert profile.performance is not None
        assert len(profile.features) == 30
        data_file = registry.download_run_artifact(
            f"models:/{case.name}/2",
            registry.REFERENCE_ARTIFACT,
            tmp_path,
            tracking_uri=case.server.uri,
        )
        assert {"prediction", "probability", TARGET} <= set(pd.read_parquet(data_file).columns)


class TestWorseChallenger:
    def test_is_registered_as_challenger_but_not_promoted(self, case: Case) -> None:
        corrupted = case.recent.copy()
        n_train = len(corrupted) - 120  # the holdout (newest 30%) keeps its true labels
        corrupted.loc[: n_train - 1, TARGET] = 1 - corrupted.loc[: n_train - 1, TARGET]
        request = _request()
        outcome = case.retrain(recent=corrupted, request=request)

        assert outcome.status == "succeeded", outcome.reason
        assert (outcome.version, outcome.promoted) == ("2", False)
        metrics = outcome.metrics
        assert metrics["challenger_accuracy"] < metrics["champion_accuracy"]
        assert (case.alias("champion"), case.alias("challenger")) == ("1", "2")
        tags = MlflowClient(tracking_uri=case.server.uri).get_model_version(case.name, "2").tags
        assert tags["driftline.gate"].startswith("failed: challenger accuracy")
        assert _check_alerts(outcome, request) == ["retrain_succeeded"]


@pytest.mark.usefixtures("quick_failures")
class TestMlflowDown:
    def test_unreachable_from_the_start_fails_and_moves_nothing(self, case: Case) -> None:
        request = _request()
        outcome = case.retrain(tracking_uri=f"http://127.0.0.1:{free_port()}", request=request)

        assert outcome.status == "failed"
        assert outcome.reason.startswith(f"loading the champion of {case.name!r} failed")
        assert (outcome.version, outcome.promoted) == (None, False)
        assert (case.alias("champion"), case.alias("challenger")) == ("1", None)
        assert _check_alerts(outcome, request) == ["retrain_failed"]

    def test_going_down_before_registration_registers_nothing(
        self, case: Case, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with _Proxy(case.server.port) as proxy:
            register = registry.register_version
            monkeypatch.setattr(registry, "register_version", _after(proxy.close, register))
            outcome = case.retrain(tracking_uri=proxy.uri)

        assert outcome.status == "failed"
        assert outcome.reason.startswith(f"registering a new version of {case.name!r} failed")
        assert outcome.run_id is not None  # the run was logged before the outage
        assert outcome.version is None
        client = MlflowClient(tracking_uri=case.server.uri)
        assert [v.version for v in client.search_model_versions(f"name = '{case.name}'")] == ["1"]
        assert (case.alias("champion"), case.alias("challenger")) == ("1", None)

    def test_going_down_before_the_champion_moves_leaves_it_in_place(
        self, case: Case, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        request = _request()
        with _Proxy(case.server.port) as proxy:
            client = MlflowClient(tracking_uri=proxy.uri)
            set_alias = client.set_registered_model_alias

            def flaky(name: str, alias: str, version: str) -> None:
                if alias == registry.CHAMPION:
                    proxy.close()
                set_alias(name, alias, version)

            monkeypatch.setattr(client, "set_registered_model_alias", flaky)
            outcome = case.retrain(tracking_uri=proxy.uri, client=client, request=request)

        assert outcome.status == "failed"
        assert outcome.reason.startswith("moving alias champion failed")
        assert (outcome.version, outcome.promoted) == ("2", False)
        assert (case.alias("champion"), case.alias("challenger")) == ("1", "2")
        assert _check_alerts(outcome, request) == ["retrain_failed"]


class TestTrainingEntryPoint:
    def test_a_configured_function_trains_the_challenger(self, case: Case) -> None:
        model = _model(case.name, case.server.uri)
        settings = replace(model.retrain, training_entry_point=f"{__name__}:train_tree")
        outcome = run_retrain(
            _request(),
            settings,
            recent=case.recent,
            reference=case.reference,
            model_config=replace(model, retrain=settings),
        )

        assert outcome.status == "succeeded", outcome.reason
        assert outcome.version == "2"
        run = MlflowClient(tracking_uri=case.server.uri).get_run(outcome.run_id or "")
        assert run.data.params["driftline.training"] == f"{__name__}:train_tree"
        assert run.data.params["max_depth"] == "3"
        with registry.tracking(case.server.uri):  # a tree: its types were trusted on save
            challenger = registry.load_version(case.name, "2")
        assert isinstance(challenger, DecisionTreeClassifier)

    @pytest.mark.parametrize(
        ("entry_point", "message"),
        [
            ("no_colon", "must read 'package.module:function'"),
            ("no_such_module_xyz:train", "cannot be loaded"),
            (f"{__name__}:no_such_function", "cannot be loaded"),
            (f"{__name__}:not_a_model", "returned str, not a fitted estimator"),
        ],
    )
    def test_a_bad_entry_point_is_named(self, entry_point: str, message: str) -> None:
        data = build_training_set(
            pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0, 1, 0]}),
            None,
            features=["x"],
            target="y",
            holdout_fraction=0.4,
        )
        with pytest.raises(RetrainError, match=message):
            fit_challenger(None, entry_point, data)


def not_a_model(x: pd.DataFrame, y: pd.Series) -> str:
    return "a model"


def train_tree(x: pd.DataFrame, y: pd.Series) -> DecisionTreeClassifier:
    """A training entry point (``tests.test_retrain_job:train_tree``)."""
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)


def test_the_command_retrains_from_a_config(
    mlflow_server: MlflowServer,
    reference: pd.DataFrame,
    recent: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``driftline retrain``: the reference comes from the champion's run (``uri:``)."""
    name = f"cancer-{uuid.uuid4().hex[:8]}"
    reference.to_parquet(tmp_path / registry.REFERENCE_ARTIFACT, index=False)
    features = reference.drop(columns=TARGET)
    bootstrap_champion(
        _estimator().fit(features, reference[TARGET]),
        registered_model=name,
        sample=features,
        tracking_uri=mlflow_server.uri,
        artifacts=[tmp_path / registry.REFERENCE_ARTIFACT],
    )
    capsys.readouterr()  # MLflow's run links, printed by the bootstrap
    recent.to_csv(tmp_path / "recent.csv", index=False)
    config = {
        "models": [
            {
                "name": name,
                "task": "classification",
                "reference": {"uri": f"models:/{name}@champion", "target": TARGET},
                "window": {"size": 100},
                "retrain": {"enabled": True, "tracking_uri": mlflow_server.uri},
            }
        ]
    }
    (tmp_path / "driftline.yaml").write_text(json.dumps(config), encoding="utf-8")

    code = retrain_main(
        ["--config", str(tmp_path / "driftline.yaml"), "--model", name,
         "--recent", str(tmp_path / "recent.csv"), "--trigger-alert-id", "a-1"]
    )  # fmt: skip

    printed = json.loads(capsys.readouterr().out)
    assert code == 0, printed
    assert (printed["status"], printed["version"], printed["promoted"]) == ("succeeded", "2", True)
    assert Case(mlflow_server, name, reference, recent).alias("champion") == "2"


# --- a loopback TCP proxy that can fail on cue -----------------------------------------


def _after(first: Callable[[], None], then: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        first()
        return then(*args, **kwargs)

    return call


class _Proxy:
    """Forwards 127.0.0.1:<port> to the server; ``close()`` is an outage: every open
    connection is cut and new ones are refused."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.uri = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> _Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            downstream.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                if self._closed.is_set():
                    downstream.close()
                    upstream.close()
                    return
                self._sockets.update((downstream, upstream))
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture(autouse=True)
def _no_leaked_run() -> Iterator[None]:
    """A failed job must not leave an MLflow run active in this process."""
    yield
    import mlflow

    assert mlflow.active_run() is None
