from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from streams.domain.regions import _validate, get_region, load_regions, region_codes

pytestmark = pytest.mark.unit

JAN = datetime(2026, 1, 15, 12, tzinfo=UTC)


def offset_hours(tz_region: object) -> float:
    offset = JAN.astimezone(tz_region.zone()).utcoffset()  # type: ignore[attr-defined]
    assert offset is not None
    return offset.total_seconds() / 3600


def test_catalogue_has_67_unique_regions() -> None:
    regions = load_regions()
    assert len(regions) == 67
    assert len(region_codes()) == 67


def test_catalogue_spans_the_11_russian_offsets() -> None:
    offsets = {offset_hours(r) for r in load_regions()}
    assert offsets == {float(h) for h in range(2, 13)}
    tzs = {r.tz for r in load_regions()}
    assert {"Europe/Kaliningrad", "Asia/Kamchatka"} <= tzs
    westmost = min(load_regions(), key=offset_hours)
    assert westmost.tz == "Europe/Kaliningrad"


def test_weights_sum_to_one_and_moscow_is_heaviest() -> None:
    regions = load_regions()
    assert sum(r.weight for r in regions) == pytest.approx(1.0, abs=1e-9)
    assert max(regions, key=lambda r: r.weight).code == "RU-MOW"


def test_lookup() -> None:
    assert get_region("RU-SPE").name == "Saint Petersburg"
    with pytest.raises(KeyError, match="RU-XXX"):
        get_region("RU-XXX")


def test_loaded_once() -> None:
    assert load_regions() is load_regions()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rs: rs[:-1], "66 regions"),
        (lambda rs: [*rs[:-1], rs[0]], "duplicate"),
        (lambda rs: [dataclasses.replace(rs[0], code="MOW"), *rs[1:]], "ISO 3166-2"),
        (lambda rs: [dataclasses.replace(rs[0], tz="Mars/Olympus"), *rs[1:]], "time zone"),
        (lambda rs: [dataclasses.replace(rs[0], weight=rs[0].weight + 0.1), *rs[1:]], "sum to"),
        (lambda rs: [dataclasses.replace(rs[0], weight=0.0), *rs[1:]], "weight"),
    ],
)
def test_validator_rejects_a_bad_catalogue(mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        _validate(mutate(list(load_regions())))
