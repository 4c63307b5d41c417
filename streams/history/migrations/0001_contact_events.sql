-- Raw contact lifecycle events (cc.contact.events), one row per event.
-- Portable subset (ClickHouse 18.16 and current): no TTL, no DateTime64, no
-- LowCardinality, no codecs. Event time kept twice: DateTime for partitioning and
-- ordering, Int64 milliseconds for exact interval arithmetic.
-- ReplacingMergeTree on (region, event_time, event_id): a replayed batch collapses
-- on merge; exact queries de-duplicate with uniqExact/argMax, never FINAL.
CREATE TABLE IF NOT EXISTS {database}.contact_events
(
    event_id String,
    contact_id String,
    type Enum8('ARRIVED' = 1, 'QUEUED' = 2, 'OFFERED' = 3, 'ANSWERED' = 4, 'HOLD_STARTED' = 5,
               'HOLD_ENDED' = 6, 'TRANSFERRED' = 7, 'ESCALATED' = 8, 'ABANDONED' = 9, 'ENDED' = 10,
               'ACW_ENDED' = 11, 'CALLBACK_REQUESTED' = 12),
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    platform String,
    region String,
    queue String,
    language String,
    segment String,
    priority UInt8,
    customer_ref String,
    agent_id String,
    resolution String,
    reason_code String,
    home_region String,
    event_time DateTime('UTC'),
    event_time_ms Int64,
    kafka_partition UInt16,
    kafka_offset Int64,
    ingested_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (region, event_time, event_id)
SETTINGS index_granularity = 8192
