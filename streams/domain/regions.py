"""The region catalogue: 67 regions (ISO 3166-2:RU), their IANA time zones and traffic weights.

Shipped as package data (data/regions.json) and loaded once. Weights are each
region's share of contact volume (proportional to its 2021-census population);
they sum to 1. The zones span the 11 Russian UTC offsets, from
Europe/Kaliningrad (UTC+2) to Asia/Kamchatka (UTC+12).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EXPECTED_REGION_COUNT = 67
CODE_PATTERN = re.compile(r"^RU-[A-Z]{2,3}$")
WEIGHT_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    tz: str
    weight: float

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def _parse(index: int, entry: Any) -> Region:
    """One JSON object of the catalogue file as a Region; a malformed entry is a ValueError."""
    if not isinstance(entry, Mapping):
        msg = f"region entry #{index} is {type(entry).__name__}, expected an object"
        raise ValueError(msg)
    try:
        code, name, tz, weight = entry["code"], entry["name"], entry["tz"], entry["weight"]
    except KeyError as exc:
        msg = f"region entry #{index} lacks field {exc.args[0]!r} (needs code, name, tz, weight)"
        raise ValueError(msg) from None
    if not all(isinstance(v, str) for v in (code, name, tz)):
        msg = f"region entry #{index}: code, name and tz must be strings, got {code!r}, {name!r}, {tz!r}"
        raise ValueError(msg)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        msg = f"region entry #{index} ({code}): weight {weight!r} is not a number"
        raise ValueError(msg)
    return Region(code, name, tz, float(weight))


def _validate(regions: Iterable[Region], expected_count: int = EXPECTED_REGION_COUNT) -> tuple[Region, ...]:
    """The catalogue as a tuple if it is whole and consistent; otherwise ValueError naming the problem."""
    catalogue = tuple(regions)
    if len(catalogue) != expected_count:
        msg = f"region catalogue has {len(catalogue)} regions, expected {expected_count}"
        raise ValueError(msg)
    codes = [r.code for r in catalogue]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        msg = f"duplicate region codes: {', '.join(duplicates)}"
        raise ValueError(msg)
    for region in catalogue:
        if not CODE_PATTERN.match(region.code):
            msg = f"region code {region.code!r} is not an ISO 3166-2:RU code (RU-XX or RU-XXX)"
            raise ValueError(msg)
        if not (math.isfinite(region.weight) and region.weight > 0):
            msg = f"region {region.code} has weight {region.weight}, expected a finite number > 0"
            raise ValueError(msg)
        try:
            ZoneInfo(region.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"region {region.code} has time zone {region.tz!r}, unknown to zoneinfo"
            raise ValueError(msg) from exc
    total = math.fsum(r.weight for r in catalogue)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        msg = f"region weights sum to {total}, expected 1 (within {WEIGHT_SUM_TOLERANCE})"
        raise ValueError(msg)
    return catalogue


@cache
def load_regions() -> tuple[Region, ...]:
    """The validated catalogue, sorted by code as shipped; read from package data once per process."""
    raw = json.loads((files("streams.domain") / "data" / "regions.json").read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        msg = f"region catalogue is a JSON {type(raw).__name__}, expected a list of objects"
        raise ValueError(msg)
    return _validate(_parse(i, entry) for i, entry in enumerate(raw))


@cache
def region_codes() -> frozenset[str]:
    return frozenset(r.code for r in load_regions())


@cache
def _by_code() -> Mapping[str, Region]:
    return {r.code: r for r in load_regions()}


def get_region(code: str) -> Region:
    try:
        return _by_code()[code]
    except KeyError:
        msg = f"unknown region {code!r}: not among the {EXPECTED_REGION_COUNT} catalogue codes"
        raise KeyError(msg) from None


DAY_MS = 86_400_000


@cache
def utc_offset_ms(code: str) -> int:
    """The region's fixed UTC offset in milliseconds (the 67 regions' zones have no DST)."""
    offset = get_region(code).zone().utcoffset(datetime(2026, 1, 1, tzinfo=UTC))
    assert offset is not None
    return int(offset.total_seconds() * 1000)


def local_day_start(code: str, time_ms: int) -> int:
    """UTC epoch ms of the local midnight that starts the region's day containing ``time_ms``."""
    return time_ms - (time_ms + utc_offset_ms(code)) % DAY_MS
