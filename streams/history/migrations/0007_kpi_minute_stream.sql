-- KPI minute buckets as the workers streamed them (cc.kpi.snapshots, MINUTE windows),
-- kept apart from kpi_minute (computed in SQL from the raw events by backfill), so
-- that history can be checked against real time bucket by bucket.
-- version: the snapshot version (the emitting partition's summed input offsets, UInt64);
-- ReplacingMergeTree keeps the highest; exact reads use argMax(..., version), not FINAL.
-- abandoned includes short abandons, as in kpi_minute (the snapshot's `abandoned`
-- excludes them; the sink adds them back).
CREATE TABLE IF NOT EXISTS {database}.kpi_minute_stream
(
    region String,
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    bucket_start DateTime('UTC'),
    version UInt64,
    offered UInt32,
    answered UInt32,
    answered_within_threshold UInt32,
    abandoned UInt32,
    short_abandoned UInt32,
    total_wait_ms UInt64,
    handled UInt32,
    talk_ms UInt64,
    hold_ms UInt64,
    acw_ms UInt64,
    transferred UInt32,
    ended UInt32,
    resolved_first_line UInt32,
    surveys UInt32,
    survey_score_sum UInt32,
    top_box UInt32,
    emitted_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(bucket_start)
ORDER BY (region, channel, bucket_start)
SETTINGS index_granularity = 8192
