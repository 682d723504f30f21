"""The shared pipeline: joins in any order, windows, revisions, counters, batching.

Driven through ``driftline replay`` inputs where the file form matters, and through
``Pipeline.process`` directly where only the order of messages does.
"""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor import shard as shard_module
from monitor.cli import main
from monitor.config import Config, config_from_dict
from monitor.pipeline import ALL_PARTITIONS, Message, Pipeline
from monitor.replay import load_profiles
from monitor.synthetic import Shift, events, reference_frame
from tests.services.window_lines import assert_same, final_lines

CONTRACT_KEYS = {
    "model", "model_version", "window_start", "window_end", "n_predictions", "features",
    "drift_share", "drift_detected", "prediction_drift", "performance", "health_score",
    "alerts", "revision", "as_of",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipeline")
    reference_frame(3000, n_numeric=4, seed=11).to_csv(path / "ref.csv", index=False)
    return path


def make_config(workdir: Path, window: dict[str, Any], **join: Any) -> Config:
    return config_from_dict({
        "join": join or {"max_pending": 1000, "max_age": "1d", "max_predictions": 100_000},
        "models": [{"name": "m", "task": "classification",
                    "reference": {"path": "ref.csv", "target": "target",
                                  "prediction": "prediction", "probability": "probability"},
                    "window": window}],
    }, base_dir=workdir, environ={})


class Run:
    """A pipeline with its outputs collected."""

    def __init__(self, config: Config, workdir: Path) -> None:
        self.lines: list[dict[str, Any]] = []
        self.dead: list[tuple[Message, str]] = []
        self.pipeline = Pipeline(config, load_profiles(config, workdir / "cache"),
                                 on_window=self.lines.append,
                                 on_dead_letter=lambda m, r, d: self.dead.append((m, r)))

    def feed(self, pairs: list[tuple[str, Any]], chunk: int = 500) -> Run:
        messages = [Message(s, v if isinstance(v, bytes) else orjson.dumps(v), s, 0, i)
                    for i, (s, v) in enumerate(pairs)]
        for start in range(0, len(messages), chunk):
            self.pipeline.process(messages[start:start + chunk])
        self.pipeline.flush()
        return self

    @property
    def first_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["revision"] == 0]


