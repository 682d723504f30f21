"""``driftline replay``: recorded events through the live pipeline, without Kafka.

Each input line is ``{"stream": "predictions"|"features"|"labels", "value": ...}``; a
string ``value`` stands for the raw message bytes (so malformed messages replay exactly as
they would arrive), an object is encoded as JSON. Inputs may be gzip-compressed. The output
holds a line per window (and revision) in the order the pipeline wrote them, then a
summary line (contract section 3).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import orjson

from monitor.config import Config
from monitor.engine.profile import ReferenceProfile, cached_profile
from monitor.errors import InputError
from monitor.pipeline import Message, Pipeline
from monitor.rebaseline import profile_from_uri
from monitor.schemas import STREAMS

__all__ = ["read_replay_lines", "replay"]

CHUNK = 2048  # messages handed to the pipeline at a time


def _open(path: Path) -> BinaryIO:
    try:
        with path.open("rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        return cast(BinaryIO, gzip.open(path, "rb")) if gzipped else path.open("rb")
    except OSError as err:
        raise InputError(f"cannot read replay input {path}: {err.strerror}") from err


def read_replay_lines(path: Path) -> Iterator[Message]:
    """The messages of one replay file, in file order; a bad line names file and line."""
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                raise InputError(f"{where}: a replay line is a JSON object: {err}") from err
            if not isinstance(line, dict) or "value" not in line:
                raise InputError(f'{where}: expected {{"stream": ..., "value": ...}}')
            stream = line.get("stream")
            if stream not in STREAMS:
                raise InputError(
                    f"{where}: stream {stream!r} is not one of {', '.join(STREAMS)}"
                )
            value = line["value"]
            data = value.encode("utf-8") if isinstance(value, str) else orjson.dumps(value)
            yield Message(stream, data, topic=stream, partition=0, offset=number)


def load_profiles(config: Config, cache_dir: Path) -> dict[str, ReferenceProfile]:
    """Each model's reference profile: built from its reference file (cached), or the
    profile logged with the MLflow version its ``reference.uri`` names."""
    profiles = {}
    for model in config.models:
        if model.reference.uri is not None:
            profiles[model.name] = profile_from_uri(model.reference.uri,
                                                    model.retrain.tracking_uri)
        else:
            profiles[model.name] = cached_profile(model, cache_dir)
    return profiles


def replay(
    config: Config,
    inputs: Sequence[Path],
    output: IO[bytes],
    cache_dir: Path,
) -> dict[str, Any]:
    """Run the inputs through the pipeline, write the results; returns the summary."""
    profiles = load_profiles(config, cache_dir)

    def write(line: dict[str, Any]) -> None:
        output.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))

    pipeline = Pipeline(config, profiles, on_window=write, on_dead_letter=lambda *_: None)
    for path in inputs:
        chunk: list[Message] = []
        for message in read_replay_lines(path):
            chunk.append(message)
            if len(chunk) >= CHUNK:
                pipeline.process(chunk)
                chunk = []
        pipeline.process(chunk)
    pipeline.flush()
    summary = pipeline.summary()
    write({"summary": summary})
    return summary
