"""Contact arrivals: a non-homogeneous Poisson process per region x channel, one hour at a time.

Rate of a 5-minute bin = daily volume (monthly volume x region weight x channel share)
x hour-of-day shape in the region's LOCAL time (piecewise linear between hourly
values) x day-of-week factor (local day) x a day-level busyness factor G ~ Gamma(k, 1/k)
(mean 1, shared by the channels of a region for one local day). With G the 5-minute
counts are over-dispersed: variance/mean = 1 + m/k; k is chosen so that it equals the
configured dispersion at the region's daily peak.

Every random draw of a contact (its patience, handle time, outcome, survey ...) is
made here, vectorised, so the event engine itself draws nothing. Chunks are seeded by
(seed, hour) and day factors by (seed, region, local day): a run is reproducible and a
longer run starts with the same traffic as a shorter one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from streams.domain.regions import Region
from streams.simulator.config import MONTH_DAYS, SimConfig

BIN_S = 300
BINS_PER_DAY = 86_400 // BIN_S
HOUR_MS = 3_600_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def shape_per_bin(hourly: tuple[float, ...]) -> np.ndarray:
    """Share of a day's volume in each 5-minute bin of the local day (sums to 1); the hourly
    values are taken at the middle of their hour and interpolated linearly, cyclically."""
    hours = np.asarray(hourly, dtype=float)
    centres = (np.arange(BINS_PER_DAY) + 0.5) * BIN_S / 3600.0 - 0.5
    low = np.floor(centres).astype(int)
    frac = centres - low
    values = hours[low % 24] * (1.0 - frac) + hours[(low + 1) % 24] * frac
    return values / values.sum()


@dataclass(frozen=True, slots=True)
class ArrivalChunk:
    """Arrivals of one hour, sorted by time; parallel lists (python scalars, for the engine)."""

    time_ms: list[int]
    region: list[int]  # index into the model's regions
    channel: list[int]  # index into the model's channels
    handle_s: list[float]
    patience_s: list[float]  # math.inf = never abandons
    hold_u: list[float]  # < hold_share: the contact has a hold; also the hold's position
    platform_u: list[float]
    segment_u: list[float]
    reason: list[int]
    repeat_u: list[float]  # < repeat_share: a recent customer, picked by the value
    outcome_u: list[float]
    survey_u: list[float]
    survey_delay_s: list[float]
    score_u: list[float]
    transfer_u: list[float]  # < transfer_share: the agent transfers the contact near the end of talk
    # edge shapes (config.EDGE_SHAPES), drawn only when one is on: empty otherwise
    overflow_u: list[float] = field(default_factory=list)  # < overflow_share; also picks the region
    second_transfer_u: list[float] = field(default_factory=list)  # < second_transfer_share
    end_on_hold_u: list[float] = field(default_factory=list)  # < end_on_hold_share
    abandon_end_u: list[float] = field(default_factory=list)  # < abandon_end_share; also the delay
    direct_u: list[float] = field(default_factory=list)  # < direct_answer_share

    def __len__(self) -> int:
        return len(self.time_ms)


class ArrivalModel:
    def __init__(self, config: SimConfig, regions: tuple[Region, ...], seed: int) -> None:
        self.config, self.regions, self.seed = config, regions, seed
        self.channels = tuple(config.channels)
        self.shape = shape_per_bin(config.hourly_shape)
        dow = np.asarray(config.dow_factors, dtype=float)
        self.dow = dow / dow.mean()
        weights = np.array([r.weight for r in regions])
        shares = np.array([config.channels[c].share for c in self.channels])
        self.daily_volume = config.contacts_per_month / MONTH_DAYS * np.outer(weights, shares)
        peak = self.daily_volume.sum(axis=1) * self.shape.max()
        if config.dispersion is None:
            self.day_shape: np.ndarray | None = None
        else:
            self.day_shape = np.maximum(peak / (config.dispersion - 1.0), config.min_day_factor_shape)
        self._zones = [r.zone() for r in regions]
        self._day_factors: dict[tuple[int, int], float] = {}
        self._handle = [self._handle_params(c) for c in self.channels]

    def _handle_params(self, channel: object) -> tuple[bool, float, float]:
        handle = self.config.channels[channel].handle  # type: ignore[index]
        mu, sigma = handle.lognormal_params()
        lognormal = handle.distribution == "lognormal"
        return lognormal, mu if lognormal else handle.mean_s, sigma

    def day_factor(self, region: int, local_day: int) -> float:
        """Busyness of a region on a local day (days since 1970-01-01), mean 1."""
        if self.day_shape is None:
            return 1.0
        key = (region, local_day)
        factor = self._day_factors.get(key)
        if factor is None:
            k = float(self.day_shape[region])
            rng = np.random.default_rng([self.seed, 1, region, local_day])
            factor = float(rng.gamma(k, 1.0 / k))
            if len(self._day_factors) > 100_000:
                self._day_factors.clear()
            self._day_factors[key] = factor
        return factor

    def offsets_s(self, hour_start_ms: int) -> list[int]:
        instant = datetime.fromtimestamp(hour_start_ms / 1000, UTC)
        return [int(zone.utcoffset(instant).total_seconds()) for zone in self._zones]  # type: ignore[union-attr]

    def bin_rates(self, hour_start_ms: int) -> np.ndarray:
        """Expected arrivals per (region, channel, 5-minute bin) in the UTC hour starting there."""
        if hour_start_ms % HOUR_MS:
            msg = f"hour_start_ms={hour_start_ms} is not on a whole UTC hour"
            raise ValueError(msg)
        rates = np.empty((len(self.regions), len(self.channels), 12))
        for r, offset in enumerate(self.offsets_s(hour_start_ms)):
            local_s = hour_start_ms // 1000 + offset
            local_day, second_of_day = divmod(local_s, 86_400)
            first_bin = second_of_day // BIN_S
            level = self.dow[(local_day + _EPOCH_WEEKDAY) % 7] * self.day_factor(r, local_day)
            rates[r] = np.outer(self.daily_volume[r] * level, self.shape[first_bin : first_bin + 12])
        return rates

    def chunk(self, hour_start_ms: int) -> ArrivalChunk:
        rng = np.random.default_rng([self.seed, 2, hour_start_ms // HOUR_MS])
        counts = rng.poisson(self.bin_rates(hour_start_ms))
        flat = counts.ravel()
        cells = np.repeat(np.arange(flat.size), flat)
        n = cells.size
        region, rest = np.divmod(cells, counts.shape[1] * 12)
        channel, bins = np.divmod(rest, 12)
        offsets_ms = ((bins + rng.random(n)) * BIN_S * 1000).astype(np.int64)
        order = np.argsort(offsets_ms, kind="stable")
        region, channel, offsets_ms = region[order], channel[order], offsets_ms[order]
        return ArrivalChunk(
            time_ms=(offsets_ms + hour_start_ms).tolist(),
            region=region.tolist(),
            channel=channel.tolist(),
            handle_s=self._draw_handle(rng, channel).tolist(),
            patience_s=self._draw_patience(rng, channel).tolist(),
            hold_u=rng.random(n).tolist(),
            platform_u=rng.random(n).tolist(),
            segment_u=rng.random(n).tolist(),
            reason=rng.integers(0, 4, n).tolist(),
            repeat_u=rng.random(n).tolist(),
            outcome_u=rng.random(n).tolist(),
            survey_u=rng.random(n).tolist(),
            survey_delay_s=rng.uniform(30.0, 600.0, n).tolist(),
            score_u=rng.random(n).tolist(),
            transfer_u=rng.random(n).tolist(),  # drawn after the others: earlier draws keep their values
            **self._draw_edge_shapes(rng, n),  # last, and only when on: default runs keep their draws
        )

    def _draw_edge_shapes(self, rng: np.random.Generator, n: int) -> dict[str, list[float]]:
        if not self.config.edge_shapes:
            return {}
        names = ("overflow_u", "second_transfer_u", "end_on_hold_u", "abandon_end_u", "direct_u")
        return {name: rng.random(n).tolist() for name in names}

    def _draw_handle(self, rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
        lognormal = np.array([h[0] for h in self._handle])[channel]
        first = np.array([h[1] for h in self._handle])[channel]
        sigma = np.array([h[2] for h in self._handle])[channel]
        normal = rng.standard_normal(channel.size)
        exponential = rng.standard_exponential(channel.size)
        handle = np.where(lognormal, np.exp(first + sigma * normal), first * exponential)
        return np.maximum(handle, 1.0)  # a contact lasts at least a second

    def _draw_patience(self, rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
        means = np.array(
            [math.inf if (p := self.config.channels[c].patience_mean_s) is None else p for c in self.channels]
        )[channel]
        patience = rng.standard_exponential(channel.size) * means
        short = rng.random(channel.size) < self.config.short_abandon_share
        short_patience = rng.uniform(2.0, 5.0, channel.size)
        return np.where(short & np.isfinite(means), short_patience, patience)
