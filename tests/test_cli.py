"""The ``driftline`` command line: help, exit codes (0 ok, 1 failure, 2 bad usage or config)
and progress bars (stderr, terminals only)."""

from __future__ import annotations

import gzip
import io
import socket
from pathlib import Path

import orjson
import pytest

import monitor.status
from monitor.cli import main
from monitor.progress import progress_bar, wanted
from monitor.replay import read_replay_lines
from monitor.synthetic import events, reference_frame
from retrain.cli import main as retrain_main

COMMANDS = ["run", "replay", "retrain", "status", "report"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A reference, a valid config and a replay input of 1,200 events."""
    reference_frame(1000, n_numeric=3, seed=1).to_csv(tmp_path / "ref.csv", index=False)
    (tmp_path / "driftline.yaml").write_text(
        "models:\n  - name: m\n    task: classification\n"
        "    reference: {path: ref.csv, target: target, prediction: prediction}\n"
        "    window: {size: 400, grace: 0s}\n"
        f"    retrain: {{tracking_uri: 'http://127.0.0.1:{free_port()}'}}\n")
    (tmp_path / "in.jsonl").write_bytes(b"".join(
        orjson.dumps({"stream": s, "value": e}) + b"\n"
        for s, e in events(1200, n_numeric=3, seed=2, model="m")))
    return tmp_path


def run(*argv: str) -> int:
    return main(list(argv))


class TestHelp:
    def test_the_top_level_help_lists_every_command_and_the_exit_codes(self, capsys):
        with pytest.raises(SystemExit) as exited:
            run("--help")

        assert exited.value.code == 0
        text = capsys.readouterr().out
        for command in COMMANDS:
            assert f"    {command} " in text
        assert "exit codes:" in text
        assert "2  bad usage or configuration" in text

    @pytest.mark.parametrize("command", COMMANDS)
    def test_each_command_has_a_description_and_option_help(self, command, capsys):
        with pytest.raises(SystemExit) as exited:
            run(command, "--help")

        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: driftline {command}")
        assert "--config" in text
        assert len(text.split("\n\n")[1]) > 40  # a description paragraph after the usage


class TestExitCodes:
    def test_0_when_a_replay_succeeds(self, workdir):
        assert run("replay", "--config", str(workdir / "driftline.yaml"), "--output",
                   str(workdir / "out.jsonl"), str(workdir / "in.jsonl")) == 0
        assert b'"summary"' in (workdir / "out.jsonl").read_bytes().splitlines()[-1]

    @pytest.mark.parametrize("argv", [[], ["nope"], ["report", "--window", "1"],
                                      ["status", "--json", "--bogus"]])
    def test_2_for_bad_arguments(self, argv, capsys):
        with pytest.raises(SystemExit) as exited:
            run(*argv)

        assert exited.value.code == 2
        assert "usage: driftline" in capsys.readouterr().err

    def test_2_for_a_missing_config_file(self, tmp_path, capsys):
        assert run("status", "--config", str(tmp_path / "absent.yaml")) == 2
        err = capsys.readouterr().err
        assert err.startswith("driftline: error: ")
        assert "absent.yaml" in err

    def test_2_for_an_invalid_config(self, workdir, capsys):
        (workdir / "bad.yaml").write_text("models: []\nbogus_key: 1\n")

        assert run("status", "--config", str(workdir / "bad.yaml")) == 2
        assert "bogus_key" in capsys.readouterr().err

    def test_2_for_a_replay_input_that_is_not_there(self, workdir, capsys):
        assert run("replay", "--config", str(workdir / "driftline.yaml"), "--output",
                   str(workdir / "out.jsonl"), str(workdir / "absent.jsonl")) == 2
        assert "absent.jsonl" in capsys.readouterr().err

    def test_2_for_a_truncated_gzip_input_naming_it(self, workdir, capsys):
        packed = gzip.compress((workdir / "in.jsonl").read_bytes())
        (workdir / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])

        assert run("replay", "--config", str(workdir / "driftline.yaml"), "--output",
                   str(workdir / "out.jsonl"), str(workdir / "cut.jsonl.gz")) == 2
        assert "cut.jsonl.gz" in capsys.readouterr().err

    def test_2_for_an_output_that_cannot_be_written(self, workdir, capsys):
        assert run("replay", "--config", str(workdir / "driftline.yaml"), "--output",
                   str(workdir / "no" / "such" / "out.jsonl"), str(workdir / "in.jsonl")) == 2
        assert "--output" in capsys.readouterr().err

    def test_1_when_the_store_cannot_be_reached(self, workdir, capsys):
        (workdir / "pg.yaml").write_text(
            (workdir / "driftline.yaml").read_text()
            + f"store: {{url: 'postgresql+psycopg://u@127.0.0.1:{free_port()}/d'}}\n")

        assert run("status", "--config", str(workdir / "pg.yaml")) == 1
        err = capsys.readouterr().err
        assert err.startswith("driftline: error: ")
        assert "Traceback" not in err

    def test_1_and_one_line_for_an_unexpected_error(self, workdir, monkeypatch, capsys):
        def broken(*_args: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(monitor.status, "status", broken)

        assert run("status", "--config", str(workdir / "driftline.yaml")) == 1
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == (
            "driftline: error: unexpected RuntimeError: a bug (run with --log-level debug "
            "for the traceback)")
        assert "Traceback" not in err

    def test_the_traceback_of_an_unexpected_error_only_at_debug(self, workdir, monkeypatch,
                                                                 capsys):
        def broken(*_args: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(monitor.status, "status", broken)

        assert run("--log-level", "debug", "status", "--config",
                   str(workdir / "driftline.yaml")) == 1
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err
        assert "RuntimeError: a bug" in err

    def test_retrain_is_2_for_an_unknown_model(self, workdir, capsys):
        assert run("retrain", "--config", str(workdir / "driftline.yaml"),
                   "--model", "nope") == 2
        assert "no model named 'nope'" in capsys.readouterr().err

    def test_retrain_is_1_when_the_job_fails(self, workdir, monkeypatch, capsys):
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

        assert retrain_main(["--config", str(workdir / "driftline.yaml"), "--model", "m"]) == 1
        outcome = orjson.loads(capsys.readouterr().out)
        assert outcome["status"] == "failed"
        assert outcome["reason"].startswith("loading the champion")


class TestProgress:
    def test_bars_only_on_a_terminal_and_never_when_turned_off(self):
        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        assert wanted(False, {}, Terminal()) is True
        assert wanted(False, {}, io.StringIO()) is False  # a pipe or a log file
        assert wanted(True, {}, Terminal()) is False  # --no-progress
        assert wanted(False, {"DRIFTLINE_PROGRESS": "0"}, Terminal()) is False
        assert wanted(False, {"DRIFTLINE_PROGRESS": "1"}, Terminal()) is True

    def test_a_replay_reports_every_byte_of_its_inputs(self, workdir):
        packed = workdir / "in.jsonl.gz"
        packed.write_bytes(gzip.compress((workdir / "in.jsonl").read_bytes()))
        for path in (workdir / "in.jsonl", packed):
            told: list[int] = []

            messages = list(read_replay_lines(path, told.append))

            assert len(messages) == 2400  # predictions and labels
            assert sum(told) == path.stat().st_size

    def test_no_bar_is_drawn_when_off(self, capsys):
        with progress_bar(False, total=10, desc="replay") as bar:
            bar.update(10)

        assert capsys.readouterr().err == ""

    def test_the_replay_command_keeps_stderr_free_of_bars_off_a_terminal(self, workdir, capsys):
        assert run("replay", "--config", str(workdir / "driftline.yaml"), "--output",
                   str(workdir / "out.jsonl"), str(workdir / "in.jsonl")) == 0

        assert "\r" not in capsys.readouterr().err
