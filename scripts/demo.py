"""``make demo``: the whole loop on this machine, unattended, narrated in plain lines.

It starts a real Kafka broker, an MLflow tracking server and a webhook receiver, trains a
scikit-learn classifier on the breast cancer dataset and registers it in MLflow as the
``champion``, writes a config (alerts to the receiver, retraining on) and starts
``driftline run``. A simulated app (``demo_app.py``) serves the champion and logs its
predictions and labels: healthy traffic first, then drifted traffic that hurts accuracy.
The daemon scores windows, alerts, retrains out of process, registers a challenger and
promotes it; the app switches to the new champion, the daemon re-baselines and the windows
recover. Outcomes are read from the daemon's HTTP API and the received webhooks.

Ctrl-C (or any failure) stops everything the demo started: exit code 130 (1 on failure);
a finished run stops everything too and exits 0, unless ``--keep`` (or ``DEMO_KEEP=1``)
leaves it all running for browsing until Ctrl-C.

    DEMO_EVENTS=3000 .venv/bin/python scripts/demo.py    # shorter run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import secrets
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/services: the real MLflow server and webhook receiver

from demo_app import DRIFTED, MODEL, TARGET, App, DemoData, train  # noqa: E402
from demo_narration import Narrator  # noqa: E402
from demo_stack import DemoError, Stack  # noqa: E402

EVENTS = int(os.environ.get("DEMO_EVENTS", "12000"))
WINDOW = max(250, EVENTS // 12)  # predictions per window; four windows per phase
PHASE = 4 * WINDOW  # predictions per phase: healthy, drifted, drifted after the promotion
# The retrain keeps the recent rows as the new reference only when at least 500 remain
# after its 25 % holdout (retrain/new_reference.py): the drift alert waits for enough
# drifted windows that the daemon holds ~700 labelled rows when it fires.
DRIFT_PENDING = max(2, math.ceil(700 / WINDOW))
WINDOW_MS = 5 * 60_000  # simulated event time per window
HOUR_MS = 3_600_000
OWN_FILES = ("cache", "mlflow", "driftline.db", "driftline.db-wal", "driftline.db-shm",
             "driftline.yaml", "reference.csv", "daemon.log")
WEBHOOK_SECRET_ENV = "DRIFTLINE_DEMO_WEBHOOK_SECRET"
QUIET_MLFLOW = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                "MLFLOW_MODEL_CATALOG_URI": "", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


BEGAN = time.monotonic()


def say(text: str) -> None:
    print(f"[demo {time.monotonic() - BEGAN:4.0f}s] {text}", flush=True)


def write_config(path: Path, stack: Stack, tracking_uri: str, webhook_url: str) -> None:
    path.write_text(f"""\
# written by scripts/demo.py
http: {{port: {stack.http_port}}}
kafka:
  bootstrap_servers: "{stack.bootstrap}"
  group_id: driftline-demo
  poll_timeout_ms: 200
store:
  url: "sqlite:///{path.parent / 'driftline.db'}"
alerts:
  routes:
    - {{name: demo-receiver, url: "{webhook_url}", secret_env: {WEBHOOK_SECRET_ENV}}}
  delivery: {{initial_backoff: 200ms, max_backoff: 2s}}
models:
  - name: {MODEL}
    task: classification
    reference: {{path: reference.csv, target: {TARGET}, prediction: prediction,
                 probability: probability}}
    window: {{size: {WINDOW}, grace: 0s, idle_timeout: 2s}}
    alerts:
      drift: {{pending: {DRIFT_PENDING}, keep_firing: 2}}
      performance: {{pending: 1, keep_firing: 2}}
    retrain:
      enabled: true
      on: [drift]
      tracking_uri: "{tracking_uri}"
      registered_model: {MODEL}
      horizon: 2h
      holdout_fraction: 0.25
      metric: accuracy
      margin: 0.02
      cooldown: 1h
