"""Grafana dashboards as code: ``python -m streams.observability.dashboards`` writes grafana/dashboards/*.json.

Stable uids, no datasource ids: every panel names its datasource by a template variable
(``${prometheus}``, ``${clickhouse}``) that the provisioned datasources fill. A test
checks the committed JSON is what this module generates, and the dashboard truth test
(tests/integration/test_dashboard_truth.py) runs every query against a real Prometheus
and ClickHouse fed by the pipeline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
PROM = {"type": "prometheus", "uid": "${prometheus}"}
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "${clickhouse}"}
SL_TARGET, ASA_TARGET_S, ABANDON_LIMIT = 0.8, 40, 0.1


def _thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


SL_STEPS = _thresholds(("red", None), ("orange", 0.7), ("green", SL_TARGET))
ASA_STEPS = _thresholds(("green", None), ("orange", ASA_TARGET_S), ("red", 2 * ASA_TARGET_S))
ABANDON_STEPS = _thresholds(("green", None), ("orange", 0.05), ("red", ABANDON_LIMIT))
GAP_STEPS = _thresholds(("green", None), ("orange", 1), ("red", 3))


class _Layout:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def add(self, panel: dict[str, Any], w: int = 12, h: int = 8) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = len(self.panels) + 1
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def _prom_targets(*queries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"datasource": PROM, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(
    title: str, *queries: tuple[str, str], unit: str = "short", steps: dict[str, Any] | None = None
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if steps:
        defaults |= {"thresholds": steps, "custom": {"thresholdsStyle": {"mode": "line"}}}
    return {
        "type": "timeseries", "title": title, "datasource": PROM, "targets": _prom_targets(*queries),
        "fieldConfig": {"defaults": defaults, "overrides": []},
    }  # fmt: skip


def stat(title: str, expr: str, unit: str, steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "stat", "title": title, "datasource": PROM, "targets": _prom_targets((expr, title)),
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": steps}, "overrides": []},
        "options": {"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}},
    }  # fmt: skip


def region_table(title: str) -> dict[str, Any]:
    """All regions at a glance, one row each, worst service level first."""
    columns = (
        ("region:ccpulse_service_level_ratio:rate15m", "SL", "percentunit", SL_STEPS),
        ("region:ccpulse_asa_seconds:rate15m", "ASA", "s", ASA_STEPS),
        ("region:ccpulse_abandonment_ratio:rate15m", "abandonment", "percentunit", ABANDON_STEPS),
        ("sum by (region) (ccpulse_contacts_in_queue)", "in queue", "short", None),
        ("sum by (region) (ccpulse_staffing_gap_agents)", "staffing gap", "short", GAP_STEPS),
    )
    targets = [
        {"datasource": PROM, "expr": expr, "format": "table", "instant": True, "refId": chr(65 + i)}
        for i, (expr, *_rest) in enumerate(columns)
    ]
    overrides = [
        {
            "matcher": {"id": "byName", "options": f"Value #{chr(65 + i)}"},
            "properties": [{"id": "displayName", "value": name}, {"id": "unit", "value": unit}]
            + ([{"id": "thresholds", "value": steps}, {"id": "custom.cellOptions", "value": {"type": "color-background"}}]
               if steps else []),
        }
        for i, (_expr, name, unit, steps) in enumerate(columns)
    ]  # fmt: skip
    return {
        "type": "table", "title": title, "datasource": PROM, "targets": targets,
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
            {"id": "sortBy", "options": {"sort": [{"field": "SL", "desc": False}]}},
        ],
        "fieldConfig": {"defaults": {}, "overrides": overrides},
    }  # fmt: skip


def clickhouse_table(title: str, sql: str, kind: str = "table") -> dict[str, Any]:
    return {
        "type": kind, "title": title, "datasource": CLICKHOUSE,
        "targets": [{"datasource": CLICKHOUSE, "rawSql": sql, "format": 1 if kind == "table" else 0,
                     "queryType": "sql", "refId": "A"}],
    }  # fmt: skip


def _dashboard(uid: str, title: str, layout: _Layout, variables: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["ccpulse"], "timezone": "utc", "schemaVersion": 39,
        "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables}, "panels": layout.panels, "annotations": {"list": []},
    }  # fmt: skip


def _datasource_variable(name: str, plugin: str) -> dict[str, Any]:
    return {"name": name, "type": "datasource", "query": plugin, "hide": 0, "current": {}}


PROM_VAR = _datasource_variable("prometheus", "prometheus")
CH_VAR = _datasource_variable("clickhouse", "grafana-clickhouse-datasource")
REGION_VAR = {
    "name": "region", "type": "query", "datasource": PROM, "refresh": 2, "sort": 1,
    "query": {"query": "label_values(ccpulse_contacts_offered_total, region)", "refId": "region"},
    "definition": "label_values(ccpulse_contacts_offered_total, region)", "current": {},
}  # fmt: skip


def overview() -> dict[str, Any]:
    layout = _Layout()
    layout.add(stat("Service level, all regions (15 min)", ":ccpulse_service_level_ratio:rate15m", "percentunit",
                    SL_STEPS), w=6, h=5)  # fmt: skip
    layout.add(stat("ASA, all regions (15 min)", "sum(rate(ccpulse_answered_wait_seconds_total[15m])) / "
                    "sum(rate(ccpulse_contacts_answered_total[15m]))", "s", ASA_STEPS), w=6, h=5)  # fmt: skip
    layout.add(stat("Contacts in queue", "sum(ccpulse_contacts_in_queue)", "short", GAP_STEPS), w=6, h=5)
    layout.add(
        stat("Staffing gap (agents)", "sum(ccpulse_staffing_gap_agents)", "short", GAP_STEPS), w=6, h=5
    )
    layout.add(region_table("All 67 regions, worst service level first (15 min)"), w=24, h=22)
    layout.add(timeseries("Service level by channel (15 min)",
                          ("channel:ccpulse_service_level_ratio:rate15m", "{{channel}}"), unit="percentunit",
                          steps=SL_STEPS))  # fmt: skip
    layout.add(timeseries("ASA by channel (15 min)", ("channel:ccpulse_asa_seconds:rate15m", "{{channel}}"),
                          unit="s", steps=ASA_STEPS))  # fmt: skip
    adherence = timeseries("Staffed minus planned agents by region (today; below 0: below plan)",
                           ("sum by (region) (ccpulse_staffed_agents) - sum by (region) (ccpulse_planned_agents)",
                            "{{region}}"))  # fmt: skip
    adherence["timeFrom"] = "24h"
    layout.add(adherence, w=24)
    return _dashboard("ccpulse-overview", "ccpulse / Overview", layout, [PROM_VAR])


def region() -> dict[str, Any]:
    r = 'region="$region"'
    layout = _Layout()
    layout.add(timeseries("Service level by channel (15 min)",
                          (f'ccpulse_service_level_ratio{{{r}, window="ROLLING_15M"}}', "{{channel}}"),
                          unit="percentunit", steps=SL_STEPS))  # fmt: skip
    layout.add(timeseries("ASA by channel (15 min)",
                          (f'ccpulse_asa_seconds{{{r}, window="ROLLING_15M"}}', "{{channel}}"), unit="s",
                          steps=ASA_STEPS))  # fmt: skip
    layout.add(timeseries("AHT by channel (60 min)", (f'ccpulse_aht_seconds{{{r}, window="ROLLING_60M"}}',
                                                      "{{channel}}"), unit="s"))  # fmt: skip
    layout.add(timeseries("Abandonment by channel (15 min)",
                          (f'ccpulse_abandonment_ratio{{{r}, window="ROLLING_15M"}}', "{{channel}}"),
                          unit="percentunit", steps=ABANDON_STEPS))  # fmt: skip
    layout.add(timeseries("Agents by state", (f"ccpulse_agents{{{r}}}", "{{state}}")))
    # what the NOT_READY agents are doing (BREAK, LUNCH, OFFLINE, ...): adherence, beside the plan
    layout.add(timeseries("Not ready by reason", (f"ccpulse_agents_not_ready{{{r}}}", "{{reason}}")))
    layout.add(timeseries("Contacts in queue and oldest wait",
                          (f"sum by (channel) (ccpulse_contacts_in_queue{{{r}}})", "in queue {{channel}}"),
                          (f"max by (channel) (ccpulse_oldest_contact_age_seconds{{{r}}})", "oldest s {{channel}}")))  # fmt: skip
    layout.add(timeseries("Offered per minute", (f"sum by (channel) (rate(ccpulse_contacts_offered_total{{{r}}}[5m])) * 60",
                                                 "{{channel}}")))  # fmt: skip
    layout.add(timeseries("Staffing gap and occupancy",
                          (f"ccpulse_staffing_gap_agents{{{r}}}", "gap {{channel}}"),
                          (f'ccpulse_occupancy_ratio{{{r}, window="ROLLING_15M"}}', "occupancy")))  # fmt: skip
    # the staffing gap split: required - planned (plan too thin), planned - staffed (adherence)
    staffing = timeseries("Required / planned / staffed agents by channel (today)",
                          (f"sum by (channel) (ccpulse_required_agents{{{r}}})", "required {{channel}}"),
                          (f"sum by (channel) (ccpulse_planned_agents{{{r}}})", "planned {{channel}}"),
                          (f"sum by (channel) (ccpulse_staffed_agents{{{r}}})", "staffed {{channel}}"))  # fmt: skip
    staffing["timeFrom"] = "24h"  # a day of intervals whatever the dashboard's range
    layout.add(staffing, w=24)
    layout.add(timeseries("Today: service level, FLR, CSAT top box",
                          (f'ccpulse_service_level_ratio{{{r}, window="TODAY"}}', "SL {{channel}}"),
                          (f'ccpulse_first_line_resolution_ratio{{{r}, window="TODAY"}}', "FLR {{channel}}"),
                          (f'ccpulse_csat_top_box_ratio{{{r}, window="TODAY"}}', "CSAT {{channel}}"),
                          unit="percentunit"), w=24)  # fmt: skip
    return _dashboard("ccpulse-region", "ccpulse / Region", layout, [PROM_VAR, REGION_VAR])


def routing() -> dict[str, Any]:
    layout = _Layout()
    layout.add(timeseries("Decisions per second by reason",
                          ("sum by (reason) (rate(ccpulse_routing_decisions_total[5m]))", "{{reason}}")))  # fmt: skip
    layout.add(timeseries("Overflow share", ('sum(rate(ccpulse_routing_decisions_total{reason="OVERFLOW_EWT"}[5m])) '
                                             "/ sum(rate(ccpulse_routing_decisions_total[5m]))", "overflow"),
                          unit="percentunit"))  # fmt: skip
    layout.add(timeseries("EWT error (actual - predicted), median and p90",
                          ("histogram_quantile(0.5, sum by (le, channel, method) (rate(ccpulse_ewt_error_seconds_bucket[15m])))",
                           "p50 {{channel}} {{method}}"),
                          ("histogram_quantile(0.9, sum by (le, channel, method) (rate(ccpulse_ewt_error_seconds_bucket[15m])))",
                           "p90 {{channel}} {{method}}"), unit="s"))  # fmt: skip
    layout.add(timeseries("Decision latency p99 (ARRIVED consumed -> decision produced)",
                          ("histogram_quantile(0.99, sum by (le) (rate(ccpulse_routing_decision_seconds_bucket[5m])))",
                           "p99"), unit="s"))  # fmt: skip
    return _dashboard("ccpulse-routing", "ccpulse / Routing", layout, [PROM_VAR])


def pipeline() -> dict[str, Any]:
    layout = _Layout()
    layout.add(timeseries("Events in per second by topic", ("topic:ccpulse_events_in:rate1m", "{{topic}}")))
    layout.add(timeseries("Event time -> KPI visible, p99 (5 min)",
                          (":ccpulse_event_to_visible_seconds:p99_5m", "p99"), unit="s"))  # fmt: skip
    layout.add(timeseries("Consumer lag (wall clock - newest event time)",
                          ("max by (topic) (ccpulse_consumer_lag_seconds)", "{{topic}}"), unit="s"))  # fmt: skip
    layout.add(timeseries("Dead letters per second by reason",
                          ("sum by (topic, reason) (rate(ccpulse_dead_letters_total[5m]))", "{{topic}} {{reason}}"),
                          (":ccpulse_dead_letters_per_event:ratio_rate5m", "share of input")))  # fmt: skip
    layout.add(timeseries("Late events per second", ("sum by (topic) (rate(ccpulse_late_events_total[5m]))",
                                                     "{{topic}}")))  # fmt: skip
    layout.add(timeseries("History sink: rows per second by table, write failures",
                          ("sum by (table) (rate(ccpulse_history_rows_written_total[5m]))", "{{table}}"),
                          ("sum(rate(ccpulse_history_write_failures_total[5m]))", "failures")))  # fmt: skip
    layout.add(timeseries("History sink: batch write p99",
                          ("histogram_quantile(0.99, sum by (le) (rate(ccpulse_history_write_seconds_bucket[5m])))",
                           "p99"), unit="s"), w=24)  # fmt: skip
    return _dashboard("ccpulse-pipeline", "ccpulse / Pipeline health", layout, [PROM_VAR])


# History panels read the streamed minute buckets, latest version per key (no FINAL).
_LATEST = (
    "SELECT region, bucket_start, argMax(answered, version) AS answered, "
    "argMax(answered_within_threshold, version) AS within, argMax(abandoned, version) AS abandoned, "
    "argMax(short_abandoned, version) AS short_abandoned, argMax(total_wait_ms, version) AS wait_ms, "
    "argMax(offered, version) AS offered "
    "FROM ccpulse.kpi_minute_stream WHERE $__timeFilter(bucket_start) GROUP BY region, channel, bucket_start"
)


def history() -> dict[str, Any]:
    layout = _Layout()
    daily = (
        "SELECT toDate(bucket_start) AS day, region, "
        "sum(within) / greatest(sum(answered) + sum(abandoned) - sum(short_abandoned), 1) AS service_level, "
        "sum(wait_ms) / greatest(sum(answered), 1) / 1000 AS asa_seconds, sum(offered) AS offered "
        f"FROM ({_LATEST}) GROUP BY day, region ORDER BY day, service_level"
    )
    layout.add(
        clickhouse_table("Daily service level, ASA and volume per region (worst first)", daily), w=24, h=12
    )
    trend = (
        "SELECT toStartOfHour(bucket_start) AS time, "
        "sum(within) / greatest(sum(answered) + sum(abandoned) - sum(short_abandoned), 1) AS service_level "
        f"FROM ({_LATEST}) GROUP BY time ORDER BY time"
    )
    layout.add(clickhouse_table("Hourly service level, all regions", trend, kind="timeseries"), w=24, h=9)
    return _dashboard("ccpulse-history", "ccpulse / History (ClickHouse)", layout, [CH_VAR])


DASHBOARDS = {
    "overview": overview,
    "region": region,
    "routing": routing,
    "pipeline": pipeline,
    "history": history,
}


def render() -> dict[str, str]:
    """file name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, datasource type, query) of every target of a dashboard, and of its variables."""
    found = [
        (panel["title"], target["datasource"]["type"], target.get("expr") or target.get("rawSql", ""))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"variable {variable['name']}", "prometheus", variable["definition"]))
    return found


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DASHBOARDS_DIR):
        print(written)
