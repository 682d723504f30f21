"""docker-compose.yml is a valid Compose file that publishes nothing beyond 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
# The Compose Specification's JSON Schema (github.com/compose-spec/compose-spec, Apache-2.0),
# kept here so CI validates without the shared folder; the shared copy is checked too when
# it is beside the checkout.
COMPOSE_SCHEMAS = [p for p in (Path(__file__).resolve().parent / "data" / "compose-spec.json",
                               REPO.parent / "shared" / "compose-spec.json") if p.is_file()]
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _published_host_ips(port: str | int | dict) -> list[str | None]:
    """Host addresses a `ports` entry binds; None where it binds every interface."""
    if isinstance(port, dict):  # long syntax
        return [port.get("host_ip")] if "published" in port else []
    parts = str(port).split(":")
    if len(parts) == 3:  # IP:HOST:CONTAINER
        return [parts[0]]
    return [None]  # CONTAINER or HOST:CONTAINER: all interfaces


class TestComposeFile:
    @pytest.mark.parametrize("schema_path", COMPOSE_SCHEMAS, ids=lambda p: p.parent.name)
    def test_it_validates_against_the_compose_spec_schema(self, compose, schema_path):
        schema = json.loads(schema_path.read_text())
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in Draft7Validator(schema).iter_errors(compose)
        ]
        assert errors == []

    def test_the_schema_catches_an_invalid_file(self, compose):
        schema = json.loads(COMPOSE_SCHEMAS[0].read_text())
        broken = {**compose, "services": {**compose["services"],
                                          "kafka": {**compose["services"]["kafka"],
                                                    "restart": ["always"]}}}
        assert list(Draft7Validator(schema).iter_errors(broken))

    def test_it_defines_kafka_postgres_mlflow_and_driftline(self, compose):
        assert {"kafka", "postgres", "mlflow", "driftline"} <= set(compose["services"])

    def test_kafka_is_the_official_apache_image(self, compose):
        assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")

    def test_driftline_waits_for_healthy_kafka_and_postgres(self, compose):
        depends = compose["services"]["driftline"]["depends_on"]
        for service in ("kafka", "postgres"):
            assert depends[service]["condition"] == "service_healthy"
            assert "healthcheck" in compose["services"][service]

    def test_every_published_port_binds_loopback_only(self, compose):
        bindings = {
            (name, str(port)): ip
            for name, service in compose["services"].items()
            for port in service.get("ports", [])
            for ip in _published_host_ips(port)
        }
        assert bindings, "expected published ports"
        assert {key: ip for key, ip in bindings.items() if ip != LOOPBACK} == {}
        assert all(s.get("network_mode") != "host" for s in compose["services"].values())


def test_the_config_the_compose_daemon_mounts_is_valid() -> None:
    from monitor.config import load_config

    root = Path(__file__).resolve().parents[1]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    mount = next(v for v in compose["services"]["driftline"]["volumes"]
                 if v.endswith(":/etc/driftline/driftline.yaml:ro"))
    config = load_config(root / mount.split(":")[0].removeprefix("./"), environ={
        "DRIFTLINE_DB_PASSWORD": "x", "DRIFTLINE_HTTP_TOKEN": "t",
        "DRIFTLINE_WEBHOOK_SECRET": "s"})
    assert config.kafka.bootstrap_servers == "kafka:19092"
    assert config.store.url.startswith("postgresql+psycopg://driftline@postgres:5432/")
    assert config.http.host == "0.0.0.0"
    assert config.http.token == "t"
