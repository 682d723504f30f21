"""``make demo``: the whole path on this machine, narrated in plain lines.

Starts a real Kafka broker (scripts/kafka), trains a scikit-learn classifier on the breast
cancer dataset that ships with scikit-learn, writes its reference data and a config, starts
``driftline run``, and plays a simulated app that logs predictions (with features) and,
later, their labels: first healthy traffic, then traffic where a few inputs drift. Every
window the daemon scores is narrated; everything started is stopped at the end or on Ctrl-C.

    DEMO_EVENTS=4000 .venv/bin/python scripts/demo.py    # shorter run
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".driftline" / "demo"
EVENTS = int(os.environ.get("DEMO_EVENTS", "12000"))
WINDOW = max(250, EVENTS // 12)
DRIFTED = ["mean radius", "mean texture", "worst area"]


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def start_kafka() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "kafka"), "start", "--dir",
                          str(WORK / "kafka")], check=True, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("KAFKA_BOOTSTRAP="):
            return line.split("=", 1)[1]
    raise RuntimeError(f"scripts/kafka start printed no address: {out.stdout}{out.stderr}")


def stop_kafka() -> None:
    subprocess.run([str(ROOT / "scripts" / "kafka"), "stop", "--dir", str(WORK / "kafka")],
                   check=False, capture_output=True)


def train() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "malignant"})
    frame["malignant"] = 1 - frame["malignant"]  # sklearn's 1 is benign
    train_set, rest = train_test_split(frame, test_size=0.6, random_state=0,
                                       stratify=frame["malignant"])
    features = list(data.feature_names)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train_set[features], train_set["malignant"])
    reference, live = train_test_split(rest, test_size=0.5, random_state=1,
                                       stratify=rest["malignant"])
    reference = reference.copy()
    reference["probability"] = model.predict_proba(reference[features])[:, 1]
    reference["prediction"] = (reference["probability"] >= 0.5).astype(int)
    return model, reference, live


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(bootstrap: str, reference: pd.DataFrame, port: int) -> Path:
    reference.to_csv(WORK / "reference.csv", index=False)
    config = WORK / "driftline.yaml"
    config.write_text(f"""\
http:
  port: {port}
kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: driftline-demo
  poll_timeout_ms: 200
store:
  url: "sqlite:///{WORK / 'driftline.db'}"
models:
  - name: cancer
    task: classification
    reference:
      path: reference.csv
      target: malignant
      prediction: prediction
      probability: probability
    window:
      size: {WINDOW}
      grace: 0s
""")
    return config


def simulate(bootstrap: str, model: Any, live: pd.DataFrame) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topics = ["driftline.predictions", "driftline.features", "driftline.labels"]
    existing = set(admin.list_topics())
    admin.create_topics([NewTopic(t, 1, 1) for t in topics + [f"{t}.dlq" for t in topics]
                         if t not in existing])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    rng = np.random.default_rng(42)
    features = [c for c in live.columns if c != "malignant"]
    spread = live[features].std()
    start_ms = int(time.time() * 1000)
    drift_from = EVENTS // 2
    say(f"the app logs {EVENTS} predictions; from #{drift_from} on, "
        f"{', '.join(DRIFTED)} drift upwards by 1.5 standard deviations")
    labels: list[dict[str, Any]] = []
    for i in range(EVENTS):
        row = live.iloc[rng.integers(len(live))]
        x = row[features].astype(float) + rng.normal(0, 0.05, len(features)) * spread
        if i >= drift_from:
            x[DRIFTED] += 1.5 * spread[DRIFTED]
        p = float(model.predict_proba(pd.DataFrame([x]))[0, 1])
        ts = start_ms + i * 50
        event = {"schema_version": 1, "event_id": f"p-{i}", "model": "cancer",
                 "model_version": "1", "timestamp": ts, "prediction": int(p >= 0.5),
                 "probabilities": p, "features": {k: float(v) for k, v in x.items()}}
        producer.send("driftline.predictions", key=event["event_id"].encode(),
                      value=orjson.dumps(event))
        labels.append({"schema_version": 1, "event_id": f"p-{i}", "model": "cancer",
                       "timestamp": ts + 60_000, "label": int(row["malignant"])})
        if len(labels) > WINDOW // 2:  # the truth arrives half a window later
            label = labels.pop(0)
            producer.send("driftline.labels", key=label["event_id"].encode(),
                          value=orjson.dumps(label))
    for label in labels:
        producer.send("driftline.labels", key=label["event_id"].encode(),
                      value=orjson.dumps(label))
    producer.flush()
    producer.close()
    say("the app is done logging")


def narrate(line: dict[str, Any]) -> None:
    if "summary" in line:
        s = line["summary"]
        say(f"summary: {s['predictions']} predictions in {s['windows']} windows, "
            f"dead letters {s['dlq'] or 'none'}")
        return
    drifted = [name for name, f in line.get("features", {}).items() if f.get("drift")]
    perf = line.get("performance") or {}
    accuracy = f"accuracy {perf['accuracy']:.3f} on {perf['n_labels']} labels" \
        if perf.get("accuracy") is not None else "no labels yet"
    kind = "revised" if line["revision"] else "scored"
    state = f"DRIFT in {', '.join(drifted[:4])}" if line.get("drift_detected") else "no drift"
    say(f"window {line['window_start'][11:19]}..{line['window_end'][11:19]} {kind}: "
        f"health {line['health_score']:.0f}/100, {state}, {accuracy}, "
        f"alerts {line.get('alerts') or 'none'}")


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    for stale in ("driftline.db", "driftline.db-wal", "driftline.db-shm", "windows.jsonl"):
        (WORK / stale).unlink(missing_ok=True)  # a new broker each run: a new store too
    daemon: subprocess.Popen[bytes] | None = None
    try:
        say("starting a local Apache Kafka broker (KRaft, from Maven Central jars)")
        bootstrap = start_kafka()
        say(f"Kafka is up at {bootstrap}")
        model, reference, live = train()
        say(f"trained a logistic regression on breast cancer data; reference: "
            f"{len(reference)} rows, {reference.shape[1] - 3} features")
        port = free_port()
        config = write_config(bootstrap, reference, port)
        output = WORK / "windows.jsonl"
        output.unlink(missing_ok=True)
        say(f"starting the daemon: driftline run --config {config.relative_to(ROOT)}")
        daemon = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "driftline"), "--log-level", "warning", "run",
             "--config", str(config), "--output", str(output), "--max-idle", "5",
             "--cache-dir", str(WORK / "cache")])
        say(f"the daemon serves http://127.0.0.1:{port}/metrics and "
            f"http://127.0.0.1:{port}/api/models/cancer/windows")
        simulate(bootstrap, model, live)
        seen = 0
        while True:
            lines = output.read_bytes().splitlines() if output.exists() else []
            for raw in lines[seen:]:
                narrate(orjson.loads(raw))
            seen = len(lines)
            if daemon.poll() is not None:
                break
            time.sleep(0.3)
        say(f"done; every window line is in {output.relative_to(ROOT)}")
        return daemon.returncode or 0
    except KeyboardInterrupt:
        say("interrupted: stopping what the demo started")
        return 130
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        stop_kafka()


if __name__ == "__main__":
    sys.exit(main())
