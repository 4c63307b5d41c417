"""The KPI job on faust-streaming (0.15), for the engine benchmark's "Faust full KPI job" row.

    python bench/faust_kpi_job.py --bootstrap-servers H:P --expect N [--snapshot-topic T]
        [--take 10000] [--within 0.1] [--deadline 600] [--no-uvloop]

Shape: one ``faust.App`` (aiokafka transport, in-memory table store with a changelog
topic), one agent over the three co-partitioned input topics (concurrency 1: issue
#606), ``stream.take_events(take, within)`` batches. Each message is decoded with the
project's codec (``streams/wire/codec.py``; bad input becomes a dead letter) and applied with
the project's own code (``streams.jobs.kpi_apply.apply_contact / apply_survey / apply_agent``)
to a ``PartitionState`` per region (the message key, as in bench/quix_kpi_job.py). Once
per batch, for each region the batch touched: eviction (at most every 2 s, as the
worker's checkpoints do), the changed MINUTE buckets and series windows as snapshot
records (``streams.jobs.windows.dirty_views``, the worker's own emission, version = the
region's position sum) to ``--snapshot-topic``, and the region's state
(``streams.jobs.state.dumps``, with its per-topic positions) written into a Faust Table.

What Faust needs for that (docs/kpi-engine.md, /work/shared/FIELD-NOTES.md):
- A Table write outside per-event iteration raises "Cannot modify table key from outside
  of stream iteration": the changelog partition comes from Faust's *current event*. The
  job sets Faust's private ``faust.streams._current_event`` to an event of the region's
  partition around each write, so the region's state lands in the changelog partition of
  its source partition (the partition this worker owns for it).
- The table is ``value_type=bytes`` with the raw serialiser (a custom codec set after
  Table creation is ignored by recovery); the job (de)serialises with the project's format.
- Positions: a region's state carries ``next_offsets``; a replayed message below them is
  skipped, so a changelog write that got ahead of the committed offsets is not applied
  twice. The other way round (offsets committed past the last table write: Faust acks a
  batch when the loop body returns, the changelog is sent soon after) loses events unless
  the positions drive a seek after recovery; not built (single-process benchmark run).

The changelog and snapshot topics are created here (12 partitions, like the inputs; the
app declares nothing). At ``--expect`` messages read the job flushes its producer, prints
one JSON line (events, t_first / t_last, seconds, events_per_s, max_rss_kb, ...) and
leaves with ``os._exit(0)``: Faust's shutdown is not part of the measurement and is where
such runs hang. A wall-clock ``--deadline`` (a thread, independent of the event loop)
prints ``{"error": ...}`` and exits 2; an exception in the agent exits 1 the same way.
Not done here, done by the worker: routing, cc.queue.state, checkpoint-time recovery tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Sequence
from typing import Any, NoReturn

import faust
from confluent_kafka.admin import AdminClient, NewTopic
from faust import streams as faust_streams
from peak_rss import peak_rss_kb  # bench/ is on sys.path

from streams.domain.errors import InvalidEvent
from streams.domain.events import AgentEvent, ContactEvent, SurveyEvent
from streams.domain.regions import region_codes
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.jobs import kpi_apply as kpi
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.state import PartitionState, dumps, loads
from streams.jobs.windows import dirty_views, snapshot_key, snapshot_record, snapshot_version
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC, INPUT_TOPICS, SNAPSHOT_TOPIC

TABLE = "kpi-state"
EVICT_EVERY_S = 2.0  # the worker evicts at each checkpoint (every 2 s)
Output = tuple[str, bytes, bytes]  # topic, key, value


class KpiBatches:
    """Applies one ``take_events`` batch to the per-region states; what to write and send."""

    def __init__(self, codec: Codec, config: KpiConfig | None = None) -> None:
        self.codec, self.config = codec, config or KpiConfig()
        self.sanitiser = DeadLetterSanitiser(codec, None)
        self.states: dict[str, PartitionState] = {}
        self.read = self.applied = self.skipped = self.dead_letters = self.snapshots = self.table_writes = 0
        self.first_at = self.last_at = 0.0
        self._evicted_at = time.monotonic()
        self.batches, self.seconds = 0, dict.fromkeys(("apply", "emit", "table", "send"), 0.0)

    def timed(self, *marks: float) -> None:
        """Where a batch's time went (perf_counter marks between the steps)."""
        self.batches += 1
        for step, start, end in zip(self.seconds, marks, marks[1:], strict=False):
            self.seconds[step] += end - start

    def state_for(self, region: str, partition: int, table: Any) -> PartitionState:
        state = self.states.get(region)
        if state is None:
            stored = table.get(region)  # recovered from the changelog, if any
            state = loads(stored) if stored is not None else PartitionState(partition)
            self.states[region] = state
        return state

    def apply(self, events: Sequence[Any], table: Any) -> tuple[dict[str, Any], list[Output]]:
        """Regions touched (-> an event of their partition) and the dead letters of the batch."""
        decode, config = self.codec.decode, self.config
        touched: dict[str, Any] = {}
        outputs: list[Output] = []
        for event in events:
            message = event.message
            topic, offset = message.topic, message.offset
            region = message.key.decode() if message.key is not None else ""
            state = self.state_for(region, message.partition, table)
            touched.setdefault(region, event)
            positions = state.next_offsets
            if offset < positions.get(topic, 0):
                self.skipped += 1
                continue
            positions[topic] = offset + 1
            try:
                decoded = decode(topic, message.value)
            except InvalidEvent as exc:
                outputs.append(self._dead_letter(message, exc))
                continue
            if type(decoded) is ContactEvent:
                kpi.apply_contact(state, decoded, config)
            elif type(decoded) is SurveyEvent:
                kpi.apply_survey(state, decoded, config)
            elif type(decoded) is AgentEvent:
                kpi.apply_agent(state, decoded)
            self.applied += 1
        self.read += len(events)
        return touched, outputs

    def emit(self, regions: Sequence[str]) -> list[Output]:
        """Evict (every EVICT_EVERY_S), then the snapshots of what changed in these regions."""
        now = time.monotonic()
        evict = now - self._evicted_at >= EVICT_EVERY_S
        if evict:
            self._evicted_at = now
        encode, now_ms, outputs = self.codec.encode, int(time.time() * 1000), []
        for region in regions:
            state = self.states[region]
            if evict:
                kpi.evict(state, self.config)
            if not state.dirty_minutes and not state.dirty_series:
                continue
            version = snapshot_version(state)
            for view in dirty_views(state):
                key = snapshot_key(view.region, view.channel, view.window, view.start_ms)
                value = encode(SNAPSHOT_TOPIC, snapshot_record(view, version, now_ms))
                outputs.append(("", key.encode(), value))
        self.snapshots += len(outputs)
        return outputs

    def _dead_letter(self, message: Any, exc: InvalidEvent) -> Output:
        record = {
            "original_topic": message.topic, "original_partition": message.partition,
            "original_offset": message.offset, "original_key": message.key,
            "original_value": message.value or b"", "reason": exc.reason, "detail": exc.detail,
            "failed_at_ms": int(time.time() * 1000), "consumer": "faust-kpi",
        }  # fmt: skip
        self.dead_letters += 1
        record = self.sanitiser.sanitise(record)
        return (
            DEAD_LETTER_TOPIC,
            (message.topic or "").encode(),
            self.codec.encode(DEAD_LETTER_TOPIC, record),
        )


