"""``driftline status`` reads the store written by the daemon."""

from __future__ import annotations

from pathlib import Path

import orjson

from monitor.cli import main
from monitor.config import StoreSettings
from monitor.replay import replay
from monitor.store import WindowLine, open_store
from monitor.synthetic import Shift, events, reference_frame
from tests.test_pipeline import make_config


def test_status_shows_each_models_newest_health_and_drift(tmp_path: Path, capsys) -> None:
    reference_frame(2000, n_numeric=4, seed=1).to_csv(tmp_path / "ref.csv", index=False)
    config = make_config(tmp_path, {"size": 500, "grace": "0s"})
    inputs = tmp_path / "in.jsonl"
    inputs.write_bytes(b"".join(
        orjson.dumps({"stream": s, "value": e}) + b"\n"
        for s, e in events(3000, n_numeric=4, seed=2,
                           shift=Shift(start=1500, features=[0, 1], sd=1.0))))
    output = tmp_path / "out.jsonl"
    with output.open("wb") as handle:
        replay(config, [inputs], handle, tmp_path / "cache")
    lines = [orjson.loads(x) for x in output.read_bytes().splitlines()][:-1]
    with open_store(config.store) as store:
        store.register_model("m", "classification")
        store.commit_batch("g", windows=[WindowLine(x["window_key"], x) for x in lines])
    (tmp_path / "driftline.yaml").write_text(
        "models:\n  - name: m\n    task: classification\n"
        "    reference: {path: ref.csv, target: target}\n    window: {size: 500}\n")

    assert main(["status", "--config", str(tmp_path / "driftline.yaml")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("m ")
    assert "6 windows" in text
    assert "DRIFT" in text

    assert main(["status", "--config", str(tmp_path / "driftline.yaml"), "--json"]) == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert rows[0]["last"]["drift_detected"] is True
    assert rows[0]["recent_health"][0] > rows[0]["recent_health"][-1]


def test_the_store_url_of_a_config_is_relative_to_its_folder(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"size": 500})
    assert config.store == StoreSettings(url=f"sqlite:///{tmp_path / 'driftline.db'}")
