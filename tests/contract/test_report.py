"""`ccpulse report` on both history stores: a per-channel summary against each channel's
targets at the top, every region in the table, worst service level first, four PNG heat
maps, hours in each region's local time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from streams.domain.events import ContactEvent, SurveyEvent
from streams.domain.regions import region_codes
from streams.domain.targets import channel_rows, sum_buckets
from streams.history.event_rows import CONTACT_COLUMNS, SURVEY_COLUMNS, contact_row, survey_row
from streams.history.migrate import migrate
from streams.history.report import render
from streams.history.store import HistoryStore
from streams.simulator import SimConfig, Simulation
from streams.simulator.output import materialise

pytestmark = [pytest.mark.contract, pytest.mark.clickhouse]
INGESTED = datetime(2026, 11, 24, tzinfo=UTC)
DAY = date(2026, 5, 12)


def test_report_orders_regions_and_draws_local_hours(history_store: HistoryStore, tmp_path: Path) -> None:
    regions = ("RU-MOW", "RU-KAM", "RU-KGD")
    start = datetime(2026, 5, 11, 12, tzinfo=UTC)  # covers 2026-05-12 local in all three zones
    sim = Simulation(SimConfig(regions=regions), seed=6, start=start, duration_s=36 * 3600)
    events = [materialise(i, sim.prefix).event for b in sim.batches() for i in b]
    migrate(history_store)
    db = history_store.database
    contacts = [e for e in events if isinstance(e, ContactEvent)]
    surveys = [e for e in events if isinstance(e, SurveyEvent)]
    history_store.insert(
        f"{db}.contact_events",
        CONTACT_COLUMNS,
        [contact_row(e, 0, i, INGESTED) for i, e in enumerate(contacts)],
    )
    history_store.insert(
        f"{db}.survey_events", SURVEY_COLUMNS, [survey_row(e, 0, i, INGESTED) for i, e in enumerate(surveys)]
    )

    days = render(history_store, DAY, tmp_path / "report.html")
    text = (tmp_path / "report.html").read_text()
    assert all(code in text for code in region_codes())  # every region, traffic or not
    served = [d for d in days if d.total["offered"]]
    assert {d.region for d in served} == set(regions)
    levels = [d.result.service_level or 0.0 for d in served]
    assert levels == sorted(levels)  # worst first
    for d in served:  # a full local day of traffic: every local hour has contacts
        assert all(hour["offered"] > 0 for hour in d.hours[8:20]), d.region
        assert sum(hour["offered"] for hour in d.hours) == d.total["offered"]
    for name in ("service_level", "asa_seconds", "aht_seconds", "abandonment_rate"):
        png = tmp_path / "report_files" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"report_files/{name}.png" in text

    # the summary block comes first, one row per channel with its own targets and a verdict
    summary, regions_at = text.index('id="summary"'), text.index("<h2>Regions</h2>")
    assert summary < regions_at < text.index("report_files/service_level.png")
    block = text[summary:regions_at]
    by_channel = {c: sum_buckets([d.channels[c] for d in days if c in d.channels]) for c in
                  ("VOICE", "CHAT", "MESSENGER", "EMAIL")}  # fmt: skip
    assert sum(b["offered"] for b in by_channel.values()) == sum(d.total["offered"] for d in days)
    for row in channel_rows(by_channel):
        assert row.result.offered > 0, row.channel  # the simulator serves every channel
        line = next(r for r in block.split("<tr>") if r.startswith(f"<td>{row.channel.value}</td>"))
        assert f"<td>{row.result.offered}</td>" in line
        assert f"{row.result.asa_seconds:.1f}" in line and f"{row.result.aht_seconds:.1f}" in line
        assert "MISSED" in line or ">met<" in line, line
    voice = next(r for r in block.split("<tr>") if r.startswith("<td>VOICE</td>"))
    assert "≤ 40 s" in voice and "≤ 140 s" in voice and "within 40 s" in voice
    email = next(r for r in block.split("<tr>") if r.startswith("<td>EMAIL</td>"))
    assert "≤ 24 h" in email and "no target" in email
    assert "≥ 99 %" in block and "≥ 95 %" in block
