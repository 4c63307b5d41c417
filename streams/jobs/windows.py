"""Windows read out of partition states: minute buckets, rolling 15/60 min, today; snapshot records.

Rolling windows end with the minute of the partition's watermark (event time), so a
replay shows what a live run showed at the same point of the stream. ``TODAY`` runs
from local midnight in the region's own time zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from streams.domain.kpi import COUNTERS, MINUTE_MS, initialize, kpi_result
from streams.jobs.kpi_apply import local_day_start
from streams.jobs.state import PartitionState, SeriesKey

WINDOWS = {"ROLLING_15M": 15 * MINUTE_MS, "ROLLING_60M": 60 * MINUTE_MS}


@dataclass(frozen=True)
class SeriesView:
    region: str
    channel: str
    window: str
    start_ms: int
    end_ms: int
    counters: dict[str, int]


def series_views(state: PartitionState, only: set[SeriesKey] | None = None) -> Iterator[SeriesView]:
    """ROLLING_15M, ROLLING_60M and TODAY for every region x channel of the state (or ``only``)."""
    if not state.minutes and not state.days:
        return
    end = state.watermark_ms - state.watermark_ms % MINUTE_MS + MINUTE_MS
    sums: dict[tuple[str, str, str], dict[str, int]] = {}
    for (region, channel, minute), bucket in state.minutes.items():
        if only is not None and (region, channel) not in only:
            continue
        for window, span in WINDOWS.items():
            if end - span <= minute < end:
                total = sums.get((region, channel, window))
                if total is None:
                    total = sums[(region, channel, window)] = initialize()
                for name in COUNTERS:
                    total[name] += bucket[name]
    series = {(r, c) for r, c, _ in state.minutes} | {(r, c) for r, c, _ in state.days}
    for region, channel in sorted(series if only is None else series & only):
        for window, span in WINDOWS.items():
            counters = sums.get((region, channel, window)) or initialize()
            yield SeriesView(region, channel, window, end - span, end, counters)
        day = local_day_start(region, state.watermark_ms)
        today = state.days.get((region, channel, day)) or initialize()
        yield SeriesView(region, channel, "TODAY", day, end, dict(today))


def snapshot_key(region: str, channel: str, window: str, start_ms: int) -> str:
    """``region|channel|window``; a MINUTE snapshot adds its start so that compaction keeps every minute."""
    base = f"{region}|{channel}|{window}"
    return f"{base}|{start_ms}" if window == "MINUTE" else base


def snapshot_record(view: SeriesView, version: int, emitted_at_ms: int) -> dict[str, object]:
    result = kpi_result(view.counters)
    return {
        "region": view.region,
        "channel": view.channel,
        "window": view.window,
        "window_start_ms": view.start_ms,
        "window_end_ms": view.end_ms,
        "version": version,
        "emitted_at_ms": emitted_at_ms,
        **{name: view.counters[name] for name in _SNAPSHOT_COUNTERS},
        # the schema's `abandoned` is after the short threshold; the domain counter includes short ones
        "abandoned": view.counters["abandoned"] - view.counters["short_abandoned"],
        "service_level": result.service_level,
        "asa_seconds": result.asa_seconds,
        "aht_seconds": result.aht_seconds,
        "abandonment_rate": result.abandonment_rate,
        "first_line_resolution": result.first_line_resolution,
        "csat_top_box": result.csat_top_box,
    }


_SNAPSHOT_COUNTERS = tuple(c for c in COUNTERS if c not in ("short_offered", "abandoned_within_threshold"))


def dirty_views(state: PartitionState) -> Iterable[SeriesView]:
    """The MINUTE buckets and series windows changed since the last call (and clears the marks)."""
    minutes = [
        SeriesView(r, c, "MINUTE", m, m + MINUTE_MS, dict(state.minutes[(r, c, m)]))
        for r, c, m in sorted(state.dirty_minutes)
        if (r, c, m) in state.minutes
    ]
    series = {s for s in state.dirty_series if s[1] != "AGENTS"}
    state.dirty_minutes.clear()
    state.dirty_series.clear()
    return [*minutes, *(series_views(state, series) if series else ())]


POSITION_BITS = 40  # the position sum's share of a version; the restore epoch sits above it
EPOCH_LIMIT = 1 << (63 - POSITION_BITS)  # Avro `long` is signed 64-bit: versions stay below 2**63


def snapshot_version(state: PartitionState) -> int:
    """The version of what is emitted now: ``epoch << 40 | sum of the partition's input positions``.

    Within one epoch (one owner of the partition, from its restore on) the sum grows with
    every message applied. A worker that takes a partition records ``epoch + 1`` in the
    changelog before it emits anything (``KpiWorker._on_assign``), so whatever it emits
    outranks everything emitted before, also a stale snapshot written after the last
    checkpoint by a worker that then crashed: the replay reads the three topics in other
    proportions, and a position sum alone can come out lower for the correct final value
    (seen: a minute's `answered` 0 from before a kill kept over the replay's 1). 2**40
    positions is ~36,000 months of the reference traffic in one partition; 2**23 epochs is
    one restore a minute for 15 years."""
    positions = sum(state.next_offsets.values())
    if positions >= 1 << POSITION_BITS or not 0 <= state.epoch < EPOCH_LIMIT:
        msg = f"snapshot version out of range: epoch {state.epoch}, position sum {positions}"
        raise OverflowError(msg)
    return state.epoch << POSITION_BITS | positions


def version_parts(version: int) -> tuple[int, int]:
    """(epoch, position sum) of a snapshot version."""
    return version >> POSITION_BITS, version & ((1 << POSITION_BITS) - 1)
