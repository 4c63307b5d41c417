"""The domain routing policy (streams/domain/routing.py) plugged into the simulator's hook.

It sees the simulated operation as routing would see cc.queue.state, but exact and
current: contacts waiting, agents staffed, agents with a free slot (ready, and for
chat/messenger the free-slot count), the channel's mean handle time. Used by
``ccpulse whatif`` to compare policies on identical traffic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from streams.domain.events import Channel
from streams.domain.routing import QueueSnapshot, Reason, RoutingParams, RoutingRequest, decide
from streams.simulator.config import WECHAT_REGIONS, ZH_QUEUE, SimConfig
from streams.simulator.model import Contact, QueueView, Target


class EwtOverflowPolicy:
    def __init__(
        self, regions: Sequence[str], config: SimConfig, params: RoutingParams | None = None
    ) -> None:
        self.params = params or RoutingParams()
        self.reasons: Counter[Reason] = Counter()
        self._aht = {channel: p.handle.mean_s for channel, p in config.channels.items()}
        self._queues: dict[Channel, list[tuple[str, str, frozenset[str]]]] = {}
        for channel, p in config.channels.items():
            entries = [(r, p.queue, frozenset({"ru"})) for r in regions]
            if channel is Channel.MESSENGER:
                entries += [(r, ZH_QUEUE, frozenset({"ru", "zh"})) for r in regions if r in WECHAT_REGIONS]
            self._queues[channel] = entries

    def route(self, contact: Contact, state: QueueView) -> Target:
        now, channel = contact.arrived_ms, contact.channel
        aht = self._aht[channel]
        queues = {}
        for region, name, languages in self._queues[channel]:
            ready = state.ready(region, name)
            queues[(region, name)] = QueueSnapshot(
                region, name, channel, languages, state.waiting(region, name), state.staffed(region, name),
                ready, ready, aht, None, None, now,
            )  # fmt: skip
        request = RoutingRequest(
            contact.contact_id,
            "",
            contact.home,
            contact.home_queue,
            channel,
            contact.language,
            contact.priority,
            now,
        )
        decision = decide(request, queues, self.params)
        self.reasons[decision.reason] += 1
        return Target(decision.target_region, decision.target_queue)
