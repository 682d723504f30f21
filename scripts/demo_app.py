"""The simulated app of ``make demo``: a breast-cancer classifier serving traffic.

Traffic resamples held-out patients of scikit-learn's breast cancer dataset with a little
noise. When the demo turns the drift on, a new imaging device reads every size feature
(radius, perimeter and area, mean and worst) 1.5 standard deviations larger than before,
while the diagnoses stay what they were: the inputs drift *and* their relation to the label
changes. The old model, which learnt that large means malignant, now calls many benign
cases malignant (accuracy falls from about 0.96 to about 0.7); a model refit on the new
readings gets them right again, which is what the retrain finds.

The app loads the model MLflow calls ``champion`` (``load_champion``), logs each
prediction with its features through ``PredictionLogger`` and, a few events later, its
label. Event times come from a simulated clock in the past, so a day of traffic passes in
a minute and the daemon's training horizon can tell yesterday from today.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from monitor.producer import PredictionLogger
from retrain import registry

__all__ = ["DRIFTED", "MODEL", "TARGET", "App", "DemoData", "train"]

MODEL = "cancer"  # the monitored model, and its registered model in MLflow
TARGET = "malignant"
DRIFTED = [f"{part} {size}" for part in ("mean", "worst")
           for size in ("radius", "perimeter", "area")]
SHIFT_SD = 1.5  # how much larger the new device reads the size features, in standard deviations
NOISE_SD = 0.05  # per-feature noise on resampled patients, in standard deviations
CHUNK = 50  # predictions served per model call


@dataclass(frozen=True)
class DemoData:
    model: Any  # the first champion: scaler + logistic regression
    reference: pd.DataFrame  # held-out rows with the model's prediction and probability
    live: pd.DataFrame  # the held-out patients the app's traffic resamples
    features: list[str]


def train() -> DemoData:
    """Fit the first model on 40 % of the data; the other 60 % is the reference (with the
    model's outputs) and the pool of patients the app's traffic resamples."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": TARGET})
    frame[TARGET] = 1 - frame[TARGET]  # scikit-learn's 1 is benign
    features = [str(name) for name in data.feature_names]
    train_set, rest = train_test_split(frame, test_size=0.6, random_state=0,
                                       stratify=frame[TARGET])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train_set[features], train_set[TARGET])
    reference = rest.copy()  # the held-out patients: the app's traffic resamples them
    reference["probability"] = model.predict_proba(reference[features])[:, 1]
    reference["prediction"] = (reference["probability"] >= 0.5).astype(int)
    return DemoData(model, reference.reset_index(drop=True), rest.reset_index(drop=True),
                    features)


class App:
    """Serves predictions of the current champion and logs them, then their labels."""

    def __init__(self, logger: PredictionLogger, tracking_uri: str, data: DemoData, *,
                 start_ms: int, step_ms: int, label_lag: int, seed: int = 42) -> None:
        self.logger = logger
        self.tracking_uri = tracking_uri
        self.data = data
        self.clock_ms = start_ms  # simulated event time
        self.step_ms = step_ms  # between two predictions
        self.label_lag = label_lag  # a label is logged this many predictions later
        self.rng = np.random.default_rng(seed)
        self.spread = data.live[data.features].std()
        self.model: Any = None
        self.version = ""
        self.served = 0
        self._unlabelled: deque[tuple[str, int]] = deque()

    def load_champion(self) -> str:
        """Load the version under alias ``champion`` from MLflow; return its number."""
        client = MlflowClient(tracking_uri=self.tracking_uri)
        version = str(client.get_model_version_by_alias(MODEL, registry.CHAMPION).version)
        with registry.tracking(self.tracking_uri):
            self.model = registry.load_version(MODEL, version)
        self.version = version
        return version

    def wait(self, ms: int) -> None:
        """Let simulated time pass without traffic."""
        self.clock_ms += ms

    def serve(self, n: int, *, drifted: bool, between: Callable[[], None]) -> None:
        """Serve ``n`` predictions (with every label by the end); ``between`` runs after
        every chunk, so the demo can narrate while the app works."""
        for start in range(0, n, CHUNK):
            inputs, labels = self._patients(min(CHUNK, n - start), drifted)
            probabilities = self.model.predict_proba(inputs)[:, 1]
            for row, label, probability in zip(
                    inputs.to_dict("records"), labels, probabilities, strict=True):
                event_id = self.logger.log_prediction(
                    int(probability >= 0.5), probabilities=float(probability), features=row,
                    timestamp=self.clock_ms, model_version=self.version)
                self.served += 1
                self.clock_ms += self.step_ms
                self._unlabelled.append((event_id, int(label)))
                if len(self._unlabelled) > self.label_lag:
                    self._label(*self._unlabelled.popleft())
            between()
        while self._unlabelled:
            self._label(*self._unlabelled.popleft())
        self.logger.flush(timeout_s=30)

    def _label(self, event_id: str, label: int) -> None:
        self.logger.log_label(event_id, label, timestamp=self.clock_ms)

    def _patients(self, n: int, drifted: bool) -> tuple[pd.DataFrame, np.ndarray]:
        features = self.data.features
        rows = self.data.live.iloc[self.rng.integers(len(self.data.live), size=n)]
        noise = self.rng.normal(0.0, NOISE_SD, (n, len(features))) * self.spread.to_numpy()
        inputs = pd.DataFrame(rows[features].to_numpy(dtype=float) + noise, columns=features)
        if drifted:
            inputs[DRIFTED] += SHIFT_SD * self.spread[DRIFTED].to_numpy()
        return inputs, rows[TARGET].to_numpy()
