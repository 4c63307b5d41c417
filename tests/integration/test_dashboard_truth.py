"""Every dashboard query and recording rule returns data on the real pipeline.

Simulated traffic (with faults) through real Apache Kafka into a KPI worker and a history
sink (chdb); a real Prometheus scrapes both every second with the recording rules loaded.
Then every PromQL expression of grafana/dashboards/*.json (template variables
substituted) and every recording rule runs against Prometheus's HTTP API, and every
ClickHouse panel query runs against the history; each must return data. The committed
dashboard JSON must be what streams/observability/dashboards.py generates.

The queries run while the traffic flows (rolling windows are live): the test polls them
until all return data in one round (rates need two scrapes, recording rules an evaluation,
the history a flushed batch), with a deadline, and on timeout lists what stayed empty.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from support.waiting import wait_until

from streams.domain.regions import region_codes
from streams.domain.shift_plan import INTERVAL_MS, PlanInterval
from streams.history.chdb_store import ChdbStore
from streams.history.migrate import migrate
from streams.history.sink import HistorySink
from streams.jobs.collector import KpiCollector
from streams.jobs.plan_table import GlobalPlanTable
from streams.jobs.runner import make_observer
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.observability import dashboards
from streams.planning.publish import publish_plan
from streams.simulator import run
from streams.simulator.config import Faults
from streams.wire.codec import Codec

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.clickhouse]
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"
REGIONS = ("RU-MOW", "RU-KAM", "RU-NVS", "RU-KHA", "RU-PRI")
ALERT_INPUT = re.compile(r"[a-z_]*:?ccpulse_[a-z_0-9:]+")
ALL_DATA_WITHIN_S = 150.0  # scrapes every 1 s; one round of every query takes 1-30 s (load)
# The traffic must outlast the wait: once it stops, the rolling windows move on with the
# surveys and late events still arriving and rightly hold no contacts (a round that ran
# after the traffic ended saw ROLLING_15M empty and failed under load). Six busy hours
# over ~4 minutes, stopped as soon as every query has returned data.
TRAFFIC_S, TRAFFIC_WALL_S = 6 * 3600, 240


@pytest.mark.unit
def test_committed_dashboards_are_generated() -> None:
    for name, text in dashboards.render().items():
        committed = dashboards.DASHBOARDS_DIR / name
        assert committed.read_text() == text, (
            f"{name} is stale: run `python -m streams.observability.dashboards`"
        )
        dashboard = json.loads(text)
        assert dashboard["uid"].startswith("ccpulse-")
        assert '"id": ' not in json.dumps([p["datasource"] for p in dashboard["panels"]])  # no datasource ids


def publish_a_plan(bootstrap: str, codec: Codec, start: datetime) -> None:
    """A plan for every region x channel of the traffic, over its event time and the drain
    after it (the required / planned / staffed panel and the adherence alert read it)."""
    start_ms = int(start.timestamp() * 1000)
    intervals = [
        PlanInterval("truth", region, channel, start_ms + i * INTERVAL_MS, 40.0, 150.0, 6.5, 7)
        for region in REGIONS
        for channel in ("VOICE", "CHAT", "MESSENGER", "EMAIL")
        for i in range(-4, (TRAFFIC_S // 3600 + 4) * 4)
    ]
    publish_plan({"bootstrap.servers": bootstrap}, codec, intervals, published_at_ms=start_ms - 86_400_000)


def serve(registry: CollectorRegistry) -> tuple[Any, str]:
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    return server, f"127.0.0.1:{server.server_address[1]}"


def promql_of(query: str, region: str) -> str:
    if query.startswith("label_values("):  # a Grafana function: the PromQL it runs
        metric, label = query.removeprefix("label_values(").removesuffix(")").split(", ")
        return f"group by ({label}) ({metric})"
    return query.replace("$region", region)


def sql_of(query: str) -> str:
    lo, hi = datetime.now(UTC) - timedelta(days=3), datetime.now(UTC) + timedelta(days=1)
    low, high = int(lo.timestamp()), int(hi.timestamp())
    window = f"bucket_start >= toDateTime({low}) AND bucket_start <= toDateTime({high})"
    return query.replace("$__timeFilter(bucket_start)", window)


def empty_queries(prometheus: Any, store: ChdbStore, rule_files: list[Path]) -> list[tuple[str, str, str]]:
    """Every dashboard query and recording rule that returns nothing, and every series an
    alert reads that does not exist: (file or dashboard, title, query)."""
    empty = []
    for name, build in dashboards.DASHBOARDS.items():
        for title, kind, query in dashboards.queries(build()):
            if kind == "prometheus":
                if not prometheus.query(promql_of(query, "RU-MOW")):
                    empty.append((name, title, query))
            else:
                if not store.query(sql_of(query)):
                    empty.append((name, title, query))
    for rule_file in rule_files:
        for group in yaml.safe_load(rule_file.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule and not prometheus.query(rule["record"]):
                    empty.append((rule_file.name, rule["record"], rule["expr"]))
                # an alert's expression is empty until it fires: every series it reads must exist
                for name in ALERT_INPUT.findall(rule.get("expr", "")) if "alert" in rule else ():
                    if not prometheus.query(f'count({{__name__="{name}"}})'):
                        empty.append((rule_file.name, rule["alert"], name))
    return empty


def test_every_query_returns_data(fresh_kafka: Any, prometheus_factory: Any, tmp_path: Path) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    codec = Codec.pinned(known_regions=region_codes())
    worker_registry, sink_registry = CollectorRegistry(), CollectorRegistry()
    worker = KpiWorker({"bootstrap.servers": bootstrap}, codec, WorkerOptions(checkpoint_interval_s=1.0),
                       observer=make_observer(worker_registry))  # fmt: skip
    start = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - timedelta(days=1)
    publish_a_plan(bootstrap, codec, start)
    plan = GlobalPlanTable({"bootstrap.servers": bootstrap}, codec).start()
    states = lambda: list(worker.states.values())  # noqa: E731
    worker_registry.register(KpiCollector(states, worker.lock, plan=plan))
    store = ChdbStore(tmp_path / "chdb", database="ccpulse")
    migrate(store)
    sink_config = {"bootstrap.servers": bootstrap, "group.id": "history", "session.timeout.ms": 6000}
    sink = HistorySink(sink_config, store, codec, max_wait_s=0.5, registry=sink_registry)
    servers = [serve(worker_registry), serve(sink_registry)]
    rule_files = sorted(RULES.glob("*.yml"))
    prometheus = prometheus_factory([target for _, target in servers], rule_files)
    stop = threading.Event()
    threads = [
        threading.Thread(target=worker.run, args=(stop,), daemon=True),
        threading.Thread(target=sink.run, args=(stop,), daemon=True),
    ]
    try:
        for thread in threads:
            thread.start()
        options = {
            "regions": REGIONS,
            "seed": 12,
            "out": "kafka",
            "bootstrap_servers": bootstrap,
            "start": start,
        }
        faults = Faults(duplicate=0.01, late=0.01, malformed=0.005)
        traffic_done = threading.Event()
        producer = threading.Thread(
            target=run,
            kwargs={**options, "duration_s": TRAFFIC_S, "speed": TRAFFIC_S / TRAFFIC_WALL_S,
                    "faults": faults, "stop": traffic_done.is_set},
            daemon=True,
        )  # queries run while traffic flows (rolling windows are live)  # fmt: skip
        producer.start()
        last: list[list[tuple[str, str, str]]] = [[]]

        def all_return_data() -> bool:
            last[0] = empty_queries(prometheus, store, rule_files)
            return not last[0]

        wait_until(
            all_return_data, ALL_DATA_WITHIN_S, "every dashboard query and recording rule to return data",
            seen=lambda: f"{len(last[0])} queries returned nothing: {last[0][:5]}", interval_s=0.5,
        )  # fmt: skip
        traffic_done.set()
        producer.join(timeout=120)
    finally:
        stop.set()
        plan.stop()
        for thread in threads:
            thread.join(timeout=60)
        for server, _ in servers:
            server.shutdown()
            server.server_close()
        store.close()
