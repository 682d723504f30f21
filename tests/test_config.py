"""The YAML config file (monitor/config.py, schemas/config.schema.json)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from monitor.config import (
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
    RetrainSettings,
    Topics,
    WebhookRoute,
    config_from_dict,
    load_config,
)
from monitor.errors import ConfigError
from monitor.schemas import load_schema

REPO = Path(__file__).resolve().parents[1]

# The example of contract section 2, verbatim.
CONTRACT_EXAMPLE = """\
kafka:
  bootstrap_servers: "127.0.0.1:9092"
  group_id: driftline
  topics: {predictions: driftline.predictions, features: driftline.features, labels: driftline.labels}
store:
  url: "sqlite:///driftline.db"
models:
  - name: wine
    task: classification            # or regression
    reference:
      path: wine_reference.csv      # CSV or Parquet (or `uri: models:/wine@champion`)
      target: target                # ground-truth column
      prediction: prediction        # the model's output on the reference (optional)
      probability: probability      # positive-class probability column (optional, binary)
    features:                       # optional: inferred from the reference when omitted
      alcohol: numeric
      color: categorical
    window:
      size: 1000                    # predictions per window; or `duration: 15m`
      grace: 30s
"""  # noqa: E501 - verbatim from the contract

MINIMAL = """\
models:
  - name: wine
    task: classification
    reference: {path: ref.csv}
    window: {size: 100}
"""


def write(folder: Path, text: str, name: str = "driftline.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(folder: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(folder, text), environ=environ or {})


def model_with(**sections: str) -> str:
    """MINIMAL's model with YAML sections replaced or added, as YAML text."""
    body = {"reference": "{path: ref.csv}", "window": "{size: 100}", **sections}
    lines = "".join(f"    {key}: {value}\n" for key, value in body.items())
    return f"models:\n  - name: wine\n    task: classification\n{lines}"


