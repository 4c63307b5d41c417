"""Domain events -> history rows (column order of the migrations). Pure mapping.

DateTime columns are whole epoch seconds (UTC) as ints: both stores take ints and
aware datetimes, and ints cost nothing to send (the driver converts every datetime
through pytz: half of an insert's time before). The milliseconds stay in *_ms.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from streams.domain.events import AgentEvent, ContactEvent, SurveyEvent
from streams.history.store import epoch_seconds
from streams.wire.topics import AGENT_TOPIC, CONTACT_TOPIC, DEAD_LETTER_TOPIC, SNAPSHOT_TOPIC, SURVEY_TOPIC

CONTACT_COLUMNS = (
    "event_id", "contact_id", "type", "channel", "platform", "region", "queue", "language", "segment",
    "priority", "customer_ref", "agent_id", "resolution", "reason_code", "home_region", "event_time",
    "event_time_ms", "kafka_partition", "kafka_offset", "ingested_at",
)  # fmt: skip
AGENT_COLUMNS = (
    "event_id", "agent_id", "region", "state", "skills", "languages", "chat_concurrency", "reason",
    "event_time", "event_time_ms", "kafka_partition", "kafka_offset", "ingested_at",
)  # fmt: skip
SURVEY_COLUMNS = (
    "event_id", "contact_id", "region", "channel", "score", "event_time", "event_time_ms",
    "kafka_partition", "kafka_offset", "ingested_at",
)  # fmt: skip
DEAD_LETTER_COLUMNS = (
    "original_topic", "original_partition", "original_offset", "original_key_b64", "original_value_b64",
    "reason", "detail", "consumer", "failed_at", "failed_at_ms",
)  # fmt: skip

STREAM_KPI_COUNTERS = (
    "offered", "answered", "answered_within_threshold", "abandoned", "short_abandoned", "total_wait_ms",
    "handled", "talk_ms", "hold_ms", "acw_ms", "transferred", "ended", "resolved_first_line", "surveys",
    "survey_score_sum", "top_box",
)  # fmt: skip
KPI_STREAM_COLUMNS = ("region", "channel", "bucket_start", "version", *STREAM_KPI_COUNTERS, "emitted_at")

TABLE_OF_TOPIC = {
    CONTACT_TOPIC: ("contact_events", CONTACT_COLUMNS),
    AGENT_TOPIC: ("agent_events", AGENT_COLUMNS),
    SURVEY_TOPIC: ("survey_events", SURVEY_COLUMNS),
    DEAD_LETTER_TOPIC: ("dead_letters", DEAD_LETTER_COLUMNS),
    SNAPSHOT_TOPIC: ("kpi_minute_stream", KPI_STREAM_COLUMNS),
}


def utc(ms: int) -> datetime:
    """Whole seconds as an aware datetime (what queries return for a DateTime column)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC)


def contact_row(e: ContactEvent, partition: int, offset: int, ingested: datetime | int) -> tuple[Any, ...]:
    return (
        e.event_id, e.contact_id, e.type.value, e.channel.value, e.platform.value if e.platform else "",
        e.region, e.queue, e.language, e.segment.value, e.priority, e.customer_ref, e.agent_id or "",
        e.resolution.value if e.resolution else "", e.reason_code or "", e.home_region or "",
        e.event_time_ms // 1000, e.event_time_ms, partition, offset, epoch_seconds(ingested),
    )  # fmt: skip


def agent_row(e: AgentEvent, partition: int, offset: int, ingested: datetime | int) -> tuple[Any, ...]:
    return (
        e.event_id, e.agent_id, e.region, e.state.value, list(e.skills), list(e.languages),
        e.chat_concurrency, e.reason or "", e.event_time_ms // 1000, e.event_time_ms, partition, offset,
        epoch_seconds(ingested),
    )  # fmt: skip


def survey_row(e: SurveyEvent, partition: int, offset: int, ingested: datetime | int) -> tuple[Any, ...]:
    return (
        e.event_id, e.contact_id, e.region, e.channel.value, e.score, e.event_time_ms // 1000,
        e.event_time_ms, partition, offset, epoch_seconds(ingested),
    )  # fmt: skip


def dead_letter_row(record: dict[str, Any]) -> tuple[Any, ...]:
    key = record.get("original_key")
    return (
        record["original_topic"], record["original_partition"], record["original_offset"],
        base64.b64encode(key).decode() if key else "", base64.b64encode(record["original_value"]).decode(),
        record["reason"], record["detail"], record["consumer"], record["failed_at_ms"] // 1000,
        record["failed_at_ms"],
    )  # fmt: skip


def snapshot_row(record: dict[str, Any]) -> tuple[Any, ...] | None:
    """A MINUTE snapshot as a kpi_minute_stream row (rolling and TODAY windows are not stored)."""
    if record["window"] != "MINUTE" or record["channel"] is None:
        return None
    counters = dict(record)
    counters["abandoned"] = record["abandoned"] + record["short_abandoned"]  # kpi_minute's convention
    return (
        record["region"],
        record["channel"],
        record["window_start_ms"] // 1000,
        record["version"],
        *(counters[name] for name in STREAM_KPI_COUNTERS),
        record["emitted_at_ms"] // 1000,
    )


def event_row(
    topic: str, value: Any, partition: int, offset: int, ingested: datetime | int
) -> tuple[Any, ...] | None:
    if isinstance(value, ContactEvent):
        return contact_row(value, partition, offset, ingested)
    if isinstance(value, AgentEvent):
        return agent_row(value, partition, offset, ingested)
    if isinstance(value, SurveyEvent):
        return survey_row(value, partition, offset, ingested)
    if topic == DEAD_LETTER_TOPIC:
        return dead_letter_row(value)
    if topic == SNAPSHOT_TOPIC:
        return snapshot_row(value)
    msg = f"no history table for topic {topic!r} (value {type(value).__name__})"
    raise KeyError(msg)


COLUMNS_OF_TABLE = {table: columns for table, columns in TABLE_OF_TOPIC.values()}
