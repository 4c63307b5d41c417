"""Terminal tables of KPIs against the reference targets, per channel (rich markup).

Shared by the demo's live view and summary and by `ccpulse kpi show`; the targets and
verdicts come from streams/domain/targets.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from streams.domain.targets import ChannelRow, Mark, channel_rows


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def duration(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


def marked(text: str, mark: Mark) -> str:
    """A value with its verdict: green 'met', red 'MISSED', dim 'no target' / nothing."""
    if mark.met is None:
        return text if mark.target is not None or text == "–" else f"{text} [dim](no target)[/]"
    return f"{text} [green]met[/]" if mark.met else f"{text} [bold red]MISSED[/]"


def channel_table(by_channel: dict[str, dict[str, int]], title: str) -> Table:
    """Each channel's KPIs against that channel's own targets (streams/domain/targets.py)."""
    table = Table(title=title)
    for column in ("channel", "offered", "SL 80 % within", "SL", "ASA (≤ threshold)", "AHT (voice ≤ 140 s)",
                   "abandonment"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in channel_rows(by_channel):
        r = row.result
        table.add_row(
            row.channel.value, f"{r.offered:,}", duration(row.sl_threshold_s),
            marked(pct(r.service_level), row.service_level), marked(secs(r.asa_seconds), row.asa),
            marked(secs(r.aht_seconds), row.aht), pct(r.abandonment_rate),
        )  # fmt: skip
    return table


def channel_summary(row: ChannelRow) -> dict[str, Any]:
    """One channel's figures with its targets and verdicts, for `--json` and the summary table."""
    return {
        "offered": row.result.offered, "sl_threshold_s": row.sl_threshold_s,
        "service_level": row.service_level.value, "service_level_target": row.service_level.target,
        "service_level_met": row.service_level.met,
        "asa_seconds": row.asa.value, "asa_target_s": row.asa.target, "asa_met": row.asa.met,
        "aht_seconds": row.aht.value, "aht_target_s": row.aht.target, "aht_met": row.aht.met,
        "abandonment_rate": row.result.abandonment_rate,
    }  # fmt: skip


def summary_channel_table(per_channel: Mapping[str, Mapping[str, Any]]) -> Table:
    """The ``channel_summary`` dicts as a table: value, target and verdict per KPI."""
    table = Table(title="per channel, against each channel's own targets")
    for column in ("channel", "offered", "SL", "target", "", "ASA s", "target", "", "AHT s", "target", ""):
        table.add_column(column, justify="right")
    for channel, c in per_channel.items():
        cells = [channel, str(c["offered"])]
        for kpi, goal_key, met_key in (("service_level", "service_level_target", "service_level_met"),
                                       ("asa_seconds", "asa_target_s", "asa_met"),
                                       ("aht_seconds", "aht_target_s", "aht_met")):  # fmt: skip
            value, goal, met = c[kpi], c[goal_key], c[met_key]
            shown = "–" if value is None else f"{value:.3f}" if kpi == "service_level" else f"{value:.0f}"
            verdict = "" if met is None else "[green]met[/]" if met else "[bold red]MISSED[/]"
            cells += [shown, "no target" if goal is None else f"{goal:g}", verdict]
        table.add_row(*cells)
    return table
