"""The KPI worker's options and run statistics (streams/jobs/worker.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.engine.loop_options import LoopOptions, LoopStats
from streams.jobs.kpi_apply import KpiConfig
from streams.wire.topics import INPUT_TOPICS


@dataclass
class WorkerStats(LoopStats):
    snapshots: int = 0
    decisions: int = 0
    queue_states: int = 0


@dataclass
class WorkerOptions(LoopOptions):
    group_id: str = "ccpulse-kpi"
    app_id: str = "ccpulse-kpi"
    topics: tuple[str, ...] = INPUT_TOPICS
    queue_state_every_ms: int = 30_000  # cc.queue.state: every queue at each such event-time boundary
    routing: bool = True  # a decision per new ARRIVED contact (cc.routing.decisions)
    # a pending decision or boundary waits for its inputs (agent stream past t, remote regions'
    # state) at most this long in wall time; an agent topic read to its end counts after the grace
    routing_max_wait_s: float = 5.0
    routing_caught_up_grace_s: float = 1.0
    table_ready_timeout_s: float = 30.0  # cold start: cc.queue.state read to its end before routing
    # the regions a decision waits for (their cc.queue.state as of t); None: those in cc.queue.state
    routing_regions: tuple[str, ...] | None = None
    kpi: KpiConfig = field(default_factory=KpiConfig)
    # CCPULSE_PSEUDONYM_KEY: identities in dead letters are pseudonymised with it, else withheld
    pseudonym_key: bytes | None = field(default=None, repr=False)
