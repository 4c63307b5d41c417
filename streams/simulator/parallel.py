"""Region-sharded simulation in several processes, for month-sized files in minutes.

With the home-region routing policy, regions do not interact: each region's queues,
agents and customers are its own. ``run_sharded`` splits the regions into ``workers``
groups of about equal volume (by region weight), simulates each group in its own
process with a seed derived from (seed, shard, workers), writes each group to its own
part file and joins the parts into ``path`` (and the ground-truth CSVs into
``truth_path``).

What a reader can rely on:
- deterministic for (config, seed, start, duration, workers); a different worker count
  is a different, equally valid draw of the same traffic model;
- every region is simulated by exactly one shard, so each region's (each Kafka key's)
  messages keep their event-time order; across regions the file is shard after shard,
  not globally time-sorted (Kafka orders per partition only, too);
- event ids, contact ids and customer references are unique across shards (the derived
  seeds differ).

Routing policies that move contacts between regions need one engine: ``run`` with
``workers=1``.
"""

from __future__ import annotations

import copyreg
import hashlib
import multiprocessing
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from streams.domain.regions import Region
from streams.simulator.config import Faults, SimConfig
from streams.simulator.summary import RunSummary


# SimConfig holds read-only mappings; a worker process gets them as plain copies.
def _proxy(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


copyreg.pickle(MappingProxyType, lambda m: (_proxy, (dict(m),)))

_progress: Any = None  # per process: the shared array (messages, simulated ms) x shard


def shard_seed(seed: int, shard: int, shards: int) -> int:
    """A 48-bit seed per shard; ``shards == 1`` keeps the seed itself."""
    if shards == 1:
        return seed
    digest = hashlib.sha256(f"ccpulse-shard/{seed}/{shard}/{shards}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def shard_regions(regions: Sequence[Region], shards: int) -> list[tuple[str, ...]]:
    """Regions in ``shards`` groups of about equal weight (largest first onto the lightest group)."""
    if not 1 <= shards <= len(regions):
        msg = f"workers={shards}: expected 1 to {len(regions)} (one region per worker at most)"
        raise ValueError(msg)
    groups: list[list[Region]] = [[] for _ in range(shards)]
    loads = [0.0] * shards
    for region in sorted(regions, key=lambda r: (-r.weight, r.code)):
        lightest = min(range(shards), key=lambda i: (loads[i], i))
        groups[lightest].append(region)
        loads[lightest] += region.weight
    return [tuple(r.code for r in group) for group in groups]


def _init(progress: Any) -> None:
    global _progress  # noqa: PLW0603 - one shared array per worker process
    _progress = progress


def _shard(index: int, run_one: Callable[..., RunSummary], kwargs: dict[str, Any]) -> RunSummary:
    def report(messages: int, simulated_ms: int) -> None:
        _progress[2 * index] = messages
        _progress[2 * index + 1] = simulated_ms

    return run_one(on_progress=report, **kwargs)


def run_sharded(
    *,
    regions: tuple[Region, ...],
    workers: int,
    duration_s: float,
    seed: int,
    path: Path,
    start: datetime | None,
    faults: Faults,
    config: SimConfig,
    truth_path: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    run_one: Callable[..., RunSummary],
) -> RunSummary:
    """``run_one`` simulates one shard in a worker process (run.run, passed in by run.py: this
    module does not import run.py, which imports it); it must be a module-level function."""
    groups = shard_regions(regions, workers)
    parts = [path.with_name(f"{path.name}.part{i}") for i in range(workers)]
    truths = [None if truth_path is None else truth_path.with_name(f"{truth_path.name}.part{i}")
              for i in range(workers)]  # fmt: skip
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent (rich progress)
    progress = context.Array("q", 2 * workers, lock=False)
    began = time.perf_counter()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.25):
            if on_progress is not None:
                values = list(progress)
                on_progress(sum(values[0::2]), min(values[1::2]))

    poller = threading.Thread(target=poll, name="shard-progress", daemon=True)
    poller.start()
    try:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(progress,))
        with pool:
            futures = [
                pool.submit(
                    _shard,
                    i,
                    run_one,
                    {
                        "regions": groups[i],
                        "duration_s": duration_s,
                        "seed": shard_seed(seed, i, workers),
                        "out": "file",
                        "path": parts[i],
                        "start": start,
                        "faults": faults,
                        "config": replace(config, regions=groups[i]),
                        "truth_path": truths[i],
                    },
                )
                for i in range(workers)
            ]
            summaries = [f.result() for f in futures]
        _join(parts, path, header=False)
        if truth_path is not None:
            _join([t for t in truths if t is not None], truth_path, header=True)
    finally:
        done.set()
        poller.join()
        for part in [*parts, *(t for t in truths if t is not None)]:
            part.unlink(missing_ok=True)
    by_topic: Counter[str] = Counter()
    for s in summaries:
        by_topic.update(s.by_topic)
    messages = sum(s.messages for s in summaries)
    if on_progress is not None:
        on_progress(messages, int(max(s.simulated_s for s in summaries) * 1000))
    return RunSummary(
        messages=messages,
        by_topic=dict(by_topic),
        contacts=sum(s.contacts for s in summaries),
        simulated_s=max(s.simulated_s for s in summaries),
        wall_s=time.perf_counter() - began,
        malformed=sum(s.malformed for s in summaries),
    )


def _join(parts: list[Path], target: Path, *, header: bool) -> None:
    """Concatenate part files; with ``header``, keep only the first part's first line (CSV)."""
    with target.open("wb") as out:
        for i, part in enumerate(parts):
            with part.open("rb") as src:
                if header and i > 0:
                    src.readline()
                shutil.copyfileobj(src, out, 8 << 20)
