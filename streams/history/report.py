"""Daily report from history: the day against the targets per channel, then per region
(HTML tables) and PNG heat maps, worst regions first.

The KPIs come from the raw events with the SQL interval rule (streams/history/kpi_sql.py),
so the report agrees with real time to the event. Hours are each region's *local*
hours of the requested date (its own midnight to midnight). The summary block at the top
shows each channel's SL, ASA and AHT against that channel's own target with a met /
MISSED mark, and the all-channel figures that add up (offered, FLR, CSAT); targets in
streams/domain/targets.py. Regions with at least ``min_contacts`` offered are ordered
by the day's service level, worst first; regions with fewer follow, by volume. ASA and AHT
per region and in the heat maps are voice only (an all-channel ASA is e-mail's 24 h
threshold talking). PNGs are written next to the HTML, in ``<name>_files/``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from streams.domain.events import Channel
from streams.domain.kpi import COUNTERS, KpiResult, initialize, kpi_result
from streams.domain.regions import DAY_MS, load_regions, utc_offset_ms
from streams.domain.targets import (
    AHT_TARGET_S,
    ASA_TARGET_S,
    DEFAULT_MIN_REGION_CONTACTS,
    Mark,
    all_channels,
    channel_rows,
    rank_regions,
    sum_buckets,
)
from streams.history.kpi_sql import kpi_minute_select
from streams.history.store import HistoryStore

HOUR_MS = 3_600_000
CHARTS = (  # attribute, title, unit, colour map (reversed where high is bad), voice only
    ("service_level", "Service level (each channel's threshold)", "ratio", "RdYlGn", False),
    ("asa_seconds", "Voice ASA", "s", "RdYlGn_r", True),
    ("aht_seconds", "Voice AHT", "s", "RdYlGn_r", True),
    ("abandonment_rate", "Abandonment", "ratio", "RdYlGn_r", False),
)


@dataclass
class RegionDay:
    region: str
    name: str
    hours: list[dict[str, int]]  # 24 local hours of counters, all channels
    total: dict[str, int]
    channels: dict[str, dict[str, int]] = field(default_factory=dict)  # the day per channel
    voice_hours: list[dict[str, int]] = field(default_factory=list)  # 24 local hours, voice only

    @property
    def result(self) -> KpiResult:
        return kpi_result(self.total)


def region_days(
    store: HistoryStore, day: date, min_contacts: int = DEFAULT_MIN_REGION_CONTACTS
) -> list[RegionDay]:
    """Every region's 24 local hours of ``day``: regions with ``min_contacts`` offered
    worst service level first, then the others by volume."""
    midnight_utc = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    lo, hi = midnight_utc - DAY_MS, midnight_utc + DAY_MS  # covers every offset (UTC+2 .. UTC+12)
    columns = ", ".join(COUNTERS)
    minutes = kpi_minute_select(store.database, window=(lo, hi))
    rows = store.query(
        f"SELECT region, channel, bucket, {columns} FROM ({minutes}) "  # noqa: S608
        f"WHERE bucket >= {lo} AND bucket < {hi}"
    )
    days = {
        r.code: RegionDay(
            r.code,
            r.name,
            [initialize() for _ in range(24)],
            initialize(),
            {},
            [initialize() for _ in range(24)],
        )  # fmt: skip
        for r in load_regions()
    }
    for region, channel, bucket, *values in rows:
        entry = days.get(str(region))
        if entry is None:
            continue
        start = midnight_utc - utc_offset_ms(entry.region)  # local midnight of ``day``, in UTC
        hour = (int(bucket) - start) // HOUR_MS
        if 0 <= hour < 24:
            targets = [entry.hours[hour], entry.total, entry.channels.setdefault(str(channel), initialize())]
            if channel == Channel.VOICE.value:
                targets.append(entry.voice_hours[hour])
            for name, value in zip(COUNTERS, values, strict=True):
                for counters in targets:
                    counters[name] += int(value)
    ranked, too_few = rank_regions({code: d.total for code, d in days.items()}, min_contacts)
    return [days[code] for code, _ in ranked + too_few]


def _heatmap(
    days: list[RegionDay], attribute: str, title: str, unit: str, cmap: str, voice: bool, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(days), 24), np.nan)
    for i, entry in enumerate(days):
        for h, counters in enumerate(entry.voice_hours if voice else entry.hours):
            value = getattr(kpi_result(counters), attribute)
            if value is not None:
                grid[i, h] = value
    fig, ax = plt.subplots(figsize=(11, max(4.0, 0.18 * len(days) + 1.5)))
    # Colours span the 1st-99th percentile: one contact at 3 a.m. (an e-mail of 40 minutes)
    # would otherwise stretch the scale so far that every busy hour looks alike.
    finite = grid[np.isfinite(grid)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    image = ax.imshow(
        np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, interpolation="nearest",
        vmin=low, vmax=high if high > low else low + 1e-9,
    )  # fmt: skip
    ax.set_title(
        f"{title} per local hour ({unit}); worst regions first; blank: no traffic; "
        "colours clip at the 1st/99th percentile"
    )
    ax.set_xticks(range(24))
    ax.set_xlabel("local hour")
    ax.set_yticks(range(len(days)))
    ax.set_yticklabels([d.region for d in days], fontsize=6)
    fig.colorbar(image, ax=ax, fraction=0.025, extend="both")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fmt(value: float | None, digits: int, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f} %" if percent else f"{value:.{digits}f}"


def _verdict(mark: Mark, text: str) -> str:
    """A table cell: the value and a met / MISSED mark (class for the colour)."""
    if mark.target is None:
        return f'{html.escape(text)} <span class="none">no target</span>'
    if mark.met is None:
        return html.escape(text)
    css, word = ("met", "met") if mark.met else ("missed", "MISSED")
    return f'{html.escape(text)} <span class="{css}">{word}</span>'


def _pct2(value: float | None) -> str:
    """Two decimals: 98.97 % must not read as a missed 99.0 %."""
    return "–" if value is None else f"{value * 100:.2f} %"


def _target(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "no target"
    if percent:
        return f"≥ {value * 100:g} %"
    return f"≤ {value / 3600:g} h" if value >= 3600 else f"≤ {value:g} s"


def summary_block(days: list[RegionDay]) -> str:
    """The day against the targets: one row per channel, then the all-channel figures."""
    by_channel: dict[str, dict[str, int]] = {}
    for entry in days:
        for channel, counters in entry.channels.items():
            by_channel[channel] = sum_buckets([by_channel.get(channel) or initialize(), counters])
    rows = []
    for row in channel_rows(by_channel):
        r = row.result
        cells = (
            html.escape(row.channel.value), str(r.offered), str(r.answered),
            _verdict(row.service_level, _fmt(r.service_level, 3, True)),
            html.escape(f"≥ 80 % within {_target(row.sl_threshold_s).removeprefix('≤ ')}"),
            _verdict(row.asa, _fmt(r.asa_seconds, 1)), html.escape(_target(row.asa.target)),
            _verdict(row.aht, _fmt(r.aht_seconds, 1)), html.escape(_target(row.aht.target)),
            _fmt(r.abandonment_rate, 3, True),
        )  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    total = all_channels(by_channel)
    t = total.result
    header = "".join(f"<th>{h}</th>" for h in ("channel", "offered", "answered", "SL", "SL target", "ASA s",
                                                "ASA target", "AHT s", "AHT target", "abandon"))  # fmt: skip
    overall = (
        f"<tr><td>{t.offered}</td><td>{t.answered}</td>"
        f"<td>{_verdict(total.first_line_resolution, _pct2(t.first_line_resolution))}</td>"
        "<td>≥ 99 %</td>"
        f"<td>{_verdict(total.csat_top_box, _pct2(t.csat_top_box))}</td><td>≥ 95 %</td></tr>"
    )
    return f"""<section id="summary"><h2>The day against the targets, per channel</h2>
