"""The driftline configuration: one YAML file, validated once, turned into frozen dataclasses.

The YAML shape is fixed by ``schemas/config.schema.json`` (contract section 2). The typed
form lives in ``monitor.settings`` and is re-exported here; ``monitor.config_yaml`` reads
the file with line numbers and explains schema errors, ``monitor.config_build`` makes the
dataclasses. Nothing else reads the environment: secrets are resolved here from the
variables the file names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from monitor.config_build import Context, build, check_values
from monitor.config_yaml import KeyPath, parse_yaml, schema_problems
from monitor.errors import ConfigError
from monitor.settings import (
    AlertDelivery,
    AlertPolicy,
    AlertRule,
    AlertSettings,
    Config,
    DriftMethod,
    DriftSettings,
    FeatureKind,
    FeatureSpec,
    HttpSettings,
    JoinSettings,
    KafkaSettings,
    ModelConfig,
    ReferenceSource,
    RetrainSettings,
    Severity,
    StoreSettings,
    Task,
    Topics,
    WebhookRoute,
    WindowSpec,
)

__all__ = [
    "AlertDelivery",
    "AlertPolicy",
    "AlertRule",
    "AlertSettings",
    "Config",
    "DriftMethod",
    "DriftSettings",
    "FeatureKind",
    "FeatureSpec",
    "HttpSettings",
    "JoinSettings",
    "KafkaSettings",
    "ModelConfig",
    "ReferenceSource",
    "RetrainSettings",
    "Severity",
    "StoreSettings",
    "Task",
    "Topics",
    "WebhookRoute",
    "WindowSpec",
    "config_from_dict",
    "load_config",
]


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Load, validate and resolve the YAML config at ``path``.

    Raises ``monitor.errors.ConfigError`` naming the key (and line) that is wrong.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"config file {file} not found; pass --config PATH") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {file} cannot be read: {err}") from err
    data, lines = parse_yaml(text, source=str(file))
    if data is None:
        raise ConfigError(f"{file}: the config is empty; it needs at least a `models` list")
    config = config_from_dict(data, file.resolve().parent, environ, lines=lines, source=str(file))
    return replace(config, path=file.resolve())


def config_from_dict(
    data: object,
    base_dir: str | Path,
    environ: Mapping[str, str] | None = None,
    *,
    lines: Mapping[KeyPath, int] | None = None,
    source: str = "config",
) -> Config:
    """Validate parsed config ``data`` and build the ``Config``.

    Relative paths resolve against ``base_dir``; secrets come from ``environ`` (default
    ``os.environ``); ``lines`` maps key paths to YAML lines for the error messages.
    """
    ctx = Context(
        Path(base_dir).absolute(),
        os.environ if environ is None else environ,
        lines or {},
        source,
    )
    check_values(data, (), ctx)
    problems = sorted(
        {(ctx.line(path) or 0, ctx.where(path), text) for path, text in schema_problems(data)}
    )
    if len(problems) == 1:
        raise ConfigError(f"{source}: {problems[0][1]}: {problems[0][2]}")
    if problems:
        listed = "\n".join(f"  {where}: {text}" for _, where, text in problems)
        raise ConfigError(f"{source}: {len(problems)} problems:\n{listed}")
    assert isinstance(data, dict)  # the schema requires an object
    return build(data, ctx)
