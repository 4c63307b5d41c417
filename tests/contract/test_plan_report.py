"""The plan-in-the-twin HTML report renders in a real browser (Debian's headless Chromium):
the summary table and every chart, with pixels on the screenshot, not a blank page."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.planning.baseline import erlang_plan
from streams.planning.report import ForecastSeries, render
from streams.planning.twin import evaluate

pytestmark = pytest.mark.contract
PNG = b"\x89PNG\r\n\x1a\n"


def screenshot(chromium: str, page: Path, out: Path, profile: Path) -> None:
    subprocess.run(  # noqa: S603 - a fixed binary and our own temporary paths
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--window-size=1200,2400", f"--screenshot={out}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def test_report_renders_charts_that_are_not_blank(chromium: str, tmp_path: Path) -> None:
    start = datetime(2026, 5, 11, 6, tzinfo=UTC)
    plan = erlang_plan(["RU-KGD"], start, days=0.25)
    result = evaluate(plan, seed=1)
    t0 = int(start.timestamp() * 1000)
    extra = ForecastSeries("backtest slot", [t0 + k * 900_000 for k in range(8)], [1.0] * 8, [0.5, 2.0] * 4)
    out = tmp_path / "plan.html"
    pngs = render(result, out, forecasts=[extra])
    text = out.read_text()
    assert 'id="summary"' in text and 'id="forecast"' in text and "backtest slot" in text
    for channel in ("VOICE", "CHAT", "MESSENGER", "EMAIL"):
        assert f"<td>{channel}</td>" in text
    assert "≤ 24 h" in text and "≤ 40 s" in text
    assert len(pngs) == 1 + 1 + 4  # coverage + SL of the region, the extra pair, the plan's forecasts
    for png in pngs:
        assert png.read_bytes()[:8] == PNG and f"plan_files/{png.name}" in text

    import numpy as np
    from PIL import Image

    shot = tmp_path / "shot.png"
    screenshot(chromium, out, shot, tmp_path / "chromium-profile")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2400)
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    not_white = float((pixels != 255).any(axis=1).mean())
    assert not_white > 0.05, not_white  # text, tables and the charts, not a blank page
    assert len(np.unique(pixels, axis=0)) > 100  # the charts' colours and anti-aliasing, not only text
    r, g, b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    assert int(((r > 180) & (g < 90) & (b < 90)).sum()) > 200  # target lines and "required" steps
