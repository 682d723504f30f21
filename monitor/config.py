"""The driftline configuration: one YAML file, validated once, turned into frozen dataclasses.

The YAML shape is fixed by ``schemas/config.schema.json`` (contract section 2); this module
holds the typed form every other module receives. Nothing else reads the environment:
secrets are resolved here from the variables the file names.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, ValidationError

from monitor.errors import ConfigError
from monitor.schemas import load_schema
from monitor.timeparse import parse_duration

__all__ = [
    "AlertDelivery",
    "AlertPolicy",
    "AlertRule",
    "AlertSettings",
    "Config",
    "DriftSettings",
    "FeatureSpec",
    "HttpSettings",
    "JoinSettings",
    "KafkaSettings",
    "ModelConfig",
    "ReferenceSource",
    "RetrainSettings",
    "StoreSettings",
    "Topics",
    "WebhookRoute",
    "WindowSpec",
    "config_from_dict",
    "load_config",
]

FeatureKind = Literal["numeric", "categorical"]
DriftMethod = Literal["auto", "psi", "ks", "chisquare", "jensenshannon", "wasserstein"]
Task = Literal["classification", "regression"]
KeyPath = tuple[str | int, ...]  # ("models", 0, "window", "size") is models[0].window.size


@dataclass(frozen=True)
class Topics:
    predictions: str = "driftline.predictions"
    features: str = "driftline.features"
    labels: str = "driftline.labels"

    def stream_of(self, topic: str) -> str | None:
        """The stream name ("predictions", ...) a topic carries, or None."""
        for stream in ("predictions", "features", "labels"):
            if getattr(self, stream) == topic:
                return stream
        return None


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "driftline"
    topics: Topics = field(default_factory=Topics)
    client_id: str = "driftline"
    max_message_bytes: int = 1_048_576
    poll_max_records: int = 2000
    poll_timeout_ms: int = 500
    shutdown_timeout_s: float = 10.0
    # Extra kafka-python client settings passed through unchanged (security_protocol,
    # sasl_mechanism, sasl_plain_username, ssl_cafile, ...). The SASL password is resolved
    # from the environment variable named by `sasl_password_env` into `sasl_plain_password`.
    security: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreSettings:
    url: str = "sqlite:///driftline.db"
    password: str | None = None  # resolved from `password_env`
    retention_s: float = 30 * 86400.0  # state and raw rows older than this are pruned


@dataclass(frozen=True)
class HttpSettings:
    """The daemon's HTTP server (probes, ``/metrics``, the read-only API)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)  # from `token_env`; needed off loopback


@dataclass(frozen=True)
class JoinSettings:
    """Bounds of the (model, event_id) join buffer, per model."""

    max_pending: int = 100_000  # unjoined features/labels waiting for their prediction
    max_age_s: float = 7 * 86400.0  # event-time age after which they are given up
    max_predictions: int = 1_000_000  # predictions remembered for late labels and duplicates


@dataclass(frozen=True)
class WindowSpec:
    size: int | None = None  # predictions per window
    duration_s: float | None = None  # event-time duration, aligned to the epoch
    grace_s: float = 30.0
    idle_timeout_s: float = 300.0  # live only: a quiet model's clock follows the wall clock


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: FeatureKind
    method: DriftMethod = "auto"
    threshold: float | None = None  # overrides the method's default threshold
    critical: bool = False  # its drift alone makes the window drift


@dataclass(frozen=True)
class DriftSettings:
    bins: int = 10  # quantile bins per numeric feature, plus underflow and overflow
    sample_size: int = 1000  # reservoir of raw values per feature per window
    fdr: float = 0.05  # Benjamini-Hochberg false discovery rate across features
    drift_share: float = 0.1  # window drifts when this share of features drift
    method: DriftMethod = "auto"
    # distance thresholds (drift when score >= threshold) and p-value level for tests
    thresholds: dict[str, float] = field(default_factory=dict)
    # effect-size floors: a significant test still needs this much distance to count
    min_effect: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    # performance alert: accuracy drop (absolute) or MAE increase (relative to the
    # reference) that the window's figure exceeds with ~98% confidence (Wilson/2 s.e.)
    performance_drop: float = 0.05
    min_labels: int = 30  # labels a window needs before its performance can alert
    # data-quality alert: missing, type-error, out-of-range or unseen rate above the
    # reference's by this much (read at the rate's lower 2 s.e. bound)
    quality_margin: float = 0.05


