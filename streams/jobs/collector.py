"""Prometheus exposure of the KPI state, read at scrape time (no per-event metric updates).

Gauges per region x channel x window (ROLLING_15M, ROLLING_60M, TODAY) for the KPIs
of DESIGN.md section 3, live queue observations per region x channel x skill, agents
by state per region (NOT_READY ones also by reason), and the KPI counters (cumulative
since the state began; they survive restarts because they are part of the checkpointed
state). A worker exposes only the partitions it owns; `sum by (...)` across workers is
the whole picture.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.domain.kpi import ServiceLevelVariant, kpi_result
from streams.jobs.queues import StaffingConfig, occupancy, staffed_agents, staffing
from streams.jobs.state import PartitionState
from streams.jobs.windows import WINDOWS, series_views
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, SURVEY_TOPIC

_RATIOS = (
    (
        "ccpulse_service_level_ratio",
        "service_level",
        "Answered within threshold / (answered + abandoned after 5 s).",
    ),
    ("ccpulse_asa_seconds", "asa_seconds", "Mean queue wait of answered contacts."),
    ("ccpulse_aht_seconds", "aht_seconds", "Mean handle time (talk + hold + ACW) of handled contacts."),
    ("ccpulse_abandonment_ratio", "abandonment_rate", "Abandoned / offered, both without short abandons."),
    ("ccpulse_first_line_resolution_ratio", "first_line_resolution", "Resolved at the first line / ended."),
    ("ccpulse_csat_top_box_ratio", "csat_top_box", "Surveys scoring 5 / surveys."),
)
_COUNTERS = (  # metric (without _total), counter(s), scale
    ("ccpulse_contacts_offered", ("offered",), 1.0),
    ("ccpulse_contacts_answered", ("answered",), 1.0),
    ("ccpulse_contacts_answered_within_threshold", ("answered_within_threshold",), 1.0),
    ("ccpulse_contacts_abandoned", ("abandoned",), 1.0),
    ("ccpulse_contacts_short_abandoned", ("short_abandoned",), 1.0),
    ("ccpulse_answered_wait_seconds", ("total_wait_ms",), 0.001),
    ("ccpulse_contacts_handled", ("handled",), 1.0),
    ("ccpulse_handle_seconds", ("talk_ms", "hold_ms", "acw_ms"), 0.001),
)
AGENT_STATES = ("LOGGED_IN", "READY", "NOT_READY", "ON_CONTACT", "ACW")
_STREAMS = {"contact": CONTACT_TOPIC, "agent": AGENT_TOPIC, "survey": SURVEY_TOPIC}
_GAP_HELP = "Agents required by Erlang A for the SL target minus agents staffed."
_OCCUPANCY_HELP = "(On contact + ACW) / (on contact + ACW + ready) agent time."
_STAFFED_HELP = "Agents logged in with a skill of the channel's queues."
_REQUIRED_HELP = "Agents required by Erlang A for the SL target at the recent arrival rate and AHT."
_PLANNED_HELP = "Agents the published plan puts on the floor in the current 15-minute interval (event time)."
_NOT_READY_HELP = (
    "Agents NOT_READY now, by reason code (UNSPECIFIED: none given; OTHER: the rest when over 16 codes)."
)
# reason codes are a producer's choice (a code, never free text: streams/domain/events.py); the
# label keeps the most common ones and folds the rest into OTHER, so a producer cannot blow up
# the series count: at most MAX_REASON_LABELS codes (OTHER included) + UNSPECIFIED per region
MAX_REASON_LABELS = 16


class PlanLookup(Protocol):
    """The published plan (streams/jobs/plan_table.py GlobalPlanTable)."""

    def planned(self, region: str, channel: str, at_ms: int) -> int | None: ...


class KpiCollector(Collector):
    def __init__(
        self,
        states: Callable[[], Iterable[PartitionState]],
        lock: threading.Lock,
        staffing_config: StaffingConfig | None = None,
        clock: Callable[[], float] = time.time,
        variant: ServiceLevelVariant = ServiceLevelVariant.EXCLUDE_SHORT,
        plan: PlanLookup | None = None,
    ) -> None:
        self._states, self._lock, self._clock, self._variant = states, lock, clock, variant
        self._staffing = staffing_config or StaffingConfig()
        self._plan = plan

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            states = list(self._states())
            views = [view for state in states for view in series_views(state)]
            totals = {key: dict(value) for state in states for key, value in state.totals.items()}
            queues = _queue_observations(states)
            agents = Counter((v.region, v.state) for s in states for v in s.agents.values())
            not_ready = Counter(
                (v.region, v.reason) for s in states for v in s.agents.values() if v.state == "NOT_READY"
            )
            gaps = {k: v for state in states for k, v in staffing(state, self._staffing).items()}
            # staffed for every known region x channel; planned at the partition's event time,
            # the time the rolling windows behind `required` end at (docs/metrics.md)
            on_floor = {(k, s.watermark_ms): n for s in states for k, n in staffed_agents(s).items()}
            busy = {
                (region, window): value
                for state in states
                for window, span in WINDOWS.items()
                for region, value in occupancy(state, span).items()
            }
            late = {CONTACT_TOPIC: sum(s.late_events for s in states),
                    SURVEY_TOPIC: sum(s.late_surveys for s in states)}  # fmt: skip
            marks = {
                stream: max((s.watermarks.get(stream, 0) for s in states), default=0) for stream in _STREAMS
            }
        yield from _pipeline_metrics(late, marks, self._clock())
        gap = GaugeMetricFamily("ccpulse_staffing_gap_agents", _GAP_HELP, labels=["region", "channel"])
        for (region, channel), (required, staffed) in sorted(gaps.items()):
            gap.add_metric([region, channel], required - staffed)
        yield gap
        yield from self._staffing_metrics(gaps, on_floor)
        occupied = GaugeMetricFamily("ccpulse_occupancy_ratio", _OCCUPANCY_HELP, labels=["region", "window"])
        for (region, window), value in sorted(busy.items()):
            occupied.add_metric([region, window], value)
        yield occupied
        window_labels = ["region", "channel", "window"]
        for name, attribute, help_text in _RATIOS:
            family = GaugeMetricFamily(name, help_text, labels=window_labels)
            for view in views:
                value = getattr(kpi_result(view.counters, self._variant), attribute)
                if value is not None:
                    family.add_metric([view.region, view.channel, view.window], value)
            yield family
        for name, counters, scale in _COUNTERS:
            counter = CounterMetricFamily(
                name, f"KPI counter {'+'.join(counters)}", labels=["region", "channel"]
            )
            for (region, channel), bucket in sorted(totals.items()):
                value = sum(bucket[c] for c in counters) * scale
                counter.add_metric([region, channel], value)
            yield counter
        in_queue = GaugeMetricFamily(
            "ccpulse_contacts_in_queue", "Contacts waiting now.", labels=["region", "channel", "skill"]
        )
        oldest = GaugeMetricFamily(
            "ccpulse_oldest_contact_age_seconds",
            "Age of the oldest waiting contact.",
            labels=["region", "channel", "skill"],
        )
        for (region, channel, skill), (count, age_s) in sorted(queues.items()):
            in_queue.add_metric([region, channel, skill], count)
            oldest.add_metric([region, channel, skill], age_s)
        yield in_queue
        yield oldest
        family = GaugeMetricFamily("ccpulse_agents", "Agents by state.", labels=["region", "state"])
        for region in sorted({r for r, _ in agents}):
            logged_in = sum(n for (r, s), n in agents.items() if r == region and s != "LOGGED_OUT")
            family.add_metric([region, "LOGGED_IN"], logged_in)
            for state in AGENT_STATES[1:]:
                family.add_metric([region, state], agents.get((region, state), 0))
        yield family
        yield not_ready_by_reason(not_ready, {r for r, _ in agents})

    def _staffing_metrics(
        self, gaps: dict[tuple[str, str], tuple[int, int]], staffed: dict[tuple[tuple[str, str], int], int]
    ) -> Iterator[Metric]:
        """Required, staffed and planned agents per region x channel: the gap splits into
        required - planned (the plan is too thin) and planned - staffed (not adhering to it)."""
        labels = ["region", "channel"]
        required = GaugeMetricFamily("ccpulse_required_agents", _REQUIRED_HELP, labels=labels)
        for (region, channel), (needed, _staffed) in sorted(gaps.items()):
            required.add_metric([region, channel], needed)
        on_floor = GaugeMetricFamily("ccpulse_staffed_agents", _STAFFED_HELP, labels=labels)
        planned = GaugeMetricFamily("ccpulse_planned_agents", _PLANNED_HELP, labels=labels)
        for ((region, channel), at_ms), count in sorted(staffed.items()):
            on_floor.add_metric([region, channel], count)
            plan = self._plan.planned(region, channel, at_ms) if self._plan is not None and at_ms else None
            if plan is not None:
                planned.add_metric([region, channel], plan)
        yield required
        yield on_floor
        yield planned


def _pipeline_metrics(late: dict[str, int], marks: dict[str, int], now_s: float) -> Iterator[Metric]:
    counter = CounterMetricFamily(
        "ccpulse_late_events", "Events older than the allowed lateness.", labels=["topic"]
    )
    for topic, count in late.items():
        counter.add_metric([topic], count)
    yield counter
    lag = GaugeMetricFamily(
        "ccpulse_consumer_lag_seconds", "Wall clock minus newest event time.", labels=["topic"]
    )
    for stream, mark in marks.items():
        if mark:
            lag.add_metric([_STREAMS[stream]], max(0.0, now_s - mark / 1000))
    yield lag


def _queue_observations(states: Iterable[PartitionState]) -> dict[tuple[str, str, str], tuple[int, float]]:
    """(region, channel, skill) -> (contacts waiting, oldest wait in s at the partition event time)."""
    result: dict[tuple[str, str, str], tuple[int, float]] = {}
    for state in states:
        for key, (channel, _language) in state.queues.items():  # every known queue, 0 when empty
            region, queue = key.split("|", 1)
            result.setdefault((region, channel, queue), (0, 0.0))
        now = state.watermarks.get("contact", 0)
        for region, channel, queue, queued_at in state.waiting.values():
            count, age = result.get((region, channel, queue), (0, 0.0))
            result[(region, channel, queue)] = (count + 1, max(age, max(0, now - queued_at) / 1000))
    return result


def not_ready_by_reason(not_ready: Counter[tuple[str, str]], regions: Iterable[str]) -> GaugeMetricFamily:
    """``ccpulse_agents_not_ready{region, reason}``: the NOT_READY agents of
    ``ccpulse_agents{state="NOT_READY"}`` split by reason; they add up to it per region. Every
    region with agents has an UNSPECIFIED series (0 when none), as ``ccpulse_agents`` has a
    series for every state: a panel or alert sees 0, not a missing series."""
    by_code: Counter[str] = Counter()
    for (_, reason), n in not_ready.items():
        if reason:
            by_code[reason] += n
    ranked = sorted(by_code, key=lambda code: (-by_code[code], code))  # most agents first, then by name
    kept = set(ranked if len(ranked) <= MAX_REASON_LABELS else ranked[: MAX_REASON_LABELS - 1])
    folded: Counter[tuple[str, str]] = Counter({(region, "UNSPECIFIED"): 0 for region in regions})
    for (region, reason), n in not_ready.items():
        folded[(region, "UNSPECIFIED" if not reason else reason if reason in kept else "OTHER")] += n
    family = GaugeMetricFamily("ccpulse_agents_not_ready", _NOT_READY_HELP, labels=["region", "reason"])
    for (region, code), n in sorted(folded.items()):
        family.add_metric([region, code], n)
    return family
