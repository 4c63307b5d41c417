"""The metric catalogue: every ccpulse metric in one place, created on an injected registry.

Base units (seconds, ratios 0..1), `_total` counters, prefix `ccpulse_`, labels limited
to region/channel/skill/window/state/topic/reason/table (never an id). docs/metrics.md
is generated from CATALOGUE (`python -m streams.observability.metrics > docs/metrics.md`) and a test
checks it is current. Per-region KPI gauges will come from a custom collector that
reads state at scrape time (issue #4); their names are catalogued here already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ALLOWED_LABELS = frozenset(
    {"region", "channel", "skill", "window", "state", "topic", "reason", "table", "method"}
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ERROR_BUCKETS = (-600.0, -300.0, -120.0, -60.0, -30.0, -10.0, 0.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # counter | gauge | histogram | collector-gauge (read at scrape time)
    unit: str
    labels: tuple[str, ...]
    help: str


CATALOGUE: tuple[MetricSpec, ...] = (
    # KPIs per region x channel (custom collector, issue #4)
    MetricSpec(
        "ccpulse_service_level_ratio",
        "collector-gauge",
        "ratio",
        ("region", "channel", "window"),
        "Answered within the channel's threshold / (answered + abandoned after the short threshold).",
    ),
    MetricSpec(
        "ccpulse_asa_seconds",
        "collector-gauge",
        "seconds",
        ("region", "channel", "window"),
        "Mean queue wait of answered contacts.",
    ),
    MetricSpec(
        "ccpulse_aht_seconds",
        "collector-gauge",
        "seconds",
        ("region", "channel", "window"),
        "Mean handle time (talk + hold + ACW) of handled contacts.",
    ),
    MetricSpec(
        "ccpulse_abandonment_ratio",
        "collector-gauge",
        "ratio",
        ("region", "channel", "window"),
        "Abandoned / offered, both without short abandons.",
    ),
    MetricSpec(
        "ccpulse_contacts_in_queue",
        "collector-gauge",
        "contacts",
        ("region", "channel", "skill"),
        "Contacts waiting now.",
    ),
    MetricSpec(
        "ccpulse_oldest_contact_age_seconds",
        "collector-gauge",
        "seconds",
        ("region", "channel", "skill"),
        "Age of the oldest waiting contact.",
    ),
    MetricSpec(
        "ccpulse_agents",
        "collector-gauge",
        "agents",
        ("region", "state"),
        "Agents by state (LOGGED_IN, READY, ON_CONTACT, ACW, NOT_READY).",
    ),
    MetricSpec(
        "ccpulse_agents_not_ready",
        "collector-gauge",
        "agents",
        ("region", "reason"),
        "Agents NOT_READY now, by reason code (UNSPECIFIED: none given; OTHER: the rest when over 16 codes).",
    ),
    MetricSpec(
        "ccpulse_first_line_resolution_ratio",
        "collector-gauge",
        "ratio",
        ("region", "channel", "window"),
        "Ended contacts resolved at the first line / ended contacts.",
    ),
    MetricSpec(
        "ccpulse_csat_top_box_ratio",
        "collector-gauge",
        "ratio",
        ("region", "channel", "window"),
        "Surveys scoring 5 / surveys.",
    ),
    MetricSpec(
        "ccpulse_occupancy_ratio",
        "collector-gauge",
        "ratio",
        ("region", "window"),
        "(On contact + ACW) / (on contact + ACW + ready) agent time (chat concurrency not weighted).",
    ),
    MetricSpec(
        "ccpulse_staffing_gap_agents",
        "collector-gauge",
        "agents",
        ("region", "channel"),
        "Agents required by Erlang A for the SL target minus agents staffed.",
    ),
    MetricSpec(
        "ccpulse_required_agents",
        "collector-gauge",
        "agents",
        ("region", "channel"),
        "Agents required by Erlang A for the SL target at the recent arrival rate (15 min) and AHT (60 min).",
    ),
    MetricSpec(
        "ccpulse_staffed_agents",
        "collector-gauge",
        "agents",
        ("region", "channel"),
        "Agents logged in (any state but LOGGED_OUT) with a skill of the channel's queues.",
    ),
    MetricSpec(
        "ccpulse_planned_agents",
        "collector-gauge",
        "agents",
        ("region", "channel"),
        "Agents the published plan (cc.staffing.plan) puts on the floor in the current 15-minute interval.",
    ),
    # KPI counters per region x channel: what the roll-up recording rules sum (ratios cannot be averaged)
    MetricSpec(
        "ccpulse_contacts_offered_total",
        "counter",
        "contacts",
        ("region", "channel"),
        "Contacts that entered a queue (bucket of queue entry).",
    ),
    MetricSpec(
        "ccpulse_contacts_answered_total",
        "counter",
        "contacts",
        ("region", "channel"),
        "Contacts answered by an agent.",
    ),
    MetricSpec(
        "ccpulse_contacts_answered_within_threshold_total",
        "counter",
        "contacts",
        ("region", "channel"),
        "Contacts answered within the channel's service-level threshold.",
    ),
    MetricSpec(
        "ccpulse_contacts_abandoned_total",
        "counter",
        "contacts",
        ("region", "channel"),
        "Contacts that left the queue unanswered (short abandons included).",
    ),
    MetricSpec(
        "ccpulse_contacts_short_abandoned_total",
        "counter",
        "contacts",
        ("region", "channel"),
        "Abandons within the short threshold (5 s), excluded from SL and abandonment.",
    ),
    MetricSpec(
        "ccpulse_answered_wait_seconds_total",
        "counter",
        "seconds",
        ("region", "channel"),
        "Sum of queue waits of answered contacts (ASA = this / answered).",
    ),
    MetricSpec(
        "ccpulse_contacts_handled_total",
        "counter",
        "contacts",
        ("region", "channel"),
        "Contacts whose after-call work ended.",
    ),
    MetricSpec(
        "ccpulse_handle_seconds_total",
        "counter",
        "seconds",
        ("region", "channel"),
        "Sum of talk + hold + ACW of handled contacts (AHT = this / handled).",
    ),
    # pipeline health
    MetricSpec("ccpulse_events_in_total", "counter", "events", ("topic",), "Messages consumed per topic."),
    MetricSpec(
        "ccpulse_decode_errors_total",
        "counter",
        "events",
        ("topic", "reason"),
        "Messages that failed to decode or validate, by InvalidEvent reason.",
    ),
    MetricSpec(
        "ccpulse_dead_letters_total",
        "counter",
        "events",
        ("topic", "reason"),
        "Messages sent to cc.dead-letter, by original topic and reason.",
    ),
    MetricSpec(
        "ccpulse_late_events_total",
        "counter",
        "events",
        ("topic",),
        "Events older than the allowed lateness (history only).",
    ),
    MetricSpec(
        "ccpulse_event_to_visible_seconds",
        "histogram",
        "seconds",
        (),
        "Event time to KPI visible in /metrics.",
    ),
    MetricSpec(
        "ccpulse_consumer_lag_seconds",
        "gauge",
        "seconds",
        ("topic",),
        "Event time of the newest consumed message behind the wall clock.",
    ),
    MetricSpec(
        "ccpulse_routing_decisions_total",
        "counter",
        "decisions",
        ("reason",),
        "Routing decisions by reason (HOME, OVERFLOW_EWT, ...); overflow rate = OVERFLOW_EWT / all.",
    ),
    MetricSpec(
        "ccpulse_routing_decision_seconds",
        "histogram",
        "seconds",
        (),
        "ARRIVED event consumed (its batch received) to routing decision produced, in the worker.",
    ),
    MetricSpec(
        "ccpulse_checkpoint_seconds",
        "histogram",
        "seconds",
        (),
        "One worker checkpoint (outputs flushed, offsets committed); consumption pauses meanwhile.",
    ),
    MetricSpec(
        "ccpulse_slow_checkpoints_total",
        "counter",
        "checkpoints",
        (),
        "Checkpoints slower than 2 s (also logged as 'slow checkpoint'; a broker failing over, mostly).",
    ),
    MetricSpec(
        "ccpulse_ewt_error_seconds",
        "histogram",
        "seconds",
        ("channel", "method"),
        "Actual minus predicted wait of answered contacts (negative: answered sooner than predicted).",
    ),
    MetricSpec(
        "ccpulse_history_rows_written_total",
        "counter",
        "rows",
        ("table",),
        "Rows written to ClickHouse by the history sink.",
    ),
    MetricSpec(
        "ccpulse_history_batches_total", "counter", "batches", (), "Batches written by the history sink."
    ),
    MetricSpec("ccpulse_history_batch_rows", "histogram", "rows", (), "Rows per history batch."),
    MetricSpec(
        "ccpulse_history_write_seconds", "histogram", "seconds", (), "Duration of one history batch write."
    ),
    MetricSpec(
        "ccpulse_history_write_failures_total",
        "counter",
        "failures",
        (),
        "Failed history writes (each is retried with backoff; input paused meanwhile).",
    ),
    MetricSpec(
        "ccpulse_history_invalid_skipped_total",
        "counter",
        "events",
        ("topic",),
        "Undecodable messages the history sink skipped (their dead-letter copy is stored).",
    ),
)

_ROW_BUCKETS = (10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000)


def spec(name: str) -> MetricSpec:
    for item in CATALOGUE:
        if item.name == name:
            return item
    msg = f"{name!r} is not in the metric catalogue"
    raise KeyError(msg)


def create(registry: CollectorRegistry, names: tuple[str, ...]) -> dict[str, Any]:
    """prometheus_client objects for the named (non-collector) metrics on ``registry``."""
    created: dict[str, Any] = {}
    for name in names:
        item = spec(name)
        if item.kind == "counter":
            created[name] = Counter(name.removesuffix("_total"), item.help, item.labels, registry=registry)
        elif item.kind == "gauge":
            created[name] = Gauge(name, item.help, item.labels, registry=registry)
        elif item.kind == "histogram":
            buckets: tuple[float, ...] = _ROW_BUCKETS if item.unit == "rows" else LATENCY_BUCKETS
            if item.name == "ccpulse_ewt_error_seconds":
                buckets = ERROR_BUCKETS
            created[name] = Histogram(name, item.help, item.labels, registry=registry, buckets=buckets)
        else:
            msg = f"{name} is read at scrape time by a collector, not created here"
            raise ValueError(msg)
    return created


STAFFING_NOTES = """
## Required, planned and staffed agents

