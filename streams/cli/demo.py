"""`ccpulse demo`: the whole pipeline on the embedded default, with a live terminal view.

Tansu (embedded broker, no Java) + the simulator (67 regions, accelerated) + a KPI worker
(KPIs, queue state, routing) + the history sink into chdb under ./.ccpulse/demo, /metrics
on a printed port, and a rich live view. On exit (end of --duration or Ctrl-C) it stops
the simulator, lets the worker and sink catch up, prints a summary, writes the HTML
report from history, and stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from streams.cli.kpi_tables import channel_summary, channel_table, marked, pct, secs, summary_channel_table
from streams.domain.events import Channel
from streams.domain.kpi import COUNTERS, initialize, kpi_result
from streams.domain.regions import region_codes
from streams.domain.targets import (
    ASA_TARGET_S,
    DEFAULT_MIN_REGION_CONTACTS,
    SERVICE_LEVEL_TARGET,
    Mark,
    all_channels,
    channel_rows,
    rank_regions,
)
from streams.history.chdb_store import ChdbStore
from streams.history.migrate import migrate
from streams.history.report import render
from streams.history.sink import HistorySink
from streams.jobs.collector import KpiCollector
from streams.jobs.runner import make_observer
from streams.jobs.state import PartitionState
from streams.jobs.windows import series_views
from streams.jobs.worker import KpiWorker, WorkerOptions
from streams.services.base import pid_alive, process_start_ticks, stop_pid
from streams.services.tansu import TansuBroker
from streams.simulator import run
from streams.wire.codec import Codec
from streams.wire.kafka_config import client_config
from streams.wire.topic_admin import apply_topics

MIN_FREE_BYTES = 1 << 30  # Tansu keeps everything in memory, chdb and the report need some disk


class DemoError(Exception):
    """A clear, expected problem (disk, ports, leftovers): one line, exit code 2."""


@dataclass
class DemoOptions:
    duration_s: float = 300.0
    speed: float = 288.0  # one simulated day in five minutes
    regions: tuple[str, ...] | None = None
    live: bool = True
    metrics_port: int = 0
    start: datetime | None = None  # default: today 06:00 UTC, business hours in all 11 zones
    min_region_contacts: int = DEFAULT_MIN_REGION_CONTACTS  # fewer offered in 60 min: not ranked


@dataclass
class Progress:
    messages: int = 0
    simulated_ms: int = 0
    first_kpi_s: float | None = None
    done: bool = False
    error: str | None = None
    started: float = field(default_factory=time.monotonic)


Counters = dict[str, dict[str, int]]


def _aggregate(states: list[PartitionState], window: str) -> tuple[Counters, Counters, Counters]:
    """(by channel, by region, voice by region) counters of ``window``."""
    by_channel, by_region, voice = {}, {}, {}  # type: Counters, Counters, Counters
    for state in states:
        for view in series_views(state):
            if view.window != window:
                continue
            entries = [by_region.setdefault(view.region, initialize()),
                       by_channel.setdefault(view.channel, initialize())]  # fmt: skip
            if view.channel == Channel.VOICE.value:
                entries.append(voice.setdefault(view.region, initialize()))
            for entry in entries:
                for name in COUNTERS:
                    entry[name] += view.counters[name]
    return by_channel, by_region, voice


def _view(worker: KpiWorker, progress: Progress, metrics_url: str, options: DemoOptions) -> Group:
    with worker.lock:
        states = list(worker.states.values())
        by_channel, by_region, voice = _aggregate(states, "ROLLING_60M")
        waiting = sum(len(s.waiting) for s in states)
        agents = Counter(a.state for s in states for a in s.agents.values())
    head = Table.grid(padding=(0, 2))
    elapsed = time.monotonic() - progress.started
    simulated = progress.simulated_ms / 3_600_000
    head.add_row(
        f"[bold]ccpulse demo[/bold]  {elapsed:.0f} / {options.duration_s:.0f} s",
        f"simulated {simulated:.2f} h at {options.speed:g}x",
        f"{worker.stats.events:,} events ({worker.stats.events / max(elapsed, 1):,.0f}/s)",
        f"{worker.stats.decisions:,} routing decisions",
        f"{worker.stats.dead_letters} dead letters",
        f"/metrics: {metrics_url}",
    )
    per_channel = channel_table(by_channel, "per channel, all regions, last 60 simulated minutes")
    total = all_channels(by_channel)
    overall = Table(title="all channels (figures that add up across channels)")
    for column in ("offered", "FLR (99 %)", "CSAT 5/5 (95 %)", "in queue", "agents ready / on contact / ACW"):
        overall.add_column(column, justify="right")
    result = total.result
    overall.add_row(
        f"{result.offered:,}", marked(pct(result.first_line_resolution, 2), total.first_line_resolution),
        marked(pct(result.csat_top_box, 2), total.csat_top_box), f"{waiting:,}",
        f"{agents['READY']} / {agents['ON_CONTACT']} / {agents['ACW']}",
    )  # fmt: skip
    ranked, too_few = rank_regions(by_region, options.min_region_contacts)
    unranked = len([region for region, k in too_few if k.offered])
    worst = Table(
        title=f"worst regions by service level (60 min; only regions with ≥ {options.min_region_contacts} "
        f"contacts: {unranked} with fewer not ranked)"
    )
    for column in ("region", "offered", "SL (80 %)", "voice ASA (40 s)", "abandonment"):
        worst.add_column(column, justify="right")
    for region, r in ranked[:8]:
        sl = Mark(r.service_level, SERVICE_LEVEL_TARGET, higher_is_better=True)
        voice_asa = kpi_result(voice.get(region) or initialize()).asa_seconds
        asa = Mark(voice_asa, ASA_TARGET_S[Channel.VOICE], higher_is_better=False)
        worst.add_row(region, f"{r.offered:,}", marked(pct(r.service_level), sl),
                      marked(secs(voice_asa), asa), pct(r.abandonment_rate))  # fmt: skip
    return Group(head, per_channel, overall, worst)


def _summary(worker: KpiWorker) -> dict[str, Any]:
    with worker.lock:
        by_region: dict[str, dict[str, int]] = {}
        by_channel: dict[str, dict[str, int]] = {}
        for state in worker.states.values():
            for (region, channel), counters in state.totals.items():
                for entry in (by_region.setdefault(region, initialize()),
                              by_channel.setdefault(channel, initialize())):  # fmt: skip
                    for name in COUNTERS:
                        entry[name] += counters[name]
    total = all_channels(by_channel)
    return {
        "regions_with_traffic": sum(1 for c in by_region.values() if c["offered"] > 0),
        "offered": total.result.offered, "answered": total.result.answered,
        "first_line_resolution": total.result.first_line_resolution,
        "first_line_resolution_met": total.first_line_resolution.met,
        "csat_top_box": total.result.csat_top_box, "csat_top_box_met": total.csat_top_box.met,
        "per_channel": {row.channel.value: channel_summary(row) for row in channel_rows(by_channel)},
        "per_region_offered": {region: c["offered"] for region, c in sorted(by_region.items())},
    }  # fmt: skip


def _preflight(work: Path, console: Console) -> None:
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    if free < MIN_FREE_BYTES:
        msg = f"only {free / 2**20:.0f} MiB free under {work}; the demo needs about 1 GiB"
        raise DemoError(msg)
    leftover = work / "pids.json"
    if leftover.exists():
        for entry in json.loads(leftover.read_text()):
            if pid_alive(entry["pid"]) and process_start_ticks(entry["pid"]) == entry["start_ticks"]:
                stop_pid(entry["pid"])
                console.print(
                    f"[yellow]stopped a leftover {entry['name']} (pid {entry['pid']}) from an earlier run[/]"
                )
        leftover.unlink()
    shutil.rmtree(work / "chdb", ignore_errors=True)  # every demo starts from an empty history


def _metrics_server(registry: CollectorRegistry, port: int, console: Console) -> tuple[Any, str]:
    try:
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError:
        if port == 0:
            raise
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        console.print(f"[yellow]port {port} is in use; /metrics moved to {server.server_address[1]}[/]")
    return server, f"http://127.0.0.1:{server.server_address[1]}/metrics"


def run_demo(console: Console, options: DemoOptions, state_dir: Path, json_output: bool) -> int:
    work = state_dir / "demo"
    try:
        _preflight(work, console)
    except DemoError as exc:
        console.print(f"[red]demo:[/red] {exc}")
        return 2
    started = time.monotonic()
    with _log_to_file(work / "demo.log"):
        return _run_demo(console, options, work, started, json_output)


@contextlib.contextmanager
def _log_to_file(path: Path) -> Iterator[None]:
    """Operational warnings (a slow checkpoint, a consumer error) go to ``path``, not over
    the live view; they are counted in /metrics too (ccpulse_slow_checkpoints_total)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("ccpulse", "streams")]  # the package logs as ccpulse.*
    propagate = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, before in zip(loggers, propagate, strict=True):
            logger.removeHandler(handler)
            logger.propagate = before
        handler.close()


