"""Agents needed per region x channel x 15-minute interval, from a forecast.

Conventions are the simulator's (streams/simulator/staffing.py), so that a plan is
judged by the twin under the model it was sized with:

- voice, chat, messenger: Erlang A (M/M/n+M) with the channel's mean patience, the
  smallest n with SL(T) >= target counting abandons as misses, mean occupancy capped
  (``max_occupancy``, 0.90); chat and messenger size *slots* and divide by the
  concurrency (2 and 3 contacts per agent);
- e-mail: nobody abandons and the threshold is 24 h, so Erlang C's SL(24 h) is met by
  any stable n; what binds is the workload. We staff e-mail by Erlang C with the
  occupancy cap (n >= load / 0.90, the same rule the simulator uses), which is the
  workload over the interval, not the instantaneous queue: deferring e-mail to quiet
  intervals could save more and is left to the scheduler of a later issue.
- at least one agent where traffic is forecast (the operation is 24/7).

Shrinkage: agents on the floor are required_agents; agents *scheduled* must be
required / (1 - shrinkage). Common WFM references put total shrinkage at roughly
30-35 % (e.g. ICMI and vendor guides quoting 30-35 % for breaks, lunch, meetings,
coaching, training, absence and sickness); our shifts place breaks and lunch
explicitly and the schedule counts an agent on the floor only outside them, so the
default shrinkage applied here is the *remainder*: 0.20 (absence, sickness,
training, coaching, meetings, off-phone work), not 0.30-0.35, which would count the
breaks twice. Configurable with ``--shrinkage``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from streams.domain.erlang import agents_for_service_level, agents_for_service_level_a
from streams.domain.events import Channel

DEFAULT_SHRINKAGE = 0.20
LOAD_GRID = 1.02  # as the simulator: sizings memoised on a 2 % geometric load grid


@dataclass(frozen=True, slots=True)
class ChannelRule:
    threshold_s: float  # SL threshold T
    patience_s: float | None  # exponential patience mean; None = Erlang C (no abandonment)
    concurrency: int


def default_rules() -> dict[str, ChannelRule]:
    """The simulator's channel parameters (its queues are what the plan staffs)."""
    from streams.simulator.config import DEFAULT_CHANNELS

    return {
        c.value: ChannelRule(p.answer_target_s, p.patience_mean_s, p.concurrency)
        for c, p in DEFAULT_CHANNELS.items()
    }


@dataclass
class RequirementModel:
    rules: Mapping[str, ChannelRule]
    service_level_target: float = 0.80
    max_occupancy: float = 0.90
    shrinkage: float = DEFAULT_SHRINKAGE

    def __post_init__(self) -> None:
        if not 0.0 <= self.shrinkage < 1.0:
            msg = f"shrinkage {self.shrinkage} is outside [0, 1)"
            raise ValueError(msg)
        self._cache: dict[tuple[str, float, float], int] = {}

    def on_floor(self, channel: str, offered: float, aht_s: float, interval_s: float = 900.0) -> int:
        """Agents on the floor for ``offered`` contacts in the interval with mean handle ``aht_s``."""
        if offered <= 0 or aht_s <= 0:
            return 0
        rule = self.rules[channel]
        load = offered * aht_s / interval_s
        load = LOAD_GRID ** round(math.log(load, LOAD_GRID))
        aht = round(aht_s)
        key = (channel, load, aht)
        slots = self._cache.get(key)
        if slots is None:
            slots = self._slots(rule, load, float(aht))
            self._cache[key] = slots
        return max(1, math.ceil(slots / rule.concurrency))

    def _slots(self, rule: ChannelRule, load: float, aht: float) -> int:
        target, occupancy = self.service_level_target, self.max_occupancy
        if rule.patience_s is None:
            return agents_for_service_level(load, aht, rule.threshold_s, target, occupancy)
        return agents_for_service_level_a(load, aht, rule.patience_s, rule.threshold_s, target, occupancy)

    def scheduled(self, on_floor: float) -> int:
        """Agents to schedule so that ``on_floor`` remain after shrinkage."""
        return math.ceil(on_floor / (1.0 - self.shrinkage) - 1e-9)


def channel_names() -> list[str]:
    return [c.value for c in Channel]
