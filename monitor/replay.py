"""``driftline replay``: recorded events through the live pipeline, without Kafka.

Each input line is ``{"stream": "predictions"|"features"|"labels", "value": ...}``; a
string ``value`` stands for the raw message bytes (so malformed messages replay exactly as
they would arrive), an object is encoded as JSON. Inputs may be gzip-compressed. The output
holds a line per window (and revision) in the order the pipeline wrote them, then a
summary line (contract section 3).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import orjson

from monitor.config import Config
from monitor.engine.profile import ReferenceProfile, cached_profile
from monitor.errors import InputError
from monitor.pipeline import Message, Pipeline
from monitor.progress import progress_bar
from monitor.rebaseline import profile_from_uri
from monitor.schemas import STREAMS

__all__ = ["read_replay_lines", "replay"]

CHUNK = 2048  # messages handed to the pipeline at a time
PROGRESS_LINES = 4096  # lines between two reports of the bytes read


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(lines, file): the lines to read, and the file underneath (compressed bytes)."""
    try:
        raw = path.open("rb")
    except OSError as err:
        raise InputError(f"cannot read replay input {path}: {err.strerror}") from err
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    return (cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb")) if gzipped else raw), raw


def read_replay_lines(path: Path, on_bytes: Callable[[int], object] | None = None
                      ) -> Iterator[Message]:
    """The messages of one replay file, in file order; a bad line names file and line.

    ``on_bytes(n)`` is told, now and then and at the end, that ``n`` more bytes of the
    file (as stored, compressed or not) were read.
    """
    handle, stored = _open(path)
    reported = 0
    with stored, handle:
        for number, raw in _numbered_lines(path, handle):
            if on_bytes is not None and number % PROGRESS_LINES == 0:
                position = stored.tell()
                on_bytes(position - reported)
                reported = position
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
        if on_bytes is not None:
            on_bytes(stored.tell() - reported)


def _numbered_lines(path: Path, handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    try:
        yield from enumerate(handle, start=1)
    except (OSError, EOFError, zlib.error) as err:  # a truncated or corrupt .gz, say
        raise InputError(f"cannot read replay input {path}: {err}") from err


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
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the inputs through the pipeline, write the results; returns the summary.
    With ``progress``, a bar on stderr counts the bytes of the inputs read."""
    profiles = load_profiles(config, cache_dir)

    def write(line: dict[str, Any]) -> None:
        output.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))

    pipeline = Pipeline(config, profiles, on_window=write, on_dead_letter=lambda *_: None)
    total = sum(p.stat().st_size for p in inputs if p.is_file())
    with progress_bar(progress, total=total, unit="B", unit_scale=True, desc="replay") as bar:
        for path in inputs:
            chunk: list[Message] = []
            for message in read_replay_lines(path, bar.update):
                chunk.append(message)
                if len(chunk) >= CHUNK:
                    pipeline.process(chunk)
                    chunk = []
            pipeline.process(chunk)
    pipeline.flush()
    summary = pipeline.summary()
    write({"summary": summary})
    return summary
