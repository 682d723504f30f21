"""The ``driftline`` command.

Exit codes: 0 ok, 1 failure, 2 bad usage or configuration. Errors are one line on stderr
(``driftline: error: ...``); an unexpected exception also prints its traceback at
``--log-level debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import orjson
import structlog

from monitor.config import load_config
from monitor.errors import ConfigError, DriftlineError
from retrain.cli import add_arguments as add_retrain_arguments
from retrain.cli import run as run_retrain_command

__all__ = ["main"]

log = structlog.get_logger("driftline")

DEFAULT_CACHE = Path.home() / ".cache" / "driftline"
EPILOG = """\
exit codes:
  0  success
  1  failure (Kafka, the store, MLflow, a failed retrain, no such window)
  2  bad usage or configuration (arguments, config file, input or reference files)

Run `driftline COMMAND --help` for a command's options."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline",
        description="Kafka-native monitoring of machine-learning models in production:\n"
        "drift, data quality, performance and health per window of traffic.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="structured logs on stderr at this level and above (default: "
                        "info); debug also prints tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", type=Path, default=Path("driftline.yaml"),
                         help="the YAML configuration (default: driftline.yaml)")
        sub.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                         help=f"where reference profiles are cached (default: {DEFAULT_CACHE})")

    run = commands.add_parser(
        "run", help="consume the three Kafka streams and score every window",
        description="Run the monitoring daemon: consume predictions, features and labels "
        "from Kafka, dead-letter invalid messages, score windows. Stops cleanly on "
        "SIGTERM or Ctrl-C.")
    common(run)
    run.add_argument("--output", type=Path,
                     help="also append every window line (JSONL) to this file")
    run.add_argument("--max-idle", type=float, default=None, metavar="SECONDS",
                     help="stop after this many seconds without messages (tests, demos)")

    replay = commands.add_parser(
        "replay", help="feed recorded events through the pipeline, without Kafka",
        description="Backtest: feed recorded JSONL events (optionally .gz) through exactly "
        "the pipeline of the daemon and write a line per window, then a summary.")
    common(replay)
    replay.add_argument("--output", type=Path, required=True, help="RESULTS.jsonl to write")
    replay.add_argument("inputs", type=Path, nargs="+", metavar="INPUT.jsonl",
                        help="recorded events, one {\"stream\": ..., \"value\": ...} a line")
    no_progress(replay)
    retrain = commands.add_parser(
        "retrain", help="retrain a model, register a challenger, promote it if better",
        description="Refit the champion's estimator on the reference plus recent labelled "
        "rows, compare challenger and champion on held-out recent rows, register the "
        "challenger in MLflow and move `champion` only when it passes the gate. Prints the "
        "outcome as JSON.")
    add_retrain_arguments(retrain)

    status = commands.add_parser(
        "status", help="health per model from the store",
        description="Summarise the newest windows of each model from the store: health, "
        "drift, labels and alerts.")
    common(status)
    status.add_argument("--model", action="append", default=[],
                        help="only this model (repeatable)")
    status.add_argument("--since", metavar="DURATION",
                        help="only windows that ended in this past duration, e.g. 24h")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")

    report = commands.add_parser(
        "report", help="an HTML drill-down report of one window (Evidently)",
        description="Compare the rows a window kept (at most drift.sample_size, saved when "
        "it closed) with the model's reference data in an Evidently report: data drift "
        "per feature and a data summary. Prints the path of the HTML file written. Exits 1 "
        "when the window or its sample is not in the store (pruned after store.retention).")
    report.add_argument("--config", type=Path, default=Path("driftline.yaml"),
                        help="the YAML configuration (default: driftline.yaml)")
    report.add_argument("--model", required=True, help="the monitored model")
    report.add_argument("--window", required=True, metavar="WINDOW",
                        help="the window: its key (window_key in /api/models/MODEL/windows), "
                        "'latest', or an RFC 3339 time inside it (2026-01-01T00:15:00Z)")
    report.add_argument("--output", type=Path, metavar="PATH",
                        help="the HTML file to write (default: report-<model>-<window_key>"
                        ".html in the working directory)")
    return parser


def no_progress(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--no-progress", action="store_true",
                     help="no progress bar (drawn only when stderr is a terminal; "
                     "DRIFTLINE_PROGRESS=0 also turns it off)")


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    quiet = max(logging.WARNING, logging.getLevelName(level.upper()))
    for chatty in ("kafka", "alembic", "httpx"):  # libraries' own INFO lines are noise here
        logging.getLogger(chatty).setLevel(quiet)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # bad usage: argparse prints it and exits 2
    _configure_logging(args.log_level)
    try:
        return _run(args)
    except DriftlineError as err:
        print(f"driftline: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("driftline: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug or an unwrapped library error: one line, exit 1
        if args.log_level == "debug":
            traceback.print_exc(file=sys.stderr)
        print(f"driftline: error: unexpected {type(err).__name__}: {err} (run with "
              "--log-level debug for the traceback)", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "retrain":
        return run_retrain_command(args)
    config = load_config(args.config)
    if args.command == "replay":
        from monitor.progress import wanted
        from monitor.replay import replay

        try:
            output = args.output.open("wb")
        except OSError as err:
            raise ConfigError(f"--output {args.output}: {err.strerror}") from err
        with output:
            summary = replay(config, args.inputs, output, args.cache_dir,
                             progress=wanted(args.no_progress, os.environ))
        log.info("replay_done", output=str(args.output), **summary)
        return 0
    if args.command == "report":
        from monitor.report import write_report
        from monitor.store import open_store

        with open_store(config.store) as store:
            path = write_report(config, store, args.model, args.window, args.output)
        print(path)
        return 0
    if args.command == "status":
        from monitor.status import render, status
        from monitor.timeparse import parse_duration

        since = None if args.since is None else parse_duration(args.since, key="--since")
        rows = status(config, args.model, since)
        print(orjson.dumps(rows).decode() if args.json else render(rows))
        return 0
    from monitor.daemon import run_daemon

    run_daemon(config, cache_dir=args.cache_dir, output=args.output,
               max_idle_s=args.max_idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
