"""The stream-engine benchmark (issue 16): every candidate on the same data, in one run.

    .venv/bin/python bench/bench_kpi.py [--hours 4] [--quick] [--rate 5000] [--latency-seconds 30]
                                        [--commit-interval 0.25] [--json] [--paths raw,worker,...]
                                        [--no-latency] [--baseline DIR]

Needs the bench extra (`pip install -e '.[dev,bench]'`). One fresh single-node Apache
Kafka 4.1.1; `--hours` of simulated traffic of all 67 regions (0.1 % duplicates and
late events). Each path is a child process reading every message from the start with its
own group (bench/kpi_paths.py, bench/faust_baseline.py, bench/quix_kpi_job.py):

  raw ceiling          confluent-kafka consume(10000) + codec decode, no processing
  Faust consume-only   faust-streaming agent, stream.take(10000, within=0.1), no work
  Faust full job       bench/faust_kpi_job.py: take_events(10000, within=0.1), the project's KPI
                       code, per-region state written into a Table once per batch, snapshots
  current worker       streams/jobs/worker.py, full job (KPIs, snapshots, queue state, routing,
                       checkpoints); also with routing off (what the Quix job does)
  Quix job             bench/quix_kpi_job.py, exactly-once, at --commit-interval and at Quix's
                       default 5 s
  x2                   two processes of the current worker (with and without routing) / of the
                       Quix job in one group; each process's own events and span in "detail"

Events/s from each process's first to its last processed message (two processes: the
sum of events over the first start to the last end). Faithfulness: the Quix job's and the
Faust job's final MINUTE counters against the current worker's (buckets equal / all).
``--paths`` runs a subset (names: see PATHS); a path that fails or times out is reported
as failed and the others still run. ``--baseline DIR`` also runs the worker paths marked base_
with the code of another source tree (the same bench scripts, ``streams`` from DIR): a change's
before and after in one run. Latency at --rate live events/s for the
current worker and the Quix job (bench/kpi_latency.py). Progress goes to stderr; the
table (or --json) to stdout. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from kpi_children import children, process_cpu_s
from kpi_latency import measure
from kpi_paths import final_minutes, mismatches
from kpi_report import report
from rich.console import Console

from streams.services.kafka import KafkaCluster
from streams.simulator import run
from streams.simulator.config import Faults
from streams.wire.codec import Codec
from streams.wire.topic_admin import apply_topics
from streams.wire.topics import SNAPSHOT_TOPIC

BENCH = Path(__file__).resolve().parent
PATHS = (
    "raw", "faust_consume_only", "faust_full", "worker", "worker_no_routing", "worker_transactions", "quix",
    "quix_default_commit", "worker_x2", "worker_no_routing_x2", "quix_x2",
)  # fmt: skip
# run only when named in --paths: the transactional worker committing every 0.25 s (the default
# until 2026-12-01) instead of the default 0.1 s
EXTRA_PATHS = ("worker_transactions_250ms",)
SLOW_COMMIT = ("--commit-interval", "0.25")
BASELINE_PATHS = ("base_worker", "base_worker_no_routing", "base_worker_x2")  # with --baseline only
FAUST_TOPIC = "bench.faust.kpi.snapshots"
console = Console(stderr=True)


def quix_command(
    bootstrap: str, group: str, state: Path, commit_interval: float, topic: str, *extra: str
) -> list[str]:
    return [
        sys.executable,
        str(BENCH / "quix_kpi_job.py"),
        "--bootstrap-servers",
        bootstrap,
        "--group",
        group,
        "--state-dir",
        str(state),
        "--commit-interval",
        str(commit_interval),
        "--snapshot-topic",
        topic,
        *extra,
    ]


def worker_command(bootstrap: str, group: str, *extra: str, baseline: Path | None = None) -> list[str]:
    """The worker path; ``baseline``: the same with ``streams`` imported from that source tree."""
    return [
        *(["env", f"PYTHONPATH={baseline}"] if baseline is not None else []),
        sys.executable,
        str(BENCH / "kpi_paths.py"),
        "worker",
        "--bootstrap-servers",
        bootstrap,
        "--group",
        group,
        *extra,
    ]


def create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, 12, 1) for n in names])
    for future in futures.values():
        future.result()


def throughput(
    bootstrap: str,
    expect: int,
    tmp: Path,
    ci: float,
    selected: set[str],
    baseline: Path | None = None,
    broker_pid: int | None = None,
) -> tuple[dict[str, dict], dict[str, dict]]:
    e = str(expect)
    q = [f"bench.quix.{i}.snapshots" for i in range(5)]
    create_topics(bootstrap, [*q, FAUST_TOPIC])
    paths: dict[str, dict] = {}
    steps: list[tuple[str, list[list[str]]]] = [
        (
            "raw",
            [
                [
                    sys.executable,
                    str(BENCH / "kpi_paths.py"),
                    "raw",
                    "--bootstrap-servers",
                    bootstrap,
                    "--expect",
                    e,
                ]
            ],
        ),
        (
            "faust_consume_only",
            [
                [
                    sys.executable,
                    str(BENCH / "faust_baseline.py"),
                    "--bootstrap-servers",
                    bootstrap,
                    "--expect",
                    e,
                ]
            ],
        ),
        (
            "faust_full",
            [
                [
                    sys.executable,
                    str(BENCH / "faust_kpi_job.py"),
                    "--bootstrap-servers",
                    bootstrap,
                    "--expect",
                    e,
                    "--snapshot-topic",
                    FAUST_TOPIC,
                ]
            ],
        ),
        ("worker", [worker_command(bootstrap, "bench-worker", "--expect", e)]),
        ("base_worker", [worker_command(bootstrap, "bench-base-worker", "--expect", e, baseline=baseline)]),
        (
            "base_worker_no_routing",
            [worker_command(bootstrap, "bench-base-nr", "--expect", e, "--no-routing", baseline=baseline)],
        ),
        ("worker_no_routing", [worker_command(bootstrap, "bench-worker-nr", "--expect", e, "--no-routing")]),
        ("worker_transactions", [worker_command(bootstrap, "bench-wtx", "--expect", e, "--transactions")]),
        (
            "worker_transactions_250ms",
            [worker_command(bootstrap, "bench-wtx25", "--expect", e, "--transactions", *SLOW_COMMIT)],
        ),
        ("quix", [quix_command(bootstrap, "bench-quix", tmp / "q0", ci, q[0], "--expect", e)]),
        (
            "quix_default_commit",
            [quix_command(bootstrap, "bench-quix-5s", tmp / "q1", 5.0, q[1], "--expect", e)],
        ),
        ("worker_x2", [worker_command(bootstrap, "bench-worker-x2", "--idle-exit", "5") for _ in range(2)]),
        (
            "worker_no_routing_x2",
            [
                worker_command(bootstrap, "bench-worker-nr-x2", "--idle-exit", "5", "--no-routing")
                for _ in range(2)
            ],
        ),
        (
            "base_worker_x2",
            [
                worker_command(bootstrap, "bench-base-x2", "--idle-exit", "5", baseline=baseline)
                for _ in range(2)
            ],
        ),
        (
            "quix_x2",
            [
                quix_command(bootstrap, "bench-quix-x2", tmp / f"q2{i}", ci, q[2], "--idle-exit", "5")
                for i in range(2)
            ],
        ),
    ]
    for name, commands in steps:
        if name not in selected:
            continue
        console.print(f"{name} ...")
        broker_cpu = process_cpu_s(broker_pid)
        try:
            paths[name] = children(commands, cwd=tmp)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            paths[name] = {"error": str(exc)[-300:]}
            console.print(f"  failed: {paths[name]['error']}")
            continue
        # the broker's CPU over the whole step (start-up and idle exit included, so an upper bound)
        paths[name]["broker_cpu_s"] = round(process_cpu_s(broker_pid) - broker_cpu, 2)
        console.print(f"  {paths[name]['events']:,} events, {paths[name]['events_per_s']:,.0f}/s")
        if name == "faust_full":
            console.print(f"  {paths[name]['detail'][0]}")
    return paths, faithfulness(bootstrap, paths, {"quix": q[0], "faust_full": FAUST_TOPIC})


def faithfulness(bootstrap: str, paths: dict[str, dict], topics: dict[str, str]) -> dict[str, dict]:
    """Per job: MINUTE buckets whose final counters equal the current worker's, of all buckets."""
    done = [n for n in topics if "events" in paths.get(n, {})]
    if "events" not in paths.get("worker", {}) or not done:
        return {}
    codec = Codec.pinned()
    ours = final_minutes(bootstrap, SNAPSHOT_TOPIC, codec)
    out = {}
    for name in done:
        theirs = final_minutes(bootstrap, topics[name], codec)
        bad, total = mismatches(ours, theirs), len(set(ours) | set(theirs))
        out[name] = {"equal": total - len(bad), "total": total, "differ": len(bad)}
        console.print(
            f"faithfulness {name}: {len(ours):,} worker / {len(theirs):,} MINUTE keys, {len(bad)} differ"
        )
        for key in bad[:5]:
            console.print(f"    {key}: worker {ours.get(key)} {name} {theirs.get(key)}")
    return out