def write_table(table: Any, states: dict[str, PartitionState], touched: dict[str, Any]) -> int:
    """Each touched region's state into the Table, with Faust's current event set to an event
    of the region's partition (Faust takes the changelog partition from it)."""
    for region, event in touched.items():
        token = faust_streams._current_event.set(weakref.ref(event))
        try:
            table[region] = dumps(states[region])
        finally:
            faust_streams._current_event.reset(token)
    return len(touched)


def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=30)
    configs = {f"{n}": {"cleanup.policy": "compact"} for n in names if n.endswith("-changelog")}
    wanted = [
        NewTopic(n, partitions, 1, config=configs.get(n, {})) for n in names if n not in metadata.topics
    ]
    if wanted:
        for future in admin.create_topics(wanted).values():
            future.result()


def fail(reason: str, code: int) -> NoReturn:
    """One error line (no '{"events"': the benchmark then reports no result) and out."""
    print(json.dumps({"error": reason}), flush=True)
    sys.stderr.flush()
    os._exit(code)


def _deadline(seconds: float, batches: KpiBatches) -> None:
    time.sleep(seconds)
    fail(f"deadline of {seconds:.0f} s passed with {batches.read} messages read", 2)


def build_app(args: argparse.Namespace, batches: KpiBatches) -> faust.App:
    app_id = args.app_id or f"faust-kpi-{uuid.uuid4().hex[:8]}"
    ensure_topics(
        args.bootstrap_servers, [f"{app_id}-{TABLE}-changelog", args.snapshot_topic, DEAD_LETTER_TOPIC], 12
    )
    app = faust.App(
        app_id,
        broker=f"kafka://{args.bootstrap_servers}",
        store="memory://",
        web_enabled=False,
        stream_buffer_maxsize=20_000,
        broker_max_poll_records=5_000,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,  # created above: Faust would declare the inputs without a partition count
        topic_disable_leader=True,
        topic_partitions=12,
        producer_max_request_size=4_000_000,  # one region's state is one record
        producer_compression_type="lz4",
        producer_linger_ms=5,
    )
    inputs = app.topic(*INPUT_TOPICS, key_serializer="raw", value_serializer="raw")
    table = app.Table(TABLE, partitions=12, key_type=str, value_type=bytes)  # keys JSON, values raw
    snapshots = app.topic(args.snapshot_topic, key_serializer="raw", value_serializer="raw")
    dead = app.topic(DEAD_LETTER_TOPIC, key_serializer="raw", value_serializer="raw")

    @app.agent(inputs, concurrency=1)
    async def kpi_job(stream: Any) -> None:
        try:
            async for events in stream.take_events(args.take, within=args.within):
                if not batches.first_at:
                    batches.first_at = time.time()
                t0 = time.perf_counter()
                touched, outputs = batches.apply(events, table)
                t1 = time.perf_counter()
                outputs += batches.emit(list(touched))
                t2 = time.perf_counter()
                batches.table_writes += write_table(table, batches.states, touched)
                t3 = time.perf_counter()
                if args.send == "await":
                    for topic, key, value in outputs:
                        await (dead if topic else snapshots).send(key=key, value=value)
                else:  # into Faust's producer buffer, as the Table's changelog writes go
                    for topic, key, value in outputs:
                        (dead if topic else snapshots).send_soon(key=key, value=value)
                batches.timed(t0, t1, t2, t3, time.perf_counter())
                batches.last_at = time.time()
                if batches.read >= args.expect:
                    await app.producer.flush()  # the snapshots are readable before the result
                    finish(batches)
        except BaseException as exc:  # noqa: BLE001 -- any end of the agent ends the run: no hang
            traceback.print_exc()
            fail(f"agent failed: {exc!r}", 1)

    return app


