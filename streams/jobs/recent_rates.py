"""A region x channel's recent rates as routing and cc.queue.state read them, kept as running sums.

``recent_rates`` gives [aht_seconds (60 min), arrival_rate_per_s (15 min), abandon_rate_per_s
(15 min)] from the contact counters of the minute buckets in the windows ending with the minute
of the partition's contact watermark (surveys create buckets too, so a rate is None when nothing
was offered, never "0 because a survey came first"). It is read at every arrival and every
queue-state boundary; summing 60 buckets each time was ~7 % of the worker's time. So the sums of
a series' current window are kept (``PartitionState.rate_sums``, not persisted): computed from
the buckets once, slid when the window's end moves on to a new minute (the minutes that enter
added, those that leave taken out), and kept current by ``add_delta``, which the KPI code calls
with every delta it adds to a minute bucket. The counters are integers,
so the running sums equal a fresh sum exactly (``tests/unit/test_recent_rates.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.domain.kpi import MINUTE_MS
from streams.jobs.state import PartitionState

WINDOW_MS = 60 * MINUTE_MS  # AHT
RECENT_MS = 15 * MINUTE_MS  # arrivals and abandons
_SPAN_S = RECENT_MS / 1000


def _sums(state: PartitionState, region: str, channel: str, end: int) -> list[int]:
    """[end, handled, handle ms, offered, abandoned] of the window ending at ``end``, from the buckets."""
    handled = handle_ms = offered = abandoned = 0
    minutes = state.minutes
    for minute in range(end - WINDOW_MS, end, MINUTE_MS):
        bucket = minutes.get((region, channel, minute))
        if bucket is None:
            continue
        handled += bucket["handled"]
        handle_ms += bucket["talk_ms"] + bucket["hold_ms"] + bucket["acw_ms"]
        if minute >= end - RECENT_MS:
            offered += bucket["offered"] - bucket["short_offered"]
            abandoned += bucket["abandoned"] - bucket["short_abandoned"]
    return [end, handled, handle_ms, offered, abandoned]


def _slide(state: PartitionState, region: str, channel: str, sums: list[int], end: int) -> None:
    """Move the window's end forward to ``end``: the minutes that enter are added, those that leave
    the 60 or the 15 minute window are taken out (their buckets hold what was added: ``add_delta``
    kept the sums current with them)."""
    minutes, old = state.minutes, sums[0]
    for minute in range(old - WINDOW_MS, end - WINDOW_MS, MINUTE_MS):  # leaves the 60 min window
        bucket = minutes.get((region, channel, minute))
        if bucket is not None:
            sums[1] -= bucket["handled"]
            sums[2] -= bucket["talk_ms"] + bucket["hold_ms"] + bucket["acw_ms"]
    for minute in range(old - RECENT_MS, end - RECENT_MS, MINUTE_MS):  # leaves the 15 min window
        bucket = minutes.get((region, channel, minute))
        if bucket is not None:
            sums[3] -= bucket["offered"] - bucket["short_offered"]
            sums[4] -= bucket["abandoned"] - bucket["short_abandoned"]
    for minute in range(old, end, MINUTE_MS):  # enters both
        bucket = minutes.get((region, channel, minute))
        if bucket is not None:
            sums[1] += bucket["handled"]
            sums[2] += bucket["talk_ms"] + bucket["hold_ms"] + bucket["acw_ms"]
            sums[3] += bucket["offered"] - bucket["short_offered"]
            sums[4] += bucket["abandoned"] - bucket["short_abandoned"]
    sums[0] = end


def recent_rates(state: PartitionState, region: str, channel: str) -> list[float | None]:
    """[aht_seconds (60 min), arrival_rate_per_s (15 min), abandon_rate_per_s (15 min)]."""
    wm = state.watermarks.get("contact", 0)
    end = wm - wm % MINUTE_MS + MINUTE_MS
    sums = state.rate_sums.get((region, channel))
    # sliding is exact for any move forward (every term is a bucket's current value); beyond 15
    # minutes a fresh sum of the 60 buckets reads fewer of them
    if sums is None or not sums[0] <= end <= sums[0] + RECENT_MS:
        sums = state.rate_sums[(region, channel)] = _sums(state, region, channel, end)
    elif sums[0] != end:
        _slide(state, region, channel, sums, end)
    _, handled, handle_ms, offered, abandoned = sums
    arrivals = offered / _SPAN_S if offered > 0 else None
    return [
        handle_ms / handled / 1000 if handled else None,
        arrivals,
        abandoned / _SPAN_S if arrivals is not None else None,
    ]


def add_delta(
    state: PartitionState, region: str, channel: str, minute: int, delta: Mapping[str, int]
) -> None:
    """A delta was added to the bucket (region, channel, minute): keep the running sums exact."""
    sums = state.rate_sums.get((region, channel))
    if sums is None:
        return
    end = sums[0]
    if not end - WINDOW_MS <= minute < end:
        return
    get = delta.get
    sums[1] += get("handled", 0)
    sums[2] += get("talk_ms", 0) + get("hold_ms", 0) + get("acw_ms", 0)
    if minute >= end - RECENT_MS:
        sums[3] += get("offered", 0) - get("short_offered", 0)
        sums[4] += get("abandoned", 0) - get("short_abandoned", 0)


def forget(state: PartitionState) -> None:
    """Buckets were dropped (eviction): the next reading sums the buckets again."""
    state.rate_sums.clear()