def latencies(bootstrap: str, tmp: Path, args: argparse.Namespace) -> dict[str, dict]:
    create_topics(bootstrap, ["bench.quix.live.snapshots", "bench.quix.live5.snapshots"])
    out: dict[str, dict] = {}

    def worker_run(
        name: str, group: str, *extra: str, baseline: Path | None = None
    ) -> tuple[str, list[str], Path, str, float]:
        # --idle-exit counts from its assignment too: it must outlast the join wait below
        out_file = tmp / f"{group}.json"
        command = worker_command(bootstrap, group, "--latest", *extra, "--idle-exit", "20",
                                 "--latency-out", str(out_file), baseline=baseline)  # fmt: skip
        return name, command, out_file, SNAPSHOT_TOPIC, 10.0

    def quix_run(
        name: str, group: str, ci: float, topic: str, idle: str
    ) -> tuple[str, list[str], Path, str, float]:
        out_file = tmp / f"{group}.json"
        command = quix_command(bootstrap, group, tmp / group, ci, topic, "--latest", "--idle-exit", idle,
                               "--latency-out", str(out_file))  # fmt: skip
        return name, command, out_file, topic, 25.0

    runs = [
        worker_run("worker", "bench-live-w"),
        worker_run("base_worker", "bench-live-base-w", baseline=args.baseline),
        # as deploy/ runs it: snapshots become readable at each transaction commit (every 0.1 s)
        worker_run("worker_transactions", "bench-live-wtx", "--transactions"),
        worker_run("worker_transactions_250ms", "bench-live-wtx25", "--transactions", *SLOW_COMMIT),
        quix_run("quix", "bench-live-q", args.commit_interval, "bench.quix.live.snapshots", "4"),
        quix_run("quix_default_commit", "bench-live-q5", 5.0, "bench.quix.live5.snapshots", "6"),
    ]
    for name, command, file, topic, join_s in runs:
        if name not in args.selected:
            continue
        console.print(f"latency {name} at {args.rate}/s for {args.latency_seconds} s ...")
        out[name] = measure(command, file, bootstrap, topic, args.rate, args.latency_seconds, join_s)
        console.print(f"  {out[name]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="1 simulated hour, 15 s of latency")
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--commit-interval", type=float, default=0.25, help="the Quix job's (Quix: 5 s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--latency-only", action="store_true", help="only the live latency runs (JSON)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of: %(default)s")
    parser.add_argument("--no-latency", action="store_true", help="skip the live latency runs")
    parser.add_argument(
        "--baseline", type=Path, default=None,
        help="a source tree of the code before a change (e.g. `git archive main | tar -x -C DIR`): adds "
        f"the paths {', '.join(BASELINE_PATHS)} (and base_worker's latency), its `streams` on PYTHONPATH",
    )  # fmt: skip
    args = parser.parse_args()
    args.selected = set(args.paths.split(","))
    known = set(PATHS) | set(EXTRA_PATHS) | (set(BASELINE_PATHS) if args.baseline else set())
    if args.baseline is not None and not (args.baseline / "streams" / "jobs" / "worker.py").exists():
        parser.error(f"--baseline {args.baseline}: no streams/jobs/worker.py there")
    if args.baseline is not None and args.paths == parser.get_default("paths"):
        args.selected |= set(BASELINE_PATHS)
    if args.selected - known:
        parser.error(f"unknown paths: {sorted(args.selected - known)}; known: {', '.join(sorted(known))}")
    if args.quick:
        args.hours, args.latency_seconds = 1.0, 15.0
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cluster = KafkaCluster(tmp / "kafka", nodes=1).start()
        try:
            bootstrap = cluster.bootstrap_servers
            apply_topics(bootstrap)
            if args.latency_only:
                print(json.dumps({"load_before": load_before, "latency": latencies(bootstrap, tmp, args),
                                  "load_after": os.getloadavg()}))  # fmt: skip
                return
            console.print(f"simulating {args.hours} h of 67 regions into Kafka at {bootstrap} ...")
            busy = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)  # 09:00 in Moscow
            faults = Faults(duplicate=0.001, late=0.001, late_max_s=300)
            summary = run(
                duration_s=args.hours * 3600,
                seed=1,
                out="kafka",
                bootstrap_servers=bootstrap,
                start=busy - timedelta(days=1),
                faults=faults,
            )
            console.print(f"{summary.messages:,} messages")
            paths, faithful = throughput(
                bootstrap,
                summary.messages,
                tmp,
                args.commit_interval,
                args.selected,
                args.baseline,
                broker_pid=cluster.pid,
            )
            lat = {} if args.no_latency else latencies(bootstrap, tmp, args)
        finally:
            cluster.stop()
    result = {
        "messages": summary.messages,
        "hours": args.hours,
        "commit_interval_s": args.commit_interval,
        "rate": args.rate,
        "paths": paths,
        "mismatching_minute_buckets": faithful.get("quix", {}).get("differ", -1),  # the earlier key
        "faithfulness": faithful,
        "latency": lat,
        "baseline": str(args.baseline) if args.baseline else None,
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "seconds": round(time.monotonic() - started),
    }
    bases = {
        b: paths[b]["events_per_s"]
        for b in ("raw", "worker", "base_worker", "quix", "faust_full")
        if "events_per_s" in paths.get(b, {})
    }
    for figures in paths.values():
        if "events_per_s" not in figures:
            continue
        for base, rate in bases.items():
            figures[f"vs_{base}"] = round(figures["events_per_s"] / rate, 3)
        figures["events_per_s"] = round(figures["events_per_s"])
    if args.json:
        print(json.dumps(result))
    else:
        report(result, args.commit_interval)


if __name__ == "__main__":
    main()
