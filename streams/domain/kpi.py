"""KPI minute buckets: counters with initialize / add / merge / result (DESIGN.md section 3).

A bucket holds sums and counts only (never averages), so buckets of any window
(1 min, rolling 15/60 min, today in local time, a month) merge exactly by addition,
in the stream and in ClickHouse alike. `kpi_result` derives the ratios and means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from streams.domain.events import Channel

MINUTE_MS = 60_000
SHORT_ABANDON_MS = 5_000

# Service-level answer thresholds per channel (DESIGN.md: voice 40 s, chat 60 s,
# messenger 120 s, email 24 h).
DEFAULT_SL_THRESHOLD_MS: Mapping[Channel, int] = {
    Channel.VOICE: 40_000,
    Channel.CHAT: 60_000,
    Channel.MESSENGER: 120_000,
    Channel.EMAIL: 86_400_000,
}

COUNTERS = (
    "offered",
    "short_offered",  # offered contacts that turned out to be short abandons (same bucket as offered)
    "answered",
    "answered_within_threshold",
    "abandoned",
    "short_abandoned",
    "abandoned_within_threshold",
    "total_wait_ms",
    "handled",
    "talk_ms",
    "hold_ms",
    "acw_ms",
    "transferred",
    "ended",
    "resolved_first_line",
    "surveys",
    "survey_score_sum",
    "top_box",
)

Bucket = dict[str, int]


class ServiceLevelVariant(StrEnum):
    """How abandoned contacts enter the service level (vendors differ; ours is explicit).

    EXCLUDE_SHORT (default, DESIGN.md): answered_within / (answered + abandoned - short abandons)
    IGNORE_ABANDONS: answered_within / answered
    ABANDONS_POSITIVE: (answered_within + abandoned_within) / (answered + abandoned)
    ABANDONS_NEGATIVE: answered_within / (answered + abandoned)
    """

    EXCLUDE_SHORT = "EXCLUDE_SHORT"
    IGNORE_ABANDONS = "IGNORE_ABANDONS"
    ABANDONS_POSITIVE = "ABANDONS_POSITIVE"
    ABANDONS_NEGATIVE = "ABANDONS_NEGATIVE"


def bucket_start(event_time_ms: int) -> int:
    return event_time_ms - event_time_ms % MINUTE_MS


def initialize() -> Bucket:
    return dict.fromkeys(COUNTERS, 0)


def add(bucket: Bucket, delta: Mapping[str, int]) -> Bucket:
    """A new bucket with ``delta`` added (counters not in COUNTERS are an error)."""
    unknown = set(delta) - set(COUNTERS)
    if unknown:
        msg = f"unknown KPI counters {sorted(unknown)}; expected some of {COUNTERS}"
        raise KeyError(msg)
    result = dict(bucket)
    for name, value in delta.items():
        result[name] += value
    return result


def merge(buckets: Iterable[Mapping[str, int]]) -> Bucket:
    total = initialize()
    for bucket in buckets:
        for name in COUNTERS:
            total[name] += bucket.get(name, 0)
    return total


@dataclass(frozen=True, slots=True)
class KpiResult:
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    service_level: float | None
    asa_seconds: float | None
    aht_seconds: float | None
    talk_seconds: float | None
    hold_seconds: float | None
    acw_seconds: float | None
    abandonment_rate: float | None
    transfer_rate: float | None
    first_line_resolution: float | None
    csat_top_box: float | None
    csat_mean: float | None


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def service_level(bucket: Mapping[str, int], variant: ServiceLevelVariant) -> float | None:
    within, answered = bucket["answered_within_threshold"], bucket["answered"]
    abandoned, short = bucket["abandoned"], bucket["short_abandoned"]
    if variant is ServiceLevelVariant.EXCLUDE_SHORT:
        return _ratio(within, answered + abandoned - short)
    if variant is ServiceLevelVariant.IGNORE_ABANDONS:
        return _ratio(within, answered)
    if variant is ServiceLevelVariant.ABANDONS_POSITIVE:
        return _ratio(within + bucket["abandoned_within_threshold"], answered + abandoned)
    return _ratio(within, answered + abandoned)


def kpi_result(
    bucket: Mapping[str, int], variant: ServiceLevelVariant = ServiceLevelVariant.EXCLUDE_SHORT
) -> KpiResult:
    """Ratios and means of a (merged) bucket; None where the denominator is zero."""
    b = bucket
    handled = b["handled"]
    return KpiResult(
        offered=b["offered"],
        answered=b["answered"],
        abandoned=b["abandoned"],
        short_abandoned=b["short_abandoned"],
        service_level=service_level(b, variant),
        asa_seconds=_ratio(b["total_wait_ms"] / 1000, b["answered"]),
        aht_seconds=_ratio((b["talk_ms"] + b["hold_ms"] + b["acw_ms"]) / 1000, handled),
        talk_seconds=_ratio(b["talk_ms"] / 1000, handled),
        hold_seconds=_ratio(b["hold_ms"] / 1000, handled),
        acw_seconds=_ratio(b["acw_ms"] / 1000, handled),
        abandonment_rate=_ratio(b["abandoned"] - b["short_abandoned"], b["offered"] - b["short_offered"]),
        transfer_rate=_ratio(b["transferred"], handled),
        first_line_resolution=_ratio(b["resolved_first_line"], b["ended"]),
        csat_top_box=_ratio(b["top_box"], b["surveys"]),
        csat_mean=_ratio(b["survey_score_sum"], b["surveys"]),
    )
