"""Sustained load: `--factor` x the reference peak hour for `--minutes` through 1, then 2 KPI workers.

    .venv/bin/python bench/bench_soak.py [--minutes 15] [--factor 10] [--workers 1,2] [--json]
        [--regions RU-MOW,RU-SPE] [--warmup-hours 1] [--malformed 0.001] [--seed 0]
    quick check: --minutes 1 (~8 min on a busy 2-core machine: most of it is the two warm-ups);
    --minutes 1 --warmup-hours 0 takes ~4 min, but then the agents' log-ins at the start of the
    simulation land in the soak and inflate the offered rate by ~40 %.

Reference rate: the busiest UTC hour of a Monday for the selected regions (all 67 by
default) by the arrival model's expected contacts (08:00-09:00 UTC, 11:00 in Moscow),
and the events (contact + agent + survey) a default simulation emits in that hour,
counted from a run that starts 2 h earlier so contacts and shifts are under way.

Load: the same simulator with `contacts_per_month` x factor (agents are staffed for
it), from `--warmup-hours` before that peak hour, with `--malformed` damaged messages.
Event times are SHIFTED to the wall clock instead of pacing the historical Monday or
running the peak hour at speed 10: at speed 10, 15 wall minutes would be 2.5 h of event
time (mostly past the peak) and event-time lag would grow 10x faster than real time;
with the historical timestamps, lag against the wall clock would be days, and 7-day
topic retention could delete the input. So the peak hour is paced at speed 1.0 with
event time = wall clock at produce (absolute pacing, 20 ms batches), and "wall clock
minus newest event time" in a worker is a true lag in seconds.

Per phase (N workers, a fresh single-node Apache Kafka on loopback, topics applied):
1. N `ccpulse worker` processes in one group, /metrics on free loopback ports; wait
   until the group is stable with every member assigned.
2. Warm-up: the hour(s) before the peak produced unpaced with event times in the past
   hour, so the workers start the soak with a full 60-minute state (minute buckets
   and contacts in progress), as a long-running worker would. Its catch-up rate is
   the workers' throughput in this run. The soak starts when the group's committed
   offsets reach the end; live event times then jump forward by the catch-up time
   (KPI values of contacts across the jump show longer waits; the load is unchanged).
3. Soak: `--minutes` of the peak, paced. Every 5 s: each worker's /metrics
   (`ccpulse_consumer_lag_seconds` = wall clock - newest event time consumed,
   `ccpulse_events_in_total`, the event -> visible histogram, the scrape's own time),
   the group's lag in messages (committed offsets vs high watermarks; workers commit
   at their 2 s checkpoints, so ~2 s of input is the floor), VmRSS of each process.
4. Drain, final scrape, RSS (VmRSS and VmHWM = the process's peak), SIGTERM to each
   worker (final checkpoint, JSON summary), dead letters counted on cc.dead-letter vs
   the malformed messages injected, then the raw ceiling on the same messages
   (confluent-kafka consume(10000) + decode, from bench_kpi.py).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from bench_kpi import raw_ceiling
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from soak_probe import Offsets, Scrape, Worker, quantile, start_workers, stop_workers, wait_group_stable

from streams.services.kafka import KafkaCluster
from streams.simulator import Faults, SimConfig, Simulation
from streams.simulator.arrivals import HOUR_MS, ArrivalModel
from streams.simulator.model import MALFORMED, RawItem
from streams.simulator.run import DEFAULT_START, select_regions, start_ms_of, topic_of
from streams.simulator.sinks import KafkaSink
from streams.wire.topic_admin import apply_topics
from streams.wire.topics import DEAD_LETTER_TOPIC, INPUT_TOPICS

console = Console(stderr=True)
SAMPLE_S = 5.0


@dataclass(frozen=True)
class Peak:
    hour_utc: int
    start_ms: int  # on DEFAULT_START's Monday
    expected_contacts: float
    events: int
    by_topic: dict[str, int]

    @property
    def events_per_s(self) -> float:
        return self.events / 3600


def reference_peak(regions: tuple[str, ...] | None, seed: int) -> Peak:
    model = ArrivalModel(SimConfig(regions=regions, dispersion=None), select_regions(regions), seed)
    day_ms = start_ms_of(DEFAULT_START)
    expected = [float(model.bin_rates(day_ms + h * HOUR_MS).sum()) for h in range(24)]
    hour = int(np.argmax(expected))
    start_ms = day_ms + hour * HOUR_MS
    sim = Simulation(SimConfig(regions=regions), seed, DEFAULT_START + timedelta(hours=hour - 2), 3 * 3600.0)
    counts: Counter[str] = Counter()
    for item in chain.from_iterable(sim.batches()):
        if item[0] >= start_ms + HOUR_MS:
            break
        if item[0] >= start_ms:
            counts[topic_of(item)] += 1
    return Peak(hour, start_ms, expected[hour], sum(counts.values()), dict(counts))


class Load(threading.Thread):
    """Warm-up unpaced (event times in the past), then, once `go_live` is set, the peak paced."""

    def __init__(self, bootstrap: str, config: SimConfig, seed: int, peak_ms: int, args: Any) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.config, self.seed, self.peak_ms = bootstrap, config, seed, peak_ms
        self.warmup_ms, self.live_ms = int(args.warmup_hours * HOUR_MS), int(args.minutes * 60_000)
        self.preroll = self.live = self.malformed = 0
        self.started_at = self.live_started_at = self.live_ended_at = 0.0
        self.preroll_done, self.go_live, self.stop = threading.Event(), threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.preroll_done.set()

    def _run(self) -> None:
        start = datetime.fromtimestamp((self.peak_ms - self.warmup_ms) / 1000, UTC)
        sim = Simulation(self.config, self.seed, start, (self.warmup_ms + self.live_ms) / 1000)
        items: Iterator[RawItem] = chain.from_iterable(sim.batches())
        self.started_at = time.time()
        shift = int(self.started_at * 1000) - self.peak_ms  # the warm-up ends now: it is history
        sink, batch, first_live = KafkaSink(self.bootstrap), [], None
        for item in items:
            if item[0] >= self.peak_ms:
                first_live = item
                break
            batch.append(self._shifted(item, shift))
            if len(batch) >= 10_000:
                sink.write_many(map(sim.encoder.encode, batch))
                self.preroll, batch = self.preroll + len(batch), []
        sink.write_many(map(sim.encoder.encode, batch))
        self.preroll += len(batch)
        sink.close()
        self.preroll_done.set()
        while not self.go_live.wait(0.2):
            if self.stop.is_set():
                return
        self.live_started_at = time.time()
        self._paced(sim, chain((first_live,) if first_live else (), items), int(self.live_started_at * 1000))
        self.live_ended_at = time.time()

    def _paced(self, sim: Simulation, items: Iterator[RawItem], live_start_ms: int) -> None:
        shift, end_ms = live_start_ms - self.peak_ms, self.peak_ms + self.live_ms
        sink, due = KafkaSink(self.bootstrap), []
        for item in items:
            if item[0] >= end_ms or self.stop.is_set():
                break
            ahead = (item[0] + shift) / 1000 - time.time()
            if ahead > 0.02:  # what is due within 20 ms goes out together (a produce call each is slow)
                if due:
                    sink.write_many(map(sim.encoder.encode, due))
                    self.live, due = self.live + len(due), []
                self.stop.wait(ahead)
            due.append(self._shifted(item, shift))
        sink.write_many(map(sim.encoder.encode, due))
        self.live += len(due)
        sink.close()

    def _shifted(self, item: RawItem, shift_ms: int) -> RawItem:
        if item[2] == MALFORMED:
            self.malformed += 1
        return (item[0] + shift_ms, *item[1:])


def check_alive(load: Load, workers: list[Worker]) -> None:
    if load.error is not None:
        raise load.error
    for w in workers:
        if w.process.poll() is not None:
            raise RuntimeError(f"worker {w.process.pid} exited: {w.log.read_text()[-2000:]}")


def warm_up(load: Load, workers: list[Worker], offsets: Offsets, progress: Progress) -> dict[str, Any]:
    n = len(workers)
    task = progress.add_task(f"{n} worker(s): warm-up", total=None)
    while True:
        check_alive(load, workers)
        lag = offsets.lag()
        progress.update(task, description=f"{n} worker(s): warm-up {load.preroll:,} produced, lag {lag:,}")
        if load.preroll_done.is_set() and lag == 0:
            break
        time.sleep(0.5)
    seconds = time.time() - load.started_at
    progress.update(task, description=f"{n} worker(s): warm-up {load.preroll:,} caught up in {seconds:.0f} s")
    progress.stop_task(task)
    return {"messages": load.preroll, "seconds": round(seconds, 1),
            "events_per_s": round(load.preroll / seconds) if load.preroll else None}  # fmt: skip


def soak(
    load: Load, workers: list[Worker], offsets: Offsets, progress: Progress, minutes: float
) -> dict[str, Any]:
    n, total = len(workers), minutes * 60
    first = [w.scrape() for w in workers]
    for w in workers:
        w.rss_mb.append(w.memory_mb())
    samples: list[dict[str, Any]] = []
    task = progress.add_task(f"{n} worker(s): soak", total=total)
    load.go_live.set()
    while load.is_alive():
        load.join(SAMPLE_S)
        check_alive(load, workers)
        scrapes = [w.scrape() for w in workers]
        rss = [w.memory_mb() for w in workers]
        for w, value in zip(workers, rss, strict=True):
            w.rss_mb.append(value)
        elapsed = time.time() - load.live_started_at
        # the gauge reads its clock after the collector's locked section, which stops the worker's
        # batches: a slow scrape shows as lag, so the lag minus the scrape's time is kept too
        lags = [s.lag_s.get(INPUT_TOPICS[0], 0.0) for s in scrapes]
        sample = {"t_s": round(elapsed, 1), "lag_s": round(max(lags), 3),
                  "lag_before_scrape_s": round(max(max(0.0, x - s.seconds)
                                                   for x, s in zip(lags, scrapes, strict=True)), 3),
                  "lag_messages": offsets.lag(), "rss_mb": [round(x, 1) for x in rss],
                  "scrape_s": round(max(s.seconds for s in scrapes), 3),
                  "load_1m": os.getloadavg()[0]}  # fmt: skip
        samples.append(sample)
        rate = load.live / elapsed if elapsed > 0 else 0.0
        progress.update(task, completed=min(elapsed, total), description=(
            f"{n} worker(s): soak {rate:,.0f} ev/s, lag {sample['lag_s']:.2f} s"
            f" / {sample['lag_messages']:,} msg, "
            f"RSS {'+'.join(f'{x:.0f}' for x in rss)} MB"))  # fmt: skip
    check_alive(load, workers)
    return drain(load, workers, offsets, first, samples)


def drain(load: Load, workers: list[Worker], offsets: Offsets, first: list[Scrape],
          samples: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    deadline = time.time() + 120
    while offsets.lag() and time.time() < deadline:
        time.sleep(0.5)
    drained_s = time.time() - load.live_ended_at
    last = [w.scrape() for w in workers]
    live_s = load.live_ended_at - load.live_started_at
    consumed = sum(b.events_in - a.events_in for a, b in zip(first, last, strict=True))
    rss = []
    for w in workers:
        end_mb = w.memory_mb()
        rss.append({"start_mb": round(w.rss_mb[0], 1), "end_mb": round(end_mb, 1),
                    "max_sampled_mb": round(max(w.rss_mb), 1), "peak_hwm_mb": round(w.memory_mb("VmHWM"), 1),
                    "growth_mb_per_min": round((end_mb - w.rss_mb[0]) / (live_s / 60), 2)})  # fmt: skip
    return {
        "live_s": round(live_s, 1), "offered": load.live, "offered_per_s": round(load.live / live_s, 1),
        "consumed": int(consumed), "consumed_per_s": round(consumed / live_s, 1),
        "per_worker_consumed": [int(b.events_in - a.events_in) for a, b in zip(first, last, strict=True)],
        "drained_after_s": round(drained_s, 1), "left_behind": offsets.lag(),
        "max_lag_s": max((s["lag_s"] for s in samples), default=None),
        "max_lag_before_scrape_s": max((s["lag_before_scrape_s"] for s in samples), default=None),
        "max_lag_messages": max((s["lag_messages"] for s in samples), default=None),
        "event_to_visible_p50_le_s": quantile(first, last, 0.5),
        "event_to_visible_p99_le_s": quantile(first, last, 0.99),
        "max_scrape_s": max((s["scrape_s"] for s in samples), default=None),
        "mean_load_1m": round(float(np.mean([s["load_1m"] for s in samples])), 2) if samples else None,
        "rss": rss, "dead_letters_metric": sum(s.dead_letters for s in last), "samples": samples,
    }  # fmt: skip


def run_phase(n: int, args: argparse.Namespace, peak: Peak, progress: Progress) -> dict[str, Any]:
    faults = Faults(malformed=args.malformed)
    config = SimConfig(regions=args.regions, contacts_per_month=SimConfig().contacts_per_month * args.factor,
                       faults=faults)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cluster = KafkaCluster(Path(tmp) / "kafka", nodes=1).start()
        workers: list[Worker] = []
        load: Load | None = None
        try:
            bootstrap = cluster.bootstrap_servers
            apply_topics(bootstrap)
            workers = start_workers(bootstrap, n, Path(tmp))
            wait_group_stable(bootstrap, n)
            offsets = Offsets(bootstrap)
            load = Load(bootstrap, config, args.seed, peak.start_ms, args)
            load.start()
            result = {"workers": n, "warm_up": warm_up(load, workers, offsets, progress)}
            result |= soak(load, workers, offsets, progress, args.minutes)
            stop_workers(workers)
            result["injected_malformed"] = load.malformed
            result["dead_letters_topic"] = offsets.size((DEAD_LETTER_TOPIC,))
            result["dead_letters_workers"] = sum(w.summary().get("dead_letters", 0) for w in workers)
            expect = offsets.size(INPUT_TOPICS)
            offsets.close()
            result["raw_ceiling_per_s"] = round(raw_ceiling(bootstrap, expect))
            result["offered_vs_target"] = round(
                result["offered_per_s"] / (peak.events_per_s * args.factor), 3
            )
            return result
        finally:
            if load is not None:
                load.stop.set()
            stop_workers(workers)
            gc.collect()  # clients still referenced by cycles would log connection errors to a stopped broker
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="soak per phase (default 15)")
    parser.add_argument("--factor", type=float, default=10.0, help="x the reference peak hour (default 10)")
    parser.add_argument("--workers", default="1,2", help="worker processes per phase (default 1,2)")
    parser.add_argument("--regions", default=None, help="comma-separated codes (default: all 67)")
    parser.add_argument("--warmup-hours", type=int, default=1, help="history before the soak (0: none)")
    parser.add_argument("--malformed", type=float, default=0.001, help="damaged messages per message")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.regions = tuple(args.regions.split(",")) if args.regions else None
    peak = reference_peak(args.regions, args.seed)
    console.print(
        f"reference peak hour: Monday {peak.hour_utc:02d}:00-{peak.hour_utc + 1:02d}:00 UTC, "
        f"{len(select_regions(args.regions))} regions: {peak.expected_contacts:,.0f} contacts expected, "
        f"{peak.events:,} events simulated = {peak.events_per_s:,.1f} events/s; "
        f"target {args.factor:g}x = {peak.events_per_s * args.factor:,.0f} events/s"
    )
    phases = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:  # fmt: skip
        for n in (int(x) for x in args.workers.split(",")):
            phases.append(run_phase(n, args, peak, progress))
    result = {"reference_peak": {**asdict(peak), "events_per_s": round(peak.events_per_s, 2)},
              "factor": args.factor, "target_per_s": round(peak.events_per_s * args.factor, 1),
              "minutes": args.minutes, "warmup_hours": args.warmup_hours, "phases": phases}  # fmt: skip
    if args.json:
        print(json.dumps(result))
    else:
        Console().print(report(result))


def _opt(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _per_worker(p: dict[str, Any], fmt: Callable[[dict[str, float]], str]) -> str:
    return " | ".join(fmt(r) for r in p["rss"])


ROWS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("soak duration (s)", lambda p: f"{p['live_s']:,.0f}"),
    ("offered events/s (/ target)", lambda p: f"{p['offered_per_s']:,.1f} ({p['offered_vs_target']:.2f})"),
    ("consumed events/s", lambda p: f"{p['consumed_per_s']:,.1f}"),
    ("consumed per worker", lambda p: " | ".join(f"{x:,}" for x in p["per_worker_consumed"])),
    ("max lag, event time (s; /metrics every 5 s)", lambda p: _opt(p["max_lag_s"], ".2f")),
    ("  the same minus the scrape's own time (s)", lambda p: _opt(p["max_lag_before_scrape_s"], ".2f")),
    ("max /metrics scrape time (s)", lambda p: _opt(p["max_scrape_s"], ".2f")),
    ("machine load (1-min load average, mean; 2 cores)", lambda p: _opt(p["mean_load_1m"], ".1f")),
    ("max lag, committed offsets (messages; 2 s checkpoints)", lambda p: _opt(p["max_lag_messages"], ",")),
    ("event -> visible p50 / p99 (bucket bound, s)",
     lambda p: f"{_opt(p['event_to_visible_p50_le_s'], 'g')} / {_opt(p['event_to_visible_p99_le_s'], 'g')}"),
    ("drained after the last event (s)", lambda p: f"{p['drained_after_s']:.1f}"),
    ("RSS after warm-up -> end (MB)",
     lambda p: _per_worker(p, lambda r: f"{r['start_mb']:.0f} -> {r['end_mb']:.0f}")),
    ("RSS max sampled / VmHWM (MB)",
     lambda p: _per_worker(p, lambda r: f"{r['max_sampled_mb']:.0f} / {r['peak_hwm_mb']:.0f}")),
    ("RSS growth in the soak (MB/min)", lambda p: _per_worker(p, lambda r: f"{r['growth_mb_per_min']:+.2f}")),
    ("dead letters (topic / workers) vs injected",
     lambda p: f"{p['dead_letters_topic']:,} / {p['dead_letters_workers']:,} vs {p['injected_malformed']:,}"),
    ("warm-up backlog (messages)", lambda p: f"{p['warm_up']['messages']:,}"),
    ("warm-up produced + caught up (s, events/s)",
     lambda p: f"{p['warm_up']['seconds']:.0f}, {_opt(p['warm_up']['events_per_s'], ',')}"),
    ("raw ceiling, consume + decode (events/s)", lambda p: f"{p['raw_ceiling_per_s']:,}"),
    ("offered / raw ceiling", lambda p: f"{p['offered_per_s'] / p['raw_ceiling_per_s']:.4f}"),
    ("warm-up catch-up / raw ceiling",
     lambda p: _opt(p["warm_up"]["events_per_s"] and p["warm_up"]["events_per_s"] / p["raw_ceiling_per_s"],
                    ".2f")),
)  # fmt: skip


def report(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['factor']:g}x the reference peak ({result['target_per_s']:,.0f} events/s) "
                  f"for {result['minutes']:g} min per phase, Apache Kafka, 1 node")  # fmt: skip
    table.add_column("")
    for p in result["phases"]:
        table.add_column(f"{p['workers']} worker(s)", justify="right")
    for label, cell in ROWS:
        table.add_row(label, *(cell(p) for p in result["phases"]))
    return table


if __name__ == "__main__":
    main()
