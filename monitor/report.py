"""``driftline report``: one window's retained rows against the reference, as Evidently HTML.

For the on-call engineer who sees a red window. The rows a window kept (at most
``drift.sample_size``, saved in the store when it first closed; see
``monitor.store.samples``) are compared with the model's reference data (its ``path``, or
the ``reference.parquet`` of the run behind its MLflow ``uri``) by Evidently's data drift
and data summary presets, with the features' kinds as column types and, per feature, the
test driftline scores it with (``ks`` for the default binned KS: the sample is small, where
Evidently's own choice for a large reference, a distance, is noisy). A header above the
report repeats driftline's own verdict on the window (health, drifted features).

    reports = WindowReports(config, store)
    key = reports.resolve("wine", "latest")   # or "7" (a window key), or an RFC 3339 time
    html = reports.html("wine", key)

The comparison is with the reference the config names today; a window scored against an
earlier champion's reference (after a re-baseline) is still compared with today's.
"""

from __future__ import annotations

import html as html_text
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.config import Config, FeatureKind, FeatureSpec, ModelConfig
from monitor.engine.decisions import resolve_method
from monitor.engine.performance import class_key
from monitor.errors import ConfigError, ReferenceDataError, ReportError
from monitor.store import Store
from monitor.store import samples as saved
from monitor.store.utc import parse_rfc3339

__all__ = ["WindowReports", "default_output", "write_report"]


class WindowReports:
    """Evidently reports of the windows of ``config``'s models whose samples ``store`` has.

    Reference frames are read once per model and kept; ``html`` may run on several threads.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._references: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def model(self, name: str) -> ModelConfig:
        """The configured model; ``ConfigError`` naming the known ones otherwise."""
        model = self.config.model(name)
        if model is None:
            known = ", ".join(m.name for m in self.config.models)
            raise ConfigError(f"no model named {name!r}; the config has {known}")
        return model

    def resolve(self, model: str, window: str) -> int:
        """The key of the window that ``window`` names: a key, ``latest`` or a time in it."""
        self.model(model)
        text = window.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if text == "latest":
            key = saved.newest_window_key(self.store, model)
            if key is None:
                raise ReportError(f"model {model!r} has no closed window in the store yet")
            return key
        try:
            at = parse_rfc3339(text)
        except ValueError:
            raise ConfigError(
                f"--window {window!r} is neither a window key (an integer, as in the API's "
                "window_key), 'latest', nor an RFC 3339 time (2026-01-01T00:15:00Z)"
            ) from None
        key = saved.window_key_at(self.store, model, at)
        if key is None:
            raise ReportError(f"model {model!r} has no closed window that holds {text}")
        return key

    def html(self, model: str, window_key: int) -> str:
        """The report of one window as a standalone HTML page."""
        config = self.model(model)
        sample = saved.load_sample(self.store, model, window_key)
        line = saved.window_line(self.store, model, window_key)
        where = f"window {window_key} of model {model!r}"
        if line is None and sample is None:
            raise ReportError(f"{where}: no such closed window in the store")
        if sample is None:
            days = self.config.store.retention_s / 86400
            raise ReportError(
                f"{where} ({line['window_start'] if line else '?'}) has no saved sample: it "
                f"was pruned (store.retention is {days:g} days), or the window closed before "
                "this driftline saved samples"
            )
        if not sample.rows:
            raise ReportError(f"{where} kept no feature rows: no features arrived before it "
                              "closed")
        current = _current_frame(sample)
        reference = _reference_frame(self._reference(config), sample.columns, model)
        page = _evidently_html(current, reference, sample.columns, _methods(config, sample))
        return _with_header(page, _header(model, window_key, line, len(current), len(reference)))

    def _reference(self, model: ModelConfig) -> pd.DataFrame:
        with self._lock:
            frame = self._references.get(model.name)
            if frame is None:
                from retrain.cli import reference_frame  # noqa: PLC0415 - MLflow only if used

                frame = self._references[model.name] = reference_frame(model)
            return frame


def default_output(model: str, window_key: int) -> Path:
    """``report-<model>-<window_key>.html`` in the working directory."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model)
    return Path(f"report-{safe}-{window_key}.html")


