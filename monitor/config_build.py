"""From validated config data to the dataclasses: checks the schema cannot make
(secrets only from the environment, cross-field rules), paths, durations, secrets."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.config_yaml import KeyPath, dotted, show
from monitor.errors import ConfigError
from monitor.settings import (
    AlertDelivery,
    AlertPolicy,
    AlertRule,
    AlertSettings,
    Config,
    DriftSettings,
    FeatureSpec,
    HttpSettings,
    JoinSettings,
    KafkaSettings,
    ModelConfig,
    ReferenceSource,
    RetrainSettings,
    StoreSettings,
    Topics,
    WebhookRoute,
    WindowSpec,
)
from monitor.timeparse import parse_duration

__all__ = ["Context", "build", "check_values"]

# --- checks the schema cannot make, and building the dataclasses -------------------------

_SECRET_KEY = re.compile(r"(?:^|_)(?:password|passwd|secret|token|api_key)$")
_SECRET_ENV_KEY = {"sasl_plain_password": "sasl_password_env"}
_SSL_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile")
_ENV_SECRETS = {"sasl_password_env": "sasl_plain_password", "ssl_password_env": "ssl_password"}


@dataclass(frozen=True)
class Context:
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
        return f"line {line}: {dotted(path)}" if line else dotted(path)

    def error(self, path: KeyPath, text: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where(path)}: {text}")

    def duration(self, raw: dict[str, Any], key: str, path: KeyPath, default: float) -> float:
        if key not in raw:
            return default
        try:
            return parse_duration(raw[key], key=dotted((*path, key)))
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


def check_values(data: object, path: KeyPath, ctx: Context) -> None:
    """Reject secrets written into the file and non-finite numbers, anywhere."""
    if isinstance(data, float) and not math.isfinite(data):
        raise ctx.error(path, f"{data} is not allowed; give a finite number")
    if isinstance(data, list):
        for index, item in enumerate(data):
            check_values(item, (*path, index), ctx)
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
        check_values(value, (*path, key), ctx)


def _is_feature_map(path: KeyPath) -> bool:
    # its keys are column names of the user's data, not settings
    return len(path) == 3 and path[0] == "models" and path[2] == "features"


def build(data: dict[str, Any], ctx: Context) -> Config:
    models = tuple(_model(raw, ("models", i), ctx) for i, raw in enumerate(data["models"]))
    first: dict[str, int] = {}
    for index, model in enumerate(models):
        if model.name in first:
            raise ctx.error(
                ("models", index, "name"),
                f"duplicate model name {show(model.name)}; "
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


def _kafka(raw: dict[str, Any], ctx: Context) -> KafkaSettings:
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


def _security(raw: dict[str, Any], path: KeyPath, ctx: Context) -> dict[str, object]:
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


def _store(raw: dict[str, Any], ctx: Context) -> StoreSettings:
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


def _http(raw: dict[str, Any], ctx: Context) -> HttpSettings:
    token = None
    if "token_env" in raw:
        token = ctx.secret(raw["token_env"], ("http", "token_env"))
    return HttpSettings(**_pick(raw, "enabled", "host", "port"), token=token)


def _join(raw: dict[str, Any], ctx: Context) -> JoinSettings:
    return JoinSettings(
        **_pick(raw, "max_pending", "max_predictions"),
        max_age_s=ctx.duration(raw, "max_age", ("join",), JoinSettings.max_age_s),
    )


def _model(raw: dict[str, Any], path: KeyPath, ctx: Context) -> ModelConfig:
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


def _window(raw: dict[str, Any], path: KeyPath, ctx: Context) -> WindowSpec:
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


def _features(raw: dict[str, Any], path: KeyPath, ctx: Context) -> tuple[FeatureSpec, ...]:
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


def _alert_settings(raw: dict[str, Any], models: set[str], ctx: Context) -> AlertSettings:
    path: KeyPath = ("alerts",)
    routes = []
    first: dict[str, int] = {}
    for index, item in enumerate(raw.get("routes", [])):
        route = _route(item, (*path, "routes", index), models, ctx)
        if route.name in first:
            raise ctx.error(
                (*path, "routes", index, "name"),
                f"duplicate route name {show(route.name)}; "
                f"routes[{first[route.name]}] already uses it (names must be unique)",
            )
        first[route.name] = index
        routes.append(route)
    return AlertSettings(
        routes=tuple(routes),
        delivery=_delivery(raw.get("delivery", {}), (*path, "delivery"), ctx),
    )


def _route(raw: dict[str, Any], path: KeyPath, models: set[str], ctx: Context) -> WebhookRoute:
    for index, name in enumerate(raw.get("models", [])):
        if name not in models:
            raise ctx.error(
                (*path, "models", index),
                f"no model named {show(name)}; configured models: {', '.join(sorted(models))}",
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


def _delivery(raw: dict[str, Any], path: KeyPath, ctx: Context) -> AlertDelivery:
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


def _alert_policy(raw: dict[str, Any], path: KeyPath, ctx: Context) -> AlertPolicy:
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


def _retrain(raw: dict[str, Any], task: str, path: KeyPath, ctx: Context) -> RetrainSettings:
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


def _check_cron(expression: str, path: KeyPath, ctx: Context) -> None:
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415 - only when a schedule is set

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as err:
        raise ctx.error(
            path,
            f"{show(expression)} is not a cron expression ({err}); give five fields "
            "(minute hour day month weekday), like `0 3 * * *`",
        ) from None
