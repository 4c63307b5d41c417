"""Every plan through the digital twin: the simulated day(s) with the plan's agents on the floor.

``evaluate(plan)`` runs the simulator in-process over the plan's span with its agents
following the plan's shifts and breaks (``SimConfig.shifts``; streams/simulator/planned.py)
and measures, from the simulator's ground truth (streams/simulator/truth.py, DESIGN
section 3's interval rule), service level, ASA and abandonment per region x channel x
15-minute interval and for the whole run, against the channel targets
(streams/domain/targets.py), with the plan's required and planned agents beside them.

The twin's arrivals carry the day-level busyness factor that no forecast knows, so a plan
that covers its requirement exactly still misses on busy days: that is the proof asked for,
not a flaw of the twin. Each figure's bucket: offered where the contact entered the queue,
answered / abandoned and waits where it left it; contacts still waiting at the end of the
span are served after it (shifts run their course), counted in the day, not in an interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from streams.domain.events import Channel
from streams.domain.shift_plan import INTERVAL_MS, ShiftAssignment
from streams.domain.targets import ASA_TARGET_S, SERVICE_LEVEL_TARGET, Mark
from streams.planning.plan_file import PlanFile
from streams.simulator.arrivals import HOUR_MS
from streams.simulator.config import SimConfig, TwinShrinkage
from streams.simulator.run import Simulation
from streams.simulator.truth import MinuteKpi

DAY_MS = 86_400_000


@dataclass
class Counts:
    offered: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0  # after the 5 s short-abandon threshold
    short_abandoned: int = 0
    wait_ms_answered: int = 0

    def add(self, m: MinuteKpi | Counts) -> None:
        self.offered += m.offered
        self.answered += m.answered
        self.answered_within_target += m.answered_within_target
        self.abandoned += m.abandoned
        self.short_abandoned += m.short_abandoned
        self.wait_ms_answered += m.wait_ms_answered

    @property
    def service_level(self) -> float | None:
        """Answered within T / (answered + abandoned after 5 s), DESIGN section 3."""
        base = self.answered + self.abandoned
        return self.answered_within_target / base if base else None

    @property
    def asa_s(self) -> float | None:
        return self.wait_ms_answered / self.answered / 1000 if self.answered else None

    @property
    def abandonment(self) -> float | None:
        """Abandoned (excluding short) / offered (excluding short abandons)."""
        base = self.offered - self.short_abandoned
        return self.abandoned / base if base > 0 else None


@dataclass
class IntervalResult:
    region: str
    channel: str
    interval_start_ms: int
    counts: Counts = field(default_factory=Counts)
    forecast_offered: float | None = None  # the plan's forecast, when the plan file has intervals
    required_agents: float | None = None  # the plan's requirement (None: not in the plan file)
    planned_agents: int = 0  # on the floor per the plan's shifts (on shift, not on a break)

    @property
    def sl_mark(self) -> Mark:
        return Mark(self.counts.service_level, SERVICE_LEVEL_TARGET, higher_is_better=True)

    def as_dict(self) -> dict[str, object]:
        c = self.counts
        return {
            "region": self.region, "channel": self.channel, "interval_start_ms": self.interval_start_ms,
            "interval_start": datetime.fromtimestamp(self.interval_start_ms / 1000, UTC).isoformat(),
            **asdict(c), "service_level": c.service_level, "asa_s": c.asa_s, "abandonment": c.abandonment,
            "sl_met": self.sl_mark.met, "forecast_offered": self.forecast_offered,
            "required_agents": self.required_agents, "planned_agents": self.planned_agents,
        }  # fmt: skip


@dataclass
class ChannelDay:
    """One region x channel over the whole evaluated span, against the channel's targets."""

    region: str
    channel: str
    counts: Counts
    intervals: int  # intervals with answered or abandoned contacts
    intervals_below_target: int  # of those, intervals whose SL missed the target
    planned_agent_hours: float
    required_agent_hours: float | None

    @property
    def service_level(self) -> Mark:
        return Mark(self.counts.service_level, SERVICE_LEVEL_TARGET, higher_is_better=True)

    @property
    def asa(self) -> Mark:
        return Mark(self.counts.asa_s, ASA_TARGET_S[Channel(self.channel)], higher_is_better=False)

    def as_dict(self) -> dict[str, object]:
        c = self.counts
        return {
            "region": self.region, "channel": self.channel, **asdict(c),
            "service_level": c.service_level, "service_level_target": SERVICE_LEVEL_TARGET,
            "sl_verdict": self.service_level.verdict, "asa_s": c.asa_s,
            "asa_target_s": ASA_TARGET_S[Channel(self.channel)], "asa_verdict": self.asa.verdict,
            "abandonment": c.abandonment, "intervals": self.intervals,
            "intervals_below_target": self.intervals_below_target,
            "planned_agent_hours": self.planned_agent_hours,
            "required_agent_hours": self.required_agent_hours,
        }  # fmt: skip


@dataclass
class Evaluation:
    plan_id: str
    regions: tuple[str, ...]
    start_ms: int
    end_ms: int
    seed: int
    intervals: list[IntervalResult]  # region, channel, time order
    days: list[ChannelDay]
    contacts: int
    shrinkage: TwinShrinkage | None = None  # played out on the plan's agents; None: all adherent

    def as_dict(self) -> dict[str, object]:
        shrinkage = None if self.shrinkage is None else asdict(self.shrinkage)
        return {
            "plan_id": self.plan_id, "regions": list(self.regions), "start_ms": self.start_ms,
            "end_ms": self.end_ms, "seed": self.seed, "contacts": self.contacts, "shrinkage": shrinkage,
            "days": [d.as_dict() for d in self.days], "intervals": [i.as_dict() for i in self.intervals],
        }  # fmt: skip


