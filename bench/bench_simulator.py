"""Simulator throughput: events generated per second to a file, as fast as possible.

    .venv/bin/python bench/bench_simulator.py [--hours 24] [--workers 2] [--regions ...] [--kafka] [--json]

Runs the full path of ``streams.simulator.run`` (arrivals, queueing engine, Avro
encoding, framing, file writes) over a Monday (UTC) for all 67 regions, a whole
day because a month is what the target is about and shards are balanced per day; in
one process and with the regions sharded over ``--workers`` processes
(streams/simulator/parallel.py, default: one per core); and in the same run the
stages alone and the raw ceiling: writing the same pre-encoded records to a file.
Prints events/s and the ratio to the ceiling.
With --kafka it also starts a local Apache Kafka (streams.services) and measures
the same run into it (acks=all, lz4, flushed).
Target (issue 3): >= 200k events/s to file, so a month (~30 M events) takes minutes.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from streams.simulator import SimConfig, Simulation, run
from streams.simulator.run import DEFAULT_START
from streams.simulator.sinks import FileSink

TARGET = 200_000


def timed(func):  # type: ignore[no-untyped-def]
    gc.collect()
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def measure_kafka(
    regions: tuple[str, ...] | None, duration_s: float, seed: int, start, expected: int
) -> float:  # type: ignore[no-untyped-def]
    from streams.services.kafka import KafkaCluster
    from streams.wire.topic_admin import apply_topics

    with tempfile.TemporaryDirectory() as tmp:
        cluster = KafkaCluster(Path(tmp), nodes=1).start()
        try:
            apply_topics(cluster.bootstrap_servers)
            summary, seconds = timed(
                lambda: run(
                    regions=regions,
                    duration_s=duration_s,
                    seed=seed,
                    out="kafka",
                    bootstrap_servers=cluster.bootstrap_servers,
                    start=start,
                )
            )
        finally:
            cluster.stop()
    assert summary.messages == expected
    return summary.messages / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (from Monday 00:00 UTC)")
    parser.add_argument("--regions", default="", help="comma-separated codes (default: all 67)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: cores)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--kafka", action="store_true", help="also measure the run into a local Apache Kafka")
    args = parser.parse_args()
    regions = tuple(r for r in args.regions.split(",") if r) or None
    start = DEFAULT_START  # Monday 00:00 UTC
    duration_s = args.hours * 3600
    config = SimConfig(regions=regions)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sim.bin"
        summary, full_s = timed(
            lambda: run(
                regions=regions, duration_s=duration_s, seed=args.seed, out="file", path=path, start=start
            )
        )
        n = summary.messages
        sharded, sharded_s = timed(
            lambda: run(
                regions=regions,
                duration_s=duration_s,
                seed=args.seed,
                out="file",
                path=Path(tmp) / "sharded.bin",
                start=start,
                workers=args.workers,
            )
        )
        (Path(tmp) / "sharded.bin").unlink()

        sim = Simulation(config, seed=args.seed, start=start, duration_s=duration_s)
        items, engine_s = timed(lambda: [item for batch in sim.batches() for item in batch])
        frames, frame_s = timed(lambda: [sim.encoder.frame(item) for item in items])
        assert len(items) == n

        def write_raw() -> None:
            with FileSink(Path(tmp) / "raw.bin") as sink:
                for i in range(0, len(frames), 2048):
                    sink.write_frames(frames[i : i + 2048])

        _, raw_s = timed(write_raw)
        assert (Path(tmp) / "raw.bin").read_bytes() == path.read_bytes()  # same bytes as the full run

    if args.kafka:
        kafka_rate = measure_kafka(regions, duration_s, args.seed, start, n)
    rows = [
        ("full run to file (arrivals+engine+encode+write)", n / full_s),
        (f"full run to file, {args.workers} processes (regions sharded)", sharded.messages / sharded_s),
        ("engine alone (raw items)", n / engine_s),
        ("encode + frame alone", n / frame_s),
        ("raw ceiling: write pre-encoded records", n / raw_s),
    ]
    if args.kafka:
        rows.append(("full run to Apache Kafka (acks=all)", kafka_rate))
    result = {
        "events": n,
        "events_sharded_run": sharded.messages,
        "workers": args.workers,
        "contacts": summary.contacts,
        "simulated_hours": args.hours,
        "regions": len(sim.regions),
        "events_per_s": {name: round(rate) for name, rate in rows},
        "full_vs_raw_ceiling": round(rows[0][1] / rows[4][1], 4),
        "sharded_vs_raw_ceiling": round(rows[1][1] / rows[4][1], 4),
        "target_events_per_s": TARGET,
        "month_minutes_one_process": round(30_000_000 / rows[0][1] / 60, 1),
        "month_minutes_sharded": round(30_000_000 / rows[1][1] / 60, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    table = Table(
        title=f"simulator: {n:,} events, {summary.contacts:,} contacts, "
        f"{args.hours:g} h x {len(sim.regions)} regions"
    )
    table.add_column("path")
    table.add_column("events/s", justify="right")
    table.add_column("vs raw ceiling", justify="right")
    for name, rate in rows:
        table.add_row(name, f"{rate:,.0f}", f"{rate / rows[4][1]:.1%}")
    console = Console()
    console.print(table)
    for name, rate, minutes in (
        ("one process", rows[0][1], result["month_minutes_one_process"]),
        (f"{args.workers} processes", rows[1][1], result["month_minutes_sharded"]),
    ):
        verdict = "meets" if rate >= TARGET else "misses"
        console.print(
            f"{name}: {rate:,.0f} events/s {verdict} the {TARGET:,} target; "
            f"a month (~30 M events) in {minutes} min"
        )


if __name__ == "__main__":
    main()