def ev(stream: str, i: int, ts: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    return stream, {"schema_version": 1, "event_id": f"e{i}", "model": "m", "timestamp": ts,
                    **fields}


FEATS = {"f0": 0.1, "f1": -0.2, "f2": 0.3, "f3": 1.0}


class TestWindows:
    def test_count_windows_hold_size_predictions_from_first_to_last_timestamp(self, workdir):
        run = Run(make_config(workdir, {"size": 100, "grace": "0s"}), workdir)
        run.feed(list(events(250, n_numeric=4, seed=1, step_ms=1000, label_every=10**9)))
        sizes = [line["n_predictions"] for line in run.first_lines]
        assert sizes == [100, 100, 50]
        first = run.first_lines[0]
        assert set(first) >= CONTRACT_KEYS
        assert first["window_start"] == "2026-01-01T00:00:00Z"
        assert first["window_end"] == "2026-01-01T00:01:39Z"  # the 100th prediction
        assert run.pipeline.summary()["windows"] == 3

    def test_duration_windows_are_aligned_to_the_epoch(self, workdir):
        run = Run(make_config(workdir, {"duration": "1m", "grace": "5s"}), workdir)
        start = 1_767_225_630_000  # 00:00:30
        run.feed(list(events(120, n_numeric=4, seed=1, start_ms=start, step_ms=1000,
                             label_every=10**9)))
        bounds = [(line["window_start"], line["window_end"]) for line in run.first_lines]
        assert bounds == [("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"),
                          ("2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"),
                          ("2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z")]
        assert [line["n_predictions"] for line in run.first_lines] == [30, 60, 30]

    def test_a_prediction_for_a_closed_duration_window_is_counted_late(self, workdir):
        run = Run(make_config(workdir, {"duration": "1m", "grace": "0s"}), workdir)
        run.feed([ev("predictions", 1, 0, prediction=1, features=FEATS),
                  ev("predictions", 2, 120_000, prediction=1, features=FEATS),
                  ev("predictions", 3, 1000, prediction=0, features=FEATS)])
        assert run.pipeline.summary()["late_predictions"] == 1
        assert [line["n_predictions"] for line in run.first_lines] == [1, 1]

    def test_every_line_says_as_of_which_event_time(self, workdir):
        run = Run(make_config(workdir, {"size": 2, "grace": "0s"}), workdir)
        run.feed([ev("predictions", 1, 0, prediction=1, features=FEATS),
                  ev("predictions", 2, 1000, prediction=1, features=FEATS),
                  ev("predictions", 3, 5000, prediction=1, features=FEATS)])
        assert run.first_lines[0]["as_of"] == "1970-01-01T00:00:05Z"


class TestJoin:
    def test_features_before_or_after_their_prediction_join_it(self, workdir):
        run = Run(make_config(workdir, {"size": 10, "grace": "1m"}), workdir)
        run.feed([ev("features", 1, 0, features=FEATS),
                  ev("predictions", 1, 0, prediction=1),
                  ev("predictions", 2, 10, prediction=0),
                  ev("features", 2, 10, features=FEATS)])
        summary = run.pipeline.summary()
        assert summary["unmatched"] == {"features": 0, "labels": 0}
        assert summary["late_features"] == 0

    def test_features_after_their_window_closed_are_late_and_left_out(self, workdir):
        run = Run(make_config(workdir, {"size": 1, "grace": "0s"}), workdir)
        run.feed([ev("predictions", 1, 0, prediction=1),
                  ev("predictions", 2, 5000, prediction=1, features=FEATS),
                  ev("features", 1, 5000, features=FEATS)])
        assert run.pipeline.summary()["late_features"] == 1

    def test_features_and_labels_whose_prediction_never_comes_are_unmatched(self, workdir):
        run = Run(make_config(workdir, {"size": 10, "grace": "0s"}), workdir)
        run.feed([ev("features", 9, 0, features=FEATS), ev("labels", 8, 0, label=1),
                  ev("labels", 7, 0, label=0)])
        assert run.pipeline.summary()["unmatched"] == {"features": 1, "labels": 2}

    def test_the_join_is_bounded_by_count_and_evictions_are_unmatched(self, workdir):
        config = make_config(workdir, {"size": 10, "grace": "0s"},
                             max_pending=3, max_age="1d", max_predictions=100)
        run = Run(config, workdir)
        run.feed([ev("labels", i, 0, label=1) for i in range(10)]
                 + [ev("predictions", 9, 0, prediction=1, features=FEATS)])
        # 7 evicted by count, 2 still waiting at the end; e9 joined its prediction
        assert run.pipeline.summary()["unmatched"]["labels"] == 9
        assert run.first_lines[0]["performance"]["n_labels"] == 1

    def test_the_join_is_bounded_by_age(self, workdir):
        config = make_config(workdir, {"size": 100, "grace": "0s"},
                             max_pending=1000, max_age="1m", max_predictions=100)
        run = Run(config, workdir)
        run.feed([ev("labels", 1, 0, label=1),
                  ev("predictions", 2, 0, prediction=1, features=FEATS),
                  ev("predictions", 3, 120_000, prediction=1, features=FEATS),
                  ev("predictions", 1, 120_001, prediction=1, features=FEATS)])
        assert run.pipeline.summary()["unmatched"]["labels"] == 1

    def test_a_second_prediction_with_the_same_event_id_is_dead_lettered(self, workdir):
        run = Run(make_config(workdir, {"size": 10, "grace": "0s"}), workdir)
        run.feed([ev("predictions", 1, 0, prediction=1, features=FEATS),
                  ev("predictions", 1, 5, prediction=0, features=FEATS)])
        assert [reason for _, reason in run.dead] == ["duplicate_event_id"]
        assert run.pipeline.summary()["predictions"] == 1
        assert run.first_lines[0]["n_predictions"] == 1

    def test_a_second_label_does_not_count_twice(self, workdir):
        run = Run(make_config(workdir, {"size": 10, "grace": "0s"}), workdir)
        run.feed([ev("predictions", 1, 0, prediction=1, features=FEATS),
                  ev("labels", 1, 0, label=1), ev("labels", 1, 0, label=0)])
        assert run.first_lines[0]["performance"]["n_labels"] == 1
        assert run.pipeline.summary()["duplicates"]["labels"] == 1


class TestLabels:
    def test_labels_after_a_window_closed_revise_it(self, workdir):
        run = Run(make_config(workdir, {"size": 50, "grace": "0s"}), workdir)
        pairs = [p for p in events(100, n_numeric=4, seed=2) if p[0] == "predictions"]
        labels = [("labels", {"schema_version": 1, "event_id": f"m-{i}", "model": "m",
                              "timestamp": 10**13, "label": 1}) for i in range(50)]
        run.feed(pairs[:60] + labels + pairs[60:])
        window0 = [line for line in run.lines if line["window_start"] ==
                   run.first_lines[0]["window_start"]]
        assert [line["revision"] for line in window0] == [0, 1]
        assert window0[0]["performance"] is None
        assert window0[1]["performance"]["n_labels"] == 50


class TestBatching:
    def test_the_result_does_not_depend_on_how_messages_are_batched(self, workdir):
        config = make_config(workdir, {"size": 200, "grace": "2s"})
        pairs = list(events(1000, n_numeric=4, seed=3, features_inline=False,
                            label_every=2, label_delay=150,
                            shift=Shift(start=500, features=[0], sd=1.0)))
        random.Random(0).shuffle(pairs[100:300])  # out-of-order arrivals
        whole = Run(config, workdir).feed(pairs, chunk=10_000).lines
        for chunk in (1, 7, 333):
            assert Run(config, workdir).feed(pairs, chunk=chunk).lines == whole


class TestReplayCommand:
    def test_replay_reads_gzip_and_raw_strings_and_ends_with_a_summary(self, workdir):
        config = workdir / "driftline.yaml"
        config.write_text("models:\n  - name: m\n    task: classification\n"
                          "    reference: {path: ref.csv, target: target}\n"
                          "    window: {size: 100}\n")
        lines = [{"stream": s, "value": e} for s, e in events(150, n_numeric=4, seed=4)]
        lines.append({"stream": "labels", "value": '{"not json'})
        inputs = workdir / "in.jsonl.gz"
        with gzip.open(inputs, "wb") as handle:
            for line in lines:
                handle.write(orjson.dumps(line) + b"\n")
        output = workdir / "out.jsonl"
        code = main(["replay", "--config", str(config), "--output", str(output),
                     "--cache-dir", str(workdir / "cache"), str(inputs)])
        assert code == 0
        results = [orjson.loads(x) for x in output.read_bytes().splitlines()]
        summary = results[-1]["summary"]
        assert summary["predictions"] == 150
        assert summary["dlq"] == {"not_json": 1}
        assert summary["windows"] == 2
        assert all(set(r) >= CONTRACT_KEYS for r in results[:-1])

    def test_a_bad_replay_line_names_the_file_and_line(self, workdir, capsys):
        config = workdir / "driftline.yaml"
        bad = workdir / "bad.jsonl"
        bad.write_text('{"stream": "predictions", "value": {}}\n{"stream": "nope", "value": 1}\n')
        code = main(["replay", "--config", str(config), "--output", str(workdir / "o.jsonl"),
                     "--cache-dir", str(workdir / "cache"), str(bad)])
        assert code == 2
        assert f"{bad}:2" in capsys.readouterr().err


def as_stored(value: Any) -> Any:
    """A value as the store gives it back (JSON)."""
    return orjson.loads(orjson.dumps(value))


class TestCheckpoint:
    @pytest.mark.parametrize("cut", [1, 333, 1250, 2999])
    def test_a_pipeline_restored_from_a_checkpoint_ends_as_if_never_stopped(self, workdir, cut):
        config = make_config(workdir, {"size": 200, "grace": "2s"})
        pairs = list(events(1000, n_numeric=4, seed=5, features_inline=False,
                            label_every=2, label_delay=150))
        whole = Run(config, workdir).feed(pairs).lines

        first = Run(config, workdir)
        messages = [Message(s, orjson.dumps(v), s, 0, i) for i, (s, v) in enumerate(pairs)]
        first.pipeline.process(messages[:cut])
        saved = {shard: as_stored(state) for shard, state in first.pipeline.checkpoint().items()}
        segments = {shard: {k: as_stored(v) for k, v in changed.items()}
                    for shard, changed in first.pipeline.segments().items()}
        closed = {shard: {k: as_stored(w.to_dict()) for k, w in changed.items()}
                  for shard, changed in first.pipeline.partials().items()}
        second = Run(config, workdir)
        second.pipeline.restore(saved, segments, closed)
        second.pipeline.process(messages[cut:])
        second.pipeline.flush()

        def comparable(lines: list[dict[str, Any]]) -> list[str]:
            return [orjson.dumps(line, option=orjson.OPT_SORT_KEYS).decode() for line in lines]

        assert comparable(first.lines + second.lines) == comparable(whole)
        assert second.pipeline.summary() == Run(config, workdir).feed(pairs).pipeline.summary()


class TestIdleStreams:
    def test_a_quiet_model_closes_its_windows_once_its_idle_timeout_passes(self, workdir):
        config = make_config(workdir, {"duration": "1m", "grace": "10s", "idle_timeout": "2m"})
        run = Run(config, workdir)
        wall = 1_767_225_600_000
        pairs = [ev("predictions", i, wall + i * 1000, prediction=1, features=FEATS)
                 for i in range(30)]
        run.pipeline.process([Message(s, orjson.dumps(v), s, 0, i)
                              for i, (s, v) in enumerate(pairs)], wall_ms=wall + 30_000)
        run.pipeline.close_idle(wall + 60_000)  # quiet for 30 s only: nothing closes
        assert run.lines == []
        run.pipeline.close_idle(wall + 30_000 + 120_000)
        assert [line["n_predictions"] for line in run.lines] == [30]

    def test_replay_never_closes_on_idleness(self, workdir):
        config = make_config(workdir, {"duration": "1m", "grace": "10s", "idle_timeout": "1s"})
        run = Run(config, workdir)
        run.pipeline.process([Message("predictions", orjson.dumps(
            ev("predictions", 1, 0, prediction=1, features=FEATS)[1]), "predictions", 0, 0)])
        run.pipeline.close_idle(10**13)
        assert run.lines == []


class TestIncrementalCheckpoints:
    @pytest.mark.parametrize("segment_size", [4096, 64])
    def test_segments_saved_at_several_commits_restore_the_same_join(self, workdir, monkeypatch,
                                                                    segment_size):
        monkeypatch.setattr(shard_module, "SEGMENT_SIZE", segment_size)
        config = make_config(workdir, {"size": 100, "grace": "2s"},
                             max_pending=1000, max_age="1d", max_predictions=250)
        pairs = list(events(1200, n_numeric=4, seed=6, features_inline=False,
                            label_every=2, label_delay=180))
        whole = Run(config, workdir).feed(pairs).lines
        messages = [Message(s, orjson.dumps(v), s, 0, i) for i, (s, v) in enumerate(pairs)]
        live = Run(config, workdir)
        saved_segments: dict[int, list[Any]] = {}
        saved_windows: dict[int, Any] = {}
        core: dict[tuple[str, int], Any] = {}
        shard = ("m", ALL_PARTITIONS)  # a count window: one shard
        for start in range(0, 2000, 400):  # five commits, like the daemon's
            live.pipeline.process(messages[start:start + 400])
            core = {key: as_stored(state) for key, state in live.pipeline.checkpoint().items()}
            for key, entries in live.pipeline.segments()[shard].items():
                if entries:
                    saved_segments[key] = as_stored(entries)  # an upsert
                else:
                    del saved_segments[key]  # emptied: the store deletes it
            for key, window in live.pipeline.partials()[shard].items():
                saved_windows[key] = as_stored(window.to_dict())
        restored = Run(config, workdir)
        restored.pipeline.restore(core, {shard: saved_segments}, {shard: saved_windows})
        restored.pipeline.process(messages[2000:])
        restored.pipeline.flush()

        def comparable(lines: list[dict[str, Any]]) -> list[str]:
            return [orjson.dumps(line, option=orjson.OPT_SORT_KEYS).decode() for line in lines]

        assert comparable(live.lines + restored.lines) == comparable(whole)
        assert len(live.pipeline.segments()[shard]) == 0  # nothing changed since the last save
        assert len(live.pipeline.partials()[shard]) == 0
        if segment_size == 64:  # the join holds 250: old segments emptied and were dropped
            assert 250 / 64 <= len(saved_segments) <= 250 / 64 + 2

    def test_a_commit_rewrites_what_traffic_changed_not_the_whole_window(self, workdir,
                                                                         monkeypatch):
        monkeypatch.setattr(shard_module, "SEGMENT_SIZE", 64)
        config = make_config(workdir, {"duration": "1d", "grace": "1s"})
        t0 = 1_767_225_600_000
        run = Run(config, workdir)

        def predict(ids: range) -> None:
            run.pipeline.process([Message(s, orjson.dumps(v), s, 0, i) for i, (s, v) in (
                (i, ev("predictions", i, t0 + i * 1000, prediction=1, features=FEATS))
                for i in ids)])

        predict(range(1000))
        assert sum(map(len, run.pipeline.segments()[("m", 0)].values())) == 1000
        predict(range(1000, 1050))  # the same open window, 50 predictions more
        changed = run.pipeline.segments()[("m", 0)]
        assert sorted(changed) == [15, 16]  # arrivals 1001..1050 (seq from 1), blocks of 64
        assert sum(map(len, changed.values())) == 1050 - 15 * 64 + 1  # seq 960..1050

    def test_a_checkpoint_saved_with_window_segments_restores(self, workdir):
        """Segments were once keyed by window (-1: no window) and entries had no key."""
        config = make_config(workdir, {"size": 100, "grace": "2s"})
        pairs = list(events(600, n_numeric=4, seed=7, features_inline=False,
                            label_every=2, label_delay=180))
        whole = Run(config, workdir).feed(pairs).lines
        messages = [Message(s, orjson.dumps(v), s, 0, i) for i, (s, v) in enumerate(pairs)]
        first = Run(config, workdir)
        first.pipeline.process(messages[:700])
        shard = ("m", ALL_PARTITIONS)
        older: dict[int, list[Any]] = {}
        for entries in first.pipeline.segments()[shard].values():
            for *entry, window_key in as_stored(entries):
                older.setdefault(-1 if window_key is None else window_key, []).append(entry)
        assert len(older) > 1  # several windows' segments
        second = Run(config, workdir)
        closed = {k: as_stored(w.to_dict()) for k, w in first.pipeline.partials()[shard].items()}
        second.pipeline.restore(
            {k: as_stored(v) for k, v in first.pipeline.checkpoint().items()}, {shard: older},
            {shard: closed})
        rewritten = second.pipeline.segments()[shard]
        assert set(older) <= set(rewritten)  # every old one is rewritten (or emptied)
        assert sum(map(len, rewritten.values())) == sum(map(len, older.values()))
        second.pipeline.process(messages[700:])
        second.pipeline.flush()
        assert [orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in first.lines + second.lines] \
            == [orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in whole]


class TestShards:
    """Duration windows are kept per partition and merged when every partition passed."""

    @staticmethod
    def messages(pairs: list[tuple[str, Any]], partitions: int) -> list[Message]:
        """Messages spread over partitions by event id, as keyed Kafka records are."""
        return [Message(s, orjson.dumps(v), s, zlib.crc32(v["event_id"].encode()) % partitions, i)
                for i, (s, v) in enumerate(pairs)]

    def test_the_order_across_partitions_does_not_change_the_windows(self, workdir):
        config = make_config(workdir, {"duration": "1m", "grace": "5s"})
        pairs = list(events(3000, n_numeric=4, seed=8, label_every=2, label_delay=900,
                            shift=Shift(start=1500, features=[1], sd=1.0)))
        messages = self.messages(pairs, 4)
        interleaved = Run(config, workdir)
        interleaved.pipeline.process(messages)
        interleaved.pipeline.flush()
        by_partition = Run(config, workdir)  # each partition's messages in turn
        for partition in range(4):
            by_partition.pipeline.process([m for m in messages if m.partition == partition])
        by_partition.pipeline.flush()
        assert len(interleaved.first_lines) == 5  # 300 s of events, one window a minute
        assert_all_same(by_partition.lines, interleaved.lines)
        assert sum(line["n_predictions"] for line in interleaved.first_lines) == 3000
        drifted = [line["drift_detected"] for line in interleaved.first_lines]
        assert drifted[:2] == [False, False]
        assert drifted[3:] == [True, True]
        assert any(line["revision"] > 0 for line in interleaved.lines)  # late labels
        one = Run(config, workdir)  # one partition: the same windows, revised as often
        one.pipeline.process(self.messages(pairs, 1))
        one.pipeline.flush()
        assert [(line["window_start"], line["revision"]) for line in interleaved.lines] == \
            [(line["window_start"], line["revision"]) for line in one.lines]

    @staticmethod
    def two_partitions(run: Run) -> list[int]:
        """Partition 0 runs past the first minute while partition 1 is inside it; then
        partition 1 passes it too. Returns n_predictions of the lines after each step."""
        t0 = 1_767_225_600_000
        ahead = [ev("predictions", i, t0 + i * 1000, prediction=1, features=FEATS)
                 for i in range(70)]
        run.pipeline.process([Message(s, orjson.dumps(v), s, 0, i)
                              for i, (s, v) in enumerate(ahead)])
        run.pipeline.process([Message(s, orjson.dumps(v), s, 1, 0) for s, v in [
            ev("predictions", 100, t0 + 30_000, prediction=0, features=FEATS)]])
        seen = [line["n_predictions"] for line in run.lines]
        run.pipeline.process([Message(s, orjson.dumps(v), s, 1, 1) for s, v in [
            ev("predictions", 101, t0 + 61_000, prediction=0, features=FEATS)]])
        return [*seen, -1, *(line["n_predictions"] for line in run.lines[len(seen):])]

    def test_a_window_waits_for_every_partition_to_pass_its_end(self, workdir):
        run = Run(make_config(workdir, {"duration": "1m", "grace": "0s"}), workdir)
        run.pipeline.open_shards([0, 1], wall_ms=0)  # the partitions known up front
        assert self.two_partitions(run) == [-1, 61]  # nothing until both passed: 60 + 1

    def test_a_partition_that_comes_late_to_a_final_window_revises_it(self, workdir):
        run = Run(make_config(workdir, {"duration": "1m", "grace": "0s"}), workdir)
        assert self.two_partitions(run) == [60, -1, 61]  # partition 1 was not known yet
        assert [line["revision"] for line in run.lines] == [0, 1]

    def test_a_restored_sharded_pipeline_ends_as_if_never_stopped(self, workdir):
        config = make_config(workdir, {"duration": "1m", "grace": "5s"})
        pairs = list(events(2000, n_numeric=4, seed=9, label_every=2, label_delay=700))
        messages = self.messages(pairs, 3)
        whole = Run(config, workdir)
        whole.pipeline.process(messages)
        whole.pipeline.flush()
        first = Run(config, workdir)
        first.pipeline.process(messages[:1234])
        saved = {key: as_stored(state) for key, state in first.pipeline.checkpoint().items()}
        segments = {key: {k: as_stored(v) for k, v in changed.items()}
                    for key, changed in first.pipeline.segments().items()}
        closed = {key: {k: as_stored(w.to_dict()) for k, w in changed.items()}
                  for key, changed in first.pipeline.partials().items()}
        second = Run(config, workdir)
        second.pipeline.restore(saved, segments, closed)
        second.pipeline.process(messages[1234:])
        second.pipeline.flush()
        assert sorted(saved) == [("m", 0), ("m", 1), ("m", 2)]
        assert_all_same(first.lines + second.lines, whole.lines)



def assert_all_same(lines: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The newest revisions of the same windows, alike but for float sums' last bits (late
    labels reach a window in other blocks when the partitions interleave otherwise)."""
    got, want = final_lines(lines), final_lines(expected)
    assert sorted(got) == sorted(want)
    for key in want:
        assert_same(got[key], want[key], f"window {key}")
