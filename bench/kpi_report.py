"""The engine benchmark's printed report (bench/bench_kpi.py): throughput, faithfulness, latency."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

ROWS = [
    ("raw", "raw ceiling: confluent-kafka consume(10000) + codec decode"),
    ("faust_consume_only", "Faust consume-only agent, take(10000, within=0.1)"),
    ("faust_full", "Faust full KPI job (take_events, Table once per batch)"),
    ("worker", "current worker, full job (KPIs, snapshots, queue state, routing)"),
    ("base_worker", "baseline worker (--baseline), full job"),
    ("worker_no_routing", "current worker, routing off"),
    ("base_worker_no_routing", "baseline worker, routing off"),
    ("worker_transactions", "current worker, full job, --transactions (commit 0.1 s, checkpoint 2 s)"),
    ("worker_transactions_250ms", "current worker, full job, --transactions, commit 0.25 s"),
    ("quix", "Quix job, exactly-once, commit every {ci} s"),
    ("quix_default_commit", "Quix job, exactly-once, commit every 5 s (default)"),
    ("worker_x2", "current worker, 2 processes"),
    ("worker_no_routing_x2", "current worker, routing off, 2 processes"),
    ("quix_x2", "Quix job, 2 processes, commit every {ci} s"),
    ("base_worker_x2", "baseline worker, 2 processes"),
]
FAITHFUL_LABELS = {"quix": "Quix job", "faust_full": "Faust full KPI job"}


def _ratio(rate: float, base: dict[str, Any] | None) -> str:
    if not base or "events_per_s" not in base:
        return ""
    return f"{rate / base['events_per_s']:.2f}"


def report(result: dict[str, Any], ci: float) -> None:
    paths = result["paths"]
    raw, worker = paths.get("raw"), paths.get("worker")
    table = Table(
        title=f"stream engines on Apache Kafka 4.1.1, {result['messages']:,} messages, "
        f"load average {result['load_before']} -> {result['load_after']}"
    )
    for column in ("path", "events/s", "vs raw", "vs worker", "peak RSS MB"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for key, label in ROWS:
        if key not in paths:
            continue
        figures = paths[key]
        if "error" in figures:
            table.add_row(label.format(ci=ci), "failed", "", "", figures["error"][:60])
            continue
        rate = figures["events_per_s"]
        table.add_row(
            label.format(ci=ci),
            f"{rate:,.0f}",
            _ratio(rate, raw),
            _ratio(rate, worker),
            str(figures["peak_rss_mb"]),
        )
    out = Console()
    out.print(table)
    for name, f in result["faithfulness"].items():
        out.print(
            f"faithfulness, {FAITHFUL_LABELS.get(name, name)}: {f['equal']:,} of {f['total']:,} MINUTE "
            f"buckets equal to the worker's ({f['differ']:,} differ)"
        )
    if result["latency"]:
        latency_table(out, result)
    if "quix" in paths and worker and "error" not in paths["quix"] and "error" not in worker:
        quix, w = paths["quix"]["events_per_s"], worker["events_per_s"]
        lat = result["latency"].get("quix")
        latency = (
            f"Quix p99 event -> state {lat['state']['p99_ms']} ms, -> readable snapshot "
            f"{lat['readable']['p99_ms']} ms (<= 500 needed)"
            if lat
            else "latency not measured in this run"
        )
        out.print(f"rule: Quix / worker = {quix / w:.2f} (>= 0.8 needed); {latency}")


def latency_table(out: Console, result: dict[str, Any]) -> None:
    lat = Table(title=f"latency at {result['rate']:,} live events/s, ms")
    for column in (
        "job",
        "achieved/s",
        "state p50",
        "state p99",
        "readable p50",
        "readable p99",
        "readable max",
    ):
        lat.add_column(column, justify="left" if column == "job" else "right")
    for name, figures in result["latency"].items():
        s, r = figures["state"], figures["readable"]
        lat.add_row(
            name,
            f"{figures['achieved_rate']:,}",
            str(s["p50_ms"]),
            str(s["p99_ms"]),
            str(r["p50_ms"]),
            str(r["p99_ms"]),
            str(r["max_ms"]),
        )
    out.print(lat)
