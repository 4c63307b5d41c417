"""The contact-centre application on the engine: the KPI worker (windows, snapshots,
/metrics), queue state and routing."""
