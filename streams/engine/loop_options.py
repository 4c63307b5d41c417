"""What a StreamLoop is told (LoopOptions) and what it counts (LoopStats): streams/engine/loop.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoopOptions:
    group_id: str = "ccpulse-job"
    app_id: str = "ccpulse-job"
    topics: tuple[str, ...] = ()
    batch_size: int = 10_000
    poll_timeout_s: float = 0.1
    checkpoint_interval_s: float = 2.0
    idempotent_producer: bool = True  # Tansu cannot (InitProducerId fails): the demo turns it off
    # Kafka transactions (needs idempotence; Apache Kafka only): fences zombies. Off by default
    # (Tansu has none); deploy/ turns it on with --transactions (docs/kpi-engine.md)
    transactional: bool = False
    # transactional: outputs become visible at each commit (0.1 s: docs/kpi-engine.md, the decision run)
    commit_interval_s: float = 0.1
    # transactional: a previous owner's transaction holding offsets of a partition this member is
    # given ends (committed or, at its producers' transaction.timeout.ms, aborted) within this
    transaction_timeout_s: float = 60.0
    changelog_replication_factor: int | None = None
    auto_offset_reset: str = (
        "earliest"  # where a partition the state has no position for starts; "latest": its end
    )


@dataclass
class LoopStats:
    events: int = 0
    replayed_skipped: int = 0
    dead_letters: int = 0
    checkpoints: int = 0
    restored: dict[int, dict[str, int]] = field(default_factory=dict)  # partition -> positions resumed
    epochs: dict[int, int] = field(default_factory=dict)  # partition -> restore epoch taken (recorded)