`ccpulse_staffing_gap_agents` = required - staffed splits into two questions:
`ccpulse_required_agents - ccpulse_planned_agents` (the plan is too thin: WFM re-plans) and
`ccpulse_planned_agents - ccpulse_staffed_agents` (the floor does not adhere to the plan:
the team lead acts; alert `CcpulseStaffedBelowPlan`).

- **Which interval.** "Current" is the 15-minute interval holding the partition's event-time
  watermark (the newest event time the worker has read for that region's partition), not the
  worker's wall clock: the rolling windows behind `required` end at that time and `staffed`
  is the agent state as of that time, so the three gauges describe the same moment, also in
  a replay or a simulation faster than real time. On live traffic the two differ by the
  consumer lag (seconds).
- **Where from.** `planned` comes from cc.staffing.plan, read by every worker as a global
  table (all partitions, the latest publication per interval wins); a worker exposes it only
  for the regions of the partitions it owns, beside their `staffed`, so `sum by (region)`
  across workers counts each region once. No plan for the interval: no `planned` sample.
- **Which region x channel.** `staffed` and `planned` for every region x channel whose queue
  the worker has seen (0 staffed included); `required` and the gap only once the region x
  channel has a measured arrival rate and AHT.
"""


def markdown() -> str:
    lines = [
        "# Metric catalogue",
        "",
        "Generated from `streams/observability/metrics.py`"
        " (`python -m streams.observability.metrics > docs/metrics.md`); a test fails",
        "when this file is out of date. Units are base units; ratios are 0..1.",
        "",
        "| metric | type | unit | labels | meaning |",
        "|---|---|---|---|---|",
    ]
    for item in CATALOGUE:
        labels = ", ".join(item.labels) or "-"
        lines.append(f"| `{item.name}` | {item.kind} | {item.unit} | {labels} | {item.help} |")
    return "\n".join(lines) + "\n" + STAFFING_NOTES


if __name__ == "__main__":
    print(markdown(), end="")
