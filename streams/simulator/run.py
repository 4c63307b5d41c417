"""Entry points: ``simulate`` (raw batches), ``records`` (domain events) and ``run`` (to a sink).

``run`` is what ``ccpulse simulate`` will call: it takes plain values (no settings
object), writes to a file or Kafka with the requested pacing and returns a summary.
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from streams.domain.regions import Region, get_region, load_regions
from streams.simulator.arrivals import HOUR_MS
from streams.simulator.config import Faults, SimConfig
from streams.simulator.engine import Engine
from streams.simulator.faults import inject
from streams.simulator.model import AGENT, CONTACT, MALFORMED, SURVEY, HomeRegion, RawItem, RoutingPolicy
from streams.simulator.output import FastEncoder, SimRecord, event_id_prefix, materialise
from streams.simulator.parallel import run_sharded
from streams.simulator.sinks import FileSink, KafkaSink, Pacer
from streams.simulator.summary import RunSummary as RunSummary  # re-exported: callers import it from here
from streams.simulator.truth import COLUMNS, GroundTruth, MinuteKpi, observe
from streams.wire.kafka_config import KafkaSecurity
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

if TYPE_CHECKING:
    from streams.wire.codec import Codec

DEFAULT_START = datetime(2026, 5, 11, tzinfo=UTC)  # a Monday


_TOPIC_OF_KIND = {CONTACT: CONTACT_TOPIC, AGENT: AGENT_TOPIC, SURVEY: SURVEY_TOPIC}


def topic_of(item: RawItem) -> str:
    topic = _TOPIC_OF_KIND.get(item[2])
    return str(item[3]) if topic is None else topic  # a malformed item carries its topic


def select_regions(codes: Sequence[str] | None) -> tuple[Region, ...]:
    if not codes:
        return load_regions()
    return tuple(get_region(code) for code in codes)


def start_ms_of(start: datetime | None) -> int:
    moment = start or DEFAULT_START
    if moment.tzinfo is None:
        msg = f"start {moment.isoformat()} has no time zone; pass an aware datetime (UTC)"
        raise ValueError(msg)
    ms = int(moment.timestamp() * 1000)
    return ms - ms % HOUR_MS


@dataclass
class Simulation:
    """One configured run; iterate ``batches()`` once."""

    config: SimConfig = field(default_factory=SimConfig)
    seed: int = 0
    start: datetime | None = None
    duration_s: float = 3600.0
    routing: RoutingPolicy = field(default_factory=HomeRegion)
    on_truth: Callable[[list[MinuteKpi]], None] | None = None  # finished ground-truth minutes
    codec: Codec | None = None  # whose schema ids frame the messages (None: the pinned ids)

    def __post_init__(self) -> None:
        self.regions = select_regions(self.config.regions)
        self.engine = Engine(self.config, self.regions, self.seed, self.routing)
        self.prefix = event_id_prefix(self.seed)
        self.encoder = FastEncoder(self.prefix, self.codec)
        self.start_ms = start_ms_of(self.start)
        self.end_ms = self.start_ms + int(self.duration_s * 1000)
        self.malformed = 0  # counted by write_all

    def batches(self) -> Iterator[list[RawItem]]:
        raw: Iterator[list[RawItem]] = self.engine.run(self.start_ms, self.end_ms)
        if self.on_truth is not None:
            raw = observe(raw, GroundTruth(), self.on_truth)
        return inject(raw, self.config.faults, self.seed, self.encoder.encode)

    def records(self) -> Iterator[SimRecord]:
        """(topic, key, event, timestamp_ms) with the domain dataclasses (or MalformedValue)."""
        prefix = self.prefix
        for batch in self.batches():
            for item in batch:
                yield materialise(item, prefix)


def run(
    *,
    regions: Sequence[str] | None = None,
    duration_s: float = 3600.0,
    speed: float | None = None,
    seed: int = 0,
    out: Literal["file", "kafka"] = "file",
    path: Path | None = None,
    bootstrap_servers: str | None = None,
    start: datetime | None = None,
    faults: Faults | None = None,
    config: SimConfig | None = None,
    routing: RoutingPolicy | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    truth_path: Path | None = None,
    idempotent: bool = True,  # Kafka producer idempotence; Tansu (the demo broker) cannot do it
    stop: Callable[[], bool] | None = None,  # checked per batch: True ends the run early
    workers: int = 1,  # > 1: regions sharded over processes (parallel.py), to a file, unpaced
    kafka_security: KafkaSecurity | None = None,  # TLS / SASL for out='kafka'; None: PLAINTEXT
    codec: Codec | None = None,  # schema ids of the frames, e.g. Codec.with_registry; None: pinned
    pacer: Pacer | None = None,  # instead of ``speed``: a Pacer the caller keeps (``hurry()``)
) -> RunSummary:
    """Simulate and write every message; ``on_progress(messages, simulated_ms)`` per batch;
    with ``truth_path``, the ground-truth KPIs per region x channel x minute as CSV."""
    config = config or SimConfig()
    config = replace(
        config, regions=tuple(regions) if regions else config.regions, faults=faults or config.faults
    )
    if workers != 1:
        if pacer is not None:
            msg = f"workers={workers} runs unpaced; pass no pacer"
            raise ValueError(msg)
        if codec is not None:
            msg = f"workers={workers} writes pinned schema ids only; pass codec=None"
            raise ValueError(msg)
        return _run_sharded(config, workers, duration_s, speed, seed, out, path, start, routing, stop,
                            truth_path, on_progress)  # fmt: skip
    with contextlib.ExitStack() as stack:
        on_truth = None
        if truth_path is not None:
            writer = csv.DictWriter(stack.enter_context(truth_path.open("w", newline="")), COLUMNS)
            writer.writeheader()
            on_truth = lambda minutes: writer.writerows(m.as_row() for m in minutes)  # noqa: E731
        sim = Simulation(
            config, seed, start, duration_s, routing or HomeRegion(), on_truth=on_truth, codec=codec
        )
        sink = open_sink(out, path, bootstrap_servers, idempotent, kafka_security)
        began = time.perf_counter()
        try:
            messages, by_topic, last_ms = write_all(sim, sink, pacer or Pacer(speed), on_progress, stop)
            malformed = sim.malformed
        finally:
            sink.close()
    simulated_s = (last_ms - sim.start_ms) / 1000
    wall_s = time.perf_counter() - began
    return RunSummary(messages, by_topic, sim.engine.contacts, simulated_s, wall_s, malformed)


def _run_sharded(
    config: SimConfig,
    workers: int,
    duration_s: float,
    speed: float | None,
    seed: int,
    out: str,
    path: Path | None,
    start: datetime | None,
    routing: RoutingPolicy | None,
    stop: Callable[[], bool] | None,
    truth_path: Path | None,
    on_progress: Callable[[int, int], None] | None,
) -> RunSummary:
    if out != "file" or path is None or speed is not None or stop is not None:
        msg = f"workers={workers} needs out='file' with a path, no pacing (speed) and no stop callback"
        raise ValueError(msg)
    if config.overflow_share > 0:
        msg = (
            f"workers={workers} needs overflow_share=0 (it is {config.overflow_share}): overflow moves "
            "contacts between regions, so one engine must see them all"
        )
        raise ValueError(msg)
    if routing is not None and not isinstance(routing, HomeRegion):
        msg = (
            f"workers={workers} needs the home-region policy: {type(routing).__name__} moves "
            "contacts between regions, so one engine must see them all"
        )
        raise ValueError(msg)
    return run_sharded(
        regions=select_regions(config.regions), workers=workers, duration_s=duration_s, seed=seed, path=path,
        start=start, faults=config.faults, config=config, truth_path=truth_path, on_progress=on_progress,
        run_one=run,
    )  # fmt: skip


def open_sink(
    out: str,
    path: Path | None,
    bootstrap_servers: str | None,
    idempotent: bool = True,
    security: KafkaSecurity | None = None,
) -> FileSink | KafkaSink:
    if out == "file":
        if path is None:
            msg = "out='file' needs a path"
            raise ValueError(msg)
        return FileSink(path)
    if out == "kafka":
        if not bootstrap_servers:
            msg = "out='kafka' needs bootstrap_servers"
            raise ValueError(msg)
        return KafkaSink(bootstrap_servers, idempotent=idempotent, security=security)
    msg = f"out={out!r}: expected 'file' or 'kafka'"
    raise ValueError(msg)


def write_all(
    sim: Simulation,
    sink: FileSink | KafkaSink,
    pacer: Pacer,
    on_progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[int, dict[str, int], int]:
    """Every message of the simulation into the sink: (messages, per topic, last event time)."""
    encoder = sim.encoder
    by_topic: Counter[str] = Counter()
    messages, last_ms = 0, sim.start_ms
    for batch in sim.batches():
        if pacer.speed is None and isinstance(sink, FileSink):
            sink.write_frames([encoder.frame(item) for item in batch])
        elif pacer.speed is None:
            sink.write_many(map(encoder.encode, batch))
        else:  # paced: messages due within 20 ms go out together (one produce call per message is slow)
            due: list[RawItem] = []
            for item in batch:
                if pacer.due_in(item[0]) > 0.02:
                    if due:
                        sink.write_many(map(encoder.encode, due))
                        due = []
                    pacer.wait(item[0])
                due.append(item)
            if due:
                sink.write_many(map(encoder.encode, due))
        for kind, count in Counter(map(itemgetter(2), batch)).items():
            if kind == MALFORMED:  # rare: each carries its own topic
                sim.malformed += count
                by_topic.update(topic_of(item) for item in batch if item[2] == MALFORMED)
            else:
                by_topic[_TOPIC_OF_KIND[kind]] += count
        messages += len(batch)
        if batch:
            last_ms = max(last_ms, batch[-1][0])
        if on_progress:
            on_progress(messages, last_ms - sim.start_ms)
        if stop is not None and stop():
            break
    return messages, dict(by_topic), last_ms