@dataclass(frozen=True)
class ReferenceSource:
    path: Path | None = None  # CSV or Parquet, absolute (resolved against the config folder)
    uri: str | None = None  # an MLflow model URI whose run holds the reference
    target: str | None = None
    prediction: str | None = None
    probability: str | None = None


Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class AlertRule:
    """When one kind of alert fires and resolves (per model)."""

    enabled: bool = True
    severity: Severity = "warning"
    pending: int = 1  # consecutive bad windows before it fires
    keep_firing: int = 3  # consecutive good windows before it resolves: no flapping
    cooldown_s: float = 1800.0  # after resolving, no new episode of this kind for this long
    below: float | None = None  # health rule only: fires when health_score < below


@dataclass(frozen=True)
class AlertPolicy:
    drift: AlertRule = field(default_factory=AlertRule)
    performance: AlertRule = field(default_factory=lambda: AlertRule(severity="critical"))
    data_quality: AlertRule = field(default_factory=AlertRule)
    health: AlertRule = field(
        default_factory=lambda: AlertRule(enabled=False, severity="critical", below=50.0)
    )


@dataclass(frozen=True)
class WebhookRoute:
    """A receiver of alert webhooks (top-level ``alerts.routes``)."""

    name: str
    url: str
    format: Literal["json", "slack"] = "json"
    secret: str | None = None  # resolved from `secret_env`; signs X-Driftline-Signature
    models: tuple[str, ...] = ()  # empty: every model
    min_severity: Severity = "info"
    kinds: tuple[str, ...] = ()  # empty: every kind


@dataclass(frozen=True)
class AlertDelivery:
    timeout_s: float = 5.0
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    give_up_after_s: float = 86400.0


@dataclass(frozen=True)
class AlertSettings:
    routes: tuple[WebhookRoute, ...] = ()
    delivery: AlertDelivery = field(default_factory=AlertDelivery)


