-- Raw agent state events (cc.agent.events) and survey events (cc.survey.events).
CREATE TABLE IF NOT EXISTS {database}.agent_events
(
    event_id String,
    agent_id String,
    region String,
    state Enum8('LOGGED_IN' = 1, 'READY' = 2, 'NOT_READY' = 3, 'ON_CONTACT' = 4, 'ACW' = 5, 'LOGGED_OUT' = 6),
    skills Array(String),
    languages Array(String),
    chat_concurrency UInt8,
    event_time DateTime('UTC'),
    event_time_ms Int64,
    kafka_partition UInt16,
    kafka_offset Int64,
    ingested_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (region, event_time, event_id)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS {database}.survey_events
(
    event_id String,
    contact_id String,
    region String,
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    score UInt8,
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