def error_of(folder: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(folder, text, environ)
    return str(caught.value)


class TestContractExample:
    def test_the_contract_example_loads(self, tmp_path: Path) -> None:
        config = load(tmp_path, CONTRACT_EXAMPLE)
        (wine,) = config.models
        assert wine.name == "wine"
        assert wine.task == "classification"
        assert wine.reference.target == "target"
        assert wine.reference.prediction == "prediction"
        assert wine.reference.probability == "probability"
        assert wine.features == (
            FeatureSpec("alcohol", "numeric"),
            FeatureSpec("color", "categorical"),
        )
        assert wine.window.size == 1000
        assert wine.window.duration_s is None
        assert wine.window.grace_s == 30.0
        assert config.kafka.topics == Topics()

    def test_every_other_setting_takes_its_default(self, tmp_path: Path) -> None:
        config = load(tmp_path, CONTRACT_EXAMPLE)
        assert config.kafka == KafkaSettings()
        assert config.join == JoinSettings()
        assert config.models[0].drift == DriftSettings()
        assert config.store.password is None

    def test_only_models_are_required_so_replay_needs_no_kafka_or_store(
        self, tmp_path: Path
    ) -> None:
        config = load(tmp_path, MINIMAL)
        assert config.kafka == KafkaSettings()
        assert config.models[0].features is None  # inferred from the reference later

    def test_the_config_remembers_its_file(self, tmp_path: Path) -> None:
        path = write(tmp_path, MINIMAL)
        assert load_config(path, environ={}).path == path.resolve()

    def test_config_from_dict_builds_the_same_config_without_a_file(self, tmp_path: Path) -> None:
        data: dict[str, Any] = {
            "models": [
                {"name": "wine", "task": "regression", "reference": {"path": "ref.csv"},
                 "window": {"duration": "15m"}},
            ]
        }  # fmt: skip
        config = config_from_dict(data, tmp_path, environ={})
        assert config.models[0].window.duration_s == 900.0
        assert config.models[0].reference.path == tmp_path / "ref.csv"


class TestExampleFile:
    def test_the_example_config_loads_without_any_secrets_set(self) -> None:
        config = load_config(REPO / "driftline.example.yaml", environ={})
        assert {model.name for model in config.models} == {"wine", "house-prices"}

    def test_the_example_config_shows_every_key_of_the_schema(self) -> None:
        text = (REPO / "driftline.example.yaml").read_text(encoding="utf-8")
        written = set(re.findall(r"([a-z_]+):", text))
        assert set(_schema_keys(load_schema("config"))) - written == set()


def _schema_keys(schema: object) -> list[str]:
    """Every property name in a schema, however deeply nested."""
    if isinstance(schema, list):
        return [key for item in schema for key in _schema_keys(item)]
    if not isinstance(schema, dict):
        return []
    keys = list(schema.get("properties", {}))
    for key, value in schema.items():
        children = value.values() if key in ("properties", "$defs") else [value]
        if key not in ("default", "enum", "const"):
            keys.extend(k for child in children for k in _schema_keys(child))
    return keys


class TestUnknownKeys:
    def test_an_unknown_top_level_key_is_named_with_its_line_and_the_allowed_keys(
        self, tmp_path: Path
    ) -> None:
        message = error_of(tmp_path, MINIMAL + "alarms: {}\n")
        assert 'line 6: alarms: unknown key "alarms"' in message
        assert "allowed keys: kafka, store, join, models" in message

    def test_an_unknown_nested_key_is_named_by_its_full_path(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(window="{size: 100, sise: 5}"))
        assert 'line 5: models[0].window.sise: unknown key "sise"' in message
        assert "allowed keys: size, duration, grace" in message

    def test_an_unknown_key_in_a_feature_spec_is_named(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(features="{color: {kind: numeric, weight: 2}}"))
        assert 'models[0].features.color.weight: unknown key "weight"' in message
        assert "allowed keys: kind, method, threshold, critical" in message


class TestWrongValues:
    def test_a_wrong_enum_value_lists_the_allowed_values(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, MINIMAL.replace("classification", "clasification"))
        assert "line 3: models[0].task" in message
        assert '"clasification" is not allowed; allowed values: classification, regression' in (
            message
        )

    def test_a_misspelt_feature_kind_explains_both_forms(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(features="{alcohol: numric}"))
        assert "models[0].features.alcohol" in message
        assert "`numeric` or `categorical`" in message

    def test_a_wrong_type_names_the_expected_type(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(window="{size: many}"))
        assert 'models[0].window.size: expected integer, got string "many"' in message

    def test_a_number_out_of_range_names_the_bound(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(drift="{fdr: 2}"))
        assert "models[0].drift.fdr: must be <= 1, got 2" in message

    def test_a_missing_required_key_is_named(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, "models:\n  - name: wine\n    task: regression\n")
        assert "line 2: models[0]: missing required key" in message
        assert '"reference"' in message
        assert '"window"' in message

    def test_all_problems_are_reported_at_once_in_line_order(self, tmp_path: Path) -> None:
        text = model_with(window="{size: 0}", drift="{method: best}") + "extra: 1\n"
        message = error_of(tmp_path, text)
        assert "3 problems" in message
        lines = [int(n) for n in re.findall(r"^  line (\d+):", message, flags=re.MULTILINE)]
        assert lines == sorted(lines)

    def test_models_must_not_be_empty(self, tmp_path: Path) -> None:
        assert "models: must not be empty" in error_of(tmp_path, "models: []\n")

    def test_a_non_finite_number_is_rejected(self, tmp_path: Path) -> None:
        assert "give a finite number" in error_of(tmp_path, model_with(drift="{fdr: .nan}"))


class TestDurations:
    @pytest.mark.parametrize(
        ("written", "seconds"),
        [("500ms", 0.5), ("30s", 30.0), ("15m", 900.0), ("2h", 7200.0), ("7d", 604_800.0),
         ("1h30m", 5400.0), ("45", 45.0), ("2.5", 2.5)],
    )  # fmt: skip
    def test_a_duration_is_a_number_with_a_unit_or_plain_seconds(
        self, tmp_path: Path, written: str, seconds: float
    ) -> None:
        config = load(tmp_path, model_with(window=f"{{duration: {written}, grace: {written}}}"))
        assert config.models[0].window.duration_s == seconds
        assert config.models[0].window.grace_s == seconds

    def test_every_duration_key_is_parsed(self, tmp_path: Path) -> None:
        text = MINIMAL + "kafka: {shutdown_timeout: 2m}\njoin: {max_age: 1d}\n"
        config = load(tmp_path, text)
        assert config.kafka.shutdown_timeout_s == 120.0
        assert config.join.max_age_s == 86_400.0

    def test_a_bad_duration_names_the_key_the_line_and_examples(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(window="{duration: 15 minutes}"))
        assert 'line 5: models[0].window.duration: "15 minutes" is not valid' in message
        assert "`15m`" in message

    def test_a_window_duration_of_zero_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(window="{duration: 0s}"))
        assert "models[0].window.duration: a window needs a duration > 0" in message


