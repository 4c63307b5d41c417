-- The history sink's exactly-once bookkeeping (after ClickHouse kafka-connect's design):
-- one row per written batch, bounded by Kafka offsets. On (re)assignment the sink resumes
-- each partition after max(end_offset) recorded here, so a batch whose rows were written
-- but not recorded is rebuilt with the same bounds and collapses in ReplacingMergeTree.
CREATE TABLE IF NOT EXISTS {database}.sink_offsets
(
    consumer_group String,
    topic String,
    kafka_partition UInt16,
    start_offset Int64,
    end_offset Int64,
    row_count UInt32,
    written_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (consumer_group, topic, kafka_partition, start_offset)