<table class="summary"><thead><tr>{header}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
<h3>All channels (the figures that add up across channels)</h3>
<table class="summary"><thead><tr><th>offered</th><th>answered</th><th>first-line resolution</th>
<th>target</th><th>CSAT 5 of 5</th><th>target</th></tr></thead><tbody>{overall}</tbody></table>
<p>Each channel against its own target: SL 80 % within the channel's threshold, ASA within that threshold
(voice: the published 40 s), AHT 140 s for voice; chat and messenger agents handle several contacts at once
and e-mail is asynchronous, so their AHT has no target. FLR 99 % and CSAT 95 % top box are all-channel.</p>
</section>"""


def render(
    store: HistoryStore, day: date, out: Path, min_contacts: int = DEFAULT_MIN_REGION_CONTACTS
) -> list[RegionDay]:
    """Write the HTML report and its PNGs; returns the regions in report order."""
    days = region_days(store, day, min_contacts)
    assets = out.parent / f"{out.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)
    images = []
    charted = [d for d in days if d.total["offered"]] or days  # regions without traffic: table only
    for attribute, title, unit, cmap, voice_only in CHARTS:
        path = assets / f"{attribute}.png"
        _heatmap(charted, attribute, title, unit, cmap, voice_only, path)
        images.append(f'<h2>{title}</h2><img src="{assets.name}/{path.name}" alt="{title} per local hour">')
    ranked = sum(1 for d in days if d.total["offered"] >= min_contacts and d.result.service_level is not None)
    rows = []
    for i, entry in enumerate(days):
        r = entry.result
        voice = kpi_result(entry.channels.get(Channel.VOICE.value) or initialize())
        asa = Mark(voice.asa_seconds, ASA_TARGET_S[Channel.VOICE], higher_is_better=False)
        aht = Mark(voice.aht_seconds, AHT_TARGET_S[Channel.VOICE], higher_is_better=False)
        cells = (
            html.escape(entry.region), html.escape(entry.name), str(r.offered), str(r.answered),
            html.escape(_fmt(r.service_level, 3, True)), _verdict(asa, _fmt(voice.asa_seconds, 1)),
            _verdict(aht, _fmt(voice.aht_seconds, 1)), html.escape(_fmt(r.abandonment_rate, 3, True)),
            html.escape(_fmt(r.first_line_resolution, 3, True)), html.escape(_fmt(r.csat_top_box, 3, True)),
        )  # fmt: skip
        css = ' class="unranked"' if i >= ranked else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "region",
            "name",
            "offered",
            "answered",
            "SL",
            "voice ASA s",
            "voice AHT s",
            "abandon",
            "FLR",
            "CSAT 5/5",
        )  # fmt: skip
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ccpulse daily report {day.isoformat()}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:nth-child(-n+2){{text-align:left}}
.met{{color:#1a7f37;font-weight:bold}}.missed{{color:#cf222e;font-weight:bold}}.none{{color:#888}}
table.summary td:first-child{{font-weight:bold}}tr.unranked{{color:#777}}</style>
</head><body>
<h1>Contact centre, {day.isoformat()} (each region's local day)</h1>
{summary_block(days)}
<h2>Regions</h2>
<p>Service level: answered within the channel threshold / (answered + abandoned after 5 s), each contact
against its own channel's threshold. Regions with at least {min_contacts} contacts, worst service level first
({ranked} ranked); the rest (grey) by volume. From the raw history with the interval rule of DESIGN.md
section 3.</p>
<table><thead><tr>{header}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
{chr(10).join(images)}
</body></html>
"""
    out.write_text(document, encoding="utf-8")
    return days
