"""Who a simulated contact is: channel, queue, platform and language, segment, customer
(repeat callers, pseudonymised phone numbers), durations and the draws of its later fate.

A part of ``Engine`` (its base class), kept apart because it is the engine's largest
concern besides the event loop; the draws come from an ``ArrivalChunk`` in the same order
as before, so a seed gives the same contacts.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence

from streams.domain.events import Channel, Platform, Segment
from streams.domain.pseudonym import pseudonymise
from streams.domain.regions import Region
from streams.simulator.arrivals import ArrivalChunk
from streams.simulator.config import (
    DEFAULT_PLATFORMS,
    REASON_CODES,
    SEGMENTS,
    WECHAT_REGIONS,
    WECHAT_SHARE,
    ZH_QUEUE,
    SimConfig,
)
from streams.simulator.model import Contact
from streams.simulator.shapes import mark_edge_shapes

TRANSFER_AT = 0.95  # a warm transfer: after any hold (which ends by 0.9 of the talk), before talk ends


class ContactMaker:
    config: SimConfig
    seed: int

    def _init_contacts(
        self, config: SimConfig, regions: Sequence[Region], channels: Sequence[Channel]
    ) -> None:
        self._recent: dict[str, list[str]] = {r.code: [] for r in regions}
        self._customers = 0
        pseudonymise("0", config.pseudonym_key)  # rejects an empty key as the domain does
        self._hmac = hmac.new(config.pseudonym_key, digestmod=hashlib.sha256)
        self._contacts = 0
        self._platforms = tuple(DEFAULT_PLATFORMS.items())
        # per channel index: (channel, queue, talk share, reason codes, answer target ms)
        self._channel_info = [
            (c, p.queue, 1.0 - p.handle.acw_share, REASON_CODES[c], p.answer_target_s * 1000)
            for c, p in ((c, config.channels[c]) for c in channels)
        ]
        self._region_info = [(r.code, r.code in WECHAT_REGIONS, self._recent[r.code]) for r in regions]
        self._segments = tuple((Segment(name), share, priority) for name, share, priority in SEGMENTS)
        self._platform_total = sum(share for _, share in self._platforms)
        self._edges = config.edge_shapes

    def _new_contact(self, chunk: ArrivalChunk, i: int, t: int) -> Contact:
        cfg = self.config
        code, wechat, recent = self._region_info[chunk.region[i]]
        channel, queue_name, talk_share, reasons, target_ms = self._channel_info[chunk.channel[i]]
        platform, language = None, "ru"
        if channel is Channel.MESSENGER:
            u = chunk.platform_u[i]
            if wechat and u < WECHAT_SHARE:
                platform, language, queue_name = Platform.WECHAT, "zh", ZH_QUEUE
            else:
                platform = self._pick_platform(u)
        segment, priority = self._pick_segment(chunk.segment_u[i])
        self._contacts += 1
        contact = Contact(
            f"c{self.seed}-{self._contacts:010d}", channel, platform, language, queue_name, code,
            self._customer(recent, chunk.repeat_u[i]), segment, priority,
            reasons[chunk.reason[i] % len(reasons)], t,
        )  # fmt: skip
        contact.target_ms = target_ms
        handle_ms = int(chunk.handle_s[i] * 1000)
        contact.handle_ms = handle_ms
        contact.talk_ms = max(1, int(handle_ms * talk_share))
        patience = chunk.patience_s[i]
        contact.patience_ms = -1 if math.isinf(patience) else int(patience * 1000)
        if channel is Channel.VOICE and chunk.hold_u[i] < cfg.hold_share:
            contact.hold_at = 0.2 + 0.5 * chunk.hold_u[i] / cfg.hold_share
        if channel is not Channel.EMAIL and chunk.transfer_u[i] < cfg.transfer_share:
            contact.transfer_at = TRANSFER_AT
        contact.outcome_u, contact.survey_u = chunk.outcome_u[i], chunk.survey_u[i]
        contact.survey_delay_ms, contact.score_u = int(chunk.survey_delay_s[i] * 1000), chunk.score_u[i]
        if self._edges:
            mark_edge_shapes(contact, chunk, i, cfg)
        return contact

    def _pick_platform(self, u: float) -> Platform:
        # u is uniform on [0, 1); outside the WeChat draw it is reused, rescaled
        x = u * self._platform_total
        for platform, share in self._platforms:
            x -= share
            if x < 0:
                return platform
        return self._platforms[-1][0]

    def _pick_segment(self, u: float) -> tuple[Segment, int]:
        for segment, share, priority in self._segments:
            u -= share
            if u < 0:
                return segment, priority
        return Segment.STANDARD, 0

    def _customer(self, recent: list[str], u: float) -> str:
        share = self.config.repeat_share
        if recent and u < share:
            return recent[int(u / share * len(recent))]
        self._customers += 1
        ref = self._pseudonymise(f"79{(self.seed * 1_000_003 + self._customers) % 10**9:09d}")
        if len(recent) >= self.config.recent_customers:
            recent[self._customers % len(recent)] = ref
        else:
            recent.append(ref)
        return ref

    def _pseudonymise(self, phone_digits: str) -> str:
        """``pseudonymise(phone_digits, key)`` (a test holds them equal) from a keyed HMAC state
        prepared once: the customer draw is the engine's most frequent hash."""
        mac = self._hmac.copy()
        mac.update(phone_digits.encode())
        return mac.hexdigest()[:32]
