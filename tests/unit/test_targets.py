"""Per-channel KPI tables against the reference targets (streams/domain/targets.py)."""

from __future__ import annotations

import pytest

from streams.domain.events import Channel
from streams.domain.kpi import initialize
from streams.domain.targets import Mark, all_channels, channel_rows, rank_regions

pytestmark = pytest.mark.unit


def bucket(**counters: int) -> dict[str, int]:
    return initialize() | counters


# voice: 90 of 100 within 40 s, ASA 30 s, AHT 150 s (misses 140 s)
VOICE = bucket(offered=100, answered=100, answered_within_threshold=90, total_wait_ms=3_000_000,
               handled=100, talk_ms=12_000_000, hold_ms=1_000_000, acw_ms=2_000_000,
               ended=100, resolved_first_line=99, surveys=40, top_box=39, survey_score_sum=199)  # fmt: skip
# e-mail: all within 24 h but a 2 h ASA; AHT 600 s with no target
EMAIL = bucket(offered=10, answered=10, answered_within_threshold=10, total_wait_ms=72_000_000,
               handled=10, talk_ms=6_000_000, ended=10, resolved_first_line=9)  # fmt: skip


@pytest.mark.parametrize(
    ("mark", "met", "verdict"),
    [
        (Mark(0.81, 0.80, higher_is_better=True), True, "met"),
        (Mark(0.80, 0.80, higher_is_better=True), True, "met"),  # on target is met
        (Mark(0.79, 0.80, higher_is_better=True), False, "MISSED"),
        (Mark(140.0, 140.0, higher_is_better=False), True, "met"),
        (Mark(141.0, 140.0, higher_is_better=False), False, "MISSED"),
        (Mark(None, 140.0, higher_is_better=False), None, "no data"),
        (Mark(300.0, None, higher_is_better=False), None, "no target"),
    ],
)
def test_mark(mark: Mark, met: bool | None, verdict: str) -> None:
    assert mark.met is met
    assert mark.verdict == verdict


def test_channel_rows_use_each_channels_own_targets() -> None:
    rows = {row.channel: row for row in channel_rows({"VOICE": VOICE, "EMAIL": EMAIL})}
    assert list(rows) == list(Channel)  # all four, in order, also without traffic
    voice, email, chat = rows[Channel.VOICE], rows[Channel.EMAIL], rows[Channel.CHAT]
    assert (voice.service_level.value, voice.service_level.target, voice.service_level.verdict) == (
        0.9,
        0.8,
        "met",
    )
    assert (voice.asa.value, voice.asa.target, voice.asa.verdict) == (30.0, 40.0, "met")
    assert (voice.aht.value, voice.aht.target, voice.aht.verdict) == (150.0, 140.0, "MISSED")
    assert voice.sl_threshold_s == 40.0
    # e-mail's 2 h wait meets its 24 h threshold; it would fail voice's 40 s
    assert (email.asa.value, email.asa.target, email.asa.verdict) == (7200.0, 86400.0, "met")
    assert (email.aht.value, email.aht.verdict) == (600.0, "no target")
    assert chat.result.offered == 0 and chat.service_level.verdict == "no data"
    assert rows[Channel.MESSENGER].sl_threshold_s == 120.0


def test_all_channel_figures_are_the_ones_that_sum() -> None:
    total = all_channels({"VOICE": VOICE, "EMAIL": EMAIL})
    assert total.result.offered == 110
    assert total.first_line_resolution.value == pytest.approx(108 / 110)
    assert total.first_line_resolution.verdict == "MISSED"  # 98.2 % < 99 %
    assert total.csat_top_box.value == pytest.approx(39 / 40)
    assert total.csat_top_box.verdict == "met"


def test_rank_regions_needs_enough_contacts_and_shows_volume() -> None:
    by_region = {
        "RU-KAM": bucket(offered=3, answered=3, answered_within_threshold=0),  # 0 % on 3 contacts
        "RU-MOW": bucket(offered=500, answered=500, answered_within_threshold=350),  # 70 %
        "RU-NVS": bucket(offered=80, answered=80, answered_within_threshold=76),  # 95 %
        "RU-SPE": bucket(offered=40, answered=40, answered_within_threshold=28),  # 70 %: tie, by code
        "RU-YAK": bucket(),
    }
    ranked, too_few = rank_regions(by_region, min_contacts=20)
    assert [(r, k.offered) for r, k in ranked] == [("RU-MOW", 500), ("RU-SPE", 40), ("RU-NVS", 80)]
    assert [r for r, _ in too_few] == ["RU-KAM", "RU-YAK"]  # by volume, largest first
    ranked, _ = rank_regions(by_region, min_contacts=1)
    assert ranked[0][0] == "RU-KAM"


def test_the_terminal_tables_show_each_channel_against_its_own_target() -> None:
    """What `ccpulse kpi show` and the demo's summary print, as a person reads it."""
    from rich.console import Console

    from streams.cli.kpi_tables import channel_summary, channel_table, summary_channel_table

    by_channel = {"VOICE": VOICE, "EMAIL": EMAIL}
    console = Console(record=True, width=160, color_system=None)
    console.print(channel_table(by_channel, "per channel"))
    lines = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if "│" in line}
    voice = lines["VOICE"]
    assert "90.0 % met" in voice and "30 s met" in voice and "150 s MISSED" in voice
    assert "40 s" in lines["VOICE"] and "24 h" in lines["EMAIL"]  # each channel's own SL threshold
    assert "7200 s met" in lines["EMAIL"] and "(no target)" in lines["EMAIL"]  # e-mail AHT: none
    assert "–" in lines["CHAT"]  # no traffic, no figures
    summary = {row.channel.value: channel_summary(row) for row in channel_rows(by_channel)}
    assert summary["VOICE"]["aht_met"] is False and summary["EMAIL"]["asa_target_s"] == 86400.0
    console = Console(record=True, width=160, color_system=None)
    console.print(summary_channel_table(summary))
    voice = next(line for line in console.export_text().splitlines() if "VOICE" in line)
    assert "0.900" in voice and "MISSED" in voice and "140" in voice
