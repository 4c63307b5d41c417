"""The region catalogue: 67 regions (ISO 3166-2:RU), their IANA time zones and traffic weights.

Shipped as package data (data/regions.json) and loaded once. Weights are each
region's share of contact volume (proportional to population, 2021 census,
rounded); they sum to 1. The zones span the 11 Russian UTC offsets, from
Europe/Kaliningrad (UTC+2) to Asia/Kamchatka (UTC+12).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EXPECTED_REGION_COUNT = 67
CODE_PATTERN = re.compile(r"^RU-[A-Z]{2,3}$")


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    tz: str
    weight: float

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


def _validate(regions: Iterable[Region], expected_count: int = EXPECTED_REGION_COUNT) -> tuple[Region, ...]:
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
        if region.weight <= 0:
            msg = f"region {region.code} has weight {region.weight}, expected > 0"
            raise ValueError(msg)
        try:
            ZoneInfo(region.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"region {region.code} has time zone {region.tz!r}, unknown to zoneinfo"
            raise ValueError(msg) from exc
    total = sum(r.weight for r in catalogue)
    if abs(total - 1.0) > 1e-6:
        msg = f"region weights sum to {total}, expected 1"
        raise ValueError(msg)
    return catalogue


@cache
def load_regions() -> tuple[Region, ...]:
    raw = json.loads((files("streams.domain") / "data" / "regions.json").read_text(encoding="utf-8"))
    return _validate(Region(r["code"], r["name"], r["tz"], float(r["weight"])) for r in raw)


@cache
def region_codes() -> frozenset[str]:
    return frozenset(r.code for r in load_regions())


@cache
def _by_code() -> dict[str, Region]:
    return {r.code: r for r in load_regions()}


def get_region(code: str) -> Region:
    try:
        return _by_code()[code]
    except KeyError:
        msg = f"unknown region {code!r}: not among the {EXPECTED_REGION_COUNT} catalogue codes"
        raise KeyError(msg) from None
