"""What cc.queue.state costs the KPI worker, on the in-memory broker (no Kafka, no network).

    .venv/bin/python bench/bench_queue_state.py [--hours 1] [--regions 67] [--seed 7] [--json]
                                                [--no-profile] [--top N] [--profile-out FILE]

Simulates ``--hours`` of traffic of the first ``--regions`` regions (a Monday from 08:00 UTC),
loads it into a ``memory://`` broker and runs the full worker (KPIs, snapshots, queue state,
routing) over it twice with fresh groups: once plain (events/s of wall time and of the worker
thread's CPU time, which a loaded machine disturbs less; queue-state records published)
and once under cProfile on thread CPU time (the share of the worker thread's CPU in queue-state code:
capturing boundaries, computing and publishing their records). Prints one readable line per
run and, with ``--json``, one JSON document. Figures are printed, never asserted; read them
beside ``cat /proc/loadavg`` (the machine is shared).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from streams.domain.regions import region_codes
from streams.engine import memory_broker, memory_cluster
from streams.jobs.worker import KpiWorker, WorkerOptions, WorkerStats
from streams.simulator import run
from streams.wire.codec import Codec
from streams.wire.record_file import read_records
from streams.wire.topic_admin import effective_configs
from streams.wire.topic_contracts import load_topic_contracts

# the functions whose cumulative time is "queue-state code" (none calls another of the set)
QUEUE_STATE_FUNCTIONS = {
    ("routing_local.py", "capture_boundary"),
    ("routing_local.py", "release_boundaries"),
    ("routing_release.py", "_publish"),
}


def _broker(sim: Path) -> tuple[dict[str, str], str, int]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    config = {"bootstrap.servers": f"memory://{name}"}
    admin = memory_broker.AdminClient(config)
    for c in load_topic_contracts().values():
        new = NewTopic(c.name, c.partitions, 1, config=effective_configs(c, 1))
        admin.create_topics([new])[c.name].result()
    producer = memory_broker.Producer(config)
    count = 0
    for topic, key, value, timestamp_ms in read_records(sim):
        producer.produce(topic, value, key, timestamp=timestamp_ms)
        count += 1
    producer.flush(30)
    return config, name, count


def _run_worker(config: dict[str, str], profile: cProfile.Profile | None) -> tuple[WorkerStats, float, float]:
    codec = Codec.pinned(known_regions=region_codes())
    options = WorkerOptions(group_id=f"bench-{uuid.uuid4().hex[:6]}", app_id=f"bench-{uuid.uuid4().hex[:6]}")
    stop = threading.Event()
    deadline = threading.Timer(3600, stop.set)
    deadline.start()
    worker = KpiWorker(config, codec, options)
    started, cpu_started = time.perf_counter(), time.thread_time()
    try:
        if profile is not None:
            profile.enable()
        stats = worker.run(stop, idle_exit_s=1.0)
    finally:
        if profile is not None:
            profile.disable()
        deadline.cancel()
    cpu_s = time.thread_time() - cpu_started  # the worker's own thread (not the table's)
    return stats, time.perf_counter() - started - 1.0, cpu_s  # wall: less the idle second at the end


def _share(profile: cProfile.Profile) -> tuple[float, float]:
    stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in stats.values())
    queue_state = sum(
        ct
        for (path, _, name), (_, _, _, ct, _) in stats.items()
        if (Path(path).name, name) in QUEUE_STATE_FUNCTIONS
    )
    return queue_state, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--regions", type=int, default=67)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="the plain run only")
    parser.add_argument("--top", type=int, default=0, help="print the profile's top functions (tottime)")
    parser.add_argument("--profile-out", default=None, help="write the profile (pstats) to this file")
    args = parser.parse_args()
    regions = tuple(sorted(region_codes()))[: args.regions]
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim.bin"
        start = datetime(2026, 11, 2, 8, tzinfo=UTC)  # a Monday
        run(regions=regions, duration_s=args.hours * 3600, seed=args.seed, out="file", path=sim, start=start)
        results: dict[str, Any] = {"hours": args.hours, "regions": len(regions), "seed": args.seed}
        for mode in ("plain",) if args.no_profile else ("plain", "profiled"):
            config, name, produced = _broker(sim)
            profile = cProfile.Profile(time.thread_time) if mode == "profiled" else None
            try:
                stats, seconds, cpu_s = _run_worker(config, profile)
            finally:
                memory_cluster.forget(name)
            entry: dict[str, Any] = {
                "events": stats.events, "seconds": round(seconds, 2),
                "events_per_s": round(stats.events / seconds), "worker_cpu_s": round(cpu_s, 2),
                "events_per_cpu_s": round(stats.events / cpu_s), "queue_state_records": stats.queue_states,
                "decisions": stats.decisions, "snapshots": stats.snapshots,
            }  # fmt: skip
            if profile is not None:
                queue_state, total = _share(profile)
                entry["queue_state_s"], entry["profiled_s"] = round(queue_state, 2), round(total, 2)
                entry["queue_state_share"] = round(queue_state / total, 3) if total else None
                if args.profile_out:
                    profile.dump_stats(args.profile_out)
                if args.top:
                    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(args.top)
            assert produced == stats.events, (produced, stats.events)
            results[mode] = entry
            line = (
                f"{mode}: {stats.events} events in {seconds:.1f} s = {entry['events_per_s']} events/s "
                f"({cpu_s:.1f} s worker CPU = {entry['events_per_cpu_s']} events per CPU-s); "
                f"{stats.queue_states} queue-state records, {stats.decisions} decisions"
            )
            if profile is not None:
                line += f"; queue-state code {entry['queue_state_share']:.1%} of the profiled time"
            print(line, flush=True)
        results["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
        results["cpus"] = os.cpu_count()
        print(f"loadavg {' '.join(results['loadavg'])}")
        if args.json:
            print(json.dumps(results))


if __name__ == "__main__":
    main()