@dataclass(frozen=True)
class RetrainSettings:
    """The retrain-and-register job of one model (MLflow)."""

    enabled: bool = False
    on: tuple[str, ...] = ("drift", "performance")  # alert kinds that start a retrain
    tracking_uri: str | None = None  # MLflow tracking server; None: MLflow's default
    registered_model: str | None = None  # None: the model's name
    training_entry_point: str | None = None  # "package.module:function"; None: refit
    horizon_s: float = 7 * 86400.0  # recent labelled events used for training/evaluation
    holdout_fraction: float = 0.3  # of recent labelled events, kept to compare the two
    metric: str = "accuracy"  # accuracy, f1_macro, roc_auc (higher better); mae, rmse (lower)
    margin: float = 0.0  # the challenger must beat the champion by more than this
    cooldown_s: float = 6 * 3600.0
    max_per_day: int = 3
    schedule: str | None = None  # optional cron expression (APScheduler CronTrigger)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: Task
    reference: ReferenceSource
    window: WindowSpec
    features: tuple[FeatureSpec, ...] | None = None  # None: inferred from the reference
    drift: DriftSettings = field(default_factory=DriftSettings)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...]
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    join: JoinSettings = field(default_factory=JoinSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    path: Path | None = None  # the file it was loaded from

    def model(self, name: str) -> ModelConfig | None:
        for model in self.models:
            if model.name == name:
                return model
        return None


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
    data, lines = _parse_yaml(text, source=str(file))
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
    ctx = _Context(
        Path(base_dir).absolute(),
        os.environ if environ is None else environ,
        lines or {},
        source,
    )
    _check_values(data, (), ctx)
    problems = sorted(
        {(ctx.line(path) or 0, ctx.where(path), text) for path, text in _schema_problems(data)}
    )
    if len(problems) == 1:
        raise ConfigError(f"{source}: {problems[0][1]}: {problems[0][2]}")
    if problems:
        listed = "\n".join(f"  {where}: {text}" for _, where, text in problems)
        raise ConfigError(f"{source}: {len(problems)} problems:\n{listed}")
    assert isinstance(data, dict)  # the schema requires an object
    return _build(data, ctx)


# --- YAML with line numbers ------------------------------------------------------------


def _parse_yaml(text: str, *, source: str) -> tuple[object, dict[KeyPath, int]]:
    """The YAML document as plain data, and the line of every key path in it."""
    loader = yaml.SafeLoader(text)
    lines: dict[KeyPath, int] = {(): 1}
    try:
        node = loader.get_single_node()
        return (None if node is None else _from_node(loader, node, (), lines, source)), lines
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{source}: {where}not valid YAML: {err.problem}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from err
    finally:
        loader.dispose()


def _from_node(
    loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], source: str
) -> object:
    if isinstance(node, yaml.MappingNode):
        own_keys = {id(key_node) for key_node, _ in node.value}
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys; own keys override
        mapping: dict[str, object] = {}
        own_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"{source}: line {line}: {_dotted(path)}: keys must be plain text"
                )
            key = str(key_node.value)  # the text as written: `yes:` or `1:` stay strings
            if id(key_node) in own_keys:
                if key in own_lines:
                    raise ConfigError(
                        f"{source}: line {line}: {_dotted((*path, key))}: duplicate key "
                        f"(first given on line {own_lines[key]})"
                    )
                own_lines[key] = line
            lines[(*path, key)] = line
            mapping[key] = _from_node(loader, value_node, (*path, key), lines, source)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_from_node(loader, item, (*path, index), lines, source))
        return items
    return loader.construct_object(node, deep=True)


