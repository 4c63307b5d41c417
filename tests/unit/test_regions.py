from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from streams.domain.regions import Region, _parse, _validate, get_region, load_regions, region_codes

pytestmark = pytest.mark.unit

# A winter instant: Russia has no DST, but a fixed instant keeps the offsets reproducible.
JAN = datetime(2026, 1, 15, 12, tzinfo=UTC)


def offset_hours(region: Region) -> float:
    offset = JAN.astimezone(region.zone()).utcoffset()
    assert offset is not None
    return offset.total_seconds() / 3600


def test_catalogue_has_67_unique_regions_sorted_by_code() -> None:
    regions = load_regions()
    codes = [r.code for r in regions]
    assert len(regions) == 67
    assert len(set(codes)) == 67
    assert region_codes() == frozenset(codes)
    assert codes == sorted(codes)


def test_catalogue_spans_the_11_russian_offsets() -> None:
    offsets = {offset_hours(r) for r in load_regions()}
    assert offsets == {float(h) for h in range(2, 13)}


def test_westmost_is_kaliningrad_and_eastmost_is_utc_plus_12() -> None:
    regions = load_regions()
    westmost = min(regions, key=offset_hours)
    eastmost = max(regions, key=offset_hours)
    assert westmost.tz == "Europe/Kaliningrad"
    assert offset_hours(eastmost) == 12.0
    assert "Asia/Kamchatka" in {r.tz for r in regions}


def test_weights_sum_to_one_and_moscow_is_heaviest() -> None:
    regions = load_regions()
    assert math.fsum(r.weight for r in regions) == pytest.approx(1.0, abs=1e-9)
    assert all(r.weight > 0 for r in regions)
    assert max(regions, key=lambda r: r.weight).code == "RU-MOW"


def test_lookup_by_code() -> None:
    assert get_region("RU-SPE").name == "Saint Petersburg"
    assert get_region("RU-KGD").tz == "Europe/Kaliningrad"


def test_unknown_code_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="RU-XXX"):
        get_region("RU-XXX")


def test_loaded_once() -> None:
    assert load_regions() is load_regions()


Mutation = Callable[[list[Region]], list[Region]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda rs: rs[:-1], "66 regions", id="too-few"),
        pytest.param(lambda rs: [*rs[:-1], rs[0]], "duplicate", id="duplicate"),
        pytest.param(lambda rs: [dataclasses.replace(rs[0], code="MOW"), *rs[1:]], "ISO 3166-2", id="code"),
        pytest.param(
            lambda rs: [dataclasses.replace(rs[0], tz="Mars/Olympus"), *rs[1:]], "time zone", id="zone"
        ),
        pytest.param(
            lambda rs: [dataclasses.replace(rs[0], weight=rs[0].weight + 0.1), *rs[1:]], "sum to", id="sum"
        ),
        pytest.param(lambda rs: [dataclasses.replace(rs[0], weight=0.0), *rs[1:]], "weight", id="zero"),
        pytest.param(lambda rs: [dataclasses.replace(rs[0], weight=math.nan), *rs[1:]], "weight", id="nan"),
    ],
)
def test_validator_rejects_a_bad_catalogue(mutate: Mutation, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _validate(mutate(list(load_regions())))


def test_validator_accepts_the_shipped_catalogue() -> None:
    assert _validate(list(load_regions())) == load_regions()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param(["RU-MOW"], "expected an object", id="not-object"),
        pytest.param({"code": "RU-MOW", "name": "Moscow", "tz": "Europe/Moscow"}, "'weight'", id="missing"),
        pytest.param({"code": "RU-MOW", "name": "Moscow", "tz": 3, "weight": 0.1}, "strings", id="tz-type"),
        pytest.param(
            {"code": "RU-MOW", "name": "Moscow", "tz": "Europe/Moscow", "weight": "0.1"},
            "number",
            id="weight",
        ),
    ],
)
def test_parse_rejects_a_malformed_entry(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _parse(7, entry)
