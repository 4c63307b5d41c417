"""Backfill of a simulator file with decoding spread over processes.

Decoding and validating Avro (~15-20 µs a message here) is what a month (~30 M
messages) spends most of its time on, and one Python process uses one core. With
``workers`` > 1, worker process i decodes the messages at positions i, i+N, i+2N, ...
of the memory-mapped file (``read_records(path, i, N)``), so every message is decoded
exactly once and keeps its global position (the dead-letter ``original_offset``).

Rows reach the store one of two ways:
- ``opener`` given (a picklable factory of a store, e.g. a server connection): each
  worker opens its own store and inserts its batches itself;
- no opener (chdb: one process owns the embedded database): workers send their batches
  over a queue and this process inserts them; for chdb the workers send them already
  encoded as CSV (``csv_payload``), so this process only runs the INSERTs.

Then the KPI minute buckets are recomputed in SQL, once, here. Progress is the number
of messages decoded, summed over the workers.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.history.backfill import BackfillStats, backfill, load
from streams.history.csv_rows import csv_payload
from streams.history.event_rows import COLUMNS_OF_TABLE
from streams.history.kpi_sql import recompute_kpi_minutes
from streams.history.store import HistoryStore

StoreOpener = Callable[[], HistoryStore]
_state: dict[str, Any] = {}  # per worker process: the progress array and the batch queue


def backfill_file(
    store: HistoryStore,
    path: Path,
    *,
    workers: int = 1,
    registry_url: str | None = None,
    opener: StoreOpener | None = None,
    batch_rows: int = 100_000,
    on_progress: Callable[[int], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackfillStats:
    from streams.domain.regions import region_codes
    from streams.wire.codec import Codec
    from streams.wire.record_file import read_records

    if workers < 1:
        msg = f"workers={workers}: need at least one"
        raise ValueError(msg)
    if workers == 1:
        codec = Codec.for_registry_url(registry_url, known_regions=region_codes())
        messages = ((r.topic, r.value) for r in read_records(path))
        return backfill(store, codec, messages, batch_rows=batch_rows, on_progress=on_progress, now=now)

    ingested_s = int(now().timestamp())
    if opener is None and hasattr(store, "opener"):  # a server: each worker connects itself
        opener = store.opener()
    encode = None
    if opener is None and hasattr(store, "insert_csv"):  # chdb: workers encode, this process inserts
        encode = csv_payload
    context = multiprocessing.get_context("spawn")
    progress = context.Array("q", workers, lock=False)
    batches: Any = None if opener is not None else context.Queue(maxsize=2 * workers)
    stats = BackfillStats()
    started = time.perf_counter()
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(progress, batches))
    with pool:
        futures = [
            pool.submit(_decode_shard, path, i, workers, registry_url, ingested_s, batch_rows, opener, encode)
            for i in range(workers)
        ]
        if batches is not None:
            _insert_from_queue(store, batches, futures, lambda: _report(progress, on_progress))
        while not all(f.done() for f in futures):
            _report(progress, on_progress)
            time.sleep(0.25)
        for future in futures:
            shard = future.result()  # a worker's exception surfaces here
            stats.messages += shard.messages
            stats.dead_letters += shard.dead_letters
            for table, n in shard.rows.items():
                stats.rows[table] = stats.rows.get(table, 0) + n
    _report(progress, on_progress)
    stats.load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    stats.kpi_buckets = recompute_kpi_minutes(store, version=ingested_s)
    stats.kpi_seconds = time.perf_counter() - started
    return stats


def _report(progress: Any, on_progress: Callable[[int], None] | None) -> None:
    if on_progress is not None:
        on_progress(sum(progress))


def _insert_from_queue(
    store: HistoryStore, batches: Any, futures: list[Future[Any]], report: Callable[[], None]
) -> None:
    """Insert what the workers send until each has sent its end marker (None)."""
    ended = 0
    while ended < len(futures):
        try:
            item = batches.get(timeout=0.25)
        except queue.Empty:
            report()
            failed = next((f for f in futures if f.done() and f.exception() is not None), None)
            if failed is not None:
                failed.result()  # raises the worker's error instead of waiting for its marker
            continue
        if item is None:
            ended += 1
            continue
        table, rows, count = item
        if isinstance(rows, str):
            store.insert_csv(f"{store.database}.{table}", COLUMNS_OF_TABLE[table], rows, count)  # type: ignore[attr-defined]
        else:
            store.insert(f"{store.database}.{table}", COLUMNS_OF_TABLE[table], rows)
        report()


def _init(progress: Any, batches: Any) -> None:
    _state["progress"], _state["batches"] = progress, batches


def _decode_shard(
    path: Path,
    shard: int,
    shards: int,
    registry_url: str | None,
    ingested_s: int,
    batch_rows: int,
    opener: StoreOpener | None,
    encode: Callable[[list[tuple[Any, ...]]], str] | None,
) -> BackfillStats:
    from streams.domain.regions import region_codes
    from streams.wire.codec import Codec
    from streams.wire.record_file import read_records

    codec = Codec.for_registry_url(registry_url, known_regions=region_codes())
    progress, batches = _state["progress"], _state["batches"]
    store = opener() if opener is not None else None

    def write(table: str, rows: list[tuple[Any, ...]]) -> None:
        if store is not None:
            store.insert(f"{store.database}.{table}", COLUMNS_OF_TABLE[table], rows)
        else:
            _put(batches, (table, rows if encode is None else encode(rows), len(rows)))

    def report(stats: BackfillStats) -> None:
        progress[shard] = stats.messages

    messages = (
        (shard + k * shards, r.topic, r.value) for k, r in enumerate(read_records(path, shard, shards))
    )
    try:
        return load(codec, messages, ingested_s, batch_rows, write, report)
    finally:
        if batches is not None:
            _put(batches, None)  # the end marker, also after a failure
        if store is not None:
            store.close()


def _put(batches: Any, item: Any) -> None:
    """Put on the bounded queue; give up if the parent process is gone (else a worker whose
    parent was killed would wait on a full queue forever)."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            batches.put(item, timeout=1.0)
            return
        except queue.Full:
            if parent is not None and not parent.is_alive():
                msg = "the backfill process is gone; this worker stops"
                raise RuntimeError(msg) from None
