"""Prometheus rules: promtool checks and unit tests pass; every alert is tested both ways,
has severity/summary/description and a runbook anchor that exists; recording rules follow
level:metric:operations and use only catalogued metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from streams.observability.metrics import CATALOGUE

pytestmark = [pytest.mark.contract, pytest.mark.prometheus]

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))
TESTS = sorted((ROOT / "deploy/prometheus/tests").glob("*.test.yml"))
RUNBOOK = ROOT / "docs/runbook.md"


def run_promtool(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=ROOT)


def rules() -> list[dict[str, object]]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alerts() -> list[dict[str, object]]:
    return [r for r in rules() if "alert" in r]


def test_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", *map(str, TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.test.yml"
    text = TESTS[0].read_text().replace("../rules/", str(ROOT / "deploy/prometheus/rules") + "/")
    broken.write_text(text.replace("severity: critical, region: RU-MOW", "severity: warning, region: RU-MOW"))
    assert run_promtool(promtool, "test", "rules", str(broken)).returncode != 0


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = [
        case
        for path in TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in alerts():
        name = alert["alert"]
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in mine), f"{name}: no test where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{name}: no test where it stays silent"


def test_every_alert_has_severity_text_and_a_runbook_anchor() -> None:
    anchors = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for alert in alerts():
        labels, annotations = alert["labels"], alert["annotations"]
        assert labels["severity"] in ("warning", "critical"), alert["alert"]  # type: ignore[index]
        assert annotations["summary"] and annotations["description"], alert["alert"]  # type: ignore[index]
        url = annotations["runbook_url"]  # type: ignore[index]
        assert url.startswith("docs/runbook.md#"), url
        assert url.split("#")[1] in anchors, f"{alert['alert']}: no section {url} in docs/runbook.md"
        assert "for" in alert, f"{alert['alert']}: alerts on symptoms need a `for:`"


def test_recording_rules_are_named_and_use_catalogued_metrics() -> None:
    catalogued = {m.name for m in CATALOGUE}
    recorded = {str(r["record"]) for r in rules() if "record" in r}
    for rule in rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]*:ccpulse_[a-z_]+:[a-z0-9_]+", str(rule["record"])), rule["record"]
        for name in re.findall(r"\bccpulse_[a-z_]+", str(rule["expr"])):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in catalogued or any(name in r for r in recorded), f"{name} is not in the catalogue"
