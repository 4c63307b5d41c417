"""The staffing plan: agents per region x queue for each 15-minute interval.

A planner forecasts the expected arrival rate of an interval (volume x local hour shape
x day-of-week factor; it cannot know the day's busyness factor, so a busy day is
understaffed as in real life), converts it to offered load with the mean handle time,
and staffs the smallest number of agents meeting the service level target within the
channel's threshold: Erlang A with the channel's mean patience (abandons count as
misses), Erlang C for e-mail (no abandonment); occupancy capped. Sizings are memoised
on the load rounded to a 2 % geometric grid. Multi-contact channels size slots and
divide by the concurrency. Every queue that receives traffic keeps at least one agent
(the operation is 24/7).
"""

from __future__ import annotations

import math

from streams.domain.erlang import agents_for_service_level, agents_for_service_level_a
from streams.domain.events import Channel
from streams.simulator.arrivals import BIN_S, ArrivalModel
from streams.simulator.config import WECHAT_REGIONS, WECHAT_SHARE, ZH_QUEUE
from streams.simulator.planned import ShiftFollower

INTERVAL_MS = 900_000
LOAD_GRID = 1.02
_BINS_PER_INTERVAL = INTERVAL_MS // 1000 // BIN_S


class StaffingPlan:
    def __init__(self, model: ArrivalModel) -> None:
        self.model = model
        self.config = model.config
        self._cache: dict[tuple[int, str, int, int], int] = {}
        self._sizings: dict[tuple[float, float, float, float | None], int] = {}
        self.queues: dict[str, tuple[int, str, float]] = {}  # queue -> (channel index, channel, share)
        for index, channel in enumerate(model.channels):
            params = self.config.channels[channel]
            self.queues[params.queue] = (index, channel, 1.0)
        self._zh_channel = next((i for i, c in enumerate(model.channels) if c is Channel.MESSENGER), None)
        shifts = self.config.shifts
        simulated = {r.code for r in model.regions}
        self.follower = None if shifts is None else ShiftFollower(self.config, shifts, simulated, model.seed)

    def queues_of(self, region: int) -> list[str]:
        names = list(self.queues)
        if self._zh_channel is not None and self.model.regions[region].code in WECHAT_REGIONS:
            names.append(ZH_QUEUE)
        return names

    def forecast_rate(self, region: int, queue: str, interval_start_ms: int, offset_s: int) -> float:
        """Expected arrivals per second in the 15-minute interval (no busyness factor)."""
        local_s = interval_start_ms // 1000 + offset_s
        local_day, second = divmod(local_s, 86_400)
        first_bin = second // BIN_S
        shape = float(self.model.shape[first_bin : first_bin + _BINS_PER_INTERVAL].sum())
        level = float(self.model.dow[(local_day + 3) % 7])
        channel_index, share = self._channel_share(region, queue)
        volume = float(self.model.daily_volume[region, channel_index]) * share
        return volume * level * shape / (INTERVAL_MS / 1000)

    def _channel_share(self, region: int, queue: str) -> tuple[int, float]:
        wechat = self.model.regions[region].code in WECHAT_REGIONS
        if queue == ZH_QUEUE:
            assert self._zh_channel is not None
            return self._zh_channel, WECHAT_SHARE
        index, channel, _ = self.queues[queue]
        return index, (1.0 - WECHAT_SHARE) if (wechat and channel is Channel.MESSENGER) else 1.0

    def agents(self, region: int, queue: str, interval_start_ms: int, offset_s: int) -> int:
        fixed = self.config.fixed_agents
        if fixed is not None:
            return fixed.get(queue, 0)
        local_s = interval_start_ms // 1000 + offset_s
        local_day, second = divmod(local_s, 86_400)
        key = (region, queue, (local_day + 3) % 7, second // (INTERVAL_MS // 1000))
        agents = self._cache.get(key)
        if agents is None:
            agents = self._size(region, queue, interval_start_ms, offset_s)
            self._cache[key] = agents
        return agents

    def _size(self, region: int, queue: str, interval_start_ms: int, offset_s: int) -> int:
        channel_index, _ = self._channel_share(region, queue)
        params = self.config.channels[self.model.channels[channel_index]]
        rate = self.forecast_rate(region, queue, interval_start_ms, offset_s)
        if rate <= 0:
            return 0
        # memoised on the load rounded to a 2 % geometric grid (+-1 %: about 1 agent at 100 Erlang)
        load = LOAD_GRID ** round(math.log(rate * params.handle.mean_s, LOAD_GRID))
        key = (load, params.handle.mean_s, params.answer_target_s, params.patience_mean_s)
        slots = self._sizings.get(key)
        if slots is None:
            slots = self._slots(load, params.handle.mean_s, params.answer_target_s, params.patience_mean_s)
            self._sizings[key] = slots
        return max(1, math.ceil(slots / params.concurrency))

    def _slots(self, load: float, aht: float, target_s: float, patience_s: float | None) -> int:
        """Erlang A where customers abandon (DESIGN: staffing by Erlang A), Erlang C for e-mail."""
        cfg = self.config
        if patience_s is None:
            return agents_for_service_level(load, aht, target_s, cfg.service_level_target, cfg.max_occupancy)
        return agents_for_service_level_a(
            load, aht, patience_s, target_s, cfg.service_level_target, cfg.max_occupancy
        )
