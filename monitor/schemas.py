"""The contract's JSON Schemas (``schemas/*.schema.json``), loaded and compiled once.

The event schemas are compiled with jsonschema-rs (draft 2020-12, in Rust) for the hot
path: about five times faster than generated Python validators on 20-feature events.

>>> validator = compiled_validator("labels")
>>> event = {"schema_version": 1, "event_id": "e1", "model": "wine",
...          "timestamp": "2026-01-01T00:00:00Z", "label": 1}
>>> validator.is_valid(event)
True
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

__all__ = ["STREAMS", "compiled_validator", "load_schema", "schema_dir", "schema_path"]

STREAMS = ("predictions", "features", "labels")


@cache
def schema_dir() -> Path:
    """The folder of the schema files: ``schemas/`` in a checkout, ``_schemas`` in a wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "_schemas", here.parents[1] / "schemas"):
        if (candidate / "predictions.schema.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"driftline's JSON Schemas are missing: looked in {here.parent / '_schemas'} "
        f"and {here.parents[1] / 'schemas'}; reinstall driftline"
    )


def schema_path(name: str) -> Path:
    """The file of schema ``name`` (``"predictions"`` or ``"predictions.schema.json"``)."""
    filename = name if name.endswith(".schema.json") else f"{name}.schema.json"
    path = schema_dir() / filename
    if not path.is_file():
        known = sorted(p.name.removesuffix(".schema.json") for p in schema_dir().glob("*.json"))
        raise KeyError(f"no schema named {name!r}; known schemas: {', '.join(known)}")
    return path


@cache
def _parsed(name: str) -> dict[str, Any]:
    with schema_path(name).open(encoding="utf-8") as file:
        schema: dict[str, Any] = json.load(file)
    return schema


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of schema ``name`` as a dict (callers may modify it)."""
    return copy.deepcopy(_parsed(name))


@cache
def compiled_validator(name: str) -> Any:
    """The compiled draft 2020-12 validator of schema ``name`` (``is_valid``,
    ``iter_errors``, ``validate``), built on first use. ``format`` is not asserted, as
    draft 2020-12 specifies."""
    return jsonschema_rs.validator_for(load_schema(name))
