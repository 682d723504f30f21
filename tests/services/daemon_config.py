"""The part of a test daemon's config that points it at the suite's broker."""

from __future__ import annotations

__all__ = ["kafka_yaml"]


def kafka_yaml(bootstrap: str, topics: dict[str, str], group: str) -> str:
    """YAML for `http` (any free port: tests run daemons one after another) and `kafka`
    (the test's topics, a short poll so idle exits come quickly)."""
    return f"""\
http: {{port: 0}}
kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: {group}
  topics: {{predictions: {topics['predictions']}, features: {topics['features']},
           labels: {topics['labels']}}}
  poll_timeout_ms: 200
"""
