"""The KPI job: KPIs, queue state and routing over the co-partitioned input topics.

It runs on the engine's consumer loop (streams/engine/loop.py: batching, restore, positions,
checkpoints, commits, dead letters, rebalances); this module is what is about contact
centres. Per event: apply it to its partition's state (streams/jobs/kpi_apply.py), record agent
history for queue state and routing, and hand new arrivals and answers to the router. After
each batch: publish the queue-state boundaries and routing decisions whose inputs are in
(streams/jobs/routing_release.py), then emit the changed MINUTE buckets and the
ROLLING_15M / ROLLING_60M / TODAY windows of the changed series to cc.kpi.snapshots
(versioned; the highest version per key is current). Why this engine and not Faust or Quix
Streams: docs/kpi-engine.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from streams.domain.events import AgentEvent, ContactEvent, ContactEventType, SurveyEvent
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.engine.loop import SLOW_CHECKPOINT_S as SLOW_CHECKPOINT_S  # re-exported for the runner
from streams.engine.loop import StreamLoop
from streams.jobs import kpi_apply as kpi
from streams.jobs.options import WorkerOptions as WorkerOptions
from streams.jobs.options import WorkerStats
from streams.jobs.router import GlobalQueueTable, Router
from streams.jobs.routing_local import capture_boundary, evict_routing, record_agent
from streams.jobs.routing_release import EventTimeGate
from streams.jobs.state import PartitionState, dumps, restored_states
from streams.jobs.windows import dirty_views, snapshot_key, snapshot_record, snapshot_version
from streams.wire.codec import Codec
from streams.wire.topics import SNAPSHOT_TOPIC

log = logging.getLogger("ccpulse.jobs.worker")


class KpiWorker:
    """The KPI + queue-state + routing job, with the engine loop that runs it (``self.loop``)."""

    def __init__(
        self,
        client_config: dict[str, Any],
        codec: Codec,
        options: WorkerOptions | None = None,
        observer: Callable[[str, Any], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or WorkerOptions()
        self._client = dict(client_config)
        self._codec, self._clock = codec, clock
        self._observe = observer or (lambda _name, _value: None)
        self.stats = WorkerStats()
        sanitiser = DeadLetterSanitiser(codec, self.options.pseudonym_key)
        self.loop: StreamLoop[PartitionState] = StreamLoop(
            client_config, self, self.options, sanitiser, self.stats, self._observe, clock
        )
        self.router: Router | None = None
        self._table: GlobalQueueTable | None = None
        self._gate: EventTimeGate | None = None  # built with the loop's consumer and producer

    @property
    def states(self) -> dict[int, PartitionState]:
        return self.loop.states

    @property
    def lock(self) -> Any:
        """Held while states change; the metrics collector reads under it."""
        return self.loop.lock

    @lock.setter
    def lock(self, value: Any) -> None:
        self.loop.lock = value

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> WorkerStats:
        self.loop.run(stop, idle_exit_s)
        return self.stats

    def checkpoint(self, only: set[int] | None = None) -> None:
        self.loop.checkpoint(only)

    # -- the job (streams/engine/loop.py: Job) -----------------------------------------------

    def new_state(self, partition: int) -> PartitionState:
        return PartitionState(partition)

    def restore(
        self, consumer_config: dict[str, Any], app_id: str, partitions: list[int]
    ) -> dict[int, PartitionState]:
        return restored_states(consumer_config, app_id, partitions)

    def dumps(self, state: PartitionState) -> bytes:
        return dumps(state)

    def decode(self, topic: str, value: bytes | None) -> Any:
        return self._codec.decode(topic, value)

    def event_time_ms(self, event: Any) -> int:
        return int(event.event_time_ms)

    def started(self, loop: StreamLoop[PartitionState]) -> None:
        o = self.options
        assert loop.consumer is not None and loop.producer is not None
        self._gate = EventTimeGate(loop.end_offsets, loop.producer, self._codec, o, loop.delivered)
        if o.routing:
            self._table = GlobalQueueTable(self._client, self._codec).start()
            if not self._table.wait_ready(o.table_ready_timeout_s):  # decisions then wait on its progress
                log.warning("cc.queue.state not read to its end in %.0f s", o.table_ready_timeout_s)
            regions = frozenset(o.routing_regions) if o.routing_regions else None
            self.router = Router(
                self._table,
                self._codec,
                observe=self._observe,
                max_wait_s=o.routing_max_wait_s,
                regions=regions,
            )

    def stopped(self) -> None:
        if self._table is not None:
            self._table.stop()
        self._gate = None

    def apply(self, state: PartitionState, topic: str, event: Any, now: float) -> None:
        if type(event) is ContactEvent:
            capture_boundary(state, event.event_time_ms, self.options.queue_state_every_ms, now)
            if kpi.apply_contact(state, event, self.options.kpi) and self.router is not None:
                if event.type is ContactEventType.ARRIVED:
                    self.router.on_arrival(state, event)
                elif event.type is ContactEventType.ANSWERED:
                    self.router.on_answered(state, event)
        elif type(event) is SurveyEvent:
            kpi.apply_survey(state, event, self.options.kpi)
        elif type(event) is AgentEvent:
            kpi.apply_agent(state, event)
            record_agent(state, event)

    def after_batch(self, states: Iterable[PartitionState]) -> None:
        self._release(states)
        self._emit_snapshots(states)

    def on_idle(self, states: Iterable[PartitionState]) -> None:
        self._release(states)  # what waited on wall time only

    def _release(self, states: Iterable[PartitionState]) -> None:
        """Queue-state records and routing decisions whose inputs up to their event time are in."""
        assert self._gate is not None
        self.stats.queue_states += self._gate.release(states, self.router)
        if self.router is not None:
            self.stats.decisions = self.router.decisions

    def pending(self, states: Iterable[PartitionState]) -> bool:
        """Decisions and boundaries waiting (they end by the wall-clock bound at most)."""
        return any(st.pending_arrivals or st.pending_boundaries for st in states)

    def before_checkpoint(self, state: PartitionState) -> None:
        kpi.evict(state, self.options.kpi)
        evict_routing(state)

    def _emit_snapshots(self, states: Iterable[PartitionState]) -> None:
        producer = self.loop.producer
        assert producer is not None
        now_ms = int(self._clock() * 1000)
        encode, produce, delivered = self._codec.encode, producer.produce, self.loop.delivered
        for state in states:
            if not state.dirty_minutes and not state.dirty_series:
                continue
            version = snapshot_version(state)
            for view in dirty_views(state):
                key = snapshot_key(view.region, view.channel, view.window, view.start_ms)
                record = snapshot_record(view, version, now_ms)
                produce(SNAPSHOT_TOPIC, encode(SNAPSHOT_TOPIC, record), key.encode(), on_delivery=delivered)
                self.stats.snapshots += 1
            producer.poll(0)
