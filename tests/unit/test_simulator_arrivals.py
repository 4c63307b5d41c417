"""The arrival process: the day's shape in local time, volumes by region weight, over-dispersion."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from streams.domain.regions import get_region, load_regions
from streams.simulator.arrivals import BIN_S, HOUR_MS, ArrivalModel, shape_per_bin
from streams.simulator.config import DEFAULT_HOURLY_SHAPE, FLAT_DOW, MONTH_DAYS, SimConfig
from streams.simulator.run import start_ms_of

pytestmark = pytest.mark.unit

START = start_ms_of(None)  # Monday 2026-05-11 00:00 UTC
DAY_MS = 24 * HOUR_MS


def circular_mean_hour(hours: np.ndarray, weights: np.ndarray | None = None) -> float:
    angles = np.asarray(hours) / 24 * 2 * math.pi
    w = np.ones_like(angles) if weights is None else weights
    return float(np.arctan2((w * np.sin(angles)).sum(), (w * np.cos(angles)).sum()) / (2 * math.pi) * 24 % 24)


def arrival_times(model: ArrivalModel, days: int) -> tuple[np.ndarray, np.ndarray]:
    times, regions = [], []
    for hour in range(START, START + days * DAY_MS, HOUR_MS):
        chunk = model.chunk(hour)
        times.extend(chunk.time_ms)
        regions.extend(chunk.region)
    return np.array(times), np.array(regions)


def test_shape_per_bin_is_a_distribution_peaking_late_morning() -> None:
    shape = shape_per_bin(DEFAULT_HOURLY_SHAPE)
    assert shape.shape == (288,) and shape.sum() == pytest.approx(1.0)
    peak_hour = int(np.argmax(shape)) * BIN_S / 3600
    assert 10 <= peak_hour <= 12
    assert shape[:60].sum() < 0.05  # 00:00-05:00 local carries little


def test_local_time_peaks_shift_across_time_zones() -> None:
    codes = ("RU-KGD", "RU-MOW", "RU-NVS", "RU-PRI", "RU-KAM")  # UTC+2, +3, +7, +10, +12
    regions = tuple(get_region(c) for c in codes)
    model = ArrivalModel(SimConfig(regions=codes), regions, seed=5)
    times, region_index = arrival_times(model, days=21)
    expected_local = circular_mean_hour(
        (np.arange(288) + 0.5) * BIN_S / 3600, shape_per_bin(DEFAULT_HOURLY_SHAPE)
    )
    offsets_h = [o / 3600 for o in model.offsets_s(START)]
    assert offsets_h == [2, 3, 7, 10, 12]
    utc_means = []
    for r, offset in enumerate(offsets_h):
        utc_hours = (times[region_index == r] % DAY_MS) / HOUR_MS
        utc_mean = circular_mean_hour(utc_hours)
        local_mean = circular_mean_hour((utc_hours + offset) % 24)
        assert local_mean == pytest.approx(expected_local, abs=0.25), codes[r]
        utc_means.append(utc_mean)
    # the busiest time moves by the time-zone difference: Kamchatka is 10 hours ahead of Kaliningrad
    assert (utc_means[0] - utc_means[-1]) % 24 == pytest.approx(10, abs=0.3)
    assert (utc_means[1] - utc_means[3]) % 24 == pytest.approx(7, abs=0.3)


def test_region_volumes_follow_the_weights() -> None:
    regions = load_regions()
    config = SimConfig(dispersion=None)
    model = ArrivalModel(config, regions, seed=9)
    week = sum(model.bin_rates(h).sum(axis=(1, 2)) for h in range(START, START + 7 * DAY_MS, HOUR_MS))
    weights = np.array([r.weight for r in regions])
    # expected volume: 3.8 M a month split by weight (day-of-week factors average to 1 over a week)
    np.testing.assert_allclose(week, config.contacts_per_month * 7 / MONTH_DAYS * weights, rtol=1e-9)
    _, region_index = arrival_times(model, days=1)
    counts = np.bincount(region_index, minlength=len(regions))
    expected = sum(model.bin_rates(h).sum(axis=(1, 2)) for h in range(START, START + DAY_MS, HOUR_MS))
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    assert np.corrcoef(counts / counts.sum(), weights)[0, 1] > 0.999


def test_channel_mix_follows_the_configuration() -> None:
    model = ArrivalModel(SimConfig(regions=("RU-MOW",)), (get_region("RU-MOW"),), seed=3)
    channels = []
    for hour in range(START, START + 2 * DAY_MS, HOUR_MS):
        channels.extend(model.chunk(hour).channel)
    shares = np.bincount(channels, minlength=4) / len(channels)
    expected = [model.config.channels[c].share for c in model.channels]
    np.testing.assert_allclose(shares, expected, atol=0.01)


def peak_hour_dispersion(dispersion: float | None, days: int) -> float:
    mow = get_region("RU-MOW")
    config = SimConfig(regions=(mow.code,), dispersion=dispersion, dow_factors=FLAT_DOW)
    model = ArrivalModel(config, (mow,), seed=21)
    peak_local_hour = 11  # the configured shape's busiest hour
    counts = []
    for day in range(days):
        hour = START + day * DAY_MS + (peak_local_hour - 3) * HOUR_MS  # Moscow is UTC+3
        offsets = (np.array(model.chunk(hour).time_ms) - hour) // (BIN_S * 1000)
        counts.append(np.bincount(offsets, minlength=12))
    per_bin = np.array(counts)
    return float(np.mean(per_bin.var(axis=0, ddof=1) / per_bin.mean(axis=0)))


def test_five_minute_counts_are_over_dispersed_as_configured() -> None:
    assert 2.0 <= peak_hour_dispersion(2.5, days=400) <= 3.0
    assert 0.8 <= peak_hour_dispersion(None, days=400) <= 1.2


def test_arrivals_are_reproducible_and_sorted_within_the_hour() -> None:
    regions = tuple(get_region(c) for c in ("RU-MOW", "RU-SPE"))
    first = ArrivalModel(SimConfig(), regions, seed=4).chunk(START + 9 * HOUR_MS)
    again = ArrivalModel(SimConfig(), regions, seed=4).chunk(START + 9 * HOUR_MS)
    other = ArrivalModel(SimConfig(), regions, seed=5).chunk(START + 9 * HOUR_MS)
    assert first == again and first.time_ms != other.time_ms
    assert first.time_ms == sorted(first.time_ms)
    assert START + 9 * HOUR_MS <= first.time_ms[0] and first.time_ms[-1] < START + 10 * HOUR_MS


def test_short_abandon_mass_and_patience_means() -> None:
    config = replace(SimConfig(regions=("RU-MOW",)), short_abandon_share=0.05)
    model = ArrivalModel(config, (get_region("RU-MOW"),), seed=8)
    patience, channel = [], []
    for hour in range(START + 6 * HOUR_MS, START + 18 * HOUR_MS, HOUR_MS):
        chunk = model.chunk(hour)
        patience.extend(chunk.patience_s)
        channel.extend(chunk.channel)
    p, c = np.array(patience), np.array(channel)
    voice = p[c == 0]
    short = (voice >= 2) & (voice <= 5)
    assert short.mean() == pytest.approx(
        0.05 + 0.95 * (1 - math.exp(-5 / 120) - (1 - math.exp(-2 / 120))), abs=0.01
    )
    assert voice[~short].mean() == pytest.approx(120, rel=0.08)
    assert np.all(np.isinf(p[c == 3]))  # e-mail never abandons
