"""A job of its own for the engine's loop (streams/engine/loop.py): counts words per partition,
with its own state and serialisation; undecodable input (not a word) is a dead letter."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.domain.errors import InvalidEvent
from streams.engine.checkpoints import restore
from streams.engine.loop import StreamLoop


@dataclass
class Words:
    partition: int
    epoch: int = 0
    next_offsets: dict[str, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


class WordCount:
    """A job: counts words per partition; raises once, after ``crash_after`` events, if set."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.crash_after, self.applied, self.batches = crash_after, 0, 0

    def new_state(self, partition: int) -> Words:
        return Words(partition)

    def restore(self, config: dict[str, Any], app_id: str, partitions: list[int]) -> dict[int, Words]:
        return {p: self.loads(data) for p, data in restore(config, app_id, partitions).items()}

    def dumps(self, state: Words) -> bytes:
        return json.dumps([state.partition, state.epoch, state.next_offsets, state.counts]).encode()

    def loads(self, data: bytes) -> Words:
        partition, epoch, offsets, counts = json.loads(data)
        return Words(partition, epoch, offsets, Counter(counts))

    def decode(self, topic: str, value: bytes | None) -> Any:
        if not value or not value.isalpha():
            raise InvalidEvent("not_a_word", f"{value!r} on {topic}")
        return value.decode()

    def event_time_ms(self, event: Any) -> int:
        return 0

    def started(self, loop: StreamLoop[Words]) -> None:
        self.loop = loop

    def stopped(self) -> None:
        pass

    def apply(self, state: Words, topic: str, event: Any, now: float) -> None:
        if self.crash_after is not None and self.applied >= self.crash_after:
            raise RuntimeError("crash")  # the process dies here: nothing after the last checkpoint counts
        state.counts[event] += 1
        self.applied += 1

    def after_batch(self, states: Iterable[Words]) -> None:
        self.batches += 1

    def on_idle(self, states: Iterable[Words]) -> None:
        pass

    def pending(self, states: Iterable[Words]) -> bool:
        return False

    def before_checkpoint(self, state: Words) -> None:
        pass