class TestRelativePaths:
    def test_a_relative_reference_path_is_relative_to_the_config_folder(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "conf"
        folder.mkdir()
        config = load(folder, model_with(reference="{path: data/ref.csv}"))
        assert config.models[0].reference.path == folder / "data" / "ref.csv"

    def test_an_absolute_reference_path_is_kept(self, tmp_path: Path) -> None:
        config = load(tmp_path, model_with(reference="{path: /srv/ref.parquet}"))
        assert config.models[0].reference.path == Path("/srv/ref.parquet")

    def test_loading_the_config_does_not_read_the_reference(self, tmp_path: Path) -> None:
        config = load(tmp_path, model_with(reference="{path: missing.csv}"))
        assert not config.models[0].reference.path.exists()  # type: ignore[union-attr]

    def test_a_relative_sqlite_database_is_relative_to_the_config_folder(
        self, tmp_path: Path
    ) -> None:
        config = load(tmp_path, MINIMAL + 'store: {url: "sqlite:///state/d.db"}\n')
        assert config.store.url == f"sqlite:///{tmp_path}/state/d.db"
        assert load(tmp_path, MINIMAL).store.url == f"sqlite:///{tmp_path}/driftline.db"

    def test_tls_files_are_relative_to_the_config_folder(self, tmp_path: Path) -> None:
        text = MINIMAL + "kafka: {security: {security_protocol: SSL, ssl_cafile: ca.pem}}\n"
        assert load(tmp_path, text).kafka.security["ssl_cafile"] == str(tmp_path / "ca.pem")


SASL = """\
kafka:
  security:
    security_protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl_plain_username: driftline
    sasl_password_env: KAFKA_PASSWORD
"""


class TestSecrets:
    def test_the_sasl_password_comes_from_the_named_environment_variable(
        self, tmp_path: Path
    ) -> None:
        config = load(tmp_path, MINIMAL + SASL, environ={"KAFKA_PASSWORD": "s3cret"})
        assert config.kafka.security == {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "driftline",
            "sasl_plain_password": "s3cret",
        }

    def test_the_database_password_comes_from_the_named_environment_variable(
        self, tmp_path: Path
    ) -> None:
        text = MINIMAL + "store: {url: 'postgresql+psycopg://me@db/x', password_env: DBPW}\n"
        assert load(tmp_path, text, environ={"DBPW": "pw"}).store.password == "pw"

    def test_a_missing_environment_variable_names_the_variable_and_the_key(
        self, tmp_path: Path
    ) -> None:
        message = error_of(tmp_path, MINIMAL + SASL)
        assert "line 11: kafka.security.sasl_password_env" in message
        assert "environment variable KAFKA_PASSWORD is not set" in message

    def test_a_password_written_in_the_file_is_rejected_pointing_to_the_env_key(
        self, tmp_path: Path
    ) -> None:
        text = MINIMAL + SASL.replace("sasl_password_env: KAFKA_PASSWORD", "sasl_plain_password: x")
        message = error_of(tmp_path, text)
        assert "kafka.security.sasl_plain_password" in message
        assert "`sasl_password_env`" in message

    def test_a_store_password_in_the_file_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, MINIMAL + "store: {password: x}\n")
        assert "store.password: secrets never come from the config file" in message
        assert "`password_env`" in message

    def test_a_password_inside_the_database_url_is_rejected(self, tmp_path: Path) -> None:
        text = MINIMAL + "store: {url: 'postgresql+psycopg://me:pw@db/x'}\n"
        assert "remove the password from the URL" in error_of(tmp_path, text)

    def test_a_feature_column_may_be_called_password(self, tmp_path: Path) -> None:
        config = load(tmp_path, model_with(features="{password: categorical}"))
        assert config.models[0].features == (FeatureSpec("password", "categorical"),)

    def test_sasl_needs_a_mechanism_a_user_and_a_password(self, tmp_path: Path) -> None:
        text = MINIMAL + "kafka: {security: {security_protocol: SASL_SSL}}\n"
        message = error_of(tmp_path, text)
        assert "sasl_mechanism, sasl_plain_username, sasl_password_env" in message