def _run_demo(console: Console, options: DemoOptions, work: Path, started: float, json_output: bool) -> int:
    broker = TansuBroker(work / "tansu").start()
    (work / "pids.json").write_text(
        json.dumps([{"name": "Tansu", "pid": broker.pid, "start_ticks": process_start_ticks(broker.pid)}])
    )
    store = ChdbStore(work / "chdb", database="ccpulse")
    stop, sim_stop = threading.Event(), threading.Event()
    progress = Progress(started=started)
    threads: list[threading.Thread] = []
    server = None
    try:
        bootstrap = broker.bootstrap_servers
        apply_topics(bootstrap)
        migrate(store)
        codec = Codec.pinned(known_regions=region_codes())
        registry = CollectorRegistry()
        tansu = WorkerOptions(idempotent_producer=False, checkpoint_interval_s=2.0)
        worker = KpiWorker(client_config(bootstrap), codec, tansu, observer=make_observer(registry))
        registry.register(KpiCollector(lambda: list(worker.states.values()), worker.lock))
        server, metrics_url = _metrics_server(registry, options.metrics_port, console)
        sink_config = client_config(bootstrap) | {"group.id": "ccpulse-history", "session.timeout.ms": 6000}
        sink = HistorySink(sink_config, store, codec, max_wait_s=1.0)
        start = options.start or datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)

        def on_progress(messages: int, simulated_ms: int) -> None:
            progress.messages, progress.simulated_ms = messages, simulated_ms

        def simulate() -> None:
            try:
                run(regions=options.regions, duration_s=options.duration_s * options.speed, seed=1,
                    out="kafka", bootstrap_servers=bootstrap, start=start, speed=options.speed,
                    idempotent=False, on_progress=on_progress, stop=sim_stop.is_set)  # fmt: skip
            except Exception as exc:  # shown in the summary; the demo still stops cleanly
                progress.error = f"simulator: {exc}"
            finally:
                progress.done = True

        threads = [
            threading.Thread(target=worker.run, args=(stop,), name="worker", daemon=True),
            threading.Thread(target=sink.run, args=(stop,), name="history-sink", daemon=True),
            threading.Thread(target=simulate, name="simulator", daemon=True),
        ]
        for thread in threads:
            thread.start()
        if not json_output:
            console.print(f"Tansu on {bootstrap} (pid {broker.pid}); /metrics on {metrics_url}; Ctrl-C stops")
        _watch(console, worker, progress, metrics_url, options, json_output)
        sim_stop.set()
        threads[2].join(timeout=60)
        _catch_up(worker)
        summary = _summary(worker)
    except KeyboardInterrupt:
        sim_stop.set()
        summary = {}
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if server is not None:
            server.shutdown()
            server.server_close()
    report = work / "report.html"
    try:
        render(store, start.date(), report)
    finally:
        store.close()
        tansu_rss_mb = _peak_rss_mb(broker.pid)
        broker.stop()
        (work / "pids.json").unlink(missing_ok=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary |= {
        "ok": progress.error is None and bool(summary), "error": progress.error, "report": str(report),
        "seconds": round(time.monotonic() - started, 1), "log": str(work / "demo.log"),
        "time_to_first_kpi_s": None if progress.first_kpi_s is None else round(progress.first_kpi_s, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "max_rss_mb": round(usage.ru_maxrss / 1024),
        "tansu_peak_rss_mb": tansu_rss_mb, "left_running": pid_alive(broker.pid),
    }  # fmt: skip
    _print_summary(console, summary, json_output)
    return 0 if summary["ok"] and not summary["left_running"] else 1


def _watch(console: Console, worker: KpiWorker, progress: Progress, url: str, options: DemoOptions,
           json_output: bool) -> None:  # fmt: skip
    deadline = progress.started + options.duration_s
    live = (
        Live(console=console, refresh_per_second=2, transient=False)
        if options.live and not json_output
        else None
    )
    if live is not None:
        live.start()
    try:
        while time.monotonic() < deadline and not progress.done:
            if progress.first_kpi_s is None and _has_kpi(worker):
                progress.first_kpi_s = time.monotonic() - progress.started
            if live is not None:
                live.update(_view(worker, progress, url, options))
            elif not json_output and int(time.monotonic()) % 10 == 0:
                console.print(f"{time.monotonic() - progress.started:.0f} s: {worker.stats.events:,} events")
            time.sleep(0.5)
    finally:
        if live is not None:
            live.stop()


def _has_kpi(worker: KpiWorker) -> bool:
    with worker.lock:
        by_channel, _, _ = _aggregate(list(worker.states.values()), "ROLLING_60M")
    return any(kpi_result(counters).service_level is not None for counters in by_channel.values())


def _catch_up(worker: KpiWorker, quiet_s: float = 3.0, limit_s: float = 60.0) -> None:
    """Wait until the worker has read what the simulator wrote (no new events for ``quiet_s``)."""
    deadline, last, last_change = time.monotonic() + limit_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        if worker.stats.events != last:
            last, last_change = worker.stats.events, time.monotonic()
        elif time.monotonic() - last_change >= quiet_s:
            return
        time.sleep(0.2)


def _peak_rss_mb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def _print_summary(console: Console, summary: dict[str, Any], json_output: bool) -> None:
    if json_output:
        print(json.dumps(summary, default=str))
        return
    table = Table(title="demo summary (since the start of the run)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("regions_with_traffic", "offered", "answered", "first_line_resolution",
                "first_line_resolution_met", "csat_top_box", "csat_top_box_met", "time_to_first_kpi_s",
                "seconds", "cpu_seconds", "max_rss_mb", "tansu_peak_rss_mb"):  # fmt: skip
        value = summary.get(key)
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(summary_channel_table(summary.get("per_channel", {})))
    console.print(f"report: {summary['report']}; log: {summary.get('log')}; "
                  "everything the demo started is stopped."
                  + (f" [red]{summary['error']}[/red]" if summary.get("error") else ""))  # fmt: skip