def plan_span(plan: PlanFile) -> tuple[int, int]:
    """(start, end) of what the plan covers: its intervals if it has any, else its shifts;
    the start floored to a whole UTC hour (where the simulator starts)."""
    if plan.intervals:
        lo = min(i.interval_start_ms for i in plan.intervals)
        hi = max(i.interval_start_ms for i in plan.intervals) + INTERVAL_MS
    elif plan.shifts:
        lo, hi = min(s.start_ms for s in plan.shifts), max(s.end_ms for s in plan.shifts)
    else:
        msg = f"plan {plan.plan_id} has neither shifts nor intervals"
        raise ValueError(msg)
    return lo - lo % HOUR_MS, hi


def on_floor_by_interval(shifts: Sequence[ShiftAssignment]) -> dict[tuple[str, str, int], int]:
    """Planned agents per (region, channel, interval start): ``planned_agents`` for all at once."""
    out: dict[tuple[str, str, int], int] = {}
    for s in shifts:
        first = s.start_ms - s.start_ms % INTERVAL_MS
        for t in range(first, s.end_ms, INTERVAL_MS):
            if s.agents and s.on_floor(t):
                key = (s.region, s.channel, t)
                out[key] = out.get(key, 0) + s.agents
    return out


def evaluate(
    plan: PlanFile,
    regions: Sequence[str] | None = None,
    days: float | None = None,
    seed: int = 0,
    config: SimConfig | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    shrinkage: TwinShrinkage | None = None,
) -> Evaluation:
    """Simulate ``days`` (default: the plan's whole span) from the plan's start for ``regions``
    (default: every region of the plan) with the plan's agents; ``on_progress(done_ms, total_ms)``.
    ``shrinkage``: some of the plan's agents absent for a shift, some off the phones for an
    interval (streams/simulator/planned.py); None: every agent present and adherent."""
    start_ms, plan_end = plan_span(plan)
    chosen = tuple(regions) if regions else tuple(sorted({s.region for s in plan.shifts}))
    missing = sorted(set(chosen) - {s.region for s in plan.shifts})
    if missing:
        msg = f"regions {', '.join(missing)} have no shifts in plan {plan.plan_id}"
        raise ValueError(msg)
    span_days = (plan_end - start_ms) / DAY_MS
    days = span_days if days is None else days
    if days <= 0 or days > span_days + 1e-9:
        msg = f"days={days}: expected more than 0 and at most the plan's span, {span_days:g} days"
        raise ValueError(msg)
    end_ms = start_ms + math.ceil(days * DAY_MS / INTERVAL_MS) * INTERVAL_MS
    config = replace(config or SimConfig(), regions=chosen, shifts=plan.shifts, shrinkage=shrinkage)
    buckets: dict[tuple[str, str, int], Counts] = {}
    totals: dict[tuple[str, str], Counts] = {}

    def take(minutes: list[MinuteKpi]) -> None:
        for m in minutes:
            totals.setdefault((m.region, m.channel), Counts()).add(m)
            if m.minute_ms < end_ms:
                key = (m.region, m.channel, m.minute_ms - m.minute_ms % INTERVAL_MS)
                buckets.setdefault(key, Counts()).add(m)

    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    sim = Simulation(config, seed=seed, start=start, duration_s=(end_ms - start_ms) / 1000, on_truth=take)
    total_ms = end_ms - start_ms
    for batch in sim.batches():
        if on_progress is not None and batch:
            on_progress(min(batch[-1][0] - start_ms, total_ms), total_ms)
    if on_progress is not None:
        on_progress(total_ms, total_ms)
    result = _assemble(plan, chosen, start_ms, end_ms, seed, buckets, totals, sim.engine.contacts)
    return replace(result, shrinkage=shrinkage)


def _assemble(
    plan: PlanFile,
    regions: tuple[str, ...],
    start_ms: int,
    end_ms: int,
    seed: int,
    buckets: dict[tuple[str, str, int], Counts],
    totals: dict[tuple[str, str], Counts],
    contacts: int,
) -> Evaluation:
    planned = on_floor_by_interval([s for s in plan.shifts if s.region in regions])
    declared = {(i.region, i.channel, i.interval_start_ms): i for i in plan.intervals}
    channels = [c.value for c in Channel]
    intervals: list[IntervalResult] = []
    result_days: list[ChannelDay] = []
    for region in regions:
        for channel in channels:
            mine: list[IntervalResult] = []
            for t in range(start_ms, end_ms, INTERVAL_MS):
                key = (region, channel, t)
                p = declared.get(key)
                mine.append(
                    IntervalResult(
                        region,
                        channel,
                        t,
                        buckets.get(key, Counts()),
                        None if p is None else p.forecast_offered,
                        None if p is None else p.required_agents,
                        planned.get(key, 0),
                    )  # fmt: skip
                )
            counts = totals.get((region, channel), Counts())
            if not counts.offered and not any(i.planned_agents for i in mine):
                continue  # a channel neither planned nor simulated
            served = [i for i in mine if i.counts.service_level is not None]
            required = [i.required_agents for i in mine if i.required_agents is not None]
            result_days.append(
                ChannelDay(
                    region,
                    channel,
                    counts,
                    len(served),
                    sum(1 for i in served if i.sl_mark.met is False),
                    sum(i.planned_agents for i in mine) / 4,
                    sum(required) / 4 if required else None,
                )  # fmt: skip
            )
            intervals.extend(mine)
    return Evaluation(plan.plan_id, regions, start_ms, end_ms, seed, intervals, result_days, contacts)