""")


def wait_for(what: str, done: Callable[[], bool], narrator: Narrator, stack: Stack,
             timeout_s: float) -> None:
    """Narrate until ``done()``; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        narrator.pump()
        if done():
            return
        stack.check_daemon()
        if time.monotonic() > deadline:
            raise DemoError(f"gave up after {timeout_s:.0f} s waiting for {what}; "
                            f"the daemon's log is {stack.daemon_log}:\n{stack.daemon_tail()}")
        time.sleep(0.3)


def start(stack: Stack, work: Path) -> tuple[DemoData, str]:
    """Services up, first champion registered, daemon running; returns the MLflow URI."""
    say("starting a local Apache Kafka broker (KRaft, from Maven Central jars)")
    say(f"Kafka is up at {stack.start_kafka()}")
    say("starting an MLflow tracking server (SQLite backend, artifacts under "
        f"{(work / 'mlflow').relative_to(ROOT) if work.is_relative_to(ROOT) else work})")
    mlflow_server = stack.start_mlflow()
    say(f"MLflow is up; its UI: {mlflow_server.uri}/")
    data = train()
    data.reference.to_csv(work / "reference.csv", index=False)
    from retrain.registry import bootstrap_champion  # noqa: PLC0415 - MLflow imports slowly

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    chatter = io.StringIO()  # MLflow prints the run's URL and the registration
    with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
        version = bootstrap_champion(data.model, registered_model=MODEL,
                                     sample=data.reference[data.features].head(5),
                                     tracking_uri=mlflow_server.uri)
    say(f"trained a logistic regression on breast cancer data ({len(data.features)} features; "
        f"reference: {len(data.reference)} held-out rows) and registered it in MLflow as "
        f"models:/{MODEL}@champion (version {version})")
    secret = secrets.token_hex(16)
    receiver = stack.start_receiver(secret)
    say(f"a webhook receiver listens at {receiver.url} and checks the alerts' signatures")
    config = work / "driftline.yaml"
    write_config(config, stack, mlflow_server.uri, receiver.url)
    say(f"starting the daemon: driftline run --config {config}")
    stack.start_daemon(config, {**os.environ, **QUIET_MLFLOW, WEBHOOK_SECRET_ENV: secret})
    say(f"the daemon is ready; dashboard: {stack.api}/ (API: {stack.api}/api/models, "
        f"metrics: {stack.api}/metrics)")
    return data, mlflow_server.uri


