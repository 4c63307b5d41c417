"""Run one KPI worker process: the worker thread, /metrics, signals, a JSON summary at exit."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from streams.domain.kpi import ServiceLevelVariant
from streams.engine.transactions import Fenced
from streams.jobs.collector import KpiCollector
from streams.jobs.plan_table import GlobalPlanTable
from streams.jobs.worker import SLOW_CHECKPOINT_S, KpiWorker, WorkerOptions
from streams.observability import metrics
from streams.wire.codec import Codec

log = logging.getLogger("ccpulse.jobs")
PIPELINE_METRICS = (
    "ccpulse_events_in_total",
    "ccpulse_dead_letters_total",
    "ccpulse_decode_errors_total",
    "ccpulse_event_to_visible_seconds",
    "ccpulse_routing_decisions_total",
    "ccpulse_routing_decision_seconds",
    "ccpulse_ewt_error_seconds",
    "ccpulse_checkpoint_seconds",
    "ccpulse_slow_checkpoints_total",
)


def make_observer(registry: CollectorRegistry) -> Any:
    created = metrics.create(registry, PIPELINE_METRICS)

    def observe(name: str, value: Any) -> None:
        if name == "events_in":
            topic, count = value
            created["ccpulse_events_in_total"].labels(topic).inc(count)
        elif name == "dead_letter":
            topic, reason = value
            created["ccpulse_decode_errors_total"].labels(topic, reason).inc()
            created["ccpulse_dead_letters_total"].labels(topic, reason).inc()
        elif name == "event_to_visible_seconds":
            created["ccpulse_event_to_visible_seconds"].observe(value)
        elif name == "routing_decision":
            reason, seconds = value
            created["ccpulse_routing_decisions_total"].labels(reason).inc()
            created["ccpulse_routing_decision_seconds"].observe(seconds)
        elif name == "checkpoint_seconds":
            created["ccpulse_checkpoint_seconds"].observe(value)
            if value > SLOW_CHECKPOINT_S:
                created["ccpulse_slow_checkpoints_total"].inc()
        elif name == "ewt_error":
            channel, method, error = value
            created["ccpulse_ewt_error_seconds"].labels(channel, method).observe(error)

    return observe


def run_worker(
    client_config: dict[str, Any],
    codec: Codec,
    options: WorkerOptions,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = 0,
    idle_exit_s: float | None = None,
    variant: ServiceLevelVariant = ServiceLevelVariant.EXCLUDE_SHORT,
) -> dict[str, Any]:
    """Blocks until SIGTERM/SIGINT (or ``idle_exit_s`` without input); returns the summary."""
    registry = CollectorRegistry()
    worker = KpiWorker(client_config, codec, options, observer=make_observer(registry))
    plan = GlobalPlanTable(client_config, codec).start()  # cc.staffing.plan -> ccpulse_planned_agents
    states = lambda: list(worker.states.values())  # noqa: E731
    registry.register(KpiCollector(states, worker.lock, variant=variant, plan=plan))
    port = None
    server = None
    if metrics_port is not None:
        server, _thread = start_http_server(metrics_port, addr=metrics_host, registry=registry)
        port = server.server_address[1]
        print(json.dumps({"event": "metrics", "url": f"http://{metrics_host}:{port}/metrics"}), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: stop.set())
    started = time.monotonic()
    try:
        stats = worker.run(stop, idle_exit_s=idle_exit_s)
    except Fenced as exc:  # another member owns the partitions: exit, a restart rejoins and restores
        log.error("fenced: %s", exc)
        return {"event": "fenced", "error": str(exc), "wall_s": round(time.monotonic() - started, 3)}
    finally:
        plan.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
    summary = {"event": "stopped", "wall_s": round(time.monotonic() - started, 3), **asdict(stats)}
    summary["restored"] = {str(k): v for k, v in stats.restored.items()}
    return summary