class TestCrossChecks:
    def test_model_names_must_be_unique(self, tmp_path: Path) -> None:
        text = MINIMAL + MINIMAL.removeprefix("models:\n")
        message = error_of(tmp_path, text)
        assert 'line 6: models[1].name: duplicate model name "wine"' in message

    def test_a_window_with_both_size_and_duration_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(window="{size: 100, duration: 15m}"))
        assert "models[0].window: give exactly one of `size`" in message
        assert "both are given" in message

    def test_a_window_with_neither_size_nor_duration_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(window="{grace: 1s}"))
        assert "neither is given" in message

    @pytest.mark.parametrize(
        ("reference", "given"),
        [("{path: r.csv, uri: 'models:/wine/1'}", "both"), ("{target: y}", "neither")],
    )
    def test_a_reference_needs_exactly_one_of_path_or_uri(
        self, tmp_path: Path, reference: str, given: str
    ) -> None:
        message = error_of(tmp_path, model_with(reference=reference))
        assert "models[0].reference: give exactly one of `path` or `uri`" in message
        assert f"{given} is given" in message or f"{given} are given" in message

    def test_a_probability_column_needs_a_classifier(self, tmp_path: Path) -> None:
        text = model_with(reference="{path: r.csv, probability: p}").replace(
            "classification", "regression"
        )
        assert "needs task: classification" in error_of(tmp_path, text)

    def test_ks_needs_a_numeric_feature(self, tmp_path: Path) -> None:
        message = error_of(
            tmp_path, model_with(features="{color: {kind: categorical, method: ks}}")
        )
        assert "models[0].features.color.method: ks needs a numeric feature" in message

    def test_the_three_streams_need_different_topics(self, tmp_path: Path) -> None:
        text = MINIMAL + "kafka: {topics: {predictions: t, features: t}}\n"
        assert "three different topics" in error_of(tmp_path, text)


class TestYamlFile:
    def test_a_duplicate_yaml_key_is_an_error_not_silently_the_last(self, tmp_path: Path) -> None:
        message = error_of(
            tmp_path, MINIMAL.replace("task: classification", "task: a\n    task: b")
        )
        assert "models[0].task: duplicate key (first given on line 3)" in message

    def test_broken_yaml_names_the_line(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, "models:\n  - name: a\n   task: b\n")
        assert "line 3: not valid YAML" in message

    def test_an_empty_file_is_an_error(self, tmp_path: Path) -> None:
        assert "the config is empty" in error_of(tmp_path, "# nothing\n")

    def test_a_missing_file_is_an_error_naming_it(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"nope\.yaml not found"):
            load_config(tmp_path / "nope.yaml")

    def test_keys_are_taken_as_written_so_a_column_named_yes_stays_yes(
        self, tmp_path: Path
    ) -> None:
        config = load(tmp_path, model_with(features="{yes: categorical, 1: numeric}"))
        assert [spec.name for spec in config.models[0].features or ()] == ["yes", "1"]

    def test_yaml_anchors_and_merge_keys_work(self, tmp_path: Path) -> None:
        text = """\
        models:
          - &wine {name: wine, task: regression, reference: {path: r.csv}, window: {size: 5}}
          - <<: *wine
            name: wine-b
        """
        assert [m.name for m in load(tmp_path, text).models] == ["wine", "wine-b"]


ALERTING = """\
alerts:
  routes:
    - name: oncall
      url: "http://127.0.0.1:9000/hooks/driftline"
      format: json
      secret_env: DRIFTLINE_WEBHOOK_SECRET
      models: [wine]
      min_severity: warning
      kinds: [drift, performance]
  delivery: {timeout: 5s, initial_backoff: 1s, max_backoff: 5m, give_up_after: 24h}
models:
  - name: wine
    task: classification
    reference: {path: ref.csv}
    window: {size: 100}
    alerts:
      drift: {enabled: true, severity: warning, pending: 2, keep_firing: 1, cooldown: 1h}
      performance: {severity: critical}
      data_quality: {pending: 3}
      health: {enabled: true, below: 60, severity: critical}
    retrain:
      enabled: true
      on: [drift, performance]
      tracking_uri: "http://127.0.0.1:5000"
      registered_model: wine
      training_entry_point: "mypkg.train:fit"
      horizon: 7d
      holdout_fraction: 0.3
      metric: accuracy
      margin: 0.01
      cooldown: 6h
      max_per_day: 3
      schedule: "0 3 * * *"
"""
SECRET_ENV = {"DRIFTLINE_WEBHOOK_SECRET": "s3cret"}


