"""The KPI job on Quix Streams (3.28), for the stream-engine measurement of issue 16.

    python bench/quix_kpi_job.py --bootstrap-servers H:P --group G [--expect N | --idle-exit S]
        [--commit-interval 1.0] [--snapshot-topic T] [--latency-out FILE]

Shape: one ``Application`` (``processing_guarantee="exactly-once"``, RocksDB state,
changelog topics) over the three co-partitioned input topics merged with
``StreamingDataFrame.concat`` (Quix then aligns the topics' partitions by message
timestamp). One stateful ``apply`` decodes each message with the project's codec
(``streams/wire/codec.py``; bad input becomes a dead letter), applies it with the
project's own code (``streams.jobs.kpi_apply.apply_contact / apply_survey /
apply_agent``, hence ``streams.domain.intervals.step``: no KPI rule is rewritten
here) and returns the MINUTE snapshots it changed, encoded with the codec and keyed
``region|channel|MINUTE|start`` like the current worker's (``streams.jobs.windows``);
``to_topic`` writes them (and dead letters) in the same transaction as the state.

Keying: Quix state is per message key, and the producers key every input by region
(DESIGN.md section 1), so the state is per region, with no ``group_by``. The current
worker keeps one state per partition number instead; Quix has no partition-scoped
store, and re-keying by partition would need a repartition topic (every event written
and read twice). Per region is also the natural grain of the KPIs: a contact's KPIs
belong to its handling region, and every event of a contact after ARRIVED is keyed by
that region; an overflowed contact's ARRIVED (keyed by its home region) leaves an
ARRIVED-only progress under the home region, exactly as in the current worker when
the two regions hash to different partitions. What changes with the grain: the
watermarks (allowed lateness, late-event counts) are per region instead of per
partition, so a region that runs behind others of its partition is not judged late
against them; and the state is stored as many small records (one per contact, bucket,
agent, ...) rather than one object, because Quix serialises a value on every ``set``
(``streams`` code reads and writes it through ``bench/quix_state_view.py``).

Snapshots: one MINUTE snapshot per changed bucket per message (a per-message engine
has no batch to coalesce over; the current worker emits once per consume batch), with
version = the region's message count (exactly-once state makes it grow along the topic
per key, across restarts). Not built here, and done by the current worker: ROLLING_15M /
ROLLING_60M / TODAY snapshots, cc.queue.state, routing decisions, eviction (Quix 3.28
has event-time TTL on writes; not wired). So this job does less than the full worker;
the benchmark also measures the worker with routing off.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from peak_rss import peak_rss_kb  # bench/ is on sys.path
from quix_state_view import UnitOfWork, load_meta, region_view, store_meta  # bench/ is on sys.path
from quixstreams import Application, message_context
from quixstreams.models.serializers import Serializer

from streams.domain.errors import InvalidEvent
from streams.domain.events import AgentEvent, ContactEvent, SurveyEvent
from streams.domain.kpi import MINUTE_MS
from streams.domain.regions import region_codes
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.jobs import kpi_apply as kpi
from streams.jobs.kpi_apply import KpiConfig
from streams.jobs.windows import SeriesView, snapshot_key, snapshot_record
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC, INPUT_TOPICS, SNAPSHOT_TOPIC

# concat aligns the topics by timestamp: a partition whose buffer ran empty holds back its whole
# partition group until a fetch answers for it, and Quix refills its buffer with
# consume(10000, consumer_poll_timeout), which on live traffic waits the whole timeout (default
# 1 s; seen in a profile: 27 calls of ~1 s for 10k live events). Lowered for live traffic; on the
# loaded machine where this was tried the latency stayed in seconds (CPU-starved), so the effect
# of these two settings alone is not measured
FETCH_WAIT_MS = 10
POLL_TIMEOUT_S = 0.05


class _Payload(Serializer):
    """Outputs are (topic, key, encoded value): the value is already Avro from the codec."""

    def __call__(self, value: Any, ctx: Any) -> bytes:
        return value[2]  # type: ignore[no-any-return]


class KpiProcessor:
    """The stateful step: (raw message, State of its region) -> the outputs it causes."""

    def __init__(self, codec: Codec, snapshot_topic: str, config: KpiConfig | None = None) -> None:
        self.codec, self.snapshot_topic = codec, snapshot_topic
        self.config = config or KpiConfig()
        self.uow = UnitOfWork()
        self.view = region_view(self.uow)
        self.events = 0
        self.first_at = self.last_at = 0.0
        self.latency: list[float] = []  # event time -> applied in state (s), live runs only
        self.sample_latency = False

    def __call__(self, value: bytes, state: Any) -> list[tuple[str, str, bytes]]:
        ctx = message_context()
        topic = ctx.topic
        now = time.time()
        if not self.first_at:
            self.first_at = now
        self.events += 1
        try:
            event = self.codec.decode(topic, value)
        except InvalidEvent as exc:
            self.last_at = now
            return [self._dead_letter(ctx, value, exc)]
        view, uow, config = self.view, self.uow, self.config
        uow.begin(state)
        seq = load_meta(view, state) + 1
        if type(event) is ContactEvent:
            kpi.apply_contact(view, event, config)
        elif type(event) is SurveyEvent:
            kpi.apply_survey(view, event, config)
        elif type(event) is AgentEvent:
            kpi.apply_agent(view, event)
        outputs = self._snapshots(seq)
        uow.commit()
        store_meta(view, state, seq)
        view.dirty_series.clear()
        self.last_at = time.time()
        if self.sample_latency:
            self.latency.append(self.last_at - event.event_time_ms / 1000)
        return outputs

    def _snapshots(self, version: int) -> list[tuple[str, str, bytes]]:
        view = self.view
        if not view.dirty_minutes:
            return []
        outputs = []
        emitted_at_ms = int(time.time() * 1000)
        for region, channel, minute in sorted(view.dirty_minutes):
            counters = view.minutes.get((region, channel, minute))
            if counters is None:
                continue
            series = SeriesView(region, channel, "MINUTE", minute, minute + MINUTE_MS, dict(counters))
            record = snapshot_record(series, version, emitted_at_ms)
            key = snapshot_key(region, channel, "MINUTE", minute)
            outputs.append((self.snapshot_topic, key, self.codec.encode(SNAPSHOT_TOPIC, record)))
        view.dirty_minutes.clear()
        return outputs

    def _dead_letter(self, ctx: Any, value: bytes, exc: InvalidEvent) -> tuple[str, str, bytes]:
        record = {
            "original_topic": ctx.topic, "original_partition": ctx.partition, "original_offset": ctx.offset,
            "original_key": None, "original_value": value or b"", "reason": exc.reason,
            "detail": exc.detail, "failed_at_ms": int(time.time() * 1000), "consumer": "quix-kpi",
        }  # fmt: skip
        record = DeadLetterSanitiser(self.codec, None).sanitise(record)
        return (DEAD_LETTER_TOPIC, ctx.topic, self.codec.encode(DEAD_LETTER_TOPIC, record))


def build_app(
    bootstrap: str, group: str, state_dir: str, commit_interval: float, snapshot_topic: str,
    auto_offset_reset: str = "earliest",
) -> tuple[Application, KpiProcessor]:  # fmt: skip
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset=auto_offset_reset,  # type: ignore[arg-type]
        commit_interval=commit_interval,
        state_dir=state_dir,
        processing_guarantee="exactly-once",
        loglevel="WARNING",
        consumer_poll_timeout=POLL_TIMEOUT_S,
        consumer_extra_config={
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
        },
        producer_extra_config={"linger.ms": 5, "compression.type": "lz4"},
    )
    codec = Codec.pinned(known_regions=region_codes())
    processor = KpiProcessor(codec, snapshot_topic)
    inputs = [app.topic(name, key_deserializer="str", value_deserializer="bytes") for name in INPUT_TOPICS]
    outputs = {
        name: app.topic(name, key_serializer="str", value_serializer=_Payload())
        for name in (snapshot_topic, DEAD_LETTER_TOPIC)
    }
    sdf = app.dataframe(inputs[0])
    for topic in inputs[1:]:
        sdf = sdf.concat(app.dataframe(topic))
    sdf = sdf.apply(processor, stateful=True, expand=True)
    sdf.to_topic(lambda value, _key, _ts, _headers: outputs[value[0]], key=lambda value: value[1])
    return app, processor


def _watchdog(app: Application, processor: KpiProcessor, expect: int | None, idle_exit_s: float) -> None:
    """Stop the app when ``expect`` events are in, or ``idle_exit_s`` after the last one."""
    while True:
        time.sleep(0.05)
        if expect is not None and processor.events >= expect:
            break
        if processor.last_at and time.time() - processor.last_at > idle_exit_s:
            break
    app.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--group", default="quix-kpi")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("--snapshot-topic", default="bench.quix.kpi.snapshots")
    parser.add_argument("--expect", type=int, default=None)
    parser.add_argument("--idle-exit", type=float, default=5.0)
    parser.add_argument("--latest", action="store_true", help="start at the end (live latency runs)")
    parser.add_argument("--latency-out", default=None, help="write event time -> applied samples here")
    args = parser.parse_args(argv)
    app, processor = build_app(
        args.bootstrap_servers, args.group, args.state_dir, args.commit_interval, args.snapshot_topic,
        "latest" if args.latest else "earliest",
    )  # fmt: skip
    processor.sample_latency = args.latency_out is not None
    threading.Thread(
        target=_watchdog, args=(app, processor, args.expect, args.idle_exit), daemon=True
    ).start()
    app.run()
    if args.latency_out:
        Path(args.latency_out).write_text(json.dumps(processor.latency))
    result = {
        "events": processor.events, "t_first": processor.first_at, "t_last": processor.last_at,
        "max_rss_kb": peak_rss_kb(),
    }  # fmt: skip
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
