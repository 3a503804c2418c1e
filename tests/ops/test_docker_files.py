"""docker/: the compose file, Prometheus config and alert rules, Grafana provisioning (item 7).

No container runs here: the files are parsed, cross-checked against each other, and every
``voiceagent_`` metric an alert or a dashboard panel uses must exist in the code's registry
(a renamed metric would otherwise leave an alert that can never fire).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import Metric

import agent.runtime  # noqa: F401  (imports every module that defines metrics)
from agent.config import Settings
from agent.metrics import REGISTRY, RuntimeCollector
from agent.telemetry import RuntimeSnapshot

DOCKER = Path(__file__).resolve().parents[2] / "docker"
_METRIC = re.compile(r"\bvoiceagent_[a-z0-9_]+")
_ALERTS = {
    "VoiceAgentHighCallFailureRate",
    "VoiceAgentRedisDown",
    "VoiceAgentRtpLoss",
    "VoiceAgentTurnLatencyHigh",
}


def _exposed_names() -> set[str]:
    """Every sample name the registry (and the scrape-time collector) can expose."""
    families: list[Metric] = list(REGISTRY.collect())
    families += list(RuntimeCollector(lambda: RuntimeSnapshot()).collect())
    names = set()
    for family in families:
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "info": ("_info",),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def _load(path: str) -> Any:
    return yaml.safe_load((DOCKER / path).read_text())


def test_compose_runs_voiceagent_redis_prometheus_and_grafana() -> None:
    compose = _load("compose.yaml")
    services = compose["services"]
    assert set(services) == {"voiceagent", "redis", "prometheus", "grafana"}
    voiceagent = services["voiceagent"]
    env = voiceagent["environment"]
    assert env["VOICEAGENT_HTTP_PORT"] == "8080" and "8080:8080/tcp" in voiceagent["ports"]
    for name in env:  # every variable names a real setting
        assert name.removeprefix("VOICEAGENT_").lower() in Settings.model_fields, name
    assert (DOCKER / voiceagent["build"]["dockerfile"].removeprefix("docker/")).is_file()
    # The container is given longer to stop than the drain lasts.
    assert int(voiceagent["stop_grace_period"].rstrip("s")) > int(env["VOICEAGENT_DRAIN_SECONDS"])
    mounted = [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])]
    for source in (m for m in mounted if m.startswith("./")):
        assert (DOCKER / source).exists(), source


def test_prometheus_scrapes_voiceagent_and_loads_the_rules() -> None:
    config = _load("prometheus/prometheus.yml")
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "voiceagent"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["voiceagent:8080"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_every_alert_is_complete_and_uses_metrics_that_exist() -> None:
    rules = [r for group in _load("prometheus/alerts.yml")["groups"] for r in group["rules"]]
    assert _ALERTS <= {r["alert"] for r in rules}
    exposed = _exposed_names()
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")"), rule["alert"]
        for name in _METRIC.findall(expr):
            assert name in exposed, f"{rule['alert']}: {name} is not a metric of the code"


def test_the_grafana_dashboard_is_provisioned_and_its_panels_query_real_metrics() -> None:
    datasource = _load("grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    provider = _load("grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((DOCKER / "grafana/dashboards/voiceagent.json").read_text())
    exposed = _exposed_names()
    used = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            for name in _METRIC.findall(target["expr"]):
                assert name in exposed, f"{panel['title']}: {name}"
                used.add(name)
    assert len(used) >= 30  # the dashboard shows calls, SIP, RTP, DSP and the agent
