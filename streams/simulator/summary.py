"""What one simulation run reports: messages by topic, contacts, simulated and wall time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSummary:
    messages: int
    by_topic: dict[str, int]
    contacts: int
    simulated_s: float
    wall_s: float
    malformed: int = 0  # damaged copies sent on purpose (faults); each must reach cc.dead-letter

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else float("inf")
