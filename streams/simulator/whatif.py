"""What-if: the same simulated traffic under two routing policies, side by side.

Both runs use the same seed, so arrivals, handle times and patience are identical;
only where contacts wait differs. Per region, two views: *customers* (contacts by
home region: what the region's customers experienced) and *queues* (contacts by the
region that served them: what its agents and targets saw). Service level is answered
within the channel threshold / (answered + abandoned after 5 s), as in DESIGN.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from streams.domain.events import ContactEventType
from streams.domain.kpi import SHORT_ABANDON_MS
from streams.simulator.config import SimConfig
from streams.simulator.model import CONTACT, HomeRegion, RoutingPolicy
from streams.simulator.policy import EwtOverflowPolicy
from streams.simulator.run import Simulation, select_regions

_T = ContactEventType


@dataclass
class Tally:
    answered: int = 0
    within: int = 0
    abandoned: int = 0  # after the short threshold
    wait_ms: int = 0
    offered: int = 0

    @property
    def service_level(self) -> float | None:
        base = self.answered + self.abandoned
        return self.within / base if base else None

    @property
    def asa_s(self) -> float | None:
        return self.wait_ms / self.answered / 1000 if self.answered else None

    @property
    def abandonment(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None


@dataclass
class PolicyRun:
    by_home: dict[str, Tally] = field(default_factory=dict)
    by_server: dict[str, Tally] = field(default_factory=dict)
    overflowed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def total(self) -> Tally:
        out = Tally()
        for t in self.by_home.values():
            out.answered += t.answered
            out.within += t.within
            out.abandoned += t.abandoned
            out.wait_ms += t.wait_ms
            out.offered += t.offered
        return out


def simulate_policy(sim: Simulation) -> PolicyRun:
    result = PolicyRun()
    for batch in sim.batches():
        for t, _, kind, contact, etype, _b in batch:
            if kind != CONTACT or etype not in (_T.QUEUED, _T.ANSWERED, _T.ABANDONED) or contact.direct:
                continue  # a contact answered without a queue is neither offered nor answered
            home = result.by_home.setdefault(contact.home, Tally())
            server = result.by_server.setdefault(contact.region, Tally())
            wait = t - contact.arrived_ms
            for tally in (home, server):
                if etype is _T.QUEUED:
                    tally.offered += 1
                elif etype is _T.ANSWERED:
                    tally.answered += 1
                    tally.within += wait <= contact.target_ms
                    tally.wait_ms += wait
                elif wait >= SHORT_ABANDON_MS:
                    tally.abandoned += 1
            if etype is _T.QUEUED and contact.region != contact.home:
                result.overflowed += 1
    return result


def compare(
    regions: Sequence[str] | None,
    hours: float,
    seed: int,
    start: datetime | None,
    staffing_factors: dict[str, float] | None = None,
    config: SimConfig | None = None,
) -> tuple[PolicyRun, PolicyRun]:
    """(baseline: home region only, policy: EWT overflow) on identical traffic."""
    base = config or SimConfig()
    base = replace(
        base,
        regions=tuple(regions) if regions else base.regions,
        staffing_factors=MappingProxyType(dict(staffing_factors))
        if staffing_factors
        else base.staffing_factors,
    )
    codes = [r.code for r in select_regions(base.regions)]
    runs = []
    policies: list[RoutingPolicy] = [HomeRegion(), EwtOverflowPolicy(codes, base)]
    for policy in policies:
        sim = Simulation(base, seed=seed, start=start, duration_s=hours * 3600, routing=policy)
        run = simulate_policy(sim)
        if isinstance(policy, EwtOverflowPolicy):
            run.reasons = Counter({str(k): v for k, v in policy.reasons.items()})
        runs.append(run)
    return runs[0], runs[1]
