-- KPI minute buckets per region x channel: sums and counts only, so that any window
-- (15 min, 60 min, today in local time, a month) re-aggregates exactly with sum().
-- The interval rule of DESIGN.md section 3 decides the bucket of each count.
-- `version` grows when a late event corrects a bucket; readers take argMax(.., version).
CREATE TABLE IF NOT EXISTS {database}.kpi_minute
(
    region String,
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    bucket_start DateTime('UTC'),
    version UInt32,
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
    top_box UInt32
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(bucket_start)
ORDER BY (region, channel, bucket_start)
SETTINGS index_granularity = 8192
