"""The reference profile of a model: everything scoring needs from the reference data.

Built once from the reference frame (CSV or Parquet) and saved as one JSON file (orjson;
readable, diffable, and a few kB per feature), so the daemon never rereads the raw
reference on start. ``cached_profile`` keys the saved file by a hash of the reference
file's bytes and the profile settings, so editing either rebuilds it.

Per feature: quantile bins with under/overflow bins, moments, missing rate and a seeded
sample of at most ``sample_size`` values (numeric), or category counts with an "unseen"
bucket (categorical); see ``monitor.engine.column_profile``. The same for the model's
output: the prediction (numeric for regression, class counts for classification) and the
positive-class probability (binary classifier with a probability column). With a target
column: the reference performance and a ``Calibrator`` fitted on the reference
probabilities, which the estimated (label-free) accuracy uses.

Features inferred when none are configured: numeric dtypes (not boolean) are numeric,
every other column is categorical; the target, prediction and probability columns are
never features.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from monitor.config import FeatureSpec, ModelConfig, Task
from monitor.engine.column_profile import (
    CategoricalProfile,
    NumericProfile,
    categorical_profile,
    float_column,
    numeric_profile,
)
from monitor.engine.output_profile import OutputProfile
from monitor.engine.performance import Calibrator
from monitor.engine.reference_data import load_reference, reference_path
from monitor.errors import ReferenceDataError

__all__ = [
    "FORMAT_VERSION",
    "ReferenceProfile",
    "cached_profile",
    "infer_features",
    "load_reference",
]

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Profile of a model's reference data; plain numpy/python values only.

    >>> frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", "a"]})
    >>> profile = ReferenceProfile.build(frame, task="regression", features=None, bins=2)
    >>> [(f.name, f.kind) for f in profile.features]
    [('x', 'numeric'), ('c', 'categorical')]
    >>> ReferenceProfile.from_dict(profile.to_dict()).to_dict() == profile.to_dict()
    True
    """

    task: Task
    features: tuple[FeatureSpec, ...]  # name and kind, in reference column order
    numeric: tuple[NumericProfile, ...]
    categorical: tuple[CategoricalProfile, ...]
    n_rows: int
    classes: tuple[str, ...] = ()
    positive_class: str | None = None
    prediction: NumericProfile | CategoricalProfile | None = None
    probability: NumericProfile | None = None
    performance: dict[str, Any] | None = None
    calibrator: Calibrator | None = None
    settings: dict[str, int] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @cached_property
    def index_of(self) -> tuple[dict[str, int], ...]:
        """Per categorical feature: category -> code."""
        return tuple({c: i for i, c in enumerate(p.categories)} for p in self.categorical)

    @cached_property
    def class_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        *,
        task: Task,
        features: Sequence[FeatureSpec] | None,
        target: str | None = None,
        prediction: str | None = None,
        probability: str | None = None,
        bins: int = 10,
        sample_size: int = 1000,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Profile ``frame``; raises ``ReferenceDataError`` naming an unusable column."""
        outputs = {c for c in (target, prediction, probability) if c is not None}
        specs = tuple(features) if features is not None else infer_features(frame, outputs)
        missing = [s.name for s in specs if s.name not in frame.columns]
        missing += [c for c in outputs if c not in frame.columns]
        if missing:
            raise ReferenceDataError(f"reference data lacks the columns {sorted(set(missing))}")
        if len(frame) == 0:
            raise ReferenceDataError("reference data has no rows")
        numeric, categorical = [], []
        for i, spec in enumerate(specs):
            if spec.kind == "numeric":
                values = float_column(frame[spec.name])
                numeric.append(numeric_profile(spec.name, values, bins, sample_size, seed + i))
            else:
                categorical.append(categorical_profile(spec.name, frame[spec.name]))
        outputs_profile = OutputProfile.build(
            frame,
            task=task,
            target=target,
            prediction=prediction,
            probability=probability,
            bins=bins,
        )
        return cls(
            task=task,
            features=tuple(FeatureSpec(s.name, s.kind) for s in specs),
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            n_rows=len(frame),
            classes=outputs_profile.classes,
            positive_class=outputs_profile.positive_class,
            prediction=outputs_profile.prediction,
            probability=outputs_profile.probability,
            performance=outputs_profile.performance,
            calibrator=outputs_profile.calibrator,
            settings={"bins": bins, "sample_size": sample_size, "seed": seed},
        )

    def to_dict(self) -> dict[str, Any]:
        pred = self.prediction
        return {
            "format_version": self.format_version,
            "task": self.task,
            "features": [{"name": f.name, "kind": f.kind} for f in self.features],
            "numeric": [p.to_dict() for p in self.numeric],
            "categorical": [p.to_dict() for p in self.categorical],
            "n_rows": self.n_rows,
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "prediction": None if pred is None else {"kind": _kind(pred), **pred.to_dict()},
            "probability": None if self.probability is None else self.probability.to_dict(),
            "performance": self.performance,
            "calibrator": None if self.calibrator is None else self.calibrator.to_dict(),
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ReferenceDataError(
                f"reference profile has format_version {version!r}, this driftline reads "
                f"{FORMAT_VERSION}: delete the saved profile so it is rebuilt"
            )
        pred = data["prediction"]
        return cls(
            task=data["task"],
            features=tuple(FeatureSpec(f["name"], f["kind"]) for f in data["features"]),
            numeric=tuple(NumericProfile.from_dict(p) for p in data["numeric"]),
            categorical=tuple(CategoricalProfile.from_dict(p) for p in data["categorical"]),
            n_rows=int(data["n_rows"]),
            classes=tuple(data["classes"]),
            positive_class=data["positive_class"],
            prediction=None if pred is None else _column_from_dict(pred),
            probability=None
            if data["probability"] is None
            else NumericProfile.from_dict(data["probability"]),
            performance=data["performance"],
            calibrator=None
            if data["calibrator"] is None
            else Calibrator.from_dict(data["calibrator"]),
            settings={k: int(v) for k, v in data["settings"].items()},
        )

    def save(self, path: str | Path) -> None:
        """Write the profile as JSON, atomically (a temporary file renamed over ``path``)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
        tmp.replace(target)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        try:
            data = orjson.loads(Path(path).read_bytes())
            return cls.from_dict(data)
        except ReferenceDataError as err:
            raise ReferenceDataError(f"{path}: {err}") from err
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ReferenceDataError(
                f"cannot read the reference profile {path}: {err}; delete it to rebuild"
            ) from err


