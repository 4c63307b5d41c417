"""Daily per-region report from history: HTML tables and PNG heat maps, worst regions first.

The KPIs come from the raw events with the SQL interval rule (streams/history/kpi_sql.py),
so the report agrees with real time to the event. Hours are each region's *local*
hours of the requested date (its own midnight to midnight). Regions are ordered by the
day's service level, worst first (regions without traffic last). PNGs are written
next to the HTML, in ``<name>_files/``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from streams.domain.kpi import COUNTERS, KpiResult, initialize, kpi_result
from streams.domain.regions import DAY_MS, load_regions, utc_offset_ms
from streams.history.kpi_sql import kpi_minute_select
from streams.history.store import HistoryStore

HOUR_MS = 3_600_000
CHARTS = (  # attribute, title, unit, colour map (reversed where high is bad)
    ("service_level", "Service level", "ratio", "RdYlGn"),
    ("asa_seconds", "ASA", "s", "RdYlGn_r"),
    ("aht_seconds", "AHT", "s", "RdYlGn_r"),
    ("abandonment_rate", "Abandonment", "ratio", "RdYlGn_r"),
)


@dataclass
class RegionDay:
    region: str
    name: str
    hours: list[dict[str, int]]  # 24 local hours of counters
    total: dict[str, int]

    @property
    def result(self) -> KpiResult:
        return kpi_result(self.total)


def region_days(store: HistoryStore, day: date) -> list[RegionDay]:
    """Every region's 24 local hours of ``day``, worst service level first."""
    midnight_utc = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    lo, hi = midnight_utc - DAY_MS, midnight_utc + DAY_MS  # covers every offset (UTC+2 .. UTC+12)
    columns = ", ".join(COUNTERS)
    rows = store.query(
        f"SELECT region, bucket, {columns} FROM ({kpi_minute_select(store.database, window=(lo, hi))}) "  # noqa: S608
        f"WHERE bucket >= {lo} AND bucket < {hi}"
    )
    days = {
        r.code: RegionDay(r.code, r.name, [initialize() for _ in range(24)], initialize())
        for r in load_regions()
    }
    for region, bucket, *values in rows:
        entry = days.get(str(region))
        if entry is None:
            continue
        start = midnight_utc - utc_offset_ms(entry.region)  # local midnight of ``day``, in UTC
        hour = (int(bucket) - start) // HOUR_MS
        if 0 <= hour < 24:
            for name, value in zip(COUNTERS, values, strict=True):
                entry.hours[hour][name] += int(value)
                entry.total[name] += int(value)

    def order(entry: RegionDay) -> tuple[int, float, str]:
        level = entry.result.service_level
        return (level is None, level if level is not None else 0.0, entry.region)

    return sorted(days.values(), key=order)


def _heatmap(days: list[RegionDay], attribute: str, title: str, unit: str, cmap: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(days), 24), np.nan)
    for i, entry in enumerate(days):
        for h, counters in enumerate(entry.hours):
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


def render(store: HistoryStore, day: date, out: Path) -> list[RegionDay]:
    """Write the HTML report and its PNGs; returns the regions in report order."""
    days = region_days(store, day)
    assets = out.parent / f"{out.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)
    images = []
    charted = [d for d in days if d.total["offered"]] or days  # regions without traffic: table only
    for attribute, title, unit, cmap in CHARTS:
        path = assets / f"{attribute}.png"
        _heatmap(charted, attribute, title, unit, cmap, path)
        images.append(f'<h2>{title}</h2><img src="{assets.name}/{path.name}" alt="{title} per local hour">')
    rows = []
    for entry in days:
        r = entry.result
        cells = (
            entry.region, entry.name, str(r.offered), str(r.answered), _fmt(r.service_level, 3, True),
            _fmt(r.asa_seconds, 1), _fmt(r.aht_seconds, 1), _fmt(r.abandonment_rate, 3, True),
            _fmt(r.first_line_resolution, 3, True), _fmt(r.csat_top_box, 3, True),
        )  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "region",
            "name",
            "offered",
            "answered",
            "SL",
            "ASA s",
            "AHT s",
            "abandon",
            "FLR",
            "CSAT 5/5",
        )
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ccpulse daily report {day.isoformat()}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:nth-child(-n+2){{text-align:left}}</style>
</head><body>
<h1>Contact centre, {day.isoformat()} (each region's local day)</h1>
<p>Service level: answered within the channel threshold / (answered + abandoned after 5 s).
Worst regions first. From the raw history with the interval rule of DESIGN.md section 3.</p>
<table><thead><tr>{header}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
{chr(10).join(images)}
</body></html>
"""
    out.write_text(document, encoding="utf-8")
    return days
