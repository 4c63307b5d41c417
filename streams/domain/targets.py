"""The reference operation's targets, per channel, and the operator tables built on them.

The published targets (DESIGN.md): a voice call's AHT about 2 min 20 s and a wait under
40 s, ~99 % resolved at the first line, ~95 % rating 5 of 5. Decisions where the reference
is silent (docs/runbook.md, "Targets per channel"):

- Service level: 80 % answered within the channel's own threshold
  (DEFAULT_SL_THRESHOLD_MS: voice 40 s, chat 60 s, messenger 120 s, e-mail 24 h).
- ASA: at most the channel's threshold (voice 40 s is the published "wait under 40 s").
- AHT: 140 s for voice only. Chat and messenger agents work several contacts at once and
  e-mail is asynchronous, so their handle time is not comparable with a call's and the
  reference publishes none: shown with "no target".
- First-line resolution 99 % and CSAT top box 95 % are all-channel targets.
- Offered, FLR and CSAT are meaningful summed over channels; SL, ASA and AHT are not
  (e-mail's 24 h threshold inflates an all-channel ASA to minutes).

A KPI with its target is a ``Mark``: value, target, and met (None: no value or no target).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams.domain.events import Channel
from streams.domain.kpi import COUNTERS, DEFAULT_SL_THRESHOLD_MS, KpiResult, initialize, kpi_result

SERVICE_LEVEL_TARGET = 0.80
ASA_TARGET_S: Mapping[Channel, float] = {c: ms / 1000 for c, ms in DEFAULT_SL_THRESHOLD_MS.items()}
AHT_TARGET_S: Mapping[Channel, float] = {Channel.VOICE: 140.0}
FIRST_LINE_RESOLUTION_TARGET = 0.99
CSAT_TOP_BOX_TARGET = 0.95
DEFAULT_MIN_REGION_CONTACTS = 20  # a region is ranked only with at least this many offered contacts


@dataclass(frozen=True)
class Mark:
    """One KPI against its target; ``higher_is_better`` says which side meets it."""

    value: float | None
    target: float | None
    higher_is_better: bool

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def verdict(self) -> str:
        """'met', 'MISSED', 'no target' or 'no data'."""
        if self.target is None:
            return "no target"
        if self.met is None:
            return "no data"
        return "met" if self.met else "MISSED"


@dataclass(frozen=True)
class ChannelRow:
    channel: Channel
    result: KpiResult
    service_level: Mark
    asa: Mark
    aht: Mark

    @property
    def sl_threshold_s(self) -> float:
        return DEFAULT_SL_THRESHOLD_MS[self.channel] / 1000


@dataclass(frozen=True)
class AllChannels:
    """The figures that mean something summed over channels."""

    result: KpiResult
    first_line_resolution: Mark
    csat_top_box: Mark


def sum_buckets(buckets: Mapping[str, Mapping[str, int]] | list[Mapping[str, int]]) -> dict[str, int]:
    total = initialize()
    for bucket in buckets.values() if isinstance(buckets, Mapping) else buckets:
        for name in COUNTERS:
            total[name] += bucket[name]
    return total


def channel_rows(by_channel: Mapping[str, Mapping[str, int]]) -> list[ChannelRow]:
    """One row per channel (all four, in Channel order, empty ones with no data), each KPI
    against that channel's own target."""
    rows = []
    for channel in Channel:
        result = kpi_result(by_channel.get(channel.value) or initialize())
        rows.append(
            ChannelRow(
                channel,
                result,
                Mark(result.service_level, SERVICE_LEVEL_TARGET, higher_is_better=True),
                Mark(result.asa_seconds, ASA_TARGET_S[channel], higher_is_better=False),
                Mark(result.aht_seconds, AHT_TARGET_S.get(channel), higher_is_better=False),
            )
        )
    return rows


def all_channels(by_channel: Mapping[str, Mapping[str, int]]) -> AllChannels:
    result = kpi_result(sum_buckets(by_channel))
    return AllChannels(
        result,
        Mark(result.first_line_resolution, FIRST_LINE_RESOLUTION_TARGET, higher_is_better=True),
        Mark(result.csat_top_box, CSAT_TOP_BOX_TARGET, higher_is_better=True),
    )


def rank_regions(
    by_region: Mapping[str, Mapping[str, int]], min_contacts: int = DEFAULT_MIN_REGION_CONTACTS
) -> tuple[list[tuple[str, KpiResult]], list[tuple[str, KpiResult]]]:
    """(ranked, too_few): regions with at least ``min_contacts`` offered and a service
    level, worst service level first (ties by region code); the rest by volume, largest
    first. A region with 3 contacts and one late answer is not the "worst region"."""
    results = {region: kpi_result(bucket) for region, bucket in by_region.items()}
    ranked = sorted(
        ((r, k) for r, k in results.items() if k.offered >= min_contacts and k.service_level is not None),
        key=lambda item: (item[1].service_level, item[0]),
    )
    chosen = {r for r, _ in ranked}
    rest = ((r, k) for r, k in results.items() if r not in chosen)
    too_few = sorted(rest, key=lambda item: (-item[1].offered, item[0]))
    return ranked, too_few
