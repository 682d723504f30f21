"""``driftline retrain --model NAME``: run the retrain job once, by hand.

Prints the outcome as one JSON object on stdout (whatever MLflow prints goes to stderr,
so stdout stays machine-readable). Exit codes: 0 the job succeeded (promoted
or not), 1 it failed (the outcome says why), 2 bad usage, config or input files.
Manual runs ignore ``retrain.enabled``, which only governs the daemon's triggers.

Recent labelled rows come from ``--recent PATH`` (CSV or Parquet: the feature columns and
the target column; an optional ``timestamp`` column, RFC 3339 or epoch ms, orders them and
limits them to ``retrain.horizon``). Without it, part of the reference is held out.

``monitor/cli.py`` adds the subcommand with ``add_arguments(sub)`` and runs it with
``run(args)``; ``python -m retrain`` is the same command on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pandas as pd

from monitor.config import ModelConfig, load_config
from monitor.engine.reference_data import load_reference
from monitor.errors import ConfigError, DriftlineError, InputError, RetrainError
from monitor.progress import progress_bar, wanted

if TYPE_CHECKING:
    from retrain.outcome import RetrainOutcome

__all__ = ["add_arguments", "main", "reference_frame", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("driftline.yaml"),
        help="the YAML configuration (default: driftline.yaml)",
    )
    parser.add_argument("--model", required=True, help="the monitored model to retrain")
    parser.add_argument(
        "--recent",
        type=Path,
        metavar="PATH",
        help="recent labelled rows (CSV or Parquet): features and target",
    )
    parser.add_argument("--request-id", help="id of this request (default: a random one)")
    parser.add_argument("--trigger-alert-id", help="the alert that asked for this retrain")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (drawn only on a terminal; DRIFTLINE_PROGRESS=0 "
                        "also turns it off)")


def run(args: argparse.Namespace) -> int:
    """Run the job for parsed ``args``; print the outcome; return the exit code."""
    progress = wanted(getattr(args, "no_progress", False), os.environ)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # MLflow prints run links to stdout
            outcome = _retrain(args, progress)
    except DriftlineError as err:
        print(f"driftline retrain: {err}", file=sys.stderr)
        return err.exit_code
    sys.stdout.write(orjson.dumps(outcome.to_dict(), option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")
    return 0 if outcome.status == "succeeded" else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="driftline retrain",
        description="Retrain a monitored model, register it in MLflow as challenger, and "
        "promote it to champion when it beats the current one on recent data.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as err:  # not one of ours: one line, and exit 1 (see monitor.cli)
        print(f"driftline retrain: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _retrain(args: argparse.Namespace, progress: bool = False) -> RetrainOutcome:
    # MLflow takes seconds to import: only when a retrain really runs, not for --help
    from retrain.dataset import recent_within_horizon
    from retrain.job import N_STEPS, run_retrain
    from retrain.outcome import RetrainRequest

    config = load_config(args.config)
    model = config.model(args.model)
    if model is None:
        known = ", ".join(m.name for m in config.models)
        raise ConfigError(f"{args.config}: no model named {args.model!r}; the config has {known}")
    request = RetrainRequest(
        model=model.name,
        request_id=args.request_id or uuid.uuid4().hex,
        trigger_alert_id=args.trigger_alert_id,
    )
    recent = None
    if args.recent is not None:
        recent = recent_within_horizon(_read_table(args.recent), model.retrain.horizon_s)
    reference = reference_frame(model)
    with progress_bar(progress, total=N_STEPS, unit="step", desc="retrain") as bar:

        def step(name: str) -> None:
            bar.update(1)
            bar.set_postfix_str(name)

        return run_retrain(
            request,
            model.retrain,
            recent=recent,
            reference=reference,
            model_config=model,
            on_step=step,
        )


def reference_frame(model: ModelConfig) -> pd.DataFrame:
    """The reference file, or the ``reference.parquet`` of the run behind its MLflow URI."""
    from retrain.registry import REFERENCE_ARTIFACT, download_run_artifact

    if model.reference.path is not None or model.reference.uri is None:
        return load_reference(model.reference, model)
    with tempfile.TemporaryDirectory(prefix="driftline-reference-") as tmp:
        try:
            path = download_run_artifact(
                model.reference.uri,
                REFERENCE_ARTIFACT,
                Path(tmp),
                tracking_uri=model.retrain.tracking_uri,
            )
        except Exception as err:  # MLflow and network errors, whatever their type
            raise RetrainError(
                f"model {model.name!r}: cannot fetch {REFERENCE_ARTIFACT} of "
                f"{model.reference.uri}: {err}"
            ) from err
        return _read_table(path)


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except Exception as err:  # pandas and pyarrow raise many types on unreadable files
        raise InputError(f"{path} cannot be read: {err}") from err
    raise InputError(f"{path}: unknown suffix; use .csv, .csv.gz, .parquet or .pq")
