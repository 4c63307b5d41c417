"""deploy/ validated as far as this machine allows (no Docker engine, no cluster): the compose file,
the Kubernetes manifests, Prometheus (promtool), Alertmanager and Grafana provisioning parse, refer
to files that exist and to ccpulse commands that exist, carry health checks, and take every secret
from the environment (no default passwords)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli.main import build_parser

pytestmark = pytest.mark.contract
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRET_NAME = re.compile(r"PASSWORD|_KEY$|SECRET", re.IGNORECASE)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def assert_ccpulse_command(args: list[str]) -> None:
    argv = args[: args.index("--")] if "--" in args else args
    parsed, extra = build_parser().parse_known_args(argv)
    assert not extra or parsed.command == "simulate", (args, extra)


def test_compose_services_health_and_commands() -> None:
    services = compose()["services"]
    expected = {"kafka", "clickhouse", "topics", "migrate", "worker", "history-sink", "simulator",
                "prometheus", "alertmanager", "grafana", "schema-registry", "schemas"}  # fmt: skip
    assert expected <= set(services)
    for name in ("kafka", "clickhouse", "worker", "prometheus", "alertmanager", "grafana", "schema-registry"):
        assert "healthcheck" in services[name], name
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if service.get("image") == "ccpulse:latest":
            assert_ccpulse_command(service["command"])
    assert services["migrate"]["restart"] == "no" and services["topics"]["restart"] == "no"  # one-shot
    assert services["schemas"]["restart"] == "no"


def test_compose_schema_registry_is_apicurio_and_every_producer_uses_it() -> None:
    """The registry runs the Apicurio version the tests run, with durable (Kafka) storage; the
    ccpulse services point at its Confluent-compatible API, and whatever produces frames waits
    for the schemas (BACKWARD) to be registered."""
    from streams.services.apicurio import APICURIO_VERSION, CCOMPAT_PATH

    services = compose()["services"]
    registry = services["schema-registry"]
    assert registry["image"] == f"apicurio/apicurio-registry:{APICURIO_VERSION}"
    assert registry["environment"]["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert CCOMPAT_PATH in " ".join(registry["healthcheck"]["test"])
    assert registry["depends_on"]["kafka"]["condition"] == "service_healthy"
    url = services["worker"]["environment"]["CCPULSE_SCHEMA_REGISTRY_URL"]
    assert url == f"http://schema-registry:8080{CCOMPAT_PATH}"
    command = services["schemas"]["command"]
    assert command[:2] == ["schemas", "register"] and "BACKWARD" in command
    assert services["schemas"]["depends_on"]["schema-registry"]["condition"] == "service_healthy"
    for name in ("worker", "history-sink", "simulator"):
        assert services[name]["depends_on"]["schemas"]["condition"] == "service_completed_successfully", name


def test_compose_takes_every_secret_from_the_env_file() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text)) - {"NAME"}  # NAME: the comment's example
    example = {
        line.split("=", 1)[0] for line in (DEPLOY / ".env.example").read_text().splitlines() if "=" in line
    }
    assert required and required <= example
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if "=" in line and SECRET_NAME.search(line.split("=", 1)[0]):
            assert line.split("=", 1)[1] == "", f"{line}: no default secrets in the example"
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAME.search(key):  # required (":?"), or optional with an empty default
                text = str(value)
                assert text.startswith("${") and (":?" in text or text.endswith(":-}")), (name, key)


def test_compose_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)


def test_prometheus_config_passes_promtool(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_manifests() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "ccpulse.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    expected = {
        ("Deployment", "ccpulse-worker"),
        ("Deployment", "ccpulse-history-sink"),
        ("Job", "ccpulse-migrate"),
        ("Job", "ccpulse-topics"),
        ("Job", "ccpulse-schemas"),
        ("Service", "ccpulse-metrics"),
        ("Deployment", "ccpulse-schema-registry"),
        ("Service", "ccpulse-schema-registry"),
    }
    assert expected <= kinds
    from streams.services.apicurio import APICURIO_VERSION, CCOMPAT_PATH

    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert (
        config["CCPULSE_SCHEMA_REGISTRY_URL"] == f"http://ccpulse-schema-registry.ccpulse:8080{CCOMPAT_PATH}"
    )
    registry = next(d for d in documents if d["metadata"]["name"] == "ccpulse-schema-registry")
    container = registry["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"apicurio/apicurio-registry:{APICURIO_VERSION}"
    assert container["readinessProbe"]["httpGet"]["path"] == f"{CCOMPAT_PATH}/subjects"
    assert {"name": "APICURIO_STORAGE_KIND", "value": "kafkasql"} in container["env"]
    for document in documents:
        assert document["apiVersion"] and document["metadata"]["name"]
        spec = document.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
        if template is None:
            continue
        ours = all(c["image"] == "ccpulse:latest" for c in template["spec"]["containers"])
        if document["kind"] == "Deployment" and ours:
            assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        for container in template["spec"]["containers"]:
            assert container["resources"]["requests"], container["name"]
            if container["image"] == "ccpulse:latest":
                assert_ccpulse_command(container["args"])
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]):
                    assert "secretKeyRef" in variable["valueFrom"], variable["name"]


def test_grafana_provisioning_and_alertmanager() -> None:
    datasources = yaml.safe_load((ROOT / "grafana/provisioning/datasources/ccpulse.yaml").read_text())
    types = {d["type"] for d in datasources["datasources"]}
    assert types == {"prometheus", "grafana-clickhouse-datasource"}
    for datasource in datasources["datasources"]:
        secrets = datasource.get("secureJsonData", {})
        assert all(str(v).startswith("${") for v in secrets.values())
    provider = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/ccpulse.yaml").read_text())[
        "providers"
    ][0]
    grafana_volumes = compose()["services"]["grafana"]["volumes"]
    assert any(v.endswith(f"{provider['options']['path']}:ro") for v in grafana_volumes)
    alertmanager = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in alertmanager["receivers"]}
    assert alertmanager["route"]["receiver"] in receivers
    assert {r["receiver"] for r in alertmanager["route"]["routes"]} <= receivers


def test_alertmanager_config_passes_amtool_and_tells_on_resolve(amtool: str) -> None:
    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    checked = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(path.read_text())
    for receiver in config["receivers"]:
        hooks = receiver.get("webhook_configs", [])
        assert hooks and all(h["send_resolved"] is True for h in hooks), receiver["name"]