def with_routes(*routes: str) -> str:
    return MINIMAL + "alerts:\n  routes:\n" + "".join(f"    - {route}\n" for route in routes)


class TestAlertsAndRetrain:
    def test_the_alert_routes_policies_and_retrain_job_load(self, tmp_path: Path) -> None:
        config = load(tmp_path, ALERTING, SECRET_ENV)
        assert config.alerts == AlertSettings(
            routes=(
                WebhookRoute(
                    name="oncall",
                    url="http://127.0.0.1:9000/hooks/driftline",
                    format="json",
                    secret="s3cret",
                    models=("wine",),
                    min_severity="warning",
                    kinds=("drift", "performance"),
                ),
            ),
            delivery=AlertDelivery(5.0, 1.0, 300.0, 86_400.0),
        )
        wine = config.models[0]
        assert wine.alerts == AlertPolicy(
            drift=AlertRule(severity="warning", pending=2, keep_firing=1, cooldown_s=3600.0),
            performance=AlertRule(severity="critical"),
            data_quality=AlertRule(pending=3),
            health=AlertRule(enabled=True, severity="critical", below=60.0),
        )
        assert wine.retrain == RetrainSettings(
            enabled=True,
            on=("drift", "performance"),
            tracking_uri="http://127.0.0.1:5000",
            registered_model="wine",
            training_entry_point="mypkg.train:fit",
            horizon_s=604_800.0,
            holdout_fraction=0.3,
            metric="accuracy",
            margin=0.01,
            cooldown_s=21_600.0,
            max_per_day=3,
            schedule="0 3 * * *",
        )

    def test_without_these_sections_everything_takes_its_default(self, tmp_path: Path) -> None:
        config = load(tmp_path, MINIMAL)
        assert config.alerts == AlertSettings()
        assert config.models[0].alerts == AlertPolicy()
        assert config.models[0].retrain == RetrainSettings()

    def test_a_rule_left_out_keeps_its_own_defaults(self, tmp_path: Path) -> None:
        policy = load(tmp_path, model_with(alerts="{drift: {pending: 4}}")).models[0].alerts
        assert policy.performance.severity == "critical"
        assert (policy.health.enabled, policy.health.below) == (False, 50.0)
        assert policy.drift == AlertRule(pending=4)

    def test_a_route_without_a_secret_is_unsigned(self, tmp_path: Path) -> None:
        config = load(tmp_path, with_routes('{name: a, url: "http://127.0.0.1:1/a"}'))
        assert config.alerts.routes[0].secret is None
        assert config.alerts.routes[0].format == "json"

    def test_a_missing_secret_variable_names_the_variable_and_the_key(
        self, tmp_path: Path
    ) -> None:
        message = error_of(tmp_path, ALERTING)
        assert "line 6: alerts.routes[0].secret_env" in message
        assert "DRIFTLINE_WEBHOOK_SECRET is not set" in message

    def test_a_secret_written_in_a_route_is_rejected_pointing_to_secret_env(
        self, tmp_path: Path
    ) -> None:
        message = error_of(tmp_path, with_routes('{name: a, url: "http://x/", secret: abc}'))
        assert "alerts.routes[0].secret" in message
        assert "`secret_env`" in message

    def test_route_names_must_be_unique(self, tmp_path: Path) -> None:
        route = '{name: a, url: "http://127.0.0.1:1/a"}'
        message = error_of(tmp_path, with_routes(route, route))
        assert 'alerts.routes[1].name: duplicate route name "a"' in message

    def test_a_route_naming_an_unknown_model_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, with_routes('{name: a, url: "http://x/", models: [wien]}'))
        assert 'alerts.routes[0].models[0]: no model named "wien"; configured models: wine' in (
            message
        )

    def test_a_route_format_outside_json_and_slack_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, with_routes('{name: a, url: "http://x/", format: teams}'))
        assert '"teams" is not allowed; allowed values: json, slack' in message

    def test_below_belongs_to_the_health_rule_only(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(alerts="{drift: {below: 50}}"))
        assert 'models[0].alerts.drift.below: unknown key "below"' in message

    def test_an_unknown_key_in_a_rule_lists_the_allowed_ones(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(alerts="{drift: {pendng: 2}}"))
        assert "allowed keys: enabled, severity, pending, keep_firing, cooldown" in message

    def test_max_backoff_must_be_at_least_initial_backoff(self, tmp_path: Path) -> None:
        text = MINIMAL + "alerts: {delivery: {initial_backoff: 1m, max_backoff: 10s}}\n"
        assert "alerts.delivery.max_backoff: must be at least initial_backoff (60s)" in (
            error_of(tmp_path, text)
        )

    def test_every_alert_and_retrain_duration_is_parsed(self, tmp_path: Path) -> None:
        text = model_with(
            alerts="{performance: {cooldown: 90m}}", retrain="{horizon: 2d, cooldown: 30m}"
        ) + "alerts: {delivery: {timeout: 500ms, initial_backoff: 2s, max_backoff: 1h, " \
            "give_up_after: 3d}}\n"  # fmt: skip
        config = load(tmp_path, text)
        assert config.alerts.delivery == AlertDelivery(0.5, 2.0, 3600.0, 259_200.0)
        assert config.models[0].alerts.performance.cooldown_s == 5400.0
        assert (config.models[0].retrain.horizon_s, config.models[0].retrain.cooldown_s) == (
            172_800.0, 1800.0
        )  # fmt: skip

    def test_a_regression_model_retrains_on_mae_unless_told(self, tmp_path: Path) -> None:
        text = model_with(retrain="{enabled: true}").replace("classification", "regression")
        assert load(tmp_path, text).models[0].retrain.metric == "mae"

    def test_a_metric_that_does_not_fit_the_task_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(retrain="{metric: rmse}"))
        assert "models[0].retrain.metric: rmse does not fit task classification" in message

    def test_a_bad_cron_schedule_is_rejected_naming_the_key(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, model_with(retrain='{schedule: "0 3 * *"}'))
        assert "models[0].retrain.schedule" in message
        assert "not a cron expression" in message

    def test_the_example_file_shows_routes_policies_and_a_retrain_job(self) -> None:
        config = load_config(REPO / "driftline.example.yaml", environ={})
        assert [route.name for route in config.alerts.routes] == ["oncall", "chat"]
        wine = config.model("wine")
        assert wine is not None
        assert wine.alerts.drift.pending == 2
        assert wine.retrain.schedule == "0 3 * * *"


