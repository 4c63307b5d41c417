-- Working table of the KPI recompute (streams/history/kpi_sql.py): one row per contact
-- with the times of its lifecycle facts, filled in hash slices of contact_id so that a
-- month never has to be aggregated in one query (18.16 ran out of its 4 GB per query).
-- `run` is the recompute's version; its partition is dropped when the run ends.
CREATE TABLE IF NOT EXISTS {database}.kpi_contact_stage
(
    run UInt32,
    contact_id String,
    region String,
    channel Enum8('VOICE' = 1, 'CHAT' = 2, 'MESSENGER' = 3, 'EMAIL' = 4),
    q Int64,
    a Int64,
    ab Int64,
    e Int64,
    acw Int64,
    holds_started UInt64,
    holds_ended UInt64,
    hold Int64,
    resolution String,
    transfers Array(Int64)
)
ENGINE = MergeTree
PARTITION BY run
ORDER BY contact_id