def play(stack: Stack, data: DemoData, tracking_uri: str) -> str:
    """The app's traffic and the loop it sets off; returns the summary line."""
    from monitor.producer import PredictionLogger  # noqa: PLC0415 - after sys.path is set

    assert stack.receiver is not None
    assert stack.bootstrap is not None
    narrator = Narrator(stack.api, MODEL, stack.receiver, say)
    started_ms = int(time.time() * 1000) - 24 * HOUR_MS  # a simulated day, in the past
    logger = PredictionLogger(stack.bootstrap, model=MODEL, linger_ms=20)
    try:
        app = App(logger, tracking_uri, data, start_ms=started_ms,
                  step_ms=WINDOW_MS // WINDOW, label_lag=WINDOW // 10)
        say(f"the app loaded models:/{MODEL}@champion (version {app.load_champion()}); "
            f"it logs each prediction with its features and, a little later, its label; "
            f"windows of {WINDOW} predictions; event times replay a day in a minute")
        say(f"phase 1, yesterday: {PHASE} predictions of healthy traffic")
        app.serve(PHASE, drifted=False, between=narrator.pump)
        wait_for("the healthy windows", lambda: len(narrator.windows) >= 4, narrator, stack, 120)

        app.wait(12 * HOUR_MS)
        say(f"phase 2, today: a new imaging device reads {', '.join(DRIFTED)} 1.5 standard "
            f"deviations larger; diagnoses are unchanged. {PHASE} predictions")
        app.serve(PHASE, drifted=True, between=narrator.pump)
        say("the app keeps serving the old champion while the daemon reacts")
        wait_for("a finished retrain (none started? see the alerts above)",
                 lambda: any(r["status"] != "running" for r in narrator.runs.values()),
                 narrator, stack, 600)
        run = next(iter(narrator.runs.values()))
        if run["status"] == "failed":
            raise DemoError("the retrain failed; see its reason above")
        if run["promoted"]:
            wait_for("the re-baseline", lambda: bool(narrator.rebaselined), narrator, stack, 120)
        version = app.load_champion()
        say(f"the app reloads models:/{MODEL}@champion: now serving version {version}")
        say(f"phase 3: the new device stays; {PHASE} more predictions")
        app.serve(PHASE, drifted=True, between=narrator.pump)
        wait_for("the last windows", lambda: len(narrator.windows) >= 12, narrator, stack, 120)
        if run["promoted"]:  # the drift alert resolves after two healthy windows
            wait_for("the drift alert to resolve", lambda: bool(narrator.alerts_of(
                "drift", "resolved")), narrator, stack, 60)
        return summarise(narrator, version)
    finally:
        logger.close(timeout_s=10)
        narrator.close()


def summarise(narrator: Narrator, version: str) -> str:
    after = [w for w in narrator.windows[8:] if w.get("model_version") == version]
    healthy = [w for w in after if not w.get("drift_detected")]
    if healthy and len(healthy) == len(after):
        health = [w["health_score"] for w in healthy]
        say(f"recovered: all {len(after)} windows since the promotion show no drift, health "
            f"{min(health):.0f}-{max(health):.0f}/100")
    else:
        say(f"not recovered: {len(after) - len(healthy)} of {len(after)} windows since the "
            "promotion still drift")
    runs = list(narrator.runs.values())
    promoted = [r for r in runs if r["promoted"]]
    return (f"{len(narrator.windows)} windows scored, {len(narrator.alerts_of('drift'))} drift "
            f"alert, {len(runs)} retrain, "
            + (f"version {promoted[0]['registered_version']} promoted, " if promoted
               else "no promotion, ")
            + f"{len(healthy)} of {len(after)} windows healthy after it")


def hold(stack: Stack) -> None:
    assert stack.mlflow is not None
    say(f"--keep: everything stays up. Dashboard: {stack.api}/  MLflow: {stack.mlflow.uri}/  "
        "Ctrl-C stops it all")
    while True:
        stack.check_daemon()
        time.sleep(1.0)


class Interrupted(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> Any:
    raise Interrupted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="driftline's demo: the whole loop, narrated")
    parser.add_argument("--keep", action="store_true",
                        help="leave everything running at the end, until Ctrl-C")
    args = parser.parse_args(argv)
    keep = args.keep or os.environ.get("DEMO_KEEP") == "1"
    for name, value in QUIET_MLFLOW.items():
        os.environ.setdefault(name, value)
    work = Path(os.environ.get("DEMO_DIR") or ROOT / ".driftline" / "demo").resolve()
    stack = Stack(work, say)
    stack.stop_stale_kafka()
    work.mkdir(parents=True, exist_ok=True)
    for name in OWN_FILES:  # each run starts from nothing (the broker wipes its own data)
        path = work / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    signal.signal(signal.SIGTERM, _on_sigterm)
    summary, code = None, 1
    try:
        data, tracking_uri = start(stack, work)
        summary = play(stack, data, tracking_uri)
        code = 0
        if keep:
            hold(stack)
    except KeyboardInterrupt as stop:
        if code != 0:
            code = 143 if isinstance(stop, Interrupted) else 130
            say("interrupted: stopping everything the demo started")
    except Exception as err:
        code = 1
        died = stack.daemon_died(grace_s=2.0)  # the likelier cause of an error talking to it
        if died is None:
            traceback.print_exc()
        say(f"failed: {died or err}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping the daemon, MLflow, the webhook receiver and Kafka")
        stack.stop()
    if summary is not None:
        say(f"done in {time.monotonic() - BEGAN:.0f} s: {summary}; everything stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
