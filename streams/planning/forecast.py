"""Forecast offered contacts and AHT per region x channel x 15-minute interval, from history.

History is ClickHouse's ``kpi_minute`` (the per-minute KPI buckets computed from the raw
events; ``FINAL`` keeps the newest version of each bucket), summed to 15-minute UTC
intervals in SQL that runs on clickhouse-server 18.16 and on chdb alike.

Offered: statsforecast's MSTL (daily 96 and weekly 672 seasonalities; simple exponential
smoothing, AutoETS "ANN", on the trend), one model per series, fitted on the history weeks; the baseline is
the seasonal naive forecast (same interval one week earlier). Why MSTL from
statsforecast (docs/planning.md has the figures): it installs from wheels (62 s here, no
compiler), models the two seasonalities of contact-centre traffic, and beat the seasonal
naive baseline on every channel of two held-out simulated weeks. It is slow here (about
3 s a series on this loaded 2-core machine); statsmodels (97 s install) offers MSTL
decomposition and single-season Holt-Winters (1.8 s a series; worse than naive on
Moscow's voice in a 3-series spot check).
With fewer than two weeks of
history the model falls back to seasonal naive.

AHT: handle time is noisy per interval (a few contacts each), so its forecast is the
pooled ratio over the history weeks of handle time to handled contacts at the same
interval of the week, falling back to the series' overall AHT where no contact was
handled at that interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from streams.domain.shift_plan import INTERVAL_MS
from streams.history.store import HistoryStore

WEEK = 672
DAY = 96


@dataclass
class History:
    """Per region x channel arrays over the same UTC 15-minute slots from ``start_ms``."""

    start_ms: int
    slots: int
    offered: dict[tuple[str, str], np.ndarray]
    handled: dict[tuple[str, str], np.ndarray]
    handle_s: dict[tuple[str, str], np.ndarray]

    def window(self, first: int, last: int) -> History:
        cut = slice(first, last)
        return History(
            self.start_ms + first * INTERVAL_MS,
            last - first,
            {k: v[cut] for k, v in self.offered.items()},
            {k: v[cut] for k, v in self.handled.items()},
            {k: v[cut] for k, v in self.handle_s.items()},
        )


@dataclass
class Forecast:
    start_ms: int
    slots: int
    offered: dict[tuple[str, str], np.ndarray]
    aht_s: dict[tuple[str, str], np.ndarray]
    method: str


def read_history(
    store: HistoryStore, database: str, start_ms: int, end_ms: int, regions: Iterable[str] | None = None
) -> History:
    """15-minute sums of kpi_minute in [start_ms, end_ms) (both on 15-minute boundaries)."""
    where = f"bucket_start >= toDateTime({start_ms // 1000}) AND bucket_start < toDateTime({end_ms // 1000})"
    chosen = sorted(regions) if regions else None
    if chosen:
        where += " AND region IN (" + ",".join(f"'{r}'" for r in chosen) + ")"
    sql = (
        "SELECT region, toString(channel), toUInt32(toStartOfFifteenMinutes(bucket_start)) AS t, "  # noqa: S608
        "sum(offered), sum(handled), sum(talk_ms + hold_ms + acw_ms) "
        f"FROM {database}.kpi_minute FINAL WHERE {where} GROUP BY region, channel, t"
    )
    slots = (end_ms - start_ms) // INTERVAL_MS
    offered: dict[tuple[str, str], np.ndarray] = {}
    handled: dict[tuple[str, str], np.ndarray] = {}
    handle: dict[tuple[str, str], np.ndarray] = {}
    for region, channel, t, off, hnd, ms in store.query(sql):
        key = (str(region), str(channel))
        if key not in offered:
            offered[key], handled[key], handle[key] = (np.zeros(slots) for _ in range(3))
        i = (int(t) * 1000 - start_ms) // INTERVAL_MS
        offered[key][i] = float(off)
        handled[key][i] = float(hnd)
        handle[key][i] = float(ms) / 1000.0
    return History(start_ms, slots, offered, handled, handle)


def seasonal_naive(history: History, horizon: int) -> dict[tuple[str, str], np.ndarray]:
    """Same interval one week earlier, repeated over the horizon."""
    out = {}
    for key, y in history.offered.items():
        last = y[-WEEK:] if y.size >= WEEK else np.resize(y, WEEK)
        out[key] = np.resize(last, horizon).astype(float)
    return out


def mstl_offered(history: History, horizon: int) -> dict[tuple[str, str], np.ndarray]:
    """statsforecast MSTL (seasons 96 and 672, AutoETS(ANN) on the trend) per series, clipped at 0."""
    if history.slots < 2 * WEEK:
        return seasonal_naive(history, horizon)
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS

    keys = sorted(history.offered)
    ds = pd.date_range(pd.Timestamp(history.start_ms, unit="ms"), periods=history.slots, freq="15min")
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"{r}|{c}" for r, c in keys], history.slots),
            "ds": np.tile(ds, len(keys)),
            "y": np.concatenate([history.offered[k] for k in keys]),
        }
    )
    model = MSTL(season_length=[DAY, WEEK], trend_forecaster=AutoETS(model="ANN"))
    result = StatsForecast(models=[model], freq="15min", n_jobs=1).forecast(df=frame, h=horizon)
    out = {}
    for key in keys:
        rows = result[result["unique_id"] == f"{key[0]}|{key[1]}"]
        out[key] = np.clip(rows["MSTL"].to_numpy(dtype=float), 0.0, None)
    return out


def aht_profile(history: History, horizon: int) -> dict[tuple[str, str], np.ndarray]:
    """Pooled handle time / handled at the same interval of the week over the history."""
    out = {}
    weeks = max(1, history.slots // WEEK)
    for key, handled in history.handled.items():
        total = handled.sum()
        overall = history.handle_s[key].sum() / total if total else 0.0
        h = np.resize(handled[-weeks * WEEK :], (weeks, WEEK)).sum(axis=0)
        s = np.resize(history.handle_s[key][-weeks * WEEK :], (weeks, WEEK)).sum(axis=0)
        prof = np.where(h > 0, s / np.maximum(h, 1), overall)
        # the horizon starts where the history ends: align the week phase
        phase = history.slots % WEEK
        out[key] = np.resize(np.roll(prof, -phase), horizon)
    return out


def forecast(history: History, horizon: int, method: str = "mstl") -> Forecast:
    offered = seasonal_naive(history, horizon) if method == "naive" else mstl_offered(history, horizon)
    start = history.start_ms + history.slots * INTERVAL_MS
    return Forecast(start, horizon, offered, aht_profile(history, horizon), method)


def accuracy(
    predicted: dict[tuple[str, str], np.ndarray], actual: dict[tuple[str, str], np.ndarray]
) -> dict[str, tuple[float, float]]:
    """Per channel: (WAPE, bias) = (sum |F - A| / sum A, (sum F - sum A) / sum A)."""
    sums: dict[str, list[float]] = {}
    for key, a in actual.items():
        f = predicted.get(key, np.zeros_like(a))[: a.size]
        acc = sums.setdefault(key[1], [0.0, 0.0, 0.0])
        acc[0] += float(np.abs(f - a).sum())
        acc[1] += float(f.sum() - a.sum())
        acc[2] += float(a.sum())
    return {c: (e / t if t else 0.0, b / t if t else 0.0) for c, (e, b, t) in sorted(sums.items())}
