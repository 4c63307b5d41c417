"""`ccpulse plan load-truth | forecast | requirements | schedule --out` on a small chdb history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.planning.plan_file import read_plan

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

HEADER = (
    "minute_ms,region,channel,offered,answered,answered_within_target,abandoned,short_abandoned,"
    "wait_ms_answered,handled,talk_ms,hold_ms,acw_ms,transferred,ended,resolved_first_line,surveys,"
    "top_box,score_sum"
)


def _truth(path: Path) -> None:
    # RU-KGD (UTC+2): two weeks before local Monday 2026-11-16, one row per 15 minutes and channel
    start = int(datetime(2026, 11, 1, 22, tzinfo=UTC).timestamp() * 1000)
    lines = [HEADER]
    for i in range(2 * 672):
        hour = (i // 4 + 2) % 24
        offered = 12 if 8 <= hour < 20 else 2
        for channel, aht in (("VOICE", 140), ("CHAT", 420), ("MESSENGER", 500), ("EMAIL", 300)):
            ms = offered * aht * 1000
            lines.append(
                f"{start + i * 900_000},RU-KGD,{channel},{offered},{offered},{offered},0,0,0,{offered},"
                f"{ms},0,0,0,{offered},{offered},0,0,0"
            )
    path.write_text("\n".join(lines) + "\n")


def _ccpulse(env: dict[str, str], *args: str) -> dict:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ccpulse"), *args, "--json"],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)  # the whole of stdout: nothing but the JSON (HiGHS's banner on stderr)


def test_plan_commands_write_a_plan_file(tmp_path: Path) -> None:
    env = {**os.environ, "CCPULSE_STATE_DIR": str(tmp_path / "state"), "CCPULSE_HISTORY_BACKEND": "chdb"}
    truth = tmp_path / "truth.csv"
    _truth(truth)
    assert _ccpulse(env, "plan", "load-truth", str(truth))["rows"] == 4 * 2 * 672
    week = ("--week", "2026-11-16", "--regions", "RU-KGD", "--history-weeks", "2", "--method", "naive")
    fc = _ccpulse(env, "plan", "forecast", *week)
    voice = next(c for c in fc["channels"] if c["channel"] == "VOICE")
    assert voice["offered"] == 7 * (12 * 48 + 2 * 48)  # seasonal naive repeats the last week
    assert voice["aht_s"] == pytest.approx(140.0)
    req = _ccpulse(env, "plan", "requirements", *week)
    assert req["channels"]["VOICE"]["scheduled_hours"] >= req["channels"]["VOICE"]["floor_hours"] > 0
    out = tmp_path / "plan.json"
    # with --budget: the time left after the region is planned re-solves its channels (polish)
    summary = _ccpulse(env, "plan", "schedule", *week, "--out", str(out), "--budget", "20")
    assert summary["variants"] >= 50_000
    assert summary["under_slots"] == 0
    (region,) = summary["regions"]
    assert region["polish_improved"] <= region["polish_solves"]
    assert region["paid_hours"] >= region["lp_bound"] > 0
    plan = read_plan(out)
    assert plan.shifts and len(plan.intervals) == 4 * 672
    assert all(i.planned_agents >= i.required_agents for i in plan.intervals)
