-- Dead letters (cc.dead-letter): the original bytes stay (base64 text for portability)
-- with where they came from and why they were rejected.
CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    original_topic String,
    original_partition Int32,
    original_offset Int64,
    original_key_b64 String,
    original_value_b64 String,
    reason String,
    detail String,
    consumer String,
    failed_at DateTime('UTC'),
    failed_at_ms Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(failed_at)
ORDER BY (original_topic, original_partition, original_offset, reason)
SETTINGS index_granularity = 8192;

-- Routing decisions (cc.routing.decisions); candidates kept as JSON text.
CREATE TABLE IF NOT EXISTS {database}.routing_decisions
(
    contact_id String,
    event_id String,
    region String,
    target_region String,
    target_queue String,
    language String,
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    priority UInt8,
    ewt_seconds Float64,
    ewt_method String,
    reason String,
    candidates_json String,
    policy_version String,
    decided_at DateTime('UTC'),
    decided_at_ms Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(decided_at)
ORDER BY (region, decided_at, contact_id)
SETTINGS index_granularity = 8192
