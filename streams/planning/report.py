"""HTML report of a plan in the digital twin: the span against the targets, then PNG charts.

Same look as the daily history report (streams/history/report.py, whose cell helpers it
reuses): a summary table per region x channel with met / MISSED marks against each
channel's target, then per region one PNG with, per channel, the requirement against the
planned coverage per 15-minute interval and the twin's service level per interval against
the 80 % target. ``forecast_vs_actual_chart`` draws any two series (forecast and actual);
the report draws the plan's forecast against the twin's offered contacts with it, and takes
more pairs (``ForecastSeries``: e.g. the forecaster's backtest against history) through
``render(..., forecasts=...)``. PNGs are written next to the HTML, in ``<name>_files/``.
Times are UTC.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streams.domain.targets import SERVICE_LEVEL_TARGET
from streams.history.report import _fmt, _target, _verdict
from streams.planning.twin import Evaluation, IntervalResult


@dataclass(frozen=True)
class ForecastSeries:
    """Two series over the same times: what was forecast and what happened."""

    title: str
    times_ms: Sequence[int]
    forecast: Sequence[float | None]
    actual: Sequence[float | None]
    unit: str = "contacts per 15 min"


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _times(ms: Sequence[int]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1000, UTC) for t in ms]


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def forecast_vs_actual_chart(series: ForecastSeries, path: Path) -> None:
    """One PNG: the forecast as a line, the actual as steps, over UTC time."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.2))
    times = _times(series.times_ms)
    ax.plot(times, _nan(series.forecast), label="forecast", color="#1f6feb", linewidth=1.5)
    ax.step(times, _nan(series.actual), where="post", label="actual", color="#cf222e", linewidth=1.0)
    ax.set_title(series.title)
    ax.set_ylabel(series.unit)
    ax.set_xlabel("UTC")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def region_chart(region: str, by_channel: dict[str, list[IntervalResult]], path: Path) -> None:
    """Per channel: required vs planned agents (left), the twin's SL vs target (right)."""
    plt = _pyplot()
    rows = len(by_channel)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 2.6 * rows + 0.6), squeeze=False)
    for (channel, intervals), (cover, level) in zip(by_channel.items(), axes, strict=True):
        times = _times([i.interval_start_ms for i in intervals])
        cover.step(times, [i.planned_agents for i in intervals], where="post", label="planned (on the floor)",
                   color="#1a7f37")  # fmt: skip
        cover.step(times, _nan([i.required_agents for i in intervals]), where="post", label="required",
                   color="#cf222e", linestyle="--")  # fmt: skip
        cover.set_title(f"{region} {channel}: agents per 15 min")
        cover.legend(loc="upper left", fontsize=7)
        cover.grid(alpha=0.3)
        level.plot(times, _nan([i.counts.service_level for i in intervals]), marker=".", linewidth=0.8,
                   color="#1f6feb", label="twin SL")  # fmt: skip
        level.axhline(SERVICE_LEVEL_TARGET, color="#cf222e", linestyle="--", label="target 80 %")
        level.set_ylim(-0.02, 1.02)
        level.set_title(f"{region} {channel}: service level per 15 min")
        level.legend(loc="lower left", fontsize=7)
        level.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _summary(evaluation: Evaluation) -> str:
    header = "".join(f"<th>{h}</th>" for h in (
        "region", "channel", "offered", "answered", "SL", "SL target", "ASA s", "ASA target", "abandon",
        "intervals below target", "planned agent-h", "required agent-h"))  # fmt: skip
    rows = []
    for d in evaluation.days:
        c = d.counts
        cells = (
            html.escape(d.region), html.escape(d.channel), str(c.offered), str(c.answered),
            _verdict(d.service_level, _fmt(c.service_level, 3, True)), "≥ 80 %",
            _verdict(d.asa, _fmt(c.asa_s, 1)), html.escape(_target(d.asa.target)),
            _fmt(c.abandonment, 3, True),
            f"{d.intervals_below_target} of {d.intervals}", f"{d.planned_agent_hours:.1f}",
            "–" if d.required_agent_hours is None else f"{d.required_agent_hours:.1f}",
        )  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"""<section id="summary"><h2>The span against the targets, per region x channel</h2>
<table class="summary"><thead><tr>{header}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></section>"""


def render(evaluation: Evaluation, out: Path, forecasts: Sequence[ForecastSeries] = ()) -> list[Path]:
    """Write the HTML report and its PNGs; returns the PNG paths."""
    assets = out.parent / f"{out.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)
    grouped: dict[str, dict[str, list[IntervalResult]]] = {}
    for i in evaluation.intervals:
        grouped.setdefault(i.region, {}).setdefault(i.channel, []).append(i)
    images: list[str] = []
    pngs: list[Path] = []
    for region, by_channel in grouped.items():
        path = assets / f"coverage_sl_{region}.png"
        region_chart(region, by_channel, path)
        pngs.append(path)
        images.append(f'<h2>{html.escape(region)}</h2><img src="{assets.name}/{path.name}" '
                      f'alt="{html.escape(region)}: coverage and service level per interval">')  # fmt: skip
    pairs = list(forecasts)
    for region, by_channel in grouped.items():
        for channel, intervals in by_channel.items():
            if any(i.forecast_offered is not None for i in intervals):
                pairs.append(ForecastSeries(
                    f"{region} {channel}: the plan's forecast vs offered in the twin",
                    [i.interval_start_ms for i in intervals], [i.forecast_offered for i in intervals],
                    [float(i.counts.offered) for i in intervals],
                ))  # fmt: skip
    charts: list[str] = []
    for n, series in enumerate(pairs):
        path = assets / f"forecast_vs_actual_{n:02d}.png"
        forecast_vs_actual_chart(series, path)
        pngs.append(path)
        charts.append(f'<h3>{html.escape(series.title)}</h3><img src="{assets.name}/{path.name}" '
                      f'alt="{html.escape(series.title)}">')  # fmt: skip
    start = datetime.fromtimestamp(evaluation.start_ms / 1000, UTC)
    end = datetime.fromtimestamp(evaluation.end_ms / 1000, UTC)
    title = f"plan {evaluation.plan_id} in the digital twin"
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:nth-child(-n+2){{text-align:left}}
.met{{color:#1a7f37;font-weight:bold}}.missed{{color:#cf222e;font-weight:bold}}.none{{color:#888}}
img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, simulator seed {evaluation.seed},
{evaluation.contacts} contacts. Agents follow the plan's shifts and breaks; service level is answered within
the channel's threshold / (answered + abandoned after 5 s), from the twin's ground truth (DESIGN section 3).
The twin's traffic has a day-level busyness factor that no forecast knows.</p>
{_summary(evaluation)}
<h2>Coverage and service level per 15 minutes</h2>
{chr(10).join(images)}
<h2 id="forecast">Forecast vs actual</h2>
{chr(10).join(charts) or "<p>No forecast in the plan file.</p>"}
</body></html>
"""
    out.write_text(document, encoding="utf-8")
    return pngs
