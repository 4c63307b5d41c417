"""The time-scaled rule copy used by the alert delivery test (tests/support/alert_rules.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.alert_rules import scale_rule_file

pytestmark = pytest.mark.unit
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"


def test_every_duration_is_divided_by_the_speed() -> None:
    alerts = scale_rule_file((RULES / "ccpulse-alerts.yml").read_text(), speed=30)
    rules = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    assert rules["CcpulseServiceLevelBelowTarget"]["for"] == "30s"  # 15m / 30
    assert rules["CcpulseOldestContactWaitingTooLong"]["for"] == "4s"  # 2m / 30
    assert "[10s]" in rules["CcpulseHistorySinkFailing"]["expr"]  # [5m] / 30
    recording = scale_rule_file((RULES / "ccpulse-recording.yml").read_text(), speed=30)
    group = recording["groups"][0]
    assert group["interval"] == "1s"  # 30s / 30
    exprs = {r["record"]: r["expr"] for r in group["rules"]}
    assert "[30s]" in exprs["region:ccpulse_service_level_ratio:rate15m"] and "[15m]" not in str(exprs)
    assert "[2880s]" in exprs["region:ccpulse_abandonment_ratio:rate1d"]
    # names, labels and annotations are untouched: the copy differs from the real file in time only
    real = yaml.safe_load((RULES / "ccpulse-alerts.yml").read_text())
    for scaled_group, real_group in zip(alerts["groups"], real["groups"], strict=True):
        for scaled_rule, real_rule in zip(scaled_group["rules"], real_group["rules"], strict=True):
            assert {k: v for k, v in scaled_rule.items() if k not in ("for", "expr")} == {
                k: v for k, v in real_rule.items() if k not in ("for", "expr")
            }


def test_floors_keep_two_scrapes_in_a_window() -> None:
    text = "groups: [{name: g, interval: 10s, rules: [{record: r, expr: 'rate(x[1m])'}]}]"
    group = scale_rule_file(text, speed=100)["groups"][0]
    assert group["interval"] == "1s" and group["rules"][0]["expr"] == "rate(x[3s])"