class TestHttp:
    def test_the_server_is_on_by_default_on_loopback_port_8080_without_a_token(
        self, tmp_path: Path
    ) -> None:
        assert load(tmp_path, MINIMAL).http == HttpSettings(True, "127.0.0.1", 8080, None)

    def test_host_port_and_enabled_are_read(self, tmp_path: Path) -> None:
        text = MINIMAL + "http: {enabled: false, host: '::1', port: 9100}\n"
        assert load(tmp_path, text).http == HttpSettings(False, "::1", 9100, None)

    def test_the_token_comes_from_the_named_environment_variable(self, tmp_path: Path) -> None:
        text = MINIMAL + "http: {host: 0.0.0.0, token_env: HTTP_TOKEN}\n"
        http = load(tmp_path, text, environ={"HTTP_TOKEN": "t0ken"}).http
        assert (http.host, http.token) == ("0.0.0.0", "t0ken")
        assert "t0ken" not in repr(http)

    def test_a_missing_token_variable_names_the_variable_and_the_key(
        self, tmp_path: Path
    ) -> None:
        message = error_of(tmp_path, MINIMAL + "http: {token_env: HTTP_TOKEN}\n")
        assert "line 6: http.token_env: environment variable HTTP_TOKEN is not set" in message

    def test_a_token_written_in_the_file_is_rejected_pointing_to_token_env(
        self, tmp_path: Path
    ) -> None:
        message = error_of(tmp_path, MINIMAL + "http: {token: abc}\n")
        assert "http.token: secrets never come from the config file" in message
        assert "`token_env`" in message

    def test_a_port_outside_0_to_65535_is_rejected(self, tmp_path: Path) -> None:
        message = error_of(tmp_path, MINIMAL + "http: {port: 70000}\n")
        assert "http.port: must be <= 65535, got 70000" in message
