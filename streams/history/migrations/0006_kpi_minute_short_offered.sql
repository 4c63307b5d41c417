-- The two counters the abandonment ratio and the "abandons positive" SL variant need,
-- so that history re-aggregates every KPI exactly (streams/domain/kpi.py COUNTERS).
ALTER TABLE {database}.kpi_minute ADD COLUMN short_offered UInt32 AFTER offered;
ALTER TABLE {database}.kpi_minute ADD COLUMN abandoned_within_threshold UInt32 AFTER short_abandoned
