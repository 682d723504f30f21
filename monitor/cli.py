"""The ``driftline`` command.

Exit codes: 0 ok, 1 failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import structlog

from monitor.config import load_config
from monitor.errors import DriftlineError
from retrain.cli import add_arguments as add_retrain_arguments
from retrain.cli import run as run_retrain_command

__all__ = ["main"]

log = structlog.get_logger("driftline")

DEFAULT_CACHE = Path.home() / ".cache" / "driftline"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftline",
        description="Kafka-native monitoring of machine-learning models in production: "
        "drift, data quality, performance and health per window of traffic.",
    )
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
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
    replay.add_argument("inputs", type=Path, nargs="+", metavar="INPUT.jsonl")
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
    return parser


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
    args = _parser().parse_args(argv)
    _configure_logging(args.log_level)
    if args.command == "retrain":
        return run_retrain_command(args)
    try:
        config = load_config(args.config)
        if args.command == "replay":
            from monitor.replay import replay

            with args.output.open("wb") as output:
                summary = replay(config, args.inputs, output, args.cache_dir)
            log.info("replay_done", output=str(args.output), **summary)
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
    except DriftlineError as err:
        print(f"driftline: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