def finish(batches: KpiBatches) -> None:
    seconds = max(batches.last_at - batches.first_at, 1e-9)
    result = {
        "events": batches.read, "t_first": batches.first_at, "t_last": batches.last_at,
        "seconds": round(seconds, 3), "events_per_s": batches.read / seconds,
        "max_rss_kb": peak_rss_kb(), "applied": batches.applied,
        "replayed_skipped": batches.skipped, "dead_letters": batches.dead_letters,
        "batches": batches.batches, "seconds_in": {k: round(v, 2) for k, v in batches.seconds.items()},
        "snapshots": batches.snapshots, "table_writes": batches.table_writes, "regions": len(batches.states),
        "loop": type(asyncio.get_event_loop()).__module__.split(".")[0],
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    os._exit(0)  # the measurement is done; Faust's shutdown is not part of it (and can hang)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--snapshot-topic", default="bench.faust.kpi.snapshots")
    parser.add_argument("--take", type=int, default=10_000)
    parser.add_argument("--within", type=float, default=0.1)
    parser.add_argument("--deadline", type=float, default=600.0, help="wall-clock seconds, then exit 2")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument(
        "--send", choices=("await", "soon"), default="await", help="snapshots: topic.send / send_soon"
    )
    parser.add_argument("--app-id", default=None, help="also the group; default: a new one per run")
    args = parser.parse_args(argv)
    batches = KpiBatches(Codec.pinned(known_regions=region_codes()))
    threading.Thread(target=_deadline, args=(args.deadline, batches), daemon=True).start()
    if not args.no_uvloop:
        try:
            import uvloop  # noqa: PLC0415 -- optional: ~15 % for Faust (FIELD-NOTES.md)

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        app = build_app(args, batches)  # creates the changelog and output topics
    except Exception as exc:  # noqa: BLE001 -- one error line, like every other failure here
        traceback.print_exc()
        fail(f"setup failed: {exc!r}", 1)
    try:
        faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()
    except BaseException as exc:  # noqa: BLE001 -- the worker returned or raised: the run failed
        fail(f"faust worker ended: {exc!r}", 1)
    fail(f"faust worker ended after {batches.read} messages", 1)


if __name__ == "__main__":
    main()
