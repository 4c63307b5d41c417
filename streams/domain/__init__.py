"""Pure domain: events, regions, KPI aggregators, routing. Standard library only."""
