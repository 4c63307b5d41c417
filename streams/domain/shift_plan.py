"""What a staffing plan is, shared by the planner, the digital twin and the live plan topic.

A plan is made per region x channel for 15-minute intervals (UTC epoch milliseconds,
aligned to 15 minutes). Agents are single-skilled per channel, as the simulator's queues
are. ``ShiftAssignment`` says how many agents work one concrete shift (start, end and
breaks, in UTC); ``PlanInterval`` is the per-interval view published on cc.staffing.plan
and stored in ClickHouse: forecast, requirement and the agents the schedule puts on the
floor (on shift and not on a break) in that interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

INTERVAL_MS = 900_000
BREAK_REASONS = ("BREAK", "LUNCH")


@dataclass(frozen=True, slots=True)
class Break:
    start_ms: int
    end_ms: int
    reason: str  # one of BREAK_REASONS; the agent is NOT_READY with this reason

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            msg = f"break ends ({self.end_ms}) before it starts ({self.start_ms})"
            raise ValueError(msg)
        if self.reason not in BREAK_REASONS:
            msg = f"break reason {self.reason!r} is not one of {BREAK_REASONS}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class ShiftAssignment:
    region: str  # region code, e.g. RU-MOW
    channel: str  # streams.domain.events.Channel value
    variant_id: str  # the catalogue variant this shift instance comes from
    start_ms: int  # UTC epoch ms, on a 15-minute boundary
    end_ms: int
    agents: int  # how many agents work exactly this shift
    breaks: tuple[Break, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            msg = f"shift {self.variant_id} ends before it starts"
            raise ValueError(msg)
        if self.agents < 0:
            msg = f"shift {self.variant_id} has {self.agents} agents"
            raise ValueError(msg)
        for b in self.breaks:
            if b.start_ms < self.start_ms or b.end_ms > self.end_ms:
                msg = f"break {b} of shift {self.variant_id} lies outside the shift"
                raise ValueError(msg)

    def on_floor(self, interval_start_ms: int) -> bool:
        """True when these agents are on shift and not on a break for the whole interval."""
        end = interval_start_ms + INTERVAL_MS
        if interval_start_ms < self.start_ms or end > self.end_ms:
            return False
        return not any(b.start_ms < end and interval_start_ms < b.end_ms for b in self.breaks)

    @property
    def paid_hours(self) -> float:
        return self.agents * (self.end_ms - self.start_ms) / 3_600_000


@dataclass(frozen=True, slots=True)
class PlanInterval:
    plan_id: str
    region: str
    channel: str
    interval_start_ms: int
    forecast_offered: float  # contacts expected to arrive in the interval
    forecast_aht_s: float
    required_agents: float  # on the floor, by Erlang A for the channel's SL target
    planned_agents: int  # on the floor per the schedule (on shift, not on a break)


def planned_agents(
    shifts: Iterable[ShiftAssignment], region: str, channel: str, interval_start_ms: int
) -> int:
    """Agents the schedule puts on the floor for one region x channel in one interval."""
    return sum(
        s.agents
        for s in shifts
        if s.region == region and s.channel == channel and s.on_floor(interval_start_ms)
    )