def infer_features(frame: pd.DataFrame, exclude: set[str]) -> tuple[FeatureSpec, ...]:
    """Numeric dtypes (not boolean) are numeric, the rest categorical; ``exclude`` skipped."""
    specs = []
    for name in frame.columns:
        if name in exclude:
            continue
        dtype = frame[name].dtype
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
        specs.append(FeatureSpec(str(name), "numeric" if numeric else "categorical"))
    return tuple(specs)


def _kind(column: NumericProfile | CategoricalProfile) -> str:
    return "numeric" if isinstance(column, NumericProfile) else "categorical"


def _column_from_dict(data: dict[str, Any]) -> NumericProfile | CategoricalProfile:
    body = {k: v for k, v in data.items() if k != "kind"}
    if data["kind"] == "numeric":
        return NumericProfile.from_dict(body)
    return CategoricalProfile.from_dict(body)


def cached_profile(model: ModelConfig, cache_dir: Path) -> ReferenceProfile:
    """The model's profile, built once and then reloaded from ``cache_dir``.

    The file name holds a hash of the reference file's bytes and of every setting the
    profile depends on (features, columns, task, bins, sample size, seed, format), so a
    changed reference or setting builds a new profile; an unreadable cached file is
    rebuilt too.
    """
    source = model.reference
    path = reference_path(source, model)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise ReferenceDataError(
            f"model {model.name!r}: cannot read reference {path}: {err}"
        ) from err
    settings = {
        "format_version": FORMAT_VERSION,
        "task": model.task,
        "features": None if model.features is None else [(f.name, f.kind) for f in model.features],
        "columns": [source.target, source.prediction, source.probability],
        "bins": model.drift.bins,
        "sample_size": model.drift.sample_size,
        "seed": model.drift.seed,
    }
    digest.update(orjson.dumps(settings))
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", model.name)
    file = Path(cache_dir) / f"{safe_name}-{digest.hexdigest()[:24]}.profile.json"
    if file.is_file():
        try:
            return ReferenceProfile.load(file)
        except ReferenceDataError:
            pass  # a truncated or outdated cache file: rebuild it below
    profile = ReferenceProfile.build(
        load_reference(source, model),
        task=model.task,
        features=model.features,
        target=source.target,
        prediction=source.prediction,
        probability=source.probability,
        bins=model.drift.bins,
        sample_size=model.drift.sample_size,
        seed=model.drift.seed,
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    profile.save(file)
    return profile