def write_report(config: Config, store: Store, model: str, window: str,
                 output: Path | None = None) -> Path:
    """Write the report of the window ``window`` names; returns the file written."""
    reports = WindowReports(config, store)
    key = reports.resolve(model, window)
    page = reports.html(model, key)
    path = output or default_output(model, key)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as err:
        raise ReportError(f"cannot write the report to {path}: {err.strerror}") from err
    return path


def _current_frame(sample: saved.WindowSample) -> pd.DataFrame:
    names = [c["name"] for c in sample.columns]
    frame = pd.DataFrame(sample.rows, columns=names)
    for column in sample.columns:
        if column["kind"] == "numeric":
            frame[column["name"]] = pd.to_numeric(frame[column["name"]], errors="coerce")
        else:
            frame[column["name"]] = frame[column["name"]].astype(object)
    return frame


def _reference_frame(frame: pd.DataFrame, columns: list[dict[str, str]], model: str
                     ) -> pd.DataFrame:
    """The sample's columns of the reference, categories keyed as the sample's are."""
    names = [c["name"] for c in columns]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ReferenceDataError(
            f"model {model!r}: the reference lacks the window's features {missing}"
        )
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        values = frame[column["name"]]
        if column["kind"] == "numeric":
            out[column["name"]] = pd.to_numeric(values, errors="coerce").astype(np.float64)
        else:
            out[column["name"]] = [None if _missing(v) else _category(v) for v in values]
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _category(value: Any) -> str:
    try:
        return class_key(value)
    except TypeError:
        return str(value)


def _methods(model: ModelConfig, sample: saved.WindowSample) -> dict[str, str]:
    """Per feature, Evidently's name of the method driftline scores it with (Evidently's
    default threshold for it: driftline's own decision adds FDR control and effect floors,
    which the header's verdict reflects)."""
    configured = {f.name: f for f in model.features or ()}
    out: dict[str, str] = {}
    for column in sample.columns:
        kind: FeatureKind = "numeric" if column["kind"] == "numeric" else "categorical"
        spec = configured.get(column["name"]) or FeatureSpec(column["name"], kind)
        if spec.kind != kind:  # the config changed since: Evidently's own choice
            continue
        method = resolve_method(spec, model.drift)
        out[column["name"]] = "ks" if method == "ks_binned" else method
    return out


def _evidently_html(current: pd.DataFrame, reference: pd.DataFrame,
                    columns: list[dict[str, str]], methods: dict[str, str]) -> str:
    # Evidently takes seconds to import: only when a report is made
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset, DataSummaryPreset  # noqa: PLC0415

    definition = DataDefinition(
        numerical_columns=[c["name"] for c in columns if c["kind"] == "numeric"],
        categorical_columns=[c["name"] for c in columns if c["kind"] != "numeric"],
    )
    drift = DataDriftPreset(per_column_method=dict(methods))
    with np.errstate(divide="ignore", invalid="ignore"):  # an unseen category: expected 0
        snapshot = Report([drift, DataSummaryPreset()]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    return str(snapshot.get_html_str(as_iframe=False))


def _header(model: str, key: int, line: dict[str, Any] | None, n_rows: int,
            n_reference: int) -> str:
    facts = [f"{n_rows} sampled rows of the window against {n_reference} reference rows"]
    if line is not None:
        drifted = [name for name, f in (line.get("features") or {}).items() if f.get("drift")]
        health = line.get("health_score")
        facts[:0] = [
            f"{line['window_start']} – {line['window_end']}",
            f"{line['n_predictions']} predictions",
            "health " + ("n/a" if health is None else f"{health:.1f}"),
            "driftline's drifted features: " + (", ".join(drifted) or "none"),
        ]
    text = " · ".join(html_text.escape(str(f)) for f in facts)
    title = html_text.escape(f"driftline · {model} · window {key}")
    return (f'<div id="driftline-window" style="font-family:sans-serif;padding:12px 24px;'
            f'border-bottom:1px solid #ddd"><h2 style="margin:0 0 4px">{title}</h2>'
            f"<div>{text}</div></div>")


def _with_header(page: str, header: str) -> str:
    at = page.find("<body>")
    if at < 0:
        return header + page
    at += len("<body>")
    return page[:at] + header + page[at:]