# --- messages -------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# JSON Schema's type names in the words of YAML
_TYPE_WORDS = {"object": "mapping", "array": "list", "boolean": "boolean (true or false)"}
_TYPES_OF_VALUES = {
    dict: "mapping",
    list: "list",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _dotted(path: KeyPath) -> str:
    """``("models", 0, "window", "size")`` -> ``models[0].window.size``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_of(value: object) -> str:
    return _TYPES_OF_VALUES.get(type(value), type(value).__name__)


def _schema_problems(data: object) -> Iterator[tuple[KeyPath, str]]:
    for error in _config_validator().iter_errors(data):
        yield from _describe(error, hint=None)


@cache
def _config_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("config"))


def _describe(error: ValidationError, hint: str | None) -> Iterator[tuple[KeyPath, str]]:
    """Plain-language problems of one schema error: (key path, what is wrong and allowed)."""
    path: KeyPath = tuple(error.absolute_path)
    value, schema, rule, limit = (
        error.instance,
        error.schema,
        error.validator,
        error.validator_value,
    )
    if not isinstance(schema, dict):
        yield path, error.message
        return
    hint = schema.get("description", hint)
    if rule == "additionalProperties" and isinstance(value, dict):
        allowed = ", ".join(schema.get("properties", {}))
        for key in value:
            if key not in schema.get("properties", {}):
                yield (*path, key), f"unknown key {_show(key)}; allowed keys: {allowed}"
    elif rule == "required" and isinstance(value, dict):
        for key in limit:
            if key not in value:
                yield path, f"missing required key {_show(key)}"
    elif rule in ("enum", "const"):
        allowed = ", ".join(str(v) for v in (limit if rule == "enum" else [limit]))
        yield path, f"{_show(value)} is not allowed; allowed values: {allowed}"
    elif rule == "type":
        wanted = " or ".join(
            _TYPE_WORDS.get(t, t) for t in ([limit] if isinstance(limit, str) else limit)
        )
        yield path, f"expected {wanted}, got {_type_of(value)} {_show(value)}"
    elif rule in _BOUNDS:
        yield path, f"must be {_BOUNDS[rule]} {limit}, got {_show(value)}"
    elif rule == "minLength":
        yield path, "must not be an empty string"
    elif rule in ("minItems", "minProperties"):
        yield path, "must not be empty; give at least one entry"
    elif rule in ("anyOf", "oneOf"):
        yield from _describe_alternatives(error, path, hint)
    elif rule == "pattern" and hint:
        yield path, f"{_show(value)} is not valid: expected {_lower_first(hint)}"
    else:
        yield path, error.message


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


def _describe_alternatives(
    error: ValidationError, path: KeyPath, hint: str | None
) -> Iterator[tuple[KeyPath, str]]:
    # Describe only the alternatives meant for this kind of value (the object form of a
    # feature for a mapping, the string form of a duration for text); if none is, say
    # what the alternatives are.
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errors
        for errors in branches.values()
        if not any(
            tuple(e.absolute_path) == path and e.validator in ("type", "enum", "const")
            for e in errors
        )
    ]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _describe(sub, hint)
    else:
        yield path, f"{_show(error.instance)} is not valid: expected {_lower_first(hint or '?')}"


def _lower_first(text: str) -> str:
    # "A duration: ..." reads as "expected a duration: ..."; acronyms like "SQLAlchemy" stay
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


# --- checks the schema cannot make, and building the dataclasses -------------------------

_SECRET_KEY = re.compile(r"(?:^|_)(?:password|passwd|secret|token|api_key)$")
_SECRET_ENV_KEY = {"sasl_plain_password": "sasl_password_env"}
_SSL_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile")
_ENV_SECRETS = {"sasl_password_env": "sasl_plain_password", "ssl_password_env": "ssl_password"}


@dataclass(frozen=True)
class _Context:
    base_dir: Path
    environ: Mapping[str, str]
    lines: Mapping[KeyPath, int]
    source: str

    def line(self, path: KeyPath) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def where(self, path: KeyPath) -> str:
        line = self.line(path)
        return f"line {line}: {_dotted(path)}" if line else _dotted(path)

    def error(self, path: KeyPath, text: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where(path)}: {text}")

    def duration(self, raw: dict[str, Any], key: str, path: KeyPath, default: float) -> float:
        if key not in raw:
            return default
        try:
            return parse_duration(raw[key], key=_dotted((*path, key)))
        except ConfigError as err:
            raise self.error((*path, key), str(err).partition(": ")[2]) from None

    def secret(self, variable: str, path: KeyPath) -> str:
        value = self.environ.get(variable)
        if not value:
            raise self.error(
                path,
                f"environment variable {variable} is not set (or empty); export it "
                "with the secret, or remove this key",
            )
        return value

    def file(self, text: str) -> Path:
        return self.base_dir / Path(text).expanduser()


def _check_values(data: object, path: KeyPath, ctx: _Context) -> None:
    """Reject secrets written into the file and non-finite numbers, anywhere."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ctx.error(path, f"{data} is not allowed; give a finite number")
    if isinstance(data, list):
        for index, item in enumerate(data):
            _check_values(item, (*path, index), ctx)
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if isinstance(key, str) and _SECRET_KEY.search(key) and not _is_feature_map(path):
            env_key = _SECRET_ENV_KEY.get(key, f"{key}_env")
            raise ctx.error(
                (*path, key),
                "secrets never come from the config file: put the value in an "
                f"environment variable and name that variable with `{env_key}`",
            )
        _check_values(value, (*path, key), ctx)


def _is_feature_map(path: KeyPath) -> bool:
    # its keys are column names of the user's data, not settings
    return len(path) == 3 and path[0] == "models" and path[2] == "features"


def _build(data: dict[str, Any], ctx: _Context) -> Config:
    models = tuple(_model(raw, ("models", i), ctx) for i, raw in enumerate(data["models"]))
    first: dict[str, int] = {}
    for index, model in enumerate(models):
        if model.name in first:
            raise ctx.error(
                ("models", index, "name"),
                f"duplicate model name {_show(model.name)}; "
                f"models[{first[model.name]}] already uses it (names must be unique)",
            )
        first[model.name] = index
    return Config(
        models=models,
        kafka=_kafka(data.get("kafka", {}), ctx),
        store=_store(data.get("store", {}), ctx),
        join=_join(data.get("join", {}), ctx),
        alerts=_alert_settings(data.get("alerts", {}), {m.name for m in models}, ctx),
        http=_http(data.get("http", {}), ctx),
    )


def _pick(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: raw[key] for key in keys if key in raw}


def _kafka(raw: dict[str, Any], ctx: _Context) -> KafkaSettings:
    path: KeyPath = ("kafka",)
    topics = Topics(**raw.get("topics", {}))
    if len({topics.predictions, topics.features, topics.labels}) < 3:
        raise ctx.error(
            (*path, "topics"),
            f"predictions, features and labels need three different topics, got {topics}",
        )
    return KafkaSettings(
        **_pick(
            raw,
            "bootstrap_servers",
            "group_id",
            "client_id",
            "max_message_bytes",
            "poll_max_records",
            "poll_timeout_ms",
        ),
        topics=topics,
        shutdown_timeout_s=ctx.duration(raw, "shutdown_timeout", path, 10.0),
        security=_security(raw.get("security", {}), (*path, "security"), ctx),
    )


def _security(raw: dict[str, Any], path: KeyPath, ctx: _Context) -> dict[str, object]:
    protocol = raw.get("security_protocol", "PLAINTEXT")
    if protocol.startswith("SASL_"):
        missing = [
            k
            for k in ("sasl_mechanism", "sasl_plain_username", "sasl_password_env")
            if k not in raw
        ]
        if missing:
            raise ctx.error(path, f"security_protocol {protocol} also needs {', '.join(missing)}")
    elif "sasl_mechanism" in raw:
        raise ctx.error(
            (*path, "sasl_mechanism"),
            f"needs security_protocol SASL_PLAINTEXT or SASL_SSL, got {protocol}",
        )
    settings: dict[str, object] = {}
    for key, value in raw.items():
        if key in _ENV_SECRETS:
            settings[_ENV_SECRETS[key]] = ctx.secret(value, (*path, key))
        elif key in _SSL_FILES:
            settings[key] = str(ctx.file(value))
        else:
            settings[key] = value
    return settings


def _store(raw: dict[str, Any], ctx: _Context) -> StoreSettings:
    path: KeyPath = ("store",)
    url = raw.get("url", StoreSettings.url)
    if urlsplit(url).password is not None:
        raise ctx.error(
            (*path, "url"),
            "secrets never come from the config file: remove the "
            "password from the URL and name its environment variable with "
            "`password_env`",
        )
    if url.startswith("sqlite:///"):
        database, query_mark, query = url.removeprefix("sqlite:///").partition("?")
        if database and database != ":memory:" and not database.startswith("file:"):
            url = f"sqlite:///{ctx.file(database)}{query_mark}{query}"
    password = None
    if "password_env" in raw:
        password = ctx.secret(raw["password_env"], (*path, "password_env"))
    return StoreSettings(url=url, password=password, retention_s=ctx.duration(
        raw, "retention", path, StoreSettings.retention_s))


def _http(raw: dict[str, Any], ctx: _Context) -> HttpSettings:
    token = None
    if "token_env" in raw:
        token = ctx.secret(raw["token_env"], ("http", "token_env"))
    return HttpSettings(**_pick(raw, "enabled", "host", "port"), token=token)


def _join(raw: dict[str, Any], ctx: _Context) -> JoinSettings:
    return JoinSettings(
        **_pick(raw, "max_pending", "max_predictions"),
        max_age_s=ctx.duration(raw, "max_age", ("join",), JoinSettings.max_age_s),
    )


def _model(raw: dict[str, Any], path: KeyPath, ctx: _Context) -> ModelConfig:
    task = raw["task"]
    reference = raw["reference"]
    if ("path" in reference) == ("uri" in reference):
        given = "both are given" if "path" in reference else "neither is given"
        raise ctx.error((*path, "reference"), f"give exactly one of `path` or `uri`; {given}")
    if "probability" in reference and task != "classification":
        raise ctx.error(
            (*path, "reference", "probability"), "a probability column needs task: classification"
        )
    return ModelConfig(
        name=raw["name"],
        task=task,
        reference=ReferenceSource(
            path=ctx.file(reference["path"]) if "path" in reference else None,
            **_pick(reference, "uri", "target", "prediction", "probability"),
        ),
        window=_window(raw["window"], (*path, "window"), ctx),
        features=_features(raw["features"], (*path, "features"), ctx)
        if "features" in raw
        else None,
        drift=_drift(raw.get("drift", {})),
        alerts=_alert_policy(raw.get("alerts", {}), (*path, "alerts"), ctx),
        retrain=_retrain(raw.get("retrain", {}), task, (*path, "retrain"), ctx),
    )


def _window(raw: dict[str, Any], path: KeyPath, ctx: _Context) -> WindowSpec:
    if ("size" in raw) == ("duration" in raw):
        given = "both are given" if "size" in raw else "neither is given"
        raise ctx.error(
            path,
            f"give exactly one of `size` (predictions per window) or "
            f"`duration` (like 15m); {given}",
        )
    duration_s = ctx.duration(raw, "duration", path, 0.0) or None
    if "duration" in raw and duration_s is None:
        raise ctx.error((*path, "duration"), "a window needs a duration > 0, like 15m")
    return WindowSpec(
        size=raw.get("size"),
        duration_s=duration_s,
        grace_s=ctx.duration(raw, "grace", path, WindowSpec.grace_s),
        idle_timeout_s=ctx.duration(raw, "idle_timeout", path, WindowSpec.idle_timeout_s),
    )


def _features(raw: dict[str, Any], path: KeyPath, ctx: _Context) -> tuple[FeatureSpec, ...]:
    specs = []
    for name, value in raw.items():
        options = {"kind": value} if isinstance(value, str) else value
        spec = FeatureSpec(name=name, **options)
        if spec.kind == "categorical" and spec.method in ("ks", "wasserstein"):
            raise ctx.error(
                (*path, name, "method"),
                f"{spec.method} needs a numeric feature; "
                "for a categorical one use auto, psi, chisquare or jensenshannon",
            )
        specs.append(spec)
    return tuple(specs)


def _drift(raw: dict[str, Any]) -> DriftSettings:
    return DriftSettings(
        **_pick(raw, "bins", "sample_size", "fdr", "drift_share", "method", "seed",
                "performance_drop", "min_labels", "quality_margin"),
        thresholds={k: float(v) for k, v in raw.get("thresholds", {}).items()},
        min_effect={k: float(v) for k, v in raw.get("min_effect", {}).items()},
    )


# --- alerts and the retrain job -------------------------------------------------------

_RULE_DEFAULTS = {field.name: getattr(AlertPolicy(), field.name) for field in fields(AlertPolicy)}
_REGRESSION_METRICS = ("mae", "rmse")


def _alert_settings(raw: dict[str, Any], models: set[str], ctx: _Context) -> AlertSettings:
    path: KeyPath = ("alerts",)
    routes = []
    first: dict[str, int] = {}
    for index, item in enumerate(raw.get("routes", [])):
        route = _route(item, (*path, "routes", index), models, ctx)
        if route.name in first:
            raise ctx.error(
                (*path, "routes", index, "name"),
                f"duplicate route name {_show(route.name)}; "
                f"routes[{first[route.name]}] already uses it (names must be unique)",
            )
        first[route.name] = index
        routes.append(route)
    return AlertSettings(
        routes=tuple(routes),
        delivery=_delivery(raw.get("delivery", {}), (*path, "delivery"), ctx),
    )


def _route(raw: dict[str, Any], path: KeyPath, models: set[str], ctx: _Context) -> WebhookRoute:
    for index, name in enumerate(raw.get("models", [])):
        if name not in models:
            raise ctx.error(
                (*path, "models", index),
                f"no model named {_show(name)}; configured models: {', '.join(sorted(models))}",
            )
    secret = None
    if "secret_env" in raw:
        secret = ctx.secret(raw["secret_env"], (*path, "secret_env"))
    return WebhookRoute(
        **_pick(raw, "name", "url", "format", "min_severity"),
        secret=secret,
        models=tuple(dict.fromkeys(raw.get("models", []))),
        kinds=tuple(dict.fromkeys(raw.get("kinds", []))),
    )


def _delivery(raw: dict[str, Any], path: KeyPath, ctx: _Context) -> AlertDelivery:
    default = AlertDelivery()
    delivery = AlertDelivery(
        timeout_s=ctx.duration(raw, "timeout", path, default.timeout_s),
        initial_backoff_s=ctx.duration(raw, "initial_backoff", path, default.initial_backoff_s),
        max_backoff_s=ctx.duration(raw, "max_backoff", path, default.max_backoff_s),
        give_up_after_s=ctx.duration(raw, "give_up_after", path, default.give_up_after_s),
    )
    if delivery.timeout_s <= 0:
        raise ctx.error((*path, "timeout"), "a request needs a timeout > 0, like 5s")
    if delivery.max_backoff_s < delivery.initial_backoff_s:
        raise ctx.error(
            (*path, "max_backoff"),
            f"must be at least initial_backoff ({delivery.initial_backoff_s:g}s), "
            f"got {delivery.max_backoff_s:g}s",
        )
    return delivery


def _alert_policy(raw: dict[str, Any], path: KeyPath, ctx: _Context) -> AlertPolicy:
    rules: dict[str, AlertRule] = {}
    for kind, default in _RULE_DEFAULTS.items():
        given = raw.get(kind, {})
        rules[kind] = replace(
            default,
            **_pick(given, "enabled", "severity", "pending", "keep_firing"),
            cooldown_s=ctx.duration(given, "cooldown", (*path, kind), default.cooldown_s),
            **({"below": float(given["below"])} if "below" in given else {}),
        )
    return AlertPolicy(**rules)


def _retrain(raw: dict[str, Any], task: str, path: KeyPath, ctx: _Context) -> RetrainSettings:
    default = RetrainSettings()
    metric = raw.get("metric", "mae" if task == "regression" else default.metric)
    if (metric in _REGRESSION_METRICS) != (task == "regression"):
        allowed = "mae, rmse" if task == "regression" else "accuracy, f1_macro, roc_auc"
        raise ctx.error((*path, "metric"), f"{metric} does not fit task {task}; use {allowed}")
    if "schedule" in raw:
        _check_cron(raw["schedule"], (*path, "schedule"), ctx)
    return RetrainSettings(
        **_pick(
            raw,
            "enabled",
            "tracking_uri",
            "registered_model",
            "training_entry_point",
            "holdout_fraction",
            "max_per_day",
            "schedule",
        ),
        on=tuple(dict.fromkeys(raw.get("on", default.on))),
        horizon_s=ctx.duration(raw, "horizon", path, default.horizon_s),
        metric=metric,
        margin=float(raw.get("margin", default.margin)),
        cooldown_s=ctx.duration(raw, "cooldown", path, default.cooldown_s),
    )


def _check_cron(expression: str, path: KeyPath, ctx: _Context) -> None:
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 - only when a schedule is set

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as err:
        raise ctx.error(
            path,
            f"{_show(expression)} is not a cron expression ({err}); give five fields "
            "(minute hour day month weekday), like `0 3 * * *`",
        ) from None
