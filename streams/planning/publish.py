"""Publish a staffing plan: its intervals to cc.staffing.plan and to ClickHouse `staffing_plan`.

Both places keep the latest publication per region x channel x 15-minute interval: the
topic is compacted on the key ``region|channel|interval_start_ms``, and the table is a
ReplacingMergeTree versioned by ``published_at_ms``. Publishing the same plan twice is
harmless (same keys, same rows once merged); publishing a new plan replaces exactly the
intervals it covers. The publication time is an argument (an injected clock at the
caller), so a replay writes identical records. Functions, not a command: the CLI calls them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streams.domain.events import Channel
from streams.domain.shift_plan import INTERVAL_MS, PlanInterval
from streams.history.store import HistoryStore
from streams.wire.codec import Codec
from streams.wire.topics import PLAN_TOPIC

PLAN_TABLE = "staffing_plan"
PLAN_COLUMNS = (
    "region", "channel", "interval_start", "plan_id", "forecast_offered", "forecast_aht_seconds",
    "required_agents", "planned_agents", "published_at_ms",
)  # fmt: skip
_CHANNELS = frozenset(c.value for c in Channel)


def plan_key(region: str, channel: str, interval_start_ms: int) -> bytes:
    """The compaction key: one record per region x channel x interval survives."""
    return f"{region}|{channel}|{interval_start_ms}".encode()


def check_interval(interval: PlanInterval) -> None:
    """Refuse what no consumer could use: a misaligned interval, an unknown channel, negatives."""
    where = f"plan {interval.plan_id} {interval.region}|{interval.channel}|{interval.interval_start_ms}"
    if interval.interval_start_ms % INTERVAL_MS:
        msg = f"{where}: interval start is not on a 15-minute boundary (UTC epoch ms)"
        raise ValueError(msg)
    if interval.channel not in _CHANNELS:
        msg = f"{where}: channel {interval.channel!r} is not one of {sorted(_CHANNELS)}"
        raise ValueError(msg)
    if interval.planned_agents < 0 or interval.required_agents < 0 or interval.forecast_offered < 0:
        msg = f"{where}: negative agents or forecast"
        raise ValueError(msg)


def plan_record(interval: PlanInterval, published_at_ms: int) -> dict[str, Any]:
    """The cc.staffing.plan value (schemas/staffing_plan.avsc) of one interval."""
    check_interval(interval)
    return {
        "plan_id": interval.plan_id,
        "region": interval.region,
        "channel": interval.channel,
        "interval_start_ms": interval.interval_start_ms,
        "forecast_offered": float(interval.forecast_offered),
        "forecast_aht_seconds": float(interval.forecast_aht_s),
        "required_agents": float(interval.required_agents),
        "planned_agents": int(interval.planned_agents),
        "published_at_ms": published_at_ms,
    }


def interval_of(record: dict[str, Any]) -> PlanInterval:
    """Inverse of plan_record (the publication time is the record's ``published_at_ms``)."""
    return PlanInterval(
        plan_id=record["plan_id"],
        region=record["region"],
        channel=record["channel"],
        interval_start_ms=record["interval_start_ms"],
        forecast_offered=record["forecast_offered"],
        forecast_aht_s=record["forecast_aht_seconds"],
        required_agents=record["required_agents"],
        planned_agents=record["planned_agents"],
    )


def publish_plan(
    client_config: dict[str, Any],
    codec: Codec,
    intervals: Iterable[PlanInterval],
    published_at_ms: int,
    timeout_s: float = 30.0,
) -> int:
    """Produce every interval to cc.staffing.plan with an idempotent producer (acks=all, so a
    retry never duplicates nor reorders within a key); returns the count once all are
    acknowledged, else raises RuntimeError naming the first errors. The Kafka timestamp is the
    publication time. Tansu cannot run idempotent producers (FIELD-NOTES): not for the demo broker."""
    records = [plan_record(i, published_at_ms) for i in intervals]  # all checked before any is sent
    producer = Producer(
        {
            **client_config,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
        }
    )
    errors: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            errors.append(f"{message.key()!r}: {error}")

    for record in records:
        producer.produce(
            PLAN_TOPIC,
            codec.encode(PLAN_TOPIC, record),
            plan_key(record["region"], record["channel"], record["interval_start_ms"]),
            timestamp=published_at_ms,
            on_delivery=delivered,
        )
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining or errors:
        pending = f"{remaining} of {len(records)}"
        msg = f"{PLAN_TOPIC}: {pending} not acknowledged after {timeout_s:.0f} s; {errors[:3]}"
        raise RuntimeError(msg)
    return len(records)


def store_plan(store: HistoryStore, intervals: Iterable[PlanInterval], published_at_ms: int) -> int:
    """Insert the intervals into `staffing_plan` (one batch); a later publication of the same
    interval replaces it once merged, and ``stored_plan`` reads the latest already."""
    rows: list[Sequence[Any]] = []
    for interval in intervals:
        r = plan_record(interval, published_at_ms)
        rows.append([
            r["region"], r["channel"], r["interval_start_ms"] // 1000, r["plan_id"], r["forecast_offered"],
            r["forecast_aht_seconds"], r["required_agents"], r["planned_agents"], published_at_ms,
        ])  # fmt: skip
    if not rows:
        return 0
    return store.insert(f"{store.database}.{PLAN_TABLE}", PLAN_COLUMNS, rows)


def stored_plan(store: HistoryStore, region: str | None = None) -> list[PlanInterval]:
    """The latest stored publication of every interval (argMax by published_at_ms, no FINAL),
    ordered by region, channel (VOICE, CHAT, MESSENGER, EMAIL) and interval; optionally of one region."""
    where = ""
    if region is not None:
        if not region.replace("-", "").isalnum():
            msg = f"region {region!r} is not a region code"
            raise ValueError(msg)
        where = f"WHERE region = '{region}' "
    rows = store.query(
        "SELECT region, toString(channel), toUInt64(interval_start) * 1000, "  # noqa: S608 - region checked
        "argMax(plan_id, published_at_ms), argMax(forecast_offered, published_at_ms), "
        "argMax(forecast_aht_seconds, published_at_ms), argMax(required_agents, published_at_ms), "
        f"argMax(planned_agents, published_at_ms) FROM {store.database}.{PLAN_TABLE} {where}"
        "GROUP BY region, channel, interval_start ORDER BY region, channel, interval_start"
    )
    return [
        PlanInterval(
            plan_id=str(plan_id),
            region=str(reg),
            channel=str(channel),
            interval_start_ms=int(start),
            forecast_offered=float(offered),
            forecast_aht_s=float(aht),
            required_agents=float(required),
            planned_agents=int(planned),
        )  # fmt: skip
        for reg, channel, start, plan_id, offered, aht, required, planned in rows
    ]
