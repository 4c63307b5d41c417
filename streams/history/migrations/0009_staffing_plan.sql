-- The published staffing plan per region x channel x 15-minute interval (cc.staffing.plan).
-- A republished plan replaces an interval: ReplacingMergeTree keeps the row with the
-- highest published_at_ms per (region, channel, interval_start); readers take
-- argMax(.., published_at_ms) or FINAL. Portable to 18.16 and chdb: new-style
-- MergeTree, Enum8, DateTime('UTC'), a UInt64 version column (no DateTime64).
CREATE TABLE IF NOT EXISTS {database}.staffing_plan
(
    region String,
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    interval_start DateTime('UTC'),
    plan_id String,
    forecast_offered Float64,
    forecast_aht_seconds Float64,
    required_agents Float64,
    planned_agents UInt32,
    published_at_ms UInt64
)
ENGINE = ReplacingMergeTree(published_at_ms)
PARTITION BY toYYYYMMDD(interval_start)
ORDER BY (region, channel, interval_start)
SETTINGS index_granularity = 8192
