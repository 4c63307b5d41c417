"""History in ClickHouse: the HistoryStore port, its two adapters and the migrations."""
